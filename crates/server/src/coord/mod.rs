//! Coordination across shards: where keys live, the coordinator's side of the two-phase shard
//! lock, commands whose keys span shards, and blocking waits.

pub mod blocking;
pub mod fanout;
pub mod route;
pub mod txn;
