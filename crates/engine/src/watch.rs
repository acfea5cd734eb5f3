//! WATCH bookkeeping of one shard: a version per watched key, bumped whenever a command
//! modifies the key, so EXEC can tell whether a watched key changed since WATCH.
//!
//! Only watched keys are tracked: with no WATCH in progress the table is empty and touching a
//! key costs one emptiness check.

use ahash::HashMap;
use bytes::Bytes;

#[derive(Default)]
pub struct WatchTable {
    keys: HashMap<(usize, Bytes), Slot>,
}

struct Slot {
    version: u64,
    /// Clients watching the key.
    watchers: u32,
}

impl WatchTable {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Starts watching `key` in `db`; returns its current version.
    pub fn watch(&mut self, db: usize, key: &[u8]) -> u64 {
        let slot = self
            .keys
            .entry((db, Bytes::copy_from_slice(key)))
            .or_insert(Slot {
                version: 0,
                watchers: 0,
            });
        slot.watchers += 1;
        slot.version
    }

    /// Stops one client's watch of `key`.
    pub fn unwatch(&mut self, db: usize, key: &[u8]) {
        let probe = (db, Bytes::copy_from_slice(key));
        if let Some(slot) = self.keys.get_mut(&probe) {
            slot.watchers = slot.watchers.saturating_sub(1);
            if slot.watchers == 0 {
                self.keys.remove(&probe);
            }
        }
    }

    /// The current version of a watched key (None if nobody watches it).
    pub fn version(&self, db: usize, key: &[u8]) -> Option<u64> {
        self.keys
            .get(&(db, Bytes::copy_from_slice(key)))
            .map(|s| s.version)
    }

    /// Records a modification of `key`.
    pub fn touch(&mut self, db: usize, key: &[u8]) {
        if self.keys.is_empty() {
            return;
        }
        if let Some(slot) = self.keys.get_mut(&(db, Bytes::copy_from_slice(key))) {
            slot.version += 1;
        }
    }

    /// The watched keys of `db`, for FLUSHDB / SWAPDB, which touch those that exist.
    pub fn keys_in(&self, db: usize) -> Vec<Bytes> {
        self.keys
            .keys()
            .filter(|(d, _)| *d == db)
            .map(|(_, k)| k.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_move_only_for_watched_keys() {
        let mut t = WatchTable::default();
        t.touch(0, b"k");
        assert_eq!(t.version(0, b"k"), None);
        let v = t.watch(0, b"k");
        t.touch(1, b"k");
        assert_eq!(t.version(0, b"k"), Some(v));
        t.touch(0, b"k");
        assert_eq!(t.version(0, b"k"), Some(v + 1));
        t.watch(0, b"k");
        t.unwatch(0, b"k");
        assert!(t.version(0, b"k").is_some());
        t.unwatch(0, b"k");
        assert!(t.is_empty());
    }
}
