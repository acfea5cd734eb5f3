//! XADD, XLEN, XRANGE, XREVRANGE, XDEL, XTRIM and XSETID.

use bytes::Bytes;
use shardis_resp::Reply;

use super::id::{self, is_word, NewId, StreamId};
use super::stream::{AppendError, NodeLimits, StreamValue, Trim, TrimSpec};
use super::{entries_reply, parse_int, read_stream, tri, write_stream};
use crate::error;
use crate::notify::STREAM;
use crate::shard::Ctx;
use crate::value::Value;

const BOTH_STRATEGIES: &str =
    "ERR syntax error, MAXLEN and MINID options at the same time are not compatible";
const MAXLEN_NEGATIVE: &str = "ERR The MAXLEN argument must be >= 0.";
const LIMIT_NEGATIVE: &str = "ERR The LIMIT argument must be >= 0.";
const LIMIT_WITHOUT_STRATEGY: &str =
    "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy";
const XTRIM_WITHOUT_STRATEGY: &str =
    "ERR syntax error, XTRIM must be called with a trimming strategy";
const LIMIT_WITHOUT_APPROX: &str =
    "ERR syntax error, LIMIT cannot be used without the special ~ option";
const ID_ZERO: &str = "ERR The ID specified in XADD must be greater than 0-0";
const EXHAUSTED: &str =
    "ERR The stream has exhausted the last possible ID, unable to add more items";
const ID_TOO_SMALL: &str =
    "ERR The ID specified in XADD is equal or smaller than the target stream top item";
const TOO_LARGE: &str = "ERR Elements are too large to be stored";
const SETID_ENTRIES_NEGATIVE: &str = "ERR entries_added must be positive";
const SETID_BELOW_MAX_DELETED: &str =
    "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id";
const SETID_BELOW_TOP: &str =
    "ERR The ID specified in XSETID is smaller than the target stream top item";
const SETID_BELOW_LENGTH: &str =
    "ERR The entries_added specified in XSETID is smaller than the target stream length";

/// Entries an approximate trim may remove per node when LIMIT is not given.
const DEFAULT_LIMIT_PER_NODE: i64 = 100;

/// The node limits of the shard's configuration.
pub(super) fn node_limits(ctx: &Ctx<'_>) -> NodeLimits {
    NodeLimits {
        max_bytes: ctx.shard.config.stream_node_max_bytes,
        max_entries: ctx.shard.config.stream_node_max_entries,
    }
}

/// The options of XADD and XTRIM.
struct AddTrimArgs {
    /// Where XADD's ID is (its field-value pairs follow).
    id_pos: usize,
    new_id: NewId,
    no_mkstream: bool,
    trim: Option<TrimSpec>,
}

/// Parses the options of XADD (up to the ID) or of XTRIM, as Redis's
/// `streamParseAddOrTrimArgsOrReply`.
fn parse_add_or_trim(ctx: &Ctx<'_>, args: &[Bytes], xadd: bool) -> Result<AddTrimArgs, Reply> {
    let mut parsed = AddTrimArgs {
        id_pos: args.len(),
        new_id: NewId::Auto,
        no_mkstream: false,
        trim: None,
    };
    let mut strategy = None;
    let mut approx = false;
    let mut limit = 0i64;
    let mut limit_given = false;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = &args[i];
        if xadd && id::c_str(opt) == b"*" {
            parsed.id_pos = i;
            break;
        } else if (is_word(opt, "maxlen") || is_word(opt, "minid")) && more > 0 {
            if strategy.is_some() {
                return Err(Reply::err(BOTH_STRATEGIES));
            }
            approx = false;
            if more >= 2 {
                match id::c_str(&args[i + 1]) {
                    b"~" => {
                        approx = true;
                        i += 1;
                    }
                    b"=" => i += 1,
                    _ => {}
                }
            }
            let value = &args[i + 1];
            strategy = Some(if is_word(opt, "maxlen") {
                let max = parse_int(value)?;
                Trim::MaxLen(u64::try_from(max).map_err(|_| Reply::err(MAXLEN_NEGATIVE))?)
            } else {
                Trim::MinId(id::parse_strict_id(value)?)
            });
            i += 1;
        } else if is_word(opt, "limit") && more > 0 {
            limit = parse_int(&args[i + 1])?;
            if limit < 0 {
                return Err(Reply::err(LIMIT_NEGATIVE));
            }
            limit_given = true;
            i += 1;
        } else if xadd && is_word(opt, "nomkstream") {
            parsed.no_mkstream = true;
        } else if xadd {
            parsed.new_id = id::parse_new_id(opt)?;
            parsed.id_pos = i;
            break;
        } else {
            return Err(error::syntax());
        }
        i += 1;
    }
    if limit != 0 && strategy.is_none() {
        return Err(Reply::err(LIMIT_WITHOUT_STRATEGY));
    }
    if strategy.is_none() && !xadd {
        return Err(Reply::err(XTRIM_WITHOUT_STRATEGY));
    }
    if limit_given && !approx {
        return Err(Reply::err(LIMIT_WITHOUT_APPROX));
    }
    let Some(trim) = strategy else {
        return Ok(parsed);
    };
    if !limit_given {
        limit = if approx {
            // At most a hundred nodes' worth of entries, within sane bounds.
            match ctx
                .shard
                .config
                .stream_node_max_entries
                .saturating_mul(DEFAULT_LIMIT_PER_NODE)
            {
                n if n <= 0 => 10_000,
                n => n.min(1_000_000),
            }
        } else {
            0
        };
    }
    parsed.trim = Some(TrimSpec {
        trim,
        approx,
        limit: limit as u64,
    });
    Ok(parsed)
}

/// XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value
/// [field value ...]
pub fn xadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let parsed = tri!(parse_add_or_trim(ctx, args, true));
    let pairs = args.get(parsed.id_pos + 1..).unwrap_or_default();
    if pairs.len() < 2 || !pairs.len().is_multiple_of(2) {
        return error::wrong_arity("xadd");
    }
    if parsed.new_id == NewId::Explicit(StreamId::MIN) {
        return Reply::err(ID_ZERO);
    }
    let key = &args[1];
    let created = match write_stream(ctx, key) {
        Err(e) => return e,
        Ok(None) if parsed.no_mkstream => return Reply::Nil,
        Ok(None) => {
            ctx.set(key, empty_stream());
            true
        }
        Ok(Some(_)) => false,
    };
    let (now, limits) = (ctx.now_ms, node_limits(ctx));
    let Ok(Some(stream)) = write_stream(ctx, key) else {
        return Reply::Nil;
    };
    if stream.last_id() == StreamId::MAX {
        return Reply::err(EXHAUSTED);
    }
    let added = match stream.append(parsed.new_id, pairs, now, limits) {
        Ok(id) => id,
        Err(AppendError::IdTooSmall) => return Reply::err(ID_TOO_SMALL),
        Err(AppendError::TooLarge) => return Reply::err(TOO_LARGE),
    };
    let trimmed = parsed.trim.map_or(0, |spec| stream.trim(spec));
    let exact = exact_trim(stream, parsed.trim);
    // Storing a new key counted the command's one write.
    if !created {
        ctx.dirty(1);
    }
    ctx.signal_ready(key);
    ctx.notify(STREAM, "xadd", key);
    if trimmed > 0 {
        ctx.notify(STREAM, "xtrim", key);
    }
    // The journal logs the ID given and the trim as it turned out.
    ctx.propagate_as(|| {
        let mut argv = vec![args[0].clone(), key.clone()];
        if parsed.no_mkstream {
            argv.push(Bytes::from_static(b"NOMKSTREAM"));
        }
        argv.extend(exact);
        argv.push(added.to_bytes());
        argv.extend_from_slice(pairs);
        argv
    });
    added.reply()
}

/// XLEN key
pub fn xlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match read_stream(ctx, &args[1]) {
        Ok(s) => Reply::Int(s.map_or(0, |s| s.len() as i64)),
        Err(e) => e,
    }
}

/// XRANGE and XREVRANGE: `args[2..4]` are the range's ends in the command's order.
fn range_generic(ctx: &mut Ctx<'_>, args: &[Bytes], rev: bool) -> Reply {
    let (start, end) = if rev {
        (&args[3], &args[2])
    } else {
        (&args[2], &args[3])
    };
    let start = tri!(id::parse_range_start(start));
    let end = tri!(id::parse_range_end(end));
    let mut count = None;
    let mut rest = &args[4..];
    while let [opt, tail @ ..] = rest {
        match tail {
            [n, tail @ ..] if is_word(opt, "count") => {
                count = Some(tri!(parse_int(n)).max(0) as usize);
                rest = tail;
            }
            _ => return error::syntax(),
        }
    }
    let stream = match read_stream(ctx, &args[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return Reply::Array(Vec::new()),
        Err(e) => return e,
    };
    match count {
        Some(0) => Reply::NilArray,
        count => entries_reply(stream.range(start, end, rev, count.unwrap_or(0))),
    }
}

/// XRANGE key start end [COUNT count]
pub fn xrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    range_generic(ctx, args, false)
}

/// XREVRANGE key end start [COUNT count]
pub fn xrevrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    range_generic(ctx, args, true)
}

/// Parses entry IDs (XDEL, XACK): all of them, before anything is changed.
pub(super) fn parse_ids(args: &[Bytes]) -> Result<Vec<StreamId>, Reply> {
    args.iter().map(|a| id::parse_strict_id(a)).collect()
}

/// XDEL key id [id ...]
pub fn xdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    // Redis looks the key up before it parses the IDs.
    match write_stream(ctx, &args[1]) {
        Ok(Some(_)) => {}
        Ok(None) => return Reply::Int(0),
        Err(e) => return e,
    }
    let ids = tri!(parse_ids(&args[2..]));
    let Ok(Some(stream)) = write_stream(ctx, &args[1]) else {
        return Reply::Int(0);
    };
    let deleted = stream.delete_ids(&ids);
    ctx.dirty(deleted);
    if deleted > 0 {
        ctx.notify(STREAM, "xdel", &args[1]);
    }
    Reply::Int(deleted as i64)
}

/// XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]
pub fn xtrim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let parsed = tri!(parse_add_or_trim(ctx, args, false));
    let stream = match write_stream(ctx, &args[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return Reply::Int(0),
        Err(e) => return e,
    };
    let deleted = parsed.trim.map_or(0, |spec| stream.trim(spec));
    let exact = exact_trim(stream, parsed.trim);
    ctx.dirty(deleted);
    if deleted > 0 {
        ctx.notify(STREAM, "xtrim", &args[1]);
    }
    ctx.propagate_as(|| {
        let mut argv = vec![args[0].clone(), args[1].clone()];
        argv.extend(exact);
        argv
    });
    Reply::Int(deleted as i64)
}

/// The exact trim that has the effect a trim just had on `stream` (an approximate one
/// removes whole nodes, which depend on the node layout): MAXLEN = the length now, or
/// MINID = the first ID now.
fn exact_trim(stream: &StreamValue, spec: Option<TrimSpec>) -> Vec<Bytes> {
    let Some(spec) = spec else {
        return Vec::new();
    };
    let mut first = None;
    stream.visit(StreamId::MIN, StreamId::MAX, false, |_, e| {
        first = Some(e.id);
        false
    });
    match (spec.trim, first) {
        (Trim::MinId(_), Some(first)) => vec![
            Bytes::from_static(b"MINID"),
            Bytes::from_static(b"="),
            first.to_bytes(),
        ],
        _ => vec![
            Bytes::from_static(b"MAXLEN"),
            Bytes::from_static(b"="),
            Bytes::from(stream.len().to_string()),
        ],
    }
}

/// XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]
pub fn xsetid(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let last = tri!(id::parse_strict_id(&args[2]));
    let mut entries_added = None;
    let mut max_deleted = StreamId::MIN;
    let mut rest = &args[3..];
    while let [opt, tail @ ..] = rest {
        match tail {
            [n, tail @ ..] if is_word(opt, "entriesadded") => {
                let n = tri!(parse_int(n));
                entries_added = Some(tri!(
                    u64::try_from(n).map_err(|_| Reply::err(SETID_ENTRIES_NEGATIVE))
                ));
                rest = tail;
            }
            [max, tail @ ..] if is_word(opt, "maxdeletedid") => {
                max_deleted = tri!(id::parse_strict_id(max));
                if last < max_deleted {
                    return Reply::err(SETID_BELOW_MAX_DELETED);
                }
                rest = tail;
            }
            _ => return error::syntax(),
        }
    }
    let stream = match write_stream(ctx, &args[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return Reply::err(error::NO_SUCH_KEY),
        Err(e) => return e,
    };
    if !stream.is_empty() {
        if stream.last_valid_id().is_some_and(|top| last < top) {
            return Reply::err(SETID_BELOW_TOP);
        }
        if entries_added.is_some_and(|n| n < stream.len()) {
            return Reply::err(SETID_BELOW_LENGTH);
        }
    }
    stream.set_counters(last, entries_added, max_deleted);
    ctx.dirty(1);
    ctx.notify(STREAM, "xsetid", &args[1]);
    Reply::Ok
}

/// A new empty stream value (XGROUP CREATE … MKSTREAM).
pub(super) fn empty_stream() -> Value {
    Value::Stream(Box::new(StreamValue::new()))
}
