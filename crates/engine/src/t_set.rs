//! Set commands (Redis's `t_set.c`) and the set value with its two encodings.
//!
//! As in Redis 7.0, a set whose members are all canonical 64-bit integers and that holds at
//! most `set-max-intset-entries` members is an "intset": a sorted array of integers. Anything
//! else is a "hashtable" of byte strings. A set only ever converts from intset to hashtable;
//! the results of SINTERSTORE / SUNIONSTORE / SDIFFSTORE (and the rebuilt remainder of a
//! large SPOP) are fresh sets that pick their encoding from their content, as Redis's do.

use bytes::Bytes;
use shardis_resp::Reply;
use std::io::Write;

use crate::command::table::Registration;
use crate::db::Db;
use crate::dict::Dict;
use crate::error;
use crate::notify::{GENERIC, NEW, SET};
use crate::num;
use crate::sample::{self, SampleBudget};
use crate::scan;
use crate::shard::Ctx;
use crate::value::Value;

use intset::IntSet;

pub static COMMANDS: &[Registration] = &[
    Registration::shard("sadd", sadd),
    Registration::shard("srem", srem),
    Registration::shard("smembers", sinter),
    Registration::shard("sismember", sismember),
    Registration::shard("smismember", smismember),
    Registration::shard("scard", scard),
    Registration::shard("spop", spop),
    Registration::shard("srandmember", srandmember),
    Registration::shard("smove", smove),
    Registration::shard("sinter", sinter),
    Registration::shard("sintercard", sintercard),
    Registration::shard("sinterstore", sinterstore),
    Registration::shard("sunion", sunion),
    Registration::shard("sunionstore", sunionstore),
    Registration::shard("sdiff", sdiff),
    Registration::shard("sdiffstore", sdiffstore),
    Registration::shard("sscan", sscan),
];

/// Redis caps the intset size at 2^30 entries whatever the configuration says.
const INTSET_HARD_LIMIT: usize = 1 << 30;

/// A set value: an intset while every member is an integer and there are few enough of
/// them, a hash table otherwise.
#[derive(Debug, Clone, Default)]
pub struct SetValue {
    repr: Repr,
}

#[derive(Debug, Clone)]
enum Repr {
    // Boxed so that a set costs a pointer in the key's entry, like every other value type.
    Ints(Box<IntSet>),
    Hash(Box<Dict<Bytes, ()>>),
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Ints(Box::default())
    }
}

/// One member as a set stores it: intset members are integers, hashtable members bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member<'a> {
    Int(i64),
    Str(&'a [u8]),
}

impl<'a> Member<'a> {
    /// The member's bytes, integers written in decimal into `buf`.
    pub fn as_bytes<'b>(self, buf: &'b mut [u8; 20]) -> &'b [u8]
    where
        'a: 'b,
    {
        match self {
            Member::Int(n) => format_int(n, buf),
            Member::Str(s) => s,
        }
    }

    /// The member as an owned byte string.
    pub fn to_bytes(self) -> Bytes {
        Bytes::copy_from_slice(self.as_bytes(&mut [0; 20]))
    }

    fn reply(self) -> Reply {
        Reply::Bulk(self.to_bytes())
    }
}

/// Writes `n` in decimal into `buf` (an i64 takes at most 20 bytes) and returns the digits.
fn format_int(n: i64, buf: &mut [u8; 20]) -> &[u8] {
    let len = {
        let mut rest: &mut [u8] = &mut buf[..];
        let _ = write!(rest, "{n}");
        20 - rest.len()
    };
    &buf[..len]
}

impl SetValue {
    /// An empty set (intset-encoded, as Redis creates a set for an integer).
    pub fn new() -> SetValue {
        SetValue::default()
    }

    /// A set holding `members`, encoded as Redis would encode a set built by SADD of them.
    pub fn from_members<M: AsRef<[u8]>>(members: &[M], max_intset: usize) -> SetValue {
        let mut set = SetValue::new();
        set.add_all(members, max_intset);
        set
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self.repr {
            Repr::Ints(_) => "intset",
            Repr::Hash(_) => "hashtable",
        }
    }

    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Ints(s) => s.len(),
            Repr::Hash(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True if `member` is in the set.
    pub fn contains(&self, member: &[u8]) -> bool {
        match &self.repr {
            Repr::Ints(s) => num::parse_i64(member).is_some_and(|n| s.contains(n)),
            Repr::Hash(d) => d.contains_key(member),
        }
    }

    /// True if `member` (taken from another set) is in this one.
    fn contains_member(&self, member: Member<'_>) -> bool {
        match (&self.repr, member) {
            (Repr::Ints(s), Member::Int(n)) => s.contains(n),
            (_, m) => self.contains(m.as_bytes(&mut [0; 20])),
        }
    }

    /// Every member, in the encoding's order (ascending for an intset).
    pub fn iter(&self) -> impl Iterator<Item = Member<'_>> + '_ {
        let (ints, strs) = match &self.repr {
            Repr::Ints(s) => (Some(s.iter()), None),
            Repr::Hash(d) => (None, Some(d.iter())),
        };
        ints.into_iter()
            .flatten()
            .map(Member::Int)
            .chain(strs.into_iter().flatten().map(|(k, _)| Member::Str(k)))
    }

    /// Adds `member`; returns true if it was not there. Converts to a hashtable when the
    /// member is not an integer or the intset would grow past `max_intset`.
    pub fn insert(&mut self, member: &[u8], max_intset: usize) -> bool {
        self.insert_member(Member::Str(member), max_intset)
    }

    fn insert_member(&mut self, member: Member<'_>, max_intset: usize) -> bool {
        if let Repr::Ints(s) = &mut self.repr {
            let n = match member {
                Member::Int(n) => Some(n),
                Member::Str(b) => num::parse_i64(b),
            };
            match n {
                Some(n) if s.contains(n) => return false,
                Some(n) if s.len() < max_intset.min(INTSET_HARD_LIMIT) => {
                    s.insert_fresh(&[n]);
                    return true;
                }
                _ => self.convert_to_hash(),
            }
        }
        let Repr::Hash(d) = &mut self.repr else {
            return false;
        };
        let mut buf = [0; 20];
        let bytes = member.as_bytes(&mut buf);
        if d.contains_key(bytes) {
            return false;
        }
        d.insert(Bytes::copy_from_slice(bytes), ());
        true
    }

    /// SADD's core: adds every member, returns how many were new. A batch of integers into
    /// an intset is merged in one pass instead of one shift per member.
    pub fn add_all<M: AsRef<[u8]>>(&mut self, members: &[M], max_intset: usize) -> usize {
        if let [one] = members {
            return self.insert(one.as_ref(), max_intset) as usize;
        }
        if let Repr::Ints(s) = &mut self.repr {
            let ints: Option<Vec<i64>> =
                members.iter().map(|m| num::parse_i64(m.as_ref())).collect();
            if let Some(mut ints) = ints {
                ints.sort_unstable();
                ints.dedup();
                ints.retain(|&n| !s.contains(n));
                if s.len() + ints.len() <= max_intset.min(INTSET_HARD_LIMIT) {
                    s.insert_fresh(&ints);
                    return ints.len();
                }
            }
            self.convert_to_hash();
        }
        let Repr::Hash(d) = &mut self.repr else {
            return 0;
        };
        let mut added = 0;
        for m in members {
            let m = m.as_ref();
            if !d.contains_key(m) {
                d.insert(Bytes::copy_from_slice(m), ());
                added += 1;
            }
        }
        added
    }

    /// Heap bytes held by the set (for MEMORY USAGE): the intset array, or the table with
    /// its members' bytes, measured over `samples` members and extrapolated.
    pub fn allocated_bytes(&self, samples: usize) -> usize {
        match &self.repr {
            Repr::Ints(s) => s.heap_bytes(),
            Repr::Hash(d) => d.allocated_bytes(samples, |k, _| k.len()),
        }
    }

    /// Removes `member`; returns true if it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        self.remove_member(Member::Str(member))
    }

    fn remove_member(&mut self, member: Member<'_>) -> bool {
        match (&mut self.repr, member) {
            (Repr::Ints(s), Member::Int(n)) => s.remove(n),
            (Repr::Ints(s), Member::Str(b)) => num::parse_i64(b).is_some_and(|n| s.remove(n)),
            (Repr::Hash(d), m) => d.remove(m.as_bytes(&mut [0; 20])).is_some(),
        }
    }

    fn convert_to_hash(&mut self) {
        if let Repr::Ints(s) = &self.repr {
            let mut d = Dict::new();
            for n in s.iter() {
                d.insert(Member::Int(n).to_bytes(), ());
            }
            self.repr = Repr::Hash(Box::new(d));
        }
    }

    /// A random member (None when empty); `r` is a random number.
    fn random_member(&self, r: u64) -> Option<Member<'_>> {
        match &self.repr {
            Repr::Ints(s) if s.len() > 0 => Some(Member::Int(s.get(pick(r, s.len())))),
            Repr::Ints(_) => None,
            Repr::Hash(d) => d.random(r).map(|(k, _)| Member::Str(k)),
        }
    }
}

/// A random stream seeded from the shard's, for commands that draw many numbers while a set
/// stays borrowed from the keyspace.
fn rand_stream(ctx: &mut Ctx<'_>) -> impl FnMut() -> u64 {
    crate::shard::rand_stream(ctx.rand())
}

/// `r` reduced to an index below `n` (n > 0).
fn pick(r: u64, n: usize) -> usize {
    (r % n as u64) as usize
}

/// `k` distinct indexes below `n` (k ≤ n), uniformly chosen, in no particular order
/// (Floyd's sampling: exactly k draws whatever k/n is).
fn sample_indexes(n: usize, k: usize, rand: &mut impl FnMut() -> u64) -> Vec<usize> {
    let mut chosen: ahash::HashSet<usize> = ahash::HashSet::default();
    chosen.reserve(k.min(n));
    for j in n.saturating_sub(k)..n {
        let t = pick(rand(), j + 1);
        if !chosen.insert(t) {
            chosen.insert(j);
        }
    }
    chosen.into_iter().collect()
}

/// The compact integer encoding.
///
/// Members are kept sorted as unsigned offsets from a base (the smallest member seen when the
/// array was last re-encoded), each `width` bytes wide, little-endian, where `width` is the
/// fewest bytes that hold the largest offset. That is never wider than Redis's 2/4/8-byte
/// intset and often narrower (0..1_000_000 takes 3 bytes a member instead of 4).
mod intset {
    #[derive(Debug, Clone)]
    pub struct IntSet {
        base: i64,
        /// Bytes per member, 1 to 8.
        width: usize,
        data: Vec<u8>,
    }

    impl Default for IntSet {
        fn default() -> Self {
            IntSet {
                base: 0,
                width: 1,
                data: Vec::new(),
            }
        }
    }

    /// Bytes needed for `offset`.
    fn width_for(offset: u64) -> usize {
        (((64 - offset.leading_zeros()) as usize).div_ceil(8)).max(1)
    }

    impl IntSet {
        pub fn len(&self) -> usize {
            self.data.len() / self.width
        }

        fn read(&self, i: usize) -> u64 {
            let w = self.width;
            let mut b = [0u8; 8];
            b[..w].copy_from_slice(&self.data[i * w..(i + 1) * w]);
            u64::from_le_bytes(b)
        }

        fn write(&mut self, i: usize, offset: u64) {
            let w = self.width;
            self.data[i * w..(i + 1) * w].copy_from_slice(&offset.to_le_bytes()[..w]);
        }

        /// The member at position `i` (ascending order).
        pub fn get(&self, i: usize) -> i64 {
            self.base.wrapping_add(self.read(i) as i64)
        }

        pub fn iter(&self) -> impl Iterator<Item = i64> + '_ {
            (0..self.len()).map(|i| self.get(i))
        }

        /// Binary search among the first `end` members: Ok(position) or Err(insertion point).
        fn search(&self, n: i64, end: usize) -> Result<usize, usize> {
            if n < self.base {
                return Err(0);
            }
            // n ≥ base, so the true difference fits in a u64.
            let offset = n.wrapping_sub(self.base) as u64;
            if self.width < 8 && offset >> (8 * self.width) != 0 {
                return Err(end);
            }
            let (mut lo, mut hi) = (0, end);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                match self.read(mid).cmp(&offset) {
                    std::cmp::Ordering::Less => lo = mid + 1,
                    std::cmp::Ordering::Greater => hi = mid,
                    std::cmp::Ordering::Equal => return Ok(mid),
                }
            }
            Err(lo)
        }

        pub fn contains(&self, n: i64) -> bool {
            self.search(n, self.len()).is_ok()
        }

        /// Inserts `fresh`: sorted, without duplicates, none already present.
        pub fn insert_fresh(&mut self, fresh: &[i64]) {
            let (Some(&first), Some(&last)) = (fresh.first(), fresh.last()) else {
                return;
            };
            let n = self.len();
            let (base, max) = if n == 0 {
                (first, last)
            } else {
                (self.base.min(first), self.get(n - 1).max(last))
            };
            let width = width_for(max.wrapping_sub(base) as u64);
            if n > 0 && base == self.base && width <= self.width {
                self.merge_in_place(fresh);
            } else {
                self.reencode(base, width, fresh);
            }
        }

        /// Merges from the back so that each run of existing members moves once, with one
        /// memmove, and members above every new one do not move at all.
        fn merge_in_place(&mut self, fresh: &[i64]) {
            let w = self.width;
            let n = self.len();
            let needed = (n + fresh.len()) * w;
            if needed > self.data.capacity() {
                // Grow by at least an eighth: appends stay amortised O(1) while the slack
                // stays small (an intset can be the bulk of a big dataset).
                let extra = (needed - self.data.len()).max(self.data.len() / 8);
                self.data.reserve_exact(extra);
            }
            self.data.resize(needed, 0);
            let mut end = n;
            for (j, &v) in fresh.iter().enumerate().rev() {
                let p = match self.search(v, end) {
                    Ok(p) | Err(p) => p,
                };
                self.data.copy_within(p * w..end * w, (p + j + 1) * w);
                self.write(p + j, v.wrapping_sub(self.base) as u64);
                end = p;
            }
        }

        /// Rewrites every member with a new base and width while merging `fresh` in.
        fn reencode(&mut self, base: i64, width: usize, fresh: &[i64]) {
            let n = self.len();
            let mut out = IntSet {
                base,
                width,
                data: Vec::with_capacity((n + fresh.len()) * width),
            };
            let mut old = (0..n).map(|i| self.get(i)).peekable();
            let mut new = fresh.iter().copied().peekable();
            loop {
                let v = match (old.peek(), new.peek()) {
                    (Some(&a), Some(&b)) if a < b => old.next(),
                    (Some(_), Some(_)) | (None, Some(_)) => new.next(),
                    (Some(_), None) => old.next(),
                    (None, None) => break,
                };
                if let Some(v) = v {
                    let bytes = v.wrapping_sub(base).to_le_bytes();
                    out.data.extend_from_slice(&bytes[..width]);
                }
            }
            *self = out;
        }

        pub fn remove(&mut self, n: i64) -> bool {
            match self.search(n, self.len()) {
                Ok(p) => {
                    self.remove_positions(&[p]);
                    true
                }
                Err(_) => false,
            }
        }

        /// Removes the members at `positions` (ascending, distinct, in range) in one pass.
        pub fn remove_positions(&mut self, positions: &[usize]) {
            let w = self.width;
            let n = self.len();
            let Some(&first) = positions.first() else {
                return;
            };
            let mut to = first;
            for (j, &p) in positions.iter().enumerate() {
                let next = positions.get(j + 1).copied().unwrap_or(n);
                self.data.copy_within((p + 1) * w..next * w, to * w);
                to += next - (p + 1);
            }
            self.data.truncate(to * w);
            // Give memory back once half of it is unused (amortised: the next shrink needs
            // the set to halve again).
            if self.data.capacity() > 2 * self.data.len() + 64 {
                self.data.shrink_to_fit();
            }
        }

        /// Bytes held on the heap.
        pub fn heap_bytes(&self) -> usize {
            self.data.capacity()
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn build(values: &[i64]) -> IntSet {
            let mut s = IntSet::default();
            for &v in values {
                if !s.contains(v) {
                    s.insert_fresh(&[v]);
                }
            }
            s
        }

        #[test]
        fn keeps_members_sorted_across_reencodings() {
            let values = [5, 3, 300, -1, i64::MAX, i64::MIN, 0, 70000, 4];
            let s = build(&values);
            let mut sorted = values.to_vec();
            sorted.sort();
            assert_eq!(s.iter().collect::<Vec<_>>(), sorted);
            for v in values {
                assert!(s.contains(v));
            }
            for v in [1, 2, 6, 299, 301, i64::MAX - 1, i64::MIN + 1] {
                assert!(!s.contains(v));
            }
        }

        #[test]
        fn width_follows_the_range() {
            assert_eq!(width_for(0), 1);
            assert_eq!(width_for(255), 1);
            assert_eq!(width_for(256), 2);
            assert_eq!(width_for(u64::MAX), 8);
            let s = build(&[1000, 1255]);
            assert_eq!(s.width, 1);
            let s = build(&[-5, 10]);
            assert_eq!((s.base, s.width), (-5, 1));
        }

        #[test]
        fn batch_merge_and_positional_removal() {
            let mut s = build(&[10, 20, 30]);
            s.insert_fresh(&[5, 15, 25, 35]);
            assert_eq!(s.iter().collect::<Vec<_>>(), [5, 10, 15, 20, 25, 30, 35]);
            s.remove_positions(&[0, 3, 6]);
            assert_eq!(s.iter().collect::<Vec<_>>(), [10, 15, 25, 30]);
            assert!(s.remove(15));
            assert!(!s.remove(15));
            assert_eq!(s.iter().collect::<Vec<_>>(), [10, 25, 30]);
        }

        #[test]
        fn a_million_sequential_integers_take_three_bytes_each() {
            let mut s = IntSet::default();
            for v in 0..1_000_000 {
                s.insert_fresh(&[v]);
            }
            assert_eq!(s.len(), 1_000_000);
            assert!(
                s.heap_bytes() <= 3_000_000 * 9 / 8 + 64,
                "{}",
                s.heap_bytes()
            );
            let mut big = IntSet::default();
            let all: Vec<i64> = (0..1_000_000).collect();
            big.insert_fresh(&all);
            assert_eq!(big.heap_bytes(), 3_000_000);
        }
    }
}

/// The configured intset size limit.
fn max_intset(ctx: &Ctx<'_>) -> usize {
    ctx.shard.config.set_max_intset_entries
}

/// Adds a key that did not exist (Redis's `dbAdd`, which wakes clients blocked on it); the
/// caller counts the writes.
fn add_key(ctx: &mut Ctx<'_>, key: &[u8], set: SetValue) {
    let clock = ctx.clock_secs();
    ctx.db().set(key, Value::Set(set), clock);
    ctx.signal_ready(key);
    ctx.notify(NEW, "new", key);
}

/// The set at `key` for reading: Ok(None) if absent, WRONGTYPE if another type.
fn read_set<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<Option<&'c SetValue>, Reply> {
    match ctx.lookup_read(key) {
        None => Ok(None),
        Some(Value::Set(s)) => Ok(Some(s)),
        Some(_) => Err(error::wrongtype()),
    }
}

/// The set at `key` for writing: Ok(None) if absent, WRONGTYPE if another type.
fn write_set<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<Option<&'c mut SetValue>, Reply> {
    match ctx.lookup_write(key) {
        None => Ok(None),
        Some(Value::Set(s)) => Ok(Some(s)),
        Some(_) => Err(error::wrongtype()),
    }
}

/// SADD key member [member ...]
pub fn sadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let max = max_intset(ctx);
    let members = &args[2..];
    let added = match write_set(ctx, &args[1]) {
        Err(e) => return e,
        Ok(Some(set)) => set.add_all(members, max),
        Ok(None) => {
            let set = SetValue::from_members(members, max);
            let added = set.len();
            add_key(ctx, &args[1], set);
            added
        }
    };
    if added > 0 {
        ctx.notify(SET, "sadd", &args[1]);
    }
    ctx.dirty(added as u64);
    Reply::Int(added as i64)
}

/// SREM key member [member ...]
pub fn srem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (deleted, emptied) = match write_set(ctx, &args[1]) {
        Err(e) => return e,
        Ok(None) => return Reply::Int(0),
        Ok(Some(set)) => {
            let mut deleted = 0;
            for m in &args[2..] {
                if set.remove(m) {
                    deleted += 1;
                    if set.is_empty() {
                        break;
                    }
                }
            }
            (deleted, set.is_empty())
        }
    };
    if deleted > 0 {
        ctx.notify(SET, "srem", &args[1]);
    }
    ctx.delete_if_empty(&args[1], emptied);
    ctx.dirty(deleted);
    Reply::Int(deleted as i64)
}

/// SISMEMBER key member
pub fn sismember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match read_set(ctx, &args[1]) {
        Err(e) => e,
        Ok(set) => Reply::Int(set.is_some_and(|s| s.contains(&args[2])) as i64),
    }
}

/// SMISMEMBER key member [member ...]
pub fn smismember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match read_set(ctx, &args[1]) {
        Err(e) => e,
        Ok(set) => Reply::Array(
            args[2..]
                .iter()
                .map(|m| Reply::Int(set.is_some_and(|s| s.contains(m)) as i64))
                .collect(),
        ),
    }
}

/// SCARD key
pub fn scard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match read_set(ctx, &args[1]) {
        Err(e) => e,
        Ok(set) => Reply::Int(set.map_or(0, SetValue::len) as i64),
    }
}

/// SPOP key [count]
pub fn spop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match args.len() {
        2 => spop_one(ctx, &args[1]),
        3 => spop_count(ctx, &args[1], &args[2]),
        _ => error::syntax(),
    }
}

fn spop_one(ctx: &mut Ctx<'_>, key: &[u8]) -> Reply {
    let r = ctx.rand();
    let (popped, emptied) = match write_set(ctx, key) {
        Err(e) => return e,
        Ok(None) => return Reply::Nil,
        Ok(Some(set)) => {
            let Some(member) = set.random_member(r).map(Member::to_bytes) else {
                return Reply::Nil;
            };
            set.remove(&member);
            (member, set.is_empty())
        }
    };
    ctx.notify(SET, "spop", key);
    ctx.delete_if_empty(key, emptied);
    ctx.dirty(1);
    // The journal logs the member that was drawn.
    ctx.propagate_as(|| vec![Bytes::from_static(b"SREM"), Ctx::key(key), popped.clone()]);
    Reply::Bulk(popped)
}

/// How much larger than the remainder a pop must be before SPOP rebuilds the set from the
/// members it keeps rather than removing the popped ones (Redis's SPOP_MOVE_STRATEGY_MUL).
const SPOP_MOVE_STRATEGY_MUL: usize = 5;

fn spop_count(ctx: &mut Ctx<'_>, key: &[u8], count: &[u8]) -> Reply {
    let Some(count) = num::parse_i64(count).filter(|&n| n >= 0) else {
        return Reply::err("ERR value is out of range, must be positive");
    };
    let count = count as u64;
    let max = max_intset(ctx);
    let mut rand = rand_stream(ctx);
    let set = match write_set(ctx, key) {
        Err(e) => return e,
        Ok(None) => return Reply::Set(Vec::new()),
        Ok(Some(set)) => set,
    };
    if count == 0 {
        return Reply::Set(Vec::new());
    }
    let size = set.len();
    if count >= size as u64 {
        let all = set.iter().map(Member::reply).collect();
        ctx.notify(SET, "spop", key);
        ctx.delete(key);
        ctx.notify(GENERIC, "del", key);
        ctx.dirty(size as u64 - 1);
        ctx.propagate_as(|| vec![Bytes::from_static(b"DEL"), Ctx::key(key)]);
        return Reply::Set(all);
    }
    let count = count as usize;
    let remaining = size - count;
    let mut popped = Vec::with_capacity(count);
    match &mut set.repr {
        Repr::Ints(s) => {
            let mut positions = sample_indexes(size, count, &mut rand);
            popped.extend(positions.iter().map(|&p| Member::Int(s.get(p)).reply()));
            positions.sort_unstable();
            s.remove_positions(&positions);
        }
        Repr::Hash(d) if remaining * SPOP_MOVE_STRATEGY_MUL > count => {
            for _ in 0..count {
                let Some(k) = d.random(rand()).map(|(k, _)| k.clone()) else {
                    break;
                };
                d.remove(&k[..]);
                popped.push(Reply::Bulk(k));
            }
        }
        Repr::Hash(d) => {
            // Most members go: move the few that stay into a new set (which, like Redis's,
            // picks its encoding afresh) and reply with what is left of the old one.
            let mut kept = SetValue::new();
            for _ in 0..remaining {
                let Some(k) = d.random(rand()).map(|(k, _)| k.clone()) else {
                    break;
                };
                d.remove(&k[..]);
                kept.insert(&k, max);
            }
            popped.extend(d.iter().map(|(k, _)| Member::Str(k).reply()));
            *set = kept;
        }
    }
    ctx.notify(SET, "spop", key);
    ctx.dirty(count as u64);
    ctx.propagate_as(|| {
        let mut argv = vec![Bytes::from_static(b"SREM"), Ctx::key(key)];
        argv.extend(popped.iter().filter_map(|r| match r {
            Reply::Bulk(b) => Some(b.clone()),
            _ => None,
        }));
        argv
    });
    Reply::Set(popped)
}

/// SRANDMEMBER key [count]
pub fn srandmember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match args.len() {
        2 => {
            let r = ctx.rand();
            match read_set(ctx, &args[1]) {
                Err(e) => e,
                Ok(set) => set
                    .and_then(|s| s.random_member(r))
                    .map_or(Reply::Nil, Member::reply),
            }
        }
        3 => srandmember_count(ctx, &args[1], &args[2]),
        _ => error::syntax(),
    }
}

/// The set size below which SRANDMEMBER with a positive count copies every member and
/// samples positions, rather than drawing random members until enough are distinct
/// (Redis's SRANDMEMBER_SUB_STRATEGY_MUL).
const SRANDMEMBER_SUB_STRATEGY_MUL: usize = 3;

fn srandmember_count(ctx: &mut Ctx<'_>, key: &[u8], count: &[u8]) -> Reply {
    let count = match sample::parse_count(count) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let repeats = count < 0 || count == 1;
    // Sized before the set borrows the shard; refused only if sampling happens.
    let budget = SampleBudget::new(ctx, if repeats { count.unsigned_abs() } else { 0 }, 1);
    let mut rand = rand_stream(ctx);
    let set = match read_set(ctx, key) {
        Err(e) => return e,
        Ok(None) => return Reply::Array(Vec::new()),
        Ok(Some(set)) => set,
    };
    let size = set.len();
    if count == 0 || size == 0 {
        return Reply::Array(Vec::new());
    }
    if repeats {
        let mut budget = match budget {
            Ok(b) => b,
            Err(e) => return e,
        };
        // Repeats allowed: grow the reply as members are drawn rather than reserving for a
        // count that comes from the client.
        let mut out = Vec::new();
        for _ in 0..count.unsigned_abs() {
            let Some(member) = set.random_member(rand()) else {
                break;
            };
            let member = member.to_bytes();
            if let Err(e) = budget.take(member.len()) {
                return e;
            }
            out.push(Reply::Bulk(member));
        }
        return Reply::Array(out);
    }
    let count = count as u64;
    if count >= size as u64 {
        return Reply::Array(set.iter().map(Member::reply).collect());
    }
    let count = count as usize;
    let out = match &set.repr {
        Repr::Ints(s) => sample_indexes(size, count, &mut rand)
            .into_iter()
            .map(|p| Member::Int(s.get(p)).reply())
            .collect(),
        Repr::Hash(d) if count * SRANDMEMBER_SUB_STRATEGY_MUL > size => {
            let all: Vec<&Bytes> = d.iter().map(|(k, _)| k).collect();
            sample_indexes(size, count, &mut rand)
                .into_iter()
                .map(|p| Member::Str(all[p]).reply())
                .collect()
        }
        Repr::Hash(d) => {
            let mut picked: ahash::HashSet<&Bytes> = ahash::HashSet::default();
            while picked.len() < count {
                match d.random(rand()) {
                    Some((k, _)) => picked.insert(k),
                    None => break,
                };
            }
            picked.into_iter().map(|k| Member::Str(k).reply()).collect()
        }
    };
    Reply::Array(out)
}

/// SMOVE source destination member
pub fn smove(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (src, dst, member) = (&args[1], &args[2], &args[3]);
    let src_is_set = ctx.lookup_write(src).map(|v| matches!(v, Value::Set(_)));
    let dst_is_set = ctx.lookup_write(dst).map(|v| matches!(v, Value::Set(_)));
    match (src_is_set, dst_is_set) {
        (None, _) => return Reply::Int(0),
        (Some(false), _) | (_, Some(false)) => return error::wrongtype(),
        _ => {}
    }
    let max = max_intset(ctx);
    let (removed, emptied) = match write_set(ctx, src) {
        Ok(Some(set)) if src == dst => return Reply::Int(set.contains(member) as i64),
        Ok(Some(set)) => (set.remove(member), set.is_empty()),
        _ => (false, false),
    };
    if !removed {
        return Reply::Int(0);
    }
    ctx.notify(SET, "srem", src);
    ctx.delete_if_empty(src, emptied);
    ctx.dirty(1);
    let added = match write_set(ctx, dst) {
        Ok(Some(set)) => set.insert(member, max),
        _ => {
            add_key(ctx, dst, SetValue::from_members(&[member], max));
            true
        }
    };
    // Only a member the destination did not have is reported on it.
    if added {
        ctx.dirty(1);
        ctx.notify(SET, "sadd", dst);
    }
    Reply::Int(1)
}

/// Looks every key up for reading, in order, as Redis does (counting hits and misses and
/// expiring what is due); WRONGTYPE at the first key that holds something else.
fn check_sets(ctx: &mut Ctx<'_>, keys: &[Bytes]) -> Result<(), Reply> {
    for k in keys {
        read_set(ctx, k)?;
    }
    Ok(())
}

/// The sets at `keys` (None for a missing key), once [`check_sets`] has passed.
fn peek_sets<'d>(db: &'d Db, keys: &[Bytes]) -> Vec<Option<&'d SetValue>> {
    keys.iter()
        .map(|k| match db.peek(k).map(|e| &e.value) {
            Some(Value::Set(s)) => Some(s),
            _ => None,
        })
        .collect()
}

/// Calls `visit` with each member of the intersection of `sets` (all present) until it
/// returns false.
fn intersect(sets: &mut [&SetValue], mut visit: impl FnMut(Member<'_>) -> bool) {
    sets.sort_by_key(|s| s.len());
    let Some((smallest, others)) = sets.split_first() else {
        return;
    };
    for m in smallest.iter() {
        let in_all = others
            .iter()
            .all(|s| std::ptr::eq(*s, *smallest) || s.contains_member(m));
        if in_all && !visit(m) {
            return;
        }
    }
}

/// Writes a STORE command's result, reporting `event`: an empty result deletes the
/// destination.
fn store(ctx: &mut Ctx<'_>, dst: &[u8], result: SetValue, event: &'static str) -> Reply {
    let n = result.len();
    if n == 0 {
        ctx.delete_destination(dst);
    } else {
        ctx.set(dst, Value::Set(result));
        ctx.notify(SET, event, dst);
    }
    Reply::Int(n as i64)
}

/// SINTER key [key ...] (and SMEMBERS key, which Redis runs as SINTER of one key)
pub fn sinter(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let keys = &args[1..];
    if let Err(e) = check_sets(ctx, keys) {
        return e;
    }
    let sets = peek_sets(ctx.db(), keys);
    let mut out = Vec::new();
    if let Some(mut sets) = sets.into_iter().collect::<Option<Vec<_>>>() {
        intersect(&mut sets, |m| {
            out.push(m.reply());
            true
        });
    }
    Reply::Set(out)
}

/// SINTERSTORE destination key [key ...]
pub fn sinterstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let keys = &args[2..];
    if let Err(e) = check_sets(ctx, keys) {
        return e;
    }
    let max = max_intset(ctx);
    let sets = peek_sets(ctx.db(), keys);
    let mut result = SetValue::new();
    if let Some(mut sets) = sets.into_iter().collect::<Option<Vec<_>>>() {
        intersect(&mut sets, |m| {
            result.insert_member(m, max);
            true
        });
    }
    store(ctx, &args[1], result, "sinterstore")
}

/// SINTERCARD numkeys key [key ...] [LIMIT limit]
pub fn sintercard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let numkeys = match num::parse_i64(&args[1]) {
        Some(n) if n > 0 => n as u64,
        _ => return Reply::err("ERR numkeys should be greater than 0"),
    };
    let available = args.len() - 2;
    if numkeys > available as u64 {
        return Reply::err("ERR Number of keys can't be greater than number of args");
    }
    let numkeys = numkeys as usize;
    let mut limit = 0u64;
    let mut i = 2 + numkeys;
    while i < args.len() {
        if args[i].eq_ignore_ascii_case(b"limit") && i + 1 < args.len() {
            match num::parse_i64(&args[i + 1]) {
                Some(n) if n >= 0 => limit = n as u64,
                _ => return Reply::err("ERR LIMIT can't be negative"),
            }
            i += 2;
        } else {
            return error::syntax();
        }
    }
    let keys = &args[2..2 + numkeys];
    if let Err(e) = check_sets(ctx, keys) {
        return e;
    }
    let sets = peek_sets(ctx.db(), keys);
    let mut cardinality = 0u64;
    if let Some(mut sets) = sets.into_iter().collect::<Option<Vec<_>>>() {
        intersect(&mut sets, |_| {
            cardinality += 1;
            limit == 0 || cardinality < limit
        });
    }
    Reply::Int(cardinality as i64)
}

/// The union of `sets`, built by adding members in order as Redis does.
fn union(sets: &[Option<&SetValue>], max: usize) -> SetValue {
    let mut result = SetValue::new();
    for s in sets.iter().flatten() {
        for m in s.iter() {
            result.insert_member(m, max);
        }
    }
    result
}

/// The first set minus the others. As Redis, it either filters the first set's members
/// (cheap when the others are large) or copies the first set and removes the others'
/// members; the second way's result keeps the encoding the copy had, so the choice is
/// Redis's own, to report the same OBJECT ENCODING.
fn difference(sets: &[Option<&SetValue>], max: usize) -> SetValue {
    let mut result = SetValue::new();
    let Some((Some(first), others)) = sets.split_first() else {
        return result;
    };
    let others: Vec<&SetValue> = others.iter().flatten().copied().collect();
    if others.iter().any(|s| std::ptr::eq(*s, *first)) {
        return result;
    }
    let filter_work = first.len() * (others.len() + 1) / 2;
    let copy_work = first.len() + others.iter().map(|s| s.len()).sum::<usize>();
    if filter_work <= copy_work {
        for m in first.iter() {
            if !others.iter().any(|s| s.contains_member(m)) {
                result.insert_member(m, max);
            }
        }
    } else {
        for m in first.iter() {
            result.insert_member(m, max);
        }
        for s in &others {
            if result.is_empty() {
                break;
            }
            for m in s.iter() {
                result.remove_member(m);
            }
        }
    }
    result
}

/// SUNION / SDIFF and their STORE forms: `keys` are the inputs, `dst` the destination and
/// the event its write reports.
fn union_or_diff(
    ctx: &mut Ctx<'_>,
    keys: &[Bytes],
    dst: Option<(&[u8], &'static str)>,
    op: fn(&[Option<&SetValue>], usize) -> SetValue,
) -> Reply {
    if let Err(e) = check_sets(ctx, keys) {
        return e;
    }
    let max = max_intset(ctx);
    let result = op(&peek_sets(ctx.db(), keys), max);
    match dst {
        Some((dst, event)) => store(ctx, dst, result, event),
        None => Reply::Set(result.iter().map(Member::reply).collect()),
    }
}

/// SUNION key [key ...]
pub fn sunion(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    union_or_diff(ctx, &args[1..], None, union)
}

/// SUNIONSTORE destination key [key ...]
pub fn sunionstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    union_or_diff(ctx, &args[2..], Some((&args[1], "sunionstore")), union)
}

/// SDIFF key [key ...]
pub fn sdiff(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    union_or_diff(ctx, &args[1..], None, difference)
}

/// SDIFFSTORE destination key [key ...]
pub fn sdiffstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    union_or_diff(ctx, &args[2..], Some((&args[1], "sdiffstore")), difference)
}

/// SSCAN key cursor [MATCH pattern] [COUNT count]
pub fn sscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let cursor = match scan::parse_cursor(&args[2]) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let set = match read_set(ctx, &args[1]) {
        Err(e) => return e,
        Ok(None) => return scan::reply(0, Vec::new()),
        Ok(Some(set)) => set,
    };
    let opts = match scan::parse_options(args, 3, false) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let mut items = Vec::new();
    let next = match &set.repr {
        // An intset is small: all of it in one call, as Redis does.
        Repr::Ints(s) => {
            items.extend(s.iter().map(|n| Member::Int(n).to_bytes()));
            0
        }
        Repr::Hash(d) => {
            // Redis bounds the buckets visited to ten times COUNT so a sparse table cannot
            // make one call long.
            let mut cursor = cursor;
            let mut budget = opts.count.saturating_mul(10);
            loop {
                cursor = d.scan(cursor, |k, _| items.push(Bytes::copy_from_slice(k)));
                budget = budget.saturating_sub(1);
                if cursor == 0 || budget == 0 || items.len() >= opts.count {
                    break;
                }
            }
            cursor
        }
    };
    let items = items
        .into_iter()
        .filter(|m| opts.matches(m))
        .map(Reply::Bulk)
        .collect();
    scan::reply(next, items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{bulk, err, int, TestShard};

    /// Runs a command given as space-separated words.
    fn run(t: &mut TestShard, line: &str) -> Reply {
        let args: Vec<&str> = line.split(' ').collect();
        t.run(&args)
    }

    /// The bulk strings of an array or set reply, sorted.
    fn sorted(reply: Reply) -> Vec<String> {
        let items = match reply {
            Reply::Array(v) | Reply::Set(v) => v,
            other => panic!("not a collection: {other:?}"),
        };
        let mut out: Vec<String> = items
            .into_iter()
            .map(|r| match r {
                Reply::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
                other => panic!("not a bulk: {other:?}"),
            })
            .collect();
        out.sort();
        out
    }

    fn strings(items: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = items.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    }

    fn members(t: &mut TestShard, key: &str) -> Vec<String> {
        sorted(run(t, &format!("smembers {key}")))
    }

    fn encoding(t: &TestShard, key: &str) -> Option<&'static str> {
        t.shard.dbs[0]
            .peek(key.as_bytes())
            .map(|e| e.value.encoding())
    }

    fn exists(t: &TestShard, key: &str) -> bool {
        t.shard.dbs[0].peek(key.as_bytes()).is_some()
    }

    fn create(t: &mut TestShard, key: &str, items: &[&str]) {
        t.shard.dbs[0].remove(key.as_bytes());
        for m in items {
            assert!(!run(t, &format!("sadd {key} {m}")).is_error());
        }
    }

    fn range(from: i64, to: i64) -> Vec<String> {
        (from..to).map(|i| i.to_string()).collect()
    }

    const WRONGTYPE: &str = error::WRONGTYPE;

    #[test]
    fn basics_regular_set() {
        let mut t = TestShard::new();
        create(&mut t, "myset", &["foo"]);
        assert_eq!(encoding(&t, "myset"), Some("hashtable"));
        assert_eq!(run(&mut t, "sadd myset bar"), int(1));
        assert_eq!(run(&mut t, "sadd myset bar"), int(0));
        assert_eq!(run(&mut t, "scard myset"), int(2));
        assert_eq!(run(&mut t, "sismember myset foo"), int(1));
        assert_eq!(run(&mut t, "sismember myset bla"), int(0));
        assert_eq!(
            run(&mut t, "smismember myset foo bla"),
            Reply::Array(vec![int(1), int(0)])
        );
        assert_eq!(
            run(&mut t, "smismember myset bla foo"),
            Reply::Array(vec![int(0), int(1)])
        );
        assert_eq!(members(&mut t, "myset"), strings(&["bar", "foo"]));
    }

    #[test]
    fn basics_intset() {
        let mut t = TestShard::new();
        create(&mut t, "myset", &["17"]);
        assert_eq!(encoding(&t, "myset"), Some("intset"));
        assert_eq!(run(&mut t, "sadd myset 16"), int(1));
        assert_eq!(run(&mut t, "sadd myset 16"), int(0));
        assert_eq!(run(&mut t, "scard myset"), int(2));
        assert_eq!(run(&mut t, "sismember myset 16"), int(1));
        assert_eq!(run(&mut t, "sismember myset 18"), int(0));
        assert_eq!(run(&mut t, "sismember myset abc"), int(0));
        assert_eq!(
            run(&mut t, "smismember myset 16 18 17"),
            Reply::Array(vec![int(1), int(0), int(1)])
        );
        // Intsets reply in ascending order, as Redis's do.
        assert_eq!(
            run(&mut t, "smembers myset"),
            Reply::Set(vec![bulk("16"), bulk("17")])
        );
        assert_eq!(encoding(&t, "myset"), Some("intset"));
    }

    #[test]
    fn missing_keys_and_wrong_types() {
        let mut t = TestShard::new();
        run(&mut t, "set str x");
        for cmd in [
            "sadd str a",
            "srem str a",
            "sismember str a",
            "smismember str a",
            "scard str",
            "smembers str",
            "spop str",
            "spop str 2",
            "srandmember str",
            "srandmember str 2",
            "sscan str 0",
        ] {
            assert_eq!(run(&mut t, cmd), err(WRONGTYPE), "{cmd}");
        }
        assert_eq!(run(&mut t, "srem nokey a"), int(0));
        assert_eq!(run(&mut t, "sismember nokey a"), int(0));
        assert_eq!(
            run(&mut t, "smismember nokey a b"),
            Reply::Array(vec![int(0), int(0)])
        );
        assert_eq!(run(&mut t, "scard nokey"), int(0));
        assert_eq!(run(&mut t, "smembers nokey"), Reply::Set(vec![]));
        assert_eq!(
            run(&mut t, "smismember nokey"),
            err("ERR wrong number of arguments for 'smismember' command")
        );
        assert_eq!(
            run(&mut t, "sadd nokey"),
            err("ERR wrong number of arguments for 'sadd' command")
        );
        assert!(!exists(&t, "nokey"));
    }

    #[test]
    fn sadd_converts_to_hashtable() {
        let mut t = TestShard::new();
        create(&mut t, "myset", &["1", "2", "3"]);
        assert_eq!(encoding(&t, "myset"), Some("intset"));
        assert_eq!(run(&mut t, "sadd myset a"), int(1));
        assert_eq!(encoding(&t, "myset"), Some("hashtable"));
        assert_eq!(members(&mut t, "myset"), strings(&["1", "2", "3", "a"]));

        // Larger than 64 bits, or not in canonical form: not an integer.
        for m in [
            "213244124402402314402033402",
            "9223372036854775808",
            "01",
            "+1",
            "-0",
            "1.0",
        ] {
            create(&mut t, "s", &[m]);
            assert_eq!(encoding(&t, "s"), Some("hashtable"), "{m}");
            assert_eq!(run(&mut t, &format!("sismember s {m}")), int(1));
        }
        create(
            &mut t,
            "s",
            &["-9223372036854775808", "9223372036854775807"],
        );
        assert_eq!(encoding(&t, "s"), Some("intset"));
        assert_eq!(
            run(&mut t, "smembers s"),
            Reply::Set(vec![
                bulk("-9223372036854775808"),
                bulk("9223372036854775807")
            ])
        );
    }

    #[test]
    fn sadd_overflowing_the_intset_limit_converts() {
        let mut t = TestShard::new();
        for i in 0..512 {
            run(&mut t, &format!("sadd myset {i}"));
        }
        assert_eq!(encoding(&t, "myset"), Some("intset"));
        assert_eq!(run(&mut t, "sadd myset 512"), int(1));
        assert_eq!(encoding(&t, "myset"), Some("hashtable"));
        assert_eq!(run(&mut t, "scard myset"), int(513));

        // A single SADD that crosses the limit, duplicates included.
        let mut args = vec!["sadd".to_string(), "big".to_string()];
        args.extend(range(0, 513));
        args.push("7".into());
        let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        assert_eq!(t.run(&args), int(513));
        assert_eq!(encoding(&t, "big"), Some("hashtable"));

        // The limit is read from the configuration.
        t.shard.config.set_max_intset_entries = 0;
        assert_eq!(run(&mut t, "sadd zero 1"), int(1));
        assert_eq!(encoding(&t, "zero"), Some("hashtable"));
        t.shard.config.set_max_intset_entries = 3;
        assert_eq!(run(&mut t, "sadd three 1 2 3 3"), int(3));
        assert_eq!(encoding(&t, "three"), Some("intset"));
        assert_eq!(run(&mut t, "sadd three 3 4"), int(1));
        assert_eq!(encoding(&t, "three"), Some("hashtable"));
    }

    #[test]
    fn variadic_sadd_and_batched_merge() {
        let mut t = TestShard::new();
        assert_eq!(run(&mut t, "sadd myset a b c"), int(3));
        assert_eq!(run(&mut t, "sadd myset A a b c B"), int(2));
        assert_eq!(
            members(&mut t, "myset"),
            strings(&["A", "B", "a", "b", "c"])
        );
        assert_eq!(run(&mut t, "sadd ints 50 10 30 10"), int(3));
        assert_eq!(run(&mut t, "sadd ints 5 40 30 60 -70000 1000000"), int(5));
        assert_eq!(
            run(&mut t, "smembers ints"),
            Reply::Set(
                ["-70000", "5", "10", "30", "40", "50", "60", "1000000"]
                    .iter()
                    .map(|s| bulk(s))
                    .collect()
            )
        );
        assert_eq!(run(&mut t, "sadd ints 1 2 x"), int(3));
        assert_eq!(encoding(&t, "ints"), Some("hashtable"));
        assert_eq!(run(&mut t, "scard ints"), int(11));
    }

    #[test]
    fn binary_members() {
        let mut t = TestShard::new();
        let b = |s: &[u8]| Bytes::copy_from_slice(s);
        let weird = b(b"a\0b\r\n\xff");
        assert_eq!(
            t.run_bytes(&[b(b"sadd"), b(b"k"), weird.clone(), b(b"")]),
            int(2)
        );
        assert_eq!(
            t.run_bytes(&[b(b"sismember"), b(b"k"), weird.clone()]),
            int(1)
        );
        assert_eq!(t.run_bytes(&[b(b"sismember"), b(b"k"), b(b"")]), int(1));
        assert_eq!(t.run_bytes(&[b(b"srem"), b(b"k"), weird.clone()]), int(1));
        assert_eq!(
            run(&mut t, "smembers k"),
            Reply::Set(vec![Reply::Bulk(Bytes::new())])
        );
    }

    #[test]
    fn sadd_counts_writes_and_replaces_expired_keys() {
        let mut t = TestShard::new();
        let before = t.shard.dirty;
        run(&mut t, "sadd k a b");
        run(&mut t, "sadd k b c");
        run(&mut t, "sadd k c");
        assert_eq!(t.shard.dirty - before, 3);
        let at = t.now_ms + 10;
        t.shard.dbs[0].set_expire(b"k", at);
        t.advance(10);
        assert_eq!(run(&mut t, "sadd k z"), int(1));
        assert_eq!(members(&mut t, "k"), strings(&["z"]));
    }

    #[test]
    fn srem_basics() {
        let mut t = TestShard::new();
        create(&mut t, "myset", &["foo", "bar", "ciao"]);
        assert_eq!(run(&mut t, "srem myset qux"), int(0));
        assert_eq!(run(&mut t, "srem myset foo"), int(1));
        assert_eq!(members(&mut t, "myset"), strings(&["bar", "ciao"]));

        create(&mut t, "myset", &["3", "4", "5"]);
        assert_eq!(run(&mut t, "srem myset 6"), int(0));
        assert_eq!(run(&mut t, "srem myset x"), int(0));
        assert_eq!(run(&mut t, "srem myset 4"), int(1));
        assert_eq!(members(&mut t, "myset"), strings(&["3", "5"]));
        assert_eq!(encoding(&t, "myset"), Some("intset"));

        run(&mut t, "del myset");
        t.shard.dbs[0].remove(b"myset");
        run(&mut t, "sadd myset a b c d");
        assert_eq!(run(&mut t, "srem myset k k k"), int(0));
        assert_eq!(run(&mut t, "srem myset b d x y"), int(2));
        assert_eq!(members(&mut t, "myset"), strings(&["a", "c"]));

        create(&mut t, "myset", &["1", "2", "3"]);
        let before = t.shard.dirty;
        assert_eq!(run(&mut t, "srem myset 1 2 3 4 5 6 7 8"), int(3));
        assert_eq!(t.shard.dirty - before, 3);
        assert!(!exists(&t, "myset"));
    }

    #[test]
    fn removal_never_converts_back_to_intset() {
        let mut t = TestShard::new();
        run(&mut t, "sadd s 1 2 3 a");
        run(&mut t, "srem s a");
        assert_eq!(encoding(&t, "s"), Some("hashtable"));
        run(&mut t, "spop s");
        assert_eq!(encoding(&t, "s"), Some("hashtable"));
        assert_eq!(run(&mut t, "sadd s 9"), int(1));
        assert_eq!(encoding(&t, "s"), Some("hashtable"));
    }

    #[test]
    fn sintercard_argument_errors() {
        let mut t = TestShard::new();
        let arity = err("ERR wrong number of arguments for 'sintercard' command");
        assert_eq!(run(&mut t, "sintercard"), arity);
        assert_eq!(run(&mut t, "sintercard 1"), arity);
        let numkeys = err("ERR numkeys should be greater than 0");
        assert_eq!(run(&mut t, "sintercard 0 myset"), numkeys);
        assert_eq!(run(&mut t, "sintercard a myset"), numkeys);
        assert_eq!(run(&mut t, "sintercard -1 myset"), numkeys);
        let too_many = err("ERR Number of keys can't be greater than number of args");
        assert_eq!(run(&mut t, "sintercard 2 myset"), too_many);
        assert_eq!(run(&mut t, "sintercard 3 myset myset2"), too_many);
        assert_eq!(
            run(&mut t, "sintercard 9223372036854775807 myset"),
            too_many
        );
        assert_eq!(run(&mut t, "sintercard 1 myset myset2"), error::syntax());
        assert_eq!(run(&mut t, "sintercard 1 myset bar_arg"), error::syntax());
        assert_eq!(run(&mut t, "sintercard 1 myset LIMIT"), error::syntax());
        let limit = err("ERR LIMIT can't be negative");
        assert_eq!(run(&mut t, "sintercard 1 myset LIMIT -1"), limit);
        assert_eq!(run(&mut t, "sintercard 1 myset LIMIT a"), limit);
        assert_eq!(run(&mut t, "sintercard 1 myset limit 1 limit 0"), int(0));
    }

    #[test]
    fn sintercard_wrong_type_and_missing_keys() {
        let mut t = TestShard::new();
        run(&mut t, "sadd set a b c");
        run(&mut t, "set key1 x");
        assert_eq!(run(&mut t, "sintercard 1 key1"), err(WRONGTYPE));
        assert_eq!(run(&mut t, "sintercard 2 set key1"), err(WRONGTYPE));
        assert_eq!(run(&mut t, "sintercard 2 key1 noset"), err(WRONGTYPE));
        assert_eq!(run(&mut t, "sintercard 2 noset key1"), err(WRONGTYPE));
        assert_eq!(run(&mut t, "sintercard 1 non-existing-key"), int(0));
        assert_eq!(run(&mut t, "sintercard 1 non-existing-key limit 0"), int(0));
        assert_eq!(
            run(&mut t, "sintercard 1 non-existing-key limit 10"),
            int(0)
        );
        assert_eq!(run(&mut t, "sintercard 1 set"), int(3));
    }

    /// Builds set1..set5 as the Redis suite does, encoded as `kind`; returns the extra
    /// member that decides the encoding.
    fn generated_sets(t: &mut TestShard, kind: &str) -> &'static str {
        for i in 1..=5 {
            t.shard.dbs[0].remove(format!("set{i}").as_bytes());
        }
        for i in 0..200 {
            run(t, &format!("sadd set1 {i}"));
            run(t, &format!("sadd set2 {}", i + 195));
        }
        for i in [199, 195, 1000, 2000] {
            run(t, &format!("sadd set3 {i}"));
        }
        for i in 5..200 {
            run(t, &format!("sadd set4 {i}"));
        }
        run(t, "sadd set5 0");
        let large = if kind == "hashtable" { "foo" } else { "200" };
        for i in 1..=5 {
            run(t, &format!("sadd set{i} {large}"));
        }
        for i in 1..=5 {
            assert_eq!(encoding(t, &format!("set{i}")), Some(kind));
        }
        large
    }

    #[test]
    fn algebra_over_both_encodings() {
        for kind in ["hashtable", "intset"] {
            let mut t = TestShard::new();
            let large = generated_sets(&mut t, kind);
            let with_large = |items: &[&str]| {
                let mut v = strings(items);
                v.push(large.to_string());
                v.sort();
                v
            };

            let inter2 = with_large(&["195", "196", "197", "198", "199"]);
            assert_eq!(sorted(run(&mut t, "sinter set1 set2")), inter2);
            assert_eq!(run(&mut t, "sintercard 2 set1 set2"), int(6));
            assert_eq!(run(&mut t, "sintercard 2 set1 set2 limit 0"), int(6));
            assert_eq!(run(&mut t, "sintercard 2 set1 set2 limit 3"), int(3));
            assert_eq!(run(&mut t, "sintercard 2 set1 set2 limit 10"), int(6));
            assert_eq!(run(&mut t, "sinterstore setres set1 set2"), int(6));
            assert_eq!(encoding(&t, "setres"), Some(kind));
            assert_eq!(members(&mut t, "setres"), inter2);

            let mut union: Vec<String> = members(&mut t, "set1");
            union.extend(members(&mut t, "set2"));
            union.sort();
            union.dedup();
            assert_eq!(sorted(run(&mut t, "sunion set1 set2")), union);
            assert_eq!(
                run(&mut t, "sunionstore setres set1 set2"),
                int(union.len() as i64)
            );
            assert_eq!(encoding(&t, "setres"), Some(kind));
            assert_eq!(members(&mut t, "setres"), union);
            assert_eq!(sorted(run(&mut t, "sunion nokey1 set1 set2 nokey2")), union);

            let inter3 = with_large(&["195", "199"]);
            assert_eq!(sorted(run(&mut t, "sinter set1 set2 set3")), inter3);
            assert_eq!(run(&mut t, "sintercard 3 set1 set2 set3"), int(3));
            assert_eq!(run(&mut t, "sintercard 3 set1 set2 set3 limit 2"), int(2));
            assert_eq!(run(&mut t, "sinterstore setres set1 set2 set3"), int(3));
            assert_eq!(members(&mut t, "setres"), inter3);

            assert_eq!(
                sorted(run(&mut t, "sdiff set1 set4")),
                strings(&["0", "1", "2", "3", "4"])
            );
            assert_eq!(
                sorted(run(&mut t, "sdiff set1 set4 set5")),
                strings(&["1", "2", "3", "4"])
            );
            assert_eq!(run(&mut t, "sdiffstore setres set1 set4 set5"), int(4));
            if kind == "intset" {
                assert_eq!(encoding(&t, "setres"), Some("intset"));
            }
            assert_eq!(members(&mut t, "setres"), strings(&["1", "2", "3", "4"]));

            let set1 = members(&mut t, "set1");
            assert_eq!(sorted(run(&mut t, "sinter set1 set1 set1")), set1);
            assert_eq!(sorted(run(&mut t, "sunion set1 set1 set1")), set1);
            assert_eq!(sorted(run(&mut t, "sdiff set1 set1 set1")), strings(&[]));
        }
    }

    #[test]
    fn sdiff_edge_cases() {
        let mut t = TestShard::new();
        run(&mut t, "sadd set2 1 2 3 4");
        run(&mut t, "sadd set3 a b c d");
        assert_eq!(run(&mut t, "sdiff set1 set2 set3"), Reply::Set(vec![]));
        run(&mut t, "sadd same a b c 1 2 3 4 5 6");
        assert_eq!(run(&mut t, "sdiff same same"), Reply::Set(vec![]));
        assert_eq!(run(&mut t, "sdiff same nokey same"), Reply::Set(vec![]));

        t.shard.dbs[0].clear();
        run(&mut t, "sadd set1 a b c");
        run(&mut t, "sadd set2 b c d");
        assert_eq!(sorted(run(&mut t, "sdiff set1 set2 set3")), strings(&["a"]));
        assert_eq!(sorted(run(&mut t, "sdiff set3 set2 set1")), strings(&[]));
        assert_eq!(sorted(run(&mut t, "sdiff set1")), strings(&["a", "b", "c"]));
    }

    #[test]
    fn sdiff_fuzzing_against_a_model() {
        let mut t = TestShard::new();
        let mut seed = 0x1234_5678_u64;
        let mut next = move |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for _ in 0..100 {
            let nsets = next(10) + 1;
            let mut model: std::collections::BTreeSet<String> = Default::default();
            let mut keys = vec!["sdiff".to_string()];
            for i in 0..nsets {
                let key = format!("set_{i}");
                t.shard.dbs[0].remove(key.as_bytes());
                keys.push(key.clone());
                for _ in 0..next(100) {
                    // A mix of small integers and strings, as the suite's randomValue.
                    let ele = match next(3) {
                        0 => next(50).to_string(),
                        1 => format!("-{}", next(1 << 40)),
                        _ => format!("e{}", next(50)),
                    };
                    run(&mut t, &format!("sadd {key} {ele}"));
                    if i == 0 {
                        model.insert(ele);
                    } else {
                        model.remove(&ele);
                    }
                }
            }
            let args: Vec<&str> = keys.iter().map(|s| s.as_str()).collect();
            let expected: Vec<String> = model.into_iter().collect();
            assert_eq!(sorted(t.run(&args)), expected);
        }
    }

    #[test]
    fn multi_key_commands_reject_wrong_types() {
        let mut t = TestShard::new();
        run(&mut t, "set key1 x");
        run(&mut t, "sadd set1 a b c");
        for op in ["sinter", "sunion", "sdiff"] {
            for keys in ["key1 noset", "noset key1", "key1 set1", "set1 key1"] {
                assert_eq!(run(&mut t, &format!("{op} {keys}")), err(WRONGTYPE));
            }
        }
    }

    #[test]
    fn store_commands_keep_destination_on_error() {
        for op in ["sinterstore", "sunionstore", "sdiffstore"] {
            let mut t = TestShard::new();
            run(&mut t, "set key1 x");
            assert_eq!(
                run(&mut t, &format!("{op} set3 key1 noset")),
                err(WRONGTYPE)
            );
            assert!(!exists(&t, "set3"));
            assert_eq!(
                run(&mut t, &format!("{op} set3 noset key1")),
                err(WRONGTYPE)
            );
            assert!(!exists(&t, "set3"));
            run(&mut t, "sadd set1 a b c");
            run(&mut t, "sadd set2 b c d");
            run(&mut t, "sadd set3 e");
            assert_eq!(
                run(&mut t, &format!("{op} set3 key1 set1 noset")),
                err(WRONGTYPE)
            );
            assert_eq!(
                run(&mut t, &format!("{op} set3 set1 key1 set2")),
                err(WRONGTYPE)
            );
            assert_eq!(members(&mut t, "set3"), strings(&["e"]));
        }
    }

    #[test]
    fn store_commands_delete_destination_on_empty_result() {
        for op in ["sinterstore", "sunionstore", "sdiffstore"] {
            let mut t = TestShard::new();
            run(&mut t, "set setres xxx");
            assert_eq!(run(&mut t, &format!("{op} setres foo111 bar222")), int(0));
            assert!(!exists(&t, "setres"));
            run(&mut t, "sadd set3 a b c");
            assert_eq!(run(&mut t, &format!("{op} set3 set1 set2")), int(0));
            assert!(!exists(&t, "set3"));
        }
        let mut t = TestShard::new();
        run(&mut t, "sadd set1 a b c");
        assert_eq!(run(&mut t, "sinterstore set3 set1 set2"), int(0));
        assert_eq!(run(&mut t, "sinterstore set3 set2 set1"), int(0));
        assert_eq!(run(&mut t, "sdiffstore set3 set1 set2"), int(3));
        assert_eq!(members(&mut t, "set3"), strings(&["a", "b", "c"]));
        assert_eq!(run(&mut t, "sdiffstore set3 set2 set1"), int(0));
        assert!(!exists(&t, "set3"));
        run(&mut t, "sadd set3 e f");
        assert_eq!(run(&mut t, "sunionstore set3 set1 set2"), int(3));
        assert_eq!(members(&mut t, "set3"), strings(&["a", "b", "c"]));
    }

    #[test]
    fn store_commands_replace_any_type_and_drop_the_ttl() {
        let mut t = TestShard::new();
        run(&mut t, "sadd a 1 2");
        run(&mut t, "set dst string");
        let at = t.now_ms + 100_000;
        t.shard.dbs[0].set_expire(b"dst", at);
        assert_eq!(run(&mut t, "sunionstore dst a"), int(2));
        let entry = t.shard.dbs[0].peek(b"dst").expect("stored");
        assert!(entry.expire_at.is_none());
        assert_eq!(entry.value.type_name(), "set");
        // The destination may also be one of the sources.
        run(&mut t, "sadd b 2 3");
        assert_eq!(run(&mut t, "sunionstore a a b"), int(3));
        assert_eq!(members(&mut t, "a"), strings(&["1", "2", "3"]));
        assert_eq!(run(&mut t, "sdiffstore a a b"), int(1));
        assert_eq!(members(&mut t, "a"), strings(&["1"]));
    }

    #[test]
    fn store_results_pick_their_own_encoding() {
        let mut t = TestShard::new();
        run(&mut t, "sadd h 1 2 3 a");
        run(&mut t, "srem h a");
        run(&mut t, "sadd i 1 2 3");
        assert_eq!(encoding(&t, "h"), Some("hashtable"));
        assert_eq!(sorted(run(&mut t, "sinter i h")), strings(&["1", "2", "3"]));
        assert_eq!(sorted(run(&mut t, "sinter h i")), strings(&["1", "2", "3"]));
        for op in ["sinterstore", "sunionstore", "sdiffstore"] {
            assert_eq!(run(&mut t, &format!("{op} dst h")), int(3));
            assert_eq!(encoding(&t, "dst"), Some("intset"), "{op}");
        }
        run(&mut t, "sadd x a");
        assert_eq!(run(&mut t, "sunionstore dst i x"), int(4));
        assert_eq!(encoding(&t, "dst"), Some("hashtable"));

        // Past the limit a union is a hashtable.
        let mut args = vec!["sadd", "big"];
        let nums = range(0, 600);
        args.extend(nums.iter().map(|s| s.as_str()));
        t.run(&args);
        assert_eq!(run(&mut t, "sunionstore dst big"), int(600));
        assert_eq!(encoding(&t, "dst"), Some("hashtable"));
    }

    #[test]
    fn sdiffstore_encoding_follows_redis_algorithm_choice() {
        let mut t = TestShard::new();
        let big = range(0, 600);
        let mut args = vec!["sadd", "first"];
        args.extend(big.iter().map(|s| s.as_str()));
        t.run(&args);
        let low = range(0, 200);
        let mut args = vec!["sadd", "low"];
        args.extend(low.iter().map(|s| s.as_str()));
        t.run(&args);
        let mid = range(200, 299);
        let mut args = vec!["sadd", "mid"];
        args.extend(mid.iter().map(|s| s.as_str()));
        t.run(&args);
        // Redis copies `first` (600 members: a hashtable) and removes from the copy.
        assert_eq!(run(&mut t, "sdiffstore dst first low mid"), int(301));
        assert_eq!(encoding(&t, "dst"), Some("hashtable"));
        // With two sets it filters `first`, adding 400 integers: an intset.
        assert_eq!(run(&mut t, "sdiffstore dst first low"), int(400));
        assert_eq!(encoding(&t, "dst"), Some("intset"));
    }

    #[test]
    fn multi_key_reads_count_hits_and_misses() {
        let mut t = TestShard::new();
        run(&mut t, "sadd a 1");
        let (h, m) = (t.shard.stats.keyspace_hits, t.shard.stats.keyspace_misses);
        run(&mut t, "sunion a nokey a");
        assert_eq!(t.shard.stats.keyspace_hits - h, 2);
        assert_eq!(t.shard.stats.keyspace_misses - m, 1);
    }

    #[test]
    fn spop_basics() {
        for items in [["a", "b", "c"], ["1", "2", "3"]] {
            let mut t = TestShard::new();
            create(&mut t, "myset", &items);
            let mut popped: Vec<String> = (0..3)
                .map(|_| match run(&mut t, "spop myset") {
                    Reply::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
                    other => panic!("{other:?}"),
                })
                .collect();
            popped.sort();
            assert_eq!(popped, strings(&items));
            assert_eq!(run(&mut t, "scard myset"), int(0));
            assert!(!exists(&t, "myset"));
            assert_eq!(run(&mut t, "spop myset"), Reply::Nil);

            create(&mut t, "myset", &items);
            let mut popped = Vec::new();
            for _ in 0..3 {
                let r = sorted(run(&mut t, "spop myset 1"));
                assert_eq!(r.len(), 1);
                popped.extend(r);
            }
            popped.sort();
            assert_eq!(popped, strings(&items));
            assert!(!exists(&t, "myset"));
        }
    }

    #[test]
    fn spop_argument_errors() {
        let mut t = TestShard::new();
        run(&mut t, "sadd s a");
        let range = err("ERR value is out of range, must be positive");
        assert_eq!(run(&mut t, "spop s -1"), range);
        assert_eq!(run(&mut t, "spop s a"), range);
        assert_eq!(run(&mut t, "spop nokey -1"), range);
        assert_eq!(run(&mut t, "spop s 1 2"), error::syntax());
        assert_eq!(run(&mut t, "spop nokey 5"), Reply::Set(vec![]));
        assert_eq!(run(&mut t, "spop s 0"), Reply::Set(vec![]));
        assert_eq!(run(&mut t, "scard s"), int(1));
    }

    #[test]
    fn spop_with_count_pops_everything_once() {
        let letters: Vec<String> = ('a'..='z').map(|c| c.to_string()).collect();
        let numbers = range(1, 27);
        for (items, kind) in [(letters, "hashtable"), (numbers, "intset")] {
            let mut t = TestShard::new();
            let refs: Vec<&str> = items.iter().map(|s| s.as_str()).collect();
            create(&mut t, "myset", &refs);
            assert_eq!(encoding(&t, "myset"), Some(kind));
            let mut all = Vec::new();
            for n in [11, 9, 0, 4, 1, 0, 1, 0] {
                let got = sorted(run(&mut t, &format!("spop myset {n}")));
                assert_eq!(got.len(), n);
                all.extend(got);
            }
            all.sort();
            assert_eq!(all, strings(&refs));
            assert_eq!(run(&mut t, "scard myset"), int(0));
        }
    }

    #[test]
    fn spop_count_code_paths() {
        let content = range(1, 21);
        let refs: Vec<&str> = content.iter().map(|s| s.as_str()).collect();
        let mut t = TestShard::new();
        create(&mut t, "myset", &refs);
        for (n, left) in [(1, 19), (2, 17), (3, 14), (10, 4), (10, 0), (1, 0)] {
            run(&mut t, &format!("spop myset {n}"));
            assert_eq!(run(&mut t, "scard myset"), int(left));
        }
        for (n, left) in [(30, 0), (2, 18), (18, 2)] {
            create(&mut t, "myset", &refs);
            let before = t.shard.dirty;
            let mut res = sorted(run(&mut t, &format!("spop myset {n}")));
            assert_eq!(res.len(), 20 - left);
            assert_eq!(t.shard.dirty - before, (20 - left) as u64);
            assert_eq!(run(&mut t, "scard myset"), int(left as i64));
            res.extend(members(&mut t, "myset"));
            res.sort();
            assert_eq!(res, strings(&refs));
        }
        // The same over a hashtable, where popping most members rebuilds the survivors.
        let words: Vec<String> = (0..20).map(|i| format!("w{i}")).collect();
        let refs: Vec<&str> = words.iter().map(|s| s.as_str()).collect();
        for (n, left) in [(2, 18), (18, 2), (19, 1)] {
            create(&mut t, "myset", &refs);
            let mut res = sorted(run(&mut t, &format!("spop myset {n}")));
            assert_eq!(res.len(), 20 - left);
            res.extend(members(&mut t, "myset"));
            res.sort();
            assert_eq!(res, strings(&refs));
        }
    }

    #[test]
    fn spop_rebuilt_survivors_choose_their_encoding() {
        let mut t = TestShard::new();
        let mut saw = std::collections::HashSet::new();
        // "a" survives one round in 21: run until both outcomes were seen.
        for _ in 0..1000 {
            if saw.len() == 2 {
                break;
            }
            let mut items = range(0, 20);
            items.push("a".into());
            let refs: Vec<&str> = items.iter().map(|s| s.as_str()).collect();
            create(&mut t, "s", &refs);
            // 20 of 21 go: Redis moves the one survivor into a fresh set.
            run(&mut t, "spop s 20");
            let left = members(&mut t, "s");
            let expected = if left == ["a"] { "hashtable" } else { "intset" };
            assert_eq!(encoding(&t, "s"), Some(expected));
            saw.insert(expected);
        }
        assert_eq!(saw.len(), 2);
    }

    #[test]
    fn intset_stress_with_spop() {
        let mut t = TestShard::new();
        let mut seed = 42u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed
        };
        t.shard.config.set_max_intset_entries = 2000;
        for _ in 0..5 {
            t.shard.dbs[0].remove(b"s");
            let mut model = std::collections::HashSet::new();
            for _ in 0..next() % 1024 {
                let v = match next() % 3 {
                    0 => (next() % 65536) as i64,
                    1 => (next() % 4294967296) as i64,
                    _ => next() as i64,
                };
                model.insert(v.to_string());
                run(&mut t, &format!("sadd s {v}"));
            }
            assert_eq!(members(&mut t, "s"), {
                let mut v: Vec<String> = model.iter().cloned().collect();
                v.sort();
                v
            });
            for _ in 0..model.len() {
                let Reply::Bulk(b) = run(&mut t, "spop s") else {
                    panic!("no member")
                };
                assert!(model.remove(&*String::from_utf8_lossy(&b)));
            }
            assert_eq!(run(&mut t, "scard s"), int(0));
        }
    }

    #[test]
    fn srandmember_without_count() {
        for items in [["a", "b", "c"], ["1", "2", "3"]] {
            let mut t = TestShard::new();
            create(&mut t, "myset", &items);
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..100 {
                match run(&mut t, "srandmember myset") {
                    Reply::Bulk(b) => seen.insert(String::from_utf8_lossy(&b).into_owned()),
                    other => panic!("{other:?}"),
                };
            }
            assert_eq!(seen.into_iter().collect::<Vec<_>>(), strings(&items));
            assert_eq!(run(&mut t, "scard myset"), int(3));
        }
        let mut t = TestShard::new();
        assert_eq!(run(&mut t, "srandmember nokey"), Reply::Nil);
    }

    #[test]
    fn srandmember_count_errors_and_empty_replies() {
        let mut t = TestShard::new();
        run(&mut t, "sadd myset a");
        assert_eq!(run(&mut t, "srandmember myset 0"), Reply::Array(vec![]));
        assert_eq!(run(&mut t, "srandmember nokey 100"), Reply::Array(vec![]));
        assert_eq!(run(&mut t, "srandmember nokey -100"), Reply::Array(vec![]));
        assert_eq!(
            run(&mut t, "srandmember myset -9223372036854775808"),
            err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
        );
        assert_eq!(run(&mut t, "srandmember myset x"), error::not_integer());
        assert_eq!(
            run(&mut t, "srandmember myset 9223372036854775808"),
            error::not_integer()
        );
        assert_eq!(run(&mut t, "srandmember myset 1 2"), error::syntax());
        assert_eq!(
            run(&mut t, "srandmember myset 9223372036854775807"),
            Reply::Array(vec![bulk("a")])
        );
        assert_eq!(
            run(&mut t, "srandmember myset -3"),
            Reply::Array(vec![bulk("a"), bulk("a"), bulk("a")])
        );
    }

    #[test]
    fn srandmember_with_count_paths() {
        let mut hashed: Vec<String> = [
            "1",
            "5",
            "10",
            "50",
            "125",
            "50000",
            "33959417",
            "4775547",
            "65434162",
            "12098459",
            "427716",
            "483706",
            "2726473884",
            "72615637475",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        hashed.extend((0..36).map(|i| format!("NAME{i}")));
        for items in [hashed, range(0, 50)] {
            let mut t = TestShard::new();
            let refs: Vec<&str> = items.iter().map(|s| s.as_str()).collect();
            create(&mut t, "myset", &refs);
            let all = strings(&refs);

            // Negative: repeats allowed, exactly |count| members.
            let res = sorted(run(&mut t, "srandmember myset -100"));
            assert_eq!(res.len(), 100);
            assert!(res.iter().all(|m| all.contains(m)));
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..1000 {
                seen.extend(sorted(run(&mut t, "srandmember myset -10")));
                if seen.len() == all.len() {
                    break;
                }
            }
            assert_eq!(seen.len(), all.len());

            // Positive at least the size: the whole set.
            for size in [50, 100] {
                assert_eq!(
                    sorted(run(&mut t, &format!("srandmember myset {size}"))),
                    all
                );
            }

            // Positive below the size: distinct members, every member eventually.
            for size in [45, 5] {
                let mut seen = std::collections::BTreeSet::new();
                for _ in 0..1000 {
                    let res = sorted(run(&mut t, &format!("srandmember myset {size}")));
                    assert_eq!(res.len(), size);
                    let mut distinct = res.clone();
                    distinct.dedup();
                    assert_eq!(distinct.len(), size);
                    assert!(res.iter().all(|m| all.contains(m)));
                    seen.extend(res);
                    if seen.len() == all.len() {
                        break;
                    }
                }
                assert_eq!(seen.len(), all.len());
            }
            assert_eq!(run(&mut t, "scard myset"), int(50));
        }
    }

    /// Pearson's chi-square statistic of how often each member came up.
    fn chi_square(samples: &[String]) -> f64 {
        let mut counts: std::collections::HashMap<&str, f64> = Default::default();
        for s in samples {
            *counts.entry(s).or_default() += 1.0;
        }
        let expected = samples.len() as f64 / counts.len() as f64;
        counts
            .values()
            .map(|c| (c - expected) * (c - expected) / expected)
            .sum()
    }

    #[test]
    fn srandmember_distribution() {
        let hashed = [
            "1",
            "5",
            "10",
            "50",
            "125",
            "MARY",
            "PATRICIA",
            "LINDA",
            "BARBARA",
            "ELIZABETH",
        ];
        let ints = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
        for items in [hashed, ints] {
            let mut t = TestShard::new();
            create(&mut t, "myset", &items);
            let res = sorted(run(&mut t, "srandmember myset -1000"));
            assert!(chi_square(&res) < 40.0);
            for size in [8, 2] {
                let mut all = Vec::new();
                for _ in 0..1000 / size {
                    all.extend(sorted(run(&mut t, &format!("srandmember myset {size}"))));
                }
                assert!(chi_square(&all) < 40.0, "{size}");
            }
        }
    }

    fn setup_move(t: &mut TestShard) {
        for k in ["myset3", "myset4"] {
            t.shard.dbs[0].remove(k.as_bytes());
        }
        create(t, "myset1", &["1", "a", "b"]);
        create(t, "myset2", &["2", "3", "4"]);
        assert_eq!(encoding(t, "myset1"), Some("hashtable"));
        assert_eq!(encoding(t, "myset2"), Some("intset"));
    }

    #[test]
    fn smove_between_encodings() {
        let mut t = TestShard::new();
        setup_move(&mut t);
        assert_eq!(run(&mut t, "smove myset1 myset2 a"), int(1));
        assert_eq!(members(&mut t, "myset1"), strings(&["1", "b"]));
        assert_eq!(members(&mut t, "myset2"), strings(&["2", "3", "4", "a"]));
        assert_eq!(encoding(&t, "myset2"), Some("hashtable"));

        setup_move(&mut t);
        assert_eq!(run(&mut t, "smove myset1 myset2 1"), int(1));
        assert_eq!(members(&mut t, "myset1"), strings(&["a", "b"]));
        assert_eq!(members(&mut t, "myset2"), strings(&["1", "2", "3", "4"]));
        assert_eq!(encoding(&t, "myset2"), Some("intset"));

        setup_move(&mut t);
        assert_eq!(run(&mut t, "smove myset2 myset1 2"), int(1));
        assert_eq!(members(&mut t, "myset1"), strings(&["1", "2", "a", "b"]));
        assert_eq!(members(&mut t, "myset2"), strings(&["3", "4"]));
    }

    #[test]
    fn smove_missing_members_and_keys() {
        let mut t = TestShard::new();
        setup_move(&mut t);
        assert_eq!(run(&mut t, "smove myset1 myset2 foo"), int(0));
        assert_eq!(run(&mut t, "smove myset1 myset1 foo"), int(0));
        assert_eq!(members(&mut t, "myset1"), strings(&["1", "a", "b"]));
        assert_eq!(members(&mut t, "myset2"), strings(&["2", "3", "4"]));
        assert_eq!(run(&mut t, "smove noset myset2 foo"), int(0));
        assert_eq!(members(&mut t, "myset2"), strings(&["2", "3", "4"]));

        assert_eq!(run(&mut t, "smove myset1 myset3 a"), int(1));
        assert_eq!(members(&mut t, "myset1"), strings(&["1", "b"]));
        assert_eq!(members(&mut t, "myset3"), strings(&["a"]));
        assert_eq!(encoding(&t, "myset3"), Some("hashtable"));

        setup_move(&mut t);
        assert_eq!(run(&mut t, "smove myset2 myset3 2"), int(1));
        assert_eq!(members(&mut t, "myset2"), strings(&["3", "4"]));
        assert_eq!(members(&mut t, "myset3"), strings(&["2"]));
        assert_eq!(encoding(&t, "myset3"), Some("intset"));

        // The source goes when its last member leaves.
        run(&mut t, "sadd single x");
        assert_eq!(run(&mut t, "smove single myset3 x"), int(1));
        assert!(!exists(&t, "single"));
        assert_eq!(encoding(&t, "myset3"), Some("hashtable"));
    }

    #[test]
    fn smove_types_and_identity() {
        let mut t = TestShard::new();
        setup_move(&mut t);
        run(&mut t, "set x 10");
        assert_eq!(run(&mut t, "smove x myset2 foo"), err(WRONGTYPE));
        assert_eq!(run(&mut t, "smove myset2 x foo"), err(WRONGTYPE));
        assert_eq!(run(&mut t, "smove myset2 x 2"), err(WRONGTYPE));
        // A missing source answers 0 before the destination's type is checked.
        assert_eq!(run(&mut t, "smove noset x foo"), int(0));

        run(&mut t, "sadd set a b c");
        assert_eq!(run(&mut t, "smove set set b"), int(1));
        assert_eq!(run(&mut t, "smove set set z"), int(0));
        assert_eq!(members(&mut t, "set"), strings(&["a", "b", "c"]));

        // Only a successful addition counts a second write.
        run(&mut t, "sadd src a b");
        run(&mut t, "sadd dst a");
        let before = t.shard.dirty;
        assert_eq!(run(&mut t, "smove src dst a"), int(1));
        assert_eq!(t.shard.dirty - before, 1);
        assert_eq!(run(&mut t, "smove src dst b"), int(1));
        assert_eq!(t.shard.dirty - before, 3);
        assert_eq!(run(&mut t, "scard dst"), int(2));
    }

    #[test]
    fn new_keys_wake_blocked_clients() {
        let mut t = TestShard::new();
        for k in ["k", "moved", "stored"] {
            t.shard.blocked_keys.insert((0, Bytes::from(k)));
        }
        run(&mut t, "sadd k a");
        run(&mut t, "sadd src b");
        run(&mut t, "smove src moved b");
        run(&mut t, "sunionstore stored k");
        let ready: Vec<&[u8]> = t.shard.ready_keys.iter().map(|(_, k)| &k[..]).collect();
        assert_eq!(ready, [&b"k"[..], b"moved", b"stored"]);
    }

    /// Collects a full SSCAN iteration.
    fn full_scan(t: &mut TestShard, key: &str, extra: &str) -> Vec<String> {
        let mut cursor = "0".to_string();
        let mut out = Vec::new();
        let mut calls = 0;
        loop {
            let reply = run(t, &format!("sscan {key} {cursor}{extra}"));
            let Reply::Array(mut parts) = reply else {
                panic!("{reply:?}")
            };
            let items = parts.pop().expect("items");
            let Some(Reply::Bulk(next)) = parts.pop() else {
                panic!("no cursor")
            };
            out.extend(sorted(items));
            cursor = String::from_utf8_lossy(&next).into_owned();
            calls += 1;
            if cursor == "0" || calls > 10_000 {
                break;
            }
        }
        out.sort();
        out.dedup();
        out
    }

    #[test]
    fn sscan_both_encodings() {
        let mut t = TestShard::new();
        let ints = range(0, 100);
        let mut args = vec!["sadd", "iset"];
        args.extend(ints.iter().map(|s| s.as_str()));
        t.run(&args);
        assert_eq!(encoding(&t, "iset"), Some("intset"));
        // One call returns an intset whole, whatever cursor and COUNT say.
        let Reply::Array(parts) = run(&mut t, "sscan iset 7 COUNT 1") else {
            panic!()
        };
        assert_eq!(parts[0], bulk("0"));
        assert_eq!(sorted(parts[1].clone()).len(), 100);

        let words: Vec<String> = (0..100).map(|i| format!("ele:{i}")).collect();
        let mut args = vec!["sadd", "hset"];
        args.extend(words.iter().map(|s| s.as_str()));
        t.run(&args);
        assert_eq!(encoding(&t, "hset"), Some("hashtable"));
        let mut expected = words.clone();
        expected.sort();
        assert_eq!(full_scan(&mut t, "hset", ""), expected);
        assert_eq!(full_scan(&mut t, "hset", " COUNT 7"), expected);
        assert_eq!(full_scan(&mut t, "hset", " MATCH *"), expected);
    }

    #[test]
    fn sscan_errors_and_missing_key() {
        let mut t = TestShard::new();
        run(&mut t, "sadd s a");
        let empty = Reply::Array(vec![bulk("0"), Reply::Array(vec![])]);
        assert_eq!(run(&mut t, "sscan nokey 0"), empty);
        // As Redis, options are only read once the key is found.
        assert_eq!(run(&mut t, "sscan nokey 0 COUNT x"), empty);
        assert_eq!(run(&mut t, "sscan s x"), err("ERR invalid cursor"));
        assert_eq!(run(&mut t, "sscan s -1"), err("ERR invalid cursor"));
        assert_eq!(run(&mut t, "sscan nokey x"), err("ERR invalid cursor"));
        assert_eq!(run(&mut t, "sscan s 0 COUNT 0"), error::syntax());
        assert_eq!(run(&mut t, "sscan s 0 COUNT x"), error::not_integer());
        assert_eq!(run(&mut t, "sscan s 0 TYPE set"), error::syntax());
        assert_eq!(run(&mut t, "sscan s 0 COUNT"), error::syntax());
        assert_eq!(
            run(&mut t, "sscan s 0"),
            Reply::Array(vec![bulk("0"), Reply::Array(vec![bulk("a")])])
        );
    }

    #[test]
    fn resp_shapes() {
        let mut t = TestShard::new();
        run(&mut t, "sadd s 1");
        assert!(matches!(run(&mut t, "smembers s"), Reply::Set(_)));
        assert!(matches!(run(&mut t, "sinter s"), Reply::Set(_)));
        assert!(matches!(run(&mut t, "sunion s"), Reply::Set(_)));
        assert!(matches!(run(&mut t, "sdiff s"), Reply::Set(_)));
        assert!(matches!(run(&mut t, "srandmember s 2"), Reply::Array(_)));
        assert!(matches!(run(&mut t, "spop s 2"), Reply::Set(_)));
    }

    #[test]
    fn a_large_intset_is_compact() {
        let mut t = TestShard::new();
        t.shard.config.set_max_intset_entries = 2_000_000;
        let ints = range(0, 200_000);
        for chunk in ints.chunks(1000) {
            let mut args = vec!["sadd", "big"];
            args.extend(chunk.iter().map(|s| s.as_str()));
            t.run(&args);
        }
        assert_eq!(encoding(&t, "big"), Some("intset"));
        assert_eq!(run(&mut t, "scard big"), int(200_000));
        let Some(Value::Set(SetValue {
            repr: Repr::Ints(s),
        })) = t.shard.dbs[0].peek(b"big").map(|e| &e.value)
        else {
            panic!("not an intset")
        };
        // 3 bytes a member (Redis: 4), plus at most an eighth of slack.
        assert!(s.heap_bytes() <= 600_000 * 9 / 8 + 64, "{}", s.heap_bytes());
        assert_eq!(run(&mut t, "sismember big 199999"), int(1));
        assert_eq!(run(&mut t, "sismember big 200000"), int(0));
    }

    /// Redis's events for the set commands (pubsub.tcl's "set events test", t_set.c): sadd
    /// and srem only when members changed, spop, SMOVE's srem on the source and sadd on the
    /// destination only when it gained the member, the STORE commands' own events or del for
    /// an empty result, del when a set is emptied.
    #[test]
    fn keyspace_events() {
        let mut t = TestShard::new();
        t.notify_all();
        let none = Vec::<String>::new();
        let ev = |t: &mut TestShard, line: &str| {
            let args: Vec<&str> = line.split(' ').collect();
            t.events_of(&args)
        };
        assert_eq!(ev(&mut t, "sadd s a b c d"), ["n new 0:s", "s sadd 0:s"]);
        assert_eq!(ev(&mut t, "srem s x"), none);
        assert_eq!(ev(&mut t, "sadd s x y z"), ["s sadd 0:s"]);
        assert_eq!(ev(&mut t, "sadd s x"), none);
        assert_eq!(ev(&mut t, "srem s x"), ["s srem 0:s"]);
        assert_eq!(ev(&mut t, "spop s"), ["s spop 0:s"]);
        assert_eq!(ev(&mut t, "spop s 0"), none);
        assert_eq!(ev(&mut t, "spop s 1"), ["s spop 0:s"]);
        assert_eq!(ev(&mut t, "spop s 100"), ["s spop 0:s", "g del 0:s"]);
        assert_eq!(ev(&mut t, "spop s"), none);
        t.run(&["sadd", "s", "a"]);
        assert_eq!(ev(&mut t, "spop s"), ["s spop 0:s", "g del 0:s"]);
        t.run(&["sadd", "s", "a", "b"]);
        assert_eq!(ev(&mut t, "srem s a b"), ["s srem 0:s", "g del 0:s"]);

        t.run(&["sadd", "src", "a", "b"]);
        t.run(&["sadd", "dst", "a"]);
        assert_eq!(ev(&mut t, "smove src dst a"), ["s srem 0:src"]);
        assert_eq!(ev(&mut t, "smove src dst x"), none);
        assert_eq!(ev(&mut t, "smove dst dst a"), none);
        assert_eq!(ev(&mut t, "smove nokey dst a"), none);
        assert_eq!(
            ev(&mut t, "smove src dst b"),
            ["s srem 0:src", "g del 0:src", "s sadd 0:dst"]
        );
        assert_eq!(
            ev(&mut t, "smove dst fresh a"),
            ["s srem 0:dst", "n new 0:fresh", "s sadd 0:fresh"]
        );

        t.run(&["sadd", "x", "1", "2"]);
        t.run(&["sadd", "y", "2", "3"]);
        assert_eq!(
            ev(&mut t, "sinterstore d x y"),
            ["n new 0:d", "s sinterstore 0:d"]
        );
        assert_eq!(ev(&mut t, "sunionstore d x y"), ["s sunionstore 0:d"]);
        assert_eq!(ev(&mut t, "sdiffstore d x y"), ["s sdiffstore 0:d"]);
        assert_eq!(ev(&mut t, "sdiffstore d x x"), ["g del 0:d"]);
        assert_eq!(ev(&mut t, "sdiffstore d x x"), none);
        assert_eq!(ev(&mut t, "sinterstore d x nokey"), ["m keymiss 0:nokey"]);
        // An expired destination is deleted as it is by an empty result (Redis's dbDelete),
        // but expired first when a result replaces it.
        t.run(&["sadd", "d", "z"]);
        t.run(&["pexpire", "d", "10"]);
        t.advance(10);
        assert_eq!(
            ev(&mut t, "sinterstore d x nokey"),
            ["m keymiss 0:nokey", "g del 0:d"]
        );
        t.run(&["sadd", "d", "z"]);
        t.run(&["pexpire", "d", "10"]);
        t.advance(10);
        assert_eq!(
            ev(&mut t, "sunionstore d x"),
            ["x expired 0:d", "n new 0:d", "s sunionstore 0:d"]
        );

        for line in [
            "sismember nokey a",
            "smismember nokey a",
            "scard nokey",
            "smembers nokey",
            "srandmember nokey",
            "srandmember nokey 3",
            "sinter nokey",
            "sunion nokey",
            "sdiff nokey",
            "sintercard 1 nokey",
            "sscan nokey 0",
        ] {
            assert_eq!(ev(&mut t, line), ["m keymiss 0:nokey"], "{line}");
        }
        assert_eq!(
            ev(&mut t, "sunion n1 x n2"),
            ["m keymiss 0:n1", "m keymiss 0:n2"]
        );
    }
}
