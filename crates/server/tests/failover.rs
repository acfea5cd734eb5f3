//! FAILOVER between real servers: a Shardis primary (2 shards) hands its role to a Redis 7.0
//! replica and to a Shardis replica (every write WAIT confirmed survives, the old primary
//! refuses writes with -READONLY and follows the new one), TIMEOUT without FORCE aborts,
//! ABORT, Redis's argument errors, and a Redis 7.0 primary failing over to a Shardis replica
//! (which handles `PSYNC ... FAILOVER`). Tests needing redis-server skip, saying so, without
//! it.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::real_redis::{redis_server, redis_server_with};
use common::replication::{
    assert_same, fill, info_of, number, primary_with, temp_dir, wait_in_sync, wait_online,
    write_load,
};
use common::Server;
use redis::{Connection, Value};

fn role(c: &mut Connection) -> Vec<Value> {
    redis::cmd("ROLE").query(c).expect("ROLE")
}

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(n) => n.to_string(),
        other => format!("{other:?}"),
    }
}

/// Waits until ROLE says `master`, or `slave` with the link `connected`.
fn wait_role(c: &mut Connection, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = role(c);
        let now = text(&r[0]);
        if now == want && (want == "master" || text(&r[3]) == "connected") {
            return;
        }
        assert!(Instant::now() < deadline, "ROLE {r:?}, wanted {want}");
        thread::sleep(Duration::from_millis(50));
    }
}

fn failover_state(c: &mut Connection) -> String {
    info_of(c, "master_failover_state").expect("master_failover_state")
}

fn wait_failover_state(c: &mut Connection, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while failover_state(c) != want {
        assert!(Instant::now() < deadline, "failover state not {want}");
        thread::sleep(Duration::from_millis(10));
    }
}

fn failover(c: &mut Connection, args: &[&str]) -> redis::RedisResult<()> {
    redis::cmd("FAILOVER").arg(args).query(c)
}

fn err_text(r: redis::RedisResult<()>) -> String {
    let e = r.expect_err("an error");
    format!("{} {}", e.code().unwrap_or("?"), e.detail().unwrap_or(""))
}

/// A client writing `w:<i>` and WAITing for one replica after each write until its writes
/// are refused; the writes a replica confirmed.
fn confirmed_writer(port: u16, stop: Arc<AtomicBool>) -> thread::JoinHandle<Vec<u64>> {
    thread::spawn(move || {
        let mut c = common::connect(port);
        let mut confirmed = Vec::new();
        for i in 0u64.. {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            if redis::cmd("SET")
                .arg(format!("w:{i}"))
                .arg(i)
                .query::<()>(&mut c)
                .is_err()
            {
                break;
            }
            match redis::cmd("WAIT").arg(1).arg(2000).query::<i64>(&mut c) {
                Ok(1) => confirmed.push(i),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        confirmed
    })
}

fn assert_confirmed_present(c: &mut Connection, confirmed: &[u64]) {
    assert!(!confirmed.is_empty(), "the writer got no confirmation");
    for i in confirmed {
        let v: Option<u64> = redis::cmd("GET")
            .arg(format!("w:{i}"))
            .query(c)
            .expect("GET");
        assert_eq!(v, Some(*i), "confirmed write w:{i} lost");
    }
}

/// The old primary refuses writes and follows the new one, whose writes reach it.
fn assert_old_follows_new(old: &mut Connection, new: &mut Connection) {
    let err = redis::cmd("SET")
        .arg("after")
        .arg(1)
        .query::<()>(old)
        .expect_err("READONLY");
    assert_eq!(err.code(), Some("READONLY"), "{err}");
    write_load(new, 9);
    wait_in_sync(new, old);
    assert_same(new, old);
}

#[test]
fn a_shardis_primary_fails_over_to_a_redis_replica() {
    let dir = temp_dir("failover-redis");
    let s = primary_with(&[]);
    let mut p = s.conn();
    assert_eq!(
        err_text(failover(&mut p, &[])),
        "ERR FAILOVER requires connected replicas."
    );
    fill(&mut p);
    let Some((_redis, redis_port)) =
        redis_server_with(&dir, &["--replicaof", "127.0.0.1", &s.port.to_string()])
    else {
        return;
    };
    let mut r = common::connect(redis_port);
    wait_in_sync(&mut p, &mut r);
    wait_online(&mut p, 1);
    let port = redis_port.to_string();

    // Redis's argument checks.
    for (args, want) in [
        (&["ABORT"][..], "ERR No failover in progress."),
        (
            &["TIMEOUT", "0"],
            "ERR FAILOVER timeout must be greater than 0",
        ),
        (
            &["TO", "127.0.0.1", "x"],
            "ERR value is not an integer or out of range",
        ),
        (
            &["TO", "127.0.0.1", &port, "FORCE"],
            "ERR FAILOVER with force option requires both a timeout and target HOST and IP.",
        ),
        (
            &["TO", "127.0.0.1", "1"],
            "ERR FAILOVER target HOST and PORT is not a replica.",
        ),
        (&["ABORT", "TIMEOUT", "5"], "ERR syntax error"),
        (&["TIMEOUT", "5", "TIMEOUT", "5"], "ERR syntax error"),
    ] {
        assert_eq!(err_text(failover(&mut p, args)), want, "{args:?}");
    }
    assert_eq!(failover_state(&mut p), "no-failover");

    // A write load, and a client whose writes a replica confirms, while the failover runs.
    write_load(&mut p, 0);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = confirmed_writer(s.port, stop.clone());
    thread::sleep(Duration::from_millis(300));
    failover(&mut p, &["TO", "127.0.0.1", &port]).expect("FAILOVER");
    wait_role(&mut r, "master");
    wait_role(&mut p, "slave");
    wait_failover_state(&mut p, "no-failover");
    stop.store(true, Ordering::SeqCst);
    let confirmed = writer.join().expect("writer");
    assert_confirmed_present(&mut r, &confirmed);
    let r_role = role(&mut r);
    assert_eq!(text(&r_role[0]), "master");
    let p_role = role(&mut p);
    assert_eq!(text(&p_role[2]), port, "{p_role:?}");
    assert_old_follows_new(&mut p, &mut r);
    // Redis continued our history: no full sync.
    assert_eq!(number(&mut r, "sync_full"), 0);
    assert_eq!(number(&mut r, "sync_partial_ok"), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_shardis_primary_fails_over_to_a_shardis_replica() {
    let s = primary_with(&[]);
    let mut p = s.conn();
    fill(&mut p);
    let t = primary_with(&[]);
    let mut r = t.conn();
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(s.port)
        .query(&mut r)
        .expect("REPLICAOF");
    write_load(&mut p, 0);
    wait_in_sync(&mut p, &mut r);
    wait_online(&mut p, 1);

    let stop = Arc::new(AtomicBool::new(false));
    let writer = confirmed_writer(s.port, stop.clone());
    thread::sleep(Duration::from_millis(300));
    // Without TO: the first replica to acknowledge everything.
    failover(&mut p, &[]).expect("FAILOVER");
    wait_role(&mut r, "master");
    wait_role(&mut p, "slave");
    wait_failover_state(&mut p, "no-failover");
    stop.store(true, Ordering::SeqCst);
    let confirmed = writer.join().expect("writer");
    assert_confirmed_present(&mut r, &confirmed);
    // The old primary's id is the new one's replid2: it continued without a full sync.
    assert_eq!(number(&mut r, "sync_full"), 0);
    assert_eq!(number(&mut r, "sync_partial_ok"), 1);
    assert_eq!(
        info_of(&mut r, "master_replid2"),
        info_of(&mut p, "master_replid2")
    );
    assert_eq!(failover_state(&mut r), "no-failover");
    assert_old_follows_new(&mut p, &mut r);
    // A replica asked to fail over by a server that is not its primary refuses.
    let err = redis::cmd("PSYNC")
        .arg("0123456789012345678901234567890123456789")
        .arg(1)
        .arg("FAILOVER")
        .query::<()>(&mut p)
        .expect_err("refused");
    assert_eq!(
        err.detail(),
        Some("PSYNC FAILOVER replid must match my replid.")
    );
    let err = redis::cmd("PSYNC")
        .arg("0123456789012345678901234567890123456789")
        .arg(1)
        .arg("FAILOVER")
        .query::<()>(&mut r)
        .expect_err("refused");
    assert_eq!(
        err.detail(),
        Some("PSYNC FAILOVER can't be sent to a master.")
    );
}

/// A Shardis primary with a Redis replica that sleeps (DEBUG SLEEP), so it cannot catch up.
fn with_sleeping_replica(f: impl FnOnce(&Server, &mut Connection, &mut Connection, &str)) {
    let dir = temp_dir(&format!("failover-abort-{:?}", thread::current().id()));
    let s = primary_with(&[]);
    let mut p = s.conn();
    let Some((_redis, redis_port)) =
        redis_server_with(&dir, &["--replicaof", "127.0.0.1", &s.port.to_string()])
    else {
        return;
    };
    let mut r = common::connect(redis_port);
    wait_in_sync(&mut p, &mut r);
    wait_online(&mut p, 1);
    let sleeper = thread::spawn(move || {
        let mut c = common::connect(redis_port);
        let _: redis::RedisResult<()> = redis::cmd("DEBUG").arg("SLEEP").arg(3).query(&mut c);
    });
    thread::sleep(Duration::from_millis(100));
    let _: () = redis::cmd("SET")
        .arg("before")
        .arg(1)
        .query(&mut p)
        .expect("SET");
    f(&s, &mut p, &mut r, &redis_port.to_string());
    sleeper.join().expect("sleeper");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts a SET on another connection; it must be held by the failover's pause.
fn held_write(port: u16) -> thread::JoinHandle<(redis::RedisResult<()>, Duration)> {
    thread::spawn(move || {
        let mut c = common::connect(port);
        let t = Instant::now();
        let r = redis::cmd("SET").arg("held").arg(1).query::<()>(&mut c);
        (r, t.elapsed())
    })
}

#[test]
fn a_failover_timeout_without_force_aborts_and_writes_resume() {
    with_sleeping_replica(|s, p, _r, port| {
        failover(p, &["TO", "127.0.0.1", port, "TIMEOUT", "600"]).expect("FAILOVER");
        assert_eq!(failover_state(p), "waiting-for-sync");
        assert_eq!(
            err_text(failover(p, &[])),
            "ERR FAILOVER already in progress."
        );
        let err = redis::cmd("REPLICAOF")
            .arg("NO")
            .arg("ONE")
            .query::<()>(p)
            .expect_err("refused");
        assert_eq!(
            err.detail(),
            Some("REPLICAOF not allowed while failing over.")
        );
        // Reads go on; writes wait for the failover's end, then run here.
        let started = Instant::now();
        let v: Option<String> = redis::cmd("GET").arg("before").query(p).expect("GET");
        assert_eq!(v.as_deref(), Some("1"));
        assert!(started.elapsed() < Duration::from_millis(300));
        let write = held_write(s.port);
        wait_failover_state(p, "no-failover");
        let (result, took) = write.join().expect("write");
        result.expect("the held write runs after the abort");
        assert!(took >= Duration::from_millis(300), "not held: {took:?}");
        assert_eq!(text(&role(p)[0]), "master");
        let _: () = redis::cmd("SET").arg("x").arg(1).query(p).expect("SET");
    });
}

#[test]
fn failover_abort_ends_the_wait_and_force_fails_over_after_the_timeout() {
    with_sleeping_replica(|s, p, _r, _port| {
        failover(p, &[]).expect("FAILOVER");
        assert_eq!(failover_state(p), "waiting-for-sync");
        let write = held_write(s.port);
        thread::sleep(Duration::from_millis(300));
        failover(p, &["ABORT"]).expect("ABORT");
        assert_eq!(failover_state(p), "no-failover");
        let (result, _) = write.join().expect("write");
        result.expect("the held write runs after ABORT");
        // CLIENT UNPAUSE does not end a failover's pause.
        failover(p, &[]).expect("FAILOVER");
        let _: () = redis::cmd("CLIENT")
            .arg("UNPAUSE")
            .query(p)
            .expect("UNPAUSE");
        let write = held_write(s.port);
        thread::sleep(Duration::from_millis(300));
        assert!(
            !write.is_finished(),
            "CLIENT UNPAUSE ended a failover's pause"
        );
        failover(p, &["ABORT"]).expect("ABORT");
        write.join().expect("write").0.expect("SET");
        assert_eq!(text(&role(p)[0]), "master");
    });
    // FORCE: the replica still sleeps when the timeout passes; the failover goes on anyway.
    with_sleeping_replica(|_s, p, r, port| {
        failover(p, &["TO", "127.0.0.1", port, "FORCE", "TIMEOUT", "300"]).expect("FAILOVER");
        wait_role(r, "master");
        wait_role(p, "slave");
        wait_failover_state(p, "no-failover");
        // What the replica had not acknowledged may be lost (FORCE); the two agree.
        wait_in_sync(r, p);
        assert_same(r, p);
    });
}

#[test]
fn a_redis_primary_fails_over_to_a_shardis_replica() {
    let dir = temp_dir("failover-from-redis");
    let Some((_redis, redis_port)) = redis_server(&dir) else {
        return;
    };
    let mut p = common::connect(redis_port);
    fill(&mut p);
    let t = primary_with(&[]);
    let mut r = t.conn();
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(redis_port)
        .query(&mut r)
        .expect("REPLICAOF");
    write_load(&mut p, 0);
    wait_in_sync(&mut p, &mut r);
    wait_online(&mut p, 1);
    failover(&mut p, &["TO", "127.0.0.1", &t.port.to_string()]).expect("FAILOVER");
    wait_role(&mut r, "master");
    wait_role(&mut p, "slave");
    wait_failover_state(&mut p, "no-failover");
    assert_eq!(number(&mut r, "sync_partial_ok"), 1);
    assert_eq!(number(&mut r, "sync_full"), 0);
    assert_old_follows_new(&mut p, &mut r);
    let _ = std::fs::remove_dir_all(&dir);
}
