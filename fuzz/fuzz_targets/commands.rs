//! Runs sequences of engine commands with arbitrary arguments on a small populated shard, as
//! the runtime would after key routing: none may panic (overflow checks are on), hang (the
//! per-input timeout) or allocate far beyond the data and the request (the RSS and malloc
//! limits; the shard's `proto-max-bulk-len` is 1 MiB so offsets near it stay cheap). Each
//! reply must stay small too: the data is a few short values, so a big reply came from a
//! number in the request.
//!
//! Input layout: commands separated by `\n`; in each, the first byte chooses a command or
//! subcommand of the table and the rest is split at NUL bytes into arguments, a one-byte
//! argument standing for a word of the dictionary in `common.rs`. A fresh shard per input
//! keeps every finding reproducible from its input alone.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;
use common::{arguments, populated, run, COMMANDS};

fuzz_target!(|data: &[u8]| {
    let mut shard = populated();
    for line in data.split(|&b| b == b'\n').take(16) {
        let Some((&pick, rest)) = line.split_first() else {
            continue;
        };
        let Some(&cmd) = COMMANDS.get(usize::from(pick) % COMMANDS.len()) else {
            continue;
        };
        let args = arguments(cmd, rest);
        if let Some(reply) = run(&mut shard, &args) {
            let mut wire = Vec::new();
            shardis_resp::encode(&reply, false, &mut wire);
            assert!(
                wire.len() < 1 << 22,
                "{} reply bytes for {args:?}",
                wire.len()
            );
        }
    }
});
