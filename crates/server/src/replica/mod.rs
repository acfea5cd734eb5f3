//! Replication, the replica's side: this server following a Redis 7.0 primary (REPLICAOF,
//! `replicaof` in the configuration file), and the replication state INFO, ROLE and HELLO
//! report whichever role the server has.
//!
//! - `link`: a thread of its own per primary owns the socket: connection, Redis 7.0's replica
//!   handshake, PSYNC, the full sync's RDB (written to a file), then the command stream in
//!   chunks; it sends `REPLCONF ACK` every second and reconnects with backoff;
//! - `apply`: a task on core 0 loads a full sync into every shard (the RDB loader, each core
//!   keeping its keys) and runs the stream's commands through the ordinary routing, as a
//!   client whose replies go nowhere, counting the offset as Redis does;
//! - [`handshake`]: the primary's replies the link parses (PSYNC's answer, the payload's
//!   header), pure so they can be fuzzed.
//!
//! The primary's side (PSYNC served by Shardis, the backlog) is `crate::primary`; the
//! replication id and offset here are both sides' (a primary's offset counts its stream).

mod apply;
pub mod handshake;
mod link;

pub use apply::{listed as master_listed, pause, Paused};

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use shardis_engine::command::Flags;
use shardis_engine::Command;
use shardis_resp::Reply;

use crate::conn::session::Session;
use crate::core::{wall_ms, Core};

/// Where the link to the primary stands (Redis's `repl_state`, as ROLE names it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    Connect,
    Connecting,
    Handshake,
    /// Receiving the full sync's RDB.
    Sync,
    Connected,
}

impl LinkState {
    fn name(self) -> &'static str {
        match self {
            LinkState::Connect => "connect",
            LinkState::Connecting => "connecting",
            LinkState::Handshake => "handshake",
            LinkState::Sync => "sync",
            LinkState::Connected => "connected",
        }
    }
}

/// The replication state of the process (one for all cores).
struct State {
    /// The primary followed, if any.
    master: Option<(String, u16)>,
    link: LinkState,
    /// Our replication id: the primary's once synced, else a random one.
    replid: String,
    /// The previous id and the first offset it does not cover (after REPLICAOF NO ONE).
    replid2: String,
    second_offset: i64,
    /// Unix seconds the link went down (0: never up).
    down_since: u64,
    /// The full sync in progress: bytes expected (0: unknown, diskless) and read.
    sync_total: u64,
    sync_read: u64,
}

static STATE: Mutex<State> = Mutex::new(State {
    master: None,
    link: LinkState::Connect,
    replid: String::new(),
    replid2: String::new(),
    second_offset: -1,
    down_since: 0,
    sync_total: 0,
    sync_read: 0,
});

/// A replica: normal clients' writes are refused while `replica-read-only` is yes.
static IS_REPLICA: AtomicBool = AtomicBool::new(false);
/// The link is up (`master_link_status:up`).
static LINK_UP: AtomicBool = AtomicBool::new(false);
/// The offset of the stream applied (`master_repl_offset`) and of the bytes read.
static OFFSET: AtomicI64 = AtomicI64::new(0);
static READ_OFFSET: AtomicI64 = AtomicI64::new(0);
/// Unix seconds of the last byte from the primary.
static LAST_IO: AtomicU64 = AtomicU64::new(0);
/// Bumped by every REPLICAOF: a link of an older generation stops.
static GENERATION: AtomicU64 = AtomicU64::new(0);
/// The link's socket, to end it from a client (CLIENT KILL TYPE master), and the id of the
/// client that applies the stream (the master client's id, as CLIENT KILL ID matches it).
static LINK_SOCKET: Mutex<Option<std::net::TcpStream>> = Mutex::new(None);
static MASTER_ID: AtomicU64 = AtomicU64::new(0);
/// Replica settings read on every client command (kept from the configuration).
static READ_ONLY: AtomicBool = AtomicBool::new(true);
static SERVE_STALE: AtomicBool = AtomicBool::new(true);

pub const READONLY_ERR: &str = "READONLY You can't write against a read only replica.";
const MASTERDOWN_ERR: &str =
    "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.";

fn state() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// CLIENT KILL of the link to our primary when it is up and `matches(id, addr, laddr)` (the
/// master client's id, the primary's and our address): the link reconnects and asks for a
/// partial resync, as when Redis frees its master client. How many were killed (0 or 1).
pub fn kill_link(matches: impl Fn(u64, &str, &str) -> bool) -> usize {
    if !LINK_UP.load(Ordering::SeqCst) {
        return 0;
    }
    let sock = LINK_SOCKET.lock().unwrap_or_else(|e| e.into_inner());
    let Some(sock) = sock.as_ref() else {
        return 0;
    };
    let addr =
        |a: std::io::Result<std::net::SocketAddr>| a.map(|a| a.to_string()).unwrap_or_default();
    let (peer, local) = (addr(sock.peer_addr()), addr(sock.local_addr()));
    if !matches(MASTER_ID.load(Ordering::SeqCst), &peer, &local) {
        return 0;
    }
    // The link's thread sees its read fail and reconnects.
    let _ = sock.shutdown(std::net::Shutdown::Both);
    1
}

/// 40 random hex characters (a replication id).
pub(crate) fn random_id() -> String {
    let mut raw = [0u8; 20];
    if !crate::core::fill_random(&mut raw) {
        // No kernel randomness: the clock and pid still make ids of two runs differ.
        let seed = wall_ms() ^ (u64::from(std::process::id()) << 40);
        for (i, b) in raw.iter_mut().enumerate() {
            *b = (seed >> ((i % 8) * 8)) as u8 ^ i as u8;
        }
    }
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

/// At start-up: a replication id of our own, the replica settings, and the link when the
/// configuration names a primary (core 0).
pub fn init(core: &std::rc::Rc<Core>) {
    {
        let mut st = state();
        st.replid = random_id();
        st.replid2 = "0".repeat(40);
    }
    configure(core);
    let target = core.config.borrow().get("replicaof").to_string();
    if let Some((host, port)) = target.split_once(' ') {
        if let Ok(port) = port.parse() {
            follow(core, host.to_string(), port, None);
        }
    }
}

/// Reads the settings the command path checks (at start-up and after CONFIG SET).
pub fn configure(core: &Core) {
    let config = core.config.borrow();
    READ_ONLY.store(config.get_bool("replica-read-only"), Ordering::Relaxed);
    SERVE_STALE.store(
        config.get_bool("replica-serve-stale-data"),
        Ordering::Relaxed,
    );
}

/// The replication offset (`master_repl_offset`).
pub fn offset() -> i64 {
    OFFSET.load(Ordering::SeqCst)
}

/// A primary's stream grew by `n` bytes.
pub fn advance_offset(n: i64) {
    OFFSET.fetch_add(n, Ordering::SeqCst);
}

/// The replication id, the previous one, and the first offset the previous one does not
/// cover (psync2: a replica of our old primary may continue with us up to there).
pub fn ids() -> (String, String, i64) {
    let st = state();
    (st.replid.clone(), st.replid2.clone(), st.second_offset)
}

/// How long a replica has had nothing from its primary, in ms: since the last byte while the
/// link is up, else since it went down (Redis's `data_age` of a cluster failover; a link
/// never up counts from the epoch, as Redis's `repl_down_since` of 0 does).
pub fn data_age_ms(now_ms: u64) -> u64 {
    let since = if LINK_UP.load(Ordering::SeqCst) {
        LAST_IO.load(Ordering::Relaxed)
    } else {
        state().down_since
    };
    now_ms.saturating_sub(since.saturating_mul(1000))
}

/// Whether the link to our primary is up (`master_link_status:up`).
pub fn link_up() -> bool {
    LINK_UP.load(Ordering::SeqCst)
}

/// Whether this server follows a primary.
pub fn is_replica() -> bool {
    IS_REPLICA.load(Ordering::Relaxed)
}

/// The error a normal client's command gets on a replica, as Redis's `processCommand`:
/// -READONLY for a write under `replica-read-only`, -MASTERDOWN for a command not flagged
/// `stale` while the link is down under `replica-serve-stale-data no`.
#[inline]
pub fn refuse(cmd: &Command) -> Option<Reply> {
    if !IS_REPLICA.load(Ordering::Relaxed) {
        return None;
    }
    if cmd.is_write() && refuses_writes() {
        return Some(Reply::err(READONLY_ERR));
    }
    if !LINK_UP.load(Ordering::Relaxed)
        && !SERVE_STALE.load(Ordering::Relaxed)
        && !cmd.flags.has(Flags::STALE)
    {
        return Some(Reply::err(MASTERDOWN_ERR));
    }
    None
}

/// The refusal of EXEC on a replica, judged as Redis's `processCommand` judges it: by the
/// commands it queued, since the server may have become a replica (or lost its primary)
/// after they were queued. -READONLY when one writes under `replica-read-only`, -MASTERDOWN
/// when one is not flagged `stale` while the link is down under `replica-serve-stale-data
/// no`.
/// The primary's own transactions (the master link's session) are never refused.
pub fn refuse_exec(s: &Session) -> Option<&'static str> {
    if !IS_REPLICA.load(Ordering::Relaxed) || s.conn == apply::MASTER_CONN {
        return None;
    }
    let queued = s
        .multi
        .iter()
        .flat_map(|m| m.queued.iter().map(|(cmd, _)| *cmd));
    let stale = !LINK_UP.load(Ordering::Relaxed) && !SERVE_STALE.load(Ordering::Relaxed);
    let (mut writes, mut needs_link) = (false, false);
    for cmd in queued {
        writes |= cmd.is_write();
        needs_link |= !cmd.flags.has(Flags::STALE);
    }
    if writes && refuses_writes() {
        Some(READONLY_ERR)
    } else if stale && needs_link {
        Some(MASTERDOWN_ERR)
    } else {
        None
    }
}

/// The refusal of a command a pause held (CLIENT PAUSE, FAILOVER), once it is released:
/// Redis processes a held command again from the start, and the server may have become a
/// replica meanwhile (a FAILOVER's old primary). EXEC is judged by what it queued
/// ([`refuse_exec`], in EXEC itself).
pub fn refuse_held(s: &mut Session, cmd: &Command) -> Option<Reply> {
    let exec = matches!(
        cmd.exec,
        shardis_engine::command::Exec::Server(shardis_engine::command::ServerCmd::Exec)
    );
    if exec {
        return None;
    }
    let refused = refuse(cmd)?;
    crate::conn::multi::flag_error(s);
    Some(refused)
}

/// Whether normal clients' writes are refused (a replica under `replica-read-only yes`).
pub fn refuses_writes() -> bool {
    IS_REPLICA.load(Ordering::Relaxed) && READ_ONLY.load(Ordering::Relaxed)
}

/// HELLO's `role`.
pub fn hello_role() -> &'static str {
    if is_replica() {
        "replica"
    } else {
        "master"
    }
}

/// Starts following `host:port` (core 0's task; a previous link stops). `resume`: the history
/// and offset to ask the primary to continue from (a FAILOVER's old primary), else a full sync.
fn follow(core: &std::rc::Rc<Core>, host: String, port: u16, resume: Option<(String, i64)>) {
    let generation = GENERATION.fetch_add(1, Ordering::SeqCst) + 1;
    {
        let mut st = state();
        st.master = Some((host.clone(), port));
        st.link = LinkState::Connect;
        st.down_since = 0;
    }
    LINK_UP.store(false, Ordering::SeqCst);
    IS_REPLICA.store(true, Ordering::SeqCst);
    // Our own replicas learn of the change by reconnecting, as Redis 7.0 drops them here; the
    // backlog stays, for them to continue if the new primary continues our history.
    crate::primary::disconnect_replicas();
    let settings = link::Settings::from_config(&core.config.borrow(), host, port, resume);
    let (events, acks) = link::start(settings, generation);
    crate::core::spawn::spawn(apply::run(core.clone(), generation, events, acks));
}

/// REPLICAOF NO ONE: keeps the data, takes a new replication id (the old one stays valid up
/// to the current offset, as psync2 does).
fn unfollow() {
    GENERATION.fetch_add(1, Ordering::SeqCst);
    IS_REPLICA.store(false, Ordering::SeqCst);
    LINK_UP.store(false, Ordering::SeqCst);
    let mut st = state();
    st.master = None;
    st.link = LinkState::Connect;
    st.replid2 = std::mem::replace(&mut st.replid, random_id());
    st.second_offset = OFFSET.load(Ordering::SeqCst) + 1;
}

/// REPLICAOF host port | NO ONE (and SLAVEOF).
pub async fn replicaof(s: &mut Session, args: &[Bytes]) -> Reply {
    // A cluster node follows a primary through CLUSTER REPLICATE.
    if crate::cluster::enabled() {
        return Reply::err("ERR REPLICAOF not allowed in cluster mode.");
    }
    if crate::primary::failover::active() {
        return Reply::err("ERR REPLICAOF not allowed while failing over.");
    }
    let (host, port) = (&args[1], &args[2]);
    let target = if host.eq_ignore_ascii_case(b"no") && port.eq_ignore_ascii_case(b"one") {
        None
    } else {
        let port = std::str::from_utf8(port)
            .ok()
            .and_then(|p| p.parse::<i64>().ok());
        match port.and_then(|p| u16::try_from(p).ok()) {
            Some(p) => Some((String::from_utf8_lossy(host).into_owned(), p)),
            None => return Reply::err("ERR Invalid master port"),
        }
    };
    if let Some((h, p)) = &target {
        let st = state();
        if st
            .master
            .as_ref()
            .is_some_and(|(mh, mp)| mh.eq_ignore_ascii_case(h) && mp == p)
        {
            return Reply::Simple("OK Already connected to specified master".into());
        }
    }
    if target.is_none() && !is_replica() {
        return Reply::Ok;
    }
    let from_client = target.is_none();
    set_master(&s.core, target, None).await;
    if from_client {
        tracing::info!("MASTER MODE enabled (user request from a client)");
    }
    Reply::Ok
}

/// Follows `target` (with `resume`, see [`follow`]) or, for `None`, stops following and keeps
/// the data: REPLICAOF, and a FAILOVER's two sides.
pub async fn set_master(
    core: &std::rc::Rc<Core>,
    target: Option<(String, u16)>,
    resume: Option<(String, i64)>,
) {
    let value = target
        .as_ref()
        .map_or_else(String::new, |(h, p)| format!("{h} {p}"));
    // Every core: CONFIG GET replicaof, and how expired keys behave.
    let keep = target.is_some();
    core.broadcast(move |c| {
        c.config.borrow_mut().apply(&[("replicaof", value.clone())]);
        c.shard.borrow_mut().set_keep_expired(keep);
    })
    .await;
    match target {
        Some((host, port)) => {
            tracing::info!("Connecting to MASTER {host}:{port}");
            let _ = core.run_on(0, move |c| follow(c, host, port, resume)).await;
        }
        None => {
            unfollow();
            crate::primary::promoted(core).await;
            // Our replicas learn of our new id by reconnecting (psync2 continues).
            crate::primary::disconnect_replicas();
        }
    }
}

/// ROLE.
pub fn role() -> Reply {
    let replicas = crate::primary::role_replicas();
    let offset = OFFSET.load(Ordering::SeqCst);
    let st = state();
    match &st.master {
        None => Reply::Array(vec![
            Reply::bulk(b"master"),
            Reply::Int(offset),
            Reply::Array(replicas),
        ]),
        Some((host, port)) => Reply::Array(vec![
            Reply::bulk(b"slave"),
            Reply::bulk(host.as_bytes()),
            Reply::Int(i64::from(*port)),
            Reply::bulk(st.link.name().as_bytes()),
            Reply::Int(if st.link == LinkState::Connected {
                offset
            } else {
                -1
            }),
        ]),
    }
}

/// INFO's replication section, as Redis 7.0 writes it (no replicas of our own).
pub fn info(config: &crate::config::Config) -> String {
    // Before our state's lock: the primary's side takes its own first (never the reverse).
    let (replicas, backlog) = crate::primary::info();
    let now = wall_ms() / 1000;
    let offset = OFFSET.load(Ordering::SeqCst);
    let st = state();
    let mut out = String::new();
    match &st.master {
        None => out.push_str("role:master\r\n"),
        Some((host, port)) => {
            let up = st.link == LinkState::Connected;
            let last_io = LAST_IO.load(Ordering::Relaxed);
            out.push_str(&format!(
                "role:slave\r\nmaster_host:{host}\r\nmaster_port:{port}\r\nmaster_link_status:{}\r\nmaster_last_io_seconds_ago:{}\r\nmaster_sync_in_progress:{}\r\nslave_read_repl_offset:{}\r\nslave_repl_offset:{offset}\r\n",
                if up { "up" } else { "down" },
                if up { now.saturating_sub(last_io) as i64 } else { -1 },
                u8::from(st.link == LinkState::Sync),
                READ_OFFSET.load(Ordering::SeqCst),
            ));
            if st.link == LinkState::Sync {
                let perc = if st.sync_total > 0 {
                    st.sync_read as f64 / st.sync_total as f64 * 100.0
                } else {
                    0.0
                };
                out.push_str(&format!(
                    "master_sync_total_bytes:{}\r\nmaster_sync_read_bytes:{}\r\nmaster_sync_left_bytes:{}\r\nmaster_sync_perc:{perc:.2}\r\nmaster_sync_last_io_seconds_ago:{}\r\n",
                    st.sync_total as i64 - i64::from(st.sync_total == 0),
                    st.sync_read,
                    st.sync_total as i64 - i64::from(st.sync_total == 0) - st.sync_read as i64,
                    now.saturating_sub(LAST_IO.load(Ordering::Relaxed)),
                ));
            }
            if !up {
                out.push_str(&format!(
                    "master_link_down_since_seconds:{}\r\n",
                    if st.down_since > 0 {
                        now.saturating_sub(st.down_since) as i64
                    } else {
                        -1
                    }
                ));
            }
            out.push_str(&format!(
                "slave_priority:{}\r\nslave_read_only:{}\r\nreplica_announced:{}\r\n",
                config.get_i64("replica-priority"),
                u8::from(config.get_bool("replica-read-only")),
                u8::from(config.get_bool("replica-announced")),
            ));
        }
    }
    out.push_str(&format!(
        "{replicas}master_failover_state:{}\r\nmaster_replid:{}\r\nmaster_replid2:{}\r\nmaster_repl_offset:{offset}\r\nsecond_repl_offset:{}\r\n{backlog}",
        crate::primary::failover::state_name(),
        st.replid,
        st.replid2,
        st.second_offset,
    ));
    out
}

/// Whether `cmd` is REPLCONF GETACK… (the stream's only command that answers): checked by
/// name, since REPLCONF is not a command clients may send here.
fn is_getack(args: &[Bytes]) -> bool {
    args.len() >= 2
        && args[0].eq_ignore_ascii_case(b"replconf")
        && args[1].eq_ignore_ascii_case(b"getack")
}
