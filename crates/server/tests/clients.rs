//! The CLIENT command's admin side across cores: PAUSE/UNPAUSE holding commands on every
//! shard, KILL's filters, REPLY OFF/SKIP, and the fields of CLIENT LIST.

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::Server;
use redis::{Connection, Value};

/// Keys the two shards of a two-shard server own ("a" and "b" live on different ones).
const KEYS: [&str; 2] = ["a", "b"];

/// Sends a command without waiting for its reply.
fn send(c: &mut Connection, cmd: &redis::Cmd) {
    c.send_packed_command(&cmd.get_packed_command())
        .expect("send");
}

/// The next reply (the connection must have one coming).
fn next_reply(c: &mut Connection) -> Value {
    c.recv_response().expect("reply")
}

/// A command run on its own thread, whose reply is awaited later.
struct Deferred(mpsc::Receiver<redis::RedisResult<Value>>);

impl Deferred {
    fn run(mut c: Connection, cmd: redis::Cmd) -> Deferred {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(cmd.query::<Value>(&mut c));
        });
        Deferred(rx)
    }

    /// The reply, if it comes within `within`.
    fn within(&self, within: Duration) -> Option<Value> {
        match self.0.recv_timeout(within) {
            Ok(r) => Some(r.expect("reply")),
            Err(_) => None,
        }
    }
}

fn text(v: Value) -> String {
    redis::from_redis_value(v).expect("text reply")
}

fn client(c: &mut Connection, args: &[&str]) -> redis::RedisResult<Value> {
    redis::cmd("CLIENT").arg(args).query(c)
}

fn client_id(c: &mut Connection) -> u64 {
    redis::cmd("CLIENT").arg("ID").query(c).expect("id")
}

/// The CLIENT LIST line of client `id`.
fn list_line(c: &mut Connection, id: u64) -> String {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("ID")
        .arg(id)
        .query(c)
        .expect("list");
    list.lines().next().unwrap_or_default().to_string()
}

/// A field of a CLIENT LIST line.
fn field(line: &str, name: &str) -> String {
    line.split(' ')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {name} in {line}"))
        .to_string()
}

#[test]
fn pause_write_holds_writes_on_both_shards_not_reads_until_unpause() {
    let s = Server::start(2, &[]);
    let mut admin = s.conn();
    for k in KEYS {
        let _: () = redis::cmd("SET")
            .arg(k)
            .arg("old")
            .query(&mut admin)
            .unwrap();
    }
    assert_eq!(
        client(&mut admin, &["PAUSE", "60000", "WRITE"]).unwrap(),
        Value::Okay
    );
    // Reads on both shards answer at once.
    let mut reader = s.conn();
    for k in KEYS {
        let v: String = redis::cmd("GET").arg(k).query(&mut reader).unwrap();
        assert_eq!(v, "old");
    }
    // Writes to either shard are held, not refused; so are PUBLISH and EVAL.
    let mut held = Vec::new();
    for k in KEYS {
        let mut set = redis::cmd("SET");
        set.arg(k).arg("new");
        held.push(Deferred::run(s.conn(), set));
    }
    let mut publish = redis::cmd("PUBLISH");
    publish.arg("ch").arg("m");
    held.push(Deferred::run(s.conn(), publish));
    let mut eval = redis::cmd("EVAL");
    eval.arg("return 1").arg(0);
    held.push(Deferred::run(s.conn(), eval));
    for d in &held {
        assert_eq!(d.within(Duration::from_millis(300)), None);
    }
    assert_eq!(s.info_number("blocked_clients"), 4);
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut reader).unwrap();
    assert_eq!(
        list.lines()
            .filter(|l| field(l, "flags").contains('b'))
            .count(),
        4,
        "{list}"
    );
    for k in KEYS {
        let v: String = redis::cmd("GET").arg(k).query(&mut reader).unwrap();
        assert_eq!(v, "old", "a held write must not have run");
    }
    // A read-only script and a read-only transaction go through.
    let v: i64 = redis::cmd("EVAL")
        .arg("#!lua flags=no-writes\nreturn 7")
        .arg(0)
        .query(&mut reader)
        .unwrap();
    assert_eq!(v, 7);
    let (a, b): (String, String) = redis::pipe()
        .atomic()
        .cmd("GET")
        .arg("a")
        .cmd("GET")
        .arg("b")
        .query(&mut reader)
        .unwrap();
    assert_eq!((a.as_str(), b.as_str()), ("old", "old"));

    assert_eq!(client(&mut reader, &["UNPAUSE"]).unwrap(), Value::Okay);
    let replies: Vec<_> = held
        .iter()
        .map(|d| d.within(Duration::from_secs(5)))
        .collect();
    assert_eq!(
        replies,
        [
            Some(Value::Okay),
            Some(Value::Okay),
            Some(Value::Int(0)),
            Some(Value::Int(1))
        ]
    );
    for k in KEYS {
        let v: String = redis::cmd("GET").arg(k).query(&mut reader).unwrap();
        assert_eq!(v, "new");
    }
    assert_eq!(s.info_number("blocked_clients"), 0);
}

#[test]
fn pause_ends_at_its_timeout_and_all_holds_reads() {
    let s = Server::start(2, &[]);
    let mut admin = s.conn();
    let start = Instant::now();
    client(&mut admin, &["PAUSE", "400", "WRITE"]).unwrap();
    let mut set = redis::cmd("SET");
    set.arg("b").arg("1");
    let held = Deferred::run(s.conn(), set);
    assert_eq!(held.within(Duration::from_secs(5)), Some(Value::Okay));
    assert!(start.elapsed() >= Duration::from_millis(350));

    // ALL holds reads too, on every core, until the deadline.
    let start = Instant::now();
    client(&mut admin, &["PAUSE", "400", "ALL"]).unwrap();
    let mut reader = s.conn();
    for k in KEYS {
        let _: Option<String> = redis::cmd("GET").arg(k).query(&mut reader).unwrap();
    }
    assert!(start.elapsed() >= Duration::from_millis(350));

    // A second pause makes the mode stricter but never shortens the first.
    let start = Instant::now();
    client(&mut admin, &["PAUSE", "400", "WRITE"]).unwrap();
    client(&mut admin, &["PAUSE", "50", "ALL"]).unwrap();
    let _: Option<String> = redis::cmd("GET").arg("a").query(&mut reader).unwrap();
    assert!(start.elapsed() >= Duration::from_millis(350));

    // Errors are Redis's.
    let err = client(&mut admin, &["PAUSE", "10", "SOME"]).unwrap_err();
    assert!(err
        .to_string()
        .contains("CLIENT PAUSE mode must be WRITE or ALL"));
    let err = client(&mut admin, &["PAUSE", "-1"]).unwrap_err();
    assert!(err.to_string().contains("timeout is negative"), "{err}");
    let err = client(&mut admin, &["PAUSE", "x"]).unwrap_err();
    assert!(
        err.to_string().contains("timeout is not an integer"),
        "{err}"
    );
}

#[test]
fn pause_stops_expiry_until_it_ends() {
    let s = Server::start(2, &[]);
    let mut c = s.conn();
    let expired = s.info_number("expired_keys");
    for k in KEYS {
        let _: () = redis::cmd("SET")
            .arg(k)
            .arg("v")
            .arg("PX")
            .arg(50)
            .query(&mut c)
            .unwrap();
    }
    client(&mut c, &["PAUSE", "60000", "WRITE"]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    for k in KEYS {
        let v: Option<String> = redis::cmd("GET").arg(k).query(&mut c).unwrap();
        assert_eq!(v, None, "an expired key reads as missing");
    }
    assert_eq!(s.info_number("expired_keys"), expired, "nothing expired");
    let dbsize: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(dbsize, 2, "the keys stay while paused");
    client(&mut c, &["UNPAUSE"]).unwrap();
    for k in KEYS {
        let _: Option<String> = redis::cmd("GET").arg(k).query(&mut c).unwrap();
    }
    assert_eq!(s.info_number("expired_keys"), expired + 2);
}

#[test]
fn a_transaction_queued_before_a_pause_is_held_at_exec_and_pause_in_exec_starts_after_it() {
    let s = Server::start(2, &[]);
    let mut admin = s.conn();
    let mut tx = s.conn();
    let _: () = redis::cmd("MULTI").query(&mut tx).unwrap();
    for k in KEYS {
        let _: () = redis::cmd("SET").arg(k).arg("tx").query(&mut tx).unwrap();
    }
    client(&mut admin, &["PAUSE", "60000", "WRITE"]).unwrap();
    let exec = Deferred::run(tx, redis::cmd("EXEC"));
    assert_eq!(exec.within(Duration::from_millis(300)), None);
    client(&mut admin, &["UNPAUSE"]).unwrap();
    assert!(exec.within(Duration::from_secs(5)).is_some());

    // CLIENT PAUSE inside EXEC: the transaction's later writes still run.
    let (_, _, _): (String, String, String) = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("a")
        .arg("1")
        .cmd("CLIENT")
        .arg("PAUSE")
        .arg(60000)
        .arg("WRITE")
        .cmd("SET")
        .arg("b")
        .arg("2")
        .query(&mut admin)
        .unwrap();
    let b: String = redis::cmd("GET").arg("b").query(&mut admin).unwrap();
    assert_eq!(b, "2");
    let mut set = redis::cmd("SET");
    set.arg("a").arg("3");
    let late = Deferred::run(s.conn(), set);
    assert_eq!(late.within(Duration::from_millis(300)), None);
    client(&mut admin, &["UNPAUSE"]).unwrap();
    assert_eq!(late.within(Duration::from_secs(5)), Some(Value::Okay));
}

/// Connections until there are `n` on each core (a client's core is (id - 1) mod 2).
fn conns_on_both_cores(s: &Server, n: usize) -> [Vec<(u64, Connection)>; 2] {
    let mut by_core: [Vec<(u64, Connection)>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..64 {
        if by_core.iter().all(|v| v.len() >= n) {
            break;
        }
        let mut c = s.conn();
        let id = client_id(&mut c);
        let core = ((id - 1) % 2) as usize;
        if by_core[core].len() < n {
            by_core[core].push((id, c));
        }
    }
    assert!(
        by_core.iter().all(|v| v.len() >= n),
        "clients on both cores"
    );
    by_core
}

fn is_closed(c: &mut Connection) -> bool {
    redis::cmd("PING").query::<String>(c).is_err()
}

#[test]
fn client_kill_filters_reach_every_core() {
    let s = Server::start(2, &[]);
    let [mut zero, mut one] = conns_on_both_cores(&s, 3);
    let (_, mut admin) = zero.pop().unwrap();

    // ID, on the other core.
    let (id, mut victim) = one.pop().unwrap();
    let n: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(id)
        .query(&mut admin)
        .unwrap();
    assert_eq!(n, 1);
    assert!(is_closed(&mut victim));

    // ADDR, and the old form.
    let (id, mut victim) = one.pop().unwrap();
    let line = list_line(&mut admin, id);
    let n: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ADDR")
        .arg(field(&line, "addr"))
        .arg("TYPE")
        .arg("normal")
        .query(&mut admin)
        .unwrap();
    assert_eq!(n, 1);
    assert!(is_closed(&mut victim));
    let (id, mut victim) = zero.pop().unwrap();
    let addr = field(&list_line(&mut admin, id), "addr");
    assert_eq!(client(&mut admin, &["KILL", &addr]).unwrap(), Value::Okay);
    assert!(is_closed(&mut victim));
    let err = client(&mut admin, &["KILL", &addr]).unwrap_err();
    assert!(err.to_string().contains("No such client"), "{err}");

    // TYPE pubsub: only the subscriber.
    let [mut zero, mut one] = conns_on_both_cores(&s, 1);
    let (_, mut sub) = one.pop().unwrap();
    send(&mut sub, redis::cmd("SUBSCRIBE").arg("ch"));
    next_reply(&mut sub);
    let n: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query(&mut admin)
        .unwrap();
    assert_eq!(n, 1);
    let n: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("master")
        .query(&mut admin)
        .unwrap();
    assert_eq!(n, 0);

    // USER and LADDR with SKIPME yes: every other client, whatever its core.
    let (_, mut other) = zero.pop().unwrap();
    let admin_id = client_id(&mut admin);
    let laddr = field(&list_line(&mut admin, admin_id), "laddr");
    let n: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("USER")
        .arg("default")
        .arg("LADDR")
        .arg(&laddr)
        .arg("SKIPME")
        .arg("yes")
        .query(&mut admin)
        .unwrap();
    assert!(n >= 1);
    assert!(is_closed(&mut other));
    assert!(!is_closed(&mut admin));

    // SKIPME no: the client asking too, after its reply.
    let n: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("SKIPME")
        .arg("no")
        .query(&mut admin)
        .unwrap();
    assert_eq!(n, 1);
    assert!(is_closed(&mut admin));

    let mut c = s.conn();
    for (args, msg) in [
        (
            &["KILL", "ID", "0"][..],
            "client-id should be greater than 0",
        ),
        (&["KILL", "TYPE", "x"], "Unknown client type 'x'"),
        (&["KILL", "USER", "nobody"], "No such user 'nobody'"),
        (&["KILL", "SKIPME", "maybe"], "syntax error"),
        (&["KILL", "MAXAGE", "10"], "syntax error"),
    ] {
        let err = client(&mut c, args).unwrap_err();
        assert!(err.to_string().contains(msg), "{args:?}: {err}");
    }
}

#[test]
fn client_reply_off_and_skip_drop_replies_from_both_shards() {
    let s = Server::start(2, &[]);
    let mut c = s.conn();
    send(&mut c, redis::cmd("CLIENT").arg("REPLY").arg("OFF"));
    for k in KEYS {
        send(&mut c, redis::cmd("SET").arg(k).arg("off"));
        send(&mut c, redis::cmd("GET").arg(k));
    }
    // SKIP does not turn OFF into skipping one reply.
    send(&mut c, redis::cmd("CLIENT").arg("REPLY").arg("SKIP"));
    send(&mut c, &redis::cmd("PING"));
    send(&mut c, redis::cmd("CLIENT").arg("REPLY").arg("ON"));
    // The first reply to come is ON's: nothing before it was answered.
    assert_eq!(next_reply(&mut c), Value::Okay);

    send(&mut c, redis::cmd("CLIENT").arg("REPLY").arg("SKIP"));
    send(&mut c, redis::cmd("GET").arg("a"));
    send(&mut c, redis::cmd("GET").arg("b"));
    assert_eq!(text(next_reply(&mut c)), "off");
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG", "no reply is left over");
    for k in KEYS {
        let v: String = redis::cmd("GET").arg(k).query(&mut c).unwrap();
        assert_eq!(v, "off", "the muted writes ran");
    }
}

#[test]
fn client_list_and_info_show_real_fields_and_filter() {
    let s = Server::start(2, &[]);
    let mut c = s.conn();
    let me = client_id(&mut c);
    let info = text(client(&mut c, &["INFO"]).unwrap());
    // The request being run is still in the query buffer, as in Redis.
    assert_eq!(field(&info, "qbuf"), "26", "{info}");
    assert_eq!(field(&info, "cmd"), "client|info");
    assert_eq!(field(&info, "argv-mem"), "10");
    assert_eq!(field(&info, "flags"), "N");
    assert_eq!(field(&info, "multi"), "-1");
    assert_eq!(field(&info, "events"), "r");
    assert_eq!(field(&info, "resp"), "2");
    assert_eq!(field(&info, "user"), "default");
    assert_eq!(field(&info, "redir"), "-1");

    assert_eq!(client(&mut c, &["NO-EVICT", "on"]).unwrap(), Value::Okay);
    let err = client(&mut c, &["NO-EVICT", "maybe"]).unwrap_err();
    assert!(err.to_string().contains("syntax error"), "{err}");
    let _: () = redis::cmd("GET").arg("b").query(&mut c).unwrap();
    let mut other = s.conn();
    let line = list_line(&mut other, me);
    assert_eq!(field(&line, "flags"), "e", "{line}");
    assert_eq!(field(&line, "cmd"), "get");
    assert_eq!(field(&line, "qbuf"), "0");

    // MULTI: flag x and the queued count.
    let _: () = redis::cmd("MULTI").query(&mut c).unwrap();
    let _: () = redis::cmd("SET").arg("a").arg("1").query(&mut c).unwrap();
    let line = list_line(&mut other, me);
    assert_eq!(field(&line, "flags"), "xe", "{line}");
    assert_eq!(field(&line, "multi"), "1");
    assert!(field(&line, "multi-mem").parse::<u64>().unwrap() >= 5);
    let _: () = redis::cmd("DISCARD").query(&mut c).unwrap();

    // TYPE and ID filters.
    let _: () = redis::cmd("SUBSCRIBE")
        .arg("ch")
        .query(&mut other)
        .unwrap_or(());
    let pubsub = text(client(&mut c, &["LIST", "TYPE", "pubsub"]).unwrap());
    assert_eq!(pubsub.lines().count(), 1, "{pubsub}");
    assert_eq!(field(&pubsub, "flags"), "P");
    assert_eq!(field(&pubsub, "sub"), "1");
    let normal = text(client(&mut c, &["LIST", "TYPE", "normal"]).unwrap());
    assert!(normal.lines().all(|l| field(l, "sub") == "0"), "{normal}");
    let replicas = text(client(&mut c, &["LIST", "TYPE", "replica"]).unwrap());
    assert_eq!(replicas, "");
    let by_id = text(client(&mut c, &["LIST", "ID", &me.to_string(), "99999", "-5"]).unwrap());
    assert_eq!(by_id.lines().count(), 1, "{by_id}");
    let err = client(&mut c, &["LIST", "ID", "x"]).unwrap_err();
    assert!(err.to_string().contains("Invalid client ID"), "{err}");
    let err = client(&mut c, &["LIST", "TYPE", "normal", "ID", "1"]).unwrap_err();
    assert!(err.to_string().contains("syntax error"), "{err}");
}
