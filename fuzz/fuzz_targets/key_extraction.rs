//! Runs key extraction, as the runtime does on every request, on arbitrary argument lists:
//! table lookup (name, subcommand, arity), then the key indexes, the written key indexes and
//! the data-dependent key finder (SORT's BY/GET patterns, on a small populated shard). None
//! may panic, and every index must name an argument present, at most once per key spec.
//! Key extraction is also run on the argument list without the arity check, for every
//! command of the table: the runtime may call it on requests the command itself refuses.
//!
//! Input layout: two bytes choose a command or subcommand of the table (its name comes
//! first); the rest is split at NUL bytes into arguments. A one-byte argument stands for a
//! word of the dictionary in `common.rs` (numbers at the edges of every integer type, every token of
//! the command grammar), so the fuzzer reaches the keyword and key-count branches at once.

#![no_main]

use std::cell::RefCell;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use shardis_engine::command::Command;
use shardis_engine::{Ctx, Shard};

#[path = "common.rs"]
mod common;
use common::{arguments, populated, COMMANDS};

thread_local! {
    /// A shard with a few values for the key finder to look into.
    static SHARD: RefCell<Shard> = RefCell::new(populated());
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
    let args = arguments(cmd, rest);
    check(cmd, &args);
    if let Ok(looked_up) = shardis_engine::lookup(&args) {
        check(looked_up, &args);
    }
});
