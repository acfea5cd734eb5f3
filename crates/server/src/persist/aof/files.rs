//! Where the append-only log lives: the directory `appenddirname` inside `dir`, holding per
//! shard a base file (an RDB snapshot of the shard when its log started) and one or more
//! incremental files (framed records, `shardis_persist::aof`), named
//! `<appendfilename>.<shard>-of-<shards>.<generation>.base.rdb` and
//! `<appendfilename>.<shard>-of-<shards>.<generation>.incr.aof`, and one manifest for all
//! shards, `<appendfilename>.manifest`, naming the files of the current set in order. The
//! manifest is replaced atomically (temporary name, synced, renamed, directory synced), so a
//! crash leaves either the old set or the new one named.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::persist::files::write_atomic;

const MAGIC: &str = "shardis-aof 1";

/// The files of one shard, in load order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardFiles {
    pub base: Option<String>,
    pub incrs: Vec<String>,
}

/// The current set: the shard count that wrote it and each shard's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub generation: u64,
    pub shards: Vec<ShardFiles>,
}

/// The directory and the names in it.
#[derive(Debug, Clone)]
pub struct Layout {
    pub dir: PathBuf,
    pub name: String,
}

impl Layout {
    pub fn from_config(config: &crate::config::Config) -> Layout {
        Layout {
            dir: PathBuf::from(config.get("appenddirname")),
            name: config.get("appendfilename").to_string(),
        }
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    fn manifest_path(&self) -> PathBuf {
        self.dir.join(format!("{}.manifest", self.name))
    }

    pub fn base(&self, generation: u64, shard: usize, shards: usize) -> String {
        format!("{}.{shard}-of-{shards}.{generation}.base.rdb", self.name)
    }

    pub fn incr(&self, generation: u64, shard: usize, shards: usize) -> String {
        format!("{}.{shard}-of-{shards}.{generation}.incr.aof", self.name)
    }

    /// The name a base is written under until the set it belongs to is published.
    pub fn temp_base(&self, generation: u64, shard: usize) -> String {
        format!(
            "temp-{}-{}-{generation}-{shard}.base.rdb",
            self.name,
            std::process::id()
        )
    }

    /// The manifest, if there is one.
    pub fn read(&self) -> io::Result<Option<Manifest>> {
        let path = self.manifest_path();
        match fs::read_to_string(&path) {
            Ok(text) => Manifest::parse(&text).map(Some).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} is not a Shardis append-only manifest", path.display()),
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Makes `m` the current set (its files already durable).
    pub fn publish(&self, m: &Manifest) -> io::Result<()> {
        sync_dir(&self.dir)?;
        let path = self.manifest_path();
        write_atomic(&path.to_string_lossy(), m.to_text().as_bytes())?;
        sync_dir(&self.dir)
    }

    /// Creates the directory if it is missing.
    pub fn create_dir(&self) -> io::Result<()> {
        fs::create_dir_all(&self.dir)
    }

    /// Removes the files `old` names and `new` does not (best effort, as Redis's history
    /// files).
    pub fn remove_unnamed(&self, old: &Manifest, new: &Manifest) {
        let named: Vec<&String> = new.files().collect();
        for f in old.files() {
            if !named.contains(&f) {
                let _ = fs::remove_file(self.path(f));
            }
        }
    }
}

/// Syncs a directory (after renames and creations, so they survive a crash).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    fs::File::open(dir)?.sync_all()
}

impl Manifest {
    pub fn files(&self) -> impl Iterator<Item = &String> {
        self.shards
            .iter()
            .flat_map(|s| s.base.iter().chain(s.incrs.iter()))
    }

    fn to_text(&self) -> String {
        let mut s = format!(
            "{MAGIC}\ngeneration {}\nshards {}\n",
            self.generation,
            self.shards.len()
        );
        for (i, f) in self.shards.iter().enumerate() {
            if let Some(b) = &f.base {
                s.push_str(&format!("base {i} {b}\n"));
            }
            for incr in &f.incrs {
                s.push_str(&format!("incr {i} {incr}\n"));
            }
        }
        s
    }

    fn parse(text: &str) -> Option<Manifest> {
        let mut lines = text.lines();
        if lines.next()? != MAGIC {
            return None;
        }
        let generation = lines.next()?.strip_prefix("generation ")?.parse().ok()?;
        let shards: usize = lines.next()?.strip_prefix("shards ")?.parse().ok()?;
        if shards == 0 || shards > 1024 {
            return None;
        }
        let mut m = Manifest {
            generation,
            shards: vec![ShardFiles::default(); shards],
        };
        for line in lines {
            let mut words = line.splitn(3, ' ');
            let (kind, shard, name) = (words.next()?, words.next()?, words.next()?);
            let shard: usize = shard.parse().ok()?;
            // A manifest only ever names files in its own directory.
            if name.is_empty() || name.contains('/') || name == ".." {
                return None;
            }
            let files = m.shards.get_mut(shard)?;
            match kind {
                "base" if files.base.is_none() && files.incrs.is_empty() => {
                    files.base = Some(name.to_string())
                }
                "incr" => files.incrs.push(name.to_string()),
                _ => return None,
            }
        }
        Some(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trip_and_refusals() {
        let l = Layout {
            dir: PathBuf::from("appendonlydir"),
            name: "appendonly.aof".into(),
        };
        let m = Manifest {
            generation: 3,
            shards: vec![
                ShardFiles {
                    base: Some(l.base(3, 0, 2)),
                    incrs: vec![l.incr(2, 0, 2), l.incr(3, 0, 2)],
                },
                ShardFiles {
                    base: None,
                    incrs: vec![l.incr(3, 1, 2)],
                },
            ],
        };
        assert_eq!(l.base(3, 0, 2), "appendonly.aof.0-of-2.3.base.rdb");
        assert_eq!(Manifest::parse(&m.to_text()), Some(m));
        assert_eq!(
            Manifest::parse("shardis-aof 1\ngeneration 1\nshards 0\n"),
            None
        );
        assert_eq!(
            Manifest::parse("shardis-aof 1\ngeneration 1\nshards 1\nincr 0 ../x\n"),
            None
        );
        assert_eq!(
            Manifest::parse("shardis-aof 1\ngeneration 1\nshards 1\nincr 1 x\n"),
            None
        );
        assert_eq!(
            Manifest::parse("file appendonly.aof.1.base.rdb type b\n"),
            None
        );
    }
}
