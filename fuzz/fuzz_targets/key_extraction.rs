//! Runs key extraction, as the runtime does on every request, on arbitrary argument lists:
//! table lookup (name, subcommand, arity), then the key indexes, the written key indexes and
//! the data-dependent key finder (SORT's BY/GET patterns, on a small populated shard). None
//! may panic, and every index must name an argument present, at most once per key spec.
//! Key extraction is also run on the argument list without the arity check, for every
//! command of the table: the runtime may call it on requests the command itself refuses.
//!
//! Input layout: two bytes choose a command or subcommand of the table (its name comes
//! first); the rest is split at NUL bytes into arguments. A one-byte argument stands for a
//! word of the dictionary below (numbers at the edges of every integer type, every token of
//! the command grammar), so the fuzzer reaches the keyword and key-count branches at once.

#![no_main]

use std::cell::RefCell;
use std::sync::LazyLock;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use shardis_engine::command::{Arg, Command};
use shardis_engine::{Ctx, EngineConfig, Exec, Shard, REGISTRY};

/// Every command and subcommand.
static COMMANDS: LazyLock<Vec<&'static Command>> = LazyLock::new(|| {
    REGISTRY
        .commands()
        .iter()
        .flat_map(|c| std::iter::once(c).chain(c.subcommands.iter()))
        .collect()
});

const EXTREMES: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "18446744073709551616",
    "4611686018427387904",
    "2147483648",
    "4294967296",
    "536870912",
    "nan",
    "inf",
    "-inf",
    "",
    "k",
    "l",
    "s",
    "h",
    "*",
    "#",
    "k*",
    "*->f",
];

/// The dictionary: extremes, then every token of every command's grammar.
static WORDS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    fn tokens(args: &'static [Arg], out: &mut Vec<&'static str>) {
        for arg in args {
            out.extend(arg.token);
            tokens(arg.arguments, out);
        }
    }
    let mut words = EXTREMES.to_vec();
    for cmd in COMMANDS.iter() {
        tokens(cmd.facts.arguments, &mut words);
    }
    words.sort_unstable();
    words.dedup();
    words
});

thread_local! {
    /// A shard with a few values for the key finder to look into.
    static SHARD: RefCell<Shard> = RefCell::new(populated());
}

fn populated() -> Shard {
    let mut shard = Shard::new(0, EngineConfig::default());
    for setup in [
        &["rpush", "l", "1", "2", "k", "3"][..],
        &["sadd", "s", "a", "1", "k"],
        &["zadd", "z", "1", "a", "2", "k"],
        &["set", "k", "1"],
        &["set", "k1", "2"],
        &["hset", "h", "f", "1"],
    ] {
        let args: Vec<Bytes> = setup.iter().map(|a| Bytes::from_static(a.as_bytes())).collect();
        if let Ok(Command { exec: Exec::Shard(f), .. }) = shardis_engine::lookup(&args) {
            f(&mut Ctx::new(&mut shard, 0, 0, false), &args);
        }
    }
    shard
}

fn check(cmd: &Command, args: &[Bytes]) {
    let bound = args.len() * cmd.facts.key_specs.len().max(1) + 1;
    let mut out = Vec::new();
    cmd.key_indexes(args, &mut out);
    assert!(out.len() <= bound && out.iter().all(|&i| i < args.len()));
    out.clear();
    cmd.written_key_indexes(args, &mut out);
    assert!(out.len() <= bound && out.iter().all(|&i| i < args.len()));
    if let Some(finder) = cmd.key_finder {
        SHARD.with_borrow_mut(|shard| finder(&mut Ctx::new(shard, 0, 0, false), args));
    }
}

fuzz_target!(|data: &[u8]| {
    let [hi, lo, rest @ ..] = data else {
        return;
    };
    let Some(&cmd) = COMMANDS.get(usize::from(u16::from_be_bytes([*hi, *lo])) % COMMANDS.len())
    else {
        return;
    };
    let mut args: Vec<Bytes> = cmd
        .name
        .split('|')
        .map(|p| Bytes::copy_from_slice(p.as_bytes()))
        .collect();
    if !rest.is_empty() {
        for piece in rest.split(|&b| b == 0) {
            args.push(match piece {
                [word] => Bytes::from_static(WORDS[usize::from(*word) % WORDS.len()].as_bytes()),
                raw => Bytes::copy_from_slice(raw),
            });
        }
    }
    check(cmd, &args);
    if let Ok(looked_up) = shardis_engine::lookup(&args) {
        check(looked_up, &args);
    }
});
