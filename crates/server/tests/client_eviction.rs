//! Client eviction (`maxmemory-clients`) over two shards: a client whose buffers take the
//! server's clients past the limit is closed, biggest first across cores; CLIENT NO-EVICT
//! keeps one; INFO counts `evicted_clients`. A client's memory counts an argument as it
//! arrives (in a buffer that fits it), WATCHed keys and tracking prefixes; the output buffer
//! limit closes a client before its reply counts for eviction.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Server;
use redis::Value;

fn cmd(c: &mut redis::Connection, args: &[&str]) -> redis::RedisResult<Value> {
    let mut command = redis::cmd(args[0]);
    for a in &args[1..] {
        command.arg(*a);
    }
    command.query(c)
}

fn ok(c: &mut redis::Connection, args: &[&str]) {
    assert_eq!(cmd(c, args), Ok(Value::Okay), "{args:?}");
}

/// A connection named `name` that has sent the start of a command with a `size`-byte
/// argument and `sent` bytes of it (the rest never comes): its query buffer holds them.
fn filler(s: &Server, name: &str, size: usize, sent: usize) -> TcpStream {
    let mut t = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    t.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let setname = format!(
        "*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n${}\r\n{name}\r\n",
        name.len()
    );
    t.write_all(setname.as_bytes()).expect("write");
    let mut buf = [0u8; 5];
    t.read_exact(&mut buf).expect("+OK");
    let mut req = format!("*2\r\n${size}\r\n").into_bytes();
    req.resize(req.len() + sent, b'v');
    t.write_all(&req).expect("write");
    t
}

/// The CLIENT LIST lines, by client name.
fn listed(c: &mut redis::Connection) -> Vec<(String, u64)> {
    let text: String = redis::cmd("CLIENT").arg("LIST").query(c).expect("list");
    text.lines()
        .map(|l| {
            let field = |f: &str| {
                l.split(' ')
                    .find_map(|w| w.strip_prefix(f))
                    .unwrap_or_default()
                    .to_string()
            };
            (field("name="), field("tot-mem=").parse().unwrap_or(0))
        })
        .collect()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn evicted(c: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO").arg("stats").query(c).expect("info");
    info.lines()
        .find_map(|l| l.strip_prefix("evicted_clients:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("evicted_clients")
}

/// True once the server has closed the connection.
fn closed(t: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(t.read(&mut buf), Ok(0) | Err(_))
}

#[test]
fn a_query_buffer_past_the_limit_closes_its_client_unless_no_evict() {
    let s = Server::start(2, &[]);
    let mut control = s.conn();
    ok(&mut control, &["CLIENT", "NO-EVICT", "on"]);
    ok(&mut control, &["CONFIG", "SET", "maxmemory-clients", "2mb"]);
    assert_eq!(evicted(&mut control), 0);
    // A quarter of the limit stays.
    let _small = filler(&s, "small", 1 << 20, 300 << 10);
    wait_for("the small client's buffer", || {
        listed(&mut control)
            .iter()
            .any(|(n, mem)| n == "small" && *mem >= 300 << 10)
    });
    // Past it, the client goes.
    let mut big = filler(&s, "big", 4 << 20, 2500 << 10);
    assert!(closed(&mut big));
    wait_for("the big client to go", || {
        !listed(&mut control).iter().any(|(n, _)| n == "big")
    });
    let l = listed(&mut control);
    assert_eq!(evicted(&mut control), 1, "{l:?}");
    assert!(l.iter().any(|(n, _)| n == "small"), "{l:?}");
    // NO-EVICT keeps a client even past the limit; tot-mem shows it.
    let mut kept = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    kept.write_all(b"CLIENT NO-EVICT on\r\nCLIENT SETNAME kept\r\n")
        .expect("write");
    let mut buf = [0u8; 10];
    kept.read_exact(&mut buf).expect("+OK twice");
    let mut req = b"*2\r\n$4000000\r\n".to_vec();
    req.resize(req.len() + (2500 << 10), b'v');
    kept.write_all(&req).expect("write");
    wait_for("the kept client's buffer", || {
        listed(&mut control)
            .iter()
            .any(|(n, mem)| n == "kept" && *mem > 2 << 20)
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(listed(&mut control).iter().any(|(n, _)| n == "kept"));
    // Other clients still get evicted meanwhile (the total is over): the small one goes.
    wait_for("the small client to go", || {
        !listed(&mut control).iter().any(|(n, _)| n == "small")
    });
}

#[test]
fn lowering_the_limit_closes_the_biggest_clients_of_every_core() {
    let s = Server::start(2, &[]);
    let mut control = s.conn();
    ok(&mut control, &["CLIENT", "NO-EVICT", "on"]);
    // Twelve clients over both cores: four of ~600 KB, eight of ~150 KB.
    let mut conns = Vec::new();
    for i in 0..4 {
        conns.push(filler(&s, &format!("big{i}"), 2 << 20, 600 << 10));
    }
    for i in 0..8 {
        conns.push(filler(&s, &format!("small{i}"), 2 << 20, 150 << 10));
    }
    wait_for("every buffer", || {
        let l = listed(&mut control);
        (0..4).all(|i| {
            l.iter()
                .any(|(n, m)| *n == format!("big{i}") && *m >= 600 << 10)
        }) && (0..8).all(|i| {
            l.iter()
                .any(|(n, m)| *n == format!("small{i}") && *m >= 150 << 10)
        })
    });
    // ~3.6 MB in all: a limit of 3 MB sends only big ones (one is enough).
    ok(&mut control, &["CONFIG", "SET", "maxmemory-clients", "3mb"]);
    let l = listed(&mut control);
    let bigs = l.iter().filter(|(n, _)| n.starts_with("big")).count();
    let smalls = l.iter().filter(|(n, _)| n.starts_with("small")).count();
    assert!(bigs < 4, "{l:?}");
    assert_eq!(smalls, 8, "{l:?}");
    let total: u64 = l.iter().map(|(_, m)| m).sum();
    assert!(total < 3 << 20, "{total} {l:?}");
    assert_eq!(evicted(&mut control), 4 - bigs as u64);
    // A percentage of maxmemory: 20% of 10 MB is 2 MB.
    ok(
        &mut control,
        &[
            "CONFIG",
            "SET",
            "maxmemory",
            "10mb",
            "maxmemory-clients",
            "20%",
        ],
    );
    let l = listed(&mut control);
    assert_eq!(
        l.iter().filter(|(n, _)| n.starts_with("big")).count(),
        0,
        "{l:?}"
    );
    let total: u64 = l.iter().map(|(_, m)| m).sum();
    assert!(total < 2 << 20, "{total} {l:?}");
    ok(&mut control, &["CONFIG", "SET", "maxmemory", "0"]);
}

#[test]
fn a_bad_percentage_changes_nothing() {
    let s = Server::start(2, &[]);
    let mut c = s.conn();
    ok(&mut c, &["CONFIG", "SET", "maxmemory", "10000002"]);
    let err = cmd(
        &mut c,
        &[
            "CONFIG",
            "SET",
            "maxmemory",
            "10000001",
            "maxmemory-clients",
            "200%",
            "client-query-buffer-limit",
            "invalid",
        ],
    )
    .expect_err("refused");
    assert!(
        err.to_string().contains(
            "CONFIG SET failed (possibly related to argument 'maxmemory-clients') - percentage argument must be less or equal to 100"
        ),
        "{err}"
    );
    let get = |c: &mut redis::Connection, name: &str| -> String {
        let v: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg(name)
            .query(c)
            .expect("get");
        v.get(1).cloned().unwrap_or_default()
    };
    assert_eq!(get(&mut c, "maxmemory"), "10000002");
    assert_eq!(get(&mut c, "maxmemory-clients"), "0");
    ok(&mut c, &["CONFIG", "SET", "maxmemory-clients", "7%"]);
    assert_eq!(get(&mut c, "maxmemory-clients"), "7%");
    ok(
        &mut c,
        &["CONFIG", "SET", "maxmemory-clients", "0", "maxmemory", "0"],
    );
}

/// The `tot-mem` CLIENT LIST shows for client `name` (0 when it is not listed).
fn tot_mem(c: &mut redis::Connection, name: &str) -> u64 {
    listed(c)
        .into_iter()
        .find(|(n, _)| n == name)
        .map_or(0, |(_, mem)| mem)
}

#[test]
fn an_argument_arriving_is_counted_at_once_in_a_buffer_that_fits_it() {
    let s = Server::start(2, &[]);
    let mut c = s.conn();
    // No command of the writer is served again: the listing sees what it received.
    let size = 300_000;
    let _f = filler(&s, "writer", size, size);
    wait_for("the argument counted", || {
        tot_mem(&mut c, "writer") >= size as u64
    });
    // Its buffer grew to the argument's end, not to the next power of two (524288).
    let mem = tot_mem(&mut c, "writer");
    assert!(mem < size as u64 + 64 * 1024, "tot-mem {mem}");
}

#[test]
fn watched_keys_and_tracking_prefixes_count_in_a_clients_memory() {
    let s = Server::start(2, &[]);
    let mut admin = s.conn();
    let mut w = s.conn();
    ok(&mut w, &["CLIENT", "SETNAME", "watcher"]);
    let before = tot_mem(&mut admin, "watcher");
    let keys: Vec<String> = (0..1000).map(|i| format!("watched:{i}")).collect();
    let mut watch = redis::cmd("WATCH");
    for k in &keys {
        watch.arg(k);
    }
    let _: () = watch.query(&mut w).expect("WATCH");
    let watching = tot_mem(&mut admin, "watcher");
    assert!(watching >= before + 1000 * 8, "{before} -> {watching}");
    let line: String = redis::cmd("CLIENT")
        .arg("INFO")
        .query(&mut w)
        .expect("INFO");
    assert!(!line.contains(" multi-mem=0 "), "{line}");
    ok(&mut w, &["UNWATCH"]);
    assert!(tot_mem(&mut admin, "watcher") < watching);

    let mut t = s.conn();
    ok(&mut t, &["CLIENT", "SETNAME", "tracker"]);
    let before = tot_mem(&mut admin, "tracker");
    let mut on = redis::cmd("CLIENT");
    on.arg("TRACKING").arg("ON").arg("BCAST");
    for i in 0..500 {
        on.arg("PREFIX").arg(format!("prefix:{i:05}:"));
    }
    let _: () = on.query(&mut t).expect("TRACKING");
    let tracking = tot_mem(&mut admin, "tracker");
    assert!(tracking >= before + 500 * 8, "{before} -> {tracking}");

    // Past the limit, WATCH alone gets a client evicted, as in Redis.
    ok(&mut admin, &["CLIENT", "NO-EVICT", "on"]);
    ok(
        &mut admin,
        &["CONFIG", "SET", "maxmemory-clients", "200000"],
    );
    let mut w2 = s.conn();
    let evicted_at = (0..20_000).find(|i| {
        redis::cmd("WATCH")
            .arg(format!("many:{i}"))
            .query::<()>(&mut w2)
            .is_err()
    });
    assert!(evicted_at.is_some(), "WATCH never evicted its client");
    assert!(evicted(&mut admin) >= 1);
}

#[test]
fn the_output_buffer_limit_closes_before_eviction_counts_the_reply() {
    let s = Server::start(2, &[]);
    let mut admin = s.conn();
    ok(&mut admin, &["CLIENT", "NO-EVICT", "on"]);
    ok(&mut admin, &["CONFIG", "SET", "maxmemory-clients", "10mb"]);
    ok(
        &mut admin,
        &[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "normal 3mb 0 0",
        ],
    );
    let _: i64 = redis::cmd("SETRANGE")
        .arg("k")
        .arg(4 << 20)
        .arg("v")
        .query(&mut admin)
        .expect("SETRANGE");
    // 6 MiB of query buffer: with a 4 MiB reply counted the clients would pass 10 MiB.
    let _q = filler(&s, "qbuf", 6 << 20, 6 << 20);
    wait_for("the query buffer", || {
        tot_mem(&mut admin, "qbuf") >= 6 << 20
    });
    for _ in 0..2 {
        let mut g = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
        g.write_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n").expect("GET");
        wait_for("the reader closed", || closed(&mut g));
    }
    assert_eq!(evicted(&mut admin), 0);
    assert!(tot_mem(&mut admin, "qbuf") >= 6 << 20);
}
