//! Freeing large values in steps: UNLINK, FLUSHDB/FLUSHALL ASYNC, and DEL, expiry and eviction
//! when `lazyfree-lazy-user-del`, `lazyfree-lazy-expire` and `lazyfree-lazy-eviction` say so.
//!
//! Redis hands such values to a background thread. A shard owns its core and frees them
//! itself, a bounded amount of work at a time (the runtime calls [`LazyFree::step`] between
//! event-loop passes until the queue is empty), so freeing a set of ten million members never
//! stalls the shard for more than a step. The key is gone at once; only its memory lingers.
//! As in Redis, a value whose freeing is cheap (at most 64 elements or nodes) is freed on the
//! spot, which is faster than queueing it.

use std::collections::VecDeque;

use crate::db::Db;
use crate::value::Value;

/// Values with at most this much free effort are freed at once (Redis's `LAZYFREE_THRESHOLD`).
pub const THRESHOLD: usize = 64;

/// True if freeing `value` is worth doing in steps.
pub fn is_large(value: &Value) -> bool {
    value.free_effort() > THRESHOLD
}

/// Something being freed.
enum Item {
    Value(Value),
    Db(Box<Db>),
}

struct Doomed {
    item: Item,
    /// The memory it held when queued (an estimate) and the work it took then, so that the
    /// memory still held can be estimated as the work goes.
    bytes: usize,
    effort: usize,
    /// Objects it counts for in `lazyfree_pending_objects` (keys, for a database).
    objects: usize,
}

impl Doomed {
    fn remaining_effort(&self) -> usize {
        match &self.item {
            Item::Value(v) => v.free_effort(),
            Item::Db(db) => db.len(),
        }
    }

    /// The memory still held, in proportion to the work left.
    fn remaining_bytes(&self) -> usize {
        let left = self.remaining_effort().min(self.effort);
        if self.effort == 0 {
            return 0;
        }
        (self.bytes as u128 * left as u128 / self.effort as u128) as usize
    }
}

/// A shard's queue of values being freed.
#[derive(Default)]
pub struct LazyFree {
    queue: VecDeque<Doomed>,
    pending_objects: usize,
    /// Objects freed in steps so far (INFO `lazyfreed_objects`).
    pub freed_objects: u64,
}

impl LazyFree {
    /// Frees `value` now if it is small or `lazy` is off, else queues it. `bytes` estimates
    /// the memory it holds (only used when queued).
    pub fn free(&mut self, value: Value, lazy: bool, bytes: impl FnOnce(&Value) -> usize) {
        if lazy && is_large(&value) {
            let effort = value.free_effort();
            let bytes = bytes(&value);
            self.push(Item::Value(value), bytes, effort, 1);
        }
    }

    /// Queues a whole database (FLUSHDB / FLUSHALL ASYNC); `bytes` estimates its memory.
    pub fn free_db(&mut self, db: Db, bytes: usize) {
        let keys = db.len();
        if keys == 0 && db.doomed.is_empty() {
            return;
        }
        let mut db = Box::new(db);
        for v in std::mem::take(&mut db.doomed) {
            self.free(v, true, |_| 0);
        }
        self.push(Item::Db(db), bytes, keys, keys);
    }

    fn push(&mut self, item: Item, bytes: usize, effort: usize, objects: usize) {
        self.pending_objects += objects;
        self.queue.push_back(Doomed {
            item,
            bytes,
            effort,
            objects,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Objects queued and not yet freed (INFO `lazyfree_pending_objects`).
    pub fn pending_objects(&self) -> usize {
        self.pending_objects
    }

    /// An estimate of the memory the queue still holds: eviction does not count it, since
    /// it is about to be given back.
    pub fn pending_bytes(&self) -> usize {
        self.queue.iter().map(Doomed::remaining_bytes).sum()
    }

    /// Frees up to about `budget` units of work (elements, nodes, keys); returns the work
    /// done. Large values met inside a database being freed join the queue.
    pub fn step(&mut self, budget: usize) -> usize {
        let mut done = 0;
        while done < budget {
            let Some(head) = self.queue.front_mut() else {
                break;
            };
            let left = budget - done;
            let mut large = Vec::new();
            let (work, finished) = match &mut head.item {
                Item::Value(v) => {
                    let work = v.shed(left);
                    (work, v.is_shed())
                }
                Item::Db(db) => {
                    let work = db.shed(left, &mut |v| large.push(v));
                    (work, db.is_empty())
                }
            };
            // Always progress, even on an item that reports no work.
            done += work.max(1);
            if finished {
                if let Some(d) = self.queue.pop_front() {
                    self.pending_objects = self.pending_objects.saturating_sub(d.objects);
                    self.freed_objects += d.objects as u64;
                }
            }
            for v in large {
                let effort = v.free_effort();
                self.push(Item::Value(v), 0, effort, 0);
            }
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::t_set::SetValue;

    fn big_set(n: usize) -> Value {
        let members: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
        Value::Set(SetValue::from_members(&members, 0))
    }

    #[test]
    fn small_values_are_freed_at_once_large_ones_in_steps() {
        let mut lf = LazyFree::default();
        lf.free(Value::Str(crate::value::Str::new(b"x")), true, |_| 1);
        lf.free(big_set(64), true, |_| 1);
        assert!(lf.is_empty());
        lf.free(big_set(10_000), false, |_| 1);
        assert!(lf.is_empty());
        lf.free(big_set(10_000), true, |_| 1_000_000);
        assert_eq!(lf.pending_objects(), 1);
        assert_eq!(lf.pending_bytes(), 1_000_000);
        let mut steps = 0;
        while !lf.is_empty() {
            let done = lf.step(1000);
            assert!(done <= 1000 + 8, "a step stays near its budget: {done}");
            steps += 1;
            if steps == 5 {
                let left = lf.pending_bytes();
                assert!(left < 600_000 && left > 400_000, "{left}");
            }
        }
        assert!((10..=11).contains(&steps), "{steps}");
        assert_eq!(lf.pending_objects(), 0);
        assert_eq!(lf.freed_objects, 1);
        assert_eq!(lf.pending_bytes(), 0);
    }

    #[test]
    fn a_database_is_freed_key_by_key_and_its_large_values_in_steps() {
        let mut db = Db::new();
        for i in 0..500 {
            db.set(format!("k{i}").as_bytes(), big_set(3), 0, false);
        }
        db.set(b"big", big_set(5000), 0, false);
        let mut lf = LazyFree::default();
        lf.free_db(db, 1);
        assert_eq!(lf.pending_objects(), 501);
        let mut steps = 0;
        while !lf.is_empty() {
            assert!(lf.step(100) <= 100 + 8);
            steps += 1;
            assert!(steps < 1000);
        }
        assert!(steps >= 55, "{steps}");
        assert_eq!(lf.freed_objects, 501);
        assert_eq!(lf.pending_objects(), 0);
    }

    #[test]
    fn every_type_sheds_to_nothing() {
        use crate::t_hash::HashValue;
        use crate::t_list::ListValue;
        // Compressed middle nodes shed as packed ones do.
        let options = crate::t_list::ListOptions {
            fill: 128,
            compress_depth: 1,
        };
        let list = ListValue::from_values((0..100_000).map(|i| format!("e{i}")), options);
        let mut values = vec![Value::List(list), big_set(5000)];
        let mut h = HashValue::new();
        let limits = crate::t_hash::ListpackLimits {
            max_entries: 0,
            max_value: 0,
        };
        for i in 0..5000 {
            h.set(format!("f{i}").as_bytes(), b"v", limits);
        }
        values.push(Value::Hash(h));
        let mut z = crate::t_zset::ZSetValue::new();
        let zlimits = crate::t_zset::Limits {
            max_entries: 0,
            max_value: 0,
        };
        for i in 0..5000 {
            z.insert(format!("m{i}").as_bytes(), i as f64, zlimits);
        }
        values.push(Value::ZSet(z));
        for mut v in values {
            let effort = v.free_effort();
            assert!(effort > THRESHOLD, "{}", v.type_name());
            let mut total = 0;
            while !v.is_shed() {
                total += v.shed(97);
            }
            assert!(total >= effort, "{}: {total} < {effort}", v.type_name());
        }
    }

    #[test]
    fn unlink_and_flushall_async_free_in_steps() {
        use crate::testing::{int, ok, TestShard};
        let mut t = TestShard::new();
        let members: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
        let mut sadd = vec!["sadd", "s"];
        sadd.extend(members.iter().map(String::as_str));
        t.run(&sadd);
        t.run(&["set", "x", "1"]);
        assert_eq!(t.run(&["unlink", "s", "x", "nosuch"]), int(2));
        assert_eq!(t.shard.db_len(0), 0);
        assert_eq!(t.shard.lazyfree.pending_objects(), 1);
        while t.shard.lazyfree_step(100) {}
        assert_eq!(t.shard.lazyfree.freed_objects, 1);
        // DEL frees at once unless lazyfree-lazy-user-del.
        t.run(&sadd);
        t.run(&["del", "s"]);
        assert!(!t.shard.lazyfree_pending());
        t.shard.config.lazyfree_lazy_user_del = true;
        t.run(&sadd);
        t.run(&["del", "s"]);
        assert!(t.shard.lazyfree_pending());
        while t.shard.lazyfree_step(100) {}
        for i in 0..300 {
            t.run(&["set", &format!("k{i}"), "v"]);
        }
        assert_eq!(t.run(&["flushall", "async"]), ok());
        assert_eq!(t.run(&["dbsize"]), int(0));
        assert_eq!(t.shard.lazyfree.pending_objects(), 300);
        let mut steps = 0;
        while t.shard.lazyfree_step(50) {
            steps += 1;
        }
        assert!(steps >= 5, "{steps}");
        assert_eq!(t.shard.lazyfree.pending_objects(), 0);
    }

    #[test]
    fn lazy_expire_queues_large_expired_values() {
        use crate::testing::TestShard;
        let mut t = TestShard::new();
        let mut config = t.shard.config.clone();
        config.lazyfree_lazy_expire = true;
        t.shard.set_config(config);
        let members: Vec<String> = (0..500).map(|i| format!("m{i}")).collect();
        let mut sadd = vec!["sadd", "s"];
        sadd.extend(members.iter().map(String::as_str));
        t.run(&sadd);
        t.run(&["pexpire", "s", "10"]);
        t.advance(20);
        assert_eq!(t.run(&["exists", "s"]), crate::testing::int(0));
        assert!(t.shard.lazyfree_pending());
        while t.shard.lazyfree_step(100) {}
        assert_eq!(t.shard.lazyfree.freed_objects, 1);
    }
}
