//! Debian's `redis-server` 7.0 started beside Shardis, for the tests that check interop with
//! real Redis (RDB files both ways, replication). Tests skip, saying so, when it is absent.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A redis-server, killed when dropped (also when a test fails).
pub struct RedisServer(Child);

impl RedisServer {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running redis-server in `dir` (no save rules, no log, DEBUG enabled), or None when it
/// is not installed or does not answer PING within 10 s.
pub fn redis_server(dir: &Path) -> Option<(RedisServer, u16)> {
    redis_server_with(dir, &[])
}

/// The same, with more arguments (`--replicaof host port` for a replica).
pub fn redis_server_with(dir: &Path, extra: &[&str]) -> Option<(RedisServer, u16)> {
    if Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("redis-server not installed: skipping");
        return None;
    }
    let port = super::free_port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
            "--enable-debug-command",
            "yes",
        ])
        .args(extra)
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .spawn()
        .map(RedisServer)
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ping = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .and_then(|c| c.get_connection())
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
        if ping.is_ok() {
            return Some((child, port));
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
