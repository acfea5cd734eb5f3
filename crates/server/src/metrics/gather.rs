//! What a scrape reports, read on every core through the fan-out (`Core::broadcast`): each
//! core copies its own figures, so nothing on the command path is shared or atomic.

use std::rc::Rc;

use crate::core::counters::ForwardingFigures;
use crate::core::{memory, Core, CoreStats};

/// One core's figures: its connections' and its shard's.
#[derive(Debug, Default)]
pub struct ShardFigures {
    pub clients: usize,
    pub blocked_clients: usize,
    pub stats: CoreStats,
    /// (command id, calls) of the commands its connections sent.
    pub calls: Vec<(usize, u64)>,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub expired_keys: u64,
    pub evicted_keys: u64,
    /// Changes since the last snapshot.
    pub dirty: u64,
    /// (keys, keys with a TTL) per database.
    pub dbs: Vec<(usize, usize)>,
    /// What the core's heap holds (its data, connections and buffers).
    pub used_memory: u64,
    /// The core's share of `maxmemory` (0 without a limit).
    pub maxmemory_share: u64,
    pub forwarding: ForwardingFigures,
}

/// Figures of the whole server at one scrape.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// In shard order.
    pub shards: Vec<ShardFigures>,
    pub uptime_secs: u64,
    /// What INFO calls `used_memory`: every core's heap and the other threads'.
    pub used_memory: u64,
    pub maxmemory: u64,
    pub bgsave_in_progress: bool,
    pub last_save_unix: u64,
    pub last_bgsave_ok: bool,
    pub saves: u64,
}

/// Reads every core's figures (run on one core, as a task).
pub async fn snapshot(core: &Rc<Core>) -> Snapshot {
    let shards = core
        .broadcast(|core| {
            let shard = core.shard.borrow();
            let clients = core.clients.borrow();
            let mem = memory::report(core);
            ShardFigures {
                clients: clients.len(),
                blocked_clients: clients
                    .values()
                    .filter(|c| c.try_borrow().is_ok_and(|c| c.is_blocked()))
                    .count(),
                stats: core.stats.get(),
                calls: core.records.borrow().received_calls(),
                keyspace_hits: shard.stats.keyspace_hits,
                keyspace_misses: shard.stats.keyspace_misses,
                expired_keys: shard.expired_keys(),
                evicted_keys: shard.stats.evicted_keys,
                dirty: shard.dirty,
                dbs: shard
                    .dbs
                    .iter()
                    .map(|d| (d.len(), d.volatile_len()))
                    .collect(),
                used_memory: mem.used,
                maxmemory_share: mem.share,
                forwarding: core.forwarding.figures(),
            }
        })
        .await;
    let (last_bgsave_ok, saves) = crate::persist::last_outcome();
    Snapshot {
        shards,
        uptime_secs: core.started.elapsed().as_secs(),
        used_memory: crate::alloc::total_used().max(0) as u64,
        maxmemory: core.config.borrow().get_u64("maxmemory"),
        bgsave_in_progress: crate::persist::in_progress(),
        last_save_unix: crate::persist::last_save(),
        last_bgsave_ok,
        saves,
    }
}
