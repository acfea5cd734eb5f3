//! One client connection: read, parse every complete command, route each to its shard, and
//! write all replies of the read at once.
//!
//! Commands whose keys are on this core run inline, with no message. Commands for another
//! shard are queued per shard and sent as one batch per shard when the read's commands are
//! all dispatched (pipeline squashing); their replies are put back in request order. A command
//! that needs several shards or the whole server first flushes what is queued, so the client
//! observes its commands in the order it sent them.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use shardis_engine::command::Flags;
use shardis_engine::{Command, Exec, Fanout};
use shardis_resp::{encode, Limits, Reply, RequestParser};
use tracing::debug;

use crate::client::{Client, ClientHandle};
use crate::runtime::{Core, Request};
use crate::txn::{TxId, WatchedKey};
use crate::{blocking, commands, fanout, multi, route};

const READ_CHUNK: usize = 16 * 1024;

/// A reply slot of the current read.
enum Slot {
    Done(Reply),
    /// The next reply from this shard's batch.
    Remote(usize),
}

/// A connection being served.
pub struct Session {
    pub core: Rc<Core>,
    pub client: ClientHandle,
    stream: TcpStream,
    /// Bytes read and not yet parsed.
    rbuf: BytesMut,
    /// The buffer each read lands in.
    chunk: Box<[u8]>,
    parser: RequestParser,
    /// Replies encoded so far for the current read.
    out: Vec<u8>,
    /// Replies after the first remote command of the read, in order.
    slots: Vec<Slot>,
    /// Requests queued per shard.
    queued: Vec<Vec<Request>>,
    any_queued: bool,
    key_indexes: Vec<usize>,
    /// The transaction this connection is running (EXEC, or a multi-shard command): its
    /// requests pass the locks it holds.
    pub tx: Option<TxId>,
    /// During EXEC: replies are collected here instead of being written.
    pub collect: Option<Vec<Reply>>,
    /// Between MULTI and EXEC.
    pub multi: Option<MultiState>,
    /// Keys under WATCH.
    pub watched: Vec<WatchedKey>,
}

/// Commands queued by MULTI.
#[derive(Default)]
pub struct MultiState {
    pub queued: Vec<(&'static Command, Vec<Bytes>)>,
    /// A command failed to queue: EXEC answers EXECABORT.
    pub failed: bool,
}

pub async fn serve(core: Rc<Core>, mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let addr = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let laddr = stream
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let id = core.next_client_id();
    let client = Rc::new(RefCell::new(Client::new(
        id,
        addr,
        laddr,
        stream.as_raw_fd(),
    )));
    core.bump(|s| s.connections_received += 1);
    let max_local = {
        let max = core.config.borrow().get_i64("maxclients").max(1) as usize;
        max.div_ceil(core.shards)
    };
    if core.clients.borrow().len() >= max_local {
        core.bump(|s| s.rejected_connections += 1);
        let _ = stream
            .write_all(b"-ERR max number of clients reached\r\n")
            .await;
        return;
    }
    core.clients.borrow_mut().insert(id, client.clone());
    let shards = core.shards;
    let mut session = Session {
        core: core.clone(),
        client,
        stream,
        rbuf: BytesMut::with_capacity(READ_CHUNK),
        chunk: vec![0; READ_CHUNK].into_boxed_slice(),
        parser: RequestParser::new(),
        out: Vec::with_capacity(READ_CHUNK),
        slots: Vec::new(),
        queued: (0..shards).map(|_| Vec::new()).collect(),
        any_queued: false,
        key_indexes: Vec::with_capacity(8),
        tx: None,
        collect: None,
        multi: None,
        watched: Vec::new(),
    };
    if let Err(e) = session.run().await {
        debug!(client = id, "connection closed: {e}");
    }
    multi::unwatch_all(&mut session).await;
    core.clients.borrow_mut().remove(&id);
}

impl Session {
    async fn run(&mut self) -> std::io::Result<()> {
        loop {
            // Read into a reused chunk and copy what arrived: cheaper than zeroing fresh
            // buffer space on every read.
            let n = self.stream.read(&mut self.chunk).await?;
            if n == 0 {
                return Ok(());
            }
            self.rbuf.extend_from_slice(&self.chunk[..n]);
            self.core.bump(|s| s.net_input_bytes += n as u64);
            let limits = self.limits();
            loop {
                match self.parser.next(&mut self.rbuf, &limits) {
                    Ok(Some(args)) => {
                        self.dispatch(args).await;
                        if self.client.borrow().closing {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        self.flush().await;
                        e.write_reply(&mut self.out);
                        self.client.borrow_mut().closing = true;
                        break;
                    }
                }
            }
            self.flush().await;
            {
                let mut c = self.client.borrow_mut();
                c.qbuf = self.rbuf.len();
                c.last_active = Instant::now();
            }
            self.write_out().await?;
            if self.client.borrow().closing {
                return Ok(());
            }
            if self.rbuf.len()
                > self
                    .core
                    .config
                    .borrow()
                    .get_i64("client-query-buffer-limit") as usize
            {
                return Ok(());
            }
        }
    }

    /// Writes the replies collected so far in one write.
    async fn write_out(&mut self) -> std::io::Result<()> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.core
                .bump(|s| s.net_output_bytes += self.out.len() as u64);
            self.out.clear();
        }
        Ok(())
    }

    /// The socket and the unparsed input, for a blocked client that keeps reading.
    pub fn io(&mut self) -> (&mut TcpStream, &mut BytesMut) {
        (&mut self.stream, &mut self.rbuf)
    }

    fn limits(&self) -> Limits {
        Limits {
            max_bulk_len: self.core.shard.borrow().config.proto_max_bulk_len,
            ..Limits::default()
        }
    }

    /// Queues a reply in request order.
    pub fn reply(&mut self, reply: Reply) {
        if self.any_queued {
            self.slots.push(Slot::Done(reply));
        } else {
            self.emit(reply);
        }
    }

    /// Writes (or, during EXEC, collects) a reply whose turn has come.
    fn emit(&mut self, reply: Reply) {
        match &mut self.collect {
            Some(replies) => replies.push(reply),
            None => {
                let resp3 = self.client.borrow().resp3;
                encode(&reply, resp3, &mut self.out);
            }
        }
    }

    async fn dispatch(&mut self, args: Vec<Bytes>) {
        self.core.bump(|s| s.commands_processed += 1);
        let cmd = match shardis_engine::lookup(&args) {
            Ok(cmd) => cmd,
            Err(e) => {
                if let Some(m) = &mut self.multi {
                    m.failed = true;
                }
                return self.reply(e);
            }
        };
        if self.multi.is_some() && !multi::runs_inside_multi(cmd) {
            let reply = multi::queue(self, cmd, args);
            return self.reply(reply);
        }
        self.dispatch_command(cmd, args).await;
    }

    /// Runs one command (also EXEC's queued commands).
    pub async fn dispatch_command(&mut self, cmd: &'static Command, args: Vec<Bytes>) {
        match cmd.exec {
            Exec::Server(which) => {
                if commands::needs_barrier(which) {
                    self.flush().await;
                }
                let reply = commands::run(self, which, cmd, &args).await;
                if let Some(reply) = reply {
                    self.reply(reply);
                }
            }
            Exec::Shard(_) => self.dispatch_shard(cmd, args).await,
        }
    }

    async fn dispatch_shard(&mut self, cmd: &'static Command, args: Vec<Bytes>) {
        let (db, resp3) = {
            let c = self.client.borrow();
            (c.db, c.resp3)
        };
        let shards = self.core.shards;
        if let Fanout::AllShards(merge) = cmd.fanout {
            self.flush().await;
            let reply = fanout::all_shards(&self.core, cmd, args, db, resp3, merge, self.tx).await;
            return self.reply(reply);
        }
        // Inside EXEC a blocking command runs as its non-blocking form.
        if cmd.flags.has(Flags::BLOCKING) && self.collect.is_none() {
            // Replies before the blocking command go out before it waits.
            self.flush().await;
            if self.write_out().await.is_err() {
                self.client.borrow_mut().closing = true;
                return;
            }
            if let Some(reply) = blocking::block(self, cmd, args, db, resp3).await {
                self.reply(reply);
            }
            return;
        }
        self.key_indexes.clear();
        // With one shard every key is local: no need to find them.
        let keys_ok = shards > 1 && cmd.key_indexes(&args, &mut self.key_indexes);
        if let (Some(finder), true, Some(&first)) =
            (cmd.key_finder, shards > 1, self.key_indexes.first())
        {
            // Keys only the data can name (SORT BY/GET patterns): ask the first key's shard.
            self.flush().await;
            let home = route::shard_of(&args[first], shards);
            let probe = args.clone();
            let extra = self
                .core
                .run_on(home, move |core| {
                    let mut shard = core.shard.borrow_mut();
                    finder(
                        &mut shardis_engine::Ctx::new(
                            &mut shard,
                            db,
                            crate::runtime::now_ms(),
                            resp3,
                        ),
                        &probe,
                    )
                })
                .await
                .unwrap_or_default();
            if extra.iter().any(|k| route::shard_of(k, shards) != home) {
                let keys = std::mem::take(&mut self.key_indexes);
                let reply =
                    fanout::gather(&self.core, cmd, args, &keys, &extra, db, resp3, self.tx).await;
                self.key_indexes = keys;
                return self.reply(reply);
            }
        }
        // No keys (or arguments the command will reject itself): run here.
        let target = match self.key_indexes.first() {
            Some(&first) if keys_ok && cmd.fanout != Fanout::Local => {
                let shard = route::shard_of(&args[first], shards);
                let same = self
                    .key_indexes
                    .iter()
                    .all(|&i| route::shard_of(&args[i], shards) == shard);
                if same {
                    Some(shard)
                } else {
                    None
                }
            }
            _ => Some(self.core.id),
        };
        match target {
            Some(shard) if shard == self.core.id => {
                // Outside a transaction, wait while a lock holder claims these keys.
                while self.tx.is_none() && self.core.lock_blocks(cmd, &args, db, None) {
                    let _ = self.core.lock_released().await;
                }
                let reply = self.core.execute_with(cmd, &args, db, resp3);
                self.reply(reply);
            }
            Some(shard) => {
                self.queued[shard].push(Request {
                    cmd,
                    args,
                    db,
                    resp3,
                });
                self.slots.push(Slot::Remote(shard));
                self.any_queued = true;
            }
            None => {
                self.flush().await;
                let keys = std::mem::take(&mut self.key_indexes);
                let reply = match cmd.fanout {
                    Fanout::Split(merge) => {
                        fanout::split(&self.core, cmd, args, &keys, db, resp3, merge, self.tx).await
                    }
                    _ => {
                        fanout::gather(&self.core, cmd, args, &keys, &[], db, resp3, self.tx).await
                    }
                };
                self.key_indexes = keys;
                self.reply(reply);
            }
        }
    }

    /// Sends the queued batches, waits for their replies and encodes every pending reply in
    /// request order.
    pub async fn flush(&mut self) {
        if !self.any_queued {
            return;
        }
        self.any_queued = false;
        let mut receivers = Vec::new();
        for shard in 0..self.queued.len() {
            if !self.queued[shard].is_empty() {
                let requests = std::mem::take(&mut self.queued[shard]);
                receivers.push((shard, self.core.send_batch(shard, requests, self.tx).await));
            }
        }
        let mut replies: Vec<VecDeque<Reply>> =
            (0..self.queued.len()).map(|_| VecDeque::new()).collect();
        for (shard, rx) in receivers {
            replies[shard] = rx.await.ok().flatten().unwrap_or_default().into();
        }
        for slot in std::mem::take(&mut self.slots) {
            let reply = match slot {
                Slot::Done(r) => r,
                Slot::Remote(shard) => replies[shard]
                    .pop_front()
                    .unwrap_or(Reply::err("ERR shard did not answer")),
            };
            self.emit(reply);
        }
    }
}
