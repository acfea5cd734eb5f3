//! Checksums: Redis's CRC64 (Jones polynomial, reflected; `crc`'s `CRC_64_REDIS`) for RDB
//! files and DUMP payloads, and CRC-32C for the append-only log's records.

use crc::{Crc, Digest, CRC_32_ISCSI, CRC_64_REDIS};

static CRC64: Crc<u64> = Crc::<u64>::new(&CRC_64_REDIS);
static CRC32C: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);

/// Redis's CRC64 of `data`.
pub fn crc64(data: &[u8]) -> u64 {
    CRC64.checksum(data)
}

/// A running CRC64, for data that arrives in pieces (a file being written or read).
pub struct Crc64(Digest<'static, u64>);

impl Default for Crc64 {
    fn default() -> Self {
        Crc64(CRC64.digest())
    }
}

impl Crc64 {
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The checksum of everything so far (the digest goes on).
    pub fn value(&self) -> u64 {
        self.0.clone().finalize()
    }
}

/// CRC-32C of `parts`, as if concatenated.
pub fn crc32c(parts: &[&[u8]]) -> u32 {
    let mut d = CRC32C.digest();
    for p in parts {
        d.update(p);
    }
    d.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_is_redis_crc64() {
        // The check value Redis's own crc64 test asserts.
        assert_eq!(crc64(b"123456789"), 0xe9c6d914c4b8d9ca);
        let mut running = Crc64::default();
        running.update(b"1234");
        running.update(b"56789");
        assert_eq!(running.value(), 0xe9c6d914c4b8d9ca);
    }

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c(&[b"123456789"]), 0xe3069283);
        assert_eq!(crc32c(&[b"1234", b"56789"]), 0xe3069283);
    }
}
