//! The CLUSTER commands, ASKING, READONLY, READWRITE. What a node reports is its view
//! (`cluster::view::Snapshot`): on the bus, the latest one its core received from the bus
//! thread; in the cluster of one process, built from the fixed topology. The node a client
//! talks to ("myself") is its connection's core. Changes of the configuration (ADDSLOTS,
//! MEET…) are carried out by the bus thread (`cluster::bus`); without the bus they are
//! refused.

use std::sync::Arc;

use bytes::Bytes;
use shardis_engine::{error, num, ServerCmd};
use shardis_resp::Reply;

use crate::cluster::bus::{self, msg::flags, state::SetSlot, Op};
use crate::cluster::view::{self, NodeInfo, Snapshot};
use crate::cluster::{self, nodes, slot_range, NodeAddr, Topology};
use crate::conn::session::Session;
use crate::coord::route;

const DISABLED: &str = "ERR This instance has cluster support disabled";
const NO_BUS: &str =
    "ERR this needs the cluster bus (cluster-bus yes); the cluster of one process is fixed";

/// The commands that change the configuration through the bus thread.
pub fn is_bus_change(which: ServerCmd) -> bool {
    matches!(
        which,
        ServerCmd::ClusterAddSlots
            | ServerCmd::ClusterAddSlotsRange
            | ServerCmd::ClusterDelSlots
            | ServerCmd::ClusterDelSlotsRange
            | ServerCmd::ClusterSetConfigEpoch
            | ServerCmd::ClusterMeet
            | ServerCmd::ClusterForget
            | ServerCmd::ClusterBumpEpoch
            | ServerCmd::ClusterSaveConfig
            | ServerCmd::ClusterReset
            | ServerCmd::ClusterReplicate
            | ServerCmd::ClusterFailover
            | ServerCmd::ClusterSetSlot
    )
}

/// The cluster commands that answer at once; None for other commands.
pub fn run_sync(s: &mut Session, which: ServerCmd, args: &[Bytes]) -> Option<Reply> {
    let cluster_cmd = matches!(
        which,
        ServerCmd::ClusterInfo
            | ServerCmd::ClusterMyId
            | ServerCmd::ClusterNodes
            | ServerCmd::ClusterSlots
            | ServerCmd::ClusterShards
            | ServerCmd::ClusterKeySlot
            | ServerCmd::ClusterLinks
            | ServerCmd::ClusterReplicas
            | ServerCmd::ClusterHelp
            | ServerCmd::Asking
            | ServerCmd::ReadOnly
            | ServerCmd::ReadWrite
    );
    if !cluster_cmd {
        return None;
    }
    let Some(view) = view_of(s) else {
        return Some(Reply::err(DISABLED));
    };
    Some(match which {
        ServerCmd::ClusterInfo => view.info(),
        ServerCmd::ClusterMyId => Reply::bulk(view.myself().id.as_bytes()),
        ServerCmd::ClusterNodes => Reply::Verbatim(Bytes::from(view.nodes_text())),
        ServerCmd::ClusterSlots => view.slots(),
        ServerCmd::ClusterShards => view.shards(crate::replica::offset().max(0) as u64),
        ServerCmd::ClusterKeySlot => Reply::Int(i64::from(route::key_slot(&args[2]))),
        // Links are those of the cluster bus: the nodes of one process have none.
        ServerCmd::ClusterLinks => view.links(),
        ServerCmd::ClusterReplicas => replicas(&view, &args[2]),
        ServerCmd::ClusterHelp => help(),
        // The next command may be served in a slot this node imports (`redirect`).
        ServerCmd::Asking => {
            s.client.borrow_mut().asking = true;
            Reply::Ok
        }
        ServerCmd::ReadOnly => {
            s.client.borrow_mut().readonly = true;
            Reply::Ok
        }
        ServerCmd::ReadWrite => {
            s.client.borrow_mut().readonly = false;
            Reply::Ok
        }
        _ => return None,
    })
}

/// COUNTKEYSINSLOT, GETKEYSINSLOT and the changes through the bus.
pub async fn run_async(s: &mut Session, which: ServerCmd, args: &[Bytes]) -> Option<Reply> {
    if is_bus_change(which) {
        if !cluster::enabled() {
            return Some(Reply::err(DISABLED));
        }
        if !bus::enabled() {
            return Some(Reply::err(NO_BUS));
        }
        let op = match bus_op(s, which, args).await {
            Ok(op) => op,
            Err(e) => return Some(e),
        };
        return Some(bus::request(s.core.id, op).await);
    }
    if !matches!(
        which,
        ServerCmd::ClusterCountKeysInSlot | ServerCmd::ClusterGetKeysInSlot
    ) {
        return None;
    }
    if !cluster::enabled() {
        return Some(Reply::err(DISABLED));
    }
    let Some(slot) = num::parse_i64(&args[2]) else {
        return Some(error::not_integer());
    };
    let max = match which {
        ServerCmd::ClusterGetKeysInSlot => match num::parse_i64(&args[3]) {
            Some(n) => Some(n),
            None => return Some(error::not_integer()),
        },
        _ => None,
    };
    let slot = match (u16::try_from(slot), max) {
        (Ok(slot), Some(max)) if slot < route::SLOTS && max >= 0 => slot,
        (_, Some(_)) => return Some(Reply::err("ERR Invalid slot or number of keys")),
        (Ok(slot), None) if slot < route::SLOTS => slot,
        (_, None) => return Some(Reply::err("ERR Invalid slot")),
    };
    // The shard keeping the slot's keys (on the bus, whichever node owns it).
    let owner = route::shard_of_slot(slot, s.core.shards);
    if !bus::enabled() && s.client.borrow().node && owner != s.core.id {
        return Some(match max {
            Some(_) => Reply::Array(Vec::new()),
            None => Reply::Int(0),
        });
    }
    let reply = s
        .core
        .run_on(owner, move |core| {
            let shard = core.shard.borrow();
            let Some(db) = shard.dbs.first() else {
                return Reply::Int(0);
            };
            match max {
                Some(max) => Reply::Array(
                    db.keys_in_slot(slot, usize::try_from(max).unwrap_or(usize::MAX))
                        .into_iter()
                        .map(Reply::Bulk)
                        .collect(),
                ),
                None => Reply::Int(db.count_in_slot(slot) as i64),
            }
        })
        .await;
    Some(reply.unwrap_or_else(|| Reply::err("ERR internal: the slot's shard did not answer")))
}

/// A slot argument (Redis's `getSlotOrReply`).
fn slot_arg(b: &Bytes) -> Result<u16, Reply> {
    num::parse_i64(b)
        .and_then(|n| u16::try_from(n).ok())
        .filter(|&n| n < route::SLOTS)
        .ok_or_else(|| Reply::err("ERR Invalid or out of range slot"))
}

fn wrong_arity(sub: &str) -> Reply {
    Reply::error(format!(
        "ERR wrong number of arguments for 'cluster|{sub}' command"
    ))
}

/// The bus operation a command asks for, or its argument error.
async fn bus_op(s: &Session, which: ServerCmd, args: &[Bytes]) -> Result<Op, Reply> {
    let rest = &args[2..];
    Ok(match which {
        ServerCmd::ClusterAddSlots | ServerCmd::ClusterDelSlots => {
            let slots = rest.iter().map(slot_arg).collect::<Result<Vec<_>, _>>()?;
            if which == ServerCmd::ClusterAddSlots {
                Op::AddSlots(slots)
            } else {
                Op::DelSlots(slots)
            }
        }
        ServerCmd::ClusterAddSlotsRange | ServerCmd::ClusterDelSlotsRange => {
            let add = which == ServerCmd::ClusterAddSlotsRange;
            if !rest.len().is_multiple_of(2) {
                return Err(wrong_arity(if add {
                    "addslotsrange"
                } else {
                    "delslotsrange"
                }));
            }
            let mut slots = Vec::new();
            for pair in rest.chunks(2) {
                let (a, b) = (slot_arg(&pair[0])?, slot_arg(&pair[1])?);
                if a > b {
                    return Err(Reply::error(format!(
                        "ERR start slot number {a} is greater than end slot number {b}"
                    )));
                }
                slots.extend(a..=b);
            }
            if add {
                Op::AddSlots(slots)
            } else {
                Op::DelSlots(slots)
            }
        }
        ServerCmd::ClusterSetConfigEpoch => {
            Op::SetConfigEpoch(num::parse_i64(&rest[0]).ok_or_else(error::not_integer)?)
        }
        ServerCmd::ClusterMeet => {
            if rest.len() > 3 {
                return Err(wrong_arity("meet"));
            }
            let text = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
            let port = num::parse_i64(&rest[1]).ok_or_else(|| {
                Reply::error(format!(
                    "ERR Invalid TCP base port specified: {}",
                    text(&rest[1])
                ))
            })?;
            let cport = match rest.get(2) {
                Some(c) => num::parse_i64(c).ok_or_else(|| {
                    Reply::error(format!("ERR Invalid TCP bus port specified: {}", text(c)))
                })?,
                None => port.saturating_add(10000),
            };
            Op::Meet {
                ip: text(&rest[0]),
                port,
                cport,
            }
        }
        ServerCmd::ClusterForget => Op::Forget(rest[0].clone()),
        ServerCmd::ClusterBumpEpoch => Op::BumpEpoch,
        ServerCmd::ClusterSaveConfig => Op::SaveConfig,
        ServerCmd::ClusterReplicate => {
            // The replication code copies the whole process: its one node.
            if !bus::one_node() {
                return Err(Reply::err(
                    "ERR CLUSTER REPLICATE needs a process running one node (shards 1, or cluster-node-per-shard no): replication copies the whole process",
                ));
            }
            Op::Replicate {
                id: rest[0].clone(),
                has_keys: process_holds_keys(s).await,
            }
        }
        ServerCmd::ClusterFailover => {
            let (force, takeover) = match rest {
                [] => (false, false),
                [w] if w.eq_ignore_ascii_case(b"force") => (true, false),
                [w] if w.eq_ignore_ascii_case(b"takeover") => (true, true),
                [_] => return Err(error::syntax()),
                _ => return Err(wrong_arity("failover")),
            };
            Op::Failover { force, takeover }
        }
        ServerCmd::ClusterReset => {
            let hard = match rest {
                [] => false,
                [w] if w.eq_ignore_ascii_case(b"hard") => true,
                [w] if w.eq_ignore_ascii_case(b"soft") => false,
                [_] => return Err(error::syntax()),
                _ => return Err(wrong_arity("reset")),
            };
            if node_holds_keys(s).await {
                return Err(Reply::err(
                    "ERR CLUSTER RESET can't be called with master nodes containing keys",
                ));
            }
            Op::Reset { hard }
        }
        ServerCmd::ClusterSetSlot => {
            let slot = slot_arg(&rest[0])?;
            let id = rest.get(2).map(|b| b.to_vec());
            let action = match (&rest[1], id) {
                (w, Some(id)) if w.eq_ignore_ascii_case(b"migrating") && rest.len() == 3 => {
                    SetSlot::Migrating(id)
                }
                (w, Some(id)) if w.eq_ignore_ascii_case(b"importing") && rest.len() == 3 => {
                    SetSlot::Importing(id)
                }
                (w, None) if w.eq_ignore_ascii_case(b"stable") => SetSlot::Stable,
                (w, Some(id)) if w.eq_ignore_ascii_case(b"node") && rest.len() == 3 => {
                    SetSlot::Node(id, keys_in_slot(s, slot).await)
                }
                _ => return Err(Reply::err(
                    "ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP",
                )),
            };
            Op::SetSlot(slot, action)
        }
        _ => return Err(Reply::err("ERR internal: not a cluster bus command")),
    })
}

/// Whether the process holds keys in database 0 (Redis's check before a master replicates).
async fn process_holds_keys(s: &Session) -> bool {
    for shard in 0..s.core.shards {
        let held = s
            .core
            .run_on(shard, |core| {
                core.shard
                    .borrow()
                    .dbs
                    .first()
                    .is_some_and(|db| !db.is_empty())
            })
            .await;
        if held.unwrap_or(false) {
            return true;
        }
    }
    false
}

/// CLUSTER REPLICAS (SLAVES) `id`: the CLUSTER NODES lines of its replicas.
fn replicas(view: &Snapshot, id: &Bytes) -> Reply {
    let Some(node) = view.nodes.iter().find(|n| n.id.as_bytes() == &id[..]) else {
        return Reply::error(format!("ERR Unknown node {}", String::from_utf8_lossy(id)));
    };
    if node.flags & flags::SLAVE != 0 {
        return Reply::err("ERR The specified node is not a master");
    }
    let lines = view
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, r)| r.flags & flags::SLAVE != 0 && r.master.as_ref() == Some(&node.id))
        .map(|(i, _)| Reply::bulk(view.line(i, true).as_bytes()))
        .collect();
    Reply::Array(lines)
}

/// How many keys of `slot` the process holds (in the shard of its static range).
async fn keys_in_slot(s: &Session, slot: u16) -> u64 {
    let shard = route::shard_of_slot(slot, s.core.shards);
    s.core
        .run_on(shard, move |core| {
            core.shard
                .borrow()
                .dbs
                .first()
                .map_or(0, |db| db.count_in_slot(slot) as u64)
        })
        .await
        .unwrap_or(0)
}

/// Whether the process holds keys in slots the client's node serves.
async fn node_holds_keys(s: &Session) -> bool {
    let Some(view) = bus::snapshot(s.core.id) else {
        return false;
    };
    let ranges: Arc<Vec<(u16, u16)>> = Arc::new(view.myself().ranges.clone());
    let shards = s.core.shards;
    for shard in 0..shards {
        let ranges = ranges.clone();
        let held = s
            .core
            .run_on(shard, move |core| {
                let shard_db = core.shard.borrow();
                let Some(db) = shard_db.dbs.first() else {
                    return false;
                };
                ranges.iter().any(|&(a, b)| {
                    (a..=b).any(|slot| {
                        route::shard_of_slot(slot, shards) == core.id && db.count_in_slot(slot) > 0
                    })
                })
            })
            .await;
        if held.unwrap_or(false) {
            return true;
        }
    }
    false
}

/// The view of the client's node: from the bus, or the fixed cluster of one process.
fn view_of(s: &Session) -> Option<Arc<Snapshot>> {
    if bus::enabled() {
        return bus::snapshot(s.core.id);
    }
    let topology = cluster::topology()?;
    Some(Arc::new(one_process(s, topology)))
}

/// The cluster of one process as node `s.core.id` sees it: every shard a master with its
/// range, all up.
fn one_process(s: &Session, topology: &Topology) -> Snapshot {
    let local = s.client.borrow().laddr.clone();
    let config = s.core.config.borrow();
    let shards = s.core.shards;
    let now = crate::core::wall_ms();
    let me = s.core.id;
    let mut owner = vec![view::UNOWNED; route::SLOTS as usize];
    let nodes = (0..shards)
        .map(|shard| {
            let addr = NodeAddr::of(&config, shard, cluster::ip_of(&local));
            let (first, last) = slot_range(shard, shards);
            for o in &mut owner[first as usize..=last as usize] {
                *o = shard as u16;
            }
            NodeInfo {
                id: topology.ids[shard].clone(),
                ip: addr.ip,
                port: addr.port as u16,
                cport: addr.bus_port as u16,
                flags: flags::MASTER | if shard == me { flags::MYSELF } else { 0 },
                master: None,
                ping_sent: 0,
                pong_received: if shard == me { 0 } else { now },
                config_epoch: nodes::config_epoch(shard),
                connected: true,
                ranges: vec![(first, last)],
                // One process, one replication stream.
                repl_offset: crate::replica::offset().max(0) as u64,
            }
        })
        .collect();
    Snapshot {
        me,
        nodes,
        owner,
        ok: true,
        current_epoch: nodes::current_epoch(shards),
        sent: Default::default(),
        received: Default::default(),
        local: vec![true; shards],
        migrating: Vec::new(),
        importing: Vec::new(),
        links: Vec::new(),
        links_freed_for_buffer: 0,
    }
}

fn help() -> Reply {
    super::help(
        "CLUSTER",
        &[
            "ADDSLOTS <slot> [<slot> ...]",
            "    Assign slots to this node (cluster bus).",
            "ADDSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
            "    Assign slot ranges to this node (cluster bus).",
            "BUMPEPOCH",
            "    Advance the cluster config epoch (cluster bus).",
            "COUNTKEYSINSLOT <slot>",
            "    How many keys of <slot> this node holds.",
            "DELSLOTS <slot> [<slot> ...]",
            "    Unassign slots from this node (cluster bus).",
            "DELSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
            "    Unassign slot ranges from this node (cluster bus).",
            "FAILOVER [FORCE|TAKEOVER]",
            "    Promote this replica to master of its shard (cluster bus).",
            "FORGET <node-id>",
            "    Remove a node from the cluster (cluster bus).",
            "GETKEYSINSLOT <slot> <count>",
            "    Up to <count> key names of <slot> held by this node.",
            "INFO",
            "    The cluster's state, size and epochs.",
            "KEYSLOT <key>",
            "    The hash slot of <key>.",
            "LINKS",
            "    The cluster bus links of this node and their send buffers (none between the nodes of one process).",
            "MEET <ip> <port> [<bus-port>]",
            "    Connect this node to another one (cluster bus).",
            "MYID",
            "    This node's id.",
            "NODES",
            "    Every node, one per line: <id> <ip:port@bus-port> <flags> <primary> <ping-sent>",
            "    <pong-received> <config-epoch> <link-state> <slot-range> ...",
            "REPLICAS <node-id>",
            "    The replicas of a master, as NODES lines (also SLAVES).",
            "REPLICATE <node-id>",
            "    Make this node a replica of a master (cluster bus, a process of one node).",
            "RESET [HARD|SOFT]",
            "    Forget every node and slot; HARD also takes a new id and zeroes the epochs.",
            "SAVECONFIG",
            "    Write the cluster configuration file (cluster bus).",
            "SET-CONFIG-EPOCH <epoch>",
            "    Set this node's config epoch, on a node that knows no other (cluster bus).",
            "SETSLOT <slot> (IMPORTING <node-id>|MIGRATING <node-id>|STABLE|NODE <node-id>)",
            "    Set slot state (cluster bus).",
            "SHARDS",
            "    Every shard: its slot ranges and its nodes.",
            "SLOTS",
            "    Every slot range with its node's address and id.",
        ],
    )
}
