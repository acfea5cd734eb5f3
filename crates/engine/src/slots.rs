//! Redis Cluster's hash slots: the slot of a key, and the per-slot index of a database's
//! keys that cluster mode keeps (CLUSTER COUNTKEYSINSLOT, GETKEYSINSLOT).
//!
//! slot = CRC16-XMODEM(key, or the `{tag}` inside it) mod 16384, exactly as Redis Cluster.
//!
//! The index costs no byte in the key's own node (which stays 64 bytes): it is an ordered set
//! of one `u64` per key, the slot in the top 16 bits and the low 48 bits of the key's hash
//! in the keyspace's table below, plus a count per slot. The hash is enough to find the key
//! again in its table chain (`Dict::find_by_hash`); two keys of one slot whose hashes agree
//! on 48 bits share an entry, which stays while either exists.

use std::collections::BTreeSet;

pub const SLOTS: u16 = 16384;

/// CRC16-XMODEM (polynomial 0x1021, initial value 0, no reflection) eight bytes per step:
/// `CRC16_TABLES[k][b]` is the CRC of byte `b` followed by `k` zero bytes. Every request of
/// a sharded server computes its key's slot (routing, the pipeline's prefetch) and keys are
/// short, so the byte-at-a-time table's chain of dependent loads was a visible share of a
/// forwarded request's CPU; eight independent lookups per step cut it by half.
static CRC16_TABLES: [[u16; 256]; 8] = crc16_tables();

const fn crc16_tables() -> [[u16; 256]; 8] {
    let mut tables = [[0u16; 256]; 8];
    let mut byte = 0;
    while byte < 256 {
        let mut crc = (byte as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        tables[0][byte] = crc;
        byte += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut byte = 0;
        while byte < 256 {
            let prev = tables[k - 1][byte];
            tables[k][byte] = (prev << 8) ^ tables[0][(prev >> 8) as usize];
            byte += 1;
        }
        k += 1;
    }
    tables
}

/// CRC16-XMODEM of `bytes`.
fn crc16(bytes: &[u8]) -> u16 {
    let t = &CRC16_TABLES;
    let mut crc: u16 = 0;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let [hi, lo] = crc.to_be_bytes();
        crc = t[7][usize::from(hi ^ c[0])]
            ^ t[6][usize::from(lo ^ c[1])]
            ^ t[5][usize::from(c[2])]
            ^ t[4][usize::from(c[3])]
            ^ t[3][usize::from(c[4])]
            ^ t[2][usize::from(c[5])]
            ^ t[1][usize::from(c[6])]
            ^ t[0][usize::from(c[7])];
    }
    for &b in chunks.remainder() {
        crc = (crc << 8) ^ t[0][usize::from((crc >> 8) as u8 ^ b)];
    }
    crc
}

/// The bits of a key's hash kept in its index entry.
const HASH_BITS: u32 = 48;
const HASH_MASK: u64 = (1 << HASH_BITS) - 1;

/// The hash slot of `key`. Only a non-empty `{...}` section (the first `{` and the first `}`
/// after it) is hashed when present.
pub fn key_slot(key: &[u8]) -> u16 {
    let hashed = match key.iter().position(|&c| c == b'{') {
        Some(open) => match key[open + 1..].iter().position(|&c| c == b'}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        },
        None => key,
    };
    crc16(hashed) % SLOTS
}

/// The keys of one database by slot.
pub struct SlotIndex {
    entries: BTreeSet<u64>,
    /// Keys per slot.
    counts: Box<[u32]>,
}

impl Default for SlotIndex {
    fn default() -> Self {
        SlotIndex {
            entries: BTreeSet::new(),
            counts: vec![0; SLOTS as usize].into_boxed_slice(),
        }
    }
}

fn entry(slot: u16, hash: u64) -> u64 {
    (u64::from(slot) << HASH_BITS) | (hash & HASH_MASK)
}

impl SlotIndex {
    /// A key was created (`hash`: its hash in the keyspace's table).
    pub fn added(&mut self, key: &[u8], hash: u64) {
        let slot = key_slot(key);
        self.entries.insert(entry(slot, hash));
        if let Some(c) = self.counts.get_mut(slot as usize) {
            *c += 1;
        }
    }

    /// A key was removed; `twin` says whether another key shares its entry (same slot,
    /// same 48 low bits of hash), which then stays.
    pub fn removed(&mut self, key: &[u8], hash: u64, twin: impl FnOnce(u16) -> bool) {
        let slot = key_slot(key);
        if let Some(c) = self.counts.get_mut(slot as usize) {
            *c = c.saturating_sub(1);
        }
        if !twin(slot) {
            self.entries.remove(&entry(slot, hash));
        }
    }

    /// Keys in `slot`.
    pub fn count(&self, slot: u16) -> usize {
        self.counts.get(slot as usize).map_or(0, |&c| c as usize)
    }

    /// The hashes (48 low bits) of the keys of `slot`, in order.
    pub fn hashes(&self, slot: u16) -> impl Iterator<Item = u64> + '_ {
        self.entries
            .range(entry(slot, 0)..=entry(slot, HASH_MASK))
            .map(|e| e & HASH_MASK)
    }

    /// Whether `hash` (any width) and `other` agree on the bits an entry keeps.
    pub fn same_entry(hash: u64, other: u64) -> bool {
        hash & HASH_MASK == other & HASH_MASK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis_cluster() {
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        // An empty tag hashes the whole key; only the first tag counts.
        assert_eq!(key_slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") % SLOTS);
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
    }

    const REFERENCE: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_XMODEM);

    proptest::proptest! {
        #[test]
        fn crc16_agrees_with_the_reference(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            proptest::prop_assert_eq!(crc16(&bytes), REFERENCE.checksum(&bytes));
        }
    }

    #[test]
    fn crc16_check_value() {
        // The catalogue's check value: CRC16-XMODEM of "123456789".
        assert_eq!(crc16(b"123456789"), 0x31c3);
        assert_eq!(crc16(b""), 0);
    }

    #[test]
    fn index_counts_and_lists_by_slot() {
        let mut ix = SlotIndex::default();
        ix.added(b"{a}1", 7);
        ix.added(b"{a}2", 9);
        ix.added(b"b", 7);
        let a = key_slot(b"a");
        assert_eq!(ix.count(a), 2);
        assert_eq!(ix.hashes(a).collect::<Vec<_>>(), vec![7, 9]);
        // Two keys sharing an entry: it stays until the last one goes.
        ix.added(b"{a}3", 7 | (1 << 60));
        ix.removed(b"{a}1", 7, |_| true);
        assert_eq!(ix.hashes(a).collect::<Vec<_>>(), vec![7, 9]);
        ix.removed(b"{a}3", 7, |_| false);
        assert_eq!(ix.hashes(a).collect::<Vec<_>>(), vec![9]);
        assert_eq!(ix.count(a), 1);
        assert_eq!(ix.count(key_slot(b"b")), 1);
    }
}
