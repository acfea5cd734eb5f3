//! List commands (Redis's `t_list.c`) and the list value (Redis's quicklist).
//!
//! A list is a ring of packed nodes ([`crate::listpack`]), each holding up to
//! `list-max-listpack-size` worth of entries, so that a list of 20 short strings costs one
//! small buffer while pushes and pops at either end stay O(1) and LINDEX / LSET skip whole
//! nodes. Blocking pops (BLPOP…) make one non-blocking attempt here; the runtime does the
//! waiting when they answer with a null reply.

use bytes::Bytes;
use shardis_resp::Reply;

use crate::command::table::Registration;
use crate::error;
use crate::listpack::{Encoded, Entry, Listpack, NodeRing};
use crate::num;
use crate::shard::Ctx;
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
    Registration::shard("blpop", blpop),
    Registration::shard("brpop", brpop),
    Registration::shard("blmpop", blmpop),
    Registration::shard("blmove", blmove),
    Registration::shard("brpoplpush", brpoplpush),
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

fn mergeable(fill: i64, a: &Listpack, b: &Listpack) -> bool {
    node_fits(fill, a.bytes() + b.bytes(), a.len() + b.len())
}

/// A list value. Redis 7.0 reports every list as `quicklist`. `fill` arguments are the
/// shard's `list-max-listpack-size`, passed in rather than stored to keep the value at 32
/// bytes.
#[derive(Clone, Default)]
pub struct ListValue {
    nodes: NodeRing,
    len: usize,
}

impl std::fmt::Debug for ListValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|e| e.to_bytes()))
            .finish()
    }
}

impl ListValue {
    pub fn new() -> Self {
        ListValue::default()
    }

    /// A list of `values`, first to last.
    pub fn from_values<I, V>(values: I, fill: i64) -> Self
    where
        I: IntoIterator<Item = V>,
        V: AsRef<[u8]>,
    {
        let mut list = ListValue::new();
        for v in values {
            list.push(End::Right, v.as_ref(), fill);
        }
        list
    }

    pub fn encoding(&self) -> &'static str {
        "quicklist"
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap bytes held by the list (for MEMORY USAGE).
    pub fn allocated_bytes(&self) -> usize {
        self.nodes.capacity_bytes() + self.nodes.iter().map(Listpack::capacity).sum::<usize>()
    }

    /// Index of the node at `end` (the list is not empty).
    fn end_node(&self, end: End) -> usize {
        match end {
            End::Left => 0,
            End::Right => self.nodes.len() - 1,
        }
    }

    pub fn push(&mut self, end: End, value: &[u8], fill: i64) {
        let value = Encoded::new(value);
        self.len += 1;
        if !self.nodes.is_empty() {
            let node = self.nodes.get_mut(self.end_node(end));
            if node_fits(fill, node.bytes() + value.entry_len(), node.len() + 1) {
                let off = match end {
                    End::Left => 0,
                    End::Right => node.bytes(),
                };
                node.insert(off, &value);
                return;
            }
        }
        let node = Listpack::with(&value);
        match end {
            End::Left => self.nodes.push_front(node),
            End::Right => self.nodes.push_back(node),
        }
    }

    pub fn pop(&mut self, end: End) -> Option<Bytes> {
        if self.is_empty() {
            return None;
        }
        let n = self.end_node(end);
        let node = self.nodes.get_mut(n);
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
        if node.is_empty() {
            self.nodes.remove(n);
        }
        self.len -= 1;
        Some(value)
    }

    /// Pops up to `count` elements from `end`, in popping order.
    pub fn pop_many(&mut self, end: End, count: usize) -> Vec<Bytes> {
        let count = count.min(self.len);
        let items = match end {
            End::Left => self.iter().take(count).map(|e| e.to_bytes()).collect(),
            End::Right => self.iter_rev().take(count).map(|e| e.to_bytes()).collect(),
        };
        self.drop_elements(end, count);
        items
    }

    /// Removes `count` elements from `end`.
    pub fn drop_elements(&mut self, end: End, count: usize) {
        let mut left = count.min(self.len);
        self.len -= left;
        while left > 0 {
            let n = self.end_node(end);
            let node = self.nodes.get_mut(n);
            if node.len() <= left {
                left -= node.len();
                self.nodes.remove(n);
                continue;
            }
            match end {
                End::Left => {
                    let off = node.offset_of(left);
                    node.remove(0, off, left);
                }
                End::Right => {
                    let off = node.offset_of(node.len() - left);
                    let used = node.bytes();
                    node.remove(off, used, left);
                }
            }
            break;
        }
    }

    /// Node and position in it of element `index` (which is below `len()`), walking from the
    /// nearer end.
    fn locate(&self, index: usize) -> (usize, usize) {
        if index < self.len / 2 {
            let mut rest = index;
            for n in 0..self.nodes.len() {
                let count = self.nodes.get(n).len();
                if rest < count {
                    return (n, rest);
                }
                rest -= count;
            }
        } else {
            let mut rest = self.len - 1 - index;
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
        let len = self.len as i64;
        let i = if index < 0 { index + len } else { index };
        (0..len).contains(&i).then_some(i as usize)
    }

    /// Element `index` (negative counts from the tail).
    pub fn get(&self, index: i64) -> Option<Bytes> {
        let (n, e) = self.locate(self.index(index)?);
        self.nodes.get(n).get(e).map(|e| e.to_bytes())
    }

    /// Replaces element `index`; false when out of range.
    pub fn set(&mut self, index: i64, value: &[u8], fill: i64) -> bool {
        let Some(i) = self.index(index) else {
            return false;
        };
        let (n, e) = self.locate(i);
        let node = self.nodes.get_mut(n);
        let off = node.offset_of(e);
        let Some((_, next)) = node.next(off) else {
            return false;
        };
        node.replace(off, next, &Encoded::new(value));
        self.fix_node(n, fill);
        true
    }

    /// Inserts `value` before (or `after`) the first element equal to `pivot`; false when
    /// there is none.
    pub fn insert_at_pivot(&mut self, pivot: &[u8], after: bool, value: &[u8], fill: i64) -> bool {
        let pivot = Encoded::new(pivot);
        let found = (0..self.nodes.len()).find_map(|n| {
            let node = self.nodes.get(n);
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
        self.nodes.get_mut(n).insert(off, &Encoded::new(value));
        self.len += 1;
        self.fix_node(n, fill);
        true
    }

    /// Removes elements equal to `value`: the first `count` from the head when `count > 0`,
    /// the last `-count` when negative, all when 0. Returns how many it removed.
    pub fn remove_matching(&mut self, value: &[u8], count: i64, fill: i64) -> usize {
        let target = Encoded::new(value);
        let limit = match count {
            0 => usize::MAX,
            c => usize::try_from(c.unsigned_abs()).unwrap_or(usize::MAX),
        };
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
        self.len -= removed;
        if removed > 0 {
            self.merge_all(fill);
        }
        removed
    }

    /// After node `n` changed in place: splits it while it is over the limits, or merges it
    /// with neighbours it now fits with.
    fn fix_node(&mut self, n: usize, fill: i64) {
        let node = self.nodes.get(n);
        if node_fits(fill, node.bytes(), node.len()) {
            if n + 1 < self.nodes.len() && mergeable(fill, node, self.nodes.get(n + 1)) {
                let next = self.nodes.remove(n + 1);
                self.nodes.get_mut(n).append(&next);
            }
            if n > 0 && mergeable(fill, self.nodes.get(n - 1), self.nodes.get(n)) {
                let this = self.nodes.remove(n);
                self.nodes.get_mut(n - 1).append(&this);
            }
        } else {
            self.split_oversized(n, fill);
        }
    }

    /// Halves node `n`, and the halves, until every part fits.
    fn split_oversized(&mut self, n: usize, fill: i64) {
        let node = self.nodes.get(n);
        if node_fits(fill, node.bytes(), node.len()) {
            return;
        }
        let half = node.len() / 2;
        let off = node.offset_of(half);
        let tail = self.nodes.get_mut(n).split_off(off, half);
        self.nodes.insert(n + 1, tail);
        self.split_oversized(n + 1, fill);
        self.split_oversized(n, fill);
    }

    /// Merges every run of neighbouring nodes that fit together (after removals thinned them).
    fn merge_all(&mut self, fill: i64) {
        let mut n = 0;
        while n + 1 < self.nodes.len() {
            if mergeable(fill, self.nodes.get(n), self.nodes.get(n + 1)) {
                let next = self.nodes.remove(n + 1);
                self.nodes.get_mut(n).append(&next);
            } else {
                n += 1;
            }
        }
    }

    /// The elements, head to tail.
    pub fn iter(&self) -> Iter<'_> {
        self.iter_from(0)
    }

    /// The elements from `index` to the tail.
    pub fn iter_from(&self, index: usize) -> Iter<'_> {
        if index >= self.len {
            return Iter {
                nodes: &self.nodes,
                node: self.nodes.len(),
                off: 0,
            };
        }
        let (n, e) = self.locate(index);
        Iter {
            nodes: &self.nodes,
            node: n,
            off: self.nodes.get(n).offset_of(e),
        }
    }

    /// The elements, tail to head.
    pub fn iter_rev(&self) -> RevIter<'_> {
        match self.len.checked_sub(1) {
            Some(last) => self.iter_rev_from(last),
            None => RevIter {
                nodes: &self.nodes,
                node: 0,
                end: 0,
            },
        }
    }

    /// The elements from `index` (below `len()`) back to the head.
    fn iter_rev_from(&self, index: usize) -> RevIter<'_> {
        let (n, e) = self.locate(index);
        RevIter {
            nodes: &self.nodes,
            node: n + 1,
            end: self.nodes.get(n).offset_of(e + 1),
        }
    }
}

/// Head-to-tail iterator over a list's entries.
pub struct Iter<'a> {
    nodes: &'a NodeRing,
    node: usize,
    off: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        let nodes = self.nodes;
        while self.node < nodes.len() {
            if let Some((e, next)) = nodes.get(self.node).next(self.off) {
                self.off = next;
                return Some(e);
            }
            self.node += 1;
            self.off = 0;
        }
        None
    }
}

/// Tail-to-head iterator over a list's entries.
pub struct RevIter<'a> {
    nodes: &'a NodeRing,
    /// One past the current node; 0 when done.
    node: usize,
    end: usize,
}

impl<'a> Iterator for RevIter<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        let nodes = self.nodes;
        while self.node > 0 {
            if let Some((e, start)) = nodes.get(self.node - 1).prev(self.end) {
                self.end = start;
                return Some(e);
            }
            self.node -= 1;
            if self.node > 0 {
                self.end = nodes.get(self.node - 1).bytes();
            }
        }
        None
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

/// Longest timeout string Redis reads (`MAX_LONG_DOUBLE_CHARS`).
const MAX_TIMEOUT_CHARS: usize = 5 * 1024;

fn fill(ctx: &Ctx<'_>) -> i64 {
    ctx.shard.config.list_max_listpack_size
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
        .then(|| num::parse_f64(arg))
        .flatten()
        .ok_or(Reply::err(error::TIMEOUT_NOT_FLOAT))?;
    let ms = (secs * 1000.0).ceil();
    // Redis converts to a 64-bit integer: beyond its range the result is negative.
    if ms < 0.0 || ms >= 9.223_372_036_854_775_807e18 {
        return Err(Reply::err(error::TIMEOUT_NEGATIVE));
    }
    Ok(ms.abs() / 1000.0)
}

/// Where the timeout argument of a blocking list command is.
pub fn blocking_timeout_index(args: &[Bytes]) -> usize {
    let name = args.first().map(|a| a.to_ascii_lowercase()).unwrap_or_default();
    match &name[..] {
        b"blmpop" => 1,
        b"brpoplpush" => 3,
        b"blmove" => 5,
        _ => args.len().saturating_sub(1),
    }
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
    let fill = fill(ctx);
    let len = match write_list(ctx, key)? {
        Some(list) => {
            for v in values {
                list.push(end, v, fill);
            }
            list.len()
        }
        None if only_existing => return Ok(None),
        None => {
            let mut list = ListValue::new();
            for v in values {
                list.push(end, v, fill);
            }
            let len = list.len();
            ctx.set(key, Value::List(list));
            // `set` counted one write.
            ctx.dirty(values.len() as u64 - 1);
            return Ok(Some(len));
        }
    };
    ctx.dirty(values.len() as u64);
    ctx.signal_ready(key);
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
    let fill = fill(ctx);
    let len = match tri!(write_list(ctx, &args[1])) {
        None => return Reply::Int(0),
        Some(list) => {
            if !list.insert_at_pivot(&args[3], after, &args[4], fill) {
                return Reply::Int(-1);
            }
            list.len()
        }
    };
    ctx.dirty(1);
    ctx.signal_ready(&args[1]);
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
    let fill = fill(ctx);
    let Some(list) = tri!(write_list(ctx, &args[1])) else {
        return Reply::err(error::NO_SUCH_KEY);
    };
    let index = tri!(parse_int(&args[2]));
    if !list.set(index, &args[3], fill) {
        return Reply::err(error::OUT_OF_RANGE);
    }
    ctx.dirty(1);
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
            .map(|e| Reply::Bulk(e.to_bytes()))
            .collect(),
    )
}

/// LTRIM key start stop
pub fn ltrim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let start = tri!(parse_int(&args[2]));
    let stop = tri!(parse_int(&args[3]));
    let Some(list) = tri!(write_list(ctx, &args[1])) else {
        return Reply::Ok;
    };
    let len = list.len();
    let (front, back) = match index_range(start, stop, len) {
        Some((start, stop)) => (start, len - 1 - stop),
        None => (len, 0),
    };
    list.drop_elements(End::Left, front);
    list.drop_elements(End::Right, back);
    let empty = list.is_empty();
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
        matching_positions(list.iter().take(scan), &target, skip, want)
    } else {
        let last = list.len() - 1;
        let mut found = matching_positions(list.iter_rev().take(scan), &target, skip, want);
        found.iter_mut().for_each(|p| *p = last - *p);
        found
    };
    match count {
        Some(_) => Reply::Array(found.into_iter().map(|p| Reply::Int(p as i64)).collect()),
        None => found.first().map_or(Reply::Nil, |&p| Reply::Int(p as i64)),
    }
}

/// Positions (in iteration order) of the matches of `target` after the first `skip`, at most
/// `want` of them.
fn matching_positions<'a>(
    entries: impl Iterator<Item = Entry<'a>>,
    target: &Encoded<'_>,
    skip: usize,
    want: usize,
) -> Vec<usize> {
    entries
        .enumerate()
        .filter(|(_, e)| target.matches(*e))
        .skip(skip)
        .take(want)
        .map(|(p, _)| p)
        .collect()
}

/// LREM key count element
pub fn lrem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let count = tri!(parse_int(&args[2]));
    let fill = fill(ctx);
    let Some(list) = tri!(write_list(ctx, &args[1])) else {
        return Reply::Int(0);
    };
    let removed = list.remove_matching(&args[3], count, fill);
    let empty = list.is_empty();
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
    let Some(list) = write_list(ctx, key)? else {
        return Ok(None);
    };
    let (reply, popped) = match count {
        None => match list.pop(end) {
            Some(v) => (Reply::Bulk(v), 1),
            None => return Ok(None),
        },
        Some(n) => {
            let items: Vec<Reply> = list.pop_many(end, n).into_iter().map(Reply::Bulk).collect();
            let popped = items.len();
            (Reply::Array(items), popped)
        }
    };
    let empty = list.is_empty();
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
    let Some(value) = tri!(write_list(ctx, src)).and_then(|l| l.pop(from)) else {
        return Reply::Nil;
    };
    tri!(push_values(ctx, dst, to, std::slice::from_ref(&value), false));
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
