//! The coordinator's side of the two-phase shard lock, behind MULTI/EXEC, WATCH and every
//! command that touches several shards.
//!
//! 1. Lock: the coordinating core takes the lock of every involved shard in ascending shard
//!    order (so two coordinators can never wait on each other), declaring the keys it will
//!    touch (its intents).
//! 2. Execute and release: the steps run (batched per shard, tagged with the transaction id
//!    so the holder's own requests pass), then every lock is released and parked work resumes.
//!
//! Single-shard work never takes a lock: a batch runs on its shard without interleaving. The
//! shard's side (holders, waiters, parked work) is `core::shard_lock`.

use std::rc::Rc;

use shardis_resp::Reply;

use super::route;
pub use crate::core::shard_lock::{Intents, LockStep, TxId};
use crate::core::{Core, Request};

/// The reply given for a step whose shard stopped answering (only during shutdown).
fn no_answer() -> Reply {
    Reply::err("ERR shard did not answer")
}

/// The locks a coordinator holds.
pub struct Held {
    pub tx: TxId,
    shards: Vec<usize>,
}

impl Held {
    /// Where the transaction's PUBLISHes are logged for the replicas (see
    /// `Session::publish_within`): the highest shard it holds, whose part of the
    /// transaction the stream gives last, so a PUBLISH after its writes follows them all.
    pub fn publish_within(&self) -> Option<(TxId, usize)> {
        self.shards.iter().max().map(|&shard| (self.tx, shard))
    }
}

/// Takes the lock of `shard` for `tx`; completes once it is held.
async fn acquire(core: &Rc<Core>, shard: usize, tx: TxId, intents: Intents, parts: Vec<u32>) {
    let (granted, rx) = core.answer_channel();
    core.post(
        shard,
        Box::new(move |c| c.acquire(tx, intents, parts, granted)),
    );
    let _ = rx.await;
}

/// The shards of a plan, for the log's record of a transaction's end.
fn participants(plan: &[(usize, Intents)]) -> Vec<u32> {
    plan.iter().map(|(s, _)| *s as u32).collect()
}

/// Takes the locks of `plan`'s shards in ascending order (the plan is sorted here).
pub async fn lock(core: &Rc<Core>, mut plan: Vec<(usize, Intents)>) -> Held {
    plan.sort_by_key(|(shard, _)| *shard);
    let tx = core.next_tx();
    let parts = participants(&plan);
    let mut shards = Vec::with_capacity(plan.len());
    for (shard, intents) in plan {
        acquire(core, shard, tx, intents, parts.clone()).await;
        shards.push(shard);
    }
    Held { tx, shards }
}

/// Releases every lock of `held`. With an append-only log, completes once every shard has
/// released (and so logged the end of its part): a transaction's reply must not go out
/// before its ends are in the logs, or a restart could drop an acknowledged transaction.
pub async fn unlock(core: &Rc<Core>, held: Held) {
    let tx = held.tx;
    if !crate::persist::aof::enabled() {
        for shard in held.shards {
            core.post(shard, Box::new(move |c| c.release(tx)));
        }
        return;
    }
    let mut pending = Vec::with_capacity(held.shards.len());
    for shard in held.shards {
        let (done, rx) = core.answer_channel::<()>();
        core.post(
            shard,
            Box::new(move |c| {
                c.release(tx);
                c.answer(done, ());
            }),
        );
        pending.push(rx);
    }
    for rx in pending {
        let _ = rx.await;
    }
}

/// Runs `jobs` (shard, request) as one transaction over `plan`'s shards and returns the replies
/// in job order. Every lock is taken (ascending) before any is released, as two-phase locking
/// requires; to save round trips, the last shard's acquire, run and release travel as one
/// message, and each other remote shard's run and release as another.
pub async fn run_jobs_locked(
    core: &Rc<Core>,
    mut plan: Vec<(usize, Intents)>,
    jobs: Vec<(usize, Request)>,
) -> Vec<Reply> {
    plan.sort_by_key(|(shard, _)| *shard);
    let tx = core.next_tx();
    let parts = participants(&plan);
    let count = jobs.len();
    // Per shard: its requests and their positions in `jobs`.
    let mut work: Vec<(usize, Vec<usize>, Vec<Request>)> = Vec::new();
    for (i, (shard, req)) in jobs.into_iter().enumerate() {
        match work.iter_mut().find(|(s, _, _)| *s == shard) {
            Some((_, at, reqs)) => {
                at.push(i);
                reqs.push(req);
            }
            None => work.push((shard, vec![i], vec![req])),
        }
    }
    let mut take = |shard: usize| match work.iter().position(|(s, _, _)| *s == shard) {
        Some(p) => {
            let (_, at, reqs) = work.swap_remove(p);
            (at, reqs)
        }
        None => (Vec::new(), Vec::new()),
    };
    let mut replies: Vec<Option<Reply>> = (0..count).map(|_| None).collect();
    let mut place = |at: Vec<usize>, got: Vec<Reply>| {
        for (i, r) in at.into_iter().zip(got) {
            if let Some(slot) = replies.get_mut(i) {
                *slot = Some(r);
            }
        }
    };
    let Some((last, last_intents)) = plan.pop() else {
        return Vec::new();
    };
    // 1. Every shard but the last: take its lock.
    for (shard, intents) in &plan {
        acquire(core, *shard, tx, intents.clone(), parts.clone()).await;
    }
    // 2. The last shard: take, run, release, in one message.
    let (at, reqs) = take(last);
    let got = core
        .send_batch(
            last,
            reqs,
            Some(tx),
            LockStep::AcquireRelease(last_intents, parts),
        )
        .replies()
        .await;
    place(at, got.unwrap_or_default());
    // 3. All locks are held: the others run and release.
    let pending: Vec<_> = plan
        .into_iter()
        .map(|(shard, _)| {
            let (at, reqs) = take(shard);
            (
                at,
                core.send_batch(shard, reqs, Some(tx), LockStep::Release),
            )
        })
        .collect();
    for (at, rx) in pending {
        place(at, rx.replies().await.unwrap_or_default());
    }
    replies
        .into_iter()
        .map(|r| r.unwrap_or_else(no_answer))
        .collect()
}

/// Intents per shard for a set of (db, key) pairs.
pub fn plan_keys<'a>(
    shards: usize,
    keys: impl IntoIterator<Item = (usize, &'a [u8])>,
) -> Vec<(usize, Intents)> {
    let mut plan: Vec<(usize, Intents)> = Vec::new();
    for (db, key) in keys {
        let shard = route::shard_of(key, shards);
        match plan.iter_mut().find(|(s, _)| *s == shard) {
            Some((_, intents)) => intents.add(db, key),
            None => {
                let mut intents = Intents::keys();
                intents.add(db, key);
                plan.push((shard, intents));
            }
        }
    }
    plan
}

/// Every shard, all keys.
pub fn plan_all(shards: usize) -> Vec<(usize, Intents)> {
    (0..shards).map(|s| (s, Intents::All)).collect()
}

/// Adds `other` to `plan`, merging intents per shard.
pub fn merge_plan(plan: &mut Vec<(usize, Intents)>, other: Vec<(usize, Intents)>) {
    for (shard, intents) in other {
        match plan.iter_mut().find(|(s, _)| *s == shard) {
            Some((_, mine)) => match (mine, intents) {
                (Intents::All, _) => {}
                (m, Intents::All) => *m = Intents::All,
                (Intents::Keys(a), Intents::Keys(b)) => a.extend(b),
            },
            None => plan.push((shard, intents)),
        }
    }
}

/// Runs `jobs[i].1` on shard `jobs[i].0` for transaction `tx` (None: plain requests) and
/// returns the replies in order; the requests for one shard travel as one batch.
pub async fn run_each(
    core: &Rc<Core>,
    jobs: Vec<(usize, Request)>,
    tx: Option<TxId>,
) -> Vec<Reply> {
    let count = jobs.len();
    let mut per_shard: Vec<(usize, Vec<usize>, Vec<Request>)> = Vec::new();
    for (i, (shard, req)) in jobs.into_iter().enumerate() {
        match per_shard.iter_mut().find(|(s, _, _)| *s == shard) {
            Some((_, at, reqs)) => {
                at.push(i);
                reqs.push(req);
            }
            None => per_shard.push((shard, vec![i], vec![req])),
        }
    }
    let pending: Vec<_> = per_shard
        .into_iter()
        .map(|(shard, at, reqs)| (at, core.send_batch(shard, reqs, tx, LockStep::None)))
        .collect();
    let mut replies: Vec<Option<Reply>> = (0..count).map(|_| None).collect();
    for (at, rx) in pending {
        for (i, r) in at.into_iter().zip(rx.replies().await.unwrap_or_default()) {
            if let Some(slot) = replies.get_mut(i) {
                *slot = Some(r);
            }
        }
    }
    replies
        .into_iter()
        .map(|r| r.unwrap_or_else(no_answer))
        .collect()
}
