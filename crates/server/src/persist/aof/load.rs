//! Start-up with `appendonly yes`: the set named by the manifest is checked, then every core
//! loads its shard from it, all cores in parallel.
//!
//! 1. `prepare` (before the cores start): every incremental file is read through once. A
//!    shard's last file may end in a torn record or in zeros (a crash while appending):
//!    with `aof-load-truncated yes` the tail is cut off with a log line saying how many
//!    bytes, otherwise the server does not start. Damage anywhere else (a record whose
//!    checksum fails with more records after it, an earlier file's bad end) always stops
//!    the start, with the file and offset, as Redis's "Bad file format". The same pass
//!    collects which shards logged the end of each transaction.
//! 2. `start_shard` (each core): with the shard count of the set, core i loads base i and
//!    replays log i into its shard; with another count, every core replays every shard's
//!    set into a scratch shard and keeps the keys it owns now (records are routed by key
//!    after the effect is known, so a command over several keys replays as it ran). A
//!    transaction's records are held back until its end record, then applied only if every
//!    shard that took part logged its end too. Without a set, or after a change of shard
//!    count, each core writes a new base and a new incremental file and core 0 publishes
//!    the new manifest once all are durable; until then every core answers `-LOADING`
//!    (the cores wait for each other at two gates with their event loops running).
//!
//! Each start appends a run marker (an end record of transaction `run id` with no
//! participants) to every shard's log, since transaction ids start again with each run.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use std::time::Instant;

use shardis_engine::journal::ReplayError;
use shardis_engine::Shard;
use shardis_persist::aof::{self as frames, Frame, Record, FRAME_HEADER};
use tracing::{info, warn};

use super::files::{Layout, Manifest, ShardFiles};
use super::log;
use crate::config::Config;
use crate::coord::route;
use crate::core::{wall_ms, Core};
use crate::persist::loading::{self, Counted, Slice};
use crate::persist::save::{self, Target};
use crate::script::functions::Libraries;

/// What start-up found, shared by the cores.
struct Plan {
    layout: Layout,
    manifest: Option<Manifest>,
    /// Transactions (run, id) every participant of which logged the end.
    complete: HashSet<(u64, u64)>,
    /// This run's id (its marker).
    run: u64,
    /// Cores that loaded (first gate), and that saw the set in force complete (second).
    loaded: Gate,
    published: Gate,
    shards: usize,
    failed: Mutex<Option<String>>,
    /// The function libraries core 0 restored (base 0 and shard 0's log), as a FUNCTION
    /// DUMP payload, for the other cores to take once every core has loaded.
    libraries: Mutex<Option<Vec<u8>>>,
}

static PLAN: OnceLock<Plan> = OnceLock::new();

/// A point every core must reach before any goes on; a core waits on it with its event
/// loop running (its clients get -LOADING meanwhile).
#[derive(Default)]
struct Gate(AtomicUsize);

impl Gate {
    /// Arrives, and waits for the other cores (or a shutdown).
    async fn pass(&self, core: &Core, cores: usize) {
        self.0.fetch_add(1, Ordering::SeqCst);
        while self.0.load(Ordering::SeqCst) < cores && !crate::core::shutdown_requested() {
            core.sleep(Duration::from_millis(1)).await;
        }
    }
}

/// Reads `appendfsync`; with `appendonly yes`, checks the set on disk (see the module doc).
pub fn prepare(config: &Config, shards: usize) -> Result<(), String> {
    super::configure(config);
    if config.get("appendonly") != "yes" {
        return Ok(());
    }
    super::enable_at_start();
    let layout = Layout::from_config(config);
    layout.create_dir().map_err(|e| {
        format!(
            "Can't open or create append-only dir {}: {e}",
            layout.dir.display()
        )
    })?;
    let manifest = layout.read().map_err(|e| e.to_string())?;
    let truncate_ok = config.get("aof-load-truncated") == "yes";
    let mut ends: HashMap<(u64, u64), (Vec<u32>, HashSet<u32>)> = HashMap::new();
    let (mut base_size, mut total) = (0, 0);
    if let Some(m) = &manifest {
        for (shard, files) in m.shards.iter().enumerate() {
            if let Some(b) = &files.base {
                let len = std::fs::metadata(layout.path(b))
                    .map_err(|e| format!("The AOF base file {b} can't be opened: {e}"))?
                    .len();
                base_size += len;
                total += len;
            }
            let mut run = 0;
            for (i, name) in files.incrs.iter().enumerate() {
                let last = i + 1 == files.incrs.len();
                total += check_file(&layout, name, last, truncate_ok, &mut |r| match r {
                    Record::TxEnd { tx, participants } if participants.is_empty() => run = *tx,
                    Record::TxEnd { tx, participants } => {
                        let e = ends.entry((run, *tx)).or_default();
                        e.0.clone_from(participants);
                        e.1.insert(shard as u32);
                    }
                    _ => {}
                })?;
            }
        }
    }
    super::loaded_sizes(base_size, total);
    let complete = ends
        .into_iter()
        .filter(|(_, (parts, ended))| parts.iter().all(|p| ended.contains(p)))
        .map(|(k, _)| k)
        .collect();
    let _ = PLAN.set(Plan {
        layout,
        manifest,
        complete,
        run: wall_ms(),
        loaded: Gate::default(),
        published: Gate::default(),
        shards,
        failed: Mutex::new(None),
        libraries: Mutex::new(None),
    });
    Ok(())
}

/// Whether start-up loads from the append-only set (`appendonly yes`).
pub fn planned() -> bool {
    PLAN.get().is_some()
}

/// Reads frames from a file, `on_frame` getting each whole frame (header included).
struct Frames {
    reader: BufReader<Counted<File>>,
    len: u64,
    offset: u64,
    buf: Vec<u8>,
}

/// Where reading stopped.
enum End {
    /// At the end of the file.
    Clean,
    /// A torn or zero-padded tail starts here.
    Tail(&'static str),
    /// Damage with more data after it.
    Damage(&'static str),
}

impl Frames {
    fn open(path: &Path) -> io::Result<Frames> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(Frames {
            reader: loading::reader(file),
            len,
            offset: 0,
            buf: Vec::new(),
        })
    }

    /// The next good frame into `self.buf`, or where and why reading stops.
    fn next(&mut self) -> io::Result<Option<End>> {
        let left = self.len - self.offset;
        if left == 0 {
            return Ok(Some(End::Clean));
        }
        self.buf.clear();
        let head = left.min(FRAME_HEADER as u64) as usize;
        self.buf.resize(head, 0);
        self.reader.read_exact(&mut self.buf)?;
        if head < FRAME_HEADER {
            return Ok(Some(End::Tail(if frames::is_zero(&self.buf) {
                "zero padding"
            } else {
                "a torn record"
            })));
        }
        let len = u32::from_le_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as u64;
        if len == 0 {
            return Ok(Some(if self.rest_is_zero()? {
                End::Tail("zero padding")
            } else {
                End::Damage("a zero length before more data")
            }));
        }
        if len + FRAME_HEADER as u64 > left {
            return Ok(Some(End::Tail("a torn record")));
        }
        self.buf.resize(FRAME_HEADER + len as usize, 0);
        self.reader.read_exact(&mut self.buf[FRAME_HEADER..])?;
        match frames::decode(&self.buf) {
            Frame::Record(..) => {
                self.offset += self.buf.len() as u64;
                Ok(None)
            }
            _ if self.offset + self.buf.len() as u64 == self.len => {
                Ok(Some(End::Tail("a torn record")))
            }
            Frame::Bad(why) => Ok(Some(End::Damage(why))),
            Frame::Incomplete(_) | Frame::Zero => Ok(Some(End::Damage("a damaged record"))),
        }
    }

    fn rest_is_zero(&mut self) -> io::Result<bool> {
        let mut chunk = vec![0u8; 64 << 10];
        loop {
            let n = self.reader.read(&mut chunk)?;
            if n == 0 {
                return Ok(true);
            }
            if !frames::is_zero(&chunk[..n]) {
                return Ok(false);
            }
        }
    }

    fn record(&self) -> Option<Record<'_>> {
        match frames::decode(&self.buf) {
            Frame::Record(r, _) => Some(r),
            _ => None,
        }
    }
}

/// Checks one incremental file, cutting off a bad tail of a shard's last file when allowed;
/// returns its (remaining) size.
fn check_file(
    layout: &Layout,
    name: &str,
    last: bool,
    truncate_ok: bool,
    on_record: &mut dyn FnMut(&Record<'_>),
) -> Result<u64, String> {
    let path = layout.path(name);
    let read_err =
        |e: io::Error| format!("Unrecoverable error reading the append only file {name}: {e}");
    let mut f = Frames::open(&path).map_err(read_err)?;
    let end = loop {
        match f.next().map_err(read_err)? {
            None => {
                if let Some(r) = f.record() {
                    on_record(&r);
                }
            }
            Some(end) => break end,
        }
    };
    match end {
        End::Clean => Ok(f.len),
        End::Tail(what) if last && truncate_ok => {
            let cut = f.len - f.offset;
            warn!("!!! Warning: short read while loading the AOF file {name}!!!");
            warn!(
                "!!! Truncating the AOF {name} at offset {}: {cut} bytes of {what} removed !!!",
                f.offset
            );
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(read_err)?;
            file.set_len(f.offset)
                .and_then(|()| file.sync_all())
                .map_err(|e| format!("Error truncating the AOF file {name}: {e}"))?;
            warn!("AOF {name} loaded anyway because aof-load-truncated is enabled");
            Ok(f.offset)
        }
        End::Tail(what) if last => Err(format!(
            "Unexpected end of file reading the append only file {name} ({what} at offset {}, {} bytes). You can: 1) Make a backup of your AOF file, then cut it at that offset. 2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart the server.",
            f.offset,
            f.len - f.offset
        )),
        End::Tail(what) | End::Damage(what) => Err(format!(
            "Bad file format reading the append only file {name}: {what} at offset {} of {} bytes. Make a backup of your AOF directory; the records before that offset are good.",
            f.offset, f.len
        )),
    }
}

/// Loads this core's shard from the set and starts its log (see the module doc). Every core
/// calls it; none returns before all have loaded and the set in force is complete.
pub async fn start_shard(core: &Rc<Core>) -> Result<(), String> {
    let Some(plan) = PLAN.get() else {
        return Ok(());
    };
    let result = load_and_prepare(core, plan).await;
    if let Err(e) = &result {
        if let Ok(mut f) = plan.failed.lock() {
            f.get_or_insert_with(|| e.clone());
        }
    }
    plan.loaded.pass(core, plan.shards).await;
    let failed = |plan: &Plan| plan.failed.lock().ok().and_then(|f| f.clone());
    if let Some(e) = failed(plan) {
        return Err(e);
    }
    if core.id != 0 {
        take_libraries(plan)?;
    }
    let new_set = result.unwrap_or(None);
    if core.id == 0 {
        if let Some(generation) = new_set {
            if let Err(e) = publish_new(core, plan, generation) {
                if let Ok(mut f) = plan.failed.lock() {
                    f.get_or_insert(e);
                }
            }
        }
    }
    plan.published.pass(core, plan.shards).await;
    if let Some(e) = failed(plan) {
        return Err(e);
    }
    let generation = match (&plan.manifest, new_set) {
        (_, Some(g)) => g,
        (Some(m), None) => m.generation,
        (None, None) => return Err("no append only file set".into()),
    };
    let name = match (&plan.manifest, new_set) {
        (Some(m), None) => m
            .shards
            .get(core.id)
            .and_then(|s| s.incrs.last().cloned())
            .unwrap_or_else(|| plan.layout.incr(generation, core.id, core.shards)),
        _ => plan.layout.incr(generation, core.id, core.shards),
    };
    let log = log::open(&plan.layout.path(&name), name.clone())
        .map_err(|e| format!("Can't open the append-only file {name}: {e}"))?;
    log::install(core, Some(log)).map_err(|e| e.to_string())?;
    core.shard.borrow_mut().set_journal(true);
    Ok(())
}

/// Loads the shard; returns the generation of the new set this core wrote files for, if the
/// set must be rewritten (none yet, or another shard count).
async fn load_and_prepare(core: &Rc<Core>, plan: &Plan) -> Result<Option<u64>, String> {
    let started = Instant::now();
    let Some(m) = &plan.manifest else {
        return write_new(core, plan, 1).map(Some);
    };
    let now = wall_ms();
    let mut stats = ReplayStats::default();
    // Core 0 restores the function libraries: shard 0's base holds them, its log the
    // FUNCTION commands since.
    let mut libraries = Libraries::default();
    if m.shards.len() == core.shards {
        let files = m.shards.get(core.id).cloned().unwrap_or_default();
        loading::add_total(chain_size(plan, &files));
        let libs = (core.id == 0).then_some(&mut libraries);
        load_chain(&core.shard, plan, core.id, &files, now, &mut stats, libs).await?;
    } else {
        loading::add_total(m.shards.iter().map(|f| chain_size(plan, f)).sum());
        let engine = core.config.borrow().engine();
        let (shards, id) = (core.shards, core.id);
        let mine = |key: &[u8]| route::shard_of(key, shards) == id;
        for (old, files) in m.shards.iter().enumerate() {
            let scratch = RefCell::new(Shard::new(id, engine.clone()));
            let libs = (id == 0 && old == 0).then_some(&mut libraries);
            load_chain(&scratch, plan, old, files, now, &mut stats, libs).await?;
            let scratch = scratch.into_inner();
            let mut shard = core.shard.borrow_mut();
            for (db, d) in scratch.dbs.iter().enumerate() {
                let Some(target) = shard.dbs.get_mut(db) else {
                    continue;
                };
                for (k, e) in d.iter() {
                    if mine(k.as_bytes()) {
                        target.insert_record(k.as_bytes(), d.to_record(e));
                    }
                }
            }
        }
    }
    // In force before a new set is written (core 0's base carries them).
    if core.id == 0 {
        let payload = crate::script::functions::dump(&libraries);
        crate::script::state::with(|st| st.libraries = libraries);
        if let Ok(mut l) = plan.libraries.lock() {
            *l = Some(payload);
        }
    }
    // Loading is not a change since the last save.
    core.shard.borrow_mut().dirty = 0;
    if stats.dropped > 0 {
        warn!(
            shard = core.id,
            "{} records of {} transactions cut by a crash were not applied",
            stats.dropped,
            stats.dropped_tx
        );
    }
    info!(
        shard = core.id,
        records = stats.records,
        "DB loaded from append only file: {:.3} seconds",
        started.elapsed().as_secs_f64()
    );
    // Another shard count, or a set written with the log off (BGREWRITEAOF: bases only).
    if m.shards.len() != core.shards || m.shards.iter().any(|s| s.incrs.is_empty()) {
        return write_new(core, plan, m.generation + 1).map(Some);
    }
    // This run's marker, durable before any record of the run.
    let name = m
        .shards
        .get(core.id)
        .and_then(|s| s.incrs.last().cloned())
        .ok_or_else(|| {
            format!(
                "the AOF manifest names no incremental file for shard {}",
                core.id
            )
        })?;
    let mut marker = Vec::new();
    frames::encode(
        &Record::TxEnd {
            tx: plan.run,
            participants: Vec::new(),
        },
        &mut marker,
    );
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(plan.layout.path(&name))
        .map_err(|e| format!("Can't open the append-only file {name}: {e}"))?;
    f.write_all(&marker)
        .and_then(|()| f.sync_data())
        .map_err(|e| format!("writing to the append-only file {name}: {e}"))?;
    super::CURRENT_SIZE.fetch_add(marker.len() as u64, std::sync::atomic::Ordering::Relaxed);
    Ok(None)
}

/// A core other than 0 takes the libraries core 0 restored.
fn take_libraries(plan: &Plan) -> Result<(), String> {
    let payload = plan.libraries.lock().ok().and_then(|l| l.clone());
    let Some(payload) = payload else {
        return Ok(());
    };
    let libraries = crate::script::functions::restore(&payload)
        .map_err(|e| format!("Failed loading library, {e}"))?;
    crate::script::state::with(|st| st.libraries = libraries);
    Ok(())
}

#[derive(Default)]
struct ReplayStats {
    records: u64,
    dropped: u64,
    dropped_tx: u64,
}

/// The bytes of one old shard's files.
fn chain_size(plan: &Plan, files: &ShardFiles) -> u64 {
    files
        .base
        .iter()
        .chain(&files.incrs)
        .filter_map(|name| std::fs::metadata(plan.layout.path(name)).ok())
        .map(|m| m.len())
        .sum()
}

/// Loads one old shard's base and replays its incremental files into `shard`, in time
/// slices (the core serves its clients in between; the shard is borrowed only in a slice).
async fn load_chain(
    shard: &RefCell<Shard>,
    plan: &Plan,
    old: usize,
    files: &ShardFiles,
    now: u64,
    stats: &mut ReplayStats,
    mut libraries: Option<&mut Libraries>,
) -> Result<(), String> {
    // The whole base, whatever the keys' shards now: the records replay over all of it.
    if let Some(b) = &files.base {
        let path = plan.layout.path(b);
        crate::persist::load::load_rdb(
            shard,
            &path.to_string_lossy(),
            &|_| true,
            true,
            libraries.as_deref_mut(),
            true,
        )
        .await?;
    }
    let mut slice = Slice::start();
    // Records of transactions not yet ended, by id, as whole frames.
    let mut pending: HashMap<u64, Vec<Vec<u8>>> = HashMap::new();
    let mut run = 0;
    for name in &files.incrs {
        let fail = |e: String| format!("replaying {name} (shard {old}): {e}");
        let mut f = Frames::open(&plan.layout.path(name)).map_err(|e| fail(e.to_string()))?;
        while f.next().map_err(|e| fail(e.to_string()))?.is_none() {
            if slice.due() {
                slice.pause().await;
            }
            let shard = &mut *shard.borrow_mut();
            let Some(record) = f.record() else { continue };
            match &record {
                Record::TxEnd { tx, participants } if participants.is_empty() => {
                    drop_pending(&mut pending, stats);
                    run = *tx;
                }
                Record::TxEnd { tx, .. } => {
                    let held = pending.remove(tx).unwrap_or_default();
                    if plan.complete.contains(&(run, *tx)) {
                        for frame in &held {
                            if let Frame::Record(r, _) = frames::decode(frame) {
                                apply(shard, &r, now, stats, libraries.as_deref_mut())
                                    .map_err(fail)?;
                            }
                        }
                    } else if !held.is_empty() {
                        stats.dropped += held.len() as u64;
                        stats.dropped_tx += 1;
                    }
                }
                r if r.tx() != 0 => pending.entry(r.tx()).or_default().push(f.buf.clone()),
                r => apply(shard, r, now, stats, libraries.as_deref_mut()).map_err(fail)?,
            }
        }
    }
    drop_pending(&mut pending, stats);
    Ok(())
}

fn drop_pending(pending: &mut HashMap<u64, Vec<Vec<u8>>>, stats: &mut ReplayStats) {
    for (_, held) in pending.drain() {
        stats.dropped += held.len() as u64;
        stats.dropped_tx += 1;
    }
}

/// Replays one record; a FUNCTION command goes to `libraries` (core 0's, replaying shard
/// 0's log), and is skipped by the other cores.
fn apply(
    shard: &mut Shard,
    r: &Record<'_>,
    now: u64,
    stats: &mut ReplayStats,
    libraries: Option<&mut Libraries>,
) -> Result<(), String> {
    stats.records += 1;
    match shardis_engine::journal::replay(shard, r, now) {
        Err(ReplayError::Runtime(which, args))
            if crate::script::commands::changes_libraries(which) =>
        {
            match libraries {
                Some(libs) => crate::script::commands::replay_change(libs, which, &args),
                None => Ok(()),
            }
        }
        other => other.map_err(|e| e.to_string()),
    }
}

/// Writes this core's base of a new set (generation `generation`) and its empty incremental
/// file.
fn write_new(core: &Rc<Core>, plan: &Plan, generation: u64) -> Result<u64, String> {
    let l = &plan.layout;
    let temp = l.path(&l.temp_base(generation, core.id));
    save::write_blocking(core, &temp, &Target::AofBase(l.clone(), false))?;
    let incr = l.incr(generation, core.id, core.shards);
    File::create(l.path(&incr))
        .and_then(|f| f.sync_all())
        .map_err(|e| format!("creating {incr}: {e}"))?;
    Ok(generation)
}

/// Core 0, once every core wrote its files: names the new set in the manifest.
fn publish_new(core: &Rc<Core>, plan: &Plan, generation: u64) -> Result<(), String> {
    let l = &plan.layout;
    let shards = core.shards;
    let manifest = Manifest {
        generation,
        shards: (0..shards)
            .map(|i| ShardFiles {
                base: Some(l.base(generation, i, shards)),
                incrs: vec![l.incr(generation, i, shards)],
            })
            .collect(),
    };
    let mut base_size = 0;
    for i in 0..shards {
        let (temp, name) = (
            l.path(&l.temp_base(generation, i)),
            l.base(generation, i, shards),
        );
        base_size += std::fs::metadata(&temp).map(|m| m.len()).unwrap_or(0);
        std::fs::rename(&temp, l.path(&name)).map_err(|e| format!("rename to {name}: {e}"))?;
    }
    l.publish(&manifest).map_err(|e| e.to_string())?;
    if let Some(old) = &plan.manifest {
        l.remove_unnamed(old, &manifest);
        info!(
            "append only set rewritten for {shards} shards (it was written by {})",
            old.shards.len()
        );
    } else {
        info!("Creating AOF base files on server start");
    }
    super::loaded_sizes(base_size, base_size);
    Ok(())
}
