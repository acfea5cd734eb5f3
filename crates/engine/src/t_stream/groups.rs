//! Consumer group commands: XGROUP (CREATE, SETID, DESTROY, CREATECONSUMER, DELCONSUMER,
//! HELP), XACK, XPENDING, XCLAIM and XAUTOCLAIM.

use bytes::Bytes;
use shardis_resp::Reply;

use super::cgroup::{ConsumerGroup, DeliveryCount};
use super::commands::{empty_stream, parse_ids};
use super::id::{self, c_str, is_word, StreamId};
use super::{
    c_text, no_such_key_or_group, now, parse_int, parse_int_or, read_stream, read_stream_mut, tri,
    write_stream, CONSUMER_CREATED,
};
use crate::error;
use crate::notify::STREAM;
use crate::shard::Ctx;
use crate::t_keys::help_reply;

const ENTRIES_READ_RANGE: &str = "ERR value for ENTRIESREAD must be positive or -1";
const KEY_REQUIRED: &str = "ERR The XGROUP subcommand requires the key to exist. Note that for \
                            CREATE you may want to use the MKSTREAM option to create an empty \
                            stream automatically.";
const BUSYGROUP: &str = "BUSYGROUP Consumer Group name already exists";
const CLAIM_MIN_IDLE: &str = "ERR Invalid min-idle-time argument for XCLAIM";
const CLAIM_IDLE: &str = "ERR Invalid IDLE option argument for XCLAIM";
const CLAIM_TIME: &str = "ERR Invalid TIME option argument for XCLAIM";
const CLAIM_RETRYCOUNT: &str = "ERR Invalid RETRYCOUNT option argument for XCLAIM";
const AUTOCLAIM_MIN_IDLE: &str = "ERR Invalid min-idle-time argument for XAUTOCLAIM";
const AUTOCLAIM_COUNT: &str = "ERR COUNT must be > 0";

/// XAUTOCLAIM's largest COUNT (Redis bounds it so that its buffers cannot overflow).
const AUTOCLAIM_MAX_COUNT: i64 = i64::MAX / 16;
/// XAUTOCLAIM looks at up to this many pending entries per entry it may return.
const AUTOCLAIM_ATTEMPTS_PER_ENTRY: u64 = 10;
const AUTOCLAIM_DEFAULT_COUNT: i64 = 100;

fn no_such_group(key: &[u8], group: &[u8]) -> Reply {
    Reply::error(error::sanitize(format!(
        "NOGROUP No such consumer group '{}' for key name '{}'",
        c_text(group),
        c_text(key)
    )))
}

/// XGROUP CREATE key group id|$ [MKSTREAM] [ENTRIESREAD n], XGROUP SETID key group id|$
/// [ENTRIESREAD n], XGROUP DESTROY key group, XGROUP CREATECONSUMER key group consumer,
/// XGROUP DELCONSUMER key group consumer: one function, as in Redis, because they share
/// their checks and the order of their errors.
pub fn xgroup(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let sub = args[1].to_ascii_lowercase();
    let (create, setid) = (sub == b"create", sub == b"setid");
    let mut mkstream = false;
    let mut entries_read = None;
    let mut i = 5;
    while i < args.len() {
        if create && is_word(&args[i], "mkstream") {
            mkstream = true;
            i += 1;
        } else if (create || setid) && is_word(&args[i], "entriesread") && i + 1 < args.len() {
            entries_read = match tri!(parse_int(&args[i + 1])) {
                -1 => None,
                n if n >= 0 => Some(n),
                _ => return Reply::err(ENTRIES_READ_RANGE),
            };
            i += 2;
        } else {
            return error::subcommand_syntax(args);
        }
    }
    let (key, group) = (&args[2], &args[3]);
    let exists = match write_stream(ctx, key) {
        Ok(s) => s.map(|s| s.groups.contains_key(&group[..])),
        Err(e) => return e,
    };
    if !mkstream {
        match exists {
            None => return Reply::err(KEY_REQUIRED),
            Some(false) if !create && sub != b"destroy" => return no_such_group(key, group),
            _ => {}
        }
    }
    let now = now(ctx);
    match &sub[..] {
        b"create" if args.len() <= 8 => {
            let last_id = if c_str(&args[4]) == b"$" {
                match write_stream(ctx, key) {
                    Ok(Some(s)) => s.last_id(),
                    _ => StreamId::MIN,
                }
            } else {
                tri!(id::parse_strict_id(&args[4]))
            };
            if exists.is_none() {
                ctx.set(key, empty_stream());
            }
            let Ok(Some(stream)) = write_stream(ctx, key) else {
                return Reply::err(KEY_REQUIRED);
            };
            if stream.groups.contains_key(&group[..]) {
                return Reply::err(BUSYGROUP);
            }
            stream
                .groups
                .insert(group.clone(), ConsumerGroup::new(last_id, entries_read));
            if exists.is_some() {
                ctx.dirty(1);
            }
            ctx.notify(STREAM, "xgroup-create", key);
            Reply::Ok
        }
        b"setid" if args.len() == 5 || args.len() == 7 => {
            let Ok(Some(stream)) = write_stream(ctx, key) else {
                return Reply::err(KEY_REQUIRED);
            };
            let last_id = if c_str(&args[4]) == b"$" {
                stream.last_id()
            } else {
                tri!(id::parse_id(&args[4], 0))
            };
            if let Some(g) = stream.groups.get_mut(&group[..]) {
                g.last_id = last_id;
                g.entries_read = entries_read;
            }
            ctx.dirty(1);
            ctx.notify(STREAM, "xgroup-setid", key);
            Reply::Ok
        }
        b"destroy" => {
            let removed = match write_stream(ctx, key) {
                Ok(Some(s)) => s.groups.remove(&group[..]).is_some(),
                _ => false,
            };
            if !removed {
                return Reply::Int(0);
            }
            ctx.dirty(1);
            ctx.notify(STREAM, "xgroup-destroy", key);
            // Clients blocked in XREADGROUP on this group get -NOGROUP.
            ctx.signal_ready(key);
            Reply::Int(1)
        }
        b"createconsumer" => {
            let created = match write_stream(ctx, key) {
                Ok(Some(s)) => s
                    .groups
                    .get_mut(&group[..])
                    .is_some_and(|g| g.create_consumer(&args[4], now)),
                _ => false,
            };
            if created {
                ctx.dirty(1);
                ctx.notify(STREAM, CONSUMER_CREATED, key);
            }
            Reply::Int(i64::from(created))
        }
        b"delconsumer" => {
            let pending = match write_stream(ctx, key) {
                Ok(Some(s)) => s
                    .groups
                    .get_mut(&group[..])
                    .and_then(|g| g.delete_consumer(&args[4])),
                _ => None,
            };
            if pending.is_some() {
                ctx.dirty(1);
                ctx.notify(STREAM, "xgroup-delconsumer", key);
            }
            Reply::Int(pending.unwrap_or(0) as i64)
        }
        _ => error::subcommand_syntax(args),
    }
}

/// XGROUP HELP
pub fn xgroup_help(_ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Reply {
    help_reply(
        "XGROUP",
        &[
            "CREATE <key> <groupname> <id|$> [option]",
            "    Create a new consumer group. Options are:",
            "    * MKSTREAM",
            "      Create the empty stream if it does not exist.",
            "    * ENTRIESREAD entries_read",
            "      Set the group's entries_read counter (internal use).",
            "CREATECONSUMER <key> <groupname> <consumer>",
            "    Create a new consumer in the specified group.",
            "DELCONSUMER <key> <groupname> <consumer>",
            "    Remove the specified consumer.",
            "DESTROY <key> <groupname>",
            "    Remove the specified group.",
            "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
            "    Set the current group ID and entries_read counter.",
        ],
    )
}

/// XACK key group id [id ...]
pub fn xack(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let group = match read_stream_mut(ctx, &args[1]) {
        Ok(s) => s.and_then(|s| s.groups.get_mut(&args[2][..])),
        Err(e) => return e,
    };
    // No key or group: nothing to acknowledge (the IDs are not even parsed).
    let Some(group) = group else {
        return Reply::Int(0);
    };
    let ids = tri!(parse_ids(&args[3..]));
    let acked = ids
        .into_iter()
        .filter(|&id| group.remove_pending(id))
        .count();
    ctx.dirty(acked as u64);
    Reply::Int(acked as i64)
}

/// XPENDING key group [[IDLE min-idle-time] start end count [consumer]]
pub fn xpending(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let argc = args.len();
    if argc != 3 && !(6..=9).contains(&argc) {
        return error::syntax();
    }
    let mut extended = None;
    if argc >= 6 {
        let mut at = 3;
        let mut min_idle = 0;
        if is_word(&args[3], "idle") {
            min_idle = tri!(parse_int(&args[4]));
            if argc < 8 {
                return error::syntax();
            }
            at = 5;
        }
        let count = tri!(parse_int(&args[at + 2])).max(0) as u64;
        let start = tri!(id::parse_range_start(&args[at]));
        let end = tri!(id::parse_range_end(&args[at + 1]));
        let consumer = args.get(at + 3);
        extended = Some((min_idle, start, end, count, consumer));
    }
    let now = now(ctx);
    let stream = match read_stream(ctx, &args[1]) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let Some(group) = stream.and_then(|s| s.groups.get(&args[2][..])) else {
        return no_such_key_or_group(&args[1], &args[2], "");
    };
    let Some((min_idle, start, end, mut count, consumer)) = extended else {
        return pending_summary(group);
    };
    let ids: Box<dyn Iterator<Item = StreamId>> = match consumer {
        Some(name) => match group.consumer(name) {
            Some(c) => Box::new(c.pel.range(start..=end).copied()),
            None => return Reply::Array(Vec::new()),
        },
        None => Box::new(group.pel.range(start..=end).map(|(id, _)| *id)),
    };
    let mut out = Vec::new();
    for id in ids {
        if count == 0 {
            break;
        }
        let Some(nack) = group.pel.get(&id) else {
            continue;
        };
        let idle = now.wrapping_sub(nack.delivery_time);
        if min_idle != 0 && idle < min_idle {
            continue;
        }
        count -= 1;
        out.push(Reply::Array(vec![
            id.reply(),
            Reply::Bulk(group.owner(nack)),
            Reply::Int(idle.max(0)),
            Reply::Int(nack.delivery_count as i64),
        ]));
    }
    Reply::Array(out)
}

/// XPENDING key group: the count, the smallest and largest pending IDs, and the consumers
/// with pending entries.
fn pending_summary(group: &ConsumerGroup) -> Reply {
    let (Some((first, _)), Some((last, _))) =
        (group.pel.first_key_value(), group.pel.last_key_value())
    else {
        return Reply::Array(vec![Reply::Int(0), Reply::Nil, Reply::Nil, Reply::NilArray]);
    };
    let consumers = group
        .consumers()
        .filter(|c| !c.pel.is_empty())
        .map(|c| {
            Reply::Array(vec![
                Reply::Bulk(c.name.clone()),
                Reply::bulk_int(c.pel.len() as i64),
            ])
        })
        .collect();
    Reply::Array(vec![
        Reply::Int(group.pel.len() as i64),
        first.reply(),
        last.reply(),
        Reply::Array(consumers),
    ])
}

/// XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME unix-time-ms]
/// [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID id]
pub fn xclaim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (key, group_name, consumer) = (&args[1], &args[2], &args[3]);
    let now = now(ctx);
    let stream = match read_stream_mut(ctx, key) {
        Ok(Some(s)) if s.groups.contains_key(&group_name[..]) => s,
        Ok(_) => return no_such_key_or_group(key, group_name, ""),
        Err(e) => return e,
    };
    let min_idle = tri!(parse_int_or(&args[4], CLAIM_MIN_IDLE)).max(0);
    // The IDs run until the first argument that is not one; the options follow.
    let mut ids = Vec::new();
    let mut j = 5;
    while let Some(id) = args.get(j).and_then(|a| id::parse_strict_id(a).ok()) {
        ids.push(id);
        j += 1;
    }
    let (mut force, mut justid) = (false, false);
    let mut delivery_time = None;
    let mut retry_count = None;
    let mut last_id = StreamId::MIN;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = &args[j];
        if is_word(opt, "force") {
            force = true;
        } else if is_word(opt, "justid") {
            justid = true;
        } else if is_word(opt, "idle") && more > 0 {
            j += 1;
            delivery_time = Some(now.wrapping_sub(tri!(parse_int_or(&args[j], CLAIM_IDLE))));
        } else if is_word(opt, "time") && more > 0 {
            j += 1;
            delivery_time = Some(tri!(parse_int_or(&args[j], CLAIM_TIME)));
        } else if is_word(opt, "retrycount") && more > 0 {
            j += 1;
            retry_count = Some(tri!(parse_int_or(&args[j], CLAIM_RETRYCOUNT)));
        } else if is_word(opt, "lastid") && more > 0 {
            j += 1;
            last_id = tri!(id::parse_strict_id(&args[j]));
        } else {
            return Reply::error(error::sanitize(format!(
                "ERR Unrecognized XCLAIM option '{}'",
                c_text(opt)
            )));
        }
        j += 1;
    }
    // A bogus time (before the epoch or in the future) means now, as in Redis.
    let delivery_time = delivery_time
        .filter(|t| (0..=now).contains(t))
        .unwrap_or(now);
    let count = match retry_count {
        Some(n) if n >= 0 => DeliveryCount::Set(n as u64),
        _ if justid => DeliveryCount::Keep,
        _ => DeliveryCount::Increment,
    };
    let mut raised_last_id = false;
    if let Some(group) = stream.groups.get_mut(&group_name[..]) {
        if last_id > group.last_id {
            group.last_id = last_id;
            raised_last_id = true;
        }
    }
    let mut writes = 0;
    let mut out = Vec::new();
    let mut consumer_ready = false;
    let mut consumer_created = false;
    for id in ids {
        let entry = stream.entry(id);
        let Some(group) = stream.groups.get_mut(&group_name[..]) else {
            break;
        };
        let pending = group.pel.get(&id).map(|n| n.delivery_time);
        // An entry deleted from the stream leaves the PEL.
        let Some(entry) = entry else {
            if group.remove_pending(id) {
                writes += 1;
            }
            continue;
        };
        match pending {
            None if !force => continue,
            Some(time) if min_idle != 0 && now.wrapping_sub(time) < min_idle => continue,
            _ => {}
        }
        if !consumer_ready {
            consumer_created = group.touch_consumer(consumer, now);
            consumer_ready = true;
        }
        group.claim(id, consumer, delivery_time, count);
        out.push(if justid { id.reply() } else { entry });
        writes += 1;
    }
    // Moving the group's last ID is one more write, unless a claim already carried it.
    if raised_last_id && writes == 0 {
        writes = 1;
    }
    if consumer_created {
        ctx.notify(STREAM, CONSUMER_CREATED, key);
    }
    ctx.dirty(writes);
    Reply::Array(out)
}

/// XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]
pub fn xautoclaim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (key, group_name, consumer) = (&args[1], &args[2], &args[3]);
    let min_idle = tri!(parse_int_or(&args[4], AUTOCLAIM_MIN_IDLE)).max(0);
    let start = tri!(id::parse_range_start(&args[5]));
    let mut count = AUTOCLAIM_DEFAULT_COUNT;
    let mut justid = false;
    let mut rest = &args[6..];
    while let [opt, tail @ ..] = rest {
        match tail {
            [n, tail @ ..] if is_word(opt, "count") => {
                count = tri!(parse_int_or(n, AUTOCLAIM_COUNT));
                if !(1..=AUTOCLAIM_MAX_COUNT).contains(&count) {
                    return Reply::err(AUTOCLAIM_COUNT);
                }
                rest = tail;
            }
            _ if is_word(opt, "justid") => {
                justid = true;
                rest = tail;
            }
            _ => return error::syntax(),
        }
    }
    let now = now(ctx);
    let stream = match read_stream_mut(ctx, key) {
        Ok(Some(s)) if s.groups.contains_key(&group_name[..]) => s,
        Ok(_) => return no_such_key_or_group(key, group_name, ""),
        Err(e) => return e,
    };
    let mut count = count as u64;
    let mut attempts = count.saturating_mul(AUTOCLAIM_ATTEMPTS_PER_ENTRY);
    let mut claimed = Vec::new();
    let mut deleted = Vec::new();
    let mut consumer_ready = false;
    let mut consumer_created = false;
    let mut writes = 0u64;
    // The last pending entry looked at: the walk resumes after it.
    let mut last_seen: Option<StreamId> = None;
    let delivery = if justid {
        DeliveryCount::Keep
    } else {
        DeliveryCount::Increment
    };
    loop {
        if attempts == 0 || count == 0 {
            break;
        }
        attempts -= 1;
        let Some(group) = stream.groups.get(&group_name[..]) else {
            break;
        };
        let next = match last_seen {
            None => group.pel.range(start..).next(),
            Some(seen) => group
                .pel
                .range((std::ops::Bound::Excluded(seen), std::ops::Bound::Unbounded))
                .next(),
        };
        let Some((&id, nack)) = next else {
            break;
        };
        let delivered_at = nack.delivery_time;
        last_seen = Some(id);
        let entry = stream.entry(id);
        let Some(group) = stream.groups.get_mut(&group_name[..]) else {
            break;
        };
        let Some(entry) = entry else {
            group.remove_pending(id);
            deleted.push(id.reply());
            count -= 1;
            writes += 1;
            continue;
        };
        if min_idle != 0 && now.wrapping_sub(delivered_at) < min_idle {
            continue;
        }
        if !consumer_ready {
            consumer_created = group.touch_consumer(consumer, now);
            consumer_ready = true;
        }
        group.claim(id, consumer, now, delivery);
        claimed.push(if justid { id.reply() } else { entry });
        count -= 1;
        writes += 1;
    }
    // The cursor is the next pending entry after the last one looked at.
    let cursor = stream
        .groups
        .get(&group_name[..])
        .and_then(|g| match last_seen {
            None => g.pel.range(start..).next(),
            Some(seen) => g
                .pel
                .range((std::ops::Bound::Excluded(seen), std::ops::Bound::Unbounded))
                .next(),
        })
        .map_or(StreamId::MIN, |(id, _)| *id);
    if consumer_created {
        ctx.notify(STREAM, CONSUMER_CREATED, key);
    }
    ctx.dirty(writes);
    Reply::Array(vec![
        cursor.reply(),
        Reply::Array(claimed),
        Reply::Array(deleted),
    ])
}
