//! Runs the glob matcher (KEYS, SCAN MATCH, PSUBSCRIBE…) on arbitrary patterns and strings:
//! it must never panic nor hang, whatever the pattern (unbalanced `[`, trailing `\`, many `*`).
//!
//! Input layout: byte 0 chooses nocase (bit 0); byte 1 is the pattern length (capped by the
//! input); the pattern follows, then the string.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [flags, split, rest @ ..] = data else {
        return;
    };
    let (pattern, string) = rest.split_at(usize::from(*split).min(rest.len()));
    let nocase = flags & 1 != 0;
    let _ = shardis_engine::glob::matches(pattern, string, nocase);
});
