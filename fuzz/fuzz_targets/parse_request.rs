//! Feeds arbitrary bytes, split at arbitrary points, to the request parser: it must never
//! panic, must consume input only by whole commands, every command must have arguments, and
//! what it holds for a command in progress never exceeds what was fed (plus one argument slot
//! per argument received). The read-ahead `peek_keys` reads the same bytes: it must never
//! panic and only report keys inside them.
//!
//! Input layout: the first byte seeds the chunk sizes, the rest is the byte stream.

#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use shardis_resp::{peek_keys, Limits, RequestParser};

fuzz_target!(|data: &[u8]| {
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    // Small limits so the "too big" paths are reachable with fuzzer-sized inputs.
    let limits = if seed & 0x80 != 0 {
        Limits {
            max_bulk_len: 64,
            max_multibulk_len: 16,
            max_inline_len: 32,
        }
    } else {
        Limits::default()
    };
    let mut parser = RequestParser::new();
    parser.set_auth_required(seed & 0x40 != 0);
    let mut buf = BytesMut::new();
    let mut args = Vec::new();
    let mut pos = 0;
    let mut step = usize::from(seed & 0x3f) + 1;
    while pos < stream.len() {
        let end = (pos + step).min(stream.len());
        buf.extend_from_slice(&stream[pos..end]);
        pos = end;
        // Vary the chunk size so splits fall everywhere.
        step = step % 61 + 1;
        if parser.pending_bytes() == 0 {
            peek_keys(&buf, 64, |k| assert!(k.len() <= buf.len()));
        }
        loop {
            let result = parser.next_into(&mut buf, &limits, &mut args);
            // Each argument received took at least 6 bytes of input (`$0\r\n\r\n`).
            let slot = std::mem::size_of::<Bytes>();
            assert!(parser.pending_bytes() <= pos + pos / 6 * slot);
            match result {
                Ok(true) => assert!(!args.is_empty()),
                Ok(false) => {
                    assert!(args.is_empty());
                    break;
                }
                Err(e) => {
                    assert!(e.message().starts_with("Protocol error: "));
                    return;
                }
            }
        }
    }
});
