//! Client-side caching (CLIENT TRACKING) across cores: which clients may hold a copy of which
//! keys, and the invalidation messages a change sends them.
//!
//! Three parts, as Redis's `tracking.c` spread over shards:
//! - a client's settings ([`ClientTracking`]) live in its client record, on its own core;
//! - every shard keeps the tracking table of its own keys ([`Table`]): key → the clients that
//!   read it since it last changed (default mode), each named by core and connection, so a
//!   read is remembered in the same step as it happens on the key's shard and no change can
//!   slip in between. The BCAST prefixes are replicated on every core, like Pub/Sub patterns,
//!   and each shard collects the keys that changed under each prefix during one pass of its
//!   event loop and sends them in one message per client at the end of the pass;
//! - a change becomes a [`Message`] to the tracking client's core, which decides there, with
//!   the client's settings of that moment, what is written ([`receive`]): a RESP3 push, or
//!   nothing, or a forward to the client its invalidations are redirected to (on any core),
//!   which writes a push or, in RESP2 Pub/Sub mode, a `message` on `__redis__:invalidate`; a
//!   redirect target that is gone sends `tracking-redir-broken` back.
//!
//! A message leaves the shard at the end of the pass, after the reply of the command that
//! caused it, and a connection writes it behind any reply still on its way (see `net::conn`),
//! so a client never learns of a change before the reply of a read that preceded it.
//!
//! Memory is bounded by `tracking-table-max-keys`, split evenly between shards: a shard over
//! its share forgets random keys, telling their readers as if the keys had changed.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use ahash::HashMap;
use bytes::Bytes;
use shardis_engine::command::Flags;
use shardis_engine::notify;
use shardis_engine::Command;
use shardis_resp::{encode, Reply};

use super::client::Client;
use super::pubsub::{Subscriber, What};
use super::Core;

/// The Pub/Sub channel on which a RESP2 redirect target receives invalidations.
pub const CHANNEL: &[u8] = b"__redis__:invalidate";

/// The client a command runs for, as the shards need it: who it is (NOLOOP skips its own
/// changes) and whether the keys it reads are remembered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    pub who: Subscriber,
    pub remember: bool,
}

/// Where a client's invalidations go instead of to itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Redirect {
    pub id: u64,
    pub to: Subscriber,
}

/// A client's CLIENT TRACKING settings.
#[derive(Default, Debug)]
pub struct ClientTracking {
    pub on: bool,
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    /// CLIENT CACHING YES (OPTIN) or NO (OPTOUT), for the next command or transaction.
    pub caching: bool,
    /// An invalidation found the redirect target gone.
    pub broken_redirect: bool,
    pub redirect: Option<Redirect>,
    /// BCAST prefixes, in byte order (as CLIENT TRACKINGINFO lists them).
    pub prefixes: BTreeSet<Bytes>,
    /// Their memory, counted in the client's (`tot-mem`, client eviction).
    pub prefix_mem: usize,
}

impl ClientTracking {
    /// What the shards are told about a command of this client (`who`); None when it does
    /// not track.
    pub fn caller(&self, who: Subscriber) -> Option<Caller> {
        if !self.on {
            return None;
        }
        // OPTIN remembers only after CLIENT CACHING YES, OPTOUT all but after CLIENT CACHING NO.
        let chosen = if self.optin {
            self.caching
        } else if self.optout {
            !self.caching
        } else {
            true
        };
        let remember = !self.bcast && chosen;
        Some(Caller { who, remember })
    }

    /// CLIENT GETREDIR and CLIENT LIST's `redir=`: -1 when off, 0 without a redirect.
    pub fn redirect_id(&self) -> i64 {
        match (self.on, self.redirect) {
            (false, _) => -1,
            (true, None) => 0,
            (true, Some(r)) => r.id as i64,
        }
    }

    /// CLIENT TRACKINGINFO's flags, in Redis's order.
    pub fn info_flags(&self) -> Vec<&'static str> {
        let mut out = vec![if self.on { "on" } else { "off" }];
        if self.bcast {
            out.push("bcast");
        }
        if self.optin {
            out.push("optin");
            if self.caching {
                out.push("caching-yes");
            }
        }
        if self.optout {
            out.push("optout");
            if self.caching {
                out.push("caching-no");
            }
        }
        if self.noloop {
            out.push("noloop");
        }
        if self.broken_redirect {
            out.push("broken_redirect");
        }
        out
    }

    /// CLIENT LIST's flag letters for tracking: t (on), R (broken redirect), B (BCAST).
    pub fn list_flags(&self, out: &mut String) {
        if self.on {
            out.push('t');
        }
        if self.broken_redirect {
            out.push('R');
        }
        if self.bcast {
            out.push('B');
        }
    }
}

/// Checks BCAST prefixes as Redis does: none may be a prefix of another, nor of one the client
/// already has. The error names the pair Redis's pairwise scan would meet first (the new
/// prefixes in argument order, each against the existing ones in byte order, then against
/// the new ones after it), found without comparing every pair: a client may send very many.
pub fn check_prefixes(existing: &BTreeSet<Bytes>, new: &[Bytes]) -> Result<(), String> {
    let (first_existing, last_partner) = overlaps(existing, new);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    for (i, p) in new.iter().enumerate() {
        if let Some(old) = first_existing[i] {
            return Err(format!(
                "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                text(p),
                text(old)
            ));
        }
        if last_partner[i].is_some_and(|j| j > i) {
            if let Some(other) = new[i + 1..].iter().find(|o| overlap(p, o)) {
                return Err(format!(
                    "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                    text(p),
                    text(other)
                ));
            }
        }
    }
    Ok(())
}

/// Whether one of `a`, `b` is a prefix of the other.
fn overlap(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

/// For each new prefix: the first existing prefix (in byte order) it overlaps, and the last
/// other new prefix (by position) it overlaps. One pass over all prefixes in byte order: the
/// strings a prefix is a prefix of follow it there, and those it extends are on a stack.
fn overlaps<'a>(
    existing: &'a BTreeSet<Bytes>,
    new: &'a [Bytes],
) -> (Vec<Option<&'a [u8]>>, Vec<Option<usize>>) {
    // Each string, and its position among the new ones (None: an existing one).
    let mut all: Vec<(&[u8], Option<usize>)> = existing.iter().map(|e| (&e[..], None)).collect();
    all.extend(new.iter().enumerate().map(|(i, p)| (&p[..], Some(i))));
    all.sort();
    let mut first_existing = vec![None; new.len()];
    let mut last_partner = vec![None; new.len()];
    /// A string on the stack: what it and the strings below it hold, and what has been seen
    /// after it that it is a prefix of.
    struct Frame<'a> {
        at: usize,
        below_max: Option<usize>,
        below_existing: Option<&'a [u8]>,
        after_max: Option<usize>,
        after_existing: Option<&'a [u8]>,
    }
    let mut stack: Vec<Frame> = Vec::new();
    // Pops the top frame, settling its string and handing what followed it to its parent.
    let pop = |stack: &mut Vec<Frame<'a>>,
               first_existing: &mut Vec<Option<&'a [u8]>>,
               last_partner: &mut Vec<Option<usize>>| {
        let Some(f) = stack.pop() else { return };
        let (s, idx) = all[f.at];
        if let Some(i) = idx {
            first_existing[i] = f.below_existing.or(f.after_existing);
            last_partner[i] = f.below_max.max(f.after_max);
        }
        if let Some(parent) = stack.last_mut() {
            parent.after_max = parent.after_max.max(f.after_max).max(idx);
            if parent.after_existing.is_none() {
                parent.after_existing = if idx.is_none() {
                    Some(s)
                } else {
                    f.after_existing
                };
            }
        }
    };
    for (at, &(s, _)) in all.iter().enumerate() {
        while stack
            .last()
            .is_some_and(|top| !s.starts_with(all[top.at].0))
        {
            pop(&mut stack, &mut first_existing, &mut last_partner);
        }
        let (below_max, below_existing) = match stack.last() {
            Some(top) => {
                let (ts, tidx) = all[top.at];
                let existing = top.below_existing.or(tidx.is_none().then_some(ts));
                (top.below_max.max(tidx), existing)
            }
            None => (None, None),
        };
        stack.push(Frame {
            at,
            below_max,
            below_existing,
            after_max: None,
            after_existing: None,
        });
    }
    while !stack.is_empty() {
        pop(&mut stack, &mut first_existing, &mut last_partner);
    }
    (first_existing, last_partner)
}

/// Whether a command ends the effect of CLIENT CACHING: any but CLIENT's own (Redis keeps the
/// flag past CLIENT subcommands, and for a whole transaction).
pub fn caching_ends_after(cmd: &Command) -> bool {
    cmd.facts.container != Some("client") && cmd.name != "client"
}

/// What a change tells a client's core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A key the client read changed (default mode); `by_self` when its own command did it.
    Key { key: Bytes, by_self: bool },
    /// Keys under the client's BCAST prefixes changed during one pass of their shard.
    Prefixed(Vec<Bytes>),
    /// A database was flushed: every key is invalid.
    Flush,
    /// Invalidations of tracking client `from`, redirected here (None: every key).
    Redirected {
        from: Subscriber,
        redirect_id: u64,
        keys: Option<Vec<Bytes>>,
    },
    /// The client that `redirect_id` named is gone.
    RedirectBroken { redirect_id: u64 },
}

/// What a message becomes at the connection it is addressed to.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Drop,
    /// Bytes to write to the connection.
    Write(Vec<u8>),
    /// A message for another connection (a redirect target, or the tracking client back).
    Forward(Subscriber, Message),
}

/// Decides, at the connection `me` whose client is `client`, what `msg` becomes.
pub fn receive(me: Subscriber, client: &mut Client, msg: Message) -> Outcome {
    let keys = match msg {
        Message::Redirected { keys, .. } => {
            return if client.resp3 {
                Outcome::Write(invalidate_push(keys))
            } else if client.subs.active() {
                // A RESP2 client can only be told in Pub/Sub mode.
                let mut out = Vec::new();
                let items = vec![
                    Reply::Bulk(Bytes::from_static(b"message")),
                    Reply::Bulk(Bytes::from_static(CHANNEL)),
                    keys_reply(keys),
                ];
                encode(&Reply::Push(items), false, &mut out);
                Outcome::Write(out)
            } else {
                Outcome::Drop
            };
        }
        Message::RedirectBroken { redirect_id } => {
            let t = &mut client.tracking;
            if !t.on || t.redirect.map(|r| r.id) != Some(redirect_id) {
                return Outcome::Drop;
            }
            t.broken_redirect = true;
            if !client.resp3 {
                return Outcome::Drop;
            }
            let mut out = Vec::new();
            let items = vec![
                Reply::Bulk(Bytes::from_static(b"tracking-redir-broken")),
                Reply::Int(redirect_id as i64),
            ];
            encode(&Reply::Push(items), true, &mut out);
            return Outcome::Write(out);
        }
        Message::Key { key, by_self } => {
            let t = &client.tracking;
            // A client now in BCAST mode no longer cares about keys it read before.
            if !t.on || t.bcast || t.noloop && by_self {
                return Outcome::Drop;
            }
            Some(vec![key])
        }
        Message::Prefixed(keys) => {
            if !client.tracking.on || !client.tracking.bcast {
                return Outcome::Drop;
            }
            Some(keys)
        }
        Message::Flush => {
            if !client.tracking.on {
                return Outcome::Drop;
            }
            None
        }
    };
    match client.tracking.redirect {
        Some(r) => Outcome::Forward(
            r.to,
            Message::Redirected {
                from: me,
                redirect_id: r.id,
                keys,
            },
        ),
        None if client.resp3 => Outcome::Write(invalidate_push(keys)),
        // RESP2 has no push messages on an ordinary connection.
        None => Outcome::Drop,
    }
}

/// What goes back when `msg`'s connection is gone: a redirect target that left makes the
/// redirect broken.
pub fn undeliverable(msg: Message) -> Option<(Subscriber, Message)> {
    match msg {
        Message::Redirected {
            from, redirect_id, ..
        } => Some((from, Message::RedirectBroken { redirect_id })),
        _ => None,
    }
}

/// `invalidate` with its keys (None: every key), as a RESP3 push.
fn invalidate_push(keys: Option<Vec<Bytes>>) -> Vec<u8> {
    let mut out = Vec::new();
    let items = vec![
        Reply::Bulk(Bytes::from_static(b"invalidate")),
        keys_reply(keys),
    ];
    encode(&Reply::Push(items), true, &mut out);
    out
}

fn keys_reply(keys: Option<Vec<Bytes>>) -> Reply {
    match keys {
        Some(keys) => Reply::Array(keys.into_iter().map(Reply::Bulk).collect()),
        None => Reply::Nil,
    }
}

/// A tracked key and the clients that read it since it last changed.
struct Tracked {
    key: Bytes,
    readers: Vec<Subscriber>,
}

/// A BCAST prefix on this core: its clients (and whether each is in NOLOOP mode), and the keys
/// of this shard that changed under it during this pass, with the client that changed each
/// last (None: expiry and other changes of no client).
#[derive(Default)]
struct Prefix {
    clients: Vec<(Subscriber, bool)>,
    changed: BTreeMap<Bytes, Option<Subscriber>>,
}

/// One shard's tracking table, and this core's copy of the BCAST prefixes.
pub struct Table {
    /// Tracked keys in no particular order: eviction picks one by position.
    tracked: Vec<Tracked>,
    /// Where each tracked key is in `tracked`.
    at: HashMap<Bytes, usize>,
    /// (key, client) pairs in the table.
    items: usize,
    prefixes: BTreeMap<Bytes, Prefix>,
    /// Eviction runs in a row that ended over the limit (each tries harder, as Redis).
    over_limit_runs: u32,
    rng: u64,
}

impl Table {
    pub fn new(seed: u64) -> Table {
        Table {
            tracked: Vec::new(),
            at: HashMap::default(),
            items: 0,
            prefixes: BTreeMap::new(),
            over_limit_runs: 0,
            rng: seed | 1,
        }
    }

    /// Keys tracked here (INFO `tracking_total_keys`).
    pub fn keys(&self) -> usize {
        self.tracked.len()
    }

    /// (key, client) pairs tracked here (INFO `tracking_total_items`).
    pub fn items(&self) -> usize {
        self.items
    }

    /// BCAST prefixes with clients (INFO `tracking_total_prefixes`).
    pub fn prefixes(&self) -> usize {
        self.prefixes.len()
    }

    /// Whether changes of this shard's keys may concern anyone.
    pub fn in_use(&self) -> bool {
        !self.tracked.is_empty() || !self.prefixes.is_empty()
    }

    /// Remembers that `who` read `key`.
    pub fn remember(&mut self, key: &[u8], who: Subscriber) {
        let at = match self.at.get(key) {
            Some(&at) => at,
            None => {
                let key = Bytes::copy_from_slice(key);
                self.at.insert(key.clone(), self.tracked.len());
                self.tracked.push(Tracked {
                    key,
                    readers: Vec::new(),
                });
                self.tracked.len() - 1
            }
        };
        if let Some(t) = self.tracked.get_mut(at) {
            if !t.readers.contains(&who) {
                t.readers.push(who);
                self.items += 1;
            }
        }
    }

    /// `key` changed (by `writer`, if a client did it): its readers are told and forgotten, and
    /// the BCAST prefixes it falls under collect it.
    pub fn changed(
        &mut self,
        key: &[u8],
        writer: Option<Subscriber>,
        out: &mut impl FnMut(Subscriber, Message),
    ) {
        for (prefix, state) in self.prefixes.iter_mut() {
            if key.starts_with(prefix) {
                state.changed.insert(Bytes::copy_from_slice(key), writer);
            }
        }
        self.invalidate(key, writer, out);
    }

    /// Tells `key`'s readers and forgets it.
    fn invalidate(
        &mut self,
        key: &[u8],
        writer: Option<Subscriber>,
        out: &mut impl FnMut(Subscriber, Message),
    ) {
        let Some(at) = self.at.remove(key) else {
            return;
        };
        if at >= self.tracked.len() {
            return;
        }
        let gone = self.tracked.swap_remove(at);
        if let Some(moved) = self.tracked.get(at) {
            self.at.insert(moved.key.clone(), at);
        }
        self.items = self.items.saturating_sub(gone.readers.len());
        for reader in gone.readers {
            out(
                reader,
                Message::Key {
                    key: gone.key.clone(),
                    by_self: Some(reader) == writer,
                },
            );
        }
    }

    /// Forgets every tracked key (a flush: the clients are told by their own cores).
    pub fn clear(&mut self) {
        self.tracked = Vec::new();
        self.at = HashMap::default();
        self.items = 0;
    }

    /// Over `max` keys (0: no limit), forgets random keys, telling their readers, with an
    /// effort that grows while it does not get under the limit, as Redis's
    /// `trackingLimitUsedSlots`.
    pub fn limit(&mut self, max: Option<usize>, out: &mut impl FnMut(Subscriber, Message)) {
        let Some(max) = max else { return };
        if self.tracked.len() <= max {
            self.over_limit_runs = 0;
            return;
        }
        let effort = 100usize.saturating_mul(self.over_limit_runs as usize + 1);
        for _ in 0..effort {
            if self.tracked.is_empty() {
                break;
            }
            let pick = (shardis_engine::shard::xorshift64star(&mut self.rng)
                % self.tracked.len() as u64) as usize;
            let key = self.tracked[pick].key.clone();
            self.invalidate(&key, None, out);
            if self.tracked.len() <= max {
                self.over_limit_runs = 0;
                return;
            }
        }
        self.over_limit_runs = self.over_limit_runs.saturating_add(1);
    }

    /// Adds `who` to BCAST `prefix` (or updates its NOLOOP setting).
    pub fn register(&mut self, prefix: Bytes, who: Subscriber, noloop: bool) {
        let clients = &mut self.prefixes.entry(prefix).or_default().clients;
        match clients.iter_mut().find(|(c, _)| *c == who) {
            Some(entry) => entry.1 = noloop,
            None => clients.push((who, noloop)),
        }
    }

    /// Removes `who` from BCAST `prefix`; a prefix without clients goes.
    pub fn unregister(&mut self, prefix: &[u8], who: Subscriber) {
        if let Some(state) = self.prefixes.get_mut(prefix) {
            state.clients.retain(|(c, _)| *c != who);
            if state.clients.is_empty() {
                self.prefixes.remove(prefix);
            }
        }
    }

    /// The end of a pass: every BCAST client gets the keys that changed under its prefixes,
    /// one message per prefix (a NOLOOP client without those it changed itself).
    pub fn broadcast(&mut self, out: &mut impl FnMut(Subscriber, Message)) {
        for state in self.prefixes.values_mut() {
            if state.changed.is_empty() {
                continue;
            }
            let changed = std::mem::take(&mut state.changed);
            let all: Vec<Bytes> = changed.keys().cloned().collect();
            for &(client, noloop) in &state.clients {
                let keys = if noloop {
                    changed
                        .iter()
                        .filter(|(_, by)| **by != Some(client))
                        .map(|(k, _)| k.clone())
                        .collect()
                } else {
                    all.clone()
                };
                if !keys.is_empty() {
                    out(client, Message::Prefixed(keys));
                }
            }
        }
    }
}

impl Core {
    /// After a command ran on this shard for `caller`: remembers the keys a tracking client
    /// read, tells the readers of the keys it wrote (`wrote`: it changed something), and
    /// after a flush (`flushed`) tells this core's tracking clients that every key is
    /// invalid.
    pub fn track_command(
        &self,
        cmd: &Command,
        args: &[Bytes],
        caller: Option<Caller>,
        wrote: bool,
        unchanged: Option<usize>,
        flushed: bool,
    ) {
        let mut keys = Vec::new();
        if let Some(c) = caller.filter(|c| c.remember && cmd.flags.has(Flags::READONLY)) {
            cmd.key_indexes(args, &mut keys);
            let read: Vec<&Bytes> = keys.iter().filter_map(|&i| args.get(i)).collect();
            self.track_read(read, c.who);
        }
        let mut table = self.tracking.borrow_mut();
        if wrote && table.in_use() {
            keys.clear();
            cmd.written_key_indexes(args, &mut keys);
            let writer = caller.map(|c| c.who);
            for &i in keys.iter().filter(|&&i| Some(i) != unchanged) {
                if let Some(key) = args.get(i) {
                    table.changed(key, writer, &mut |to, msg| self.send_tracking(to, msg));
                }
            }
        }
        drop(table);
        if flushed {
            self.track_flush();
        }
        self.sync_tracking_flag();
    }

    /// Remembers that `who` read `keys` (of this shard), within this shard's share of
    /// `tracking-table-max-keys`.
    pub fn track_read<'a>(&self, keys: impl IntoIterator<Item = &'a Bytes>, who: Subscriber) {
        let max = self.tracking_quota();
        let mut table = self.tracking.borrow_mut();
        for key in keys {
            table.remember(key, who);
        }
        table.limit(max, &mut |to, msg| self.send_tracking(to, msg));
        drop(table);
        self.sync_tracking_flag();
    }

    /// A key of this shard changed outside a command's declared writes: expired, evicted, or
    /// written back by a command that ran on another shard over a copy.
    pub fn track_changed(&self, key: &[u8], writer: Option<Subscriber>) {
        let mut table = self.tracking.borrow_mut();
        if table.in_use() {
            table.changed(key, writer, &mut |to, msg| self.send_tracking(to, msg));
        }
        drop(table);
        self.sync_tracking_flag();
    }

    /// The keyspace events a command (or active expiry) reported: keys expired or evicted are
    /// invalidated.
    pub fn track_events(&self, events: &[notify::Event]) {
        let mut table = self.tracking.borrow_mut();
        if !table.in_use() {
            return;
        }
        for e in events {
            if e.class & (notify::EXPIRED | notify::EVICTED) != 0 {
                table.changed(&e.key, None, &mut |to, msg| self.send_tracking(to, msg));
            }
        }
        drop(table);
        self.sync_tracking_flag();
    }

    /// FLUSHDB / FLUSHALL ran on this shard: its table empties (keys are tracked by name,
    /// whatever the database, as in Redis), and this core's tracking clients learn that every
    /// key is invalid (every core runs the flush, so each client is told once).
    fn track_flush(&self) {
        self.tracking.borrow_mut().clear();
        let clients: Vec<Subscriber> = self
            .clients
            .borrow()
            .values()
            .filter_map(|c| {
                // No caller holds a client record while a command runs; never panic if one did.
                let c = c.try_borrow().ok()?;
                c.tracking.on.then_some(Subscriber {
                    core: self.id,
                    conn: c.conn,
                })
            })
            .collect();
        for to in clients {
            self.send_tracking(to, Message::Flush);
        }
    }

    /// The end of an event-loop pass: BCAST clients get what changed during it.
    pub fn track_broadcast(&self) {
        self.tracking
            .borrow_mut()
            .broadcast(&mut |to, msg| self.send_tracking(to, msg));
    }

    /// Keeps the table within this shard's share of `tracking-table-max-keys` (after CONFIG
    /// SET lowered it; reads check it as they add keys).
    pub fn track_limit(&self) {
        let max = self.tracking_quota();
        self.tracking
            .borrow_mut()
            .limit(max, &mut |to, msg| self.send_tracking(to, msg));
        self.sync_tracking_flag();
    }

    /// This shard's share of `tracking-table-max-keys` (None: no limit). The shares add up to
    /// the limit, so the keys of every shard together stay within it.
    fn tracking_quota(&self) -> Option<usize> {
        let max = self.config.borrow().get_i64("tracking-table-max-keys");
        let max = usize::try_from(max).ok().filter(|&m| m > 0)?;
        let shards = self.shards.max(1);
        Some(max / shards + usize::from(self.id < max % shards))
    }

    /// Queues a tracking message for the connection `to` names (sent at the end of the pass).
    pub fn send_tracking(&self, to: Subscriber, msg: Message) {
        self.pubsub
            .borrow_mut()
            .queue_one(self.shards, to, What::Tracking(msg));
    }

    /// Keeps the shard reporting expired and evicted keys while anything here is tracked.
    fn sync_tracking_flag(&self) {
        let in_use = self.tracking.borrow().in_use();
        let mut shard = self.shard.borrow_mut();
        if in_use {
            shard.notify_flags |= notify::TRACKING;
        } else {
            shard.notify_flags &= !notify::TRACKING;
        }
    }

    /// Registers (or with `on` false, removes) BCAST `prefixes` of `who` on this core.
    pub fn track_prefixes(&self, who: Subscriber, prefixes: &[Bytes], noloop: bool, on: bool) {
        {
            let mut table = self.tracking.borrow_mut();
            for p in prefixes {
                if on {
                    table.register(p.clone(), who, noloop);
                } else {
                    table.unregister(p, who);
                }
            }
        }
        self.sync_tracking_flag();
    }
}

/// Turns a client's tracking off (CLIENT TRACKING OFF, RESET, disconnection) without waiting:
/// its BCAST prefixes leave every core by message. Keys it read stay in the tables until they
/// change (as in Redis), and their messages are dropped at its connection.
pub fn disable(core: &Rc<Core>, client: &mut Client) {
    let t = std::mem::take(&mut client.tracking);
    if t.prefixes.is_empty() {
        return;
    }
    let who = Subscriber {
        core: core.id,
        conn: client.conn,
    };
    let prefixes: Vec<Bytes> = t.prefixes.into_iter().collect();
    for shard in 0..core.shards {
        let prefixes = prefixes.clone();
        core.post(
            shard,
            Box::new(move |c| c.track_prefixes(who, &prefixes, false, false)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ConnRef;

    fn who(core: usize, conn: u64) -> Subscriber {
        Subscriber {
            core,
            conn: ConnRef(conn),
        }
    }

    fn collect(f: impl FnOnce(&mut dyn FnMut(Subscriber, Message))) -> Vec<(Subscriber, Message)> {
        let mut out = Vec::new();
        f(&mut |to, msg| out.push((to, msg)));
        out
    }

    fn key(k: &str) -> Bytes {
        Bytes::copy_from_slice(k.as_bytes())
    }

    #[test]
    fn a_change_tells_each_reader_once_and_forgets_the_key() {
        let mut t = Table::new(1);
        t.remember(b"k", who(0, 1));
        t.remember(b"k", who(1, 2));
        t.remember(b"k", who(1, 2));
        t.remember(b"other", who(0, 1));
        assert_eq!((t.keys(), t.items()), (2, 3));
        let sent = collect(|out| t.changed(b"k", Some(who(1, 2)), &mut |a, b| out(a, b)));
        assert_eq!(
            sent,
            vec![
                (
                    who(0, 1),
                    Message::Key {
                        key: key("k"),
                        by_self: false
                    }
                ),
                (
                    who(1, 2),
                    Message::Key {
                        key: key("k"),
                        by_self: true
                    }
                ),
            ]
        );
        assert_eq!((t.keys(), t.items()), (1, 1));
        assert!(collect(|out| t.changed(b"k", None, &mut |a, b| out(a, b))).is_empty());
        t.clear();
        assert!(!t.in_use());
    }

    #[test]
    fn eviction_gets_under_the_limit_telling_the_readers() {
        let mut t = Table::new(7);
        for i in 0..250 {
            t.remember(format!("key{i}").as_bytes(), who(0, 1));
        }
        let mut told = 0;
        t.limit(Some(1), &mut |_, _| told += 1);
        // The first run's effort is 100 keys; the next ones try harder.
        assert_eq!((told, t.keys()), (100, 150));
        t.limit(Some(1), &mut |_, _| told += 1);
        t.limit(Some(1), &mut |_, _| told += 1);
        assert_eq!((told, t.keys(), t.items()), (249, 1, 1));
        t.limit(None, &mut |_, _| told += 1);
        assert_eq!(told, 249);
    }

    #[test]
    fn bcast_collects_changes_per_prefix_and_skips_a_noloop_writer() {
        let mut t = Table::new(1);
        t.register(key("a:"), who(0, 1), false);
        t.register(key("a:"), who(1, 2), true);
        t.register(key(""), who(1, 3), false);
        assert_eq!(t.prefixes(), 2);
        t.changed(b"a:1", Some(who(1, 2)), &mut |_, _| {});
        t.changed(b"a:2", None, &mut |_, _| {});
        t.changed(b"b:1", Some(who(1, 2)), &mut |_, _| {});
        let sent = collect(|out| t.broadcast(&mut |a, b| out(a, b)));
        assert_eq!(
            sent,
            vec![
                (
                    who(1, 3),
                    Message::Prefixed(vec![key("a:1"), key("a:2"), key("b:1")])
                ),
                (who(0, 1), Message::Prefixed(vec![key("a:1"), key("a:2")])),
                (who(1, 2), Message::Prefixed(vec![key("a:2")])),
            ]
        );
        assert!(collect(|out| t.broadcast(&mut |a, b| out(a, b))).is_empty());
        t.unregister(b"a:", who(0, 1));
        t.unregister(b"a:", who(1, 2));
        t.unregister(b"", who(1, 3));
        assert!(!t.in_use());
    }

    #[test]
    fn prefix_collisions_are_refused_with_redis_errors() {
        let none = BTreeSet::new();
        let e = check_prefixes(&none, &[key("FOOBAR"), key("FOO")]).unwrap_err();
        assert!(e.starts_with("ERR Prefix 'FOOBAR' overlaps with another provided prefix 'FOO'"));
        assert!(check_prefixes(&none, &[key("FOO"), key("BAR")]).is_ok());
        let have: BTreeSet<Bytes> = [key("FOO"), key("BAR")].into();
        let e = check_prefixes(&have, &[key("FO")]).unwrap_err();
        assert!(e.starts_with("ERR Prefix 'FO' overlaps with an existing prefix 'FOO'"));
        assert!(check_prefixes(&have, &[key("BARB")]).is_err());
        assert!(check_prefixes(&have, &[key("BAZ")]).is_ok());
        // The pair Redis names: the first new prefix in order with a collision, existing ones
        // (smallest first) before the new ones after it.
        let have: BTreeSet<Bytes> = [key("x:"), key("y")].into();
        let e = check_prefixes(&have, &[key("a"), key("ab"), key("yz"), key("a")]).unwrap_err();
        assert!(e.starts_with("ERR Prefix 'a' overlaps with another provided prefix 'ab'"));
        let e = check_prefixes(&have, &[key("b"), key("yz"), key("ab"), key("a")]).unwrap_err();
        assert!(e.starts_with("ERR Prefix 'yz' overlaps with an existing prefix 'y'"));
        let e = check_prefixes(&have, &[key("b"), key("x"), key("y")]).unwrap_err();
        assert!(e.starts_with("ERR Prefix 'x' overlaps with an existing prefix 'x:'"));
        let e = check_prefixes(&have, &[key("c"), key("d"), key("c")]).unwrap_err();
        assert!(e.starts_with("ERR Prefix 'c' overlaps with another provided prefix 'c'"));
        // The empty prefix overlaps everything; existing ones may overlap each other (BCAST
        // without PREFIX added it to them).
        let have: BTreeSet<Bytes> = [key(""), key("q")].into();
        let e = check_prefixes(&have, &[key("qq")]).unwrap_err();
        assert!(e.starts_with("ERR Prefix 'qq' overlaps with an existing prefix ''"));
    }

    #[test]
    fn prefix_checks_agree_with_the_pairwise_rule_and_stay_fast() {
        // Against the pairwise scan, on every small case over a two-letter alphabet.
        let words: Vec<Bytes> = ["", "a", "b", "aa", "ab", "ba", "aab", "abb"]
            .iter()
            .map(|w| key(w))
            .collect();
        let pairwise = |existing: &BTreeSet<Bytes>, new: &[Bytes]| -> Option<(usize, Bytes)> {
            for (i, p) in new.iter().enumerate() {
                if let Some(old) = existing.iter().find(|o| overlap(o, p)) {
                    return Some((i, old.clone()));
                }
                if let Some(o) = new[i + 1..].iter().find(|o| overlap(p, o)) {
                    return Some((i, o.clone()));
                }
            }
            None
        };
        for mask in 0u32..(1 << 8) {
            let existing: BTreeSet<Bytes> = (0..8)
                .filter(|b| mask & (1 << b) != 0)
                .map(|b| words[b].clone())
                .collect();
            for a in 0..8 {
                for b in 0..8 {
                    for c in 0..8 {
                        let new = [words[a].clone(), words[b].clone(), words[c].clone()];
                        let got = check_prefixes(&existing, &new).err();
                        let want = pairwise(&existing, &new).map(|(i, other)| {
                            (String::from_utf8_lossy(&new[i]).into_owned(), other)
                        });
                        match (got, want) {
                            (None, None) => {}
                            (Some(e), Some((p, other))) => {
                                let other = String::from_utf8_lossy(&other).into_owned();
                                assert!(
                                    e.contains(&format!("Prefix '{p}' overlaps with"))
                                        && e.contains(&format!("prefix '{other}'.")),
                                    "{existing:?} {new:?}: {e}"
                                );
                            }
                            (got, want) => panic!("{existing:?} {new:?}: {got:?} vs {want:?}"),
                        }
                    }
                }
            }
        }
        // Many prefixes, the only collision last: no pairwise scan.
        let mut many: Vec<Bytes> = (0..100_000u32).map(|i| key(&format!("p{i:06}:"))).collect();
        many.push(key("p099999"));
        let started = std::time::Instant::now();
        assert!(check_prefixes(&BTreeSet::new(), &many).is_err());
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }

    #[test]
    fn settings_decide_what_is_remembered_and_reported() {
        let me = who(0, 1);
        let mut t = ClientTracking::default();
        assert_eq!(t.caller(me), None);
        assert_eq!(t.redirect_id(), -1);
        t.on = true;
        assert_eq!(t.caller(me).map(|c| c.remember), Some(true));
        t.optin = true;
        assert_eq!(t.caller(me).map(|c| c.remember), Some(false));
        t.caching = true;
        assert_eq!(t.caller(me).map(|c| c.remember), Some(true));
        assert_eq!(t.info_flags(), ["on", "optin", "caching-yes"]);
        t = ClientTracking {
            on: true,
            optout: true,
            caching: true,
            ..Default::default()
        };
        assert_eq!(t.caller(me).map(|c| c.remember), Some(false));
        assert_eq!(t.info_flags(), ["on", "optout", "caching-no"]);
        t = ClientTracking {
            on: true,
            bcast: true,
            broken_redirect: true,
            redirect: Some(Redirect { id: 9, to: me }),
            ..Default::default()
        };
        assert_eq!(t.caller(me).map(|c| c.remember), Some(false));
        assert_eq!(t.redirect_id(), 9);
        let mut flags = String::new();
        t.list_flags(&mut flags);
        assert_eq!(flags, "tRB");
    }
}
