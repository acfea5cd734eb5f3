//! One core: its shard, configuration, clients, clock, timers and its end of the mesh, and the
//! execution of commands on its shard (inline for its own connections, in batches for other
//! cores' connections and for transactions).
//!
//! Nothing here is shared with other cores; they talk only through [`mesh`] messages, and an
//! answer to a task always travels back to the task's own core before its waker runs, so a
//! waker never crosses cores.

pub mod calls;
pub mod client;
pub mod client_eviction;
pub mod counters;
pub mod latency;
pub mod memory;
pub mod mesh;
pub mod pause;
pub mod pubsub;
pub mod rates;
pub mod shard_lock;
pub mod spawn;
pub mod stopwatch;
pub mod timer;
pub mod tracking;
pub mod waiters;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_channel::oneshot;
use shardis_engine::{Command, Ctx, Exec, Shard};
use shardis_resp::{encode, Reply};

use crate::config::Config;
use client::ClientHandle;
use shard_lock::{LockStep, LockTable, TxId, WatchedKey};
use timer::{Sleep, Timers};
use waiters::Waiters;

/// One command bound for a shard, owned (tasks and waiters keep it across awaits).
#[derive(Clone)]
pub struct Request {
    pub cmd: &'static Command,
    pub args: Vec<Bytes>,
    pub db: usize,
    pub resp3: bool,
    /// The client, when it tracks keys (client-side caching, see `tracking`).
    pub track: Option<tracking::Caller>,
    /// The client whose call this is, recorded as one (see `calls`); 0 for a part of a
    /// command over several shards.
    pub client: u64,
}

/// The most keys of a batch, or of a connection's buffered pipeline, whose table entries
/// are prefetched before they run (`Shard::prefetch`): a pipeline's worth, few enough that
/// the first lines are still cached when their commands run.
pub const PREFETCHED: usize = 64;

/// Work sent to another core, run there with that core's state.
pub type Task = Box<dyn FnOnce(&Rc<Core>) + Send>;

/// A mesh message.
pub enum Msg {
    /// Commands for this core's shard, run back to back.
    Batch(Box<Batch>),
    /// A batch of this core's connections, run, with its replies encoded (the answer to a
    /// `Batch` of theirs). It comes back whole so that the sender reuses its buffers and drops
    /// the requests' arguments itself: they are views of its connections' input buffers, whose
    /// reference counts and memory then never leave its core.
    Replies(Box<Batch>),
    /// Pub/Sub messages for this core's connections.
    Deliver(Vec<pubsub::Delivery>),
    /// Anything else: runs on the receiving core.
    Run(Task),
}

/// A connection of the sending core, as the event loop names it (opaque here).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnRef(pub u64);

/// One request of a batch; its arguments are the batch's next `argc` arguments.
pub struct Req {
    pub cmd: &'static Command,
    pub db: usize,
    pub resp3: bool,
    pub track: Option<tracking::Caller>,
    pub client: u64,
    pub argc: usize,
}

/// What a recycled batch keeps of each of its buffers, in bytes.
pub const KEEP_BATCH_CAPACITY: usize = 16 * 1024;

/// Where a batch's replies go.
pub enum BatchReply {
    /// To connections of core `origin`, encoded: the batch goes back to it once run.
    Conns {
        /// The shard the batch is for.
        to: usize,
        conns: Vec<ConnRef>,
        out: Vec<u8>,
        /// End offset in `out` of each request's reply.
        ends: Vec<usize>,
        /// When the batch left its core (for the round trip `counters::Forwarding` records).
        sent: Option<Instant>,
        /// The shard's next delivery to the replication hub when the batch finished: the
        /// records its commands logged go out with it or an earlier one (WAIT's target).
        fed: u64,
    },
    /// To a task of core `origin`, as values; None when a watched key changed (nothing ran).
    Task {
        replies: Vec<Reply>,
        answer: Answer<Option<Vec<Reply>>>,
    },
}

/// Commands for one shard, run back to back (so a batch is atomic on its shard) unless a lock
/// holder parks it part way; a parked batch resumes where it stopped.
pub struct Batch {
    pub origin: usize,
    pub reqs: Vec<Req>,
    /// The requests' arguments, back to back.
    pub args: Vec<Bytes>,
    /// Requests already run, and where the next one's arguments start.
    pub next: usize,
    pub next_arg: usize,
    pub reply: BatchReply,
    /// The transaction on whose behalf it runs (it holds this shard's lock).
    pub tx: Option<TxId>,
    /// All or nothing with respect to a lock holder (a single-shard MULTI).
    pub atomic: bool,
    /// Watched keys to check before anything runs.
    pub watch: Vec<WatchedKey>,
    /// A lock step fused with the batch, saving a round trip per shard.
    pub lock: LockStep,
    /// Calls of a script: they run as a script's (a reply whose order would depend on a set's
    /// layout is sorted, as for the script's own shard).
    pub from_script: bool,
    /// The clock the batch's commands judge time by (expiry, TTLs), when they are a
    /// script's calls: the script's, which stands still while it runs (see
    /// [`Core::freeze_clock`]).
    pub clock: Option<u64>,
}

impl Batch {
    /// An empty batch from core `origin` for shard `to` whose replies go to that core's
    /// connections.
    pub fn for_conns(origin: usize, to: usize) -> Batch {
        Batch::new(
            origin,
            BatchReply::Conns {
                to,
                conns: Vec::new(),
                out: Vec::new(),
                ends: Vec::new(),
                sent: None,
                fed: 0,
            },
        )
    }

    /// A batch of `requests` whose replies go to a task of core `origin`.
    pub fn for_task(
        origin: usize,
        requests: Vec<Request>,
        answer: Answer<Option<Vec<Reply>>>,
    ) -> Batch {
        let mut batch = Batch::new(
            origin,
            BatchReply::Task {
                replies: Vec::with_capacity(requests.len()),
                answer,
            },
        );
        for r in requests {
            batch.push(r.cmd, r.args.into_iter(), r.db, r.resp3, r.track, r.client);
        }
        batch
    }

    fn new(origin: usize, reply: BatchReply) -> Batch {
        Batch {
            origin,
            reqs: Vec::new(),
            args: Vec::new(),
            next: 0,
            next_arg: 0,
            reply,
            tx: None,
            atomic: false,
            watch: Vec::new(),
            lock: LockStep::None,
            from_script: false,
            clock: None,
        }
    }

    /// Appends a request, taking its arguments (moved, not cloned: a clone and the drop of
    /// the original would each touch the shared count of the buffer they view).
    pub fn push(
        &mut self,
        cmd: &'static Command,
        args: impl ExactSizeIterator<Item = Bytes>,
        db: usize,
        resp3: bool,
        track: Option<tracking::Caller>,
        client: u64,
    ) {
        self.reqs.push(Req {
            cmd,
            db,
            resp3,
            track,
            client,
            argc: args.len(),
        });
        self.args.extend(args);
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Empties a batch of connections' requests that came back, for shard `to`, keeping its
    /// buffers (up to [`KEEP_BATCH_CAPACITY`] bytes of replies and as many arguments): a
    /// core's forwarding then allocates nothing once its batches have grown.
    pub fn recycle(&mut self, shard: usize) {
        self.reqs.clear();
        self.args.clear();
        self.args
            .shrink_to(KEEP_BATCH_CAPACITY / size_of::<Bytes>());
        self.reqs.shrink_to(KEEP_BATCH_CAPACITY / size_of::<Req>());
        self.next = 0;
        self.next_arg = 0;
        self.tx = None;
        self.atomic = false;
        self.watch.clear();
        self.lock = LockStep::None;
        self.from_script = false;
        self.clock = None;
        match &mut self.reply {
            BatchReply::Conns {
                to,
                conns,
                out,
                ends,
                sent,
                fed,
            } => {
                *to = shard;
                *fed = 0;
                conns.clear();
                ends.clear();
                out.clear();
                out.shrink_to(KEEP_BATCH_CAPACITY);
                conns.shrink_to(KEEP_BATCH_CAPACITY / size_of::<ConnRef>());
                ends.shrink_to(KEEP_BATCH_CAPACITY / size_of::<usize>());
                *sent = None;
            }
            BatchReply::Task { .. } => {}
        }
    }

    /// The next request to run and its arguments.
    pub fn peek(&self) -> Option<(&Req, &[Bytes])> {
        let req = self.reqs.get(self.next)?;
        let args = self.args.get(self.next_arg..self.next_arg + req.argc)?;
        Some((req, args))
    }

    /// Records the reply of the request [`Batch::peek`] gave and moves on.
    pub fn record(&mut self, reply: Reply) {
        let (argc, resp3) = match self.reqs.get(self.next) {
            Some(r) => (r.argc, r.resp3),
            None => return,
        };
        self.next += 1;
        self.next_arg += argc;
        match &mut self.reply {
            BatchReply::Conns { out, ends, .. } => {
                encode(&reply, resp3, out);
                ends.push(out.len());
            }
            BatchReply::Task { replies, .. } => replies.push(reply),
        }
    }

    /// Every request of the batch, in order (for the checks an atomic batch makes up front).
    pub fn remaining(&self) -> impl Iterator<Item = (&Req, &[Bytes])> + Clone {
        let mut at = self.next_arg;
        self.reqs[self.next.min(self.reqs.len())..]
            .iter()
            .filter_map(move |r| {
                let args = self.args.get(at..at + r.argc)?;
                at += r.argc;
                Some((r, args))
            })
    }
}

/// A one-shot answer for a task of core `home`. It is always completed on that core, so the
/// task's waker never runs on another core.
pub struct Answer<T> {
    home: usize,
    tx: oneshot::Sender<T>,
}

/// The replies of a batch sent with [`Core::send_batch`].
pub struct BatchAnswer(oneshot::Receiver<Option<Vec<Reply>>>);

impl BatchAnswer {
    /// The replies in request order; None when a watched key changed or the shard stopped.
    pub async fn replies(self) -> Option<Vec<Reply>> {
        self.0.await.ok().flatten()
    }
}

/// Counters of one core, summed by INFO.
#[derive(Default, Clone, Copy, Debug)]
pub struct CoreStats {
    pub connections_received: u64,
    pub commands_processed: u64,
    pub net_input_bytes: u64,
    pub net_output_bytes: u64,
    pub rejected_connections: u64,
    /// Clients closed for exceeding `client-query-buffer-limit` or `client-output-buffer-limit`.
    pub client_qbuf_limit_disconnections: u64,
    pub client_outbuf_limit_disconnections: u64,
    /// Clients closed by client eviction (`maxmemory-clients`).
    pub evicted_clients: u64,
    /// `MSG_RING` wake-ups this core sent to sleeping cores, and the times it went to sleep
    /// itself (INFO shards: what cross-core work costs in kernel wake-ups).
    pub wakeups_sent: u64,
    pub sleeps: u64,
}

/// Set by SIGTERM/SIGINT or SHUTDOWN; every core polls it with its clock and stops.
static SHUTDOWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Asks every core to stop.
pub fn request_shutdown() {
    SHUTDOWN.store(true, std::sync::atomic::Ordering::SeqCst);
}

pub fn shutdown_requested() -> bool {
    SHUTDOWN.load(std::sync::atomic::Ordering::SeqCst)
}

/// Fills `buf` from the kernel's random source.
pub fn fill_random(buf: &mut [u8]) -> bool {
    let mut done = 0;
    while done < buf.len() {
        let rest = &mut buf[done..];
        // SAFETY: getrandom writes at most `rest.len()` bytes into the slice we own.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n <= 0 {
            return false;
        }
        done += n as usize;
    }
    true
}

/// Wall-clock milliseconds.
pub fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Appends `arg` double-quoted with C-style escapes, as Redis's `sdscatrepr`.
fn quote_repr(arg: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &c in arg {
        match c {
            b'\\' | b'"' => {
                out.push(b'\\');
                out.push(c);
            }
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(c),
            _ => out.extend_from_slice(format!("\\x{c:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

/// Whether MONITOR shows a command (Redis hides admin commands and those flagged so).
pub fn monitored(cmd: &Command) -> bool {
    use shardis_engine::command::Flags;
    !cmd.flags.has(Flags::ADMIN) && !cmd.flags.has(Flags::SKIP_MONITOR)
}

/// Everything one core owns.
pub struct Core {
    pub id: usize,
    pub shards: usize,
    pub shard: RefCell<Shard>,
    pub config: RefCell<Config>,
    pub clients: RefCell<BTreeMap<u64, ClientHandle>>,
    /// Clients blocked on this shard's keys.
    pub waiters: RefCell<Waiters>,
    /// This shard's lock (see `shard_lock`).
    pub lock: RefCell<LockTable>,
    pub stats: Cell<CoreStats>,
    /// INFO's `instantaneous_*` rates of this core (see `rates`).
    pub rates: RefCell<rates::Rates>,
    /// Requests forwarded to other cores and their batches' round trips.
    pub forwarding: counters::Forwarding,
    pub started: Instant,
    pub timers: Rc<Timers>,
    pub mesh: mesh::Mesh<Msg>,
    /// This core's part of the memory limit (see `memory`).
    pub memory: memory::Memory,
    /// This core's copy of the Pub/Sub registry, and deliveries waiting to leave.
    pub pubsub: RefCell<pubsub::PubSub>,
    /// Client-side caching: this shard's tracking table and this core's BCAST prefixes.
    pub tracking: RefCell<tracking::Table>,
    /// Command statistics, the slow log and latency events of what ran here, and the calls
    /// this core's connections sent (see `calls`).
    pub records: RefCell<calls::Records>,
    /// This core's copy of the ACL users (and, on core 0, the ACL log).
    pub acl: RefCell<crate::acl::Acl>,
    /// The TLS settings new TLS connections get (None while `tls-port` is 0). Every core
    /// holds the same `Arc`; CONFIG SET of a tls-* file replaces it on all of them.
    pub tls: RefCell<Option<std::sync::Arc<rustls::ServerConfig>>>,
    /// This core's copy of CLIENT PAUSE.
    pub pause: pause::Pause,
    /// Client eviction's count of this core's clients' memory.
    pub client_memory: client_eviction::ClientMemory,
    /// Listening sockets CONFIG SET port/bind opened, for the event loop to take over.
    pub new_listeners: Cell<Option<Vec<crate::io::listen::Listener>>>,
    /// The clock every command of a loop iteration sees (read once per iteration).
    now_ms: Cell<u64>,
    /// The clocks of the scripts running here, by their transaction.
    frozen_clocks: RefCell<Vec<(TxId, u64)>>,
    /// The clock of the script whose calls last ran here, with its transaction: while that
    /// transaction holds this shard, active expiry judges by it (see
    /// [`Core::expiry_clock`]).
    script_holder: Cell<Option<(TxId, u64)>>,
    next_client: Cell<u64>,
    /// A script's call is running (see [`Batch::from_script`]).
    script_call: Cell<bool>,
    /// Test hooks DEBUG sets on every core.
    pub debug: DebugSwitches,
}

/// The switches of DEBUG SET-ACTIVE-EXPIRE and SET-DISABLE-DENY-SCRIPTS, which Redis's own
/// tests use; each core keeps its copy (DEBUG sets them on every core).
#[derive(Default)]
pub struct DebugSwitches {
    /// The clock's active expiry is off (keys still expire when read).
    pub no_active_expire: Cell<bool>,
    /// Scripts may run commands flagged `noscript`.
    pub scripts_unrestricted: Cell<bool>,
}

/// A script's clock in force for its transaction's calls (see [`Core::freeze_clock`]).
pub struct FrozenClock<'a> {
    core: &'a Core,
    tx: TxId,
}

impl Drop for FrozenClock<'_> {
    fn drop(&mut self) {
        let mut clocks = self.core.frozen_clocks.borrow_mut();
        if let Some(i) = clocks.iter().position(|(t, _)| *t == self.tx) {
            clocks.swap_remove(i);
        }
    }
}

impl Core {
    pub fn new(mesh: mesh::Mesh<Msg>, shards: usize, config: Config) -> Core {
        let id = mesh.id();
        let mut shard = Shard::new(id, config.engine());
        shard.notify_flags = config.notify_flags();
        shard.seed(wall_ms() ^ ((id as u64) << 48) ^ std::process::id() as u64);
        let memory = memory::Memory::default();
        memory.configure(&config);
        let acl = crate::acl::Acl::new(&config.acl_users, config.acl_all_channels());
        Core {
            id,
            shards,
            shard: RefCell::new(shard),
            config: RefCell::new(config),
            clients: RefCell::new(BTreeMap::new()),
            waiters: RefCell::new(Waiters::default()),
            lock: RefCell::new(LockTable::default()),
            stats: Cell::new(CoreStats::default()),
            rates: RefCell::default(),
            forwarding: counters::Forwarding::default(),
            started: Instant::now(),
            timers: Rc::new(Timers::default()),
            mesh,
            memory,
            pubsub: RefCell::new(pubsub::PubSub::default()),
            tracking: RefCell::new(tracking::Table::new(wall_ms() ^ id as u64)),
            records: RefCell::new(calls::Records::default()),
            acl: RefCell::new(acl),
            tls: RefCell::new(None),
            pause: pause::Pause::default(),
            client_memory: Default::default(),
            new_listeners: Cell::new(None),
            now_ms: Cell::new(wall_ms()),
            frozen_clocks: RefCell::new(Vec::new()),
            script_holder: Cell::new(None),
            next_client: Cell::new(0),
            script_call: Cell::new(false),
            debug: DebugSwitches::default(),
        }
    }

    /// The clock of the current loop iteration, in milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.now_ms.get()
    }

    /// Reads the clock (once per loop iteration).
    pub fn tick_clock(&self) {
        self.now_ms.set(wall_ms());
    }

    /// Until the guard drops, what transaction `tx` sends to other shards judges time at
    /// `ms`: a script's calls there see the clock its own shard's calls see, which stands
    /// still while it runs (a key does not expire between two of its commands, as in Redis).
    /// Active expiry here does not pass it either.
    pub fn freeze_clock(&self, tx: TxId, ms: u64) -> FrozenClock<'_> {
        self.frozen_clocks.borrow_mut().push((tx, ms));
        FrozenClock { core: self, tx }
    }

    /// The clock transaction `tx` runs at, if it is a script's (see [`Core::freeze_clock`]).
    pub fn frozen_clock(&self, tx: Option<TxId>) -> Option<u64> {
        let tx = tx?;
        let clocks = self.frozen_clocks.borrow();
        clocks.iter().find(|(t, _)| *t == tx).map(|&(_, ms)| ms)
    }

    /// Runs `f` with this core's clock at `clock` (a script's, when set): everything `f`
    /// runs judges time by it.
    pub fn at_clock<R>(&self, clock: Option<u64>, f: impl FnOnce() -> R) -> R {
        let Some(ms) = clock else {
            return f();
        };
        let now = self.now_ms.replace(ms);
        let result = f();
        self.now_ms.set(now);
        result
    }

    /// A future completing after `d`.
    pub fn sleep(&self, d: Duration) -> Sleep {
        self.timers.sleep(d)
    }

    /// A new client id, unique across cores (ids interleave: core i hands out i+1, i+1+N…).
    pub fn next_client_id(&self) -> u64 {
        let n = self.next_client.get();
        self.next_client.set(n + 1);
        n * self.shards as u64 + self.id as u64 + 1
    }

    pub fn bump(&self, f: impl FnOnce(&mut CoreStats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }

    /// Runs a shard command on this core's shard (for `track`, a client tracking keys) as a
    /// call of `client` (0: a part of a bigger command, not recorded), then serves the
    /// clients blocked on keys it filled.
    pub fn execute(
        self: &Rc<Self>,
        cmd: &'static Command,
        args: &[Bytes],
        db: usize,
        resp3: bool,
        track: Option<tracking::Caller>,
        client: u64,
    ) -> Reply {
        self.execute_as(cmd, args, db, resp3, track, client, false)
    }

    /// [`Core::execute`], as a script's call when `from_script`.
    #[allow(clippy::too_many_arguments)]
    pub fn execute_as(
        self: &Rc<Self>,
        cmd: &'static Command,
        args: &[Bytes],
        db: usize,
        resp3: bool,
        track: Option<tracking::Caller>,
        client: u64,
        from_script: bool,
    ) -> Reply {
        self.script_call.set(from_script);
        let reply = self.execute_unserved(cmd, args, db, resp3, track, client);
        self.script_call.set(false);
        if !self.shard.borrow().ready_keys.is_empty() {
            waiters::serve_ready(self);
        }
        reply
    }

    /// Runs a shard command without serving blocked clients (used while serving them, and
    /// inside a transaction, which serves them once it is over). Under `maxmemory`, the shard
    /// first makes room, and a DENYOOM command finding none is refused.
    pub fn execute_unserved(
        self: &Rc<Self>,
        cmd: &'static Command,
        args: &[Bytes],
        db: usize,
        resp3: bool,
        track: Option<tracking::Caller>,
        client: u64,
    ) -> Reply {
        let Exec::Shard(f) = cmd.exec else {
            return Reply::err("ERR internal: not a shard command");
        };
        if let Some(refused) = memory::admit(self, cmd) {
            if client != 0 {
                self.record_rejected(Some(cmd), &refused);
            }
            return refused;
        }
        let started = stopwatch::Stopwatch::start();
        let (reply, wrote, unchanged, flushed) = self.with_ctx(db, resp3, |ctx| {
            ctx.shard.stats.commands_processed += 1;
            let (dirty, flushes) = (ctx.shard.dirty, ctx.shard.flushes);
            // The engine's write hook: logs the change when an append-only log is kept.
            let reply = shardis_engine::journal::execute(ctx, f, args);
            let wrote = ctx.shard.dirty != dirty;
            if wrote && !ctx.shard.watched.is_empty() {
                let mut idx = Vec::new();
                cmd.written_key_indexes(args, &mut idx);
                for i in idx.into_iter().filter(|&i| Some(i) != ctx.unchanged_key) {
                    if let Some(key) = args.get(i) {
                        ctx.shard.watched.touch(db, key);
                    }
                }
            }
            (
                reply,
                wrote,
                ctx.unchanged_key,
                ctx.shard.flushes != flushes,
            )
        });
        // A blocking command that found nothing is recorded once it is served.
        if !(cmd.flags.has(shardis_engine::command::Flags::BLOCKING) && waiters::is_null(&reply)) {
            self.record_call(cmd, args, client, started.elapsed(), &reply);
        }
        memory::after_command(self);
        // Client-side caching: keys read by a tracking client, keys written, flushes.
        if track.is_some() || wrote && self.tracking.borrow().in_use() || flushed {
            self.track_command(cmd, args, track, wrote, unchanged, flushed);
        }
        reply
    }

    /// Runs `f` with a command context on this core's shard, then publishes the keyspace
    /// events it reported.
    pub fn with_ctx<R>(&self, db: usize, resp3: bool, f: impl FnOnce(&mut Ctx<'_>) -> R) -> R {
        let mut shard = self.shard.borrow_mut();
        let mut ctx = Ctx::new(&mut shard, db, self.now_ms(), resp3);
        ctx.from_script = self.script_call.get();
        let result = f(&mut ctx);
        drop(shard);
        self.publish_reported();
        result
    }

    /// Publishes the keyspace events the shard reported since the last call (by commands,
    /// active expiry or eviction).
    pub fn publish_reported(&self) {
        let mut shard = self.shard.borrow_mut();
        if shard.events.is_empty() {
            return;
        }
        let events = std::mem::take(&mut shard.events);
        let flags = shard.notify_flags;
        drop(shard);
        self.track_events(&events);
        self.publish_events(events, flags);
    }

    /// Publishes keyspace events on `__keyspace@<db>__:<key>` and `__keyevent@<db>__:<event>`,
    /// as the notification flags ask.
    pub fn publish_events(&self, events: Vec<shardis_engine::notify::Event>, flags: u32) {
        use shardis_engine::notify::{self, KEYEVENT, KEYSPACE};
        let mut pubsub = self.pubsub.borrow_mut();
        if !pubsub.has_subscribers() {
            return;
        }
        // Events kept only for client-side caching are not published.
        let flags = flags & !notify::TRACKING;
        for e in events
            .into_iter()
            .filter(|e| notify::enabled(flags, e.class))
        {
            let event = Bytes::from_static(e.name.as_bytes());
            if flags & KEYSPACE != 0 {
                let mut channel = format!("__keyspace@{}__:", e.db).into_bytes();
                channel.extend_from_slice(&e.key);
                pubsub.publish(self.shards, &Bytes::from(channel), &event, false);
            }
            if flags & KEYEVENT != 0 {
                let channel = Bytes::from(format!("__keyevent@{}__:{}", e.db, e.name));
                pubsub.publish(self.shards, &channel, &e.key, false);
            }
        }
    }

    /// Describes a command to the MONITOR clients, in Redis's line format.
    pub fn feed_monitors(&self, addr: &str, db: usize, args: &[Bytes]) {
        let mut pubsub = self.pubsub.borrow_mut();
        if !pubsub.has_monitors() {
            return;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut line = format!(
            "+{}.{:06} [{} {}]",
            now.as_secs(),
            now.subsec_micros(),
            db,
            addr
        )
        .into_bytes();
        for arg in args {
            line.push(b' ');
            quote_repr(arg, &mut line);
        }
        line.extend_from_slice(b"\r\n");
        pubsub.feed_monitors(self.shards, Bytes::from(line));
    }

    /// Runs a request (owned form) with blocked clients served afterwards.
    pub fn execute_request(self: &Rc<Self>, req: &Request) -> Reply {
        self.execute(req.cmd, &req.args, req.db, req.resp3, req.track, req.client)
    }

    /// Sends a message to core `to`.
    pub fn send(&self, to: usize, msg: Msg) {
        self.mesh.send(to, msg);
    }

    /// Runs `task` on core `to` (directly when it is this core), without waiting.
    pub fn post(self: &Rc<Self>, to: usize, task: Task) {
        if to == self.id {
            task(self);
        } else {
            self.send(to, Msg::Run(task));
        }
    }

    /// A channel whose answer is completed on this core.
    pub fn answer_channel<T>(&self) -> (Answer<T>, oneshot::Receiver<T>) {
        let (tx, rx) = oneshot::channel();
        (Answer { home: self.id, tx }, rx)
    }

    /// Completes `answer` with `value` on its home core.
    pub fn answer<T: Send + 'static>(self: &Rc<Self>, answer: Answer<T>, value: T) {
        if answer.home == self.id {
            let _ = answer.tx.send(value);
        } else {
            let tx = answer.tx;
            self.send(
                answer.home,
                Msg::Run(Box::new(move |_| {
                    let _ = tx.send(value);
                })),
            );
        }
    }

    /// Runs `f` on core `shard` (directly when it is this core) and returns its result; None
    /// if that core has stopped.
    pub async fn run_on<R, F>(self: &Rc<Self>, shard: usize, f: F) -> Option<R>
    where
        R: Send + 'static,
        F: FnOnce(&Rc<Core>) -> R + Send + 'static,
    {
        if shard == self.id {
            return Some(f(self));
        }
        let (answer, rx) = self.answer_channel();
        self.send(
            shard,
            Msg::Run(Box::new(move |core| {
                let value = f(core);
                core.answer(answer, value);
            })),
        );
        rx.await.ok()
    }

    /// Runs `f` on every core, results in shard order.
    pub async fn broadcast<R, F>(self: &Rc<Self>, f: F) -> Vec<R>
    where
        R: Send + 'static,
        F: Fn(&Rc<Core>) -> R + Send + Clone + 'static,
    {
        let mut pending = Vec::with_capacity(self.shards);
        for shard in 0..self.shards {
            if shard != self.id {
                let f = f.clone();
                let (answer, rx) = self.answer_channel();
                self.send(
                    shard,
                    Msg::Run(Box::new(move |core| {
                        let value = f(core);
                        core.answer(answer, value);
                    })),
                );
                pending.push((shard, rx));
            }
        }
        let mut out: Vec<(usize, R)> = Vec::with_capacity(self.shards);
        out.push((self.id, f(self)));
        for (shard, rx) in pending {
            if let Ok(r) = rx.await {
                out.push((shard, r));
            }
        }
        out.sort_by_key(|(s, _)| *s);
        out.into_iter().map(|(_, r)| r).collect()
    }

    /// Sends `requests` to `shard` as one batch on behalf of transaction `tx` (if any) with a
    /// lock step fused to it, at once; the receiver gets the replies in order (None: a watched
    /// key changed, or the shard stopped).
    pub fn send_batch(
        self: &Rc<Self>,
        shard: usize,
        requests: Vec<Request>,
        tx: Option<TxId>,
        lock: LockStep,
    ) -> BatchAnswer {
        self.send_batch_as(shard, requests, tx, lock, false)
    }

    /// [`Core::send_batch`], as a script's calls when `from_script`.
    pub fn send_batch_as(
        self: &Rc<Self>,
        shard: usize,
        requests: Vec<Request>,
        tx: Option<TxId>,
        lock: LockStep,
        from_script: bool,
    ) -> BatchAnswer {
        let (answer, rx) = self.answer_channel();
        let mut batch = Batch::for_task(self.id, requests, answer);
        batch.tx = tx;
        batch.lock = lock;
        batch.from_script = from_script;
        batch.clock = self.frozen_clock(tx);
        self.submit_batch(shard, batch);
        BatchAnswer(rx)
    }

    /// Runs `batch` on `shard`: here when it is this core, else by message.
    pub fn submit_batch(self: &Rc<Self>, shard: usize, batch: Batch) {
        let batch = Box::new(batch);
        if shard == self.id {
            self.run_batch(batch);
        } else {
            self.send(shard, Msg::Batch(batch));
        }
    }

    /// Hands a finished batch's replies to where they go.
    fn finish_batch(self: &Rc<Self>, mut batch: Box<Batch>) {
        if let BatchReply::Conns { fed, .. } = &mut batch.reply {
            *fed = crate::primary::feed_seq(self.id);
        }
        match batch.reply {
            BatchReply::Conns { .. } => self.send(batch.origin, Msg::Replies(batch)),
            BatchReply::Task { replies, answer } => self.answer(answer, Some(replies)),
        }
    }

    /// Answers a batch whose watched keys changed: nothing ran.
    fn fail_batch(self: &Rc<Self>, batch: Box<Batch>) {
        match batch.reply {
            BatchReply::Task { answer, .. } => self.answer(answer, None),
            BatchReply::Conns { .. } => self.finish_batch(batch),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recycled_batch_keeps_its_buffers_and_drops_the_arguments() {
        let get = [Bytes::from_static(b"get"), Bytes::from_static(b"k")];
        let cmd = shardis_engine::lookup(&get).unwrap();
        // An argument viewing a connection's buffer: the batch moves it, no second reference.
        let input = Bytes::from(b"k".to_vec());
        let mut batch = Batch::for_conns(0, 1);
        batch.push(
            cmd,
            [get[0].clone(), input.clone()].into_iter(),
            0,
            false,
            None,
            7,
        );
        batch.push(cmd, get.clone().into_iter(), 0, false, None, 7);
        assert!(!input.is_unique(), "the batch holds the argument");
        let (req, args) = batch.peek().unwrap();
        assert_eq!((req.argc, &args[1][..]), (2, &b"k"[..]));
        batch.record(Reply::Bulk(Bytes::from_static(b"v")));
        batch.record(Reply::Nil);
        let BatchReply::Conns { out, ends, .. } = &batch.reply else {
            panic!("a batch of connections");
        };
        assert_eq!(
            (&out[..], &ends[..]),
            (&b"$1\r\nv\r\n$-1\r\n"[..], &[7, 12][..])
        );
        let out_capacity = out.capacity();
        batch.recycle(2);
        assert!(input.is_unique(), "recycling dropped the batch's reference");
        assert!(batch.is_empty() && batch.peek().is_none());
        assert_eq!((batch.next, batch.next_arg), (0, 0));
        let BatchReply::Conns { to, out, ends, .. } = &batch.reply else {
            panic!("still a batch of connections");
        };
        assert_eq!((*to, out.len(), ends.len()), (2, 0, 0));
        assert_eq!(out.capacity(), out_capacity, "the reply buffer is kept");
        assert!(batch.args.capacity() >= 4, "the argument slots are kept");
    }

    #[test]
    fn a_recycled_batch_gives_back_what_a_huge_one_grew() {
        let mut batch = Batch::for_conns(0, 1);
        if let BatchReply::Conns { out, .. } = &mut batch.reply {
            out.reserve(4 * KEEP_BATCH_CAPACITY);
        }
        batch.recycle(1);
        let BatchReply::Conns { out, .. } = &batch.reply else {
            panic!("a batch of connections");
        };
        assert!(out.capacity() <= KEEP_BATCH_CAPACITY);
    }
}
