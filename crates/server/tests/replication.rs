//! Replication: a Shardis replica (2 shards) following Debian's redis-server 7.0 as its
//! primary (skipped, saying so, without it): full sync, the command stream under a write
//! load of every type (multi-key commands over both shards, MULTI/EXEC, scripts, db 1),
//! a dropped link resumed with a partial resync, -READONLY, REPLICAOF NO ONE; and a Redis
//! replica of the Shardis replica (chaining).

mod common;

use std::time::{Duration, Instant};

use common::real_redis::{redis_server, redis_server_with};
use common::replication::{
    assert_same, fill, info_of, middle_replica_of, number, temp_dir, wait_in_sync, wait_online,
    write_load,
};
use common::Server;

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
    // The master client is in CLIENT LIST with flags M, as Redis lists it (Redis: S).
    common::replication::assert_links_listed(&mut primary, &mut r);

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

#[test]
fn a_shardis_replica_of_redis_serves_a_redis_replica_of_its_own() {
    let dir = temp_dir("chain-redis");
    let (top_dir, sub_dir) = (dir.join("top"), dir.join("sub"));
    for d in [&top_dir, &sub_dir] {
        std::fs::create_dir_all(d).expect("dir");
    }
    let Some((_top, top_port)) = redis_server(&top_dir) else {
        return;
    };
    let mut p = common::connect(top_port);
    fill(&mut p);
    let middle = middle_replica_of(top_port);
    let mut m = middle.conn();
    wait_in_sync(&mut p, &mut m);
    let Some((_sub, sub_port)) = redis_server_with(
        &sub_dir,
        &["--replicaof", "127.0.0.1", &middle.port.to_string()],
    ) else {
        return;
    };
    let mut r = common::connect(sub_port);
    for round in 0..2 {
        write_load(&mut p, round);
    }
    // The Redis replica has the Redis primary's history, forwarded as it came.
    wait_in_sync(&mut p, &mut r);
    assert_same(&mut p, &mut r);
    assert_eq!(
        info_of(&mut r, "master_replid"),
        info_of(&mut p, "master_replid")
    );
    wait_online(&mut m, 1);
    // Its dropped link continues from the middle's backlog.
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("master")
        .query(&mut r)
        .expect("CLIENT KILL");
    assert_eq!(killed, 1);
    write_load(&mut p, 2);
    wait_in_sync(&mut p, &mut r);
    assert_same(&mut p, &mut r);
    assert_eq!(number(&mut m, "sync_partial_ok"), 1);
    assert_eq!(number(&mut m, "sync_full"), 1);
    let _ = std::fs::remove_dir_all(&dir);
}
