//! ACL LOG: the security log of denied commands, keys, channels and failed authentications.
//! One log for the whole server, kept by core 0 (every core sends its entries there), with
//! Redis's grouping: a denial like one of the ten most recent entries (same reason, context,
//! object and user, within a minute) bumps that entry's count instead of adding one.

use std::collections::VecDeque;

/// Entries this close in time (ms) may be grouped.
const GROUPING_WINDOW_MS: u64 = 60_000;
/// How many recent entries a new denial is compared with.
const GROUPING_SCAN: usize = 10;

/// What was denied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Command,
    Key,
    Channel,
    Auth,
}

impl Reason {
    pub fn name(self) -> &'static str {
        match self {
            Reason::Command => "command",
            Reason::Key => "key",
            Reason::Channel => "channel",
            Reason::Auth => "auth",
        }
    }
}

/// Where the denied command was: sent by the client, queued in MULTI, or run by a script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    TopLevel,
    Multi,
    Lua,
}

impl Context {
    pub fn name(self) -> &'static str {
        match self {
            Context::TopLevel => "toplevel",
            Context::Multi => "multi",
            Context::Lua => "lua",
        }
    }
}

/// One log entry.
#[derive(Clone, Debug)]
pub struct Entry {
    pub count: u64,
    pub reason: Reason,
    pub context: Context,
    /// The command's full name, the key, the channel, or the AUTH command as typed.
    pub object: Vec<u8>,
    pub username: Vec<u8>,
    /// Wall-clock ms of the last occurrence.
    pub ctime_ms: u64,
    /// The client as CLIENT LIST describes it (the last one, when grouped).
    pub client_info: String,
}

impl Entry {
    fn groups_with(&self, other: &Entry) -> bool {
        self.reason == other.reason
            && self.context == other.context
            && self.ctime_ms.abs_diff(other.ctime_ms) <= GROUPING_WINDOW_MS
            && self.object == other.object
            && self.username == other.username
    }
}

/// The log, newest first.
#[derive(Default)]
pub struct Log {
    entries: VecDeque<Entry>,
}

impl Log {
    /// Records a denial, keeping at most `max_len` entries.
    pub fn add(&mut self, entry: Entry, max_len: usize) {
        let scan = self.entries.len().min(GROUPING_SCAN);
        if let Some(i) = (0..scan).find(|&i| self.entries[i].groups_with(&entry)) {
            if let Some(mut found) = self.entries.remove(i) {
                found.count += 1;
                found.ctime_ms = entry.ctime_ms;
                found.client_info = entry.client_info;
                self.entries.push_front(found);
            }
            return;
        }
        self.entries.push_front(entry);
        self.entries.truncate(max_len);
    }

    pub fn reset(&mut self) {
        self.entries.clear();
    }

    /// The newest `count` entries.
    pub fn newest(&self, count: usize) -> impl Iterator<Item = &Entry> {
        self.entries.iter().take(count)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(object: &str, at: u64) -> Entry {
        Entry {
            count: 1,
            reason: Reason::Key,
            context: Context::TopLevel,
            object: object.as_bytes().to_vec(),
            username: b"u".to_vec(),
            ctime_ms: at,
            client_info: format!("at {at}"),
        }
    }

    #[test]
    fn similar_denials_group_and_the_log_is_bounded() {
        let mut log = Log::default();
        log.add(entry("a", 0), 3);
        log.add(entry("b", 10), 3);
        log.add(entry("a", 20), 3);
        assert_eq!(log.len(), 2);
        let first = log.newest(1).next().expect("entry");
        assert_eq!((first.object.as_slice(), first.count), (&b"a"[..], 2));
        assert_eq!(first.client_info, "at 20");
        // Past the grouping window: a new entry.
        log.add(entry("a", 20 + GROUPING_WINDOW_MS + 1), 3);
        assert_eq!(log.len(), 3);
        log.add(entry("c", 100_000), 3);
        assert_eq!(log.len(), 3);
        log.reset();
        assert!(log.is_empty());
    }
}
