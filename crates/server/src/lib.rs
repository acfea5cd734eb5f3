//! The Shardis runtime: cores, sockets, forwarding and coordination around the engine.
//!
//! Layers, each depending only on those above it in this list:
//! - [`acl`] and [`config`]: users and their permissions, and the parameters (data, no I/O
//!   beyond reading their files).
//! - [`io`]: the core's io_uring ring, provided buffers, listening sockets, start-up probes.
//! - [`core`]: one core's state (shard, config, clients, clock, timers), its end of the mesh,
//!   and the shard's side of the shard lock and of blocking commands.
//! - [`coord`]: coordination across shards: routing, the coordinator of the two-phase lock,
//!   commands over several shards, blocking waits.
//! - [`persist`]: snapshots (taking them under the lock of every shard, writing, loading).
//! - [`conn`]: a connection's session (transaction state) and the commands that must wait.
//! - [`cmd`]: the commands the runtime carries out itself (CLIENT, CONFIG, INFO…).
//! - [`net`]: the event loop: connections' I/O and the inline hot path.
//! - [`metrics`]: the Prometheus endpoint (a thread of its own that asks the cores).
//! - [`server`]: start-up, executors, shutdown.
//!
//! Besides: [`config`], [`logging`], [`alloc`], and [`tls`] (the TLS settings and the record
//! layer of TLS connections, used by CONFIG SET, start-up and the event loop).

pub mod acl;
pub mod alloc;
pub mod cluster;
pub mod cmd;
pub mod config;
pub mod conn;
pub mod coord;
pub mod core;
pub mod io;
pub mod logging;
pub mod metrics;
pub mod migrate;
pub mod net;
pub mod persist;
pub mod primary;
pub mod process;
pub mod replica;
pub mod script;
pub mod server;
pub mod tls;
pub mod tls_link;

/// The Redis version Shardis answers as (clients feature-detect on it; snapshots carry it).
pub const REDIS_VERSION: &str = "7.0.15";
