//! A replica's link, once PSYNC or SYNC took its socket from the event loop: a thread that
//! writes (the full sync's RDB, then the stream from the replica's buffer) and one that reads
//! (REPLCONF ACK). Blocking I/O on threads of their own keeps a slow or distant replica off
//! the cores: TCP back-pressure stops only the writer, and what piles up meanwhile is the
//! replica's buffer, bounded by `client-output-buffer-limit replica`. A link accepted on the
//! `tls-port` goes on in its TLS session, shared by both threads (`tls_link`).

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::net::TcpStream;
use std::os::fd::{FromRawFd, RawFd};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use shardis_persist::crc::Crc64;
use shardis_persist::rdb::opcodes;
use shardis_resp::{Limits, RequestParser};
use tracing::{info, warn};

use super::{lock, Phase, Replica};
use crate::tls_link::LinkStream;

/// What the full sync's orchestrator (`sync`) hands the writer.
pub enum Plan {
    /// The RDB's header, then each shard's body in shard order.
    Parts {
        header: Vec<u8>,
        shards: Vec<Receiver<Vec<u8>>>,
    },
    /// Whether every shard's body was complete.
    Verdict(bool),
}

/// How the link begins.
pub enum Start {
    /// `+FULLRESYNC` (unless `announce` is false: SYNC), then the RDB, diskless with an EOF
    /// mark, or through a file with its length.
    Full {
        announce: bool,
        diskless: bool,
        plan: Receiver<Plan>,
    },
    /// `+CONTINUE`, then the backlog's part and the stream.
    Continue { psync2: bool },
}

/// Starts the link's threads on the socket `fd` (taken over from the event loop, with its
/// TLS session when it came on the `tls-port`).
pub fn start(
    r: Arc<Replica>,
    fd: RawFd,
    tls: Option<rustls::ServerConnection>,
    how: Start,
    nodelay: bool,
) {
    // SAFETY: the event loop handed this fd over and no longer uses or closes it.
    let sock = unsafe { TcpStream::from_raw_fd(fd) };
    let _ = sock.set_nonblocking(false);
    let _ = sock.set_nodelay(nodelay);
    let sock = LinkStream::handed_over(sock, tls);
    let (reader, handle) = match (sock.try_clone(), sock.tcp().try_clone()) {
        (Ok(a), Ok(b)) => (a, b),
        _ => {
            r.close("cannot duplicate the socket");
            return;
        }
    };
    *lock(&r.sock) = Some(handle);
    if lock(&r.st).closed {
        r.close("closed before the link started");
        return;
    }
    let rr = r.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("repl-ack-{}", r.id))
        .spawn(move || read_acks(rr, reader));
    if spawned.is_err() {
        r.close("cannot start a thread");
        return;
    }
    let rw = r.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("repl-send-{}", r.id))
        .spawn(move || {
            let why = match write(&rw, sock, how) {
                Ok(()) => "closed".to_string(),
                Err(e) => e.to_string(),
            };
            rw.close(&why);
        });
    if spawned.is_err() {
        r.close("cannot start a thread");
    }
}

fn write(r: &Replica, mut sock: LinkStream, how: Start) -> io::Result<()> {
    match how {
        Start::Continue { psync2 } => {
            let line = if psync2 {
                format!("+CONTINUE {}\r\n", super::replica::ids().0)
            } else {
                "+CONTINUE\r\n".to_string()
            };
            sock.write_all(line.as_bytes())?;
        }
        Start::Full {
            announce,
            diskless,
            plan,
        } => {
            let start = wait_cut(r)?;
            if announce {
                let line = format!("+FULLRESYNC {} {start}\r\n", super::replica::ids().0);
                sock.write_all(line.as_bytes())?;
            }
            let sent = if diskless {
                send_diskless(r, &mut sock, &plan)?
            } else {
                send_file(r, &mut sock, &plan)?
            };
            info!(
                "Synchronization with replica {} succeeded ({sent} bytes of RDB)",
                r.addr
            );
            let mut st = lock(&r.st);
            st.phase = Phase::Online;
            st.ack_at = Instant::now();
            drop(st);
            // A replica finds the end of a diskless RDB by its mark at the end of what it
            // read: the stream waits for its first ACK (sent once it loaded), as Redis's
            // does, or it could arrive in the same read and hide the mark.
            if diskless {
                wait_first_ack(r)?;
            }
        }
    }
    stream(r, &mut sock)
}

/// Waits until the replica acknowledged something (`repl-timeout` closes a silent one).
fn wait_first_ack(r: &Replica) -> io::Result<()> {
    let mut st = lock(&r.st);
    while !st.acked {
        if st.closed {
            return Err(io::Error::other("closed before its first ACK"));
        }
        st = r
            .wake
            .wait_timeout(st, Duration::from_millis(200))
            .map(|(g, _)| g)
            .unwrap_or_else(|e| e.into_inner().0);
    }
    Ok(())
}

/// Waits for the hub to place the replica's cut in the stream; its offset.
fn wait_cut(r: &Replica) -> io::Result<i64> {
    let mut st = lock(&r.st);
    loop {
        if st.closed {
            return Err(io::Error::other("closed while waiting for the sync"));
        }
        if st.phase != Phase::WaitCut {
            return Ok(st.start);
        }
        st = r
            .wake
            .wait_timeout(st, Duration::from_millis(200))
            .map(|(g, _)| g)
            .unwrap_or_else(|e| e.into_inner().0);
    }
}

fn next_plan(r: &Replica, plan: &Receiver<Plan>) -> io::Result<Plan> {
    loop {
        match plan.recv_timeout(Duration::from_millis(200)) {
            Ok(p) => return Ok(p),
            Err(RecvTimeoutError::Timeout) if !r.closed() => {}
            _ => return Err(io::Error::other("the full sync stopped")),
        }
    }
}

/// Writes the RDB (header, every shard's body, EOF and checksum) to `out`; its size.
fn write_rdb(r: &Replica, out: &mut impl Write, plan: &Receiver<Plan>) -> io::Result<u64> {
    let Plan::Parts { header, shards } = next_plan(r, plan)? else {
        return Err(io::Error::other("the full sync's parts are missing"));
    };
    let mut crc = Crc64::default();
    let mut size = 0u64;
    let mut put = |out: &mut dyn Write, chunk: &[u8]| -> io::Result<()> {
        crc.update(chunk);
        size += chunk.len() as u64;
        out.write_all(chunk)
    };
    put(out, &header)?;
    for body in shards {
        for chunk in body {
            put(out, &chunk)?;
        }
    }
    // Only a complete set of bodies gets its checksum: a replica never loads a partial one.
    match next_plan(r, plan)? {
        Plan::Verdict(true) => {}
        _ => return Err(io::Error::other("a shard's snapshot failed")),
    }
    put(out, &[opcodes::EOF])?;
    let sum = crc.value().to_le_bytes();
    size += sum.len() as u64;
    out.write_all(&sum)?;
    Ok(size)
}

/// Diskless: `$EOF:<mark>`, the RDB, the mark (Redis 7.0 replicas with `capa eof`).
fn send_diskless(r: &Replica, sock: &mut LinkStream, plan: &Receiver<Plan>) -> io::Result<u64> {
    let mark = super::replica::random_id();
    sock.write_all(format!("$EOF:{mark}\r\n").as_bytes())?;
    let mut out = BufWriter::with_capacity(256 << 10, &mut *sock);
    let size = write_rdb(r, &mut out, plan)?;
    out.write_all(mark.as_bytes())?;
    out.flush()?;
    Ok(size)
}

/// Through a file: the RDB is written to a temporary file in `dir`, then sent as `$<len>`.
fn send_file(r: &Replica, sock: &mut LinkStream, plan: &Receiver<Plan>) -> io::Result<u64> {
    let path = format!("temp-shardis-repl-{}-{}.rdb", std::process::id(), r.id);
    let result = (|| {
        let mut f = BufWriter::new(File::create(&path)?);
        let size = write_rdb(r, &mut f, plan)?;
        f.flush()?;
        drop(f);
        sock.write_all(format!("${size}\r\n").as_bytes())?;
        io::copy(&mut File::open(&path)?, sock)?;
        Ok(size)
    })();
    let _ = std::fs::remove_file(&path);
    result
}

/// Writes the stream as it collects in the replica's buffer.
fn stream(r: &Replica, sock: &mut LinkStream) -> io::Result<()> {
    loop {
        let data = {
            let mut st = lock(&r.st);
            while st.buf.is_empty() && !st.closed {
                st = r
                    .wake
                    .wait_timeout(st, Duration::from_millis(500))
                    .map(|(g, _)| g)
                    .unwrap_or_else(|e| e.into_inner().0);
            }
            if st.closed {
                return Ok(());
            }
            std::mem::take(&mut st.buf)
        };
        sock.write_all(&data)?;
    }
}

/// Reads the replica's REPLCONF ACK <offset> (anything else is ignored, as Redis's master
/// ignores replies on a replica link).
fn read_acks(r: Arc<Replica>, mut sock: LinkStream) {
    let mut parser = RequestParser::new();
    let limits = Limits::default();
    let mut input = BytesMut::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let mut args = Vec::new();
    loop {
        let n = match sock.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        input.extend_from_slice(&chunk[..n]);
        loop {
            match parser.next_into(&mut input, &limits, &mut args) {
                Ok(true) => {
                    if args.len() >= 3
                        && args[0].eq_ignore_ascii_case(b"replconf")
                        && args[1].eq_ignore_ascii_case(b"ack")
                    {
                        if let Some(off) = std::str::from_utf8(&args[2])
                            .ok()
                            .and_then(|o| o.parse::<i64>().ok())
                        {
                            let mut st = lock(&r.st);
                            st.ack = st.ack.max(off);
                            st.ack_at = Instant::now();
                            if !st.acked {
                                st.acked = true;
                                r.wake.notify_all();
                            }
                        }
                    }
                    args.clear();
                }
                Ok(false) => break,
                Err(_) => {
                    warn!("Protocol error from replica {}", r.addr);
                    r.close("protocol error");
                    return;
                }
            }
        }
    }
    r.close("the replica closed the connection");
}
