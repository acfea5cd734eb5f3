//! The core's event loop: one pass per poll of a glommio task, one `io_uring_enter` per pass.
//!
//! A pass hands the kernel everything queued since the last one (replies to send, receive
//! buffers given back, wake-ups for other cores) together with the wait for the next events,
//! then serves what arrived: new connections (multishot accept), input (multishot receive
//! into the provided-buffer ring), finished sends, messages from other cores, tasks handing
//! connections back. Commands are served inline: on this core's shard at once, or queued for
//! their shard, one batch per shard per pass. A command that must wait (locks, several shards,
//! blocking pops, INFO…) runs in a task of its own with the connection's session, and the
//! connection reads on but parses nothing until the task hands the session back.
//!
//! The loop sleeps in its ring only when no task ran since its last pass (see `core::spawn`):
//! everything that can wake a task (I/O, timers, other cores) arrives through the ring, so
//! sleeping there never strands a ready task, and an idle core costs nothing.

use std::cell::RefCell;
use std::future::Future;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use io_uring::{cqueue, opcode, squeue, types};
use shardis_engine::command::lookup_call;
use shardis_engine::command::Flags;
use shardis_engine::{Command, Exec, Fanout, ServerCmd};
use shardis_resp::{peek_keys, Limits, Reply};
use tracing::{debug, warn};

use super::conn::{Conn, Encoded, Held, ENCODE_AHEAD};
use crate::cmd;
use crate::conn::session::Session;
use crate::conn::{dispatch, multi};
use crate::coord::route::{self, Target};
use crate::core::client::Client;
use crate::core::pause::PauseMode;
use crate::core::pubsub::{Delivery, Kind as SubKind, Subscriber, What};
use crate::core::tracking::{self, Outcome};
use crate::core::{spawn, Batch, BatchReply, ConnRef, Core, Msg};
use crate::io::buf_ring::{self, BufRing};
use crate::io::listen::{self, Listener};
use crate::io::uring::Ring;
use crate::tls::{Received, TlsConn};

/// What a completion is for: the top 4 bits of its user data.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Accept = 1,
    Recv = 2,
    Send = 3,
    /// Another core woke us (`MSG_RING`).
    Wake = 4,
    /// A cancellation we asked for.
    Cancel = 5,
    /// The append-only log's sync (`appendfsync always`); the rest is its generation.
    Fsync = 6,
}

impl Kind {
    fn of(user_data: u64) -> Option<Kind> {
        Some(match user_data >> 60 {
            1 => Kind::Accept,
            2 => Kind::Recv,
            3 => Kind::Send,
            4 => Kind::Wake,
            5 => Kind::Cancel,
            6 => Kind::Fsync,
            _ => return None,
        })
    }
}

/// User data for `kind` about connection (or listener) `r`.
fn user_data(kind: Kind, r: ConnRef) -> u64 {
    ((kind as u64) << 60) | (r.0 & ((1 << 60) - 1))
}

/// Output a connection may have unsent before its input is no longer parsed: a client that does
/// not read its replies stops being served instead of growing the server's memory.
const PAUSE_OUTPUT: usize = ENCODE_AHEAD;
/// Input read while paused beyond which the receive is cancelled, so TCP pushes back.
const PAUSE_INPUT: usize = 1 << 20;
/// An idle connection's input buffer above this size is released.
const KEEP_INPUT_CAPACITY: usize = 64 << 10;
/// Messages from other cores handled per pass.
const MESH_BUDGET: usize = 1024;
/// Reply slots a connection may have waiting on other cores before its input pauses.
const MAX_PENDING_REPLIES: usize = 64 * 1024;
/// At most this many of a connection's commands are on other cores at once: each reply can be
/// a large value, and the pause above only sees replies once they are back (16 unread 1 MiB
/// GETs cost ~50 MiB with the copies on both cores). Deep pipelines still move: the next
/// commands go out as soon as replies return, one batch per pass.
const MAX_REMOTE_IN_FLIGHT: usize = 16;
/// Emptied batches a core keeps for reuse (more than one can be in flight to a shard); few,
/// as what they hold counts against the core's share of `maxmemory`.
const MAX_SPARE_BATCHES: usize = 2;
/// A reply from another core that must wait behind an earlier one is copied out of its batch
/// up to this size; a larger one keeps a share of the batch's buffer instead.
const COPY_WAITING_REPLY: usize = 16 << 10;

/// The longest a core busy with tasks goes without entering its ring.
const BUSY_ENTER: Duration = Duration::from_millis(1);

/// How long a core spins before sleeping while a transaction holds or waits for its shard's
/// lock (EXEC, a script or a command over several shards). Such work trades several messages
/// with other cores (lock, steps, release), and each one to a sleeping core costs a kernel
/// wake-up on both sides: profiled on a script over two shards, half the server's time was
/// `try_to_wake_up` and returning from the ring's wait. Spinning costs CPU only while such
/// work is in flight (`spin-before-park-us` spins always).
const LOCKED_SPIN: Duration = Duration::from_micros(50);

/// The most registered files a core asks for.
const MAX_FIXED_FILES: u32 = 1 << 16;

/// The soft limit on open files (the kernel caps registered files by it).
fn nofile_limit() -> u32 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills an rlimit we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 0;
    }
    lim.rlim_cur.min(u32::MAX as u64) as u32
}

/// Connections total on every core, for `maxclients`.
static CONNECTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A connection's place in the table, with the generation that tells a reused place apart.
struct Place {
    gen: u32,
    conn: Option<Box<Conn>>,
}

/// The connection a completion or reply names, if it is still the same one.
fn find(places: &mut [Place], r: ConnRef) -> Option<(u32, &mut Conn)> {
    let i = (r.0 & 0xffff_ffff) as u32;
    let gen = ((r.0 >> 32) & 0x0fff_ffff) as u32;
    let place = places.get_mut(i as usize)?;
    if place.gen & 0x0fff_ffff != gen {
        return None;
    }
    Some((i, place.conn.as_deref_mut()?))
}

/// Sessions handed back by tasks, with the reply of the command they ran.
type Returns = Rc<RefCell<Vec<(ConnRef, Box<Session>, Option<Reply>)>>>;

pub struct EventLoop {
    // Dropped first: the ring unregisters the buffer ring before its memory goes.
    ring: Ring,
    bufs: BufRing,
    core: Rc<Core>,
    listeners: Vec<Listener>,
    /// Counts the listener sets CONFIG SET port/bind installed: a completion of an accept on
    /// an earlier set is not re-armed.
    listeners_gen: u32,
    places: Vec<Place>,
    free: Vec<u32>,
    /// Connections with input to parse or a session handed back.
    ready: Vec<u32>,
    /// Connections with output to hand to the kernel.
    to_send: Vec<u32>,
    /// Output waiting for a sync of the log: the generation, the connection, and how far
    /// its output may go once that generation is durable. Generations never decrease.
    awaiting: std::collections::VecDeque<(u64, ConnRef, u64)>,
    /// Connections whose receive must be armed again.
    to_arm: Vec<u32>,
    /// Connections with a command held by CLIENT PAUSE, served again once it ends.
    paused_conns: Vec<ConnRef>,
    returns: Returns,
    /// This pass's requests for each other shard.
    outbox: Vec<Option<Box<Batch>>>,
    /// Batches that came back from other shards, emptied, for the next passes' requests.
    /// Boxed: the box itself is what travels between cores, so it is reused too.
    #[allow(clippy::vec_box)]
    spare_batches: Vec<Box<Batch>>,
    cqes: Vec<cqueue::Entry>,
    wakes: Vec<i32>,
    /// Task polls seen at the end of the last pass.
    polls_seen: u64,
    /// When the ring was last entered: a core kept busy by long tasks (a script running for
    /// seconds) still enters it now and then, or the kernel (DEFER_TASKRUN) would hold its
    /// completions back and its connections would starve.
    last_enter: Instant,
    /// Spin this long before sleeping (`spin-before-park-us`; 0 = never).
    spin: Duration,
    keys: Vec<usize>,
    /// Connections placed below this index use a registered file.
    fixed_files: u32,
    stopped: bool,
}

impl EventLoop {
    /// Sets up the core's ring, buffers and listeners.
    pub fn new(core: Rc<Core>, listeners: Vec<Listener>) -> std::io::Result<EventLoop> {
        let ring = Ring::new()?;
        let bufs = BufRing::register(&ring)?;
        core.mesh.set_ring_fd(ring.fd());
        if core.id == 0 {
            tracing::info!("io_uring: {} setup, registered ring fd", ring.setup);
        }
        let spin = Duration::from_micros(
            core.config.borrow().get_i64("spin-before-park-us").max(0) as u64,
        );
        let shards = core.shards;
        // One registered file per connection place, as many as the fd limit allows.
        let fixed_files = nofile_limit().min(MAX_FIXED_FILES);
        let fixed_files = match ring.register_files_sparse(fixed_files) {
            Ok(()) => fixed_files,
            Err(e) => {
                warn!("registered files unavailable ({e}): connections use plain fds");
                0
            }
        };
        let mut this = EventLoop {
            ring,
            bufs,
            core,
            listeners,
            listeners_gen: 0,
            places: Vec::new(),
            free: Vec::new(),
            ready: Vec::new(),
            to_send: Vec::new(),
            awaiting: std::collections::VecDeque::new(),
            to_arm: Vec::new(),
            paused_conns: Vec::new(),
            returns: Rc::new(RefCell::new(Vec::new())),
            outbox: (0..shards).map(|_| None).collect(),
            spare_batches: Vec::new(),
            cqes: Vec::with_capacity(1024),
            wakes: Vec::new(),
            polls_seen: 0,
            last_enter: Instant::now(),
            spin,
            keys: Vec::with_capacity(8),
            fixed_files,
            stopped: false,
        };
        for i in 0..this.listeners.len() {
            this.arm_accept(i)?;
        }
        Ok(this)
    }

    fn arm_accept(&mut self, i: usize) -> std::io::Result<()> {
        let Some(l) = self.listeners.get(i) else {
            return Ok(());
        };
        let sqe = opcode::AcceptMulti::new(types::Fd(l.fd.as_raw_fd()))
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(user_data(Kind::Accept, self.listener_ref(i)));
        self.ring.push(&sqe)
    }

    /// An accept's reference: the listener set, whether it is a TLS listener and a cluster
    /// node's own port, its index.
    fn listener_ref(&self, i: usize) -> ConnRef {
        let l = self.listeners.get(i);
        let tls = l.is_some_and(|l| l.tls) as u64;
        let node = l.is_some_and(|l| l.node) as u64;
        ConnRef((self.listeners_gen as u64) << 32 | tls << 31 | node << 30 | (i as u64 & 0xffff))
    }

    /// Takes over the listeners CONFIG SET port/bind opened: the old ones' accepts are
    /// cancelled (their sockets close when the kernel lets go of them), the new ones armed.
    fn swap_listeners(&mut self) {
        let Some(new) = self.core.new_listeners.take() else {
            return;
        };
        for i in 0..self.listeners.len() {
            let target = user_data(Kind::Accept, self.listener_ref(i));
            let sqe = opcode::AsyncCancel::new(target)
                .build()
                .user_data(user_data(Kind::Cancel, ConnRef(0)));
            if let Err(e) = self.ring.push(&sqe) {
                warn!("cannot cancel an accept: {e}");
            }
        }
        self.listeners = new;
        // Within the 28 bits the user data has room for above the index and TLS bit.
        self.listeners_gen = (self.listeners_gen + 1) & 0x0fff_ffff;
        for i in 0..self.listeners.len() {
            if let Err(e) = self.arm_accept(i) {
                warn!("cannot arm accept: {e}");
            }
        }
    }

    /// One pass. Returns false once the server stops.
    fn pass(&mut self) -> bool {
        self.prepare_submissions();
        let others_ran = spawn::polls() != self.polls_seen;
        let idle = !others_ran && self.ready.is_empty() && self.returns.borrow().is_empty();
        let enter = idle || self.ring.pending() > 0 || self.last_enter.elapsed() >= BUSY_ENTER;
        let entered = if idle {
            self.spin_then_sleep()
        } else if enter {
            self.ring.enter(false, None)
        } else {
            Ok(())
        };
        if let Err(e) = entered {
            warn!("io_uring_enter: {e}");
        }
        if enter {
            self.last_enter = Instant::now();
        }
        self.core.tick_clock();
        self.core.timers.fire(Instant::now());
        self.ring.reap(&mut self.cqes);
        let cqes = std::mem::take(&mut self.cqes);
        for cqe in &cqes {
            self.complete(cqe);
        }
        self.cqes = cqes;
        self.drain_mesh();
        self.swap_listeners();
        self.take_returns();
        self.resume_paused();
        self.serve_ready();
        // Before any task runs: requests queued this pass go out first, so a connection's
        // later commands (run by a task) reach each shard after its earlier ones.
        self.send_outboxes();
        self.send_deliveries();
        // Local deliveries scheduled connections: serve them (write limits, sends) now.
        self.serve_ready();
        self.polls_seen = spawn::polls();
        if crate::core::shutdown_requested() {
            self.stop();
            return false;
        }
        true
    }

    /// Sleeps in the ring until an event, the next timer, or a wake-up from another core;
    /// spins first when configured to, or while cross-core work holds the lock ([`LOCKED_SPIN`]).
    fn spin_then_sleep(&mut self) -> std::io::Result<()> {
        let spin = if self.core.lock_idle() {
            self.spin
        } else {
            self.spin.max(LOCKED_SPIN)
        };
        if !spin.is_zero() {
            let until = Instant::now() + spin;
            while Instant::now() < until {
                self.ring.enter(false, None)?;
                if self.ring.has_completions() || self.core.mesh.has_messages() {
                    return Ok(());
                }
            }
        }
        if !self.core.mesh.prepare_to_sleep() {
            return self.ring.enter(false, None);
        }
        let timeout = self
            .core
            .timers
            .next_deadline()
            .map(|at| at.saturating_duration_since(Instant::now()));
        self.core.bump(|s| s.sleeps += 1);
        let result = self.ring.enter(true, timeout);
        self.core.mesh.awake();
        result
    }

    /// Queues what the last pass and the tasks since produced: sends, re-armed receives,
    /// buffers given back, wake-ups of other cores.
    fn prepare_submissions(&mut self) {
        // The shard's log first: under `appendfsync always` nothing this pass hands out
        // (sends below, messages to other cores) may announce a write not yet durable.
        crate::primary::feed(&self.core);
        let ring = &mut self.ring;
        let log = crate::persist::aof::log::pass(&self.core, |fd, generation| {
            let sqe = opcode::Fsync::new(types::Fd(fd))
                .flags(types::FsyncFlags::DATASYNC)
                .build()
                .user_data(user_data(Kind::Fsync, ConnRef(generation)));
            ring.push(&sqe).is_ok()
        });
        for i in std::mem::take(&mut self.to_arm) {
            self.arm_recv(i);
        }
        // Output whose sync completed goes out.
        while let Some(&(generation, r, end)) = self.awaiting.front() {
            if generation > log.durable {
                break;
            }
            self.awaiting.pop_front();
            if let Some((i, conn)) = find(&mut self.places, r) {
                conn.out_cleared = conn.out_cleared.max(end);
                self.to_send.push(i);
            }
        }
        let mut to_send = std::mem::take(&mut self.to_send);
        for &i in &to_send {
            let r = self.conn_ref(i);
            if let Some((_, conn)) = find(&mut self.places, r) {
                // Replies `ENCODE_AHEAD` left for later are encoded once the previous output
                // went to the kernel, before the tagging, so they are tagged too.
                if !conn.send_inflight && conn.sent >= conn.sending.len() {
                    conn.refill();
                }
                let end = conn.out_end();
                if log.wait <= log.durable {
                    conn.out_cleared = end;
                } else if end > conn.out_cleared && end > conn.out_awaited {
                    conn.out_awaited = end;
                    self.awaiting.push_back((log.wait, r, end));
                }
            }
            self.start_send(i);
        }
        to_send.clear();
        self.to_send = to_send;
        self.bufs.publish();
        self.core.mesh.take_wakes(&mut self.wakes);
        if !self.wakes.is_empty() {
            let n = self.wakes.len() as u64;
            self.core.bump(|s| s.wakeups_sent += n);
        }
        for fd in self.wakes.drain(..) {
            let sqe =
                opcode::MsgRingData::new(types::Fd(fd), 0, user_data(Kind::Wake, ConnRef(0)), None)
                    .build()
                    .flags(squeue::Flags::SKIP_SUCCESS);
            if let Err(e) = self.ring.push(&sqe) {
                warn!("cannot queue a wake-up: {e}");
            }
        }
    }

    fn complete(&mut self, cqe: &cqueue::Entry) {
        let data = cqe.user_data();
        let Some(kind) = Kind::of(data) else { return };
        let r = ConnRef(data & ((1 << 60) - 1));
        match kind {
            Kind::Accept => self.accepted(r, cqe.result(), cqueue::more(cqe.flags())),
            Kind::Recv => self.received(r, cqe),
            Kind::Send => self.sent(r, cqe.result()),
            Kind::Fsync => crate::persist::aof::log::synced(&self.core, r.0, cqe.result()),
            Kind::Wake | Kind::Cancel => {}
        }
    }

    // ----------------------------------------------------------------------------------------
    // Connections: accept, receive, send, close.

    fn accepted(&mut self, listener: ConnRef, res: i32, more: bool) {
        // A connection an old listener took before its accept was cancelled is served too.
        let current = listener.0 >> 32 == self.listeners_gen as u64;
        let tls = listener.0 & (1 << 31) != 0;
        let node = listener.0 & (1 << 30) != 0;
        if !more && current {
            if let Err(e) = self.arm_accept((listener.0 & 0xffff) as usize) {
                warn!("cannot re-arm accept: {e}");
            }
        }
        if res < 0 {
            if res != -libc::ECANCELED {
                debug!("accept: {}", std::io::Error::from_raw_os_error(-res));
            }
            return;
        }
        let fd = res;
        let core = self.core.clone();
        core.bump(|s| s.connections_received += 1);
        let (keepalive, protected, maxclients) = {
            let c = core.config.borrow();
            (
                c.get_i64("tcp-keepalive"),
                c.get("protected-mode") == "yes",
                c.get_i64("maxclients").max(1) as usize,
            )
        };
        listen::configure_accepted(fd, keepalive);
        let (addr, laddr) = listen::addresses(fd);
        // Protected mode: while the default user needs no password, loopback clients only. A
        // TLS client gets the refusal once its handshake is done (it could not read it before).
        let (default_user, authenticated) = {
            let acl = core.acl.borrow();
            (acl.default_user().clone(), acl.starts_authenticated())
        };
        let open_default = default_user.borrow().nopass;
        let denied = protected && open_default && !listen::is_loopback(&addr);
        if denied && !tls {
            reject(fd, DENIED);
            core.bump(|s| s.rejected_connections += 1);
            return;
        }
        if CONNECTED.fetch_add(1, Ordering::Relaxed) >= maxclients {
            CONNECTED.fetch_sub(1, Ordering::Relaxed);
            if tls {
                // Before its handshake a TLS client cannot be told why: it just drops, as
                // in Redis.
                // SAFETY: closing the socket we were just handed.
                unsafe { libc::close(fd) };
            } else {
                reject(fd, b"-ERR max number of clients reached\r\n");
            }
            core.bump(|s| s.rejected_connections += 1);
            return;
        }
        let tls_conn = if tls {
            let config = core.tls.borrow().clone();
            match config.map(TlsConn::new) {
                Some(Ok(t)) => Some(Box::new(t)),
                Some(Err(e)) => {
                    debug!("Error accepting a client connection: {e} (addr={addr})");
                    CONNECTED.fetch_sub(1, Ordering::Relaxed);
                    // SAFETY: closing the socket we were just handed.
                    unsafe { libc::close(fd) };
                    return;
                }
                None => {
                    warn!("a TLS connection arrived with no TLS settings loaded");
                    CONNECTED.fetch_sub(1, Ordering::Relaxed);
                    // SAFETY: closing the socket we were just handed.
                    unsafe { libc::close(fd) };
                    return;
                }
            }
        } else {
            None
        };
        let id = core.next_client_id();
        let i = match self.free.pop() {
            Some(i) => i,
            None => {
                self.places.push(Place { gen: 0, conn: None });
                (self.places.len() - 1) as u32
            }
        };
        let client = Rc::new(RefCell::new(Client::new(
            (id, self.conn_ref(i)),
            fd,
            addr,
            laddr,
            core.now_ms(),
            default_user,
            authenticated,
        )));
        client.borrow_mut().node = node;
        core.clients.borrow_mut().insert(id, client.clone());
        let session = Session::new(core.clone(), self.conn_ref(i), client.clone());
        let mut conn = Box::new(Conn::new(fd, client, session));
        if tls_conn.is_some() {
            conn.tls = tls_conn;
            if denied {
                // Sealed and sent once the handshake is done, then the connection closes.
                conn.out.extend_from_slice(DENIED);
                conn.closing = true;
                core.bump(|s| s.rejected_connections += 1);
            }
        }
        if i < self.fixed_files && self.ring.set_file(i, fd).is_ok() {
            conn.fixed = Some(i);
        }
        if let Some(place) = self.places.get_mut(i as usize) {
            place.conn = Some(conn);
        }
        self.arm_recv(i);
    }

    fn conn_ref(&self, i: u32) -> ConnRef {
        let gen = self.places.get(i as usize).map_or(0, |p| p.gen);
        ConnRef(((gen as u64) << 32) | i as u64)
    }

    fn arm_recv(&mut self, i: u32) {
        let r = self.conn_ref(i);
        let Some(conn) = self
            .places
            .get_mut(i as usize)
            .and_then(|p| p.conn.as_deref_mut())
        else {
            return;
        };
        if conn.recv_armed || conn.read_closed || conn.paused && conn.rbuf.len() > PAUSE_INPUT {
            return;
        }
        conn.recv_armed = true;
        let sqe = match conn.fixed {
            Some(slot) => opcode::RecvMulti::new(types::Fixed(slot), buf_ring::GROUP).build(),
            None => opcode::RecvMulti::new(types::Fd(conn.fd), buf_ring::GROUP).build(),
        }
        .user_data(user_data(Kind::Recv, r));
        if let Err(e) = self.ring.push(&sqe) {
            warn!("cannot arm a receive: {e}");
        }
    }

    fn received(&mut self, r: ConnRef, cqe: &cqueue::Entry) {
        let res = cqe.result();
        let flags = cqe.flags();
        let more = cqueue::more(flags);
        // Give the buffer back whatever becomes of the data.
        let data = cqueue::buffer_select(flags).map(|bid| {
            let len = res.max(0) as usize;
            (bid, len)
        });
        let qbuf_limit = self.core.config.borrow().hot().query_buffer_limit;
        let core = self.core.clone();
        let Some((i, conn)) = find(&mut self.places, r) else {
            if let Some((bid, _)) = data {
                self.bufs.give_back(bid);
            }
            return;
        };
        if !more {
            conn.recv_armed = false;
        }
        let mut rearm = false;
        let mut close = false;
        match res {
            n if n > 0 => {
                let mut input = n as u64;
                if let Some((bid, len)) = data {
                    let bytes = self.bufs.data(bid, len);
                    conn.fit_input(bytes.len());
                    match conn.tls.as_deref_mut() {
                        None => conn.rbuf.extend_from_slice(bytes),
                        Some(tls) => {
                            let before = conn.rbuf.len();
                            match tls.receive(bytes, &mut conn.rbuf) {
                                Ok(Received::Open) => {}
                                Ok(Received::Closed) => conn.read_closed = true,
                                Err(e) => {
                                    let (id, addr) = {
                                        let c = conn.client.borrow();
                                        (c.id, c.addr.clone())
                                    };
                                    if tls.is_handshaking() {
                                        debug!("Error accepting a client connection: {e} (client={id} addr={addr})");
                                    } else {
                                        debug!("Error reading from client: {e} (client={id} addr={addr})");
                                    }
                                    // Its alert goes out, then the connection closes.
                                    conn.closing = true;
                                }
                            }
                            // Counted as plaintext, as Redis counts what SSL_read returns.
                            input = conn.rbuf.len().saturating_sub(before) as u64;
                        }
                    }
                    self.bufs.give_back(bid);
                }
                core.bump(|s| s.net_input_bytes += input);
                conn.report_input(input as usize, core.now_ms());
                crate::core::client_eviction::served(&core, &conn.client);
                if conn.rbuf.len() + conn.parser.pending_bytes() > qbuf_limit {
                    // Counted once: the multishot receive may complete again before the
                    // close is done (seen under load: one client counted twice).
                    if !conn.closing {
                        warn!(
                            client = conn.client.borrow().id,
                            "Closing client that reached max query buffer length"
                        );
                        core.bump(|s| s.client_qbuf_limit_disconnections += 1);
                    }
                    close = true;
                }
                rearm = !more;
            }
            0 => conn.read_closed = true,
            e if e == -libc::ENOBUFS => rearm = true,
            e if e == -libc::ECANCELED => {}
            _ => conn.read_closed = true,
        }
        if let Some((bid, _)) = data {
            if res <= 0 {
                self.bufs.give_back(bid);
            }
        }
        if close {
            conn.read_closed = true;
            conn.closing = true;
            conn.rbuf.clear();
        }
        if conn.read_closed {
            conn.hangup.raise();
        }
        let schedule = !conn.scheduled;
        conn.scheduled = true;
        if schedule {
            self.ready.push(i);
        }
        if rearm {
            self.to_arm.push(i);
        }
    }

    /// Hands connection `i`'s output to the kernel, unless a send is in flight.
    fn start_send(&mut self, i: u32) {
        let r = self.conn_ref(i);
        let Some(conn) = self
            .places
            .get_mut(i as usize)
            .and_then(|p| p.conn.as_deref_mut())
        else {
            return;
        };
        if conn.send_inflight {
            return;
        }
        if conn.sent >= conn.sending.len() {
            // Only output whose commands' records are durable goes (`appendfsync always`).
            let ready = conn
                .out_cleared
                .saturating_sub(conn.out_taken)
                .min(conn.out.len() as u64) as usize;
            if let Some(tls) = conn.tls.as_deref_mut() {
                // TLS: `out` is plaintext; what goes out is its ciphertext, after any
                // handshake records or alerts rustls has waiting.
                conn.sending.clear();
                conn.sent = 0;
                let rest = conn.out.split_off(ready);
                let plain = tls.seal(&mut conn.out, &mut conn.sending);
                if conn.out.is_empty() {
                    conn.out_taken += ready as u64;
                    if !rest.is_empty() {
                        conn.out = rest;
                    }
                } else {
                    // Still handshaking: nothing was taken.
                    conn.out.extend_from_slice(&rest);
                }
                if plain > 0 {
                    self.core.bump(|s| s.net_output_bytes += plain as u64);
                }
                if conn.out.is_empty() && conn.out.capacity() > KEEP_INPUT_CAPACITY {
                    conn.out = Vec::new();
                }
                if conn.sending.is_empty() {
                    return;
                }
            } else {
                if ready == 0 {
                    return;
                }
                conn.sending.clear();
                if ready == conn.out.len() {
                    std::mem::swap(&mut conn.sending, &mut conn.out);
                } else {
                    conn.sending.extend_from_slice(&conn.out[..ready]);
                    conn.out.drain(..ready);
                }
                conn.out_taken += ready as u64;
                conn.sent = 0;
            }
        }
        let Some(rest) = conn.sending.get(conn.sent..) else {
            return;
        };
        conn.send_inflight = true;
        let (ptr, len) = (rest.as_ptr(), rest.len().min(u32::MAX as usize) as u32);
        // MSG_WAITALL: the kernel retries a short send itself, so a completion means all of it
        // went out (or the connection failed).
        let flags = libc::MSG_NOSIGNAL | libc::MSG_WAITALL;
        let sqe = match conn.fixed {
            Some(slot) => opcode::Send::new(types::Fixed(slot), ptr, len)
                .flags(flags)
                .build(),
            None => opcode::Send::new(types::Fd(conn.fd), ptr, len)
                .flags(flags)
                .build(),
        }
        .user_data(user_data(Kind::Send, r));
        if let Err(e) = self.ring.push(&sqe) {
            warn!("cannot queue a send: {e}");
            conn.send_inflight = false;
        }
    }

    fn sent(&mut self, r: ConnRef, res: i32) {
        let core = self.core.clone();
        let Some((i, conn)) = find(&mut self.places, r) else {
            return;
        };
        conn.send_inflight = false;
        if res < 0 {
            // The peer is gone: nothing more will be written.
            conn.read_closed = true;
            conn.closing = true;
            conn.discard_output();
            conn.sending.clear();
            conn.sent = 0;
            conn.hangup.raise();
        } else {
            conn.sent += res as usize;
            // (A TLS connection's output is counted as plaintext when sealed.)
            if conn.tls.is_none() {
                core.bump(|s| s.net_output_bytes += res as u64);
            }
            // Writing counts as activity for `timeout`, as in Redis.
            if res > 0 {
                conn.client.borrow_mut().last_active_ms = core.now_ms();
            }
            if conn.sent >= conn.sending.len() {
                conn.sending.clear();
                conn.sent = 0;
                // A huge reply's buffer is not kept for the small ones that follow.
                if conn.sending.capacity() > KEEP_INPUT_CAPACITY {
                    conn.sending = Vec::new();
                }
            }
        }
        if !conn.scheduled {
            conn.scheduled = true;
            self.ready.push(i);
        }
    }

    // ----------------------------------------------------------------------------------------
    // Messages from other cores and sessions handed back by tasks.

    /// Handles the messages other cores sent, at most `MESH_BUDGET` per pass: a core that
    /// keeps sending cannot hold this one in here (the rest wait for the next pass).
    fn drain_mesh(&mut self) {
        for _ in 0..MESH_BUDGET {
            let Some(msg) = self.core.mesh.try_recv() else {
                return;
            };
            match msg {
                Msg::Batch(batch) => self.core.run_batch(batch),
                Msg::Replies(batch) => self.deliver_replies(batch),
                Msg::Deliver(deliveries) => self.deliver_messages(deliveries),
                Msg::Run(task) => task(&self.core),
            }
        }
    }

    /// Replies another core encoded for this core's connections, in the batch they came in;
    /// the batch is kept for reuse. A large reply that must wait behind another keeps a share
    /// of the batch's reply buffer rather than a copy (the buffer then stays with the replies).
    fn deliver_replies(&mut self, mut batch: Box<Batch>) {
        let BatchReply::Conns {
            to,
            conns,
            out,
            ends,
            sent,
            fed,
        } = &mut batch.reply
        else {
            return;
        };
        let (from, fed) = (*to, *fed);
        if let Some(sent) = sent {
            self.core.forwarding.returned(sent.elapsed());
        }
        let mut shared: Option<Bytes> = None;
        let mut start = 0;
        for (&r, &end) in conns.iter().zip(ends.iter()) {
            let range = start..end;
            start = end;
            let Some((i, conn)) = find(&mut self.places, r) else {
                continue;
            };
            if shared.is_none() && range.len() > COPY_WAITING_REPLY && conn.remote_reply_waits(from)
            {
                shared = Some(Bytes::from(std::mem::take(out)));
            }
            let encoded = match &shared {
                Some(whole) if whole.get(range.clone()).is_some() => {
                    Encoded::Shared(whole.slice(range))
                }
                Some(_) => Encoded::Borrowed(&[]),
                None => Encoded::Borrowed(out.get(range).unwrap_or_default()),
            };
            conn.fill_remote(from, encoded);
            // A write forwarded there is carried by that shard's delivery `fed` or earlier.
            if conn.client.borrow().woff.awaits(from) {
                let last = !conn.awaits_remote(from);
                conn.client.borrow_mut().woff.replied(from, fed, last);
            }
            if !conn.scheduled {
                conn.scheduled = true;
                self.ready.push(i);
            }
        }
        if self.spare_batches.len() < MAX_SPARE_BATCHES {
            batch.recycle(from);
            self.spare_batches.push(batch);
        }
    }

    /// Pub/Sub messages, MONITOR lines and invalidations for this core's connections. A
    /// connection already over its hard output limit gets nothing more: it is closed when it
    /// is next served.
    fn deliver_messages(&mut self, deliveries: Vec<Delivery>) {
        let hot = self.core.config.borrow().hot();
        for d in deliveries {
            if let What::Tracking(msg) = &d.what {
                for &r in &d.conns {
                    self.deliver_tracking(r, msg.clone());
                }
                continue;
            }
            for &r in &d.conns {
                let Some((i, conn)) = find(&mut self.places, r) else {
                    continue;
                };
                if conn.closing {
                    continue;
                }
                if over_hard_limit(&hot, conn) {
                    continue;
                }
                {
                    let c = conn.client.borrow();
                    match &d.what {
                        // The client's own subscriptions have the last word.
                        What::Message {
                            kind,
                            pattern,
                            channel,
                            payload,
                        } => {
                            if !c.subs.wants(*kind, pattern.as_ref(), channel) {
                                continue;
                            }
                            encode_message(
                                *kind,
                                pattern,
                                channel,
                                payload,
                                c.resp3,
                                &mut conn.out,
                            );
                        }
                        What::Monitor(line) => {
                            if !c.monitor {
                                continue;
                            }
                            conn.out.extend_from_slice(line);
                        }
                        What::Tracking(_) => continue,
                    }
                }
                if !conn.scheduled {
                    conn.scheduled = true;
                    self.ready.push(i);
                }
            }
        }
    }

    /// A client-side caching message for connection `r`: written, dropped, or passed on (to a
    /// redirect target, or back to a tracking client whose target is gone).
    fn deliver_tracking(&mut self, r: ConnRef, msg: tracking::Message) {
        // A connection on its way out (QUIT, CLIENT KILL) is as gone as a closed one.
        let Some((i, conn)) = find(&mut self.places, r).filter(|(_, c)| !c.closing) else {
            if let Some((to, back)) = tracking::undeliverable(msg) {
                self.core.send_tracking(to, back);
            }
            return;
        };
        let me = Subscriber {
            core: self.core.id,
            conn: r,
        };
        let outcome = tracking::receive(me, &mut conn.client.borrow_mut(), msg);
        match outcome {
            Outcome::Write(bytes) => {
                let hot = self.core.config.borrow().hot();
                if over_hard_limit(&hot, conn) {
                    return;
                }
                conn.push(&bytes);
            }
            Outcome::Forward(to, msg) => return self.core.send_tracking(to, msg),
            Outcome::Drop => return,
        }
        if !conn.scheduled {
            conn.scheduled = true;
            self.ready.push(i);
        }
    }

    /// Sends the Pub/Sub deliveries this pass produced (and the BCAST invalidations it
    /// collected): this core's written at once, the others' in one message per core.
    fn send_deliveries(&mut self) {
        self.core.track_broadcast();
        // Writing this core's share may forward an invalidation to a redirect target, and a
        // target that is gone answers back: at most two more rounds.
        while self.core.pubsub.borrow().has_outgoing() {
            for core in 0..self.core.shards {
                let deliveries = self.core.pubsub.borrow_mut().take_outgoing(core);
                if deliveries.is_empty() {
                    continue;
                }
                if core == self.core.id {
                    self.deliver_messages(deliveries);
                } else {
                    self.core.send(core, Msg::Deliver(deliveries));
                }
            }
        }
    }

    /// Once CLIENT PAUSE ends (UNPAUSE from any core, or its deadline), the connections it
    /// held are served again, in the order they were held.
    fn resume_paused(&mut self) {
        if self.paused_conns.is_empty() || self.core.pause_mode() != PauseMode::Off {
            return;
        }
        for r in std::mem::take(&mut self.paused_conns) {
            if let Some((i, conn)) = find(&mut self.places, r) {
                if !conn.scheduled {
                    conn.scheduled = true;
                    self.ready.push(i);
                }
            }
        }
    }

    fn take_returns(&mut self) {
        let returns = std::mem::take(&mut *self.returns.borrow_mut());
        for (r, session, reply) in returns {
            let Some((i, conn)) = find(&mut self.places, r) else {
                // The connection is gone (only at shutdown): drop the session's watches.
                let mut session = session;
                multi::unwatch_all(&mut session);
                continue;
            };
            conn.session = Some(session);
            conn.mute = conn.muted_task;
            if reply.is_none() {
                conn.closing = true;
            }
            conn.fill_task(reply);
            conn.end_of_command();
            if conn.client.borrow().closing {
                conn.closing = true;
            }
            if !conn.scheduled {
                conn.scheduled = true;
                self.ready.push(i);
            }
        }
    }

    // ----------------------------------------------------------------------------------------
    // Serving commands.

    fn serve_ready(&mut self) {
        let mut ready = std::mem::take(&mut self.ready);
        for &i in &ready {
            self.serve(i);
        }
        // Connections scheduled while serving (a paused one resuming) wait for the next pass.
        ready.clear();
        if self.ready.is_empty() {
            self.ready = ready;
        }
    }

    /// Parses and runs connection `i`'s commands until its input is used up or it must wait,
    /// then schedules its output, or closes it.
    fn serve(&mut self, i: u32) {
        let r = self.conn_ref(i);
        let core = self.core.clone();
        let limits = Limits {
            max_bulk_len: core.shard.borrow().config.proto_max_bulk_len,
            ..Limits::default()
        };
        let Some(mut conn) = self.places.get_mut(i as usize).and_then(|p| p.conn.take()) else {
            return;
        };
        conn.scheduled = false;
        self.prefetch_pipeline(&conn);
        loop {
            if conn.closing || conn.session.is_none() || conn.paused {
                break;
            }
            if let Some(Held {
                cmd,
                mut args,
                mute,
                paused,
            }) = conn.held.take()
            {
                if paused {
                    if self.pause_holds(&conn, cmd, &args) {
                        conn.held = Some(Held {
                            cmd,
                            args,
                            mute,
                            paused,
                        });
                        break;
                    }
                    conn.client.borrow_mut().paused = false;
                    // Checked again as it runs, as Redis processes a postponed command anew:
                    // a FAILOVER may have made us a replica, and in cluster mode given the
                    // slot to another node (-MOVED there). A request of an open slot is
                    // judged when it runs.
                    let keys = &mut self.keys;
                    let refused = conn.session.as_deref_mut().and_then(|s| {
                        let moved = if s.open_slot.is_none() {
                            crate::cluster::redirect::refuse(s, cmd, &args, keys)
                        } else {
                            None
                        };
                        moved.or_else(|| crate::replica::refuse_held(s, cmd))
                    });
                    match refused {
                        Some(reply) => conn.reply(reply),
                        None => self.admit(r, &mut conn, cmd, &mut args),
                    }
                } else {
                    conn.mute = mute;
                    self.run_parsed(r, &mut conn, cmd, &mut args);
                }
                if conn.held.is_some() {
                    break;
                }
                continue;
            }
            if conn.pending.len() >= MAX_PENDING_REPLIES || conn.unsent() > PAUSE_OUTPUT {
                conn.paused = true;
                break;
            }
            // Until it authenticates, a client may send only small requests (Redis's limits).
            let unauthenticated =
                !conn.client.borrow().authenticated && core.acl.borrow().auth_required();
            conn.parser.set_auth_required(unauthenticated);
            let mut args = std::mem::take(&mut conn.args);
            let unparsed = conn.rbuf.len() + conn.parser.pending_bytes();
            match conn.parser.next_into(&mut conn.rbuf, &limits, &mut args) {
                Ok(true) => {
                    conn.cmd_bytes =
                        unparsed.saturating_sub(conn.rbuf.len() + conn.parser.pending_bytes());
                    conn.argv_mem = args.iter().map(Bytes::len).sum();
                    self.dispatch(r, &mut conn, &mut args);
                    args.clear();
                    conn.args = args;
                }
                Ok(false) => {
                    conn.args = args;
                    break;
                }
                Err(e) => {
                    conn.args = args;
                    e.write_reply(&mut conn.out);
                    conn.closing = true;
                    conn.rbuf.clear();
                    break;
                }
            }
        }
        if conn.paused
            && conn.unsent() <= PAUSE_OUTPUT / 2
            && conn.pending.len() < MAX_PENDING_REPLIES / 2
        {
            conn.paused = false;
            conn.scheduled = true;
            self.ready.push(i);
        }
        if conn.rbuf.is_empty() && conn.rbuf.capacity() > KEEP_INPUT_CAPACITY {
            conn.rbuf = BytesMut::new();
        }
        conn.fit_input(0);
        conn.report(conn.session.is_none() || conn.held.is_some());
        // (A connection closed for its limit is not counted again while its send fails.)
        let over_limit = if conn.closing {
            None
        } else {
            self.output_limit_exceeded(&mut conn)
        };
        if let Some(reason) = over_limit {
            let id = {
                let mut c = conn.client.borrow_mut();
                // Gone at once, as Redis frees it before its next command: client eviction
                // no longer counts it, so the output limit has precedence over eviction.
                c.closing = true;
                c.id
            };
            warn!(
                client = id,
                "Client scheduled to be closed ASAP for overcoming of output buffer limits ({reason})"
            );
            core.bump(|s| s.client_outbuf_limit_disconnections += 1);
            core.clients.borrow_mut().remove(&id);
            crate::core::client_eviction::closed(&core, id);
            conn.discard_output();
            conn.pending.clear();
            conn.closing = true;
            conn.read_closed = true;
            // SAFETY: shutting down a socket this connection owns; its send in flight fails.
            unsafe { libc::shutdown(conn.fd, libc::SHUT_RDWR) };
        }
        crate::core::client_eviction::served(&core, &conn.client);
        // A TLS connection closed by the server (QUIT, CLIENT KILL, limits, an error reply)
        // says so with close_notify once its last replies are sealed; one a replica's link
        // takes over keeps its session open.
        if conn.closing && !conn.read_closed && conn.pending.is_empty() && conn.out.is_empty() {
            if let Some(tls) = conn.tls.as_deref_mut() {
                if conn.client.borrow().handoff.is_none() {
                    tls.close();
                }
            }
        }
        // Output, or the rest of a send the kernel cut short (a send completes partly when the
        // connection fails half way), goes out with the next pass.
        if conn.has_output() && !conn.send_inflight && !conn.read_closed {
            self.to_send.push(i);
        }
        if !conn.paused && !conn.recv_armed && !conn.read_closed {
            self.to_arm.push(i);
        }
        let done = (conn.read_closed || conn.closing)
            && conn.session.is_some()
            && (conn.output_idle() || conn.read_closed && !conn.send_inflight);
        if done {
            if conn.recv_armed {
                if conn.client.borrow().handoff.is_some() {
                    // The socket lives on (a replica's link takes it): only the receive ends.
                    let cancel = opcode::AsyncCancel::new(user_data(Kind::Recv, r))
                        .build()
                        .user_data(user_data(Kind::Cancel, r));
                    if let Err(e) = self.ring.push(&cancel) {
                        warn!("cannot cancel a receive: {e}");
                    }
                } else {
                    // Ends the receive; its last completion finishes the close.
                    // SAFETY: shutting down a socket this connection owns.
                    unsafe { libc::shutdown(conn.fd, libc::SHUT_RDWR) };
                }
                conn.read_closed = true;
                if let Some(place) = self.places.get_mut(i as usize) {
                    place.conn = Some(conn);
                }
                return;
            }
            self.close(i, conn);
            return;
        }
        if let Some(place) = self.places.get_mut(i as usize) {
            place.conn = Some(conn);
        }
    }

    /// Before a connection's buffered pipeline runs: starts loading the table entries of its
    /// keys that this core's shard holds into the cache together (`Shard::prefetch`), as a
    /// batch from another core does, so that their lookups do not each stall on memory in
    /// turn. Reads ahead in the buffer without parsing it (`peek_keys`); a single request
    /// gains nothing and is left alone.
    fn prefetch_pipeline(&self, conn: &Conn) {
        if conn.parser.pending_bytes() != 0 {
            return;
        }
        let mut keys: [&[u8]; crate::core::PREFETCHED] = [&[]; crate::core::PREFETCHED];
        let mut n = 0;
        peek_keys(&conn.rbuf, keys.len(), |k| {
            if let Some(slot) = keys.get_mut(n) {
                *slot = k;
                n += 1;
            }
        });
        let Some(keys) = keys.get(..n).filter(|k| k.len() >= 2) else {
            return;
        };
        let db = conn.client.borrow().db;
        let (here, shards) = (self.core.id, self.core.shards);
        let local = keys
            .iter()
            .filter(|k| route::shard_of(k, shards) == here)
            .map(|k| (db, *k));
        self.core.shard.borrow().prefetch(local);
    }

    /// Runs one command of connection `r`, inline when it can.
    fn dispatch(&mut self, r: ConnRef, conn: &mut Conn, args: &mut Vec<Bytes>) {
        let core = &self.core;
        core.bump(|s| s.commands_processed += 1);
        conn.report(true);
        let Some(session) = conn.session.as_deref_mut() else {
            return;
        };
        let cmd = match lookup_call(args) {
            Ok(cmd) => cmd,
            Err((cmd, e)) => {
                multi::flag_error(session);
                core.record_rejected(cmd, &e);
                return conn.reply(e);
            }
        };
        conn.client.borrow_mut().last_cmd = Some(cmd.name.as_str());
        core.records.borrow_mut().received(cmd);
        if let Err(denied) = cmd::acl::admit(session, cmd, args) {
            multi::flag_error(session);
            core.record_rejected(Some(cmd), &denied);
            return conn.reply(denied);
        }
        // Cluster mode: a node's own client is redirected, never forwarded.
        if let Some(redirect) = crate::cluster::redirect::refuse(session, cmd, args, &mut self.keys)
        {
            core.record_rejected(Some(cmd), &redirect);
            return conn.reply(redirect);
        }
        // A replica: -READONLY for writes, -MASTERDOWN while the link is down (replication).
        if let Some(refused) = crate::replica::refuse(cmd) {
            multi::flag_error(session);
            return conn.reply(refused);
        }
        if cmd.is_write() || cmd.flags.has(Flags::MAY_REPLICATE) {
            // A primary short of good replicas refuses writes, queued ones too (EXEC then
            // fails), as Redis checks before queueing.
            if let Some(refused) = crate::primary::writes_refused().filter(|_| cmd.is_write()) {
                multi::flag_error(session);
                core.record_rejected(Some(cmd), &refused);
                return conn.reply(refused);
            }
            // WAIT's target moves past this client's writes (see `primary::Woff`).
            conn.client.borrow_mut().woff.wrote();
        }
        let writes = cmd.is_write() || cmd.flags.has(Flags::MAY_REPLICATE);
        {
            let c = conn.client.borrow();
            let which = match cmd.exec {
                Exec::Server(which) => Some(which),
                Exec::Shard(_) => None,
            };
            if c.subs.active() && !c.resp3 && !cmd::pubsub::allowed_in_pubsub_mode(which) {
                drop(c);
                let refused = Reply::error(format!(
                    "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                    cmd.name
                ));
                core.record_rejected(Some(cmd), &refused);
                return conn.reply(refused);
            }
        }
        // While the shards load: -LOADING for what Redis refuses then.
        if let Some(refused) = crate::persist::loading::refuse(session, cmd) {
            core.record_rejected(Some(cmd), &refused);
            return conn.reply(refused);
        }
        // A script running long holds what this command needs: -BUSY (scripting).
        if let Some(busy) = crate::script::busy::refuse(core, cmd, args) {
            let reply = crate::script::busy::reject(session, cmd, busy);
            core.record_rejected(Some(cmd), &reply);
            return conn.reply(reply);
        }
        // Where the write runs tells WAIT which delivery carries it (`dispatch_shard`);
        // anywhere else (a task, MULTI, a held command), WAIT takes the stream's position.
        conn.write_pending = writes;
        self.admit(r, conn, cmd, args);
        if std::mem::take(&mut conn.write_pending) {
            conn.client.borrow_mut().woff.anywhere();
        }
    }

    /// Whether CLIENT PAUSE holds connection `conn`'s command now.
    fn pause_holds(&self, conn: &Conn, cmd: &'static Command, args: &[Bytes]) -> bool {
        self.core.pause_mode() != PauseMode::Off
            && conn
                .session
                .as_deref()
                .is_some_and(|s| cmd::connection::pause_holds(s, cmd, args))
    }

    /// Runs a command that passed the checks that answer at once (name, arity, ACL, BUSY),
    /// or holds it while CLIENT PAUSE covers it: as Redis, a paused client's command waits
    /// before it is queued in MULTI, shown to MONITOR or run.
    fn admit(&mut self, r: ConnRef, conn: &mut Conn, cmd: &'static Command, args: &mut Vec<Bytes>) {
        let core = &self.core;
        if self.pause_holds(conn, cmd, args) {
            conn.held = Some(Held {
                cmd,
                args: std::mem::take(args),
                mute: false,
                paused: true,
            });
            conn.client.borrow_mut().paused = true;
            self.paused_conns.push(r);
            return;
        }
        let Some(session) = conn.session.as_deref_mut() else {
            return;
        };
        if session.multi.is_some() && !multi::runs_inside_multi(cmd) {
            // Queued unweighed: EXEC is judged on the whole transaction.
            session.open_slot = None;
            let reply = multi::queue(session, cmd, std::mem::take(args));
            return conn.reply(reply);
        }
        // EXEC describes itself after its commands (see `dispatch::exec`).
        if !matches!(cmd.exec, Exec::Server(ServerCmd::Exec))
            && crate::core::monitored(cmd)
            && core.pubsub.borrow().has_monitors()
        {
            let c = conn.client.borrow();
            core.feed_monitors(&c.addr, c.db, &crate::core::calls::redacted(cmd, args));
        }
        conn.mute = conn.client.borrow_mut().take_mute();
        // Snapshots failing with stop-writes-on-bgsave-error: writes (and PING) are refused.
        if crate::persist::writes_refused()
            && (cmd.is_write() || matches!(cmd.exec, Exec::Server(ServerCmd::Ping)))
        {
            let refused = Reply::err(crate::persist::MISCONF);
            core.record_rejected(Some(cmd), &refused);
            return conn.reply(refused);
        }
        // The append-only log cannot be written: writes are refused, as Redis does.
        if cmd.is_write() {
            if let Some(refused) = crate::persist::aof::writes_refused() {
                return conn.reply(Reply::error(refused));
            }
        }
        self.run_parsed(r, conn, cmd, args);
    }

    /// Runs a command past the checks of `dispatch`, or holds it back. A connection's commands
    /// run in order: those for one shard travel in order, and a command that reads or acts
    /// beyond one shard (MGET over shards, EXEC, PUBLISH, INFO…) waits until every command
    /// sent before it to another core has run there. Holding also bounds how many of the
    /// connection's commands are on other cores at once.
    fn run_parsed(
        &mut self,
        r: ConnRef,
        conn: &mut Conn,
        cmd: &'static Command,
        args: &mut Vec<Bytes>,
    ) {
        conn.caching_ends = tracking::caching_ends_after(cmd);
        if let Some(asking) = conn.session.as_deref_mut().and_then(|s| s.open_slot.take()) {
            return self.suspend_open(r, conn, cmd, args, asking);
        }
        match cmd.exec {
            Exec::Server(which) if !cmd::must_wait(which) => {
                if conn.remote_in_flight > 0 {
                    return hold(conn, cmd, args);
                }
                let Some(session) = conn.session.as_deref_mut() else {
                    return;
                };
                match cmd::call_sync(session, which, cmd, args) {
                    Some(reply) => {
                        if std::mem::take(&mut conn.client.borrow_mut().replies_resumed) {
                            conn.mute = false;
                        }
                        conn.reply(reply)
                    }
                    None => conn.closing = true,
                }
                if conn.client.borrow().closing {
                    conn.closing = true;
                }
            }
            Exec::Server(_) => self.suspend(r, conn, cmd, args),
            Exec::Shard(_) => self.dispatch_shard(r, conn, cmd, args),
        }
        // A command that went to a task ends when the task hands the session back; a held
        // one when it runs.
        if conn.session.is_some() && conn.held.is_none() {
            conn.end_of_command();
        }
    }

    fn dispatch_shard(
        &mut self,
        r: ConnRef,
        conn: &mut Conn,
        cmd: &'static Command,
        args: &mut Vec<Bytes>,
    ) {
        let core = self.core.clone();
        let (db, resp3, track, client) = {
            let c = conn.client.borrow();
            let me = Subscriber {
                core: core.id,
                conn: r,
            };
            (c.db, c.resp3, c.tracking.caller(me), c.id)
        };
        let shards = core.shards;
        // A cluster node's own client: keyless commands over all data (DBSIZE, KEYS,
        // FLUSHALL…) cover this node's keys only, as on a Redis Cluster node.
        let all_shards = matches!(cmd.fanout, Fanout::AllShards(_)) && !conn.client.borrow().node;
        let needs_task = cmd.flags.has(Flags::BLOCKING)
            || (shards > 1 && (all_shards || cmd.key_finder.is_some()));
        if needs_task {
            // A blocking command with data at hand answers at once; others wait in a task.
            if cmd.flags.has(Flags::BLOCKING) && conn.pending.is_empty() {
                if let Target::Shard(s) = route::target(cmd, args, shards, core.id, &mut self.keys)
                {
                    if s == core.id && !core.lock_blocks(cmd, args, db, None) {
                        let reply = core.execute(cmd, args, db, resp3, track, client);
                        if !crate::core::waiters::is_null(&reply) {
                            return conn.reply(reply);
                        }
                    }
                }
            }
            return self.suspend(r, conn, cmd, args);
        }
        match route::target(cmd, args, shards, core.id, &mut self.keys) {
            Target::Shard(shard) if shard == core.id => {
                if core.lock_blocks(cmd, args, db, None) {
                    return self.suspend(r, conn, cmd, args);
                }
                let reply = core.execute(cmd, args, db, resp3, track, client);
                if std::mem::take(&mut conn.write_pending) {
                    let seq = crate::primary::feed_seq(core.id);
                    conn.client.borrow_mut().woff.ran_on(core.id, seq);
                }
                conn.reply(reply);
            }
            Target::Shard(_) if conn.remote_in_flight >= MAX_REMOTE_IN_FLIGHT => {
                hold(conn, cmd, args)
            }
            Target::Shard(shard) => {
                let spare = &mut self.spare_batches;
                let batch = self.outbox.get_mut(shard).map(|b| {
                    b.get_or_insert_with(|| match spare.pop() {
                        Some(mut batch) => {
                            batch.recycle(shard);
                            batch
                        }
                        None => Box::new(Batch::for_conns(core.id, shard)),
                    })
                });
                if let Some(batch) = batch {
                    batch.push(cmd, args.drain(..), db, resp3, track, client);
                    if let BatchReply::Conns { conns, .. } = &mut batch.reply {
                        conns.push(r);
                    }
                    conn.expect_remote(shard);
                    if std::mem::take(&mut conn.write_pending) {
                        conn.client.borrow_mut().woff.forwarded(shard);
                    }
                }
            }
            Target::Several => self.suspend(r, conn, cmd, args),
        }
    }

    /// Hands the command and the session to a task; the connection waits for them.
    fn suspend(
        &mut self,
        r: ConnRef,
        conn: &mut Conn,
        cmd: &'static Command,
        args: &mut Vec<Bytes>,
    ) {
        if conn.remote_in_flight > 0 {
            return hold(conn, cmd, args);
        }
        let Some(mut session) = conn.session.take() else {
            return;
        };
        conn.muted_task = conn.mute;
        conn.expect_task();
        let args = std::mem::take(args);
        let returns = self.returns.clone();
        spawn::spawn(async move {
            let reply = dispatch::run(&mut session, cmd, args).await;
            returns.borrow_mut().push((r, session, reply));
        });
    }

    /// Runs a command of a slot being moved in a task: the cluster's verdict on the keys its
    /// shard has, then the command (`cluster::redirect::run_open`).
    fn suspend_open(
        &mut self,
        r: ConnRef,
        conn: &mut Conn,
        cmd: &'static Command,
        args: &mut Vec<Bytes>,
        asking: bool,
    ) {
        if conn.remote_in_flight > 0 {
            if let Some(s) = conn.session.as_deref_mut() {
                s.open_slot = Some(asking);
            }
            return hold(conn, cmd, args);
        }
        let Some(mut session) = conn.session.take() else {
            return;
        };
        conn.muted_task = conn.mute;
        conn.expect_task();
        let args = std::mem::take(args);
        let returns = self.returns.clone();
        spawn::spawn(async move {
            let reply = crate::cluster::redirect::run_open(&mut session, cmd, args, asking).await;
            returns.borrow_mut().push((r, session, reply));
        });
    }

    /// Sends this pass's batches to their shards.
    fn send_outboxes(&mut self) {
        // One clock read for all of the pass's batches.
        let mut now = None;
        for (shard, slot) in self.outbox.iter_mut().enumerate() {
            if let Some(mut batch) = slot.take() {
                self.core.forwarding.sent(batch.reqs.len());
                if let BatchReply::Conns { sent, .. } = &mut batch.reply {
                    *sent = Some(*now.get_or_insert_with(Instant::now));
                }
                self.core.send(shard, Msg::Batch(batch));
            }
        }
    }

    /// Whether connection `conn` went over its class's `client-output-buffer-limit` (pubsub
    /// for a client with subscriptions, normal otherwise).
    fn output_limit_exceeded(&self, conn: &mut Conn) -> Option<&'static str> {
        let unsent = conn.unsent() as u64;
        let hot = self.core.config.borrow().hot();
        let limits = if conn.client.borrow().subs.active() {
            hot.output_limit_pubsub
        } else {
            hot.output_limit_normal
        };
        if limits.hard > 0 && unsent > limits.hard {
            return Some("hard limit");
        }
        if limits.soft > 0 && unsent > limits.soft {
            let now = self.core.now_ms();
            let since = *conn.over_soft_since.get_or_insert(now);
            if now.saturating_sub(since) / 1000 > limits.soft_secs {
                return Some("soft limit");
            }
        } else {
            conn.over_soft_since = None;
        }
        None
    }

    fn close(&mut self, i: u32, mut conn: Box<Conn>) {
        if let Some(session) = conn.session.as_deref_mut() {
            multi::unwatch_all(session);
        }
        let r = self.conn_ref(i);
        cmd::pubsub::forget_all(&self.core, &mut conn.client.borrow_mut(), r);
        tracking::disable(&self.core, &mut conn.client.borrow_mut());
        if let Some(session) = conn.session.as_deref() {
            cmd::connection::stop_monitoring(session);
        }
        let id = conn.client.borrow().id;
        self.core.clients.borrow_mut().remove(&id);
        crate::core::client_eviction::closed(&self.core, id);
        CONNECTED.fetch_sub(1, Ordering::Relaxed);
        if let Some(slot) = conn.fixed {
            if let Err(e) = self.ring.set_file(slot, -1) {
                warn!("cannot release a registered file: {e}");
            }
        }
        let handoff = conn.client.borrow_mut().handoff.take();
        // A replica's link takes the socket over, with its TLS session if it has one.
        let session = conn.tls.take().map(|tls| tls.into_session());
        match (handoff, session) {
            (Some(take), None) => take(conn.fd, None),
            (Some(take), Some(Some(session))) => take(conn.fd, Some(session)),
            (other, _) => {
                if let Some(refuse) = other {
                    refuse(-1, None);
                }
                // SAFETY: the connection owns its fd and nothing in the kernel refers to it
                // any more (no receive armed, no send in flight).
                unsafe { libc::close(conn.fd) };
            }
        }
        if let Some(place) = self.places.get_mut(i as usize) {
            place.conn = None;
            place.gen = place.gen.wrapping_add(1);
        }
        self.free.push(i);
    }

    fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        if let Err(e) = crate::persist::aof::log::close(&self.core) {
            warn!("closing the append only file: {e}");
        }
        for place in &mut self.places {
            if let Some(conn) = place.conn.take() {
                // SAFETY: closing fds this loop owns, at shutdown.
                unsafe { libc::close(conn.fd) };
                CONNECTED.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

/// Encodes a Pub/Sub message as Redis writes it: `message`, `pmessage` (with the pattern) or
/// `smessage`, an array in RESP2 and a push in RESP3.
fn encode_message(
    kind: SubKind,
    pattern: &Option<Bytes>,
    channel: &Bytes,
    payload: &Bytes,
    resp3: bool,
    out: &mut Vec<u8>,
) {
    let len = if pattern.is_some() { b'4' } else { b'3' };
    out.extend_from_slice(&[if resp3 { b'>' } else { b'*' }, len, b'\r', b'\n']);
    out.extend_from_slice(match kind {
        SubKind::Channel => b"$7\r\nmessage\r\n",
        SubKind::Pattern => b"$8\r\npmessage\r\n",
        SubKind::Shard => b"$8\r\nsmessage\r\n",
    });
    for part in pattern.iter().chain([channel, payload]) {
        out.push(b'$');
        out.extend_from_slice(itoa::Buffer::new().format(part.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(part);
        out.extend_from_slice(b"\r\n");
    }
}

/// Whether a connection is over its class's hard output limit (it is closed when next served,
/// and gets no more messages meanwhile).
fn over_hard_limit(hot: &crate::config::HotValues, conn: &Conn) -> bool {
    let limit = if conn.client.borrow().subs.active() {
        hot.output_limit_pubsub.hard
    } else {
        hot.output_limit_normal.hard
    };
    limit > 0 && conn.unsent() as u64 > limit
}

/// Parks a parsed command on its connection until the connection's replies from other cores
/// are back; parsing stops meanwhile.
fn hold(conn: &mut Conn, cmd: &'static Command, args: &mut Vec<Bytes>) {
    conn.held = Some(Held {
        cmd,
        args: std::mem::take(args),
        mute: conn.mute,
        paused: false,
    });
}

/// Writes `msg` to a connection being refused and closes it.
fn reject(fd: i32, msg: &[u8]) {
    // SAFETY: a best-effort non-blocking send on a socket we were just handed, then close.
    unsafe {
        libc::send(
            fd,
            msg.as_ptr() as *const libc::c_void,
            msg.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        );
        libc::close(fd);
    }
}

/// Redis 7.0's protected-mode refusal, byte for byte.
const DENIED: &[u8] = b"-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

impl Future for EventLoop {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if !this.pass() {
            return Poll::Ready(());
        }
        // Run again after any task this pass woke (glommio runs them first).
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Drop for EventLoop {
    fn drop(&mut self) {
        self.stop();
    }
}
