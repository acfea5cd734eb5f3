//! One database of one shard: the key table, per-key expiry, lazy and active expiration, and
//! the sampling eviction draws its candidates from.
//!
//! Keys and values stored here are always owned copies: a request's arguments are views
//! into the connection's read buffer and must never be kept alive by the keyspace.
//!
//! Memory per key is what a cache is made of, so the layout is tight: one 64-byte node per
//! key (the dict's link, a 16-byte [`Key`] holding names up to 15 bytes in place (16 when the last byte allows), and a
//! 40-byte [`Entry`]: a 32-byte value, one word packing the access field eviction reads with
//! the snapshot epoch, and the index of the key's expiry). Keys with a TTL also have a
//! 16-byte slot in `expires`, (hash of the key, expiry time), whose index the entry keeps: a key without a TTL pays nothing for expiry,
//! and the slot leads back to its entry through the hash (sampling for active expiry and for
//! the volatile eviction policies) without a second copy of the key.

use bytes::Bytes;
use std::num::NonZeroU64;

use crate::dict::{hash_key, Dict};
use crate::key::Key;
use crate::slots::{key_slot, SlotIndex};
use crate::value::Value;

/// (hash of the key, absolute expiry in Unix ms) of every key of a database with a TTL.
pub type ExpirySlots = Vec<(u64, u64)>;

/// An entry's `expiry` when the key has no TTL.
const NO_EXPIRE: u32 = u32::MAX;

/// A key's entry in the table.
#[derive(Debug)]
pub struct Entry {
    pub value: Value,
    /// The access field (low [`ACCESS_BITS`] bits: the LRU clock or LFU counter eviction
    /// ranks keys by, see [`crate::evict`]) and the snapshot epoch that saved the entry, or in
    /// which it was created (the high bits, see `crate::snapshot`). One word for both keeps
    /// the entry at 40 bytes and the node at 64, a size class of its own: a separate epoch
    /// made it 72, in the 80-byte class.
    meta: u32,
    /// Index of the key's slot in `Db::expires`, or `NO_EXPIRE`.
    expiry: u32,
}

/// Bits of an entry's access field.
pub const ACCESS_BITS: u32 = crate::evict::ACCESS_BITS;
const ACCESS_MASK: u32 = (1 << ACCESS_BITS) - 1;
/// Snapshot epochs wrap at this many values (the bits of `Entry::meta` above the access field).
pub(crate) const EPOCHS: u8 = 1 << (32 - ACCESS_BITS);

impl Entry {
    fn new(value: Value, lru: u32, epoch: u8) -> Entry {
        Entry {
            value,
            meta: (u32::from(epoch) << ACCESS_BITS) | (lru & ACCESS_MASK),
            expiry: NO_EXPIRE,
        }
    }

    pub fn has_expire(&self) -> bool {
        self.expiry != NO_EXPIRE
    }

    /// The access clock (LRU) or frequency counter (LFU).
    pub fn lru(&self) -> u32 {
        self.meta & ACCESS_MASK
    }

    pub fn set_lru(&mut self, lru: u32) {
        self.meta = (self.meta & !ACCESS_MASK) | (lru & ACCESS_MASK);
    }

    /// The snapshot epoch that saved the entry, or in which it was created.
    pub(crate) fn saved(&self) -> u8 {
        (self.meta >> ACCESS_BITS) as u8
    }

    pub(crate) fn set_saved(&mut self, epoch: u8) {
        self.meta = (u32::from(epoch % EPOCHS) << ACCESS_BITS) | (self.meta & ACCESS_MASK);
    }
}

/// A whole entry on the move between databases or shards (RENAME, MOVE, COPY, commands over
/// keys of several shards): value, absolute expiry and access field.
#[derive(Debug, Clone)]
pub struct Record {
    pub value: Value,
    /// Absolute expiry in Unix milliseconds.
    pub expire_at: Option<NonZeroU64>,
    pub lru: u32,
}

impl Record {
    /// True once the expiry time has been reached.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expire_at.is_some_and(|at| at.get() <= now_ms)
    }
}

#[derive(Default)]
pub struct Db {
    entries: Dict<Key, Entry>,
    /// The expiry slots; see [`ExpirySlots`].
    expires: ExpirySlots,
    /// `lazyfree-lazy-expire`: large values of expired keys go to `doomed` instead of being
    /// freed on the spot.
    pub lazy_expire: bool,
    /// On a replica: an expired key is not removed here (the primary's DEL removes it), it
    /// only reads as missing (Redis's replicas behave so).
    pub keep_expired: bool,
    /// While clients are paused (CLIENT PAUSE) expired keys read as missing but stay: the
    /// dataset is kept as it is until the pause ends, as Redis does.
    pub expiry_paused: bool,
    /// Keys removed because a lookup found them expired (INFO's `expired_keys` adds them to
    /// active expiry's).
    pub lazily_expired: u64,
    /// Values of expired keys waiting to be freed in steps (the shard takes them over).
    pub doomed: Vec<Value>,
    /// Keys removed here without a command asking (lazy and active expiry), collected while
    /// the shard keeps a journal: they become its `Del` records (see `crate::journal`).
    reaped: Option<Vec<Bytes>>,
    /// The epoch of the last snapshot started (entries created now belong to it).
    epoch: u8,
    /// The oldest epoch an entry may still carry: the last snapshot that saved every entry
    /// (snapshots aborted since left some entries with older epochs). Epochs wrap, so the
    /// next one must not come round to it (see [`Db::snapshot_begin`]).
    oldest: u8,
    /// The snapshot running over this database, if any.
    pub(crate) snap: Option<Box<crate::snapshot::DbSnapshot>>,
    /// Its keys by hash slot, in cluster mode (see `crate::slots`).
    slots: Option<Box<SlotIndex>>,
    /// INFO keyspace's `avg_ttl`: a running estimate (ms) of the time left to the keys with a
    /// TTL, which active expiry updates from the keys it samples, as Redis's does.
    pub avg_ttl: u64,
}

/// What the active expiry cycle did in one call.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExpireCycle {
    pub sampled: usize,
    pub expired: usize,
    /// Time left (ms) to the sampled keys that had not expired, and how many they were.
    pub ttl_sum: u64,
    pub ttl_samples: u64,
}

impl Db {
    pub fn new() -> Self {
        Db::default()
    }

    /// A hint that `key` is about to be looked up (see [`Dict::prefetch`]).
    pub fn prefetch(&self, key: &[u8], stage: crate::dict::Prefetch) {
        self.entries.prefetch(key, stage);
    }

    /// Number of keys, counting expired ones not yet reclaimed (as Redis's DBSIZE does).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of the key table (its buckets and one node per key) and of the expiry slots:
    /// MEMORY STATS's per-database overhead.
    pub fn overhead(&self) -> (usize, usize) {
        let nodes = self.entries.len() * Dict::<Key, Entry>::node_bytes();
        (
            self.entries.allocated_bytes(0, |_, _| 0) + nodes,
            self.expires.capacity() * std::mem::size_of::<(u64, u64)>(),
        )
    }

    /// Number of keys with an expiry.
    pub fn volatile_len(&self) -> usize {
        self.expires.len()
    }

    /// The absolute expiry of an entry of this database, in Unix ms.
    pub fn expire_of(&self, entry: &Entry) -> Option<u64> {
        expiry_in(&self.expires, entry)
    }

    /// The absolute expiry of `key`, in Unix ms (expired or not).
    pub fn expire_at(&self, key: &[u8]) -> Option<u64> {
        self.peek(key).and_then(|e| self.expire_of(e))
    }

    /// True once the entry's expiry time has been reached (it may not be reclaimed yet).
    pub fn is_expired(&self, entry: &Entry, now_ms: u64) -> bool {
        self.expire_of(entry).is_some_and(|at| at <= now_ms)
    }

    /// Whether `key` has expired; removes it unless expiry is paused (it is then only
    /// logically gone, as Redis's `expireIfNeeded`).
    pub fn expire_if_needed(&mut self, key: &[u8], now_ms: u64) -> bool {
        // Most keys of a cache have no TTL: skip the lookup when none has.
        if self.expires.is_empty() || self.keep_expired {
            return false;
        }
        match self.entries.get(key) {
            Some(e) if self.is_expired(e, now_ms) => {
                if self.expiry_paused {
                    return true;
                }
                if let Some(gone) = self.remove(key) {
                    self.discard_expired(gone.value);
                }
                self.lazily_expired += 1;
                self.note_reaped(key);
                true
            }
            _ => false,
        }
    }

    /// Frees the value of an expired key, or keeps a large one for freeing in steps.
    fn discard_expired(&mut self, value: Value) {
        if self.lazy_expire && crate::lazyfree::is_large(&value) {
            self.doomed.push(value);
        }
    }

    /// The live entry of `key` (an expired one is removed first).
    pub fn get(&mut self, key: &[u8], now_ms: u64) -> Option<&Entry> {
        if self.expire_if_needed(key, now_ms) {
            return None;
        }
        self.entries
            .get(key)
            .filter(|e| !self.keep_expired || !self.is_expired(e, now_ms))
    }

    /// The live entry of `key`, for modification.
    pub fn get_mut(&mut self, key: &[u8], now_ms: u64) -> Option<&mut Entry> {
        if self.expire_if_needed(key, now_ms)
            || self.keep_expired && self.expire_at(key).is_some_and(|at| at <= now_ms)
        {
            return None;
        }
        self.before_change(key);
        self.entries.get_mut(key)
    }

    /// The copy-on-write hook of snapshots: every change to an entry comes through here
    /// first, and an entry a running snapshot has not saved yet is saved now, as it was.
    #[inline]
    fn before_change(&mut self, key: &[u8]) {
        if let Some(snap) = &mut self.snap {
            if let Some(e) = self.entries.get_mut(key) {
                let expire = expiry_in(&self.expires, e);
                snap.save_early(key, e, expire);
            }
        }
    }

    /// Reads an entry without expiring or touching it (introspection, persistence).
    pub fn peek(&self, key: &[u8]) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// The whole record of a live key, copied (to move it elsewhere).
    pub fn record(&mut self, key: &[u8], now_ms: u64) -> Option<Record> {
        self.get(key, now_ms)?;
        let e = self.entries.get(key)?;
        Some(self.to_record(e))
    }

    /// A copy of `e`, an entry of this database, as a whole record.
    pub fn to_record(&self, e: &Entry) -> Record {
        Record {
            value: e.value.clone(),
            expire_at: self.expire_of(e).and_then(NonZeroU64::new),
            lru: e.lru(),
        }
    }

    pub fn contains(&mut self, key: &[u8], now_ms: u64) -> bool {
        self.get(key, now_ms).is_some()
    }

    /// Sets `key` to `value`, dropping any expiry (Redis's `setKey`). `lru` is the access
    /// field of the new value; `keep_lru` keeps an overwritten key's own (LFU counters survive
    /// an overwrite, as in Redis).
    /// True if the key was created.
    pub fn set(&mut self, key: &[u8], value: Value, lru: u32, keep_lru: bool) -> bool {
        self.store(key, value, lru, keep_lru, false)
    }

    /// Sets `key` to `value`, keeping its expiry if it has one (`lru` as for [`Db::set`]).
    /// True if the key was created.
    pub fn set_keep_ttl(&mut self, key: &[u8], value: Value, lru: u32, keep_lru: bool) -> bool {
        self.store(key, value, lru, keep_lru, true)
    }

    fn store(
        &mut self,
        key: &[u8],
        value: Value,
        lru: u32,
        keep_lru: bool,
        keep_ttl: bool,
    ) -> bool {
        self.before_change(key);
        if let Some(e) = self.entries.get_mut(key) {
            e.value = value;
            if !keep_lru {
                e.set_lru(lru);
            }
            let expiry = e.expiry;
            if !keep_ttl && expiry != NO_EXPIRE {
                e.expiry = NO_EXPIRE;
                self.unlink_expiry(expiry);
            }
            return false;
        }
        self.entries
            .insert(Key::new(key), Entry::new(value, lru, self.epoch));
        if let Some(ix) = &mut self.slots {
            ix.added(key, hash_key(key));
        }
        true
    }

    /// Stores a whole record at `key`, replacing any existing entry.
    pub fn insert_record(&mut self, key: &[u8], record: Record) {
        let Record {
            value,
            expire_at,
            lru,
        } = record;
        self.store(key, value, lru, false, false);
        if let Some(at) = expire_at {
            self.set_expire(key, at.get());
        }
    }

    /// Deletes `key`; returns its record.
    pub fn remove(&mut self, key: &[u8]) -> Option<Record> {
        self.before_change(key);
        let (_, entry) = self.entries.remove(key)?;
        if let Some(ix) = &mut self.slots {
            let hash = hash_key(key);
            let entries = &self.entries;
            ix.removed(key, hash, |slot| {
                entries
                    .find_by_hash(hash, |k, _| {
                        key_slot(&k[..]) == slot && SlotIndex::same_entry(hash_key(&k[..]), hash)
                    })
                    .is_some()
            });
        }
        let expire_at = self.expire_of(&entry).and_then(NonZeroU64::new);
        if entry.has_expire() {
            self.unlink_expiry(entry.expiry);
        }
        Some(Record {
            lru: entry.lru(),
            value: entry.value,
            expire_at,
        })
    }

    /// Frees expiry slot `slot`: the last slot moves into it, and its entry is told.
    fn unlink_expiry(&mut self, slot: u32) {
        let at = slot as usize;
        if at >= self.expires.len() {
            return;
        }
        let last = (self.expires.len() - 1) as u32;
        self.expires.swap_remove(at);
        if slot != last {
            if let Some(&(hash, _)) = self.expires.get(at) {
                if let Some(moved) = self.entries.find_by_hash_mut(hash, |_, e| e.expiry == last) {
                    moved.expiry = slot;
                }
            }
        }
    }

    /// The key and entry holding expiry slot `slot`.
    fn expiry_owner(&self, slot: usize) -> Option<(&Key, &Entry)> {
        let &(hash, _) = self.expires.get(slot)?;
        self.entries
            .find_by_hash(hash, |_, e| e.expiry as usize == slot)
    }

    /// Sets the absolute expiry of an existing key; returns false when the key is absent.
    pub fn set_expire(&mut self, key: &[u8], at_ms: u64) -> bool {
        self.before_change(key);
        let at = at_ms.max(1);
        let slots = self.expires.len();
        let Some(e) = self.entries.get_mut(key) else {
            return false;
        };
        if e.has_expire() {
            if let Some(slot) = self.expires.get_mut(e.expiry as usize) {
                slot.1 = at;
            }
        } else if slots < NO_EXPIRE as usize {
            // (Four billion keys with a TTL in one database is past any memory.)
            e.expiry = slots as u32;
            self.expires.push((hash_key(key), at));
        }
        true
    }

    /// Removes the expiry of `key`; returns true if it had one.
    pub fn persist(&mut self, key: &[u8]) -> bool {
        self.before_change(key);
        let Some(e) = self.entries.get_mut(key) else {
            return false;
        };
        if !e.has_expire() {
            return false;
        }
        let slot = std::mem::replace(&mut e.expiry, NO_EXPIRE);
        self.unlink_expiry(slot);
        true
    }

    /// Empties the database. A running snapshot keeps the entries it has not saved yet and
    /// saves them from there: nothing is copied.
    pub fn clear(&mut self) {
        if self.slots.is_some() {
            self.slots = Some(Box::default());
        }
        let old = std::mem::take(&mut self.entries);
        let expires = std::mem::take(&mut self.expires);
        self.doomed.clear();
        if let Some(snap) = &mut self.snap {
            snap.detach(old, expires);
        }
    }

    /// Iterates over every entry, expired ones included.
    pub fn iter(&self) -> impl Iterator<Item = (&Key, &Entry)> {
        self.entries.iter()
    }

    /// One step of a SCAN over the keys; see [`Dict::scan`].
    pub fn scan(&self, cursor: u64, f: impl FnMut(&Key, &Entry)) -> u64 {
        self.entries.scan(cursor, f)
    }

    /// A random live key, or None when the database is empty or every sampled key expired.
    /// The expired keys met are reclaimed, telling `on_expired` about each.
    pub fn random_key(
        &mut self,
        rand: &mut impl FnMut() -> u64,
        now_ms: u64,
        on_expired: &mut impl FnMut(&[u8]),
    ) -> Option<Bytes> {
        // As Redis: retry past expired keys, but give up if every key is volatile and expired.
        for _ in 0..100 {
            let (key, expired) = match self.entries.random(rand()) {
                Some((k, e)) => (Bytes::copy_from_slice(k), self.is_expired(e, now_ms)),
                None => return None,
            };
            if !expired {
                return Some(key);
            }
            if let Some(gone) = self.remove(&key) {
                self.discard_expired(gone.value);
            }
            self.note_reaped(&key);
            on_expired(&key);
        }
        None
    }

    /// A random key name, among all keys or only those with a TTL, expired or not (the random
    /// eviction policies).
    pub fn random_name(&self, rand: u64, volatile: bool) -> Option<&[u8]> {
        if volatile {
            let slots = self.expires.len();
            if slots == 0 {
                return None;
            }
            self.expiry_owner((rand % slots as u64) as usize)
                .map(|(k, _)| &k[..])
        } else {
            self.entries.random(rand).map(|(k, _)| &k[..])
        }
    }

    /// Calls `f` with up to `count` random entries (only keys with a TTL if `volatile`), for
    /// eviction's sampling.
    pub fn sample_entries(
        &self,
        rand: u64,
        count: usize,
        volatile: bool,
        mut f: impl FnMut(&[u8], &Entry),
    ) {
        if volatile {
            let slots = self.expires.len();
            let mut r = crate::shard::rand_stream(rand);
            // Every key when the sample would take them all, else random slots.
            let all = count >= slots;
            for i in 0..count.min(slots) {
                let slot = if all {
                    i
                } else {
                    (r() % slots as u64) as usize
                };
                if let Some((k, e)) = self.expiry_owner(slot) {
                    f(k, e);
                }
            }
        } else {
            for (key, entry) in self.entries.sample(rand, count) {
                f(key, entry);
            }
        }
    }

    /// An estimate of the memory the database holds: its table and expiry slots, and its
    /// keys' mean size on a sample of `samples` keys (each measured as MEMORY USAGE does).
    pub fn estimate_bytes(&self, samples: usize) -> usize {
        let picked = self.entries.sample(0x5eed, samples.max(1));
        if picked.is_empty() {
            return 0;
        }
        let sampled: usize = picked
            .iter()
            .map(|(k, e)| crate::t_memory::key_usage(k, e, samples))
            .sum();
        let tables = self.entries.bucket_count() * 8 + self.expires.capacity() * 16;
        (sampled / picked.len()).saturating_mul(self.len()) + tables
    }

    /// Removes up to `max` keys, for freeing a whole database in steps; large values go to
    /// `large` instead of being freed here. Returns the keys removed.
    pub fn shed(&mut self, max: usize, large: &mut impl FnMut(Value)) -> usize {
        // Only a database taken out to be freed is shed: no one asks it by slot.
        self.slots = None;
        let removed = self.entries.shed(max, |_, entry| {
            if crate::lazyfree::is_large(&entry.value) {
                large(entry.value);
            }
        });
        if self.entries.is_empty() {
            self.expires = Vec::new();
        }
        removed
    }

    /// Redis's active expiry: sample up to `sample` keys with a TTL and delete the expired
    /// ones, telling `on_expired` about each.
    pub fn expire_sample(
        &mut self,
        sample: usize,
        rand: &mut impl FnMut() -> u64,
        now_ms: u64,
        on_expired: &mut impl FnMut(&[u8]),
    ) -> ExpireCycle {
        let mut cycle = ExpireCycle::default();
        if self.keep_expired {
            return cycle;
        }
        for _ in 0..sample.min(self.expires.len()) {
            let slots = self.expires.len();
            if slots == 0 {
                break;
            }
            let slot = (rand() % slots as u64) as usize;
            cycle.sampled += 1;
            match self.expires.get(slot) {
                Some(&(_, at)) if at <= now_ms => {}
                Some(&(_, at)) => {
                    cycle.ttl_sum = cycle.ttl_sum.saturating_add(at - now_ms);
                    cycle.ttl_samples += 1;
                    continue;
                }
                None => continue,
            }
            let Some(key) = self.expiry_owner(slot).map(|(k, _)| k.clone()) else {
                continue;
            };
            if let Some(gone) = self.remove(&key) {
                self.discard_expired(gone.value);
                self.note_reaped(&key);
                cycle.expired += 1;
                on_expired(&key);
            }
        }
        self.note_ttls(&cycle);
        cycle
    }

    /// Folds the TTLs a sample saw into `avg_ttl`: the new sample's mean weighs 2%, the
    /// estimate so far 98% (Redis's running average, computed here without Redis's rounding
    /// of each term, which keeps its estimate about a second low); no key with a TTL left
    /// resets it.
    fn note_ttls(&mut self, cycle: &ExpireCycle) {
        if self.expires.is_empty() {
            self.avg_ttl = 0;
        } else if let Some(mean) = cycle.ttl_sum.checked_div(cycle.ttl_samples) {
            if self.avg_ttl == 0 {
                self.avg_ttl = mean;
            }
            let blended = (u128::from(self.avg_ttl) * 49 + u128::from(mean)) / 50;
            self.avg_ttl = u64::try_from(blended).unwrap_or(u64::MAX);
        }
    }

    /// Moves every entry out (FLUSHALL ASYNC): this database is left empty, with its
    /// settings.
    pub fn take(&mut self) -> Db {
        let (lazy_expire, expiry_paused) = (self.lazy_expire, self.expiry_paused);
        let (lazily_expired, keep_expired) = (self.lazily_expired, self.keep_expired);
        let indexed = self.slots.is_some();
        let taken = std::mem::take(self);
        if indexed {
            self.slots = Some(Box::default());
        }
        self.lazy_expire = lazy_expire;
        self.expiry_paused = expiry_paused;
        self.lazily_expired = lazily_expired;
        self.keep_expired = keep_expired;
        taken
    }

    /// Keeps this database's keys by hash slot from now on (cluster mode).
    pub fn index_slots(&mut self) {
        let mut ix = SlotIndex::default();
        for (k, _) in self.entries.iter() {
            ix.added(&k[..], hash_key(&k[..]));
        }
        self.slots = Some(Box::new(ix));
    }

    /// Keys in `slot` (0 when slots are not indexed).
    pub fn count_in_slot(&self, slot: u16) -> usize {
        self.slots.as_ref().map_or(0, |ix| ix.count(slot))
    }

    /// Up to `max` keys of `slot` (none when slots are not indexed), expired ones not yet
    /// reclaimed included, as Redis's GETKEYSINSLOT.
    pub fn keys_in_slot(&self, slot: u16, max: usize) -> Vec<Bytes> {
        let mut out = Vec::new();
        let Some(ix) = &self.slots else {
            return out;
        };
        for hash in ix.hashes(slot) {
            if out.len() >= max {
                break;
            }
            // Every key of the chain with this slot and these hash bits (usually one).
            let mut found = Vec::new();
            self.entries.find_by_hash(hash, |k, _| {
                if key_slot(&k[..]) == slot && SlotIndex::same_entry(hash_key(&k[..]), hash) {
                    found.push(Bytes::copy_from_slice(&k[..]));
                }
                false
            });
            out.extend(found.into_iter().take(max - out.len()));
        }
        out
    }

    /// Checks that every expiry slot and its entry point at each other (tests).
    #[cfg(test)]
    pub fn check_expiry_links(&self) {
        for slot in 0..self.expires.len() {
            let owner = self.expiry_owner(slot);
            assert!(owner.is_some(), "slot {slot} has no entry");
        }
        let linked = self.entries.iter().filter(|(_, e)| e.has_expire()).count();
        assert_eq!(linked, self.expires.len());
    }

    /// Starts (or stops) collecting the keys expiry removes, for the journal.
    pub fn collect_reaped(&mut self, on: bool) {
        self.reaped = on.then(Vec::new);
    }

    /// Notes `key` as removed without a command asking (expiry, eviction) for the journal.
    pub(crate) fn note_reaped(&mut self, key: &[u8]) {
        if let Some(r) = &mut self.reaped {
            r.push(Bytes::copy_from_slice(key));
        }
    }

    /// The keys expiry removed since the last call.
    pub fn take_reaped(&mut self) -> Vec<Bytes> {
        match &mut self.reaped {
            Some(r) if !r.is_empty() => std::mem::take(r),
            _ => Vec::new(),
        }
    }
}

/// The absolute expiry of `entry`, whose expiry slots are `expires`.
pub(crate) fn expiry_in(expires: &[(u64, u64)], entry: &Entry) -> Option<u64> {
    if !entry.has_expire() {
        return None;
    }
    expires.get(entry.expiry as usize).map(|&(_, at)| at)
}

impl Db {
    /// Starts snapshot `epoch` of this database, which is number `index`. The snapshot saves
    /// the entries whose epoch differs from its own, so none may carry it already: that
    /// happens only when every epoch since `oldest` was used by a snapshot that was aborted
    /// (as many failed saves in a row as there are epochs), and then every entry is marked
    /// with the previous epoch first (one pass over the table).
    pub(crate) fn snapshot_begin(&mut self, epoch: u8, index: usize, compress: bool) {
        if epoch == self.oldest {
            let previous = epoch.wrapping_add(EPOCHS - 1) % EPOCHS;
            for (_, e) in self.entries.iter_mut() {
                e.set_saved(previous);
            }
            self.oldest = previous;
        }
        self.epoch = epoch;
        self.snap = Some(Box::new(crate::snapshot::DbSnapshot::new(
            epoch, index, compress,
        )));
    }

    /// The snapshot of this database is complete: every entry now carries its epoch.
    pub(crate) fn snapshot_done(&mut self) {
        self.snap = None;
        self.oldest = self.epoch;
    }

    /// The entries table, for a snapshot's traversal.
    pub(crate) fn entries_mut(&mut self) -> (&mut Dict<Key, Entry>, &[(u64, u64)]) {
        (&mut self.entries, &self.expires)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn slot_index_follows_every_change() {
        use crate::slots::key_slot;
        let mut db = Db::new();
        db.set(b"before", s("v"), 0, false);
        db.index_slots();
        let slot = key_slot(b"a");
        assert_eq!(db.count_in_slot(key_slot(b"before")), 1);
        for i in 0..100 {
            let k = format!("{{a}}{i}");
            db.set(k.as_bytes(), s("v"), 0, false);
        }
        // Overwriting a key does not count it twice.
        db.set(b"{a}0", s("w"), 0, false);
        assert_eq!(db.count_in_slot(slot), 100);
        assert!(db.remove(b"{a}0").is_some());
        assert_eq!(db.count_in_slot(slot), 99);
        let mut keys = db.keys_in_slot(slot, 1000);
        keys.sort();
        let mut want: Vec<Bytes> = (1..100).map(|i| Bytes::from(format!("{{a}}{i}"))).collect();
        want.sort();
        assert_eq!(keys, want);
        assert_eq!(db.keys_in_slot(slot, 5).len(), 5);
        let taken = db.take();
        assert_eq!(taken.count_in_slot(slot), 99);
        assert_eq!(db.count_in_slot(slot), 0);
        db.set(b"{a}x", s("v"), 0, false);
        assert_eq!(db.keys_in_slot(slot, 10), vec![Bytes::from_static(b"{a}x")]);
        db.clear();
        assert_eq!(db.count_in_slot(slot), 0);
        assert!(db.keys_in_slot(slot, 10).is_empty());
    }
    use super::*;

    fn s(v: &str) -> Value {
        Value::Str(crate::value::Str::new(v.as_bytes()))
    }

    #[test]
    fn a_replica_hides_expired_keys_without_removing_them() {
        let mut db = Db::new();
        db.keep_expired = true;
        db.set(b"k", s("v"), 0, false);
        db.set_expire(b"k", 10);
        assert!(db.get(b"k", 5).is_some());
        assert!(db.get(b"k", 10).is_none());
        assert!(db.get_mut(b"k", 11).is_none());
        assert!(db.record(b"k", 11).is_none());
        let mut rand = || 0;
        assert_eq!(db.expire_sample(20, &mut rand, 11, &mut |_| {}).expired, 0);
        // Still there, for the primary's DEL.
        assert!(db.peek(b"k").is_some());
        assert!(db.remove(b"k").is_some());
    }

    #[test]
    fn active_expiry_estimates_the_mean_ttl_left() {
        let mut db = Db::new();
        for i in 0..100u64 {
            let key = format!("k{i}");
            db.set(key.as_bytes(), s("v"), 0, false);
            // TTLs left at time 0: 10,000 to 19,900 ms, a mean of 14,950.
            db.set_expire(key.as_bytes(), 10_000 + i * 100);
        }
        let mut state = 7u64;
        let mut rand = || crate::shard::xorshift64star(&mut state);
        db.expire_sample(20, &mut rand, 0, &mut |_| {});
        let first = db.avg_ttl;
        assert!((10_000..20_000).contains(&first), "{first}");
        for _ in 0..500 {
            db.expire_sample(20, &mut rand, 0, &mut |_| {});
        }
        assert!((14_000..16_000).contains(&db.avg_ttl), "{}", db.avg_ttl);
        // No key with a TTL left: no estimate.
        for i in 0..100u64 {
            db.remove(format!("k{i}").as_bytes());
        }
        db.expire_sample(20, &mut rand, 0, &mut |_| {});
        assert_eq!(db.avg_ttl, 0);
    }

    #[test]
    fn lazy_expiry_removes_on_access() {
        let mut db = Db::new();
        db.set(b"k", s("v"), 0, false);
        assert!(db.set_expire(b"k", 1000));
        assert_eq!(db.volatile_len(), 1);
        assert!(db.get(b"k", 999).is_some());
        assert!(db.get(b"k", 1000).is_none());
        assert_eq!(db.len(), 0);
        assert_eq!(db.volatile_len(), 0);
    }

    #[test]
    fn set_drops_ttl_and_keep_ttl_keeps_it() {
        let mut db = Db::new();
        db.set(b"k", s("v"), 0, false);
        db.set_expire(b"k", 5000);
        db.set_keep_ttl(b"k", s("w"), 0, false);
        assert!(db.peek(b"k").is_some_and(Entry::has_expire));
        db.set(b"k", s("x"), 0, false);
        assert!(db.peek(b"k").is_some_and(|e| !e.has_expire()));
        assert_eq!(db.volatile_len(), 0);
    }

    #[test]
    fn active_expiry_reclaims_untouched_keys() {
        let mut db = Db::new();
        for i in 0..100 {
            let k = format!("k{i}");
            db.set(k.as_bytes(), s("v"), 0, false);
            db.set_expire(k.as_bytes(), 10);
        }
        let mut rand = crate::shard::rand_stream(7);
        let mut rounds = 0;
        while !db.is_empty() && rounds < 1000 {
            db.expire_sample(20, &mut rand, 11, &mut |_| {});
            rounds += 1;
        }
        assert_eq!(db.len(), 0);
    }

    #[test]
    fn expiry_slots_follow_their_keys_through_every_change() {
        use std::collections::HashMap;
        let mut db = Db::new();
        let mut model: HashMap<String, Option<u64>> = HashMap::new();
        let mut next = crate::testing::xorshift(11);
        for step in 0..20_000u64 {
            let key = format!("k{}", next(300));
            match next(7) {
                0 | 1 => {
                    db.set(key.as_bytes(), s("v"), 0, false);
                    model.insert(key, None);
                }
                2 | 3 => {
                    let at = 1000 + next(1000);
                    if db.set_expire(key.as_bytes(), at) {
                        model.insert(key, Some(at));
                    }
                }
                4 => {
                    if db.persist(key.as_bytes()) {
                        model.insert(key, None);
                    }
                }
                5 => {
                    let gone = db.remove(key.as_bytes());
                    let had = model.remove(&key);
                    assert_eq!(gone.is_some(), had.is_some());
                    if let (Some(g), Some(h)) = (gone, had) {
                        assert_eq!(g.expire_at.map(|a| a.get()), h);
                    }
                }
                _ => {
                    let rec = Record {
                        value: s("r"),
                        expire_at: NonZeroU64::new(next(3) * 5000),
                        lru: 0,
                    };
                    model.insert(key.clone(), rec.expire_at.map(|a| a.get()));
                    db.insert_record(key.as_bytes(), rec);
                }
            }
            if step % 500 == 0 {
                db.check_expiry_links();
            }
        }
        db.check_expiry_links();
        assert_eq!(db.len(), model.len());
        for (k, at) in &model {
            let e = db.peek(k.as_bytes()).expect("present");
            assert_eq!(db.expire_of(e), *at, "{k}");
        }
        // Active expiry at time 1500 removes exactly the keys due by then.
        let mut rand = crate::shard::rand_stream(3);
        for _ in 0..2000 {
            db.expire_sample(20, &mut rand, 1500, &mut |_| {});
        }
        db.check_expiry_links();
        let due = model
            .values()
            .filter(|a| a.is_some_and(|t| t <= 1500))
            .count();
        assert_eq!(db.len(), model.len() - due);
    }
}
