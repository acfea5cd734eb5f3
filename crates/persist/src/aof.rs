//! The append-only log's records: what a shard executed, in a deterministic form, framed so
//! that a torn, zero-padded or corrupt log is told apart from a good one.
//!
//! A frame is `length (u32 LE) | CRC-32C (u32 LE) of the length and payload | payload`; a
//! payload is never empty, so a zero length marks padding. The payload is a record kind and
//! its fields, integers as LEB128 varints and byte strings as a varint length then the bytes:
//!
//! - `Command`: a command as executed (relative times already made absolute, random choices
//!   made explicit), with the database and the clock it ran under, so replay is exact;
//! - `Put`: a key's whole entry (a state write: the copy-back of a command that ran on another
//!   shard), its value in RDB serialisation (type byte and body);
//! - `Del`: a key removed without a command (expiry, eviction);
//! - `TxEnd`: this shard's part of a transaction over several shards is complete, with the
//!   shards that took part; replay applies a transaction's records only if every participant
//!   logged its end.
//!
//! Every record but `TxEnd` carries the id of the multi-shard transaction it belongs to (0:
//! none).

use crate::crc::crc32c;

/// Frame header: length and checksum.
pub const FRAME_HEADER: usize = 8;
/// The largest payload a frame holds.
pub const MAX_PAYLOAD: usize = u32::MAX as usize;

const KIND_COMMAND: u8 = 1;
const KIND_PUT: u8 = 2;
const KIND_DEL: u8 = 3;
const KIND_TX_END: u8 = 4;

/// A record, borrowing its byte strings from the frame it was read from (or from the caller,
/// to write it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record<'a> {
    Command {
        tx: u64,
        db: u32,
        now_ms: u64,
        args: Vec<&'a [u8]>,
    },
    Put {
        tx: u64,
        db: u32,
        key: &'a [u8],
        expire_ms: Option<u64>,
        /// RDB type byte and body.
        value: &'a [u8],
    },
    Del {
        tx: u64,
        db: u32,
        key: &'a [u8],
    },
    TxEnd {
        tx: u64,
        participants: Vec<u32>,
    },
}

impl Record<'_> {
    /// The multi-shard transaction the record belongs to (0: none).
    pub fn tx(&self) -> u64 {
        match self {
            Record::Command { tx, .. }
            | Record::Put { tx, .. }
            | Record::Del { tx, .. }
            | Record::TxEnd { tx, .. } => *tx,
        }
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Appends `record` as one frame to `out`; returns false (writing nothing) if it is larger
/// than a frame holds.
pub fn encode(record: &Record<'_>, out: &mut Vec<u8>) -> bool {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER]);
    match record {
        Record::Command {
            tx,
            db,
            now_ms,
            args,
        } => {
            out.push(KIND_COMMAND);
            put_varint(out, *tx);
            put_varint(out, u64::from(*db));
            put_varint(out, *now_ms);
            put_varint(out, args.len() as u64);
            for a in args {
                put_bytes(out, a);
            }
        }
        Record::Put {
            tx,
            db,
            key,
            expire_ms,
            value,
        } => {
            out.push(KIND_PUT);
            put_varint(out, *tx);
            put_varint(out, u64::from(*db));
            put_bytes(out, key);
            put_varint(out, expire_ms.map_or(0, |at| at.saturating_add(1)));
            put_bytes(out, value);
        }
        Record::Del { tx, db, key } => {
            out.push(KIND_DEL);
            put_varint(out, *tx);
            put_varint(out, u64::from(*db));
            put_bytes(out, key);
        }
        Record::TxEnd { tx, participants } => {
            out.push(KIND_TX_END);
            put_varint(out, *tx);
            put_varint(out, participants.len() as u64);
            for p in participants {
                put_varint(out, u64::from(*p));
            }
        }
    }
    let len = out.len() - start - FRAME_HEADER;
    if len > MAX_PAYLOAD {
        out.truncate(start);
        return false;
    }
    let len_bytes = (len as u32).to_le_bytes();
    let crc = crc32c(&[&len_bytes, &out[start + FRAME_HEADER..]]);
    out[start..start + 4].copy_from_slice(&len_bytes);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    true
}

/// What the bytes at the start of a buffer hold.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A good frame: its record and the bytes it takes.
    Record(Record<'a>, usize),
    /// A frame starts here but does not end within the buffer: at least this many bytes are
    /// needed in all. At the end of a file, that is a torn tail.
    Incomplete(usize),
    /// Zero length: padding (at the end of a file) or damage.
    Zero,
    /// A whole frame whose checksum or content is wrong.
    Bad(&'static str),
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f).checked_shl(7 * i)?;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn u32(&mut self) -> Option<u32> {
        u32::try_from(self.varint()?).ok()
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.varint()?).ok()?;
        let end = self.pos.checked_add(len)?;
        let b = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(b)
    }

    /// A count of items each at least one byte long, bounded by the bytes left.
    fn count(&mut self) -> Option<usize> {
        let n = usize::try_from(self.varint()?).ok()?;
        (n <= self.buf.len() - self.pos).then_some(n)
    }

    fn u8(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }
}

fn decode_payload(p: &[u8]) -> Option<Record<'_>> {
    let mut c = Cursor { buf: p, pos: 0 };
    let kind = c.u8()?;
    let tx = c.varint()?;
    let record = match kind {
        KIND_COMMAND => {
            let db = c.u32()?;
            let now_ms = c.varint()?;
            let argc = c.count()?;
            let mut args = Vec::with_capacity(argc);
            for _ in 0..argc {
                args.push(c.bytes()?);
            }
            Record::Command {
                tx,
                db,
                now_ms,
                args,
            }
        }
        KIND_PUT => {
            let db = c.u32()?;
            let key = c.bytes()?;
            let expire_ms = c.varint()?.checked_sub(1);
            let value = c.bytes()?;
            Record::Put {
                tx,
                db,
                key,
                expire_ms,
                value,
            }
        }
        KIND_DEL => Record::Del {
            tx,
            db: c.u32()?,
            key: c.bytes()?,
        },
        KIND_TX_END => {
            let n = c.count()?;
            let mut participants = Vec::with_capacity(n);
            for _ in 0..n {
                participants.push(c.u32()?);
            }
            Record::TxEnd { tx, participants }
        }
        _ => return None,
    };
    (c.pos == p.len()).then_some(record)
}

/// Reads the frame at the start of `buf`.
pub fn decode(buf: &[u8]) -> Frame<'_> {
    if buf.len() < FRAME_HEADER {
        if buf.iter().all(|&b| b == 0) && !buf.is_empty() {
            return Frame::Zero;
        }
        return Frame::Incomplete(FRAME_HEADER);
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len == 0 {
        return Frame::Zero;
    }
    let Some(total) = len.checked_add(FRAME_HEADER) else {
        return Frame::Bad("frame length");
    };
    if buf.len() < total {
        return Frame::Incomplete(total);
    }
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let payload = &buf[FRAME_HEADER..total];
    if crc32c(&[&buf[..4], payload]) != crc {
        return Frame::Bad("record checksum mismatch");
    }
    match decode_payload(payload) {
        Some(r) => Frame::Record(r, total),
        None => Frame::Bad("record content"),
    }
}

/// True if `buf` holds only zeros (the padding a crash can leave at the end of a file).
pub fn is_zero(buf: &[u8]) -> bool {
    buf.iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Record<'static>> {
        vec![
            Record::Command {
                tx: 0,
                db: 0,
                now_ms: 1_700_000_000_123,
                args: vec![b"SET", b"k", b"v"],
            },
            Record::Put {
                tx: 77,
                db: 3,
                key: b"key",
                expire_ms: Some(0),
                value: b"\x00\x03abc",
            },
            Record::Put {
                tx: 0,
                db: 0,
                key: b"",
                expire_ms: None,
                value: b"\x00\x00",
            },
            Record::Del {
                tx: 0,
                db: 15,
                key: b"gone",
            },
            Record::TxEnd {
                tx: 1 << 40,
                participants: vec![0, 1, 7],
            },
        ]
    }

    fn log() -> Vec<u8> {
        let mut out = Vec::new();
        for r in samples() {
            assert!(encode(&r, &mut out));
        }
        out
    }

    fn read_all(mut buf: &[u8]) -> (Vec<Record<'_>>, Frame<'_>) {
        let mut out = Vec::new();
        loop {
            if buf.is_empty() {
                return (out, Frame::Incomplete(0));
            }
            match decode(buf) {
                Frame::Record(r, n) => {
                    out.push(r);
                    buf = &buf[n..];
                }
                other => return (out, other),
            }
        }
    }

    #[test]
    fn records_round_trip() {
        let log = log();
        let (records, end) = read_all(&log);
        assert_eq!(records, samples());
        assert_eq!(end, Frame::Incomplete(0));
    }

    #[test]
    fn torn_zero_padded_and_corrupt_tails_are_told_apart() {
        let log = log();
        // Every cut inside the last frame is incomplete, never a bad record.
        let last_start = log.len() - {
            let mut one = Vec::new();
            encode(samples().last().expect("one"), &mut one);
            one.len()
        };
        for cut in last_start + 1..log.len() {
            let (records, end) = read_all(&log[..cut]);
            assert_eq!(records.len(), 4);
            assert!(matches!(end, Frame::Incomplete(_)), "cut {cut}: {end:?}");
        }
        // Zeros after the good frames: padding.
        let mut padded = log.clone();
        padded.extend_from_slice(&[0; 4096]);
        let (records, end) = read_all(&padded);
        assert_eq!(records.len(), 5);
        assert_eq!(end, Frame::Zero);
        // A flipped byte in the middle: a bad frame there.
        let mut corrupt = log.clone();
        corrupt[FRAME_HEADER + 3] ^= 0x40;
        let (records, end) = read_all(&corrupt);
        assert_eq!(records.len(), 0);
        assert!(matches!(end, Frame::Bad(_)));
    }

    #[test]
    fn random_garbage_never_panics() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let log = log();
        for _ in 0..20_000 {
            let mut buf = log.clone();
            for _ in 0..rng.gen_range(1..4) {
                let i = rng.gen_range(0..buf.len());
                buf[i] = rng.gen();
            }
            let _ = read_all(&buf);
            let junk: Vec<u8> = (0..rng.gen_range(0..64)).map(|_| rng.gen()).collect();
            let _ = read_all(&junk);
        }
    }
}
