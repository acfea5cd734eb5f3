//! The journal's promise: replaying what it logged rebuilds exactly the data that was there.

use bytes::Bytes;
use shardis_persist::aof::{self, Frame};
use shardis_resp::Reply;

use super::*;
use crate::testing::TestShard;
use crate::value::Value;

/// The visible data of a shard, as text: per database, per live key (sorted), its type,
/// expiry and contents read back through commands.
fn snapshot(t: &mut TestShard) -> Vec<String> {
    let mut out = Vec::new();
    let saved_db = t.db;
    for db in 0..t.shard.dbs.len() {
        t.db = db;
        let now = t.now_ms;
        let d = &t.shard.dbs[db];
        let mut keys: Vec<Bytes> = d
            .iter()
            .filter(|(_, e)| !d.is_expired(e, now))
            .map(|(k, _)| Bytes::copy_from_slice(k))
            .collect();
        keys.sort();
        for k in keys {
            let key = String::from_utf8_lossy(&k).into_owned();
            let d = &t.shard.dbs[db];
            let entry = d.peek(&k).map(|e| d.to_record(e)).expect("live");
            let contents = match &entry.value {
                Value::Str(_) => format!("{:?}", t.run(&["GET", &key])),
                Value::List(_) => format!("{:?}", t.run(&["LRANGE", &key, "0", "-1"])),
                Value::Hash(_) => {
                    let mut pairs: Vec<String> = match t.run(&["HGETALL", &key]) {
                        Reply::Array(items) => items.chunks(2).map(|p| format!("{p:?}")).collect(),
                        other => vec![format!("{other:?}")],
                    };
                    pairs.sort();
                    format!("{pairs:?}")
                }
                Value::Set(_) => {
                    let mut m = flatten(t.run(&["SMEMBERS", &key]));
                    m.sort();
                    format!("{m:?}")
                }
                Value::ZSet(_) => {
                    format!("{:?}", t.run(&["ZRANGE", &key, "0", "-1", "WITHSCORES"]))
                }
                Value::Stream(_) => format!(
                    "{:?} {:?} {:?}",
                    t.run(&["XRANGE", &key, "-", "+"]),
                    t.run(&["XINFO", "GROUPS", &key]),
                    t.run(&["XPENDING", &key, "g", "-", "+", "100"]),
                ),
            };
            out.push(format!(
                "{db} {key} {} {:?} {contents}",
                entry.value.type_name(),
                entry.expire_at
            ));
        }
    }
    t.db = saved_db;
    out
}

fn flatten(r: Reply) -> Vec<String> {
    match r {
        Reply::Array(items) | Reply::Set(items) => items.iter().map(|r| format!("{r:?}")).collect(),
        other => vec![format!("{other:?}")],
    }
}

fn replay_all(buf: &[u8], config: crate::shard::EngineConfig, now: u64) -> Shard {
    let mut shard = Shard::new(0, config);
    let mut rest = buf;
    while !rest.is_empty() {
        match aof::decode(rest) {
            Frame::Record(r, n) => {
                replay(&mut shard, &r, now).expect("replays");
                rest = &rest[n..];
            }
            other => panic!("bad journal: {other:?}"),
        }
    }
    shard
}

/// A random write (or read, which may expire keys) over a few keys of each type.
fn random_command(rnd: &mut impl FnMut(u64) -> u64) -> Vec<String> {
    let k = |rnd: &mut dyn FnMut(u64) -> u64, prefix: &str| format!("{prefix}{}", rnd(3));
    let n = |rnd: &mut dyn FnMut(u64) -> u64, max: u64| rnd(max).to_string();
    let cmd: Vec<String> = match rnd(40) {
        0 => vec!["SET".into(), k(rnd, "s"), n(rnd, 100)],
        1 => vec!["INCRBYFLOAT".into(), k(rnd, "s"), "1.5".into()],
        2 => vec![
            "SET".into(),
            k(rnd, "s"),
            "v".into(),
            "PX".into(),
            n(rnd, 3000),
        ],
        3 => vec!["EXPIRE".into(), k(rnd, "s"), n(rnd, 3)],
        4 => vec!["GET".into(), k(rnd, "s")],
        5 => vec!["APPEND".into(), k(rnd, "s"), "x".into()],
        6 => vec!["RPUSH".into(), k(rnd, "l"), n(rnd, 10), n(rnd, 10)],
        7 => vec!["LPOP".into(), k(rnd, "l")],
        8 => vec![
            "LMOVE".into(),
            k(rnd, "l"),
            k(rnd, "l"),
            "LEFT".into(),
            "RIGHT".into(),
        ],
        9 => vec!["LTRIM".into(), k(rnd, "l"), "1".into(), "-1".into()],
        10 => vec![
            "SADD".into(),
            k(rnd, "t"),
            n(rnd, 20),
            "m".into(),
            n(rnd, 20),
        ],
        11 => vec!["SPOP".into(), k(rnd, "t")],
        12 => vec!["SPOP".into(), k(rnd, "t"), n(rnd, 4)],
        13 => vec!["SMOVE".into(), k(rnd, "t"), k(rnd, "t"), n(rnd, 20)],
        14 => vec!["SINTERSTORE".into(), k(rnd, "t"), k(rnd, "t"), k(rnd, "t")],
        15 => vec!["ZADD".into(), k(rnd, "z"), n(rnd, 10), n(rnd, 10)],
        16 => vec!["ZINCRBY".into(), k(rnd, "z"), "0.25".into(), n(rnd, 10)],
        17 => vec!["ZPOPMIN".into(), k(rnd, "z")],
        18 => vec![
            "ZUNIONSTORE".into(),
            k(rnd, "z"),
            "2".into(),
            k(rnd, "z"),
            k(rnd, "z"),
        ],
        19 => vec!["HSET".into(), k(rnd, "h"), n(rnd, 5), n(rnd, 100)],
        20 => vec!["HINCRBYFLOAT".into(), k(rnd, "h"), n(rnd, 5), "0.1".into()],
        21 => vec!["HDEL".into(), k(rnd, "h"), n(rnd, 5)],
        22 => vec![
            "XADD".into(),
            k(rnd, "x"),
            "MAXLEN".into(),
            "~".into(),
            n(rnd, 30),
            "*".into(),
            "f".into(),
            n(rnd, 9),
        ],
        23 => vec![
            "XTRIM".into(),
            k(rnd, "x"),
            "MAXLEN".into(),
            "~".into(),
            n(rnd, 20),
        ],
        24 => vec![
            "XGROUP".into(),
            "CREATE".into(),
            k(rnd, "x"),
            "g".into(),
            "0".into(),
            "MKSTREAM".into(),
        ],
        25 => vec![
            "XREADGROUP".into(),
            "GROUP".into(),
            "g".into(),
            format!("c{}", rnd(2)),
            "COUNT".into(),
            "2".into(),
            "STREAMS".into(),
            k(rnd, "x"),
            ">".into(),
        ],
        26 => vec![
            "XAUTOCLAIM".into(),
            k(rnd, "x"),
            "g".into(),
            "c9".into(),
            "10".into(),
            "0".into(),
        ],
        27 => vec!["DEL".into(), k(rnd, "s"), k(rnd, "l")],
        28 => vec!["RENAME".into(), k(rnd, "h"), k(rnd, "h")],
        29 => vec!["COPY".into(), k(rnd, "z"), k(rnd, "z"), "REPLACE".into()],
        30 => vec!["PFADD".into(), k(rnd, "p"), n(rnd, 1000), n(rnd, 1000)],
        31 => vec!["GETEX".into(), k(rnd, "s"), "PX".into(), n(rnd, 2000)],
        32 => vec!["GETDEL".into(), k(rnd, "s")],
        33 => vec![
            "SORT".into(),
            k(rnd, "t"),
            "ALPHA".into(),
            "STORE".into(),
            k(rnd, "l"),
        ],
        34 => vec!["EXISTS".into(), k(rnd, "s"), k(rnd, "l")],
        35 => vec!["SETRANGE".into(), k(rnd, "s"), n(rnd, 10), "abc".into()],
        36 => vec!["BLPOP".into(), k(rnd, "l"), "0".into()],
        37 => vec!["SELECT-DB".into(), n(rnd, 2)],
        38 => vec!["FLUSHDB".into()],
        _ => vec!["PERSIST".into(), k(rnd, "s")],
    };
    cmd
}

#[test]
fn replaying_the_journal_rebuilds_the_data() {
    for seed in 1..=40u64 {
        let mut t = TestShard::new();
        t.shard.set_journal(true);
        t.shard.seed(seed);
        let mut rnd = crate::testing::xorshift(seed);
        for _ in 0..400 {
            let cmd = random_command(&mut rnd);
            if cmd[0] == "SELECT-DB" {
                t.db = cmd[1].parse().unwrap_or(0);
                continue;
            }
            if cmd[0] == "FLUSHDB" && rnd(20) != 0 {
                continue;
            }
            let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
            t.run(&args);
            t.advance(rnd(700));
            if rnd(10) == 0 {
                let now = t.now_ms;
                t.shard.active_expire(now, 4);
                t.shard.journal_reaped();
            }
        }
        let buf = t.shard.journal.as_mut().expect("journal").take();
        let expected = snapshot(&mut t);
        let mut replayed = TestShard::new();
        replayed.now_ms = t.now_ms;
        replayed.shard = replay_all(&buf, t.shard.config.clone(), t.now_ms);
        assert_eq!(snapshot(&mut replayed), expected, "seed {seed}");
    }
}

#[test]
fn imports_and_expiry_are_logged_as_state() {
    let mut t = TestShard::new();
    t.shard.set_journal(true);
    t.run(&["SET", "a", "1", "PX", "100"]);
    t.run(&["RPUSH", "l", "x", "y"]);
    let d = &t.shard.dbs[0];
    let entry = d.peek(b"l").map(|e| d.to_record(e));
    t.shard.import(3, Bytes::from_static(b"moved"), entry);
    t.shard.import(0, Bytes::from_static(b"l"), None);
    t.advance(200);
    assert_eq!(t.run(&["GET", "a"]), Reply::Nil);
    let buf = t.shard.journal.as_mut().expect("journal").take();
    let mut kinds = Vec::new();
    let mut rest = &buf[..];
    while let Frame::Record(r, n) = aof::decode(rest) {
        kinds.push(match r {
            Record::Command { args, .. } => String::from_utf8_lossy(args[0]).into_owned(),
            Record::Put { key, .. } => format!("put {}", String::from_utf8_lossy(key)),
            Record::Del { key, .. } => format!("del {}", String::from_utf8_lossy(key)),
            Record::TxEnd { .. } => "end".into(),
        });
        rest = &rest[n..];
    }
    assert_eq!(kinds, vec!["SET", "RPUSH", "put moved", "del l", "del a"]);
    let replayed = replay_all(&buf, t.shard.config.clone(), t.now_ms);
    assert!(replayed.dbs[3].peek(b"moved").is_some());
    assert!(replayed.dbs[0].peek(b"l").is_none());
    assert!(replayed.dbs[0].peek(b"a").is_none());
}

#[test]
fn evictions_are_logged_as_del_before_the_next_command() {
    let mut t = TestShard::new();
    let mut config = t.shard.config.clone();
    config.tracking.policy = crate::evict::Policy::AllKeysLru;
    t.shard.set_config(config);
    t.shard.set_journal(true);
    t.run(&["SET", "a", "1"]);
    let now = t.now_ms;
    assert!(t.shard.evict_one(now));
    t.run(&["SET", "b", "2"]);
    let buf = t.shard.journal.as_mut().expect("journal").take();
    let mut kinds = Vec::new();
    let mut rest = &buf[..];
    while let Frame::Record(r, n) = aof::decode(rest) {
        kinds.push(match r {
            Record::Command { args, .. } => String::from_utf8_lossy(args[1]).into_owned(),
            Record::Del { key, .. } => format!("del {}", String::from_utf8_lossy(key)),
            other => format!("{other:?}"),
        });
        rest = &rest[n..];
    }
    assert_eq!(kinds, vec!["a", "del a", "b"]);
    let replayed = replay_all(&buf, t.shard.config.clone(), t.now_ms);
    assert!(replayed.dbs[0].peek(b"a").is_none());
    assert!(replayed.dbs[0].peek(b"b").is_some());
}

#[test]
fn no_journal_no_records_and_no_cost() {
    let mut t = TestShard::new();
    t.run(&["SPOP", "nothing"]);
    t.run(&["SADD", "s", "a"]);
    t.run(&["SPOP", "s"]);
    assert!(t.shard.journal.is_none());
}

#[test]
fn the_replication_feed_gets_every_record_with_or_without_the_log() {
    let mut t = TestShard::new();
    t.shard.set_journal_feed(true);
    t.run(&["SET", "a", "1"]);
    let j = t.shard.journal.as_mut().expect("journal");
    assert!(j.buf.is_empty(), "no log: nothing kept for it");
    let fed = j.feed.take().expect("feed");
    assert!(
        matches!(aof::decode(&fed), Frame::Record(Record::Command { .. }, n) if n == fed.len())
    );
    j.feed = Some(Vec::new());
    t.shard.set_journal(true);
    t.run(&["SET", "b", "1"]);
    let j = t.shard.journal.as_mut().expect("journal");
    assert_eq!(j.buf, j.feed.clone().expect("feed"));
    t.shard.set_journal(false);
    t.shard.set_journal_feed(false);
    assert!(t.shard.journal.is_none());
}

#[test]
fn a_command_for_replicas_only_is_fed_in_place_and_not_logged() {
    let mut t = TestShard::new();
    t.shard.set_journal(true);
    let j = t.shard.journal.as_mut().expect("journal");
    j.to_replicas(7, 0, &[Bytes::from_static(b"PUBLISH")]);
    assert!(j.buf.is_empty() && j.feed.is_none(), "nobody to feed");
    t.shard.set_journal_feed(true);
    t.run(&["SET", "a", "1"]);
    let j = t.shard.journal.as_mut().expect("journal");
    j.to_replicas(
        7,
        1,
        &[Bytes::from_static(b"PUBLISH"), Bytes::from_static(b"ch")],
    );
    let logged = j.buf.clone();
    let fed = j.feed.take().expect("feed");
    let Frame::Record(_, first) = aof::decode(&fed) else {
        panic!("a record first")
    };
    assert_eq!(&fed[..first], &logged[..], "the log has the SET alone");
    assert!(matches!(
        aof::decode(&fed[first..]),
        Frame::Record(Record::Command { tx: 7, db: 1, args, .. }, _) if args == [&b"PUBLISH"[..], b"ch"]
    ));
}

/// The commands logged since the last call, as text.
fn logged(t: &mut TestShard) -> Vec<String> {
    let buf = t.shard.journal.as_mut().expect("journal").take();
    let mut rest = &buf[..];
    let mut out = Vec::new();
    while let Frame::Record(r, n) = aof::decode(rest) {
        if let Record::Command { args, .. } = r {
            let words: Vec<String> = args
                .iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            out.push(words.join(" "));
        }
        rest = &rest[n..];
    }
    out
}

#[test]
fn relative_expiry_is_logged_as_absolute_as_redis_propagates_it() {
    let mut t = TestShard::new();
    t.shard.set_journal(true);
    let now = t.now_ms;
    let at = |ms: u64| (now + ms).to_string();
    t.run(&["SET", "k", "v"]);
    t.run(&["EXPIRE", "k", "100", "NX"]);
    t.run(&["PEXPIRE", "k", "5000"]);
    t.run(&["EXPIREAT", "k", &((now / 1000) + 200).to_string()]);
    t.run(&["PEXPIREAT", "k", &at(9000)]);
    t.run(&["EXPIRE", "k", "100", "LT"]);
    assert_eq!(
        logged(&mut t),
        vec![
            "SET k v".to_string(),
            format!("PEXPIREAT k {} NX", at(100_000)),
            format!("PEXPIREAT k {}", at(5000)),
            format!("PEXPIREAT k {}", (now / 1000 + 200) * 1000),
            format!("PEXPIREAT k {}", at(9000)),
        ]
    );
    // A time already past deletes: DEL (UNLINK under lazyfree-lazy-expire).
    t.run(&["EXPIRE", "k", "-1"]);
    t.run(&["SET", "k", "v"]);
    t.shard.config.lazyfree_lazy_expire = true;
    t.run(&["PEXPIREAT", "k", "1"]);
    t.shard.config.lazyfree_lazy_expire = false;
    assert_eq!(logged(&mut t)[..], ["DEL k", "SET k v", "UNLINK k"]);
    // The SET family and GETEX.
    t.run(&["SET", "s", "v", "EX", "10", "GET"]);
    t.run(&["SETEX", "s", "20", "v"]);
    t.run(&["PSETEX", "s", "30", "v"]);
    t.run(&["SET", "s", "v", "XX", "PXAT", &at(40)]);
    t.run(&["SET", "s", "w", "GET", "KEEPTTL"]);
    t.run(&["GETEX", "s", "PX", "50"]);
    t.run(&["GETEX", "s", "PERSIST"]);
    t.run(&["GETEX", "s", "PERSIST"]);
    t.run(&["GETEX", "s"]);
    t.run(&["GETEX", "s", "EXAT", "1"]);
    assert_eq!(
        logged(&mut t),
        vec![
            format!("SET s v PXAT {}", at(10_000)),
            format!("SET s v PXAT {}", at(20_000)),
            format!("SET s v PXAT {}", at(30)),
            format!("SET s v PXAT {}", at(40)),
            "SET s w KEEPTTL".to_string(),
            format!("PEXPIREAT s {}", at(50)),
            "PERSIST s".to_string(),
            "DEL s".to_string(),
        ]
    );
    // INCRBYFLOAT as its result; RESTORE with a relative TTL as ABSTTL.
    t.run(&["INCRBYFLOAT", "f", "1.5"]);
    t.run(&["SET", "d", "x"]);
    let Reply::Bulk(dumped) = t.run(&["DUMP", "d"]) else {
        panic!("DUMP")
    };
    let payload = String::from_utf8_lossy(&dumped).into_owned();
    let mut args: Vec<Bytes> = ["RESTORE", "d2", "1000"]
        .iter()
        .map(|a| Bytes::copy_from_slice(a.as_bytes()))
        .collect();
    args.push(dumped);
    args.push(Bytes::from_static(b"REPLACE"));
    assert_eq!(t.run_bytes(&args), Reply::Ok);
    let logged_now = logged(&mut t);
    assert_eq!(logged_now[..2], ["SET f 1.5 KEEPTTL", "SET d x"]);
    assert_eq!(
        logged_now[2],
        format!("RESTORE d2 {} {payload} REPLACE ABSTTL", at(1000))
    );
}
