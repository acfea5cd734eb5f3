//! Access control as Redis 7.0: users with passwords (stored as SHA-256 digests, compared in
//! constant time), selectors of command, key and channel permissions, the ACL LOG, the ACL
//! file and `user` configuration lines.
//!
//! Every core holds its own copy of the users (no shared map). A change (ACL SETUSER, DELUSER,
//! LOAD, `requirepass`) is decided on core 0 and sent from there to every core, so all cores
//! apply changes in the same order; the command that made it answers once every core has it.
//! Clients keep a reference to their core's copy of their user, so a change applies to them
//! at their next command.
//!
//! This module is the rules and the data; `cmd::acl` is the commands and the check every
//! command passes.

pub mod commands;
pub mod file;
pub mod log;
pub mod user;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

pub use user::{Denial, KeyAccess, User};

/// A core's handle on one of its users.
pub type UserRef = Rc<RefCell<User>>;

/// A change to the users, decided on core 0 and applied by every core in the same order.
#[derive(Clone)]
pub enum Change {
    /// Creates or replaces a user.
    Set(User),
    /// Removes these users (never the default user).
    Delete(Vec<Vec<u8>>),
    /// Replaces every user (ACL LOAD); the default user is updated in place.
    Replace(Vec<User>),
}

/// What a change did to existing users, for the core to act on its clients.
#[derive(Default)]
pub struct Applied {
    /// Users that no longer exist: their clients are disconnected.
    pub removed: Vec<UserRef>,
    /// A user whose channel permissions shrank: its Pub/Sub clients subscribed to a channel
    /// no longer allowed are disconnected.
    pub channels_narrowed: Option<UserRef>,
}

/// One core's users (and, on core 0, the ACL log).
pub struct Acl {
    users: BTreeMap<Vec<u8>, UserRef>,
    default: UserRef,
    /// `acl-pubsub-default allchannels`: new users may use every channel.
    pub all_channels_default: bool,
    pub log: log::Log,
}

impl Acl {
    /// The users a core starts with: `users` as loaded at start-up (see [`load`]), or the
    /// default user alone.
    pub fn new(users: &[User], all_channels_default: bool) -> Acl {
        let default = Rc::new(RefCell::new(User::default_user(all_channels_default)));
        let mut acl = Acl {
            users: BTreeMap::from([(b"default".to_vec(), default.clone())]),
            default,
            all_channels_default,
            log: log::Log::default(),
        };
        acl.replace(users.to_vec());
        acl
    }

    pub fn get(&self, name: &[u8]) -> Option<&UserRef> {
        self.users.get(name)
    }

    pub fn default_user(&self) -> &UserRef {
        &self.default
    }

    /// Users in name order.
    pub fn users(&self) -> impl Iterator<Item = &UserRef> {
        self.users.values()
    }

    /// Whether clients must authenticate: the default user has a password or is off.
    pub fn auth_required(&self) -> bool {
        let d = self.default.borrow();
        !d.nopass || !d.enabled
    }

    /// Whether a new connection starts authenticated (as the default user).
    pub fn starts_authenticated(&self) -> bool {
        !self.auth_required()
    }

    /// The user `name` if it exists, is on and `password` is one of its own.
    pub fn authenticate(&self, name: &[u8], password: &[u8]) -> Option<UserRef> {
        let user = self.users.get(name)?;
        let ok = {
            let u = user.borrow();
            u.enabled && u.password_matches(password)
        };
        ok.then(|| user.clone())
    }

    /// Applies a change.
    pub fn apply(&mut self, change: Change) -> Applied {
        match change {
            Change::Set(user) => {
                let name = user.name.clone();
                match self.users.get(&name) {
                    Some(existing) => {
                        let narrowed = narrows_channels(&existing.borrow(), &user);
                        *existing.borrow_mut() = user;
                        Applied {
                            removed: Vec::new(),
                            channels_narrowed: narrowed.then(|| existing.clone()),
                        }
                    }
                    None => {
                        self.users.insert(name, Rc::new(RefCell::new(user)));
                        Applied::default()
                    }
                }
            }
            Change::Delete(names) => Applied {
                removed: names
                    .iter()
                    .filter(|n| n.as_slice() != b"default")
                    .filter_map(|n| self.users.remove(n))
                    .collect(),
                channels_narrowed: None,
            },
            Change::Replace(users) => Applied {
                removed: self.replace(users),
                channels_narrowed: None,
            },
        }
    }

    /// Replaces every user; the default user keeps its identity (clients hold it) and takes
    /// the new rules, or a fresh default's if `users` has none. Returns the users dropped.
    fn replace(&mut self, users: Vec<User>) -> Vec<UserRef> {
        let old = std::mem::take(&mut self.users);
        let mut new_default = User::default_user(self.all_channels_default);
        for u in users {
            if u.name == b"default" {
                new_default = u;
            } else {
                let name = u.name.clone();
                self.users.insert(name, Rc::new(RefCell::new(u)));
            }
        }
        *self.default.borrow_mut() = new_default;
        self.users.insert(b"default".to_vec(), self.default.clone());
        old.into_iter()
            .filter(|(name, _)| name.as_slice() != b"default")
            .map(|(_, u)| u)
            .collect()
    }

    /// Every user, copied (to build a change from).
    pub fn snapshot(&self) -> Vec<User> {
        self.users.values().map(|u| u.borrow().clone()).collect()
    }
}

/// Whether `new` allows fewer channels than `old` (Redis then checks the user's subscribers).
fn narrows_channels(old: &User, new: &User) -> bool {
    let Some(upcoming) = new.channel_patterns() else {
        return false;
    };
    match old.channel_patterns() {
        None => true,
        Some(before) => before.iter().any(|p| !upcoming.contains(p)),
    }
}

/// The users to start with, from the configuration: the default user with `requirepass`,
/// then the `user` lines, then the ACL file. Redis refuses to use both of the last two.
pub fn load(
    requirepass: &str,
    user_lines: &[Vec<Vec<u8>>],
    aclfile: &str,
    all_channels_default: bool,
) -> Result<Vec<User>, String> {
    let mut default = User::default_user(all_channels_default);
    if !requirepass.is_empty() {
        set_requirepass(&mut default, requirepass.as_bytes(), all_channels_default);
    }
    if !aclfile.is_empty() && !user_lines.is_empty() {
        return Err("Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is invalid. This setup is very likely to lead to configuration errors and security holes, please define either an ACL file or declare users directly in your redis.conf, but not both.".into());
    }
    let mut users = vec![default];
    for line in user_lines {
        let u = file::user_from_config(line, all_channels_default)?;
        if !u.enabled {
            tracing::info!(
                "The user '{}' is disabled (there is no 'on' modifier in the user description). Make sure this is not a configuration error.",
                String::from_utf8_lossy(&u.name)
            );
        }
        match users.iter_mut().find(|x| x.name == u.name) {
            Some(slot) => *slot = u,
            None => users.push(u),
        }
    }
    if !aclfile.is_empty() {
        let text = std::fs::read(aclfile)
            .map_err(|e| format!("Error loading ACLs, opening file '{aclfile}': {e}"))?;
        let from_file = file::parse(aclfile, &text, all_channels_default)
            .map_err(|e| format!("Aborting Redis startup because of ACL errors: {e}"))?;
        // As in Redis, a file without the default user leaves a fresh one (requirepass
        // included: the file is the whole truth).
        users = from_file;
    }
    Ok(users)
}

/// `requirepass`: the default user's only password, or none (`nopass`) when empty.
pub fn set_requirepass(user: &mut User, password: &[u8], all_channels_default: bool) {
    let _ = user.apply(b"resetpass", all_channels_default);
    if password.is_empty() {
        let _ = user.apply(b"nopass", all_channels_default);
    } else {
        let mut op = b">".to_vec();
        op.extend_from_slice(password);
        let _ = user.apply(&op, all_channels_default);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_keep_the_default_user_identity() {
        let mut acl = Acl::new(&[], false);
        assert!(!acl.auth_required());
        let default = acl.default_user().clone();
        let mut d = User::default_user(false);
        set_requirepass(&mut d, b"pw", false);
        acl.apply(Change::Set(d));
        assert!(Rc::ptr_eq(&default, acl.default_user()));
        assert!(acl.auth_required());
        assert!(acl.authenticate(b"default", b"pw").is_some());
        assert!(acl.authenticate(b"default", b"nope").is_none());

        let mut bob = User::new(b"bob", false);
        bob.apply(b"on", false).ok();
        bob.apply(b"nopass", false).ok();
        acl.apply(Change::Set(bob));
        let bob_ref = acl.authenticate(b"bob", b"x").expect("bob");
        let applied = acl.apply(Change::Replace(Vec::new()));
        assert_eq!(applied.removed.len(), 1);
        assert!(Rc::ptr_eq(&applied.removed[0], &bob_ref));
        assert!(Rc::ptr_eq(&default, acl.default_user()));
        assert!(!acl.auth_required(), "a file without default resets it");
    }

    #[test]
    fn narrowing_channels_is_noticed() {
        let mut acl = Acl::new(&[], false);
        let mut u = User::new(b"u", false);
        u.apply(b"&a", false).ok();
        u.apply(b"&b", false).ok();
        acl.apply(Change::Set(u.clone()));
        let mut wider = u.clone();
        wider.apply(b"&c", false).ok();
        assert!(acl.apply(Change::Set(wider)).channels_narrowed.is_none());
        let mut narrower = User::new(b"u", false);
        narrower.apply(b"&a", false).ok();
        assert!(acl.apply(Change::Set(narrower)).channels_narrowed.is_some());
    }

    #[test]
    fn startup_users_from_requirepass_lines_and_files() {
        let users = load("pw", &[], "", false).expect("ok");
        assert!(users[0].password_matches(b"pw") && !users[0].nopass);
        let line = |s: &str| s.split(' ').map(|w| w.as_bytes().to_vec()).collect();
        let users = load("", &[line("bob on nopass +@all")], "", false).expect("ok");
        assert_eq!(users.len(), 2);
        assert!(load("", &[line("bob on")], "/nonexistent", false).is_err());
    }
}
