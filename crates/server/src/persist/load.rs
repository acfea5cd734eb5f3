//! Loading at start-up: every core reads the current snapshot set (or, when there is none, a
//! Redis `dump.rdb` named `dbfilename`) and keeps the keys it owns, all cores in parallel.
//! With the shard count of the set, core i reads file i only (and the function libraries at
//! the head of file 0); with another count (or a single Redis file), every core reads every
//! file and keeps its own keys. Every core loads every function library.

use std::cell::RefCell;
use std::fs::File;
use std::io::BufReader;
use std::num::NonZeroU64;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use shardis_engine::db::Record;
use shardis_engine::Shard;
use shardis_persist::rdb::read::IoSource;
use shardis_persist::rdb::{Decoded, FileReader, Item};
use tracing::{info, warn};

use super::files;
use super::loading::{self, Counted, Slice};
use crate::coord::route;
use crate::core::{wall_ms, Core};
use crate::script::{
    self,
    functions::{self, Libraries},
};

/// Keys loaded, and keys found already expired, at the last load (all cores).
pub static KEYS_LOADED: AtomicU64 = AtomicU64::new(0);
pub static KEYS_EXPIRED: AtomicU64 = AtomicU64::new(0);

/// The files this core reads whole, and a file whose function libraries alone it reads: with
/// the shard count of the set, core i reads file i, and the libraries only shard 0's file
/// carries; with another count (or a single Redis file), every core reads every file.
fn files_to_read(core: &Core, dbfilename: &str) -> Result<(Vec<String>, Option<String>), String> {
    match files::read_manifest(dbfilename).map_err(|e| e.to_string())? {
        Some(m) if m.files.len() == core.shards => {
            let own = m.files.get(core.id).cloned().into_iter().collect();
            let functions = (core.id != 0).then(|| m.files.first().cloned()).flatten();
            Ok((own, functions))
        }
        Some(m) => Ok((m.files, None)),
        None if Path::new(dbfilename).exists() => Ok((vec![dbfilename.to_string()], None)),
        None => Ok((Vec::new(), None)),
    }
}

/// Loads this core's keys at once (DEBUG RELOAD); see [`load_shard_paced`]. `merge`: a
/// library already loaded is replaced by the file's (DEBUG RELOAD MERGE) rather than an error.
pub fn load_shard(core: &Core, merge: bool) -> Result<(), String> {
    futures_lite::future::block_on(load_shard_paced(core, false, merge))
}

/// Loads this core's keys; an unreadable or corrupt file is an error (the server does not
/// start, as Redis). `paced`: in slices of `loading-process-events-interval-bytes`, the
/// core serving its clients in between.
pub async fn load_shard_paced(core: &Core, paced: bool, merge: bool) -> Result<(), String> {
    let dbfilename = core.config.borrow().get("dbfilename").to_string();
    let (files, functions_from) = files_to_read(core, &dbfilename)?;
    if files.is_empty() {
        return Ok(());
    }
    loading::add_total(
        files
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum(),
    );
    let started = Instant::now();
    let mut loaded = 0;
    let mut libraries = Libraries::default();
    if let Some(f) = functions_from {
        load_functions(&f, &mut libraries)?;
    }
    let (shards, id) = (core.shards, core.id);
    for f in &files {
        loaded += load_rdb(
            &core.shard,
            f,
            &|key| route::shard_of(key, shards) == id,
            false,
            Some(&mut libraries),
            paced,
        )
        .await?;
    }
    // Libraries of the same name as ones already there (DEBUG RELOAD NOFLUSH) replace them
    // only when merging, as Redis's RDBFLAGS_ALLOW_DUP.
    script::state::with(|st| st.libraries.join(libraries, merge))
        .map_err(|e| format!("Failed loading library, {e}"))?;
    info!(
        shard = core.id,
        keys = loaded,
        "DB loaded from disk: {:.3} seconds",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Compiles a library found in a file and adds it to `libraries` (a name found twice is an
/// error, as in Redis).
fn add_library(libraries: &mut Libraries, code: Bytes) -> Result<(), String> {
    let lib = functions::compile(code, None)?;
    libraries.add(lib, false)
}

/// Reads only the function libraries of a file: those before its first database, where
/// Shardis and Redis write them.
fn load_functions(path: &str, libraries: &mut Libraries) -> Result<(), String> {
    let fail = |e: String| format!("loading {path}: {e}");
    let file = File::open(path).map_err(|e| fail(e.to_string()))?;
    let len = file.metadata().map_err(|e| fail(e.to_string()))?.len();
    let src = IoSource::new(BufReader::with_capacity(64 << 10, file), len);
    let mut reader = FileReader::new(src).map_err(|e| fail(e.to_string()))?;
    loop {
        match reader.next_item().map_err(|e| fail(e.to_string()))? {
            Item::Function(code) => add_library(libraries, code)
                .map_err(|e| fail(format!("Failed loading library, {e}")))?,
            Item::Aux(..) => {}
            _ => return Ok(()),
        }
    }
}

/// Loads the keys of one RDB file that `keep` accepts into `shard`; returns how many. Keys
/// already expired are dropped, unless the file is the base of an append-only log
/// (`aof_base`), whose records may still change them as of their time (as Redis keeps the
/// expired keys of an AOF's RDB preamble), or the shard is a replica's (its full sync). The
/// file's function libraries go to `libraries` (None: skipped with a warning). `paced`: in
/// slices of `loading-process-events-interval-bytes` bytes, the core serving its clients in between (the shard is borrowed only during
/// a slice); otherwise at once.
pub async fn load_rdb(
    shard: &RefCell<Shard>,
    path: &str,
    keep: &dyn Fn(&[u8]) -> bool,
    aof_base: bool,
    mut libraries: Option<&mut Libraries>,
    paced: bool,
) -> Result<u64, String> {
    let mut load = RdbLoad::open(&shard.borrow(), path, aof_base)?;
    let mut slice = Slice::start();
    while !load.step(
        &mut shard.borrow_mut(),
        keep,
        libraries.as_deref_mut(),
        paced.then_some(&slice),
    )? {
        slice.pause().await;
    }
    Ok(load.finish())
}

/// One RDB file being loaded (see [`load_rdb`]).
struct RdbLoad {
    path: String,
    reader: FileReader<IoSource<BufReader<Counted<File>>>>,
    aof_base: bool,
    now: u64,
    /// A replica keeps keys already expired: they go when the primary deletes them.
    keep_expired: bool,
    loaded: u64,
    expired: u64,
    told_functions: bool,
}

impl RdbLoad {
    fn open(shard: &Shard, path: &str, aof_base: bool) -> Result<RdbLoad, String> {
        let fail = |e: String| format!("loading {path}: {e}");
        let file = File::open(path).map_err(|e| fail(e.to_string()))?;
        let len = file.metadata().map_err(|e| fail(e.to_string()))?.len();
        let src = IoSource::new(loading::reader(file), len);
        let reader = FileReader::new(src).map_err(|e| fail(e.to_string()))?;
        Ok(RdbLoad {
            path: path.to_string(),
            reader,
            aof_base,
            now: wall_ms(),
            keep_expired: shard.dbs.first().is_some_and(|d| d.keep_expired),
            loaded: 0,
            expired: 0,
            told_functions: false,
        })
    }

    /// Loads items until the file ends (true) or `slice` is over (false).
    fn step(
        &mut self,
        shard: &mut Shard,
        keep: &dyn Fn(&[u8]) -> bool,
        mut libraries: Option<&mut Libraries>,
        slice: Option<&Slice>,
    ) -> Result<bool, String> {
        let path = self.path.as_str();
        let fail = |e: String| format!("loading {path}: {e}");
        let now = self.now;
        let config = shard.config.clone();
        let tracking = config.tracking;
        let delay = loading::key_load_delay();
        loop {
            if slice.is_some_and(Slice::due) {
                return Ok(false);
            }
            let item = self.reader.next_item().map_err(|e| {
                fail(format!(
                    "Short read or OOM loading DB. Unrecoverable error, aborting now. ({e})"
                ))
            })?;
            match item {
                Item::Key(k) => {
                    if !keep(&k.key) {
                        continue;
                    }
                    let value = match k.value {
                        Decoded::Value(v) => v,
                        Decoded::Empty => continue,
                        Decoded::Module(name) => {
                            warn!(
                                "{path}: key skipped: a value of module type '{name}' (no modules)"
                            );
                            continue;
                        }
                    };
                    let expire_at = k.expire_ms.map(|ms| ms.max(1) as u64);
                    if !self.aof_base && !self.keep_expired && expire_at.is_some_and(|at| at <= now)
                    {
                        self.expired += 1;
                        continue;
                    }
                    let db = usize::try_from(k.db).unwrap_or(usize::MAX);
                    let dbs = shard.dbs.len();
                    let Some(d) = shard.dbs.get_mut(db) else {
                        return Err(fail(format!(
                            "FATAL: Data file was created with a Redis server configured to handle more than {dbs} databases. Exiting"
                        )));
                    };
                    // The file's LFU counter under an LFU policy, its idle time under the
                    // others, as Redis loads them.
                    let lru = match (tracking.policy.is_lfu(), k.freq, k.idle_secs) {
                        (true, Some(f), _) => shardis_engine::evict::lfu_field(now, f),
                        (false, _, Some(i)) => shardis_engine::evict::Tracking::idle_since(
                            now,
                            i64::try_from(i).unwrap_or(i64::MAX),
                        ),
                        _ => tracking.fresh(now),
                    };
                    let value = shardis_engine::rdb::to_value(value, &config);
                    d.insert_record(
                        &k.key,
                        Record {
                            value,
                            expire_at: expire_at.and_then(NonZeroU64::new),
                            lru,
                        },
                    );
                    self.loaded += 1;
                    if delay != 0 {
                        loading::pause_after_key(delay, self.loaded);
                    }
                }
                Item::Function(code) => match libraries.as_deref_mut() {
                    Some(libs) => add_library(libs, code)
                        .map_err(|e| fail(format!("Failed loading library, {e}")))?,
                    None if !self.told_functions => {
                        warn!("{path}: function libraries skipped (not restored from an append-only log's base)");
                        self.told_functions = true;
                    }
                    None => {}
                },
                Item::Eof { checksum_ok } => {
                    if !checksum_ok {
                        return Err(fail("Wrong RDB checksum. Aborting now.".into()));
                    }
                    return Ok(true);
                }
                Item::Aux(name, value) if name.eq_ignore_ascii_case(b"used-mem") => {
                    if let Some(n) = std::str::from_utf8(&value)
                        .ok()
                        .and_then(|v| v.parse::<u64>().ok())
                    {
                        loading::add_rdb_used_mem(n);
                    }
                }
                Item::Aux(..) | Item::SelectDb(_) | Item::ResizeDb { .. } => {}
            }
        }
    }

    /// Counts what was loaded; returns the keys kept.
    fn finish(self) -> u64 {
        KEYS_LOADED.fetch_add(self.loaded, Ordering::Relaxed);
        KEYS_EXPIRED.fetch_add(self.expired, Ordering::Relaxed);
        self.loaded
    }
}
