//! MULTI, EXEC, DISCARD, WATCH and UNWATCH: a connection's transaction, carried out by the
//! coordinator in `txn`.
//!
//! EXEC plans the shards and keys its queued commands touch. One shard (the common case with
//! hash tags) takes the fast path: one atomic batch, WATCH checked on the shard just before it
//! runs. Several shards: lock them in ascending order, check WATCH, run the commands in order
//! (batched per shard, like a pipeline), release.

use bytes::Bytes;
use shardis_engine::command::Flags;
use shardis_engine::{num, Command, Exec, Fanout, ServerCmd};
use shardis_resp::Reply;

use crate::conn::{MultiState, Session};
use crate::route;
use crate::runtime::Request;
use crate::txn::{self, Batch, Intents, WatchedKey};

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
    state.queued.push((cmd, args));
    Reply::simple("QUEUED")
}

pub fn multi(s: &mut Session) -> Reply {
    if s.multi.is_some() {
        return Reply::err("ERR MULTI calls can not be nested");
    }
    s.multi = Some(MultiState::default());
    Reply::Ok
}

pub async fn discard(s: &mut Session) -> Reply {
    if s.multi.take().is_none() {
        return Reply::err("ERR DISCARD without MULTI");
    }
    unwatch_all(s).await;
    Reply::Ok
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
                let now = crate::runtime::now_ms();
                let mut sh = core.shard.borrow_mut();
                let version = sh.watched.watch(db, &k);
                let live = sh
                    .dbs
                    .get(db)
                    .and_then(|d| d.peek(&k))
                    .is_some_and(|e| !e.is_expired(now));
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
            s.watched.push(w);
        }
    }
    Reply::Ok
}

/// UNWATCH, and the end of every transaction: forget the watched keys on their shards.
pub async fn unwatch_all(s: &mut Session) {
    for w in std::mem::take(&mut s.watched) {
        let (db, key) = (w.db, w.key);
        let forget = move |core: &std::rc::Rc<crate::runtime::Core>| {
            core.shard.borrow_mut().watched.unwatch(db, &key)
        };
        if w.shard == s.core.id {
            forget(&s.core);
        } else {
            s.core.post(w.shard, Box::new(forget)).await;
        }
    }
}

/// The shards and keys a transaction touches, tracking SELECT on the way. None when it runs a
/// runtime command other than the trivial ones (it then takes the general path).
fn plan(s: &Session, queued: &[(&'static Command, Vec<Bytes>)]) -> (Vec<(usize, Intents)>, bool) {
    let shards = s.core.shards;
    let mut db = s.client.borrow().db;
    let mut plan = Vec::new();
    let mut simple = true;
    for (cmd, args) in queued {
        match cmd.exec {
            Exec::Server(ServerCmd::Select) => {
                if let Some(n) = num::parse_i64(&args[1]).filter(|&n| n >= 0) {
                    db = n as usize;
                }
            }
            Exec::Server(ServerCmd::Ping | ServerCmd::Echo | ServerCmd::Time) => {}
            Exec::Server(_) => simple = false,
            Exec::Shard(_) => match cmd.fanout {
                Fanout::AllShards(_) => txn::merge_plan(&mut plan, txn::plan_all(shards)),
                Fanout::Local => {}
                _ => {
                    let mut idx = Vec::new();
                    cmd.key_indexes(args, &mut idx);
                    txn::merge_plan(
                        &mut plan,
                        txn::plan_keys(shards, idx.iter().map(|&i| (db, &args[i][..]))),
                    );
                }
            },
        }
    }
    txn::merge_plan(
        &mut plan,
        txn::plan_keys(shards, s.watched.iter().map(|w| (w.db, &w.key[..]))),
    );
    (plan, simple)
}

/// EXEC. Boxed: the queued commands run through the same dispatch that runs EXEC itself.
pub fn exec(s: &mut Session) -> std::pin::Pin<Box<dyn std::future::Future<Output = Reply> + '_>> {
    Box::pin(exec_queued(s))
}

async fn exec_queued(s: &mut Session) -> Reply {
    let Some(state) = s.multi.take() else {
        return Reply::err("ERR EXEC without MULTI");
    };
    if state.failed {
        unwatch_all(s).await;
        return Reply::err("EXECABORT Transaction discarded because of previous errors.");
    }
    let (plan, simple) = plan(s, &state.queued);
    let reply = if simple && plan.len() <= 1 {
        let shard = plan.first().map_or(s.core.id, |(shard, _)| *shard);
        exec_on_one_shard(s, shard, state.queued).await
    } else if let Some(jobs) = s
        .watched
        .is_empty()
        .then(|| one_shard_each(s, &state.queued))
        .flatten()
    {
        // Every command on one shard (the shards differ): one fused message per shard.
        Reply::Array(txn::run_jobs_locked(&s.core, plan, jobs).await)
    } else {
        exec_locked(s, plan, state.queued).await
    };
    unwatch_all(s).await;
    reply
}

/// The queued commands as (shard, request) jobs when each runs on a single shard and none is
/// a runtime command; None otherwise.
fn one_shard_each(
    s: &Session,
    queued: &[(&'static Command, Vec<Bytes>)],
) -> Option<Vec<(usize, Request)>> {
    let (db, resp3) = {
        let c = s.client.borrow();
        (c.db, c.resp3)
    };
    let mut jobs = Vec::with_capacity(queued.len());
    for (cmd, args) in queued {
        if !matches!(cmd.exec, Exec::Shard(_)) || matches!(cmd.fanout, Fanout::AllShards(_)) {
            return None;
        }
        let mut idx = Vec::new();
        cmd.key_indexes(args, &mut idx);
        let mut shards = idx
            .iter()
            .map(|&i| route::shard_of(&args[i], s.core.shards));
        let shard = shards.next().unwrap_or(s.core.id);
        if shards.any(|other| other != shard) {
            return None;
        }
        jobs.push((
            shard,
            Request {
                cmd,
                args: args.clone(),
                db,
                resp3,
            },
        ));
    }
    Some(jobs)
}

/// The connection's watched keys that live on `shard`.
fn watched_on(s: &Session, shard: usize) -> Vec<WatchedKey> {
    s.watched
        .iter()
        .filter(|w| w.shard == shard)
        .cloned()
        .collect()
}

/// The fast path: every command for one shard, run as one atomic batch.
async fn exec_on_one_shard(
    s: &mut Session,
    shard: usize,
    queued: Vec<(&'static Command, Vec<Bytes>)>,
) -> Reply {
    let resp3 = s.client.borrow().resp3;
    // Trivial runtime commands answer here; the rest go to the shard, in order.
    let mut replies: Vec<Option<Reply>> = Vec::with_capacity(queued.len());
    let mut requests = std::collections::VecDeque::new();
    for (cmd, args) in queued {
        match cmd.exec {
            Exec::Server(which) => replies.push(crate::commands::run(s, which, cmd, &args).await),
            Exec::Shard(_) => {
                let db = s.client.borrow().db;
                requests.push_back(Request {
                    cmd,
                    args,
                    db,
                    resp3,
                });
                replies.push(None);
            }
        }
    }
    let (reply, rx) = futures_channel::oneshot::channel();
    let watch = watched_on(s, shard);
    let batch = Batch {
        requests,
        done: Vec::new(),
        reply,
        tx: None,
        atomic: true,
        watch,
        lock: Default::default(),
    };
    if shard == s.core.id {
        s.core.run_batch(batch);
    } else {
        s.core
            .send_to(shard, crate::runtime::Msg::Batch(batch))
            .await;
    }
    let Some(shard_replies) = rx.await.ok().flatten() else {
        return Reply::NilArray;
    };
    let mut shard_replies = shard_replies.into_iter();
    Reply::Array(
        replies
            .into_iter()
            .map(|r| r.or_else(|| shard_replies.next()).unwrap_or(Reply::Nil))
            .collect(),
    )
}

/// The general path: lock every involved shard, check WATCH, run, release.
async fn exec_locked(
    s: &mut Session,
    plan: Vec<(usize, Intents)>,
    queued: Vec<(&'static Command, Vec<Bytes>)>,
) -> Reply {
    let held = txn::lock(&s.core, plan).await;
    let mut intact = true;
    let mut shards: Vec<usize> = s.watched.iter().map(|w| w.shard).collect();
    shards.dedup();
    for shard in shards {
        let watch = watched_on(s, shard);
        intact &= s
            .core
            .run_on(shard, move |core| core.watch_intact(&watch))
            .await
            .unwrap_or(false);
    }
    if !intact {
        txn::unlock(&s.core, held).await;
        return Reply::NilArray;
    }
    s.tx = Some(held.tx);
    s.collect = Some(Vec::with_capacity(queued.len()));
    for (cmd, args) in queued {
        s.dispatch_command(cmd, args).await;
    }
    s.flush().await;
    let replies = s.collect.take().unwrap_or_default();
    s.tx = None;
    txn::unlock(&s.core, held).await;
    Reply::Array(replies)
}

/// RESET's part: leave any transaction.
pub async fn reset(s: &mut Session) {
    s.multi = None;
    unwatch_all(s).await;
}

/// UNWATCH
pub async fn unwatch(s: &mut Session) -> Reply {
    unwatch_all(s).await;
    Reply::Ok
}
