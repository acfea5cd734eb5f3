//! What a hostile primary can answer a replica's handshake with
//! (`replica::handshake`): PSYNC's reply line and the full sync payload's header, as the
//! link reads them (UTF-8 lossy, trailing space trimmed). No reply may panic; an accepted
//! FULLRESYNC offset leaves room to count the stream, and the PSYNC that resumes after it
//! is well formed. (The command stream after the handshake goes through the request parser,
//! fuzzed by `parse_request`.)

#![no_main]

use libfuzzer_sys::fuzz_target;
use shardis_server::replica::handshake::{self, Payload, Psync, MAX_OFFSET};

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    let line = line.trim_end();
    match handshake::psync_reply(line) {
        Ok(Psync::Full { replid, offset }) => {
            assert!((0..=MAX_OFFSET).contains(&offset));
            let (id, from) = handshake::resume_args(Some(&(replid.clone(), offset)));
            assert_eq!(id, replid);
            assert_eq!(from.parse::<i64>().ok(), Some(offset + 1));
        }
        Ok(Psync::Continue { .. }) | Err(_) => {}
    }
    match handshake::payload_header(line) {
        Ok(Payload::Mark(m)) => assert_eq!(m.len(), 40),
        Ok(Payload::Length(_)) | Err(_) => {}
    }
});
