//! SORT and SORT_RO (Redis's `sort.c`): sort a list, set or sorted set numerically or
//! lexicographically, optionally by weights or hash fields found in other keys (`BY`),
//! fetching other keys per element (`GET`), and storing the result as a list (`STORE`).
//!
//! The keys that `BY` and `GET` patterns name are read through the context like any key: the
//! runtime makes them available on this shard before calling the command.

use bytes::Bytes;
use shardis_resp::Reply;
use std::cmp::Ordering;

use crate::command::table::Registration;
use crate::error;
use crate::num;
use crate::shard::Ctx;
use crate::t_list::{ListOptions, ListValue};
use crate::value::Value;

pub static COMMANDS: &[Registration] = &[
    Registration::shard("sort", sort)
        .with_getkeys(store_key)
        .with_key_finder(pattern_keys),
    Registration::shard("sort_ro", sort_ro).with_key_finder(pattern_keys),
];

/// The elements SORT works on, in the source's native order: list order, set iteration
/// order, sorted sets by ascending score (then member). Other types are WRONGTYPE.
///
/// This and [`stored_list`] are the only places that know how lists, sets and sorted sets
/// are represented.
fn source_elements(value: &Value) -> Result<Vec<Bytes>, Reply> {
    match value {
        Value::List(l) => Ok(l.iter().collect()),
        Value::Set(s) => Ok(s
            .iter()
            .map(|m| {
                let mut buf = [0u8; 20];
                Bytes::copy_from_slice(m.as_bytes(&mut buf))
            })
            .collect()),
        Value::ZSet(z) => {
            let mut members = Vec::with_capacity(z.len());
            z.for_range(0, z.len(), &mut |item| {
                members.push(Bytes::copy_from_slice(&item.member))
            });
            Ok(members)
        }
        _ => Err(error::wrongtype()),
    }
}

/// The list value STORE writes.
fn stored_list(items: Vec<Bytes>, options: ListOptions) -> Value {
    Value::List(ListValue::from_values(items, options))
}

/// SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA] [STORE dest]
pub fn sort(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    sort_generic(ctx, args, false)
}

/// SORT_RO key … (SORT without STORE)
pub fn sort_ro(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    sort_generic(ctx, args, true)
}

/// Parsed SORT options.
struct SortOptions<'a> {
    desc: bool,
    alpha: bool,
    limit_start: i64,
    limit_count: i64,
    store: Option<&'a Bytes>,
    by: Option<&'a [u8]>,
    /// A `BY` pattern without `*` (such as `nosort`): keep the source order.
    dont_sort: bool,
    gets: Vec<&'a [u8]>,
}

fn parse_options(args: &[Bytes], readonly: bool) -> Result<SortOptions<'_>, Reply> {
    let mut o = SortOptions {
        desc: false,
        alpha: false,
        limit_start: 0,
        limit_count: -1,
        store: None,
        by: None,
        dont_sort: false,
        gets: Vec::new(),
    };
    let mut j = 2;
    while j < args.len() {
        let arg = &args[j][..];
        let left = args.len() - j - 1;
        if arg.eq_ignore_ascii_case(b"asc") {
            o.desc = false;
        } else if arg.eq_ignore_ascii_case(b"desc") {
            o.desc = true;
        } else if arg.eq_ignore_ascii_case(b"alpha") {
            o.alpha = true;
        } else if arg.eq_ignore_ascii_case(b"limit") && left >= 2 {
            let parse = |a: &[u8]| crate::num::parse_i64(a).ok_or_else(error::not_integer);
            o.limit_start = parse(&args[j + 1])?;
            o.limit_count = parse(&args[j + 2])?;
            j += 2;
        } else if !readonly && arg.eq_ignore_ascii_case(b"store") && left >= 1 {
            o.store = Some(&args[j + 1]);
            j += 1;
        } else if arg.eq_ignore_ascii_case(b"by") && left >= 1 {
            let pattern = &args[j + 1][..];
            o.by = Some(pattern);
            // A constant pattern means "do not sort"; a later real pattern does not undo it
            // (as in Redis).
            if !pattern.contains(&b'*') {
                o.dont_sort = true;
            }
            j += 1;
        } else if arg.eq_ignore_ascii_case(b"get") && left >= 1 {
            o.gets.push(&args[j + 1][..]);
            j += 1;
        } else {
            return Err(error::syntax());
        }
        j += 1;
    }
    Ok(o)
}

/// Redis's `lookupKeyByPattern`: `#` is the element itself; otherwise the first `*` is
/// replaced by the element to name a key, whose string value is returned, or, when the
/// pattern goes on with `->field`, the value of that field of the hash at the key. A pattern
/// without `*`, a missing key or a key of another type gives None.
fn lookup_by_pattern(ctx: &mut Ctx<'_>, pattern: &[u8], element: &Bytes) -> Option<Bytes> {
    if pattern == b"#" {
        return Some(element.clone());
    }
    let (key, field) = pattern_key(pattern, element)?;
    match (ctx.lookup_read(&key)?, field) {
        (Value::Hash(h), Some(field)) => h.get(field).map(Bytes::copy_from_slice),
        (Value::Str(s), None) => Some(s.clone()),
        _ => None,
    }
}

/// The key a pattern names for `element` (the first `*` replaced by it), and the hash field
/// after `->` if any. None for a pattern without `*`.
fn pattern_key<'p>(pattern: &'p [u8], element: &[u8]) -> Option<(Vec<u8>, Option<&'p [u8]>)> {
    let star = pattern.iter().position(|&c| c == b'*')?;
    let after = &pattern[star + 1..];
    let (suffix, field) = match after.windows(2).position(|w| w == b"->") {
        Some(arrow) if arrow + 2 < after.len() => (&after[..arrow], Some(&after[arrow + 2..])),
        _ => (after, None),
    };
    let mut key = Vec::with_capacity(star + element.len() + suffix.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(element);
    key.extend_from_slice(suffix);
    Some((key, field))
}

/// SORT's keys as Redis's `sortGetKeys` finds them: the source, and the last STORE target
/// (skipping the arguments of LIMIT, GET and BY).
pub fn store_key(args: &[Bytes], out: &mut Vec<usize>) {
    if args.len() < 2 {
        return; // arity checks refuse it before
    }
    out.push(1);
    let mut store = None;
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        if a.eq_ignore_ascii_case(b"limit") {
            i += 2;
        } else if a.eq_ignore_ascii_case(b"get") || a.eq_ignore_ascii_case(b"by") {
            i += 1;
        } else if a.eq_ignore_ascii_case(b"store") && i + 1 < args.len() {
            store = Some(i + 1);
        }
        i += 1;
    }
    out.extend(store);
}

/// The keys SORT's BY and GET patterns will read for the elements at the source key: the
/// runtime gathers them when they live on other shards. Empty when there are no such patterns
/// (or the arguments are wrong: the command then reports the error itself).
pub fn pattern_keys(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Vec<Bytes> {
    let [name, source, ..] = args else {
        return Vec::new(); // arity checks refuse it before
    };
    let readonly = name.eq_ignore_ascii_case(b"sort_ro");
    let Ok(o) = parse_options(args, readonly) else {
        return Vec::new();
    };
    let by = o.by.filter(|_| !o.dont_sort);
    let gets: Vec<&[u8]> = o.gets.iter().copied().filter(|g| *g != b"#").collect();
    if by.is_none() && gets.is_empty() {
        return Vec::new();
    }
    // Not a lookup of the command's own: no statistics, no keymiss event.
    let elements = match ctx.entry(source).map(|e| source_elements(&e.value)) {
        Some(Ok(elements)) => elements,
        _ => return Vec::new(),
    };
    let mut keys: ahash::HashSet<Bytes> = Default::default();
    for element in &elements {
        for pattern in by.iter().chain(gets.iter()) {
            if let Some((key, _)) = pattern_key(pattern, element) {
                keys.insert(Bytes::from(key));
            }
        }
    }
    keys.into_iter().collect()
}

/// Reads a sort weight as Redis does with `strtod`: the text up to the first NUL, leading
/// spaces allowed, nothing after the number, no NaN, nothing out of range. An empty string
/// is 0 (strtod reads nothing and stops at the terminator).
fn parse_score(s: &[u8]) -> Option<f64> {
    let s = match s.iter().position(|&c| c == 0) {
        Some(nul) => &s[..nul],
        None => s,
    };
    if s.is_empty() {
        return Some(0.0);
    }
    let text = std::str::from_utf8(s).ok()?;
    let text = text.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let v: f64 = text.parse().ok()?;
    if v.is_nan() || num::strtod_range_error(text, v) {
        return None;
    }
    Some(v)
}

/// What an element is sorted by.
enum SortKey {
    /// Numeric sort: the weight (0 when a BY key is missing).
    Score(f64),
    /// ALPHA with BY: the weight's bytes (None, sorting first, when missing).
    Text(Option<Bytes>),
    /// ALPHA without BY: the element itself.
    Element,
}

fn compare(a: &(Bytes, SortKey), b: &(Bytes, SortKey)) -> Ordering {
    match (&a.1, &b.1) {
        // Equal weights fall back to the elements, so the result is deterministic.
        (SortKey::Score(x), SortKey::Score(y)) => x
            .partial_cmp(y)
            .unwrap_or(Ordering::Equal)
            .then_with(|| a.0.cmp(&b.0)),
        (SortKey::Text(x), SortKey::Text(y)) => x.cmp(y),
        _ => a.0.cmp(&b.0),
    }
}

/// The output window `[start, end]` for LIMIT over `len` elements, clamped as Redis does;
/// empty when `end < start`.
fn limit_window(len: usize, limit_start: i64, limit_count: i64) -> (i64, i64) {
    let len = len as i64;
    let mut start = limit_start.clamp(0, len);
    let count = limit_count.clamp(-1, len);
    let mut end = if count < 0 {
        len - 1
    } else {
        start + count - 1
    };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    if end >= len {
        end = len - 1;
    }
    (start, end)
}

fn sort_generic(ctx: &mut Ctx<'_>, args: &[Bytes], readonly: bool) -> Reply {
    let mut o = match parse_options(args, readonly) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let (mut elements, is_set, is_ordered) = match ctx.lookup_read(&args[1]) {
        None => (Vec::new(), false, false),
        Some(v) => {
            let is_set = matches!(v, Value::Set(_));
            match source_elements(v) {
                Ok(e) => (e, is_set, !is_set),
                Err(e) => return e,
            }
        }
    };
    // A set has no order of its own: what gets stored, or returned to a script, must not
    // depend on its layout.
    if o.dont_sort && is_set && (o.store.is_some() || ctx.from_script) {
        o.dont_sort = false;
        o.alpha = true;
        o.by = None;
    }
    // Unsorted lists and sorted sets keep their order, read from the other end for DESC.
    if o.dont_sort && is_ordered && o.desc {
        elements.reverse();
    }
    let (start, end) = limit_window(elements.len(), o.limit_start, o.limit_count);

    if !o.dont_sort {
        let mut bad_score = false;
        let mut keyed: Vec<(Bytes, SortKey)> = Vec::with_capacity(elements.len());
        for element in elements {
            let weight = match o.by {
                Some(pattern) => lookup_by_pattern(ctx, pattern, &element),
                None => None,
            };
            let key = match (o.alpha, o.by.is_some()) {
                (true, true) => SortKey::Text(weight),
                (true, false) => SortKey::Element,
                (false, by) => {
                    let text = if by {
                        weight.as_deref()
                    } else {
                        Some(&element[..])
                    };
                    match text.map(parse_score) {
                        None => SortKey::Score(0.0),
                        Some(Some(score)) => SortKey::Score(score),
                        Some(None) => {
                            bad_score = true;
                            SortKey::Score(0.0)
                        }
                    }
                }
            };
            keyed.push((element, key));
        }
        if bad_score {
            return Reply::err("ERR One or more scores can't be converted into double");
        }
        if o.desc {
            keyed.sort_by(|a, b| compare(b, a));
        } else {
            keyed.sort_by(compare);
        }
        elements = keyed.into_iter().map(|(e, _)| e).collect();
    }

    let window: &[Bytes] = if end >= start {
        elements.get(start as usize..=end as usize).unwrap_or(&[])
    } else {
        &[]
    };
    match o.store {
        None => {
            if o.gets.is_empty() {
                return Reply::Array(window.iter().cloned().map(Reply::Bulk).collect());
            }
            let mut out = Vec::with_capacity(window.len() * o.gets.len());
            for element in window {
                for pattern in &o.gets {
                    out.push(lookup_by_pattern(ctx, pattern, element).into());
                }
            }
            Reply::Array(out)
        }
        Some(dest) => {
            let items: Vec<Bytes> = if o.gets.is_empty() {
                window.to_vec()
            } else {
                let mut items = Vec::with_capacity(window.len() * o.gets.len());
                for element in window {
                    for pattern in &o.gets {
                        items.push(lookup_by_pattern(ctx, pattern, element).unwrap_or_default());
                    }
                }
                items
            };
            let stored = items.len();
            if stored > 0 {
                let options = ListOptions::of(&ctx.shard.config);
                ctx.set(dest, stored_list(items, options));
                // Redis counts one change per stored element; `set` counted one already.
                ctx.dirty(stored as u64 - 1);
                ctx.notify(crate::notify::LIST, "sortstore", dest);
            } else {
                ctx.delete_destination(dest);
            }
            Reply::Int(stored as i64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::t_set::SetValue;
    use crate::t_zset::ZSetValue;
    use crate::testing::*;

    // Source values are built and read through the placeholder types directly, as the list,
    // set and sorted-set commands live in other modules.
    fn put(t: &mut TestShard, key: &str, v: Value) {
        t.shard.dbs[0].set(key.as_bytes(), v, 0);
    }

    fn list(t: &mut TestShard, key: &str, items: &[&str]) {
        put(
            t,
            key,
            Value::List(ListValue::from_values(items, ListOptions::default())),
        );
    }

    fn set(t: &mut TestShard, key: &str, members: &[&str]) {
        put(t, key, Value::Set(SetValue::from_members(members, 512)));
    }

    fn zset(t: &mut TestShard, key: &str, members: &[(f64, &str)]) {
        let mut z = ZSetValue::default();
        let limits = crate::t_zset::Limits {
            max_entries: 128,
            max_value: 64,
        };
        for (s, m) in members {
            z.insert(m.as_bytes(), *s, limits);
        }
        put(t, key, Value::ZSet(z));
    }

    fn stored(t: &mut TestShard, key: &str) -> Option<Vec<Bytes>> {
        match t.shard.dbs[0].peek(key.as_bytes()).map(|e| &e.value) {
            Some(Value::List(l)) => Some(l.iter().collect()),
            Some(other) => panic!("not a list: {other:?}"),
            None => None,
        }
    }

    fn strs(v: &[&str]) -> Vec<Bytes> {
        v.iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    /// `tosort` holds 0..n with weights in `weight_<i>` and `wobj_<i>->weight`.
    fn weighted(t: &mut TestShard, weights: &[&str]) {
        let ids: Vec<String> = (0..weights.len()).map(|i| i.to_string()).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        list(t, "tosort", &refs);
        for (i, w) in weights.iter().enumerate() {
            t.run(&["set", &format!("weight_{i}"), w]);
            t.run(&["hset", &format!("wobj_{i}"), "weight", w]);
        }
    }

    #[test]
    fn numeric_and_alpha() {
        let mut t = TestShard::new();
        list(&mut t, "l", &["3", "10", "-1", "2.5"]);
        assert_eq!(t.run(&["sort", "l"]), bulks(&["-1", "2.5", "3", "10"]));
        assert_eq!(
            t.run(&["sort", "l", "DESC"]),
            bulks(&["10", "3", "2.5", "-1"])
        );
        assert_eq!(
            t.run(&["sort", "l", "desc", "asc"]),
            bulks(&["-1", "2.5", "3", "10"])
        );
        list(&mut t, "m", &["10", "3", "1", "2"]);
        assert_eq!(
            t.run(&["sort", "m", "alpha"]),
            bulks(&["1", "10", "2", "3"])
        );
        assert_eq!(
            t.run(&["sort", "m", "alpha", "desc"]),
            bulks(&["3", "2", "10", "1"])
        );
        let floats = [
            "1.1", "5.10", "3.10", "7.44", "2.1", "5.75", "6.12", "0.25", "1.15",
        ];
        list(&mut t, "f", &floats);
        assert_eq!(
            t.run(&["sort", "f"]),
            bulks(&["0.25", "1.1", "1.15", "2.1", "3.10", "5.10", "5.75", "6.12", "7.44"])
        );
        // Equal scores fall back to comparing the elements.
        list(&mut t, "eq", &["1.0", "1", "01"]);
        assert_eq!(t.run(&["sort", "eq"]), bulks(&["01", "1", "1.0"]));
        assert_eq!(t.run(&["sort", "eq", "desc"]), bulks(&["1.0", "1", "01"]));
    }

    #[test]
    fn sets_and_sorted_sets() {
        let mut t = TestShard::new();
        set(&mut t, "s", &["5", "1", "3"]);
        assert_eq!(t.run(&["sort", "s"]), bulks(&["1", "3", "5"]));
        zset(
            &mut t,
            "z",
            &[(1.0, "a"), (5.0, "b"), (2.0, "c"), (10.0, "d"), (3.0, "e")],
        );
        assert_eq!(
            t.run(&["sort", "z", "alpha", "desc"]),
            bulks(&["e", "d", "c", "b", "a"])
        );
        assert_eq!(
            t.run(&["sort", "z", "by", "nosort", "asc"]),
            bulks(&["a", "c", "e", "b", "d"])
        );
        assert_eq!(
            t.run(&["sort", "z", "by", "nosort", "desc"]),
            bulks(&["d", "b", "e", "c", "a"])
        );
        for (dir, limit, want) in [
            ("asc", ["0", "1"], &["a"][..]),
            ("desc", ["0", "1"], &["d"]),
            ("asc", ["0", "2"], &["a", "c"]),
            ("desc", ["0", "2"], &["d", "b"]),
            ("asc", ["5", "10"], &[]),
            ("asc", ["-10", "100"], &["a", "c", "e", "b", "d"]),
            ("desc", ["1", "2"], &["b", "e"]),
        ] {
            let r = t.run(&[
                "sort", "z", "by", "nosort", dir, "limit", limit[0], limit[1],
            ]);
            assert_eq!(r, bulks(want), "{dir} {limit:?}");
        }
        // An unsorted set is returned whole, in whatever order it has.
        let Reply::Array(v) = t.run(&["sort", "s", "by", "nosort"]) else {
            panic!()
        };
        assert_eq!(v.len(), 3);
    }

    #[test]
    fn bad_doubles() {
        let mut t = TestShard::new();
        let e = err("ERR One or more scores can't be converted into double");
        set(&mut t, "s", &["1", "2", "3", "4", "not-a-double"]);
        assert_eq!(t.run(&["sort", "s"]), e);
        assert_eq!(t.run(&["sort", "s", "store", "dst"]), e);
        assert_eq!(t.run(&["exists", "dst"]), int(0));
        // ALPHA does not parse.
        assert_eq!(len(&t.run(&["sort", "s", "alpha"])), 5);
        set(&mut t, "n", &["1", "2", "3", "4"]);
        t.run(&["set", "score:1", "10"]);
        t.run(&["set", "score:2", "20"]);
        t.run(&["set", "score:3", "30"]);
        t.run(&["set", "score:4", "not-a-double"]);
        assert_eq!(t.run(&["sort", "n", "by", "score:*"]), e);
        list(&mut t, "nan", &["nan"]);
        assert_eq!(t.run(&["sort", "nan"]), e);
    }

    fn len(r: &Reply) -> usize {
        match r {
            Reply::Array(v) => v.len(),
            other => panic!("not an array: {other:?}"),
        }
    }

    #[test]
    fn scores_read_like_strtod() {
        assert_eq!(parse_score(b""), Some(0.0));
        assert_eq!(parse_score(b" \t1.5"), Some(1.5));
        assert_eq!(parse_score(b"1\0junk"), Some(1.0));
        assert_eq!(parse_score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_score(b"+Infinity"), Some(f64::INFINITY));
        assert_eq!(parse_score(b"1e3"), Some(1000.0));
        assert_eq!(parse_score(b"0.0e5"), Some(0.0));
        for bad in [
            &b"1 "[..],
            b" ",
            b"abc",
            b"nan",
            b"1e400",
            b"-1e400",
            b"1e-400",
            b"\xff",
        ] {
            assert_eq!(parse_score(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn by_key_and_hash_field() {
        let mut t = TestShard::new();
        weighted(&mut t, &["30", "0.5", "-2", "100", "7"]);
        let want = bulks(&["2", "1", "4", "0", "3"]);
        assert_eq!(t.run(&["sort", "tosort", "by", "weight_*"]), want);
        assert_eq!(t.run(&["sort", "tosort", "by", "wobj_*->weight"]), want);
        assert_eq!(
            t.run(&["sort", "tosort", "by", "weight_*", "limit", "1", "2"]),
            bulks(&["1", "4"])
        );
        assert_eq!(
            t.run(&["sort", "tosort", "by", "weight_*", "desc", "limit", "0", "2"]),
            bulks(&["3", "0"])
        );
        // ALPHA by weights: "-2" < "0.5" < "100" < "30" < "7".
        assert_eq!(
            t.run(&["sort", "tosort", "by", "weight_*", "alpha"]),
            bulks(&["2", "1", "3", "0", "4"])
        );
        // A BY key of the wrong type counts as missing.
        t.run(&["del", "weight_0"]);
        t.run(&["hset", "weight_0", "x", "y"]);
        assert_eq!(
            t.run(&["sort", "tosort", "by", "weight_*"]),
            bulks(&["2", "0", "1", "4", "3"])
        );
    }

    #[test]
    fn by_missing_keys() {
        let mut t = TestShard::new();
        set(&mut t, "s", &["b", "a", "c", "aa"]);
        // Numeric: missing weights are 0, ties broken by the element.
        assert_eq!(
            t.run(&["sort", "s", "by", "w_*"]),
            bulks(&["a", "aa", "b", "c"])
        );
        t.run(&["set", "w_c", "-1"]);
        assert_eq!(
            t.run(&["sort", "s", "by", "w_*"]),
            bulks(&["c", "a", "aa", "b"])
        );
        // ALPHA: missing weights sort first.
        t.run(&["set", "w_a", "z"]);
        let Reply::Array(v) = t.run(&["sort", "s", "by", "w_*", "alpha"]) else {
            panic!()
        };
        assert_eq!(v[2..], [bulk("c"), bulk("a")]);
        let Reply::Array(v) = t.run(&["sort", "s", "by", "w_*", "alpha", "desc"]) else {
            panic!()
        };
        assert_eq!(v[..2], [bulk("a"), bulk("c")]);
    }

    #[test]
    fn by_equal_scores_sorts_lexicographically() {
        let mut t = TestShard::new();
        let members = ["a", "b", "c", "d", "aa", "aaa", "azz", "z"];
        set(&mut t, "s", &members);
        for m in members {
            t.run(&["set", &format!("score:{m}"), "100"]);
        }
        assert_eq!(
            t.run(&["sort", "s", "by", "score:*"]),
            bulks(&["a", "aa", "aaa", "azz", "b", "c", "d", "z"])
        );
    }

    #[test]
    fn get_patterns() {
        let mut t = TestShard::new();
        weighted(&mut t, &["30", "0.5", "-2"]);
        assert_eq!(
            t.run(&["sort", "tosort", "get", "#"]),
            bulks(&["0", "1", "2"])
        );
        assert_eq!(
            t.run(&["sort", "tosort", "get", "foo"]),
            arr(vec![Reply::Nil, Reply::Nil, Reply::Nil])
        );
        assert_eq!(
            t.run(&[
                "sort",
                "tosort",
                "by",
                "weight_*",
                "get",
                "#",
                "get",
                "weight_*",
                "get",
                "wobj_*->weight",
                "get",
                "nokey_*"
            ]),
            arr(vec![
                bulk("2"),
                bulk("-2"),
                bulk("-2"),
                Reply::Nil,
                bulk("1"),
                bulk("0.5"),
                bulk("0.5"),
                Reply::Nil,
                bulk("0"),
                bulk("30"),
                bulk("30"),
                Reply::Nil,
            ])
        );
        // GET of a missing field, of a hash as a string, of a string as a hash.
        assert_eq!(
            t.run(&[
                "sort",
                "tosort",
                "limit",
                "0",
                "1",
                "get",
                "wobj_*->nofield",
                "get",
                "wobj_*",
                "get",
                "weight_*->x"
            ]),
            arr(vec![Reply::Nil, Reply::Nil, Reply::Nil])
        );
        // A pattern ending in "->" names a plain key.
        list(&mut t, "l", &["a"]);
        t.run(&["set", "x:a->", "100"]);
        assert_eq!(
            t.run(&["sort", "l", "by", "num", "get", "x:*->"]),
            bulks(&["100"])
        );
        assert_eq!(
            t.run(&["sort_ro", "l", "by", "nosort", "get", "x:*->"]),
            bulks(&["100"])
        );
        // Only the first "*" is replaced, and the field may itself contain "->".
        t.run(&["hset", "h_a_*", "f->g", "v"]);
        assert_eq!(
            t.run(&["sort", "l", "by", "c", "get", "h_*_*->f->g"]),
            bulks(&["v"])
        );
    }

    #[test]
    fn nosort_keeps_list_order() {
        let mut t = TestShard::new();
        list(&mut t, "testa", &["5", "3", "4", "1", "2"]);
        assert_eq!(
            t.run(&["sort", "testa", "by", "nosort"]),
            bulks(&["5", "3", "4", "1", "2"])
        );
        assert_eq!(
            t.run(&["sort", "testa", "by", "nosort", "desc"]),
            bulks(&["2", "1", "4", "3", "5"])
        );
        assert_eq!(
            t.run(&["sort", "testa", "by", "nosort", "store", "testb"]),
            int(5)
        );
        assert_eq!(
            stored(&mut t, "testb"),
            Some(strs(&["5", "3", "4", "1", "2"]))
        );
        assert_eq!(
            t.run(&["sort", "testa", "by", "nosort", "limit", "0", "3", "store", "testb"]),
            int(3)
        );
        assert_eq!(stored(&mut t, "testb"), Some(strs(&["5", "3", "4"])));
        // A constant BY is not undone by a later pattern.
        assert_eq!(
            t.run(&["sort", "testa", "by", "nosort", "by", "w_*"]),
            bulks(&["5", "3", "4", "1", "2"])
        );
    }

    #[test]
    fn store() {
        let mut t = TestShard::new();
        weighted(&mut t, &["3", "1", "2"]);
        let dirty = t.shard.dirty;
        assert_eq!(
            t.run(&["sort", "tosort", "by", "weight_*", "store", "res"]),
            int(3)
        );
        assert_eq!(stored(&mut t, "res"), Some(strs(&["1", "2", "0"])));
        assert_eq!(t.shard.dirty, dirty + 3);
        // Missing GET values are stored as empty strings.
        assert_eq!(
            t.run(&["sort", "tosort", "get", "#", "get", "nokey_*", "store", "res"]),
            int(6)
        );
        assert_eq!(
            stored(&mut t, "res"),
            Some(strs(&["0", "", "1", "", "2", ""]))
        );
        // The destination is replaced whatever it was, and its TTL dropped.
        t.run(&["set", "dst", "x"]);
        t.shard.dbs[0].set_expire(b"dst", t.now_ms + 100_000);
        assert_eq!(t.run(&["sort", "tosort", "store", "dst"]), int(3));
        assert!(t.shard.dbs[0]
            .peek(b"dst")
            .is_some_and(|e| e.expire_at.is_none()));
        // The last STORE wins.
        assert_eq!(
            t.run(&["sort", "tosort", "store", "a", "store", "b"]),
            int(3)
        );
        assert_eq!(stored(&mut t, "a"), None);
        assert!(stored(&mut t, "b").is_some());
        // Storing onto the source key.
        assert_eq!(
            t.run(&["sort", "tosort", "desc", "store", "tosort"]),
            int(3)
        );
        assert_eq!(stored(&mut t, "tosort"), Some(strs(&["2", "1", "0"])));
    }

    #[test]
    fn store_empty_results() {
        let mut t = TestShard::new();
        assert_eq!(t.run(&["sort", "foo", "store", "bar"]), int(0));
        assert_eq!(t.run(&["exists", "bar"]), int(0));
        list(&mut t, "foo", &["bar"]);
        assert_eq!(
            t.run(&["sort", "foo", "alpha", "limit", "10", "10", "store", "zap"]),
            int(0)
        );
        assert_eq!(t.run(&["exists", "zap"]), int(0));
        assert_eq!(t.run(&["sort", "emptylist", "store", "foo"]), int(0));
        assert_eq!(t.run(&["exists", "foo"]), int(0));
        assert_eq!(t.run(&["sort", "nokey"]), arr(vec![]));
        assert_eq!(t.run(&["sort", "nokey", "get", "#"]), arr(vec![]));
    }

    #[test]
    fn store_of_unsorted_set_is_sorted() {
        let mut t = TestShard::new();
        set(&mut t, "s", &["a", "b", "c", "z", "aa", "aaa", "azz", "v"]);
        assert_eq!(t.run(&["sort", "s", "by", "_", "store", "l"]), int(8));
        assert_eq!(
            stored(&mut t, "l"),
            Some(strs(&["a", "aa", "aaa", "azz", "b", "c", "v", "z"]))
        );
    }

    #[test]
    fn limit_window_matches_redis() {
        let cases = [
            // (len, start, count) -> (start, end)
            ((5, 0, -1), (0, 4)),
            ((5, 1, 2), (1, 2)),
            ((5, -10, 100), (0, 4)),
            ((5, 3, 100), (3, 4)),
            ((5, 5, 1), (4, 3)),
            ((5, 2, 0), (2, 1)),
            ((5, 2, -5), (2, 4)),
            ((5, i64::MAX, i64::MAX), (4, 3)),
            ((3, 2, i64::MAX), (2, 2)),
            ((0, 0, -1), (-1, -2)),
            ((0, i64::MIN, i64::MIN), (-1, -2)),
        ];
        for ((len, s, c), want) in cases {
            assert_eq!(limit_window(len, s, c), want, "{len} {s} {c}");
        }
        let mut t = TestShard::new();
        list(&mut t, "L", &["0", "1", "2"]);
        assert_eq!(
            t.run(&[
                "sort_ro",
                "L",
                "by",
                "a",
                "limit",
                "2",
                "9223372036854775807"
            ]),
            bulks(&["2"])
        );
        assert_eq!(t.run(&["sort", "L", "limit", "1", "0"]), arr(vec![]));
    }

    #[test]
    fn syntax_and_type_errors() {
        let mut t = TestShard::new();
        list(&mut t, "l", &["1"]);
        assert_eq!(t.run(&["sort", "l", "foo"]), err(error::SYNTAX));
        assert_eq!(t.run(&["sort", "l", "limit", "1"]), err(error::SYNTAX));
        assert_eq!(t.run(&["sort", "l", "by"]), err(error::SYNTAX));
        assert_eq!(t.run(&["sort", "l", "get"]), err(error::SYNTAX));
        assert_eq!(t.run(&["sort", "l", "store"]), err(error::SYNTAX));
        assert_eq!(
            t.run(&["sort", "l", "limit", "x", "1"]),
            err(error::NOT_INTEGER)
        );
        assert_eq!(
            t.run(&["sort", "l", "limit", "0", "1.5"]),
            err(error::NOT_INTEGER)
        );
        assert_eq!(
            t.run(&["sort_ro", "foolist", "STORE", "bar"]),
            err(error::SYNTAX)
        );
        assert_eq!(t.run(&["sort_ro", "l"]), bulks(&["1"]));
        // Option errors come before the type check.
        t.run(&["set", "s", "x"]);
        assert_eq!(t.run(&["sort", "s", "foo"]), err(error::SYNTAX));
        assert_eq!(t.run(&["sort", "s"]), err(error::WRONGTYPE));
        t.run(&["hset", "h", "a", "1"]);
        assert_eq!(t.run(&["sort_ro", "h"]), err(error::WRONGTYPE));
        assert_eq!(t.run(&["sort", "h", "store", "d"]), err(error::WRONGTYPE));
        assert_eq!(t.run(&["exists", "d"]), int(0));
        assert_eq!(
            t.run(&["sort"]),
            err("ERR wrong number of arguments for 'sort' command")
        );
    }

    #[test]
    fn binary_elements() {
        let mut t = TestShard::new();
        list(&mut t, "l", &["b\u{0}", "a\r\n", "\u{7f}"]);
        assert_eq!(
            t.run(&["sort", "l", "alpha"]),
            bulks(&["a\r\n", "b\u{0}", "\u{7f}"])
        );
        let b = |s: &[u8]| Bytes::copy_from_slice(s);
        t.run_bytes(&[b(b"set"), b(b"w_b\x00"), b(b"1")]);
        assert_eq!(
            t.run(&["sort", "l", "by", "nosort", "get", "w_*"]),
            arr(vec![bulk("1"), Reply::Nil, Reply::Nil])
        );
    }

    #[test]
    fn store_key_is_found_as_redis_finds_it() {
        let args = |v: &[&str]| {
            v.iter()
                .map(|a| Bytes::copy_from_slice(a.as_bytes()))
                .collect::<Vec<_>>()
        };
        let mut out = Vec::new();
        store_key(&args(&["sort", "abc", "store", "def"]), &mut out);
        assert_eq!(out, vec![1, 3]);
        out.clear();
        store_key(
            &args(&[
                "sort", "abc", "by", "store", "get", "store", "limit", "store", "1", "store", "x",
                "store", "y",
            ]),
            &mut out,
        );
        assert_eq!(out, vec![1, 12]);
        out.clear();
        store_key(&args(&["sort", "abc", "desc"]), &mut out);
        assert_eq!(out, vec![1]);
    }

    /// Redis's events for SORT (sort.c): keymiss for a missing source and for every BY or
    /// GET key a pattern names that is missing, in the order they are read; STORE reports
    /// sortstore, or del for an empty result.
    #[test]
    fn keyspace_events() {
        let mut t = TestShard::new();
        t.run(&["rpush", "l", "2", "1"]);
        t.run(&["set", "w_1", "5"]);
        t.notify_all();
        let none = Vec::<String>::new();
        assert_eq!(
            t.events_of(&["sort", "l", "store", "d"]),
            ["n new 0:d", "l sortstore 0:d"]
        );
        assert_eq!(
            t.events_of(&["sort", "l", "store", "d"]),
            ["l sortstore 0:d"]
        );
        assert_eq!(
            t.events_of(&["sort", "nokey", "store", "d"]),
            ["m keymiss 0:nokey", "g del 0:d"]
        );
        assert_eq!(
            t.events_of(&["sort", "l", "limit", "5", "1", "store", "d"]),
            none
        );
        assert_eq!(
            t.events_of(&["sort", "l", "by", "w_*", "get", "#", "get", "v_*"]),
            ["m keymiss 0:w_2", "m keymiss 0:v_2", "m keymiss 0:v_1"]
        );
        assert_eq!(t.events_of(&["sort", "l", "by", "nosort"]), none);
        assert_eq!(t.events_of(&["sort_ro", "nokey"]), ["m keymiss 0:nokey"]);
        let mut ctx = Ctx::new(&mut t.shard, 0, 0, false);
        let args = ["sort", "nokey", "by", "w_*"].map(|a| Bytes::from_static(a.as_bytes()));
        assert!(pattern_keys(&mut ctx, &args).is_empty());
        assert_eq!(
            t.events(),
            none,
            "finding the pattern keys is no lookup of the command's"
        );
    }
}
