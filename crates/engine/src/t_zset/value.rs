//! The sorted set value: its two encodings and the conversions between them.
//!
//! "listpack" is a vector of items sorted by (score, member), searched linearly, used while the
//! set is small; "skiplist" (the name clients see) is a member → score map plus the ordered
//! index of [`crate::order_tree`]. The commands in the parent module read both through the
//! methods here, and match on the encoding only where a loop over it is cheaper.

use crate::dict::Dict;
use crate::order_tree::{cmp_entries, Item, Member, Tree};
use crate::shard::Ctx;

/// The thresholds that decide between the two encodings.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_entries: usize,
    pub max_value: usize,
}

impl Limits {
    pub fn of(ctx: &Ctx<'_>) -> Limits {
        Limits {
            max_entries: ctx.shard.config.zset_max_listpack_entries,
            max_value: ctx.shard.config.zset_max_listpack_value,
        }
    }

    /// True if a set of `len` members, the longest `max_len` bytes, fits the small encoding.
    fn fits(self, len: usize, max_len: usize) -> bool {
        len <= self.max_entries && max_len <= self.max_value
    }
}

/// A sorted set value.
#[derive(Debug, Clone, Default)]
pub struct ZSetValue {
    pub(super) repr: Repr,
}

#[derive(Debug, Clone)]
pub(super) enum Repr {
    /// Items sorted by (score, member); members are found by a linear scan.
    Listpack(Vec<Item>),
    Skiplist(Box<Large>),
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Listpack(Vec::new())
    }
}

#[derive(Debug, Clone, Default)]
pub(super) struct Large {
    pub(super) scores: Dict<Member, f64>,
    pub(super) tree: Tree,
}

impl ZSetValue {
    /// An empty set in the small encoding (it converts itself as it grows).
    pub fn new() -> ZSetValue {
        ZSetValue::default()
    }

    /// A set of `items` (distinct members, any order), in the encoding that fits them.
    pub fn from_items(mut items: Vec<Item>, limits: Limits) -> ZSetValue {
        let longest = items.iter().map(|i| i.member.len()).max().unwrap_or(0);
        if limits.fits(items.len(), longest) {
            items.sort_by(|a, b| cmp_entries(a.score, &a.member, b.score, &b.member));
            return ZSetValue {
                repr: Repr::Listpack(items),
            };
        }
        let mut large = Large::default();
        for item in items {
            large.scores.insert(item.member.clone(), item.score);
            large.tree.insert(item);
        }
        ZSetValue {
            repr: Repr::Skiplist(Box::new(large)),
        }
    }

    /// A copy sharing nothing with `self` (members included), in the same encoding.
    pub fn reallocated(&self) -> ZSetValue {
        let copy = |i: &Item| Item::new(i.score, Member::new(&i.member));
        let repr = match &self.repr {
            Repr::Listpack(items) => Repr::Listpack(items.iter().map(copy).collect()),
            Repr::Skiplist(large) => {
                let mut fresh = Large::default();
                fresh.scores.reserve(large.tree.len());
                large.tree.for_range(0, large.tree.len(), &mut |i| {
                    let item = copy(i);
                    fresh.scores.insert(item.member.clone(), item.score);
                    fresh.tree.insert(item);
                });
                Repr::Skiplist(Box::new(fresh))
            }
        };
        ZSetValue { repr }
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self.repr {
            Repr::Listpack(_) => "listpack",
            Repr::Skiplist(_) => "skiplist",
        }
    }

    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Listpack(items) => items.len(),
            Repr::Skiplist(large) => large.tree.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The work of freeing the set: one per member of a skiplist, one for a compact set.
    pub fn free_effort(&self) -> usize {
        match &self.repr {
            Repr::Listpack(_) => 1,
            Repr::Skiplist(large) => large.tree.len(),
        }
    }

    /// Frees up to `max` members (all of a compact set), for freeing a doomed set in steps;
    /// returns the work done.
    pub fn shed(&mut self, max: usize) -> usize {
        match &mut self.repr {
            Repr::Listpack(_) => {
                self.repr = Repr::default();
                1
            }
            Repr::Skiplist(large) => {
                let from_map = large.scores.shed(max, |_, _| {});
                // The tree from its end: no item moves.
                let mut from_tree = 0;
                while from_tree < max
                    && large
                        .tree
                        .remove_at(large.tree.len().wrapping_sub(1))
                        .is_some()
                {
                    from_tree += 1;
                }
                if large.tree.is_empty() && large.scores.is_empty() {
                    self.repr = Repr::default();
                }
                from_map.max(from_tree)
            }
        }
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match &self.repr {
            Repr::Listpack(items) => items.iter().find(|i| &*i.member == member).map(|i| i.score),
            Repr::Skiplist(large) => large.scores.get(member).copied(),
        }
    }

    /// The 0-based ascending rank of `member`.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        match &self.repr {
            Repr::Listpack(items) => items.iter().position(|i| &*i.member == member),
            Repr::Skiplist(large) => {
                let score = *large.scores.get(member)?;
                large.tree.rank(score, member)
            }
        }
    }

    /// The item at a 0-based ascending rank.
    pub fn get(&self, rank: usize) -> Option<&Item> {
        match &self.repr {
            Repr::Listpack(items) => items.get(rank),
            Repr::Skiplist(large) => large.tree.get(rank),
        }
    }

    /// How many leading items satisfy `below`, a predicate true for a prefix of the order.
    pub fn count_while(&self, below: impl Fn(&Item) -> bool) -> usize {
        match &self.repr {
            Repr::Listpack(items) => items.partition_point(below),
            Repr::Skiplist(large) => large.tree.count_while(below),
        }
    }

    /// Calls `f` on the items of ranks `lo..hi` in ascending order.
    pub fn for_range(&self, lo: usize, hi: usize, f: &mut impl FnMut(&Item)) {
        match &self.repr {
            Repr::Listpack(items) => {
                let hi = hi.min(items.len());
                if let Some(slice) = items.get(lo.min(hi)..hi) {
                    slice.iter().for_each(f);
                }
            }
            Repr::Skiplist(large) => large.tree.for_range(lo, hi, f),
        }
    }

    /// Sets the score of `member`, adding it if absent; returns the previous score. Converts
    /// to the large encoding when the set outgrows `limits`.
    pub fn insert(&mut self, member: &[u8], score: f64, limits: Limits) -> Option<f64> {
        if let Repr::Listpack(items) = &mut self.repr {
            if let Some(pos) = items.iter().position(|i| &*i.member == member) {
                let old = items[pos].score;
                if old != score {
                    let mut item = items.remove(pos);
                    item.score = score;
                    let at = items.partition_point(|i| {
                        cmp_entries(i.score, &i.member, score, member).is_lt()
                    });
                    items.insert(at, item);
                }
                return Some(old);
            }
            if limits.fits(items.len() + 1, member.len()) {
                let at = items
                    .partition_point(|i| cmp_entries(i.score, &i.member, score, member).is_lt());
                items.insert(at, Item::new(score, Member::from(member)));
                return None;
            }
            self.convert_to_skiplist();
        }
        let Repr::Skiplist(large) = &mut self.repr else {
            return None;
        };
        match large.scores.get_mut(member) {
            Some(current) => {
                let old = *current;
                if old != score {
                    *current = score;
                    if let Some(mut item) = large.tree.remove(old, member) {
                        item.score = score;
                        large.tree.insert(item);
                    }
                }
                Some(old)
            }
            None => {
                let member: Member = Member::from(member);
                large.scores.insert(member.clone(), score);
                large.tree.insert(Item::new(score, member));
                None
            }
        }
    }

    fn convert_to_skiplist(&mut self) {
        if let Repr::Listpack(items) = &mut self.repr {
            let mut large = Large::default();
            for item in items.drain(..) {
                large.scores.insert(item.member.clone(), item.score);
                large.tree.insert(item);
            }
            self.repr = Repr::Skiplist(Box::new(large));
        }
    }

    /// Removes `member`; returns its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match &mut self.repr {
            Repr::Listpack(items) => {
                let pos = items.iter().position(|i| &*i.member == member)?;
                Some(items.remove(pos).score)
            }
            Repr::Skiplist(large) => {
                let (_, score) = large.scores.remove(member)?;
                large.tree.remove(score, member);
                Some(score)
            }
        }
    }

    /// Removes the items of ranks `lo..hi`; returns how many went.
    pub fn remove_range(&mut self, lo: usize, hi: usize) -> usize {
        let hi = hi.min(self.len());
        if lo >= hi {
            return 0;
        }
        match &mut self.repr {
            Repr::Listpack(items) => {
                items.drain(lo..hi);
            }
            Repr::Skiplist(large) => {
                for _ in lo..hi {
                    if let Some(item) = large.tree.remove_at(lo) {
                        large.scores.remove(&item.member[..]);
                    }
                }
            }
        }
        hi - lo
    }

    /// Removes and returns the lowest (or, with `max`, highest) item.
    pub fn pop(&mut self, max: bool) -> Option<Item> {
        let rank = if max { self.len().checked_sub(1)? } else { 0 };
        match &mut self.repr {
            Repr::Listpack(items) => (rank < items.len()).then(|| items.remove(rank)),
            Repr::Skiplist(large) => {
                let item = large.tree.remove_at(rank)?;
                large.scores.remove(&item.member[..]);
                Some(item)
            }
        }
    }

    /// Heap bytes held by the set (for MEMORY USAGE); a large set's members are measured over
    /// `samples` of them. Each member is one allocation, an 8-byte header and its bytes.
    pub fn allocated_bytes(&self, samples: usize) -> usize {
        let item = std::mem::size_of::<Item>();
        match &self.repr {
            Repr::Listpack(items) => {
                items.capacity() * item + items.iter().map(|i| 8 + i.member.len()).sum::<usize>()
            }
            Repr::Skiplist(large) => {
                std::mem::size_of::<Large>()
                    + large.tree.len() * item
                    + large.scores.allocated_bytes(samples, |m, _| 8 + m.len())
            }
        }
    }
}
