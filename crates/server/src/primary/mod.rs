//! Replication, the primary's side: Redis 7.0 replicas (or Shardis ones) follow this server
//! with SYNC/PSYNC.
//!
//! - every core copies its shard's journal (the one write hook, `shardis_engine::journal`)
//!   to the *hub*, a thread of its own, once per event-loop pass, together with the grants of
//!   its shard's lock (`core::shard_lock`) and markers; the hub merges the shards' records
//!   into one command stream (`merge`), numbers its bytes (the replication offset), keeps the
//!   backlog, and appends it to each replica's buffer;
//! - `sync`: a full sync: the cut of every shard under the lock of all of them, each core
//!   serialising its snapshot (copy-on-write, no fork) in chunks to the replica's link;
//! - `link`: a replica's socket, taken over from the event loop after PSYNC: a thread writing
//!   the RDB and then the stream, and one reading its REPLCONF ACKs.
//!
//! - `failover`: FAILOVER, handing the primary's role to a replica.
//!
//! A replica serves replicas of its own the same way, with its primary's stream as it applies
//! it (`applied`) in place of the merge of its journals.
//!
//! Here: the shared state (replicas, backlog, ids, counters), PSYNC/SYNC/REPLCONF, WAIT,
//! `min-replicas-*`, CLIENT KILL TYPE replica, and the lines INFO and ROLE show.

pub mod failover;
mod link;
pub mod merge;
mod sync;

use std::collections::{BTreeMap, VecDeque};
use std::net::{Shutdown, TcpStream};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use shardis_persist::aof::{self, Frame, Record};
use shardis_resp::Reply;
use tracing::{info, warn};

use self::merge::{Cmd, Input, Merger, Resolved};
use crate::conn::session::Session;
use crate::core::shard_lock::TxId;
use crate::core::Core;
use crate::replica;

/// Settings the hub and the links read (copied from the configuration on every change).
#[derive(Clone, Debug)]
struct Settings {
    backlog_size: usize,
    backlog_ttl: u64,
    ping_period: u64,
    timeout: u64,
    limit: crate::config::OutputLimit,
    min_to_write: usize,
    max_lag: u64,
    diskless: bool,
    delay: u64,
    /// Replicas a diskless sync starts with at once (0: no limit, the delay decides).
    max_replicas: usize,
    nodelay: bool,
}

static SETTINGS: Mutex<Option<Settings>> = Mutex::new(None);

fn settings() -> Settings {
    lock(&SETTINGS).clone().unwrap_or(Settings {
        backlog_size: 1 << 20,
        backlog_ttl: 3600,
        ping_period: 10,
        timeout: 60,
        limit: crate::config::OutputLimit::default(),
        min_to_write: 0,
        max_lag: 10,
        diskless: true,
        delay: 5,
        max_replicas: 0,
        nodelay: true,
    })
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads the settings (at start-up and after CONFIG SET).
pub fn configure(config: &crate::config::Config) {
    let s = Settings {
        backlog_size: config.get_i64("repl-backlog-size").max(1) as usize,
        backlog_ttl: config.get_i64("repl-backlog-ttl").max(0) as u64,
        ping_period: config.get_i64("repl-ping-replica-period").max(1) as u64,
        timeout: config.get_i64("repl-timeout").max(1) as u64,
        limit: config.output_limit_replica(),
        min_to_write: config.get_i64("min-replicas-to-write").max(0) as usize,
        max_lag: config.get_i64("min-replicas-max-lag").max(0) as u64,
        diskless: config.get_bool("repl-diskless-sync"),
        delay: config.get_i64("repl-diskless-sync-delay").max(0) as u64,
        max_replicas: config.get_i64("repl-diskless-sync-max-replicas").max(0) as usize,
        nodelay: !config.get_bool("repl-disable-tcp-nodelay"),
    };
    MIN_TO_WRITE.store(
        (s.min_to_write > 0 && s.max_lag > 0) as u64 * s.min_to_write as u64,
        Ordering::Relaxed,
    );
    *lock(&SETTINGS) = Some(s);
}

/// Where a replica stands (INFO's `state=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the cut of its full sync.
    WaitCut,
    /// Receiving the RDB; the stream since the cut collects in its buffer.
    SendRdb,
    Online,
}

/// A replica's link.
pub struct Replica {
    /// The client id it had.
    id: u64,
    /// Its address (ip:port of the socket), and the address it listens on.
    addr: String,
    ip: String,
    port: u16,
    st: Mutex<LinkState>,
    wake: Condvar,
    /// A handle on the socket to shut it down from elsewhere (kill, limits, timeout).
    sock: Mutex<Option<TcpStream>>,
    /// What CLIENT LIST shows of the client it was.
    listed: Listed,
}

/// A replica's client as CLIENT LIST shows it: its record leaves the event loop with the
/// socket, so what does not change is kept here.
pub struct Listed {
    pub laddr: String,
    pub fd: i32,
    pub name: String,
    pub created: Instant,
    pub db: usize,
    pub user: String,
    pub resp: u8,
    pub lib_name: String,
    pub lib_ver: String,
    /// PSYNC or SYNC: its last command until its first REPLCONF ACK.
    pub cmd: &'static str,
}

impl Listed {
    fn of(c: &crate::core::client::Client, cmd: &'static str) -> Listed {
        let text = |b: &Option<Bytes>| {
            b.as_ref()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        Listed {
            laddr: c.laddr.clone(),
            fd: c.fd,
            name: text(&c.name),
            created: c.created,
            db: c.db,
            user: String::from_utf8_lossy(&c.user.borrow().name).into_owned(),
            resp: if c.resp3 { 3 } else { 2 },
            lib_name: text(&c.lib_name),
            lib_ver: text(&c.lib_ver),
            cmd,
        }
    }
}

struct LinkState {
    phase: Phase,
    /// Stream bytes not yet written to the socket.
    buf: Vec<u8>,
    /// The offset its stream starts after (its full sync's cut, or the partial resync's).
    start: i64,
    /// The offset it last acknowledged, and when.
    ack: i64,
    ack_at: Instant,
    /// The replica sent an ACK on this link (after a diskless sync, the stream waits for it).
    acked: bool,
    closed: bool,
    /// Since when its buffer is over the soft limit.
    soft_since: Option<Instant>,
}

impl Replica {
    fn new(
        id: u64,
        addr: String,
        hello: &crate::core::client::ReplicaHello,
        listed: Listed,
    ) -> Arc<Replica> {
        let host = addr.rsplit_once(':').map_or(addr.as_str(), |(h, _)| h);
        Arc::new(Replica {
            id,
            ip: hello.ip.clone().unwrap_or_else(|| host.to_string()),
            addr,
            port: hello.port,
            st: Mutex::new(LinkState {
                phase: Phase::WaitCut,
                buf: Vec::new(),
                start: 0,
                ack: 0,
                ack_at: Instant::now(),
                acked: false,
                closed: false,
                soft_since: None,
            }),
            wake: Condvar::new(),
            sock: Mutex::new(None),
            listed,
        })
    }

    /// Closes the link (both threads notice: the socket is shut down).
    fn close(&self, why: &str) {
        let mut st = lock(&self.st);
        if !st.closed {
            st.closed = true;
            info!("Connection with replica {} lost ({why})", self.addr);
        }
        drop(st);
        if let Some(s) = lock(&self.sock).as_ref() {
            let _ = s.shutdown(Shutdown::Both);
        }
        self.wake.notify_all();
    }

    fn closed(&self) -> bool {
        lock(&self.st).closed
    }
}

/// The replication backlog: the last `repl-backlog-size` bytes of the stream.
struct Backlog {
    buf: VecDeque<u8>,
    /// The offset of its first byte (Redis's `repl_backlog_first_byte_offset`).
    first: i64,
    active: bool,
}

/// What the hub and the commands share.
struct Hub {
    backlog: Backlog,
    replicas: Vec<Arc<Replica>>,
    /// Replicas waiting for the cut of their full sync, by sync id and client id.
    waiting: BTreeMap<(u64, u64), Arc<Replica>>,
    /// Diskless syncs in their `repl-diskless-sync-delay`: replicas arriving meanwhile
    /// join one and share its RDB (`sync`).
    forming: Vec<sync::Group>,
    /// WAIT tokens resolved to offsets.
    tokens: BTreeMap<u64, i64>,
    /// Per shard, the offsets by which its last deliveries were out: (sequence number,
    /// offset), oldest first, at most `FED_KEPT`.
    fed: Vec<VecDeque<(u64, i64)>>,
    /// A WAIT asked the replicas for their offsets.
    getack: bool,
    /// When the last replica went (the backlog is freed `repl-backlog-ttl` later).
    alone_since: Option<Instant>,
    /// The merged output is a primary's stream applied here, not ours.
    following: bool,
}

static HUB: Mutex<Hub> = Mutex::new(Hub {
    backlog: Backlog {
        buf: VecDeque::new(),
        first: 0,
        active: false,
    },
    replicas: Vec::new(),
    waiting: BTreeMap::new(),
    forming: Vec::new(),
    tokens: BTreeMap::new(),
    fed: Vec::new(),
    getack: false,
    alone_since: None,
    following: false,
});

fn hub() -> MutexGuard<'static, Hub> {
    lock(&HUB)
}

static SYNC_FULL: AtomicU64 = AtomicU64::new(0);
static SYNC_PARTIAL_OK: AtomicU64 = AtomicU64::new(0);
static SYNC_PARTIAL_ERR: AtomicU64 = AtomicU64::new(0);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);
/// `min-replicas-to-write` when it is in force (0: not).
static MIN_TO_WRITE: AtomicU64 = AtomicU64::new(0);
/// Every core copies its journal to the hub.
static ACTIVE: AtomicBool = AtomicBool::new(false);
static ACTIVATING: AtomicBool = AtomicBool::new(false);

/// Deliveries of a shard whose offsets the hub keeps for WAIT: an older one counts as out by
/// the oldest kept (a later point, so WAIT may wait longer, never less).
const FED_KEPT: usize = 1024;

/// Each shard's next delivery's sequence number (`feed`), once replication is active.
static FEEDS: OnceLock<Box<[AtomicU64]>> = OnceLock::new();

/// The sequence number of shard `shard`'s next delivery to the hub: a record its journal
/// holds now goes out with it or with an earlier one.
pub fn feed_seq(shard: usize) -> u64 {
    FEEDS
        .get()
        .and_then(|f| f.get(shard))
        .map_or(0, |s| s.load(Ordering::SeqCst))
}

/// What cores tell the hub.
enum Msg {
    /// A delivery of a shard's records, with its sequence number.
    Records(usize, Vec<u8>, u64),
    Begin(usize, TxId),
    Mark(usize, TxId, u64),
    Token(usize, u64),
    /// A token that carries a command to send out (PUBLISH) once every shard passed it.
    Publish(usize, u64, Cmd),
    /// Everything before came from applying a primary's stream (see `promoted`).
    Promoted,
}

static HUB_TX: OnceLock<Sender<Msg>> = OnceLock::new();

fn send(msg: Msg) {
    if let Some(tx) = HUB_TX.get() {
        let _ = tx.send(msg);
    }
}

/// At start-up (every core): the hook told of lock grants.
pub fn init(config: &crate::config::Config) {
    crate::core::shard_lock::set_grant_hook(granted);
    configure(config);
}

/// Copies what this core's journal collected to the hub (every event-loop pass, and before
/// anything the hub must see after those records).
pub fn feed(core: &Core) {
    deliver(core, false);
}

/// [`feed`]; with `always`, a delivery is sent even with nothing collected, so its sequence
/// number passes.
fn deliver(core: &Core, always: bool) {
    let bytes = {
        let mut shard = core.shard.borrow_mut();
        if shard.journal.as_ref().is_none_or(|j| j.feed.is_none()) {
            return;
        }
        shard.journal_reaped();
        match shard.journal.as_mut().and_then(|j| j.feed.as_mut()) {
            Some(f) if !f.is_empty() => std::mem::take(f),
            _ if always => Vec::new(),
            _ => return,
        }
    };
    let Some(seq) = FEEDS.get().and_then(|f| f.get(core.id)) else {
        return;
    };
    send(Msg::Records(
        core.id,
        bytes,
        seq.fetch_add(1, Ordering::SeqCst),
    ));
}

/// Sends this core's delivery `seq` unless it went already (a WAIT needs it out).
fn deliver_through(core: &Core, seq: u64) {
    if feed_seq(core.id) <= seq {
        deliver(core, true);
    }
}

fn feeding(core: &Core) -> bool {
    core.shard
        .borrow()
        .journal
        .as_ref()
        .is_some_and(|j| j.feed.is_some())
}

/// The shard granted `tx` its lock.
fn granted(core: &Core, tx: TxId) {
    if feeding(core) {
        feed(core);
        send(Msg::Begin(core.id, tx));
    }
}

/// Turns the journal's copy on on every core (once), under the lock of every shard so that
/// no transaction is half copied; starts the hub.
async fn activate(core: &Rc<Core>) {
    while !ACTIVE.load(Ordering::SeqCst) {
        if ACTIVATING
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            core.sleep(Duration::from_millis(5)).await;
            continue;
        }
        let shards = core.shards;
        FEEDS.get_or_init(|| (0..shards).map(|_| AtomicU64::new(0)).collect());
        HUB_TX.get_or_init(|| {
            let (tx, rx) = mpsc::channel();
            let spawned = std::thread::Builder::new()
                .name("repl-hub".into())
                .spawn(move || run_hub(shards, rx));
            if let Err(e) = spawned {
                warn!("cannot start the replication thread: {e}");
            }
            tx
        });
        let held = crate::coord::txn::lock(core, crate::coord::txn::plan_all(shards)).await;
        core.broadcast(|c| c.shard.borrow_mut().set_journal_feed(true))
            .await;
        ACTIVE.store(true, Ordering::SeqCst);
        crate::coord::txn::unlock(core, held).await;
    }
}

// ------------------------------------------------------------------------------------------
// The hub.

fn run_hub(shards: usize, rx: mpsc::Receiver<Msg>) {
    let mut merger = Merger::new(shards);
    let mut last_ping = Instant::now();
    let mut last_check = Instant::now();
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(msg) => {
                take(&mut merger, msg);
                while let Ok(msg) = rx.try_recv() {
                    take(&mut merger, msg);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let s = settings();
        // Nothing of ours while a FAILOVER waits for its target to reach our offset.
        if !failover::active() {
            let mut h = hub();
            if h.getack {
                h.getack = false;
                merger.raw(&merge::encode(&[b"REPLCONF", b"GETACK", b"*"]));
            }
            if !h.replicas.is_empty() && last_ping.elapsed().as_secs() >= s.ping_period {
                last_ping = Instant::now();
                merger.raw(&merge::encode(&[b"PING"]));
            }
        }
        distribute(&mut merger, &s);
        if last_check.elapsed() >= Duration::from_millis(500) {
            last_check = Instant::now();
            check(&s);
        }
    }
}

/// Turns a core's message into the merger's inputs.
fn take(merger: &mut Merger, msg: Msg) {
    match msg {
        Msg::Records(shard, bytes, seq) => {
            let mut at = 0;
            while at < bytes.len() {
                match aof::decode(&bytes[at..]) {
                    Frame::Record(r, n) => {
                        at += n;
                        if let Some(input) = input_of(r) {
                            merger.push(shard, input);
                        }
                    }
                    _ => {
                        warn!("replication: an unreadable journal record was skipped");
                        break;
                    }
                }
            }
            merger.push(shard, Input::Fed(seq));
        }
        Msg::Begin(shard, tx) => merger.push(shard, Input::Begin(tx)),
        Msg::Mark(shard, tx, sync) => merger.push(shard, Input::Mark { tx, sync }),
        Msg::Token(shard, token) => merger.push(shard, Input::Token(token)),
        Msg::Promoted => {
            merger.out.clear();
            merger.resolved.clear();
            merger.forget_db();
            hub().following = false;
        }
        Msg::Publish(shard, token, cmd) => {
            merger.attach(token, cmd);
            merger.push(shard, Input::Token(token));
        }
    }
}

/// A journal record as the command a Redis replica runs.
fn input_of(r: Record<'_>) -> Option<Input> {
    let (tx, db, resp, keyless) = match r {
        Record::Command { tx, db, args, .. } => {
            let keyless = tx != 0 && is_keyless(&args);
            (tx, db, merge::encode(&args), keyless)
        }
        Record::Put {
            tx,
            db,
            key,
            expire_ms,
            value,
        } => {
            let payload = shardis_persist::dump::seal(value.to_vec());
            let ttl = expire_ms.unwrap_or(0).to_string();
            let argv: [&[u8]; 6] = [
                b"RESTORE",
                key,
                ttl.as_bytes(),
                &payload,
                b"REPLACE",
                b"ABSTTL",
            ];
            (tx, db, merge::encode(&argv), false)
        }
        Record::Del { tx, db, key } => (tx, db, merge::encode(&[b"DEL", key]), false),
        // A run marker of the log.
        Record::TxEnd { participants, .. } if participants.is_empty() => return None,
        Record::TxEnd { tx, participants } => return Some(Input::End { tx, participants }),
    };
    Some(Input::Cmd {
        tx,
        cmd: Cmd { db, resp, keyless },
    })
}

/// A command without keys (FLUSHALL, SWAPDB…), which a transaction runs on every shard.
fn is_keyless(args: &[&[u8]]) -> bool {
    let args: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a)).collect();
    match shardis_engine::command::lookup(&args) {
        // A runtime command (PUBLISH) is logged on one shard only, however many took part.
        Ok(cmd) if matches!(cmd.exec, shardis_engine::Exec::Shard(_)) => {
            let mut keys = Vec::new();
            cmd.key_indexes(&args, &mut keys);
            keys.is_empty()
        }
        _ => false,
    }
}

/// Appends the merged output to the backlog and the replicas, handling what happened along
/// it (full syncs' cuts, WAIT tokens) at its place.
fn distribute(merger: &mut Merger, s: &Settings) {
    if merger.out.is_empty() && merger.resolved.is_empty() {
        return;
    }
    let out = std::mem::take(&mut merger.out);
    let resolved = std::mem::take(&mut merger.resolved);
    let mut h = hub();
    // What merges here while this server follows a primary (until the hub knows it no
    // longer does, see `promoted`) is not a stream of ours: its replicas get the primary's
    // (`applied`).
    if replica::is_replica() || h.following {
        h.following = true;
        return;
    }
    let mut at = 0;
    for (pos, what) in resolved {
        let pos = pos.min(out.len());
        append(&mut h, &out[at..pos], s);
        at = pos;
        let offset = replica::offset();
        match what {
            Resolved::Sync(id) => send_rdb_from(&mut h, id, offset),
            Resolved::Token(id, back) => {
                h.tokens.insert(id, offset - back as i64);
            }
            Resolved::Fed(shard, seq, back) => {
                let shard = shard as usize;
                if h.fed.len() <= shard {
                    h.fed.resize_with(shard + 1, VecDeque::new);
                }
                let ring = &mut h.fed[shard];
                if ring.len() >= FED_KEPT {
                    ring.pop_front();
                }
                ring.push_back((seq, offset - back as i64));
            }
        }
    }
    append(&mut h, &out[at..], s);
}

/// The replicas waiting for the cut of sync `sync`, no longer waiting.
fn take_waiting(h: &mut Hub, sync: u64) -> Vec<Arc<Replica>> {
    let keys: Vec<(u64, u64)> = h
        .waiting
        .range((sync, 0)..=(sync, u64::MAX))
        .map(|(k, _)| *k)
        .collect();
    keys.iter().filter_map(|k| h.waiting.remove(k)).collect()
}

fn ensure_backlog(h: &mut Hub) {
    if !h.backlog.active {
        h.backlog.active = true;
        h.backlog.buf.clear();
        h.backlog.first = replica::offset() + 1;
    }
}

fn append(h: &mut Hub, bytes: &[u8], s: &Settings) {
    if bytes.is_empty() {
        return;
    }
    ensure_backlog(h);
    replica::advance_offset(bytes.len() as i64);
    append_stream(h, bytes, s);
}

/// A replica applied `bytes` of its primary's stream: its offset grows by them and, while
/// it serves replicas of its own, they go to the backlog and to those replicas as they
/// came, as Redis 7.0 forwards what it applied (so every replica down the chain has the
/// same history and offsets). Under the hub's lock, so a PSYNC sees the backlog and the
/// offset agree.
pub fn applied(bytes: &[u8]) {
    let mut h = hub();
    replica::advance_offset(bytes.len() as i64);
    if !ACTIVE.load(Ordering::SeqCst) || bytes.is_empty() {
        return;
    }
    let start = replica::offset() - bytes.len() as i64 + 1;
    let b = &mut h.backlog;
    if !b.active || b.first + b.buf.len() as i64 != start {
        b.active = true;
        b.buf.clear();
        b.first = start;
    }
    append_stream(&mut h, bytes, &settings());
}

/// A full sync of this replica's own replicas was cut where its stream stood at `offset`:
/// what it applies from now on is theirs (see `sync::run`).
fn start_from(sync: u64, offset: i64) {
    send_rdb_from(&mut hub(), sync, offset);
}

/// The replicas waiting for full sync `sync` start receiving its snapshot; the stream they
/// follow afterwards starts at `offset`.
fn send_rdb_from(h: &mut Hub, sync: u64, offset: i64) {
    for r in take_waiting(h, sync) {
        let mut st = lock(&r.st);
        st.phase = Phase::SendRdb;
        st.start = offset;
        drop(st);
        r.wake.notify_all();
        h.replicas.push(r);
    }
}

/// Adds stream bytes (already counted in the offset) to the backlog and every replica.
fn append_stream(h: &mut Hub, bytes: &[u8], s: &Settings) {
    let b = &mut h.backlog;
    b.buf.extend(bytes);
    let over = b.buf.len().saturating_sub(s.backlog_size);
    if over > 0 {
        b.buf.drain(..over);
        b.first += over as i64;
    }
    let now = Instant::now();
    for r in &h.replicas {
        let mut st = lock(&r.st);
        if st.closed || st.phase == Phase::WaitCut {
            continue;
        }
        st.buf.extend_from_slice(bytes);
        let len = st.buf.len() as u64;
        let l = s.limit;
        let hard = l.hard > 0 && len >= l.hard;
        let soft = l.soft > 0 && len >= l.soft;
        if soft {
            st.soft_since.get_or_insert(now);
        } else {
            st.soft_since = None;
        }
        let soft_over = st
            .soft_since
            .is_some_and(|t| now.duration_since(t).as_secs() >= l.soft_secs);
        drop(st);
        if hard || soft && soft_over {
            warn!(
                "Client id={} addr={} scheduled to be closed ASAP for overcoming of output buffer limits.",
                r.id, r.addr
            );
            r.close("output buffer limit");
        } else {
            r.wake.notify_all();
        }
    }
}

/// Drops closed links, times out silent replicas, frees the backlog once alone too long.
fn check(s: &Settings) {
    let mut h = hub();
    for r in &h.replicas {
        let st = lock(&r.st);
        let silent =
            st.phase == Phase::Online && !st.closed && st.ack_at.elapsed().as_secs() > s.timeout;
        drop(st);
        if silent {
            warn!(
                "Disconnecting timedout replica (streaming sync): {}",
                r.addr
            );
            r.close("timeout");
        }
    }
    h.replicas.retain(|r| !r.closed());
    h.waiting.retain(|_, r| !r.closed());
    if h.replicas.is_empty() && h.waiting.is_empty() {
        let since = *h.alone_since.get_or_insert_with(Instant::now);
        if s.backlog_ttl > 0 && h.backlog.active && since.elapsed().as_secs() >= s.backlog_ttl {
            info!(
                "Replication backlog freed after {} seconds without connected replicas.",
                s.backlog_ttl
            );
            h.backlog.active = false;
            h.backlog.buf = VecDeque::new();
        }
    } else {
        h.alone_since = None;
    }
}

// ------------------------------------------------------------------------------------------
// Commands.

/// REPLCONF option value ...: what a replica says of itself before PSYNC. ACK and GETACK
/// from a client that is not a replica's link are ignored without a reply, as Redis does.
pub fn replconf(s: &mut Session, args: &[Bytes]) -> Option<Reply> {
    if args.len().is_multiple_of(2) {
        return Some(shardis_engine::error::syntax());
    }
    let mut hello = s.client.borrow().replica_hello.clone();
    for pair in args[1..].chunks(2) {
        let (opt, val) = (&pair[0], &pair[1]);
        match opt.to_ascii_lowercase().as_slice() {
            b"listening-port" => match std::str::from_utf8(val).ok().and_then(|v| v.parse().ok()) {
                Some(p) => hello.port = p,
                None => return Some(Reply::err("ERR value is not an integer or out of range")),
            },
            b"ip-address" => {
                if val.len() >= 46 {
                    return Some(Reply::err(
                        "ERR REPLCONF ip-address provided by replica instance is too long: 46 bytes or more",
                    ));
                }
                hello.ip = Some(String::from_utf8_lossy(val).into_owned());
            }
            b"capa" => {
                if val.eq_ignore_ascii_case(b"eof") {
                    hello.eof = true;
                } else if val.eq_ignore_ascii_case(b"psync2") {
                    hello.psync2 = true;
                }
            }
            b"ack" | b"getack" => return Some(Reply::Multiple(Vec::new())),
            _ => {
                return Some(Reply::error(format!(
                    "ERR Unrecognized REPLCONF option: {}",
                    String::from_utf8_lossy(opt)
                )))
            }
        }
    }
    s.client.borrow_mut().replica_hello = hello;
    Some(Reply::Ok)
}

/// PSYNC replid offset [FAILOVER], and SYNC: the connection becomes a replica's link. With
/// FAILOVER, our primary asks us to take its place first (it then follows us).
pub async fn psync(s: &mut Session, args: &[Bytes]) -> Option<Reply> {
    if args.len() > 3 && args[3].eq_ignore_ascii_case(b"failover") {
        warn!(
            "Failover request received for replid {}.",
            String::from_utf8_lossy(&args[1])
        );
        if !replica::is_replica() {
            return Some(Reply::err("ERR PSYNC FAILOVER can't be sent to a master."));
        }
        if !args[1].eq_ignore_ascii_case(replica::ids().0.as_bytes()) {
            return Some(Reply::err(
                "ERR PSYNC FAILOVER replid must match my replid.",
            ));
        }
        replica::set_master(&s.core, None, None).await;
        info!(
            "MASTER MODE enabled (failover request from '{}')",
            s.client.borrow().addr
        );
    }
    if failover::active() {
        return Some(Reply::err("NOMASTERLINK Can't SYNC while failing over"));
    }
    // A replica serves its own replicas its primary's stream (see `applied`), once synced.
    if replica::is_replica() && !replica::link_up() {
        return Some(Reply::err(
            "NOMASTERLINK Can't SYNC while not connected with my master",
        ));
    }
    activate(&s.core).await;
    let old_sync = args.len() == 1;
    let (hello, id, addr, listed) = {
        let c = s.client.borrow();
        let cmd = if old_sync { "sync" } else { "psync" };
        (
            c.replica_hello.clone(),
            c.id,
            c.addr.clone(),
            Listed::of(&c, cmd),
        )
    };
    let r = Replica::new(id, addr, &hello, listed);
    let wanted = if old_sync {
        None
    } else {
        let offset = std::str::from_utf8(&args[2])
            .ok()
            .and_then(|o| o.parse::<i64>().ok());
        Some((String::from_utf8_lossy(&args[1]).into_owned(), offset))
    };
    // A partial resync when the id is ours (or our previous one, up to where it ended) and
    // the backlog still holds everything from the offset asked for.
    let partial = {
        let mut h = hub();
        ensure_backlog(&mut h);
        let (replid, replid2, second) = replica::ids();
        let master = replica::offset();
        let b = &h.backlog;
        let histlen = b.buf.len() as i64;
        let from = match &wanted {
            Some((id, Some(off)))
                if (*id == replid || *id == replid2 && *off <= second)
                    && *off >= b.first
                    && *off <= b.first + histlen =>
            {
                Some(*off)
            }
            _ => None,
        };
        match from {
            Some(off) => {
                let skip = (off - b.first) as usize;
                let backlog: Vec<u8> = b.buf.iter().skip(skip).copied().collect();
                {
                    let mut st = lock(&r.st);
                    st.phase = Phase::Online;
                    st.start = off - 1;
                    st.ack = off - 1;
                    st.buf = backlog;
                }
                h.replicas.push(r.clone());
                SYNC_PARTIAL_OK.fetch_add(1, Ordering::Relaxed);
                info!(
                    "Partial resynchronization request from {} accepted. Sending {} bytes of backlog starting from offset {off}.",
                    r.addr,
                    master + 1 - off
                );
                true
            }
            None => {
                if matches!(&wanted, Some((id, _)) if id != "?") {
                    SYNC_PARTIAL_ERR.fetch_add(1, Ordering::Relaxed);
                }
                SYNC_FULL.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    };
    let how = if partial {
        link::Start::Continue {
            psync2: hello.psync2,
        }
    } else {
        let s2 = settings();
        let diskless = s2.diskless && hello.eof && !old_sync;
        let (plan_tx, plan_rx) = mpsc::channel();
        let member = (r.clone(), plan_tx);
        let mut h = hub();
        // A diskless sync still in its delay takes this replica too, while it has room.
        let room = |g: &&mut sync::Group| s2.max_replicas == 0 || g.members.len() < s2.max_replicas;
        let joined = diskless
            .then(|| h.forming.iter_mut().find(|g| room(g)))
            .flatten()
            .map(|g| {
                g.members.push(member.clone());
                g.sync
            });
        match joined {
            Some(sync) => {
                h.waiting.insert((sync, r.id), r.clone());
                info!(
                    "Replica {} asks for synchronization; it joins the diskless sync waiting to start",
                    r.addr
                );
            }
            None => {
                let sync = NEXT_ID.fetch_add(1, Ordering::Relaxed);
                h.waiting.insert((sync, r.id), r.clone());
                let alone = if diskless {
                    h.forming.push(sync::Group {
                        sync,
                        members: vec![member],
                    });
                    None
                } else {
                    Some(member)
                };
                info!(
                    "Replica {} asks for synchronization; starting a full sync ({})",
                    r.addr,
                    if diskless {
                        "diskless"
                    } else {
                        "through a file"
                    }
                );
                // The task may start at once and look at the hub: not under its lock.
                drop(h);
                crate::core::spawn::spawn(sync::run(s.core.clone(), sync, alone));
            }
        }
        link::Start::Full {
            announce: !old_sync,
            diskless,
            plan: plan_rx,
        }
    };
    let nodelay = settings().nodelay;
    let link = r.clone();
    s.client.borrow_mut().handoff = Some(Box::new(move |fd, tls| {
        if fd < 0 {
            link.close("the connection could not be handed over");
        } else {
            link::start(link, fd, tls, how, nodelay);
        }
    }));
    None
}

/// Replicas that acknowledged at least `offset`.
fn acked(offset: i64) -> usize {
    hub()
        .replicas
        .iter()
        .filter(|r| {
            let st = lock(&r.st);
            !st.closed && st.phase == Phase::Online && st.ack >= offset
        })
        .count()
}

/// WAIT numreplicas timeout.
pub async fn wait(s: &mut Session, args: &[Bytes]) -> Reply {
    if replica::is_replica() {
        return Reply::err("ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.");
    }
    let Some(n) = std::str::from_utf8(&args[1])
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
    else {
        return Reply::err("ERR value is not an integer or out of range");
    };
    let timeout = match std::str::from_utf8(&args[2])
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
    {
        Some(t) if t < 0 => return Reply::err("ERR timeout is negative"),
        Some(t) => t as u64,
        None => return Reply::err("ERR timeout is not an integer or out of range"),
    };
    let target = write_offset(s).await;
    // Inside MULTI or a script: the count now, without waiting.
    if s.in_exec || s.from_script {
        return Reply::Int(acked(target) as i64);
    }
    let deadline = (timeout > 0).then(|| Instant::now() + Duration::from_millis(timeout));
    let mut asked = false;
    loop {
        let count = acked(target);
        if count as i64 >= n || deadline.is_some_and(|d| Instant::now() >= d) {
            return Reply::Int(count as i64);
        }
        if s.hangup.is_raised() {
            return Reply::Int(count as i64);
        }
        if !asked {
            asked = true;
            hub().getack = true;
        }
        s.core.sleep(Duration::from_millis(2)).await;
    }
}

/// WAIT's target for one client, Redis's `woff`: where the stream holds its last write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Woff {
    /// The offset after its last write (0: none yet).
    Known(i64),
    /// It wrote since the target `base` was known: for each shard that ran its writes, the
    /// delivery to the hub that carries them (`feeds`, see [`feed_seq`]); shards whose reply
    /// to a forwarded write has not come back (`awaiting`); and whether a write ran where
    /// neither is known (a transaction, a script, a command over several shards), so that
    /// WAIT takes the stream's position when it runs.
    Wrote {
        base: i64,
        feeds: Vec<(usize, u64)>,
        awaiting: Vec<usize>,
        anywhere: bool,
    },
}

impl Default for Woff {
    fn default() -> Woff {
        Woff::Known(0)
    }
}

impl Woff {
    /// The client is about to write.
    pub fn wrote(&mut self) {
        if let Woff::Known(base) = *self {
            *self = Woff::Wrote {
                base,
                feeds: Vec::new(),
                awaiting: Vec::new(),
                anywhere: false,
            };
        }
    }

    /// Its write ran on `shard`, whose delivery `seq` (or an earlier one) carries it.
    pub fn ran_on(&mut self, shard: usize, seq: u64) {
        if let Woff::Wrote { feeds, .. } = self {
            match feeds.iter_mut().find(|(s, _)| *s == shard) {
                Some((_, known)) => *known = (*known).max(seq),
                None => feeds.push((shard, seq)),
            }
        }
    }

    /// Its write went to `shard`'s core, which will say which delivery carries it.
    pub fn forwarded(&mut self, shard: usize) {
        if let Woff::Wrote { awaiting, .. } = self {
            if !awaiting.contains(&shard) {
                awaiting.push(shard);
            }
        }
    }

    /// Its write ran where no single delivery is known.
    pub fn anywhere(&mut self) {
        if let Woff::Wrote { anywhere, .. } = self {
            *anywhere = true;
        }
    }

    /// Whether a reply from `shard` may be its write's.
    pub fn awaits(&self, shard: usize) -> bool {
        matches!(self, Woff::Wrote { awaiting, .. } if awaiting.contains(&shard))
    }

    /// A reply came back from `shard`, which had delivered up to `seq` when it ran; `last`:
    /// nothing more is awaited from that shard, so every write sent there ran.
    pub fn replied(&mut self, shard: usize, seq: u64, last: bool) {
        self.ran_on(shard, seq);
        if let (Woff::Wrote { awaiting, .. }, true) = (&mut *self, last) {
            awaiting.retain(|s| *s != shard);
        }
    }
}

/// WAIT's target: the stream's position after this client's last write. Once it wrote, the
/// target is resolved at its next WAIT: where each delivery that carried its writes was out
/// (each shard sends the one it still holds), or, for writes whose delivery is not known,
/// where a token every core sends the hub resolves (the end of the last command out before
/// it, so it covers every write the client saw acknowledged). Without writes since, the
/// position found then still holds: no fresh acknowledgement is needed.
async fn write_offset(s: &mut Session) -> i64 {
    let woff = s.client.borrow().woff.clone();
    let target = match woff {
        Woff::Known(known) => return known,
        _ if !ACTIVE.load(Ordering::SeqCst) => 0,
        Woff::Wrote {
            base,
            feeds,
            awaiting,
            anywhere: false,
        } if awaiting.is_empty() => base.max(delivered(s, feeds).await),
        Woff::Wrote { .. } => stream_position(&s.core).await,
    };
    s.client.borrow_mut().woff = Woff::Known(target);
    target
}

/// Where the last of `feeds` (shard, delivery) went out.
async fn delivered(s: &Session, feeds: Vec<(usize, u64)>) -> i64 {
    for &(shard, seq) in &feeds {
        s.core
            .post(shard, Box::new(move |c| deliver_through(c, seq)));
    }
    loop {
        {
            let h = hub();
            let out: Option<Vec<i64>> = feeds
                .iter()
                .map(|&(shard, seq)| {
                    let ring = h.fed.get(shard)?;
                    // Not yet out while the newest out is older.
                    ring.back().filter(|(newest, _)| *newest >= seq)?;
                    ring.iter().find(|(n, _)| *n >= seq).map(|(_, off)| *off)
                })
                .collect();
            if let Some(out) = out {
                return out.into_iter().max().unwrap_or(0);
            }
        }
        // Became a replica meanwhile (the hub then resolves nothing of ours): WAIT counts.
        if replica::is_replica() {
            return 0;
        }
        s.core.sleep(Duration::from_millis(1)).await;
    }
}

/// The stream's position after everything every shard logged before this call (0 before
/// the hub runs): WAIT's target, and where a master paused for a cluster manual failover
/// stopped.
pub async fn stream_position(core: &Rc<Core>) -> i64 {
    if !ACTIVE.load(Ordering::SeqCst) {
        return 0;
    }
    let token = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    core.broadcast(move |c| {
        feed(c);
        send(Msg::Token(c.id, token));
    })
    .await;
    loop {
        if let Some(off) = hub().tokens.remove(&token) {
            return off;
        }
        core.sleep(Duration::from_millis(1)).await;
    }
}

/// PUBLISH and SPUBLISH reach the replicas (not the append-only log), as Redis 7.0
/// propagates them outside cluster mode: after every write the shards logged before them,
/// so a subscriber of a replica hears of a change once the replica has it. Inside a
/// transaction or a script (`within`: its id and the shard whose journal carries its
/// PUBLISHes, see `Session::publish_within`) it takes its place in that shard's part, so it
/// reaches the replicas between MULTI and EXEC, after that shard's commands before it.
pub fn propagate_publish(
    core: &Rc<Core>,
    db: usize,
    args: &[Bytes],
    within: Option<(TxId, usize)>,
) {
    if !ACTIVE.load(Ordering::Relaxed) || replica::is_replica() || crate::cluster::enabled() {
        return;
    }
    if let Some((tx, shard)) = within {
        // The transaction's earlier commands on `shard` have run; its later ones and the
        // release of its lock there follow this on the same queue.
        let args = args.to_vec();
        core.post(
            shard,
            Box::new(move |c| {
                if let Some(j) = &mut c.shard.borrow_mut().journal {
                    j.to_replicas(tx, db, &args);
                }
            }),
        );
        return;
    }
    let token = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let argv: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
    let cmd = Cmd {
        db: db as u32,
        resp: merge::encode(&argv),
        keyless: false,
    };
    feed(core);
    send(Msg::Publish(core.id, token, cmd));
    // Each other core passes the token after what its shard logged so far.
    for other in (0..core.shards).filter(|&c| c != core.id) {
        core.post(
            other,
            Box::new(move |c| {
                feed(c);
                send(Msg::Token(c.id, token));
            }),
        );
    }
}

/// Redis's refusal of writes while fewer than `min-replicas-to-write` replicas lag less
/// than `min-replicas-max-lag` seconds.
#[inline]
pub fn writes_refused() -> Option<Reply> {
    too_few_replicas().then(|| Reply::err(NOREPLICAS))
}

pub const NOREPLICAS: &str = "NOREPLICAS Not enough good replicas to write.";

/// Fewer good replicas than `min-replicas-to-write` (and this server is a primary).
#[inline]
pub fn too_few_replicas() -> bool {
    let min = MIN_TO_WRITE.load(Ordering::Relaxed);
    min > 0 && !replica::is_replica() && good_replicas() < min as usize
}

fn good_replicas() -> usize {
    let max_lag = settings().max_lag;
    hub()
        .replicas
        .iter()
        .filter(|r| {
            let st = lock(&r.st);
            !st.closed && st.phase == Phase::Online && st.ack_at.elapsed().as_secs() <= max_lag
        })
        .count()
}

/// CLIENT KILL's matching of replicas' links: closes those `matches(id, addr)` accepts.
pub fn kill(matches: impl Fn(u64, &str) -> bool) -> usize {
    let h = hub();
    let mut n = 0;
    for r in h.replicas.iter().chain(h.waiting.values()) {
        if !r.closed() && matches(r.id, &r.addr) {
            r.close("killed by CLIENT KILL");
            n += 1;
        }
    }
    n
}

/// CLIENT LIST's lines of the replicas' links, by client id: flags `S`, as Redis shows them.
/// The link's threads own the socket, so the input fields are 0 and the unsent stream is
/// the reply list (`omem`).
pub fn client_lines() -> Vec<(u64, String)> {
    let h = hub();
    h.replicas
        .iter()
        .chain(h.waiting.values())
        .filter_map(|r| {
            let st = lock(&r.st);
            if st.closed {
                return None;
            }
            let l = &r.listed;
            let omem = st.buf.len();
            let line = crate::core::client::ListLine {
                id: r.id,
                addr: &r.addr,
                laddr: &l.laddr,
                fd: l.fd,
                name: &l.name,
                age: l.created.elapsed().as_secs(),
                idle: st.ack_at.elapsed().as_secs(),
                flags: "S",
                db: l.db,
                sub: 0,
                psub: 0,
                ssub: 0,
                multi: -1,
                qbuf: 0,
                qbuf_free: 0,
                argv_mem: 0,
                multi_mem: 0,
                rbp: 0,
                obl: 0,
                oll: usize::from(omem > 0),
                omem,
                tot_mem: std::mem::size_of::<Replica>() + st.buf.capacity(),
                events: if omem > 0 { "rw" } else { "r" },
                cmd: if st.acked { "replconf" } else { l.cmd },
                user: &l.user,
                redir: -1,
                resp: l.resp,
                lib_name: &l.lib_name,
                lib_ver: &l.lib_ver,
            };
            Some((r.id, line.to_string()))
        })
        .collect()
}

/// Disconnects every replica and forgets the backlog (this server starts following a
/// primary: the stream it gets is not ours, and the backlog would not match our offsets if
/// we became a primary again).
pub fn disconnect_all() {
    disconnect_replicas();
    let mut h = hub();
    h.backlog.active = false;
    h.backlog.buf = VecDeque::new();
}

/// Closes every replica's link, keeping the backlog: they reconnect and continue with psync2
/// (Redis 7.0 tells its replicas of a new replication id this way).
pub fn disconnect_replicas() {
    kill(|_, _| true);
}

/// This replica became a primary: what its shards logged while it followed is its old
/// primary's stream, which its replicas have already; its own starts with a SELECT.
pub async fn promoted(core: &Rc<Core>) {
    if !ACTIVE.load(Ordering::SeqCst) {
        return;
    }
    core.broadcast(|c| feed(c)).await;
    send(Msg::Promoted);
}

/// A replica's listening address, as FAILOVER TO names it and the target's link states it.
fn listens_at(r: &Replica, host: &str, port: i64) -> bool {
    r.ip.eq_ignore_ascii_case(host) && i64::from(r.port) == port
}

/// Whether any replica is connected (in any state).
fn has_replicas() -> bool {
    let h = hub();
    h.replicas
        .iter()
        .chain(h.waiting.values())
        .any(|r| !r.closed())
}

/// The replica listening at `host:port`: whether it is online, if connected.
fn replica_online(host: &str, port: i64) -> Option<bool> {
    let h = hub();
    if h.waiting
        .values()
        .any(|r| !r.closed() && listens_at(r, host, port))
    {
        return Some(false);
    }
    h.replicas
        .iter()
        .find(|r| !r.closed() && listens_at(r, host, port))
        .map(|r| lock(&r.st).phase == Phase::Online)
}

/// A replica that acknowledged our whole stream (the one at `target` if named): its
/// listening address.
fn caught_up(target: Option<&(String, u16)>) -> Option<(String, u16)> {
    let h = hub();
    let offset = replica::offset();
    h.replicas.iter().find_map(|r| {
        let st = lock(&r.st);
        let wanted = target.is_none_or(|(host, port)| listens_at(r, host, i64::from(*port)));
        (wanted && !st.closed && st.phase == Phase::Online && st.ack >= offset)
            .then(|| (r.ip.clone(), r.port))
    })
}

/// INFO replication's lines about replicas (`connected_slaves`, `slaveN`), and the backlog's.
pub fn info() -> (String, String) {
    let h = hub();
    let mut lines = String::new();
    let mut n = 0;
    for r in &h.replicas {
        let st = lock(&r.st);
        if st.closed {
            continue;
        }
        let state = match st.phase {
            Phase::WaitCut => "wait_bgsave",
            Phase::SendRdb => "send_bulk",
            Phase::Online => "online",
        };
        lines.push_str(&format!(
            "slave{n}:ip={},port={},state={state},offset={},lag={}\r\n",
            r.ip,
            r.port,
            st.ack,
            st.ack_at.elapsed().as_secs()
        ));
        n += 1;
    }
    for r in h.waiting.values() {
        if r.closed() {
            continue;
        }
        lines.push_str(&format!(
            "slave{n}:ip={},port={},state=wait_bgsave,offset=0,lag=0\r\n",
            r.ip, r.port
        ));
        n += 1;
    }
    let slaves = format!("connected_slaves:{n}\r\n{lines}");
    let b = &h.backlog;
    let backlog = format!(
        "repl_backlog_active:{}\r\nrepl_backlog_size:{}\r\nrepl_backlog_first_byte_offset:{}\r\nrepl_backlog_histlen:{}\r\n",
        u8::from(b.active),
        settings().backlog_size,
        if b.active { b.first } else { 0 },
        if b.active { b.buf.len() } else { 0 },
    );
    (slaves, backlog)
}

/// ROLE's list of replicas: [ip, port, offset] each.
pub fn role_replicas() -> Vec<Reply> {
    hub()
        .replicas
        .iter()
        .filter_map(|r| {
            let st = lock(&r.st);
            (!st.closed).then(|| {
                Reply::Array(vec![
                    Reply::bulk(r.ip.as_bytes()),
                    Reply::bulk(r.port.to_string().as_bytes()),
                    Reply::bulk(st.ack.to_string().as_bytes()),
                ])
            })
        })
        .collect()
}

/// INFO stats' counters: sync_full, sync_partial_ok, sync_partial_err.
pub fn sync_stats() -> (u64, u64, u64) {
    (
        SYNC_FULL.load(Ordering::Relaxed),
        SYNC_PARTIAL_OK.load(Ordering::Relaxed),
        SYNC_PARTIAL_ERR.load(Ordering::Relaxed),
    )
}
