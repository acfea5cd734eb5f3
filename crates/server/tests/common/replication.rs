//! Replication tests' shared parts: a primary as the tests start it, INFO fields, waiting
//! for a replica to be online and to catch up, WAIT and killing links, comparing data sets,
//! and a fill and write load of every data type.

use std::time::{Duration, Instant};

use redis::Connection;

use super::Server;

/// A Shardis primary of 2 shards for replication tests: DEBUG enabled (DIGEST compares data
/// sets) and full syncs starting at once; `extra` arguments after those.
pub fn primary_with(extra: &[&str]) -> Server {
    let mut args = vec![
        "--enable-debug-command",
        "yes",
        "--repl-diskless-sync-delay",
        "0",
    ];
    args.extend_from_slice(extra);
    Server::start(2, &args)
}

/// A fresh directory for a test's files (a replica's RDB, a Redis server's dir).
/// A Shardis replica (2 shards) of the server on `port` that serves replicas of its own at
/// once (DEBUG enabled, no diskless-sync delay): the middle of a chain.
pub fn middle_replica_of(port: u16) -> Server {
    Server::start(
        2,
        &[
            "--enable-debug-command",
            "yes",
            "--repl-diskless-sync-delay",
            "0",
            "--replicaof",
            "127.0.0.1",
            &port.to_string(),
        ],
    )
}

pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("shardis-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

/// INFO's `field`, waiting until `ok` holds it (30 s).
pub fn wait_info(c: &mut Connection, field: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = info_of(c, field).unwrap_or_default();
        if ok(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "INFO {field}: {v:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the primary lists `n` replicas online.
pub fn wait_online(p: &mut Connection, n: usize) {
    for i in 0..n {
        wait_info(p, &format!("slave{i}"), |l| l.contains("state=online"));
    }
}

/// WAIT for `n` replicas, up to `ms` milliseconds: how many acknowledged.
pub fn wait_replicas(c: &mut Connection, n: i64, ms: i64) -> i64 {
    redis::cmd("WAIT").arg(n).arg(ms).query(c).expect("WAIT")
}

/// CLIENT KILL TYPE `kind` (`replica`, `master`): how many connections it closed.
pub fn kill_type(c: &mut Connection, kind: &str) -> i64 {
    redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg(kind)
        .query(c)
        .expect("CLIENT KILL")
}

pub fn info_of(c: &mut Connection, field: &str) -> Option<String> {
    let info: String = redis::cmd("INFO").arg("all").query(c).ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
}

pub fn number(c: &mut Connection, field: &str) -> i64 {
    info_of(c, field)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("INFO {field}"))
}

/// Waits until the replica is up and has applied everything the primary wrote.
pub fn wait_in_sync(primary: &mut Connection, replica: &mut Connection) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let target = number(primary, "master_repl_offset");
        let up = info_of(replica, "master_link_status").as_deref() == Some("up");
        if up && number(replica, "slave_repl_offset") == target {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "replica not in sync: link {:?}, offset {} of {target}",
            info_of(replica, "master_link_status"),
            number(replica, "master_repl_offset")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn digest(c: &mut Connection) -> String {
    redis::cmd("DEBUG")
        .arg("DIGEST")
        .query(c)
        .expect("DEBUG DIGEST")
}

/// Both data sets are the same: every database's size, then Redis's digest of all of them.
pub fn assert_same(primary: &mut Connection, replica: &mut Connection) {
    for db in 0..2 {
        let p: i64 = redis::cmd("SELECT")
            .arg(db)
            .query::<()>(primary)
            .map_or(-1, |()| {
                redis::cmd("DBSIZE").query(primary).expect("DBSIZE")
            });
        let r: i64 = redis::cmd("SELECT")
            .arg(db)
            .query::<()>(replica)
            .map_or(-1, |()| {
                redis::cmd("DBSIZE").query(replica).expect("DBSIZE")
            });
        assert_eq!(p, r, "DBSIZE of db {db}");
    }
    let _: () = redis::cmd("SELECT").arg(0).query(primary).expect("SELECT");
    let _: () = redis::cmd("SELECT").arg(0).query(replica).expect("SELECT");
    assert_eq!(digest(primary), digest(replica), "DEBUG DIGEST");
}

/// Data of every type, in two databases, some of it large enough for the general encodings.
pub fn fill(c: &mut Connection) {
    let mut p = redis::pipe();
    for i in 0..300 {
        p.cmd("SET")
            .arg(format!("str:{i}"))
            .arg(format!("value-{i}"));
        p.cmd("SET").arg(format!("int:{i}")).arg(i);
        p.cmd("RPUSH").arg("list:big").arg(format!("item-{i}"));
        p.cmd("HSET")
            .arg("hash:big")
            .arg(format!("f{i}"))
            .arg(format!("v{i}"));
        p.cmd("SADD").arg("set:big").arg(format!("m{i}"));
        p.cmd("SADD").arg("set:ints").arg(i);
        p.cmd("ZADD")
            .arg("zset:big")
            .arg(i as f64 * 1.5)
            .arg(format!("z{i}"));
        p.cmd("XADD").arg("stream").arg("*").arg("n").arg(i);
        p.cmd("PFADD").arg("hll").arg(format!("e{i}"));
    }
    p.cmd("RPUSH").arg("list:small").arg("a").arg("b");
    p.cmd("HSET").arg("hash:small").arg("a").arg("1");
    p.cmd("SADD").arg("set:small").arg("a").arg("b");
    p.cmd("ZADD").arg("zset:small").arg(1).arg("a");
    p.cmd("GEOADD")
        .arg("geo")
        .arg(13.361389)
        .arg(38.115556)
        .arg("Palermo");
    p.cmd("SETBIT").arg("bits").arg(1000).arg(1);
    p.cmd("SET").arg("big:string").arg("x".repeat(100_000));
    p.cmd("SET").arg("ttl").arg("v").arg("EX").arg(1000);
    p.cmd("XGROUP")
        .arg("CREATE")
        .arg("stream")
        .arg("g")
        .arg("0");
    p.cmd("XREADGROUP")
        .arg("GROUP")
        .arg("g")
        .arg("c")
        .arg("COUNT")
        .arg(5)
        .arg("STREAMS")
        .arg("stream")
        .arg(">");
    p.cmd("SELECT").arg(1);
    p.cmd("SET").arg("in-db1").arg("1");
    p.cmd("HSET").arg("h1").arg("f").arg("v");
    p.cmd("SELECT").arg(0);
    p.query::<()>(c).expect("fill");
}

/// A write load of every type: single keys on both shards, commands over several shards,
/// transactions, a script, expiries, deletions, another database.
pub fn write_load(c: &mut Connection, round: usize) {
    let mut p = redis::pipe();
    for i in 0..200 {
        let n = round * 1000 + i;
        p.cmd("SET").arg(format!("k:{n}")).arg(n);
        p.cmd("INCR").arg(format!("int:{}", i % 50));
        p.cmd("INCRBYFLOAT").arg("float").arg(0.5);
        p.cmd("LPUSH").arg("list:big").arg(n);
        p.cmd("RPOP").arg("list:small");
        p.cmd("HINCRBY")
            .arg("hash:counters")
            .arg(format!("f{}", i % 20))
            .arg(1);
        p.cmd("SADD").arg("set:big").arg(format!("new{n}"));
        p.cmd("SPOP").arg("set:ints");
        p.cmd("ZINCRBY")
            .arg("zset:big")
            .arg(2)
            .arg(format!("z{}", i % 30));
        p.cmd("XADD").arg("stream").arg("*").arg("n").arg(n);
        p.cmd("PFADD").arg("hll").arg(format!("x{n}"));
        p.cmd("EXPIRE").arg(format!("str:{}", i)).arg(5000);
        p.cmd("DEL").arg(format!("str:{}", 299 - i));
        p.cmd("MSET")
            .arg(format!("a:{n}"))
            .arg(1)
            .arg(format!("b:{n}"))
            .arg(2)
            .arg(format!("c:{n}"))
            .arg(3);
        if i % 10 == 0 {
            p.cmd("SUNIONSTORE")
                .arg(format!("union:{n}"))
                .arg("set:small")
                .arg("set:big");
            p.cmd("RENAME")
                .arg(format!("k:{n}"))
                .arg(format!("renamed:{n}"));
            p.cmd("MULTI");
            p.cmd("INCR").arg("tx:a");
            p.cmd("INCR").arg("tx:b");
            p.cmd("LMOVE")
                .arg("list:big")
                .arg("tx:list")
                .arg("LEFT")
                .arg("RIGHT");
            p.cmd("EXEC");
            p.cmd("EVAL")
                .arg("redis.call('INCR', KEYS[1]); return redis.call('SET', KEYS[2], ARGV[1])")
                .arg(2)
                .arg("script:a")
                .arg("script:b")
                .arg(n);
            p.cmd("SELECT").arg(1);
            p.cmd("INCR").arg("in-db1:counter");
            p.cmd("SELECT").arg(0);
        }
    }
    p.query::<()>(c).expect("write load");
}

/// Keys given expiries by every command that sets one (relative, absolute, removed), which
/// reach replicas as absolute times (`assert_same_expiry`).
pub const EXPIRY_KEYS: &[&str] = &[
    "exp:set",
    "exp:px",
    "exp:setex",
    "exp:psetex",
    "exp:getex",
    "exp:expire",
    "exp:pexpire",
    "exp:persist",
    "exp:restore",
    "exp:float",
    "exp:gone",
];

pub fn expiry_load(c: &mut Connection) {
    let mut p = redis::pipe();
    p.cmd("SET").arg("exp:set").arg("v").arg("EX").arg(1000);
    p.cmd("SET")
        .arg("exp:px")
        .arg("v")
        .arg("PX")
        .arg(900_000)
        .arg("GET");
    p.cmd("SETEX").arg("exp:setex").arg(1000).arg("v");
    p.cmd("PSETEX").arg("exp:psetex").arg(900_000).arg("v");
    p.cmd("SET").arg("exp:getex").arg("v");
    p.cmd("GETEX").arg("exp:getex").arg("EX").arg(800);
    p.cmd("SET").arg("exp:expire").arg("v");
    p.cmd("EXPIRE").arg("exp:expire").arg(700);
    p.cmd("SET").arg("exp:pexpire").arg("v");
    p.cmd("PEXPIRE").arg("exp:pexpire").arg(600_000).arg("NX");
    p.cmd("SET").arg("exp:persist").arg("v").arg("EX").arg(100);
    p.cmd("GETEX").arg("exp:persist").arg("PERSIST");
    p.cmd("SET").arg("exp:float").arg(1).arg("EX").arg(1000);
    p.cmd("INCRBYFLOAT").arg("exp:float").arg(1.1);
    p.cmd("SET").arg("exp:gone").arg("v");
    p.cmd("EXPIRE").arg("exp:gone").arg(-1);
    p.query::<()>(c).expect("expiry load");
    let dumped: Vec<u8> = redis::cmd("DUMP").arg("exp:set").query(c).expect("DUMP");
    let _: () = redis::cmd("RESTORE")
        .arg("exp:restore")
        .arg(500_000)
        .arg(dumped)
        .arg("REPLACE")
        .query(c)
        .expect("RESTORE");
}

/// Every key of `EXPIRY_KEYS` expires at the same millisecond on both servers.
pub fn assert_same_expiry(primary: &mut Connection, replica: &mut Connection) {
    for key in EXPIRY_KEYS {
        let p: i64 = redis::cmd("PEXPIRETIME")
            .arg(key)
            .query(primary)
            .expect("PEXPIRETIME");
        let r: i64 = redis::cmd("PEXPIRETIME")
            .arg(key)
            .query(replica)
            .expect("PEXPIRETIME");
        assert_eq!(p, r, "PEXPIRETIME {key}");
    }
}

/// A library with a read-only function `rf`, for checking FUNCTION's propagation.
pub const LIBRARY: &str = "#!lua name=replib\nredis.register_function{function_name='rf', callback=function() return 7 end, flags={'no-writes'}}";

/// FCALL_RO rf: Ok(7) once the library is there.
pub fn call_rf(c: &mut Connection) -> redis::RedisResult<i64> {
    redis::cmd("FCALL_RO").arg("rf").arg(0).query(c)
}

/// A subscriber of channel `ch` on the server at `port` hears `msg` once `publish` ran.
pub fn hears(port: u16, msg: &str, publish: impl FnOnce()) {
    let mut c = super::connect(port);
    let mut ps = c.as_pubsub();
    ps.subscribe("ch").expect("SUBSCRIBE");
    ps.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    publish();
    let m = ps.get_message().expect("a published message");
    assert_eq!(m.get_channel_name(), "ch");
    assert_eq!(m.get_payload::<String>().expect("payload"), msg);
}

/// The replication link CLIENT LIST shows under `TYPE kind` (master, replica): exactly one
/// line, as (field, value) pairs in order.
pub fn listed_link(c: &mut Connection, kind: &str) -> Vec<(String, String)> {
    let listed: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg(kind)
        .query(c)
        .expect("CLIENT LIST TYPE");
    assert_eq!(
        listed.lines().count(),
        1,
        "CLIENT LIST TYPE {kind}: {listed}"
    );
    listed
        .trim_end()
        .split(' ')
        .map(|f| {
            let (k, v) = f.split_once('=').unwrap_or((f, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// A field of a [`listed_link`] line.
pub fn field<'a>(line: &'a [(String, String)], name: &str) -> &'a str {
    line.iter()
        .find(|(k, _)| k == name)
        .map_or_else(|| panic!("no {name} in {line:?}"), |(_, v)| v.as_str())
}

/// The link between a primary and its replica as both list it (one of them Redis 7.0),
/// checked against each other: the primary lists flags S, the replica flags M with the
/// primary's address, both with Redis's fields in Redis's order; each is listed without TYPE
/// and by ID, never as a normal client.
pub fn assert_links_listed(primary: &mut Connection, replica: &mut Connection) {
    let s = listed_link(primary, "replica");
    let m = listed_link(replica, "master");
    assert_eq!(field(&s, "flags"), "S", "{s:?}");
    assert_eq!(field(&m, "flags"), "M", "{m:?}");
    assert_eq!(field(&m, "user"), "(superuser)", "{m:?}");
    assert_eq!(field(&s, "addr"), field(&m, "laddr"));
    assert_eq!(field(&s, "laddr"), field(&m, "addr"));
    // Shardis lists CLIENT SETINFO's two fields after Redis 7.0's (as Redis 7.2 does).
    let names = |l: &[(String, String)]| {
        l.iter()
            .map(|(k, _)| k.clone())
            .filter(|k| k != "lib-name" && k != "lib-ver")
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&s), names(&m), "the fields Redis lists");
    for (c, line) in [(primary, &s), (replica, &m)] {
        let id = field(line, "id");
        let all: String = redis::cmd("CLIENT").arg("LIST").query(c).expect("LIST");
        assert!(
            all.lines().any(|l| l.starts_with(&format!("id={id} "))),
            "{all}"
        );
        let by_id: String = redis::cmd("CLIENT")
            .arg("LIST")
            .arg("ID")
            .arg(id)
            .query(c)
            .expect("LIST ID");
        assert!(by_id.starts_with(&format!("id={id} ")), "{by_id}");
        let normal: String = redis::cmd("CLIENT")
            .arg("LIST")
            .arg("TYPE")
            .arg("normal")
            .query(c)
            .expect("LIST TYPE normal");
        assert!(!normal.contains(&format!("id={id} ")), "{normal}");
    }
}

/// A raw replica: PSYNC with a full sync through a file (it says no `capa eof`), then the
/// stream's commands one at a time, for tests of what the stream carries and in what order.
pub struct RawReplica(std::io::BufReader<std::net::TcpStream>);

impl RawReplica {
    pub fn connect(port: u16) -> RawReplica {
        use std::io::{BufRead, Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        stream.write_all(b"PSYNC ? -1\r\n").expect("PSYNC");
        let mut r = std::io::BufReader::new(stream);
        let mut line = String::new();
        r.read_line(&mut line).expect("PSYNC reply");
        assert!(line.starts_with("+FULLRESYNC "), "{line:?}");
        // Newlines keep the link alive while the RDB is made; then its length and bytes.
        let len = loop {
            line.clear();
            r.read_line(&mut line).expect("RDB length");
            if let Some(len) = line.trim_end().strip_prefix('$') {
                break len.parse::<usize>().expect("RDB length");
            }
            assert_eq!(line, "\n", "before the RDB");
        };
        let mut rdb = vec![0; len];
        r.read_exact(&mut rdb).expect("RDB");
        RawReplica(r)
    }

    /// The next command of the stream, its words joined by spaces.
    pub fn next_command(&mut self) -> String {
        use std::io::{BufRead, Read};
        let mut line = String::new();
        let mut header = |r: &mut std::io::BufReader<_>, kind: char| -> usize {
            line.clear();
            r.read_line(&mut line).expect("stream");
            line.trim_end()
                .strip_prefix(kind)
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("expected {kind} in the stream: {line:?}"))
        };
        let n = header(&mut self.0, '*');
        let mut words = Vec::with_capacity(n);
        for _ in 0..n {
            let len = header(&mut self.0, '$');
            let mut word = vec![0; len + 2];
            self.0.read_exact(&mut word).expect("stream");
            word.truncate(len);
            words.push(String::from_utf8_lossy(&word).into_owned());
        }
        words.join(" ")
    }

    /// The stream's commands up to `last` (included), without SELECT, PING and REPLCONF.
    pub fn commands_until(&mut self, last: &str) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let c = self.next_command();
            if c.starts_with("SELECT ") || c == "PING" || c.starts_with("REPLCONF ") {
                continue;
            }
            let done = c == last;
            out.push(c);
            if done {
                return out;
            }
        }
    }
}
