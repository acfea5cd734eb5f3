//! One database of one shard: the key table, per-key expiry, lazy and active expiration, and
//! the sampling eviction draws its candidates from.
//!
//! Keys and values stored here are always owned copies: a request's arguments are views
//! into the connection's read buffer and must never be kept alive by the keyspace.

use bytes::Bytes;
use std::num::NonZeroU64;

use crate::dict::Dict;
use crate::value::Value;

/// A key's slot in the table.
#[derive(Debug, Clone)]
pub struct Entry {
    pub value: Value,
    /// Absolute expiry in Unix milliseconds.
    pub expire_at: Option<NonZeroU64>,
    /// The access clock (LRU) or frequency counter (LFU) eviction ranks keys by; see
    /// [`crate::evict`].
    pub lru: u32,
}

impl Entry {
    /// True once the entry's expiry time has been reached (it may not be reclaimed yet).
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expire_at.is_some_and(|at| at.get() <= now_ms)
    }
}

#[derive(Default)]
pub struct Db {
    entries: Dict<Bytes, Entry>,
    /// The keys that have an expiry, sampled by the active expiry cycle.
    volatile: Dict<Bytes, ()>,
    /// `lazyfree-lazy-expire`: large values of expired keys go to `doomed` instead of being
    /// freed on the spot.
    pub lazy_expire: bool,
    /// Values of expired keys waiting to be freed in steps (the shard takes them over).
    pub doomed: Vec<Value>,
}

/// What the active expiry cycle did in one call.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExpireCycle {
    pub sampled: usize,
    pub expired: usize,
}

impl Db {
    pub fn new() -> Self {
        Db::default()
    }

    /// Number of keys, counting expired ones not yet reclaimed (as Redis's DBSIZE does).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of keys with an expiry.
    pub fn volatile_len(&self) -> usize {
        self.volatile.len()
    }

    fn is_expired(entry: &Entry, now_ms: u64) -> bool {
        entry.is_expired(now_ms)
    }

    /// Removes `key` if it has expired; returns true if it did.
    pub fn expire_if_needed(&mut self, key: &[u8], now_ms: u64) -> bool {
        // Most keys of a cache have no TTL: skip the lookup when none has.
        if self.volatile.is_empty() {
            return false;
        }
        match self.entries.get(key) {
            Some(e) if Self::is_expired(e, now_ms) => {
                if let Some(entry) = self.remove(key) {
                    self.discard_expired(entry.value);
                }
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
        self.expire_if_needed(key, now_ms);
        self.entries.get(key)
    }

    /// The live entry of `key`, for modification.
    pub fn get_mut(&mut self, key: &[u8], now_ms: u64) -> Option<&mut Entry> {
        self.expire_if_needed(key, now_ms);
        self.entries.get_mut(key)
    }

    /// Reads an entry without expiring or touching it (introspection, persistence).
    pub fn peek(&self, key: &[u8]) -> Option<&Entry> {
        self.entries.get(key)
    }

    pub fn contains(&mut self, key: &[u8], now_ms: u64) -> bool {
        self.get(key, now_ms).is_some()
    }

    /// Sets `key` to `value`, dropping any expiry (Redis's `setKey`). `lru` is the access
    /// field of the new value; `keep_lru` keeps an overwritten key's own (LFU counters survive
    /// an overwrite, as in Redis).
    pub fn set(&mut self, key: &[u8], value: Value, lru: u32, keep_lru: bool) {
        if let Some(e) = self.entries.get_mut(key) {
            if e.expire_at.take().is_some() {
                self.volatile.remove(key);
            }
            e.value = value;
            if !keep_lru {
                e.lru = lru;
            }
            return;
        }
        self.entries.insert(
            Bytes::copy_from_slice(key),
            Entry {
                value,
                expire_at: None,
                lru,
            },
        );
    }

    /// Sets `key` to `value`, keeping its expiry if it has one (`lru` as for [`Db::set`]).
    pub fn set_keep_ttl(&mut self, key: &[u8], value: Value, lru: u32, keep_lru: bool) {
        if let Some(e) = self.entries.get_mut(key) {
            e.value = value;
            if !keep_lru {
                e.lru = lru;
            }
            return;
        }
        self.entries.insert(
            Bytes::copy_from_slice(key),
            Entry {
                value,
                expire_at: None,
                lru,
            },
        );
    }

    /// Inserts a whole entry (value and expiry), replacing any existing one.
    pub fn insert_entry(&mut self, key: Bytes, entry: Entry) {
        let volatile = entry.expire_at.is_some();
        if let Some(old) = self.entries.insert(key.clone(), entry) {
            if old.expire_at.is_some() && !volatile {
                self.volatile.remove(&key[..]);
            }
        }
        if volatile {
            self.volatile.insert(key, ());
        }
    }

    /// Deletes `key`; returns its entry.
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let (_, entry) = self.entries.remove(key)?;
        if entry.expire_at.is_some() {
            self.volatile.remove(key);
        }
        Some(entry)
    }

    /// Sets the absolute expiry of an existing key; returns false when the key is absent.
    pub fn set_expire(&mut self, key: &[u8], at_ms: u64) -> bool {
        let Some(e) = self.entries.get_mut(key) else {
            return false;
        };
        let at = NonZeroU64::new(at_ms.max(1)).unwrap_or(NonZeroU64::MIN);
        if e.expire_at.replace(at).is_none() {
            self.volatile.insert(Bytes::copy_from_slice(key), ());
        }
        true
    }

    /// Removes the expiry of `key`; returns true if it had one.
    pub fn persist(&mut self, key: &[u8]) -> bool {
        let Some(e) = self.entries.get_mut(key) else {
            return false;
        };
        if e.expire_at.take().is_some() {
            self.volatile.remove(key);
            true
        } else {
            false
        }
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.volatile.clear();
        self.doomed.clear();
    }

    /// Iterates over every entry, expired ones included.
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &Entry)> {
        self.entries.iter()
    }

    /// One step of a SCAN over the keys; see [`Dict::scan`].
    pub fn scan(&self, cursor: u64, f: impl FnMut(&Bytes, &Entry)) -> u64 {
        self.entries.scan(cursor, f)
    }

    /// A random live key, or None when the database is empty or every sampled key expired.
    pub fn random_key(&mut self, rand: &mut impl FnMut() -> u64, now_ms: u64) -> Option<Bytes> {
        // As Redis: retry past expired keys, but give up if every key is volatile and expired.
        for _ in 0..100 {
            let (key, expired) = match self.entries.random(rand()) {
                Some((k, e)) => (k.clone(), Self::is_expired(e, now_ms)),
                None => return None,
            };
            if !expired {
                return Some(key);
            }
            if let Some(entry) = self.remove(&key) {
                self.discard_expired(entry.value);
            }
        }
        None
    }

    /// A random key name, among all keys or only those with a TTL, expired or not (the random
    /// eviction policies).
    pub fn random_name(&self, rand: u64, volatile: bool) -> Option<&[u8]> {
        if volatile {
            self.volatile.random(rand).map(|(k, _)| &k[..])
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
            for (key, _) in self.volatile.sample(rand, count) {
                if let Some(entry) = self.entries.get(&key[..]) {
                    f(key, entry);
                }
            }
        } else {
            for (key, entry) in self.entries.sample(rand, count) {
                f(key, entry);
            }
        }
    }

    /// An estimate of the memory the database holds: its tables, and its keys' mean size on
    /// a sample of `samples` keys (each measured as MEMORY USAGE does).
    pub fn estimate_bytes(&self, samples: usize) -> usize {
        let picked = self.entries.sample(0x5eed, samples.max(1));
        if picked.is_empty() {
            return 0;
        }
        let sampled: usize = picked
            .iter()
            .map(|(k, e)| crate::t_memory::key_usage(k, e, samples))
            .sum();
        let tables = (self.entries.bucket_count() + self.volatile.bucket_count()) * 8;
        (sampled / picked.len()).saturating_mul(self.len()) + tables
    }

    /// Removes up to `max` keys, for freeing a whole database in steps; large values go to
    /// `large` instead of being freed here. Returns the keys removed.
    pub fn shed(&mut self, max: usize, large: &mut impl FnMut(Value)) -> usize {
        self.volatile.shed(max, |_, _| {});
        self.entries.shed(max, |_, entry| {
            if crate::lazyfree::is_large(&entry.value) {
                large(entry.value);
            }
        })
    }

    /// Redis's active expiry: sample up to `sample` volatile keys and delete the expired ones.
    pub fn expire_sample(
        &mut self,
        sample: usize,
        rand: &mut impl FnMut() -> u64,
        now_ms: u64,
    ) -> ExpireCycle {
        let mut cycle = ExpireCycle::default();
        for _ in 0..sample.min(self.volatile.len()) {
            let Some((key, _)) = self.volatile.random(rand()) else {
                break;
            };
            let key = key.clone();
            cycle.sampled += 1;
            if self.expire_if_needed(&key, now_ms) {
                cycle.expired += 1;
            }
        }
        cycle
    }

    /// Moves every entry out (FLUSHALL ASYNC): this database is left empty, with its
    /// settings.
    pub fn take(&mut self) -> Db {
        let lazy_expire = self.lazy_expire;
        let taken = std::mem::take(self);
        self.lazy_expire = lazy_expire;
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::Str(Bytes::copy_from_slice(v.as_bytes()))
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
        assert!(db.peek(b"k").is_some_and(|e| e.expire_at.is_some()));
        db.set(b"k", s("x"), 0, false);
        assert!(db.peek(b"k").is_some_and(|e| e.expire_at.is_none()));
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
            db.expire_sample(20, &mut rand, 11);
            rounds += 1;
        }
        assert_eq!(db.len(), 0);
    }
}
