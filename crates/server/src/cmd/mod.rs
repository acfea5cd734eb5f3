//! Commands the runtime carries out itself: connection state (PING, HELLO, SELECT, CLIENT…),
//! server state (CONFIG, INFO, COMMAND, SHUTDOWN) and keyless commands that walk shards
//! (SCAN, RANDOMKEY). Most answer at once and run inline on the event loop; those that must
//! ask other cores run in the connection's task. MULTI/EXEC/WATCH live in `conn`.

pub mod acl;
pub mod cluster;
pub mod config_set;
pub mod connection;
pub mod debug;
pub mod info;
pub mod keyspace;
pub mod latency;
pub mod memory;
pub mod pubsub;
pub mod server;
pub mod slowlog;
pub mod tracking;

use bytes::Bytes;
use shardis_engine::{error, Command, ServerCmd};
use shardis_resp::Reply;

use crate::conn::multi;
use crate::conn::session::Session;

pub use crate::REDIS_VERSION;

/// Whether a runtime command must wait for other cores (it then runs in a task).
pub fn must_wait(which: ServerCmd) -> bool {
    matches!(
        which,
        ServerCmd::ClientList
            | ServerCmd::ClientKill
            | ServerCmd::ClientUnblock
            | ServerCmd::ClientPause
            | ServerCmd::ClientUnpause
            | ServerCmd::ConfigSet
            | ServerCmd::ConfigResetStat
            | ServerCmd::Info
            | ServerCmd::Scan
            | ServerCmd::RandomKey
            | ServerCmd::Watch
            | ServerCmd::Exec
            | ServerCmd::Subscribe
            | ServerCmd::Unsubscribe
            | ServerCmd::PSubscribe
            | ServerCmd::PUnsubscribe
            | ServerCmd::SSubscribe
            | ServerCmd::SUnsubscribe
            | ServerCmd::Monitor
            | ServerCmd::ClientTracking
            | ServerCmd::AclSetUser
            | ServerCmd::AclDelUser
            | ServerCmd::AclLoad
            | ServerCmd::AclLog
            | ServerCmd::Save
            | ServerCmd::BgSave
            | ServerCmd::BgRewriteAof
            | ServerCmd::Shutdown
            | ServerCmd::Debug
            | ServerCmd::ReplicaOf
            | ServerCmd::Psync
            | ServerCmd::Sync
            | ServerCmd::Wait
            | ServerCmd::Failover
            | ServerCmd::SlowlogGet
            | ServerCmd::SlowlogLen
            | ServerCmd::SlowlogReset
            | ServerCmd::LatencyDoctor
            | ServerCmd::LatencyGraph
            | ServerCmd::LatencyHistory
            | ServerCmd::LatencyLatest
            | ServerCmd::LatencyReset
            | ServerCmd::LatencyHistogram
            | ServerCmd::MemoryStats
            | ServerCmd::MemoryDoctor
            | ServerCmd::MemoryMallocStats
            | ServerCmd::MemoryPurge
            | ServerCmd::ClusterCountKeysInSlot
            | ServerCmd::ClusterGetKeysInSlot
            | ServerCmd::Migrate
    ) || cluster::is_bus_change(which)
        || crate::script::commands::is_scripting(which)
}

/// Runs a runtime command that answers at once (`!must_wait`); None means no reply (the
/// connection closes).
pub fn run_sync(
    s: &mut Session,
    which: ServerCmd,
    cmd: &'static Command,
    args: &[Bytes],
) -> Option<Reply> {
    match which {
        ServerCmd::Container => Some(error::wrong_arity(&cmd.name)),
        ServerCmd::Multi => Some(multi::multi(s)),
        ServerCmd::Discard => Some(multi::discard(s)),
        ServerCmd::Unwatch => Some(multi::unwatch(s)),
        ServerCmd::ReplConf => crate::primary::replconf(s, args),
        _ => Some(
            connection::run_sync(s, which, args)
                .or_else(|| server::run_sync(s, which, args))
                .or_else(|| pubsub::run_sync(s, which, args))
                .or_else(|| tracking::run_sync(s, which, args))
                .or_else(|| acl::run_sync(s, which, args))
                .or_else(|| cluster::run_sync(s, which, args))
                .or_else(|| slowlog::run_sync(which))
                .or_else(|| latency::run_sync(which))
                .unwrap_or_else(|| Reply::err("ERR internal: command not runnable here")),
        ),
    }
}

/// [`run_sync`], recorded as a call of the session's client (see `core::calls`).
pub fn call_sync(
    s: &mut Session,
    which: ServerCmd,
    cmd: &'static Command,
    args: &[Bytes],
) -> Option<Reply> {
    let started = std::time::Instant::now();
    let reply = run_sync(s, which, cmd, args);
    if let Some(r) = &reply {
        let client = s.client.borrow().id;
        s.core.record_call(cmd, args, client, started.elapsed(), r);
    }
    reply
}

/// Runs a runtime command that waits for other cores (`must_wait`, except EXEC, which the
/// dispatcher runs).
pub async fn run_async(s: &mut Session, which: ServerCmd, args: &[Bytes]) -> Option<Reply> {
    if which == ServerCmd::Watch {
        return Some(multi::watch(s, args).await);
    }
    if crate::script::commands::is_scripting(which) {
        return crate::script::commands::run(s, which, args).await;
    }
    if let Some(r) = connection::run_async(s, which, args).await {
        return Some(r);
    }
    if let Some(r) = server::run_async(s, which, args).await {
        return Some(r);
    }
    if let Some(r) = pubsub::run_async(s, which, args).await {
        return Some(r);
    }
    if let Some(r) = tracking::run_async(s, which, args).await {
        return Some(r);
    }
    if let Some(r) = acl::run_async(s, which, args).await {
        return Some(r);
    }
    if which == ServerCmd::Debug {
        return Some(debug::debug(s, args).await);
    }
    if which == ServerCmd::ReplicaOf {
        return Some(crate::replica::replicaof(s, args).await);
    }
    if matches!(which, ServerCmd::Psync | ServerCmd::Sync) {
        return crate::primary::psync(s, args).await;
    }
    if which == ServerCmd::Wait {
        return Some(crate::primary::wait(s, args).await);
    }
    if which == ServerCmd::Migrate {
        return Some(crate::migrate::migrate(s, args).await);
    }
    if which == ServerCmd::Failover {
        return Some(crate::primary::failover::failover(s, args).await);
    }
    if let Some(r) = slowlog::run_async(s, which, args).await {
        return Some(r);
    }
    if let Some(r) = latency::run_async(s, which, args).await {
        return Some(r);
    }
    if let Some(r) = memory::run_async(s, which, args).await {
        return Some(r);
    }
    if let Some(r) = cluster::run_async(s, which, args).await {
        return Some(r);
    }
    keyspace::run_async(s, which, args).await
}

fn bulk(s: &str) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A HELP reply in Redis's layout.
pub(crate) fn help(container: &str, lines: &[&str]) -> Reply {
    let mut out = vec![Reply::Simple(
        format!("{container} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:").into(),
    )];
    out.extend(lines.iter().map(|l| Reply::Simple(l.to_string().into())));
    out.push(Reply::simple("HELP"));
    out.push(Reply::simple("    Prints this help."));
    Reply::Array(out)
}
