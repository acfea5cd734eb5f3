//! MEMORY USAGE and MEMORY HELP (Redis's `object.c` `memoryCommand`).
//!
//! The size reported is an estimate built from Shardis's own structures, not Redis's: the
//! key's bytes, the keyspace entry that holds key, value header and expiry, and what the value
//! allocates (a compact encoding's buffer; a table's bucket array and one node per element).
//! As in Redis, a table's elements are measured on the first SAMPLES of them (default 5, 0 for
//! all) and the mean is extrapolated, so the command stays cheap on huge collections.

use bytes::Bytes;
use shardis_resp::Reply;

use crate::command::table::Registration;
use crate::db::Entry;
use crate::dict::Dict;
use crate::error;
use crate::key::{is_inline, Key};
use crate::num;
use crate::shard::Ctx;
use crate::t_keys::help_reply;
use crate::value::Value;

pub static COMMANDS: &[Registration] = &[
    Registration::shard("memory|usage", memory_usage),
    Registration::local("memory|help", memory_help),
];

/// Elements measured when SAMPLES is not given (Redis's `OBJ_COMPUTE_SIZE_DEF_SAMPLES`).
pub const DEFAULT_SAMPLES: usize = 5;

/// MEMORY USAGE key [SAMPLES count]
pub fn memory_usage(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let mut samples = DEFAULT_SAMPLES;
    let mut rest = args.get(3..).unwrap_or_default();
    while let [opt, tail @ ..] = rest {
        let [count, tail @ ..] = tail else {
            return error::syntax();
        };
        if !opt.eq_ignore_ascii_case(b"samples") {
            return error::syntax();
        }
        samples = match num::parse_i64(count) {
            None => return error::not_integer(),
            Some(n) if n < 0 => return error::syntax(),
            Some(0) => usize::MAX,
            Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
        };
        rest = tail;
    }
    // Like Redis, a key that has expired but is not reclaimed yet still has a size.
    match ctx.db().peek(&args[2]) {
        Some(entry) => Reply::Int(key_usage(&args[2], entry, samples) as i64),
        None => Reply::Nil,
    }
}

/// The bytes `key` and its entry take in the keyspace.
pub fn key_usage(key: &[u8], entry: &Entry, samples: usize) -> usize {
    // A name past the inline limit has a block of its own: a length varint and the bytes.
    let key_block = if !is_inline(key) {
        key.len() + 1 + usize::from(key.len() >= 128) + usize::from(key.len() >= 1 << 14)
    } else {
        0
    };
    let expiry_slot = if entry.has_expire() { 16 } else { 0 };
    key_block
        + Dict::<Key, Entry>::node_bytes()
        + expiry_slot
        + value_allocated_bytes(&entry.value, samples)
}

/// What a value allocates beyond the entry that holds it.
pub fn value_allocated_bytes(value: &Value, samples: usize) -> usize {
    match value {
        Value::Str(s) => s.allocated_bytes(),
        Value::List(l) => l.allocated_bytes(),
        Value::Hash(h) => h.allocated_bytes(samples),
        Value::Set(s) => s.allocated_bytes(samples),
        Value::ZSet(z) => z.allocated_bytes(samples),
        Value::Stream(s) => s.allocated_bytes(),
    }
}

/// MEMORY HELP
pub fn memory_help(_ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Reply {
    help_reply(
        "MEMORY",
        &[
            "DOCTOR",
            "    Return memory problems reports.",
            "MALLOC-STATS",
            "    Return internal statistics report from the memory allocator.",
            "PURGE",
            "    Attempt to purge dirty pages for reclamation by the allocator.",
            "STATS",
            "    Return information about the memory usage of the server.",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
        ],
    )
}

#[cfg(test)]
mod tests {
    use crate::testing::{err, TestShard};
    use shardis_resp::Reply;

    fn usage(t: &mut TestShard, args: &[&str]) -> i64 {
        let mut full = vec!["memory", "usage"];
        full.extend_from_slice(args);
        match t.run(&full) {
            Reply::Int(n) => n,
            other => panic!("MEMORY USAGE {args:?} gave {other:?}"),
        }
    }

    #[test]
    fn missing_key_is_nil() {
        let mut t = TestShard::new();
        assert_eq!(t.run(&["memory", "usage", "nokey"]), Reply::Nil);
        assert_eq!(
            t.run(&["memory", "usage", "nokey", "samples", "3"]),
            Reply::Nil
        );
    }

    #[test]
    fn strings_count_key_and_value_bytes() {
        let mut t = TestShard::new();
        t.run(&["set", "k", "v"]);
        let small = usage(&mut t, &["k"]);
        assert!(small > 2, "{small}");
        // A short value lives in the entry; a long one in a block of its own.
        t.run(&["set", "k", &"x".repeat(22)]);
        assert_eq!(usage(&mut t, &["k"]), small);
        t.run(&["set", "k", &"x".repeat(1001)]);
        assert_eq!(usage(&mut t, &["k"]), small + 1001);
        // Names up to 15 bytes (16 when the last byte allows) live in the node; a longer one
        // has a block (length + bytes).
        t.run(&["set", "longerkey", "v"]);
        assert_eq!(usage(&mut t, &["longerkey"]), small);
        t.run(&["set", "key:000000012345", "v"]);
        assert_eq!(usage(&mut t, &["key:000000012345"]), small);
        t.run(&["set", "a-name-of-20-bytes..", "v"]);
        assert_eq!(usage(&mut t, &["a-name-of-20-bytes.."]), small + 21);
    }

    /// A key, the command that adds to it, and the arguments adding element `i`.
    type Filler = (&'static str, &'static str, fn(usize) -> Vec<String>);

    #[test]
    fn every_type_and_encoding_has_a_size_that_grows() {
        let mut t = TestShard::new();
        let cases: &[Filler] = &[
            ("list", "rpush", |i| vec![format!("e{i}")]),
            ("hash", "hset", |i| vec![format!("f{i}"), format!("v{i}")]),
            ("intset", "sadd", |i| vec![i.to_string()]),
            ("set", "sadd", |i| vec![format!("m{i}")]),
            ("zset", "zadd", |i| vec![i.to_string(), format!("m{i}")]),
        ];
        for (key, cmd, elem) in cases {
            let mut sizes = Vec::new();
            for n in [1usize, 10, 1000] {
                t.run(&["del", key]);
                for i in 0..n {
                    let e = elem(i);
                    let mut args = vec![*cmd, *key];
                    args.extend(e.iter().map(String::as_str));
                    t.run(&args);
                }
                sizes.push(usage(&mut t, &[key, "samples", "0"]));
            }
            assert!(sizes[0] > 0 && sizes[0] < sizes[1], "{key}: {sizes:?}");
            // A thousand elements take at least their own bytes.
            assert!(sizes[2] > sizes[1] + 990 * 2, "{key}: {sizes:?}");
        }
    }

    /// hash.tcl measures a hash of each encoding ("coverage for objectComputeSize"), with
    /// `hash-max-ziplist-value 10` and one long field forcing the table.
    #[test]
    fn hash_tcl_sizes_both_hash_encodings() {
        let mut t = TestShard::new();
        t.shard.config.hash_max_listpack_value = 10;
        let long = "y".repeat(80);
        for (encoding, third) in [("listpack", "c"), ("hashtable", long.as_str())] {
            t.run(&["del", "myhash"]);
            t.run(&["hset", "myhash", "a", "1", "b", "2", third, "3"]);
            assert_eq!(
                t.run(&["object", "encoding", "myhash"]),
                crate::testing::bulk(encoding)
            );
            assert!(usage(&mut t, &["myhash"]) > 0);
        }
    }

    #[test]
    fn table_encodings_extrapolate_from_samples() {
        let mut t = TestShard::new();
        for i in 0..1000 {
            t.run(&["sadd", "s", &format!("m{i:05}")]);
            t.run(&["hset", "h", &format!("f{i:05}"), "value"]);
        }
        for key in ["s", "h"] {
            // Uniform elements: any sample size gives the exact total.
            let all = usage(&mut t, &[key, "samples", "0"]);
            assert_eq!(usage(&mut t, &[key]), all);
            assert_eq!(usage(&mut t, &[key, "SAMPLES", "1"]), all);
            assert_eq!(usage(&mut t, &[key, "samples", "2000"]), all);
        }
        // A skewed table: sampling one element extrapolates that element's size, sampling all
        // measures each.
        t.shard.config.hash_max_listpack_entries = 0;
        t.run(&["hset", "big", "a", &"x".repeat(10_000)]);
        t.run(&["hset", "big", "b", "y"]);
        let exact = usage(&mut t, &["big", "samples", "0"]);
        let one = usage(&mut t, &["big", "samples", "1"]);
        assert!(exact > 10_000, "{exact}");
        // The entries differ by 9,999 bytes; two times either one is off by that much.
        assert_eq!((one - exact).abs(), 9_999, "{one} vs {exact}");
    }

    /// `list-compress-depth`: the middle nodes of a long list of repetitive elements are held
    /// compressed, and MEMORY USAGE counts them by their compressed size.
    #[test]
    fn compressed_lists_count_their_compressed_size() {
        let element = |i: usize| format!("{i:08}:{}", "repetitive-payload:".repeat(5));
        assert_eq!(element(0).len(), 104);
        let mut sizes = Vec::new();
        for depth in [0, 1, 2] {
            let mut t = TestShard::new();
            t.shard.config.list_compress_depth = depth;
            for chunk in 0..100 {
                let values: Vec<String> = (chunk * 1000..(chunk + 1) * 1000).map(element).collect();
                let mut args = vec!["rpush", "l"];
                args.extend(values.iter().map(String::as_str));
                t.run(&args);
            }
            assert_eq!(t.run(&["llen", "l"]), Reply::Int(100_000));
            sizes.push(usage(&mut t, &["l"]));
            // Reads and edits in the compressed middle leave the sizes as they were.
            assert_eq!(
                t.run(&["lindex", "l", "50000"]),
                crate::testing::bulk(&element(50_000))
            );
            t.run(&["lset", "l", "50000", &element(50_000)]);
            assert_eq!(usage(&mut t, &["l"]), *sizes.last().unwrap_or(&0));
        }
        // Packed, 100,000 entries of 106 bytes.
        assert!(sizes[0] > 100_000 * 106, "{sizes:?}");
        // Compressed, all but one or two nodes at each end take a fraction of that.
        assert!(sizes[1] * 4 < sizes[0], "{sizes:?}");
        // Depth 2 keeps one more 8 KiB node packed at each end (with up to a quarter spare).
        assert!(
            sizes[1] < sizes[2] && sizes[2] <= sizes[1] + 2 * 10_240,
            "{sizes:?}"
        );
    }

    #[test]
    fn options_are_checked_before_the_key() {
        let mut t = TestShard::new();
        t.run(&["set", "k", "v"]);
        for args in [
            vec!["k", "samples"],
            vec!["k", "foo", "1"],
            vec!["k", "samples", "-1"],
            vec!["k", "samples", "1", "extra"],
            vec!["nokey", "samples", "-1"],
        ] {
            let mut full = vec!["memory", "usage"];
            full.extend(args.iter().copied());
            assert_eq!(t.run(&full), err("ERR syntax error"), "{args:?}");
        }
        for count in ["x", "1.5", "99999999999999999999"] {
            assert_eq!(
                t.run(&["memory", "usage", "k", "samples", count]),
                err("ERR value is not an integer or out of range")
            );
        }
        assert!(usage(&mut t, &["k", "samples", "9223372036854775807"]) > 0);
        assert_eq!(
            t.run(&["memory", "usage"]),
            err("ERR wrong number of arguments for 'memory|usage' command")
        );
        assert_eq!(
            t.run(&["memory", "nosuch"]),
            err("ERR unknown subcommand 'nosuch'. Try MEMORY HELP.")
        );
    }

    #[test]
    fn binary_keys_and_expired_keys() {
        let mut t = TestShard::new();
        t.run(&["set", "a\0b", "\r\n"]);
        assert!(usage(&mut t, &["a\0b"]) > 5);
        t.run(&["set", "e", "v", "px", "10"]);
        t.advance(20);
        // Not reclaimed yet: Redis still sizes it.
        assert!(usage(&mut t, &["e"]) > 0);
        t.run(&["get", "e"]);
        assert_eq!(t.run(&["memory", "usage", "e"]), Reply::Nil);
    }

    #[test]
    fn help_lists_the_subcommands() {
        let mut t = TestShard::new();
        let Reply::Array(lines) = t.run(&["memory", "help"]) else {
            panic!("help is an array");
        };
        assert_eq!(lines.len(), 14);
        assert_eq!(
            lines[0],
            Reply::simple("MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")
        );
        assert_eq!(lines[9], Reply::simple("USAGE <key> [SAMPLES <count>]"));
        assert_eq!(lines[13], Reply::simple("    Prints this help."));
    }
}
