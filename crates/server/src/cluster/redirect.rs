//! Redirection of cluster-aware clients: a connection on a node's own port is a client of
//! that node alone. As Redis's `getNodeByQuery`, a command whose keys hash to several slots
//! is refused with -CROSSSLOT, and one whose slot another node owns gets -MOVED to that node;
//! nothing is forwarded. (Connections on the shared port keep the forwarding.)
//!
//! On the bus a slot can be open (being moved, CLUSTER SETSLOT): the verdict then depends
//! on which of the request's keys this node still has (-ASK to the node taking the slot,
//! -TRYAGAIN for keys partly moved, or served after ASKING on the importing node). Such a
//! request runs in a task (`run_open`) that takes the lock of its keys, weighs them on
//! their shard and runs the command under that lock: a MIGRATE (which holds the same lock
//! while it moves them) cannot slip in between, so a write never lands on a key that has
//! just left, as none can while Redis weighs and runs a command in one step.

use bytes::Bytes;
use shardis_engine::command::Flags;
use shardis_engine::{Command, Exec, ServerCmd};
use shardis_resp::Reply;

use super::view::{Snapshot, UNOWNED};
use super::NodeAddr;
use crate::config::Config;
use crate::conn::multi;
use crate::conn::session::Session;
use crate::coord::{route, txn};

pub const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";

/// Why node `here` does not serve a request.
#[derive(Debug, PartialEq, Eq, Clone)]
pub enum Redirect {
    CrossSlot,
    /// The slot and the shard whose node owns it.
    Moved {
        slot: u16,
        shard: usize,
    },
    /// On the bus: -MOVED to a node's announced address.
    To {
        slot: u16,
        ip: String,
        port: u16,
    },
    /// On the bus: the slot has no owner (-CLUSTERDOWN Hash slot not served).
    Unbound,
    /// On the bus: the cluster state is fail (-CLUSTERDOWN The cluster is down).
    Down,
    /// On the bus: the slot is being moved and the keys are not here: -ASK to its new node.
    Ask {
        slot: u16,
        ip: String,
        port: u16,
    },
    /// On the bus: keys of an open slot partly here (-TRYAGAIN).
    TryAgain,
}

/// A request in an open slot, as Redis's `getNodeByQuery` weighs it: how many of its keys
/// this node has, whether they are several different keys, and how the client asks.
#[derive(Default, Clone, Copy)]
pub struct Open {
    pub missing: usize,
    pub existing: usize,
    pub multiple: bool,
    /// The client sent ASKING, or the command is flagged `asking` (RESTORE-ASKING).
    pub asking: bool,
    /// MIGRATE: served by the node whatever state the slot is in.
    pub migrate: bool,
}

/// Whether node `view` serves `slot` (for a client of its own port, `node`, or of the
/// shared port, which serves every local node's slots), as Redis's `getNodeByQuery`; `open`
/// describes the request when the slot is open (see [`is_open`]). A replica serves its
/// master's slots to a READONLY client's reads (`replica_read`).
fn on_bus(
    view: &Snapshot,
    slot: u16,
    node: bool,
    open: Option<Open>,
    replica_read: bool,
) -> Result<(), Redirect> {
    let Some(&owner) = view.owner.get(slot as usize).filter(|&&o| o != UNOWNED) else {
        return Err(Redirect::Unbound);
    };
    if !view.ok {
        return Err(Redirect::Down);
    }
    let owner = owner as usize;
    let migrating = if owner == view.me {
        view.migrating_to(slot)
    } else {
        None
    };
    let importing = view.importing(slot);
    if let Some(o) = open.filter(|_| migrating.is_some() || importing) {
        if o.migrate {
            return Ok(());
        }
        if let (Some(to), true) = (migrating, o.missing > 0) {
            if o.existing > 0 {
                return Err(Redirect::TryAgain);
            }
            return Err(Redirect::Ask {
                slot,
                ip: to.ip.clone(),
                port: to.port,
            });
        }
        if importing && o.asking {
            if o.multiple && o.missing > 0 {
                return Err(Redirect::TryAgain);
            }
            return Ok(());
        }
    }
    let my_master = view.myself().master.as_ref();
    let replica_of_owner = view.myself().flags & super::bus::msg::flags::SLAVE != 0
        && view
            .nodes
            .get(owner)
            .is_some_and(|o| Some(&o.id) == my_master);
    let served = owner == view.me
        || (replica_read && replica_of_owner)
        || (!node && view.local.get(owner).copied().unwrap_or(false));
    if served {
        return Ok(());
    }
    let n = view.nodes.get(owner).ok_or(Redirect::Unbound)?;
    Err(Redirect::To {
        slot,
        ip: n.ip.clone(),
        port: n.port,
    })
}

/// The slot of the keys of a request made of `commands` (one, or a transaction's), None
/// when it has no key; Err when its keys span slots.
pub fn slot_of<'a>(
    commands: impl IntoIterator<Item = (&'a Command, &'a [Bytes])>,
    idx: &mut Vec<usize>,
) -> Result<Option<u16>, Redirect> {
    let mut slot = None;
    for (cmd, args) in commands {
        idx.clear();
        if let Some(last) = shard_channels(cmd, args.len()) {
            // Shard channels are routed by slot as keys are, though their specs say not_key.
            idx.extend(1..last);
        } else if !cmd.key_indexes(args, idx) {
            // Arguments that contradict the key specs: the command itself answers the error.
            continue;
        }
        for key in idx.iter().filter_map(|&i| args.get(i)) {
            let this = route::key_slot(key);
            match slot {
                None => slot = Some(this),
                Some(s) if s != this => return Err(Redirect::CrossSlot),
                Some(_) => {}
            }
        }
    }
    Ok(slot)
}

/// Where the shard channels of a command of `argc` arguments end (they start at 1), for
/// SSUBSCRIBE, SUNSUBSCRIBE and SPUBLISH: Redis Cluster routes them by slot (its
/// `getNodeByQuery`), the other Pub/Sub commands reach any node.
fn shard_channels(cmd: &Command, argc: usize) -> Option<usize> {
    match cmd.exec {
        Exec::Server(ServerCmd::SPublish) => Some(2.min(argc)),
        Exec::Server(ServerCmd::SSubscribe | ServerCmd::SUnsubscribe) => Some(argc),
        _ => None,
    }
}

/// Whether node `here` (of `shards`) serves a request made of `commands`.
pub fn check<'a>(
    commands: impl IntoIterator<Item = (&'a Command, &'a [Bytes])>,
    here: usize,
    shards: usize,
    idx: &mut Vec<usize>,
) -> Result<(), Redirect> {
    match slot_of(commands, idx)? {
        Some(slot) => check_slot(slot, here, shards),
        None => Ok(()),
    }
}

/// Whether node `here` (of `shards`) serves `slot`.
fn check_slot(slot: u16, here: usize, shards: usize) -> Result<(), Redirect> {
    let shard = route::shard_of_slot(slot, shards);
    if shard == here {
        Ok(())
    } else {
        Err(Redirect::Moved { slot, shard })
    }
}

/// Whether "myself" of `view` is moving `slot` out or in.
fn is_open(view: &Snapshot, slot: u16) -> bool {
    view.importing(slot)
        || view.owner.get(slot as usize) == Some(&(view.me as u16))
            && view.migrating_to(slot).is_some()
}

/// The keys of a request (one command, or EXEC's queued ones) in the order Redis meets
/// them, for the weighing of an open slot.
fn keys_of(s: &Session, cmd: &Command, args: &[Bytes], idx: &mut Vec<usize>) -> Vec<Bytes> {
    let mut keys = Vec::new();
    let mut add = |c: &Command, a: &[Bytes], idx: &mut Vec<usize>| {
        idx.clear();
        if c.key_indexes(a, idx) {
            keys.extend(idx.iter().filter_map(|&i| a.get(i)).cloned());
        }
    };
    if matches!(cmd.exec, Exec::Server(ServerCmd::Exec)) {
        for (c, a) in s.multi.iter().flat_map(|m| m.queued.iter()) {
            add(c, a, idx);
        }
    } else {
        add(cmd, args, idx);
    }
    keys
}

/// How `keys` stand on this shard (database 0, expired keys missing, nothing touched).
fn weigh(core: &crate::core::Core, keys: &[Bytes], open: &mut Open) {
    let now = core.now_ms();
    let shard = core.shard.borrow();
    let Some(db) = shard.dbs.first() else { return };
    for (i, k) in keys.iter().enumerate() {
        if i > 0 && *k != keys[0] {
            open.multiple = true;
        }
        if db.peek(k).is_some_and(|e| !db.is_expired(e, now)) {
            open.existing += 1;
        } else {
            open.missing += 1;
        }
    }
}

/// Takes the client's ASKING for this command: it lasts one command, or a whole MULTI
/// up to its EXEC (Redis clears it after each command but ASKING, outside MULTI).
fn take_asking(s: &Session, cmd: &Command) -> bool {
    let mut c = s.client.borrow_mut();
    let asking = c.asking;
    let keep = matches!(cmd.exec, Exec::Server(ServerCmd::Asking))
        || s.multi.is_some()
            && !matches!(
                cmd.exec,
                Exec::Server(ServerCmd::Exec) | Exec::Server(ServerCmd::Discard)
            );
    if !keep {
        c.asking = false;
    }
    asking || cmd.flags.has(Flags::ASKING)
}

fn open_for(cmd: &Command, asking: bool) -> Open {
    Open {
        asking,
        migrate: matches!(cmd.exec, Exec::Server(ServerCmd::Migrate)),
        ..Open::default()
    }
}

/// How a script's calls are judged in cluster mode (Redis's `scriptVerifyClusterState`),
/// taken from its caller when it starts: a script runs atomically, so the view it starts
/// with is the one it runs under.
#[derive(Clone)]
pub struct ScriptCluster {
    /// On the bus: the caller's node's view.
    pub view: Option<std::sync::Arc<Snapshot>>,
    /// The caller is a client of a node's own port (else of the shared port).
    pub node: bool,
    pub readonly: bool,
    /// The caller's core, among `shards`.
    pub home: usize,
    pub shards: usize,
    /// The slot of the keys the script declared, if any.
    pub slot: Option<u16>,
    /// Calls may use keys of several slots: an EVAL without a shebang line, or the
    /// `allow-cross-slot-keys` flag.
    pub cross_slot: bool,
}

impl ScriptCluster {
    /// What a script called by the client of `s` is held to, if the client is held to the
    /// cluster's rules at all (as [`refuse`] holds its commands).
    pub fn of(s: &Session, declared: &[Bytes], cross_slot: bool) -> Option<ScriptCluster> {
        let bus = super::bus::enabled();
        let (node, readonly) = {
            let c = s.client.borrow();
            (c.node, c.readonly)
        };
        if !bus && !node {
            return None;
        }
        Some(ScriptCluster {
            view: if bus {
                super::bus::snapshot(s.core.id)
            } else {
                None
            },
            node,
            readonly,
            home: s.core.id,
            shards: s.core.shards,
            slot: declared.first().map(|k| route::key_slot(k)),
            cross_slot,
        })
    }

    /// Whether the script may run `cmd`: the slot of its keys (None: it has none), or
    /// Redis's error for a key this node does not serve.
    pub fn admit(
        &self,
        cmd: &Command,
        args: &[Bytes],
        idx: &mut Vec<usize>,
    ) -> Result<Option<u16>, &'static str> {
        const NON_LOCAL: &str = "Script attempted to access a non local key in a cluster node";
        let Some(slot) = slot_of([(cmd, args)], idx).map_err(|_| NON_LOCAL)? else {
            return Ok(None);
        };
        let verdict = match &self.view {
            Some(view) => on_bus(
                view,
                slot,
                self.node,
                None,
                self.readonly && !cmd.is_write(),
            ),
            None => check_slot(slot, self.home, self.shards),
        };
        match verdict {
            Ok(()) => Ok(Some(slot)),
            Err(Redirect::Down) => {
                Err("Script attempted to execute a command while the cluster is down")
            }
            Err(_) => Err(NON_LOCAL),
        }
    }
}

/// On the bus, every tick of the core's clock: a client blocked on keys of a slot its node
/// no longer serves (moved by a reshard or a failover) is answered -MOVED to the slot's
/// owner and unblocked, as Redis's `clusterRedirectBlockedClientIfNeeded` does, rather than
/// left waiting for a write that will never come here; -CLUSTERDOWN when the cluster is down
/// or the slot unassigned. A slot this node imports keeps its clients waiting.
pub fn redirect_blocked(core: &crate::core::Core) {
    if !super::bus::enabled() {
        return;
    }
    let Some(view) = super::bus::snapshot(core.id) else {
        return;
    };
    let config = core.config.borrow();
    for client in core.clients.borrow().values() {
        let c = client.borrow();
        let Some(u) = c.unblock.as_ref() else {
            continue;
        };
        let verdict = if !view.ok {
            Err(Redirect::Down)
        } else if view.importing(u.slot) {
            Ok(())
        } else {
            on_bus(&view, u.slot, c.node, None, c.readonly && !u.write)
        };
        if let Err(redirect) = verdict {
            u.unblock_with(redirect.reply(&config, super::ip_of(&c.laddr)));
        }
    }
}

/// The refusal of a command a client of a node's own port sends, if the node does not serve
/// it (None for clients of the shared port). EXEC is judged on its queued commands together
/// and a refused EXEC drops the transaction; a command refused inside MULTI fails it.
///
/// A request in an open slot whose keys are another core's is not judged here: it is left
/// in `s.open_slot` for [`refuse_open`], which the event loop runs in a task before the
/// command.
pub fn refuse(
    s: &mut Session,
    cmd: &Command,
    args: &[Bytes],
    idx: &mut Vec<usize>,
) -> Option<Reply> {
    let bus = super::bus::enabled();
    if !bus && !s.client.borrow().node {
        return None;
    }
    let (here, shards) = (s.core.id, s.core.shards);
    let exec = matches!(cmd.exec, Exec::Server(ServerCmd::Exec));
    let verdict = if bus {
        // On the bus the slot map is the node's view; the shared port serves the slots of
        // every node of the process.
        let view = super::bus::snapshot(here)?;
        let (node, readonly) = {
            let c = s.client.borrow();
            (c.node, c.readonly)
        };
        let asking = take_asking(s, cmd);
        let (slot, writes) = if exec {
            let queued = &s.multi.as_ref()?.queued;
            let writes = queued.iter().any(|(c, _)| c.is_write());
            (
                slot_of(queued.iter().map(|(c, a)| (*c, &a[..])), idx),
                writes,
            )
        } else {
            (slot_of([(cmd, args)], idx), cmd.is_write())
        };
        match slot {
            Ok(Some(slot)) if is_open(&view, slot) => {
                s.open_slot = Some(asking);
                return None;
            }
            // A replica serves its master's shard channels to any client, as Redis does.
            Ok(Some(slot)) => {
                let shard_pubsub = shard_channels(cmd, args.len()).is_some();
                on_bus(
                    &view,
                    slot,
                    node,
                    None,
                    (readonly || shard_pubsub) && !writes,
                )
            }
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        }
    } else if exec {
        let queued = s.multi.as_ref()?.queued.iter();
        check(queued.map(|(c, a)| (*c, &a[..])), here, shards, idx)
    } else {
        check([(cmd, args)], here, shards, idx)
    };
    let redirect = verdict.err()?;
    Some(refused(s, exec, redirect))
}

/// The reply of a refused request; a refused EXEC drops the transaction and a command
/// refused inside MULTI fails it.
fn refused(s: &mut Session, exec: bool, redirect: Redirect) -> Reply {
    if exec {
        multi::discard(s);
    } else {
        multi::flag_error(s);
    }
    let local = s.client.borrow().laddr.clone();
    redirect.reply(&s.core.config.borrow(), super::ip_of(&local))
}

/// Runs a request of an open slot (left by [`refuse`] in `s.open_slot`): judged on the
/// keys its shard has, with the node's view of now, and run if served. A command over shard
/// data runs under the lock of its keys, taken before they are weighed; MIGRATE, EXEC and
/// blocking commands, which take locks or wait themselves, are weighed without it.
pub async fn run_open(
    s: &mut Session,
    cmd: &'static Command,
    args: Vec<Bytes>,
    asking: bool,
) -> Option<Reply> {
    let core = s.core.clone();
    let mut idx = Vec::new();
    let exec = matches!(cmd.exec, Exec::Server(ServerCmd::Exec));
    let keys = keys_of(s, cmd, &args, &mut idx);
    let Some(first) = keys.first() else {
        return crate::conn::dispatch::run(s, cmd, args).await;
    };
    let slot = route::key_slot(first);
    let shard = route::shard_of_slot(slot, core.shards);
    let atomic = matches!(cmd.exec, Exec::Shard(_))
        && !(cmd.flags.has(Flags::BLOCKING) && cmd.may_block(&args))
        && s.tx.is_none();
    let held = if atomic {
        let plan = txn::plan_keys(core.shards, keys.iter().map(|k| (0, &k[..])));
        let held = txn::lock(&core, plan).await;
        s.tx = Some(held.tx);
        Some(held)
    } else {
        None
    };
    let mut open = core
        .run_on(shard, move |c| {
            let mut open = Open::default();
            weigh(c, &keys, &mut open);
            open
        })
        .await
        .unwrap_or_default();
    let fresh = open_for(cmd, asking);
    (open.asking, open.migrate) = (fresh.asking, fresh.migrate);
    let node = s.client.borrow().node;
    let verdict = match super::bus::snapshot(core.id) {
        Some(view) => on_bus(&view, slot, node, Some(open), false),
        None => Ok(()),
    };
    let reply = match verdict {
        Ok(()) => crate::conn::dispatch::run(s, cmd, args).await,
        Err(redirect) => Some(refused(s, exec, redirect)),
    };
    if let Some(held) = held {
        s.tx = None;
        txn::unlock(&core, held).await;
    }
    reply
}

impl Redirect {
    /// Redis's error: `-CROSSSLOT …` or `-MOVED <slot> <ip>:<port>`; `local_ip` is where the
    /// client reached this node (see [`NodeAddr::of`]).
    pub fn reply(&self, config: &Config, local_ip: &str) -> Reply {
        match *self {
            Redirect::CrossSlot => Reply::err(CROSSSLOT),
            Redirect::Moved { slot, shard } => {
                let addr = NodeAddr::of(config, shard, local_ip);
                Reply::error(format!("MOVED {slot} {}:{}", addr.ip, addr.port))
            }
            Redirect::To { slot, ref ip, port } => {
                Reply::error(format!("MOVED {slot} {ip}:{port}"))
            }
            Redirect::Unbound => Reply::err("CLUSTERDOWN Hash slot not served"),
            Redirect::Down => Reply::err("CLUSTERDOWN The cluster is down"),
            Redirect::Ask { slot, ref ip, port } => Reply::error(format!("ASK {slot} {ip}:{port}")),
            Redirect::TryAgain => {
                Reply::err("TRYAGAIN Multiple keys request during rehashing of slot")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardis_engine::command::lookup;

    fn args(words: &[&str]) -> Vec<Bytes> {
        words
            .iter()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    #[test]
    fn keys_of_one_slot_pass_others_are_refused() {
        let mut idx = Vec::new();
        let get = lookup(&args(&["get", "x"])).unwrap();
        let mget = lookup(&args(&["mget", "x"])).unwrap();
        let ping = lookup(&args(&["ping"])).unwrap();
        // slot("foo") = 12182, slot("bar") = 5061: with mod-2 routing, shard 0 and 1.
        let foo = args(&["get", "foo"]);
        assert_eq!(check([(get, &foo[..])], 0, 2, &mut idx), Ok(()));
        assert_eq!(
            check([(get, &foo[..])], 1, 2, &mut idx),
            Err(Redirect::Moved {
                slot: 12182,
                shard: 0
            })
        );
        let cross = args(&["mget", "foo", "bar"]);
        assert_eq!(
            check([(mget, &cross[..])], 0, 2, &mut idx),
            Err(Redirect::CrossSlot)
        );
        let tagged = args(&["mget", "{foo}a", "{foo}b"]);
        assert_eq!(check([(mget, &tagged[..])], 0, 2, &mut idx), Ok(()));
        let none = args(&["ping"]);
        assert_eq!(check([(ping, &none[..])], 1, 2, &mut idx), Ok(()));
        // A transaction: every queued command's keys together.
        let bar = args(&["get", "bar"]);
        assert_eq!(
            check([(get, &foo[..]), (get, &bar[..])], 0, 2, &mut idx),
            Err(Redirect::CrossSlot)
        );
    }
}
