//! Criterion benches of the engine's hot paths: a request looked up in the command table and
//! run on a shard, as the runtime does for each command (parsing and I/O excluded).
//!
//! The shard holds the key space redis-benchmark uses with `-r 100000` (`key:000000000000`…,
//! value `xxx`), and requests walk it in a scattered order, so that hash-table misses in the
//! CPU caches count as they do under `benches/redis-compare.sh`.
//!
//! Each bench is one [`Case`]; a case whose command the engine does not implement yet is
//! skipped with a note, so adding a bench is one line in [`CASES`] (and in [`MIXED`]).

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shardis_engine::{lookup, slots, Ctx, EngineConfig, Exec, Shard, REGISTRY};
use shardis_resp::Reply;

/// Keys populated before each bench (redis-benchmark's `-r`).
const KEYS: u64 = 100_000;
/// Distinct requests prepared per bench; iterations cycle through them.
const PREPARED: usize = 4096;
/// The fixed clock every command sees.
const NOW_MS: u64 = 1_700_000_000_000;

/// One benchmarked request shape.
struct Case {
    name: &'static str,
    /// The command it needs; the case is skipped while the engine lacks it.
    command: &'static str,
    /// The `i`-th request of the case.
    request: fn(u64) -> Vec<Bytes>,
}

const CASES: &[Case] = &[
    Case {
        name: "get_hit",
        command: "get",
        request: |i| request(&[b"GET", &key(i)]),
    },
    Case {
        name: "get_miss",
        command: "get",
        request: |i| request(&[b"GET", format!("missing:{:012}", scatter(i)).as_bytes()]),
    },
    Case {
        name: "set",
        command: "set",
        request: |i| request(&[b"SET", &key(i), b"xxx"]),
    },
    Case {
        name: "incr",
        command: "incr",
        request: |i| request(&[b"INCR", format!("counter:{:012}", scatter(i)).as_bytes()]),
    },
    Case {
        name: "mget_10",
        command: "mget",
        request: |i| {
            let keys: Vec<Vec<u8>> = (0..10).map(|k| key(i * 10 + k)).collect();
            let mut parts: Vec<&[u8]> = vec![b"MGET"];
            parts.extend(keys.iter().map(Vec::as_slice));
            request(&parts)
        },
    },
];

/// The mixed pipeline: one batch of requests run back to back, as one read of a pipelining
/// client would be (cases not implemented yet are left out).
const MIXED: &[&str] = &[
    "get_hit", "set", "get_hit", "get_miss", "incr", "get_hit", "set", "mget_10", "get_hit", "set",
    "get_hit", "get_miss", "incr", "get_hit", "set", "get_hit",
];

/// Spreads request numbers over the key space (a multiplicative hash, so that consecutive
/// requests touch unrelated buckets).
fn scatter(i: u64) -> u64 {
    (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 17) % KEYS
}

/// The key redis-benchmark would draw for `i`.
fn key(i: u64) -> Vec<u8> {
    format!("key:{:012}", scatter(i)).into_bytes()
}

fn request(parts: &[&[u8]]) -> Vec<Bytes> {
    parts.iter().map(|p| Bytes::copy_from_slice(p)).collect()
}

fn implemented(case: &Case) -> bool {
    REGISTRY.get(case.command.as_bytes()).is_some()
}

/// Runs one request the way the runtime does: table lookup (arity included), then the handler.
fn run(shard: &mut Shard, args: &[Bytes]) -> Reply {
    match lookup(args) {
        Ok(cmd) => match cmd.exec {
            Exec::Shard(f) => f(&mut Ctx::new(shard, 0, NOW_MS, false), args),
            Exec::Server(_) => Reply::err("ERR runs in the server"),
        },
        Err(e) => e,
    }
}

/// A shard holding `key:000000000000` … `key:{KEYS-1}`, each set to `xxx`.
fn populated_shard() -> Shard {
    let mut shard = Shard::new(0, EngineConfig::default());
    for k in 0..KEYS {
        let args = request(&[b"SET", format!("key:{k:012}").as_bytes(), b"xxx"]);
        assert_eq!(run(&mut shard, &args), Reply::Ok, "populating the shard");
    }
    shard
}

/// Prepares the requests of a batch and checks that none of them fails, so that a bench never
/// measures an error path by mistake.
fn prepare(shard: &mut Shard, batch: &[&Case], batches: usize) -> Vec<Vec<Bytes>> {
    let mut requests = Vec::with_capacity(batches * batch.len());
    for b in 0..batches as u64 {
        for case in batch {
            let args = (case.request)(b);
            let reply = run(shard, &args);
            assert!(
                !matches!(reply, Reply::Error(_)),
                "{}: {:?} answered {reply:?}",
                case.name,
                args
            );
            requests.push(args);
        }
    }
    requests
}

fn commands(c: &mut Criterion) {
    let mut shard = populated_shard();
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(1));
    for case in CASES {
        if !implemented(case) {
            eprintln!(
                "engine/{}: skipped, {} is not implemented",
                case.name, case.command
            );
            continue;
        }
        let requests = prepare(&mut shard, &[case], PREPARED);
        let mut next = requests.iter().cycle();
        group.bench_function(case.name, |b| {
            b.iter(|| {
                let args = next.next().map(Vec::as_slice).unwrap_or_default();
                black_box(run(&mut shard, black_box(args)))
            })
        });
    }
    group.finish();
}

/// The command table alone (name lookup and arity check), the share of every request above
/// that is not the command itself.
fn table_lookup(c: &mut Criterion) {
    let args = request(&[b"GET", &key(0)]);
    c.bench_function("engine/lookup_get", |b| {
        b.iter(|| black_box(lookup(black_box(&args)).is_ok()))
    });
}

/// A key's hash slot, which a sharded server computes for every request it routes: keys as
/// redis-benchmark (`key:` and 12 digits) and memtier (`memtier-` and a number) send them.
fn key_slot(c: &mut Criterion) {
    let keys: Vec<Vec<u8>> = (0..1024u64)
        .flat_map(|i| {
            [
                format!("key:{:012}", scatter(i) % 1_000_000).into_bytes(),
                format!("memtier-{}", scatter(i) % 1_000_000).into_bytes(),
            ]
        })
        .collect();
    let mut next = keys.iter().cycle();
    c.bench_function("engine/key_slot", |b| {
        b.iter(|| {
            black_box(slots::key_slot(black_box(
                next.next().map_or(&[][..], |k| k),
            )))
        })
    });
}

fn mixed_pipeline(c: &mut Criterion) {
    let batch: Vec<&Case> = MIXED
        .iter()
        .filter_map(|name| CASES.iter().find(|c| c.name == *name))
        .filter(|c| implemented(c))
        .collect();
    let mut shard = populated_shard();
    let batches = PREPARED / batch.len().max(1);
    let requests = prepare(&mut shard, &batch, batches);
    let mut next = requests.chunks(batch.len().max(1)).cycle();
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(batch.len() as u64));
    eprintln!(
        "engine/mixed_pipeline: {} requests per batch: {}",
        batch.len(),
        batch.iter().map(|c| c.name).collect::<Vec<_>>().join(" ")
    );
    group.bench_function("mixed_pipeline", |b| {
        b.iter(|| {
            for args in next.next().unwrap_or_default() {
                black_box(run(&mut shard, black_box(args)));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, commands, table_lookup, key_slot, mixed_pipeline);
criterion_main!(benches);
