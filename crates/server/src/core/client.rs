//! What a connection presents to the rest of the core: its client record (selected database,
//! protocol, name, addresses, activity) in the per-core client table behind CLIENT LIST,
//! CLIENT KILL and INFO; the handle CLIENT UNBLOCK uses; and the hang-up signal the event
//! loop raises when the peer goes away.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use futures_channel::mpsc;
use shardis_resp::Reply;

use super::pubsub::Kind;
use super::tracking::ClientTracking;
use super::ConnRef;

/// What one connection is.
pub struct Client {
    pub id: u64,
    /// How the core's event loop names the connection (deliveries are addressed to it).
    pub conn: ConnRef,
    pub db: usize,
    pub resp3: bool,
    pub name: Option<Bytes>,
    pub lib_name: Option<Bytes>,
    pub lib_ver: Option<Bytes>,
    pub addr: String,
    pub laddr: String,
    pub fd: RawFd,
    pub created: Instant,
    /// The core clock (ms) when the client last sent something.
    pub last_active_ms: u64,
    /// Full name of the last command (`client|list`), for CLIENT LIST's `cmd=`.
    pub last_cmd: Option<&'static str>,
    /// The query buffer at the last look: bytes in it (the command being run included, as
    /// Redis trims its buffer only after the command) and its free capacity.
    pub qbuf: usize,
    pub qbuf_free: usize,
    /// Bytes of the arguments of the command being run (Redis's `argv-mem`).
    pub argv_mem: usize,
    /// Reply bytes not yet written to the socket at the last look, and how many separate
    /// replies they are behind (Redis's `oll`: replies still awaited from other cores or a
    /// task count as one each).
    pub omem: usize,
    pub oll: usize,
    /// Capacity of its input and output buffers (part of `tot-mem`).
    pub buf_cap: usize,
    /// Commands queued since MULTI (None outside MULTI), and their arguments' bytes.
    pub multi: Option<(usize, usize)>,
    /// Memory of the WATCHed keys (counted in `multi-mem`, as Redis counts them there).
    pub watch_mem: usize,
    /// Waiting for socket space to write (`events=w`).
    pub writing: bool,
    /// Its command is held by CLIENT PAUSE (counted as blocked, flag `b`).
    pub paused: bool,
    /// CLIENT NO-EVICT: never closed by client eviction (flag `e`).
    pub no_evict: bool,
    /// Set when the connection must close after its pending replies are written.
    pub closing: bool,
    /// While blocked (BLPOP…): how CLIENT UNBLOCK ends the wait.
    pub unblock: Option<Unblock>,
    /// What it subscribes to.
    pub subs: Subscriptions,
    /// In MONITOR mode.
    pub monitor: bool,
    /// CLIENT REPLY's setting.
    pub reply_mode: ReplyMode,
    /// The command being run turned replies back on (CLIENT REPLY ON, RESET): its own reply
    /// is written although the client was muted when it began, as in Redis.
    pub replies_resumed: bool,
    /// CLIENT TRACKING's settings.
    pub tracking: ClientTracking,
    /// The ACL user it runs as (this core's copy), and whether it authenticated as it.
    pub user: crate::acl::UserRef,
    pub authenticated: bool,
    /// Connected to its core's own cluster node port: redirected, never forwarded.
    pub node: bool,
    /// READONLY (cluster mode; flag `r`): reads may be served by a replica of the slot's
    /// primary. Every node here is a primary, so it changes no routing.
    pub readonly: bool,
    /// ASKING (cluster bus): the next command may be served in a slot this node imports.
    pub asking: bool,
    /// WAIT's target (Redis's `woff`, see `crate::primary::Woff`).
    pub woff: crate::primary::Woff,
    /// The client applying our primary's stream (`crate::replica`; flag `M`, type master).
    pub master: bool,
    /// What a replica said of itself with REPLCONF before PSYNC.
    pub replica_hello: ReplicaHello,
    /// Set by PSYNC/SYNC: the connection leaves the event loop once its replies are written,
    /// and its socket is handed to this (the replication link takes it over).
    /// A connection of the `tls-port` hands its established session over with it.
    pub handoff: Option<Handoff>,
}

/// What takes a connection over from the event loop: its socket (-1: it could not be
/// handed over) and, from the `tls-port`, its established TLS session.
pub type Handoff = Box<dyn FnOnce(RawFd, Option<rustls::ServerConnection>)>;

/// REPLCONF's facts about a replica (listening-port, ip-address, capa).
#[derive(Clone, Debug, Default)]
pub struct ReplicaHello {
    pub port: u16,
    pub ip: Option<String>,
    /// `capa eof`: it reads a full sync's RDB delimited by a mark (diskless).
    pub eof: bool,
    /// `capa psync2`: it understands `+CONTINUE <replid>`.
    pub psync2: bool,
}

/// CLIENT REPLY: whether the client gets replies (pushes always reach it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReplyMode {
    #[default]
    On,
    Off,
    /// No reply for the next command, then on again.
    SkipNext,
}

/// A client's Pub/Sub subscriptions: its side of the registry in `core::pubsub`, and the last
/// word on whether a message is delivered to it.
#[derive(Default)]
pub struct Subscriptions {
    pub channels: ahash::HashSet<Bytes>,
    /// In subscription order.
    pub patterns: Vec<Bytes>,
    pub shard_channels: ahash::HashSet<Bytes>,
    /// What the subscriptions take of the client's memory (`tot-mem`): their entries; the
    /// names are shared with the core's registry.
    pub mem: usize,
}

/// One subscription's entry in a client's sets.
const SUBSCRIPTION_MEM: usize = std::mem::size_of::<Bytes>() + 8;

impl Subscriptions {
    /// Channels and patterns, as SUBSCRIBE and PSUBSCRIBE replies count them.
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// Shard channels, as SSUBSCRIBE replies count them.
    pub fn shard_count(&self) -> usize {
        self.shard_channels.len()
    }

    /// Subscribed to anything: the client is in Pub/Sub mode (RESP2 restricts its commands,
    /// and its output limit is the pubsub class's).
    pub fn active(&self) -> bool {
        self.count() + self.shard_count() > 0
    }

    /// Adds a subscription; false if it was there already.
    pub fn add(&mut self, kind: Kind, name: &Bytes) -> bool {
        let added = match kind {
            Kind::Channel => self.channels.insert(name.clone()),
            Kind::Shard => self.shard_channels.insert(name.clone()),
            Kind::Pattern => {
                if self.patterns.contains(name) {
                    return false;
                }
                self.patterns.push(name.clone());
                true
            }
        };
        if added {
            self.mem += SUBSCRIPTION_MEM;
        }
        added
    }

    /// Removes a subscription; false if it was not there.
    pub fn remove(&mut self, kind: Kind, name: &[u8]) -> bool {
        let removed = match kind {
            Kind::Channel => self.channels.remove(name),
            Kind::Shard => self.shard_channels.remove(name),
            Kind::Pattern => {
                let before = self.patterns.len();
                self.patterns.retain(|p| p[..] != *name);
                self.patterns.len() != before
            }
        };
        if removed {
            self.mem = self.mem.saturating_sub(SUBSCRIPTION_MEM);
        }
        removed
    }

    /// Every subscription of `kind`.
    pub fn names(&self, kind: Kind) -> Vec<Bytes> {
        match kind {
            Kind::Channel => self.channels.iter().cloned().collect(),
            Kind::Shard => self.shard_channels.iter().cloned().collect(),
            Kind::Pattern => self.patterns.clone(),
        }
    }

    /// Whether a delivery of `kind` (for `pattern` or `channel`) is still wanted.
    pub fn wants(&self, kind: Kind, pattern: Option<&Bytes>, channel: &Bytes) -> bool {
        match kind {
            Kind::Channel => self.channels.contains(channel),
            Kind::Shard => self.shard_channels.contains(channel),
            Kind::Pattern => pattern.is_some_and(|p| self.patterns.contains(p)),
        }
    }
}

/// The handle CLIENT UNBLOCK uses: the blocked command's reply channel and claim flag.
pub struct Unblock {
    pub reply: mpsc::UnboundedSender<Reply>,
    pub claim: Arc<AtomicBool>,
    /// What a timeout answers for this command.
    pub timeout_reply: Reply,
    /// The hash slot of the first key it waits on, and whether the command writes: in
    /// cluster mode a client blocked on a slot this node no longer serves is redirected.
    pub slot: u16,
    pub write: bool,
}

impl Unblock {
    /// Ends the wait with the timeout reply or an error, unless a shard already served it.
    pub fn unblock(&self, with_error: bool) -> bool {
        let reply = if with_error {
            Reply::err("UNBLOCKED client unblocked via CLIENT UNBLOCK")
        } else {
            self.timeout_reply.clone()
        };
        self.unblock_with(reply)
    }

    /// Ends the wait with `reply`, unless a shard already served it.
    pub fn unblock_with(&self, reply: Reply) -> bool {
        if self
            .claim
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return false;
        }
        self.reply.unbounded_send(reply).is_ok()
    }
}

/// The table entry other commands (CLIENT LIST/KILL) see.
pub type ClientHandle = Rc<RefCell<Client>>;

impl Client {
    /// A new connection, running as `user` (the default user, authenticated when it needs no
    /// password).
    /// `conn`: how the core's event loop names the connection.
    pub fn new(
        (id, conn): (u64, ConnRef),
        fd: RawFd,
        addr: String,
        laddr: String,
        now_ms: u64,
        user: crate::acl::UserRef,
        authenticated: bool,
    ) -> Client {
        Client {
            id,
            conn,
            db: 0,
            resp3: false,
            name: None,
            lib_name: None,
            lib_ver: None,
            addr,
            laddr,
            fd,
            created: Instant::now(),
            last_active_ms: now_ms,
            last_cmd: None,
            qbuf: 0,
            qbuf_free: 0,
            argv_mem: 0,
            omem: 0,
            oll: 0,
            buf_cap: 0,
            watch_mem: 0,
            multi: None,
            writing: false,
            paused: false,
            no_evict: false,
            closing: false,
            unblock: None,
            subs: Subscriptions::default(),
            monitor: false,
            reply_mode: ReplyMode::On,
            replies_resumed: false,
            tracking: ClientTracking::default(),
            user,
            authenticated,
            node: false,
            readonly: false,
            asking: false,
            woff: crate::primary::Woff::default(),
            master: false,
            replica_hello: ReplicaHello::default(),
            handoff: None,
        }
    }

    /// Whether the reply of the command about to run is to be dropped (CLIENT REPLY OFF or
    /// SKIP); a SKIP is used up.
    pub fn take_mute(&mut self) -> bool {
        match self.reply_mode {
            ReplyMode::On => false,
            ReplyMode::Off => true,
            ReplyMode::SkipNext => {
                self.reply_mode = ReplyMode::On;
                true
            }
        }
    }

    /// Turns replies back on; the command doing it gets its reply.
    pub fn resume_replies(&mut self) {
        self.reply_mode = ReplyMode::On;
        self.replies_resumed = true;
    }

    /// Seconds since the client last sent something.
    pub fn idle_secs(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.last_active_ms) / 1000
    }

    /// One CLIENT LIST / CLIENT INFO line, fields as Redis prints them. Output is shown as
    /// Redis's: up to 16 KiB of unsent replies in the fixed buffer (`obl`), the rest in the
    /// reply list (`omem`), whose entries (`oll`) are also the replies still awaited from
    /// other cores or a task.
    pub fn info_line(&self, now_ms: u64) -> String {
        let text = |b: &Option<Bytes>| {
            b.as_ref()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        let obl = self.omem.min(FIXED_REPLY_BUFFER);
        let omem = self.omem - obl;
        let (multi, multi_mem) = match self.multi {
            Some((n, mem)) => (n as i64, mem + self.watch_mem),
            None => (-1, self.watch_mem),
        };
        let events = match (self.closing, self.writing) {
            (true, false) => "",
            (true, true) => "w",
            (false, false) => "r",
            (false, true) => "rw",
        };
        ListLine {
            id: self.id,
            addr: &self.addr,
            laddr: &self.laddr,
            fd: self.fd,
            name: &text(&self.name),
            age: self.created.elapsed().as_secs(),
            idle: self.idle_secs(now_ms),
            flags: &self.flags(),
            db: self.db,
            sub: self.subs.channels.len(),
            psub: self.subs.patterns.len(),
            ssub: self.subs.shard_channels.len(),
            multi,
            qbuf: self.qbuf,
            qbuf_free: self.qbuf_free,
            argv_mem: self.argv_mem,
            multi_mem,
            rbp: obl,
            obl,
            oll: self.oll + usize::from(omem > 0),
            omem,
            tot_mem: self.tot_mem(),
            events,
            cmd: self.last_cmd.unwrap_or("NULL"),
            // Redis's master client runs as no user: it may do everything.
            user: &if self.master {
                "(superuser)".to_string()
            } else {
                String::from_utf8_lossy(&self.user.borrow().name).into_owned()
            },
            redir: self.tracking.redirect_id(),
            resp: if self.resp3 { 3 } else { 2 },
            lib_name: &text(&self.lib_name),
            lib_ver: &text(&self.lib_ver),
        }
        .to_string()
    }

    /// The memory the client takes (CLIENT LIST's `tot-mem`, what client eviction counts):
    /// its record, input and output buffers, the arguments of the command it runs, its MULTI
    /// queue and its subscriptions.
    pub fn tot_mem(&self) -> usize {
        let multi_mem = self.multi.map_or(0, |(_, mem)| mem) + self.watch_mem;
        std::mem::size_of::<Client>()
            + self.buf_cap
            + self.argv_mem
            + multi_mem
            + self.subs.mem
            + self.tracking.prefix_mem
    }

    /// CLIENT LIST's flags, letters in Redis's order (N: none).
    fn flags(&self) -> String {
        let mut out = String::new();
        if self.master {
            out.push('M');
        }
        if self.monitor {
            out.push('O');
        }
        if self.subs.active() {
            out.push('P');
        }
        if self.multi.is_some() {
            out.push('x');
        }
        if self.is_blocked() {
            out.push('b');
        }
        self.tracking.list_flags(&mut out);
        if self.closing {
            out.push('c');
        }
        if self.readonly {
            out.push('r');
        }
        if self.no_evict {
            out.push('e');
        }
        if out.is_empty() {
            out.push('N');
        }
        out
    }

    /// Blocked, as INFO's `blocked_clients` counts: in a blocking command, or held by
    /// CLIENT PAUSE.
    pub fn is_blocked(&self) -> bool {
        self.unblock.is_some() || self.paused
    }

    /// Shuts the socket down under the connection's pending receive, which then ends the
    /// connection.
    pub fn kill(&mut self) {
        self.closing = true;
        // SAFETY: shutting down an fd this connection still owns; the receive in flight ends.
        unsafe {
            libc::shutdown(self.fd, libc::SHUT_RDWR);
        }
    }
}

/// The fixed reply buffer Redis shows apart (`rbs`, `obl`).
const FIXED_REPLY_BUFFER: usize = 16 * 1024;

/// The fields of one CLIENT LIST line, in Redis's order: what a client of an event loop
/// shows, and what the replication links, whose sockets left the event loops, show.
pub struct ListLine<'a> {
    pub id: u64,
    pub addr: &'a str,
    pub laddr: &'a str,
    pub fd: RawFd,
    pub name: &'a str,
    pub age: u64,
    pub idle: u64,
    pub flags: &'a str,
    pub db: usize,
    pub sub: usize,
    pub psub: usize,
    pub ssub: usize,
    /// Commands queued since MULTI, -1 outside MULTI.
    pub multi: i64,
    pub qbuf: usize,
    pub qbuf_free: usize,
    pub argv_mem: usize,
    pub multi_mem: usize,
    /// Bytes used of the fixed reply buffer (`rbp`, its peak; `obl`, now).
    pub rbp: usize,
    pub obl: usize,
    pub oll: usize,
    pub omem: usize,
    pub tot_mem: usize,
    pub events: &'a str,
    pub cmd: &'a str,
    pub user: &'a str,
    pub redir: i64,
    pub resp: u8,
    pub lib_name: &'a str,
    pub lib_ver: &'a str,
}

impl std::fmt::Display for ListLine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={} qbuf-free={} argv-mem={} multi-mem={} rbs={FIXED_REPLY_BUFFER} rbp={} obl={} oll={} omem={} tot-mem={} events={} cmd={} user={} redir={} resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            self.name,
            self.age,
            self.idle,
            self.flags,
            self.db,
            self.sub,
            self.psub,
            self.ssub,
            self.multi,
            self.qbuf,
            self.qbuf_free,
            self.argv_mem,
            self.multi_mem,
            self.rbp,
            self.obl,
            self.oll,
            self.omem,
            self.tot_mem,
            self.events,
            self.cmd,
            self.user,
            self.redir,
            self.resp,
            self.lib_name,
            self.lib_ver,
        )
    }
}

/// Checks a client name as Redis does: no spaces, newlines or special characters.
pub fn valid_name(name: &[u8]) -> bool {
    name.iter().all(|&c| (b'!'..=b'~').contains(&c))
}

/// Raised by the event loop when the connection's peer closed (or it was killed), so a task
/// waiting on the client's behalf (a blocking pop) can stop.
#[derive(Default)]
pub struct Hangup {
    closed: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Hangup {
    pub fn raise(&self) {
        self.closed.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    pub fn is_raised(&self) -> bool {
        self.closed.get()
    }

    /// Completes when the connection closes.
    pub fn wait(&self) -> impl Future<Output = ()> + '_ {
        WaitHangup(self)
    }
}

struct WaitHangup<'a>(&'a Hangup);

impl Future for WaitHangup<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.closed.get() {
            return Poll::Ready(());
        }
        *self.0.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}
