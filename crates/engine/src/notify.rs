//! Keyspace notifications (`notify-keyspace-events`): the event classes, their letters, and
//! the events commands report as they change keys (Redis's `notifyKeyspaceEvent`).
//!
//! A command reports an event with [`crate::shard::Ctx::notify`]; when its class is enabled
//! the shard keeps it in [`crate::shard::Shard::events`], and the runtime publishes it on
//! `__keyspace@<db>__:<key>` and `__keyevent@<db>__:<event>` after the command.

use bytes::Bytes;

/// `K`: publish on `__keyspace@<db>__:<key>`.
pub const KEYSPACE: u32 = 1 << 0;
/// `E`: publish on `__keyevent@<db>__:<event>`.
pub const KEYEVENT: u32 = 1 << 1;
/// `g`: generic commands (DEL, EXPIRE, RENAME…).
pub const GENERIC: u32 = 1 << 2;
/// `$`: string commands.
pub const STRING: u32 = 1 << 3;
/// `l`: list commands.
pub const LIST: u32 = 1 << 4;
/// `s`: set commands.
pub const SET: u32 = 1 << 5;
/// `h`: hash commands.
pub const HASH: u32 = 1 << 6;
/// `z`: sorted set commands.
pub const ZSET: u32 = 1 << 7;
/// `x`: a key expired.
pub const EXPIRED: u32 = 1 << 8;
/// `e`: a key was evicted.
pub const EVICTED: u32 = 1 << 9;
/// `t`: stream commands.
pub const STREAM: u32 = 1 << 10;
/// `m`: a key was looked up and missing (not part of `A`).
pub const KEY_MISS: u32 = 1 << 11;
/// `d`: module key types (none exist here; accepted as Redis accepts it).
pub const MODULE: u32 = 1 << 13;
/// `n`: a key was created (not part of `A`).
pub const NEW: u32 = 1 << 14;
/// `A`: every class but `m` and `n`.
pub const ALL: u32 =
    GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;
/// Not a letter: set by the runtime while client-side caching (CLIENT TRACKING) watches this
/// shard's keys, so that keys expired or evicted are reported whatever the published classes
/// are (their cached copies must be invalidated, as Redis's `signalModifiedKey` does). The
/// runtime publishes only what the configured letters enable.
pub const TRACKING: u32 = 1 << 16;

/// One event a command reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub class: u32,
    pub name: &'static str,
    pub db: usize,
    pub key: Bytes,
}

/// Parses a `notify-keyspace-events` value; None for a letter Redis does not know.
pub fn parse_flags(text: &str) -> Option<u32> {
    let mut flags = 0;
    for c in text.chars() {
        flags |= match c {
            'A' => ALL,
            'g' => GENERIC,
            '$' => STRING,
            'l' => LIST,
            's' => SET,
            'h' => HASH,
            'z' => ZSET,
            'x' => EXPIRED,
            'e' => EVICTED,
            'K' => KEYSPACE,
            'E' => KEYEVENT,
            't' => STREAM,
            'm' => KEY_MISS,
            'd' => MODULE,
            'n' => NEW,
            _ => return None,
        };
    }
    Some(flags)
}

/// The canonical letters of `flags`, as CONFIG GET shows them.
pub fn flags_to_string(flags: u32) -> String {
    let mut out = String::new();
    if flags & ALL == ALL {
        out.push('A');
    } else {
        for (bit, c) in [
            (GENERIC, 'g'),
            (STRING, '$'),
            (LIST, 'l'),
            (SET, 's'),
            (HASH, 'h'),
            (ZSET, 'z'),
            (EXPIRED, 'x'),
            (EVICTED, 'e'),
            (STREAM, 't'),
            (MODULE, 'd'),
            (NEW, 'n'),
        ] {
            if flags & bit != 0 {
                out.push(c);
            }
        }
    }
    for (bit, c) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
        if flags & bit != 0 {
            out.push(c);
        }
    }
    out
}

/// Whether `flags` keep events of `class` at all: a class needs K or E to be published, and
/// expired and evicted keys are also kept for client-side caching ([`TRACKING`]).
#[inline]
pub fn enabled(flags: u32, class: u32) -> bool {
    flags & class != 0 && flags & (KEYSPACE | KEYEVENT) != 0
        || flags & TRACKING != 0 && class & (EXPIRED | EVICTED) != 0
}

/// Appends an event to `events` when `flags` enable its class: the one place every report
/// goes through, so that with notifications off an event costs a flag check (inlined at each
/// call; the append is not).
#[inline]
pub fn record(
    events: &mut Vec<Event>,
    flags: u32,
    class: u32,
    name: &'static str,
    db: usize,
    key: &[u8],
) {
    if enabled(flags, class) {
        append(events, class, name, db, key);
    }
}

/// The slow half of [`record`]: keeps the event.
#[inline(never)]
fn append(events: &mut Vec<Event>, class: u32, name: &'static str, db: usize, key: &[u8]) {
    events.push(Event {
        class,
        name,
        db,
        key: Bytes::copy_from_slice(key),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::Ctx;
    use crate::testing::TestShard;

    #[test]
    fn flags_round_trip_as_redis_prints_them() {
        assert_eq!(
            parse_flags("KEA").map(flags_to_string).as_deref(),
            Some("AKE")
        );
        assert_eq!(
            parse_flags("El$").map(flags_to_string).as_deref(),
            Some("$lE")
        );
        assert_eq!(parse_flags("").map(flags_to_string).as_deref(), Some(""));
        assert_eq!(
            parse_flags("Kmn").map(flags_to_string).as_deref(),
            Some("nKm")
        );
        assert_eq!(parse_flags("KQ"), None);
        let all = parse_flags("A").unwrap_or(0);
        assert!(enabled(all | KEYSPACE, LIST));
        assert!(!enabled(all, LIST), "without K or E nothing is published");
        assert!(!enabled(parse_flags("KA").unwrap_or(0), KEY_MISS));
    }

    #[test]
    fn nothing_is_kept_with_notifications_off_or_without_k_and_e() {
        let mut t = TestShard::new();
        t.run(&["set", "k", "v"]);
        t.run(&["get", "missing"]);
        t.run(&["del", "k"]);
        assert!(t.shard.events.is_empty());
        t.shard.notify_flags = ALL | NEW | KEY_MISS;
        t.run(&["set", "k", "v"]);
        t.run(&["get", "missing"]);
        assert!(t.shard.events.is_empty(), "no K nor E: nowhere to publish");
    }

    #[test]
    fn classes_are_masked() {
        let mut t = TestShard::new();
        t.shard.notify_flags = KEYEVENT | KEY_MISS;
        t.run(&["set", "k", "v"]);
        assert_eq!(t.events_of(&["get", "missing"]), ["m keymiss 0:missing"]);
        t.shard.notify_flags = KEYSPACE | NEW;
        assert_eq!(t.events_of(&["set", "new", "v"]), ["n new 0:new"]);
        assert_eq!(t.events_of(&["get", "missing"]), Vec::<String>::new());
    }

    #[test]
    fn read_lookups_that_miss_report_keymiss_write_lookups_and_object_do_not() {
        let mut t = TestShard::new();
        t.notify_all();
        for cmd in [
            &["get", "nokey"][..],
            &["exists", "nokey"],
            &["type", "nokey"],
            &["ttl", "nokey"],
            &["strlen", "nokey"],
            &["touch", "nokey"],
        ] {
            assert_eq!(t.events_of(cmd), ["m keymiss 0:nokey"], "{cmd:?}");
        }
        assert_eq!(
            t.events_of(&["mget", "a", "b"]),
            ["m keymiss 0:a", "m keymiss 0:b"]
        );
        for cmd in [
            &["object", "encoding", "nokey"][..],
            &["lpop", "nokey"],
            &["persist", "nokey"],
            &["expire", "nokey", "10"],
        ] {
            assert_eq!(t.events_of(cmd), Vec::<String>::new(), "{cmd:?}");
        }
        let misses = t.shard.stats.keyspace_misses;
        t.run(&["object", "encoding", "nokey"]);
        assert_eq!(
            t.shard.stats.keyspace_misses,
            misses + 1,
            "OBJECT still counts"
        );
    }

    #[test]
    fn lazy_expiry_reports_expired_before_what_the_command_reports() {
        let mut t = TestShard::new();
        t.notify_all();
        t.run(&["set", "k", "v", "px", "100"]);
        t.advance(100);
        assert_eq!(
            t.events_of(&["get", "k"]),
            ["x expired 0:k", "m keymiss 0:k"]
        );
        t.run(&["rpush", "l", "a"]);
        t.run(&["pexpire", "l", "100"]);
        t.advance(100);
        assert_eq!(t.events_of(&["lpop", "l"]), ["x expired 0:l"]);
        t.run(&["set", "k", "v", "px", "100"]);
        t.advance(100);
        assert_eq!(
            t.events_of(&["exists", "k"]),
            ["x expired 0:k", "m keymiss 0:k"]
        );
        // A key written over an expired one is new, whether or not expired events are kept.
        for flags in [ALL | NEW | KEYSPACE, NEW | KEYEVENT] {
            t.shard.notify_flags = flags;
            t.run(&["set", "k", "v", "px", "100"]);
            t.advance(100);
            let expected = if flags & EXPIRED != 0 {
                vec!["x expired 0:k", "n new 0:k", "$ set 0:k"]
            } else {
                vec!["n new 0:k"]
            };
            assert_eq!(t.events_of(&["set", "k", "w"]), expected);
        }
    }

    #[test]
    fn tracking_keeps_expired_keys_and_nothing_else() {
        let mut t = TestShard::new();
        t.shard.notify_flags = TRACKING;
        t.run(&["set", "k", "v", "px", "100"]);
        t.run(&["set", "j", "v", "px", "100"]);
        t.advance(100);
        // Met lazily, with no class published: kept for the runtime to invalidate.
        assert_eq!(t.events_of(&["get", "k"]), ["x expired 0:k"]);
        let now = t.now_ms;
        assert_eq!(t.shard.active_expire(now, 16), 1);
        assert_eq!(t.events(), ["x expired 0:j"]);
        assert_eq!(t.events_of(&["set", "k", "v"]), Vec::<String>::new());
        // With published classes too, those are kept as before.
        t.shard.notify_flags = TRACKING | KEYSPACE | STRING;
        assert_eq!(t.events_of(&["set", "k", "w"]), ["$ set 0:k"]);
    }

    #[test]
    fn keys_met_expired_by_randomkey_scan_and_active_expiry_are_reported() {
        let mut t = TestShard::new();
        t.notify_all();
        t.run(&["set", "gone", "v", "px", "100"]);
        t.db = 3;
        t.run(&["set", "gone3", "v", "px", "100"]);
        t.db = 0;
        t.advance(100);
        t.events();
        let now = t.now_ms;
        assert_eq!(t.shard.active_expire(now, 16), 2);
        let mut events = t.events();
        events.sort();
        assert_eq!(events, ["x expired 0:gone", "x expired 3:gone3"]);

        t.run(&["set", "gone", "v", "px", "100"]);
        t.advance(100);
        t.events();
        let mut ctx = Ctx::new(&mut t.shard, 0, now + 200, false);
        assert_eq!(crate::t_server::random_key(&mut ctx), None);
        assert_eq!(t.events(), ["x expired 0:gone"]);

        t.run(&["set", "gone", "v", "px", "100"]);
        t.advance(100);
        t.events();
        let opts = crate::scan::ScanOptions::default();
        let mut ctx = Ctx::new(&mut t.shard, 0, now + 300, false);
        assert_eq!(
            crate::t_server::scan_step(&mut ctx, 0, &opts).1,
            Vec::<Bytes>::new()
        );
        assert_eq!(t.events(), ["x expired 0:gone"]);
    }
}
