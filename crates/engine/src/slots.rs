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

use crc::{Crc, CRC_16_XMODEM};

pub const SLOTS: u16 = 16384;

const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_XMODEM);

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
    CRC16.checksum(hashed) % SLOTS
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
        assert_eq!(
            key_slot(b"foo{}{bar}"),
            CRC16.checksum(b"foo{}{bar}") % SLOTS
        );
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
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
