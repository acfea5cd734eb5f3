//! The I/O path's edge cases (issue 7's io_uring runtime), against a real two-shard server:
//! values far bigger than a receive buffer, pipelines far longer than one, more input at once
//! than the provided-buffer ring holds, clients that do not read their replies or reset in the
//! middle of one, commands trickling in a byte at a time, and the cost of idle connections.
//!
//! "Own shard" is the shard of the core serving the connection (client ids are numbered per
//! core), "other shard" the one its commands are forwarded to.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::resp::{self, Value};
use common::{core_of, key_on, set_linger_zero, Server, Watchdog};

const SHARDS: usize = 2;
/// How long one reply may take (debug builds on a busy machine are slow).
const REPLY_WAIT: Duration = Duration::from_secs(60);
/// Above this the watchdog kills the server: the machine is shared.
const RSS_CEILING: u64 = 1 << 30;

/// A key on the connection's own shard and one on the other shard.
fn own_and_other(conn: &mut resp::Conn, prefix: &str) -> [(String, &'static str); 2] {
    let core = core_of(conn, SHARDS);
    [
        (key_on(prefix, core, SHARDS), "own shard"),
        (key_on(prefix, (core + 1) % SHARDS, SHARDS), "other shard"),
    ]
}

/// `len` bytes that differ from place to place, so a reply shifted, cut or mixed with another
/// does not compare equal by chance.
fn pattern(len: usize, salt: u64) -> Vec<u8> {
    let mut x = salt.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Where two byte strings first differ, for failure messages.
fn difference(got: &[u8], want: &[u8]) -> String {
    match got.iter().zip(want).position(|(a, b)| a != b) {
        Some(at) => format!("first difference at byte {at} of {}", want.len()),
        None => format!("{} bytes instead of {}", got.len(), want.len()),
    }
}

fn ok() -> Value {
    Value::Simple("OK".into())
}

fn bulk(b: impl Into<Vec<u8>>) -> Value {
    Value::Bulk(Some(b.into()))
}

/// Checks that `reply` is the bulk `want`, without printing megabytes when it is not.
fn assert_bulk(reply: Result<Value, resp::ReadError>, want: &[u8], what: &str) {
    match reply {
        Ok(Value::Bulk(Some(got))) => {
            assert!(got == want, "{what}: {}", difference(&got, want))
        }
        other => {
            let shown = format!("{other:?}");
            panic!("{what}: {}", &shown[..shown.len().min(300)])
        }
    }
}

#[test]
fn a_64_mib_value_round_trips_on_both_shards() {
    let server = Server::start(SHARDS, &[]);
    let dog = Watchdog::start(server.pid(), RSS_CEILING);
    let mut c = server.resp();
    for (i, (key, shard)) in own_and_other(&mut c, "huge").iter().enumerate() {
        dog.doing(format!("64 MiB on the {shard}"));
        let value = pattern(64 << 20, i as u64 + 1);
        let started = Instant::now();
        c.send_command(&[b"SET".as_slice(), key.as_bytes(), &value])
            .expect("send");
        assert_eq!(c.read(REPLY_WAIT).ok(), Some(ok()), "SET on the {shard}");
        c.send_command(&["GET", key]).expect("send");
        assert_bulk(c.read(REPLY_WAIT), &value, &format!("GET on the {shard}"));
        assert_eq!(
            c.call(&["STRLEN", key]).ok(),
            Some(Value::Int(64 << 20)),
            "STRLEN on the {shard}"
        );
        eprintln!(
            "  64 MiB SET + GET on the {shard}: {:.2} s",
            started.elapsed().as_secs_f64()
        );
    }
    dog.check();
}

#[test]
fn a_pipeline_of_100k_commands_in_one_write_is_answered_in_order() {
    let server = Server::start(SHARDS, &[]);
    let mut c = server.resp();
    let mut pipeline = Vec::new();
    let mut expected = Vec::new();
    for i in 0..50_000 {
        // Consecutive keys land on both shards.
        let key = format!("p:{i}");
        let value = format!("v{i}");
        resp::push_command(&mut pipeline, &["SET", &key, &value]);
        expected.push(ok());
        resp::push_command(&mut pipeline, &["GET", &key]);
        expected.push(bulk(value));
    }
    let started = Instant::now();
    c.send(&pipeline).expect("one write of the whole pipeline");
    for (i, want) in expected.iter().enumerate() {
        let got = c.read(REPLY_WAIT);
        assert!(
            got.as_ref().ok() == Some(want),
            "reply {i} of 100000: {got:?}, expected {want:?}"
        );
    }
    eprintln!(
        "  100000 commands ({} KiB) answered in {:.2} s",
        pipeline.len() >> 10,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        c.call(&["DBSIZE"]).ok(),
        Some(Value::Int(50_000)),
        "every SET landed"
    );
}

#[test]
fn two_hundred_clients_send_256_kib_pipelines_at_once() {
    const CLIENTS: usize = 200;
    let server = Server::start(SHARDS, &[]);
    let dog = Arc::new(Watchdog::start(server.pid(), RSS_CEILING));
    let port = server.port;
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut c = resp::Conn::connect(port).expect("connect");
                let mut pipeline = Vec::new();
                let mut expected = Vec::new();
                let mut j = 0;
                while pipeline.len() < 256 << 10 {
                    let key = format!("c{id}:{j}");
                    let value = pattern(100, (id * 1_000_000 + j) as u64);
                    resp::push_command(&mut pipeline, &[b"SET".as_slice(), key.as_bytes(), &value]);
                    expected.push(ok());
                    resp::push_command(&mut pipeline, &["GET", &key]);
                    expected.push(bulk(value));
                    j += 1;
                }
                // Every client's whole pipeline arrives at once.
                barrier.wait();
                c.send(&pipeline).expect("send the pipeline");
                for (i, want) in expected.iter().enumerate() {
                    let got = c.read(REPLY_WAIT);
                    assert!(
                        got.as_ref().ok() == Some(want),
                        "client {id}, reply {i} of {}: {got:?}",
                        expected.len()
                    );
                }
                expected.len()
            })
        })
        .collect();
    let mut replies = 0;
    for (id, client) in clients.into_iter().enumerate() {
        replies += client
            .join()
            .unwrap_or_else(|_| panic!("client {id} got a wrong reply"));
    }
    dog.check();
    eprintln!(
        "  {CLIENTS} clients, {replies} replies checked in {:.2} s, server peak RSS {} MiB",
        started.elapsed().as_secs_f64(),
        dog.peak() >> 20
    );
}

/// A client pipelines `gets` GETs of a 1 MiB value on `shard` and reads nothing for a while:
/// the server stops parsing its input once its unsent output passes the back-pressure mark, so
/// its memory stays bounded, and other clients are served meanwhile. Then the client reads
/// everything, every reply intact.
fn unread_replies_are_bounded(other_shard: bool) {
    const GETS: usize = 256;
    let server = Server::start(SHARDS, &[]);
    let dog = Watchdog::start(server.pid(), RSS_CEILING);
    let mut c = server.resp();
    let [own, other] = own_and_other(&mut c, "big");
    let (key, shard) = if other_shard { other } else { own };
    let value = pattern(1 << 20, 42);
    assert_eq!(
        c.call(&[b"SET".as_slice(), key.as_bytes(), &value]).ok(),
        Some(ok())
    );
    std::thread::sleep(Duration::from_millis(200));
    let before = server.rss().expect("rss");
    dog.reset_peak();
    dog.doing(format!("{GETS} unread GETs of 1 MiB on the {shard}"));
    let mut pipeline = Vec::new();
    for _ in 0..GETS {
        resp::push_command(&mut pipeline, &["GET", &key]);
    }
    c.send(&pipeline).expect("send");

    // Meanwhile, another client is served on both shards.
    let mut slowest = Duration::ZERO;
    let until = Instant::now() + Duration::from_secs(2);
    let mut other_client = server.resp();
    let mut rounds = 0;
    while Instant::now() < until {
        for k in ["{foo}x", "{bar}x"] {
            let asked = Instant::now();
            assert_eq!(
                other_client.call(&["SET", k, "1"]).ok(),
                Some(ok()),
                "another client while one does not read"
            );
            slowest = slowest.max(asked.elapsed());
        }
        rounds += 1;
    }
    dog.check();
    let peak = dog.peak();
    eprintln!(
        "  {GETS} MiB of replies unread on the {shard}: RSS {} MiB before, peak {} MiB; another \
         client served {rounds} rounds, slowest {:.0} ms",
        before >> 20,
        peak >> 20,
        slowest.as_secs_f64() * 1000.0
    );
    assert!(
        peak < before + (96 << 20),
        "{GETS} MiB of unread replies on the {shard} took the server from {} to {} MiB: the \
         back-pressure does not bound them",
        before >> 20,
        peak >> 20
    );
    assert!(
        slowest < Duration::from_secs(5),
        "another client waited {slowest:?}"
    );
    for i in 0..GETS {
        assert_bulk(c.read(REPLY_WAIT), &value, &format!("GET {i} of {GETS}"));
    }
}

#[test]
fn unread_replies_are_bounded_on_the_own_shard() {
    unread_replies_are_bounded(false);
}

#[test]
fn unread_replies_are_bounded_on_the_other_shard() {
    unread_replies_are_bounded(true);
}

#[test]
fn a_reset_in_the_middle_of_a_reply_does_not_disturb_other_clients() {
    let server = Server::start(SHARDS, &[]);
    let dog = Watchdog::start(server.pid(), RSS_CEILING);
    let value = pattern(8 << 20, 9);
    let mut c = server.resp();
    for key in ["{foo}big", "{bar}big"] {
        assert_eq!(
            c.call(&[b"SET".as_slice(), key.as_bytes(), &value]).ok(),
            Some(ok())
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let port = server.port;
    let readers: Vec<_> = (0..3)
        .map(|r| {
            let (stop, value) = (stop.clone(), value.clone());
            std::thread::spawn(move || {
                let mut c = resp::Conn::connect(port).expect("connect");
                let mut rounds = 0;
                while !stop.load(Ordering::Relaxed) || rounds == 0 {
                    let mut pipeline = Vec::new();
                    resp::push_command(&mut pipeline, &["GET", "{foo}big"]);
                    resp::push_command(&mut pipeline, &["GET", "{bar}big"]);
                    c.send(&pipeline).expect("send");
                    for key in ["{foo}big", "{bar}big"] {
                        assert_bulk(c.read(REPLY_WAIT), &value, &format!("reader {r}: {key}"));
                    }
                    rounds += 1;
                }
                rounds
            })
        })
        .collect();
    for round in 0..20 {
        dog.doing(format!("reset {round}"));
        let mut s = server.raw();
        let mut pipeline = Vec::new();
        for _ in 0..4 {
            resp::push_command(&mut pipeline, &["GET", "{foo}big"]);
            resp::push_command(&mut pipeline, &["GET", "{bar}big"]);
        }
        s.write_all(&pipeline).expect("send");
        s.set_read_timeout(Some(REPLY_WAIT)).expect("timeout");
        let mut buf = vec![0u8; 256 << 10];
        let mut got = 0;
        while got < 3 << 20 {
            match s.read(&mut buf) {
                Ok(0) => panic!("reset {round}: the server closed the client after {got} bytes"),
                Err(e) => panic!("reset {round}: {e} after {got} bytes"),
                Ok(n) => got += n,
            }
        }
        set_linger_zero(&s);
        drop(s);
    }
    stop.store(true, Ordering::Relaxed);
    let rounds: Vec<usize> = readers
        .into_iter()
        .map(|r| r.join().expect("a reader got a wrong reply"))
        .collect();
    dog.check();
    server
        .answers_ping(REPLY_WAIT)
        .expect("serving after the resets");
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.info_number("connected_clients") > 2 {
        assert!(Instant::now() < deadline, "reset connections still listed");
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "  20 resets mid-reply; readers checked {rounds:?} rounds of 16 MiB; peak RSS {} MiB",
        dog.peak() >> 20
    );
}

/// Sends `input` one byte per write (pausing now and then so the server sees the pieces apart,
/// not coalesced) and checks the replies.
fn trickle(c: &mut resp::Conn, input: &[u8], expected: &[Value]) {
    for (i, byte) in input.iter().enumerate() {
        c.send(std::slice::from_ref(byte)).expect("send one byte");
        if i % 16 == 0 {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    for (i, want) in expected.iter().enumerate() {
        let got = c.read(REPLY_WAIT);
        assert!(
            got.as_ref().ok() == Some(want),
            "reply {i}: {:?}",
            got.map(|v| format!("{v:?}").chars().take(200).collect::<String>())
        );
    }
}

#[test]
fn commands_arriving_one_byte_at_a_time() {
    let server = Server::start(SHARDS, &[]);
    let mut c = server.resp();
    c.stream.set_nodelay(true).expect("nodelay");
    let value = pattern(3000, 5);
    let started = Instant::now();
    let mut input = Vec::new();
    let mut expected = Vec::new();
    for key in ["{foo}k", "{bar}k"] {
        resp::push_command(&mut input, &[b"SET".as_slice(), key.as_bytes(), &value]);
        expected.push(ok());
        resp::push_command(&mut input, &["GET", key]);
        expected.push(bulk(value.clone()));
    }
    input.extend_from_slice(b"PING\r\nECHO \"a b\"\r\n");
    expected.push(Value::Simple("PONG".into()));
    expected.push(bulk("a b"));
    trickle(&mut c, &input, &expected);
    let mut sent = input.len();
    // A command over both shards, once the writes are answered (one right behind writes
    // forwarded to the other shard is `a_pipeline_reads_its_own_writes_across_shards`'s
    // subject, not this test's).
    let mut input = Vec::new();
    resp::push_command(&mut input, &["MGET", "{foo}k", "{bar}k", "nosuch"]);
    let expected = [Value::Array(Some(vec![
        bulk(value.clone()),
        bulk(value.clone()),
        Value::Bulk(None),
    ]))];
    trickle(&mut c, &input, &expected);
    sent += input.len();
    eprintln!(
        "  {sent} bytes sent one at a time, all answered, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// A pipeline (`$V` stands for a value unique to the round) and the reply its last command
/// must get.
type OrderCase = (
    &'static str,
    &'static [&'static [&'static str]],
    fn(&str) -> Value,
);

/// A pipeline's commands take effect in order, whichever shard each runs on: a command over
/// several shards (run by a task) sees the writes sent before it in the same pipeline, even
/// those forwarded to the other shard.
#[test]
fn a_pipeline_reads_its_own_writes_across_shards() {
    let server = Server::start(SHARDS, &[]);
    let cases: [OrderCase; 5] = [
        (
            "SET, SET, MGET",
            &[
                &["SET", "{foo}k", "$V"],
                &["SET", "{bar}k", "$V"],
                &["MGET", "{foo}k", "{bar}k"],
            ],
            |v| Value::Array(Some(vec![bulk(v), bulk(v)])),
        ),
        (
            "SET, SET, EXISTS",
            &[
                &["SET", "{foo}k", "$V"],
                &["SET", "{bar}k", "$V"],
                &["EXISTS", "{foo}k", "{bar}k"],
            ],
            |_| Value::Int(2),
        ),
        (
            "SET, RENAME to the other shard",
            &[
                &["SET", "{foo}k", "$V"],
                &["SET", "{bar}k", "$V"],
                &["RENAME", "{foo}k", "{bar}r"],
            ],
            |_| ok(),
        ),
        (
            "SET, SET, MULTI MGET EXEC",
            &[
                &["SET", "{foo}k", "$V"],
                &["SET", "{bar}k", "$V"],
                &["MULTI"],
                &["MGET", "{foo}k", "{bar}k"],
                &["EXEC"],
            ],
            |v| Value::Array(Some(vec![Value::Array(Some(vec![bulk(v), bulk(v)]))])),
        ),
        (
            "RPUSH, RPUSH, BLPOP over both shards",
            &[
                &["RPUSH", "{foo}l", "$V"],
                &["RPUSH", "{bar}l", "$V"],
                &["BLPOP", "{foo}l", "{bar}l", "1"],
            ],
            |v| Value::Array(Some(vec![bulk("{foo}l"), bulk(v)])),
        ),
    ];
    let mut failures = Vec::new();
    for (name, commands, last_reply) in cases {
        let mut wrong = 0;
        let mut example = None;
        // Fresh connections land on both cores.
        for round in 0..20 {
            let mut c = server.resp();
            assert_eq!(c.call(&["FLUSHALL"]).ok(), Some(ok()));
            let v = format!("v{round}");
            let mut pipeline = Vec::new();
            for cmd in commands {
                let args: Vec<&str> = cmd
                    .iter()
                    .map(|a| if *a == "$V" { v.as_str() } else { a })
                    .collect();
                resp::push_command(&mut pipeline, &args);
            }
            c.send(&pipeline).expect("send");
            let replies: Vec<Value> = (0..commands.len())
                .map(|_| c.read(REPLY_WAIT).expect("reply"))
                .collect();
            let want = last_reply(&v);
            if replies.last() != Some(&want) {
                wrong += 1;
                example.get_or_insert(format!("{replies:?}, the last one expected {want:?}"));
            }
        }
        if wrong > 0 {
            failures.push(format!(
                "{name}: {wrong}/20 wrong, e.g. {}",
                example.unwrap_or_default()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn an_idle_server_with_1000_connections_uses_little_cpu() {
    let server = Server::start(SHARDS, &[]);
    let mut conns: Vec<TcpStream> = Vec::with_capacity(1000);
    for _ in 0..1000 {
        let mut s = server.raw();
        s.write_all(b"PING\r\n").expect("send");
        conns.push(s);
    }
    for s in &mut conns {
        let mut pong = [0u8; 7];
        s.read_exact(&mut pong).expect("PONG");
        assert_eq!(&pong, b"+PONG\r\n");
    }
    std::thread::sleep(Duration::from_millis(500));
    let before = server.cpu_time().expect("cpu time");
    let window = Duration::from_secs(3);
    std::thread::sleep(window);
    let used = server.cpu_time().expect("cpu time") - before;
    let share = used.as_secs_f64() / window.as_secs_f64();
    eprintln!(
        "  idle with 1000 connections: {:.1} ms of CPU in 3 s ({:.2}% of one core)",
        used.as_secs_f64() * 1000.0,
        share * 100.0
    );
    assert!(
        share < 0.05,
        "an idle server with 1000 connections used {:.1}% of a core",
        share * 100.0
    );
    drop(conns);
}
