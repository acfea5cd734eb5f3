//! Carrying out a connection's commands that must wait: for another shard's answer, a lock, a
//! blocked pop, or every core (INFO, CLIENT LIST…). The event loop serves everything else
//! inline and hands such a command, with the session, to a task running [`run`].
//!
//! EXEC runs here too: its queued commands go through the same paths, with the commands bound
//! for single shards sent together per shard.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use shardis_engine::command::Flags;
use shardis_engine::{Command, Exec, Fanout, ServerCmd};
use shardis_resp::Reply;

use super::multi;
use super::session::Session;
use crate::cmd;
use crate::coord::blocking::{self, Blocker};
use crate::coord::route::{self, Target};
use crate::coord::{fanout, txn};
use crate::core::memory;
use crate::core::shard_lock::LockStep;
use crate::core::stopwatch::Stopwatch;
use crate::core::{Batch, Request};

/// Runs one command (already looked up; MULTI's queuing is the caller's). None: no reply (the
/// connection closes). Boxed: EXEC runs its queued commands through here.
pub fn run<'a>(
    s: &'a mut Session,
    cmd: &'static Command,
    args: Vec<Bytes>,
) -> Pin<Box<dyn Future<Output = Option<Reply>> + 'a>> {
    Box::pin(async move {
        let started = Stopwatch::start();
        // A runtime command that may use memory (FUNCTION LOAD, FUNCTION RESTORE) writes on
        // every shard: refused, as Redis refuses it, when this one cannot make room or
        // another is full. Inside EXEC the transaction was admitted as a whole.
        if matches!(cmd.exec, Exec::Server(_))
            && cmd.flags.has(Flags::DENYOOM)
            && s.tx.is_none()
            && (memory::admit(&s.core, cmd).is_some() || memory::any_oom(0..s.core.shards))
        {
            let refused = Reply::err(memory::OOM_ERROR);
            s.core.record_rejected(Some(cmd), &refused);
            return Some(refused);
        }
        let reply = match cmd.exec {
            Exec::Server(ServerCmd::Exec) => Some(exec(s).await),
            Exec::Server(which) if cmd::must_wait(which) => cmd::run_async(s, which, &args).await,
            Exec::Server(which) => cmd::run_sync(s, which, cmd, &args),
            // Recorded where it runs (see `shard_command`).
            Exec::Shard(_) => return shard_command(s, cmd, args).await,
        };
        if let Some(r) = &reply {
            let client = s.client.borrow().id;
            let count_error = !std::mem::take(&mut s.error_counted);
            s.core
                .record_call_counting(cmd, &args, client, started.elapsed(), r, count_error);
        }
        reply
    })
}

/// A command over shard data, wherever its keys are.
async fn shard_command(s: &mut Session, cmd: &'static Command, args: Vec<Bytes>) -> Option<Reply> {
    let (db, resp3) = s.db_resp3();
    let track = s.tracker();
    let core = s.core.clone();
    let client = s.client.borrow().id;
    let shards = core.shards;
    if let Fanout::AllShards(merge) = cmd.fanout {
        if shards > 1 {
            let started = Stopwatch::start();
            let recorded = args.clone();
            let reply = fanout::all_shards(&core, cmd, args, db, resp3, merge, s.tx).await;
            core.record_call(cmd, &recorded, client, started.elapsed(), &reply);
            return Some(reply);
        }
    }
    // Inside EXEC a blocking command runs as its non-blocking form.
    if cmd.flags.has(Flags::BLOCKING) && !s.in_exec && cmd.may_block(&args) {
        let who = Blocker {
            client: &s.client,
            hangup: &s.hangup,
            track,
        };
        return blocking::block(&core, who, cmd, args, db, resp3).await;
    }
    let mut keys = Vec::new();
    let target = route::target(cmd, &args, shards, core.id, &mut keys);
    // Over several shards, a write that may use memory is refused as a whole, before any
    // part runs, if one of them is full (a single shard decides for itself).
    if cmd.flags.has(Flags::DENYOOM)
        && (matches!(target, Target::Several) || cmd.key_finder.is_some())
        && s.tx.is_none()
        && memory::any_oom(keys.iter().map(|&i| route::shard_of(&args[i], shards)))
    {
        return Some(Reply::err(memory::OOM_ERROR));
    }
    if let (Some(finder), true, Some(&first)) = (cmd.key_finder, shards > 1, keys.first()) {
        // Keys only the data can name (SORT BY/GET patterns): ask the first key's shard.
        let home = route::shard_of(&args[first], shards);
        let probe = args.clone();
        let clock = core.frozen_clock(s.tx);
        let extra = core
            .run_on(home, move |c| {
                let now = clock.unwrap_or_else(|| c.now_ms());
                let mut shard = c.shard.borrow_mut();
                finder(
                    &mut shardis_engine::Ctx::new(&mut shard, db, now, resp3),
                    &probe,
                )
            })
            .await
            .unwrap_or_default();
        if extra.iter().any(|k| route::shard_of(k, shards) != home) {
            let started = Stopwatch::start();
            let recorded = args.clone();
            let reply = fanout::gather(
                &core,
                cmd,
                args,
                &keys,
                &extra,
                db,
                resp3,
                track,
                s.tx,
                s.from_script,
            )
            .await;
            core.record_call(cmd, &recorded, client, started.elapsed(), &reply);
            return Some(reply);
        }
    }
    Some(match target {
        Target::Shard(shard) if shard == core.id && s.tx.is_some() => core
            .at_clock(core.frozen_clock(s.tx), || {
                core.execute_as(cmd, &args, db, resp3, track, client, s.from_script)
            }),
        Target::Shard(shard) if shard == core.id => {
            // Outside a transaction, wait while a lock holder claims these keys; a script
            // holding them that turns busy meanwhile makes this -BUSY (scripting).
            while core.lock_blocks(cmd, &args, db, None) {
                if let Some(busy) = crate::script::busy::refuse(&core, cmd, &args) {
                    return Some(crate::script::busy::reject(s, cmd, busy));
                }
                let _ = core.lock_released().await;
            }
            core.execute(cmd, &args, db, resp3, track, client)
        }
        Target::Shard(shard) => {
            let request = Request {
                cmd,
                args,
                db,
                resp3,
                track,
                client,
            };
            core.send_batch_as(shard, vec![request], s.tx, LockStep::None, s.from_script)
                .replies()
                .await
                .and_then(|mut r| r.pop())
                .unwrap_or_else(|| Reply::err("ERR shard did not answer"))
        }
        Target::Several => {
            // Recorded here as one call, with the time it took over every shard.
            let started = Stopwatch::start();
            let recorded = args.clone();
            let reply = match cmd.fanout {
                Fanout::Split(merge) => {
                    fanout::split(&core, cmd, args, &keys, db, resp3, track, merge, s.tx).await
                }
                _ => {
                    fanout::gather(
                        &core,
                        cmd,
                        args,
                        &keys,
                        &[],
                        db,
                        resp3,
                        track,
                        s.tx,
                        s.from_script,
                    )
                    .await
                }
            };
            core.record_call(cmd, &recorded, client, started.elapsed(), &reply);
            reply
        }
    })
}

/// EXEC.
async fn exec(s: &mut Session) -> Reply {
    // The server may have become a replica, or lost its primary, since the commands were
    // queued: refused as a whole, as Redis judges EXEC by the flags of what it queued.
    let refused = crate::replica::refuse_exec(s);
    let Some(state) = s.multi.take() else {
        return Reply::err("ERR EXEC without MULTI");
    };
    let exec_args = [bytes::Bytes::from_static(b"exec")];
    let mut state = state;
    // A transaction holding writes, when too few good replicas are connected: refused as a
    // whole before anything else is checked, as Redis refuses EXEC then.
    if state.queued.iter().any(|(cmd, _)| cmd.is_write()) && crate::primary::too_few_replicas() {
        multi::unwatch_all(s);
        feed_monitors(s, &exec_args);
        return Reply::error(format!(
            "EXECABORT Transaction discarded because of: {}",
            crate::primary::NOREPLICAS
        ));
    }
    if let Some(refused) = refused {
        multi::unwatch_all(s);
        feed_monitors(s, &exec_args);
        return Reply::error(format!(
            "EXECABORT Transaction discarded because of: {refused}"
        ));
    }
    // ACL rules may have changed since the commands were queued: denied ones answer an
    // error in their place and do not run.
    let denied = recheck_acl(s, &mut state.queued);
    if state.failed {
        multi::unwatch_all(s);
        feed_monitors(s, &exec_args);
        return Reply::err("EXECABORT Transaction discarded because of previous errors.");
    }
    // MONITOR shows the queued commands as they run, then EXEC.
    let described: Vec<Vec<Bytes>> = if s.core.pubsub.borrow().has_monitors() {
        state
            .queued
            .iter()
            .filter(|(cmd, _)| crate::core::monitored(cmd))
            .map(|(cmd, args)| crate::core::calls::redacted(cmd, args).into_owned())
            .collect()
    } else {
        Vec::new()
    };
    let (plan, simple) = multi::plan(s, &state.queued);
    // Redis refuses a transaction that may use memory when over the limit, before any of it
    // runs; here, when a shard it writes to is full.
    if state
        .queued
        .iter()
        .any(|(cmd, _)| cmd.flags.has(Flags::DENYOOM))
        && memory::any_oom(plan.iter().map(|(shard, _)| *shard))
    {
        multi::unwatch_all(s);
        return Reply::error(format!(
            "EXECABORT Transaction discarded because of: {}",
            memory::OOM_ERROR
        ));
    }
    let reply = if simple && plan.len() <= 1 {
        let shard = plan.first().map_or(s.core.id, |(shard, _)| *shard);
        exec_on_one_shard(s, shard, state.queued).await
    } else if let Some(jobs) = s
        .watched
        .is_empty()
        .then(|| multi::one_shard_each(s, &state.queued))
        .flatten()
    {
        // Every command on one shard (the shards differ): one fused message per shard.
        Reply::Array(txn::run_jobs_locked(&s.core, plan, jobs).await)
    } else {
        exec_locked(s, plan, state.queued).await
    };
    let reply = match reply {
        Reply::Array(mut replies) if !denied.is_empty() => {
            for (at, err) in denied {
                replies.insert(at.min(replies.len()), err);
            }
            Reply::Array(replies)
        }
        other => other,
    };
    multi::unwatch_all(s);
    for args in &described {
        feed_monitors(s, args);
    }
    feed_monitors(s, &exec_args);
    reply
}

/// Removes the queued commands the client's user may no longer run; returns each one's
/// position and error.
fn recheck_acl(
    s: &Session,
    queued: &mut Vec<(&'static Command, Vec<Bytes>)>,
) -> Vec<(usize, Reply)> {
    let mut denied = Vec::new();
    let mut at = 0;
    queued.retain(|(cmd, args)| {
        let keep = match cmd::acl::admit_queued(s, cmd, args) {
            Ok(()) => true,
            Err(e) => {
                denied.push((at, e));
                false
            }
        };
        at += 1;
        keep
    });
    denied
}

/// Describes a command of this session to the MONITOR clients.
fn feed_monitors(s: &Session, args: &[Bytes]) {
    let c = s.client.borrow();
    s.core.feed_monitors(&c.addr, c.db, args);
}

/// The fast path: every command for one shard, run there as one atomic batch, WATCH checked
/// on the shard just before it runs. Trivial runtime commands (PING, SELECT…) answer here.
async fn exec_on_one_shard(
    s: &mut Session,
    shard: usize,
    queued: Vec<(&'static Command, Vec<Bytes>)>,
) -> Reply {
    let core = s.core.clone();
    let mut replies: Vec<Option<Reply>> = Vec::with_capacity(queued.len());
    let (answer, rx) = core.answer_channel();
    let mut batch = Batch::for_task(core.id, Vec::new(), answer);
    for (cmd, args) in queued {
        match cmd.exec {
            Exec::Server(which) => replies.push(cmd::call_sync(s, which, cmd, &args)),
            Exec::Shard(_) => {
                let (db, resp3) = s.db_resp3();
                let client = s.client.borrow().id;
                batch.push(cmd, args.into_iter(), db, resp3, s.tracker(), client);
                replies.push(None);
            }
        }
    }
    batch.atomic = true;
    batch.watch = multi::watched_on(s, shard);
    core.submit_batch(shard, batch);
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

/// The general path: lock every involved shard, check WATCH, run, release. Consecutive
/// commands bound for single shards are sent together, one batch per shard.
async fn exec_locked(
    s: &mut Session,
    plan: Vec<(usize, txn::Intents)>,
    queued: Vec<(&'static Command, Vec<Bytes>)>,
) -> Reply {
    let core = s.core.clone();
    let held = txn::lock(&core, plan).await;
    let mut intact = true;
    let mut shards: Vec<usize> = s.watched.iter().map(|w| w.shard).collect();
    shards.sort_unstable();
    shards.dedup();
    for shard in shards {
        let watch = multi::watched_on(s, shard);
        intact &= core
            .run_on(shard, move |c| c.watch_intact(&watch))
            .await
            .unwrap_or(false);
    }
    if !intact {
        txn::unlock(&core, held).await;
        return Reply::NilArray;
    }
    s.tx = Some(held.tx);
    s.publish_within = held.publish_within();
    s.in_exec = true;
    let mut replies: Vec<Reply> = Vec::with_capacity(queued.len());
    // Commands waiting to be sent together: (position, shard, request).
    let mut group: Vec<(usize, Request)> = Vec::new();
    let mut at: Vec<usize> = Vec::new();
    for (cmd, args) in queued {
        if let Some(shard) = route::lone_shard(cmd, &args, core.shards, core.id) {
            let (db, resp3) = s.db_resp3();
            at.push(replies.len());
            replies.push(Reply::Nil);
            group.push((
                shard,
                Request {
                    cmd,
                    args,
                    db,
                    resp3,
                    track: s.tracker(),
                    client: s.client.borrow().id,
                },
            ));
            continue;
        }
        flush_group(s, &mut group, &mut at, &mut replies).await;
        let reply = run(s, cmd, args).await.unwrap_or(Reply::Nil);
        replies.push(reply);
    }
    flush_group(s, &mut group, &mut at, &mut replies).await;
    s.tx = None;
    s.publish_within = None;
    s.in_exec = false;
    txn::unlock(&core, held).await;
    Reply::Array(replies)
}

/// Sends the grouped commands of an EXEC (one batch per shard) and puts their replies in place.
async fn flush_group(
    s: &Session,
    group: &mut Vec<(usize, Request)>,
    at: &mut Vec<usize>,
    replies: &mut [Reply],
) {
    if group.is_empty() {
        return;
    }
    let got = txn::run_each(&s.core, std::mem::take(group), s.tx).await;
    for (i, r) in std::mem::take(at).into_iter().zip(got) {
        if let Some(slot) = replies.get_mut(i) {
            *slot = r;
        }
    }
}
