//! One database of one shard: the key table, per-key expiry, lazy and active expiration.
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
    /// Last access, in seconds of the shard's clock (OBJECT IDLETIME).
    pub accessed: u32,
    /// The snapshot epoch that saved the entry, or in which it was created: a running
    /// snapshot saves the entries below its epoch (see `crate::snapshot`).
    pub saved: u32,
}

impl Entry {
    /// A new entry (created in snapshot epoch `epoch`).
    pub fn new(value: Value, expire_at: Option<NonZeroU64>, accessed: u32) -> Entry {
        Entry {
            value,
            expire_at,
            accessed,
            saved: 0,
        }
    }
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
    /// Keys removed here without a command asking (lazy and active expiry), collected while
    /// the shard keeps a journal: they become its `Del` records (see `crate::journal`).
    reaped: Option<Vec<Bytes>>,
    /// The epoch of the last snapshot started (entries created now belong to it).
    epoch: u32,
    /// The snapshot running over this database, if any.
    pub(crate) snap: Option<Box<crate::snapshot::DbSnapshot>>,
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
                self.remove(key);
                self.note_reaped(key);
                true
            }
            _ => false,
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
        self.before_change(key);
        self.entries.get_mut(key)
    }

    /// The copy-on-write hook of snapshots: every change to an entry comes through here
    /// first, and an entry a running snapshot has not saved yet is saved now, as it was.
    #[inline]
    fn before_change(&mut self, key: &[u8]) {
        if let Some(snap) = &mut self.snap {
            if let Some(e) = self.entries.get_mut(key) {
                snap.save_early(key, e);
            }
        }
    }

    /// Reads an entry without expiring or touching it (introspection, persistence).
    pub fn peek(&self, key: &[u8]) -> Option<&Entry> {
        self.entries.get(key)
    }

    pub fn contains(&mut self, key: &[u8], now_ms: u64) -> bool {
        self.get(key, now_ms).is_some()
    }

    /// Sets `key` to `value`, dropping any expiry (Redis's `setKey`); true if the key was
    /// created.
    pub fn set(&mut self, key: &[u8], value: Value, accessed: u32) -> bool {
        self.before_change(key);
        if let Some(e) = self.entries.get_mut(key) {
            if e.expire_at.take().is_some() {
                self.volatile.remove(key);
            }
            e.value = value;
            e.accessed = accessed;
            return false;
        }
        self.insert_new(key, value, accessed);
        true
    }

    fn insert_new(&mut self, key: &[u8], value: Value, accessed: u32) {
        let mut entry = Entry::new(value, None, accessed);
        entry.saved = self.epoch;
        self.entries.insert(Bytes::copy_from_slice(key), entry);
    }

    /// Sets `key` to `value`, keeping its expiry if it has one; true if the key was created.
    pub fn set_keep_ttl(&mut self, key: &[u8], value: Value, accessed: u32) -> bool {
        self.before_change(key);
        if let Some(e) = self.entries.get_mut(key) {
            e.value = value;
            e.accessed = accessed;
            return false;
        }
        self.insert_new(key, value, accessed);
        true
    }

    /// Inserts a whole entry (value and expiry), replacing any existing one.
    pub fn insert_entry(&mut self, key: Bytes, mut entry: Entry) {
        self.before_change(&key);
        entry.saved = self.epoch;
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
        self.before_change(key);
        let (_, entry) = self.entries.remove(key)?;
        if entry.expire_at.is_some() {
            self.volatile.remove(key);
        }
        Some(entry)
    }

    /// Sets the absolute expiry of an existing key; returns false when the key is absent.
    pub fn set_expire(&mut self, key: &[u8], at_ms: u64) -> bool {
        self.before_change(key);
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
        self.before_change(key);
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

    /// Empties the database. A running snapshot keeps the entries it has not saved yet and
    /// saves them from there: nothing is copied.
    pub fn clear(&mut self) {
        let old = std::mem::take(&mut self.entries);
        self.volatile.clear();
        if let Some(snap) = &mut self.snap {
            snap.detach(old);
        }
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
    /// The expired keys met are reclaimed, telling `on_expired` about each.
    pub fn random_key(
        &mut self,
        rand: &mut impl FnMut() -> u64,
        now_ms: u64,
        on_expired: &mut impl FnMut(&Bytes),
    ) -> Option<Bytes> {
        // As Redis: retry past expired keys, but give up if every key is volatile and expired.
        for _ in 0..100 {
            let (key, expired) = match self.entries.random(rand()) {
                Some((k, e)) => (k.clone(), Self::is_expired(e, now_ms)),
                None => return None,
            };
            if !expired {
                return Some(key);
            }
            self.remove(&key);
            self.note_reaped(&key);
            on_expired(&key);
        }
        None
    }

    /// Redis's active expiry: sample up to `sample` volatile keys and delete the expired ones,
    /// telling `on_expired` about each.
    pub fn expire_sample(
        &mut self,
        sample: usize,
        rand: &mut impl FnMut() -> u64,
        now_ms: u64,
        on_expired: &mut impl FnMut(&Bytes),
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
                on_expired(&key);
            }
        }
        cycle
    }

    /// Moves the database out, whole (the caller puts it back).
    pub fn take(&mut self) -> Db {
        std::mem::take(self)
    }

    /// Starts (or stops) collecting the keys expiry removes, for the journal.
    pub fn collect_reaped(&mut self, on: bool) {
        self.reaped = on.then(Vec::new);
    }

    fn note_reaped(&mut self, key: &[u8]) {
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

impl Db {
    /// Starts snapshot `epoch` of this database, which is number `index`.
    pub(crate) fn snapshot_begin(&mut self, epoch: u32, index: usize, compress: bool) {
        self.epoch = epoch;
        self.snap = Some(Box::new(crate::snapshot::DbSnapshot::new(
            epoch, index, compress,
        )));
    }

    /// The entries table, for a snapshot's traversal.
    pub(crate) fn entries_mut(&mut self) -> &mut Dict<Bytes, Entry> {
        &mut self.entries
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
        db.set(b"k", s("v"), 0);
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
        db.set(b"k", s("v"), 0);
        db.set_expire(b"k", 5000);
        db.set_keep_ttl(b"k", s("w"), 0);
        assert!(db.peek(b"k").is_some_and(|e| e.expire_at.is_some()));
        db.set(b"k", s("x"), 0);
        assert!(db.peek(b"k").is_some_and(|e| e.expire_at.is_none()));
        assert_eq!(db.volatile_len(), 0);
    }

    #[test]
    fn active_expiry_reclaims_untouched_keys() {
        let mut db = Db::new();
        for i in 0..100 {
            let k = format!("k{i}");
            db.set(k.as_bytes(), s("v"), 0);
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
}
