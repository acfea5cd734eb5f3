//! Slots being moved between nodes (resharding), as Redis 7.0: CLUSTER SETSLOT's MIGRATING,
//! IMPORTING, STABLE and NODE, with NODE's epoch bump when a node closes an import (so the
//! cluster takes its claim over the old owner's), and the PONG it broadcasts then.

use super::*;

/// What CLUSTER SETSLOT asks of a slot.
#[derive(Debug, Clone, PartialEq)]
pub enum SetSlot {
    Migrating(Vec<u8>),
    Importing(Vec<u8>),
    Stable,
    /// The new owner, and how many keys of the slot this node holds.
    Node(Vec<u8>, u64),
}

impl State {
    /// The node named `id`, if known.
    fn known(&self, id: &[u8]) -> Option<Name> {
        <Name>::try_from(id)
            .ok()
            .filter(|n| self.nodes.contains_key(n))
    }

    /// Whether `name` is a replica.
    fn is_replica(&self, name: &Name) -> bool {
        self.nodes.get(name).is_some_and(|n| n.is(flags::SLAVE))
    }

    /// CLUSTER SETSLOT.
    pub fn set_slot(&mut self, slot: u16, action: SetSlot, now: u64) -> Result<(), String> {
        if self.me_is(flags::SLAVE) {
            return Err("ERR Please use SETSLOT only with masters.".into());
        }
        let j = slot as usize;
        let mine = self.slots.get(j) == Some(self.myself);
        let shown = |id: &[u8]| String::from_utf8_lossy(id).into_owned();
        match action {
            SetSlot::Migrating(id) => {
                if !mine {
                    return Err(format!("ERR I'm not the owner of hash slot {slot}"));
                }
                let n = self
                    .known(&id)
                    .ok_or_else(|| format!("ERR I don't know about node {}", shown(&id)))?;
                if self.is_replica(&n) {
                    return Err("ERR Target node is not a master".into());
                }
                self.migrating.insert(slot, n);
            }
            SetSlot::Importing(id) => {
                if mine {
                    return Err(format!("ERR I'm already the owner of hash slot {slot}"));
                }
                let n = self
                    .known(&id)
                    .ok_or_else(|| format!("ERR I don't know about node {}", shown(&id)))?;
                if self.is_replica(&n) {
                    return Err("ERR Target node is not a master".into());
                }
                self.importing.insert(slot, n);
            }
            SetSlot::Stable => {
                self.importing.remove(&slot);
                self.migrating.remove(&slot);
            }
            SetSlot::Node(id, keys) => {
                let n = self
                    .known(&id)
                    .ok_or_else(|| format!("ERR Unknown node {}", shown(&id)))?;
                if self.is_replica(&n) {
                    return Err("ERR Target node is not a master".into());
                }
                if mine && n != self.myself && keys != 0 {
                    return Err(format!("ERR Can't assign hashslot {slot} to a different node while I still hold keys for this hash slot."));
                }
                if keys == 0 {
                    self.migrating.remove(&slot);
                }
                self.slots.set(j, Some(n));
                self.not_claiming[j] = false;
                if n == self.myself && self.importing.remove(&slot).is_some() {
                    // A slot moved by hand: a new epoch makes this node's claim win.
                    let (bumped, _) = self.bump_epoch();
                    if bumped {
                        tracing::warn!("configEpoch updated after importing slot {slot}");
                    }
                    self.broadcast_pong(None, now);
                }
            }
        }
        self.touch();
        self.update_state();
        Ok(())
    }

    /// Forgets every slot's migration or import from or to `name` (a node removed).
    pub(super) fn close_slots_of(&mut self, name: &Name) {
        self.migrating.retain(|_, n| n != name);
        self.importing.retain(|_, n| n != name);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::create;
    use super::*;

    #[test]
    fn a_slot_moves_and_the_cluster_follows_the_importer() {
        let mut net = create(3);
        let (a, b) = (net.nodes[0].myself, net.nodes[1].myself);
        let now = net.now;
        // Slot 0 is node 0's.
        assert_eq!(
            net.nodes[1].set_slot(0, SetSlot::Migrating(a.to_vec()), now),
            Err("ERR I'm not the owner of hash slot 0".into())
        );
        assert_eq!(
            net.nodes[0].set_slot(0, SetSlot::Importing(b.to_vec()), now),
            Err("ERR I'm already the owner of hash slot 0".into())
        );
        assert_eq!(
            net.nodes[0].set_slot(0, SetSlot::Migrating(b"nobody".to_vec()), now),
            Err("ERR I don't know about node nobody".into())
        );
        net.nodes[1]
            .set_slot(0, SetSlot::Importing(a.to_vec()), now)
            .unwrap();
        net.nodes[0]
            .set_slot(0, SetSlot::Migrating(b.to_vec()), now)
            .unwrap();
        assert_eq!(
            net.nodes[0].set_slot(0, SetSlot::Node(b.to_vec(), 3), now),
            Err("ERR Can't assign hashslot 0 to a different node while I still hold keys for this hash slot.".into())
        );
        let before = net.nodes[1].nodes[&b].config_epoch;
        net.nodes[1]
            .set_slot(0, SetSlot::Node(b.to_vec(), 0), now)
            .unwrap();
        assert!(net.nodes[1].importing.is_empty(), "the import is closed");
        assert!(net.nodes[1].nodes[&b].config_epoch > before, "epoch bumped");
        net.settle();
        net.tick(1000);
        // The old owner and the third node learn the new owner from the importer's epoch.
        for s in &net.nodes {
            assert_eq!(s.slots[0], Some(b), "{}", name_str(&s.myself));
        }
        // The source closes its side.
        net.nodes[0]
            .set_slot(0, SetSlot::Node(b.to_vec(), 0), now)
            .unwrap();
        assert!(net.nodes[0].migrating.is_empty());
        net.nodes[0]
            .set_slot(5, SetSlot::Migrating(b.to_vec()), now)
            .unwrap();
        net.nodes[0].set_slot(5, SetSlot::Stable, now).unwrap();
        assert!(net.nodes[0].migrating.is_empty());
    }
}
