//! Every command against random argument lists: neither the shard commands nor key extraction
//! (which the runtime runs on every request, before any check of the arguments beyond arity)
//! may panic or allocate beyond the request's size, whatever a client sends.

use bytes::Bytes;
use rand::{Rng, SeedableRng};

use super::{Arg, Command, Exec, REGISTRY};
use crate::shard::Ctx;
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
    "FROMLONLAT",
    "FROMMEMBER",
    "BYRADIUS",
    "BYBOX",
    "WITHDIST",
    "WITHCOORD",
    "WITHHASH",
    "ANY",
    "STOREDIST",
    "m",
    "km",
    "mi",
    "180",
    "85.05112878",
    "g",
    "p",
    "GETREG",
    "DECODE",
    "ENCODING",
    "TODENSE",
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

/// Numbers at the edges of every integer type a parser might use, and the non-numbers a
/// float parser might accept.
const EXTREMES: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "2",
    "9223372036854775807",
    "-9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "-9223372036854775809",
    "-4611686018427387904",
    "-2147483648",
    "18446744073709551615",
    "18446744073709551616",
    "4611686018427387904",
    "2147483647",
    "2147483648",
    "-2147483649",
    "4294967295",
    "4294967296",
    "536870911",
    "536870912",
    "4294967295999",
    "nan",
    "-nan",
    "inf",
    "-inf",
    "+inf",
    "1e400",
    "",
    " ",
    "k",
];

/// Every command and subcommand of the table.
fn every_command() -> Vec<&'static Command> {
    REGISTRY
        .commands()
        .iter()
        .flat_map(|c| std::iter::once(c).chain(c.subcommands.iter()))
        .collect()
}

/// The tokens of a command's grammar (STORE, KEYS, LIMIT…), which steer keyword key specs and
/// key extractors down their branches.
fn tokens(args: &'static [Arg], out: &mut Vec<&'static str>) {
    for arg in args {
        out.extend(arg.token);
        tokens(arg.arguments, out);
    }
}

/// Runs every key extractor of `cmd` on `args` and checks each answer stays within them.
fn extract_keys(cmd: &Command, shard: &mut TestShard, args: &[Bytes]) {
    // Several key specs may name the same argument, but each names an argument at most once.
    let bound = args.len() * cmd.facts.key_specs.len().max(1) + 1;
    let mut out = Vec::new();
    cmd.key_indexes(args, &mut out);
    assert!(
        out.len() <= bound,
        "{}: {} keys in {:?}",
        cmd.name,
        out.len(),
        args
    );
    assert!(
        out.iter().all(|&i| i < args.len()),
        "{}: {out:?} {args:?}",
        cmd.name
    );
    out.clear();
    cmd.written_key_indexes(args, &mut out);
    assert!(
        out.len() <= bound,
        "{}: {} keys in {:?}",
        cmd.name,
        out.len(),
        args
    );
    assert!(
        out.iter().all(|&i| i < args.len()),
        "{}: {out:?} {args:?}",
        cmd.name
    );
    if let Some(finder) = cmd.key_finder {
        let mut ctx = Ctx::new(&mut shard.shard, 0, shard.now_ms, false);
        finder(&mut ctx, args);
    }
}

#[test]
fn key_extraction_never_panics_nor_exceeds_the_arguments() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x6b65_7973);
    let mut shard = populated();
    for cmd in every_command() {
        let mut words: Vec<&str> = EXTREMES.to_vec();
        tokens(cmd.facts.arguments, &mut words);
        let name: Vec<Bytes> = cmd
            .name
            .split('|')
            .map(|p| Bytes::copy_from_slice(p.as_bytes()))
            .collect();
        let most = cmd.facts.arity.unsigned_abs() as usize + 3;
        // Every argument count, from none at all (not even the name) to arity + 3.
        for count in 0..=most {
            for _ in 0..64 {
                let mut args: Vec<Bytes> = name.iter().take(count).cloned().collect();
                while args.len() < count {
                    args.push(Bytes::copy_from_slice(
                        words[rng.gen_range(0..words.len())].as_bytes(),
                    ));
                }
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    extract_keys(cmd, &mut shard, &args)
                }));
                assert!(result.is_ok(), "{} panicked on {:?}", cmd.name, args);
            }
        }
    }
}

#[test]
fn key_counts_larger_than_the_request_are_refused() {
    let cases: &[&[&str]] = &[
        &["blmpop", "0", "9223372036854775807", "k", "LEFT"],
        &["lmpop", "9223372036854775807", "k", "LEFT"],
        &["zunionstore", "d", "9223372036854775807", "k"],
        &["zinterstore", "d", "4611686018427387904", "k"],
        &["zdiff", "9223372036854775807", "k"],
        &["sintercard", "2", "k"],
        &["zmpop", "-9223372036854775808", "k", "MIN"],
        &["bzmpop", "0", "18446744073709551616", "k", "MIN"],
    ];
    for case in cases {
        let args: Vec<Bytes> = case
            .iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect();
        let cmd = REGISTRY.lookup(&args).expect("registered");
        let mut out = Vec::new();
        assert!(!cmd.key_indexes(&args, &mut out), "{case:?}");
        assert!(out.len() <= 1, "{case:?}: {out:?}");
    }
}

fn populated() -> TestShard {
    let mut t = TestShard::new();
    for setup in [
        &["set", "str", "hello"][..],
        &["set", "k", "12"],
        &["rpush", "l", "a", "b", "c", "1", "2"],
        &["hset", "h", "f", "v", "n", "5"],
        &["sadd", "s", "1", "2", "a"],
        &["zadd", "z", "1", "a", "2", "b", "3", "c"],
        &[
            "geoadd", "g", "13.36", "38.11", "a", "15.08", "37.50", "b", "-180", "-85", "c",
        ],
        &["pfadd", "p", "a", "b", "c"],
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

/// Every command over shard data, but PFSELFTEST: ten million additions by design (its own
/// unit test runs it smaller).
fn shard_commands() -> Vec<&'static Command> {
    every_command()
        .into_iter()
        .filter(|c| matches!(c.exec, Exec::Shard(_)))
        .filter(|c| c.name != "pfselftest")
        .collect()
}

#[test]
fn no_command_panics_on_random_arguments() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    for cmd in shard_commands() {
        let mut t = populated();
        // Every keyspace event is kept, so that reporting runs on the random paths too.
        t.notify_all();
        for _ in 0..800 {
            let mut args: Vec<Bytes> = cmd
                .name
                .split('|')
                .map(|p| Bytes::copy_from_slice(p.as_bytes()))
                .collect();
            for _ in 0..rng.gen_range(0..9) {
                let words = if rng.gen_bool(0.2) { EXTREMES } else { WORDS };
                args.push(Bytes::copy_from_slice(
                    words[rng.gen_range(0..words.len())].as_bytes(),
                ));
            }
            let result =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| t.run_bytes(&args)));
            assert!(result.is_ok(), "{} panicked on {:?}", cmd.name, args);
        }
    }
}

/// Arguments shaped by a command's grammar (tokens where tokens go, keys of every type where
/// keys go) with extreme values in every number slot.
struct GrammarArgs<'r> {
    rng: &'r mut rand::rngs::StdRng,
    /// The key of `populated()` holding the type the command works on, if any.
    own_key: Option<&'static str>,
    out: Vec<Bytes>,
}

impl GrammarArgs<'_> {
    fn pick(&mut self, choices: &[&str]) -> Bytes {
        Bytes::copy_from_slice(choices[self.rng.gen_range(0..choices.len())].as_bytes())
    }

    fn value(&mut self, kind: &str) -> Bytes {
        const KEYS: &[&str] = &["str", "k", "l", "h", "s", "z", "missing"];
        const STRINGS: &[&str] = &["a", "1", "f", "", "x", "-1", "*"];
        const DOUBLES: &[&str] = &["nan", "inf", "-inf", "1e308", "-1e308", "0", "1.5", "-0"];
        const PATTERNS: &[&str] = &["*", "a*", "*a*a*a*a*a*a*a*a*a*a*b", "[", "\\", "[^a-"];
        match kind {
            "key" => match self.own_key {
                Some(own) if self.rng.gen_bool(0.7) => Bytes::from_static(own.as_bytes()),
                _ => self.pick(KEYS),
            },
            "integer" | "unix-time" => self.pick(EXTREMES),
            "double" if self.rng.gen_bool(0.5) => self.pick(DOUBLES),
            "double" => self.pick(EXTREMES),
            "pattern" => self.pick(PATTERNS),
            _ if self.rng.gen_bool(0.2) => self.pick(EXTREMES),
            _ => self.pick(STRINGS),
        }
    }

    fn arg(&mut self, arg: &Arg) {
        if arg.optional && self.rng.gen_bool(0.5) {
            return;
        }
        let times = if arg.multiple {
            self.rng.gen_range(1..4)
        } else {
            1
        };
        for time in 0..times {
            if let Some(token) = arg.token {
                if time == 0 || arg.multiple_token {
                    self.out.push(Bytes::copy_from_slice(token.as_bytes()));
                }
            }
            match arg.kind {
                "pure-token" => {}
                "oneof" if !arg.arguments.is_empty() => {
                    let choice = &arg.arguments[self.rng.gen_range(0..arg.arguments.len())];
                    self.arg(&Arg {
                        optional: false,
                        ..*choice
                    });
                }
                "block" => arg.arguments.iter().for_each(|a| self.arg(a)),
                kind => {
                    let value = self.value(kind);
                    self.out.push(value);
                }
            }
        }
    }
}

#[test]
fn grammar_shaped_arguments_with_extreme_numbers_stay_bounded() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x6772_616d);
    for cmd in shard_commands() {
        let mut t = populated();
        // A small proto-max-bulk-len keeps the offsets near the limit cheap to try.
        t.shard.config.proto_max_bulk_len = 1 << 20;
        for round in 0..300 {
            if round % 50 == 49 {
                t = populated();
                t.shard.config.proto_max_bulk_len = 1 << 20;
            }
            let mut gen = GrammarArgs {
                rng: &mut rng,
                own_key: match cmd.facts.group {
                    "string" | "bitmap" => Some("str"),
                    "list" => Some("l"),
                    "hash" => Some("h"),
                    "set" => Some("s"),
                    "sorted_set" => Some("z"),
                    _ => None,
                },
                out: cmd
                    .name
                    .split('|')
                    .map(|p| Bytes::copy_from_slice(p.as_bytes()))
                    .collect(),
            };
            cmd.facts.arguments.iter().for_each(|a| gen.arg(a));
            let args = gen.out;
            let started = std::time::Instant::now();
            let reply =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| t.run_bytes(&args)));
            let Ok(reply) = reply else {
                panic!("{} panicked on {:?}", cmd.name, args);
            };
            // The data is a few small values: a reply or a run time that is not small came
            // from a number in the request.
            let mut wire = Vec::new();
            shardis_resp::encode(&reply, false, &mut wire);
            assert!(
                wire.len() < 1 << 22,
                "{}: {} reply bytes for {:?}",
                cmd.name,
                wire.len(),
                args
            );
            assert!(
                started.elapsed() < std::time::Duration::from_secs(5),
                "{} took {:?} on {:?}",
                cmd.name,
                started.elapsed(),
                args
            );
        }
    }
}
