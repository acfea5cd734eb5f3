//! XINFO STREAM (with FULL and COUNT), XINFO GROUPS, XINFO CONSUMERS and XINFO HELP.

use bytes::Bytes;
use shardis_resp::Reply;

use super::cgroup::ConsumerGroup;
use super::id::{is_word, StreamId};
use super::stream::StreamValue;
use super::{c_text, entries_reply, now, parse_int, read_stream, tri};
use crate::error;
use crate::shard::Ctx;
use crate::t_keys::help_reply;

/// Entries and pending entries XINFO STREAM FULL shows without COUNT.
const FULL_DEFAULT_COUNT: i64 = 10;

fn field(name: &'static str, value: Reply) -> (Reply, Reply) {
    (Reply::Bulk(Bytes::from_static(name.as_bytes())), value)
}

fn int(n: impl TryInto<i64>) -> Reply {
    Reply::Int(n.try_into().unwrap_or(i64::MAX))
}

fn optional_int(n: Option<i64>) -> Reply {
    n.map_or(Reply::Nil, Reply::Int)
}

/// XINFO STREAM key [FULL [COUNT count]], XINFO GROUPS key, XINFO CONSUMERS key group
pub fn xinfo(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let now = now(ctx);
    let stream = match read_stream(ctx, &args[2]) {
        Ok(Some(s)) => s,
        Ok(None) => return Reply::err(error::NO_SUCH_KEY),
        Err(e) => return e,
    };
    let sub = &args[1];
    if is_word(sub, "consumers") && args.len() == 4 {
        let Some(group) = stream.groups.get(&args[3][..]) else {
            return Reply::error(error::sanitize(format!(
                "NOGROUP No such consumer group '{}' for key name '{}'",
                c_text(&args[3]),
                c_text(&args[2])
            )));
        };
        consumers_info(group, now)
    } else if is_word(sub, "groups") && args.len() == 3 {
        Reply::Array(
            stream
                .groups
                .iter()
                .map(|(name, g)| {
                    Reply::Map(vec![
                        field("name", Reply::Bulk(name.clone())),
                        field("consumers", int(g.consumer_count())),
                        field("pending", int(g.pel.len())),
                        field("last-delivered-id", g.last_id.reply()),
                        field("entries-read", optional_int(g.entries_read)),
                        field("lag", optional_int(stream.lag(g))),
                    ])
                })
                .collect(),
        )
    } else if is_word(sub, "stream") {
        stream_info(stream, args)
    } else {
        error::subcommand_syntax(args)
    }
}

fn consumers_info(group: &ConsumerGroup, now: i64) -> Reply {
    Reply::Array(
        group
            .consumers()
            .map(|c| {
                Reply::Map(vec![
                    field("name", Reply::Bulk(c.name.clone())),
                    field("pending", int(c.pel.len())),
                    field("idle", Reply::Int(now.wrapping_sub(c.seen_time).max(0))),
                ])
            })
            .collect(),
    )
}

/// XINFO STREAM key [FULL [COUNT count]]
fn stream_info(stream: &StreamValue, args: &[Bytes]) -> Reply {
    let full_count = match &args[3..] {
        [] => None,
        [full] if is_word(full, "full") => Some(FULL_DEFAULT_COUNT),
        [full, count_word, n] if is_word(full, "full") && is_word(count_word, "count") => {
            match tri!(parse_int(n)) {
                n if n < 0 => Some(FULL_DEFAULT_COUNT),
                n => Some(n),
            }
        }
        _ => return error::subcommand_syntax(args),
    };
    let mut info = vec![
        field("length", int(stream.len())),
        field("radix-tree-keys", int(stream.node_count())),
        field("radix-tree-nodes", int(stream.rax_nodes())),
        field("last-generated-id", stream.last_id().reply()),
        field("max-deleted-entry-id", stream.max_deleted_id().reply()),
        field("entries-added", int(stream.entries_added())),
        field("recorded-first-entry-id", stream.first_id().reply()),
    ];
    let Some(count) = full_count else {
        let edge = |rev| {
            stream
                .range(StreamId::MIN, StreamId::MAX, rev, 1)
                .pop()
                .map_or(Reply::Nil, |(_, entry)| entry)
        };
        info.push(field("groups", int(stream.groups.len())));
        info.push(field("first-entry", edge(false)));
        info.push(field("last-entry", edge(true)));
        return Reply::Map(info);
    };
    // COUNT 0 means everything.
    let limit = usize::try_from(count).unwrap_or(usize::MAX);
    let take = |n: usize| limit == 0 || n < limit;
    info.push(field(
        "entries",
        entries_reply(stream.range(StreamId::MIN, StreamId::MAX, false, limit)),
    ));
    let groups = stream
        .groups
        .iter()
        .map(|(name, g)| {
            let pending = g
                .pel
                .iter()
                .enumerate()
                .take_while(|(n, _)| take(*n))
                .map(|(_, (id, nack))| {
                    Reply::Array(vec![
                        id.reply(),
                        Reply::Bulk(g.owner(nack)),
                        Reply::Int(nack.delivery_time),
                        int(nack.delivery_count),
                    ])
                })
                .collect();
            let consumers = g
                .consumers()
                .map(|c| {
                    let owned = c
                        .pel
                        .iter()
                        .enumerate()
                        .take_while(|(n, _)| take(*n))
                        .filter_map(|(_, id)| {
                            let nack = g.pel.get(id)?;
                            Some(Reply::Array(vec![
                                id.reply(),
                                Reply::Int(nack.delivery_time),
                                int(nack.delivery_count),
                            ]))
                        })
                        .collect();
                    Reply::Map(vec![
                        field("name", Reply::Bulk(c.name.clone())),
                        field("seen-time", Reply::Int(c.seen_time)),
                        field("pel-count", int(c.pel.len())),
                        field("pending", Reply::Array(owned)),
                    ])
                })
                .collect();
            Reply::Map(vec![
                field("name", Reply::Bulk(name.clone())),
                field("last-delivered-id", g.last_id.reply()),
                field("entries-read", optional_int(g.entries_read)),
                field("lag", optional_int(stream.lag(g))),
                field("pel-count", int(g.pel.len())),
                field("pending", Reply::Array(pending)),
                field("consumers", Reply::Array(consumers)),
            ])
        })
        .collect();
    info.push(field("groups", Reply::Array(groups)));
    Reply::Map(info)
}

/// XINFO HELP
pub fn xinfo_help(_ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Reply {
    help_reply(
        "XINFO",
        &[
            "CONSUMERS <key> <groupname>",
            "    Show consumers of <groupname>.",
            "GROUPS <key>",
            "    Show the stream consumer groups.",
            "STREAM <key> [FULL [COUNT <count>]",
            "    Show information about the stream.",
        ],
    )
}
