//! Request parsing and reply encoding throughput: the per-command protocol cost every
//! request pays before and after the engine.

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use shardis_resp::{encode, encode_request, Limits, Reply, RequestParser};
use std::hint::black_box;

const PIPELINE: usize = 16;

/// A 16-command pipeline alternating GET and SET, as redis-benchmark -P 16 sends.
fn pipeline() -> Vec<u8> {
    let mut wire = Vec::new();
    for i in 0..PIPELINE {
        let key = format!("key:{:012}", i);
        if i % 2 == 0 {
            encode_request(&[b"GET", key.as_bytes()], &mut wire);
        } else {
            encode_request(&[b"SET", key.as_bytes(), &[b'x'; 32]], &mut wire);
        }
    }
    wire
}

fn parse(c: &mut Criterion) {
    let wire = pipeline();
    let limits = Limits::default();
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(PIPELINE as u64));
    group.bench_function("pipeline_16_get_set", |b| {
        b.iter_batched(
            || BytesMut::from(&wire[..]),
            |mut buf| {
                let mut parser = RequestParser::new();
                let mut args = Vec::new();
                let mut n = 0;
                while let Ok(true) = parser.next_into(&mut buf, &limits, &mut args) {
                    n += args.len();
                    black_box(&args);
                }
                n
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn encode_replies(c: &mut Criterion) {
    let replies = [
        ("ok", Reply::Ok),
        ("bulk_32", Reply::Bulk(Bytes::from(vec![b'x'; 32]))),
        ("int", Reply::Int(1_234_567)),
        ("nil", Reply::Nil),
        ("double", Reply::Double(3.25)),
        (
            "array_10_bulks",
            Reply::Array(
                (0..10)
                    .map(|i| Reply::bulk(format!("member:{i}").as_bytes()))
                    .collect(),
            ),
        ),
        (
            "map_5_pairs_resp3",
            Reply::Map(
                (0..5)
                    .map(|i| (Reply::bulk(format!("f{i}").as_bytes()), Reply::Int(i)))
                    .collect(),
            ),
        ),
    ];
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(1));
    let mut out = Vec::with_capacity(4096);
    for (name, reply) in &replies {
        let resp3 = name.ends_with("resp3");
        group.bench_function(*name, |b| {
            b.iter(|| {
                out.clear();
                encode(black_box(reply), resp3, &mut out);
                black_box(out.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, parse, encode_replies);
criterion_main!(benches);
