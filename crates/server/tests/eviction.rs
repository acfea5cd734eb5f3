//! `maxmemory` end to end, with two shards: every policy under a write load several times the
//! limit, the OOM refusals of `noeviction` (single commands, commands over several shards,
//! transactions), an uneven key distribution, and what LRU and LFU keep.

mod common;

use common::Server;
use redis::Commands;

const MAXMEMORY: u64 = 8 << 20;
const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

fn info(c: &mut redis::Connection, section: &str) -> String {
    redis::cmd("INFO").arg(section).query(c).expect("info")
}

fn field(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in INFO"))
}

/// The memory INFO reports against the limit: `used_memory` less what Redis (and Shardis)
/// do not count for eviction (here, values being freed in steps).
fn counted(c: &mut redis::Connection) -> (u64, u64) {
    let m = info(c, "memory");
    (
        field(&m, "used_memory") - field(&m, "mem_not_counted_for_evict"),
        field(&m, "used_memory_rss"),
    )
}

fn start(policy: &str, extra: &[&str]) -> Server {
    let mut args = vec!["--maxmemory", "8mb", "--maxmemory-policy", policy];
    args.extend_from_slice(extra);
    Server::start(2, &args)
}

/// Writes `n` keys of `size` bytes in pipelines of 500 (every `ttl_every`th one with a TTL),
/// checking after each pipeline that the server holds its limit. Returns the errors seen.
fn write_load(
    c: &mut redis::Connection,
    prefix: &str,
    n: usize,
    size: usize,
    ttl_every: usize,
    rss_cap: u64,
) -> Vec<String> {
    let value = "x".repeat(size);
    let mut errors = Vec::new();
    let mut peak = 0;
    for start in (0..n).step_by(500) {
        let mut pipe = redis::pipe();
        for i in start..(start + 500).min(n) {
            let key = format!("{prefix}:{i}");
            if i % ttl_every == 0 {
                pipe.cmd("SET").arg(&key).arg(&value).arg("EX").arg(100_000);
            } else {
                pipe.cmd("SET").arg(&key).arg(&value);
            }
        }
        // A pipeline with error replies fails as a whole, listing them.
        if let Err(e) = pipe.query::<()>(c) {
            let text = e.to_string();
            let all = text.matches("error: ").count().max(1);
            let oom = text
                .matches("error: \"OOM\": command not allowed when used memory > 'maxmemory'.")
                .count();
            errors.extend(std::iter::repeat_n(OOM.to_string(), oom));
            if oom < all {
                errors.push(text.chars().take(300).collect());
            }
        }
        let (used, rss) = counted(c);
        peak = peak.max(used);
        assert!(
            used <= MAXMEMORY + MAXMEMORY / 10,
            "{prefix}: used {used} over maxmemory {MAXMEMORY} by more than 10%"
        );
        assert!(rss <= rss_cap, "{prefix}: RSS {rss} above {rss_cap}");
    }
    assert!(
        peak > MAXMEMORY / 2,
        "{prefix}: the load never came near the limit ({peak})"
    );
    errors
}

/// The RSS a server may reach: its idle RSS plus a few times the limit (allocator slack,
/// freed pages not yet returned).
fn rss_cap(c: &mut redis::Connection) -> u64 {
    counted(c).1 + 4 * MAXMEMORY
}

#[test]
fn every_eviction_policy_holds_the_limit_under_a_write_load() {
    for policy in [
        "allkeys-lru",
        "allkeys-lfu",
        "allkeys-random",
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    ] {
        let server = start(policy, &[]);
        let mut c = server.conn();
        let cap = rss_cap(&mut c);
        // Keys without a TTL, which the volatile policies must never evict.
        for i in 0..200 {
            let _: () = c.set(format!("keep:{i}"), "v").expect("set");
        }
        // About four times the limit (a 400-byte value costs about 500 bytes); under the
        // volatile policies every key has a TTL, else every other one.
        let ttl_every = if policy.starts_with("volatile") { 1 } else { 2 };
        let errors = write_load(&mut c, policy, 70_000, 400, ttl_every, cap);
        assert!(errors.is_empty(), "{policy}: {:?}", errors.first());
        let stats = info(&mut c, "stats");
        assert!(field(&stats, "evicted_keys") > 10_000, "{policy}: {stats}");
        assert_eq!(field(&stats, "evicted_clients"), 0);
        if policy.starts_with("volatile") {
            for i in 0..200 {
                let v: Option<String> = c.get(format!("keep:{i}")).expect("get");
                assert_eq!(v.as_deref(), Some("v"), "{policy} evicted keep:{i}");
            }
        }
        // Reads keep working and the most recent writes are there.
        let last: Option<String> = c.get(format!("{policy}:69999")).expect("get");
        assert!(last.is_some(), "{policy}: the last key written was evicted");
        let m = info(&mut c, "memory");
        assert_eq!(field(&m, "maxmemory"), MAXMEMORY);
        assert!(m.contains(&format!("maxmemory_policy:{policy}")));
        assert!(m.contains("maxmemory_human:8.00M"));
    }
}

#[test]
fn noeviction_refuses_writes_with_redis_error_and_serves_reads() {
    let server = start("noeviction", &[]);
    let mut c = server.conn();
    let cap = rss_cap(&mut c);
    let errors = write_load(&mut c, "k", 40_000, 400, 2, cap);
    assert!(!errors.is_empty(), "the limit was never reached");
    assert!(
        errors.iter().all(|e| e == OOM),
        "{:?}",
        errors.iter().find(|e| *e != OOM)
    );
    assert_eq!(field(&info(&mut c, "stats"), "evicted_keys"), 0);
    // Once the pipelines' buffers are gone there is a little room again: fill it one write
    // at a time until every shard refuses.
    let mut refused_in_a_row = 0;
    for i in 0..100_000 {
        match c.set::<_, _, ()>(format!("tail:{i}"), "x".repeat(400)) {
            Ok(()) => refused_in_a_row = 0,
            Err(e) => {
                assert_eq!(e.code(), Some("OOM"));
                refused_in_a_row += 1;
                if refused_in_a_row == 40 {
                    break;
                }
            }
        }
    }
    assert_eq!(refused_in_a_row, 40);
    // Reads work.
    let v: Option<String> = c.get("k:1").expect("get");
    assert!(v.is_some());
    // Shares move as shards free a little here and there, so a small write can still find
    // room; with the limit at one byte, as Redis's own tests do, every shard is full.
    let mut admin = server.conn();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("1")
        .query(&mut admin)
        .expect("config set");
    // DENYOOM writes are refused on every shard, with Redis's exact error.
    let mut raw = server.raw();
    for key in ["a", "b", "c", "d"] {
        let cmd = format!("*3\r\n$3\r\nSET\r\n$1\r\n{key}\r\n$1\r\nv\r\n");
        let want = format!("-{OOM}\r\n");
        let got = common::roundtrip(&mut raw, cmd.as_bytes(), want.len());
        assert_eq!(String::from_utf8_lossy(&got), want, "{key}");
    }
    // Several shards at once: refused as a whole, nothing written.
    let e = redis::cmd("MSET")
        .arg("m1")
        .arg("1")
        .arg("m2")
        .arg("2")
        .arg("m3")
        .arg("3")
        .query::<()>(&mut c)
        .expect_err("refused");
    assert!(e
        .to_string()
        .contains("command not allowed when used memory"));
    let n: i64 = redis::cmd("EXISTS")
        .arg("m1")
        .arg("m2")
        .arg("m3")
        .query(&mut c)
        .expect("exists");
    assert_eq!(n, 0);
    // A transaction with a write is discarded at EXEC; queuing anything is refused.
    let raw = redis::cmd("MULTI").query::<()>(&mut c);
    assert!(raw.is_ok());
    let queued = redis::cmd("GET").arg("k:1").query::<redis::Value>(&mut c);
    assert!(queued.is_err(), "queuing is refused while out of memory");
    let e = redis::cmd("EXEC")
        .query::<redis::Value>(&mut c)
        .expect_err("aborted");
    assert_eq!(e.code(), Some("EXECABORT"), "{e}");
    // A DEL (not DENYOOM) frees room and writes pass again.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("8mb")
        .query(&mut admin)
        .expect("config set");
    let mut pipe = redis::pipe();
    for i in 0..40_000 {
        pipe.cmd("DEL").arg(format!("k:{i}")).ignore();
        pipe.cmd("DEL").arg(format!("tail:{i}")).ignore();
    }
    let _: () = pipe.query(&mut c).expect("del");
    let _: () = c.set("after", "v").expect("room again");
}

#[test]
fn exec_is_aborted_as_a_whole_when_a_shard_is_full() {
    let server = start("noeviction", &[]);
    let mut c = server.conn();
    let mut other = server.conn();
    let _: () = c.set("x", "1").expect("set");
    let _: () = redis::cmd("MULTI").query(&mut c).expect("multi");
    let _: () = redis::cmd("SET")
        .arg("x")
        .arg("2")
        .query(&mut c)
        .expect("queued");
    let _: () = redis::cmd("SET")
        .arg("y")
        .arg("2")
        .query(&mut c)
        .expect("queued");
    let _: () = redis::cmd("GET").arg("x").query(&mut c).expect("queued");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("1")
        .query(&mut other)
        .expect("config set");
    let e = redis::cmd("EXEC")
        .query::<redis::Value>(&mut c)
        .expect_err("aborted");
    assert_eq!(e.code(), Some("EXECABORT"));
    assert_eq!(
        e.detail(),
        Some(format!("Transaction discarded because of: {OOM}").as_str())
    );
    // MULTI itself passes, but nothing can be queued while full, not even a read.
    let _: () = redis::cmd("MULTI").query(&mut c).expect("multi");
    let e = redis::cmd("GET")
        .arg("x")
        .query::<redis::Value>(&mut c)
        .expect_err("refused");
    assert_eq!(e.code(), Some("OOM"));
    let _: () = redis::cmd("DISCARD").query(&mut c).expect("discard");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("0")
        .query(&mut other)
        .expect("config set");
    let v: String = c.get("x").expect("get");
    assert_eq!(v, "1");
}

#[test]
fn keys_on_one_shard_use_the_whole_limit() {
    // Every key shares a hash tag, so one shard holds them all: it must not stop at half.
    let server = start("allkeys-lru", &[]);
    let mut c = server.conn();
    let cap = rss_cap(&mut c);
    write_load(&mut c, "{tag}", 40_000, 400, 2, cap);
    let (used, _) = counted(&mut c);
    assert!(
        used > MAXMEMORY * 8 / 10,
        "one shard holds only {used} of {MAXMEMORY}"
    );
    let shards = info(&mut c, "shards");
    let keys: Vec<u64> = shards
        .lines()
        .filter(|l| l.starts_with("shard") && l.contains("keys="))
        .map(|l| {
            l.split([':', ','])
                .find_map(|kv| kv.strip_prefix("keys="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        })
        .collect();
    assert_eq!(keys.len(), 2);
    assert!(keys.contains(&0), "{keys:?}");
}

#[test]
fn lru_and_lfu_keep_the_keys_in_use() {
    for policy in ["allkeys-lru", "allkeys-lfu"] {
        // LFU counters lose one per wall-clock minute without decay-time 0: on a loaded
        // machine this test runs for minutes, and decay took back the ten touches' increments
        // (OBJECT FREQ 5 where more than 5 is asserted below).
        let server = start(policy, &["--lfu-decay-time", "0"]);
        let mut c = server.conn();
        let cap = rss_cap(&mut c);
        for i in 0..500 {
            let _: () = c.set(format!("hot:{i}"), "x".repeat(400)).expect("set");
        }
        for round in 0..10 {
            // Touch the hot keys, then write a wave of cold ones. A tick of the LRU clock
            // (100 ms) on either side of the touch: keys used within the same tick look
            // alike to LRU.
            std::thread::sleep(std::time::Duration::from_millis(120));
            let mut pipe = redis::pipe();
            for i in 0..500 {
                pipe.cmd("GET").arg(format!("hot:{i}")).ignore();
            }
            let _: () = pipe.query(&mut c).expect("get");
            std::thread::sleep(std::time::Duration::from_millis(120));
            write_load(&mut c, &format!("cold{round}"), 5_000, 400, 2, cap);
        }
        let kept = (0..500)
            .filter(|i| c.exists::<_, bool>(format!("hot:{i}")).expect("exists"))
            .count();
        assert!(kept >= 450, "{policy} kept {kept} of 500 hot keys");
        if policy == "allkeys-lfu" {
            let f: i64 = redis::cmd("OBJECT")
                .arg("FREQ")
                .arg("hot:1")
                .query(&mut c)
                .expect("freq");
            assert!(f > 5, "{f}");
        }
    }
}

#[test]
fn config_set_changes_the_limit_and_the_policy_at_run_time() {
    let server = Server::start(2, &[]);
    let mut c = server.conn();
    let set = |c: &mut redis::Connection, k: &str, v: &str| {
        redis::cmd("CONFIG").arg("SET").arg(k).arg(v).query::<()>(c)
    };
    for i in 0..20_000 {
        if i % 1000 == 0 {
            let mut pipe = redis::pipe();
            for j in i..i + 1000 {
                pipe.cmd("SET")
                    .arg(format!("k{j}"))
                    .arg("x".repeat(400))
                    .ignore();
            }
            let _: () = pipe.query(&mut c).expect("load");
        }
    }
    set(&mut c, "maxmemory-policy", "allkeys-random").expect("policy");
    set(&mut c, "maxmemory", "4mb").expect("limit");
    // The clock evicts down to the new limit without any write.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (used, _) = counted(&mut c);
        if used <= (4 << 20) + (4 << 20) / 10 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {used}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let e = set(&mut c, "maxmemory-policy", "lru").expect_err("bad policy");
    assert!(e.to_string().contains("argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction"), "{e}");
    let e = set(&mut c, "maxmemory-samples", "0").expect_err("bad samples");
    assert!(
        e.to_string()
            .contains("argument must be between 1 and 2147483647 inclusive"),
        "{e}"
    );
    let e = set(&mut c, "maxmemory-eviction-tenacity", "101").expect_err("bad tenacity");
    assert!(
        e.to_string()
            .contains("argument must be between 0 and 100 inclusive"),
        "{e}"
    );
    let e = set(&mut c, "maxmemory", "12xb").expect_err("bad memory");
    assert!(
        e.to_string().contains("argument must be a memory value"),
        "{e}"
    );
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory*")
        .query(&mut c)
        .expect("get");
    assert_eq!(
        got,
        [
            "maxmemory",
            "4194304",
            "maxmemory-policy",
            "allkeys-random",
            "maxmemory-samples",
            "5",
            "maxmemory-clients",
            "0",
            "maxmemory-eviction-tenacity",
            "10"
        ]
    );
}

#[test]
fn unlink_frees_a_large_set_in_the_background() {
    let server = Server::start(2, &[]);
    let mut c = server.conn();
    let before = field(&info(&mut c, "memory"), "used_memory");
    for chunk in 0..100 {
        let members: Vec<String> = (chunk * 1000..(chunk + 1) * 1000)
            .map(|i| i.to_string())
            .collect();
        let _: () = c.sadd("myset", members).expect("sadd");
    }
    let peak = field(&info(&mut c, "memory"), "used_memory");
    assert!(peak > before + 1_000_000, "{before} → {peak}");
    let n: i64 = c.unlink("myset").expect("unlink");
    assert_eq!(n, 1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let m = info(&mut c, "memory");
        if field(&m, "used_memory") < before + 200_000 && field(&m, "lazyfree_pending_objects") == 0
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not reclaimed: {m}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(field(&info(&mut c, "stats"), "lazyfreed_objects"), 1);
}

#[test]
fn evictions_and_expiries_are_notified() {
    let server = start("allkeys-lru", &["--notify-keyspace-events", "Exe"]);
    let mut sub = server.conn();
    sub.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    let mut sub = sub.as_pubsub();
    sub.psubscribe("__keyevent@0__:*").expect("psubscribe");
    let mut c = server.conn();
    let cap = rss_cap(&mut c);
    // Unique keys, about four times the limit, on both shards.
    let errors = write_load(&mut c, "n", 30_000, 1000, 1_000_000, cap);
    assert!(errors.is_empty(), "{:?}", errors.first());
    let _: () = redis::cmd("SET")
        .arg("short")
        .arg("v")
        .arg("PX")
        .arg(50)
        .query(&mut c)
        .expect("set");
    let evicted_before = field(&info(&mut c, "stats"), "evicted_keys");
    assert!(evicted_before > 1000, "{evicted_before}");
    // Every eviction is published once, on its shard; then the expiry of `short`. (The shards
    // may go on evicting a little meanwhile, as they settle their shares of the limit.)
    let mut evicted = Vec::new();
    loop {
        let msg = sub.get_message().expect("a keyspace event");
        let key: String = msg.get_payload().expect("payload");
        match msg.get_channel_name() {
            "__keyevent@0__:evicted" => evicted.push(key),
            "__keyevent@0__:expired" => {
                assert_eq!(key, "short");
                break;
            }
            other => panic!("unexpected event {other} {key}"),
        }
    }
    let evicted_after = field(&info(&mut c, "stats"), "evicted_keys");
    let published = evicted.len() as u64;
    assert!(
        (evicted_before..=evicted_after).contains(&published),
        "{published} evicted events for {evicted_before}..{evicted_after} evictions"
    );
    let unique: std::collections::HashSet<&String> = evicted.iter().collect();
    assert_eq!(unique.len(), evicted.len(), "a key evicted twice");
    for key in evicted.iter().step_by(97) {
        let exists: bool = c.exists(key).expect("exists");
        assert!(!exists, "{key} was notified as evicted but is there");
    }
}
