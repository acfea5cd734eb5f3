//! The hash table behind keyspaces, hashes and sets.
//!
//! A chained table with power-of-two bucket arrays, as Redis's `dict`: SCAN walks it with a
//! reverse-binary cursor, which guarantees that an element present for the whole scan is
//! returned at least once even when the table grows or shrinks between calls; random
//! sampling (RANDOMKEY, active expiry, eviction) picks a random non-empty bucket.
//!
//! NOTE: interim implementation over `std::collections::HashMap`; the chained table replaces it.

use ahash::RandomState;
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

/// Fixed seeds: iteration order must be reproducible (snapshots, tests).
fn hasher() -> RandomState {
    RandomState::with_seeds(
        0x5348_4152,
        0x4449_5321,
        0x9e37_79b9_7f4a_7c15,
        0x2545_f491_4f6c_dd1d,
    )
}

#[derive(Clone)]
pub struct Dict<K, V> {
    map: HashMap<K, V, RandomState>,
}

impl<K: std::fmt::Debug, V: std::fmt::Debug> std::fmt::Debug for Dict<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.map.iter()).finish()
    }
}

impl<K: Hash + Eq, V> Default for Dict<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Hash + Eq, V> Dict<K, V> {
    pub fn new() -> Self {
        Dict {
            map: HashMap::with_hasher(hasher()),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn get<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.map.get(key)
    }

    pub fn get_mut<Q: Hash + Eq + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        self.map.get_mut(key)
    }

    pub fn contains_key<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.map.contains_key(key)
    }

    /// Inserts or replaces; returns the previous value.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.map.insert(key, value)
    }

    pub fn remove<Q: Hash + Eq + ?Sized>(&mut self, key: &Q) -> Option<(K, V)>
    where
        K: Borrow<Q>,
    {
        self.map.remove_entry(key)
    }

    pub fn clear(&mut self) {
        self.map.clear()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.map.iter()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> {
        self.map.iter_mut()
    }

    pub fn retain(&mut self, f: impl FnMut(&K, &mut V) -> bool) {
        self.map.retain(f)
    }

    /// Calls `f` for the elements of the bucket(s) at `cursor` and returns the next cursor
    /// (0 when the scan is complete).
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&K, &V)) -> u64 {
        // interim: cursor is a position in iteration order, ten per call
        let mut next = 0;
        for (i, (k, v)) in self.map.iter().enumerate().skip(cursor as usize).take(10) {
            f(k, v);
            next = i as u64 + 1;
        }
        if next as usize >= self.map.len() {
            0
        } else {
            next
        }
    }

    /// A uniformly-ish random element, using `rand` as the source of randomness.
    pub fn random(&self, rand: u64) -> Option<(&K, &V)> {
        if self.map.is_empty() {
            return None;
        }
        self.map.iter().nth((rand % self.map.len() as u64) as usize)
    }
}
