//! ACL rules from clients (ACL SETUSER, one rule per argument) and from files (the ACL file,
//! `user` lines of the configuration): no rule may panic, and what ACL LIST / ACL SAVE write
//! for a user must load back (through the ACL file parser) into a user described the same
//! way, as a save then load in Redis keeps every permission.
//!
//! Input layout: the first byte picks the mode; the rest is either rules separated by NUL
//! bytes, applied to a new user, or the text of an ACL file.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shardis_server::acl::file;
use shardis_server::acl::{KeyAccess, User};

fn exercise(u: &User) {
    for key in [&b"k"[..], b"", b"user:1", b"\xff*"] {
        for (read, write) in [(true, false), (false, true), (true, true)] {
            let _ = u.allows_key(key, KeyAccess { read, write });
        }
        let _ = u.allows_channel(key, false);
        let _ = u.allows_channel(key, true);
    }
    let _ = u.password_matches(b"p");
    let _ = u.channel_patterns();
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let all_channels = mode & 2 != 0;
    if mode & 1 == 0 {
        let mut user = User::new(b"u", all_channels);
        for rule in rest.split(|&b| b == 0).take(32) {
            let _ = user.apply(rule, all_channels);
        }
        exercise(&user);
        let described = user.describe();
        let mut line = b"user u ".to_vec();
        line.extend_from_slice(&described);
        match file::parse("fuzz.acl", &line, all_channels) {
            Ok(users) => {
                assert_eq!(users.len(), 1);
                assert_eq!(
                    String::from_utf8_lossy(&users[0].describe()),
                    String::from_utf8_lossy(&described),
                    "a saved user loads back different"
                );
            }
            Err(e) => panic!(
                "ACL LIST's line does not load: {:?}: {e}",
                String::from_utf8_lossy(&line)
            ),
        }
    } else if let Ok(users) = file::parse("fuzz.acl", rest, all_channels) {
        for u in &users {
            exercise(u);
            let _ = u.describe();
        }
    }
});
