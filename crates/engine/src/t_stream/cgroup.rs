//! Consumer groups: where a group stands in the stream, its consumers, and its pending entries
//! list (PEL: entries delivered to a consumer and not yet acknowledged).
//!
//! The group's PEL maps each pending ID to its delivery record, which names the consumer that
//! owns it; each consumer keeps the set of IDs it owns, so both "the group's pending entries"
//! and "this consumer's" are ordered walks. The two are kept in step by every change here.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::id::StreamId;

/// A pending entry's delivery record.
#[derive(Debug, Clone)]
pub struct Nack {
    /// Unix time of the last delivery, in milliseconds.
    pub delivery_time: i64,
    pub delivery_count: u64,
    /// The consumer that owns the entry.
    pub consumer: Bytes,
}

#[derive(Debug, Clone, Default)]
pub struct Consumer {
    /// Unix time the consumer was last active, in milliseconds.
    pub seen_time: i64,
    /// The IDs it owns in the group's PEL.
    pub pel: BTreeSet<StreamId>,
}

#[derive(Debug, Clone)]
pub struct ConsumerGroup {
    /// The last ID delivered to the group.
    pub last_id: StreamId,
    /// Entries the group has read, counting from the first ever added (None when unknown).
    pub entries_read: Option<i64>,
    pub pel: BTreeMap<StreamId, Nack>,
    pub consumers: BTreeMap<Bytes, Consumer>,
}

/// How a claim changes a pending entry's delivery count.
#[derive(Debug, Clone, Copy)]
pub enum DeliveryCount {
    Keep,
    Increment,
    Set(u64),
}

impl ConsumerGroup {
    pub fn new(last_id: StreamId, entries_read: Option<i64>) -> ConsumerGroup {
        ConsumerGroup {
            last_id,
            entries_read,
            pel: BTreeMap::new(),
            consumers: BTreeMap::new(),
        }
    }

    /// Creates the consumer `name`; false if it exists.
    pub fn create_consumer(&mut self, name: &[u8], now: i64) -> bool {
        if self.consumers.contains_key(name) {
            return false;
        }
        self.consumers.insert(
            Bytes::copy_from_slice(name),
            Consumer {
                seen_time: now,
                pel: BTreeSet::new(),
            },
        );
        true
    }

    /// Marks the consumer `name` active now, creating it if needed; true if it was created.
    pub fn touch_consumer(&mut self, name: &[u8], now: i64) -> bool {
        match self.consumers.get_mut(name) {
            Some(c) => {
                c.seen_time = now;
                false
            }
            None => self.create_consumer(name, now),
        }
    }

    /// The stored name of the consumer `name` (shared by its pending entries).
    fn consumer_name(&self, name: &[u8]) -> Bytes {
        self.consumers
            .get_key_value(name)
            .map_or_else(|| Bytes::copy_from_slice(name), |(k, _)| k.clone())
    }

    /// Deletes the consumer `name` and its pending entries; returns how many it had.
    pub fn delete_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let consumer = self.consumers.remove(name)?;
        for id in &consumer.pel {
            self.pel.remove(id);
        }
        Some(consumer.pel.len())
    }

    /// Removes the pending entry `id` from the group and its owner; true if it was pending.
    pub fn remove_pending(&mut self, id: StreamId) -> bool {
        let Some(nack) = self.pel.remove(&id) else {
            return false;
        };
        if let Some(owner) = self.consumers.get_mut(&nack.consumer) {
            owner.pel.remove(&id);
        }
        true
    }

    /// Moves the pending entry `id` to `consumer` (creating the record if absent).
    fn assign(&mut self, id: StreamId, consumer: &[u8], delivery_time: i64, count: DeliveryCount) {
        let name = self.consumer_name(consumer);
        let nack = self.pel.entry(id).or_insert_with(|| Nack {
            delivery_time,
            delivery_count: 0,
            consumer: name.clone(),
        });
        nack.delivery_time = delivery_time;
        nack.delivery_count = match count {
            DeliveryCount::Keep => nack.delivery_count,
            DeliveryCount::Increment => nack.delivery_count.wrapping_add(1),
            DeliveryCount::Set(n) => n,
        };
        let previous = std::mem::replace(&mut nack.consumer, name);
        if previous != consumer {
            if let Some(old) = self.consumers.get_mut(&previous) {
                old.pel.remove(&id);
            }
        }
        if let Some(owner) = self.consumers.get_mut(consumer) {
            owner.pel.insert(id);
        }
    }

    /// XREADGROUP delivered `id` to `consumer`: it is pending for it, delivered once, now
    /// (an entry already pending for another consumer moves, as after XGROUP SETID).
    pub fn deliver(&mut self, id: StreamId, consumer: &[u8], now: i64) {
        self.assign(id, consumer, now, DeliveryCount::Set(1));
    }

    /// XCLAIM / XAUTOCLAIM gave `id` to `consumer`.
    pub fn claim(
        &mut self,
        id: StreamId,
        consumer: &[u8],
        delivery_time: i64,
        count: DeliveryCount,
    ) {
        self.assign(id, consumer, delivery_time, count);
    }

    /// Approximate bytes allocated by the group.
    pub fn allocated_bytes(&self) -> usize {
        let nack = std::mem::size_of::<(StreamId, Nack)>();
        let owned = std::mem::size_of::<StreamId>();
        std::mem::size_of::<ConsumerGroup>()
            + self.pel.len() * (nack + owned)
            + self
                .consumers
                .keys()
                .map(|k| k.len() + std::mem::size_of::<(Bytes, Consumer)>())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64) -> StreamId {
        StreamId::new(ms, 0)
    }

    fn owned(g: &ConsumerGroup, name: &str) -> Vec<StreamId> {
        g.consumers[name.as_bytes()].pel.iter().copied().collect()
    }

    #[test]
    fn delivery_and_claims_keep_both_lists_in_step() {
        let mut g = ConsumerGroup::new(StreamId::MIN, None);
        assert!(g.touch_consumer(b"alice", 10));
        assert!(!g.touch_consumer(b"alice", 11));
        assert_eq!(g.consumers[&b"alice"[..]].seen_time, 11);
        g.deliver(id(1), b"alice", 11);
        g.deliver(id(2), b"alice", 11);
        g.create_consumer(b"bob", 12);
        g.claim(id(1), b"bob", 20, DeliveryCount::Increment);
        assert_eq!(owned(&g, "alice"), vec![id(2)]);
        assert_eq!(owned(&g, "bob"), vec![id(1)]);
        assert_eq!(
            (g.pel[&id(1)].delivery_count, g.pel[&id(1)].delivery_time),
            (2, 20)
        );
        // Delivered again (XGROUP SETID rewound the group): back to one delivery.
        g.deliver(id(1), b"alice", 30);
        assert_eq!(owned(&g, "alice"), vec![id(1), id(2)]);
        assert!(owned(&g, "bob").is_empty());
        assert_eq!(g.pel[&id(1)].delivery_count, 1);
        assert!(g.remove_pending(id(2)));
        assert!(!g.remove_pending(id(2)));
        assert_eq!(g.delete_consumer(b"alice"), Some(1));
        assert!(g.pel.is_empty());
        assert_eq!(g.delete_consumer(b"alice"), None);
    }
}
