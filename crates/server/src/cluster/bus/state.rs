//! One cluster node's view of the cluster and what it does on the bus, as a Redis 7.0 node:
//! the known nodes and their flags, the slot table, the epochs, the handshake of a MEET,
//! PING/PONG with gossip, failure detection (PFAIL after `cluster-node-timeout` without a
//! PONG, FAIL on a majority of masters' reports, broadcast), the slot map's convergence by
//! config epoch (with UPDATE for a node claiming slots it lost), and the cluster state.
//!
//! Pure: time comes in as an argument and what must go on the wire comes out as [`Io`]; the
//! bus thread (`super::thread`) does the sockets. Unit-tested by wiring states together.

use std::collections::{BTreeMap, HashMap};

use super::msg::{self, flags, Body, Gossip, Header, Message, Name, Slots, NAME_LEN};

mod failover;
mod setslot;
mod slots;

pub use failover::{Ha, Runtime};
pub use setslot::SetSlot;
pub use slots::SlotTable;

pub const SLOTS: usize = 16384;
/// A forgotten node is not re-added from gossip for this long (`CLUSTER_BLACKLIST_TTL`).
const BLACKLIST_MS: u64 = 60_000;
/// The most nodes one node knows. Redis has no such limit, but every node known costs a
/// link, its threads and a connection attempt per tick while unreachable: without it one
/// PING gossiping 65535 made-up names (or a flood of MEETs) would make this node try to
/// reach them all. Four times Redis's advised largest cluster (1000 nodes); a node learns
/// no new node past it (CLUSTER MEET still may).
pub const MAX_NODES: usize = 4096;
/// Connections a node starts per tick at most: each is a thread while it connects, and
/// nodes that refuse at once are tried again every tick (64 is every node of a cluster of
/// Redis's advised largest size within two seconds).
const CONNECTS_PER_TICK: usize = 64;
/// How often the bus thread runs a node's cron (`bus::TICK`), in milliseconds.
const CRON_MS: u64 = 100;

pub type LinkId = u64;

/// What the node knows of one node (itself included).
#[derive(Clone, Debug)]
pub struct Node {
    pub name: Name,
    pub flags: u16,
    pub config_epoch: u64,
    pub ip: String,
    pub port: u16,
    pub pport: u16,
    pub cport: u16,
    pub slaveof: Option<Name>,
    pub ctime: u64,
    pub ping_sent: u64,
    pub pong_received: u64,
    pub data_received: u64,
    pub fail_time: u64,
    /// The link this node opened to it, and the one it accepted from it.
    pub link: Option<LinkId>,
    pub inbound: Option<LinkId>,
    /// Masters that reported it PFAIL/FAIL, with when.
    pub fail_reports: Vec<(Name, u64)>,
    /// The replication offset its last message announced.
    pub repl_offset: u64,
    /// When this node (a master) last had our vote for one of its replicas.
    pub voted_time: u64,
}

impl Node {
    fn new(name: Name, flags: u16, now: u64) -> Node {
        Node {
            name,
            flags,
            config_epoch: 0,
            ip: String::new(),
            port: 0,
            pport: 0,
            cport: 0,
            slaveof: None,
            ctime: now,
            ping_sent: 0,
            pong_received: 0,
            data_received: 0,
            fail_time: 0,
            link: None,
            inbound: None,
            fail_reports: Vec::new(),
            repl_offset: 0,
            voted_time: 0,
        }
    }

    fn is(&self, f: u16) -> bool {
        self.flags & f != 0
    }
}

struct Link {
    node: Option<Name>,
    inbound: bool,
    ctime: u64,
    /// The address of the other end, and of ours (for a MEET: our own address).
    peer_ip: String,
    local_ip: String,
    /// Connected (an outbound link is not until `connected`).
    up: bool,
}

/// A link attached to a node, as CLUSTER LINKS describes it.
pub struct LinkDescription {
    pub id: LinkId,
    pub node: Name,
    pub outbound: bool,
    pub ctime: u64,
    pub up: bool,
}

/// What the bus thread must do on the sockets.
#[derive(Debug, PartialEq)]
pub enum Io {
    Send(LinkId, Vec<u8>),
    /// Open link `link` to a node's bus port; `connected` or `closed` follows.
    Connect {
        link: LinkId,
        ip: String,
        port: u16,
    },
    Close(LinkId),
}

/// Where this node is announced.
#[derive(Clone, Debug)]
pub struct Announce {
    pub port: u16,
    pub cport: u16,
    /// The TLS port for clients (`pport`), 0 for none.
    pub pport: u16,
    /// `cluster-announce-ip`; empty: learned from the first MEET received.
    pub ip: String,
}

pub struct State {
    pub myself: Name,
    pub nodes: BTreeMap<Name, Node>,
    /// The owner of every slot.
    pub slots: SlotTable,
    /// Slots whose owner stopped claiming them (Redis's `owner_not_claiming_slot`).
    not_claiming: Vec<bool>,
    /// Slots this node moves to another node, and those it takes from one (`setslot`).
    pub migrating: BTreeMap<u16, Name>,
    pub importing: BTreeMap<u16, Name>,
    pub current_epoch: u64,
    pub last_vote_epoch: u64,
    pub ok: bool,
    pub node_timeout: u64,
    pub announce: Announce,
    pub sent: [u64; msg::TYPES],
    pub received: [u64; msg::TYPES],
    /// Links the bus thread freed for their send buffer (`cluster-link-sendbuf-limit`).
    pub links_freed_for_buffer: u64,
    blacklist: HashMap<Name, u64>,
    links: HashMap<LinkId, Link>,
    next_link: LinkId,
    /// Where the next tick's connections start: the first node the last tick's limit left
    /// waiting, so that every node gets its turn.
    connect_from: Name,
    iteration: u64,
    rng: u64,
    /// Output for the sockets, taken by the bus thread.
    pub io: Vec<Io>,
    /// The configuration changed: save it (`cluster-config-file`).
    pub save: bool,
    /// Something a client sees changed: publish a new snapshot.
    pub changed: bool,
    /// Replicas, elections and manual failovers (`failover`).
    pub ha: Ha,
    /// PUBLISH (false) and PUBLISHSHARD (true) messages received, channel and message, for
    /// the bus thread to hand to the process's subscribers.
    pub published: Vec<(bool, Vec<u8>, Vec<u8>)>,
    /// Nodes whose link DEBUG CLUSTERLINK KILL freed, with when: the cron connects again
    /// from the next tick on, as Redis's does (what is sent meanwhile is lost, as there).
    relink_after: HashMap<Name, u64>,
}

/// A new random node name.
pub fn random_name() -> Name {
    let id = crate::replica::random_id();
    let mut n = [b'0'; NAME_LEN];
    let len = id.len().min(NAME_LEN);
    n[..len].copy_from_slice(&id.as_bytes()[..len]);
    n
}

pub fn name_str(n: &Name) -> String {
    String::from_utf8_lossy(n).into_owned()
}

impl State {
    pub fn new(myself: Name, announce: Announce, node_timeout: u64, now: u64) -> State {
        let mut me = Node::new(myself, flags::MYSELF | flags::MASTER, now);
        me.ip = announce.ip.clone();
        me.port = announce.port;
        me.cport = announce.cport;
        me.pport = announce.pport;
        let mut nodes = BTreeMap::new();
        nodes.insert(myself, me);
        State {
            myself,
            nodes,
            slots: SlotTable::default(),
            not_claiming: vec![false; SLOTS],
            migrating: BTreeMap::new(),
            importing: BTreeMap::new(),
            current_epoch: 0,
            last_vote_epoch: 0,
            ok: false,
            node_timeout: node_timeout.max(1),
            announce,
            sent: [0; msg::TYPES],
            received: [0; msg::TYPES],
            links_freed_for_buffer: 0,
            published: Vec::new(),
            relink_after: HashMap::new(),
            blacklist: HashMap::new(),
            links: HashMap::new(),
            next_link: 1,
            connect_from: [0; NAME_LEN],
            iteration: 0,
            rng: now ^ 0x9e37_79b9_7f4a_7c15,
            io: Vec::new(),
            save: true,
            changed: true,
            ha: Ha::default(),
        }
    }

    fn touch(&mut self) {
        self.save = true;
        self.changed = true;
    }

    /// This node's entry. Always present: `del_node` and `rename` refuse to remove it and
    /// a message naming it as its sender is treated as from an unknown node; the Option
    /// keeps even a broken invariant from panicking.
    fn me(&self) -> Option<&Node> {
        self.nodes.get(&self.myself)
    }

    fn me_mut(&mut self) -> Option<&mut Node> {
        self.nodes.get_mut(&self.myself)
    }

    fn me_is(&self, f: u16) -> bool {
        self.me().is_some_and(|n| n.is(f))
    }

    fn my_config_epoch(&self) -> u64 {
        self.me().map_or(0, |n| n.config_epoch)
    }

    fn set_my_config_epoch(&mut self, epoch: u64) {
        if let Some(me) = self.me_mut() {
            me.config_epoch = epoch;
        }
    }

    /// The master this node replicates, if it is a replica.
    pub fn my_master(&self) -> Option<Name> {
        self.me()
            .filter(|n| n.is(flags::SLAVE))
            .and_then(|n| n.slaveof)
    }

    pub fn slots_of(&self, name: &Name) -> Box<Slots> {
        self.slots.bitmap(name)
    }

    pub fn numslots(&self, name: &Name) -> usize {
        self.slots.count(name)
    }

    /// Masters serving at least one slot (Redis's `cluster->size`).
    pub fn size(&self) -> usize {
        self.slots.owner_count()
    }

    fn random(&mut self) -> u64 {
        // xorshift64: gossip picks need no more.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    // ---- links ----

    /// The bus thread accepted a connection on this node's bus port.
    pub fn accepted(&mut self, now: u64, peer_ip: String, local_ip: String) -> LinkId {
        let id = self.new_link_id();
        self.links.insert(
            id,
            Link {
                node: None,
                inbound: true,
                ctime: now,
                peer_ip,
                local_ip,
                up: true,
            },
        );
        id
    }

    fn new_link_id(&mut self) -> LinkId {
        let id = self.next_link;
        self.next_link += 1;
        id
    }

    /// The links of every other node, its outbound one first (Redis lists only links
    /// attached to a node).
    pub fn described_links(&self) -> Vec<LinkDescription> {
        let mut out = Vec::new();
        for n in self.nodes.values().filter(|n| n.name != self.myself) {
            for (id, outbound) in [(n.link, true), (n.inbound, false)] {
                let Some((id, l)) = id.and_then(|id| Some((id, self.links.get(&id)?))) else {
                    continue;
                };
                out.push(LinkDescription {
                    id,
                    node: n.name,
                    outbound,
                    ctime: l.ctime,
                    up: l.up,
                });
            }
        }
        out
    }

    /// How many links this node accepted and has not closed.
    pub fn inbound_links(&self) -> usize {
        self.links.values().filter(|l| l.inbound).count()
    }

    /// Outbound link `link` is connected: it starts with a MEET or a PING.
    pub fn connected(&mut self, link: LinkId, now: u64, peer_ip: String, local_ip: String) {
        let Some(l) = self.links.get_mut(&link) else {
            return;
        };
        l.peer_ip = peer_ip;
        l.local_ip = local_ip;
        l.up = true;
        self.changed = true;
        let Some(name) = l.node else { return };
        let Some(node) = self.nodes.get(&name) else {
            return;
        };
        let old_ping = node.ping_sent;
        let kind = if node.is(flags::MEET) {
            msg::MEET
        } else {
            msg::PING
        };
        self.send_ping(link, kind, now);
        if let Some(node) = self.nodes.get_mut(&name) {
            if old_ping != 0 {
                node.ping_sent = old_ping;
            }
            node.flags &= !flags::MEET;
        }
    }

    /// Link `link` is gone (closed by the other end, an error, or `Io::Close`).
    pub fn closed(&mut self, link: LinkId) {
        let Some(l) = self.links.remove(&link) else {
            return;
        };
        // CLUSTER LINKS (and NODES' link state) reads the view: publish it without waiting
        // for the once-a-second refresh, so a client waiting for the links to come back sees
        // them come back, not a copy from before they went.
        self.changed = true;
        if let Some(node) = l.node.and_then(|n| self.nodes.get_mut(&n)) {
            if node.link == Some(link) {
                node.link = None;
            }
            if node.inbound == Some(link) {
                node.inbound = None;
            }
        }
    }

    fn close(&mut self, link: LinkId) {
        if self.links.contains_key(&link) {
            self.closed(link);
            self.io.push(Io::Close(link));
        }
    }

    /// The node's outbound link (connected or connecting).
    pub fn link_of(&self, name: &Name) -> Option<LinkId> {
        self.nodes.get(name).and_then(|n| n.link)
    }

    /// Whether the node's outbound link is connected (CLUSTER NODES' link state).
    pub fn link_up(&self, name: &Name) -> bool {
        self.link_of(name)
            .and_then(|l| self.links.get(&l))
            .is_some_and(|l| l.up)
    }

    // ---- sending ----

    /// A message's header. A replica announces its master's slots and config epoch, as
    /// Redis's `clusterBuildMessageHdr` (what its election claims).
    fn header(&self, kind: u16) -> Header {
        let master = self
            .my_master()
            .filter(|m| self.nodes.contains_key(m))
            .unwrap_or(self.myself);
        Header {
            kind,
            port: self.announce.port,
            current_epoch: self.current_epoch,
            config_epoch: self.nodes.get(&master).map_or(0, |n| n.config_epoch),
            offset: self.ha.announced_offset(),
            sender: self.myself,
            slots: self.slots_of(&master),
            slaveof: self.my_master().unwrap_or([0; NAME_LEN]),
            myip: self.announce.ip.clone(),
            pport: self.announce.pport,
            cport: self.announce.cport,
            flags: self.me().map_or(0, |n| n.flags),
            state: if self.ok { 0 } else { 1 },
            mflags: self.ha.mflags(self.me_is(flags::MASTER)),
        }
    }

    fn push(&mut self, link: LinkId, kind: u16, body: Body) {
        let bytes = msg::encode(&self.header(kind), &body);
        if let Some(n) = self.sent.get_mut(kind as usize) {
            *n += 1;
        }
        self.io.push(Io::Send(link, bytes));
    }

    fn gossip_entry(n: &Node) -> Gossip {
        Gossip {
            name: n.name,
            ping_sent: (n.ping_sent / 1000) as u32,
            pong_received: (n.pong_received / 1000) as u32,
            ip: n.ip.clone(),
            port: n.port,
            cport: n.cport,
            flags: n.flags,
            pport: n.pport,
        }
    }

    /// PING, PONG or MEET on `link`, with gossip about a tenth of the nodes (at least 3)
    /// and every node in PFAIL.
    fn send_ping(&mut self, link: LinkId, kind: u16, now: u64) {
        let Some(l) = self.links.get(&link) else {
            return;
        };
        if !l.inbound && kind == msg::PING {
            if let Some(n) = l.node.and_then(|n| self.nodes.get_mut(&n)) {
                n.ping_sent = now;
            }
        }
        let fresh = self.nodes.len().saturating_sub(2);
        let wanted = (self.nodes.len() / 10).max(3).min(fresh);
        let mut candidates: Vec<&Node> = self
            .nodes
            .values()
            .filter(|n| {
                n.name != self.myself
                    && !n.is(flags::PFAIL | flags::HANDSHAKE | flags::NOADDR)
                    && (n.link.is_some() || self.slots.count(&n.name) > 0)
            })
            .collect();
        let mut picked = Vec::with_capacity(wanted);
        let mut seed = self.rng;
        while picked.len() < wanted && !candidates.is_empty() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let i = (seed % candidates.len() as u64) as usize;
            picked.push(Self::gossip_entry(candidates.swap_remove(i)));
        }
        picked.extend(
            self.nodes
                .values()
                .filter(|n| n.is(flags::PFAIL) && !n.is(flags::HANDSHAKE | flags::NOADDR))
                .map(Self::gossip_entry),
        );
        self.rng = seed;
        self.push(link, kind, Body::Ping(picked));
    }

    /// Carries a client's PUBLISH to every node with a link (a sharded one, `shard`, to the
    /// nodes of this node's shard: its master and that master's replicas, or its own
    /// replicas), as Redis's `clusterPropagatePublish` does; never to the nodes in `skip`
    /// (the other nodes of this process, whose clients the publishing core reached already).
    pub fn publish(&mut self, shard: bool, channel: &[u8], message: &[u8], skip: &[Name]) {
        // A Shardis node closes a link that announces more than this; Redis's nodes would
        // take it, but a message this size cannot reach every node alike.
        if msg::HEADER_LEN + 8 + channel.len() + message.len() > msg::MAX_LEN {
            tracing::warn!(
                "cluster bus: a PUBLISH of {} bytes is not carried to the other nodes",
                message.len()
            );
            return;
        }
        let master = self.my_master().unwrap_or(self.myself);
        let links: Vec<LinkId> = self
            .nodes
            .values()
            .filter(|n| n.name != self.myself && !n.is(flags::HANDSHAKE) && !skip.contains(&n.name))
            .filter(|n| !shard || n.name == master || n.slaveof == Some(master))
            .filter_map(|n| n.link)
            .collect();
        let (kind, body) = (
            if shard {
                msg::PUBLISHSHARD
            } else {
                msg::PUBLISH
            },
            Body::Publish {
                channel: channel.to_vec(),
                message: message.to_vec(),
            },
        );
        for l in links {
            self.push(l, kind, body.clone());
        }
    }

    /// FAIL about `about` to every node with a link.
    fn broadcast_fail(&mut self, about: Name) {
        let links: Vec<LinkId> = self
            .nodes
            .values()
            .filter(|n| n.name != self.myself && !n.is(flags::HANDSHAKE))
            .filter_map(|n| n.link)
            .collect();
        for l in links {
            self.push(l, msg::FAIL, Body::Fail(about));
        }
    }

    fn send_update(&mut self, link: Option<LinkId>, about: Name) {
        let (Some(link), Some(n)) = (link, self.nodes.get(&about)) else {
            return;
        };
        let body = Body::Update {
            config_epoch: n.config_epoch,
            name: about,
            slots: self.slots_of(&about),
        };
        self.push(link, msg::UPDATE, body);
    }

    // ---- receiving ----

    /// One whole message received on `link`.
    pub fn received(&mut self, link: LinkId, bytes: &[u8], now: u64) {
        let Ok(m) = msg::decode(bytes) else {
            return;
        };
        if let Some(n) = self.received.get_mut(m.header.kind as usize) {
            *n += 1;
        }
        self.process(link, m, now);
    }

    fn in_handshake(&self, name: &Name) -> bool {
        self.nodes.get(name).is_some_and(|n| n.is(flags::HANDSHAKE))
    }

    fn process(&mut self, link: LinkId, m: Message, now: u64) {
        let Some(l) = self.links.get(&link) else {
            return;
        };
        let (link_node, inbound) = (l.node, l.inbound);
        let h = &m.header;
        let sender = match link_node {
            Some(n) if !self.in_handshake(&n) => Some(n),
            _ => {
                // A message signed with our own name is no known node's: taking it as ours
                // would let any peer move this node's address (or rename a node over it).
                let found = (h.sender != self.myself && self.nodes.contains_key(&h.sender))
                    .then_some(h.sender);
                if let (Some(s), None) = (found, link_node) {
                    self.attach_inbound(s, link);
                }
                found
            }
        };
        let mut sender_config_epoch = 0;
        if let Some(s) = sender {
            let handshake = self.in_handshake(&s);
            if let Some(n) = self.nodes.get_mut(&s) {
                n.data_received = now;
            }
            if !handshake {
                sender_config_epoch = h.config_epoch;
                if h.current_epoch > self.current_epoch {
                    self.current_epoch = h.current_epoch;
                    self.touch();
                }
                if let Some(n) = self.nodes.get_mut(&s) {
                    if h.config_epoch > n.config_epoch {
                        n.config_epoch = h.config_epoch;
                        self.save = true;
                        self.changed = true;
                    }
                }
                self.offset_seen(s, h);
            }
        }
        let kind = h.kind;
        if kind == msg::PING || kind == msg::MEET {
            let local_ip = self.links.get(&link).map(|l| l.local_ip.clone());
            let my_ip = self.me().map(|n| n.ip.clone()).unwrap_or_default();
            if (kind == msg::MEET || my_ip.is_empty()) && self.announce.ip.is_empty() {
                if let Some(ip) = local_ip.filter(|ip| !ip.is_empty() && *ip != my_ip) {
                    if let Some(me) = self.me_mut() {
                        me.ip = ip;
                    }
                    self.touch();
                }
            }
            if sender.is_none() && kind == msg::MEET && self.nodes.len() < MAX_NODES {
                let mut node = Node::new(random_name(), flags::HANDSHAKE, now);
                node.ip = self.ip_of(link, h);
                node.port = h.port;
                node.pport = h.pport;
                node.cport = h.cport;
                self.nodes.insert(node.name, node);
                self.touch();
                if let Body::Ping(g) = &m.body {
                    self.process_gossip(None, g, now);
                }
            }
            self.send_ping(link, msg::PONG, now);
        }
        match (&m.body, kind) {
            (Body::Ping(gossip), msg::PING | msg::PONG | msg::MEET) => {
                if !inbound {
                    let Some(ln) = link_node else { return };
                    if self.in_handshake(&ln) {
                        if let Some(s) = sender {
                            self.update_address(s, link, h);
                            self.del_node(ln);
                            return;
                        }
                        if h.sender == self.myself {
                            // We met ourselves (our own address): forget the handshake.
                            self.del_node(ln);
                            return;
                        }
                        self.rename(ln, h.sender);
                        if let Some(n) = self.nodes.get_mut(&h.sender) {
                            n.flags &= !flags::HANDSHAKE;
                            n.flags |= h.flags & (flags::MASTER | flags::SLAVE);
                        }
                        self.touch();
                    } else if ln != h.sender {
                        // A PONG from another node than the one expected there.
                        if let Some(n) = self.nodes.get_mut(&ln) {
                            n.flags |= flags::NOADDR;
                            n.ip.clear();
                            n.port = 0;
                            n.pport = 0;
                            n.cport = 0;
                        }
                        self.close(link);
                        self.touch();
                        return;
                    }
                }
                if let Some(n) = sender.and_then(|s| self.nodes.get_mut(&s)) {
                    n.flags = (n.flags & !flags::NOFAILOVER) | (h.flags & flags::NOFAILOVER);
                }
                if let Some(s) = sender {
                    if kind == msg::PING
                        && !self.in_handshake(&s)
                        && self.update_address(s, link, h)
                    {
                        self.touch();
                    }
                }
                if !inbound && kind == msg::PONG {
                    if let Some(name) = self.links.get(&link).and_then(|l| l.node) {
                        self.pong_from(name, now);
                    }
                }
                if let Some(s) = sender {
                    self.role_of(s, &h.slaveof);
                }
                let Some(s) = sender else { return };
                let Some(sn) = self.nodes.get(&s) else { return };
                let sender_is_master = sn.is(flags::MASTER);
                let master = if sender_is_master {
                    Some(s)
                } else {
                    sn.slaveof
                };
                let dirty = master.is_some_and(|m| !self.slots.same_as(&m, &h.slots));
                if sender_is_master && dirty {
                    self.update_slots_with(s, sender_config_epoch, &h.slots);
                }
                if dirty {
                    // The sender claims slots a node with a newer config serves: tell it.
                    for j in 0..SLOTS {
                        if !msg::has_slot(&h.slots, j) {
                            continue;
                        }
                        let Some(owner) = self.slots.get(j) else {
                            continue;
                        };
                        if owner == s || self.not_claiming[j] {
                            continue;
                        }
                        if self.nodes.get(&owner).map_or(0, |o| o.config_epoch)
                            > sender_config_epoch
                        {
                            let to = self.link_of(&s);
                            self.send_update(to, owner);
                            break;
                        }
                    }
                }
                if self.me_is(flags::MASTER)
                    && sender_is_master
                    && sender_config_epoch == self.my_config_epoch()
                {
                    self.config_epoch_collision(s);
                }
                self.process_gossip(Some(s), gossip, now);
            }
            (Body::Fail(about), _) => {
                if sender.is_none() {
                    return;
                }
                if let Some(n) = self.nodes.get_mut(about) {
                    if !n.is(flags::FAIL | flags::MYSELF) {
                        n.flags = (n.flags | flags::FAIL) & !flags::PFAIL;
                        n.fail_time = now;
                        self.touch();
                        self.update_state();
                    }
                }
            }
            // As Redis, only from a node it knows.
            (Body::Publish { channel, message }, kind) if sender.is_some() => {
                let shard = kind == msg::PUBLISHSHARD;
                self.published
                    .push((shard, channel.clone(), message.clone()));
            }
            (Body::Other, msg::FAILOVER_AUTH_REQUEST | msg::FAILOVER_AUTH_ACK | msg::MFSTART) => {
                if let Some(s) = sender {
                    self.failover_message(s, link, h, now);
                }
            }
            (
                Body::Update {
                    config_epoch,
                    name,
                    slots,
                },
                _,
            ) => {
                if sender.is_none() {
                    return;
                }
                let Some(n) = self.nodes.get(name) else {
                    return;
                };
                if n.config_epoch >= *config_epoch {
                    return;
                }
                self.set_master(*name);
                if let Some(n) = self.nodes.get_mut(name) {
                    n.config_epoch = *config_epoch;
                }
                self.touch();
                self.update_slots_with(*name, *config_epoch, slots);
            }
            _ => {}
        }
    }

    fn attach_inbound(&mut self, name: Name, link: LinkId) {
        let old = self.nodes.get(&name).and_then(|n| n.inbound);
        if old == Some(link) {
            return;
        }
        if let Some(old) = old {
            self.close(old);
        }
        if let Some(n) = self.nodes.get_mut(&name) {
            n.inbound = Some(link);
        }
        if let Some(l) = self.links.get_mut(&link) {
            l.node = Some(name);
            self.changed = true;
        }
    }

    /// The address a message's sender is at: what it announces, else where its link comes
    /// from.
    fn ip_of(&self, link: LinkId, h: &Header) -> String {
        if !h.myip.is_empty() {
            return h.myip.clone();
        }
        self.links
            .get(&link)
            .map(|l| l.peer_ip.clone())
            .unwrap_or_default()
    }

    /// Takes the address `h` announces for `name` (seen on `link`); true if it changed.
    fn update_address(&mut self, name: Name, link: LinkId, h: &Header) -> bool {
        let ip = self.ip_of(link, h);
        let Some(n) = self.nodes.get_mut(&name) else {
            return false;
        };
        if n.link == Some(link) || (n.ip == ip && n.port == h.port && n.cport == h.cport) {
            return false;
        }
        n.ip = ip;
        n.port = h.port;
        n.pport = h.pport;
        n.cport = h.cport;
        n.flags &= !flags::NOADDR;
        if let Some(old) = n.link {
            self.close(old);
        }
        true
    }

    fn pong_from(&mut self, name: Name, now: u64) {
        let timeout = self.node_timeout;
        let numslots = self.numslots(&name);
        let Some(n) = self.nodes.get_mut(&name) else {
            return;
        };
        n.pong_received = now;
        n.ping_sent = 0;
        if n.is(flags::PFAIL) {
            n.flags &= !flags::PFAIL;
        } else if n.is(flags::FAIL)
            && (n.is(flags::SLAVE)
                || numslots == 0
                || now.saturating_sub(n.fail_time) > timeout * 2)
        {
            n.flags &= !flags::FAIL;
        } else {
            return;
        }
        self.touch();
        self.update_state();
    }

    fn set_master(&mut self, name: Name) {
        if let Some(n) = self.nodes.get_mut(&name) {
            if n.is(flags::MASTER) && n.slaveof.is_none() {
                return;
            }
            n.flags = (n.flags & !flags::SLAVE) | flags::MASTER;
            n.slaveof = None;
            self.touch();
        }
    }

    fn role_of(&mut self, name: Name, slaveof: &Name) {
        if slaveof.iter().all(|&b| b == 0) {
            self.set_master(name);
            return;
        }
        let was_master = self.nodes.get(&name).is_some_and(|n| n.is(flags::MASTER));
        if was_master {
            self.slots.clear(&name);
        }
        let known = self.nodes.contains_key(slaveof);
        if let Some(n) = self.nodes.get_mut(&name) {
            n.flags = (n.flags & !flags::MASTER) | flags::SLAVE;
            if known {
                n.slaveof = Some(*slaveof);
            }
        }
        if was_master {
            self.touch();
            self.update_state();
        }
    }

    /// Rebinds the slots `sender` claims with `epoch` where it wins (Redis's
    /// `clusterUpdateSlotsConfigWith`).
    fn update_slots_with(&mut self, sender: Name, epoch: u64, slots: &Slots) {
        if sender == self.myself {
            return;
        }
        // The master of our shard: ourselves, or the one we replicate.
        let ours = if self.me_is(flags::MASTER) {
            Some(self.myself)
        } else {
            self.my_master()
        };
        let (mut claimed, mut taken_from_ours) = (0usize, 0usize);
        let mut changed = false;
        // Slots this node served and loses: their keys go unless it becomes a replica.
        let mut lost = Vec::new();
        for j in 0..SLOTS {
            // A slot being imported changes only by SETSLOT (Redis's rule).
            if self.importing.contains_key(&(j as u16)) {
                continue;
            }
            if msg::has_slot(slots, j) {
                claimed += 1;
                let owner = self.slots.get(j);
                if owner == Some(sender) {
                    self.not_claiming[j] = false;
                    continue;
                }
                let unclaimed = owner.is_none() || self.not_claiming[j];
                let older = owner
                    .and_then(|o| self.nodes.get(&o))
                    .is_some_and(|o| o.config_epoch < epoch);
                if unclaimed || older {
                    if ours.is_some() && owner == ours {
                        taken_from_ours += 1;
                    }
                    if owner == Some(self.myself) {
                        lost.push(j as u16);
                    }
                    self.slots.set(j, Some(sender));
                    self.not_claiming[j] = false;
                    changed = true;
                }
            } else if self.slots.get(j) == Some(sender) {
                self.not_claiming[j] = true;
            }
        }
        if changed {
            self.touch();
            self.update_state();
        }
        let replicating = self.follow_new_owner(sender, ours, claimed, taken_from_ours);
        if !replicating && !lost.is_empty() {
            self.ha.runtime.push(Runtime::DropSlots(lost));
        }
    }

    fn config_epoch_collision(&mut self, sender: Name) {
        if sender <= self.myself {
            return;
        }
        // Saturating: a peer can announce the last epoch u64 holds.
        self.current_epoch = self.current_epoch.saturating_add(1);
        self.set_my_config_epoch(self.current_epoch);
        self.touch();
    }

    fn process_gossip(&mut self, sender: Option<Name>, gossip: &[Gossip], now: u64) {
        let sender_master = sender
            .and_then(|s| self.nodes.get(&s))
            .is_some_and(|n| n.is(flags::MASTER));
        // Every entry costs a few lookups, never a walk over the slots or the nodes: a
        // message may carry 65535 of them.
        self.blacklist.retain(|_, until| *until >= now);
        for g in gossip {
            if self.nodes.contains_key(&g.name) {
                let failing = g.flags & (flags::FAIL | flags::PFAIL) != 0;
                if let (Some(s), true, false) = (sender, sender_master, g.name == self.myself) {
                    if failing {
                        self.add_fail_report(g.name, s, now);
                        self.mark_failing_if_needed(g.name, now);
                    } else if let Some(n) = self.nodes.get_mut(&g.name) {
                        n.fail_reports.retain(|(r, _)| *r != s);
                    }
                }
                let timeout = self.node_timeout;
                let Some(n) = self.nodes.get_mut(&g.name) else {
                    continue;
                };
                let reports = n
                    .fail_reports
                    .iter()
                    .filter(|(_, t)| now.saturating_sub(*t) <= timeout * 2)
                    .count();
                if !failing && n.ping_sent == 0 && reports == 0 {
                    let pong = u64::from(g.pong_received) * 1000;
                    if pong <= now + 500 && pong > n.pong_received {
                        n.pong_received = pong;
                    }
                }
                if n.is(flags::FAIL | flags::PFAIL)
                    && g.flags & flags::NOADDR == 0
                    && !failing
                    && (n.ip != g.ip || n.port != g.port || n.cport != g.cport)
                {
                    n.ip = g.ip.clone();
                    n.port = g.port;
                    n.pport = g.pport;
                    n.cport = g.cport;
                    n.flags &= !flags::NOADDR;
                    if let Some(old) = n.link {
                        self.close(old);
                    }
                    self.touch();
                }
            } else if sender.is_some()
                && g.flags & flags::NOADDR == 0
                && self.nodes.len() < MAX_NODES
                && !self.blacklist.contains_key(&g.name)
                && g.name.iter().all(u8::is_ascii_hexdigit)
            {
                let mut n = Node::new(g.name, g.flags & !flags::MYSELF, now);
                n.ip = g.ip.clone();
                n.port = g.port;
                n.pport = g.pport;
                n.cport = g.cport;
                self.nodes.insert(g.name, n);
                self.touch();
            }
        }
    }

    fn add_fail_report(&mut self, about: Name, by: Name, now: u64) {
        if let Some(n) = self.nodes.get_mut(&about) {
            match n.fail_reports.iter_mut().find(|(r, _)| *r == by) {
                Some(r) => r.1 = now,
                None => n.fail_reports.push((by, now)),
            }
        }
    }

    fn mark_failing_if_needed(&mut self, name: Name, now: u64) {
        let quorum = self.size() / 2 + 1;
        let timeout = self.node_timeout;
        let me_master = self.me_is(flags::MASTER);
        let Some(n) = self.nodes.get_mut(&name) else {
            return;
        };
        if !n.is(flags::PFAIL) || n.is(flags::FAIL) {
            return;
        }
        n.fail_reports
            .retain(|(_, t)| now.saturating_sub(*t) <= timeout * 2);
        let failures = n.fail_reports.len() + usize::from(me_master);
        if failures < quorum {
            return;
        }
        tracing::info!(
            "cluster: marking node {} as failing (quorum reached)",
            name_str(&name)
        );
        n.flags = (n.flags | flags::FAIL) & !flags::PFAIL;
        n.fail_time = now;
        self.broadcast_fail(name);
        self.touch();
        self.update_state();
    }

    fn rename(&mut self, from: Name, to: Name) {
        // Never onto a known node (ourselves included), never leaving us unknown.
        if self.nodes.contains_key(&to) {
            return;
        }
        let Some(mut n) = self.nodes.remove(&from) else {
            return;
        };
        n.name = to;
        for l in [n.link, n.inbound].into_iter().flatten() {
            if let Some(l) = self.links.get_mut(&l) {
                l.node = Some(to);
            }
        }
        self.nodes.insert(to, n);
    }

    fn del_node(&mut self, name: Name) {
        if name == self.myself {
            return;
        }
        self.slots.clear(&name);
        for n in self.nodes.values_mut() {
            n.fail_reports.retain(|(r, _)| *r != name);
        }
        self.close_slots_of(&name);
        if let Some(n) = self.nodes.remove(&name) {
            for l in [n.link, n.inbound].into_iter().flatten() {
                self.links.remove(&l);
                self.io.push(Io::Close(l));
            }
        }
        self.touch();
        self.update_state();
    }

    // ---- the clock ----

    /// Every 100 ms (Redis's `clusterCron`): connects, pings, timeouts.
    pub fn cron(&mut self, now: u64) {
        self.iteration += 1;
        let timeout = self.node_timeout;
        let handshake_timeout = timeout.max(1000);
        let names: Vec<Name> = self
            .nodes
            .range(self.connect_from..)
            .chain(self.nodes.range(..self.connect_from))
            .map(|(name, _)| *name)
            .collect();
        let (mut connects, mut waiting) = (0, None);
        for name in &names {
            let Some(n) = self.nodes.get(name) else {
                continue;
            };
            if n.is(flags::MYSELF | flags::NOADDR) {
                continue;
            }
            if n.is(flags::HANDSHAKE) && now.saturating_sub(n.ctime) > handshake_timeout {
                self.del_node(*name);
                continue;
            }
            let killed = self.relink_after.get(name).is_some_and(|&t| now < t);
            if n.link.is_none() && !killed {
                self.relink_after.remove(name);
                if connects == CONNECTS_PER_TICK {
                    waiting.get_or_insert(*name);
                    continue;
                }
                connects += 1;
                let (ip, port) = (n.ip.clone(), n.cport);
                let id = self.new_link_id();
                self.links.insert(
                    id,
                    Link {
                        node: Some(*name),
                        inbound: false,
                        ctime: now,
                        peer_ip: String::new(),
                        local_ip: String::new(),
                        up: false,
                    },
                );
                if let Some(n) = self.nodes.get_mut(name) {
                    n.link = Some(id);
                    // Failure detection counts from here until the link answers.
                    if n.ping_sent == 0 {
                        n.ping_sent = now;
                    }
                }
                self.io.push(Io::Connect { link: id, ip, port });
                self.changed = true;
            }
        }
        self.connect_from = waiting.unwrap_or([0; NAME_LEN]);
        if self.iteration.is_multiple_of(10) {
            // Once a second: the node heard from longest ago among a few random ones.
            let eligible: Vec<(u64, LinkId)> = self
                .nodes
                .values()
                .filter(|n| !n.is(flags::MYSELF | flags::HANDSHAKE) && n.ping_sent == 0)
                .filter_map(|n| n.link.map(|l| (n.pong_received, l)))
                .collect();
            let mut best: Option<(u64, LinkId)> = None;
            for _ in 0..5.min(eligible.len()) {
                let c = eligible[(self.random() % eligible.len() as u64) as usize];
                if best.is_none_or(|b| c.0 < b.0) {
                    best = Some(c);
                }
            }
            if let Some((_, link)) = best {
                self.send_ping(link, msg::PING, now);
            }
        }
        let mut update = false;
        for name in &names {
            let Some(n) = self.nodes.get(name) else {
                continue;
            };
            if n.is(flags::MYSELF | flags::NOADDR | flags::HANDSHAKE) {
                continue;
            }
            let ping_delay = now.saturating_sub(n.ping_sent);
            let data_delay = now.saturating_sub(n.data_received);
            if let Some(link) = n.link {
                let age = self
                    .links
                    .get(&link)
                    .map_or(0, |l| now.saturating_sub(l.ctime));
                if age > timeout
                    && n.ping_sent != 0
                    && ping_delay > timeout / 2
                    && data_delay > timeout / 2
                {
                    // The link looks stuck: reconnect.
                    self.close(link);
                } else if n.ping_sent == 0 && now.saturating_sub(n.pong_received) > timeout / 2 {
                    self.send_ping(link, msg::PING, now);
                    continue;
                }
            }
            let Some(n) = self.nodes.get_mut(name) else {
                continue;
            };
            if n.ping_sent == 0 {
                continue;
            }
            if ping_delay.min(data_delay) > timeout && !n.is(flags::PFAIL | flags::FAIL) {
                n.flags |= flags::PFAIL;
                update = true;
            }
        }
        if update {
            self.touch();
        }
        if update || !self.ok {
            self.update_state();
        }
        self.failover_cron(now);
    }

    /// Whether the cluster is ok from here: every slot served by a node not FAIL (Redis's
    /// default `cluster-require-full-coverage yes`) and a majority of the masters with slots
    /// reachable.
    pub fn update_state(&mut self) {
        // O(masters with slots), not a walk over the slots: the table knows its owners.
        let mut ok = self.slots.all_assigned()
            && self
                .slots
                .owners()
                .all(|o| self.nodes.get(o).is_some_and(|n| !n.is(flags::FAIL)));
        let reachable = self
            .slots
            .owners()
            .filter(|o| {
                self.nodes
                    .get(*o)
                    .is_some_and(|n| !n.is(flags::PFAIL | flags::FAIL))
            })
            .count();
        if reachable < self.size() / 2 + 1 {
            ok = false;
        }
        if ok != self.ok {
            tracing::info!("cluster state changed: {}", if ok { "ok" } else { "fail" });
            self.ok = ok;
            self.changed = true;
        }
    }

    // ---- commands ----

    /// CLUSTER ADDSLOTS / DELSLOTS (and their RANGE forms, expanded): all or nothing.
    pub fn assign(&mut self, slots: &[u16], del: bool) -> Result<(), String> {
        let mut seen = vec![false; SLOTS];
        for &s in slots {
            let j = s as usize;
            if j >= SLOTS {
                return Err("ERR Invalid or out of range slot".into());
            }
            match (del, self.slots.get(j)) {
                (true, None) => return Err(format!("ERR Slot {s} is already unassigned")),
                (false, Some(_)) => return Err(format!("ERR Slot {s} is already busy")),
                _ => {}
            }
            if std::mem::replace(&mut seen[j], true) {
                return Err(format!("ERR Slot {s} specified multiple times"));
            }
        }
        for &s in slots {
            let owner = if del { None } else { Some(self.myself) };
            self.slots.set(s as usize, owner);
            self.not_claiming[s as usize] = false;
        }
        self.touch();
        self.update_state();
        Ok(())
    }

    /// CLUSTER SET-CONFIG-EPOCH.
    pub fn set_config_epoch(&mut self, epoch: i64) -> Result<(), String> {
        if epoch < 0 {
            return Err(format!("ERR Invalid config epoch specified: {epoch}"));
        }
        if self.nodes.len() > 1 {
            return Err("ERR The user can assign a config epoch only when the node does not know any other node.".into());
        }
        if self.my_config_epoch() != 0 {
            return Err("ERR Node config epoch is already non-zero".into());
        }
        let epoch = epoch as u64;
        self.set_my_config_epoch(epoch);
        self.current_epoch = self.current_epoch.max(epoch);
        self.touch();
        self.update_state();
        Ok(())
    }

    /// CLUSTER MEET: false when the address is not valid.
    pub fn meet(&mut self, ip: &str, port: i64, cport: i64, now: u64) -> bool {
        let Ok(addr) = ip.parse::<std::net::IpAddr>() else {
            return false;
        };
        if !(1..=65535).contains(&port) || !(1..=65535).contains(&cport) {
            return false;
        }
        let ip = addr.to_string();
        let (port, cport) = (port as u16, cport as u16);
        let in_progress = self.nodes.values().any(|n| {
            n.is(flags::HANDSHAKE)
                && n.ip.eq_ignore_ascii_case(&ip)
                && n.port == port
                && n.cport == cport
        });
        if !in_progress {
            let mut n = Node::new(random_name(), flags::HANDSHAKE | flags::MEET, now);
            n.ip = ip;
            n.port = port;
            n.cport = cport;
            self.nodes.insert(n.name, n);
            self.touch();
        }
        true
    }

    /// CLUSTER FORGET.
    /// The announced address changed (CONFIG SET cluster-announce-*): myself takes it at
    /// once (CLUSTER NODES), and the other nodes from the next messages' headers, as after
    /// Redis's `clusterUpdateMyselfAnnouncedPorts`.
    pub fn reannounce(&mut self, announce: Announce) {
        if let Some(me) = self.nodes.get_mut(&self.myself) {
            me.port = announce.port;
            me.cport = announce.cport;
            me.pport = announce.pport;
            if !announce.ip.is_empty() {
                me.ip = announce.ip.clone();
            }
        }
        self.announce = announce;
        self.changed = true;
        self.save = true;
    }

    /// DEBUG CLUSTERLINK KILL: frees this node's link to node `id` (`to`) and the one it
    /// accepted from it (`from`); the cron connects again, as after any lost link.
    pub fn kill_links(&mut self, id: &[u8], to: bool, from: bool, now: u64) -> Result<(), String> {
        let Some(node) = <Name>::try_from(id).ok().and_then(|n| self.nodes.get(&n)) else {
            return Err(format!("ERR Unknown node {}", String::from_utf8_lossy(id)));
        };
        let links = [(to, node.link), (from, node.inbound)];
        if to {
            self.relink_after.insert(node.name, now + CRON_MS);
        }
        for (wanted, link) in links {
            if let (true, Some(l)) = (wanted, link) {
                self.close(l);
            }
        }
        Ok(())
    }

    pub fn forget(&mut self, id: &[u8], now: u64) -> Result<(), String> {
        let shown = String::from_utf8_lossy(id);
        let Some(name) = <Name>::try_from(id)
            .ok()
            .filter(|n| self.nodes.contains_key(n))
        else {
            return Err(format!("ERR Unknown node {shown}"));
        };
        if name == self.myself {
            return Err("ERR I tried hard but I can't forget myself...".into());
        }
        if self.my_master() == Some(name) {
            return Err("ERR Can't forget my master!".into());
        }
        self.blacklist.retain(|_, until| *until >= now);
        self.blacklist.insert(name, now + BLACKLIST_MS);
        self.del_node(name);
        Ok(())
    }

    /// CLUSTER BUMPEPOCH: whether the epoch moved, and the node's config epoch.
    pub fn bump_epoch(&mut self) -> (bool, u64) {
        let max = self
            .nodes
            .values()
            .map(|n| n.config_epoch)
            .max()
            .unwrap_or(0)
            .max(self.current_epoch);
        let mine = self.my_config_epoch();
        if mine == 0 || mine != max {
            // Saturating: a peer can announce the last epoch u64 holds.
            self.current_epoch = self.current_epoch.saturating_add(1);
            let e = self.current_epoch;
            self.set_my_config_epoch(e);
            self.touch();
            (true, e)
        } else {
            (false, mine)
        }
    }

    /// CLUSTER RESET: forgets every other node and every slot; HARD also zeroes the epochs
    /// and takes a new name.
    pub fn reset(&mut self, hard: bool) {
        self.slots = SlotTable::default();
        self.migrating.clear();
        self.importing.clear();
        let others: Vec<Name> = self
            .nodes
            .keys()
            .copied()
            .filter(|n| *n != self.myself)
            .collect();
        for n in others {
            self.del_node(n);
        }
        if hard {
            self.current_epoch = 0;
            self.last_vote_epoch = 0;
            self.set_my_config_epoch(0);
            let new = random_name();
            self.rename(self.myself, new);
            self.myself = new;
        }
        self.touch();
        self.update_state();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nodes wired by hand: every Io::Send is delivered to the other end of its link.
    pub(super) struct Net {
        pub(super) nodes: Vec<State>,
        /// (node, link) -> (node, link) of the other end.
        ends: HashMap<(usize, LinkId), (usize, LinkId)>,
        /// Nodes reachable (a killed node drops everything).
        pub(super) up: Vec<bool>,
        pub(super) now: u64,
    }

    impl Net {
        pub(super) fn new(n: usize) -> Net {
            let nodes = (0..n)
                .map(|i| {
                    let a = Announce {
                        port: 7000 + i as u16,
                        cport: 17000 + i as u16,
                        pport: 0,
                        ip: String::new(),
                    };
                    State::new(random_name(), a, 1000, 1_000_000)
                })
                .collect();
            Net {
                nodes,
                ends: HashMap::new(),
                up: vec![true; n],
                now: 1_000_000,
            }
        }

        fn by_cport(&self, port: u16) -> Option<usize> {
            self.nodes.iter().position(|s| s.announce.cport == port)
        }

        /// Delivers everything pending until quiet.
        pub(super) fn settle(&mut self) {
            loop {
                let mut any = false;
                for i in 0..self.nodes.len() {
                    let out = std::mem::take(&mut self.nodes[i].io);
                    for io in out {
                        any = true;
                        match io {
                            Io::Connect { link, port, .. } => {
                                match self.by_cport(port).filter(|&j| self.up[j] && self.up[i]) {
                                    Some(j) => {
                                        let now = self.now;
                                        let back = self.nodes[j].accepted(
                                            now,
                                            "127.0.0.1".into(),
                                            "127.0.0.1".into(),
                                        );
                                        self.ends.insert((i, link), (j, back));
                                        self.ends.insert((j, back), (i, link));
                                        self.nodes[i].connected(
                                            link,
                                            now,
                                            "127.0.0.1".into(),
                                            "127.0.0.1".into(),
                                        );
                                    }
                                    None => self.nodes[i].closed(link),
                                }
                            }
                            Io::Send(link, bytes) => {
                                if let Some(&(j, back)) = self.ends.get(&(i, link)) {
                                    if self.up[j] && self.up[i] {
                                        let now = self.now;
                                        self.nodes[j].received(back, &bytes, now);
                                    }
                                }
                            }
                            Io::Close(link) => {
                                if let Some((j, back)) = self.ends.remove(&(i, link)) {
                                    self.ends.remove(&(j, back));
                                    self.nodes[j].closed(back);
                                }
                            }
                        }
                    }
                }
                if !any {
                    break;
                }
            }
        }

        pub(super) fn tick(&mut self, ms: u64) {
            for _ in 0..ms / 100 {
                self.now += 100;
                for i in 0..self.nodes.len() {
                    if self.up[i] {
                        let now = self.now;
                        self.nodes[i].cron(now);
                    }
                }
                self.settle();
            }
        }
    }

    #[test]
    fn a_peer_announcing_the_last_epoch_overflows_nothing() {
        // A known master's PING with currentEpoch u64::MAX and our config epoch made the
        // collision handling add 1 to u64::MAX (a panic with overflow checks, a wrap to 0
        // without).
        let mut net = create(2);
        let (lo, hi) = if net.nodes[0].myself < net.nodes[1].myself {
            (0, 1)
        } else {
            (1, 0)
        };
        let now = net.now;
        let sender = net.nodes[hi].myself;
        let victim = &mut net.nodes[lo];
        let mut h = victim.header(msg::PING);
        h.sender = sender;
        h.current_epoch = u64::MAX;
        h.slots = victim.slots_of(&sender);
        h.flags = flags::MASTER;
        let link = victim.accepted(now, "127.0.0.1".into(), "127.0.0.1".into());
        victim.received(link, &msg::encode(&h, &Body::Ping(Vec::new())), now);
        assert_eq!(victim.current_epoch, u64::MAX);
        assert_eq!(victim.my_config_epoch(), u64::MAX);
        assert_eq!(victim.bump_epoch(), (false, u64::MAX));
    }

    #[test]
    fn a_peer_signing_with_our_name_changes_nothing_of_ours() {
        // Found by fuzz/fuzz_targets/cluster_bus.rs: a PING whose sender is this node's own
        // name, announcing port 0, moved this node to port 0 (CLUSTER NODES, the PINGs it
        // sends); a handshake PONG with our name renamed the handshake node over ours.
        let mut net = create(2);
        let now = net.now;
        let st = &mut net.nodes[0];
        let (port, cport) = (st.me().unwrap().port, st.me().unwrap().cport);
        let mut h = st.header(msg::PING);
        h.port = 0;
        h.cport = 0;
        h.myip = "10.9.9.9".into();
        let link = st.accepted(now, "10.9.9.9".into(), "127.0.0.1".into());
        st.received(link, &msg::encode(&h, &Body::Ping(Vec::new())), now);
        assert_eq!(
            (st.me().unwrap().port, st.me().unwrap().cport),
            (port, cport)
        );
        assert_ne!(st.me().unwrap().ip, "10.9.9.9");

        // A MEET to an address that turns out to be ours.
        assert!(st.meet("127.0.0.1", 7999, 17999, now));
        st.cron(now);
        let out = std::mem::take(&mut st.io);
        let out_link = out
            .iter()
            .find_map(|io| match io {
                Io::Connect {
                    link, port: 17999, ..
                } => Some(*link),
                _ => None,
            })
            .expect("a connection to the met address");
        st.connected(out_link, now, "127.0.0.1".into(), "127.0.0.1".into());
        let mut pong = st.header(msg::PONG);
        pong.port = 0;
        st.received(out_link, &msg::encode(&pong, &Body::Ping(Vec::new())), now);
        assert_eq!(st.nodes.len(), 2, "the handshake node is forgotten");
        assert_ne!(st.me().unwrap().flags & flags::MYSELF, 0);
        assert_eq!(
            (st.me().unwrap().port, st.me().unwrap().cport),
            (port, cport)
        );
    }

    #[test]
    fn a_gossip_flood_from_a_known_master_costs_lookups_and_learns_a_bounded_number_of_nodes() {
        // A PING claiming to come from a known master, gossiping the most entries a message
        // can carry: about known nodes, failing (each took a walk over the 16384 slots to
        // count the masters), and about made-up ones (each became a node to connect to).
        let mut net = create(3);
        let now = net.now;
        let (sender, other) = (net.nodes[1].myself, net.nodes[2].myself);
        let victim = &mut net.nodes[0];
        let mut h = victim.header(msg::PING);
        h.sender = sender;
        h.slots = victim.slots_of(&sender);
        h.config_epoch = victim.nodes[&sender].config_epoch;
        h.flags = flags::MASTER;
        let entry = |name: Name, flags: u16| Gossip {
            name,
            ping_sent: 0,
            pong_received: 0,
            ip: "10.0.0.1".into(),
            port: 1,
            cport: 2,
            flags,
            pport: 0,
        };
        let failing: Vec<Gossip> = (0..u16::MAX).map(|_| entry(other, flags::PFAIL)).collect();
        let link = victim.accepted(now, "127.0.0.1".into(), "127.0.0.1".into());
        victim.received(link, &msg::encode(&h, &Body::Ping(failing)), now);
        assert_eq!(
            victim.nodes[&other].fail_reports.len(),
            1,
            "one reporter, once"
        );
        let made_up: Vec<Gossip> = (0..u16::MAX as usize)
            .map(|i| {
                let mut name = [b'0'; NAME_LEN];
                name[..8].copy_from_slice(format!("{i:08x}").as_bytes());
                entry(name, flags::MASTER)
            })
            .collect();
        victim.received(link, &msg::encode(&h, &Body::Ping(made_up)), now);
        assert_eq!(victim.nodes.len(), MAX_NODES);
        assert!(victim.ok, "the slot map is untouched");
    }

    #[test]
    fn unreachable_nodes_are_connected_to_a_few_per_tick_each_in_turn() {
        // 200 gossiped nodes that refuse every connection: each tick starts at most
        // CONNECTS_PER_TICK connections, and the next tick starts where the last stopped.
        let mut net = create(2);
        let now = net.now;
        let sender = net.nodes[1].myself;
        let st = &mut net.nodes[0];
        let mut h = st.header(msg::PING);
        h.sender = sender;
        h.slots = st.slots_of(&sender);
        h.config_epoch = st.nodes[&sender].config_epoch;
        h.flags = flags::MASTER;
        let gossip = (0..200u32)
            .map(|i| {
                let mut name = [b'0'; NAME_LEN];
                name[..8].copy_from_slice(format!("{i:08x}").as_bytes());
                Gossip {
                    name,
                    ping_sent: 0,
                    pong_received: 0,
                    ip: "127.0.0.1".into(),
                    port: 1,
                    cport: 2,
                    flags: flags::MASTER,
                    pport: 0,
                }
            })
            .collect();
        let link = st.accepted(now, "127.0.0.1".into(), "127.0.0.1".into());
        st.received(link, &msg::encode(&h, &Body::Ping(gossip)), now);
        st.io.clear();
        let mut tried = std::collections::HashSet::new();
        for tick in 0..4 {
            st.cron(now + 100 * (tick + 1));
            let connects: Vec<LinkId> = std::mem::take(&mut st.io)
                .into_iter()
                .filter_map(|io| match io {
                    Io::Connect { link, port: 2, .. } => Some(link),
                    _ => None,
                })
                .collect();
            assert!(connects.len() <= CONNECTS_PER_TICK);
            for l in connects {
                tried.insert(st.links[&l].node);
                st.closed(l); // refused
            }
        }
        assert_eq!(tried.len(), 200, "every node had its turn");
    }

    pub(super) fn create(n: usize) -> Net {
        let mut net = Net::new(n);
        for i in 0..n {
            let (a, b) = (i * SLOTS / n, (i + 1) * SLOTS / n);
            let slots: Vec<u16> = (a as u16..b as u16).collect();
            net.nodes[i].assign(&slots, false).unwrap();
            net.nodes[i].set_config_epoch(i as i64 + 1).unwrap();
        }
        let now = net.now;
        for i in 1..n {
            assert!(net.nodes[i].meet("127.0.0.1", 7000, 17000, now));
        }
        net.tick(3000);
        net
    }

    #[test]
    fn meet_and_gossip_converge_on_one_slot_map() {
        let net = create(4);
        for s in &net.nodes {
            assert_eq!(s.nodes.len(), 4, "every node knows every other");
            assert!(s.ok, "the cluster is ok everywhere");
            assert!(s.nodes.values().all(|n| n.flags & flags::HANDSHAKE == 0));
            assert_eq!(s.slots, net.nodes[0].slots);
            assert_eq!(s.current_epoch, 4);
        }
        assert_eq!(net.nodes[0].slots[0], Some(net.nodes[0].myself));
        assert_eq!(net.nodes[0].slots[16383], Some(net.nodes[3].myself));
        // Myself's address was learned from the MEET.
        assert_eq!(net.nodes[0].me().map(|n| n.ip.as_str()), Some("127.0.0.1"));
    }

    #[test]
    fn a_dead_node_turns_pfail_then_fail_and_the_cluster_fails() {
        let mut net = create(3);
        net.up[2] = false;
        let dead = net.nodes[2].myself;
        net.tick(2500);
        for i in 0..2 {
            let n = &net.nodes[i].nodes[&dead];
            assert!(
                n.flags & flags::FAIL != 0,
                "node {i} sees FAIL: {:x}",
                n.flags
            );
            assert!(!net.nodes[i].ok);
        }
        net.up[2] = true;
        net.tick(5000);
        for i in 0..3 {
            assert!(net.nodes[i].ok, "node {i} ok again");
        }
    }

    #[test]
    fn a_higher_config_epoch_wins_a_slot_and_update_corrects_the_loser() {
        let mut net = create(3);
        let (a, b) = (net.nodes[0].myself, net.nodes[1].myself);
        // Node 1 takes slot 0 with a newer epoch, without node 0 giving it up.
        net.nodes[1].slots.set(0, Some(b));
        net.nodes[1].bump_epoch();
        net.tick(3000);
        for s in &net.nodes {
            assert_eq!(s.slots[0], Some(b), "node {} follows", name_str(&s.myself));
        }
        assert_ne!(net.nodes[0].slots[1], None);
        assert_eq!(net.nodes[0].slots[1], Some(a));
    }

    #[test]
    fn commands_check_like_redis() {
        let mut net = Net::new(2);
        let s = &mut net.nodes[0];
        assert_eq!(s.assign(&[1, 2], false), Ok(()));
        assert_eq!(
            s.assign(&[3, 2], false),
            Err("ERR Slot 2 is already busy".into())
        );
        assert_eq!(
            s.assign(&[4, 4], false),
            Err("ERR Slot 4 specified multiple times".into())
        );
        assert_eq!(
            s.assign(&[5], true),
            Err("ERR Slot 5 is already unassigned".into())
        );
        assert_eq!(s.numslots(&s.myself.clone()), 2);
        assert!(s.set_config_epoch(-1).is_err());
        assert_eq!(s.set_config_epoch(5), Ok(()));
        assert!(s.set_config_epoch(6).is_err());
        assert_eq!(s.bump_epoch(), (false, 5));
        assert!(!s.meet("nonsense", 1, 2, 0));
        assert!(s.meet("127.0.0.1", 7001, 17001, 0));
        assert_eq!(s.nodes.len(), 2);
        assert!(s.forget(b"abc", 0).is_err());
        let me = s.myself;
        assert!(s.forget(&me, 0).is_err());
        s.reset(true);
        assert_ne!(s.myself, me);
        assert_eq!(s.nodes.len(), 1);
        assert_eq!(s.numslots(&s.myself.clone()), 0);
    }

    #[test]
    fn forget_blacklists_against_gossip() {
        let mut net = create(3);
        let gone = net.nodes[2].myself;
        let now = net.now;
        net.nodes[0].forget(&gone, now).unwrap();
        net.tick(2000);
        assert!(!net.nodes[0].nodes.contains_key(&gone));
    }
}
