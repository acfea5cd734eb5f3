//! COMMAND INFO and COMMAND DOCS replies, built from the command table in Redis 7.0's shapes.

use bytes::Bytes;
use shardis_resp::Reply;

use super::{Arg, BeginSearch, Command, FindKeys, Flags, KeySpec};

fn bulk(s: &str) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn status(s: &'static str) -> Reply {
    Reply::Simple(s.into())
}

/// Command flags in Redis's reply order (hidden ones left out, as Redis does).
const FLAG_NAMES: &[(u32, &str)] = &[
    (Flags::WRITE, "write"),
    (Flags::READONLY, "readonly"),
    (Flags::DENYOOM, "denyoom"),
    (Flags::ADMIN, "admin"),
    (Flags::PUBSUB, "pubsub"),
    (Flags::NOSCRIPT, "noscript"),
    (Flags::BLOCKING, "blocking"),
    (Flags::LOADING, "loading"),
    (Flags::STALE, "stale"),
    (Flags::SKIP_MONITOR, "skip_monitor"),
    (Flags::SKIP_SLOWLOG, "skip_slowlog"),
    (Flags::ASKING, "asking"),
    (Flags::FAST, "fast"),
    (Flags::NO_AUTH, "no_auth"),
    (Flags::NO_MANDATORY_KEYS, "no_mandatory_keys"),
    (Flags::NO_MULTI, "no_multi"),
    (Flags::MOVABLE_KEYS, "movablekeys"),
    (Flags::ALLOW_BUSY, "allow_busy"),
];

/// Key-spec flags in Redis's reply order and spelling.
const KEY_FLAG_NAMES: &[(&str, &str)] = &[
    ("ro", "RO"),
    ("rw", "RW"),
    ("ow", "OW"),
    ("rm", "RM"),
    ("access", "access"),
    ("update", "update"),
    ("insert", "insert"),
    ("delete", "delete"),
    ("not_key", "not_key"),
    ("incomplete", "incomplete"),
    ("variable_flags", "variable_flags"),
];

/// One command's COMMAND INFO entry.
pub fn info(cmd: &Command) -> Reply {
    let flags = FLAG_NAMES
        .iter()
        .filter(|(bit, _)| cmd.flags.has(*bit))
        .map(|(_, n)| status(n))
        .collect();
    let (first, last, step) = cmd.legacy_range;
    Reply::Array(vec![
        bulk(&cmd.name),
        Reply::Int(cmd.facts.arity as i64),
        Reply::Set(flags),
        Reply::Int(first),
        Reply::Int(last),
        Reply::Int(step),
        Reply::Set(
            cmd.acl_categories
                .iter()
                .map(|c| Reply::Simple(format!("@{c}").into()))
                .collect(),
        ),
        Reply::Set(Vec::new()),
        Reply::Set(cmd.facts.key_specs.iter().map(key_spec).collect()),
        Reply::Array(cmd.subcommands.iter().map(info).collect()),
    ])
}

/// Key-spec flags as Redis replies them (a set, in its order and spelling).
pub fn key_flags(flags: &[&str]) -> Reply {
    Reply::Set(
        KEY_FLAG_NAMES
            .iter()
            .filter(|(k, _)| flags.contains(k))
            .map(|(_, n)| status(n))
            .collect(),
    )
}

fn key_spec(spec: &KeySpec) -> Reply {
    let flags = key_flags(spec.flags);
    let begin = match spec.begin_search {
        BeginSearch::Index(pos) => typed("index", vec![(bulk("index"), Reply::Int(pos as i64))]),
        BeginSearch::Keyword {
            keyword,
            start_from,
        } => typed(
            "keyword",
            vec![
                (bulk("keyword"), bulk(keyword)),
                (bulk("startfrom"), Reply::Int(start_from as i64)),
            ],
        ),
        BeginSearch::Unknown => typed("unknown", vec![]),
    };
    let find = match spec.find_keys {
        FindKeys::Range {
            last_key,
            step,
            limit,
        } => typed(
            "range",
            vec![
                (bulk("lastkey"), Reply::Int(last_key as i64)),
                (bulk("keystep"), Reply::Int(step as i64)),
                (bulk("limit"), Reply::Int(limit as i64)),
            ],
        ),
        FindKeys::Keynum {
            keynum_index,
            first_key,
            step,
        } => typed(
            "keynum",
            vec![
                (bulk("keynumidx"), Reply::Int(keynum_index as i64)),
                (bulk("firstkey"), Reply::Int(first_key as i64)),
                (bulk("keystep"), Reply::Int(step as i64)),
            ],
        ),
        FindKeys::Unknown => typed("unknown", vec![]),
    };
    Reply::Map(vec![
        (bulk("flags"), flags),
        (bulk("begin_search"), begin),
        (bulk("find_keys"), find),
    ])
}

fn typed(kind: &str, spec: Vec<(Reply, Reply)>) -> Reply {
    Reply::Map(vec![
        (bulk("type"), bulk(kind)),
        (bulk("spec"), Reply::Map(spec)),
    ])
}

/// One command's COMMAND DOCS entry (the facts carry no summaries or complexity texts).
pub fn docs(cmd: &Command) -> Reply {
    // The facts spell groups with `_`; Redis replies `sorted-set`.
    let group = cmd.facts.group.replace('_', "-");
    let mut map = vec![
        (bulk("since"), bulk(cmd.facts.since)),
        (bulk("group"), bulk(&group)),
    ];
    if !cmd.facts.arguments.is_empty() {
        map.push((bulk("arguments"), args(cmd.facts.arguments)));
    }
    if !cmd.subcommands.is_empty() {
        map.push((
            bulk("subcommands"),
            Reply::Map(
                cmd.subcommands
                    .iter()
                    .map(|s| (bulk(&s.name), docs(s)))
                    .collect(),
            ),
        ));
    }
    Reply::Map(map)
}

fn args(list: &[Arg]) -> Reply {
    Reply::Array(
        list.iter()
            .map(|a| {
                let mut map = vec![(bulk("name"), bulk(a.name)), (bulk("type"), bulk(a.kind))];
                if a.key_spec_index >= 0 {
                    map.push((bulk("key_spec_index"), Reply::Int(a.key_spec_index as i64)));
                }
                if let Some(token) = a.token {
                    map.push((bulk("token"), bulk(token)));
                }
                if let Some(since) = a.since {
                    map.push((bulk("since"), bulk(since)));
                }
                let flags: Vec<Reply> = [
                    (a.optional, "optional"),
                    (a.multiple, "multiple"),
                    (a.multiple_token, "multiple_token"),
                ]
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, n)| status(n))
                .collect();
                if !flags.is_empty() {
                    map.push((bulk("flags"), Reply::Set(flags)));
                }
                if a.kind == "oneof" || a.kind == "block" {
                    map.push((bulk("arguments"), args(a.arguments)));
                }
                Reply::Map(map)
            })
            .collect(),
    )
}
