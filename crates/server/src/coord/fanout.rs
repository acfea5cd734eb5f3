//! Commands whose keys live on several shards, and keyless commands over all data.
//!
//! - split: every key is independent (MGET, MSET, DEL…): each shard runs the command over its
//!   own keys and the replies are merged.
//! - all shards: the same command on every shard (DBSIZE, FLUSHALL, KEYS…), merged.
//! - gather: the keys are used together (RENAME, SINTERSTORE, LMOVE…): their entries are copied
//!   to a scratch shard here, the ordinary single-shard command runs there, and every key it
//!   may have written goes back to its owner.
//!
//! These steps are the place the two-phase shard lock wraps to make them atomic.

use std::rc::Rc;

use bytes::Bytes;
use shardis_engine::command::SplitRule;
use shardis_engine::db::Record;
use shardis_engine::{Command, Merge, Shard};
use shardis_resp::Reply;

use super::route;
use super::txn::{self, TxId};
use crate::core::tracking::Caller;
use crate::core::{waiters, Core, Request};

/// Splits a command whose keys are independent by shard and merges the replies.
#[allow(clippy::too_many_arguments)]
pub async fn split(
    core: &Rc<Core>,
    cmd: &'static Command,
    args: Vec<Bytes>,
    keys: &[usize],
    db: usize,
    resp3: bool,
    track: Option<Caller>,
    merge: Merge,
    tx: Option<TxId>,
) -> Reply {
    if let Some(rule) = cmd.split_rule {
        return split_by_rule(core, cmd, rule, args, keys, db, resp3, track, tx).await;
    }
    let step = cmd.key_step();
    // For each shard: the ordinals (in `keys`) of its keys.
    let mut by_shard: Vec<Vec<usize>> = vec![Vec::new(); core.shards];
    for (ordinal, &i) in keys.iter().enumerate() {
        by_shard[route::shard_of(&args[i], core.shards)].push(ordinal);
    }
    let mut jobs = Vec::new();
    let mut owners = Vec::new();
    for (shard, ordinals) in by_shard.iter().enumerate() {
        if ordinals.is_empty() {
            continue;
        }
        let mut sub = Vec::with_capacity(1 + ordinals.len() * step);
        sub.push(args[0].clone());
        for &o in ordinals {
            let at = keys[o];
            sub.extend(args[at..(at + step).min(args.len())].iter().cloned());
        }
        jobs.push((
            shard,
            Request {
                cmd,
                args: sub,
                db,
                resp3,
                track,
                // A part: the whole is recorded by the client's core.
                client: 0,
            },
        ));
        owners.push(shard);
    }
    let replies = match tx {
        Some(tx) => txn::run_each(core, jobs, Some(tx)).await,
        None => {
            let plan = txn::plan_keys(core.shards, keys.iter().map(|&i| (db, &args[i][..])));
            txn::run_jobs_locked(core, plan, jobs).await
        }
    };
    if let Some(err) = replies.iter().find(|r| r.is_error()) {
        return err.clone();
    }
    match merge {
        Merge::ByKey => {
            let mut out: Vec<Reply> = vec![Reply::Nil; keys.len()];
            for (reply, shard) in replies.into_iter().zip(owners) {
                if let Reply::Array(items) = reply {
                    for (item, &ordinal) in items.into_iter().zip(&by_shard[shard]) {
                        out[ordinal] = item;
                    }
                }
            }
            Reply::Array(out)
        }
        other => merge_all(replies, other),
    }
}

/// A split command whose arguments are not `key [arg ...]` runs (XREAD): the command table's
/// rule builds each shard's arguments, every shard checks its part before any runs (so an
/// error is the one the whole call gives, and nothing changed), and the rule merges.
#[allow(clippy::too_many_arguments)]
async fn split_by_rule(
    core: &Rc<Core>,
    cmd: &'static Command,
    rule: SplitRule,
    args: Vec<Bytes>,
    keys: &[usize],
    db: usize,
    resp3: bool,
    track: Option<Caller>,
    tx: Option<TxId>,
) -> Reply {
    let mut by_shard: Vec<(usize, Vec<usize>)> = Vec::new();
    for &i in keys {
        let shard = route::shard_of(&args[i], core.shards);
        match by_shard.iter_mut().find(|(s, _)| *s == shard) {
            Some((_, keep)) => keep.push(i),
            None => by_shard.push((shard, vec![i])),
        }
    }
    let per_shard: Vec<(usize, Vec<usize>, Vec<Bytes>)> = by_shard
        .into_iter()
        .map(|(shard, keep)| {
            let sub = (rule.args)(&args, &keep);
            (shard, keep, sub)
        })
        .collect();
    let plan = txn::plan_keys(core.shards, keys.iter().map(|&i| (db, &args[i][..])));
    // A script's call checks its parts at the script's clock, as they will run.
    let clock = core.frozen_clock(tx);
    locked(
        core,
        tx,
        || plan,
        |tx| async move {
            if let Some(e) = check_split(core, rule, &per_shard, db, resp3, clock).await {
                return e;
            }
            let jobs = per_shard
                .iter()
                .map(|(shard, _, sub)| {
                    (
                        *shard,
                        Request {
                            cmd,
                            args: sub.clone(),
                            db,
                            resp3,
                            track,
                            client: 0,
                        },
                    )
                })
                .collect();
            let replies = txn::run_each(core, jobs, tx).await;
            let parts = per_shard
                .into_iter()
                .zip(replies)
                .map(|((_, keep, _), reply)| (keep, reply))
                .collect();
            (rule.merge)(&args, parts)
        },
    )
    .await
}

/// Checks every shard's part of a split call (at `clock`, a script's, when set); the error
/// of the earliest key in the request, if any.
pub async fn check_split(
    core: &Rc<Core>,
    rule: SplitRule,
    per_shard: &[(usize, Vec<usize>, Vec<Bytes>)],
    db: usize,
    resp3: bool,
    clock: Option<u64>,
) -> Option<Reply> {
    let mut first: Option<(usize, Reply)> = None;
    for (shard, keep, sub) in per_shard {
        let sub = sub.clone();
        let failed = core
            .run_on(*shard, move |c| {
                c.at_clock(clock, || {
                    c.with_ctx(db, resp3, |ctx| (rule.check)(ctx, &sub))
                })
            })
            .await
            .and_then(|r| r.err());
        if let Some((at, e)) = failed {
            let position = keep.get(at).copied().unwrap_or(usize::MAX);
            if first.as_ref().is_none_or(|(p, _)| position < *p) {
                first = Some((position, e));
            }
        }
    }
    first.map(|(_, e)| e)
}

/// Runs a keyless command on every shard and merges the replies.
#[allow(clippy::too_many_arguments)]
pub async fn all_shards(
    core: &Rc<Core>,
    cmd: &'static Command,
    args: Vec<Bytes>,
    db: usize,
    resp3: bool,
    merge: Merge,
    tx: Option<TxId>,
) -> Reply {
    let jobs = (0..core.shards)
        .map(|shard| {
            (
                shard,
                Request {
                    cmd,
                    args: args.clone(),
                    db,
                    resp3,
                    // Keyless: nothing to remember; flushes reach every tracking client.
                    track: None,
                    client: 0,
                },
            )
        })
        .collect();
    let replies = match tx {
        Some(tx) => txn::run_each(core, jobs, Some(tx)).await,
        None => txn::run_jobs_locked(core, txn::plan_all(core.shards), jobs).await,
    };
    if let Some(err) = replies.iter().find(|r| r.is_error()) {
        return err.clone();
    }
    merge_all(replies, merge)
}

fn merge_all(replies: Vec<Reply>, merge: Merge) -> Reply {
    match merge {
        Merge::Ok => Reply::Ok,
        Merge::SumInt => Reply::Int(
            replies
                .iter()
                .map(|r| if let Reply::Int(n) = r { *n } else { 0 })
                .sum(),
        ),
        Merge::Concat | Merge::ByKey => {
            let mut out = Vec::new();
            for r in replies {
                match r {
                    Reply::Array(items) | Reply::Set(items) => out.extend(items),
                    other => out.push(other),
                }
            }
            Reply::Array(out)
        }
    }
}

/// Runs a command whose keys are used together over copies of its keys' entries (`keys` index
/// `args`; `extra` are keys only the data names, such as SORT's BY/GET targets), then writes
/// back every key the command may have changed. For a tracking client (`track`), each key's
/// shard remembers a read, and tells readers of a write, as it copies the key. A script's
/// call (`from_script`) runs as a script's (SORT BY a constant sorts a set).
#[allow(clippy::too_many_arguments)]
pub async fn gather(
    core: &Rc<Core>,
    cmd: &'static Command,
    args: Vec<Bytes>,
    keys: &[usize],
    extra: &[Bytes],
    db: usize,
    resp3: bool,
    track: Option<Caller>,
    tx: Option<TxId>,
    from_script: bool,
) -> Reply {
    let mut seen = ahash::HashSet::default();
    let key_names: Vec<Bytes> = keys
        .iter()
        .map(|&i| &args[i])
        .chain(extra)
        .filter(|k| seen.insert(*k))
        .cloned()
        .collect();
    let plan = || txn::plan_keys(core.shards, key_names.iter().map(|k| (db, &k[..])));
    // The keys a read remembers: the command's own, not those only the data names.
    let remembered: Vec<Bytes> = match track {
        Some(c) if c.remember && cmd.flags.has(shardis_engine::command::Flags::READONLY) => {
            keys.iter().filter_map(|&i| args.get(i).cloned()).collect()
        }
        _ => Vec::new(),
    };
    let step = GatherStep {
        db,
        resp3,
        writer: track.map(|c| c.who),
        remembered,
        from_script,
        clock: core.frozen_clock(tx),
    };
    locked(core, tx, plan, |_| {
        gather_locked(core, cmd, &args, &key_names, step)
    })
    .await
}

/// Runs `body` holding the locks of `plan` (taken here unless the caller's transaction `tx`
/// already holds them).
async fn locked<P, B, F, R>(core: &Rc<Core>, tx: Option<TxId>, plan: P, body: B) -> R
where
    P: FnOnce() -> Vec<(usize, txn::Intents)>,
    B: FnOnce(Option<TxId>) -> F,
    F: std::future::Future<Output = R>,
{
    if tx.is_some() {
        return body(tx).await;
    }
    let held = txn::lock(core, plan()).await;
    let result = body(Some(held.tx)).await;
    txn::unlock(core, held).await;
    result
}

/// What a gather's steps on the keys' shards need to know besides the keys.
struct GatherStep {
    db: usize,
    resp3: bool,
    /// The tracking client running the command (NOLOOP skips its own changes).
    writer: Option<crate::core::pubsub::Subscriber>,
    /// Keys a tracking client reads, remembered as their shards copy them.
    remembered: Vec<Bytes>,
    from_script: bool,
    /// A script's clock, for its calls (see [`Core::freeze_clock`]).
    clock: Option<u64>,
}

async fn gather_locked(
    core: &Rc<Core>,
    cmd: &'static Command,
    args: &[Bytes],
    key_names: &[Bytes],
    step: GatherStep,
) -> Reply {
    let GatherStep {
        db,
        resp3,
        writer,
        remembered,
        from_script,
        clock,
    } = step;
    let config = core.shard.borrow().config.clone();
    let mut scratch = Shard::new(core.id, config);
    // 1. Copy every key's live entry here.
    for shard in 0..core.shards {
        let mine: Vec<Bytes> = key_names
            .iter()
            .filter(|k| route::shard_of(k, core.shards) == shard)
            .cloned()
            .collect();
        if mine.is_empty() {
            continue;
        }
        let remember: Vec<Bytes> = remembered
            .iter()
            .filter(|k| route::shard_of(k, core.shards) == shard)
            .cloned()
            .collect();
        let entries = core
            .run_on(shard, move |c| {
                let entries = c.at_clock(clock, || {
                    let now = c.now_ms();
                    c.with_ctx(db, resp3, |ctx| ctx.shard.export(db, &mine, now))
                });
                if let Some(who) = writer.filter(|_| !remember.is_empty()) {
                    c.track_read(&remember, who);
                }
                mine.into_iter().zip(entries).collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
        for (key, entry) in entries {
            if let (Some(entry), Some(d)) = (entry, scratch.dbs.get_mut(db)) {
                d.insert_record(&key, entry);
            }
        }
    }
    // 2. Run the ordinary command on the scratch shard.
    let reply = {
        let Some(f) = (match cmd.exec {
            shardis_engine::Exec::Shard(f) => Some(f),
            _ => None,
        }) else {
            return Reply::err("ERR internal: not a shard command");
        };
        let now = clock.unwrap_or_else(|| core.now_ms());
        let mut ctx = shardis_engine::Ctx::new(&mut scratch, db, now, resp3);
        ctx.from_script = from_script;
        f(&mut ctx, args)
    };
    // Nothing written (a read, an error, an empty source): nothing goes back, so no key is
    // touched for WATCH and no blocked client is woken.
    if !cmd.is_write() || scratch.dirty == 0 {
        return reply;
    }
    // 3. Write back what may have changed: every key the key specs allow the command to write.
    let written = written_keys(cmd, args);
    for shard in 0..core.shards {
        let updates: Vec<(Bytes, Option<Record>)> = key_names
            .iter()
            .filter(|k| route::shard_of(k, core.shards) == shard && written.contains(k))
            .map(|k| (k.clone(), scratch.dbs.get_mut(db).and_then(|d| d.remove(k))))
            .collect();
        if updates.is_empty() {
            continue;
        }
        core.run_on(shard, move |c| {
            for (key, entry) in updates {
                c.shard.borrow_mut().import(db, key.clone(), entry);
                c.track_changed(&key, writer);
            }
            waiters::serve_ready(c);
        })
        .await;
    }
    reply
}

/// The keys of `args` that the command's key specs say it may write.
fn written_keys(cmd: &Command, args: &[Bytes]) -> Vec<Bytes> {
    let mut idx = Vec::new();
    cmd.written_key_indexes(args, &mut idx);
    idx.iter().map(|&i| args[i].clone()).collect()
}
