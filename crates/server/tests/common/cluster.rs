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
    loop {
        let base = super::free_port();
        if base > 50000 {
            continue;
        }
        let ports = (1..=shards).flat_map(|i| [base + i, base + 10000 + i]);
        let held: Vec<TcpListener> = ports
            .filter_map(|p| TcpListener::bind(("127.0.0.1", p)).ok())
            .collect();
        if held.len() == 2 * shards as usize {
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
    let ms = ms.to_string();
    for _ in 0..5 {
        let port = base_port(shards);
        if let Ok(s) = Server::try_start_on(
            port,
            shards.into(),
            &[
                "--cluster-enabled",
                "yes",
                "--cluster-bus",
                "yes",
                "--cluster-node-timeout",
                &ms,
            ],
        ) {
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
    servers
        .iter()
        .flat_map(|(s, shards)| (1..=*shards).map(move |i| format!("127.0.0.1:{}", s.port + i)))
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
