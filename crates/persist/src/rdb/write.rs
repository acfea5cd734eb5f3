//! Writing RDB primitives into a byte buffer, as Redis 7.0 writes them.

use super::opcodes;

/// Appends RDB primitives to a buffer.
pub struct Writer<'a> {
    pub out: &'a mut Vec<u8>,
    /// Try LZF on strings longer than 20 bytes (`rdbcompression`).
    pub compress: bool,
}

impl<'a> Writer<'a> {
    pub fn new(out: &'a mut Vec<u8>, compress: bool) -> Writer<'a> {
        Writer { out, compress }
    }

    pub fn byte(&mut self, b: u8) {
        self.out.push(b);
    }

    pub fn raw(&mut self, b: &[u8]) {
        self.out.extend_from_slice(b);
    }

    /// A length: 6, 14, 32 or 64 bits.
    pub fn length(&mut self, n: u64) {
        if n < 1 << 6 {
            self.out.push(n as u8);
        } else if n < 1 << 14 {
            self.out.push(0x40 | (n >> 8) as u8);
            self.out.push(n as u8);
        } else if n <= u64::from(u32::MAX) {
            self.out.push(0x80);
            self.out.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            self.out.push(0x81);
            self.out.extend_from_slice(&n.to_be_bytes());
        }
    }

    /// A string: as an 8, 16 or 32-bit integer when it is the canonical form of one, else
    /// LZF-compressed when that saves at least four bytes, else raw.
    pub fn string(&mut self, s: &[u8]) {
        if s.len() <= 11 {
            if let Some(n) = crate::listpack::string_to_int(s) {
                if self.int_string(n) {
                    return;
                }
            }
        }
        if self.compress && s.len() > 20 && self.lzf_string(s) {
            return;
        }
        self.length(s.len() as u64);
        self.out.extend_from_slice(s);
    }

    /// A string that is an integer, in its integer encoding when one holds it.
    fn int_string(&mut self, n: i64) -> bool {
        if let Ok(v) = i8::try_from(n) {
            self.out.push(0xC0);
            self.out.push(v as u8);
        } else if let Ok(v) = i16::try_from(n) {
            self.out.push(0xC1);
            self.out.extend_from_slice(&v.to_le_bytes());
        } else if let Ok(v) = i32::try_from(n) {
            self.out.push(0xC2);
            self.out.extend_from_slice(&v.to_le_bytes());
        } else {
            return false;
        }
        true
    }

    fn lzf_string(&mut self, s: &[u8]) -> bool {
        let Some(c) = crate::lzf::compress(s) else {
            return false;
        };
        // Redis requires at least four bytes saved.
        if c.len() + 4 > s.len() {
            return false;
        }
        self.out.push(0xC3);
        self.length(c.len() as u64);
        self.length(s.len() as u64);
        self.out.extend_from_slice(&c);
        true
    }

    /// A double in binary (ZSET_2 scores).
    pub fn binary_double(&mut self, v: f64) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }

    /// A millisecond time (expiry, stream delivery and seen times).
    pub fn ms_time(&mut self, ms: i64) {
        self.out.extend_from_slice(&ms.to_le_bytes());
    }

    pub fn header(&mut self) {
        self.out.extend_from_slice(b"REDIS");
        self.out
            .extend_from_slice(format!("{:04}", super::RDB_VERSION).as_bytes());
    }

    pub fn aux(&mut self, key: &[u8], value: &[u8]) {
        self.out.push(opcodes::AUX);
        self.string(key);
        self.string(value);
    }

    pub fn select_db(&mut self, db: u64) {
        self.out.push(opcodes::SELECTDB);
        self.length(db);
    }

    pub fn resize_db(&mut self, keys: u64, expires: u64) {
        self.out.push(opcodes::RESIZEDB);
        self.length(keys);
        self.length(expires);
    }

    /// What comes before a key: its expiry, and its LRU idle time or LFU counter.
    pub fn key_prefix(&mut self, expire_ms: Option<i64>, idle_secs: Option<u64>, freq: Option<u8>) {
        if let Some(at) = expire_ms {
            self.out.push(opcodes::EXPIRETIME_MS);
            self.ms_time(at);
        }
        if let Some(idle) = idle_secs {
            self.out.push(opcodes::IDLE);
            self.length(idle);
        }
        if let Some(f) = freq {
            self.out.push(opcodes::FREQ);
            self.out.push(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(f: impl FnOnce(&mut Writer<'_>)) -> Vec<u8> {
        let mut out = Vec::new();
        f(&mut Writer::new(&mut out, true));
        out
    }

    #[test]
    fn lengths() {
        assert_eq!(written(|w| w.length(10)), vec![10]);
        assert_eq!(written(|w| w.length(700)), vec![0x42, 0xbc]);
        assert_eq!(written(|w| w.length(70000)), vec![0x80, 0, 1, 0x11, 0x70]);
        assert_eq!(written(|w| w.length(1 << 40)).len(), 9);
    }

    #[test]
    fn strings_pick_redis_encodings() {
        assert_eq!(written(|w| w.string(b"12")), vec![0xC0, 12]);
        assert_eq!(written(|w| w.string(b"-300")), vec![0xC1, 0xd4, 0xfe]);
        assert_eq!(
            written(|w| w.string(b"100000")),
            vec![0xC2, 0xa0, 0x86, 1, 0]
        );
        assert_eq!(written(|w| w.string(b"012")), vec![3, b'0', b'1', b'2']);
        // Too long for an integer encoding.
        assert_eq!(written(|w| w.string(b"12345678901"))[0], 11);
        let long = vec![b'a'; 100];
        assert_eq!(written(|w| w.string(&long))[0], 0xC3);
    }
}
