//! Redis's intset: a sorted array of integers of one width (2, 4 or 8 bytes), the encoding of
//! a set of integers (`RDB_TYPE_SET_INTSET`).
//!
//! Layout: the width (u32 LE), the count (u32 LE), then the integers, ascending, little
//! endian.

use crate::rdb::{Error, Result};

/// Encodes ascending, distinct integers in the narrowest width that holds them all.
pub fn encode(sorted: &[i64]) -> Vec<u8> {
    let fits = |lo: i64, hi: i64| sorted.iter().all(|v| (lo..=hi).contains(v));
    let width: usize = if fits(i16::MIN.into(), i16::MAX.into()) {
        2
    } else if fits(i32::MIN.into(), i32::MAX.into()) {
        4
    } else {
        8
    };
    let mut out = Vec::with_capacity(8 + width * sorted.len());
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(sorted.len() as u32).to_le_bytes());
    for &v in sorted {
        out.extend_from_slice(&v.to_le_bytes()[..width]);
    }
    out
}

/// Validates an intset (width, size, strictly ascending order) and returns its integers.
pub fn decode(is: &[u8]) -> Result<Vec<i64>> {
    let head = is.get(..8).ok_or(Error::corrupt("intset too short"))?;
    let width = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let count = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
    if !matches!(width, 2 | 4 | 8) {
        return Err(Error::corrupt("intset width"));
    }
    let body = &is[8..];
    if count.checked_mul(width) != Some(body.len()) {
        return Err(Error::corrupt("intset size"));
    }
    let mut out = Vec::with_capacity(count);
    for chunk in body.chunks_exact(width) {
        let v = match width {
            2 => i64::from(i16::from_le_bytes([chunk[0], chunk[1]])),
            4 => i64::from(i32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]])),
            _ => {
                let mut a = [0u8; 8];
                a.copy_from_slice(chunk);
                i64::from_le_bytes(a)
            }
        };
        if out.last().is_some_and(|&prev| prev >= v) {
            return Err(Error::corrupt("intset not ascending"));
        }
        out.push(v);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_and_round_trip() {
        for set in [
            vec![],
            vec![-5, 1, 300],
            vec![-70000, 5],
            vec![i64::MIN, 0, i64::MAX],
        ] {
            let enc = encode(&set);
            assert_eq!(decode(&enc).expect("valid"), set);
        }
        assert_eq!(encode(&[1, 2]).len(), 8 + 4);
        assert_eq!(encode(&[1, 1 << 20]).len(), 8 + 8);
        assert_eq!(encode(&[1, 1 << 40]).len(), 8 + 16);
    }

    #[test]
    fn bad_intsets_are_errors() {
        assert!(decode(&encode(&[1, 2])[..9]).is_err());
        let mut unsorted = encode(&[1, 2]);
        unsorted.swap(8, 10);
        assert!(decode(&unsorted).is_err());
        let mut width = encode(&[1]);
        width[0] = 3;
        assert!(decode(&width).is_err());
        let mut count = encode(&[1]);
        count[4] = 0xff;
        count[7] = 0xff;
        assert!(decode(&count).is_err());
    }
}
