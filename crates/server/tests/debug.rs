//! DEBUG's test hooks over two shards (POPULATE, PROTOCOL, SET-ACTIVE-EXPIRE,
//! SET-DISABLE-DENY-SCRIPTS): the replies and effects Redis's own tests rely on.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{key_on, Server};
use redis::Value;

fn start() -> Server {
    Server::start(2, &["--enable-debug-command", "yes"])
}

fn cmd(c: &mut redis::Connection, args: &[&str]) -> redis::RedisResult<Value> {
    let mut command = redis::cmd(args[0]);
    for a in &args[1..] {
        command.arg(*a);
    }
    command.query(c)
}

fn ok(c: &mut redis::Connection, args: &[&str]) -> Value {
    cmd(c, args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn error(c: &mut redis::Connection, args: &[&str]) -> String {
    match cmd(c, args) {
        Err(e) => e.to_string(),
        Ok(v) => panic!("{args:?}: expected an error, got {v:?}"),
    }
}

fn bulk(v: &[u8]) -> Value {
    Value::BulkString(v.to_vec())
}

#[test]
fn populate_creates_missing_keys_on_every_shard() {
    let server = start();
    let mut c = server.conn();
    ok(&mut c, &["SET", "key:999", "mine"]);
    assert_eq!(ok(&mut c, &["DEBUG", "POPULATE", "1000"]), Value::Okay);
    assert_eq!(ok(&mut c, &["DBSIZE"]), Value::Int(1000));
    // Both shards hold some.
    let on = |shard| key_on("key", shard, 2);
    for shard in 0..2 {
        let key = on(shard);
        let n = key.trim_start_matches("key:");
        assert_eq!(
            ok(&mut c, &["GET", &key]),
            bulk(format!("value:{n}").as_bytes())
        );
    }
    // An existing key is left alone.
    assert_eq!(ok(&mut c, &["GET", "key:999"]), bulk(b"mine"));
    // A prefix, and values cut or padded to a size.
    ok(&mut c, &["DEBUG", "POPULATE", "10", "short", "3"]);
    assert_eq!(ok(&mut c, &["GET", "short:7"]), bulk(b"val"));
    ok(&mut c, &["DEBUG", "POPULATE", "10", "long", "10"]);
    assert_eq!(ok(&mut c, &["GET", "long:7"]), bulk(b"value:7\0\0\0"));
    assert_eq!(ok(&mut c, &["DBSIZE"]), Value::Int(1020));
    // In the selected database.
    ok(&mut c, &["SELECT", "3"]);
    ok(&mut c, &["DEBUG", "POPULATE", "5"]);
    assert_eq!(ok(&mut c, &["DBSIZE"]), Value::Int(5));
    for (args, text) in [
        (&["DEBUG", "POPULATE", "-1"][..], "must be positive"),
        (&["DEBUG", "POPULATE", "x"], "not an integer"),
        (&["DEBUG", "POPULATE", "1", "p", "-5"], "must be positive"),
        (
            &["DEBUG", "POPULATE", "1", "p", "9999999999999"],
            "proto-max-bulk-len",
        ),
        (
            &["DEBUG", "POPULATE", "1", "p", "1", "extra"],
            "Try DEBUG HELP",
        ),
    ] {
        let e = error(&mut c, args);
        assert!(e.contains(text), "{args:?}: {e}");
    }
}

/// Sends one command on a raw socket and reads `want.len()` bytes of reply.
fn raw_reply(s: &mut std::net::TcpStream, command: &str, want: &str) {
    let args: Vec<&str> = command.split(' ').collect();
    let mut req = format!("*{}\r\n", args.len());
    for a in &args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes()).expect("send");
    let mut got = vec![0u8; want.len()];
    s.read_exact(&mut got)
        .unwrap_or_else(|e| panic!("{command}: {e}, wanted {want:?}"));
    assert_eq!(String::from_utf8_lossy(&got), want, "{command}");
}

#[test]
fn protocol_replies_every_type_in_both_protocols() {
    let server = start();
    let mut s = server.raw();
    let real = "$39\r\nSome real reply following the attribute\r\n";
    let resp2 = [
        ("string", "$11\r\nHello World\r\n".to_string()),
        ("integer", ":12345\r\n".into()),
        ("double", "$5\r\n3.141\r\n".into()),
        (
            "bignum",
            "$37\r\n1234567999999999999999999999999999999\r\n".into(),
        ),
        ("null", "$-1\r\n".into()),
        ("array", "*3\r\n:0\r\n:1\r\n:2\r\n".into()),
        ("set", "*3\r\n:0\r\n:1\r\n:2\r\n".into()),
        ("map", "*6\r\n:0\r\n:0\r\n:1\r\n:1\r\n:2\r\n:0\r\n".into()),
        ("attrib", real.into()),
        (
            "push",
            "-ERR RESP2 is not supported by this command\r\n".into(),
        ),
        ("verbatim", "$25\r\nThis is a verbatim\nstring\r\n".into()),
        ("true", ":1\r\n".into()),
        ("false", ":0\r\n".into()),
    ];
    for (kind, want) in &resp2 {
        raw_reply(&mut s, &format!("DEBUG PROTOCOL {kind}"), want);
    }
    let mut hello = vec![0u8; 4096];
    s.write_all(b"HELLO 3\r\n").expect("hello");
    std::thread::sleep(Duration::from_millis(200));
    let _ = s.read(&mut hello).expect("hello reply");
    let resp3 = [
        ("double", ",3.141\r\n".to_string()),
        ("bignum", "(1234567999999999999999999999999999999\r\n".into()),
        ("null", "_\r\n".into()),
        ("set", "~3\r\n:0\r\n:1\r\n:2\r\n".into()),
        ("map", "%3\r\n:0\r\n#f\r\n:1\r\n#t\r\n:2\r\n#f\r\n".into()),
        (
            "attrib",
            format!("|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n{real}"),
        ),
        (
            "push",
            ">2\r\n$16\r\nserver-cpu-usage\r\n:42\r\n$40\r\nSome real reply following the push reply\r\n"
                .into(),
        ),
        ("verbatim", "=29\r\ntxt:This is a verbatim\nstring\r\n".into()),
        ("true", "#t\r\n".into()),
        ("nonsense", "-ERR Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false\r\n".into()),
    ];
    for (kind, want) in &resp3 {
        raw_reply(&mut s, &format!("DEBUG PROTOCOL {kind}"), want);
    }
}

#[test]
fn set_active_expire_stops_and_restarts_background_expiry() {
    let server = start();
    let mut c = server.conn();
    assert_eq!(
        ok(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]),
        Value::Okay
    );
    for shard in 0..2 {
        ok(&mut c, &["SET", &key_on("gone", shard, 2), "v", "PX", "20"]);
    }
    std::thread::sleep(Duration::from_millis(500));
    // Expired but never read: still counted, as in Redis.
    assert_eq!(ok(&mut c, &["DBSIZE"]), Value::Int(2));
    ok(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while ok(&mut c, &["DBSIZE"]) != Value::Int(0) {
        assert!(Instant::now() < deadline, "active expiry did not resume");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn set_disable_deny_scripts_lets_scripts_run_noscript_commands() {
    let server = start();
    let mut c = server.conn();
    let script = [
        "EVAL",
        "return redis.call('debug', 'protocol', 'integer')",
        "0",
    ];
    let e = error(&mut c, &script);
    assert!(e.contains("not allowed from script"), "{e}");
    ok(&mut c, &["DEBUG", "SET-DISABLE-DENY-SCRIPTS", "1"]);
    assert_eq!(ok(&mut c, &script), Value::Int(12345));
    // Scripts do not see attributes: only the reply they describe.
    assert_eq!(
        ok(
            &mut c,
            &[
                "EVAL",
                "redis.setresp(3) return redis.call('debug', 'protocol', 'attrib')",
                "0"
            ]
        ),
        bulk(b"Some real reply following the attribute")
    );
    ok(&mut c, &["DEBUG", "SET-DISABLE-DENY-SCRIPTS", "0"]);
    let e = error(&mut c, &script);
    assert!(e.contains("not allowed from script"), "{e}");
}

#[test]
fn object_describes_values_even_past_their_expiry() {
    let server = start();
    let mut c = server.conn();
    let e = error(&mut c, &["DEBUG", "OBJECT", "nothing"]);
    assert!(e.contains("no such key"), "{e}");
    for shard in 0..2 {
        let key = key_on("n", shard, 2);
        ok(&mut c, &["SET", &key, "20000"]);
        ok(&mut c, &["INCR", &key]);
        let text = |c: &mut redis::Connection| match ok(c, &["DEBUG", "OBJECT", &key]) {
            Value::SimpleString(s) => s,
            other => panic!("{other:?}"),
        };
        let before = text(&mut c);
        let fields: Vec<&str> = before.split(' ').collect();
        assert_eq!(fields[0], "Value");
        assert!(fields[1].starts_with("at:0x"), "{before}");
        assert_eq!(fields[2], "refcount:1");
        assert_eq!(fields[3], "encoding:int");
        assert!(fields[4].starts_with("serializedlength:"), "{before}");
        assert!(fields[5].starts_with("lru:"), "{before}");
        assert!(fields[6].starts_with("lru_seconds_idle:"), "{before}");
        // INCR changes the value in place: the same address.
        ok(&mut c, &["INCR", &key]);
        let after = text(&mut c);
        assert_eq!(
            after.split(' ').nth(1),
            Some(fields[1]),
            "{before} / {after}"
        );
    }
    ok(&mut c, &["HSET", "h", "f", &"a".repeat(1024)]);
    match ok(&mut c, &["DEBUG", "OBJECT", "h"]) {
        Value::SimpleString(s) => assert!(s.contains("encoding:hashtable"), "{s}"),
        other => panic!("{other:?}"),
    }
    // A key past its expiry that nothing removed yet is still described.
    ok(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    ok(&mut c, &["SET", "brief", "v", "PX", "1"]);
    std::thread::sleep(Duration::from_millis(50));
    ok(&mut c, &["DEBUG", "OBJECT", "brief"]);
    assert_eq!(ok(&mut c, &["EXISTS", "brief"]), Value::Int(0));
}
