//! The transaction coordinator: the two-phase shard lock behind MULTI/EXEC, WATCH and every
//! command that touches several shards.
//!
//! 1. Lock: the coordinating core takes the lock of every involved shard in ascending shard
//!    order (so two coordinators can never wait on each other), declaring the keys it will
//!    touch (its intents). A locked shard keeps serving requests whose keys are outside the
//!    intents and parks the others until the lock is released.
//! 2. Execute and release: the steps run (batched per shard, tagged with the transaction id
//!    so the holder's own requests pass), then every lock is released and parked work resumes.
//!
//! Single-shard work never takes a lock: a batch runs on its shard without interleaving, so a
//! single-shard transaction is one atomic batch (checked against a holder's intents first).

use std::collections::VecDeque;
use std::rc::Rc;

use ahash::HashSet;
use bytes::Bytes;
use futures_channel::oneshot;
use shardis_engine::{Command, Fanout};
use shardis_resp::Reply;

use crate::runtime::{Core, Request};

/// A transaction: unique across cores.
pub type TxId = u64;

/// The keys a transaction declared on one shard.
#[derive(Clone, Debug)]
pub enum Intents {
    /// Every key (FLUSHALL, KEYS, DBSIZE… inside the transaction).
    All,
    Keys(HashSet<(usize, Bytes)>),
}

impl Intents {
    pub fn keys() -> Intents {
        Intents::Keys(HashSet::default())
    }

    pub fn add(&mut self, db: usize, key: &[u8]) {
        if let Intents::Keys(set) = self {
            set.insert((db, Bytes::copy_from_slice(key)));
        }
    }

    fn covers(&self, db: usize, key: &[u8]) -> bool {
        match self {
            Intents::All => true,
            Intents::Keys(set) => set.contains(&(db, Bytes::copy_from_slice(key))),
        }
    }
}

/// A WATCHed key as EXEC checks it: its version at WATCH time, and whether it was live then
/// (a key that expires after WATCH fails the transaction; one already expired does not).
#[derive(Clone, Debug)]
pub struct WatchedKey {
    pub shard: usize,
    pub db: usize,
    pub key: Bytes,
    pub version: u64,
    pub live: bool,
}

/// Commands for one shard, run back to back.
pub struct Batch {
    pub requests: VecDeque<Request>,
    /// Replies so far (a parked batch keeps those it already produced).
    pub done: Vec<Reply>,
    /// The replies, or None when a watched key changed (nothing ran).
    pub reply: oneshot::Sender<Option<Vec<Reply>>>,
    /// The transaction on whose behalf it runs (it holds this shard's lock).
    pub tx: Option<TxId>,
    /// All or nothing with respect to a lock holder (a single-shard MULTI).
    pub atomic: bool,
    /// Watched keys to check before anything runs.
    pub watch: Vec<WatchedKey>,
    /// A lock step fused with the batch, saving a round trip per shard.
    pub lock: LockStep,
}

/// What a batch does with its shard's lock around running.
#[derive(Default)]
pub enum LockStep {
    #[default]
    None,
    /// Take the lock for `tx` with these intents (waiting for it if needed), run, release: for
    /// the last shard a coordinator locks, when every other lock is already held.
    AcquireRelease(Intents),
    /// Run as the holder, then release.
    Release,
}

enum Parked {
    Batch(Batch),
    /// A connection on this core waiting to run a command inline.
    Wake(oneshot::Sender<()>),
}

/// How a waiting coordinator learns it holds the lock.
enum Grant {
    Notify(oneshot::Sender<()>),
    /// A fused batch: run it, then release.
    Run(Box<Batch>),
}

/// One shard's lock: held by any number of transactions whose intents do not overlap.
#[derive(Default)]
pub struct LockTable {
    holders: Vec<(TxId, Intents)>,
    /// First come, first served: a newcomer also waits behind an earlier waiter it conflicts
    /// with, so a transaction over many keys is not starved by small ones.
    waiting: VecDeque<(TxId, Intents, Grant)>,
    parked: VecDeque<Parked>,
    next_tx: u64,
}

impl Intents {
    fn overlaps(&self, other: &Intents) -> bool {
        match (self, other) {
            (Intents::All, _) | (_, Intents::All) => true,
            (Intents::Keys(a), Intents::Keys(b)) => {
                let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
                small.iter().any(|k| large.contains(k))
            }
        }
    }
}

impl LockTable {
    /// Can `intents` be granted now (no overlap with a holder or an earlier waiter)?
    fn grantable(&self, intents: &Intents, waiters_before: usize) -> bool {
        !self.holders.iter().any(|(_, held)| held.overlaps(intents))
            && !self
                .waiting
                .iter()
                .take(waiters_before)
                .any(|(_, waiting, _)| waiting.overlaps(intents))
    }

    /// Must `req` (from outside transaction `tx`) wait for a lock holder?
    fn blocks(&self, cmd: &Command, args: &[Bytes], db: usize, tx: Option<TxId>) -> bool {
        if self.holders.is_empty() {
            return false;
        }
        let others = || {
            self.holders
                .iter()
                .filter(|(holder, _)| Some(*holder) != tx)
        };
        if matches!(cmd.fanout, Fanout::AllShards(_)) {
            return others().next().is_some();
        }
        let mut idx = Vec::new();
        cmd.key_indexes(args, &mut idx);
        others().any(|(_, intents)| idx.iter().any(|&i| intents.covers(db, &args[i])))
    }

    fn covers(&self, db: usize, key: &[u8]) -> bool {
        self.holders
            .iter()
            .any(|(_, intents)| intents.covers(db, key))
    }
}

impl Core {
    /// A new transaction id.
    pub fn next_tx(&self) -> TxId {
        let mut lock = self.lock.borrow_mut();
        lock.next_tx += 1;
        lock.next_tx * self.shards as u64 + self.id as u64
    }

    /// Must a command from outside transaction `tx` wait before running on this shard?
    pub fn lock_blocks(&self, cmd: &Command, args: &[Bytes], db: usize, tx: Option<TxId>) -> bool {
        self.lock.borrow().blocks(cmd, args, db, tx)
    }

    /// Whether a key is inside a lock holder's intents (blocked clients are not served from
    /// such keys until the holder releases).
    pub fn key_locked(&self, db: usize, key: &[u8]) -> bool {
        self.lock.borrow().covers(db, key)
    }

    /// Resolves when a lock is released (for a connection of this core that must wait).
    pub fn lock_released(&self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.lock.borrow_mut().parked.push_back(Parked::Wake(tx));
        rx
    }

    /// Runs a batch, parking what conflicts with a lock holder.
    pub fn run_batch(self: &Rc<Self>, mut batch: Batch) {
        match std::mem::take(&mut batch.lock) {
            LockStep::None => {}
            LockStep::AcquireRelease(intents) => {
                let Some(tx) = batch.tx else { return };
                let mut lock = self.lock.borrow_mut();
                if !lock.grantable(&intents, lock.waiting.len()) {
                    batch.lock = LockStep::Release;
                    lock.waiting
                        .push_back((tx, intents, Grant::Run(Box::new(batch))));
                    return;
                }
                lock.holders.push((tx, intents));
                drop(lock);
                return self.run_and_release(batch);
            }
            LockStep::Release => return self.run_and_release(batch),
        }
        if !batch.watch.is_empty() {
            if batch.atomic && self.batch_blocked(&batch) {
                return self.park(batch);
            }
            if !self.watch_intact(&batch.watch) {
                let _ = batch.reply.send(None);
                return;
            }
            batch.watch.clear();
        }
        if batch.atomic {
            if self.batch_blocked(&batch) {
                return self.park(batch);
            }
            // Clients blocked on keys the transaction fills are served after all of it,
            // never between its commands.
            for req in batch.requests.drain(..) {
                batch.done.push(self.execute_unserved(&req));
            }
            crate::blocking::serve_ready(self);
        } else {
            while let Some(req) = batch.requests.front() {
                if self.lock_blocks(req.cmd, &req.args, req.db, batch.tx) {
                    return self.park(batch);
                }
                if let Some(req) = batch.requests.pop_front() {
                    batch.done.push(self.execute(&req));
                }
            }
        }
        let _ = batch.reply.send(Some(batch.done));
    }

    /// Runs a batch of a lock holder, then releases its lock.
    fn run_and_release(self: &Rc<Self>, batch: Batch) {
        let tx = batch.tx;
        self.run_batch(batch);
        if let Some(tx) = tx {
            self.release(tx);
        }
    }

    fn batch_blocked(&self, batch: &Batch) -> bool {
        let lock = self.lock.borrow();
        batch
            .requests
            .iter()
            .any(|r| lock.blocks(r.cmd, &r.args, r.db, batch.tx))
            || batch.watch.iter().any(|w| lock.covers(w.db, &w.key))
    }

    fn park(&self, batch: Batch) {
        self.lock
            .borrow_mut()
            .parked
            .push_back(Parked::Batch(batch));
    }

    /// True if no watched key of this shard changed (or expired) since WATCH.
    pub fn watch_intact(&self, watch: &[WatchedKey]) -> bool {
        let now = crate::runtime::now_ms();
        let mut shard = self.shard.borrow_mut();
        watch.iter().all(|w| {
            let unchanged = shard.watched.version(w.db, &w.key) == Some(w.version);
            let live_now = shard
                .dbs
                .get_mut(w.db)
                .is_some_and(|d| d.get(&w.key, now).is_some());
            // A key that expired since WATCH counts as changed.
            unchanged && (live_now || !w.live)
        })
    }

    /// Takes the lock for `tx` with `intents`; resolves when granted.
    pub fn acquire(&self, tx: TxId, intents: Intents) -> oneshot::Receiver<()> {
        let (grant, granted) = oneshot::channel();
        let mut lock = self.lock.borrow_mut();
        if lock.grantable(&intents, lock.waiting.len()) {
            lock.holders.push((tx, intents));
            let _ = grant.send(());
        } else {
            lock.waiting.push_back((tx, intents, Grant::Notify(grant)));
        }
        granted
    }

    /// Releases `tx`'s lock: parked work resumes, waiting coordinators that no longer
    /// conflict get the lock, and clients blocked on keys the transaction filled are served.
    pub fn release(self: &Rc<Self>, tx: TxId) {
        let released = {
            let mut lock = self.lock.borrow_mut();
            let at = lock.holders.iter().position(|(holder, _)| *holder == tx);
            at.map(|at| lock.holders.swap_remove(at))
        };
        let Some((_, intents)) = released else { return };
        let parked = std::mem::take(&mut self.lock.borrow_mut().parked);
        for p in parked {
            match p {
                Parked::Wake(w) => {
                    let _ = w.send(());
                }
                Parked::Batch(b) => self.run_batch(b),
            }
        }
        // Blocked clients were not served from the transaction's keys while it held them.
        {
            let mut shard = self.shard.borrow_mut();
            let ready: Vec<(usize, Bytes)> = match &intents {
                Intents::All => shard.blocked_keys.iter().cloned().collect(),
                Intents::Keys(keys) => keys
                    .iter()
                    .filter(|k| shard.blocked_keys.contains(*k))
                    .cloned()
                    .collect(),
            };
            shard.ready_keys.extend(ready);
        }
        crate::blocking::serve_ready(self);
        self.grant_waiting();
    }

    /// Grants the lock to every waiter that conflicts with no holder and no earlier waiter.
    fn grant_waiting(self: &Rc<Self>) {
        let mut runnable = Vec::new();
        {
            let mut lock = self.lock.borrow_mut();
            let mut i = 0;
            while i < lock.waiting.len() {
                if !lock.grantable(&lock.waiting[i].1, i) {
                    i += 1;
                    continue;
                }
                let Some((tx, intents, grant)) = lock.waiting.remove(i) else {
                    break;
                };
                match grant {
                    Grant::Notify(notify) => {
                        if notify.send(()).is_ok() {
                            lock.holders.push((tx, intents));
                        }
                        // else: the coordinator is gone; nothing to hold.
                    }
                    Grant::Run(batch) => {
                        lock.holders.push((tx, intents));
                        runnable.push(batch);
                    }
                }
            }
        }
        // Fused batches run and release (which grants further waiters in turn).
        for batch in runnable {
            self.run_batch(*batch);
        }
    }
}

/// The locks a coordinator holds.
pub struct Held {
    pub tx: TxId,
    shards: Vec<usize>,
}

/// Takes the locks of `plan`'s shards in ascending order (the plan is sorted here).
pub async fn lock(core: &Rc<Core>, mut plan: Vec<(usize, Intents)>) -> Held {
    plan.sort_by_key(|(shard, _)| *shard);
    let tx = core.next_tx();
    let mut shards = Vec::with_capacity(plan.len());
    for (shard, intents) in plan {
        let granted = if shard == core.id {
            Some(core.acquire(tx, intents))
        } else {
            core.run_on(shard, move |c| c.acquire(tx, intents)).await
        };
        if let Some(granted) = granted {
            let _ = granted.await;
            shards.push(shard);
        }
    }
    Held { tx, shards }
}

/// Releases every lock of `held`.
pub async fn unlock(core: &Rc<Core>, held: Held) {
    let tx = held.tx;
    for shard in held.shards {
        if shard == core.id {
            core.release(tx);
        } else {
            core.post(shard, Box::new(move |c| c.release(tx))).await;
        }
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
            replies[i] = Some(r);
        }
    };
    let Some((last, last_intents)) = plan.pop() else {
        return Vec::new();
    };
    // 1. Every shard but the last: take its lock.
    for (shard, intents) in &plan {
        let intents = intents.clone();
        let granted = if *shard == core.id {
            Some(core.acquire(tx, intents))
        } else {
            core.run_on(*shard, move |c| c.acquire(tx, intents)).await
        };
        if let Some(granted) = granted {
            let _ = granted.await;
        }
    }
    // 2. The last shard: take, run, release.
    let (at, reqs) = take(last);
    if last == core.id {
        let _ = core.acquire(tx, last_intents).await;
        place(at, reqs.iter().map(|r| core.execute(r)).collect());
        core.release(tx);
    } else {
        let rx = core
            .send_locked_batch(last, reqs, tx, LockStep::AcquireRelease(last_intents))
            .await;
        place(at, rx.await.ok().flatten().unwrap_or_default());
    }
    // 3. All locks are held: the others run and release.
    let mut pending = Vec::new();
    for (shard, _) in plan {
        let (at, reqs) = take(shard);
        if shard == core.id {
            place(at, reqs.iter().map(|r| core.execute(r)).collect());
            core.release(tx);
        } else {
            pending.push((
                at,
                core.send_locked_batch(shard, reqs, tx, LockStep::Release)
                    .await,
            ));
        }
    }
    for (at, rx) in pending {
        place(at, rx.await.ok().flatten().unwrap_or_default());
    }
    replies
        .into_iter()
        .map(|r| r.unwrap_or(Reply::err("ERR shard did not answer")))
        .collect()
}

/// Intents per shard for a set of (db, key) pairs.
pub fn plan_keys<'a>(
    shards: usize,
    keys: impl IntoIterator<Item = (usize, &'a [u8])>,
) -> Vec<(usize, Intents)> {
    let mut plan: Vec<(usize, Intents)> = Vec::new();
    for (db, key) in keys {
        let shard = crate::route::shard_of(key, shards);
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

/// Runs `requests[i]` on shard `shards[i]` for transaction `tx` (None: plain requests) and
/// returns the replies in order. Local requests run inline.
pub async fn run_each(
    core: &Rc<Core>,
    jobs: Vec<(usize, Request)>,
    tx: Option<TxId>,
) -> Vec<Reply> {
    let mut replies: Vec<Option<Reply>> = (0..jobs.len()).map(|_| None).collect();
    let mut waiting = Vec::new();
    for (i, (shard, req)) in jobs.into_iter().enumerate() {
        if shard == core.id {
            replies[i] = Some(core.execute(&req));
        } else {
            waiting.push((i, core.send_batch(shard, vec![req], tx).await));
        }
    }
    for (i, rx) in waiting {
        replies[i] = rx.await.ok().flatten().and_then(|mut v| v.pop());
    }
    replies
        .into_iter()
        .map(|r| r.unwrap_or(Reply::err("ERR shard did not answer")))
        .collect()
}
