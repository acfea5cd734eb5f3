//! RESTORE payloads from a hostile client: a DUMP of a value of every type and encoding,
//! edited by the input (bytes overwritten, inserted, removed; checksum made right again) or
//! raw bytes, restored into key `k` of a freshly populated shard, then a sequence of commands run
//! on it as in the `commands` target. A payload must be refused with an error or give a
//! value every command handles: no panic (overflow checks on), no hang, no reply or
//! allocation past the limits.
//!
//! Input layout: a byte picking the source value (high bit: raw payload), two bytes giving
//! the length of the edit list (or raw payload), that many bytes, then command lines as in
//! the `commands` target.

#![no_main]

use std::sync::LazyLock;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;
use common::{populated, run, run_lines};
use shardis_engine::Shard;

/// Values in every encoding: the shard's small ones, and larger ones that take the table,
/// skiplist, intset, multi-node quicklist and stream (with a group) encodings.
const SOURCES: &[&str] = &[
    "k", "l", "s", "h", "z", "si", "sb", "hb", "zb", "lb", "x", "n",
];

fn setup(shard: &mut Shard) {
    let mut cmds: Vec<Vec<String>> = vec![
        vec![
            "sadd".into(),
            "si".into(),
            "1".into(),
            "2".into(),
            "-5".into(),
        ],
        vec!["set".into(), "n".into(), "12345".into()],
        vec![
            "xadd".into(),
            "x".into(),
            "1-1".into(),
            "f".into(),
            "v".into(),
        ],
        vec![
            "xadd".into(),
            "x".into(),
            "2-1".into(),
            "g".into(),
            "w".into(),
        ],
        vec![
            "xgroup".into(),
            "create".into(),
            "x".into(),
            "g".into(),
            "0".into(),
        ],
        vec![
            "xreadgroup".into(),
            "group".into(),
            "g".into(),
            "c".into(),
            "streams".into(),
            "x".into(),
            ">".into(),
        ],
        vec!["xdel".into(), "x".into(), "1-1".into()],
    ];
    let mut sb = vec!["sadd".to_string(), "sb".into()];
    let mut hb = vec!["hset".to_string(), "hb".into()];
    let mut zb = vec!["zadd".to_string(), "zb".into()];
    let mut lb = vec!["rpush".to_string(), "lb".into()];
    for i in 0..200 {
        sb.push(format!("m{i}"));
        hb.extend([format!("f{i}"), format!("{i}")]);
        zb.extend([format!("{}", i % 7), format!("m{i}")]);
        lb.push("x".repeat(i * 3));
    }
    cmds.extend([sb, hb, zb, lb]);
    for c in cmds {
        let args: Vec<Bytes> = c.into_iter().map(Bytes::from).collect();
        run(shard, &args);
    }
}

fn dump(shard: &mut Shard, key: &str) -> Option<Vec<u8>> {
    let args = [
        Bytes::from_static(b"dump"),
        Bytes::copy_from_slice(key.as_bytes()),
    ];
    match run(shard, &args)? {
        shardis_resp::Reply::Bulk(b) => Some(b.to_vec()),
        _ => None,
    }
}

/// The DUMP of every source value, made once (building them per input would be most of
/// the run).
static DUMPS: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    let mut shard = populated();
    setup(&mut shard);
    SOURCES.iter().filter_map(|k| dump(&mut shard, k)).collect()
});

fuzz_target!(|data: &[u8]| {
    let [pick, hi, lo, rest @ ..] = data else {
        return;
    };
    let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(rest.len());
    let (edits, lines) = rest.split_at(len);
    let mut shard = populated();
    let payload = if pick & 0x80 != 0 {
        edits.to_vec()
    } else {
        let Some(sealed) = usize::from(*pick)
            .checked_rem(DUMPS.len())
            .and_then(|i| DUMPS.get(i))
        else {
            return;
        };
        // The value's bytes without version and checksum, edited, then sealed again.
        let mut body = sealed[..sealed.len().saturating_sub(10)].to_vec();
        for e in edits.chunks_exact(4) {
            if body.is_empty() {
                break;
            }
            let at = usize::from(u16::from_be_bytes([e[1], e[2]])) % body.len();
            match e[0] % 4 {
                0 => body[at] = e[3],
                1 => body.insert(at, e[3]),
                2 => {
                    body.remove(at);
                }
                _ => body[at] = body[at].wrapping_add(e[3]),
            }
        }
        shardis_persist::dump::seal(body)
    };
    let restore = [
        Bytes::from_static(b"restore"),
        Bytes::from_static(b"k"),
        Bytes::from_static(b"0"),
        Bytes::from(payload),
        Bytes::from_static(b"replace"),
    ];
    run(&mut shard, &restore);
    run_lines(&mut shard, lines);
});
