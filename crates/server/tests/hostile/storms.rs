//! Connection storms: thousands of connections opened and dropped, resets in the middle of big
//! replies.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{check_health, REPLY_WAIT, RSS_LIMIT};
use crate::common::resp::{self, Value};
use crate::common::{set_linger_zero, Server, Watchdog};

/// Thousands of connections opened and dropped in bursts (some after a request they do not
/// wait for, some with half a request, half of them reset): none is leaked, memory stays
/// bounded, and the server keeps serving.
#[test]
fn connection_storms_leak_nothing() {
    let server = Server::start(2, &[]);
    let dog = Watchdog::start(server.pid(), RSS_LIMIT);
    let mut rss = Vec::new();
    for burst in 0..3 {
        dog.doing(format!("burst {burst} of 2000 connections"));
        let started = Instant::now();
        let mut conns = Vec::with_capacity(2000);
        for i in 0..2000 {
            let mut s = TcpStream::connect(("127.0.0.1", server.port))
                .unwrap_or_else(|e| panic!("connection {i} of burst {burst}: {e}"));
            match i % 3 {
                0 => s.write_all(b"PING\r\n").expect("send"),
                1 => s
                    .write_all(b"*2\r\n$3\r\nGET\r\n$10\r\n{foo}")
                    .expect("send"),
                _ => {}
            }
            if i % 2 == 0 {
                set_linger_zero(&s);
            }
            conns.push(s);
        }
        server
            .answers_ping(REPLY_WAIT)
            .unwrap_or_else(|e| panic!("with 2000 connections open: {e}"));
        // Connections the kernel completed may still wait in an accept queue (or, past the
        // backlog, for a SYN-ACK retransmit): give the server time to take them all.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let clients = server.info_number("connected_clients");
            if clients > 2000 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{clients} clients connected of 2000 (+ the INFO connection)"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(conns);
        rss.push(check_health(
            &server,
            &dog,
            &format!(
                "burst {burst}: 2000 connections in {:.1} s",
                started.elapsed().as_secs_f64()
            ),
            0,
        ));
    }
    assert!(
        rss[2] <= rss[0] + (32 << 20),
        "RSS grew from burst to burst: {:?} MiB",
        rss.iter().map(|r| r >> 20).collect::<Vec<_>>()
    );
}

/// Clients that reset their connection while a big reply is being sent to them: the server
/// drops the rest of the reply, and a client beside them is served correctly throughout.
#[test]
fn resets_during_big_replies() {
    let server = Server::start(2, &[]);
    let dog = Watchdog::start(server.pid(), RSS_LIMIT);
    let value = vec![b'v'; 8 << 20];
    let mut c = server.resp();
    for key in ["{foo}big", "{bar}big"] {
        assert_eq!(
            c.call(&[b"SET".as_slice(), key.as_bytes(), &value]).ok(),
            Some(Value::Simple("OK".into()))
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let port = server.port;
    let bystander = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut c = resp::Conn::connect(port).expect("connect");
            let mut served = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for key in ["{foo}n", "{bar}n"] {
                    let n = served.to_string();
                    assert_eq!(
                        c.call(&["SET", key, &n]).ok(),
                        Some(Value::Simple("OK".into()))
                    );
                    assert_eq!(
                        c.call(&["GET", key]).ok(),
                        Some(Value::Bulk(Some(n.into_bytes())))
                    );
                }
                served += 1;
            }
            served
        })
    };
    for round in 0..20 {
        dog.doing(format!("reset during big replies, round {round}"));
        let mut s = server.raw();
        let mut pipeline = Vec::new();
        for _ in 0..4 {
            resp::push_command(&mut pipeline, &["GET", "{foo}big"]);
            resp::push_command(&mut pipeline, &["GET", "{bar}big"]);
        }
        s.write_all(&pipeline).expect("send");
        // Take part of the first reply, then reset.
        s.set_read_timeout(Some(REPLY_WAIT)).expect("timeout");
        let mut buf = vec![0u8; 256 << 10];
        let mut got = 0;
        while got < (1 << 20) {
            match s.read(&mut buf) {
                Ok(0) => panic!("round {round}: the server closed the client after {got} bytes"),
                Err(e) => panic!("round {round}: {e} after {got} bytes"),
                Ok(n) => got += n,
            }
        }
        set_linger_zero(&s);
        drop(s);
    }
    stop.store(true, Ordering::Relaxed);
    let served = bystander
        .join()
        .expect("the bystander was served correctly");
    check_health(&server, &dog, "20 resets during 64 MiB replies", 1);
    eprintln!("  bystander: {served} rounds served meanwhile");
}

/// A client that pipelines many reads of big values on both shards and reads its replies only
/// later: the server holds a bounded window of encoded output (the rest waits as references
/// to the values), and every reply then arrives whole and in order.
#[test]
fn slow_reader_of_big_values_is_served_in_bounded_memory() {
    let server = Server::start(2, &[]);
    let dog = Watchdog::start(server.pid(), RSS_LIMIT);
    let (foo, bar) = (vec![b'f'; 8 << 20], vec![b'b'; 8 << 20]);
    let mut c = resp::Conn::connect(server.port).expect("connect");
    for (key, value) in [("{foo}big", &foo), ("{bar}big", &bar)] {
        assert_eq!(
            c.call(&[b"SET".as_slice(), key.as_bytes(), value]).ok(),
            Some(Value::Simple("OK".into()))
        );
    }
    let rss_before = server.rss().expect("server RSS");
    dog.reset_peak();
    dog.doing("32 pipelined reads of 8 MiB values, not read yet");
    // 256 MiB of replies asked for at once.
    let mut pipeline = Vec::new();
    for _ in 0..16 {
        resp::push_command(&mut pipeline, &["GET", "{foo}big"]);
        resp::push_command(&mut pipeline, &["GET", "{bar}big"]);
    }
    c.send(&pipeline).expect("send");
    std::thread::sleep(Duration::from_secs(2));
    let held = dog.peak().saturating_sub(rss_before);
    eprintln!(
        "  32 unread 8 MiB replies: RSS +{} MiB at the peak",
        held >> 20
    );
    for i in 0..32 {
        let want = if i % 2 == 0 { &foo } else { &bar };
        match c.read(REPLY_WAIT) {
            Ok(Value::Bulk(Some(got))) => assert!(&got == want, "reply {i} is not its value"),
            other => panic!("reply {i}: {:?}", other.map(|v| v.text())),
        }
    }
    check_health(&server, &dog, "32 big reads read late", 1);
    // Encoded ahead: 16 MiB and one value; on the other shard, its replies in flight.
    assert!(
        held < 256 << 20,
        "the unread replies grew the server by {} MiB",
        held >> 20
    );
}
