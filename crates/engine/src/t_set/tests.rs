use super::*;
use crate::testing::{bulk, err, int, TestShard};

/// Runs a command given as space-separated words.
fn run(t: &mut TestShard, line: &str) -> Reply {
    let args: Vec<&str> = line.split(' ').collect();
    t.run(&args)
}

/// The bulk strings of an array or set reply, sorted.
fn sorted(reply: Reply) -> Vec<String> {
    let items = match reply {
        Reply::Array(v) | Reply::Set(v) => v,
        other => panic!("not a collection: {other:?}"),
    };
    let mut out: Vec<String> = items
        .into_iter()
        .map(|r| match r {
            Reply::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
            other => panic!("not a bulk: {other:?}"),
        })
        .collect();
    out.sort();
    out
}

fn strings(items: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn members(t: &mut TestShard, key: &str) -> Vec<String> {
    sorted(run(t, &format!("smembers {key}")))
}

fn encoding(t: &TestShard, key: &str) -> Option<&'static str> {
    t.shard.dbs[0]
        .peek(key.as_bytes())
        .map(|e| e.value.encoding())
}

fn exists(t: &TestShard, key: &str) -> bool {
    t.shard.dbs[0].peek(key.as_bytes()).is_some()
}

fn create(t: &mut TestShard, key: &str, items: &[&str]) {
    t.shard.dbs[0].remove(key.as_bytes());
    for m in items {
        assert!(!run(t, &format!("sadd {key} {m}")).is_error());
    }
}

fn range(from: i64, to: i64) -> Vec<String> {
    (from..to).map(|i| i.to_string()).collect()
}

const WRONGTYPE: &str = error::WRONGTYPE;

#[test]
fn basics_regular_set() {
    let mut t = TestShard::new();
    create(&mut t, "myset", &["foo"]);
    assert_eq!(encoding(&t, "myset"), Some("hashtable"));
    assert_eq!(run(&mut t, "sadd myset bar"), int(1));
    assert_eq!(run(&mut t, "sadd myset bar"), int(0));
    assert_eq!(run(&mut t, "scard myset"), int(2));
    assert_eq!(run(&mut t, "sismember myset foo"), int(1));
    assert_eq!(run(&mut t, "sismember myset bla"), int(0));
    assert_eq!(
        run(&mut t, "smismember myset foo bla"),
        Reply::Array(vec![int(1), int(0)])
    );
    assert_eq!(
        run(&mut t, "smismember myset bla foo"),
        Reply::Array(vec![int(0), int(1)])
    );
    assert_eq!(members(&mut t, "myset"), strings(&["bar", "foo"]));
}

#[test]
fn basics_intset() {
    let mut t = TestShard::new();
    create(&mut t, "myset", &["17"]);
    assert_eq!(encoding(&t, "myset"), Some("intset"));
    assert_eq!(run(&mut t, "sadd myset 16"), int(1));
    assert_eq!(run(&mut t, "sadd myset 16"), int(0));
    assert_eq!(run(&mut t, "scard myset"), int(2));
    assert_eq!(run(&mut t, "sismember myset 16"), int(1));
    assert_eq!(run(&mut t, "sismember myset 18"), int(0));
    assert_eq!(run(&mut t, "sismember myset abc"), int(0));
    assert_eq!(
        run(&mut t, "smismember myset 16 18 17"),
        Reply::Array(vec![int(1), int(0), int(1)])
    );
    // Intsets reply in ascending order, as Redis's do.
    assert_eq!(
        run(&mut t, "smembers myset"),
        Reply::Set(vec![bulk("16"), bulk("17")])
    );
    assert_eq!(encoding(&t, "myset"), Some("intset"));
}

#[test]
fn missing_keys_and_wrong_types() {
    let mut t = TestShard::new();
    run(&mut t, "set str x");
    for cmd in [
        "sadd str a",
        "srem str a",
        "sismember str a",
        "smismember str a",
        "scard str",
        "smembers str",
        "spop str",
        "spop str 2",
        "srandmember str",
        "srandmember str 2",
        "sscan str 0",
    ] {
        assert_eq!(run(&mut t, cmd), err(WRONGTYPE), "{cmd}");
    }
    assert_eq!(run(&mut t, "srem nokey a"), int(0));
    assert_eq!(run(&mut t, "sismember nokey a"), int(0));
    assert_eq!(
        run(&mut t, "smismember nokey a b"),
        Reply::Array(vec![int(0), int(0)])
    );
    assert_eq!(run(&mut t, "scard nokey"), int(0));
    assert_eq!(run(&mut t, "smembers nokey"), Reply::Set(vec![]));
    assert_eq!(
        run(&mut t, "smismember nokey"),
        err("ERR wrong number of arguments for 'smismember' command")
    );
    assert_eq!(
        run(&mut t, "sadd nokey"),
        err("ERR wrong number of arguments for 'sadd' command")
    );
    assert!(!exists(&t, "nokey"));
}

#[test]
fn sadd_converts_to_hashtable() {
    let mut t = TestShard::new();
    create(&mut t, "myset", &["1", "2", "3"]);
    assert_eq!(encoding(&t, "myset"), Some("intset"));
    assert_eq!(run(&mut t, "sadd myset a"), int(1));
    assert_eq!(encoding(&t, "myset"), Some("hashtable"));
    assert_eq!(members(&mut t, "myset"), strings(&["1", "2", "3", "a"]));

    // Larger than 64 bits, or not in canonical form: not an integer.
    for m in [
        "213244124402402314402033402",
        "9223372036854775808",
        "01",
        "+1",
        "-0",
        "1.0",
    ] {
        create(&mut t, "s", &[m]);
        assert_eq!(encoding(&t, "s"), Some("hashtable"), "{m}");
        assert_eq!(run(&mut t, &format!("sismember s {m}")), int(1));
    }
    create(
        &mut t,
        "s",
        &["-9223372036854775808", "9223372036854775807"],
    );
    assert_eq!(encoding(&t, "s"), Some("intset"));
    assert_eq!(
        run(&mut t, "smembers s"),
        Reply::Set(vec![
            bulk("-9223372036854775808"),
            bulk("9223372036854775807")
        ])
    );
}

#[test]
fn sadd_overflowing_the_intset_limit_converts() {
    let mut t = TestShard::new();
    for i in 0..512 {
        run(&mut t, &format!("sadd myset {i}"));
    }
    assert_eq!(encoding(&t, "myset"), Some("intset"));
    assert_eq!(run(&mut t, "sadd myset 512"), int(1));
    assert_eq!(encoding(&t, "myset"), Some("hashtable"));
    assert_eq!(run(&mut t, "scard myset"), int(513));

    // A single SADD that crosses the limit, duplicates included.
    let mut args = vec!["sadd".to_string(), "big".to_string()];
    args.extend(range(0, 513));
    args.push("7".into());
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    assert_eq!(t.run(&args), int(513));
    assert_eq!(encoding(&t, "big"), Some("hashtable"));

    // The limit is read from the configuration.
    t.shard.config.set_max_intset_entries = 0;
    assert_eq!(run(&mut t, "sadd zero 1"), int(1));
    assert_eq!(encoding(&t, "zero"), Some("hashtable"));
    t.shard.config.set_max_intset_entries = 3;
    assert_eq!(run(&mut t, "sadd three 1 2 3 3"), int(3));
    assert_eq!(encoding(&t, "three"), Some("intset"));
    assert_eq!(run(&mut t, "sadd three 3 4"), int(1));
    assert_eq!(encoding(&t, "three"), Some("hashtable"));
}

#[test]
fn variadic_sadd_and_batched_merge() {
    let mut t = TestShard::new();
    assert_eq!(run(&mut t, "sadd myset a b c"), int(3));
    assert_eq!(run(&mut t, "sadd myset A a b c B"), int(2));
    assert_eq!(
        members(&mut t, "myset"),
        strings(&["A", "B", "a", "b", "c"])
    );
    assert_eq!(run(&mut t, "sadd ints 50 10 30 10"), int(3));
    assert_eq!(run(&mut t, "sadd ints 5 40 30 60 -70000 1000000"), int(5));
    assert_eq!(
        run(&mut t, "smembers ints"),
        Reply::Set(
            ["-70000", "5", "10", "30", "40", "50", "60", "1000000"]
                .iter()
                .map(|s| bulk(s))
                .collect()
        )
    );
    assert_eq!(run(&mut t, "sadd ints 1 2 x"), int(3));
    assert_eq!(encoding(&t, "ints"), Some("hashtable"));
    assert_eq!(run(&mut t, "scard ints"), int(11));
}

#[test]
fn binary_members() {
    let mut t = TestShard::new();
    let b = |s: &[u8]| Bytes::copy_from_slice(s);
    let weird = b(b"a\0b\r\n\xff");
    assert_eq!(
        t.run_bytes(&[b(b"sadd"), b(b"k"), weird.clone(), b(b"")]),
        int(2)
    );
    assert_eq!(
        t.run_bytes(&[b(b"sismember"), b(b"k"), weird.clone()]),
        int(1)
    );
    assert_eq!(t.run_bytes(&[b(b"sismember"), b(b"k"), b(b"")]), int(1));
    assert_eq!(t.run_bytes(&[b(b"srem"), b(b"k"), weird.clone()]), int(1));
    assert_eq!(
        run(&mut t, "smembers k"),
        Reply::Set(vec![Reply::Bulk(Bytes::new())])
    );
}

#[test]
fn sadd_counts_writes_and_replaces_expired_keys() {
    let mut t = TestShard::new();
    let before = t.shard.dirty;
    run(&mut t, "sadd k a b");
    run(&mut t, "sadd k b c");
    run(&mut t, "sadd k c");
    assert_eq!(t.shard.dirty - before, 3);
    let at = t.now_ms + 10;
    t.shard.dbs[0].set_expire(b"k", at);
    t.advance(10);
    assert_eq!(run(&mut t, "sadd k z"), int(1));
    assert_eq!(members(&mut t, "k"), strings(&["z"]));
}

#[test]
fn srem_basics() {
    let mut t = TestShard::new();
    create(&mut t, "myset", &["foo", "bar", "ciao"]);
    assert_eq!(run(&mut t, "srem myset qux"), int(0));
    assert_eq!(run(&mut t, "srem myset foo"), int(1));
    assert_eq!(members(&mut t, "myset"), strings(&["bar", "ciao"]));

    create(&mut t, "myset", &["3", "4", "5"]);
    assert_eq!(run(&mut t, "srem myset 6"), int(0));
    assert_eq!(run(&mut t, "srem myset x"), int(0));
    assert_eq!(run(&mut t, "srem myset 4"), int(1));
    assert_eq!(members(&mut t, "myset"), strings(&["3", "5"]));
    assert_eq!(encoding(&t, "myset"), Some("intset"));

    run(&mut t, "del myset");
    t.shard.dbs[0].remove(b"myset");
    run(&mut t, "sadd myset a b c d");
    assert_eq!(run(&mut t, "srem myset k k k"), int(0));
    assert_eq!(run(&mut t, "srem myset b d x y"), int(2));
    assert_eq!(members(&mut t, "myset"), strings(&["a", "c"]));

    create(&mut t, "myset", &["1", "2", "3"]);
    let before = t.shard.dirty;
    assert_eq!(run(&mut t, "srem myset 1 2 3 4 5 6 7 8"), int(3));
    assert_eq!(t.shard.dirty - before, 3);
    assert!(!exists(&t, "myset"));
}

#[test]
fn removal_never_converts_back_to_intset() {
    let mut t = TestShard::new();
    run(&mut t, "sadd s 1 2 3 a");
    run(&mut t, "srem s a");
    assert_eq!(encoding(&t, "s"), Some("hashtable"));
    run(&mut t, "spop s");
    assert_eq!(encoding(&t, "s"), Some("hashtable"));
    assert_eq!(run(&mut t, "sadd s 9"), int(1));
    assert_eq!(encoding(&t, "s"), Some("hashtable"));
}

#[test]
fn sintercard_argument_errors() {
    let mut t = TestShard::new();
    let arity = err("ERR wrong number of arguments for 'sintercard' command");
    assert_eq!(run(&mut t, "sintercard"), arity);
    assert_eq!(run(&mut t, "sintercard 1"), arity);
    let numkeys = err("ERR numkeys should be greater than 0");
    assert_eq!(run(&mut t, "sintercard 0 myset"), numkeys);
    assert_eq!(run(&mut t, "sintercard a myset"), numkeys);
    assert_eq!(run(&mut t, "sintercard -1 myset"), numkeys);
    let too_many = err("ERR Number of keys can't be greater than number of args");
    assert_eq!(run(&mut t, "sintercard 2 myset"), too_many);
    assert_eq!(run(&mut t, "sintercard 3 myset myset2"), too_many);
    assert_eq!(
        run(&mut t, "sintercard 9223372036854775807 myset"),
        too_many
    );
    assert_eq!(run(&mut t, "sintercard 1 myset myset2"), error::syntax());
    assert_eq!(run(&mut t, "sintercard 1 myset bar_arg"), error::syntax());
    assert_eq!(run(&mut t, "sintercard 1 myset LIMIT"), error::syntax());
    let limit = err("ERR LIMIT can't be negative");
    assert_eq!(run(&mut t, "sintercard 1 myset LIMIT -1"), limit);
    assert_eq!(run(&mut t, "sintercard 1 myset LIMIT a"), limit);
    assert_eq!(run(&mut t, "sintercard 1 myset limit 1 limit 0"), int(0));
}

#[test]
fn sintercard_wrong_type_and_missing_keys() {
    let mut t = TestShard::new();
    run(&mut t, "sadd set a b c");
    run(&mut t, "set key1 x");
    assert_eq!(run(&mut t, "sintercard 1 key1"), err(WRONGTYPE));
    assert_eq!(run(&mut t, "sintercard 2 set key1"), err(WRONGTYPE));
    assert_eq!(run(&mut t, "sintercard 2 key1 noset"), err(WRONGTYPE));
    assert_eq!(run(&mut t, "sintercard 2 noset key1"), err(WRONGTYPE));
    assert_eq!(run(&mut t, "sintercard 1 non-existing-key"), int(0));
    assert_eq!(run(&mut t, "sintercard 1 non-existing-key limit 0"), int(0));
    assert_eq!(
        run(&mut t, "sintercard 1 non-existing-key limit 10"),
        int(0)
    );
    assert_eq!(run(&mut t, "sintercard 1 set"), int(3));
}

/// Builds set1..set5 as the Redis suite does, encoded as `kind`; returns the extra
/// member that decides the encoding.
fn generated_sets(t: &mut TestShard, kind: &str) -> &'static str {
    for i in 1..=5 {
        t.shard.dbs[0].remove(format!("set{i}").as_bytes());
    }
    for i in 0..200 {
        run(t, &format!("sadd set1 {i}"));
        run(t, &format!("sadd set2 {}", i + 195));
    }
    for i in [199, 195, 1000, 2000] {
        run(t, &format!("sadd set3 {i}"));
    }
    for i in 5..200 {
        run(t, &format!("sadd set4 {i}"));
    }
    run(t, "sadd set5 0");
    let large = if kind == "hashtable" { "foo" } else { "200" };
    for i in 1..=5 {
        run(t, &format!("sadd set{i} {large}"));
    }
    for i in 1..=5 {
        assert_eq!(encoding(t, &format!("set{i}")), Some(kind));
    }
    large
}

#[test]
fn algebra_over_both_encodings() {
    for kind in ["hashtable", "intset"] {
        let mut t = TestShard::new();
        let large = generated_sets(&mut t, kind);
        let with_large = |items: &[&str]| {
            let mut v = strings(items);
            v.push(large.to_string());
            v.sort();
            v
        };

        let inter2 = with_large(&["195", "196", "197", "198", "199"]);
        assert_eq!(sorted(run(&mut t, "sinter set1 set2")), inter2);
        assert_eq!(run(&mut t, "sintercard 2 set1 set2"), int(6));
        assert_eq!(run(&mut t, "sintercard 2 set1 set2 limit 0"), int(6));
        assert_eq!(run(&mut t, "sintercard 2 set1 set2 limit 3"), int(3));
        assert_eq!(run(&mut t, "sintercard 2 set1 set2 limit 10"), int(6));
        assert_eq!(run(&mut t, "sinterstore setres set1 set2"), int(6));
        assert_eq!(encoding(&t, "setres"), Some(kind));
        assert_eq!(members(&mut t, "setres"), inter2);

        let mut union: Vec<String> = members(&mut t, "set1");
        union.extend(members(&mut t, "set2"));
        union.sort();
        union.dedup();
        assert_eq!(sorted(run(&mut t, "sunion set1 set2")), union);
        assert_eq!(
            run(&mut t, "sunionstore setres set1 set2"),
            int(union.len() as i64)
        );
        assert_eq!(encoding(&t, "setres"), Some(kind));
        assert_eq!(members(&mut t, "setres"), union);
        assert_eq!(sorted(run(&mut t, "sunion nokey1 set1 set2 nokey2")), union);

        let inter3 = with_large(&["195", "199"]);
        assert_eq!(sorted(run(&mut t, "sinter set1 set2 set3")), inter3);
        assert_eq!(run(&mut t, "sintercard 3 set1 set2 set3"), int(3));
        assert_eq!(run(&mut t, "sintercard 3 set1 set2 set3 limit 2"), int(2));
        assert_eq!(run(&mut t, "sinterstore setres set1 set2 set3"), int(3));
        assert_eq!(members(&mut t, "setres"), inter3);

        assert_eq!(
            sorted(run(&mut t, "sdiff set1 set4")),
            strings(&["0", "1", "2", "3", "4"])
        );
        assert_eq!(
            sorted(run(&mut t, "sdiff set1 set4 set5")),
            strings(&["1", "2", "3", "4"])
        );
        assert_eq!(run(&mut t, "sdiffstore setres set1 set4 set5"), int(4));
        if kind == "intset" {
            assert_eq!(encoding(&t, "setres"), Some("intset"));
        }
        assert_eq!(members(&mut t, "setres"), strings(&["1", "2", "3", "4"]));

        let set1 = members(&mut t, "set1");
        assert_eq!(sorted(run(&mut t, "sinter set1 set1 set1")), set1);
        assert_eq!(sorted(run(&mut t, "sunion set1 set1 set1")), set1);
        assert_eq!(sorted(run(&mut t, "sdiff set1 set1 set1")), strings(&[]));
    }
}

#[test]
fn sdiff_edge_cases() {
    let mut t = TestShard::new();
    run(&mut t, "sadd set2 1 2 3 4");
    run(&mut t, "sadd set3 a b c d");
    assert_eq!(run(&mut t, "sdiff set1 set2 set3"), Reply::Set(vec![]));
    run(&mut t, "sadd same a b c 1 2 3 4 5 6");
    assert_eq!(run(&mut t, "sdiff same same"), Reply::Set(vec![]));
    assert_eq!(run(&mut t, "sdiff same nokey same"), Reply::Set(vec![]));

    t.shard.dbs[0].clear();
    run(&mut t, "sadd set1 a b c");
    run(&mut t, "sadd set2 b c d");
    assert_eq!(sorted(run(&mut t, "sdiff set1 set2 set3")), strings(&["a"]));
    assert_eq!(sorted(run(&mut t, "sdiff set3 set2 set1")), strings(&[]));
    assert_eq!(sorted(run(&mut t, "sdiff set1")), strings(&["a", "b", "c"]));
}

#[test]
fn sdiff_fuzzing_against_a_model() {
    let mut t = TestShard::new();
    let mut seed = 0x1234_5678_u64;
    let mut next = move |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    for _ in 0..100 {
        let nsets = next(10) + 1;
        let mut model: std::collections::BTreeSet<String> = Default::default();
        let mut keys = vec!["sdiff".to_string()];
        for i in 0..nsets {
            let key = format!("set_{i}");
            t.shard.dbs[0].remove(key.as_bytes());
            keys.push(key.clone());
            for _ in 0..next(100) {
                // A mix of small integers and strings, as the suite's randomValue.
                let ele = match next(3) {
                    0 => next(50).to_string(),
                    1 => format!("-{}", next(1 << 40)),
                    _ => format!("e{}", next(50)),
                };
                run(&mut t, &format!("sadd {key} {ele}"));
                if i == 0 {
                    model.insert(ele);
                } else {
                    model.remove(&ele);
                }
            }
        }
        let args: Vec<&str> = keys.iter().map(|s| s.as_str()).collect();
        let expected: Vec<String> = model.into_iter().collect();
        assert_eq!(sorted(t.run(&args)), expected);
    }
}

#[test]
fn multi_key_commands_reject_wrong_types() {
    let mut t = TestShard::new();
    run(&mut t, "set key1 x");
    run(&mut t, "sadd set1 a b c");
    for op in ["sinter", "sunion", "sdiff"] {
        for keys in ["key1 noset", "noset key1", "key1 set1", "set1 key1"] {
            assert_eq!(run(&mut t, &format!("{op} {keys}")), err(WRONGTYPE));
        }
    }
}

#[test]
fn store_commands_keep_destination_on_error() {
    for op in ["sinterstore", "sunionstore", "sdiffstore"] {
        let mut t = TestShard::new();
        run(&mut t, "set key1 x");
        assert_eq!(
            run(&mut t, &format!("{op} set3 key1 noset")),
            err(WRONGTYPE)
        );
        assert!(!exists(&t, "set3"));
        assert_eq!(
            run(&mut t, &format!("{op} set3 noset key1")),
            err(WRONGTYPE)
        );
        assert!(!exists(&t, "set3"));
        run(&mut t, "sadd set1 a b c");
        run(&mut t, "sadd set2 b c d");
        run(&mut t, "sadd set3 e");
        assert_eq!(
            run(&mut t, &format!("{op} set3 key1 set1 noset")),
            err(WRONGTYPE)
        );
        assert_eq!(
            run(&mut t, &format!("{op} set3 set1 key1 set2")),
            err(WRONGTYPE)
        );
        assert_eq!(members(&mut t, "set3"), strings(&["e"]));
    }
}

#[test]
fn store_commands_delete_destination_on_empty_result() {
    for op in ["sinterstore", "sunionstore", "sdiffstore"] {
        let mut t = TestShard::new();
        run(&mut t, "set setres xxx");
        assert_eq!(run(&mut t, &format!("{op} setres foo111 bar222")), int(0));
        assert!(!exists(&t, "setres"));
        run(&mut t, "sadd set3 a b c");
        assert_eq!(run(&mut t, &format!("{op} set3 set1 set2")), int(0));
        assert!(!exists(&t, "set3"));
    }
    let mut t = TestShard::new();
    run(&mut t, "sadd set1 a b c");
    assert_eq!(run(&mut t, "sinterstore set3 set1 set2"), int(0));
    assert_eq!(run(&mut t, "sinterstore set3 set2 set1"), int(0));
    assert_eq!(run(&mut t, "sdiffstore set3 set1 set2"), int(3));
    assert_eq!(members(&mut t, "set3"), strings(&["a", "b", "c"]));
    assert_eq!(run(&mut t, "sdiffstore set3 set2 set1"), int(0));
    assert!(!exists(&t, "set3"));
    run(&mut t, "sadd set3 e f");
    assert_eq!(run(&mut t, "sunionstore set3 set1 set2"), int(3));
    assert_eq!(members(&mut t, "set3"), strings(&["a", "b", "c"]));
}

#[test]
fn store_commands_replace_any_type_and_drop_the_ttl() {
    let mut t = TestShard::new();
    run(&mut t, "sadd a 1 2");
    run(&mut t, "set dst string");
    let at = t.now_ms + 100_000;
    t.shard.dbs[0].set_expire(b"dst", at);
    assert_eq!(run(&mut t, "sunionstore dst a"), int(2));
    let entry = t.shard.dbs[0].peek(b"dst").expect("stored");
    assert!(!entry.has_expire());
    assert_eq!(entry.value.type_name(), "set");
    // The destination may also be one of the sources.
    run(&mut t, "sadd b 2 3");
    assert_eq!(run(&mut t, "sunionstore a a b"), int(3));
    assert_eq!(members(&mut t, "a"), strings(&["1", "2", "3"]));
    assert_eq!(run(&mut t, "sdiffstore a a b"), int(1));
    assert_eq!(members(&mut t, "a"), strings(&["1"]));
}

#[test]
fn store_results_pick_their_own_encoding() {
    let mut t = TestShard::new();
    run(&mut t, "sadd h 1 2 3 a");
    run(&mut t, "srem h a");
    run(&mut t, "sadd i 1 2 3");
    assert_eq!(encoding(&t, "h"), Some("hashtable"));
    assert_eq!(sorted(run(&mut t, "sinter i h")), strings(&["1", "2", "3"]));
    assert_eq!(sorted(run(&mut t, "sinter h i")), strings(&["1", "2", "3"]));
    for op in ["sinterstore", "sunionstore", "sdiffstore"] {
        assert_eq!(run(&mut t, &format!("{op} dst h")), int(3));
        assert_eq!(encoding(&t, "dst"), Some("intset"), "{op}");
    }
    run(&mut t, "sadd x a");
    assert_eq!(run(&mut t, "sunionstore dst i x"), int(4));
    assert_eq!(encoding(&t, "dst"), Some("hashtable"));

    // Past the limit a union is a hashtable.
    let mut args = vec!["sadd", "big"];
    let nums = range(0, 600);
    args.extend(nums.iter().map(|s| s.as_str()));
    t.run(&args);
    assert_eq!(run(&mut t, "sunionstore dst big"), int(600));
    assert_eq!(encoding(&t, "dst"), Some("hashtable"));
}

#[test]
fn sdiffstore_encoding_follows_redis_algorithm_choice() {
    let mut t = TestShard::new();
    let big = range(0, 600);
    let mut args = vec!["sadd", "first"];
    args.extend(big.iter().map(|s| s.as_str()));
    t.run(&args);
    let low = range(0, 200);
    let mut args = vec!["sadd", "low"];
    args.extend(low.iter().map(|s| s.as_str()));
    t.run(&args);
    let mid = range(200, 299);
    let mut args = vec!["sadd", "mid"];
    args.extend(mid.iter().map(|s| s.as_str()));
    t.run(&args);
    // Redis copies `first` (600 members: a hashtable) and removes from the copy.
    assert_eq!(run(&mut t, "sdiffstore dst first low mid"), int(301));
    assert_eq!(encoding(&t, "dst"), Some("hashtable"));
    // With two sets it filters `first`, adding 400 integers: an intset.
    assert_eq!(run(&mut t, "sdiffstore dst first low"), int(400));
    assert_eq!(encoding(&t, "dst"), Some("intset"));
}

#[test]
fn multi_key_reads_count_hits_and_misses() {
    let mut t = TestShard::new();
    run(&mut t, "sadd a 1");
    let (h, m) = (t.shard.stats.keyspace_hits, t.shard.stats.keyspace_misses);
    run(&mut t, "sunion a nokey a");
    assert_eq!(t.shard.stats.keyspace_hits - h, 2);
    assert_eq!(t.shard.stats.keyspace_misses - m, 1);
}

#[test]
fn spop_basics() {
    for items in [["a", "b", "c"], ["1", "2", "3"]] {
        let mut t = TestShard::new();
        create(&mut t, "myset", &items);
        let mut popped: Vec<String> = (0..3)
            .map(|_| match run(&mut t, "spop myset") {
                Reply::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
                other => panic!("{other:?}"),
            })
            .collect();
        popped.sort();
        assert_eq!(popped, strings(&items));
        assert_eq!(run(&mut t, "scard myset"), int(0));
        assert!(!exists(&t, "myset"));
        assert_eq!(run(&mut t, "spop myset"), Reply::Nil);

        create(&mut t, "myset", &items);
        let mut popped = Vec::new();
        for _ in 0..3 {
            let r = sorted(run(&mut t, "spop myset 1"));
            assert_eq!(r.len(), 1);
            popped.extend(r);
        }
        popped.sort();
        assert_eq!(popped, strings(&items));
        assert!(!exists(&t, "myset"));
    }
}

#[test]
fn spop_argument_errors() {
    let mut t = TestShard::new();
    run(&mut t, "sadd s a");
    let range = err("ERR value is out of range, must be positive");
    assert_eq!(run(&mut t, "spop s -1"), range);
    assert_eq!(run(&mut t, "spop s a"), range);
    assert_eq!(run(&mut t, "spop nokey -1"), range);
    assert_eq!(run(&mut t, "spop s 1 2"), error::syntax());
    assert_eq!(run(&mut t, "spop nokey 5"), Reply::Set(vec![]));
    assert_eq!(run(&mut t, "spop s 0"), Reply::Set(vec![]));
    assert_eq!(run(&mut t, "scard s"), int(1));
}

#[test]
fn spop_with_count_pops_everything_once() {
    let letters: Vec<String> = ('a'..='z').map(|c| c.to_string()).collect();
    let numbers = range(1, 27);
    for (items, kind) in [(letters, "hashtable"), (numbers, "intset")] {
        let mut t = TestShard::new();
        let refs: Vec<&str> = items.iter().map(|s| s.as_str()).collect();
        create(&mut t, "myset", &refs);
        assert_eq!(encoding(&t, "myset"), Some(kind));
        let mut all = Vec::new();
        for n in [11, 9, 0, 4, 1, 0, 1, 0] {
            let got = sorted(run(&mut t, &format!("spop myset {n}")));
            assert_eq!(got.len(), n);
            all.extend(got);
        }
        all.sort();
        assert_eq!(all, strings(&refs));
        assert_eq!(run(&mut t, "scard myset"), int(0));
    }
}

#[test]
fn spop_count_code_paths() {
    let content = range(1, 21);
    let refs: Vec<&str> = content.iter().map(|s| s.as_str()).collect();
    let mut t = TestShard::new();
    create(&mut t, "myset", &refs);
    for (n, left) in [(1, 19), (2, 17), (3, 14), (10, 4), (10, 0), (1, 0)] {
        run(&mut t, &format!("spop myset {n}"));
        assert_eq!(run(&mut t, "scard myset"), int(left));
    }
    for (n, left) in [(30, 0), (2, 18), (18, 2)] {
        create(&mut t, "myset", &refs);
        let before = t.shard.dirty;
        let mut res = sorted(run(&mut t, &format!("spop myset {n}")));
        assert_eq!(res.len(), 20 - left);
        assert_eq!(t.shard.dirty - before, (20 - left) as u64);
        assert_eq!(run(&mut t, "scard myset"), int(left as i64));
        res.extend(members(&mut t, "myset"));
        res.sort();
        assert_eq!(res, strings(&refs));
    }
    // The same over a hashtable, where popping most members rebuilds the survivors.
    let words: Vec<String> = (0..20).map(|i| format!("w{i}")).collect();
    let refs: Vec<&str> = words.iter().map(|s| s.as_str()).collect();
    for (n, left) in [(2, 18), (18, 2), (19, 1)] {
        create(&mut t, "myset", &refs);
        let mut res = sorted(run(&mut t, &format!("spop myset {n}")));
        assert_eq!(res.len(), 20 - left);
        res.extend(members(&mut t, "myset"));
        res.sort();
        assert_eq!(res, strings(&refs));
    }
}

#[test]
fn spop_rebuilt_survivors_choose_their_encoding() {
    let mut t = TestShard::new();
    let mut saw = std::collections::HashSet::new();
    // "a" survives one round in 21: run until both outcomes were seen.
    for _ in 0..1000 {
        if saw.len() == 2 {
            break;
        }
        let mut items = range(0, 20);
        items.push("a".into());
        let refs: Vec<&str> = items.iter().map(|s| s.as_str()).collect();
        create(&mut t, "s", &refs);
        // 20 of 21 go: Redis moves the one survivor into a fresh set.
        run(&mut t, "spop s 20");
        let left = members(&mut t, "s");
        let expected = if left == ["a"] { "hashtable" } else { "intset" };
        assert_eq!(encoding(&t, "s"), Some(expected));
        saw.insert(expected);
    }
    assert_eq!(saw.len(), 2);
}

#[test]
fn intset_stress_with_spop() {
    let mut t = TestShard::new();
    let mut seed = 42u64;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed
    };
    t.shard.config.set_max_intset_entries = 2000;
    for _ in 0..5 {
        t.shard.dbs[0].remove(b"s");
        let mut model = std::collections::HashSet::new();
        for _ in 0..next() % 1024 {
            let v = match next() % 3 {
                0 => (next() % 65536) as i64,
                1 => (next() % 4294967296) as i64,
                _ => next() as i64,
            };
            model.insert(v.to_string());
            run(&mut t, &format!("sadd s {v}"));
        }
        assert_eq!(members(&mut t, "s"), {
            let mut v: Vec<String> = model.iter().cloned().collect();
            v.sort();
            v
        });
        for _ in 0..model.len() {
            let Reply::Bulk(b) = run(&mut t, "spop s") else {
                panic!("no member")
            };
            assert!(model.remove(&*String::from_utf8_lossy(&b)));
        }
        assert_eq!(run(&mut t, "scard s"), int(0));
    }
}

#[test]
fn srandmember_without_count() {
    for items in [["a", "b", "c"], ["1", "2", "3"]] {
        let mut t = TestShard::new();
        create(&mut t, "myset", &items);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..100 {
            match run(&mut t, "srandmember myset") {
                Reply::Bulk(b) => seen.insert(String::from_utf8_lossy(&b).into_owned()),
                other => panic!("{other:?}"),
            };
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), strings(&items));
        assert_eq!(run(&mut t, "scard myset"), int(3));
    }
    let mut t = TestShard::new();
    assert_eq!(run(&mut t, "srandmember nokey"), Reply::Nil);
}

#[test]
fn srandmember_count_errors_and_empty_replies() {
    let mut t = TestShard::new();
    run(&mut t, "sadd myset a");
    assert_eq!(run(&mut t, "srandmember myset 0"), Reply::Array(vec![]));
    assert_eq!(run(&mut t, "srandmember nokey 100"), Reply::Array(vec![]));
    assert_eq!(run(&mut t, "srandmember nokey -100"), Reply::Array(vec![]));
    assert_eq!(
            run(&mut t, "srandmember myset -9223372036854775808"),
            err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
        );
    assert_eq!(run(&mut t, "srandmember myset x"), error::not_integer());
    assert_eq!(
        run(&mut t, "srandmember myset 9223372036854775808"),
        error::not_integer()
    );
    assert_eq!(run(&mut t, "srandmember myset 1 2"), error::syntax());
    assert_eq!(
        run(&mut t, "srandmember myset 9223372036854775807"),
        Reply::Array(vec![bulk("a")])
    );
    assert_eq!(
        run(&mut t, "srandmember myset -3"),
        Reply::Array(vec![bulk("a"), bulk("a"), bulk("a")])
    );
}

#[test]
fn srandmember_with_count_paths() {
    let mut hashed: Vec<String> = [
        "1",
        "5",
        "10",
        "50",
        "125",
        "50000",
        "33959417",
        "4775547",
        "65434162",
        "12098459",
        "427716",
        "483706",
        "2726473884",
        "72615637475",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    hashed.extend((0..36).map(|i| format!("NAME{i}")));
    for items in [hashed, range(0, 50)] {
        let mut t = TestShard::new();
        let refs: Vec<&str> = items.iter().map(|s| s.as_str()).collect();
        create(&mut t, "myset", &refs);
        let all = strings(&refs);

        // Negative: repeats allowed, exactly |count| members.
        let res = sorted(run(&mut t, "srandmember myset -100"));
        assert_eq!(res.len(), 100);
        assert!(res.iter().all(|m| all.contains(m)));
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..1000 {
            seen.extend(sorted(run(&mut t, "srandmember myset -10")));
            if seen.len() == all.len() {
                break;
            }
        }
        assert_eq!(seen.len(), all.len());

        // Positive at least the size: the whole set.
        for size in [50, 100] {
            assert_eq!(
                sorted(run(&mut t, &format!("srandmember myset {size}"))),
                all
            );
        }

        // Positive below the size: distinct members, every member eventually.
        for size in [45, 5] {
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..1000 {
                let res = sorted(run(&mut t, &format!("srandmember myset {size}")));
                assert_eq!(res.len(), size);
                let mut distinct = res.clone();
                distinct.dedup();
                assert_eq!(distinct.len(), size);
                assert!(res.iter().all(|m| all.contains(m)));
                seen.extend(res);
                if seen.len() == all.len() {
                    break;
                }
            }
            assert_eq!(seen.len(), all.len());
        }
        assert_eq!(run(&mut t, "scard myset"), int(50));
    }
}

/// Pearson's chi-square statistic of how often each member came up.
fn chi_square(samples: &[String]) -> f64 {
    let mut counts: std::collections::HashMap<&str, f64> = Default::default();
    for s in samples {
        *counts.entry(s).or_default() += 1.0;
    }
    let expected = samples.len() as f64 / counts.len() as f64;
    counts
        .values()
        .map(|c| (c - expected) * (c - expected) / expected)
        .sum()
}

#[test]
fn srandmember_distribution() {
    let hashed = [
        "1",
        "5",
        "10",
        "50",
        "125",
        "MARY",
        "PATRICIA",
        "LINDA",
        "BARBARA",
        "ELIZABETH",
    ];
    let ints = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    for items in [hashed, ints] {
        let mut t = TestShard::new();
        create(&mut t, "myset", &items);
        let res = sorted(run(&mut t, "srandmember myset -1000"));
        assert!(chi_square(&res) < 40.0);
        for size in [8, 2] {
            let mut all = Vec::new();
            for _ in 0..1000 / size {
                all.extend(sorted(run(&mut t, &format!("srandmember myset {size}"))));
            }
            assert!(chi_square(&all) < 40.0, "{size}");
        }
    }
}

fn setup_move(t: &mut TestShard) {
    for k in ["myset3", "myset4"] {
        t.shard.dbs[0].remove(k.as_bytes());
    }
    create(t, "myset1", &["1", "a", "b"]);
    create(t, "myset2", &["2", "3", "4"]);
    assert_eq!(encoding(t, "myset1"), Some("hashtable"));
    assert_eq!(encoding(t, "myset2"), Some("intset"));
}

#[test]
fn smove_between_encodings() {
    let mut t = TestShard::new();
    setup_move(&mut t);
    assert_eq!(run(&mut t, "smove myset1 myset2 a"), int(1));
    assert_eq!(members(&mut t, "myset1"), strings(&["1", "b"]));
    assert_eq!(members(&mut t, "myset2"), strings(&["2", "3", "4", "a"]));
    assert_eq!(encoding(&t, "myset2"), Some("hashtable"));

    setup_move(&mut t);
    assert_eq!(run(&mut t, "smove myset1 myset2 1"), int(1));
    assert_eq!(members(&mut t, "myset1"), strings(&["a", "b"]));
    assert_eq!(members(&mut t, "myset2"), strings(&["1", "2", "3", "4"]));
    assert_eq!(encoding(&t, "myset2"), Some("intset"));

    setup_move(&mut t);
    assert_eq!(run(&mut t, "smove myset2 myset1 2"), int(1));
    assert_eq!(members(&mut t, "myset1"), strings(&["1", "2", "a", "b"]));
    assert_eq!(members(&mut t, "myset2"), strings(&["3", "4"]));
}

#[test]
fn smove_missing_members_and_keys() {
    let mut t = TestShard::new();
    setup_move(&mut t);
    assert_eq!(run(&mut t, "smove myset1 myset2 foo"), int(0));
    assert_eq!(run(&mut t, "smove myset1 myset1 foo"), int(0));
    assert_eq!(members(&mut t, "myset1"), strings(&["1", "a", "b"]));
    assert_eq!(members(&mut t, "myset2"), strings(&["2", "3", "4"]));
    assert_eq!(run(&mut t, "smove noset myset2 foo"), int(0));
    assert_eq!(members(&mut t, "myset2"), strings(&["2", "3", "4"]));

    assert_eq!(run(&mut t, "smove myset1 myset3 a"), int(1));
    assert_eq!(members(&mut t, "myset1"), strings(&["1", "b"]));
    assert_eq!(members(&mut t, "myset3"), strings(&["a"]));
    assert_eq!(encoding(&t, "myset3"), Some("hashtable"));

    setup_move(&mut t);
    assert_eq!(run(&mut t, "smove myset2 myset3 2"), int(1));
    assert_eq!(members(&mut t, "myset2"), strings(&["3", "4"]));
    assert_eq!(members(&mut t, "myset3"), strings(&["2"]));
    assert_eq!(encoding(&t, "myset3"), Some("intset"));

    // The source goes when its last member leaves.
    run(&mut t, "sadd single x");
    assert_eq!(run(&mut t, "smove single myset3 x"), int(1));
    assert!(!exists(&t, "single"));
    assert_eq!(encoding(&t, "myset3"), Some("hashtable"));
}

#[test]
fn smove_types_and_identity() {
    let mut t = TestShard::new();
    setup_move(&mut t);
    run(&mut t, "set x 10");
    assert_eq!(run(&mut t, "smove x myset2 foo"), err(WRONGTYPE));
    assert_eq!(run(&mut t, "smove myset2 x foo"), err(WRONGTYPE));
    assert_eq!(run(&mut t, "smove myset2 x 2"), err(WRONGTYPE));
    // A missing source answers 0 before the destination's type is checked.
    assert_eq!(run(&mut t, "smove noset x foo"), int(0));

    run(&mut t, "sadd set a b c");
    assert_eq!(run(&mut t, "smove set set b"), int(1));
    assert_eq!(run(&mut t, "smove set set z"), int(0));
    assert_eq!(members(&mut t, "set"), strings(&["a", "b", "c"]));

    // Only a successful addition counts a second write.
    run(&mut t, "sadd src a b");
    run(&mut t, "sadd dst a");
    let before = t.shard.dirty;
    assert_eq!(run(&mut t, "smove src dst a"), int(1));
    assert_eq!(t.shard.dirty - before, 1);
    assert_eq!(run(&mut t, "smove src dst b"), int(1));
    assert_eq!(t.shard.dirty - before, 3);
    assert_eq!(run(&mut t, "scard dst"), int(2));
}

#[test]
fn new_keys_wake_blocked_clients() {
    let mut t = TestShard::new();
    for k in ["k", "moved", "stored"] {
        t.shard.blocked_keys.insert((0, Bytes::from(k)));
    }
    run(&mut t, "sadd k a");
    run(&mut t, "sadd src b");
    run(&mut t, "smove src moved b");
    run(&mut t, "sunionstore stored k");
    let ready: Vec<&[u8]> = t.shard.ready_keys.iter().map(|(_, k)| &k[..]).collect();
    assert_eq!(ready, [&b"k"[..], b"moved", b"stored"]);
}

/// Collects a full SSCAN iteration.
fn full_scan(t: &mut TestShard, key: &str, extra: &str) -> Vec<String> {
    let mut cursor = "0".to_string();
    let mut out = Vec::new();
    let mut calls = 0;
    loop {
        let reply = run(t, &format!("sscan {key} {cursor}{extra}"));
        let Reply::Array(mut parts) = reply else {
            panic!("{reply:?}")
        };
        let items = parts.pop().expect("items");
        let Some(Reply::Bulk(next)) = parts.pop() else {
            panic!("no cursor")
        };
        out.extend(sorted(items));
        cursor = String::from_utf8_lossy(&next).into_owned();
        calls += 1;
        if cursor == "0" || calls > 10_000 {
            break;
        }
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn sscan_both_encodings() {
    let mut t = TestShard::new();
    let ints = range(0, 100);
    let mut args = vec!["sadd", "iset"];
    args.extend(ints.iter().map(|s| s.as_str()));
    t.run(&args);
    assert_eq!(encoding(&t, "iset"), Some("intset"));
    // One call returns an intset whole, whatever cursor and COUNT say.
    let Reply::Array(parts) = run(&mut t, "sscan iset 7 COUNT 1") else {
        panic!()
    };
    assert_eq!(parts[0], bulk("0"));
    assert_eq!(sorted(parts[1].clone()).len(), 100);

    let words: Vec<String> = (0..100).map(|i| format!("ele:{i}")).collect();
    let mut args = vec!["sadd", "hset"];
    args.extend(words.iter().map(|s| s.as_str()));
    t.run(&args);
    assert_eq!(encoding(&t, "hset"), Some("hashtable"));
    let mut expected = words.clone();
    expected.sort();
    assert_eq!(full_scan(&mut t, "hset", ""), expected);
    assert_eq!(full_scan(&mut t, "hset", " COUNT 7"), expected);
    assert_eq!(full_scan(&mut t, "hset", " MATCH *"), expected);
}

#[test]
fn sscan_errors_and_missing_key() {
    let mut t = TestShard::new();
    run(&mut t, "sadd s a");
    let empty = Reply::Array(vec![bulk("0"), Reply::Array(vec![])]);
    assert_eq!(run(&mut t, "sscan nokey 0"), empty);
    // As Redis, options are only read once the key is found.
    assert_eq!(run(&mut t, "sscan nokey 0 COUNT x"), empty);
    assert_eq!(run(&mut t, "sscan s x"), err("ERR invalid cursor"));
    assert_eq!(run(&mut t, "sscan s -1"), err("ERR invalid cursor"));
    assert_eq!(run(&mut t, "sscan nokey x"), err("ERR invalid cursor"));
    assert_eq!(run(&mut t, "sscan s 0 COUNT 0"), error::syntax());
    assert_eq!(run(&mut t, "sscan s 0 COUNT x"), error::not_integer());
    assert_eq!(run(&mut t, "sscan s 0 TYPE set"), error::syntax());
    assert_eq!(run(&mut t, "sscan s 0 COUNT"), error::syntax());
    assert_eq!(
        run(&mut t, "sscan s 0"),
        Reply::Array(vec![bulk("0"), Reply::Array(vec![bulk("a")])])
    );
}

#[test]
fn resp_shapes() {
    let mut t = TestShard::new();
    run(&mut t, "sadd s 1");
    assert!(matches!(run(&mut t, "smembers s"), Reply::Set(_)));
    assert!(matches!(run(&mut t, "sinter s"), Reply::Set(_)));
    assert!(matches!(run(&mut t, "sunion s"), Reply::Set(_)));
    assert!(matches!(run(&mut t, "sdiff s"), Reply::Set(_)));
    assert!(matches!(run(&mut t, "srandmember s 2"), Reply::Array(_)));
    assert!(matches!(run(&mut t, "spop s 2"), Reply::Set(_)));
}

#[test]
fn a_large_intset_is_compact() {
    let mut t = TestShard::new();
    t.shard.config.set_max_intset_entries = 2_000_000;
    let ints = range(0, 200_000);
    for chunk in ints.chunks(1000) {
        let mut args = vec!["sadd", "big"];
        args.extend(chunk.iter().map(|s| s.as_str()));
        t.run(&args);
    }
    assert_eq!(encoding(&t, "big"), Some("intset"));
    assert_eq!(run(&mut t, "scard big"), int(200_000));
    let Some(Value::Set(SetValue {
        repr: Repr::Ints(s),
    })) = t.shard.dbs[0].peek(b"big").map(|e| &e.value)
    else {
        panic!("not an intset")
    };
    // 3 bytes a member (Redis: 4), plus at most an eighth of slack.
    assert!(s.heap_bytes() <= 600_000 * 9 / 8 + 64, "{}", s.heap_bytes());
    assert_eq!(run(&mut t, "sismember big 199999"), int(1));
    assert_eq!(run(&mut t, "sismember big 200000"), int(0));
}

/// Redis's events for the set commands (pubsub.tcl's "set events test", t_set.c): sadd
/// and srem only when members changed, spop, SMOVE's srem on the source and sadd on the
/// destination only when it gained the member, the STORE commands' own events or del for
/// an empty result, del when a set is emptied.
#[test]
fn keyspace_events() {
    let mut t = TestShard::new();
    t.notify_all();
    let none = Vec::<String>::new();
    let ev = |t: &mut TestShard, line: &str| {
        let args: Vec<&str> = line.split(' ').collect();
        t.events_of(&args)
    };
    assert_eq!(ev(&mut t, "sadd s a b c d"), ["n new 0:s", "s sadd 0:s"]);
    assert_eq!(ev(&mut t, "srem s x"), none);
    assert_eq!(ev(&mut t, "sadd s x y z"), ["s sadd 0:s"]);
    assert_eq!(ev(&mut t, "sadd s x"), none);
    assert_eq!(ev(&mut t, "srem s x"), ["s srem 0:s"]);
    assert_eq!(ev(&mut t, "spop s"), ["s spop 0:s"]);
    assert_eq!(ev(&mut t, "spop s 0"), none);
    assert_eq!(ev(&mut t, "spop s 1"), ["s spop 0:s"]);
    assert_eq!(ev(&mut t, "spop s 100"), ["s spop 0:s", "g del 0:s"]);
    assert_eq!(ev(&mut t, "spop s"), none);
    t.run(&["sadd", "s", "a"]);
    assert_eq!(ev(&mut t, "spop s"), ["s spop 0:s", "g del 0:s"]);
    t.run(&["sadd", "s", "a", "b"]);
    assert_eq!(ev(&mut t, "srem s a b"), ["s srem 0:s", "g del 0:s"]);

    t.run(&["sadd", "src", "a", "b"]);
    t.run(&["sadd", "dst", "a"]);
    assert_eq!(ev(&mut t, "smove src dst a"), ["s srem 0:src"]);
    assert_eq!(ev(&mut t, "smove src dst x"), none);
    assert_eq!(ev(&mut t, "smove dst dst a"), none);
    assert_eq!(ev(&mut t, "smove nokey dst a"), none);
    assert_eq!(
        ev(&mut t, "smove src dst b"),
        ["s srem 0:src", "g del 0:src", "s sadd 0:dst"]
    );
    assert_eq!(
        ev(&mut t, "smove dst fresh a"),
        ["s srem 0:dst", "n new 0:fresh", "s sadd 0:fresh"]
    );

    t.run(&["sadd", "x", "1", "2"]);
    t.run(&["sadd", "y", "2", "3"]);
    assert_eq!(
        ev(&mut t, "sinterstore d x y"),
        ["n new 0:d", "s sinterstore 0:d"]
    );
    assert_eq!(ev(&mut t, "sunionstore d x y"), ["s sunionstore 0:d"]);
    assert_eq!(ev(&mut t, "sdiffstore d x y"), ["s sdiffstore 0:d"]);
    assert_eq!(ev(&mut t, "sdiffstore d x x"), ["g del 0:d"]);
    assert_eq!(ev(&mut t, "sdiffstore d x x"), none);
    assert_eq!(ev(&mut t, "sinterstore d x nokey"), ["m keymiss 0:nokey"]);
    // An expired destination is deleted as it is by an empty result (Redis's dbDelete),
    // but expired first when a result replaces it.
    t.run(&["sadd", "d", "z"]);
    t.run(&["pexpire", "d", "10"]);
    t.advance(10);
    assert_eq!(
        ev(&mut t, "sinterstore d x nokey"),
        ["m keymiss 0:nokey", "g del 0:d"]
    );
    t.run(&["sadd", "d", "z"]);
    t.run(&["pexpire", "d", "10"]);
    t.advance(10);
    assert_eq!(
        ev(&mut t, "sunionstore d x"),
        ["x expired 0:d", "n new 0:d", "s sunionstore 0:d"]
    );

    for line in [
        "sismember nokey a",
        "smismember nokey a",
        "scard nokey",
        "smembers nokey",
        "srandmember nokey",
        "srandmember nokey 3",
        "sinter nokey",
        "sunion nokey",
        "sdiff nokey",
        "sintercard 1 nokey",
        "sscan nokey 0",
    ] {
        assert_eq!(ev(&mut t, line), ["m keymiss 0:nokey"], "{line}");
    }
    assert_eq!(
        ev(&mut t, "sunion n1 x n2"),
        ["m keymiss 0:n1", "m keymiss 0:n2"]
    );
}
