//! The cluster configuration file (`cluster-config-file`, nodes.conf) and the node lines of
//! CLUSTER NODES, which share Redis's layout:
//!
//! `<id> <ip>:<port>@<bus-port> <flags> <primary> <ping-sent> <pong-received> <config-epoch>
//! <link-state> <slot-range>...`, then a `vars currentEpoch <n> lastVoteEpoch <n>` line.
//!
//! The file keeps the node ids across restarts: at start-up each shard takes the id of the
//! line whose slots start where the shard's range starts (the same `shards` gives every
//! shard its old id back); a shard with no such line gets a new random id. The file is then
//! written again and locked for the life of the process, so that two servers never share it.

use std::io::Write;
use std::os::fd::AsRawFd;

use super::{slot_range, NodeAddr};
use crate::config::Config;

/// Node `shard`'s line: its id, address, flags, epochs, link and slots, as Redis writes a
/// node of its own cluster. `myself` flags the node the reader is connected to; `pong_ms` is
/// the last pong received (0 for myself): every node of the process is up.
pub fn line(
    id: &str,
    addr: &NodeAddr,
    shard: usize,
    shards: usize,
    myself: bool,
    pong_ms: u64,
) -> String {
    let (first, last) = slot_range(shard, shards);
    let flags = if myself { "myself,master" } else { "master" };
    let pong = if myself { 0 } else { pong_ms };
    format!(
        "{id} {}:{}@{} {flags} - 0 {pong} {} connected {first}-{last}",
        addr.ip,
        addr.port,
        addr.bus_port,
        config_epoch(shard)
    )
}

/// Node `shard`'s config epoch: distinct for every node, as `redis-cli --cluster create`
/// leaves them.
pub fn config_epoch(shard: usize) -> u64 {
    shard as u64 + 1
}

/// The cluster's current epoch: the highest config epoch.
pub fn current_epoch(shards: usize) -> u64 {
    shards as u64
}

/// At start-up: the node ids from `cluster-config-file` (new ones for shards it does not
/// name), written back and locked.
pub fn load_or_create(config: &Config, shards: usize) -> Result<Vec<String>, String> {
    let path = config.get("cluster-config-file").to_string();
    let old = match std::fs::read_to_string(&path) {
        Ok(text) => parse(&text).map_err(|e| {
            format!("Unrecoverable error: corrupted cluster config file \"{path}\": {e}")
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(format!(
                "cannot read the cluster config file \"{path}\": {e}"
            ))
        }
    };
    let ids: Vec<String> = (0..shards)
        .map(|shard| {
            let first = slot_range(shard, shards).0;
            old.iter()
                .find(|(_, start)| *start == Some(first))
                .map(|(id, _)| id.clone())
                .unwrap_or_else(crate::replica::random_id)
        })
        .collect();
    let mut text = String::new();
    for (shard, id) in ids.iter().enumerate() {
        let addr = NodeAddr::of(config, shard, "");
        text.push_str(&line(id, &addr, shard, shards, shard == 0, 0));
        text.push('\n');
    }
    text.push_str(&format!(
        "vars currentEpoch {} lastVoteEpoch 0\n",
        current_epoch(shards)
    ));
    write_locked(&path, &text)?;
    Ok(ids)
}

/// Each node line's id and the first slot it serves, if any.
pub fn parse(text: &str) -> Result<Vec<(String, Option<u16>)>, String> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let words: Vec<&str> = raw.split_whitespace().collect();
        match words.first() {
            None => continue,
            Some(&"vars") => continue,
            Some(id) => {
                if words.len() < 8 {
                    return Err(format!("line {}: too few fields", n + 1));
                }
                if id.len() != 40 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(format!("line {}: not a node id: {id}", n + 1));
                }
                // Slots: `start-end` or a single slot; `[...]` entries are migrations.
                let first = words[8..]
                    .iter()
                    .find(|w| !w.starts_with('['))
                    .and_then(|w| w.split('-').next())
                    .and_then(|s| s.parse().ok());
                out.push((id.to_ascii_lowercase(), first));
            }
        }
    }
    Ok(out)
}

/// Writes `text` to `path` through a temporary file renamed over it (a crash leaves the
/// old file or the new one), then holds an exclusive lock on it until the process ends.
fn write_locked(path: &str, text: &str) -> Result<(), String> {
    let tmp = format!("{path}.tmp-{}", std::process::id());
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!(
            "cannot write the cluster config file \"{path}\": {e}"
        ));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .open(&tmp)
        .map_err(|e| format!("cannot open the cluster config file \"{path}\": {e}"))?;
    // Locked before it takes the name, so no other server can lock the new file first.
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("cannot lock the cluster config file \"{path}\""));
    }
    if let Ok(current) = std::fs::File::open(path) {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(current.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let _ = std::fs::remove_file(&tmp);
            return Err(format!(
                "the cluster config file \"{path}\" is in use by another running node; give every node a file of its own"
            ));
        }
    }
    std::fs::rename(&tmp, path)
        .map_err(|e| format!("cannot write the cluster config file \"{path}\": {e}"))?;
    // The lock lives as long as the descriptor: for the rest of the process.
    std::mem::forget(file);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reads_ids_and_first_slots() {
        let text = "07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004 myself,master - 0 0 1 connected 0-5460 [5461->-e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca]\n\
                    e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca :0@0 master - 0 1426238316232 2 connected 5461\n\
                    67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 master - 0 0 2 connected\n\
                    vars currentEpoch 2 lastVoteEpoch 0\n";
        let got = parse(text).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].1, Some(0));
        assert_eq!(got[1].1, Some(5461));
        assert_eq!(got[2].1, None);
        assert!(parse("nonsense line\n").is_err());
        assert!(parse("abc 1 2 3 4 5 6 7\n").is_err());
    }
}
