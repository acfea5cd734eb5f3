//! CLUSTER INFO, MYID, NODES, SLOTS, SHARDS, KEYSLOT, COUNTKEYSINSLOT, GETKEYSINSLOT, LINKS,
//! HELP, and ASKING, READONLY, READWRITE: the cluster of one process (`crate::cluster`) as its nodes describe it. The node
//! a client talks to ("myself") is its connection's core: on a node's own port, that node.

use bytes::Bytes;
use shardis_engine::{error, num, ServerCmd};
use shardis_resp::Reply;

use crate::cluster::{self, nodes, slot_range, NodeAddr, Topology};
use crate::conn::session::Session;
use crate::coord::route;

const DISABLED: &str = "ERR This instance has cluster support disabled";

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
            | ServerCmd::ClusterHelp
            | ServerCmd::Asking
            | ServerCmd::ReadOnly
            | ServerCmd::ReadWrite
    );
    if !cluster_cmd {
        return None;
    }
    let Some(topology) = cluster::topology() else {
        return Some(Reply::err(DISABLED));
    };
    let view = View::of(s, topology);
    Some(match which {
        ServerCmd::ClusterInfo => view.info(),
        ServerCmd::ClusterMyId => Reply::bulk(topology.ids[view.me].as_bytes()),
        ServerCmd::ClusterNodes => view.nodes(),
        ServerCmd::ClusterSlots => view.slots(),
        ServerCmd::ClusterShards => view.shards(),
        ServerCmd::ClusterKeySlot => Reply::Int(i64::from(route::key_slot(&args[2]))),
        // Links are those of the cluster bus: the nodes of one process have none.
        ServerCmd::ClusterLinks => Reply::Array(Vec::new()),
        ServerCmd::ClusterHelp => help(),
        // No slot is ever being imported here: ASKING changes nothing a command sees.
        ServerCmd::Asking => Reply::Ok,
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

/// COUNTKEYSINSLOT and GETKEYSINSLOT: read from the database 0 of the shard owning the slot
/// (a node's own client of another node's slot gets what that node holds of it: nothing).
pub async fn run_async(s: &mut Session, which: ServerCmd, args: &[Bytes]) -> Option<Reply> {
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
    let owner = route::shard_of_slot(slot, s.core.shards);
    if s.client.borrow().node && owner != s.core.id {
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

/// The cluster as the asking client's node sees it.
struct View<'a> {
    topology: &'a Topology,
    me: usize,
    shards: usize,
    addrs: Vec<NodeAddr>,
}

impl View<'_> {
    fn of<'a>(s: &Session, topology: &'a Topology) -> View<'a> {
        let local = s.client.borrow().laddr.clone();
        let config = s.core.config.borrow();
        let shards = s.core.shards;
        View {
            topology,
            me: s.core.id,
            shards,
            addrs: (0..shards)
                .map(|shard| NodeAddr::of(&config, shard, cluster::ip_of(&local)))
                .collect(),
        }
    }

    fn info(&self) -> Reply {
        let n = self.shards;
        Reply::Verbatim(Bytes::from(format!(
            "cluster_state:ok\r\ncluster_slots_assigned:{slots}\r\ncluster_slots_ok:{slots}\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:0\r\ncluster_known_nodes:{n}\r\ncluster_size:{n}\r\ncluster_current_epoch:{}\r\ncluster_my_epoch:{}\r\ncluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\ntotal_cluster_links_buffer_limit_exceeded:0\r\n",
            nodes::current_epoch(n),
            nodes::config_epoch(self.me),
            slots = route::SLOTS,
        )))
    }

    fn nodes(&self) -> Reply {
        let now = crate::core::wall_ms();
        let mut text = String::new();
        for (shard, addr) in self.addrs.iter().enumerate() {
            let id = &self.topology.ids[shard];
            text.push_str(&nodes::line(
                id,
                addr,
                shard,
                self.shards,
                shard == self.me,
                now,
            ));
            text.push('\n');
        }
        Reply::Verbatim(Bytes::from(text))
    }

    fn slots(&self) -> Reply {
        Reply::Array(
            self.addrs
                .iter()
                .enumerate()
                .map(|(shard, addr)| {
                    let (first, last) = slot_range(shard, self.shards);
                    Reply::Array(vec![
                        Reply::Int(first.into()),
                        Reply::Int(last.into()),
                        Reply::Array(vec![
                            Reply::bulk(addr.ip.as_bytes()),
                            Reply::Int(addr.port.into()),
                            Reply::bulk(self.topology.ids[shard].as_bytes()),
                            // No hostname is announced: no further endpoint.
                            Reply::Map(Vec::new()),
                        ]),
                    ])
                })
                .collect(),
        )
    }

    fn shards(&self) -> Reply {
        let text = |s: &str| Reply::bulk(s.as_bytes());
        Reply::Array(
            self.addrs
                .iter()
                .enumerate()
                .map(|(shard, addr)| {
                    let (first, last) = slot_range(shard, self.shards);
                    let node = Reply::Map(vec![
                        (text("id"), text(&self.topology.ids[shard])),
                        (text("port"), Reply::Int(addr.port.into())),
                        (text("ip"), text(&addr.ip)),
                        (text("endpoint"), text(&addr.ip)),
                        (text("role"), text("master")),
                        // No replica follows a node's own stream.
                        (text("replication-offset"), Reply::Int(0)),
                        (text("health"), text("online")),
                    ]);
                    Reply::Map(vec![
                        (
                            text("slots"),
                            Reply::Array(vec![Reply::Int(first.into()), Reply::Int(last.into())]),
                        ),
                        (text("nodes"), Reply::Array(vec![node])),
                    ])
                })
                .collect(),
        )
    }
}

fn help() -> Reply {
    super::help(
        "CLUSTER",
        &[
            "INFO",
            "    The cluster's state, size and epochs.",
            "COUNTKEYSINSLOT <slot>",
            "    How many keys of <slot> this node holds.",
            "GETKEYSINSLOT <slot> <count>",
            "    Up to <count> key names of <slot> held by this node.",
            "KEYSLOT <key>",
            "    The hash slot of <key>.",
            "LINKS",
            "    The cluster bus links of this node (none: the nodes are cores of one process).",
            "MYID",
            "    This node's id.",
            "NODES",
            "    Every node, one per line: <id> <ip:port@bus-port> <flags> <primary> <ping-sent>",
            "    <pong-received> <config-epoch> <link-state> <slot-range> ...",
            "SHARDS",
            "    Every shard: its slot ranges and its nodes.",
            "SLOTS",
            "    Every slot range with its node's address and id.",
        ],
    )
}
