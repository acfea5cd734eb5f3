//! Client-side caching (CLIENT TRACKING) across cores, with a real client: invalidations of
//! keys on either shard reach a RESP3 client on the other core, or a RESP2 redirect target's
//! `__redis__:invalidate` subscription; every write path (multi-shard commands, transactions,
//! expiry, flushes, the table's size limit) invalidates; BCAST, NOLOOP and OPTIN behave as in
//! Redis.

mod common;

use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use common::{key_on, Server};
use redis::{Connection, PushInfo, PushKind, Value};

const SHARDS: usize = 2;

/// The core serving a connection: client ids are numbered per core.
fn core_of(con: &mut Connection) -> (usize, i64) {
    let id: i64 = redis::cmd("CLIENT")
        .arg("ID")
        .query(con)
        .expect("CLIENT ID");
    (((id - 1) as usize) % SHARDS, id)
}

/// A connection served by core `core` (RESP3 when `resp3`), and its client id.
fn conn_on(server: &Server, core: usize, resp3: bool) -> (Connection, i64) {
    let url = format!(
        "redis://127.0.0.1:{}/?protocol={}",
        server.port,
        if resp3 { "resp3" } else { "resp2" }
    );
    let client = redis::Client::open(url).expect("client");
    for _ in 0..64 {
        let mut con = client.get_connection().expect("connection");
        let (at, id) = core_of(&mut con);
        if at == core {
            return (con, id);
        }
    }
    panic!("no connection landed on core {core}");
}

/// A RESP3 connection on `core` whose pushes arrive on the returned channel.
fn tracker_on(server: &Server, core: usize) -> (Connection, i64, Receiver<PushInfo>) {
    let (mut con, id) = conn_on(server, core, true);
    let (tx, rx) = mpsc::channel();
    con.set_push_sender(tx);
    (con, id, rx)
}

fn run(con: &mut Connection, args: &[&str]) -> Value {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(con)
        .unwrap_or_else(|e| panic!("{args:?} failed: {e}"))
}

fn ok(con: &mut Connection, args: &[&str]) {
    assert_eq!(run(con, args), Value::Okay, "{args:?}");
}

fn err(con: &mut Connection, args: &[&str]) -> String {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    match c.query::<Value>(con) {
        Err(e) => e.to_string(),
        Ok(v) => panic!("{args:?} answered {v:?}"),
    }
}

/// The keys of an `invalidate` push (None: every key).
fn invalidated(p: &PushInfo) -> Option<Vec<String>> {
    assert_eq!(p.kind, PushKind::Invalidate, "{p:?}");
    match p.data.first() {
        Some(Value::Array(keys)) => Some(
            keys.iter()
                .map(|k| redis::from_redis_value_ref(k).expect("a key"))
                .collect(),
        ),
        Some(Value::Nil) => None,
        other => panic!("invalidate carries {other:?}"),
    }
}

/// Waits for `n` pushes (a PING on the connection reads what arrived), then checks that no
/// more follow for a moment.
fn pushes(con: &mut Connection, rx: &Receiver<PushInfo>, n: usize) -> Vec<PushInfo> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.len() < n && Instant::now() < deadline {
        run(con, &["PING"]);
        got.extend(rx.try_iter());
        if got.len() < n {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    run(con, &["PING"]);
    got.extend(rx.try_iter());
    assert_eq!(got.len(), n, "pushes: {got:?}");
    got
}

/// The keys named by `n` invalidation pushes, sorted.
fn invalidated_keys(con: &mut Connection, rx: &Receiver<PushInfo>, n: usize) -> Vec<String> {
    let mut keys: Vec<String> = pushes(con, rx, n)
        .iter()
        .flat_map(|p| invalidated(p).expect("keys, not a flush"))
        .collect();
    keys.sort();
    keys
}

fn sorted(keys: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    v.sort();
    v
}

#[test]
fn resp3_client_is_told_of_changes_on_both_shards_by_every_write_path() {
    let server = Server::start(SHARDS, &[]);
    let (mut t, _, rx) = tracker_on(&server, 0);
    let (mut w, _) = conn_on(&server, 1, false);
    let k0 = key_on("t", 0, SHARDS);
    let k1 = key_on("t", 1, SHARDS);
    ok(&mut w, &["MSET", &k0, "a", &k1, "b"]);
    ok(&mut t, &["CLIENT", "TRACKING", "ON"]);
    assert_eq!(server.info_number("tracking_clients"), 1);

    // Single-key reads on either shard, writes from the other core.
    run(&mut t, &["GET", &k0]);
    run(&mut t, &["GET", &k1]);
    assert_eq!(server.info_number("tracking_total_keys"), 2);
    ok(&mut w, &["SET", &k0, "x"]);
    run(&mut w, &["INCR", "unrelated"]);
    ok(&mut w, &["SET", &k1, "y"]);
    assert_eq!(invalidated_keys(&mut t, &rx, 2), sorted(&[&k0, &k1]));
    // Told once: the key is forgotten until read again.
    ok(&mut w, &["SET", &k0, "z"]);
    pushes(&mut t, &rx, 0);

    // A multi-shard read, then a multi-shard write.
    run(&mut t, &["MGET", &k0, &k1]);
    assert_eq!(run(&mut w, &["DEL", &k0, &k1]), Value::Int(2));
    assert_eq!(invalidated_keys(&mut t, &rx, 2), sorted(&[&k0, &k1]));

    // A transaction's writes; only the key read is reported.
    run(&mut t, &["GET", &k1]);
    ok(&mut w, &["MULTI"]);
    run(&mut w, &["SET", &k0, "1"]);
    run(&mut w, &["SET", &k1, "2"]);
    run(&mut w, &["EXEC"]);
    assert_eq!(invalidated_keys(&mut t, &rx, 1), std::slice::from_ref(&k1));

    // Expiry, found by the server's own cycle.
    ok(&mut w, &["SET", &k0, "v", "PX", "50"]);
    run(&mut t, &["GET", &k0]);
    assert_eq!(invalidated_keys(&mut t, &rx, 1), std::slice::from_ref(&k0));

    // The client's own write tells it too (no NOLOOP), after the reply.
    run(&mut t, &["GET", &k1]);
    ok(&mut t, &["SET", &k1, "mine"]);
    assert_eq!(invalidated_keys(&mut t, &rx, 1), std::slice::from_ref(&k1));

    // A flush invalidates everything, once, whatever the shards.
    run(&mut t, &["GET", &k1]);
    ok(&mut w, &["FLUSHALL"]);
    let flush = pushes(&mut t, &rx, 1);
    assert_eq!(invalidated(&flush[0]), None);
    assert_eq!(server.info_number("tracking_total_keys"), 0);

    // Off: nothing more.
    run(&mut t, &["GET", &k0]);
    ok(&mut t, &["CLIENT", "TRACKING", "OFF"]);
    ok(&mut w, &["SET", &k0, "after"]);
    pushes(&mut t, &rx, 0);
    assert_eq!(server.info_number("tracking_clients"), 0);
}

#[test]
fn resp2_redirect_to_a_subscriber_on_another_core() {
    let server = Server::start(SHARDS, &[]);
    let (target, target_id) = conn_on(&server, 1, false);
    let (mut t, _) = conn_on(&server, 0, false);
    let (mut w, _) = conn_on(&server, 0, false);
    let k0 = key_on("r", 0, SHARDS);
    let k1 = key_on("r", 1, SHARDS);
    ok(&mut w, &["MSET", &k0, "a", &k1, "b"]);

    let mut target = target;
    let mut sub = target.as_pubsub();
    sub.subscribe("__redis__:invalidate").expect("subscribe");
    sub.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");

    let id = target_id.to_string();
    assert!(
        err(&mut t, &["CLIENT", "TRACKING", "ON", "REDIRECT", "99999"])
            .contains("The client ID you want redirect to does not exist")
    );
    ok(&mut t, &["CLIENT", "TRACKING", "ON", "REDIRECT", &id]);
    assert_eq!(
        run(&mut t, &["CLIENT", "GETREDIR"]),
        Value::Int(target_id),
        "GETREDIR"
    );
    run(&mut t, &["GET", &k0]);
    run(&mut t, &["GET", &k1]);
    ok(&mut w, &["SET", &k1, "x"]);
    ok(&mut w, &["SET", &k0, "y"]);
    let mut keys = Vec::new();
    for _ in 0..2 {
        let msg = sub.get_message().expect("an invalidation");
        assert_eq!(msg.get_channel_name(), "__redis__:invalidate");
        let payload: Vec<String> = msg.get_payload().expect("keys");
        keys.extend(payload);
    }
    keys.sort();
    assert_eq!(keys, sorted(&[&k0, &k1]));

    // A flush: the payload is a null.
    run(&mut t, &["GET", &k0]);
    ok(&mut w, &["FLUSHDB"]);
    let msg = sub.get_message().expect("the flush");
    assert_eq!(msg.get_payload::<Value>().expect("payload"), Value::Nil);
    drop(sub);
    drop(target);

    // The target gone, the next invalidation marks the redirect broken.
    run(&mut t, &["GET", &k1]);
    ok(&mut w, &["SET", &k1, "z"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let info = format!("{:?}", run(&mut t, &["CLIENT", "TRACKINGINFO"]));
        if info.contains("broken_redirect") {
            break;
        }
        assert!(Instant::now() < deadline, "never broken: {info}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let list = format!("{:?}", run(&mut t, &["CLIENT", "LIST"]));
    assert!(list.contains(&format!("redir={id}")), "{list}");
}

#[test]
fn bcast_prefixes_noloop_and_optin_across_cores() {
    let server = Server::start(SHARDS, &[]);
    let (mut t, _, rx) = tracker_on(&server, 0);
    let (mut w, _) = conn_on(&server, 1, false);
    ok(
        &mut t,
        &[
            "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a:", "PREFIX", "b:", "NOLOOP",
        ],
    );
    assert!(
        err(&mut t, &["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a"]).contains(
            "Prefix 'a' overlaps with an existing prefix 'a:'. Prefixes for a single client must not overlap."
        )
    );
    assert!(
        err(&mut t, &["CLIENT", "TRACKING", "ON"]).contains("You can't switch BCAST mode on/off")
    );
    let a1 = key_on("a:", 1, SHARDS);
    let b0 = key_on("b:", 0, SHARDS);
    let c0 = key_on("c:", 0, SHARDS);
    // Never read, still reported: every change under the prefixes.
    ok(&mut w, &["SET", &a1, "1"]);
    ok(&mut w, &["SET", &c0, "1"]);
    ok(&mut w, &["SET", &b0, "1"]);
    assert_eq!(invalidated_keys(&mut t, &rx, 2), sorted(&[&a1, &b0]));
    // NOLOOP: its own changes are not reported back.
    ok(&mut t, &["SET", &a1, "2"]);
    pushes(&mut t, &rx, 0);
    match run(&mut t, &["CLIENT", "TRACKINGINFO"]) {
        Value::Map(fields) => {
            let text = format!("{fields:?}");
            for want in ["\"on\"", "\"bcast\"", "\"noloop\"", "\"a:\"", "\"b:\""] {
                assert!(text.contains(want), "{want} missing from {text}");
            }
        }
        other => panic!("TRACKINGINFO answered {other:?}"),
    }

    // OPTIN: only what is read right after CLIENT CACHING YES is remembered.
    let (mut o, _, orx) = tracker_on(&server, 1);
    let k0 = key_on("o", 0, SHARDS);
    let k1 = key_on("o", 1, SHARDS);
    assert!(err(&mut o, &["CLIENT", "CACHING", "YES"]).contains("CLIENT CACHING can be called"));
    ok(&mut o, &["CLIENT", "TRACKING", "ON", "OPTIN"]);
    assert!(err(&mut o, &["CLIENT", "CACHING", "NO"])
        .contains("CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode."));
    run(&mut o, &["GET", &k0]);
    ok(&mut o, &["CLIENT", "CACHING", "YES"]);
    run(&mut o, &["GET", &k1]);
    run(&mut o, &["GET", &k0]);
    ok(&mut w, &["SET", &k0, "1"]);
    ok(&mut w, &["SET", &k1, "1"]);
    assert_eq!(invalidated_keys(&mut o, &orx, 1), std::slice::from_ref(&k1));
}

#[test]
fn the_table_limit_forgets_keys_and_tells_their_readers() {
    let server = Server::start(SHARDS, &[]);
    let (mut t, _, rx) = tracker_on(&server, 0);
    ok(&mut t, &["CLIENT", "TRACKING", "ON"]);
    for i in 0..10 {
        run(&mut t, &["GET", &format!("lim:{i}")]);
    }
    assert_eq!(server.info_number("tracking_total_keys"), 10);
    ok(&mut t, &["CONFIG", "SET", "tracking-table-max-keys", "2"]);
    assert_eq!(invalidated_keys(&mut t, &rx, 8).len(), 8);
    assert_eq!(server.info_number("tracking_total_keys"), 2);
    // Reads keep within the limit as they add keys.
    for i in 10..20 {
        run(&mut t, &["GET", &format!("lim:{i}")]);
    }
    assert_eq!(invalidated_keys(&mut t, &rx, 10).len(), 10);
    assert!(server.info_number("tracking_total_keys") <= 2);
}

#[test]
fn scripts_invalidate_what_they_write_and_track_their_declared_keys_once_they_read() {
    let server = Server::start(SHARDS, &[]);
    let (mut t, _, rx) = tracker_on(&server, 0);
    let (mut w, _) = conn_on(&server, 1, false);
    let k0 = key_on("s", 0, SHARDS);
    let k1 = key_on("s", 1, SHARDS);
    ok(&mut t, &["CLIENT", "TRACKING", "ON"]);

    // A script's write, local to its shard or not, tells the key's readers.
    for key in [&k0, &k1] {
        run(&mut t, &["GET", key]);
        run(
            &mut w,
            &["EVAL", "redis.call('set', KEYS[1], 'x')", "1", key],
        );
        assert_eq!(invalidated_keys(&mut t, &rx, 1), std::slice::from_ref(key));
    }

    // A script that reads nothing tracks nothing, whatever it declares.
    run(
        &mut t,
        &["EVAL", "redis.call('set', 'other', 'x')", "2", &k0, &k1],
    );
    ok(&mut w, &["MSET", &k0, "1", &k1, "1"]);
    pushes(&mut t, &rx, 0);

    // One that reads tracks its declared keys (on both shards), not the key it read.
    for eval in ["EVAL", "EVAL_RO"] {
        run(&mut t, &[eval, "redis.call('get', 'other')", "2", &k0, &k1]);
        ok(&mut w, &["MSET", &k0, "2", &k1, "2", "other", "2"]);
        assert_eq!(invalidated_keys(&mut t, &rx, 2), sorted(&[&k0, &k1]));
    }
}
