//! DUMP/RESTORE payloads, as Redis 7.0 makes them: a value's type byte and serialisation,
//! then the RDB version (2 bytes LE), then the CRC64 of all that (8 bytes LE).

use crate::crc::crc64;
use crate::rdb::RDB_VERSION;

/// Seals a serialised value (type byte and body) into a DUMP payload.
pub fn seal(mut value: Vec<u8>) -> Vec<u8> {
    value.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(&value);
    value.extend_from_slice(&crc.to_le_bytes());
    value
}

/// The serialised value inside a payload whose version Shardis reads and whose checksum
/// matches; None otherwise (Redis's "DUMP payload version or checksum are wrong").
pub fn open(payload: &[u8]) -> Option<&[u8]> {
    let body_len = payload.len().checked_sub(10)?;
    let version = u16::from_le_bytes([payload[body_len], payload[body_len + 1]]);
    if version > RDB_VERSION {
        return None;
    }
    let (signed, crc) = payload.split_at(body_len + 2);
    let mut stored = [0u8; 8];
    stored.copy_from_slice(crc);
    (crc64(signed) == u64::from_le_bytes(stored)).then_some(&payload[..body_len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_redis_payload() {
        // `redis-cli DUMP` of SET foo bar on Redis 7.0: "\x00\x03bar\n\x00" + CRC64.
        let payload = seal(vec![0, 3, b'b', b'a', b'r']);
        assert_eq!(&payload[..7], b"\x00\x03bar\n\x00");
        assert_eq!(open(&payload), Some(&[0, 3, b'b', b'a', b'r'][..]));
    }

    #[test]
    fn wrong_version_or_checksum_is_refused() {
        let good = seal(vec![0, 1, b'x']);
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x20;
            assert_eq!(open(&bad), None, "flip at {i}");
        }
        assert_eq!(open(&good[..9]), None);
        let mut newer = vec![0, 1, b'x'];
        newer.extend_from_slice(&11u16.to_le_bytes());
        let crc = crc64(&newer);
        newer.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(open(&newer), None);
    }
}
