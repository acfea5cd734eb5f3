//! Redis's data set digest (DEBUG DIGEST, DEBUG DIGEST-VALUE): SHA1-based, independent of the
//! order keys and unordered elements are met in, so a data set can be compared with Redis's
//! byte for byte.
//!
//! Two primitives: `xor` folds SHA1(data) into a digest (order-free), `mix` folds it and then
//! hashes the digest (order-dependent). A value's digest mixes its type, then its elements
//! (mixed for lists and stream entries, xored for sets; for hashes and sorted sets each
//! pair is mixed into a digest of its own, which is then xored in), and xors in a marker
//! when the key has an expiry. A key's digest mixes its name first; a database's xors in
//! each key's digest.

use crate::db::{Db, Entry};
use crate::order_tree::Item;
use crate::value::Value;

pub type Digest = [u8; 20];

fn sha1(data: &[u8]) -> Digest {
    sha1_smol::Sha1::from(data).digest().bytes()
}

/// Folds SHA1(`data`) into `d`.
pub fn xor(d: &mut Digest, data: &[u8]) {
    for (a, b) in d.iter_mut().zip(sha1(data)) {
        *a ^= b;
    }
}

/// Folds SHA1(`data`) into `d`, then replaces `d` by its own SHA1.
pub fn mix(d: &mut Digest, data: &[u8]) {
    xor(d, data);
    *d = sha1(d);
}

/// Redis's type numbers.
fn type_number(v: &Value) -> u32 {
    match v {
        Value::Str(_) => 0,
        Value::List(_) => 1,
        Value::Set(_) => 2,
        Value::ZSet(_) => 3,
        Value::Hash(_) => 4,
        Value::Stream(_) => 6,
    }
}

/// Folds an entry's value (and whether it expires) into `d` (Redis's `xorObjectDigest`).
pub fn fold_entry(d: &mut Digest, e: &Entry) {
    mix(d, &type_number(&e.value).to_be_bytes());
    match &e.value {
        Value::Str(s) => mix(d, s),
        Value::List(l) => {
            for item in l.iter() {
                mix(d, &item);
            }
        }
        Value::Set(s) => {
            let mut buf = [0u8; 20];
            for m in s.iter() {
                xor(d, m.as_bytes(&mut buf));
            }
        }
        Value::ZSet(z) => {
            z.for_range(0, z.len(), &mut |item: &Item| {
                let mut one = [0u8; 20];
                mix(&mut one, item.member.as_bytes());
                mix(&mut one, crate::num::format_g17(item.score).as_bytes());
                xor(d, &one);
            });
        }
        Value::Hash(h) => {
            for (f, v) in h.iter() {
                let mut one = [0u8; 20];
                mix(&mut one, f);
                mix(&mut one, v);
                xor(d, &one);
            }
        }
        Value::Stream(s) => {
            use crate::t_stream::id::StreamId;
            s.visit(StreamId::MIN, StreamId::MAX, false, |node, entry| {
                mix(d, format!("{}.{}", entry.id.ms, entry.id.seq).as_bytes());
                node.for_each_pair(entry, |f, v| {
                    mix(d, &f.to_bytes());
                    mix(d, &v.to_bytes());
                });
                true
            });
        }
    }
    if e.has_expire() {
        xor(d, b"!!expire!!");
    }
}

/// DEBUG DIGEST-VALUE of one entry.
pub fn value_digest(e: &Entry) -> Digest {
    let mut d = [0u8; 20];
    fold_entry(&mut d, e);
    d
}

/// The xor of the digests of every key of `db` (expired ones included, as Redis), or None
/// when it has no key.
pub fn db_digest(db: &Db) -> Option<Digest> {
    if db.is_empty() {
        return None;
    }
    let mut acc = [0u8; 20];
    for (k, e) in db.iter() {
        let mut d = [0u8; 20];
        mix(&mut d, k);
        fold_entry(&mut d, e);
        xor(&mut acc, &d);
    }
    Some(acc)
}

/// DEBUG DIGEST from each database's key xor (over all shards): each non-empty database
/// mixes in its number, then xors in its keys.
pub fn dataset_digest(dbs: &[Option<Digest>]) -> Digest {
    let mut out = [0u8; 20];
    for (j, d) in dbs.iter().enumerate() {
        if let Some(keys) = d {
            mix(&mut out, &(j as u32).to_be_bytes());
            for (a, b) in out.iter_mut().zip(keys) {
                *a ^= b;
            }
        }
    }
    out
}

pub fn hex(d: &Digest) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestShard;

    #[test]
    fn empty_data_set_digest_is_zeros() {
        assert_eq!(hex(&dataset_digest(&[None, None])), "0".repeat(40));
    }

    #[test]
    fn digests_ignore_order_but_not_content() {
        let mut a = TestShard::new();
        a.run(&["SADD", "s", "x", "y", "1"]);
        a.run(&["HSET", "h", "f", "v", "g", "w"]);
        let mut b = TestShard::new();
        b.run(&["HSET", "h", "g", "w", "f", "v"]);
        b.run(&["SADD", "s", "1", "y", "x"]);
        let da = dataset_digest(&[db_digest(&a.shard.dbs[0])]);
        let db = dataset_digest(&[db_digest(&b.shard.dbs[0])]);
        assert_eq!(da, db);
        b.run(&["HSET", "h", "f", "changed"]);
        assert_ne!(da, dataset_digest(&[db_digest(&b.shard.dbs[0])]));
        // A list's order counts.
        a.run(&["RPUSH", "l", "1", "2"]);
        b.run(&["RPUSH", "l", "2", "1"]);
        let la = value_digest(a.shard.dbs[0].peek(b"l").expect("l"));
        let lb = value_digest(b.shard.dbs[0].peek(b"l").expect("l"));
        assert_ne!(la, lb);
    }

    /// The digests Redis 7.0.15 gives for the same data (DEBUG DIGEST-VALUE, DEBUG DIGEST).
    #[test]
    fn digests_equal_redis_7_0s() {
        let mut t = TestShard::new();
        t.run(&["SET", "s", "hello"]);
        t.run(&["RPUSH", "l", "a", "1", "c"]);
        t.run(&["SADD", "st", "x", "2", "y"]);
        t.run(&["HSET", "h", "f", "v", "g", "12"]);
        t.run(&["ZADD", "z", "1.5", "m", "2", "7"]);
        t.run(&["SET", "e", "v", "EX", "100"]);
        t.run(&["XADD", "x", "5-1", "f", "v"]);
        let db = &t.shard.dbs[0];
        let value = |k: &[u8]| hex(&value_digest(db.peek(k).expect("key")));
        assert_eq!(value(b"s"), "36b23a1456b2dce2c3ed252c456761301dba8060");
        assert_eq!(value(b"l"), "f2dc162838908580b7896509b12fc0dba793310a");
        assert_eq!(value(b"st"), "eccffdbd2837a69a1e4b1375f1229f14c0974e6e");
        assert_eq!(value(b"h"), "8530acc75d5274eb0fc0da86f28ed5533274a6d4");
        assert_eq!(value(b"z"), "0d5ddae63643832a5c58cf3c9f974be2435c825c");
        assert_eq!(value(b"e"), "311b17018163335616e089f6b951c82c477335ac");
        assert_eq!(value(b"x"), "9772ff973b35659052ee64022446d89c034a1d67");
        assert_eq!(
            hex(&dataset_digest(&[db_digest(db)])),
            "6c74da7a3dea21cecbf8ab23933ce39d09e30b62"
        );
    }
}
