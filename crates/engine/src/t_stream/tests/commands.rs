//! XADD, XLEN, XRANGE, XREVRANGE, XDEL, XTRIM, XSETID.

use shardis_resp::Reply;

use super::{add, entry, field, ids, int_of, node_limits};
use crate::testing::{arr, bulk, bulks, err, int, ok, xorshift, TestShard};

const WRONG_ARITY: &str = "ERR wrong number of arguments for 'xadd' command";
const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";
const TOO_SMALL: &str =
    "ERR The ID specified in XADD is equal or smaller than the target stream top item";
const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

fn len(t: &mut TestShard, key: &str) -> i64 {
    int_of(t.run(&["xlen", key]))
}

#[test]
fn xadd_wrong_number_of_args() {
    for args in [
        &["xadd", "s"][..],
        &["xadd", "s", "*"],
        &["xadd", "s", "*", "field"],
        &["xadd", "s", "maxlen", "5", "*", "f", "v", "g"],
    ] {
        assert_eq!(t_run(args), err(WRONG_ARITY), "{args:?}");
    }
    // Options without an ID: the ID is missing, so are the pairs.
    assert_eq!(
        t_run(&["xadd", "s", "nomkstream", "maxlen", "5"]),
        err(WRONG_ARITY)
    );
}

fn t_run(args: &[&str]) -> Reply {
    TestShard::new().run(args)
}

#[test]
fn xadd_adds_entries_that_xrange_fetches() {
    let mut t = TestShard::new();
    let id1 = t.run(&["xadd", "s", "*", "item", "1", "value", "a"]);
    let id2 = t.run(&["xadd", "s", "*", "item", "2", "value", "b"]);
    assert_eq!(id1, bulk("1700000000000-0"));
    assert_eq!(
        id2,
        bulk("1700000000000-1"),
        "same millisecond: next sequence"
    );
    t.advance(5);
    assert_eq!(
        t.run(&["xadd", "s", "*", "item", "3"]),
        bulk("1700000000005-0")
    );
    assert_eq!(len(&mut t, "s"), 3);
    assert_eq!(
        t.run(&["xrange", "s", "-", "+", "count", "2"]),
        arr(vec![
            entry("1700000000000-0", &["item", "1", "value", "a"]),
            entry("1700000000000-1", &["item", "2", "value", "b"]),
        ])
    );
    // The clock going back never makes IDs go back.
    t.now_ms -= 1000;
    assert_eq!(
        t.run(&["xadd", "s", "*", "x", "y"]),
        bulk("1700000000005-1")
    );
    assert_eq!(t.run(&["type", "s"]), Reply::simple("stream"));
    assert_eq!(t.run(&["object", "encoding", "s"]), bulk("stream"));
}

#[test]
fn xadd_id_forms_and_errors() {
    let mut t = TestShard::new();
    assert_eq!(
        t.run(&["xadd", "s", "0-0", "k", "v"]),
        err("ERR The ID specified in XADD must be greater than 0-0")
    );
    assert_eq!(
        t.run(&["xadd", "s", "0", "k", "v"]),
        err("ERR The ID specified in XADD must be greater than 0-0")
    );
    assert_eq!(t.run(&["exists", "s"]), int(0), "no key is left behind");
    assert_eq!(t.run(&["xadd", "s", "0-*", "a", "b"]), bulk("0-1"));
    assert_eq!(t.run(&["xadd", "s", "123-456", "a", "b"]), bulk("123-456"));
    assert_eq!(t.run(&["xadd", "s", "123-*", "a", "b"]), bulk("123-457"));
    assert_eq!(t.run(&["xadd", "s", "789-*", "a", "b"]), bulk("789-0"));
    assert_eq!(t.run(&["xadd", "s", "42-*", "a", "b"]), err(TOO_SMALL));
    assert_eq!(t.run(&["xadd", "s", "789-0", "a", "b"]), err(TOO_SMALL));
    assert_eq!(t.run(&["xadd", "s", "790", "a", "b"]), bulk("790-0"));
    for bad in ["bad", "-", "+", "1-x", "*-1", "nomkstream1"] {
        assert_eq!(
            t.run(&["xadd", "s", bad, "a", "b"]),
            err(INVALID_ID),
            "{bad}"
        );
    }
    // The sequence of an ms-* ID cannot overflow (Redis words this one oddly).
    assert_eq!(
        t.run(&["xadd", "o", "1-18446744073709551615", "a", "b"]),
        bulk("1-18446744073709551615")
    );
    assert_eq!(
        t.run(&["xadd", "o", "1-*", "c", "d"]),
        err("ERR Elements are too large to be stored")
    );
    // The last possible ID exhausts the stream.
    let max = "18446744073709551615-18446744073709551615";
    assert_eq!(t.run(&["xadd", "m", max, "a", "b"]), bulk(max));
    assert_eq!(
        t.run(&["xadd", "m", "*", "c", "d"]),
        err("ERR The stream has exhausted the last possible ID, unable to add more items")
    );
    t.run(&["set", "str", "x"]);
    assert_eq!(t.run(&["xadd", "str", "*", "a", "b"]), err(WRONGTYPE));
    assert_eq!(t.run(&["xlen", "str"]), err(WRONGTYPE));
    assert_eq!(t.run(&["xlen", "nokey"]), int(0));
}

#[test]
fn xadd_id_edge_after_a_full_sequence() {
    // A future millisecond with the largest sequence: the next auto ID moves to the next ms.
    let mut t = TestShard::new();
    add(
        &mut t,
        "x",
        "2577343934890-18446744073709551615",
        &["f", "v"],
    );
    assert_eq!(
        t.run(&["xadd", "x", "*", "f2", "v2"]),
        bulk("2577343934891-0")
    );
}

#[test]
fn xadd_options() {
    let mut t = TestShard::new();
    assert_eq!(
        t.run(&["xadd", "s", "nomkstream", "*", "item", "1"]),
        Reply::Nil
    );
    assert_eq!(t.run(&["exists", "s"]), int(0));
    add(&mut t, "s", "1", &["item", "1", "value", "a"]);
    assert_eq!(
        t.run(&["xadd", "s", "NOMKSTREAM", "2", "item", "2", "value", "b"]),
        bulk("2-0")
    );
    assert_eq!(
        t.run(&["xrange", "s", "-", "+"]),
        arr(vec![
            entry("1-0", &["item", "1", "value", "a"]),
            entry("2-0", &["item", "2", "value", "b"]),
        ])
    );
    let both = "ERR syntax error, MAXLEN and MINID options at the same time are not compatible";
    for (args, want) in [
        (
            &["maxlen", "-1"][..],
            "ERR The MAXLEN argument must be >= 0.",
        ),
        (
            &["maxlen", "x"],
            "ERR value is not an integer or out of range",
        ),
        (
            &["maxlen", "~", "x"],
            "ERR value is not an integer or out of range",
        ),
        (&["maxlen", "1", "minid", "1"], both),
        (&["minid", "1", "maxlen", "1"], both),
        (&["minid", "x"], INVALID_ID),
        (&["minid", "-"], INVALID_ID),
        (
            &["limit", "x"],
            "ERR value is not an integer or out of range",
        ),
        (&["limit", "-1"], "ERR The LIMIT argument must be >= 0."),
        (
            &["limit", "5"],
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ),
        // LIMIT 0 passes the first check but not the second, even with no strategy.
        (
            &["limit", "0"],
            "ERR syntax error, LIMIT cannot be used without the special ~ option",
        ),
        (
            &["maxlen", "5", "limit", "5"],
            "ERR syntax error, LIMIT cannot be used without the special ~ option",
        ),
        (
            &["maxlen", "=", "5", "limit", "5"],
            "ERR syntax error, LIMIT cannot be used without the special ~ option",
        ),
    ] {
        let mut full = vec!["xadd", "s"];
        full.extend_from_slice(args);
        full.extend_from_slice(&["*", "f", "v"]);
        assert_eq!(t.run(&full), err(want), "{args:?}");
    }
    // Options are matched case-insensitively; `~` and `=` need an argument after them.
    assert_eq!(
        t.run(&["xadd", "s", "MaXlEn", "=", "1", "3", "a", "b"]),
        bulk("3-0")
    );
    assert_eq!(len(&mut t, "s"), 1);
    assert_eq!(
        t.run(&["xadd", "s", "maxlen", "~", "4", "a", "b"]),
        err(INVALID_ID)
    );
    assert_eq!(
        t.run(&["xadd", "s", "maxlen", "a", "b"]),
        err("ERR value is not an integer or out of range")
    );
}

#[test]
fn xadd_with_maxlen() {
    let mut t = TestShard::new();
    let mut rand = xorshift(7);
    for j in 0..1000 {
        let field = if rand(10) < 9 { "xitem" } else { "yitem" };
        let id = format!("{}", j + 1);
        t.run(&[
            "xadd",
            "mystream",
            "MAXLEN",
            "5",
            &id,
            field,
            &j.to_string(),
        ]);
    }
    assert_eq!(len(&mut t, "mystream"), 5);
    let Reply::Array(items) = t.run(&["xrange", "mystream", "-", "+"]) else {
        panic!("xrange");
    };
    for (n, item) in items.iter().enumerate() {
        let Reply::Array(parts) = item else { panic!() };
        let Reply::Array(pairs) = &parts[1] else {
            panic!()
        };
        assert_eq!(pairs[1], bulk(&(995 + n).to_string()));
    }
    for j in 0..1000 {
        let id = format!("{}", j + 1);
        t.run(&[
            "xadd",
            "eq",
            "MAXLEN",
            "=",
            "5",
            &id,
            "xitem",
            &j.to_string(),
        ]);
    }
    assert_eq!(len(&mut t, "eq"), 5);
    // Approximate: only whole nodes of 100 go, so 600 remain for 555.
    for j in 0..1000 {
        let id = format!("{}", j + 1);
        t.run(&[
            "xadd",
            "approx",
            "MAXLEN",
            "~",
            "555",
            &id,
            "xitem",
            &j.to_string(),
        ]);
    }
    assert_eq!(len(&mut t, "approx"), 600);
}

#[test]
fn xadd_with_minid() {
    let mut t = TestShard::new();
    for j in 1..1001 {
        let minid = if j >= 5 { j - 5 } else { 1000 };
        t.run(&[
            "xadd",
            "mystream",
            "MINID",
            &minid.to_string(),
            &j.to_string(),
            "xitem",
            &j.to_string(),
        ]);
    }
    assert_eq!(len(&mut t, "mystream"), 6);
    assert_eq!(
        ids(&t.run(&["xrange", "mystream", "-", "+"])),
        ["995-0", "996-0", "997-0", "998-0", "999-0", "1000-0"]
    );
}

#[test]
fn xadd_trim_thresholds_beyond_the_stream_remove_nothing() {
    let mut t = TestShard::new();
    for j in 1..=100 {
        add(&mut t, "s", &j.to_string(), &["xitem", "v"]);
    }
    t.run(&["xadd", "s", "MAXLEN", "200", "101", "xitem", "v"]);
    assert_eq!(len(&mut t, "s"), 101);
    t.run(&["xadd", "s", "MINID", "1", "102", "xitem", "v"]);
    assert_eq!(len(&mut t, "s"), 102);
    t.run(&["xadd", "s", "MAXLEN", "~", "102", "103", "xitem", "v"]);
    t.run(&["xadd", "s", "MINID", "~", "100", "104", "xitem", "v"]);
    assert_eq!(len(&mut t, "s"), 104);
}

#[test]
fn xadd_with_limit() {
    let mut t = TestShard::new();
    for j in 1..=3 {
        add(&mut t, "yourstream", &j.to_string(), &["xitem", "v"]);
    }
    t.run(&[
        "xadd",
        "yourstream",
        "MAXLEN",
        "~",
        "0",
        "limit",
        "1",
        "4",
        "xitem",
        "v",
    ]);
    assert_eq!(
        len(&mut t, "yourstream"),
        4,
        "a whole node is more than the limit"
    );
    node_limits(&mut t, 10, 4096);
    for j in 1..=100 {
        add(&mut t, "mystream", &j.to_string(), &["xitem", "v"]);
    }
    t.run(&[
        "xadd", "mystream", "MAXLEN", "~", "55", "LIMIT", "30", "101", "xitem", "v",
    ]);
    assert_eq!(len(&mut t, "mystream"), 71);
    t.run(&[
        "xadd", "mystream", "MAXLEN", "~", "55", "LIMIT", "30", "102", "xitem", "v",
    ]);
    assert_eq!(len(&mut t, "mystream"), 62);
    // The same with MINID.
    for j in 1..=100 {
        add(&mut t, "byid", &j.to_string(), &["xitem", "v"]);
    }
    t.run(&[
        "xadd", "byid", "MINID", "~", "55", "LIMIT", "30", "101", "xitem", "v",
    ]);
    assert_eq!(len(&mut t, "byid"), 71);
}

#[test]
fn xtrim_by_length() {
    let mut t = TestShard::new();
    for j in 1..=1000 {
        add(&mut t, "s", &j.to_string(), &["xitem", &j.to_string()]);
    }
    assert_eq!(t.run(&["xtrim", "s", "MAXLEN", "666"]), int(334));
    assert_eq!(len(&mut t, "s"), 666);
    t.run(&["xtrim", "s", "MAXLEN", "=", "555"]);
    assert_eq!(len(&mut t, "s"), 555);
    t.run(&["xtrim", "s", "MAXLEN", "~", "444"]);
    assert_eq!(len(&mut t, "s"), 500);
    t.run(&["xtrim", "s", "MAXLEN", "~", "400"]);
    assert_eq!(len(&mut t, "s"), 400);
    assert_eq!(t.run(&["xtrim", "s", "MAXLEN", "~", "400"]), int(0));
}

#[test]
fn xtrim_limits() {
    let mut t = TestShard::new();
    node_limits(&mut t, 1, 4096);
    for j in 1..=102 {
        add(&mut t, "a", &j.to_string(), &["xitem", "v"]);
        add(&mut t, "b", &j.to_string(), &["xitem", "v"]);
        add(&mut t, "c", &j.to_string(), &["xitem", "v"]);
    }
    // `~` without LIMIT removes at most 100 nodes' worth of entries.
    t.run(&["xtrim", "a", "MAXLEN", "~", "1"]);
    assert_eq!(len(&mut t, "a"), 2);
    // Exact trimming is not limited.
    t.run(&["xtrim", "b", "MAXLEN", "1"]);
    assert_eq!(len(&mut t, "b"), 1);
    assert_eq!(
        t.run(&["xtrim", "c", "MAXLEN", "1", "LIMIT", "30"]),
        err("ERR syntax error, LIMIT cannot be used without the special ~ option")
    );
    node_limits(&mut t, 2, 4096);
    for j in 1..=3 {
        add(&mut t, "d", &j.to_string(), &["xitem", "v"]);
    }
    assert_eq!(
        t.run(&["xtrim", "d", "MAXLEN", "~", "0", "LIMIT", "1"]),
        int(0)
    );
    assert_eq!(
        t.run(&["xtrim", "d", "MAXLEN", "~", "0", "LIMIT", "2"]),
        int(2)
    );
    // The default limit follows stream-node-max-entries (10 nodes of 10 here: all go).
    node_limits(&mut t, 10, 4096);
    for j in 1..=100 {
        add(&mut t, "e", &j.to_string(), &["xitem", "v"]);
    }
    t.run(&["xtrim", "e", "MAXLEN", "~", "85"]);
    assert_eq!(len(&mut t, "e"), 90);
}

#[test]
fn xtrim_by_id() {
    let mut t = TestShard::new();
    for j in 1..=5 {
        add(&mut t, "s", &format!("{j}-0"), &["f", "v"]);
    }
    t.run(&["xtrim", "s", "MINID", "=", "3-0"]);
    assert_eq!(
        ids(&t.run(&["xrange", "s", "-", "+"])),
        ["3-0", "4-0", "5-0"]
    );
    // A large ms delta from the node's master entry.
    add(&mut t, "big", "1-0", &["f", "v"]);
    add(&mut t, "big", "1641544570597-0", &["f", "v"]);
    add(&mut t, "big", "1641544570597-1", &["f", "v"]);
    t.run(&["xtrim", "big", "MINID", "1641544570597-0"]);
    assert_eq!(
        t.run(&["xrange", "big", "-", "+"]),
        arr(vec![
            entry("1641544570597-0", &["f", "v"]),
            entry("1641544570597-1", &["f", "v"]),
        ])
    );
}

#[test]
fn xtrim_errors() {
    let mut t = TestShard::new();
    add(&mut t, "s", "1", &["f", "v"]);
    t.run(&["set", "str", "x"]);
    let no_strategy = "ERR syntax error, XTRIM must be called with a trimming strategy";
    assert_eq!(t.run(&["xtrim", "s", "foo", "1"]), err("ERR syntax error"));
    assert_eq!(
        t.run(&["xtrim", "s", "maxlen", "1", "maxlen"]),
        err("ERR syntax error")
    );
    assert_eq!(t.run(&["xtrim", "s", "*", "1"]), err("ERR syntax error"));
    assert_eq!(
        t.run(&["xtrim", "s", "foo"]),
        err("ERR wrong number of arguments for 'xtrim' command")
    );
    assert_eq!(
        t.run(&["xtrim", "s", "nomkstream", "maxlen", "1"]),
        err("ERR syntax error")
    );
    assert_eq!(t.run(&["xtrim", "s", "limit", "0"]), err(no_strategy));
    assert_eq!(
        t.run(&["xtrim", "s", "limit", "1"]),
        err("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy")
    );
    assert_eq!(t.run(&["xtrim", "nokey", "maxlen", "0"]), int(0));
    assert_eq!(t.run(&["xtrim", "str", "maxlen", "0"]), err(WRONGTYPE));
    assert_eq!(
        t.run(&["xtrim", "str", "maxlen", "x"]),
        err("ERR value is not an integer or out of range")
    );
}

#[test]
fn mass_insertion_and_iteration() {
    let mut t = TestShard::new();
    let mut rand = xorshift(11);
    for j in 0..10_000 {
        let id = format!("{}-{}", 1000 + j / 7, j % 7);
        if rand(10) < 9 {
            add(&mut t, "mystream", &id, &["item", &j.to_string()]);
        } else {
            add(
                &mut t,
                "mystream",
                &id,
                &["item", &j.to_string(), "otherfield", "foo"],
            );
        }
    }
    assert_eq!(len(&mut t, "mystream"), 10_000);
    let Reply::Array(all) = t.run(&["xrange", "mystream", "-", "+"]) else {
        panic!()
    };
    assert_eq!(all.len(), 10_000);
    for (j, item) in all.iter().enumerate() {
        let Reply::Array(parts) = item else { panic!() };
        let Reply::Array(pairs) = &parts[1] else {
            panic!()
        };
        assert_eq!(&pairs[..2], &[bulk("item"), bulk(&j.to_string())]);
    }
    assert_eq!(
        t.run(&["xrange", "mystream", "-", "+", "COUNT", "10"]),
        arr(all[..10].to_vec())
    );
    let mut rev = all.clone();
    rev.reverse();
    assert_eq!(
        t.run(&["xrevrange", "mystream", "+", "-"]),
        arr(rev.clone())
    );
    assert_eq!(
        t.run(&["xrevrange", "mystream", "+", "-", "COUNT", "10"]),
        arr(rev[..10].to_vec())
    );
    // Iterating with COUNT and an exclusive start visits every entry once.
    let mut last = "-".to_string();
    let mut seen = 0;
    loop {
        let page = t.run(&["xrange", "mystream", &last, "+", "COUNT", "100"]);
        let page_ids = ids(&page);
        if page_ids.is_empty() {
            break;
        }
        seen += page_ids.len();
        last = format!("({}", page_ids[page_ids.len() - 1]);
    }
    assert_eq!(seen, 10_000);
}

#[test]
fn xrange_exclusive_ranges() {
    let mut t = TestShard::new();
    let all = [
        "0-1",
        "0-18446744073709551615",
        "1-0",
        "42-0",
        "42-42",
        "18446744073709551615-18446744073709551614",
        "18446744073709551615-18446744073709551615",
    ];
    for id in all {
        add(&mut t, "vipstream", id, &["foo", "bar"]);
    }
    let count =
        |t: &mut TestShard, a: &str, b: &str| ids(&t.run(&["xrange", "vipstream", a, b])).len();
    assert_eq!(count(&mut t, "-", "+"), 7);
    assert_eq!(count(&mut t, "(0-1", "+"), 6);
    assert_eq!(
        count(&mut t, "-", "(18446744073709551615-18446744073709551615"),
        6
    );
    assert_eq!(count(&mut t, "(0-1", "(1-0"), 1);
    assert_eq!(count(&mut t, "(1-0", "(42-42"), 1);
    assert_eq!(t.run(&["xrange", "vipstream", "(-", "+"]), err(INVALID_ID));
    assert_eq!(t.run(&["xrange", "vipstream", "-", "(+"]), err(INVALID_ID));
    assert_eq!(
        t.run(&[
            "xrange",
            "vipstream",
            "(18446744073709551615-18446744073709551615",
            "+"
        ]),
        err("ERR invalid start ID for the interval")
    );
    assert_eq!(
        t.run(&["xrange", "vipstream", "-", "(0-0"]),
        err("ERR invalid end ID for the interval")
    );
    assert_eq!(
        t.run(&["xrevrange", "vipstream", "(0-0", "-"]),
        err("ERR invalid end ID for the interval")
    );
    // A millisecond alone covers all its sequences, inclusive or not.
    assert_eq!(
        ids(&t.run(&["xrange", "vipstream", "42", "42"])),
        ["42-0", "42-42"]
    );
    assert_eq!(
        ids(&t.run(&["xrange", "vipstream", "(1", "42"])),
        ["42-0", "42-42"]
    );
}

#[test]
fn xrange_options_and_errors() {
    let mut t = TestShard::new();
    for j in 1..=5 {
        add(&mut t, "s", &j.to_string(), &["f", "v"]);
    }
    t.run(&["set", "str", "x"]);
    assert_eq!(
        t.run(&["xrange", "s", "-", "+", "count", "0"]),
        Reply::NilArray
    );
    assert_eq!(
        t.run(&["xrange", "s", "-", "+", "count", "-5"]),
        Reply::NilArray
    );
    assert_eq!(
        t.run(&["xrange", "nokey", "-", "+", "count", "0"]),
        arr(vec![])
    );
    assert_eq!(
        ids(&t.run(&["xrange", "s", "-", "+", "count", "1", "count", "2"])),
        ["1-0", "2-0"]
    );
    assert_eq!(
        t.run(&["xrange", "s", "-", "+", "count"]),
        err("ERR syntax error")
    );
    assert_eq!(
        t.run(&["xrange", "s", "-", "+", "foo", "1"]),
        err("ERR syntax error")
    );
    assert_eq!(
        t.run(&["xrange", "s", "-", "+", "count", "x"]),
        err("ERR value is not an integer or out of range")
    );
    assert_eq!(t.run(&["xrange", "s", "x", "+"]), err(INVALID_ID));
    assert_eq!(t.run(&["xrange", "str", "-", "+"]), err(WRONGTYPE));
    // IDs are checked before the key.
    assert_eq!(t.run(&["xrange", "str", "x", "+"]), err(INVALID_ID));
    assert_eq!(t.run(&["xrange", "s", "4", "2"]), arr(vec![]));
    assert_eq!(
        ids(&t.run(&["xrevrange", "s", "4", "2"])),
        ["4-0", "3-0", "2-0"]
    );
}

#[test]
fn xrevrange_regression_5006() {
    let mut t = TestShard::new();
    add(&mut t, "teststream", "1234567891230", &["key1", "value1"]);
    add(&mut t, "teststream", "1234567891240", &["key2", "value2"]);
    add(&mut t, "teststream", "1234567891250", &["key3", "value3"]);
    add(&mut t, "teststream2", "1234567891230", &["key1", "value1"]);
    add(&mut t, "teststream2", "1234567891240", &["key1", "value2"]);
    add(&mut t, "teststream2", "1234567891250", &["key1", "value3"]);
    assert_eq!(
        t.run(&["xrevrange", "teststream", "1234567891245", "-"]),
        arr(vec![
            entry("1234567891240-0", &["key2", "value2"]),
            entry("1234567891230-0", &["key1", "value1"]),
        ])
    );
    assert_eq!(
        t.run(&["xrevrange", "teststream2", "1234567891245", "-"]),
        arr(vec![
            entry("1234567891240-0", &["key1", "value2"]),
            entry("1234567891230-0", &["key1", "value1"]),
        ])
    );
}

#[test]
fn xrange_fuzzing_against_a_model() {
    let mut t = TestShard::new();
    node_limits(&mut t, 7, 4096);
    let mut rand = xorshift(42);
    let mut model: Vec<(u64, u64)> = Vec::new();
    let mut ms = 1000;
    for _ in 0..2000 {
        ms += rand(3);
        let seq = match model.last() {
            Some(&(m, s)) if m == ms => s + 1 + rand(3),
            _ => rand(5),
        };
        add(&mut t, "s", &format!("{ms}-{seq}"), &["f", "v"]);
        model.push((ms, seq));
    }
    for _ in 0..200 {
        let a = (1000 + rand(ms - 999), rand(6));
        let b = (1000 + rand(ms - 999), rand(6));
        let want: Vec<String> = model
            .iter()
            .filter(|&&id| id >= a && id <= b)
            .map(|(m, s)| format!("{m}-{s}"))
            .collect();
        let got = ids(&t.run(&[
            "xrange",
            "s",
            &format!("{}-{}", a.0, a.1),
            &format!("{}-{}", b.0, b.1),
        ]));
        assert_eq!(got, want, "{a:?} {b:?}");
        let mut rev = ids(&t.run(&[
            "xrevrange",
            "s",
            &format!("{}-{}", b.0, b.1),
            &format!("{}-{}", a.0, a.1),
        ]));
        rev.reverse();
        assert_eq!(rev, want);
    }
}

#[test]
fn xdel_basic_and_errors() {
    let mut t = TestShard::new();
    add(&mut t, "somestream", "1", &["foo", "value0"]);
    add(&mut t, "somestream", "2", &["foo", "value1"]);
    add(&mut t, "somestream", "3", &["foo", "value2"]);
    assert_eq!(t.run(&["xdel", "somestream", "2-0"]), int(1));
    assert_eq!(len(&mut t, "somestream"), 2);
    assert_eq!(
        t.run(&["xrange", "somestream", "-", "+"]),
        arr(vec![
            entry("1-0", &["foo", "value0"]),
            entry("3-0", &["foo", "value2"])
        ])
    );
    assert_eq!(t.run(&["xdel", "somestream", "2-0", "3", "9"]), int(1));
    // Every ID is checked before anything is deleted; a missing key answers 0 first.
    assert_eq!(t.run(&["xdel", "somestream", "1", "bad"]), err(INVALID_ID));
    assert_eq!(len(&mut t, "somestream"), 1);
    assert_eq!(t.run(&["xdel", "nokey", "bad"]), int(0));
    t.run(&["set", "str", "x"]);
    assert_eq!(t.run(&["xdel", "str", "1"]), err(WRONGTYPE));
    assert_eq!(t.run(&["xdel", "somestream", "-"]), err(INVALID_ID));
    // An emptied stream stays.
    assert_eq!(t.run(&["xdel", "somestream", "1"]), int(1));
    assert_eq!(t.run(&["exists", "somestream"]), int(1));
    assert_eq!(len(&mut t, "somestream"), 0);
}

#[test]
fn xdel_fuzz_down_to_empty() {
    let mut t = TestShard::new();
    let mut all = Vec::new();
    let mut x = 0;
    loop {
        let id = format!("{}", x + 1);
        add(&mut t, "somestream", &id, &["item", &x.to_string()]);
        all.push(id);
        x += 1;
        let info = t.run(&["xinfo", "stream", "somestream"]);
        if int_of(field(&info, "radix-tree-keys")) > 20 {
            break;
        }
    }
    assert_eq!(len(&mut t, "somestream"), x);
    let mut rand = xorshift(3);
    for i in (1..all.len()).rev() {
        all.swap(i, rand(i as u64 + 1) as usize);
    }
    for id in all {
        assert_eq!(t.run(&["xdel", "somestream", &id]), int(1));
        x -= 1;
        assert_eq!(len(&mut t, "somestream"), x);
        if x % 100 == 0 {
            assert_eq!(
                ids(&t.run(&["xrange", "somestream", "-", "+"])).len() as i64,
                x
            );
        }
    }
    let info = t.run(&["xinfo", "stream", "somestream"]);
    assert_eq!(field(&info, "radix-tree-keys"), int(0));
    assert_eq!(field(&info, "radix-tree-nodes"), int(1));
}

#[test]
fn xsetid() {
    let mut t = TestShard::new();
    t.run(&["xadd", "mystream", "MAXLEN", "0", "*", "a", "b"]);
    let info = t.run(&["xinfo", "stream", "mystream"]);
    assert_eq!(field(&info, "length"), int(0));
    assert_eq!(t.run(&["xsetid", "mystream", "200-0"]), ok());
    let info = t.run(&["xinfo", "stream", "mystream"]);
    assert_eq!(field(&info, "last-generated-id"), bulk("200-0"));
    assert_eq!(field(&info, "entries-added"), int(1));
    t.run(&["xadd", "mystream", "*", "a", "b"]);
    let smaller = "ERR The ID specified in XSETID is smaller than the target stream top item";
    assert_eq!(t.run(&["xsetid", "mystream", "1-1"]), err(smaller));
    assert_eq!(t.run(&["xsetid", "stream", "1-1"]), err("ERR no such key"));
    assert_eq!(
        t.run(&["xsetid", "stream", "1-1", "0"]),
        err("ERR syntax error")
    );
    assert_eq!(
        t.run(&["xsetid", "stream", "1-1", "0-0"]),
        err("ERR syntax error")
    );
    assert_eq!(
        t.run(&[
            "xsetid",
            "stream",
            "1-1",
            "ENTRIESADDED",
            "-1",
            "MAXDELETEDID",
            "0-0"
        ]),
        err("ERR entries_added must be positive")
    );
    add(&mut t, "x", "1-0", &["a", "b"]);
    assert_eq!(
        t.run(&[
            "xsetid",
            "x",
            "1-0",
            "ENTRIESADDED",
            "1",
            "MAXDELETEDID",
            "2-0"
        ]),
        err("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id")
    );
    assert_eq!(
        t.run(&[
            "xsetid",
            "x",
            "1-0",
            "ENTRIESADDED",
            "0",
            "MAXDELETEDID",
            "0-0"
        ]),
        err("ERR The entries_added specified in XSETID is smaller than the target stream length")
    );
    assert_eq!(t.run(&["xsetid", "x", "+"]), err(INVALID_ID));
    assert_eq!(
        t.run(&["xsetid", "x", "5-0", "ENTRIESADDED", "x"]),
        err("ERR value is not an integer or out of range")
    );
    assert_eq!(
        t.run(&[
            "xsetid",
            "x",
            "5-0",
            "ENTRIESADDED",
            "9",
            "MAXDELETEDID",
            "3"
        ]),
        ok()
    );
    let info = t.run(&["xinfo", "stream", "x"]);
    assert_eq!(field(&info, "last-generated-id"), bulk("5-0"));
    assert_eq!(field(&info, "entries-added"), int(9));
    assert_eq!(field(&info, "max-deleted-entry-id"), bulk("3-0"));
    t.run(&["set", "str", "x"]);
    assert_eq!(t.run(&["xsetid", "str", "1"]), err(WRONGTYPE));
    // An empty stream takes any ID, even one below its last.
    t.run(&["xdel", "x", "1-0"]);
    assert_eq!(t.run(&["xsetid", "x", "0-0"]), ok());
    assert_eq!(t.run(&["xadd", "x", "1-1", "a", "b"]), bulk("1-1"));
}

#[test]
fn entries_added_first_and_max_deleted_ids() {
    let mut t = TestShard::new();
    add(&mut t, "x", "1-0", &["data", "a"]);
    let info = t.run(&["xinfo", "stream", "x", "full"]);
    assert_eq!(field(&info, "entries-added"), int(1));
    assert_eq!(field(&info, "recorded-first-entry-id"), bulk("1-0"));
    add(&mut t, "x", "2-0", &["data", "a"]);
    let info = t.run(&["xinfo", "stream", "x", "full"]);
    assert_eq!(field(&info, "entries-added"), int(2));
    assert_eq!(field(&info, "recorded-first-entry-id"), bulk("1-0"));

    t.run(&["del", "x"]);
    for j in 1..=5 {
        add(&mut t, "x", &format!("{j}-0"), &["data", "a"]);
    }
    let first = |t: &mut TestShard| {
        field(
            &t.run(&["xinfo", "stream", "x", "full"]),
            "recorded-first-entry-id",
        )
    };
    let max_deleted =
        |t: &mut TestShard| field(&t.run(&["xinfo", "stream", "x"]), "max-deleted-entry-id");
    assert_eq!(max_deleted(&mut t), bulk("0-0"));
    t.run(&["xdel", "x", "2-0"]);
    assert_eq!(first(&mut t), bulk("1-0"));
    assert_eq!(max_deleted(&mut t), bulk("2-0"));
    t.run(&["xdel", "x", "1-0"]);
    assert_eq!(first(&mut t), bulk("3-0"));
    assert_eq!(
        max_deleted(&mut t),
        bulk("2-0"),
        "the largest deleted ID stays"
    );
    t.run(&["xtrim", "x", "MAXLEN", "=", "2"]);
    assert_eq!(first(&mut t), bulk("4-0"));
}

#[test]
fn values_round_trip_exactly() {
    let mut t = TestShard::new();
    let values = [
        "",
        "0",
        "-0",
        "007",
        "12",
        "-12",
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "4611686018427387904",
        "1.5",
        " 1",
        "é",
        "a\u{0}b",
    ];
    for (n, v) in values.iter().enumerate() {
        add(&mut t, "s", &(n + 1).to_string(), &[v, v]);
    }
    let want: Vec<Reply> = values
        .iter()
        .enumerate()
        .map(|(n, v)| entry(&format!("{}-0", n + 1), &[v, v]))
        .collect();
    assert_eq!(t.run(&["xrange", "s", "-", "+"]), arr(want));
    assert_eq!(
        t.run(&["xrange", "s", "14", "14"]),
        arr(vec![arr(vec![
            bulk("14-0"),
            bulks(&["a\u{0}b", "a\u{0}b"])
        ])])
    );
}
