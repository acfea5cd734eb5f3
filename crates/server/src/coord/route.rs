//! Where a key lives: its Redis Cluster hash slot and the shard that owns the slot.
//!
//! slot = CRC16-XMODEM(key, or the `{tag}` inside it) mod 16384, exactly as Redis Cluster, so
//! hash tags co-locate keys on one shard. A shard owns the slots `slot mod N == shard`; in
//! cluster mode it owns one contiguous range instead (`slot * N / 16384 == shard`), as the
//! nodes of a Redis Cluster do, so that it can be announced as a node with one range.

use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use shardis_engine::{Command, Exec, Fanout};

pub use shardis_engine::slots::{key_slot, SLOTS};

/// Set once at start-up, before any core runs, in cluster mode: slots map to shards by range.
static SLOT_RANGES: AtomicBool = AtomicBool::new(false);

/// Cluster mode: from now on every shard owns a contiguous range of slots.
pub fn use_slot_ranges() {
    SLOT_RANGES.store(true, Ordering::Relaxed);
}

/// The shard owning `slot` among `shards` shards.
pub fn shard_of_slot(slot: u16, shards: usize) -> usize {
    if SLOT_RANGES.load(Ordering::Relaxed) {
        shard_of_slot_in_ranges(slot, shards)
    } else {
        let shards = shards.max(1);
        // A division costs tens of cycles on every routed request; shard counts are mostly
        // powers of two, where a mask gives the same remainder.
        if shards.is_power_of_two() {
            slot as usize & (shards - 1)
        } else {
            slot as usize % shards
        }
    }
}

/// The shard owning `slot` when shards own contiguous ranges (cluster mode).
pub fn shard_of_slot_in_ranges(slot: u16, shards: usize) -> usize {
    slot as usize * shards / SLOTS as usize
}

/// The shard owning `key` among `shards` shards.
pub fn shard_of(key: &[u8], shards: usize) -> usize {
    if shards <= 1 {
        0
    } else {
        shard_of_slot(key_slot(key), shards)
    }
}

/// Where a command's keys live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// On this shard (also: no keys, or arguments the command itself rejects).
    Shard(usize),
    /// On several shards.
    Several,
}

/// Where `cmd` runs: the shard of its keys, `here` when it has none. `idx` is scratch space
/// for the key indexes (left holding them).
pub fn target(
    cmd: &Command,
    args: &[Bytes],
    shards: usize,
    here: usize,
    idx: &mut Vec<usize>,
) -> Target {
    idx.clear();
    // With one shard every key is local: no need to find them.
    if shards <= 1 || cmd.fanout == Fanout::Local {
        return Target::Shard(here);
    }
    if !cmd.key_indexes(args, idx) {
        return Target::Shard(here);
    }
    let mut keys = idx.iter().filter_map(|&i| args.get(i));
    let Some(first) = keys.next() else {
        return Target::Shard(here);
    };
    let shard = shard_of(first, shards);
    if keys.all(|k| shard_of(k, shards) == shard) {
        Target::Shard(shard)
    } else {
        Target::Several
    }
}

/// The one shard `cmd`'s keys live on (`here` when it has none); None if they span shards.
pub fn single_shard(cmd: &Command, args: &[Bytes], shards: usize, here: usize) -> Option<usize> {
    match target(cmd, args, shards, here, &mut Vec::new()) {
        Target::Shard(s) => Some(s),
        Target::Several => None,
    }
}

/// The one shard a shard command runs on as a plain request (sent with others in a batch):
/// its keys all on that shard, and nothing that needs every shard or keys only its data
/// names (SORT BY). None for anything else.
pub fn lone_shard(cmd: &Command, args: &[Bytes], shards: usize, here: usize) -> Option<usize> {
    let plain = matches!(cmd.exec, Exec::Shard(_))
        && !matches!(cmd.fanout, Fanout::AllShards(_))
        && cmd.key_finder.is_none();
    plain
        .then(|| single_shard(cmd, args, shards, here))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_spread_by_remainder() {
        for shards in 1..=9 {
            for slot in [0, 1, 2, 3, 7, 100, 8191, 16383] {
                assert_eq!(shard_of_slot(slot, shards), slot as usize % shards);
            }
        }
    }

    #[test]
    fn one_shard_owns_everything() {
        assert_eq!(shard_of(b"anything", 1), 0);
        assert!(shard_of(b"foo", 2) < 2);
    }
}
