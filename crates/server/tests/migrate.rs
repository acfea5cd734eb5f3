//! MIGRATE between servers: Shardis to Shardis with keys on every shard, KEYS, COPY,
//! REPLACE, TTLs, the target's errors passed through, NOKEY, IOERR; to and from a real Redis
//! 7.0 (skipped, saying so, when redis-server is absent); and a hostile target that answers
//! garbage or nothing.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::{key_on, Server};
use redis::{Connection, Value};

fn migrate(c: &mut Connection, port: u16, args: &[&str]) -> redis::RedisResult<Value> {
    let mut cmd = redis::cmd("MIGRATE");
    cmd.arg("127.0.0.1").arg(port);
    for a in args {
        cmd.arg(*a);
    }
    cmd.query(c)
}

fn status(v: redis::RedisResult<Value>) -> String {
    match v {
        Ok(Value::Okay) => "OK".into(),
        Ok(Value::SimpleString(s)) => s,
        Ok(other) => format!("{other:?}"),
        Err(e) => format!("{} {}", e.code().unwrap_or("?"), e.detail().unwrap_or("")),
    }
}

#[test]
fn keys_of_every_shard_move_with_their_ttls_and_are_deleted_here() {
    let (a, b) = (Server::start(2, &[]), Server::start(2, &[]));
    let (mut ca, mut cb) = (a.conn(), b.conn());
    let k0 = key_on("m", 0, 2);
    let k1 = key_on("m", 1, 2);
    let _: () = redis::cmd("SET").arg(&k0).arg("v0").query(&mut ca).unwrap();
    let _: () = redis::cmd("RPUSH")
        .arg(&k1)
        .arg(&["a", "b", "c"])
        .query(&mut ca)
        .unwrap();
    let _: () = redis::cmd("PEXPIRE")
        .arg(&k1)
        .arg(100_000)
        .query(&mut ca)
        .unwrap();
    // One key.
    assert_eq!(status(migrate(&mut ca, b.port, &[&k0, "0", "5000"])), "OK");
    // Several, on both shards, missing ones skipped.
    let _: () = redis::cmd("SET")
        .arg(&k0)
        .arg("again")
        .query(&mut ca)
        .unwrap();
    let r = migrate(
        &mut ca,
        b.port,
        &["", "0", "5000", "REPLACE", "KEYS", "nokey", &k0, &k1],
    );
    assert_eq!(status(r), "OK");
    let n: i64 = redis::cmd("DBSIZE").query(&mut ca).unwrap();
    assert_eq!(n, 0, "the source lost both keys");
    let v: String = redis::cmd("GET").arg(&k0).query(&mut cb).unwrap();
    assert_eq!(v, "again");
    let l: Vec<String> = redis::cmd("LRANGE")
        .arg(&k1)
        .arg(0)
        .arg(-1)
        .query(&mut cb)
        .unwrap();
    assert_eq!(l, ["a", "b", "c"]);
    let ttl: i64 = redis::cmd("PTTL").arg(&k1).query(&mut cb).unwrap();
    assert!(ttl > 90_000 && ttl <= 100_000, "ttl {ttl}");
    // Nothing to move.
    assert_eq!(
        status(migrate(&mut ca, b.port, &[&k0, "0", "5000"])),
        "NOKEY"
    );
    // COPY keeps the source; the target's BUSYKEY comes back and nothing is deleted.
    assert_eq!(
        status(migrate(
            &mut cb,
            a.port,
            &["", "0", "5000", "COPY", "KEYS", &k0]
        )),
        "OK"
    );
    let r = migrate(&mut cb, a.port, &["", "0", "5000", "KEYS", &k0, &k1]);
    assert_eq!(
        status(r),
        "ERR Target instance replied with error: BUSYKEY Target key name already exists."
    );
    let n: i64 = redis::cmd("EXISTS")
        .arg(&k0)
        .arg(&k1)
        .query(&mut cb)
        .unwrap();
    assert_eq!(n, 1, "k0 was refused and stays; k1 was taken and is gone");
    // Argument errors, as Redis.
    assert_eq!(
        status(migrate(&mut cb, a.port, &[&k0, "0", "5000", "KEYS", &k0])),
        "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string"
    );
    assert_eq!(
        status(migrate(&mut cb, a.port, &[&k0, "x", "5000"])),
        "ERR value is not an integer or out of range"
    );
    // Nobody listening.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = l.local_addr().unwrap().port();
    drop(l);
    assert_eq!(
        status(migrate(&mut cb, closed, &[&k0, "0", "500"])),
        "IOERR error or timeout connecting to the client"
    );
    // The connection to `a` is cached.
    assert_eq!(b.info_field("migrate_cached_sockets").as_deref(), Some("1"));
}

#[test]
fn a_hostile_target_costs_a_bounded_wait_and_nothing_else() {
    let a = Server::start(1, &[]);
    let mut ca = a.conn();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut ca).unwrap();
    // A target answering an endless error line: cut at 1 KiB, passed through.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let garbage = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        // Nobody reads the rest: the writes stop when the buffers are full.
        s.set_write_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        let chunk = vec![b'-'; 64 * 1024];
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(2) {
            if s.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let r = migrate(&mut ca, port, &["k", "0", "1000", "COPY"]);
    let text = status(r);
    assert!(
        text.starts_with("ERR Target instance replied with error: ---"),
        "{text}"
    );
    assert!(text.len() < 1100, "the error line is bounded");
    garbage.join().unwrap();
    // A target that never answers: IOERR after the timeout.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let silent = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        std::thread::sleep(Duration::from_secs(2));
        drop(s);
    });
    let started = Instant::now();
    let r = migrate(&mut ca, port, &["k", "0", "300"]);
    assert_eq!(
        status(r),
        "IOERR error or timeout reading to target instance"
    );
    assert!(started.elapsed() < Duration::from_millis(1500));
    silent.join().unwrap();
    // The server is fine and the key is still here.
    let v: String = redis::cmd("GET").arg("k").query(&mut ca).unwrap();
    assert_eq!(v, "v");
}

#[test]
fn keys_move_to_and_from_a_real_redis() {
    let dir = std::env::temp_dir().join(format!("shardis-migrate-redis-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let Some((_redis, rport)) = common::real_redis::redis_server(&dir) else {
        return;
    };
    let a = Server::start(2, &[]);
    let mut ca = a.conn();
    let mut cr = redis::Client::open(format!("redis://127.0.0.1:{rport}/"))
        .unwrap()
        .get_connection()
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("pw")
        .query(&mut cr)
        .unwrap();
    let _: () = redis::cmd("AUTH").arg("pw").query(&mut cr).unwrap();
    let keys: Vec<String> = (0..20).map(|i| format!("rk{i}")).collect();
    for k in &keys {
        let _: () = redis::cmd("HSET")
            .arg(k)
            .arg("f")
            .arg(k)
            .query(&mut ca)
            .unwrap();
    }
    let mut args = vec!["", "3", "5000", "AUTH", "pw", "KEYS"];
    args.extend(keys.iter().map(String::as_str));
    assert_eq!(status(migrate(&mut ca, rport, &args)), "OK");
    let _: () = redis::cmd("SELECT").arg(3).query(&mut cr).unwrap();
    let n: i64 = redis::cmd("DBSIZE").query(&mut cr).unwrap();
    assert_eq!(n, 20);
    // Wrong password: Redis's error passed through, nothing deleted.
    let _: () = redis::cmd("SET").arg("x").arg("1").query(&mut ca).unwrap();
    let r = migrate(&mut ca, rport, &["x", "3", "5000", "AUTH", "nope"]);
    assert!(
        status(r).starts_with("ERR Target instance replied with error: WRONGPASS"),
        "wrong password refused"
    );
    let n: i64 = redis::cmd("EXISTS").arg("x").query(&mut ca).unwrap();
    assert_eq!(n, 1);
    // And back from Redis into Shardis.
    let mut cmd = redis::cmd("MIGRATE");
    cmd.arg("127.0.0.1")
        .arg(a.port)
        .arg("")
        .arg(0)
        .arg(5000)
        .arg("KEYS");
    for k in &keys {
        cmd.arg(k);
    }
    let r: Value = cmd.query(&mut cr).unwrap();
    assert_eq!(r, Value::Okay);
    let v: String = redis::cmd("HGET")
        .arg("rk7")
        .arg("f")
        .query(&mut ca)
        .unwrap();
    assert_eq!(v, "rk7");
    let n: i64 = redis::cmd("DBSIZE").query(&mut ca).unwrap();
    assert_eq!(n, 21);
}
