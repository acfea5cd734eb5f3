//! What the engine targets share: the command table flattened, the dictionary of words a
//! one-byte argument stands for, a small populated shard, and running command lines on it.

// Each target that includes this file uses a part of it.
#![allow(dead_code)]

use std::sync::LazyLock;

use bytes::Bytes;
use shardis_engine::command::{Arg, Command};
use shardis_engine::{Ctx, EngineConfig, Exec, Shard, REGISTRY};

/// Every command and subcommand.
pub static COMMANDS: LazyLock<Vec<&'static Command>> = LazyLock::new(|| {
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
    "-9223372036854775807",
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
    "z",
    "*",
    "#",
    "k*",
    "*->f",
];

/// The dictionary: extremes, the keys of [`populated`], then every token of every command's
/// grammar.
pub static WORDS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
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

/// The command's name (and subcommand) followed by the NUL-separated pieces of `rest`; a
/// one-byte piece stands for a word of [`WORDS`].
pub fn arguments(cmd: &Command, rest: &[u8]) -> Vec<Bytes> {
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
    args
}

/// Runs a command the engine carries out; None for the runtime's commands and for
/// PFSELFTEST, which takes no input and runs Redis's fixed self-test (about a second
/// unsanitized, past the 10 s per-input limit under AddressSanitizer on a busy machine).
pub fn run(shard: &mut Shard, args: &[Bytes]) -> Option<shardis_resp::Reply> {
    match shardis_engine::lookup(args) {
        Ok(cmd) if cmd.name.as_str() == "pfselftest" => None,
        Ok(Command {
            exec: Exec::Shard(f),
            ..
        }) => Some(f(&mut Ctx::new(shard, 0, 0, false), args)),
        Ok(_) => None,
        Err(e) => Some(e),
    }
}

/// A shard with one small value of each type, under the key named after it, and a
/// `proto-max-bulk-len` of 1 MiB so that offsets near the limit stay cheap.
pub fn populated() -> Shard {
    let config = EngineConfig {
        proto_max_bulk_len: 1 << 20,
        ..EngineConfig::default()
    };
    let mut shard = Shard::new(0, config);
    for setup in [
        &["rpush", "l", "1", "2", "k", "3"][..],
        &["sadd", "s", "a", "1", "k"],
        &["zadd", "z", "1", "a", "2", "k"],
        &["set", "k", "1"],
        &["set", "k1", "2"],
        &["hset", "h", "f", "1"],
    ] {
        let args: Vec<Bytes> = setup
            .iter()
            .map(|a| Bytes::from_static(a.as_bytes()))
            .collect();
        run(&mut shard, &args);
    }
    shard
}

/// Runs up to 16 command lines (`\n`-separated; in each the first byte picks a command of
/// [`COMMANDS`], the rest its [`arguments`]); every reply must stay under 4 MiB.
pub fn run_lines(shard: &mut Shard, data: &[u8]) {
    for line in data.split(|&b| b == b'\n').take(16) {
        let Some((&pick, rest)) = line.split_first() else {
            continue;
        };
        let Some(&cmd) = COMMANDS.get(usize::from(pick) % COMMANDS.len()) else {
            continue;
        };
        let args = arguments(cmd, rest);
        if let Some(reply) = run(shard, &args) {
            let mut wire = Vec::new();
            shardis_resp::encode(&reply, false, &mut wire);
            assert!(
                wire.len() < 1 << 22,
                "{} reply bytes for {args:?}",
                wire.len()
            );
        }
    }
}
