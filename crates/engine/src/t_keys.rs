//! Generic key commands (Redis's `db.c` / `expire.c`): DEL, EXISTS, EXPIRE, TTL, RENAME…

use bytes::Bytes;
use shardis_resp::Reply;

use crate::command::table::Registration;
use crate::command::Merge;
use crate::shard::Ctx;

pub static COMMANDS: &[Registration] = &[
    Registration::split("del", del, Merge::SumInt),
    Registration::split("exists", exists, Merge::SumInt),
];

/// DEL key [key ...]
pub fn del(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    Reply::Int(args[1..].iter().filter(|k| ctx.delete(k)).count() as i64)
}

/// EXISTS key [key ...] (a key named twice counts twice)
pub fn exists(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    Reply::Int(args[1..].iter().filter(|k| ctx.exists(k)).count() as i64)
}
