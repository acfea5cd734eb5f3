//! CONFIG SET with several parameters as Redis 7.0: all of them or none, on every core —
//! a bad value or a side effect that fails (a port already taken, an address that cannot be
//! bound) leaves every value as it was; `port` and `bind` move the listening sockets of
//! every core. CONFIG GET with several patterns.

mod common;

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

fn error(c: &mut redis::Connection, args: &[&str]) -> String {
    match cmd(c, args) {
        Ok(v) => panic!("{args:?} answered {v:?}"),
        Err(e) => {
            let code = e.code().unwrap_or_default();
            let detail = e.detail().unwrap_or_default();
            format!("{code} {detail}")
        }
    }
}

fn get_all(c: &mut redis::Connection, patterns: &[&str]) -> Vec<(String, String)> {
    let mut command = redis::cmd("CONFIG");
    command.arg("GET");
    for p in patterns {
        command.arg(*p);
    }
    command
        .query::<Vec<(String, String)>>(c)
        .expect("config get")
}

fn get(c: &mut redis::Connection, name: &str) -> String {
    get_all(c, &[name])
        .into_iter()
        .next()
        .map(|(_, v)| v)
        .unwrap_or_default()
}

/// Connections spread over the cores (the kernel picks one per connection): what all of
/// them see is what every core holds.
fn connections(s: &Server) -> Vec<redis::Connection> {
    (0..6).map(|_| s.conn()).collect()
}

fn everywhere(conns: &mut [redis::Connection], name: &str) -> Vec<String> {
    conns.iter_mut().map(|c| get(c, name)).collect()
}

#[test]
fn several_parameters_are_set_together_or_not_at_all() {
    let s = Server::start(2, &[]);
    let mut conns = connections(&s);
    let c = &mut conns[0];
    assert_eq!(
        cmd(
            c,
            &[
                "CONFIG",
                "SET",
                "maxmemory",
                "10000001",
                "save",
                "3000 5",
                "hash-max-ziplist-entries",
                "33"
            ]
        ),
        Ok(Value::Okay)
    );
    assert_eq!(get(c, "hash-max-listpack-entries"), "33");
    assert_eq!(get(c, "save"), "3000 5");
    // A bad value anywhere: nothing changes, the error names the first bad one.
    assert_eq!(
        error(
            c,
            &[
                "CONFIG",
                "SET",
                "maxmemory",
                "10000002",
                "hz",
                "nope",
                "timeout",
                "nope"
            ]
        ),
        "ERR CONFIG SET failed (possibly related to argument 'hz') - argument couldn't be parsed into an integer"
    );
    assert!(everywhere(&mut conns, "maxmemory")
        .iter()
        .all(|v| v == "10000001"));
    let c = &mut conns[0];
    // Names are checked before values.
    assert_eq!(
        error(c, &["CONFIG", "SET", "maxmemory", "x", "nosuch", "1"]),
        "ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'"
    );
    assert!(error(c, &["CONFIG", "SET", "maxmemory", "1", "maxmemory", "2"]).contains("duplicate"));
    assert!(error(c, &["CONFIG", "SET", "daemonize", "yes"]).contains("immutable"));
    // A missing value is a syntax error (the arity is -4).
    assert_eq!(
        error(c, &["CONFIG", "SET", "maxmemory", "1", "hz"]),
        "ERR syntax error"
    );
    assert!(error(c, &["CONFIG", "SET", "maxmemory"]).contains("wrong number of arguments"));
    assert_eq!(
        cmd(c, &["CONFIG", "SET", "maxmemory", "0", "save", ""]),
        Ok(Value::Okay)
    );
    assert!(everywhere(&mut conns, "maxmemory").iter().all(|v| v == "0"));
}

#[test]
fn a_port_that_cannot_be_listened_on_undoes_the_whole_command() {
    let s = Server::start(2, &[]);
    let mut conns = connections(&s);
    // Another process holds this one.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_port = taken.local_addr().expect("addr").port().to_string();
    let c = &mut conns[0];
    assert_eq!(
        error(
            c,
            &[
                "CONFIG",
                "SET",
                "maxmemory",
                "10000001",
                "port",
                &taken_port,
                "client-query-buffer-limit",
                "10m"
            ]
        ),
        "ERR CONFIG SET failed (possibly related to argument 'port') - Unable to listen on this port. Check server logs."
    );
    assert!(everywhere(&mut conns, "maxmemory").iter().all(|v| v == "0"));
    assert!(everywhere(&mut conns, "port")
        .iter()
        .all(|v| *v == s.port.to_string()));
    assert!(everywhere(&mut conns, "client-query-buffer-limit")
        .iter()
        .all(|v| v == "1073741824"));
    // The server still takes connections where it was.
    let mut fresh = s.conn();
    assert_eq!(
        cmd(&mut fresh, &["PING"]),
        Ok(Value::SimpleString("PONG".into()))
    );
    // An address that is not this machine's: bind fails the same way.
    let c = &mut conns[0];
    assert_eq!(
        error(c, &["CONFIG", "SET", "bind", "192.0.2.1", "maxmemory", "5"]),
        "ERR CONFIG SET failed (possibly related to argument 'bind') - Failed to bind to specified addresses."
    );
    assert_eq!(get(c, "bind"), "127.0.0.1 -::1");
    assert_eq!(get(c, "maxmemory"), "0");
    // Setting the values in force is not a change: nothing is re-bound.
    let port = s.port.to_string();
    assert_eq!(
        cmd(
            c,
            &["CONFIG", "SET", "port", &port, "bind", "127.0.0.1 -::1"]
        ),
        Ok(Value::Okay)
    );
    drop(taken);
}

#[test]
fn port_and_bind_move_every_cores_listeners() {
    let s = Server::start(2, &[]);
    let mut c = s.conn();
    let new_port = common::free_port();
    assert_eq!(
        cmd(&mut c, &["CONFIG", "SET", "port", &new_port.to_string()]),
        Ok(Value::Okay)
    );
    // The connection that asked stays; new ones go to the new port, on both cores.
    assert_eq!(
        cmd(&mut c, &["PING"]),
        Ok(Value::SimpleString("PONG".into()))
    );
    let mut moved: Vec<redis::Connection> = (0..8).map(|_| common::connect(new_port)).collect();
    for m in &mut moved {
        assert_eq!(get(m, "port"), new_port.to_string());
    }
    let mut ids: Vec<i64> = moved
        .iter_mut()
        .map(|m| redis::cmd("CLIENT").arg("ID").query(m).expect("id"))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 8);
    // The old port closes once every core has taken the new listeners.
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", s.port)).is_ok() {
        assert!(Instant::now() < deadline, "the old port still accepts");
        std::thread::sleep(Duration::from_millis(20));
    }
    // INFO tells the new port.
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query(&mut c)
        .expect("info");
    assert!(info.contains(&format!("tcp_port:{new_port}\r\n")), "{info}");
    // bind: IPv4 loopback only; the IPv6 one is given up.
    assert_eq!(
        cmd(&mut c, &["CONFIG", "SET", "bind", "127.0.0.1"]),
        Ok(Value::Okay)
    );
    let mut again = common::connect(new_port);
    assert_eq!(get(&mut again, "bind"), "127.0.0.1");
}

#[test]
fn config_get_takes_several_patterns() {
    let s = Server::start(1, &[]);
    let mut c = s.conn();
    let got = get_all(&mut c, &["maxmemory", "maxmemory*", "bind", "*of"]);
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "{names:?}");
    for n in [
        "maxmemory",
        "maxmemory-policy",
        "maxmemory-samples",
        "bind",
        "replicaof",
        "slaveof",
    ] {
        assert!(names.contains(&n), "{n} missing in {names:?}");
    }
    // A name is answered as written; nothing for an unknown one.
    assert_eq!(
        get_all(&mut c, &["MAXMEMORY", "nosuch"]),
        [("MAXMEMORY".to_string(), "0".to_string())]
    );
}
