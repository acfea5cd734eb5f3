//! Redirection of cluster-aware clients: a connection on a node's own port is a client of
//! that node alone. As Redis's `getNodeByQuery`, a command whose keys hash to several slots
//! is refused with -CROSSSLOT, and one whose slot another node owns gets -MOVED to that node;
//! nothing is forwarded. (Connections on the shared port keep the forwarding.)

use bytes::Bytes;
use shardis_engine::{Command, Exec, ServerCmd};
use shardis_resp::Reply;

use super::view::{Snapshot, UNOWNED};
use super::NodeAddr;
use crate::config::Config;
use crate::conn::multi;
use crate::conn::session::Session;
use crate::coord::route;

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
}

/// Whether node `view` serves `slot` (for a client of its own port, `node`, or of the
/// shared port, which serves every local node's slots), as Redis's `getNodeByQuery`. A
/// replica serves its master's slots to a READONLY client's reads (`replica_read`).
fn on_bus(view: &Snapshot, slot: u16, node: bool, replica_read: bool) -> Result<(), Redirect> {
    let Some(&owner) = view.owner.get(slot as usize).filter(|&&o| o != UNOWNED) else {
        return Err(Redirect::Unbound);
    };
    if !view.ok {
        return Err(Redirect::Down);
    }
    let owner = owner as usize;
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
        // Arguments that contradict the key specs: the command itself answers the error.
        if !cmd.key_indexes(args, idx) {
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

/// Whether node `here` (of `shards`) serves a request made of `commands`.
pub fn check<'a>(
    commands: impl IntoIterator<Item = (&'a Command, &'a [Bytes])>,
    here: usize,
    shards: usize,
    idx: &mut Vec<usize>,
) -> Result<(), Redirect> {
    match slot_of(commands, idx)? {
        Some(slot) => {
            let shard = route::shard_of_slot(slot, shards);
            if shard == here {
                Ok(())
            } else {
                Err(Redirect::Moved { slot, shard })
            }
        }
        None => Ok(()),
    }
}

/// The refusal of a command a client of a node's own port sends, if the node does not serve
/// it (None for clients of the shared port). EXEC is judged on its queued commands together
/// and a refused EXEC drops the transaction; a command refused inside MULTI fails it.
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
        slot.and_then(|slot| match slot {
            Some(slot) => on_bus(&view, slot, node, readonly && !writes),
            None => Ok(()),
        })
    } else if exec {
        let queued = s.multi.as_ref()?.queued.iter();
        check(queued.map(|(c, a)| (*c, &a[..])), here, shards, idx)
    } else {
        check([(cmd, args)], here, shards, idx)
    };
    let redirect = verdict.err()?;
    if exec {
        multi::discard(s);
    } else {
        multi::flag_error(s);
    }
    let local = s.client.borrow().laddr.clone();
    Some(redirect.reply(&s.core.config.borrow(), super::ip_of(&local)))
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
