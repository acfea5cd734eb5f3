//! Starts a real `shardis-server` process on a free port for an integration test and stops it
//! when the test ends.

#![allow(dead_code)]

pub mod cluster;
pub mod real_redis;
pub mod replication;
pub mod resp;

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Server {
    pub port: u16,
    child: Child,
    /// The server's own working directory (its `dir` unless the test gives one), so no test
    /// loads snapshot files another test's server saved.
    cwd: std::path::PathBuf,
}

/// The process id INFO reports on `port`, if a server answers there and has loaded its data
/// (or, with `loaded` false, as soon as it listens).
fn serving_pid(port: u16, loaded: bool, password: Option<&str>) -> Option<u32> {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    // With the password the harness gave, INFO says whether loading is over (a client
    // without it gets only -NOAUTH, loading or not).
    let mut request = Vec::new();
    if let Some(password) = password {
        resp::push_command(&mut request, &["AUTH", password]);
    }
    request.extend_from_slice(b"INFO server persistence\r\n");
    s.write_all(&request).ok()?;
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    while !text.contains("process_id:")
        || !text[text.find("process_id:")?..].contains('\r')
        || !text.contains("\r\nloading:")
        || !text[text.find("\r\nloading:")? + 2..].contains('\r')
    {
        let n = s.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
        if password.is_some() {
            if let Some(rest) = text.strip_prefix("+OK\r\n") {
                text = rest.to_string();
            }
        }
        if text.starts_with("-NOAUTH") || text.starts_with("-WRONGPASS") {
            // A server that wants a password: the process id is out of reach; a shardis
            // server started by this harness is the one expected on a fresh port.
            return Some(0);
        }
    }
    if loaded && text.contains("\r\nloading:1") {
        return None;
    }
    let rest = &text[text.find("process_id:")? + "process_id:".len()..];
    rest[..rest.find('\r')?].trim().parse().ok()
}

/// A port nothing listens on at the moment.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Server {
    /// Starts a server with `shards` shards and extra `--name value` arguments.
    pub fn start(shards: usize, extra: &[&str]) -> Server {
        Server::launch(None, shards, extra)
    }

    /// Starts a server on a configuration file, with overrides as `start`.
    pub fn start_with_file(file: &std::path::Path, shards: usize, extra: &[&str]) -> Server {
        Server::launch(Some(file), shards, extra)
    }

    /// Starts a server as `start` and returns once it listens, before it has loaded its data.
    pub fn start_loading(shards: usize, extra: &[&str]) -> Server {
        for _ in 0..5 {
            if let Ok(server) = Server::try_start_as(None, free_port(), shards, extra, false) {
                return server;
            }
        }
        panic!("shardis-server did not start");
    }

    fn launch(file: Option<&std::path::Path>, shards: usize, extra: &[&str]) -> Server {
        for _ in 0..5 {
            if let Ok(server) = Server::try_start(file, free_port(), shards, extra) {
                return server;
            }
            // The port was taken meanwhile: try another.
        }
        panic!("shardis-server did not start");
    }

    /// Starts a server on `port`, which must be free for it.
    pub fn start_on(port: u16, shards: usize, extra: &[&str]) -> Server {
        match Server::try_start(None, port, shards, extra) {
            Ok(server) => server,
            Err(e) => panic!("shardis-server did not start on port {port}: {e}"),
        }
    }

    /// Starts a server on `port` and waits until it serves, or says why it did not.
    pub fn try_start_on(port: u16, shards: usize, extra: &[&str]) -> Result<Server, String> {
        Server::try_start(None, port, shards, extra)
    }

    /// [`Server::try_start_on`], on a configuration file if one is given.
    fn try_start(
        file: Option<&std::path::Path>,
        port: u16,
        shards: usize,
        extra: &[&str],
    ) -> Result<Server, String> {
        Server::try_start_as(file, port, shards, extra, true)
    }

    /// [`Server::try_start`]; `loaded`: waits until the server has loaded its data too.
    fn try_start_as(
        file: Option<&std::path::Path>,
        port: u16,
        shards: usize,
        extra: &[&str],
        loaded: bool,
    ) -> Result<Server, String> {
        static STARTED: AtomicU64 = AtomicU64::new(0);
        let cwd = std::env::temp_dir().join(format!(
            "shardis-test-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&cwd);
        std::fs::create_dir_all(&cwd).map_err(|e| format!("working directory: {e}"))?;
        let mut child = Command::new(env!("CARGO_BIN_EXE_shardis-server"))
            .current_dir(&cwd)
            .args(file)
            .args([
                "--port",
                &port.to_string(),
                "--shards",
                &shards.to_string(),
                "--loglevel",
                "warning",
            ])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn shardis-server");
        let password = extra
            .windows(2)
            .rev()
            .find(|w| w[0] == "--requirepass")
            .map(|w| w[1]);
        // Loading a large data set in a debug build takes a while.
        let deadline = Instant::now() + Duration::from_secs(if loaded { 60 } else { 10 });
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                let _ = std::fs::remove_dir_all(&cwd);
                return Err(format!("it exited: {status}"));
            }
            // Make sure the server answering is ours, not another test's on a reused port.
            let pid = serving_pid(port, loaded, password);
            if pid == Some(child.id()) || pid == Some(0) {
                return Ok(Server { port, child, cwd });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_dir_all(&cwd);
        Err("it did not answer in time".into())
    }

    pub fn client(&self) -> redis::Client {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).expect("client")
    }

    pub fn conn(&self) -> redis::Connection {
        self.client().get_connection().expect("connection")
    }

    /// A raw socket, for protocol-level tests.
    pub fn raw(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        s
    }

    /// Waits for the process to exit by itself (after SHUTDOWN or a signal).
    pub fn wait_exit(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident memory in bytes (VmRSS), while it runs.
    pub fn rss(&self) -> Option<u64> {
        rss_of(self.pid())
    }

    /// CPU time the server used so far (user + system).
    pub fn cpu_time(&self) -> Option<Duration> {
        cpu_time_of(self.pid())
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// A raw RESP connection.
    pub fn resp(&self) -> resp::Conn {
        resp::Conn::connect(self.port).expect("connect")
    }

    /// A field of INFO (`connected_clients`, `rejected_connections`…), read on a fresh
    /// connection.
    pub fn info_field(&self, field: &str) -> Option<String> {
        let mut c = self.resp();
        let info = c.call(&["INFO", "everything"]).ok()?.text()?;
        let prefix = format!("{field}:");
        info.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(|v| v.trim().to_string())
    }

    /// An INFO field that is a number.
    pub fn info_number(&self, field: &str) -> u64 {
        self.info_field(field)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("INFO has no numeric {field}"))
    }

    /// Answers PING on a fresh connection within `within`.
    pub fn answers_ping(&self, within: Duration) -> Result<(), String> {
        let mut c = resp::Conn::connect(self.port).map_err(|e| format!("connect: {e}"))?;
        c.send_command(&["PING"])
            .map_err(|e| format!("send: {e}"))?;
        match c.read(within) {
            Ok(resp::Value::Simple(s)) if s == "PONG" => Ok(()),
            other => Err(format!("PING answered {other:?}")),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.cwd);
    }
}

/// A connection to a server by port, for threads that outlive no `Server` borrow.
pub fn connect(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .and_then(|c| c.get_connection())
        .expect("connection")
}

/// Sends raw bytes and reads until `expect_len` bytes arrived or the peer closed.
pub fn roundtrip(stream: &mut TcpStream, send: &[u8], expect_len: usize) -> Vec<u8> {
    use std::io::{Read, Write};
    stream.write_all(send).expect("write");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while out.len() < expect_len {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    out
}

/// Samples a server's RSS every few milliseconds, keeps the peak, and kills the server the
/// moment it passes a limit (so a runaway allocation cannot take the machine down), remembering
/// what the test was doing then.
pub struct Watchdog {
    limit: u64,
    stop: Arc<AtomicBool>,
    tripped: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    /// What the test is doing, for the report when the watchdog trips.
    doing: Arc<Mutex<String>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    pub fn start(pid: u32, limit: u64) -> Watchdog {
        let stop = Arc::new(AtomicBool::new(false));
        let tripped = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let doing = Arc::new(Mutex::new(String::from("starting")));
        let thread = {
            let (stop, tripped, peak, doing) =
                (stop.clone(), tripped.clone(), peak.clone(), doing.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Some(rss) = rss_of(pid) else {
                        break;
                    };
                    peak.fetch_max(rss, Ordering::Relaxed);
                    if rss > limit {
                        tripped.store(true, Ordering::SeqCst);
                        let what = doing.lock().map(|d| d.clone()).unwrap_or_default();
                        eprintln!(
                            "watchdog: server RSS {} MiB > {} MiB while {what}; killing it",
                            rss >> 20,
                            limit >> 20
                        );
                        // SAFETY: signalling the server process this test started.
                        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        Watchdog {
            limit,
            stop,
            tripped,
            peak,
            doing,
            thread: Some(thread),
        }
    }

    pub fn doing(&self, what: impl Into<String>) {
        if let Ok(mut d) = self.doing.lock() {
            *d = what.into();
        }
    }

    pub fn tripped(&self) -> bool {
        self.tripped.load(Ordering::SeqCst)
    }

    /// Fails the test if the server went over the limit.
    pub fn check(&self) {
        if self.tripped.load(Ordering::SeqCst) {
            let what = self.doing.lock().map(|d| d.clone()).unwrap_or_default();
            panic!("server RSS passed {} MiB while {what}", self.limit >> 20);
        }
    }

    /// The highest RSS seen since the start or the last [`Watchdog::reset_peak`].
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }

    pub fn reset_peak(&self) {
        self.peak.store(0, Ordering::Relaxed);
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Resident memory (VmRSS) of process `pid`, in bytes.
pub fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// User + system CPU time of process `pid` (all its threads), from /proc/<pid>/stat.
pub fn cpu_time_of(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let ticks = u64::try_from(ticks).ok().filter(|&t| t > 0)?;
    Some(Duration::from_micros((utime + stime) * 1_000_000 / ticks))
}

/// The Redis Cluster hash slot of `key` (CRC16-XMODEM of the key or of its `{tag}`), which the
/// server's shards are assigned by.
pub fn key_slot(key: &[u8]) -> u16 {
    let hashed = match key.iter().position(|&c| c == b'{') {
        Some(open) => match key[open + 1..].iter().position(|&c| c == b'}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        },
        None => key,
    };
    let mut crc: u16 = 0;
    for &byte in hashed {
        crc ^= (byte as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}

/// The shard owning `key` among `shards` shards.
pub fn shard_of(key: &[u8], shards: usize) -> usize {
    key_slot(key) as usize % shards
}

/// A key of shard `shard` among `shards`, starting with `prefix`.
pub fn key_on(prefix: &str, shard: usize, shards: usize) -> String {
    (0..)
        .map(|i| format!("{prefix}:{i}"))
        .find(|k| shard_of(k.as_bytes(), shards) == shard)
        .expect("some key lands on every shard")
}

/// The core a connection is served by: client ids are numbered per core (id - 1 ≡ core mod N).
pub fn core_of(conn: &mut resp::Conn, shards: usize) -> usize {
    match conn.call(&["CLIENT", "ID"]) {
        Ok(resp::Value::Int(id)) if id > 0 => (id as usize - 1) % shards,
        other => panic!("CLIENT ID answered {other:?}"),
    }
}

/// Sets SO_LINGER to 0, so closing `stream` resets the connection instead of closing it.
pub fn set_linger_zero(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads a linger struct we own, on a socket we own.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER");
}

#[cfg(test)]
mod tests {
    #[test]
    fn key_slots_match_redis_cluster() {
        assert_eq!(super::key_slot(b"foo"), 12182);
        assert_eq!(super::key_slot(b"bar"), 5061);
        assert_eq!(super::key_slot(b"{bar}x"), 5061);
    }
}
