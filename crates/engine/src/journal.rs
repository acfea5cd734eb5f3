//! The journal: the one place every change to a shard's data is turned into a deterministic
//! log record, for the runtime's append-only log; and the replay of those records.
//!
//! What reaches it, and as what ([`shardis_persist::aof::Record`]):
//! - every command that changed data ([`execute`]; the runtime runs every command through
//!   it), as the command itself, with the database and the clock it ran under: replayed at
//!   that clock, relative expiry, XADD `*`, consumer times and lazy expiry come out the same.
//!   A command whose arguments do not determine its effect logs what it did instead
//!   ([`crate::shard::Ctx::propagate_as`]: SPOP as SREM or DEL, approximate trims as exact,
//!   and, as Redis 7.0 propagates them, relative expiry as absolute times and INCRBYFLOAT as
//!   the value it made, so replicas, which run records at their own clock, agree too);
//! - clients served from a key they were blocked on ([`serve`]), and the copy-back of a
//!   command that ran on another shard ([`crate::shard::Shard::import`]): as the keys' new
//!   entries (`Put`) or their removal (`Del`);
//! - keys expiry removes, lazily or actively, and (once it exists) eviction: `Del`, logged
//!   before the command during which they went.
//!
//! Records of a multi-shard transaction carry its id ([`Journal::tx`]); the runtime logs its
//! end on every shard that took part ([`Journal::tx_end`]).

use bytes::Bytes;
use shardis_persist::aof::{self, Record};
use shardis_resp::Reply;

use crate::command::{Command, Exec, ShardFn};
use crate::shard::{Ctx, Shard};

/// Records waiting for the runtime to write them.
#[derive(Debug, Default)]
pub struct Journal {
    /// Framed records ([`aof`]), oldest first, for the log (kept only while `log` is on).
    pub buf: Vec<u8>,
    /// The append-only log is kept.
    pub log: bool,
    /// The same records for replication, while a primary feeds replicas (taken separately:
    /// the two readers never wait for each other).
    pub feed: Option<Vec<u8>>,
    /// Records appended since the journal started.
    pub records: u64,
    /// The multi-shard transaction the shard is running a step of (0: none).
    pub tx: u64,
    /// Records too large for a frame (never written: the runtime reports the log broken).
    pub oversized: u64,
}

impl Journal {
    fn append(&mut self, r: &Record<'_>) {
        let start = self.buf.len();
        if aof::encode(r, &mut self.buf) {
            self.records += 1;
            if let Some(feed) = &mut self.feed {
                feed.extend_from_slice(&self.buf[start..]);
            }
            if !self.log {
                self.buf.truncate(start);
            }
        } else {
            self.oversized += 1;
        }
    }

    /// A command as executed.
    pub fn command(&mut self, db: usize, now_ms: u64, args: &[Bytes]) {
        let args: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
        self.append(&Record::Command {
            tx: self.tx,
            db: db as u32,
            now_ms,
            args,
        });
    }

    /// A command for replicas only, not the log (PUBLISH, as Redis 7.0 propagates it), as
    /// part of transaction `tx` (0: none): it takes its place among the shard's records.
    pub fn to_replicas(&mut self, tx: u64, db: usize, args: &[Bytes]) {
        let Some(feed) = &mut self.feed else { return };
        let args: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
        let record = Record::Command {
            tx,
            db: db as u32,
            now_ms: 0,
            args,
        };
        if !aof::encode(&record, feed) {
            self.oversized += 1;
        }
    }

    /// A key's whole new state (None: it is gone).
    pub fn state(&mut self, db: usize, key: &[u8], entry: Option<&crate::db::Record>) {
        match entry {
            Some(e) => {
                let value = crate::rdb::serialize(&e.value, false);
                self.append(&Record::Put {
                    tx: self.tx,
                    db: db as u32,
                    key,
                    expire_ms: e.expire_at.map(|at| at.get()),
                    value: &value,
                });
            }
            None => self.append(&Record::Del {
                tx: self.tx,
                db: db as u32,
                key,
            }),
        }
    }

    /// This shard's part of transaction `tx` is complete; `participants` took part.
    pub fn tx_end(&mut self, tx: u64, participants: Vec<u32>) {
        self.append(&Record::TxEnd { tx, participants });
    }

    /// Takes the records written so far.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

impl Shard {
    /// Starts or stops journaling for the log (the runtime turns it on with `appendonly yes`).
    pub fn set_journal(&mut self, on: bool) {
        let j = self.journal_mut();
        j.log = on;
        if !on {
            j.buf.clear();
        }
        self.drop_idle_journal();
    }

    /// Starts or stops the copy of the journal that replication reads.
    pub fn set_journal_feed(&mut self, on: bool) {
        let j = self.journal_mut();
        if on != j.feed.is_some() {
            j.feed = on.then(Vec::new);
        }
        self.drop_idle_journal();
    }

    fn journal_mut(&mut self) -> &mut Journal {
        if self.journal.is_none() {
            for d in &mut self.dbs {
                d.collect_reaped(true);
            }
        }
        self.journal.get_or_insert_with(Box::default)
    }

    /// No reader left: the journal goes.
    fn drop_idle_journal(&mut self) {
        if self
            .journal
            .as_ref()
            .is_some_and(|j| !j.log && j.feed.is_none())
        {
            self.journal = None;
            for d in &mut self.dbs {
                d.collect_reaped(false);
            }
        }
    }

    /// Logs the keys expiry removed since the last call.
    pub fn journal_reaped(&mut self) {
        let Some(j) = &mut self.journal else { return };
        for (db, d) in self.dbs.iter_mut().enumerate() {
            for key in d.take_reaped() {
                j.state(db, &key, None);
            }
        }
    }
}

/// Runs a command and logs what it changed: the write hook every command goes through.
pub fn execute(ctx: &mut Ctx<'_>, f: ShardFn, args: &[Bytes]) -> Reply {
    if ctx.shard.journal.is_none() {
        return f(ctx, args);
    }
    ctx.shard.journal_reaped();
    let dirty = ctx.shard.dirty;
    ctx.propagate = None;
    let reply = f(ctx, args);
    ctx.shard.journal_reaped();
    let propagate = ctx.propagate.take();
    if ctx.shard.dirty != dirty {
        let (db, now) = (ctx.db, ctx.now_ms);
        if let Some(j) = &mut ctx.shard.journal {
            match propagate {
                Some(commands) => commands.iter().for_each(|argv| j.command(db, now, argv)),
                None => j.command(db, now, args),
            }
        }
    }
    reply
}

/// Serves a client blocked on `key` with `serve` and logs the new state of the keys it may
/// have changed (`key`, and the destination of a move), since the effect of serving is not
/// that of running the client's command again.
pub fn serve(
    ctx: &mut Ctx<'_>,
    cmd: &Command,
    serve: crate::command::ServeFn,
    args: &[Bytes],
    key: &[u8],
) -> Reply {
    if ctx.shard.journal.is_none() {
        return serve(ctx, args, key);
    }
    ctx.shard.journal_reaped();
    let dirty = ctx.shard.dirty;
    let reply = serve(ctx, args, key);
    ctx.shard.journal_reaped();
    if ctx.shard.dirty != dirty {
        let mut keys = vec![Bytes::copy_from_slice(key)];
        let mut written = Vec::new();
        cmd.written_key_indexes(args, &mut written);
        keys.extend(written.iter().filter_map(|&i| args.get(i)).cloned());
        keys.dedup();
        let (db, now) = (ctx.db, ctx.now_ms);
        let Some(d) = ctx.shard.dbs.get(db) else {
            return reply;
        };
        let states: Vec<(Bytes, Option<crate::db::Record>)> = keys
            .into_iter()
            .map(|k| {
                let e = d
                    .peek(&k)
                    .filter(|e| !d.is_expired(e, now))
                    .map(|e| d.to_record(e));
                (k, e)
            })
            .collect();
        if let Some(j) = &mut ctx.shard.journal {
            for (k, e) in states {
                j.state(db, &k, e.as_ref());
            }
        }
    }
    reply
}

/// Why a record could not be replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayError {
    UnknownCommand(String),
    BadValue(String),
    /// A command the runtime carries out (FUNCTION LOAD…): the caller replays it.
    Runtime(crate::ServerCmd, Vec<Bytes>),
}

impl std::fmt::Display for ReplayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplayError::UnknownCommand(c) => write!(f, "unknown or non-shard command '{c}'"),
            ReplayError::BadValue(k) => write!(f, "unreadable value for key '{k}'"),
            ReplayError::Runtime(_, args) => write!(
                f,
                "command '{}' not replayed by a shard",
                String::from_utf8_lossy(args.first().map_or(&[][..], |a| a))
            ),
        }
    }
}

/// Applies one record to `shard` (whose journal is off while it loads). `now_ms` is the
/// loader's clock, for the access time of entries a state record creates.
pub fn replay(shard: &mut Shard, record: &Record<'_>, now_ms: u64) -> Result<(), ReplayError> {
    match record {
        Record::Command {
            db, now_ms, args, ..
        } => {
            let args: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a)).collect();
            let cmd = crate::command::lookup(&args).map_err(|_| {
                ReplayError::UnknownCommand(
                    String::from_utf8_lossy(args.first().map_or(&[][..], |a| a)).into_owned(),
                )
            })?;
            let f = match cmd.exec {
                Exec::Shard(f) => f,
                Exec::Server(which) => return Err(ReplayError::Runtime(which, args)),
            };
            let db = (*db as usize).min(shard.dbs.len().saturating_sub(1));
            f(&mut Ctx::new(shard, db, *now_ms, false), &args);
        }
        Record::Put {
            db,
            key,
            expire_ms,
            value,
            ..
        } => {
            let value = crate::rdb::deserialize(value, &shard.config)
                .map_err(|_| ReplayError::BadValue(String::from_utf8_lossy(key).into_owned()))?;
            if let Some(d) = shard.dbs.get_mut(*db as usize) {
                let lru = shard.config.tracking.fresh(now_ms);
                d.insert_record(
                    key,
                    crate::db::Record {
                        value,
                        expire_at: expire_ms.and_then(|at| std::num::NonZeroU64::new(at.max(1))),
                        lru,
                    },
                );
            }
        }
        Record::Del { db, key, .. } => {
            if let Some(d) = shard.dbs.get_mut(*db as usize) {
                d.remove(key);
            }
        }
        Record::TxEnd { .. } => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests;
