//! XREAD and XREADGROUP, and what the runtime needs to block them and to split them over
//! shards.
//!
//! The commands here never wait: with BLOCK and nothing to return they answer exactly what
//! Redis answers on a timeout (a null array, `_` in RESP3), which tells the runtime to wait.
//! Around them:
//! - [`block_timeout`] reads the BLOCK option;
//! - [`resolve_block_ids`] pins `$` to the IDs of the moment the client blocked;
//! - [`serve_blocked`] answers a waiting client when one of its keys is ready, with Redis's
//!   errors when an XREADGROUP's stream or group went away;
//! - [`SPLIT_RULE`] builds per-shard commands and merges their replies when the streams of
//!   one call live on several shards.

use std::time::Duration;

use bytes::Bytes;
use shardis_resp::Reply;

use super::id::{self, c_str, is_word, StreamId};
use super::stream::StreamValue;
use super::{entries_reply, no_such_key_or_group, now, parse_int, tri, CONSUMER_CREATED};
use crate::command::{Blocking, ShardPart, SplitRule, TimeoutReply, Wait};
use crate::error;
use crate::notify::STREAM;
use crate::shard::Ctx;
use crate::value::Value;

const UNBALANCED: &str = "ERR Unbalanced XREAD list of streams: for each stream key an ID or \
                          '$' must be specified.";
const GROUP_IN_XREAD: &str =
    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.";
const NOACK_IN_XREAD: &str =
    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.";
const MISSING_GROUP: &str = "ERR Missing GROUP option for XREADGROUP";
const DOLLAR_IN_XREADGROUP: &str = "ERR The $ ID is meaningless in the context of XREADGROUP: \
                                    you want to read the history of this consumer by \
                                    specifying a proper ID, or use the > ID to get new \
                                    messages. The $ ID would just return an empty result set.";
const GT_IN_XREAD: &str = "ERR The > ID can be specified only when calling XREADGROUP using \
                           the GROUP <group> <consumer> option.";
const TIMEOUT_NOT_INTEGER: &str = "ERR timeout is not an integer or out of range";
const KEY_GONE: &str = "UNBLOCKED the stream key no longer exists";
const GROUP_GONE: &str = "NOGROUP the consumer group this client was blocked on no longer exists";

/// Entries a blocked client receives at most when it gave no COUNT.
const BLOCKED_DEFAULT_COUNT: usize = 1000;

/// XREAD [COUNT count] [BLOCK milliseconds] STREAMS key [key ...] id [id ...]
pub fn xread(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    read_generic(ctx, args, false)
}

/// XREADGROUP GROUP group consumer [COUNT count] [BLOCK milliseconds] [NOACK] STREAMS key
/// [key ...] id [id ...]
pub fn xreadgroup(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    read_generic(ctx, args, true)
}

/// The options of an XREAD / XREADGROUP call.
struct ReadArgs<'a> {
    block: bool,
    /// At most this many entries per stream (0: no limit).
    count: usize,
    noack: bool,
    /// Group and consumer names.
    group: Option<(&'a [u8], &'a [u8])>,
    keys: &'a [Bytes],
    ids: &'a [Bytes],
}

/// The BLOCK option's value in milliseconds, with Redis's errors.
fn parse_block(arg: &[u8]) -> Result<u64, Reply> {
    let ms = num_or(arg, TIMEOUT_NOT_INTEGER)?;
    u64::try_from(ms).map_err(|_| Reply::err(error::TIMEOUT_NEGATIVE))
}

fn num_or(arg: &[u8], msg: &'static str) -> Result<i64, Reply> {
    crate::num::parse_i64(arg).ok_or(Reply::err(msg))
}

/// Parses the options (Redis's `xreadCommand`, up to the IDs).
fn parse_options(args: &[Bytes], group_cmd: bool) -> Result<ReadArgs<'_>, Reply> {
    let mut read = ReadArgs {
        block: false,
        count: 0,
        noack: false,
        group: None,
        keys: &[],
        ids: &[],
    };
    let mut streams = None;
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - i - 1;
        let opt = &args[i];
        if is_word(opt, "block") && more > 0 {
            i += 1;
            parse_block(&args[i])?;
            read.block = true;
        } else if is_word(opt, "count") && more > 0 {
            i += 1;
            read.count = usize::try_from(parse_int(&args[i])?).unwrap_or(0);
        } else if is_word(opt, "streams") && more > 0 {
            let rest = &args[i + 1..];
            if !rest.len().is_multiple_of(2) {
                return Err(Reply::err(UNBALANCED));
            }
            streams = Some(rest.split_at(rest.len() / 2));
            break;
        } else if is_word(opt, "group") && more >= 2 {
            if !group_cmd {
                return Err(Reply::err(GROUP_IN_XREAD));
            }
            read.group = Some((&args[i + 1], &args[i + 2]));
            i += 2;
        } else if is_word(opt, "noack") {
            if !group_cmd {
                return Err(Reply::err(NOACK_IN_XREAD));
            }
            read.noack = true;
        } else {
            return Err(error::syntax());
        }
        i += 1;
    }
    let Some((keys, ids)) = streams else {
        return Err(error::syntax());
    };
    if group_cmd && read.group.is_none() {
        return Err(Reply::err(MISSING_GROUP));
    }
    read.keys = keys;
    read.ids = ids;
    Ok(read)
}

/// The ID a stream is read after: `>` (new entries for the group) is the largest ID, as in
/// Redis, which is why an explicit `18446744073709551615-18446744073709551615` reads as `>`.
const NEW_FOR_GROUP: StreamId = StreamId::MAX;

/// Checks every stream in order, as Redis does before serving any: the key's type, the
/// group, then the ID. Returns the IDs to read after, or the failing key's index and the
/// error. `counted` lookups count keyspace hits and misses (the command's own pass).
fn check_streams(
    ctx: &mut Ctx<'_>,
    read: &ReadArgs<'_>,
    counted: bool,
) -> Result<Vec<StreamId>, (usize, Reply)> {
    let mut after = Vec::with_capacity(read.keys.len());
    for (i, (key, id_arg)) in read.keys.iter().zip(read.ids).enumerate() {
        let found = if counted {
            ctx.lookup_read(key)
        } else {
            ctx.entry(key).map(|e| &e.value)
        };
        let stream = match found {
            None => None,
            Some(Value::Stream(s)) => Some(&**s),
            Some(_) => return Err((i, error::wrongtype())),
        };
        if let Some((group, _)) = read.group {
            if !stream.is_some_and(|s| s.groups.contains_key(group)) {
                let suffix = " in XREADGROUP with GROUP option";
                return Err((i, no_such_key_or_group(key, group, suffix)));
            }
        }
        let id = match c_str(id_arg) {
            b"$" if read.group.is_some() => return Err((i, Reply::err(DOLLAR_IN_XREADGROUP))),
            b"$" => stream.map_or(StreamId::MIN, StreamValue::last_id),
            b">" if read.group.is_none() => return Err((i, Reply::err(GT_IN_XREAD))),
            b">" => NEW_FOR_GROUP,
            _ => id::parse_strict_id(id_arg).map_err(|e| (i, e))?,
        };
        after.push(id);
    }
    Ok(after)
}

/// Who reads for a group: the group, the consumer and whether entries stay unacknowledged.
struct GroupReader<'a> {
    group: &'a [u8],
    consumer: &'a [u8],
    noack: bool,
}

/// The live entries after `after` (at most `count`, 0: all).
fn entries_after(stream: &StreamValue, after: StreamId, count: usize) -> Vec<(StreamId, Reply)> {
    match after.next() {
        Some(start) => stream.range(start, StreamId::MAX, false, count),
        None => Vec::new(),
    }
}

/// Serves `entries` to a group reader (Redis's `streamReplyWithRange` with a group): the
/// consumer is looked up (created if needed), the group moves past the entries and, unless
/// NOACK, they become pending for the consumer. Also says whether the consumer was created.
fn deliver(
    stream: &mut StreamValue,
    entries: Vec<(StreamId, Reply)>,
    reader: &GroupReader<'_>,
    now: i64,
) -> (Reply, bool) {
    let Some(group) = stream.groups.get(reader.group) else {
        return (entries_reply(entries), false);
    };
    let (mut last, mut read) = (group.last_id, group.entries_read);
    for &(id, _) in &entries {
        if id <= last {
            continue;
        }
        if read.is_some() && !stream.has_tombstones_from(id) {
            read = read.map(|n| n.wrapping_add(1));
        } else if stream.entries_added() != 0 {
            read = stream.entries_up_to(id);
        }
        last = id;
    }
    let mut created = false;
    if let Some(group) = stream.groups.get_mut(reader.group) {
        created = group.touch_consumer(reader.consumer, now);
        group.last_id = last;
        group.entries_read = read;
        if !reader.noack {
            for &(id, _) in &entries {
                group.deliver(id, reader.consumer, now);
            }
        }
    }
    (entries_reply(entries), created)
}

/// A consumer's own pending entries after `after` (XREADGROUP with an ID): each is delivered
/// again; one deleted from the stream since shows as `[id, nil]`.
fn serve_history(
    stream: &mut StreamValue,
    reader: &GroupReader<'_>,
    after: StreamId,
    count: usize,
    now: i64,
) -> Reply {
    let Some(start) = after.next() else {
        return Reply::Array(Vec::new());
    };
    let pending: Vec<StreamId> = match stream
        .groups
        .get(reader.group)
        .and_then(|g| g.consumer(reader.consumer))
    {
        Some(c) => {
            let ids = c.pel.range(start..).copied();
            if count == 0 {
                ids.collect()
            } else {
                ids.take(count).collect()
            }
        }
        None => Vec::new(),
    };
    let mut out = Vec::with_capacity(pending.len());
    for id in pending {
        match stream.entry(id) {
            Some(entry) => {
                out.push(entry);
                if let Some(nack) = stream
                    .groups
                    .get_mut(reader.group)
                    .and_then(|g| g.pel.get_mut(&id))
                {
                    nack.delivery_time = now;
                    nack.delivery_count = nack.delivery_count.wrapping_add(1);
                }
            }
            None => out.push(Reply::Array(vec![id.reply(), Reply::NilArray])),
        }
    }
    Reply::Array(out)
}

/// One stream's part of the reply: `[key, entries]`, a map entry in RESP3.
fn stream_reply(key: &Bytes, entries: Reply) -> (Reply, Reply) {
    (Reply::Bulk(key.clone()), entries)
}

/// The whole reply: the served streams in request order.
fn read_reply(ctx: &Ctx<'_>, served: Vec<(Reply, Reply)>) -> Reply {
    if served.is_empty() {
        return Reply::NilArray;
    }
    if ctx.resp3 {
        Reply::Map(served)
    } else {
        Reply::Array(
            served
                .into_iter()
                .map(|(k, v)| Reply::Array(vec![k, v]))
                .collect(),
        )
    }
}

/// The stream at `key`, looked up as a read (hit or miss counted).
fn served_stream<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Option<&'c mut StreamValue> {
    match ctx.lookup_read_mut(key) {
        Some(Value::Stream(s)) => Some(s),
        _ => None,
    }
}

fn read_generic(ctx: &mut Ctx<'_>, args: &[Bytes], group_cmd: bool) -> Reply {
    let read = tri!(parse_options(args, group_cmd));
    let after = tri!(check_streams(ctx, &read, true).map_err(|(_, e)| e));
    let now = now(ctx);
    let mut served = Vec::new();
    for (key, &after) in read.keys.iter().zip(&after) {
        let Some(stream) = served_stream(ctx, key) else {
            continue;
        };
        let reader = read.group.map(|(group, consumer)| GroupReader {
            group,
            consumer,
            noack: read.noack,
        });
        let mut created = false;
        let entries = match &reader {
            // A group reader with an ID reads its own history, whatever the stream holds.
            Some(reader) if after != NEW_FOR_GROUP => {
                created = touch_consumer(stream, reader, now);
                serve_history(stream, reader, after, read.count, now)
            }
            // Otherwise a stream is served when it has live entries after the ID (for a
            // group, after its last delivered entry).
            Some(reader) => {
                let Some(last_delivered) = stream.groups.get(reader.group).map(|g| g.last_id)
                else {
                    continue;
                };
                let entries = entries_after(stream, last_delivered, read.count);
                if entries.is_empty() {
                    continue;
                }
                let (reply, new_consumer) = deliver(stream, entries, reader, now);
                created = new_consumer;
                reply
            }
            None => {
                let entries = entries_after(stream, after, read.count);
                if entries.is_empty() {
                    continue;
                }
                entries_reply(entries)
            }
        };
        if reader.is_some() {
            ctx.dirty(1);
        }
        if created {
            ctx.notify(STREAM, CONSUMER_CREATED, key);
        }
        served.push(stream_reply(key, entries));
    }
    read_reply(ctx, served)
}

/// Looks the reading consumer up (refreshing its seen time), creating it if needed; true if
/// it was created.
fn touch_consumer(stream: &mut StreamValue, reader: &GroupReader<'_>, now: i64) -> bool {
    stream
        .groups
        .get_mut(reader.group)
        .is_some_and(|group| group.touch_consumer(reader.consumer, now))
}

fn is_group_cmd(args: &[Bytes]) -> bool {
    args.first()
        .is_some_and(|name| name.eq_ignore_ascii_case(b"xreadgroup"))
}

/// How XREAD and XREADGROUP wait: with BLOCK only, for entries after the IDs they asked for
/// (`$` pinned when they start waiting), served with the ready key's entries alone.
pub const BLOCKING: Blocking = Blocking {
    timeout: block_wait,
    ready: blocked_ready,
    serve: Some(serve_blocked),
    prepare: Some(resolve_block_ids),
    on_timeout: TimeoutReply::NilArray,
};

/// [`block_timeout`] as the command table wants it.
fn block_wait(args: &[Bytes]) -> Result<Wait, Reply> {
    Ok(match block_timeout(args)? {
        None => Wait::Never,
        Some(d) if d.is_zero() => Wait::Forever,
        Some(d) => Wait::For(d),
    })
}

/// The BLOCK timeout of an XREAD / XREADGROUP call: None without BLOCK, `Some(ZERO)` for
/// `BLOCK 0` (wait forever), Redis's errors for a value that is not an integer or is
/// negative. The command itself reports every other error, in Redis's order, and replies
/// null when it would block; call this after that first attempt.
pub fn block_timeout(args: &[Bytes]) -> Result<Option<Duration>, Reply> {
    let mut timeout = None;
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - i - 1;
        let opt = &args[i];
        if is_word(opt, "block") && more > 0 {
            i += 1;
            timeout = Some(Duration::from_millis(parse_block(&args[i])?));
        } else if is_word(opt, "count") && more > 0 {
            i += 1;
        } else if is_word(opt, "group") && more >= 2 {
            i += 2;
        } else if !is_word(opt, "noack") {
            break;
        }
        i += 1;
    }
    Ok(timeout)
}

/// The arguments of a call that is about to wait, with every `$` ID replaced by its stream's
/// current last ID (0-0 for a missing key), so that serving it later returns only entries
/// added after it blocked, as Redis does. Call it on the shard of the keys, in the same step
/// as the attempt that found nothing to return, with the arguments limited to that shard's
/// keys.
pub fn resolve_block_ids(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Vec<Bytes> {
    let mut out = args.to_vec();
    let Some((first_key, n)) = streams_position(args) else {
        return out;
    };
    if is_group_cmd(args) {
        return out;
    }
    for i in 0..n {
        let (key, id_at) = (&args[first_key + i], first_key + n + i);
        if c_str(&args[id_at]) != b"$" {
            continue;
        }
        let last = match ctx.entry(key).map(|e| &e.value) {
            Some(Value::Stream(s)) => s.last_id(),
            _ => StreamId::MIN,
        };
        out[id_at] = last.to_bytes();
    }
    out
}

/// What a blocked client gets now that one of its keys is ready.
enum Wake<'a> {
    Wait,
    Fail(&'static str),
    /// Serve entries after this ID from the key at this index, to this reader.
    Serve {
        at: usize,
        after: StreamId,
        read: ReadArgs<'a>,
    },
}

/// Decides, without changing anything, what a client blocked with `args` gets now that `key`
/// is ready (Redis's `serveClientsBlockedOnStreamKey`).
fn wake<'a>(ctx: &mut Ctx<'_>, args: &'a [Bytes], key: &[u8]) -> Wake<'a> {
    let Ok(read) = parse_options(args, is_group_cmd(args)) else {
        return Wake::Wait;
    };
    let Some(at) = read.keys.iter().position(|k| &k[..] == key) else {
        return Wake::Wait;
    };
    let stream = match ctx.entry(key).map(|e| &e.value) {
        Some(Value::Stream(s)) => s,
        _ if read.group.is_some() => return Wake::Fail(KEY_GONE),
        _ => return Wake::Wait,
    };
    let after = match read.group {
        Some((group, _)) => match stream.groups.get(group) {
            Some(group) => group.last_id,
            None => return Wake::Fail(GROUP_GONE),
        },
        None => id::parse_strict_id(&read.ids[at]).unwrap_or(stream.last_id()),
    };
    // As Redis, a waiter is served as soon as the stream's last ID moved past its own, even
    // if the entries after it were deleted since (it then gets an empty list).
    if stream.last_id() <= after {
        return Wake::Wait;
    }
    Wake::Serve { at, after, read }
}

/// True if [`serve_blocked`] would answer the client now (with entries or an error) rather
/// than keep it waiting. It changes nothing, so the runtime can ask before it claims a client
/// blocked on several shards.
pub fn blocked_ready(ctx: &mut Ctx<'_>, args: &[Bytes], key: &[u8]) -> bool {
    !matches!(wake(ctx, args, key), Wake::Wait)
}

/// Serves a client blocked in XREAD / XREADGROUP (its arguments as [`resolve_block_ids`]
/// returned them) now that `key` is reported ready. Returns a null array to keep waiting;
/// otherwise the reply to send, which, as in Redis, holds the entries of `key` alone (at most
/// COUNT, 1000 without COUNT) — or, for XREADGROUP, an error when the stream was deleted (or
/// replaced by another type) or the group destroyed while the client waited:
/// `-UNBLOCKED the stream key no longer exists`, `-NOGROUP the consumer group this client was
/// blocked on no longer exists`. The key is looked up without counting a keyspace hit.
pub fn serve_blocked(ctx: &mut Ctx<'_>, args: &[Bytes], key: &[u8]) -> Reply {
    let (at, after, read) = match wake(ctx, args, key) {
        Wake::Wait => return Reply::NilArray,
        Wake::Fail(error) => return Reply::err(error),
        Wake::Serve { at, after, read } => (at, after, read),
    };
    let count = match read.count {
        0 => BLOCKED_DEFAULT_COUNT,
        n => n,
    };
    let now = now(ctx);
    let Some(Value::Stream(stream)) = ctx.entry(key).map(|e| &mut e.value) else {
        return Reply::NilArray;
    };
    let entries = entries_after(stream, after, count);
    let entries = match read.group {
        Some((group, consumer)) => {
            let reader = GroupReader {
                group,
                consumer,
                noack: read.noack,
            };
            let (reply, created) = deliver(stream, entries, &reader, now);
            ctx.dirty(1);
            if created {
                ctx.notify(STREAM, CONSUMER_CREATED, key);
            }
            reply
        }
        None => entries_reply(entries),
    };
    read_reply(ctx, vec![stream_reply(&read.keys[at], entries)])
}

/// Where the keys start and how many there are, found as Redis's `xreadGetKeys` does (it
/// skips option values, so a key or group named STREAMS is not mistaken for the keyword);
/// None when the arguments cannot be a valid call.
fn streams_position(args: &[Bytes]) -> Option<(usize, usize)> {
    let mut i = 1;
    while i < args.len() {
        let arg = &args[i];
        if is_word(arg, "block") || is_word(arg, "count") {
            i += 1;
        } else if is_word(arg, "group") {
            i += 2;
        } else if is_word(arg, "streams") {
            let rest = args.len() - i - 1;
            return (rest > 0 && rest.is_multiple_of(2)).then_some((i + 1, rest / 2));
        } else if !is_word(arg, "noack") {
            return None;
        }
        i += 1;
    }
    None
}

/// The key arguments of XREAD / XREADGROUP (Redis's `xreadGetKeys`).
pub fn read_keys(args: &[Bytes], out: &mut Vec<usize>) {
    if let Some((first, n)) = streams_position(args) {
        out.extend(first..first + n);
    }
}

/// How XREAD / XREADGROUP run when their streams live on several shards:
///
/// 1. under the lock of the shards involved, `check` runs on every shard with
///    `args(full, that shard's key indexes)`; if any fails, the error of the earliest key in
///    the request wins (the index it returns is among the keys of that shard's arguments), so
///    the client gets the error Redis would give and no shard has served anything;
/// 2. otherwise the command runs on every shard with those arguments, and `merge` puts the
///    served streams back in request order (a stream with nothing to return is left out; no
///    stream at all is the null array, which with BLOCK means "wait").
pub const SPLIT_RULE: SplitRule = SplitRule {
    args: split_args,
    check: check_split,
    merge: merge_replies,
};

/// The command limited to the keys at `keys` (argument indexes, ascending): the options as
/// given, then those keys and their IDs.
fn split_args(args: &[Bytes], keys: &[usize]) -> Vec<Bytes> {
    let Some((first, n)) = streams_position(args) else {
        return args.to_vec();
    };
    let mut out = Vec::with_capacity(first + keys.len() * 2);
    out.extend_from_slice(&args[..first]);
    out.extend(keys.iter().filter_map(|&k| args.get(k)).cloned());
    out.extend(keys.iter().filter_map(|&k| args.get(k + n)).cloned());
    out
}

/// Checks one shard's part of a split call without serving anything: Err carries the index
/// (among this call's keys) of the key that fails, 0 for errors in the options.
fn check_split(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result<(), (usize, Reply)> {
    let read = parse_options(args, is_group_cmd(args)).map_err(|e| (0, e))?;
    check_streams(ctx, &read, false).map(|_| ())
}

/// Merges the replies of a split call: `parts` holds, per shard, the argument indexes (in
/// `args`) of its keys and its reply.
fn merge_replies(args: &[Bytes], parts: Vec<ShardPart>) -> Reply {
    let mut served: Vec<(usize, Reply, Reply)> = Vec::new();
    let mut resp3 = false;
    for (keys, reply) in parts {
        let items: Vec<(Reply, Reply)> = match reply {
            Reply::Error(_) => return reply,
            Reply::Map(pairs) => {
                resp3 = true;
                pairs
            }
            Reply::Array(items) => items
                .into_iter()
                .filter_map(|item| match item {
                    Reply::Array(mut kv) if kv.len() == 2 => {
                        let v = kv.pop()?;
                        Some((kv.pop()?, v))
                    }
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        // Each shard's served streams are in its own request order: match them to its keys.
        let mut next = keys.iter();
        for (name, entries) in items {
            let Reply::Bulk(name_bytes) = &name else {
                continue;
            };
            if let Some(&at) = next.find(|&&k| args.get(k).is_some_and(|a| a == name_bytes)) {
                served.push((at, name, entries));
            }
        }
    }
    if served.is_empty() {
        return Reply::NilArray;
    }
    served.sort_by_key(|(at, _, _)| *at);
    let pairs = served.into_iter().map(|(_, k, v)| (k, v));
    if resp3 {
        Reply::Map(pairs.collect())
    } else {
        Reply::Array(pairs.map(|(k, v)| Reply::Array(vec![k, v])).collect())
    }
}
