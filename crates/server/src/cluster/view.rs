//! A node's view of the cluster as its clients read it (CLUSTER NODES, SLOTS, SHARDS, INFO,
//! nodes.conf) and as routing uses it (the owner of every slot). Built by the bus thread for
//! a node of a cluster across processes and sent to the node's core as an immutable
//! snapshot; built on demand for the cluster of one process.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use shardis_resp::Reply;

use super::bus::msg::flags;
use crate::coord::route::SLOTS;

/// No node owns the slot.
pub const UNOWNED: u16 = u16::MAX;

#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub id: String,
    pub ip: String,
    pub port: u16,
    pub cport: u16,
    pub flags: u16,
    pub master: Option<String>,
    pub ping_sent: u64,
    pub pong_received: u64,
    pub config_epoch: u64,
    pub connected: bool,
    /// Slot ranges served (masters).
    pub ranges: Vec<(u16, u16)>,
    /// The replication offset it last announced (myself: when the view was taken).
    pub repl_offset: u64,
}

/// One cluster bus link, as CLUSTER LINKS shows it.
#[derive(Clone, Debug)]
pub struct LinkInfo {
    /// The link this node opened to `node` ("to"), or the one it accepted from it ("from").
    pub outbound: bool,
    pub node: String,
    pub create_time: u64,
    /// Connected (an outbound link is not while it connects).
    pub connected: bool,
    /// Its send buffer: bytes queued and not yet written, read when asked.
    pub send_buffer: Arc<AtomicU64>,
}

#[derive(Clone, Debug)]
pub struct Snapshot {
    /// Index of "myself" in `nodes`.
    pub me: usize,
    pub nodes: Vec<NodeInfo>,
    /// Every slot's owner, an index in `nodes`, or [`UNOWNED`].
    pub owner: Vec<u16>,
    pub ok: bool,
    pub current_epoch: u64,
    /// Bus messages sent and received, by type.
    pub sent: [u64; super::bus::msg::TYPES],
    pub received: [u64; super::bus::msg::TYPES],
    /// Which nodes are this process's (the shared port serves their slots).
    pub local: Vec<bool>,
    /// Slots "myself" is moving to another node, and those it is taking from one: (slot,
    /// node index), by slot (CLUSTER SETSLOT MIGRATING / IMPORTING).
    pub migrating: Vec<(u16, u16)>,
    pub importing: Vec<(u16, u16)>,
    /// The node's links to and from the others (none for the nodes of one process).
    pub links: Vec<LinkInfo>,
    /// Links freed for their send buffer (`total_cluster_links_buffer_limit_exceeded`).
    pub links_freed_for_buffer: u64,
}

/// Redis's flag words for a node (`representClusterNodeFlags`).
pub fn flag_words(f: u16) -> String {
    let words = [
        (flags::MYSELF, "myself"),
        (flags::MASTER, "master"),
        (flags::SLAVE, "slave"),
        (flags::PFAIL, "fail?"),
        (flags::FAIL, "fail"),
        (flags::HANDSHAKE, "handshake"),
        (flags::NOADDR, "noaddr"),
        (flags::NOFAILOVER, "nofailover"),
    ];
    let set: Vec<&str> = words
        .iter()
        .filter(|(bit, _)| f & bit != 0)
        .map(|(_, w)| *w)
        .collect();
    if set.is_empty() {
        "noflags".into()
    } else {
        set.join(",")
    }
}

const MESSAGE_TYPES: [&str; super::bus::msg::TYPES] = [
    "ping",
    "pong",
    "meet",
    "fail",
    "publish",
    "auth-req",
    "auth-ack",
    "update",
    "mfstart",
    "module",
    "publishshard",
];

impl Snapshot {
    pub fn myself(&self) -> &NodeInfo {
        &self.nodes[self.me]
    }

    /// The node `slot` is being moved to by "myself", if it is.
    pub fn migrating_to(&self, slot: u16) -> Option<&NodeInfo> {
        Self::open(&self.migrating, slot).and_then(|n| self.nodes.get(n as usize))
    }

    /// Whether "myself" is importing `slot`.
    pub fn importing(&self, slot: u16) -> bool {
        Self::open(&self.importing, slot).is_some()
    }

    fn open(list: &[(u16, u16)], slot: u16) -> Option<u16> {
        list.binary_search_by_key(&slot, |&(s, _)| s)
            .ok()
            .map(|i| list[i].1)
    }

    /// The node owning `slot`, if any.
    pub fn owner_of(&self, slot: u16) -> Option<&NodeInfo> {
        let o = *self.owner.get(slot as usize)?;
        self.nodes.get(o as usize)
    }

    /// One line of CLUSTER NODES / nodes.conf.
    pub fn line(&self, i: usize, myself_flag: bool) -> String {
        let n = &self.nodes[i];
        let mut f = n.flags;
        if !myself_flag {
            f &= !flags::MYSELF;
        }
        let epoch = match n.master.as_ref().filter(|_| n.flags & flags::SLAVE != 0) {
            Some(m) => self
                .nodes
                .iter()
                .find(|x| &x.id == m)
                .map_or(n.config_epoch, |x| x.config_epoch),
            None => n.config_epoch,
        };
        let mut line = format!(
            "{} {}:{}@{} {} {} {} {} {} {}",
            n.id,
            n.ip,
            n.port,
            n.cport,
            flag_words(f),
            n.master.as_deref().unwrap_or("-"),
            n.ping_sent,
            n.pong_received,
            epoch,
            if n.connected {
                "connected"
            } else {
                "disconnected"
            }
        );
        for &(a, b) in &n.ranges {
            if a == b {
                line.push_str(&format!(" {a}"));
            } else {
                line.push_str(&format!(" {a}-{b}"));
            }
        }
        if i == self.me {
            // Only myself's line shows the slots it moves, in slot order (Redis's layout).
            let mut open: Vec<(u16, &str, u16)> = self
                .migrating
                .iter()
                .map(|&(s, n)| (s, "->-", n))
                .chain(
                    self.importing
                        .iter()
                        .filter(|(s, _)| Self::open(&self.migrating, *s).is_none())
                        .map(|&(s, n)| (s, "-<-", n)),
                )
                .collect();
            open.sort_unstable_by_key(|&(s, _, _)| s);
            for (slot, arrow, node) in open {
                if let Some(other) = self.nodes.get(node as usize) {
                    line.push_str(&format!(" [{slot}{arrow}{}]", other.id));
                }
            }
        }
        line
    }

    /// CLUSTER NODES: every node, "myself" flagged.
    pub fn nodes_text(&self) -> String {
        let mut text = String::new();
        for i in 0..self.nodes.len() {
            text.push_str(&self.line(i, true));
            text.push('\n');
        }
        text
    }

    /// The cluster configuration file: the node lines and the epochs.
    pub fn config_text(&self, last_vote_epoch: u64) -> String {
        // Nodes in handshake are not part of the configuration yet.
        let mut text = String::new();
        for (i, n) in self.nodes.iter().enumerate() {
            if n.flags & flags::HANDSHAKE == 0 {
                text.push_str(&self.line(i, true));
                text.push('\n');
            }
        }
        text.push_str(&format!(
            "vars currentEpoch {} lastVoteEpoch {last_vote_epoch}\n",
            self.current_epoch
        ));
        text
    }

    pub fn info(&self) -> Reply {
        let (mut assigned, mut ok, mut pfail, mut fail) = (0, 0, 0, 0);
        for slot in 0..SLOTS {
            if let Some(n) = self.owner_of(slot) {
                assigned += 1;
                if n.flags & flags::FAIL != 0 {
                    fail += 1;
                } else if n.flags & flags::PFAIL != 0 {
                    pfail += 1;
                } else {
                    ok += 1;
                }
            }
        }
        let size = self.nodes.iter().filter(|n| !n.ranges.is_empty()).count();
        let me = self.myself();
        let my_epoch = match me.master.as_ref() {
            Some(m) => self
                .nodes
                .iter()
                .find(|x| &x.id == m)
                .map_or(me.config_epoch, |x| x.config_epoch),
            None => me.config_epoch,
        };
        let mut text = format!(
            "cluster_state:{}\r\ncluster_slots_assigned:{assigned}\r\ncluster_slots_ok:{ok}\r\ncluster_slots_pfail:{pfail}\r\ncluster_slots_fail:{fail}\r\ncluster_known_nodes:{}\r\ncluster_size:{size}\r\ncluster_current_epoch:{}\r\ncluster_my_epoch:{my_epoch}\r\n",
            if self.ok { "ok" } else { "fail" },
            self.nodes.len(),
            self.current_epoch,
        );
        for (dir, counts) in [("sent", &self.sent), ("received", &self.received)] {
            for (name, &n) in MESSAGE_TYPES.iter().zip(counts.iter()) {
                if n != 0 {
                    text.push_str(&format!("cluster_stats_messages_{name}_{dir}:{n}\r\n"));
                }
            }
            text.push_str(&format!(
                "cluster_stats_messages_{dir}:{}\r\n",
                counts.iter().sum::<u64>()
            ));
        }
        text.push_str(&format!(
            "total_cluster_links_buffer_limit_exceeded:{}\r\n",
            self.links_freed_for_buffer
        ));
        Reply::Verbatim(Bytes::from(text))
    }

    /// CLUSTER LINKS: every link, its send buffer as it is now. The buffer is queued
    /// messages, allocated as they are, so what is allocated is what is used.
    pub fn links(&self) -> Reply {
        let field = |name: &str, value: Reply| (Reply::bulk(name.as_bytes()), value);
        let links = self.links.iter().map(|l| {
            let used = l.send_buffer.load(Ordering::Relaxed);
            let events = match (l.connected, used > 0) {
                (false, _) => "w",
                (true, false) => "r",
                (true, true) => "rw",
            };
            let used = Reply::Int(i64::try_from(used).unwrap_or(i64::MAX));
            Reply::Map(vec![
                field(
                    "direction",
                    Reply::bulk(if l.outbound { b"to" } else { b"from" }),
                ),
                field("node", Reply::bulk(l.node.as_bytes())),
                field(
                    "create-time",
                    Reply::Int(i64::try_from(l.create_time).unwrap_or(i64::MAX)),
                ),
                field("events", Reply::bulk(events.as_bytes())),
                field("send-buffer-allocated", used.clone()),
                field("send-buffer-used", used),
            ])
        });
        Reply::Array(links.collect())
    }

    fn endpoint(n: &NodeInfo) -> Reply {
        // A node whose address is not known yet is shown as Redis shows it: "?".
        let ip = if n.ip.is_empty() { "?" } else { &n.ip };
        Reply::bulk(ip.as_bytes())
    }

    pub fn slots(&self) -> Reply {
        let mut out = Vec::new();
        for (i, n) in self.nodes.iter().enumerate() {
            if n.flags & flags::MASTER == 0 {
                continue;
            }
            for &(a, b) in &n.ranges {
                let mut entry = vec![
                    Reply::Int(a.into()),
                    Reply::Int(b.into()),
                    Reply::Array(vec![
                        Self::endpoint(n),
                        Reply::Int(n.port.into()),
                        Reply::bulk(n.id.as_bytes()),
                        // No hostname is announced: no further endpoint.
                        Reply::Map(Vec::new()),
                    ]),
                ];
                for r in self.nodes.iter().filter(|r| {
                    r.master.as_deref() == Some(&self.nodes[i].id) && r.flags & flags::FAIL == 0
                }) {
                    entry.push(Reply::Array(vec![
                        Self::endpoint(r),
                        Reply::Int(r.port.into()),
                        Reply::bulk(r.id.as_bytes()),
                        Reply::Map(Vec::new()),
                    ]));
                }
                out.push(Reply::Array(entry));
            }
        }
        Reply::Array(out)
    }

    /// CLUSTER SHARDS; `my_offset` is this process's replication offset now (the others'
    /// are those their last messages announced).
    pub fn shards(&self, my_offset: u64) -> Reply {
        let text = |s: &str| Reply::bulk(s.as_bytes());
        let node = |n: &NodeInfo| {
            let replica = n.flags & flags::SLAVE != 0;
            let role = if replica { "replica" } else { "master" };
            let offset = if n.flags & flags::MYSELF != 0 {
                my_offset
            } else {
                n.repl_offset
            };
            // A replica that announces no offset yet has not loaded its master's data.
            let health = if n.flags & flags::FAIL != 0 {
                "fail"
            } else if replica && offset == 0 {
                "loading"
            } else {
                "online"
            };
            Reply::Map(vec![
                (text("id"), text(&n.id)),
                (text("port"), Reply::Int(n.port.into())),
                (text("ip"), text(&n.ip)),
                (
                    text("endpoint"),
                    text(if n.ip.is_empty() { "?" } else { &n.ip }),
                ),
                (text("role"), text(role)),
                (
                    text("replication-offset"),
                    Reply::Int(i64::try_from(offset).unwrap_or(i64::MAX)),
                ),
                (text("health"), text(health)),
            ])
        };
        let mut out = Vec::new();
        for m in self.nodes.iter().filter(|n| n.flags & flags::SLAVE == 0) {
            let slots = m
                .ranges
                .iter()
                .flat_map(|&(a, b)| [Reply::Int(a.into()), Reply::Int(b.into())])
                .collect();
            let mut members = vec![node(m)];
            members.extend(
                self.nodes
                    .iter()
                    .filter(|r| r.master.as_deref() == Some(&m.id))
                    .map(node),
            );
            out.push(Reply::Map(vec![
                (text("slots"), Reply::Array(slots)),
                (text("nodes"), Reply::Array(members)),
            ]));
        }
        Reply::Array(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_read_as_redis_writes_them() {
        assert_eq!(flag_words(flags::MYSELF | flags::MASTER), "myself,master");
        assert_eq!(flag_words(flags::MASTER | flags::PFAIL), "master,fail?");
        assert_eq!(flag_words(0), "noflags");
    }
}
