use super::*;
use crate::command;
use crate::command::Exec;
use crate::testing::*;

fn d(v: f64) -> Reply {
    Reply::Double(v)
}

fn pair(m: &str, s: f64) -> Reply {
    arr(vec![bulk(m), d(s)])
}

fn flat(entries: &[(&str, f64)]) -> Reply {
    arr(entries.iter().flat_map(|(m, s)| [bulk(m), d(*s)]).collect())
}

fn empty() -> Reply {
    arr(vec![])
}

/// Runs a command as a RESP3 client.
fn run3(t: &mut TestShard, args: &[&str]) -> Reply {
    let args: Vec<Bytes> = args
        .iter()
        .map(|a| Bytes::copy_from_slice(a.as_bytes()))
        .collect();
    let cmd = match command::lookup(&args) {
        Ok(c) => c,
        Err(e) => return e,
    };
    match cmd.exec {
        Exec::Shard(f) => f(&mut Ctx::new(&mut t.shard, t.db, t.now_ms, true), &args),
        Exec::Server(_) => panic!("server command"),
    }
}

fn encoding(t: &TestShard, key: &str) -> &'static str {
    t.shard.dbs[0]
        .peek(key.as_bytes())
        .map_or("none", |e| e.value.encoding())
}

fn shard_with(entries: usize) -> TestShard {
    let mut t = TestShard::new();
    t.shard.config.zset_max_listpack_entries = entries;
    t
}

/// Both encodings: the default thresholds and "always skiplist".
fn both() -> [TestShard; 2] {
    [shard_with(128), shard_with(0)]
}

#[test]
fn zadd_basics_and_replies() {
    for mut t in both() {
        assert_eq!(t.run(&["zadd", "z", "1", "a", "2", "b"]), int(2));
        assert_eq!(t.run(&["zadd", "z", "3", "a", "2", "b", "0", "c"]), int(1));
        assert_eq!(t.run(&["zadd", "z", "ch", "4", "a", "2", "b"]), int(1));
        assert_eq!(t.run(&["zscore", "z", "a"]), d(4.0));
        assert_eq!(t.run(&["zcard", "z"]), int(3));
        assert_eq!(t.run(&["zrange", "z", "0", "-1"]), bulks(&["c", "b", "a"]));
        assert_eq!(t.run(&["zadd", "z", "-inf", "m", "+inf", "n"]), int(2));
        assert_eq!(t.run(&["zscore", "z", "m"]), d(f64::NEG_INFINITY));
        assert_eq!(t.run(&["zscore", "z", "n"]), d(f64::INFINITY));
    }
}

#[test]
fn zadd_options() {
    for mut t in both() {
        assert_eq!(t.run(&["zadd", "z", "xx", "1", "a"]), int(0));
        assert_eq!(t.run(&["exists", "z"]), t.run(&["exists", "z"]));
        assert_eq!(t.run(&["zcard", "z"]), int(0));
        assert_eq!(t.run(&["zadd", "z", "xx", "incr", "1", "a"]), Reply::Nil);
        assert_eq!(t.run(&["zadd", "z", "nx", "10", "a"]), int(1));
        assert_eq!(t.run(&["zadd", "z", "nx", "20", "a", "5", "b"]), int(1));
        assert_eq!(t.run(&["zscore", "z", "a"]), d(10.0));
        assert_eq!(
            t.run(&["zadd", "z", "xx", "ch", "11", "a", "1", "c"]),
            int(1)
        );
        assert_eq!(t.run(&["zscore", "z", "c"]), Reply::Nil);
        // GT/LT only move scores one way but still add new members.
        assert_eq!(
            t.run(&["zadd", "z", "gt", "ch", "5", "a", "1", "c"]),
            int(1)
        );
        assert_eq!(t.run(&["zscore", "z", "a"]), d(11.0));
        assert_eq!(t.run(&["zadd", "z", "gt", "ch", "12", "a"]), int(1));
        assert_eq!(t.run(&["zadd", "z", "lt", "ch", "13", "a"]), int(0));
        assert_eq!(t.run(&["zadd", "z", "lt", "xx", "ch", "1", "a"]), int(1));
        assert_eq!(t.run(&["zscore", "z", "a"]), d(1.0));
        // INCR replies the new score, or nil when skipped.
        assert_eq!(t.run(&["zadd", "z", "incr", "2.5", "a"]), d(3.5));
        assert_eq!(t.run(&["zadd", "z", "nx", "incr", "1", "a"]), Reply::Nil);
        assert_eq!(t.run(&["zadd", "z", "gt", "incr", "-1", "a"]), Reply::Nil);
        assert_eq!(t.run(&["zadd", "z", "lt", "incr", "-1", "a"]), d(2.5));
        assert_eq!(t.run(&["zadd", "z", "incr", "0", "a"]), d(2.5));
        assert_eq!(t.run(&["zadd", "z", "incr", "5", "new"]), d(5.0));
        // Same score: not counted as changed.
        assert_eq!(t.run(&["zadd", "z", "ch", "5", "new"]), int(0));
    }
}

#[test]
fn zadd_errors() {
    let mut t = TestShard::new();
    assert_eq!(
        t.run(&["zadd", "z", "xx", "nx", "1", "a"]),
        err("ERR XX and NX options at the same time are not compatible")
    );
    for opts in [["gt", "nx"], ["lt", "nx"], ["gt", "lt"]] {
        assert_eq!(
            t.run(&["zadd", "z", opts[0], opts[1], "1", "a"]),
            err("ERR GT, LT, and/or NX options at the same time are not compatible")
        );
    }
    assert_eq!(
        t.run(&["zadd", "z", "incr", "1", "a", "2", "b"]),
        err("ERR INCR option supports a single increment-element pair")
    );
    assert_eq!(t.run(&["zadd", "z", "1", "a", "2"]), err(error::SYNTAX));
    assert_eq!(t.run(&["zadd", "z", "nx", "ch"]), err(error::SYNTAX));
    for bad in ["nan", "", "1x", " 1", "abc"] {
        assert_eq!(t.run(&["zadd", "z", bad, "a"]), err(error::NOT_FLOAT));
    }
    // A bad score anywhere means nothing is added.
    assert_eq!(
        t.run(&["zadd", "z", "1", "a", "x", "b"]),
        err(error::NOT_FLOAT)
    );
    assert_eq!(t.run(&["exists", "z"]), t.run(&["exists", "nokey"]));
    assert_eq!(t.run(&["zcard", "z"]), int(0));
    t.run(&["zadd", "z", "inf", "a"]);
    assert_eq!(t.run(&["zincrby", "z", "-inf", "a"]), err(NAN_RESULT));
    assert_eq!(t.run(&["zadd", "z", "incr", "-inf", "a"]), err(NAN_RESULT));
    assert_eq!(t.run(&["zscore", "z", "a"]), d(f64::INFINITY));
    t.run(&["set", "s", "x"]);
    assert_eq!(t.run(&["zadd", "s", "1", "a"]), err(error::WRONGTYPE));
    assert_eq!(t.run(&["zincrby", "s", "1", "a"]), err(error::WRONGTYPE));
    assert_eq!(
        t.run(&["zadd", "z"]),
        err("ERR wrong number of arguments for 'zadd' command")
    );
}

#[test]
fn zincrby_creates_and_increments() {
    for mut t in both() {
        assert_eq!(t.run(&["zincrby", "z", "2", "a"]), d(2.0));
        assert_eq!(t.run(&["zincrby", "z", "-5.5", "a"]), d(-3.5));
        assert_eq!(t.run(&["zincrby", "z", "x", "a"]), err(error::NOT_FLOAT));
        assert_eq!(t.run(&["zincrby", "z", "nx", "a"]), err(error::SYNTAX));
        assert_eq!(
            t.run(&["zrange", "z", "0", "-1", "withscores"]),
            flat(&[("a", -3.5)])
        );
    }
}

#[test]
fn zadd_signals_blocked_keys_and_counts_writes() {
    let mut t = TestShard::new();
    t.shard.blocked_keys.insert((0, Bytes::from_static(b"z")));
    let before = t.shard.dirty;
    t.run(&["zadd", "z", "1", "a", "2", "b"]);
    assert_eq!(t.shard.ready_keys, vec![(0, Bytes::from_static(b"z"))]);
    assert_eq!(t.shard.dirty - before, 2);
    t.shard.ready_keys.clear();
    t.run(&["zadd", "z", "5", "a"]);
    assert!(
        t.shard.ready_keys.is_empty(),
        "an update does not grow the set"
    );
    t.run(&["zincrby", "z", "1", "c"]);
    assert_eq!(t.shard.ready_keys.len(), 1);
}

#[test]
fn encoding_converts_by_size_and_member_length() {
    let mut t = TestShard::new();
    t.shard.config.zset_max_listpack_entries = 4;
    t.shard.config.zset_max_listpack_value = 8;
    t.run(&["zadd", "z", "1", "a", "2", "b", "3", "c", "4", "d"]);
    assert_eq!(encoding(&t, "z"), "listpack");
    t.run(&["zadd", "z", "5", "e"]);
    assert_eq!(encoding(&t, "z"), "skiplist");
    assert_eq!(
        t.run(&["zrange", "z", "0", "-1"]),
        bulks(&["a", "b", "c", "d", "e"])
    );
    // Shrinking does not convert back.
    t.run(&["zrem", "z", "a", "b", "c"]);
    assert_eq!(encoding(&t, "z"), "skiplist");
    t.run(&["zadd", "y", "1", "short"]);
    assert_eq!(encoding(&t, "y"), "listpack");
    t.run(&["zadd", "y", "1", "a-long-member"]);
    assert_eq!(encoding(&t, "y"), "skiplist");
    t.run(&["zadd", "x", "1", "a-long-member"]);
    assert_eq!(encoding(&t, "x"), "skiplist");
    assert_eq!(t.run(&["zscore", "y", "short"]), d(1.0));
}

#[test]
fn zrem_zcard_zscore_zmscore_zrank() {
    for mut t in both() {
        t.run(&["zadd", "z", "1", "a", "2", "b", "3", "c"]);
        assert_eq!(t.run(&["zrank", "z", "a"]), int(0));
        assert_eq!(t.run(&["zrank", "z", "c"]), int(2));
        assert_eq!(t.run(&["zrevrank", "z", "c"]), int(0));
        assert_eq!(t.run(&["zrevrank", "z", "a"]), int(2));
        assert_eq!(t.run(&["zrank", "z", "x"]), Reply::Nil);
        assert_eq!(t.run(&["zrank", "nokey", "x"]), Reply::Nil);
        assert_eq!(
            t.run(&["zmscore", "z", "a", "x", "c"]),
            arr(vec![d(1.0), Reply::Nil, d(3.0)])
        );
        assert_eq!(
            t.run(&["zmscore", "nokey", "a", "b"]),
            arr(vec![Reply::Nil, Reply::Nil])
        );
        assert_eq!(t.run(&["zscore", "nokey", "a"]), Reply::Nil);
        assert_eq!(t.run(&["zrem", "z", "a", "x", "a"]), int(1));
        assert_eq!(t.run(&["zcard", "z"]), int(2));
        assert_eq!(t.run(&["zrem", "z", "b", "c", "d"]), int(2));
        assert_eq!(t.run(&["exists", "z"]), int(0));
        assert_eq!(t.run(&["zrem", "z", "a"]), int(0));
        assert_eq!(t.run(&["zcard", "z"]), int(0));
        t.run(&["set", "s", "x"]);
        for cmd in [
            &["zrem", "s", "a"][..],
            &["zcard", "s"],
            &["zscore", "s", "a"],
            &["zmscore", "s", "a"],
            &["zrank", "s", "a"],
            &["zrevrank", "s", "a"],
        ] {
            assert_eq!(t.run(cmd), err(error::WRONGTYPE), "{cmd:?}");
        }
        assert_eq!(
            t.run(&["zmscore", "z"]),
            err("ERR wrong number of arguments for 'zmscore' command")
        );
    }
}

fn abcdef(t: &mut TestShard) {
    t.run(&[
        "zadd", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e", "6", "f",
    ]);
}

#[test]
fn zrange_by_rank() {
    for mut t in both() {
        abcdef(&mut t);
        assert_eq!(t.run(&["zrange", "z", "0", "1"]), bulks(&["a", "b"]));
        assert_eq!(t.run(&["zrange", "z", "-2", "-1"]), bulks(&["e", "f"]));
        assert_eq!(t.run(&["zrange", "z", "-100", "1"]), bulks(&["a", "b"]));
        assert_eq!(t.run(&["zrange", "z", "4", "100"]), bulks(&["e", "f"]));
        assert_eq!(t.run(&["zrange", "z", "3", "2"]), empty());
        assert_eq!(t.run(&["zrange", "z", "6", "7"]), empty());
        assert_eq!(t.run(&["zrange", "z", "0", "-7"]), empty());
        assert_eq!(t.run(&["zrevrange", "z", "0", "1"]), bulks(&["f", "e"]));
        assert_eq!(t.run(&["zrange", "z", "0", "1", "rev"]), bulks(&["f", "e"]));
        assert_eq!(
            t.run(&["zrevrange", "z", "-2", "-1", "withscores"]),
            flat(&[("b", 2.0), ("a", 1.0)])
        );
        assert_eq!(
            t.run(&["zrange", "z", "0", "1", "withscores"]),
            flat(&[("a", 1.0), ("b", 2.0)])
        );
        assert_eq!(
            run3(&mut t, &["zrange", "z", "0", "1", "withscores"]),
            arr(vec![pair("a", 1.0), pair("b", 2.0)])
        );
        assert_eq!(
            run3(&mut t, &["zrevrange", "z", "0", "1", "withscores"]),
            arr(vec![pair("f", 6.0), pair("e", 5.0)])
        );
        assert_eq!(run3(&mut t, &["zrange", "z", "0", "0"]), bulks(&["a"]));
        assert_eq!(t.run(&["zrange", "nokey", "0", "-1"]), empty());
        assert_eq!(
            t.run(&["zrange", "z", "0", "-1", "limit", "0", "-1"]),
            t.run(&["zrange", "z", "0", "-1"])
        );
    }
}

#[test]
fn zrange_by_score() {
    for mut t in both() {
        abcdef(&mut t);
        assert_eq!(
            t.run(&["zrangebyscore", "z", "2", "4"]),
            bulks(&["b", "c", "d"])
        );
        assert_eq!(t.run(&["zrangebyscore", "z", "(2", "(4"]), bulks(&["c"]));
        assert_eq!(
            t.run(&["zrangebyscore", "z", "-inf", "+inf"]),
            t.run(&["zrange", "z", "0", "-1"])
        );
        assert_eq!(
            t.run(&["zrevrangebyscore", "z", "4", "2"]),
            bulks(&["d", "c", "b"])
        );
        assert_eq!(
            t.run(&["zrevrangebyscore", "z", "(4", "2", "withscores"]),
            flat(&[("c", 3.0), ("b", 2.0)])
        );
        assert_eq!(
            t.run(&["zrange", "z", "(4", "2", "byscore", "rev"]),
            bulks(&["c", "b"])
        );
        assert_eq!(t.run(&["zrangebyscore", "z", "4", "2"]), empty());
        assert_eq!(t.run(&["zrangebyscore", "z", "(2", "(2"]), empty());
        assert_eq!(t.run(&["zrangebyscore", "z", "2", "2"]), bulks(&["b"]));
        // LIMIT offset count, from either end.
        assert_eq!(
            t.run(&["zrangebyscore", "z", "0", "10", "limit", "1", "2"]),
            bulks(&["b", "c"])
        );
        assert_eq!(
            t.run(&["zrangebyscore", "z", "0", "10", "limit", "4", "-1"]),
            bulks(&["e", "f"])
        );
        assert_eq!(
            t.run(&["zrangebyscore", "z", "0", "10", "limit", "-1", "2"]),
            empty()
        );
        assert_eq!(
            t.run(&["zrangebyscore", "z", "0", "10", "limit", "10", "2"]),
            empty()
        );
        assert_eq!(
            t.run(&["zrangebyscore", "z", "0", "10", "limit", "0", "0"]),
            empty()
        );
        assert_eq!(
            t.run(&["zrevrangebyscore", "z", "10", "0", "limit", "1", "2"]),
            bulks(&["e", "d"])
        );
        assert_eq!(
            t.run(&["zrange", "z", "10", "3", "byscore", "rev", "limit", "2", "5"]),
            bulks(&["d", "c"])
        );
        assert_eq!(
            run3(&mut t, &["zrangebyscore", "z", "5", "6", "withscores"]),
            arr(vec![pair("e", 5.0), pair("f", 6.0)])
        );
        assert_eq!(t.run(&["zcount", "z", "2", "4"]), int(3));
        assert_eq!(t.run(&["zcount", "z", "(2", "+inf"]), int(4));
        assert_eq!(t.run(&["zcount", "z", "5", "1"]), int(0));
        assert_eq!(t.run(&["zcount", "nokey", "1", "2"]), int(0));
        for (min, max) in [("str", "1"), ("1", "str"), ("1", "NaN"), ("(", "x")] {
            assert_eq!(
                t.run(&["zrangebyscore", "z", min, max]),
                err(MIN_MAX_NOT_FLOAT)
            );
            assert_eq!(t.run(&["zcount", "z", min, max]), err(MIN_MAX_NOT_FLOAT));
        }
        // A lone "(" is an exclusive 0, as strtod reads it.
        assert_eq!(t.run(&["zcount", "z", "(", "10"]), int(6));
    }
}

#[test]
fn score_ranges_with_infinities() {
    for mut t in both() {
        t.run(&[
            "zadd", "z", "-inf", "a", "1", "b", "2", "c", "3", "d", "4", "e", "5", "f", "+inf", "g",
        ]);
        for (cmd, min, max, expected) in [
            ("zrangebyscore", "-inf", "2", &["a", "b", "c"][..]),
            ("zrangebyscore", "4", "+inf", &["e", "f", "g"]),
            ("zrevrangebyscore", "+inf", "4", &["g", "f", "e"]),
            ("zrangebyscore", "(-inf", "(2", &["b"]),
            ("zrangebyscore", "(4", "(+inf", &["f"]),
            ("zrevrangebyscore", "(2", "(-inf", &["b"]),
            ("zrevrangebyscore", "(+inf", "(4", &["f"]),
            ("zrangebyscore", "2.4", "2.6", &[]),
            ("zrangebyscore", "(2.4", "(2.6", &[]),
            ("zrangebyscore", "2", "(2", &[]),
        ] {
            assert_eq!(
                t.run(&[cmd, "z", min, max]),
                bulks(expected),
                "{cmd} {min} {max}"
            );
        }
        assert_eq!(
            t.run(&[
                "zrevrangebyscore",
                "z",
                "5",
                "2",
                "limit",
                "2",
                "3",
                "withscores"
            ]),
            flat(&[("d", 3.0), ("c", 2.0)])
        );
    }
}

fn lex(t: &mut TestShard) {
    t.run(&[
        "zadd", "l", "0", "alpha", "0", "bar", "0", "cool", "0", "down", "0", "elephant", "0",
        "foo", "0", "great", "0", "hill", "0", "omega",
    ]);
}

#[test]
fn zrange_by_lex() {
    for mut t in both() {
        lex(&mut t);
        assert_eq!(
            t.run(&["zrangebylex", "l", "-", "[cool"]),
            bulks(&["alpha", "bar", "cool"])
        );
        assert_eq!(
            t.run(&["zrangebylex", "l", "-", "(cool"]),
            bulks(&["alpha", "bar"])
        );
        assert_eq!(
            t.run(&["zrangebylex", "l", "[bar", "(down"]),
            bulks(&["bar", "cool"])
        );
        assert_eq!(
            t.run(&["zrangebylex", "l", "(great", "+"]),
            bulks(&["hill", "omega"])
        );
        assert_eq!(t.run(&["zrangebylex", "l", "+", "-"]), empty());
        assert_eq!(t.run(&["zrangebylex", "l", "[d", "[c"]), empty());
        assert_eq!(
            t.run(&["zrevrangebylex", "l", "[cool", "-"]),
            bulks(&["cool", "bar", "alpha"])
        );
        assert_eq!(
            t.run(&["zrange", "l", "+", "(foo", "bylex", "rev", "limit", "1", "1"]),
            bulks(&["hill"])
        );
        assert_eq!(
            t.run(&["zrangebylex", "l", "-", "+", "limit", "2", "2"]),
            bulks(&["cool", "down"])
        );
        assert_eq!(t.run(&["zlexcount", "l", "-", "+"]), int(9));
        assert_eq!(t.run(&["zlexcount", "l", "[b", "(d"]), int(2));
        assert_eq!(t.run(&["zlexcount", "nokey", "-", "+"]), int(0));
        for (min, max) in [
            ("foo", "bar"),
            ("[foo", "bar"),
            ("foo", "[bar"),
            ("+x", "[bar"),
            ("-x", "[bar"),
            ("", "+"),
        ] {
            assert_eq!(t.run(&["zrangebylex", "l", min, max]), err(MIN_MAX_NOT_LEX));
            assert_eq!(t.run(&["zlexcount", "l", min, max]), err(MIN_MAX_NOT_LEX));
        }
    }
}

#[test]
fn zrange_option_errors() {
    let mut t = TestShard::new();
    abcdef(&mut t);
    assert_eq!(
        t.run(&["zrange", "z", "0", "-1", "limit", "1", "2"]),
        err(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
        )
    );
    assert_eq!(
        t.run(&["zrange", "z", "-", "+", "bylex", "withscores"]),
        err("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
    );
    assert_eq!(
        t.run(&["zrangebylex", "z", "-", "+", "withscores"]),
        err("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
    );
    assert_eq!(
        t.run(&["zrevrange", "z", "0", "-1", "byscore"]),
        err(error::SYNTAX)
    );
    assert_eq!(
        t.run(&["zrangebyscore", "z", "0", "-1", "rev"]),
        err(error::SYNTAX)
    );
    assert_eq!(
        t.run(&["zrange", "z", "0", "1", "rev", "rev"]),
        err(error::SYNTAX)
    );
    assert_eq!(
        t.run(&["zrange", "z", "0", "1", "byscore", "bylex"]),
        err(error::SYNTAX)
    );
    assert_eq!(
        t.run(&["zrange", "z", "0", "1", "limit", "1"]),
        err(error::SYNTAX)
    );
    assert_eq!(
        t.run(&["zrange", "z", "0", "1", "byscore", "limit", "x", "1"]),
        err(error::NOT_INTEGER)
    );
    assert_eq!(t.run(&["zrange", "z", "a", "1"]), err(error::NOT_INTEGER));
    assert_eq!(t.run(&["zrange", "z", "0", "1", "foo"]), err(error::SYNTAX));
    t.run(&["set", "s", "x"]);
    assert_eq!(t.run(&["zrange", "s", "0", "1"]), err(error::WRONGTYPE));
    assert_eq!(t.run(&["zcount", "s", "0", "1"]), err(error::WRONGTYPE));
    assert_eq!(t.run(&["zlexcount", "s", "-", "+"]), err(error::WRONGTYPE));
    // Range syntax is checked before the key.
    assert_eq!(t.run(&["zcount", "s", "x", "1"]), err(MIN_MAX_NOT_FLOAT));
}

#[test]
fn zrangestore() {
    let mut t = TestShard::new();
    abcdef(&mut t);
    assert_eq!(t.run(&["zrangestore", "d", "z", "0", "2"]), int(3));
    assert_eq!(
        t.run(&["zrange", "d", "0", "-1", "withscores"]),
        flat(&[("a", 1.0), ("b", 2.0), ("c", 3.0)])
    );
    assert_eq!(
        t.run(&[
            "zrangestore",
            "d",
            "z",
            "5",
            "(3",
            "byscore",
            "rev",
            "limit",
            "0",
            "1"
        ]),
        int(1)
    );
    assert_eq!(t.run(&["zrange", "d", "0", "-1"]), bulks(&["e"]));
    assert_eq!(
        t.run(&["zrangestore", "d", "z", "[b", "[c", "bylex"]),
        int(2)
    );
    assert_eq!(t.run(&["zrangestore", "d", "z", "6", "7"]), int(0));
    assert_eq!(t.run(&["exists", "d"]), int(0));
    t.run(&["zadd", "d", "1", "x"]);
    assert_eq!(t.run(&["zrangestore", "d", "nokey", "0", "-1"]), int(0));
    assert_eq!(t.run(&["exists", "d"]), int(0));
    assert_eq!(
        t.run(&["zrangestore", "d", "z", "0", "-1", "withscores"]),
        err(error::SYNTAX)
    );
    assert_eq!(
        t.run(&["zrangestore", "d", "z", "0", "-1", "limit", "1", "2"]),
        err(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
        )
    );
    t.run(&["set", "s", "x"]);
    t.run(&["zadd", "d", "1", "x"]);
    assert_eq!(
        t.run(&["zrangestore", "d", "s", "0", "-1"]),
        err(error::WRONGTYPE)
    );
    assert_eq!(t.run(&["zrange", "d", "0", "-1"]), bulks(&["x"]));
    // The stored set takes the encoding that fits it.
    t.shard.config.zset_max_listpack_entries = 1;
    assert_eq!(t.run(&["zrangestore", "d1", "z", "0", "0"]), int(1));
    assert_eq!(encoding(&t, "d1"), "listpack");
    assert_eq!(t.run(&["zrangestore", "d2", "z", "0", "1"]), int(2));
    assert_eq!(encoding(&t, "d2"), "skiplist");
    t.shard.config.zset_max_listpack_entries = 0;
    assert_eq!(t.run(&["zrangestore", "d3", "z", "0", "-1"]), int(6));
    assert_eq!(encoding(&t, "d3"), "skiplist");
}

#[test]
fn zremrange_family() {
    for mut t in both() {
        abcdef(&mut t);
        assert_eq!(t.run(&["zremrangebyrank", "z", "0", "1"]), int(2));
        assert_eq!(t.run(&["zremrangebyrank", "z", "-1", "-1"]), int(1));
        assert_eq!(t.run(&["zremrangebyrank", "z", "5", "10"]), int(0));
        assert_eq!(t.run(&["zrange", "z", "0", "-1"]), bulks(&["c", "d", "e"]));
        assert_eq!(t.run(&["zremrangebyscore", "z", "(3", "4"]), int(1));
        assert_eq!(t.run(&["zremrangebyscore", "z", "10", "20"]), int(0));
        assert_eq!(t.run(&["zrange", "z", "0", "-1"]), bulks(&["c", "e"]));
        assert_eq!(t.run(&["zremrangebyscore", "z", "-inf", "+inf"]), int(2));
        assert_eq!(t.run(&["exists", "z"]), int(0));
        lex(&mut t);
        assert_eq!(t.run(&["zremrangebylex", "l", "[alpha", "(cool"]), int(2));
        assert_eq!(t.run(&["zremrangebylex", "l", "(great", "+"]), int(2));
        assert_eq!(
            t.run(&["zrange", "l", "0", "-1"]),
            bulks(&["cool", "down", "elephant", "foo", "great"])
        );
        assert_eq!(t.run(&["zremrangebylex", "l", "-", "+"]), int(5));
        assert_eq!(t.run(&["exists", "l"]), int(0));
        assert_eq!(t.run(&["zremrangebyrank", "nokey", "0", "-1"]), int(0));
        assert_eq!(
            t.run(&["zremrangebyrank", "z", "x", "1"]),
            err(error::NOT_INTEGER)
        );
        assert_eq!(
            t.run(&["zremrangebyscore", "z", "x", "1"]),
            err(MIN_MAX_NOT_FLOAT)
        );
        assert_eq!(
            t.run(&["zremrangebylex", "z", "x", "+"]),
            err(MIN_MAX_NOT_LEX)
        );
        t.run(&["set", "s", "x"]);
        assert_eq!(
            t.run(&["zremrangebyrank", "s", "0", "1"]),
            err(error::WRONGTYPE)
        );
    }
}

#[test]
fn zpopmin_zpopmax() {
    for mut t in both() {
        abcdef(&mut t);
        assert_eq!(t.run(&["zpopmin", "z"]), flat(&[("a", 1.0)]));
        assert_eq!(t.run(&["zpopmax", "z"]), flat(&[("f", 6.0)]));
        assert_eq!(
            t.run(&["zpopmin", "z", "2"]),
            flat(&[("b", 2.0), ("c", 3.0)])
        );
        assert_eq!(t.run(&["zpopmin", "z", "0"]), empty());
        assert_eq!(run3(&mut t, &["zpopmax", "z"]), flat(&[("e", 5.0)]));
        assert_eq!(
            run3(&mut t, &["zpopmax", "z", "10"]),
            arr(vec![pair("d", 4.0)])
        );
        assert_eq!(t.run(&["exists", "z"]), int(0));
        assert_eq!(t.run(&["zpopmin", "z"]), empty());
        assert_eq!(t.run(&["zpopmin", "z", "3"]), empty());
        assert_eq!(
            t.run(&["zpopmin", "z", "-1"]),
            err("ERR value is out of range, must be positive")
        );
        assert_eq!(
            t.run(&["zpopmin", "z", "x"]),
            err("ERR value is out of range, must be positive")
        );
        assert_eq!(t.run(&["zpopmin", "z", "1", "2"]), err(error::SYNTAX));
        t.run(&["set", "s", "x"]);
        assert_eq!(t.run(&["zpopmin", "s"]), err(error::WRONGTYPE));
        assert_eq!(t.run(&["zpopmax", "s", "0"]), err(error::WRONGTYPE));
    }
}

#[test]
fn zmpop() {
    let mut t = TestShard::new();
    abcdef(&mut t);
    assert_eq!(
        t.run(&["zmpop", "2", "nokey", "z", "min"]),
        arr(vec![bulk("z"), arr(vec![pair("a", 1.0)])])
    );
    assert_eq!(
        t.run(&["zmpop", "1", "z", "MAX", "count", "2"]),
        arr(vec![bulk("z"), arr(vec![pair("f", 6.0), pair("e", 5.0)])])
    );
    assert_eq!(
        run3(&mut t, &["zmpop", "1", "z", "max", "count", "10"]),
        arr(vec![
            bulk("z"),
            arr(vec![pair("d", 4.0), pair("c", 3.0), pair("b", 2.0)])
        ])
    );
    assert_eq!(t.run(&["exists", "z"]), int(0));
    assert_eq!(t.run(&["zmpop", "1", "z", "min"]), Reply::NilArray);
    for bad in ["0", "a", "-1"] {
        assert_eq!(
            t.run(&["zmpop", bad, "z", "min"]),
            err("ERR numkeys should be greater than 0")
        );
    }
    for args in [
        &["zmpop", "1", "z", "bad_where"][..],
        &["zmpop", "1", "z", "min", "bar"],
        &["zmpop", "1", "z", "max", "min"],
        &["zmpop", "1", "z", "count"],
        &["zmpop", "1", "z", "max", "count", "1", "count", "2"],
        &["zmpop", "2", "z", "y", "bad"],
        &["zmpop", "5", "z", "min"],
    ] {
        assert_eq!(t.run(args), err(error::SYNTAX), "{args:?}");
    }
    for bad in ["0", "a", "-1"] {
        assert_eq!(
            t.run(&["zmpop", "1", "z", "min", "count", bad]),
            err("ERR count should be greater than 0")
        );
    }
    t.run(&["set", "s", "x"]);
    t.run(&["zadd", "y", "1", "a"]);
    assert_eq!(
        t.run(&["zmpop", "2", "s", "y", "min"]),
        err(error::WRONGTYPE)
    );
    assert_eq!(
        t.run(&["zmpop", "1"]),
        err("ERR wrong number of arguments for 'zmpop' command")
    );
}

#[test]
fn blocking_pops_make_one_attempt() {
    let mut t = TestShard::new();
    assert_eq!(t.run(&["bzpopmin", "a", "b", "0"]), Reply::NilArray);
    assert_eq!(
        t.run(&["bzmpop", "0", "2", "a", "b", "min"]),
        Reply::NilArray
    );
    t.run(&["zadd", "b", "1", "x", "2", "y", "3", "z"]);
    assert_eq!(
        t.run(&["bzpopmin", "a", "b", "0.5"]),
        arr(vec![bulk("b"), bulk("x"), d(1.0)])
    );
    assert_eq!(
        run3(&mut t, &["bzpopmax", "a", "b", "1"]),
        arr(vec![bulk("b"), bulk("z"), d(3.0)])
    );
    assert_eq!(
        t.run(&["bzmpop", "1", "2", "a", "b", "max", "count", "5"]),
        arr(vec![bulk("b"), arr(vec![pair("y", 2.0)])])
    );
    assert_eq!(t.run(&["exists", "b"]), int(0));
    for bad in ["x", "nan", ""] {
        assert_eq!(
            t.run(&["bzpopmin", "a", bad]),
            err(error::TIMEOUT_NOT_FLOAT)
        );
        assert_eq!(
            t.run(&["bzmpop", bad, "1", "a", "min"]),
            err(error::TIMEOUT_NOT_FLOAT)
        );
    }
    assert_eq!(
        t.run(&["bzpopmax", "a", "-1"]),
        err(error::TIMEOUT_NEGATIVE)
    );
    assert_eq!(
        t.run(&["bzpopmax", "a", "inf"]),
        err(error::TIMEOUT_NEGATIVE)
    );
    assert_eq!(t.run(&["bzpopmax", "a", "-0.0001"]), Reply::NilArray);
    assert_eq!(
        t.run(&["bzmpop", "-1", "1", "a", "min"]),
        err(error::TIMEOUT_NEGATIVE)
    );
    // numkeys, direction and count are checked before the timeout ("BZMPOP with illegal
    // argument": a bad numkeys is an error even with a valid timeout).
    for bad in ["0", "a", "-1"] {
        assert_eq!(
            t.run(&["bzmpop", "1", bad, "a", "min"]),
            err("ERR numkeys should be greater than 0")
        );
    }
    assert_eq!(
        t.run(&["bzmpop", "x", "0", "a", "min"]),
        err("ERR numkeys should be greater than 0")
    );
    assert_eq!(t.run(&["bzmpop", "x", "1", "a", "bad"]), err(error::SYNTAX));
    assert_eq!(
        t.run(&["bzmpop", "0", "1", "a", "min", "count", "0"]),
        err("ERR count should be greater than 0")
    );
    t.run(&["set", "s", "x"]);
    assert_eq!(t.run(&["bzpopmin", "a", "s", "0"]), err(error::WRONGTYPE));
    assert_eq!(
        t.run(&["bzmpop", "0", "1", "s", "min"]),
        err(error::WRONGTYPE)
    );
    assert_eq!(
        t.run(&["bzmpop", "0", "1"]),
        err("ERR wrong number of arguments for 'bzmpop' command")
    );
}

fn members_of(r: &Reply) -> Vec<String> {
    match r {
        Reply::Array(items) => items
            .iter()
            .filter_map(|i| match i {
                Reply::Bulk(b) => Some(String::from_utf8_lossy(b).into_owned()),
                Reply::Array(p) => match p.first() {
                    Some(Reply::Bulk(b)) => Some(String::from_utf8_lossy(b).into_owned()),
                    _ => None,
                },
                _ => None,
            })
            .collect(),
        _ => panic!("not an array: {r:?}"),
    }
}

#[test]
fn zrandmember() {
    for mut t in both() {
        let all = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
        for (i, m) in all.iter().enumerate() {
            t.run(&["zadd", "z", &(i + 1).to_string(), m]);
        }
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            match t.run(&["zrandmember", "z"]) {
                Reply::Bulk(b) => {
                    seen.insert(String::from_utf8_lossy(&b).into_owned());
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(seen.len(), 10);
        assert_eq!(t.run(&["zrandmember", "nokey"]), Reply::Nil);
        assert_eq!(t.run(&["zrandmember", "nokey", "5"]), empty());
        assert_eq!(t.run(&["zrandmember", "z", "0"]), empty());
        // Negative: repetitions allowed, exactly |count| answers.
        assert_eq!(
            t.run(&["zrandmember", "z", "-9223372036854775807"]),
            err("ERR value is out of range")
        );
        let r = t.run(&["zrandmember", "z", "-25"]);
        assert_eq!(members_of(&r).len(), 25);
        let r = t.run(&["zrandmember", "z", "-3", "withscores"]);
        match &r {
            Reply::Array(v) => assert_eq!(v.len(), 6),
            _ => panic!(),
        }
        // Positive: distinct members, at most the set.
        for n in [1usize, 2, 5, 8, 10, 20] {
            let mut got = members_of(&t.run(&["zrandmember", "z", &n.to_string()]));
            got.sort();
            got.dedup();
            assert_eq!(got.len(), n.min(10));
        }
        let r = t.run(&["zrandmember", "z", "3", "withscores"]);
        if let Reply::Array(v) = &r {
            assert_eq!(v.len(), 6);
            for p in v.chunks(2) {
                let Reply::Bulk(m) = &p[0] else { panic!() };
                let i = all.iter().position(|x| x.as_bytes() == &m[..]).unwrap();
                assert_eq!(p[1], d((i + 1) as f64));
            }
        }
        let r = run3(&mut t, &["zrandmember", "z", "3", "withscores"]);
        if let Reply::Array(v) = &r {
            assert_eq!(v.len(), 3);
            assert!(matches!(&v[1], Reply::Array(p) if p.len() == 2));
        }
        let r = run3(&mut t, &["zrandmember", "z", "3"]);
        assert!(matches!(&r, Reply::Array(v) if v.len() == 3 && matches!(v[0], Reply::Bulk(_))));
        assert_eq!(
            t.run(&["zrandmember", "z", "-9223372036854770000", "withscores"]),
            err("ERR value is out of range")
        );
        let range_err = err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807");
        assert_eq!(
            t.run(&["zrandmember", "z", "-9223372036854775808", "withscores"]),
            range_err
        );
        assert_eq!(
            t.run(&["zrandmember", "z", "-9223372036854775808"]),
            range_err
        );
        assert_eq!(t.run(&["zrandmember", "z", "x"]), err(error::NOT_INTEGER));
        assert_eq!(t.run(&["zrandmember", "z", "1", "foo"]), err(error::SYNTAX));
        assert_eq!(
            t.run(&["zrandmember", "z", "1", "withscores", "x"]),
            err(error::SYNTAX)
        );
        t.run(&["set", "s", "x"]);
        assert_eq!(t.run(&["zrandmember", "s"]), err(error::WRONGTYPE));
        assert_eq!(t.run(&["zrandmember", "s", "1"]), err(error::WRONGTYPE));
    }
}

fn ab(t: &mut TestShard) {
    t.run(&["zadd", "za", "1", "a", "2", "b", "3", "c"]);
    t.run(&["zadd", "zb", "1", "b", "2", "c", "3", "d"]);
}

#[test]
fn zunion_zinter_zdiff() {
    for mut t in both() {
        ab(&mut t);
        assert_eq!(
            t.run(&["zunion", "2", "za", "zb", "withscores"]),
            flat(&[("a", 1.0), ("b", 3.0), ("d", 3.0), ("c", 5.0)])
        );
        assert_eq!(
            t.run(&["zunion", "2", "za", "zb"]),
            bulks(&["a", "b", "d", "c"])
        );
        assert_eq!(
            t.run(&["zinter", "2", "za", "zb", "withscores"]),
            flat(&[("b", 3.0), ("c", 5.0)])
        );
        assert_eq!(
            t.run(&["zinter", "2", "za", "zb", "aggregate", "min", "withscores"]),
            flat(&[("b", 1.0), ("c", 2.0)])
        );
        assert_eq!(
            t.run(&["zunion", "2", "za", "zb", "aggregate", "max", "withscores"]),
            flat(&[("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 3.0)])
        );
        assert_eq!(
            t.run(&["zunion", "2", "za", "zb", "weights", "2", "3", "withscores"]),
            flat(&[("a", 2.0), ("b", 7.0), ("d", 9.0), ("c", 12.0)])
        );
        assert_eq!(
            t.run(&["zdiff", "2", "za", "zb", "withscores"]),
            flat(&[("a", 1.0)])
        );
        assert_eq!(t.run(&["zdiff", "2", "za", "za"]), empty());
        assert_eq!(t.run(&["zdiff", "1", "nokey"]), empty());
        assert_eq!(t.run(&["zinter", "2", "za", "nokey"]), empty());
        assert_eq!(
            t.run(&["zunion", "2", "za", "nokey"]),
            bulks(&["a", "b", "c"])
        );
        assert_eq!(
            run3(&mut t, &["zinter", "2", "za", "zb", "withscores"]),
            arr(vec![pair("b", 3.0), pair("c", 5.0)])
        );
        // Stores.
        assert_eq!(t.run(&["zunionstore", "d", "2", "za", "zb"]), int(4));
        assert_eq!(
            t.run(&["zrange", "d", "0", "-1", "withscores"]),
            flat(&[("a", 1.0), ("b", 3.0), ("d", 3.0), ("c", 5.0)])
        );
        assert_eq!(
            t.run(&["zinterstore", "d", "2", "za", "zb", "weights", "1", "-1"]),
            int(2)
        );
        assert_eq!(
            t.run(&["zrange", "d", "0", "-1", "withscores"]),
            flat(&[("b", 1.0), ("c", 1.0)])
        );
        assert_eq!(t.run(&["zdiffstore", "d", "2", "zb", "za"]), int(1));
        assert_eq!(t.run(&["zrange", "d", "0", "-1"]), bulks(&["d"]));
        assert_eq!(t.run(&["zinterstore", "d", "2", "za", "nokey"]), int(0));
        assert_eq!(t.run(&["exists", "d"]), int(0));
        // The destination may be an input.
        assert_eq!(t.run(&["zunionstore", "za", "2", "za", "zb"]), int(4));
        assert_eq!(t.run(&["zscore", "za", "c"]), d(5.0));
    }
}

#[test]
fn set_operations_accept_sets_and_special_scores() {
    let mut t = TestShard::new();
    let set = SetValue::from_members(&["a", "b", "x"], 512);
    t.shard.dbs[0].set(b"s", Value::Set(set), 0, false);
    t.run(&["zadd", "z", "10", "a", "20", "b", "30", "c"]);
    assert_eq!(
        t.run(&["zinter", "2", "z", "s", "withscores"]),
        flat(&[("a", 11.0), ("b", 21.0)])
    );
    assert_eq!(
        t.run(&["zunion", "2", "s", "z", "weights", "5", "1", "withscores"]),
        flat(&[("x", 5.0), ("a", 15.0), ("b", 25.0), ("c", 30.0)])
    );
    assert_eq!(
        t.run(&["zdiff", "2", "s", "z", "withscores"]),
        flat(&[("x", 1.0)])
    );
    assert_eq!(t.run(&["zintercard", "2", "s", "z"]), int(2));
    // inf + -inf is 0 in SUM; inf × 0 is 0.
    t.run(&["zadd", "p", "inf", "m"]);
    t.run(&["zadd", "n", "-inf", "m"]);
    assert_eq!(
        t.run(&["zunion", "2", "p", "n", "withscores"]),
        flat(&[("m", 0.0)])
    );
    assert_eq!(
        t.run(&["zinter", "2", "p", "n", "withscores"]),
        flat(&[("m", 0.0)])
    );
    assert_eq!(
        t.run(&["zunion", "1", "p", "weights", "0", "withscores"]),
        flat(&[("m", 0.0)])
    );
    assert_eq!(
        t.run(&["zunion", "2", "p", "n", "aggregate", "max", "withscores"]),
        flat(&[("m", f64::INFINITY)])
    );
}

#[test]
fn set_operation_errors() {
    let mut t = TestShard::new();
    ab(&mut t);
    for (cmd, args) in [
        ("zunion", &["zunion", "0", "za"][..]),
        ("zinter", &["zinter", "0", "za"]),
        ("zdiff", &["zdiff", "0", "za"]),
        ("zintercard", &["zintercard", "0", "za"]),
        ("zunionstore", &["zunionstore", "d", "0", "za"]),
        ("zinterstore", &["zinterstore", "d", "-1", "za"]),
        ("zdiffstore", &["zdiffstore", "d", "0", "za"]),
    ] {
        assert_eq!(
            t.run(args),
            Reply::error(format!(
                "ERR at least 1 input key is needed for '{cmd}' command"
            ))
        );
    }
    assert_eq!(t.run(&["zunion", "x", "za"]), err(error::NOT_INTEGER));
    assert_eq!(t.run(&["zunion", "3", "za", "zb"]), err(error::SYNTAX));
    for args in [
        &["zunionstore", "d", "2", "za", "zb", "withscores"][..],
        &["zinterstore", "d", "2", "za", "zb", "withscores"],
        &["zdiffstore", "d", "2", "za", "zb", "withscores"],
        &["zdiff", "2", "za", "zb", "weights", "1", "2"],
        &["zdiff", "2", "za", "zb", "aggregate", "sum"],
        &["zunion", "2", "za", "zb", "weights", "1"],
        &["zunion", "2", "za", "zb", "aggregate", "avg"],
        &["zunion", "2", "za", "zb", "aggregate"],
        &["zunion", "2", "za", "zb", "foo"],
        &["zintercard", "1", "za", "za"],
        &["zintercard", "1", "za", "bar"],
        &["zintercard", "1", "za", "limit"],
        &["zintercard", "1", "za", "withscores"],
    ] {
        assert_eq!(t.run(args), err(error::SYNTAX), "{args:?}");
    }
    assert_eq!(
        t.run(&["zunion", "2", "za", "zb", "weights", "1", "x"]),
        err("ERR weight value is not a float")
    );
    for bad in ["-1", "a"] {
        assert_eq!(
            t.run(&["zintercard", "1", "za", "limit", bad]),
            err("ERR LIMIT can't be negative")
        );
    }
    t.run(&["set", "s", "x"]);
    assert_eq!(t.run(&["zunion", "2", "za", "s"]), err(error::WRONGTYPE));
    // The type check comes before the options.
    assert_eq!(
        t.run(&["zinter", "2", "za", "s", "foo"]),
        err(error::WRONGTYPE)
    );
    assert_eq!(
        t.run(&["zunionstore", "d", "1", "s"]),
        err(error::WRONGTYPE)
    );
}

#[test]
fn zintercard() {
    for mut t in both() {
        ab(&mut t);
        assert_eq!(t.run(&["zintercard", "2", "za", "zb"]), int(2));
        assert_eq!(
            t.run(&["zintercard", "2", "za", "zb", "limit", "0"]),
            int(2)
        );
        assert_eq!(
            t.run(&["zintercard", "2", "za", "zb", "limit", "1"]),
            int(1)
        );
        assert_eq!(
            t.run(&["zintercard", "2", "za", "zb", "LIMIT", "10"]),
            int(2)
        );
        assert_eq!(t.run(&["zintercard", "2", "za", "nokey"]), int(0));
    }
}

fn scan_all(t: &mut TestShard, key: &str, extra: &[&str]) -> (usize, Vec<(String, String)>) {
    let mut cursor = "0".to_string();
    let mut out = Vec::new();
    let mut calls = 0;
    loop {
        let mut args = vec!["zscan", key, &cursor];
        args.extend_from_slice(extra);
        let Reply::Array(parts) = t.run(&args) else {
            panic!("not an array")
        };
        calls += 1;
        let (Reply::Bulk(c), Reply::Array(items)) = (&parts[0], &parts[1]) else {
            panic!("bad scan reply")
        };
        for p in items.chunks(2) {
            let (Reply::Bulk(m), Reply::Bulk(s)) = (&p[0], &p[1]) else {
                panic!("bad pair")
            };
            out.push((
                String::from_utf8_lossy(m).into_owned(),
                String::from_utf8_lossy(s).into_owned(),
            ));
        }
        cursor = String::from_utf8_lossy(c).into_owned();
        if cursor == "0" {
            return (calls, out);
        }
    }
}

#[test]
fn zscan() {
    for mut t in both() {
        for i in 0..100 {
            t.run(&["zadd", "z", &format!("{i}.5"), &format!("m{i}")]);
        }
        let (_, mut got) = scan_all(&mut t, "z", &[]);
        got.sort();
        got.dedup();
        assert_eq!(got.len(), 100);
        assert!(got.contains(&("m7".to_string(), "7.5".to_string())));
        let (_, got) = scan_all(&mut t, "z", &["match", "*", "count", "5"]);
        assert!(got.len() >= 100);
        assert_eq!(
            t.run(&["zscan", "nokey", "0"]),
            arr(vec![bulk("0"), empty()])
        );
        assert_eq!(t.run(&["zscan", "z", "x"]), err("ERR invalid cursor"));
        assert_eq!(
            t.run(&["zscan", "z", "0", "count", "0"]),
            err(error::SYNTAX)
        );
        assert_eq!(t.run(&["zscan", "z", "0", "foo"]), err(error::SYNTAX));
        t.run(&["set", "s", "x"]);
        assert_eq!(t.run(&["zscan", "s", "0"]), err(error::WRONGTYPE));
    }
    let mut t = TestShard::new();
    t.run(&["zadd", "small", "1", "a", "2.5", "b", "-0", "c"]);
    assert_eq!(
        t.run(&["zscan", "small", "0"]),
        arr(vec![bulk("0"), bulks(&["c", "-0", "a", "1", "b", "2.5"])])
    );
}

#[test]
fn binary_members_and_scores_round_trip() {
    for mut t in both() {
        let m = Bytes::from_static(b"\x00\xff\r\nbin");
        let args = vec![
            Bytes::from_static(b"zadd"),
            Bytes::from_static(b"z"),
            Bytes::from_static(b"1.5"),
            m.clone(),
        ];
        assert_eq!(t.run_bytes(&args), int(1));
        let args = vec![
            Bytes::from_static(b"zscore"),
            Bytes::from_static(b"z"),
            m.clone(),
        ];
        assert_eq!(t.run_bytes(&args), d(1.5));
        assert_eq!(
            t.run(&["zrange", "z", "0", "-1"]),
            arr(vec![Reply::Bulk(m.clone())])
        );
    }
}

/// Random commands against both encodings give identical replies.
#[test]
fn encodings_agree_on_random_workload() {
    let mut small = shard_with(100_000);
    small.shard.config.zset_max_listpack_value = 1 << 20;
    let mut large = shard_with(0);
    let mut next = crate::testing::xorshift(0x1234_5678_9abc_def0u64);
    for _ in 0..3000 {
        let m = format!("m{}", next(300));
        let s = format!("{}", next(50) as i64 - 25);
        let a = format!("{}", next(40) as i64 - 20);
        let b = format!("{}", next(40) as i64 - 20);
        let cmd: Vec<&str> = match next(12) {
            0..=3 => vec!["zadd", "z", &s, &m],
            4 => vec!["zincrby", "z", &s, &m],
            5 => vec!["zrem", "z", &m],
            6 => vec!["zrank", "z", &m],
            7 => vec!["zrange", "z", &a, &b, "withscores"],
            8 => vec![
                "zrangebyscore",
                "z",
                &a,
                &b,
                "withscores",
                "limit",
                "1",
                "5",
            ],
            9 => vec!["zrevrangebyscore", "z", &b, &a, "withscores"],
            10 => vec!["zremrangebyscore", "z", &a, &a],
            _ => vec!["zcount", "z", &a, &b],
        };
        assert_eq!(small.run(&cmd), large.run(&cmd), "{cmd:?}");
    }
    assert_eq!(encoding(&small, "z"), "listpack");
    assert_eq!(encoding(&large, "z"), "skiplist");
    assert_eq!(
        small.run(&["zrange", "z", "0", "-1", "withscores"]),
        large.run(&["zrange", "z", "0", "-1", "withscores"])
    );
}

#[test]
fn large_set_ranks_and_ranges() {
    let mut t = TestShard::new();
    let mut z = ZSetValue::new();
    let limits = Limits {
        max_entries: 128,
        max_value: 64,
    };
    for i in 0..5000 {
        z.insert(format!("m{i:05}").as_bytes(), i as f64, limits);
    }
    assert_eq!(z.encoding(), "skiplist");
    t.shard.dbs[0].set(b"z", Value::ZSet(z), 0, false);
    assert_eq!(t.run(&["zrank", "z", "m04321"]), int(4321));
    assert_eq!(t.run(&["zrevrank", "z", "m04321"]), int(678));
    assert_eq!(t.run(&["zcount", "z", "(1000", "2000"]), int(1000));
    assert_eq!(
        t.run(&["zrangebyscore", "z", "2500", "+inf", "limit", "100", "2"]),
        bulks(&["m02600", "m02601"])
    );
    assert_eq!(t.run(&["zremrangebyrank", "z", "100", "-101"]), int(4800));
    assert_eq!(t.run(&["zcard", "z"]), int(200));
    assert_eq!(
        t.run(&["zrange", "z", "99", "100"]),
        bulks(&["m00099", "m04900"])
    );
}

/// Redis's "ZSETs ZRANK augmented skip list stress testing": random adds and removes on
/// a set that stays in one encoding, checking after each step that the member found at a
/// random rank reports that rank.
#[test]
fn zrank_matches_zrange_index_under_churn() {
    for (mut t, elements) in [(shard_with(128), 128u64), (shard_with(0), 100)] {
        let expected = if elements == 128 {
            "listpack"
        } else {
            "skiplist"
        };
        let mut next = crate::testing::xorshift(0x0dd_ba11_cafe_f00d);
        for k in 0..2000u64 {
            let member = (k % elements).to_string();
            if next(5) == 0 {
                t.run(&["zrem", "z", &member]);
            } else {
                let score = format!("0.{}", next(1_000_000_000));
                t.run(&["zadd", "z", &score, &member]);
                assert_eq!(encoding(&t, "z"), expected);
            }
            let Reply::Int(card) = t.run(&["zcard", "z"]) else {
                panic!("zcard")
            };
            if card > 0 {
                let index = next(card as u64).to_string();
                let got = t.run(&["zrange", "z", &index, &index]);
                let Reply::Array(items) = got else {
                    panic!("zrange")
                };
                let Some(Reply::Bulk(m)) = items.first() else {
                    panic!("zrange item")
                };
                let m = String::from_utf8_lossy(m).into_owned();
                assert_eq!(t.run(&["zrank", "z", &m]), int(index.parse().unwrap()));
            }
        }
    }
}

/// A score range's bounds as arguments, and what a score inside it satisfies.
type Check<'a> = (&'a str, &'a str, &'a dyn Fn(f64) -> bool);

/// Redis's "ZRANGEBYSCORE fuzzy test": for random bounds, inclusive and exclusive, the
/// ranges below, between and above them hold what ZCOUNT says and only fitting scores.
#[test]
fn zrangebyscore_and_zcount_agree_on_random_bounds() {
    for (mut t, elements) in [(shard_with(128), 128u64), (shard_with(0), 100)] {
        let mut next = crate::testing::xorshift(0x5eed_0123_4567_89ab);
        let rand = |next: &mut dyn FnMut(u64) -> u64| next(1_000_000) as f64 / 1e6;
        for i in 0..elements {
            let score = rand(&mut next).to_string();
            t.run(&["zadd", "z", &score, &i.to_string()]);
        }
        for _ in 0..100 {
            let (a, b) = (rand(&mut next), rand(&mut next));
            let (min, max) = (a.min(b), a.max(b));
            let (smin, smax) = (min.to_string(), max.to_string());
            let (xmin, xmax) = (format!("({smin}"), format!("({smax}"));
            let checks: [Check<'_>; 6] = [
                ("-inf", &smin, &|s| s <= min),
                (&smin, &smax, &|s| s >= min && s <= max),
                (&smax, "+inf", &|s| s >= max),
                ("-inf", &xmin, &|s| s < min),
                (&xmin, &xmax, &|s| s > min && s < max),
                (&xmax, "+inf", &|s| s > max),
            ];
            for (lo, hi, fits) in checks {
                let got = t.run(&["zrangebyscore", "z", lo, hi, "withscores"]);
                let Reply::Array(items) = got else {
                    panic!("zrangebyscore")
                };
                assert_eq!(
                    t.run(&["zcount", "z", lo, hi]),
                    int((items.len() / 2) as i64)
                );
                for pair in items.chunks(2) {
                    let Reply::Double(score) = pair[1] else {
                        panic!("score")
                    };
                    assert!(fits(score), "{score} outside {lo} {hi}");
                }
            }
        }
    }
}

/// Redis's events for the sorted set commands (pubsub.tcl's "zset events test",
/// t_zset.c): zadd or zincr only when a member was added or its score changed, zrem and
/// the ZREMRANGEBY* events when members went, zpopmin / zpopmax for every pop form, the
/// STORE commands' own events or del for an empty result, del when a set is emptied.
#[test]
fn keyspace_events() {
    let mut t = TestShard::new();
    t.notify_all();
    let none = Vec::<String>::new();
    let ev = |t: &mut TestShard, line: &str| {
        let args: Vec<&str> = line.split(' ').collect();
        t.events_of(&args)
    };
    assert_eq!(ev(&mut t, "zadd z 1 a 2 b"), ["n new 0:z", "z zadd 0:z"]);
    assert_eq!(ev(&mut t, "zrem z x"), none);
    assert_eq!(ev(&mut t, "zadd z 3 x 4 y 5 z"), ["z zadd 0:z"]);
    assert_eq!(ev(&mut t, "zrem z x"), ["z zrem 0:z"]);
    assert_eq!(ev(&mut t, "zadd z 1 a"), none);
    assert_eq!(ev(&mut t, "zadd z nx 9 a"), none);
    assert_eq!(ev(&mut t, "zadd z gt 0 a"), none);
    assert_eq!(ev(&mut t, "zadd z 7 a"), ["z zadd 0:z"]);
    assert_eq!(ev(&mut t, "zadd nokey xx 1 a"), none);
    assert_eq!(ev(&mut t, "zadd z incr 1 a"), ["z zincr 0:z"]);
    assert_eq!(ev(&mut t, "zincrby z 1 a"), ["z zincr 0:z"]);
    assert_eq!(ev(&mut t, "zincrby zi 1 a"), ["n new 0:zi", "z zincr 0:zi"]);
    assert_eq!(ev(&mut t, "zadd zi incr nx 1 a"), none);
    t.run(&["zadd", "zi", "inf", "a"]);
    assert_eq!(ev(&mut t, "zincrby zi -inf a"), none);
    assert_eq!(ev(&mut t, "zadd z 1 bad x"), none);

    assert_eq!(ev(&mut t, "zremrangebyrank z 10 20"), none);
    assert_eq!(
        ev(&mut t, "zremrangebyrank z 0 0"),
        ["z zremrangebyrank 0:z"]
    );
    assert_eq!(ev(&mut t, "zremrangebyscore z 100 200"), none);
    assert_eq!(
        ev(&mut t, "zremrangebyscore z 0 4"),
        ["z zremrangebyscore 0:z"]
    );
    assert_eq!(ev(&mut t, "zremrangebylex nokey - +"), none);
    assert_eq!(
        ev(&mut t, "zremrangebylex z - +"),
        ["z zremrangebylex 0:z", "g del 0:z"]
    );
    t.run(&["zadd", "z", "1", "a"]);
    assert_eq!(ev(&mut t, "zrem z a b"), ["z zrem 0:z", "g del 0:z"]);

    t.run(&["zadd", "z", "1", "a", "2", "b", "3", "c"]);
    assert_eq!(ev(&mut t, "zpopmin z"), ["z zpopmin 0:z"]);
    assert_eq!(ev(&mut t, "zpopmax z 0"), none);
    assert_eq!(ev(&mut t, "zpopmax nokey"), none);
    assert_eq!(ev(&mut t, "bzpopmax nokey z 0"), ["z zpopmax 0:z"]);
    assert_eq!(
        ev(&mut t, "zmpop 2 nokey z min count 5"),
        ["z zpopmin 0:z", "g del 0:z"]
    );
    t.run(&["zadd", "z", "1", "a"]);
    assert_eq!(
        ev(&mut t, "bzmpop 0 1 z max"),
        ["z zpopmax 0:z", "g del 0:z"]
    );
    t.run(&["zadd", "z", "1", "a"]);
    assert_eq!(ev(&mut t, "zpopmax z 10"), ["z zpopmax 0:z", "g del 0:z"]);

    t.run(&["zadd", "x", "1", "a", "2", "b"]);
    t.run(&["zadd", "y", "2", "b", "3", "c"]);
    assert_eq!(
        ev(&mut t, "zunionstore d 2 x y"),
        ["n new 0:d", "z zunionstore 0:d"]
    );
    assert_eq!(ev(&mut t, "zinterstore d 2 x y"), ["z zinterstore 0:d"]);
    assert_eq!(ev(&mut t, "zdiffstore d 2 x y"), ["z zdiffstore 0:d"]);
    assert_eq!(ev(&mut t, "zrangestore d x 0 0"), ["z zrangestore 0:d"]);
    assert_eq!(ev(&mut t, "zrangestore d x 5 10"), ["g del 0:d"]);
    assert_eq!(ev(&mut t, "zdiffstore d 2 x x"), none);
    assert_eq!(ev(&mut t, "zinterstore d 2 x nokey"), ["m keymiss 0:nokey"]);
    t.run(&["zadd", "d", "1", "a"]);
    assert_eq!(
        ev(&mut t, "zrangestore d nokey 0 -1"),
        ["m keymiss 0:nokey", "g del 0:d"]
    );

    for line in [
        "zcard nokey",
        "zscore nokey a",
        "zmscore nokey a",
        "zrank nokey a",
        "zrevrank nokey a",
        "zrange nokey 0 -1",
        "zrevrange nokey 0 -1",
        "zrangebyscore nokey 0 1",
        "zrangebylex nokey - +",
        "zcount nokey 0 1",
        "zlexcount nokey - +",
        "zrandmember nokey",
        "zrandmember nokey 2",
        "zunion 1 nokey",
        "zinter 1 nokey",
        "zdiff 1 nokey",
        "zintercard 1 nokey",
        "zscan nokey 0",
    ] {
        assert_eq!(ev(&mut t, line), ["m keymiss 0:nokey"], "{line}");
    }
}
