//! DUMP and RESTORE: a key's value in Redis 7.0's serialisation (an RDB value, the RDB
//! version, a CRC64), so values move between Shardis and Redis in both directions.

use bytes::Bytes;
use shardis_persist::dump;
use shardis_resp::Reply;

use crate::command::table::Registration;
use crate::notify::GENERIC;
use crate::shard::Ctx;
use crate::{error, num, rdb};

pub static COMMANDS: &[Registration] = &[
    Registration::shard("dump", dump),
    Registration::shard("restore", restore),
    // MIGRATE's form of RESTORE: its `asking` flag lets it into a slot being imported.
    Registration::shard("restore-asking", restore),
];

/// DUMP key
pub fn dump(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match ctx.lookup_read(&args[1]) {
        None => Reply::Nil,
        Some(v) => Reply::Bulk(Bytes::from(dump::seal(rdb::serialize(v, true)))),
    }
}

/// What MIGRATE sends of `key`: its DUMP payload and its time to live in ms (0: none, at
/// least 1 otherwise), None when the key does not exist (as Redis's `lookupKeyRead`).
pub fn migrate_payload(ctx: &mut Ctx<'_>, key: &[u8]) -> Option<(Bytes, u64)> {
    let now = ctx.now_ms;
    let payload = Bytes::from(dump::seal(rdb::serialize(ctx.lookup_read(key)?, true)));
    let ttl = ctx
        .db()
        .expire_at(key)
        .map_or(0, |at| at.saturating_sub(now).max(1));
    Some((payload, ttl))
}

/// MIGRATE's keys (Redis's `migrateGetKeys`): the key argument, or everything after KEYS
/// (nothing when KEYS comes with a non-empty key argument: the command refuses it).
pub fn migrate_keys(args: &[Bytes], out: &mut Vec<usize>) {
    let keys_at = args
        .iter()
        .enumerate()
        .skip(6)
        .find(|(_, a)| a.eq_ignore_ascii_case(b"keys"))
        .map(|(i, _)| i);
    match keys_at {
        Some(_) if args.get(3).is_some_and(|k| !k.is_empty()) => {}
        Some(i) => out.extend(i + 1..args.len()),
        None if args.len() > 3 => out.push(3),
        None => {}
    }
}

/// MIGRATE: the passwords of AUTH and AUTH2 (and AUTH2's user name), which the slow log hides.
pub fn redact_migrate(args: &[Bytes], out: &mut Vec<usize>) {
    let mut j = 6;
    while j < args.len() {
        let a = &args[j];
        if a.eq_ignore_ascii_case(b"keys") {
            return;
        }
        if a.eq_ignore_ascii_case(b"auth") {
            out.extend((j + 1..j + 2).filter(|&i| i < args.len()));
            j += 1;
        } else if a.eq_ignore_ascii_case(b"auth2") {
            out.extend((j + 1..j + 3).filter(|&i| i < args.len()));
            j += 2;
        }
        j += 1;
    }
}

/// RESTORE's options.
#[derive(Default)]
struct RestoreOptions {
    replace: bool,
    absttl: bool,
    idle_secs: Option<i64>,
    freq: Option<i64>,
}

fn restore_options(args: &[Bytes]) -> Result<RestoreOptions, Reply> {
    let mut o = RestoreOptions::default();
    let mut j = 4;
    while j < args.len() {
        let a = &args[j];
        let more = args.len() - j - 1;
        if a.eq_ignore_ascii_case(b"replace") {
            o.replace = true;
        } else if a.eq_ignore_ascii_case(b"absttl") {
            o.absttl = true;
        } else if a.eq_ignore_ascii_case(b"idletime") && more >= 1 && o.freq.is_none() {
            let idle = num::parse_i64(&args[j + 1]).ok_or_else(error::not_integer)?;
            if idle < 0 {
                return Err(Reply::err("ERR Invalid IDLETIME value, must be >= 0"));
            }
            o.idle_secs = Some(idle);
            j += 1;
        } else if a.eq_ignore_ascii_case(b"freq") && more >= 1 && o.idle_secs.is_none() {
            let freq = num::parse_i64(&args[j + 1]).ok_or_else(error::not_integer)?;
            if !(0..=255).contains(&freq) {
                return Err(Reply::err(
                    "ERR Invalid FREQ value, must be >= 0 and <= 255",
                ));
            }
            o.freq = Some(freq);
            j += 1;
        } else {
            return Err(error::syntax());
        }
        j += 1;
    }
    Ok(o)
}

/// RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]
///
/// As in Redis, FREQ sets the key's LFU counter under an LFU policy and IDLETIME its idle
/// time under the others; the other one has no effect.
pub fn restore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let o = match restore_options(args) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let key = &args[1];
    if !o.replace && ctx.exists(key) {
        return Reply::err("BUSYKEY Target key name already exists.");
    }
    let Some(ttl) = num::parse_i64(&args[2]) else {
        return error::not_integer();
    };
    if ttl < 0 {
        return Reply::err("ERR Invalid TTL value, must be >= 0");
    }
    let Some(payload) = dump::open(&args[3]) else {
        return Reply::err("ERR DUMP payload version or checksum are wrong");
    };
    let Ok(value) = rdb::deserialize(payload, &ctx.shard.config) else {
        return Reply::err("ERR Bad data format");
    };
    let mut deleted = false;
    if o.replace {
        ctx.expire_if_needed(key);
        deleted = ctx.remove_entry(key).is_some();
    }
    let now = i64::try_from(ctx.now_ms).unwrap_or(i64::MAX);
    let at = if ttl != 0 && !o.absttl {
        ttl.saturating_add(now)
    } else {
        ttl
    };
    // An expiry already past: the key is not created (and a replaced one is gone).
    if at != 0 && at <= now {
        if deleted {
            ctx.notify(GENERIC, "del", key);
            ctx.dirty(1);
            ctx.propagate_as(|| vec![Bytes::from_static(b"DEL"), key.clone()]);
        }
        return Reply::Ok;
    }
    ctx.set(key, value);
    if at != 0 {
        ctx.db().set_expire(key, at as u64);
        // A relative TTL is logged (and replicated) as absolute, as Redis 7.0 propagates it.
        if !o.absttl {
            ctx.propagate_as(|| {
                let mut argv = args.to_vec();
                argv[2] = Bytes::from(at.to_string());
                argv.push(Bytes::from_static(b"ABSTTL"));
                argv
            });
        }
    }
    let (tracking, now) = (ctx.shard.config.tracking, ctx.now_ms);
    let lru = if tracking.policy.is_lfu() {
        o.freq
            .map(|f| crate::evict::lfu_field(now, f.clamp(0, 255) as u8))
    } else {
        o.idle_secs
            .map(|idle| crate::evict::Tracking::idle_since(now, idle))
    };
    if let Some(lru) = lru {
        if let Some(e) = ctx.db().get_mut(key, 0) {
            e.set_lru(lru);
        }
    }
    ctx.notify(GENERIC, "restore", key);
    Reply::Ok
}

#[cfg(test)]
mod tests {
    use crate::testing::*;
    use shardis_resp::Reply;

    fn dumped(t: &mut TestShard, key: &str) -> bytes::Bytes {
        match t.run(&["DUMP", key]) {
            Reply::Bulk(b) => b,
            other => panic!("{other:?}"),
        }
    }

    fn restore(t: &mut TestShard, args: &[&[u8]]) -> Reply {
        let args: Vec<bytes::Bytes> = args
            .iter()
            .map(|a| bytes::Bytes::copy_from_slice(a))
            .collect();
        t.run_bytes(&args)
    }

    #[test]
    fn dump_and_restore_a_string() {
        let mut t = TestShard::new();
        t.run(&["SET", "foo", "bar"]);
        let payload = dumped(&mut t, "foo");
        // Redis 7.0's payload for "bar", byte for byte.
        assert_eq!(&payload[..7], b"\x00\x03bar\n\x00");
        t.run(&["DEL", "foo"]);
        assert_eq!(restore(&mut t, &[b"RESTORE", b"foo", b"0", &payload]), ok());
        assert_eq!(t.run(&["GET", "foo"]), bulk("bar"));
        assert_eq!(t.run(&["TTL", "foo"]), int(-1));
        assert_eq!(t.run(&["DUMP", "nosuch"]), Reply::Nil);
    }

    #[test]
    fn restore_errors_are_redis_errors() {
        let mut t = TestShard::new();
        t.run(&["SET", "foo", "bar"]);
        let payload = dumped(&mut t, "foo");
        assert_eq!(
            restore(&mut t, &[b"RESTORE", b"foo", b"0", &payload]),
            err("BUSYKEY Target key name already exists.")
        );
        assert_eq!(
            restore(&mut t, &[b"RESTORE", b"new", b"0", b"..."]),
            err("ERR DUMP payload version or checksum are wrong")
        );
        assert_eq!(
            restore(&mut t, &[b"RESTORE", b"new", b"-1", &payload]),
            err("ERR Invalid TTL value, must be >= 0")
        );
        assert_eq!(
            restore(&mut t, &[b"RESTORE", b"new", b"x", &payload]),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(
            restore(
                &mut t,
                &[b"RESTORE", b"new", b"0", &payload, b"invalid-option"]
            ),
            err("ERR syntax error")
        );
        assert_eq!(
            restore(
                &mut t,
                &[b"RESTORE", b"new", b"0", &payload, b"IDLETIME", b"-1"]
            ),
            err("ERR Invalid IDLETIME value, must be >= 0")
        );
        assert_eq!(
            restore(
                &mut t,
                &[b"RESTORE", b"new", b"0", &payload, b"FREQ", b"256"]
            ),
            err("ERR Invalid FREQ value, must be >= 0 and <= 255")
        );
        // IDLETIME and FREQ exclude each other.
        assert_eq!(
            restore(
                &mut t,
                &[
                    b"RESTORE",
                    b"new",
                    b"0",
                    &payload,
                    b"IDLETIME",
                    b"1",
                    b"FREQ",
                    b"1"
                ]
            ),
            err("ERR syntax error")
        );
        // A valid checksum over a value that does not parse.
        let bad = shardis_persist::dump::seal(vec![0, 0x81]);
        assert_eq!(
            restore(&mut t, &[b"RESTORE", b"new", b"0", &bad]),
            err("ERR Bad data format")
        );
        let empty_list = shardis_persist::dump::seal(vec![1, 0]);
        assert_eq!(
            restore(&mut t, &[b"RESTORE", b"new", b"0", &empty_list]),
            err("ERR Bad data format")
        );
    }

    #[test]
    fn replace_ttl_absttl_and_idletime() {
        let mut t = TestShard::new();
        t.run(&["SET", "foo", "bar1"]);
        let one = dumped(&mut t, "foo");
        t.run(&["SET", "foo", "bar2"]);
        assert_eq!(
            restore(&mut t, &[b"RESTORE", b"foo", b"5000", &one, b"REPLACE"]),
            ok()
        );
        assert_eq!(t.run(&["GET", "foo"]), bulk("bar1"));
        assert_eq!(t.run(&["PTTL", "foo"]), int(5000));
        let now = t.now_ms;
        let at = (now + 3000).to_string();
        assert_eq!(
            restore(
                &mut t,
                &[
                    b"RESTORE",
                    b"foo",
                    at.as_bytes(),
                    &one,
                    b"REPLACE",
                    b"ABSTTL"
                ]
            ),
            ok()
        );
        assert_eq!(t.run(&["PTTL", "foo"]), int(3000));
        // In the past: the replaced key is deleted and nothing is created.
        let past = (now - 1).to_string();
        assert_eq!(
            restore(
                &mut t,
                &[
                    b"RESTORE",
                    b"foo",
                    past.as_bytes(),
                    &one,
                    b"ABSTTL",
                    b"REPLACE"
                ]
            ),
            ok()
        );
        assert_eq!(t.run(&["EXISTS", "foo"]), int(0));
        t.advance(2_000_000);
        assert_eq!(
            restore(
                &mut t,
                &[b"RESTORE", b"foo", b"0", &one, b"IDLETIME", b"1000"]
            ),
            ok()
        );
        assert_eq!(t.run(&["OBJECT", "IDLETIME", "foo"]), int(1000));
        assert_eq!(
            restore(&mut t, &[b"RESTORE", b"big", b"2569591501", &one]),
            ok()
        );
        assert_eq!(t.run(&["PTTL", "big"]), int(2569591501));
    }

    #[test]
    fn every_type_survives_dump_and_restore() {
        let mut t = TestShard::new();
        t.run(&["RPUSH", "l", "a", "1", "b"]);
        t.run(&["SADD", "s", "1", "2"]);
        t.run(&["ZADD", "z", "1", "a", "2", "b"]);
        t.run(&["HSET", "h", "f", "v"]);
        t.run(&["XADD", "x", "1-1", "f", "v"]);
        for key in ["l", "s", "z", "h", "x"] {
            let payload = dumped(&mut t, key);
            let copy = format!("{key}-copy");
            assert_eq!(
                restore(&mut t, &[b"RESTORE", copy.as_bytes(), b"0", &payload]),
                ok()
            );
            assert_eq!(dumped(&mut t, &copy), payload, "{key}");
        }
    }

    #[test]
    fn migrate_finds_its_keys_and_hides_its_passwords_as_redis() {
        let args = |v: &[&str]| {
            v.iter()
                .map(|a| bytes::Bytes::copy_from_slice(a.as_bytes()))
                .collect::<Vec<_>>()
        };
        let keys = |v: &[&str]| {
            let mut out = Vec::new();
            super::migrate_keys(&args(v), &mut out);
            out
        };
        assert_eq!(keys(&["migrate", "h", "1", "k", "0", "0"]), [3]);
        assert_eq!(
            keys(&["migrate", "h", "1", "", "0", "0", "copy", "keys", "a", "b"]),
            [8, 9]
        );
        assert!(keys(&["migrate", "h", "1", "k", "0", "0", "keys", "a"]).is_empty());
        let mut hidden = Vec::new();
        super::redact_migrate(
            &args(&[
                "migrate", "h", "1", "", "0", "0", "auth", "p", "auth2", "u", "q", "keys", "auth",
            ]),
            &mut hidden,
        );
        assert_eq!(hidden, [7, 9, 10]);
    }

    #[test]
    fn a_migrate_payload_restores_with_its_ttl() {
        let mut t = TestShard::new();
        t.run(&["SET", "k", "v"]);
        t.run(&["PEXPIRE", "k", "5000"]);
        let mut ctx = crate::shard::Ctx::new(&mut t.shard, 0, t.now_ms, false);
        let (payload, ttl) = super::migrate_payload(&mut ctx, b"k").expect("the key exists");
        assert!(super::migrate_payload(&mut ctx, b"nokey").is_none());
        assert_eq!(ttl, 5000);
        assert_eq!(payload, dumped(&mut t, "k"));
    }
}
