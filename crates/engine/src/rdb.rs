//! The engine's values in Redis's RDB serialisation, both ways: what DUMP, snapshots and the
//! log's state records write, and what RESTORE and loading read back.
//!
//! Each value is written in the encoding Redis 7.0 writes for the encoding it has here (a
//! compact hash as a listpack, a large one as a table…), lists one listpack per node and
//! streams node by node with their tombstones, so a stream's node layout (which approximate
//! trimming and XINFO depend on) survives a round trip. Values read back are rebuilt with the
//! shard's settings (encoding thresholds), as Redis converts them on load.

use bytes::Bytes;
use shardis_persist::listpack::Builder;
use shardis_persist::rdb::stream::{self as rdb_stream, StreamData};
use shardis_persist::rdb::value::{push_score, write_quicklist};
use shardis_persist::rdb::{types, Decoded, RdbValue, SetMembers, Writer};
use shardis_persist::{intset, Error};

use crate::listpack::Elem;
use crate::order_tree::Item;
use crate::shard::EngineConfig;
use crate::t_hash::{HashValue, ListpackLimits};
use crate::t_list::{ListOptions, ListValue};
use crate::t_set::{Member, SetValue};
use crate::t_stream::cgroup::{ConsumerGroup, DeliveryCount};
use crate::t_stream::id::StreamId;
use crate::t_stream::node::Node;
use crate::t_stream::stream::Counters;
use crate::t_stream::StreamValue;
use crate::t_zset::{Limits, ZSetValue};
use crate::value::Value;

fn push_elem(lp: &mut Builder, e: Elem<'_>) {
    match e {
        Elem::Str(s) => lp.push_str(s),
        Elem::Int(n) => lp.push_int(n),
    }
}

/// Writes `value`'s body and returns its RDB type byte.
pub fn write_value(w: &mut Writer<'_>, value: &Value) -> u8 {
    match value {
        Value::Str(s) => {
            w.string(s);
            types::STRING
        }
        Value::List(l) => {
            write_list(w, l);
            types::LIST_QUICKLIST_2
        }
        Value::Hash(h) => write_hash(w, h),
        Value::Set(s) => write_set(w, s),
        Value::ZSet(z) => write_zset(w, z),
        Value::Stream(s) => {
            write_stream(w, s);
            types::STREAM_LISTPACKS_2
        }
    }
}

/// The value's type byte and body, as a DUMP payload or a log record carries it.
pub fn serialize(value: &Value, compress: bool) -> Vec<u8> {
    let mut body = Vec::new();
    let t = write_value(&mut Writer::new(&mut body, compress), value);
    let mut out = Vec::with_capacity(body.len() + 1);
    out.push(t);
    out.extend_from_slice(&body);
    out
}

fn write_list(w: &mut Writer<'_>, l: &ListValue) {
    let nodes = l.nodes().filter(|n| !n.is_empty());
    let lps: Vec<Vec<u8>> = nodes
        .map(|node| {
            let mut lp = Builder::new();
            for e in node.view().iter() {
                push_elem(&mut lp, e.value());
            }
            lp.finish()
        })
        .collect();
    write_quicklist(w, lps.into_iter());
}

fn write_hash(w: &mut Writer<'_>, h: &HashValue) -> u8 {
    if h.encoding() == "listpack" {
        let mut lp = Builder::new();
        for (f, v) in h.iter() {
            lp.push_str(f);
            lp.push_str(v);
        }
        w.string(&lp.finish());
        return types::HASH_LISTPACK;
    }
    w.length(h.len() as u64);
    for (f, v) in h.iter() {
        w.string(f);
        w.string(v);
    }
    types::HASH
}

fn write_set(w: &mut Writer<'_>, s: &SetValue) -> u8 {
    if s.encoding() == "intset" {
        let ints: Vec<i64> = s
            .iter()
            .filter_map(|m| match m {
                Member::Int(n) => Some(n),
                Member::Str(_) => None,
            })
            .collect();
        w.string(&intset::encode(&ints));
        return types::SET_INTSET;
    }
    w.length(s.len() as u64);
    let mut buf = [0u8; 20];
    for m in s.iter() {
        w.string(m.as_bytes(&mut buf));
    }
    types::SET
}

fn write_zset(w: &mut Writer<'_>, z: &ZSetValue) -> u8 {
    let n = z.len();
    if z.encoding() == "listpack" {
        let mut lp = Builder::new();
        z.for_range(0, n, &mut |item: &Item| {
            lp.push_str(item.member.as_bytes());
            push_score(&mut lp, item.score);
        });
        w.string(&lp.finish());
        return types::ZSET_LISTPACK;
    }
    w.length(n as u64);
    z.for_range(0, n, &mut |item: &Item| {
        w.string(item.member.as_bytes());
        w.binary_double(item.score);
    });
    types::ZSET_2
}

fn pid(id: StreamId) -> rdb_stream::StreamId {
    rdb_stream::StreamId {
        ms: id.ms,
        seq: id.seq,
    }
}

fn eid(id: rdb_stream::StreamId) -> StreamId {
    StreamId::new(id.ms, id.seq)
}

fn write_stream(w: &mut Writer<'_>, s: &StreamValue) {
    let nodes: Vec<(StreamId, &Node)> = s.nodes().collect();
    w.length(nodes.len() as u64);
    for (master, node) in nodes {
        let entries = node
            .entries(master)
            .map(|e| {
                let mut pairs = Vec::new();
                node.for_each_pair(&e, |f, v| {
                    pairs.push(f.to_bytes());
                    pairs.push(v.to_bytes());
                });
                rdb_stream::StreamEntry {
                    id: pid(e.id),
                    deleted: e.is_deleted(),
                    pairs,
                }
            })
            .collect();
        let saved = rdb_stream::StreamNode {
            master_id: pid(master),
            master_fields: node.master_fields(),
            entries,
        };
        w.string(&pid(master).to_be_bytes());
        w.string(&rdb_stream::node_listpack(&saved));
    }
    let meta = StreamData {
        nodes: Vec::new(),
        length: s.len(),
        last_id: pid(s.last_id()),
        first_id: pid(s.first_id()),
        max_deleted_id: pid(s.max_deleted_id()),
        entries_added: s.entries_added(),
        groups: s
            .groups
            .iter()
            .map(|(name, g)| rdb_stream::Group {
                name: name.clone(),
                last_id: pid(g.last_id),
                entries_read: g.entries_read.and_then(|n| u64::try_from(n).ok()),
                pending: g
                    .pel
                    .iter()
                    .map(|(id, nack)| rdb_stream::Pending {
                        id: pid(*id),
                        delivery_time: nack.delivery_time,
                        delivery_count: nack.delivery_count,
                        consumer: g.owner(nack),
                    })
                    .collect(),
                consumers: g
                    .consumers()
                    .map(|c| rdb_stream::Consumer {
                        name: c.name.clone(),
                        seen_time: c.seen_time,
                    })
                    .collect(),
            })
            .collect(),
    };
    rdb_stream::write_meta(w, &meta);
}

/// Builds the engine's value from a decoded one, with the shard's encoding thresholds.
pub fn to_value(v: RdbValue, config: &EngineConfig) -> Value {
    match v {
        RdbValue::String(s) => Value::Str(crate::value::Str::new(&s)),
        RdbValue::List(items) => {
            Value::List(ListValue::from_values(items, ListOptions::of(config)))
        }
        RdbValue::Set(SetMembers::Strs(members)) => Value::Set(SetValue::from_members(
            &members,
            config.set_max_intset_entries,
        )),
        RdbValue::Set(SetMembers::Ints(ints)) => {
            let members: Vec<Bytes> = ints.iter().map(|n| Bytes::from(n.to_string())).collect();
            Value::Set(SetValue::from_members(
                &members,
                config.set_max_intset_entries,
            ))
        }
        RdbValue::ZSet(items) => {
            let limits = Limits {
                max_entries: config.zset_max_listpack_entries,
                max_value: config.zset_max_listpack_value,
            };
            let items = items
                .into_iter()
                .map(|(member, score)| Item {
                    score,
                    member: crate::order_tree::Member::from(&member[..]),
                })
                .collect();
            Value::ZSet(ZSetValue::from_items(items, limits))
        }
        RdbValue::Hash(pairs) => {
            let limits = ListpackLimits::from_config(config);
            let mut h = HashValue::new();
            for (f, v) in pairs {
                h.set(&f, &v, limits);
            }
            Value::Hash(h)
        }
        RdbValue::Stream(s) => Value::Stream(Box::new(to_stream(*s))),
    }
}

fn to_stream(s: StreamData) -> StreamValue {
    let nodes = s
        .nodes
        .into_iter()
        .map(|n| {
            let master = eid(n.master_id);
            let mut node = Node::with_master(n.master_fields.iter());
            for e in &n.entries {
                node.push_restored(master, eid(e.id), &e.pairs, e.deleted);
            }
            node.shrink();
            (master, node)
        })
        .collect();
    let mut value = StreamValue::from_parts(
        nodes,
        Counters {
            length: s.length,
            last_id: eid(s.last_id),
            first_id: eid(s.first_id),
            max_deleted_id: eid(s.max_deleted_id),
            entries_added: s.entries_added,
        },
    );
    for g in s.groups {
        let entries_read = g.entries_read.and_then(|n| i64::try_from(n).ok());
        let mut group = ConsumerGroup::new(eid(g.last_id), entries_read);
        for c in &g.consumers {
            group.create_consumer(&c.name, c.seen_time);
        }
        for p in &g.pending {
            group.claim(
                eid(p.id),
                &p.consumer,
                p.delivery_time,
                DeliveryCount::Set(p.delivery_count),
            );
        }
        value.groups.insert(g.name, group);
    }
    value
}

/// Why a serialised value was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// Not a valid serialisation.
    Bad(Error),
    /// A collection with no elements.
    Empty,
    /// A module value (named).
    Module(String),
}

/// Reads a value from `type byte + body` (a DUMP payload's or a log record's).
pub fn deserialize(data: &[u8], config: &EngineConfig) -> Result<Value, LoadError> {
    let (&t, body) = data.split_first().ok_or(LoadError::Bad(Error::Truncated))?;
    if !types::is_object_type(t) {
        return Err(LoadError::Bad(Error::corrupt("unknown value type")));
    }
    let mut r = shardis_persist::rdb::Reader::new(body);
    match shardis_persist::rdb::value::read_value(&mut r, t).map_err(LoadError::Bad)? {
        Decoded::Value(v) => Ok(to_value(v, config)),
        Decoded::Empty => Err(LoadError::Empty),
        Decoded::Module(name) => Err(LoadError::Module(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    fn round_trip(args: &[&[&str]], key: &str) {
        let mut t = TestShard::new();
        for a in args {
            t.run(a);
        }
        let config = t.shard.config.clone();
        let before = t.shard.dbs[0]
            .peek(key.as_bytes())
            .expect("key")
            .value
            .clone();
        let data = serialize(&before, true);
        let after = deserialize(&data, &config).expect("reads back");
        assert_eq!(before.type_name(), after.type_name());
        assert_eq!(before.encoding(), after.encoding(), "{key}");
        // Serialising again gives the same bytes: nothing was lost or reordered.
        assert_eq!(serialize(&after, true), data, "{key}");
    }

    #[test]
    fn every_type_and_encoding_round_trips() {
        round_trip(&[&["SET", "s", "hello"]], "s");
        round_trip(&[&["SET", "s", "123"]], "s");
        round_trip(&[&["RPUSH", "l", "a", "1", "-99999999999", "x"]], "l");
        round_trip(&[&["SADD", "is", "1", "2", "-3"]], "is");
        round_trip(&[&["SADD", "hs", "a", "b", "1"]], "hs");
        round_trip(&[&["ZADD", "z", "1.5", "a", "-inf", "b", "3", "c"]], "z");
        round_trip(&[&["HSET", "h", "f", "v", "n", "12"]], "h");
        round_trip(
            &[
                &["XADD", "x", "1-1", "f", "v", "g", "w"],
                &["XADD", "x", "1-2", "f", "v2", "g", "w2"],
                &["XADD", "x", "2-0", "other", "9"],
                &["XDEL", "x", "1-2"],
                &["XGROUP", "CREATE", "x", "grp", "0"],
                &[
                    "XREADGROUP",
                    "GROUP",
                    "grp",
                    "alice",
                    "COUNT",
                    "2",
                    "STREAMS",
                    "x",
                    ">",
                ],
                &["XGROUP", "CREATECONSUMER", "x", "grp", "bob"],
            ],
            "x",
        );
    }

    #[test]
    fn large_collections_use_the_general_encodings() {
        let mut t = TestShard::new();
        let mut hset = vec!["HSET", "h"];
        let mut zadd = vec!["ZADD", "z"];
        let mut sadd = vec!["SADD", "s"];
        let mut rpush = vec!["RPUSH", "l"];
        let names: Vec<String> = (0..1000).map(|i| format!("member-{i}")).collect();
        for n in &names {
            hset.extend([n.as_str(), n.as_str()]);
            zadd.extend(["1", n.as_str()]);
            sadd.push(n);
            rpush.push(n);
        }
        for cmd in [&hset, &zadd, &sadd, &rpush] {
            t.run(cmd);
        }
        let config = t.shard.config.clone();
        for key in ["h", "z", "s", "l"] {
            let v = t.shard.dbs[0]
                .peek(key.as_bytes())
                .expect("key")
                .value
                .clone();
            let data = serialize(&v, true);
            let back = deserialize(&data, &config).expect("valid");
            assert_eq!(back.encoding(), v.encoding());
            // Tables iterate in their own order: compare the contents.
            assert!(content(&back) == content(&v), "{key} differs");
        }
    }

    /// A value's elements, sorted, as text.
    fn content(v: &Value) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = match v {
            Value::Hash(h) => h.iter().map(|(f, v)| [f, b"=", v].concat()).collect(),
            Value::Set(s) => s.iter().map(|m| m.to_bytes().to_vec()).collect(),
            Value::List(l) => l.iter().map(|e| e.to_vec()).collect(),
            Value::ZSet(z) => {
                let mut items = Vec::new();
                z.for_range(0, z.len(), &mut |i: &Item| {
                    items.push([i.member.as_bytes(), &i.score.to_le_bytes()].concat())
                });
                items
            }
            _ => Vec::new(),
        };
        out.sort();
        out
    }

    #[test]
    fn bad_payloads_are_errors() {
        let config = EngineConfig::default();
        assert!(deserialize(&[], &config).is_err());
        assert!(deserialize(&[8, 0], &config).is_err());
        assert_eq!(deserialize(&[1, 0], &config).err(), Some(LoadError::Empty));
    }
}
