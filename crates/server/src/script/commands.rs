//! The scripting commands: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, FCALL, FCALL_RO, SCRIPT
//! LOAD/EXISTS/FLUSH/KILL/HELP and FUNCTION LOAD/LIST/DELETE/FLUSH/DUMP/RESTORE/STATS/KILL/
//! HELP, with Redis 7.0's replies and errors.
//!
//! Where a script runs (see `run` for how): on the shard of its declared keys when they are
//! on one shard, or on the client's core when it has none, without any lock; under the lock
//! of every shard when its keys span shards, when it was seen reaching keys of other shards
//! before, or when it just did (it then runs again, locked); inside EXEC, under the
//! transaction's locks.

use std::rc::Rc;

use bytes::Bytes;
use shardis_engine::command::Flags;
use shardis_engine::{num, Command, Exec, ServerCmd};
use shardis_resp::Reply;

use super::cache::{normalize_sha, parse_shebang, Script};
use super::functions::{self, Libraries, Library};
use super::run::{self, Job, Kind, Mode, Outcome};
use super::state;
use super::vm::{Flavor, Vm};
use super::{busy, flags, roaming, sha1hex};
use crate::conn::session::Session;
use crate::coord::route;
use crate::core::{memory, spawn, Core};

/// Whether a runtime command is one of scripting's (they all run in the connection's task).
pub fn is_scripting(which: ServerCmd) -> bool {
    matches!(
        which,
        ServerCmd::Eval
            | ServerCmd::EvalSha
            | ServerCmd::EvalRo
            | ServerCmd::EvalShaRo
            | ServerCmd::Fcall
            | ServerCmd::FcallRo
            | ServerCmd::ScriptLoad
            | ServerCmd::ScriptExists
            | ServerCmd::ScriptFlush
            | ServerCmd::ScriptKill
            | ServerCmd::ScriptHelp
            | ServerCmd::FunctionLoad
            | ServerCmd::FunctionList
            | ServerCmd::FunctionDelete
            | ServerCmd::FunctionFlush
            | ServerCmd::FunctionDump
            | ServerCmd::FunctionRestore
            | ServerCmd::FunctionStats
            | ServerCmd::FunctionKill
            | ServerCmd::FunctionHelp
    )
}

/// Whether a runtime command runs a script (a transaction holding it must hold every shard).
pub fn runs_script(which: ServerCmd) -> bool {
    matches!(
        which,
        ServerCmd::Eval
            | ServerCmd::EvalSha
            | ServerCmd::EvalRo
            | ServerCmd::EvalShaRo
            | ServerCmd::Fcall
            | ServerCmd::FcallRo
    )
}

/// The flags a command runs with, a script's declared flags taking the place of EVAL's or
/// FCALL's (Redis's `getCommandFlags`): a script without a shebang line, or one not known,
/// keeps its command's flags. CLIENT PAUSE WRITE holds what this says may write.
pub fn command_flags(cmd: &Command, args: &[Bytes]) -> Flags {
    let Exec::Server(which) = cmd.exec else {
        return cmd.flags;
    };
    let declared = match which {
        ServerCmd::Eval | ServerCmd::EvalRo => {
            let sha = String::from_utf8_lossy(&sha1hex(&args[1])).into_owned();
            state::with(|st| st.scripts.get(&sha).map(|s| s.flags))
                .or_else(|| parse_shebang(&args[1]).ok().map(|(f, _)| f))
        }
        ServerCmd::EvalSha | ServerCmd::EvalShaRo => normalize_sha(&args[1])
            .and_then(|sha| state::with(|st| st.scripts.get(&sha).map(|s| s.flags))),
        ServerCmd::Fcall | ServerCmd::FcallRo => {
            state::with(|st| st.libraries.function(&args[1]).map(|(_, f)| f.flags))
        }
        _ => None,
    };
    match declared {
        Some(f) if f & flags::EVAL_COMPAT == 0 => {
            let writes = f & flags::NO_WRITES == 0;
            cmd.flags
                .set(Flags::STALE, f & flags::ALLOW_STALE != 0)
                .set(
                    Flags::DENYOOM,
                    f & (flags::ALLOW_OOM | flags::NO_WRITES) == 0,
                )
                .set(Flags::WRITE, writes)
                .set(Flags::MAY_REPLICATE, false)
        }
        _ => cmd.flags,
    }
}

/// Carries out a scripting command.
pub async fn run(s: &mut Session, which: ServerCmd, args: &[Bytes]) -> Option<Reply> {
    Some(match which {
        ServerCmd::Eval => eval(s, args, false, false).await,
        ServerCmd::EvalSha => eval(s, args, true, false).await,
        ServerCmd::EvalRo => eval(s, args, false, true).await,
        ServerCmd::EvalShaRo => eval(s, args, true, true).await,
        ServerCmd::Fcall => fcall(s, args, false).await,
        ServerCmd::FcallRo => fcall(s, args, true).await,
        ServerCmd::ScriptLoad => script_load(&s.core, &args[2]).await,
        ServerCmd::ScriptExists => Reply::Array(
            args[2..]
                .iter()
                .map(|sha| {
                    let found = normalize_sha(sha)
                        .is_some_and(|sha| state::with(|st| st.scripts.contains_key(&sha)));
                    Reply::Int(found as i64)
                })
                .collect(),
        ),
        ServerCmd::ScriptFlush => match flush_mode(args) {
            Some(()) => {
                s.core
                    .broadcast(|_| state::with(|st| st.flush_scripts()))
                    .await;
                Reply::Ok
            }
            None => Reply::err("ERR SCRIPT FLUSH only support SYNC|ASYNC option"),
        },
        ServerCmd::ScriptKill => busy::kill(&s.core, true).await,
        ServerCmd::ScriptHelp => crate::cmd::help("SCRIPT", SCRIPT_HELP),
        ServerCmd::FunctionLoad
        | ServerCmd::FunctionDelete
        | ServerCmd::FunctionFlush
        | ServerCmd::FunctionRestore => function_change(&s.core, which, args).await,
        ServerCmd::FunctionList => function_list(args),
        ServerCmd::FunctionDump => Reply::Bulk(Bytes::from(state::with(|st| {
            functions::dump(&st.libraries)
        }))),
        ServerCmd::FunctionStats => function_stats(&s.core).await,
        ServerCmd::FunctionKill => busy::kill(&s.core, false).await,
        ServerCmd::FunctionHelp => crate::cmd::help("FUNCTION", FUNCTION_HELP),
        _ => return None,
    })
}

const SCRIPT_HELP: &[&str] = &[
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
];

const FUNCTION_HELP: &[&str] = &[
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
    "      libraries with the new libraries (notice that even on this option there is a chance of failure",
    "      in case of functions name collision with another library).",
];

/// `[ASYNC|SYNC]` after FLUSH (both free at once here).
fn flush_mode(args: &[Bytes]) -> Option<()> {
    match args.len() {
        2 => Some(()),
        3 if args[2].eq_ignore_ascii_case(b"sync") || args[2].eq_ignore_ascii_case(b"async") => {
            Some(())
        }
        _ => None,
    }
}

fn subcommand_syntax(args: &[Bytes]) -> Reply {
    Reply::error(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        String::from_utf8_lossy(&args[1]),
        String::from_utf8_lossy(&args[0]).to_ascii_uppercase()
    ))
}

/// The numkeys argument of EVAL/FCALL checked against the arguments: the keys' end.
fn numkeys(args: &[Bytes], not_integer: &'static str) -> Result<usize, Reply> {
    let n = num::parse_i64(&args[2]).ok_or(Reply::err(not_integer))?;
    if n > (args.len() - 3) as i64 {
        return Err(Reply::err(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    if n < 0 {
        return Err(Reply::err("ERR Number of keys can't be negative"));
    }
    Ok(n as usize)
}

/// Checks run before a script starts (Redis's `processCommand` memory check with the
/// script's flags, then `scriptPrepareForRun`); whether it is read-only.
fn prepare(s: &Session, script_flags: u32, ro: bool) -> Result<bool, Reply> {
    let compat = script_flags & flags::EVAL_COMPAT != 0;
    // A script declaring flags may write unless it says `no-writes`, so without `allow-oom`
    // it is refused as a whole over the limit, whatever it would do (a script without a
    // shebang line is only refused its first write, see `run`).
    if !compat
        && script_flags & (flags::ALLOW_OOM | flags::NO_WRITES) == 0
        && memory::out_of_memory(&s.core)
    {
        return Err(match s.tx {
            None => Reply::err(memory::OOM_ERROR),
            // Inside EXEC, which checked the transaction as a whole before it ran.
            Some(_) => Reply::err(
                "OOM allow-oom flag is not set on the script, can not run it when used memory > 'maxmemory'",
            ),
        });
    }
    if !compat && script_flags & flags::NO_CLUSTER != 0 && crate::cluster::enabled() {
        return Err(Reply::err(
            "ERR Can not run script on cluster, 'no-cluster' flag is set.",
        ));
    }
    if !compat && script_flags & flags::NO_WRITES == 0 && crate::replica::refuses_writes() {
        return Err(Reply::err(
            "READONLY Can not run script with write flag on readonly replica",
        ));
    }
    if !compat && script_flags & flags::NO_WRITES == 0 && ro {
        return Err(Reply::err(
            "ERR Can not execute a script with write flag using *_ro command.",
        ));
    }
    if !compat && script_flags & flags::NO_WRITES == 0 {
        if let Some(refused) = crate::primary::writes_refused() {
            return Err(refused);
        }
    }
    Ok(ro || (!compat && script_flags & flags::NO_WRITES != 0))
}

/// EVAL, EVALSHA and their read-only forms.
async fn eval(s: &mut Session, args: &[Bytes], by_sha: bool, ro: bool) -> Reply {
    const NOSCRIPT: &str = "NOSCRIPT No matching script. Please use EVAL.";
    if by_sha && args[1].len() != 40 {
        return Reply::err(NOSCRIPT);
    }
    let nkeys = match numkeys(args, "ERR value is not an integer or out of range") {
        Ok(n) => n,
        Err(e) => return e,
    };
    let (sha, script) = if by_sha {
        let sha = normalize_sha(&args[1]).unwrap_or_default();
        match state::with(|st| st.scripts.get(&sha).cloned()) {
            Some(script) => (sha, script),
            None => return Reply::err(NOSCRIPT),
        }
    } else {
        let sha = String::from_utf8_lossy(&sha1hex(&args[1])).into_owned();
        match state::with(|st| st.scripts.get(&sha).cloned()) {
            Some(script) => (sha, script),
            None => match Script::parse(args[1].clone()) {
                Ok(script) => (sha, script),
                Err(e) => return Reply::error(format!("ERR {e}")),
            },
        }
    };
    let read_only = match prepare(s, script.flags, ro) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let allow_oom = allows_oom(script.flags);
    let cross_slot = crosses_slots(script.flags);
    let job = job(
        s,
        Kind::Eval { sha, script },
        args,
        nkeys,
        (read_only, allow_oom, cross_slot),
    );
    execute(s, job).await
}

/// FCALL and FCALL_RO.
async fn fcall(s: &mut Session, args: &[Bytes], ro: bool) -> Reply {
    let Some((name, flags)) = state::with(|st| {
        st.libraries
            .function(&args[1])
            .map(|(_, f)| (f.name.clone(), f.flags))
    }) else {
        return Reply::err("ERR Function not found");
    };
    let nkeys = match numkeys(args, "ERR Bad number of keys provided") {
        Ok(n) => n,
        Err(e) => return e,
    };
    let read_only = match prepare(s, flags, ro) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let job = job(
        s,
        Kind::Function { name },
        args,
        nkeys,
        (read_only, allows_oom(flags), crosses_slots(flags)),
    );
    execute(s, job).await
}

/// Whether a script's commands may use memory over the limit (`allow-oom`, only with a
/// shebang line).
fn allows_oom(script_flags: u32) -> bool {
    script_flags & flags::EVAL_COMPAT == 0 && script_flags & flags::ALLOW_OOM != 0
}

/// Whether a script's calls may use keys of several slots in cluster mode: an EVAL without a
/// shebang line (Redis's backwards compatible mode), or `allow-cross-slot-keys`.
fn crosses_slots(script_flags: u32) -> bool {
    script_flags & (flags::EVAL_COMPAT | flags::ALLOW_CROSS_SLOT) != 0
}

/// The job of a script call; `(read_only, allow_oom, cross_slot)` from its flags.
fn job(
    s: &Session,
    kind: Kind,
    args: &[Bytes],
    nkeys: usize,
    (read_only, allow_oom, cross_slot): (bool, bool, bool),
) -> Job {
    let keys = args[3..3 + nkeys].to_vec();
    let cluster = crate::cluster::redirect::ScriptCluster::of(s, &keys, cross_slot);
    let c = s.client.borrow();
    Job {
        kind,
        keys,
        cluster,
        args: args[3 + nkeys..].to_vec(),
        db: c.db,
        read_only,
        allow_oom,
        caller_addr: c.addr.clone(),
        caller_argv: args.to_vec(),
        shard: None,
        caller: crate::cmd::acl::script_caller(s),
        tracker: s.tracker(),
    }
}

/// The key under which a script's roaming is remembered.
fn roam_key(job: &Job) -> String {
    match &job.kind {
        Kind::Eval { sha, .. } => sha.clone(),
        Kind::Function { name } => format!("fn:{}", name.to_ascii_lowercase()),
    }
}

/// Runs a job where it belongs (see the module doc).
async fn execute(s: &mut Session, mut job: Job) -> Reply {
    let core = s.core.clone();
    if let Some(tx) = s.tx {
        return finish(s, run::run(&core, &job, Mode::Locked(tx)).await);
    }
    let shards = core.shards;
    let home = if shards <= 1 || job.keys.is_empty() {
        Some(core.id)
    } else {
        let first = route::shard_of(&job.keys[0], shards);
        job.keys
            .iter()
            .all(|k| route::shard_of(k, shards) == first)
            .then_some(first)
    };
    let key = roam_key(&job);
    let roams = shards > 1 && state::with(|st| st.roams.contains(&key));
    if let Some(home) = home.filter(|_| !roams) {
        job.shard = (!job.keys.is_empty() || shards <= 1).then_some(home);
        let outcome = if home == core.id {
            run::run(&core, &job, Mode::Optimistic).await
        } else {
            run_on(&core, home, job.clone()).await
        };
        match outcome {
            Outcome::Done(..) => return finish(s, outcome),
            Outcome::Escaped => {
                // It reaches other shards: from now on it runs locked from the start.
                for c in 0..shards {
                    let key = key.clone();
                    core.post(
                        c,
                        Box::new(move |_| {
                            state::with(|st| {
                                st.roams.insert(key);
                            })
                        }),
                    );
                }
            }
        }
    }
    job.shard = None;
    // Under the lock, each call for another shard is a round trip to it: the run goes to the
    // core whose shard holds most of the declared keys.
    let runner = busiest_shard(&job.keys, shards, core.id);
    let outcome = if runner == core.id {
        roaming::run(&core, job).await
    } else {
        roaming::run_on(&core, runner, job).await
    };
    finish(s, outcome)
}

/// The shard holding most of `keys` (`here` among those tied, else the lowest of them).
fn busiest_shard(keys: &[Bytes], shards: usize, here: usize) -> usize {
    let mut count = vec![0usize; shards];
    for k in keys {
        if let Some(c) = count.get_mut(route::shard_of(k, shards)) {
            *c += 1;
        }
    }
    let most = count.iter().copied().max().unwrap_or(0);
    if count.get(here) == Some(&most) {
        return here;
    }
    count.iter().position(|&c| c == most).unwrap_or(here)
}

/// The script's reply; the session learns whether the error statistics already count it.
fn finish(s: &mut Session, outcome: Outcome) -> Reply {
    match outcome {
        Outcome::Done(reply, counted) => {
            s.error_counted = counted;
            reply
        }
        // Only optimistic runs escape.
        Outcome::Escaped => Reply::err("ERR script could not run atomically"),
    }
}

/// Runs an optimistic job on core `home` (in a task there) and returns its outcome.
async fn run_on(core: &Rc<Core>, home: usize, job: Job) -> Outcome {
    let (answer, rx) = core.answer_channel();
    core.post(
        home,
        Box::new(move |c| {
            let c = c.clone();
            spawn::spawn(async move {
                let outcome = run::run(&c, &job, Mode::Optimistic).await;
                c.answer(answer, outcome);
            });
        }),
    );
    rx.await
        .unwrap_or(Outcome::Done(Reply::err("ERR shard did not answer"), false))
}

/// Adds a script that compiled here to every core's cache (if it is new).
pub fn remember_script(core: &Rc<Core>, sha: &str, script: &Script) {
    let new = state::with(|st| {
        let new = !st.scripts.contains_key(sha);
        if new {
            st.add_script(sha.to_string(), script.clone());
        }
        new
    });
    if !new {
        return;
    }
    for c in (0..core.shards).filter(|&c| c != core.id) {
        let (sha, script) = (sha.to_string(), script.clone());
        core.post(
            c,
            Box::new(move |_| state::with(|st| st.add_script(sha, script))),
        );
    }
}

/// SCRIPT LOAD: compiles the script (here, or in a scratch interpreter if this core's is in
/// use) and adds it to every core's cache.
async fn script_load(core: &Rc<Core>, body: &Bytes) -> Reply {
    let sha = String::from_utf8_lossy(&sha1hex(body)).into_owned();
    if state::with(|st| st.scripts.contains_key(&sha)) {
        return Reply::Bulk(Bytes::from(sha));
    }
    let script = match Script::parse(body.clone()) {
        Ok(s) => s,
        Err(e) => return Reply::error(format!("ERR {e}")),
    };
    let compiled = match state::with(|st| st.vm(Flavor::Eval)) {
        Some(vm) => match vm.try_borrow_mut() {
            Ok(mut vm) => vm.compile_script(&sha, script.code()),
            Err(_) => scratch_compile(&sha, &script),
        },
        None => scratch_compile(&sha, &script),
    };
    if let Err(e) = compiled {
        return Reply::error(format!("ERR {e}"));
    }
    remember_script(core, &sha, &script);
    Reply::Bulk(Bytes::from(sha))
}

fn scratch_compile(sha: &str, script: &Script) -> Result<(), String> {
    let mut vm = Vm::new(Flavor::Eval).ok_or("Failed to create the Lua interpreter")?;
    vm.compile_script(sha, script.code())
}

// ---------------------------------------------------------------------------------------------
// Function libraries

/// A change to the libraries, decided on core 0 and applied on every core in the same order.
#[derive(Clone)]
enum Change {
    Add(Library, bool),
    Delete(String),
    Flush,
    Restore(Libraries, RestorePolicy),
}

#[derive(Clone, Copy, PartialEq)]
enum RestorePolicy {
    Flush,
    Append,
    Replace,
}

fn apply(libs: &mut Libraries, change: &Change) -> Result<(), String> {
    match change {
        Change::Add(lib, replace) => libs.add(lib.clone(), *replace),
        Change::Delete(name) => {
            if libs.delete(name) {
                Ok(())
            } else {
                Err("Library not found".into())
            }
        }
        Change::Flush => {
            *libs = Libraries::default();
            Ok(())
        }
        Change::Restore(restored, RestorePolicy::Flush) => {
            *libs = restored.clone();
            Ok(())
        }
        Change::Restore(restored, policy) => {
            libs.join(restored.clone(), *policy == RestorePolicy::Replace)
        }
    }
}

/// Decides a change on core 0 against its libraries, applies it on every core, and waits
/// until every core has it (core 0's messages to each core precede the final round trip).
/// With `appendonly yes` the command (`logged`) goes to shard 0's log, in the order core 0
/// decided the changes, as Redis logs it; start-up replays it (`persist::aof::load`).
async fn change(core: &Rc<Core>, change: Change, logged: Vec<Bytes>) -> Result<(), String> {
    let shards = core.shards;
    let result = core
        .run_on(0, move |c0| {
            let result = state::with(|st| apply(&mut st.libraries, &change));
            if result.is_ok() {
                let now = c0.now_ms();
                if let Some(journal) = &mut c0.shard.borrow_mut().journal {
                    journal.command(0, now, &logged);
                }
                for other in 1..shards {
                    let change = change.clone();
                    c0.post(
                        other,
                        Box::new(move |_| {
                            state::with(|st| {
                                if let Err(e) = apply(&mut st.libraries, &change) {
                                    tracing::warn!("function libraries diverged: {e}");
                                }
                            })
                        }),
                    );
                }
            }
            result
        })
        .await
        .unwrap_or_else(|| Err("shard did not answer".into()));
    core.broadcast(|_| ()).await;
    result
}

/// FUNCTION LOAD, DELETE, FLUSH or RESTORE: the change decided on core 0, applied on every
/// core, and logged (see [`change`]).
async fn function_change(core: &Rc<Core>, which: ServerCmd, args: &[Bytes]) -> Reply {
    let change_asked = match parse_change(which, args) {
        Ok(c) => c,
        Err(reply) => return reply,
    };
    let loaded = match &change_asked {
        Change::Add(lib, _) => Some(lib.name.clone()),
        _ => None,
    };
    match change(core, change_asked, args.to_vec()).await {
        Ok(()) => loaded.map_or(Reply::Ok, |name| Reply::Bulk(Bytes::from(name))),
        Err(e) => Reply::error(format!("ERR {e}")),
    }
}

/// Whether a runtime command changes the function libraries (and is logged).
pub fn changes_libraries(which: ServerCmd) -> bool {
    matches!(
        which,
        ServerCmd::FunctionLoad
            | ServerCmd::FunctionDelete
            | ServerCmd::FunctionFlush
            | ServerCmd::FunctionRestore
    )
}

/// Applies a FUNCTION LOAD, DELETE, FLUSH or RESTORE read back from the append-only log.
pub fn replay_change(libs: &mut Libraries, which: ServerCmd, args: &[Bytes]) -> Result<(), String> {
    let change = parse_change(which, args).map_err(|reply| match reply {
        Reply::Error(e) => e.to_string(),
        _ => "not a change to the libraries".to_string(),
    })?;
    apply(libs, &change)
}

/// The change a FUNCTION LOAD, DELETE, FLUSH or RESTORE asks for, or its error reply.
fn parse_change(which: ServerCmd, args: &[Bytes]) -> Result<Change, Reply> {
    match which {
        ServerCmd::FunctionLoad => {
            let mut replace = false;
            let mut at = 2;
            while at < args.len() - 1 {
                if args[at].eq_ignore_ascii_case(b"replace") {
                    replace = true;
                    at += 1;
                    continue;
                }
                return Err(Reply::error(format!(
                    "ERR Unknown option given: {}",
                    String::from_utf8_lossy(&args[at])
                )));
            }
            let Some(code) = args.get(at) else {
                return Err(Reply::err("ERR Function code is missing"));
            };
            functions::compile(code.clone(), Some(functions::LOAD_TIMEOUT))
                .map(|lib| Change::Add(lib, replace))
                .map_err(|e| Reply::error(format!("ERR {e}")))
        }
        ServerCmd::FunctionDelete => Ok(Change::Delete(
            String::from_utf8_lossy(args.get(2).map_or(&[][..], |a| a)).into_owned(),
        )),
        ServerCmd::FunctionFlush => {
            if args.len() > 3 {
                return Err(subcommand_syntax(args));
            }
            flush_mode(args)
                .map(|()| Change::Flush)
                .ok_or_else(|| Reply::err("ERR FUNCTION FLUSH only supports SYNC|ASYNC option"))
        }
        ServerCmd::FunctionRestore => {
            if args.len() > 4 {
                return Err(subcommand_syntax(args));
            }
            let policy = match args.get(3).map(|p| p.to_ascii_lowercase()) {
                None => RestorePolicy::Append,
                Some(p) if p == b"append" => RestorePolicy::Append,
                Some(p) if p == b"replace" => RestorePolicy::Replace,
                Some(p) if p == b"flush" => RestorePolicy::Flush,
                Some(_) => return Err(Reply::err(
                    "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
                )),
            };
            functions::restore(args.get(2).map_or(&[][..], |a| a))
                .map(|libs| Change::Restore(libs, policy))
                .map_err(|e| Reply::error(format!("ERR {e}")))
        }
        _ => Err(Reply::err("ERR not a change to the function libraries")),
    }
}

/// FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE].
fn function_list(args: &[Bytes]) -> Reply {
    let mut with_code = false;
    let mut pattern: Option<&Bytes> = None;
    let mut i = 2;
    while i < args.len() {
        let arg = &args[i];
        if !with_code && arg.eq_ignore_ascii_case(b"withcode") {
            with_code = true;
            i += 1;
            continue;
        }
        if pattern.is_none() && arg.eq_ignore_ascii_case(b"libraryname") {
            if i >= args.len() - 1 {
                return Reply::err("ERR library name argument was not given");
            }
            pattern = Some(&args[i + 1]);
            i += 2;
            continue;
        }
        return Reply::error(format!(
            "ERR Unknown argument {}",
            String::from_utf8_lossy(arg)
        ));
    }
    let bulk = |s: &str| Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()));
    state::with(|st| {
        Reply::Array(
            st.libraries
                .iter()
                .filter(|lib| {
                    pattern
                        .is_none_or(|p| shardis_engine::glob::matches(p, lib.name.as_bytes(), true))
                })
                .map(|lib| {
                    let functions = lib
                        .functions
                        .iter()
                        .map(|f| {
                            Reply::Map(vec![
                                (bulk("name"), bulk(&f.name)),
                                (
                                    bulk("description"),
                                    f.description.as_deref().map_or(Reply::Nil, bulk),
                                ),
                                (
                                    bulk("flags"),
                                    Reply::Set(
                                        flags::NAMES
                                            .iter()
                                            .filter(|(bit, _)| f.flags & bit != 0)
                                            .map(|(_, n)| Reply::Simple((*n).into()))
                                            .collect(),
                                    ),
                                ),
                            ])
                        })
                        .collect();
                    let mut fields = vec![
                        (bulk("library_name"), bulk(&lib.name)),
                        (bulk("engine"), bulk("LUA")),
                        (bulk("functions"), Reply::Array(functions)),
                    ];
                    if with_code {
                        fields.push((bulk("library_code"), Reply::Bulk(lib.code.clone())));
                    }
                    Reply::Map(fields)
                })
                .collect(),
        )
    })
}

/// FUNCTION STATS.
async fn function_stats(core: &Rc<Core>) -> Reply {
    let running = match busy::running_function(core).await {
        Ok(r) => r.unwrap_or(Reply::Nil),
        Err(e) => return e,
    };
    let (libraries, functions) =
        state::with(|st| (st.libraries.len(), st.libraries.function_count()));
    let bulk = |s: &str| Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()));
    Reply::Map(vec![
        (bulk("running_script"), running),
        (
            bulk("engines"),
            Reply::Map(vec![(
                bulk("LUA"),
                Reply::Map(vec![
                    (bulk("libraries_count"), Reply::Int(libraries as i64)),
                    (bulk("functions_count"), Reply::Int(functions as i64)),
                ]),
            )]),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_run_goes_to_the_shard_with_most_declared_keys() {
        let keys = |names: &[&str]| -> Vec<Bytes> {
            names.iter().map(|n| Bytes::from(n.to_string())).collect()
        };
        // With 2 shards, d:2 and u:1 are on shard 0, d:1 and u:2 on shard 1.
        assert_eq!(route::shard_of(b"d:2", 2), 0);
        assert_eq!(route::shard_of(b"d:1", 2), 1);
        assert_eq!(route::shard_of(b"u:2", 2), 1);
        assert_eq!(busiest_shard(&keys(&["d:1", "u:2", "d:2"]), 2, 0), 1);
        assert_eq!(busiest_shard(&keys(&["d:1", "d:2", "u:1"]), 2, 1), 0);
        // A tie stays where the caller is; no keys too.
        assert_eq!(busiest_shard(&keys(&["d:1", "d:2"]), 2, 1), 1);
        assert_eq!(busiest_shard(&keys(&["d:1", "d:2"]), 2, 0), 0);
        assert_eq!(busiest_shard(&[], 2, 1), 1);
    }
}
