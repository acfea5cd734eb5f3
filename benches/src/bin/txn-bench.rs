//! `txn-bench`: a closed-loop load generator for transactions and multi-key writes, run
//! against a Redis-compatible server on 127.0.0.1 (benches/txn-compare.sh drives it).
//!
//! Every client thread owns one TCP connection and its own keys, sends one pre-encoded request
//! (for `multi-*`: MULTI, 5 SET, EXEC in a single write) and reads the replies before sending
//! the next. Raw sockets with pre-encoded bytes keep the client's cost per operation to a
//! write and a read or two, so that the server rather than the client is measured. Each reply
//! is compared byte for byte with the one Redis gives (`+OK`, five `+QUEUED`, then an array of
//! five `+OK` for a transaction; `+OK` for MSET): a mismatch stops the run with an error.
//! After the run the `redis` crate checks, through a fresh connection, that every key written
//! holds its client's value, so that a transaction whose replies were right but whose writes
//! went missing on one shard is caught too.
//!
//! Keys of `*-tag` cases share one hash tag per client (one shard); keys of `*-cross` cases
//! have no tag and are chosen so that their hash slots alternate between even and odd, so
//! with 2 shards (slot mod 2) every request touches both shards.
//!
//! The run is bounded: a warm-up, then `--duration` seconds (ended early if `--stop-file`
//! appears), then the threads finish their request in flight; a read timeout turns a server
//! that stops answering into an error rather than a hang.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crc::{Crc, CRC_16_XMODEM};

const USAGE: &str = "\
Usage: txn-bench --port P --case CASE [options]

  --port P          server port on 127.0.0.1 (required)
  --case CASE       multi-tag    MULTI + 5 SET + EXEC, keys with one hash tag (one shard)
                    multi-cross  MULTI + 5 SET + EXEC, keys on both shards (of 2)
                    mset-tag     MSET of 10 keys with one hash tag
                    mset-cross   MSET of 10 keys on both shards (of 2)
  --clients N       client threads, one connection each (default 32)
  --duration S      measured seconds (default 5)
  --warmup S        seconds before measuring (default 1)
  --pipeline K      requests per write (default 1: one transaction in flight per client)
  --value-size B    bytes per value (default 3, as redis-benchmark)
  --stop-file PATH  end the measurement early when PATH exists
  --timeout S       read timeout; a server silent this long is an error (default 10)

Prints one line: `txn-bench CASE ops/s=X ops=N seconds=T total=M clients=C client_cpu=U%`,
where an op is one transaction (or one MSET), ops are those of the measured interval, total
counts the warm-up too (to divide a server's CPU time over the whole run by), and client_cpu
is this process's CPU time over the measured interval, as a share of one CPU.";

const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_XMODEM);

/// The Redis Cluster hash slot of a key (only the first non-empty `{tag}` is hashed).
fn key_slot(key: &[u8]) -> u16 {
    let hashed = key
        .iter()
        .position(|&c| c == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            rest.iter()
                .position(|&c| c == b'}')
                .filter(|&len| len > 0)
                .map(|len| &rest[..len])
        })
        .unwrap_or(key);
    CRC16.checksum(hashed) % 16384
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Case {
    MultiTag,
    MultiCross,
    MsetTag,
    MsetCross,
}

impl Case {
    fn parse(s: &str) -> Option<Case> {
        match s {
            "multi-tag" => Some(Case::MultiTag),
            "multi-cross" => Some(Case::MultiCross),
            "mset-tag" => Some(Case::MsetTag),
            "mset-cross" => Some(Case::MsetCross),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Case::MultiTag => "multi-tag",
            Case::MultiCross => "multi-cross",
            Case::MsetTag => "mset-tag",
            Case::MsetCross => "mset-cross",
        }
    }

    fn is_multi(self) -> bool {
        matches!(self, Case::MultiTag | Case::MultiCross)
    }

    fn key_count(self) -> usize {
        if self.is_multi() {
            5
        } else {
            10
        }
    }

    /// The keys of client `client`: distinct per client so that clients never write each
    /// other's keys (the post-run check relies on it).
    fn keys(self, client: usize) -> Vec<Vec<u8>> {
        let n = self.key_count();
        match self {
            Case::MultiTag | Case::MsetTag => (0..n)
                .map(|i| format!("{{txb:{client}}}:k{i}").into_bytes())
                .collect(),
            Case::MultiCross | Case::MsetCross => {
                // Walk candidate names, taking the next one whose slot parity is the one
                // wanted (even, odd, even, ...): about one candidate in two qualifies.
                let mut keys = Vec::with_capacity(n);
                let mut candidate = 0u64;
                while keys.len() < n {
                    let key = format!("txb:{client}:k{candidate}").into_bytes();
                    candidate += 1;
                    if usize::from(key_slot(&key) % 2) == keys.len() % 2 {
                        keys.push(key);
                    }
                }
                keys
            }
        }
    }
}

struct Options {
    port: u16,
    case: Case,
    clients: usize,
    duration: Duration,
    warmup: Duration,
    pipeline: usize,
    value_size: usize,
    stop_file: Option<PathBuf>,
    timeout: Duration,
}

fn parse_args() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut port = None;
    let mut case = None;
    let mut opts = Options {
        port: 0,
        case: Case::MultiTag,
        clients: 32,
        duration: Duration::from_secs(5),
        warmup: Duration::from_secs(1),
        pipeline: 1,
        value_size: 3,
        stop_file: None,
        timeout: Duration::from_secs(10),
    };
    let seconds = |v: &str| -> Result<Duration, String> {
        v.parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0 && *s <= 86_400.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| format!("not a number of seconds: {v}"))
    };
    let count = |v: &str, max: usize| -> Result<usize, String> {
        v.parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| format!("not a count between 1 and {max}: {v}"))
    };
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--port" => {
                port = Some(
                    value
                        .parse::<u16>()
                        .ok()
                        .filter(|&p| p != 0)
                        .ok_or_else(|| format!("bad port: {value}"))?,
                )
            }
            "--case" => {
                case = Some(Case::parse(&value).ok_or_else(|| format!("unknown case: {value}"))?)
            }
            "--clients" => opts.clients = count(&value, 4096)?,
            "--duration" => opts.duration = seconds(&value)?,
            "--warmup" => opts.warmup = seconds(&value)?,
            "--pipeline" => opts.pipeline = count(&value, 1024)?,
            "--value-size" => opts.value_size = count(&value, 1 << 20)?,
            "--stop-file" => opts.stop_file = Some(PathBuf::from(value)),
            "--timeout" => opts.timeout = seconds(&value)?.max(Duration::from_millis(100)),
            _ => return Err(format!("unknown option: {flag}")),
        }
    }
    opts.port = port.ok_or("--port is required")?;
    opts.case = case.ok_or("--case is required")?;
    if opts.duration.is_zero() {
        return Err("--duration must be positive".into());
    }
    Ok(opts)
}

/// Appends the RESP encoding of a command to `out`.
fn encode(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// The value client `client` writes: its number, padded to `size` bytes.
fn value_of(client: usize, size: usize) -> Vec<u8> {
    let mut v = client.to_string().into_bytes();
    v.resize(size.max(v.len()), b'x');
    v
}

/// One operation's request and the exact reply Redis sends to it.
fn request_and_reply(case: Case, keys: &[Vec<u8>], value: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut req = Vec::new();
    let mut reply = Vec::new();
    if case.is_multi() {
        encode(&mut req, &[b"MULTI"]);
        reply.extend_from_slice(b"+OK\r\n");
        for key in keys {
            encode(&mut req, &[b"SET", key, value]);
            reply.extend_from_slice(b"+QUEUED\r\n");
        }
        encode(&mut req, &[b"EXEC"]);
        reply.extend_from_slice(format!("*{}\r\n", keys.len()).as_bytes());
        for _ in keys {
            reply.extend_from_slice(b"+OK\r\n");
        }
    } else {
        let mut args: Vec<&[u8]> = vec![b"MSET"];
        for key in keys {
            args.push(key);
            args.push(value);
        }
        encode(&mut req, &args);
        reply.extend_from_slice(b"+OK\r\n");
    }
    (req, reply)
}

/// A client thread: sends its request until `stop`, counting completed operations.
fn client_loop(
    opts: &Options,
    client: usize,
    stop: &AtomicBool,
    done: &AtomicU64,
) -> Result<(), String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, opts.port));
    let mut conn = TcpStream::connect_timeout(&addr, opts.timeout)
        .map_err(|e| format!("client {client}: connect to {addr}: {e}"))?;
    conn.set_nodelay(true).map_err(|e| e.to_string())?;
    conn.set_read_timeout(Some(opts.timeout))
        .map_err(|e| e.to_string())?;
    let keys = opts.case.keys(client);
    let (one_req, one_reply) =
        request_and_reply(opts.case, &keys, &value_of(client, opts.value_size));
    let request = one_req.repeat(opts.pipeline);
    let expected = one_reply.repeat(opts.pipeline);
    let mut buf = vec![0u8; expected.len() + 4096];
    while !stop.load(Ordering::Relaxed) {
        conn.write_all(&request)
            .map_err(|e| format!("client {client}: write: {e}"))?;
        let mut got = 0;
        while got < expected.len() {
            let n = conn
                .read(&mut buf[got..])
                .map_err(|e| format!("client {client}: read: {e}"))?;
            if n == 0 {
                return Err(format!("client {client}: server closed the connection"));
            }
            let end = got + n;
            // Compare as the bytes arrive: an error reply is shorter than the expected one and
            // waiting for the full length would only end in the read timeout.
            if end > expected.len() || buf[got..end] != expected[got..end] {
                return Err(format!(
                    "client {client}: unexpected reply {:?}, expected {:?}",
                    String::from_utf8_lossy(&buf[..end]),
                    String::from_utf8_lossy(&expected)
                ));
            }
            got = end;
        }
        done.fetch_add(opts.pipeline as u64, Ordering::Relaxed);
    }
    Ok(())
}

/// This process's CPU time (user + system, all threads), from getrusage.
fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Reads every client's keys back through the `redis` crate: each must hold its client's
/// value, on whichever shard it lives.
fn verify(opts: &Options) -> Result<(), String> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", opts.port))
        .map_err(|e| e.to_string())?;
    let mut conn = client
        .get_connection_with_timeout(opts.timeout)
        .map_err(|e| format!("verify: connect: {e}"))?;
    for c in 0..opts.clients {
        let keys = opts.case.keys(c);
        let want = value_of(c, opts.value_size);
        for key in &keys {
            let got: Option<Vec<u8>> = redis::cmd("GET")
                .arg(key.as_slice())
                .query(&mut conn)
                .map_err(|e| format!("verify: GET: {e}"))?;
            if got.as_deref() != Some(want.as_slice()) {
                return Err(format!(
                    "verify: key {:?} holds {:?}, expected {:?}",
                    String::from_utf8_lossy(key),
                    got.map(|g| String::from_utf8_lossy(&g).into_owned()),
                    String::from_utf8_lossy(&want)
                ));
            }
        }
    }
    Ok(())
}

fn run(opts: Options) -> Result<(), String> {
    let opts = Arc::new(opts);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..opts.clients)
        .map(|c| {
            let (opts, stop, done, failed) =
                (opts.clone(), stop.clone(), done.clone(), failed.clone());
            thread::spawn(move || {
                let result = client_loop(&opts, c, &stop, &done);
                if result.is_err() {
                    // Stop the others: a run with a failing client measures nothing useful.
                    failed.store(true, Ordering::Relaxed);
                    stop.store(true, Ordering::Relaxed);
                }
                result
            })
        })
        .collect();

    // Sleeps up to `d`, waking early when a client failed or the stop file appears.
    let wait = |d: Duration| {
        let end = Instant::now() + d;
        loop {
            let now = Instant::now();
            if now >= end || failed.load(Ordering::Relaxed) {
                break;
            }
            if opts.stop_file.as_ref().is_some_and(|p| p.exists()) {
                break;
            }
            thread::sleep((end - now).min(Duration::from_millis(20)));
        }
    };
    wait(opts.warmup);
    let (ops0, cpu0, t0) = (done.load(Ordering::Relaxed), cpu_time(), Instant::now());
    wait(opts.duration);
    let (ops1, cpu1, elapsed) = (done.load(Ordering::Relaxed), cpu_time(), t0.elapsed());
    stop.store(true, Ordering::Relaxed);

    let mut errors = Vec::new();
    for t in threads {
        match t.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errors.push(e),
            Err(_) => errors.push("a client thread panicked".into()),
        }
    }
    if let Some(first) = errors.first() {
        return Err(format!("{} client(s) failed; first: {first}", errors.len()));
    }
    verify(&opts)?;
    let secs = elapsed.as_secs_f64();
    let ops = ops1 - ops0;
    let cpu = (cpu1.saturating_sub(cpu0)).as_secs_f64() / secs * 100.0;
    println!(
        "txn-bench {} ops/s={:.0} ops={} seconds={:.2} total={} clients={} client_cpu={:.0}%",
        opts.case.name(),
        ops as f64 / secs,
        ops,
        secs,
        done.load(Ordering::Relaxed),
        opts.clients,
        cpu
    );
    Ok(())
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("txn-bench: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("txn-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis_cluster() {
        assert_eq!(key_slot(b"a"), 15495);
        assert_eq!(key_slot(b"b"), 3300);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(
            key_slot(b"foo{}{bar}"),
            CRC16.checksum(b"foo{}{bar}") % 16384
        );
    }

    #[test]
    fn cross_keys_alternate_shards_and_tag_keys_share_one() {
        for case in [Case::MultiCross, Case::MsetCross] {
            let keys = case.keys(7);
            assert_eq!(keys.len(), case.key_count());
            for (i, k) in keys.iter().enumerate() {
                assert_eq!(usize::from(key_slot(k) % 2), i % 2);
            }
        }
        for case in [Case::MultiTag, Case::MsetTag] {
            let keys = case.keys(7);
            assert!(keys.iter().all(|k| key_slot(k) == key_slot(&keys[0])));
        }
        assert_ne!(Case::MultiCross.keys(1), Case::MultiCross.keys(2));
    }

    #[test]
    fn transaction_request_and_reply() {
        let keys = vec![b"a".to_vec(), b"b".to_vec()];
        let (req, reply) = request_and_reply(Case::MultiTag, &keys, b"v");
        assert_eq!(
            req,
            b"*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\nv\r\n\
              *3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\nv\r\n*1\r\n$4\r\nEXEC\r\n"
        );
        assert_eq!(reply, b"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n+OK\r\n");
        let (req, reply) = request_and_reply(Case::MsetCross, &keys, b"v");
        assert_eq!(
            req,
            b"*5\r\n$4\r\nMSET\r\n$1\r\na\r\n$1\r\nv\r\n$1\r\nb\r\n$1\r\nv\r\n"
        );
        assert_eq!(reply, b"+OK\r\n");
    }

    #[test]
    fn values_are_padded_to_size() {
        assert_eq!(value_of(12, 3), b"12x");
        assert_eq!(value_of(1234, 3), b"1234");
    }
}
