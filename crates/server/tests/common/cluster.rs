//! Clusters across processes for the tests: bus nodes on free ports, redis-cli
//! (`--cluster create`, `check`), waits, CLUSTER INFO fields and Redis's error texts.

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use super::Server;

/// `cluster-node-timeout` of the resharding tests' nodes: generous, as a debug build's bus
/// thread is slow while slots move and the machine is shared.
pub const RESHARD_NODE_TIMEOUT_MS: u64 = 15000;

/// One resharding test at a time: each keeps every core of the machine busy.
pub static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A base port whose node ports (base + 1 + shard) and bus ports (base + 10001 + shard) are
/// free at the moment.
pub fn base_port(shards: u16) -> u16 {
    port_with_free(|base| {
        (1..=shards)
            .flat_map(|i| [base + i, base + 10000 + i])
            .collect()
    })
}

/// A free port whose `others` ports are free at the moment too.
fn port_with_free(others: impl Fn(u16) -> Vec<u16>) -> u16 {
    loop {
        let base = super::free_port();
        if base > 50000 {
            continue;
        }
        let ports = others(base);
        let held: Vec<TcpListener> = ports
            .iter()
            .filter_map(|&p| TcpListener::bind(("127.0.0.1", p)).ok())
            .collect();
        if held.len() == ports.len() {
            return base;
        }
    }
}

/// A bus node process with `shards` shards (nodes), a node timeout of one second.
pub fn bus_server(shards: u16) -> Server {
    bus_server_timeout(shards, 1000)
}

/// A bus node process with `shards` shards (nodes) and `cluster-node-timeout` `ms`.
pub fn bus_server_timeout(shards: u16, ms: u64) -> Server {
    start_bus_server(shards, ms, true, &[])
}

/// A bus node process of one shard with DEBUG enabled.
pub fn bus_server_with_debug() -> Server {
    start_bus_server(1, 1000, true, &["--enable-debug-command", "yes"])
}

/// A bus process of `shards` shards that is one node (`cluster-node-per-shard no`) on its
/// port, with its bus port at port + 10000, and `cluster-node-timeout` `ms`.
pub fn process_node_server(shards: u16, ms: u64) -> Server {
    start_bus_server(shards, ms, false, &[])
}

/// The client port of every node of `servers`, each given with its shard count and
/// whether every shard is a node (else the process is one, on its port).
pub fn node_ports(servers: &[(&Server, u16, bool)]) -> Vec<u16> {
    servers
        .iter()
        .flat_map(|&(s, shards, per_shard)| {
            let nodes: Vec<u16> = if per_shard {
                (1..=shards).map(|i| s.port + i).collect()
            } else {
                vec![s.port]
            };
            nodes
        })
        .collect()
}

fn start_bus_server(shards: u16, ms: u64, per_shard: bool, extra: &[&str]) -> Server {
    let ms = ms.to_string();
    let per_shard_arg = if per_shard { "yes" } else { "no" };
    for _ in 0..5 {
        let port = if per_shard {
            base_port(shards)
        } else {
            port_with_free(|base| vec![base + 10000])
        };
        let mut args = vec![
            "--cluster-enabled",
            "yes",
            "--cluster-bus",
            "yes",
            "--cluster-node-per-shard",
            per_shard_arg,
            "--cluster-node-timeout",
            &ms,
        ];
        args.extend_from_slice(extra);
        if let Ok(s) = Server::try_start_on(port, shards.into(), &args) {
            return s;
        }
    }
    panic!("no cluster bus server started");
}

/// Whether redis-cli is installed (tests skip, saying so, when it is not).
pub fn redis_cli() -> bool {
    let ok = Command::new("redis-cli").arg("--version").output().is_ok();
    if !ok {
        eprintln!("redis-cli not installed: skipping");
    }
    ok
}

/// Runs redis-cli with `args`; its output, and whether it succeeded.
pub fn cli(args: &[String]) -> (bool, String) {
    let out = Command::new("redis-cli")
        .args(args)
        .output()
        .expect("redis-cli runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

pub fn node_addrs(servers: &[(&Server, u16)]) -> Vec<String> {
    let nodes: Vec<_> = servers
        .iter()
        .map(|&(s, shards)| (s, shards, true))
        .collect();
    node_ports(&nodes)
        .into_iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect()
}

pub fn create(addrs: &[String]) {
    let mut args = vec!["--cluster".to_string(), "create".to_string()];
    args.extend(addrs.iter().cloned());
    args.push("--cluster-yes".into());
    let (ok, out) = cli(&args);
    assert!(ok, "redis-cli --cluster create failed:\n{out}");
    assert!(out.contains("[OK] All 16384 slots covered."), "{out}");
}

pub fn check(addr: &str) -> String {
    let (ok, out) = cli(&["--cluster".into(), "check".into(), addr.into()]);
    assert!(ok, "redis-cli --cluster check failed:\n{out}");
    out
}

/// A field of CLUSTER INFO on `port`.
pub fn info_field(port: u16, field: &str) -> String {
    let mut c = super::connect(port);
    let info: String = redis::cmd("CLUSTER")
        .arg("INFO")
        .query(&mut c)
        .expect("info");
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or("")
        .trim()
        .to_string()
}

/// Waits until `cond` holds, up to `secs` seconds.
pub fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An error as Redis writes it: its code and its text.
pub fn error_text(e: redis::RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        (Some(code), None) => code.to_string(),
        _ => e.to_string(),
    }
}

/// A reply, or its error, as text (`OK`, `nil`, a string, an integer, `CODE detail`).
pub fn text(r: redis::RedisResult<redis::Value>) -> String {
    use redis::Value;
    match r {
        Ok(Value::Okay) => "OK".into(),
        Ok(Value::Nil) => "nil".into(),
        Ok(Value::SimpleString(s)) => s,
        Ok(Value::BulkString(b)) => String::from_utf8_lossy(&b).into_owned(),
        Ok(Value::Int(n)) => n.to_string(),
        Ok(other) => format!("{other:?}"),
        Err(e) => error_text(e),
    }
}

/// Runs one command given as words on `c`.
pub fn run(c: &mut redis::Connection, words: &[&str]) -> String {
    let mut cmd = redis::cmd(words[0]);
    for w in &words[1..] {
        cmd.arg(*w);
    }
    text(cmd.query(c))
}

/// Writes and reads back `n` keys of each of the six types through a cluster client.
pub fn every_type_through(conn: &mut redis::cluster::ClusterConnection, n: i64) {
    use redis::Commands;
    for i in 0..n {
        let _: () = conn.set(format!("key:{i}"), i).expect("set");
        let _: () = conn.rpush(format!("list:{i}"), i).expect("rpush");
        let _: () = conn.hset(format!("hash:{i}"), "f", i).expect("hset");
        let _: () = conn.sadd(format!("set:{i}"), i).expect("sadd");
        let _: () = conn.zadd(format!("zset:{i}"), "m", i).expect("zadd");
        let _: String = redis::cmd("XADD")
            .arg(format!("stream:{i}"))
            .arg("*")
            .arg("f")
            .arg(i)
            .query(conn)
            .expect("xadd");
    }
    for i in 0..n {
        let v: i64 = conn.get(format!("key:{i}")).expect("get");
        assert_eq!(v, i);
        let l: Vec<i64> = conn.lrange(format!("list:{i}"), 0, -1).expect("lrange");
        assert_eq!(l, vec![i]);
        let h: i64 = conn.hget(format!("hash:{i}"), "f").expect("hget");
        assert_eq!(h, i);
        let m: Vec<i64> = conn.smembers(format!("set:{i}")).expect("smembers");
        assert_eq!(m, vec![i]);
        let z: Option<i64> = conn.zscore(format!("zset:{i}"), "m").expect("zscore");
        assert_eq!(z, Some(i));
        let len: i64 = conn.xlen(format!("stream:{i}")).expect("xlen");
        assert_eq!(len, 1);
    }
}

/// Runs `redis-benchmark --cluster` against the cluster of node `addr` (`ip:port`) and
/// asserts it reports every test without an error; skipped when redis-benchmark is absent.
pub fn benchmark_cluster(addr: &str) {
    let (host, port) = addr.rsplit_once(':').expect("addr");
    let bench = Command::new("redis-benchmark")
        .args([
            "-h",
            host,
            "-p",
            port,
            "--cluster",
            "-n",
            "20000",
            "-c",
            "20",
        ])
        .args(["-t", "set,get,lpush,incr", "-q"])
        .output();
    let Ok(out) = bench else {
        eprintln!("redis-benchmark not installed: skipping it");
        return;
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(!text.to_lowercase().contains("error"), "{text}");
    assert_eq!(text.matches("requests per second").count(), 4, "{text}");
}
