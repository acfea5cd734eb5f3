//! Running a script on a core: the interpreter on a stack of its own, and the commands it
//! calls carried out atomically with respect to every other client.
//!
//! # Waiting without blocking the core
//!
//! A `redis.call` for a key of another core must wait for that core's answer, and a long
//! script must let its core serve others meanwhile. Lua 5.1 cannot yield across a `pcall`,
//! a metamethod or a C function (and scripts wrap `redis.call` in `pcall` routinely), so the
//! interpreter runs on a stack of its own (a stackful coroutine, `corosensei`): a wait
//! switches back to the task that drives the script, whatever Lua and C frames are in
//! between, and the task awaits the answer like any other task; the core's event loop runs
//! meanwhile. The instruction-count hook switches back the same way every 100,000
//! instructions, so a long script does not stall its core.
//!
//! # Atomicity
//!
//! - **Optimistic** (the declared keys are on one shard, or there are none): the script runs
//!   on that shard's core. Its commands on that shard run directly. While it runs without
//!   switching back, nothing else can run there; the first time it does switch back it takes
//!   that shard's lock for every key, so other work on the shard waits. If it reaches a key
//!   of another shard (or a command over all shards), it is abandoned: its writes are undone
//!   from the copies taken before each first write of a key, its notifications, MONITOR lines
//!   and blocked-client wake-ups were held back and are dropped, and it runs again, locked.
//!   The script is then remembered as one that roams, and runs locked from the start.
//! - **Locked**: the lock of every shard (all keys) is taken in shard order first; the script
//!   runs on the client's core, its commands on other shards travel under that lock.
//! - **Inside EXEC**: the transaction already holds every shard; the script runs under it.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};
use shardis_engine::command::Flags;
use shardis_engine::db::Record;
use shardis_engine::{Command, Ctx, Exec, Fanout, ServerCmd, REGISTRY};
use shardis_resp::Reply;

use super::cache::Script;
use super::state::{self, BusyScript, RunInfo};
use super::vm::{Flavor, Host};
use super::{busy, functions};
use crate::cluster::redirect::ScriptCluster;
use crate::cmd::acl::{self, ScriptCaller};
use crate::conn::dispatch;
use crate::conn::session::Session;
use crate::coord::route;
use crate::core::calls::SCRIPT;
use crate::core::client::Client;
use crate::core::shard_lock::{Intents, LockStep, TxId};
use crate::core::tracking::Caller;
use crate::core::{memory, ConnRef, Core, Request};

/// What a script is.
#[derive(Clone)]
pub enum Kind {
    Eval { sha: String, script: Script },
    Function { name: String },
}

/// A script to run, with everything the run needs from the caller.
#[derive(Clone)]
pub struct Job {
    pub kind: Kind,
    pub keys: Vec<Bytes>,
    pub args: Vec<Bytes>,
    pub db: usize,
    /// `*_RO` or a `no-writes` script: write commands are refused.
    pub read_only: bool,
    /// `allow-oom`: its commands are never refused for memory.
    pub allow_oom: bool,
    pub caller_addr: String,
    /// The caller's command (MONITOR and FUNCTION STATS show it).
    pub caller_argv: Vec<Bytes>,
    /// The shard of its declared keys when it runs optimistically there; None when it may
    /// touch any shard (for the BUSY replies).
    pub shard: Option<usize>,
    /// Whose ACL rules the script's commands pass (None: a user allowed everything).
    pub caller: Option<Arc<ScriptCaller>>,
    /// The caller's client-side caching (CLIENT TRACKING), when it tracks keys.
    pub tracker: Option<Caller>,
    /// In cluster mode, the rules its calls follow (None: no cluster, or a caller of the
    /// shared port of a cluster of one process).
    pub cluster: Option<ScriptCluster>,
}

impl Job {
    fn eval(&self) -> bool {
        matches!(self.kind, Kind::Eval { .. })
    }

    fn name(&self) -> &str {
        match &self.kind {
            Kind::Eval { sha, .. } => sha,
            Kind::Function { name } => name,
        }
    }
}

/// How a run ended.
pub enum Outcome {
    /// Its reply, and whether that is an error already counted in the error statistics
    /// (see [`super::vm::Host::error_counted`]).
    Done(Reply, bool),
    /// An optimistic run reached another shard; nothing it did remains.
    Escaped,
}

/// How a run is isolated from other clients.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Optimistic,
    /// Under this transaction, which holds every shard.
    Locked(TxId),
}

/// What the script's stack hands to its driver.
enum Suspend {
    /// Time to let the core serve others.
    Slice,
    /// A command to carry out asynchronously.
    Call {
        /// The one other shard a plain command runs on (it goes there as a one-request
        /// batch under the run's lock); None: through the runtime's dispatch, as a client's.
        lone: Option<usize>,
        cmd: &'static Command,
        args: Vec<Bytes>,
        db: usize,
        resp3: bool,
    },
}

/// What the driver hands back.
enum Resume {
    Go,
    Reply(Reply),
}

/// Stack size of a script: Lua and the commands it calls run on it.
const STACK_SIZE: usize = 8 << 20;

thread_local! {
    static STACKS: RefCell<Vec<DefaultStack>> = const { RefCell::new(Vec::new()) };
}

fn take_stack() -> Option<DefaultStack> {
    STACKS
        .with(|s| s.borrow_mut().pop())
        .or_else(|| DefaultStack::new(STACK_SIZE).ok())
}

fn give_stack(stack: DefaultStack) {
    STACKS.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < 2 {
            s.push(stack);
        }
    });
}

/// Effects of an optimistic run held back until it is known to stay on its shard.
#[derive(Default)]
struct Held {
    /// Each key written, as it was before the run's first write to it.
    undo: HashMap<(usize, Bytes), Option<Record>>,
    events: Vec<shardis_engine::notify::Event>,
    /// Keys written, for WATCH.
    touched: Vec<(usize, Bytes)>,
    /// MONITOR lines: (address, db, command).
    monitor: Vec<(String, usize, Vec<Bytes>)>,
}

/// State the script's stack and its driver share.
struct Shared {
    core: Rc<Core>,
    info: Rc<RunInfo>,
    optimistic: bool,
    /// The transaction holding this run's locks, once there is one.
    tx: Cell<Option<TxId>>,
    /// The transaction the run's records carry (the lock's, or the one an optimistic run
    /// takes its shard's lock for), so its effects reach the log and the replicas whole,
    /// between MULTI and EXEC, as Redis wraps a script's.
    journal_tx: TxId,
    /// An optimistic run logged records of its own: its end must be logged too.
    logged: Cell<bool>,
    escaped: Cell<bool>,
    held: RefCell<Held>,
    dirty_at_start: u64,
    threshold_ms: u64,
    busy_shard: Option<usize>,
    caller: Option<Arc<ScriptCaller>>,
    /// The caller's tracking, and the script's declared keys it is to remember once the
    /// script reads something (`remembered` then).
    tracker: Option<Caller>,
    declared: Vec<Bytes>,
    remembered: Cell<bool>,
    cluster: Option<ScriptCluster>,
    /// Over `maxmemory` when the run began (and not `allow-oom`): a command that may use
    /// memory is refused until the script has written something (after that it cannot be
    /// stopped halfway), as Redis's `scriptVerifyOOM`.
    out_of_memory: bool,
    /// The run's error reply was counted where it arose.
    error_counted: Cell<bool>,
}

impl Shared {
    /// Optimistic runs with several shards hold their effects back (they may be undone).
    fn holding_back(&self) -> bool {
        self.optimistic && self.core.shards > 1
    }

    /// Client-side caching of a script's reads, as Redis: once the script calls a read-only
    /// command, a tracking caller tracks the keys the script declared (not the keys the
    /// command read), each on the shard that owns it.
    fn remember_declared_keys(&self) {
        let Some(who) = self.tracker.filter(|t| t.remember).map(|t| t.who) else {
            return;
        };
        if self.remembered.replace(true) || self.declared.is_empty() {
            return;
        }
        let core = &self.core;
        for shard in 0..core.shards {
            let keys: Vec<Bytes> = self
                .declared
                .iter()
                .filter(|k| route::shard_of(k, core.shards) == shard)
                .cloned()
                .collect();
            if keys.is_empty() {
                continue;
            }
            if shard == core.id {
                core.track_read(&keys, who);
            } else {
                core.post(shard, Box::new(move |c| c.track_read(&keys, who)));
            }
        }
    }
}

/// The running script's context, on its own stack.
struct RunCtx {
    shared: Rc<Shared>,
    yielder: *const Yielder<Resume, Suspend>,
    db: usize,
    resp3: bool,
    read_only: bool,
    start_ms: u64,
    /// In cluster mode, the one slot its calls have used so far (or its declared keys').
    slot: Option<u16>,
    keys: Vec<usize>,
}

const ESCAPED: &str = "ERR script reached another shard";
const KILLED: &str = "Script killed by user with SCRIPT KILL...";

impl RunCtx {
    fn suspend(&self, what: Suspend) -> Resume {
        // SAFETY: the yielder lives as long as the coroutine this runs on.
        match unsafe { self.yielder.as_ref() } {
            Some(y) => y.suspend(what),
            None => Resume::Go,
        }
    }

    fn escape(&mut self) -> Result<Reply, String> {
        self.shared.escaped.set(true);
        Err(ESCAPED.into())
    }

    fn monitor(&self, args: &[Bytes]) {
        let core = &self.shared.core;
        if !core.pubsub.borrow().has_monitors() {
            return;
        }
        if self.shared.holding_back() {
            self.shared
                .held
                .borrow_mut()
                .monitor
                .push(("lua".into(), self.db, args.to_vec()));
        } else {
            core.feed_monitors("lua", self.db, args);
        }
    }

    /// A command whose keys are all on this core's shard.
    fn local(
        &mut self,
        cmd: &Command,
        f: shardis_engine::command::ShardFn,
        args: &[Bytes],
    ) -> Reply {
        let core = self.shared.core.clone();
        let holding = self.shared.holding_back();
        let mut written = Vec::new();
        if cmd.is_write() {
            cmd.written_key_indexes(args, &mut written);
        }
        if holding && cmd.is_write() {
            self.save_undo(cmd, args, &written);
        }
        let mut shard = core.shard.borrow_mut();
        shard.stats.commands_processed += 1;
        let (dirty, flushes) = (shard.dirty, shard.flushes);
        let outer_tx = shard
            .journal
            .as_mut()
            .map(|j| std::mem::replace(&mut j.tx, self.shared.journal_tx));
        let mut ctx = Ctx::new(&mut shard, self.db, self.start_ms, self.resp3);
        ctx.from_script = true;
        // Logged by its effects, as every command (when a journal is kept).
        let reply = shardis_engine::journal::execute(&mut ctx, f, args);
        let unchanged = ctx.unchanged_key;
        if let (Some(j), Some(outer)) = (shard.journal.as_mut(), outer_tx) {
            j.tx = outer;
        }
        let changed = shard.dirty != dirty;
        if changed && outer_tx.is_some() {
            self.shared.logged.set(true);
        }
        let flushed = shard.flushes != flushes;
        let modified = || {
            written
                .iter()
                .filter(move |&&i| Some(i) != unchanged)
                .filter_map(|&i| args.get(i))
        };
        let db = self.db;
        if changed && !holding && !shard.watched.is_empty() {
            for key in modified() {
                shard.watched.touch(db, key);
            }
        }
        let events = if holding || shard.events.is_empty() {
            Vec::new()
        } else {
            std::mem::take(&mut shard.events)
        };
        let flags = shard.notify_flags;
        drop(shard);
        if changed && holding {
            let mut held = self.shared.held.borrow_mut();
            for key in modified() {
                held.touched.push((db, key.clone()));
            }
        }
        if !events.is_empty() {
            core.publish_events(events, flags);
        }
        // Keys the script wrote are invalid in their readers' caches (not the caller's own
        // with NOLOOP), as after any command.
        if flushed || changed && core.tracking.borrow().in_use() {
            let writer = self.shared.tracker.map(|t| Caller {
                who: t.who,
                remember: false,
            });
            core.track_command(cmd, args, writer, changed, unchanged, flushed);
        }
        reply
    }

    /// Keeps a copy of every key `cmd` may write, as it is before the run first writes it.
    fn save_undo(&mut self, cmd: &Command, args: &[Bytes], written: &[usize]) {
        let mut keys: Vec<(usize, Bytes)> = written
            .iter()
            .filter_map(|&i| args.get(i))
            .map(|k| (self.db, k.clone()))
            .collect();
        // Keys in another database that the key specs do not name.
        let db_arg = |a: &Bytes| shardis_engine::num::parse_i64(a).map(|n| n as usize);
        match cmd.name.as_str() {
            "move" => {
                if let (Some(key), Some(db)) = (args.get(1), args.get(2).and_then(db_arg)) {
                    keys.push((db, key.clone()));
                }
            }
            "copy" => {
                let target = args
                    .iter()
                    .position(|a| a.eq_ignore_ascii_case(b"db"))
                    .and_then(|i| args.get(i + 1))
                    .and_then(db_arg);
                if let (Some(dst), Some(db)) = (args.get(2), target) {
                    keys.push((db, dst.clone()));
                }
            }
            _ => {}
        }
        let core = &self.shared.core;
        let mut held = self.shared.held.borrow_mut();
        for (db, key) in keys {
            if held.undo.contains_key(&(db, key.clone())) {
                continue;
            }
            let entry = core
                .shard
                .borrow_mut()
                .export(db, std::slice::from_ref(&key), self.start_ms)
                .pop()
                .flatten();
            held.undo.insert((db, key), entry);
        }
    }

    /// Runtime commands (PING, SELECT, INFO…) as the script's client.
    fn server(
        &mut self,
        which: ServerCmd,
        cmd: &'static Command,
        args: Vec<Bytes>,
    ) -> Result<Reply, String> {
        match which {
            ServerCmd::Ping => Ok(match args.get(1) {
                Some(msg) => Reply::Bulk(msg.clone()),
                None => Reply::simple("PONG"),
            }),
            ServerCmd::Echo => Ok(Reply::Bulk(args[1].clone())),
            ServerCmd::Select => {
                let databases = self.shared.core.shard.borrow().dbs.len();
                Ok(match shardis_engine::num::parse_i64(&args[1]) {
                    None => Reply::err("ERR value is not an integer or out of range"),
                    Some(n) if n < 0 || n as usize >= databases => {
                        Reply::err("ERR DB index is out of range")
                    }
                    Some(n) => {
                        self.db = n as usize;
                        Reply::Ok
                    }
                })
            }
            // Commands over data of every shard, or with effects that cannot be undone:
            // an optimistic run must not do them.
            ServerCmd::Scan | ServerCmd::RandomKey | ServerCmd::Publish | ServerCmd::SPublish
                if self.shared.optimistic && self.shared.core.shards > 1 =>
            {
                self.escape()
            }
            _ => Ok(self.remote(cmd, args)),
        }
    }

    /// A command the driver carries out (another shard, several shards, or a runtime
    /// command that waits), under this run's lock.
    fn remote(&mut self, cmd: &'static Command, args: Vec<Bytes>) -> Reply {
        let core = &self.shared.core;
        let lone = route::lone_shard(cmd, &args, core.shards, core.id).filter(|&s| s != core.id);
        match self.suspend(Suspend::Call {
            lone,
            cmd,
            args,
            db: self.db,
            resp3: self.resp3,
        }) {
            Resume::Reply(r) => r,
            Resume::Go => Reply::Nil,
        }
    }

    fn run_command(&mut self, cmd: &'static Command, args: Vec<Bytes>) -> Result<Reply, String> {
        if cmd.flags.has(Flags::READONLY) {
            self.shared.remember_declared_keys();
        }
        match cmd.exec {
            Exec::Server(which) => self.server(which, cmd, args),
            Exec::Shard(f) => {
                if cmd.flags.has(Flags::BLOCKING) && cmd.may_block(&args) {
                    // Only XREAD/XREADGROUP can block without being refused to scripts.
                    return Ok(Reply::error(format!(
                        "ERR {} command is not allowed with BLOCK option from scripts",
                        String::from_utf8_lossy(&args[0])
                    )));
                }
                let core = self.shared.core.clone();
                if core.shards <= 1 {
                    return Ok(self.local(cmd, f, &args));
                }
                let here = !matches!(cmd.fanout, Fanout::AllShards(_))
                    && route::single_shard(cmd, &args, core.shards, core.id) == Some(core.id)
                    && self.extra_keys_local(cmd, &args);
                if here {
                    Ok(self.local(cmd, f, &args))
                } else if self.shared.optimistic {
                    self.escape()
                } else {
                    Ok(self.remote(cmd, args))
                }
            }
        }
    }

    /// The checks a script's command passes before it runs (Redis's `scriptCall`): `Err` is
    /// the refusal, in the form of [`Host::call`]'s errors.
    fn admit(&self, cmd: &'static Command, args: &[Bytes]) -> Result<(), String> {
        if cmd.flags.has(Flags::NOSCRIPT) && !self.shared.core.debug.scripts_unrestricted.get() {
            return Err("This Redis command is not allowed from script".into());
        }
        if let Some(caller) = &self.shared.caller {
            acl::admit_script(&self.shared.core, caller, cmd, args)?;
        }
        if self.read_only && (cmd.flags.has(Flags::WRITE) || cmd.flags.has(Flags::MAY_REPLICATE)) {
            return Err("Write commands are not allowed from read-only scripts.".into());
        }
        // A read-only replica (the primary's stream carries no scripts, only their effects).
        if cmd.flags.has(Flags::WRITE) && crate::replica::refuses_writes() {
            return Err(format!("-{}", crate::replica::READONLY_ERR));
        }
        // Too few good replicas: refused until the script has written (it cannot stop half
        // way then), as Redis checks a script's writes.
        if cmd.flags.has(Flags::WRITE)
            && !self.shared.info.dirty.get()
            && crate::primary::too_few_replicas()
        {
            return Err(format!("-{}", crate::primary::NOREPLICAS));
        }
        if self.shared.out_of_memory
            && !self.shared.info.dirty.get()
            && cmd.flags.has(Flags::DENYOOM)
        {
            return Err(format!("-{}", memory::OOM_ERROR));
        }
        Ok(())
    }

    /// In cluster mode, whether the node serves the keys of `cmd` and, unless the script
    /// may cross slots, whether they are in the slot its calls (or declared keys) used.
    fn admit_in_cluster(&mut self, cmd: &Command, args: &[Bytes]) -> Result<(), &'static str> {
        let Some(rules) = self.shared.cluster.as_ref() else {
            return Ok(());
        };
        let Some(slot) = rules.admit(cmd, args, &mut self.keys)? else {
            return Ok(());
        };
        if rules.cross_slot {
            return Ok(());
        }
        match self.slot {
            Some(s) if s != slot => {
                Err("Script attempted to access keys that do not hash to the same slot")
            }
            _ => {
                self.slot = Some(slot);
                Ok(())
            }
        }
    }

    /// A command refused to the script: counted as the command's rejection and as an error
    /// reply, as Redis counts it (the script's error reply made of it is not counted again).
    fn refuse(&self, cmd: Option<&Command>, err: String) -> Result<Reply, String> {
        let text = match err.strip_prefix('-') {
            Some(coded) => coded.to_string(),
            None => format!("ERR {err}"),
        };
        self.shared.core.record_rejected(cmd, &Reply::error(text));
        Err(err)
    }

    /// Whether the keys only the data names (SORT's BY/GET patterns) are on this shard too.
    fn extra_keys_local(&self, cmd: &Command, args: &[Bytes]) -> bool {
        let Some(finder) = cmd.key_finder else {
            return true;
        };
        let core = &self.shared.core;
        let extra = {
            let mut shard = core.shard.borrow_mut();
            finder(
                &mut Ctx::new(&mut shard, self.db, self.start_ms, self.resp3),
                args,
            )
        };
        extra
            .iter()
            .all(|k| route::shard_of(k, core.shards) == core.id)
    }
}

impl Host for RunCtx {
    fn call(&mut self, args: Vec<Bytes>) -> Result<Reply, String> {
        if self.doomed() {
            return Err(self.check().err().unwrap_or_else(|| ESCAPED.into()));
        }
        let cmd = match REGISTRY.lookup(&args) {
            Ok(cmd) => cmd,
            Err(Reply::Error(e)) if e.starts_with("ERR unknown") => {
                return self.refuse(None, "Unknown Redis command called from script".into())
            }
            Err(_) => {
                return self.refuse(
                    None,
                    "Wrong number of args calling Redis command from script".into(),
                )
            }
        };
        if let Err(e) = self.admit(cmd, &args) {
            return self.refuse(Some(cmd), e);
        }
        if let Err(e) = self.admit_in_cluster(cmd, &args) {
            return self.refuse(Some(cmd), e.into());
        }
        if cmd.flags.has(Flags::WRITE) {
            self.shared.info.dirty.set(true);
        }
        let monitored = crate::core::monitored(cmd);
        let argv = args.clone();
        let started = std::time::Instant::now();
        let reply = self.run_command(cmd, args)?;
        if !self.shared.escaped.get() {
            // A call of the script's, in INFO commandstats and the slow log as in Redis.
            let core = &self.shared.core;
            core.record_call(cmd, &argv, SCRIPT, started.elapsed(), &reply);
            if monitored {
                self.monitor(&argv);
            }
        }
        Ok(reply)
    }

    fn acl_allows(&self, cmd: &Command, args: &[Bytes]) -> bool {
        self.shared
            .caller
            .as_ref()
            .is_none_or(|caller| acl::script_allows(caller, cmd, args))
    }

    fn resp3(&self) -> bool {
        self.resp3
    }

    fn set_resp3(&mut self, resp3: bool) {
        self.resp3 = resp3;
    }

    fn set_repl(&mut self, _flags: u8) {
        // Scripts replicate by their effects; with no replica or log to send them to, the
        // choice has nothing to act on.
    }

    fn check(&mut self) -> Result<(), String> {
        let info = self.shared.info.clone();
        if self.shared.escaped.get() {
            return Err(ESCAPED.into());
        }
        if info.killed.get() {
            return Err(KILLED.into());
        }
        let elapsed = info.started.elapsed().as_millis() as u64;
        if self.shared.threshold_ms > 0 && !info.busy.get() && elapsed >= self.shared.threshold_ms {
            info.busy.set(true);
            tracing::warn!(
                "Slow script detected: still in execution after {elapsed} milliseconds. You can try killing the script using the {} command. Script name is: {}.",
                if info.eval { "SCRIPT KILL" } else { "FUNCTION KILL" },
                info.name
            );
            busy::announce(
                &self.shared.core,
                BusyScript {
                    id: info.id,
                    eval: info.eval,
                    shard: self.shared.busy_shard,
                },
                true,
            );
        }
        self.suspend(Suspend::Slice);
        if info.killed.get() {
            tracing::warn!("Lua script killed by user with SCRIPT KILL.");
            return Err(KILLED.into());
        }
        Ok(())
    }

    fn doomed(&self) -> bool {
        self.shared.escaped.get() || self.shared.info.killed.get()
    }

    fn error_counted(&mut self) {
        self.shared.error_counted.set(true);
    }
}

/// Keeps a coroutine from being unwound through Lua's C frames if its task is dropped before
/// it finished (only at shutdown): it is then abandoned instead.
struct Guarded(Option<Coroutine<Resume, Suspend, Reply, DefaultStack>>);

impl Drop for Guarded {
    fn drop(&mut self) {
        if let Some(mut co) = self.0.take() {
            if !co.done() {
                // SAFETY: abandoning the coroutine's stack without running its destructors
                // leaks what is on it, which is all this does.
                unsafe { co.force_reset() };
                std::mem::forget(co);
            }
        }
    }
}

/// Runs `job` on this core in `mode`.
pub async fn run(core: &Rc<Core>, job: &Job, mode: Mode) -> Outcome {
    // An optimistic run needs its shard to itself: with the lock idle it takes it lazily
    // (nothing else runs here until it first switches back), otherwise it waits its turn.
    let mut owned_tx = None;
    if mode == Mode::Optimistic && !core.lock_idle() {
        let tx = core.next_tx();
        let (granted, rx) = core.answer_channel();
        core.acquire(tx, Intents::All, vec![core.id as u32], granted);
        let _ = rx.await;
        owned_tx = Some(tx);
    }
    run_with(core, job, mode, owned_tx).await
}

async fn run_with(core: &Rc<Core>, job: &Job, mode: Mode, owned_tx: Option<TxId>) -> Outcome {
    let flavor = if job.eval() {
        Flavor::Eval
    } else {
        Flavor::Functions
    };
    let release = |tx: Option<TxId>| {
        if let Some(tx) = tx {
            core.release(tx);
        }
    };
    let Some(vm) = state::with(|s| s.vm(flavor)) else {
        release(owned_tx);
        return Outcome::Done(
            Reply::err("ERR Failed to create the Lua interpreter"),
            false,
        );
    };
    // Another run of this core never holds the interpreter here (it would hold this shard's
    // lock); wait out any that does, defensively.
    while vm.try_borrow_mut().is_err() {
        futures_lite::future::yield_now().await;
    }
    let reference = match &job.kind {
        Kind::Eval { sha, script } => {
            let compiled = {
                let mut vm = vm.borrow_mut();
                if vm.has_script(sha) {
                    Ok(())
                } else {
                    vm.compile_script(sha, script.code())
                }
            };
            if let Err(e) = compiled {
                release(owned_tx);
                return Outcome::Done(Reply::error(format!("ERR {e}")), false);
            }
            super::commands::remember_script(core, sha, script);
            0
        }
        Kind::Function { name } => {
            let found = state::with(|s| functions::sync(s, &mut vm.borrow_mut(), name));
            match found {
                Some(r) => r,
                None => {
                    release(owned_tx);
                    return Outcome::Done(Reply::err("ERR Function not found"), false);
                }
            }
        }
    };
    let (threshold_ms, id) = {
        let threshold = core.config.borrow().get_i64("busy-reply-threshold").max(0) as u64;
        let id = state::with(|s| s.next_run_id(core.id, core.shards));
        (threshold, id)
    };
    let info = Rc::new(RunInfo {
        id,
        eval: job.eval(),
        name: job.name().to_string(),
        command: job.caller_argv.clone(),
        started: Instant::now(),
        dirty: Cell::new(false),
        killed: Cell::new(false),
        busy: Cell::new(false),
    });
    state::with(|s| s.active = Some(info.clone()));
    let optimistic = mode == Mode::Optimistic;
    // Makes room first, as before any command (it may evict).
    let out_of_memory = !job.allow_oom && memory::out_of_memory(core);
    let shared = Rc::new(Shared {
        core: core.clone(),
        info: info.clone(),
        optimistic,
        tx: Cell::new(match mode {
            Mode::Locked(tx) => Some(tx),
            Mode::Optimistic => owned_tx,
        }),
        journal_tx: match mode {
            Mode::Locked(tx) => tx,
            Mode::Optimistic => owned_tx.unwrap_or_else(|| core.next_tx()),
        },
        logged: Cell::new(false),
        escaped: Cell::new(false),
        held: RefCell::new(Held::default()),
        dirty_at_start: core.shard.borrow().dirty,
        threshold_ms,
        busy_shard: job.shard,
        caller: job.caller.clone(),
        tracker: job.tracker,
        declared: job.keys.clone(),
        cluster: job.cluster.clone(),
        remembered: Cell::new(false),
        out_of_memory,
        error_counted: Cell::new(false),
    });
    // MONITOR shows the caller's command before the script's.
    if core.pubsub.borrow().has_monitors() {
        if shared.holding_back() {
            shared.held.borrow_mut().monitor.push((
                job.caller_addr.clone(),
                job.db,
                job.caller_argv.clone(),
            ));
        } else {
            core.feed_monitors(&job.caller_addr, job.db, &job.caller_argv);
        }
    }
    let reply = drive(core, job, &shared, vm, reference).await;
    state::with(|s| s.active = None);
    if info.busy.get() {
        busy::announce(
            core,
            BusyScript {
                id: info.id,
                eval: info.eval,
                shard: job.shard,
            },
            false,
        );
    }
    let held = std::mem::take(&mut *shared.held.borrow_mut());
    let taken = if optimistic { shared.tx.get() } else { None };
    let escaped = shared.escaped.get();
    if escaped {
        undo(core, held, shared.dirty_at_start, shared.journal_tx);
    } else if optimistic {
        commit(core, held);
    }
    // The end of the run's records: logged by the release of its lock, or here when an
    // optimistic run never took it.
    if optimistic && taken.is_none() && shared.logged.get() {
        if let Some(j) = &mut core.shard.borrow_mut().journal {
            j.tx_end(shared.journal_tx, vec![core.id as u32]);
        }
    }
    release(taken);
    if escaped {
        return Outcome::Escaped;
    }
    Outcome::Done(reply, shared.error_counted.get())
}

/// Runs the script on its stack until it returns, carrying out what it waits for.
async fn drive(
    core: &Rc<Core>,
    job: &Job,
    shared: &Rc<Shared>,
    vm: state::SharedVm,
    reference: i32,
) -> Reply {
    let Some(stack) = take_stack() else {
        return Reply::err("ERR Failed to allocate the script's stack");
    };
    let start_ms = core.now_ms();
    let mut ctx = RunCtx {
        shared: shared.clone(),
        yielder: std::ptr::null(),
        db: job.db,
        resp3: false,
        read_only: job.read_only,
        start_ms,
        slot: job.cluster.as_ref().and_then(|c| c.slot),
        keys: Vec::new(),
    };
    let kind = job.kind.clone();
    let keys = job.keys.clone();
    let args = job.args.clone();
    let co = Coroutine::with_stack(
        stack,
        move |yielder: &Yielder<Resume, Suspend>, _: Resume| {
            ctx.yielder = yielder;
            let mut vm = vm.borrow_mut();
            match &kind {
                Kind::Eval { sha, .. } => vm.run_script(&mut ctx, sha, &keys, &args, true),
                Kind::Function { name } => {
                    vm.run_function(&mut ctx, name, reference, &keys, &args, true)
                }
            }
        },
    );
    let mut co = Guarded(Some(co));
    let mut input = Resume::Go;
    // The script's clock, for its calls on other shards and this core's active expiry, from
    // when it holds a transaction (its first switch back, or from the start when locked).
    let mut frozen = None;
    let reply = loop {
        let Some(coroutine) = co.0.as_mut() else {
            break Reply::err("ERR script stopped");
        };
        match coroutine.resume(input) {
            CoroutineResult::Yield(what) => {
                hold_shard(core, shared);
                if frozen.is_none() {
                    frozen = shared.tx.get().map(|tx| core.freeze_clock(tx, start_ms));
                }
                input = match what {
                    Suspend::Slice => {
                        futures_lite::future::yield_now().await;
                        Resume::Go
                    }
                    Suspend::Call {
                        lone,
                        cmd,
                        args,
                        db,
                        resp3,
                    } => Resume::Reply(match lone {
                        Some(shard) => {
                            hop(core, shared.tx.get(), shard, cmd, args, db, resp3).await
                        }
                        None => perform(core, shared, cmd, args, db, resp3).await,
                    }),
                };
            }
            CoroutineResult::Return(reply) => break reply,
        }
    };
    if let Some(coroutine) = co.0.take() {
        if coroutine.done() {
            give_stack(coroutine.into_stack());
        } else {
            co.0 = Some(coroutine);
        }
    }
    reply
}

/// Before an optimistic run first lets others run: takes its shard's lock (free, as nothing
/// ran since the run began), and keeps its notifications away from other commands'.
fn hold_shard(core: &Rc<Core>, shared: &Rc<Shared>) {
    if !shared.optimistic {
        return;
    }
    if shared.tx.get().is_none() {
        let tx = shared.journal_tx;
        let (granted, _rx) = core.answer_channel();
        core.acquire(tx, Intents::All, vec![core.id as u32], granted);
        shared.tx.set(Some(tx));
    }
    let events = std::mem::take(&mut core.shard.borrow_mut().events);
    shared.held.borrow_mut().events.extend(events);
}

/// Runs a plain command on the one other shard its keys are on, under the run's lock: a
/// one-request batch, flagged as a script's, with none of a client's session around it (the
/// part of a cross-shard script's time that is not the round trip itself).
async fn hop(
    core: &Rc<Core>,
    tx: Option<TxId>,
    shard: usize,
    cmd: &'static Command,
    args: Vec<Bytes>,
    db: usize,
    resp3: bool,
) -> Reply {
    let request = Request {
        cmd,
        args,
        db,
        resp3,
        track: None,
        client: 0,
    };
    core.send_batch_as(shard, vec![request], tx, LockStep::None, true)
        .replies()
        .await
        .and_then(|mut r| r.pop())
        .unwrap_or_else(|| Reply::err("ERR shard did not answer"))
}

/// Carries out a command for the script as its client would, under the run's lock.
async fn perform(
    core: &Rc<Core>,
    shared: &Shared,
    cmd: &'static Command,
    args: Vec<Bytes>,
    db: usize,
    resp3: bool,
) -> Reply {
    // The command passed its caller's ACL rules in `call`; the client carrying it out may run
    // anything (as Redis's script client once the check is done).
    let user = core.acl.borrow().default_user().clone();
    let mut client = Client::new(
        (0, ConnRef(u64::MAX)),
        -1,
        "lua".into(),
        String::new(),
        core.now_ms(),
        user,
        true,
    );
    client.db = db;
    client.resp3 = resp3;
    let mut session = Session::new(
        core.clone(),
        ConnRef(u64::MAX),
        Rc::new(RefCell::new(client)),
    );
    session.tx = shared.tx.get();
    // Its PUBLISHes go with its records on its own shard, which it holds (a locked run
    // holds every shard and runs where most of its declared keys are).
    session.publish_within = Some((shared.journal_tx, core.id));
    // Blocking commands run as their non-blocking form, as inside EXEC.
    session.in_exec = true;
    session.from_script = true;
    // WAIT inside a script counts acknowledgements of the stream's position now.
    session.client.borrow_mut().woff = crate::primary::Woff::Wrote {
        base: 0,
        feeds: Vec::new(),
        awaiting: Vec::new(),
        anywhere: true,
    };
    dispatch::run(&mut session, cmd, args)
        .await
        .unwrap_or(Reply::Nil)
}

/// An optimistic run stays: its held-back effects take place.
fn commit(core: &Rc<Core>, held: Held) {
    let (events, flags) = {
        let mut shard = core.shard.borrow_mut();
        for (db, key) in &held.touched {
            shard.watched.touch(*db, key);
        }
        let mut events = held.events;
        events.append(&mut shard.events);
        (events, shard.notify_flags)
    };
    if !events.is_empty() {
        core.publish_events(events, flags);
    }
    for (addr, db, args) in &held.monitor {
        core.feed_monitors(addr, *db, args);
    }
    crate::core::waiters::serve_ready(core);
}

/// An optimistic run is abandoned: every key it wrote gets its copy back. Only expirations
/// it caused are still reported (those keys are gone whatever happens).
fn undo(core: &Rc<Core>, held: Held, dirty_at_start: u64, tx: TxId) {
    let (events, flags) = {
        let mut shard = core.shard.borrow_mut();
        for ((db, key), entry) in held.undo {
            // The run's writes were logged: so is their undoing, in the same transaction.
            if let Some(j) = &mut shard.journal {
                let outer = std::mem::replace(&mut j.tx, tx);
                j.state(db, &key, entry.as_ref());
                j.tx = outer;
            }
            if let Some(d) = shard.dbs.get_mut(db) {
                match entry {
                    Some(entry) => d.insert_record(&key, entry),
                    None => {
                        d.remove(&key);
                    }
                }
            }
        }
        shard.dirty = dirty_at_start;
        let mut events = held.events;
        events.append(&mut shard.events);
        events.retain(|e| e.name == "expired");
        (events, shard.notify_flags)
    };
    if !events.is_empty() {
        core.publish_events(events, flags);
    }
}
