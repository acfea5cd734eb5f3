//! Core 0's side of the link: loads a full sync into every shard and applies the command
//! stream through the ordinary command paths, as Redis's master client (its replies go
//! nowhere; REPLCONF GETACK asks the link for an ACK).
//!
//! The stream is parsed with the request parser; each command runs as a client's would, so
//! a command over several shards, and MULTI/EXEC, keep their atomicity through the same
//! two-phase lock. The offset counts the bytes of every whole command applied, as Redis's
//! `reploff`; a command cut by a lost link does not count, so `PSYNC` resumes at its start.
//! The bytes counted go on, as they came, to replicas of our own (`crate::primary::applied`),
//! and a full sync of one pauses the application where the data matches an offset
//! ([`pause`]).

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use shardis_resp::{Limits, RequestParser};
use tracing::{info, warn};

use super::link::{Back, Event};
use super::{is_getack, state, LinkState, GENERATION, LINK_UP, OFFSET};
use crate::conn::session::Session;
use crate::conn::{dispatch, multi};
use crate::coord::{route, txn};
use crate::core::client::Client;
use crate::core::{ConnRef, Core, Request};
use shardis_engine::Command;

/// How the master client is named to deliveries (it subscribes to nothing).
pub(crate) const MASTER_CONN: ConnRef = ConnRef(u64::MAX);
/// Commands sent to the shards together at most.
const MAX_GROUP: usize = 1024;
/// The longest pause between two looks at the link's queue when it is idle.
const MAX_IDLE: Duration = Duration::from_millis(8);

thread_local! {
    /// The master client's record (on core 0), as CLIENT LIST shows it.
    static MASTER: RefCell<Option<Rc<RefCell<Client>>>> = const { RefCell::new(None) };
    /// Full syncs of our own replicas waiting for the stream to pause (core 0), and whether
    /// a stream is being applied to pause.
    static PAUSES: RefCell<Vec<Arc<PauseSlot>>> = const { RefCell::new(Vec::new()) };
    static APPLYING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A pause of the stream's application asked for by a full sync of our own replicas.
#[derive(Default)]
struct PauseSlot {
    /// The offset the data stands at once paused; `WAITING` before, `NO_STREAM` if none.
    offset: AtomicI64,
    resumed: AtomicBool,
}

const WAITING: i64 = -1;
const NO_STREAM: i64 = -2;

/// The stream's application, paused at a point where the data is exactly the primary's
/// stream up to `offset` (no command half applied, no MULTI open); it resumes when this is
/// dropped. Polled on both sides: the applier and the full sync run on different cores, and
/// the pause is rare.
pub struct Paused {
    pub offset: i64,
    slot: Arc<PauseSlot>,
}

impl Drop for Paused {
    fn drop(&mut self) {
        self.slot.resumed.store(true, Ordering::SeqCst);
    }
}

/// Pauses the stream's application (see [`Paused`]); None when no stream is applied.
pub async fn pause(core: &Rc<Core>) -> Option<Paused> {
    let slot = Arc::new(PauseSlot {
        offset: AtomicI64::new(WAITING),
        resumed: AtomicBool::new(false),
    });
    let asked = slot.clone();
    core.post(
        0,
        Box::new(move |_| {
            if APPLYING.get() {
                PAUSES.with_borrow_mut(|p| p.push(asked));
            } else {
                asked.offset.store(NO_STREAM, Ordering::SeqCst);
            }
        }),
    );
    loop {
        match slot.offset.load(Ordering::SeqCst) {
            WAITING => core.sleep(Duration::from_millis(1)).await,
            NO_STREAM => {
                slot.resumed.store(true, Ordering::SeqCst);
                return None;
            }
            offset => return Some(Paused { offset, slot }),
        }
    }
}

/// Grants the pauses asked for, one after another: called where nothing is in flight.
async fn serve_pauses(core: &Core) {
    while let Some(slot) = PAUSES.with_borrow_mut(|p| p.pop()) {
        slot.offset
            .store(OFFSET.load(Ordering::SeqCst), Ordering::SeqCst);
        while !slot.resumed.load(Ordering::SeqCst) {
            core.sleep(Duration::from_millis(1)).await;
        }
    }
}

/// The applier is gone: no pause will be granted.
struct StopsApplying;

impl Drop for StopsApplying {
    fn drop(&mut self) {
        APPLYING.set(false);
        for slot in PAUSES.take() {
            slot.offset.store(NO_STREAM, Ordering::SeqCst);
        }
    }
}

/// CLIENT LIST's line of the master client (flags `M`) while the link is up, as Redis lists
/// its master client: on core 0, which applies the stream; nothing elsewhere.
pub fn listed(now_ms: u64) -> Option<(u64, String)> {
    if !LINK_UP.load(Ordering::SeqCst) {
        return None;
    }
    MASTER.with_borrow(|m| {
        let c = m.as_ref()?.borrow();
        Some((c.id, c.info_line(now_ms)))
    })
}

/// The link is up: the master client takes the socket's addresses and starts its age, as
/// Redis makes a new master client for each connection.
fn link_up(client: &RefCell<Client>, now_ms: u64) {
    let mut c = client.borrow_mut();
    if let Some(sock) = super::LINK_SOCKET
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
    {
        let addr =
            |a: std::io::Result<std::net::SocketAddr>| a.map(|a| a.to_string()).unwrap_or_default();
        c.addr = addr(sock.peer_addr());
        c.laddr = addr(sock.local_addr());
        c.fd = std::os::fd::AsRawFd::as_raw_fd(sock);
    }
    c.created = std::time::Instant::now();
    c.last_active_ms = now_ms;
}

/// The stream being applied.
struct Applier {
    session: Session,
    parser: RequestParser,
    buf: BytesMut,
    args: Vec<Bytes>,
    /// Bytes received that no whole command applied has counted yet, and those bytes (our
    /// own replicas get them as they came once applied).
    pending: i64,
    unapplied: BytesMut,
    /// A protocol error: the rest is ignored until the link reconnects.
    broken: bool,
    back: SyncSender<Back>,
    /// Commands for single shards not sent yet (sent together, one batch per shard, as a
    /// pipelining client's are), and the stream bytes they stand for.
    group: Vec<(usize, Request)>,
    group_bytes: i64,
}

impl Applier {
    /// Forgets a command cut short and the master client's transaction (Redis frees the
    /// master client when its link drops).
    fn reset(&mut self) {
        self.group.clear();
        self.group_bytes = 0;
        self.parser = RequestParser::new();
        self.buf.clear();
        self.pending = 0;
        self.unapplied.clear();
        self.broken = false;
        self.session.multi = None;
        self.session.client.borrow_mut().db = 0;
    }

    /// Applies every whole command in the buffer. A command's bytes count in the offset once
    /// it has run.
    async fn apply(&mut self, generation: u64) {
        let limits = Limits::default();
        while !self.broken && GENERATION.load(Ordering::SeqCst) == generation {
            match self
                .parser
                .next_into(&mut self.buf, &limits, &mut self.args)
            {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    warn!("protocol error from the primary: {}", e.message());
                    self.broken = true;
                    // The link reconnects and resumes after the last whole command.
                    let _ = self.back.try_send(Back::Drop);
                    break;
                }
            }
            let args = std::mem::take(&mut self.args);
            let size = self.pending - self.buf.len() as i64;
            self.pending = self.buf.len() as i64;
            if is_getack(&args) {
                // The offset before GETACK, as Redis's `replicationSendAck`.
                self.flush().await;
                let _ = self
                    .back
                    .try_send(Back::AckNow(OFFSET.load(Ordering::SeqCst)));
                self.count(size);
                continue;
            }
            let cmd = match shardis_engine::lookup(&args) {
                Ok(cmd) => cmd,
                Err(e) => {
                    warn!("command from the primary refused: {e:?}");
                    self.group_bytes += size;
                    continue;
                }
            };
            self.session.client.borrow_mut().last_cmd = Some(cmd.name.as_str());
            let core = &self.session.core;
            let lone = self
                .session
                .multi
                .is_none()
                .then(|| route::lone_shard(cmd, &args, core.shards, core.id))
                .flatten();
            if let Some(shard) = lone {
                let db = self.session.db_resp3().0;
                let client = self.session.client.borrow().id;
                self.group.push((
                    shard,
                    Request {
                        cmd,
                        args,
                        db,
                        resp3: false,
                        track: None,
                        client,
                    },
                ));
                self.group_bytes += size;
                if self.group.len() >= MAX_GROUP {
                    self.flush().await;
                }
                continue;
            }
            self.flush().await;
            self.execute(cmd, args).await;
            self.count(size);
        }
        self.flush().await;
    }

    /// The next `n` bytes received are applied: they count in the offset and go on to our
    /// own replicas.
    fn count(&mut self, n: i64) {
        let n = usize::try_from(n).unwrap_or(0).min(self.unapplied.len());
        let bytes = self.unapplied.split_to(n);
        crate::primary::applied(&bytes);
    }

    /// Runs the grouped commands and counts them.
    async fn flush(&mut self) {
        if !self.group.is_empty() {
            let replies =
                txn::run_each(&self.session.core, std::mem::take(&mut self.group), None).await;
            if let Some(e) = replies.iter().find(|r| r.is_error()) {
                warn!("a command from the primary failed here: {e:?}");
            }
        }
        let counted = std::mem::take(&mut self.group_bytes);
        self.count(counted);
    }

    /// Runs a command the way a client's runs (over several shards, transactions, runtime
    /// commands).
    async fn execute(&mut self, cmd: &'static Command, args: Vec<Bytes>) {
        if self.session.multi.is_some() && !multi::runs_inside_multi(cmd) {
            multi::queue(&mut self.session, cmd, args);
            return;
        }
        // The primary's commands never block (it sends blocking pops as plain pops).
        self.session.in_exec = true;
        if let Some(reply) = dispatch::run(&mut self.session, cmd, args).await {
            if reply.is_error() {
                warn!("a command from the primary failed here: {reply:?}");
            }
        }
    }
}

/// Applies the link's events until REPLICAOF changes or the link stops.
pub async fn run(core: Rc<Core>, generation: u64, events: Receiver<Event>, back: SyncSender<Back>) {
    let user = core.acl.borrow().default_user().clone();
    let id = core.next_client_id();
    super::MASTER_ID.store(id, std::sync::atomic::Ordering::SeqCst);
    let client = Rc::new(RefCell::new(Client::new(
        (id, MASTER_CONN),
        -1,
        String::new(),
        String::new(),
        core.now_ms(),
        user,
        true,
    )));
    client.borrow_mut().master = true;
    MASTER.set(Some(client.clone()));
    let mut applier = Applier {
        session: Session::new(core.clone(), MASTER_CONN, client),
        parser: RequestParser::new(),
        buf: BytesMut::new(),
        args: Vec::new(),
        pending: 0,
        unapplied: BytesMut::new(),
        broken: false,
        back,
        group: Vec::new(),
        group_bytes: 0,
    };
    APPLYING.set(true);
    let _stops = StopsApplying;
    let mut idle = Duration::ZERO;
    while GENERATION.load(Ordering::SeqCst) == generation {
        if applier.session.multi.is_none() {
            serve_pauses(&core).await;
        }
        let event = match events.try_recv() {
            Ok(event) => event,
            Err(TryRecvError::Empty) => {
                // The link thread cannot wake this core: look again soon, less often while
                // nothing comes.
                idle = (idle * 2).clamp(Duration::from_millis(1), MAX_IDLE);
                core.sleep(idle).await;
                continue;
            }
            Err(TryRecvError::Disconnected) => return,
        };
        idle = Duration::ZERO;
        match event {
            Event::Data(bytes) => {
                applier.session.client.borrow_mut().last_active_ms = core.now_ms();
                if applier.broken {
                    continue;
                }
                applier.pending += bytes.len() as i64;
                applier.buf.extend_from_slice(&bytes);
                applier.unapplied.extend_from_slice(&bytes);
                applier.apply(generation).await;
                // Let the core's clients in between chunks.
                futures_lite::future::yield_now().await;
            }
            Event::FullSync {
                path,
                replid,
                offset,
            } => {
                applier.reset();
                // Our own replicas sync again with the new history (Redis 7.0 drops them and
                // frees the backlog here).
                crate::primary::disconnect_all();
                // Emptied as FLUSHALL empties (WATCH, client-side caching, blocked clients
                // learn of it), then loaded.
                if let Ok(flushall) = shardis_engine::lookup(&[Bytes::from_static(b"FLUSHALL")]) {
                    applier
                        .execute(flushall, vec![Bytes::from_static(b"FLUSHALL")])
                        .await;
                }
                match load(&core, &path).await {
                    Ok(()) => {
                        OFFSET.store(offset, Ordering::SeqCst);
                        let mut st = state();
                        st.replid = replid;
                        st.replid2 = "0".repeat(40);
                        st.second_offset = -1;
                        connected(&mut st);
                        link_up(&applier.session.client, core.now_ms());
                        info!("MASTER <-> REPLICA sync: Finished with success");
                    }
                    Err(e) => {
                        warn!("MASTER <-> REPLICA sync: failed loading the RDB: {e}");
                        applier.broken = true;
                        let _ = applier.back.try_send(Back::Drop);
                    }
                }
                let _ = std::fs::remove_file(&path);
            }
            Event::Continue { replid } => {
                applier.reset();
                let mut st = state();
                if let Some(id) = replid.filter(|id| *id != st.replid) {
                    // The primary's history changed (a failover): ours stays valid up to here.
                    st.replid2 = std::mem::replace(&mut st.replid, id);
                    st.second_offset = OFFSET.load(Ordering::SeqCst) + 1;
                    // Our replicas learn of the new id by reconnecting (psync2 continues).
                    crate::primary::disconnect_replicas();
                }
                connected(&mut st);
                link_up(&applier.session.client, core.now_ms());
            }
            Event::Lost => {
                applier.reset();
                let _ = applier.back.try_send(Back::Resumed);
            }
        }
    }
}

fn connected(st: &mut super::State) {
    st.link = LinkState::Connected;
    st.down_since = 0;
    LINK_UP.store(true, Ordering::SeqCst);
}

/// Loads the RDB at `path` into every shard (each core reads it and keeps its own keys, as at
/// start-up, and every core the function libraries). The cores load in time slices and
/// serve meanwhile: clients get `-LOADING` until every core is done, as from Redis while a
/// replica loads its full sync.
async fn load(core: &Rc<Core>, path: &Path) -> Result<(), String> {
    let path = path.to_string_lossy().into_owned();
    info!("MASTER <-> REPLICA sync: Loading DB in memory");
    crate::persist::loading::begin(core.shards);
    if let Ok(size) = std::fs::metadata(&path) {
        crate::persist::loading::add_total(size.len() * core.shards as u64);
    }
    let failures = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let report = failures.clone();
    core.broadcast(move |c| {
        let (c, path, report) = (c.clone(), path.clone(), report.clone());
        crate::core::spawn::spawn(async move {
            if let Err(e) = load_shard(&c, &path).await {
                if let Ok(mut f) = report.lock() {
                    f.push(e);
                }
            }
            crate::persist::loading::core_done();
        });
    })
    .await;
    while crate::persist::loading::active() {
        core.sleep(Duration::from_millis(1)).await;
    }
    let first = failures.lock().ok().and_then(|mut f| f.pop());
    first.map_or(Ok(()), Err)
}

/// One core's part of [`load`].
async fn load_shard(c: &Rc<Core>, path: &str) -> Result<u64, String> {
    c.shard.borrow_mut().set_keep_expired(true);
    let (id, shards) = (c.id, c.shards);
    let mine = |key: &[u8]| route::shard_of(key, shards) == id;
    // Every core keeps its copy of the primary's function libraries.
    let mut libraries = crate::script::functions::Libraries::default();
    let loaded =
        crate::persist::load::load_rdb(&c.shard, path, &mine, false, Some(&mut libraries), true)
            .await?;
    crate::script::state::with(|st| st.libraries.join(libraries, true))
        .map_err(|e| format!("Failed loading library, {e}"))?;
    Ok(loaded)
}
