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
}

enum Parked {
    Batch(Batch),
    /// A connection on this core waiting to run a command inline.
    Wake(oneshot::Sender<()>),
}

/// One shard's lock.
#[derive(Default)]
pub struct LockTable {
    holder: Option<(TxId, Intents)>,
    waiting: VecDeque<(TxId, Intents, oneshot::Sender<()>)>,
    parked: VecDeque<Parked>,
    next_tx: u64,
}

/// Must `req` (from outside transaction `tx`) wait for the lock holder?
fn blocked_by(
    holder: &Option<(TxId, Intents)>,
    cmd: &Command,
    args: &[Bytes],
    db: usize,
    tx: Option<TxId>,
) -> bool {
    let Some((holder, intents)) = holder else {
        return false;
    };
    if Some(*holder) == tx {
        return false;
    }
    match (intents, cmd.fanout) {
        (Intents::All, _) => true,
        (_, Fanout::AllShards(_)) => true,
        (Intents::Keys(_), _) => {
            let mut idx = Vec::new();
            cmd.key_indexes(args, &mut idx);
            idx.iter().any(|&i| intents.covers(db, &args[i]))
        }
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
        blocked_by(&self.lock.borrow().holder, cmd, args, db, tx)
    }

    /// Whether a key is inside the current holder's intents (blocked clients are not served
    /// from such keys until the holder releases).
    pub fn key_locked(&self, db: usize, key: &[u8]) -> bool {
        self.lock
            .borrow()
            .holder
            .as_ref()
            .is_some_and(|(_, intents)| intents.covers(db, key))
    }

    /// Resolves when the lock is released (for a connection of this core that must wait).
    pub fn lock_released(&self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.lock.borrow_mut().parked.push_back(Parked::Wake(tx));
        rx
    }

    /// Runs a batch, parking what conflicts with the lock holder.
    pub fn run_batch(self: &Rc<Self>, mut batch: Batch) {
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

    fn batch_blocked(&self, batch: &Batch) -> bool {
        let lock = self.lock.borrow();
        batch
            .requests
            .iter()
            .any(|r| blocked_by(&lock.holder, r.cmd, &r.args, r.db, batch.tx))
            || batch.watch.iter().any(|w| {
                lock.holder
                    .as_ref()
                    .is_some_and(|(_, i)| i.covers(w.db, &w.key))
            })
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
        if lock.holder.is_none() && lock.waiting.is_empty() {
            lock.holder = Some((tx, intents));
            let _ = grant.send(());
        } else {
            lock.waiting.push_back((tx, intents, grant));
        }
        granted
    }

    /// Releases `tx`'s lock: parked work resumes, the next coordinator gets the lock, and
    /// clients blocked on keys the transaction filled are served.
    pub fn release(self: &Rc<Self>, tx: TxId) {
        let released = {
            let mut lock = self.lock.borrow_mut();
            match &lock.holder {
                Some((holder, _)) if *holder == tx => lock.holder.take(),
                _ => None,
            }
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
        loop {
            let next = {
                let mut lock = self.lock.borrow_mut();
                if lock.holder.is_some() {
                    return;
                }
                lock.waiting.pop_front()
            };
            let Some((tx, intents, grant)) = next else {
                return;
            };
            self.lock.borrow_mut().holder = Some((tx, intents));
            if grant.send(()).is_ok() {
                return;
            }
            // The coordinator is gone: release for it and try the next one.
            self.lock.borrow_mut().holder = None;
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
