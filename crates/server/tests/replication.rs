//! Replication: a Shardis replica (2 shards) following Debian's redis-server 7.0 as its
//! primary (skipped, saying so, without it): full sync, the command stream under a write
//! load of every type (multi-key commands over both shards, MULTI/EXEC, scripts, db 1),
//! a dropped link resumed with a partial resync, -READONLY, REPLICAOF NO ONE.

mod common;

use std::time::{Duration, Instant};

use common::real_redis::redis_server;
use common::Server;
use redis::Connection;

fn info_of(c: &mut Connection, field: &str) -> Option<String> {
    let info: String = redis::cmd("INFO").arg("all").query(c).ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
}

fn number(c: &mut Connection, field: &str) -> i64 {
    info_of(c, field)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("INFO {field}"))
}

/// Waits until the replica is up and has applied everything the primary wrote.
fn wait_in_sync(primary: &mut Connection, replica: &mut Connection) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let target = number(primary, "master_repl_offset");
        let up = info_of(replica, "master_link_status").as_deref() == Some("up");
        if up && number(replica, "slave_repl_offset") == target {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "replica not in sync: link {:?}, offset {} of {target}",
            info_of(replica, "master_link_status"),
            number(replica, "master_repl_offset")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn digest(c: &mut Connection) -> String {
    redis::cmd("DEBUG")
        .arg("DIGEST")
        .query(c)
        .expect("DEBUG DIGEST")
}

/// Both data sets are the same: every database's size, then Redis's digest of all of them.
fn assert_same(primary: &mut Connection, replica: &mut Connection) {
    for db in 0..2 {
        let p: i64 = redis::cmd("SELECT")
            .arg(db)
            .query::<()>(primary)
            .map_or(-1, |()| {
                redis::cmd("DBSIZE").query(primary).expect("DBSIZE")
            });
        let r: i64 = redis::cmd("SELECT")
            .arg(db)
            .query::<()>(replica)
            .map_or(-1, |()| {
                redis::cmd("DBSIZE").query(replica).expect("DBSIZE")
            });
        assert_eq!(p, r, "DBSIZE of db {db}");
    }
    let _: () = redis::cmd("SELECT").arg(0).query(primary).expect("SELECT");
    let _: () = redis::cmd("SELECT").arg(0).query(replica).expect("SELECT");
    assert_eq!(digest(primary), digest(replica), "DEBUG DIGEST");
}

/// Data of every type, in two databases, some of it large enough for the general encodings.
fn fill(c: &mut Connection) {
    let mut p = redis::pipe();
    for i in 0..300 {
        p.cmd("SET")
            .arg(format!("str:{i}"))
            .arg(format!("value-{i}"));
        p.cmd("SET").arg(format!("int:{i}")).arg(i);
        p.cmd("RPUSH").arg("list:big").arg(format!("item-{i}"));
        p.cmd("HSET")
            .arg("hash:big")
            .arg(format!("f{i}"))
            .arg(format!("v{i}"));
        p.cmd("SADD").arg("set:big").arg(format!("m{i}"));
        p.cmd("SADD").arg("set:ints").arg(i);
        p.cmd("ZADD")
            .arg("zset:big")
            .arg(i as f64 * 1.5)
            .arg(format!("z{i}"));
        p.cmd("XADD").arg("stream").arg("*").arg("n").arg(i);
        p.cmd("PFADD").arg("hll").arg(format!("e{i}"));
    }
    p.cmd("RPUSH").arg("list:small").arg("a").arg("b");
    p.cmd("HSET").arg("hash:small").arg("a").arg("1");
    p.cmd("SADD").arg("set:small").arg("a").arg("b");
    p.cmd("ZADD").arg("zset:small").arg(1).arg("a");
    p.cmd("GEOADD")
        .arg("geo")
        .arg(13.361389)
        .arg(38.115556)
        .arg("Palermo");
    p.cmd("SETBIT").arg("bits").arg(1000).arg(1);
    p.cmd("SET").arg("big:string").arg("x".repeat(100_000));
    p.cmd("SET").arg("ttl").arg("v").arg("EX").arg(1000);
    p.cmd("XGROUP")
        .arg("CREATE")
        .arg("stream")
        .arg("g")
        .arg("0");
    p.cmd("XREADGROUP")
        .arg("GROUP")
        .arg("g")
        .arg("c")
        .arg("COUNT")
        .arg(5)
        .arg("STREAMS")
        .arg("stream")
        .arg(">");
    p.cmd("SELECT").arg(1);
    p.cmd("SET").arg("in-db1").arg("1");
    p.cmd("HSET").arg("h1").arg("f").arg("v");
    p.cmd("SELECT").arg(0);
    p.query::<()>(c).expect("fill");
}

/// A write load of every type: single keys on both shards, commands over several shards,
/// transactions, a script, expiries, deletions, another database.
fn write_load(c: &mut Connection, round: usize) {
    let mut p = redis::pipe();
    for i in 0..200 {
        let n = round * 1000 + i;
        p.cmd("SET").arg(format!("k:{n}")).arg(n);
        p.cmd("INCR").arg(format!("int:{}", i % 50));
        p.cmd("INCRBYFLOAT").arg("float").arg(0.5);
        p.cmd("LPUSH").arg("list:big").arg(n);
        p.cmd("RPOP").arg("list:small");
        p.cmd("HINCRBY")
            .arg("hash:counters")
            .arg(format!("f{}", i % 20))
            .arg(1);
        p.cmd("SADD").arg("set:big").arg(format!("new{n}"));
        p.cmd("SPOP").arg("set:ints");
        p.cmd("ZINCRBY")
            .arg("zset:big")
            .arg(2)
            .arg(format!("z{}", i % 30));
        p.cmd("XADD").arg("stream").arg("*").arg("n").arg(n);
        p.cmd("PFADD").arg("hll").arg(format!("x{n}"));
        p.cmd("EXPIRE").arg(format!("str:{}", i)).arg(5000);
        p.cmd("DEL").arg(format!("str:{}", 299 - i));
        p.cmd("MSET")
            .arg(format!("a:{n}"))
            .arg(1)
            .arg(format!("b:{n}"))
            .arg(2)
            .arg(format!("c:{n}"))
            .arg(3);
        if i % 10 == 0 {
            p.cmd("SUNIONSTORE")
                .arg(format!("union:{n}"))
                .arg("set:small")
                .arg("set:big");
            p.cmd("RENAME")
                .arg(format!("k:{n}"))
                .arg(format!("renamed:{n}"));
            p.cmd("MULTI");
            p.cmd("INCR").arg("tx:a");
            p.cmd("INCR").arg("tx:b");
            p.cmd("LMOVE")
                .arg("list:big")
                .arg("tx:list")
                .arg("LEFT")
                .arg("RIGHT");
            p.cmd("EXEC");
            p.cmd("EVAL")
                .arg("redis.call('INCR', KEYS[1]); return redis.call('SET', KEYS[2], ARGV[1])")
                .arg(2)
                .arg("script:a")
                .arg("script:b")
                .arg(n);
            p.cmd("SELECT").arg(1);
            p.cmd("INCR").arg("in-db1:counter");
            p.cmd("SELECT").arg(0);
        }
    }
    p.query::<()>(c).expect("write load");
}

#[test]
fn a_shardis_replica_follows_a_redis_primary() {
    let dir = std::env::temp_dir().join(format!("shardis-repl-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let Some((_redis, redis_port)) = redis_server(&dir) else {
        return;
    };
    let mut primary = common::connect(redis_port);
    fill(&mut primary);

    let replica = Server::start(2, &["--enable-debug-command", "yes"]);
    let mut r = replica.conn();
    // A primary with no replicas.
    assert_eq!(info_of(&mut r, "role").as_deref(), Some("master"));
    assert_eq!(info_of(&mut r, "connected_slaves").as_deref(), Some("0"));
    assert_eq!(
        info_of(&mut r, "master_replid").map(|id| id.len()),
        Some(40)
    );
    let role: redis::Value = redis::cmd("ROLE").query(&mut r).expect("ROLE");
    assert_eq!(
        role,
        redis::Value::Array(vec![
            redis::Value::BulkString(b"master".to_vec()),
            redis::Value::Int(0),
            redis::Value::Array(vec![]),
        ])
    );

    let ok: String = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(redis_port)
        .query(&mut r)
        .expect("REPLICAOF");
    assert_eq!(ok, "OK");
    let again: String = redis::cmd("SLAVEOF")
        .arg("127.0.0.1")
        .arg(redis_port)
        .query(&mut r)
        .expect("SLAVEOF");
    assert_eq!(again, "OK Already connected to specified master");
    let bad = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(70000)
        .query::<String>(&mut r)
        .expect_err("bad port");
    assert!(bad.to_string().contains("Invalid master port"), "{bad}");

    // Full sync.
    wait_in_sync(&mut primary, &mut r);
    assert_same(&mut primary, &mut r);
    assert_eq!(info_of(&mut r, "role").as_deref(), Some("slave"));
    assert_eq!(info_of(&mut r, "master_port"), Some(redis_port.to_string()));
    assert_eq!(
        info_of(&mut r, "master_replid"),
        info_of(&mut primary, "master_replid")
    );
    assert_eq!(info_of(&mut r, "slave_read_only").as_deref(), Some("1"));
    let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut r).expect("ROLE");
    assert_eq!(role[0], redis::Value::BulkString(b"slave".to_vec()));
    assert_eq!(role[3], redis::Value::BulkString(b"connected".to_vec()));
    let config: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("replicaof")
        .query(&mut r)
        .expect("CONFIG GET");
    assert_eq!(config[1], format!("127.0.0.1 {redis_port}"));

    // A client cannot write; reads work.
    let err = redis::cmd("SET")
        .arg("x")
        .arg("1")
        .query::<()>(&mut r)
        .expect_err("read-only");
    assert_eq!(err.code(), Some("READONLY"));
    assert_eq!(
        err.detail(),
        Some("You can't write against a read only replica.")
    );
    let v: String = redis::cmd("GET").arg("str:5").query(&mut r).expect("GET");
    assert_eq!(v, "value-5");
    let err = redis::cmd("EVAL")
        .arg("return redis.call('SET', KEYS[1], '1')")
        .arg(1)
        .arg("x")
        .query::<()>(&mut r)
        .expect_err("a script's write");
    assert_eq!(err.code(), Some("READONLY"), "{err}");
    let err = redis::cmd("EVAL")
        .arg("#!lua\nreturn 1")
        .arg(0)
        .query::<()>(&mut r)
        .expect_err("a script that may write");
    assert_eq!(err.code(), Some("READONLY"), "{err}");

    // The command stream.
    for round in 0..3 {
        write_load(&mut primary, round);
    }
    wait_in_sync(&mut primary, &mut r);
    assert_same(&mut primary, &mut r);

    // A dropped link resumes with a partial resync.
    let partial = number(&mut primary, "sync_partial_ok");
    let full = number(&mut primary, "sync_full");
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("replica")
        .query(&mut primary)
        .expect("CLIENT KILL");
    assert_eq!(killed, 1);
    write_load(&mut primary, 7);
    wait_in_sync(&mut primary, &mut r);
    assert_eq!(number(&mut primary, "sync_partial_ok"), partial + 1);
    assert_eq!(number(&mut primary, "sync_full"), full);
    assert_same(&mut primary, &mut r);

    // The primary asks for an ACK (WAIT): the replica's offset comes back.
    let acked: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(5000)
        .query(&mut primary)
        .expect("WAIT");
    assert_eq!(acked, 1);

    // Promoted: writable, a primary again, the data kept.
    let ok: String = redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query(&mut r)
        .expect("REPLICAOF NO ONE");
    assert_eq!(ok, "OK");
    let _: () = redis::cmd("SET")
        .arg("x")
        .arg("1")
        .query(&mut r)
        .expect("writable");
    assert_eq!(info_of(&mut r, "role").as_deref(), Some("master"));
    let v: String = redis::cmd("GET").arg("str:5").query(&mut r).expect("GET");
    assert_eq!(v, "value-5");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_replica_settings_are_read_from_the_file_and_checked() {
    let dir = std::env::temp_dir().join(format!("shardis-repl-conf-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let Some((_redis, redis_port)) = redis_server(&dir) else {
        return;
    };
    let mut primary = common::connect(redis_port);
    // The primary deletes expired keys only when they are read: the replica must keep them.
    let _: () = redis::cmd("DEBUG")
        .arg("SET-ACTIVE-EXPIRE")
        .arg(0)
        .query(&mut primary)
        .expect("DEBUG");
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut primary)
        .expect("SET");
    let _: () = redis::cmd("SET")
        .arg("gone")
        .arg("v")
        .arg("PX")
        .arg(300)
        .query(&mut primary)
        .expect("SET");
    let replica = Server::start(
        2,
        &[
            "--replicaof",
            "127.0.0.1",
            &redis_port.to_string(),
            "--replica-read-only",
            "no",
        ],
    );
    let mut r = replica.conn();
    wait_in_sync(&mut primary, &mut r);
    let v: String = redis::cmd("GET").arg("k").query(&mut r).expect("GET");
    assert_eq!(v, "v");
    // An expired key reads as missing on the replica but waits there for the primary's DEL.
    std::thread::sleep(Duration::from_millis(400));
    let gone: Option<String> = redis::cmd("GET").arg("gone").query(&mut r).expect("GET");
    assert_eq!(gone, None);
    std::thread::sleep(Duration::from_millis(300));
    let size: i64 = redis::cmd("DBSIZE").query(&mut r).expect("DBSIZE");
    assert_eq!(size, 2);
    let gone: Option<String> = redis::cmd("GET")
        .arg("gone")
        .query(&mut primary)
        .expect("GET");
    assert_eq!(gone, None);
    wait_in_sync(&mut primary, &mut r);
    let size: i64 = redis::cmd("DBSIZE").query(&mut r).expect("DBSIZE");
    assert_eq!(size, 1);
    // replica-read-only no: a client may write to the replica.
    let _: () = redis::cmd("SET")
        .arg("local")
        .arg("1")
        .query(&mut r)
        .expect("SET");
    // Not a setting CONFIG SET changes, as in Redis.
    assert!(redis::cmd("CONFIG")
        .arg("SET")
        .arg("replicaof")
        .arg("no one")
        .query::<()>(&mut r)
        .is_err());
    // The link down and replica-serve-stale-data no: -MASTERDOWN, except for `stale` ones.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("replica-serve-stale-data")
        .arg("no")
        .query(&mut r)
        .expect("CONFIG SET");
    drop(primary);
    drop(_redis);
    let deadline = Instant::now() + Duration::from_secs(10);
    while info_of(&mut r, "master_link_status").as_deref() != Some("down") {
        assert!(Instant::now() < deadline, "the link did not go down");
        std::thread::sleep(Duration::from_millis(50));
    }
    let err = redis::cmd("GET")
        .arg("k")
        .query::<String>(&mut r)
        .expect_err("stale");
    assert_eq!(err.code(), Some("MASTERDOWN"), "{err}");
    assert!(info_of(&mut r, "master_link_down_since_seconds").is_some());
    let _ = std::fs::remove_dir_all(&dir);
}
