//! The Shardis engine: one shard's keyspace and every command as a plain function over it.
//!
//! Everything here is single-threaded and does no I/O: the runtime (`shardis-server`) owns
//! cores, sockets and files and calls into a [`shard::Shard`] with a [`shard::Ctx`]. That makes
//! a shard's behaviour deterministic and testable with plain unit tests.
//!
//! One module per data type (`t_string`, `t_hash`…), as Redis's `t_*.c` files; the command
//! table in [`command`] joins them with Redis's command facts.

pub mod command;
pub mod db;
pub mod dict;
pub mod digest;
pub mod error;
pub mod evict;
pub mod glob;
pub mod journal;
pub mod key;
pub mod lazyfree;
pub mod listpack;
pub mod notify;
pub mod num;
pub mod order_tree;
pub mod rdb;
pub mod sample;
pub mod scan;
pub mod shard;
pub mod slots;
pub mod snapshot;
pub mod t_bitops;
pub mod t_dump;
pub mod t_geo;
pub mod t_hash;
pub mod t_hll;
pub mod t_keys;
pub mod t_list;
pub mod t_memory;
pub mod t_server;
pub mod t_set;
pub mod t_sort;
pub mod t_stream;
pub mod t_string;
pub mod t_zset;
pub mod value;
pub mod watch;

#[cfg(test)]
pub(crate) mod testing;

pub use command::{lookup, Command, Exec, Fanout, Merge, ServerCmd, REGISTRY};
pub use shard::{Ctx, EngineConfig, Shard};
pub use value::Value;
