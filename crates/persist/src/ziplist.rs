//! Redis's ziplist, read only: the encoding Redis before 7.0 serialised small lists, hashes
//! and sorted sets in (and quicklist v1 nodes). Redis 7.0 still loads it, so Shardis does.
//!
//! Layout: total bytes (u32 LE), offset of the last entry (u32 LE), entry count (u16 LE,
//! 65535 when unknown), the entries, 0xFF. An entry is the previous entry's length (1 byte,
//! or 0xFE and 4 bytes), an encoding (string length or integer kind) and the data.

use crate::listpack::Elem;
use crate::rdb::{Error, Result};

const HEADER: usize = 10;
const END: u8 = 0xFF;

/// Decodes the entry at `pos`: its element and total length.
fn entry_at(zl: &[u8], pos: usize) -> Result<(Elem<'_>, usize, usize)> {
    let bad = |what| Error::corrupt(what);
    let first = *zl.get(pos).ok_or(bad("ziplist entry past end"))?;
    let (prevlen, prev_size) = if first < 0xFE {
        (usize::from(first), 1)
    } else if first == 0xFE {
        let b = zl.get(pos + 1..pos + 5).ok_or(bad("ziplist prevlen"))?;
        (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize, 5)
    } else {
        return Err(bad("ziplist entry is the end marker"));
    };
    let at = pos + prev_size;
    let enc = *zl.get(at).ok_or(bad("ziplist encoding"))?;
    let data = |hdr: usize, len: usize| -> Result<&[u8]> {
        let start = at + hdr;
        let end = start.checked_add(len).ok_or(bad("ziplist length"))?;
        zl.get(start..end).ok_or(bad("ziplist entry overruns"))
    };
    let (elem, body) = match enc >> 6 {
        0 => {
            let len = usize::from(enc & 0x3f);
            (Elem::Str(data(1, len)?), 1 + len)
        }
        1 => {
            let lo = *zl.get(at + 1).ok_or(bad("ziplist str14"))?;
            let len = (usize::from(enc & 0x3f) << 8) | usize::from(lo);
            (Elem::Str(data(2, len)?), 2 + len)
        }
        2 => {
            if enc != 0x80 {
                return Err(bad("ziplist bad string encoding"));
            }
            let l = zl.get(at + 1..at + 5).ok_or(bad("ziplist str32"))?;
            let len = u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize;
            (Elem::Str(data(5, len)?), 5 + len)
        }
        _ => {
            let (v, n) = match enc {
                0xC0 => {
                    let d = data(1, 2)?;
                    (i64::from(i16::from_le_bytes([d[0], d[1]])), 2)
                }
                0xD0 => {
                    let d = data(1, 4)?;
                    (i64::from(i32::from_le_bytes([d[0], d[1], d[2], d[3]])), 4)
                }
                0xE0 => {
                    let d = data(1, 8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(d);
                    (i64::from_le_bytes(a), 8)
                }
                0xF0 => {
                    let d = data(1, 3)?;
                    (i64::from(i32::from_le_bytes([0, d[0], d[1], d[2]]) >> 8), 3)
                }
                0xFE => {
                    let d = data(1, 1)?;
                    (i64::from(d[0] as i8), 1)
                }
                0xF1..=0xFD => (i64::from(enc & 0x0f) - 1, 0),
                _ => return Err(bad("ziplist bad encoding")),
            };
            (Elem::Int(v), 1 + n)
        }
    };
    Ok((elem, prev_size + body, prevlen))
}

/// Validates a whole ziplist and returns its entries.
pub fn decode(zl: &[u8]) -> Result<Vec<Elem<'_>>> {
    if zl.len() < HEADER + 1 {
        return Err(Error::corrupt("ziplist too short"));
    }
    let total = u32::from_le_bytes([zl[0], zl[1], zl[2], zl[3]]) as usize;
    let tail = u32::from_le_bytes([zl[4], zl[5], zl[6], zl[7]]) as usize;
    let count = u16::from_le_bytes([zl[8], zl[9]]);
    if total != zl.len() || zl[zl.len() - 1] != END {
        return Err(Error::corrupt("ziplist size or end marker"));
    }
    let end = zl.len() - 1;
    let mut out = Vec::with_capacity(usize::from(count).min(end / 2));
    let mut pos = HEADER;
    let mut prev_len = 0;
    let mut last = HEADER;
    while pos < end {
        let (elem, len, prevlen) = entry_at(&zl[..end], pos)?;
        if prevlen != prev_len {
            return Err(Error::corrupt("ziplist prevlen mismatch"));
        }
        out.push(elem);
        last = pos;
        prev_len = len;
        pos += len;
    }
    if pos != end || (!out.is_empty() && tail != last) || (out.is_empty() && tail != HEADER) {
        return Err(Error::corrupt("ziplist tail offset"));
    }
    if count != u16::MAX && usize::from(count) != out.len() {
        return Err(Error::corrupt("ziplist count mismatch"));
    }
    Ok(out)
}

/// Builds a ziplist (tests use it to produce the payloads older Redis versions wrote).
#[cfg(test)]
pub fn encode(elems: &[Elem<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut prev = 0usize;
    let mut last = HEADER;
    for e in elems {
        last = HEADER + body.len();
        let start = body.len();
        if prev < 254 {
            body.push(prev as u8);
        } else {
            body.push(0xFE);
            body.extend_from_slice(&(prev as u32).to_le_bytes());
        }
        match *e {
            Elem::Int(v) if (0..=12).contains(&v) => body.push(0xF1 + v as u8),
            Elem::Int(v) if i8::try_from(v).is_ok() => {
                body.push(0xFE);
                body.push(v as i8 as u8);
            }
            Elem::Int(v) if i16::try_from(v).is_ok() => {
                body.push(0xC0);
                body.extend_from_slice(&(v as i16).to_le_bytes());
            }
            Elem::Int(v) if (-8388608..=8388607).contains(&v) => {
                body.push(0xF0);
                body.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
            }
            Elem::Int(v) if i32::try_from(v).is_ok() => {
                body.push(0xD0);
                body.extend_from_slice(&(v as i32).to_le_bytes());
            }
            Elem::Int(v) => {
                body.push(0xE0);
                body.extend_from_slice(&v.to_le_bytes());
            }
            Elem::Str(s) if s.len() < 64 => {
                body.push(s.len() as u8);
                body.extend_from_slice(s);
            }
            Elem::Str(s) if s.len() < 16384 => {
                body.push(0x40 | (s.len() >> 8) as u8);
                body.push(s.len() as u8);
                body.extend_from_slice(s);
            }
            Elem::Str(s) => {
                body.push(0x80);
                body.extend_from_slice(&(s.len() as u32).to_be_bytes());
                body.extend_from_slice(s);
            }
        }
        prev = body.len() - start;
    }
    let mut out = Vec::with_capacity(HEADER + body.len() + 1);
    out.extend_from_slice(&((HEADER + body.len() + 1) as u32).to_le_bytes());
    out.extend_from_slice(&(last as u32).to_le_bytes());
    out.extend_from_slice(&(elems.len().min(65535) as u16).to_le_bytes());
    out.extend_from_slice(&body);
    out.push(END);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_encoding_round_trips() {
        let big = vec![b'z'; 20_000];
        let mid = vec![b'm'; 300];
        let elems = vec![
            Elem::Int(0),
            Elem::Int(12),
            Elem::Int(13),
            Elem::Int(-128),
            Elem::Int(32767),
            Elem::Int(8388607),
            Elem::Int(2147483647),
            Elem::Int(i64::MIN),
            Elem::Str(b""),
            Elem::Str(b"abc"),
            Elem::Str(&mid),
            Elem::Str(&big),
            Elem::Str(b"after a big entry: prevlen takes five bytes"),
        ];
        let zl = encode(&elems);
        assert_eq!(decode(&zl).expect("valid"), elems);
        assert_eq!(decode(&encode(&[])).expect("valid"), vec![]);
    }

    #[test]
    fn corruption_is_detected_not_panicked_on() {
        let zl = encode(&[Elem::Str(b"hello"), Elem::Int(1000), Elem::Int(5)]);
        for i in 0..zl.len() {
            for v in [0u8, 1, 0x3f, 0x40, 0x80, 0xc0, 0xfe, 0xff] {
                let mut bad = zl.clone();
                bad[i] = v;
                let _ = decode(&bad);
            }
        }
        assert!(decode(&zl[..zl.len() - 1]).is_err());
    }
}
