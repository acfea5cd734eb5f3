//! The client's side of blocking commands (BLPOP, BZPOPMIN, BLMOVE, XREAD BLOCK…): the first
//! attempt, the registration on every shard owning a waited key, the wait (served, timed out,
//! unblocked or disconnected) and the clean-up.
//!
//! Everything a blocking command does to data happens atomically, as in Redis:
//! - the first attempt honours the shard lock; when the keys live on several shards it holds
//!   the lock of all of them, and a waiter's arguments are prepared (XREAD's `$` pinned) in the
//!   same step as the attempt that found nothing, so nothing arriving in between is missed;
//! - a waiter whose keys are all on one shard is served on that shard by the shard itself
//!   (`core::waiters`), right after the command that made a key ready;
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
use shardis_engine::command::{Blocking, FindKeys, Wait};
use shardis_engine::{Command, Fanout};
use shardis_resp::Reply;

use super::{fanout, route, txn};
use crate::core::client::{ClientHandle, Hangup, Unblock};
use crate::core::shard_lock::LockStep;
use crate::core::tracking::Caller;
use crate::core::waiters::{self, is_null, Waiter};
use crate::core::{Core, Request};

/// The reply a ready-only waiter gets: "the key has data, try now".
const READY: Reply = Reply::Ok;

/// Who is blocking: the client record and its hang-up signal, and what the shards are told
/// about it when it tracks keys.
pub struct Blocker<'a> {
    pub client: &'a ClientHandle,
    pub hangup: &'a Hangup,
    pub track: Option<Caller>,
}

/// One call of a blocking command: what it is, where its keys are.
struct Call {
    cmd: &'static Command,
    blocking: Blocking,
    args: Vec<Bytes>,
    db: usize,
    resp3: bool,
    track: Option<Caller>,
    /// The client blocking (its call is recorded when served).
    client: u64,
    /// The indexes of the keys it waits on.
    waited: Vec<usize>,
    /// The shard owning each group of waited keys, in key order.
    order: Vec<(usize, Vec<usize>)>,
    single_shard: Option<usize>,
}

/// What an attempt found, and (when nothing) where the client now waits.
struct Attempt {
    reply: Reply,
    registered: Vec<(usize, u64)>,
}

/// The waiter an attempt registers when it finds nothing: everything but the arguments (the
/// shard prepares those) and the keys.
#[derive(Clone)]
struct Template {
    claim: Arc<AtomicBool>,
    reply: mpsc::UnboundedSender<Reply>,
    home: usize,
    notify_only: bool,
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
    let track = who.track;
    let client = who.client.borrow().id;
    let Some(blocking) = cmd.blocking else {
        return Some(run_once(core, cmd, args, db, resp3, track, client).await);
    };
    let mut waited = Vec::new();
    cmd.waited_key_indexes(&args, &mut waited);
    if waited.is_empty() {
        // No key to wait on means arguments the command rejects (numkeys…): its own error.
        return Some(run_once(core, cmd, args, db, resp3, track, client).await);
    }
    // Owned copies: the waiters outlive the read buffer the arguments point into.
    let args: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a)).collect();
    let shards = core.shards;
    let mut order: Vec<(usize, Vec<usize>)> = Vec::new();
    for &i in &waited {
        let shard = route::shard_of(&args[i], shards);
        match order.iter_mut().find(|(s, _)| *s == shard) {
            Some((_, keep)) => keep.push(i),
            None => order.push((shard, vec![i])),
        }
    }
    let call = Call {
        single_shard: route::single_shard(cmd, &args, shards, core.id),
        cmd,
        blocking,
        args,
        db,
        resp3,
        track,
        client,
        waited,
        order,
    };
    // A command whose keys are used together but live on several shards is run by the
    // client under the lock; its waiters only report that data arrived.
    let moves_across = call.single_shard.is_none() && cmd.fanout == Fanout::Gather;
    let wait = match (blocking.timeout)(&call.args) {
        Ok(w) => w,
        // Redis checks the other arguments first: let the command report those.
        Err(e) => {
            let first = attempt(core, &call, None).await.reply;
            return Some(if first.is_error() { first } else { e });
        }
    };
    let deadline = match wait {
        Wait::For(d) => Some(Instant::now() + d),
        Wait::Forever | Wait::Never => None,
    };
    let timeout_reply = blocking.on_timeout.reply();
    loop {
        // A client gone before an attempt gets nothing: an attempt would take shard locks
        // (and could pop an element nobody receives). Dropped blocked clients otherwise queue
        // for locks behind live ones.
        if who.hangup.is_raised() {
            return None;
        }
        let (tx, mut rx) = mpsc::unbounded();
        let claim = Arc::new(AtomicBool::new(false));
        let template = Template {
            claim: claim.clone(),
            reply: tx.clone(),
            home: core.id,
            notify_only: moves_across,
        };
        let register = (wait != Wait::Never).then_some(&template);
        let attempted = Instant::now();
        let first = attempt(core, &call, register).await;
        let attempt_took = attempted.elapsed();
        if !is_null(&first.reply) || wait == Wait::Never {
            return Some(first.reply);
        }
        let registered = first.registered;
        let slot = call
            .waited
            .first()
            .and_then(|&i| call.args.get(i))
            .map_or(0, |k| route::key_slot(k));
        who.client.borrow_mut().unblock = Some(Unblock {
            reply: tx,
            claim: claim.clone(),
            timeout_reply: timeout_reply.clone(),
            slot,
            write: cmd.is_write(),
        });
        let outcome = wait_for(core, who.hangup, &mut rx, deadline).await;
        {
            let mut client = who.client.borrow_mut();
            client.unblock = None;
            // The wait was the command at work, not idleness: `timeout` counts from its end.
            // (Redis writes the reply, which refreshes the clock, before its next idle check
            // can run; here the reply may still be in flight when that check comes.)
            client.last_active_ms = core.now_ms();
        }
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
            None => {
                // A timeout is a call too (Redis counts it, with the time the command ran).
                core.record_call(cmd, &call.args, client, attempt_took, &timeout_reply);
                return Some(timeout_reply);
            }
        }
    }
}

/// On the shard owning `keys`: runs `args`, and when that found nothing, registers the waiter
/// (its arguments prepared) in the same step, so nothing arriving in between is missed.
#[allow(clippy::too_many_arguments)]
fn run_and_register(
    core: &Rc<Core>,
    cmd: &'static Command,
    blocking: Blocking,
    args: &[Bytes],
    keys: Vec<Bytes>,
    (db, resp3, track, client): (usize, bool, Option<Caller>, u64),
    template: Option<Template>,
) -> (Reply, Option<u64>) {
    let reply = core.execute(cmd, args, db, resp3, track, client);
    let Some(template) = template.filter(|_| is_null(&reply)) else {
        return (reply, None);
    };
    let args = match blocking.prepare {
        Some(prepare) => core.with_ctx(db, resp3, |ctx| prepare(ctx, args)),
        None => args.to_vec(),
    };
    (
        reply,
        Some(waiters::add(
            core,
            waiter(
                cmd,
                blocking,
                args,
                keys,
                (db, resp3, track, client),
                &template,
            ),
        )),
    )
}

/// A waiter from the template.
#[allow(clippy::too_many_arguments)]
fn waiter(
    cmd: &'static Command,
    blocking: Blocking,
    args: Vec<Bytes>,
    keys: Vec<Bytes>,
    (db, resp3, track, client): (usize, bool, Option<Caller>, u64),
    template: &Template,
) -> Waiter {
    Waiter {
        request: Request {
            cmd,
            args,
            db,
            resp3,
            track,
            client,
        },
        keys,
        blocking,
        claim: template.claim.clone(),
        home: template.home,
        reply: template.reply.clone(),
        notify_only: template.notify_only,
    }
}

/// The waited keys of `shard`.
fn keys_on(call: &Call, shard: usize) -> Vec<Bytes> {
    call.order
        .iter()
        .find(|(s, _)| *s == shard)
        .map(|(_, keep)| keep.iter().map(|&i| call.args[i].clone()).collect())
        .unwrap_or_default()
}

/// One attempt, atomic with respect to every shard it looks at; with `register`, a client
/// that found nothing is registered on those shards before anything else can run there.
async fn attempt(core: &Rc<Core>, call: &Call, register: Option<&Template>) -> Attempt {
    let (cmd, blocking, db, resp3) = (call.cmd, call.blocking, call.db, call.resp3);
    let who = (db, resp3, call.track, call.client);
    if let Some(shard) = call.single_shard {
        let (args, keys, template) = (call.args.clone(), keys_on(call, shard), register.cloned());
        let free = core
            .run_on(shard, move |c| {
                if c.lock_blocks(cmd, &args, db, None) {
                    return None;
                }
                Some(run_and_register(
                    c, cmd, blocking, &args, keys, who, template,
                ))
            })
            .await
            .flatten();
        let (reply, id) = match free {
            Some(done) => done,
            None => {
                // A transaction holds these keys: take their lock, as any command would wait.
                let plan = txn::plan_keys(
                    core.shards,
                    call.waited.iter().map(|&i| (db, &call.args[i][..])),
                );
                let held = txn::lock(core, plan).await;
                let (args, keys, template) =
                    (call.args.clone(), keys_on(call, shard), register.cloned());
                let done = core
                    .run_on(shard, move |c| {
                        run_and_register(c, cmd, blocking, &args, keys, who, template)
                    })
                    .await;
                txn::unlock(core, held).await;
                done.unwrap_or((Reply::NilArray, None))
            }
        };
        return Attempt {
            reply,
            registered: id.map(|id| (shard, id)).into_iter().collect(),
        };
    }
    if cmd.fanout == Fanout::Gather {
        let mut keys = Vec::new();
        cmd.key_indexes(&call.args, &mut keys);
        let reply = fanout::gather(
            core,
            cmd,
            call.args.clone(),
            &keys,
            &[],
            db,
            resp3,
            call.track,
            None,
            false,
        )
        .await;
        let mut registered = Vec::new();
        if let (true, Some(template)) = (is_null(&reply), register) {
            // Moves across shards are re-run by the client; its waiters only watch the keys,
            // and look at them first, since the lock was released after the attempt.
            for (shard, _) in &call.order {
                let w = waiter(
                    cmd,
                    blocking,
                    call.args.clone(),
                    keys_on(call, *shard),
                    who,
                    template,
                );
                if let Some(Some(id)) = core.run_on(*shard, move |c| waiters::register(c, w)).await
                {
                    registered.push((*shard, id));
                }
            }
        }
        return Attempt { reply, registered };
    }
    // Keys on several shards: hold every shard's lock while looking at them and registering.
    let plan = txn::plan_keys(
        core.shards,
        call.waited.iter().map(|&i| (db, &call.args[i][..])),
    );
    let held = txn::lock(core, plan).await;
    let attempt = attempt_shards(core, call, register).await;
    txn::unlock(core, held).await;
    attempt
}

/// The attempt over several shards, their locks held: a command with a split rule (XREAD)
/// runs on every shard and its replies merge (after every shard's check passed); others
/// (BLPOP on keys of several shards) take the first key that has something, in order. When
/// nothing was found anywhere, the waiters registered on the way stay.
async fn attempt_shards(core: &Rc<Core>, call: &Call, register: Option<&Template>) -> Attempt {
    let (cmd, blocking, db, resp3) = (call.cmd, call.blocking, call.db, call.resp3);
    let who = (db, resp3, call.track, call.client);
    let per_shard: Vec<(usize, Vec<usize>, Vec<Bytes>)> = call
        .order
        .iter()
        .map(|(shard, keep)| {
            let sub = match cmd.split_rule {
                Some(rule) => (rule.args)(&call.args, keep),
                None => restrict(cmd, &call.args, &call.waited, keep),
            };
            (*shard, keep.clone(), sub)
        })
        .collect();
    if let Some(rule) = cmd.split_rule {
        if let Some(e) = fanout::check_split(core, rule, &per_shard, db, resp3, None).await {
            return Attempt {
                reply: e,
                registered: Vec::new(),
            };
        }
    }
    let mut parts = Vec::new();
    let mut registered = Vec::new();
    let mut found = None;
    for (shard, keep, sub) in per_shard {
        let (keys, template) = (keys_on(call, shard), register.cloned());
        let (reply, id) = core
            .run_on(shard, move |c| {
                run_and_register(c, cmd, blocking, &sub, keys, who, template)
            })
            .await
            .unwrap_or((Reply::NilArray, None));
        registered.extend(id.map(|id| (shard, id)));
        if !is_null(&reply) && cmd.split_rule.is_none() {
            found = Some(reply);
            break;
        }
        parts.push((keep, reply));
    }
    let reply = match (found, cmd.split_rule) {
        (Some(reply), _) => reply,
        (None, Some(rule)) => (rule.merge)(&call.args, parts),
        (None, None) => Reply::NilArray,
    };
    if !is_null(&reply) {
        // Served after all: nobody waits.
        for (shard, id) in registered.drain(..) {
            core.post(shard, Box::new(move |c| waiters::unregister(c, id)));
        }
    }
    Attempt { reply, registered }
}

/// Runs the command once on its shard (for arguments it rejects).
async fn run_once(
    core: &Rc<Core>,
    cmd: &'static Command,
    args: Vec<Bytes>,
    db: usize,
    resp3: bool,
    track: Option<Caller>,
    client: u64,
) -> Reply {
    let request = Request {
        cmd,
        args,
        db,
        resp3,
        track,
        client,
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
    let counted = cmd
        .facts
        .key_specs
        .iter()
        .any(|s| matches!(s.find_keys, FindKeys::Keynum { .. }));
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
async fn wait_for(
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
