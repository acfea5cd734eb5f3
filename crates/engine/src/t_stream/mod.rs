//! Stream commands (Redis's `t_stream.c`): entries with IDs, consumer groups, and the
//! non-blocking half of XREAD / XREADGROUP BLOCK.
//!
//! - `id`: entry IDs and how clients write them;
//! - `node`: a packed node of entries sharing a master entry;
//! - `stream`: the stream value, an ordered index of nodes with the stream's counters;
//! - `cgroup`: consumer groups, consumers and pending entries;
//! - `commands`: XADD, XLEN, XRANGE, XREVRANGE, XDEL, XTRIM, XSETID;
//! - `read`: XREAD, XREADGROUP, and what the runtime needs to block them and to split them
//!   over shards;
//! - `groups`: XGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM;
//! - `info`: XINFO.

pub mod cgroup;
pub mod commands;
pub mod groups;
pub mod id;
pub mod info;
pub mod node;
pub mod read;
pub mod stream;
#[cfg(test)]
mod tests;

use shardis_resp::Reply;

use crate::command::table::Registration;
use crate::command::Merge;
use crate::error;
use crate::num;
use crate::shard::Ctx;
use crate::value::Value;

/// The keyspace event of a consumer created by any command (XGROUP CREATECONSUMER, or a read
/// or claim naming a consumer the group does not know yet).
const CONSUMER_CREATED: &str = "xgroup-createconsumer";

pub use read::{block_timeout, blocked_ready, resolve_block_ids, serve_blocked};
pub use stream::StreamValue;

pub static COMMANDS: &[Registration] = &[
    Registration::shard("xadd", commands::xadd),
    Registration::shard("xlen", commands::xlen),
    Registration::shard("xrange", commands::xrange),
    Registration::shard("xrevrange", commands::xrevrange),
    Registration::shard("xdel", commands::xdel),
    Registration::shard("xtrim", commands::xtrim),
    Registration::shard("xsetid", commands::xsetid),
    Registration::split("xread", read::xread, Merge::Concat)
        .with_getkeys(read::read_keys)
        .with_split_rule(read::SPLIT_RULE)
        .blocking(read::BLOCKING),
    Registration::split("xreadgroup", read::xreadgroup, Merge::Concat)
        .with_getkeys(read::read_keys)
        .with_split_rule(read::SPLIT_RULE)
        .blocking(read::BLOCKING),
    Registration::shard("xgroup|create", groups::xgroup),
    Registration::shard("xgroup|setid", groups::xgroup),
    Registration::shard("xgroup|destroy", groups::xgroup),
    Registration::shard("xgroup|createconsumer", groups::xgroup),
    Registration::shard("xgroup|delconsumer", groups::xgroup),
    Registration::local("xgroup|help", groups::xgroup_help),
    Registration::shard("xack", groups::xack),
    Registration::shard("xpending", groups::xpending),
    Registration::shard("xclaim", groups::xclaim),
    Registration::shard("xautoclaim", groups::xautoclaim),
    Registration::shard("xinfo|stream", info::xinfo),
    Registration::shard("xinfo|groups", info::xinfo),
    Registration::shard("xinfo|consumers", info::xinfo),
    Registration::local("xinfo|help", info::xinfo_help),
];

/// Unwraps a `Result` whose error is already the reply to send.
macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(reply) => return reply,
        }
    };
}
pub(crate) use tri;

/// The stream at `key` for reading (a hit or miss is counted): Ok(None) if absent.
fn read_stream<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<Option<&'c StreamValue>, Reply> {
    match ctx.lookup_read(key) {
        None => Ok(None),
        Some(Value::Stream(s)) => Ok(Some(s)),
        Some(_) => Err(error::wrongtype()),
    }
}

/// The stream at `key` for a read that changes consumer groups (XREADGROUP, XACK, XCLAIM:
/// Redis looks them up as reads).
fn read_stream_mut<'c>(
    ctx: &'c mut Ctx<'_>,
    key: &[u8],
) -> Result<Option<&'c mut StreamValue>, Reply> {
    match ctx.lookup_read_mut(key) {
        None => Ok(None),
        Some(Value::Stream(s)) => Ok(Some(s)),
        Some(_) => Err(error::wrongtype()),
    }
}

/// The stream at `key` for writing: Ok(None) if absent.
fn write_stream<'c>(
    ctx: &'c mut Ctx<'_>,
    key: &[u8],
) -> Result<Option<&'c mut StreamValue>, Reply> {
    match ctx.lookup_write(key) {
        None => Ok(None),
        Some(Value::Stream(s)) => Ok(Some(s)),
        Some(_) => Err(error::wrongtype()),
    }
}

/// A 64-bit integer argument, with Redis's generic error.
fn parse_int(arg: &[u8]) -> Result<i64, Reply> {
    num::parse_i64(arg).ok_or_else(error::not_integer)
}

/// A 64-bit integer argument whose error is `msg` (Redis's `getLongLongFromObjectOrReply`
/// with a message).
fn parse_int_or(arg: &[u8], msg: &'static str) -> Result<i64, Reply> {
    num::parse_i64(arg).ok_or(Reply::err(msg))
}

/// The shard clock as Redis's `mstime()`.
fn now(ctx: &Ctx<'_>) -> i64 {
    i64::try_from(ctx.now_ms).unwrap_or(i64::MAX)
}

/// Reads an argument as Redis formats it with `%s`: up to its first NUL, lossily as text.
fn c_text(arg: &[u8]) -> String {
    String::from_utf8_lossy(id::c_str(arg)).into_owned()
}

/// `NOGROUP No such key '<key>' or consumer group '<group>'` and its variants.
fn no_such_key_or_group(key: &[u8], group: &[u8], suffix: &str) -> Reply {
    Reply::error(error::sanitize(format!(
        "NOGROUP No such key '{}' or consumer group '{}'{suffix}",
        c_text(key),
        c_text(group)
    )))
}

/// An array of stream entries as Redis replies them.
fn entries_reply(entries: Vec<(id::StreamId, Reply)>) -> Reply {
    Reply::Array(entries.into_iter().map(|(_, r)| r).collect())
}
