//! Keyless commands that walk the shards one after another: SCAN and RANDOMKEY.

use bytes::Bytes;
use shardis_engine::ServerCmd;
use shardis_resp::Reply;

use crate::conn::session::Session;

pub async fn run_async(s: &mut Session, which: ServerCmd, args: &[Bytes]) -> Option<Reply> {
    Some(match which {
        ServerCmd::Scan => scan(s, args).await,
        ServerCmd::RandomKey => random_key(s).await,
        _ => return None,
    })
}

/// Bits of a SCAN cursor that name the shard; the rest is the shard's own cursor.
const SHARD_BITS: u32 = 10;

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type], walking shard after shard.
async fn scan(s: &mut Session, args: &[Bytes]) -> Reply {
    let cursor = match shardis_engine::scan::parse_cursor(&args[1]) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let opts = match shardis_engine::scan::parse_options(args, 2, true) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let mut shard = (cursor & ((1 << SHARD_BITS) - 1)) as usize;
    let mut inner = cursor >> SHARD_BITS;
    let db = s.client.borrow().db;
    let mut keys: Vec<Reply> = Vec::new();
    while shard < s.core.shards {
        let o = opts.clone();
        let (next, found) = s
            .core
            .run_on(shard, move |core| {
                let mut sh = core.shard.borrow_mut();
                let mut ctx = shardis_engine::Ctx::new(&mut sh, db, core.now_ms(), false);
                shardis_engine::t_server::scan_step(&mut ctx, inner, &o)
            })
            .await
            .unwrap_or((0, Vec::new()));
        keys.extend(found.into_iter().map(Reply::Bulk));
        if next != 0 {
            let cursor = (next << SHARD_BITS) | shard as u64;
            return shardis_engine::scan::reply(cursor, keys);
        }
        shard += 1;
        inner = 0;
        if keys.len() >= opts.count {
            break;
        }
    }
    let cursor = if shard >= s.core.shards {
        0
    } else {
        shard as u64
    };
    shardis_engine::scan::reply(cursor, keys)
}

/// RANDOMKEY: a random key of a random non-empty shard.
async fn random_key(s: &mut Session) -> Reply {
    let db = s.client.borrow().db;
    let n = s.core.shards;
    let start = (s.core.shard.borrow_mut().rand() % n as u64) as usize;
    for k in 0..n {
        let shard = (start + k) % n;
        let key = s
            .core
            .run_on(shard, move |core| {
                let mut sh = core.shard.borrow_mut();
                let mut ctx = shardis_engine::Ctx::new(&mut sh, db, core.now_ms(), false);
                shardis_engine::t_server::random_key(&mut ctx)
            })
            .await
            .flatten();
        if let Some(key) = key {
            return Reply::Bulk(key);
        }
    }
    Reply::Nil
}
