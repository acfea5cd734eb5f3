//! End-to-end tests of the server with a real client: routing across shards, pipelines,
//! binary safety, protocol errors, connection and server commands.

mod common;

use common::{roundtrip, Server};
use redis::{Commands, Value};
use std::time::Duration;

fn each_layout(test: impl Fn(&Server)) {
    for shards in [1, 2, 3] {
        let server = Server::start(shards, &[]);
        test(&server);
    }
}

#[test]
fn set_get_route_to_owning_shard() {
    each_layout(|s| {
        let mut c = s.conn();
        for i in 0..200 {
            let _: () = c.set(format!("key:{i}"), i).expect("set");
        }
        for i in 0..200 {
            let v: i64 = c.get(format!("key:{i}")).expect("get");
            assert_eq!(v, i);
        }
        let n: i64 = redis::cmd("DBSIZE").query(&mut c).expect("dbsize");
        assert_eq!(n, 200);
    });
}

#[test]
fn pipelines_mixing_shards_keep_request_order() {
    each_layout(|s| {
        let mut c = s.conn();
        let mut pipe = redis::pipe();
        for i in 0..100 {
            pipe.cmd("SET").arg(format!("p{i}")).arg(i).ignore();
            pipe.cmd("GET").arg(format!("p{i}"));
            pipe.cmd("PING");
        }
        let out: Vec<Value> = pipe.query(&mut c).expect("pipeline");
        assert_eq!(out.len(), 200);
        for i in 0..100 {
            assert_eq!(out[2 * i], Value::BulkString(i.to_string().into_bytes()));
            assert_eq!(out[2 * i + 1], Value::SimpleString("PONG".into()));
        }
    });
}

#[test]
fn multi_key_commands_span_shards() {
    each_layout(|s| {
        let mut c = s.conn();
        let _: () = redis::cmd("MSET")
            .arg(&["a", "1", "b", "2", "c", "3", "d", "4"])
            .query(&mut c)
            .expect("mset");
        let v: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&["d", "nosuch", "a", "c", "b"])
            .query(&mut c)
            .expect("mget");
        assert_eq!(
            v,
            vec![
                Some("4".into()),
                None,
                Some("1".into()),
                Some("3".into()),
                Some("2".into())
            ]
        );
        let n: i64 = redis::cmd("EXISTS")
            .arg(&["a", "b", "a", "zz"])
            .query(&mut c)
            .expect("exists");
        assert_eq!(n, 3);
        let n: i64 = redis::cmd("DEL")
            .arg(&["a", "b", "zz"])
            .query(&mut c)
            .expect("del");
        assert_eq!(n, 2);
        let n: i64 = redis::cmd("DBSIZE").query(&mut c).expect("dbsize");
        assert_eq!(n, 2);
        let _: () = redis::cmd("FLUSHALL").query(&mut c).expect("flushall");
        let n: i64 = redis::cmd("DBSIZE").query(&mut c).expect("dbsize");
        assert_eq!(n, 0);
    });
}

#[test]
fn values_are_binary_safe() {
    each_layout(|s| {
        let mut c = s.conn();
        let key = b"k\r\n\0\xff".to_vec();
        let value = b"v\r\n\0\r\n\xfe".to_vec();
        let _: () = c.set(&key, &value).expect("set");
        let got: Vec<u8> = c.get(&key).expect("get");
        assert_eq!(got, value);
    });
}

#[test]
fn select_isolates_databases_on_every_shard() {
    each_layout(|s| {
        let mut c = s.conn();
        let _: () = c.set("x", "db0").expect("set");
        let _: () = redis::cmd("SELECT").arg(9).query(&mut c).expect("select");
        let v: Option<String> = c.get("x").expect("get");
        assert_eq!(v, None);
        let err = redis::cmd("SELECT")
            .arg(16)
            .query::<()>(&mut c)
            .expect_err("out of range");
        assert!(
            err.to_string().contains("DB index is out of range"),
            "{err}"
        );
    });
}

#[test]
fn unknown_commands_and_wrong_arity_get_redis_errors() {
    let s = Server::start(2, &[]);
    let mut raw = s.raw();
    let got = roundtrip(
        &mut raw,
        b"*2\r\n$6\r\nNOSUCH\r\n$1\r\na\r\n*1\r\n$3\r\nGET\r\nPING\r\n",
        1,
    );
    let expected = b"-ERR unknown command 'NOSUCH', with args beginning with: 'a' \r\n-ERR wrong number of arguments for 'get' command\r\n+PONG\r\n";
    let mut got = got;
    while got.len() < expected.len() {
        let more = roundtrip(&mut raw, b"", expected.len() - got.len());
        if more.is_empty() {
            break;
        }
        got.extend(more);
    }
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(expected)
    );
}

#[test]
fn protocol_errors_close_the_connection() {
    let s = Server::start(1, &[]);
    let mut raw = s.raw();
    let got = roundtrip(&mut raw, b"*1\r\n$-5\r\n", 100);
    assert_eq!(
        String::from_utf8_lossy(&got),
        "-ERR Protocol error: invalid bulk length\r\n"
    );
    // The server keeps serving other clients.
    let mut c = s.conn();
    let pong: String = redis::cmd("PING").query(&mut c).expect("ping");
    assert_eq!(pong, "PONG");
}

#[test]
fn inline_commands_work() {
    let s = Server::start(2, &[]);
    let mut raw = s.raw();
    let got = roundtrip(&mut raw, b"SET inline value\r\nGET inline\r\n", 16);
    assert_eq!(String::from_utf8_lossy(&got), "+OK\r\n$5\r\nvalue\r\n");
}

#[test]
fn hello_switches_protocol() {
    let s = Server::start(2, &[]);
    let mut raw = s.raw();
    let got = roundtrip(&mut raw, b"HELLO 3\r\n", 20);
    assert!(
        got.starts_with(b"%7\r\n"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    let mut raw = s.raw();
    let got = roundtrip(&mut raw, b"HELLO 4\r\n", 20);
    assert_eq!(
        String::from_utf8_lossy(&got),
        "-NOPROTO unsupported protocol version\r\n"
    );
}

#[test]
fn client_commands_see_every_core() {
    let s = Server::start(2, &[]);
    let mut conns: Vec<redis::Connection> = (0..6).map(|_| s.conn()).collect();
    let _: () = redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg("me")
        .query(&mut conns[0])
        .expect("setname");
    let name: String = redis::cmd("CLIENT")
        .arg("GETNAME")
        .query(&mut conns[0])
        .expect("getname");
    assert_eq!(name, "me");
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query(&mut conns[1])
        .expect("list");
    assert!(list.lines().count() >= 6, "{list}");
    assert!(list.contains("name=me"));
    let id: i64 = redis::cmd("CLIENT")
        .arg("ID")
        .query(&mut conns[2])
        .expect("id");
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(id)
        .query(&mut conns[3])
        .expect("kill");
    assert_eq!(killed, 1);
    assert!(redis::cmd("PING").query::<String>(&mut conns[2]).is_err());
}

#[test]
fn config_get_set_apply_to_all_cores() {
    let s = Server::start(2, &[]);
    let mut c = s.conn();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("hash-max-ziplist-entries")
        .arg("7")
        .query(&mut c)
        .expect("set");
    let v: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("hash-max-listpack-entries")
        .query(&mut c)
        .expect("get");
    assert_eq!(v, vec!["hash-max-listpack-entries", "7"]);
    let err = redis::cmd("CONFIG")
        .arg("SET")
        .arg("nosuch")
        .arg("1")
        .query::<()>(&mut c)
        .expect_err("unknown");
    assert!(
        err.to_string()
            .contains("Unknown option or number of arguments for CONFIG SET - 'nosuch'"),
        "{err}"
    );
}

#[test]
fn info_and_command_introspection() {
    let s = Server::start(2, &[]);
    let mut c = s.conn();
    let info: String = redis::cmd("INFO").query(&mut c).expect("info");
    for field in [
        "redis_version:",
        "connected_clients:",
        "used_memory:",
        "shards:2",
        "keyspace_hits:",
    ] {
        assert!(info.contains(field), "missing {field}");
    }
    let n: i64 = redis::cmd("COMMAND")
        .arg("COUNT")
        .query(&mut c)
        .expect("count");
    assert!(n > 10);
    let keys: Vec<String> = redis::cmd("COMMAND")
        .arg("GETKEYS")
        .arg("MSET")
        .arg("a")
        .arg("1")
        .arg("b")
        .arg("2")
        .query(&mut c)
        .expect("getkeys");
    assert_eq!(keys, vec!["a", "b"]);
}

#[test]
fn command_getkeys_and_flags_follow_the_key_specs() {
    let s = Server::start(1, &[]);
    let mut c = s.conn();
    let ask = |c: &mut redis::Connection, args: &[&str]| {
        redis::cmd("COMMAND")
            .arg("GETKEYSANDFLAGS")
            .arg(args)
            .query::<Vec<(String, Vec<String>)>>(c)
    };
    let entry = |k: &str, f: &[&str]| (k.to_string(), f.iter().map(|s| s.to_string()).collect());
    assert_eq!(
        ask(&mut c, &["mset", "k1", "v1", "k2", "v2"]).expect("mset"),
        vec![
            entry("k1", &["OW", "update"]),
            entry("k2", &["OW", "update"])
        ]
    );
    assert_eq!(
        ask(&mut c, &["LMOVE", "k1", "k2", "left", "right"]).expect("lmove"),
        vec![
            entry("k1", &["RW", "access", "delete"]),
            entry("k2", &["RW", "insert"])
        ]
    );
    assert_eq!(
        ask(&mut c, &["sort", "k1", "store", "k2"]).expect("sort"),
        vec![
            entry("k1", &["RO", "access"]),
            entry("k2", &["OW", "update"])
        ]
    );
    let getkeys = |c: &mut redis::Connection, args: &[&str]| {
        redis::cmd("COMMAND")
            .arg("GETKEYS")
            .arg(args)
            .query::<Vec<String>>(c)
    };
    // EVAL without keys has none (it may run without keys); the errors in Redis's order.
    assert_eq!(
        getkeys(&mut c, &["eval", "return 1", "0"]).expect("eval"),
        Vec::<String>::new()
    );
    let err = |r: redis::RedisResult<Vec<String>>| r.expect_err("refused").to_string();
    assert!(err(getkeys(&mut c, &["nosuch", "x"])).contains("Invalid command specified"));
    assert!(err(getkeys(&mut c, &["ping", "x"])).contains("The command has no key arguments"));
    assert!(err(getkeys(&mut c, &["get", "a", "b"])).contains("Invalid number of arguments"));
    assert!(err(getkeys(&mut c, &["zunionstore", "d", "5", "a"]))
        .contains("Invalid arguments specified for command"));
}

#[test]
fn shutdown_stops_the_server() {
    let mut s = Server::start(2, &[]);
    let mut c = s.conn();
    let _ = redis::cmd("SHUTDOWN").arg("NOSAVE").query::<()>(&mut c);
    assert!(s.wait_exit(Duration::from_secs(5)));
}

#[test]
fn sigterm_stops_the_server() {
    let mut s = Server::start(2, &[]);
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(s.pid() as i32, libc::SIGTERM) };
    assert!(s.wait_exit(Duration::from_secs(5)));
}

#[test]
fn sort_reads_patterns_and_stores_across_shards() {
    let s = Server::start(3, &[]);
    let mut c = s.conn();
    let _: () = redis::cmd("RPUSH")
        .arg("tosort")
        .arg(&["1", "2", "3"])
        .query(&mut c)
        .expect("rpush");
    let _: () = redis::cmd("MSET")
        .arg(&[
            "w_1", "30", "w_2", "10", "w_3", "20", "v_1", "a", "v_2", "b", "v_3", "c",
        ])
        .query(&mut c)
        .expect("mset");
    let got: Vec<String> = redis::cmd("SORT")
        .arg(&["tosort", "BY", "w_*", "GET", "v_*"])
        .query(&mut c)
        .expect("sort");
    assert_eq!(got, vec!["b", "c", "a"]);
    let n: i64 = redis::cmd("SORT")
        .arg(&["tosort", "BY", "w_*", "STORE", "sorted:elsewhere"])
        .query(&mut c)
        .expect("sort store");
    assert_eq!(n, 3);
    let got: Vec<String> = redis::cmd("LRANGE")
        .arg(&["sorted:elsewhere", "0", "-1"])
        .query(&mut c)
        .expect("lrange");
    assert_eq!(got, vec!["2", "3", "1"]);
}

/// A port still held at start-up (a SIGKILLed predecessor's io_uring teardown holds its
/// listening socket briefly) is waited for, a few seconds at most; then start-up fails as
/// Redis's does.
#[test]
fn start_up_waits_a_few_seconds_for_a_held_port() {
    let hold = |port: u16, for_how_long: Option<Duration>| {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind the port");
        if let Some(d) = for_how_long {
            std::thread::spawn(move || {
                std::thread::sleep(d);
                drop(listener);
            });
            None
        } else {
            Some(listener)
        }
    };
    let args = ["--bind", "127.0.0.1"];
    // Released after a second: the server starts once it is free.
    let port = common::free_port();
    let _ = hold(port, Some(Duration::from_secs(1)));
    let started = std::time::Instant::now();
    let server = Server::try_start_on(port, 2, &args).expect("starts once the port is free");
    assert!(started.elapsed() >= Duration::from_millis(900));
    let mut c = server.conn();
    let pong: String = redis::cmd("PING").query(&mut c).expect("ping");
    assert_eq!(pong, "PONG");
    // Held for good: start-up gives up after the wait.
    let port = common::free_port();
    let _held = hold(port, None);
    let started = std::time::Instant::now();
    let e = Server::try_start_on(port, 1, &args)
        .err()
        .expect("the port stays taken");
    assert!(e.contains("exited"), "{e}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(4500) && waited < Duration::from_secs(30),
        "gave up after {waited:?}"
    );
}
