//! MULTI, DISCARD, WATCH and UNWATCH, and the planning of EXEC: which shards and keys a
//! transaction touches. EXEC itself runs in `dispatch`, which carries out commands.

use bytes::Bytes;
use shardis_engine::command::Flags;
use shardis_engine::{num, Command, Exec, Fanout, ServerCmd};
use shardis_resp::Reply;

use super::session::{MultiState, Session};
use crate::coord::route;
use crate::coord::txn::{self, Intents};
use crate::core::memory;
use crate::core::shard_lock::WatchedKey;
use crate::core::{Core, Request};

/// Commands that act at once between MULTI and EXEC instead of being queued.
pub fn runs_inside_multi(cmd: &Command) -> bool {
    matches!(
        cmd.exec,
        Exec::Server(
            ServerCmd::Multi
                | ServerCmd::Exec
                | ServerCmd::Discard
                | ServerCmd::Watch
                | ServerCmd::Quit
                | ServerCmd::Reset
        )
    )
}

/// Queues a command between MULTI and EXEC.
pub fn queue(s: &mut Session, cmd: &'static Command, args: Vec<Bytes>) -> Reply {
    let Some(state) = &mut s.multi else {
        return Reply::err("ERR internal: not in MULTI");
    };
    if cmd.flags.has(Flags::NO_MULTI) {
        state.failed = true;
        return Reply::err("ERR Command not allowed inside a transaction");
    }
    // Queuing takes memory: as Redis, nothing is queued while a shard it involves is full.
    if s.core.memory.maxmemory() > 0 && memory::any_oom(involved_shards(&s.core, cmd, &args)) {
        state.failed = true;
        return Reply::err(memory::OOM_ERROR);
    }
    state.argv_mem += args
        .iter()
        .map(|a| a.len() + std::mem::size_of::<usize>())
        .sum::<usize>();
    state.queued.push((cmd, args));
    Reply::simple("QUEUED")
}

/// The shards a command's keys live on; every shard for a command without keys.
fn involved_shards(core: &Core, cmd: &Command, args: &[Bytes]) -> Vec<usize> {
    let mut idx = Vec::new();
    cmd.key_indexes(args, &mut idx);
    if idx.is_empty() {
        return (0..core.shards).collect();
    }
    idx.iter()
        .filter_map(|&i| args.get(i))
        .map(|k| route::shard_of(k, core.shards))
        .collect()
}

/// Marks the transaction as failed (a command could not be queued).
pub fn flag_error(s: &mut Session) {
    if let Some(m) = &mut s.multi {
        m.failed = true;
    }
}

pub fn multi(s: &mut Session) -> Reply {
    if s.multi.is_some() {
        return Reply::err("ERR MULTI calls can not be nested");
    }
    s.multi = Some(MultiState::default());
    Reply::Ok
}

pub fn discard(s: &mut Session) -> Reply {
    if s.multi.take().is_none() {
        return Reply::err("ERR DISCARD without MULTI");
    }
    unwatch_all(s);
    Reply::Ok
}

/// UNWATCH
pub fn unwatch(s: &mut Session) -> Reply {
    unwatch_all(s);
    Reply::Ok
}

/// RESET's part: leave any transaction.
pub fn reset(s: &mut Session) {
    s.multi = None;
    unwatch_all(s);
}

/// WATCH key [key ...]
pub async fn watch(s: &mut Session, args: &[Bytes]) -> Reply {
    if s.multi.is_some() {
        return Reply::err("ERR WATCH inside MULTI is not allowed");
    }
    let db = s.client.borrow().db;
    for key in &args[1..] {
        if s.watched.iter().any(|w| w.db == db && w.key == *key) {
            continue;
        }
        let shard = route::shard_of(key, s.core.shards);
        let k = Bytes::copy_from_slice(key);
        let watched = s
            .core
            .run_on(shard, move |core| {
                let now = core.now_ms();
                let (version, live) = core.shard.borrow_mut().watch_key(db, &k, now);
                WatchedKey {
                    shard,
                    db,
                    key: k,
                    version,
                    live,
                }
            })
            .await;
        if let Some(w) = watched {
            // Counted with the client's memory (client eviction), as Redis counts it.
            s.client.borrow_mut().watch_mem += std::mem::size_of::<WatchedKey>() + w.key.len();
            s.watched.push(w);
        }
    }
    Reply::Ok
}

/// Forgets the watched keys on their shards (UNWATCH, and the end of every transaction).
pub fn unwatch_all(s: &mut Session) {
    s.client.borrow_mut().watch_mem = 0;
    for w in std::mem::take(&mut s.watched) {
        let (db, key) = (w.db, w.key);
        s.core.post(
            w.shard,
            Box::new(move |core| core.shard.borrow_mut().watched.unwatch(db, &key)),
        );
    }
}

/// The shards and keys a transaction touches, tracking SELECT on the way, and whether it is
/// simple: no runtime command other than the trivial ones.
pub fn plan(
    s: &Session,
    queued: &[(&'static Command, Vec<Bytes>)],
) -> (Vec<(usize, Intents)>, bool) {
    let shards = s.core.shards;
    let mut db = s.client.borrow().db;
    let mut plan = Vec::new();
    let mut simple = true;
    let mut publishes = false;
    for (cmd, args) in queued {
        match cmd.exec {
            Exec::Server(ServerCmd::Select) => {
                if let Some(n) = args
                    .get(1)
                    .and_then(|a| num::parse_i64(a))
                    .filter(|&n| n >= 0)
                {
                    db = n as usize;
                }
            }
            Exec::Server(ServerCmd::Ping | ServerCmd::Echo | ServerCmd::Time) => {}
            Exec::Server(which) => {
                simple = false;
                publishes |= matches!(which, ServerCmd::Publish | ServerCmd::SPublish);
                // A script may touch any key: the transaction holds every shard for it.
                if crate::script::commands::runs_script(which) {
                    txn::merge_plan(&mut plan, txn::plan_all(shards));
                }
            }
            Exec::Shard(_) => match cmd.fanout {
                Fanout::AllShards(_) => txn::merge_plan(&mut plan, txn::plan_all(shards)),
                Fanout::Local => {}
                _ => {
                    let mut idx = Vec::new();
                    cmd.key_indexes(args, &mut idx);
                    txn::merge_plan(
                        &mut plan,
                        txn::plan_keys(
                            shards,
                            idx.iter()
                                .filter_map(|&i| args.get(i))
                                .map(|k| (db, &k[..])),
                        ),
                    );
                }
            },
        }
    }
    txn::merge_plan(
        &mut plan,
        txn::plan_keys(shards, s.watched.iter().map(|w| (w.db, &w.key[..]))),
    );
    // PUBLISHes alone: they still reach the replicas as one transaction, logged on this
    // core's shard, which the transaction holds without keys for it.
    if publishes && plan.is_empty() {
        plan.push((s.core.id, Intents::keys()));
    }
    (plan, simple)
}

/// The queued commands as (shard, request) jobs when each runs on a single shard and none is
/// a runtime command; None otherwise.
pub fn one_shard_each(
    s: &Session,
    queued: &[(&'static Command, Vec<Bytes>)],
) -> Option<Vec<(usize, Request)>> {
    let (db, resp3) = s.db_resp3();
    let track = s.tracker();
    let client = s.client.borrow().id;
    let mut jobs = Vec::with_capacity(queued.len());
    for (cmd, args) in queued {
        if !matches!(cmd.exec, Exec::Shard(_)) || matches!(cmd.fanout, Fanout::AllShards(_)) {
            return None;
        }
        let shard = route::single_shard(cmd, args, s.core.shards, s.core.id)?;
        jobs.push((
            shard,
            Request {
                cmd,
                args: args.clone(),
                db,
                resp3,
                track,
                client,
            },
        ));
    }
    Some(jobs)
}

/// The connection's watched keys that live on `shard`.
pub fn watched_on(s: &Session, shard: usize) -> Vec<WatchedKey> {
    s.watched
        .iter()
        .filter(|w| w.shard == shard)
        .cloned()
        .collect()
}
