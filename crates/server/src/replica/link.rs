//! The replica's socket to its primary, on a thread of its own (blocking I/O: the link is
//! not a hot path, and nothing here may stall a core): connection, Redis 7.0's replica
//! handshake (PING, AUTH, REPLCONF listening-port, REPLCONF capa eof capa psync2, PSYNC),
//! the full sync's RDB written to a file (the `$<len>` and the diskless `$EOF:<mark>` forms),
//! then the command stream handed to core 0 in chunks through a bounded queue (a slow
//! replica pushes back on the primary through TCP, as Redis's does).
//!
//! With `tls-replication yes` the link is a TLS session (`tls_link`), made before PING.
//!
//! `REPLCONF ACK <offset>` goes out every second and when core 0 asks (GETACK). A lost link
//! is retried every second with `PSYNC <replid> <offset+1>`, once core 0 has applied every
//! whole command received, so the primary can answer `+CONTINUE`.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::handshake::{self, Payload, Psync};
use super::{state, LinkState, GENERATION, LAST_IO, LINK_SOCKET, OFFSET, READ_OFFSET};
use crate::config::Config;
use crate::core::wall_ms;
use crate::tls_link::LinkStream;

/// What the link needs from the configuration.
pub struct Settings {
    host: String,
    port: u16,
    masterauth: String,
    masteruser: String,
    listening_port: i64,
    timeout: Duration,
    /// The history and offset to continue from at the first PSYNC (a FAILOVER's old
    /// primary), else a full sync.
    resume: Option<(String, i64)>,
    /// `tls-replication yes`: the client settings, or why they did not load.
    tls: Option<Result<std::sync::Arc<rustls::ClientConfig>, String>>,
}

impl Settings {
    pub fn from_config(
        config: &Config,
        host: String,
        port: u16,
        resume: Option<(String, i64)>,
    ) -> Settings {
        let tls = config.get("tls-replication") == "yes";
        Settings {
            host,
            port,
            masterauth: config.get("masterauth").to_string(),
            masteruser: config.get("masteruser").to_string(),
            // The primary connects back where replicas reach us: the TLS port over TLS.
            listening_port: match config.get_i64("tls-port") {
                p if tls && p != 0 => p,
                _ => config.get_i64("port"),
            },
            timeout: Duration::from_secs(config.get_u64("repl-timeout").max(1)),
            resume,
            tls: tls.then(|| crate::tls_link::client_config(config)),
        }
    }
}

/// What the link tells core 0, in order.
pub enum Event {
    /// A full sync's RDB is in `path`; the stream starts after `offset` of history `replid`.
    FullSync {
        path: PathBuf,
        replid: String,
        offset: i64,
    },
    /// A partial resync: the stream goes on where it stopped (`replid`: the primary's id if
    /// it changed).
    Continue { replid: Option<String> },
    /// Bytes of the command stream.
    Data(Vec<u8>),
    /// The link is lost: core 0 applies what it has and answers `Back::Resumed`.
    Lost,
}

/// What core 0 tells the link.
pub enum Back {
    /// Everything before `Event::Lost` is applied: the offset to resume from is final.
    Resumed,
    /// Answer `REPLCONF ACK <offset>` now (a GETACK was applied).
    AckNow(i64),
    /// The stream or the full sync could not be applied: reconnect.
    Drop,
}

/// Chunks of stream in flight to core 0 (at most 64 × 64 KiB).
const QUEUE: usize = 64;
const CHUNK: usize = 64 * 1024;
/// How often a blocked read wakes to check the ACK clock, GETACK requests and REPLICAOF.
const POLL: Duration = Duration::from_millis(100);

/// Starts the link thread of `generation`.
pub fn start(settings: Settings, generation: u64) -> (Receiver<Event>, SyncSender<Back>) {
    let (events_tx, events) = mpsc::sync_channel(QUEUE);
    let (back, back_rx) = mpsc::sync_channel(QUEUE);
    let spawned = std::thread::Builder::new()
        .name("replica-link".into())
        .spawn(move || run(settings, generation, events_tx, back_rx));
    if let Err(e) = spawned {
        warn!("could not start the replication link: {e}");
    }
    (events, back)
}

fn current(generation: u64) -> bool {
    GENERATION.load(Ordering::SeqCst) == generation
}

fn set_link(link: LinkState) {
    state().link = link;
}

/// Connects, syncs and streams until REPLICAOF changes, reconnecting after each loss.
fn run(settings: Settings, generation: u64, events: SyncSender<Event>, back: Receiver<Back>) {
    // A new REPLICAOF starts from a full sync; a FAILOVER's old primary continues.
    let mut resume = settings.resume.clone();
    while current(generation) {
        set_link(LinkState::Connecting);
        let ended = session(&settings, generation, &events, &back, &mut resume);
        *LINK_SOCKET.lock().unwrap_or_else(|e| e.into_inner()) = None;
        match ended {
            Ok(()) => return,
            Err(e) => {
                if !current(generation) {
                    return;
                }
                warn!(
                    "replication link to {}:{}: {e}",
                    settings.host, settings.port
                );
            }
        }
        let was_up = state().link == LinkState::Connected;
        {
            let mut st = state();
            st.link = LinkState::Connect;
            if was_up || st.down_since == 0 {
                st.down_since = wall_ms() / 1000;
            }
        }
        super::LINK_UP.store(false, Ordering::SeqCst);
        // Core 0 finishes what it has before the offset is read for PSYNC.
        if resume.is_some() {
            if events.send(Event::Lost).is_err() {
                return;
            }
            loop {
                match back.recv_timeout(POLL) {
                    Ok(Back::Resumed) => break,
                    Ok(Back::AckNow(_) | Back::Drop) => {}
                    Err(RecvTimeoutError::Timeout) if current(generation) => {}
                    Err(_) => return,
                }
            }
            let replid = state().replid.clone();
            resume = Some((replid, OFFSET.load(Ordering::SeqCst)));
        }
        sleep_unless_stopped(generation, Duration::from_secs(1));
    }
}

fn sleep_unless_stopped(generation: u64, d: Duration) {
    let until = Instant::now() + d;
    while current(generation) && Instant::now() < until {
        std::thread::sleep(POLL);
    }
}

/// A link error (logged; the link is retried).
type LinkResult<T> = Result<T, String>;

/// The socket and what was read past the last parsed line.
struct Conn {
    stream: LinkStream,
    buf: Vec<u8>,
    timeout: Duration,
    generation: u64,
}

impl Conn {
    /// Reads more bytes into `buf`; errors after `repl-timeout` without any, or when
    /// REPLICAOF changed.
    fn fill(&mut self) -> LinkResult<()> {
        let started = Instant::now();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if !current(self.generation) {
                return Err("REPLICAOF changed".into());
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err("connection closed by the primary".into()),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    LAST_IO.store(wall_ms() / 1000, Ordering::Relaxed);
                    return Ok(());
                }
                Err(e) if is_timeout(&e) => {
                    if started.elapsed() > self.timeout {
                        return Err("timeout connecting to the primary".into());
                    }
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    /// One reply line (without CRLF); newlines the primary sends to keep the link alive
    /// while it prepares a full sync are skipped.
    fn line(&mut self) -> LinkResult<String> {
        loop {
            if let Some(at) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=at).collect();
                let text = String::from_utf8_lossy(&line).trim_end().to_string();
                if !text.is_empty() {
                    return Ok(text);
                }
                continue;
            }
            if self.buf.len() > 64 * 1024 {
                return Err("reply line too long".into());
            }
            self.fill()?;
        }
    }

    fn send(&mut self, args: &[&[u8]]) -> LinkResult<()> {
        let mut out = Vec::new();
        shardis_resp::encode_request(args, &mut out);
        self.stream.write_all(&out).map_err(|e| e.to_string())
    }

    /// Sends a command and reads its one-line reply.
    fn call(&mut self, args: &[&[u8]]) -> LinkResult<String> {
        self.send(args)?;
        self.line()
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// One connection: handshake, sync, stream. Ok only when REPLICAOF changed.
fn session(
    settings: &Settings,
    generation: u64,
    events: &SyncSender<Event>,
    back: &Receiver<Back>,
    resume: &mut Option<(String, i64)>,
) -> LinkResult<()> {
    let addr = (settings.host.as_str(), settings.port)
        .to_socket_addrs()
        .map_err(|e| format!("resolving the primary: {e}"))?
        .next()
        .ok_or("the primary's name resolves to nothing")?;
    let stream = TcpStream::connect_timeout(&addr, settings.timeout).map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    stream
        .set_read_timeout(Some(POLL))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(settings.timeout))
        .map_err(|e| e.to_string())?;
    *LINK_SOCKET.lock().unwrap_or_else(|e| e.into_inner()) = stream.try_clone().ok();
    let stream = match &settings.tls {
        None => LinkStream::Plain(stream),
        Some(Ok(config)) => {
            LinkStream::connect(stream, config.clone(), &settings.host, settings.timeout)
                .map_err(|e| format!("TLS with the primary: {e}"))?
        }
        Some(Err(e)) => return Err(format!("TLS settings for replication: {e}")),
    };
    info!("MASTER <-> REPLICA sync started");
    set_link(LinkState::Handshake);
    let mut conn = Conn {
        stream,
        buf: Vec::new(),
        timeout: settings.timeout,
        generation,
    };
    let pong = conn.call(&[b"PING"])?;
    // A primary that wants a password answers PING with an error; AUTH follows.
    if pong.starts_with('-')
        && !pong.starts_with("-NOAUTH")
        && !pong.starts_with("-NOPERM")
        && !pong.starts_with("-ERR operation not permitted")
    {
        return Err(format!("error reply to PING from the primary: '{pong}'"));
    }
    if !settings.masterauth.is_empty() {
        let reply = if settings.masteruser.is_empty() {
            conn.call(&[b"AUTH", settings.masterauth.as_bytes()])?
        } else {
            conn.call(&[
                b"AUTH",
                settings.masteruser.as_bytes(),
                settings.masterauth.as_bytes(),
            ])?
        };
        if reply.starts_with('-') {
            return Err(format!("unable to AUTH to MASTER: {reply}"));
        }
    }
    // Errors to REPLCONF are not fatal (an old primary), as in Redis.
    let port = settings.listening_port.to_string();
    conn.call(&[b"REPLCONF", b"listening-port", port.as_bytes()])?;
    conn.call(&[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"])?;
    let (id, from) = handshake::resume_args(resume.as_ref());
    // A FAILOVER's old primary asks the target to take over (Redis's `PSYNC ... FAILOVER`).
    let failover = crate::primary::failover::in_progress();
    let reply = if failover {
        conn.call(&[b"PSYNC", id.as_bytes(), from.as_bytes(), b"FAILOVER"])?
    } else {
        conn.call(&[b"PSYNC", id.as_bytes(), from.as_bytes()])?
    };
    if failover {
        let accepted = reply.starts_with("+FULLRESYNC") || reply.starts_with("+CONTINUE");
        crate::primary::failover::psync_answered(accepted);
    }
    match handshake::psync_reply(&reply)? {
        Psync::Full { replid, offset } => {
            info!("Full resync from master: {replid}:{offset}");
            set_link(LinkState::Sync);
            let path = receive_rdb(&mut conn)?;
            READ_OFFSET.store(offset, Ordering::SeqCst);
            *resume = Some((replid.clone(), offset));
            events
                .send(Event::FullSync {
                    path,
                    replid,
                    offset,
                })
                .map_err(|_| "core 0 stopped".to_string())?;
        }
        Psync::Continue { replid } => {
            info!("Successful partial resynchronization with master.");
            events
                .send(Event::Continue { replid })
                .map_err(|_| "core 0 stopped".to_string())?;
        }
    }
    stream_commands(conn, events, back)
}

/// Reads the full sync's payload into a file of `dir`; returns its path.
fn receive_rdb(conn: &mut Conn) -> LinkResult<PathBuf> {
    let header = conn.line()?;
    // The diskless form ends with the 40 bytes announced; the other announces its length.
    let (total, mark) = match handshake::payload_header(&header)? {
        Payload::Length(n) => (Some(n), None),
        Payload::Mark(mark) => (None, Some(mark)),
    };
    {
        let mut st = state();
        st.sync_total = total.unwrap_or(0);
        st.sync_read = 0;
    }
    let path = PathBuf::from(format!(
        "temp-{}.{}.rdb",
        wall_ms() / 1000,
        std::process::id()
    ));
    let file = std::fs::File::create(&path).map_err(|e| {
        format!("opening the temp file needed for MASTER <-> REPLICA synchronization: {e}")
    })?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let written = copy_payload(conn, &mut out, total, mark.as_deref());
    let flushed = written.and_then(|()| {
        out.flush()
            .map_err(|e| format!("writing the RDB received from the primary: {e}"))
    });
    if let Err(e) = flushed {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok(path)
}

/// Copies the payload to `out`: `total` bytes, or up to the EOF `mark` (not written).
fn copy_payload(
    conn: &mut Conn,
    out: &mut impl Write,
    total: Option<u64>,
    mark: Option<&[u8]>,
) -> LinkResult<()> {
    let write_err = |e: std::io::Error| format!("writing the RDB received from the primary: {e}");
    let mut read: u64 = 0;
    loop {
        if conn.buf.is_empty() {
            conn.fill()?;
        }
        match (total, mark) {
            (Some(total), _) => {
                let want = usize::try_from(total - read).unwrap_or(usize::MAX);
                let take = want.min(conn.buf.len());
                out.write_all(&conn.buf[..take]).map_err(write_err)?;
                conn.buf.drain(..take);
                read += take as u64;
                state().sync_read = read;
                if read == total {
                    return Ok(());
                }
            }
            (None, Some(mark)) => {
                // The mark may be followed by the stream already (a Shardis primary sends it
                // at once; Redis waits for the first ACK): what follows it stays in `buf`.
                if let Some(body) = conn.buf.windows(mark.len()).position(|w| w == mark) {
                    out.write_all(&conn.buf[..body]).map_err(write_err)?;
                    conn.buf.drain(..body + mark.len());
                    state().sync_read = read + body as u64;
                    return Ok(());
                }
                // Keep the last 40 bytes back until more arrive: they may begin the mark.
                let keep = mark.len().min(conn.buf.len());
                let body = conn.buf.len() - keep;
                out.write_all(&conn.buf[..body]).map_err(write_err)?;
                conn.buf.drain(..body);
                read += body as u64;
                state().sync_read = read;
                conn.fill()?;
            }
            (None, None) => return Err("no RDB length".into()),
        }
    }
}

/// The command stream: chunks to core 0, ACKs to the primary. Ok only when REPLICAOF changed.
fn stream_commands(
    mut conn: Conn,
    events: &SyncSender<Event>,
    back: &Receiver<Back>,
) -> LinkResult<()> {
    let mut last_ack = Instant::now();
    let mut last_read = Instant::now();
    // What arrived behind the RDB (or the CONTINUE line) is stream already.
    let early = std::mem::take(&mut conn.buf);
    if !early.is_empty() {
        READ_OFFSET.fetch_add(early.len() as i64, Ordering::SeqCst);
        events
            .send(Event::Data(early))
            .map_err(|_| "core 0 stopped".to_string())?;
    }
    let mut chunk = vec![0u8; CHUNK];
    loop {
        if !current(conn.generation) {
            return Ok(());
        }
        let mut ack =
            (last_ack.elapsed() >= Duration::from_secs(1)).then(|| OFFSET.load(Ordering::SeqCst));
        loop {
            match back.try_recv() {
                Ok(Back::AckNow(offset)) => ack = Some(offset),
                Ok(Back::Drop) => return Err("the primary's data could not be applied".into()),
                Ok(Back::Resumed) => {}
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return Err("core 0 stopped".into()),
            }
        }
        if let Some(offset) = ack {
            let offset = offset.to_string();
            conn.send(&[b"REPLCONF", b"ACK", offset.as_bytes()])?;
            last_ack = Instant::now();
        }
        match conn.stream.read(&mut chunk) {
            Ok(0) => return Err("connection closed by the primary".into()),
            Ok(n) => {
                LAST_IO.store(wall_ms() / 1000, Ordering::Relaxed);
                READ_OFFSET.fetch_add(n as i64, Ordering::SeqCst);
                events
                    .send(Event::Data(chunk[..n].to_vec()))
                    .map_err(|_| "core 0 stopped".to_string())?;
                // The queue may have been full for a while (core 0 loading): that is no
                // silence from the primary.
                last_read = Instant::now();
            }
            Err(e) if is_timeout(&e) => {
                if last_read.elapsed() > conn.timeout {
                    return Err("MASTER timeout: no data nor PING received".into());
                }
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A diskless RDB whose EOF mark arrives in the same read as the stream behind it.
    #[test]
    fn the_eof_mark_may_be_followed_by_the_stream() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mark = [b'm'; 40];
        let sender = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            let mut payload = b"REDIS-body".to_vec();
            payload.extend_from_slice(&mark);
            payload.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
            s.write_all(&payload).expect("write");
        });
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(POLL)).expect("timeout");
        let mut conn = Conn {
            stream: LinkStream::Plain(stream),
            buf: Vec::new(),
            timeout: Duration::from_secs(5),
            generation: GENERATION.load(Ordering::SeqCst),
        };
        let mut out = Vec::new();
        // The whole payload may come in several reads: wait until the stream's part is here.
        sender.join().expect("sender");
        std::thread::sleep(Duration::from_millis(50));
        copy_payload(&mut conn, &mut out, None, Some(&mark)).expect("payload");
        assert_eq!(out, b"REDIS-body");
        assert_eq!(conn.buf, b"*1\r\n$4\r\nPING\r\n");
    }
}
