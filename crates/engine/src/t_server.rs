//! Keyless commands over a shard's whole data: DBSIZE, FLUSHDB, FLUSHALL, SWAPDB, KEYS.
//! The runtime runs them on every shard and merges the replies. Also the per-shard steps of
//! SCAN and RANDOMKEY, which the runtime drives across shards itself.

use bytes::Bytes;
use shardis_resp::Reply;

use crate::command::table::Registration;
use crate::command::Merge;
use crate::error;
use crate::glob;
use crate::notify;
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

/// The optional ASYNC|SYNC argument of FLUSHDB / FLUSHALL: whether to free the data in steps
/// (without it, `lazyfree-lazy-user-flush` decides). None: a syntax error.
fn flush_lazily(ctx: &Ctx<'_>, args: &[Bytes]) -> Option<bool> {
    match args.get(1) {
        None => Some(ctx.shard.config.lazyfree_lazy_user_flush),
        Some(_) if args.len() > 2 => None,
        Some(a) if a.eq_ignore_ascii_case(b"async") => Some(true),
        Some(a) if a.eq_ignore_ascii_case(b"sync") => Some(false),
        Some(_) => None,
    }
}

/// FLUSHDB [ASYNC|SYNC]: counts one write per key removed, as Redis.
pub fn flushdb(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let Some(lazy) = flush_lazily(ctx, args) else {
        return error::syntax();
    };
    let n = ctx.db().len() as u64;
    let now = ctx.now_ms;
    ctx.shard.touch_live_watched(ctx.db, None, now);
    ctx.shard.signal_blocked_streams(ctx.db);
    ctx.shard.flush_db(ctx.db, lazy);
    ctx.dirty(n);
    ctx.shard.flushes += 1;
    Reply::Ok
}

/// FLUSHALL [ASYNC|SYNC]: counts one write per key removed, as Redis.
pub fn flushall(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let Some(lazy) = flush_lazily(ctx, args) else {
        return error::syntax();
    };
    let mut n = 0;
    let now = ctx.now_ms;
    for db in 0..ctx.shard.dbs.len() {
        ctx.shard.touch_live_watched(db, None, now);
        ctx.shard.signal_blocked_streams(db);
        n += ctx.shard.db_len(db) as u64;
        ctx.shard.flush_db(db, lazy);
    }
    ctx.dirty(n);
    ctx.shard.flushes += 1;
    Reply::Ok
}

/// SWAPDB index1 index2: swaps two databases of this shard. Clients blocked on a key of
/// either database may be served by the data swapped in.
pub fn swapdb(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    // A cluster has database 0 only.
    if ctx.shard.config.cluster {
        return Reply::err("ERR SWAPDB is not allowed in cluster mode");
    }
    let ids = parse_int(&args[1], Some("ERR invalid first DB index"))
        .and_then(|a| parse_int(&args[2], Some("ERR invalid second DB index")).map(|b| (a, b)));
    let (a, b) = match ids.and_then(|(a, b)| Ok((db_index(ctx, a)?, db_index(ctx, b)?))) {
        Ok(ab) => ab,
        Err(e) => return e,
    };
    if a != b {
        let now = ctx.now_ms;
        ctx.shard.touch_live_watched(a, Some(b), now);
        ctx.shard.touch_live_watched(b, Some(a), now);
        // Streams swapped away are gone for the clients blocked on them; keys that hold data
        // after the swap are reported below.
        ctx.shard.signal_blocked_streams(a);
        ctx.shard.signal_blocked_streams(b);
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
    let db = ctx.db();
    let found = db
        .iter()
        .filter(|(k, e)| !db.is_expired(e, now) && (all || glob::matches(pattern, k, false)))
        .map(|(k, _)| Reply::Bulk(Bytes::copy_from_slice(k)))
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
        cursor = ctx
            .db()
            .scan(cursor, |k, _| collected.push(Bytes::copy_from_slice(k)));
        if cursor == 0 || budget == 0 || collected.len() >= count {
            break;
        }
        budget -= 1;
    }
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
            None => !ctx.expire_if_needed(key),
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
    // Db::random_key gives up after a run of expired keys; Redis goes on until it finds a
    // live key or the database is empty. Every attempt reclaims what it met, so this ends.
    // The keys reclaimed are reported once the database is back in place.
    let report = notify::enabled(ctx.shard.notify_flags, notify::EXPIRED);
    let mut expired = Vec::new();
    let mut on_expired = |k: &[u8]| {
        if report {
            expired.push(Bytes::copy_from_slice(k));
        }
    };
    let key = loop {
        match db.random_key(&mut || ctx.shard.rand(), now, &mut on_expired) {
            None if !db.is_empty() => continue,
            found => break found,
        }
    };
    if let Some(slot) = ctx.shard.dbs.get_mut(idx) {
        *slot = db;
    }
    for k in expired {
        ctx.notify(notify::EXPIRED, "expired", &k);
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan;
    use crate::testing::*;
    use crate::value::Value;

    fn shard_with(n: usize) -> TestShard {
        let mut t = TestShard::new();
        for i in 0..n {
            t.run(&["set", &format!("key:{i}"), "v"]);
        }
        t
    }

    fn sorted_bulks(r: Reply) -> Vec<Bytes> {
        let Reply::Array(items) = r else {
            panic!("not an array: {r:?}");
        };
        let mut keys: Vec<Bytes> = items
            .into_iter()
            .map(|i| match i {
                Reply::Bulk(b) => b,
                other => panic!("not a bulk: {other:?}"),
            })
            .collect();
        keys.sort();
        keys
    }

    fn opts(args: &[&str]) -> ScanOptions {
        let args: Vec<Bytes> = args
            .iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect();
        scan::parse_options(&args, 0, true).expect("valid options")
    }

    /// Runs a whole SCAN over the shard's database 0; returns the keys seen (sorted, unique)
    /// and the number of calls.
    fn full_scan(t: &mut TestShard, o: &ScanOptions) -> (Vec<Bytes>, usize) {
        let mut ctx = Ctx::new(&mut t.shard, 0, t.now_ms, false);
        let mut cursor = 0;
        let mut keys = Vec::new();
        let mut calls = 0;
        loop {
            let (next, mut found) = scan_step(&mut ctx, cursor, o);
            calls += 1;
            keys.append(&mut found);
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        keys.sort();
        keys.dedup();
        (keys, calls)
    }

    #[test]
    fn dbsize_counts_keys_of_the_selected_db() {
        let mut t = shard_with(3);
        assert_eq!(t.run(&["dbsize"]), int(3));
        t.db = 1;
        assert_eq!(t.run(&["dbsize"]), int(0));
        assert_eq!(
            t.run(&["dbsize", "x"]),
            err("ERR wrong number of arguments for 'dbsize' command")
        );
    }

    #[test]
    fn flushdb_empties_only_the_selected_db() {
        let mut t = shard_with(3);
        t.db = 1;
        t.run(&["set", "other", "v"]);
        t.db = 0;
        let dirty = t.shard.dirty;
        assert_eq!(t.run(&["flushdb"]), ok());
        assert_eq!(t.shard.dirty, dirty + 3);
        assert_eq!(t.run(&["dbsize"]), int(0));
        assert_eq!(t.shard.db_len(1), 1);
        assert_eq!(t.run(&["flushdb", "ASYNC"]), ok());
        assert_eq!(t.run(&["flushdb", "sync"]), ok());
        assert_eq!(t.run(&["flushdb", "now"]), err("ERR syntax error"));
        assert_eq!(t.run(&["flushdb", "sync", "x"]), err("ERR syntax error"));
    }

    #[test]
    fn flushall_empties_every_db() {
        let mut t = shard_with(2);
        t.db = 5;
        t.run(&["set", "other", "v"]);
        t.run(&["expire", "other", "100"]);
        let dirty = t.shard.dirty;
        assert_eq!(t.run(&["flushall"]), ok());
        assert_eq!(t.shard.dirty, dirty + 3);
        assert!(t
            .shard
            .dbs
            .iter()
            .all(|d| d.is_empty() && d.volatile_len() == 0));
        assert_eq!(t.run(&["flushall", "async"]), ok());
        assert_eq!(t.run(&["FLUSHALL", "SYNC"]), ok());
        assert_eq!(t.run(&["flushall", "x"]), err("ERR syntax error"));
        // Every flush is counted (client-side caches drop every key), even of nothing; a
        // refused one is not.
        assert_eq!(t.shard.flushes, 3);
        assert_eq!(t.run(&["flushdb"]), ok());
        assert_eq!(t.shard.flushes, 4);
    }

    #[test]
    fn swapdb_swaps_two_databases() {
        let mut t = TestShard::new();
        t.run(&["set", "a", "zero"]);
        t.db = 1;
        t.run(&["set", "a", "one"]);
        t.run(&["set", "b", "one"]);
        t.run(&["expire", "b", "100"]);
        let dirty = t.shard.dirty;
        assert_eq!(t.run(&["swapdb", "0", "1"]), ok());
        assert_eq!(t.shard.dirty, dirty + 1);
        assert_eq!(t.run(&["get", "a"]), bulk("zero"));
        assert_eq!(t.run(&["dbsize"]), int(1));
        t.db = 0;
        assert_eq!(t.run(&["get", "a"]), bulk("one"));
        assert_eq!(t.run(&["ttl", "b"]), int(100));
        assert_eq!(t.run(&["swapdb", "3", "3"]), ok());
        assert_eq!(t.run(&["dbsize"]), int(2));
    }

    #[test]
    fn swapdb_errors() {
        let mut t = TestShard::new();
        assert_eq!(
            t.run(&["swapdb", "x", "1"]),
            err("ERR invalid first DB index")
        );
        assert_eq!(
            t.run(&["swapdb", "0", "x"]),
            err("ERR invalid second DB index")
        );
        assert_eq!(
            t.run(&["swapdb", "2147483648", "x"]),
            err("ERR invalid first DB index")
        );
        assert_eq!(
            t.run(&["swapdb", "0", "-2147483649"]),
            err("ERR invalid second DB index")
        );
        assert_eq!(
            t.run(&["swapdb", "0", "16"]),
            err("ERR DB index is out of range")
        );
        assert_eq!(
            t.run(&["swapdb", "-1", "0"]),
            err("ERR DB index is out of range")
        );
        assert_eq!(
            t.run(&["swapdb", "0"]),
            err("ERR wrong number of arguments for 'swapdb' command")
        );
    }

    #[test]
    fn swapdb_wakes_clients_blocked_on_keys_swapped_in() {
        let mut t = TestShard::new();
        t.shard.dbs[1].set(b"k", Value::List(Default::default()), 0, false);
        t.shard.blocked_keys.insert((9, Bytes::from("k")));
        t.shard.blocked_keys.insert((9, Bytes::from("absent")));
        t.shard.blocked_keys.insert((3, Bytes::from("k")));
        assert_eq!(t.run(&["swapdb", "1", "9"]), ok());
        assert_eq!(t.shard.ready_keys, vec![(9, Bytes::from("k"))]);
    }

    #[test]
    fn keys_star_lists_live_keys() {
        let mut t = shard_with(3);
        t.run(&["pexpire", "key:0", "10"]);
        t.advance(10);
        assert_eq!(
            sorted_bulks(t.run(&["keys", "*"])),
            vec![Bytes::from("key:1"), Bytes::from("key:2")]
        );
        // KEYS skips an expired key without reclaiming it.
        assert_eq!(t.run(&["dbsize"]), int(3));
        t.db = 1;
        assert_eq!(t.run(&["keys", "*"]), arr(vec![]));
    }

    // Needs `crate::glob` (another helper's module; a stub in this branch).
    #[test]
    fn keys_with_pattern() {
        let mut t = TestShard::new();
        for key in ["key_x", "key_y", "key_z", "foo_a", "foo_b", "foo_c"] {
            t.run(&["set", key, "hello"]);
        }
        assert_eq!(
            sorted_bulks(t.run(&["keys", "foo*"])),
            vec![
                Bytes::from("foo_a"),
                Bytes::from("foo_b"),
                Bytes::from("foo_c")
            ]
        );
        t.run(&["flushdb"]);
        t.run(&["set", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "1"]);
        assert_eq!(
            t.run(&["keys", "a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b"]),
            arr(vec![])
        );
    }

    #[test]
    fn scan_visits_every_key() {
        let mut t = shard_with(1000);
        let (keys, _) = full_scan(&mut t, &opts(&[]));
        assert_eq!(keys.len(), 1000);
        let (keys, calls) = full_scan(&mut t, &opts(&["count", "5"]));
        assert_eq!(keys.len(), 1000);
        let (_, fewer_calls) = full_scan(&mut t, &opts(&["count", "100"]));
        assert!(fewer_calls < calls);
        let mut ctx = Ctx::new(&mut t.shard, 0, t.now_ms, false);
        let (_, found) = scan_step(&mut ctx, 0, &opts(&["count", "1000000000000"]));
        assert_eq!(found.len(), 1000);
    }

    #[test]
    fn scan_of_an_empty_db_completes_at_once() {
        let mut t = TestShard::new();
        let mut ctx = Ctx::new(&mut t.shard, 0, t.now_ms, false);
        assert_eq!(scan_step(&mut ctx, 0, &opts(&[])), (0, vec![]));
    }

    #[test]
    fn scan_type_filter() {
        let mut t = shard_with(100);
        t.shard.dbs[0].set(b"l", Value::List(Default::default()), 0, false);
        let (keys, _) = full_scan(&mut t, &opts(&["type", "list"]));
        assert_eq!(keys, vec![Bytes::from("l")]);
        let (keys, _) = full_scan(&mut t, &opts(&["type", "STRING"]));
        assert_eq!(keys.len(), 100);
        let (keys, _) = full_scan(&mut t, &opts(&["type", "nosuchtype"]));
        assert!(keys.is_empty());
        // Each type check is a keyspace read.
        assert!(t.shard.stats.keyspace_hits >= 303);
    }

    // Reclaiming keys between calls must not make SCAN miss live ones: this relies on the
    // chained table's reverse-binary cursor (`dict.rs`).
    #[test]
    fn scan_skips_and_reclaims_expired_keys() {
        let mut t = shard_with(50);
        for i in 0..10 {
            t.run(&["pexpire", &format!("key:{i}"), "5"]);
        }
        t.advance(5);
        let (keys, _) = full_scan(&mut t, &opts(&[]));
        assert_eq!(keys.len(), 40);
        assert_eq!(t.shard.db_len(0), 40);
        for i in 10..20 {
            t.run(&["pexpire", &format!("key:{i}"), "5"]);
        }
        t.advance(5);
        let (keys, _) = full_scan(&mut t, &opts(&["type", "string"]));
        assert_eq!(keys.len(), 30);
        assert_eq!(t.shard.db_len(0), 30);
    }

    // Needs `crate::glob` (another helper's module; a stub in this branch).
    #[test]
    fn scan_match_filter() {
        let mut t = shard_with(1000);
        let (keys, _) = full_scan(&mut t, &opts(&["match", "key:1??"]));
        assert_eq!(keys.len(), 100);
        let (keys, _) = full_scan(
            &mut t,
            &opts(&["type", "string", "match", "key:*", "count", "10"]),
        );
        assert_eq!(keys.len(), 1000);
    }

    #[test]
    fn random_key_returns_live_keys() {
        let mut t = TestShard::new();
        let mut ctx = Ctx::new(&mut t.shard, 0, t.now_ms, false);
        assert_eq!(random_key(&mut ctx), None);
        t.run(&["set", "foo", "x"]);
        t.run(&["set", "bar", "y"]);
        let mut ctx = Ctx::new(&mut t.shard, 0, t.now_ms, false);
        let mut seen = Vec::new();
        for _ in 0..100 {
            if let Some(k) = random_key(&mut ctx) {
                if !seen.contains(&k) {
                    seen.push(k);
                }
            }
        }
        seen.sort();
        assert_eq!(seen, vec![Bytes::from("bar"), Bytes::from("foo")]);
        t.run(&["del", "foo", "bar"]);
        let mut ctx = Ctx::new(&mut t.shard, 0, t.now_ms, false);
        assert_eq!(random_key(&mut ctx), None);
    }

    #[test]
    fn random_key_reclaims_expired_keys() {
        let mut t = TestShard::new();
        t.run(&["set", "foo1", "bar"]);
        t.run(&["set", "foo2", "bar"]);
        t.run(&["pexpire", "foo1", "1"]);
        t.run(&["pexpire", "foo2", "1"]);
        t.advance(2);
        let mut ctx = Ctx::new(&mut t.shard, 0, t.now_ms, false);
        assert_eq!(random_key(&mut ctx), None);
        assert_eq!(t.shard.db_len(0), 0);
        t.run(&["set", "live", "v"]);
        t.run(&["set", "dead", "v"]);
        t.run(&["pexpire", "dead", "1"]);
        t.advance(1);
        let mut ctx = Ctx::new(&mut t.shard, 0, t.now_ms, false);
        for _ in 0..10 {
            assert_eq!(random_key(&mut ctx), Some(Bytes::from("live")));
        }
        // Even when expired keys far outnumber the live one.
        for i in 0..1000 {
            t.run(&["set", &format!("dead:{i}"), "v"]);
            t.run(&["pexpire", &format!("dead:{i}"), "1"]);
        }
        t.advance(1);
        let mut ctx = Ctx::new(&mut t.shard, 0, t.now_ms, false);
        assert_eq!(random_key(&mut ctx), Some(Bytes::from("live")));
    }
}
