//! Compact storage for list elements: a packed node of entries ([`Listpack`]), a node that may
//! be held LZF-compressed ([`Node`]) and a ring of nodes ([`NodeRing`]), the building blocks of
//! [`crate::t_list::ListValue`] (Redis's quicklist of listpacks).
//!
//! A node keeps its entries back to back in one buffer, each as
//! `header payload backlen`:
//! - `header` is a LEB128 number: `len << 1` for a string of `len` bytes (the payload), or
//!   `zigzag(n) << 1 | 1` for a string that is the canonical decimal form of a (not too large)
//!   integer `n`, with no payload;
//! - `backlen` is the byte size of `header payload`, in LEB128 with its bytes reversed, so
//!   that a node can be walked backwards from its end.
//!
//! A 10-byte string costs 12 bytes and "1234" costs 3, close to what a Redis listpack spends.
//! Because every value has exactly one encoding, two elements are equal exactly when their
//! `header payload` bytes are, which makes LREM / LPOS / LINSERT a byte comparison.

use std::borrow::Cow;

use bytes::Bytes;

use crate::num;

/// Integers are stored as such only when `zigzag(n) << 1 | 1` fits in 64 bits.
const INT_RANGE: std::ops::RangeInclusive<i64> = -(1 << 62)..=(1 << 62) - 1;

/// Bytes always reserved when a node grows, so that a few small pushes share a reallocation.
const MIN_CAPACITY: usize = 16;

pub(crate) fn varint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Writes `v` as LEB128 at the start of `out`; returns the bytes written.
pub(crate) fn put_varint(out: &mut [u8], mut v: u64) -> usize {
    let mut i = 0;
    while v >= 0x80 {
        out[i] = (v as u8) | 0x80;
        v >>= 7;
        i += 1;
    }
    out[i] = v as u8;
    i + 1
}

/// Reads a LEB128 number at the start of `buf`: (value, bytes read).
pub(crate) fn get_varint(buf: &[u8]) -> (u64, usize) {
    let mut v = 0u64;
    for (i, &b) in buf.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return (v, i + 1);
        }
    }
    (v, buf.len().min(10))
}

/// Writes `v` as reversed LEB128 ending exactly at the end of `out`.
fn put_backlen(out: &mut [u8], mut v: u64) {
    let mut i = out.len();
    loop {
        i -= 1;
        let more = v >= 0x80;
        out[i] = (v as u8 & 0x7f) | if more { 0x80 } else { 0 };
        v >>= 7;
        if !more {
            break;
        }
    }
}

/// Reads a reversed LEB128 number that ends at `buf.len()`: (value, bytes read).
fn get_backlen(buf: &[u8]) -> (u64, usize) {
    let mut v = 0u64;
    for (i, &b) in buf.iter().rev().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return (v, i + 1);
        }
    }
    (v, buf.len().min(10))
}

/// One element as stored: a byte string or an integer kept in binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elem<'a> {
    Str(&'a [u8]),
    Int(i64),
}

impl Elem<'_> {
    /// The element's bytes, as a client sees them.
    pub fn to_bytes(&self) -> Bytes {
        match *self {
            Elem::Str(s) => Bytes::copy_from_slice(s),
            Elem::Int(n) => Bytes::from(n.to_string()),
        }
    }
}

/// An element ready to be written into a node (or compared with stored ones).
#[derive(Debug, Clone, Copy)]
pub struct Encoded<'a> {
    header: u64,
    payload: &'a [u8],
}

impl<'a> Encoded<'a> {
    pub fn new(value: &'a [u8]) -> Self {
        match num::parse_i64(value) {
            Some(n) if INT_RANGE.contains(&n) => {
                let zigzag = ((n << 1) ^ (n >> 63)) as u64;
                Encoded {
                    header: zigzag << 1 | 1,
                    payload: &[],
                }
            }
            _ => Encoded {
                header: (value.len() as u64) << 1,
                payload: value,
            },
        }
    }

    /// Size of `header payload`: the value without its backlen (the form streams store).
    pub(crate) fn content_len(&self) -> usize {
        varint_len(self.header) + self.payload.len()
    }

    /// Appends `header payload` to `out` (read back with [`read_content`]).
    pub(crate) fn append_content(&self, out: &mut Vec<u8>) {
        let mut header = [0u8; 10];
        let h = put_varint(&mut header, self.header);
        out.extend_from_slice(&header[..h]);
        out.extend_from_slice(self.payload);
    }

    /// Size of the whole entry, backlen included.
    pub fn entry_len(&self) -> usize {
        let content = self.content_len();
        content + varint_len(content as u64)
    }

    /// Writes the entry into `out`, which is exactly `entry_len()` bytes.
    fn write(&self, out: &mut [u8]) {
        let h = put_varint(out, self.header);
        let content = h + self.payload.len();
        out[h..content].copy_from_slice(self.payload);
        put_backlen(&mut out[content..], content as u64);
    }

    /// True if the stored entry `entry` holds this value.
    pub fn matches(&self, entry: Entry<'_>) -> bool {
        let (header, h) = get_varint(entry.0);
        header == self.header && &entry.0[h..] == self.payload
    }
}

/// A stored entry: its `header payload` bytes.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a>(&'a [u8]);

impl<'a> Entry<'a> {
    pub fn value(&self) -> Elem<'a> {
        read_content(self.0).map_or(Elem::Str(&[]), |(value, _)| value)
    }

    pub fn to_bytes(&self) -> Bytes {
        self.value().to_bytes()
    }
}

/// Reads a value stored as `header payload` at the start of `buf`: the value and the bytes it
/// spans (None if `buf` ends inside it).
pub(crate) fn read_content(buf: &[u8]) -> Option<(Elem<'_>, usize)> {
    let (header, h) = get_varint(buf);
    if header & 1 == 1 {
        let zigzag = header >> 1;
        return Some((
            Elem::Int(((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64)),
            h,
        ));
    }
    let end = h.checked_add(usize::try_from(header >> 1).ok()?)?;
    Some((Elem::Str(buf.get(h..end)?), end))
}

/// One node: a packed run of entries. The buffer may hold spare bytes past the used ones so
/// that pushes do not reallocate every time; `spare` is bounded by a quarter of the contents
/// on growth and trimmed when pops leave much of it unused.
#[derive(Clone, Default)]
pub struct Listpack {
    buf: Box<[u8]>,
    spare: u32,
    count: u32,
}

impl Listpack {
    /// A node holding one value.
    pub fn with(value: &Encoded<'_>) -> Self {
        let mut lp = Listpack::default();
        lp.insert(0, value);
        lp
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes used by the entries.
    pub fn bytes(&self) -> usize {
        self.buf.len() - self.spare as usize
    }

    /// Bytes allocated.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// The entries' bytes, back to back.
    fn packed(&self) -> &[u8] {
        &self.buf[..self.bytes()]
    }

    /// A node over `packed`, which holds `count` whole entries and nothing else.
    fn from_packed(packed: Vec<u8>, count: u32) -> Self {
        Listpack {
            buf: packed.into_boxed_slice(),
            spare: 0,
            count,
        }
    }

    /// Resizes the buffer to `cap` bytes (at least `used`), keeping the first `used` ones.
    fn reallocate(&mut self, used: usize, cap: usize) {
        let cap = cap.max(used);
        let mut v = std::mem::take(&mut self.buf).into_vec();
        v.truncate(cap.min(v.len()));
        if cap > v.len() {
            v.reserve_exact(cap - v.len());
            v.resize(cap, 0);
        }
        self.buf = v.into_boxed_slice();
        self.set_used(used);
    }

    /// Records that the first `used` bytes hold the entries.
    fn set_used(&mut self, used: usize) {
        match u32::try_from(self.buf.len() - used) {
            Ok(spare) => self.spare = spare,
            // Only after removing a multi-gigabyte entry: give the memory back.
            Err(_) => self.reallocate(used, used),
        }
    }

    fn reserve(&mut self, extra: usize) {
        if self.spare as usize >= extra {
            return;
        }
        let used = self.bytes();
        let needed = used + extra;
        let slack = (needed / 4).min(u32::MAX as usize / 2);
        self.reallocate(used, (needed + slack).max(MIN_CAPACITY));
    }

    /// Gives memory back once pops left more than a third of the buffer unused.
    fn shrink_if_sparse(&mut self) {
        let used = self.bytes();
        let spare = self.spare as usize;
        if spare > 64 && spare > used / 2 {
            self.reallocate(used, used + used / 8);
        }
    }

    /// The entry starting at byte `off` and the offset of the next one.
    pub fn next(&self, off: usize) -> Option<(Entry<'_>, usize)> {
        let used = &self.buf[..self.bytes()];
        if off >= used.len() {
            return None;
        }
        let (header, h) = get_varint(&used[off..]);
        let payload = if header & 1 == 1 {
            0
        } else {
            (header >> 1) as usize
        };
        let content = h + payload;
        let end = (off + content).min(used.len());
        let next = off + content + varint_len(content as u64);
        Some((Entry(&used[off..end]), next))
    }

    /// The entry ending at byte `end` and the offset where it starts.
    pub fn prev(&self, end: usize) -> Option<(Entry<'_>, usize)> {
        let used = &self.buf[..self.bytes().min(end)];
        if used.is_empty() {
            return None;
        }
        let (content, b) = get_backlen(used);
        let start = used.len().saturating_sub(b + content as usize);
        Some((Entry(&used[start..used.len() - b]), start))
    }

    /// Byte offset of entry `index` (the end of the node when `index == len()`), walking
    /// from the nearer end.
    pub fn offset_of(&self, index: usize) -> usize {
        if index <= self.len() / 2 {
            let mut off = 0;
            for _ in 0..index {
                match self.next(off) {
                    Some((_, next)) => off = next,
                    None => break,
                }
            }
            off
        } else {
            let mut off = self.bytes();
            for _ in index..self.len() {
                match self.prev(off) {
                    Some((_, start)) => off = start,
                    None => break,
                }
            }
            off
        }
    }

    /// Entry `index`, if it exists.
    pub fn get(&self, index: usize) -> Option<Entry<'_>> {
        if index >= self.len() {
            return None;
        }
        self.next(self.offset_of(index)).map(|(e, _)| e)
    }

    /// Inserts a value at byte offset `off` (an entry boundary).
    pub fn insert(&mut self, off: usize, value: &Encoded<'_>) {
        self.replace(off, off, value);
        self.count += 1;
    }

    /// Replaces the bytes `[from, to)` (one entry, or none when inserting) by `value`,
    /// leaving the entry count to the caller.
    pub fn replace(&mut self, from: usize, to: usize, value: &Encoded<'_>) {
        let new_len = value.entry_len();
        let old_len = to - from;
        let used = self.bytes();
        if new_len > old_len {
            self.reserve(new_len - old_len);
        }
        self.buf.copy_within(to..used, from + new_len);
        value.write(&mut self.buf[from..from + new_len]);
        self.set_used(used - old_len + new_len);
        if new_len < old_len {
            self.shrink_if_sparse();
        }
    }

    /// Removes the bytes `[from, to)`, which hold `entries` whole entries.
    pub fn remove(&mut self, from: usize, to: usize, entries: usize) {
        let used = self.bytes();
        self.count -= entries as u32;
        if self.count == 0 {
            *self = Listpack::default();
            return;
        }
        self.buf.copy_within(to..used, from);
        self.set_used(used - (to - from));
        self.shrink_if_sparse();
    }

    /// Splits the node at byte `off`, after its first `entries` entries: keeps those and
    /// returns a node with the rest.
    pub fn split_off(&mut self, off: usize, entries: usize) -> Listpack {
        let mut tail = Listpack::default();
        let rest = &self.buf[off..self.bytes()];
        tail.reserve(rest.len());
        tail.buf[..rest.len()].copy_from_slice(rest);
        tail.set_used(rest.len());
        tail.count = self.count - entries as u32;
        let used = self.bytes();
        self.remove(off, used, tail.len());
        tail
    }

    /// Moves every entry of `other` to the end of this node.
    pub fn append(&mut self, other: &Listpack) {
        let used = self.bytes();
        let extra = other.bytes();
        self.reserve(extra);
        self.buf[used..used + extra].copy_from_slice(&other.buf[..extra]);
        self.set_used(used + extra);
        self.count += other.count;
    }

    /// Counts the entries equal to `value`.
    pub fn count_matches(&self, value: &Encoded<'_>) -> usize {
        self.iter().filter(|e| value.matches(*e)).count()
    }

    /// Removes the matches of `value` after the first `skip` ones, at most `max` of them;
    /// returns how many it removed. Compacts the node in one pass.
    pub fn remove_matches(&mut self, value: &Encoded<'_>, mut skip: usize, max: usize) -> usize {
        let used = self.bytes();
        let (mut read, mut write, mut removed) = (0, 0, 0);
        while read < used && removed < max {
            let Some((entry, next)) = self.next(read) else {
                break;
            };
            let drop = value.matches(entry) && {
                let skipped = skip > 0;
                skip = skip.saturating_sub(1);
                !skipped
            };
            if drop {
                removed += 1;
            } else {
                self.buf.copy_within(read..next, write);
                write += next - read;
            }
            read = next;
        }
        self.buf.copy_within(read..used, write);
        write += used - read;
        self.set_used(write);
        self.count -= removed as u32;
        if self.count == 0 {
            *self = Listpack::default();
        } else if removed > 0 {
            self.shrink_if_sparse();
        }
        removed
    }

    /// The entries, first to last.
    pub fn iter(&self) -> impl Iterator<Item = Entry<'_>> + '_ {
        let mut off = 0;
        std::iter::from_fn(move || {
            let (e, next) = self.next(off)?;
            off = next;
            Some(e)
        })
    }
}

/// Nodes smaller than this are not worth compressing (Redis's `MIN_COMPRESS_BYTES`).
const MIN_COMPRESS_BYTES: usize = 48;

/// A compressed form is kept only when it saves at least this many bytes (Redis's
/// `MIN_COMPRESS_IMPROVE`), which also rejects forms larger than the original.
const MIN_COMPRESS_IMPROVE: usize = 8;

/// Nodes beyond this size stay uncompressed: the LZF implementation counts in 32-bit
/// integers, and only a single element of over a gigabyte makes such a node.
const MAX_COMPRESS_BYTES: usize = 1 << 30;

/// The LZF form of `packed` if it is worth keeping: the node is at least
/// [`MIN_COMPRESS_BYTES`] and compression saves at least [`MIN_COMPRESS_IMPROVE`].
fn compress_packed(packed: &[u8]) -> Option<Box<[u8]>> {
    if !(MIN_COMPRESS_BYTES..=MAX_COMPRESS_BYTES).contains(&packed.len()) {
        return None;
    }
    // None when the LZF form would not be shorter.
    let lzf = shardis_persist::lzf::compress(packed)?;
    (lzf.len() + MIN_COMPRESS_IMPROVE < packed.len()).then(|| lzf.into_boxed_slice())
}

/// A node's entries in LZF form, with what is needed to use the node without expanding it:
/// its entry count and packed size (the size limits of a node apply to the packed size).
#[derive(Clone)]
pub struct Compressed {
    lzf: Box<[u8]>,
    packed_bytes: u32,
    count: u32,
}

impl Compressed {
    /// The entries, expanded into a node of their own.
    fn expand(&self) -> Listpack {
        match lzf::decompress(&self.lzf, self.packed_bytes as usize) {
            Ok(packed) if packed.len() == self.packed_bytes as usize => {
                Listpack::from_packed(packed, self.count)
            }
            // Only bytes this module compressed are ever expanded, so this cannot happen;
            // an empty node is the least harmful answer if it ever did.
            _ => {
                debug_assert!(false, "a compressed list node failed to expand");
                Listpack::default()
            }
        }
    }
}

/// One node of a list: its entries packed and ready for use, or compressed (the nodes a
/// list keeps away from its ends when `list-compress-depth` asks for it). Reading a
/// compressed node expands a copy; changing it expands it in place, and the list decides
/// afterwards whether to compress it again.
#[derive(Clone)]
pub enum Node {
    Packed {
        entries: Listpack,
        /// Compression was tried on exactly these entries and did not pay (too small, or
        /// saving too little), so it is not tried again until they change.
        incompressible: bool,
    },
    Compressed(Compressed),
}

impl Default for Node {
    fn default() -> Self {
        Node::from(Listpack::default())
    }
}

impl From<Listpack> for Node {
    fn from(entries: Listpack) -> Self {
        Node::Packed {
            entries,
            incompressible: false,
        }
    }
}

impl Node {
    /// Number of entries.
    pub fn len(&self) -> usize {
        match self {
            Node::Packed { entries, .. } => entries.len(),
            Node::Compressed(c) => c.count as usize,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of the packed entries, compressed or not (what the node size limits measure).
    pub fn bytes(&self) -> usize {
        match self {
            Node::Packed { entries, .. } => entries.bytes(),
            Node::Compressed(c) => c.packed_bytes as usize,
        }
    }

    /// Bytes allocated: the buffer of a packed node, the LZF form of a compressed one.
    pub fn capacity(&self) -> usize {
        match self {
            Node::Packed { entries, .. } => entries.capacity(),
            Node::Compressed(c) => c.lzf.len(),
        }
    }

    pub fn is_compressed(&self) -> bool {
        matches!(self, Node::Compressed(_))
    }

    /// The entries for reading: borrowed when packed, expanded into a copy when compressed.
    pub fn view(&self) -> Cow<'_, Listpack> {
        match self {
            Node::Packed { entries, .. } => Cow::Borrowed(entries),
            Node::Compressed(c) => Cow::Owned(c.expand()),
        }
    }

    /// The entries for changing: a compressed node is expanded in place first. The caller
    /// is expected to change them, so compression will be worth trying again.
    pub fn entries_mut(&mut self) -> &mut Listpack {
        match self {
            Node::Packed {
                entries,
                incompressible,
            } => {
                *incompressible = false;
                entries
            }
            Node::Compressed(c) => {
                *self = Node::from(c.expand());
                self.entries_mut()
            }
        }
    }

    /// The entries, taking the node apart.
    pub fn into_entries(self) -> Listpack {
        match self {
            Node::Packed { entries, .. } => entries,
            Node::Compressed(c) => c.expand(),
        }
    }

    /// Compresses a packed node if that pays (see [`compress_packed`]); remembers when it
    /// does not, so that the same entries are not tried twice.
    pub fn compress(&mut self) {
        let Node::Packed {
            entries,
            incompressible,
        } = self
        else {
            return;
        };
        if *incompressible {
            return;
        }
        match compress_packed(entries.packed()) {
            Some(lzf) => {
                *self = Node::Compressed(Compressed {
                    lzf,
                    // compress_packed only accepts nodes up to MAX_COMPRESS_BYTES.
                    packed_bytes: entries.bytes() as u32,
                    count: entries.count,
                })
            }
            None => *incompressible = true,
        }
    }

    /// Expands a compressed node in place (one that now sits within the depth of an end).
    pub fn decompress(&mut self) {
        if let Node::Compressed(c) = self {
            let entries = c.expand();
            *self = Node::Packed {
                entries,
                // It was compressed, so it would compress again.
                incompressible: false,
            };
        }
    }

    /// Counts the entries equal to `value`.
    pub fn count_matches(&self, value: &Encoded<'_>) -> usize {
        self.view().count_matches(value)
    }

    /// [`Listpack::remove_matches`]; a compressed node is expanded for good only when
    /// something was removed from it.
    pub fn remove_matches(&mut self, value: &Encoded<'_>, skip: usize, max: usize) -> usize {
        match self {
            Node::Packed {
                entries,
                incompressible,
            } => {
                let removed = entries.remove_matches(value, skip, max);
                // Entries left as they were would compress no better than before.
                *incompressible &= removed == 0;
                removed
            }
            Node::Compressed(c) => {
                let mut entries = c.expand();
                let removed = entries.remove_matches(value, skip, max);
                if removed > 0 {
                    *self = Node::from(entries);
                }
                removed
            }
        }
    }
}

/// A list's nodes and its element count, in 24 bytes (a whole list value then fits a
/// `Value`'s 24).
///
/// Most lists have one node: it sits here in place, and the element count is its count. Two
/// or more nodes live in a power-of-two ring, where pushing or popping a node at either end is
/// O(1), with the element count beside them. The list maintains that count through
/// [`NodeRing::add_elements`] / [`NodeRing::sub_elements`] (no-ops for a single node, whose
/// count is exact); moving from one node to a ring counts the nodes' elements, so the list
/// adjusts the count before it adds nodes, and node contents are always current when a node
/// is added.
#[derive(Clone)]
pub struct NodeRing {
    repr: Nodes,
}

#[derive(Clone)]
enum Nodes {
    /// No node (an empty listpack), or the only one.
    One(Node),
    Ring(Box<Ring>),
}

#[derive(Clone, Default)]
struct Ring {
    slots: Box<[Node]>,
    head: u32,
    count: u32,
    elements: usize,
}

impl Default for NodeRing {
    fn default() -> Self {
        NodeRing {
            repr: Nodes::One(Node::default()),
        }
    }
}

impl Ring {
    fn len(&self) -> usize {
        self.count as usize
    }

    fn slot(&self, i: usize) -> usize {
        (self.head as usize + i) & (self.slots.len() - 1)
    }

    /// Moves the nodes into a ring of `cap` slots (a power of two, at least `len()`).
    fn resize(&mut self, cap: usize) {
        let mut slots: Vec<Node> = Vec::with_capacity(cap);
        for i in 0..self.len() {
            let s = self.slot(i);
            slots.push(std::mem::take(&mut self.slots[s]));
        }
        slots.resize_with(cap, Node::default);
        self.slots = slots.into_boxed_slice();
        self.head = 0;
    }

    fn grow_if_full(&mut self) {
        if self.len() == self.slots.len() {
            self.resize((self.slots.len() * 2).max(2));
        }
    }

    fn shrink_if_sparse(&mut self) {
        let cap = self.slots.len();
        if cap > 4 && self.len() * 4 <= cap {
            self.resize(self.len().next_power_of_two());
        }
    }

    fn push_back(&mut self, node: Node) {
        self.grow_if_full();
        let s = self.slot(self.len());
        self.slots[s] = node;
        self.count += 1;
    }

    fn push_front(&mut self, node: Node) {
        self.grow_if_full();
        let cap = self.slots.len();
        self.head = ((self.head as usize + cap - 1) & (cap - 1)) as u32;
        self.slots[self.head as usize] = node;
        self.count += 1;
    }

    /// Inserts a node before node `i` (`i == len()` appends).
    fn insert(&mut self, i: usize, node: Node) {
        self.push_back(node);
        for j in (i + 1..self.len()).rev() {
            let (a, b) = (self.slot(j - 1), self.slot(j));
            self.slots.swap(a, b);
        }
    }

    fn remove(&mut self, i: usize) -> Node {
        let node = if i == 0 {
            let head = self.head as usize;
            self.head = ((head + 1) & (self.slots.len() - 1)) as u32;
            std::mem::take(&mut self.slots[head])
        } else {
            for j in i..self.len() - 1 {
                let (a, b) = (self.slot(j), self.slot(j + 1));
                self.slots.swap(a, b);
            }
            let last = self.slot(self.len() - 1);
            std::mem::take(&mut self.slots[last])
        };
        self.count -= 1;
        self.shrink_if_sparse();
        node
    }
}

/// Where a node goes.
enum At {
    Front,
    Back,
    Before(usize),
}

impl NodeRing {
    /// Number of nodes.
    pub fn len(&self) -> usize {
        match &self.repr {
            Nodes::One(lp) => usize::from(!lp.is_empty()),
            Nodes::Ring(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of elements of the list.
    pub fn elements(&self) -> usize {
        match &self.repr {
            Nodes::One(lp) => lp.len(),
            Nodes::Ring(r) => r.elements,
        }
    }

    /// Counts `n` elements the list gained (see the type's documentation).
    pub fn add_elements(&mut self, n: usize) {
        if let Nodes::Ring(r) = &mut self.repr {
            r.elements += n;
        }
    }

    /// Counts `n` elements the list lost.
    pub fn sub_elements(&mut self, n: usize) {
        if let Nodes::Ring(r) = &mut self.repr {
            r.elements = r.elements.saturating_sub(n);
        }
    }

    /// Node `i`; callers index below `len()` (0 for the only node, even while it is empty).
    pub fn get(&self, i: usize) -> &Node {
        match &self.repr {
            Nodes::One(lp) => lp,
            Nodes::Ring(r) => &r.slots[r.slot(i)],
        }
    }

    pub fn get_mut(&mut self, i: usize) -> &mut Node {
        match &mut self.repr {
            Nodes::One(lp) => lp,
            Nodes::Ring(r) => {
                let s = r.slot(i);
                &mut r.slots[s]
            }
        }
    }

    /// Adds a node: in place when there is none, else into the ring (which a single node
    /// moves into first, its elements and the new node's counted).
    fn add(&mut self, at: At, node: Node) {
        let place = |ring: &mut Ring, node: Node| match at {
            At::Front => ring.push_front(node),
            At::Back => ring.push_back(node),
            At::Before(i) => ring.insert(i, node),
        };
        match std::mem::take(self).repr {
            Nodes::One(only) if only.is_empty() => self.repr = Nodes::One(node),
            Nodes::One(only) => {
                let mut ring = Box::new(Ring {
                    elements: only.len() + node.len(),
                    ..Ring::default()
                });
                ring.push_back(only);
                place(&mut ring, node);
                self.repr = Nodes::Ring(ring);
            }
            Nodes::Ring(mut ring) => {
                place(&mut ring, node);
                self.repr = Nodes::Ring(ring);
            }
        }
    }

    pub fn push_back(&mut self, node: Node) {
        self.add(At::Back, node);
    }

    pub fn push_front(&mut self, node: Node) {
        self.add(At::Front, node);
    }

    /// Inserts a node before node `i` (`i == len()` appends).
    pub fn insert(&mut self, i: usize, node: Node) {
        self.add(At::Before(i), node);
    }

    /// Removes node `i`; a ring left with one node gives it back its place.
    pub fn remove(&mut self, i: usize) -> Node {
        let node = match &mut self.repr {
            Nodes::One(lp) => std::mem::take(lp),
            Nodes::Ring(r) => r.remove(i),
        };
        if let Nodes::Ring(r) = &mut self.repr {
            if r.len() <= 1 {
                let only = if r.len() == 1 {
                    r.remove(0)
                } else {
                    Node::default()
                };
                self.repr = Nodes::One(only);
            }
        }
        node
    }

    /// Bytes allocated for the ring (not the nodes' buffers).
    pub fn capacity_bytes(&self) -> usize {
        match &self.repr {
            Nodes::One(_) => 0,
            Nodes::Ring(r) => {
                std::mem::size_of::<Ring>() + r.slots.len() * std::mem::size_of::<Node>()
            }
        }
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Node> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(lp: &Listpack) -> Vec<Bytes> {
        lp.iter().map(|e| e.to_bytes()).collect()
    }

    #[test]
    fn varints_round_trip_both_ways() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            16383,
            16384,
            u32::MAX as u64,
            u64::MAX,
        ] {
            let mut buf = [0u8; 10];
            let n = put_varint(&mut buf, v);
            assert_eq!(n, varint_len(v));
            assert_eq!(get_varint(&buf[..n]), (v, n));
            let mut back = vec![0xffu8; 3];
            back.extend(std::iter::repeat_n(0, n));
            put_backlen(&mut back[3..], v);
            assert_eq!(get_backlen(&back), (v, n));
        }
    }

    #[test]
    fn integers_are_packed_and_read_back() {
        for s in [
            "0",
            "-1",
            "42",
            "-4611686018427387904",
            "4611686018427387903",
            "4611686018427387904",
            "9223372036854775807",
            "-9223372036854775808",
            "007",
            "-0",
            "+1",
            "1.5",
            "",
        ] {
            let enc = Encoded::new(s.as_bytes());
            let lp = Listpack::with(&enc);
            assert_eq!(values(&lp), vec![Bytes::from(s)], "{s}");
            assert!(enc.matches(lp.get(0).unwrap()));
        }
        assert_eq!(Encoded::new(b"1234").entry_len(), 3);
        assert_eq!(Encoded::new(b"abcdefghij").entry_len(), 12);
        assert!(matches!(
            Listpack::with(&Encoded::new(b"-7"))
                .get(0)
                .map(|e| e.value()),
            Some(Elem::Int(-7))
        ));
    }

    #[test]
    fn string_and_integer_with_same_digits_differ_from_others() {
        let lp = Listpack::with(&Encoded::new(b"12"));
        let e = lp.get(0).unwrap();
        assert!(!Encoded::new(b"012").matches(e));
        assert!(!Encoded::new(b"13").matches(e));
        assert!(Encoded::new(b"12").matches(e));
    }

    #[test]
    fn node_walks_both_ways_with_long_entries() {
        let big = vec![b'x'; 70_000];
        let mut lp = Listpack::default();
        lp.insert(0, &Encoded::new(b"a"));
        let end = lp.bytes();
        lp.insert(end, &Encoded::new(&big));
        let end = lp.bytes();
        lp.insert(end, &Encoded::new(b"99"));
        assert_eq!(lp.len(), 3);
        let mut back = Vec::new();
        let mut end = lp.bytes();
        while let Some((e, start)) = lp.prev(end) {
            back.push(e.to_bytes());
            end = start;
        }
        back.reverse();
        assert_eq!(back, values(&lp));
        assert_eq!(lp.get(1).unwrap().to_bytes().len(), 70_000);
        assert_eq!(lp.offset_of(3), lp.bytes());
    }

    #[test]
    fn remove_split_append_and_matches() {
        let mut lp = Listpack::default();
        for v in ["a", "b", "a", "c", "a"] {
            let end = lp.bytes();
            lp.insert(end, &Encoded::new(v.as_bytes()));
        }
        let a = Encoded::new(b"a");
        assert_eq!(lp.count_matches(&a), 3);
        assert_eq!(lp.remove_matches(&a, 1, 1), 1);
        assert_eq!(values(&lp), vec!["a", "b", "c", "a"]);
        let off = lp.offset_of(2);
        let tail = lp.split_off(off, 2);
        assert_eq!(values(&lp), vec!["a", "b"]);
        assert_eq!(values(&tail), vec!["c", "a"]);
        lp.append(&tail);
        assert_eq!(values(&lp), vec!["a", "b", "c", "a"]);
        let (from, to) = (lp.offset_of(1), lp.offset_of(3));
        lp.remove(from, to, 2);
        assert_eq!(values(&lp), vec!["a", "a"]);
        let to = lp.offset_of(1);
        lp.replace(0, to, &Encoded::new(b"zzz"));
        assert_eq!(values(&lp), vec!["zzz", "a"]);
    }

    fn node_of(items: &[&[u8]]) -> Node {
        let mut lp = Listpack::default();
        for v in items {
            let end = lp.bytes();
            lp.insert(end, &Encoded::new(v));
        }
        Node::from(lp)
    }

    #[test]
    fn nodes_compress_and_expand_intact() {
        let long = b"abcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabc".as_slice();
        let items: Vec<&[u8]> = vec![long, b"42", b"", long, b"-7", long];
        let mut node = node_of(&items);
        let (bytes, packed) = (node.bytes(), node.view().packed().to_vec());
        node.compress();
        assert!(node.is_compressed());
        assert!(
            node.capacity() + MIN_COMPRESS_IMPROVE < bytes,
            "{}",
            node.capacity()
        );
        // Sizes and counts need no expanding; reading expands a copy, identical.
        assert_eq!((node.len(), node.bytes()), (6, bytes));
        assert!(matches!(node.view(), Cow::Owned(_)));
        assert_eq!(node.view().packed(), packed);
        assert_eq!(values(&node.view()), items);
        assert_eq!(node.count_matches(&Encoded::new(long)), 3);
        // Nothing to remove: the node stays compressed.
        assert_eq!(node.remove_matches(&Encoded::new(b"zz"), 0, 9), 0);
        assert!(node.is_compressed());
        assert_eq!(node.remove_matches(&Encoded::new(long), 1, 1), 1);
        assert!(!node.is_compressed());
        assert_eq!(values(&node.view()), vec![long, b"42", b"", b"-7", long]);
        // Changing expands in place; decompress and into_entries give the same entries.
        node.compress();
        let copy = node.clone();
        node.entries_mut().insert(0, &Encoded::new(b"new"));
        assert!(!node.is_compressed());
        assert_eq!(node.len(), 6);
        let mut expanded = copy.clone();
        expanded.decompress();
        assert!(matches!(expanded.view(), Cow::Borrowed(_)));
        assert_eq!(values(&expanded.view()), values(&copy.into_entries()));
    }

    #[test]
    fn compression_is_kept_only_where_it_pays() {
        // Under MIN_COMPRESS_BYTES: left packed, however repetitive.
        let mut small = node_of(&[&[b'a'; 40]]);
        small.compress();
        assert!(!small.is_compressed());
        assert_eq!(compress_packed(&[b'a'; MIN_COMPRESS_BYTES - 1]), None);
        assert!(compress_packed(&[b'a'; MIN_COMPRESS_BYTES]).is_some());
        // Bytes that LZF cannot shrink by MIN_COMPRESS_IMPROVE.
        let mut rand = crate::testing::xorshift(11);
        let noise: Vec<u8> = (0..2000).map(|_| rand(256) as u8).collect();
        assert_eq!(compress_packed(&noise), None);
        let mut node = node_of(&[&noise]);
        node.compress();
        assert!(matches!(
            node,
            Node::Packed {
                incompressible: true,
                ..
            }
        ));
        // The verdict holds until the entries change.
        node.entries_mut();
        assert!(matches!(
            node,
            Node::Packed {
                incompressible: false,
                ..
            }
        ));
        // Compressing twice, or expanding a packed node, changes nothing.
        let mut node = node_of(&[&[b'z'; 500]]);
        node.compress();
        let size = node.capacity();
        node.compress();
        assert_eq!(node.capacity(), size);
        let mut packed = node_of(&[b"x"]);
        packed.decompress();
        assert_eq!(values(&packed.view()), vec!["x"]);
    }

    #[test]
    fn ring_pushes_inserts_and_removes() {
        let node = |s: &str| Node::from(Listpack::with(&Encoded::new(s.as_bytes())));
        let mut ring = NodeRing::default();
        for s in ["c", "d", "e"] {
            ring.push_back(node(s));
        }
        ring.push_front(node("b"));
        ring.push_front(node("a"));
        ring.insert(2, node("x"));
        let names = |r: &NodeRing| -> Vec<Bytes> {
            r.iter()
                .map(|n| n.view().get(0).unwrap().to_bytes())
                .collect()
        };
        assert_eq!(names(&ring), vec!["a", "b", "x", "c", "d", "e"]);
        assert_eq!(
            ring.remove(2).into_entries().get(0).unwrap().to_bytes(),
            "x"
        );
        assert_eq!(
            ring.remove(0).into_entries().get(0).unwrap().to_bytes(),
            "a"
        );
        assert_eq!(
            ring.remove(3).into_entries().get(0).unwrap().to_bytes(),
            "e"
        );
        assert_eq!(names(&ring), vec!["b", "c", "d"]);
        while !ring.is_empty() {
            ring.remove(0);
        }
        assert_eq!(ring.capacity_bytes(), 0);
    }
}
