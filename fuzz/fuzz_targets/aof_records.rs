//! The append-only log's frames (`shardis_persist::aof::decode`), as loading reads them from
//! a file that may be torn, padded or damaged: no panic, and a good frame never claims more
//! bytes than the buffer holds. The first byte chooses whether the frame's length and
//! checksum are made right (so the record's content is reached) or left as the input says.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shardis_persist::aof::{decode, Frame, FRAME_HEADER};
use shardis_persist::crc::crc32c;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut buf = rest.to_vec();
    if mode & 1 == 0 && buf.len() > FRAME_HEADER {
        let payload_len = buf.len() - FRAME_HEADER;
        buf[..4].copy_from_slice(&(payload_len as u32).to_le_bytes());
        let crc = crc32c(&[&buf[..4], &buf[FRAME_HEADER..]]);
        buf[4..8].copy_from_slice(&crc.to_le_bytes());
    }
    let mut at = 0;
    while at < buf.len() {
        match decode(&buf[at..]) {
            Frame::Record(_, n) => {
                assert!(n > 0 && n <= buf.len() - at, "frame of {n} bytes");
                at += n;
            }
            _ => return,
        }
    }
});
