//! The ordered index behind a sorted set's "skiplist" encoding.
//!
//! Redis keeps large sorted sets in a skiplist with span counts; Shardis keeps them in an
//! order-statistics B+tree instead (the encoding name stays "skiplist", as clients see it).
//! Items are ordered by (score, member bytes); every inner node knows how many items each of
//! its children holds, so finding an item's rank, the item at a rank, or how many items sort
//! below a bound all take O(log n). Leaves are flat arrays, which keeps the per-item overhead
//! low (one score and one shared pointer to the member, 24 bytes) and iteration cache-friendly.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::borrow::Borrow;
use std::cmp::Ordering;
use std::hash::{Hash, Hasher};
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicU32, Ordering as AtomicOrdering};

/// A member's bytes, shared between the tree and the member → score map.
///
/// One allocation holding a reference count, the length and the bytes, behind a thin
/// pointer: 8 bytes in each of the two structures and an 8-byte header, against 16 and 16
/// for an `Arc<[u8]>`. With a million members that is tens of megabytes.
pub struct Member {
    ptr: NonNull<u8>,
}

/// Header: a 32-bit reference count and a 32-bit length; a length of `u32::MAX` means the
/// real length follows as a 64-bit number.
const SHORT_HEADER: usize = 8;
const LONG_HEADER: usize = 16;
/// Past this many references a clone copies the bytes instead (the count never overflows).
const MAX_REFS: u32 = u32::MAX / 2;

fn member_layout(header: usize, len: usize) -> Layout {
    match header
        .checked_add(len)
        .and_then(|size| Layout::from_size_align(size, 8).ok())
    {
        Some(layout) => layout,
        // Only a slice near the address-space size gets here, which cannot exist.
        None => handle_alloc_error(Layout::new::<u64>()),
    }
}

impl Member {
    pub fn new(bytes: &[u8]) -> Member {
        let short = u32::try_from(bytes.len()).ok().filter(|&l| l != u32::MAX);
        let header = if short.is_some() {
            SHORT_HEADER
        } else {
            LONG_HEADER
        };
        let layout = member_layout(header, bytes.len());
        // SAFETY: the layout has a non-zero size (the header) and 8-byte alignment, so every
        // header field below is written in bounds and aligned; the bytes fit after the header.
        unsafe {
            let p = alloc(layout);
            if p.is_null() {
                handle_alloc_error(layout);
            }
            p.cast::<AtomicU32>().write(AtomicU32::new(1));
            p.add(4).cast::<u32>().write(short.unwrap_or(u32::MAX));
            if short.is_none() {
                p.add(8).cast::<u64>().write(bytes.len() as u64);
            }
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), p.add(header), bytes.len());
            Member {
                ptr: NonNull::new_unchecked(p),
            }
        }
    }

    fn refs(&self) -> &AtomicU32 {
        // SAFETY: the allocation starts with the count and lives as long as any reference.
        unsafe { &*self.ptr.as_ptr().cast::<AtomicU32>() }
    }

    /// The header size and the length.
    fn shape(&self) -> (usize, usize) {
        // SAFETY: the header was written by `new` and is never modified afterwards.
        unsafe {
            let p = self.ptr.as_ptr();
            match p.add(4).cast::<u32>().read() {
                u32::MAX => (LONG_HEADER, p.add(8).cast::<u64>().read() as usize),
                len => (SHORT_HEADER, len as usize),
            }
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        let (header, len) = self.shape();
        // SAFETY: `new` copied exactly `len` bytes right after the header; they are immutable.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(header), len) }
    }
}

// SAFETY: the bytes are immutable after construction and the count is atomic, as in `Arc`.
unsafe impl Send for Member {}
unsafe impl Sync for Member {}

impl Clone for Member {
    fn clone(&self) -> Member {
        let before = self.refs().fetch_add(1, AtomicOrdering::Relaxed);
        if before >= MAX_REFS {
            self.refs().fetch_sub(1, AtomicOrdering::Relaxed);
            return Member::new(self.as_bytes());
        }
        Member { ptr: self.ptr }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if self.refs().fetch_sub(1, AtomicOrdering::Release) != 1 {
            return;
        }
        // Pairs with the other owners' releases before freeing, as `Arc` does.
        fence(AtomicOrdering::Acquire);
        let (header, len) = self.shape();
        // SAFETY: this was the last reference; the layout is the one `new` allocated with.
        unsafe { dealloc(self.ptr.as_ptr(), member_layout(header, len)) }
    }
}

impl std::ops::Deref for Member {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Borrow<[u8]> for Member {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl From<&[u8]> for Member {
    fn from(bytes: &[u8]) -> Member {
        Member::new(bytes)
    }
}

impl PartialEq for Member {
    fn eq(&self, other: &Member) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Member {}

/// Hashes as the byte slice does, so maps keyed by `Member` can be probed with `&[u8]`.
impl Hash for Member {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state)
    }
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", bytes::Bytes::copy_from_slice(self.as_bytes()))
    }
}

/// One element of a sorted set.
#[derive(Debug, Clone)]
pub struct Item {
    pub score: f64,
    pub member: Member,
}

/// The sorted-set order: by score, then by member bytes. Scores are never NaN; -0 and 0
/// compare equal, as in Redis.
pub fn cmp_entries(score_a: f64, member_a: &[u8], score_b: f64, member_b: &[u8]) -> Ordering {
    score_a
        .partial_cmp(&score_b)
        .unwrap_or(Ordering::Equal)
        .then_with(|| member_a.cmp(member_b))
}

impl Item {
    pub fn new(score: f64, member: Member) -> Item {
        Item { score, member }
    }

    /// True if this item sorts before (score, member).
    fn is_before(&self, score: f64, member: &[u8]) -> bool {
        cmp_entries(self.score, &self.member, score, member) == Ordering::Less
    }

    fn is_key(&self, score: f64, member: &[u8]) -> bool {
        cmp_entries(self.score, &self.member, score, member) == Ordering::Equal
    }
}

/// Items per leaf at most; a fuller leaf splits.
const LEAF_MAX: usize = 64;
/// Children per inner node at most.
const INNER_MAX: usize = 64;
/// Below these sizes a node is merged with a neighbour when the two fit in one.
const LEAF_MIN: usize = LEAF_MAX / 4;
const INNER_MIN: usize = INNER_MAX / 4;

#[derive(Debug, Clone)]
enum Node {
    Leaf(Vec<Item>),
    Inner(Box<Inner>),
}

#[derive(Debug, Clone)]
struct Inner {
    children: Vec<Node>,
    /// Items under each child.
    counts: Vec<usize>,
    /// `seps[i]` bounds child `i`: every item of child `i` sorts at or before it, every item of
    /// the later children after it. A separator may name an item since removed; the bound
    /// still holds, which is all routing needs.
    seps: Vec<Item>,
}

fn new_leaf() -> Vec<Item> {
    Vec::with_capacity(LEAF_MAX + 1)
}

impl Node {
    /// Items under this node (sums the child counts of an inner node).
    fn count(&self) -> usize {
        match self {
            Node::Leaf(items) => items.len(),
            Node::Inner(inner) => inner.counts.iter().sum(),
        }
    }

    fn is_underfull(&self) -> bool {
        match self {
            Node::Leaf(items) => items.len() < LEAF_MIN,
            Node::Inner(inner) => inner.children.len() < INNER_MIN,
        }
    }

    /// Size in the unit its node kind is bounded in (items or children).
    fn width(&self) -> usize {
        match self {
            Node::Leaf(items) => items.len(),
            Node::Inner(inner) => inner.children.len(),
        }
    }
}

impl Inner {
    /// The child whose range holds (score, member).
    fn route(&self, score: f64, member: &[u8]) -> usize {
        self.seps.partition_point(|s| s.is_before(score, member))
    }

    /// The child holding rank `rank`, and the rank within it.
    fn child_at(&self, mut rank: usize) -> (usize, usize) {
        for (i, &c) in self.counts.iter().enumerate() {
            if rank < c {
                return (i, rank);
            }
            rank -= c;
        }
        let last = self.counts.len().saturating_sub(1);
        (last, rank)
    }

    /// After a removal under child `i`: merges it with a neighbour when it became small and
    /// the two fit in one node, so the tree stays shallow and its leaves dense.
    fn rebalance(&mut self, i: usize) {
        if self.children.len() < 2 || !self.children[i].is_underfull() {
            return;
        }
        let (a, b) = if i + 1 < self.children.len() {
            (i, i + 1)
        } else {
            (i - 1, i)
        };
        let max = match self.children[a] {
            Node::Leaf(_) => LEAF_MAX,
            Node::Inner(_) => INNER_MAX,
        };
        if self.children[a].width() + self.children[b].width() > max {
            return;
        }
        let right = self.children.remove(b);
        let right_count = self.counts.remove(b);
        let sep = self.seps.remove(a);
        self.counts[a] += right_count;
        match (&mut self.children[a], right) {
            (Node::Leaf(left), Node::Leaf(right)) => left.extend(right),
            (Node::Inner(left), Node::Inner(right)) => {
                let right = *right;
                left.seps.push(sep);
                left.seps.extend(right.seps);
                left.children.extend(right.children);
                left.counts.extend(right.counts);
            }
            // Siblings are always at the same depth.
            _ => {}
        }
    }
}

/// An order-statistics B+tree of sorted-set items.
#[derive(Debug, Clone)]
pub struct Tree {
    root: Node,
    len: usize,
}

impl Default for Tree {
    fn default() -> Self {
        Tree::new()
    }
}

impl Tree {
    pub fn new() -> Tree {
        Tree {
            root: Node::Leaf(Vec::new()),
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Inserts an item whose (score, member) is not in the tree yet.
    pub fn insert(&mut self, item: Item) {
        // A root leaf grows by doubling up to exactly one split's worth, so that small trees
        // stay small and full leaves never carry spare capacity.
        if let Node::Leaf(items) = &mut self.root {
            if items.len() == items.capacity() {
                let want = (items.capacity() * 2).clamp(4, LEAF_MAX + 1);
                items.reserve_exact(want.saturating_sub(items.len()));
            }
        }
        if let Some((sep, right)) = insert_into(&mut self.root, item) {
            let right_count = right.count();
            let left = std::mem::replace(&mut self.root, Node::Leaf(Vec::new()));
            let left_count = self.len + 1 - right_count;
            self.root = Node::Inner(Box::new(Inner {
                children: vec![left, right],
                counts: vec![left_count, right_count],
                seps: vec![sep],
            }));
        }
        self.len += 1;
    }

    /// Removes the item (score, member); returns it if it was there.
    pub fn remove(&mut self, score: f64, member: &[u8]) -> Option<Item> {
        let item = remove_key(&mut self.root, score, member)?;
        self.len -= 1;
        self.collapse_root();
        Some(item)
    }

    /// Removes the item at `rank` (0-based, ascending).
    pub fn remove_at(&mut self, rank: usize) -> Option<Item> {
        if rank >= self.len {
            return None;
        }
        let item = remove_rank(&mut self.root, rank)?;
        self.len -= 1;
        self.collapse_root();
        Some(item)
    }

    fn collapse_root(&mut self) {
        loop {
            match &mut self.root {
                Node::Inner(inner) if inner.children.len() == 1 => {
                    let child = inner.children.pop();
                    if let Some(child) = child {
                        self.root = child;
                    }
                }
                _ => return,
            }
        }
    }

    /// The item at `rank` (0-based, ascending).
    pub fn get(&self, mut rank: usize) -> Option<&Item> {
        if rank >= self.len {
            return None;
        }
        let mut node = &self.root;
        loop {
            match node {
                Node::Leaf(items) => return items.get(rank),
                Node::Inner(inner) => {
                    let (i, r) = inner.child_at(rank);
                    rank = r;
                    node = inner.children.get(i)?;
                }
            }
        }
    }

    /// The 0-based ascending rank of (score, member), if present.
    pub fn rank(&self, score: f64, member: &[u8]) -> Option<usize> {
        let mut node = &self.root;
        let mut before = 0;
        loop {
            match node {
                Node::Leaf(items) => {
                    let pos = items.partition_point(|x| x.is_before(score, member));
                    return match items.get(pos) {
                        Some(x) if x.is_key(score, member) => Some(before + pos),
                        _ => None,
                    };
                }
                Node::Inner(inner) => {
                    let i = inner.route(score, member);
                    before += inner.counts[..i].iter().sum::<usize>();
                    node = inner.children.get(i)?;
                }
            }
        }
    }

    /// How many leading items satisfy `below`, a predicate that holds for a prefix of the
    /// order (such as "score < 5").
    pub fn count_while(&self, below: impl Fn(&Item) -> bool) -> usize {
        let mut node = &self.root;
        let mut before = 0;
        loop {
            match node {
                Node::Leaf(items) => return before + items.partition_point(&below),
                Node::Inner(inner) => {
                    let i = inner.seps.partition_point(&below);
                    before += inner.counts[..i].iter().sum::<usize>();
                    match inner.children.get(i) {
                        Some(child) => node = child,
                        None => return before,
                    }
                }
            }
        }
    }

    /// Calls `f` on the items of ranks `lo..hi`, in ascending order.
    pub fn for_range(&self, lo: usize, hi: usize, f: &mut impl FnMut(&Item)) {
        let hi = hi.min(self.len);
        if lo < hi {
            visit(&self.root, lo, hi, f);
        }
    }
}

fn visit(node: &Node, lo: usize, hi: usize, f: &mut impl FnMut(&Item)) {
    match node {
        Node::Leaf(items) => {
            let hi = hi.min(items.len());
            if let Some(slice) = items.get(lo.min(hi)..hi) {
                slice.iter().for_each(f);
            }
        }
        Node::Inner(inner) => {
            let mut start = 0;
            for (child, &count) in inner.children.iter().zip(&inner.counts) {
                let end = start + count;
                if end > lo && start < hi {
                    visit(child, lo.saturating_sub(start), (hi - start).min(count), f);
                }
                if end >= hi {
                    break;
                }
                start = end;
            }
        }
    }
}

/// Inserts under `node`; when the node overflows it splits and returns the separator and the
/// new right sibling for the parent to link.
fn insert_into(node: &mut Node, item: Item) -> Option<(Item, Node)> {
    match node {
        Node::Leaf(items) => {
            let pos = items.partition_point(|x| x.is_before(item.score, &item.member));
            items.insert(pos, item);
            if items.len() <= LEAF_MAX {
                return None;
            }
            // Appending in order (the common case of growing scores) leaves full leaves
            // behind instead of half-empty ones; likewise for prepending.
            let at = if pos + 1 == items.len() {
                LEAF_MAX
            } else if pos == 0 {
                1
            } else {
                items.len() / 2
            };
            let mut right = new_leaf();
            right.extend(items.drain(at..));
            let sep = items.last()?.clone();
            Some((sep, Node::Leaf(right)))
        }
        Node::Inner(inner) => {
            let i = inner.route(item.score, &item.member);
            inner.counts[i] += 1;
            let (sep, right) = insert_into(&mut inner.children[i], item)?;
            let right_count = right.count();
            inner.counts[i] -= right_count;
            inner.children.insert(i + 1, right);
            inner.counts.insert(i + 1, right_count);
            inner.seps.insert(i, sep);
            if inner.children.len() <= INNER_MAX {
                return None;
            }
            let mid = inner.children.len() / 2;
            let children = inner.children.split_off(mid);
            let counts = inner.counts.split_off(mid);
            let mut seps = inner.seps.split_off(mid - 1);
            let up = seps.remove(0);
            Some((
                up,
                Node::Inner(Box::new(Inner {
                    children,
                    counts,
                    seps,
                })),
            ))
        }
    }
}

fn remove_key(node: &mut Node, score: f64, member: &[u8]) -> Option<Item> {
    match node {
        Node::Leaf(items) => {
            let pos = items.partition_point(|x| x.is_before(score, member));
            if items.get(pos)?.is_key(score, member) {
                Some(items.remove(pos))
            } else {
                None
            }
        }
        Node::Inner(inner) => {
            let i = inner.route(score, member);
            let item = remove_key(inner.children.get_mut(i)?, score, member)?;
            inner.counts[i] -= 1;
            inner.rebalance(i);
            Some(item)
        }
    }
}

fn remove_rank(node: &mut Node, rank: usize) -> Option<Item> {
    match node {
        Node::Leaf(items) => (rank < items.len()).then(|| items.remove(rank)),
        Node::Inner(inner) => {
            let (i, r) = inner.child_at(rank);
            let item = remove_rank(inner.children.get_mut(i)?, r)?;
            inner.counts[i] -= 1;
            inner.rebalance(i);
            Some(item)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// Model key: scores are small integers here, so (score as i64, member) orders the same.
    type Model = BTreeMap<(i64, Vec<u8>), ()>;

    fn member(m: u8) -> Vec<u8> {
        vec![b'm', m]
    }

    fn check(tree: &Tree, model: &Model) {
        assert_eq!(tree.len(), model.len());
        let mut all = Vec::new();
        tree.for_range(0, tree.len(), &mut |it: &Item| {
            all.push((it.score as i64, it.member.to_vec()))
        });
        let expected: Vec<_> = model.keys().cloned().collect();
        assert_eq!(all, expected);
        for (rank, (s, m)) in expected.iter().enumerate() {
            assert_eq!(tree.rank(*s as f64, m), Some(rank));
            let got = tree
                .get(rank)
                .map(|it| (it.score as i64, it.member.to_vec()));
            assert_eq!(got.as_ref(), Some(&(*s, m.clone())));
        }
        assert!(tree.get(expected.len()).is_none());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(i64, u8),
        Remove(i64, u8),
        RemoveAt(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0i64..50, any::<u8>()).prop_map(|(s, m)| Op::Insert(s, m)),
            2 => (0i64..50, any::<u8>()).prop_map(|(s, m)| Op::Remove(s, m)),
            1 => (0usize..400).prop_map(Op::RemoveAt),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn matches_btreemap(ops in proptest::collection::vec(op(), 1..1500), probe in 0i64..52) {
            let mut tree = Tree::new();
            let mut model = Model::new();
            for op in ops {
                match op {
                    Op::Insert(s, m) => {
                        if model.insert((s, member(m)), ()).is_none() {
                            tree.insert(Item::new(s as f64, Member::from(&member(m)[..])));
                        }
                    }
                    Op::Remove(s, m) => {
                        let expected = model.remove(&(s, member(m))).is_some();
                        prop_assert_eq!(tree.remove(s as f64, &member(m)).is_some(), expected);
                    }
                    Op::RemoveAt(r) => {
                        let key = model.keys().nth(r).cloned();
                        let got = tree.remove_at(r).map(|it| (it.score as i64, it.member.to_vec()));
                        if let Some(k) = &key {
                            model.remove(k);
                        }
                        prop_assert_eq!(got, key);
                    }
                }
            }
            check(&tree, &model);
            let below = model.keys().filter(|(s, _)| *s < probe).count();
            prop_assert_eq!(tree.count_while(|it| it.score < probe as f64), below);
            let lo = below / 2;
            let hi = below + 7;
            let mut got = Vec::new();
            tree.for_range(lo, hi, &mut |it: &Item| got.push(it.score as i64));
            let expected: Vec<i64> = model.keys().skip(lo).take(hi - lo).map(|k| k.0).collect();
            prop_assert_eq!(got, expected);
        }
    }

    /// Grows a tree three levels deep, then drains most of it in random order, so that inner
    /// nodes merge too.
    #[test]
    fn deep_tree_grows_and_shrinks_like_the_model() {
        let mut next = crate::testing::xorshift(0x9e37_79b9_7f4a_7c15u64);
        let mut tree = Tree::new();
        let mut model = Model::new();
        for _ in 0..12_000 {
            let (s, m) = (next(1000) as i64, member(next(256) as u8));
            if model.insert((s, m.clone()), ()).is_none() {
                tree.insert(Item::new(s as f64, Member::from(&m[..])));
            }
        }
        check(&tree, &model);
        while model.len() > 50 {
            if next(2) == 0 {
                let r = next(model.len() as u64) as usize;
                let key = model.keys().nth(r).cloned();
                let got = tree
                    .remove_at(r)
                    .map(|it| (it.score as i64, it.member.to_vec()));
                assert_eq!(got, key);
                if let Some(k) = key {
                    model.remove(&k);
                }
            } else {
                let (s, m) = (next(1000) as i64, member(next(256) as u8));
                let expected = model.remove(&(s, m.clone())).is_some();
                assert_eq!(tree.remove(s as f64, &m).is_some(), expected);
            }
        }
        check(&tree, &model);
    }

    #[test]
    fn members_share_bytes_and_free_them() {
        let a = Member::from(&b"hello"[..]);
        let b = a.clone();
        assert_eq!(a.refs().load(AtomicOrdering::Relaxed), 2);
        assert_eq!(&*b, b"hello");
        drop(a);
        assert_eq!(b.refs().load(AtomicOrdering::Relaxed), 1);
        assert_eq!(b, Member::from(&b"hello"[..]));
        let empty = Member::from(&b""[..]);
        assert!(empty.is_empty());
        let big = vec![7u8; 100_000];
        assert_eq!(&*Member::from(&big[..]).clone(), &big[..]);
        // Probing a map keyed by members with plain slices.
        let mut map = std::collections::HashMap::new();
        map.insert(b.clone(), 1);
        assert_eq!(map.get(&b"hello"[..]), Some(&1));
        // A saturated count makes clones copy.
        b.refs().store(MAX_REFS, AtomicOrdering::Relaxed);
        let c = b.clone();
        assert_ne!(c.ptr, b.ptr);
        assert_eq!(c.refs().load(AtomicOrdering::Relaxed), 1);
        b.refs().store(2, AtomicOrdering::Relaxed);
        drop(map);
    }

    #[test]
    fn sequential_inserts_fill_leaves_and_deletes_shrink() {
        let mut tree = Tree::new();
        let mut model = Model::new();
        for i in 0..20_000i64 {
            tree.insert(Item::new(i as f64, Member::from(&b"x"[..])));
            model.insert((i, b"x".to_vec()), ());
        }
        check(&tree, &model);
        for i in (0..20_000i64).step_by(3) {
            assert!(tree.remove(i as f64, b"x").is_some());
            model.remove(&(i, b"x".to_vec()));
        }
        check(&tree, &model);
        while tree.remove_at(0).is_some() {}
        assert!(tree.is_empty());
    }
}
