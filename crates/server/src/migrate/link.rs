//! MIGRATE's side of the wire: the connection to the target server, on a helper thread with
//! blocking sockets (a core never waits on a socket it does not own in its ring), and the
//! cache of those connections, as Redis's `migrate_cached_sockets`: one per `host:port`, at
//! most 64, closed after 10 s unused (pruned when the cache is next looked at), reused with
//! the database it last selected.
//!
//! The target may be anything: every reply line is bounded (1 KiB, as Redis reads them) and
//! every read and write has the command's timeout, so a hostile or stuck target costs one
//! thread for at most the timeout per line and a few KiB.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most connections cached (Redis's `MIGRATE_SOCKET_CACHE_ITEMS`).
const CACHE_ITEMS: usize = 64;
/// A cached connection unused this long is closed (`MIGRATE_SOCKET_CACHE_TTL`).
const CACHE_TTL: Duration = Duration::from_secs(10);
/// A reply line longer than this is cut here (Redis reads into a 1024-byte buffer).
const LINE_MAX: usize = 1023;
/// Writes go out in chunks of this size, each with the whole timeout (as Redis).
const WRITE_CHUNK: usize = 64 * 1024;

struct Cached {
    name: String,
    stream: TcpStream,
    /// Bytes read past the last line.
    pending: Vec<u8>,
    /// The database the connection has selected (-1: unknown).
    last_dbid: i64,
    last_use: Instant,
}

static CACHE: Mutex<Vec<Cached>> = Mutex::new(Vec::new());

/// What one MIGRATE sends.
pub struct Job {
    pub host: String,
    pub port: String,
    pub timeout: Duration,
    pub dbid: i64,
    /// The AUTH command, encoded, if a password was given.
    pub auth: Option<Vec<u8>>,
    /// The RESTORE commands, encoded, and how many there are.
    pub restores: Vec<u8>,
    pub count: usize,
}

/// How it went.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// No connection could be made.
    ConnectFailed,
    /// The exchange failed before any RESTORE was answered: writing, or reading.
    Failed { writing: bool },
    /// The replies read (each line without its CR LF); `restores` may be fewer than sent
    /// when the connection failed meanwhile (`socket_error`).
    Replies {
        auth: Option<Vec<u8>>,
        select: Option<Vec<u8>>,
        restores: Vec<Vec<u8>>,
        socket_error: bool,
    },
}

/// Connections cached now (INFO `migrate_cached_sockets`).
pub fn cached_sockets() -> usize {
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    prune(&mut cache);
    cache.len()
}

fn prune(cache: &mut Vec<Cached>) {
    cache.retain(|c| c.last_use.elapsed() <= CACHE_TTL);
}

/// Why a read or write stopped.
enum IoFail {
    Timeout,
    Broken,
}

fn fail_of(e: std::io::Error) -> IoFail {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => IoFail::Timeout,
        _ => IoFail::Broken,
    }
}

/// Carries out `job` (blocking; on a helper thread): Redis's exchange, with its one retry
/// on a fresh connection when a cached one turned out dead.
pub fn run(job: &Job) -> Outcome {
    let mut may_retry = true;
    loop {
        let name = format!("{}:{}", job.host, job.port);
        let Some(mut conn) = take(&name, job) else {
            return Outcome::ConnectFailed;
        };
        match exchange(&mut conn, job) {
            Attempt::Done(outcome, keep) => {
                if keep {
                    give_back(conn);
                }
                return outcome;
            }
            Attempt::SocketError { writing, timeout } => {
                // The connection is dropped; a fresh one is tried once unless it timed out.
                if !timeout && may_retry {
                    may_retry = false;
                    continue;
                }
                return Outcome::Failed { writing };
            }
        }
    }
}

enum Attempt {
    /// An outcome, and whether the connection stays cached.
    Done(Outcome, bool),
    SocketError {
        writing: bool,
        timeout: bool,
    },
}

fn exchange(conn: &mut Cached, job: &Job) -> Attempt {
    let select = conn.last_dbid != job.dbid;
    let mut out = Vec::with_capacity(job.restores.len() + 64);
    if let Some(auth) = &job.auth {
        out.extend_from_slice(auth);
    }
    if select {
        let db = job.dbid.to_string();
        out.extend_from_slice(
            format!("*2\r\n$6\r\nSELECT\r\n${}\r\n{db}\r\n", db.len()).as_bytes(),
        );
    }
    out.extend_from_slice(&job.restores);
    for chunk in out.chunks(WRITE_CHUNK) {
        let _ = conn.stream.set_write_timeout(Some(job.timeout));
        if let Err(e) = conn.stream.write_all(chunk) {
            let timeout = matches!(fail_of(e), IoFail::Timeout);
            return Attempt::SocketError {
                writing: true,
                timeout,
            };
        }
    }
    let head = |conn: &mut Cached, wanted: bool| -> Result<Option<Vec<u8>>, Attempt> {
        if !wanted {
            return Ok(None);
        }
        read_line(conn, job.timeout)
            .map(Some)
            .map_err(|f| Attempt::SocketError {
                writing: false,
                timeout: matches!(f, IoFail::Timeout),
            })
    };
    let auth = match head(conn, job.auth.is_some()) {
        Ok(l) => l,
        Err(a) => return a,
    };
    let select_reply = match head(conn, select) {
        Ok(l) => l,
        Err(a) => return a,
    };
    let mut restores = Vec::with_capacity(job.count.min(1024));
    let mut socket_error = None;
    for _ in 0..job.count {
        match read_line(conn, job.timeout) {
            Ok(line) => restores.push(line),
            Err(f) => {
                socket_error = Some(f);
                break;
            }
        }
    }
    if let Some(f) = &socket_error {
        // No RESTORE answered: as good as a dead cached connection.
        if restores.is_empty() {
            return Attempt::SocketError {
                writing: false,
                timeout: matches!(f, IoFail::Timeout),
            };
        }
    }
    let is_err = |l: &Option<Vec<u8>>| l.as_ref().is_some_and(|l| l.first() == Some(&b'-'));
    let target_error =
        is_err(&auth) || is_err(&select_reply) || restores.iter().any(|l| l.first() == Some(&b'-'));
    let keep = socket_error.is_none();
    if keep {
        conn.last_dbid = if target_error { -1 } else { job.dbid };
    }
    let outcome = Outcome::Replies {
        auth,
        select: select_reply,
        restores,
        socket_error: socket_error.is_some(),
    };
    Attempt::Done(outcome, keep)
}

/// One reply line, without its line end: up to [`LINE_MAX`] bytes (the rest of a longer
/// line stays for the next read, as in Redis), within `timeout`.
fn read_line(conn: &mut Cached, timeout: Duration) -> Result<Vec<u8>, IoFail> {
    let deadline = Instant::now().checked_add(timeout);
    loop {
        let window = conn.pending.len().min(LINE_MAX);
        if let Some(pos) = conn.pending[..window].iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = conn.pending.drain(..=pos).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(line);
        }
        if conn.pending.len() >= LINE_MAX {
            return Ok(conn.pending.drain(..LINE_MAX).collect());
        }
        let left = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => timeout,
        };
        if left.is_zero() {
            return Err(IoFail::Timeout);
        }
        let _ = conn.stream.set_read_timeout(Some(left));
        let mut buf = [0u8; 4096];
        match conn.stream.read(&mut buf) {
            Ok(0) => return Err(IoFail::Broken),
            Ok(n) => conn.pending.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(fail_of(e)),
        }
    }
}

/// The cached connection to `name`, or a new one (None: it could not be made).
fn take(name: &str, job: &Job) -> Option<Cached> {
    {
        let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        prune(&mut cache);
        if let Some(i) = cache.iter().position(|c| c.name == name) {
            let mut c = cache.swap_remove(i);
            c.last_use = Instant::now();
            return Some(c);
        }
    }
    let port: u16 = job.port.parse().unwrap_or(0);
    let addrs = (job.host.as_str(), port).to_socket_addrs().ok()?;
    let stream = addrs.filter(|_| port != 0).find_map(|a| {
        TcpStream::connect_timeout(&a, job.timeout.max(Duration::from_millis(1))).ok()
    })?;
    let _ = stream.set_nodelay(true);
    Some(Cached {
        name: name.to_string(),
        stream,
        pending: Vec::new(),
        last_dbid: -1,
        last_use: Instant::now(),
    })
}

/// Puts a connection (back) in the cache, making room at random as Redis does.
fn give_back(conn: Cached) {
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    prune(&mut cache);
    if cache.iter().any(|c| c.name == conn.name) {
        // Another MIGRATE to the same target cached one meanwhile: this one closes.
        return;
    }
    if cache.len() >= CACHE_ITEMS {
        let i = (conn.last_use.elapsed().subsec_nanos() as usize) % cache.len();
        cache.swap_remove(i);
    }
    cache.push(conn);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn target(script: impl FnOnce(TcpStream) + Send + 'static) -> String {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            if let Ok((s, _)) = l.accept() {
                script(s);
            }
        });
        port.to_string()
    }

    fn job(port: String, count: usize, timeout_ms: u64) -> Job {
        Job {
            host: "127.0.0.1".into(),
            port,
            timeout: Duration::from_millis(timeout_ms),
            dbid: 0,
            auth: None,
            restores: b"*1\r\n$4\r\nPING\r\n".repeat(count),
            count,
        }
    }

    #[test]
    fn replies_are_read_line_by_line_and_bounded() {
        let port = target(|mut s| {
            let mut buf = [0u8; 256];
            let _ = s.read(&mut buf);
            // SELECT's reply, one good and one refused RESTORE, then a 5000-byte line.
            let mut out = b"+OK\r\n+OK\r\n-BUSYKEY Target key name already exists.\r\n".to_vec();
            out.extend(std::iter::repeat_n(b'x', 5000));
            out.extend_from_slice(b"\r\n");
            let _ = s.write_all(&out);
            std::thread::sleep(Duration::from_millis(200));
        });
        let out = run(&job(port, 3, 2000));
        let Outcome::Replies {
            select, restores, ..
        } = out
        else {
            panic!("{out:?}")
        };
        assert_eq!(select.as_deref(), Some(&b"+OK"[..]));
        assert_eq!(restores[1], b"-BUSYKEY Target key name already exists.");
        assert_eq!(restores[2].len(), LINE_MAX, "a long line is cut");
    }

    #[test]
    fn a_silent_target_times_out_and_a_closed_port_fails_to_connect() {
        let port = target(|s| {
            std::thread::sleep(Duration::from_millis(1500));
            drop(s);
        });
        let started = Instant::now();
        assert_eq!(run(&job(port, 1, 300)), Outcome::Failed { writing: false });
        assert!(started.elapsed() < Duration::from_millis(1200));
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let closed = l.local_addr().unwrap().port().to_string();
        drop(l);
        assert_eq!(run(&job(closed, 1, 300)), Outcome::ConnectFailed);
        assert_eq!(run(&job("nonsense".into(), 1, 300)), Outcome::ConnectFailed);
    }
}
