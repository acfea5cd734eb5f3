//! Generic key commands (Redis's `db.c` / `expire.c` / `object.c`): DEL, EXISTS, TYPE, the
//! EXPIRE and TTL families, RENAME, COPY, MOVE and OBJECT.
//!
//! Every command here sees one shard. MOVE and COPY between databases stay on that shard:
//! a key's shard depends only on its name, never on its database.

use bytes::Bytes;
use shardis_resp::Reply;

use crate::command::table::Registration;
use crate::command::Merge;
use crate::db::{Entry, Record};
use crate::error;
use crate::evict::Tracking;
use crate::notify::{GENERIC, NEW};
use crate::num;
use crate::shard::Ctx;
use crate::value::{self, Value};

pub static COMMANDS: &[Registration] = &[
    Registration::split("del", del, Merge::SumInt),
    Registration::split("unlink", unlink, Merge::SumInt),
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
const LFU_SELECTED: &str = "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";
const LFU_NOT_SELECTED: &str = "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";

/// Redis shares the string objects of the integers 0..10000; OBJECT REFCOUNT shows them with
/// this count (`OBJ_SHARED_REFCOUNT`).
const SHARED_INTEGERS: i64 = 10_000;
const SHARED_REFCOUNT: i64 = i32::MAX as i64;

/// DEL key [key ...]: large values are freed at once, or in steps with
/// `lazyfree-lazy-user-del`.
pub fn del(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let lazy = ctx.shard.config.lazyfree_lazy_user_del;
    delete_keys(ctx, &args[1..], lazy)
}

/// UNLINK key [key ...]: DEL that frees large values in steps.
pub fn unlink(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    delete_keys(ctx, &args[1..], true)
}

fn delete_keys(ctx: &mut Ctx<'_>, keys: &[Bytes], lazy: bool) -> Reply {
    let mut deleted = 0;
    for key in keys {
        if ctx.delete(key, lazy) {
            ctx.notify(GENERIC, "del", key);
            deleted += 1;
        }
    }
    Reply::Int(deleted)
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

/// An expiry in Unix milliseconds as the TTL commands see it: -1 when there is none.
fn expire_ms(at: Option<u64>) -> i64 {
    at.map_or(-1, |at| i64::try_from(at).unwrap_or(i64::MAX))
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
    if ctx.lookup_write_entry(key).is_none() {
        return Reply::Int(0);
    }
    if !flags.allow(expire_ms(ctx.db().expire_at(key)), when) {
        return Reply::Int(0);
    }
    // A time already past deletes the key (as on a master: Redis never stores it).
    if when <= now_i64(ctx) {
        if let Some(gone) = ctx.remove_entry(key) {
            let lazy = ctx.shard.config.lazyfree_lazy_expire;
            ctx.shard.dispose(gone.value, lazy);
        }
        ctx.notify(GENERIC, "del", key);
        ctx.propagate_expired(key);
    } else {
        ctx.db().set_expire(key, when as u64);
        ctx.notify(GENERIC, "expire", key);
        // Logged (and replicated) as PEXPIREAT with the absolute time, the options kept, as
        // Redis 7.0 propagates it: replayed later or elsewhere, it sets the same expiry.
        if relative || seconds {
            ctx.propagate_as(|| {
                let mut argv = args.to_vec();
                argv[0] = Bytes::from_static(b"PEXPIREAT");
                argv[2] = Bytes::from(when.to_string());
                argv
            });
        }
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
    if ctx.lookup_read_notouch(key).is_none() {
        return Reply::Int(-2);
    }
    let at = expire_ms(ctx.db().expire_at(key));
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
    ctx.notify(GENERIC, "persist", &args[1]);
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
    let Some(entry) = ctx.remove_entry(src) else {
        return Reply::err(error::NO_SUCH_KEY);
    };
    ctx.db().insert_record(dst, entry);
    ctx.dirty(1);
    ctx.signal_ready(dst);
    // Redis deletes an existing destination and adds the key anew.
    ctx.notify(NEW, "new", dst);
    ctx.notify(GENERIC, "rename_from", src);
    ctx.notify(GENERIC, "rename_to", dst);
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
/// wakes clients blocked on the key. The key counts as new, as Redis deletes a replaced one
/// first.
fn insert_in(ctx: &mut Ctx<'_>, db: usize, key: &[u8], record: Record) {
    if let Some(d) = ctx.shard.dbs.get_mut(db) {
        d.insert_record(key, record);
    }
    ctx.dirty(1);
    signal_ready_in(ctx, db, key);
    ctx.shard.report(db, NEW, "new", key);
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
    if ctx.shard.config.cluster && (ctx.db != 0 || dst_db != 0) {
        return Reply::err("ERR Copying to another database is not allowed in cluster mode");
    }
    let (src, dst) = (&args[1], &args[2]);
    if dst_db == ctx.db && src == dst {
        return Reply::err(SAME_OBJECT);
    }
    if ctx.lookup_read(src).is_none() {
        return Reply::Int(0);
    }
    let now = ctx.now_ms;
    let Some(record) = ctx.db().record(src, now) else {
        return Reply::Int(0);
    };
    if exists_for_write_in(ctx, dst_db, dst) && !replace {
        return Reply::Int(0);
    }
    let record = Record {
        lru: ctx.new_lru(),
        ..record
    };
    insert_in(ctx, dst_db, dst, record);
    ctx.shard.report(dst_db, GENERIC, "copy_to", dst);
    Reply::Int(1)
}

/// MOVE key db: to another database of this shard, with its expiry; never over an existing key.
pub fn move_cmd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if ctx.shard.config.cluster {
        return Reply::err("ERR MOVE is not allowed in cluster mode");
    }
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
    let Some(entry) = ctx.remove_entry(key) else {
        return Reply::Int(0);
    };
    insert_in(ctx, dst_db, key, entry);
    ctx.notify(GENERIC, "move_from", key);
    ctx.shard.report(dst_db, GENERIC, "move_to", key);
    Reply::Int(1)
}

/// The entry OBJECT inspects: looked up without touching its access time, and a miss is no
/// `keymiss` event.
fn object_lookup<'c>(ctx: &'c mut Ctx<'_>, args: &[Bytes]) -> Option<&'c Entry> {
    ctx.lookup_read_quiet(&args[2])
}

/// OBJECT ENCODING key
pub fn object_encoding(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    object_lookup(ctx, args).map_or(Reply::Nil, |e| {
        Reply::Bulk(Bytes::from_static(e.value.encoding().as_bytes()))
    })
}

/// OBJECT FREQ key: the key's LFU counter after the decay due, under an LFU policy only.
pub fn object_freq(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (tracking, now) = (ctx.shard.config.tracking, ctx.now_ms);
    match object_lookup(ctx, args) {
        None => Reply::Nil,
        Some(_) if !tracking.policy.is_lfu() => Reply::err(LFU_NOT_SELECTED),
        Some(e) => Reply::Int(i64::from(tracking.frequency(e.lru(), now))),
    }
}

/// OBJECT IDLETIME key: seconds since the last access, under a policy that tracks it (any
/// but the LFU ones).
pub fn object_idletime(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (tracking, now) = (ctx.shard.config.tracking, ctx.now_ms);
    match object_lookup(ctx, args) {
        None => Reply::Nil,
        Some(_) if tracking.policy.is_lfu() => Reply::err(LFU_SELECTED),
        Some(e) => Reply::Int((Tracking::idle_ms(e.lru(), now) / 1000) as i64),
    }
}

/// OBJECT REFCOUNT key: Shardis shares no values, but reports what Redis would: its shared
/// small integers have a pinned count (unless the memory policy rules sharing out, judged
/// now rather than when the value was stored), everything else a count of 1.
pub fn object_refcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let shared = ctx.shard.config.shared_integers;
    object_lookup(ctx, args).map_or(Reply::Nil, |e| Reply::Int(refcount(&e.value, shared)))
}

/// DEBUG OBJECT's status line for `key` of database `db`, found as Redis's `dictFind` finds
/// it: a key past its expiry but not yet removed is still there. The address is the value's
/// place in the table (it stays while a command changes the value in place, as Redis's
/// object address does); `serializedlength` is the value's RDB body, compressed as SAVE
/// writes it by default.
pub fn debug_object(shard: &crate::Shard, db: usize, key: &[u8], now_ms: u64) -> Option<String> {
    let e = shard.dbs.get(db)?.peek(key)?;
    Some(format!(
        "Value at:{:p} refcount:{} encoding:{} serializedlength:{} lru:{} lru_seconds_idle:{}",
        &e.value,
        refcount(&e.value, shard.config.shared_integers),
        e.value.encoding(),
        crate::rdb::serialize(&e.value, true)
            .len()
            .saturating_sub(1),
        e.lru(),
        Tracking::idle_ms(e.lru(), now_ms) / 1000,
    ))
}

fn refcount(v: &Value, shared_integers: bool) -> i64 {
    match v {
        Value::Str(s) if shared_integers && value::string_encoding(s) == "int" => {
            match num::parse_i64(s) {
                Some(n) if (0..SHARED_INTEGERS).contains(&n) => SHARED_REFCOUNT,
                _ => 1,
            }
        }
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

/// A container's HELP reply in Redis's layout (`addReplyHelp`): a header line, the lines,
/// then HELP itself.
pub fn help_reply(container: &str, lines: &[&'static str]) -> Reply {
    let mut out = Vec::with_capacity(lines.len() + 3);
    out.push(Reply::Simple(
        format!("{container} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:").into(),
    ));
    out.extend(lines.iter().map(|l| Reply::simple(l)));
    out.push(Reply::simple("HELP"));
    out.push(Reply::simple("    Prints this help."));
    Reply::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    const NO_SUCH_KEY: &str = "ERR no such key";
    const NOT_INT: &str = "ERR value is not an integer or out of range";

    fn shard_with(keys: &[&str]) -> TestShard {
        let mut t = TestShard::new();
        for k in keys {
            assert_eq!(t.run(&["set", k, "v"]), ok());
        }
        t
    }

    #[test]
    fn paused_expiry_hides_expired_keys_without_removing_them() {
        let mut t = TestShard::new();
        assert_eq!(t.run(&["set", "k", "v", "px", "10"]), ok());
        t.shard.pause_expiry(true);
        t.advance(20);
        assert_eq!(t.run(&["get", "k"]), Reply::Nil);
        assert_eq!(t.run(&["exists", "k"]), int(0));
        assert_eq!(t.shard.active_expire(t.now_ms, 16), 0);
        assert_eq!(t.shard.expired_keys(), 0);
        assert_eq!(t.shard.db_len(0), 1, "the key stays while paused");
        t.shard.pause_expiry(false);
        assert_eq!(t.run(&["get", "k"]), Reply::Nil);
        assert_eq!(t.shard.db_len(0), 0);
        assert_eq!(t.shard.expired_keys(), 1, "a lazy expiry counts");
    }

    /// Puts an (empty-bodied) list at `key`, for type checks: Shardis' list commands are
    /// another module's.
    fn put_list(t: &mut TestShard, key: &str) {
        let db = t.db;
        t.shard.dbs[db].set(key.as_bytes(), Value::List(Default::default()), 0, false);
    }

    fn hits_misses(t: &TestShard) -> (u64, u64) {
        (t.shard.stats.keyspace_hits, t.shard.stats.keyspace_misses)
    }

    #[test]
    fn del_and_unlink_count_deleted_keys() {
        let mut t = shard_with(&["a", "b", "c"]);
        assert_eq!(t.run(&["del", "a", "b", "nosuch"]), int(2));
        assert_eq!(t.run(&["unlink", "c", "c"]), int(1));
        assert_eq!(t.run(&["exists", "a", "b", "c"]), int(0));
        assert_eq!(
            t.run(&["del"]),
            err("ERR wrong number of arguments for 'del' command")
        );
    }

    #[test]
    fn del_of_an_expired_key_counts_nothing() {
        let mut t = shard_with(&["k"]);
        t.run(&["pexpire", "k", "100"]);
        t.advance(100);
        let dirty = t.shard.dirty;
        assert_eq!(t.run(&["del", "k"]), int(0));
        assert_eq!(t.shard.dirty, dirty);
        assert_eq!(t.shard.db_len(0), 0);
    }

    #[test]
    fn binary_and_empty_keys() {
        let mut t = TestShard::new();
        let key = Bytes::from_static(b"a\x00\r\n\xff");
        let val = Bytes::from_static(b"");
        t.run_bytes(&[Bytes::from_static(b"set"), key.clone(), val]);
        t.run(&["set", "", "empty"]);
        assert_eq!(
            t.run_bytes(&[Bytes::from_static(b"exists"), key.clone()]),
            int(1)
        );
        assert_eq!(t.run(&["exists", ""]), int(1));
        let new = Bytes::from_static(b"\x00");
        assert_eq!(
            t.run_bytes(&[Bytes::from_static(b"rename"), key.clone(), new.clone()]),
            ok()
        );
        assert_eq!(
            t.run_bytes(&[Bytes::from_static(b"get"), new.clone()]),
            bulk("")
        );
        assert_eq!(t.run_bytes(&[Bytes::from_static(b"del"), key, new]), int(1));
        assert_eq!(t.run(&["del", ""]), int(1));
    }

    #[test]
    fn exists_counts_repeats_and_keyspace_reads() {
        let mut t = shard_with(&["a"]);
        assert_eq!(t.run(&["exists", "a", "a", "b"]), int(2));
        assert_eq!(hits_misses(&t), (2, 1));
        t.run(&["del", "a"]);
        assert_eq!(t.run(&["exists", "a"]), int(0));
    }

    #[test]
    fn exists_type_and_ttl_do_not_touch_but_touch_does() {
        let mut t = shard_with(&["foo"]);
        t.advance(3000);
        t.run(&["exists", "foo"]);
        t.run(&["type", "foo"]);
        t.run(&["ttl", "foo"]);
        t.run(&["pttl", "foo"]);
        t.run(&["expiretime", "foo"]);
        t.run(&["object", "encoding", "foo"]);
        assert_eq!(t.run(&["object", "idletime", "foo"]), int(3));
        assert_eq!(t.run(&["touch", "foo", "nosuch", "foo"]), int(2));
        assert_eq!(t.run(&["object", "idletime", "foo"]), int(0));
    }

    #[test]
    fn touch_counts_hits_and_misses() {
        let mut t = shard_with(&["key1", "key2"]);
        assert_eq!(t.run(&["touch", "key0", "key1", "key2", "key3"]), int(2));
        assert_eq!(hits_misses(&t), (2, 2));
    }

    #[test]
    fn type_names() {
        let mut t = shard_with(&["s"]);
        put_list(&mut t, "l");
        assert_eq!(t.run(&["type", "s"]), Reply::simple("string"));
        assert_eq!(t.run(&["type", "l"]), Reply::simple("list"));
        assert_eq!(t.run(&["type", "nosuch"]), Reply::simple("none"));
        assert_eq!(hits_misses(&t), (2, 1));
        t.run(&["pexpire", "s", "1"]);
        t.advance(1);
        assert_eq!(t.run(&["type", "s"]), Reply::simple("none"));
    }

    #[test]
    fn expire_sets_and_resets_the_ttl() {
        let mut t = shard_with(&["x"]);
        assert_eq!(t.run(&["expire", "x", "5"]), int(1));
        assert_eq!(t.run(&["ttl", "x"]), int(5));
        assert_eq!(t.run(&["pttl", "x"]), int(5000));
        assert_eq!(t.run(&["expire", "x", "10"]), int(1));
        assert_eq!(t.run(&["ttl", "x"]), int(10));
        // TTL rounds to the nearest second.
        t.advance(9_400);
        assert_eq!(t.run(&["ttl", "x"]), int(1));
        t.advance(200);
        assert_eq!(t.run(&["ttl", "x"]), int(0));
        assert_eq!(t.run(&["pttl", "x"]), int(400));
        t.advance(400);
        assert_eq!(t.run(&["get", "x"]), Reply::Nil);
        assert_eq!(t.run(&["ttl", "x"]), int(-2));
    }

    #[test]
    fn expire_writes_count_as_dirty_and_keep_the_value() {
        let mut t = shard_with(&["x"]);
        let dirty = t.shard.dirty;
        assert_eq!(t.run(&["pexpire", "x", "100"]), int(1));
        assert_eq!(t.shard.dirty, dirty + 1);
        assert_eq!(t.run(&["get", "x"]), bulk("v"));
        assert_eq!(t.run(&["expire", "x", "100", "NX"]), int(0));
        assert_eq!(t.shard.dirty, dirty + 1);
    }

    #[test]
    fn every_expire_variant_computes_the_same_deadline() {
        let mut t = shard_with(&["a", "b", "c", "d"]);
        let now = t.now_ms;
        let secs = (now / 1000 + 100).to_string();
        let ms = (now + 100_000).to_string();
        assert_eq!(t.run(&["expire", "a", "100"]), int(1));
        assert_eq!(t.run(&["pexpire", "b", "100000"]), int(1));
        assert_eq!(t.run(&["expireat", "c", &secs]), int(1));
        assert_eq!(t.run(&["pexpireat", "d", &ms]), int(1));
        for k in ["a", "b", "d"] {
            assert_eq!(t.run(&["pexpiretime", k]), int(now as i64 + 100_000));
            assert_eq!(
                t.run(&["expiretime", k]),
                int((now as i64 + 100_000) / 1000)
            );
        }
        assert_eq!(t.run(&["expiretime", "c"]), int(now as i64 / 1000 + 100));
        assert_eq!(
            t.run(&["pexpiretime", "c"]),
            int((now as i64 / 1000 + 100) * 1000)
        );
    }

    #[test]
    fn ttl_family_on_missing_and_persistent_keys() {
        let mut t = shard_with(&["x"]);
        for cmd in ["ttl", "pttl", "expiretime", "pexpiretime"] {
            assert_eq!(t.run(&[cmd, "x"]), int(-1), "{cmd}");
            assert_eq!(t.run(&[cmd, "nosuch"]), int(-2), "{cmd}");
        }
        assert_eq!(
            t.run(&["ttl", "x", "y"]),
            err("ERR wrong number of arguments for 'ttl' command")
        );
    }

    #[test]
    fn expiretime_rounds_to_the_nearest_second() {
        let mut t = shard_with(&["x"]);
        let at = (t.now_ms / 1000 + 100) * 1000 + 600;
        t.run(&["pexpireat", "x", &at.to_string()]);
        assert_eq!(t.run(&["expiretime", "x"]), int((at / 1000 + 1) as i64));
    }

    #[test]
    fn expire_nx_xx() {
        let mut t = shard_with(&["foo"]);
        assert_eq!(t.run(&["expire", "foo", "200", "XX"]), int(0));
        assert_eq!(t.run(&["ttl", "foo"]), int(-1));
        assert_eq!(t.run(&["expire", "foo", "100", "nx"]), int(1));
        assert_eq!(t.run(&["expire", "foo", "200", "NX"]), int(0));
        assert_eq!(t.run(&["ttl", "foo"]), int(100));
        assert_eq!(t.run(&["expire", "foo", "200", "xx"]), int(1));
        assert_eq!(t.run(&["ttl", "foo"]), int(200));
    }

    #[test]
    fn expire_gt_lt() {
        let mut t = shard_with(&["foo"]);
        // No expiry is infinite: never greater, always less.
        assert_eq!(t.run(&["expire", "foo", "200", "GT"]), int(0));
        assert_eq!(t.run(&["ttl", "foo"]), int(-1));
        assert_eq!(t.run(&["expire", "foo", "100", "LT"]), int(1));
        assert_eq!(t.run(&["expire", "foo", "200", "LT"]), int(0));
        assert_eq!(t.run(&["expire", "foo", "100", "GT"]), int(0));
        assert_eq!(t.run(&["expire", "foo", "200", "gt"]), int(1));
        assert_eq!(t.run(&["ttl", "foo"]), int(200));
        assert_eq!(t.run(&["expire", "foo", "50", "lt", "xx"]), int(1));
        assert_eq!(t.run(&["ttl", "foo"]), int(50));
        t.run(&["persist", "foo"]);
        assert_eq!(t.run(&["expire", "foo", "200", "LT", "XX"]), int(0));
        assert_eq!(t.run(&["ttl", "foo"]), int(-1));
        // Repeating an option is allowed.
        assert_eq!(t.run(&["expire", "foo", "200", "nx", "NX"]), int(1));
    }

    #[test]
    fn expire_option_errors() {
        let mut t = shard_with(&["foo"]);
        let nx = "ERR NX and XX, GT or LT options at the same time are not compatible";
        assert_eq!(t.run(&["expire", "foo", "200", "NX", "XX"]), err(nx));
        assert_eq!(t.run(&["expire", "foo", "200", "NX", "GT"]), err(nx));
        assert_eq!(t.run(&["pexpire", "foo", "200", "lt", "nx"]), err(nx));
        assert_eq!(
            t.run(&["expireat", "foo", "200", "LT", "GT"]),
            err("ERR GT and LT options at the same time are not compatible")
        );
        assert_eq!(
            t.run(&["expire", "foo", "200", "AB"]),
            err("ERR Unsupported option AB")
        );
        assert_eq!(
            t.run(&["expire", "foo", "200", "XX", "AB"]),
            err("ERR Unsupported option AB")
        );
        assert_eq!(
            t.run(&["pexpireat", "foo", "200", "a\r\nb"]),
            err("ERR Unsupported option a  b")
        );
        // Options are checked before the time.
        assert_eq!(
            t.run(&["expire", "foo", "x", "AB"]),
            err("ERR Unsupported option AB")
        );
        assert_eq!(t.run(&["expire", "foo", ""]), err(NOT_INT));
        assert_eq!(t.run(&["expire", "foo", "1.5"]), err(NOT_INT));
        assert_eq!(t.run(&["pexpire", "foo", " 1"]), err(NOT_INT));
        assert_eq!(
            t.run(&["expire", "foo"]),
            err("ERR wrong number of arguments for 'expire' command")
        );
        assert_eq!(t.run(&["ttl", "foo"]), int(-1));
    }

    #[test]
    fn expire_overflow_is_an_invalid_expire_time() {
        let mut t = shard_with(&["foo"]);
        let e = err("ERR invalid expire time in 'expire' command");
        for n in [
            "9223370399119966",
            "9223372036854776",
            "10000000000000000",
            "18446744073709561",
            "-9223372036854776",
            "-9999999999999999",
        ] {
            assert_eq!(t.run(&["expire", "foo", n]), e, "{n}");
        }
        assert_eq!(
            t.run(&["PEXPIRE", "foo", "9223372036854770000"]),
            err("ERR invalid expire time in 'pexpire' command")
        );
        assert_eq!(
            t.run(&["expireat", "foo", "9223372036854776"]),
            err("ERR invalid expire time in 'expireat' command")
        );
        // The overflow is reported even for a missing key.
        assert_eq!(t.run(&["expire", "nosuch", "9223372036854776"]), e);
        assert_eq!(t.run(&["ttl", "foo"]), int(-1));
    }

    #[test]
    fn far_future_and_past_deadlines() {
        let mut t = shard_with(&["foo"]);
        assert_eq!(t.run(&["pexpireat", "foo", "9223372036854770000"]), int(1));
        assert_eq!(t.run(&["pexpiretime", "foo"]), int(9223372036854770000));
        let far = 9223372036854770000 - t.now_ms as i64;
        assert_eq!(t.run(&["ttl", "foo"]), int((far + 500) / 1000));
        assert_eq!(t.run(&["pexpireat", "foo", "-9223372036854770000"]), int(1));
        assert_eq!(t.run(&["ttl", "foo"]), int(-2));
        t.run(&["set", "foo", "bar"]);
        let dirty = t.shard.dirty;
        assert_eq!(t.run(&["expire", "foo", "-10", "LT"]), int(1));
        assert_eq!(t.shard.dirty, dirty + 1);
        assert_eq!(t.run(&["ttl", "foo"]), int(-2));
        t.run(&["set", "foo", "bar"]);
        assert_eq!(t.run(&["expire", "foo", "0"]), int(1));
        assert_eq!(t.run(&["exists", "foo"]), int(0));
        t.run(&["set", "foo", "bar"]);
        let now = t.now_ms.to_string();
        assert_eq!(t.run(&["pexpireat", "foo", &now]), int(1));
        assert_eq!(t.run(&["exists", "foo"]), int(0));
    }

    #[test]
    fn expire_on_missing_keys_is_zero() {
        let mut t = TestShard::new();
        for opt in ["NX", "XX", "GT", "LT"] {
            assert_eq!(t.run(&["expire", "none", "100", opt]), int(0));
        }
        assert_eq!(t.run(&["pexpireat", "none", "1"]), int(0));
    }

    #[test]
    fn expire_does_not_resurrect_an_expired_key() {
        let mut t = shard_with(&["foo"]);
        t.run(&["pexpire", "foo", "500"]);
        t.advance(1000);
        assert_eq!(t.run(&["expire", "foo", "10"]), int(0));
        assert_eq!(t.run(&["exists", "foo"]), int(0));
    }

    #[test]
    fn persist() {
        let mut t = shard_with(&["x", "foo"]);
        t.run(&["expire", "x", "50"]);
        assert_eq!(t.run(&["ttl", "x"]), int(50));
        let dirty = t.shard.dirty;
        assert_eq!(t.run(&["persist", "x"]), int(1));
        assert_eq!(t.shard.dirty, dirty + 1);
        assert_eq!(t.run(&["ttl", "x"]), int(-1));
        assert_eq!(t.run(&["get", "x"]), bulk("v"));
        assert_eq!(t.run(&["persist", "x"]), int(0));
        assert_eq!(t.run(&["persist", "foo"]), int(0));
        assert_eq!(t.run(&["persist", "nokeyatall"]), int(0));
        assert_eq!(t.shard.dirty, dirty + 1);
        t.run(&["pexpire", "foo", "10"]);
        t.advance(10);
        assert_eq!(t.run(&["persist", "foo"]), int(0));
        assert_eq!(t.shard.dbs[0].volatile_len(), 0);
    }

    #[test]
    fn rename_basics() {
        let mut t = TestShard::new();
        t.run(&["set", "mykey", "hello"]);
        assert_eq!(t.run(&["rename", "mykey", "mykey1"]), ok());
        assert_eq!(t.run(&["rename", "mykey1", "mykey2"]), ok());
        assert_eq!(t.run(&["get", "mykey2"]), bulk("hello"));
        assert_eq!(t.run(&["exists", "mykey", "mykey1"]), int(0));
        t.run(&["set", "mykey", "a"]);
        t.run(&["set", "mykey2", "b"]);
        let dirty = t.shard.dirty;
        assert_eq!(t.run(&["rename", "mykey2", "mykey"]), ok());
        assert_eq!(t.shard.dirty, dirty + 1);
        assert_eq!(t.run(&["get", "mykey"]), bulk("b"));
        assert_eq!(t.run(&["exists", "mykey2"]), int(0));
        assert_eq!(t.shard.db_len(0), 1);
    }

    #[test]
    fn rename_errors_and_same_key() {
        let mut t = TestShard::new();
        assert_eq!(t.run(&["rename", "nokey", "foobar"]), err(NO_SUCH_KEY));
        assert_eq!(t.run(&["renamenx", "nokey", "foobar"]), err(NO_SUCH_KEY));
        assert_eq!(t.run(&["rename", "mykey", "mykey"]), err(NO_SUCH_KEY));
        t.run(&["set", "mykey", "foo"]);
        assert_eq!(t.run(&["rename", "mykey", "mykey"]), ok());
        assert_eq!(t.run(&["renamenx", "mykey", "mykey"]), int(0));
        assert_eq!(t.run(&["get", "mykey"]), bulk("foo"));
        t.run(&["pexpire", "mykey", "5"]);
        t.advance(5);
        assert_eq!(t.run(&["rename", "mykey", "other"]), err(NO_SUCH_KEY));
        assert_eq!(
            t.run(&["rename", "a"]),
            err("ERR wrong number of arguments for 'rename' command")
        );
    }

    #[test]
    fn rename_moves_the_ttl_and_drops_the_targets() {
        let mut t = shard_with(&["mykey", "mykey2"]);
        t.run(&["expire", "mykey", "100"]);
        assert_eq!(t.run(&["rename", "mykey", "mykey2"]), ok());
        assert_eq!(t.run(&["ttl", "mykey2"]), int(100));
        t.run(&["set", "mykey", "foo"]);
        t.run(&["expire", "mykey2", "100"]);
        assert_eq!(t.run(&["rename", "mykey", "mykey2"]), ok());
        assert_eq!(t.run(&["ttl", "mykey2"]), int(-1));
        assert_eq!(t.shard.dbs[0].volatile_len(), 0);
        // An expired destination is simply replaced.
        t.run(&["set", "a", "1"]);
        t.run(&["set", "b", "2"]);
        t.run(&["pexpire", "b", "1"]);
        t.advance(1);
        assert_eq!(t.run(&["renamenx", "a", "b"]), int(1));
        assert_eq!(t.run(&["get", "b"]), bulk("1"));
    }

    #[test]
    fn renamenx() {
        let mut t = TestShard::new();
        t.run(&["set", "mykey", "foobar"]);
        assert_eq!(t.run(&["renamenx", "mykey", "mykey2"]), int(1));
        assert_eq!(t.run(&["get", "mykey2"]), bulk("foobar"));
        assert_eq!(t.run(&["exists", "mykey"]), int(0));
        t.run(&["set", "mykey", "foo"]);
        let dirty = t.shard.dirty;
        assert_eq!(t.run(&["renamenx", "mykey", "mykey2"]), int(0));
        assert_eq!(t.shard.dirty, dirty);
        assert_eq!(t.run(&["get", "mykey"]), bulk("foo"));
        assert_eq!(t.run(&["get", "mykey2"]), bulk("foobar"));
    }

    #[test]
    fn rename_keeps_the_value_type() {
        let mut t = TestShard::new();
        put_list(&mut t, "l");
        assert_eq!(t.run(&["rename", "l", "l2"]), ok());
        assert_eq!(t.run(&["type", "l2"]), Reply::simple("list"));
    }

    #[test]
    fn copy_within_and_across_databases() {
        let mut t = TestShard::new();
        t.run(&["set", "mykey", "foobar"]);
        let dirty = t.shard.dirty;
        assert_eq!(t.run(&["copy", "mykey", "mynewkey"]), int(1));
        assert_eq!(t.shard.dirty, dirty + 1);
        assert_eq!(t.run(&["get", "mynewkey"]), bulk("foobar"));
        assert_eq!(t.run(&["dbsize"]), int(2));
        assert_eq!(t.run(&["copy", "mykey", "mynewkey", "DB", "10"]), int(1));
        t.db = 10;
        assert_eq!(t.run(&["get", "mynewkey"]), bulk("foobar"));
        assert_eq!(t.run(&["dbsize"]), int(1));
        // Copies are independent of their source.
        t.run(&["set", "mynewkey", "hoge"]);
        t.db = 0;
        assert_eq!(t.run(&["get", "mykey"]), bulk("foobar"));
        assert_eq!(t.run(&["get", "mynewkey"]), bulk("foobar"));
        // Same name in another database is fine.
        assert_eq!(t.run(&["copy", "mykey", "mykey", "db", "3"]), int(1));
    }

    #[test]
    fn copy_replace() {
        let mut t = TestShard::new();
        t.run(&["set", "mykey2", "hello"]);
        t.db = 10;
        t.run(&["set", "mynewkey", "old"]);
        t.db = 0;
        assert_eq!(t.run(&["copy", "mykey2", "mynewkey", "DB", "10"]), int(0));
        assert_eq!(
            t.run(&["copy", "mykey2", "mynewkey", "db", "10", "replace"]),
            int(1)
        );
        t.db = 10;
        assert_eq!(t.run(&["get", "mynewkey"]), bulk("hello"));
        t.db = 0;
        t.run(&["set", "x", "1"]);
        assert_eq!(t.run(&["copy", "mykey2", "x"]), int(0));
        assert_eq!(t.run(&["copy", "mykey2", "x", "REPLACE"]), int(1));
        assert_eq!(t.run(&["get", "x"]), bulk("hello"));
    }

    #[test]
    fn copy_carries_the_expiry() {
        let mut t = shard_with(&["mykey"]);
        t.run(&["expire", "mykey", "100"]);
        assert_eq!(t.run(&["copy", "mykey", "mynewkey", "REPLACE"]), int(1));
        assert_eq!(t.run(&["ttl", "mynewkey"]), int(100));
        t.run(&["persist", "mykey"]);
        assert_eq!(t.run(&["copy", "mykey", "mynewkey", "REPLACE"]), int(1));
        assert_eq!(t.run(&["ttl", "mynewkey"]), int(-1));
        assert_eq!(t.shard.dbs[0].volatile_len(), 0);
    }

    #[test]
    fn copy_errors() {
        let mut t = shard_with(&["mykey"]);
        assert_eq!(t.run(&["copy", "nosuch", "dst"]), int(0));
        assert_eq!(
            t.run(&["copy", "mykey", "mykey"]),
            err("ERR source and destination objects are the same")
        );
        assert_eq!(
            t.run(&["copy", "mykey", "mykey", "db", "0"]),
            err("ERR source and destination objects are the same")
        );
        assert_eq!(
            t.run(&["copy", "mykey", "new", "DB", "notanumber"]),
            err(NOT_INT)
        );
        assert_eq!(
            t.run(&["copy", "mykey", "new", "DB", "16"]),
            err("ERR DB index is out of range")
        );
        assert_eq!(
            t.run(&["copy", "mykey", "new", "DB", "-1"]),
            err("ERR DB index is out of range")
        );
        assert_eq!(
            t.run(&["copy", "mykey", "new", "DB", "2147483648"]),
            err("ERR value is out of range, value must between -2147483648 and 2147483647")
        );
        assert_eq!(
            t.run(&["copy", "mykey", "new", "DB"]),
            err("ERR syntax error")
        );
        assert_eq!(
            t.run(&["copy", "mykey", "new", "foo"]),
            err("ERR syntax error")
        );
        // Options are read in order: the bad index is seen before the bad option.
        assert_eq!(
            t.run(&["copy", "mykey", "new", "db", "99", "foo"]),
            err("ERR DB index is out of range")
        );
        assert_eq!(t.run(&["exists", "new"]), int(0));
    }

    #[test]
    fn copy_reads_its_source_as_a_lookup() {
        let mut t = shard_with(&["a"]);
        t.advance(5000);
        t.run(&["copy", "a", "b"]);
        t.run(&["copy", "nosuch", "b"]);
        assert_eq!(hits_misses(&t), (1, 1));
        assert_eq!(t.run(&["object", "idletime", "a"]), int(0));
    }

    #[test]
    fn copy_of_other_types() {
        let mut t = TestShard::new();
        put_list(&mut t, "l");
        assert_eq!(t.run(&["copy", "l", "l2"]), int(1));
        assert_eq!(t.run(&["type", "l2"]), Reply::simple("list"));
        assert_eq!(t.run(&["object", "refcount", "l2"]), int(1));
    }

    #[test]
    fn move_between_databases() {
        let mut t = TestShard::new();
        t.db = 9;
        t.run(&["set", "mykey", "foobar"]);
        let dirty = t.shard.dirty;
        assert_eq!(t.run(&["move", "mykey", "10"]), int(1));
        assert_eq!(t.shard.dirty, dirty + 1);
        assert_eq!(t.run(&["exists", "mykey"]), int(0));
        assert_eq!(t.run(&["dbsize"]), int(0));
        t.db = 10;
        assert_eq!(t.run(&["get", "mykey"]), bulk("foobar"));
        assert_eq!(t.run(&["dbsize"]), int(1));
        t.db = 9;
        t.run(&["set", "mykey", "hello"]);
        assert_eq!(t.run(&["move", "mykey", "10"]), int(0));
        assert_eq!(t.run(&["get", "mykey"]), bulk("hello"));
        assert_eq!(t.run(&["move", "nosuch", "10"]), int(0));
    }

    #[test]
    fn move_carries_the_expiry() {
        let mut t = TestShard::new();
        t.db = 9;
        t.run(&["set", "mykey", "foo"]);
        t.run(&["expire", "mykey", "100"]);
        assert_eq!(t.run(&["move", "mykey", "10"]), int(1));
        assert_eq!(t.run(&["ttl", "mykey"]), int(-2));
        t.db = 10;
        assert_eq!(t.run(&["ttl", "mykey"]), int(100));
        assert_eq!(t.shard.dbs[9].volatile_len(), 0);
        assert_eq!(t.shard.dbs[10].volatile_len(), 1);
        t.run(&["set", "plain", "x"]);
        assert_eq!(t.run(&["move", "plain", "9"]), int(1));
        t.db = 9;
        assert_eq!(t.run(&["ttl", "plain"]), int(-1));
        // An expired key in the target does not block the move.
        t.run(&["set", "k", "new"]);
        t.db = 10;
        t.run(&["set", "k", "old"]);
        t.run(&["pexpire", "k", "1"]);
        t.advance(1);
        t.db = 9;
        assert_eq!(t.run(&["move", "k", "10"]), int(1));
    }

    #[test]
    fn move_errors() {
        let mut t = shard_with(&["mykey"]);
        assert_eq!(t.run(&["move", "mykey", "notanumber"]), err(NOT_INT));
        assert_eq!(
            t.run(&["move", "mykey", "16"]),
            err("ERR DB index is out of range")
        );
        assert_eq!(
            t.run(&["move", "mykey", "-1"]),
            err("ERR DB index is out of range")
        );
        assert_eq!(
            t.run(&["move", "mykey", "-2147483649"]),
            err("ERR value is out of range, value must between -2147483648 and 2147483647")
        );
        assert_eq!(
            t.run(&["move", "mykey", "0"]),
            err("ERR source and destination objects are the same")
        );
        assert_eq!(
            t.run(&["move", "nosuch", "0"]),
            err("ERR source and destination objects are the same")
        );
        assert_eq!(
            t.run(&["move", "mykey", "1", "2"]),
            err("ERR wrong number of arguments for 'move' command")
        );
    }

    #[test]
    fn moved_renamed_and_copied_keys_wake_blocked_clients() {
        let mut t = shard_with(&["a", "b", "c"]);
        for (db, key) in [(0, "r"), (1, "b"), (2, "c2")] {
            t.shard.blocked_keys.insert((db, Bytes::from(key)));
        }
        t.run(&["rename", "a", "r"]);
        t.run(&["move", "b", "1"]);
        t.run(&["copy", "c", "c2", "db", "2"]);
        assert_eq!(
            t.shard.ready_keys,
            vec![
                (0, Bytes::from("r")),
                (1, Bytes::from("b")),
                (2, Bytes::from("c2"))
            ]
        );
    }

    #[test]
    fn object_encoding() {
        let mut t = TestShard::new();
        t.run(&["set", "i", "12345"]);
        t.run(&["set", "e", "hello"]);
        let long = "x".repeat(45);
        t.run(&["set", "r", &long]);
        put_list(&mut t, "l");
        assert_eq!(t.run(&["object", "encoding", "i"]), bulk("int"));
        assert_eq!(t.run(&["OBJECT", "ENCODING", "e"]), bulk("embstr"));
        assert_eq!(t.run(&["object", "encoding", "r"]), bulk("raw"));
        let list_enc = Value::List(Default::default()).encoding();
        assert_eq!(t.run(&["object", "encoding", "l"]), bulk(list_enc));
        assert_eq!(t.run(&["object", "encoding", "nosuch"]), Reply::Nil);
        assert_eq!(hits_misses(&t), (4, 1));
    }

    #[test]
    fn object_freq_needs_an_lfu_policy() {
        let mut t = shard_with(&["k"]);
        assert_eq!(t.run(&["object", "freq", "k"]), err(LFU_NOT_SELECTED));
        assert_eq!(t.run(&["object", "freq", "nosuch"]), Reply::Nil);
    }

    #[test]
    fn object_idletime() {
        let mut t = shard_with(&["k"]);
        assert_eq!(t.run(&["object", "idletime", "k"]), int(0));
        t.advance(2500);
        assert_eq!(t.run(&["object", "idletime", "k"]), int(2));
        t.run(&["get", "k"]);
        assert_eq!(t.run(&["object", "idletime", "k"]), int(0));
        assert_eq!(t.run(&["object", "idletime", "nosuch"]), Reply::Nil);
    }

    #[test]
    fn object_refcount() {
        let mut t = TestShard::new();
        for (v, rc) in [
            ("0", SHARED_REFCOUNT),
            ("1", SHARED_REFCOUNT),
            ("9999", SHARED_REFCOUNT),
            ("10000", 1),
            ("-1", 1),
            ("01", 1),
            ("foo", 1),
        ] {
            t.run(&["set", "k", v]);
            assert_eq!(t.run(&["object", "refcount", "k"]), int(rc), "{v}");
        }
        assert_eq!(SHARED_REFCOUNT, 2147483647);
        put_list(&mut t, "l");
        assert_eq!(t.run(&["object", "refcount", "l"]), int(1));
        assert_eq!(t.run(&["object", "refcount", "nosuch"]), Reply::Nil);
        // Under a maxmemory with an LRU or LFU policy, Redis shares no integers.
        let mut config = t.shard.config.clone();
        config.shared_integers = false;
        t.shard.set_config(config);
        t.run(&["set", "k", "1"]);
        assert_eq!(t.run(&["object", "refcount", "k"]), int(1));
    }

    #[test]
    fn object_help_and_errors() {
        let mut t = TestShard::new();
        let Reply::Array(lines) = t.run(&["object", "help"]) else {
            panic!("help is an array");
        };
        assert_eq!(lines.len(), 15);
        assert_eq!(
            lines[0],
            Reply::simple("OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")
        );
        assert_eq!(lines[1], Reply::simple("ENCODING <key>"));
        assert_eq!(lines[13], Reply::simple("HELP"));
        assert_eq!(lines[14], Reply::simple("    Prints this help."));
        assert_eq!(
            t.run(&["object", "foo", "k"]),
            err("ERR unknown subcommand 'foo'. Try OBJECT HELP.")
        );
        assert_eq!(
            t.run(&["object", "encoding"]),
            err("ERR wrong number of arguments for 'object|encoding' command")
        );
        assert_eq!(
            t.run(&["object", "help", "x"]),
            err("ERR wrong number of arguments for 'object|help' command")
        );
        assert_eq!(
            t.run(&["object"]),
            err("ERR wrong number of arguments for 'object' command")
        );
    }

    #[test]
    fn int_parsing_for_db_indexes() {
        assert_eq!(parse_int(b"7", None), Ok(7));
        assert_eq!(parse_int(b"-2147483648", None), Ok(i32::MIN));
        assert_eq!(parse_int(b"07", None), Err(Reply::err(NOT_INT)));
        assert_eq!(parse_int(b"2147483648", None), Err(Reply::err(INT_RANGE)));
        assert_eq!(
            parse_int(b"2147483648", Some("ERR custom")),
            Err(Reply::err("ERR custom"))
        );
        assert_eq!(
            parse_int(b"x", Some("ERR custom")),
            Err(Reply::err("ERR custom"))
        );
    }

    /// Redis's events for the generic key commands (pubsub.tcl's "general events test" and
    /// db.c / expire.c): del per key deleted, expire or (time already past) del, persist,
    /// rename_from then rename_to, copy_to and move_from / move_to in their databases, each
    /// key added reported new first.
    #[test]
    fn keyspace_events() {
        let mut t = shard_with(&["a", "b", "c"]);
        t.notify_all();
        let none = Vec::<String>::new();
        assert_eq!(t.events_of(&["expire", "a", "100"]), ["g expire 0:a"]);
        assert_eq!(t.events_of(&["expire", "a", "100", "nx"]), none);
        assert_eq!(t.events_of(&["pexpireat", "a", "1"]), ["g del 0:a"]);
        assert_eq!(t.events_of(&["expire", "a", "100"]), none);
        assert_eq!(
            t.events_of(&["del", "a", "b", "c"]),
            ["g del 0:b", "g del 0:c"]
        );
        assert_eq!(t.events_of(&["unlink", "nokey"]), none);

        t.run(&["set", "k", "v", "px", "100"]);
        assert_eq!(t.events_of(&["persist", "k"]), ["g persist 0:k"]);
        assert_eq!(t.events_of(&["persist", "k"]), none);
        t.run(&["pexpire", "k", "100"]);
        t.advance(100);
        assert_eq!(t.events_of(&["del", "k"]), ["x expired 0:k"]);

        t.run(&["set", "src", "v"]);
        t.run(&["set", "dst", "v"]);
        assert_eq!(
            t.events_of(&["rename", "src", "dst"]),
            ["n new 0:dst", "g rename_from 0:src", "g rename_to 0:dst"]
        );
        assert_eq!(t.events_of(&["rename", "dst", "dst"]), none);
        assert_eq!(t.events_of(&["rename", "nokey", "dst"]), none);
        t.run(&["set", "src", "v"]);
        assert_eq!(t.events_of(&["renamenx", "src", "dst"]), none);
        assert_eq!(
            t.events_of(&["renamenx", "src", "fresh"]),
            [
                "n new 0:fresh",
                "g rename_from 0:src",
                "g rename_to 0:fresh"
            ]
        );

        assert_eq!(
            t.events_of(&["copy", "fresh", "c1"]),
            ["n new 0:c1", "g copy_to 0:c1"]
        );
        assert_eq!(t.events_of(&["copy", "fresh", "c1"]), none);
        assert_eq!(
            t.events_of(&["copy", "fresh", "c1", "db", "2", "replace"]),
            ["n new 2:c1", "g copy_to 2:c1"]
        );
        assert_eq!(t.events_of(&["copy", "nokey", "c1"]), ["m keymiss 0:nokey"]);

        assert_eq!(
            t.events_of(&["move", "c1", "3"]),
            ["n new 3:c1", "g move_from 0:c1", "g move_to 3:c1"]
        );
        t.run(&["set", "c1", "v"]);
        assert_eq!(t.events_of(&["move", "c1", "3"]), none);
        assert_eq!(t.events_of(&["move", "nokey", "3"]), none);

        for cmd in [
            &["exists", "nokey"][..],
            &["type", "nokey"],
            &["touch", "nokey"],
            &["pttl", "nokey"],
            &["expiretime", "nokey"],
        ] {
            assert_eq!(t.events_of(cmd), ["m keymiss 0:nokey"], "{cmd:?}");
        }
        assert_eq!(t.events_of(&["object", "idletime", "nokey"]), none);
    }
}
