//! One connection's I/O state on the event loop: its input buffer and parser, the replies
//! waiting to be written (in request order, with slots for replies still on other cores or in
//! a task), and the buffer the kernel is sending from.
//!
//! Invalidation pushes (client-side caching) are written behind any reply still awaited: a
//! client must never learn that a key changed before the reply of a read that preceded the
//! change (it would cache a stale value), and its own change's invalidation follows the reply
//! of the command that made it, as in Redis.

use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use shardis_resp::{encode, Reply, RequestParser};

use crate::conn::session::Session;
use crate::core::client::{ClientHandle, Hangup};
use crate::tls::TlsConn;

/// A reply not yet written because an earlier one is still on another core.
pub enum Slot {
    /// The next reply from this shard's batch.
    Remote(usize),
    /// The same, for a command whose reply is dropped (CLIENT REPLY OFF or SKIP).
    Muted(usize),
    /// Encoded bytes that came back from another core.
    Encoded(Bytes),
    /// A reply produced here.
    Reply(Reply),
    /// The reply of the command a task is running for the connection.
    Task,
    /// A push message behind an earlier reply.
    Push(Vec<u8>),
}

/// A reply another core encoded, as `Conn::fill_remote` gets it: inside the batch it came
/// in, or a share of the batch's reply buffer (for a large reply that must wait, which is
/// then kept without a copy).
pub enum Encoded<'a> {
    Borrowed(&'a [u8]),
    Shared(Bytes),
}

impl Encoded<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Encoded::Borrowed(bytes) => bytes,
            Encoded::Shared(bytes) => bytes,
        }
    }
}

/// Push bytes a connection holds behind awaited replies before it writes new ones at once: a
/// client blocked for long (BLPOP 0) still gets its pushes, and memory stays bounded.
const MAX_HELD_PUSHES: usize = 1 << 20;

/// Reply bytes encoded ahead of the socket at most. Replies past it stay in `pending` as they
/// are (a reference to the value read, or the bytes another core encoded) until the kernel
/// has taken the earlier ones: a pipeline of large reads then holds one encoded copy of at
/// most this much instead of a copy of every value it asked for.
pub const ENCODE_AHEAD: usize = 16 << 20;

/// A command parsed and held back until the connection's commands on other cores come back
/// (see `EventLoop::run_parsed`).
pub struct Held {
    pub cmd: &'static shardis_engine::Command,
    pub args: Vec<Bytes>,
    /// Its reply is dropped (CLIENT REPLY OFF or SKIP, decided when it was parsed).
    pub mute: bool,
    /// Held by CLIENT PAUSE before any of its effects (it is admitted again once the pause
    /// ends), rather than by the connection's replies on other cores.
    pub paused: bool,
}

/// A connection being served.
pub struct Conn {
    pub fd: RawFd,
    /// The connection's slot in the ring's registered files, when it has one.
    pub fixed: Option<u32>,
    pub client: ClientHandle,
    pub hangup: Rc<Hangup>,
    /// None while a task runs a command for this connection.
    pub session: Option<Box<Session>>,
    /// Bytes received and not yet parsed.
    pub rbuf: BytesMut,
    pub parser: RequestParser,
    /// The current command's arguments (reused from command to command).
    pub args: Vec<Bytes>,
    /// Replies encoded and not yet handed to the kernel.
    pub out: Vec<u8>,
    /// Bytes ever taken from the front of `out`, and the position (counted the same way) up
    /// to which `out` may be handed to the kernel: under `appendfsync always` replies wait
    /// for the sync of their commands' records (see `persist::aof::log`).
    pub out_taken: u64,
    pub out_cleared: u64,
    /// The position of the last reply queued to wait for a sync.
    pub out_awaited: u64,
    /// The buffer the kernel is sending from (stays put until its completion), and how much
    /// of it is sent.
    pub sending: Vec<u8>,
    pub sent: usize,
    pub send_inflight: bool,
    /// Replies waiting behind one still on another core.
    pub pending: VecDeque<Slot>,
    /// Commands sent to other cores whose replies have not come back.
    pub remote_in_flight: usize,
    /// The command being dispatched writes, and where it runs is not yet noted for WAIT
    /// (`primary::Woff`).
    pub write_pending: bool,
    /// A command that waits for those replies before it runs.
    pub held: Option<Held>,
    /// A multishot receive is armed.
    pub recv_armed: bool,
    /// The peer closed, or the socket failed: no more input.
    pub read_closed: bool,
    /// Close once the replies so far are written (QUIT, protocol error, limits).
    pub closing: bool,
    /// Parsing stopped until the output drains (the client does not read its replies).
    pub paused: bool,
    /// On the event loop's list of connections with work to do.
    pub scheduled: bool,
    /// Since when (ms) the output has been over the soft limit, if it is.
    pub over_soft_since: Option<u64>,
    /// The command being run drops its reply (CLIENT REPLY OFF or SKIP).
    pub mute: bool,
    /// The same, for the command a task is running.
    pub muted_task: bool,
    /// The command being run ends a CLIENT CACHING's effect (see `core::tracking`).
    pub caching_ends: bool,
    /// The request bytes and argument bytes of the command being run (CLIENT LIST's
    /// `qbuf` counts the first until the command ends, as Redis trims its buffer after it).
    pub cmd_bytes: usize,
    pub argv_mem: usize,
    /// Bytes of the `Slot::Push` entries in `pending`.
    held_pushes: usize,
    /// The TLS session of a connection accepted on `tls-port`: `rbuf` and `out` then hold
    /// plaintext, and `sending` the ciphertext `TlsConn::seal` made of it.
    pub tls: Option<Box<TlsConn>>,
}

impl Conn {
    pub fn new(fd: RawFd, client: ClientHandle, session: Session) -> Conn {
        Conn {
            fd,
            fixed: None,
            client,
            hangup: session.hangup.clone(),
            session: Some(Box::new(session)),
            rbuf: BytesMut::new(),
            parser: RequestParser::new(),
            args: Vec::new(),
            out: Vec::new(),
            out_taken: 0,
            out_cleared: 0,
            out_awaited: 0,
            sending: Vec::new(),
            sent: 0,
            send_inflight: false,
            pending: VecDeque::new(),
            remote_in_flight: 0,
            write_pending: false,
            held: None,
            recv_armed: false,
            read_closed: false,
            closing: false,
            paused: false,
            scheduled: false,
            over_soft_since: None,
            mute: false,
            muted_task: false,
            caching_ends: false,
            cmd_bytes: 0,
            argv_mem: 0,
            held_pushes: 0,
            tls: None,
        }
    }

    fn resp3(&self) -> bool {
        self.client.borrow().resp3
    }

    /// Queues a reply in request order (or drops it, for a muted command).
    pub fn reply(&mut self, reply: Reply) {
        if self.drops(&reply) {
            return;
        }
        if self.pending.is_empty() {
            let resp3 = self.resp3();
            encode(&reply, resp3, &mut self.out);
        } else {
            self.pending.push_back(Slot::Reply(reply));
        }
    }

    /// Whether a reply of the command being run is dropped: CLIENT REPLY OFF or SKIP mutes
    /// replies, but not Pub/Sub's (un)subscribe confirmations, which Redis writes as pushes
    /// whatever the protocol.
    fn drops(&self, reply: &Reply) -> bool {
        let push = |r: &Reply| matches!(r, Reply::Push(_));
        let is_push = match reply {
            Reply::Multiple(all) => !all.is_empty() && all.iter().all(push),
            other => push(other),
        };
        self.mute && !is_push
    }

    /// Writes a push message (an invalidation) behind the replies still awaited, if any.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.pending.is_empty() || self.held_pushes > MAX_HELD_PUSHES {
            self.out.extend_from_slice(bytes);
        } else {
            self.held_pushes += bytes.len();
            self.pending.push_back(Slot::Push(bytes.to_vec()));
        }
    }

    /// Reserves the place of the reply of the command a task is about to run.
    pub fn expect_task(&mut self) {
        self.pending.push_back(Slot::Task);
    }

    /// Puts the reply a task handed back in its place (None, or muted: no reply), then writes
    /// every reply whose turn has come.
    pub fn fill_task(&mut self, reply: Option<Reply>) {
        let Some(pos) = self.pending.iter().position(|s| matches!(s, Slot::Task)) else {
            if let Some(reply) = reply {
                self.reply(reply);
            }
            return;
        };
        match reply.filter(|r| !self.drops(r)) {
            Some(reply) => {
                if let Some(slot) = self.pending.get_mut(pos) {
                    *slot = Slot::Reply(reply);
                }
            }
            None => {
                self.pending.remove(pos);
            }
        }
        if pos == 0 {
            self.drain_pending();
        }
    }

    /// After each command: CLIENT CACHING applies to the next command only, or to a whole
    /// transaction (Redis keeps it while the client is in MULTI).
    pub fn end_of_command(&mut self) {
        let in_multi = self.session.as_ref().is_some_and(|s| s.multi.is_some());
        if self.caching_ends && !in_multi {
            self.client.borrow_mut().tracking.caching = false;
        }
    }

    /// Reserves the place of a reply that shard `shard` will send back.
    pub fn expect_remote(&mut self, shard: usize) {
        self.remote_in_flight += 1;
        self.pending.push_back(if self.mute {
            Slot::Muted(shard)
        } else {
            Slot::Remote(shard)
        });
    }

    /// The first slot waiting for `shard`.
    fn remote_slot(&self, shard: usize) -> Option<usize> {
        self.pending
            .iter()
            .position(|s| matches!(s, Slot::Remote(sh) | Slot::Muted(sh) if *sh == shard))
    }

    /// Whether a reply from `shard` is still awaited.
    pub fn awaits_remote(&self, shard: usize) -> bool {
        self.remote_slot(shard).is_some()
    }

    /// Whether the next reply from `shard` will wait behind another one (so it is kept, not
    /// written at once).
    pub fn remote_reply_waits(&self, shard: usize) -> bool {
        self.remote_slot(shard)
            .is_some_and(|pos| pos > 0 && matches!(self.pending.get(pos), Some(Slot::Remote(_))))
    }

    /// Fills the first slot waiting for `shard` with its encoded reply, then writes every
    /// reply whose turn has come.
    pub fn fill_remote(&mut self, shard: usize, encoded: Encoded<'_>) {
        let Some(pos) = self.remote_slot(shard) else {
            return;
        };
        self.remote_in_flight = self.remote_in_flight.saturating_sub(1);
        if matches!(self.pending.get(pos), Some(Slot::Muted(_))) {
            self.pending.remove(pos);
            if pos == 0 {
                self.drain_pending();
            }
        } else if pos == 0 {
            self.pending.pop_front();
            self.out.extend_from_slice(encoded.bytes());
            self.drain_pending();
        } else if let Some(slot) = self.pending.get_mut(pos) {
            *slot = Slot::Encoded(match encoded {
                // Copied out of the batch, which goes back for reuse.
                Encoded::Borrowed(bytes) => Bytes::copy_from_slice(bytes),
                Encoded::Shared(bytes) => bytes,
            });
        }
    }

    /// Writes the pending replies up to the next one still on another core, or until
    /// [`ENCODE_AHEAD`] bytes wait for the socket (`refill` takes the rest once they went).
    fn drain_pending(&mut self) {
        let resp3 = self.resp3();
        while let Some(front) = self.pending.front() {
            if self.out.len() >= ENCODE_AHEAD {
                return;
            }
            match front {
                Slot::Remote(_) | Slot::Muted(_) | Slot::Task => return,
                Slot::Encoded(bytes) => self.out.extend_from_slice(bytes),
                Slot::Reply(reply) => encode(reply, resp3, &mut self.out),
                Slot::Push(bytes) => {
                    self.out.extend_from_slice(bytes);
                    self.held_pushes = self.held_pushes.saturating_sub(bytes.len());
                }
            }
            self.pending.pop_front();
        }
    }

    /// Encodes the replies `drain_pending` left for later, when the output has room again.
    pub fn refill(&mut self) {
        if self.ready_in_pending() {
            self.drain_pending();
        }
    }

    /// The first pending reply is complete: it waits only for room in the output.
    fn ready_in_pending(&self) -> bool {
        matches!(
            self.pending.front(),
            Some(Slot::Encoded(_) | Slot::Reply(_) | Slot::Push(_))
        )
    }

    /// Reply bytes not yet written to the socket (pushes held behind awaited replies
    /// included).
    pub fn unsent(&self) -> usize {
        self.out.len() + self.sending.len().saturating_sub(self.sent) + self.held_pushes
    }

    /// Copies what CLIENT LIST shows of the connection into its client record: its buffers,
    /// its output, its transaction. `running`: a command of it is in progress (its request
    /// still counts in `qbuf`, its arguments in `argv-mem`).
    pub fn report(&self, running: bool) {
        let mut c = self.client.borrow_mut();
        // Between commands, the arguments of a command still arriving are the parser's (as
        // Redis shows them in `argv-mem` before the command is complete).
        let (cmd_bytes, argv_mem) = if running {
            (self.cmd_bytes, self.argv_mem)
        } else {
            (0, self.parser.pending_bytes())
        };
        c.qbuf = self.rbuf.len() + cmd_bytes;
        c.qbuf_free = self.rbuf.capacity() - self.rbuf.len();
        c.argv_mem = argv_mem;
        c.omem = self.unsent();
        c.oll = self.pending.len();
        c.buf_cap = self.buffer_capacity();
        c.writing = self.send_inflight;
        if let Some(s) = &self.session {
            c.multi = s.multi.as_ref().map(|m| (m.queued.len(), m.argv_mem));
        }
    }

    /// Makes room for `incoming` more bytes of input (0: after parsing). While a big argument
    /// (32 KiB or more, Redis's PROTO_MBULK_BIG_ARG) arrives, the buffer grows by doubling but
    /// never past the end of that argument, and one grown past it before its header was
    /// parsed is cut back to it, so it fits the argument as Redis's does, not up to twice its
    /// size (what CLIENT LIST and client eviction count). Growing in steps, not to the
    /// announced length at once, keeps a client from reserving memory it does not send.
    pub fn fit_input(&mut self, incoming: usize) {
        const BIG_ARG: usize = 32 * 1024;
        let Some(end) = self.parser.awaited_bulk() else {
            return;
        };
        let want = self.rbuf.len().saturating_add(incoming);
        if end < BIG_ARG || want > end {
            return;
        }
        let have = self.rbuf.capacity();
        let cap = if have < want {
            have.saturating_mul(2).clamp(want, end)
        } else if have > end {
            end
        } else {
            return;
        };
        let mut grown = BytesMut::with_capacity(cap);
        grown.extend_from_slice(&self.rbuf);
        self.rbuf = grown;
    }

    /// What `input` bytes just received change in the client record, so that CLIENT LIST and
    /// client eviction see a command still arriving (it may be all there is to see) before
    /// the next serve reports the rest.
    pub fn report_input(&self, input: usize, now_ms: u64) {
        let mut c = self.client.borrow_mut();
        c.last_active_ms = now_ms;
        c.qbuf = c.qbuf.saturating_add(input);
        c.qbuf_free = self.rbuf.capacity() - self.rbuf.len();
        c.buf_cap = self.buffer_capacity();
    }

    fn buffer_capacity(&self) -> usize {
        self.out.capacity() + self.sending.capacity() + self.rbuf.capacity()
    }

    /// Something is waiting to be handed to the kernel: replies, or TLS records of its own
    /// (handshake, alerts, close_notify).
    pub fn has_output(&self) -> bool {
        // Pushes held behind awaited replies are not ready yet.
        self.unsent() > self.held_pushes
            || self.ready_in_pending()
            || self.tls.as_ref().is_some_and(|t| t.wants_write())
    }

    /// `out`'s end, counted as `out_taken`.
    pub fn out_end(&self) -> u64 {
        self.out_taken + self.out.len() as u64
    }

    /// Drops the output not yet handed to the kernel (the connection is closing).
    pub fn discard_output(&mut self) {
        self.out_taken = self.out_end();
        self.out.clear();
    }

    /// Nothing left to hand to the kernel or to wait for from other cores.
    pub fn output_idle(&self) -> bool {
        self.pending.is_empty()
            && self.out.is_empty()
            && !self.send_inflight
            && !self.tls.as_ref().is_some_and(|t| t.wants_write())
    }
}
