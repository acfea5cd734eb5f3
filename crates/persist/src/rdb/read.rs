//! Reading RDB primitives from a [`Source`], checking every length against the bytes left.

use bytes::Bytes;

use super::{Error, Result};
use crate::crc::Crc64;

/// Where RDB bytes come from.
pub trait Source {
    /// Fills `buf` entirely, or fails with [`Error::Truncated`].
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<()>;
    /// An upper bound on the bytes left: no allocation is ever larger.
    fn remaining(&self) -> u64;
}

impl Source for &[u8] {
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<()> {
        if buf.len() > self.len() {
            *self = &self[self.len()..];
            return Err(Error::Truncated);
        }
        let (head, rest) = self.split_at(buf.len());
        buf.copy_from_slice(head);
        *self = rest;
        Ok(())
    }

    fn remaining(&self) -> u64 {
        self.len() as u64
    }
}

/// A [`Source`] over any `std::io::Read` of known length (a file).
pub struct IoSource<R> {
    inner: R,
    left: u64,
}

impl<R: std::io::Read> IoSource<R> {
    pub fn new(inner: R, len: u64) -> IoSource<R> {
        IoSource { inner, left: len }
    }

    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: std::io::Read> Source for IoSource<R> {
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<()> {
        if buf.len() as u64 > self.left {
            return Err(Error::Truncated);
        }
        self.inner.read_exact(buf).map_err(|_| Error::Truncated)?;
        self.left -= buf.len() as u64;
        Ok(())
    }

    fn remaining(&self) -> u64 {
        self.left
    }
}

/// A length, or the special string encoding that stands in its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Len {
    Len(u64),
    /// 0: int8, 1: int16, 2: int32, 3: LZF.
    Encoded(u8),
}

/// Reads RDB primitives, optionally keeping a CRC64 of every byte read.
pub struct Reader<S> {
    src: S,
    crc: Option<Crc64>,
    /// Bytes read so far.
    pub pos: u64,
}

/// Most bytes an LZF stream can expand to per compressed byte (a 3-byte back reference
/// copies up to 264 bytes), with margin.
const LZF_MAX_RATIO: u64 = 96;

impl<S: Source> Reader<S> {
    pub fn new(src: S) -> Reader<S> {
        Reader {
            src,
            crc: None,
            pos: 0,
        }
    }

    /// A reader that keeps a CRC64 of what it reads (a whole file).
    pub fn with_crc(src: S) -> Reader<S> {
        Reader {
            src,
            crc: Some(Crc64::default()),
            pos: 0,
        }
    }

    pub fn into_source(self) -> S {
        self.src
    }

    /// The CRC64 of everything read so far (0 without one).
    pub fn crc(&self) -> u64 {
        self.crc.as_ref().map_or(0, Crc64::value)
    }

    pub fn remaining(&self) -> u64 {
        self.src.remaining()
    }

    pub fn fill(&mut self, buf: &mut [u8]) -> Result<()> {
        self.src.read_exact(buf)?;
        if let Some(c) = &mut self.crc {
            c.update(buf);
        }
        self.pos += buf.len() as u64;
        Ok(())
    }

    pub fn u8(&mut self) -> Result<u8> {
        let mut b = [0u8; 1];
        self.fill(&mut b)?;
        Ok(b[0])
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut b = [0u8; N];
        self.fill(&mut b)?;
        Ok(b)
    }

    /// `n` bytes, refused before allocating when fewer remain.
    pub fn bytes(&mut self, n: u64) -> Result<Vec<u8>> {
        if n > self.remaining() {
            return Err(Error::Truncated);
        }
        let n = usize::try_from(n).map_err(|_| Error::Truncated)?;
        let mut v = vec![0u8; n];
        self.fill(&mut v)?;
        Ok(v)
    }

    /// A length or a string encoding marker.
    pub fn len_or_encoding(&mut self) -> Result<Len> {
        let b = self.u8()?;
        Ok(match b >> 6 {
            0 => Len::Len(u64::from(b & 0x3f)),
            1 => Len::Len((u64::from(b & 0x3f) << 8) | u64::from(self.u8()?)),
            2 => match b {
                0x80 => Len::Len(u64::from(u32::from_be_bytes(self.array()?))),
                0x81 => Len::Len(u64::from_be_bytes(self.array()?)),
                _ => return Err(Error::corrupt("unknown length encoding")),
            },
            _ => Len::Encoded(b & 0x3f),
        })
    }

    /// A plain length.
    pub fn length(&mut self) -> Result<u64> {
        match self.len_or_encoding()? {
            Len::Len(n) => Ok(n),
            Len::Encoded(_) => Err(Error::corrupt("encoded string where a length belongs")),
        }
    }

    /// A count of items each taking at least `min_item_bytes`: refused when the bytes left
    /// cannot hold that many (so it can size an allocation).
    pub fn count(&mut self, min_item_bytes: u64) -> Result<usize> {
        let n = self.length()?;
        if n.saturating_mul(min_item_bytes.max(1)) > self.remaining() {
            return Err(Error::Truncated);
        }
        usize::try_from(n).map_err(|_| Error::Truncated)
    }

    /// A string in any encoding.
    pub fn string(&mut self) -> Result<Vec<u8>> {
        match self.len_or_encoding()? {
            Len::Len(n) => self.bytes(n),
            Len::Encoded(0) => Ok((self.u8()? as i8).to_string().into_bytes()),
            Len::Encoded(1) => Ok(i16::from_le_bytes(self.array()?).to_string().into_bytes()),
            Len::Encoded(2) => Ok(i32::from_le_bytes(self.array()?).to_string().into_bytes()),
            Len::Encoded(3) => {
                let clen = self.length()?;
                let len = self.length()?;
                if clen == 0 || len > clen.saturating_mul(LZF_MAX_RATIO) {
                    return Err(Error::corrupt("LZF lengths"));
                }
                let compressed = self.bytes(clen)?;
                let len = usize::try_from(len).map_err(|_| Error::corrupt("LZF length"))?;
                let out =
                    lzf::decompress(&compressed, len).map_err(|_| Error::corrupt("LZF data"))?;
                if out.len() != len {
                    return Err(Error::corrupt("LZF length mismatch"));
                }
                Ok(out)
            }
            Len::Encoded(_) => Err(Error::corrupt("unknown string encoding")),
        }
    }

    /// A string as `Bytes`.
    pub fn bytes_string(&mut self) -> Result<Bytes> {
        self.string().map(Bytes::from)
    }

    /// A double written as text (old ZSET scores): a length byte, 253 NaN, 254 +inf,
    /// 255 -inf.
    pub fn text_double(&mut self) -> Result<f64> {
        match self.u8()? {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            n => {
                let b = self.bytes(u64::from(n))?;
                std::str::from_utf8(&b)
                    .ok()
                    .and_then(|s| s.trim().parse::<f64>().ok())
                    .ok_or(Error::corrupt("double"))
            }
        }
    }

    pub fn binary_double(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    pub fn ms_time(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rdb::Writer;

    #[test]
    fn strings_and_lengths_round_trip() {
        let long = vec![b'q'; 5000];
        let values: Vec<&[u8]> = vec![b"", b"0", b"-128", b"32767", b"-2147483648", b"012", &long];
        let mut out = Vec::new();
        {
            let mut w = Writer::new(&mut out, true);
            for v in &values {
                w.string(v);
            }
            w.length(1 << 50);
        }
        let mut r = Reader::new(&out[..]);
        for v in &values {
            assert_eq!(&r.string().expect("string")[..], *v);
        }
        assert_eq!(r.length().expect("len"), 1 << 50);
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn lengths_beyond_the_input_allocate_nothing() {
        // A 2^60-byte string in a 9-byte payload.
        let mut bad = vec![0x81];
        bad.extend_from_slice(&(1u64 << 60).to_be_bytes());
        assert_eq!(Reader::new(&bad[..]).string(), Err(Error::Truncated));
        // An LZF blob claiming to expand 1000 times.
        let mut lzf = Vec::new();
        {
            let mut w = Writer::new(&mut lzf, false);
            w.byte(0xC3);
            w.length(2);
            w.length(2000);
            w.raw(&[0, b'a']);
        }
        assert!(Reader::new(&lzf[..]).string().is_err());
    }
}
