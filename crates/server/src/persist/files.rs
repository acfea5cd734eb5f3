//! Where snapshots live in `dir` (the process's working directory, as in Redis): one RDB file
//! per shard, `<dbfilename>.<generation>.<shard>-of-<shards>`, and the manifest
//! `<dbfilename>.manifest` naming the files of the current set. A new set is written under
//! new names, synced, and only then named by a new manifest (written to a temporary name,
//! synced, renamed over the old one, the directory synced): a crash at any point leaves the
//! previous set whole and named.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// The current set of snapshot files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub generation: u64,
    /// File names, shard by shard.
    pub files: Vec<String>,
}

const MAGIC: &str = "shardis-snapshot 1";

pub fn manifest_name(dbfilename: &str) -> String {
    format!("{dbfilename}.manifest")
}

/// The file shard `shard` of `shards` writes for generation `generation`.
pub fn shard_file(dbfilename: &str, generation: u64, shard: usize, shards: usize) -> String {
    format!("{dbfilename}.{generation}.{shard}-of-{shards}")
}

/// The temporary name a shard writes under before the set is complete.
pub fn temp_file(generation: u64, shard: usize) -> String {
    format!(
        "temp-shardis-{}-{generation}-{shard}.rdb",
        std::process::id()
    )
}

impl Manifest {
    fn to_text(&self) -> String {
        let mut s = format!("{MAGIC}\ngeneration {}\n", self.generation);
        for f in &self.files {
            s.push_str("file ");
            s.push_str(f);
            s.push('\n');
        }
        s
    }

    fn parse(text: &str) -> Option<Manifest> {
        let mut lines = text.lines();
        if lines.next()? != MAGIC {
            return None;
        }
        let generation = lines.next()?.strip_prefix("generation ")?.parse().ok()?;
        let mut files = Vec::new();
        for line in lines {
            let name = line.strip_prefix("file ")?;
            // A manifest only ever names files in the same directory.
            if name.is_empty() || name.contains('/') {
                return None;
            }
            files.push(name.to_string());
        }
        (!files.is_empty()).then_some(Manifest { generation, files })
    }
}

/// The manifest in the working directory, if there is one.
pub fn read_manifest(dbfilename: &str) -> io::Result<Option<Manifest>> {
    match fs::read_to_string(manifest_name(dbfilename)) {
        Ok(text) => Manifest::parse(&text).map(Some).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not a Shardis manifest", manifest_name(dbfilename)),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Syncs the working directory (after renames, so they survive a crash).
pub fn sync_dir() -> io::Result<()> {
    File::open(".")?.sync_all()
}

/// Writes `name` atomically: a temporary file, synced, renamed over `name`, the directory
/// synced.
pub fn write_atomic(name: &str, data: &[u8]) -> io::Result<()> {
    let tmp = format!("{name}.tmp-{}", std::process::id());
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, name)?;
    sync_dir()
}

/// Makes `files` (already synced, under their final names) the current set.
pub fn publish(dbfilename: &str, manifest: &Manifest) -> io::Result<()> {
    sync_dir()?;
    write_atomic(&manifest_name(dbfilename), manifest.to_text().as_bytes())
}

/// Removes files of an older set that the new one does not name (best effort).
pub fn remove_old(old: Option<&Manifest>, new: &Manifest) {
    if let Some(old) = old {
        for f in &old.files {
            if !new.files.contains(f) && Path::new(f).exists() {
                let _ = fs::remove_file(f);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trip_and_refusals() {
        let m = Manifest {
            generation: 7,
            files: vec![
                shard_file("dump.rdb", 7, 0, 2),
                shard_file("dump.rdb", 7, 1, 2),
            ],
        };
        assert_eq!(Manifest::parse(&m.to_text()), Some(m));
        assert_eq!(Manifest::parse("shardis-snapshot 1\ngeneration 1\n"), None);
        assert_eq!(
            Manifest::parse("shardis-snapshot 1\ngeneration 1\nfile ../etc/passwd\n"),
            None
        );
        assert_eq!(Manifest::parse("REDIS0010"), None);
    }
}
