//! Lua scripting over a real socket: atomicity of scripts whose keys span shards or are not
//! declared, BUSY and SCRIPT KILL while a script loops, a token-bucket rate limiter as queue
//! libraries write them, and hostile scripts that must neither crash nor wedge the server.

mod common;

use common::{connect, Server};
use redis::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Moves one unit between two random accounts, naming no key: the script may touch any shard.
const TRANSFER: &str = r#"
local n = tonumber(ARGV[1])
local from = 'acct:' .. math.random(n)
local to = 'acct:' .. math.random(n)
redis.call('DECRBY', from, 1)
redis.call('INCRBY', to, 1)
return 1
"#;

/// Sums every account, naming no key.
const TOTAL: &str = r#"
local sum = 0
for i = 1, tonumber(ARGV[1]) do
  sum = sum + tonumber(redis.call('GET', 'acct:' .. i) or '0')
end
return sum
"#;

#[test]
fn undeclared_keys_on_both_shards_are_atomic_under_concurrent_writers() {
    let s = Server::start(2, &[]);
    let port = s.port;
    const ACCOUNTS: i64 = 16;
    let mut c = s.conn();
    for i in 1..=ACCOUNTS {
        let _: () = redis::cmd("SET")
            .arg(format!("acct:{i}"))
            .arg(100)
            .query(&mut c)
            .expect("set");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for _ in 0..3 {
        let stop = stop.clone();
        writers.push(std::thread::spawn(move || {
            let mut c = connect(port);
            let script = redis::Script::new(TRANSFER);
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let _: i64 = script.arg(ACCOUNTS).invoke(&mut c).expect("transfer");
                n += 1;
            }
            n
        }));
    }
    let total = redis::Script::new(TOTAL);
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut reads = 0;
    while Instant::now() < deadline {
        let sum: i64 = total.arg(ACCOUNTS).invoke(&mut c).expect("total");
        assert_eq!(sum, 100 * ACCOUNTS, "a script saw a transfer half done");
        reads += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let transfers: i64 = writers.into_iter().map(|w| w.join().expect("writer")).sum();
    assert!(
        transfers > 0 && reads > 0,
        "{transfers} transfers, {reads} reads"
    );
    let sum: i64 = total.arg(ACCOUNTS).invoke(&mut c).expect("total");
    assert_eq!(sum, 100 * ACCOUNTS);
}

#[test]
fn declared_keys_on_two_shards_and_plain_clients_see_all_or_nothing() {
    let s = Server::start(2, &[]);
    let port = s.port;
    // Keys of both shards, declared this time; plain MGETs check the invariant.
    let keys: Vec<String> = (0..8).map(|i| format!("pair:{i}")).collect();
    let mut c = s.conn();
    for k in &keys {
        let _: () = redis::cmd("SET").arg(k).arg(0).query(&mut c).expect("set");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let keys = keys.clone();
        std::thread::spawn(move || {
            let mut c = connect(port);
            let script = redis::Script::new(
                "for _, k in ipairs(KEYS) do redis.call('INCR', k) end return #KEYS",
            );
            while !stop.load(Ordering::Relaxed) {
                let mut inv = script.prepare_invoke();
                for k in &keys {
                    inv.key(k);
                }
                let _: i64 = inv.invoke(&mut c).expect("incr all");
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        let v: Vec<i64> = redis::cmd("MGET").arg(&keys).query(&mut c).expect("mget");
        assert!(
            v.iter().all(|x| *x == v[0]),
            "MGET saw a script half done: {v:?}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
}

/// Increments every declared key, then reads them all back with one MGET (over both shards):
/// returns what each INCR answered followed by what MGET read.
const INCR_ALL: &str = r#"
local seen = {}
for i, k in ipairs(KEYS) do seen[i] = redis.call('INCR', k) end
for _, v in ipairs(redis.call('MGET', unpack(KEYS))) do seen[#seen + 1] = tonumber(v) end
return seen
"#;

#[test]
fn a_locked_script_runs_where_most_of_its_keys_are_and_stays_atomic() {
    let s = Server::start(2, &[]);
    let port = s.port;
    // With 2 shards d:1 and u:2 are on shard 1 and d:2 on shard 0: every run goes to core 1's
    // queue, whichever core the connection landed on (half of them forward their runs).
    let keys = ["d:1", "u:2", "d:2"];
    const CLIENTS: usize = 6;
    const RUNS: usize = 200;
    let workers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = connect(port);
                let script = redis::Script::new(INCR_ALL);
                for _ in 0..RUNS {
                    let mut inv = script.prepare_invoke();
                    for k in keys {
                        inv.key(k);
                    }
                    let seen: Vec<i64> = inv.invoke(&mut c).expect("incr all");
                    assert_eq!(seen.len(), 6, "{seen:?}");
                    assert!(
                        seen.iter().all(|v| *v == seen[0]),
                        "a run saw another one half done: {seen:?}"
                    );
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
    let mut c = s.conn();
    let v: Vec<i64> = redis::cmd("MGET").arg(&keys).query(&mut c).expect("mget");
    assert_eq!(v, vec![(CLIENTS * RUNS) as i64; 3]);
    // What the cross-core work cost is visible per shard.
    let shards: String = redis::cmd("INFO")
        .arg("shards")
        .query(&mut c)
        .expect("info");
    let lines: Vec<&str> = shards
        .lines()
        .filter(|l| l.starts_with("shard") && l.contains("keys="))
        .collect();
    assert_eq!(lines.len(), 2, "{shards}");
    for l in lines {
        for field in ["messages_sent=", "wakeups_sent=", "sleeps="] {
            let n: Option<u64> = l
                .split([':', ','])
                .find_map(|kv| kv.strip_prefix(field))
                .and_then(|v| v.trim().parse().ok());
            assert!(n.is_some(), "no {field} in {l}");
        }
        let sent: u64 = l
            .split([':', ','])
            .find_map(|kv| kv.strip_prefix("messages_sent="))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        assert!(sent > 0, "a locked run over two shards sends messages: {l}");
    }
}

#[test]
fn a_looping_script_gets_others_busy_and_script_kill_stops_it() {
    let s = Server::start(2, &["--busy-reply-threshold", "100"]);
    let port = s.port;
    let looping = std::thread::spawn(move || {
        let mut c = connect(port);
        redis::cmd("EVAL")
            .arg("local i = 0 while true do i = i + 1 end")
            .arg(1)
            .arg("busy:key")
            .query::<Value>(&mut c)
            .expect_err("killed")
            .to_string()
    });
    // GETs for the script's key sent 10 ms in, before the threshold, from several
    // connections (on both cores): each waits behind the script's lock, then gets -BUSY once
    // the threshold passes, not after the script ends (it never does).
    let mut c = s.conn();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !redis::cmd("CLIENT")
        .arg("LIST")
        .query::<String>(&mut c)
        .expect("client list")
        .contains("cmd=eval")
    {
        assert!(Instant::now() < deadline, "the script never started");
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(10));
    let waiting: Vec<_> = (0..4)
        .map(|_| {
            let mut c = connect(port);
            c.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            std::thread::spawn(move || {
                let started = Instant::now();
                let got = redis::cmd("GET").arg("busy:key").query::<Value>(&mut c);
                (got.map_err(|e| e.to_string()), started.elapsed())
            })
        })
        .collect();
    for w in waiting {
        let (got, took) = w.join().expect("waiting client");
        let err = got.expect_err("BUSY, not a value or a hang");
        assert!(err.contains("BUSY"), "{err}");
        assert!(took < Duration::from_secs(3), "{took:?}");
    }
    let busy = redis::cmd("PING")
        .query::<String>(&mut c)
        .expect_err("busy")
        .to_string();
    assert!(busy.contains("SCRIPT KILL"), "{busy}");
    let err = redis::cmd("FUNCTION")
        .arg("KILL")
        .query::<Value>(&mut c)
        .expect_err("function kill refused");
    assert!(err.to_string().contains("BUSY"), "{err}");
    let _: () = redis::cmd("SCRIPT")
        .arg("KILL")
        .query(&mut c)
        .expect("kill");
    let reply = looping.join().expect("looping client");
    assert!(reply.contains("Script killed by user"), "{reply}");
    let pong: String = redis::cmd("PING").query(&mut c).expect("ping");
    assert_eq!(pong, "PONG");
    let err = redis::cmd("SCRIPT")
        .arg("KILL")
        .query::<Value>(&mut c)
        .expect_err("nothing to kill");
    assert!(err.to_string().contains("No scripts in execution"), "{err}");
}

/// A token bucket as rate-limiting libraries write it: state in a hash, refill by elapsed
/// time, the key declared, the clock passed in.
const TOKEN_BUCKET: &str = r#"
local key = KEYS[1]
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local requested = tonumber(ARGV[4])
local state = redis.call('HMGET', key, 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local allowed = tokens >= requested
if allowed then tokens = tokens - requested end
redis.call('HSET', key, 'tokens', tokens, 'ts', now)
redis.call('PEXPIRE', key, math.ceil(capacity / rate * 1000))
return { allowed and 1 or 0, tokens }
"#;

#[test]
fn a_token_bucket_rate_limiter_behaves_as_on_redis() {
    let s = Server::start(2, &[]);
    let mut c = s.conn();
    let bucket = redis::Script::new(TOKEN_BUCKET);
    let take = |c: &mut redis::Connection, key: &str, now: i64| -> (i64, i64) {
        bucket
            .key(key)
            .arg(1)
            .arg(5)
            .arg(now)
            .arg(1)
            .invoke(c)
            .expect("bucket")
    };
    // Two limiters, one per shard (the keys hash apart), through EVALSHA after the first.
    for key in ["rate:a", "rate:b"] {
        let got: Vec<(i64, i64)> = (0..7).map(|_| take(&mut c, key, 1000)).collect();
        assert_eq!(
            got,
            vec![(1, 4), (1, 3), (1, 2), (1, 1), (1, 0), (0, 0), (0, 0)]
        );
        assert_eq!(take(&mut c, key, 1002), (1, 1));
        let ttl: i64 = redis::cmd("PTTL").arg(key).query(&mut c).expect("pttl");
        assert!(ttl > 0 && ttl <= 5000, "{ttl}");
    }
    let exists: Vec<i64> = redis::cmd("SCRIPT")
        .arg("EXISTS")
        .arg(bucket.get_hash())
        .query(&mut c)
        .expect("exists");
    assert_eq!(exists, vec![1]);
}

#[test]
fn hostile_scripts_neither_crash_nor_wedge_the_server() {
    let s = Server::start(2, &[]);
    let mut c = s.conn();
    let eval = |c: &mut redis::Connection, script: &str| -> Result<Value, String> {
        redis::cmd("EVAL")
            .arg(script)
            .arg(0)
            .query::<Value>(c)
            .map_err(|e| e.to_string())
    };
    let err = eval(
        &mut c,
        "local function f(n) return f(n + 1) + 1 end return f(1)",
    )
    .expect_err("deep recursion");
    assert!(err.contains("stack overflow"), "{err}");
    // Until the interpreter's memory runs out, then again right after: the garbage of the
    // first must not make later scripts fail, nor an allocation outside a protected call.
    for _ in 0..2 {
        let err = eval(
            &mut c,
            "local t = {} for i = 1, 1e6 do t[i] = string.rep(tostring(i), 100000) end",
        )
        .expect_err("out of memory");
        assert!(err.contains("not enough memory"), "{err}");
        for n in [1_000_000, 30_000_000, 60_000_000] {
            let len = eval(&mut c, &format!("return #string.rep('x', {n})")).expect("rep");
            assert_eq!(len, Value::Int(n));
        }
    }
    let err = eval(&mut c, "return cjson.decode(string.rep('[', 100000))").expect_err("nesting");
    assert!(err.contains("too many nested"), "{err}");
    let err = eval(
        &mut c,
        "local t = {} local c = t for i = 1, 100000 do c[1] = {} c = c[1] end return cjson.encode(t)",
    )
    .expect_err("nesting");
    assert!(err.contains("excessive nesting"), "{err}");
    let err = eval(&mut c, "return unpack({}, 1, 1e8)").expect_err("unpack");
    assert!(err.contains("too many results to unpack"), "{err}");
    let err =
        eval(&mut c, "return loadstring(string.dump(function() end))()").expect_err("bytecode");
    assert!(err.contains("attempt to call a nil value"), "{err}");
    let pong: String = redis::cmd("PING").query(&mut c).expect("ping");
    assert_eq!(pong, "PONG");
}

/// The value of `field` in INFO memory.
fn info_memory(c: &mut redis::Connection, field: &str) -> String {
    let info: String = redis::cmd("INFO").arg("memory").query(c).expect("info");
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {info}"))
        .to_string()
}

#[test]
fn info_memory_reports_scripts_and_functions() {
    let s = Server::start(2, &[]);
    let mut c = s.conn();
    for j in 0..5 {
        let _: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(format!("return {j}"))
            .query(&mut c)
            .expect("script load");
    }
    let _: i64 = redis::cmd("EVAL")
        .arg("return redis.call('INCR', KEYS[1])")
        .arg(1)
        .arg("k")
        .query(&mut c)
        .expect("eval");
    let _: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg("#!lua name=lib\nredis.register_function('f1', function() return 1 end)\nredis.register_function('f2', function() return 2 end)")
        .query(&mut c)
        .expect("function load");
    let _: i64 = redis::cmd("FCALL")
        .arg("f1")
        .arg(0)
        .query(&mut c)
        .expect("fcall");
    // Counts are the server's (each core holds the same copies), not a sum over cores.
    assert_eq!(info_memory(&mut c, "number_of_cached_scripts"), "6");
    assert_eq!(info_memory(&mut c, "number_of_functions"), "2");
    assert_eq!(info_memory(&mut c, "number_of_libraries"), "1");
    let num = |c: &mut redis::Connection, f: &str| -> u64 {
        info_memory(c, f).parse().expect("a number")
    };
    let lua = num(&mut c, "used_memory_lua");
    assert!(lua > 0 && lua < 1 << 20, "{lua}");
    assert_eq!(num(&mut c, "used_memory_vm_eval"), lua);
    assert!(num(&mut c, "used_memory_vm_functions") > 0);
    assert_eq!(
        num(&mut c, "used_memory_vm_total"),
        lua + num(&mut c, "used_memory_vm_functions")
    );
    let scripts = num(&mut c, "used_memory_scripts");
    assert_eq!(
        scripts,
        num(&mut c, "used_memory_scripts_eval") + num(&mut c, "used_memory_functions")
    );
    assert!(info_memory(&mut c, "used_memory_scripts_human").ends_with(['B', 'K']));
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query(&mut c)
        .expect("flush");
    let _: () = redis::cmd("FUNCTION")
        .arg("FLUSH")
        .query(&mut c)
        .expect("flush");
    assert_eq!(info_memory(&mut c, "number_of_cached_scripts"), "0");
    assert_eq!(info_memory(&mut c, "number_of_functions"), "0");
    assert_eq!(info_memory(&mut c, "used_memory_scripts"), "0");
}

#[test]
fn sort_by_a_constant_sorts_a_set_on_another_shard_for_a_script() {
    let s = Server::start(2, &[]);
    let mut c = s.conn();
    let on = |shard: usize, prefix: &str| {
        (0..)
            .map(|i| format!("{prefix}{i}"))
            .find(|k| common::shard_of(k.as_bytes(), 2) == shard)
            .expect("a key")
    };
    let (home, set) = (on(0, "home"), on(1, "set"));
    let mut members: Vec<String> = (0..200).map(|i| format!("m{i:03}")).collect();
    let _: i64 = redis::cmd("SADD")
        .arg(&set)
        .arg(&members)
        .query(&mut c)
        .expect("sadd");
    members.sort();
    // A client gets the set's own order; a script gets it sorted, as in Redis, even when the
    // script runs on another shard's core (declared key) and reaches the set there.
    let plain: Vec<String> = redis::cmd("SORT")
        .arg(&set)
        .arg("BY")
        .arg("_")
        .query(&mut c)
        .expect("sort");
    assert_ne!(plain, members, "a set's own order is not sorted");
    for run in 0..2 {
        let got: Vec<String> = redis::cmd("EVAL")
            .arg("redis.call('GET', KEYS[1]) return redis.call('SORT', ARGV[1], 'BY', '_')")
            .arg(1)
            .arg(&home)
            .arg(&set)
            .query(&mut c)
            .expect("eval");
        assert_eq!(got, members, "run {run}");
    }
    // With GET patterns naming keys on both shards, the command runs over copies of its keys
    // (a gather): sorted there too.
    let got: Vec<Option<String>> = redis::cmd("EVAL")
        .arg("return redis.call('SORT', KEYS[1], 'BY', '_', 'GET', '#', 'GET', '_:*')")
        .arg(1)
        .arg(&set)
        .query(&mut c)
        .expect("eval");
    let want: Vec<Option<String>> = members
        .iter()
        .flat_map(|m| [Some(m.clone()), None])
        .collect();
    assert_eq!(got, want);
}

/// The error text of a failed query.
fn error_text<T: std::fmt::Debug>(r: redis::RedisResult<T>) -> String {
    match r {
        Err(e) => format!("{} {}", e.code().unwrap_or(""), e.detail().unwrap_or("")),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

#[test]
fn scripts_over_maxmemory_are_refused_as_redis_refuses_them() {
    let s = Server::start(2, &[]);
    let mut c = s.conn();
    let eval = |c: &mut redis::Connection, body: &str, keys: &[&str]| {
        redis::cmd("EVAL")
            .arg(body)
            .arg(keys.len())
            .arg(keys)
            .query::<Value>(c)
    };
    // Keys on both shards, so that a script's first write is refused whichever core runs it.
    for k in ["x", "y", "k:1", "k:2", "k:3"] {
        let _: () = redis::cmd("SET")
            .arg(k)
            .arg(123)
            .query(&mut c)
            .expect("set");
    }
    let dump: Vec<u8> = redis::cmd("FUNCTION")
        .arg("DUMP")
        .query(&mut c)
        .expect("function dump");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(1)
        .query(&mut c)
        .expect("config set");
    let oom = "OOM command not allowed when used memory > 'maxmemory'.";
    // Loading a library uses memory on every shard: refused, as FUNCTION RESTORE.
    let library = "#!lua name=oomlib\nredis.register_function('f1', function() return 1 end)";
    let e = error_text(
        redis::cmd("FUNCTION")
            .arg("LOAD")
            .arg(library)
            .query::<Value>(&mut c),
    );
    assert!(e.starts_with(oom), "{e}");
    let e = error_text(
        redis::cmd("FUNCTION")
            .arg("RESTORE")
            .arg(&dump[..])
            .query::<Value>(&mut c),
    );
    assert!(e.starts_with(oom), "{e}");
    for k in ["x", "y", "k:1", "k:2", "k:3"] {
        // No shebang: reads run, the first write is refused (the script's error).
        let e = error_text(eval(&mut c, "redis.call('set', KEYS[1], 1) return 1", &[k]));
        assert!(e.starts_with(oom), "{e}");
        let got = eval(&mut c, "return redis.call('get', KEYS[1])", &[k]).expect("read");
        assert_eq!(got, Value::BulkString(b"123".to_vec()));
        // pcall sees Redis's error table, without the dash.
        let got = eval(
            &mut c,
            "local t = redis.pcall('set', KEYS[1], 1) return t['err']",
            &[k],
        )
        .expect("pcall");
        assert_eq!(got, Value::BulkString(oom.as_bytes().to_vec()));
        // Undeclared keys: the same, wherever the key lives.
        let body = format!("redis.call('set', '{k}', 1) return 1");
        let e = error_text(eval(&mut c, &body, &[]));
        assert!(e.starts_with(oom), "{e}");
    }
    // A shebang without allow-oom is refused before it runs, whatever it would do.
    for _ in 0..50 {
        let e = error_text(eval(&mut c, "#!lua\nreturn 1", &[]));
        assert!(e.starts_with(oom), "{e}");
    }
    let e = error_text(eval(&mut c, "#!lua flags=\nreturn 1", &[]));
    assert!(e.starts_with("OOM"), "{e}");
    // allow-oom writes; no-writes implies it.
    let got = eval(
        &mut c,
        "#!lua flags=allow-oom\nredis.call('set', KEYS[1], 7) return redis.call('get', KEYS[1])",
        &["y"],
    )
    .expect("allow-oom");
    assert_eq!(got, Value::BulkString(b"7".to_vec()));
    let got = redis::cmd("EVAL_RO")
        .arg("#!lua flags=no-writes\nreturn redis.call('get', KEYS[1])")
        .arg(1)
        .arg("x")
        .query::<Value>(&mut c)
        .expect("no-writes");
    assert_eq!(got, Value::BulkString(b"123".to_vec()));
    // Each refused call counts as a rejected SET (3 per key), as in Redis; the SETs that ran
    // are the 5 before the limit and the allow-oom one.
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut c)
        .expect("info");
    let set = stats
        .lines()
        .find(|l| l.starts_with("cmdstat_set:"))
        .unwrap_or_default();
    assert!(set.starts_with("cmdstat_set:calls=6,"), "{set}");
    assert!(set.contains("rejected_calls=15,failed_calls=0"), "{set}");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(0)
        .query(&mut c)
        .expect("config set");
    let got = eval(&mut c, "#!lua\nreturn 1", &[]).expect("under no limit");
    assert_eq!(got, Value::Int(1));
    let name: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(library)
        .query(&mut c)
        .expect("function load under no limit");
    assert_eq!(name, "oomlib");
    let got = eval(&mut c, "redis.call('set', KEYS[1], 1) return 1", &["x"]).expect("write");
    assert_eq!(got, Value::Int(1));
}

/// Sets a key on each shard to expire a millisecond later, sleeps 10 ms, and reports whether
/// each key (and both, with one command over the two shards) is still there.
const FROZEN_CLOCK: &str = r#"
redis.call('SET', ARGV[1], 'v', 'PX', 1)
redis.call('SET', ARGV[2], 'v', 'PX', 1)
redis.call('DEBUG', 'SLEEP', 0.01)
return {redis.call('EXISTS', ARGV[1]), redis.call('EXISTS', ARGV[2]),
        redis.call('EXISTS', ARGV[1], ARGV[2])}
"#;

/// As in Redis ("Script block the time during execution"), a script's clock stands still
/// while it runs: a key it set to expire in a millisecond is still there after it slept, on
/// the shard it runs on and on the other one, and gone once it returned.
#[test]
fn a_script_judges_expiry_at_its_start_on_every_shard() {
    let s = Server::start(2, &["--enable-debug-command", "yes"]);
    let mut c = s.conn();
    // DEBUG SLEEP from a script, as Redis's test lets it.
    let _: () = redis::cmd("DEBUG")
        .arg("SET-DISABLE-DENY-SCRIPTS")
        .arg(1)
        .query(&mut c)
        .expect("DEBUG");
    let keys = [common::key_on("clock", 0, 2), common::key_on("clock", 1, 2)];
    let seen: Vec<i64> = redis::cmd("EVAL")
        .arg(FROZEN_CLOCK)
        .arg(0)
        .arg(&keys)
        .query(&mut c)
        .expect("EVAL");
    assert_eq!(seen, [1, 1, 2]);
    let after: i64 = redis::cmd("EXISTS")
        .arg(&keys)
        .query(&mut c)
        .expect("EXISTS");
    assert_eq!(after, 0);
}
