//! SLOWLOG, LATENCY, INFO commandstats / errorstats / latencystats over two shards: each core
//! records what runs on it, and the commands merge every core's records. COMMAND DOCS in both
//! protocols, in Redis 7.0's shape.

mod common;

use common::{key_on, Server};
use redis::Value;

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

fn info(c: &mut redis::Connection, section: &str) -> String {
    redis::cmd("INFO").arg(section).query(c).expect("info")
}

/// The value of `field:` in an INFO text.
fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
}

fn bulk(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(n) => n.to_string(),
        other => format!("{other:?}"),
    }
}

fn items(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) | Value::Set(a) => a,
        Value::Map(m) => m.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        other => panic!("not an array: {other:?}"),
    }
}

#[test]
fn slowlog_gathers_both_shards_newest_first_with_unique_ids() {
    let s = Server::start(2, &[]);
    let mut c = s.conn();
    ok(&mut c, &["CLIENT", "SETNAME", "slowpoke"]);
    ok(&mut c, &["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
    ok(&mut c, &["SLOWLOG", "RESET"]);
    let (k0, k1) = (key_on("k", 0, 2), key_on("k", 1, 2));
    ok(&mut c, &["SET", &k0, "a"]);
    ok(&mut c, &["SET", &k1, "b"]);
    ok(&mut c, &["MGET", &k0, &k1]);
    let log = items(ok(&mut c, &["SLOWLOG", "GET", "-1"]));
    // SLOWLOG RESET itself, the two SETs, the MGET over both shards.
    let argvs: Vec<String> = log
        .iter()
        .map(|e| {
            let e = items(e.clone());
            items(e[3].clone())
                .iter()
                .map(bulk)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    assert_eq!(
        argvs,
        vec![
            format!("MGET {k0} {k1}"),
            format!("SET {k1} b"),
            format!("SET {k0} a"),
            "SLOWLOG RESET".to_string()
        ]
    );
    let ids: Vec<i64> = log
        .iter()
        .map(|e| match &items(e.clone())[0] {
            Value::Int(n) => *n,
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "ids {ids:?}");
    // Every entry names the client, whichever shard ran the command.
    for e in &log {
        let e = items(e.clone());
        assert_eq!(e.len(), 6);
        assert_eq!(bulk(&e[5]), "slowpoke");
        assert!(bulk(&e[4]).starts_with("127.0.0.1:"), "{:?}", e[4]);
    }
    // LEN counts the merged log, bounded by slowlog-max-len.
    ok(&mut c, &["CONFIG", "SET", "slowlog-max-len", "3"]);
    for i in 0..10 {
        ok(&mut c, &["SET", &key_on(&format!("x{i}"), i % 2, 2), "v"]);
    }
    assert_eq!(ok(&mut c, &["SLOWLOG", "LEN"]), Value::Int(3));
    assert_eq!(items(ok(&mut c, &["SLOWLOG", "GET", "2"])).len(), 2);
    assert_eq!(items(ok(&mut c, &["SLOWLOG", "GET", "0"])).len(), 0);
    let e = cmd(&mut c, &["SLOWLOG", "GET", "-2"]).unwrap_err();
    assert!(e
        .to_string()
        .contains("count should be greater than or equal to -1"));
    // Off: nothing more is logged.
    ok(&mut c, &["CONFIG", "SET", "slowlog-log-slower-than", "-1"]);
    ok(&mut c, &["SLOWLOG", "RESET"]);
    ok(&mut c, &["SET", &k1, "c"]);
    assert_eq!(ok(&mut c, &["SLOWLOG", "LEN"]), Value::Int(0));
}

#[test]
fn slowlog_trims_and_redacts_as_redis() {
    let s = Server::start(2, &[]);
    let mut c = s.conn();
    ok(&mut c, &["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
    ok(&mut c, &["SLOWLOG", "RESET"]);
    let long = "A".repeat(129);
    let key = key_on("set", 1, 2);
    ok(&mut c, &["SADD", &key, "foo", &long]);
    ok(&mut c, &["CONFIG", "SET", "requirepass", ""]);
    let log = items(ok(&mut c, &["SLOWLOG", "GET"]));
    let config = items(items(log[0].clone())[3].clone());
    assert_eq!(bulk(&config[3]), "(redacted)");
    let sadd = items(items(log[1].clone())[3].clone());
    assert_eq!(
        bulk(&sadd[3]),
        format!("{}... (1 more bytes)", "A".repeat(128))
    );
}

#[test]
fn errorstats_and_commandstats_count_failed_and_rejected_calls() {
    let s = Server::start(2, &[]);
    let mut c = s.conn();
    ok(&mut c, &["CONFIG", "RESETSTAT"]);
    let list = key_on("list", 1, 2);
    ok(&mut c, &["RPUSH", &list, "a"]);
    // A failed call on the other shard, a rejected one (arity), an unknown command.
    assert!(cmd(&mut c, &["INCR", &list]).is_err());
    assert!(cmd(&mut c, &["GET"]).is_err());
    assert!(cmd(&mut c, &["NOSUCH"]).is_err());
    let stats = info(&mut c, "errorstats");
    assert_eq!(field(&stats, "errorstat_WRONGTYPE"), Some("count=1"));
    assert_eq!(field(&stats, "errorstat_ERR"), Some("count=2"));
    let all = info(&mut c, "all");
    assert_eq!(field(&all, "total_error_replies"), Some("3"));
    let incr = field(&all, "cmdstat_incr").expect("incr");
    assert!(incr.starts_with("calls=1,"), "{incr}");
    assert!(incr.ends_with(",rejected_calls=0,failed_calls=1"), "{incr}");
    let get = field(&all, "cmdstat_get").expect("get");
    assert!(get.starts_with("calls=0,"), "{get}");
    assert!(get.ends_with(",rejected_calls=1,failed_calls=0"), "{get}");
    // A command over both shards counts once.
    ok(
        &mut c,
        &["MSET", &key_on("a", 0, 2), "1", &key_on("b", 1, 2), "2"],
    );
    let stats = info(&mut c, "commandstats");
    assert!(field(&stats, "cmdstat_mset")
        .expect("mset")
        .starts_with("calls=1,"));
    // MULTI/EXEC: each queued command counts, and EXEC.
    ok(&mut c, &["MULTI"]);
    ok(&mut c, &["SET", &key_on("m", 0, 2), "1"]);
    ok(&mut c, &["SET", &key_on("m", 1, 2), "1"]);
    ok(&mut c, &["EXEC"]);
    let stats = info(&mut c, "commandstats");
    assert!(field(&stats, "cmdstat_exec")
        .expect("exec")
        .starts_with("calls=1,"));
    assert!(field(&stats, "cmdstat_set")
        .expect("set")
        .starts_with("calls=2,"));
    // The default sections do not show them; RESETSTAT clears them.
    assert!(!info(&mut c, "default").contains("rejected_calls"));
    ok(&mut c, &["CONFIG", "RESETSTAT"]);
    let all = info(&mut c, "all");
    assert_eq!(field(&all, "total_error_replies"), Some("0"));
    assert!(field(&all, "errorstat_ERR").is_none());
    assert!(field(&all, "cmdstat_incr").is_none());
}

#[test]
fn latencystats_and_histograms_cover_both_shards() {
    let s = Server::start(2, &[]);
    let mut c = s.conn();
    ok(&mut c, &["CONFIG", "RESETSTAT"]);
    ok(&mut c, &["SET", &key_on("a", 0, 2), "1"]);
    ok(&mut c, &["SET", &key_on("a", 1, 2), "1"]);
    ok(&mut c, &["CLIENT", "ID"]);
    let stats = info(&mut c, "latencystats");
    let set = field(&stats, "latency_percentiles_usec_set").expect("set");
    assert!(set.starts_with("p50=") && set.contains(",p99=") && set.contains(",p99.9="));
    assert!(field(&stats, "latency_percentiles_usec_client|id").is_some());
    ok(
        &mut c,
        &[
            "CONFIG",
            "SET",
            "latency-tracking-info-percentiles",
            "0.0 50.0 100.0",
        ],
    );
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("latency-tracking-info-percentiles")
        .query(&mut c)
        .expect("get");
    assert_eq!(got[1], "0 50 100");
    let stats = info(&mut c, "latencystats");
    assert!(field(&stats, "latency_percentiles_usec_set")
        .expect("set")
        .starts_with("p0="));
    assert!(cmd(
        &mut c,
        &["CONFIG", "SET", "latency-tracking-info-percentiles", "10 a"]
    )
    .is_err());
    // LATENCY HISTOGRAM: both shards' SETs, one entry; a container names its subcommands.
    let h = items(ok(
        &mut c,
        &["LATENCY", "HISTOGRAM", "set", "blabla", "client"],
    ));
    let names: Vec<String> = h.iter().step_by(2).map(bulk).collect();
    assert_eq!(names, ["client|id", "set"]);
    let set = items(h[3].clone());
    assert_eq!(bulk(&set[0]), "calls");
    assert_eq!(set[1], Value::Int(2));
    assert_eq!(bulk(&set[2]), "histogram_usec");
    // Off: nothing more is tracked.
    ok(&mut c, &["CONFIG", "RESETSTAT"]);
    ok(&mut c, &["CONFIG", "SET", "latency-tracking", "no"]);
    ok(&mut c, &["SET", &key_on("a", 1, 2), "1"]);
    assert!(field(
        &info(&mut c, "latencystats"),
        "latency_percentiles_usec_set"
    )
    .is_none());
}

#[test]
fn latency_monitor_records_slow_commands_on_every_shard() {
    let s = Server::start(2, &["--enable-debug-command", "yes"]);
    let mut c = s.conn();
    assert_eq!(ok(&mut c, &["LATENCY", "LATEST"]), Value::Array(vec![]));
    assert!(bulk(&ok(&mut c, &["LATENCY", "DOCTOR"])).contains("off"));
    ok(
        &mut c,
        &["CONFIG", "SET", "latency-monitor-threshold", "50"],
    );
    ok(&mut c, &["DEBUG", "SLEEP", "0.1"]);
    let latest = items(ok(&mut c, &["LATENCY", "LATEST"]));
    assert_eq!(latest.len(), 1);
    let e = items(latest[0].clone());
    assert_eq!(bulk(&e[0]), "command");
    let Value::Int(ms) = e[2] else { panic!() };
    assert!((100..1000).contains(&ms), "{ms}");
    let history = items(ok(&mut c, &["LATENCY", "HISTORY", "command"]));
    assert_eq!(history.len(), 1);
    assert!(bulk(&ok(&mut c, &["LATENCY", "GRAPH", "command"])).starts_with("command - high"));
    let e = cmd(&mut c, &["LATENCY", "GRAPH", "blabla"]).unwrap_err();
    assert!(e
        .to_string()
        .contains("No samples available for event 'blabla'"));
    assert!(bulk(&ok(&mut c, &["LATENCY", "DOCTOR"])).contains("- command:"));
    assert_eq!(ok(&mut c, &["LATENCY", "RESET", "blabla"]), Value::Int(0));
    assert_eq!(ok(&mut c, &["LATENCY", "RESET"]), Value::Int(1));
    assert_eq!(ok(&mut c, &["LATENCY", "LATEST"]), Value::Array(vec![]));
    let e = cmd(&mut c, &["LATENCY", "HELP", "x"]).unwrap_err();
    assert!(e
        .to_string()
        .contains("wrong number of arguments for 'latency|help'"));
}

#[test]
fn memory_stats_doctor_malloc_stats_and_purge_cover_every_shard() {
    let s = Server::start(2, &[]);
    let mut c = s.conn();
    for i in 0..100 {
        ok(&mut c, &["SET", &format!("key{i}"), &"v".repeat(100)]);
    }
    ok(&mut c, &["SELECT", "3"]);
    ok(&mut c, &["SET", &key_on("other", 1, 2), "x"]);
    let stats = items(ok(&mut c, &["MEMORY", "STATS"]));
    let names: Vec<String> = stats.iter().step_by(2).map(bulk).collect();
    for wanted in [
        "peak.allocated",
        "total.allocated",
        "startup.allocated",
        "clients.normal",
        "db.0",
        "db.3",
        "overhead.total",
        "keys.count",
        "dataset.bytes",
        "fragmentation",
    ] {
        assert!(
            names.iter().any(|n| n == wanted),
            "{wanted} missing in {names:?}"
        );
    }
    let at = names
        .iter()
        .position(|n| n == "keys.count")
        .expect("keys.count");
    assert_eq!(stats[2 * at + 1], Value::Int(101));
    assert!(!bulk(&ok(&mut c, &["MEMORY", "DOCTOR"])).is_empty());
    assert!(!bulk(&ok(&mut c, &["MEMORY", "MALLOC-STATS"])).is_empty());
    assert_eq!(ok(&mut c, &["MEMORY", "PURGE"]), Value::Okay);
    let info = info(&mut c, "memory");
    let peak: u64 = field(&info, "used_memory_peak")
        .expect("peak")
        .parse()
        .expect("n");
    let used: u64 = field(&info, "used_memory")
        .expect("used")
        .parse()
        .expect("n");
    assert!(peak >= used / 2 && peak > 0, "peak {peak} used {used}");
}

#[test]
fn keyspace_avg_ttl_estimates_the_time_left_over_both_shards() {
    let s = Server::start(2, &[]);
    let mut c = s.conn();
    // 50 keys with about 100 s left on each shard, and some without a TTL.
    for i in 0..100 {
        ok(&mut c, &["SET", &format!("ttl:{i}"), "v", "EX", "100"]);
        ok(&mut c, &["SET", &format!("plain:{i}"), "v"]);
    }
    // Active expiry samples the keys ten times a second (hz 10).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let db0 = loop {
        let keyspace = info(&mut c, "keyspace");
        let db0 = field(&keyspace, "db0").unwrap_or_default().to_string();
        if !db0.ends_with("avg_ttl=0") || std::time::Instant::now() > deadline {
            break db0;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let avg: u64 = db0
        .rsplit("avg_ttl=")
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(db0.starts_with("keys=200,expires=100,"), "{db0}");
    assert!((90_000..=100_000).contains(&avg), "{db0}");
    // With no key left to expire, no estimate.
    ok(&mut c, &["FLUSHALL"]);
    ok(&mut c, &["SET", "plain", "v"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let keyspace = info(&mut c, "keyspace");
    assert_eq!(field(&keyspace, "db0"), Some("keys=1,expires=0,avg_ttl=0"));
}

/// A COMMAND DOCS map as (field, value) pairs, whether RESP2 flattened it or RESP3 kept it.
fn fields(v: Value) -> Vec<(String, Value)> {
    let flat = items(v);
    flat.chunks(2)
        .map(|pair| (bulk(&pair[0]), pair[1].clone()))
        .collect()
}

fn names(fields: &[(String, Value)]) -> Vec<&str> {
    fields.iter().map(|(n, _)| n.as_str()).collect()
}

fn value<'a>(fields: &'a [(String, Value)], name: &str) -> &'a Value {
    &fields
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", names(fields)))
        .1
}

#[test]
fn command_docs_has_summaries_complexity_deprecation_and_history_in_both_protocols() {
    let s = Server::start(1, &[]);
    let mut resp2 = s.conn();
    let mut resp3 = redis::Client::open(format!("redis://127.0.0.1:{}/?protocol=resp3", s.port))
        .and_then(|c| c.get_connection())
        .expect("RESP3 connection");
    for (c, resp3) in [(&mut resp2, false), (&mut resp3, true)] {
        let docs = fields(ok(
            c,
            &["COMMAND", "DOCS", "get", "getset", "client", "nosuch"],
        ));
        assert_eq!(names(&docs), ["get", "getset", "client"]);

        let get = fields(value(&docs, "get").clone());
        assert_eq!(
            names(&get),
            ["summary", "since", "group", "complexity", "arguments"]
        );
        assert!(!bulk(value(&get, "summary")).is_empty());
        assert_eq!(bulk(value(&get, "complexity")), "O(1)");

        let getset = fields(value(&docs, "getset").clone());
        assert_eq!(
            names(&getset),
            [
                "summary",
                "since",
                "group",
                "complexity",
                "doc_flags",
                "deprecated_since",
                "replaced_by",
                "arguments"
            ]
        );
        // RESP3 replies doc flags and history as sets, as Redis does.
        assert_eq!(matches!(value(&getset, "doc_flags"), Value::Set(_)), resp3);
        let flags: Vec<String> = items(value(&getset, "doc_flags").clone())
            .iter()
            .map(bulk)
            .collect();
        assert_eq!(flags, ["deprecated"]);
        assert_eq!(bulk(value(&getset, "deprecated_since")), "6.2.0");
        assert_eq!(
            bulk(value(&getset, "replaced_by")),
            "`SET` with the `!GET` argument"
        );

        let client = fields(value(&docs, "client").clone());
        assert_eq!(
            names(&client),
            ["summary", "since", "group", "complexity", "subcommands"]
        );
        let subs = fields(value(&client, "subcommands").clone());
        let list = fields(value(&subs, "client|list").clone());
        assert_eq!(
            names(&list),
            [
                "summary",
                "since",
                "group",
                "complexity",
                "history",
                "arguments"
            ]
        );
        assert_eq!(matches!(value(&list, "history"), Value::Set(_)), resp3);
        let history = items(value(&list, "history").clone());
        let versions: Vec<String> = history
            .into_iter()
            .map(|entry| {
                let entry = items(entry);
                assert_eq!(entry.len(), 2, "a history entry is (version, change)");
                bulk(&entry[0])
            })
            .collect();
        assert_eq!(
            versions,
            ["2.8.12", "5.0.0", "6.0.0", "6.2.0", "7.0.0", "7.0.3"]
        );
    }
}

#[test]
fn every_command_in_command_docs_has_a_summary() {
    let s = Server::start(1, &[]);
    let mut c = s.conn();
    let all = fields(ok(&mut c, &["COMMAND", "DOCS"]));
    assert_eq!(
        all.len() as i64,
        redis::cmd("COMMAND")
            .arg("COUNT")
            .query::<i64>(&mut c)
            .expect("count")
    );
    for (name, doc) in all {
        let doc = fields(doc);
        assert!(!bulk(value(&doc, "summary")).is_empty(), "{name}");
        // Redis 7.0 states no complexity for the replication streams.
        let has_complexity = names(&doc).contains(&"complexity");
        assert_eq!(
            has_complexity,
            !["monitor", "psync", "sync"].contains(&name.as_str()),
            "{name}"
        );
    }
}

#[test]
fn instantaneous_rates_follow_the_load_of_every_core() {
    let s = Server::start(2, &[]);
    let mut c = s.conn();
    let rate = |c: &mut redis::Connection, name: &str| -> f64 {
        field(&info(c, "stats"), name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name}"))
    };
    // Half a second of pipelined commands, over keys of both shards.
    let until = std::time::Instant::now() + std::time::Duration::from_millis(500);
    while std::time::Instant::now() < until {
        let mut p = redis::pipe();
        for i in 0..100 {
            p.cmd("SET").arg(format!("k{i}")).arg("v").ignore();
        }
        p.query::<()>(&mut c).expect("pipeline");
    }
    assert!(rate(&mut c, "instantaneous_ops_per_sec") > 0.0);
    assert!(rate(&mut c, "instantaneous_input_kbps") > 0.0);
    assert!(rate(&mut c, "instantaneous_output_kbps") > 0.0);
    // Idle for longer than the 16 samples of 100 ms: the INFO calls themselves are all
    // that is left.
    std::thread::sleep(std::time::Duration::from_millis(2000));
    assert!(rate(&mut c, "instantaneous_ops_per_sec") < 10.0);
}
