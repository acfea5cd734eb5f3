//! Replication, the primary's side: Debian's redis-server 7.0 (skipped, saying so, without
//! it) and a Shardis server as replicas of a Shardis primary with 2 shards: full sync
//! (diskless and through a file), the merged command stream under a write load of every type
//! (commands over both shards, MULTI/EXEC, scripts, db 1), a killed link resumed with a
//! partial resync, WAIT, `min-replicas-to-write`, INFO and ROLE.

mod common;

use std::time::{Duration, Instant};

use common::real_redis::redis_server_with;
use common::replication::{assert_same, fill, info_of, number, wait_in_sync, write_load};
use common::Server;
use redis::Connection;

fn primary() -> Server {
    Server::start(
        2,
        &[
            "--enable-debug-command",
            "yes",
            "--repl-diskless-sync-delay",
            "0",
        ],
    )
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("shardis-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

/// Waits until the primary lists `n` replicas online.
fn wait_online(p: &mut Connection, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let online = (0..n)
            .filter(|i| {
                info_of(p, &format!("slave{i}")).is_some_and(|l| l.contains("state=online"))
            })
            .count();
        if online == n {
            return;
        }
        assert!(Instant::now() < deadline, "replicas not online");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_redis_replica_follows_a_shardis_primary() {
    let dir = temp_dir("primary");
    let shardis = primary();
    let mut p = shardis.conn();
    fill(&mut p);
    let Some((_redis, redis_port)) = redis_server_with(
        &dir,
        &["--replicaof", "127.0.0.1", &shardis.port.to_string()],
    ) else {
        return;
    };
    let mut r = common::connect(redis_port);

    // Full sync (diskless: Redis 7.0 says capa eof).
    wait_in_sync(&mut p, &mut r);
    assert_same(&mut p, &mut r);
    wait_online(&mut p, 1);
    assert_eq!(info_of(&mut p, "connected_slaves").as_deref(), Some("1"));
    let line = info_of(&mut p, "slave0").expect("slave0");
    assert!(
        line.starts_with(&format!(
            "ip=127.0.0.1,port={redis_port},state=online,offset="
        )),
        "{line}"
    );
    assert_eq!(number(&mut p, "sync_full"), 1);
    assert_eq!(info_of(&mut p, "repl_backlog_active").as_deref(), Some("1"));
    assert_eq!(
        info_of(&mut r, "master_replid"),
        info_of(&mut p, "master_replid")
    );
    let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut p).expect("ROLE");
    assert_eq!(role[0], redis::Value::BulkString(b"master".to_vec()));
    let redis::Value::Array(replicas) = &role[2] else {
        panic!("ROLE: {role:?}")
    };
    assert_eq!(replicas.len(), 1);

    // The merged stream of both shards.
    for round in 0..3 {
        write_load(&mut p, round);
    }
    wait_in_sync(&mut p, &mut r);
    assert_same(&mut p, &mut r);

    // WAIT counts the replica's acknowledgement of everything written before it.
    write_load(&mut p, 4);
    let acked: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(10000)
        .query(&mut p)
        .expect("WAIT");
    assert_eq!(acked, 1);
    let target = number(&mut p, "master_repl_offset");
    assert!(number(&mut r, "slave_repl_offset") >= target - 64);
    // The target is the stream's position at the WAIT, past the first WAIT's GETACK, so the
    // count needs the replica's answer to a new GETACK: allow for a loaded machine.
    let none: i64 = redis::cmd("WAIT")
        .arg(2)
        .arg(1000)
        .query(&mut p)
        .expect("WAIT");
    assert_eq!(none, 1);

    // A killed link resumes with a partial resync.
    let full = number(&mut p, "sync_full");
    let partial = number(&mut p, "sync_partial_ok");
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("replica")
        .query(&mut p)
        .expect("CLIENT KILL");
    assert_eq!(killed, 1);
    write_load(&mut p, 7);
    let deadline = Instant::now() + Duration::from_secs(30);
    while number(&mut p, "sync_partial_ok") == partial {
        assert!(Instant::now() < deadline, "no partial resync");
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_in_sync(&mut p, &mut r);
    assert_eq!(number(&mut p, "sync_partial_ok"), partial + 1);
    assert_eq!(number(&mut p, "sync_full"), full);
    assert_same(&mut p, &mut r);

    // min-replicas-to-write: refused below the count, as Redis.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("min-replicas-to-write")
        .arg(2)
        .query(&mut p)
        .expect("CONFIG SET");
    let err = redis::cmd("SET")
        .arg("x")
        .arg(1)
        .query::<()>(&mut p)
        .expect_err("NOREPLICAS");
    assert_eq!(err.code(), Some("NOREPLICAS"), "{err}");
    assert_eq!(err.detail(), Some("Not enough good replicas to write."));
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("min-replicas-to-write")
        .arg(1)
        .query(&mut p)
        .expect("CONFIG SET");
    let _: () = redis::cmd("SET")
        .arg("x")
        .arg(1)
        .query(&mut p)
        .expect("one good replica");

    // FLUSHALL and SWAPDB run on every shard and reach the replica once each.
    let _: () = redis::cmd("SWAPDB")
        .arg(0)
        .arg(1)
        .query(&mut p)
        .expect("SWAPDB");
    wait_in_sync(&mut p, &mut r);
    assert_same(&mut p, &mut r);
    let _: () = redis::cmd("FLUSHALL").query(&mut p).expect("FLUSHALL");
    let _: () = redis::cmd("SET")
        .arg("after")
        .arg(1)
        .query(&mut p)
        .expect("SET");
    wait_in_sync(&mut p, &mut r);
    assert_same(&mut p, &mut r);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn replicas_sync_through_a_file_and_shardis_follows_shardis() {
    let dir = temp_dir("primary-disk");
    let shardis = primary();
    let mut p = shardis.conn();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("repl-diskless-sync")
        .arg("no")
        .query(&mut p)
        .expect("CONFIG SET");
    fill(&mut p);
    // A Shardis replica (3 shards) of the 2-shard primary.
    let follower = Server::start(3, &["--enable-debug-command", "yes"]);
    let mut f = follower.conn();
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(shardis.port)
        .query(&mut f)
        .expect("REPLICAOF");
    write_load(&mut p, 0);
    wait_in_sync(&mut p, &mut f);
    assert_same(&mut p, &mut f);
    if let Some((_redis, redis_port)) = redis_server_with(
        &dir,
        &["--replicaof", "127.0.0.1", &shardis.port.to_string()],
    ) {
        let mut r = common::connect(redis_port);
        write_load(&mut p, 1);
        wait_in_sync(&mut p, &mut r);
        wait_in_sync(&mut p, &mut f);
        assert_same(&mut p, &mut r);
        assert_same(&mut p, &mut f);
        wait_online(&mut p, 2);
        let acked: i64 = redis::cmd("WAIT")
            .arg(2)
            .arg(10000)
            .query(&mut p)
            .expect("WAIT");
        assert_eq!(acked, 2);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
