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
use crate::key::Thin;
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
    Hash(Box<Dict<Thin, ()>>),
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

    /// A copy sharing nothing with `self`, in the same encoding.
    pub fn reallocated(&self) -> SetValue {
        let repr = match &self.repr {
            Repr::Ints(ints) => Repr::Ints(ints.clone()),
            Repr::Hash(d) => {
                let mut fresh = Dict::new();
                fresh.reserve(d.len());
                for (m, _) in d.iter() {
                    fresh.insert(m.clone(), ());
                }
                Repr::Hash(Box::new(fresh))
            }
        };
        SetValue { repr }
    }

    /// The work of freeing the set: one per member of a table, one for an intset.
    pub fn free_effort(&self) -> usize {
        match &self.repr {
            Repr::Ints(_) => 1,
            Repr::Hash(d) => d.len(),
        }
    }

    /// Frees up to `max` members (all of an intset), for freeing a doomed set in steps;
    /// returns the work done.
    pub fn shed(&mut self, max: usize) -> usize {
        match &mut self.repr {
            Repr::Ints(_) => {
                self.repr = Repr::default();
                1
            }
            Repr::Hash(d) => d.shed(max, |_, _| {}),
        }
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
        d.insert(Thin::new(bytes), ());
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
                d.insert(Thin::new(m), ());
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
            Repr::Hash(d) => d.allocated_bytes(samples, |k, _| k.block_len()),
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
                d.insert(Thin::new(Member::Int(n).as_bytes(&mut [0; 20])), ());
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
    let lru = ctx.new_lru();
    ctx.db().set(key, Value::Set(set), lru, false);
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
        ctx.delete(key, false);
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
                popped.push(Reply::Bulk(Bytes::copy_from_slice(&k)));
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
            let all: Vec<&Thin> = d.iter().map(|(k, _)| k).collect();
            sample_indexes(size, count, &mut rand)
                .into_iter()
                .map(|p| Member::Str(all[p]).reply())
                .collect()
        }
        Repr::Hash(d) => {
            let mut picked: ahash::HashSet<&Thin> = ahash::HashSet::default();
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
    } else {
        ctx.unchanged_key = Some(2);
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
mod tests;
