//! Hash commands (Redis's `t_hash.c`) and the hash value type.
//!
//! A hash starts in a compact form (OBJECT ENCODING `listpack`): every field and value back to
//! back in one byte buffer, each prefixed by its length. That costs a few bytes per entry
//! instead of two heap strings and a table slot, which is what makes millions of small hashes
//! affordable. Lookups walk the buffer, so, as in Redis, a hash moves to a real table
//! (`hashtable`) once it has more than `hash-max-listpack-entries` entries or holds a field or
//! value longer than `hash-max-listpack-value` bytes, and never moves back.

use ahash::HashSet;
use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use shardis_resp::Reply;

use crate::command::table::Registration;
use crate::dict::Dict;
use crate::error;
use crate::notify::{HASH, NEW};
use crate::num;
use crate::sample::{self, SampleBudget};
use crate::scan;
use crate::shard::{Ctx, EngineConfig};
use crate::value::Value;

pub static COMMANDS: &[Registration] = &[
    Registration::shard("hset", hset),
    Registration::shard("hmset", hset),
    Registration::shard("hsetnx", hsetnx),
    Registration::shard("hget", hget),
    Registration::shard("hmget", hmget),
    Registration::shard("hgetall", hgetall),
    Registration::shard("hkeys", hkeys),
    Registration::shard("hvals", hvals),
    Registration::shard("hdel", hdel),
    Registration::shard("hexists", hexists),
    Registration::shard("hlen", hlen),
    Registration::shard("hstrlen", hstrlen),
    Registration::shard("hincrby", hincrby),
    Registration::shard("hincrbyfloat", hincrbyfloat),
    Registration::shard("hrandfield", hrandfield),
    Registration::shard("hscan", hscan),
];

/// A field and its value, borrowed from a hash.
pub type Pair<'a> = (&'a [u8], &'a [u8]);

/// A listpack may not grow past this many bytes (Redis's `LISTPACK_MAX_SAFETY_SIZE`).
const LISTPACK_MAX_BYTES: usize = 1 << 30;

/// The thresholds that decide when a compact hash becomes a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListpackLimits {
    /// `hash-max-listpack-entries`.
    pub max_entries: usize,
    /// `hash-max-listpack-value`: the longest field or value kept compact, in bytes.
    pub max_value: usize,
}

impl ListpackLimits {
    pub fn from_config(config: &EngineConfig) -> Self {
        ListpackLimits {
            max_entries: config.hash_max_listpack_entries,
            max_value: config.hash_max_listpack_value,
        }
    }
}

/// A hash value.
#[derive(Debug, Clone, Default)]
pub struct HashValue {
    repr: Repr,
}

#[derive(Clone)]
enum Repr {
    Listpack(Listpack),
    /// Boxed so that the common compact case keeps the value small.
    Table(Box<Dict<Bytes, Bytes>>),
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Listpack(Listpack::default())
    }
}

impl std::fmt::Debug for Repr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Repr::Listpack(lp) => f
                .debug_map()
                .entries(
                    lp.iter()
                        .map(|(k, v)| (Bytes::copy_from_slice(k), Bytes::copy_from_slice(v))),
                )
                .finish(),
            Repr::Table(t) => t.fmt(f),
        }
    }
}

/// Field/value pairs in insertion order, each string as `varint(len) bytes`. The buffer is
/// sized exactly (a boxed slice, no spare capacity): small hashes are many and rarely grow.
#[derive(Clone, Default)]
struct Listpack {
    buf: Box<[u8]>,
    pairs: u32,
}

/// Where one pair lives in a listpack buffer.
struct PairPos<'a> {
    start: usize,
    value_start: usize,
    end: usize,
    field: &'a [u8],
    value: &'a [u8],
}

fn varint_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

fn put_varint(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads the string at `pos`: its bytes and the position after it. None at the end.
fn read_string(buf: &[u8], mut pos: usize) -> Option<(&[u8], usize)> {
    let mut len = 0usize;
    let mut shift = 0;
    loop {
        let b = *buf.get(pos)?;
        pos += 1;
        len |= ((b & 0x7f) as usize).checked_shl(shift)?;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    let end = pos.checked_add(len)?;
    Some((buf.get(pos..end)?, end))
}

fn encoded_len(s: &[u8]) -> usize {
    varint_len(s.len()) + s.len()
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    put_varint(out, s.len());
    out.extend_from_slice(s);
}

impl Listpack {
    fn positions(&self) -> impl Iterator<Item = PairPos<'_>> + '_ {
        let buf = &self.buf[..];
        let mut pos = 0;
        std::iter::from_fn(move || {
            let start = pos;
            let (field, value_start) = read_string(buf, start)?;
            let (value, end) = read_string(buf, value_start)?;
            pos = end;
            Some(PairPos {
                start,
                value_start,
                end,
                field,
                value,
            })
        })
    }

    fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.positions().map(|p| (p.field, p.value))
    }

    fn find(&self, field: &[u8]) -> Option<PairPos<'_>> {
        self.positions().find(|p| p.field == field)
    }

    /// Replaces `buf[from..to]` with `insert`'s output, allocating exactly once.
    fn splice(&mut self, from: usize, to: usize, extra: usize, insert: impl FnOnce(&mut Vec<u8>)) {
        let mut out = Vec::with_capacity(self.buf.len() - (to - from) + extra);
        out.extend_from_slice(&self.buf[..from]);
        insert(&mut out);
        out.extend_from_slice(&self.buf[to..]);
        self.buf = out.into_boxed_slice();
    }

    /// Sets a field; true if it was added.
    fn set(&mut self, field: &[u8], value: &[u8]) -> bool {
        let found = self
            .find(field)
            .map(|p| (p.value_start, p.end, p.value.len()));
        match found {
            Some((from, to, old_len)) => {
                if old_len == value.len() {
                    // Same length, same prefix: overwrite in place (HINCRBY's usual case).
                    let data_start = to - old_len;
                    self.buf[data_start..to].copy_from_slice(value);
                } else {
                    self.splice(from, to, encoded_len(value), |out| put_string(out, value));
                }
                false
            }
            None => {
                let end = self.buf.len();
                let extra = encoded_len(field) + encoded_len(value);
                self.splice(end, end, extra, |out| {
                    put_string(out, field);
                    put_string(out, value);
                });
                self.pairs += 1;
                true
            }
        }
    }

    fn remove(&mut self, field: &[u8]) -> bool {
        let Some((from, to)) = self.find(field).map(|p| (p.start, p.end)) else {
            return false;
        };
        self.splice(from, to, 0, |_| {});
        self.pairs -= 1;
        true
    }

    fn to_table(&self) -> Dict<Bytes, Bytes> {
        let mut table = Dict::new();
        for (f, v) in self.iter() {
            table.insert(Bytes::copy_from_slice(f), Bytes::copy_from_slice(v));
        }
        table
    }
}

impl HashValue {
    pub fn new() -> Self {
        HashValue::default()
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self.repr {
            Repr::Listpack(_) => "listpack",
            Repr::Table(_) => "hashtable",
        }
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Listpack(lp) => lp.pairs as usize,
            Repr::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy sharing nothing with `self`, in the same encoding.
    pub fn reallocated(&self) -> HashValue {
        let repr = match &self.repr {
            Repr::Listpack(lp) => Repr::Listpack(lp.clone()),
            Repr::Table(t) => {
                let mut fresh = Dict::new();
                fresh.reserve(t.len());
                for (f, v) in t.iter() {
                    fresh.insert(Bytes::copy_from_slice(f), Bytes::copy_from_slice(v));
                }
                Repr::Table(Box::new(fresh))
            }
        };
        HashValue { repr }
    }

    /// The work of freeing the hash: one per field of a table, one for a compact buffer.
    pub fn free_effort(&self) -> usize {
        match &self.repr {
            Repr::Listpack(_) => 1,
            Repr::Table(t) => t.len(),
        }
    }

    /// Frees up to `max` fields (all of a compact hash), for freeing a doomed hash in steps;
    /// returns the work done.
    pub fn shed(&mut self, max: usize) -> usize {
        match &mut self.repr {
            Repr::Listpack(_) => {
                self.repr = Repr::default();
                1
            }
            Repr::Table(t) => t.shed(max, |_, _| {}),
        }
    }

    /// The value of `field`.
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match &self.repr {
            Repr::Listpack(lp) => lp.find(field).map(|p| p.value),
            Repr::Table(t) => t.get(field).map(|v| &v[..]),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Sets `field` to `value` (copying both), converting to a table when the compact form
    /// would exceed `limits`. Returns true if the field is new.
    pub fn set(&mut self, field: &[u8], value: &[u8], limits: ListpackLimits) -> bool {
        if let Repr::Listpack(lp) = &self.repr {
            let grown = lp.buf.len() + encoded_len(field) + encoded_len(value);
            if field.len() > limits.max_value
                || value.len() > limits.max_value
                || grown > LISTPACK_MAX_BYTES
            {
                self.convert();
            }
        }
        match &mut self.repr {
            Repr::Listpack(lp) => {
                let added = lp.set(field, value);
                if lp.pairs as usize > limits.max_entries {
                    self.convert();
                }
                added
            }
            Repr::Table(t) => {
                if let Some(v) = t.get_mut(field) {
                    *v = Bytes::copy_from_slice(value);
                    false
                } else {
                    t.insert(Bytes::copy_from_slice(field), Bytes::copy_from_slice(value));
                    true
                }
            }
        }
    }

    /// Removes `field`; true if it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Listpack(lp) => lp.remove(field),
            Repr::Table(t) => t.remove(field).is_some(),
        }
    }

    /// Every field and its value: insertion order when compact, table order otherwise.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        let (lp, table) = match &self.repr {
            Repr::Listpack(lp) => (Some(lp.iter()), None),
            Repr::Table(t) => (None, Some(t.iter().map(|(k, v)| (&k[..], &v[..])))),
        };
        lp.into_iter().flatten().chain(table.into_iter().flatten())
    }

    /// A random pair (None when empty), from the random number `r`.
    pub fn random_pair(&self, r: u64) -> Option<(&[u8], &[u8])> {
        match &self.repr {
            Repr::Listpack(lp) if lp.pairs > 0 => lp.iter().nth((r % lp.pairs as u64) as usize),
            Repr::Listpack(_) => None,
            Repr::Table(t) => t.random(r).map(|(k, v)| (&k[..], &v[..])),
        }
    }

    /// Heap bytes held by the hash (for MEMORY USAGE): the compact buffer, or the table with
    /// its entries' field and value bytes, measured over `samples` entries and extrapolated.
    pub fn allocated_bytes(&self, samples: usize) -> usize {
        match &self.repr {
            Repr::Listpack(lp) => lp.buf.len(),
            Repr::Table(t) => {
                std::mem::size_of::<Dict<Bytes, Bytes>>()
                    + t.allocated_bytes(samples, |k, v| k.len() + v.len())
            }
        }
    }

    /// Moves to the table form (Redis's `hashTypeConvert`).
    fn convert(&mut self) {
        if let Repr::Listpack(lp) = &self.repr {
            self.repr = Repr::Table(Box::new(lp.to_table()));
        }
    }

    /// One HSCAN step from `cursor`: calls `f` for each visited pair and returns the next
    /// cursor. A compact hash is returned whole (cursor 0), as Redis does.
    fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8], &[u8])) -> u64 {
        let Repr::Table(t) = &self.repr else {
            self.iter().for_each(|(k, v)| f(k, v));
            return 0;
        };
        // As Redis: stop after `count` pairs or ten times as many buckets, whichever first.
        let mut budget = count.saturating_mul(10);
        let mut visited = 0;
        let mut cursor = cursor;
        loop {
            cursor = t.scan(cursor, |k, v| {
                visited += 1;
                f(k, v);
            });
            if cursor == 0 || budget == 0 || visited >= count {
                return cursor;
            }
            budget -= 1;
        }
    }
}

/// The hash at `key` for reading: Ok(None) if absent, Err(WRONGTYPE) if another type.
pub fn read_hash<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<Option<&'c HashValue>, Reply> {
    match ctx.lookup_read(key) {
        None => Ok(None),
        Some(Value::Hash(h)) => Ok(Some(h)),
        Some(_) => Err(error::wrongtype()),
    }
}

/// Runs `f` on the hash at `key`, creating it when absent (Redis's
/// `hashTypeLookupWriteOrCreate`); a created hash is stored only if `f` left it non-empty.
fn modify_hash<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    f: impl FnOnce(&mut HashValue, ListpackLimits) -> Result<R, Reply>,
) -> Result<R, Reply> {
    let limits = ListpackLimits::from_config(&ctx.shard.config);
    match ctx.lookup_write(key) {
        Some(Value::Hash(h)) => return f(h, limits),
        Some(_) => return Err(error::wrongtype()),
        None => {}
    }
    let mut h = HashValue::new();
    let r = f(&mut h, limits)?;
    if !h.is_empty() {
        let lru = ctx.new_lru();
        ctx.db().set(key, Value::Hash(h), lru, false);
        ctx.notify(NEW, "new", key);
    }
    Ok(r)
}

fn unwrap_reply(r: Result<Reply, Reply>) -> Reply {
    r.unwrap_or_else(|e| e)
}

/// HSET key field value [field value ...] / HMSET (same, replying OK)
pub fn hset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if args.len() % 2 == 1 {
        return error::wrong_arity(&String::from_utf8_lossy(&args[0]));
    }
    let pairs = &args[2..];
    let r = modify_hash(ctx, &args[1], |h, limits| {
        let mut created = 0;
        for p in pairs.chunks_exact(2) {
            created += h.set(&p[0], &p[1], limits) as i64;
        }
        Ok(created)
    });
    let created = match r {
        Ok(n) => n,
        Err(e) => return e,
    };
    ctx.dirty((pairs.len() / 2) as u64);
    ctx.notify(HASH, "hset", &args[1]);
    // HMSET is told apart by its second letter, as Redis does.
    if args[0]
        .get(1)
        .is_some_and(|c| c.eq_ignore_ascii_case(&b's'))
    {
        Reply::Int(created)
    } else {
        Reply::Ok
    }
}

/// HSETNX key field value
pub fn hsetnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let r = modify_hash(ctx, &args[1], |h, limits| {
        Ok(!h.contains(&args[2]) && h.set(&args[2], &args[3], limits))
    });
    match r {
        Ok(true) => {
            ctx.dirty(1);
            ctx.notify(HASH, "hset", &args[1]);
            Reply::Int(1)
        }
        Ok(false) => Reply::Int(0),
        Err(e) => e,
    }
}

/// HGET key field
pub fn hget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match read_hash(ctx, &args[1]) {
        Ok(h) => field_reply(h, &args[2]),
        Err(e) => e,
    }
}

fn field_reply(h: Option<&HashValue>, field: &[u8]) -> Reply {
    match h.and_then(|h| h.get(field)) {
        Some(v) => Reply::bulk(v),
        None => Reply::Nil,
    }
}

/// HMGET key field [field ...] (a missing key is an empty hash)
pub fn hmget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match read_hash(ctx, &args[1]) {
        Ok(h) => Reply::Array(args[2..].iter().map(|f| field_reply(h, f)).collect()),
        Err(e) => e,
    }
}

/// HGETALL key
pub fn hgetall(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match read_hash(ctx, &args[1]) {
        Ok(h) => Reply::Map(
            h.into_iter()
                .flat_map(HashValue::iter)
                .map(|(k, v)| (Reply::bulk(k), Reply::bulk(v)))
                .collect(),
        ),
        Err(e) => e,
    }
}

/// HKEYS key
pub fn hkeys(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    list_side(ctx, &args[1], |(k, _)| k)
}

/// HVALS key
pub fn hvals(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    list_side(ctx, &args[1], |(_, v)| v)
}

fn list_side(ctx: &mut Ctx<'_>, key: &[u8], pick: for<'a> fn(Pair<'a>) -> &'a [u8]) -> Reply {
    match read_hash(ctx, key) {
        Ok(h) => Reply::Array(
            h.into_iter()
                .flat_map(HashValue::iter)
                .map(|p| Reply::bulk(pick(p)))
                .collect(),
        ),
        Err(e) => e,
    }
}

/// HDEL key field [field ...]
pub fn hdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (deleted, empty) = match ctx.lookup_write(&args[1]) {
        None => return Reply::Int(0),
        Some(Value::Hash(h)) => {
            let mut deleted = 0;
            for f in &args[2..] {
                if h.remove(f) {
                    deleted += 1;
                    if h.is_empty() {
                        break;
                    }
                }
            }
            (deleted, h.is_empty())
        }
        Some(_) => return error::wrongtype(),
    };
    if deleted > 0 {
        ctx.notify(HASH, "hdel", &args[1]);
    }
    ctx.delete_if_empty(&args[1], empty);
    ctx.dirty(deleted);
    Reply::Int(deleted as i64)
}

/// HEXISTS key field
pub fn hexists(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match read_hash(ctx, &args[1]) {
        Ok(h) => Reply::Int(h.is_some_and(|h| h.contains(&args[2])) as i64),
        Err(e) => e,
    }
}

/// HLEN key
pub fn hlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match read_hash(ctx, &args[1]) {
        Ok(h) => Reply::Int(h.map_or(0, HashValue::len) as i64),
        Err(e) => e,
    }
}

/// HSTRLEN key field
pub fn hstrlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match read_hash(ctx, &args[1]) {
        Ok(h) => Reply::Int(h.and_then(|h| h.get(&args[2])).map_or(0, <[u8]>::len) as i64),
        Err(e) => e,
    }
}

/// HINCRBY key field increment
pub fn hincrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let Some(incr) = num::parse_i64(&args[3]) else {
        return error::not_integer();
    };
    let r = modify_hash(ctx, &args[1], |h, limits| {
        let old = match h.get(&args[2]) {
            Some(v) => num::parse_i64(v).ok_or(Reply::err("ERR hash value is not an integer"))?,
            None => 0,
        };
        let new = old.checked_add(incr).ok_or(Reply::err(error::OVERFLOW))?;
        h.set(&args[2], new.to_string().as_bytes(), limits);
        Ok(Reply::Int(new))
    });
    if r.is_ok() {
        ctx.dirty(1);
        ctx.notify(HASH, "hincrby", &args[1]);
    }
    unwrap_reply(r)
}

/// Parses a float as Redis's `string2ld`: `strtod` rules, no leading space, no NaN, and
/// nothing longer than Redis's long-double buffer.
fn parse_long_double(s: &[u8]) -> Option<f64> {
    const MAX_LONG_DOUBLE_CHARS: usize = 5 * 1024;
    if s.len() >= MAX_LONG_DOUBLE_CHARS {
        return None;
    }
    num::parse_f64(s)
}

/// HINCRBYFLOAT key field increment
pub fn hincrbyfloat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let Some(incr) = parse_long_double(&args[3]) else {
        return error::not_float();
    };
    if !incr.is_finite() {
        return Reply::err("ERR value is NaN or Infinity");
    }
    let r = modify_hash(ctx, &args[1], |h, limits| {
        let old = match h.get(&args[2]) {
            Some(v) => parse_long_double(v).ok_or(Reply::err("ERR hash value is not a float"))?,
            None => 0.0,
        };
        let new = old + incr;
        if !new.is_finite() {
            return Err(Reply::err("ERR increment would produce NaN or Infinity"));
        }
        let text = num::format_human(new);
        h.set(&args[2], text.as_bytes(), limits);
        Ok(Reply::Bulk(Bytes::from(text)))
    });
    if r.is_ok() {
        ctx.dirty(1);
        ctx.notify(HASH, "hincrbyfloat", &args[1]);
    }
    unwrap_reply(r)
}

/// HRANDFIELD key [count [WITHVALUES]]
pub fn hrandfield(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if args.len() >= 3 {
        let count = match sample::parse_count(&args[2]) {
            Ok(n) => n,
            Err(e) => return e,
        };
        let with_values = match args.get(3) {
            None => false,
            Some(a) if args.len() == 4 && a.eq_ignore_ascii_case(b"withvalues") => true,
            Some(_) => return error::syntax(),
        };
        if with_values {
            if let Err(e) = sample::check_paired(count) {
                return e;
            }
        }
        return hrandfield_count(ctx, &args[1], count, with_values);
    }
    let r = ctx.rand();
    match read_hash(ctx, &args[1]) {
        Ok(h) => match h.and_then(|h| h.random_pair(r)) {
            Some((k, _)) => Reply::bulk(k),
            None => Reply::Nil,
        },
        Err(e) => e,
    }
}

/// Appends one HRANDFIELD entry: the field, and with values either the value (RESP2, flat)
/// or a [field, value] pair (RESP3).
fn push_field(out: &mut Vec<Reply>, (k, v): (&[u8], &[u8]), with_values: bool, resp3: bool) {
    match (with_values, resp3) {
        (false, _) => out.push(Reply::bulk(k)),
        (true, false) => {
            out.push(Reply::bulk(k));
            out.push(Reply::bulk(v));
        }
        (true, true) => out.push(Reply::Array(vec![Reply::bulk(k), Reply::bulk(v)])),
    }
}

fn hrandfield_count(ctx: &mut Ctx<'_>, key: &[u8], count: i64, with_values: bool) -> Reply {
    let resp3 = ctx.resp3;
    let repeats = count < 0 || count == 1;
    // Sized before the hash borrows the shard; refused only if sampling happens.
    let samples = if repeats { count.unsigned_abs() } else { 0 };
    let budget = SampleBudget::new(ctx, samples, if with_values { 2 } else { 1 });
    // The hash stays borrowed from the shard while sampling, so draw from a local generator.
    let mut rng = StdRng::seed_from_u64(ctx.rand());
    let h = match read_hash(ctx, key) {
        Ok(Some(h)) => h,
        Ok(None) => return Reply::Array(Vec::new()),
        Err(e) => return e,
    };
    let size = h.len();
    let mut out = Vec::new();
    if count == 0 || size == 0 {
        return Reply::Array(out);
    }
    if repeats {
        let mut budget = match budget {
            Ok(b) => b,
            Err(e) => return e,
        };
        // With repetitions: every pick is independent. A compact hash is indexed once so
        // that each pick is cheap.
        let indexed: Option<Vec<(&[u8], &[u8])>> = match h.repr {
            Repr::Listpack(_) => Some(h.iter().collect()),
            Repr::Table(_) => None,
        };
        for _ in 0..count.unsigned_abs() {
            let r = rng.next_u64();
            let pair = match &indexed {
                Some(v) => v.get((r % v.len() as u64) as usize).copied(),
                None => h.random_pair(r),
            };
            if let Some(pair) = pair {
                let bytes = pair.0.len() + if with_values { pair.1.len() } else { 0 };
                if let Err(e) = budget.take(bytes) {
                    return e;
                }
                push_field(&mut out, pair, with_values, resp3);
            }
        }
        return Reply::Array(out);
    }
    let count = count as u64;
    if count >= size as u64 {
        h.iter()
            .for_each(|p| push_field(&mut out, p, with_values, resp3));
    } else if count * 3 > size as u64 {
        // Close to the whole hash: drop random pairs from a copy until `count` remain.
        let mut all: Vec<(&[u8], &[u8])> = h.iter().collect();
        while all.len() as u64 > count {
            let i = (rng.next_u64() % all.len() as u64) as usize;
            all.swap_remove(i);
        }
        all.into_iter()
            .for_each(|p| push_field(&mut out, p, with_values, resp3));
    } else {
        // Much smaller than the hash: pick until enough distinct fields were seen.
        let mut seen: HashSet<&[u8]> = HashSet::default();
        while (seen.len() as u64) < count {
            let Some(pair) = h.random_pair(rng.next_u64()) else {
                break;
            };
            if seen.insert(pair.0) {
                push_field(&mut out, pair, with_values, resp3);
            }
        }
    }
    Reply::Array(out)
}

/// HSCAN key cursor [MATCH pattern] [COUNT count]
pub fn hscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let cursor = match scan::parse_cursor(&args[2]) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let h = match read_hash(ctx, &args[1]) {
        Ok(Some(h)) => h,
        Ok(None) => return scan::reply(0, Vec::new()),
        Err(e) => return e,
    };
    let opts = match scan::parse_options(args, 3, false) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let mut items = Vec::new();
    let next = h.scan(cursor, opts.count, |k, v| {
        if opts.matches(k) {
            items.push(Reply::bulk(k));
            items.push(Reply::bulk(v));
        }
    });
    scan::reply(next, items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    fn encoding(t: &mut TestShard, key: &str) -> &'static str {
        match t.shard.dbs[0].peek(key.as_bytes()).map(|e| &e.value) {
            Some(Value::Hash(h)) => h.encoding(),
            _ => "none",
        }
    }

    fn run3(t: &mut TestShard, args: &[&str]) -> Reply {
        let args: Vec<Bytes> = args
            .iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect();
        let cmd = crate::command::lookup(&args).expect("command");
        let crate::command::Exec::Shard(f) = cmd.exec else {
            panic!("not a shard command")
        };
        f(&mut Ctx::new(&mut t.shard, 0, t.now_ms, true), &args)
    }

    fn len(r: &Reply) -> usize {
        match r {
            Reply::Array(v) => v.len(),
            other => panic!("not an array: {other:?}"),
        }
    }

    fn sorted_bulks(r: Reply) -> Vec<Bytes> {
        let Reply::Array(v) = r else {
            panic!("not an array: {r:?}")
        };
        let mut out: Vec<Bytes> = v
            .into_iter()
            .map(|x| match x {
                Reply::Bulk(b) => b,
                other => panic!("not a bulk: {other:?}"),
            })
            .collect();
        out.sort();
        out
    }

    /// A hash `h` with fields a..j (values 1..10) in the given encoding.
    fn ten_fields(t: &mut TestShard, table: bool) {
        t.run(&["del", "h"]);
        for (i, f) in ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]
            .iter()
            .enumerate()
        {
            t.run(&["hset", "h", f, &(i + 1).to_string()]);
        }
        if table {
            t.run(&["hset", "h", "long", &"x".repeat(100)]);
            t.run(&["hdel", "h", "long"]);
        }
        assert_eq!(
            encoding(t, "h"),
            if table { "hashtable" } else { "listpack" }
        );
    }

    #[test]
    fn hset_hget_hlen() {
        let mut t = TestShard::new();
        assert_eq!(t.run(&["hset", "h", "a", "1", "b", "2"]), int(2));
        assert_eq!(t.run(&["hset", "h", "a", "3", "c", "4"]), int(1));
        assert_eq!(t.run(&["hget", "h", "a"]), bulk("3"));
        assert_eq!(t.run(&["hget", "h", "zz"]), Reply::Nil);
        assert_eq!(t.run(&["hget", "nokey", "a"]), Reply::Nil);
        assert_eq!(t.run(&["hlen", "h"]), int(3));
        assert_eq!(t.run(&["hlen", "nokey"]), int(0));
        assert_eq!(t.run(&["hmset", "h", "d", "5"]), ok());
        assert_eq!(t.run(&["hget", "h", "d"]), bulk("5"));
        assert_eq!(encoding(&mut t, "h"), "listpack");
        assert_eq!(t.shard.dirty, 5);
    }

    #[test]
    fn hset_arity() {
        let mut t = TestShard::new();
        assert_eq!(
            t.run(&["hset", "h", "a", "1", "b"]),
            err("ERR wrong number of arguments for 'hset' command")
        );
        assert_eq!(
            t.run(&["HMSET", "h", "a", "1", "b"]),
            err("ERR wrong number of arguments for 'hmset' command")
        );
        assert_eq!(
            t.run(&["hset", "h", "a"]),
            err("ERR wrong number of arguments for 'hset' command")
        );
        assert_eq!(t.run(&["exists", "h"]), int(0));
    }

    #[test]
    fn wrong_type_everywhere() {
        let mut t = TestShard::new();
        t.run(&["set", "s", "x"]);
        for cmd in [
            &["hset", "s", "a", "1"][..],
            &["hmset", "s", "a", "1"],
            &["hsetnx", "s", "a", "1"],
            &["hget", "s", "a"],
            &["hmget", "s", "a"],
            &["hgetall", "s"],
            &["hkeys", "s"],
            &["hvals", "s"],
            &["hdel", "s", "a"],
            &["hexists", "s", "a"],
            &["hlen", "s"],
            &["hstrlen", "s", "a"],
            &["hincrby", "s", "a", "1"],
            &["hincrbyfloat", "s", "a", "1"],
            &["hrandfield", "s"],
            &["hrandfield", "s", "3"],
            &["hscan", "s", "0"],
        ] {
            assert_eq!(t.run(cmd), err(error::WRONGTYPE), "{cmd:?}");
        }
        assert_eq!(t.run(&["get", "s"]), bulk("x"));
    }

    #[test]
    fn conversion_by_entries_and_value_size() {
        let mut t = TestShard::new();
        t.shard.config.hash_max_listpack_entries = 4;
        t.shard.config.hash_max_listpack_value = 8;
        for i in 0..4 {
            t.run(&["hset", "h", &format!("f{i}"), "v"]);
        }
        assert_eq!(encoding(&mut t, "h"), "listpack");
        t.run(&["hset", "h", "f4", "v"]);
        assert_eq!(encoding(&mut t, "h"), "hashtable");
        // Never back, even when small again.
        t.run(&["hdel", "h", "f0", "f1", "f2", "f3"]);
        assert_eq!(encoding(&mut t, "h"), "hashtable");
        assert_eq!(t.run(&["hget", "h", "f4"]), bulk("v"));

        t.run(&["hset", "v", "f", "12345678"]);
        assert_eq!(encoding(&mut t, "v"), "listpack");
        t.run(&["hset", "v", "f", "123456789"]);
        assert_eq!(encoding(&mut t, "v"), "hashtable");
        t.run(&["hset", "k", "123456789", "v"]);
        assert_eq!(encoding(&mut t, "k"), "hashtable");
        // Entries limit of zero: never compact.
        t.shard.config.hash_max_listpack_entries = 0;
        t.run(&["hset", "z", "a", "b"]);
        assert_eq!(encoding(&mut t, "z"), "hashtable");
    }

    #[test]
    fn hincrbyfloat_conversion_follows_result_length() {
        let mut t = TestShard::new();
        t.shard.config.hash_max_listpack_value = 8;
        t.run(&["hset", "small", "tmp", "0"]);
        t.run(&["hset", "big", "tmp", "0"]);
        assert_eq!(
            t.run(&["hincrbyfloat", "small", "tmp", "0.000005"]),
            bulk("0.000005")
        );
        assert_eq!(
            t.run(&["hincrbyfloat", "big", "tmp", "0.0000005"]),
            bulk("0.0000005")
        );
        assert_eq!(encoding(&mut t, "small"), "listpack");
        assert_eq!(encoding(&mut t, "big"), "hashtable");
        t.run(&["hincrbyfloat", "s2", "abcdefgh", "1"]);
        t.run(&["hincrbyfloat", "b2", "abcdefghi", "1"]);
        assert_eq!(encoding(&mut t, "s2"), "listpack");
        assert_eq!(encoding(&mut t, "b2"), "hashtable");
    }

    #[test]
    fn both_encodings_behave_the_same() {
        for table in [false, true] {
            let mut t = TestShard::new();
            ten_fields(&mut t, table);
            assert_eq!(t.run(&["hlen", "h"]), int(10));
            assert_eq!(t.run(&["hget", "h", "c"]), bulk("3"));
            assert_eq!(t.run(&["hset", "h", "c", "33"]), int(0));
            assert_eq!(t.run(&["hstrlen", "h", "c"]), int(2));
            assert_eq!(t.run(&["hexists", "h", "c"]), int(1));
            assert_eq!(t.run(&["hdel", "h", "c", "c", "nope"]), int(1));
            assert_eq!(t.run(&["hexists", "h", "c"]), int(0));
            assert_eq!(t.run(&["hincrby", "h", "a", "10"]), int(11));
            assert_eq!(t.run(&["hincrbyfloat", "h", "b", "0.5"]), bulk("2.5"));
            assert_eq!(t.run(&["hsetnx", "h", "a", "x"]), int(0));
            assert_eq!(t.run(&["hsetnx", "h", "new", "x"]), int(1));
            assert_eq!(
                sorted_bulks(t.run(&["hkeys", "h"])),
                ["a", "b", "d", "e", "f", "g", "h", "i", "j", "new"]
            );
            assert_eq!(
                sorted_bulks(t.run(&["hvals", "h"])),
                ["10", "11", "2.5", "4", "5", "6", "7", "8", "9", "x"]
            );
        }
    }

    #[test]
    fn compact_form_keeps_insertion_order_and_long_strings() {
        let mut t = TestShard::new();
        t.shard.config.hash_max_listpack_value = 1 << 20;
        let long = "y".repeat(70_000);
        t.run(&["hset", "h", "z", "1", "a", &long, "m", "3"]);
        assert_eq!(encoding(&mut t, "h"), "listpack");
        assert_eq!(t.run(&["hget", "h", "a"]), bulk(&long));
        assert_eq!(t.run(&["hstrlen", "h", "a"]), int(70_000));
        t.run(&["hset", "h", "a", "short"]);
        assert_eq!(t.run(&["hkeys", "h"]), bulks(&["z", "a", "m"]));
        assert_eq!(
            t.run(&["hgetall", "h"]),
            Reply::Map(vec![
                (bulk("z"), bulk("1")),
                (bulk("a"), bulk("short")),
                (bulk("m"), bulk("3")),
            ])
        );
        t.run(&["hdel", "h", "a"]);
        assert_eq!(t.run(&["hvals", "h"]), bulks(&["1", "3"]));
    }

    #[test]
    fn binary_and_empty_fields() {
        let mut t = TestShard::new();
        let b = |s: &[u8]| Bytes::copy_from_slice(s);
        let f = b(b"\x00\xff\r\n");
        let r = t.run_bytes(&[b(b"hset"), b(b"h"), f.clone(), b(b"\x00v"), b(b""), b(b"")]);
        assert_eq!(r, int(2));
        assert_eq!(
            t.run_bytes(&[b(b"hget"), b(b"h"), f.clone()]),
            Reply::Bulk(b(b"\x00v"))
        );
        assert_eq!(t.run(&["hget", "h", ""]), bulk(""));
        assert_eq!(t.run(&["hstrlen", "h", ""]), int(0));
        assert_eq!(t.run(&["hexists", "h", ""]), int(1));
        assert_eq!(t.run_bytes(&[b(b"hdel"), b(b"h"), f]), int(1));
        assert_eq!(t.run(&["hlen", "h"]), int(1));
    }

    #[test]
    fn hsetnx() {
        let mut t = TestShard::new();
        assert_eq!(t.run(&["hsetnx", "h", "f", "foo"]), int(1));
        assert_eq!(t.run(&["hsetnx", "h", "f", "bar"]), int(0));
        assert_eq!(t.run(&["hget", "h", "f"]), bulk("foo"));
        assert_eq!(t.shard.dirty, 1);
    }

    #[test]
    fn hmget() {
        let mut t = TestShard::new();
        assert_eq!(
            t.run(&["hmget", "nokey", "a", "b"]),
            arr(vec![Reply::Nil, Reply::Nil])
        );
        t.run(&["hset", "h", "a", "1", "c", "3"]);
        assert_eq!(
            t.run(&["hmget", "h", "a", "b", "c"]),
            arr(vec![bulk("1"), Reply::Nil, bulk("3")])
        );
    }

    #[test]
    fn hgetall_hkeys_hvals_on_missing_key() {
        let mut t = TestShard::new();
        assert_eq!(t.run(&["hgetall", "nokey"]), Reply::Map(vec![]));
        assert_eq!(t.run(&["hkeys", "nokey"]), arr(vec![]));
        assert_eq!(t.run(&["hvals", "nokey"]), arr(vec![]));
    }

    #[test]
    fn hdel_removes_empty_key() {
        let mut t = TestShard::new();
        assert_eq!(t.run(&["hdel", "nokey", "a"]), int(0));
        t.run(&["hmset", "h", "a", "1", "b", "2", "c", "3"]);
        assert_eq!(t.run(&["hdel", "h", "x", "y"]), int(0));
        assert_eq!(t.run(&["hdel", "h", "a", "c", "f"]), int(2));
        assert_eq!(
            t.run(&["hgetall", "h"]),
            Reply::Map(vec![(bulk("b"), bulk("2"))])
        );
        t.run(&["hmset", "h", "a", "1", "c", "3"]);
        assert_eq!(t.run(&["hdel", "h", "a", "b", "c", "d", "e"]), int(3));
        assert_eq!(t.run(&["exists", "h"]), int(0));
    }

    #[test]
    fn hexists_hstrlen_missing() {
        let mut t = TestShard::new();
        assert_eq!(t.run(&["hexists", "nokey", "a"]), int(0));
        assert_eq!(t.run(&["hstrlen", "nokey", "a"]), int(0));
        for v in [
            "-9223372036854775808",
            "9223372036854775808",
            "",
            "0",
            "-1",
            "x",
        ] {
            t.run(&["hset", "h", "f", v]);
            assert_eq!(t.run(&["hstrlen", "h", "f"]), int(v.len() as i64));
        }
        assert_eq!(t.run(&["hstrlen", "h", "nofield"]), int(0));
    }

    #[test]
    fn hincrby() {
        let mut t = TestShard::new();
        assert_eq!(t.run(&["hincrby", "h", "f", "2"]), int(2));
        assert_eq!(t.run(&["hincrby", "h", "f", "3"]), int(5));
        assert_eq!(t.run(&["hget", "h", "f"]), bulk("5"));
        t.run(&["hset", "h", "big", "17179869184"]);
        assert_eq!(
            t.run(&["hincrby", "h", "big", "17179869184"]),
            int(34359738368)
        );
        for bad in [" 11", "11 ", "1.5", "abc", ""] {
            t.run(&["hset", "h", "s", bad]);
            assert_eq!(
                t.run(&["hincrby", "h", "s", "1"]),
                err("ERR hash value is not an integer")
            );
        }
        assert_eq!(t.run(&["hincrby", "h", "f", "x"]), err(error::NOT_INTEGER));
        assert_eq!(
            t.run(&["hincrby", "h", "f", "1.0"]),
            err(error::NOT_INTEGER)
        );
        t.run(&["hset", "h", "n", "-9223372036854775484"]);
        assert_eq!(
            t.run(&["hincrby", "h", "n", "-1"]),
            int(-9223372036854775485)
        );
        assert_eq!(
            t.run(&["hincrby", "h", "n", "-10000"]),
            err(error::OVERFLOW)
        );
        t.run(&["hset", "h", "m", "9223372036854775807"]);
        assert_eq!(t.run(&["hincrby", "h", "m", "1"]), err(error::OVERFLOW));
        assert_eq!(t.run(&["hget", "h", "m"]), bulk("9223372036854775807"));
        // A failing increment on a new key leaves nothing behind.
        assert_eq!(
            t.run(&["hincrby", "new", "f", "x"]),
            err(error::NOT_INTEGER)
        );
        assert_eq!(t.run(&["exists", "new"]), int(0));
    }

    #[test]
    fn hincrbyfloat() {
        let mut t = TestShard::new();
        assert_eq!(t.run(&["hincrbyfloat", "h", "f", "2.5"]), bulk("2.5"));
        assert_eq!(t.run(&["hincrbyfloat", "h", "f", "3.5"]), bulk("6"));
        assert_eq!(t.run(&["hget", "h", "f"]), bulk("6"));
        assert_eq!(t.run(&["hincrbyfloat", "m", "float", "1.23"]), bulk("1.23"));
        assert_eq!(t.run(&["hincrbyfloat", "m", "float", "0.77"]), bulk("2"));
        assert_eq!(t.run(&["hincrbyfloat", "m", "float", "-0.1"]), bulk("1.9"));
        t.run(&["hset", "h", "big", "17179869184"]);
        assert_eq!(
            t.run(&["hincrbyfloat", "h", "big", "1"]),
            bulk("17179869185")
        );
        for bad in [" 11", "11 ", "1\u{0}2", "abc", "nan"] {
            t.run(&["hset", "h", "s", bad]);
            assert_eq!(
                t.run(&["hincrbyfloat", "h", "s", "1"]),
                err("ERR hash value is not a float")
            );
        }
        assert_eq!(
            t.run(&["hincrbyfloat", "h", "f", "x"]),
            err(error::NOT_FLOAT)
        );
        assert_eq!(
            t.run(&["hincrbyfloat", "h", "f", "nan"]),
            err(error::NOT_FLOAT)
        );
        for inf in ["+inf", "-inf", "inf"] {
            assert_eq!(
                t.run(&["hincrbyfloat", "hfoo", "f", inf]),
                err("ERR value is NaN or Infinity")
            );
        }
        assert_eq!(t.run(&["exists", "hfoo"]), int(0));
        t.run(&["hset", "h", "huge", "1.7e308"]);
        assert_eq!(
            t.run(&["hincrbyfloat", "h", "huge", "1.7e308"]),
            err("ERR increment would produce NaN or Infinity")
        );
        assert_eq!(t.run(&["hget", "h", "huge"]), bulk("1.7e308"));
    }

    #[test]
    fn hrandfield_without_count() {
        let mut t = TestShard::new();
        assert_eq!(t.run(&["hrandfield", "nokey"]), Reply::Nil);
        for table in [false, true] {
            ten_fields(&mut t, table);
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..300 {
                let Reply::Bulk(f) = t.run(&["hrandfield", "h"]) else {
                    panic!("not a bulk")
                };
                seen.insert(f);
            }
            assert_eq!(seen.len(), 10);
        }
    }

    #[test]
    fn hrandfield_count_errors() {
        let mut t = TestShard::new();
        t.run(&["hset", "h", "a", "1"]);
        let range = "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807";
        assert_eq!(
            t.run(&["hrandfield", "h", "-9223372036854775808"]),
            err(range)
        );
        assert_eq!(
            t.run(&["hrandfield", "h", "-9223372036854775808", "withvalues"]),
            err(range)
        );
        assert_eq!(
            t.run(&["hrandfield", "h", "-9223372036854770000", "withvalues"]),
            err("ERR value is out of range")
        );
        assert_eq!(t.run(&["hrandfield", "h", "x"]), err(error::NOT_INTEGER));
        assert_eq!(t.run(&["hrandfield", "h", "1", "foo"]), err(error::SYNTAX));
        assert_eq!(
            t.run(&["hrandfield", "h", "1", "withvalues", "x"]),
            err(error::SYNTAX)
        );
        assert_eq!(t.run(&["hrandfield", "h", "0"]), arr(vec![]));
        assert_eq!(t.run(&["hrandfield", "nokey", "100"]), arr(vec![]));
        assert_eq!(
            t.run(&["hrandfield", "nokey", "-100", "WITHVALUES"]),
            arr(vec![])
        );
        // A huge positive count is served by returning the whole hash.
        assert_eq!(
            t.run(&["hrandfield", "h", "9223372036854775807"]),
            bulks(&["a"])
        );
    }

    #[test]
    fn hrandfield_counts() {
        let mut t = TestShard::new();
        for table in [false, true] {
            ten_fields(&mut t, table);
            assert_eq!(len(&t.run(&["hrandfield", "h", "-20"])), 20);
            assert_eq!(len(&t.run(&["hrandfield", "h", "-1001"])), 1001);
            assert_eq!(len(&t.run(&["hrandfield", "h", "-20", "withvalues"])), 40);
            // Values match their fields.
            let Reply::Array(v) = t.run(&["hrandfield", "h", "-50", "withvalues"]) else {
                panic!()
            };
            for pair in v.chunks(2) {
                let Reply::Bulk(f) = &pair[0] else { panic!() };
                assert_eq!(
                    t.run_bytes(&[Bytes::from("hget"), Bytes::from("h"), f.clone()]),
                    pair[1]
                );
            }
            for size in [10, 20] {
                let all = sorted_bulks(t.run(&["hrandfield", "h", &size.to_string()]));
                assert_eq!(all, ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]);
                let r = t.run(&["hrandfield", "h", &size.to_string(), "withvalues"]);
                assert_eq!(len(&r), 20);
            }
            for size in [8usize, 2] {
                let mut seen = std::collections::BTreeSet::new();
                for _ in 0..200 {
                    let r = sorted_bulks(t.run(&["hrandfield", "h", &size.to_string()]));
                    assert_eq!(r.len(), size);
                    let mut dedup = r.clone();
                    dedup.dedup();
                    assert_eq!(dedup.len(), size, "fields must be distinct");
                    seen.extend(r);
                }
                assert_eq!(seen.len(), 10);
                let r = t.run(&["hrandfield", "h", &size.to_string(), "withvalues"]);
                assert_eq!(len(&r), size * 2);
            }
        }
    }

    #[test]
    fn hrandfield_resp3_pairs() {
        let mut t = TestShard::new();
        ten_fields(&mut t, false);
        for count in ["3", "-3", "20"] {
            let Reply::Array(v) = run3(&mut t, &["hrandfield", "h", count, "withvalues"]) else {
                panic!()
            };
            assert!(v
                .iter()
                .all(|p| matches!(p, Reply::Array(x) if x.len() == 2)));
        }
        let Reply::Array(v) = run3(&mut t, &["hrandfield", "h", "3"]) else {
            panic!()
        };
        assert!(v.iter().all(|p| matches!(p, Reply::Bulk(_))));
    }

    #[test]
    fn hscan() {
        let mut t = TestShard::new();
        assert_eq!(t.run(&["hscan", "nokey", "0"]), scan::reply(0, vec![]));
        // On a missing key, options are not even looked at (as Redis).
        assert_eq!(
            t.run(&["hscan", "nokey", "0", "count", "x"]),
            scan::reply(0, vec![])
        );
        assert_eq!(t.run(&["hscan", "h", "x"]), err("ERR invalid cursor"));
        assert_eq!(t.run(&["hscan", "h", "-1"]), err("ERR invalid cursor"));
        t.run(&["hset", "h", "a", "1", "b", "2"]);
        assert_eq!(
            t.run(&["hscan", "h", "0", "count", "1"]),
            scan::reply(0, vec![bulk("a"), bulk("1"), bulk("b"), bulk("2")])
        );
        assert_eq!(
            t.run(&["hscan", "h", "0", "count", "0"]),
            err(error::SYNTAX)
        );
        assert_eq!(
            t.run(&["hscan", "h", "0", "count", "x"]),
            err(error::NOT_INTEGER)
        );
        assert_eq!(
            t.run(&["hscan", "h", "0", "foo", "bar"]),
            err(error::SYNTAX)
        );
        assert_eq!(
            t.run(&["hscan", "h", "0", "type", "string"]),
            err(error::SYNTAX)
        );
        assert_eq!(
            t.run(&["hscan", "h", "0", "match", "*"]),
            scan::reply(0, vec![bulk("a"), bulk("1"), bulk("b"), bulk("2")])
        );
    }

    #[test]
    fn hscan_table_visits_everything() {
        let mut t = TestShard::new();
        for i in 0..1000 {
            t.run(&["hset", "h", &format!("f{i}"), &format!("v{i}")]);
        }
        assert_eq!(encoding(&mut t, "h"), "hashtable");
        let mut cursor = "0".to_string();
        let mut seen = std::collections::BTreeMap::new();
        let mut calls = 0;
        loop {
            let Reply::Array(v) = t.run(&["hscan", "h", &cursor, "count", "50"]) else {
                panic!()
            };
            let [Reply::Bulk(c), Reply::Array(items)] = &v[..] else {
                panic!()
            };
            for pair in items.chunks(2) {
                let (Reply::Bulk(f), Reply::Bulk(v)) = (&pair[0], &pair[1]) else {
                    panic!()
                };
                seen.insert(f.clone(), v.clone());
            }
            calls += 1;
            cursor = String::from_utf8(c.to_vec()).unwrap();
            if cursor == "0" {
                break;
            }
        }
        assert!(calls > 1);
        assert_eq!(seen.len(), 1000);
        assert_eq!(seen.get(&b"f7"[..]), Some(&Bytes::from("v7")));
    }

    #[test]
    fn varints_round_trip() {
        for n in [0usize, 1, 127, 128, 300, 16_383, 16_384, 1 << 30] {
            let mut out = Vec::new();
            put_varint(&mut out, n);
            assert_eq!(out.len(), varint_len(n));
        }
        let mut lp = Listpack::default();
        assert!(lp.set(b"k", &[7u8; 200]));
        assert!(!lp.set(b"k", &[8u8; 100]));
        assert_eq!(
            lp.find(b"k").map(|p| p.value.to_vec()),
            Some(vec![8u8; 100])
        );
        assert_eq!(lp.buf.len(), 2 + 1 + 100);
    }

    #[test]
    fn value_stays_small() {
        // Millions of small hashes: the value itself must not grow past a fat pointer and a count.
        assert!(std::mem::size_of::<HashValue>() <= 24);
        let mut h = HashValue::new();
        let limits = ListpackLimits::from_config(&EngineConfig::default());
        for i in 0..10 {
            h.set(
                format!("field:{i}").as_bytes(),
                format!("value:{i}").as_bytes(),
                limits,
            );
        }
        // Ten 7-byte fields and values, one length byte each.
        let Repr::Listpack(lp) = &h.repr else {
            panic!()
        };
        assert_eq!(lp.buf.len(), 160);
        assert_eq!(h.random_pair(3), Some((&b"field:3"[..], &b"value:3"[..])));
    }

    /// Redis's events for the hash commands (pubsub.tcl's "hash events test", t_hash.c): hset
    /// for every HSET / HMSET (even one that changes nothing) and for an HSETNX that sets,
    /// hincrby, hincrbyfloat, hdel when fields went, del when the hash is emptied.
    #[test]
    fn keyspace_events() {
        let mut t = TestShard::new();
        t.notify_all();
        let none = Vec::<String>::new();
        assert_eq!(
            t.events_of(&["hmset", "h", "yes", "1", "no", "0"]),
            ["n new 0:h", "h hset 0:h"]
        );
        assert_eq!(
            t.events_of(&["hincrby", "h", "yes", "10"]),
            ["h hincrby 0:h"]
        );
        assert_eq!(t.events_of(&["hset", "h", "yes", "11"]), ["h hset 0:h"]);
        assert_eq!(t.events_of(&["hsetnx", "h", "yes", "1"]), none);
        assert_eq!(t.events_of(&["hsetnx", "h", "new", "1"]), ["h hset 0:h"]);
        assert_eq!(
            t.events_of(&["hsetnx", "h2", "f", "1"]),
            ["n new 0:h2", "h hset 0:h2"]
        );
        assert_eq!(
            t.events_of(&["hincrby", "h3", "f", "1"]),
            ["n new 0:h3", "h hincrby 0:h3"]
        );
        assert_eq!(
            t.events_of(&["hincrbyfloat", "h", "no", "1.5"]),
            ["h hincrbyfloat 0:h"]
        );
        assert_eq!(
            t.events_of(&["hincrbyfloat", "h4", "f", "1.5"]),
            ["n new 0:h4", "h hincrbyfloat 0:h4"]
        );
        assert_eq!(t.events_of(&["hincrby", "h", "no", "1"]), none);
        assert_eq!(t.events_of(&["hincrbyfloat", "h", "yes", "inf"]), none);
        assert_eq!(t.events_of(&["hdel", "h", "nope"]), none);
        assert_eq!(t.events_of(&["hdel", "h", "yes"]), ["h hdel 0:h"]);
        assert_eq!(
            t.events_of(&["hdel", "h", "no", "new"]),
            ["h hdel 0:h", "g del 0:h"]
        );
        assert_eq!(t.events_of(&["hdel", "h", "no"]), none);
        for cmd in [
            &["hget", "nokey", "f"][..],
            &["hmget", "nokey", "f"],
            &["hgetall", "nokey"],
            &["hkeys", "nokey"],
            &["hvals", "nokey"],
            &["hexists", "nokey", "f"],
            &["hlen", "nokey"],
            &["hstrlen", "nokey", "f"],
            &["hrandfield", "nokey"],
            &["hrandfield", "nokey", "2"],
            &["hscan", "nokey", "0"],
        ] {
            assert_eq!(t.events_of(cmd), ["m keymiss 0:nokey"], "{cmd:?}");
        }
    }
}
