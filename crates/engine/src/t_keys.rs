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

/// One SCAN step over this shard's keys (interim).
pub fn scan_step(
    ctx: &mut Ctx<'_>,
    cursor: u64,
    opts: &crate::scan::ScanOptions,
) -> (u64, Vec<Bytes>) {
    let mut keys = Vec::new();
    let mut cursor = cursor;
    loop {
        cursor = ctx.db().scan(cursor, |k, _| keys.push(k.clone()));
        if cursor == 0 || keys.len() >= opts.count {
            break;
        }
    }
    keys.retain(|k| opts.matches(k));
    (cursor, keys)
}

/// A random key of this shard (interim).
pub fn random_key(ctx: &mut Ctx<'_>) -> Option<Bytes> {
    let now = ctx.now_ms;
    let mut seed = ctx.rand();
    let mut rand = move || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        seed
    };
    ctx.db().random_key(&mut rand, now)
}
