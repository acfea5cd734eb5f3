//! Consumer groups: where a group stands in the stream, its consumers, and its pending entries
//! list (PEL: entries delivered to a consumer and not yet acknowledged).
//!
//! The group's PEL maps each pending ID to its delivery record, which names the consumer that
//! owns it by slot number (4 bytes, where a name would cost a 32-byte handle per pending
//! entry); each consumer keeps the set of IDs it owns, so both "the group's pending entries"
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
    /// The slot of the consumer that owns the entry.
    owner: u32,
}

#[derive(Debug, Clone)]
pub struct Consumer {
    pub name: Bytes,
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
    /// Consumers by slot; a deleted consumer's slot is reused.
    slots: Vec<Option<Consumer>>,
    /// Slots of deleted consumers.
    free: Vec<u32>,
    /// Slot of each consumer, in name order (the order Redis lists them in).
    by_name: BTreeMap<Bytes, u32>,
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
            slots: Vec::new(),
            free: Vec::new(),
            by_name: BTreeMap::new(),
        }
    }

    /// The consumers, in name order.
    pub fn consumers(&self) -> impl Iterator<Item = &Consumer> {
        self.by_name
            .values()
            .filter_map(|&slot| self.slots.get(slot as usize)?.as_ref())
    }

    pub fn consumer_count(&self) -> usize {
        self.by_name.len()
    }

    pub fn consumer(&self, name: &[u8]) -> Option<&Consumer> {
        let &slot = self.by_name.get(name)?;
        self.slots.get(slot as usize)?.as_ref()
    }

    fn slot_mut(&mut self, slot: u32) -> Option<&mut Consumer> {
        self.slots.get_mut(slot as usize)?.as_mut()
    }

    /// The name of the consumer that owns a pending entry.
    pub fn owner(&self, nack: &Nack) -> Bytes {
        self.slots
            .get(nack.owner as usize)
            .and_then(Option::as_ref)
            .map_or_else(Bytes::new, |c| c.name.clone())
    }

    /// Creates the consumer `name`; false if it exists.
    pub fn create_consumer(&mut self, name: &[u8], now: i64) -> bool {
        if self.by_name.contains_key(name) {
            return false;
        }
        let consumer = Consumer {
            name: Bytes::copy_from_slice(name),
            seen_time: now,
            pel: BTreeSet::new(),
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                if let Some(free) = self.slots.get_mut(slot as usize) {
                    *free = Some(consumer);
                }
                slot
            }
            None => {
                self.slots.push(Some(consumer));
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.by_name.insert(Bytes::copy_from_slice(name), slot);
        true
    }

    /// Marks the consumer `name` active now, creating it if needed; true if it was created.
    pub fn touch_consumer(&mut self, name: &[u8], now: i64) -> bool {
        match self.by_name.get(name).copied() {
            Some(slot) => {
                if let Some(c) = self.slot_mut(slot) {
                    c.seen_time = now;
                }
                false
            }
            None => self.create_consumer(name, now),
        }
    }

    /// Deletes the consumer `name` and its pending entries; returns how many it had.
    pub fn delete_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let slot = self.by_name.remove(name)?;
        let consumer = self.slots.get_mut(slot as usize)?.take()?;
        self.free.push(slot);
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
        if let Some(owner) = self.slot_mut(nack.owner) {
            owner.pel.remove(&id);
        }
        true
    }

    /// Moves the pending entry `id` to the existing consumer `consumer` (creating the record
    /// if absent).
    fn assign(&mut self, id: StreamId, consumer: &[u8], delivery_time: i64, count: DeliveryCount) {
        let Some(&slot) = self.by_name.get(consumer) else {
            return;
        };
        let nack = self.pel.entry(id).or_insert(Nack {
            delivery_time,
            delivery_count: 0,
            owner: slot,
        });
        nack.delivery_time = delivery_time;
        nack.delivery_count = match count {
            DeliveryCount::Keep => nack.delivery_count,
            DeliveryCount::Increment => nack.delivery_count.wrapping_add(1),
            DeliveryCount::Set(n) => n,
        };
        let previous = std::mem::replace(&mut nack.owner, slot);
        if previous != slot {
            if let Some(old) = self.slot_mut(previous) {
                old.pel.remove(&id);
            }
        }
        if let Some(owner) = self.slot_mut(slot) {
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
                .consumers()
                .map(|c| 2 * c.name.len() + std::mem::size_of::<(Bytes, u32, Option<Consumer>)>())
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
        g.consumer(name.as_bytes())
            .expect("consumer")
            .pel
            .iter()
            .copied()
            .collect()
    }

    #[test]
    fn delivery_and_claims_keep_both_lists_in_step() {
        let mut g = ConsumerGroup::new(StreamId::MIN, None);
        assert!(g.touch_consumer(b"alice", 10));
        assert!(!g.touch_consumer(b"alice", 11));
        assert_eq!(g.consumer(b"alice").map(|c| c.seen_time), Some(11));
        g.deliver(id(1), b"alice", 11);
        g.deliver(id(2), b"alice", 11);
        g.create_consumer(b"bob", 12);
        g.claim(id(1), b"bob", 20, DeliveryCount::Increment);
        assert_eq!(owned(&g, "alice"), vec![id(2)]);
        assert_eq!(owned(&g, "bob"), vec![id(1)]);
        assert_eq!(g.owner(&g.pel[&id(1)]), Bytes::from_static(b"bob"));
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
        // The freed slot is reused, consumers stay in name order.
        g.create_consumer(b"aaron", 40);
        let names: Vec<_> = g.consumers().map(|c| c.name.clone()).collect();
        assert_eq!(
            names,
            vec![Bytes::from_static(b"aaron"), Bytes::from_static(b"bob")]
        );
        assert_eq!(g.consumer_count(), 2);
    }
}
