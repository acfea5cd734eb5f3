//! Keyless commands over a shard's whole data: DBSIZE, FLUSHDB, FLUSHALL, SWAPDB, KEYS.
//! The runtime runs them on every shard and merges the replies. Also the per-shard steps of
//! SCAN and RANDOMKEY, which the runtime drives across shards itself.

use bytes::Bytes;
use shardis_resp::Reply;

use crate::command::table::Registration;
use crate::command::Merge;
use crate::error;
use crate::glob;
use crate::scan::ScanOptions;
use crate::shard::Ctx;
use crate::t_keys::{db_index, parse_int, signal_ready_in};

pub static COMMANDS: &[Registration] = &[
    Registration::all_shards("dbsize", dbsize, Merge::SumInt),
    Registration::all_shards("flushdb", flushdb, Merge::Ok),
    Registration::all_shards("flushall", flushall, Merge::Ok),
    Registration::all_shards("swapdb", swapdb, Merge::Ok),
    Registration::all_shards("keys", keys, Merge::Concat),
];

/// DBSIZE (expired keys not yet reclaimed included, as in Redis)
pub fn dbsize(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Reply {
    Reply::Int(ctx.db().len() as i64)
}

/// Checks the optional ASYNC|SYNC argument of FLUSHDB / FLUSHALL.
fn flush_mode_ok(args: &[Bytes]) -> bool {
    match args.len() {
        1 => true,
        2 => args[1].eq_ignore_ascii_case(b"async") || args[1].eq_ignore_ascii_case(b"sync"),
        _ => false,
    }
}

/// FLUSHDB [ASYNC|SYNC]: counts one write per key removed, as Redis.
pub fn flushdb(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if !flush_mode_ok(args) {
        return error::syntax();
    }
    let n = ctx.db().len() as u64;
    ctx.db().clear();
    ctx.dirty(n);
    Reply::Ok
}

/// FLUSHALL [ASYNC|SYNC]: counts one write per key removed, as Redis.
pub fn flushall(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if !flush_mode_ok(args) {
        return error::syntax();
    }
    let mut n = 0;
    for db in &mut ctx.shard.dbs {
        n += db.len() as u64;
        db.clear();
    }
    ctx.dirty(n);
    Reply::Ok
}

/// SWAPDB index1 index2: swaps two databases of this shard. Clients blocked on a key of
/// either database may be served by the data swapped in.
pub fn swapdb(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let ids = parse_int(&args[1], Some("ERR invalid first DB index"))
        .and_then(|a| parse_int(&args[2], Some("ERR invalid second DB index")).map(|b| (a, b)));
    let (a, b) = match ids.and_then(|(a, b)| Ok((db_index(ctx, a)?, db_index(ctx, b)?))) {
        Ok(ab) => ab,
        Err(e) => return e,
    };
    if a != b {
        ctx.shard.dbs.swap(a, b);
        let dbs = &ctx.shard.dbs;
        let ready: Vec<(usize, Bytes)> = ctx
            .shard
            .blocked_keys
            .iter()
            .filter(|(db, key)| {
                (*db == a || *db == b) && dbs.get(*db).is_some_and(|d| d.peek(key).is_some())
            })
            .cloned()
            .collect();
        for (db, key) in ready {
            signal_ready_in(ctx, db, &key);
        }
    }
    ctx.dirty(1);
    Reply::Ok
}

/// KEYS pattern: the live keys matching `pattern`. Expired keys are skipped, not reclaimed.
pub fn keys(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let pattern = &args[1];
    let all = &pattern[..] == b"*";
    let now = ctx.now_ms;
    let found = ctx
        .db()
        .iter()
        .filter(|(k, e)| !e.is_expired(now) && (all || glob::matches(pattern, k, false)))
        .map(|(k, _)| Reply::Bulk(k.clone()))
        .collect();
    Reply::Array(found)
}

/// One SCAN call over this shard's selected database, as Redis's loop: visit buckets until
/// `count` keys were collected, the scan completed, or ten times `count` buckets were visited;
/// then drop the keys that fail MATCH or TYPE, and the expired ones (reclaiming them).
/// Returns the next cursor (0 when done) and the keys.
pub fn scan_step(ctx: &mut Ctx<'_>, cursor: u64, opts: &ScanOptions) -> (u64, Vec<Bytes>) {
    let count = opts.count.max(1);
    let mut budget = count.saturating_mul(10);
    let mut collected = Vec::new();
    let mut cursor = cursor;
    loop {
        cursor = ctx.db().scan(cursor, |k, _| collected.push(k.clone()));
        if cursor == 0 || budget == 0 || collected.len() >= count {
            break;
        }
        budget -= 1;
    }
    let now = ctx.now_ms;
    collected.retain(|key| {
        if !opts.matches(key) {
            return false;
        }
        match &opts.type_name {
            // The type check is a read that counts a hit or a miss, and reclaims an
            // expired key (which then matches no type).
            Some(t) => ctx
                .lookup_read_notouch(key)
                .is_some_and(|e| t.eq_ignore_ascii_case(e.value.type_name().as_bytes())),
            None => !ctx.db().expire_if_needed(key, now),
        }
    });
    (cursor, collected)
}

/// A random live key of this shard's selected database (RANDOMKEY), reclaiming expired keys
/// it meets; None when there is none.
pub fn random_key(ctx: &mut Ctx<'_>) -> Option<Bytes> {
    let idx = ctx.db.min(ctx.shard.dbs.len().checked_sub(1)?);
    let now = ctx.now_ms;
    // The database is taken out so the shard's random source can be borrowed alongside it.
    let mut db = ctx.shard.dbs.get_mut(idx)?.take();
    let key = db.random_key(&mut || ctx.shard.rand(), now);
    if let Some(slot) = ctx.shard.dbs.get_mut(idx) {
        *slot = db;
    }
    key
}
