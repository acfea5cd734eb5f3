//! One node of a stream: up to `stream-node-max-entries` entries packed in one buffer, in the
//! design of Redis's stream listpacks (but not their byte format).
//!
//! A node starts with a *master entry*, the field names of the first entry added to it. Each
//! entry then stores its ID as deltas from the node's *master ID* (the first entry's ID, which
//! is also the node's key in the stream's index), and, when its field names are the master's,
//! only its values. The buffer is:
//!
//! ```text
//! master:  varint(field count) field...
//! entry:   flags varint(ms delta) varint(zigzag(seq delta))
//!          [varint(field count) field value ...]   (flags without SAME_FIELDS)
//!          [value ...]                              (flags with SAME_FIELDS)
//! ```
//!
//! Strings use the list nodes' value codec ([`crate::listpack::Encoded`]): a varint header then
//! the bytes, or a canonical integer held in the header alone. Deleted entries stay in place
//! with the DELETED flag (tombstones), as in Redis, until their node is emptied.
//!
//! A node also keeps the size Redis's listpack would have for the same entries. Redis starts a
//! new node when that size reaches `stream-node-max-bytes`; using Redis's figure rather than
//! this buffer's makes node boundaries, and therefore approximate trimming (`MAXLEN ~`) and
//! XINFO's `radix-tree-*` counts, exactly Redis's.

use bytes::Bytes;
use shardis_resp::Reply;

use super::id::StreamId;
use crate::listpack::{get_varint, put_varint, read_content, Elem, Encoded};
use crate::num;

const FLAG_DELETED: u8 = 1;
const FLAG_SAME_FIELDS: u8 = 2;

/// Listpack header (total bytes, element count) and end marker.
const LP_FRAME: usize = 7;

#[derive(Debug, Clone)]
pub struct Node {
    buf: Vec<u8>,
    /// Offset of the first entry (the master fields end there).
    entries_at: u32,
    master_fields: u32,
    live: u32,
    deleted: u32,
    /// Redis's listpack size for this node, without its two counters (live and deleted
    /// entries), whose encoded sizes vary with their values.
    lp_rest: usize,
}

/// One entry as found in a node: where it is and what its header says.
#[derive(Debug, Clone, Copy)]
pub struct RawEntry {
    pub id: StreamId,
    flags: u8,
    /// Offset of the flags byte.
    at: usize,
    /// Offset of the first field (or value).
    body: usize,
    /// Number of field-value pairs.
    fields: usize,
}

impl RawEntry {
    pub fn is_deleted(&self) -> bool {
        self.flags & FLAG_DELETED != 0
    }

    fn same_fields(&self) -> bool {
        self.flags & FLAG_SAME_FIELDS != 0
    }
}

/// Size of a listpack element holding an encoding of `len` bytes (its backlen added).
fn lp_element(len: usize) -> usize {
    let backlen = match len {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    };
    len + backlen
}

/// Size of a listpack element holding the integer `v`.
fn lp_int(v: i64) -> usize {
    lp_element(match v {
        0..=127 => 1,
        -4096..=4095 => 2,
        -32768..=32767 => 3,
        -8388608..=8388607 => 4,
        -2147483648..=2147483647 => 5,
        _ => 9,
    })
}

/// Size of a listpack element holding the string `s` (stored as an integer when it is one).
fn lp_string(s: &[u8]) -> usize {
    match num::parse_i64(s) {
        Some(v) => lp_int(v),
        None if s.len() < 64 => lp_element(1 + s.len()),
        None if s.len() < 4096 => lp_element(2 + s.len()),
        None => lp_element(5 + s.len()),
    }
}

fn put_u64(buf: &mut Vec<u8>, v: u64) {
    let mut tmp = [0u8; 10];
    let n = put_varint(&mut tmp, v);
    buf.extend_from_slice(&tmp[..n]);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// A value read from a node, as the client sees it.
fn elem_bytes(e: Elem<'_>) -> Bytes {
    e.to_bytes()
}

impl Node {
    /// A node whose master entry has the field names of `pairs` (field, value, field, value…),
    /// holding the entry `id` → `pairs`; `id` becomes the master ID.
    pub fn new(id: StreamId, pairs: &[Bytes]) -> Node {
        let mut node = Node::with_master(pairs.iter().step_by(2));
        node.push(id, id, pairs, true);
        node
    }

    /// A node with no entries whose master entry has the field names `fields` (a node read
    /// back from a snapshot keeps the master entry it was saved with).
    pub fn with_master<'a>(fields: impl ExactSizeIterator<Item = &'a Bytes>) -> Node {
        let count = fields.len();
        let mut buf = Vec::new();
        put_u64(&mut buf, count as u64);
        let mut lp_rest = LP_FRAME + lp_int(count as i64) + lp_int(0);
        for field in fields {
            Encoded::new(field).append_content(&mut buf);
            lp_rest += lp_string(field);
        }
        Node {
            entries_at: u32::try_from(buf.len()).unwrap_or(u32::MAX),
            buf,
            master_fields: u32::try_from(count).unwrap_or(u32::MAX),
            live: 0,
            deleted: 0,
            lp_rest,
        }
    }

    /// Appends an entry read back from a snapshot, tombstone or not, whatever the node's
    /// limits (they were checked when the entry was first added).
    pub fn push_restored(
        &mut self,
        master: StreamId,
        id: StreamId,
        pairs: &[Bytes],
        deleted: bool,
    ) {
        let same = self.has_master_fields(pairs);
        let at = self.buf.len();
        self.push(master, id, pairs, same);
        if deleted {
            if let Some(flags) = self.buf.get_mut(at) {
                *flags |= FLAG_DELETED;
                self.live -= 1;
                self.deleted += 1;
            }
        }
    }

    /// The master entry's field names.
    pub fn master_fields(&self) -> Vec<Bytes> {
        let mut out = Vec::with_capacity(self.master_fields as usize);
        let mut off = self.master_start();
        for _ in 0..self.master_fields {
            match self.read(off) {
                Some((field, next)) => {
                    out.push(elem_bytes(field));
                    off = next;
                }
                None => break,
            }
        }
        out
    }

    /// Entries not deleted.
    pub fn live(&self) -> usize {
        self.live as usize
    }

    /// Entries stored, deleted ones included (what `stream-node-max-entries` limits).
    pub fn stored(&self) -> usize {
        self.live as usize + self.deleted as usize
    }

    /// The size of Redis's listpack for this node.
    pub fn lp_bytes(&self) -> usize {
        self.lp_rest + lp_int(i64::from(self.live)) + lp_int(i64::from(self.deleted))
    }

    /// Bytes allocated by the node.
    pub fn allocated_bytes(&self) -> usize {
        self.buf.capacity()
    }

    /// Frees the growth slack of a node that will receive no more entries.
    pub fn shrink(&mut self) {
        self.buf.shrink_to_fit();
    }

    /// True if `pairs` has exactly the master entry's field names.
    fn has_master_fields(&self, pairs: &[Bytes]) -> bool {
        if pairs.len() / 2 != self.master_fields as usize {
            return false;
        }
        let mut off = self.master_start();
        for field in pairs.iter().step_by(2) {
            match self.read(off) {
                Some((stored, next)) if elem_matches(stored, field) => off = next,
                _ => return false,
            }
        }
        true
    }

    /// Offset of the first master field.
    fn master_start(&self) -> usize {
        get_varint(&self.buf).1
    }

    /// Appends the entry `id` → `pairs` to a node whose master ID is `master`; the node is
    /// full at `limits` (entries, Redis listpack bytes; 0 entries: no limit).
    pub fn append(
        &mut self,
        master: StreamId,
        id: StreamId,
        pairs: &[Bytes],
        limits: (usize, usize),
    ) {
        let same = self.has_master_fields(pairs);
        // At most: flags, two deltas, a field count, and per string a header and its bytes.
        let extra = 31 + pairs.iter().map(|p| 10 + p.len()).sum::<usize>();
        self.reserve(extra, limits);
        self.push(master, id, pairs, same);
    }

    /// Makes room for `extra` more bytes. The buffer doubles while it is small, then grows
    /// straight to the size the node should have when full (its limits scaled by what its
    /// entries take so far): a full node then sits in an allocation close to its size,
    /// without the trail of freed doubling steps, and a node that never fills (the last
    /// one) holds little more than it uses.
    fn reserve(&mut self, extra: usize, (max_entries, max_bytes): (usize, usize)) {
        let len = self.buf.len();
        let need = len.saturating_add(extra);
        if need <= self.buf.capacity() {
            return;
        }
        let by_entries = match max_entries {
            0 => usize::MAX,
            n => len.saturating_mul(n) / self.stored().max(1),
        };
        let by_bytes = len.saturating_mul(max_bytes) / self.lp_bytes().max(1);
        let expected = by_entries.min(by_bytes);
        let target = need
            .saturating_mul(2)
            .min(expected.saturating_add(expected / 16))
            .max(need);
        self.buf.reserve_exact(target - len);
    }

    fn push(&mut self, master: StreamId, id: StreamId, pairs: &[Bytes], same_fields: bool) {
        let ms_delta = id.ms.wrapping_sub(master.ms);
        let seq_delta = id.seq.wrapping_sub(master.seq) as i64;
        let fields = pairs.len() / 2;
        self.buf
            .push(if same_fields { FLAG_SAME_FIELDS } else { 0 });
        put_u64(&mut self.buf, ms_delta);
        put_u64(&mut self.buf, zigzag(seq_delta));
        // Redis's element count of the entry, which it stores as the entry's last element.
        let mut lp_count = 3 + fields;
        self.lp_rest += lp_int(0) + lp_int(ms_delta as i64) + lp_int(seq_delta);
        if same_fields {
            for value in pairs.iter().skip(1).step_by(2) {
                Encoded::new(value).append_content(&mut self.buf);
                self.lp_rest += lp_string(value);
            }
        } else {
            put_u64(&mut self.buf, fields as u64);
            self.lp_rest += lp_int(fields as i64);
            lp_count += fields + 1;
            for item in &pairs[..fields * 2] {
                Encoded::new(item).append_content(&mut self.buf);
                self.lp_rest += lp_string(item);
            }
        }
        self.lp_rest += lp_int(lp_count as i64);
        self.live += 1;
    }

    /// The value at `off` and the offset after it.
    fn read(&self, off: usize) -> Option<(Elem<'_>, usize)> {
        let (value, len) = read_content(self.buf.get(off..)?)?;
        Some((value, off + len))
    }

    fn read_varint(&self, off: usize) -> Option<(u64, usize)> {
        let rest = self.buf.get(off..).filter(|r| !r.is_empty())?;
        let (v, n) = get_varint(rest);
        Some((v, off + n))
    }

    /// The entry starting at `at` and the offset of the next one.
    fn entry_at(&self, master: StreamId, at: usize) -> Option<(RawEntry, usize)> {
        let flags = *self.buf.get(at)?;
        let (ms_delta, off) = self.read_varint(at + 1)?;
        let (seq_delta, mut off) = self.read_varint(off)?;
        let id = StreamId::new(
            master.ms.wrapping_add(ms_delta),
            master.seq.wrapping_add(unzigzag(seq_delta) as u64),
        );
        let (fields, strings) = if flags & FLAG_SAME_FIELDS != 0 {
            (self.master_fields as usize, self.master_fields as usize)
        } else {
            let (n, next) = self.read_varint(off)?;
            off = next;
            let n = usize::try_from(n).ok()?;
            (n, n.checked_mul(2)?)
        };
        let body = off;
        for _ in 0..strings {
            off = self.read(off)?.1;
        }
        let entry = RawEntry {
            id,
            flags,
            at,
            body,
            fields,
        };
        Some((entry, off))
    }

    /// Every entry, tombstones included, first to last.
    pub fn entries(&self, master: StreamId) -> impl Iterator<Item = RawEntry> + '_ {
        let mut at = self.entries_at as usize;
        std::iter::from_fn(move || {
            let (entry, next) = self.entry_at(master, at)?;
            at = next;
            Some(entry)
        })
    }

    /// The ID of the last entry, tombstone or not.
    pub fn last_id(&self, master: StreamId) -> StreamId {
        self.entries(master).last().map_or(master, |e| e.id)
    }

    /// Calls `f` with each field and value of `entry`.
    pub fn for_each_pair(&self, entry: &RawEntry, mut f: impl FnMut(Elem<'_>, Elem<'_>)) {
        let mut field_at = self.master_start();
        let mut off = entry.body;
        for _ in 0..entry.fields {
            let field = if entry.same_fields() {
                let Some((field, next)) = self.read(field_at) else {
                    return;
                };
                field_at = next;
                field
            } else {
                let Some((field, next)) = self.read(off) else {
                    return;
                };
                off = next;
                field
            };
            let Some((value, next)) = self.read(off) else {
                return;
            };
            off = next;
            f(field, value);
        }
    }

    /// The entry as Redis replies it: `[id, [field, value, ...]]`.
    pub fn entry_reply(&self, entry: &RawEntry) -> Reply {
        let mut pairs = Vec::with_capacity(entry.fields.saturating_mul(2).min(1024));
        self.for_each_pair(entry, |f, v| {
            pairs.push(Reply::Bulk(elem_bytes(f)));
            pairs.push(Reply::Bulk(elem_bytes(v)));
        });
        Reply::Array(vec![entry.id.reply(), Reply::Array(pairs)])
    }

    /// Marks `entry` deleted (it stays as a tombstone).
    pub fn mark_deleted(&mut self, entry: &RawEntry) {
        if let Some(flags) = self.buf.get_mut(entry.at) {
            if *flags & FLAG_DELETED == 0 {
                *flags |= FLAG_DELETED;
                self.live -= 1;
                self.deleted += 1;
            }
        }
    }
}

/// True if the stored `elem` is the string `s`.
fn elem_matches(elem: Elem<'_>, s: &[u8]) -> bool {
    match elem {
        Elem::Str(stored) => stored == s,
        Elem::Int(n) => num::parse_i64(s) == Some(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: (usize, usize) = (100, 4096);

    fn b(items: &[&str]) -> Vec<Bytes> {
        items
            .iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    fn pairs_of(node: &Node, e: &RawEntry) -> Vec<String> {
        let mut out = Vec::new();
        node.for_each_pair(e, |f, v| {
            out.push(String::from_utf8_lossy(&f.to_bytes()).into_owned());
            out.push(String::from_utf8_lossy(&v.to_bytes()).into_owned());
        });
        out
    }

    #[test]
    fn entries_round_trip_with_shared_fields() {
        let master = StreamId::new(100, 5);
        let mut node = Node::new(master, &b(&["a", "1", "b", "xyz"]));
        node.append(
            master,
            StreamId::new(100, 6),
            &b(&["a", "2", "b", "-7"]),
            LIMITS,
        );
        node.append(master, StreamId::new(101, 0), &b(&["c", "3"]), LIMITS);
        node.append(
            master,
            StreamId::new(u64::MAX, 1),
            &b(&["a", "", "b", "é"]),
            LIMITS,
        );
        let entries: Vec<_> = node.entries(master).collect();
        let ids: Vec<_> = entries.iter().map(|e| e.id).collect();
        assert_eq!(
            ids,
            vec![
                StreamId::new(100, 5),
                StreamId::new(100, 6),
                StreamId::new(101, 0),
                StreamId::new(u64::MAX, 1)
            ]
        );
        assert!(entries[1].same_fields() && !entries[2].same_fields());
        assert_eq!(pairs_of(&node, &entries[0]), ["a", "1", "b", "xyz"]);
        assert_eq!(pairs_of(&node, &entries[1]), ["a", "2", "b", "-7"]);
        assert_eq!(pairs_of(&node, &entries[2]), ["c", "3"]);
        assert_eq!(pairs_of(&node, &entries[3]), ["a", "", "b", "é"]);
        assert_eq!(node.last_id(master), StreamId::new(u64::MAX, 1));
        assert_eq!(node.live(), 4);
    }

    #[test]
    fn integers_keep_their_text() {
        let master = StreamId::new(1, 0);
        let node = Node::new(master, &b(&["007", "12", "-0", "9223372036854775807"]));
        let e = node.entries(master).next().expect("entry");
        assert_eq!(
            pairs_of(&node, &e),
            ["007", "12", "-0", "9223372036854775807"]
        );
    }

    #[test]
    fn tombstones_stay_counted() {
        let master = StreamId::new(1, 0);
        let mut node = Node::new(master, &b(&["f", "v"]));
        node.append(master, StreamId::new(2, 0), &b(&["f", "v"]), LIMITS);
        let first = node.entries(master).next().expect("entry");
        let before = node.lp_bytes();
        node.mark_deleted(&first);
        node.mark_deleted(&first);
        assert_eq!((node.live(), node.stored()), (1, 2));
        assert!(node.entries(master).next().expect("entry").is_deleted());
        assert_eq!(node.lp_bytes(), before, "flag and counters stay one byte");
    }

    #[test]
    fn listpack_size_matches_redis() {
        // XADD s 1-1 f v gives a 29-byte listpack in Redis: 7 bytes of frame, the master
        // entry (count 1, deleted 0, 1 field, "f", terminator 0: 2+2+2+3+2 bytes) and the
        // entry (flags, deltas 0 and 0, value "v", lp-count 4: 2+2+2+3+2).
        let master = StreamId::new(1, 1);
        let mut node = Node::new(master, &b(&["f", "v"]));
        assert_eq!(node.lp_bytes(), 7 + 11 + 11);
        // A second same-field entry adds flags, two deltas, the value and lp-count.
        node.append(master, StreamId::new(1, 2), &b(&["f", "v"]), LIMITS);
        assert_eq!(node.lp_bytes(), 29 + 11);
        // An entry with other fields adds its field count and names too.
        node.append(master, StreamId::new(1, 3), &b(&["g", "v"]), LIMITS);
        assert_eq!(node.lp_bytes(), 40 + 2 * 3 + 2 + 3 + 3 + 2);
        // Integers take their listpack sizes: 200 needs 2 bytes, 40000 4.
        assert_eq!(lp_string(b"127"), 2);
        assert_eq!(lp_string(b"200"), 3);
        assert_eq!(lp_string(b"-4096"), 3);
        assert_eq!(lp_string(b"40000"), 5);
        assert_eq!(lp_string(b"9223372036854775807"), 10);
        assert_eq!(lp_string(b"0123"), 6);
        assert_eq!(lp_string(&[b'x'; 63]), 65);
        assert_eq!(lp_string(&[b'x'; 64]), 67);
        assert_eq!(lp_string(&[b'x'; 200]), 204);
        assert_eq!(lp_string(&[b'x'; 5000]), 5007);
    }
}
