//! MULTI/EXEC, WATCH and the two-phase shard lock: semantics, isolation across shards, and
//! liveness under overlapping transactions.

mod common;

use common::{connect, Server};
use rand::{Rng, SeedableRng};
use redis::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn cmd(c: &mut redis::Connection, args: &[&str]) -> redis::RedisResult<Value> {
    let mut command = redis::cmd(args[0]);
    for a in &args[1..] {
        command.arg(*a);
    }
    command.query(c)
}

#[test]
fn multi_exec_queues_and_runs_in_order() {
    let s = Server::start(2, &[]);
    let mut c = s.conn();
    assert_eq!(cmd(&mut c, &["MULTI"]).expect("multi"), Value::Okay);
    assert_eq!(
        cmd(&mut c, &["SET", "a", "1"]).expect("queued"),
        Value::SimpleString("QUEUED".into())
    );
    cmd(&mut c, &["INCR", "b"]).expect("queued");
    cmd(&mut c, &["GET", "a"]).expect("queued");
    let out = cmd(&mut c, &["EXEC"]).expect("exec");
    assert_eq!(
        out,
        Value::Array(vec![
            Value::Okay,
            Value::Int(1),
            Value::BulkString(b"1".to_vec())
        ])
    );
}

#[test]
fn a_runtime_error_inside_exec_does_not_abort_the_rest() {
    let s = Server::start(2, &[]);
    let mut raw = s.raw();
    // "a" and "b" live on different shards: the transaction takes the locked path.
    let sent = b"MULTI\r\nSET a 1\r\nLPUSH a x\r\nINCR b\r\nEXEC\r\n";
    let expected = "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n+OK\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n:1\r\n";
    let got = common::roundtrip(&mut raw, sent, expected.len());
    assert_eq!(String::from_utf8_lossy(&got), expected);
}

#[test]
fn transaction_errors_match_redis() {
    let s = Server::start(2, &[]);
    let mut c = s.conn();
    let err = cmd(&mut c, &["EXEC"]).expect_err("exec without multi");
    assert!(err.to_string().contains("EXEC without MULTI"), "{err}");
    let err = cmd(&mut c, &["DISCARD"]).expect_err("discard without multi");
    assert!(err.to_string().contains("DISCARD without MULTI"), "{err}");
    cmd(&mut c, &["MULTI"]).expect("multi");
    let err = cmd(&mut c, &["MULTI"]).expect_err("nested");
    assert!(
        err.to_string().contains("MULTI calls can not be nested"),
        "{err}"
    );
    let err = cmd(&mut c, &["WATCH", "x"]).expect_err("watch inside multi");
    assert!(
        err.to_string()
            .contains("WATCH inside MULTI is not allowed"),
        "{err}"
    );
    cmd(&mut c, &["SET", "k", "v"]).expect("queued");
    cmd(&mut c, &["NOSUCHCOMMAND"]).expect_err("unknown");
    let err = cmd(&mut c, &["EXEC"]).expect_err("execabort");
    assert!(
        err.to_string()
            .contains("Transaction discarded because of previous errors"),
        "{err}"
    );
    assert_eq!(
        cmd(&mut c, &["EXISTS", "k"]).expect("exists"),
        Value::Int(0)
    );
    cmd(&mut c, &["MULTI"]).expect("multi");
    cmd(&mut c, &["SET", "k", "v"]).expect("queued");
    assert_eq!(cmd(&mut c, &["DISCARD"]).expect("discard"), Value::Okay);
    assert_eq!(
        cmd(&mut c, &["EXISTS", "k"]).expect("exists"),
        Value::Int(0)
    );
}

#[test]
fn watch_fails_exec_when_a_key_changes_expires_or_is_flushed() {
    let s = Server::start(2, &[]);
    let mut c = s.conn();
    let mut other = s.conn();
    for (setup, change) in [
        (&["SET", "w", "1"][..], &["SET", "w", "2"][..]),
        (&["SET", "w", "1"], &["DEL", "w"]),
        (&["SET", "w", "1"], &["FLUSHDB"]),
        (&["SET", "w", "1"], &["RENAME", "w", "elsewhere"]),
    ] {
        cmd(&mut c, &["FLUSHALL"]).expect("flushall");
        cmd(&mut c, setup).expect("setup");
        cmd(&mut c, &["WATCH", "w"]).expect("watch");
        cmd(&mut other, change).expect("change");
        cmd(&mut c, &["MULTI"]).expect("multi");
        cmd(&mut c, &["SET", "x", "y"]).expect("queued");
        assert_eq!(
            cmd(&mut c, &["EXEC"]).expect("exec"),
            Value::Nil,
            "after {change:?}"
        );
    }
    // An untouched watched key lets EXEC run, and EXEC unwatches.
    cmd(&mut c, &["SET", "w", "1"]).expect("set");
    cmd(&mut c, &["WATCH", "w", "{w}other"]).expect("watch");
    cmd(&mut c, &["MULTI"]).expect("multi");
    cmd(&mut c, &["INCR", "w"]).expect("queued");
    assert_eq!(
        cmd(&mut c, &["EXEC"]).expect("exec"),
        Value::Array(vec![Value::Int(2)])
    );
    // Expiry of a watched key fails EXEC.
    // (Long enough that WATCH, on a busy machine, still finds the key alive.)
    cmd(&mut c, &["SET", "e", "1", "PX", "300"]).expect("set");
    cmd(&mut c, &["WATCH", "e"]).expect("watch");
    std::thread::sleep(Duration::from_millis(400));
    cmd(&mut c, &["MULTI"]).expect("multi");
    cmd(&mut c, &["PING"]).expect("queued");
    assert_eq!(cmd(&mut c, &["EXEC"]).expect("exec"), Value::Nil);
}

#[test]
fn smove_touches_its_destination_only_when_it_adds_the_member() {
    let s = Server::start(2, &[]);
    let mut c = s.conn();
    let mut other = s.conn();
    for (already_there, exec_runs) in [(true, true), (false, false)] {
        cmd(&mut c, &["DEL", "src{t}", "dst{t}"]).expect("del");
        cmd(&mut c, &["SADD", "src{t}", "a", "b"]).expect("sadd");
        let dst_member = if already_there { "a" } else { "z" };
        cmd(&mut c, &["SADD", "dst{t}", dst_member]).expect("sadd");
        cmd(&mut c, &["WATCH", "dst{t}"]).expect("watch");
        cmd(&mut c, &["MULTI"]).expect("multi");
        cmd(&mut c, &["SADD", "dst{t}", "c"]).expect("queued");
        assert_eq!(
            cmd(&mut other, &["SMOVE", "src{t}", "dst{t}", "a"]).expect("smove"),
            Value::Int(1)
        );
        let exec = cmd(&mut c, &["EXEC"]).expect("exec");
        assert_eq!(
            exec != Value::Nil,
            exec_runs,
            "member already there: {already_there}"
        );
    }
}

#[test]
fn optimistic_increments_with_watch_reach_the_exact_count() {
    let s = Server::start(2, &[]);
    let port = s.port;
    const CLIENTS: usize = 8;
    const INCREMENTS: usize = 150;
    let workers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = connect(port);
                for _ in 0..INCREMENTS {
                    loop {
                        cmd(&mut c, &["WATCH", "counter", "other:counter"]).expect("watch");
                        let v: Option<i64> =
                            redis::cmd("GET").arg("counter").query(&mut c).expect("get");
                        let next = (v.unwrap_or(0) + 1).to_string();
                        cmd(&mut c, &["MULTI"]).expect("multi");
                        cmd(&mut c, &["SET", "counter", &next]).expect("queued");
                        cmd(&mut c, &["SET", "other:counter", &next]).expect("queued");
                        if cmd(&mut c, &["EXEC"]).expect("exec") != Value::Nil {
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
    let mut c = s.conn();
    let v: i64 = redis::cmd("GET").arg("counter").query(&mut c).expect("get");
    assert_eq!(v, (CLIENTS * INCREMENTS) as i64);
    let v: i64 = redis::cmd("GET")
        .arg("other:counter")
        .query(&mut c)
        .expect("get");
    assert_eq!(v, (CLIENTS * INCREMENTS) as i64);
}

/// Money moves between accounts on different shards inside MULTI/EXEC and with WATCH+MSET;
/// readers using MGET and MULTI never see the total change.
#[test]
fn transfers_across_shards_are_never_observed_half_done() {
    let s = Server::start(3, &[]);
    let port = s.port;
    const ACCOUNTS: usize = 6;
    const START: i64 = 1000;
    const TRANSFERS: usize = 2500;
    let accounts: Vec<String> = (0..ACCOUNTS).map(|i| format!("account:{i}")).collect();
    {
        let mut c = s.conn();
        let mut mset = redis::cmd("MSET");
        for a in &accounts {
            mset.arg(a).arg(START);
        }
        let _: () = mset.query(&mut c).expect("mset");
    }
    let total = START * ACCOUNTS as i64;
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let accounts = accounts.clone();
        writers.push(std::thread::spawn(move || {
            let mut c = connect(port);
            let mut rng = rand::rngs::StdRng::seed_from_u64(w);
            for round in 0..TRANSFERS {
                let from = &accounts[rng.gen_range(0..ACCOUNTS)];
                let to = &accounts[rng.gen_range(0..ACCOUNTS)];
                let amount = rng.gen_range(1..50).to_string();
                if round % 3 == 0 {
                    // WATCH + MSET of the two new balances.
                    loop {
                        cmd(&mut c, &["WATCH", from, to]).expect("watch");
                        let v: Vec<i64> = redis::cmd("MGET")
                            .arg(from)
                            .arg(to)
                            .query(&mut c)
                            .expect("mget");
                        let amt: i64 = amount.parse().unwrap_or(1);
                        cmd(&mut c, &["MULTI"]).expect("multi");
                        if from == to {
                            cmd(&mut c, &["MSET", from, &v[0].to_string()]).expect("queued");
                        } else {
                            cmd(
                                &mut c,
                                &[
                                    "MSET",
                                    from,
                                    &(v[0] - amt).to_string(),
                                    to,
                                    &(v[1] + amt).to_string(),
                                ],
                            )
                            .expect("queued");
                        }
                        if cmd(&mut c, &["EXEC"]).expect("exec") != Value::Nil {
                            break;
                        }
                    }
                } else {
                    cmd(&mut c, &["MULTI"]).expect("multi");
                    cmd(&mut c, &["DECRBY", from, &amount]).expect("queued");
                    cmd(&mut c, &["INCRBY", to, &amount]).expect("queued");
                    cmd(&mut c, &["EXEC"]).expect("exec");
                }
            }
        }));
    }
    let mut readers = Vec::new();
    for r in 0..3 {
        let accounts = accounts.clone();
        let stop = stop.clone();
        readers.push(std::thread::spawn(move || {
            let mut c = connect(port);
            let mut checks = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let sum: i64 = if r % 2 == 0 {
                    let v: Vec<i64> = redis::cmd("MGET")
                        .arg(&accounts)
                        .query(&mut c)
                        .expect("mget");
                    v.iter().sum()
                } else {
                    cmd(&mut c, &["MULTI"]).expect("multi");
                    for a in &accounts {
                        cmd(&mut c, &["GET", a]).expect("queued");
                    }
                    let v: Vec<i64> = redis::cmd("EXEC").query(&mut c).expect("exec");
                    v.iter().sum()
                };
                assert_eq!(sum, total, "a reader saw a partial transfer");
                checks += 1;
            }
            checks
        }));
    }
    for w in writers {
        w.join().expect("writer");
    }
    stop.store(true, Ordering::Relaxed);
    let checks: u64 = readers.into_iter().map(|r| r.join().expect("reader")).sum();
    eprintln!(
        "isolation: {} transfers, {checks} reads of the total",
        4 * TRANSFERS
    );
    assert!(checks > 0);
    let mut c = s.conn();
    let v: Vec<i64> = redis::cmd("MGET")
        .arg(&accounts)
        .query(&mut c)
        .expect("mget");
    assert_eq!(v.iter().sum::<i64>(), total);
}

/// Overlapping transactions on random subsets of shards for a fixed time: no stall, no lost
/// update, and clients that vanish mid-transaction leave no shard locked.
#[test]
fn overlapping_transactions_neither_stall_nor_lose_updates() {
    let s = Server::start(3, &[]);
    let port = s.port;
    let keys: Vec<String> = (0..9).map(|i| format!("counter:{i}")).collect();
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut workers = Vec::new();
    for w in 0..6 {
        let keys = keys.clone();
        workers.push(std::thread::spawn(move || {
            let mut c = connect(port);
            let mut rng = rand::rngs::StdRng::seed_from_u64(100 + w);
            let mut done = vec![0i64; keys.len()];
            while Instant::now() < deadline {
                let n = rng.gen_range(1..=4);
                let picked: Vec<usize> = (0..n).map(|_| rng.gen_range(0..keys.len())).collect();
                cmd(&mut c, &["MULTI"]).expect("multi");
                for &k in &picked {
                    cmd(&mut c, &["INCR", &keys[k]]).expect("queued");
                }
                if rng.gen_bool(0.1) {
                    // Vanish mid-transaction: the queued commands must never run.
                    drop(c);
                    c = connect(port);
                    continue;
                }
                cmd(&mut c, &["EXEC"]).expect("exec");
                for &k in &picked {
                    done[k] += 1;
                }
            }
            done
        }));
    }
    let mut expected = vec![0i64; keys.len()];
    for w in workers {
        for (e, d) in expected.iter_mut().zip(w.join().expect("worker")) {
            *e += d;
        }
    }
    let mut c = s.conn();
    let got: Vec<Option<i64>> = redis::cmd("MGET").arg(&keys).query(&mut c).expect("mget");
    let got: Vec<i64> = got.into_iter().map(|v| v.unwrap_or(0)).collect();
    assert_eq!(got, expected);
    // Every shard still answers promptly: nothing is left locked.
    let n: i64 = redis::cmd("DBSIZE").query(&mut c).expect("dbsize");
    assert!(n > 0);
}

#[test]
fn exec_is_refused_whole_when_the_server_became_a_stale_or_read_only_replica() {
    let s = Server::start(2, &[]);
    let mut c = s.conn();
    let mut admin = s.conn();
    cmd(&mut c, &["CONFIG", "SET", "replica-serve-stale-data", "no"]).expect("config");
    // (queued, the refusal EXEC gets once the server follows a primary it cannot reach)
    for (queued, refusal) in [
        (&["GET", "x"][..], "MASTERDOWN Link with MASTER is down"),
        (
            &["SET", "x", "1"],
            "READONLY You can't write against a read only replica.",
        ),
    ] {
        cmd(&mut c, &["MULTI"]).expect("multi");
        cmd(&mut c, queued).expect("queued");
        cmd(&mut admin, &["REPLICAOF", "127.0.0.1", "1"]).expect("replicaof");
        let err = cmd(&mut c, &["EXEC"]).expect_err("refused");
        let text = format!("{err}");
        assert!(
            text.contains("Transaction discarded because of: ") && text.contains(refusal),
            "{queued:?}: {text}"
        );
        cmd(&mut admin, &["REPLICAOF", "NO", "ONE"]).expect("replicaof no one");
    }
    // A primary again: the same transaction runs.
    cmd(&mut c, &["MULTI"]).expect("multi");
    cmd(&mut c, &["SET", "x", "1"]).expect("queued");
    assert_eq!(
        cmd(&mut c, &["EXEC"]).expect("exec"),
        Value::Array(vec![Value::Okay])
    );
}
