//! Replication, the primary's side: Debian's redis-server 7.0 (skipped, saying so, without
//! it) and a Shardis server as replicas of a Shardis primary with 2 shards: full sync
//! (diskless and through a file), the merged command stream under a write load of every type
//! (commands over both shards, MULTI/EXEC, scripts, db 1), a killed link resumed with a
//! partial resync, WAIT, `min-replicas-to-write`, INFO and ROLE; expiry sent as absolute
//! times, PUBLISH and FUNCTION propagated; Shardis replicas of 2 and 1 shards under load,
//! one killed with SIGKILL and restarted.

mod common;

use std::time::{Duration, Instant};

use common::real_redis::redis_server_with;
use common::replication::{
    assert_links_listed, assert_same, assert_same_expiry, call_rf, expiry_load, fill, hears,
    info_of, kill_type, middle_replica_of, number, primary_with, temp_dir, wait_in_sync,
    wait_online, wait_replicas, write_load, RawReplica, LIBRARY,
};
use common::Server;
use redis::Connection;

fn primary() -> Server {
    primary_with(&[])
}

/// Runs rounds `rounds` of the write load from another connection while `during` runs.
fn under_load<T>(server: &Server, rounds: std::ops::Range<usize>, during: impl FnOnce() -> T) -> T {
    let client = server.client();
    let load = std::thread::spawn(move || {
        let mut c = client.get_connection().expect("connection");
        for round in rounds {
            write_load(&mut c, round);
        }
    });
    let out = during();
    load.join().expect("write load");
    out
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
    // The link is in CLIENT LIST with flags S, as Redis lists it (Redis: M, on its side).
    assert_links_listed(&mut p, &mut r);
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

    // Expiry reaches the replica as absolute times: the same millisecond on both.
    expiry_load(&mut p);
    wait_in_sync(&mut p, &mut r);
    assert_same_expiry(&mut p, &mut r);
    assert_same(&mut p, &mut r);

    // PUBLISH reaches the replica's subscribers; FUNCTION LOAD and DELETE its libraries.
    hears(redis_port, "hello", || {
        let _: i64 = redis::cmd("PUBLISH")
            .arg("ch")
            .arg("hello")
            .query(&mut shardis.conn())
            .expect("PUBLISH");
    });
    let _: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(LIBRARY)
        .query(&mut p)
        .expect("FUNCTION LOAD");
    wait_in_sync(&mut p, &mut r);
    assert_eq!(call_rf(&mut r).expect("FCALL_RO on the replica"), 7);
    let _: () = redis::cmd("FUNCTION")
        .arg("DELETE")
        .arg("replib")
        .query(&mut p)
        .expect("FUNCTION DELETE");
    wait_in_sync(&mut p, &mut r);
    assert!(call_rf(&mut r).is_err());

    // WAIT counts the replicas that acknowledged the client's own last write.
    write_load(&mut p, 4);
    let acked: i64 = wait_replicas(&mut p, 1, 10000);
    assert_eq!(acked, 1);
    let target = number(&mut p, "master_repl_offset");
    assert!(number(&mut r, "slave_repl_offset") >= target - 64);
    // With the replica stopped, another client's write moves the stream on: clients that
    // wrote nothing since their last acknowledged write (or nothing at all) still count the
    // replica, as in Redis; the writer does not.
    unsafe { libc::kill(_redis.pid() as i32, libc::SIGSTOP) };
    let mut other = shardis.conn();
    let _: () = redis::cmd("SET")
        .arg("late")
        .arg(1)
        .query(&mut other)
        .expect("SET");
    let wait = |c: &mut Connection| wait_replicas(c, 1, 200);
    let (mine, fresh, writer) = (wait(&mut p), wait(&mut shardis.conn()), wait(&mut other));
    unsafe { libc::kill(_redis.pid() as i32, libc::SIGCONT) };
    assert_eq!((mine, fresh, writer), (1, 1, 0));
    let none: i64 = wait_replicas(&mut p, 2, 100);
    assert_eq!(none, 1);
    wait_in_sync(&mut p, &mut r);

    // A killed link resumes with a partial resync.
    let full = number(&mut p, "sync_full");
    let partial = number(&mut p, "sync_partial_ok");
    let killed: i64 = kill_type(&mut p, "replica");
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
    // A transaction holding writes, and scripts that write, as Redis refuses them.
    let mut tx = shardis.conn();
    let _: () = redis::cmd("MULTI").query(&mut tx).expect("MULTI");
    let queued = redis::cmd("SET").arg("x").arg(1).query::<()>(&mut tx);
    assert_eq!(queued.expect_err("queued").code(), Some("NOREPLICAS"));
    let aborted = redis::cmd("EXEC").query::<()>(&mut tx).expect_err("EXEC");
    assert_eq!(aborted.code(), Some("EXECABORT"), "{aborted}");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("min-replicas-to-write")
        .arg(1)
        .query(&mut p)
        .expect("CONFIG SET");
    let _: () = redis::cmd("MULTI").query(&mut tx).expect("MULTI");
    let _: () = redis::cmd("SET")
        .arg("x")
        .arg(1)
        .query(&mut tx)
        .expect("queued");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("min-replicas-to-write")
        .arg(2)
        .query(&mut p)
        .expect("CONFIG SET");
    let aborted = redis::cmd("EXEC").query::<()>(&mut tx).expect_err("EXEC");
    assert_eq!(aborted.code(), Some("EXECABORT"), "{aborted}");
    assert_eq!(
        aborted.detail(),
        Some("Transaction discarded because of: NOREPLICAS Not enough good replicas to write.")
    );
    let flagged = redis::cmd("EVAL")
        .arg("#!lua\nreturn redis.call('SET', KEYS[1], 1)")
        .arg(1)
        .arg("x")
        .query::<()>(&mut p)
        .expect_err("flagged script");
    assert_eq!(flagged.code(), Some("NOREPLICAS"), "{flagged}");
    let plain = redis::cmd("EVAL")
        .arg("return redis.call('SET', KEYS[1], 1)")
        .arg(1)
        .arg("x")
        .query::<()>(&mut p)
        .expect_err("script's write");
    assert_eq!(plain.code(), Some("NOREPLICAS"), "{plain}");
    let read: Option<String> = redis::cmd("EVAL")
        .arg("return redis.call('GET', KEYS[1])")
        .arg(1)
        .arg("nothing")
        .query(&mut p)
        .expect("a script that only reads");
    assert_eq!(read, None);
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
        let acked: i64 = wait_replicas(&mut p, 2, 10000);
        assert_eq!(acked, 2);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn shardis_replicas_of_2_and_1_shards_under_load_resume_and_survive_sigkill() {
    // A backlog large enough for the load that runs while the links are down.
    let shardis = primary_with(&["--repl-backlog-size", "64mb"]);
    let mut p = shardis.conn();
    fill(&mut p);
    expiry_load(&mut p);
    let port = shardis.port.to_string();
    let follow = [
        "--enable-debug-command",
        "yes",
        "--replicaof",
        "127.0.0.1",
        port.as_str(),
    ];
    // A replica of 2 shards from the command line and one of 1 shard by REPLICAOF, both
    // syncing while the write load runs.
    let (two, one) = under_load(&shardis, 0..3, || {
        let two = Server::start(2, &follow);
        let one = Server::start(1, &["--enable-debug-command", "yes"]);
        let _: () = redis::cmd("REPLICAOF")
            .arg("127.0.0.1")
            .arg(shardis.port)
            .query(&mut one.conn())
            .expect("REPLICAOF");
        (two, one)
    });
    let (mut r2, mut r1) = (two.conn(), one.conn());
    for r in [&mut r2, &mut r1] {
        wait_in_sync(&mut p, r);
        assert_same(&mut p, r);
        assert_same_expiry(&mut p, r);
    }
    wait_online(&mut p, 2);
    assert_eq!(number(&mut p, "sync_full"), 2);

    // PUBLISH and FUNCTION LOAD reach Shardis replicas too.
    hears(one.port, "hi", || {
        let _: i64 = redis::cmd("PUBLISH")
            .arg("ch")
            .arg("hi")
            .query(&mut shardis.conn())
            .expect("PUBLISH");
    });
    let _: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(LIBRARY)
        .query(&mut p)
        .expect("FUNCTION LOAD");
    for r in [&mut r2, &mut r1] {
        wait_in_sync(&mut p, r);
        assert_eq!(call_rf(r).expect("FCALL_RO on a replica"), 7);
    }

    // Both links dropped under load: partial resyncs, no full one.
    let full = number(&mut p, "sync_full");
    let partial = number(&mut p, "sync_partial_ok");
    let killed: i64 = kill_type(&mut p, "replica");
    assert_eq!(killed, 2);
    under_load(&shardis, 3..5, || {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut p = shardis.conn();
        while number(&mut p, "sync_partial_ok") < partial + 2 {
            assert!(Instant::now() < deadline, "no partial resyncs");
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    for r in [&mut r2, &mut r1] {
        wait_in_sync(&mut p, r);
        assert_same(&mut p, r);
    }
    assert_eq!(number(&mut p, "sync_partial_ok"), partial + 2);
    assert_eq!(number(&mut p, "sync_full"), full);

    // The 2-shard replica killed with SIGKILL, the load going on, then restarted: it
    // converges (with a full sync: a replica keeps no replication id across restarts).
    let mut two = two;
    unsafe { libc::kill(two.pid() as i32, libc::SIGKILL) };
    assert!(two.wait_exit(Duration::from_secs(30)), "SIGKILL");
    drop(r2);
    write_load(&mut p, 5);
    let restarted = under_load(&shardis, 6..8, || Server::start(2, &follow));
    let mut r2 = restarted.conn();
    for r in [&mut r2, &mut r1] {
        wait_in_sync(&mut p, r);
        assert_same(&mut p, r);
        assert_same_expiry(&mut p, r);
    }
    assert_eq!(call_rf(&mut r2).expect("FCALL_RO after the full sync"), 7);
    assert_eq!(number(&mut p, "sync_full"), full + 1);
    wait_online(&mut p, 2);
    let acked: i64 = wait_replicas(&mut p, 2, 30000);
    assert_eq!(acked, 2);
}

/// WAIT targets the end of the calling client's own last write, as Redis's `woff`: with a
/// replica stopped after it acknowledged a client's writes (one ran on the client's core,
/// one was forwarded to the other shard's), another client's later write does not make the
/// first client's WAIT count the stopped replica out; a new write of its own does. With a
/// Redis 7.0 replica and a Shardis one, each stopped in turn.
#[test]
fn wait_targets_the_clients_own_last_write() {
    let dir = temp_dir("woff");
    let shardis = primary();
    let port = shardis.port.to_string();
    let Some((redis, _)) = redis_server_with(&dir, &["--replicaof", "127.0.0.1", &port]) else {
        return;
    };
    let shardis_replica = Server::start(2, &["--replicaof", "127.0.0.1", &port]);
    let mut p = shardis.conn();
    wait_online(&mut p, 2);
    let set = |c: &mut Connection, key: &str| {
        let _: () = redis::cmd("SET").arg(key).arg(1).query(c).expect("SET");
    };
    let wait = |c: &mut Connection, timeout: u64| -> i64 {
        redis::cmd("WAIT")
            .arg(2)
            .arg(timeout)
            .query(c)
            .expect("WAIT")
    };
    for pid in [redis.pid(), shardis_replica.pid()] {
        let (mut a, mut b, mut c) = (shardis.conn(), shardis.conn(), shardis.conn());
        for shard in 0..2 {
            set(&mut a, &common::key_on("a", shard, 2));
        }
        // Another client's write after a's, acknowledged by both: a's are too.
        set(&mut c, "sync");
        assert_eq!(wait(&mut c, 10_000), 2);
        unsafe { libc::kill(pid as i32, libc::SIGSTOP) };
        for shard in 0..2 {
            set(&mut b, &common::key_on("b", shard, 2));
        }
        // The running replica acknowledges on GETACK; a busy machine may take a while.
        let (mine, theirs) = (wait(&mut a, 1000), wait(&mut b, 1000));
        set(&mut a, &common::key_on("a2", 1, 2));
        let again = wait(&mut a, 1000);
        unsafe { libc::kill(pid as i32, libc::SIGCONT) };
        assert_eq!((mine, theirs, again), (2, 1, 1), "replica pid {pid}");
        assert_eq!(wait(&mut a, 10_000), 2);
        assert_eq!(wait(&mut b, 10_000), 2);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Replicas that arrive during `repl-diskless-sync-delay` share one diskless sync, as in
/// Redis: with a delay of 60 s and `repl-diskless-sync-max-replicas 2`, a Redis 7.0 replica
/// and a Shardis one arriving under a write load are served at once by one sync (two
/// separate syncs would each wait the delay out), and both end equal to the primary. A
/// replica arriving later gets a sync of its own after the delay (set to 1 s by CONFIG SET).
#[test]
fn replicas_arriving_during_the_delay_share_one_diskless_sync() {
    let dir = temp_dir("shared");
    let shardis = primary_with(&[
        "--repl-diskless-sync-delay",
        "60",
        "--repl-diskless-sync-max-replicas",
        "2",
    ]);
    let mut p = shardis.conn();
    fill(&mut p);
    let port = shardis.port.to_string();
    let started = Instant::now();
    let (redis, shardis_replica) = under_load(&shardis, 0..2, || {
        let redis = redis_server_with(&dir, &["--replicaof", "127.0.0.1", &port]);
        let replica = Server::start(
            2,
            &[
                "--enable-debug-command",
                "yes",
                "--replicaof",
                "127.0.0.1",
                &port,
            ],
        );
        (redis, replica)
    });
    let Some((_redis, redis_port)) = redis else {
        return;
    };
    let (mut r, mut s) = (common::connect(redis_port), shardis_replica.conn());
    wait_in_sync(&mut p, &mut r);
    wait_in_sync(&mut p, &mut s);
    assert!(
        started.elapsed() < Duration::from_secs(45),
        "the sync waited its delay out: not shared"
    );
    assert_eq!(number(&mut p, "sync_full"), 2);
    assert_same(&mut p, &mut r);
    assert_same(&mut p, &mut s);
    let max: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("repl-diskless-sync-max-replicas")
        .query(&mut p)
        .expect("CONFIG GET");
    assert_eq!(max[1], "2");

    // A latecomer: a sync of its own.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("repl-diskless-sync-delay")
        .arg(1)
        .query(&mut p)
        .expect("CONFIG SET");
    let late = Server::start(
        1,
        &[
            "--enable-debug-command",
            "yes",
            "--replicaof",
            "127.0.0.1",
            &port,
        ],
    );
    let mut l = late.conn();
    write_load(&mut p, 3);
    wait_in_sync(&mut p, &mut l);
    wait_in_sync(&mut p, &mut r);
    assert_eq!(number(&mut p, "sync_full"), 3);
    assert_same(&mut p, &mut l);
    assert_same(&mut p, &mut r);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `words` as one command on `c`, answered without error.
fn call(c: &mut common::resp::Conn, words: &[&str]) {
    let reply = c.call(words).expect("reply");
    assert!(
        !matches!(reply, common::resp::Value::Error(_)),
        "{words:?}: {reply:?}"
    );
}

#[test]
fn publish_takes_its_place_in_transactions_and_scripts() {
    let shardis = primary();
    let mut stream = RawReplica::connect(shardis.port);
    let mut c = shardis.resp();
    let here = common::core_of(&mut c, 2);
    let other = 1 - here;
    // Each step ends with a write to a shard of the step: the stream keeps each shard's
    // order, not the order of writes to different shards.
    let closing = |c: &mut common::resp::Conn, shard: usize| {
        let end = common::key_on("end", shard, 2);
        call(c, &["SET", &end, "1"]);
        format!("SET {end} 1")
    };
    // A transaction whose keys are on the other core's shard.
    let (a1, a2) = (
        common::key_on("a1", other, 2),
        common::key_on("a2", other, 2),
    );
    for words in [
        vec!["MULTI"],
        vec!["SET", &a1, "1"],
        vec!["PUBLISH", "ch", "m1"],
        vec!["SET", &a2, "2"],
        vec!["EXEC"],
    ] {
        call(&mut c, &words);
    }
    let end = closing(&mut c, other);
    assert_eq!(
        stream.commands_until(&end),
        [
            "MULTI".to_string(),
            format!("SET {a1} 1"),
            "PUBLISH ch m1".into(),
            format!("SET {a2} 2"),
            "EXEC".into(),
            end.clone(),
        ]
    );
    // PUBLISHes alone stay together (logged on this core's shard); one alone needs no MULTI
    // (as Redis 7.0).
    for words in [
        vec!["MULTI"],
        vec!["PUBLISH", "ch", "m2"],
        vec!["SPUBLISH", "ch", "m3"],
        vec!["EXEC"],
        vec!["MULTI"],
        vec!["PUBLISH", "ch", "m4"],
        vec!["EXEC"],
    ] {
        call(&mut c, &words);
    }
    let end = closing(&mut c, here);
    assert_eq!(
        stream.commands_until(&end),
        [
            "MULTI",
            "PUBLISH ch m2",
            "SPUBLISH ch m3",
            "EXEC",
            "PUBLISH ch m4",
            &end
        ]
    );
    // Over both shards: each shard's commands in order, the PUBLISH after its writes.
    let (b0, b1) = (common::key_on("b", 0, 2), common::key_on("b", 1, 2));
    for words in [
        vec!["MULTI"],
        vec!["SET", &b1, "1"],
        vec!["SET", &b0, "1"],
        vec!["PUBLISH", "ch", "m5"],
        vec!["EXEC"],
    ] {
        call(&mut c, &words);
    }
    let end = closing(&mut c, 0);
    assert_eq!(
        stream.commands_until(&end),
        [
            "MULTI".to_string(),
            format!("SET {b0} 1"),
            format!("SET {b1} 1"),
            "PUBLISH ch m5".into(),
            "EXEC".into(),
            end.clone(),
        ]
    );
    // A script's effects, in call order, between MULTI and EXEC; with and without PUBLISH
    // (which makes a script of 2 shards run under the lock of both).
    let script = "redis.call('SET', KEYS[1], 'x') \
                  if ARGV[1] == 'publish' then redis.call('PUBLISH', 'ch', 'm6') end \
                  redis.call('SET', KEYS[2], 'y')";
    // The first run of the publishing script starts optimistically and is abandoned at
    // PUBLISH (its write and the write's undoing reach the replicas as one no-op
    // transaction); from then on it runs locked from the start.
    call(&mut c, &["EVAL", script, "2", "{w}1", "{w}2", "publish"]);
    let end = closing(&mut c, common::shard_of(b"w", 2));
    stream.commands_until(&end);
    for (shard, publish) in [(here, false), (other, false), (here, true), (other, true)] {
        let (t1, t2) = (
            format!("{{{}}}1", common::key_on("t", shard, 2)),
            format!("{{{}}}2", common::key_on("t", shard, 2)),
        );
        let flag = if publish { "publish" } else { "no" };
        call(&mut c, &["EVAL", script, "2", &t1, &t2, flag]);
        let end = closing(&mut c, shard);
        let mut expected = vec!["MULTI".to_string(), format!("SET {t1} x")];
        if publish {
            expected.push("PUBLISH ch m6".into());
        }
        expected.extend([format!("SET {t2} y"), "EXEC".into(), end.clone()]);
        assert_eq!(
            stream.commands_until(&end),
            expected,
            "script on shard {shard}, publish {publish}"
        );
    }
}

#[test]
fn a_redis_replica_hears_a_publish_made_in_a_transaction() {
    let dir = temp_dir("publish-multi");
    let shardis = primary();
    let mut p = shardis.conn();
    let Some((_redis, redis_port)) = redis_server_with(
        &dir,
        &["--replicaof", "127.0.0.1", &shardis.port.to_string()],
    ) else {
        return;
    };
    let mut r = common::connect(redis_port);
    wait_in_sync(&mut p, &mut r);
    hears(redis_port, "in-multi", || {
        let (_, published): ((), i64) = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg("k")
            .arg("v")
            .cmd("PUBLISH")
            .arg("ch")
            .arg("in-multi")
            .query(&mut p)
            .expect("MULTI/EXEC");
        assert_eq!(published, 0);
    });
    wait_in_sync(&mut p, &mut r);
    assert_same(&mut p, &mut r);
}

#[test]
fn a_replica_serves_replicas_of_its_own_with_its_primarys_history() {
    let dir = temp_dir("chain");
    let top = primary();
    let mut p = top.conn();
    fill(&mut p);
    let middle = middle_replica_of(top.port);
    let mut m = middle.conn();
    // A replica serves replicas only while its own link is up, as Redis.
    let unlinked = Server::start(
        1,
        &["--replicaof", "127.0.0.1", &common::free_port().to_string()],
    );
    let err = redis::cmd("PSYNC")
        .arg("?")
        .arg(-1)
        .query::<()>(&mut unlinked.conn())
        .expect_err("no link");
    assert_eq!(err.code(), Some("NOMASTERLINK"));
    assert_eq!(
        err.detail(),
        Some("Can't SYNC while not connected with my master")
    );
    wait_in_sync(&mut p, &mut m);
    // A Shardis replica of the replica, synced while the top primary is written to.
    let sub = Server::start(1, &["--enable-debug-command", "yes"]);
    let mut s = sub.conn();
    under_load(&top, 0..3, || {
        let _: () = redis::cmd("REPLICAOF")
            .arg("127.0.0.1")
            .arg(middle.port)
            .query(&mut sub.conn())
            .expect("REPLICAOF");
        wait_in_sync(&mut m, &mut s);
    });
    wait_in_sync(&mut p, &mut m);
    wait_in_sync(&mut p, &mut s);
    assert_same(&mut p, &mut m);
    assert_same(&mut p, &mut s);
    // One history down the chain: the top primary's id and offsets.
    assert_eq!(
        info_of(&mut s, "master_replid"),
        info_of(&mut p, "master_replid")
    );
    wait_online(&mut m, 1);
    assert_eq!(info_of(&mut m, "connected_slaves").as_deref(), Some("1"));
    assert_eq!(info_of(&mut m, "role").as_deref(), Some("slave"));
    // The replica in the middle still refuses clients' writes.
    let err = redis::cmd("SET")
        .arg("x")
        .arg("1")
        .query::<()>(&mut m)
        .expect_err("read-only");
    assert_eq!(err.code(), Some("READONLY"));
    let mut partial_expected = 0;
    if let Some((_redis, redis_port)) = redis_server_with(
        &dir,
        &["--replicaof", "127.0.0.1", &middle.port.to_string()],
    ) {
        let mut r = common::connect(redis_port);
        write_load(&mut p, 3);
        wait_in_sync(&mut p, &mut r);
        assert_same(&mut p, &mut r);
        assert_eq!(
            info_of(&mut r, "master_replid"),
            info_of(&mut p, "master_replid")
        );
        wait_online(&mut m, 2);
        partial_expected = 1;
        // A dropped link of the Redis replica resumes from the middle's backlog too.
        assert_eq!(number(&mut m, "sync_partial_ok"), 0);
        under_load(&top, 4..5, || {
            let killed: i64 = redis::cmd("CLIENT")
                .arg("KILL")
                .arg("TYPE")
                .arg("master")
                .query(&mut r)
                .expect("CLIENT KILL");
            assert_eq!(killed, 1);
        });
        wait_in_sync(&mut p, &mut r);
        assert_same(&mut p, &mut r);
        assert_eq!(number(&mut m, "sync_partial_ok"), 1);
    }
    // A dropped link of the Shardis sub-replica resumes with +CONTINUE.
    under_load(&top, 5..7, || {
        let killed: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("master")
            .query(&mut sub.conn())
            .expect("CLIENT KILL");
        assert_eq!(killed, 1);
    });
    wait_in_sync(&mut p, &mut m);
    wait_in_sync(&mut p, &mut s);
    assert_same(&mut p, &mut s);
    assert_eq!(number(&mut m, "sync_partial_ok"), partial_expected + 1);
    assert_eq!(number(&mut m, "sync_full"), partial_expected + 1);
    // The middle becomes a primary: its replica reconnects and continues with the new id
    // (psync2, no full sync), then follows the middle's own writes.
    let _: () = redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query(&mut m)
        .expect("REPLICAOF NO ONE");
    write_load(&mut m, 8);
    wait_in_sync(&mut m, &mut s);
    assert_same(&mut m, &mut s);
    assert_eq!(
        info_of(&mut s, "master_replid"),
        info_of(&mut m, "master_replid")
    );
    assert_ne!(
        info_of(&mut m, "master_replid"),
        info_of(&mut p, "master_replid")
    );
    assert_eq!(number(&mut m, "sync_partial_ok"), partial_expected + 2);
    assert_eq!(number(&mut m, "sync_full"), partial_expected + 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// As in Redis, the stream a full sync hands a replica selects its database before the first
/// command, even when the stream already had that database selected for an earlier replica
/// (Redis's tests attach fake replicas one after another and expect a SELECT first each time).
/// A primary whose stream has no PINGs (a long `repl-ping-replica-period`), and a client of it
/// that selected database 9.
fn quiet_primary_in_db9() -> (Server, Connection) {
    let shardis = primary();
    let mut c = shardis.conn();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("repl-ping-replica-period")
        .arg(3600)
        .query(&mut c)
        .expect("CONFIG SET");
    let _: () = redis::cmd("SELECT").arg(9).query(&mut c).expect("SELECT");
    (shardis, c)
}

#[test]
fn every_full_sync_starts_its_stream_with_a_select() {
    let (shardis, mut c) = quiet_primary_in_db9();
    let mut first = RawReplica::connect(shardis.port);
    let _: () = redis::cmd("SET")
        .arg("a")
        .arg(1)
        .query(&mut c)
        .expect("SET");
    assert_eq!(first.next_command(), "SELECT 9");
    assert_eq!(first.next_command(), "SET a 1");
    let mut second = RawReplica::connect(shardis.port);
    let _: () = redis::cmd("SET")
        .arg("b")
        .arg(2)
        .query(&mut c)
        .expect("SET");
    assert_eq!(second.next_command(), "SELECT 9");
    assert_eq!(second.next_command(), "SET b 2");
    // The first replica reads the same stream: the repeated SELECT changes nothing for it.
    assert_eq!(first.next_command(), "SELECT 9");
    assert_eq!(first.next_command(), "SET b 2");
}

#[test]
fn a_transaction_selects_its_database_before_multi() {
    let (shardis, mut c) = quiet_primary_in_db9();
    let mut stream = RawReplica::connect(shardis.port);
    // One shard's keys ({t}), then keys of both shards.
    for keys in [["x{t}", "y{t}"], ["x", "y"]] {
        let _: () = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(keys[0])
            .arg(1)
            .ignore()
            .cmd("SET")
            .arg(keys[1])
            .arg(2)
            .ignore()
            .query(&mut c)
            .expect("MULTI/EXEC");
    }
    assert_eq!(stream.next_command(), "SELECT 9");
    assert_eq!(stream.next_command(), "MULTI");
    for _ in 0..3 {
        let next = stream.next_command();
        assert!(next.starts_with("SET ") || next == "EXEC", "{next}");
    }
    assert_eq!(stream.next_command(), "MULTI", "no SELECT again");
}
