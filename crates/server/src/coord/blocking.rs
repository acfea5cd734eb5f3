//! The client's side of blocking commands (BLPOP, BZPOPMIN, BLMOVE…): the first attempt, the
//! registration on every shard owning a waited key, the wait (served, timed out, unblocked or
//! disconnected) and the clean-up.
//!
//! Everything a blocking command does to data happens atomically, as in Redis:
//! - the first attempt honours the shard lock, and when the keys live on several shards it
//!   holds the lock of all of them while it looks at the keys in order;
//! - a waiter whose keys are all on one shard is served on that shard by the shard itself
//!   (`core::waiters`), right after the command that filled the key;
//! - a command whose keys are used together across shards (BLMOVE/BRPOPLPUSH with source and
//!   destination on different shards) is not served by the source's shard: the shard only
//!   tells the client that the source has data, and the client runs the move under the lock
//!   of both shards, like any multi-shard command. If another client took the data first, it
//!   waits again.

use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures_channel::mpsc;
use futures_lite::{FutureExt, StreamExt};
use shardis_engine::{Command, Fanout};
use shardis_resp::Reply;

use super::{fanout, route, txn};
use crate::core::client::{ClientHandle, Hangup, Unblock};
use crate::core::shard_lock::LockStep;
use crate::core::waiters::{self, is_null, Waiter};
use crate::core::{Core, Request};

/// The reply a ready-only waiter gets: "the key has data, try now".
const READY: Reply = Reply::Ok;

/// Who is blocking: the client record and its hang-up signal.
pub struct Blocker<'a> {
    pub client: &'a ClientHandle,
    pub hangup: &'a Hangup,
}

/// Runs blocking command `cmd` for a client outside MULTI: answers at once when it can, else
/// waits until served, timed out, unblocked, or the client goes away (None: no reply).
pub async fn block(
    core: &Rc<Core>,
    who: Blocker<'_>,
    cmd: &'static Command,
    args: Vec<Bytes>,
    db: usize,
    resp3: bool,
) -> Option<Reply> {
    let Some(blocking) = cmd.blocking else {
        return Some(run_once(core, cmd, args, db, resp3).await);
    };
    let mut waited = Vec::new();
    cmd.waited_key_indexes(&args, &mut waited);
    if waited.is_empty() {
        // No key to wait on means arguments the command rejects (numkeys…): its own error.
        return Some(run_once(core, cmd, args, db, resp3).await);
    }
    // Owned copies: the waiters outlive the read buffer the arguments point into.
    let args: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a)).collect();
    let shards = core.shards;
    let single_shard = route::single_shard(cmd, &args, shards, core.id);
    // Which shard owns which waited keys, in the order the keys were given.
    let mut order: Vec<(usize, Vec<usize>)> = Vec::new();
    for &i in &waited {
        let shard = route::shard_of(&args[i], shards);
        match order.iter_mut().find(|(s, _)| *s == shard) {
            Some((_, keep)) => keep.push(i),
            None => order.push((shard, vec![i])),
        }
    }
    // A command whose keys are used together but live on several shards is run by the
    // client under the lock; its waiters only report that data arrived.
    let moves_across = single_shard.is_none() && cmd.fanout == Fanout::Gather;
    let deadline = match (blocking.timeout)(&args) {
        Ok(t) => t.map(|d| Instant::now() + d),
        // Redis checks the other arguments first: let the command report those.
        Err(e) => {
            let first = attempt(core, cmd, &args, db, resp3, single_shard, &order, &waited).await;
            return Some(if first.is_error() { first } else { e });
        }
    };
    let timeout_reply = blocking.on_timeout.reply();
    loop {
        let reply = attempt(core, cmd, &args, db, resp3, single_shard, &order, &waited).await;
        if !is_null(&reply) {
            return Some(reply);
        }
        // Nothing yet: register on every shard owning a waited key.
        let (tx, mut rx) = mpsc::unbounded();
        let claim = Arc::new(AtomicBool::new(false));
        let mut registered: Vec<(usize, u64)> = Vec::new();
        for (shard, keep) in &order {
            if claim.load(Ordering::SeqCst) {
                break;
            }
            let request = Request {
                cmd,
                args: if single_shard.is_some() {
                    args.clone()
                } else {
                    restrict(cmd, &args, &waited, keep)
                },
                db,
                resp3,
            };
            let waiter = Waiter {
                request,
                keys: keep.iter().map(|&i| args[i].clone()).collect(),
                serves: blocking.serves,
                claim: claim.clone(),
                home: core.id,
                reply: tx.clone(),
                notify_only: moves_across,
            };
            if let Some(Some(id)) = core
                .run_on(*shard, move |c| waiters::register(c, waiter))
                .await
            {
                registered.push((*shard, id));
            }
        }
        who.client.borrow_mut().unblock = Some(Unblock {
            reply: tx,
            claim: claim.clone(),
            timeout_reply: timeout_reply.clone(),
        });
        let outcome = wait(core, who.hangup, &mut rx, deadline).await;
        who.client.borrow_mut().unblock = None;
        // Leave nothing behind on any shard.
        for (shard, id) in registered {
            core.post(shard, Box::new(move |c| waiters::unregister(c, id)));
        }
        let reply = match outcome {
            Some(reply) => Some(reply),
            // Timed out or gone: a shard may have served us in the meantime.
            None if claim.load(Ordering::SeqCst) => rx.next().await,
            None => None,
        };
        match reply {
            Some(r) if moves_across && r == READY => continue, // data arrived: try again
            Some(r) => return Some(r),
            None if who.hangup.is_raised() => return None,
            None => return Some(timeout_reply),
        }
    }
}

/// One non-blocking attempt of a blocking command, atomic with respect to every shard it
/// looks at.
#[allow(clippy::too_many_arguments)]
async fn attempt(
    core: &Rc<Core>,
    cmd: &'static Command,
    args: &[Bytes],
    db: usize,
    resp3: bool,
    single_shard: Option<usize>,
    order: &[(usize, Vec<usize>)],
    waited: &[usize],
) -> Reply {
    if let Some(shard) = single_shard {
        let request = Request {
            cmd,
            args: args.to_vec(),
            db,
            resp3,
        };
        return core
            .send_batch(shard, vec![request], None, LockStep::None)
            .replies()
            .await
            .and_then(|mut r| r.pop())
            .unwrap_or(Reply::NilArray);
    }
    if cmd.fanout == Fanout::Gather {
        let mut keys = Vec::new();
        cmd.key_indexes(args, &mut keys);
        return fanout::gather(core, cmd, args.to_vec(), &keys, &[], db, resp3, None).await;
    }
    // Keys on several shards, each popped independently: hold every shard's lock and try
    // them in the order the keys were given.
    let plan = txn::plan_keys(core.shards, waited.iter().map(|&i| (db, &args[i][..])));
    let held = txn::lock(core, plan).await;
    let mut reply = Reply::NilArray;
    for (shard, keep) in order {
        let request = Request {
            cmd,
            args: restrict(cmd, args, waited, keep),
            db,
            resp3,
        };
        let got = core
            .send_batch(*shard, vec![request], Some(held.tx), LockStep::None)
            .replies()
            .await
            .and_then(|mut r| r.pop())
            .unwrap_or(Reply::NilArray);
        if !is_null(&got) {
            reply = got;
            break;
        }
    }
    txn::unlock(core, held);
    reply
}

/// Runs the command once on its shard (for arguments it rejects).
async fn run_once(
    core: &Rc<Core>,
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
    };
    core.send_batch(core.id, vec![request], None, LockStep::None)
        .replies()
        .await
        .and_then(|mut r| r.pop())
        .unwrap_or(Reply::NilArray)
}

/// The client's command limited to `keep` (a subset of its waited keys, in order), for a shard
/// that owns only those keys. A key count (BLMPOP's numkeys) right before the keys is adjusted.
fn restrict(cmd: &Command, args: &[Bytes], waited: &[usize], keep: &[usize]) -> Vec<Bytes> {
    let (Some(&first), Some(&last)) = (waited.first(), waited.last()) else {
        return args.to_vec();
    };
    let mut out: Vec<Bytes> = args[..first].to_vec();
    let counted = cmd.facts.key_specs.iter().any(|s| {
        matches!(
            s.find_keys,
            shardis_engine::command::FindKeys::Keynum { .. }
        )
    });
    if counted {
        if let Some(n) = out.last_mut() {
            *n = Bytes::from(keep.len().to_string());
        }
    }
    out.extend(keep.iter().map(|&i| args[i].clone()));
    out.extend(args[last + 1..].iter().cloned());
    out
}

/// Waits for a reply, the deadline, or the client going away.
async fn wait(
    core: &Rc<Core>,
    hangup: &Hangup,
    rx: &mut mpsc::UnboundedReceiver<Reply>,
    deadline: Option<Instant>,
) -> Option<Reply> {
    let timers = core.timers.clone();
    let timer = async {
        match deadline {
            Some(d) => timers.sleep_until(d).await,
            None => std::future::pending().await,
        }
        None
    };
    let gone = async {
        hangup.wait().await;
        None
    };
    let reply = async { rx.next().await };
    reply.or(timer).or(gone).await
}
