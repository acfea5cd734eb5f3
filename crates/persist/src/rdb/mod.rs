//! Redis 7.0's RDB format (version 10): constants, the error type, the writer and reader of
//! the file's primitives, the value encodings, and the file's framing.
//!
//! - [`write`]: lengths, strings (integer, LZF and raw encodings), doubles, times, opcodes;
//! - [`read`]: the same read back from a [`read::Source`], every length checked against the
//!   bytes left before anything is allocated;
//! - [`value`]: the neutral decoded form of a value ([`RdbValue`]) and the decoding of every
//!   type Redis 7.0 loads, with the encoders Shardis writes (those Redis 7.0 writes);
//! - [`stream`]: stream nodes as Redis lays them out in listpacks;
//! - [`file`]: a whole file: header, aux fields, databases, keys with expiry, end and CRC.

pub mod file;
pub mod read;
pub mod stream;
pub mod value;
pub mod write;

pub use file::{FileReader, Item};
pub use read::{Reader, Source};
pub use value::{Decoded, RdbValue, SetMembers};
pub use write::Writer;

/// The RDB version Shardis writes (Redis 7.0's).
pub const RDB_VERSION: u16 = 10;

/// Value types.
pub mod types {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const HASH: u8 = 4;
    pub const ZSET_2: u8 = 5;
    pub const MODULE: u8 = 6;
    pub const MODULE_2: u8 = 7;
    pub const HASH_ZIPMAP: u8 = 9;
    pub const LIST_ZIPLIST: u8 = 10;
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const HASH_ZIPLIST: u8 = 13;
    pub const LIST_QUICKLIST: u8 = 14;
    pub const STREAM_LISTPACKS: u8 = 15;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
    pub const STREAM_LISTPACKS_2: u8 = 19;

    /// Whether `t` is a value type Redis 7.0 knows.
    pub fn is_object_type(t: u8) -> bool {
        t <= 7 || (9..=19).contains(&t)
    }
}

/// Opcodes between keys.
pub mod opcodes {
    pub const FUNCTION2: u8 = 245;
    pub const FUNCTION: u8 = 246;
    pub const MODULE_AUX: u8 = 247;
    pub const IDLE: u8 = 248;
    pub const FREQ: u8 = 249;
    pub const AUX: u8 = 250;
    pub const RESIZEDB: u8 = 251;
    pub const EXPIRETIME_MS: u8 = 252;
    pub const EXPIRETIME: u8 = 253;
    pub const SELECTDB: u8 = 254;
    pub const EOF: u8 = 255;
}

/// Quicklist v2 node containers.
pub const QUICKLIST_NODE_PLAIN: u64 = 1;
pub const QUICKLIST_NODE_PACKED: u64 = 2;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The input ends before the data it describes.
    Truncated,
    /// The bytes are not a valid encoding: what was wrong.
    Corrupt(&'static str),
    /// Valid, but describing what Shardis cannot hold (a module value, a newer version).
    Unsupported(String),
}

impl Error {
    pub const fn corrupt(what: &'static str) -> Error {
        Error::Corrupt(what)
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Truncated => f.write_str("unexpected end of data"),
            Error::Corrupt(what) => write!(f, "corrupt data: {what}"),
            Error::Unsupported(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
