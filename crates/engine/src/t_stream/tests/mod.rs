//! Tests of the stream commands through the command table, one file per command module, with
//! the cases of Redis's `tests/unit/type/stream.tcl` and `stream-cgroups.tcl` that need
//! neither blocking nor replication.

mod commands;
mod groups;
mod info;
mod read;

use shardis_resp::Reply;

use crate::testing::{arr, bulk, bulks, TestShard};

/// An entry as XRANGE replies it.
pub fn entry(id: &str, pairs: &[&str]) -> Reply {
    arr(vec![bulk(id), bulks(pairs)])
}

/// The IDs of an array of entries.
pub fn ids(reply: &Reply) -> Vec<String> {
    match reply {
        Reply::Array(items) => items
            .iter()
            .map(|item| match item {
                Reply::Array(pair) => match pair.first() {
                    Some(Reply::Bulk(id)) => String::from_utf8_lossy(id).into_owned(),
                    other => panic!("no ID in {other:?}"),
                },
                Reply::Bulk(id) => String::from_utf8_lossy(id).into_owned(),
                other => panic!("not an entry: {other:?}"),
            })
            .collect(),
        other => panic!("not an array: {other:?}"),
    }
}

/// The value of `name` in a map reply (XINFO).
pub fn field(reply: &Reply, name: &str) -> Reply {
    match reply {
        Reply::Map(pairs) => pairs
            .iter()
            .find(|(k, _)| *k == bulk(name))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name} in {reply:?}")),
        other => panic!("not a map: {other:?}"),
    }
}

/// XADD with an explicit ID, which must succeed.
pub fn add(t: &mut TestShard, key: &str, id: &str, pairs: &[&str]) {
    let mut args = vec!["xadd", key, id];
    args.extend_from_slice(pairs);
    match t.run(&args) {
        Reply::Bulk(_) => {}
        other => panic!("XADD {id} gave {other:?}"),
    }
}

/// Sets the node limits as CONFIG SET would.
pub fn node_limits(t: &mut TestShard, max_entries: i64, max_bytes: usize) {
    t.shard.config.stream_node_max_entries = max_entries;
    t.shard.config.stream_node_max_bytes = max_bytes;
}

/// An integer reply's value.
pub fn int_of(reply: Reply) -> i64 {
    match reply {
        Reply::Int(n) => n,
        other => panic!("not an integer: {other:?}"),
    }
}
