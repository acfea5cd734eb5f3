//! Scripts running past `busy-reply-threshold` (`lua-time-limit`): the `-BUSY` replies other
//! clients get, and SCRIPT KILL / FUNCTION KILL / FUNCTION STATS, which look at the scripts
//! running on every core.
//!
//! Redis is single-threaded: while a script runs long, every other command but a few
//! (SCRIPT KILL, FUNCTION KILL, SHUTDOWN NOSAVE…) is refused. Here a long script holds only
//! the shards it may touch, so only commands on those shards are refused; commands without
//! keys (PING, INFO, MULTI…) are refused while any script runs long, as in Redis. Every core
//! learns of a long script when it becomes one (a message to all cores) and checks each
//! command against that list.

use std::rc::Rc;

use bytes::Bytes;
use shardis_engine::command::Flags;
use shardis_engine::{Command, Fanout};
use shardis_resp::Reply;

use super::state::{self, BusyScript};
use crate::coord::route;
use crate::core::{spawn, Core};

/// The reply while an EVAL script runs long.
pub const BUSY_EVAL: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
/// The reply while a function runs long.
pub const BUSY_FUNCTION: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

/// Tells every core that a script runs long (`add`), or no longer does. A core learning of a
/// long script has what waits behind its shard's lock look again, so that commands sent
/// before the threshold get `-BUSY` too rather than wait for the script's end. That happens
/// in a task: the announcement to the script's own core runs inside the script, before it
/// switches back and holds its shard.
pub fn announce(core: &Rc<Core>, script: BusyScript, add: bool) {
    for c in 0..core.shards {
        let script = script.clone();
        core.post(
            c,
            Box::new(move |c| {
                state::with(|s| s.set_busy(script, add));
                if add {
                    let c = c.clone();
                    spawn::spawn(async move { c.recheck_parked() });
                }
            }),
        );
    }
}

/// The BUSY reply for `cmd` if a long script holds what it needs; None to run it. Called for
/// every command, so the common case (no long script anywhere) is one thread-local read.
pub fn refuse(core: &Core, cmd: &Command, args: &[Bytes]) -> Option<Reply> {
    if !state::any_busy() || cmd.flags.has(Flags::ALLOW_BUSY) {
        return None;
    }
    state::with(|s| {
        let mut keys = Vec::new();
        let keyed = core.shards > 1
            && !matches!(cmd.fanout, Fanout::AllShards(_) | Fanout::Local)
            && cmd.key_indexes(args, &mut keys)
            && !keys.is_empty();
        let hit = s.busy.iter().find(|b| match (b.shard, keyed) {
            (Some(shard), true) => keys
                .iter()
                .filter_map(|&i| args.get(i))
                .any(|k| route::shard_of(k, core.shards) == shard),
            _ => true,
        })?;
        Some(Reply::err(if hit.eval { BUSY_EVAL } else { BUSY_FUNCTION }))
    })
}

/// The reply of a command refused with `busy`, as Redis's `rejectCommand`: inside MULTI the
/// transaction is marked failed, and EXEC itself is refused with EXECABORT (the transaction
/// is discarded).
pub fn reject(s: &mut crate::conn::session::Session, cmd: &Command, busy: Reply) -> Reply {
    if s.multi.is_none() {
        return busy;
    }
    if matches!(
        cmd.exec,
        shardis_engine::Exec::Server(shardis_engine::ServerCmd::Exec)
    ) {
        crate::conn::multi::discard(s);
        let text = match &busy {
            Reply::Error(e) => e.to_string(),
            _ => String::new(),
        };
        return Reply::error(format!(
            "EXECABORT Transaction discarded because of: {text}"
        ));
    }
    crate::conn::multi::flag_error(s);
    busy
}

/// What a core answers to SCRIPT KILL / FUNCTION KILL about its own run.
enum Kill {
    Killed,
    Refused(&'static str),
}

/// SCRIPT KILL (`eval`) or FUNCTION KILL: kills the long-running scripts of that kind.
pub async fn kill(core: &Rc<Core>, eval: bool) -> Reply {
    let answers = core
        .broadcast(move |_| {
            state::with(|s| {
                let run = s.active.clone()?;
                if !run.busy.get() {
                    return None;
                }
                Some(if run.dirty.get() {
                    Kill::Refused("UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.")
                } else if eval && !run.eval {
                    Kill::Refused(BUSY_FUNCTION)
                } else if !eval && run.eval {
                    Kill::Refused(BUSY_EVAL)
                } else {
                    run.killed.set(true);
                    Kill::Killed
                })
            })
        })
        .await;
    let mut refusal = None;
    for answer in answers.into_iter().flatten() {
        match answer {
            Kill::Killed => return Reply::Ok,
            Kill::Refused(e) => refusal = refusal.or(Some(e)),
        }
    }
    Reply::err(refusal.unwrap_or("NOTBUSY No scripts in execution right now."))
}

/// FUNCTION STATS' `running_script`: the long-running function, if any (an EVAL script
/// running long makes FUNCTION STATS itself a BUSY error, as in Redis).
pub async fn running_function(core: &Rc<Core>) -> Result<Option<Reply>, Reply> {
    let runs = core
        .broadcast(|_| {
            state::with(|s| {
                let run = s.active.clone()?;
                if !run.busy.get() {
                    return None;
                }
                Some((
                    run.eval,
                    run.name.clone(),
                    run.command.clone(),
                    run.started.elapsed().as_millis() as i64,
                ))
            })
        })
        .await;
    let mut found = None;
    for (eval, name, command, ms) in runs.into_iter().flatten() {
        if eval {
            return Err(Reply::err(BUSY_EVAL));
        }
        found = found.or(Some(Reply::Map(vec![
            (Reply::bulk(b"name"), Reply::bulk(name.as_bytes())),
            (
                Reply::bulk(b"command"),
                Reply::Array(command.into_iter().map(Reply::Bulk).collect()),
            ),
            (Reply::bulk(b"duration_ms"), Reply::Int(ms)),
        ])));
    }
    Ok(found)
}
