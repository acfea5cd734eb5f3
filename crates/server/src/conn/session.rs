//! What a connection is beyond its socket: the client it presents (database, protocol, name),
//! its transaction state (MULTI queue, WATCHed keys, the transaction it runs), and the signal
//! the event loop raises when its peer goes away.
//!
//! The event loop owns the session while it serves the connection's commands inline; a
//! command that must wait (another shard, a lock, a blocking pop) takes the session into a
//! task of its own and hands it back with the reply.

use std::rc::Rc;

use bytes::Bytes;
use shardis_engine::Command;

use crate::core::client::{ClientHandle, Hangup};
use crate::core::pubsub::Subscriber;
use crate::core::shard_lock::{TxId, WatchedKey};
use crate::core::tracking::Caller;
use crate::core::{ConnRef, Core};

/// Commands queued by MULTI.
#[derive(Default)]
pub struct MultiState {
    pub queued: Vec<(&'static Command, Vec<Bytes>)>,
    /// Memory of the queued arguments, as Redis counts it for CLIENT LIST's `multi-mem`
    /// (their bytes and a pointer each).
    pub argv_mem: usize,
    /// A command failed to queue: EXEC answers EXECABORT.
    pub failed: bool,
}

/// A connection's state.
pub struct Session {
    pub core: Rc<Core>,
    /// How this core's event loop names the connection (deliveries are addressed to it).
    pub conn: ConnRef,
    pub client: ClientHandle,
    pub hangup: Rc<Hangup>,
    /// The transaction this connection is running (EXEC, or a multi-shard command): its
    /// requests pass the locks it holds.
    pub tx: Option<TxId>,
    /// Inside EXEC or a script: its transaction's id, as its records carry it, and the shard
    /// (one it holds) whose journal takes its PUBLISHes in their place for the replicas.
    pub publish_within: Option<(TxId, usize)>,
    /// Between MULTI and EXEC.
    pub multi: Option<MultiState>,
    /// Keys under WATCH.
    pub watched: Vec<WatchedKey>,
    /// Inside EXEC: blocking commands run as their non-blocking form.
    pub in_exec: bool,
    /// A script's client: its commands run as a script's on every shard.
    pub from_script: bool,
    /// The reply just made is a script's error already counted in the error statistics where
    /// it arose (the command's call records it without counting the error again).
    pub error_counted: bool,
    /// The command being admitted is in a slot being moved: it is judged and run in a task
    /// (`cluster::redirect::run_open`), with the client's ASKING.
    pub open_slot: Option<bool>,
}

impl Session {
    pub fn new(core: Rc<Core>, conn: ConnRef, client: ClientHandle) -> Session {
        Session {
            core,
            conn,
            client,
            hangup: Rc::new(Hangup::default()),
            tx: None,
            publish_within: None,
            multi: None,
            watched: Vec::new(),
            in_exec: false,
            from_script: false,
            error_counted: false,
            open_slot: None,
        }
    }

    /// The selected database and protocol.
    pub fn db_resp3(&self) -> (usize, bool) {
        let c = self.client.borrow();
        (c.db, c.resp3)
    }

    /// What the shards are told about this client's next command when it tracks keys.
    pub fn tracker(&self) -> Option<Caller> {
        self.client.borrow().tracking.caller(self.me())
    }

    /// This connection as deliveries address it.
    pub fn me(&self) -> Subscriber {
        Subscriber {
            core: self.core.id,
            conn: self.conn,
        }
    }
}
