//! Keyless commands over a shard's whole data: DBSIZE, FLUSHDB, FLUSHALL, SWAPDB, KEYS.
//! The runtime runs them on every shard and merges the replies.

use bytes::Bytes;
use shardis_resp::Reply;

use crate::command::table::Registration;
use crate::command::Merge;
use crate::error;
use crate::shard::Ctx;

pub static COMMANDS: &[Registration] = &[
    Registration::all_shards("dbsize", dbsize, Merge::SumInt),
    Registration::all_shards("flushdb", flushdb, Merge::Ok),
    Registration::all_shards("flushall", flushall, Merge::Ok),
];

/// DBSIZE
pub fn dbsize(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Reply {
    Reply::Int(ctx.db().len() as i64)
}

/// Checks the optional ASYNC|SYNC argument of FLUSHDB / FLUSHALL.
fn flush_mode_ok(args: &[Bytes]) -> bool {
    match args.len() {
        1 => true,
        2 => args[1].eq_ignore_ascii_case(b"async") || args[1].eq_ignore_ascii_case(b"sync"),
        _ => false,
    }
}

/// FLUSHDB [ASYNC|SYNC]
pub fn flushdb(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if !flush_mode_ok(args) {
        return error::syntax();
    }
    let n = ctx.db().len() as u64;
    ctx.db().clear();
    ctx.dirty(n);
    Reply::Ok
}

/// FLUSHALL [ASYNC|SYNC]
pub fn flushall(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if !flush_mode_ok(args) {
        return error::syntax();
    }
    let mut n = 0;
    for db in &mut ctx.shard.dbs {
        n += db.len() as u64;
        db.clear();
    }
    ctx.dirty(n.max(1));
    Reply::Ok
}
