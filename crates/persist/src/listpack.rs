//! Redis's listpack, byte for byte: the container Redis 7.0 serialises lists (as quicklist
//! nodes), small hashes and sorted sets, and stream nodes in.
//!
//! Layout: total bytes (u32 LE), element count (u16 LE, 65535 when unknown), the elements,
//! then 0xFF. An element is an encoding byte (with data), then its own length written
//! backwards ("backlen") so the list can be walked from the end. Strings that are canonical
//! 64-bit integers are stored as integers, in the smallest of seven integer encodings.

use crate::rdb::{Error, Result};

/// One element as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elem<'a> {
    Str(&'a [u8]),
    Int(i64),
}

impl Elem<'_> {
    /// The element as a client sees it (integers in decimal).
    pub fn to_vec(&self) -> Vec<u8> {
        match *self {
            Elem::Str(s) => s.to_vec(),
            Elem::Int(n) => n.to_string().into_bytes(),
        }
    }

    /// Appends the element's client form to `out`.
    pub fn append_to(&self, out: &mut Vec<u8>) {
        match *self {
            Elem::Str(s) => out.extend_from_slice(s),
            Elem::Int(n) => out.extend_from_slice(n.to_string().as_bytes()),
        }
    }
}

const HEADER: usize = 6;
const EOF: u8 = 0xFF;
/// The element count Redis writes when the real count does not fit in 16 bits.
const COUNT_UNKNOWN: u16 = u16::MAX;

/// Whether `s` is a canonical 64-bit integer as Redis's listpack decides it (no sign but
/// `-`, no leading zeros, no `-0`, at most 20 bytes), and its value.
pub fn string_to_int(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    let (&first, rest) = digits.split_first()?;
    if !(b'1'..=b'9').contains(&first) {
        return None;
    }
    let mut v = u64::from(first - b'0');
    for &c in rest {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if negative {
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// Size of the backlen of an element whose encoding and data take `len` bytes.
fn backlen_size(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

fn put_backlen(out: &mut Vec<u8>, len: usize) {
    let n = backlen_size(len);
    // Most significant group first; every byte but that first one carries the continuation
    // bit, so that reading backwards (least significant group first) stops at it.
    for i in (0..n).rev() {
        let group = ((len >> (7 * i)) & 0x7f) as u8;
        out.push(if i == n - 1 { group } else { group | 0x80 });
    }
}

/// Builds a listpack.
#[derive(Debug, Clone)]
pub struct Builder {
    buf: Vec<u8>,
    count: usize,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    pub fn new() -> Builder {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&[0; HEADER]);
        Builder { buf, count: 0 }
    }

    /// Elements so far.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes the finished listpack will take.
    pub fn bytes(&self) -> usize {
        self.buf.len() + 1
    }

    /// Appends a string, stored as an integer when it is a canonical one (as Redis's
    /// `lpAppend`).
    pub fn push_str(&mut self, s: &[u8]) {
        match string_to_int(s) {
            Some(n) => self.push_int(n),
            None => self.push_raw_str(s),
        }
    }

    /// Appends an element as read from another container.
    pub fn push(&mut self, e: Elem<'_>) {
        match e {
            Elem::Str(s) => self.push_str(s),
            Elem::Int(n) => self.push_int(n),
        }
    }

    fn push_raw_str(&mut self, s: &[u8]) {
        let start = self.buf.len();
        let len = s.len();
        if len < 64 {
            self.buf.push(0x80 | len as u8);
        } else if len < 4096 {
            self.buf.push(0xE0 | (len >> 8) as u8);
            self.buf.push(len as u8);
        } else {
            self.buf.push(0xF0);
            self.buf.extend_from_slice(&(len as u32).to_le_bytes());
        }
        self.buf.extend_from_slice(s);
        let enc_len = self.buf.len() - start;
        put_backlen(&mut self.buf, enc_len);
        self.count += 1;
    }

    /// Appends an integer in the smallest encoding that holds it.
    pub fn push_int(&mut self, v: i64) {
        let start = self.buf.len();
        if (0..=127).contains(&v) {
            self.buf.push(v as u8);
        } else if (-4096..=4095).contains(&v) {
            let u = (v as u64) & 0x1fff;
            self.buf.push(0xC0 | (u >> 8) as u8);
            self.buf.push(u as u8);
        } else if (-32768..=32767).contains(&v) {
            self.buf.push(0xF1);
            self.buf.extend_from_slice(&(v as i16).to_le_bytes());
        } else if (-8388608..=8388607).contains(&v) {
            self.buf.push(0xF2);
            self.buf.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
        } else if (i32::MIN as i64..=i32::MAX as i64).contains(&v) {
            self.buf.push(0xF3);
            self.buf.extend_from_slice(&(v as i32).to_le_bytes());
        } else {
            self.buf.push(0xF4);
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
        let enc_len = self.buf.len() - start;
        put_backlen(&mut self.buf, enc_len);
        self.count += 1;
    }

    /// The finished listpack.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(EOF);
        let total = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&total.to_le_bytes());
        let count = u16::try_from(self.count).unwrap_or(COUNT_UNKNOWN);
        self.buf[4..6].copy_from_slice(&count.to_le_bytes());
        self.buf
    }
}

/// Decodes the element at the start of `p`: the element and the bytes its encoding and data
/// take (without the backlen).
fn decode_at(p: &[u8]) -> Result<(Elem<'_>, usize)> {
    let b = *p
        .first()
        .ok_or(Error::corrupt("listpack element past end"))?;
    let int = |n: usize| -> Result<&[u8]> { p.get(1..1 + n).ok_or(Error::corrupt("listpack int")) };
    let string = |hdr: usize, len: usize| -> Result<(Elem<'_>, usize)> {
        let end = hdr
            .checked_add(len)
            .ok_or(Error::corrupt("listpack string length"))?;
        let s = p
            .get(hdr..end)
            .ok_or(Error::corrupt("listpack string past end"))?;
        Ok((Elem::Str(s), end))
    };
    Ok(match b {
        0x00..=0x7F => (Elem::Int(i64::from(b)), 1),
        0x80..=0xBF => return string(1, usize::from(b & 0x3f)),
        0xC0..=0xDF => {
            let lo = *p.get(1).ok_or(Error::corrupt("listpack int13"))?;
            let u = (u16::from(b & 0x1f) << 8) | u16::from(lo);
            // Sign-extend 13 bits.
            let v = ((u << 3) as i16 >> 3) as i64;
            (Elem::Int(v), 2)
        }
        0xE0..=0xEF => {
            let lo = *p.get(1).ok_or(Error::corrupt("listpack str12"))?;
            return string(2, (usize::from(b & 0x0f) << 8) | usize::from(lo));
        }
        0xF0 => {
            let l = int(4)?;
            let len = u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize;
            return string(5, len);
        }
        0xF1 => {
            let d = int(2)?;
            (Elem::Int(i64::from(i16::from_le_bytes([d[0], d[1]]))), 3)
        }
        0xF2 => {
            let d = int(3)?;
            let v = i32::from_le_bytes([0, d[0], d[1], d[2]]) >> 8;
            (Elem::Int(i64::from(v)), 4)
        }
        0xF3 => {
            let d = int(4)?;
            (
                Elem::Int(i64::from(i32::from_le_bytes([d[0], d[1], d[2], d[3]]))),
                5,
            )
        }
        0xF4 => {
            let d = int(8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(d);
            (Elem::Int(i64::from_le_bytes(a)), 9)
        }
        _ => return Err(Error::corrupt("listpack bad encoding")),
    })
}

/// Reads the backlen that ends at `end` (exclusive) in `p`: its value.
fn read_backlen(p: &[u8], end: usize) -> Result<usize> {
    let mut v = 0usize;
    let mut shift = 0;
    let mut i = end;
    for _ in 0..5 {
        i = i.checked_sub(1).ok_or(Error::corrupt("listpack backlen"))?;
        let b = p[i];
        v |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
        shift += 7;
    }
    Err(Error::corrupt("listpack backlen too long"))
}

/// Validates a whole listpack (header, every element and its backlen, the end marker, the
/// count) and returns its elements.
pub fn decode(lp: &[u8]) -> Result<Vec<Elem<'_>>> {
    if lp.len() < HEADER + 1 {
        return Err(Error::corrupt("listpack too short"));
    }
    let total = u32::from_le_bytes([lp[0], lp[1], lp[2], lp[3]]) as usize;
    if total != lp.len() {
        return Err(Error::corrupt("listpack size mismatch"));
    }
    let count = u16::from_le_bytes([lp[4], lp[5]]);
    let body = &lp[..lp.len() - 1];
    if lp[lp.len() - 1] != EOF {
        return Err(Error::corrupt("listpack end marker"));
    }
    // Each element takes at least two bytes.
    let mut out = Vec::with_capacity(usize::from(count).min(body.len() / 2));
    let mut pos = HEADER;
    while pos < body.len() {
        let (elem, enc_len) = decode_at(&body[pos..])?;
        let back = backlen_size(enc_len);
        let end = pos
            .checked_add(enc_len + back)
            .filter(|&e| e <= body.len())
            .ok_or(Error::corrupt("listpack element overruns"))?;
        if read_backlen(body, end)? != enc_len {
            return Err(Error::corrupt("listpack backlen mismatch"));
        }
        out.push(elem);
        pos = end;
    }
    if count != COUNT_UNKNOWN && usize::from(count) != out.len() {
        return Err(Error::corrupt("listpack count mismatch"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_integers_only() {
        assert_eq!(string_to_int(b"0"), Some(0));
        assert_eq!(string_to_int(b"-1"), Some(-1));
        assert_eq!(string_to_int(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(string_to_int(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b"01"[..],
            b"-0",
            b"+1",
            b"",
            b"-",
            b"1 ",
            b"9223372036854775808",
        ] {
            assert_eq!(string_to_int(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn every_encoding_round_trips() {
        let long = vec![b'x'; 70_000];
        let mid = vec![b'y'; 300];
        let values: Vec<Elem<'_>> = vec![
            Elem::Int(0),
            Elem::Int(127),
            Elem::Int(128),
            Elem::Int(-1),
            Elem::Int(-4096),
            Elem::Int(4095),
            Elem::Int(-32768),
            Elem::Int(32767),
            Elem::Int(-8388608),
            Elem::Int(8388607),
            Elem::Int(i32::MIN as i64),
            Elem::Int(i32::MAX as i64),
            Elem::Int(i64::MIN),
            Elem::Int(i64::MAX),
            Elem::Str(b""),
            Elem::Str(b"hello"),
            Elem::Str(&mid),
            Elem::Str(&long),
        ];
        let mut b = Builder::new();
        for v in &values {
            b.push(*v);
        }
        let lp = b.finish();
        assert_eq!(decode(&lp).expect("valid"), values);
    }

    #[test]
    fn strings_that_are_integers_are_stored_as_integers() {
        let mut b = Builder::new();
        b.push_str(b"12");
        b.push_str(b"012");
        let lp = b.finish();
        // 6 header + (1+1) + (1+3+1) + 1 end.
        assert_eq!(lp.len(), 14);
        assert_eq!(
            decode(&lp).expect("valid"),
            vec![Elem::Int(12), Elem::Str(b"012")]
        );
    }

    #[test]
    fn backlen_matches_redis_layout() {
        // A 200-byte string: header 0xE0|0, 200, then data; encoded length 202 → backlen
        // bytes [0x01, 0xCA] (202 = 1<<7 | 74).
        let s = vec![b'a'; 200];
        let mut b = Builder::new();
        b.push_str(&s);
        let lp = b.finish();
        let n = lp.len();
        assert_eq!(&lp[n - 3..n - 1], &[0x01, 0x80 | 74]);
    }

    #[test]
    fn corrupt_listpacks_are_errors() {
        let mut b = Builder::new();
        b.push_str(b"abc");
        b.push_int(1000);
        let lp = b.finish();
        assert!(decode(&lp[..lp.len() - 1]).is_err());
        for i in 0..lp.len() {
            for v in [0u8, 0x7f, 0x80, 0xff] {
                let mut bad = lp.clone();
                bad[i] = v;
                let _ = decode(&bad);
            }
        }
    }
}
