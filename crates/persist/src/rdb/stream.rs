//! Streams in RDB: nodes as Redis lays them out in listpacks (a master entry, then entries
//! delta-encoded against it), the stream's counters, and its consumer groups.
//!
//! A node's listpack, as Redis 7.0 writes it:
//!
//! ```text
//! master: live-count deleted-count field-count field... 0
//! entry:  flags ms-delta seq-delta [field-count field value ...] | [value ...]  lp-count
//! ```
//!
//! `flags` has 1 for a deleted entry and 2 when the entry's fields are the master's (only its
//! values are then stored); `lp-count` is the number of listpack elements of the entry before
//! it, so the node can be walked backwards.

use bytes::Bytes;

use super::read::{Reader, Source};
use super::write::Writer;
use super::{Error, Result};
use crate::listpack::{self, Elem};

const FLAG_DELETED: i64 = 1;
const FLAG_SAME_FIELDS: i64 = 2;

/// A stream entry ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub fn to_be_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.ms.to_be_bytes());
        b[8..].copy_from_slice(&self.seq.to_be_bytes());
        b
    }

    pub fn from_be_bytes(b: [u8; 16]) -> StreamId {
        let mut ms = [0u8; 8];
        let mut seq = [0u8; 8];
        ms.copy_from_slice(&b[..8]);
        seq.copy_from_slice(&b[8..]);
        StreamId {
            ms: u64::from_be_bytes(ms),
            seq: u64::from_be_bytes(seq),
        }
    }
}

/// One entry of a node (deleted ones are kept: they are part of the node's layout).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamEntry {
    pub id: StreamId,
    pub deleted: bool,
    /// Field, value, field, value…
    pub pairs: Vec<Bytes>,
}

/// One node: its master ID (the radix tree key), master fields and entries.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamNode {
    pub master_id: StreamId,
    pub master_fields: Vec<Bytes>,
    pub entries: Vec<StreamEntry>,
}

/// A pending entry of a consumer group.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub id: StreamId,
    pub delivery_time: i64,
    pub delivery_count: u64,
    /// The consumer that owns it.
    pub consumer: Bytes,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Consumer {
    pub name: Bytes,
    pub seen_time: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub name: Bytes,
    pub last_id: StreamId,
    /// None: unknown (Redis's -1).
    pub entries_read: Option<u64>,
    /// Ascending by ID.
    pub pending: Vec<Pending>,
    pub consumers: Vec<Consumer>,
}

/// A whole stream.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StreamData {
    pub nodes: Vec<StreamNode>,
    pub length: u64,
    pub last_id: StreamId,
    pub first_id: StreamId,
    pub max_deleted_id: StreamId,
    pub entries_added: u64,
    pub groups: Vec<Group>,
}

/// Builds a node's listpack byte for byte as Redis does.
pub fn node_listpack(node: &StreamNode) -> Vec<u8> {
    let live = node.entries.iter().filter(|e| !e.deleted).count();
    let deleted = node.entries.len() - live;
    let mut lp = listpack::Builder::new();
    lp.push_int(live as i64);
    lp.push_int(deleted as i64);
    lp.push_int(node.master_fields.len() as i64);
    for f in &node.master_fields {
        lp.push_str(f);
    }
    lp.push_int(0);
    for e in &node.entries {
        let fields = e.pairs.len() / 2;
        let same = fields == node.master_fields.len()
            && e.pairs
                .iter()
                .step_by(2)
                .zip(&node.master_fields)
                .all(|(a, b)| a == b);
        let mut flags = 0;
        if e.deleted {
            flags |= FLAG_DELETED;
        }
        if same {
            flags |= FLAG_SAME_FIELDS;
        }
        lp.push_int(flags);
        lp.push_int(e.id.ms.wrapping_sub(node.master_id.ms) as i64);
        lp.push_int(e.id.seq.wrapping_sub(node.master_id.seq) as i64);
        if same {
            for v in e.pairs.iter().skip(1).step_by(2) {
                lp.push_str(v);
            }
            lp.push_int(fields as i64 + 3);
        } else {
            lp.push_int(fields as i64);
            for p in &e.pairs {
                lp.push_str(p);
            }
            lp.push_int(2 * fields as i64 + 4);
        }
    }
    lp.finish()
}

fn int(e: Option<&Elem<'_>>) -> Result<i64> {
    match e {
        Some(Elem::Int(n)) => Ok(*n),
        _ => Err(Error::corrupt("stream listpack: integer expected")),
    }
}

fn text(e: Option<&Elem<'_>>) -> Result<Bytes> {
    match e {
        Some(Elem::Str(s)) => Ok(Bytes::copy_from_slice(s)),
        Some(Elem::Int(n)) => Ok(Bytes::from(n.to_string())),
        None => Err(Error::corrupt("stream listpack: element missing")),
    }
}

fn count(n: i64) -> Result<usize> {
    usize::try_from(n).map_err(|_| Error::corrupt("stream listpack: negative count"))
}

/// Parses and validates a node's listpack.
pub fn parse_node(master_id: StreamId, lp: &[u8]) -> Result<StreamNode> {
    let elems = listpack::decode(lp)?;
    let mut it = elems.iter();
    let live = count(int(it.next())?)?;
    let deleted = count(int(it.next())?)?;
    let nfields = count(int(it.next())?)?;
    if nfields > elems.len() {
        return Err(Error::corrupt("stream listpack: master fields"));
    }
    let master_fields = (0..nfields)
        .map(|_| text(it.next()))
        .collect::<Result<Vec<_>>>()?;
    if int(it.next())? != 0 {
        return Err(Error::corrupt("stream listpack: master terminator"));
    }
    let total = live
        .checked_add(deleted)
        .filter(|&t| t <= elems.len())
        .ok_or(Error::corrupt("stream listpack: entry count"))?;
    let mut entries = Vec::with_capacity(total);
    let mut seen_deleted = 0;
    for _ in 0..total {
        let flags = int(it.next())?;
        let ms = master_id.ms.wrapping_add(int(it.next())? as u64);
        let seq = master_id.seq.wrapping_add(int(it.next())? as u64);
        let id = StreamId { ms, seq };
        if entries.last().is_some_and(|p: &StreamEntry| p.id >= id) || id < master_id {
            return Err(Error::corrupt("stream listpack: IDs not ascending"));
        }
        let mut pairs;
        let fields;
        if flags & FLAG_SAME_FIELDS != 0 {
            fields = nfields;
            pairs = Vec::with_capacity(2 * fields);
            for f in &master_fields {
                pairs.push(f.clone());
                pairs.push(text(it.next())?);
            }
        } else {
            fields = count(int(it.next())?)?;
            if fields > elems.len() {
                return Err(Error::corrupt("stream listpack: entry fields"));
            }
            pairs = (0..2 * fields)
                .map(|_| text(it.next()))
                .collect::<Result<Vec<_>>>()?;
        }
        let extra = if flags & FLAG_SAME_FIELDS != 0 {
            3
        } else {
            4 + fields
        };
        if count(int(it.next())?)? != fields + extra {
            return Err(Error::corrupt("stream listpack: lp-count"));
        }
        let is_deleted = flags & FLAG_DELETED != 0;
        seen_deleted += usize::from(is_deleted);
        entries.push(StreamEntry {
            id,
            deleted: is_deleted,
            pairs,
        });
    }
    if it.next().is_some() || seen_deleted != deleted || entries.is_empty() {
        return Err(Error::corrupt(
            "stream listpack: trailing or miscounted entries",
        ));
    }
    Ok(StreamNode {
        master_id,
        master_fields,
        entries,
    })
}

fn read_id<S: Source>(r: &mut Reader<S>) -> Result<StreamId> {
    Ok(StreamId {
        ms: r.length()?,
        seq: r.length()?,
    })
}

/// Reads a stream (`v2`: RDB_TYPE_STREAM_LISTPACKS_2, with the counters Redis 7.0 added).
pub fn read<S: Source>(r: &mut Reader<S>, v2: bool) -> Result<StreamData> {
    let n = r.count(2)?;
    let mut s = StreamData {
        nodes: Vec::with_capacity(n),
        ..StreamData::default()
    };
    for _ in 0..n {
        let key = r.string()?;
        let key: [u8; 16] = key
            .try_into()
            .map_err(|_| Error::corrupt("stream node key is not an ID"))?;
        let master_id = StreamId::from_be_bytes(key);
        if s.nodes.last().is_some_and(|p| {
            p.master_id >= master_id || p.entries.last().is_some_and(|e| e.id >= master_id)
        }) {
            return Err(Error::corrupt("stream nodes out of order"));
        }
        let lp = r.string()?;
        s.nodes.push(parse_node(master_id, &lp)?);
    }
    s.length = r.length()?;
    s.last_id = read_id(r)?;
    let live: u64 = s
        .nodes
        .iter()
        .map(|n| n.entries.iter().filter(|e| !e.deleted).count() as u64)
        .sum();
    if live != s.length {
        return Err(Error::corrupt("stream length does not match its entries"));
    }
    let newest = s.nodes.last().and_then(|n| n.entries.last()).map(|e| e.id);
    if newest.is_some_and(|id| id > s.last_id) {
        return Err(Error::corrupt("stream entry after the last ID"));
    }
    if v2 {
        s.first_id = read_id(r)?;
        s.max_deleted_id = read_id(r)?;
        s.entries_added = r.length()?;
    } else {
        s.entries_added = s.length;
        s.first_id = s
            .nodes
            .iter()
            .flat_map(|n| &n.entries)
            .find(|e| !e.deleted)
            .map_or(StreamId::default(), |e| e.id);
    }
    let groups = r.count(4)?;
    for _ in 0..groups {
        let name = r.bytes_string()?;
        if s.groups.iter().any(|g| g.name == name) {
            return Err(Error::corrupt("duplicate consumer group"));
        }
        let last_id = read_id(r)?;
        let entries_read = if v2 {
            let n = r.length()?;
            (n != u64::MAX).then_some(n)
        } else {
            estimate_entries_read(&s, last_id)
        };
        let pel_len = r.count(17)?;
        let mut pending: Vec<Pending> = Vec::with_capacity(pel_len);
        for _ in 0..pel_len {
            let id = StreamId::from_be_bytes(r.array()?);
            if pending.last().is_some_and(|p| p.id >= id) {
                return Err(Error::corrupt("group PEL not ascending"));
            }
            let delivery_time = r.ms_time()?;
            let delivery_count = r.length()?;
            pending.push(Pending {
                id,
                delivery_time,
                delivery_count,
                consumer: Bytes::new(),
            });
        }
        let mut owned = vec![false; pending.len()];
        let nconsumers = r.count(10)?;
        let mut consumers: Vec<Consumer> = Vec::with_capacity(nconsumers);
        for _ in 0..nconsumers {
            let cname = r.bytes_string()?;
            if consumers.iter().any(|c| c.name == cname) {
                return Err(Error::corrupt("duplicate consumer"));
            }
            let seen_time = r.ms_time()?;
            let own = r.count(16)?;
            for _ in 0..own {
                let id = StreamId::from_be_bytes(r.array()?);
                let at = pending
                    .binary_search_by(|p| p.id.cmp(&id))
                    .map_err(|_| Error::corrupt("consumer PEL entry not in the group PEL"))?;
                if std::mem::replace(&mut owned[at], true) {
                    return Err(Error::corrupt("PEL entry owned twice"));
                }
                pending[at].consumer = cname.clone();
            }
            consumers.push(Consumer {
                name: cname,
                seen_time,
            });
        }
        if owned.iter().any(|o| !o) {
            return Err(Error::corrupt("group PEL entry without a consumer"));
        }
        s.groups.push(Group {
            name,
            last_id,
            entries_read,
            pending,
            consumers,
        });
    }
    Ok(s)
}

/// A group's read counter for streams saved before Redis 7.0 (which kept none), estimated
/// as Redis 7.0 estimates it on load: known when the group is at the stream's end, or before
/// or at its first entry while no deletion left a gap ahead of that entry.
fn estimate_entries_read(s: &StreamData, last_id: StreamId) -> Option<u64> {
    let added = s.entries_added;
    if added == 0 {
        return Some(0);
    }
    if (s.length == 0 && last_id <= s.last_id) || last_id == s.last_id {
        return Some(added);
    }
    if last_id > s.last_id {
        return None;
    }
    let no_gap_ahead = s.max_deleted_id == StreamId::default() || s.max_deleted_id < s.first_id;
    let before_first = added.checked_sub(s.length)?;
    match last_id.cmp(&s.first_id) {
        std::cmp::Ordering::Less if no_gap_ahead => Some(before_first),
        std::cmp::Ordering::Equal if no_gap_ahead => before_first.checked_add(1),
        _ => None,
    }
}

/// Writes a stream (RDB_TYPE_STREAM_LISTPACKS_2).
pub fn write(w: &mut Writer<'_>, s: &StreamData) {
    w.length(s.nodes.len() as u64);
    for node in &s.nodes {
        w.string(&node.master_id.to_be_bytes());
        w.string(&node_listpack(node));
    }
    write_meta(w, s);
}

/// Everything after the nodes: counters and consumer groups.
pub fn write_meta(w: &mut Writer<'_>, s: &StreamData) {
    w.length(s.length);
    w.length(s.last_id.ms);
    w.length(s.last_id.seq);
    w.length(s.first_id.ms);
    w.length(s.first_id.seq);
    w.length(s.max_deleted_id.ms);
    w.length(s.max_deleted_id.seq);
    w.length(s.entries_added);
    w.length(s.groups.len() as u64);
    for g in &s.groups {
        w.string(&g.name);
        w.length(g.last_id.ms);
        w.length(g.last_id.seq);
        w.length(g.entries_read.unwrap_or(u64::MAX));
        w.length(g.pending.len() as u64);
        for p in &g.pending {
            w.raw(&p.id.to_be_bytes());
            w.ms_time(p.delivery_time);
            w.length(p.delivery_count);
        }
        w.length(g.consumers.len() as u64);
        for c in &g.consumers {
            w.string(&c.name);
            w.ms_time(c.seen_time);
            let own: Vec<&Pending> = g.pending.iter().filter(|p| p.consumer == c.name).collect();
            w.length(own.len() as u64);
            for p in own {
                w.raw(&p.id.to_be_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn id(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    pub fn sample() -> StreamData {
        let node = StreamNode {
            master_id: id(1, 0),
            master_fields: vec![b("f"), b("g")],
            entries: vec![
                StreamEntry {
                    id: id(1, 0),
                    deleted: false,
                    pairs: vec![b("f"), b("1"), b("g"), b("x")],
                },
                StreamEntry {
                    id: id(1, 1),
                    deleted: true,
                    pairs: vec![b("f"), b("2"), b("g"), b("y")],
                },
                StreamEntry {
                    id: id(5, 0),
                    deleted: false,
                    pairs: vec![b("other"), b("-17")],
                },
            ],
        };
        StreamData {
            nodes: vec![node],
            length: 2,
            last_id: id(5, 0),
            first_id: id(1, 0),
            max_deleted_id: id(1, 1),
            entries_added: 3,
            groups: vec![Group {
                name: b("g1"),
                last_id: id(5, 0),
                entries_read: Some(3),
                pending: vec![Pending {
                    id: id(1, 0),
                    delivery_time: 1234,
                    delivery_count: 2,
                    consumer: b("alice"),
                }],
                consumers: vec![
                    Consumer {
                        name: b("alice"),
                        seen_time: 1234,
                    },
                    Consumer {
                        name: b("bob"),
                        seen_time: 99,
                    },
                ],
            }],
        }
    }

    #[test]
    fn stream_round_trips() {
        let s = sample();
        let mut out = Vec::new();
        write(&mut Writer::new(&mut out, true), &s);
        let mut r = Reader::new(&out[..]);
        assert_eq!(read(&mut r, true).expect("valid"), s);
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn legacy_read_counters_are_estimated_as_redis_7_0_does() {
        // A pre-7.0 stream: 5-0 and 6-0 left of 1..6 (3 deleted, then trimmed to 2).
        let s = StreamData {
            length: 2,
            last_id: id(6, 0),
            first_id: id(5, 0),
            max_deleted_id: StreamId::default(),
            entries_added: 2,
            ..sample()
        };
        assert_eq!(
            estimate_entries_read(&s, id(5, 0)),
            Some(1),
            "at the first entry"
        );
        assert_eq!(estimate_entries_read(&s, id(0, 0)), Some(0), "before it");
        assert_eq!(estimate_entries_read(&s, id(6, 0)), Some(2), "at the end");
        assert_eq!(estimate_entries_read(&s, id(5, 5)), None, "in the middle");
        assert_eq!(estimate_entries_read(&s, id(7, 0)), None, "past the end");
        let gap = StreamData {
            max_deleted_id: id(5, 1),
            ..s.clone()
        };
        assert_eq!(estimate_entries_read(&gap, id(5, 0)), None);
        let empty = StreamData { length: 0, ..s };
        assert_eq!(estimate_entries_read(&empty, id(3, 0)), Some(2));
    }

    #[test]
    fn node_listpack_layout_is_redis() {
        let s = sample();
        let lp = node_listpack(&s.nodes[0]);
        let elems = listpack::decode(&lp).expect("valid");
        // master: 2 live, 1 deleted, 2 fields f g, terminator 0
        assert_eq!(
            &elems[..6],
            &[
                Elem::Int(2),
                Elem::Int(1),
                Elem::Int(2),
                Elem::Str(b"f"),
                Elem::Str(b"g"),
                Elem::Int(0)
            ]
        );
        // first entry: same fields, deltas 0 0, values 1 x, lp-count 5
        assert_eq!(
            &elems[6..12],
            &[
                Elem::Int(2),
                Elem::Int(0),
                Elem::Int(0),
                Elem::Int(1),
                Elem::Str(b"x"),
                Elem::Int(5)
            ]
        );
        // second entry: deleted and same fields
        assert_eq!(elems[12], Elem::Int(3));
    }

    #[test]
    fn damaged_streams_are_errors() {
        let s = sample();
        let mut out = Vec::new();
        write(&mut Writer::new(&mut out, false), &s);
        for i in 0..out.len() {
            for v in [0u8, 1, 0x7f, 0x80, 0xff] {
                let mut bad = out.clone();
                bad[i] = v;
                let _ = read(&mut Reader::new(&bad[..]), true);
            }
        }
        for cut in 0..out.len() {
            assert!(read(&mut Reader::new(&out[..cut]), true).is_err());
        }
    }
}
