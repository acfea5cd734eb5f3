//! Sorted set commands (Redis's `t_zset.c`) and the sorted set value.
//!
//! A sorted set is kept as Redis keeps it, in one of two encodings: "listpack", a compact
//! array sorted by (score, member) used while the set is small (`zset-max-listpack-entries`
//! members, each at most `zset-max-listpack-value` bytes), and "skiplist", a member → score
//! map plus an ordered index with rank queries (see [`crate::order_tree`]). A set converts to
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
use crate::error;
use crate::notify::{NEW, ZSET};
use crate::num;
use crate::order_tree::{cmp_entries, Item, Member};
use crate::sample::{self, SampleBudget};
use crate::scan;
use crate::shard::Ctx;
use crate::t_set::SetValue;
use crate::value::Value;

mod setops;
mod value;

pub use setops::{zdiff, zdiffstore, zinter, zintercard, zinterstore, zunion, zunionstore};
use value::Repr;
pub use value::{Limits, ZSetValue};

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
mod tests;
