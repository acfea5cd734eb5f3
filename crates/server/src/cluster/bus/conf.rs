//! A bus node's `cluster-config-file` (Redis's nodes.conf): read at start-up into the node's
//! state (who it is, the nodes it knows, their slots, the epochs), rewritten in place on
//! every change and by CLUSTER SAVECONFIG, locked for the life of the process.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;

use super::msg::{flags, Name, NAME_LEN};
use super::state::{Announce, State, SLOTS};

/// Opens (creating) and locks `path`; returns it with its text.
pub fn open_locked(path: &str) -> Result<(File, String), String> {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| format!("cannot open the cluster config file \"{path}\": {e}"))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(format!(
            "the cluster config file \"{path}\" is in use by another running node; give every node a file of its own"
        ));
    }
    let mut text = String::new();
    f.read_to_string(&mut text)
        .map_err(|e| format!("cannot read the cluster config file \"{path}\": {e}"))?;
    Ok((f, text))
}

/// Replaces the file's content with `text`, synced to disk if `sync`.
pub fn rewrite(f: &mut File, text: &str, sync: bool) -> Result<(), String> {
    (|| {
        f.seek(SeekFrom::Start(0))?;
        f.write_all(text.as_bytes())?;
        f.set_len(text.len() as u64)?;
        if sync {
            f.sync_data()?;
        }
        Ok::<(), std::io::Error>(())
    })()
    .map_err(|e| format!("cannot write the cluster config file: {e}"))
}

fn name(word: &str) -> Result<Name, String> {
    let b = word.as_bytes();
    if b.len() != NAME_LEN || !b.iter().all(u8::is_ascii_hexdigit) {
        return Err(format!("not a node id: {word}"));
    }
    let mut n = [0u8; NAME_LEN];
    n.copy_from_slice(b);
    Ok(n)
}

fn parse_flags(words: &str) -> u16 {
    words.split(',').fold(0, |acc, w| {
        acc | match w {
            "myself" => flags::MYSELF,
            "master" => flags::MASTER,
            "slave" => flags::SLAVE,
            "fail?" => flags::PFAIL,
            "fail" => flags::FAIL,
            "handshake" => flags::HANDSHAKE,
            "noaddr" => flags::NOADDR,
            "nofailover" => flags::NOFAILOVER,
            _ => 0,
        }
    })
}

/// The state a file describes; Err says what is wrong with it.
pub fn load(text: &str, announce: Announce, timeout: u64, now: u64) -> Result<State, String> {
    struct Line<'a> {
        name: Name,
        ip: &'a str,
        port: u16,
        cport: u16,
        flags: u16,
        master: Option<Name>,
        epoch: u64,
        slots: Vec<(u16, u16)>,
        /// `[slot->-id]` / `[slot-<-id]`: a slot being moved (importing: true).
        open: Vec<(u16, bool, Name)>,
    }
    let mut lines = Vec::new();
    let (mut current, mut last_vote) = (0u64, 0u64);
    for (n, raw) in text.lines().enumerate() {
        let w: Vec<&str> = raw.split_whitespace().collect();
        let at = |e: String| format!("line {}: {e}", n + 1);
        match w.first() {
            None => continue,
            Some(&"vars") => {
                for pair in w[1..].chunks(2) {
                    let v = pair.get(1).and_then(|v| v.parse().ok());
                    match (pair[0], v) {
                        ("currentEpoch", Some(v)) => current = v,
                        ("lastVoteEpoch", Some(v)) => last_vote = v,
                        _ => {}
                    }
                }
                continue;
            }
            Some(_) if w.len() < 8 => return Err(at("too few fields".into())),
            Some(id) => {
                let id = name(id).map_err(at)?;
                // ip:port@cport[,hostname]
                let addr = w[1].split(',').next().unwrap_or("");
                let (hostport, cport) = addr.split_once('@').unwrap_or((addr, "0"));
                let (ip, port) = hostport.rsplit_once(':').unwrap_or(("", "0"));
                let slots = w[8..]
                    .iter()
                    .filter(|s| !s.starts_with('['))
                    .map(|s| {
                        let (a, b) = s.split_once('-').unwrap_or((s, s));
                        match (a.parse::<u16>(), b.parse::<u16>()) {
                            (Ok(a), Ok(b)) if a <= b && (b as usize) < SLOTS => Ok((a, b)),
                            _ => Err(at(format!("bad slot range {s}"))),
                        }
                    })
                    .collect::<Result<_, _>>()?;
                let open = w[8..]
                    .iter()
                    .filter_map(|s| s.strip_prefix('[')?.strip_suffix(']'))
                    .map(|s| {
                        let (slot, importing, id) = match (s.split_once("->-"), s.split_once("-<-"))
                        {
                            (Some((a, b)), _) => (a, false, b),
                            (_, Some((a, b))) => (a, true, b),
                            _ => return Err(at(format!("bad open slot [{s}]"))),
                        };
                        match slot.parse::<u16>() {
                            Ok(j) if (j as usize) < SLOTS => {
                                Ok((j, importing, name(id).map_err(at)?))
                            }
                            _ => Err(at(format!("bad open slot [{s}]"))),
                        }
                    })
                    .collect::<Result<_, _>>()?;
                lines.push(Line {
                    name: id,
                    ip,
                    port: port.parse().unwrap_or(0),
                    cport: cport.parse().unwrap_or(0),
                    flags: parse_flags(w[2]),
                    master: name(w[3]).ok(),
                    epoch: w[6].parse().map_err(|_| at("bad config epoch".into()))?,
                    slots,
                    open,
                });
            }
        }
    }
    let me = lines
        .iter()
        .find(|l| l.flags & flags::MYSELF != 0)
        .ok_or("no line is flagged myself")?;
    let mut st = State::new(me.name, announce, timeout, now);
    for l in &lines {
        let node = if l.name == st.myself {
            st.nodes.get_mut(&l.name)
        } else {
            let mut n = st.nodes[&st.myself].clone();
            n.name = l.name;
            n.flags = l.flags & !(flags::MYSELF | flags::HANDSHAKE);
            n.ip = l.ip.to_string();
            n.port = l.port;
            n.cport = l.cport;
            n.ctime = now;
            // Reachable until the clock says otherwise.
            n.pong_received = now;
            st.nodes.insert(l.name, n);
            st.nodes.get_mut(&l.name)
        };
        if let Some(n) = node {
            n.config_epoch = l.epoch;
            n.slaveof = l.master;
            if l.name == st.myself && st.announce.ip.is_empty() {
                n.ip = l.ip.to_string();
            }
        }
        for &(a, b) in &l.slots {
            for s in a..=b {
                st.slots.set(s as usize, Some(l.name));
            }
        }
        if l.name == st.myself {
            for &(slot, importing, other) in &l.open {
                let map = if importing {
                    &mut st.importing
                } else {
                    &mut st.migrating
                };
                map.insert(slot, other);
            }
        }
    }
    st.current_epoch = current.max(st.nodes.values().map(|n| n.config_epoch).max().unwrap_or(0));
    st.last_vote_epoch = last_vote;
    st.update_state();
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::bus::snapshot_of;

    #[test]
    fn a_saved_configuration_loads_back() {
        let a = Announce {
            port: 7001,
            cport: 17001,
            pport: 0,
            ip: String::new(),
        };
        let mut st = State::new(super::super::state::random_name(), a.clone(), 1000, 5);
        st.assign(&(0..100).collect::<Vec<_>>(), false).unwrap();
        st.set_config_epoch(3).unwrap();
        assert!(st.meet("127.0.0.1", 7002, 17002, 5));
        let text = snapshot_of(&st, &[]).config_text(0);
        let back = load(&text, a, 1000, 5).unwrap();
        assert_eq!(back.myself, st.myself);
        assert_eq!(back.slots, st.slots);
        assert_eq!(back.current_epoch, 3);
        assert_eq!(back.nodes.len(), 1, "a node in handshake is not saved");
        assert!(load("garbage line\n", st.announce.clone(), 1000, 5).is_err());
        assert!(load("vars currentEpoch 1\n", st.announce.clone(), 1000, 5).is_err());
    }

    #[test]
    fn slots_being_moved_are_saved_and_read_back() {
        let a = Announce {
            port: 7001,
            cport: 17001,
            pport: 0,
            ip: String::new(),
        };
        let (me, other) = ("a".repeat(40), "b".repeat(40));
        let text = format!(
            "{me} 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-10 [5->-{other}] [12-<-{other}]\n\
             {other} 127.0.0.1:7002@17002 master - 0 0 2 connected 11-20\n\
             vars currentEpoch 2 lastVoteEpoch 0\n"
        );
        let st = load(&text, a.clone(), 1000, 5).unwrap();
        assert_eq!(st.migrating.keys().copied().collect::<Vec<_>>(), [5]);
        assert_eq!(st.importing.keys().copied().collect::<Vec<_>>(), [12]);
        let saved = snapshot_of(&st, &[]).config_text(0);
        assert!(
            saved.contains(&format!(" 0-10 [5->-{other}] [12-<-{other}]\n")),
            "{saved}"
        );
        assert!(load(&text.replace("[5->-", "[x->-"), a, 1000, 5).is_err());
    }
}
