//! Reads what a real Redis 7.0 writes: a `dump.rdb` holding every type in every encoding Redis
//! 7.0 produces, and DUMP payloads. Skipped (with a note) when `redis-server` is not
//! installed.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use shardis_persist::rdb::stream::StreamData;
use shardis_persist::rdb::{self, Decoded, FileReader, Item, RdbValue, Reader, SetMembers};

struct Redis {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_redis() -> Option<Redis> {
    if Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("redis-server not installed: skipping");
        return None;
    }
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let port = 20000
        + (std::process::id() % 10000) as u16 * 2
        + NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("persist-redis-{port}"));
    std::fs::create_dir_all(&dir).ok()?;
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(Redis { child, port, dir })
}

impl Redis {
    fn cli(&self, args: &[&str]) -> Vec<u8> {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs");
        out.stdout
    }
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn load(path: &std::path::Path) -> Vec<rdb::file::Key> {
    let data = std::fs::read(path).expect("dump.rdb");
    let mut f = FileReader::new(&data[..]).expect("header");
    let mut keys = Vec::new();
    loop {
        match f.next_item().expect("valid item") {
            Item::Key(k) => keys.push(k),
            Item::Eof { checksum_ok } => {
                assert!(checksum_ok);
                return keys;
            }
            _ => {}
        }
    }
}

#[test]
fn reads_every_type_redis_writes() {
    let Some(redis) = start_redis() else { return };
    let big = "x".repeat(100);
    let script: Vec<Vec<&str>> = vec![
        vec!["SET", "str", "hello"],
        vec!["SET", "int", "12345"],
        vec!["SET", "long", &big],
        vec!["PEXPIREAT", "str", "4102444800000"],
        vec!["RPUSH", "list", "a", "1", "-70000", &big],
        vec!["SADD", "intset", "1", "2", "-3"],
        vec!["SADD", "set", "a", "b"],
        vec!["ZADD", "zsmall", "1.5", "a", "-2", "b", "inf", "c"],
        vec!["HSET", "hsmall", "f", "v", "n", "10"],
        vec!["CONFIG", "SET", "hash-max-listpack-entries", "1"],
        vec!["CONFIG", "SET", "zset-max-listpack-entries", "1"],
        vec!["HSET", "hbig", "f1", "v1", "f2", "v2"],
        vec!["ZADD", "zbig", "1", "m1", "2", "m2"],
        vec!["XADD", "stream", "1-1", "f", "v", "g", "w"],
        vec!["XADD", "stream", "2-1", "f", "v2", "g", "w2"],
        vec!["XADD", "stream", "3-1", "other", "x"],
        vec!["XDEL", "stream", "2-1"],
        vec!["XGROUP", "CREATE", "stream", "grp", "0"],
        vec![
            "XREADGROUP",
            "GROUP",
            "grp",
            "alice",
            "COUNT",
            "1",
            "STREAMS",
            "stream",
            ">",
        ],
        vec!["SELECT", "5"],
    ];
    for cmd in &script {
        redis.cli(cmd);
    }
    redis.cli(&["-n", "5", "SET", "in-db-5", "v"]);
    redis.cli(&["SAVE"]);
    let keys = load(&redis.dir.join("dump.rdb"));
    let get = |name: &str| {
        keys.iter()
            .find(|k| k.key == b(name))
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    let value = |name: &str| match &get(name).value {
        Decoded::Value(v) => v.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(value("str"), RdbValue::String(b("hello")));
    assert_eq!(get("str").expire_ms, Some(4102444800000));
    assert_eq!(value("int"), RdbValue::String(b("12345")));
    assert_eq!(value("long"), RdbValue::String(b(&big)));
    assert_eq!(
        value("list"),
        RdbValue::List(vec![b("a"), b("1"), b("-70000"), b(&big)])
    );
    assert_eq!(
        value("intset"),
        RdbValue::Set(SetMembers::Ints(vec![-3, 1, 2]))
    );
    match value("set") {
        RdbValue::Set(SetMembers::Strs(mut m)) => {
            m.sort();
            assert_eq!(m, vec![b("a"), b("b")]);
        }
        other => panic!("{other:?}"),
    }
    let sorted = |v: RdbValue| match v {
        RdbValue::ZSet(mut items) => {
            items.sort_by(|a, b| a.0.cmp(&b.0));
            items
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(
        sorted(value("zsmall")),
        vec![(b("a"), 1.5), (b("b"), -2.0), (b("c"), f64::INFINITY)]
    );
    assert_eq!(sorted(value("zbig")), vec![(b("m1"), 1.0), (b("m2"), 2.0)]);
    let pairs = |v: RdbValue| match v {
        RdbValue::Hash(mut p) => {
            p.sort();
            p
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(
        pairs(value("hsmall")),
        vec![(b("f"), b("v")), (b("n"), b("10"))]
    );
    assert_eq!(
        pairs(value("hbig")),
        vec![(b("f1"), b("v1")), (b("f2"), b("v2"))]
    );
    let RdbValue::Stream(s) = value("stream") else {
        panic!("not a stream")
    };
    let s: StreamData = *s;
    assert_eq!(s.length, 2);
    assert_eq!(s.entries_added, 3);
    assert_eq!(s.max_deleted_id.ms, 2);
    assert_eq!(s.nodes.len(), 1);
    assert_eq!(s.nodes[0].entries.len(), 3);
    assert!(s.nodes[0].entries[1].deleted);
    assert_eq!(s.groups.len(), 1);
    assert_eq!(s.groups[0].pending.len(), 1);
    assert_eq!(s.groups[0].pending[0].consumer, b("alice"));
    assert_eq!(get("in-db-5").db, 5);
    // The node listpack Shardis would write for that node is Redis's, byte for byte.
    let data = std::fs::read(redis.dir.join("dump.rdb")).expect("file");
    let ours = rdb::stream::node_listpack(&s.nodes[0]);
    assert!(data.windows(ours.len()).any(|w| w == ours.as_slice()));
}

#[test]
fn reads_redis_dump_payloads() {
    let Some(redis) = start_redis() else { return };
    redis.cli(&["RPUSH", "l", "a", "b", "3"]);
    // redis-cli prints a DUMP's bytes escaped; ask for them raw through --no-raw off.
    let out = Command::new("redis-cli")
        .args(["-p", &redis.port.to_string(), "--raw", "DUMP", "l"])
        .output()
        .expect("redis-cli");
    let mut payload = out.stdout;
    // --raw appends a newline.
    payload.pop();
    let body = shardis_persist::dump::open(&payload).expect("version and checksum");
    let mut r = Reader::new(&body[1..]);
    assert_eq!(
        rdb::value::read_value(&mut r, body[0]).expect("valid"),
        Decoded::Value(RdbValue::List(vec![b("a"), b("b"), b("3")]))
    );
}
