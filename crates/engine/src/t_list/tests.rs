use super::*;
use crate::testing::{arr, bulk, bulks, err, int, ok, TestShard};
use proptest::prelude::*;
use std::collections::VecDeque;

const WRONGTYPE: &str = error::WRONGTYPE;

fn shard_with_fill(fill: i64) -> TestShard {
    let mut t = TestShard::new();
    t.shard.config.list_max_listpack_size = fill;
    t
}

fn range(t: &mut TestShard, key: &str) -> Reply {
    t.run(&["lrange", key, "0", "-1"])
}

fn list<'a>(t: &'a mut TestShard, key: &str) -> &'a ListValue {
    match t.shard.dbs[0].peek(key.as_bytes()).map(|e| &e.value) {
        Some(Value::List(l)) => l,
        other => panic!("no list at {key}: {other:?}"),
    }
}

/// The options of a shard with `list-max-listpack-size` at `fill`, no compression.
fn with_fill(fill: i64) -> ListOptions {
    ListOptions {
        fill,
        compress_depth: 0,
    }
}

/// True if LZF would shrink `entries` enough to keep the compressed form.
fn would_compress(entries: &Listpack) -> bool {
    let mut node = Node::from(entries.clone());
    node.compress();
    node.is_compressed()
}

/// Every node non-empty and within its limits, counts adding up to the length; the
/// `compress_depth` nodes at each end packed, every node between them compressed unless
/// compression would not pay.
fn check_invariants(l: &ListValue, options: ListOptions) {
    let (count, depth) = (l.nodes.len(), options.compress_depth);
    let mut total = 0;
    for (i, node) in l.nodes.iter().enumerate() {
        assert!(!node.is_empty());
        assert!(node_fits(options.fill, node.bytes(), node.len()));
        let entries = node.view();
        assert_eq!(entries.iter().count(), node.len());
        assert_eq!(entries.bytes(), node.bytes());
        let interior = depth > 0 && i >= depth && i + depth < count;
        if interior {
            assert!(
                node.is_compressed() || !would_compress(&entries),
                "node {i} of {count} at depth {depth} left packed"
            );
        } else {
            assert!(
                !node.is_compressed(),
                "node {i} of {count} at depth {depth} compressed"
            );
        }
        total += node.len();
    }
    assert_eq!(total, l.len());
}

#[test]
fn value_is_compact() {
    // The element count lives with the nodes, so the list is no bigger than one node in
    // place, and a `Value` holding it stays 32 bytes (see value.rs).
    assert_eq!(std::mem::size_of::<Node>(), 32);
    assert_eq!(std::mem::size_of::<ListValue>(), 32);
    let l = ListValue::from_values((0..20).map(|i| format!("item:{i:05}")), with_fill(-2));
    assert_eq!(l.nodes.len(), 1);
    // 20 entries of 12 bytes each, with bounded slack; a single node needs no ring.
    assert!(
        l.allocated_bytes() <= 20 * 12 * 5 / 4,
        "{}",
        l.allocated_bytes()
    );
    assert_eq!(l.encoding(), "quicklist");
    assert_eq!(format!("{l:?}").matches("item:").count(), 20);
}

#[test]
fn push_len_index_pop() {
    let mut t = TestShard::new();
    assert_eq!(t.run(&["lpush", "l", "aa"]), int(1));
    assert_eq!(t.run(&["rpush", "l", "bb"]), int(2));
    assert_eq!(t.run(&["rpush", "l", "cc"]), int(3));
    assert_eq!(t.run(&["llen", "l"]), int(3));
    assert_eq!(t.run(&["lindex", "l", "0"]), bulk("aa"));
    assert_eq!(t.run(&["lindex", "l", "2"]), bulk("cc"));
    assert_eq!(t.run(&["lindex", "l", "-1"]), bulk("cc"));
    assert_eq!(t.run(&["lindex", "l", "-3"]), bulk("aa"));
    assert_eq!(t.run(&["lindex", "l", "3"]), Reply::Nil);
    assert_eq!(t.run(&["lindex", "l", "-4"]), Reply::Nil);
    assert_eq!(t.run(&["lindex", "l", "x"]), err(error::NOT_INTEGER));
    assert_eq!(t.run(&["lindex", "nokey", "x"]), Reply::Nil);
    assert_eq!(t.run(&["lindex", "nokey", "10"]), Reply::Nil);
    assert_eq!(t.run(&["llen", "nokey"]), int(0));
    assert_eq!(t.run(&["rpop", "l"]), bulk("cc"));
    assert_eq!(t.run(&["lpop", "l"]), bulk("aa"));
    assert_eq!(t.run(&["lpop", "l"]), bulk("bb"));
    assert!(!t.shard.dbs[0].contains(b"l", t.now_ms));
    assert_eq!(t.run(&["lpop", "l"]), Reply::Nil);
}

#[test]
fn variadic_push_order() {
    let mut t = TestShard::new();
    assert_eq!(t.run(&["lpush", "l", "a", "b", "c", "d"]), int(4));
    assert_eq!(t.run(&["rpush", "l", "0", "1", "2", "3"]), int(8));
    assert_eq!(
        range(&mut t, "l"),
        bulks(&["d", "c", "b", "a", "0", "1", "2", "3"])
    );
    assert_eq!(t.shard.dirty, 8);
}

#[test]
fn pushx_needs_an_existing_list() {
    let mut t = TestShard::new();
    assert_eq!(t.run(&["lpushx", "x", "a"]), int(0));
    assert_eq!(t.run(&["rpushx", "x", "a"]), int(0));
    assert_eq!(t.run(&["llen", "x"]), int(0));
    t.run(&["rpush", "x", "b", "c"]);
    assert_eq!(t.run(&["rpushx", "x", "d"]), int(3));
    assert_eq!(t.run(&["lpushx", "x", "a"]), int(4));
    assert_eq!(t.run(&["rpushx", "x", "42", "x"]), int(6));
    assert_eq!(t.run(&["lpushx", "x", "y3", "y2", "y1"]), int(9));
    assert_eq!(
        range(&mut t, "x"),
        bulks(&["y1", "y2", "y3", "a", "b", "c", "d", "42", "x"])
    );
}

#[test]
fn every_command_rejects_other_types() {
    let mut t = TestShard::new();
    t.run(&["set", "s", "x"]);
    t.run(&["rpush", "l", "a"]);
    let cases: &[&[&str]] = &[
        &["llen", "s"],
        &["lindex", "s", "0"],
        &["lindex", "s", "notanumber"],
        &["lpush", "s", "a"],
        &["rpush", "s", "a"],
        &["lpushx", "s", "a"],
        &["rpushx", "s", "a"],
        &["linsert", "s", "before", "a", "b"],
        &["lset", "s", "0", "a"],
        &["lrange", "s", "0", "-1"],
        &["ltrim", "s", "0", "-1"],
        &["lpos", "s", "a"],
        &["lrem", "s", "0", "a"],
        &["lpop", "s"],
        &["rpop", "s", "0"],
        &["lmpop", "2", "nokey", "s", "left"],
        &["lmove", "s", "l", "left", "right"],
        &["lmove", "l", "s", "left", "right"],
        &["rpoplpush", "s", "l"],
        &["rpoplpush", "l", "s"],
        &["blpop", "nokey", "s", "0"],
        &["brpop", "s", "0"],
        &["blmpop", "0", "2", "nokey", "s", "left", "count", "1"],
        &["blmove", "s", "l", "left", "left", "0"],
        &["blmove", "l", "s", "left", "left", "0"],
        &["brpoplpush", "s", "l", "0"],
    ];
    for c in cases {
        assert_eq!(t.run(c), err(WRONGTYPE), "{c:?}");
    }
    assert_eq!(t.run(&["get", "s"]), bulk("x"));
    assert_eq!(range(&mut t, "l"), bulks(&["a"]));
}

#[test]
fn pop_with_count() {
    let mut t = TestShard::new();
    assert_eq!(
        t.run(&["lpush", "c", "aa", "bb", "cc", "dd", "ee", "ff", "gg"]),
        int(7)
    );
    assert_eq!(t.run(&["lpop", "c", "1"]), bulks(&["gg"]));
    assert_eq!(t.run(&["lpop", "c", "2"]), bulks(&["ff", "ee"]));
    assert_eq!(t.run(&["rpop", "c", "2"]), bulks(&["aa", "bb"]));
    assert_eq!(t.run(&["rpop", "c", "1"]), bulks(&["cc"]));
    assert_eq!(t.run(&["lpop", "c", "0"]), arr(vec![]));
    assert_eq!(t.run(&["rpop", "c", "123"]), bulks(&["dd"]));
    assert!(!t.shard.dbs[0].contains(b"c", t.now_ms));
    for bad in ["-123", "x", "1.5"] {
        assert_eq!(t.run(&["lpop", "nokey", bad]), err(COUNT_NOT_POSITIVE));
    }
    assert_eq!(
        t.run(&["lpop", "k", "1", "1"]),
        err("ERR wrong number of arguments for 'lpop' command")
    );
    assert_eq!(
        t.run(&["rpop", "k", "2", "2"]),
        err("ERR wrong number of arguments for 'rpop' command")
    );
    // A missing key: nil without count, the null array with one (even 0).
    assert_eq!(t.run(&["lpop", "nokey"]), Reply::Nil);
    assert_eq!(t.run(&["rpop", "nokey"]), Reply::Nil);
    assert_eq!(t.run(&["lpop", "nokey", "0"]), Reply::NilArray);
    assert_eq!(t.run(&["rpop", "nokey", "1"]), Reply::NilArray);
    t.run(&["lpush", "z", "zero"]);
    assert_eq!(t.run(&["lpop", "z", "0"]), arr(vec![]));
    assert_eq!(t.run(&["rpop", "z", "0"]), arr(vec![]));
    assert_eq!(t.run(&["llen", "z"]), int(1));
}

#[test]
fn lrange_rules() {
    let mut t = TestShard::new();
    let big = "x".repeat(500);
    t.run(&[
        "rpush", "l", &big, "1", "2", "3", "4", "5", "6", "7", "8", "9",
    ]);
    let digits = |v: &[&str]| bulks(v);
    assert_eq!(
        t.run(&["lrange", "l", "1", "-2"]),
        digits(&["1", "2", "3", "4", "5", "6", "7", "8"])
    );
    assert_eq!(
        t.run(&["lrange", "l", "-3", "-1"]),
        digits(&["7", "8", "9"])
    );
    assert_eq!(t.run(&["lrange", "l", "4", "4"]), digits(&["4"]));
    assert_eq!(t.run(&["lrange", "l", "6", "2"]), arr(vec![]));
    assert_eq!(t.run(&["lrange", "l", "-1", "-2"]), arr(vec![]));
    assert_eq!(t.run(&["lrange", "l", "10", "20"]), arr(vec![]));
    t.shard.dbs[0].remove(b"l");
    t.run(&["rpush", "l", &big, "1", "2", "3"]);
    assert_eq!(
        t.run(&["lrange", "l", "-1000", "1000"]),
        bulks(&[&big, "1", "2", "3"])
    );
    assert_eq!(t.run(&["lrange", "l", "0", "-4"]), bulks(&[&big]));
    assert_eq!(t.run(&["lrange", "l", "0", "-5"]), arr(vec![]));
    let extremes = ["-9223372036854775808", "9223372036854775807"];
    assert_eq!(
        t.run(&["lrange", "l", extremes[0], extremes[1]]),
        bulks(&[&big, "1", "2", "3"])
    );
    assert_eq!(t.run(&["lrange", "nokey", "0", "1"]), arr(vec![]));
    assert_eq!(
        t.run(&["lrange", "nokey", "a", "1"]),
        err(error::NOT_INTEGER)
    );
    assert_eq!(t.run(&["lrange", "l", "0", "1.0"]), err(error::NOT_INTEGER));
}

fn trimmed(t: &mut TestShard, start: &str, stop: &str) -> Reply {
    t.shard.dbs[0].remove(b"l");
    t.run(&["rpush", "l", "1", "2", "3", "4", "large"]);
    assert_eq!(t.run(&["ltrim", "l", start, stop]), ok());
    range(t, "l")
}

#[test]
fn ltrim_rules() {
    let mut t = shard_with_fill(2);
    let cases: &[(&str, &str, &[&str])] = &[
        ("0", "0", &["1"]),
        ("0", "1", &["1", "2"]),
        ("0", "2", &["1", "2", "3"]),
        ("1", "2", &["2", "3"]),
        ("1", "-1", &["2", "3", "4", "large"]),
        ("1", "-2", &["2", "3", "4"]),
        ("-2", "-1", &["4", "large"]),
        ("-1", "-1", &["large"]),
        ("-5", "-1", &["1", "2", "3", "4", "large"]),
        ("-10", "10", &["1", "2", "3", "4", "large"]),
        ("0", "5", &["1", "2", "3", "4", "large"]),
        ("0", "-5", &["1"]),
        ("0", "-6", &[]),
        ("3", "1", &[]),
    ];
    for (start, stop, want) in cases {
        assert_eq!(trimmed(&mut t, start, stop), bulks(want), "{start} {stop}");
    }
    assert!(!t.shard.dbs[0].contains(b"l", t.now_ms));
    assert_eq!(t.run(&["ltrim", "nokey", "0", "1"]), ok());
    assert_eq!(
        t.run(&["ltrim", "nokey", "x", "1"]),
        err(error::NOT_INTEGER)
    );
    assert_eq!(t.run(&["ltrim", "nokey", "0", ""]), err(error::NOT_INTEGER));
}

#[test]
fn lset_rules() {
    let mut t = TestShard::new();
    let big = "y".repeat(300);
    t.run(&["rpush", "l", "99", "98", &big, "96", "95"]);
    assert_eq!(t.run(&["lset", "l", "1", "foo"]), ok());
    assert_eq!(t.run(&["lset", "l", "-1", "bar"]), ok());
    assert_eq!(range(&mut t, "l"), bulks(&["99", "foo", &big, "96", "bar"]));
    assert_eq!(t.run(&["lset", "l", "10", "foo"]), err(error::OUT_OF_RANGE));
    assert_eq!(t.run(&["lset", "l", "-6", "foo"]), err(error::OUT_OF_RANGE));
    assert_eq!(t.run(&["lset", "l", "x", "foo"]), err(error::NOT_INTEGER));
    assert_eq!(
        t.run(&["lset", "nokey", "10", "foo"]),
        err(error::NO_SUCH_KEY)
    );
    assert_eq!(
        t.run(&["lset", "nokey", "x", "foo"]),
        err(error::NO_SUCH_KEY)
    );
    assert_eq!(t.run(&["lset", "l", "2", "7"]), ok());
    assert_eq!(t.run(&["lindex", "l", "2"]), bulk("7"));
}

#[test]
fn linsert_rules() {
    let mut t = TestShard::new();
    let big = "z".repeat(400);
    t.run(&["rpush", "l", "a", &big, "c", "d"]);
    assert_eq!(t.run(&["linsert", "l", "before", "c", "zz"]), int(5));
    assert_eq!(range(&mut t, "l"), bulks(&["a", &big, "zz", "c", "d"]));
    assert_eq!(t.run(&["linsert", "l", "AFTER", "c", "yy"]), int(6));
    assert_eq!(t.run(&["linsert", "l", "after", "d", "dd"]), int(7));
    assert_eq!(t.run(&["linsert", "l", "after", "bad", "ddd"]), int(-1));
    assert_eq!(t.run(&["linsert", "l", "Before", "a", "aa"]), int(8));
    assert_eq!(t.run(&["linsert", "l", "before", "bad", "aaa"]), int(-1));
    assert_eq!(
        range(&mut t, "l"),
        bulks(&["aa", "a", &big, "zz", "c", "yy", "d", "dd"])
    );
    assert_eq!(t.run(&["linsert", "l", "before", "aa", "42"]), int(9));
    assert_eq!(t.run(&["lrange", "l", "0", "0"]), bulks(&["42"]));
    assert_eq!(t.run(&["linsert", "l", "after", "42", "-1"]), int(10));
    assert_eq!(t.run(&["lindex", "l", "1"]), bulk("-1"));
    assert_eq!(
        t.run(&["linsert", "l", "aft3r", "aa", "42"]),
        err(error::SYNTAX)
    );
    assert_eq!(t.run(&["linsert", "nokey", "before", "a", "b"]), int(0));
    assert_eq!(
        t.run(&["linsert", "nokey", "middle", "a", "b"]),
        err(error::SYNTAX)
    );
    assert!(!t.shard.dbs[0].contains(b"nokey", t.now_ms));
}

#[test]
fn lrem_rules() {
    let mut t = TestShard::new();
    let e = "e".repeat(200);
    let items = [
        "foo", "bar", "foobar", "foobared", "zap", "bar", "test", "foo",
    ];
    let mut args = vec!["rpush", "l", &e];
    args.extend(items);
    t.run(&args);
    assert_eq!(t.run(&["lrem", "l", "0", "bar"]), int(2));
    assert_eq!(
        range(&mut t, "l"),
        bulks(&[&e, "foo", "foobar", "foobared", "zap", "test", "foo"])
    );
    assert_eq!(t.run(&["lrem", "l", "1", "foo"]), int(1));
    assert_eq!(t.run(&["lrem", "l", "1", "nosuchelement"]), int(0));
    assert_eq!(
        range(&mut t, "l"),
        bulks(&[&e, "foobar", "foobared", "zap", "test", "foo"])
    );
    t.shard.dbs[0].remove(b"l");
    let mut args = vec!["rpush", "l", &e];
    args.extend([
        "foo", "bar", "foobar", "foobared", "zap", "bar", "test", "foo", "foo",
    ]);
    t.run(&args);
    assert_eq!(t.run(&["lrem", "l", "-1", "bar"]), int(1));
    assert_eq!(
        range(&mut t, "l"),
        bulks(&[&e, "foo", "bar", "foobar", "foobared", "zap", "test", "foo", "foo"])
    );
    assert_eq!(t.run(&["lrem", "l", "-2", "foo"]), int(2));
    assert_eq!(
        range(&mut t, "l"),
        bulks(&[&e, "foo", "bar", "foobar", "foobared", "zap", "test"])
    );
    t.run(&["rpush", "o", &e, "1", "2", "3"]);
    assert_eq!(t.run(&["lrem", "o", "1", "2"]), int(1));
    assert_eq!(t.run(&["llen", "o"]), int(3));
    assert_eq!(t.run(&["lrem", "o", "-9223372036854775808", "1"]), int(1));
    assert_eq!(t.run(&["lrem", "nokey", "0", "a"]), int(0));
    assert_eq!(t.run(&["lrem", "nokey", "a", "a"]), err(error::NOT_INTEGER));
    t.run(&["rpush", "same", "x", "x", "x"]);
    assert_eq!(t.run(&["lrem", "same", "0", "x"]), int(3));
    assert!(!t.shard.dbs[0].contains(b"same", t.now_ms));
}

#[test]
fn lpos_options() {
    let mut t = TestShard::new();
    t.run(&["rpush", "l", "a", "b", "c", "1", "2", "3", "c", "c"]);
    let lpos = |t: &mut TestShard, extra: &[&str]| {
        let mut args = vec!["lpos", "l"];
        args.extend(extra);
        t.run(&args)
    };
    let ints = |v: &[i64]| arr(v.iter().map(|&n| int(n)).collect());
    assert_eq!(lpos(&mut t, &["a"]), int(0));
    assert_eq!(lpos(&mut t, &["c"]), int(2));
    assert_eq!(lpos(&mut t, &["1"]), int(3));
    assert_eq!(lpos(&mut t, &["c", "RANK", "1"]), int(2));
    assert_eq!(lpos(&mut t, &["c", "rank", "2"]), int(6));
    assert_eq!(lpos(&mut t, &["c", "RANK", "4"]), Reply::Nil);
    assert_eq!(lpos(&mut t, &["c", "RANK", "-1"]), int(7));
    assert_eq!(lpos(&mut t, &["c", "RANK", "-2"]), int(6));
    assert_eq!(lpos(&mut t, &["c", "RANK", "0"]), err(RANK_ZERO));
    assert_eq!(
        lpos(&mut t, &["c", "RANK", "-9223372036854775808"]),
        err(RANK_RANGE)
    );
    assert_eq!(lpos(&mut t, &["c", "RANK", "x"]), err(error::NOT_INTEGER));
    assert_eq!(lpos(&mut t, &["c", "COUNT", "0"]), ints(&[2, 6, 7]));
    assert_eq!(lpos(&mut t, &["c", "COUNT", "1"]), ints(&[2]));
    assert_eq!(lpos(&mut t, &["c", "COUNT", "2"]), ints(&[2, 6]));
    assert_eq!(lpos(&mut t, &["c", "COUNT", "100"]), ints(&[2, 6, 7]));
    assert_eq!(
        lpos(&mut t, &["c", "COUNT", "0", "RANK", "2"]),
        ints(&[6, 7])
    );
    assert_eq!(
        lpos(&mut t, &["c", "COUNT", "2", "RANK", "-1"]),
        ints(&[7, 6])
    );
    assert_eq!(lpos(&mut t, &["x", "COUNT", "2", "RANK", "-1"]), ints(&[]));
    assert_eq!(lpos(&mut t, &["x", "RANK", "-1"]), Reply::Nil);
    assert_eq!(
        lpos(&mut t, &["a", "COUNT", "0", "MAXLEN", "1"]),
        ints(&[0])
    );
    assert_eq!(lpos(&mut t, &["c", "COUNT", "0", "MAXLEN", "1"]), ints(&[]));
    assert_eq!(
        lpos(&mut t, &["c", "COUNT", "0", "MAXLEN", "3"]),
        ints(&[2])
    );
    assert_eq!(
        lpos(&mut t, &["c", "COUNT", "0", "MAXLEN", "3", "RANK", "-1"]),
        ints(&[7, 6])
    );
    assert_eq!(
        lpos(&mut t, &["c", "COUNT", "0", "MAXLEN", "7", "RANK", "2"]),
        ints(&[6])
    );
    assert_eq!(lpos(&mut t, &["c", "COUNT", "-1"]), err(LPOS_COUNT));
    assert_eq!(lpos(&mut t, &["c", "COUNT", "x"]), err(LPOS_COUNT));
    assert_eq!(lpos(&mut t, &["c", "MAXLEN", "-1"]), err(LPOS_MAXLEN));
    assert_eq!(lpos(&mut t, &["c", "RANK"]), err(error::SYNTAX));
    assert_eq!(lpos(&mut t, &["c", "FOO", "1"]), err(error::SYNTAX));
    assert_eq!(
        t.run(&["lpos", "nokey", "c", "COUNT", "0", "RANK", "2"]),
        ints(&[])
    );
    assert_eq!(t.run(&["lpos", "nokey", "c"]), Reply::Nil);
    assert_eq!(t.run(&["lpos", "nokey", "c", "RANK", "0"]), err(RANK_ZERO));
    t.run(&["lpush", "one", "a"]);
    assert_eq!(
        t.run(&["lpos", "one", "b", "COUNT", "10", "RANK", "5"]),
        ints(&[])
    );
}

#[test]
fn lmpop_arguments() {
    let mut t = TestShard::new();
    let arity = err("ERR wrong number of arguments for 'lmpop' command");
    assert_eq!(t.run(&["lmpop"]), arity);
    assert_eq!(t.run(&["lmpop", "1"]), arity);
    assert_eq!(t.run(&["lmpop", "1", "l"]), arity);
    for bad in ["0", "a", "-1"] {
        assert_eq!(t.run(&["lmpop", bad, "l", "LEFT"]), err(NUMKEYS));
    }
    let syntax: &[&[&str]] = &[
        &["lmpop", "1", "l", "bad_where"],
        &["lmpop", "1", "l", "LEFT", "bar_arg"],
        &["lmpop", "1", "l", "RIGHT", "LEFT"],
        &["lmpop", "1", "l", "COUNT"],
        &["lmpop", "1", "l", "LEFT", "COUNT", "1", "COUNT", "2"],
        &["lmpop", "2", "l", "l2", "bad_arg"],
        &["lmpop", "5", "l", "LEFT"],
        &["lmpop", "9223372036854775807", "l", "LEFT"],
    ];
    for c in syntax {
        assert_eq!(t.run(c), err(error::SYNTAX), "{c:?}");
    }
    for bad in ["0", "a", "-1"] {
        assert_eq!(
            t.run(&["lmpop", "1", "l", "LEFT", "COUNT", bad]),
            err(MPOP_COUNT)
        );
    }
    assert_eq!(
        t.run(&["lmpop", "2", "l", "l2", "RIGHT", "COUNT", "-1"]),
        err(MPOP_COUNT)
    );
}

#[test]
fn lmpop_pops_from_first_non_empty() {
    let mut t = TestShard::new();
    let key_items = |k: &str, v: &[&str]| arr(vec![bulk(k), bulks(v)]);
    t.run(&["rpush", "l", "a", "b", "c", "d", "e", "f"]);
    assert_eq!(
        t.run(&["lmpop", "2", "l", "l", "left", "count", "2"]),
        key_items("l", &["a", "b"])
    );
    assert_eq!(
        t.run(&["lmpop", "2", "l", "l", "right", "count", "2"]),
        key_items("l", &["f", "e"])
    );
    assert_eq!(t.run(&["llen", "l"]), int(2));
    assert_eq!(
        t.run(&["lmpop", "2", "nokey", "l", "left"]),
        key_items("l", &["c"])
    );
    assert_eq!(
        t.run(&["lmpop", "2", "l", "nokey", "right", "count", "10"]),
        key_items("l", &["d"])
    );
    assert!(!t.shard.dbs[0].contains(b"l", t.now_ms));
    assert_eq!(
        t.run(&["lmpop", "2", "l", "nokey", "right"]),
        Reply::NilArray
    );
    assert_eq!(
        t.run(&["lmpop", "1", "nokey", "left", "count", "10"]),
        Reply::NilArray
    );
    t.run(&["rpush", "a", "x"]);
    t.run(&["rpush", "b", "1", "2", "3"]);
    assert_eq!(
        t.run(&["lmpop", "2", "a", "b", "left", "count", "3"]),
        key_items("a", &["x"])
    );
    assert_eq!(
        t.run(&["lmpop", "2", "a", "b", "right", "COUNT", "10"]),
        key_items("b", &["3", "2", "1"])
    );
}

#[test]
fn lmove_and_rpoplpush() {
    let mut t = TestShard::new();
    let big = "q".repeat(300);
    t.run(&["rpush", "s", "a", &big, "c", "d"]);
    assert_eq!(t.run(&["rpoplpush", "s", "d"]), bulk("d"));
    assert_eq!(t.run(&["rpoplpush", "s", "d"]), bulk("c"));
    assert_eq!(range(&mut t, "s"), bulks(&["a", &big]));
    assert_eq!(range(&mut t, "d"), bulks(&["c", "d"]));
    for (from, to) in [
        ("left", "left"),
        ("left", "right"),
        ("right", "left"),
        ("right", "right"),
    ] {
        t.shard.dbs[0].remove(b"s");
        t.shard.dbs[0].remove(b"d");
        let src = if from == "right" {
            ["c", "d", &big, "a"]
        } else {
            ["a", &big, "c", "d"]
        };
        let mut args = vec!["rpush", "s"];
        args.extend(src);
        t.run(&args);
        assert_eq!(t.run(&["lmove", "s", "d", from, to]), bulk("a"));
        assert_eq!(t.run(&["lmove", "s", "d", from, to]), bulk(&big));
        assert_eq!(range(&mut t, "s"), bulks(&["c", "d"]));
        let want = if to == "right" {
            ["a", &big]
        } else {
            [&big[..], "a"]
        };
        assert_eq!(range(&mut t, "d"), bulks(&want));
    }
    // Same list as source and destination: a rotation.
    t.shard.dbs[0].remove(b"m");
    t.run(&["rpush", "m", "a", &big, "c"]);
    assert_eq!(t.run(&["rpoplpush", "m", "m"]), bulk("c"));
    assert_eq!(range(&mut t, "m"), bulks(&["c", "a", &big]));
    assert_eq!(t.run(&["lmove", "m", "m", "left", "right"]), bulk("c"));
    assert_eq!(range(&mut t, "m"), bulks(&["a", &big, "c"]));
    t.run(&["rpush", "one", "x"]);
    assert_eq!(t.run(&["lmove", "one", "one", "LEFT", "RIGHT"]), bulk("x"));
    assert_eq!(range(&mut t, "one"), bulks(&["x"]));
    // Missing source: nil, nothing created.
    assert_eq!(t.run(&["rpoplpush", "nokey", "dst"]), Reply::Nil);
    assert!(!t.shard.dbs[0].contains(b"dst", t.now_ms));
    // Wrong destination type: nothing moves.
    t.run(&["set", "str", "x"]);
    assert_eq!(t.run(&["rpoplpush", "one", "str"]), err(WRONGTYPE));
    assert_eq!(range(&mut t, "one"), bulks(&["x"]));
    assert_eq!(
        t.run(&["lmove", "one", "d", "up", "left"]),
        err(error::SYNTAX)
    );
    assert_eq!(
        t.run(&["lmove", "one", "d", "left", "down"]),
        err(error::SYNTAX)
    );
    // The last element moved away deletes the source.
    assert_eq!(t.run(&["lmove", "one", "new", "left", "left"]), bulk("x"));
    assert!(!t.shard.dbs[0].contains(b"one", t.now_ms));
    assert_eq!(range(&mut t, "new"), bulks(&["x"]));
}

#[test]
fn timeouts_parse_like_redis() {
    assert_eq!(parse_timeout(b"0"), Ok(0.0));
    assert_eq!(parse_timeout(b"1"), Ok(1.0));
    assert_eq!(parse_timeout(b"0.1"), Ok(0.1));
    assert_eq!(parse_timeout(b"0.0001"), Ok(0.001));
    assert_eq!(parse_timeout(b"-0.0001"), Ok(0.0));
    assert_eq!(parse_timeout(b"1e3"), Ok(1000.0));
    let negative = Err(err(error::TIMEOUT_NEGATIVE));
    for bad in ["-1", "-0.002", "inf", "-inf", "1e400", "1e16"] {
        assert_eq!(parse_timeout(bad.as_bytes()), negative, "{bad}");
    }
    let not_float = Err(err(error::TIMEOUT_NOT_FLOAT));
    for bad in ["", "abc", " 1", "1 ", "nan", "1x"] {
        assert_eq!(parse_timeout(bad.as_bytes()), not_float, "{bad}");
    }
    let long = "1".repeat(MAX_TIMEOUT_CHARS);
    assert_eq!(parse_timeout(long.as_bytes()), not_float);
}

#[test]
fn timeouts_are_read_where_the_table_says() {
    let args =
        |v: &[&str]| -> Vec<Bytes> { v.iter().map(|s| Bytes::from(s.to_string())).collect() };
    let ms = |secs: u64| Ok(Wait::For(std::time::Duration::from_millis(secs)));
    assert_eq!(
        timeout_arg::<-1>(&args(&["BLPOP", "a", "b", "1.5"])),
        ms(1500)
    );
    assert_eq!(
        timeout_arg::<-1>(&args(&["brpop", "a", "0"])),
        Ok(Wait::Forever)
    );
    assert_eq!(
        timeout_arg::<1>(&args(&["BLMPOP", "2", "1", "a", "left"])),
        ms(2000)
    );
    assert_eq!(
        timeout_arg::<5>(&args(&["blmove", "a", "b", "left", "left", "x"])),
        Err(err(error::TIMEOUT_NOT_FLOAT))
    );
    assert!(timeout_arg::<9>(&args(&["blpop", "a", "0"])).is_err());
}

#[test]
fn blocking_pops_attempt_once() {
    let mut t = TestShard::new();
    let big = "w".repeat(300);
    t.run(&["rpush", "blist", "a", "b", &big, "c", "d"]);
    assert_eq!(t.run(&["blpop", "blist", "1"]), bulks(&["blist", "a"]));
    assert_eq!(t.run(&["brpop", "blist", "1"]), bulks(&["blist", "d"]));
    assert_eq!(
        t.run(&["blmpop", "1", "1", "blist", "left", "count", "1"]),
        arr(vec![bulk("blist"), bulks(&["b"])])
    );
    assert_eq!(
        t.run(&["blmpop", "0", "1", "blist", "RIGHT"]),
        arr(vec![bulk("blist"), bulks(&["c"])])
    );
    assert_eq!(t.run(&["llen", "blist"]), int(1));
    // Nothing to pop: the null reply tells the runtime to block.
    assert_eq!(t.run(&["blpop", "nokey", "other", "0"]), Reply::NilArray);
    assert_eq!(t.run(&["brpop", "nokey", "0.001"]), Reply::NilArray);
    assert_eq!(
        t.run(&["blmpop", "0", "2", "nokey", "other", "left", "count", "10"]),
        Reply::NilArray
    );
    // The first non-empty key wins, whatever the order or repetition.
    t.run(&["rpush", "l2", "x", "y"]);
    assert_eq!(
        t.run(&["blpop", "nokey", "l2", "l2", "nokey", "0"]),
        bulks(&["l2", "x"])
    );
    // Errors come first, whatever the keys hold.
    for timeout in ["-1", "abc"] {
        let want = if timeout == "-1" {
            err(error::TIMEOUT_NEGATIVE)
        } else {
            err(error::TIMEOUT_NOT_FLOAT)
        };
        assert_eq!(t.run(&["blpop", "l2", timeout]), want);
        assert_eq!(t.run(&["brpop", "l2", timeout]), want);
        assert_eq!(t.run(&["blmpop", timeout, "1", "l2", "left"]), want);
        assert_eq!(t.run(&["blmove", "l2", "d", "left", "left", timeout]), want);
        assert_eq!(t.run(&["brpoplpush", "l2", "d", timeout]), want);
    }
    assert_eq!(t.run(&["llen", "l2"]), int(1));
    // BLMPOP checks its keys and options before its timeout.
    assert_eq!(t.run(&["blmpop", "x", "0", "l2", "left"]), err(NUMKEYS));
    assert_eq!(t.run(&["blmpop", "x", "1", "l2", "up"]), err(error::SYNTAX));
    assert_eq!(
        t.run(&["blmpop", "x", "1", "l2", "left", "count", "0"]),
        err(MPOP_COUNT)
    );
    assert_eq!(
        t.run(&["blmove", "l2", "d", "up", "left", "x"]),
        err(error::SYNTAX)
    );
}

#[test]
fn blocking_moves() {
    let mut t = TestShard::new();
    t.run(&["rpush", "target", "bar"]);
    t.run(&["rpush", "blist", "a", "b", "c", "d"]);
    assert_eq!(t.run(&["brpoplpush", "blist", "target", "1"]), bulk("d"));
    assert_eq!(range(&mut t, "target"), bulks(&["d", "bar"]));
    assert_eq!(
        t.run(&["blmove", "blist", "target", "left", "right", "0"]),
        bulk("a")
    );
    assert_eq!(range(&mut t, "target"), bulks(&["d", "bar", "a"]));
    assert_eq!(range(&mut t, "blist"), bulks(&["b", "c"]));
    // An empty source blocks even when the destination is not a list (Redis checks the
    // destination only when there is something to move).
    t.run(&["set", "str", "x"]);
    assert_eq!(t.run(&["brpoplpush", "nokey", "str", "0"]), Reply::Nil);
    assert_eq!(
        t.run(&["blmove", "nokey", "str", "left", "left", "0"]),
        Reply::Nil
    );
    assert_eq!(t.run(&["brpoplpush", "blist", "str", "0"]), err(WRONGTYPE));
    assert_eq!(range(&mut t, "blist"), bulks(&["b", "c"]));
}

#[test]
fn pushes_wake_blocked_clients() {
    let mut t = TestShard::new();
    for k in ["a", "b", "c", "d", "e"] {
        t.shard.blocked_keys.insert((0, Bytes::from(k)));
    }
    let ready = |t: &TestShard| -> Vec<Bytes> {
        t.shard.ready_keys.iter().map(|(_, k)| k.clone()).collect()
    };
    t.run(&["rpush", "a", "1"]);
    assert_eq!(ready(&t), vec!["a"]);
    t.shard.ready_keys.clear();
    t.run(&["lpush", "a", "2"]);
    assert_eq!(ready(&t), vec!["a"]);
    t.shard.ready_keys.clear();
    t.run(&["lmove", "a", "b", "left", "left"]);
    t.run(&["rpoplpush", "b", "c"]);
    t.run(&["linsert", "a", "before", "1", "0"]);
    t.run(&["rpushx", "d", "0"]);
    assert_eq!(ready(&t), vec!["b", "c", "a"]);
    t.shard.ready_keys.clear();
    t.run(&["lpop", "a"]);
    t.run(&["lrem", "c", "0", "x"]);
    assert!(ready(&t).is_empty());
}

#[test]
fn binary_and_empty_elements() {
    let mut t = TestShard::new();
    let odd = [
        Bytes::from_static(b"\x00\r\n\xff"),
        Bytes::new(),
        Bytes::from_static(b"-0"),
        Bytes::from_static(b"00"),
        Bytes::from_static(b"9223372036854775808"),
        Bytes::from_static(b"-9223372036854775808"),
    ];
    let mut args = vec![Bytes::from_static(b"rpush"), Bytes::from_static(b"k\x00")];
    args.extend(odd.iter().cloned());
    assert_eq!(t.run_bytes(&args), int(odd.len() as i64));
    let lr = [b"lrange".as_slice(), b"k\x00", b"0", b"-1"].map(Bytes::copy_from_slice);
    assert_eq!(
        t.run_bytes(&lr),
        arr(odd.iter().map(|b| Reply::Bulk(b.clone())).collect())
    );
    for (i, v) in odd.iter().enumerate() {
        let lpos = [b"lpos".as_slice(), b"k\x00", v].map(Bytes::copy_from_slice);
        assert_eq!(t.run_bytes(&lpos), int(i as i64));
    }
    let rem = [b"lrem".as_slice(), b"k\x00", b"0", b""].map(Bytes::copy_from_slice);
    assert_eq!(t.run_bytes(&rem), int(1));
}

#[test]
fn encodings_of_numbers_round_trip() {
    let mut t = TestShard::new();
    let values = [
        "127",
        "32767",
        "2147483647",
        "9223372036854775808",
        "0",
        "12",
        &"x".repeat(31),
        &"x".repeat(8191),
        &"x".repeat(65535),
    ];
    for v in values {
        t.run(&["lpush", "k", v]);
    }
    let mut want: Vec<&str> = values.to_vec();
    want.reverse();
    assert_eq!(range(&mut t, "k"), bulks(&want));
    assert_eq!(t.run(&["lindex", "k", "5"]), bulk("9223372036854775808"));
    assert_eq!(t.run(&["lindex", "k", "-5"]), bulk("0"));
    assert_eq!(t.run(&["lpos", "k", "foo", "rank", "1"]), Reply::Nil);
    assert_eq!(t.run(&["lpos", "k", "foo", "rank", "-1"]), Reply::Nil);
    assert_eq!(t.run(&["lpos", "k", "32767", "rank", "-1"]), int(7));
    check_invariants(list(&mut t, "k"), with_fill(-2));
}

#[test]
fn node_sizes_follow_the_fill_setting() {
    let mut t = shard_with_fill(1);
    for i in 0..10 {
        t.run(&["rpush", "one", &i.to_string()]);
    }
    assert_eq!(list(&mut t, "one").nodes.len(), 10);
    let mut t = shard_with_fill(5);
    for i in 0..12 {
        t.run(&["lpush", "five", &i.to_string()]);
    }
    assert_eq!(list(&mut t, "five").nodes.len(), 3);
    let mut t = shard_with_fill(-1);
    let value = "v".repeat(1000);
    for _ in 0..9 {
        t.run(&["rpush", "kb", &value]);
    }
    // 4 KiB nodes hold four 1000-byte entries.
    assert_eq!(list(&mut t, "kb").nodes.len(), 3);
    let mut t = shard_with_fill(1000);
    for _ in 0..20 {
        t.run(&["rpush", "safety", &value]);
    }
    // Positive fills are capped at 8 KiB per node.
    assert_eq!(list(&mut t, "safety").nodes.len(), 3);
    check_invariants(list(&mut t, "safety"), with_fill(1000));
    let mut t = shard_with_fill(-100);
    t.run(&["rpush", "huge", &"h".repeat(70_000), "a", "b"]);
    assert_eq!(list(&mut t, "huge").nodes.len(), 2);
}

#[test]
fn long_lists_index_consistently() {
    let mut t = shard_with_fill(5);
    for i in 0..500 {
        t.run(&["rpush", "l", &i.to_string()]);
    }
    for i in 0..500 {
        assert_eq!(
            t.run(&["lindex", "l", &i.to_string()]),
            bulk(&i.to_string())
        );
        let back = format!("-{}", i + 1);
        assert_eq!(t.run(&["lindex", "l", &back]), bulk(&(499 - i).to_string()));
    }
    let mut sum = 0i64;
    for _ in 0..250 {
        for cmd in ["lpop", "rpop"] {
            match t.run(&[cmd, "l"]) {
                Reply::Bulk(b) => sum += std::str::from_utf8(&b).unwrap().parse::<i64>().unwrap(),
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(sum, (0..500).sum::<i64>());
    assert!(!t.shard.dbs[0].contains(b"l", t.now_ms));
}

#[test]
fn middle_edits_on_a_long_list() {
    let fill = 4;
    let mut t = shard_with_fill(fill);
    let mut model: VecDeque<String> = (0..200).map(|i| (i % 7).to_string()).collect();
    for v in &model {
        t.run(&["rpush", "l", v]);
    }
    assert_eq!(t.run(&["linsert", "l", "after", "5", "mid"]), int(201));
    model.insert(6, "mid".into());
    assert_eq!(t.run(&["lset", "l", "100", &"big".repeat(1000)]), ok());
    model[100] = "big".repeat(1000);
    assert_eq!(t.run(&["lset", "l", "-50", "x"]), ok());
    let n = model.len();
    model[n - 50] = "x".into();
    assert_eq!(t.run(&["lrem", "l", "-3", "3"]), int(3));
    let mut removed = 0;
    for i in (0..model.len()).rev() {
        if removed < 3 && model[i] == "3" {
            model.remove(i);
            removed += 1;
        }
    }
    assert_eq!(t.run(&["ltrim", "l", "10", "-10"]), ok());
    let n = model.len();
    let model: Vec<String> = model.into_iter().skip(10).take(n - 19).collect();
    let want: Vec<&str> = model.iter().map(String::as_str).collect();
    assert_eq!(range(&mut t, "l"), bulks(&want));
    check_invariants(list(&mut t, "l"), with_fill(fill));
}

#[test]
fn expired_list_is_replaced_by_push() {
    let mut t = TestShard::new();
    t.run(&["rpush", "l", "old"]);
    t.shard.dbs[0].set_expire(b"l", t.now_ms + 10);
    t.advance(20);
    assert_eq!(t.run(&["rpushx", "l", "x"]), int(0));
    assert_eq!(t.run(&["rpush", "l", "new"]), int(1));
    assert_eq!(range(&mut t, "l"), bulks(&["new"]));
}

fn shard_with(fill: i64, compress_depth: usize) -> TestShard {
    let mut t = shard_with_fill(fill);
    t.shard.config.list_compress_depth = compress_depth;
    t
}

fn compressed_nodes(l: &ListValue) -> usize {
    l.nodes.iter().filter(|n| n.is_compressed()).count()
}

/// The list at `key` keeps the node rules of the shard's settings.
fn check_nodes(t: &mut TestShard, key: &str) {
    let options = ListOptions::of(&t.shard.config);
    check_invariants(list(t, key), options);
}

/// The whole list at `key` by LRANGE agrees with `model`, and its nodes keep the rules
/// of the shard's settings.
fn check_key(t: &mut TestShard, key: &str, model: &VecDeque<Bytes>) {
    let want = arr(model.iter().cloned().map(Reply::Bulk).collect());
    assert_eq!(range(t, key), want, "{key}");
    if !model.is_empty() {
        check_nodes(t, key);
    }
}

fn as_strs(model: &VecDeque<Bytes>, from: usize, to: usize) -> Reply {
    arr(model.range(from..to).cloned().map(Reply::Bulk).collect())
}

/// Every list command on a list long enough to have compressed nodes between its ends,
/// each reply checked against a model and the nodes checked after each command, at
/// depths 0, 1 and 2, with small elements (many per node) and large ones (a few per
/// node).
#[test]
fn every_command_on_compressed_lists() {
    for depth in [0, 1, 2] {
        for large in [false, true] {
            every_command_at(depth, large);
        }
    }
}

fn every_command_at(depth: usize, large: bool) {
    let element = |i: usize| -> String {
        if large {
            format!("{i:05}:{}", "large-element-".repeat(40))
        } else {
            format!("elem:{i:04}")
        }
    };
    let fill = if large { -2 } else { 16 };
    let mut t = shard_with(fill, depth);
    let mut m: VecDeque<Bytes> = VecDeque::new();
    let what = format!("depth {depth}, large {large}");
    for chunk in (0..300).collect::<Vec<usize>>().chunks(50) {
        let values: Vec<String> = chunk.iter().map(|&i| element(i)).collect();
        let mut args = vec!["rpush", "l"];
        args.extend(values.iter().map(String::as_str));
        t.run(&args);
        m.extend(values.into_iter().map(Bytes::from));
    }
    for i in 300..310 {
        assert_eq!(t.run(&["lpush", "l", &element(i)]), int(m.len() as i64 + 1));
        m.push_front(Bytes::from(element(i)));
    }
    check_key(&mut t, "l", &m);
    let compressed = compressed_nodes(list(&mut t, "l"));
    if depth == 0 {
        assert_eq!(compressed, 0, "{what}");
    } else {
        assert!(
            compressed + 2 * depth + 1 >= list(&mut t, "l").nodes.len(),
            "{what}: {compressed} compressed"
        );
    }
    assert_eq!(t.run(&["object", "encoding", "l"]), bulk("quicklist"));
    assert_eq!(t.run(&["llen", "l"]), int(m.len() as i64));

    // LINDEX and LRANGE, from both ends, through the compressed middle.
    let len = m.len() as i64;
    for i in (0..len).step_by(7) {
        let want = Reply::Bulk(m[i as usize].clone());
        assert_eq!(t.run(&["lindex", "l", &i.to_string()]), want);
        assert_eq!(t.run(&["lindex", "l", &(i - len).to_string()]), want);
    }
    let mid = m.len() / 2;
    for (start, stop) in [(mid - 30, mid + 30), (1, mid), (mid, m.len() - 2)] {
        assert_eq!(
            t.run(&["lrange", "l", &start.to_string(), &stop.to_string()]),
            as_strs(&m, start, stop + 1)
        );
    }
    assert_eq!(
        t.run(&["lrange", "l", "-40", "-20"]),
        as_strs(&m, m.len() - 40, m.len() - 19)
    );

    // LSET in the middle: the same size, a much larger and a much smaller element.
    for (index, value) in [
        (mid, element(9000)),
        (mid + 1, "z".repeat(20_000)),
        (mid + 2, "s".to_string()),
        (mid - 1, "12345".to_string()),
    ] {
        assert_eq!(t.run(&["lset", "l", &index.to_string(), &value]), ok());
        m[index] = Bytes::from(value);
        check_key(&mut t, "l", &m);
    }

    // LINSERT before and after pivots deep inside.
    let pivot = String::from_utf8(m[mid + 40].to_vec()).unwrap();
    assert_eq!(
        t.run(&["linsert", "l", "before", &pivot, "dup"]),
        int(len + 1)
    );
    m.insert(mid + 40, Bytes::from("dup"));
    let pivot = String::from_utf8(m[mid - 40].to_vec()).unwrap();
    assert_eq!(
        t.run(&["linsert", "l", "after", &pivot, "dup"]),
        int(len + 2)
    );
    m.insert(mid - 39, Bytes::from("dup"));
    assert_eq!(t.run(&["linsert", "l", "after", "nosuch", "x"]), int(-1));
    check_key(&mut t, "l", &m);

    // LPOS finds both copies from either end.
    let dups: Vec<i64> = (0..m.len())
        .filter(|&i| m[i] == "dup")
        .map(|i| i as i64)
        .collect();
    assert_eq!(t.run(&["lpos", "l", "dup"]), int(dups[0]));
    assert_eq!(t.run(&["lpos", "l", "dup", "rank", "-1"]), int(dups[1]));
    assert_eq!(
        t.run(&["lpos", "l", "dup", "count", "0"]),
        arr(dups.iter().map(|&p| int(p)).collect())
    );
    assert_eq!(
        t.run(&[
            "lpos",
            "l",
            "dup",
            "rank",
            "2",
            "maxlen",
            &dups[1].to_string()
        ]),
        Reply::Nil
    );
    let target = String::from_utf8(m[mid + 10].to_vec()).unwrap();
    assert_eq!(t.run(&["lpos", "l", &target]), int(mid as i64 + 10));

    // LREM from the head, the tail, and all.
    for (count, value) in [("1", "dup"), ("-1", "dup"), ("0", target.as_str())] {
        let before = m.len();
        let limit = if count == "0" { usize::MAX } else { 1 };
        let mut positions: Vec<usize> = (0..m.len()).filter(|&i| m[i] == value).collect();
        if count == "-1" {
            positions.reverse();
        }
        positions.truncate(limit);
        positions.sort_unstable();
        for &p in positions.iter().rev() {
            m.remove(p);
        }
        assert_eq!(
            t.run(&["lrem", "l", count, value]),
            int((before - m.len()) as i64)
        );
        check_key(&mut t, "l", &m);
    }
    assert_eq!(t.run(&["lrem", "l", "0", "dup"]), int(0));

    // LTRIM both ends into the compressed region.
    assert_eq!(t.run(&["ltrim", "l", "25", "-31"]), ok());
    m.drain(..25);
    m.truncate(m.len() - 30);
    check_key(&mut t, "l", &m);

    // Pops and pushes at both ends.
    let popped = |m: &mut VecDeque<Bytes>, end: End, n: usize| -> Reply {
        arr((0..n)
            .map_while(|_| match end {
                End::Left => m.pop_front(),
                End::Right => m.pop_back(),
            })
            .map(Reply::Bulk)
            .collect())
    };
    let want = popped(&mut m, End::Left, 3);
    assert_eq!(t.run(&["lpop", "l", "3"]), want);
    let want = popped(&mut m, End::Right, 3);
    assert_eq!(t.run(&["rpop", "l", "3"]), want);
    let want = Reply::Bulk(m.pop_front().unwrap());
    assert_eq!(t.run(&["lpop", "l"]), want);
    assert_eq!(t.run(&["lpushx", "l", "hx"]), int(m.len() as i64 + 1));
    m.push_front(Bytes::from("hx"));
    assert_eq!(t.run(&["rpushx", "l", "tx"]), int(m.len() as i64 + 1));
    m.push_back(Bytes::from("tx"));
    let want = arr(vec![bulk("l"), popped(&mut m, End::Left, 2)]);
    assert_eq!(t.run(&["lmpop", "1", "l", "left", "count", "2"]), want);
    let want = arr(vec![bulk("l"), popped(&mut m, End::Right, 2)]);
    assert_eq!(
        t.run(&["blmpop", "0", "1", "l", "right", "count", "2"]),
        want
    );
    let want = arr(vec![bulk("l"), Reply::Bulk(m.pop_front().unwrap())]);
    assert_eq!(t.run(&["blpop", "l", "0"]), want);
    let want = arr(vec![bulk("l"), Reply::Bulk(m.pop_back().unwrap())]);
    assert_eq!(t.run(&["brpop", "l", "0"]), want);
    check_key(&mut t, "l", &m);

    // Moves between two compressed lists.
    let mut d: VecDeque<Bytes> = m.iter().rev().take(100).cloned().collect();
    let mut args = vec!["rpush".to_string(), "d".to_string()];
    args.extend(d.iter().map(|b| String::from_utf8(b.to_vec()).unwrap()));
    t.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    for (cmd, from, to) in [
        (
            vec!["lmove", "l", "d", "left", "right"],
            End::Left,
            End::Right,
        ),
        (vec!["rpoplpush", "l", "d"], End::Right, End::Left),
        (
            vec!["blmove", "d", "l", "right", "left", "0"],
            End::Right,
            End::Left,
        ),
        (vec!["brpoplpush", "d", "l", "0"], End::Right, End::Left),
    ] {
        let (src, dst) = if cmd[1] == "l" {
            (&mut m, &mut d)
        } else {
            (&mut d, &mut m)
        };
        let value = match from {
            End::Left => src.pop_front(),
            End::Right => src.pop_back(),
        }
        .unwrap();
        match to {
            End::Left => dst.push_front(value.clone()),
            End::Right => dst.push_back(value.clone()),
        }
        assert_eq!(t.run(&cmd), Reply::Bulk(value), "{cmd:?}");
    }
    check_key(&mut t, "l", &m);
    check_key(&mut t, "d", &d);

    // SORT … STORE writes a list under the same rules.
    assert_eq!(
        t.run(&["sort", "l", "alpha", "store", "sorted"]),
        int(m.len() as i64)
    );
    let mut sorted: Vec<Bytes> = m.iter().cloned().collect();
    sorted.sort();
    check_key(&mut t, "sorted", &sorted.into_iter().collect());

    // Emptying the list through the compressed nodes.
    while !m.is_empty() {
        let n = m.len().min(37);
        let want = popped(&mut m, End::Right, n);
        assert_eq!(t.run(&["rpop", "l", &n.to_string()]), want);
        check_key(&mut t, "l", &m);
    }
    assert!(!t.shard.dbs[0].contains(b"l", t.now_ms));
}

/// Compression is at work only past the ends, and only where it pays: nodes under
/// MIN_COMPRESS_BYTES or of incompressible bytes stay packed.
#[test]
fn which_nodes_are_compressed() {
    // Depth 1, one 500-byte element per node: everything but the two ends.
    let mut t = shard_with(1, 1);
    for c in b'a'..=b'h' {
        t.run(&["rpush", "l", &(c as char).to_string().repeat(500)]);
    }
    let l = list(&mut t, "l");
    let states: Vec<bool> = l.nodes.iter().map(Node::is_compressed).collect();
    assert_eq!(
        states,
        [false, true, true, true, true, true, true, false],
        "depth 1"
    );
    // Depth 3: the three at each end stay packed.
    t.shard.config.list_compress_depth = 3;
    t.run(&["del", "l"]);
    for c in b'a'..=b'h' {
        t.run(&["rpush", "l", &(c as char).to_string().repeat(500)]);
    }
    let states: Vec<bool> = list(&mut t, "l")
        .nodes
        .iter()
        .map(Node::is_compressed)
        .collect();
    assert_eq!(
        states,
        [false, false, false, true, true, false, false, false]
    );
    // Deeper than half the list: nothing to compress.
    t.shard.config.list_compress_depth = 4;
    t.run(&["del", "l"]);
    for c in b'a'..=b'h' {
        t.run(&["rpush", "l", &(c as char).to_string().repeat(500)]);
    }
    assert_eq!(compressed_nodes(list(&mut t, "l")), 0);

    // Small nodes (under 48 bytes) and random bytes are not worth it.
    t.shard.config.list_compress_depth = 1;
    t.run(&["del", "small", "random"]);
    for i in 0..10 {
        t.run(&["rpush", "small", &"s".repeat(40 + i % 2)]);
    }
    assert_eq!(compressed_nodes(list(&mut t, "small")), 0);
    let mut rand = crate::testing::xorshift(7);
    for _ in 0..10 {
        let bytes: Vec<u8> = (0..500).map(|_| rand(256) as u8).collect();
        t.run_bytes(&[
            Bytes::from_static(b"rpush"),
            Bytes::from_static(b"random"),
            Bytes::from(bytes),
        ]);
    }
    assert_eq!(compressed_nodes(list(&mut t, "random")), 0);
    // 44 bytes of entry plus its header: 46 bytes stays packed, 48 compresses.
    for (len, compressed) in [(44, 0), (46, 1)] {
        t.run(&["del", "edge"]);
        for _ in 0..3 {
            t.run(&["rpush", "edge", &"e".repeat(len)]);
        }
        let l = list(&mut t, "edge");
        assert_eq!(l.nodes.get(1).bytes(), len + 2);
        assert_eq!(compressed_nodes(l), compressed, "{len}");
    }
}

/// CONFIG SET list-compress-depth applies to the nodes a list next modifies.
#[test]
fn depth_changes_apply_to_nodes_as_they_are_modified() {
    let mut t = shard_with(1, 0);
    let values: Vec<String> = (0..10).map(|i| format!("{i}{}", "v".repeat(300))).collect();
    for v in &values {
        t.run(&["rpush", "l", v]);
    }
    assert_eq!(compressed_nodes(list(&mut t, "l")), 0);
    // Depth 1 now: an LSET compresses the node it changes; a push, which adds a node,
    // the nodes next to the depth at both ends; the others wait for an edit.
    t.shard.config.list_compress_depth = 1;
    t.run(&["lset", "l", "5", &values[5]]);
    let states = |t: &mut TestShard| -> Vec<usize> {
        list(t, "l")
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.is_compressed())
            .map(|(i, _)| i)
            .collect()
    };
    assert_eq!(states(&mut t), [5]);
    t.run(&["rpush", "l", &values[0]]);
    assert_eq!(states(&mut t), [1, 5, 9]);
    // Back to 0: compressed nodes stay so until changed, and read back intact.
    t.shard.config.list_compress_depth = 0;
    t.run(&["lset", "l", "9", "x"]);
    assert_eq!(states(&mut t), [1, 5]);
    let mut want: Vec<&str> = values.iter().map(String::as_str).collect();
    want[9] = "x";
    want.push(&values[0]);
    assert_eq!(range(&mut t, "l"), bulks(&want));
    // Depth 2: the LSET expands and keeps packed the node it changes.
    t.shard.config.list_compress_depth = 2;
    t.run(&["lset", "l", "1", "y"]);
    assert_eq!(states(&mut t), [5]);
    t.run(&["ltrim", "l", "4", "-1"]);
    want[1] = "y";
    want.drain(..4);
    // The trim moved every node by four places, so every one is settled: node 5, now
    // node 1, is packed; the three between the depths compressed.
    assert_eq!(states(&mut t), [2, 3, 4]);
    assert_eq!(range(&mut t, "l"), bulks(&want));
}

/// list.tcl: "reg node check compression" with insert and pop, combined with trim, and
/// with lset, at depth 2 with one element per node.
#[test]
fn list_tcl_compression_with_regular_nodes() {
    let mut t = shard_with(1, 2);
    let s = |c: char| c.to_string().repeat(500);
    for c in ['a', 'b', 'c', 'd'] {
        t.run(&["lpush", "list1", &s(c)]);
    }
    for c in ['e', 'f', 'g', 'j'] {
        t.run(&["linsert", "list1", "after", &s('d'), &s(c)]);
    }
    check_nodes(&mut t, "list1");
    assert!(compressed_nodes(list(&mut t, "list1")) > 0);
    for c in ['d', 'j', 'g', 'f', 'e', 'c', 'b', 'a'] {
        assert_eq!(t.run(&["lpop", "list1"]), bulk(&s(c)));
    }

    t.run(&["lpush", "list2", &s('a')]);
    t.run(&["linsert", "list2", "after", &s('a'), &s('b')]);
    t.run(&["rpush", "list2", &s('c')]);
    assert_eq!(t.run(&["lindex", "list2", "1"]), bulk(&s('b')));
    assert_eq!(t.run(&["ltrim", "list2", "1", "-1"]), ok());
    assert_eq!(t.run(&["llen", "list2"]), int(2));

    t.run(&["lpush", "list3", &s('a')]);
    assert_eq!(t.run(&["lset", "list3", "0", &s('b')]), ok());
    assert_eq!(t.run(&["lindex", "list3", "0"]), bulk(&s('b')));
    t.run(&["lpush", "list3", &s('c')]);
    assert_eq!(t.run(&["lset", "list3", "0", &s('d')]), ok());
    assert_eq!(t.run(&["lindex", "list3", "0"]), bulk(&s('d')));
}

/// list-3.tcl's compression regressions (Redis checks only that the server survives;
/// here every list is also checked against its expected contents and node rules).
#[test]
fn list_3_tcl_compression_regressions() {
    let x = |n: usize, tail: &str| format!("{}{tail}", "x".repeat(n));
    let check = |t: &mut TestShard, want: &[&str]| {
        assert_eq!(range(t, "key"), bulks(want));
        check_nodes(t, "key");
    };

    // Check compression with recompress.
    let mut t = shard_with(16, 1);
    let (b, e) = ("b".repeat(50_000), "e".repeat(5000));
    t.run(&["rpush", "key", "a"]);
    t.run(&["rpush", "key", &b]);
    t.run(&["rpush", "key", "c"]);
    t.run(&["lset", "key", "1", "d"]);
    t.run(&["rpop", "key"]);
    t.run(&["rpush", "key", &e]);
    assert_eq!(t.run(&["linsert", "key", "before", "f", "1"]), int(-1));
    t.run(&["rpush", "key", "g"]);
    check(&mut t, &["a", "d", &e, "g"]);

    // Crash due to wrongly recompress after lrem.
    let mut t = shard_with(-2, 2);
    let big = x(10_000, "969");
    let (a5, b5, c5) = ("a".repeat(5000), "b".repeat(5000), "c".repeat(5000));
    t.run(&["lpush", "key", "a"]);
    t.run(&["lpush", "key", &a5]);
    t.run(&["lpush", "key", &b5]);
    t.run(&["lpush", "key", &c5]);
    t.run(&["rpush", "key", &big]);
    t.run(&["rpush", "key", "b"]);
    assert_eq!(t.run(&["lrem", "key", "1", "a"]), int(1));
    t.run(&["rpop", "key"]);
    assert_eq!(t.run(&["lrem", "key", "1", &big]), int(1));
    t.run(&["rpush", "key", "crash"]);
    check(&mut t, &[&c5, &b5, &a5, "crash"]);

    // LINSERT correctly recompresses a full node after inserting before / after it.
    let big = x(8192, "969");
    let mut t = shard_with(-2, 1);
    t.run(&["rpush", "key", "b"]);
    t.run(&["rpush", "key", "c"]);
    t.run(&["lset", "key", "-1", &big]);
    t.run(&["lpush", "key", "a"]);
    t.run(&["rpush", "key", "d"]);
    assert_eq!(t.run(&["linsert", "key", "before", "b", "f"]), int(5));
    assert_eq!(t.run(&["rpop", "key"]), bulk("d"));
    check(&mut t, &["a", "f", "b", &big]);
    t.run(&["del", "key"]);
    t.run(&["rpush", "key", "b"]);
    t.run(&["rpush", "key", "c"]);
    t.run(&["lset", "key", "0", &big]);
    t.run(&["lpush", "key", "a"]);
    t.run(&["rpush", "key", "d"]);
    assert_eq!(t.run(&["linsert", "key", "after", "c", "f"]), int(5));
    assert_eq!(t.run(&["lpop", "key"]), bulk("a"));
    check(&mut t, &[&big, "c", "f", "d"]);

    // Regression for quicklist #3343, with compression on.
    let mut t = shard_with(16, 1);
    t.run(&["lpush", "mylist", "401"]);
    t.run(&["lpush", "mylist", "392"]);
    t.run(&["rpush", "mylist", &x(5105, "799")]);
    t.run(&["lset", "mylist", "-1", &x(1014, "702")]);
    t.run(&["lpop", "mylist"]);
    t.run(&["lset", "mylist", "-1", &x(4149, "852")]);
    t.run(&["linsert", "mylist", "before", "401", &x(9927, "12")]);
    assert_eq!(
        t.run(&["lrange", "mylist", "0", "-1"]),
        bulks(&[&x(9927, "12"), "401", &x(4149, "852")])
    );
}

/// list-3.tcl's "Stress tester for #3343-alike bugs" at depths 2, 1 and 0: random
/// LPUSH, RPUSH, LPOP, RPOP, LSET, LINSERT and LREM with small and large elements
/// (`generate_cmd_on_list_key`), every reply and the final list checked against a model.
#[test]
fn list_3_tcl_stress_at_each_depth() {
    for depth in [2, 1, 0] {
        let mut t = shard_with(16, depth);
        let mut rand = crate::testing::xorshift(depth as u64 + 3343);
        let mut m: VecDeque<Bytes> = VecDeque::new();
        for _ in 0..1000 {
            let small_signed_count = 5 - rand(10) as i64;
            let ele = if rand(2) == 0 {
                rand(1000).to_string()
            } else {
                format!("{}{}", "x".repeat(rand(10_000) as usize), rand(1000))
            };
            let reply = match rand(7) {
                0 => {
                    m.push_front(Bytes::from(ele.clone()));
                    (t.run(&["lpush", "key", &ele]), int(m.len() as i64))
                }
                1 => {
                    m.push_back(Bytes::from(ele.clone()));
                    (t.run(&["rpush", "key", &ele]), int(m.len() as i64))
                }
                2 => {
                    let want = m.pop_front().map_or(Reply::Nil, Reply::Bulk);
                    (t.run(&["lpop", "key"]), want)
                }
                3 => {
                    let want = m.pop_back().map_or(Reply::Nil, Reply::Bulk);
                    (t.run(&["rpop", "key"]), want)
                }
                4 => {
                    let index = small_signed_count.to_string();
                    let want = match model_index(m.len(), small_signed_count) {
                        Some(i) => {
                            m[i] = Bytes::from(ele.clone());
                            ok()
                        }
                        None if m.is_empty() => err(error::NO_SUCH_KEY),
                        None => err(error::OUT_OF_RANGE),
                    };
                    (t.run(&["lset", "key", &index, &ele]), want)
                }
                5 => {
                    let pivot = rand(1000).to_string();
                    let after = rand(2) == 0;
                    let want = match m.iter().position(|v| v == pivot.as_bytes()) {
                        Some(p) => {
                            m.insert(p + usize::from(after), Bytes::from(ele.clone()));
                            int(m.len() as i64)
                        }
                        None if m.is_empty() => int(0),
                        None => int(-1),
                    };
                    let place = if after { "after" } else { "before" };
                    (t.run(&["linsert", "key", place, &pivot, &ele]), want)
                }
                _ => {
                    let other = match m.len() {
                        0 => Bytes::new(),
                        n => m[rand(n as u64) as usize].clone(),
                    };
                    let want = match m.iter().position(|v| *v == other) {
                        Some(p) => {
                            m.remove(p);
                            int(1)
                        }
                        None => int(0),
                    };
                    let args = [
                        Bytes::from_static(b"lrem"),
                        Bytes::from_static(b"key"),
                        Bytes::from_static(b"1"),
                        other,
                    ];
                    (t.run_bytes(&args), want)
                }
            };
            assert_eq!(reply.0, reply.1, "depth {depth}");
            if !m.is_empty() {
                check_nodes(&mut t, "key");
            }
        }
        check_key(&mut t, "key", &m);
    }
}

#[derive(Debug, Clone)]
enum Op {
    Push(End, Bytes),
    Pop(End),
    PopMany(End, usize),
    Insert(Bytes, bool, Bytes),
    Remove(i64, Bytes),
    Trim(i64, i64),
    Set(i64, Bytes),
    /// LPOS value RANK rank COUNT count MAXLEN maxlen.
    Pos(Bytes, i64, usize, usize),
}

/// Short values that repeat (so LINSERT, LREM and LPOS find them), long ones that compress
/// well, and random bytes that do not compress.
fn value() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        4 => prop::sample::select(vec!["a", "b", "1", "-2", "300", "007", ""]).prop_map(Bytes::from),
        1 => (1usize..3000).prop_map(|n| Bytes::from("x".repeat(n))),
        1 => (0usize..40, 1usize..200).prop_map(|(k, n)| Bytes::from(format!("item:{k}:").repeat(n))),
        1 => prop::collection::vec(any::<u8>(), 1..400).prop_map(Bytes::from),
    ]
}

fn end() -> impl Strategy<Value = End> {
    prop_oneof![Just(End::Left), Just(End::Right)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (end(), value()).prop_map(|(e, v)| Op::Push(e, v)),
        2 => end().prop_map(Op::Pop),
        1 => (end(), 0usize..8).prop_map(|(e, n)| Op::PopMany(e, n)),
        2 => (value(), any::<bool>(), value()).prop_map(|(p, a, v)| Op::Insert(p, a, v)),
        1 => (-3i64..4, value()).prop_map(|(c, v)| Op::Remove(c, v)),
        1 => (-40i64..40, -40i64..40).prop_map(|(a, b)| Op::Trim(a, b)),
        2 => (-60i64..60, value()).prop_map(|(i, v)| Op::Set(i, v)),
        1 => (value(), prop_oneof![-3i64..0, 1i64..4], 0usize..4, 0usize..30)
            .prop_map(|(v, r, c, m)| Op::Pos(v, r, c, m)),
    ]
}

fn model_index(len: usize, index: i64) -> Option<usize> {
    let i = if index < 0 { index + len as i64 } else { index };
    (0..len as i64).contains(&i).then_some(i as usize)
}

fn pop_model(m: &mut VecDeque<Bytes>, end: End) -> Option<Bytes> {
    match end {
        End::Left => m.pop_front(),
        End::Right => m.pop_back(),
    }
}

fn apply(l: &mut ListValue, m: &mut VecDeque<Bytes>, op: &Op, options: ListOptions) {
    match op {
        Op::Push(e, v) => {
            l.push(*e, v, options);
            match e {
                End::Left => m.push_front(v.clone()),
                End::Right => m.push_back(v.clone()),
            }
        }
        Op::Pop(e) => assert_eq!(l.pop(*e, options), pop_model(m, *e)),
        Op::PopMany(e, n) => {
            let want: Vec<Bytes> = (0..*n).map_while(|_| pop_model(m, *e)).collect();
            assert_eq!(l.pop_many(*e, *n, options), want);
        }
        Op::Insert(pivot, after, v) => {
            let found = m.iter().position(|x| x == pivot);
            assert_eq!(
                l.insert_at_pivot(pivot, *after, v, options),
                found.is_some()
            );
            if let Some(p) = found {
                m.insert(if *after { p + 1 } else { p }, v.clone());
            }
        }
        Op::Remove(count, v) => {
            let limit = if *count == 0 {
                usize::MAX
            } else {
                count.unsigned_abs() as usize
            };
            let mut positions: Vec<usize> = (0..m.len()).filter(|&i| m[i] == *v).collect();
            if *count < 0 {
                positions.reverse();
            }
            positions.truncate(limit);
            positions.sort_unstable();
            for &p in positions.iter().rev() {
                m.remove(p);
            }
            assert_eq!(l.remove_matching(v, *count, options), positions.len());
        }
        Op::Trim(start, stop) => {
            let len = m.len();
            let (front, back) = match index_range(*start, *stop, len) {
                Some((s, e)) => (s, len - 1 - e),
                None => (len, 0),
            };
            l.drop_elements(End::Left, front, options);
            l.drop_elements(End::Right, back, options);
            m.drain(..front);
            let keep = m.len() - back;
            m.truncate(keep);
        }
        Op::Set(index, v) => {
            let i = model_index(m.len(), *index);
            assert_eq!(l.set(*index, v, options), i.is_some());
            if let Some(i) = i {
                m[i] = v.clone();
            }
        }
        Op::Pos(v, rank, count, maxlen) => {
            let scan = if *maxlen == 0 { usize::MAX } else { *maxlen };
            let want = if *count == 0 { usize::MAX } else { *count };
            let skip = rank.unsigned_abs() as usize - 1;
            let mut positions: Vec<usize> = (0..m.len()).collect();
            if *rank < 0 {
                positions.reverse();
            }
            let expected: Vec<usize> = positions
                .into_iter()
                .take(scan)
                .filter(|&i| m[i] == *v)
                .skip(skip)
                .take(want)
                .collect();
            let target = Encoded::new(v);
            let got: Vec<usize> = if *rank > 0 {
                matching_positions(l.iter(), scan, &target, skip, want)
            } else {
                matching_positions(l.iter_rev(), scan, &target, skip, want)
                    .into_iter()
                    .map(|p| m.len() - 1 - p)
                    .collect()
            };
            assert_eq!(got, expected);
        }
    }
}

/// Everything a client can read of `l` agrees with the model: both iteration orders,
/// every index from both ends, and ranges starting anywhere.
fn check_contents(l: &ListValue, m: &VecDeque<Bytes>) {
    let want: Vec<Bytes> = m.iter().cloned().collect();
    assert_eq!(l.len(), want.len());
    assert_eq!(l.iter().collect::<Vec<_>>(), want);
    let mut back: Vec<Bytes> = l.iter_rev().collect();
    back.reverse();
    assert_eq!(back, want);
    for (i, w) in want.iter().enumerate() {
        assert_eq!(l.get(i as i64).as_ref(), Some(w));
        assert_eq!(l.get(i as i64 - want.len() as i64).as_ref(), Some(w));
        let from: Vec<Bytes> = l.iter_from(i).take(3).collect();
        assert_eq!(&from[..], &want[i..(i + 3).min(want.len())]);
    }
    assert_eq!(l.get(want.len() as i64), None);
    assert_eq!(l.get(-(want.len() as i64) - 1), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn list_matches_a_deque_model(
        fill in prop::sample::select(vec![1i64, 2, 3, 5, -1, -2]),
        compress_depth in 0usize..4,
        ops in prop::collection::vec(op(), 1..120),
    ) {
        let options = ListOptions { fill, compress_depth };
        let mut l = ListValue::new();
        let mut m: VecDeque<Bytes> = VecDeque::new();
        for op in &ops {
            apply(&mut l, &mut m, op, options);
            check_invariants(&l, options);
            check_contents(&l, &m);
        }
    }

    /// `list-compress-depth` changed between edits (as CONFIG SET does): the contents
    /// stay right, and a node an edit changes is left as the depth then asks (a push
    /// lands in a packed end node, whatever earlier depths compressed).
    #[test]
    fn depth_changes_between_edits_keep_the_contents(
        fill in prop::sample::select(vec![1i64, 2, -1]),
        steps in prop::collection::vec((0usize..4, op()), 1..100),
    ) {
        let mut l = ListValue::new();
        let mut m: VecDeque<Bytes> = VecDeque::new();
        for (compress_depth, op) in &steps {
            let options = ListOptions { fill, compress_depth: *compress_depth };
            apply(&mut l, &mut m, op, options);
            check_contents(&l, &m);
            if let Op::Push(end, _) = op {
                prop_assert!(!l.nodes.get(l.end_node(*end)).is_compressed());
            }
        }
    }
}

/// Redis's events for the list commands (pubsub.tcl's "list events test" and t_list.c):
/// one push event per command, linsert / lset / ltrim / lrem when they change the list,
/// pops by end, LMOVE's push on the destination before the pop on the source, and del
/// after the command's event when the list is emptied.
#[test]
fn keyspace_events() {
    let mut t = TestShard::new();
    t.notify_all();
    let none = Vec::<String>::new();
    assert_eq!(
        t.events_of(&["lpush", "l", "a", "b"]),
        ["n new 0:l", "l lpush 0:l"]
    );
    assert_eq!(t.events_of(&["rpush", "l", "c"]), ["l rpush 0:l"]);
    assert_eq!(t.events_of(&["lpushx", "l", "z"]), ["l lpush 0:l"]);
    assert_eq!(t.events_of(&["rpushx", "l", "z"]), ["l rpush 0:l"]);
    assert_eq!(t.events_of(&["lpushx", "nokey", "z"]), none);
    assert_eq!(
        t.events_of(&["linsert", "l", "before", "a", "x"]),
        ["l linsert 0:l"]
    );
    assert_eq!(t.events_of(&["linsert", "l", "before", "nope", "x"]), none);
    assert_eq!(t.events_of(&["linsert", "nokey", "after", "a", "x"]), none);
    assert_eq!(t.events_of(&["lset", "l", "0", "y"]), ["l lset 0:l"]);
    assert_eq!(t.events_of(&["lset", "l", "100", "y"]), none);
    assert_eq!(t.events_of(&["lrem", "l", "0", "nope"]), none);
    assert_eq!(t.events_of(&["lrem", "l", "0", "x"]), ["l lrem 0:l"]);
    assert_eq!(t.events_of(&["ltrim", "l", "0", "-1"]), ["l ltrim 0:l"]);
    assert_eq!(t.events_of(&["ltrim", "nokey", "0", "1"]), none);
    assert_eq!(t.events_of(&["lpop", "l"]), ["l lpop 0:l"]);
    assert_eq!(t.events_of(&["rpop", "l", "2"]), ["l rpop 0:l"]);
    assert_eq!(t.events_of(&["lpop", "l", "0"]), none);
    assert_eq!(t.events_of(&["lpop", "nokey"]), none);
    assert_eq!(
        t.events_of(&["ltrim", "l", "5", "1"]),
        ["l ltrim 0:l", "g del 0:l"]
    );

    t.run(&["rpush", "l", "a", "a"]);
    assert_eq!(
        t.events_of(&["lrem", "l", "0", "a"]),
        ["l lrem 0:l", "g del 0:l"]
    );
    t.run(&["rpush", "l", "a"]);
    assert_eq!(
        t.events_of(&["rpop", "l", "5"]),
        ["l rpop 0:l", "g del 0:l"]
    );

    t.run(&["rpush", "src", "a", "b"]);
    assert_eq!(
        t.events_of(&["lmove", "src", "dst", "left", "right"]),
        ["n new 0:dst", "l rpush 0:dst", "l lpop 0:src"]
    );
    assert_eq!(
        t.events_of(&["rpoplpush", "src", "dst"]),
        ["l lpush 0:dst", "l rpop 0:src", "g del 0:src"]
    );
    assert_eq!(
        t.events_of(&["rpoplpush", "dst", "dst"]),
        ["l lpush 0:dst", "l rpop 0:dst"]
    );
    assert_eq!(
        t.events_of(&["lmove", "nokey", "dst", "left", "left"]),
        none
    );
    t.run(&["set", "str", "v"]);
    assert_eq!(t.events_of(&["lmove", "dst", "str", "left", "left"]), none);

    assert_eq!(
        t.events_of(&["lmpop", "2", "nokey", "dst", "right", "count", "5"]),
        ["l rpop 0:dst", "g del 0:dst"]
    );
    t.run(&["rpush", "b", "x", "y"]);
    assert_eq!(t.events_of(&["blpop", "nokey", "b", "0"]), ["l lpop 0:b"]);
    assert_eq!(
        t.events_of(&["blmove", "b", "c", "right", "left", "0"]),
        ["n new 0:c", "l lpush 0:c", "l rpop 0:b", "g del 0:b"]
    );
    assert_eq!(
        t.events_of(&["blmpop", "0", "1", "c", "left"]),
        ["l lpop 0:c", "g del 0:c"]
    );
    assert_eq!(t.events_of(&["brpop", "nokey", "0"]), none);

    for cmd in [
        &["llen", "nokey"][..],
        &["lindex", "nokey", "0"],
        &["lrange", "nokey", "0", "-1"],
        &["lpos", "nokey", "a"],
    ] {
        assert_eq!(t.events_of(cmd), ["m keymiss 0:nokey"], "{cmd:?}");
    }
}
