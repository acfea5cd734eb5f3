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

/// The two steps of [`Dict::prefetch`], in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefetch {
    Bucket,
    Node,
}

/// Asks the CPU to load the cache line at `p` (no effect where there is no such hint). A
/// prefetch never faults, whatever the address.
#[inline]
fn prefetch_line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 only hints the cache; it reads nothing the program sees and does not
    // fault on any address. SSE is part of the x86-64 baseline.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

fn hash_of<Q: Hash + ?Sized>(key: &Q) -> u64 {
    HASHER
        .get_or_init(|| {
            let [a, b, c, d] = DEFAULT_SEEDS;
            RandomState::with_seeds(a, b, c, d)
        })
        .hash_one(key)
}

/// The hash tables use for `key` (the same in every run: fixed seeds), for structures that
/// keep it to find an element again without its key.
pub fn hash_key<Q: Hash + ?Sized>(key: &Q) -> u64 {
    hash_of(key)
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

    /// A hint that `key` is about to be looked up: starts loading its bucket (stage
    /// [`Prefetch::Bucket`]) or, once that is in the cache, the first node of its chain
    /// ([`Prefetch::Node`]) into the CPU's cache, without waiting for either. Issued for
    /// many keys at once (the requests of a batch), the memory accesses of a table larger
    /// than the caches overlap instead of each lookup stalling on them in turn.
    pub fn prefetch<Q: Hash + ?Sized>(&self, key: &Q, stage: Prefetch)
    where
        K: Borrow<Q>,
    {
        if self.is_empty() {
            return;
        }
        let hash = hash_of(key);
        for t in &self.ht {
            let Some(bucket) = t.buckets.get(bucket_index(hash, t.size())) else {
                continue;
            };
            match stage {
                Prefetch::Bucket => prefetch_line(bucket as *const Link<K, V> as *const u8),
                Prefetch::Node => {
                    if let Some(node) = bucket {
                        prefetch_line(&**node as *const Node<K, V> as *const u8);
                    }
                }
            }
        }
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

    /// The element of `hash`'s chain that `pred` accepts (in both arrays while rehashing): how
    /// an element is found from a hash kept elsewhere, without its key.
    pub fn find_by_hash(
        &self,
        hash: u64,
        mut pred: impl FnMut(&K, &V) -> bool,
    ) -> Option<(&K, &V)> {
        if self.is_empty() {
            return None;
        }
        self.ht.iter().find_map(|t| {
            let mut node = t.chain(hash);
            while let Some(n) = node {
                if pred(&n.key, &n.value) {
                    return Some((&n.key, &n.value));
                }
                node = n.next.as_deref();
            }
            None
        })
    }

    /// [`Dict::find_by_hash`] for modification.
    pub fn find_by_hash_mut(
        &mut self,
        hash: u64,
        mut pred: impl FnMut(&K, &V) -> bool,
    ) -> Option<&mut V> {
        if self.is_empty() {
            return None;
        }
        for t in &mut self.ht {
            // Found by position first, then reached mutably.
            let mut node = t.chain(hash);
            let mut steps = 0;
            let found = loop {
                match node {
                    Some(n) if pred(&n.key, &n.value) => break true,
                    Some(n) => {
                        node = n.next.as_deref();
                        steps += 1;
                    }
                    None => break false,
                }
            };
            if !found {
                continue;
            }
            let size = t.size();
            let mut n = t.buckets.get_mut(bucket_index(hash, size))?.as_deref_mut();
            for _ in 0..steps {
                n = n?.next.as_deref_mut();
            }
            return n.map(|n| &mut n.value);
        }
        None
    }

    /// Removes up to `max` elements (a whole chain at a time, so possibly a few more), handing
    /// each to `f`: the way a doomed table is freed in steps. Buckets are emptied in order, as
    /// a rehash into nowhere, so the table stays valid between steps. Returns how many
    /// elements were removed.
    pub fn shed(&mut self, max: usize, mut f: impl FnMut(K, V)) -> usize {
        let mut removed = 0;
        while removed < max && !self.is_empty() {
            if self.ht[0].used == 0 {
                // What is left is in the array being rehashed into: it becomes the only one.
                self.ht[0] = mem::replace(&mut self.ht[1], Table::empty());
                self.rehash_idx = 0;
                continue;
            }
            let t0 = &mut self.ht[0];
            let Some(head) = t0.buckets.get_mut(self.rehash_idx) else {
                break;
            };
            let mut link = head.take();
            while let Some(mut node) = link {
                link = node.next.take();
                t0.used -= 1;
                removed += 1;
                let Node { key, value, .. } = *node;
                f(key, value);
            }
            self.rehash_idx += 1;
        }
        if self.is_empty() {
            self.clear();
        }
        removed
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
mod tests;
