//! One shard: its databases, its tunables and counters, and the context a command runs in.
//!
//! A shard is owned by exactly one core; nothing here is shared or locked. The runtime sets
//! the clock before each batch so that every command sees one fixed "now" (as Redis caches
//! `mstime()` per command) and so that tests can drive time by hand.

use bytes::Bytes;

use crate::db::{Db, Entry, Record};
use crate::evict::{Picker, Pool, Tracking};
use crate::lazyfree::LazyFree;
use crate::notify;
use crate::value::Value;

/// Databases per shard (Redis's `databases`).
pub const DEFAULT_DATABASES: usize = 16;

/// Tunables the engine reads; the runtime maps CONFIG SET onto them.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub databases: usize,
    pub hash_max_listpack_entries: usize,
    pub hash_max_listpack_value: usize,
    pub set_max_intset_entries: usize,
    pub zset_max_listpack_entries: usize,
    pub zset_max_listpack_value: usize,
    /// `list-max-listpack-size`: positive = entries per node, negative = node size class.
    pub list_max_listpack_size: i64,
    /// `list-compress-depth`: nodes kept uncompressed at each end of a list (0 = none
    /// compressed). A list applies it to the nodes it next modifies.
    pub list_compress_depth: usize,
    pub proto_max_bulk_len: usize,
    /// `hll-sparse-max-bytes`: a sparse HyperLogLog longer than this (header included)
    /// turns dense.
    pub hll_sparse_max_bytes: usize,
    /// `stream-node-max-bytes`: a stream node is full at this size of Redis's listpack (0: no
    /// limit but Redis's own 1 GB).
    pub stream_node_max_bytes: usize,
    /// `stream-node-max-entries`: a stream node is full at this many entries, deleted ones
    /// included (0: no limit). Redis accepts 0 to `i64::MAX`.
    pub stream_node_max_entries: i64,
    /// LRU or LFU access tracking: `maxmemory-policy`, `lfu-log-factor`, `lfu-decay-time`.
    pub tracking: Tracking,
    /// `maxmemory-samples`: keys sampled per database to pick one to evict.
    pub maxmemory_samples: usize,
    /// Whether Redis would share the objects of small integers: not under a `maxmemory` with
    /// an LRU or LFU policy, whose keys each need an access field of their own (OBJECT
    /// REFCOUNT reports it).
    pub shared_integers: bool,
    /// `lazyfree-lazy-eviction`, `-expire`, `-user-del`, `-user-flush`: free large values in
    /// steps instead of at once.
    pub lazyfree_lazy_eviction: bool,
    pub lazyfree_lazy_expire: bool,
    pub lazyfree_lazy_user_del: bool,
    pub lazyfree_lazy_user_flush: bool,
    /// `cluster-enabled`: database 0 only (MOVE, SWAPDB, COPY … DB refused) and its keys kept
    /// by hash slot (`crate::slots`).
    pub cluster: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            databases: DEFAULT_DATABASES,
            hash_max_listpack_entries: 512,
            hash_max_listpack_value: 64,
            set_max_intset_entries: 512,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
            list_max_listpack_size: -2,
            list_compress_depth: 0,
            proto_max_bulk_len: 512 * 1024 * 1024,
            hll_sparse_max_bytes: 3000,
            stream_node_max_bytes: 4096,
            stream_node_max_entries: 100,
            tracking: Tracking::default(),
            maxmemory_samples: 5,
            shared_integers: true,
            lazyfree_lazy_eviction: false,
            lazyfree_lazy_expire: false,
            lazyfree_lazy_user_del: false,
            lazyfree_lazy_user_flush: false,
            cluster: false,
        }
    }
}

/// Counters reported by INFO stats; reset by CONFIG RESETSTAT.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub expired_keys: u64,
    pub evicted_keys: u64,
    pub commands_processed: u64,
}

pub struct Shard {
    pub id: usize,
    pub dbs: Vec<Db>,
    /// Set with [`Shard::set_config`], which keeps the databases and the eviction pool in step.
    pub config: EngineConfig,
    pub stats: Stats,
    /// Writes since the last snapshot (Redis's `dirty`).
    pub dirty: u64,
    /// FLUSHDB / FLUSHALL runs: client-side caches must then drop every key, which the
    /// runtime learns by watching this count change.
    pub flushes: u64,
    /// Keys that clients are blocked on (BLPOP, BZPOPMIN…), maintained by the runtime: the
    /// engine only needs to know whether a write is worth reporting.
    pub blocked_keys: ahash::HashSet<(usize, Bytes)>,
    /// Blocked-on keys that received data since the runtime last looked (Redis's
    /// `signalKeyAsReady`): the runtime drains this after each command and serves waiters.
    pub ready_keys: Vec<(usize, Bytes)>,
    /// Keys under WATCH and their versions.
    pub watched: crate::watch::WatchTable,
    /// `notify-keyspace-events` as flags (see [`crate::notify`]); 0 = off.
    pub notify_flags: u32,
    /// Keyspace events reported since the runtime last took them.
    pub events: Vec<crate::notify::Event>,
    /// Large values being freed in steps.
    pub lazyfree: LazyFree,
    /// Eviction's candidates, kept between evictions.
    pool: Pool,
    /// The database the random eviction policies visit next.
    next_evict_db: usize,
    /// The log of changes, while the runtime keeps an append-only log (see
    /// `crate::journal`).
    pub journal: Option<Box<crate::journal::Journal>>,
    /// The epoch of the last snapshot begun (see `crate::snapshot`).
    pub snapshot_epoch: u8,
    /// Expiry stopped while clients are paused (see [`Shard::pause_expiry`]).
    expiry_paused: bool,
    rng_state: u64,
}

impl Shard {
    /// Starts loading the table entries of the keys `keys` yields (database, key) into the
    /// CPU's cache before the commands naming them run, all in one go: in a keyspace larger
    /// than the caches every lookup misses twice (its bucket, then its node), and misses
    /// issued together overlap. A pure hint: nothing changes.
    pub fn prefetch<'a>(&self, keys: impl Iterator<Item = (usize, &'a [u8])> + Clone) {
        use crate::dict::Prefetch;
        for stage in [Prefetch::Bucket, Prefetch::Node] {
            for (db, key) in keys.clone() {
                if let Some(d) = self.dbs.get(db) {
                    d.prefetch(key, stage);
                }
            }
        }
    }

    pub fn new(id: usize, config: EngineConfig) -> Self {
        let dbs = (0..config.databases.max(1))
            .map(|i| {
                let mut db = Db::new();
                db.lazy_expire = config.lazyfree_lazy_expire;
                if config.cluster && i == 0 {
                    db.index_slots();
                }
                db
            })
            .collect();
        Shard {
            id,
            dbs,
            config,
            stats: Stats::default(),
            dirty: 0,
            flushes: 0,
            blocked_keys: Default::default(),
            ready_keys: Vec::new(),
            watched: Default::default(),
            notify_flags: 0,
            events: Vec::new(),
            lazyfree: LazyFree::default(),
            pool: Pool::default(),
            next_evict_db: 0,
            journal: None,
            snapshot_epoch: 0,
            expiry_paused: false,
            rng_state: 0x9e37_79b9_7f4a_7c15 ^ (id as u64 + 1),
        }
    }

    /// Applies a new configuration (CONFIG SET). Eviction candidates ranked under another
    /// policy are dropped.
    pub fn set_config(&mut self, config: EngineConfig) {
        if config.tracking != self.config.tracking {
            self.pool.clear();
        }
        for db in &mut self.dbs {
            db.lazy_expire = config.lazyfree_lazy_expire;
        }
        self.config = config;
    }

    /// Makes this shard a replica's (`true`: expired keys read as missing and wait for the
    /// primary's DEL) or a primary's.
    pub fn set_keep_expired(&mut self, keep: bool) {
        for db in &mut self.dbs {
            db.keep_expired = keep;
        }
    }

    /// Evicts one key as `maxmemory-policy` chooses (counted in `evicted_keys`; clients
    /// watching it see it change). False when the policy allows no key to go.
    pub fn evict_one(&mut self, now_ms: u64) -> bool {
        let mut rand = rand_stream(self.rng_state);
        let picked = Picker {
            tracking: self.config.tracking,
            samples: self.config.maxmemory_samples.max(1),
            pool: &mut self.pool,
            next_db: &mut self.next_evict_db,
            now_ms,
        }
        .pick(&self.dbs, &mut rand);
        self.rng_state = rand();
        let Some((db, key)) = picked else {
            return false;
        };
        let Some(d) = self.dbs.get_mut(db) else {
            return false;
        };
        let Some(entry) = d.remove(&key) else {
            return false;
        };
        // As expiry: the journal logs it as a Del before the next command's record.
        d.note_reaped(&key);
        self.stats.evicted_keys += 1;
        self.watched.touch(db, &key);
        self.report(db, notify::EVICTED, "evicted", &key);
        if matches!(entry.value, Value::Stream(_)) {
            // As any deletion of a stream: clients blocked on it in XREADGROUP learn it is gone.
            self.mark_ready(db, &key);
        }
        let lazy = self.config.lazyfree_lazy_eviction;
        self.dispose(entry.value, lazy);
        true
    }

    /// How many keys `maxmemory-policy` may evict here (all keys, or those with a TTL).
    pub fn evictable(&self) -> usize {
        let policy = self.config.tracking.policy;
        if policy == crate::evict::Policy::NoEviction {
            return 0;
        }
        self.dbs
            .iter()
            .map(|d| {
                if policy.volatile_only() {
                    d.volatile_len()
                } else {
                    d.len()
                }
            })
            .sum()
    }

    /// How cold the keys this shard would evict next are (the best candidate's score; see
    /// [`crate::evict`]), so that the runtime can compare shards. None under the random
    /// policies or when nothing may be evicted.
    pub fn eviction_coldness(&mut self, now_ms: u64) -> Option<u64> {
        let mut rand = rand_stream(self.rng_state);
        let score = Picker {
            tracking: self.config.tracking,
            samples: self.config.maxmemory_samples.max(1),
            pool: &mut self.pool,
            next_db: &mut self.next_evict_db,
            now_ms,
        }
        .coldest(&self.dbs, &mut rand);
        self.rng_state = rand();
        score
    }

    /// Frees a value removed from the keyspace: in steps if `lazy` and it is large.
    pub fn dispose(&mut self, value: Value, lazy: bool) {
        self.lazyfree.free(value, lazy, |v| {
            crate::t_memory::value_allocated_bytes(v, crate::t_memory::DEFAULT_SAMPLES)
        });
    }

    /// One step of freeing queued values (about `budget` elements); true while more is left.
    pub fn lazyfree_step(&mut self, budget: usize) -> bool {
        self.adopt_doomed();
        self.lazyfree.step(budget);
        !self.lazyfree.is_empty()
    }

    /// True if values wait to be freed in steps.
    pub fn lazyfree_pending(&self) -> bool {
        !self.lazyfree.is_empty() || self.dbs.iter().any(|d| !d.doomed.is_empty())
    }

    /// Queues the large values of keys that expired meanwhile.
    fn adopt_doomed(&mut self) {
        for i in 0..self.dbs.len() {
            let doomed = std::mem::take(&mut self.dbs[i].doomed);
            for v in doomed {
                self.dispose(v, true);
            }
        }
    }

    /// Empties database `db`, in steps if `lazy` (FLUSHDB / FLUSHALL ASYNC).
    pub fn flush_db(&mut self, db: usize, lazy: bool) {
        let Some(d) = self.dbs.get_mut(db) else {
            return;
        };
        if !lazy {
            d.clear();
            return;
        }
        let old = d.take();
        let bytes = old.estimate_bytes(crate::t_memory::DEFAULT_SAMPLES);
        self.lazyfree.free_db(old, bytes);
    }

    /// A fast pseudo-random number, for sampling and random replies.
    pub fn rand(&mut self) -> u64 {
        xorshift64star(&mut self.rng_state)
    }

    /// Seeds the random source (the runtime seeds from the OS once).
    pub fn seed(&mut self, seed: u64) {
        self.rng_state = seed | 1;
    }

    /// Replaces (or with None, deletes) a key's whole entry: the write-back of a command that
    /// ran on another shard over a copy of this key. Counts a write and wakes blocked clients.
    /// Key and value are copied here: what arrives was allocated on another core (and may
    /// share bytes with that core's data), while a shard's memory must be its own core's,
    /// both to be counted there and to be freed without reaching into another shard.
    pub fn import(&mut self, db: usize, key: Bytes, record: Option<Record>) {
        // A state record: the command ran on a copy elsewhere, so its effect is the entry.
        if let Some(j) = &mut self.journal {
            j.state(db, &key, record.as_ref());
        }
        let Some(d) = self.dbs.get_mut(db) else {
            return;
        };
        match record {
            Some(record) => d.insert_record(
                &key,
                Record {
                    value: record.value.reallocated(),
                    ..record
                },
            ),
            None => {
                d.remove(&key);
            }
        }
        self.dirty += 1;
        self.watched.touch(db, &key);
        if self.blocked_keys.contains(&(db, key.clone())) {
            self.ready_keys.push((db, key));
        }
    }

    /// Before FLUSHDB / FLUSHALL / SWAPDB: a watched key of `db` changes if it is live there,
    /// or (SWAPDB) live in the database swapped in (`other`). Keys already expired do not, as
    /// in Redis.
    pub fn touch_live_watched(&mut self, db: usize, other: Option<usize>, now_ms: u64) {
        if self.watched.is_empty() {
            return;
        }
        for key in self.watched.keys_in(db) {
            let live_in = |d: Option<&Db>| {
                d.is_some_and(|d| d.peek(&key).is_some_and(|e| !d.is_expired(e, now_ms)))
            };
            if live_in(self.dbs.get(db)) || live_in(other.and_then(|o| self.dbs.get(o))) {
                self.watched.touch(db, &key);
            }
        }
    }

    /// WATCH: starts watching `key` in `db`; returns its version and whether it is live now.
    pub fn watch_key(&mut self, db: usize, key: &[u8], now_ms: u64) -> (u64, bool) {
        let version = self.watched.watch(db, key);
        let live = self
            .dbs
            .get(db)
            .is_some_and(|d| d.peek(key).is_some_and(|e| !d.is_expired(e, now_ms)));
        (version, live)
    }

    /// EXEC: whether a watched key is as it was at WATCH: same version, and not expired since
    /// (a key already expired at WATCH time does not fail the transaction, as in Redis).
    pub fn watch_unchanged(
        &mut self,
        db: usize,
        key: &[u8],
        version: u64,
        was_live: bool,
        now_ms: u64,
    ) -> bool {
        let unchanged = self.watched.version(db, key) == Some(version);
        self.expire_reported(db, key, now_ms);
        let live_now = self
            .dbs
            .get_mut(db)
            .is_some_and(|d| d.get(key, now_ms).is_some());
        unchanged && (live_now || !was_live)
    }

    /// Copies of the live entries of `keys` in `db` (None for a missing key), for a command
    /// that runs over keys of several shards on one of them.
    pub fn export(&mut self, db: usize, keys: &[Bytes], now_ms: u64) -> Vec<Option<Record>> {
        keys.iter()
            .map(|k| {
                self.expire_reported(db, k, now_ms);
                self.dbs.get_mut(db).and_then(|d| d.record(k, now_ms))
            })
            .collect()
    }

    /// The TYPE name of the live value at `key`, if any.
    pub fn type_of(&mut self, db: usize, key: &[u8], now_ms: u64) -> Option<&'static str> {
        self.expire_reported(db, key, now_ms);
        self.dbs
            .get_mut(db)
            .and_then(|d| d.get(key, now_ms))
            .map(|e| e.value.type_name())
    }

    /// Reports as ready every key of database `db` that clients are blocked on and that
    /// holds a stream, before the database is emptied or swapped away: clients blocked on
    /// it in XREADGROUP must learn that it is gone (Redis's `scanDatabaseForDeletedStreams`).
    pub fn signal_blocked_streams(&mut self, db: usize) {
        let Some(d) = self.dbs.get(db) else {
            return;
        };
        for slot in &self.blocked_keys {
            let is_stream = slot.0 == db
                && d.peek(&slot.1)
                    .is_some_and(|e| matches!(e.value, Value::Stream(_)));
            if is_stream && !self.ready_keys.contains(slot) {
                self.ready_keys.push(slot.clone());
            }
        }
    }

    /// Reports a keyspace event on `key` of database `db` (Redis's `notifyKeyspaceEvent`);
    /// kept only when `notify-keyspace-events` enables its class.
    #[inline]
    pub fn report(&mut self, db: usize, class: u32, event: &'static str, key: &[u8]) {
        notify::record(&mut self.events, self.notify_flags, class, event, db, key);
    }

    /// Lazily expires `key` of database `db` if it is due, reporting `expired` (Redis's
    /// `expireIfNeeded`); true if it did.
    /// While expiry is paused the key is only reported gone, not removed (no event).
    pub fn expire_if_needed(&mut self, db: usize, key: &[u8], now_ms: u64) -> bool {
        let expired = self
            .dbs
            .get_mut(db)
            .is_some_and(|d| d.expire_if_needed(key, now_ms));
        if expired && !self.expiry_paused {
            self.report(db, notify::EXPIRED, "expired", key);
            // A client blocked on it must learn that it is gone, as when it is deleted.
            self.mark_ready(db, key);
        }
        expired
    }

    /// Reports `key` of database `db` ready if clients are blocked on it.
    pub fn mark_ready(&mut self, db: usize, key: &[u8]) {
        if self.blocked_keys.is_empty() {
            return;
        }
        let slot = (db, Bytes::copy_from_slice(key));
        if self.blocked_keys.contains(&slot) && !self.ready_keys.contains(&slot) {
            self.ready_keys.push(slot);
        }
    }

    /// Before a lookup or a write that expires `key` by itself: when `expired` or `new` events
    /// are wanted (or expiries, for client-side caching), or clients are blocked on keys,
    /// expires it here so that the event is reported, a key written over an expired one is new
    /// (Redis deletes the expired key first), and a client blocked on it learns it is gone.
    /// Otherwise two cheap checks.
    #[inline]
    fn expire_reported(&mut self, db: usize, key: &[u8], now_ms: u64) {
        if self.notify_flags & (notify::EXPIRED | notify::NEW | notify::TRACKING) != 0
            || !self.blocked_keys.is_empty()
        {
            self.expire_if_needed(db, key, now_ms);
        }
    }

    /// Stops or resumes expiry (CLIENT PAUSE): while stopped, active expiry does nothing and
    /// an expired key reads as missing but stays, as Redis keeps the dataset still while
    /// clients are paused.
    pub fn pause_expiry(&mut self, paused: bool) {
        self.expiry_paused = paused;
        for db in &mut self.dbs {
            db.expiry_paused = paused;
        }
    }

    /// Keys expired so far, actively or found expired by a lookup (INFO's `expired_keys`).
    pub fn expired_keys(&self) -> u64 {
        self.stats.expired_keys + self.dbs.iter().map(|d| d.lazily_expired).sum::<u64>()
    }

    /// Zeroes the statistics (CONFIG RESETSTAT).
    pub fn reset_stats(&mut self) {
        self.stats = Stats::default();
        for db in &mut self.dbs {
            db.lazily_expired = 0;
        }
    }

    /// Keys in database `db`.
    pub fn db_len(&self, db: usize) -> usize {
        self.dbs.get(db).map_or(0, Db::len)
    }

    /// One active expiry pass over every database (Redis's `activeExpireCycle`, fast
    /// variant): sample 20 volatile keys per database and repeat while more than a quarter
    /// were expired, up to `max_rounds`. Returns the number of keys deleted.
    pub fn active_expire(&mut self, now_ms: u64, max_rounds: usize) -> usize {
        if self.expiry_paused {
            return 0;
        }
        let mut total = 0;
        let mut rand = rand_stream(self.rng_state);
        let (blocked, ready) = (&self.blocked_keys, &mut self.ready_keys);
        let (flags, events) = (self.notify_flags, &mut self.events);
        for (index, db) in self.dbs.iter_mut().enumerate() {
            // A client blocked on an expired key learns it is gone (XREADGROUP is answered
            // -UNBLOCKED; other waiters find nothing and wait on).
            let mut on_expired = |key: &[u8]| {
                notify::record(events, flags, notify::EXPIRED, "expired", index, key);
                if blocked.is_empty() {
                    return;
                }
                let slot = (index, Bytes::copy_from_slice(key));
                if blocked.contains(&slot) && !ready.contains(&slot) {
                    ready.push(slot);
                }
            };
            for _ in 0..max_rounds {
                let cycle = db.expire_sample(20, &mut rand, now_ms, &mut on_expired);
                total += cycle.expired;
                if cycle.sampled == 0 || cycle.expired * 4 <= cycle.sampled {
                    break;
                }
            }
        }
        self.rng_state = rand();
        self.stats.expired_keys += total as u64;
        total
    }
}

/// One step of xorshift64*: fast, and good enough for sampling and random replies.
pub fn xorshift64star(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// A random stream seeded with `seed`, for code that draws many numbers while the shard is
/// borrowed elsewhere.
pub fn rand_stream(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed | 1;
    move || xorshift64star(&mut state)
}

/// What a command runs with: the shard, the client's selected database, the fixed clock and
/// the client's protocol.
pub struct Ctx<'a> {
    pub shard: &'a mut Shard,
    pub db: usize,
    pub now_ms: u64,
    pub resp3: bool,
    /// Called by a script: replies whose order would depend on a set's layout are sorted
    /// (Redis keeps scripts deterministic this way).
    pub from_script: bool,
    /// The commands the journal logs instead of the one that ran (Redis's
    /// `rewriteClientCommandVector`): set by commands whose effect their arguments do not
    /// determine (SPOP's random choice, approximate trimming).
    pub propagate: Option<Vec<Vec<Bytes>>>,
    /// The argument index of a key among the command's written keys that this call left as
    /// it was (SMOVE's destination that already held the member). Redis does not signal
    /// such a key as modified, so WATCH and client-side caching must not see it change.
    pub unchanged_key: Option<usize>,
}

impl<'a> Ctx<'a> {
    pub fn new(shard: &'a mut Shard, db: usize, now_ms: u64, resp3: bool) -> Self {
        Ctx {
            shard,
            db,
            now_ms,
            resp3,
            from_script: false,
            propagate: None,
            unchanged_key: None,
        }
    }

    /// Logs `argv` instead of the command that ran (only while a journal is kept).
    pub fn propagate_as(&mut self, argv: impl FnOnce() -> Vec<Bytes>) {
        if self.shard.journal.is_some() {
            self.propagate = Some(vec![argv()]);
        }
    }

    /// Logs the removal of `key` by an expiry already past (Redis 7.0's rewrite of such an
    /// EXPIRE or GETEX): UNLINK under `lazyfree-lazy-expire`, else DEL.
    pub fn propagate_expired(&mut self, key: &[u8]) {
        let lazy = self.shard.config.lazyfree_lazy_expire;
        self.propagate_as(|| {
            let verb: &'static [u8] = if lazy { b"UNLINK" } else { b"DEL" };
            vec![Bytes::from_static(verb), Ctx::key(key)]
        });
    }

    /// The selected database. The runtime only selects indexes that exist.
    pub fn db(&mut self) -> &mut Db {
        let n = self.shard.dbs.len();
        &mut self.shard.dbs[self.db.min(n - 1)]
    }

    /// The access field (LRU clock or LFU counter) of a value created now.
    pub fn new_lru(&self) -> u32 {
        self.shard.config.tracking.fresh(self.now_ms)
    }

    /// What an access does to an entry's access field: a function of the old field, with the
    /// random draw LFU needs taken up front (the shard is borrowed by the lookup after).
    fn access(&mut self) -> impl Fn(u32) -> u32 {
        let tracking = self.shard.config.tracking;
        let now = self.now_ms;
        let rand = if tracking.policy.is_lfu() {
            self.shard.rand()
        } else {
            0
        };
        move |lru| tracking.touched(lru, now, rand)
    }

    /// Looks a key up for reading, counting a hit or a miss, and updating its access time.
    pub fn lookup_read(&mut self, key: &[u8]) -> Option<&Value> {
        let access = self.access();
        let e = self.lookup_counted(key)?;
        e.set_lru(access(e.lru()));
        Some(&e.value)
    }

    /// Looks a key up for writing (no hit/miss accounting, as Redis's `lookupKeyWrite`).
    pub fn lookup_write(&mut self, key: &[u8]) -> Option<&mut Value> {
        self.lookup_write_entry(key).map(|e| &mut e.value)
    }

    /// The live entry of `key`, value and expiry, without touching statistics.
    pub fn entry(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let now = self.now_ms;
        self.shard.expire_reported(self.db, key, now);
        self.db().get_mut(key, now)
    }

    /// True if `key` exists (and has not expired).
    pub fn exists(&mut self, key: &[u8]) -> bool {
        let now = self.now_ms;
        self.shard.expire_reported(self.db, key, now);
        self.db().contains(key, now)
    }

    /// Expires `key` if it is due, reporting `expired`; true if it did.
    pub fn expire_if_needed(&mut self, key: &[u8]) -> bool {
        let now = self.now_ms;
        self.shard.expire_if_needed(self.db, key, now)
    }

    /// Stores `value` at `key`, dropping any expiry, and counts a write.
    pub fn set(&mut self, key: &[u8], value: Value) {
        let (lru, keep) = self.overwrite_lru();
        self.shard.expire_reported(self.db, key, self.now_ms);
        if self.db().set(key, value, lru, keep) {
            self.notify(notify::NEW, "new", key);
        }
        self.shard.dirty += 1;
        self.signal_ready(key);
    }

    /// Reports that `key` may now serve a client blocked on it (a push, or a key that
    /// appeared by SET, RENAME, MOVE…). Cheap when nobody is blocked.
    pub fn signal_ready(&mut self, key: &[u8]) {
        self.shard.mark_ready(self.db, key);
    }

    /// The access field for a value stored over a key, and whether an existing key keeps
    /// its own (LFU counters survive an overwrite, as in Redis).
    fn overwrite_lru(&self) -> (u32, bool) {
        (self.new_lru(), self.shard.config.tracking.policy.is_lfu())
    }

    /// Stores `value` at `key`, keeping any expiry, and counts a write.
    pub fn set_keep_ttl(&mut self, key: &[u8], value: Value) {
        let (lru, keep) = self.overwrite_lru();
        self.shard.expire_reported(self.db, key, self.now_ms);
        if self.db().set_keep_ttl(key, value, lru, keep) {
            self.notify(notify::NEW, "new", key);
        }
        self.shard.dirty += 1;
        self.signal_ready(key);
    }

    /// Deletes `key`, freeing a large value in steps if `lazy`; true if it existed.
    pub fn delete(&mut self, key: &[u8], lazy: bool) -> bool {
        self.expire_if_needed(key);
        let Some(entry) = self.remove_entry(key) else {
            return false;
        };
        self.shard.dispose(entry.value, lazy);
        self.shard.dirty += 1;
        true
    }

    /// Takes `key`'s entry out of the database (no expiry check, no write counted). A stream
    /// taken out is reported ready: clients blocked on it in XREADGROUP must learn that it is
    /// gone (Redis 7.0 answers them `-UNBLOCKED`).
    pub fn remove_entry(&mut self, key: &[u8]) -> Option<Record> {
        let entry = self.db().remove(key)?;
        if matches!(entry.value, Value::Stream(_)) {
            self.signal_ready(key);
        }
        Some(entry)
    }

    /// Deletes `key` as it is, expired or not, as Redis's `dbDelete` when a STORE command's
    /// result is empty: counts a write and reports `del` if there was an entry.
    pub fn delete_destination(&mut self, key: &[u8]) -> bool {
        let removed = self.remove_entry(key).is_some();
        if removed {
            self.shard.dirty += 1;
            self.notify(notify::GENERIC, "del", key);
        }
        removed
    }

    /// Deletes `key` when a command left its collection empty (Redis never keeps empty
    /// collections), reporting `del` as Redis does after the command's own event.
    pub fn delete_if_empty(&mut self, key: &[u8], empty: bool) {
        if empty {
            self.db().remove(key);
            self.notify(notify::GENERIC, "del", key);
        }
    }

    /// Reports a keyspace event on `key` of the selected database (Redis's
    /// `notifyKeyspaceEvent`); kept only when `notify-keyspace-events` enables its class.
    #[inline]
    pub fn notify(&mut self, class: u32, event: &'static str, key: &[u8]) {
        self.shard.report(self.db, class, event, key);
    }

    /// Counts `n` writes.
    pub fn dirty(&mut self, n: u64) {
        self.shard.dirty += n;
    }

    /// A pseudo-random number from the shard's source.
    pub fn rand(&mut self) -> u64 {
        self.shard.rand()
    }

    /// Copies a key name for storing.
    pub fn key(key: &[u8]) -> Bytes {
        Bytes::copy_from_slice(key)
    }
}

impl Ctx<'_> {
    /// Looks a key up for reading without updating its access time, but counting a hit or a
    /// miss (Redis's `LOOKUP_NOTOUCH`: EXISTS, TYPE, TTL, SCAN's TYPE filter).
    pub fn lookup_read_notouch(&mut self, key: &[u8]) -> Option<&Entry> {
        self.lookup_counted(key).map(|e| &*e)
    }

    /// Like [`Ctx::lookup_read_notouch`], but a miss reports no `keymiss` event (Redis's
    /// `LOOKUP_NONOTIFY`, as OBJECT looks keys up).
    pub fn lookup_read_quiet(&mut self, key: &[u8]) -> Option<&Entry> {
        self.lookup_stats(key, false).map(|e| &*e)
    }

    /// The live entry of `key`, counting a keyspace hit or miss; a miss reports `keymiss`.
    fn lookup_counted(&mut self, key: &[u8]) -> Option<&mut Entry> {
        self.lookup_stats(key, true)
    }

    /// The live entry of `key`, counting a keyspace hit or miss, and reporting `keymiss` on a
    /// miss when `report_miss`.
    fn lookup_stats(&mut self, key: &[u8], report_miss: bool) -> Option<&mut Entry> {
        let now = self.now_ms;
        self.shard.expire_reported(self.db, key, now);
        let shard = &mut *self.shard;
        let n = shard.dbs.len();
        let e = shard.dbs[self.db.min(n - 1)].get_mut(key, now);
        if e.is_some() {
            shard.stats.keyspace_hits += 1;
        } else {
            shard.stats.keyspace_misses += 1;
            if report_miss {
                let flags = shard.notify_flags;
                notify::record(
                    &mut shard.events,
                    flags,
                    notify::KEY_MISS,
                    "keymiss",
                    self.db,
                    key,
                );
            }
        }
        e
    }

    /// A read lookup (hit or miss counted, access time updated) of a value the read changes:
    /// XREADGROUP and XCLAIM read a stream, as Redis looks them up, but move its groups.
    pub fn lookup_read_mut(&mut self, key: &[u8]) -> Option<&mut Value> {
        let access = self.access();
        let e = self.lookup_counted(key)?;
        e.set_lru(access(e.lru()));
        Some(&mut e.value)
    }

    /// Like [`Ctx::lookup_write`], but gives the whole entry (value and expiry).
    pub fn lookup_write_entry(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let access = self.access();
        let e = self.entry(key)?;
        e.set_lru(access(e.lru()));
        Some(e)
    }
}
