//! Values: the neutral decoded form ([`RdbValue`]), the decoding of every value type Redis 7.0
//! loads, and the encoders for the types Redis 7.0 writes.
//!
//! Decoding follows Redis's loader: empty collections are reported as [`Decoded::Empty`] (a
//! loader skips the key, RESTORE refuses it), duplicates in sets, hashes and sorted sets and
//! NaN scores are corruption, and every compact container is validated in full.

use bytes::Bytes;

use super::read::{Reader, Source};
use super::stream::{self, StreamData};
use super::write::Writer;
use super::{types, Error, Result, QUICKLIST_NODE_PACKED, QUICKLIST_NODE_PLAIN};
use crate::listpack::{self, Elem};
use crate::{intset, ziplist, zipmap};

/// A set's members as decoded: an intset keeps its integers.
#[derive(Debug, Clone, PartialEq)]
pub enum SetMembers {
    Ints(Vec<i64>),
    Strs(Vec<Bytes>),
}

/// A value, whatever encoding it was read from.
#[derive(Debug, Clone, PartialEq)]
pub enum RdbValue {
    String(Bytes),
    List(Vec<Bytes>),
    Set(SetMembers),
    /// Members with their scores, in no particular order.
    ZSet(Vec<(Bytes, f64)>),
    Hash(Vec<(Bytes, Bytes)>),
    Stream(Box<StreamData>),
}

/// What reading a value gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    Value(RdbValue),
    /// A collection with no elements: Redis skips such keys when loading.
    Empty,
    /// A module value (skipped: Shardis has no modules), with the module type's name.
    Module(String),
}

fn elem_bytes(e: Elem<'_>) -> Bytes {
    match e {
        Elem::Str(s) => Bytes::copy_from_slice(s),
        Elem::Int(n) => Bytes::from(n.to_string()),
    }
}

/// A sorted set score stored as a listpack or ziplist element.
fn elem_score(e: Elem<'_>) -> Result<f64> {
    let v = match e {
        Elem::Int(n) => n as f64,
        Elem::Str(s) => parse_score(s).ok_or(Error::corrupt("sorted set score"))?,
    };
    if v.is_nan() {
        return Err(Error::corrupt("sorted set NaN score"));
    }
    Ok(v)
}

/// Parses a score written by Redis (`%.17g`, `inf`, `-inf`…).
fn parse_score(s: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(s).ok()?;
    match text.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        t if t.contains("nan") => None,
        t => t.parse().ok(),
    }
}

/// Rejects duplicate keys among `items` (by the key `key` gives).
fn check_unique<T>(items: &[T], key: impl Fn(&T) -> &[u8]) -> Result<()> {
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    for it in items {
        if !seen.insert(key(it)) {
            return Err(Error::corrupt("duplicate member"));
        }
    }
    Ok(())
}

fn pairs_of(elems: Vec<Elem<'_>>) -> Result<Vec<(Bytes, Bytes)>> {
    if !elems.len().is_multiple_of(2) {
        return Err(Error::corrupt("odd number of elements in a hash"));
    }
    let pairs: Vec<(Bytes, Bytes)> = elems
        .chunks_exact(2)
        .map(|p| (elem_bytes(p[0]), elem_bytes(p[1])))
        .collect();
    check_unique(&pairs, |p| &p.0)?;
    Ok(pairs)
}

fn scored_of(elems: Vec<Elem<'_>>) -> Result<Vec<(Bytes, f64)>> {
    if !elems.len().is_multiple_of(2) {
        return Err(Error::corrupt("odd number of elements in a sorted set"));
    }
    let items = elems
        .chunks_exact(2)
        .map(|p| Ok((elem_bytes(p[0]), elem_score(p[1])?)))
        .collect::<Result<Vec<_>>>()?;
    check_unique(&items, |p| &p.0)?;
    Ok(items)
}

fn nonempty(v: RdbValue, empty: bool) -> Decoded {
    if empty {
        Decoded::Empty
    } else {
        Decoded::Value(v)
    }
}

/// The name of a module type from its id (9 characters from a 64-symbol alphabet).
fn module_name(id: u64) -> String {
    const SYMBOLS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut id = id >> 10;
    let mut name = [0u8; 9];
    for slot in name.iter_mut().rev() {
        *slot = SYMBOLS[(id & 63) as usize];
        id >>= 6;
    }
    String::from_utf8_lossy(&name).into_owned()
}

/// Skips a module value of type MODULE_2 (its opcodes until the module EOF).
fn skip_module<S: Source>(r: &mut Reader<S>) -> Result<Decoded> {
    let id = r.length()?;
    loop {
        match r.length()? {
            0 => return Ok(Decoded::Module(module_name(id))),
            1 | 2 => {
                r.length()?;
            }
            3 => {
                r.array::<4>()?;
            }
            4 => {
                r.array::<8>()?;
            }
            5 => {
                r.string()?;
            }
            _ => return Err(Error::corrupt("module value opcode")),
        }
    }
}

/// Reads a value of type `t`.
pub fn read_value<S: Source>(r: &mut Reader<S>, t: u8) -> Result<Decoded> {
    Ok(match t {
        types::STRING => Decoded::Value(RdbValue::String(r.bytes_string()?)),
        types::LIST => {
            let n = r.count(1)?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(r.bytes_string()?);
            }
            nonempty(RdbValue::List(items), n == 0)
        }
        types::SET => {
            let n = r.count(1)?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(r.bytes_string()?);
            }
            check_unique(&items, |b| b)?;
            nonempty(RdbValue::Set(SetMembers::Strs(items)), n == 0)
        }
        types::ZSET | types::ZSET_2 => {
            let n = r.count(2)?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                let member = r.bytes_string()?;
                let score = if t == types::ZSET_2 {
                    r.binary_double()?
                } else {
                    r.text_double()?
                };
                if score.is_nan() {
                    return Err(Error::corrupt("sorted set NaN score"));
                }
                items.push((member, score));
            }
            check_unique(&items, |p| &p.0)?;
            nonempty(RdbValue::ZSet(items), n == 0)
        }
        types::HASH => {
            let n = r.count(2)?;
            let mut pairs = Vec::with_capacity(n);
            for _ in 0..n {
                let f = r.bytes_string()?;
                let v = r.bytes_string()?;
                pairs.push((f, v));
            }
            check_unique(&pairs, |p| &p.0)?;
            nonempty(RdbValue::Hash(pairs), n == 0)
        }
        types::HASH_ZIPMAP => {
            let blob = r.string()?;
            let pairs: Vec<(Bytes, Bytes)> = zipmap::decode(&blob)?
                .into_iter()
                .map(|(f, v)| (Bytes::copy_from_slice(f), Bytes::copy_from_slice(v)))
                .collect();
            check_unique(&pairs, |p| &p.0)?;
            let empty = pairs.is_empty();
            nonempty(RdbValue::Hash(pairs), empty)
        }
        types::LIST_ZIPLIST => {
            let blob = r.string()?;
            let items: Vec<Bytes> = ziplist::decode(&blob)?
                .into_iter()
                .map(elem_bytes)
                .collect();
            let empty = items.is_empty();
            nonempty(RdbValue::List(items), empty)
        }
        types::SET_INTSET => {
            let blob = r.string()?;
            let ints = intset::decode(&blob)?;
            let empty = ints.is_empty();
            nonempty(RdbValue::Set(SetMembers::Ints(ints)), empty)
        }
        types::ZSET_ZIPLIST | types::ZSET_LISTPACK => {
            let blob = r.string()?;
            let elems = if t == types::ZSET_ZIPLIST {
                ziplist::decode(&blob)?
            } else {
                listpack::decode(&blob)?
            };
            let items = scored_of(elems)?;
            let empty = items.is_empty();
            nonempty(RdbValue::ZSet(items), empty)
        }
        types::HASH_ZIPLIST | types::HASH_LISTPACK => {
            let blob = r.string()?;
            let elems = if t == types::HASH_ZIPLIST {
                ziplist::decode(&blob)?
            } else {
                listpack::decode(&blob)?
            };
            let pairs = pairs_of(elems)?;
            let empty = pairs.is_empty();
            nonempty(RdbValue::Hash(pairs), empty)
        }
        types::LIST_QUICKLIST | types::LIST_QUICKLIST_2 => {
            let nodes = r.count(2)?;
            let mut items = Vec::new();
            for _ in 0..nodes {
                let container = if t == types::LIST_QUICKLIST_2 {
                    r.length()?
                } else {
                    QUICKLIST_NODE_PACKED
                };
                let blob = r.string()?;
                match (container, t) {
                    (QUICKLIST_NODE_PLAIN, _) => items.push(Bytes::from(blob)),
                    (QUICKLIST_NODE_PACKED, types::LIST_QUICKLIST) => {
                        items.extend(ziplist::decode(&blob)?.into_iter().map(elem_bytes))
                    }
                    (QUICKLIST_NODE_PACKED, _) => {
                        items.extend(listpack::decode(&blob)?.into_iter().map(elem_bytes))
                    }
                    _ => return Err(Error::corrupt("quicklist node container")),
                }
            }
            let empty = items.is_empty();
            nonempty(RdbValue::List(items), empty)
        }
        types::STREAM_LISTPACKS | types::STREAM_LISTPACKS_2 => {
            let s = stream::read(r, t == types::STREAM_LISTPACKS_2)?;
            Decoded::Value(RdbValue::Stream(Box::new(s)))
        }
        types::MODULE_2 => skip_module(r)?,
        types::MODULE => {
            return Err(Error::Unsupported(
                "a module value in the pre-7.0 module format cannot be skipped".into(),
            ))
        }
        _ => return Err(Error::corrupt("unknown value type")),
    })
}

/// A score as Redis stores it in a listpack: an integer when it is one, else text that reads
/// back to the same double.
pub fn score_elem_text(v: f64) -> Option<String> {
    if v == 0.0 {
        return Some(if v.is_sign_negative() { "-0" } else { "0" }.into());
    }
    if v.is_infinite() {
        return Some(if v < 0.0 { "-inf" } else { "inf" }.into());
    }
    if v.fract() == 0.0 && v.abs() < 9.2e18 {
        return None;
    }
    let plain = format!("{v}");
    Some(if plain.len() <= 24 {
        plain
    } else {
        format!("{v:e}")
    })
}

/// Appends a score to a sorted set listpack.
pub fn push_score(lp: &mut listpack::Builder, v: f64) {
    match score_elem_text(v) {
        Some(text) => lp.push_str(text.as_bytes()),
        None => lp.push_int(v as i64),
    }
}

/// Writes the body of `v` (without its type byte) and returns the type byte, choosing the
/// encodings Redis 7.0 would for Redis's default thresholds.
pub fn write_value(w: &mut Writer<'_>, v: &RdbValue) -> u8 {
    const MAX_ENTRIES: usize = 128;
    const MAX_VALUE: usize = 64;
    match v {
        RdbValue::String(s) => {
            w.string(s);
            types::STRING
        }
        RdbValue::List(items) => {
            write_quicklist(
                w,
                items.chunks(128).map(|chunk| {
                    let mut lp = listpack::Builder::new();
                    for it in chunk {
                        lp.push_str(it);
                    }
                    lp.finish()
                }),
            );
            types::LIST_QUICKLIST_2
        }
        RdbValue::Set(SetMembers::Ints(ints)) if ints.len() <= 512 => {
            let mut sorted = ints.clone();
            sorted.sort_unstable();
            sorted.dedup();
            w.string(&intset::encode(&sorted));
            types::SET_INTSET
        }
        RdbValue::Set(members) => {
            let strs: Vec<Bytes> = match members {
                SetMembers::Ints(ints) => ints.iter().map(|n| Bytes::from(n.to_string())).collect(),
                SetMembers::Strs(s) => s.clone(),
            };
            w.length(strs.len() as u64);
            for s in &strs {
                w.string(s);
            }
            types::SET
        }
        RdbValue::ZSet(items)
            if items.len() <= MAX_ENTRIES && items.iter().all(|i| i.0.len() <= MAX_VALUE) =>
        {
            let mut sorted = items.clone();
            sorted.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
            let mut lp = listpack::Builder::new();
            for (m, s) in &sorted {
                lp.push_str(m);
                push_score(&mut lp, *s);
            }
            w.string(&lp.finish());
            types::ZSET_LISTPACK
        }
        RdbValue::ZSet(items) => {
            w.length(items.len() as u64);
            for (m, s) in items {
                w.string(m);
                w.binary_double(*s);
            }
            types::ZSET_2
        }
        RdbValue::Hash(pairs)
            if pairs.len() <= 512
                && pairs
                    .iter()
                    .all(|p| p.0.len() <= MAX_VALUE && p.1.len() <= MAX_VALUE) =>
        {
            let mut lp = listpack::Builder::new();
            for (f, v) in pairs {
                lp.push_str(f);
                lp.push_str(v);
            }
            w.string(&lp.finish());
            types::HASH_LISTPACK
        }
        RdbValue::Hash(pairs) => {
            w.length(pairs.len() as u64);
            for (f, v) in pairs {
                w.string(f);
                w.string(v);
            }
            types::HASH
        }
        RdbValue::Stream(s) => {
            stream::write(w, s);
            types::STREAM_LISTPACKS_2
        }
    }
}

/// Writes a list as quicklist v2 nodes, one listpack per node.
pub fn write_quicklist<I: ExactSizeIterator<Item = Vec<u8>>>(w: &mut Writer<'_>, nodes: I) {
    w.length(nodes.len() as u64);
    for lp in nodes {
        w.length(QUICKLIST_NODE_PACKED);
        w.string(&lp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ziplist;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn round_trip(v: &RdbValue) -> RdbValue {
        let mut out = Vec::new();
        let t = write_value(&mut Writer::new(&mut out, true), v);
        let mut r = Reader::new(&out[..]);
        let got = read_value(&mut r, t).expect("decodes");
        assert_eq!(r.remaining(), 0);
        match got {
            Decoded::Value(v) => v,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_written_type_round_trips() {
        let big: Vec<Bytes> = (0..1000).map(|i| Bytes::from(format!("e{i}"))).collect();
        let values = vec![
            RdbValue::String(b("hello")),
            RdbValue::String(b("12345")),
            RdbValue::List(vec![b("a"), b("1"), b("-7")]),
            RdbValue::List(big.clone()),
            RdbValue::Set(SetMembers::Ints(vec![1, 5, 9])),
            RdbValue::Set(SetMembers::Strs(vec![b("x"), b("y")])),
            RdbValue::ZSet(vec![(b("a"), 1.5), (b("b"), -2.0), (b("c"), f64::INFINITY)]),
            RdbValue::ZSet(big.iter().map(|m| (m.clone(), 0.25)).collect()),
            RdbValue::Hash(vec![(b("f"), b("v")), (b("n"), b("10"))]),
            RdbValue::Hash(big.iter().map(|m| (m.clone(), m.clone())).collect()),
        ];
        for v in &values {
            let back = round_trip(v);
            match (v, &back) {
                (RdbValue::ZSet(a), RdbValue::ZSet(b)) => {
                    let mut a = a.clone();
                    let mut b = b.clone();
                    a.sort_by(|x, y| x.0.cmp(&y.0));
                    b.sort_by(|x, y| x.0.cmp(&y.0));
                    assert_eq!(a, b);
                }
                _ => assert_eq!(&back, v),
            }
        }
    }

    #[test]
    fn scores_keep_their_exact_value() {
        for v in [
            0.1,
            -0.0,
            1e300,
            -1e-300,
            3.0,
            2.5e15,
            1.0 / 3.0,
            f64::NEG_INFINITY,
        ] {
            let mut lp = listpack::Builder::new();
            push_score(&mut lp, v);
            let lp = lp.finish();
            let e = listpack::decode(&lp).expect("valid")[0];
            let back = elem_score(e).expect("score");
            assert_eq!(back.to_bits(), v.to_bits(), "{v}");
        }
    }

    #[test]
    fn old_encodings_decode() {
        let zl = ziplist::encode(&[Elem::Str(b"a"), Elem::Int(1), Elem::Str(b"b"), Elem::Int(2)]);
        let mut out = Vec::new();
        Writer::new(&mut out, false).string(&zl);
        let decode = |t| read_value(&mut Reader::new(&out[..]), t).expect("valid");
        assert_eq!(
            decode(types::HASH_ZIPLIST),
            Decoded::Value(RdbValue::Hash(vec![(b("a"), b("1")), (b("b"), b("2"))]))
        );
        assert_eq!(
            decode(types::ZSET_ZIPLIST),
            Decoded::Value(RdbValue::ZSet(vec![(b("a"), 1.0), (b("b"), 2.0)]))
        );
        assert_eq!(
            decode(types::LIST_ZIPLIST),
            Decoded::Value(RdbValue::List(vec![b("a"), b("1"), b("b"), b("2")]))
        );
        // Quicklist v1: nodes are ziplists.
        let mut ql = Vec::new();
        {
            let mut w = Writer::new(&mut ql, false);
            w.length(2);
            w.string(&zl);
            w.string(&ziplist::encode(&[Elem::Str(b"z")]));
        }
        assert_eq!(
            read_value(&mut Reader::new(&ql[..]), types::LIST_QUICKLIST).expect("valid"),
            Decoded::Value(RdbValue::List(vec![b("a"), b("1"), b("b"), b("2"), b("z")]))
        );
        let zm = crate::zipmap::encode(&[(b"k", b"v")]);
        let mut out = Vec::new();
        Writer::new(&mut out, false).string(&zm);
        assert_eq!(
            read_value(&mut Reader::new(&out[..]), types::HASH_ZIPMAP).expect("valid"),
            Decoded::Value(RdbValue::Hash(vec![(b("k"), b("v"))]))
        );
    }

    #[test]
    fn duplicates_nan_and_empties() {
        let mut out = Vec::new();
        {
            let mut w = Writer::new(&mut out, false);
            w.length(2);
            w.string(b"a");
            w.string(b"a");
        }
        assert!(read_value(&mut Reader::new(&out[..]), types::SET).is_err());
        let mut out = Vec::new();
        {
            let mut w = Writer::new(&mut out, false);
            w.length(1);
            w.string(b"a");
            w.binary_double(f64::NAN);
        }
        assert!(read_value(&mut Reader::new(&out[..]), types::ZSET_2).is_err());
        assert_eq!(
            read_value(&mut Reader::new(&[0u8][..]), types::LIST).expect("valid"),
            Decoded::Empty
        );
    }

    #[test]
    fn module_values_are_skipped() {
        let mut out = Vec::new();
        {
            let mut w = Writer::new(&mut out, false);
            w.length(12345 << 10);
            w.length(2);
            w.length(7);
            w.length(5);
            w.string(b"data");
            w.length(0);
        }
        let mut r = Reader::new(&out[..]);
        assert!(matches!(
            read_value(&mut r, types::MODULE_2),
            Ok(Decoded::Module(_))
        ));
        assert_eq!(r.remaining(), 0);
    }
}
