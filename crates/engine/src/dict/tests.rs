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
fn prefetch_is_a_pure_hint_in_every_table_state() {
    let empty: Dict<u64, u64> = Dict::new();
    empty.prefetch(&1, Prefetch::Bucket);
    empty.prefetch(&1, Prefetch::Node);
    for mut d in [filled(100), rehashing(1000)] {
        let before = full_scan(&d).len();
        for k in [0u64, 7, 99, 5000] {
            d.prefetch(&k, Prefetch::Bucket);
            d.prefetch(&k, Prefetch::Node);
        }
        assert_eq!(full_scan(&d).len(), before);
        assert_eq!(d.get_mut(&7).copied(), Some(70));
        d.check();
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
