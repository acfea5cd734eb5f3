//! Every shard command against random argument lists: none may panic, whatever a client sends.

use bytes::Bytes;
use rand::{Rng, SeedableRng};

use super::{Exec, REGISTRY};
use crate::testing::TestShard;

/// Words that steer option parsers down their branches.
const WORDS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "3",
    "10",
    "-10",
    "100",
    "9223372036854775807",
    "-9223372036854775808",
    "99999999999999999999",
    "1.5",
    "-inf",
    "+inf",
    "nan",
    "",
    "(1",
    "[a",
    "-",
    "+",
    "*",
    "a*",
    "#",
    "k",
    "s",
    "h",
    "l",
    "z",
    "str",
    "missing",
    "LIMIT",
    "BY",
    "GET",
    "STORE",
    "WITHSCORES",
    "COUNT",
    "MATCH",
    "TYPE",
    "NX",
    "XX",
    "GT",
    "LT",
    "CH",
    "INCR",
    "EX",
    "PX",
    "EXAT",
    "PXAT",
    "KEEPTTL",
    "PERSIST",
    "LEFT",
    "RIGHT",
    "BEFORE",
    "AFTER",
    "RANK",
    "MAXLEN",
    "MIN",
    "MAX",
    "WEIGHTS",
    "AGGREGATE",
    "SUM",
    "REV",
    "BYSCORE",
    "BYLEX",
    "ALPHA",
    "DESC",
    "ASC",
    "IDX",
    "LEN",
    "MINMATCHLEN",
    "WITHMATCHLEN",
    "OVERFLOW",
    "SAT",
    "FAIL",
    "WRAP",
    "SET",
    "INCRBY",
    "u8",
    "i64",
    "u63",
    "#1",
    "BIT",
    "BYTE",
    "AND",
    "OR",
    "XOR",
    "NOT",
    "DB",
    "REPLACE",
    "SAMPLES",
    "WITHVALUES",
    "4294967296",
    "536870912",
    "0.001",
    "x",
    "g",
    "c",
    "$",
    ">",
    "~",
    "=",
    "0-0",
    "1-1",
    "(1-1",
    "5-*",
    "18446744073709551615-18446744073709551615",
    "STREAMS",
    "GROUP",
    "NOACK",
    "BLOCK",
    "MINID",
    "NOMKSTREAM",
    "MKSTREAM",
    "ENTRIESREAD",
    "ENTRIESADDED",
    "MAXDELETEDID",
    "IDLE",
    "TIME",
    "RETRYCOUNT",
    "FORCE",
    "JUSTID",
    "LASTID",
    "FULL",
];

fn populated() -> TestShard {
    let mut t = TestShard::new();
    for setup in [
        &["set", "str", "hello"][..],
        &["set", "k", "12"],
        &["rpush", "l", "a", "b", "c", "1", "2"],
        &["hset", "h", "f", "v", "n", "5"],
        &["sadd", "s", "1", "2", "a"],
        &["zadd", "z", "1", "a", "2", "b", "3", "c"],
        &["xadd", "x", "1-1", "f", "v", "g", "w"],
        &["xadd", "x", "2-1", "f", "1"],
        &["xgroup", "create", "x", "g", "0"],
        &[
            "xreadgroup",
            "group",
            "g",
            "c",
            "count",
            "1",
            "streams",
            "x",
            ">",
        ],
    ] {
        t.run(setup);
    }
    t
}

#[test]
fn no_command_panics_on_random_arguments() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let commands: Vec<_> = REGISTRY
        .commands()
        .iter()
        .flat_map(|c| std::iter::once(c).chain(c.subcommands.iter()))
        .filter(|c| matches!(c.exec, Exec::Shard(_)))
        .collect();
    for cmd in commands {
        let mut t = populated();
        for _ in 0..800 {
            let mut args: Vec<Bytes> = cmd
                .name
                .split('|')
                .map(|p| Bytes::copy_from_slice(p.as_bytes()))
                .collect();
            for _ in 0..rng.gen_range(0..9) {
                args.push(Bytes::copy_from_slice(
                    WORDS[rng.gen_range(0..WORDS.len())].as_bytes(),
                ));
            }
            let result =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| t.run_bytes(&args)));
            assert!(result.is_ok(), "{} panicked on {:?}", cmd.name, args);
        }
    }
}
