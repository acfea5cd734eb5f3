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
use shardis_resp::Reply;
use std::sync::Arc;

use crate::command::table::Registration;
use crate::dict::Dict;
use crate::error;
use crate::num;
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
    Registration::shard("bzpopmin", bzpopmin),
    Registration::shard("bzpopmax", bzpopmax),
    Registration::shard("bzmpop", bzmpop),
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
    fn of(ctx: &Ctx<'_>) -> Limits {
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
                items.insert(at, Item::new(score, Arc::from(member)));
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
                let member: Member = Arc::from(member);
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

/// Stores a computed set at `dst` (deleting `dst` when it is empty) and replies its size.
fn store_result(ctx: &mut Ctx<'_>, dst: &[u8], items: Vec<Item>) -> Reply {
    let n = items.len() as i64;
    if n == 0 {
        ctx.delete(dst);
    } else {
        let z = ZSetValue::from_items(items, Limits::of(ctx));
        ctx.set(dst, Value::ZSet(z));
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
                z.count_while(|i| if r.min_ex { i.score <= r.min } else { i.score < r.min }),
                z.count_while(|i| if r.max_ex { i.score < r.max } else { i.score <= r.max }),
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
                Some(dst) => store_result(ctx, dst, Vec::new()),
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
            store_result(ctx, dst, items)
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
    remove_span(ctx, &args[1], |z| rank_span(z.len(), start, end, false))
}

/// ZREMRANGEBYSCORE key min max
pub fn zremrangebyscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match ScoreRange::parse(&args[2], &args[3]) {
        Ok(r) => remove_span(ctx, &args[1], |z| Range::Score(r).ranks(z)),
        Err(e) => e,
    }
}

/// ZREMRANGEBYLEX key min max
pub fn zremrangebylex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match Range::parse_lex(&args[2], &args[3]) {
        Ok(r) => remove_span(ctx, &args[1], |z| r.ranks(z)),
        Err(e) => e,
    }
}

fn remove_span(
    ctx: &mut Ctx<'_>,
    key: &[u8],
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
    if pairs == 0 || pairs % 2 != 0 {
        return error::syntax();
    }
    if flags.nx && flags.xx {
        return Reply::err("ERR XX and NX options at the same time are not compatible");
    }
    if (flags.gt && flags.nx) || (flags.lt && flags.nx) || (flags.gt && flags.lt) {
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
            let clock = ctx.clock_secs();
            ctx.db().set(key, Value::ZSet(z), clock);
        }
    }
    ctx.dirty(added + updated);
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
        Some(c) => match parse_ranged(c, 0, i64::MAX, "ERR value is out of range, must be positive")
        {
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

/// Checks a blocking command's timeout as Redis does (seconds as a long double, turned into
/// whole milliseconds rounded up); the runtime does the waiting.
fn check_timeout(arg: &[u8]) -> Result<(), Reply> {
    let secs = num::parse_f64(arg).ok_or(Reply::err(error::TIMEOUT_NOT_FLOAT))?;
    let ms = (secs * 1000.0).ceil();
    // C's conversion of an out-of-range value to long long gives LLONG_MIN: negative.
    if ms < 0.0 || ms >= 9.223_372_036_854_775_807e18 {
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
    let count = match num::parse_i64(count_arg) {
        None => return error::not_integer(),
        Some(i64::MIN) => {
            return Reply::err(
                "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
            )
        }
        Some(n) => n,
    };
    let withscores = match args.get(3) {
        None => false,
        Some(a) if args.len() == 4 && eq(a, "withscores") => true,
        Some(_) => return error::syntax(),
    };
    if withscores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        return Reply::err("ERR value is out of range");
    }
    let resp3 = ctx.resp3;
    let mut seed = ctx.rand();
    let z = match read(ctx, &args[1]) {
        Ok(Some(z)) => z,
        Ok(None) => return Reply::Array(Vec::new()),
        Err(e) => return e,
    };
    let mut rand = move || {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let size = z.len();
    let wanted = count.unsigned_abs();
    let mut out = Vec::new();
    let emit = |rank: usize, out: &mut Vec<Reply>| {
        if let Some(i) = z.get(rank) {
            push_entry(out, &i.member, i.score, withscores, resp3);
        }
    };
    if count < 0 || wanted == 1 {
        // With repetitions, in random order.
        for _ in 0..wanted {
            emit((rand() % size as u64) as usize, &mut out);
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
                let j = i + (rand() % (size - i) as u64) as usize;
                all.swap(i, j);
            }
            all.truncate(wanted);
            all
        } else {
            let mut seen = ahash::HashSet::default();
            let mut picked = Vec::with_capacity(wanted);
            while picked.len() < wanted {
                let r = (rand() % size as u64) as usize;
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
    Set(&'a SetValue),
}

impl<'a> Source<'a> {
    fn len(&self) -> usize {
        match self {
            Source::Empty => 0,
            Source::ZSet(z) => z.len(),
            Source::Set(s) => s.members.len(),
        }
    }

    fn find(&self, member: &[u8]) -> Option<f64> {
        match self {
            Source::Empty => None,
            Source::ZSet(z) => z.score(member),
            Source::Set(s) => s.members.contains_key(member).then_some(1.0),
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
            Source::Set(s) => {
                for (m, _) in s.members.iter() {
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
        .map(|(m, s)| Item::new(s, Arc::from(m)))
        .collect();
    items.sort_by(|a, b| cmp_entries(a.score, &a.member, b.score, &b.member));
    SetOpResult::Items(items)
}

/// The shared body of ZUNION, ZINTER, ZDIFF, their STORE forms and ZINTERCARD.
fn setop_generic(
    ctx: &mut Ctx<'_>,
    args: &[Bytes],
    name: &str,
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
        let mut inputs: Vec<(Source<'_>, f64)> = keys
            .iter()
            .zip(weights)
            .map(|(k, w)| {
                let src = match db.peek(k).map(|e| &e.value) {
                    Some(Value::ZSet(z)) => Source::ZSet(z),
                    Some(Value::Set(s)) => Source::Set(s),
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
            Some(dst) => store_result(ctx, dst, items),
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
    setop_generic(ctx, args, "zunionstore", Some(&args[1]), SetOp::Union, false)
}

/// ZINTERSTORE dst numkeys key [key …] [WEIGHTS w…] [AGGREGATE SUM|MIN|MAX]
pub fn zinterstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    setop_generic(ctx, args, "zinterstore", Some(&args[1]), SetOp::Inter, false)
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
    if score.fract() == 0.0 && score.abs() < 4.5e15 && score != 0.0 {
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
