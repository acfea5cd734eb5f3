//! One node's slot table: every slot's owner, with what each owner serves kept beside it
//! (how many slots, and their bitmap as a message carries it). Counting the masters with
//! slots, a node's slots and its bitmap then cost no walk over the 16384 slots, and a
//! slot's change (SETSLOT, a gossiped claim) costs O(1) instead of one such walk per
//! question asked of the table afterwards.

use std::collections::HashMap;

use super::super::msg::{self, Name, Slots};
use super::SLOTS;

#[derive(Clone, Debug, PartialEq)]
struct Served {
    count: usize,
    bits: Box<Slots>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SlotTable {
    owner: Vec<Option<Name>>,
    /// Every node owning at least one slot; its entry goes with its last slot.
    served: HashMap<Name, Served>,
}

impl Default for SlotTable {
    fn default() -> Self {
        SlotTable {
            owner: vec![None; SLOTS],
            served: HashMap::new(),
        }
    }
}

impl std::ops::Index<usize> for SlotTable {
    type Output = Option<Name>;

    fn index(&self, slot: usize) -> &Option<Name> {
        &self.owner[slot]
    }
}

impl SlotTable {
    /// Slot `slot`'s owner (None too for a slot past the table).
    pub fn get(&self, slot: usize) -> Option<Name> {
        self.owner.get(slot).copied().flatten()
    }

    /// Gives slot `slot` to `to` (None: unassigned); a slot past the table is ignored.
    pub fn set(&mut self, slot: usize, to: Option<Name>) {
        let Some(cell) = self.owner.get_mut(slot) else {
            return;
        };
        let from = std::mem::replace(cell, to);
        if from == to {
            return;
        }
        if let Some(from) = from {
            if let Some(s) = self.served.get_mut(&from) {
                s.count -= 1;
                s.bits[slot / 8] &= !(1 << (slot & 7));
                if s.count == 0 {
                    self.served.remove(&from);
                }
            }
        }
        if let Some(to) = to {
            let s = self.served.entry(to).or_insert_with(|| Served {
                count: 0,
                bits: Box::new([0; msg::SLOT_BYTES]),
            });
            s.count += 1;
            msg::set_slot(&mut s.bits, slot);
        }
    }

    /// Unassigns every slot of `name`: a walk over its bitmap, not the table.
    pub fn clear(&mut self, name: &Name) {
        let Some(s) = self.served.remove(name) else {
            return;
        };
        for (byte, &bits) in s.bits.iter().enumerate() {
            for bit in 0..8 {
                if bits & (1 << bit) != 0 {
                    if let Some(cell) = self.owner.get_mut(byte * 8 + bit) {
                        *cell = None;
                    }
                }
            }
        }
    }

    /// How many slots `name` serves.
    pub fn count(&self, name: &Name) -> usize {
        self.served.get(name).map_or(0, |s| s.count)
    }

    /// The bitmap of `name`'s slots.
    pub fn bitmap(&self, name: &Name) -> Box<Slots> {
        self.served
            .get(name)
            .map_or_else(|| Box::new([0; msg::SLOT_BYTES]), |s| s.bits.clone())
    }

    /// Whether `name`'s slots are exactly those of `bits` (a 2 KB comparison).
    pub fn same_as(&self, name: &Name, bits: &Slots) -> bool {
        match self.served.get(name) {
            Some(s) => *s.bits == *bits,
            None => bits.iter().all(|&b| b == 0),
        }
    }

    /// The nodes serving at least one slot.
    pub fn owners(&self) -> impl Iterator<Item = &Name> {
        self.served.keys()
    }

    /// How many nodes serve at least one slot.
    pub fn owner_count(&self) -> usize {
        self.served.len()
    }

    /// Whether every slot has an owner.
    pub fn all_assigned(&self) -> bool {
        self.served.values().map(|s| s.count).sum::<usize>() == SLOTS
    }

    /// Every slot's owner, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = &Option<Name>> {
        self.owner.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the table says, recomputed the slow way from the owners alone.
    fn check(t: &SlotTable) {
        let mut names: Vec<Name> = t.iter().flatten().copied().collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(t.owners().count(), names.len());
        assert_eq!(t.owner_count(), names.len());
        for n in &names {
            let mut bits = Box::new([0u8; msg::SLOT_BYTES]);
            let mut count = 0;
            for (j, o) in t.iter().enumerate() {
                if o.as_ref() == Some(n) {
                    msg::set_slot(&mut bits, j);
                    count += 1;
                }
            }
            assert_eq!(t.count(n), count);
            assert_eq!(t.bitmap(n), bits);
            assert!(t.same_as(n, &bits));
        }
        assert_eq!(t.all_assigned(), t.iter().all(Option::is_some));
    }

    #[test]
    fn keeps_counts_and_bitmaps_with_the_owners() {
        let (a, b) = ([b'a'; 40], [b'b'; 40]);
        let mut t = SlotTable::default();
        check(&t);
        assert!(t.same_as(&a, &[0; msg::SLOT_BYTES]));
        for j in 0..SLOTS {
            t.set(j, Some(if j < 100 { a } else { b }));
        }
        check(&t);
        assert!(t.all_assigned());
        t.set(5, Some(b));
        t.set(5, Some(b));
        t.set(SLOTS - 1, None);
        t.set(SLOTS, Some(a)); // past the table: ignored
        check(&t);
        assert_eq!(t.count(&a), 99);
        assert!(!t.all_assigned());
        t.clear(&a);
        check(&t);
        assert_eq!(t.get(0), None);
        assert_eq!(t.get(5), Some(b));
        assert_eq!(t[5], Some(b));
        t.clear(&b);
        check(&t);
        assert_eq!(t.owners().count(), 0);
    }
}
