//! Redis's zipmap, read only: how Redis 2.x serialised small hashes
//! (`RDB_TYPE_HASH_ZIPMAP`). Redis 7.0 still loads it, so Shardis does.
//!
//! Layout: a count byte (254 or more: unknown), then per pair: the field's length (1 byte,
//! or 254 and 4 bytes LE), the field, the value's length, a byte of unused space after the
//! value, the value, the unused bytes; then 0xFF.

use crate::rdb::{Error, Result};

const BIGLEN: u8 = 254;
const END: u8 = 255;

fn read_len(zm: &[u8], pos: usize) -> Result<(usize, usize)> {
    match *zm.get(pos).ok_or(Error::corrupt("zipmap length"))? {
        END => Err(Error::corrupt("zipmap ends inside a pair")),
        BIGLEN => {
            let b = zm
                .get(pos + 1..pos + 5)
                .ok_or(Error::corrupt("zipmap big length"))?;
            Ok((u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize, 5))
        }
        n => Ok((usize::from(n), 1)),
    }
}

fn take(zm: &[u8], pos: usize, len: usize) -> Result<&[u8]> {
    let end = pos
        .checked_add(len)
        .ok_or(Error::corrupt("zipmap length"))?;
    zm.get(pos..end).ok_or(Error::corrupt("zipmap overruns"))
}

/// Validates a zipmap and returns its (field, value) pairs.
pub fn decode(zm: &[u8]) -> Result<Vec<(&[u8], &[u8])>> {
    let count = *zm.first().ok_or(Error::corrupt("zipmap empty"))?;
    let mut out = Vec::with_capacity(usize::from(count.min(253)));
    let mut pos = 1;
    loop {
        match zm.get(pos) {
            None => return Err(Error::corrupt("zipmap without end marker")),
            Some(&END) => {
                if pos + 1 != zm.len() {
                    return Err(Error::corrupt("zipmap trailing bytes"));
                }
                break;
            }
            Some(_) => {}
        }
        let (flen, n) = read_len(zm, pos)?;
        let field = take(zm, pos + n, flen)?;
        pos += n + flen;
        let (vlen, n) = read_len(zm, pos)?;
        pos += n;
        let free = usize::from(*zm.get(pos).ok_or(Error::corrupt("zipmap free"))?);
        let value = take(zm, pos + 1, vlen)?;
        pos += 1 + vlen + free;
        out.push((field, value));
    }
    if count < BIGLEN && usize::from(count) != out.len() {
        return Err(Error::corrupt("zipmap count mismatch"));
    }
    Ok(out)
}

#[cfg(test)]
pub fn encode(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut out = vec![pairs.len().min(254) as u8];
    let put_len = |out: &mut Vec<u8>, n: usize| {
        if n < 254 {
            out.push(n as u8);
        } else {
            out.push(BIGLEN);
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
    };
    for (f, v) in pairs {
        put_len(&mut out, f.len());
        out.extend_from_slice(f);
        put_len(&mut out, v.len());
        out.push(1); // one byte of unused space, as an updated zipmap may have
        out.extend_from_slice(v);
        out.push(0);
    }
    out.push(END);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let big = vec![b'v'; 400];
        let pairs: Vec<(&[u8], &[u8])> = vec![(b"a", b"1"), (b"field", &big), (b"", b"")];
        let zm = encode(&pairs);
        assert_eq!(decode(&zm).expect("valid"), pairs);
        for i in 0..zm.len() {
            for v in [0u8, 1, 253, 254, 255] {
                let mut bad = zm.clone();
                bad[i] = v;
                let _ = decode(&bad);
            }
        }
        assert!(decode(&zm[..zm.len() - 1]).is_err());
    }
}
