//! The hash table behind keyspaces, hashes and sets.
//!
//! A chained table with power-of-two bucket arrays, in the manner of Redis's `dict`:
//!
//! - Each bucket is one pointer (`Option<Box<Node>>`, 8 bytes) and each entry one allocation
//!   holding the key, the value and the next pointer, so the per-entry overhead is the same as
//!   Redis's `dictEntry` (the hash is not stored: it is recomputed when rehashing).
//! - The table grows when it is full (load factor 1) and shrinks when under 10% full (never
//!   below 4 buckets). Resizing is incremental: a second table is allocated and the mutating
//!   operations each move one bucket of the old table into it, so no single call pays for
//!   rehashing millions of keys. [`Dict::rehash`] lets an idle-time cron move more.
//! - [`Dict::scan`] walks buckets with Redis's reverse-binary cursor, which guarantees that an
//!   element present for the whole scan is returned at least once even when the table grows,
//!   shrinks or rehashes between calls.
//! - [`Dict::random`] and [`Dict::sample`] pick random non-empty buckets (RANDOMKEY, active
//!   expiry, eviction) without walking the table.

use ahash::RandomState;
use std::borrow::Borrow;
use std::fmt;
use std::hash::Hash;
use std::iter::FusedIterator;
use std::mem;
use std::sync::OnceLock;

/// The hasher of every dict in the process. Keys come from clients, so with seeds an attacker
/// knows they could send keys that all fall in one bucket and turn every lookup into a walk
/// of one long chain: the server draws the seeds at random at start-up
/// ([`seed_hashers`]). Unseeded (unit tests, tools), the fixed [`DEFAULT_SEEDS`] keep the
/// iteration order reproducible.
static HASHER: OnceLock<RandomState> = OnceLock::new();

/// The seeds used when [`seed_hashers`] was not called first.
pub const DEFAULT_SEEDS: [u64; 4] = [
    0x5348_4152,
    0x4449_5321,
    0x9e37_79b9_7f4a_7c15,
    0x2545_f491_4f6c_dd1d,
];

/// Sets the seeds of every dict's hash function for the rest of the process. Call it once at
/// start-up, before any dict holds a key (before any shard exists): the seeds cannot change
/// afterwards, since the keys already placed would be in the wrong buckets. Returns false,
/// changing nothing, when the hasher was already fixed (seeded before, or a dict was used
/// first and fixed the defaults).
pub fn seed_hashers(seeds: [u64; 4]) -> bool {
    let [a, b, c, d] = seeds;
    HASHER.set(RandomState::with_seeds(a, b, c, d)).is_ok()
}

/// Smallest bucket array, as Redis's `DICT_HT_INITIAL_SIZE`.
const INITIAL_SIZE: usize = 4;
/// Shrink when fewer than this percentage of the buckets' worth of entries remain.
const MIN_FILL_PERCENT: usize = 10;
/// A rehash step gives up after this many empty buckets per bucket it was asked to move, so
/// that a sparse table cannot make one operation slow.
const EMPTY_VISITS_PER_STEP: usize = 10;
/// How many elements `random` draws its pick from (Redis's `GETFAIR_NUM_ENTRIES`).
const FAIR_SAMPLE: usize = 15;
/// Random bucket probes before `random` falls back to walking to the next non-empty bucket.
const RANDOM_PROBES: usize = 64;

fn hash_of<Q: Hash + ?Sized>(key: &Q) -> u64 {
    HASHER
        .get_or_init(|| {
            let [a, b, c, d] = DEFAULT_SEEDS;
            RandomState::with_seeds(a, b, c, d)
        })
        .hash_one(key)
}

struct Node<K, V> {
    key: K,
    value: V,
    next: Link<K, V>,
}

type Link<K, V> = Option<Box<Node<K, V>>>;

/// The bucket of `hash` in an array of `len` buckets (`len` is zero or a power of two).
fn bucket_index(hash: u64, len: usize) -> usize {
    // Truncating the hash is intended: only its low bits select the bucket.
    (hash as usize) & len.wrapping_sub(1)
}

fn new_buckets<K, V>(size: usize) -> Box<[Link<K, V>]> {
    (0..size).map(|_| None).collect()
}

/// The link holding `key` in the chain starting at `link`, or the empty link ending the chain.
fn chain_slot<'a, K, V, Q>(mut link: &'a mut Link<K, V>, key: &Q) -> &'a mut Link<K, V>
where
    K: Borrow<Q>,
    Q: Eq + ?Sized,
{
    while link.as_ref().is_some_and(|n| n.key.borrow() != key) {
        if let Some(node) = link {
            link = &mut node.next;
        }
    }
    link
}

/// A deep copy of a chain, built front to back without recursion.
fn clone_chain<K: Clone, V: Clone>(mut src: Option<&Node<K, V>>) -> Link<K, V> {
    let mut head = None;
    let mut tail = &mut head;
    while let Some(node) = src {
        let copy = Box::new(Node {
            key: node.key.clone(),
            value: node.value.clone(),
            next: None,
        });
        tail = &mut tail.insert(copy).next;
        src = node.next.as_deref();
    }
    head
}

/// One bucket array and the number of entries in it.
struct Table<K, V> {
    buckets: Box<[Link<K, V>]>,
    used: usize,
}

impl<K, V> Table<K, V> {
    fn empty() -> Self {
        Table {
            buckets: Box::default(),
            used: 0,
        }
    }

    /// A table of `size` empty buckets (`size` a power of two).
    fn with_size(size: usize) -> Self {
        Table {
            buckets: new_buckets(size),
            used: 0,
        }
    }

    fn size(&self) -> usize {
        self.buckets.len()
    }

    fn chain(&self, hash: u64) -> Option<&Node<K, V>> {
        self.buckets
            .get(bucket_index(hash, self.size()))?
            .as_deref()
    }

    fn find<Q: Eq + ?Sized>(&self, hash: u64, key: &Q) -> Option<&Node<K, V>>
    where
        K: Borrow<Q>,
    {
        let mut node = self.chain(hash);
        while let Some(n) = node {
            if n.key.borrow() == key {
                return Some(n);
            }
            node = n.next.as_deref();
        }
        None
    }

    fn find_mut<Q: Eq + ?Sized>(&mut self, hash: u64, key: &Q) -> Option<&mut Node<K, V>>
    where
        K: Borrow<Q>,
    {
        let index = bucket_index(hash, self.size());
        chain_slot(self.buckets.get_mut(index)?, key).as_deref_mut()
    }

    fn remove<Q: Eq + ?Sized>(&mut self, hash: u64, key: &Q) -> Option<Box<Node<K, V>>>
    where
        K: Borrow<Q>,
    {
        let index = bucket_index(hash, self.size());
        let slot = chain_slot(self.buckets.get_mut(index)?, key);
        let mut node = slot.take()?;
        *slot = node.next.take();
        self.used -= 1;
        Some(node)
    }

    /// Puts `node` at the head of its bucket. The table must have buckets.
    fn push_front(&mut self, hash: u64, mut node: Box<Node<K, V>>) {
        let index = bucket_index(hash, self.size());
        if let Some(head) = self.buckets.get_mut(index) {
            node.next = head.take();
            *head = Some(node);
            self.used += 1;
        }
    }
}

impl<K, V> Drop for Table<K, V> {
    /// Frees chains one node at a time: the default recursive drop of a `Box` list could
    /// overflow the stack on a pathologically long chain.
    fn drop(&mut self) {
        for head in self.buckets.iter_mut() {
            let mut link = head.take();
            while let Some(mut node) = link {
                link = node.next.take();
            }
        }
    }
}

impl<K: Clone, V: Clone> Clone for Table<K, V> {
    fn clone(&self) -> Self {
        Table {
            buckets: self
                .buckets
                .iter()
                .map(|b| clone_chain(b.as_deref()))
                .collect(),
            used: self.used,
        }
    }
}

/// The source of randomness for sampling: one caller-supplied `u64` seeds a SplitMix64
/// sequence, so a single draw from the shard's generator can drive many bucket probes.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (which must be non-zero).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A chained hash table with incremental rehashing; see the module documentation.
pub struct Dict<K, V> {
    /// `ht[0]` holds the entries; while rehashing, `ht[1]` is the new array they move to and
    /// receives new entries. Rehashing is in progress exactly when `ht[1]` has buckets.
    ht: [Table<K, V>; 2],
    /// While rehashing: every bucket of `ht[0]` below this index has been moved (and is empty).
    rehash_idx: usize,
}

impl<K: Clone, V: Clone> Clone for Dict<K, V> {
    fn clone(&self) -> Self {
        Dict {
            ht: [self.ht[0].clone(), self.ht[1].clone()],
            rehash_idx: self.rehash_idx,
        }
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for Dict<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Hash + Eq, V> Default for Dict<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> Dict<K, V> {
    /// An empty dict; allocates nothing until the first insert.
    pub fn new() -> Self {
        Dict {
            ht: [Table::empty(), Table::empty()],
            rehash_idx: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.ht[0].used + self.ht[1].used
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True while entries are being moved to a resized bucket array.
    pub fn is_rehashing(&self) -> bool {
        self.ht[1].size() > 0
    }

    /// Total number of buckets allocated (both arrays while rehashing), for memory accounting.
    pub fn bucket_count(&self) -> usize {
        self.ht[0].size() + self.ht[1].size()
    }

    /// Removes every element and frees the bucket arrays.
    pub fn clear(&mut self) {
        self.ht = [Table::empty(), Table::empty()];
        self.rehash_idx = 0;
    }

    pub fn iter(&self) -> Iter<'_, K, V> {
        Iter {
            buckets: self.ht[0].buckets.iter().chain(self.ht[1].buckets.iter()),
            node: None,
            remaining: self.len(),
        }
    }

    pub fn iter_mut(&mut self) -> IterMut<'_, K, V> {
        let remaining = self.len();
        let [t0, t1] = &mut self.ht;
        IterMut {
            buckets: t0.buckets.iter_mut().chain(t1.buckets.iter_mut()),
            node: None,
            remaining,
        }
    }

    /// Calls `f` for the elements of the bucket(s) at `cursor` and returns the next cursor
    /// (0 when the scan is complete). Start with cursor 0.
    ///
    /// Redis's `dictScan`: the cursor is incremented in its reversed bits, so that the buckets
    /// already visited stay visited when the array doubles or halves. While rehashing, a
    /// bucket of the smaller array is visited together with every bucket of the larger array
    /// it expands to. Elements may be returned more than once.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&K, &V)) -> u64 {
        let (plan, next) = self.scan_plan(cursor);
        for (t, v) in plan {
            let mut node = self.ht[t].chain(v);
            while let Some(n) = node {
                f(&n.key, &n.value);
                node = n.next.as_deref();
            }
        }
        next
    }

    /// [`Dict::scan`] with the values lent mutably (a snapshot marks what it saved).
    pub fn scan_mut(&mut self, cursor: u64, mut f: impl FnMut(&K, &mut V)) -> u64 {
        let (plan, next) = self.scan_plan(cursor);
        for (t, v) in plan {
            let size = self.ht[t].size();
            let mut link = self.ht[t]
                .buckets
                .get_mut(bucket_index(v, size))
                .and_then(|b| b.as_deref_mut());
            while let Some(n) = link {
                f(&n.key, &mut n.value);
                link = n.next.as_deref_mut();
            }
        }
        next
    }

    /// The buckets one SCAN step visits (table, cursor value), and the next cursor.
    fn scan_plan(&self, cursor: u64) -> (Vec<(usize, u64)>, u64) {
        if self.is_empty() {
            return (Vec::new(), 0);
        }
        // Sets the bits above `mask`, so that the increment of the reversed cursor carries
        // into the highest bit within `mask`.
        let advance = |v: u64, mask: u64| (v | !mask).reverse_bits().wrapping_add(1).reverse_bits();
        let mut v = cursor;
        if !self.is_rehashing() {
            return (vec![(0, v)], advance(v, self.ht[0].size() as u64 - 1));
        }
        let (small, large) = if self.ht[0].size() <= self.ht[1].size() {
            (0, 1)
        } else {
            (1, 0)
        };
        let m0 = self.ht[small].size() as u64 - 1;
        let m1 = self.ht[large].size() as u64 - 1;
        let mut plan = vec![(small, v)];
        loop {
            plan.push((large, v));
            v = advance(v, m1);
            // Stop once the bits the larger array adds to the smaller one's index wrap around.
            if v & (m0 ^ m1) == 0 {
                return (plan, v);
            }
        }
    }

    /// A random element, using `rand` as the source of randomness; None when empty.
    ///
    /// As Redis's `dictGetFairRandomKey`: the pick is made among a sample of up to 15
    /// elements from consecutive buckets, which evens out the bias towards elements alone in
    /// their bucket that picking a random bucket and then a random element of it would have.
    pub fn random(&self, rand: u64) -> Option<(&K, &V)> {
        if self.is_empty() {
            return None;
        }
        let mut rng = SplitMix(rand);
        let mut picks = [None; FAIR_SAMPLE];
        let n = self.sample_into(&mut rng, &mut picks);
        let node = match picks.get(..n) {
            Some(sampled) if !sampled.is_empty() => sampled[rng.below(sampled.len())],
            _ => self.random_bucket_node(&mut rng),
        }?;
        Some((&node.key, &node.value))
    }

    /// Up to `count` random elements (fewer if the dict is smaller or sparse), as Redis's
    /// `dictGetSomeKeys`: cheap and roughly random, for sampling (expiry, eviction). An element
    /// may appear more than once.
    pub fn sample(&self, rand: u64, count: usize) -> Vec<(&K, &V)> {
        let mut picks = vec![None; count.min(self.len())];
        let n = self.sample_into(&mut SplitMix(rand), &mut picks);
        picks
            .into_iter()
            .take(n)
            .flatten()
            .map(|node| (&node.key, &node.value))
            .collect()
    }

    /// The bucket at position `g` of the concatenation of both arrays.
    fn bucket_at(&self, g: usize) -> Option<&Node<K, V>> {
        let s0 = self.ht[0].size();
        let link = if g < s0 {
            self.ht[0].buckets.get(g)
        } else {
            self.ht[1].buckets.get(g - s0)
        };
        link?.as_deref()
    }

    /// Redis's `dictGetRandomKey`: a random non-empty bucket, then a random element of its
    /// chain. Falls back to the next non-empty bucket after a few misses, so that a sparse
    /// table cannot make it loop for long.
    fn random_bucket_node(&self, rng: &mut SplitMix) -> Option<&Node<K, V>> {
        // Buckets of ht[0] below rehash_idx are known to be empty.
        let first = self.rehash_idx;
        let span = self.bucket_count().checked_sub(first).filter(|&n| n > 0)?;
        let mut start = 0;
        let mut head = None;
        for _ in 0..RANDOM_PROBES {
            start = rng.below(span);
            head = self.bucket_at(first + start);
            if head.is_some() {
                break;
            }
        }
        if head.is_none() {
            head = (1..span).find_map(|off| self.bucket_at(first + (start + off) % span));
        }
        let head = head?;
        let len = std::iter::successors(Some(head), |n| n.next.as_deref()).count();
        std::iter::successors(Some(head), |n| n.next.as_deref()).nth(rng.below(len))
    }

    /// Redis's `dictGetSomeKeys`: walks consecutive buckets from a random position (in both
    /// arrays while rehashing), jumping elsewhere after a run of empty buckets, and fills
    /// `out` by reservoir sampling over the chains it meets. Returns how many slots it filled.
    fn sample_into<'a>(&'a self, rng: &mut SplitMix, out: &mut [Option<&'a Node<K, V>>]) -> usize {
        let count = out.len().min(self.len());
        let Some(out) = out.get_mut(..count).filter(|o| !o.is_empty()) else {
            return 0;
        };
        let tables = if self.is_rehashing() { 2 } else { 1 };
        let max_mask = self.ht[0].size().max(self.ht[1].size()).wrapping_sub(1);
        let mut i = (rng.next() as usize) & max_mask;
        let mut empty_run = 0;
        let mut stored = 0usize;
        for _ in 0..count.saturating_mul(10) {
            for (j, table) in self.ht.iter().take(tables).enumerate() {
                if tables == 2 && j == 0 && i < self.rehash_idx {
                    // Already moved: nothing left in ht[0] here. If ht[1] is the smaller
                    // array, `i` is past its end too, so resume at the first unmoved bucket.
                    if i >= self.ht[1].size() {
                        i = self.rehash_idx;
                    } else {
                        continue;
                    }
                }
                let Some(link) = table.buckets.get(i) else {
                    continue;
                };
                let Some(head) = link.as_deref() else {
                    empty_run += 1;
                    if empty_run >= 5 && empty_run > count {
                        i = (rng.next() as usize) & max_mask;
                        empty_run = 0;
                    }
                    continue;
                };
                empty_run = 0;
                let mut node = Some(head);
                while let Some(n) = node {
                    if stored < count {
                        out[stored] = Some(n);
                    } else if let Some(slot) = out.get_mut(rng.below(stored + 1)) {
                        *slot = Some(n);
                    }
                    stored += 1;
                    node = n.next.as_deref();
                }
                if stored >= count {
                    return count;
                }
            }
            i = (i + 1) & max_mask;
        }
        stored.min(count)
    }
}

impl<K: Hash + Eq, V> Dict<K, V> {
    fn find<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<&Node<K, V>>
    where
        K: Borrow<Q>,
    {
        if self.is_empty() {
            return None;
        }
        let hash = hash_of(key);
        self.ht.iter().find_map(|t| t.find(hash, key))
    }

    pub fn get<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.find(key).map(|n| &n.value)
    }

    /// The stored key and its value.
    pub fn get_key_value<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
    {
        self.find(key).map(|n| (&n.key, &n.value))
    }

    pub fn get_mut<Q: Hash + Eq + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        if self.is_empty() {
            return None;
        }
        let hash = hash_of(key);
        self.rehash_step();
        let [t0, t1] = &mut self.ht;
        if let Some(node) = t0.find_mut(hash, key) {
            return Some(&mut node.value);
        }
        t1.find_mut(hash, key).map(|n| &mut n.value)
    }

    pub fn contains_key<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.find(key).is_some()
    }

    /// Inserts or replaces; returns the previous value (the stored key is kept on replace).
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let hash = hash_of(&key);
        match self.find_or_vacant(hash, &key) {
            Ok(old) => Some(mem::replace(old, value)),
            Err(vacant) => {
                vacant.fill(key, value);
                None
            }
        }
    }

    /// The value of `key`, inserting `make()` first if it is absent.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        let hash = hash_of(&key);
        match self.find_or_vacant(hash, &key) {
            Ok(value) => value,
            Err(vacant) => vacant.fill(key, make()),
        }
    }

    pub fn remove<Q: Hash + Eq + ?Sized>(&mut self, key: &Q) -> Option<(K, V)>
    where
        K: Borrow<Q>,
    {
        if self.is_empty() {
            return None;
        }
        let hash = hash_of(key);
        self.rehash_step();
        let [t0, t1] = &mut self.ht;
        let node = t0.remove(hash, key).or_else(|| t1.remove(hash, key))?;
        self.after_removal();
        let Node { key, value, .. } = *node;
        Some((key, value))
    }

    /// Keeps only the elements for which `f` returns true.
    pub fn retain(&mut self, mut f: impl FnMut(&K, &mut V) -> bool) {
        for table in &mut self.ht {
            let Table { buckets, used } = table;
            for head in buckets.iter_mut() {
                let mut rest = head.take();
                let mut tail = head;
                while let Some(mut node) = rest {
                    rest = node.next.take();
                    if f(&node.key, &mut node.value) {
                        tail = &mut tail.insert(node).next;
                    } else {
                        *used -= 1;
                    }
                }
            }
        }
        // Already O(n): finish any rehash so that the shrink check below can act.
        self.rehash_all();
        self.after_removal();
    }

    /// Makes room for `additional` more elements without further resizing. The bucket array
    /// is sized from the request, so callers must only pass counts they are about to insert
    /// (never a number taken from a client before the data exists).
    pub fn reserve(&mut self, additional: usize) {
        let wanted = self.len().saturating_add(additional);
        if wanted <= self.ht[usize::from(self.is_rehashing())].size() {
            return;
        }
        self.rehash_all();
        self.resize(wanted);
    }

    /// Shrinks the bucket array to the smallest power of two that holds the elements (no
    /// array at all when empty), finishing the rehash at once.
    pub fn shrink_to_fit(&mut self) {
        if self.is_empty() {
            self.clear();
            return;
        }
        self.rehash_all();
        self.resize(self.len());
        self.rehash_all();
    }

    /// Moves up to `buckets` buckets to the new array if a resize is in progress (a
    /// background step, as Redis's cron-driven `dictRehashMilliseconds`). Returns true while
    /// there is more to move.
    pub fn rehash(&mut self, buckets: usize) -> bool {
        if !self.is_rehashing() {
            return false;
        }
        let mut empty_visits = buckets.saturating_mul(EMPTY_VISITS_PER_STEP);
        let [t0, t1] = &mut self.ht;
        // `buckets` counts non-empty buckets moved; empty ones only spend `empty_visits`.
        let mut moved = 0;
        while moved < buckets {
            if t0.used == 0 {
                break;
            }
            let Some(head) = t0.buckets.get_mut(self.rehash_idx) else {
                break;
            };
            let Some(mut node) = head.take() else {
                self.rehash_idx += 1;
                empty_visits = empty_visits.saturating_sub(1);
                if empty_visits == 0 {
                    return true;
                }
                continue;
            };
            loop {
                let next = node.next.take();
                t0.used -= 1;
                t1.push_front(hash_of(&node.key), node);
                match next {
                    Some(n) => node = n,
                    None => break,
                }
            }
            self.rehash_idx += 1;
            moved += 1;
        }
        if t0.used > 0 {
            return true;
        }
        // Done: the new array becomes the only one.
        *t0 = mem::replace(t1, Table::empty());
        self.rehash_idx = 0;
        false
    }

    /// One bucket's worth of rehashing, done by every mutating operation.
    fn rehash_step(&mut self) {
        self.rehash(1);
    }

    fn rehash_all(&mut self) {
        // Unbounded steps and empty visits: one call moves every bucket.
        self.rehash(usize::MAX);
    }

    /// Starts moving to an array of the smallest power of two holding `min_size` elements
    /// (at least 4). Does nothing while a rehash is in progress or if the size is unchanged.
    fn resize(&mut self, min_size: usize) {
        let Some(size) = min_size.max(INITIAL_SIZE).checked_next_power_of_two() else {
            return;
        };
        if self.is_rehashing() || size == self.ht[0].size() {
            return;
        }
        let table = Table::with_size(size);
        if self.ht[0].used == 0 {
            self.ht[0] = table;
        } else {
            self.ht[1] = table;
            self.rehash_idx = 0;
        }
    }

    /// Grows when the table is full (Redis's `_dictExpandIfNeeded`, load factor 1).
    fn expand_if_needed(&mut self) {
        let t0 = &self.ht[0];
        if !self.is_rehashing() && t0.used >= t0.size() {
            self.resize(t0.used + 1);
        }
    }

    /// After removals: completes a rehash whose old array has been emptied, and shrinks if
    /// not (or no longer) rehashing. A table that became sparse while rehashing shrinks at
    /// the first removal after the rehash ends (Redis waits for its cron).
    fn after_removal(&mut self) {
        if self.is_rehashing() && self.ht[0].used == 0 {
            self.rehash(0);
        }
        if !self.is_rehashing() {
            self.shrink_if_needed();
        }
    }

    /// Starts shrinking under 10% fill (Redis's `htNeedsResize` + `dictResize`).
    fn shrink_if_needed(&mut self) {
        let t0 = &self.ht[0];
        if t0.size() > INITIAL_SIZE && t0.used.saturating_mul(100) / t0.size() < MIN_FILL_PERCENT {
            self.resize(t0.used);
        }
    }

    /// The value of `key`, or the place at the end of its chain where it belongs. Does the
    /// rehash step and growth of an insert first, so the place is in the array new entries
    /// go to.
    fn find_or_vacant(&mut self, hash: u64, key: &K) -> Result<&mut V, Vacant<'_, K, V>> {
        self.rehash_step();
        self.expand_if_needed();
        let rehashing = self.is_rehashing();
        let [t0, t1] = &mut self.ht;
        let table = if rehashing {
            if let Some(node) = t0.find_mut(hash, key) {
                return Ok(&mut node.value);
            }
            t1
        } else {
            t0
        };
        let Table { buckets, used } = table;
        if buckets.is_empty() {
            *buckets = new_buckets(INITIAL_SIZE);
        }
        let index = bucket_index(hash, buckets.len());
        // In bounds: `index` is masked by `len - 1` of a non-empty power-of-two array.
        let slot = chain_slot(&mut buckets[index], key);
        match slot {
            Some(node) => Ok(&mut node.value),
            None => Err(Vacant { slot, used }),
        }
    }
}

/// The empty link at the end of a chain where a missing key is to be added.
struct Vacant<'a, K, V> {
    slot: &'a mut Link<K, V>,
    used: &'a mut usize,
}

impl<'a, K, V> Vacant<'a, K, V> {
    fn fill(self, key: K, value: V) -> &'a mut V {
        *self.used += 1;
        let node = Box::new(Node {
            key,
            value,
            next: None,
        });
        &mut self.slot.insert(node).value
    }
}

/// The buckets of `ht[0]` then those of `ht[1]`.
type BothArrays<I> = std::iter::Chain<I, I>;

/// Iterator over a [`Dict`]'s elements, in bucket order.
pub struct Iter<'a, K, V> {
    buckets: BothArrays<std::slice::Iter<'a, Link<K, V>>>,
    node: Option<&'a Node<K, V>>,
    remaining: usize,
}

impl<'a, K, V> Iterator for Iter<'a, K, V> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(node) = self.node {
                self.node = node.next.as_deref();
                self.remaining = self.remaining.saturating_sub(1);
                return Some((&node.key, &node.value));
            }
            if self.remaining == 0 {
                return None;
            }
            self.node = self.buckets.next()?.as_deref();
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<K, V> ExactSizeIterator for Iter<'_, K, V> {}
impl<K, V> FusedIterator for Iter<'_, K, V> {}

/// Iterator over a [`Dict`]'s elements with mutable values, in bucket order.
pub struct IterMut<'a, K, V> {
    buckets: BothArrays<std::slice::IterMut<'a, Link<K, V>>>,
    node: Option<&'a mut Node<K, V>>,
    remaining: usize,
}

impl<'a, K, V> Iterator for IterMut<'a, K, V> {
    type Item = (&'a K, &'a mut V);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(node) = self.node.take() {
                let Node { key, value, next } = node;
                self.node = next.as_deref_mut();
                self.remaining = self.remaining.saturating_sub(1);
                return Some((&*key, value));
            }
            if self.remaining == 0 {
                return None;
            }
            self.node = self.buckets.next()?.as_deref_mut();
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<K, V> ExactSizeIterator for IterMut<'_, K, V> {}
impl<K, V> FusedIterator for IterMut<'_, K, V> {}

impl<'a, K, V> IntoIterator for &'a Dict<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = Iter<'a, K, V>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<K: Hash + Eq, V> FromIterator<(K, V)> for Dict<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut dict = Dict::new();
        dict.extend(iter);
        dict
    }
}

impl<K: Hash + Eq, V> Extend<(K, V)> for Dict<K, V> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl<K, V> Dict<K, V> {
    /// Bytes of one entry's allocation (key, value and chain pointer).
    pub const fn node_bytes() -> usize {
        mem::size_of::<Node<K, V>>()
    }

    /// Bytes this dict allocates (for MEMORY USAGE): the bucket arrays plus one node per
    /// entry, with `extra(key, value)` heap bytes each. As Redis's `objectComputeSize`, only
    /// the first `samples` entries are measured and their mean is extrapolated to all.
    pub fn allocated_bytes(&self, samples: usize, extra: impl Fn(&K, &V) -> usize) -> usize {
        let buckets = self.bucket_count() * mem::size_of::<Link<K, V>>();
        let (measured, total) = self
            .iter()
            .take(samples)
            .fold((0, 0usize), |(n, sum), (k, v)| {
                (n + 1, sum.saturating_add(Self::node_bytes() + extra(k, v)))
            });
        if measured == 0 {
            return buckets;
        }
        let per_entry = total as f64 / measured as f64;
        buckets.saturating_add((per_entry * self.len() as f64) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use proptest::prelude::*;
    use std::collections::{HashMap, HashSet};

    impl<K: Hash + Eq, V> Dict<K, V> {
        /// Asserts the structural invariants: every node in its hash's bucket, no duplicate
        /// keys, counts right, moved buckets empty, sizes powers of two.
        fn check(&self) {
            let mut keys = HashSet::new();
            for (t, table) in self.ht.iter().enumerate() {
                let size = table.size();
                assert!(size == 0 || size.is_power_of_two(), "size {size}");
                let mut count = 0;
                for (i, head) in table.buckets.iter().enumerate() {
                    if t == 0 && self.is_rehashing() && i < self.rehash_idx {
                        assert!(head.is_none(), "moved bucket {i} not empty");
                    }
                    let mut node = head.as_deref();
                    while let Some(n) = node {
                        assert_eq!(bucket_index(hash_of(&n.key), size), i);
                        assert!(keys.insert(&n.key), "duplicate key");
                        count += 1;
                        node = n.next.as_deref();
                    }
                }
                assert_eq!(count, table.used, "table {t} count");
            }
            if !self.is_rehashing() {
                assert_eq!(self.rehash_idx, 0);
            }
        }

        fn finish_rehash(&mut self) {
            self.rehash_all();
        }
    }

    /// A key whose hash is constant: every key lands in the same bucket.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Colliding(u32);

    impl Hash for Colliding {
        fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
    }

    fn filled(n: u64) -> Dict<u64, u64> {
        let mut d = Dict::new();
        for i in 0..n {
            d.insert(i, i * 10);
        }
        d
    }

    /// Inserts until a resize is in progress, so tests can run operations mid-rehash.
    fn rehashing(n: u64) -> Dict<u64, u64> {
        let mut d = Dict::new();
        let mut i = 0;
        while i < n || !d.is_rehashing() {
            d.insert(i, i * 10);
            i += 1;
        }
        d
    }

    fn full_scan<K: Clone + Eq + Hash, V>(d: &Dict<K, V>) -> Vec<K> {
        let mut seen = Vec::new();
        let mut cursor = 0;
        loop {
            cursor = d.scan(cursor, |k, _| seen.push(k.clone()));
            if cursor == 0 {
                return seen;
            }
        }
    }

    #[test]
    fn empty_dict() {
        let mut d: Dict<u64, u64> = Dict::new();
        assert!(d.is_empty());
        assert_eq!(d.len(), 0);
        assert_eq!(d.bucket_count(), 0);
        assert_eq!(d.get(&1), None);
        assert_eq!(d.get_mut(&1), None);
        assert!(!d.contains_key(&1));
        assert_eq!(d.remove(&1), None);
        assert_eq!(d.iter().count(), 0);
        assert_eq!(d.iter_mut().count(), 0);
        assert_eq!(d.scan(0, |_, _| panic!("visited")), 0);
        assert_eq!(d.scan(12345, |_, _| panic!("visited")), 0);
        assert_eq!(d.random(7), None);
        assert!(d.sample(7, 10).is_empty());
        assert!(!d.rehash(10));
        d.shrink_to_fit();
        d.check();
        let default: Dict<u64, u64> = Dict::default();
        assert!(default.is_empty());
    }

    #[test]
    fn insert_get_replace_remove() {
        let mut d = Dict::new();
        assert_eq!(d.insert(1u64, "a"), None);
        assert_eq!(d.insert(2, "b"), None);
        assert_eq!(d.insert(1, "c"), Some("a"));
        assert_eq!(d.len(), 2);
        assert_eq!(d.get(&1), Some(&"c"));
        assert_eq!(d.get_key_value(&2), Some((&2, &"b")));
        assert!(d.contains_key(&2));
        assert!(!d.contains_key(&3));
        if let Some(v) = d.get_mut(&2) {
            *v = "d";
        }
        assert_eq!(d.get(&2), Some(&"d"));
        assert_eq!(d.remove(&1), Some((1, "c")));
        assert_eq!(d.remove(&1), None);
        assert_eq!(d.len(), 1);
        d.check();
    }

    #[test]
    fn borrowed_lookups_and_kept_key() {
        let mut d: Dict<Bytes, u32> = Dict::new();
        let key = Bytes::from_static(b"key\x00bin");
        d.insert(key.clone(), 1);
        assert_eq!(d.get(&b"key\x00bin"[..]), Some(&1));
        assert_eq!(d.get(&b""[..]), None);
        // Replacing keeps the stored key and swaps only the value.
        let other = Bytes::copy_from_slice(b"key\x00bin");
        assert_eq!(d.insert(other, 2), Some(1));
        let (stored, _) = d.get_key_value(&b"key\x00bin"[..]).expect("present");
        assert_eq!(stored.as_ptr(), key.as_ptr());
        assert_eq!(d.remove(&b"key\x00bin"[..]), Some((key, 2)));
        d.insert(Bytes::new(), 3);
        assert_eq!(d.get(&b""[..]), Some(&3));
    }

    #[test]
    fn grows_at_load_factor_one() {
        let mut d = filled(4);
        assert_eq!(d.bucket_count(), 4);
        assert!(!d.is_rehashing());
        d.insert(4, 40);
        assert!(d.is_rehashing());
        assert_eq!(d.bucket_count(), 4 + 8);
        d.check();
        d.finish_rehash();
        assert_eq!(d.bucket_count(), 8);
        let mut d = filled(10_000);
        d.finish_rehash();
        assert_eq!(d.bucket_count(), 16384);
        for i in 0..10_000 {
            assert_eq!(d.get(&i), Some(&(i * 10)));
        }
        d.check();
    }

    #[test]
    fn shrinks_under_ten_percent() {
        let mut d = filled(1000);
        d.finish_rehash();
        assert_eq!(d.bucket_count(), 1024);
        for i in 0..900 {
            d.remove(&i);
            d.check();
        }
        // 100 left of 1024 buckets is under 10%: shrinking to 128 began at the 103rd-to-last.
        d.finish_rehash();
        assert_eq!(d.bucket_count(), 128);
        for i in 900..1000 {
            assert_eq!(d.get(&i), Some(&(i * 10)));
        }
        for i in 900..1000 {
            d.remove(&i);
        }
        d.finish_rehash();
        assert!(d.is_empty());
        assert_eq!(d.bucket_count(), 4, "never below 4 buckets");
    }

    #[test]
    fn operations_mid_rehash() {
        let mut d = rehashing(100);
        let n = d.len() as u64;
        assert!(d.is_rehashing());
        assert_eq!(d.get(&0), Some(&0));
        assert_eq!(d.iter().count() as u64, n);
        assert_eq!(d.iter().len() as u64, n);
        assert_eq!(d.insert(0, 1), Some(0));
        assert_eq!(d.remove(&1), Some((1, 10)));
        assert_eq!(*d.get_or_insert_with(1, || 11), 11);
        d.check();
        let mut seen: Vec<u64> = full_scan(&d);
        seen.sort_unstable();
        assert_eq!(seen, (0..n).collect::<Vec<_>>(), "each exactly once");
        while d.rehash(1) {
            d.check();
        }
        assert!(!d.is_rehashing());
        assert_eq!(d.len() as u64, n);
        d.check();
    }

    #[test]
    fn removing_everything_mid_rehash_completes_it() {
        let mut d = rehashing(10);
        let keys: Vec<u64> = d.iter().map(|(k, _)| *k).collect();
        for k in keys {
            d.remove(&k);
            d.check();
        }
        assert!(d.is_empty());
        assert!(!d.is_rehashing());
    }

    #[test]
    fn clear_frees_everything() {
        let mut d = rehashing(100);
        d.clear();
        assert!(d.is_empty());
        assert_eq!(d.bucket_count(), 0);
        assert!(!d.is_rehashing());
        d.insert(1, 1);
        assert_eq!(d.get(&1), Some(&1));
        d.check();
    }

    #[test]
    fn iter_and_iter_mut() {
        let mut d = filled(100);
        let mut it = d.iter();
        assert_eq!(it.len(), 100);
        it.next();
        assert_eq!(it.size_hint(), (99, Some(99)));
        let sum: u64 = d.iter().map(|(_, v)| v).sum();
        assert_eq!(sum, (0..100).map(|i| i * 10).sum());
        for (k, v) in d.iter_mut() {
            *v = k + 1;
        }
        assert!(d.iter().all(|(k, v)| *v == k + 1));
        assert_eq!(d.iter_mut().len(), 100);
        assert_eq!((&d).into_iter().count(), 100);
        let mut it = d.iter();
        while it.next().is_some() {}
        assert_eq!(it.next(), None, "fused");
    }

    #[test]
    fn retain_filters_and_shrinks() {
        let mut d = filled(1000);
        d.retain(|k, v| {
            *v += 1;
            k % 50 == 0
        });
        assert_eq!(d.len(), 20);
        assert!(d.iter().all(|(k, v)| k % 50 == 0 && *v == k * 10 + 1));
        d.check();
        d.finish_rehash();
        assert_eq!(d.bucket_count(), 32);
        let mut d = rehashing(100);
        d.retain(|_, _| false);
        assert!(d.is_empty());
        assert!(!d.is_rehashing());
        d.check();
    }

    #[test]
    fn clone_is_deep_and_equal() {
        for d in [filled(100), rehashing(100)] {
            let mut c = d.clone();
            c.check();
            assert_eq!(c.is_rehashing(), d.is_rehashing());
            let a: HashMap<u64, u64> = d.iter().map(|(k, v)| (*k, *v)).collect();
            let b: HashMap<u64, u64> = c.iter().map(|(k, v)| (*k, *v)).collect();
            assert_eq!(a, b);
            c.insert(1, 0);
            assert_eq!(d.get(&1), Some(&10));
        }
    }

    #[test]
    fn debug_lists_entries() {
        let mut d = Dict::new();
        d.insert("k", 1);
        assert_eq!(format!("{d:?}"), r#"{"k": 1}"#);
    }

    #[test]
    fn get_or_insert_with_inserts_once() {
        let mut d: Dict<u64, Vec<u64>> = Dict::new();
        d.get_or_insert_with(1, Vec::new).push(1);
        d.get_or_insert_with(1, || unreachable!("present")).push(2);
        assert_eq!(d.get(&1), Some(&vec![1, 2]));
        for i in 0..100 {
            d.get_or_insert_with(i, Vec::new).push(i);
        }
        assert_eq!(d.len(), 100);
        d.check();
    }

    #[test]
    fn reserve_avoids_resizing() {
        let mut d = filled(3);
        d.reserve(100);
        assert_eq!(d.bucket_count(), 4 + 128, "moving to 128 buckets");
        for i in 3..103 {
            d.insert(i, i);
        }
        assert!(!d.is_rehashing());
        assert_eq!(d.bucket_count(), 128);
        d.reserve(10);
        assert_eq!(d.bucket_count(), 128);
        d.reserve(usize::MAX);
        assert_eq!(d.bucket_count(), 128, "impossible size ignored");
        let mut d = rehashing(100);
        d.reserve(1000);
        d.check();
        assert_eq!(d.get(&5), Some(&50));
    }

    #[test]
    fn shrink_to_fit_is_immediate() {
        let mut d = filled(1000);
        d.retain(|k, _| *k < 200);
        d.shrink_to_fit();
        assert!(!d.is_rehashing());
        assert_eq!(d.bucket_count(), 256);
        d.check();
        d.retain(|_, _| false);
        d.shrink_to_fit();
        assert_eq!(d.bucket_count(), 0);
    }

    #[test]
    fn rehash_steps_bounded_by_empty_visits() {
        let mut d = filled(1 << 12);
        d.finish_rehash();
        // Leave 12.5% of the buckets used (not enough to shrink), then force a grow.
        d.retain(|k, _| k % 8 == 0);
        assert_eq!(d.bucket_count(), 1 << 12);
        d.reserve(1 << 14);
        assert!(d.is_rehashing());
        loop {
            let before = d.rehash_idx;
            let more = d.rehash(1);
            if !more {
                break;
            }
            assert!(d.rehash_idx - before <= 1 + EMPTY_VISITS_PER_STEP);
        }
        assert_eq!(d.bucket_count(), 1 << 15);
        assert_eq!(d.len(), 512);
        d.check();
    }

    #[test]
    fn long_chains_work_and_drop_iteratively() {
        let mut d = Dict::new();
        for i in 0..300 {
            d.insert(Colliding(i), i);
        }
        d.check();
        assert_eq!(d.get(&Colliding(150)), Some(&150));
        assert_eq!(d.remove(&Colliding(0)), Some((Colliding(0), 0)));
        assert_eq!(full_scan(&d).len(), 299);
        assert!(d.random(3).is_some());
        d.retain(|k, _| k.0 % 2 == 0);
        assert_eq!(d.len(), 149);
        d.check();

        // A million-node chain: dropping or cloning it must not recurse.
        let mut t: Table<u32, ()> = Table::with_size(1);
        for i in 0..1_000_000 {
            t.push_front(
                0,
                Box::new(Node {
                    key: i,
                    value: (),
                    next: None,
                }),
            );
        }
        let copy = t.clone();
        assert_eq!(copy.used, 1_000_000);
        drop(t);
        drop(copy);
    }

    #[test]
    fn scan_without_changes_returns_each_once() {
        for n in [1, 3, 4, 5, 17, 1000] {
            let mut d = filled(n);
            d.finish_rehash();
            let mut seen = full_scan(&d);
            seen.sort_unstable();
            assert_eq!(seen, (0..n).collect::<Vec<_>>());
        }
    }

    #[test]
    fn scan_survives_grow_and_shrink_between_calls() {
        let mut d = filled(100);
        let mut seen = HashSet::new();
        let mut cursor = d.scan(0, |k, _| {
            seen.insert(*k);
        });
        for i in 1000..5000 {
            d.insert(i, i);
        }
        let mut steps = 0;
        while cursor != 0 {
            cursor = d.scan(cursor, |k, _| {
                seen.insert(*k);
            });
            steps += 1;
            if steps == 3 {
                d.retain(|k, _| *k < 100);
            }
        }
        assert!((0..100).all(|k| seen.contains(&k)));
    }

    #[test]
    fn random_only_present_and_eventually_all() {
        for mut d in [filled(200), rehashing(200)] {
            for i in (0..200).step_by(2) {
                d.remove(&i);
            }
            let mut seen = HashSet::new();
            for r in 0..20_000u64 {
                let (k, v) = d
                    .random(r.wrapping_mul(0x2545_f491_4f6c_dd1d))
                    .expect("non-empty");
                assert_eq!(d.get(k), Some(v));
                seen.insert(*k);
            }
            assert_eq!(seen.len(), d.len());
        }
        let one = filled(1);
        assert_eq!(one.random(99), Some((&0, &0)));
    }

    #[test]
    fn random_on_a_sparse_table() {
        // One element left in a table that has not shrunk yet (mid-shrink rehash).
        let mut d = filled(5000);
        d.finish_rehash();
        d.retain(|k, _| *k == 4321);
        for r in 0..100 {
            assert_eq!(d.random(r), Some((&4321, &43210)));
        }
    }

    #[test]
    fn sample_returns_present_elements() {
        for d in [filled(1000), rehashing(1000)] {
            let s = d.sample(42, 20);
            assert_eq!(s.len(), 20);
            assert!(s.iter().all(|(k, v)| d.get(*k) == Some(*v)));
            assert!(d.sample(1, 0).is_empty());
            assert_eq!(filled(3).sample(5, 100).len(), 3);
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u16, u32),
        Remove(u16),
        Get(u16),
        GetMut(u16, u32),
        GetOrInsert(u16, u32),
        Retain(u16),
        Reserve(u16),
        ShrinkToFit,
        Rehash(u8),
        Clear,
    }

    fn op() -> impl Strategy<Value = Op> {
        let key = 0u16..300;
        prop_oneof![
            20 => (key.clone(), any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
            15 => key.clone().prop_map(Op::Remove),
            5 => key.clone().prop_map(Op::Get),
            5 => (key.clone(), any::<u32>()).prop_map(|(k, v)| Op::GetMut(k, v)),
            5 => (key, any::<u32>()).prop_map(|(k, v)| Op::GetOrInsert(k, v)),
            1 => (1u16..10).prop_map(Op::Retain),
            1 => (0u16..500).prop_map(Op::Reserve),
            1 => Just(Op::ShrinkToFit),
            1 => any::<u8>().prop_map(Op::Rehash),
            1 => Just(Op::Clear),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn behaves_like_hashmap(ops in prop::collection::vec(op(), 1..400)) {
            let mut d: Dict<u16, u32> = Dict::new();
            let mut m: HashMap<u16, u32> = HashMap::new();
            for op in ops {
                match op {
                    Op::Insert(k, v) => prop_assert_eq!(d.insert(k, v), m.insert(k, v)),
                    Op::Remove(k) => prop_assert_eq!(d.remove(&k), m.remove_entry(&k)),
                    Op::Get(k) => prop_assert_eq!(d.get(&k), m.get(&k)),
                    Op::GetMut(k, v) => {
                        let a = d.get_mut(&k).map(|x| { *x = x.wrapping_add(v); *x });
                        let b = m.get_mut(&k).map(|x| { *x = x.wrapping_add(v); *x });
                        prop_assert_eq!(a, b);
                    }
                    Op::GetOrInsert(k, v) => {
                        prop_assert_eq!(*d.get_or_insert_with(k, || v), *m.entry(k).or_insert(v));
                    }
                    Op::Retain(n) => {
                        d.retain(|k, _| k % n != 0);
                        m.retain(|k, _| k % n != 0);
                    }
                    Op::Reserve(n) => d.reserve(n.into()),
                    Op::ShrinkToFit => d.shrink_to_fit(),
                    Op::Rehash(n) => { d.rehash(n.into()); }
                    Op::Clear => { d.clear(); m.clear(); }
                }
                d.check();
                prop_assert_eq!(d.len(), m.len());
            }
            let got: HashMap<u16, u32> = d.iter().map(|(k, v)| (*k, *v)).collect();
            prop_assert_eq!(got, m);
        }

        /// Redis's SCAN guarantee: with inserts and deletes between calls that grow, shrink
        /// and rehash the table, every element present from start to end is returned.
        #[test]
        fn scan_returns_every_element_present_throughout(
            initial in 0u64..400,
            batches in prop::collection::vec((0u64..300, 0u8..=100, 0u8..4), 0..60),
            cursor_seed in any::<u64>(),
        ) {
            let mut d = filled(initial);
            // Keys divisible by 3 are never deleted; the others come and go.
            let protected: Vec<u64> = (0..initial).filter(|k| k % 3 == 0).collect();
            let mut volatile: Vec<u64> = (0..initial).filter(|k| k % 3 != 0).collect();
            let mut next_key = 1_000_000u64;
            let mut seen = HashSet::new();
            let mut batches = batches.into_iter();
            let mut cursor = 0;
            let mut calls = 0;
            loop {
                cursor = d.scan(cursor, |k, _| { seen.insert(*k); });
                calls += 1;
                prop_assert!(calls < 1_000_000, "scan does not terminate");
                if cursor == 0 {
                    break;
                }
                let Some((add, del_percent, rehash)) = batches.next() else { continue };
                for _ in 0..add {
                    d.insert(next_key, 0);
                    volatile.push(next_key);
                    next_key += 1;
                }
                let del = volatile.len() * usize::from(del_percent) / 100;
                // Delete a pseudo-random subset, different each batch.
                let rot = (cursor_seed as usize).wrapping_add(calls) % volatile.len().max(1);
                volatile.rotate_left(rot);
                for k in volatile.drain(..del) {
                    prop_assert!(d.remove(&k).is_some());
                }
                d.rehash(rehash.into());
                d.check();
            }
            for k in &protected {
                prop_assert!(seen.contains(k), "missed {}", k);
            }
        }
    }
}
