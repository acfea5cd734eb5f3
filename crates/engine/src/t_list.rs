//! List commands (Redis's `t_list.c`) and the list value (Redis's quicklist).
//!
//! A list is a ring of packed nodes ([`crate::listpack`]), each holding up to
//! `list-max-listpack-size` worth of entries, so that a list of 20 short strings costs one
//! small buffer while pushes and pops at either end stay O(1) and LINDEX / LSET skip whole
//! nodes. With `list-compress-depth` set, the nodes between the ends are held LZF-compressed.
//! Blocking pops (BLPOP…) make one non-blocking attempt here; the runtime does the waiting
//! when they answer with a null reply.

use std::borrow::Cow;
use std::ops::Range;

use bytes::Bytes;
use shardis_resp::Reply;

use crate::command::table::Registration;
use crate::command::{Blocking, TimeoutReply, Wait};
use crate::error;
use crate::listpack::{Encoded, Entry, Listpack, Node, NodeRing};
use crate::notify::LIST;
use crate::num;
use crate::shard::{Ctx, EngineConfig};
use crate::value::Value;

pub static COMMANDS: &[Registration] = &[
    Registration::shard("lpush", lpush),
    Registration::shard("rpush", rpush),
    Registration::shard("lpushx", lpushx),
    Registration::shard("rpushx", rpushx),
    Registration::shard("linsert", linsert),
    Registration::shard("llen", llen),
    Registration::shard("lindex", lindex),
    Registration::shard("lset", lset),
    Registration::shard("lrange", lrange),
    Registration::shard("ltrim", ltrim),
    Registration::shard("lpos", lpos),
    Registration::shard("lrem", lrem),
    Registration::shard("lpop", lpop),
    Registration::shard("rpop", rpop),
    Registration::shard("lmpop", lmpop),
    Registration::shard("lmove", lmove),
    Registration::shard("rpoplpush", rpoplpush),
    Registration::shard("blpop", blpop).blocking(waits(timeout_arg::<-1>, TimeoutReply::NilArray)),
    Registration::shard("brpop", brpop).blocking(waits(timeout_arg::<-1>, TimeoutReply::NilArray)),
    Registration::shard("blmpop", blmpop).blocking(waits(timeout_arg::<1>, TimeoutReply::NilArray)),
    Registration::shard("blmove", blmove).blocking(waits(timeout_arg::<5>, TimeoutReply::Nil)),
    Registration::shard("brpoplpush", brpoplpush)
        .blocking(waits(timeout_arg::<3>, TimeoutReply::Nil)),
];

/// Unwraps a `Result` whose error is already the reply to send.
macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(reply) => return reply,
        }
    };
}

/// An end of a list: LEFT is the head, RIGHT the tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Left,
    Right,
}

/// Deepest `list-compress-depth` a list honours (Redis keeps the depth in 16 bits).
const MAX_COMPRESS_DEPTH: usize = u16::MAX as usize;

/// The shard's settings a list is edited with (Redis's quicklist options). They are passed
/// to each edit rather than stored, to keep the value at 32 bytes, so a changed setting
/// applies to the nodes a list next modifies (Redis instead keeps, for each list, the
/// settings in force when it was created; replies are the same either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListOptions {
    /// `list-max-listpack-size`: how large a node may grow.
    pub fill: i64,
    /// `list-compress-depth`: how many nodes at each end stay uncompressed; 0 compresses
    /// none.
    pub compress_depth: usize,
}

impl ListOptions {
    pub fn of(config: &EngineConfig) -> Self {
        ListOptions {
            fill: config.list_max_listpack_size,
            compress_depth: config.list_compress_depth.min(MAX_COMPRESS_DEPTH),
        }
    }
}

impl End {
    /// The event Redis reports for a push at this end.
    fn push_event(self) -> &'static str {
        match self {
            End::Left => "lpush",
            End::Right => "rpush",
        }
    }

    /// The event Redis reports for a pop from this end.
    fn pop_event(self) -> &'static str {
        match self {
            End::Left => "lpop",
            End::Right => "rpop",
        }
    }
}

impl Default for ListOptions {
    fn default() -> Self {
        ListOptions::of(&EngineConfig::default())
    }
}

/// Redis's quicklist node limits: a negative `list-max-listpack-size` caps a node's bytes
/// (-1 = 4 KiB … -5 = 64 KiB), a positive one its entries (with an 8 KiB safety cap). A node
/// of one entry always fits, however large.
fn node_fits(fill: i64, bytes: usize, entries: usize) -> bool {
    if entries <= 1 {
        return true;
    }
    if fill < 0 {
        let level = fill.unsigned_abs().min(5) - 1;
        bytes <= 4096 << level
    } else {
        bytes <= 8192 && entries as i64 <= fill.clamp(1, 1 << 15)
    }
}

fn mergeable(fill: i64, a: &Node, b: &Node) -> bool {
    node_fits(fill, a.bytes() + b.bytes(), a.len() + b.len())
}

/// A list value. Redis 7.0 reports every list as `quicklist`.
///
/// With a compress depth `d > 0`, the nodes more than `d` nodes away from both ends are kept
/// LZF-compressed when that pays ([`Node::compress`]), as Redis's quicklist does: the ends,
/// where pushes and pops happen, stay packed, and the middle of a long list costs a fraction
/// of its size. Reading a compressed node expands a copy of it; an edit expands it in place
/// and [`ListValue::settle`] compresses it again afterwards.
#[derive(Clone, Default)]
pub struct ListValue {
    /// The nodes, and the element count with them (see [`NodeRing`]).
    nodes: NodeRing,
}

impl std::fmt::Debug for ListValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl ListValue {
    pub fn new() -> Self {
        ListValue::default()
    }

    /// A list of `values`, first to last.
    pub fn from_values<I, V>(values: I, options: ListOptions) -> Self
    where
        I: IntoIterator<Item = V>,
        V: AsRef<[u8]>,
    {
        let mut list = ListValue::new();
        for v in values {
            list.push(End::Right, v.as_ref(), options);
        }
        list
    }

    pub fn encoding(&self) -> &'static str {
        "quicklist"
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.nodes.elements()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The work of freeing the list: one per node (Redis's lazy-free effort).
    pub fn free_effort(&self) -> usize {
        self.nodes.len()
    }

    /// Frees up to `max` nodes from the head, for freeing a doomed list in steps; returns how
    /// many it freed.
    pub fn shed(&mut self, max: usize) -> usize {
        let mut freed = 0;
        while freed < max && !self.nodes.is_empty() {
            let node = self.nodes.remove(0);
            self.nodes.sub_elements(node.len());
            freed += 1;
        }
        freed
    }

    /// Heap bytes held by the list (for MEMORY USAGE): compressed nodes count by their
    /// compressed size.
    pub fn allocated_bytes(&self) -> usize {
        self.nodes.capacity_bytes() + self.nodes.iter().map(Node::capacity).sum::<usize>()
    }

    /// Index of the node at `end` (the list is not empty).
    fn end_node(&self, end: End) -> usize {
        match end {
            End::Left => 0,
            End::Right => self.nodes.len() - 1,
        }
    }

    pub fn push(&mut self, end: End, value: &[u8], options: ListOptions) {
        let value = Encoded::new(value);
        let nodes_before = self.nodes.len();
        self.nodes.add_elements(1);
        if !self.nodes.is_empty() {
            let n = self.end_node(end);
            let node = self.nodes.get_mut(n);
            if node_fits(
                options.fill,
                node.bytes() + value.entry_len(),
                node.len() + 1,
            ) {
                let entries = node.entries_mut();
                let off = match end {
                    End::Left => 0,
                    End::Right => entries.bytes(),
                };
                entries.insert(off, &value);
                self.settle(n..n + 1, nodes_before, options);
                return;
            }
        }
        let node = Node::from(Listpack::with(&value));
        match end {
            End::Left => self.nodes.push_front(node),
            End::Right => self.nodes.push_back(node),
        }
        let n = self.end_node(end);
        self.settle(n..n + 1, nodes_before, options);
    }

    pub fn pop(&mut self, end: End, options: ListOptions) -> Option<Bytes> {
        if self.is_empty() {
            return None;
        }
        let nodes_before = self.nodes.len();
        let n = self.end_node(end);
        let node = self.nodes.get_mut(n).entries_mut();
        let (value, from, to) = match end {
            End::Left => {
                let (e, next) = node.next(0)?;
                (e.to_bytes(), 0, next)
            }
            End::Right => {
                let (e, start) = node.prev(node.bytes())?;
                (e.to_bytes(), start, node.bytes())
            }
        };
        node.remove(from, to, 1);
        let touched = if node.is_empty() {
            self.nodes.remove(n);
            0..0
        } else {
            n..n + 1
        };
        self.nodes.sub_elements(1);
        self.settle(touched, nodes_before, options);
        Some(value)
    }

    /// Pops up to `count` elements from `end`, in popping order.
    pub fn pop_many(&mut self, end: End, count: usize, options: ListOptions) -> Vec<Bytes> {
        let count = count.min(self.len());
        let items = match end {
            End::Left => self.iter().take(count).collect(),
            End::Right => self.iter_rev().take(count).collect(),
        };
        self.drop_elements(end, count, options);
        items
    }

    /// Removes `count` elements from `end`.
    pub fn drop_elements(&mut self, end: End, count: usize, options: ListOptions) {
        let mut left = count.min(self.len());
        let nodes_before = self.nodes.len();
        let mut touched = 0..0;
        self.nodes.sub_elements(left);
        while left > 0 {
            let n = self.end_node(end);
            let node = self.nodes.get_mut(n);
            if node.len() <= left {
                // Whole nodes go without being expanded.
                left -= node.len();
                self.nodes.remove(n);
                continue;
            }
            let entries = node.entries_mut();
            match end {
                End::Left => {
                    let off = entries.offset_of(left);
                    entries.remove(0, off, left);
                }
                End::Right => {
                    let off = entries.offset_of(entries.len() - left);
                    let used = entries.bytes();
                    entries.remove(off, used, left);
                }
            }
            touched = n..n + 1;
            break;
        }
        self.settle(touched, nodes_before, options);
    }

    /// Node and position in it of element `index` (which is below `len()`), walking from the
    /// nearer end. Counting needs no node expanded.
    fn locate(&self, index: usize) -> (usize, usize) {
        if index < self.len() / 2 {
            let mut rest = index;
            for n in 0..self.nodes.len() {
                let count = self.nodes.get(n).len();
                if rest < count {
                    return (n, rest);
                }
                rest -= count;
            }
        } else {
            let mut rest = self.len() - 1 - index;
            for n in (0..self.nodes.len()).rev() {
                let count = self.nodes.get(n).len();
                if rest < count {
                    return (n, count - 1 - rest);
                }
                rest -= count;
            }
        }
        (0, 0)
    }

    /// Resolves a client index (negative counts from the tail).
    fn index(&self, index: i64) -> Option<usize> {
        let len = self.len() as i64;
        let i = if index < 0 { index + len } else { index };
        (0..len).contains(&i).then_some(i as usize)
    }

    /// Element `index` (negative counts from the tail).
    pub fn get(&self, index: i64) -> Option<Bytes> {
        let (n, e) = self.locate(self.index(index)?);
        self.nodes.get(n).view().get(e).map(|e| e.to_bytes())
    }

    /// Replaces element `index`; false when out of range.
    pub fn set(&mut self, index: i64, value: &[u8], options: ListOptions) -> bool {
        let Some(i) = self.index(index) else {
            return false;
        };
        let (n, e) = self.locate(i);
        let nodes_before = self.nodes.len();
        let entries = self.nodes.get_mut(n).entries_mut();
        let off = entries.offset_of(e);
        let Some((_, next)) = entries.next(off) else {
            return false;
        };
        entries.replace(off, next, &Encoded::new(value));
        let touched = self.fix_node(n, options.fill);
        self.settle(touched, nodes_before, options);
        true
    }

    /// Inserts `value` before (or `after`) the first element equal to `pivot`; false when
    /// there is none.
    pub fn insert_at_pivot(
        &mut self,
        pivot: &[u8],
        after: bool,
        value: &[u8],
        options: ListOptions,
    ) -> bool {
        let pivot = Encoded::new(pivot);
        let found = (0..self.nodes.len()).find_map(|n| {
            let node = self.nodes.get(n).view();
            let mut off = 0;
            while let Some((e, next)) = node.next(off) {
                if pivot.matches(e) {
                    return Some((n, if after { next } else { off }));
                }
                off = next;
            }
            None
        });
        let Some((n, off)) = found else {
            return false;
        };
        let nodes_before = self.nodes.len();
        self.nodes
            .get_mut(n)
            .entries_mut()
            .insert(off, &Encoded::new(value));
        self.nodes.add_elements(1);
        let touched = self.fix_node(n, options.fill);
        self.settle(touched, nodes_before, options);
        true
    }

    /// Removes elements equal to `value`: the first `count` from the head when `count > 0`,
    /// the last `-count` when negative, all when 0. Returns how many it removed.
    pub fn remove_matching(&mut self, value: &[u8], count: i64, options: ListOptions) -> usize {
        let target = Encoded::new(value);
        let limit = match count {
            0 => usize::MAX,
            c => usize::try_from(c.unsigned_abs()).unwrap_or(usize::MAX),
        };
        let nodes_before = self.nodes.len();
        let mut removed = 0;
        if count >= 0 {
            let mut n = 0;
            while n < self.nodes.len() && removed < limit {
                let node = self.nodes.get_mut(n);
                removed += node.remove_matches(&target, 0, limit - removed);
                if node.is_empty() {
                    self.nodes.remove(n);
                } else {
                    n += 1;
                }
            }
        } else {
            let mut n = self.nodes.len();
            while n > 0 && removed < limit {
                n -= 1;
                let node = self.nodes.get_mut(n);
                let matches = node.count_matches(&target);
                let take = matches.min(limit - removed);
                if take > 0 {
                    removed += node.remove_matches(&target, matches - take, take);
                    if node.is_empty() {
                        self.nodes.remove(n);
                    }
                }
            }
        }
        self.nodes.sub_elements(removed);
        if removed > 0 {
            self.merge_all(options.fill);
            // Edits may be anywhere; the whole pass is no dearer than the scan was.
            self.settle(0..self.nodes.len(), nodes_before, options);
        }
        removed
    }

    /// After node `n` changed in place: splits it while it is over the limits, or merges it
    /// with neighbours it now fits with. Returns the nodes that now hold its entries.
    fn fix_node(&mut self, n: usize, fill: i64) -> Range<usize> {
        let node = self.nodes.get(n);
        if !node_fits(fill, node.bytes(), node.len()) {
            return n..n + self.split_oversized(n, fill);
        }
        if n + 1 < self.nodes.len() && mergeable(fill, node, self.nodes.get(n + 1)) {
            let next = self.nodes.remove(n + 1).into_entries();
            self.nodes.get_mut(n).entries_mut().append(&next);
        }
        if n > 0 && mergeable(fill, self.nodes.get(n - 1), self.nodes.get(n)) {
            let this = self.nodes.remove(n).into_entries();
            self.nodes.get_mut(n - 1).entries_mut().append(&this);
            return n - 1..n;
        }
        n..n + 1
    }

    /// Halves node `n`, and the halves, until every part fits; returns the number of parts.
    fn split_oversized(&mut self, n: usize, fill: i64) -> usize {
        let node = self.nodes.get(n);
        if node_fits(fill, node.bytes(), node.len()) {
            return 1;
        }
        let entries = self.nodes.get_mut(n).entries_mut();
        let half = entries.len() / 2;
        let off = entries.offset_of(half);
        let tail = entries.split_off(off, half);
        self.nodes.insert(n + 1, Node::from(tail));
        let after = self.split_oversized(n + 1, fill);
        self.split_oversized(n, fill) + after
    }

    /// Merges every run of neighbouring nodes that fit together (after removals thinned them).
    fn merge_all(&mut self, fill: i64) {
        let mut n = 0;
        while n + 1 < self.nodes.len() {
            if mergeable(fill, self.nodes.get(n), self.nodes.get(n + 1)) {
                let next = self.nodes.remove(n + 1).into_entries();
                self.nodes.get_mut(n).entries_mut().append(&next);
            } else {
                n += 1;
            }
        }
    }

    /// After an edit that left `nodes_before` nodes as `nodes.len()`: compresses or expands
    /// the nodes whose state may now be wrong, so that the `compress_depth` nodes at each end
    /// are packed and the nodes between them compressed (where that pays). Those are the
    /// `touched` nodes (changed or created; an edit left them packed) and the nodes whose
    /// distance from an end may have crossed the depth: the edit added or removed nodes, so
    /// the others moved by at most that many places. With depth 0 nothing is compressed;
    /// nodes compressed under an earlier depth stay so until an edit touches them.
    fn settle(&mut self, touched: Range<usize>, nodes_before: usize, options: ListOptions) {
        let depth = options.compress_depth;
        if depth == 0 {
            return;
        }
        let n = self.nodes.len();
        let moved = n.abs_diff(nodes_before);
        let near_head = depth.saturating_sub(moved)..depth + moved;
        let near_tail = n.saturating_sub(depth + moved)..(n + moved).saturating_sub(depth);
        for range in [touched, near_head, near_tail] {
            for i in range.start..range.end.min(n) {
                let interior = i >= depth && i + depth < n;
                let node = self.nodes.get_mut(i);
                if interior {
                    node.compress();
                } else {
                    node.decompress();
                }
            }
        }
    }

    /// The nodes, head to tail (serialisation writes one listpack per node, as Redis's
    /// quicklist does).
    pub fn nodes(&self) -> impl ExactSizeIterator<Item = &Node> + '_ {
        (0..self.nodes.len()).map(move |i| self.nodes.get(i))
    }

    /// The elements, head to tail.
    pub fn iter(&self) -> Cursor<'_> {
        self.iter_from(0)
    }

    /// The elements from `index` to the tail.
    pub fn iter_from(&self, index: usize) -> Cursor<'_> {
        self.cursor(index, true)
    }

    /// The elements, tail to head.
    pub fn iter_rev(&self) -> Cursor<'_> {
        self.cursor(self.len().wrapping_sub(1), false)
    }

    /// A cursor at element `index` reading towards the tail or the head; one that reads
    /// nothing when `index` is out of range.
    fn cursor(&self, index: usize, towards_tail: bool) -> Cursor<'_> {
        if index >= self.len() {
            return Cursor {
                nodes: &self.nodes,
                node: if towards_tail { self.nodes.len() } else { 0 },
                entries: Cow::Owned(Listpack::default()),
                off: 0,
                towards_tail,
            };
        }
        let (n, e) = self.locate(index);
        let entries = self.nodes.get(n).view();
        let off = entries.offset_of(if towards_tail { e } else { e + 1 });
        Cursor {
            nodes: &self.nodes,
            node: n,
            entries,
            off,
            towards_tail,
        }
    }
}

/// Reads a list's entries one by one, towards the tail or the head. Entering a compressed
/// node expands it into the cursor's own copy, so an entry is lent to a closure
/// ([`Cursor::next_with`]) or, as an iterator, copied out.
pub struct Cursor<'a> {
    nodes: &'a NodeRing,
    /// The node being read.
    node: usize,
    entries: Cow<'a, Listpack>,
    /// Towards the tail: where the next entry starts; towards the head: where it ends.
    off: usize,
    towards_tail: bool,
}

impl Cursor<'_> {
    /// Moves to the next entry and returns what `read` makes of it; None past the end.
    pub fn next_with<R>(&mut self, read: impl FnOnce(Entry<'_>) -> R) -> Option<R> {
        loop {
            let step = if self.towards_tail {
                self.entries.next(self.off)
            } else {
                self.entries.prev(self.off)
            };
            if let Some((entry, off)) = step {
                self.off = off;
                return Some(read(entry));
            }
            let next = if self.towards_tail {
                self.node + 1
            } else {
                self.node.checked_sub(1)?
            };
            if next >= self.nodes.len() {
                return None;
            }
            self.node = next;
            self.entries = self.nodes.get(next).view();
            self.off = if self.towards_tail {
                0
            } else {
                self.entries.bytes()
            };
        }
    }
}

impl Iterator for Cursor<'_> {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        self.next_with(|e| e.to_bytes())
    }
}

// ---------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------

const COUNT_NOT_POSITIVE: &str = "ERR value is out of range, must be positive";
const NUMKEYS: &str = "ERR numkeys should be greater than 0";
const MPOP_COUNT: &str = "ERR count should be greater than 0";
const RANK_ZERO: &str = "ERR RANK can't be zero: use 1 to start from the first match, 2 from \
                         the second ... or use negative to start from the end of the list";
const RANK_RANGE: &str =
    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807";
const LPOS_COUNT: &str = "ERR COUNT can't be negative";
const LPOS_MAXLEN: &str = "ERR MAXLEN can't be negative";

/// 2^63: timeouts in milliseconds must stay below it.
const I64_LIMIT: f64 = 9_223_372_036_854_775_808.0;

/// Longest timeout string Redis reads (`MAX_LONG_DOUBLE_CHARS`).
const MAX_TIMEOUT_CHARS: usize = 5 * 1024;

fn options(ctx: &Ctx<'_>) -> ListOptions {
    ListOptions::of(&ctx.shard.config)
}

/// The list at `key` for reading: Ok(None) if absent, WRONGTYPE if another type.
fn read_list<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<Option<&'c ListValue>, Reply> {
    match ctx.lookup_read(key) {
        None => Ok(None),
        Some(Value::List(l)) => Ok(Some(l)),
        Some(_) => Err(error::wrongtype()),
    }
}

/// The list at `key` for writing: Ok(None) if absent, WRONGTYPE if another type.
fn write_list<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<Option<&'c mut ListValue>, Reply> {
    match ctx.lookup_write(key) {
        None => Ok(None),
        Some(Value::List(l)) => Ok(Some(l)),
        Some(_) => Err(error::wrongtype()),
    }
}

fn parse_int(arg: &[u8]) -> Result<i64, Reply> {
    num::parse_i64(arg).ok_or_else(error::not_integer)
}

/// An integer in `min..`, or the error `msg` (Redis reports a non-integer with it too).
fn parse_at_least(arg: &[u8], min: i64, msg: &'static str) -> Result<usize, Reply> {
    num::parse_i64(arg)
        .filter(|&n| n >= min)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or(Reply::err(msg))
}

fn parse_end(arg: &[u8]) -> Result<End, Reply> {
    if arg.eq_ignore_ascii_case(b"left") {
        Ok(End::Left)
    } else if arg.eq_ignore_ascii_case(b"right") {
        Ok(End::Right)
    } else {
        Err(error::syntax())
    }
}

/// Parses a blocking command's timeout in seconds as Redis does (a float, rounded up to
/// whole milliseconds). Returns the timeout in seconds, 0 meaning "forever".
pub fn parse_timeout(arg: &[u8]) -> Result<f64, Reply> {
    let secs = (arg.len() < MAX_TIMEOUT_CHARS)
        // Redis reads timeouts as long doubles: `1e400` is a (huge) number there.
        .then(|| num::parse_f64_unranged(arg))
        .flatten()
        .ok_or(Reply::err(error::TIMEOUT_NOT_FLOAT))?;
    let ms = (secs * 1000.0).ceil();
    // Redis converts to a 64-bit integer: beyond its range the result is negative.
    if !(0.0..I64_LIMIT).contains(&ms) {
        return Err(Reply::err(error::TIMEOUT_NEGATIVE));
    }
    Ok(ms.abs() / 1000.0)
}

/// How a blocking list command waits: for a list, `timeout` long, served by running the
/// command again.
const fn waits(timeout: fn(&[Bytes]) -> Result<Wait, Reply>, on_timeout: TimeoutReply) -> Blocking {
    Blocking {
        timeout,
        ready: holds::<b'l'>,
        serve: None,
        prepare: None,
        on_timeout,
    }
}

/// Whether `key` holds a list (`T` = b'l') or a sorted set (b'z'): a waiting pop is served
/// only from a value of its type; another type keeps it waiting, as in Redis.
pub fn holds<const T: u8>(ctx: &mut Ctx<'_>, _args: &[Bytes], key: &[u8]) -> bool {
    let wanted = if T == b'l' { "list" } else { "zset" };
    let (db, now) = (ctx.db, ctx.now_ms);
    ctx.shard.type_of(db, key, now) == Some(wanted)
}

/// The timeout of a blocking command (list or sorted set) at argument `I` (negative: from the
/// end), in seconds as Redis parses it; 0 waits forever.
pub fn timeout_arg<const I: isize>(args: &[Bytes]) -> Result<Wait, Reply> {
    let at = if I < 0 {
        args.len().checked_sub(I.unsigned_abs())
    } else {
        Some(I as usize)
    };
    let arg = at.and_then(|i| args.get(i)).ok_or_else(error::syntax)?;
    let secs = parse_timeout(arg)?;
    Ok(if secs > 0.0 {
        Wait::For(std::time::Duration::from_secs_f64(secs))
    } else {
        Wait::Forever
    })
}

/// Pushes `values` at `end` of the list at `key`, creating the list unless `only_existing`.
/// Returns the new length, None when the key was absent and not created.
fn push_values(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    end: End,
    values: &[Bytes],
    only_existing: bool,
) -> Result<Option<usize>, Reply> {
    let options = options(ctx);
    let len = match write_list(ctx, key)? {
        Some(list) => {
            for v in values {
                list.push(end, v, options);
            }
            list.len()
        }
        None if only_existing => return Ok(None),
        None => {
            let mut list = ListValue::new();
            for v in values {
                list.push(end, v, options);
            }
            let len = list.len();
            ctx.set(key, Value::List(list));
            // `set` counted one write.
            ctx.dirty(values.len() as u64 - 1);
            ctx.notify(LIST, end.push_event(), key);
            return Ok(Some(len));
        }
    };
    ctx.dirty(values.len() as u64);
    ctx.signal_ready(key);
    ctx.notify(LIST, end.push_event(), key);
    Ok(Some(len))
}

fn push_command(ctx: &mut Ctx<'_>, args: &[Bytes], end: End, only_existing: bool) -> Reply {
    match push_values(ctx, &args[1], end, &args[2..], only_existing) {
        Ok(len) => Reply::Int(len.unwrap_or(0) as i64),
        Err(e) => e,
    }
}

/// LPUSH key element [element ...]
pub fn lpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    push_command(ctx, args, End::Left, false)
}

/// RPUSH key element [element ...]
pub fn rpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    push_command(ctx, args, End::Right, false)
}

/// LPUSHX key element [element ...]
pub fn lpushx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    push_command(ctx, args, End::Left, true)
}

/// RPUSHX key element [element ...]
pub fn rpushx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    push_command(ctx, args, End::Right, true)
}

/// LINSERT key BEFORE|AFTER pivot element
pub fn linsert(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let after = if args[2].eq_ignore_ascii_case(b"after") {
        true
    } else if args[2].eq_ignore_ascii_case(b"before") {
        false
    } else {
        return error::syntax();
    };
    let options = options(ctx);
    let len = match tri!(write_list(ctx, &args[1])) {
        None => return Reply::Int(0),
        Some(list) => {
            if !list.insert_at_pivot(&args[3], after, &args[4], options) {
                return Reply::Int(-1);
            }
            list.len()
        }
    };
    ctx.dirty(1);
    ctx.signal_ready(&args[1]);
    ctx.notify(LIST, "linsert", &args[1]);
    Reply::Int(len as i64)
}

/// LLEN key
pub fn llen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let list = tri!(read_list(ctx, &args[1]));
    Reply::Int(list.map_or(0, ListValue::len) as i64)
}

/// LINDEX key index
pub fn lindex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let Some(list) = tri!(read_list(ctx, &args[1])) else {
        return Reply::Nil;
    };
    let index = tri!(parse_int(&args[2]));
    list.get(index).into()
}

/// LSET key index element
pub fn lset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let options = options(ctx);
    let Some(list) = tri!(write_list(ctx, &args[1])) else {
        return Reply::err(error::NO_SUCH_KEY);
    };
    let index = tri!(parse_int(&args[2]));
    if !list.set(index, &args[3], options) {
        return Reply::err(error::OUT_OF_RANGE);
    }
    ctx.dirty(1);
    ctx.notify(LIST, "lset", &args[1]);
    Reply::Ok
}

/// The inclusive range LRANGE and LTRIM select from `start` and `stop` (negative counting
/// from the tail, clamped to the list), or None when it is empty.
fn index_range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 { start + len } else { start }.max(0);
    let stop = if stop < 0 { stop + len } else { stop };
    if start > stop || start >= len {
        return None;
    }
    Some((start as usize, stop.min(len - 1) as usize))
}

/// LRANGE key start stop
pub fn lrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let start = tri!(parse_int(&args[2]));
    let stop = tri!(parse_int(&args[3]));
    let Some(list) = tri!(read_list(ctx, &args[1])) else {
        return Reply::Array(Vec::new());
    };
    let Some((start, stop)) = index_range(start, stop, list.len()) else {
        return Reply::Array(Vec::new());
    };
    Reply::Array(
        list.iter_from(start)
            .take(stop - start + 1)
            .map(Reply::Bulk)
            .collect(),
    )
}

/// LTRIM key start stop
pub fn ltrim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let start = tri!(parse_int(&args[2]));
    let stop = tri!(parse_int(&args[3]));
    let options = options(ctx);
    let Some(list) = tri!(write_list(ctx, &args[1])) else {
        return Reply::Ok;
    };
    let len = list.len();
    let (front, back) = match index_range(start, stop, len) {
        Some((start, stop)) => (start, len - 1 - stop),
        None => (len, 0),
    };
    list.drop_elements(End::Left, front, options);
    list.drop_elements(End::Right, back, options);
    let empty = list.is_empty();
    ctx.notify(LIST, "ltrim", &args[1]);
    ctx.delete_if_empty(&args[1], empty);
    ctx.dirty((front + back) as u64);
    Reply::Ok
}

/// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]
pub fn lpos(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let mut rank: i64 = 1;
    let mut count: Option<usize> = None;
    let mut maxlen = 0usize;
    let mut i = 3;
    while i < args.len() {
        let opt = &args[i];
        let value = match args.get(i + 1) {
            Some(v) => v,
            None => return error::syntax(),
        };
        if opt.eq_ignore_ascii_case(b"rank") {
            rank = tri!(parse_int(value));
            if rank == 0 {
                return Reply::err(RANK_ZERO);
            }
            // -LONG_MIN does not exist: newer Redis rejects it, 7.0 misbehaves.
            if rank == i64::MIN {
                return Reply::err(RANK_RANGE);
            }
        } else if opt.eq_ignore_ascii_case(b"count") {
            count = Some(tri!(parse_at_least(value, 0, LPOS_COUNT)));
        } else if opt.eq_ignore_ascii_case(b"maxlen") {
            maxlen = tri!(parse_at_least(value, 0, LPOS_MAXLEN));
        } else {
            return error::syntax();
        }
        i += 2;
    }
    let Some(list) = tri!(read_list(ctx, &args[1])) else {
        return match count {
            Some(_) => Reply::Array(Vec::new()),
            None => Reply::Nil,
        };
    };
    let target = Encoded::new(&args[2]);
    // Matches before the rank-th one are skipped; COUNT 0 means all the others.
    let skip = usize::try_from(rank.unsigned_abs() - 1).unwrap_or(usize::MAX);
    let want = match count {
        None => 1,
        Some(0) => usize::MAX,
        Some(n) => n,
    };
    let scan = if maxlen == 0 { usize::MAX } else { maxlen };
    let found = if rank > 0 {
        matching_positions(list.iter(), scan, &target, skip, want)
    } else {
        let last = list.len() - 1;
        let mut found = matching_positions(list.iter_rev(), scan, &target, skip, want);
        found.iter_mut().for_each(|p| *p = last - *p);
        found
    };
    match count {
        Some(_) => Reply::Array(found.into_iter().map(|p| Reply::Int(p as i64)).collect()),
        None => found.first().map_or(Reply::Nil, |&p| Reply::Int(p as i64)),
    }
}

/// Positions (in reading order, among the first `scan` entries) of the matches of `target`
/// after the first `skip`, at most `want` of them.
fn matching_positions(
    mut entries: Cursor<'_>,
    scan: usize,
    target: &Encoded<'_>,
    mut skip: usize,
    want: usize,
) -> Vec<usize> {
    let mut found = Vec::new();
    for position in 0..scan {
        if found.len() >= want {
            break;
        }
        match entries.next_with(|e| target.matches(e)) {
            None => break,
            Some(false) => {}
            Some(true) if skip > 0 => skip -= 1,
            Some(true) => found.push(position),
        }
    }
    found
}

/// LREM key count element
pub fn lrem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let count = tri!(parse_int(&args[2]));
    let options = options(ctx);
    let Some(list) = tri!(write_list(ctx, &args[1])) else {
        return Reply::Int(0);
    };
    let removed = list.remove_matching(&args[3], count, options);
    let empty = list.is_empty();
    if removed > 0 {
        ctx.notify(LIST, "lrem", &args[1]);
    }
    ctx.delete_if_empty(&args[1], empty);
    ctx.dirty(removed as u64);
    Reply::Int(removed as i64)
}

/// Pops from `end` of the list at `key`: one element as a bulk reply, or with `count` up
/// to that many as an array. Ok(None) when there is no list to pop from.
fn pop_key(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    end: End,
    count: Option<usize>,
) -> Result<Option<Reply>, Reply> {
    let options = options(ctx);
    let Some(list) = write_list(ctx, key)? else {
        return Ok(None);
    };
    let (reply, popped) = match count {
        None => match list.pop(end, options) {
            Some(v) => (Reply::Bulk(v), 1),
            None => return Ok(None),
        },
        Some(n) => {
            let items: Vec<Reply> = list
                .pop_many(end, n, options)
                .into_iter()
                .map(Reply::Bulk)
                .collect();
            let popped = items.len();
            (Reply::Array(items), popped)
        }
    };
    let empty = list.is_empty();
    if popped > 0 {
        ctx.notify(LIST, end.pop_event(), key);
    }
    ctx.delete_if_empty(key, empty);
    ctx.dirty(popped as u64);
    Ok(Some(reply))
}

fn pop_command(ctx: &mut Ctx<'_>, args: &[Bytes], end: End) -> Reply {
    if args.len() > 3 {
        return error::wrong_arity(match end {
            End::Left => "lpop",
            End::Right => "rpop",
        });
    }
    let count = match args.get(2) {
        Some(arg) => Some(tri!(parse_at_least(arg, 0, COUNT_NOT_POSITIVE))),
        None => None,
    };
    match tri!(pop_key(ctx, &args[1], end, count)) {
        Some(reply) => reply,
        None if count.is_some() => Reply::NilArray,
        None => Reply::Nil,
    }
}

/// LPOP key [count]
pub fn lpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    pop_command(ctx, args, End::Left)
}

/// RPOP key [count]
pub fn rpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    pop_command(ctx, args, End::Right)
}

/// Pops from the first of `keys` that holds a list: `[key, element]`, or with `count`
/// `[key, [elements]]`; the null array when none does.
fn pop_first(ctx: &mut Ctx<'_>, keys: &[Bytes], end: End, count: Option<usize>) -> Reply {
    for key in keys {
        if let Some(popped) = tri!(pop_key(ctx, key, end, count)) {
            return Reply::Array(vec![Reply::bulk(key), popped]);
        }
    }
    Reply::NilArray
}

/// Parses `numkeys key... LEFT|RIGHT [COUNT count]` starting at `args[at]`.
fn parse_mpop(args: &[Bytes], at: usize) -> Result<(&[Bytes], End, usize), Reply> {
    let numkeys = parse_at_least(&args[at], 1, NUMKEYS)?;
    let first = at + 1;
    let end_at = first
        .checked_add(numkeys)
        .filter(|&i| i < args.len())
        .ok_or_else(error::syntax)?;
    let end = parse_end(&args[end_at])?;
    let mut count = None;
    let mut i = end_at + 1;
    while i < args.len() {
        match args.get(i + 1) {
            Some(value) if count.is_none() && args[i].eq_ignore_ascii_case(b"count") => {
                count = Some(parse_at_least(value, 1, MPOP_COUNT)?);
                i += 2;
            }
            _ => return Err(error::syntax()),
        }
    }
    Ok((&args[first..end_at], end, count.unwrap_or(1)))
}

/// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]
pub fn lmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (keys, end, count) = tri!(parse_mpop(args, 1));
    pop_first(ctx, keys, end, Some(count))
}

/// Moves an element from `from` of `src` to `to` of `dst`; replies with it, or nil when
/// `src` does not exist. The destination's type is checked before anything moves.
fn move_element(ctx: &mut Ctx<'_>, src: &[u8], dst: &[u8], from: End, to: End) -> Reply {
    if tri!(write_list(ctx, src)).is_none() {
        return Reply::Nil;
    }
    if src != dst {
        tri!(write_list(ctx, dst));
    }
    let options = options(ctx);
    let Some(value) = tri!(write_list(ctx, src)).and_then(|l| l.pop(from, options)) else {
        return Reply::Nil;
    };
    tri!(push_values(
        ctx,
        dst,
        to,
        std::slice::from_ref(&value),
        false
    ));
    // Redis reports the push on the destination, then the pop on the source.
    ctx.notify(LIST, from.pop_event(), src);
    let empty = matches!(ctx.lookup_write(src), Some(Value::List(l)) if l.is_empty());
    ctx.delete_if_empty(src, empty);
    Reply::Bulk(value)
}

/// LMOVE source destination LEFT|RIGHT LEFT|RIGHT
pub fn lmove(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let from = tri!(parse_end(&args[3]));
    let to = tri!(parse_end(&args[4]));
    move_element(ctx, &args[1], &args[2], from, to)
}

/// RPOPLPUSH source destination
pub fn rpoplpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    move_element(ctx, &args[1], &args[2], End::Right, End::Left)
}

fn blocking_pop(ctx: &mut Ctx<'_>, args: &[Bytes], end: End) -> Reply {
    let timeout_at = args.len() - 1;
    tri!(parse_timeout(&args[timeout_at]));
    pop_first(ctx, &args[1..timeout_at], end, None)
}

/// BLPOP key [key ...] timeout
pub fn blpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    blocking_pop(ctx, args, End::Left)
}

/// BRPOP key [key ...] timeout
pub fn brpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    blocking_pop(ctx, args, End::Right)
}

/// BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]
pub fn blmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (keys, end, count) = tri!(parse_mpop(args, 2));
    tri!(parse_timeout(&args[1]));
    pop_first(ctx, keys, end, Some(count))
}

/// BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout
pub fn blmove(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let from = tri!(parse_end(&args[3]));
    let to = tri!(parse_end(&args[4]));
    tri!(parse_timeout(&args[5]));
    move_element(ctx, &args[1], &args[2], from, to)
}

/// BRPOPLPUSH source destination timeout
pub fn brpoplpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    tri!(parse_timeout(&args[3]));
    move_element(ctx, &args[1], &args[2], End::Right, End::Left)
}

#[cfg(test)]
mod tests;
