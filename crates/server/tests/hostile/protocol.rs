//! Protocol abuse on raw sockets: bad headers, lines without newlines, unbalanced quotes,
//! binary junk, requests cut short or declaring sizes they never send.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::{check_health, preview, seed, REPLY_WAIT, RSS_LIMIT};
use crate::common::resp::{self, Value};
use crate::common::{set_linger_zero, Server, Watchdog};

/// A request that breaks the protocol, what Redis 7.0 answers it byte for byte, and whether
/// Redis then closes the connection (checked against redis-server 7.0.15).
struct Abuse {
    name: &'static str,
    send: Vec<u8>,
    reply: &'static [u8],
    closes: bool,
}

fn abuses() -> Vec<Abuse> {
    let a = |name, send: &[u8], reply, closes| Abuse {
        name,
        send: send.to_vec(),
        reply,
        closes,
    };
    const MULTIBULK: &[u8] = b"-ERR Protocol error: invalid multibulk length\r\n";
    const BULK: &[u8] = b"-ERR Protocol error: invalid bulk length\r\n";
    const QUOTES: &[u8] = b"-ERR Protocol error: unbalanced quotes in request\r\n";
    let long_digits = vec![b'1'; 70 << 10];
    vec![
        a(
            "negative multibulk count",
            b"*-1\r\nPING\r\n",
            b"+PONG\r\n",
            false,
        ),
        a("empty multibulk", b"*0\r\nPING\r\n", b"+PONG\r\n", false),
        a("multibulk count 2^31", b"*2147483648\r\n", MULTIBULK, true),
        a(
            "multibulk count past i64",
            b"*99999999999999999999\r\n",
            MULTIBULK,
            true,
        ),
        a(
            "multibulk count below i64",
            b"*-99999999999999999999\r\nPING\r\n",
            MULTIBULK,
            true,
        ),
        a("multibulk count not a number", b"*abc\r\n", MULTIBULK, true),
        a("multibulk count missing", b"*\r\n", MULTIBULK, true),
        a("bulk length -5", b"*1\r\n$-5\r\n", BULK, true),
        a("bulk length -1", b"*1\r\n$-1\r\n", BULK, true),
        a(
            "bulk length 99999999999",
            b"*1\r\n$99999999999\r\n",
            BULK,
            true,
        ),
        a("bulk length not a number", b"*1\r\n$abc\r\n", BULK, true),
        a("bulk length missing", b"*1\r\n$\r\n", BULK, true),
        a(
            "argument without $",
            b"*1\r\nfoo\r\n",
            b"-ERR Protocol error: expected '$', got 'f'\r\n",
            true,
        ),
        a(
            "simple string as argument",
            b"*1\r\n+PING\r\n",
            b"-ERR Protocol error: expected '$', got '+'\r\n",
            true,
        ),
        Abuse {
            name: "70 KiB inline without newline",
            send: vec![b'a'; 70 << 10],
            reply: b"-ERR Protocol error: too big inline request\r\n",
            closes: true,
        },
        Abuse {
            name: "70 KiB multibulk count",
            send: [b"*".as_slice(), &long_digits].concat(),
            reply: b"-ERR Protocol error: too big mbulk count string\r\n",
            closes: true,
        },
        Abuse {
            name: "70 KiB bulk length",
            send: [b"*1\r\n$".as_slice(), &long_digits].concat(),
            reply: b"-ERR Protocol error: too big bulk count string\r\n",
            closes: true,
        },
        a("unbalanced double quote", b"SET \"a b\r\n", QUOTES, true),
        a("unbalanced single quote", b"SET 'a b\r\n", QUOTES, true),
        a(
            "text right after a quote",
            b"SET \"a\"b c\r\n",
            QUOTES,
            true,
        ),
        a(
            "empty inline lines",
            b"\r\n\r\nPING\r\n",
            b"+PONG\r\n",
            false,
        ),
        a(
            "LF without CR",
            b"PING\nPING\n",
            b"+PONG\r\n+PONG\r\n",
            false,
        ),
        a(
            "control bytes inline",
            b"\x01\x02\r\nPING\r\n",
            b"-ERR unknown command '\x01\x02', with args beginning with: \r\n+PONG\r\n",
            false,
        ),
        a(
            "bulk not ended by CRLF",
            b"*1\r\n$4\r\nPINGxxPING\r\n",
            b"+PONG\r\n+PONG\r\n",
            false,
        ),
        a(
            "inline escapes",
            b"ECHO \"\\x41\\x4g\\n\"\r\n",
            b"$5\r\nAx4g\n\r\n",
            false,
        ),
    ]
}

/// The exact replies to protocol abuse, and the close that follows when Redis closes.
#[test]
fn protocol_abuse_gets_redis_replies() {
    let server = Server::start(2, &[]);
    let dog = Watchdog::start(server.pid(), RSS_LIMIT);
    for abuse in abuses() {
        dog.doing(abuse.name);
        let mut c = server.resp();
        c.send(&abuse.send).expect("send");
        if abuse.closes {
            let got = c
                .read_to_close(Duration::from_secs(10))
                .unwrap_or_else(|got| {
                    panic!(
                        "{}: the connection stays open after {:?}",
                        abuse.name,
                        preview(&got)
                    )
                });
            assert_eq!(
                preview(&got),
                preview(abuse.reply),
                "{}: reply before the close",
                abuse.name
            );
        } else {
            let mut got = Vec::new();
            while got.len() < abuse.reply.len() {
                match c.read(REPLY_WAIT) {
                    Ok(v) => got.extend(encode_back(&v)),
                    Err(e) => panic!("{}: {e:?} after {:?}", abuse.name, preview(&got)),
                }
            }
            assert_eq!(preview(&got), preview(abuse.reply), "{}", abuse.name);
            assert_eq!(
                c.call(&["PING"]).ok(),
                Some(Value::Simple("PONG".into())),
                "{}: the connection still serves",
                abuse.name
            );
        }
    }
    check_health(&server, &dog, "protocol abuse", 0);
}

/// The RESP2 bytes of a simple reply (for comparing what arrived with what Redis sends).
fn encode_back(v: &Value) -> Vec<u8> {
    match v {
        Value::Simple(s) => format!("+{s}\r\n").into_bytes(),
        Value::Error(s) => format!("-{s}\r\n").into_bytes(),
        Value::Int(n) => format!(":{n}\r\n").into_bytes(),
        Value::Bulk(Some(b)) => [format!("${}\r\n", b.len()).as_bytes(), b, b"\r\n"].concat(),
        other => panic!("unexpected reply {other:?}"),
    }
}

/// Reads whatever a connection fed with junk answers until it closes or goes quiet: every
/// complete reply must be valid RESP. Returns whether the server closed the connection.
fn replies_stay_valid(stream: &mut TcpStream, what: &str) -> bool {
    let mut got = Vec::new();
    let mut buf = [0u8; 16 << 10];
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let closed = loop {
        match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break false
            }
            Err(_) => break true,
        }
    };
    let mut at = 0;
    while at < got.len() {
        match resp::parse(&got[at..]) {
            Ok(Some((_, used))) => at += used,
            Ok(None) => break,
            Err(e) => panic!("{what}: invalid reply ({e}) in {:?}", preview(&got)),
        }
    }
    closed
}

/// Random bytes, RESP-like fragments and inline lines with quotes and escapes: whatever comes
/// back is valid RESP, and the server keeps serving.
#[test]
fn junk_and_half_requests_leave_the_server_serving() {
    let seed = seed("junk_and_half_requests_leave_the_server_serving");
    let mut rng = StdRng::seed_from_u64(seed);
    let server = Server::start(2, &[]);
    let dog = Watchdog::start(server.pid(), RSS_LIMIT);
    const FRAGMENTS: &[&[u8]] = &[
        b"*",
        b"$",
        b"\r\n",
        b"\r",
        b"\n",
        b"-1",
        b"0",
        b"3",
        b"2147483647",
        b"99999999999",
        b"PING",
        b"SET",
        b"GET",
        b"ECHO",
        b"BLPOP",
        b"MULTI",
        b"\0",
        b"\"",
        b"'",
        b"\\x",
        b"\\x4",
        b"\\",
        b" ",
        b"\t",
        b"{foo}k",
        b"{bar}k",
        b"+",
        b"-",
        b":",
        b"\xff\xfe",
    ];

    // Junk: pure random bytes, and random sequences of protocol fragments.
    let mut closed = 0;
    for round in 0..300 {
        let junk: Vec<u8> = if round % 3 == 0 {
            (0..rng.gen_range(1..8192)).map(|_| rng.gen()).collect()
        } else {
            (0..rng.gen_range(1..200))
                .flat_map(|_| {
                    FRAGMENTS
                        .choose(&mut rng)
                        .copied()
                        .unwrap_or_default()
                        .to_vec()
                })
                .collect()
        };
        let what = format!("junk {round}: {:?}", preview(&junk));
        dog.doing(what.clone());
        let mut s = server.raw();
        // The server may close while the junk is still being written.
        let _ = s.write_all(&junk);
        closed += replies_stay_valid(&mut s, &what) as usize;
        if round % 2 == 0 {
            set_linger_zero(&s);
        }
    }
    check_health(&server, &dog, "300 connections of junk", 0);

    // Inline commands with unbalanced quotes, escapes and stray spaces.
    const WORDS: &[&str] = &[
        "PING",
        "ECHO",
        "SET",
        "GET",
        "{foo}k",
        "{bar}k",
        "v",
        "\"",
        "'",
        "\"a b\"",
        "'a\"b'",
        "\\x41",
        "\\x4",
        "\\\"",
        "\"\\x41\"",
        "\"a\"b",
        "''",
        "\"\"",
        "\t",
        " ",
        "\\",
    ];
    for round in 0..200 {
        let line: String = (0..rng.gen_range(1..8))
            .map(|_| *WORDS.choose(&mut rng).unwrap_or(&"PING"))
            .collect::<Vec<_>>()
            .join(if rng.gen_bool(0.8) { " " } else { "" });
        let what = format!("inline {round}: {line:?}");
        dog.doing(what.clone());
        let mut s = server.raw();
        let _ = s.write_all(format!("{line}\r\n{line}\nPING\r\n").as_bytes());
        closed += replies_stay_valid(&mut s, &what) as usize;
    }
    check_health(&server, &dog, "200 inline lines", 0);

    // Requests cut short, then the connection closed or reset; many at once.
    let big = vec![b'v'; 300 << 10];
    let requests: Vec<Vec<u8>> = vec![
        resp::command(&[b"SET".as_slice(), b"{foo}k", &big]),
        resp::command(&[b"SET".as_slice(), b"{bar}k", &big]),
        resp::command(&["MSET", "{foo}a", "1", "{bar}b", "2"]),
        resp::command(&["BLPOP", "{foo}l", "{bar}l", "0"]),
        resp::command(&["MULTI"])
            .into_iter()
            .chain(resp::command(&["SET", "{foo}x", "1"]))
            .chain(resp::command(&["EXEC"]))
            .collect(),
        b"*2147483647\r\n$4\r\nECHO\r\n$1\r\na\r\n".to_vec(),
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\nvvvv".to_vec(),
        b"SET k \"unfinished".to_vec(),
    ];
    for burst in 0..4 {
        dog.doing(format!("half-sent requests, burst {burst}"));
        let mut open = Vec::new();
        for _ in 0..100 {
            let request = requests.choose(&mut rng).cloned().unwrap_or_default();
            let cut = rng.gen_range(1..request.len());
            let mut s = server.raw();
            let _ = s.write_all(&request[..cut]);
            if rng.gen_bool(0.5) {
                set_linger_zero(&s);
            }
            open.push(s);
        }
        // While they hang, the server serves others.
        server
            .answers_ping(REPLY_WAIT)
            .unwrap_or_else(|e| panic!("with half-sent requests pending: {e}"));
        drop(open);
        check_health(&server, &dog, &format!("half-sent burst {burst}"), 0);
    }
    eprintln!("  junk: the server closed {closed} connections");
}

/// Requests that declare huge sizes and then send little: the server must not allocate what
/// they declare, only what arrives.
#[test]
fn declared_sizes_do_not_allocate() {
    let server = Server::start(2, &[]);
    let dog = Watchdog::start(server.pid(), RSS_LIMIT);
    let before = server.rss().expect("rss");
    let mut held = Vec::new();
    let data = vec![b'x'; 64 << 10];
    for i in 0..64 {
        let mut s = server.raw();
        let header: &[u8] = match i % 4 {
            0 => b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\n",
            1 => b"*2147483647\r\n$4\r\nECHO\r\n",
            2 => b"*1048576\r\n",
            _ => b"*3\r\n$3\r\nSET\r\n$536870912\r\n",
        };
        dog.doing(format!("holding {:?}", preview(header)));
        s.write_all(header).expect("send");
        if i % 4 != 1 && i % 4 != 2 {
            s.write_all(&data).expect("send");
        }
        held.push(s);
    }
    server
        .answers_ping(REPLY_WAIT)
        .expect("serving while huge requests are pending");
    std::thread::sleep(Duration::from_millis(500));
    let during = server.rss().expect("rss");
    assert!(
        during < before + (128 << 20),
        "64 connections that declared huge sizes and sent 64 KiB each took the server from {} \
         to {} MiB",
        before >> 20,
        during >> 20
    );
    drop(held);
    let after = check_health(&server, &dog, "huge declared sizes", 0);
    eprintln!(
        "  RSS before {} MiB, with the requests pending {} MiB, after {} MiB",
        before >> 20,
        during >> 20,
        after >> 20
    );
}
