//! The shard's side of the two-phase shard lock: who holds this shard's lock and for which
//! keys, who waits for it, the work parked behind it, and the running of batches (which
//! honours the lock).
//!
//! A lock is held by transactions for their declared keys (their intents); any number of
//! transactions whose intents do not overlap hold it at once. Requests from outside a holder
//! that touch its keys are parked until it releases; the others run. The coordinator's side
//! (taking the locks of several shards in order, running, releasing) is `coord::txn`.

use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::OnceLock;

use ahash::HashSet;
use bytes::Bytes;
use futures_channel::oneshot;
use shardis_engine::{Command, Fanout};
use shardis_resp::Reply;

use super::{waiters, Answer, Batch, Core};

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

/// The answer a request blocked by a lock holder gets at once instead of being parked: the
/// `-BUSY` of a script that runs past `busy-reply-threshold` holding the lock, as Redis
/// refuses commands while a script runs long. Installed by the runtime (`server.rs`).
pub type BlockedRefusal = fn(&Core, &Command, &[Bytes]) -> Option<Reply>;

static REFUSAL: OnceLock<BlockedRefusal> = OnceLock::new();

/// Installs the refusal of blocked requests (once; later calls are ignored).
pub fn set_blocked_refusal(f: BlockedRefusal) {
    let _ = REFUSAL.set(f);
}

/// Told when this shard grants a transaction its lock (replication orders transactions by
/// it, `primary::merge`). Installed by the runtime.
pub type GrantHook = fn(&Core, TxId);

static GRANTED: OnceLock<GrantHook> = OnceLock::new();

/// Installs the hook told of every grant (once; later calls are ignored).
pub fn set_grant_hook(f: GrantHook) {
    let _ = GRANTED.set(f);
}

fn granted(core: &Core, tx: TxId) {
    if let Some(hook) = GRANTED.get() {
        hook(core, tx);
    }
}

/// What a batch does with its shard's lock around running.
#[derive(Default)]
pub enum LockStep {
    #[default]
    None,
    /// Take the lock for `tx` with these intents (waiting for it if needed), run, release: for
    /// the last shard a coordinator locks, when every other lock is already held. With the
    /// shards the transaction locks (for the append-only log's record of its end).
    AcquireRelease(Intents, Vec<u32>),
    /// Run as the holder, then release.
    Release,
}

enum Parked {
    Batch(Box<Batch>),
    /// A connection on this core waiting to run a command inline.
    Wake(oneshot::Sender<()>),
}

/// How a waiting coordinator learns it holds the lock.
enum Grant {
    Notify(Answer<()>),
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
    /// Keys that became ready for blocked clients while a holder covered them.
    deferred_ready: Vec<(usize, Bytes)>,
    next_tx: u64,
    /// The shards each transaction holding or waiting for this lock locks: logged with the
    /// end of its part here, so a restart applies it only if every part ended.
    participants: Vec<(TxId, Vec<u32>)>,
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

    /// Must a command (from outside transaction `tx`) wait for a lock holder?
    fn blocks(&self, cmd: &Command, args: &[Bytes], db: usize, tx: Option<TxId>) -> bool {
        if self.holders.is_empty() {
            return false;
        }
        let mut others = self
            .holders
            .iter()
            .filter(|(holder, _)| Some(*holder) != tx)
            .peekable();
        if others.peek().is_none() {
            return false;
        }
        if matches!(cmd.fanout, Fanout::AllShards(_)) {
            return true;
        }
        let mut idx = Vec::new();
        cmd.key_indexes(args, &mut idx);
        others.any(|(_, intents)| {
            idx.iter()
                .filter_map(|&i| args.get(i))
                .any(|k| intents.covers(db, k))
        })
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

    /// Remembers that a key a holder covers became ready for blocked clients.
    pub fn defer_ready(&self, key: (usize, Bytes)) {
        let mut lock = self.lock.borrow_mut();
        if !lock.deferred_ready.contains(&key) {
            lock.deferred_ready.push(key);
        }
    }

    /// Whether no transaction holds or waits for this shard's lock (scripting: a script may
    /// run here without taking it, as nothing else can run until it stops or yields).
    pub fn lock_idle(&self) -> bool {
        let lock = self.lock.borrow();
        lock.holders.is_empty() && lock.waiting.is_empty()
    }

    /// The time active expiry judges by: not past the clock of a script running here or
    /// holding this shard for its calls, so that nothing the script may still read expires
    /// under it (Redis expires nothing while a script runs).
    pub fn expiry_clock(&self) -> u64 {
        let mut now = self.now_ms();
        if let Some(&(_, ms)) = self.frozen_clocks.borrow().iter().min_by_key(|(_, ms)| ms) {
            now = now.min(ms);
        }
        if let Some((tx, ms)) = self.script_holder.get() {
            if self
                .lock
                .borrow()
                .holders
                .iter()
                .any(|(held, _)| *held == tx)
            {
                now = now.min(ms);
            } else {
                self.script_holder.set(None);
            }
        }
        now
    }

    /// Resolves when a lock is released (for a connection of this core that must wait).
    pub fn lock_released(&self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.lock.borrow_mut().parked.push_back(Parked::Wake(tx));
        rx
    }

    /// Runs a batch, parking what conflicts with a lock holder.
    pub fn run_batch(self: &Rc<Self>, mut batch: Box<Batch>) {
        match std::mem::take(&mut batch.lock) {
            LockStep::None => {}
            LockStep::AcquireRelease(intents, participants) => {
                let Some(tx) = batch.tx else { return };
                let mut lock = self.lock.borrow_mut();
                lock.participants.push((tx, participants));
                if !lock.grantable(&intents, lock.waiting.len()) {
                    batch.lock = LockStep::Release;
                    lock.waiting.push_back((tx, intents, Grant::Run(batch)));
                    return;
                }
                lock.holders.push((tx, intents));
                drop(lock);
                granted(self, tx);
                return self.run_and_release(batch);
            }
            LockStep::Release => return self.run_and_release(batch),
        }
        if !batch.watch.is_empty() {
            if batch.atomic && self.batch_blocked(&batch) {
                return self.park(batch);
            }
            if !self.watch_intact(&batch.watch) {
                return self.fail_batch(batch);
            }
            batch.watch.clear();
        }
        self.prefetch_batch(&batch);
        if batch.atomic {
            if self.batch_blocked(&batch) {
                return self.park(batch);
            }
            // In the log, a transaction of its own: replayed whole or not at all.
            let tx = self.journal_tx(Some(self.next_tx()));
            // Clients blocked on keys the transaction fills are served after all of it,
            // never between its commands. The transaction was admitted under `maxmemory`
            // as a whole (EXEC checks before sending it).
            self.memory.admitted(true, || {
                while let Some((req, args)) = batch.peek() {
                    let reply = self
                        .execute_unserved(req.cmd, args, req.db, req.resp3, req.track, req.client);
                    batch.record(reply);
                }
            });
            if let Some(tx) = tx {
                self.journal_tx(None);
                if let Some(j) = &mut self.shard.borrow_mut().journal {
                    j.tx_end(tx, vec![self.id as u32]);
                }
            }
            waiters::serve_ready(self);
        } else {
            // A lock holder's records carry its id.
            self.journal_tx(batch.tx);
            if let (Some(tx), Some(ms)) = (batch.tx, batch.clock) {
                self.script_holder.set(Some((tx, ms)));
            }
            // A lock holder's parts were admitted as a whole by its coordinator.
            let parked = self.memory.admitted(batch.tx.is_some(), || {
                while let Some((req, args)) = batch.peek() {
                    if self.lock_blocks(req.cmd, args, req.db, batch.tx) {
                        match REFUSAL.get().and_then(|refuse| refuse(self, req.cmd, args)) {
                            Some(refused) => {
                                batch.record(refused);
                                continue;
                            }
                            None => return true,
                        }
                    }
                    let reply = self.at_clock(batch.clock, || {
                        self.execute_as(
                            req.cmd,
                            args,
                            req.db,
                            req.resp3,
                            req.track,
                            req.client,
                            batch.from_script,
                        )
                    });
                    batch.record(reply);
                }
                false
            });
            self.journal_tx(None);
            if parked {
                return self.park(batch);
            }
        }
        self.finish_batch(batch);
    }

    /// Before a batch runs, starts loading its first [`super::PREFETCHED`] keys' table entries into
    /// the cache together (`Shard::prefetch`): a batch from another core is a run of requests
    /// known in advance, and each lookup in a keyspace larger than the caches otherwise stalls
    /// on two misses in turn (~25% of a core's CPU at pipeline 16, perf).
    fn prefetch_batch(&self, batch: &Batch) {
        if batch.remaining().nth(1).is_none() {
            return;
        }
        let keys = batch
            .remaining()
            .take(super::PREFETCHED)
            .filter_map(|(r, args)| Some((r.db, r.cmd.leading_key(args)?)));
        self.shard.borrow().prefetch(keys);
    }

    /// Runs a batch of a lock holder, then releases its lock.
    fn run_and_release(self: &Rc<Self>, batch: Box<Batch>) {
        let tx = batch.tx;
        self.run_batch(batch);
        if let Some(tx) = tx {
            self.release(tx);
        }
    }

    fn batch_blocked(&self, batch: &Batch) -> bool {
        let lock = self.lock.borrow();
        batch
            .remaining()
            .any(|(r, args)| lock.blocks(r.cmd, args, r.db, batch.tx))
            || batch.watch.iter().any(|w| lock.covers(w.db, &w.key))
    }

    fn park(&self, batch: Box<Batch>) {
        self.lock
            .borrow_mut()
            .parked
            .push_back(Parked::Batch(batch));
    }

    /// True if no watched key of this shard changed (or expired) since WATCH.
    pub fn watch_intact(&self, watch: &[WatchedKey]) -> bool {
        let now = self.now_ms();
        let mut shard = self.shard.borrow_mut();
        watch
            .iter()
            .all(|w| shard.watch_unchanged(w.db, &w.key, w.version, w.live, now))
    }

    /// Tags the records the journal logs from now on with transaction `tx` (None: none);
    /// returns `tx` if a journal is kept.
    fn journal_tx(&self, tx: Option<TxId>) -> Option<TxId> {
        let mut shard = self.shard.borrow_mut();
        let j = shard.journal.as_mut()?;
        j.tx = tx.unwrap_or(0);
        tx
    }

    /// Takes the lock for `tx` (over the shards `participants`) with `intents`; `granted` is
    /// answered once it holds it.
    pub fn acquire(
        self: &Rc<Self>,
        tx: TxId,
        intents: Intents,
        participants: Vec<u32>,
        granted: Answer<()>,
    ) {
        let mut lock = self.lock.borrow_mut();
        lock.participants.push((tx, participants));
        if lock.grantable(&intents, lock.waiting.len()) {
            lock.holders.push((tx, intents));
            drop(lock);
            self::granted(self, tx);
            self.answer(granted, ());
        } else {
            lock.waiting
                .push_back((tx, intents, Grant::Notify(granted)));
        }
    }

    /// Releases `tx`'s lock: parked work resumes, waiting coordinators that no longer
    /// conflict get the lock, and clients blocked on keys the transaction filled are served.
    pub fn release(self: &Rc<Self>, tx: TxId) {
        let (released, participants) = {
            let mut lock = self.lock.borrow_mut();
            let at = lock.holders.iter().position(|(holder, _)| *holder == tx);
            let p = lock.participants.iter().position(|(t, _)| *t == tx);
            (
                at.map(|at| lock.holders.swap_remove(at)),
                p.map(|p| lock.participants.swap_remove(p).1),
            )
        };
        if released.is_none() {
            return;
        }
        // The end of this shard's part, logged before anything parked runs.
        if let Some(j) = &mut self.shard.borrow_mut().journal {
            j.tx_end(tx, participants.unwrap_or_else(|| vec![self.id as u32]));
        }
        self.recheck_parked();
        // Keys that became ready while held are served now, unless another holder covers them.
        {
            let deferred = std::mem::take(&mut self.lock.borrow_mut().deferred_ready);
            self.shard.borrow_mut().ready_keys.extend(deferred);
        }
        waiters::serve_ready(self);
        self.grant_waiting();
    }

    /// Everything parked behind the lock looks again: it runs, is refused (a script holding
    /// the lock turned busy: the waiters Redis would answer `-BUSY` get it now, not when the
    /// script ends), or parks again, in its order.
    pub fn recheck_parked(self: &Rc<Self>) {
        let parked = std::mem::take(&mut self.lock.borrow_mut().parked);
        for p in parked {
            match p {
                Parked::Wake(w) => {
                    let _ = w.send(());
                }
                Parked::Batch(b) => self.run_batch(b),
            }
        }
    }

    /// Grants the lock to every waiter that conflicts with no holder and no earlier waiter.
    fn grant_waiting(self: &Rc<Self>) {
        let mut granted = Vec::new();
        let mut runnable = Vec::new();
        let mut txs = Vec::new();
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
                lock.holders.push((tx, intents));
                txs.push(tx);
                match grant {
                    Grant::Notify(answer) => granted.push(answer),
                    Grant::Run(batch) => runnable.push(batch),
                }
            }
        }
        for tx in txs {
            self::granted(self, tx);
        }
        for answer in granted {
            self.answer(answer, ());
        }
        // Fused batches run and release (which grants further waiters in turn).
        for batch in runnable {
            self.run_batch(batch);
        }
    }
}
