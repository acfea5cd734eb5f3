//! XINFO, and the generic key commands on streams (COPY, RENAME, MOVE, MEMORY USAGE).

use shardis_resp::Reply;

use super::{add, entry, field, int_of, node_limits};
use crate::testing::{arr, bulk, err, int, TestShard};

fn keys_of(map: &Reply) -> Vec<String> {
    match map {
        Reply::Map(pairs) => pairs
            .iter()
            .map(|(k, _)| match k {
                Reply::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
                other => panic!("{other:?}"),
            })
            .collect(),
        other => panic!("not a map: {other:?}"),
    }
}

#[test]
fn xinfo_stream() {
    let mut t = TestShard::new();
    add(&mut t, "s", "1-1", &["a", "1"]);
    add(&mut t, "s", "1-2", &["b", "2"]);
    t.run(&["xgroup", "create", "s", "g", "0"]);
    let info = t.run(&["xinfo", "stream", "s"]);
    assert_eq!(
        keys_of(&info),
        [
            "length",
            "radix-tree-keys",
            "radix-tree-nodes",
            "last-generated-id",
            "max-deleted-entry-id",
            "entries-added",
            "recorded-first-entry-id",
            "groups",
            "first-entry",
            "last-entry"
        ]
    );
    assert_eq!(field(&info, "length"), int(2));
    assert_eq!(field(&info, "radix-tree-keys"), int(1));
    assert_eq!(field(&info, "radix-tree-nodes"), int(2));
    assert_eq!(field(&info, "groups"), int(1));
    assert_eq!(field(&info, "first-entry"), entry("1-1", &["a", "1"]));
    assert_eq!(field(&info, "last-entry"), entry("1-2", &["b", "2"]));
    // An empty stream has no first or last entry.
    t.run(&["xgroup", "create", "e", "g", "$", "mkstream"]);
    let info = t.run(&["xinfo", "stream", "e"]);
    assert_eq!(field(&info, "first-entry"), Reply::Nil);
    assert_eq!(field(&info, "radix-tree-nodes"), int(1));
    assert_eq!(field(&info, "last-generated-id"), bulk("0-0"));
    // Errors.
    t.run(&["set", "str", "x"]);
    assert_eq!(t.run(&["xinfo", "stream", "nokey"]), err("ERR no such key"));
    assert_eq!(
        t.run(&["xinfo", "stream", "str"]),
        err("WRONGTYPE Operation against a key holding the wrong kind of value")
    );
    let syntax =
        "ERR unknown subcommand or wrong number of arguments for 'stream'. Try XINFO HELP.";
    for a in [
        &["full", "x"][..],
        &["foo"],
        &["full", "foo", "1"],
        &["full", "count"],
        &["full", "count", "1", "x"],
    ] {
        let mut full = vec!["xinfo", "stream", "s"];
        full.extend_from_slice(a);
        assert_eq!(t.run(&full), err(syntax), "{a:?}");
    }
    assert_eq!(
        t.run(&["XINFO", "STREAM", "s", "FULL", "COUNT", "x"]),
        err("ERR value is not an integer or out of range")
    );
    assert_eq!(
        t.run(&["xinfo", "help", "xxx"]),
        err("ERR wrong number of arguments for 'xinfo|help' command")
    );
    let Reply::Array(help) = t.run(&["xinfo", "help"]) else {
        panic!()
    };
    assert_eq!(help.len(), 9);
    assert_eq!(help[5], Reply::simple("STREAM <key> [FULL [COUNT <count>]"));
}

#[test]
fn xinfo_full_output() {
    let mut t = TestShard::new();
    for (id, f) in [
        ("100", "a"),
        ("101", "b"),
        ("102", "c"),
        ("103", "e"),
        ("104", "f"),
    ] {
        add(&mut t, "x", id, &[f, "1"]);
    }
    t.run(&["xgroup", "create", "x", "g1", "0"]);
    t.run(&["xgroup", "create", "x", "g2", "0"]);
    t.run(&[
        "xreadgroup",
        "group",
        "g1",
        "Alice",
        "count",
        "1",
        "streams",
        "x",
        ">",
    ]);
    t.run(&[
        "xreadgroup",
        "group",
        "g1",
        "Bob",
        "count",
        "1",
        "streams",
        "x",
        ">",
    ]);
    t.run(&[
        "xreadgroup",
        "group",
        "g1",
        "Bob",
        "noack",
        "count",
        "1",
        "streams",
        "x",
        ">",
    ]);
    t.run(&[
        "xreadgroup",
        "group",
        "g2",
        "Charlie",
        "count",
        "4",
        "streams",
        "x",
        ">",
    ]);
    t.run(&["xdel", "x", "103"]);
    let now = t.now_ms as i64;
    let info = t.run(&["xinfo", "stream", "x", "full"]);
    assert_eq!(
        keys_of(&info),
        [
            "length",
            "radix-tree-keys",
            "radix-tree-nodes",
            "last-generated-id",
            "max-deleted-entry-id",
            "entries-added",
            "recorded-first-entry-id",
            "entries",
            "groups"
        ]
    );
    assert_eq!(field(&info, "length"), int(4));
    assert_eq!(
        field(&info, "entries"),
        arr(vec![
            entry("100-0", &["a", "1"]),
            entry("101-0", &["b", "1"]),
            entry("102-0", &["c", "1"]),
            entry("104-0", &["f", "1"]),
        ])
    );
    let Reply::Array(groups) = field(&info, "groups") else {
        panic!()
    };
    assert_eq!(
        groups[0],
        Reply::Map(vec![
            (bulk("name"), bulk("g1")),
            (bulk("last-delivered-id"), bulk("102-0")),
            (bulk("entries-read"), int(3)),
            (bulk("lag"), Reply::Nil),
            (bulk("pel-count"), int(2)),
            (
                bulk("pending"),
                arr(vec![
                    arr(vec![bulk("100-0"), bulk("Alice"), int(now), int(1)]),
                    arr(vec![bulk("101-0"), bulk("Bob"), int(now), int(1)]),
                ])
            ),
            (
                bulk("consumers"),
                arr(vec![
                    Reply::Map(vec![
                        (bulk("name"), bulk("Alice")),
                        (bulk("seen-time"), int(now)),
                        (bulk("pel-count"), int(1)),
                        (
                            bulk("pending"),
                            arr(vec![arr(vec![bulk("100-0"), int(now), int(1)])])
                        ),
                    ]),
                    Reply::Map(vec![
                        (bulk("name"), bulk("Bob")),
                        (bulk("seen-time"), int(now)),
                        (bulk("pel-count"), int(1)),
                        (
                            bulk("pending"),
                            arr(vec![arr(vec![bulk("101-0"), int(now), int(1)])])
                        ),
                    ]),
                ])
            ),
        ])
    );
    let Reply::Array(consumers) = field(&groups[1], "consumers") else {
        panic!()
    };
    assert_eq!(field(&consumers[0], "name"), bulk("Charlie"));
    let Reply::Array(owned) = field(&consumers[0], "pending") else {
        panic!()
    };
    assert_eq!(owned.len(), 4);
    // COUNT limits the entries and every pending list; 0 means all.
    let info = t.run(&["xinfo", "stream", "x", "full", "count", "1"]);
    assert_eq!(
        field(&info, "entries"),
        arr(vec![entry("100-0", &["a", "1"])])
    );
    let Reply::Array(groups) = field(&info, "groups") else {
        panic!()
    };
    let Reply::Array(consumers) = field(&groups[1], "consumers") else {
        panic!()
    };
    let Reply::Array(owned) = field(&consumers[0], "pending") else {
        panic!()
    };
    assert_eq!(owned.len(), 1);
    let info = t.run(&["xinfo", "stream", "x", "full", "count", "0"]);
    let Reply::Array(all) = field(&info, "entries") else {
        panic!()
    };
    assert_eq!(all.len(), 4);
}

#[test]
fn xinfo_groups_and_consumers() {
    let mut t = TestShard::new();
    add(&mut t, "s", "1", &["f", "v"]);
    assert_eq!(t.run(&["xinfo", "groups", "s"]), arr(vec![]));
    t.run(&["xgroup", "create", "s", "g", "0"]);
    t.run(&["xreadgroup", "group", "g", "alice", "streams", "s", ">"]);
    t.advance(1500);
    assert_eq!(
        t.run(&["xinfo", "groups", "s"]),
        arr(vec![Reply::Map(vec![
            (bulk("name"), bulk("g")),
            (bulk("consumers"), int(1)),
            (bulk("pending"), int(1)),
            (bulk("last-delivered-id"), bulk("1-0")),
            (bulk("entries-read"), int(1)),
            (bulk("lag"), int(0)),
        ])])
    );
    assert_eq!(
        t.run(&["xinfo", "consumers", "s", "g"]),
        arr(vec![Reply::Map(vec![
            (bulk("name"), bulk("alice")),
            (bulk("pending"), int(1)),
            (bulk("idle"), int(1500)),
        ])])
    );
    assert_eq!(
        t.run(&["xinfo", "consumers", "s", "nog"]),
        err("NOGROUP No such consumer group 'nog' for key name 's'")
    );
    assert_eq!(t.run(&["xinfo", "groups", "nokey"]), err("ERR no such key"));
    assert_eq!(
        t.run(&["xinfo", "foo", "s"]),
        err("ERR unknown subcommand 'foo'. Try XINFO HELP.")
    );
}

#[test]
fn copy_rename_and_move_carry_whole_streams() {
    let mut t = TestShard::new();
    for (id, f) in [
        ("100", "a"),
        ("101", "b"),
        ("102", "c"),
        ("103", "e"),
        ("104", "f"),
        ("105", "g"),
    ] {
        add(&mut t, "x", id, &[f, "1"]);
    }
    t.run(&["xgroup", "create", "x", "g1", "0"]);
    t.run(&["xgroup", "create", "x", "g2", "0"]);
    t.run(&[
        "xreadgroup",
        "group",
        "g1",
        "Alice",
        "count",
        "1",
        "streams",
        "x",
        ">",
    ]);
    t.run(&[
        "xreadgroup",
        "group",
        "g1",
        "Bob",
        "count",
        "1",
        "streams",
        "x",
        ">",
    ]);
    t.run(&[
        "xreadgroup",
        "group",
        "g1",
        "Bob",
        "noack",
        "count",
        "1",
        "streams",
        "x",
        ">",
    ]);
    t.run(&[
        "xreadgroup",
        "group",
        "g2",
        "Charlie",
        "count",
        "4",
        "streams",
        "x",
        ">",
    ]);
    t.run(&["xgroup", "setid", "x", "g1", "101"]);
    t.run(&[
        "xreadgroup",
        "group",
        "g1",
        "Dave",
        "count",
        "3",
        "streams",
        "x",
        ">",
    ]);
    t.run(&["xdel", "x", "103"]);
    let info = t.run(&["xinfo", "stream", "x", "full"]);
    assert_eq!(t.run(&["copy", "x", "newx"]), int(1));
    assert_eq!(t.run(&["xinfo", "stream", "newx", "full"]), info);
    t.run(&["del", "x"]);
    assert_eq!(t.run(&["xinfo", "stream", "newx", "full"]), info);
    // The copy is independent of the original.
    t.run(&["copy", "newx", "other"]);
    t.run(&["xack", "other", "g1", "102"]);
    t.run(&["xadd", "other", "200", "z", "1"]);
    assert_eq!(t.run(&["xinfo", "stream", "newx", "full"]), info);
    t.run(&["rename", "newx", "renamed"]);
    assert_eq!(t.run(&["xinfo", "stream", "renamed", "full"]), info);
    t.run(&["move", "renamed", "1"]);
    t.db = 1;
    assert_eq!(t.run(&["xinfo", "stream", "renamed", "full"]), info);
    assert_eq!(t.run(&["type", "renamed"]), Reply::simple("stream"));
    assert_eq!(t.run(&["object", "encoding", "renamed"]), bulk("stream"));
    assert!(int_of(t.run(&["memory", "usage", "renamed"])) > 100);

    // 1000 entries, copied, stay identical after the original goes.
    let mut t = TestShard::new();
    for j in 1..=1000 {
        add(
            &mut t,
            "mystream",
            &j.to_string(),
            &["item", "2", "value", "b"],
        );
    }
    let all = t.run(&["xrange", "mystream", "-", "+"]);
    t.run(&["copy", "mystream", "mynewstream"]);
    t.run(&["del", "mystream"]);
    assert_eq!(t.run(&["xrange", "mynewstream", "-", "+"]), all);
}

#[test]
fn memory_usage_grows_with_the_stream() {
    let mut t = TestShard::new();
    node_limits(&mut t, 100, 4096);
    add(&mut t, "s", "1", &["f", "v"]);
    let one = int_of(t.run(&["memory", "usage", "s"]));
    for j in 2..=1000 {
        add(&mut t, "s", &j.to_string(), &["f", "v"]);
    }
    let many = int_of(t.run(&["memory", "usage", "s"]));
    assert!(many > one && many < one + 1000 * 32, "{one} {many}");
}
