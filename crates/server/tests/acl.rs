//! AUTH and ACL end to end: every kind of rule (commands, categories, subcommands, first
//! arguments, keys with read/write permissions on both shards of a two-shard server,
//! channels, selectors), passwords, the ACL log, users from the configuration and the ACL
//! file, changes reaching every core, and protected mode.

mod common;

use common::Server;
use redis::{Connection, RedisResult, Value};
use shardis_server::coord::route::shard_of;

/// A key whose shard (of two) is `shard`, starting with `prefix`.
fn key_on(prefix: &str, shard: usize) -> String {
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .find(|k| shard_of(k.as_bytes(), 2) == shard)
        .expect("a key")
}

fn cmd(c: &mut Connection, args: &[&str]) -> RedisResult<Value> {
    let mut command = redis::cmd(args[0]);
    for a in &args[1..] {
        command.arg(*a);
    }
    command.query(c)
}

fn ok(c: &mut Connection, args: &[&str]) -> Value {
    cmd(c, args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// The error text (code included) of a command that must fail.
fn err(c: &mut Connection, args: &[&str]) -> String {
    match cmd(c, args) {
        Ok(v) => panic!("{args:?} succeeded: {v:?}"),
        Err(e) => format!("{} {}", e.code().unwrap_or(""), e.detail().unwrap_or("")),
    }
}

/// A connection authenticated as `user`.
fn login(s: &Server, user: &str, pass: &str) -> Connection {
    let mut c = s.conn();
    ok(&mut c, &["AUTH", user, pass]);
    c
}

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Okay => "OK".into(),
        other => format!("{other:?}"),
    }
}

#[test]
fn commands_categories_subcommands_and_first_args() {
    let s = Server::start(2, &[]);
    let mut admin = s.conn();
    ok(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            "alice",
            "on",
            ">pw",
            "~*",
            "+@hash",
            "-@write",
            "+@string",
            "-append",
            "+config|get",
            "+select|0",
        ],
    );
    let mut c = login(&s, "alice", "pw");
    ok(&mut c, &["SET", "k", "v"]);
    assert_eq!(text(&ok(&mut c, &["GET", "k"])), "v");
    assert_eq!(
        err(&mut c, &["APPEND", "k", "x"]),
        "NOPERM this user has no permissions to run the 'append' command"
    );
    assert_eq!(
        err(&mut c, &["LPUSH", "l", "x"]),
        "NOPERM this user has no permissions to run the 'lpush' command"
    );
    // -@write after +@hash removed HSET but left HGET; +@string then added SET back.
    assert!(err(&mut c, &["HSET", "h", "f", "v"]).starts_with("NOPERM"));
    ok(&mut c, &["HGET", "h", "f"]);
    ok(&mut c, &["CONFIG", "GET", "maxclients"]);
    assert_eq!(
        err(&mut c, &["CONFIG", "SET", "maxclients", "10"]),
        "NOPERM this user has no permissions to run the 'config|set' command"
    );
    ok(&mut c, &["SELECT", "0"]);
    assert!(err(&mut c, &["SELECT", "1"]).starts_with("NOPERM"));
    assert!(err(&mut c, &["ACL", "WHOAMI"]).starts_with("NOPERM"));
    let list = ok(&mut admin, &["ACL", "LIST"]);
    let Value::Array(lines) = list else {
        panic!("{list:?}")
    };
    assert_eq!(
        text(&lines[0]),
        "user alice on #30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4 ~* resetchannels -@all +@string +@hash -append +config|get -hdel -hincrby -hincrbyfloat -hmset -hset -hsetnx +select|0"
    );
}

#[test]
fn keys_are_checked_on_both_shards_and_a_multi_key_command_is_denied_whole() {
    let s = Server::start(2, &[]);
    let mut admin = s.conn();
    let (r0, r1) = (key_on("r:", 0), key_on("r:", 1));
    let (w0, w1) = (key_on("w:", 0), key_on("w:", 1));
    let (a0, a1) = (key_on("a:", 0), key_on("a:", 1));
    let (x0, x1) = (key_on("x:", 0), key_on("x:", 1));
    for k in [&r0, &r1, &a0, &a1, &x0, &x1] {
        ok(&mut admin, &["SET", k, "orig"]);
    }
    ok(
        &mut admin,
        &[
            "ACL", "SETUSER", "bob", "on", "nopass", "+@all", "%R~r:*", "%W~w:*", "~a:*",
        ],
    );
    let mut c = login(&s, "bob", "any");
    for (r, w, a, x) in [(&r0, &w0, &a0, &x0), (&r1, &w1, &a1, &x1)] {
        assert_eq!(text(&ok(&mut c, &["GET", r])), "orig");
        assert!(err(&mut c, &["SET", r, "v"]).starts_with("NOPERM"));
        // SET without GET only writes; with GET it also reads.
        ok(&mut c, &["SET", w, "v"]);
        assert!(err(&mut c, &["SET", w, "v", "GET"]).starts_with("NOPERM"));
        assert!(err(&mut c, &["GET", w]).starts_with("NOPERM"));
        ok(&mut c, &["SET", a, "v"]);
        assert_eq!(text(&ok(&mut c, &["GET", a])), "v");
        assert_eq!(
            err(&mut c, &["GET", x]),
            "NOPERM this user has no permissions to access one of the keys used as arguments"
        );
    }
    // One forbidden key among keys of both shards: nothing runs.
    assert!(err(&mut c, &["MSET", &a0, "new", &a1, "new", &x1, "new"]).starts_with("NOPERM"));
    assert_eq!(text(&ok(&mut admin, &["GET", &a0])), "v");
    assert_eq!(text(&ok(&mut admin, &["GET", &x1])), "orig");
    assert!(err(&mut c, &["DEL", &a0, &x1]).starts_with("NOPERM"));
    assert_eq!(ok(&mut admin, &["EXISTS", &a0, &x1]), Value::Int(2));
    ok(&mut c, &["MSET", &a0, "new", &a1, "new"]);
    assert_eq!(text(&ok(&mut admin, &["GET", &a1])), "new");
    // Reading a key to write another: both permissions checked.
    assert!(err(&mut c, &["COPY", &w0, &r1]).starts_with("NOPERM"));
    ok(&mut c, &["COPY", &r0, &w1, "REPLACE"]);
    assert_eq!(text(&ok(&mut admin, &["GET", &w1])), "orig");
}

#[test]
fn channels_are_checked_for_publish_and_subscriptions() {
    let s = Server::start(2, &[]);
    let mut admin = s.conn();
    ok(
        &mut admin,
        &[
            "ACL", "SETUSER", "pub", "on", "nopass", "+@all", "~*", "&news.*",
        ],
    );
    let mut c = login(&s, "pub", "x");
    ok(&mut c, &["PUBLISH", "news.tech", "hi"]);
    assert_eq!(
        err(&mut c, &["PUBLISH", "sport", "hi"]),
        "NOPERM this user has no permissions to access one of the channels used as arguments"
    );
    ok(&mut c, &["SPUBLISH", "news.x", "hi"]);
    // A pattern subscription must name an allowed pattern literally.
    assert!(err(&mut c, &["PSUBSCRIBE", "news.t*"]).starts_with("NOPERM"));
    let mut sub = login(&s, "pub", "x");
    assert!(err(&mut sub, &["SUBSCRIBE", "news.a", "sport"]).starts_with("NOPERM"));
    let mut ps = s.client().get_connection().expect("conn");
    ok(&mut ps, &["AUTH", "pub", "x"]);
    let mut pubsub = ps.as_pubsub();
    pubsub.psubscribe("news.*").expect("psubscribe");
    // Taking the channel away disconnects the subscriber.
    ok(
        &mut admin,
        &["ACL", "SETUSER", "pub", "resetchannels", "&other"],
    );
    pubsub
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .expect("timeout");
    assert!(pubsub.get_message().is_err(), "the subscriber was dropped");
}

#[test]
fn selectors_add_alternative_permissions() {
    let s = Server::start(2, &[]);
    let mut admin = s.conn();
    ok(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            "sel",
            "on",
            "nopass",
            "+get",
            "~read:*",
            "(+set",
            "~write:*)",
            "(+@hash ~h:*)",
        ],
    );
    let mut c = login(&s, "sel", "x");
    let (r, w) = (key_on("read:", 1), key_on("write:", 0));
    ok(&mut c, &["GET", &r]);
    ok(&mut c, &["SET", &w, "1"]);
    assert!(err(&mut c, &["GET", &w]).starts_with("NOPERM"));
    assert!(err(&mut c, &["SET", &r, "1"]).starts_with("NOPERM"));
    ok(&mut c, &["HSET", "h:1", "f", "v"]);
    assert!(err(&mut c, &["HSET", "x", "f", "v"]).starts_with("NOPERM"));
    let user = ok(&mut admin, &["ACL", "GETUSER", "sel"]);
    let Value::Array(fields) = user else {
        panic!("{user:?}")
    };
    let selectors = fields
        .chunks(2)
        .find(|f| text(&f[0]) == "selectors")
        .map(|f| f[1].clone());
    let Some(Value::Array(sels)) = selectors else {
        panic!("{fields:?}")
    };
    assert_eq!(sels.len(), 2);
    assert_eq!(
        err(&mut admin, &["ACL", "SETUSER", "sel", "(+get"]),
        "ERR Unmatched parenthesis in acl selector starting at '(+get'."
    );
    ok(&mut admin, &["ACL", "SETUSER", "sel", "clearselectors"]);
    assert!(err(&mut c, &["SET", &w, "1"]).starts_with("NOPERM"));
}

#[test]
fn authentication_passwords_and_the_acl_log() {
    let s = Server::start(2, &["--requirepass", "secret"]);
    let mut c = s.conn();
    assert_eq!(
        err(&mut c, &["GET", "k"]),
        "NOAUTH Authentication required."
    );
    assert_eq!(
        err(&mut c, &["AUTH", "wrong"]),
        "WRONGPASS invalid username-password pair or user is disabled."
    );
    assert!(err(&mut c, &["HELLO", "3"]).starts_with("NOAUTH HELLO must be called"));
    ok(&mut c, &["AUTH", "secret"]);
    ok(&mut c, &["SET", "k", "v"]);
    ok(&mut c, &["ACL", "LOG", "RESET"]);
    // One optional argument: more get the subcommand error, as Redis's unit/acl checks.
    for sub in ["CAT", "GENPASS", "LOG"] {
        assert_eq!(
            err(&mut c, &["ACL", sub, "1", "2"]),
            format!(
                "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try ACL HELP."
            )
        );
    }
    ok(
        &mut c,
        &[
            "ACL", "SETUSER", "carol", "on", ">one", ">two", "+get", "~*",
        ],
    );
    let mut other = s.conn();
    let hello = ok(&mut other, &["HELLO", "2", "AUTH", "carol", "two"]);
    assert!(matches!(hello, Value::Array(_)), "{hello:?}");
    assert_eq!(text(&ok(&mut other, &["GET", "k"])), "v");
    for _ in 0..3 {
        assert!(err(&mut other, &["SET", "k", "x"]).starts_with("NOPERM"));
    }
    assert!(err(&mut other, &["AUTH", "carol", "three"]).starts_with("WRONGPASS"));
    ok(&mut c, &["ACL", "SETUSER", "carol", "<two"]);
    assert!(err(&mut other, &["AUTH", "carol", "two"]).starts_with("WRONGPASS"));
    ok(&mut other, &["AUTH", "carol", "one"]);
    // The log: newest first, repeated denials grouped.
    let log = ok(&mut c, &["ACL", "LOG"]);
    let Value::Array(entries) = log else {
        panic!("{log:?}")
    };
    let field = |e: &Value, name: &str| -> Value {
        let Value::Array(kv) = e else { panic!("{e:?}") };
        kv.chunks(2)
            .find(|f| text(&f[0]) == name)
            .map(|f| f[1].clone())
            .unwrap_or(Value::Nil)
    };
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(text(&field(&entries[0], "reason")), "auth");
    assert_eq!(text(&field(&entries[0], "object")), "AUTH");
    assert_eq!(text(&field(&entries[0], "username")), "carol");
    assert_eq!(field(&entries[0], "count"), Value::Int(2));
    assert_eq!(text(&field(&entries[1], "reason")), "command");
    assert_eq!(text(&field(&entries[1], "object")), "set");
    assert_eq!(text(&field(&entries[1], "context")), "toplevel");
    assert_eq!(field(&entries[1], "count"), Value::Int(3));
    assert!(text(&field(&entries[1], "client-info")).contains("user=carol"));
    // Removing a password from the configuration opens the server again.
    ok(&mut c, &["CONFIG", "SET", "requirepass", ""]);
    let mut fresh = s.conn();
    ok(&mut fresh, &["GET", "k"]);
    assert_eq!(
        err(&mut fresh, &["AUTH", "x"]),
        "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
    );
}

#[test]
fn changes_reach_every_core_and_deleted_users_are_disconnected() {
    let s = Server::start(2, &[]);
    let mut admin = s.conn();
    ok(
        &mut admin,
        &["ACL", "SETUSER", "dave", "on", ">pw", "+@all", "~*"],
    );
    // Connections land on both cores; each must see the same users.
    let mut conns: Vec<Connection> = (0..8).map(|_| login(&s, "dave", "pw")).collect();
    ok(&mut admin, &["ACL", "SETUSER", "dave", "-get"]);
    for c in &mut conns {
        assert!(err(c, &["GET", "k"]).starts_with("NOPERM"));
    }
    assert_eq!(
        ok(&mut admin, &["ACL", "DELUSER", "dave", "nosuch"]),
        Value::Int(1)
    );
    for c in &mut conns {
        assert!(cmd(c, &["PING"]).is_err(), "the connection was closed");
    }
    assert_eq!(
        err(&mut admin, &["ACL", "DELUSER", "default"]),
        "ERR The 'default' user cannot be removed"
    );
}

#[test]
fn multi_rechecks_permissions_at_exec() {
    let s = Server::start(2, &[]);
    let mut admin = s.conn();
    ok(
        &mut admin,
        &["ACL", "SETUSER", "eve", "on", ">pw", "+@all", "~*"],
    );
    // The client library turns an error inside EXEC's array into an error: read the wire.
    let mut raw = s.raw();
    let queued = b"+OK\r\n+OK\r\n+QUEUED\r\n+QUEUED\r\n";
    let wire = common::roundtrip(
        &mut raw,
        b"AUTH eve pw\r\nMULTI\r\nSET a 1\r\nGET a\r\n",
        queued.len(),
    );
    assert_eq!(wire, queued);
    ok(&mut admin, &["ACL", "SETUSER", "eve", "-set"]);
    let expected = "*2\r\n-NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: no permission to execute the command or subcommand\r\n$-1\r\n";
    let wire = common::roundtrip(&mut raw, b"EXEC\r\n", expected.len());
    assert_eq!(String::from_utf8_lossy(&wire), expected);
    let mut c = login(&s, "eve", "pw");
    // Denied at queue time: the transaction fails.
    ok(&mut c, &["MULTI"]);
    assert!(err(&mut c, &["SET", "a", "1"]).starts_with("NOPERM"));
    assert!(err(&mut c, &["EXEC"]).starts_with("EXECABORT"));
}

#[test]
fn users_from_the_config_file_and_the_acl_file() {
    let dir = std::env::temp_dir().join(format!("shardis-acl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let aclfile = dir.join("users.acl");
    std::fs::write(
        &aclfile,
        "user default on nopass ~* &* +@all\nuser frank on >fpw ~f* +@read\n",
    )
    .expect("write");
    let s = Server::start(2, &["--aclfile", aclfile.to_str().expect("path")]);
    let mut admin = s.conn();
    let mut f = login(&s, "frank", "fpw");
    ok(&mut f, &["GET", "fkey"]);
    assert!(err(&mut f, &["GET", "other"]).starts_with("NOPERM"));
    ok(&mut admin, &["ACL", "SETUSER", "gina", "on", ">g", "+ping"]);
    ok(&mut admin, &["ACL", "SAVE"]);
    let saved = std::fs::read_to_string(&aclfile).expect("read");
    assert!(saved.contains("user gina on #"), "{saved}");
    // A broken file changes nothing.
    std::fs::write(
        &aclfile,
        "user default on nopass ~* &* +@all\nuser x +nosuch\n",
    )
    .expect("write");
    let e = err(&mut admin, &["ACL", "LOAD"]);
    assert!(e.contains("Unknown command or category name in ACL"), "{e}");
    ok(&mut f, &["GET", "fkey"]);
    // A good one replaces every user; their clients are disconnected.
    std::fs::write(&aclfile, "user default on nopass ~* &* +@all\n").expect("write");
    ok(&mut admin, &["ACL", "LOAD"]);
    assert!(cmd(&mut f, &["PING"]).is_err());
    assert_eq!(
        ok(&mut admin, &["ACL", "USERS"]),
        Value::Array(vec![Value::BulkString(b"default".to_vec())])
    );
    let _ = std::fs::remove_dir_all(&dir);

    let conf = std::env::temp_dir().join(format!("shardis-acl-{}.conf", std::process::id()));
    std::fs::write(&conf, "user henry on >h ~* +@all\nuser default off\n").expect("write");
    let s = Server::start_with_file(&conf, 2, &[]);
    let mut c = s.conn();
    assert_eq!(err(&mut c, &["PING"]), "NOAUTH Authentication required.");
    ok(&mut c, &["AUTH", "henry", "h"]);
    ok(&mut c, &["PING"]);
    let _ = std::fs::remove_file(&conf);
}

#[test]
fn protected_mode_refuses_remote_clients_only_without_a_password() {
    // A local address that is not loopback: the route to a public address (nothing is sent).
    let Some(ip) = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|u| u.connect("192.0.2.1:9").map(|()| u))
        .and_then(|u| u.local_addr())
        .ok()
        .map(|a| a.ip())
        .filter(|ip| !ip.is_loopback())
    else {
        eprintln!("no non-loopback address: skipped");
        return;
    };
    let bind = format!("127.0.0.1 {ip}");
    let s = Server::start(2, &["--bind", &bind]);
    let remote = |port: u16| {
        use std::io::{Read, Write};
        let mut sock = std::net::TcpStream::connect((ip, port)).expect("connect");
        sock.set_read_timeout(Some(std::time::Duration::from_secs(1)))
            .expect("timeout");
        let _ = sock.write_all(b"PING\r\n");
        let mut out = Vec::new();
        let _ = sock.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    };
    assert!(remote(s.port).starts_with("-DENIED Redis is running in protected mode"));
    let mut local = s.conn();
    ok(&mut local, &["CONFIG", "SET", "requirepass", "pw"]);
    assert!(
        remote(s.port).starts_with("-NOAUTH"),
        "a password admits remote clients"
    );
}

#[test]
fn scripts_run_their_commands_as_the_calling_user() {
    let s = Server::start(2, &[]);
    let mut admin = s.conn();
    let (ok0, ok1) = (key_on("allowed:", 0), key_on("allowed:", 1));
    let (no0, no1) = (key_on("other:", 0), key_on("other:", 1));
    for k in [&no0, &no1] {
        ok(&mut admin, &["SET", k, "orig"]);
    }
    ok(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            "u",
            "on",
            ">p",
            "+eval",
            "+get",
            "+set",
            "~allowed:*",
        ],
    );
    ok(&mut admin, &["ACL", "LOG", "RESET"]);
    let mut c = login(&s, "u", "p");
    // A command the user lacks fails the script, whatever it would touch.
    let denied = err(&mut c, &["EVAL", "return redis.call('flushall')", "0"]);
    assert!(
        denied.starts_with(
            "ERR The user executing the script can't run this command or subcommand script:"
        ),
        "{denied}"
    );
    assert_eq!(ok(&mut admin, &["EXISTS", &no0, &no1]), Value::Int(2));
    // A key outside its patterns on either shard: declared, EVAL itself is denied; named
    // only by the script, the script's call is.
    for k in [&no0, &no1] {
        assert!(err(&mut c, &["EVAL", "return 1", "1", k]).starts_with("NOPERM"));
        let undeclared = format!("return redis.call('set', '{k}', 'x')");
        let denied = err(&mut c, &["EVAL", &undeclared, "0"]);
        assert!(
            denied.starts_with("ERR The user executing the script can't access at least one of the keys mentioned in the command arguments script:"),
            "{denied}"
        );
    }
    assert_eq!(text(&ok(&mut admin, &["GET", &no0])), "orig");
    // pcall gets the denial as an error it can handle; acl_check_cmd answers without running.
    let caught = "local r = redis.pcall('del', KEYS[1]) return r['err']";
    assert!(text(&ok(&mut c, &["EVAL", caught, "1", &ok0]))
        .starts_with("ERR The user executing the script can't run this command or subcommand"));
    let check = "return {redis.acl_check_cmd('set', KEYS[1], 'v') and 1 or 0, \
                 redis.acl_check_cmd('set', ARGV[1], 'v') and 1 or 0}";
    assert_eq!(
        ok(&mut c, &["EVAL", check, "1", &ok0, &no0]),
        Value::Array(vec![Value::Int(1), Value::Int(0)])
    );
    // Allowed calls work, keys of both shards included.
    let both = "redis.call('set', KEYS[1], 'a') redis.call('set', KEYS[2], 'b') \
                return redis.call('get', KEYS[2])";
    assert_eq!(text(&ok(&mut c, &["EVAL", both, "2", &ok0, &ok1])), "b");
    assert_eq!(text(&ok(&mut admin, &["GET", &ok0])), "a");
    // The log names the command or key, with the context "lua", newest first.
    let log = ok(&mut admin, &["ACL", "LOG"]);
    let Value::Array(entries) = log else {
        panic!("{log:?}")
    };
    let field = |e: &Value, name: &str| -> String {
        let Value::Array(kv) = e else { panic!("{e:?}") };
        kv.chunks(2)
            .find(|f| text(&f[0]) == name)
            .map(|f| text(&f[1]))
            .unwrap_or_default()
    };
    let last = entries.last().expect("an entry");
    assert_eq!(field(last, "reason"), "command");
    assert_eq!(field(last, "object"), "flushall");
    assert_eq!(field(last, "context"), "lua");
    assert_eq!(field(last, "username"), "u");
    assert!(field(last, "client-info").contains("cmd=eval"), "{last:?}");
    assert!(entries
        .iter()
        .any(|e| field(e, "reason") == "key" && field(e, "object") == no1));
    assert!(entries
        .iter()
        .any(|e| field(e, "context") == "toplevel" && field(e, "reason") == "key"));
    // The default user is not limited by the restricted one's rules.
    let all = "redis.call('set', KEYS[1], 'd') return redis.call('del', KEYS[1])";
    assert_eq!(ok(&mut admin, &["EVAL", all, "1", &no0]), Value::Int(1));
    assert_eq!(
        ok(
            &mut admin,
            &["EVAL", "return redis.acl_check_cmd('flushall')", "0"]
        ),
        Value::Int(1)
    );
}
