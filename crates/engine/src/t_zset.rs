//! Sorted set commands (Redis's `t_zset.c`) and the sorted set value.
//!
//! A sorted set is kept as Redis keeps it, in one of two encodings: "listpack", a compact
//! array sorted by (score, member) used while the set is small (`zset-max-listpack-entries`
//! members, each at most `zset-max-listpack-value` bytes), and "skiplist", a member → score
//! map plus an ordered index with rank queries (see [`crate::skiplist`]). A set converts to
//! the large form as it outgrows the small one and never back, except when a command stores a
//! freshly computed result (ZUNIONSTORE, ZRANGESTORE…), which picks the encoding that fits.
//!
//! Every range command turns its range (ranks, scores or lexicographic bounds) into a span of
//! ranks first, then reads, removes or stores that span.

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shardis_resp::Reply;

use crate::command::table::Registration;
use crate::command::{Blocking, TimeoutReply};

/// How BZPOPMIN and BZPOPMAX wait (BZMPOP reads its timeout elsewhere): for a sorted set,
/// served by running the command again.
const ZSET_WAIT_LAST: Blocking = Blocking {
    timeout: crate::t_list::timeout_arg::<-1>,
    ready: crate::t_list::holds::<b'z'>,
    serve: None,
    prepare: None,
    on_timeout: TimeoutReply::NilArray,
};
use crate::dict::Dict;
use crate::error;
use crate::notify::{NEW, ZSET};
use crate::num;
use crate::sample::{self, SampleBudget};
use crate::scan;
use crate::shard::Ctx;
use crate::skiplist::{cmp_entries, Item, Member, Tree};
use crate::t_set::SetValue;
use crate::value::Value;

pub static COMMANDS: &[Registration] = &[
    Registration::shard("zadd", zadd),
    Registration::shard("zincrby", zincrby),
    Registration::shard("zrem", zrem),
    Registration::shard("zcard", zcard),
    Registration::shard("zscore", zscore),
    Registration::shard("zmscore", zmscore),
    Registration::shard("zrank", zrank),
    Registration::shard("zrevrank", zrevrank),
    Registration::shard("zcount", zcount),
    Registration::shard("zlexcount", zlexcount),
    Registration::shard("zrange", zrange),
    Registration::shard("zrevrange", zrevrange),
    Registration::shard("zrangebyscore", zrangebyscore),
    Registration::shard("zrevrangebyscore", zrevrangebyscore),
    Registration::shard("zrangebylex", zrangebylex),
    Registration::shard("zrevrangebylex", zrevrangebylex),
    Registration::shard("zrangestore", zrangestore),
    Registration::shard("zremrangebyrank", zremrangebyrank),
    Registration::shard("zremrangebyscore", zremrangebyscore),
    Registration::shard("zremrangebylex", zremrangebylex),
    Registration::shard("zpopmin", zpopmin),
    Registration::shard("zpopmax", zpopmax),
    Registration::shard("zmpop", zmpop),
    Registration::shard("bzpopmin", bzpopmin).blocking(ZSET_WAIT_LAST),
    Registration::shard("bzpopmax", bzpopmax).blocking(ZSET_WAIT_LAST),
    Registration::shard("bzmpop", bzmpop).blocking(Blocking {
        timeout: crate::t_list::timeout_arg::<1>,
        ..ZSET_WAIT_LAST
    }),
    Registration::shard("zrandmember", zrandmember),
    Registration::shard("zunion", zunion),
    Registration::shard("zinter", zinter),
    Registration::shard("zdiff", zdiff),
    Registration::shard("zunionstore", zunionstore),
    Registration::shard("zinterstore", zinterstore),
    Registration::shard("zdiffstore", zdiffstore),
    Registration::shard("zintercard", zintercard),
    Registration::shard("zscan", zscan),
];

const MIN_MAX_NOT_FLOAT: &str = "ERR min or max is not a float";
const MIN_MAX_NOT_LEX: &str = "ERR min or max not valid string range item";
const NAN_RESULT: &str = "ERR resulting score is not a number (NaN)";

// ---------------------------------------------------------------------------------------------
// The value
// ---------------------------------------------------------------------------------------------

/// The thresholds that decide between the two encodings.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_entries: usize,
    pub max_value: usize,
}

impl Limits {
    pub fn of(ctx: &Ctx<'_>) -> Limits {
        Limits {
            max_entries: ctx.shard.config.zset_max_listpack_entries,
            max_value: ctx.shard.config.zset_max_listpack_value,
        }
    }

    /// True if a set of `len` members, the longest `max_len` bytes, fits the small encoding.
    fn fits(self, len: usize, max_len: usize) -> bool {
        len <= self.max_entries && max_len <= self.max_value
    }
}

/// A sorted set value.
#[derive(Debug, Clone, Default)]
pub struct ZSetValue {
    repr: Repr,
}

#[derive(Debug, Clone)]
enum Repr {
    /// Items sorted by (score, member); members are found by a linear scan.
    Listpack(Vec<Item>),
    Skiplist(Box<Large>),
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Listpack(Vec::new())
    }
}

#[derive(Debug, Clone, Default)]
struct Large {
    scores: Dict<Member, f64>,
    tree: Tree,
}

impl ZSetValue {
    /// An empty set in the small encoding (it converts itself as it grows).
    pub fn new() -> ZSetValue {
        ZSetValue::default()
    }

    /// A set of `items` (distinct members, any order), in the encoding that fits them.
    pub fn from_items(mut items: Vec<Item>, limits: Limits) -> ZSetValue {
        let longest = items.iter().map(|i| i.member.len()).max().unwrap_or(0);
        if limits.fits(items.len(), longest) {
            items.sort_by(|a, b| cmp_entries(a.score, &a.member, b.score, &b.member));
            return ZSetValue {
                repr: Repr::Listpack(items),
            };
        }
        let mut large = Large::default();
        for item in items {
            large.scores.insert(item.member.clone(), item.score);
            large.tree.insert(item);
        }
        ZSetValue {
            repr: Repr::Skiplist(Box::new(large)),
        }
    }

    /// A copy sharing nothing with `self` (members included), in the same encoding.
    pub fn reallocated(&self) -> ZSetValue {
        let copy = |i: &Item| Item::new(i.score, Member::new(&i.member));
        let repr = match &self.repr {
            Repr::Listpack(items) => Repr::Listpack(items.iter().map(copy).collect()),
            Repr::Skiplist(large) => {
                let mut fresh = Large::default();
                fresh.scores.reserve(large.tree.len());
                large.tree.for_range(0, large.tree.len(), &mut |i| {
                    let item = copy(i);
                    fresh.scores.insert(item.member.clone(), item.score);
                    fresh.tree.insert(item);
                });
                Repr::Skiplist(Box::new(fresh))
            }
        };
        ZSetValue { repr }
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self.repr {
            Repr::Listpack(_) => "listpack",
            Repr::Skiplist(_) => "skiplist",
        }
    }

    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Listpack(items) => items.len(),
            Repr::Skiplist(large) => large.tree.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The work of freeing the set: one per member of a skiplist, one for a compact set.
    pub fn free_effort(&self) -> usize {
        match &self.repr {
            Repr::Listpack(_) => 1,
            Repr::Skiplist(large) => large.tree.len(),
        }
    }

    /// Frees up to `max` members (all of a compact set), for freeing a doomed set in steps;
    /// returns the work done.
    pub fn shed(&mut self, max: usize) -> usize {
        match &mut self.repr {
            Repr::Listpack(_) => {
                self.repr = Repr::default();
                1
            }
            Repr::Skiplist(large) => {
                let from_map = large.scores.shed(max, |_, _| {});
                // The tree from its end: no item moves.
                let mut from_tree = 0;
                while from_tree < max
                    && large
                        .tree
                        .remove_at(large.tree.len().wrapping_sub(1))
                        .is_some()
                {
                    from_tree += 1;
                }
                if large.tree.is_empty() && large.scores.is_empty() {
                    self.repr = Repr::default();
                }
                from_map.max(from_tree)
            }
        }
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match &self.repr {
            Repr::Listpack(items) => items.iter().find(|i| &*i.member == member).map(|i| i.score),
            Repr::Skiplist(large) => large.scores.get(member).copied(),
        }
    }

    /// The 0-based ascending rank of `member`.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        match &self.repr {
            Repr::Listpack(items) => items.iter().position(|i| &*i.member == member),
            Repr::Skiplist(large) => {
                let score = *large.scores.get(member)?;
                large.tree.rank(score, member)
            }
        }
    }

    /// The item at a 0-based ascending rank.
    pub fn get(&self, rank: usize) -> Option<&Item> {
        match &self.repr {
            Repr::Listpack(items) => items.get(rank),
            Repr::Skiplist(large) => large.tree.get(rank),
        }
    }

    /// How many leading items satisfy `below`, a predicate true for a prefix of the order.
    pub fn count_while(&self, below: impl Fn(&Item) -> bool) -> usize {
        match &self.repr {
            Repr::Listpack(items) => items.partition_point(below),
            Repr::Skiplist(large) => large.tree.count_while(below),
        }
    }

    /// Calls `f` on the items of ranks `lo..hi` in ascending order.
    pub fn for_range(&self, lo: usize, hi: usize, f: &mut impl FnMut(&Item)) {
        match &self.repr {
            Repr::Listpack(items) => {
                let hi = hi.min(items.len());
                if let Some(slice) = items.get(lo.min(hi)..hi) {
                    slice.iter().for_each(f);
                }
            }
            Repr::Skiplist(large) => large.tree.for_range(lo, hi, f),
        }
    }

    /// Sets the score of `member`, adding it if absent; returns the previous score. Converts
    /// to the large encoding when the set outgrows `limits`.
    pub fn insert(&mut self, member: &[u8], score: f64, limits: Limits) -> Option<f64> {
        if let Repr::Listpack(items) = &mut self.repr {
            if let Some(pos) = items.iter().position(|i| &*i.member == member) {
                let old = items[pos].score;
                if old != score {
                    let mut item = items.remove(pos);
                    item.score = score;
                    let at = items.partition_point(|i| {
                        cmp_entries(i.score, &i.member, score, member).is_lt()
                    });
                    items.insert(at, item);
                }
                return Some(old);
            }
            if limits.fits(items.len() + 1, member.len()) {
                let at = items
                    .partition_point(|i| cmp_entries(i.score, &i.member, score, member).is_lt());
                items.insert(at, Item::new(score, Member::from(member)));
                return None;
            }
            self.convert_to_skiplist();
        }
        let Repr::Skiplist(large) = &mut self.repr else {
            return None;
        };
        match large.scores.get_mut(member) {
            Some(current) => {
                let old = *current;
                if old != score {
                    *current = score;
                    if let Some(mut item) = large.tree.remove(old, member) {
                        item.score = score;
                        large.tree.insert(item);
                    }
                }
                Some(old)
            }
            None => {
                let member: Member = Member::from(member);
                large.scores.insert(member.clone(), score);
                large.tree.insert(Item::new(score, member));
                None
            }
        }
    }

    fn convert_to_skiplist(&mut self) {
        if let Repr::Listpack(items) = &mut self.repr {
            let mut large = Large::default();
            for item in items.drain(..) {
                large.scores.insert(item.member.clone(), item.score);
                large.tree.insert(item);
            }
            self.repr = Repr::Skiplist(Box::new(large));
        }
    }

    /// Removes `member`; returns its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match &mut self.repr {
            Repr::Listpack(items) => {
                let pos = items.iter().position(|i| &*i.member == member)?;
                Some(items.remove(pos).score)
            }
            Repr::Skiplist(large) => {
                let (_, score) = large.scores.remove(member)?;
                large.tree.remove(score, member);
                Some(score)
            }
        }
    }

    /// Removes the items of ranks `lo..hi`; returns how many went.
    pub fn remove_range(&mut self, lo: usize, hi: usize) -> usize {
        let hi = hi.min(self.len());
        if lo >= hi {
            return 0;
        }
        match &mut self.repr {
            Repr::Listpack(items) => {
                items.drain(lo..hi);
            }
            Repr::Skiplist(large) => {
                for _ in lo..hi {
                    if let Some(item) = large.tree.remove_at(lo) {
                        large.scores.remove(&item.member[..]);
                    }
                }
            }
        }
        hi - lo
    }

    /// Removes and returns the lowest (or, with `max`, highest) item.
    pub fn pop(&mut self, max: bool) -> Option<Item> {
        let rank = if max { self.len().checked_sub(1)? } else { 0 };
        match &mut self.repr {
            Repr::Listpack(items) => (rank < items.len()).then(|| items.remove(rank)),
            Repr::Skiplist(large) => {
                let item = large.tree.remove_at(rank)?;
                large.scores.remove(&item.member[..]);
                Some(item)
            }
        }
    }

    /// Heap bytes held by the set (for MEMORY USAGE); a large set's members are measured over
    /// `samples` of them. Each member is one allocation, an 8-byte header and its bytes.
    pub fn allocated_bytes(&self, samples: usize) -> usize {
        let item = std::mem::size_of::<Item>();
        match &self.repr {
            Repr::Listpack(items) => {
                items.capacity() * item + items.iter().map(|i| 8 + i.member.len()).sum::<usize>()
            }
            Repr::Skiplist(large) => {
                std::mem::size_of::<Large>()
                    + large.tree.len() * item
                    + large.scores.allocated_bytes(samples, |m, _| 8 + m.len())
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Access and reply helpers
// ---------------------------------------------------------------------------------------------

fn read<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<Option<&'c ZSetValue>, Reply> {
    match ctx.lookup_read(key) {
        None => Ok(None),
        Some(Value::ZSet(z)) => Ok(Some(z)),
        Some(_) => Err(error::wrongtype()),
    }
}

fn write<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<Option<&'c mut ZSetValue>, Reply> {
    match ctx.lookup_write(key) {
        None => Ok(None),
        Some(Value::ZSet(z)) => Ok(Some(z)),
        Some(_) => Err(error::wrongtype()),
    }
}

fn eq(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

fn parse_int(arg: &[u8]) -> Result<i64, Reply> {
    num::parse_i64(arg).ok_or_else(error::not_integer)
}

/// A long in `min..=max`, with `msg` for both a non-integer and an out-of-range value (Redis's
/// `getRangeLongFromObjectOrReply` with a message).
fn parse_ranged(arg: &[u8], min: i64, max: i64, msg: &'static str) -> Result<i64, Reply> {
    match num::parse_i64(arg) {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(Reply::err(msg)),
    }
}

/// Appends one element of a reply listing members: the member, then its score when asked;
/// RESP3 pairs them in a two-element array.
fn push_entry(out: &mut Vec<Reply>, member: &[u8], score: f64, withscores: bool, resp3: bool) {
    let member = Reply::bulk(member);
    if withscores && resp3 {
        out.push(Reply::Array(vec![member, Reply::Double(score)]));
    } else {
        out.push(member);
        if withscores {
            out.push(Reply::Double(score));
        }
    }
}

/// Stores a computed set at `dst`, reporting `event` (deleting `dst` when it is empty), and
/// replies its size.
fn store_result(ctx: &mut Ctx<'_>, dst: &[u8], items: Vec<Item>, event: &'static str) -> Reply {
    let n = items.len() as i64;
    if n == 0 {
        ctx.delete_destination(dst);
    } else {
        let z = ZSetValue::from_items(items, Limits::of(ctx));
        ctx.set(dst, Value::ZSet(z));
        ctx.notify(ZSET, event, dst);
    }
    Reply::Int(n)
}

// ---------------------------------------------------------------------------------------------
// Ranges
// ---------------------------------------------------------------------------------------------

/// A score interval, each end inclusive or exclusive.
#[derive(Debug, Clone, Copy)]
struct ScoreRange {
    min: f64,
    max: f64,
    min_ex: bool,
    max_ex: bool,
}

/// One end of a score interval: `(5` is exclusive. The exclusive form is read as `strtod`
/// reads it (leading spaces allowed; a lone `(` is 0), the plain form as any float argument.
fn parse_score_bound(arg: &[u8]) -> Option<(f64, bool)> {
    match arg.split_first() {
        Some((b'(', rest)) => {
            if rest.is_empty() {
                return Some((0.0, true));
            }
            let start = rest.iter().position(|c| !c.is_ascii_whitespace())?;
            num::parse_f64(&rest[start..]).map(|v| (v, true))
        }
        _ => num::parse_f64(arg).map(|v| (v, false)),
    }
}

impl ScoreRange {
    fn parse(min: &[u8], max: &[u8]) -> Result<ScoreRange, Reply> {
        match (parse_score_bound(min), parse_score_bound(max)) {
            (Some((min, min_ex)), Some((max, max_ex))) => Ok(ScoreRange {
                min,
                max,
                min_ex,
                max_ex,
            }),
            _ => Err(Reply::err(MIN_MAX_NOT_FLOAT)),
        }
    }
}

/// One end of a lexicographic interval.
#[derive(Debug, Clone, Copy)]
enum LexBound<'a> {
    NegInf,
    PosInf,
    Incl(&'a [u8]),
    Excl(&'a [u8]),
}

impl<'a> LexBound<'a> {
    fn parse(arg: &'a [u8]) -> Option<LexBound<'a>> {
        match arg.split_first()? {
            (b'+', []) => Some(LexBound::PosInf),
            (b'-', []) => Some(LexBound::NegInf),
            (b'[', rest) => Some(LexBound::Incl(rest)),
            (b'(', rest) => Some(LexBound::Excl(rest)),
            _ => None,
        }
    }
}

/// A range of a sorted set by score or by member.
#[derive(Debug, Clone, Copy)]
enum Range<'a> {
    Score(ScoreRange),
    Lex(LexBound<'a>, LexBound<'a>),
}

impl<'a> Range<'a> {
    fn parse_lex(min: &'a [u8], max: &'a [u8]) -> Result<Range<'a>, Reply> {
        match (LexBound::parse(min), LexBound::parse(max)) {
            (Some(min), Some(max)) => Ok(Range::Lex(min, max)),
            _ => Err(Reply::err(MIN_MAX_NOT_LEX)),
        }
    }

    /// The ranks `lo..hi` of the items inside the range (empty when `lo >= hi`).
    fn ranks(&self, z: &ZSetValue) -> (usize, usize) {
        let (lo, hi) = match *self {
            Range::Score(r) => (
                z.count_while(|i| {
                    if r.min_ex {
                        i.score <= r.min
                    } else {
                        i.score < r.min
                    }
                }),
                z.count_while(|i| {
                    if r.max_ex {
                        i.score < r.max
                    } else {
                        i.score <= r.max
                    }
                }),
            ),
            Range::Lex(min, max) => (
                z.count_while(|i| match min {
                    LexBound::NegInf => false,
                    LexBound::PosInf => true,
                    LexBound::Incl(m) => &*i.member < m,
                    LexBound::Excl(m) => &*i.member <= m,
                }),
                z.count_while(|i| match max {
                    LexBound::NegInf => false,
                    LexBound::PosInf => true,
                    LexBound::Incl(m) => &*i.member <= m,
                    LexBound::Excl(m) => &*i.member < m,
                }),
            ),
        };
        (lo, hi.max(lo))
    }
}

/// Redis's rank-range sanitising (negative indexes count from the end): the ascending ranks
/// `lo..hi` that `start..=end` selects, in reverse order when `rev`.
fn rank_span(len: usize, start: i64, end: i64, rev: bool) -> (usize, usize) {
    let len = len as i64;
    let mut start = if start < 0 { start + len } else { start };
    let mut end = if end < 0 { end + len } else { end };
    start = start.max(0);
    if start > end || start >= len {
        return (0, 0);
    }
    end = end.min(len - 1);
    let (lo, hi) = if rev {
        (len - 1 - end, len - start)
    } else {
        (start, end + 1)
    };
    (lo as usize, hi as usize)
}

/// Applies LIMIT offset count to the in-range ranks `lo..hi`, counting from the top when
/// `rev`. A negative offset selects nothing and a negative count means "all", as in Redis.
fn limit_span(lo: usize, hi: usize, offset: i64, count: i64, rev: bool) -> (usize, usize) {
    let n = hi - lo;
    let Ok(offset) = usize::try_from(offset) else {
        return (0, 0);
    };
    if offset >= n {
        return (0, 0);
    }
    let avail = n - offset;
    let take = usize::try_from(count).map_or(avail, |c| c.min(avail));
    if rev {
        (hi - offset - take, hi - offset)
    } else {
        (lo + offset, lo + offset + take)
    }
}

/// The replies for ranks `lo..hi`, reversed when `rev`.
fn range_reply(
    z: &ZSetValue,
    (lo, hi): (usize, usize),
    rev: bool,
    withscores: bool,
    resp3: bool,
) -> Vec<Reply> {
    let mut out = Vec::new();
    z.for_range(lo, hi, &mut |i: &Item| {
        push_entry(&mut out, &i.member, i.score, withscores, resp3)
    });
    if rev {
        if withscores && !resp3 {
            // Reverse pairs, keeping each member before its score.
            let mut pairs: Vec<[Reply; 2]> = Vec::with_capacity(out.len() / 2);
            let mut it = out.into_iter();
            while let (Some(m), Some(s)) = (it.next(), it.next()) {
                pairs.push([m, s]);
            }
            return pairs.into_iter().rev().flatten().collect();
        }
        out.reverse();
    }
    out
}

fn range_items(z: &ZSetValue, (lo, hi): (usize, usize)) -> Vec<Item> {
    let mut out = Vec::new();
    z.for_range(lo, hi, &mut |i: &Item| out.push(i.clone()));
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeKind {
    Rank,
    Score,
    Lex,
}

/// ZRANGE and its variants (ZREVRANGE, Z[REV]RANGEBYSCORE, Z[REV]RANGEBYLEX, ZRANGESTORE).
/// `key_at` is the source key's index; `kind` and `rev` are fixed by the legacy commands and
/// chosen by options otherwise.
fn range_generic(
    ctx: &mut Ctx<'_>,
    args: &[Bytes],
    key_at: usize,
    dst: Option<&[u8]>,
    mut kind: Option<RangeKind>,
    mut rev: Option<bool>,
) -> Reply {
    let mut withscores = false;
    let mut offset = 0i64;
    let mut limit = -1i64;
    let mut j = key_at + 3;
    while j < args.len() {
        let left = args.len() - j - 1;
        let a = &args[j];
        if dst.is_none() && eq(a, "withscores") {
            withscores = true;
        } else if eq(a, "limit") && left >= 2 {
            offset = match parse_int(&args[j + 1]) {
                Ok(n) => n,
                Err(e) => return e,
            };
            limit = match parse_int(&args[j + 2]) {
                Ok(n) => n,
                Err(e) => return e,
            };
            j += 2;
        } else if rev.is_none() && eq(a, "rev") {
            rev = Some(true);
        } else if kind.is_none() && eq(a, "bylex") {
            kind = Some(RangeKind::Lex);
        } else if kind.is_none() && eq(a, "byscore") {
            kind = Some(RangeKind::Score);
        } else {
            return error::syntax();
        }
        j += 1;
    }
    let rev = rev.unwrap_or(false);
    let kind = kind.unwrap_or(RangeKind::Rank);
    if limit != -1 && kind == RangeKind::Rank {
        return Reply::err(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        );
    }
    if withscores && kind == RangeKind::Lex {
        return Reply::err("ERR syntax error, WITHSCORES not supported in combination with BYLEX");
    }
    let (a, b) = (&args[key_at + 1][..], &args[key_at + 2][..]);
    // Score and lex ranges are written max first when reversed.
    let (min, max) = if rev && kind != RangeKind::Rank {
        (b, a)
    } else {
        (a, b)
    };
    enum Spec<'a> {
        Ranks(i64, i64),
        Range(Range<'a>),
    }
    let spec = match kind {
        RangeKind::Rank => match (parse_int(min), parse_int(max)) {
            (Ok(s), Ok(e)) => Spec::Ranks(s, e),
            (Err(e), _) | (_, Err(e)) => return e,
        },
        RangeKind::Score => match ScoreRange::parse(min, max) {
            Ok(r) => Spec::Range(Range::Score(r)),
            Err(e) => return e,
        },
        RangeKind::Lex => match Range::parse_lex(min, max) {
            Ok(r) => Spec::Range(r),
            Err(e) => return e,
        },
    };
    let resp3 = ctx.resp3;
    let z = match read(ctx, &args[key_at]) {
        Ok(Some(z)) => z,
        Ok(None) => {
            return match dst {
                Some(dst) => store_result(ctx, dst, Vec::new(), "zrangestore"),
                None => Reply::Array(Vec::new()),
            }
        }
        Err(e) => return e,
    };
    let span = match spec {
        Spec::Ranks(start, end) => rank_span(z.len(), start, end, rev),
        Spec::Range(r) => {
            let (lo, hi) = r.ranks(z);
            limit_span(lo, hi, offset, limit, rev)
        }
    };
    match dst {
        Some(dst) => {
            let items = range_items(z, span);
            store_result(ctx, dst, items, "zrangestore")
        }
        None => Reply::Array(range_reply(z, span, rev, withscores, resp3)),
    }
}

/// ZRANGE key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]
pub fn zrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    range_generic(ctx, args, 1, None, None, None)
}

/// ZREVRANGE key start stop [WITHSCORES]
pub fn zrevrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    range_generic(ctx, args, 1, None, Some(RangeKind::Rank), Some(true))
}

/// ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]
pub fn zrangebyscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    range_generic(ctx, args, 1, None, Some(RangeKind::Score), Some(false))
}

/// ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]
pub fn zrevrangebyscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    range_generic(ctx, args, 1, None, Some(RangeKind::Score), Some(true))
}

/// ZRANGEBYLEX key min max [LIMIT offset count]
pub fn zrangebylex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    range_generic(ctx, args, 1, None, Some(RangeKind::Lex), Some(false))
}

/// ZREVRANGEBYLEX key max min [LIMIT offset count]
pub fn zrevrangebylex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    range_generic(ctx, args, 1, None, Some(RangeKind::Lex), Some(true))
}

/// ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]
pub fn zrangestore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    range_generic(ctx, args, 2, Some(&args[1]), None, None)
}

/// ZCOUNT key min max
pub fn zcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match ScoreRange::parse(&args[2], &args[3]) {
        Ok(r) => count_generic(ctx, &args[1], Range::Score(r)),
        Err(e) => e,
    }
}

/// ZLEXCOUNT key min max
pub fn zlexcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match Range::parse_lex(&args[2], &args[3]) {
        Ok(r) => count_generic(ctx, &args[1], r),
        Err(e) => e,
    }
}

fn count_generic(ctx: &mut Ctx<'_>, key: &[u8], range: Range<'_>) -> Reply {
    match read(ctx, key) {
        Ok(Some(z)) => {
            let (lo, hi) = range.ranks(z);
            Reply::Int((hi - lo) as i64)
        }
        Ok(None) => Reply::Int(0),
        Err(e) => e,
    }
}

/// ZREMRANGEBYRANK key start stop
pub fn zremrangebyrank(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (start, end) = match (parse_int(&args[2]), parse_int(&args[3])) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    remove_span(ctx, &args[1], "zremrangebyrank", |z| {
        rank_span(z.len(), start, end, false)
    })
}

/// ZREMRANGEBYSCORE key min max
pub fn zremrangebyscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match ScoreRange::parse(&args[2], &args[3]) {
        Ok(r) => remove_span(ctx, &args[1], "zremrangebyscore", |z| {
            Range::Score(r).ranks(z)
        }),
        Err(e) => e,
    }
}

/// ZREMRANGEBYLEX key min max
pub fn zremrangebylex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match Range::parse_lex(&args[2], &args[3]) {
        Ok(r) => remove_span(ctx, &args[1], "zremrangebylex", |z| r.ranks(z)),
        Err(e) => e,
    }
}

/// Removes the members of `key` in `span`, reporting `event` when some went.
fn remove_span(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    event: &'static str,
    span: impl FnOnce(&ZSetValue) -> (usize, usize),
) -> Reply {
    let (removed, empty) = match write(ctx, key) {
        Ok(Some(z)) => {
            let (lo, hi) = span(z);
            (z.remove_range(lo, hi), z.is_empty())
        }
        Ok(None) => return Reply::Int(0),
        Err(e) => return e,
    };
    if removed > 0 {
        ctx.notify(ZSET, event, key);
    }
    ctx.delete_if_empty(key, empty);
    ctx.dirty(removed as u64);
    Reply::Int(removed as i64)
}

// ---------------------------------------------------------------------------------------------
// ZADD and friends
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default, Clone, Copy)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// What one score-member pair did.
enum Added {
    New,
    Updated,
    /// Same score as before: processed, but nothing changed.
    Same,
    /// Skipped by NX, XX, GT or LT.
    Skipped,
}

/// Applies one score-member pair under `flags`; returns what happened and the member's score
/// afterwards. Err when an increment gives NaN.
fn add_one(
    z: &mut ZSetValue,
    member: &[u8],
    score: f64,
    flags: AddFlags,
    limits: Limits,
) -> Result<(Added, f64), Reply> {
    match z.score(member) {
        Some(current) => {
            if flags.nx {
                return Ok((Added::Skipped, current));
            }
            let new = if flags.incr { current + score } else { score };
            if new.is_nan() {
                return Err(Reply::err(NAN_RESULT));
            }
            if (flags.lt && new >= current) || (flags.gt && new <= current) {
                return Ok((Added::Skipped, current));
            }
            if new == current {
                return Ok((Added::Same, new));
            }
            z.insert(member, new, limits);
            Ok((Added::Updated, new))
        }
        None => {
            if flags.xx {
                return Ok((Added::Skipped, score));
            }
            z.insert(member, score, limits);
            Ok((Added::New, score))
        }
    }
}

/// ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member …]
pub fn zadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    add_generic(ctx, args, false)
}

/// ZINCRBY key increment member
pub fn zincrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    add_generic(ctx, args, true)
}

fn add_generic(ctx: &mut Ctx<'_>, args: &[Bytes], incr: bool) -> Reply {
    let mut flags = AddFlags {
        incr,
        ..AddFlags::default()
    };
    let mut at = 2;
    while let Some(opt) = args.get(at) {
        match opt.to_ascii_lowercase().as_slice() {
            b"nx" => flags.nx = true,
            b"xx" => flags.xx = true,
            b"ch" => flags.ch = true,
            b"incr" => flags.incr = true,
            b"gt" => flags.gt = true,
            b"lt" => flags.lt = true,
            _ => break,
        }
        at += 1;
    }
    let pairs = args.len() - at;
    if pairs == 0 || !pairs.is_multiple_of(2) {
        return error::syntax();
    }
    if flags.nx && flags.xx {
        return Reply::err("ERR XX and NX options at the same time are not compatible");
    }
    if (flags.nx && (flags.gt || flags.lt)) || (flags.gt && flags.lt) {
        return Reply::err("ERR GT, LT, and/or NX options at the same time are not compatible");
    }
    if flags.incr && pairs > 2 {
        return Reply::err("ERR INCR option supports a single increment-element pair");
    }
    // Every score is checked before anything changes: the command applies fully or not at all.
    let mut scores = Vec::with_capacity(pairs / 2);
    for pair in args[at..].chunks_exact(2) {
        match num::parse_f64(&pair[0]) {
            Some(s) => scores.push(s),
            None => return error::not_float(),
        }
    }
    let key = &args[1];
    let limits = Limits::of(ctx);
    let mut created = None;
    let z = match write(ctx, key) {
        Ok(Some(z)) => z,
        Ok(None) if flags.xx => {
            return if flags.incr {
                Reply::Nil
            } else {
                Reply::Int(0)
            };
        }
        Ok(None) => created.insert(ZSetValue::new()),
        Err(e) => return e,
    };
    let (mut added, mut updated, mut processed) = (0u64, 0u64, 0u64);
    let mut last = 0.0;
    let mut failure = None;
    for (pair, &score) in args[at..].chunks_exact(2).zip(&scores) {
        match add_one(z, &pair[1], score, flags, limits) {
            Ok((outcome, now)) => {
                match outcome {
                    Added::New => added += 1,
                    Added::Updated => updated += 1,
                    Added::Same => {}
                    Added::Skipped => continue,
                }
                processed += 1;
                last = now;
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    if let Some(z) = created {
        if !z.is_empty() {
            let lru = ctx.new_lru();
            ctx.db().set(key, Value::ZSet(z), lru, false);
            ctx.notify(NEW, "new", key);
        }
    }
    ctx.dirty(added + updated);
    if added + updated > 0 {
        ctx.notify(ZSET, if flags.incr { "zincr" } else { "zadd" }, key);
    }
    if added > 0 {
        ctx.signal_ready(key);
    }
    if let Some(e) = failure {
        return e;
    }
    if flags.incr {
        if processed > 0 {
            Reply::Double(last)
        } else {
            Reply::Nil
        }
    } else if flags.ch {
        Reply::Int((added + updated) as i64)
    } else {
        Reply::Int(added as i64)
    }
}

/// ZREM key member [member …]
pub fn zrem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let key = &args[1];
    let (removed, empty) = match write(ctx, key) {
        Ok(Some(z)) => {
            let mut removed = 0;
            for m in &args[2..] {
                if z.remove(m).is_some() {
                    removed += 1;
                }
                if z.is_empty() {
                    break;
                }
            }
            (removed, z.is_empty())
        }
        Ok(None) => return Reply::Int(0),
        Err(e) => return e,
    };
    if removed > 0 {
        ctx.notify(ZSET, "zrem", key);
    }
    ctx.delete_if_empty(key, empty);
    ctx.dirty(removed as u64);
    Reply::Int(removed as i64)
}

/// ZCARD key
pub fn zcard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match read(ctx, &args[1]) {
        Ok(z) => Reply::Int(z.map_or(0, ZSetValue::len) as i64),
        Err(e) => e,
    }
}

/// ZSCORE key member
pub fn zscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match read(ctx, &args[1]) {
        Ok(z) => z
            .and_then(|z| z.score(&args[2]))
            .map_or(Reply::Nil, Reply::Double),
        Err(e) => e,
    }
}

/// ZMSCORE key member [member …]
pub fn zmscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match read(ctx, &args[1]) {
        Ok(z) => Reply::Array(
            args[2..]
                .iter()
                .map(|m| z.and_then(|z| z.score(m)).map_or(Reply::Nil, Reply::Double))
                .collect(),
        ),
        Err(e) => e,
    }
}

/// ZRANK key member
pub fn zrank(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    rank_generic(ctx, args, false)
}

/// ZREVRANK key member
pub fn zrevrank(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    rank_generic(ctx, args, true)
}

fn rank_generic(ctx: &mut Ctx<'_>, args: &[Bytes], rev: bool) -> Reply {
    match read(ctx, &args[1]) {
        Ok(Some(z)) => match z.rank(&args[2]) {
            Some(r) if rev => Reply::Int((z.len() - 1 - r) as i64),
            Some(r) => Reply::Int(r as i64),
            None => Reply::Nil,
        },
        Ok(None) => Reply::Nil,
        Err(e) => e,
    }
}

// ---------------------------------------------------------------------------------------------
// Pops
// ---------------------------------------------------------------------------------------------

/// The shape of a pop reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PopShape {
    /// ZPOPMIN/ZPOPMAX: `[m, s, m, s…]`.
    Flat,
    /// ZPOPMIN/ZPOPMAX with a count in RESP3: `[[m, s], …]`.
    Pairs,
    /// BZPOPMIN/BZPOPMAX: `[key, m, s]`.
    WithKey,
    /// ZMPOP/BZMPOP: `[key, [[m, s], …]]`.
    Nested,
}

/// Pops up to `count` items from the first non-empty of `keys`. `None` when no key holds a
/// sorted set (the caller picks the empty reply); WRONGTYPE stops at the first other type.
fn pop_first(
    ctx: &mut Ctx<'_>,
    keys: &[Bytes],
    max: bool,
    count: usize,
    shape: PopShape,
) -> Option<Reply> {
    let mut found = None;
    for key in keys {
        match write(ctx, key) {
            Ok(Some(z)) if !z.is_empty() => {
                found = Some(key);
                break;
            }
            Ok(_) => {}
            Err(e) => return Some(e),
        }
    }
    let key = found?;
    if count == 0 {
        return Some(Reply::Array(Vec::new()));
    }
    let mut popped = Vec::new();
    let empty = match write(ctx, key) {
        Ok(Some(z)) => {
            while popped.len() < count {
                match z.pop(max) {
                    Some(item) => popped.push(item),
                    None => break,
                }
            }
            z.is_empty()
        }
        _ => false,
    };
    if !popped.is_empty() {
        ctx.notify(ZSET, if max { "zpopmax" } else { "zpopmin" }, key);
    }
    ctx.delete_if_empty(key, empty);
    ctx.dirty(popped.len() as u64);
    let pairs = || {
        popped
            .iter()
            .map(|i| Reply::Array(vec![Reply::bulk(&i.member), Reply::Double(i.score)]))
            .collect::<Vec<_>>()
    };
    let flat = |out: &mut Vec<Reply>| {
        for i in &popped {
            out.push(Reply::bulk(&i.member));
            out.push(Reply::Double(i.score));
        }
    };
    Some(match shape {
        PopShape::Flat => {
            let mut out = Vec::with_capacity(popped.len() * 2);
            flat(&mut out);
            Reply::Array(out)
        }
        PopShape::Pairs => Reply::Array(pairs()),
        PopShape::WithKey => {
            let mut out = vec![Reply::bulk(key)];
            flat(&mut out);
            Reply::Array(out)
        }
        PopShape::Nested => Reply::Array(vec![Reply::bulk(key), Reply::Array(pairs())]),
    })
}

/// ZPOPMIN key [count]
pub fn zpopmin(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    zpop(ctx, args, false)
}

/// ZPOPMAX key [count]
pub fn zpopmax(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    zpop(ctx, args, true)
}

fn zpop(ctx: &mut Ctx<'_>, args: &[Bytes], max: bool) -> Reply {
    if args.len() > 3 {
        return error::syntax();
    }
    let count = match args.get(2) {
        Some(c) => match parse_ranged(
            c,
            0,
            i64::MAX,
            "ERR value is out of range, must be positive",
        ) {
            Ok(n) => Some(n as usize),
            Err(e) => return e,
        },
        None => None,
    };
    let shape = if ctx.resp3 && count.is_some() {
        PopShape::Pairs
    } else {
        PopShape::Flat
    };
    pop_first(ctx, &args[1..2], max, count.unwrap_or(1), shape)
        .unwrap_or_else(|| Reply::Array(Vec::new()))
}

/// 2^63: the first double that does not fit a long long.
const I64_LIMIT: f64 = 9_223_372_036_854_775_808.0;

/// Checks a blocking command's timeout as Redis does (seconds as a long double, turned into
/// whole milliseconds rounded up); the runtime does the waiting.
fn check_timeout(arg: &[u8]) -> Result<(), Reply> {
    let secs = num::parse_f64(arg).ok_or(Reply::err(error::TIMEOUT_NOT_FLOAT))?;
    let ms = (secs * 1000.0).ceil();
    // C's conversion of an out-of-range value to long long gives LLONG_MIN: negative.
    if !(0.0..I64_LIMIT).contains(&ms) {
        return Err(Reply::err(error::TIMEOUT_NEGATIVE));
    }
    Ok(())
}

/// BZPOPMIN key [key …] timeout
pub fn bzpopmin(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    bzpop(ctx, args, false)
}

/// BZPOPMAX key [key …] timeout
pub fn bzpopmax(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    bzpop(ctx, args, true)
}

/// One non-blocking attempt; `NilArray` tells the runtime to block.
fn bzpop(ctx: &mut Ctx<'_>, args: &[Bytes], max: bool) -> Reply {
    let last = args.len() - 1;
    if let Err(e) = check_timeout(&args[last]) {
        return e;
    }
    pop_first(ctx, &args[1..last], max, 1, PopShape::WithKey).unwrap_or(Reply::NilArray)
}

/// The parsed tail of ZMPOP/BZMPOP: `numkeys key… MIN|MAX [COUNT count]`.
fn parse_mpop(args: &[Bytes], numkeys_at: usize) -> Result<(&[Bytes], bool, usize), Reply> {
    let numkeys = parse_ranged(
        &args[numkeys_at],
        1,
        i64::MAX,
        "ERR numkeys should be greater than 0",
    )? as usize;
    let where_at = numkeys_at
        .checked_add(numkeys)
        .and_then(|n| n.checked_add(1))
        .filter(|&w| w < args.len())
        .ok_or_else(error::syntax)?;
    let max = if eq(&args[where_at], "min") {
        false
    } else if eq(&args[where_at], "max") {
        true
    } else {
        return Err(error::syntax());
    };
    let mut count = None;
    let mut j = where_at + 1;
    while j < args.len() {
        if count.is_none() && eq(&args[j], "count") && j + 1 < args.len() {
            let n = parse_ranged(
                &args[j + 1],
                1,
                i64::MAX,
                "ERR count should be greater than 0",
            )?;
            count = Some(n as usize);
            j += 2;
        } else {
            return Err(error::syntax());
        }
    }
    Ok((&args[numkeys_at + 1..where_at], max, count.unwrap_or(1)))
}

/// ZMPOP numkeys key [key …] MIN|MAX [COUNT count]
pub fn zmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match parse_mpop(args, 1) {
        Ok((keys, max, count)) => {
            pop_first(ctx, keys, max, count, PopShape::Nested).unwrap_or(Reply::NilArray)
        }
        Err(e) => e,
    }
}

/// BZMPOP timeout numkeys key [key …] MIN|MAX [COUNT count]: one non-blocking attempt.
pub fn bzmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (keys, max, count) = match parse_mpop(args, 2) {
        Ok(parsed) => parsed,
        Err(e) => return e,
    };
    if let Err(e) = check_timeout(&args[1]) {
        return e;
    }
    pop_first(ctx, keys, max, count, PopShape::Nested).unwrap_or(Reply::NilArray)
}

// ---------------------------------------------------------------------------------------------
// ZRANDMEMBER
// ---------------------------------------------------------------------------------------------

/// ZRANDMEMBER key [count [WITHSCORES]]
pub fn zrandmember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let Some(count_arg) = args.get(2) else {
        let rand = ctx.rand();
        return match read(ctx, &args[1]) {
            Ok(Some(z)) => z
                .get((rand % z.len().max(1) as u64) as usize)
                .map_or(Reply::Nil, |i| Reply::bulk(&i.member)),
            Ok(None) => Reply::Nil,
            Err(e) => e,
        };
    };
    let count = match sample::parse_count(count_arg) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let withscores = match args.get(3) {
        None => false,
        Some(a) if args.len() == 4 && eq(a, "withscores") => true,
        Some(_) => return error::syntax(),
    };
    if withscores {
        if let Err(e) = sample::check_paired(count) {
            return e;
        }
    }
    let wanted = count.unsigned_abs();
    let repeats = count < 0 || wanted == 1;
    // Sized before the set borrows the shard; refused only if sampling happens.
    let samples = if repeats { wanted } else { 0 };
    let budget = SampleBudget::new(ctx, samples, if withscores { 2 } else { 1 });
    let resp3 = ctx.resp3;
    // The set stays borrowed while sampling, so the samples come from a generator seeded
    // from the shard's source rather than from the shard itself.
    let mut rng = StdRng::seed_from_u64(ctx.rand());
    let z = match read(ctx, &args[1]) {
        Ok(Some(z)) => z,
        Ok(None) => return Reply::Array(Vec::new()),
        Err(e) => return e,
    };
    let size = z.len();
    if size == 0 {
        return Reply::Array(Vec::new());
    }
    let mut out = Vec::new();
    let emit = |rank: usize, out: &mut Vec<Reply>| {
        if let Some(i) = z.get(rank) {
            push_entry(out, &i.member, i.score, withscores, resp3);
        }
    };
    if repeats {
        let mut budget = match budget {
            Ok(b) => b,
            Err(e) => return e,
        };
        // With repetitions, in random order.
        for _ in 0..wanted {
            let rank = rng.gen_range(0..size);
            let bytes = z.get(rank).map_or(0, |i| i.member.len());
            if let Err(e) = budget.take(bytes) {
                return e;
            }
            emit(rank, &mut out);
        }
    } else if wanted >= size as u64 {
        for rank in 0..size {
            emit(rank, &mut out);
        }
    } else {
        // Distinct members: a partial shuffle of all ranks when most are wanted, else
        // random picks until enough distinct ones came up.
        let wanted = wanted as usize;
        let ranks: Vec<usize> = if wanted * 3 > size {
            let mut all: Vec<usize> = (0..size).collect();
            for i in 0..wanted {
                let j = rng.gen_range(i..size);
                all.swap(i, j);
            }
            all.truncate(wanted);
            all
        } else {
            let mut seen = ahash::HashSet::default();
            let mut picked = Vec::with_capacity(wanted);
            while picked.len() < wanted {
                let r = rng.gen_range(0..size);
                if seen.insert(r) {
                    picked.push(r);
                }
            }
            picked
        };
        for rank in ranks {
            emit(rank, &mut out);
        }
    }
    Reply::Array(out)
}

// ---------------------------------------------------------------------------------------------
// ZUNION, ZINTER, ZDIFF and their STORE forms, ZINTERCARD
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Debug, Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    fn apply(self, acc: &mut f64, v: f64) {
        match self {
            Aggregate::Sum => {
                *acc += v;
                // inf + -inf is NaN; Redis makes it 0.
                if acc.is_nan() {
                    *acc = 0.0;
                }
            }
            Aggregate::Min => {
                if v < *acc {
                    *acc = v;
                }
            }
            Aggregate::Max => {
                if v > *acc {
                    *acc = v;
                }
            }
        }
    }
}

/// One input of a set operation: a sorted set, a plain set (every member scores 1) or a
/// missing key (empty).
#[derive(Clone, Copy)]
enum Source<'a> {
    Empty,
    ZSet(&'a ZSetValue),
    /// A set, with its members spelled out (an intset stores numbers, not bytes).
    Set(&'a SetValue, &'a [Bytes]),
}

impl<'a> Source<'a> {
    fn len(&self) -> usize {
        match self {
            Source::Empty => 0,
            Source::ZSet(z) => z.len(),
            Source::Set(_, members) => members.len(),
        }
    }

    fn find(&self, member: &[u8]) -> Option<f64> {
        match self {
            Source::Empty => None,
            Source::ZSet(z) => z.score(member),
            Source::Set(s, _) => s.contains(member).then_some(1.0),
        }
    }

    fn for_each(&self, mut f: impl FnMut(&'a [u8], f64)) {
        match *self {
            Source::Empty => {}
            Source::ZSet(z) => {
                if let Repr::Skiplist(large) = &z.repr {
                    for (m, &s) in large.scores.iter() {
                        f(m, s);
                    }
                } else if let Repr::Listpack(items) = &z.repr {
                    for i in items {
                        f(&i.member, i.score);
                    }
                }
            }
            Source::Set(_, members) => {
                for m in members {
                    f(m, 1.0);
                }
            }
        }
    }
}

/// What a set operation computed.
enum SetOpResult {
    Items(Vec<Item>),
    Cardinality(usize),
}

/// `weight * score`, with NaN (0 × inf) taken as 0 as Redis does.
fn weighted(score: f64, weight: f64) -> f64 {
    let v = score * weight;
    if v.is_nan() {
        0.0
    } else {
        v
    }
}

fn compute_setop(
    inputs: &mut [(Source<'_>, f64)],
    op: SetOp,
    agg: Aggregate,
    card_limit: Option<usize>,
) -> SetOpResult {
    if op != SetOp::Diff {
        inputs.sort_by_key(|(s, _)| s.len());
    }
    let mut found: Vec<(&[u8], f64)> = Vec::new();
    let mut cardinality = 0usize;
    match op {
        SetOp::Inter => {
            let Some((&(first, w0), rest)) = inputs.split_first() else {
                return SetOpResult::Items(Vec::new());
            };
            let mut done = false;
            first.for_each(|m, s| {
                if done {
                    return;
                }
                let mut score = weighted(s, w0);
                for (src, w) in rest {
                    match src.find(m) {
                        Some(v) => agg.apply(&mut score, v * w),
                        None => return,
                    }
                }
                match card_limit {
                    Some(limit) => {
                        cardinality += 1;
                        done = limit > 0 && cardinality >= limit;
                    }
                    None => found.push((m, score)),
                }
            });
        }
        SetOp::Union => {
            let mut acc: ahash::HashMap<&[u8], f64> = ahash::HashMap::default();
            for (src, w) in inputs.iter() {
                src.for_each(|m, s| {
                    let v = weighted(s, *w);
                    acc.entry(m)
                        .and_modify(|cur| agg.apply(cur, v))
                        .or_insert(v);
                });
            }
            found.extend(acc);
        }
        SetOp::Diff => {
            if let Some(((first, _), rest)) = inputs.split_first() {
                first.for_each(|m, s| {
                    if rest.iter().all(|(src, _)| src.find(m).is_none()) {
                        found.push((m, s));
                    }
                });
            }
        }
    }
    if card_limit.is_some() {
        return SetOpResult::Cardinality(cardinality);
    }
    let mut items: Vec<Item> = found
        .into_iter()
        .map(|(m, s)| Item::new(s, Member::from(m)))
        .collect();
    items.sort_by(|a, b| cmp_entries(a.score, &a.member, b.score, &b.member));
    SetOpResult::Items(items)
}

/// The shared body of ZUNION, ZINTER, ZDIFF, their STORE forms and ZINTERCARD. A STORE
/// form's `name` is also the event its write reports.
fn setop_generic(
    ctx: &mut Ctx<'_>,
    args: &[Bytes],
    name: &'static str,
    dst: Option<&[u8]>,
    op: SetOp,
    card_only: bool,
) -> Reply {
    let numkeys_at = if dst.is_some() { 2 } else { 1 };
    let numkeys = match parse_int(&args[numkeys_at]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    if numkeys < 1 {
        return Reply::error(format!(
            "ERR at least 1 input key is needed for '{name}' command"
        ));
    }
    let first_key = numkeys_at + 1;
    if numkeys as u64 > (args.len() - first_key) as u64 {
        return error::syntax();
    }
    let numkeys = numkeys as usize;
    let keys = &args[first_key..first_key + numkeys];
    // Types are checked before the options are read, as Redis does.
    for key in keys {
        match ctx.lookup_read(key) {
            None | Some(Value::ZSet(_)) | Some(Value::Set(_)) => {}
            Some(_) => return error::wrongtype(),
        }
    }
    let mut weights = vec![1.0f64; numkeys];
    let mut agg = Aggregate::Sum;
    let mut withscores = false;
    let mut limit = 0usize;
    let mut j = first_key + numkeys;
    while j < args.len() {
        let remaining = args.len() - j;
        let a = &args[j];
        let combining = op != SetOp::Diff && !card_only;
        if combining && remaining > numkeys && eq(a, "weights") {
            for (w, arg) in weights.iter_mut().zip(&args[j + 1..]) {
                match num::parse_f64(arg) {
                    Some(v) => *w = v,
                    None => return Reply::err("ERR weight value is not a float"),
                }
            }
            j += 1 + numkeys;
        } else if combining && remaining >= 2 && eq(a, "aggregate") {
            let b = &args[j + 1];
            agg = if eq(b, "sum") {
                Aggregate::Sum
            } else if eq(b, "min") {
                Aggregate::Min
            } else if eq(b, "max") {
                Aggregate::Max
            } else {
                return error::syntax();
            };
            j += 2;
        } else if dst.is_none() && !card_only && eq(a, "withscores") {
            withscores = true;
            j += 1;
        } else if card_only && remaining >= 2 && eq(a, "limit") {
            match num::parse_i64(&args[j + 1]) {
                Some(n) if n >= 0 => limit = n as usize,
                _ => return Reply::err("ERR LIMIT can't be negative"),
            }
            j += 2;
        } else {
            return error::syntax();
        }
    }
    let result = {
        let db = &*ctx.db();
        let set_members: Vec<Vec<Bytes>> = keys
            .iter()
            .map(|k| match db.peek(k).map(|e| &e.value) {
                Some(Value::Set(s)) => s
                    .iter()
                    .map(|m| {
                        let mut buf = [0u8; 20];
                        Bytes::copy_from_slice(m.as_bytes(&mut buf))
                    })
                    .collect(),
                _ => Vec::new(),
            })
            .collect();
        let mut inputs: Vec<(Source<'_>, f64)> = keys
            .iter()
            .zip(weights)
            .zip(&set_members)
            .map(|((k, w), members)| {
                let src = match db.peek(k).map(|e| &e.value) {
                    Some(Value::ZSet(z)) => Source::ZSet(z),
                    Some(Value::Set(s)) => Source::Set(s, members),
                    _ => Source::Empty,
                };
                (src, w)
            })
            .collect();
        compute_setop(&mut inputs, op, agg, card_only.then_some(limit))
    };
    match result {
        SetOpResult::Cardinality(n) => Reply::Int(n as i64),
        SetOpResult::Items(items) => match dst {
            Some(dst) => store_result(ctx, dst, items, name),
            None => {
                let resp3 = ctx.resp3;
                let mut out = Vec::with_capacity(items.len() * if withscores { 2 } else { 1 });
                for i in &items {
                    push_entry(&mut out, &i.member, i.score, withscores, resp3);
                }
                Reply::Array(out)
            }
        },
    }
}

/// ZUNION numkeys key [key …] [WEIGHTS w…] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]
pub fn zunion(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    setop_generic(ctx, args, "zunion", None, SetOp::Union, false)
}

/// ZINTER numkeys key [key …] [WEIGHTS w…] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]
pub fn zinter(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    setop_generic(ctx, args, "zinter", None, SetOp::Inter, false)
}

/// ZDIFF numkeys key [key …] [WITHSCORES]
pub fn zdiff(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    setop_generic(ctx, args, "zdiff", None, SetOp::Diff, false)
}

/// ZUNIONSTORE dst numkeys key [key …] [WEIGHTS w…] [AGGREGATE SUM|MIN|MAX]
pub fn zunionstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    setop_generic(
        ctx,
        args,
        "zunionstore",
        Some(&args[1]),
        SetOp::Union,
        false,
    )
}

/// ZINTERSTORE dst numkeys key [key …] [WEIGHTS w…] [AGGREGATE SUM|MIN|MAX]
pub fn zinterstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    setop_generic(
        ctx,
        args,
        "zinterstore",
        Some(&args[1]),
        SetOp::Inter,
        false,
    )
}

/// ZDIFFSTORE dst numkeys key [key …]
pub fn zdiffstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    setop_generic(ctx, args, "zdiffstore", Some(&args[1]), SetOp::Diff, false)
}

/// ZINTERCARD numkeys key [key …] [LIMIT limit]
pub fn zintercard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    setop_generic(ctx, args, "zintercard", None, SetOp::Inter, true)
}

// ---------------------------------------------------------------------------------------------
// ZSCAN
// ---------------------------------------------------------------------------------------------

/// A score as the small encoding stores it (Redis's `d2string`): integers plainly, anything
/// else as `%.17g`.
fn listpack_score_string(score: f64) -> String {
    const HALF_RANGE: f64 = (i64::MAX / 2) as f64;
    if score.fract() == 0.0 && score.abs() <= HALF_RANGE && score != 0.0 {
        format!("{}", score as i64)
    } else {
        num::format_g17(score)
    }
}

/// ZSCAN key cursor [MATCH pattern] [COUNT count]
pub fn zscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let cursor = match scan::parse_cursor(&args[2]) {
        Ok(c) => c,
        Err(e) => return e,
    };
    match read(ctx, &args[1]) {
        Ok(Some(_)) => {}
        Ok(None) => return scan::reply(0, Vec::new()),
        Err(e) => return e,
    }
    let opts = match scan::parse_options(args, 3, false) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let Some(Value::ZSet(z)) = ctx.db().peek(&args[1]).map(|e| &e.value) else {
        return scan::reply(0, Vec::new());
    };
    let mut out = Vec::new();
    match &z.repr {
        Repr::Listpack(items) => {
            for i in items.iter().filter(|i| opts.matches(&i.member)) {
                out.push(Reply::bulk(&i.member));
                out.push(Reply::Bulk(Bytes::from(listpack_score_string(i.score))));
            }
            scan::reply(0, out)
        }
        Repr::Skiplist(large) => {
            // Up to ten table steps per wanted element, as Redis bounds work on sparse tables.
            let mut steps = opts.count.saturating_mul(10);
            let mut visited = 0usize;
            let mut next = cursor;
            loop {
                next = large.scores.scan(next, |m, &s| {
                    visited += 1;
                    if opts.matches(m) {
                        out.push(Reply::bulk(m));
                        out.push(Reply::Bulk(Bytes::from(num::format_g17(s))));
                    }
                });
                steps = steps.saturating_sub(1);
                if next == 0 || steps == 0 || visited >= opts.count {
                    break;
                }
            }
            scan::reply(next, out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command;
    use crate::command::Exec;
    use crate::testing::*;

    fn d(v: f64) -> Reply {
        Reply::Double(v)
    }

    fn pair(m: &str, s: f64) -> Reply {
        arr(vec![bulk(m), d(s)])
    }

    fn flat(entries: &[(&str, f64)]) -> Reply {
        arr(entries.iter().flat_map(|(m, s)| [bulk(m), d(*s)]).collect())
    }

    fn empty() -> Reply {
        arr(vec![])
    }

    /// Runs a command as a RESP3 client.
    fn run3(t: &mut TestShard, args: &[&str]) -> Reply {
        let args: Vec<Bytes> = args
            .iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect();
        let cmd = match command::lookup(&args) {
            Ok(c) => c,
            Err(e) => return e,
        };
        match cmd.exec {
            Exec::Shard(f) => f(&mut Ctx::new(&mut t.shard, t.db, t.now_ms, true), &args),
            Exec::Server(_) => panic!("server command"),
        }
    }

    fn encoding(t: &TestShard, key: &str) -> &'static str {
        t.shard.dbs[0]
            .peek(key.as_bytes())
            .map_or("none", |e| e.value.encoding())
    }

    fn shard_with(entries: usize) -> TestShard {
        let mut t = TestShard::new();
        t.shard.config.zset_max_listpack_entries = entries;
        t
    }

    /// Both encodings: the default thresholds and "always skiplist".
    fn both() -> [TestShard; 2] {
        [shard_with(128), shard_with(0)]
    }

    #[test]
    fn zadd_basics_and_replies() {
        for mut t in both() {
            assert_eq!(t.run(&["zadd", "z", "1", "a", "2", "b"]), int(2));
            assert_eq!(t.run(&["zadd", "z", "3", "a", "2", "b", "0", "c"]), int(1));
            assert_eq!(t.run(&["zadd", "z", "ch", "4", "a", "2", "b"]), int(1));
            assert_eq!(t.run(&["zscore", "z", "a"]), d(4.0));
            assert_eq!(t.run(&["zcard", "z"]), int(3));
            assert_eq!(t.run(&["zrange", "z", "0", "-1"]), bulks(&["c", "b", "a"]));
            assert_eq!(t.run(&["zadd", "z", "-inf", "m", "+inf", "n"]), int(2));
            assert_eq!(t.run(&["zscore", "z", "m"]), d(f64::NEG_INFINITY));
            assert_eq!(t.run(&["zscore", "z", "n"]), d(f64::INFINITY));
        }
    }

    #[test]
    fn zadd_options() {
        for mut t in both() {
            assert_eq!(t.run(&["zadd", "z", "xx", "1", "a"]), int(0));
            assert_eq!(t.run(&["exists", "z"]), t.run(&["exists", "z"]));
            assert_eq!(t.run(&["zcard", "z"]), int(0));
            assert_eq!(t.run(&["zadd", "z", "xx", "incr", "1", "a"]), Reply::Nil);
            assert_eq!(t.run(&["zadd", "z", "nx", "10", "a"]), int(1));
            assert_eq!(t.run(&["zadd", "z", "nx", "20", "a", "5", "b"]), int(1));
            assert_eq!(t.run(&["zscore", "z", "a"]), d(10.0));
            assert_eq!(
                t.run(&["zadd", "z", "xx", "ch", "11", "a", "1", "c"]),
                int(1)
            );
            assert_eq!(t.run(&["zscore", "z", "c"]), Reply::Nil);
            // GT/LT only move scores one way but still add new members.
            assert_eq!(
                t.run(&["zadd", "z", "gt", "ch", "5", "a", "1", "c"]),
                int(1)
            );
            assert_eq!(t.run(&["zscore", "z", "a"]), d(11.0));
            assert_eq!(t.run(&["zadd", "z", "gt", "ch", "12", "a"]), int(1));
            assert_eq!(t.run(&["zadd", "z", "lt", "ch", "13", "a"]), int(0));
            assert_eq!(t.run(&["zadd", "z", "lt", "xx", "ch", "1", "a"]), int(1));
            assert_eq!(t.run(&["zscore", "z", "a"]), d(1.0));
            // INCR replies the new score, or nil when skipped.
            assert_eq!(t.run(&["zadd", "z", "incr", "2.5", "a"]), d(3.5));
            assert_eq!(t.run(&["zadd", "z", "nx", "incr", "1", "a"]), Reply::Nil);
            assert_eq!(t.run(&["zadd", "z", "gt", "incr", "-1", "a"]), Reply::Nil);
            assert_eq!(t.run(&["zadd", "z", "lt", "incr", "-1", "a"]), d(2.5));
            assert_eq!(t.run(&["zadd", "z", "incr", "0", "a"]), d(2.5));
            assert_eq!(t.run(&["zadd", "z", "incr", "5", "new"]), d(5.0));
            // Same score: not counted as changed.
            assert_eq!(t.run(&["zadd", "z", "ch", "5", "new"]), int(0));
        }
    }

    #[test]
    fn zadd_errors() {
        let mut t = TestShard::new();
        assert_eq!(
            t.run(&["zadd", "z", "xx", "nx", "1", "a"]),
            err("ERR XX and NX options at the same time are not compatible")
        );
        for opts in [["gt", "nx"], ["lt", "nx"], ["gt", "lt"]] {
            assert_eq!(
                t.run(&["zadd", "z", opts[0], opts[1], "1", "a"]),
                err("ERR GT, LT, and/or NX options at the same time are not compatible")
            );
        }
        assert_eq!(
            t.run(&["zadd", "z", "incr", "1", "a", "2", "b"]),
            err("ERR INCR option supports a single increment-element pair")
        );
        assert_eq!(t.run(&["zadd", "z", "1", "a", "2"]), err(error::SYNTAX));
        assert_eq!(t.run(&["zadd", "z", "nx", "ch"]), err(error::SYNTAX));
        for bad in ["nan", "", "1x", " 1", "abc"] {
            assert_eq!(t.run(&["zadd", "z", bad, "a"]), err(error::NOT_FLOAT));
        }
        // A bad score anywhere means nothing is added.
        assert_eq!(
            t.run(&["zadd", "z", "1", "a", "x", "b"]),
            err(error::NOT_FLOAT)
        );
        assert_eq!(t.run(&["exists", "z"]), t.run(&["exists", "nokey"]));
        assert_eq!(t.run(&["zcard", "z"]), int(0));
        t.run(&["zadd", "z", "inf", "a"]);
        assert_eq!(t.run(&["zincrby", "z", "-inf", "a"]), err(NAN_RESULT));
        assert_eq!(t.run(&["zadd", "z", "incr", "-inf", "a"]), err(NAN_RESULT));
        assert_eq!(t.run(&["zscore", "z", "a"]), d(f64::INFINITY));
        t.run(&["set", "s", "x"]);
        assert_eq!(t.run(&["zadd", "s", "1", "a"]), err(error::WRONGTYPE));
        assert_eq!(t.run(&["zincrby", "s", "1", "a"]), err(error::WRONGTYPE));
        assert_eq!(
            t.run(&["zadd", "z"]),
            err("ERR wrong number of arguments for 'zadd' command")
        );
    }

    #[test]
    fn zincrby_creates_and_increments() {
        for mut t in both() {
            assert_eq!(t.run(&["zincrby", "z", "2", "a"]), d(2.0));
            assert_eq!(t.run(&["zincrby", "z", "-5.5", "a"]), d(-3.5));
            assert_eq!(t.run(&["zincrby", "z", "x", "a"]), err(error::NOT_FLOAT));
            assert_eq!(t.run(&["zincrby", "z", "nx", "a"]), err(error::SYNTAX));
            assert_eq!(
                t.run(&["zrange", "z", "0", "-1", "withscores"]),
                flat(&[("a", -3.5)])
            );
        }
    }

    #[test]
    fn zadd_signals_blocked_keys_and_counts_writes() {
        let mut t = TestShard::new();
        t.shard.blocked_keys.insert((0, Bytes::from_static(b"z")));
        let before = t.shard.dirty;
        t.run(&["zadd", "z", "1", "a", "2", "b"]);
        assert_eq!(t.shard.ready_keys, vec![(0, Bytes::from_static(b"z"))]);
        assert_eq!(t.shard.dirty - before, 2);
        t.shard.ready_keys.clear();
        t.run(&["zadd", "z", "5", "a"]);
        assert!(
            t.shard.ready_keys.is_empty(),
            "an update does not grow the set"
        );
        t.run(&["zincrby", "z", "1", "c"]);
        assert_eq!(t.shard.ready_keys.len(), 1);
    }

    #[test]
    fn encoding_converts_by_size_and_member_length() {
        let mut t = TestShard::new();
        t.shard.config.zset_max_listpack_entries = 4;
        t.shard.config.zset_max_listpack_value = 8;
        t.run(&["zadd", "z", "1", "a", "2", "b", "3", "c", "4", "d"]);
        assert_eq!(encoding(&t, "z"), "listpack");
        t.run(&["zadd", "z", "5", "e"]);
        assert_eq!(encoding(&t, "z"), "skiplist");
        assert_eq!(
            t.run(&["zrange", "z", "0", "-1"]),
            bulks(&["a", "b", "c", "d", "e"])
        );
        // Shrinking does not convert back.
        t.run(&["zrem", "z", "a", "b", "c"]);
        assert_eq!(encoding(&t, "z"), "skiplist");
        t.run(&["zadd", "y", "1", "short"]);
        assert_eq!(encoding(&t, "y"), "listpack");
        t.run(&["zadd", "y", "1", "a-long-member"]);
        assert_eq!(encoding(&t, "y"), "skiplist");
        t.run(&["zadd", "x", "1", "a-long-member"]);
        assert_eq!(encoding(&t, "x"), "skiplist");
        assert_eq!(t.run(&["zscore", "y", "short"]), d(1.0));
    }

    #[test]
    fn zrem_zcard_zscore_zmscore_zrank() {
        for mut t in both() {
            t.run(&["zadd", "z", "1", "a", "2", "b", "3", "c"]);
            assert_eq!(t.run(&["zrank", "z", "a"]), int(0));
            assert_eq!(t.run(&["zrank", "z", "c"]), int(2));
            assert_eq!(t.run(&["zrevrank", "z", "c"]), int(0));
            assert_eq!(t.run(&["zrevrank", "z", "a"]), int(2));
            assert_eq!(t.run(&["zrank", "z", "x"]), Reply::Nil);
            assert_eq!(t.run(&["zrank", "nokey", "x"]), Reply::Nil);
            assert_eq!(
                t.run(&["zmscore", "z", "a", "x", "c"]),
                arr(vec![d(1.0), Reply::Nil, d(3.0)])
            );
            assert_eq!(
                t.run(&["zmscore", "nokey", "a", "b"]),
                arr(vec![Reply::Nil, Reply::Nil])
            );
            assert_eq!(t.run(&["zscore", "nokey", "a"]), Reply::Nil);
            assert_eq!(t.run(&["zrem", "z", "a", "x", "a"]), int(1));
            assert_eq!(t.run(&["zcard", "z"]), int(2));
            assert_eq!(t.run(&["zrem", "z", "b", "c", "d"]), int(2));
            assert_eq!(t.run(&["exists", "z"]), int(0));
            assert_eq!(t.run(&["zrem", "z", "a"]), int(0));
            assert_eq!(t.run(&["zcard", "z"]), int(0));
            t.run(&["set", "s", "x"]);
            for cmd in [
                &["zrem", "s", "a"][..],
                &["zcard", "s"],
                &["zscore", "s", "a"],
                &["zmscore", "s", "a"],
                &["zrank", "s", "a"],
                &["zrevrank", "s", "a"],
            ] {
                assert_eq!(t.run(cmd), err(error::WRONGTYPE), "{cmd:?}");
            }
            assert_eq!(
                t.run(&["zmscore", "z"]),
                err("ERR wrong number of arguments for 'zmscore' command")
            );
        }
    }

    fn abcdef(t: &mut TestShard) {
        t.run(&[
            "zadd", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e", "6", "f",
        ]);
    }

    #[test]
    fn zrange_by_rank() {
        for mut t in both() {
            abcdef(&mut t);
            assert_eq!(t.run(&["zrange", "z", "0", "1"]), bulks(&["a", "b"]));
            assert_eq!(t.run(&["zrange", "z", "-2", "-1"]), bulks(&["e", "f"]));
            assert_eq!(t.run(&["zrange", "z", "-100", "1"]), bulks(&["a", "b"]));
            assert_eq!(t.run(&["zrange", "z", "4", "100"]), bulks(&["e", "f"]));
            assert_eq!(t.run(&["zrange", "z", "3", "2"]), empty());
            assert_eq!(t.run(&["zrange", "z", "6", "7"]), empty());
            assert_eq!(t.run(&["zrange", "z", "0", "-7"]), empty());
            assert_eq!(t.run(&["zrevrange", "z", "0", "1"]), bulks(&["f", "e"]));
            assert_eq!(t.run(&["zrange", "z", "0", "1", "rev"]), bulks(&["f", "e"]));
            assert_eq!(
                t.run(&["zrevrange", "z", "-2", "-1", "withscores"]),
                flat(&[("b", 2.0), ("a", 1.0)])
            );
            assert_eq!(
                t.run(&["zrange", "z", "0", "1", "withscores"]),
                flat(&[("a", 1.0), ("b", 2.0)])
            );
            assert_eq!(
                run3(&mut t, &["zrange", "z", "0", "1", "withscores"]),
                arr(vec![pair("a", 1.0), pair("b", 2.0)])
            );
            assert_eq!(
                run3(&mut t, &["zrevrange", "z", "0", "1", "withscores"]),
                arr(vec![pair("f", 6.0), pair("e", 5.0)])
            );
            assert_eq!(run3(&mut t, &["zrange", "z", "0", "0"]), bulks(&["a"]));
            assert_eq!(t.run(&["zrange", "nokey", "0", "-1"]), empty());
            assert_eq!(
                t.run(&["zrange", "z", "0", "-1", "limit", "0", "-1"]),
                t.run(&["zrange", "z", "0", "-1"])
            );
        }
    }

    #[test]
    fn zrange_by_score() {
        for mut t in both() {
            abcdef(&mut t);
            assert_eq!(
                t.run(&["zrangebyscore", "z", "2", "4"]),
                bulks(&["b", "c", "d"])
            );
            assert_eq!(t.run(&["zrangebyscore", "z", "(2", "(4"]), bulks(&["c"]));
            assert_eq!(
                t.run(&["zrangebyscore", "z", "-inf", "+inf"]),
                t.run(&["zrange", "z", "0", "-1"])
            );
            assert_eq!(
                t.run(&["zrevrangebyscore", "z", "4", "2"]),
                bulks(&["d", "c", "b"])
            );
            assert_eq!(
                t.run(&["zrevrangebyscore", "z", "(4", "2", "withscores"]),
                flat(&[("c", 3.0), ("b", 2.0)])
            );
            assert_eq!(
                t.run(&["zrange", "z", "(4", "2", "byscore", "rev"]),
                bulks(&["c", "b"])
            );
            assert_eq!(t.run(&["zrangebyscore", "z", "4", "2"]), empty());
            assert_eq!(t.run(&["zrangebyscore", "z", "(2", "(2"]), empty());
            assert_eq!(t.run(&["zrangebyscore", "z", "2", "2"]), bulks(&["b"]));
            // LIMIT offset count, from either end.
            assert_eq!(
                t.run(&["zrangebyscore", "z", "0", "10", "limit", "1", "2"]),
                bulks(&["b", "c"])
            );
            assert_eq!(
                t.run(&["zrangebyscore", "z", "0", "10", "limit", "4", "-1"]),
                bulks(&["e", "f"])
            );
            assert_eq!(
                t.run(&["zrangebyscore", "z", "0", "10", "limit", "-1", "2"]),
                empty()
            );
            assert_eq!(
                t.run(&["zrangebyscore", "z", "0", "10", "limit", "10", "2"]),
                empty()
            );
            assert_eq!(
                t.run(&["zrangebyscore", "z", "0", "10", "limit", "0", "0"]),
                empty()
            );
            assert_eq!(
                t.run(&["zrevrangebyscore", "z", "10", "0", "limit", "1", "2"]),
                bulks(&["e", "d"])
            );
            assert_eq!(
                t.run(&["zrange", "z", "10", "3", "byscore", "rev", "limit", "2", "5"]),
                bulks(&["d", "c"])
            );
            assert_eq!(
                run3(&mut t, &["zrangebyscore", "z", "5", "6", "withscores"]),
                arr(vec![pair("e", 5.0), pair("f", 6.0)])
            );
            assert_eq!(t.run(&["zcount", "z", "2", "4"]), int(3));
            assert_eq!(t.run(&["zcount", "z", "(2", "+inf"]), int(4));
            assert_eq!(t.run(&["zcount", "z", "5", "1"]), int(0));
            assert_eq!(t.run(&["zcount", "nokey", "1", "2"]), int(0));
            for (min, max) in [("str", "1"), ("1", "str"), ("1", "NaN"), ("(", "x")] {
                assert_eq!(
                    t.run(&["zrangebyscore", "z", min, max]),
                    err(MIN_MAX_NOT_FLOAT)
                );
                assert_eq!(t.run(&["zcount", "z", min, max]), err(MIN_MAX_NOT_FLOAT));
            }
            // A lone "(" is an exclusive 0, as strtod reads it.
            assert_eq!(t.run(&["zcount", "z", "(", "10"]), int(6));
        }
    }

    #[test]
    fn score_ranges_with_infinities() {
        for mut t in both() {
            t.run(&[
                "zadd", "z", "-inf", "a", "1", "b", "2", "c", "3", "d", "4", "e", "5", "f", "+inf",
                "g",
            ]);
            for (cmd, min, max, expected) in [
                ("zrangebyscore", "-inf", "2", &["a", "b", "c"][..]),
                ("zrangebyscore", "4", "+inf", &["e", "f", "g"]),
                ("zrevrangebyscore", "+inf", "4", &["g", "f", "e"]),
                ("zrangebyscore", "(-inf", "(2", &["b"]),
                ("zrangebyscore", "(4", "(+inf", &["f"]),
                ("zrevrangebyscore", "(2", "(-inf", &["b"]),
                ("zrevrangebyscore", "(+inf", "(4", &["f"]),
                ("zrangebyscore", "2.4", "2.6", &[]),
                ("zrangebyscore", "(2.4", "(2.6", &[]),
                ("zrangebyscore", "2", "(2", &[]),
            ] {
                assert_eq!(
                    t.run(&[cmd, "z", min, max]),
                    bulks(expected),
                    "{cmd} {min} {max}"
                );
            }
            assert_eq!(
                t.run(&[
                    "zrevrangebyscore",
                    "z",
                    "5",
                    "2",
                    "limit",
                    "2",
                    "3",
                    "withscores"
                ]),
                flat(&[("d", 3.0), ("c", 2.0)])
            );
        }
    }

    fn lex(t: &mut TestShard) {
        t.run(&[
            "zadd", "l", "0", "alpha", "0", "bar", "0", "cool", "0", "down", "0", "elephant", "0",
            "foo", "0", "great", "0", "hill", "0", "omega",
        ]);
    }

    #[test]
    fn zrange_by_lex() {
        for mut t in both() {
            lex(&mut t);
            assert_eq!(
                t.run(&["zrangebylex", "l", "-", "[cool"]),
                bulks(&["alpha", "bar", "cool"])
            );
            assert_eq!(
                t.run(&["zrangebylex", "l", "-", "(cool"]),
                bulks(&["alpha", "bar"])
            );
            assert_eq!(
                t.run(&["zrangebylex", "l", "[bar", "(down"]),
                bulks(&["bar", "cool"])
            );
            assert_eq!(
                t.run(&["zrangebylex", "l", "(great", "+"]),
                bulks(&["hill", "omega"])
            );
            assert_eq!(t.run(&["zrangebylex", "l", "+", "-"]), empty());
            assert_eq!(t.run(&["zrangebylex", "l", "[d", "[c"]), empty());
            assert_eq!(
                t.run(&["zrevrangebylex", "l", "[cool", "-"]),
                bulks(&["cool", "bar", "alpha"])
            );
            assert_eq!(
                t.run(&["zrange", "l", "+", "(foo", "bylex", "rev", "limit", "1", "1"]),
                bulks(&["hill"])
            );
            assert_eq!(
                t.run(&["zrangebylex", "l", "-", "+", "limit", "2", "2"]),
                bulks(&["cool", "down"])
            );
            assert_eq!(t.run(&["zlexcount", "l", "-", "+"]), int(9));
            assert_eq!(t.run(&["zlexcount", "l", "[b", "(d"]), int(2));
            assert_eq!(t.run(&["zlexcount", "nokey", "-", "+"]), int(0));
            for (min, max) in [
                ("foo", "bar"),
                ("[foo", "bar"),
                ("foo", "[bar"),
                ("+x", "[bar"),
                ("-x", "[bar"),
                ("", "+"),
            ] {
                assert_eq!(t.run(&["zrangebylex", "l", min, max]), err(MIN_MAX_NOT_LEX));
                assert_eq!(t.run(&["zlexcount", "l", min, max]), err(MIN_MAX_NOT_LEX));
            }
        }
    }

    #[test]
    fn zrange_option_errors() {
        let mut t = TestShard::new();
        abcdef(&mut t);
        assert_eq!(
            t.run(&["zrange", "z", "0", "-1", "limit", "1", "2"]),
            err("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
        );
        assert_eq!(
            t.run(&["zrange", "z", "-", "+", "bylex", "withscores"]),
            err("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
        );
        assert_eq!(
            t.run(&["zrangebylex", "z", "-", "+", "withscores"]),
            err("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
        );
        assert_eq!(
            t.run(&["zrevrange", "z", "0", "-1", "byscore"]),
            err(error::SYNTAX)
        );
        assert_eq!(
            t.run(&["zrangebyscore", "z", "0", "-1", "rev"]),
            err(error::SYNTAX)
        );
        assert_eq!(
            t.run(&["zrange", "z", "0", "1", "rev", "rev"]),
            err(error::SYNTAX)
        );
        assert_eq!(
            t.run(&["zrange", "z", "0", "1", "byscore", "bylex"]),
            err(error::SYNTAX)
        );
        assert_eq!(
            t.run(&["zrange", "z", "0", "1", "limit", "1"]),
            err(error::SYNTAX)
        );
        assert_eq!(
            t.run(&["zrange", "z", "0", "1", "byscore", "limit", "x", "1"]),
            err(error::NOT_INTEGER)
        );
        assert_eq!(t.run(&["zrange", "z", "a", "1"]), err(error::NOT_INTEGER));
        assert_eq!(t.run(&["zrange", "z", "0", "1", "foo"]), err(error::SYNTAX));
        t.run(&["set", "s", "x"]);
        assert_eq!(t.run(&["zrange", "s", "0", "1"]), err(error::WRONGTYPE));
        assert_eq!(t.run(&["zcount", "s", "0", "1"]), err(error::WRONGTYPE));
        assert_eq!(t.run(&["zlexcount", "s", "-", "+"]), err(error::WRONGTYPE));
        // Range syntax is checked before the key.
        assert_eq!(t.run(&["zcount", "s", "x", "1"]), err(MIN_MAX_NOT_FLOAT));
    }

    #[test]
    fn zrangestore() {
        let mut t = TestShard::new();
        abcdef(&mut t);
        assert_eq!(t.run(&["zrangestore", "d", "z", "0", "2"]), int(3));
        assert_eq!(
            t.run(&["zrange", "d", "0", "-1", "withscores"]),
            flat(&[("a", 1.0), ("b", 2.0), ("c", 3.0)])
        );
        assert_eq!(
            t.run(&[
                "zrangestore",
                "d",
                "z",
                "5",
                "(3",
                "byscore",
                "rev",
                "limit",
                "0",
                "1"
            ]),
            int(1)
        );
        assert_eq!(t.run(&["zrange", "d", "0", "-1"]), bulks(&["e"]));
        assert_eq!(
            t.run(&["zrangestore", "d", "z", "[b", "[c", "bylex"]),
            int(2)
        );
        assert_eq!(t.run(&["zrangestore", "d", "z", "6", "7"]), int(0));
        assert_eq!(t.run(&["exists", "d"]), int(0));
        t.run(&["zadd", "d", "1", "x"]);
        assert_eq!(t.run(&["zrangestore", "d", "nokey", "0", "-1"]), int(0));
        assert_eq!(t.run(&["exists", "d"]), int(0));
        assert_eq!(
            t.run(&["zrangestore", "d", "z", "0", "-1", "withscores"]),
            err(error::SYNTAX)
        );
        assert_eq!(
            t.run(&["zrangestore", "d", "z", "0", "-1", "limit", "1", "2"]),
            err("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
        );
        t.run(&["set", "s", "x"]);
        t.run(&["zadd", "d", "1", "x"]);
        assert_eq!(
            t.run(&["zrangestore", "d", "s", "0", "-1"]),
            err(error::WRONGTYPE)
        );
        assert_eq!(t.run(&["zrange", "d", "0", "-1"]), bulks(&["x"]));
        // The stored set takes the encoding that fits it.
        t.shard.config.zset_max_listpack_entries = 1;
        assert_eq!(t.run(&["zrangestore", "d1", "z", "0", "0"]), int(1));
        assert_eq!(encoding(&t, "d1"), "listpack");
        assert_eq!(t.run(&["zrangestore", "d2", "z", "0", "1"]), int(2));
        assert_eq!(encoding(&t, "d2"), "skiplist");
        t.shard.config.zset_max_listpack_entries = 0;
        assert_eq!(t.run(&["zrangestore", "d3", "z", "0", "-1"]), int(6));
        assert_eq!(encoding(&t, "d3"), "skiplist");
    }

    #[test]
    fn zremrange_family() {
        for mut t in both() {
            abcdef(&mut t);
            assert_eq!(t.run(&["zremrangebyrank", "z", "0", "1"]), int(2));
            assert_eq!(t.run(&["zremrangebyrank", "z", "-1", "-1"]), int(1));
            assert_eq!(t.run(&["zremrangebyrank", "z", "5", "10"]), int(0));
            assert_eq!(t.run(&["zrange", "z", "0", "-1"]), bulks(&["c", "d", "e"]));
            assert_eq!(t.run(&["zremrangebyscore", "z", "(3", "4"]), int(1));
            assert_eq!(t.run(&["zremrangebyscore", "z", "10", "20"]), int(0));
            assert_eq!(t.run(&["zrange", "z", "0", "-1"]), bulks(&["c", "e"]));
            assert_eq!(t.run(&["zremrangebyscore", "z", "-inf", "+inf"]), int(2));
            assert_eq!(t.run(&["exists", "z"]), int(0));
            lex(&mut t);
            assert_eq!(t.run(&["zremrangebylex", "l", "[alpha", "(cool"]), int(2));
            assert_eq!(t.run(&["zremrangebylex", "l", "(great", "+"]), int(2));
            assert_eq!(
                t.run(&["zrange", "l", "0", "-1"]),
                bulks(&["cool", "down", "elephant", "foo", "great"])
            );
            assert_eq!(t.run(&["zremrangebylex", "l", "-", "+"]), int(5));
            assert_eq!(t.run(&["exists", "l"]), int(0));
            assert_eq!(t.run(&["zremrangebyrank", "nokey", "0", "-1"]), int(0));
            assert_eq!(
                t.run(&["zremrangebyrank", "z", "x", "1"]),
                err(error::NOT_INTEGER)
            );
            assert_eq!(
                t.run(&["zremrangebyscore", "z", "x", "1"]),
                err(MIN_MAX_NOT_FLOAT)
            );
            assert_eq!(
                t.run(&["zremrangebylex", "z", "x", "+"]),
                err(MIN_MAX_NOT_LEX)
            );
            t.run(&["set", "s", "x"]);
            assert_eq!(
                t.run(&["zremrangebyrank", "s", "0", "1"]),
                err(error::WRONGTYPE)
            );
        }
    }

    #[test]
    fn zpopmin_zpopmax() {
        for mut t in both() {
            abcdef(&mut t);
            assert_eq!(t.run(&["zpopmin", "z"]), flat(&[("a", 1.0)]));
            assert_eq!(t.run(&["zpopmax", "z"]), flat(&[("f", 6.0)]));
            assert_eq!(
                t.run(&["zpopmin", "z", "2"]),
                flat(&[("b", 2.0), ("c", 3.0)])
            );
            assert_eq!(t.run(&["zpopmin", "z", "0"]), empty());
            assert_eq!(run3(&mut t, &["zpopmax", "z"]), flat(&[("e", 5.0)]));
            assert_eq!(
                run3(&mut t, &["zpopmax", "z", "10"]),
                arr(vec![pair("d", 4.0)])
            );
            assert_eq!(t.run(&["exists", "z"]), int(0));
            assert_eq!(t.run(&["zpopmin", "z"]), empty());
            assert_eq!(t.run(&["zpopmin", "z", "3"]), empty());
            assert_eq!(
                t.run(&["zpopmin", "z", "-1"]),
                err("ERR value is out of range, must be positive")
            );
            assert_eq!(
                t.run(&["zpopmin", "z", "x"]),
                err("ERR value is out of range, must be positive")
            );
            assert_eq!(t.run(&["zpopmin", "z", "1", "2"]), err(error::SYNTAX));
            t.run(&["set", "s", "x"]);
            assert_eq!(t.run(&["zpopmin", "s"]), err(error::WRONGTYPE));
            assert_eq!(t.run(&["zpopmax", "s", "0"]), err(error::WRONGTYPE));
        }
    }

    #[test]
    fn zmpop() {
        let mut t = TestShard::new();
        abcdef(&mut t);
        assert_eq!(
            t.run(&["zmpop", "2", "nokey", "z", "min"]),
            arr(vec![bulk("z"), arr(vec![pair("a", 1.0)])])
        );
        assert_eq!(
            t.run(&["zmpop", "1", "z", "MAX", "count", "2"]),
            arr(vec![bulk("z"), arr(vec![pair("f", 6.0), pair("e", 5.0)])])
        );
        assert_eq!(
            run3(&mut t, &["zmpop", "1", "z", "max", "count", "10"]),
            arr(vec![
                bulk("z"),
                arr(vec![pair("d", 4.0), pair("c", 3.0), pair("b", 2.0)])
            ])
        );
        assert_eq!(t.run(&["exists", "z"]), int(0));
        assert_eq!(t.run(&["zmpop", "1", "z", "min"]), Reply::NilArray);
        for bad in ["0", "a", "-1"] {
            assert_eq!(
                t.run(&["zmpop", bad, "z", "min"]),
                err("ERR numkeys should be greater than 0")
            );
        }
        for args in [
            &["zmpop", "1", "z", "bad_where"][..],
            &["zmpop", "1", "z", "min", "bar"],
            &["zmpop", "1", "z", "max", "min"],
            &["zmpop", "1", "z", "count"],
            &["zmpop", "1", "z", "max", "count", "1", "count", "2"],
            &["zmpop", "2", "z", "y", "bad"],
            &["zmpop", "5", "z", "min"],
        ] {
            assert_eq!(t.run(args), err(error::SYNTAX), "{args:?}");
        }
        for bad in ["0", "a", "-1"] {
            assert_eq!(
                t.run(&["zmpop", "1", "z", "min", "count", bad]),
                err("ERR count should be greater than 0")
            );
        }
        t.run(&["set", "s", "x"]);
        t.run(&["zadd", "y", "1", "a"]);
        assert_eq!(
            t.run(&["zmpop", "2", "s", "y", "min"]),
            err(error::WRONGTYPE)
        );
        assert_eq!(
            t.run(&["zmpop", "1"]),
            err("ERR wrong number of arguments for 'zmpop' command")
        );
    }

    #[test]
    fn blocking_pops_make_one_attempt() {
        let mut t = TestShard::new();
        assert_eq!(t.run(&["bzpopmin", "a", "b", "0"]), Reply::NilArray);
        assert_eq!(
            t.run(&["bzmpop", "0", "2", "a", "b", "min"]),
            Reply::NilArray
        );
        t.run(&["zadd", "b", "1", "x", "2", "y", "3", "z"]);
        assert_eq!(
            t.run(&["bzpopmin", "a", "b", "0.5"]),
            arr(vec![bulk("b"), bulk("x"), d(1.0)])
        );
        assert_eq!(
            run3(&mut t, &["bzpopmax", "a", "b", "1"]),
            arr(vec![bulk("b"), bulk("z"), d(3.0)])
        );
        assert_eq!(
            t.run(&["bzmpop", "1", "2", "a", "b", "max", "count", "5"]),
            arr(vec![bulk("b"), arr(vec![pair("y", 2.0)])])
        );
        assert_eq!(t.run(&["exists", "b"]), int(0));
        for bad in ["x", "nan", ""] {
            assert_eq!(
                t.run(&["bzpopmin", "a", bad]),
                err(error::TIMEOUT_NOT_FLOAT)
            );
            assert_eq!(
                t.run(&["bzmpop", bad, "1", "a", "min"]),
                err(error::TIMEOUT_NOT_FLOAT)
            );
        }
        assert_eq!(
            t.run(&["bzpopmax", "a", "-1"]),
            err(error::TIMEOUT_NEGATIVE)
        );
        assert_eq!(
            t.run(&["bzpopmax", "a", "inf"]),
            err(error::TIMEOUT_NEGATIVE)
        );
        assert_eq!(t.run(&["bzpopmax", "a", "-0.0001"]), Reply::NilArray);
        assert_eq!(
            t.run(&["bzmpop", "-1", "1", "a", "min"]),
            err(error::TIMEOUT_NEGATIVE)
        );
        // numkeys, direction and count are checked before the timeout ("BZMPOP with illegal
        // argument": a bad numkeys is an error even with a valid timeout).
        for bad in ["0", "a", "-1"] {
            assert_eq!(
                t.run(&["bzmpop", "1", bad, "a", "min"]),
                err("ERR numkeys should be greater than 0")
            );
        }
        assert_eq!(
            t.run(&["bzmpop", "x", "0", "a", "min"]),
            err("ERR numkeys should be greater than 0")
        );
        assert_eq!(t.run(&["bzmpop", "x", "1", "a", "bad"]), err(error::SYNTAX));
        assert_eq!(
            t.run(&["bzmpop", "0", "1", "a", "min", "count", "0"]),
            err("ERR count should be greater than 0")
        );
        t.run(&["set", "s", "x"]);
        assert_eq!(t.run(&["bzpopmin", "a", "s", "0"]), err(error::WRONGTYPE));
        assert_eq!(
            t.run(&["bzmpop", "0", "1", "s", "min"]),
            err(error::WRONGTYPE)
        );
        assert_eq!(
            t.run(&["bzmpop", "0", "1"]),
            err("ERR wrong number of arguments for 'bzmpop' command")
        );
    }

    fn members_of(r: &Reply) -> Vec<String> {
        match r {
            Reply::Array(items) => items
                .iter()
                .filter_map(|i| match i {
                    Reply::Bulk(b) => Some(String::from_utf8_lossy(b).into_owned()),
                    Reply::Array(p) => match p.first() {
                        Some(Reply::Bulk(b)) => Some(String::from_utf8_lossy(b).into_owned()),
                        _ => None,
                    },
                    _ => None,
                })
                .collect(),
            _ => panic!("not an array: {r:?}"),
        }
    }

    #[test]
    fn zrandmember() {
        for mut t in both() {
            let all = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
            for (i, m) in all.iter().enumerate() {
                t.run(&["zadd", "z", &(i + 1).to_string(), m]);
            }
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..200 {
                match t.run(&["zrandmember", "z"]) {
                    Reply::Bulk(b) => {
                        seen.insert(String::from_utf8_lossy(&b).into_owned());
                    }
                    other => panic!("{other:?}"),
                }
            }
            assert_eq!(seen.len(), 10);
            assert_eq!(t.run(&["zrandmember", "nokey"]), Reply::Nil);
            assert_eq!(t.run(&["zrandmember", "nokey", "5"]), empty());
            assert_eq!(t.run(&["zrandmember", "z", "0"]), empty());
            // Negative: repetitions allowed, exactly |count| answers.
            assert_eq!(
                t.run(&["zrandmember", "z", "-9223372036854775807"]),
                err("ERR value is out of range")
            );
            let r = t.run(&["zrandmember", "z", "-25"]);
            assert_eq!(members_of(&r).len(), 25);
            let r = t.run(&["zrandmember", "z", "-3", "withscores"]);
            match &r {
                Reply::Array(v) => assert_eq!(v.len(), 6),
                _ => panic!(),
            }
            // Positive: distinct members, at most the set.
            for n in [1usize, 2, 5, 8, 10, 20] {
                let mut got = members_of(&t.run(&["zrandmember", "z", &n.to_string()]));
                got.sort();
                got.dedup();
                assert_eq!(got.len(), n.min(10));
            }
            let r = t.run(&["zrandmember", "z", "3", "withscores"]);
            if let Reply::Array(v) = &r {
                assert_eq!(v.len(), 6);
                for p in v.chunks(2) {
                    let Reply::Bulk(m) = &p[0] else { panic!() };
                    let i = all.iter().position(|x| x.as_bytes() == &m[..]).unwrap();
                    assert_eq!(p[1], d((i + 1) as f64));
                }
            }
            let r = run3(&mut t, &["zrandmember", "z", "3", "withscores"]);
            if let Reply::Array(v) = &r {
                assert_eq!(v.len(), 3);
                assert!(matches!(&v[1], Reply::Array(p) if p.len() == 2));
            }
            let r = run3(&mut t, &["zrandmember", "z", "3"]);
            assert!(
                matches!(&r, Reply::Array(v) if v.len() == 3 && matches!(v[0], Reply::Bulk(_)))
            );
            assert_eq!(
                t.run(&["zrandmember", "z", "-9223372036854770000", "withscores"]),
                err("ERR value is out of range")
            );
            let range_err = err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807");
            assert_eq!(
                t.run(&["zrandmember", "z", "-9223372036854775808", "withscores"]),
                range_err
            );
            assert_eq!(
                t.run(&["zrandmember", "z", "-9223372036854775808"]),
                range_err
            );
            assert_eq!(t.run(&["zrandmember", "z", "x"]), err(error::NOT_INTEGER));
            assert_eq!(t.run(&["zrandmember", "z", "1", "foo"]), err(error::SYNTAX));
            assert_eq!(
                t.run(&["zrandmember", "z", "1", "withscores", "x"]),
                err(error::SYNTAX)
            );
            t.run(&["set", "s", "x"]);
            assert_eq!(t.run(&["zrandmember", "s"]), err(error::WRONGTYPE));
            assert_eq!(t.run(&["zrandmember", "s", "1"]), err(error::WRONGTYPE));
        }
    }

    fn ab(t: &mut TestShard) {
        t.run(&["zadd", "za", "1", "a", "2", "b", "3", "c"]);
        t.run(&["zadd", "zb", "1", "b", "2", "c", "3", "d"]);
    }

    #[test]
    fn zunion_zinter_zdiff() {
        for mut t in both() {
            ab(&mut t);
            assert_eq!(
                t.run(&["zunion", "2", "za", "zb", "withscores"]),
                flat(&[("a", 1.0), ("b", 3.0), ("d", 3.0), ("c", 5.0)])
            );
            assert_eq!(
                t.run(&["zunion", "2", "za", "zb"]),
                bulks(&["a", "b", "d", "c"])
            );
            assert_eq!(
                t.run(&["zinter", "2", "za", "zb", "withscores"]),
                flat(&[("b", 3.0), ("c", 5.0)])
            );
            assert_eq!(
                t.run(&["zinter", "2", "za", "zb", "aggregate", "min", "withscores"]),
                flat(&[("b", 1.0), ("c", 2.0)])
            );
            assert_eq!(
                t.run(&["zunion", "2", "za", "zb", "aggregate", "max", "withscores"]),
                flat(&[("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 3.0)])
            );
            assert_eq!(
                t.run(&["zunion", "2", "za", "zb", "weights", "2", "3", "withscores"]),
                flat(&[("a", 2.0), ("b", 7.0), ("d", 9.0), ("c", 12.0)])
            );
            assert_eq!(
                t.run(&["zdiff", "2", "za", "zb", "withscores"]),
                flat(&[("a", 1.0)])
            );
            assert_eq!(t.run(&["zdiff", "2", "za", "za"]), empty());
            assert_eq!(t.run(&["zdiff", "1", "nokey"]), empty());
            assert_eq!(t.run(&["zinter", "2", "za", "nokey"]), empty());
            assert_eq!(
                t.run(&["zunion", "2", "za", "nokey"]),
                bulks(&["a", "b", "c"])
            );
            assert_eq!(
                run3(&mut t, &["zinter", "2", "za", "zb", "withscores"]),
                arr(vec![pair("b", 3.0), pair("c", 5.0)])
            );
            // Stores.
            assert_eq!(t.run(&["zunionstore", "d", "2", "za", "zb"]), int(4));
            assert_eq!(
                t.run(&["zrange", "d", "0", "-1", "withscores"]),
                flat(&[("a", 1.0), ("b", 3.0), ("d", 3.0), ("c", 5.0)])
            );
            assert_eq!(
                t.run(&["zinterstore", "d", "2", "za", "zb", "weights", "1", "-1"]),
                int(2)
            );
            assert_eq!(
                t.run(&["zrange", "d", "0", "-1", "withscores"]),
                flat(&[("b", 1.0), ("c", 1.0)])
            );
            assert_eq!(t.run(&["zdiffstore", "d", "2", "zb", "za"]), int(1));
            assert_eq!(t.run(&["zrange", "d", "0", "-1"]), bulks(&["d"]));
            assert_eq!(t.run(&["zinterstore", "d", "2", "za", "nokey"]), int(0));
            assert_eq!(t.run(&["exists", "d"]), int(0));
            // The destination may be an input.
            assert_eq!(t.run(&["zunionstore", "za", "2", "za", "zb"]), int(4));
            assert_eq!(t.run(&["zscore", "za", "c"]), d(5.0));
        }
    }

    #[test]
    fn set_operations_accept_sets_and_special_scores() {
        let mut t = TestShard::new();
        let set = SetValue::from_members(&["a", "b", "x"], 512);
        t.shard.dbs[0].set(b"s", Value::Set(set), 0, false);
        t.run(&["zadd", "z", "10", "a", "20", "b", "30", "c"]);
        assert_eq!(
            t.run(&["zinter", "2", "z", "s", "withscores"]),
            flat(&[("a", 11.0), ("b", 21.0)])
        );
        assert_eq!(
            t.run(&["zunion", "2", "s", "z", "weights", "5", "1", "withscores"]),
            flat(&[("x", 5.0), ("a", 15.0), ("b", 25.0), ("c", 30.0)])
        );
        assert_eq!(
            t.run(&["zdiff", "2", "s", "z", "withscores"]),
            flat(&[("x", 1.0)])
        );
        assert_eq!(t.run(&["zintercard", "2", "s", "z"]), int(2));
        // inf + -inf is 0 in SUM; inf × 0 is 0.
        t.run(&["zadd", "p", "inf", "m"]);
        t.run(&["zadd", "n", "-inf", "m"]);
        assert_eq!(
            t.run(&["zunion", "2", "p", "n", "withscores"]),
            flat(&[("m", 0.0)])
        );
        assert_eq!(
            t.run(&["zinter", "2", "p", "n", "withscores"]),
            flat(&[("m", 0.0)])
        );
        assert_eq!(
            t.run(&["zunion", "1", "p", "weights", "0", "withscores"]),
            flat(&[("m", 0.0)])
        );
        assert_eq!(
            t.run(&["zunion", "2", "p", "n", "aggregate", "max", "withscores"]),
            flat(&[("m", f64::INFINITY)])
        );
    }

    #[test]
    fn set_operation_errors() {
        let mut t = TestShard::new();
        ab(&mut t);
        for (cmd, args) in [
            ("zunion", &["zunion", "0", "za"][..]),
            ("zinter", &["zinter", "0", "za"]),
            ("zdiff", &["zdiff", "0", "za"]),
            ("zintercard", &["zintercard", "0", "za"]),
            ("zunionstore", &["zunionstore", "d", "0", "za"]),
            ("zinterstore", &["zinterstore", "d", "-1", "za"]),
            ("zdiffstore", &["zdiffstore", "d", "0", "za"]),
        ] {
            assert_eq!(
                t.run(args),
                Reply::error(format!(
                    "ERR at least 1 input key is needed for '{cmd}' command"
                ))
            );
        }
        assert_eq!(t.run(&["zunion", "x", "za"]), err(error::NOT_INTEGER));
        assert_eq!(t.run(&["zunion", "3", "za", "zb"]), err(error::SYNTAX));
        for args in [
            &["zunionstore", "d", "2", "za", "zb", "withscores"][..],
            &["zinterstore", "d", "2", "za", "zb", "withscores"],
            &["zdiffstore", "d", "2", "za", "zb", "withscores"],
            &["zdiff", "2", "za", "zb", "weights", "1", "2"],
            &["zdiff", "2", "za", "zb", "aggregate", "sum"],
            &["zunion", "2", "za", "zb", "weights", "1"],
            &["zunion", "2", "za", "zb", "aggregate", "avg"],
            &["zunion", "2", "za", "zb", "aggregate"],
            &["zunion", "2", "za", "zb", "foo"],
            &["zintercard", "1", "za", "za"],
            &["zintercard", "1", "za", "bar"],
            &["zintercard", "1", "za", "limit"],
            &["zintercard", "1", "za", "withscores"],
        ] {
            assert_eq!(t.run(args), err(error::SYNTAX), "{args:?}");
        }
        assert_eq!(
            t.run(&["zunion", "2", "za", "zb", "weights", "1", "x"]),
            err("ERR weight value is not a float")
        );
        for bad in ["-1", "a"] {
            assert_eq!(
                t.run(&["zintercard", "1", "za", "limit", bad]),
                err("ERR LIMIT can't be negative")
            );
        }
        t.run(&["set", "s", "x"]);
        assert_eq!(t.run(&["zunion", "2", "za", "s"]), err(error::WRONGTYPE));
        // The type check comes before the options.
        assert_eq!(
            t.run(&["zinter", "2", "za", "s", "foo"]),
            err(error::WRONGTYPE)
        );
        assert_eq!(
            t.run(&["zunionstore", "d", "1", "s"]),
            err(error::WRONGTYPE)
        );
    }

    #[test]
    fn zintercard() {
        for mut t in both() {
            ab(&mut t);
            assert_eq!(t.run(&["zintercard", "2", "za", "zb"]), int(2));
            assert_eq!(
                t.run(&["zintercard", "2", "za", "zb", "limit", "0"]),
                int(2)
            );
            assert_eq!(
                t.run(&["zintercard", "2", "za", "zb", "limit", "1"]),
                int(1)
            );
            assert_eq!(
                t.run(&["zintercard", "2", "za", "zb", "LIMIT", "10"]),
                int(2)
            );
            assert_eq!(t.run(&["zintercard", "2", "za", "nokey"]), int(0));
        }
    }

    fn scan_all(t: &mut TestShard, key: &str, extra: &[&str]) -> (usize, Vec<(String, String)>) {
        let mut cursor = "0".to_string();
        let mut out = Vec::new();
        let mut calls = 0;
        loop {
            let mut args = vec!["zscan", key, &cursor];
            args.extend_from_slice(extra);
            let Reply::Array(parts) = t.run(&args) else {
                panic!("not an array")
            };
            calls += 1;
            let (Reply::Bulk(c), Reply::Array(items)) = (&parts[0], &parts[1]) else {
                panic!("bad scan reply")
            };
            for p in items.chunks(2) {
                let (Reply::Bulk(m), Reply::Bulk(s)) = (&p[0], &p[1]) else {
                    panic!("bad pair")
                };
                out.push((
                    String::from_utf8_lossy(m).into_owned(),
                    String::from_utf8_lossy(s).into_owned(),
                ));
            }
            cursor = String::from_utf8_lossy(c).into_owned();
            if cursor == "0" {
                return (calls, out);
            }
        }
    }

    #[test]
    fn zscan() {
        for mut t in both() {
            for i in 0..100 {
                t.run(&["zadd", "z", &format!("{i}.5"), &format!("m{i}")]);
            }
            let (_, mut got) = scan_all(&mut t, "z", &[]);
            got.sort();
            got.dedup();
            assert_eq!(got.len(), 100);
            assert!(got.contains(&("m7".to_string(), "7.5".to_string())));
            let (_, got) = scan_all(&mut t, "z", &["match", "*", "count", "5"]);
            assert!(got.len() >= 100);
            assert_eq!(
                t.run(&["zscan", "nokey", "0"]),
                arr(vec![bulk("0"), empty()])
            );
            assert_eq!(t.run(&["zscan", "z", "x"]), err("ERR invalid cursor"));
            assert_eq!(
                t.run(&["zscan", "z", "0", "count", "0"]),
                err(error::SYNTAX)
            );
            assert_eq!(t.run(&["zscan", "z", "0", "foo"]), err(error::SYNTAX));
            t.run(&["set", "s", "x"]);
            assert_eq!(t.run(&["zscan", "s", "0"]), err(error::WRONGTYPE));
        }
        let mut t = TestShard::new();
        t.run(&["zadd", "small", "1", "a", "2.5", "b", "-0", "c"]);
        assert_eq!(
            t.run(&["zscan", "small", "0"]),
            arr(vec![bulk("0"), bulks(&["c", "-0", "a", "1", "b", "2.5"])])
        );
    }

    #[test]
    fn binary_members_and_scores_round_trip() {
        for mut t in both() {
            let m = Bytes::from_static(b"\x00\xff\r\nbin");
            let args = vec![
                Bytes::from_static(b"zadd"),
                Bytes::from_static(b"z"),
                Bytes::from_static(b"1.5"),
                m.clone(),
            ];
            assert_eq!(t.run_bytes(&args), int(1));
            let args = vec![
                Bytes::from_static(b"zscore"),
                Bytes::from_static(b"z"),
                m.clone(),
            ];
            assert_eq!(t.run_bytes(&args), d(1.5));
            assert_eq!(
                t.run(&["zrange", "z", "0", "-1"]),
                arr(vec![Reply::Bulk(m.clone())])
            );
        }
    }

    /// Random commands against both encodings give identical replies.
    #[test]
    fn encodings_agree_on_random_workload() {
        let mut small = shard_with(100_000);
        small.shard.config.zset_max_listpack_value = 1 << 20;
        let mut large = shard_with(0);
        let mut next = crate::testing::xorshift(0x1234_5678_9abc_def0u64);
        for _ in 0..3000 {
            let m = format!("m{}", next(300));
            let s = format!("{}", next(50) as i64 - 25);
            let a = format!("{}", next(40) as i64 - 20);
            let b = format!("{}", next(40) as i64 - 20);
            let cmd: Vec<&str> = match next(12) {
                0..=3 => vec!["zadd", "z", &s, &m],
                4 => vec!["zincrby", "z", &s, &m],
                5 => vec!["zrem", "z", &m],
                6 => vec!["zrank", "z", &m],
                7 => vec!["zrange", "z", &a, &b, "withscores"],
                8 => vec![
                    "zrangebyscore",
                    "z",
                    &a,
                    &b,
                    "withscores",
                    "limit",
                    "1",
                    "5",
                ],
                9 => vec!["zrevrangebyscore", "z", &b, &a, "withscores"],
                10 => vec!["zremrangebyscore", "z", &a, &a],
                _ => vec!["zcount", "z", &a, &b],
            };
            assert_eq!(small.run(&cmd), large.run(&cmd), "{cmd:?}");
        }
        assert_eq!(encoding(&small, "z"), "listpack");
        assert_eq!(encoding(&large, "z"), "skiplist");
        assert_eq!(
            small.run(&["zrange", "z", "0", "-1", "withscores"]),
            large.run(&["zrange", "z", "0", "-1", "withscores"])
        );
    }

    #[test]
    fn large_set_ranks_and_ranges() {
        let mut t = TestShard::new();
        let mut z = ZSetValue::new();
        let limits = Limits {
            max_entries: 128,
            max_value: 64,
        };
        for i in 0..5000 {
            z.insert(format!("m{i:05}").as_bytes(), i as f64, limits);
        }
        assert_eq!(z.encoding(), "skiplist");
        t.shard.dbs[0].set(b"z", Value::ZSet(z), 0, false);
        assert_eq!(t.run(&["zrank", "z", "m04321"]), int(4321));
        assert_eq!(t.run(&["zrevrank", "z", "m04321"]), int(678));
        assert_eq!(t.run(&["zcount", "z", "(1000", "2000"]), int(1000));
        assert_eq!(
            t.run(&["zrangebyscore", "z", "2500", "+inf", "limit", "100", "2"]),
            bulks(&["m02600", "m02601"])
        );
        assert_eq!(t.run(&["zremrangebyrank", "z", "100", "-101"]), int(4800));
        assert_eq!(t.run(&["zcard", "z"]), int(200));
        assert_eq!(
            t.run(&["zrange", "z", "99", "100"]),
            bulks(&["m00099", "m04900"])
        );
    }

    /// Redis's "ZSETs ZRANK augmented skip list stress testing": random adds and removes on
    /// a set that stays in one encoding, checking after each step that the member found at a
    /// random rank reports that rank.
    #[test]
    fn zrank_matches_zrange_index_under_churn() {
        for (mut t, elements) in [(shard_with(128), 128u64), (shard_with(0), 100)] {
            let expected = if elements == 128 {
                "listpack"
            } else {
                "skiplist"
            };
            let mut next = crate::testing::xorshift(0x0dd_ba11_cafe_f00d);
            for k in 0..2000u64 {
                let member = (k % elements).to_string();
                if next(5) == 0 {
                    t.run(&["zrem", "z", &member]);
                } else {
                    let score = format!("0.{}", next(1_000_000_000));
                    t.run(&["zadd", "z", &score, &member]);
                    assert_eq!(encoding(&t, "z"), expected);
                }
                let Reply::Int(card) = t.run(&["zcard", "z"]) else {
                    panic!("zcard")
                };
                if card > 0 {
                    let index = next(card as u64).to_string();
                    let got = t.run(&["zrange", "z", &index, &index]);
                    let Reply::Array(items) = got else {
                        panic!("zrange")
                    };
                    let Some(Reply::Bulk(m)) = items.first() else {
                        panic!("zrange item")
                    };
                    let m = String::from_utf8_lossy(m).into_owned();
                    assert_eq!(t.run(&["zrank", "z", &m]), int(index.parse().unwrap()));
                }
            }
        }
    }

    /// A score range's bounds as arguments, and what a score inside it satisfies.
    type Check<'a> = (&'a str, &'a str, &'a dyn Fn(f64) -> bool);

    /// Redis's "ZRANGEBYSCORE fuzzy test": for random bounds, inclusive and exclusive, the
    /// ranges below, between and above them hold what ZCOUNT says and only fitting scores.
    #[test]
    fn zrangebyscore_and_zcount_agree_on_random_bounds() {
        for (mut t, elements) in [(shard_with(128), 128u64), (shard_with(0), 100)] {
            let mut next = crate::testing::xorshift(0x5eed_0123_4567_89ab);
            let rand = |next: &mut dyn FnMut(u64) -> u64| next(1_000_000) as f64 / 1e6;
            for i in 0..elements {
                let score = rand(&mut next).to_string();
                t.run(&["zadd", "z", &score, &i.to_string()]);
            }
            for _ in 0..100 {
                let (a, b) = (rand(&mut next), rand(&mut next));
                let (min, max) = (a.min(b), a.max(b));
                let (smin, smax) = (min.to_string(), max.to_string());
                let (xmin, xmax) = (format!("({smin}"), format!("({smax}"));
                let checks: [Check<'_>; 6] = [
                    ("-inf", &smin, &|s| s <= min),
                    (&smin, &smax, &|s| s >= min && s <= max),
                    (&smax, "+inf", &|s| s >= max),
                    ("-inf", &xmin, &|s| s < min),
                    (&xmin, &xmax, &|s| s > min && s < max),
                    (&xmax, "+inf", &|s| s > max),
                ];
                for (lo, hi, fits) in checks {
                    let got = t.run(&["zrangebyscore", "z", lo, hi, "withscores"]);
                    let Reply::Array(items) = got else {
                        panic!("zrangebyscore")
                    };
                    assert_eq!(
                        t.run(&["zcount", "z", lo, hi]),
                        int((items.len() / 2) as i64)
                    );
                    for pair in items.chunks(2) {
                        let Reply::Double(score) = pair[1] else {
                            panic!("score")
                        };
                        assert!(fits(score), "{score} outside {lo} {hi}");
                    }
                }
            }
        }
    }

    /// Redis's events for the sorted set commands (pubsub.tcl's "zset events test",
    /// t_zset.c): zadd or zincr only when a member was added or its score changed, zrem and
    /// the ZREMRANGEBY* events when members went, zpopmin / zpopmax for every pop form, the
    /// STORE commands' own events or del for an empty result, del when a set is emptied.
    #[test]
    fn keyspace_events() {
        let mut t = TestShard::new();
        t.notify_all();
        let none = Vec::<String>::new();
        let ev = |t: &mut TestShard, line: &str| {
            let args: Vec<&str> = line.split(' ').collect();
            t.events_of(&args)
        };
        assert_eq!(ev(&mut t, "zadd z 1 a 2 b"), ["n new 0:z", "z zadd 0:z"]);
        assert_eq!(ev(&mut t, "zrem z x"), none);
        assert_eq!(ev(&mut t, "zadd z 3 x 4 y 5 z"), ["z zadd 0:z"]);
        assert_eq!(ev(&mut t, "zrem z x"), ["z zrem 0:z"]);
        assert_eq!(ev(&mut t, "zadd z 1 a"), none);
        assert_eq!(ev(&mut t, "zadd z nx 9 a"), none);
        assert_eq!(ev(&mut t, "zadd z gt 0 a"), none);
        assert_eq!(ev(&mut t, "zadd z 7 a"), ["z zadd 0:z"]);
        assert_eq!(ev(&mut t, "zadd nokey xx 1 a"), none);
        assert_eq!(ev(&mut t, "zadd z incr 1 a"), ["z zincr 0:z"]);
        assert_eq!(ev(&mut t, "zincrby z 1 a"), ["z zincr 0:z"]);
        assert_eq!(ev(&mut t, "zincrby zi 1 a"), ["n new 0:zi", "z zincr 0:zi"]);
        assert_eq!(ev(&mut t, "zadd zi incr nx 1 a"), none);
        t.run(&["zadd", "zi", "inf", "a"]);
        assert_eq!(ev(&mut t, "zincrby zi -inf a"), none);
        assert_eq!(ev(&mut t, "zadd z 1 bad x"), none);

        assert_eq!(ev(&mut t, "zremrangebyrank z 10 20"), none);
        assert_eq!(
            ev(&mut t, "zremrangebyrank z 0 0"),
            ["z zremrangebyrank 0:z"]
        );
        assert_eq!(ev(&mut t, "zremrangebyscore z 100 200"), none);
        assert_eq!(
            ev(&mut t, "zremrangebyscore z 0 4"),
            ["z zremrangebyscore 0:z"]
        );
        assert_eq!(ev(&mut t, "zremrangebylex nokey - +"), none);
        assert_eq!(
            ev(&mut t, "zremrangebylex z - +"),
            ["z zremrangebylex 0:z", "g del 0:z"]
        );
        t.run(&["zadd", "z", "1", "a"]);
        assert_eq!(ev(&mut t, "zrem z a b"), ["z zrem 0:z", "g del 0:z"]);

        t.run(&["zadd", "z", "1", "a", "2", "b", "3", "c"]);
        assert_eq!(ev(&mut t, "zpopmin z"), ["z zpopmin 0:z"]);
        assert_eq!(ev(&mut t, "zpopmax z 0"), none);
        assert_eq!(ev(&mut t, "zpopmax nokey"), none);
        assert_eq!(ev(&mut t, "bzpopmax nokey z 0"), ["z zpopmax 0:z"]);
        assert_eq!(
            ev(&mut t, "zmpop 2 nokey z min count 5"),
            ["z zpopmin 0:z", "g del 0:z"]
        );
        t.run(&["zadd", "z", "1", "a"]);
        assert_eq!(
            ev(&mut t, "bzmpop 0 1 z max"),
            ["z zpopmax 0:z", "g del 0:z"]
        );
        t.run(&["zadd", "z", "1", "a"]);
        assert_eq!(ev(&mut t, "zpopmax z 10"), ["z zpopmax 0:z", "g del 0:z"]);

        t.run(&["zadd", "x", "1", "a", "2", "b"]);
        t.run(&["zadd", "y", "2", "b", "3", "c"]);
        assert_eq!(
            ev(&mut t, "zunionstore d 2 x y"),
            ["n new 0:d", "z zunionstore 0:d"]
        );
        assert_eq!(ev(&mut t, "zinterstore d 2 x y"), ["z zinterstore 0:d"]);
        assert_eq!(ev(&mut t, "zdiffstore d 2 x y"), ["z zdiffstore 0:d"]);
        assert_eq!(ev(&mut t, "zrangestore d x 0 0"), ["z zrangestore 0:d"]);
        assert_eq!(ev(&mut t, "zrangestore d x 5 10"), ["g del 0:d"]);
        assert_eq!(ev(&mut t, "zdiffstore d 2 x x"), none);
        assert_eq!(ev(&mut t, "zinterstore d 2 x nokey"), ["m keymiss 0:nokey"]);
        t.run(&["zadd", "d", "1", "a"]);
        assert_eq!(
            ev(&mut t, "zrangestore d nokey 0 -1"),
            ["m keymiss 0:nokey", "g del 0:d"]
        );

        for line in [
            "zcard nokey",
            "zscore nokey a",
            "zmscore nokey a",
            "zrank nokey a",
            "zrevrank nokey a",
            "zrange nokey 0 -1",
            "zrevrange nokey 0 -1",
            "zrangebyscore nokey 0 1",
            "zrangebylex nokey - +",
            "zcount nokey 0 1",
            "zlexcount nokey - +",
            "zrandmember nokey",
            "zrandmember nokey 2",
            "zunion 1 nokey",
            "zinter 1 nokey",
            "zdiff 1 nokey",
            "zintercard 1 nokey",
            "zscan nokey 0",
        ] {
            assert_eq!(ev(&mut t, line), ["m keymiss 0:nokey"], "{line}");
        }
    }
}
