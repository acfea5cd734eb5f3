//! Redis's cluster bus (`cluster-bus yes`): many processes form one cluster, each shard a
//! node speaking Redis 7.0's binary bus protocol on its own bus port, so Shardis nodes and
//! Redis nodes meet, gossip and agree on the slot map.
//!
//! The bus runs on one thread of its own, not on the cores: it is a low-traffic channel of
//! blocking sockets (a reader thread per link feeds it), and the cores' event loops stay as
//! they are. The thread owns every local node's state (`state::State`, one per shard: each a
//! full node with its own links, epochs and view) and nothing else; cores never share it.
//! They talk by messages: a CLUSTER command that changes the configuration is sent to the
//! thread, which answers it through the core's mesh queue; after every change the thread
//! sends the node's core a new immutable snapshot of its view (`view::Snapshot`), which the
//! core's routing (-MOVED, -CLUSTERDOWN) and its CLUSTER NODES/SLOTS/SHARDS/INFO read.
//!
//! A node's role drives the process's replication (`run_role_work`): a replica follows its
//! master's address with the replication code, a promoted one stops following, a master
//! asked for a manual failover holds writes. The replication code serves the whole process,
//! so a process whose node replicates runs that one node: `shards 1`, or any number of
//! shards behind one node (`cluster-node-per-shard no`, whose view every core reads).
//!
//! Where keys live does not change with the slot map: a process keeps slot `s`'s keys in
//! the shard of its static range (`route::shard_of_slot`), whichever of its nodes owns the
//! slot, and a node's client is forwarded there like any other.

pub mod conf;
pub mod msg;
pub mod state;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use shardis_resp::Reply;
use tracing::{info, warn};

use self::state::{Announce, Io, LinkId, Runtime, State};
use super::view::{LinkInfo, NodeInfo, Snapshot, UNOWNED};
use crate::config::Config;
use crate::core::mesh::Outside;
use crate::core::{shutdown_requested, wall_ms, Msg};
use crate::io::listen;

/// How often each node's clock runs (Redis's `clusterCron`: 10 times a second).
const TICK: Duration = Duration::from_millis(100);
/// A write to a link that does not drain in this long closes the link.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// A link's send buffer past this many bytes frees the link when `cluster-link-sendbuf-limit`
/// is 0 (Redis's "no limit"): a peer that sends PINGs and never reads the PONGs must not
/// grow this process without end. Thousands of an honest link's messages fit.
const SENDBUF_CEILING: u64 = 16 << 20;
const BACKLOG: i32 = 511;

/// A configuration change asked by a client of node `node`.
pub enum Op {
    AddSlots(Vec<u16>),
    DelSlots(Vec<u16>),
    SetConfigEpoch(i64),
    Meet {
        ip: String,
        port: i64,
        cport: i64,
    },
    Forget(Bytes),
    BumpEpoch,
    SaveConfig,
    Reset {
        hard: bool,
    },
    /// CLUSTER REPLICATE; `has_keys`: the process holds keys.
    Replicate {
        id: Bytes,
        has_keys: bool,
    },
    /// CLUSTER FAILOVER [FORCE|TAKEOVER].
    Failover {
        force: bool,
        takeover: bool,
    },
    /// The runtime holds writes for a manual failover since the stream reached this offset.
    MfPaused(u64),
    SetSlot(u16, state::SetSlot),
    /// CONFIG SET changed the announced addresses: each local node's, by node.
    Reannounce(Vec<Announce>),
    /// DEBUG CLUSTERLINK KILL: the links to and/or from a node.
    KillLinks {
        id: Bytes,
        to: bool,
        from: bool,
    },
}

type Done = Box<dyn FnOnce(Reply) + Send>;

enum Event {
    Accepted(usize, TcpStream),
    Connected(usize, LinkId, TcpStream),
    Frame(usize, LinkId, Vec<u8>, Handled),
    Closed(usize, LinkId),
    /// A change asked of node `.0` by a client of core `.1` (where the reply goes).
    Request(usize, usize, Op, Done),
    /// A client of node `.0` published (sharded: `.1`) message `.3` to channel `.2`.
    Publish(usize, bool, Bytes, Bytes),
}

/// Goes with a received frame to the bus thread and tells the link's reader, when dropped
/// (the frame handled, or dropped with the thread's queue), whether to read the next one:
/// a link has at most one frame waiting for the bus thread, as Redis reads a link's next
/// message only after processing the last, so a peer sending faster than the node handles
/// fills its socket's buffers, not this process's memory.
struct Handled {
    reader: SyncSender<bool>,
    /// The link is still the bus thread's (a freed link's reader stops, closing the socket
    /// even while the peer keeps writing).
    open: bool,
}

impl Drop for Handled {
    fn drop(&mut self) {
        let _ = self.reader.try_send(self.open);
    }
}

/// What start-up prepared before the cores run: the nodes, their files, their listeners.
struct Prepared {
    nodes: Vec<LocalNode>,
    /// The process's cores (one node each, or all behind the one node).
    cores: usize,
}

struct LocalNode {
    state: State,
    file: File,
    listeners: Vec<TcpListener>,
    /// The epochs (current, own config) the file last synced to disk held.
    synced_epochs: (u64, u64),
}

static PREPARED: Mutex<Option<Prepared>> = Mutex::new(None);
static REQUESTS: OnceLock<Sender<Event>> = OnceLock::new();
/// Each node's first snapshot, read by its core until the thread sends one.
static INITIAL: OnceLock<Vec<Arc<Snapshot>>> = OnceLock::new();

thread_local! {
    /// This core's node's latest snapshot.
    static SNAPSHOT: RefCell<Option<Arc<Snapshot>>> = const { RefCell::new(None) };
}

/// The settings the nodes read on every tick (CONFIG SET changes them).
static NODE_TIMEOUT: AtomicU64 = AtomicU64::new(15_000);
static VALIDITY_FACTOR: AtomicU64 = AtomicU64::new(10);
static PING_PERIOD_MS: AtomicU64 = AtomicU64::new(10_000);
static REPLICA_MIGRATION: AtomicBool = AtomicBool::new(true);
static NO_FAILOVER: AtomicBool = AtomicBool::new(false);
/// `cluster-link-sendbuf-limit` in bytes (0: [`SENDBUF_CEILING`]).
static SENDBUF_LIMIT: AtomicU64 = AtomicU64::new(0);
/// Bytes held by every link's send buffer (MEMORY STATS' `cluster.links`).
static LINKS_MEMORY: AtomicU64 = AtomicU64::new(0);

/// The bytes the links' send buffers hold now.
pub fn links_memory() -> u64 {
    LINKS_MEMORY.load(Ordering::Relaxed)
}

/// Reads the cluster settings the nodes follow (at start-up and after CONFIG SET).
pub fn configure(config: &Config) {
    NODE_TIMEOUT.store(
        config.get_u64("cluster-node-timeout").max(1),
        Ordering::Relaxed,
    );
    VALIDITY_FACTOR.store(
        config.get_u64("cluster-replica-validity-factor"),
        Ordering::Relaxed,
    );
    PING_PERIOD_MS.store(
        config
            .get_u64("repl-ping-replica-period")
            .saturating_mul(1000),
        Ordering::Relaxed,
    );
    REPLICA_MIGRATION.store(
        config.get_bool("cluster-allow-replica-migration"),
        Ordering::Relaxed,
    );
    NO_FAILOVER.store(
        config.get_bool("cluster-replica-no-failover"),
        Ordering::Relaxed,
    );
    SENDBUF_LIMIT.store(
        config.get_u64("cluster-link-sendbuf-limit"),
        Ordering::Relaxed,
    );
}

/// Brings node `st` up to date with the settings and the process's replication.
fn refresh(st: &mut State, now: u64) {
    st.node_timeout = NODE_TIMEOUT.load(Ordering::Relaxed);
    st.ha.validity_factor = VALIDITY_FACTOR.load(Ordering::Relaxed);
    st.ha.ping_period = PING_PERIOD_MS.load(Ordering::Relaxed);
    st.ha.allow_replica_migration = REPLICA_MIGRATION.load(Ordering::Relaxed);
    st.ha.no_failover = NO_FAILOVER.load(Ordering::Relaxed);
    st.ha.repl_offset = crate::replica::offset().max(0) as u64;
    st.ha.data_age = crate::replica::data_age_ms(now);
}

/// Whether the cluster bus runs (`cluster-enabled yes` and `cluster-bus yes`).
pub fn enabled() -> bool {
    INITIAL.get().is_some()
}

/// The node whose clients core `core` serves: its own, or the process's one node
/// (`cluster-node-per-shard no`, or one shard).
pub fn node_of(core: usize) -> usize {
    if one_node() {
        0
    } else {
        core
    }
}

/// Whether the process is one node (its only shard's, or all of them behind one:
/// `cluster-node-per-shard no`).
pub fn one_node() -> bool {
    INITIAL.get().is_some_and(|nodes| nodes.len() == 1)
}

/// The view of core `core`'s node.
pub fn snapshot(core: usize) -> Option<Arc<Snapshot>> {
    SNAPSHOT
        .with(|s| s.borrow().clone())
        .or_else(|| INITIAL.get()?.get(node_of(core)).cloned())
}

/// The configuration file of node `shard`: `cluster-config-file` for the first, with
/// `.<shard>` appended for the others.
pub fn file_name(config: &Config, shard: usize) -> String {
    let base = config.get("cluster-config-file");
    if shard == 0 {
        base.to_string()
    } else {
        format!("{base}.{shard}")
    }
}

/// Where node `shard` is announced.
fn announce(config: &Config, shard: usize) -> Announce {
    let addr = super::NodeAddr::of(config, shard, "");
    Announce {
        port: addr.port as u16,
        cport: addr.bus_port as u16,
        pport: addr.tls_port as u16,
        ip: config.get("cluster-announce-ip").to_string(),
    }
}

/// Where every local node is announced under `config` (None without the bus).
pub fn announcements(config: &Config) -> Option<Vec<Announce>> {
    let count = INITIAL.get()?.len();
    Some((0..count).map(|i| announce(config, i)).collect())
}

/// After CONFIG SET: every local node takes the addresses in `all` ([`announcements`]).
/// Answered once the views of the asking core's node show them.
pub async fn reannounce(core: usize, all: Vec<Announce>) {
    let _ = request(core, Op::Reannounce(all)).await;
}

/// At start-up, before the cores: loads or creates every node's configuration file (locked
/// for the life of the process) and binds the bus ports.
pub fn prepare(config: &Config, shards: usize) -> Result<(), String> {
    configure(config);
    let now = wall_ms();
    let timeout = config.get_u64("cluster-node-timeout");
    let count = if super::node_per_shard(config) {
        shards
    } else {
        1
    };
    let mut nodes = Vec::with_capacity(count);
    for shard in 0..count {
        let path = file_name(config, shard);
        let (file, text) = conf::open_locked(&path)?;
        let a = announce(config, shard);
        let state = if text.trim().is_empty() {
            State::new(state::random_name(), a.clone(), timeout, now)
        } else {
            conf::load(&text, a.clone(), timeout, now).map_err(|e| {
                format!("Unrecoverable error: corrupted cluster config file \"{path}\": {e}")
            })?
        };
        let mut listeners = Vec::new();
        let listen_port = super::NodeAddr::of(config, shard, "").bus_listen as u16;
        for b in listen::bind_addrs(config.get("bind"), listen_port)? {
            match listen::listen_alone(&b.addr, BACKLOG) {
                Ok(fd) => listeners.push(TcpListener::from(fd)),
                Err(e) if b.optional => warn!("cluster bus: could not bind {}: {e}", b.addr),
                Err(e) => {
                    return Err(format!(
                        "Could not bind the cluster bus port {}: {e}",
                        b.addr
                    ))
                }
            }
        }
        if listeners.is_empty() {
            return Err("cluster bus: no address to listen on".into());
        }
        nodes.push(LocalNode {
            state,
            file,
            listeners,
            synced_epochs: (u64::MAX, u64::MAX),
        });
    }
    for node in &mut nodes {
        save(node)?;
    }
    let locals: Vec<msg::Name> = nodes.iter().map(|n| n.state.myself).collect();
    let initial = nodes
        .iter()
        .map(|n| Arc::new(snapshot_of(&n.state, &locals)))
        .collect();
    INITIAL
        .set(initial)
        .map_err(|_| "cluster bus prepared twice".to_string())?;
    if let Ok(mut p) = PREPARED.lock() {
        *p = Some(Prepared {
            nodes,
            cores: shards,
        });
    }
    Ok(())
}

/// Once the cores serve: starts the bus thread; `cores` reaches every core.
pub fn start(cores: Outside<Msg>) -> Result<(), String> {
    let Some(prepared) = PREPARED.lock().ok().and_then(|mut p| p.take()) else {
        return Ok(());
    };
    let (tx, rx) = channel();
    for (i, node) in prepared.nodes.iter().enumerate() {
        for l in &node.listeners {
            let l = l
                .try_clone()
                .map_err(|e| format!("cluster bus listener: {e}"))?;
            let tx = tx.clone();
            spawn_named(format!("bus-accept-{i}"), move || {
                for s in l.incoming() {
                    match s {
                        Ok(s) => {
                            if tx.send(Event::Accepted(i, s)).is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            warn!("cluster bus accept: {e}");
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                }
            })?;
        }
    }
    let _ = REQUESTS.set(tx.clone());
    let bus = Bus {
        nodes: prepared.nodes,
        core_count: prepared.cores,
        socks: HashMap::new(),
        events: tx,
        cores,
        waker: crate::metrics::Waker::new(),
    };
    spawn_named("cluster-bus".into(), move || bus.run(rx)).map(drop)
}

fn spawn_named(
    name: String,
    f: impl FnOnce() + Send + 'static,
) -> Result<std::thread::JoinHandle<()>, String> {
    std::thread::Builder::new()
        .name(name)
        .spawn(f)
        .map_err(|e| format!("cannot start a cluster bus thread: {e}"))
}

/// Sends `op` from a client of core `core` to the bus thread, for the core's node; the reply
/// comes back on that core.
pub async fn request(core: usize, op: Op) -> Reply {
    let (tx, rx) = futures_channel::oneshot::channel();
    let done: Done = Box::new(move |reply| {
        let _ = tx.send(reply);
    });
    let sent = REQUESTS.get().is_some_and(|s| {
        s.send(Event::Request(node_of(core), core, op, done))
            .is_ok()
    });
    if !sent {
        return Reply::err("ERR the cluster bus is not running");
    }
    rx.await
        .unwrap_or_else(|_| Reply::err("ERR the cluster bus did not answer"))
}

/// Carries a PUBLISH (SPUBLISH: `shard`) of a client of core `core` to the other nodes of
/// the cluster, after the process's own subscribers got it. Answers nothing: PUBLISH counts
/// only the receivers of the node it ran on, as in Redis.
pub fn publish(core: usize, shard: bool, channel: &Bytes, message: &Bytes) {
    if let Some(s) = REQUESTS.get() {
        let _ = s.send(Event::Publish(
            node_of(core),
            shard,
            channel.clone(),
            message.clone(),
        ));
    }
}

/// A link's socket: connecting (what to send once connected) or open.
enum Sock {
    Connecting(SendBuffer, Vec<Vec<u8>>),
    Open(TcpStream, SendBuffer, Sender<Vec<u8>>),
}

impl Sock {
    fn buffer(&self) -> &SendBuffer {
        match self {
            Sock::Connecting(b, _) | Sock::Open(_, b, _) => b,
        }
    }
}

/// The bytes queued on a link and not yet written (Redis's send buffer): added by the bus
/// thread, taken off by the link's writer as they reach the socket.
#[derive(Clone, Default)]
struct SendBuffer(Arc<AtomicU64>);

impl SendBuffer {
    /// Adds `n` bytes; the bytes now held.
    fn add(&self, n: u64) -> u64 {
        LINKS_MEMORY.fetch_add(n, Ordering::Relaxed);
        self.0.fetch_add(n, Ordering::Relaxed) + n
    }

    /// Takes off up to `n` bytes: never more than were added, whichever thread gets there
    /// first (the writer's last [`clear`](Self::clear) or the bus thread's failed send).
    fn take(&self, n: u64) {
        let before = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(n))
            })
            .unwrap_or(0);
        LINKS_MEMORY.fetch_sub(before.min(n), Ordering::Relaxed);
    }

    fn clear(&self) {
        self.take(u64::MAX);
    }
}

/// A link's writer: writes what the bus thread queues, in order, until the link goes
/// (its queue's sender dropped) or a write fails, which ends the reader too.
fn write_frames(mut s: TcpStream, queue: Receiver<Vec<u8>>, buffer: SendBuffer) {
    for bytes in &queue {
        if s.write_all(&bytes).is_err() {
            let _ = s.shutdown(Shutdown::Both);
            break;
        }
        buffer.take(bytes.len() as u64);
    }
    // Sends fail from here on, and the bus thread takes back what it adds then.
    drop(queue);
    buffer.clear();
}

struct Bus {
    nodes: Vec<LocalNode>,
    core_count: usize,
    socks: HashMap<(usize, LinkId), Sock>,
    events: Sender<Event>,
    cores: Outside<Msg>,
    waker: crate::metrics::Waker,
}

impl Bus {
    fn run(mut self, rx: Receiver<Event>) {
        info!("cluster bus running for {} node(s)", self.nodes.len());
        let mut next = Instant::now();
        let mut ticks = 0u64;
        loop {
            if shutdown_requested() {
                return;
            }
            let wait = next.saturating_duration_since(Instant::now());
            let mut done = Vec::new();
            match rx.recv_timeout(wait) {
                Ok(ev) => self.handle(ev, &mut done),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            while let Ok(ev) = rx.try_recv() {
                self.handle(ev, &mut done);
            }
            let mut publish_all = false;
            if Instant::now() >= next {
                next += TICK;
                if next < Instant::now() {
                    next = Instant::now() + TICK;
                }
                ticks += 1;
                let now = wall_ms();
                for n in &mut self.nodes {
                    refresh(&mut n.state, now);
                    n.state.cron(now);
                }
                // Ping and pong times move without a change of state: once a second.
                publish_all = ticks.is_multiple_of(10);
            }
            self.flush(publish_all);
            for (core, reply, d) in done {
                self.run_on_core(core, move || d(reply));
            }
        }
    }

    /// Handles `ev`; a request's reply joins `done` with the core it goes to.
    fn handle(&mut self, ev: Event, done: &mut Vec<(usize, Reply, Done)>) {
        let now = wall_ms();
        match ev {
            Event::Accepted(i, s) => {
                let (peer, local) = addrs(&s);
                let Some(n) = self.nodes.get_mut(i) else {
                    return;
                };
                if n.state.inbound_links() >= state::MAX_NODES {
                    // One inbound link per node at most is all a cluster needs; each costs
                    // a thread.
                    let _ = s.shutdown(Shutdown::Both);
                    return;
                }
                let link = n.state.accepted(now, peer, local);
                self.open(i, link, s, SendBuffer::default());
            }
            Event::Connected(i, link, s) => {
                let Some(Sock::Connecting(buffer, queued)) = self.socks.remove(&(i, link)) else {
                    // The link was closed while connecting.
                    let _ = s.shutdown(Shutdown::Both);
                    return;
                };
                let (peer, local) = addrs(&s);
                self.open(i, link, s, buffer);
                // Already counted in the buffer, which the open link keeps.
                if let Some(Sock::Open(_, _, queue)) = self.socks.get(&(i, link)) {
                    for bytes in queued {
                        let _ = queue.send(bytes);
                    }
                }
                if let Some(n) = self.nodes.get_mut(i) {
                    n.state.connected(link, now, peer, local);
                }
            }
            Event::Frame(i, link, bytes, mut handled) => {
                handled.open = self.socks.contains_key(&(i, link));
                if let Some(n) = self.nodes.get_mut(i) {
                    n.state.received(link, &bytes, now);
                }
            }
            Event::Closed(i, link) => {
                self.drop_link(i, link);
                if let Some(n) = self.nodes.get_mut(i) {
                    n.state.closed(link);
                }
            }
            Event::Publish(i, shard, channel, message) => {
                let locals: Vec<msg::Name> = self.nodes.iter().map(|n| n.state.myself).collect();
                if let Some(n) = self.nodes.get_mut(i) {
                    n.state.publish(shard, &channel, &message, &locals);
                }
            }
            Event::Request(_, core, Op::Reannounce(all), d) => {
                for (n, a) in self.nodes.iter_mut().zip(all) {
                    n.state.reannounce(a);
                }
                done.push((core, Reply::Ok, d));
            }
            Event::Request(i, core, op, d) => {
                let reply = match self.nodes.get_mut(i) {
                    Some(n) => {
                        refresh(&mut n.state, now);
                        apply(n, op, now)
                    }
                    None => Reply::err("ERR no such cluster node"),
                };
                done.push((core, reply, d));
            }
        }
    }

    /// Registers an open socket for link `link` of node `i` with its send buffer, and starts
    /// its reader and writer.
    fn open(&mut self, i: usize, link: LinkId, s: TcpStream, buffer: SendBuffer) {
        let _ = s.set_nodelay(true);
        let _ = s.set_write_timeout(Some(WRITE_TIMEOUT));
        let (queue, queued) = channel();
        let started = match (s.try_clone(), s.try_clone()) {
            (Ok(reader), Ok(writer)) => {
                let tx = self.events.clone();
                let read = spawn_named(format!("bus-link-{i}"), move || {
                    read_frames(reader, i, link, tx)
                });
                let sent = buffer.clone();
                read.is_ok()
                    && spawn_named(format!("bus-write-{i}"), move || {
                        write_frames(writer, queued, sent)
                    })
                    .is_ok()
            }
            _ => false,
        };
        if !started {
            // A reader alone ends with the socket.
            let _ = s.shutdown(Shutdown::Both);
            buffer.clear();
            if let Some(n) = self.nodes.get_mut(i) {
                n.state.closed(link);
            }
            return;
        }
        self.socks.insert((i, link), Sock::Open(s, buffer, queue));
    }

    /// Queues `bytes` on link `link` of node `i`. A link whose send buffer would pass
    /// `cluster-link-sendbuf-limit` is freed instead, as Redis frees it (the node connects
    /// again, or the peer does).
    fn write(&mut self, i: usize, link: LinkId, bytes: Vec<u8>) {
        let limit = match SENDBUF_LIMIT.load(Ordering::Relaxed) {
            0 => SENDBUF_CEILING,
            l => l,
        };
        let len = bytes.len() as u64;
        let Some(sock) = self.socks.get_mut(&(i, link)) else {
            return;
        };
        let buffer = sock.buffer().clone();
        let held = buffer.add(len);
        let queued = held <= limit
            && match sock {
                Sock::Open(_, _, queue) => queue.send(bytes).is_ok(),
                Sock::Connecting(_, q) => {
                    q.push(bytes);
                    true
                }
            };
        if queued {
            return;
        }
        buffer.take(len);
        if held > limit {
            if let Some(n) = self.nodes.get_mut(i) {
                n.state.links_freed_for_buffer += 1;
                n.state.changed = true;
            }
            warn!(
                "cluster bus: freeing a link of node {i} (send buffer {} bytes) for exceeding the send buffer limit",
                held - len
            );
        }
        self.drop_link(i, link);
        if let Some(n) = self.nodes.get_mut(i) {
            n.state.closed(link);
        }
    }

    fn drop_link(&mut self, i: usize, link: LinkId) {
        match self.socks.remove(&(i, link)) {
            // Ends the reader, and the writer, which empties the buffer.
            Some(Sock::Open(s, ..)) => {
                let _ = s.shutdown(Shutdown::Both);
            }
            Some(Sock::Connecting(buffer, _)) => buffer.clear(),
            None => {}
        }
    }

    /// Carries out every node's pending I/O, publishes changed views, saves changed
    /// configurations.
    fn flush(&mut self, publish_all: bool) {
        for i in 0..self.nodes.len() {
            // Sends can close links, which can queue more I/O: until quiet.
            loop {
                let io = std::mem::take(&mut self.nodes[i].state.io);
                if io.is_empty() {
                    break;
                }
                for op in io {
                    match op {
                        Io::Send(link, bytes) => self.write(i, link, bytes),
                        Io::Close(link) => self.drop_link(i, link),
                        Io::Connect { link, ip, port } => self.connect(i, link, ip, port),
                    }
                }
            }
            let locals: Vec<msg::Name> = self.nodes.iter().map(|n| n.state.myself).collect();
            self.deliver_published(i);
            let work = std::mem::take(&mut self.nodes[i].state.ha.runtime);
            if !work.is_empty() {
                let task: crate::core::Task = Box::new(move |core| queue_role_work(core, work));
                if let Some(ring) = self.cores.send(i, Msg::Run(task)) {
                    self.waker.wake(ring);
                }
            }
            let node = &mut self.nodes[i];
            let publish = node.state.changed || publish_all;
            if !node.state.save && !publish {
                continue;
            }
            // One snapshot for the file and the core: a walk over the slots each.
            let mut snap = snapshot_of(&node.state, &locals);
            if node.state.save {
                if let Err(e) = save_as(node, &snap) {
                    warn!("{e}");
                }
            }
            if publish {
                node.state.changed = false;
                snap.links = self.links_of(i);
                let snap = Arc::new(snap);
                for core in self.cores_of(i) {
                    let snap = snap.clone();
                    self.run_on_core(core, move || {
                        SNAPSHOT.with(|s| *s.borrow_mut() = Some(snap))
                    });
                }
            }
        }
    }

    /// Hands what node `i` received by PUBLISH and PUBLISHSHARD to the process's
    /// subscribers (every core's, through core 0's copy of the subscriptions). A node
    /// broadcasting a PUBLISH reaches every node of a process of several nodes: only the
    /// first one's copy is delivered. A PUBLISHSHARD reaches one node of the process (the
    /// one in the publisher's shard).
    fn deliver_published(&mut self, i: usize) {
        let published = std::mem::take(&mut self.nodes[i].state.published);
        for (shard, channel, message) in published {
            if !shard && i != 0 {
                continue;
            }
            let task: crate::core::Task = Box::new(move |core| {
                let (channel, message) = (Bytes::from(channel), Bytes::from(message));
                core.pubsub
                    .borrow_mut()
                    .publish(core.shards, &channel, &message, shard);
            });
            if let Some(ring) = self.cores.send(0, Msg::Run(task)) {
                self.waker.wake(ring);
            }
        }
    }

    /// The cores serving node `i`'s clients: its own, or every core for the process's one
    /// node.
    fn cores_of(&self, i: usize) -> std::ops::Range<usize> {
        if self.nodes.len() == 1 {
            0..self.core_count
        } else {
            i..i + 1
        }
    }

    /// Node `i`'s links as CLUSTER LINKS shows them, each with its send buffer.
    fn links_of(&self, i: usize) -> Vec<LinkInfo> {
        let Some(n) = self.nodes.get(i) else {
            return Vec::new();
        };
        n.state
            .described_links()
            .into_iter()
            .map(|l| LinkInfo {
                outbound: l.outbound,
                node: state::name_str(&l.node),
                create_time: l.ctime,
                connected: l.up,
                send_buffer: self
                    .socks
                    .get(&(i, l.id))
                    .map(|s| s.buffer().0.clone())
                    .unwrap_or_default(),
            })
            .collect()
    }

    fn connect(&mut self, i: usize, link: LinkId, ip: String, port: u16) {
        self.socks.insert(
            (i, link),
            Sock::Connecting(SendBuffer::default(), Vec::new()),
        );
        let tx = self.events.clone();
        let spawned = spawn_named(format!("bus-connect-{i}"), move || {
            let addr = ip
                .parse::<std::net::IpAddr>()
                .map(|ip| SocketAddr::new(ip, port));
            let ev = match addr.map(|a| TcpStream::connect_timeout(&a, Duration::from_secs(1))) {
                Ok(Ok(s)) => Event::Connected(i, link, s),
                _ => Event::Closed(i, link),
            };
            let _ = tx.send(ev);
        });
        if spawned.is_err() {
            self.socks.remove(&(i, link));
            self.nodes[i].state.closed(link);
        }
    }

    fn run_on_core(&mut self, core: usize, f: impl FnOnce() + Send + 'static) {
        let task: crate::core::Task = Box::new(move |_| f());
        if let Some(ring) = self.cores.send(core, Msg::Run(task)) {
            self.waker.wake(ring);
        }
    }
}

thread_local! {
    /// The core's queue of role work from the bus, carried out in order by one task.
    static ROLE_WORK: RefCell<(std::collections::VecDeque<Runtime>, bool)> =
        const { RefCell::new((std::collections::VecDeque::new(), false)) };
}

/// Queues node `node`'s role work on its core (see [`Runtime`]), starting the task that
/// carries it out unless it runs: a follow and the release of held writes after it never
/// overlap, so no held write runs on a node that has become a replica.
fn queue_role_work(core: &std::rc::Rc<crate::core::Core>, work: Vec<Runtime>) {
    let start = ROLE_WORK.with(|q| {
        let mut q = q.borrow_mut();
        q.0.extend(work);
        !std::mem::replace(&mut q.1, true)
    });
    if start {
        crate::core::spawn::spawn(run_role_work(core.clone()));
    }
}

async fn run_role_work(core: std::rc::Rc<crate::core::Core>) {
    loop {
        let next = ROLE_WORK.with(|q| {
            let mut q = q.borrow_mut();
            let next = q.0.pop_front();
            if next.is_none() {
                q.1 = false;
            }
            next
        });
        let Some(work) = next else { return };
        match work {
            Runtime::Follow { ip, port } => {
                info!("cluster: replicating {ip}:{port}");
                crate::replica::set_master(&core, Some((ip, port)), None).await;
            }
            Runtime::Promote => {
                info!("cluster: this node is a master now");
                crate::replica::set_master(&core, None, None).await;
            }
            Runtime::PauseWrites { until } => {
                core.broadcast(|c| c.pause_for_failover(true)).await;
                // The deadline holds even if the bus never releases the writes.
                let waiter = core.clone();
                crate::core::spawn::spawn(async move {
                    let wait = until.saturating_sub(wall_ms());
                    waiter.sleep(Duration::from_millis(wait)).await;
                    waiter.broadcast(|c| c.pause_for_failover(false)).await;
                });
                let offset = crate::primary::stream_position(&core).await;
                let offset = u64::try_from(offset).unwrap_or(0);
                let _ = request(core.id, Op::MfPaused(offset)).await;
            }
            Runtime::Unpause => {
                core.broadcast(|c| c.pause_for_failover(false)).await;
            }
            Runtime::DropSlots(slots) => {
                warn!(
                    "cluster: {} slot(s) this node served belong to another node now: deleting their keys",
                    slots.len()
                );
                for slot in slots {
                    let shard = crate::coord::route::shard_of_slot(slot, core.shards);
                    core.run_on(shard, move |c| drop_slot_keys(c, slot)).await;
                }
            }
        }
    }
}

/// Deletes the keys of `slot` on core `c`'s shard (database 0, the only one in cluster
/// mode), each by a DEL the log and the replicas see, as Redis's `delKeysInSlot`.
fn drop_slot_keys(c: &std::rc::Rc<crate::core::Core>, slot: u16) {
    let keys = c
        .shard
        .borrow()
        .dbs
        .first()
        .map(|db| db.keys_in_slot(slot, usize::MAX))
        .unwrap_or_default();
    for key in keys {
        let args = [Bytes::from_static(b"DEL"), key];
        if let Ok(del) = shardis_engine::lookup(&args) {
            c.execute_unserved(del, &args, 0, false, None, 0);
        }
    }
}

/// The peer's and our own IP of a socket.
fn addrs(s: &TcpStream) -> (String, String) {
    let ip = |a: std::io::Result<SocketAddr>| a.map(|a| a.ip().to_string()).unwrap_or_default();
    (ip(s.peer_addr()), ip(s.local_addr()))
}

/// A link's reader: whole messages to the bus thread, one at a time (see [`Handled`]),
/// until the socket ends. A message is at most [`msg::MAX_LEN`] bytes: a longer one, or
/// bytes that are no message, close the link.
fn read_frames(mut s: TcpStream, i: usize, link: LinkId, tx: Sender<Event>) {
    let (answer, next) = sync_channel(1);
    loop {
        let mut head = [0u8; 8];
        if s.read_exact(&mut head).is_err() {
            break;
        }
        let Ok(len) = msg::frame_len(&head) else {
            break;
        };
        let mut buf = head.to_vec();
        // Grows as bytes arrive: an announced length alone allocates nothing.
        let rest = (len - 8) as u64;
        match (&mut s).take(rest).read_to_end(&mut buf) {
            Ok(n) if n as u64 == rest => {}
            _ => break,
        }
        let handled = Handled {
            reader: answer.clone(),
            open: true,
        };
        if tx.send(Event::Frame(i, link, buf, handled)).is_err() || next.recv() != Ok(true) {
            break;
        }
    }
    let _ = s.shutdown(Shutdown::Both);
    let _ = tx.send(Event::Closed(i, link));
}

/// Carries out a configuration change on node `n`.
fn apply(n: &mut LocalNode, op: Op, now: u64) -> Reply {
    let st = &mut n.state;
    let result = match op {
        Op::AddSlots(slots) => st.assign(&slots, false),
        Op::DelSlots(slots) => st.assign(&slots, true),
        Op::SetConfigEpoch(e) => st.set_config_epoch(e),
        Op::Meet { ip, port, cport } => {
            if st.meet(&ip, port, cport, now) {
                Ok(())
            } else {
                Err(format!("ERR Invalid node address specified: {ip}:{port}"))
            }
        }
        Op::Forget(id) => st.forget(&id, now),
        Op::BumpEpoch => {
            let (bumped, epoch) = st.bump_epoch();
            let word = if bumped { "BUMPED" } else { "STILL" };
            return Reply::Simple(format!("{word} {epoch}").into());
        }
        Op::SaveConfig => {
            n.synced_epochs = (u64::MAX, u64::MAX);
            return match save(n) {
                Ok(()) => Reply::Ok,
                Err(e) => Reply::error(format!("ERR error saving the cluster node config: {e}")),
            };
        }
        Op::Reset { hard } => {
            st.reset(hard);
            Ok(())
        }
        Op::Replicate { id, has_keys } => st.replicate(&id, has_keys),
        Op::Failover { force, takeover } => st.manual_failover(force, takeover, now),
        Op::MfPaused(offset) => {
            st.mf_paused(offset, now);
            Ok(())
        }
        Op::SetSlot(slot, action) => st.set_slot(slot, action, now),
        Op::KillLinks { id, to, from } => st.kill_links(&id, to, from, now),
        // Carried out for every node at once (`Bus::handle`).
        Op::Reannounce(_) => Ok(()),
    };
    match result {
        Ok(()) => Reply::Ok,
        Err(e) => Reply::error(e),
    }
}

/// Writes node `n`'s configuration file; synced to disk when its epochs changed (or on
/// SAVECONFIG), as Redis syncs it for what must survive a crash: slot moves (SETSLOT, one
/// write per slot and node while resharding) are only written.
fn save(n: &mut LocalNode) -> Result<(), String> {
    let snap = snapshot_of(&n.state, &[]);
    save_as(n, &snap)
}

/// [`save`] with `snap`, node `n`'s view as it is now.
fn save_as(n: &mut LocalNode, snap: &Snapshot) -> Result<(), String> {
    let text = snap.config_text(n.state.last_vote_epoch);
    n.state.save = false;
    let epochs = (n.state.current_epoch, snap.myself().config_epoch);
    let sync = epochs != n.synced_epochs;
    conf::rewrite(&mut n.file, &text, sync)?;
    if sync {
        n.synced_epochs = epochs;
    }
    Ok(())
}

/// Node `st`'s view as clients read it.
pub fn snapshot_of(st: &State, locals: &[msg::Name]) -> Snapshot {
    let index: HashMap<msg::Name, u16> = st
        .nodes
        .keys()
        .enumerate()
        .map(|(i, n)| (*n, i as u16))
        .collect();
    // One pass over the slots (taken on every change, once per slot while resharding):
    // runs of one owner are looked up once, and every node's ranges are built together.
    let mut last: Option<(msg::Name, u16)> = None;
    let owner: Vec<u16> = st
        .slots
        .iter()
        .map(|o| match (o, last) {
            (None, _) => UNOWNED,
            (Some(n), Some((ln, li))) if ln == *n => li,
            (Some(n), _) => {
                let i = index.get(n).copied().unwrap_or(UNOWNED);
                last = Some((*n, i));
                i
            }
        })
        .collect();
    let mut ranges: Vec<Vec<(u16, u16)>> = vec![Vec::new(); st.nodes.len()];
    for (j, &o) in owner.iter().enumerate() {
        let Some(r) = ranges.get_mut(o as usize) else {
            continue;
        };
        match r.last_mut() {
            Some((_, b)) if *b as usize + 1 == j => *b = j as u16,
            _ => r.push((j as u16, j as u16)),
        }
    }
    let nodes = st
        .nodes
        .values()
        .enumerate()
        .map(|(i, n)| NodeInfo {
            id: state::name_str(&n.name),
            ip: n.ip.clone(),
            port: n.port,
            cport: n.cport,
            flags: n.flags,
            master: n.slaveof.as_ref().map(state::name_str),
            ping_sent: n.ping_sent,
            pong_received: n.pong_received,
            config_epoch: n.config_epoch,
            connected: st.link_up(&n.name) || n.name == st.myself,
            ranges: ranges.get_mut(i).map(std::mem::take).unwrap_or_default(),
            repl_offset: if n.name == st.myself {
                st.ha.repl_offset
            } else {
                n.repl_offset
            },
        })
        .collect();
    Snapshot {
        me: index.get(&st.myself).copied().unwrap_or(0) as usize,
        nodes,
        owner,
        ok: st.ok,
        current_epoch: st.current_epoch,
        sent: st.sent,
        received: st.received,
        local: st.nodes.keys().map(|n| locals.contains(n)).collect(),
        migrating: open_slots(&st.migrating, &index),
        importing: open_slots(&st.importing, &index),
        // The sockets' side: filled by the bus thread (`Bus::links_of`).
        links: Vec::new(),
        links_freed_for_buffer: st.links_freed_for_buffer,
    }
}

/// Slots being moved, with the other node's index in the view.
fn open_slots(open: &BTreeMap<u16, msg::Name>, index: &HashMap<msg::Name, u16>) -> Vec<(u16, u16)> {
    open.iter()
        .filter_map(|(&slot, n)| index.get(n).map(|&i| (slot, i)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_send_buffer_never_takes_back_more_than_it_added() {
        // The writer's last clear and the bus thread's failed send may both take the same
        // bytes back: the process-wide sum must not wrap.
        let before = links_memory();
        let b = SendBuffer::default();
        assert_eq!(b.add(10), 10);
        b.take(4);
        assert_eq!(b.0.load(Ordering::Relaxed), 6);
        b.clear();
        b.take(6);
        assert_eq!(b.0.load(Ordering::Relaxed), 0);
        assert_eq!(links_memory(), before);
    }
}
