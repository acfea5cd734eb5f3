//! COMMAND INFO and COMMAND DOCS replies, built from the command table in Redis 7.0's shapes.

use bytes::Bytes;
use shardis_resp::Reply;

use super::docs as doc_texts;
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

/// One command's COMMAND DOCS entry, its fields in Redis 7.0's order.
pub fn docs(cmd: &Command) -> Reply {
    // The facts spell groups with `_`; Redis replies `sorted-set`.
    let group = cmd.facts.group.replace('_', "-");
    let text = doc_texts::lookup(&cmd.name);
    let mut map = Vec::new();
    if let Some(text) = text {
        map.push((bulk("summary"), bulk(text.summary)));
    }
    map.push((bulk("since"), bulk(cmd.facts.since)));
    map.push((bulk("group"), bulk(&group)));
    if let Some(text) = text {
        if let Some(complexity) = text.complexity {
            map.push((bulk("complexity"), bulk(complexity)));
        }
        if !text.doc_flags.is_empty() {
            let flags = text.doc_flags.iter().map(|f| status(f)).collect();
            map.push((bulk("doc_flags"), Reply::Set(flags)));
        }
        if let Some((since, replaced_by)) = text.deprecated {
            map.push((bulk("deprecated_since"), bulk(since)));
            map.push((bulk("replaced_by"), bulk(replaced_by)));
        }
        if !text.history.is_empty() {
            let history = text
                .history
                .iter()
                .map(|(version, change)| Reply::Array(vec![bulk(version), bulk(change)]))
                .collect();
            map.push((bulk("history"), Reply::Set(history)));
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::REGISTRY;

    fn docs_of(name: &str) -> Vec<(Reply, Reply)> {
        let cmd = REGISTRY.get(name.as_bytes()).expect("command");
        match docs(cmd) {
            Reply::Map(fields) => fields,
            other => panic!("not a map: {other:?}"),
        }
    }

    fn field_names(fields: &[(Reply, Reply)]) -> Vec<String> {
        fields
            .iter()
            .map(|(k, _)| match k {
                Reply::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
                other => panic!("not a bulk: {other:?}"),
            })
            .collect()
    }

    fn field<'a>(fields: &'a [(Reply, Reply)], name: &str) -> &'a Reply {
        let i = field_names(fields)
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("no {name}"));
        &fields[i].1
    }

    #[test]
    fn a_deprecated_command_has_every_field_in_redis_order() {
        assert_eq!(
            field_names(&docs_of("getset")),
            [
                "summary",
                "since",
                "group",
                "complexity",
                "doc_flags",
                "deprecated_since",
                "replaced_by",
                "arguments"
            ]
        );
        let fields = docs_of("zrevrangebyscore");
        assert_eq!(
            field_names(&fields)[4..],
            [
                "doc_flags",
                "deprecated_since",
                "replaced_by",
                "history",
                "arguments"
            ]
        );
        assert_eq!(
            field(&fields, "doc_flags"),
            &Reply::Set(vec![status("deprecated")])
        );
        assert_eq!(
            field(&fields, "replaced_by"),
            &bulk("`ZRANGE` with the `REV` and `BYSCORE` arguments")
        );
        match field(&fields, "history") {
            Reply::Set(entries) => {
                assert_eq!(entries.len(), 1);
                assert!(matches!(&entries[0], Reply::Array(pair) if pair[0] == bulk("2.1.6")));
            }
            other => panic!("history is not a set: {other:?}"),
        }
    }

    #[test]
    fn a_plain_command_has_summary_and_complexity_but_no_doc_flags() {
        let fields = docs_of("get");
        assert_eq!(
            field_names(&fields),
            ["summary", "since", "group", "complexity", "arguments"]
        );
        assert_eq!(field(&fields, "complexity"), &bulk("O(1)"));
        assert_eq!(
            field_names(&docs_of("monitor")),
            ["summary", "since", "group"]
        );
    }

    #[test]
    fn a_container_documents_its_subcommands_in_full() {
        let fields = docs_of("client");
        assert_eq!(
            field_names(&fields),
            ["summary", "since", "group", "complexity", "subcommands"]
        );
        let Reply::Map(subs) = field(&fields, "subcommands") else {
            panic!("subcommands is not a map");
        };
        let kill = subs
            .iter()
            .find(|(k, _)| *k == bulk("client|kill"))
            .map(|(_, v)| v)
            .expect("client|kill");
        let Reply::Map(kill) = kill else {
            panic!("client|kill is not a map");
        };
        assert_eq!(
            field_names(kill),
            [
                "summary",
                "since",
                "group",
                "complexity",
                "history",
                "arguments"
            ]
        );
    }
}
