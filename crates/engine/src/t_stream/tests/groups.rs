//! XGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM.

use shardis_resp::Reply;

use super::{add, entry, field, ids, int_of, node_limits};
use crate::testing::{arr, bulk, bulks, err, int, ok, TestShard};

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";

/// A stream `x` with entries 1-0, 2-0, 3-0 (`f v`) and group `grp` that delivered them all
/// to Alice.
fn three_pending() -> TestShard {
    let mut t = TestShard::new();
    for id in ["1-0", "2-0", "3-0"] {
        add(&mut t, "x", id, &["f", "v"]);
    }
    t.run(&["xgroup", "create", "x", "grp", "0"]);
    let read = t.run(&["xreadgroup", "group", "grp", "Alice", "streams", "x", ">"]);
    assert_eq!(
        read,
        arr(vec![arr(vec![
            bulk("x"),
            arr(vec![
                entry("1-0", &["f", "v"]),
                entry("2-0", &["f", "v"]),
                entry("3-0", &["f", "v"])
            ])
        ])])
    );
    t
}

fn pending_count(t: &mut TestShard, key: &str, group: &str) -> i64 {
    match t.run(&["xpending", key, group]) {
        Reply::Array(items) => int_of(items[0].clone()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn xgroup_create() {
    let mut t = TestShard::new();
    add(&mut t, "mystream", "1", &["foo", "bar"]);
    assert_eq!(
        t.run(&["xgroup", "create", "mystream", "mygroup", "$"]),
        ok()
    );
    assert_eq!(
        t.run(&["xgroup", "create", "mystream", "mygroup", "$"]),
        err("BUSYGROUP Consumer Group name already exists")
    );
    t.run(&["del", "mystream"]);
    let needs_key = "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.";
    assert_eq!(
        t.run(&["xgroup", "create", "mystream", "mygroup", "$"]),
        err(needs_key)
    );
    // MKSTREAM creates an empty stream, but not when the ID is bad.
    assert_eq!(
        t.run(&["xgroup", "create", "mystream", "mygroup", "bad", "mkstream"]),
        err(INVALID_ID)
    );
    assert_eq!(t.run(&["exists", "mystream"]), int(0));
    assert_eq!(
        t.run(&["xgroup", "create", "mystream", "mygroup", "$", "MKSTREAM"]),
        ok()
    );
    assert_eq!(t.run(&["xlen", "mystream"]), int(0));
    let syntax =
        "ERR unknown subcommand or wrong number of arguments for 'create'. Try XGROUP HELP.";
    assert_eq!(
        t.run(&["xgroup", "create", "mystream", "g2", "0", "foo"]),
        err(syntax)
    );
    assert_eq!(
        t.run(&[
            "XGROUP", "CREATE", "mystream", "g2", "0", "mkstream", "mkstream", "mkstream",
            "mkstream"
        ]),
        err("ERR unknown subcommand or wrong number of arguments for 'CREATE'. Try XGROUP HELP.")
    );
    assert_eq!(
        t.run(&["xgroup", "create", "mystream", "g2", "0", "entriesread"]),
        err(syntax)
    );
    assert_eq!(
        t.run(&[
            "xgroup",
            "create",
            "mystream",
            "g2",
            "0",
            "entriesread",
            "-2"
        ]),
        err("ERR value for ENTRIESREAD must be positive or -1")
    );
    assert_eq!(
        t.run(&[
            "xgroup",
            "create",
            "mystream",
            "g2",
            "0",
            "entriesread",
            "x"
        ]),
        err("ERR value is not an integer or out of range")
    );
    assert_eq!(
        t.run(&["xgroup", "create", "mystream", "g2", "-"]),
        err(INVALID_ID)
    );
    assert_eq!(
        t.run(&[
            "xgroup",
            "create",
            "mystream",
            "g2",
            "5",
            "entriesread",
            "3"
        ]),
        ok()
    );
    // Groups are listed by name.
    let g2 = match t.run(&["xinfo", "groups", "mystream"]) {
        Reply::Array(groups) => groups[0].clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(field(&g2, "name"), bulk("g2"));
    assert_eq!(field(&g2, "last-delivered-id"), bulk("5-0"));
    assert_eq!(field(&g2, "entries-read"), int(3));
    t.run(&["set", "str", "x"]);
    assert_eq!(
        t.run(&["xgroup", "create", "str", "g", "$"]),
        err(WRONGTYPE)
    );
    assert_eq!(
        t.run(&["xgroup", "create", "str", "g", "$", "mkstream"]),
        err(WRONGTYPE)
    );
    assert_eq!(
        t.run(&["xgroup", "create", "mystream"]),
        err("ERR wrong number of arguments for 'xgroup|create' command")
    );
}

#[test]
fn xgroup_setid_destroy_and_consumers() {
    let mut t = TestShard::new();
    add(&mut t, "s", "1", &["f", "v"]);
    add(&mut t, "s", "2", &["f", "v"]);
    t.run(&["xgroup", "create", "s", "g", "0"]);
    assert_eq!(
        t.run(&["xgroup", "setid", "s", "nog", "0"]),
        err("NOGROUP No such consumer group 'nog' for key name 's'")
    );
    assert_eq!(
        t.run(&["xgroup", "setid", "nokey", "g", "0"]),
        err("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.")
    );
    let syntax =
        "ERR unknown subcommand or wrong number of arguments for 'setid'. Try XGROUP HELP.";
    assert_eq!(
        t.run(&["xgroup", "setid", "s", "g", "0", "mkstream"]),
        err(syntax)
    );
    assert_eq!(
        t.run(&["xgroup", "setid", "s", "g", "0", "entriesread"]),
        err(syntax)
    );
    // SETID takes `-`, `+` and `$`, and resets entries-read unless given.
    for (id, want) in [
        ("+", "18446744073709551615-18446744073709551615"),
        ("-", "0-0"),
        ("$", "2-0"),
    ] {
        assert_eq!(t.run(&["xgroup", "setid", "s", "g", id]), ok());
        let info = t.run(&["xinfo", "groups", "s"]);
        let Reply::Array(groups) = info else { panic!() };
        assert_eq!(field(&groups[0], "last-delivered-id"), bulk(want));
        assert_eq!(field(&groups[0], "entries-read"), Reply::Nil);
    }
    assert_eq!(
        t.run(&["xgroup", "setid", "s", "g", "1", "entriesread", "1"]),
        ok()
    );
    let Reply::Array(groups) = t.run(&["xinfo", "groups", "s"]) else {
        panic!()
    };
    assert_eq!(field(&groups[0], "entries-read"), int(1));
    assert_eq!(field(&groups[0], "lag"), int(1));

    assert_eq!(
        t.run(&["xgroup", "createconsumer", "s", "g", "Alice"]),
        int(1)
    );
    assert_eq!(
        t.run(&["xgroup", "createconsumer", "s", "g", "Alice"]),
        int(0)
    );
    assert_eq!(
        t.run(&["xgroup", "createconsumer", "s", "nog", "Alice"]),
        err("NOGROUP No such consumer group 'nog' for key name 's'")
    );
    t.run(&["xreadgroup", "group", "g", "Alice", "streams", "s", ">"]);
    assert_eq!(
        t.run(&["xgroup", "delconsumer", "s", "g", "Alice"]),
        int(1),
        "one was pending"
    );
    assert_eq!(pending_count(&mut t, "s", "g"), 0);
    assert_eq!(t.run(&["xgroup", "delconsumer", "s", "g", "Alice"]), int(0));
    assert_eq!(
        t.run(&["xgroup", "delconsumer", "s", "nog", "Alice"]),
        err("NOGROUP No such consumer group 'nog' for key name 's'")
    );
    assert_eq!(t.run(&["xgroup", "destroy", "s", "nog"]), int(0));
    assert_eq!(t.run(&["xgroup", "destroy", "s", "g"]), int(1));
    assert_eq!(t.run(&["xgroup", "destroy", "s", "g"]), int(0));
    assert_eq!(t.run(&["xinfo", "groups", "s"]), arr(vec![]));
    assert_eq!(
        t.run(&["xgroup", "help", "xxx"]),
        err("ERR wrong number of arguments for 'xgroup|help' command")
    );
    let Reply::Array(help) = t.run(&["xgroup", "help"]) else {
        panic!()
    };
    assert_eq!(
        help[0],
        Reply::simple("XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")
    );
    assert_eq!(help.len(), 17);
    assert_eq!(
        t.run(&["xgroup", "foo"]),
        err("ERR unknown subcommand 'foo'. Try XGROUP HELP.")
    );
}

#[test]
fn xgroup_createconsumer_through_xreadgroup() {
    let mut t = TestShard::new();
    t.run(&["xgroup", "create", "mystream", "mygroup", "$", "mkstream"]);
    add(&mut t, "mystream", "1", &["f", "v"]);
    let consumers = |t: &mut TestShard| match t.run(&["xinfo", "groups", "mystream"]) {
        Reply::Array(groups) => int_of(field(&groups[0], "consumers")),
        other => panic!("{other:?}"),
    };
    assert_eq!(consumers(&mut t), 0);
    t.run(&[
        "xreadgroup",
        "group",
        "mygroup",
        "Alice",
        "count",
        "1",
        "streams",
        "mystream",
        ">",
    ]);
    assert_eq!(consumers(&mut t), 1);
    assert_eq!(
        t.run(&["xgroup", "createconsumer", "mystream", "mygroup", "Alice"]),
        int(0)
    );
    assert_eq!(
        t.run(&["xgroup", "createconsumer", "mystream", "mygroup", "Bob"]),
        int(1)
    );
    assert_eq!(consumers(&mut t), 2);
    let Reply::Array(list) = t.run(&["xinfo", "consumers", "mystream", "mygroup"]) else {
        panic!()
    };
    assert_eq!(field(&list[0], "name"), bulk("Alice"));
    assert_eq!(field(&list[1], "name"), bulk("Bob"));
    t.run(&["del", "mystream"]);
    add(&mut t, "mystream", "1", &["f", "v"]);
    assert_eq!(
        t.run(&[
            "xgroup",
            "createconsumer",
            "mystream",
            "mygroup",
            "consumer"
        ]),
        err("NOGROUP No such consumer group 'mygroup' for key name 'mystream'")
    );
}

#[test]
fn xpending() {
    let mut t = TestShard::new();
    t.run(&["xgroup", "create", "mystream", "mygroup", "$", "mkstream"]);
    for (id, f) in [("1", "a"), ("2", "b")] {
        add(&mut t, "mystream", id, &[f, id]);
    }
    t.run(&[
        "xreadgroup",
        "group",
        "mygroup",
        "consumer-1",
        "streams",
        "mystream",
        ">",
    ]);
    for (id, f) in [("3", "c"), ("4", "d")] {
        add(&mut t, "mystream", id, &[f, id]);
    }
    t.run(&[
        "xreadgroup",
        "group",
        "mygroup",
        "consumer-2",
        "streams",
        "mystream",
        ">",
    ]);
    t.advance(20);
    let row = |id: &str, owner: &str, idle: i64, count: i64| {
        arr(vec![bulk(id), bulk(owner), int(idle), int(count)])
    };
    assert_eq!(
        t.run(&["xpending", "mystream", "mygroup", "-", "+", "10"]),
        arr(vec![
            row("1-0", "consumer-1", 20, 1),
            row("2-0", "consumer-1", 20, 1),
            row("3-0", "consumer-2", 20, 1),
            row("4-0", "consumer-2", 20, 1),
        ])
    );
    assert_eq!(
        ids(&t.run(&[
            "xpending",
            "mystream",
            "mygroup",
            "-",
            "+",
            "10",
            "consumer-1"
        ])),
        ["1-0", "2-0"]
    );
    assert_eq!(
        t.run(&["xpending", "mystream", "mygroup"]),
        arr(vec![
            int(4),
            bulk("1-0"),
            bulk("4-0"),
            arr(vec![
                bulks(&["consumer-1", "2"]),
                bulks(&["consumer-2", "2"])
            ]),
        ])
    );
    let n = |t: &mut TestShard, a: &[&str]| {
        let mut full = vec!["xpending", "mystream", "mygroup"];
        full.extend_from_slice(a);
        ids(&t.run(&full)).len()
    };
    assert_eq!(
        n(&mut t, &["IDLE", "99999999", "-", "+", "10", "consumer-1"]),
        0
    );
    assert_eq!(n(&mut t, &["IDLE", "1", "-", "+", "10", "consumer-1"]), 2);
    assert_eq!(n(&mut t, &["IDLE", "99999999", "-", "+", "10"]), 0);
    assert_eq!(n(&mut t, &["IDLE", "1", "-", "+", "10"]), 4);
    assert_eq!(n(&mut t, &["(1-0", "(4-0", "10"]), 2);
    assert_eq!(n(&mut t, &["-", "+", "3"]), 3);
    assert_eq!(n(&mut t, &["-", "+", "0"]), 0);
    assert_eq!(n(&mut t, &["-", "+", "-3"]), 0);
    assert_eq!(n(&mut t, &["-", "+", "10", "nobody"]), 0);
    // Arguments past the consumer are ignored, as in Redis.
    assert_eq!(n(&mut t, &["-", "+", "10", "consumer-1", "x", "y"]), 2);
    for (a, want) in [
        (&["-"][..], "ERR syntax error"),
        (&["-", "+"], "ERR syntax error"),
        (&["-", "+", "10", "c", "x", "y", "z"], "ERR syntax error"),
        (
            &["-", "+", "x"],
            "ERR value is not an integer or out of range",
        ),
        (&["x", "+", "10"], INVALID_ID),
        (&["(-", "+", "1"], INVALID_ID),
        (
            &["IDLE", "x", "-", "+", "10"],
            "ERR value is not an integer or out of range",
        ),
        (&["IDLE", "10", "-", "+"], "ERR syntax error"),
        (
            &["(18446744073709551615-18446744073709551615", "+", "1"],
            "ERR invalid start ID for the interval",
        ),
    ] {
        let mut full = vec!["xpending", "mystream", "mygroup"];
        full.extend_from_slice(a);
        assert_eq!(t.run(&full), err(want), "{a:?}");
    }
    assert_eq!(
        t.run(&["xpending", "mystream", "nog"]),
        err("NOGROUP No such key 'mystream' or consumer group 'nog'")
    );
    assert_eq!(
        t.run(&["xpending", "nokey", "g", "-", "+", "1"]),
        err("NOGROUP No such key 'nokey' or consumer group 'g'")
    );
    t.run(&["set", "str", "x"]);
    assert_eq!(t.run(&["xpending", "str", "g"]), err(WRONGTYPE));
    // An empty PEL.
    t.run(&["xgroup", "create", "mystream", "g2", "$"]);
    assert_eq!(
        t.run(&["xpending", "mystream", "g2"]),
        arr(vec![int(0), Reply::Nil, Reply::Nil, Reply::NilArray])
    );
}

#[test]
fn xack() {
    let mut t = TestShard::new();
    t.run(&["xgroup", "create", "s", "g", "$", "mkstream"]);
    add(&mut t, "s", "1", &["f1", "v1"]);
    add(&mut t, "s", "2", &["f1", "v1"]);
    t.run(&["xreadgroup", "group", "g", "c", "streams", "s", ">"]);
    // All IDs are parsed before any is acknowledged.
    assert_eq!(
        t.run(&["xack", "s", "g", "1-0", "invalid-id"]),
        err(INVALID_ID)
    );
    assert_eq!(t.run(&["xack", "s", "g", "1-0"]), int(1));
    assert_eq!(t.run(&["xack", "s", "g", "1-0"]), int(0));
    assert_eq!(t.run(&["xack", "s", "g", "1-0", "2-0", "2"]), int(1));
    assert_eq!(pending_count(&mut t, "s", "g"), 0);
    // No key or group: 0, before the IDs are even parsed.
    assert_eq!(t.run(&["xack", "nokey", "g", "bad"]), int(0));
    assert_eq!(t.run(&["xack", "s", "nog", "bad"]), int(0));
    t.run(&["set", "str", "x"]);
    assert_eq!(t.run(&["xack", "str", "g", "1"]), err(WRONGTYPE));
}

#[test]
fn xclaim_moves_entries_between_consumers() {
    let mut t = TestShard::new();
    for (id, f) in [("1", "a"), ("2", "b"), ("3", "c")] {
        add(&mut t, "mystream", id, &[f, id]);
    }
    t.run(&["xgroup", "create", "mystream", "mygroup", "0"]);
    t.run(&[
        "xreadgroup",
        "group",
        "mygroup",
        "consumer1",
        "count",
        "1",
        "streams",
        "mystream",
        ">",
    ]);
    t.advance(200);
    assert_eq!(
        t.run(&["xclaim", "mystream", "mygroup", "consumer2", "10", "1-0"]),
        arr(vec![entry("1-0", &["a", "1"])])
    );
    assert_eq!(
        ids(&t.run(&[
            "xpending",
            "mystream",
            "mygroup",
            "-",
            "+",
            "10",
            "consumer1"
        ]))
        .len(),
        0
    );
    assert_eq!(
        ids(&t.run(&[
            "xpending",
            "mystream",
            "mygroup",
            "-",
            "+",
            "10",
            "consumer2"
        ]))
        .len(),
        1
    );
    let pending = t.run(&["xpending", "mystream", "mygroup", "-", "+", "10"]);
    assert_eq!(
        pending,
        arr(vec![arr(vec![
            bulk("1-0"),
            bulk("consumer2"),
            int(0),
            int(2)
        ])])
    );
    // Not idle long enough: nothing.
    assert_eq!(
        t.run(&["xclaim", "mystream", "mygroup", "consumer3", "10", "1-0"]),
        arr(vec![])
    );
    t.advance(200);
    // JUSTID leaves the delivery count alone.
    assert_eq!(
        t.run(&[
            "xclaim",
            "mystream",
            "mygroup",
            "consumer3",
            "10",
            "1-0",
            "JUSTID"
        ]),
        bulks(&["1-0"])
    );
    let pending = t.run(&["xpending", "mystream", "mygroup", "-", "+", "10"]);
    assert_eq!(
        pending,
        arr(vec![arr(vec![
            bulk("1-0"),
            bulk("consumer3"),
            int(0),
            int(2)
        ])])
    );
    // The same consumer claiming again keeps it.
    t.advance(200);
    assert_eq!(
        ids(&t.run(&["xclaim", "mystream", "mygroup", "consumer3", "10", "1-0"])),
        ["1-0"]
    );
    assert_eq!(pending_count(&mut t, "mystream", "mygroup"), 1);
    // Entries deleted from the stream are dropped from the PEL instead.
    t.run(&[
        "xreadgroup",
        "group",
        "mygroup",
        "consumer1",
        "count",
        "2",
        "streams",
        "mystream",
        ">",
    ]);
    t.run(&["xdel", "mystream", "2-0"]);
    assert_eq!(
        t.run(&["xclaim", "mystream", "mygroup", "consumer2", "0", "2-0"]),
        arr(vec![])
    );
    assert_eq!(
        ids(&t.run(&[
            "xpending",
            "mystream",
            "mygroup",
            "-",
            "+",
            "10",
            "consumer1"
        ])),
        ["3-0"]
    );
}

#[test]
fn xclaim_options() {
    let mut t = three_pending();
    t.advance(1000);
    let now = t.now_ms as i64;
    // IDLE and TIME set the delivery time; RETRYCOUNT the count.
    t.run(&[
        "xclaim",
        "x",
        "grp",
        "Bob",
        "0",
        "1-0",
        "IDLE",
        "500",
        "RETRYCOUNT",
        "7",
    ]);
    t.run(&[
        "xclaim",
        "x",
        "grp",
        "Bob",
        "0",
        "2-0",
        "TIME",
        &(now - 300).to_string(),
    ]);
    // A time in the future, or before the epoch, means now.
    t.run(&[
        "xclaim",
        "x",
        "grp",
        "Bob",
        "0",
        "3-0",
        "TIME",
        &(now + 5000).to_string(),
    ]);
    let pending = t.run(&["xpending", "x", "grp", "-", "+", "10"]);
    assert_eq!(
        pending,
        arr(vec![
            arr(vec![bulk("1-0"), bulk("Bob"), int(500), int(7)]),
            arr(vec![bulk("2-0"), bulk("Bob"), int(300), int(2)]),
            arr(vec![bulk("3-0"), bulk("Bob"), int(0), int(2)]),
        ])
    );
    // FORCE creates a pending entry for an existing entry; never for a missing one.
    t.run(&["xack", "x", "grp", "1-0"]);
    assert_eq!(
        t.run(&["xclaim", "x", "grp", "Carol", "1000", "1-0", "99-0", "FORCE", "JUSTID"]),
        bulks(&["1-0"])
    );
    assert_eq!(pending_count(&mut t, "x", "grp"), 3);
    // LASTID moves the group forward, never back.
    t.run(&["xclaim", "x", "grp", "Carol", "0", "LASTID", "10-0"]);
    t.run(&["xclaim", "x", "grp", "Carol", "0", "LASTID", "5-0"]);
    let Reply::Array(groups) = t.run(&["xinfo", "groups", "x"]) else {
        panic!()
    };
    assert_eq!(field(&groups[0], "last-delivered-id"), bulk("10-0"));
    for (a, want) in [
        (
            &["x", "1"][..],
            "ERR Invalid min-idle-time argument for XCLAIM",
        ),
        (
            &["0", "1-0", "IDLE", "x"],
            "ERR Invalid IDLE option argument for XCLAIM",
        ),
        (
            &["0", "1-0", "TIME", "x"],
            "ERR Invalid TIME option argument for XCLAIM",
        ),
        (
            &["0", "1-0", "RETRYCOUNT", "x"],
            "ERR Invalid RETRYCOUNT option argument for XCLAIM",
        ),
        (&["0", "1-0", "LASTID", "x"], INVALID_ID),
        (&["0", "1-0", "foo"], "ERR Unrecognized XCLAIM option 'foo'"),
        (
            &["0", "1-0", "IDLE"],
            "ERR Unrecognized XCLAIM option 'IDLE'",
        ),
        // IDs end at the first argument that is not one; what follows must be options.
        (
            &["0", "1-0", "bad", "2-0"],
            "ERR Unrecognized XCLAIM option 'bad'",
        ),
    ] {
        let mut full = vec!["xclaim", "x", "grp", "Dan"];
        full.extend_from_slice(a);
        assert_eq!(t.run(&full), err(want), "{a:?}");
    }
    assert_eq!(
        t.run(&["xclaim", "x", "nog", "c", "0", "1"]),
        err("NOGROUP No such key 'x' or consumer group 'nog'")
    );
    assert_eq!(
        t.run(&["xclaim", "nokey", "g", "c", "x", "1"]),
        err("NOGROUP No such key 'nokey' or consumer group 'g'")
    );
    t.run(&["set", "str", "x"]);
    assert_eq!(
        t.run(&["xclaim", "str", "g", "c", "0", "1"]),
        err(WRONGTYPE)
    );
}

#[test]
fn xclaim_with_xdel_and_trimming() {
    let mut t = three_pending();
    t.run(&["xdel", "x", "2-0"]);
    assert_eq!(
        t.run(&["xclaim", "x", "grp", "Bob", "0", "1-0", "2-0", "3-0"]),
        arr(vec![entry("1-0", &["f", "v"]), entry("3-0", &["f", "v"])])
    );
    assert_eq!(
        t.run(&["xpending", "x", "grp", "-", "+", "10", "Alice"]),
        arr(vec![])
    );

    let mut t = TestShard::new();
    node_limits(&mut t, 2, 4096);
    for id in ["1-0", "2-0", "3-0"] {
        add(&mut t, "x", id, &["f", "v"]);
    }
    t.run(&["xgroup", "create", "x", "grp", "0"]);
    t.run(&["xreadgroup", "group", "grp", "Alice", "streams", "x", ">"]);
    t.run(&["xtrim", "x", "maxlen", "1"]);
    assert_eq!(
        t.run(&["xclaim", "x", "grp", "Bob", "0", "1-0", "2-0", "3-0"]),
        arr(vec![entry("3-0", &["f", "v"])])
    );
    assert_eq!(
        t.run(&["xpending", "x", "grp", "-", "+", "10", "Alice"]),
        arr(vec![])
    );
}

#[test]
fn xautoclaim_claims_idle_entries() {
    let mut t = TestShard::new();
    for (id, f) in [("1", "a"), ("2", "b"), ("3", "c"), ("4", "d")] {
        add(&mut t, "mystream", id, &[f, id]);
    }
    t.run(&["xgroup", "create", "mystream", "mygroup", "0"]);
    t.run(&[
        "xreadgroup",
        "group",
        "mygroup",
        "consumer1",
        "count",
        "1",
        "streams",
        "mystream",
        ">",
    ]);
    t.advance(200);
    assert_eq!(
        t.run(&[
            "xautoclaim",
            "mystream",
            "mygroup",
            "consumer2",
            "10",
            "-",
            "COUNT",
            "1"
        ]),
        arr(vec![
            bulk("0-0"),
            arr(vec![entry("1-0", &["a", "1"])]),
            arr(vec![])
        ])
    );
    t.run(&[
        "xreadgroup",
        "group",
        "mygroup",
        "consumer1",
        "count",
        "3",
        "streams",
        "mystream",
        ">",
    ]);
    t.advance(200);
    t.run(&["xdel", "mystream", "2-0"]);
    // 1 and 3 are claimed, 2 is gone (and counts), the cursor points at 4.
    assert_eq!(
        t.run(&[
            "xautoclaim",
            "mystream",
            "mygroup",
            "consumer2",
            "10",
            "-",
            "COUNT",
            "3"
        ]),
        arr(vec![
            bulk("4-0"),
            arr(vec![entry("1-0", &["a", "1"]), entry("3-0", &["c", "3"])]),
            bulks(&["2-0"]),
        ])
    );
    t.advance(200);
    t.run(&["xdel", "mystream", "4-0"]);
    assert_eq!(
        t.run(&[
            "xautoclaim",
            "mystream",
            "mygroup",
            "consumer2",
            "10",
            "-",
            "JUSTID"
        ]),
        arr(vec![bulk("0-0"), bulks(&["1-0", "3-0"]), bulks(&["4-0"])])
    );
}

#[test]
fn xautoclaim_as_an_iterator() {
    let mut t = TestShard::new();
    for (id, f) in [("1", "a"), ("2", "b"), ("3", "c"), ("4", "d"), ("5", "e")] {
        add(&mut t, "mystream", id, &[f, id]);
    }
    t.run(&["xgroup", "create", "mystream", "mygroup", "0"]);
    t.run(&[
        "xreadgroup",
        "group",
        "mygroup",
        "consumer1",
        "count",
        "90",
        "streams",
        "mystream",
        ">",
    ]);
    t.advance(200);
    let step = |t: &mut TestShard, cursor: &str, count: &str| {
        let Reply::Array(parts) = t.run(&[
            "xautoclaim",
            "mystream",
            "mygroup",
            "consumer2",
            "10",
            cursor,
            "COUNT",
            count,
        ]) else {
            panic!()
        };
        let Reply::Bulk(next) = &parts[0] else {
            panic!()
        };
        (String::from_utf8_lossy(next).into_owned(), ids(&parts[1]))
    };
    assert_eq!(
        step(&mut t, "-", "2"),
        (
            "3-0".to_string(),
            vec!["1-0".to_string(), "2-0".to_string()]
        )
    );
    assert_eq!(
        step(&mut t, "3-0", "2"),
        (
            "5-0".to_string(),
            vec!["3-0".to_string(), "4-0".to_string()]
        )
    );
    assert_eq!(
        step(&mut t, "5-0", "1"),
        ("0-0".to_string(), vec!["5-0".to_string()])
    );
}

#[test]
fn xautoclaim_with_deletions_and_errors() {
    let mut t = three_pending();
    t.run(&["xdel", "x", "2-0"]);
    assert_eq!(
        t.run(&["xautoclaim", "x", "grp", "Bob", "0", "0-0"]),
        arr(vec![
            bulk("0-0"),
            arr(vec![entry("1-0", &["f", "v"]), entry("3-0", &["f", "v"])]),
            bulks(&["2-0"])
        ])
    );
    assert_eq!(
        t.run(&["xpending", "x", "grp", "-", "+", "10", "Alice"]),
        arr(vec![])
    );

    let mut t = three_pending();
    t.run(&["xdel", "x", "1-0"]);
    t.run(&["xdel", "x", "2-0"]);
    assert_eq!(
        t.run(&["xautoclaim", "x", "grp", "Bob", "0", "0-0", "COUNT", "1"]),
        arr(vec![bulk("2-0"), arr(vec![]), bulks(&["1-0"])])
    );
    assert_eq!(
        t.run(&["xautoclaim", "x", "grp", "Bob", "0", "2-0", "COUNT", "1"]),
        arr(vec![bulk("3-0"), arr(vec![]), bulks(&["2-0"])])
    );
    assert_eq!(
        t.run(&["xautoclaim", "x", "grp", "Bob", "0", "3-0", "COUNT", "1"]),
        arr(vec![
            bulk("0-0"),
            arr(vec![entry("3-0", &["f", "v"])]),
            arr(vec![])
        ])
    );
    assert_eq!(
        t.run(&["xpending", "x", "grp", "-", "+", "10", "Alice"]),
        arr(vec![])
    );

    let mut t = TestShard::new();
    node_limits(&mut t, 2, 4096);
    for id in ["1-0", "2-0", "3-0"] {
        add(&mut t, "x", id, &["f", "v"]);
    }
    t.run(&["xgroup", "create", "x", "grp", "0"]);
    t.run(&["xreadgroup", "group", "grp", "Alice", "streams", "x", ">"]);
    t.run(&["xtrim", "x", "maxlen", "1"]);
    assert_eq!(
        t.run(&["xautoclaim", "x", "grp", "Bob", "0", "0-0"]),
        arr(vec![
            bulk("0-0"),
            arr(vec![entry("3-0", &["f", "v"])]),
            bulks(&["1-0", "2-0"])
        ])
    );

    for (a, want) in [
        (&["1", "1", "COUNT", "0"][..], "ERR COUNT must be > 0"),
        (
            &["1", "1", "COUNT", "8070450532247928833"],
            "ERR COUNT must be > 0",
        ),
        (&["1", "1", "COUNT", "x"], "ERR COUNT must be > 0"),
        (
            &["x", "1"],
            "ERR Invalid min-idle-time argument for XAUTOCLAIM",
        ),
        (&["1", "x"], INVALID_ID),
        (&["1", "(+"], INVALID_ID),
        (
            &["1", "(18446744073709551615-18446744073709551615"],
            "ERR invalid start ID for the interval",
        ),
        (&["1", "1", "foo"], "ERR syntax error"),
        (&["1", "1", "COUNT"], "ERR syntax error"),
    ] {
        let mut full = vec!["xautoclaim", "key", "group", "consumer"];
        full.extend_from_slice(a);
        assert_eq!(t.run(&full), err(want), "{a:?}");
    }
    assert_eq!(
        t.run(&["xautoclaim", "x", "nog", "c", "0", "0"]),
        err("NOGROUP No such key 'x' or consumer group 'nog'")
    );
}

#[test]
fn group_read_counter_and_lag() {
    let mut t = TestShard::new();
    let group = |t: &mut TestShard, n: usize| {
        let info = t.run(&["xinfo", "stream", "x", "full"]);
        let Reply::Array(groups) = field(&info, "groups") else {
            panic!()
        };
        (field(&groups[n], "entries-read"), field(&groups[n], "lag"))
    };
    // An empty stream.
    t.run(&["xgroup", "create", "x", "g1", "0", "mkstream"]);
    assert_eq!(group(&mut t, 0), (Reply::Nil, int(0)));
    add(&mut t, "x", "1-0", &["data", "a"]);
    t.run(&["xdel", "x", "1-0"]);
    let info = t.run(&["xinfo", "stream", "x", "full"]);
    assert_eq!(field(&info, "max-deleted-entry-id"), bulk("1-0"));
    assert_eq!(field(&info, "entries-added"), int(1));
    assert_eq!(group(&mut t, 0), (Reply::Nil, int(0)));

    // Sanity: the counter follows the reads.
    t.run(&["del", "x"]);
    for j in 1..=5 {
        add(&mut t, "x", &format!("{j}-0"), &["data", "a"]);
    }
    t.run(&["xgroup", "create", "x", "g1", "0"]);
    assert_eq!(group(&mut t, 0), (Reply::Nil, int(5)));
    t.run(&[
        "xreadgroup",
        "group",
        "g1",
        "c11",
        "count",
        "1",
        "streams",
        "x",
        ">",
    ]);
    assert_eq!(group(&mut t, 0), (int(1), int(4)));
    t.run(&[
        "xreadgroup",
        "group",
        "g1",
        "c12",
        "count",
        "10",
        "streams",
        "x",
        ">",
    ]);
    assert_eq!(group(&mut t, 0), (int(5), int(0)));
    add(&mut t, "x", "6-0", &["data", "f"]);
    assert_eq!(group(&mut t, 0), (int(5), int(1)));

    // With XDELs the counter is unknown until the group passes the last tombstone.
    t.run(&["del", "x"]);
    for j in 1..=5 {
        add(&mut t, "x", &format!("{j}-0"), &["data", "a"]);
    }
    t.run(&["xdel", "x", "3-0"]);
    t.run(&["xgroup", "create", "x", "g1", "0"]);
    t.run(&["xgroup", "create", "x", "g2", "0"]);
    assert_eq!(group(&mut t, 0), (Reply::Nil, Reply::Nil));
    for _ in 0..3 {
        t.run(&[
            "xreadgroup",
            "group",
            "g1",
            "c11",
            "count",
            "1",
            "streams",
            "x",
            ">",
        ]);
        assert_eq!(group(&mut t, 0), (Reply::Nil, Reply::Nil));
    }
    t.run(&[
        "xreadgroup",
        "group",
        "g1",
        "c11",
        "count",
        "1",
        "streams",
        "x",
        ">",
    ]);
    assert_eq!(group(&mut t, 0), (int(5), int(0)));
    add(&mut t, "x", "6-0", &["data", "f"]);
    assert_eq!(group(&mut t, 0), (int(5), int(1)));
    t.run(&["xtrim", "x", "minid", "=", "3-0"]);
    assert_eq!(group(&mut t, 0), (int(5), int(1)));
    assert_eq!(group(&mut t, 1), (Reply::Nil, int(3)));
    t.run(&["xtrim", "x", "minid", "=", "5-0"]);
    assert_eq!(group(&mut t, 0), (int(5), int(1)));
    assert_eq!(group(&mut t, 1), (Reply::Nil, int(2)));
}

#[test]
fn stream_commands_report_their_keyspace_events_as_redis() {
    let mut t = TestShard::new();
    t.notify_all();
    let events = |t: &mut TestShard, args: &[&str]| t.events_of(args);
    assert_eq!(
        events(&mut t, &["xgroup", "create", "s", "g", "$", "mkstream"]),
        ["n new 0:s", "t xgroup-create 0:s"]
    );
    assert_eq!(
        events(&mut t, &["xgroup", "createconsumer", "s", "g", "bob"]),
        ["t xgroup-createconsumer 0:s"]
    );
    assert!(events(&mut t, &["xgroup", "createconsumer", "s", "g", "bob"]).is_empty());
    assert_eq!(
        events(&mut t, &["xadd", "s", "1", "f", "v"]),
        ["t xadd 0:s"]
    );
    // A reader or claimer the group does not know is created, and says so once.
    assert_eq!(
        events(
            &mut t,
            &["xreadgroup", "group", "g", "alice", "streams", "s", ">"]
        ),
        ["t xgroup-createconsumer 0:s"]
    );
    assert_eq!(
        events(&mut t, &["xclaim", "s", "g", "mike", "0", "1", "force"]),
        ["t xgroup-createconsumer 0:s"]
    );
    assert!(events(&mut t, &["xautoclaim", "s", "g", "bob", "0", "1"]).is_empty());
    assert!(events(&mut t, &["xgroup", "delconsumer", "s", "g", "lee"]).is_empty());
    assert_eq!(
        events(&mut t, &["xgroup", "delconsumer", "s", "g", "bob"]),
        ["t xgroup-delconsumer 0:s"]
    );
    assert_eq!(
        events(&mut t, &["xgroup", "setid", "s", "g", "0"]),
        ["t xgroup-setid 0:s"]
    );
    assert_eq!(
        events(&mut t, &["xgroup", "destroy", "s", "g"]),
        ["t xgroup-destroy 0:s"]
    );
    assert!(events(&mut t, &["xgroup", "destroy", "s", "g"]).is_empty());
    t.run(&["xadd", "s", "2", "f", "v"]);
    assert_eq!(
        events(&mut t, &["xadd", "s", "maxlen", "1", "3", "f", "v"]),
        ["t xadd 0:s", "t xtrim 0:s"]
    );
    assert!(events(&mut t, &["xtrim", "s", "maxlen", "1"]).is_empty());
    assert_eq!(events(&mut t, &["xdel", "s", "3"]), ["t xdel 0:s"]);
    assert!(events(&mut t, &["xdel", "s", "3"]).is_empty());
    assert_eq!(events(&mut t, &["xsetid", "s", "5"]), ["t xsetid 0:s"]);
}
