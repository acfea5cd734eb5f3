//! Cluster mode inside one process (`cluster-enabled yes`): every shard is a Redis Cluster
//! node of its own, owning one contiguous range of the 16384 hash slots and listening on a
//! port of its own, so a cluster-aware client sends each key straight to the core that owns
//! it. The shared port stays for clients that are not cluster-aware (forwarding as always).
//! On the bus, `cluster-node-per-shard no` makes the whole process one node instead,
//! announced at the shared port (see [`node_per_shard`]).
//!
//! What is here is fixed for the life of the process: the node ids (kept in
//! `cluster-config-file`, `nodes.rs`) and the slot ranges. The addresses are announced from
//! the configuration in force (`cluster-announce-ip`, `cluster-announce-port`).

pub mod bus;
pub mod nodes;
pub mod redirect;
pub mod view;

use std::sync::OnceLock;

use crate::config::Config;
use crate::coord::route::SLOTS;

/// The cluster: one node per shard.
pub struct Topology {
    /// Each shard's node id (40 hex digits), by shard.
    pub ids: Vec<String>,
}

static TOPOLOGY: OnceLock<Topology> = OnceLock::new();

/// Whether the server runs in cluster mode (of one process, or on the bus).
pub fn enabled() -> bool {
    TOPOLOGY.get().is_some() || bus::enabled()
}

/// The cluster, in cluster mode.
pub fn topology() -> Option<&'static Topology> {
    TOPOLOGY.get()
}

/// Whether every shard is a node of its own (the default), or the process is one node
/// (`cluster-bus yes` with `cluster-node-per-shard no`): announced at `port` and bus port
/// `cluster-port` (or `port` + 10000) as a Redis node is, its shards behind it as outside
/// cluster mode. Replication copies a whole process, so only a process that is one node can
/// be a replica: this is how a process of several shards serves as one.
pub fn node_per_shard(config: &Config) -> bool {
    !config.get_bool("cluster-bus") || config.get_bool("cluster-node-per-shard")
}

/// At start-up, before anything binds, with `cluster-enabled yes`: whether the nodes' ports
/// (and the bus ports announced) fit below 65536.
pub fn check_ports(config: &Config, shards: usize) -> Result<(), String> {
    let bus = config.get_bool("cluster-bus") && config.get_bool("cluster-enabled");
    if !config.get_bool("cluster-node-per-shard") && !bus {
        return Err(
            "cluster-node-per-shard no needs the cluster bus (cluster-bus yes and cluster-enabled yes)"
                .into(),
        );
    }
    if !config.get_bool("cluster-enabled") {
        return Ok(());
    }
    let port = config.get_i64("port");
    if !node_per_shard(config) {
        if port == 0 {
            return Err("cluster mode needs a TCP port (port 0 given)".into());
        }
        if config.get_i64("cluster-port") == 0 && port + 10000 > 65535 {
            return Err(format!(
                "cluster mode: the bus port (port + 10000) goes past 65535 with port {port}; lower `port` or set `cluster-port`"
            ));
        }
        return Ok(());
    }
    if port == 0 {
        return Err("cluster mode needs a TCP port (port 0 given): each shard listens on port + 1 + its index".into());
    }
    if port + shards as i64 > 65535 {
        return Err(format!(
            "cluster mode: the shards' ports ({} to {}) go past 65535; lower `port` or `shards`",
            port + 1,
            port + shards as i64
        ));
    }
    if config.get_i64("cluster-port") == 0 && port + 10000 + shards as i64 > 65535 {
        return Err(format!(
            "cluster mode: the announced bus ports (port + 10000 + 1 + shard) go past 65535 with port {port}; lower `port` or set `cluster-port`"
        ));
    }
    Ok(())
}

/// At start-up (after the chdir to `dir`), with `cluster-enabled yes`: reads or creates the
/// node ids in `cluster-config-file` and switches routing to slot ranges. Nothing is done
/// otherwise.
pub fn init(config: &Config, shards: usize) -> Result<(), String> {
    if !config.get_bool("cluster-enabled") {
        return Ok(());
    }
    crate::coord::route::use_slot_ranges();
    if config.get_bool("cluster-bus") {
        // Every node's id and view belong to the bus (`bus`); none is fixed here.
        return bus::prepare(config, shards);
    }
    let ids = nodes::load_or_create(config, shards)?;
    TOPOLOGY
        .set(Topology { ids })
        .map_err(|_| "cluster mode initialised twice".to_string())
}

/// The first and last slot of `shard`'s range among `shards`: the slots `s` with
/// `s * shards / 16384 == shard` (`route::shard_of_slot`).
pub fn slot_range(shard: usize, shards: usize) -> (u16, u16) {
    let first = |i: usize| (i * SLOTS as usize).div_ceil(shards.max(1)) as u16;
    let end = if shard + 1 >= shards {
        SLOTS
    } else {
        first(shard + 1)
    };
    (first(shard), end - 1)
}

/// Where node `shard` (the process's node, when it is one: [`node_per_shard`]) is
/// announced: its IP, client port, bus port, and the TLS port clients may use instead
/// (Redis's `pport` with `tls-cluster no`; 0: none).
pub struct NodeAddr {
    pub ip: String,
    pub port: u32,
    /// The bus port announced (`cluster-announce-bus-port`, else the one listened on).
    pub bus_port: u32,
    /// The bus port listened on (`cluster-port`, else `port` + 10000).
    pub bus_listen: u32,
    pub tls_port: u32,
}

impl NodeAddr {
    /// `shard`'s address as announced by `config`. `local_ip` (the address the asking
    /// client connected to) stands in for an empty `cluster-announce-ip`: every node of the
    /// process is reachable where the client reached this one.
    pub fn of(config: &Config, shard: usize, local_ip: &str) -> NodeAddr {
        let announced = config.get("cluster-announce-ip");
        let ip = if announced.is_empty() {
            local_ip
        } else {
            announced
        };
        let base = match config.get_u64("cluster-announce-port") {
            0 => config.get_u64("port"),
            p => p,
        };
        let listen_base = match config.get_u64("cluster-port") {
            0 => config.get_u64("port") + 10000,
            p => p,
        };
        let bus_base = match config.get_u64("cluster-announce-bus-port") {
            0 => listen_base,
            p => p,
        };
        // A node per shard sits beside the shared port; the process's one node is on it.
        let offset = if node_per_shard(config) {
            1 + shard as u32
        } else {
            0
        };
        // Only the process's one node answers on `tls-port`; an announced one is the
        // operator's to give.
        let tls_port = match config.get_u64("cluster-announce-tls-port") {
            0 if offset == 0 => config.get_u64("tls-port") as u32,
            0 => 0,
            p => p as u32 + offset,
        };
        NodeAddr {
            ip: ip.to_string(),
            port: base as u32 + offset,
            bus_port: bus_base as u32 + offset,
            bus_listen: listen_base as u32 + offset,
            tls_port,
        }
    }
}

/// The IP part of a socket address as `listen::addresses` writes it (`ip:port`, IPv6
/// without brackets).
pub fn ip_of(addr: &str) -> &str {
    addr.rsplit_once(':').map_or(addr, |(ip, _)| ip)
}

/// The port shard `shard` listens on for cluster-aware clients.
pub fn listen_port(port: u16, shard: usize) -> u16 {
    port.saturating_add(1).saturating_add(shard as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coord::route::shard_of_slot_in_ranges;

    #[test]
    fn ranges_cover_every_slot_once_and_match_routing() {
        for shards in [1, 2, 3, 5, 7, 64, 1024] {
            let mut next = 0u32;
            for shard in 0..shards {
                let (first, last) = slot_range(shard, shards);
                assert_eq!(first as u32, next, "shards {shards} shard {shard}");
                assert!(last >= first);
                for slot in [first, last] {
                    assert_eq!(shard_of_slot_in_ranges(slot, shards), shard);
                }
                next = last as u32 + 1;
            }
            assert_eq!(next, SLOTS as u32);
        }
        assert_eq!(slot_range(0, 2), (0, 8191));
        assert_eq!(slot_range(1, 2), (8192, 16383));
        assert_eq!(slot_range(0, 3), (0, 5461));
        assert_eq!(slot_range(1, 3), (5462, 10922));
    }

    #[test]
    fn ip_of_strips_the_port() {
        assert_eq!(ip_of("127.0.0.1:7000"), "127.0.0.1");
        assert_eq!(ip_of("::1:7000"), "::1");
    }
}
