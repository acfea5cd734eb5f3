//! String commands (Redis's `t_string.c`): GET, SET and its variants, the GET-and-modify
//! commands, MGET/MSET, APPEND, the integer and float counters, ranges and LCS.
//!
//! A string value is one `Bytes`: reads hand out a reference-counted clone of it (no copy),
//! writes store one copy of the argument, and in-place edits (APPEND, SETRANGE, bit
//! commands) reuse the allocation when nobody else holds it.

use bytes::Bytes;
use shardis_resp::Reply;

use crate::command::table::Registration;
use crate::command::Merge;
use crate::error;
use crate::notify::{GENERIC, STRING};
use crate::num::{self, LongDouble};
use crate::shard::Ctx;
use crate::value::{Str, Value};

pub static COMMANDS: &[Registration] = &[
    Registration::shard("get", get),
    Registration::shard("set", set).with_key_flags(set_key_flags),
    Registration::shard("setnx", setnx),
    Registration::shard("setex", setex),
    Registration::shard("psetex", psetex),
    Registration::shard("getset", getset),
    Registration::shard("getdel", getdel),
    Registration::shard("getex", getex),
    Registration::split("mget", mget, Merge::ByKey),
    Registration::split("mset", mset, Merge::Ok),
    Registration::shard("msetnx", msetnx),
    Registration::shard("append", append),
    Registration::shard("strlen", strlen),
    Registration::shard("incr", incr),
    Registration::shard("decr", decr),
    Registration::shard("incrby", incrby),
    Registration::shard("decrby", decrby),
    Registration::shard("incrbyfloat", incrbyfloat),
    Registration::shard("getrange", getrange),
    Registration::shard("substr", getrange),
    Registration::shard("setrange", setrange),
    Registration::shard("lcs", lcs),
];

/// SET's key: read too when GET asks for the old value (Redis's `setGetKeys`).
fn set_key_flags(args: &[Bytes]) -> &'static [&'static str] {
    if args.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"get")) {
        &["rw", "access", "update"]
    } else {
        &["ow", "update"]
    }
}

const STRING_TOO_LONG: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";
const OFFSET_OUT_OF_RANGE: &str = "ERR offset is out of range";
const DECREMENT_OVERFLOW: &str = "ERR decrement would overflow";
const NAN_OR_INFINITY: &str = "ERR increment would produce NaN or Infinity";
const LCS_NOT_STRINGS: &str = "ERR The specified keys must contain string values";
const LCS_LEN_AND_IDX: &str = "ERR If you want both the length and indexes, please just use IDX.";
const LCS_TOO_LONG: &str = "ERR String too long for LCS";
const LCS_OVER_LIMIT: &str =
    "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len";
const LCS_NO_MEMORY: &str = "ERR Insufficient memory, failed allocating transient memory for LCS";

/// The string at `key`: Ok(None) if absent, Err(WRONGTYPE) if another type. Counts a keyspace
/// hit or miss, as Redis's read lookups do.
pub fn read_string<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<Option<&'c Str>, Reply> {
    match ctx.lookup_read(key) {
        None => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s)),
        Some(_) => Err(error::wrongtype()),
    }
}

/// The string at `key`, for modification in place (which keeps the key's TTL, as Redis's
/// `dbOverwrite` and in-place edits do).
pub fn write_string<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<Option<&'c mut Str>, Reply> {
    match ctx.lookup_write(key) {
        None => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s)),
        Some(_) => Err(error::wrongtype()),
    }
}

/// Runs `f` over a stored string as a growable buffer, which it stays (see [`Str`]), so
/// repeated APPENDs grow it amortized instead of copying it each time.
pub fn modify_string<R>(slot: &mut Str, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    f(slot.make_mut())
}

/// GET key
pub fn get(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match read_string(ctx, &args[1]) {
        Ok(v) => v.map(Str::to_bytes).into(),
        Err(e) => e,
    }
}

/// How an expiry argument is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExpireUnit {
    /// EX: seconds from now.
    Seconds,
    /// PX: milliseconds from now.
    Millis,
    /// EXAT: a Unix time in seconds.
    AtSeconds,
    /// PXAT: a Unix time in milliseconds.
    AtMillis,
}

impl ExpireUnit {
    fn is_absolute(self) -> bool {
        matches!(self, ExpireUnit::AtSeconds | ExpireUnit::AtMillis)
    }
}

/// The options of SET (NX, XX, GET, KEEPTTL, EX…) and GETEX (PERSIST, EX…).
#[derive(Default)]
struct StringOptions<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    keep_ttl: bool,
    persist: bool,
    expire: Option<(ExpireUnit, &'a [u8])>,
}

/// Parses SET's options (`for_set`) or GETEX's from `args[first]` on, with Redis's rules for
/// which options exclude which: a repeated expiry of the same unit is allowed (the last
/// wins), any two different ones are a syntax error.
fn parse_options(args: &[Bytes], first: usize, for_set: bool) -> Result<StringOptions<'_>, Reply> {
    let mut o = StringOptions::default();
    let mut i = first;
    while i < args.len() {
        let opt = &args[i][..];
        let next = args.get(i + 1);
        let unit = if opt.eq_ignore_ascii_case(b"ex") {
            Some(ExpireUnit::Seconds)
        } else if opt.eq_ignore_ascii_case(b"px") {
            Some(ExpireUnit::Millis)
        } else if opt.eq_ignore_ascii_case(b"exat") {
            Some(ExpireUnit::AtSeconds)
        } else if opt.eq_ignore_ascii_case(b"pxat") {
            Some(ExpireUnit::AtMillis)
        } else {
            None
        };
        let other_expire = |u: ExpireUnit| o.expire.is_some_and(|(have, _)| have != u);
        match (unit, next) {
            (Some(u), Some(value)) if !o.keep_ttl && !o.persist && !other_expire(u) => {
                o.expire = Some((u, &value[..]));
                i += 1;
            }
            (Some(_), _) => return Err(error::syntax()),
            (None, _) if for_set && opt.eq_ignore_ascii_case(b"nx") && !o.xx => o.nx = true,
            (None, _) if for_set && opt.eq_ignore_ascii_case(b"xx") && !o.nx => o.xx = true,
            (None, _) if for_set && opt.eq_ignore_ascii_case(b"get") => o.get = true,
            (None, _)
                if for_set
                    && opt.eq_ignore_ascii_case(b"keepttl")
                    && !o.persist
                    && o.expire.is_none() =>
            {
                o.keep_ttl = true
            }
            (None, _)
                if !for_set
                    && opt.eq_ignore_ascii_case(b"persist")
                    && o.expire.is_none()
                    && !o.keep_ttl =>
            {
                o.persist = true
            }
            _ => return Err(error::syntax()),
        }
        i += 1;
    }
    Ok(o)
}

/// Resolves an expiry argument to an absolute Unix time in milliseconds, with Redis's
/// checks: an integer, positive, and not overflowing once converted and added to now.
fn expire_at(ctx: &Ctx<'_>, unit: ExpireUnit, arg: &[u8], command: &str) -> Result<u64, Reply> {
    let n = num::parse_i64(arg).ok_or_else(error::not_integer)?;
    let seconds = matches!(unit, ExpireUnit::Seconds | ExpireUnit::AtSeconds);
    if n <= 0 || (seconds && n > i64::MAX / 1000) {
        return Err(error::invalid_expire(command));
    }
    let ms = if seconds { n * 1000 } else { n };
    let at = if unit.is_absolute() {
        Some(ms)
    } else {
        i64::try_from(ctx.now_ms)
            .ok()
            .and_then(|now| ms.checked_add(now))
    };
    match at {
        Some(at) if at > 0 => Ok(at as u64),
        _ => Err(error::invalid_expire(command)),
    }
}

/// The SET family's common core (Redis's `setGenericCommand`): validates the expiry,
/// answers GET's old value if asked, honours NX/XX, stores and sets the expiry.
fn set_generic(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    value: &[u8],
    opts: &StringOptions<'_>,
    command: &str,
    ok: Reply,
    aborted: Reply,
) -> Reply {
    let at = match opts.expire {
        Some((unit, arg)) => match expire_at(ctx, unit, arg, command) {
            Ok(at) => Some(at),
            Err(e) => return e,
        },
        None => None,
    };
    let old = if opts.get {
        match read_string(ctx, key) {
            Ok(v) => Some(Reply::from(v.map(Str::to_bytes))),
            Err(e) => return e,
        }
    } else {
        None
    };
    let found = ctx.exists(key);
    if (opts.nx && found) || (opts.xx && !found) {
        return old.unwrap_or(aborted);
    }
    let value_bytes = value;
    let value = Value::Str(Str::new(value));
    if opts.keep_ttl {
        ctx.set_keep_ttl(key, value);
    } else {
        ctx.set(key, value);
    }
    ctx.notify(STRING, "set", key);
    if let Some(at) = at {
        ctx.db().set_expire(key, at);
        ctx.notify(GENERIC, "expire", key);
        // Logged (and replicated) as SET key value PXAT <ms>, as Redis 7.0 propagates any
        // expiry option: a relative one replayed later would end later.
        ctx.propagate_as(|| {
            vec![
                Bytes::from_static(b"SET"),
                Ctx::key(key),
                Bytes::copy_from_slice(value_bytes),
                Bytes::from_static(b"PXAT"),
                Bytes::from(at.to_string()),
            ]
        });
    }
    old.unwrap_or(ok)
}

/// SET key value [NX|XX] [GET] [EX s|PX ms|EXAT ts|PXAT ms-ts|KEEPTTL]
pub fn set(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if args.len() == 3 {
        ctx.set(&args[1], Value::Str(Str::new(&args[2])));
        ctx.notify(STRING, "set", &args[1]);
        return Reply::Ok;
    }
    let opts = match parse_options(args, 3, true) {
        Ok(opts) => opts,
        Err(e) => return e,
    };
    let reply = set_generic(ctx, &args[1], &args[2], &opts, "set", Reply::Ok, Reply::Nil);
    // Logged without GET, as Redis propagates it (an expiry rewrote the whole command).
    if opts.get && opts.expire.is_none() {
        ctx.propagate_as(|| {
            let mut argv = args[..3].to_vec();
            argv.extend(
                args[3..]
                    .iter()
                    .filter(|a| !a.eq_ignore_ascii_case(b"get"))
                    .cloned(),
            );
            argv
        });
    }
    reply
}

/// SETNX key value
pub fn setnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let opts = StringOptions {
        nx: true,
        ..StringOptions::default()
    };
    set_generic(
        ctx,
        &args[1],
        &args[2],
        &opts,
        "setnx",
        Reply::Int(1),
        Reply::Int(0),
    )
}

/// SETEX key seconds value
pub fn setex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    set_with_ttl(ctx, args, ExpireUnit::Seconds, "setex")
}

/// PSETEX key milliseconds value
pub fn psetex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    set_with_ttl(ctx, args, ExpireUnit::Millis, "psetex")
}

fn set_with_ttl(ctx: &mut Ctx<'_>, args: &[Bytes], unit: ExpireUnit, command: &str) -> Reply {
    let opts = StringOptions {
        expire: Some((unit, &args[2][..])),
        ..StringOptions::default()
    };
    set_generic(
        ctx,
        &args[1],
        &args[3],
        &opts,
        command,
        Reply::Ok,
        Reply::Nil,
    )
}

/// GETSET key value: the old value; the new one is stored without TTL.
pub fn getset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let old = match read_string(ctx, &args[1]) {
        Ok(v) => Reply::from(v.map(Str::to_bytes)),
        Err(e) => return e,
    };
    ctx.set(&args[1], Value::Str(Str::new(&args[2])));
    ctx.notify(STRING, "set", &args[1]);
    old
}

/// GETDEL key
pub fn getdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let value = match read_string(ctx, &args[1]) {
        Ok(Some(v)) => v.to_bytes(),
        Ok(None) => return Reply::Nil,
        Err(e) => return e,
    };
    if ctx.delete(&args[1], false) {
        ctx.notify(GENERIC, "del", &args[1]);
    }
    Reply::Bulk(value)
}

/// GETEX key [EX s|PX ms|EXAT ts|PXAT ms-ts|PERSIST]
pub fn getex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let opts = match parse_options(args, 2, false) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let key = &args[1];
    let value = match read_string(ctx, key) {
        Ok(Some(v)) => v.to_bytes(),
        Ok(None) => return Reply::Nil,
        Err(e) => return e,
    };
    if let Some((unit, arg)) = opts.expire {
        let at = match expire_at(ctx, unit, arg, "getex") {
            Ok(at) => at,
            Err(e) => return e,
        };
        // An absolute time already past deletes the key now, as Redis does.
        // Logged (and replicated) as DEL/UNLINK or PEXPIREAT, as Redis 7.0 propagates it.
        if unit.is_absolute() && at <= ctx.now_ms {
            ctx.delete(key, false);
            ctx.notify(GENERIC, "del", key);
            ctx.propagate_expired(key);
        } else {
            ctx.db().set_expire(key, at);
            ctx.dirty(1);
            ctx.notify(GENERIC, "expire", key);
            ctx.propagate_as(|| {
                vec![
                    Bytes::from_static(b"PEXPIREAT"),
                    key.clone(),
                    Bytes::from(at.to_string()),
                ]
            });
        }
    } else if opts.persist && ctx.db().persist(key) {
        ctx.dirty(1);
        ctx.notify(GENERIC, "persist", key);
        ctx.propagate_as(|| vec![Bytes::from_static(b"PERSIST"), key.clone()]);
    }
    Reply::Bulk(value)
}

/// MGET key [key ...]: nil for missing keys and for keys of another type.
pub fn mget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let mut out = Vec::with_capacity(args.len() - 1);
    for key in &args[1..] {
        out.push(match ctx.lookup_read(key) {
            Some(Value::Str(s)) => Reply::Bulk(s.to_bytes()),
            _ => Reply::Nil,
        });
    }
    Reply::Array(out)
}

/// MSET key value [key value ...]
pub fn mset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if args.len().is_multiple_of(2) {
        return error::wrong_arity("mset");
    }
    set_pairs(ctx, args);
    Reply::Ok
}

/// MSETNX key value [key value ...]: all or nothing, only if no key exists.
pub fn msetnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if args.len().is_multiple_of(2) {
        return error::wrong_arity("msetnx");
    }
    if args[1..].iter().step_by(2).any(|key| ctx.exists(key)) {
        return Reply::Int(0);
    }
    set_pairs(ctx, args);
    Reply::Int(1)
}

fn set_pairs(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    for pair in args[1..].chunks_exact(2) {
        ctx.set(&pair[0], Value::Str(Str::new(&pair[1])));
        ctx.notify(STRING, "set", &pair[0]);
    }
}

/// APPEND key value: the new length.
pub fn append(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (key, tail) = (&args[1], &args[2]);
    let max = ctx.shard.config.proto_max_bulk_len;
    match write_string(ctx, key) {
        Err(e) => e,
        Ok(Some(s)) => {
            if s.len().checked_add(tail.len()).is_none_or(|t| t > max) {
                return Reply::err(STRING_TOO_LONG);
            }
            let len = modify_string(s, |buf| {
                buf.extend_from_slice(tail);
                buf.len()
            });
            ctx.dirty(1);
            ctx.notify(STRING, "append", key);
            Reply::Int(len as i64)
        }
        Ok(None) => {
            ctx.set(key, Value::Str(Str::new(tail)));
            ctx.notify(STRING, "append", key);
            Reply::Int(tail.len() as i64)
        }
    }
}

/// STRLEN key
pub fn strlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match read_string(ctx, &args[1]) {
        Ok(v) => Reply::Int(v.map_or(0, |s| s.len() as i64)),
        Err(e) => e,
    }
}

/// INCR key
pub fn incr(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    incr_by(ctx, &args[1], 1)
}

/// DECR key
pub fn decr(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    incr_by(ctx, &args[1], -1)
}

/// INCRBY key increment
pub fn incrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match num::parse_i64(&args[2]) {
        Some(n) => incr_by(ctx, &args[1], n),
        None => error::not_integer(),
    }
}

/// DECRBY key decrement
pub fn decrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match num::parse_i64(&args[2]) {
        Some(i64::MIN) => Reply::err(DECREMENT_OVERFLOW),
        Some(n) => incr_by(ctx, &args[1], -n),
        None => error::not_integer(),
    }
}

/// Adds `delta` to the integer at `key` (0 if absent), keeping its TTL.
fn incr_by(ctx: &mut Ctx<'_>, key: &[u8], delta: i64) -> Reply {
    match write_string(ctx, key) {
        Err(e) => e,
        Ok(Some(s)) => {
            let Some(current) = num::parse_i64(s) else {
                return error::not_integer();
            };
            let Some(new) = current.checked_add(delta) else {
                return Reply::err(error::OVERFLOW);
            };
            *s = Str::new(&num::i64_bytes(new));
            ctx.dirty(1);
            ctx.notify(STRING, "incrby", key);
            Reply::Int(new)
        }
        Ok(None) => {
            ctx.set(key, Value::Str(Str::new(&num::i64_bytes(delta))));
            ctx.notify(STRING, "incrby", key);
            Reply::Int(delta)
        }
    }
}

/// INCRBYFLOAT key increment: computed in x87 long double precision and stored in Redis's
/// human-friendly form, as Redis does.
pub fn incrbyfloat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let key = &args[1];
    let slot = match write_string(ctx, key) {
        Ok(slot) => slot,
        Err(e) => return e,
    };
    let current = match &slot {
        Some(s) => LongDouble::parse(s),
        None => Some(LongDouble::from_i64(0)),
    };
    let (Some(current), Some(delta)) = (current, LongDouble::parse(&args[2])) else {
        return error::not_float();
    };
    let sum = current + delta;
    if !sum.is_finite() {
        return Reply::err(NAN_OR_INFINITY);
    }
    let text = Bytes::from(sum.to_human());
    match slot {
        Some(s) => {
            *s = Str::new(&text);
            ctx.dirty(1);
        }
        None => ctx.set(key, Value::Str(Str::new(&text))),
    }
    ctx.notify(STRING, "incrbyfloat", key);
    // Logged (and replicated) as the value it produced, as Redis does: no reader has to
    // repeat the floating-point sum.
    ctx.propagate_as(|| {
        vec![
            Bytes::from_static(b"SET"),
            key.clone(),
            text.clone(),
            Bytes::from_static(b"KEEPTTL"),
        ]
    });
    Reply::Bulk(text)
}

/// Clamps Redis-style inclusive `start..=end` indexes (negative from the end) to a sequence of
/// `len` items; None when the range is empty. Shared with BITCOUNT / BITPOS.
pub fn clamp_range(start: i64, end: i64, len: i64) -> Option<(u64, u64)> {
    let start = if start < 0 { len + start } else { start }.max(0);
    let end = if end < 0 { len + end } else { end }.max(0).min(len - 1);
    (start <= end).then_some((start as u64, end as u64))
}

/// GETRANGE key start end (and its old name SUBSTR)
pub fn getrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (Some(start), Some(end)) = (num::parse_i64(&args[2]), num::parse_i64(&args[3])) else {
        return error::not_integer();
    };
    let s = match read_string(ctx, &args[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return Reply::Bulk(Bytes::new()),
        Err(e) => return e,
    };
    if start < 0 && end < 0 && start > end {
        return Reply::Bulk(Bytes::new());
    }
    match clamp_range(start, end, s.len() as i64) {
        Some((from, to)) => Reply::Bulk(Bytes::copy_from_slice(&s[from as usize..=to as usize])),
        None => Reply::Bulk(Bytes::new()),
    }
}

/// SETRANGE key offset value: the new length.
pub fn setrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (key, value) = (&args[1], &args[3]);
    let offset = match num::parse_i64(&args[2]) {
        Some(n) if n < 0 => return Reply::err(OFFSET_OUT_OF_RANGE),
        Some(n) => n as u64,
        None => return error::not_integer(),
    };
    let max = ctx.shard.config.proto_max_bulk_len as u64;
    let end = offset.saturating_add(value.len() as u64);
    let too_long = end > max;
    match write_string(ctx, key) {
        Err(e) => e,
        Ok(Some(s)) if value.is_empty() => Reply::Int(s.len() as i64),
        Ok(None) if value.is_empty() => Reply::Int(0),
        _ if too_long => Reply::err(STRING_TOO_LONG),
        Ok(Some(s)) => {
            let len = modify_string(s, |buf| {
                write_at(buf, offset as usize, value);
                buf.len()
            });
            ctx.dirty(1);
            ctx.notify(STRING, "setrange", key);
            Reply::Int(len as i64)
        }
        Ok(None) => {
            let mut buf = Vec::new();
            write_at(&mut buf, offset as usize, value);
            let len = buf.len();
            ctx.set(key, Value::Str(Str::from_vec(buf)));
            ctx.notify(STRING, "setrange", key);
            Reply::Int(len as i64)
        }
    }
}

/// Writes `data` at `offset`, zero-padding the buffer up to it first.
fn write_at(buf: &mut Vec<u8>, offset: usize, data: &[u8]) {
    let end = offset + data.len();
    if buf.len() < end {
        buf.resize(end, 0);
    }
    buf[offset..end].copy_from_slice(data);
}

/// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]
pub fn lcs(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let a = lcs_operand(ctx, &args[1]);
    let b = lcs_operand(ctx, &args[2]);
    let (Some(a), Some(b)) = (a, b) else {
        return Reply::err(LCS_NOT_STRINGS);
    };
    let (mut want_len, mut want_idx, mut with_match_len) = (false, false, false);
    let mut min_match_len = 0u64;
    let mut i = 3;
    while i < args.len() {
        let opt = &args[i][..];
        if opt.eq_ignore_ascii_case(b"idx") {
            want_idx = true;
        } else if opt.eq_ignore_ascii_case(b"len") {
            want_len = true;
        } else if opt.eq_ignore_ascii_case(b"withmatchlen") {
            with_match_len = true;
        } else if opt.eq_ignore_ascii_case(b"minmatchlen") && i + 1 < args.len() {
            match num::parse_i64(&args[i + 1]) {
                Some(n) => min_match_len = n.max(0) as u64,
                None => return error::not_integer(),
            }
            i += 1;
        } else {
            return error::syntax();
        }
        i += 1;
    }
    if want_len && want_idx {
        return Reply::err(LCS_LEN_AND_IDX);
    }
    if a.len() >= u32::MAX as usize - 1 || b.len() >= u32::MAX as usize - 1 {
        return Reply::err(LCS_TOO_LONG);
    }
    let cells = (a.len() as u128 + 1) * (b.len() as u128 + 1);
    if cells * 4 > ctx.shard.config.proto_max_bulk_len as u128 {
        return Reply::err(LCS_OVER_LIMIT);
    }
    let Some(table) = LcsTable::build(&a, &b, cells as usize) else {
        return Reply::err(LCS_NO_MEMORY);
    };
    let total = table.at(a.len(), b.len()) as i64;
    if want_len {
        return Reply::Int(total);
    }
    let (common, matches) = table.walk(&a, &b, want_idx, min_match_len, with_match_len);
    if want_idx {
        Reply::Map(vec![
            (Reply::bulk(b"matches"), Reply::Array(matches)),
            (Reply::bulk(b"len"), Reply::Int(total)),
        ])
    } else {
        Reply::Bulk(Bytes::from(common))
    }
}

/// An LCS operand: the string, empty if the key is missing, None if it holds another type.
fn lcs_operand(ctx: &mut Ctx<'_>, key: &[u8]) -> Option<Bytes> {
    match ctx.lookup_read(key) {
        None => Some(Bytes::new()),
        Some(Value::Str(s)) => Some(s.to_bytes()),
        Some(_) => None,
    }
}

/// The dynamic-programming table of LCS lengths of every pair of prefixes.
struct LcsTable {
    cells: Vec<u32>,
    width: usize,
}

impl LcsTable {
    /// None when the table cannot be allocated.
    fn build(a: &[u8], b: &[u8], cells: usize) -> Option<LcsTable> {
        let mut v = Vec::new();
        v.try_reserve_exact(cells).ok()?;
        v.resize(cells, 0u32);
        let width = b.len() + 1;
        for (i, &ca) in a.iter().enumerate() {
            for (j, &cb) in b.iter().enumerate() {
                let here = (i + 1) * width + j + 1;
                v[here] = if ca == cb {
                    v[i * width + j] + 1
                } else {
                    v[i * width + j + 1].max(v[here - 1])
                };
            }
        }
        Some(LcsTable { cells: v, width })
    }

    fn at(&self, i: usize, j: usize) -> u32 {
        self.cells[i * self.width + j]
    }

    /// Walks back from the end to rebuild the common subsequence and, if `ranges`, the
    /// matching ranges (last match first, as Redis lists them) at least `min_len` long.
    fn walk(
        &self,
        a: &[u8],
        b: &[u8],
        ranges: bool,
        min_len: u64,
        with_len: bool,
    ) -> (Vec<u8>, Vec<Reply>) {
        let total = self.at(a.len(), b.len()) as usize;
        let mut common = vec![0u8; total];
        let mut fill = total;
        let mut matches = Vec::new();
        // The current run of matches: (a_start, a_end, b_start, b_end).
        let mut run: Option<(usize, usize, usize, usize)> = None;
        let (mut i, mut j) = (a.len(), b.len());
        while i > 0 && j > 0 {
            let mut close = false;
            if a[i - 1] == b[j - 1] {
                fill -= 1;
                common[fill] = a[i - 1];
                run = match run {
                    None => Some((i - 1, i - 1, j - 1, j - 1)),
                    Some((a0, a1, b0, b1)) if a0 == i && b0 == j => Some((a0 - 1, a1, b0 - 1, b1)),
                    Some(r) => {
                        close = true;
                        Some(r)
                    }
                };
                close |= run.is_some_and(|r| r.0 == 0 || r.2 == 0);
                i -= 1;
                j -= 1;
            } else {
                if self.at(i - 1, j) > self.at(i, j - 1) {
                    i -= 1;
                } else {
                    j -= 1;
                }
                close = run.is_some();
            }
            if !close {
                continue;
            }
            if let Some((a0, a1, b0, b1)) = run.take() {
                let len = (a1 - a0 + 1) as u64;
                if ranges && len >= min_len {
                    let mut m = vec![
                        Reply::Array(vec![Reply::Int(a0 as i64), Reply::Int(a1 as i64)]),
                        Reply::Array(vec![Reply::Int(b0 as i64), Reply::Int(b1 as i64)]),
                    ];
                    if with_len {
                        m.push(Reply::Int(len as i64));
                    }
                    matches.push(Reply::Array(m));
                }
            }
        }
        (common, matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    const WRONGTYPE: &str = error::WRONGTYPE;

    fn list_key(t: &mut TestShard, key: &str) {
        let mut ctx = Ctx::new(&mut t.shard, 0, 0, false);
        ctx.set(
            key.as_bytes(),
            Value::List(crate::t_list::ListValue::default()),
        );
    }

    fn ttl(t: &mut TestShard, key: &str) -> Option<u64> {
        t.shard.dbs[0].expire_at(key.as_bytes())
    }

    #[test]
    fn get_and_plain_set() {
        let mut t = TestShard::new();
        assert_eq!(t.run(&["GET", "k"]), Reply::Nil);
        assert_eq!(t.run(&["SET", "k", "v"]), ok());
        assert_eq!(t.run(&["get", "k"]), bulk("v"));
        assert_eq!(t.run(&["SET", "k", ""]), ok());
        assert_eq!(t.run(&["GET", "k"]), bulk(""));
        let bin = Bytes::from_static(b"\x00\xff\r\n");
        let set = [
            Bytes::from_static(b"set"),
            Bytes::from_static(b"b"),
            bin.clone(),
        ];
        assert_eq!(t.run_bytes(&set), ok());
        assert_eq!(
            t.run_bytes(&[Bytes::from_static(b"get"), Bytes::from_static(b"b")]),
            Reply::Bulk(bin)
        );
        list_key(&mut t, "l");
        assert_eq!(t.run(&["GET", "l"]), err(WRONGTYPE));
        assert_eq!(
            t.run(&["GET"]),
            err("ERR wrong number of arguments for 'get' command")
        );
    }

    #[test]
    fn set_nx_xx_get() {
        let mut t = TestShard::new();
        assert_eq!(t.run(&["SET", "k", "1", "NX"]), ok());
        assert_eq!(t.run(&["SET", "k", "2", "nx"]), Reply::Nil);
        assert_eq!(t.run(&["GET", "k"]), bulk("1"));
        assert_eq!(t.run(&["SET", "x", "1", "XX"]), Reply::Nil);
        assert_eq!(t.run(&["SET", "k", "2", "XX"]), ok());
        assert_eq!(t.run(&["SET", "k", "3", "GET"]), bulk("2"));
        assert_eq!(t.run(&["SET", "n", "v", "GET"]), Reply::Nil);
        assert_eq!(t.run(&["GET", "n"]), bulk("v"));
        assert_eq!(t.run(&["SET", "k", "4", "GET", "XX"]), bulk("3"));
        assert_eq!(t.run(&["SET", "m", "4", "GET", "XX"]), Reply::Nil);
        assert_eq!(t.run(&["GET", "m"]), Reply::Nil);
        assert_eq!(t.run(&["SET", "k", "5", "GET", "NX"]), bulk("4"));
        assert_eq!(t.run(&["GET", "k"]), bulk("4"));
        assert_eq!(t.run(&["SET", "k", "6", "get", "get"]), bulk("4"));
        list_key(&mut t, "l");
        assert_eq!(t.run(&["SET", "l", "v", "GET"]), err(WRONGTYPE));
        assert_eq!(t.run(&["SET", "l", "v"]), ok());
        assert_eq!(t.run(&["GET", "l"]), bulk("v"));
    }

    #[test]
    fn set_syntax_errors() {
        let mut t = TestShard::new();
        for bad in [
            &["SET", "k", "v", "foo"][..],
            &["SET", "k", "v", "NX", "XX"],
            &["SET", "k", "v", "XX", "NX"],
            &["SET", "k", "v", "EX"],
            &["SET", "k", "v", "EX", "10", "PX", "100"],
            &["SET", "k", "v", "PX", "10", "EXAT", "100"],
            &["SET", "k", "v", "EX", "10", "KEEPTTL"],
            &["SET", "k", "v", "KEEPTTL", "PXAT", "10"],
            &["SET", "k", "v", "PERSIST"],
        ] {
            assert_eq!(t.run(bad), err(error::SYNTAX), "{bad:?}");
        }
        assert_eq!(t.run(&["GET", "k"]), Reply::Nil);
        // The same expiry twice is allowed: the last one wins.
        assert_eq!(t.run(&["SET", "k", "v", "EX", "10", "EX", "20"]), ok());
        assert_eq!(ttl(&mut t, "k"), Some(t.now_ms + 20_000));
    }

    #[test]
    fn set_expiry_options() {
        let mut t = TestShard::new();
        let now = t.now_ms;
        assert_eq!(t.run(&["SET", "a", "v", "EX", "10"]), ok());
        assert_eq!(ttl(&mut t, "a"), Some(now + 10_000));
        assert_eq!(t.run(&["SET", "b", "v", "px", "1500"]), ok());
        assert_eq!(ttl(&mut t, "b"), Some(now + 1500));
        let exat = (now / 1000 + 100).to_string();
        assert_eq!(t.run(&["SET", "c", "v", "EXAT", &exat]), ok());
        assert_eq!(ttl(&mut t, "c"), Some((now / 1000 + 100) * 1000));
        let pxat = (now + 5).to_string();
        assert_eq!(t.run(&["SET", "d", "v", "PXAT", &pxat]), ok());
        assert_eq!(ttl(&mut t, "d"), Some(now + 5));
        // KEEPTTL keeps it, a plain SET drops it.
        assert_eq!(t.run(&["SET", "a", "w", "KEEPTTL"]), ok());
        assert_eq!(ttl(&mut t, "a"), Some(now + 10_000));
        assert_eq!(t.run(&["SET", "a", "w", "XX", "PX", "10000"]), ok());
        assert_eq!(ttl(&mut t, "a"), Some(now + 10_000));
        assert_eq!(t.run(&["SET", "a", "x"]), ok());
        assert_eq!(ttl(&mut t, "a"), None);
        // A time in the past: the key is gone at the next access.
        assert_eq!(t.run(&["SET", "p", "v", "PXAT", "1"]), ok());
        assert_eq!(t.run(&["GET", "p"]), Reply::Nil);
        t.advance(5);
        assert_eq!(t.run(&["GET", "d"]), Reply::Nil);
    }

    #[test]
    fn set_invalid_expire() {
        let mut t = TestShard::new();
        let invalid = err("ERR invalid expire time in 'set' command");
        for bad in [
            &["SET", "k", "v", "EX", "0"][..],
            &["SET", "k", "v", "EX", "-1"],
            &["SET", "k", "v", "EX", "10000000000000000"],
            &["SET", "k", "v", "EX", "-9999999999999999"],
            &["SET", "k", "v", "PX", "9223372036854775807"],
            &["SET", "k", "v", "PXAT", "0"],
            &["SET", "k", "v", "EXAT", "9223372036854776"],
        ] {
            assert_eq!(t.run(bad), invalid, "{bad:?}");
        }
        assert_eq!(
            t.run(&["SET", "k", "v", "EX", "1.5"]),
            err(error::NOT_INTEGER)
        );
        assert_eq!(t.run(&["GET", "k"]), Reply::Nil);
        // The expiry is checked before the GET's type check.
        list_key(&mut t, "l");
        assert_eq!(t.run(&["SET", "l", "v", "GET", "EX", "0"]), invalid);
    }

    #[test]
    fn setnx_setex_psetex() {
        let mut t = TestShard::new();
        assert_eq!(t.run(&["SETNX", "k", "a"]), int(1));
        assert_eq!(t.run(&["SETNX", "k", "b"]), int(0));
        assert_eq!(t.run(&["GET", "k"]), bulk("a"));
        assert_eq!(t.run(&["SETEX", "k", "10", "b"]), ok());
        assert_eq!(ttl(&mut t, "k"), Some(t.now_ms + 10_000));
        assert_eq!(t.run(&["PSETEX", "k", "100", "c"]), ok());
        assert_eq!(ttl(&mut t, "k"), Some(t.now_ms + 100));
        assert_eq!(t.run(&["GET", "k"]), bulk("c"));
        assert_eq!(
            t.run(&["SETEX", "k", "-10", "x"]),
            err("ERR invalid expire time in 'setex' command")
        );
        assert_eq!(
            t.run(&["PSETEX", "k", "0", "x"]),
            err("ERR invalid expire time in 'psetex' command")
        );
        assert_eq!(t.run(&["SETEX", "k", "x", "x"]), err(error::NOT_INTEGER));
        t.advance(100);
        assert_eq!(t.run(&["SETNX", "k", "d"]), int(1));
        list_key(&mut t, "l");
        assert_eq!(t.run(&["SETNX", "l", "d"]), int(0));
    }

    #[test]
    fn getset_getdel() {
        let mut t = TestShard::new();
        assert_eq!(t.run(&["GETSET", "k", "a"]), Reply::Nil);
        assert_eq!(t.run(&["SET", "k", "b", "EX", "10"]), ok());
        assert_eq!(t.run(&["GETSET", "k", "c"]), bulk("b"));
        assert_eq!(ttl(&mut t, "k"), None);
        assert_eq!(t.run(&["GETDEL", "k"]), bulk("c"));
        assert_eq!(t.run(&["GETDEL", "k"]), Reply::Nil);
        assert_eq!(t.run(&["GET", "k"]), Reply::Nil);
        list_key(&mut t, "l");
        assert_eq!(t.run(&["GETSET", "l", "x"]), err(WRONGTYPE));
        assert_eq!(t.run(&["GETDEL", "l"]), err(WRONGTYPE));
        assert!(t.shard.dbs[0].peek(b"l").is_some());
    }

    #[test]
    fn getex_options() {
        let mut t = TestShard::new();
        let now = t.now_ms;
        assert_eq!(t.run(&["GETEX", "k"]), Reply::Nil);
        assert_eq!(t.run(&["GETEX", "k", "EX", "0"]), Reply::Nil);
        assert_eq!(t.run(&["SET", "k", "v"]), ok());
        assert_eq!(t.run(&["GETEX", "k"]), bulk("v"));
        assert_eq!(t.run(&["GETEX", "k", "EX", "10"]), bulk("v"));
        assert_eq!(ttl(&mut t, "k"), Some(now + 10_000));
        assert_eq!(t.run(&["GETEX", "k", "PX", "500"]), bulk("v"));
        assert_eq!(ttl(&mut t, "k"), Some(now + 500));
        let exat = (now / 1000 + 50).to_string();
        assert_eq!(t.run(&["GETEX", "k", "EXAT", &exat]), bulk("v"));
        assert_eq!(ttl(&mut t, "k"), Some((now / 1000 + 50) * 1000));
        let pxat = (now + 70).to_string();
        assert_eq!(t.run(&["GETEX", "k", "PXAT", &pxat]), bulk("v"));
        assert_eq!(ttl(&mut t, "k"), Some(now + 70));
        assert_eq!(t.run(&["GETEX", "k", "PERSIST"]), bulk("v"));
        assert_eq!(ttl(&mut t, "k"), None);
        // An absolute time in the past deletes the key at once.
        let past = (now / 1000 - 100).to_string();
        assert_eq!(t.run(&["GETEX", "k", "EXAT", &past]), bulk("v"));
        assert!(t.shard.dbs[0].peek(b"k").is_none());
    }

    #[test]
    fn getex_errors() {
        let mut t = TestShard::new();
        for bad in [
            &["GETEX", "k", "foo"][..],
            &["GETEX", "k", "NX"],
            &["GETEX", "k", "KEEPTTL"],
            &["GETEX", "k", "GET"],
            &["GETEX", "k", "EX"],
            &["GETEX", "k", "PERSIST", "EX", "10"],
            &["GETEX", "k", "EX", "10", "PERSIST"],
            &["GETEX", "k", "EX", "10", "PX", "10"],
        ] {
            assert_eq!(t.run(bad), err(error::SYNTAX), "{bad:?}");
        }
        assert_eq!(
            t.run(&["GETEX"]),
            err("ERR wrong number of arguments for 'getex' command")
        );
        t.run(&["SET", "k", "v"]);
        assert_eq!(
            t.run(&["GETEX", "k", "EX", "10000000000000000"]),
            err("ERR invalid expire time in 'getex' command")
        );
        assert_eq!(
            t.run(&["GETEX", "k", "EX", "-9999999999999999"]),
            err("ERR invalid expire time in 'getex' command")
        );
        assert_eq!(t.run(&["GETEX", "k", "PX", "x"]), err(error::NOT_INTEGER));
        list_key(&mut t, "l");
        assert_eq!(t.run(&["GETEX", "l", "EX", "10"]), err(WRONGTYPE));
    }

    #[test]
    fn mget_mset_msetnx() {
        let mut t = TestShard::new();
        assert_eq!(t.run(&["MSET", "a", "1", "b", "2"]), ok());
        list_key(&mut t, "l");
        assert_eq!(
            t.run(&["MGET", "a", "x", "b", "l"]),
            arr(vec![bulk("1"), Reply::Nil, bulk("2"), Reply::Nil])
        );
        assert_eq!(
            t.run(&["MSET", "a", "1", "b"]),
            err("ERR wrong number of arguments for 'mset' command")
        );
        assert_eq!(
            t.run(&["MSETNX", "a", "1", "b"]),
            err("ERR wrong number of arguments for 'msetnx' command")
        );
        assert_eq!(
            t.run(&["MSETNX", "x1", "xxx", "y2", "yyy", "a", "20"]),
            int(0)
        );
        assert_eq!(
            t.run(&["MGET", "x1", "y2"]),
            arr(vec![Reply::Nil, Reply::Nil])
        );
        assert_eq!(t.run(&["MSETNX", "x1", "xxx", "y2", "yyy"]), int(1));
        assert_eq!(t.run(&["MGET", "x1", "y2"]), bulks(&["xxx", "yyy"]));
        assert_eq!(t.run(&["MSETNX", "z", "1", "z", "2"]), int(1));
        assert_eq!(t.run(&["GET", "z"]), bulk("2"));
        assert_eq!(t.run(&["MSETNX", "l", "1"]), int(0));
        // MSET drops TTLs.
        t.run(&["SET", "a", "1", "EX", "10"]);
        t.run(&["MSET", "a", "2"]);
        assert_eq!(ttl(&mut t, "a"), None);
    }

    #[test]
    fn append_and_strlen() {
        let mut t = TestShard::new();
        assert_eq!(t.run(&["STRLEN", "k"]), int(0));
        assert_eq!(t.run(&["APPEND", "k", "foo"]), int(3));
        assert_eq!(t.run(&["APPEND", "k", "bar"]), int(6));
        assert_eq!(t.run(&["GET", "k"]), bulk("foobar"));
        assert_eq!(t.run(&["STRLEN", "k"]), int(6));
        // A reply still holding the value does not see the append.
        let held = t.run(&["GET", "k"]);
        assert_eq!(t.run(&["APPEND", "k", "!"]), int(7));
        assert_eq!(held, bulk("foobar"));
        assert_eq!(t.run(&["GET", "k"]), bulk("foobar!"));
        t.run(&["SET", "n", "-555", "EX", "100"]);
        assert_eq!(t.run(&["STRLEN", "n"]), int(4));
        assert_eq!(t.run(&["APPEND", "n", "1"]), int(5));
        assert!(ttl(&mut t, "n").is_some());
        list_key(&mut t, "l");
        assert_eq!(t.run(&["APPEND", "l", "x"]), err(WRONGTYPE));
        assert_eq!(t.run(&["STRLEN", "l"]), err(WRONGTYPE));
        t.shard.config.proto_max_bulk_len = 8;
        assert_eq!(t.run(&["APPEND", "k", "x"]), int(8));
        assert_eq!(t.run(&["APPEND", "k", "x"]), err(STRING_TOO_LONG));
    }

    #[test]
    fn incr_decr_family() {
        let mut t = TestShard::new();
        assert_eq!(t.run(&["INCR", "n"]), int(1));
        assert_eq!(t.run(&["GET", "n"]), bulk("1"));
        assert_eq!(t.run(&["INCR", "n"]), int(2));
        assert_eq!(t.run(&["DECR", "n"]), int(1));
        assert_eq!(t.run(&["DECR", "m"]), int(-1));
        t.run(&["SET", "n", "17179869184"]);
        assert_eq!(t.run(&["INCRBY", "n", "17179869184"]), int(34359738368));
        t.run(&["SET", "n", "17179869184"]);
        assert_eq!(t.run(&["DECRBY", "n", "17179869185"]), int(-1));
        assert_eq!(t.run(&["INCRBY", "new", "-5"]), int(-5));
        assert_eq!(t.run(&["DECRBY", "new2", "5"]), int(-5));
        // The TTL survives.
        t.run(&["SET", "t", "5", "EX", "100"]);
        assert_eq!(t.run(&["INCR", "t"]), int(6));
        assert!(ttl(&mut t, "t").is_some());
    }

    #[test]
    fn incr_errors() {
        let mut t = TestShard::new();
        for v in ["    11", "11    ", " 11 ", "1.5", "", "+1", "01", "abc"] {
            t.run(&["SET", "n", v]);
            assert_eq!(t.run(&["INCR", "n"]), err(error::NOT_INTEGER), "{v:?}");
        }
        t.run(&["SET", "n", "9223372036854775807"]);
        assert_eq!(t.run(&["INCR", "n"]), err(error::OVERFLOW));
        t.run(&["SET", "n", "-9223372036854775808"]);
        assert_eq!(t.run(&["DECR", "n"]), err(error::OVERFLOW));
        assert_eq!(t.run(&["GET", "n"]), bulk("-9223372036854775808"));
        t.run(&["SET", "x", "0"]);
        assert_eq!(
            t.run(&["DECRBY", "x", "-9223372036854775808"]),
            err(DECREMENT_OVERFLOW)
        );
        assert_eq!(t.run(&["INCRBY", "x", "1x"]), err(error::NOT_INTEGER));
        assert_eq!(t.run(&["DECRBY", "x", ""]), err(error::NOT_INTEGER));
        assert_eq!(
            t.run(&["INCRBY", "x", "9223372036854775808"]),
            err(error::NOT_INTEGER)
        );
        list_key(&mut t, "l");
        assert_eq!(t.run(&["INCR", "l"]), err(WRONGTYPE));
        assert_eq!(t.run(&["DECRBY", "l", "1"]), err(WRONGTYPE));
    }

    #[test]
    fn incrbyfloat_formats_as_redis() {
        let mut t = TestShard::new();
        assert_eq!(t.run(&["INCRBYFLOAT", "f", "1"]), bulk("1"));
        assert_eq!(t.run(&["INCRBYFLOAT", "f", "0.25"]), bulk("1.25"));
        assert_eq!(t.run(&["GET", "f"]), bulk("1.25"));
        t.run(&["SET", "f", "10.50"]);
        assert_eq!(t.run(&["INCRBYFLOAT", "f", "0.1"]), bulk("10.6"));
        assert_eq!(t.run(&["INCRBYFLOAT", "f", "-5"]), bulk("5.6"));
        t.run(&["SET", "f", "5.0e3"]);
        assert_eq!(t.run(&["INCRBYFLOAT", "f", "2.0e2"]), bulk("5200"));
        t.run(&["SET", "f", "17179869184"]);
        assert_eq!(t.run(&["INCRBYFLOAT", "f", "1.5"]), bulk("17179869185.5"));
        t.run(&["SET", "f", "1"]);
        assert_eq!(t.run(&["INCRBYFLOAT", "f", "-1.1"]), bulk("-0.1"));
        t.run(&["SET", "g", "0.024390243902439025"]);
        assert_eq!(
            t.run(&["INCRBYFLOAT", "g", "-0.024390243902439025"]),
            bulk("0")
        );
        t.run(&["SET", "t", "1", "EX", "100"]);
        assert_eq!(t.run(&["INCRBYFLOAT", "t", "1"]), bulk("2"));
        assert!(ttl(&mut t, "t").is_some());
    }

    #[test]
    fn incrbyfloat_errors() {
        let mut t = TestShard::new();
        for v in ["    11", "11    ", " 11 ", "abc", "1e5000"] {
            t.run(&["SET", "f", v]);
            assert_eq!(
                t.run(&["INCRBYFLOAT", "f", "1.0"]),
                err(error::NOT_FLOAT),
                "{v:?}"
            );
        }
        t.run(&["SET", "f", "0"]);
        assert_eq!(t.run(&["INCRBYFLOAT", "f", "x"]), err(error::NOT_FLOAT));
        assert_eq!(t.run(&["INCRBYFLOAT", "f", "nan"]), err(error::NOT_FLOAT));
        assert_eq!(t.run(&["INCRBYFLOAT", "f", "+inf"]), err(NAN_OR_INFINITY));
        assert_eq!(t.run(&["GET", "f"]), bulk("0"));
        // A NUL inside the value stops strtold early: not a valid float.
        t.run(&["SET", "f", "1"]);
        t.run(&["SETRANGE", "f", "2", "2"]);
        assert_eq!(t.run(&["INCRBYFLOAT", "f", "1"]), err(error::NOT_FLOAT));
        list_key(&mut t, "l");
        assert_eq!(t.run(&["INCRBYFLOAT", "l", "1"]), err(WRONGTYPE));
    }

    #[test]
    fn getrange_and_substr() {
        let mut t = TestShard::new();
        assert_eq!(t.run(&["GETRANGE", "k", "0", "-1"]), bulk(""));
        t.run(&["SET", "k", "Hello World"]);
        assert_eq!(t.run(&["GETRANGE", "k", "0", "3"]), bulk("Hell"));
        assert_eq!(t.run(&["GETRANGE", "k", "0", "-1"]), bulk("Hello World"));
        assert_eq!(t.run(&["GETRANGE", "k", "-4", "-1"]), bulk("orld"));
        assert_eq!(t.run(&["GETRANGE", "k", "5", "3"]), bulk(""));
        assert_eq!(t.run(&["GETRANGE", "k", "5", "5000"]), bulk(" World"));
        assert_eq!(
            t.run(&["GETRANGE", "k", "-5000", "10000"]),
            bulk("Hello World")
        );
        assert_eq!(t.run(&["GETRANGE", "k", "-1", "-5"]), bulk(""));
        assert_eq!(
            t.run(&["GETRANGE", "k", "0", "9223372036854775807"]),
            bulk("Hello World")
        );
        assert_eq!(
            t.run(&["GETRANGE", "k", "-9223372036854775808", "0"]),
            bulk("H")
        );
        assert_eq!(t.run(&["SUBSTR", "k", "6", "-1"]), bulk("World"));
        t.run(&["SET", "n", "1234"]);
        assert_eq!(t.run(&["GETRANGE", "n", "3", "5000"]), bulk("4"));
        t.run(&["SET", "e", ""]);
        assert_eq!(t.run(&["GETRANGE", "e", "0", "-1"]), bulk(""));
        assert_eq!(t.run(&["GETRANGE", "k", "a", "1"]), err(error::NOT_INTEGER));
        assert_eq!(t.run(&["GETRANGE", "k", "1", "b"]), err(error::NOT_INTEGER));
        list_key(&mut t, "l");
        assert_eq!(t.run(&["GETRANGE", "l", "0", "1"]), err(WRONGTYPE));
    }

    #[test]
    fn setrange_cases() {
        let mut t = TestShard::new();
        assert_eq!(t.run(&["SETRANGE", "k", "0", "foo"]), int(3));
        assert_eq!(t.run(&["GET", "k"]), bulk("foo"));
        assert_eq!(t.run(&["SETRANGE", "z", "0", ""]), int(0));
        assert!(t.shard.dbs[0].peek(b"z").is_none());
        assert_eq!(t.run(&["SETRANGE", "p", "1", "foo"]), int(4));
        assert_eq!(t.run(&["GET", "p"]), bulk("\0foo"));
        assert_eq!(t.run(&["SETRANGE", "k", "0", "b"]), int(3));
        assert_eq!(t.run(&["GET", "k"]), bulk("boo"));
        assert_eq!(t.run(&["SETRANGE", "k", "0", ""]), int(3));
        assert_eq!(t.run(&["SETRANGE", "k", "1", "b"]), int(3));
        assert_eq!(t.run(&["GET", "k"]), bulk("bbo"));
        assert_eq!(t.run(&["SETRANGE", "k", "4", "bar"]), int(7));
        assert_eq!(t.run(&["GET", "k"]), bulk("bbo\0bar"));
        t.run(&["SET", "n", "1234"]);
        assert_eq!(t.run(&["SETRANGE", "n", "5", "2"]), int(6));
        assert_eq!(t.run(&["GET", "n"]), bulk("1234\x002"));
        assert_eq!(
            t.run(&["SETRANGE", "k", "-1", "x"]),
            err(OFFSET_OUT_OF_RANGE)
        );
        assert_eq!(t.run(&["SETRANGE", "k", "x", "x"]), err(error::NOT_INTEGER));
        let huge = (512 * 1024 * 1024 - 4).to_string();
        assert_eq!(
            t.run(&["SETRANGE", "k", &huge, "world"]),
            err(STRING_TOO_LONG)
        );
        assert_eq!(
            t.run(&["SETRANGE", "q", &huge, "world"]),
            err(STRING_TOO_LONG)
        );
        for v in ["9223372036854775807", "2147483647"] {
            assert_eq!(t.run(&["SETRANGE", "K", v, "A"]), err(STRING_TOO_LONG));
        }
        // Setting nothing answers the length even far out of range.
        assert_eq!(t.run(&["SETRANGE", "k", &huge, ""]), int(7));
        list_key(&mut t, "l");
        assert_eq!(t.run(&["SETRANGE", "l", "0", "bar"]), err(WRONGTYPE));
    }

    const RNA1: &str = "CACCTTCCCAGGTAACAAACCAACCAACTTTCGATCTCTTGTAGATCTGTTCTCTAAACGAACTTTAAAATCTGTGTGGCTGTCACTCGGCTGCATGCTTAGTGCACTCACGCAGTATAATTAATAACTAATTACTGTCGTTGACAGGACACGAGTAACTCGTCTATCTTCTGCAGGCTGCTTACGGTTTCGTCCGTGTTGCAGCCGATCATCAGCACATCTAGGTTTCGTCCGGGTGTG";
    const RNA2: &str = "ATTAAAGGTTTATACCTTCCCAGGTAACAAACCAACCAACTTTCGATCTCTTGTAGATCTGTTCTCTAAACGAACTTTAAAATCTGTGTGGCTGTCACTCGGCTGCATGCTTAGTGCACTCACGCAGTATAATTAATAACTAATTACTGTCGTTGACAGGACACGAGTAACTCGTCTATCTTCTGCAGGCTGCTTACGGTTTCGTCCGTGTTGCAGCCGATCATCAGCACATCTAGGTTT";
    const RNALCS: &str = "ACCTTCCCAGGTAACAAACCAACCAACTTTCGATCTCTTGTAGATCTGTTCTCTAAACGAACTTTAAAATCTGTGTGGCTGTCACTCGGCTGCATGCTTAGTGCACTCACGCAGTATAATTAATAACTAATTACTGTCGTTGACAGGACACGAGTAACTCGTCTATCTTCTGCAGGCTGCTTACGGTTTCGTCCGTGTTGCAGCCGATCATCAGCACATCTAGGTTT";

    fn range(a: (i64, i64), b: (i64, i64), len: Option<i64>) -> Reply {
        let mut v = vec![arr(vec![int(a.0), int(a.1)]), arr(vec![int(b.0), int(b.1)])];
        v.extend(len.map(int));
        arr(v)
    }

    fn idx_reply(matches: Vec<Reply>, len: i64) -> Reply {
        Reply::Map(vec![
            (bulk("matches"), arr(matches)),
            (bulk("len"), int(len)),
        ])
    }

    #[test]
    fn lcs_as_redis_tests() {
        let mut t = TestShard::new();
        t.run(&["SET", "v1", RNA1]);
        t.run(&["SET", "v2", RNA2]);
        assert_eq!(t.run(&["LCS", "v1", "v2"]), bulk(RNALCS));
        assert_eq!(t.run(&["LCS", "v1", "v2", "LEN"]), int(RNALCS.len() as i64));
        let all = [
            ((238, 238), (239, 239), 1),
            ((236, 236), (238, 238), 1),
            ((229, 230), (236, 237), 2),
            ((224, 224), (235, 235), 1),
            ((1, 222), (13, 234), 222),
        ];
        assert_eq!(
            t.run(&["LCS", "v1", "v2", "IDX"]),
            idx_reply(
                all.iter().map(|&(a, b, _)| range(a, b, None)).collect(),
                227
            )
        );
        assert_eq!(
            t.run(&["LCS", "v1", "v2", "IDX", "WITHMATCHLEN"]),
            idx_reply(
                all.iter().map(|&(a, b, l)| range(a, b, Some(l))).collect(),
                227
            )
        );
        assert_eq!(
            t.run(&["LCS", "v1", "v2", "IDX", "WITHMATCHLEN", "MINMATCHLEN", "5"]),
            idx_reply(vec![range((1, 222), (13, 234), Some(222))], 227)
        );
    }

    #[test]
    fn lcs_edge_cases() {
        let mut t = TestShard::new();
        assert_eq!(t.run(&["LCS", "a", "b"]), bulk(""));
        assert_eq!(t.run(&["LCS", "a", "b", "LEN"]), int(0));
        assert_eq!(t.run(&["LCS", "a", "b", "IDX"]), idx_reply(vec![], 0));
        t.run(&["SET", "a", "ohmytext"]);
        t.run(&["SET", "b", "mynewtext"]);
        assert_eq!(t.run(&["LCS", "a", "b"]), bulk("mytext"));
        assert_eq!(
            t.run(&["LCS", "a", "b", "IDX", "MINMATCHLEN", "-3"]),
            idx_reply(
                vec![range((4, 7), (5, 8), None), range((2, 3), (0, 1), None)],
                6
            )
        );
        assert_eq!(
            t.run(&["LCS", "a", "b", "LEN", "IDX"]),
            err(LCS_LEN_AND_IDX)
        );
        assert_eq!(t.run(&["LCS", "a", "b", "MINMATCHLEN"]), err(error::SYNTAX));
        assert_eq!(t.run(&["LCS", "a", "b", "FOO"]), err(error::SYNTAX));
        assert_eq!(
            t.run(&["LCS", "a", "b", "MINMATCHLEN", "x"]),
            err(error::NOT_INTEGER)
        );
        list_key(&mut t, "l");
        // The type check comes before option parsing.
        assert_eq!(t.run(&["LCS", "a", "l", "FOO"]), err(LCS_NOT_STRINGS));
        t.shard.config.proto_max_bulk_len = 16;
        assert_eq!(t.run(&["LCS", "a", "b"]), err(LCS_OVER_LIMIT));
    }

    #[test]
    fn clamp_range_rules() {
        assert_eq!(clamp_range(0, -1, 0), None);
        assert_eq!(clamp_range(0, -1, 5), Some((0, 4)));
        assert_eq!(clamp_range(-100, 100, 5), Some((0, 4)));
        assert_eq!(clamp_range(3, 1, 5), None);
        assert_eq!(clamp_range(i64::MIN, i64::MAX, 5), Some((0, 4)));
    }

    /// Redis's events for the string commands: `new` when a key is created, the command's
    /// own event, `expire` / `persist` / `del` for the expiry options, nothing when nothing
    /// was written.
    #[test]
    fn keyspace_events() {
        let mut t = TestShard::new();
        t.notify_all();
        let none = Vec::<String>::new();
        assert_eq!(t.events_of(&["set", "k", "v"]), ["n new 0:k", "$ set 0:k"]);
        assert_eq!(t.events_of(&["set", "k", "w"]), ["$ set 0:k"]);
        assert_eq!(t.events_of(&["set", "k", "w", "nx"]), none);
        assert_eq!(t.events_of(&["set", "nokey", "w", "xx"]), none);
        assert_eq!(
            t.events_of(&["set", "k", "v", "ex", "10"]),
            ["$ set 0:k", "g expire 0:k"]
        );
        assert_eq!(t.events_of(&["set", "k", "v", "keepttl"]), ["$ set 0:k"]);
        assert_eq!(
            t.events_of(&["set", "g", "v", "get"]),
            ["m keymiss 0:g", "n new 0:g", "$ set 0:g"]
        );
        assert_eq!(t.events_of(&["set", "g", "v", "nx", "get"]), none);
        assert_eq!(t.events_of(&["setnx", "k", "v"]), none);
        assert_eq!(
            t.events_of(&["setnx", "n", "v"]),
            ["n new 0:n", "$ set 0:n"]
        );
        assert_eq!(
            t.events_of(&["setex", "e", "10", "v"]),
            ["n new 0:e", "$ set 0:e", "g expire 0:e"]
        );
        assert_eq!(
            t.events_of(&["psetex", "e", "10", "v"]),
            ["$ set 0:e", "g expire 0:e"]
        );
        assert_eq!(t.events_of(&["setex", "e", "0", "v"]), none);
        assert_eq!(
            t.events_of(&["getset", "gs", "v"]),
            ["m keymiss 0:gs", "n new 0:gs", "$ set 0:gs"]
        );
        assert_eq!(t.events_of(&["getset", "gs", "w"]), ["$ set 0:gs"]);
        assert_eq!(t.events_of(&["getdel", "gs"]), ["g del 0:gs"]);
        assert_eq!(t.events_of(&["getdel", "gs"]), ["m keymiss 0:gs"]);
        assert_eq!(t.events_of(&["getex", "k"]), none);
        assert_eq!(t.events_of(&["getex", "k", "ex", "10"]), ["g expire 0:k"]);
        assert_eq!(t.events_of(&["getex", "k", "persist"]), ["g persist 0:k"]);
        assert_eq!(t.events_of(&["getex", "k", "persist"]), none);
        assert_eq!(t.events_of(&["getex", "k", "pxat", "1"]), ["g del 0:k"]);
        assert_eq!(t.events_of(&["getex", "k", "ex", "1"]), ["m keymiss 0:k"]);
        assert_eq!(
            t.events_of(&["mset", "a", "1", "b", "2", "a", "3"]),
            [
                "n new 0:a",
                "$ set 0:a",
                "n new 0:b",
                "$ set 0:b",
                "$ set 0:a"
            ]
        );
        assert_eq!(t.events_of(&["msetnx", "c", "1", "a", "2"]), none);
        assert_eq!(
            t.events_of(&["msetnx", "c", "1", "d", "2"]),
            ["n new 0:c", "$ set 0:c", "n new 0:d", "$ set 0:d"]
        );
        assert_eq!(
            t.events_of(&["append", "ap", "x"]),
            ["n new 0:ap", "$ append 0:ap"]
        );
        assert_eq!(t.events_of(&["append", "ap", "y"]), ["$ append 0:ap"]);
        assert_eq!(t.events_of(&["incr", "i"]), ["n new 0:i", "$ incrby 0:i"]);
        for cmd in [
            &["incr", "i"][..],
            &["decr", "i"],
            &["incrby", "i", "5"],
            &["decrby", "i", "5"],
        ] {
            assert_eq!(t.events_of(cmd), ["$ incrby 0:i"], "{cmd:?}");
        }
        assert_eq!(t.events_of(&["incr", "ap"]), none);
        assert_eq!(t.events_of(&["incrby", "i", "x"]), none);
        assert_eq!(
            t.events_of(&["incrbyfloat", "f", "1.5"]),
            ["n new 0:f", "$ incrbyfloat 0:f"]
        );
        assert_eq!(
            t.events_of(&["incrbyfloat", "f", "1"]),
            ["$ incrbyfloat 0:f"]
        );
        assert_eq!(t.events_of(&["incrbyfloat", "ap", "1"]), none);
        assert_eq!(t.events_of(&["setrange", "r", "3", ""]), none);
        assert_eq!(
            t.events_of(&["setrange", "r", "3", "x"]),
            ["n new 0:r", "$ setrange 0:r"]
        );
        assert_eq!(t.events_of(&["setrange", "r", "0", ""]), none);
        assert_eq!(
            t.events_of(&["setrange", "r", "0", "y"]),
            ["$ setrange 0:r"]
        );
        for cmd in [
            &["getrange", "nokey", "0", "1"][..],
            &["strlen", "nokey"],
            &["get", "nokey"],
        ] {
            assert_eq!(t.events_of(cmd), ["m keymiss 0:nokey"], "{cmd:?}");
        }
        assert_eq!(
            t.events_of(&["lcs", "x", "y"]),
            ["m keymiss 0:x", "m keymiss 0:y"]
        );
        list_key(&mut t, "l");
        t.events();
        for cmd in [
            &["get", "l"][..],
            &["set", "l", "v", "get"],
            &["append", "l", "v"],
            &["incr", "l"],
            &["setrange", "l", "0", "v"],
            &["getdel", "l"],
        ] {
            assert_eq!(t.events_of(cmd), none, "{cmd:?}");
        }
    }
}
