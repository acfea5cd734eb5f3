//! The engine's hash table on keyspace-like workloads: inserts that grow through incremental
//! rehashing, lookups, deletes that shrink, a full SCAN and random sampling.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use shardis_engine::dict::Dict;
use std::hint::black_box;

const N: usize = 100_000;

fn keys() -> Vec<Bytes> {
    (0..N).map(|i| Bytes::from(format!("key:{i:08}"))).collect()
}

fn filled(keys: &[Bytes]) -> Dict<Bytes, u64> {
    keys.iter().cloned().zip(0..).collect()
}

fn bench(c: &mut Criterion) {
    let keys = keys();
    let dict = filled(&keys);
    let mut g = c.benchmark_group("dict");
    g.bench_function("insert_100k", |b| {
        b.iter_batched(|| keys.clone(), |ks| filled(&ks), BatchSize::LargeInput)
    });
    g.bench_function("get_hit", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 7919) % N;
            black_box(dict.get(&keys[i][..]))
        })
    });
    g.bench_function("get_miss", |b| {
        b.iter(|| black_box(dict.get(&b"missing"[..])))
    });
    g.bench_function("remove_all_100k", |b| {
        b.iter_batched(
            || dict.clone(),
            |mut d| {
                for k in &keys {
                    d.remove(&k[..]);
                }
                d
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("scan_full_100k", |b| {
        b.iter(|| {
            let (mut cursor, mut n) = (0, 0u64);
            loop {
                cursor = dict.scan(cursor, |_, v| n += v);
                if cursor == 0 {
                    return n;
                }
            }
        })
    });
    g.bench_function("random", |b| {
        let mut r = 0u64;
        b.iter(|| {
            r = r.wrapping_add(0x9e37_79b9_7f4a_7c15);
            black_box(dict.random(r))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
