//! A node's replicas and failovers, as a Redis 7.0 node does them on the bus:
//!
//! - CLUSTER REPLICATE (`replicate`): the node becomes a replica of a master; whatever the
//!   node's role becomes, the runtime is told to match it ([`Runtime`]: follow the master's
//!   address with the replication code, or stop following);
//! - automatic failover: a replica whose master is FAIL waits a delay ranked by how much of
//!   the stream it has (the offsets announced in every header), asks the masters for their
//!   vote in a new epoch (FAILOVER_AUTH_REQUEST), each master votes once per epoch and once
//!   per failing master per two node timeouts (FAILOVER_AUTH_ACK); with a majority the
//!   replica takes its master's slots with that epoch as its config epoch and broadcasts a
//!   PONG, and the others follow by config epoch (a master left without slots, and its other
//!   replicas, replicate the new owner);
//! - CLUSTER FAILOVER: by default the replica sends MFSTART, its master holds writes and
//!   announces (PAUSED) the stream's offset there, the replica waits to have applied it and
//!   then runs the election with FORCEACK (masters vote although its master is up); FORCE
//!   skips the offset agreement, TAKEOVER the election (a config epoch bumped without
//!   consensus).
//!
//! Pure like the rest of `State`: time comes in, the runtime's work goes out.

use super::*;

/// How long a manual failover may take (`CLUSTER_MF_TIMEOUT`); the master holds writes
/// twice as long at most.
pub const MF_TIMEOUT: u64 = 5000;

/// What the process must do so its replication matches the node's role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// Follow the primary at this address (REPLICAOF host port).
    Follow { ip: String, port: u16 },
    /// Stop following and keep the data (REPLICAOF NO ONE).
    Promote,
    /// Hold writes until `until` (wall ms), then report the stream's offset at that point
    /// with `State::mf_paused` (a master asked for a manual failover).
    PauseWrites { until: u64 },
    /// Release the writes held for a manual failover (after any `Follow` before it).
    Unpause,
    /// Delete the keys of these slots: a newer configuration gave them to another node while
    /// this one, still a master, held them (Redis's dirty slots).
    DropSlots(Vec<u16>),
}

/// The node's replication and failover state.
#[derive(Debug)]
pub struct Ha {
    /// `cluster-replica-validity-factor`: a replica out of touch with its master for longer
    /// than `repl-ping-replica-period` + node timeout × this does not fail over (0: always).
    pub validity_factor: u64,
    /// `cluster-allow-replica-migration`: a master that lost its last slot to another
    /// master becomes its replica.
    pub allow_replica_migration: bool,
    /// `cluster-replica-no-failover`: never start an automatic failover.
    pub no_failover: bool,
    /// `repl-ping-replica-period`, in ms.
    pub ping_period: u64,
    /// The replication offset (a replica's applied stream, a master's stream), and how long
    /// the replica has had nothing from its master (ms): set by the bus thread.
    pub repl_offset: u64,
    pub data_age: u64,
    /// What the runtime was last told to follow (None: it is a primary).
    following: Option<(String, u16)>,
    /// Work for the runtime, in order, taken by the bus thread.
    pub runtime: Vec<Runtime>,
    // The election (Redis's `failover_auth_*`).
    auth_time: u64,
    auth_count: usize,
    auth_sent: bool,
    auth_rank: usize,
    auth_epoch: u64,
    // A manual failover (Redis's `mf_*`); `mf_end` 0: none.
    mf_end: u64,
    /// On a master: the replica it serves, and the offset its writes stopped at.
    mf_replica: Option<Name>,
    mf_paused_offset: Option<u64>,
    /// On a replica: the offset its paused master announced, and whether it may start.
    mf_master_offset: Option<u64>,
    mf_can_start: bool,
}

impl Default for Ha {
    fn default() -> Ha {
        Ha {
            validity_factor: 10,
            allow_replica_migration: true,
            no_failover: false,
            ping_period: 10_000,
            repl_offset: 0,
            data_age: 0,
            following: None,
            runtime: Vec::new(),
            auth_time: 0,
            auth_count: 0,
            auth_sent: false,
            auth_rank: 0,
            auth_epoch: 0,
            mf_end: 0,
            mf_replica: None,
            mf_paused_offset: None,
            mf_master_offset: None,
            mf_can_start: false,
        }
    }
}

impl Ha {
    /// The offset a header announces: while paused for a manual failover, the offset the
    /// writes stopped at.
    pub fn announced_offset(&self) -> u64 {
        self.mf_paused_offset.unwrap_or(self.repl_offset)
    }

    /// `mflags[0]` of a header: PAUSED from a master whose writes are held for a manual
    /// failover, FORCEACK on a manual failover's vote request (set by the sender).
    pub fn mflags(&self, master: bool) -> u8 {
        if master && self.mf_end != 0 && self.mf_paused_offset.is_some() {
            msg::FLAG0_PAUSED
        } else {
            0
        }
    }
}

impl State {
    /// Records the offset a header announces; a replica in a manual failover takes its
    /// paused master's.
    pub(super) fn offset_seen(&mut self, sender: Name, h: &Header) {
        if let Some(n) = self.nodes.get_mut(&sender) {
            n.repl_offset = h.offset;
        }
        if self.ha.mf_end != 0
            && self.my_master() == Some(sender)
            && h.mflags & msg::FLAG0_PAUSED != 0
            && self.ha.mf_master_offset.is_none()
        {
            tracing::info!(
                "Received replication offset for paused master manual failover: {}",
                h.offset
            );
            self.ha.mf_master_offset = Some(h.offset);
        }
    }

    /// FAILOVER_AUTH_REQUEST, FAILOVER_AUTH_ACK or MFSTART from known node `sender`.
    pub(super) fn failover_message(&mut self, sender: Name, link: LinkId, h: &Header, now: u64) {
        match h.kind {
            msg::FAILOVER_AUTH_REQUEST => self.vote_if_needed(sender, h, now),
            msg::FAILOVER_AUTH_ACK => {
                let counts = self.nodes.get(&sender).is_some_and(|n| n.is(flags::MASTER))
                    && self.numslots(&sender) > 0
                    && h.current_epoch >= self.ha.auth_epoch;
                if counts {
                    self.ha.auth_count += 1;
                    self.replica_failover(now);
                }
            }
            msg::MFSTART => {
                let mine = self.nodes.get(&sender).and_then(|n| n.slaveof) == Some(self.myself);
                if !mine || !self.me_is(flags::MASTER) {
                    return;
                }
                self.reset_manual_failover();
                self.ha.mf_end = now + MF_TIMEOUT;
                self.ha.mf_replica = Some(sender);
                self.ha.runtime.push(Runtime::PauseWrites {
                    until: now + 2 * MF_TIMEOUT,
                });
                tracing::warn!(
                    "Manual failover requested by replica {}.",
                    name_str(&sender)
                );
                self.send_ping(link, msg::PING, now);
            }
            _ => {}
        }
    }

    /// The runtime holds writes since it reported `offset`: announced to the replica.
    pub fn mf_paused(&mut self, offset: u64, now: u64) {
        if self.ha.mf_end == 0 || !self.me_is(flags::MASTER) {
            return;
        }
        self.ha.mf_paused_offset = Some(offset);
        if let Some(link) = self.ha.mf_replica.and_then(|r| self.link_of(&r)) {
            self.send_ping(link, msg::PING, now);
        }
    }

    /// Redis's `clusterSendFailoverAuthIfNeeded`: a master with slots votes for `sender`.
    fn vote_if_needed(&mut self, sender: Name, h: &Header, now: u64) {
        if !self.me_is(flags::MASTER) || self.numslots(&self.myself) == 0 {
            return;
        }
        let who = name_str(&sender);
        if h.current_epoch < self.current_epoch {
            tracing::warn!("Failover auth denied to {who}: reqEpoch < curEpoch");
            return;
        }
        if self.last_vote_epoch == self.current_epoch {
            tracing::warn!(
                "Failover auth denied to {who}: already voted for epoch {}",
                self.current_epoch
            );
            return;
        }
        let Some(node) = self.nodes.get(&sender) else {
            return;
        };
        let master = node.slaveof.filter(|_| !node.is(flags::MASTER));
        let Some(master) = master.and_then(|m| self.nodes.get(&m)) else {
            tracing::warn!("Failover auth denied to {who}: not a replica of a known master");
            return;
        };
        let force = h.mflags & msg::FLAG0_FORCEACK != 0;
        if !master.is(flags::FAIL) && !force {
            tracing::warn!("Failover auth denied to {who}: its master is up");
            return;
        }
        if now.saturating_sub(master.voted_time) < self.node_timeout * 2 {
            tracing::warn!("Failover auth denied to {who}: voted for this master recently");
            return;
        }
        let master = master.name;
        for j in 0..SLOTS {
            if !msg::has_slot(&h.slots, j) || self.not_claiming[j] {
                continue;
            }
            let newer = self
                .slots
                .get(j)
                .and_then(|o| self.nodes.get(&o))
                .is_some_and(|o| o.config_epoch > h.config_epoch);
            if newer {
                tracing::warn!("Failover auth denied to {who}: slot {j} has a newer epoch");
                return;
            }
        }
        self.last_vote_epoch = self.current_epoch;
        if let Some(m) = self.nodes.get_mut(&master) {
            m.voted_time = now;
        }
        self.save = true;
        if let Some(link) = self.link_of(&sender) {
            self.push(link, msg::FAILOVER_AUTH_ACK, Body::Other);
        }
        tracing::warn!(
            "Failover auth granted to {who} for epoch {}",
            self.current_epoch
        );
    }

    /// CLUSTER REPLICATE `id`. `has_keys`: the process holds keys (a master must be empty).
    pub fn replicate(&mut self, id: &[u8], has_keys: bool) -> Result<(), String> {
        let Some(name) = <Name>::try_from(id)
            .ok()
            .filter(|n| self.nodes.contains_key(n))
        else {
            return Err(format!("ERR Unknown node {}", String::from_utf8_lossy(id)));
        };
        if name == self.myself {
            return Err("ERR Can't replicate myself".into());
        }
        if self.nodes.get(&name).is_some_and(|n| n.is(flags::SLAVE)) {
            return Err("ERR I can only replicate a master, not a replica.".into());
        }
        if self.me_is(flags::MASTER) && (self.numslots(&self.myself) != 0 || has_keys) {
            return Err(
                "ERR To set a master the node must be empty and without assigned slots.".into(),
            );
        }
        self.set_my_master(name);
        self.update_state();
        Ok(())
    }

    /// Redis's `clusterSetMaster`: this node (without slots) replicates `master`.
    fn set_my_master(&mut self, master: Name) {
        if master == self.myself {
            return;
        }
        if let Some(me) = self.me_mut() {
            me.flags = (me.flags & !flags::MASTER) | flags::SLAVE;
            me.slaveof = Some(master);
        }
        self.touch();
        self.sync_runtime();
        self.reset_manual_failover();
    }

    /// Tells the runtime to follow what the node's role says, when that changed: the master's
    /// address (once known), or nothing for a master.
    fn sync_runtime(&mut self) {
        let want = match self.my_master() {
            Some(m) => match self.nodes.get(&m) {
                Some(n) if !n.ip.is_empty() && n.port != 0 => Some((n.ip.clone(), n.port)),
                // The master's address is not known yet: keep what the runtime does.
                _ => return,
            },
            None => None,
        };
        if want == self.ha.following {
            return;
        }
        self.ha.following = want.clone();
        self.ha.runtime.push(match want {
            Some((ip, port)) => Runtime::Follow { ip, port },
            None => Runtime::Promote,
        });
    }

    /// After `sender` took slots with a newer config (Redis's end of
    /// `clusterUpdateSlotsConfigWith`): a master left without slots, or a replica whose
    /// master was, replicates `sender`; a replica of a replica replicates its grandmaster.
    /// Whether this node changed whom it replicates (Redis's end of
    /// `clusterUpdateSlotsConfigWith`).
    pub(super) fn follow_new_owner(
        &mut self,
        sender: Name,
        ours: Option<Name>,
        claimed: usize,
        taken_from_ours: usize,
    ) -> bool {
        let ours_empty = ours.is_some_and(|o| self.numslots(&o) == 0);
        if taken_from_ours > 0
            && ours_empty
            && (self.ha.allow_replica_migration || claimed == taken_from_ours)
        {
            tracing::warn!(
                "Configuration change detected. Reconfiguring myself as a replica of {}",
                name_str(&sender)
            );
            self.set_my_master(sender);
            self.update_state();
            return true;
        }
        let grand = self
            .my_master()
            .and_then(|m| self.nodes.get(&m))
            .filter(|m| m.is(flags::SLAVE))
            .and_then(|m| m.slaveof);
        if let Some(g) = grand.filter(|g| *g != self.myself) {
            tracing::warn!(
                "I'm a sub-replica! Reconfiguring myself as a replica of grandmaster {}",
                name_str(&g)
            );
            self.set_my_master(g);
            return true;
        }
        false
    }

    /// Redis's `resetManualFailover`: a master releases the writes it held.
    fn reset_manual_failover(&mut self) {
        if self.ha.mf_replica.is_some() {
            self.ha.runtime.push(Runtime::Unpause);
        }
        self.ha.mf_end = 0;
        self.ha.mf_can_start = false;
        self.ha.mf_replica = None;
        self.ha.mf_master_offset = None;
        self.ha.mf_paused_offset = None;
    }

    /// CLUSTER FAILOVER [FORCE|TAKEOVER].
    pub fn manual_failover(&mut self, force: bool, takeover: bool, now: u64) -> Result<(), String> {
        if self.me_is(flags::MASTER) {
            return Err("ERR You should send CLUSTER FAILOVER to a replica".into());
        }
        let Some(master) = self.my_master().filter(|m| self.nodes.contains_key(m)) else {
            return Err("ERR I'm a replica but my master is unknown to me".into());
        };
        let down =
            self.nodes.get(&master).is_some_and(|n| n.is(flags::FAIL)) || !self.link_up(&master);
        if !force && down {
            return Err("ERR Master is down or failed, please use CLUSTER FAILOVER FORCE".into());
        }
        self.reset_manual_failover();
        self.ha.mf_end = now + MF_TIMEOUT;
        if takeover {
            tracing::warn!("Taking over the master (user request).");
            self.bump_epoch();
            self.replace_my_master(now);
        } else if force {
            tracing::warn!("Forced failover user request accepted.");
            self.ha.mf_can_start = true;
        } else {
            tracing::warn!("Manual failover user request accepted.");
            if let Some(link) = self.link_of(&master) {
                self.push(link, msg::MFSTART, Body::Other);
            }
        }
        Ok(())
    }

    /// Redis's `clusterFailoverReplaceYourMaster`: this replica becomes a master serving its
    /// master's slots, and tells every node.
    fn replace_my_master(&mut self, now: u64) {
        let Some(old) = self.my_master() else {
            return;
        };
        if let Some(me) = self.me_mut() {
            me.flags = (me.flags & !flags::SLAVE) | flags::MASTER;
            me.slaveof = None;
        }
        for j in 0..SLOTS {
            if self.slots.get(j) == Some(old) {
                self.slots.set(j, Some(self.myself));
                self.not_claiming[j] = false;
            }
        }
        self.update_state();
        self.touch();
        self.sync_runtime();
        self.broadcast_pong(None, now);
        self.reset_manual_failover();
    }

    /// A PONG to every node with a link (the cluster learns a change at once), or only to
    /// the other replicas of `of`.
    pub(super) fn broadcast_pong(&mut self, of: Option<Name>, now: u64) {
        let links: Vec<LinkId> = self
            .nodes
            .values()
            .filter(|n| n.name != self.myself && !n.is(flags::HANDSHAKE))
            .filter(|n| of.is_none() || (n.is(flags::SLAVE) && n.slaveof == of))
            .filter_map(|n| n.link)
            .collect();
        for l in links {
            self.send_ping(l, msg::PONG, now);
        }
    }

    /// Redis's `clusterGetSlaveRank`: how many replicas of our master have more of its
    /// stream than we do.
    fn rank(&self, master: Name) -> usize {
        let mine = self.ha.repl_offset;
        self.nodes
            .values()
            .filter(|n| n.name != self.myself && n.slaveof == Some(master))
            .filter(|n| n.is(flags::SLAVE) && !n.is(flags::NOFAILOVER))
            .filter(|n| n.repl_offset > mine)
            .count()
    }

    /// Every clock tick: a manual failover's timeout and pings, a replica's failover.
    pub(super) fn failover_cron(&mut self, now: u64) {
        if self.ha.mf_end != 0 && self.ha.mf_end < now {
            tracing::warn!("Manual failover timed out.");
            self.reset_manual_failover();
        }
        if self.me_is(flags::MASTER) && self.ha.mf_paused_offset.is_some() {
            if let Some(link) = self.ha.mf_replica.and_then(|r| self.link_of(&r)) {
                self.send_ping(link, msg::PING, now);
            }
        }
        if self.me_is(flags::SLAVE) {
            if self.ha.mf_end != 0 && !self.ha.mf_can_start {
                // Our offset counts what we applied; PINGs the primary sends during the
                // pause may put it past the announced one.
                if self
                    .ha
                    .mf_master_offset
                    .is_some_and(|o| self.ha.repl_offset >= o)
                {
                    tracing::warn!(
                        "All master replication stream processed, manual failover can start."
                    );
                    self.ha.mf_can_start = true;
                }
            }
            self.replica_failover(now);
        }
        self.sync_runtime();
    }

    /// Redis's `clusterHandleSlaveFailover`: the election of a replica whose master failed
    /// (or that was asked to fail over).
    fn replica_failover(&mut self, now: u64) {
        let manual = self.ha.mf_end != 0 && self.ha.mf_can_start;
        let Some(master) = self.my_master() else {
            return;
        };
        let failed = self.nodes.get(&master).is_some_and(|n| n.is(flags::FAIL));
        if self.me_is(flags::MASTER)
            || (!failed && !manual)
            || (self.ha.no_failover && !manual)
            || self.numslots(&master) == 0
        {
            return;
        }
        let timeout = self.node_timeout;
        let mut data_age = self.ha.data_age;
        if data_age > timeout {
            data_age -= timeout;
        }
        let limit = self
            .ha
            .ping_period
            .saturating_add(timeout.saturating_mul(self.ha.validity_factor));
        if self.ha.validity_factor != 0 && data_age > limit && !manual {
            return;
        }
        let auth_timeout = (timeout * 2).max(2000);
        let auth_retry = auth_timeout * 2;
        let auth_age = now.saturating_sub(self.ha.auth_time);
        if auth_age > auth_retry {
            self.ha.auth_count = 0;
            self.ha.auth_sent = false;
            self.ha.auth_rank = self.rank(master);
            self.ha.auth_time = now + 500 + self.random() % 500 + self.ha.auth_rank as u64 * 1000;
            if self.ha.mf_end != 0 {
                self.ha.auth_time = now;
                self.ha.auth_rank = 0;
            }
            tracing::warn!(
                "Start of election delayed for {} milliseconds (rank #{}, offset {}).",
                self.ha.auth_time.saturating_sub(now),
                self.ha.auth_rank,
                self.ha.repl_offset
            );
            self.broadcast_pong(Some(master), now);
            if self.ha.mf_end == 0 {
                return;
            }
        }
        if !self.ha.auth_sent && self.ha.mf_end == 0 {
            let rank = self.rank(master);
            if rank > self.ha.auth_rank {
                self.ha.auth_time += (rank - self.ha.auth_rank) as u64 * 1000;
                self.ha.auth_rank = rank;
            }
        }
        if now < self.ha.auth_time || now.saturating_sub(self.ha.auth_time) > auth_timeout {
            return;
        }
        if !self.ha.auth_sent {
            self.current_epoch += 1;
            self.ha.auth_epoch = self.current_epoch;
            tracing::warn!(
                "Starting a failover election for epoch {}.",
                self.current_epoch
            );
            self.request_votes();
            self.ha.auth_sent = true;
            self.touch();
            return;
        }
        if self.ha.auth_count < self.size() / 2 + 1 {
            return;
        }
        tracing::warn!("Failover election won: I'm the new master.");
        if self.my_config_epoch() < self.ha.auth_epoch {
            self.set_my_config_epoch(self.ha.auth_epoch);
        }
        self.replace_my_master(now);
    }

    /// FAILOVER_AUTH_REQUEST to every node (FORCEACK in a manual failover).
    fn request_votes(&mut self) {
        let links: Vec<LinkId> = self
            .nodes
            .values()
            .filter(|n| n.name != self.myself && !n.is(flags::HANDSHAKE))
            .filter_map(|n| n.link)
            .collect();
        let mut h = self.header(msg::FAILOVER_AUTH_REQUEST);
        if self.ha.mf_end != 0 {
            h.mflags |= msg::FLAG0_FORCEACK;
        }
        let bytes = msg::encode(&h, &Body::Other);
        for l in links {
            if let Some(n) = self.sent.get_mut(msg::FAILOVER_AUTH_REQUEST as usize) {
                *n += 1;
            }
            self.io.push(Io::Send(l, bytes.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::Net;
    use super::*;

    /// Three masters with a third of the slots each (nodes 0..3) and a replica of each
    /// (node 3 + i replicates node i).
    fn shards_with_replicas() -> Net {
        let mut net = Net::new(6);
        for i in 0..3 {
            let (a, b) = (i * SLOTS / 3, (i + 1) * SLOTS / 3);
            let slots: Vec<u16> = (a as u16..b as u16).collect();
            net.nodes[i].assign(&slots, false).unwrap();
        }
        for i in 0..6 {
            net.nodes[i].set_config_epoch(i as i64 + 1).unwrap();
        }
        let now = net.now;
        for i in 1..6 {
            assert!(net.nodes[i].meet("127.0.0.1", 7000, 17000, now));
        }
        net.tick(3000);
        for i in 0..3 {
            let master = net.nodes[i].myself;
            net.nodes[3 + i].replicate(&master, false).unwrap();
        }
        net.tick(2000);
        net
    }

    fn take_runtime(net: &mut Net, i: usize) -> Vec<Runtime> {
        std::mem::take(&mut net.nodes[i].ha.runtime)
    }

    #[test]
    fn replicate_follows_the_master_and_everyone_sees_it() {
        let mut net = shards_with_replicas();
        for i in 0..3 {
            assert_eq!(
                take_runtime(&mut net, 3 + i),
                vec![Runtime::Follow {
                    ip: "127.0.0.1".into(),
                    port: 7000 + i as u16
                }]
            );
            assert!(take_runtime(&mut net, i).is_empty());
        }
        let (master, replica) = (net.nodes[0].myself, net.nodes[3].myself);
        for s in &net.nodes {
            let r = &s.nodes[&replica];
            assert!(r.flags & flags::SLAVE != 0 && r.flags & flags::MASTER == 0);
            assert_eq!(r.slaveof, Some(master));
            assert!(s.ok);
            assert_eq!(s.size(), 3);
        }
        // The rules of CLUSTER REPLICATE.
        let st = &mut net.nodes[1];
        let me = st.myself;
        assert_eq!(
            st.replicate(&me, false),
            Err("ERR Can't replicate myself".into())
        );
        assert_eq!(
            st.replicate(&replica, false),
            Err("ERR I can only replicate a master, not a replica.".into())
        );
        assert!(st
            .replicate(&master, false)
            .unwrap_err()
            .contains("must be empty"));
        assert_eq!(
            st.replicate(b"nope", false),
            Err("ERR Unknown node nope".into())
        );
        assert_eq!(
            st.manual_failover(false, false, 0),
            Err("ERR You should send CLUSTER FAILOVER to a replica".into())
        );
    }

    #[test]
    fn a_failed_master_is_replaced_by_its_replica() {
        let mut net = shards_with_replicas();
        for i in 0..6 {
            take_runtime(&mut net, i);
        }
        let (old, new) = (net.nodes[0].myself, net.nodes[3].myself);
        net.up[0] = false;
        net.tick(8000);
        assert_eq!(take_runtime(&mut net, 3), vec![Runtime::Promote]);
        for i in 1..6 {
            let s = &net.nodes[i];
            assert_eq!(s.slots[0], Some(new), "node {i} sees the new owner");
            assert!(s.nodes[&new].flags & flags::MASTER != 0);
            assert!(s.ok, "node {i}: the cluster is ok again");
            assert!(s.nodes[&new].config_epoch > s.nodes[&net.nodes[2].myself].config_epoch);
        }
        // The old master comes back and replicates the new one.
        net.up[0] = true;
        net.tick(5000);
        assert_eq!(net.nodes[0].my_master(), Some(new));
        assert_eq!(
            take_runtime(&mut net, 0),
            vec![Runtime::Follow {
                ip: "127.0.0.1".into(),
                port: 7003
            }]
        );
        assert_eq!(net.nodes[1].nodes[&old].slaveof, Some(new));
        assert!(net.nodes.iter().all(|s| s.ok));
    }

    #[test]
    fn a_manual_failover_waits_for_the_paused_offset() {
        let mut net = shards_with_replicas();
        for i in 0..6 {
            take_runtime(&mut net, i);
        }
        let now = net.now;
        net.nodes[4].ha.repl_offset = 90;
        net.nodes[4].manual_failover(false, false, now).unwrap();
        net.tick(100);
        let paused = take_runtime(&mut net, 1);
        assert!(
            matches!(paused[..], [Runtime::PauseWrites { .. }]),
            "{paused:?}"
        );
        // The master stopped at 100; the replica has 90: no election yet.
        let now = net.now;
        net.nodes[1].mf_paused(100, now);
        net.tick(1000);
        assert!(net.nodes[4].me_is(flags::SLAVE));
        net.nodes[4].ha.repl_offset = 100;
        net.tick(1000);
        let new = net.nodes[4].myself;
        assert!(net.nodes[4].me_is(flags::MASTER));
        assert_eq!(take_runtime(&mut net, 4), vec![Runtime::Promote]);
        // The old master follows the new one, then releases its writes.
        assert_eq!(net.nodes[1].my_master(), Some(new));
        assert_eq!(
            take_runtime(&mut net, 1),
            vec![
                Runtime::Follow {
                    ip: "127.0.0.1".into(),
                    port: 7004
                },
                Runtime::Unpause
            ]
        );
        assert!(net.nodes.iter().all(|s| s.ok));
    }

    #[test]
    fn takeover_needs_no_votes_and_force_no_offset() {
        let mut net = shards_with_replicas();
        let now = net.now;
        net.nodes[5].manual_failover(true, true, now).unwrap();
        assert!(net.nodes[5].me_is(flags::MASTER));
        net.tick(1000);
        let new = net.nodes[5].myself;
        assert_eq!(net.nodes[2].my_master(), Some(new));
        assert_eq!(net.nodes[0].slots[SLOTS - 1], Some(new));
        // FORCE: an election without the master's offset.
        let now = net.now;
        net.nodes[3].manual_failover(true, false, now).unwrap();
        net.tick(1000);
        assert!(net.nodes[3].me_is(flags::MASTER));
        assert_eq!(net.nodes[0].my_master(), Some(net.nodes[3].myself));
    }

    #[test]
    fn a_message_naming_us_as_its_sender_changes_nothing_of_us() {
        let mut net = shards_with_replicas();
        let me = net.nodes[0].myself;
        let link = net.nodes[0].nodes[&net.nodes[1].myself].inbound.unwrap();
        let mut h = net.nodes[4].header(msg::PING);
        h.sender = me;
        let bytes = msg::encode(&h, &Body::Ping(Vec::new()));
        let now = net.now;
        net.nodes[0].received(link, &bytes, now);
        let us = &net.nodes[0].nodes[&me];
        assert_eq!(us.flags, flags::MYSELF | flags::MASTER);
        assert_eq!(us.slaveof, None);
        assert_eq!(net.nodes[0].numslots(&me), SLOTS / 3);
    }

    #[test]
    fn a_master_votes_once_per_epoch() {
        let mut net = shards_with_replicas();
        let now = net.now;
        let req = |net: &Net, from: usize, epoch: u64| {
            let mut h = net.nodes[from].header(msg::FAILOVER_AUTH_REQUEST);
            h.current_epoch = epoch;
            h.mflags = msg::FLAG0_FORCEACK;
            msg::encode(&h, &Body::Other)
        };
        let voter = &net.nodes[2];
        let (from3, from4) = (
            voter.nodes[&net.nodes[3].myself].inbound,
            voter.nodes[&net.nodes[4].myself].inbound,
        );
        let epoch = net.nodes[2].current_epoch + 1;
        let (r3, r4) = (req(&net, 3, epoch), req(&net, 4, epoch));
        net.nodes[2].received(from3.unwrap(), &r3, now);
        net.nodes[2].received(from4.unwrap(), &r4, now);
        let acks = net.nodes[2]
            .io
            .iter()
            .filter(|io| matches!(io, Io::Send(_, b) if b[13] as u16 == msg::FAILOVER_AUTH_ACK))
            .count();
        assert_eq!(acks, 1, "one vote in epoch {epoch}");
        assert_eq!(net.nodes[2].last_vote_epoch, epoch);
    }
}
