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
use shardis_resp::Reply;

use super::{Core, Request};

/// A client waiting on some keys of one shard.
pub struct Waiter {
    /// The command to run when a key is ready (the client's command, limited to this shard's
    /// keys when they span shards).
    pub request: Request,
    pub keys: Vec<Bytes>,
    /// The TYPE of value that serves it.
    pub serves: &'static str,
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

/// Registers a waiter on this core's shard, unless its command can be served right away (the
/// attempt happens here, so no value arriving between the client's first attempt and the
/// registration is missed). Returns the waiter id while it waits.
pub fn register(core: &Rc<Core>, waiter: Waiter) -> Option<u64> {
    if !matches!(try_serve(core, &waiter), Outcome::Wait) {
        return None;
    }
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
    Some(id)
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

/// Runs the waiter's command if one of its keys holds a value of the type it takes and the
/// claim is won.
fn try_serve(core: &Rc<Core>, waiter: &Waiter) -> Outcome {
    if waiter.claim.load(Ordering::SeqCst) {
        return Outcome::Gone;
    }
    let ready = {
        let now = core.now_ms();
        let db = waiter.request.db;
        waiter.keys.iter().any(|k| {
            // Keys a transaction holds are served when it releases them.
            !core.key_locked(db, k)
                && core.shard.borrow_mut().type_of(db, k, now) == Some(waiter.serves)
        })
    };
    if !ready {
        return Outcome::Wait;
    }
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
    let reply = core.memory.admitted(true, || {
        core.execute_unserved(
            waiter.request.cmd,
            &waiter.request.args,
            waiter.request.db,
            waiter.request.resp3,
        )
    });
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
/// left (a served BLMOVE may make another key ready).
pub fn serve_ready(core: &Rc<Core>) {
    loop {
        let ready = std::mem::take(&mut core.shard.borrow_mut().ready_keys);
        if ready.is_empty() {
            return;
        }
        for slot in ready {
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
                        Some(w) => try_serve(core, w),
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
