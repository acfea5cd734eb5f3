//! Shardis's persistence formats, pure (no I/O, no clock): everything here turns values into
//! bytes and back, so it can be tested exhaustively and fed hostile input.
//!
//! - [`rdb`]: Redis 7.0's RDB format (version 10): the file framing (header, aux fields,
//!   databases, expiry, end marker and CRC64), the encodings of every value type, and the
//!   older encodings Redis 7.0 still loads (ziplist, zipmap, intset, quicklist v1, streams v1);
//! - [`dump`]: DUMP/RESTORE payloads (a value, the RDB version, a CRC64);
//! - [`aof`]: the append-only log's records (length and checksum framed, with transaction ids)
//!   and the detection of torn, zero-padded or corrupt tails;
//! - the compact containers Redis serialises as opaque strings: [`listpack`], [`ziplist`],
//!   [`intset`], [`zipmap`].
//!
//! Dependency direction: `shardis-engine` depends on this crate (DUMP/RESTORE and snapshots
//! convert the engine's values with these encoders and decoders); this crate knows nothing
//! of the engine's types, only Redis's formats and a neutral decoded form ([`rdb::RdbValue`]).
//!
//! Decoding never panics and never allocates more than the input could describe: every
//! length is checked against the bytes that remain before anything is reserved.

pub mod aof;
pub mod crc;
pub mod dump;
pub mod intset;
pub mod listpack;
pub mod lzf;
pub mod rdb;
pub mod ziplist;
pub mod zipmap;

pub use rdb::{Error, Result};
