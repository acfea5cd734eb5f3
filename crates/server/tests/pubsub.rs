//! Pub/Sub across cores: publishers and subscribers on different cores, delivery order and
//! counts, patterns, sharded channels, keyspace notifications, MONITOR, and a subscriber that
//! never reads.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Server;

/// Reads RESP values off a raw socket (enough of RESP2/RESP3 for these tests).
struct Resp {
    s: TcpStream,
    buf: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq)]
enum V {
    Str(Vec<u8>),
    Int(i64),
    Nil,
    Arr(Vec<V>),
    Err(String),
}

impl V {
    fn text(&self) -> String {
        match self {
            V::Str(b) => String::from_utf8_lossy(b).into_owned(),
            V::Int(n) => n.to_string(),
            V::Nil => "(nil)".into(),
            V::Err(e) => e.clone(),
            V::Arr(items) => items.iter().map(V::text).collect::<Vec<_>>().join(" "),
        }
    }
}

impl Resp {
    fn connect(port: u16) -> Resp {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        Resp { s, buf: Vec::new() }
    }

    fn send(&mut self, args: &[&str]) {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
        self.s.write_all(&out).expect("write");
    }

    fn cmd(&mut self, args: &[&str]) -> V {
        self.send(args);
        self.read()
    }

    fn line(&mut self) -> Vec<u8> {
        loop {
            if let Some(p) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.buf[..p].to_vec();
                self.buf.drain(..p + 2);
                return line;
            }
            self.fill();
        }
    }

    fn fill(&mut self) {
        let mut chunk = [0u8; 65536];
        let n = self.s.read(&mut chunk).expect("read");
        assert!(n > 0, "connection closed");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    fn read(&mut self) -> V {
        let line = self.line();
        let (kind, rest) = (line[0], String::from_utf8_lossy(&line[1..]).into_owned());
        match kind {
            b'+' => V::Str(rest.into_bytes()),
            b'-' => V::Err(rest),
            b':' => V::Int(rest.parse().expect("int")),
            b'_' => V::Nil,
            b'$' => {
                let n: i64 = rest.parse().expect("len");
                if n < 0 {
                    return V::Nil;
                }
                while self.buf.len() < n as usize + 2 {
                    self.fill();
                }
                let data = self.buf[..n as usize].to_vec();
                self.buf.drain(..n as usize + 2);
                V::Str(data)
            }
            b'*' | b'>' | b'%' => {
                let n: i64 = rest.parse().expect("len");
                if n < 0 {
                    return V::Nil;
                }
                let n = if kind == b'%' { n * 2 } else { n };
                V::Arr((0..n).map(|_| self.read()).collect())
            }
            _ => panic!("unexpected reply {line:?}"),
        }
    }
}

/// A channel name of each shard (keyslots differ), so tests cover both cores.
const CHANNELS: [&str; 4] = ["news", "sport", "weather", "tech"];

#[test]
fn messages_reach_subscribers_on_every_core_in_order_with_counts() {
    let server = Server::start(2, &[]);
    // Several subscribers: the kernel spreads connections over both cores.
    let mut subs: Vec<Resp> = (0..6).map(|_| Resp::connect(server.port)).collect();
    for sub in &mut subs {
        sub.send(&["SUBSCRIBE", CHANNELS[0], CHANNELS[1]]);
        assert_eq!(sub.read().text(), format!("subscribe {} 1", CHANNELS[0]));
        assert_eq!(sub.read().text(), format!("subscribe {} 2", CHANNELS[1]));
    }
    let mut publisher = Resp::connect(server.port);
    for i in 0..200 {
        let channel = CHANNELS[i % 2];
        let n = publisher.cmd(&["PUBLISH", channel, &format!("m{i}")]);
        assert_eq!(n, V::Int(6), "every subscriber counted, wherever it is");
    }
    assert_eq!(publisher.cmd(&["PUBLISH", "nobody", "x"]), V::Int(0));
    for sub in &mut subs {
        for i in 0..200 {
            let msg = sub.read();
            assert_eq!(
                msg.text(),
                format!("message {} m{i}", CHANNELS[i % 2]),
                "messages of one publisher arrive in the order published"
            );
        }
    }
    // Introspection sees every core's subscribers.
    let mut c = Resp::connect(server.port);
    assert_eq!(
        c.cmd(&["PUBSUB", "NUMSUB", CHANNELS[0], CHANNELS[2]])
            .text(),
        format!("{} 6 {} 0", CHANNELS[0], CHANNELS[2])
    );
    let V::Arr(mut chans) = c.cmd(&["PUBSUB", "CHANNELS"]) else {
        panic!("array")
    };
    chans.sort_by_key(|v| v.text());
    assert_eq!(chans.len(), 2);
    // Unsubscribing is confirmed once every core forgot it: the next count agrees.
    for sub in &mut subs {
        sub.send(&["UNSUBSCRIBE"]);
        let a = sub.read().text();
        let b = sub.read().text();
        let mut both = [a, b];
        both.sort();
        assert!(both[0].starts_with("unsubscribe"), "{both:?}");
    }
    assert_eq!(publisher.cmd(&["PUBLISH", CHANNELS[0], "late"]), V::Int(0));
}

#[test]
fn patterns_and_sharded_channels() {
    let server = Server::start(2, &[]);
    let mut psub = Resp::connect(server.port);
    assert_eq!(psub.cmd(&["PSUBSCRIBE", "n*"]).text(), "psubscribe n* 1");
    let mut ssub = Resp::connect(server.port);
    assert_eq!(
        ssub.cmd(&["SSUBSCRIBE", "news"]).text(),
        "ssubscribe news 1"
    );
    let mut p = Resp::connect(server.port);
    assert_eq!(
        p.cmd(&["PUBLISH", "news", "a"]),
        V::Int(1),
        "the pattern, not the shard channel"
    );
    assert_eq!(psub.read().text(), "pmessage n* news a");
    assert_eq!(p.cmd(&["SPUBLISH", "news", "b"]), V::Int(1));
    assert_eq!(ssub.read().text(), "smessage news b");
    assert_eq!(p.cmd(&["PUBSUB", "NUMPAT"]), V::Int(1));
    assert_eq!(p.cmd(&["PUBSUB", "SHARDNUMSUB", "news"]).text(), "news 1");
    assert_eq!(p.cmd(&["PUBSUB", "SHARDCHANNELS"]).text(), "news");
    // A RESP2 client in Pub/Sub mode may only (un)subscribe, ping, quit or reset.
    assert_eq!(
        psub.cmd(&["GET", "k"]).text(),
        "ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
    );
    assert_eq!(psub.cmd(&["PING"]).text(), "pong ");
    // A RESP3 client gets pushes on an ordinary connection.
    let mut r3 = Resp::connect(server.port);
    r3.cmd(&["HELLO", "3"]);
    assert_eq!(r3.cmd(&["SUBSCRIBE", "news"]).text(), "subscribe news 1");
    assert_eq!(
        r3.cmd(&["SET", "k", "v"]).text(),
        "OK",
        "RESP3 keeps running commands"
    );
    assert_eq!(p.cmd(&["PUBLISH", "news", "c"]), V::Int(2));
    assert_eq!(r3.read().text(), "message news c");
    // INFO counts each channel, pattern and shard channel once, whatever core its
    // subscribers are on.
    let mut sub2 = Resp::connect(server.port);
    sub2.cmd(&["SUBSCRIBE", "news", "weather"]);
    sub2.read();
    let info = p.cmd(&["INFO", "stats"]).text();
    for field in [
        "pubsub_channels:2\r\n",
        "pubsub_patterns:1\r\n",
        "pubsubshard_channels:1\r\n",
    ] {
        assert!(info.contains(field), "{field} in {info}");
    }
}

#[test]
fn keyspace_notifications_from_every_shard() {
    let server = Server::start(2, &[]);
    let mut sub = Resp::connect(server.port);
    let mut c = Resp::connect(server.port);
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "notify-keyspace-events", "KEA"])
            .text(),
        "OK"
    );
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "notify-keyspace-events"]).text(),
        "notify-keyspace-events AKE"
    );
    sub.cmd(&["PSUBSCRIBE", "__keyspace@0__:*"]);
    // Keys on both shards.
    let keys = ["a", "b", "c", "d", "e", "f"];
    for k in keys {
        c.cmd(&["SET", k, "1"]);
        c.cmd(&["LPUSH", &format!("l{k}"), "x"]);
    }
    let mut seen = Vec::new();
    for _ in 0..keys.len() * 2 {
        seen.push(sub.read().text());
    }
    for k in keys {
        assert!(seen.contains(&format!("pmessage __keyspace@0__:* __keyspace@0__:{k} set")));
        assert!(seen.contains(&format!(
            "pmessage __keyspace@0__:* __keyspace@0__:l{k} lpush"
        )));
    }
    // Expired keys are notified too (active expiry, on the key's shard).
    c.cmd(&["SET", "short", "1", "PX", "50"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut expired = false;
    while !expired && Instant::now() < deadline {
        let msg = sub.read().text();
        expired = msg.ends_with("__keyspace@0__:short expired");
    }
    assert!(expired, "an expired key is notified");
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "notify-keyspace-events", "Q"]).text(),
        "ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid event class character. Use 'Ag$lshzxeKEtmdn'."
    );
}

#[test]
fn monitor_sees_commands_of_every_core() {
    let server = Server::start(2, &[]);
    let mut mon = Resp::connect(server.port);
    assert_eq!(mon.cmd(&["MONITOR"]).text(), "OK");
    let mut clients: Vec<Resp> = (0..4).map(|_| Resp::connect(server.port)).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.cmd(&["SET", &format!("key{i}"), "v\n"]);
    }
    let mut lines = Vec::new();
    for _ in 0..4 {
        lines.push(mon.read().text());
    }
    for i in 0..4 {
        assert!(
            lines
                .iter()
                .any(|l| l.ends_with(&format!("\"SET\" \"key{i}\" \"v\\n\""))),
            "{lines:?}"
        );
    }
}

#[test]
fn a_subscriber_that_never_reads_is_disconnected_at_the_pubsub_limit() {
    let server = Server::start(2, &[]);
    let mut admin = Resp::connect(server.port);
    assert_eq!(
        admin
            .cmd(&[
                "CONFIG",
                "SET",
                "client-output-buffer-limit",
                "pubsub 1mb 0 0"
            ])
            .text(),
        "OK"
    );
    // A subscriber with a tiny receive buffer that never reads.
    let mut sub = Resp::connect(server.port);
    sub.cmd(&["SUBSCRIBE", "firehose"]);
    let payload = "x".repeat(16 * 1024);
    let mut p = Resp::connect(server.port);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut receivers = 1;
    while receivers > 0 && Instant::now() < deadline {
        let V::Int(n) = p.cmd(&["PUBLISH", "firehose", &payload]) else {
            panic!("int")
        };
        receivers = n;
    }
    assert_eq!(receivers, 0, "the slow subscriber was dropped");
    let info = admin.cmd(&["INFO", "stats"]).text();
    assert!(
        info.contains("client_output_buffer_limit_disconnections:1"),
        "{info}"
    );
    // The server's memory stayed bounded.
    let rss = std::fs::read_to_string(format!("/proc/{}/status", server.pid()))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
            })
        })
        .unwrap_or(0);
    assert!(rss < 256 * 1024, "RSS {rss} KiB");
}
