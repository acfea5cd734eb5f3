//! The shard's side of blocking commands (BLPOP, BZPOPMIN, BLMOVE…): the clients waiting on
//! this shard's keys, and serving them when a key receives data.
//!
//! Each shard keeps, per key, its waiters in arrival order (first come, first served). When a
//! command leaves data on a waited key, the engine reports the key ready and the shard serves
//! its waiters right after that command, by running the waiter's command (its non-blocking
//! attempt) here. A client waiting on keys of several shards has one registration per shard
//! sharing one claim flag: a shard serves it only after winning the claim, and only once it
//! knows the command will succeed, so a value is never taken for a client another shard
//! already served. The client's side (registering, the timeout) is `coord::blocking`.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures_channel::mpsc;
use shardis_engine::command::Blocking;
use shardis_resp::Reply;

use super::{Core, Request};

/// A client waiting on some keys of one shard.
pub struct Waiter {
    /// The command to run when a key is ready (the client's command, limited to this shard's
    /// keys when they span shards).
    pub request: Request,
    pub keys: Vec<Bytes>,
    /// How the command is served (the command table's rules).
    pub blocking: Blocking,
    /// Set by the shard that serves the client; shared by all its registrations.
    pub claim: Arc<AtomicBool>,
    /// The client's core and its end of the reply channel (used there only).
    pub home: usize,
    pub reply: mpsc::UnboundedSender<Reply>,
    /// Do not run the command: only tell the client (with `+OK`) that a key has data. For
    /// commands whose keys span shards, which the client then runs under the shard lock.
    pub notify_only: bool,
}

/// The waiters of one shard.
#[derive(Default)]
pub struct Waiters {
    by_key: HashMap<(usize, Bytes), VecDeque<u64>>,
    waiters: HashMap<u64, Waiter>,
    next_id: u64,
}

/// True for the null replies that mean "nothing there".
pub fn is_null(reply: &Reply) -> bool {
    matches!(reply, Reply::Nil | Reply::NilArray)
}

/// What became of a waiter that was looked at.
enum Outcome {
    Served,
    /// Another shard served it.
    Gone,
    Wait,
}

/// Registers a waiter on this core's shard, unless one of its keys can serve it right away
/// (so nothing arriving between the client's attempt and this registration is missed).
/// Returns the waiter id while it waits.
pub fn register(core: &Rc<Core>, waiter: Waiter) -> Option<u64> {
    if !matches!(try_serve(core, &waiter, None), Outcome::Wait) {
        return None;
    }
    Some(add(core, waiter))
}

/// Registers a waiter without looking at its keys first: for the step that just found them
/// empty (nothing can have changed since), or while the client holds their lock.
pub fn add(core: &Rc<Core>, waiter: Waiter) -> u64 {
    let db = waiter.request.db;
    let mut waiters = core.waiters.borrow_mut();
    let id = waiters.next_id;
    waiters.next_id += 1;
    let mut shard = core.shard.borrow_mut();
    for key in &waiter.keys {
        waiters
            .by_key
            .entry((db, key.clone()))
            .or_default()
            .push_back(id);
        shard.blocked_keys.insert((db, key.clone()));
    }
    waiters.waiters.insert(id, waiter);
    id
}

/// Removes a waiter (served, timed out, disconnected, or served elsewhere).
pub fn unregister(core: &Core, id: u64) {
    let mut waiters = core.waiters.borrow_mut();
    let Some(waiter) = waiters.waiters.remove(&id) else {
        return;
    };
    let db = waiter.request.db;
    let mut shard = core.shard.borrow_mut();
    for key in waiter.keys {
        let slot = (db, key);
        if let Some(queue) = waiters.by_key.get_mut(&slot) {
            queue.retain(|&w| w != id);
            if queue.is_empty() {
                waiters.by_key.remove(&slot);
                shard.blocked_keys.remove(&slot);
            }
        }
    }
}

/// Serves the waiter if `signalled` (or, with None, one of its keys) can serve it (the command
/// table's readiness rule) and the claim is won.
fn try_serve(core: &Rc<Core>, waiter: &Waiter, signalled: Option<&Bytes>) -> Outcome {
    if waiter.claim.load(Ordering::SeqCst) {
        return Outcome::Gone;
    }
    let req = &waiter.request;
    let is_ready = |k: &&Bytes| {
        // Keys a transaction holds are served when it releases them.
        !core.key_locked(req.db, k)
            && core.with_ctx(req.db, req.resp3, |ctx| {
                (waiter.blocking.ready)(ctx, &req.args, k)
            })
    };
    let ready = match signalled {
        Some(key) => Some(key).filter(is_ready),
        None => waiter.keys.iter().find(is_ready),
    };
    let Some(key) = ready else {
        return Outcome::Wait;
    };
    if waiter
        .claim
        .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        return Outcome::Gone;
    }
    if waiter.notify_only {
        deliver(core, waiter.home, &waiter.reply, Reply::Ok);
        return Outcome::Served;
    }
    // Admitted when it blocked, as in Redis: serving it is never refused for memory.
    let started = std::time::Instant::now();
    let reply = core.memory.admitted(true, || match waiter.blocking.serve {
        // Through the engine's write hook, which logs what serving changed.
        Some(serve) => core.with_ctx(req.db, req.resp3, |ctx| {
            shardis_engine::journal::serve(ctx, req.cmd, serve, &req.args, key)
        }),
        None => core.execute_unserved(req.cmd, &req.args, req.db, req.resp3, req.track, req.client),
    });
    if waiter.blocking.serve.is_some() && !is_null(&reply) {
        // The call is recorded as it is served (`execute_unserved` records the others).
        core.record_call(req.cmd, &req.args, req.client, started.elapsed(), &reply);
    }
    if is_null(&reply) {
        // Only if the value vanished under us: give the claim back and keep waiting.
        waiter.claim.store(false, Ordering::SeqCst);
        return Outcome::Wait;
    }
    deliver(core, waiter.home, &waiter.reply, reply);
    Outcome::Served
}

/// Sends `reply` to a waiting client's task, on the client's own core.
pub fn deliver(core: &Rc<Core>, home: usize, to: &mpsc::UnboundedSender<Reply>, reply: Reply) {
    if home == core.id {
        let _ = to.unbounded_send(reply);
    } else {
        let to = to.clone();
        core.post(
            home,
            Box::new(move |_| {
                let _ = to.unbounded_send(reply);
            }),
        );
    }
}

/// Serves the waiters of every key reported ready, in arrival order, until no ready key is
/// left (a served BLMOVE may make another key ready). A key a transaction holds waits for its
/// release (`Core::release` reports it again).
pub fn serve_ready(core: &Rc<Core>) {
    loop {
        let ready = std::mem::take(&mut core.shard.borrow_mut().ready_keys);
        if ready.is_empty() {
            return;
        }
        for slot in ready {
            if core.key_locked(slot.0, &slot.1) {
                core.defer_ready(slot);
                continue;
            }
            loop {
                let next = core
                    .waiters
                    .borrow()
                    .by_key
                    .get(&slot)
                    .and_then(|q| q.front().copied());
                let Some(id) = next else { break };
                let outcome = {
                    let waiters = core.waiters.borrow();
                    match waiters.waiters.get(&id) {
                        Some(w) => try_serve(core, w, Some(&slot.1)),
                        None => Outcome::Gone,
                    }
                };
                match outcome {
                    Outcome::Wait => break, // the key is empty again: the rest keep waiting
                    Outcome::Served | Outcome::Gone => {
                        unregister(core, id);
                        if let Some(q) = core.waiters.borrow_mut().by_key.get_mut(&slot) {
                            q.retain(|&w| w != id);
                        }
                    }
                }
            }
        }
    }
}
