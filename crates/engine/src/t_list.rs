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
use crate::command::{Blocking, TimeoutReply};
use crate::error;
use crate::listpack::{Encoded, Entry, Listpack, NodeRing};
use crate::notify::LIST;
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

/// 2^63: timeouts in milliseconds must stay below it.
const I64_LIMIT: f64 = 9_223_372_036_854_775_808.0;

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
    if !(0.0..I64_LIMIT).contains(&ms) {
        return Err(Reply::err(error::TIMEOUT_NEGATIVE));
    }
    Ok(ms.abs() / 1000.0)
}

/// How a blocking list command waits: for a list, `timeout` long.
const fn waits(
    timeout: fn(&[Bytes]) -> Result<Option<std::time::Duration>, Reply>,
    on_timeout: TimeoutReply,
) -> Blocking {
    Blocking {
        serves: "list",
        timeout,
        on_timeout,
    }
}

/// The timeout of a blocking command (list or sorted set) at argument `I` (negative: from the
/// end), in seconds as Redis parses it; None for 0 (wait forever).
pub fn timeout_arg<const I: isize>(args: &[Bytes]) -> Result<Option<std::time::Duration>, Reply> {
    let at = if I < 0 {
        args.len().checked_sub(I.unsigned_abs())
    } else {
        Some(I as usize)
    };
    let arg = at.and_then(|i| args.get(i)).ok_or_else(error::syntax)?;
    let secs = parse_timeout(arg)?;
    Ok((secs > 0.0).then(|| std::time::Duration::from_secs_f64(secs)))
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
    let fill = fill(ctx);
    let Some(list) = tri!(write_list(ctx, &args[1])) else {
        return Reply::err(error::NO_SUCH_KEY);
    };
    let index = tri!(parse_int(&args[2]));
    if !list.set(index, &args[3], fill) {
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
    let Some(value) = tri!(write_list(ctx, src)).and_then(|l| l.pop(from)) else {
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
mod tests {
    use super::*;
    use crate::testing::{arr, bulk, bulks, err, int, ok, TestShard};
    use proptest::prelude::*;
    use std::collections::VecDeque;

    const WRONGTYPE: &str = error::WRONGTYPE;

    fn shard_with_fill(fill: i64) -> TestShard {
        let mut t = TestShard::new();
        t.shard.config.list_max_listpack_size = fill;
        t
    }

    fn range(t: &mut TestShard, key: &str) -> Reply {
        t.run(&["lrange", key, "0", "-1"])
    }

    fn list<'a>(t: &'a mut TestShard, key: &str) -> &'a ListValue {
        match t.shard.dbs[0].peek(key.as_bytes()).map(|e| &e.value) {
            Some(Value::List(l)) => l,
            other => panic!("no list at {key}: {other:?}"),
        }
    }

    /// Every node non-empty and within its limits, counts adding up to the length.
    fn check_invariants(l: &ListValue, fill: i64) {
        let mut total = 0;
        for node in l.nodes.iter() {
            assert!(!node.is_empty());
            assert!(node_fits(fill, node.bytes(), node.len()));
            assert_eq!(node.iter().count(), node.len());
            total += node.len();
        }
        assert_eq!(total, l.len());
    }

    #[test]
    fn value_is_compact() {
        assert_eq!(std::mem::size_of::<ListValue>(), 32);
        let l = ListValue::from_values((0..20).map(|i| format!("item:{i:05}")), -2);
        assert_eq!(l.nodes.len(), 1);
        // 20 entries of 12 bytes each, with bounded slack, plus one 24-byte ring slot.
        assert!(
            l.allocated_bytes() <= 24 + 20 * 12 * 5 / 4,
            "{}",
            l.allocated_bytes()
        );
        assert_eq!(l.encoding(), "quicklist");
        assert_eq!(format!("{l:?}").matches("item:").count(), 20);
    }

    #[test]
    fn push_len_index_pop() {
        let mut t = TestShard::new();
        assert_eq!(t.run(&["lpush", "l", "aa"]), int(1));
        assert_eq!(t.run(&["rpush", "l", "bb"]), int(2));
        assert_eq!(t.run(&["rpush", "l", "cc"]), int(3));
        assert_eq!(t.run(&["llen", "l"]), int(3));
        assert_eq!(t.run(&["lindex", "l", "0"]), bulk("aa"));
        assert_eq!(t.run(&["lindex", "l", "2"]), bulk("cc"));
        assert_eq!(t.run(&["lindex", "l", "-1"]), bulk("cc"));
        assert_eq!(t.run(&["lindex", "l", "-3"]), bulk("aa"));
        assert_eq!(t.run(&["lindex", "l", "3"]), Reply::Nil);
        assert_eq!(t.run(&["lindex", "l", "-4"]), Reply::Nil);
        assert_eq!(t.run(&["lindex", "l", "x"]), err(error::NOT_INTEGER));
        assert_eq!(t.run(&["lindex", "nokey", "x"]), Reply::Nil);
        assert_eq!(t.run(&["lindex", "nokey", "10"]), Reply::Nil);
        assert_eq!(t.run(&["llen", "nokey"]), int(0));
        assert_eq!(t.run(&["rpop", "l"]), bulk("cc"));
        assert_eq!(t.run(&["lpop", "l"]), bulk("aa"));
        assert_eq!(t.run(&["lpop", "l"]), bulk("bb"));
        assert!(!t.shard.dbs[0].contains(b"l", t.now_ms));
        assert_eq!(t.run(&["lpop", "l"]), Reply::Nil);
    }

    #[test]
    fn variadic_push_order() {
        let mut t = TestShard::new();
        assert_eq!(t.run(&["lpush", "l", "a", "b", "c", "d"]), int(4));
        assert_eq!(t.run(&["rpush", "l", "0", "1", "2", "3"]), int(8));
        assert_eq!(
            range(&mut t, "l"),
            bulks(&["d", "c", "b", "a", "0", "1", "2", "3"])
        );
        assert_eq!(t.shard.dirty, 8);
    }

    #[test]
    fn pushx_needs_an_existing_list() {
        let mut t = TestShard::new();
        assert_eq!(t.run(&["lpushx", "x", "a"]), int(0));
        assert_eq!(t.run(&["rpushx", "x", "a"]), int(0));
        assert_eq!(t.run(&["llen", "x"]), int(0));
        t.run(&["rpush", "x", "b", "c"]);
        assert_eq!(t.run(&["rpushx", "x", "d"]), int(3));
        assert_eq!(t.run(&["lpushx", "x", "a"]), int(4));
        assert_eq!(t.run(&["rpushx", "x", "42", "x"]), int(6));
        assert_eq!(t.run(&["lpushx", "x", "y3", "y2", "y1"]), int(9));
        assert_eq!(
            range(&mut t, "x"),
            bulks(&["y1", "y2", "y3", "a", "b", "c", "d", "42", "x"])
        );
    }

    #[test]
    fn every_command_rejects_other_types() {
        let mut t = TestShard::new();
        t.run(&["set", "s", "x"]);
        t.run(&["rpush", "l", "a"]);
        let cases: &[&[&str]] = &[
            &["llen", "s"],
            &["lindex", "s", "0"],
            &["lindex", "s", "notanumber"],
            &["lpush", "s", "a"],
            &["rpush", "s", "a"],
            &["lpushx", "s", "a"],
            &["rpushx", "s", "a"],
            &["linsert", "s", "before", "a", "b"],
            &["lset", "s", "0", "a"],
            &["lrange", "s", "0", "-1"],
            &["ltrim", "s", "0", "-1"],
            &["lpos", "s", "a"],
            &["lrem", "s", "0", "a"],
            &["lpop", "s"],
            &["rpop", "s", "0"],
            &["lmpop", "2", "nokey", "s", "left"],
            &["lmove", "s", "l", "left", "right"],
            &["lmove", "l", "s", "left", "right"],
            &["rpoplpush", "s", "l"],
            &["rpoplpush", "l", "s"],
            &["blpop", "nokey", "s", "0"],
            &["brpop", "s", "0"],
            &["blmpop", "0", "2", "nokey", "s", "left", "count", "1"],
            &["blmove", "s", "l", "left", "left", "0"],
            &["blmove", "l", "s", "left", "left", "0"],
            &["brpoplpush", "s", "l", "0"],
        ];
        for c in cases {
            assert_eq!(t.run(c), err(WRONGTYPE), "{c:?}");
        }
        assert_eq!(t.run(&["get", "s"]), bulk("x"));
        assert_eq!(range(&mut t, "l"), bulks(&["a"]));
    }

    #[test]
    fn pop_with_count() {
        let mut t = TestShard::new();
        assert_eq!(
            t.run(&["lpush", "c", "aa", "bb", "cc", "dd", "ee", "ff", "gg"]),
            int(7)
        );
        assert_eq!(t.run(&["lpop", "c", "1"]), bulks(&["gg"]));
        assert_eq!(t.run(&["lpop", "c", "2"]), bulks(&["ff", "ee"]));
        assert_eq!(t.run(&["rpop", "c", "2"]), bulks(&["aa", "bb"]));
        assert_eq!(t.run(&["rpop", "c", "1"]), bulks(&["cc"]));
        assert_eq!(t.run(&["lpop", "c", "0"]), arr(vec![]));
        assert_eq!(t.run(&["rpop", "c", "123"]), bulks(&["dd"]));
        assert!(!t.shard.dbs[0].contains(b"c", t.now_ms));
        for bad in ["-123", "x", "1.5"] {
            assert_eq!(t.run(&["lpop", "nokey", bad]), err(COUNT_NOT_POSITIVE));
        }
        assert_eq!(
            t.run(&["lpop", "k", "1", "1"]),
            err("ERR wrong number of arguments for 'lpop' command")
        );
        assert_eq!(
            t.run(&["rpop", "k", "2", "2"]),
            err("ERR wrong number of arguments for 'rpop' command")
        );
        // A missing key: nil without count, the null array with one (even 0).
        assert_eq!(t.run(&["lpop", "nokey"]), Reply::Nil);
        assert_eq!(t.run(&["rpop", "nokey"]), Reply::Nil);
        assert_eq!(t.run(&["lpop", "nokey", "0"]), Reply::NilArray);
        assert_eq!(t.run(&["rpop", "nokey", "1"]), Reply::NilArray);
        t.run(&["lpush", "z", "zero"]);
        assert_eq!(t.run(&["lpop", "z", "0"]), arr(vec![]));
        assert_eq!(t.run(&["rpop", "z", "0"]), arr(vec![]));
        assert_eq!(t.run(&["llen", "z"]), int(1));
    }

    #[test]
    fn lrange_rules() {
        let mut t = TestShard::new();
        let big = "x".repeat(500);
        t.run(&[
            "rpush", "l", &big, "1", "2", "3", "4", "5", "6", "7", "8", "9",
        ]);
        let digits = |v: &[&str]| bulks(v);
        assert_eq!(
            t.run(&["lrange", "l", "1", "-2"]),
            digits(&["1", "2", "3", "4", "5", "6", "7", "8"])
        );
        assert_eq!(
            t.run(&["lrange", "l", "-3", "-1"]),
            digits(&["7", "8", "9"])
        );
        assert_eq!(t.run(&["lrange", "l", "4", "4"]), digits(&["4"]));
        assert_eq!(t.run(&["lrange", "l", "6", "2"]), arr(vec![]));
        assert_eq!(t.run(&["lrange", "l", "-1", "-2"]), arr(vec![]));
        assert_eq!(t.run(&["lrange", "l", "10", "20"]), arr(vec![]));
        t.shard.dbs[0].remove(b"l");
        t.run(&["rpush", "l", &big, "1", "2", "3"]);
        assert_eq!(
            t.run(&["lrange", "l", "-1000", "1000"]),
            bulks(&[&big, "1", "2", "3"])
        );
        assert_eq!(t.run(&["lrange", "l", "0", "-4"]), bulks(&[&big]));
        assert_eq!(t.run(&["lrange", "l", "0", "-5"]), arr(vec![]));
        let extremes = ["-9223372036854775808", "9223372036854775807"];
        assert_eq!(
            t.run(&["lrange", "l", extremes[0], extremes[1]]),
            bulks(&[&big, "1", "2", "3"])
        );
        assert_eq!(t.run(&["lrange", "nokey", "0", "1"]), arr(vec![]));
        assert_eq!(
            t.run(&["lrange", "nokey", "a", "1"]),
            err(error::NOT_INTEGER)
        );
        assert_eq!(t.run(&["lrange", "l", "0", "1.0"]), err(error::NOT_INTEGER));
    }

    fn trimmed(t: &mut TestShard, start: &str, stop: &str) -> Reply {
        t.shard.dbs[0].remove(b"l");
        t.run(&["rpush", "l", "1", "2", "3", "4", "large"]);
        assert_eq!(t.run(&["ltrim", "l", start, stop]), ok());
        range(t, "l")
    }

    #[test]
    fn ltrim_rules() {
        let mut t = shard_with_fill(2);
        let cases: &[(&str, &str, &[&str])] = &[
            ("0", "0", &["1"]),
            ("0", "1", &["1", "2"]),
            ("0", "2", &["1", "2", "3"]),
            ("1", "2", &["2", "3"]),
            ("1", "-1", &["2", "3", "4", "large"]),
            ("1", "-2", &["2", "3", "4"]),
            ("-2", "-1", &["4", "large"]),
            ("-1", "-1", &["large"]),
            ("-5", "-1", &["1", "2", "3", "4", "large"]),
            ("-10", "10", &["1", "2", "3", "4", "large"]),
            ("0", "5", &["1", "2", "3", "4", "large"]),
            ("0", "-5", &["1"]),
            ("0", "-6", &[]),
            ("3", "1", &[]),
        ];
        for (start, stop, want) in cases {
            assert_eq!(trimmed(&mut t, start, stop), bulks(want), "{start} {stop}");
        }
        assert!(!t.shard.dbs[0].contains(b"l", t.now_ms));
        assert_eq!(t.run(&["ltrim", "nokey", "0", "1"]), ok());
        assert_eq!(
            t.run(&["ltrim", "nokey", "x", "1"]),
            err(error::NOT_INTEGER)
        );
        assert_eq!(t.run(&["ltrim", "nokey", "0", ""]), err(error::NOT_INTEGER));
    }

    #[test]
    fn lset_rules() {
        let mut t = TestShard::new();
        let big = "y".repeat(300);
        t.run(&["rpush", "l", "99", "98", &big, "96", "95"]);
        assert_eq!(t.run(&["lset", "l", "1", "foo"]), ok());
        assert_eq!(t.run(&["lset", "l", "-1", "bar"]), ok());
        assert_eq!(range(&mut t, "l"), bulks(&["99", "foo", &big, "96", "bar"]));
        assert_eq!(t.run(&["lset", "l", "10", "foo"]), err(error::OUT_OF_RANGE));
        assert_eq!(t.run(&["lset", "l", "-6", "foo"]), err(error::OUT_OF_RANGE));
        assert_eq!(t.run(&["lset", "l", "x", "foo"]), err(error::NOT_INTEGER));
        assert_eq!(
            t.run(&["lset", "nokey", "10", "foo"]),
            err(error::NO_SUCH_KEY)
        );
        assert_eq!(
            t.run(&["lset", "nokey", "x", "foo"]),
            err(error::NO_SUCH_KEY)
        );
        assert_eq!(t.run(&["lset", "l", "2", "7"]), ok());
        assert_eq!(t.run(&["lindex", "l", "2"]), bulk("7"));
    }

    #[test]
    fn linsert_rules() {
        let mut t = TestShard::new();
        let big = "z".repeat(400);
        t.run(&["rpush", "l", "a", &big, "c", "d"]);
        assert_eq!(t.run(&["linsert", "l", "before", "c", "zz"]), int(5));
        assert_eq!(range(&mut t, "l"), bulks(&["a", &big, "zz", "c", "d"]));
        assert_eq!(t.run(&["linsert", "l", "AFTER", "c", "yy"]), int(6));
        assert_eq!(t.run(&["linsert", "l", "after", "d", "dd"]), int(7));
        assert_eq!(t.run(&["linsert", "l", "after", "bad", "ddd"]), int(-1));
        assert_eq!(t.run(&["linsert", "l", "Before", "a", "aa"]), int(8));
        assert_eq!(t.run(&["linsert", "l", "before", "bad", "aaa"]), int(-1));
        assert_eq!(
            range(&mut t, "l"),
            bulks(&["aa", "a", &big, "zz", "c", "yy", "d", "dd"])
        );
        assert_eq!(t.run(&["linsert", "l", "before", "aa", "42"]), int(9));
        assert_eq!(t.run(&["lrange", "l", "0", "0"]), bulks(&["42"]));
        assert_eq!(t.run(&["linsert", "l", "after", "42", "-1"]), int(10));
        assert_eq!(t.run(&["lindex", "l", "1"]), bulk("-1"));
        assert_eq!(
            t.run(&["linsert", "l", "aft3r", "aa", "42"]),
            err(error::SYNTAX)
        );
        assert_eq!(t.run(&["linsert", "nokey", "before", "a", "b"]), int(0));
        assert_eq!(
            t.run(&["linsert", "nokey", "middle", "a", "b"]),
            err(error::SYNTAX)
        );
        assert!(!t.shard.dbs[0].contains(b"nokey", t.now_ms));
    }

    #[test]
    fn lrem_rules() {
        let mut t = TestShard::new();
        let e = "e".repeat(200);
        let items = [
            "foo", "bar", "foobar", "foobared", "zap", "bar", "test", "foo",
        ];
        let mut args = vec!["rpush", "l", &e];
        args.extend(items);
        t.run(&args);
        assert_eq!(t.run(&["lrem", "l", "0", "bar"]), int(2));
        assert_eq!(
            range(&mut t, "l"),
            bulks(&[&e, "foo", "foobar", "foobared", "zap", "test", "foo"])
        );
        assert_eq!(t.run(&["lrem", "l", "1", "foo"]), int(1));
        assert_eq!(t.run(&["lrem", "l", "1", "nosuchelement"]), int(0));
        assert_eq!(
            range(&mut t, "l"),
            bulks(&[&e, "foobar", "foobared", "zap", "test", "foo"])
        );
        t.shard.dbs[0].remove(b"l");
        let mut args = vec!["rpush", "l", &e];
        args.extend([
            "foo", "bar", "foobar", "foobared", "zap", "bar", "test", "foo", "foo",
        ]);
        t.run(&args);
        assert_eq!(t.run(&["lrem", "l", "-1", "bar"]), int(1));
        assert_eq!(
            range(&mut t, "l"),
            bulks(&[&e, "foo", "bar", "foobar", "foobared", "zap", "test", "foo", "foo"])
        );
        assert_eq!(t.run(&["lrem", "l", "-2", "foo"]), int(2));
        assert_eq!(
            range(&mut t, "l"),
            bulks(&[&e, "foo", "bar", "foobar", "foobared", "zap", "test"])
        );
        t.run(&["rpush", "o", &e, "1", "2", "3"]);
        assert_eq!(t.run(&["lrem", "o", "1", "2"]), int(1));
        assert_eq!(t.run(&["llen", "o"]), int(3));
        assert_eq!(t.run(&["lrem", "o", "-9223372036854775808", "1"]), int(1));
        assert_eq!(t.run(&["lrem", "nokey", "0", "a"]), int(0));
        assert_eq!(t.run(&["lrem", "nokey", "a", "a"]), err(error::NOT_INTEGER));
        t.run(&["rpush", "same", "x", "x", "x"]);
        assert_eq!(t.run(&["lrem", "same", "0", "x"]), int(3));
        assert!(!t.shard.dbs[0].contains(b"same", t.now_ms));
    }

    #[test]
    fn lpos_options() {
        let mut t = TestShard::new();
        t.run(&["rpush", "l", "a", "b", "c", "1", "2", "3", "c", "c"]);
        let lpos = |t: &mut TestShard, extra: &[&str]| {
            let mut args = vec!["lpos", "l"];
            args.extend(extra);
            t.run(&args)
        };
        let ints = |v: &[i64]| arr(v.iter().map(|&n| int(n)).collect());
        assert_eq!(lpos(&mut t, &["a"]), int(0));
        assert_eq!(lpos(&mut t, &["c"]), int(2));
        assert_eq!(lpos(&mut t, &["1"]), int(3));
        assert_eq!(lpos(&mut t, &["c", "RANK", "1"]), int(2));
        assert_eq!(lpos(&mut t, &["c", "rank", "2"]), int(6));
        assert_eq!(lpos(&mut t, &["c", "RANK", "4"]), Reply::Nil);
        assert_eq!(lpos(&mut t, &["c", "RANK", "-1"]), int(7));
        assert_eq!(lpos(&mut t, &["c", "RANK", "-2"]), int(6));
        assert_eq!(lpos(&mut t, &["c", "RANK", "0"]), err(RANK_ZERO));
        assert_eq!(
            lpos(&mut t, &["c", "RANK", "-9223372036854775808"]),
            err(RANK_RANGE)
        );
        assert_eq!(lpos(&mut t, &["c", "RANK", "x"]), err(error::NOT_INTEGER));
        assert_eq!(lpos(&mut t, &["c", "COUNT", "0"]), ints(&[2, 6, 7]));
        assert_eq!(lpos(&mut t, &["c", "COUNT", "1"]), ints(&[2]));
        assert_eq!(lpos(&mut t, &["c", "COUNT", "2"]), ints(&[2, 6]));
        assert_eq!(lpos(&mut t, &["c", "COUNT", "100"]), ints(&[2, 6, 7]));
        assert_eq!(
            lpos(&mut t, &["c", "COUNT", "0", "RANK", "2"]),
            ints(&[6, 7])
        );
        assert_eq!(
            lpos(&mut t, &["c", "COUNT", "2", "RANK", "-1"]),
            ints(&[7, 6])
        );
        assert_eq!(lpos(&mut t, &["x", "COUNT", "2", "RANK", "-1"]), ints(&[]));
        assert_eq!(lpos(&mut t, &["x", "RANK", "-1"]), Reply::Nil);
        assert_eq!(
            lpos(&mut t, &["a", "COUNT", "0", "MAXLEN", "1"]),
            ints(&[0])
        );
        assert_eq!(lpos(&mut t, &["c", "COUNT", "0", "MAXLEN", "1"]), ints(&[]));
        assert_eq!(
            lpos(&mut t, &["c", "COUNT", "0", "MAXLEN", "3"]),
            ints(&[2])
        );
        assert_eq!(
            lpos(&mut t, &["c", "COUNT", "0", "MAXLEN", "3", "RANK", "-1"]),
            ints(&[7, 6])
        );
        assert_eq!(
            lpos(&mut t, &["c", "COUNT", "0", "MAXLEN", "7", "RANK", "2"]),
            ints(&[6])
        );
        assert_eq!(lpos(&mut t, &["c", "COUNT", "-1"]), err(LPOS_COUNT));
        assert_eq!(lpos(&mut t, &["c", "COUNT", "x"]), err(LPOS_COUNT));
        assert_eq!(lpos(&mut t, &["c", "MAXLEN", "-1"]), err(LPOS_MAXLEN));
        assert_eq!(lpos(&mut t, &["c", "RANK"]), err(error::SYNTAX));
        assert_eq!(lpos(&mut t, &["c", "FOO", "1"]), err(error::SYNTAX));
        assert_eq!(
            t.run(&["lpos", "nokey", "c", "COUNT", "0", "RANK", "2"]),
            ints(&[])
        );
        assert_eq!(t.run(&["lpos", "nokey", "c"]), Reply::Nil);
        assert_eq!(t.run(&["lpos", "nokey", "c", "RANK", "0"]), err(RANK_ZERO));
        t.run(&["lpush", "one", "a"]);
        assert_eq!(
            t.run(&["lpos", "one", "b", "COUNT", "10", "RANK", "5"]),
            ints(&[])
        );
    }

    #[test]
    fn lmpop_arguments() {
        let mut t = TestShard::new();
        let arity = err("ERR wrong number of arguments for 'lmpop' command");
        assert_eq!(t.run(&["lmpop"]), arity);
        assert_eq!(t.run(&["lmpop", "1"]), arity);
        assert_eq!(t.run(&["lmpop", "1", "l"]), arity);
        for bad in ["0", "a", "-1"] {
            assert_eq!(t.run(&["lmpop", bad, "l", "LEFT"]), err(NUMKEYS));
        }
        let syntax: &[&[&str]] = &[
            &["lmpop", "1", "l", "bad_where"],
            &["lmpop", "1", "l", "LEFT", "bar_arg"],
            &["lmpop", "1", "l", "RIGHT", "LEFT"],
            &["lmpop", "1", "l", "COUNT"],
            &["lmpop", "1", "l", "LEFT", "COUNT", "1", "COUNT", "2"],
            &["lmpop", "2", "l", "l2", "bad_arg"],
            &["lmpop", "5", "l", "LEFT"],
            &["lmpop", "9223372036854775807", "l", "LEFT"],
        ];
        for c in syntax {
            assert_eq!(t.run(c), err(error::SYNTAX), "{c:?}");
        }
        for bad in ["0", "a", "-1"] {
            assert_eq!(
                t.run(&["lmpop", "1", "l", "LEFT", "COUNT", bad]),
                err(MPOP_COUNT)
            );
        }
        assert_eq!(
            t.run(&["lmpop", "2", "l", "l2", "RIGHT", "COUNT", "-1"]),
            err(MPOP_COUNT)
        );
    }

    #[test]
    fn lmpop_pops_from_first_non_empty() {
        let mut t = TestShard::new();
        let key_items = |k: &str, v: &[&str]| arr(vec![bulk(k), bulks(v)]);
        t.run(&["rpush", "l", "a", "b", "c", "d", "e", "f"]);
        assert_eq!(
            t.run(&["lmpop", "2", "l", "l", "left", "count", "2"]),
            key_items("l", &["a", "b"])
        );
        assert_eq!(
            t.run(&["lmpop", "2", "l", "l", "right", "count", "2"]),
            key_items("l", &["f", "e"])
        );
        assert_eq!(t.run(&["llen", "l"]), int(2));
        assert_eq!(
            t.run(&["lmpop", "2", "nokey", "l", "left"]),
            key_items("l", &["c"])
        );
        assert_eq!(
            t.run(&["lmpop", "2", "l", "nokey", "right", "count", "10"]),
            key_items("l", &["d"])
        );
        assert!(!t.shard.dbs[0].contains(b"l", t.now_ms));
        assert_eq!(
            t.run(&["lmpop", "2", "l", "nokey", "right"]),
            Reply::NilArray
        );
        assert_eq!(
            t.run(&["lmpop", "1", "nokey", "left", "count", "10"]),
            Reply::NilArray
        );
        t.run(&["rpush", "a", "x"]);
        t.run(&["rpush", "b", "1", "2", "3"]);
        assert_eq!(
            t.run(&["lmpop", "2", "a", "b", "left", "count", "3"]),
            key_items("a", &["x"])
        );
        assert_eq!(
            t.run(&["lmpop", "2", "a", "b", "right", "COUNT", "10"]),
            key_items("b", &["3", "2", "1"])
        );
    }

    #[test]
    fn lmove_and_rpoplpush() {
        let mut t = TestShard::new();
        let big = "q".repeat(300);
        t.run(&["rpush", "s", "a", &big, "c", "d"]);
        assert_eq!(t.run(&["rpoplpush", "s", "d"]), bulk("d"));
        assert_eq!(t.run(&["rpoplpush", "s", "d"]), bulk("c"));
        assert_eq!(range(&mut t, "s"), bulks(&["a", &big]));
        assert_eq!(range(&mut t, "d"), bulks(&["c", "d"]));
        for (from, to) in [
            ("left", "left"),
            ("left", "right"),
            ("right", "left"),
            ("right", "right"),
        ] {
            t.shard.dbs[0].remove(b"s");
            t.shard.dbs[0].remove(b"d");
            let src = if from == "right" {
                ["c", "d", &big, "a"]
            } else {
                ["a", &big, "c", "d"]
            };
            let mut args = vec!["rpush", "s"];
            args.extend(src);
            t.run(&args);
            assert_eq!(t.run(&["lmove", "s", "d", from, to]), bulk("a"));
            assert_eq!(t.run(&["lmove", "s", "d", from, to]), bulk(&big));
            assert_eq!(range(&mut t, "s"), bulks(&["c", "d"]));
            let want = if to == "right" {
                ["a", &big]
            } else {
                [&big[..], "a"]
            };
            assert_eq!(range(&mut t, "d"), bulks(&want));
        }
        // Same list as source and destination: a rotation.
        t.shard.dbs[0].remove(b"m");
        t.run(&["rpush", "m", "a", &big, "c"]);
        assert_eq!(t.run(&["rpoplpush", "m", "m"]), bulk("c"));
        assert_eq!(range(&mut t, "m"), bulks(&["c", "a", &big]));
        assert_eq!(t.run(&["lmove", "m", "m", "left", "right"]), bulk("c"));
        assert_eq!(range(&mut t, "m"), bulks(&["a", &big, "c"]));
        t.run(&["rpush", "one", "x"]);
        assert_eq!(t.run(&["lmove", "one", "one", "LEFT", "RIGHT"]), bulk("x"));
        assert_eq!(range(&mut t, "one"), bulks(&["x"]));
        // Missing source: nil, nothing created.
        assert_eq!(t.run(&["rpoplpush", "nokey", "dst"]), Reply::Nil);
        assert!(!t.shard.dbs[0].contains(b"dst", t.now_ms));
        // Wrong destination type: nothing moves.
        t.run(&["set", "str", "x"]);
        assert_eq!(t.run(&["rpoplpush", "one", "str"]), err(WRONGTYPE));
        assert_eq!(range(&mut t, "one"), bulks(&["x"]));
        assert_eq!(
            t.run(&["lmove", "one", "d", "up", "left"]),
            err(error::SYNTAX)
        );
        assert_eq!(
            t.run(&["lmove", "one", "d", "left", "down"]),
            err(error::SYNTAX)
        );
        // The last element moved away deletes the source.
        assert_eq!(t.run(&["lmove", "one", "new", "left", "left"]), bulk("x"));
        assert!(!t.shard.dbs[0].contains(b"one", t.now_ms));
        assert_eq!(range(&mut t, "new"), bulks(&["x"]));
    }

    #[test]
    fn timeouts_parse_like_redis() {
        assert_eq!(parse_timeout(b"0"), Ok(0.0));
        assert_eq!(parse_timeout(b"1"), Ok(1.0));
        assert_eq!(parse_timeout(b"0.1"), Ok(0.1));
        assert_eq!(parse_timeout(b"0.0001"), Ok(0.001));
        assert_eq!(parse_timeout(b"-0.0001"), Ok(0.0));
        assert_eq!(parse_timeout(b"1e3"), Ok(1000.0));
        let negative = Err(err(error::TIMEOUT_NEGATIVE));
        for bad in ["-1", "-0.002", "inf", "-inf", "1e400", "1e16"] {
            assert_eq!(parse_timeout(bad.as_bytes()), negative, "{bad}");
        }
        let not_float = Err(err(error::TIMEOUT_NOT_FLOAT));
        for bad in ["", "abc", " 1", "1 ", "nan", "1x"] {
            assert_eq!(parse_timeout(bad.as_bytes()), not_float, "{bad}");
        }
        let long = "1".repeat(MAX_TIMEOUT_CHARS);
        assert_eq!(parse_timeout(long.as_bytes()), not_float);
    }

    #[test]
    fn timeouts_are_read_where_the_table_says() {
        let args =
            |v: &[&str]| -> Vec<Bytes> { v.iter().map(|s| Bytes::from(s.to_string())).collect() };
        let secs =
            |r: Result<Option<std::time::Duration>, Reply>| r.map(|d| d.map(|d| d.as_millis()));
        assert_eq!(
            secs(timeout_arg::<-1>(&args(&["BLPOP", "a", "b", "1.5"]))),
            Ok(Some(1500))
        );
        assert_eq!(
            secs(timeout_arg::<-1>(&args(&["brpop", "a", "0"]))),
            Ok(None)
        );
        assert_eq!(
            secs(timeout_arg::<1>(&args(&["BLMPOP", "2", "1", "a", "left"]))),
            Ok(Some(2000))
        );
        assert_eq!(
            secs(timeout_arg::<5>(&args(&[
                "blmove", "a", "b", "left", "left", "x"
            ]))),
            Err(err(error::TIMEOUT_NOT_FLOAT))
        );
        assert!(timeout_arg::<9>(&args(&["blpop", "a", "0"])).is_err());
    }

    #[test]
    fn blocking_pops_attempt_once() {
        let mut t = TestShard::new();
        let big = "w".repeat(300);
        t.run(&["rpush", "blist", "a", "b", &big, "c", "d"]);
        assert_eq!(t.run(&["blpop", "blist", "1"]), bulks(&["blist", "a"]));
        assert_eq!(t.run(&["brpop", "blist", "1"]), bulks(&["blist", "d"]));
        assert_eq!(
            t.run(&["blmpop", "1", "1", "blist", "left", "count", "1"]),
            arr(vec![bulk("blist"), bulks(&["b"])])
        );
        assert_eq!(
            t.run(&["blmpop", "0", "1", "blist", "RIGHT"]),
            arr(vec![bulk("blist"), bulks(&["c"])])
        );
        assert_eq!(t.run(&["llen", "blist"]), int(1));
        // Nothing to pop: the null reply tells the runtime to block.
        assert_eq!(t.run(&["blpop", "nokey", "other", "0"]), Reply::NilArray);
        assert_eq!(t.run(&["brpop", "nokey", "0.001"]), Reply::NilArray);
        assert_eq!(
            t.run(&["blmpop", "0", "2", "nokey", "other", "left", "count", "10"]),
            Reply::NilArray
        );
        // The first non-empty key wins, whatever the order or repetition.
        t.run(&["rpush", "l2", "x", "y"]);
        assert_eq!(
            t.run(&["blpop", "nokey", "l2", "l2", "nokey", "0"]),
            bulks(&["l2", "x"])
        );
        // Errors come first, whatever the keys hold.
        for timeout in ["-1", "abc"] {
            let want = if timeout == "-1" {
                err(error::TIMEOUT_NEGATIVE)
            } else {
                err(error::TIMEOUT_NOT_FLOAT)
            };
            assert_eq!(t.run(&["blpop", "l2", timeout]), want);
            assert_eq!(t.run(&["brpop", "l2", timeout]), want);
            assert_eq!(t.run(&["blmpop", timeout, "1", "l2", "left"]), want);
            assert_eq!(t.run(&["blmove", "l2", "d", "left", "left", timeout]), want);
            assert_eq!(t.run(&["brpoplpush", "l2", "d", timeout]), want);
        }
        assert_eq!(t.run(&["llen", "l2"]), int(1));
        // BLMPOP checks its keys and options before its timeout.
        assert_eq!(t.run(&["blmpop", "x", "0", "l2", "left"]), err(NUMKEYS));
        assert_eq!(t.run(&["blmpop", "x", "1", "l2", "up"]), err(error::SYNTAX));
        assert_eq!(
            t.run(&["blmpop", "x", "1", "l2", "left", "count", "0"]),
            err(MPOP_COUNT)
        );
        assert_eq!(
            t.run(&["blmove", "l2", "d", "up", "left", "x"]),
            err(error::SYNTAX)
        );
    }

    #[test]
    fn blocking_moves() {
        let mut t = TestShard::new();
        t.run(&["rpush", "target", "bar"]);
        t.run(&["rpush", "blist", "a", "b", "c", "d"]);
        assert_eq!(t.run(&["brpoplpush", "blist", "target", "1"]), bulk("d"));
        assert_eq!(range(&mut t, "target"), bulks(&["d", "bar"]));
        assert_eq!(
            t.run(&["blmove", "blist", "target", "left", "right", "0"]),
            bulk("a")
        );
        assert_eq!(range(&mut t, "target"), bulks(&["d", "bar", "a"]));
        assert_eq!(range(&mut t, "blist"), bulks(&["b", "c"]));
        // An empty source blocks even when the destination is not a list (Redis checks the
        // destination only when there is something to move).
        t.run(&["set", "str", "x"]);
        assert_eq!(t.run(&["brpoplpush", "nokey", "str", "0"]), Reply::Nil);
        assert_eq!(
            t.run(&["blmove", "nokey", "str", "left", "left", "0"]),
            Reply::Nil
        );
        assert_eq!(t.run(&["brpoplpush", "blist", "str", "0"]), err(WRONGTYPE));
        assert_eq!(range(&mut t, "blist"), bulks(&["b", "c"]));
    }

    #[test]
    fn pushes_wake_blocked_clients() {
        let mut t = TestShard::new();
        for k in ["a", "b", "c", "d", "e"] {
            t.shard.blocked_keys.insert((0, Bytes::from(k)));
        }
        let ready = |t: &TestShard| -> Vec<Bytes> {
            t.shard.ready_keys.iter().map(|(_, k)| k.clone()).collect()
        };
        t.run(&["rpush", "a", "1"]);
        assert_eq!(ready(&t), vec!["a"]);
        t.shard.ready_keys.clear();
        t.run(&["lpush", "a", "2"]);
        assert_eq!(ready(&t), vec!["a"]);
        t.shard.ready_keys.clear();
        t.run(&["lmove", "a", "b", "left", "left"]);
        t.run(&["rpoplpush", "b", "c"]);
        t.run(&["linsert", "a", "before", "1", "0"]);
        t.run(&["rpushx", "d", "0"]);
        assert_eq!(ready(&t), vec!["b", "c", "a"]);
        t.shard.ready_keys.clear();
        t.run(&["lpop", "a"]);
        t.run(&["lrem", "c", "0", "x"]);
        assert!(ready(&t).is_empty());
    }

    #[test]
    fn binary_and_empty_elements() {
        let mut t = TestShard::new();
        let odd = [
            Bytes::from_static(b"\x00\r\n\xff"),
            Bytes::new(),
            Bytes::from_static(b"-0"),
            Bytes::from_static(b"00"),
            Bytes::from_static(b"9223372036854775808"),
            Bytes::from_static(b"-9223372036854775808"),
        ];
        let mut args = vec![Bytes::from_static(b"rpush"), Bytes::from_static(b"k\x00")];
        args.extend(odd.iter().cloned());
        assert_eq!(t.run_bytes(&args), int(odd.len() as i64));
        let lr = [b"lrange".as_slice(), b"k\x00", b"0", b"-1"].map(Bytes::copy_from_slice);
        assert_eq!(
            t.run_bytes(&lr),
            arr(odd.iter().map(|b| Reply::Bulk(b.clone())).collect())
        );
        for (i, v) in odd.iter().enumerate() {
            let lpos = [b"lpos".as_slice(), b"k\x00", v].map(Bytes::copy_from_slice);
            assert_eq!(t.run_bytes(&lpos), int(i as i64));
        }
        let rem = [b"lrem".as_slice(), b"k\x00", b"0", b""].map(Bytes::copy_from_slice);
        assert_eq!(t.run_bytes(&rem), int(1));
    }

    #[test]
    fn encodings_of_numbers_round_trip() {
        let mut t = TestShard::new();
        let values = [
            "127",
            "32767",
            "2147483647",
            "9223372036854775808",
            "0",
            "12",
            &"x".repeat(31),
            &"x".repeat(8191),
            &"x".repeat(65535),
        ];
        for v in values {
            t.run(&["lpush", "k", v]);
        }
        let mut want: Vec<&str> = values.to_vec();
        want.reverse();
        assert_eq!(range(&mut t, "k"), bulks(&want));
        assert_eq!(t.run(&["lindex", "k", "5"]), bulk("9223372036854775808"));
        assert_eq!(t.run(&["lindex", "k", "-5"]), bulk("0"));
        assert_eq!(t.run(&["lpos", "k", "foo", "rank", "1"]), Reply::Nil);
        assert_eq!(t.run(&["lpos", "k", "foo", "rank", "-1"]), Reply::Nil);
        assert_eq!(t.run(&["lpos", "k", "32767", "rank", "-1"]), int(7));
        check_invariants(list(&mut t, "k"), -2);
    }

    #[test]
    fn node_sizes_follow_the_fill_setting() {
        let mut t = shard_with_fill(1);
        for i in 0..10 {
            t.run(&["rpush", "one", &i.to_string()]);
        }
        assert_eq!(list(&mut t, "one").nodes.len(), 10);
        let mut t = shard_with_fill(5);
        for i in 0..12 {
            t.run(&["lpush", "five", &i.to_string()]);
        }
        assert_eq!(list(&mut t, "five").nodes.len(), 3);
        let mut t = shard_with_fill(-1);
        let value = "v".repeat(1000);
        for _ in 0..9 {
            t.run(&["rpush", "kb", &value]);
        }
        // 4 KiB nodes hold four 1000-byte entries.
        assert_eq!(list(&mut t, "kb").nodes.len(), 3);
        let mut t = shard_with_fill(1000);
        for _ in 0..20 {
            t.run(&["rpush", "safety", &value]);
        }
        // Positive fills are capped at 8 KiB per node.
        assert_eq!(list(&mut t, "safety").nodes.len(), 3);
        check_invariants(list(&mut t, "safety"), 1000);
        let mut t = shard_with_fill(-100);
        t.run(&["rpush", "huge", &"h".repeat(70_000), "a", "b"]);
        assert_eq!(list(&mut t, "huge").nodes.len(), 2);
    }

    #[test]
    fn long_lists_index_consistently() {
        let mut t = shard_with_fill(5);
        for i in 0..500 {
            t.run(&["rpush", "l", &i.to_string()]);
        }
        for i in 0..500 {
            assert_eq!(
                t.run(&["lindex", "l", &i.to_string()]),
                bulk(&i.to_string())
            );
            let back = format!("-{}", i + 1);
            assert_eq!(t.run(&["lindex", "l", &back]), bulk(&(499 - i).to_string()));
        }
        let mut sum = 0i64;
        for _ in 0..250 {
            for cmd in ["lpop", "rpop"] {
                match t.run(&[cmd, "l"]) {
                    Reply::Bulk(b) => {
                        sum += std::str::from_utf8(&b).unwrap().parse::<i64>().unwrap()
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
        assert_eq!(sum, (0..500).sum::<i64>());
        assert!(!t.shard.dbs[0].contains(b"l", t.now_ms));
    }

    #[test]
    fn middle_edits_on_a_long_list() {
        let fill = 4;
        let mut t = shard_with_fill(fill);
        let mut model: VecDeque<String> = (0..200).map(|i| (i % 7).to_string()).collect();
        for v in &model {
            t.run(&["rpush", "l", v]);
        }
        assert_eq!(t.run(&["linsert", "l", "after", "5", "mid"]), int(201));
        model.insert(6, "mid".into());
        assert_eq!(t.run(&["lset", "l", "100", &"big".repeat(1000)]), ok());
        model[100] = "big".repeat(1000);
        assert_eq!(t.run(&["lset", "l", "-50", "x"]), ok());
        let n = model.len();
        model[n - 50] = "x".into();
        assert_eq!(t.run(&["lrem", "l", "-3", "3"]), int(3));
        let mut removed = 0;
        for i in (0..model.len()).rev() {
            if removed < 3 && model[i] == "3" {
                model.remove(i);
                removed += 1;
            }
        }
        assert_eq!(t.run(&["ltrim", "l", "10", "-10"]), ok());
        let n = model.len();
        let model: Vec<String> = model.into_iter().skip(10).take(n - 19).collect();
        let want: Vec<&str> = model.iter().map(String::as_str).collect();
        assert_eq!(range(&mut t, "l"), bulks(&want));
        check_invariants(list(&mut t, "l"), fill);
    }

    #[test]
    fn expired_list_is_replaced_by_push() {
        let mut t = TestShard::new();
        t.run(&["rpush", "l", "old"]);
        t.shard.dbs[0].set_expire(b"l", t.now_ms + 10);
        t.advance(20);
        assert_eq!(t.run(&["rpushx", "l", "x"]), int(0));
        assert_eq!(t.run(&["rpush", "l", "new"]), int(1));
        assert_eq!(range(&mut t, "l"), bulks(&["new"]));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push(End, String),
        Pop(End),
        PopMany(End, usize),
        Insert(String, bool, String),
        Remove(i64, String),
        Trim(i64, i64),
        Set(i64, String),
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => prop::sample::select(vec!["a", "b", "1", "-2", "300", "007", ""]).prop_map(String::from),
            1 => (1usize..3000).prop_map(|n| "x".repeat(n)),
        ]
    }

    fn end() -> impl Strategy<Value = End> {
        prop_oneof![Just(End::Left), Just(End::Right)]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (end(), value()).prop_map(|(e, v)| Op::Push(e, v)),
            2 => end().prop_map(Op::Pop),
            1 => (end(), 0usize..8).prop_map(|(e, n)| Op::PopMany(e, n)),
            2 => (value(), any::<bool>(), value()).prop_map(|(p, a, v)| Op::Insert(p, a, v)),
            1 => (-3i64..4, value()).prop_map(|(c, v)| Op::Remove(c, v)),
            1 => (-40i64..40, -40i64..40).prop_map(|(a, b)| Op::Trim(a, b)),
            2 => (-60i64..60, value()).prop_map(|(i, v)| Op::Set(i, v)),
        ]
    }

    fn model_index(len: usize, index: i64) -> Option<usize> {
        let i = if index < 0 { index + len as i64 } else { index };
        (0..len as i64).contains(&i).then_some(i as usize)
    }

    fn apply(l: &mut ListValue, m: &mut VecDeque<String>, op: &Op, fill: i64) {
        match op {
            Op::Push(e, v) => {
                l.push(*e, v.as_bytes(), fill);
                match e {
                    End::Left => m.push_front(v.clone()),
                    End::Right => m.push_back(v.clone()),
                }
            }
            Op::Pop(e) => {
                let want = match e {
                    End::Left => m.pop_front(),
                    End::Right => m.pop_back(),
                };
                assert_eq!(l.pop(*e), want.map(Bytes::from));
            }
            Op::PopMany(e, n) => {
                let k = (*n).min(m.len());
                let want: Vec<Bytes> = (0..k)
                    .filter_map(|_| match e {
                        End::Left => m.pop_front(),
                        End::Right => m.pop_back(),
                    })
                    .map(Bytes::from)
                    .collect();
                assert_eq!(l.pop_many(*e, *n), want);
            }
            Op::Insert(pivot, after, v) => {
                let found = m.iter().position(|x| x == pivot);
                assert_eq!(
                    l.insert_at_pivot(pivot.as_bytes(), *after, v.as_bytes(), fill),
                    found.is_some()
                );
                if let Some(p) = found {
                    m.insert(if *after { p + 1 } else { p }, v.clone());
                }
            }
            Op::Remove(count, v) => {
                let limit = if *count == 0 {
                    usize::MAX
                } else {
                    count.unsigned_abs() as usize
                };
                let mut positions: Vec<usize> = (0..m.len()).filter(|&i| m[i] == *v).collect();
                if *count < 0 {
                    positions.reverse();
                }
                positions.truncate(limit);
                positions.sort_unstable();
                for &p in positions.iter().rev() {
                    m.remove(p);
                }
                assert_eq!(
                    l.remove_matching(v.as_bytes(), *count, fill),
                    positions.len()
                );
            }
            Op::Trim(start, stop) => {
                let len = m.len();
                let (front, back) = match index_range(*start, *stop, len) {
                    Some((s, e)) => (s, len - 1 - e),
                    None => (len, 0),
                };
                l.drop_elements(End::Left, front);
                l.drop_elements(End::Right, back);
                m.drain(..front);
                let keep = m.len() - back;
                m.truncate(keep);
            }
            Op::Set(index, v) => {
                let i = model_index(m.len(), *index);
                assert_eq!(l.set(*index, v.as_bytes(), fill), i.is_some());
                if let Some(i) = i {
                    m[i] = v.clone();
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn list_matches_a_deque_model(
            fill in prop::sample::select(vec![1i64, 2, 3, 5, -1, -2]),
            ops in prop::collection::vec(op(), 1..120),
        ) {
            let mut l = ListValue::new();
            let mut m: VecDeque<String> = VecDeque::new();
            for op in &ops {
                apply(&mut l, &mut m, op, fill);
                check_invariants(&l, fill);
                let want: Vec<Bytes> = m.iter().cloned().map(Bytes::from).collect();
                let got: Vec<Bytes> = l.iter().map(|e| e.to_bytes()).collect();
                prop_assert_eq!(&got, &want);
                let mut back: Vec<Bytes> = l.iter_rev().map(|e| e.to_bytes()).collect();
                back.reverse();
                prop_assert_eq!(&back, &want);
                for (i, w) in want.iter().enumerate() {
                    prop_assert_eq!(l.get(i as i64), Some(w.clone()));
                    prop_assert_eq!(l.get(i as i64 - want.len() as i64), Some(w.clone()));
                    let from: Vec<Bytes> = l.iter_from(i).take(2).map(|e| e.to_bytes()).collect();
                    prop_assert_eq!(&from[..], &want[i..(i + 2).min(want.len())]);
                }
                prop_assert_eq!(l.get(want.len() as i64), None);
            }
        }
    }

    /// Redis's events for the list commands (pubsub.tcl's "list events test" and t_list.c):
    /// one push event per command, linsert / lset / ltrim / lrem when they change the list,
    /// pops by end, LMOVE's push on the destination before the pop on the source, and del
    /// after the command's event when the list is emptied.
    #[test]
    fn keyspace_events() {
        let mut t = TestShard::new();
        t.notify_all();
        let none = Vec::<String>::new();
        assert_eq!(
            t.events_of(&["lpush", "l", "a", "b"]),
            ["n new 0:l", "l lpush 0:l"]
        );
        assert_eq!(t.events_of(&["rpush", "l", "c"]), ["l rpush 0:l"]);
        assert_eq!(t.events_of(&["lpushx", "l", "z"]), ["l lpush 0:l"]);
        assert_eq!(t.events_of(&["rpushx", "l", "z"]), ["l rpush 0:l"]);
        assert_eq!(t.events_of(&["lpushx", "nokey", "z"]), none);
        assert_eq!(
            t.events_of(&["linsert", "l", "before", "a", "x"]),
            ["l linsert 0:l"]
        );
        assert_eq!(t.events_of(&["linsert", "l", "before", "nope", "x"]), none);
        assert_eq!(t.events_of(&["linsert", "nokey", "after", "a", "x"]), none);
        assert_eq!(t.events_of(&["lset", "l", "0", "y"]), ["l lset 0:l"]);
        assert_eq!(t.events_of(&["lset", "l", "100", "y"]), none);
        assert_eq!(t.events_of(&["lrem", "l", "0", "nope"]), none);
        assert_eq!(t.events_of(&["lrem", "l", "0", "x"]), ["l lrem 0:l"]);
        assert_eq!(t.events_of(&["ltrim", "l", "0", "-1"]), ["l ltrim 0:l"]);
        assert_eq!(t.events_of(&["ltrim", "nokey", "0", "1"]), none);
        assert_eq!(t.events_of(&["lpop", "l"]), ["l lpop 0:l"]);
        assert_eq!(t.events_of(&["rpop", "l", "2"]), ["l rpop 0:l"]);
        assert_eq!(t.events_of(&["lpop", "l", "0"]), none);
        assert_eq!(t.events_of(&["lpop", "nokey"]), none);
        assert_eq!(
            t.events_of(&["ltrim", "l", "5", "1"]),
            ["l ltrim 0:l", "g del 0:l"]
        );

        t.run(&["rpush", "l", "a", "a"]);
        assert_eq!(
            t.events_of(&["lrem", "l", "0", "a"]),
            ["l lrem 0:l", "g del 0:l"]
        );
        t.run(&["rpush", "l", "a"]);
        assert_eq!(
            t.events_of(&["rpop", "l", "5"]),
            ["l rpop 0:l", "g del 0:l"]
        );

        t.run(&["rpush", "src", "a", "b"]);
        assert_eq!(
            t.events_of(&["lmove", "src", "dst", "left", "right"]),
            ["n new 0:dst", "l rpush 0:dst", "l lpop 0:src"]
        );
        assert_eq!(
            t.events_of(&["rpoplpush", "src", "dst"]),
            ["l lpush 0:dst", "l rpop 0:src", "g del 0:src"]
        );
        assert_eq!(
            t.events_of(&["rpoplpush", "dst", "dst"]),
            ["l lpush 0:dst", "l rpop 0:dst"]
        );
        assert_eq!(
            t.events_of(&["lmove", "nokey", "dst", "left", "left"]),
            none
        );
        t.run(&["set", "str", "v"]);
        assert_eq!(t.events_of(&["lmove", "dst", "str", "left", "left"]), none);

        assert_eq!(
            t.events_of(&["lmpop", "2", "nokey", "dst", "right", "count", "5"]),
            ["l rpop 0:dst", "g del 0:dst"]
        );
        t.run(&["rpush", "b", "x", "y"]);
        assert_eq!(t.events_of(&["blpop", "nokey", "b", "0"]), ["l lpop 0:b"]);
        assert_eq!(
            t.events_of(&["blmove", "b", "c", "right", "left", "0"]),
            ["n new 0:c", "l lpush 0:c", "l rpop 0:b", "g del 0:b"]
        );
        assert_eq!(
            t.events_of(&["blmpop", "0", "1", "c", "left"]),
            ["l lpop 0:c", "g del 0:c"]
        );
        assert_eq!(t.events_of(&["brpop", "nokey", "0"]), none);

        for cmd in [
            &["llen", "nokey"][..],
            &["lindex", "nokey", "0"],
            &["lrange", "nokey", "0", "-1"],
            &["lpos", "nokey", "a"],
        ] {
            assert_eq!(t.events_of(cmd), ["m keymiss 0:nokey"], "{cmd:?}");
        }
    }
}
