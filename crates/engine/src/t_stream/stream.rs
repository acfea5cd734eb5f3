//! The stream value: an ordered index of packed nodes ([`Node`]) keyed by their master IDs, the
//! stream's counters, and its consumer groups.
//!
//! The index is a B-tree (`BTreeMap`) where Redis uses a radix tree over the 128-bit big-endian
//! IDs; both keep nodes in ID order with O(log n) seeks. XINFO reports the radix tree's node
//! count, which [`StreamValue::rax_nodes`] derives from the node keys (a radix tree's shape
//! depends only on the set of its keys).

use std::collections::BTreeMap;

use bytes::Bytes;
use shardis_resp::Reply;

use super::cgroup::ConsumerGroup;
use super::id::{NewId, StreamId};
use super::node::{Node, RawEntry};

/// The largest listpack Redis builds, whatever `stream-node-max-bytes` says.
const LISTPACK_MAX_SIZE: usize = 1 << 30;

/// The node size limits (`stream-node-max-bytes`, `stream-node-max-entries`; 0 = unlimited).
#[derive(Debug, Clone, Copy)]
pub struct NodeLimits {
    pub max_bytes: usize,
    pub max_entries: i64,
}

/// Why an entry could not be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendError {
    /// The ID is not greater than the stream's last ID.
    IdTooSmall,
    /// The fields and values exceed what a node can hold; also what Redis reports when an
    /// `<ms>-*` ID would need a sequence past the largest.
    TooLarge,
}

/// A trimming strategy: keep at most this many entries, or none below this ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

/// A trim request: `approx` removes whole nodes only; `limit` caps the entries removed (0: no
/// cap).
#[derive(Debug, Clone, Copy)]
pub struct TrimSpec {
    pub trim: Trim,
    pub approx: bool,
    pub limit: u64,
}

/// A stream's counters, as a snapshot stores them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    pub length: u64,
    pub last_id: StreamId,
    pub first_id: StreamId,
    pub max_deleted_id: StreamId,
    pub entries_added: u64,
}

#[derive(Debug, Clone, Default)]
pub struct StreamValue {
    nodes: BTreeMap<StreamId, Node>,
    length: u64,
    last_id: StreamId,
    /// The first live entry's ID when the stream is not empty (0-0 otherwise), as Redis
    /// records it (it is not updated by every change, see XDEL and trimming).
    first_id: StreamId,
    /// The largest ID XDEL removed.
    max_deleted_id: StreamId,
    /// Entries ever added (or what XSETID set).
    entries_added: u64,
    /// Consumer groups by name.
    pub groups: BTreeMap<Bytes, ConsumerGroup>,
}

impl StreamValue {
    pub fn new() -> StreamValue {
        StreamValue::default()
    }

    /// Entries in the stream (tombstones not counted).
    pub fn len(&self) -> u64 {
        self.length
    }

    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    pub fn last_id(&self) -> StreamId {
        self.last_id
    }

    pub fn first_id(&self) -> StreamId {
        self.first_id
    }

    pub fn max_deleted_id(&self) -> StreamId {
        self.max_deleted_id
    }

    pub fn entries_added(&self) -> u64 {
        self.entries_added
    }

    /// XSETID: sets the last ID, and optionally the added-entries counter and the largest
    /// deleted ID (a zero ID leaves it as it is). The caller checked the values.
    pub fn set_counters(
        &mut self,
        last: StreamId,
        entries_added: Option<u64>,
        max_deleted: StreamId,
    ) {
        self.last_id = last;
        if let Some(n) = entries_added {
            self.entries_added = n;
        }
        if !max_deleted.is_zero() {
            self.max_deleted_id = max_deleted;
        }
    }

    /// The nodes with their master IDs, in ID order (serialisation).
    pub fn nodes(&self) -> impl Iterator<Item = (StreamId, &Node)> + '_ {
        self.nodes.iter().map(|(id, node)| (*id, node))
    }

    /// A stream read back from a snapshot: its nodes as saved, counters and groups.
    pub fn from_parts(nodes: Vec<(StreamId, Node)>, counters: Counters) -> StreamValue {
        StreamValue {
            nodes: nodes.into_iter().collect(),
            length: counters.length,
            last_id: counters.last_id,
            first_id: counters.first_id,
            max_deleted_id: counters.max_deleted_id,
            entries_added: counters.entries_added,
            groups: BTreeMap::new(),
        }
    }

    /// Nodes in the index (XINFO's `radix-tree-keys`).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Adds an entry (`pairs` is field, value, field, value…) and returns its ID.
    pub fn append(
        &mut self,
        new_id: NewId,
        pairs: &[Bytes],
        now_ms: u64,
        limits: NodeLimits,
    ) -> Result<StreamId, AppendError> {
        let id = match new_id {
            NewId::Explicit(id) => id,
            NewId::MsOnly(ms) if ms == self.last_id.ms => {
                let seq = self
                    .last_id
                    .seq
                    .checked_add(1)
                    .ok_or(AppendError::TooLarge)?;
                StreamId::new(ms, seq)
            }
            NewId::MsOnly(ms) => StreamId::new(ms, 0),
            NewId::Auto if now_ms > self.last_id.ms => StreamId::new(now_ms, 0),
            NewId::Auto => self.last_id.next().unwrap_or(StreamId::MIN),
        };
        if id <= self.last_id {
            return Err(AppendError::IdTooSmall);
        }
        let payload: usize = pairs.iter().map(|p| p.len()).sum();
        if payload > LISTPACK_MAX_SIZE {
            return Err(AppendError::TooLarge);
        }
        let max_bytes = match limits.max_bytes {
            0 => LISTPACK_MAX_SIZE,
            n => n.min(LISTPACK_MAX_SIZE),
        };
        let appended = match self.nodes.last_entry() {
            Some(mut tail) => {
                let node = tail.get_mut();
                let full = node.lp_bytes() + payload >= max_bytes
                    || (limits.max_entries > 0
                        && i64::try_from(node.stored()).unwrap_or(i64::MAX) >= limits.max_entries);
                if full {
                    node.shrink();
                    false
                } else {
                    let master = *tail.key();
                    let max_entries = usize::try_from(limits.max_entries).unwrap_or(usize::MAX);
                    tail.get_mut()
                        .append(master, id, pairs, (max_entries, max_bytes));
                    true
                }
            }
            None => false,
        };
        if !appended {
            self.nodes.insert(id, Node::new(id, pairs));
        }
        self.length += 1;
        self.entries_added = self.entries_added.wrapping_add(1);
        self.last_id = id;
        if self.length == 1 {
            self.first_id = id;
        }
        Ok(id)
    }

    /// Calls `f` with every live entry whose ID is in `start..=end`, in ID order (reversed if
    /// `rev`), until `f` returns false.
    pub fn visit(
        &self,
        start: StreamId,
        end: StreamId,
        rev: bool,
        mut f: impl FnMut(&Node, &RawEntry) -> bool,
    ) {
        if start > end {
            return;
        }
        if !rev {
            // The node holding `start` is the last one whose master ID is not above it.
            let from = self
                .nodes
                .range(..=start)
                .next_back()
                .map_or(StreamId::MIN, |(k, _)| *k);
            for (&master, node) in self.nodes.range(from..) {
                if master > end {
                    return;
                }
                for e in node.entries(master) {
                    if e.id < start || e.is_deleted() {
                        continue;
                    }
                    if e.id > end || !f(node, &e) {
                        return;
                    }
                }
            }
        } else {
            for (&master, node) in self.nodes.range(..=end).rev() {
                let entries: Vec<RawEntry> = node.entries(master).collect();
                for e in entries.iter().rev() {
                    if e.id > end || e.is_deleted() {
                        continue;
                    }
                    if e.id < start || !f(node, e) {
                        return;
                    }
                }
            }
        }
    }

    /// The live entries in `start..=end` as replies, at most `count` of them (0: all).
    pub fn range(
        &self,
        start: StreamId,
        end: StreamId,
        rev: bool,
        count: usize,
    ) -> Vec<(StreamId, Reply)> {
        let mut out = Vec::new();
        self.visit(start, end, rev, |node, e| {
            out.push((e.id, node.entry_reply(e)));
            count == 0 || out.len() < count
        });
        out
    }

    /// The entry `id` as a reply, if it exists.
    pub fn entry(&self, id: StreamId) -> Option<Reply> {
        self.range(id, id, false, 1).pop().map(|(_, r)| r)
    }

    /// The first live entry's ID.
    fn first_valid_id(&self) -> Option<StreamId> {
        let mut first = None;
        self.visit(StreamId::MIN, StreamId::MAX, false, |_, e| {
            first = Some(e.id);
            false
        });
        first
    }

    /// The last live entry's ID (Redis's `streamLastValidID`). Every XREAD asks for it, so
    /// it walks the tail node forward rather than collecting it for a reverse walk.
    pub fn last_valid_id(&self) -> Option<StreamId> {
        self.nodes.iter().rev().find_map(|(&master, node)| {
            node.entries(master)
                .filter(|e| !e.is_deleted())
                .last()
                .map(|e| e.id)
        })
    }

    /// Deletes the entry `id`; true if it existed. Nodes left without live entries go.
    fn delete(&mut self, id: StreamId) -> bool {
        let Some((&master, node)) = self.nodes.range_mut(..=id).next_back() else {
            return false;
        };
        let Some(entry) = node.entries(master).find(|e| e.id == id && !e.is_deleted()) else {
            return false;
        };
        node.mark_deleted(&entry);
        if node.live() == 0 {
            self.nodes.remove(&master);
        }
        self.length -= 1;
        true
    }

    /// XDEL: deletes the given entries, keeping the first and largest-deleted IDs up to date.
    /// Returns how many existed.
    pub fn delete_ids(&mut self, ids: &[StreamId]) -> u64 {
        let mut deleted = 0;
        let mut first_deleted = false;
        for &id in ids {
            if self.delete(id) {
                first_deleted |= id == self.first_id;
                self.max_deleted_id = self.max_deleted_id.max(id);
                deleted += 1;
            }
        }
        if deleted > 0 {
            self.refresh_first_id(first_deleted);
        }
        deleted
    }

    /// After a removal: the first ID is 0-0 for an empty stream, else recomputed if needed.
    fn refresh_first_id(&mut self, needed: bool) {
        if self.length == 0 {
            self.first_id = StreamId::MIN;
        } else if needed {
            self.first_id = self.first_valid_id().unwrap_or(StreamId::MAX);
        }
    }

    /// Trims the stream from its oldest entries (Redis's `streamTrim`); returns how many
    /// entries were removed.
    pub fn trim(&mut self, spec: TrimSpec) -> u64 {
        let mut deleted = 0u64;
        while let Some(mut first) = self.nodes.first_entry() {
            if let Trim::MaxLen(max) = spec.trim {
                if self.length <= max {
                    break;
                }
            }
            let master = *first.key();
            let node = first.get_mut();
            let entries = node.live() as u64;
            if spec.limit != 0 && deleted + entries > spec.limit {
                break;
            }
            let whole = match spec.trim {
                Trim::MaxLen(max) => self.length - entries >= max,
                Trim::MinId(min) => node.last_id(master) < min,
            };
            if whole {
                first.remove();
                self.length -= entries;
                deleted += entries;
                continue;
            }
            if spec.approx {
                break;
            }
            // Part of this node goes: mark its oldest entries deleted.
            let all: Vec<RawEntry> = node.entries(master).collect();
            for e in all {
                let stop = match spec.trim {
                    Trim::MaxLen(max) => self.length <= max,
                    Trim::MinId(min) => e.id >= min,
                };
                if stop {
                    break;
                }
                if !e.is_deleted() {
                    node.mark_deleted(&e);
                    self.length -= 1;
                    deleted += 1;
                }
            }
            break;
        }
        self.refresh_first_id(deleted > 0);
        deleted
    }

    /// The number of nodes Redis's radix tree has for these node keys (XINFO's
    /// `radix-tree-nodes`): a leaf per key, a node per branching point, and a compressed
    /// node for every edge that spans more than one byte. An empty tree has its root only.
    pub fn rax_nodes(&self) -> usize {
        // Keys are 16 bytes, big-endian ms then seq, so byte order is ID order.
        const KEY_BYTES: u32 = 16;
        fn key(id: &StreamId) -> u128 {
            (u128::from(id.ms) << 64) | u128::from(id.seq)
        }
        // Depths (in bytes) of the branching points on the path to the latest key.
        let mut path: Vec<u32> = Vec::new();
        let (mut branches, mut compressed) = (0usize, 0usize);
        // An edge from a branching point at `parent` to a node at `child` stores its first
        // byte in the parent; the rest needs a compressed node.
        let mut close = |parent: u32, child: u32| {
            if child > parent + 1 {
                compressed += 1;
            }
        };
        let mut prev: Option<u128> = None;
        for k in self.nodes.keys().map(key) {
            if let Some(p) = prev {
                let common = (p ^ k).leading_zeros() / 8;
                let mut child = KEY_BYTES;
                loop {
                    match path.last() {
                        Some(&d) if d > common => {
                            close(d, child);
                            child = d;
                            path.pop();
                        }
                        Some(&d) if d == common => {
                            close(d, child);
                            break;
                        }
                        _ => {
                            close(common, child);
                            path.push(common);
                            branches += 1;
                            break;
                        }
                    }
                }
            }
            prev = Some(k);
        }
        if prev.is_none() {
            return 1;
        }
        let mut child = KEY_BYTES;
        while let Some(d) = path.pop() {
            close(d, child);
            child = d;
        }
        // The root is a compressed node unless the keys branch at the first byte.
        if child > 0 {
            compressed += 1;
        }
        self.nodes.len() + branches + compressed
    }

    /// True if a deleted entry may lie at or after `start` (Redis's
    /// `streamRangeHasTombstones` with an open end).
    pub fn has_tombstones_from(&self, start: StreamId) -> bool {
        if self.length == 0 || self.max_deleted_id.is_zero() {
            return false;
        }
        if self.first_id > self.max_deleted_id {
            return false;
        }
        start <= self.max_deleted_id
    }

    /// How many entries were added up to `id` included (Redis's
    /// `streamEstimateDistanceFromFirstEverEntry`), when that can be known.
    pub fn entries_up_to(&self, id: StreamId) -> Option<i64> {
        let added = self.entries_added as i64;
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.length == 0 && id <= self.last_id {
            return Some(added);
        }
        if id == self.last_id {
            return Some(added);
        }
        if id > self.last_id {
            return None;
        }
        if self.max_deleted_id.is_zero() || self.max_deleted_id < self.first_id {
            // No tombstone ahead: the count follows from the stream's length.
            let before_first = added.wrapping_sub(self.length as i64);
            if id < self.first_id {
                return Some(before_first);
            }
            if id == self.first_id {
                return Some(before_first.wrapping_add(1));
            }
        }
        None
    }

    /// A group's lag: entries added after its last delivered one, when that can be known.
    pub fn lag(&self, group: &ConsumerGroup) -> Option<i64> {
        let added = self.entries_added as i64;
        if self.entries_added == 0 {
            return Some(0);
        }
        if let Some(read) = group.entries_read {
            if !self.has_tombstones_from(group.last_id) {
                return Some(added.wrapping_sub(read));
            }
        }
        self.entries_up_to(group.last_id)
            .map(|read| added.wrapping_sub(read))
    }

    /// Bytes allocated by the stream: its nodes, their index slots, and the groups.
    pub fn allocated_bytes(&self) -> usize {
        let index_slot = std::mem::size_of::<(StreamId, Node)>();
        std::mem::size_of::<StreamValue>()
            + self
                .nodes
                .values()
                .map(|n| n.allocated_bytes() + index_slot)
                .sum::<usize>()
            + self
                .groups
                .iter()
                .map(|(name, g)| name.len() + g.allocated_bytes())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: NodeLimits = NodeLimits {
        max_bytes: 4096,
        max_entries: 100,
    };

    fn pairs(items: &[&str]) -> Vec<Bytes> {
        items
            .iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    fn id(ms: u64, seq: u64) -> StreamId {
        StreamId::new(ms, seq)
    }

    fn add(s: &mut StreamValue, ms: u64, limits: NodeLimits) {
        s.append(NewId::Explicit(id(ms, 0)), &pairs(&["f", "v"]), 0, limits)
            .expect("append");
    }

    fn with_keys(ms: &[u64]) -> StreamValue {
        let one = NodeLimits {
            max_bytes: 4096,
            max_entries: 1,
        };
        let mut s = StreamValue::new();
        for &m in ms {
            add(&mut s, m, one);
        }
        s
    }

    fn ids(s: &StreamValue, rev: bool) -> Vec<StreamId> {
        s.range(StreamId::MIN, StreamId::MAX, rev, 0)
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    }

    #[test]
    fn generated_ids() {
        let mut s = StreamValue::new();
        let p = pairs(&["f", "v"]);
        assert_eq!(s.append(NewId::Auto, &p, 5, LIMITS), Ok(id(5, 0)));
        assert_eq!(s.append(NewId::Auto, &p, 5, LIMITS), Ok(id(5, 1)));
        assert_eq!(s.append(NewId::Auto, &p, 3, LIMITS), Ok(id(5, 2)));
        assert_eq!(s.append(NewId::MsOnly(5), &p, 0, LIMITS), Ok(id(5, 3)));
        assert_eq!(s.append(NewId::MsOnly(9), &p, 0, LIMITS), Ok(id(9, 0)));
        assert_eq!(
            s.append(NewId::MsOnly(8), &p, 0, LIMITS),
            Err(AppendError::IdTooSmall)
        );
        assert_eq!(
            s.append(NewId::Explicit(id(9, 0)), &p, 0, LIMITS),
            Err(AppendError::IdTooSmall)
        );
        s.append(NewId::Explicit(id(9, u64::MAX)), &p, 0, LIMITS)
            .expect("append");
        assert_eq!(
            s.append(NewId::MsOnly(9), &p, 0, LIMITS),
            Err(AppendError::TooLarge)
        );
        assert_eq!((s.len(), s.entries_added(), s.first_id()), (6, 6, id(5, 0)));
    }

    #[test]
    fn nodes_split_on_entries_and_bytes() {
        let mut s = StreamValue::new();
        let limits = NodeLimits {
            max_bytes: 4096,
            max_entries: 10,
        };
        for ms in 1..=25 {
            add(&mut s, ms, limits);
        }
        assert_eq!(s.node_count(), 3);
        // 29 bytes after one entry, 40 after two: with 40 as the limit a node holds two.
        let mut s = StreamValue::new();
        let limits = NodeLimits {
            max_bytes: 40,
            max_entries: 0,
        };
        for ms in 1..=6 {
            add(&mut s, ms, limits);
        }
        assert_eq!(s.node_count(), 3);
        assert_eq!(ids(&s, false).len(), 6);
    }

    #[test]
    fn ranges_skip_tombstones_both_ways() {
        let mut s = StreamValue::new();
        let limits = NodeLimits {
            max_bytes: 4096,
            max_entries: 3,
        };
        for ms in 1..=10 {
            add(&mut s, ms, limits);
        }
        assert_eq!(s.delete_ids(&[id(2, 0), id(3, 0), id(99, 0)]), 2);
        assert_eq!(s.delete_ids(&[id(1, 0)]), 1);
        assert_eq!(s.node_count(), 3, "the first node went with its last entry");
        let fwd = ids(&s, false);
        assert_eq!(fwd, (4..=10).map(|m| id(m, 0)).collect::<Vec<_>>());
        let mut rev = ids(&s, true);
        rev.reverse();
        assert_eq!(rev, fwd);
        let some: Vec<_> = s
            .range(id(5, 1), id(8, 0), true, 2)
            .into_iter()
            .map(|(i, _)| i)
            .collect();
        assert_eq!(some, vec![id(8, 0), id(7, 0)]);
        assert_eq!(s.first_id(), id(4, 0));
        assert_eq!(s.max_deleted_id(), id(3, 0));
        assert!(s.entry(id(4, 0)).is_some() && s.entry(id(3, 0)).is_none());
        assert_eq!(s.last_valid_id(), Some(id(10, 0)));
    }

    #[test]
    fn trimming_by_length_and_id() {
        let limits = NodeLimits {
            max_bytes: 4096,
            max_entries: 10,
        };
        let make = || {
            let mut s = StreamValue::new();
            for ms in 1..=100 {
                add(&mut s, ms, limits);
            }
            s
        };
        let spec = |trim, approx, limit| TrimSpec {
            trim,
            approx,
            limit,
        };
        let mut s = make();
        assert_eq!(s.trim(spec(Trim::MaxLen(55), true, 0)), 40);
        assert_eq!(s.len(), 60);
        assert_eq!(s.trim(spec(Trim::MaxLen(55), false, 0)), 5);
        assert_eq!((s.len(), s.first_id()), (55, id(46, 0)));
        let mut s = make();
        assert_eq!(s.trim(spec(Trim::MaxLen(55), true, 30)), 30);
        let mut s = make();
        assert_eq!(s.trim(spec(Trim::MinId(id(35, 0)), true, 0)), 30);
        assert_eq!(s.trim(spec(Trim::MinId(id(35, 0)), false, 0)), 4);
        assert_eq!(s.first_id(), id(35, 0));
        assert_eq!(s.trim(spec(Trim::MaxLen(0), false, 0)), 66);
        assert_eq!(
            (s.len(), s.first_id(), s.node_count()),
            (0, StreamId::MIN, 0)
        );
    }

    #[test]
    fn radix_tree_node_counts_match_redis() {
        // Counts read from Redis 7.0 (XINFO STREAM, stream-node-max-entries 1).
        assert_eq!(StreamValue::new().rax_nodes(), 1);
        let mut s = StreamValue::new();
        let one = NodeLimits {
            max_bytes: 4096,
            max_entries: 1,
        };
        let p = pairs(&["f", "v"]);
        let mut counts = Vec::new();
        for (ms, seq) in [(1, 1), (1, 2), (1, 3), (2, 0), (256, 0), (65536, 5)] {
            s.append(NewId::Explicit(id(ms, seq)), &p, 0, one)
                .expect("append");
            counts.push(s.rax_nodes());
        }
        assert_eq!(counts, vec![2, 4, 5, 9, 12, 15]);
        s.delete_ids(&[id(1, 2)]);
        assert_eq!(s.rax_nodes(), 14);
        s.delete_ids(&[id(65536, 5)]);
        assert_eq!(s.rax_nodes(), 11);
        let s = with_keys(&[0x100, 0x200]);
        // Branch at byte 6; both children are leaves reached through 9-byte edges.
        assert_eq!(s.rax_nodes(), 2 + 1 + 2 + 1);
    }

    #[test]
    fn entries_read_estimates() {
        let mut s = with_keys(&[1, 2, 3, 4, 5]);
        assert_eq!(s.entries_up_to(id(5, 0)), Some(5));
        assert_eq!(s.entries_up_to(id(1, 0)), Some(1));
        assert_eq!(s.entries_up_to(id(0, 5)), Some(0));
        assert_eq!(s.entries_up_to(id(3, 0)), None);
        assert_eq!(s.entries_up_to(id(6, 0)), None);
        s.delete_ids(&[id(3, 0)]);
        assert!(s.has_tombstones_from(id(2, 0)));
        assert!(!s.has_tombstones_from(id(4, 0)));
        assert_eq!(s.entries_up_to(id(1, 0)), None);
    }
}
