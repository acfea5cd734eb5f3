//! Snapshots end to end: SAVE/BGSAVE and restart (with the same and with another shard
//! count), SHUTDOWN and SIGTERM saves, a crash during a snapshot, MISCONF when saving fails,
//! and RDB files both ways with Debian's redis-server (skipped, saying so, without it).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::real_redis::redis_server;
use common::Server;
use redis::Commands;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shardis-persist-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn start(shards: usize, dir: &Path, extra: &[&str]) -> Server {
    let mut args = vec!["--dir", dir.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    Server::start(shards, &args)
}

/// Fills a server with every type, expiring keys and several databases; returns the keys
/// of database 0 (with 9 keys in database 3).
fn fill(c: &mut redis::Connection, n: usize) -> Vec<String> {
    let mut keys = Vec::new();
    for i in 0..n {
        let k = format!("key:{i}");
        match i % 6 {
            0 => redis::cmd("SET")
                .arg(&k)
                .arg(format!("value-{i}"))
                .query::<()>(c),
            1 => redis::cmd("RPUSH")
                .arg(&k)
                .arg("a")
                .arg(i)
                .arg("c")
                .query::<()>(c),
            2 => redis::cmd("HSET")
                .arg(&k)
                .arg("f")
                .arg(i)
                .arg("g")
                .arg("x")
                .query::<()>(c),
            3 => redis::cmd("SADD")
                .arg(&k)
                .arg(1)
                .arg(2)
                .arg(i)
                .query::<()>(c),
            4 => redis::cmd("ZADD")
                .arg(&k)
                .arg(1.5)
                .arg("m")
                .arg(i)
                .arg("n")
                .query::<()>(c),
            _ => redis::cmd("XADD")
                .arg(&k)
                .arg("*")
                .arg("f")
                .arg(i)
                .query::<()>(c),
        }
        .expect("write");
        keys.push(k);
    }
    redis::cmd("SET")
        .arg("with-ttl")
        .arg("v")
        .arg("EX")
        .arg(1000)
        .query::<()>(c)
        .expect("ttl");
    redis::cmd("XGROUP")
        .arg("CREATE")
        .arg("key:5")
        .arg("g")
        .arg("0")
        .query::<()>(c)
        .expect("group");
    redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("g")
        .arg("alice")
        .arg("STREAMS")
        .arg("key:5")
        .arg(">")
        .query::<redis::Value>(c)
        .expect("read");
    keys.push("with-ttl".into());
    redis::cmd("SELECT").arg(3).query::<()>(c).expect("select");
    for i in 0..9 {
        redis::cmd("SET")
            .arg(format!("db3:{i}"))
            .arg(i)
            .query::<()>(c)
            .expect("write");
    }
    redis::cmd("SELECT").arg(0).query::<()>(c).expect("select");
    keys
}

/// Every key of database 0 with its DUMP payload (identical data dumps identically), and
/// the size of database 3.
fn contents(c: &mut redis::Connection, keys: &[String]) -> (Vec<(String, Vec<u8>)>, i64) {
    let mut out = Vec::new();
    for k in keys {
        let d: Option<Vec<u8>> = redis::cmd("DUMP").arg(k).query(c).expect("dump");
        out.push((k.clone(), d.unwrap_or_default()));
    }
    redis::cmd("SELECT").arg(3).query::<()>(c).expect("select");
    let n: i64 = redis::cmd("DBSIZE").query(c).expect("dbsize");
    redis::cmd("SELECT").arg(0).query::<()>(c).expect("select");
    (out, n)
}

fn info_field(c: &mut redis::Connection, field: &str) -> String {
    let info: String = redis::cmd("INFO")
        .arg("persistence")
        .query(c)
        .expect("info");
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn wait_bgsave(c: &mut redis::Connection) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while info_field(c, "rdb_bgsave_in_progress") != "0" {
        assert!(Instant::now() < deadline, "BGSAVE did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A function library: `kept_get` returns its key's value, `kept_tag` a constant.
const LIBRARY: &str = "#!lua name=kept\nredis.register_function('kept_get', function(keys) return redis.call('GET', keys[1]) end)\nredis.register_function{function_name='kept_tag', callback=function() return 'tagged' end, flags={'no-writes'}}";

/// Checks the library is there and runs on every shard: FCALL runs on its key's shard, and
/// keys `fkey0`..`fkey11` reach every shard of up to 3.
fn assert_library(c: &mut redis::Connection, what: &str) {
    for i in 0..12 {
        let key = format!("fkey{i}");
        let _: () = c.set(&key, i).expect("set");
        let got: i64 = redis::cmd("FCALL")
            .arg("kept_get")
            .arg(1)
            .arg(&key)
            .query(c)
            .unwrap_or_else(|e| panic!("{what}: FCALL on {key}: {e}"));
        assert_eq!(got, i, "{what}");
    }
    let tag: String = redis::cmd("FCALL_RO")
        .arg("kept_tag")
        .arg(0)
        .query(c)
        .expect("fcall_ro");
    assert_eq!(tag, "tagged", "{what}");
    let libs: Vec<redis::Value> = redis::cmd("FUNCTION").arg("LIST").query(c).expect("list");
    assert_eq!(libs.len(), 1, "{what}: {libs:?}");
}

#[test]
fn save_then_restart_with_the_same_and_other_shard_counts() {
    let dir = temp_dir("restart");
    let server = start(2, &dir, &[]);
    let mut c = server.conn();
    let _: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(LIBRARY)
        .query(&mut c)
        .expect("function load");
    let keys = fill(&mut c, 300);
    let before = contents(&mut c, &keys);
    // DEBUG is refused unless enable-debug-command allows it, as in Redis.
    let e = redis::cmd("DEBUG")
        .arg("DIGEST")
        .query::<String>(&mut c)
        .expect_err("refused");
    assert!(e.to_string().contains("DEBUG command not allowed"), "{e}");
    let lastsave: i64 = redis::cmd("LASTSAVE").query(&mut c).expect("lastsave");
    assert_eq!(
        redis::cmd("SAVE").query::<String>(&mut c).expect("save"),
        "OK"
    );
    assert_eq!(info_field(&mut c, "rdb_changes_since_last_save"), "0");
    assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "ok");
    assert_eq!(info_field(&mut c, "rdb_saves"), "1");
    assert!(
        redis::cmd("LASTSAVE")
            .query::<i64>(&mut c)
            .expect("lastsave")
            >= lastsave
    );
    drop(c);
    drop(server);
    for shards in [2, 1, 3] {
        let server = start(shards, &dir, &[]);
        let mut c = server.conn();
        assert_eq!(
            contents(&mut c, &keys),
            before,
            "restart with {shards} shard(s)"
        );
        assert_library(&mut c, &format!("restart with {shards} shard(s)"));
        let ttl: i64 = c.ttl("with-ttl").expect("ttl");
        assert!(ttl > 900, "expiry kept: {ttl}");
    }
    // A BGSAVE replaces the set: only its files and the manifest remain.
    let server = start(2, &dir, &[]);
    let mut c = server.conn();
    let _: () = c.set("after", "bgsave").expect("set");
    let started: String = redis::cmd("BGSAVE").query(&mut c).expect("bgsave");
    assert_eq!(started, "Background saving started");
    wait_bgsave(&mut c);
    let names: Vec<String> = std::fs::read_dir(&dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    // A backup as docs/operations.md describes it: the manifest and the files it names,
    // copied to another node's dir, restored there with another shard count.
    let backup = temp_dir("backup");
    let manifest = std::fs::read_to_string(dir.join("dump.rdb.manifest")).expect("manifest");
    std::fs::copy(
        dir.join("dump.rdb.manifest"),
        backup.join("dump.rdb.manifest"),
    )
    .expect("copy manifest");
    for name in manifest.lines().filter_map(|l| l.strip_prefix("file ")) {
        std::fs::copy(dir.join(name), backup.join(name)).expect("copy file");
    }
    let restored = start(1, &backup, &[]);
    let mut r = restored.conn();
    assert_eq!(contents(&mut r, &keys), before);
    assert_eq!(r.get::<_, String>("after").expect("get"), "bgsave");
    drop(r);
    drop(restored);
    let _ = std::fs::remove_dir_all(&backup);
    drop(c);
    drop(server);
    let server = start(2, &dir, &[]);
    let mut c = server.conn();
    assert_eq!(c.get::<_, String>("after").expect("get"), "bgsave");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn shutdown_and_sigterm_save_when_asked_or_when_rules_exist() {
    let dir = temp_dir("shutdown");
    let mut server = start(2, &dir, &[]);
    let mut c = server.conn();
    let _: () = c.set("a", "1").expect("set");
    let _ = redis::cmd("SHUTDOWN").arg("SAVE").query::<()>(&mut c);
    assert!(server.wait_exit(Duration::from_secs(10)));
    drop(server);
    let mut server = start(2, &dir, &["--save", "3600 1"]);
    let mut c = server.conn();
    assert_eq!(c.get::<_, String>("a").expect("get"), "1");
    let _: () = c.set("b", "2").expect("set");
    // SIGTERM with a save rule: saved before exiting.
    unsafe { libc::kill(server.pid() as i32, libc::SIGTERM) };
    assert!(server.wait_exit(Duration::from_secs(10)));
    drop(server);
    let mut server = start(2, &dir, &[]);
    let mut c = server.conn();
    assert_eq!(c.get::<_, String>("b").expect("get"), "2");
    let _: () = c.set("c", "3").expect("set");
    let _ = redis::cmd("SHUTDOWN").arg("NOSAVE").query::<()>(&mut c);
    assert!(server.wait_exit(Duration::from_secs(10)));
    drop(server);
    let server = start(2, &dir, &[]);
    let mut c = server.conn();
    assert_eq!(c.get::<_, Option<String>>("c").expect("get"), None);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_crash_during_a_snapshot_leaves_the_previous_one() {
    let dir = temp_dir("crash");
    let mut server = start(2, &dir, &[]);
    let mut c = server.conn();
    let _: () = c.set("generation", "1").expect("set");
    let _: String = redis::cmd("SAVE").query(&mut c).expect("save");
    // Enough data that a snapshot takes a while, then a kill while it runs.
    let mut pipe = redis::pipe();
    for i in 0..200_000 {
        pipe.cmd("SET")
            .arg(format!("bulk:{i}"))
            .arg("x".repeat(100))
            .ignore();
    }
    let _: () = pipe.query(&mut c).expect("bulk");
    let _: () = c.set("generation", "2").expect("set");
    let _: String = redis::cmd("BGSAVE").query(&mut c).expect("bgsave");
    unsafe { libc::kill(server.pid() as i32, libc::SIGKILL) };
    assert!(server.wait_exit(Duration::from_secs(10)));
    drop(server);
    let server = start(2, &dir, &[]);
    let mut c = server.conn();
    let generation: String = c.get("generation").expect("get");
    let size: i64 = redis::cmd("DBSIZE").query(&mut c).expect("dbsize");
    // Either the old set whole, or (if the snapshot won the race) the new one whole.
    assert!(
        (generation == "1" && size == 1) || (generation == "2" && size == 200_001),
        "generation {generation}, {size} keys"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn failing_saves_refuse_writes_with_misconf() {
    let dir = temp_dir("misconf");
    let gone = dir.join("gone");
    std::fs::create_dir_all(&gone).expect("dir");
    // CONFIG SET dir is a protected config, as in Redis.
    let server = start(
        1,
        &dir,
        &["--save", "3600 1", "--enable-protected-configs", "yes"],
    );
    let mut c = server.conn();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("dir")
        .arg(gone.to_str().expect("path"))
        .query(&mut c)
        .expect("config set dir");
    std::fs::remove_dir_all(&gone).expect("remove");
    // Redis answers a bare "-ERR".
    redis::cmd("SAVE")
        .query::<String>(&mut c)
        .expect_err("fails");
    assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "err");
    let e = c.set::<_, _, ()>("k", "v").expect_err("refused");
    assert!(e.to_string().contains("MISCONF"), "{e}");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("dir")
        .arg(dir.to_str().expect("path"))
        .query(&mut c)
        .expect("config set dir");
    assert_eq!(
        redis::cmd("SAVE").query::<String>(&mut c).expect("save"),
        "OK"
    );
    let _: () = c.set("k", "v").expect("writes again");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rdb_files_move_between_redis_and_shardis() {
    let dir = temp_dir("interop");
    let Some((redis, port)) = redis_server(&dir) else {
        return;
    };
    let mut r = common::connect(port);
    let keys = fill(&mut r, 60);
    let _: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(LIBRARY)
        .query(&mut r)
        .expect("function load");
    let from_redis = contents(&mut r, &keys);
    let redis_digest: String = redis::cmd("DEBUG")
        .arg("DIGEST")
        .query(&mut r)
        .expect("digest");
    let redis_values: Vec<String> = redis::cmd("DEBUG")
        .arg("DIGEST-VALUE")
        .arg(&keys)
        .query(&mut r)
        .expect("digest-value");
    let _: String = redis::cmd("SAVE").query(&mut r).expect("redis save");
    drop(redis);
    // Redis → Shardis: the dump.rdb loads (into two shards), with Redis's digests.
    let server = start(2, &dir, &["--enable-debug-command", "yes"]);
    let mut c = server.conn();
    assert_eq!(contents(&mut c, &keys), from_redis);
    let digest: String = redis::cmd("DEBUG")
        .arg("DIGEST")
        .query(&mut c)
        .expect("digest");
    assert_eq!(digest, redis_digest);
    let values: Vec<String> = redis::cmd("DEBUG")
        .arg("DIGEST-VALUE")
        .arg(&keys)
        .query(&mut c)
        .expect("digest-value");
    assert_eq!(values, redis_values);
    // DEBUG RELOAD keeps the data set.
    let _: String = redis::cmd("DEBUG")
        .arg("RELOAD")
        .query(&mut c)
        .expect("reload");
    let after: String = redis::cmd("DEBUG")
        .arg("DIGEST")
        .query(&mut c)
        .expect("digest");
    assert_eq!(after, redis_digest);
    // Redis's function library came with the file, and DEBUG RELOAD keeps it.
    assert_library(&mut c, "loaded from Redis, after DEBUG RELOAD");
    // Shardis → Redis: a one-shard snapshot file is a dump.rdb Redis loads.
    let out = temp_dir("interop-out");
    let server1 = start(1, &out, &[]);
    let mut c1 = server1.conn();
    let keys = fill(&mut c1, 60);
    let _: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(LIBRARY)
        .query(&mut c1)
        .expect("function load");
    let ours = contents(&mut c1, &keys);
    let _: String = redis::cmd("SAVE").query(&mut c1).expect("save");
    let redis_dir = temp_dir("interop-redis");
    std::fs::copy(out.join("dump.rdb.1.0-of-1"), redis_dir.join("dump.rdb")).expect("copy");
    let Some((redis, port)) = redis_server(&redis_dir) else {
        return;
    };
    let mut r = common::connect(port);
    assert_eq!(contents(&mut r, &keys), ours);
    assert_library(&mut r, "Shardis's file loaded by Redis");
    drop(redis);
    for d in [dir, redis_dir, out] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// DEBUG RELOAD NOFLUSH loads the snapshot over what is in memory: a library still loaded is
/// an error (Redis's "Error trying to load the RDB dump") unless MERGE lets the file's
/// replace it; without NOFLUSH the data set is emptied first.
#[test]
fn debug_reload_noflush_merges_libraries_only_with_merge() {
    let dir = temp_dir("reload-noflush");
    let server = start(2, &dir, &["--enable-debug-command", "yes"]);
    let mut c = server.conn();
    let _: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(LIBRARY)
        .query(&mut c)
        .expect("function load");
    let _: () = redis::cmd("SET")
        .arg("x")
        .arg(1)
        .query(&mut c)
        .expect("set");
    let debug_reload = |c: &mut redis::Connection, opts: &[&str]| {
        redis::cmd("DEBUG")
            .arg("RELOAD")
            .arg(opts)
            .query::<String>(c)
    };
    let e = debug_reload(&mut c, &["NOFLUSH"]).expect_err("a library already loaded");
    assert!(
        e.to_string().contains("Error trying to load the RDB dump"),
        "{e}"
    );
    for opts in [
        &["NOFLUSH", "MERGE"][..],
        &["MERGE"],
        &[],
        &["NOSAVE", "NOFLUSH", "MERGE"],
    ] {
        assert_eq!(
            debug_reload(&mut c, opts).expect("reload"),
            "OK",
            "{opts:?}"
        );
        assert_library(&mut c, &format!("after DEBUG RELOAD {opts:?}"));
        let x: i64 = redis::cmd("GET").arg("x").query(&mut c).expect("get");
        assert_eq!(x, 1);
    }
    let _ = std::fs::remove_dir_all(dir);
}
