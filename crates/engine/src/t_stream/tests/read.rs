//! XREAD and XREADGROUP, the blocking hooks and the split over shards.

use std::time::Duration;

use bytes::Bytes;
use shardis_resp::Reply;

use super::{add, entry, field, ids, int_of};
use crate::command::REGISTRY;
use crate::shard::Ctx;
use crate::t_stream::{block_timeout, blocked_ready, resolve_block_ids, serve_blocked};
use crate::testing::{arr, bulk, err, int, TestShard};

const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";

fn args(v: &[&str]) -> Vec<Bytes> {
    v.iter()
        .map(|s| Bytes::copy_from_slice(s.as_bytes()))
        .collect()
}

/// One stream's part of an XREAD reply (RESP2).
fn stream_part(key: &str, entries: Vec<Reply>) -> Reply {
    arr(vec![bulk(key), arr(entries)])
}

#[test]
fn xread_basics() {
    let mut t = TestShard::new();
    for j in 0..10 {
        add(
            &mut t,
            "mystream",
            &format!("{}", j + 1),
            &["item", &j.to_string()],
        );
    }
    assert_eq!(
        t.run(&["xread", "COUNT", "1", "STREAMS", "mystream", "0-0"]),
        arr(vec![stream_part(
            "mystream",
            vec![entry("1-0", &["item", "0"])]
        )])
    );
    // Empty or missing streams are left out; nothing at all is the null array.
    assert_eq!(
        t.run(&["xread", "STREAMS", "s1", "s2", "0-0", "0-0"]),
        Reply::NilArray
    );
    let two = t.run(&[
        "xread", "COUNT", "1", "STREAMS", "nostream", "mystream", "0-0", "0-0",
    ]);
    assert_eq!(
        two,
        arr(vec![stream_part(
            "mystream",
            vec![entry("1-0", &["item", "0"])]
        )])
    );
    // Only entries after the ID; `$` is the last ID, so it never returns anything now.
    assert_eq!(
        ids(&field_of(t.run(&["xread", "STREAMS", "mystream", "8"]))),
        ["9-0", "10-0"]
    );
    assert_eq!(
        t.run(&["xread", "STREAMS", "mystream", "$"]),
        Reply::NilArray
    );
    assert_eq!(
        t.run(&["xread", "STREAMS", "mystream", "10"]),
        Reply::NilArray
    );
    // A stream named twice is read twice.
    assert_eq!(
        t.run(&["xread", "COUNT", "1", "STREAMS", "mystream", "mystream", "9", "8"]),
        arr(vec![
            stream_part("mystream", vec![entry("10-0", &["item", "9"])]),
            stream_part("mystream", vec![entry("9-0", &["item", "8"])]),
        ])
    );
    // COUNT 0 and negative COUNT mean no limit.
    assert_eq!(
        ids(&field_of(
            t.run(&["xread", "COUNT", "-1", "STREAMS", "mystream", "5"])
        ))
        .len(),
        5
    );
}

/// The entries of the first stream of an XREAD reply.
fn field_of(reply: Reply) -> Reply {
    match reply {
        Reply::Array(mut streams) if !streams.is_empty() => match streams.remove(0) {
            Reply::Array(mut kv) if kv.len() == 2 => kv.remove(1),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

#[test]
fn xread_resp3_is_a_map() {
    let mut t = TestShard::new();
    add(&mut t, "s", "1", &["f", "v"]);
    t.resp3 = true;
    assert_eq!(
        t.run(&["xread", "STREAMS", "s", "0"]),
        Reply::Map(vec![(bulk("s"), arr(vec![entry("1-0", &["f", "v"])]))])
    );
    assert_eq!(t.run(&["xread", "STREAMS", "s", "1"]), Reply::NilArray);
}

#[test]
fn xread_streamid_edge() {
    let mut t = TestShard::new();
    add(&mut t, "x", "1-1", &["f", "v"]);
    add(&mut t, "x", "1-18446744073709551615", &["f", "v"]);
    add(&mut t, "x", "2-1", &["f", "v"]);
    assert_eq!(
        t.run(&[
            "xread",
            "BLOCK",
            "0",
            "STREAMS",
            "x",
            "1-18446744073709551615"
        ]),
        arr(vec![stream_part("x", vec![entry("2-1", &["f", "v"])])])
    );
}

#[test]
fn xread_errors_in_redis_order() {
    let mut t = TestShard::new();
    add(&mut t, "q", "1", &["f", "v"]);
    t.run(&["set", "str", "x"]);
    let unbalanced =
        "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.";
    for (a, want) in [
        (&["count", "1", "streams", "q"][..], unbalanced),
        (&["streams", "q", "0", "x"], unbalanced),
        (&["count", "x", "streams", "q", "0"], "ERR value is not an integer or out of range"),
        (&["block", "x", "streams", "q", "0"], "ERR timeout is not an integer or out of range"),
        (&["block", "-1", "streams", "q", "0"], "ERR timeout is negative"),
        (&["block", "1.5", "streams", "q", "0"], "ERR timeout is not an integer or out of range"),
        (&["group", "g", "c", "streams", "q", "0"], "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead."),
        (&["noack", "streams", "q", "0"], "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead."),
        (&["foo", "streams", "q", "0"], "ERR syntax error"),
        (&["count", "1", "q", "0"], "ERR syntax error"),
        (&["streams", "q", ">"], "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option."),
        (&["streams", "q", "bad"], INVALID_ID),
        (&["streams", "q", "-"], INVALID_ID),
        (&["streams", "q", "+"], INVALID_ID),
        (&["streams", "str", "q", "0", "bad"], "WRONGTYPE Operation against a key holding the wrong kind of value"),
        (&["streams", "q", "str", "bad", "0"], INVALID_ID),
    ] {
        let mut full = vec!["xread"];
        full.extend_from_slice(a);
        assert_eq!(t.run(&full), err(want), "{a:?}");
    }
    assert_eq!(
        t.run(&["xread", "streams"]),
        err("ERR wrong number of arguments for 'xread' command")
    );
    // STREAMS must have something after it to be the keyword.
    assert_eq!(
        t.run(&["xread", "count", "1", "streams"]),
        err("ERR syntax error")
    );
}

#[test]
fn blocking_reads_answer_null_when_there_is_nothing() {
    let mut t = TestShard::new();
    add(&mut t, "s1", "666", &["f", "v"]);
    add(&mut t, "s1", "667", &["f2", "v2"]);
    t.run(&["xdel", "s1", "667"]);
    // The last live entry is 666: nothing after it, so the client would block.
    assert_eq!(
        t.run(&["xread", "BLOCK", "10", "STREAMS", "s1", "666"]),
        Reply::NilArray
    );
    t.resp3 = true;
    assert_eq!(
        t.run(&["xread", "BLOCK", "10", "STREAMS", "s1", "666"]),
        Reply::NilArray
    );
}

#[test]
fn block_timeouts() {
    let bt = |v: &[&str]| block_timeout(&args(v));
    assert_eq!(bt(&["xread", "streams", "s", "0"]), Ok(None));
    assert_eq!(
        bt(&["xread", "block", "0", "streams", "s", "0"]),
        Ok(Some(Duration::ZERO))
    );
    assert_eq!(
        bt(&[
            "xreadgroup",
            "group",
            "g",
            "c",
            "count",
            "5",
            "noack",
            "BLOCK",
            "1500",
            "streams",
            "s",
            ">"
        ]),
        Ok(Some(Duration::from_millis(1500)))
    );
    assert_eq!(
        bt(&["xread", "block", "1", "block", "2", "streams", "s", "0"]),
        Ok(Some(Duration::from_millis(2)))
    );
    assert_eq!(
        bt(&["xread", "block", "-1", "streams", "s", "0"]),
        Err(err("ERR timeout is negative"))
    );
    assert_eq!(
        bt(&["xread", "block", "x", "streams", "s", "0"]),
        Err(err("ERR timeout is not an integer or out of range"))
    );
    // A key named BLOCK is not the option.
    assert_eq!(bt(&["xread", "streams", "block", "5"]), Ok(None));
}

/// Runs `f` with a context on the test shard.
fn with_ctx<R>(t: &mut TestShard, f: impl FnOnce(&mut Ctx<'_>) -> R) -> R {
    f(&mut Ctx::new(&mut t.shard, t.db, t.now_ms, t.resp3))
}

#[test]
fn dollar_is_pinned_when_blocking() {
    let mut t = TestShard::new();
    add(&mut t, "s2", "5", &["old", "x"]);
    let call = args(&[
        "xread", "block", "0", "streams", "s1", "s2", "s3", "$", "$", "0-1",
    ]);
    let pinned = with_ctx(&mut t, |ctx| resolve_block_ids(ctx, &call));
    assert_eq!(
        pinned,
        args(&["xread", "block", "0", "streams", "s1", "s2", "s3", "0-0", "5-0", "0-1"])
    );
    // XREADGROUP has no `$` to pin.
    let group = args(&["xreadgroup", "group", "g", "c", "streams", "s2", ">"]);
    assert_eq!(
        with_ctx(&mut t, |ctx| resolve_block_ids(ctx, &group)),
        group
    );
}

#[test]
fn serving_blocked_xread() {
    let mut t = TestShard::new();
    add(&mut t, "s2", "5", &["old", "x"]);
    let call = args(&["xread", "block", "0", "streams", "s1", "s2", "$", "$"]);
    let pinned = with_ctx(&mut t, |ctx| resolve_block_ids(ctx, &call));
    let serve = |t: &mut TestShard, key: &str| {
        with_ctx(t, |ctx| serve_blocked(ctx, &pinned, key.as_bytes()))
    };
    assert_eq!(serve(&mut t, "s2"), Reply::NilArray, "nothing new yet");
    add(&mut t, "s2", "6", &["new", "y"]);
    assert_eq!(
        serve(&mut t, "s2"),
        arr(vec![stream_part("s2", vec![entry("6-0", &["new", "y"])])])
    );
    // A key that is not a stream keeps an XREAD waiting.
    t.run(&["set", "s1", "x"]);
    assert_eq!(serve(&mut t, "s1"), Reply::NilArray);
    t.run(&["del", "s1"]);
    add(&mut t, "s1", "1", &["a", "b"]);
    assert_eq!(
        serve(&mut t, "s1"),
        arr(vec![stream_part("s1", vec![entry("1-0", &["a", "b"])])])
    );
    // Without COUNT a blocked client gets at most 1000 entries.
    let call = args(&["xread", "block", "0", "streams", "big", "$"]);
    let pinned = with_ctx(&mut t, |ctx| resolve_block_ids(ctx, &call));
    for j in 1..=1500 {
        add(&mut t, "big", &j.to_string(), &["f", "v"]);
    }
    let reply = with_ctx(&mut t, |ctx| serve_blocked(ctx, &pinned, b"big"));
    assert_eq!(ids(&field_of(reply)).len(), 1000);
    // A key the client does not wait on serves nothing.
    assert_eq!(
        with_ctx(&mut t, |ctx| serve_blocked(ctx, &pinned, b"other")),
        Reply::NilArray
    );
}

#[test]
fn serving_blocked_xreadgroup_and_its_errors() {
    let mut t = TestShard::new();
    t.run(&["xgroup", "create", "mystream", "mygroup", "$", "mkstream"]);
    let call = args(&[
        "xreadgroup",
        "group",
        "mygroup",
        "Alice",
        "block",
        "0",
        "streams",
        "mystream",
        ">",
    ]);
    assert_eq!(t.run_bytes(&call), Reply::NilArray);
    // Blocking created no consumer.
    assert_eq!(
        t.run(&["xinfo", "consumers", "mystream", "mygroup"]),
        arr(vec![])
    );
    let serve = |t: &mut TestShard| with_ctx(t, |ctx| serve_blocked(ctx, &call, b"mystream"));
    let ready = |t: &mut TestShard| with_ctx(t, |ctx| blocked_ready(ctx, &call, b"mystream"));
    assert_eq!(serve(&mut t), Reply::NilArray);
    assert!(!ready(&mut t));
    add(&mut t, "mystream", "667", &["key", "value"]);
    assert!(ready(&mut t));
    assert!(ready(&mut t), "asking serves nothing");
    assert_eq!(
        serve(&mut t),
        arr(vec![stream_part(
            "mystream",
            vec![entry("667-0", &["key", "value"])]
        )])
    );
    assert_eq!(
        int_of(field(
            &t.run(&["xinfo", "groups", "mystream"]).into_first(),
            "pending"
        )),
        1
    );
    assert_eq!(
        serve(&mut t),
        Reply::NilArray,
        "the group has read everything"
    );
    // The group destroyed: -NOGROUP.
    t.run(&["xgroup", "destroy", "mystream", "mygroup"]);
    assert!(ready(&mut t));
    assert_eq!(
        serve(&mut t),
        err("NOGROUP the consumer group this client was blocked on no longer exists")
    );
    // The key deleted or replaced by another type: -UNBLOCKED.
    t.run(&["del", "mystream"]);
    assert_eq!(
        serve(&mut t),
        err("UNBLOCKED the stream key no longer exists")
    );
    t.run(&["sadd", "mystream", "e1"]);
    assert_eq!(
        serve(&mut t),
        err("UNBLOCKED the stream key no longer exists")
    );
}

trait FirstItem {
    fn into_first(self) -> Reply;
}

impl FirstItem for Reply {
    fn into_first(self) -> Reply {
        match self {
            Reply::Array(mut items) if !items.is_empty() => items.remove(0),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn deleting_or_replacing_a_stream_wakes_its_readers() {
    let mut t = TestShard::new();
    let watched = |t: &mut TestShard, key: &str| {
        t.shard
            .blocked_keys
            .insert((0, Bytes::copy_from_slice(key.as_bytes())));
    };
    for key in ["a", "b", "c", "d", "e", "f"] {
        add(&mut t, key, "1", &["f", "v"]);
        watched(&mut t, key);
    }
    t.shard.ready_keys.clear();
    let ready = |t: &mut TestShard| {
        let keys: Vec<String> = t
            .shard
            .ready_keys
            .drain(..)
            .map(|(_, k)| String::from_utf8_lossy(&k).into_owned())
            .collect();
        keys
    };
    t.run(&["del", "a"]);
    assert_eq!(ready(&mut t), ["a"]);
    t.run(&["set", "b", "x"]);
    assert_eq!(ready(&mut t), ["b"]);
    t.run(&["rename", "c", "z"]);
    assert_eq!(ready(&mut t), ["c"]);
    t.run(&["pexpire", "d", "-1"]);
    assert_eq!(ready(&mut t), ["d"]);
    t.run(&["xgroup", "create", "e", "g", "0"]);
    assert!(ready(&mut t).is_empty(), "a new group serves nobody");
    t.run(&["xgroup", "destroy", "e", "g"]);
    assert_eq!(ready(&mut t), ["e"]);
    t.run(&["xadd", "f", "2", "f", "v"]);
    assert_eq!(ready(&mut t), ["f"]);
    t.run(&["flushall"]);
    let mut gone = ready(&mut t);
    gone.sort();
    assert_eq!(gone, ["e", "f"]);
    // SWAPDB: a stream swapped away is reported.
    add(&mut t, "s", "1", &["f", "v"]);
    watched(&mut t, "s");
    t.shard.ready_keys.clear();
    t.run(&["swapdb", "0", "1"]);
    assert_eq!(ready(&mut t), ["s"]);
    // Expiry, lazy or active.
    t.run(&["swapdb", "0", "1"]);
    add(&mut t, "t", "1", &["f", "v"]);
    watched(&mut t, "t");
    t.run(&["pexpire", "s", "10"]);
    t.run(&["pexpire", "t", "10"]);
    t.shard.ready_keys.clear();
    t.advance(10);
    t.run(&["exists", "s"]);
    assert_eq!(ready(&mut t), ["s"]);
    t.shard.active_expire(t.now_ms, 16);
    assert_eq!(ready(&mut t), ["t"]);
}

#[test]
fn xreadgroup_basics() {
    let mut t = TestShard::new();
    add(&mut t, "mystream", "1", &["foo", "bar"]);
    t.run(&["xgroup", "create", "mystream", "mygroup", "$"]);
    add(&mut t, "mystream", "2", &["a", "1"]);
    add(&mut t, "mystream", "3", &["b", "2"]);
    // Only the entries added after the group was created.
    let reply = t.run(&[
        "xreadgroup",
        "GROUP",
        "mygroup",
        "consumer-1",
        "STREAMS",
        "mystream",
        ">",
    ]);
    assert_eq!(
        reply,
        arr(vec![stream_part(
            "mystream",
            vec![entry("2-0", &["a", "1"]), entry("3-0", &["b", "2"])]
        )])
    );
    add(&mut t, "mystream", "4", &["c", "3"]);
    add(&mut t, "mystream", "5", &["d", "4"]);
    let reply = t.run(&[
        "xreadgroup",
        "GROUP",
        "mygroup",
        "consumer-2",
        "STREAMS",
        "mystream",
        ">",
    ]);
    assert_eq!(ids(&field_of(reply)), ["4-0", "5-0"]);
    // Each consumer's history is its own.
    let r1 = t.run(&[
        "xreadgroup",
        "GROUP",
        "mygroup",
        "consumer-1",
        "COUNT",
        "10",
        "STREAMS",
        "mystream",
        "0",
    ]);
    let r2 = t.run(&[
        "xreadgroup",
        "GROUP",
        "mygroup",
        "consumer-2",
        "COUNT",
        "10",
        "STREAMS",
        "mystream",
        "0",
    ]);
    assert_eq!(ids(&field_of(r1)), ["2-0", "3-0"]);
    assert_eq!(ids(&field_of(r2)), ["4-0", "5-0"]);
    // Nothing new: the null array.
    assert_eq!(
        t.run(&[
            "xreadgroup",
            "GROUP",
            "mygroup",
            "consumer-1",
            "STREAMS",
            "mystream",
            ">"
        ]),
        Reply::NilArray
    );
    // History reads count deliveries.
    let pending = t.run(&[
        "xpending",
        "mystream",
        "mygroup",
        "-",
        "+",
        "10",
        "consumer-1",
    ]);
    let Reply::Array(items) = pending else {
        panic!()
    };
    let Reply::Array(first) = &items[0] else {
        panic!()
    };
    assert_eq!(first[3], int(2));
}

#[test]
fn xreadgroup_errors() {
    let mut t = TestShard::new();
    add(&mut t, "q", "1", &["f", "v"]);
    t.run(&["xgroup", "create", "q", "grp", "0"]);
    t.run(&["set", "str", "x"]);
    for (a, want) in [
        (&["count", "1", "noack", "streams", "q", ">"][..], "ERR Missing GROUP option for XREADGROUP"),
        (&["group", "grp", "c", "count", "1", "q", ">"], "ERR syntax error"),
        (&["group", "grp", "c", "streams", "q", "$"], "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set."),
        (&["group", "nog", "c", "streams", "q", ">"], "NOGROUP No such key 'q' or consumer group 'nog' in XREADGROUP with GROUP option"),
        (&["group", "grp", "c", "streams", "nokey", ">"], "NOGROUP No such key 'nokey' or consumer group 'grp' in XREADGROUP with GROUP option"),
        (&["group", "grp", "c", "streams", "str", ">"], "WRONGTYPE Operation against a key holding the wrong kind of value"),
        (&["group", "grp", "c", "streams", "q", "bad"], INVALID_ID),
        (&["group", "grp", "c", "streams", "q", "nokey", ">", "bad"], "NOGROUP No such key 'nokey' or consumer group 'grp' in XREADGROUP with GROUP option"),
    ] {
        let mut full = vec!["xreadgroup"];
        full.extend_from_slice(a);
        assert_eq!(t.run(&full), err(want), "{a:?}");
    }
    // Nothing was read by the failed calls.
    assert_eq!(t.run(&["xpending", "q", "grp"]).into_first(), int(0));
}

#[test]
fn xreadgroup_empty_history_and_deleted_entries() {
    let mut t = TestShard::new();
    for (id, f) in [("1", "a"), ("2", "b"), ("3", "c")] {
        add(&mut t, "events", id, &[f, "1"]);
    }
    t.run(&["xgroup", "create", "events", "mygroup", "0"]);
    assert_eq!(
        t.run(&["xpending", "events", "mygroup", "-", "+", "10"]),
        arr(vec![])
    );
    let history = t.run(&[
        "xreadgroup",
        "group",
        "mygroup",
        "myconsumer",
        "count",
        "3",
        "streams",
        "events",
        "0",
    ]);
    assert_eq!(
        history,
        arr(vec![stream_part("events", vec![])]),
        "an empty history, not null"
    );
    let new = t.run(&[
        "xreadgroup",
        "group",
        "mygroup",
        "myconsumer",
        "count",
        "3",
        "streams",
        "events",
        ">",
    ]);
    assert_eq!(ids(&field_of(new)).len(), 3);
    let history = t.run(&[
        "xreadgroup",
        "group",
        "mygroup",
        "myconsumer",
        "count",
        "3",
        "streams",
        "events",
        "0",
    ]);
    assert_eq!(ids(&field_of(history)).len(), 3);

    // Bug #5570: an entry trimmed away shows as [id, nil] in the history.
    t.run(&["del", "mystream"]);
    t.run(&["xgroup", "create", "mystream", "mygroup", "$", "mkstream"]);
    add(&mut t, "mystream", "1", &["field1", "A"]);
    t.run(&[
        "xreadgroup",
        "group",
        "mygroup",
        "myconsumer",
        "streams",
        "mystream",
        ">",
    ]);
    t.run(&["xadd", "mystream", "maxlen", "1", "2", "field1", "B"]);
    t.run(&[
        "xreadgroup",
        "group",
        "mygroup",
        "myconsumer",
        "streams",
        "mystream",
        ">",
    ]);
    let res = t.run(&[
        "xreadgroup",
        "group",
        "mygroup",
        "myconsumer",
        "streams",
        "mystream",
        "0-1",
    ]);
    assert_eq!(
        field_of(res),
        arr(vec![
            arr(vec![bulk("1-0"), Reply::NilArray]),
            entry("2-0", &["field1", "B"])
        ])
    );
}

#[test]
fn xreadgroup_ignores_block_unless_reading_new_entries() {
    let mut t = TestShard::new();
    t.run(&["xgroup", "create", "mystream", "mygroup", "$", "mkstream"]);
    add(&mut t, "mystream", "666", &["key", "value"]);
    t.run(&["xdel", "mystream", "666"]);
    let read = |t: &mut TestShard, id: &str| {
        t.run(&[
            "xreadgroup",
            "group",
            "mygroup",
            "myconsumer",
            "block",
            "0",
            "streams",
            "mystream",
            id,
        ])
    };
    assert_eq!(
        read(&mut t, ">"),
        Reply::NilArray,
        "the stream ran dry: block"
    );
    for id in ["0", "600", "666", "700"] {
        assert_eq!(read(&mut t, id), arr(vec![stream_part("mystream", vec![])]));
    }
    add(&mut t, "mystream", "667", &["key", "value"]);
    for id in ["0", "600", "666", "667", "700"] {
        assert_eq!(read(&mut t, id), arr(vec![stream_part("mystream", vec![])]));
    }
    let one = arr(vec![stream_part(
        "mystream",
        vec![entry("667-0", &["key", "value"])],
    )]);
    assert_eq!(read(&mut t, ">"), one);
    for id in ["0", "600", "666"] {
        assert_eq!(read(&mut t, id), one);
    }
    for id in ["667", "700"] {
        assert_eq!(read(&mut t, id), arr(vec![stream_part("mystream", vec![])]));
    }
    t.run(&["xack", "mystream", "mygroup", "667"]);
    for id in ["0", "600", "666", "667", "700"] {
        assert_eq!(read(&mut t, id), arr(vec![stream_part("mystream", vec![])]));
    }
}

#[test]
fn xreadgroup_noack_and_setid_reassignment() {
    let mut t = TestShard::new();
    for j in 1..=4 {
        add(&mut t, "events", &j.to_string(), &["f1", "v1"]);
    }
    t.run(&["xgroup", "create", "events", "g1", "$"]);
    add(&mut t, "events", "5", &["f1", "v1"]);
    let c1 = t.run(&["xreadgroup", "group", "g1", "c1", "streams", "events", ">"]);
    assert_eq!(ids(&field_of(c1)), ["5-0"]);
    t.run(&["xgroup", "setid", "events", "g1", "-"]);
    let c2 = t.run(&["xreadgroup", "group", "g1", "c2", "streams", "events", ">"]);
    assert_eq!(ids(&field_of(c2)).len(), 5);
    // Entry 5 moved to c2 with one delivery.
    let pending = t.run(&["xpending", "events", "g1"]);
    assert_eq!(
        pending,
        arr(vec![
            int(5),
            bulk("1-0"),
            bulk("5-0"),
            arr(vec![arr(vec![bulk("c2"), bulk("5")])])
        ])
    );
    // NOACK reads leave nothing pending but create the consumer.
    add(&mut t, "events", "6", &["f1", "v1"]);
    t.run(&[
        "xreadgroup",
        "group",
        "g1",
        "c3",
        "noack",
        "streams",
        "events",
        ">",
    ]);
    assert_eq!(t.run(&["xpending", "events", "g1"]).into_first(), int(5));
    assert_eq!(
        int_of(field(
            &t.run(&["xinfo", "groups", "events"]).into_first(),
            "consumers"
        )),
        3
    );
}

#[test]
fn read_keys_skip_option_values() {
    let cmd = REGISTRY.get(b"xreadgroup").expect("xreadgroup");
    let mut out = Vec::new();
    // A group and a consumer named STREAMS are not the keyword.
    let a = args(&[
        "xreadgroup",
        "GROUP",
        "streams",
        "STREAMS",
        "COUNT",
        "1",
        "STREAMS",
        "k1",
        "k2",
        ">",
        ">",
    ]);
    assert!(cmd.key_indexes(&a, &mut out));
    assert_eq!(out, vec![7, 8]);
    out.clear();
    let cmd = REGISTRY.get(b"xread").expect("xread");
    assert!(cmd.key_indexes(&args(&["xread", "streams", "a", "b", "0", "0"]), &mut out));
    assert_eq!(out, vec![2, 3]);
    out.clear();
    assert!(cmd.key_indexes(&args(&["xread", "streams", "a", "b", "0"]), &mut out));
    assert!(out.is_empty(), "unbalanced: no keys");
}

/// Runs a split XREAD as the runtime would: one shard per group of key indexes, each shard a
/// separate test shard.
fn run_split(shards: &mut [(TestShard, Vec<usize>)], full: &[Bytes]) -> Reply {
    let cmd = REGISTRY.get(&full[0]).expect("command");
    let rule = cmd.split_rule.expect("split rule");
    let mut first_error: Option<(usize, Reply)> = None;
    for (t, keys) in shards.iter_mut() {
        let sub = (rule.args)(full, keys);
        if let Err((i, e)) = with_ctx(t, |ctx| (rule.check)(ctx, &sub)) {
            let at = keys[i];
            if first_error.as_ref().is_none_or(|(f, _)| at < *f) {
                first_error = Some((at, e));
            }
        }
    }
    if let Some((_, e)) = first_error {
        return e;
    }
    let mut parts = Vec::new();
    for (t, keys) in shards.iter_mut() {
        let sub = (rule.args)(full, keys);
        parts.push((keys.clone(), t.run_bytes(&sub)));
    }
    (rule.merge)(full, parts)
}

#[test]
fn split_reads_keep_request_order() {
    let mut a = TestShard::new();
    let mut b = TestShard::new();
    add(&mut a, "k1", "1", &["a", "1"]);
    add(&mut b, "k2", "2", &["b", "2"]);
    add(&mut a, "k3", "3", &["c", "3"]);
    let full = args(&[
        "xread", "count", "5", "streams", "k1", "k2", "k3", "k4", "0", "0", "0", "0",
    ]);
    let cmd = REGISTRY.get(b"xread").expect("xread");
    let rule = cmd.split_rule.expect("rule");
    assert_eq!(
        (rule.args)(&full, &[4, 6]),
        args(&["xread", "count", "5", "streams", "k1", "k3", "0", "0"])
    );
    let mut shards = vec![(a, vec![4, 6]), (b, vec![5, 7])];
    assert_eq!(
        run_split(&mut shards, &full),
        arr(vec![
            stream_part("k1", vec![entry("1-0", &["a", "1"])]),
            stream_part("k2", vec![entry("2-0", &["b", "2"])]),
            stream_part("k3", vec![entry("3-0", &["c", "3"])]),
        ])
    );
    // RESP3: a map in the same order.
    for (t, _) in shards.iter_mut() {
        t.resp3 = true;
    }
    let Reply::Map(pairs) = run_split(&mut shards, &full) else {
        panic!("not a map");
    };
    assert_eq!(
        pairs.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
        vec![bulk("k1"), bulk("k2"), bulk("k3")]
    );
    // Nothing anywhere: the null array.
    let none = args(&["xread", "streams", "k1", "k2", "$", "$"]);
    let mut shards = vec![(shards.remove(0).0, vec![2]), (shards.remove(0).0, vec![3])];
    assert_eq!(run_split(&mut shards, &none), Reply::NilArray);
}

#[test]
fn split_errors_are_those_of_the_earliest_key_and_nothing_is_served() {
    let mut a = TestShard::new();
    let mut b = TestShard::new();
    for t in [&mut a, &mut b] {
        add(t, "k1", "1", &["a", "1"]);
        add(t, "k2", "1", &["a", "1"]);
        t.run(&["set", "str", "x"]);
    }
    a.run(&["xgroup", "create", "k1", "g", "0"]);
    b.run(&["xgroup", "create", "k2", "g", "0"]);
    // Shard a holds k1 (fine) and str (wrong type, 4th key); shard b holds k2 and a bad ID
    // for the 2nd key.
    let full = args(&[
        "xreadgroup",
        "group",
        "g",
        "c",
        "streams",
        "k1",
        "k2",
        "k3",
        "str",
        ">",
        "bad",
        ">",
        ">",
    ]);
    let mut shards = vec![(a, vec![5, 8]), (b, vec![6, 7])];
    assert_eq!(run_split(&mut shards, &full), err(INVALID_ID));
    // k1's group served nobody.
    let (a, _) = &mut shards[0];
    assert_eq!(a.run(&["xpending", "k1", "g"]).into_first(), int(0));
    let full = args(&[
        "xreadgroup",
        "group",
        "g",
        "c",
        "streams",
        "k1",
        "str",
        "k2",
        ">",
        ">",
        ">",
    ]);
    let (a, b) = (shards.remove(0).0, shards.remove(0).0);
    let mut shards = vec![(a, vec![5, 6]), (b, vec![7])];
    assert_eq!(
        run_split(&mut shards, &full),
        err("WRONGTYPE Operation against a key holding the wrong kind of value")
    );
    let full = args(&[
        "xreadgroup",
        "group",
        "g",
        "c",
        "streams",
        "k1",
        "k2",
        ">",
        ">",
    ]);
    let (a, b) = (shards.remove(0).0, shards.remove(0).0);
    let mut shards = vec![(a, vec![5]), (b, vec![6])];
    assert_eq!(ids(&field_of(run_split(&mut shards, &full))), ["1-0"]);
    let (a, _) = &mut shards[0];
    assert_eq!(a.run(&["xpending", "k1", "g"]).into_first(), int(1));
}
