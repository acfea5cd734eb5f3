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
use common::{populated, run_lines};

fuzz_target!(|data: &[u8]| {
    let mut shard = populated();
    run_lines(&mut shard, data);
});
