//! The commands ACL rules can name: every Redis 7.0 command and subcommand, implemented here or
//! not (a user file written for Redis loads unchanged, and ACL LIST describes a user exactly as
//! Redis would), each with its ACL categories. A command's id is its place in the engine's list
//! of facts, the same id the command table gives it, so a permission check is one bit test.

use std::collections::HashMap;
use std::sync::LazyLock;

use shardis_engine::command::{all_facts, categories_of, ACL_CATEGORIES};
use shardis_engine::REGISTRY;

/// Words of a command bitmap: room for every known command.
const WORDS: usize = 8;

/// One bit per command id.
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct Bits([u64; WORDS]);

impl Bits {
    pub const ALL: Bits = Bits([u64::MAX; WORDS]);

    pub fn get(&self, id: usize) -> bool {
        self.0
            .get(id / 64)
            .is_some_and(|w| w & (1u64 << (id % 64)) != 0)
    }

    pub fn set(&mut self, id: usize, on: bool) {
        if let Some(w) = self.0.get_mut(id / 64) {
            if on {
                *w |= 1u64 << (id % 64);
            } else {
                *w &= !(1u64 << (id % 64));
            }
        }
    }
}

/// One known command.
pub struct Known {
    /// Full name: `get`, `client|list`.
    pub name: String,
    /// Bit `i` set when the command is in `ACL_CATEGORIES[i]`.
    pub categories: u32,
    /// Runs before authentication and needs no permission (AUTH, HELLO…).
    pub no_auth: bool,
    /// The container of a subcommand.
    pub parent: Option<usize>,
    /// The subcommands of a container, in name order.
    pub children: Vec<usize>,
    /// Implemented by this server (ACL CAT lists only these, as COMMAND does).
    pub implemented: bool,
}

/// Every known command, by id.
pub struct Universe {
    pub commands: Vec<Known>,
    /// Top-level commands in name order (the order rules are described in).
    pub top: Vec<usize>,
    by_name: HashMap<String, usize>,
}

pub static UNIVERSE: LazyLock<Universe> = LazyLock::new(Universe::build);

/// The bit of a category name (case-insensitive), if it is one.
pub fn category(name: &[u8]) -> Option<u32> {
    ACL_CATEGORIES
        .iter()
        .position(|c| c.as_bytes().eq_ignore_ascii_case(name))
        .map(|i| 1u32 << i)
}

impl Universe {
    fn build() -> Universe {
        let facts = all_facts();
        let mut by_name = HashMap::new();
        let mut commands: Vec<Known> = facts
            .iter()
            .enumerate()
            .map(|(id, f)| {
                let name = match f.container {
                    Some(c) => format!("{c}|{}", f.name),
                    None => f.name.to_string(),
                };
                by_name.insert(name.clone(), id);
                let categories = categories_of(f)
                    .iter()
                    .fold(0u32, |bits, c| bits | category(c.as_bytes()).unwrap_or(0));
                Known {
                    implemented: REGISTRY.get(name.as_bytes()).is_some(),
                    name,
                    categories,
                    no_auth: f.flags.contains(&"no_auth"),
                    parent: None,
                    children: Vec::new(),
                }
            })
            .collect();
        for (id, f) in facts.iter().enumerate() {
            if let Some(parent) = f.container.and_then(|c| by_name.get(c).copied()) {
                commands[id].parent = Some(parent);
                commands[parent].children.push(id);
            }
        }
        let mut top: Vec<usize> = (0..commands.len())
            .filter(|&id| commands[id].parent.is_none())
            .collect();
        top.sort_by(|a, b| commands[*a].name.cmp(&commands[*b].name));
        for id in 0..commands.len() {
            let mut children = std::mem::take(&mut commands[id].children);
            children.sort_by(|a, b| commands[*a].name.cmp(&commands[*b].name));
            commands[id].children = children;
        }
        Universe {
            commands,
            top,
            by_name,
        }
    }

    /// The command with this full name (`get`, `config|get`), case-insensitive.
    pub fn lookup(&self, name: &[u8]) -> Option<usize> {
        let lower = std::str::from_utf8(name).ok()?.to_ascii_lowercase();
        self.by_name.get(&lower).copied()
    }

    pub fn get(&self, id: usize) -> Option<&Known> {
        self.commands.get(id)
    }

    /// Every command in description order: each top-level command followed by its
    /// subcommands.
    pub fn in_order(&self) -> impl Iterator<Item = usize> + '_ {
        self.top.iter().flat_map(move |&id| {
            std::iter::once(id).chain(
                self.commands
                    .get(id)
                    .map(|c| c.children.clone())
                    .unwrap_or_default(),
            )
        })
    }

    /// The ids in category `bit`, in description order.
    pub fn in_category(&self, bit: u32) -> impl Iterator<Item = usize> + '_ {
        self.in_order()
            .filter(move |&id| self.commands[id].categories & bit != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_a_bit_and_the_table_agrees_on_ids() {
        assert!(UNIVERSE.commands.len() < WORDS * 64);
        for cmd in REGISTRY.commands() {
            assert_eq!(UNIVERSE.lookup(cmd.name.as_bytes()), Some(cmd.id));
            for sub in &cmd.subcommands {
                assert_eq!(UNIVERSE.lookup(sub.name.as_bytes()), Some(sub.id));
                assert_eq!(UNIVERSE.commands[sub.id].parent, Some(cmd.id));
            }
        }
    }

    #[test]
    fn categories_include_the_implied_ones() {
        let get = UNIVERSE.lookup(b"GET").expect("get");
        let bits = UNIVERSE.commands[get].categories;
        for c in ["read", "string", "fast"] {
            assert_ne!(bits & category(c.as_bytes()).expect(c), 0, "{c}");
        }
        assert_eq!(bits & category(b"slow").expect("slow"), 0);
        let flushall = UNIVERSE.lookup(b"flushall").expect("flushall");
        assert_ne!(
            UNIVERSE.commands[flushall].categories & category(b"dangerous").expect("d"),
            0
        );
        assert!(UNIVERSE.commands[UNIVERSE.lookup(b"auth").expect("auth")].no_auth);
        assert!(category(b"nosuch").is_none());
    }
}
