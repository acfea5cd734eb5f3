//! Point-in-time snapshots of a shard taken while it serves, without fork and without a copy
//! of the data: the shard serialises its tables in chunks ([`Shard::snapshot_step`]) from its
//! own tasks, and an entry about to change before the traversal reached it is serialised
//! first, as it was (copy on write, entry by entry).
//!
//! Versioned entries make this exact: each database counts snapshot epochs, each entry
//! remembers the epoch that saved it or in which it was created ([`crate::db::Entry::saved`]).
//! A snapshot of epoch E saves every entry below E exactly once, whichever comes first: the
//! traversal (a SCAN over the table, which sees every entry present for its whole run and
//! may meet one twice, hence the marks) or the change hook (`Db::before_change`, called by
//! every method of `Db` that changes or removes an entry). Entries created during the
//! snapshot belong to E and are not saved. A flushed table is handed to the snapshot whole
//! and saved from there; a swapped database carries its snapshot along (each knows the
//! number it had when the snapshot began).
//!
//! The output is the body of an RDB file: for each database, SELECTDB then its keys (with
//! their expiry), in Redis's format; the runtime adds the header, aux fields, EOF and CRC.

use shardis_persist::rdb::Writer;

use crate::db::{expiry_in, Entry, ExpirySlots};
use crate::dict::Dict;
use crate::key::Key;
use crate::shard::Shard;

/// One database's part of a running snapshot.
pub struct DbSnapshot {
    epoch: u8,
    /// The database's number when the snapshot began.
    index: usize,
    cursor: u64,
    /// The traversal has gone all the way round.
    traversed: bool,
    /// Entries saved ahead of the traversal, as RDB key records.
    early: Vec<u8>,
    /// A table flushed while the snapshot ran, with its expiry slots, still being saved from.
    detached: Option<(Dict<Key, Entry>, ExpirySlots)>,
    compress: bool,
}

impl DbSnapshot {
    pub(crate) fn new(epoch: u8, index: usize, compress: bool) -> DbSnapshot {
        DbSnapshot {
            epoch,
            index,
            cursor: 0,
            traversed: false,
            early: Vec::new(),
            detached: None,
            compress,
        }
    }

    /// Saves `e` now if this snapshot still has to (the entry is about to change).
    #[inline]
    pub(crate) fn save_early(&mut self, key: &[u8], e: &mut Entry, expire: Option<u64>) {
        if e.saved() != self.epoch {
            e.set_saved(self.epoch);
            write_key(&mut self.early, key, e, expire, self.compress);
        }
    }

    /// Takes over a flushed table: its unsaved entries are saved from it.
    pub(crate) fn detach(&mut self, table: Dict<Key, Entry>, expires: ExpirySlots) {
        if self.detached.is_none() && !self.traversed {
            self.detached = Some((table, expires));
        }
    }
}

/// Appends one key's record: its expiry (absolute, in Unix ms), type, name and value.
pub fn write_key(out: &mut Vec<u8>, key: &[u8], e: &Entry, expire: Option<u64>, compress: bool) {
    let mut w = Writer::new(out, compress);
    let expire = expire.map(|at| i64::try_from(at).unwrap_or(i64::MAX));
    w.key_prefix(expire, None, None);
    let at = w.out.len();
    w.byte(0);
    w.string(key);
    let t = crate::rdb::write_value(&mut w, &e.value);
    out[at] = t;
}

/// A running snapshot of a shard, as the runtime drives it.
pub struct ShardSnapshot {
    /// The database whose records were written last (a SELECTDB precedes a change).
    last_db: Option<usize>,
}

impl Shard {
    /// Starts a snapshot: from now on the data as it is is what the snapshot saves.
    pub fn snapshot_begin(&mut self, compress: bool) -> ShardSnapshot {
        self.snapshot_epoch = (self.snapshot_epoch + 1) % crate::db::EPOCHS;
        let epoch = self.snapshot_epoch;
        for (i, d) in self.dbs.iter_mut().enumerate() {
            d.snapshot_begin(epoch, i, compress);
        }
        ShardSnapshot { last_db: None }
    }

    /// Whether a snapshot is running.
    pub fn snapshot_running(&self) -> bool {
        self.dbs.iter().any(|d| d.snap.is_some())
    }

    /// Stops a running snapshot (it failed or was cancelled).
    pub fn snapshot_abort(&mut self) {
        for d in &mut self.dbs {
            d.snap = None;
        }
    }

    /// Serialises about `budget` more bytes of the snapshot into `out`; true once it is
    /// complete (everything it had to save is in `out`).
    pub fn snapshot_step(
        &mut self,
        s: &mut ShardSnapshot,
        out: &mut Vec<u8>,
        budget: usize,
    ) -> bool {
        let target = out.len().saturating_add(budget.max(1));
        for d in &mut self.dbs {
            let Some(snap) = d.snap.as_deref_mut() else {
                continue;
            };
            let (index, epoch, compress) = (snap.index, snap.epoch, snap.compress);
            let select = |out: &mut Vec<u8>, last: &mut Option<usize>| {
                if *last != Some(index) {
                    Writer::new(out, false).select_db(index as u64);
                    *last = Some(index);
                }
            };
            while out.len() < target {
                if let Some(snap) = d.snap.as_deref_mut() {
                    if !snap.early.is_empty() {
                        select(out, &mut s.last_db);
                        out.append(&mut snap.early);
                    }
                    if snap.traversed {
                        d.snapshot_done();
                        break;
                    }
                }
                let mut records = Vec::new();
                let cursor = d.snap.as_deref().map_or(0, |s| s.cursor);
                let mut visit = |expires: &[(u64, u64)], k: &Key, e: &mut Entry| {
                    if e.saved() != epoch {
                        e.set_saved(epoch);
                        write_key(&mut records, k, e, expiry_in(expires, e), compress);
                    }
                };
                let detached = d.snap.as_deref_mut().and_then(|s| s.detached.as_mut());
                let next = match detached {
                    Some((table, expires)) => {
                        table.scan_mut(cursor, &mut |k: &Key, e: &mut Entry| visit(expires, k, e))
                    }
                    None => {
                        let (table, expires) = d.entries_mut();
                        table.scan_mut(cursor, &mut |k: &Key, e: &mut Entry| visit(expires, k, e))
                    }
                };
                if !records.is_empty() {
                    select(out, &mut s.last_db);
                    out.extend_from_slice(&records);
                }
                if let Some(snap) = d.snap.as_deref_mut() {
                    snap.cursor = next;
                    if next == 0 {
                        snap.traversed = true;
                        snap.detached = None;
                    }
                }
            }
            if out.len() >= target {
                return false;
            }
        }
        !self.snapshot_running()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestShard;
    use bytes::Bytes;
    use shardis_persist::rdb::{Decoded, FileReader, Item};

    /// Runs a snapshot to the end in small steps, calling `between` after each, and returns
    /// the keys saved per database with their values serialised.
    fn run(
        t: &mut TestShard,
        mut between: impl FnMut(&mut TestShard, usize),
    ) -> Vec<(u64, Bytes, Vec<u8>)> {
        let mut s = t.shard.snapshot_begin(false);
        let mut body = Vec::new();
        let mut step = 0;
        while !t.shard.snapshot_step(&mut s, &mut body, 64) {
            between(t, step);
            step += 1;
        }
        let mut file = Vec::new();
        Writer::new(&mut file, false).header();
        file.extend_from_slice(&body);
        file.push(255);
        let crc = shardis_persist::crc::crc64(&file);
        file.extend_from_slice(&crc.to_le_bytes());
        let mut r = FileReader::new(&file[..]).expect("header");
        let mut keys = Vec::new();
        loop {
            match r.next_item().expect("valid") {
                Item::Key(k) => {
                    let Decoded::Value(v) = k.value else {
                        panic!("empty")
                    };
                    let mut w = Vec::new();
                    shardis_persist::rdb::value::write_value(&mut Writer::new(&mut w, false), &v);
                    keys.push((k.db, k.key, w));
                }
                Item::Eof { checksum_ok } => {
                    assert!(checksum_ok);
                    break;
                }
                _ => {}
            }
        }
        keys.sort();
        keys
    }

    fn fill(t: &mut TestShard, n: usize) {
        for i in 0..n {
            t.run(&["SET", &format!("k{i}"), &format!("v{i}")]);
            t.run(&["RPUSH", &format!("l{i}"), "a", "b"]);
        }
        t.db = 1;
        for i in 0..n / 2 {
            t.run(&["SET", &format!("other{i}"), "x"]);
        }
        t.db = 0;
    }

    #[test]
    fn a_snapshot_is_the_data_when_it_began_whatever_changes_meanwhile() {
        let mut reference = TestShard::new();
        fill(&mut reference, 200);
        let want = run(&mut reference, |_, _| {});
        assert_eq!(want.len(), 500);

        let mut t = TestShard::new();
        fill(&mut t, 200);
        let got = run(&mut t, |t, step| {
            // Overwrite, delete, append to, create and expire keys all along.
            let i = step * 7 % 200;
            t.run(&["SET", &format!("k{i}"), "changed"]);
            t.run(&["DEL", &format!("k{}", (i + 1) % 200)]);
            t.run(&["RPUSH", &format!("l{i}"), "more"]);
            t.run(&["SET", &format!("new{step}"), "x"]);
            t.run(&["PEXPIRE", &format!("l{}", (i + 3) % 200), "1"]);
            t.advance(2);
            if step == 20 {
                t.db = 1;
                t.run(&["FLUSHDB"]);
                t.run(&["SET", "after-flush", "x"]);
                t.db = 0;
            }
            if step == 30 {
                t.run(&["SWAPDB", "0", "2"]);
            }
        });
        assert!(got == want, "snapshot differs from the data at its start");
    }

    #[test]
    fn entries_are_saved_once_and_new_ones_not_at_all() {
        let mut t = TestShard::new();
        fill(&mut t, 50);
        let first = run(&mut t, |t, step| {
            t.run(&["SET", &format!("fresh{step}"), "x"]);
        });
        assert_eq!(first.len(), 125);
        // The next snapshot sees everything, the keys created during the last one included.
        let second = run(&mut t, |_, _| {});
        assert!(second.len() > 125);
        assert!(!t.shard.snapshot_running());
    }

    #[test]
    fn epochs_wrap_safely_however_many_snapshots_are_aborted() {
        let mut t = TestShard::new();
        fill(&mut t, 40);
        let want = run(&mut t, |_, _| {});
        assert_eq!(want.len(), 100);
        let epochs = usize::from(crate::db::EPOCHS);
        // Runs of failed saves, each after traversing a little and changing and creating a
        // key: up to more than the epochs there are, so the epoch comes round to the one the
        // untouched entries still carry. The save after each run has every key.
        for aborts in [1, epochs - 1, epochs, epochs + 1, 3 * epochs + 2] {
            for round in 0..aborts {
                let mut s = t.shard.snapshot_begin(false);
                if round % 2 == 0 {
                    t.shard.snapshot_step(&mut s, &mut Vec::new(), 64);
                }
                t.run(&[
                    "SET",
                    &format!("k{}", round % 40),
                    &format!("v{}", round % 40),
                ]);
                t.run(&["SET", &format!("made{round}"), "x"]);
                t.shard.snapshot_abort();
                t.run(&["DEL", &format!("made{round}")]);
            }
            let got = run(&mut t, |_, _| {});
            assert!(
                got == want,
                "after {aborts} aborts: {} keys saved",
                got.len()
            );
        }
    }
}
