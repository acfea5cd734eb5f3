//! Generic key commands (Redis's `db.c` / `expire.c` / `object.c`): DEL, EXISTS, TYPE, the
//! EXPIRE and TTL families, RENAME, COPY, MOVE and OBJECT.
//!
//! Every command here sees one shard. MOVE and COPY between databases stay on that shard:
//! a key's shard depends only on its name, never on its database.

use bytes::Bytes;
use shardis_resp::Reply;

use crate::command::table::Registration;
use crate::command::Merge;
use crate::db::Entry;
use crate::error;
use crate::num;
use crate::shard::Ctx;
use crate::value::{self, Value};

pub static COMMANDS: &[Registration] = &[
    Registration::split("del", del, Merge::SumInt),
    Registration::split("unlink", del, Merge::SumInt),
    Registration::split("exists", exists, Merge::SumInt),
    Registration::split("touch", touch, Merge::SumInt),
    Registration::shard("type", type_cmd),
    Registration::shard("expire", expire),
    Registration::shard("pexpire", pexpire),
    Registration::shard("expireat", expireat),
    Registration::shard("pexpireat", pexpireat),
    Registration::shard("ttl", ttl),
    Registration::shard("pttl", pttl),
    Registration::shard("expiretime", expiretime),
    Registration::shard("pexpiretime", pexpiretime),
    Registration::shard("persist", persist),
    Registration::shard("rename", rename),
    Registration::shard("renamenx", renamenx),
    Registration::shard("copy", copy),
    Registration::shard("move", move_cmd),
    Registration::shard("object|encoding", object_encoding),
    Registration::shard("object|freq", object_freq),
    Registration::shard("object|idletime", object_idletime),
    Registration::shard("object|refcount", object_refcount),
    Registration::local("object|help", object_help),
];

const SAME_OBJECT: &str = "ERR source and destination objects are the same";
const INT_RANGE: &str = "ERR value is out of range, value must between -2147483648 and 2147483647";
const LFU_NOT_SELECTED: &str = "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";

/// Redis shares the string objects of the integers 0..10000; OBJECT REFCOUNT shows them with
/// this count (`OBJ_SHARED_REFCOUNT`).
const SHARED_INTEGERS: i64 = 10_000;
const SHARED_REFCOUNT: i64 = i32::MAX as i64;

/// DEL key [key ...] and UNLINK key [key ...]
pub fn del(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    Reply::Int(args[1..].iter().filter(|k| ctx.delete(k)).count() as i64)
}

/// EXISTS key [key ...] (a key named twice counts twice)
pub fn exists(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let n = args[1..]
        .iter()
        .filter(|k| ctx.lookup_read_notouch(k).is_some())
        .count();
    Reply::Int(n as i64)
}

/// TOUCH key [key ...]: a plain read of each key, which updates its access time.
pub fn touch(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    Reply::Int(
        args[1..]
            .iter()
            .filter(|k| ctx.lookup_read(k).is_some())
            .count() as i64,
    )
}

/// TYPE key
pub fn type_cmd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    Reply::simple(
        ctx.lookup_read_notouch(&args[1])
            .map_or("none", |e| e.value.type_name()),
    )
}

/// The NX / XX / GT / LT options of the EXPIRE family.
#[derive(Default)]
struct ExpireFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

fn parse_expire_flags(opts: &[Bytes]) -> Result<ExpireFlags, Reply> {
    let mut f = ExpireFlags::default();
    for opt in opts {
        if opt.eq_ignore_ascii_case(b"nx") {
            f.nx = true;
        } else if opt.eq_ignore_ascii_case(b"xx") {
            f.xx = true;
        } else if opt.eq_ignore_ascii_case(b"gt") {
            f.gt = true;
        } else if opt.eq_ignore_ascii_case(b"lt") {
            f.lt = true;
        } else {
            return Err(Reply::error(error::sanitize(format!(
                "ERR Unsupported option {}",
                String::from_utf8_lossy(opt)
            ))));
        }
    }
    if f.nx && (f.xx || f.gt || f.lt) {
        return Err(Reply::err(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if f.gt && f.lt {
        return Err(Reply::err(
            "ERR GT and LT options at the same time are not compatible",
        ));
    }
    Ok(f)
}

impl ExpireFlags {
    /// True if the options allow replacing the expiry `current` (-1: none) with `when`.
    fn allow(&self, current: i64, when: i64) -> bool {
        let volatile = current != -1;
        !(self.nx && volatile
            || self.xx && !volatile
            // No expiry counts as an infinite one: never greater, always less.
            || self.gt && (!volatile || when <= current)
            || self.lt && volatile && when >= current)
    }
}

/// The shard clock as a signed millisecond count (Redis computes expiries in `long long`).
fn now_i64(ctx: &Ctx<'_>) -> i64 {
    i64::try_from(ctx.now_ms).unwrap_or(i64::MAX)
}

/// An entry's expiry in Unix milliseconds, or -1 when it has none.
fn expire_of(e: &Entry) -> i64 {
    e.expire_at
        .map_or(-1, |at| i64::try_from(at.get()).unwrap_or(i64::MAX))
}

/// EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT: `args[2]` is in seconds when `seconds`, and
/// relative to now when `relative`.
fn expire_generic(ctx: &mut Ctx<'_>, args: &[Bytes], seconds: bool, relative: bool) -> Reply {
    let flags = match parse_expire_flags(&args[3..]) {
        Ok(f) => f,
        Err(e) => return e,
    };
    let Some(when) = num::parse_i64(&args[2]) else {
        return error::not_integer();
    };
    let base = if relative { now_i64(ctx) } else { 0 };
    let when = if seconds {
        when.checked_mul(1000)
    } else {
        Some(when)
    };
    let Some(when) = when.and_then(|w| w.checked_add(base)) else {
        return error::invalid_expire(&String::from_utf8_lossy(&args[0]));
    };
    let key = &args[1];
    let Some(e) = ctx.lookup_write_entry(key) else {
        return Reply::Int(0);
    };
    if !flags.allow(expire_of(e), when) {
        return Reply::Int(0);
    }
    // A time already past deletes the key (as on a master: Redis never stores it).
    if when <= now_i64(ctx) {
        ctx.db().remove(key);
    } else {
        ctx.db().set_expire(key, when as u64);
    }
    ctx.dirty(1);
    Reply::Int(1)
}

/// EXPIRE key seconds [NX|XX|GT|LT]
pub fn expire(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    expire_generic(ctx, args, true, true)
}

/// PEXPIRE key milliseconds [NX|XX|GT|LT]
pub fn pexpire(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    expire_generic(ctx, args, false, true)
}

/// EXPIREAT key unix-time-seconds [NX|XX|GT|LT]
pub fn expireat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    expire_generic(ctx, args, true, false)
}

/// PEXPIREAT key unix-time-milliseconds [NX|XX|GT|LT]
pub fn pexpireat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    expire_generic(ctx, args, false, false)
}

/// TTL, PTTL, EXPIRETIME and PEXPIRETIME: -2 for a missing key, -1 without expiry, else the
/// remaining (or absolute, when `absolute`) time, rounded to seconds unless `millis`.
fn ttl_generic(ctx: &mut Ctx<'_>, key: &[u8], millis: bool, absolute: bool) -> Reply {
    let now = now_i64(ctx);
    let Some(e) = ctx.lookup_read_notouch(key) else {
        return Reply::Int(-2);
    };
    let at = expire_of(e);
    if at == -1 {
        return Reply::Int(-1);
    }
    let t = if absolute { at } else { at - now }.max(0);
    Reply::Int(if millis {
        t
    } else {
        t.saturating_add(500) / 1000
    })
}

/// TTL key
pub fn ttl(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    ttl_generic(ctx, &args[1], false, false)
}

/// PTTL key
pub fn pttl(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    ttl_generic(ctx, &args[1], true, false)
}

/// EXPIRETIME key
pub fn expiretime(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    ttl_generic(ctx, &args[1], false, true)
}

/// PEXPIRETIME key
pub fn pexpiretime(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    ttl_generic(ctx, &args[1], true, true)
}

/// PERSIST key
pub fn persist(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if ctx.lookup_write_entry(&args[1]).is_none() || !ctx.db().persist(&args[1]) {
        return Reply::Int(0);
    }
    ctx.dirty(1);
    Reply::Int(1)
}

/// RENAME and RENAMENX: the value moves with its expiry; an existing destination is
/// replaced (RENAME) or left alone (RENAMENX).
fn rename_generic(ctx: &mut Ctx<'_>, args: &[Bytes], nx: bool) -> Reply {
    let (src, dst) = (&args[1], &args[2]);
    if ctx.lookup_write_entry(src).is_none() {
        return Reply::err(error::NO_SUCH_KEY);
    }
    let done = if nx { Reply::Int(1) } else { Reply::Ok };
    if src == dst {
        return if nx { Reply::Int(0) } else { done };
    }
    if ctx.lookup_write_entry(dst).is_some() && nx {
        return Reply::Int(0);
    }
    let db = ctx.db();
    let Some(entry) = db.remove(src) else {
        return Reply::err(error::NO_SUCH_KEY);
    };
    db.insert_entry(Ctx::key(dst), entry);
    ctx.dirty(1);
    ctx.signal_ready(dst);
    done
}

/// RENAME key newkey
pub fn rename(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    rename_generic(ctx, args, false)
}

/// RENAMENX key newkey
pub fn renamenx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    rename_generic(ctx, args, true)
}

/// Parses a 32-bit integer as Redis's `getIntFromObjectOrReply`; `msg` replaces both of its
/// errors when given.
pub(crate) fn parse_int(arg: &[u8], msg: Option<&'static str>) -> Result<i32, Reply> {
    let n = num::parse_i64(arg).ok_or(Reply::err(msg.unwrap_or(error::NOT_INTEGER)))?;
    i32::try_from(n).map_err(|_| Reply::err(msg.unwrap_or(INT_RANGE)))
}

/// The index of database `id` of this shard, or Redis's out-of-range error.
pub(crate) fn db_index(ctx: &Ctx<'_>, id: i32) -> Result<usize, Reply> {
    usize::try_from(id)
        .ok()
        .filter(|&i| i < ctx.shard.dbs.len())
        .ok_or(Reply::err(error::DB_INDEX))
}

/// Reports `key` of database `db` as possibly ready for blocked clients.
pub(crate) fn signal_ready_in(ctx: &mut Ctx<'_>, db: usize, key: &[u8]) {
    let (now, resp3) = (ctx.now_ms, ctx.resp3);
    Ctx::new(ctx.shard, db, now, resp3).signal_ready(key);
}

/// True if `key` exists in database `db` (expiring it if due), as `lookupKeyWrite`.
fn exists_for_write_in(ctx: &mut Ctx<'_>, db: usize, key: &[u8]) -> bool {
    let (now, resp3) = (ctx.now_ms, ctx.resp3);
    Ctx::new(ctx.shard, db, now, resp3)
        .lookup_write_entry(key)
        .is_some()
}

/// Stores `entry` at `key` of database `db`, replacing any entry there, counts the write and
/// wakes clients blocked on the key.
fn insert_in(ctx: &mut Ctx<'_>, db: usize, key: &[u8], entry: Entry) {
    if let Some(d) = ctx.shard.dbs.get_mut(db) {
        d.insert_entry(Ctx::key(key), entry);
    }
    ctx.dirty(1);
    signal_ready_in(ctx, db, key);
}

/// COPY source destination [DB destination-db] [REPLACE]
pub fn copy(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let mut dst_db = ctx.db;
    let mut replace = false;
    let mut i = 3;
    while i < args.len() {
        if args[i].eq_ignore_ascii_case(b"replace") {
            replace = true;
        } else if args[i].eq_ignore_ascii_case(b"db") && i + 1 < args.len() {
            let id = match parse_int(&args[i + 1], None) {
                Ok(id) => id,
                Err(e) => return e,
            };
            dst_db = match db_index(ctx, id) {
                Ok(d) => d,
                Err(e) => return e,
            };
            i += 1;
        } else {
            return error::syntax();
        }
        i += 1;
    }
    let (src, dst) = (&args[1], &args[2]);
    if dst_db == ctx.db && src == dst {
        return Reply::err(SAME_OBJECT);
    }
    if ctx.lookup_read(src).is_none() {
        return Reply::Int(0);
    }
    let Some(entry) = ctx.entry(src).cloned() else {
        return Reply::Int(0);
    };
    if exists_for_write_in(ctx, dst_db, dst) && !replace {
        return Reply::Int(0);
    }
    let entry = Entry {
        accessed: ctx.clock_secs(),
        ..entry
    };
    insert_in(ctx, dst_db, dst, entry);
    Reply::Int(1)
}

/// MOVE key db: to another database of this shard, with its expiry; never over an existing key.
pub fn move_cmd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let dst_db = match parse_int(&args[2], None).and_then(|id| db_index(ctx, id)) {
        Ok(d) => d,
        Err(e) => return e,
    };
    if dst_db == ctx.db {
        return Reply::err(SAME_OBJECT);
    }
    let key = &args[1];
    if ctx.lookup_write_entry(key).is_none() || exists_for_write_in(ctx, dst_db, key) {
        return Reply::Int(0);
    }
    let Some(entry) = ctx.db().remove(key) else {
        return Reply::Int(0);
    };
    insert_in(ctx, dst_db, key, entry);
    Reply::Int(1)
}

/// The entry OBJECT inspects: looked up without touching its access time.
fn object_lookup<'c>(ctx: &'c mut Ctx<'_>, args: &[Bytes]) -> Option<&'c Entry> {
    ctx.lookup_read_notouch(&args[2])
}

/// OBJECT ENCODING key
pub fn object_encoding(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    object_lookup(ctx, args).map_or(Reply::Nil, |e| {
        Reply::Bulk(Bytes::from_static(e.value.encoding().as_bytes()))
    })
}

/// OBJECT FREQ key: Shardis runs without an LFU eviction policy, so, as Redis with the
/// default `noeviction`, it tracks no access frequency.
pub fn object_freq(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match object_lookup(ctx, args) {
        None => Reply::Nil,
        Some(_) => Reply::err(LFU_NOT_SELECTED),
    }
}

/// OBJECT IDLETIME key: seconds since the last access.
pub fn object_idletime(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let clock = ctx.clock_secs();
    object_lookup(ctx, args).map_or(Reply::Nil, |e| {
        Reply::Int(clock.saturating_sub(e.accessed) as i64)
    })
}

/// OBJECT REFCOUNT key: Shardis shares no values, but reports what Redis would: its shared
/// small integers have a pinned count, everything else a count of 1.
pub fn object_refcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    object_lookup(ctx, args).map_or(Reply::Nil, |e| Reply::Int(refcount(&e.value)))
}

fn refcount(v: &Value) -> i64 {
    match v {
        Value::Str(s) if value::string_encoding(s) == "int" => match num::parse_i64(s) {
            Some(n) if (0..SHARED_INTEGERS).contains(&n) => SHARED_REFCOUNT,
            _ => 1,
        },
        _ => 1,
    }
}

/// OBJECT HELP
pub fn object_help(_ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Reply {
    help_reply(
        "OBJECT",
        &[
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
        ],
    )
}

/// A container's HELP reply in Redis's layout: a header line, the lines, then HELP itself.
fn help_reply(container: &str, lines: &[&'static str]) -> Reply {
    let mut out = Vec::with_capacity(lines.len() + 3);
    out.push(Reply::Simple(
        format!("{container} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:").into(),
    ));
    out.extend(lines.iter().map(|l| Reply::simple(l)));
    out.push(Reply::simple("HELP"));
    out.push(Reply::simple("    Prints this help."));
    Reply::Array(out)
}
