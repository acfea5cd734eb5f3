//! The append-only log, per shard: every change a shard makes (the engine's journal,
//! `shardis_engine::journal`) appended to the shard's incremental file, synced by the
//! `appendfsync` policy, on top of a base snapshot of the shard; loaded back at start-up.
//!
//! - `files`: the directory `appenddirname`, its base and incremental files per shard, and
//!   the manifest naming them;
//! - `log`: one core's incremental file: written once per event-loop pass (group commit
//!   under `always`), synced by policy, write errors as Redis handles them;
//! - `load`: at start-up, validating every file (a torn or zero-padded tail trimmed, damage
//!   in the middle refused), then every core replaying its shard's base and log in parallel,
//!   transactions over several shards applied whole or not at all, whatever the shard count
//!   was; a new set is written when there was none or the shard count changed;
//! - here: the state INFO reports, turning the log on and off at run time, and rewriting it
//!   (BGREWRITEAOF, `auto-aof-rewrite-*`): a fresh snapshot of every shard as the new base,
//!   taken while the shards serve, the writes since going to a new incremental file.

pub mod files;
pub mod load;
pub mod log;

use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use tracing::{info, warn};

use self::files::{Layout, Manifest, ShardFiles};
use super::save::{self, Target};
use super::{CURRENT_START, IN_PROGRESS};
use crate::core::{spawn, wall_ms, Core};

/// `appendfsync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    No = 0,
    Everysec = 1,
    Always = 2,
}

/// The log is kept (`appendonly yes`; it may still be waiting for its first base).
static ENABLED: AtomicBool = AtomicBool::new(false);
static FSYNC: AtomicU8 = AtomicU8::new(Fsync::Everysec as u8);
/// A rewrite is running (it holds the snapshot machinery: `IN_PROGRESS` is set too).
static REWRITING: AtomicBool = AtomicBool::new(false);
/// A rewrite was asked for while a snapshot ran, or the first base failed: core 0's clock
/// starts it.
static SCHEDULED: AtomicBool = AtomicBool::new(false);
/// The log is on but has no complete set yet (turned on at run time, first rewrite running).
static WAITING_BASE: AtomicBool = AtomicBool::new(false);
static LAST_REWRITE_SECS: AtomicI64 = AtomicI64::new(-1);
static LAST_REWRITE_OK: AtomicBool = AtomicBool::new(true);
static LAST_REWRITE_FAILURE: AtomicU64 = AtomicU64::new(0);
static REWRITES: AtomicU64 = AtomicU64::new(0);
static CONSECUTIVE_FAILURES: AtomicU64 = AtomicU64::new(0);
/// Bytes of the current set: bases and incremental files.
pub(crate) static CURRENT_SIZE: AtomicU64 = AtomicU64::new(0);
static BASE_SIZE: AtomicU64 = AtomicU64::new(0);
/// The set's size after the last rewrite (or at start-up): `auto-aof-rewrite-percentage`
/// measures growth from it, as Redis's `aof_rewrite_base_size`.
static REWRITE_BASE_SIZE: AtomicU64 = AtomicU64::new(0);
static WRITE_OK: AtomicBool = AtomicBool::new(true);
static WRITE_ERROR: Mutex<String> = Mutex::new(String::new());

/// A failed rewrite is retried after this long (Redis's).
const RETRY_DELAY_SECS: u64 = 5;

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

pub fn fsync_policy() -> Fsync {
    match FSYNC.load(Ordering::Relaxed) {
        0 => Fsync::No,
        2 => Fsync::Always,
        _ => Fsync::Everysec,
    }
}

/// Reads `appendfsync` (at start-up and after CONFIG SET).
pub fn configure(config: &crate::config::Config) {
    let policy = match config.get("appendfsync") {
        "always" => Fsync::Always,
        "no" => Fsync::No,
        _ => Fsync::Everysec,
    };
    FSYNC.store(policy as u8, Ordering::Relaxed);
}

pub(crate) fn write_ok() {
    WRITE_OK.store(true, Ordering::Relaxed);
}

pub(crate) fn sync_ok() {
    WRITE_OK.store(true, Ordering::Relaxed);
}

pub(crate) fn write_failed(e: &std::io::Error) {
    if let Ok(mut m) = WRITE_ERROR.lock() {
        *m = e.to_string();
    }
    WRITE_OK.store(false, Ordering::Relaxed);
}

/// Redis's refusal of writes while the log cannot be written, if that is the case.
pub fn writes_refused() -> Option<String> {
    if !enabled() || WRITE_OK.load(Ordering::Relaxed) {
        return None;
    }
    let why = WRITE_ERROR.lock().map(|m| m.clone()).unwrap_or_default();
    Some(format!("MISCONF Errors writing to the AOF file: {why}"))
}

/// A rewrite is running.
pub fn rewriting() -> bool {
    REWRITING.load(Ordering::Relaxed)
}

/// On a shard, at the cut of a rewrite: its log continues in a new incremental file (the old
/// one written and synced first) and the journal is on.
pub fn start_incr(core: &Rc<Core>, layout: &Layout, generation: u64) -> Result<(), String> {
    let name = layout.incr(generation, core.id, core.shards);
    let log = log::open(&layout.path(&name), name.clone())
        .map_err(|e| format!("creating {name}: {e}"))?;
    log::install(core, Some(log)).map_err(|e| format!("finishing the previous AOF file: {e}"))?;
    core.shard.borrow_mut().set_journal(true);
    Ok(())
}

/// Why a rewrite did not start.
#[derive(Debug)]
pub enum RewriteError {
    InProgress,
    Failed(String),
}

/// Writes a new base for every shard from a snapshot taken while serving, the writes since
/// the cut going to new incremental files, and switches the manifest to them. With the log
/// on, the new incremental files are named by the manifest before the cut (after the old
/// ones), so a crash at any point leaves a complete set named.
pub async fn rewrite(core: &Rc<Core>) -> Result<(), RewriteError> {
    if IN_PROGRESS
        .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        return Err(RewriteError::InProgress);
    }
    REWRITING.store(true, Ordering::SeqCst);
    SCHEDULED.store(false, Ordering::SeqCst);
    CURRENT_START.store(wall_ms(), Ordering::Relaxed);
    info!("Background append only file rewriting started");
    let started = Instant::now();
    let result = rewrite_files(core).await;
    LAST_REWRITE_SECS.store(started.elapsed().as_secs() as i64, Ordering::Relaxed);
    match &result {
        Ok(()) => {
            LAST_REWRITE_OK.store(true, Ordering::Relaxed);
            REWRITES.fetch_add(1, Ordering::Relaxed);
            CONSECUTIVE_FAILURES.store(0, Ordering::Relaxed);
            WAITING_BASE.store(false, Ordering::Relaxed);
            info!("Background AOF rewrite finished successfully");
        }
        Err(e) => {
            LAST_REWRITE_OK.store(false, Ordering::Relaxed);
            LAST_REWRITE_FAILURE.store(wall_ms() / 1000, Ordering::Relaxed);
            CONSECUTIVE_FAILURES.fetch_add(1, Ordering::Relaxed);
            warn!("Background AOF rewrite failed: {e}");
            // The log waiting for its first base tries again (Redis's scheduled rewrite).
            if WAITING_BASE.load(Ordering::Relaxed) {
                SCHEDULED.store(true, Ordering::SeqCst);
            }
        }
    }
    REWRITING.store(false, Ordering::SeqCst);
    IN_PROGRESS.store(false, Ordering::SeqCst);
    result.map_err(RewriteError::Failed)
}

async fn rewrite_files(core: &Rc<Core>) -> Result<(), String> {
    let layout = Layout::from_config(&core.config.borrow());
    let shards = core.shards;
    layout
        .create_dir()
        .map_err(|e| format!("creating {}: {e}", layout.dir.display()))?;
    let waiting = WAITING_BASE.load(Ordering::Relaxed);
    // With the log off (BGREWRITEAOF, as Redis allows) the set is bases only.
    let logging = enabled();
    let old = layout.read().map_err(|e| e.to_string())?;
    let generation = old.as_ref().map_or(1, |m| m.generation + 1);
    let incr = |i: usize| layout.incr(generation, i, shards);
    // 1. With a complete set in force, its manifest names the new incremental files too
    //    (created empty first), so the writes after the cut are in the set whatever happens.
    let interim = match &old {
        Some(m) if logging && !waiting && m.shards.len() == shards => {
            for i in 0..shards {
                log::open(&layout.path(&incr(i)), incr(i))
                    .map_err(|e| format!("creating {}: {e}", incr(i)))?;
            }
            let mut m = m.clone();
            m.generation = generation;
            for (i, s) in m.shards.iter_mut().enumerate() {
                s.incrs.push(incr(i));
            }
            layout.publish(&m).map_err(|e| e.to_string())?;
            Some(m)
        }
        _ => None,
    };
    // 2. The cut: every shard switches to its new incremental file and writes its base.
    let target = Target::AofBase(layout.clone(), logging);
    let temps = save::cut_and_write(core, None, generation, target)
        .await
        .inspect_err(|_| {
            if interim.is_none() {
                for i in 0..shards {
                    let _ = std::fs::remove_file(layout.path(&incr(i)));
                }
            }
        })?;
    if logging != enabled() {
        for t in &temps {
            let _ = std::fs::remove_file(t);
        }
        return Err("the append only file was turned on or off during the rewrite".into());
    }
    // 3. The new set: each shard's new base and new incremental file.
    let manifest = Manifest {
        generation,
        shards: (0..shards)
            .map(|i| ShardFiles {
                base: Some(layout.base(generation, i, shards)),
                incrs: if logging { vec![incr(i)] } else { Vec::new() },
            })
            .collect(),
    };
    let mut base_size = 0;
    for (i, t) in temps.iter().enumerate() {
        let name = layout.base(generation, i, shards);
        base_size += std::fs::metadata(t).map(|m| m.len()).unwrap_or(0);
        std::fs::rename(t, layout.path(&name))
            .map_err(|e| format!("rename {} to {name}: {e}", t.display()))?;
    }
    layout.publish(&manifest).map_err(|e| e.to_string())?;
    for m in old.iter().chain(interim.iter()) {
        layout.remove_unnamed(m, &manifest);
    }
    let incr_size: u64 = (0..shards)
        .filter(|_| logging)
        .map(|i| {
            std::fs::metadata(layout.path(&incr(i)))
                .map(|m| m.len())
                .unwrap_or(0)
        })
        .sum();
    BASE_SIZE.store(base_size, Ordering::Relaxed);
    CURRENT_SIZE.store(base_size + incr_size, Ordering::Relaxed);
    REWRITE_BASE_SIZE.store(base_size + incr_size, Ordering::Relaxed);
    Ok(())
}

/// CONFIG SET appendonly: on writes a base of every shard and starts the log (the reply
/// does not wait for it, as in Redis); off closes every shard's log.
pub async fn set_enabled(core: &Rc<Core>, on: bool) {
    if on == enabled() {
        return;
    }
    if on {
        ENABLED.store(true, Ordering::SeqCst);
        WAITING_BASE.store(true, Ordering::SeqCst);
        WRITE_OK.store(true, Ordering::Relaxed);
        if super::in_progress() {
            SCHEDULED.store(true, Ordering::SeqCst);
            return;
        }
        let core = core.clone();
        spawn::spawn(async move {
            if let Err(RewriteError::InProgress) = rewrite(&core).await {
                SCHEDULED.store(true, Ordering::SeqCst);
            }
        });
    } else {
        ENABLED.store(false, Ordering::SeqCst);
        WAITING_BASE.store(false, Ordering::SeqCst);
        SCHEDULED.store(false, Ordering::SeqCst);
        core.broadcast(|c| {
            if let Err(e) = log::close(c) {
                warn!("closing the append only file: {e}");
            }
            c.shard.borrow_mut().set_journal(false);
        })
        .await;
    }
}

/// BGREWRITEAOF's reply.
pub fn bgrewriteaof(core: &Rc<Core>) -> Result<&'static str, &'static str> {
    if rewriting() {
        return Err("ERR Background append only file rewriting already in progress");
    }
    if super::in_progress() {
        SCHEDULED.store(true, Ordering::SeqCst);
        return Ok("Background append only file rewriting scheduled");
    }
    let core = core.clone();
    spawn::spawn(async move {
        if let Err(RewriteError::InProgress) = rewrite(&core).await {
            SCHEDULED.store(true, Ordering::SeqCst);
        }
    });
    Ok("Background append only file rewriting started")
}

/// Called by every core's clock: writes and syncs what the pass loop has not (a core with
/// no traffic), retries failed writes; on core 0, starts a scheduled rewrite or one the
/// growth of the log calls for (`auto-aof-rewrite-percentage`, `-min-size`).
pub fn tick(core: &Rc<Core>) {
    if log::active() {
        let _ = log::flush(core, false);
    }
    if core.id != 0 || super::in_progress() {
        return;
    }
    let now = wall_ms() / 1000;
    let retry_ok = LAST_REWRITE_OK.load(Ordering::Relaxed)
        || now.saturating_sub(LAST_REWRITE_FAILURE.load(Ordering::Relaxed)) > RETRY_DELAY_SECS;
    let scheduled = SCHEDULED.load(Ordering::SeqCst) && retry_ok;
    let grown = enabled() && !WAITING_BASE.load(Ordering::Relaxed) && retry_ok && {
        let c = core.config.borrow();
        let pct = c.get_i64("auto-aof-rewrite-percentage").max(0) as u64;
        let min = c.get_i64("auto-aof-rewrite-min-size").max(0) as u64;
        let size = CURRENT_SIZE.load(Ordering::Relaxed);
        let base = REWRITE_BASE_SIZE.load(Ordering::Relaxed).max(1);
        pct > 0 && size > min && (size - base.min(size)) * 100 / base >= pct
    };
    if scheduled || grown {
        if grown {
            info!("Starting automatic rewriting of AOF");
        }
        let core = core.clone();
        SCHEDULED.store(false, Ordering::SeqCst);
        spawn::spawn(async move {
            if let Err(RewriteError::InProgress) = rewrite(&core).await {
                SCHEDULED.store(true, Ordering::SeqCst);
            }
        });
    }
}

/// INFO persistence's AOF fields: its state (after the RDB fields) and, with the log on, its
/// sizes (after the module fields), in Redis's order.
pub fn info() -> (String, String) {
    let rewriting = rewriting();
    let current = if rewriting {
        (wall_ms().saturating_sub(CURRENT_START.load(Ordering::Relaxed)) / 1000) as i64
    } else {
        -1
    };
    let state = format!(
        "aof_enabled:{}\r\naof_rewrite_in_progress:{}\r\naof_rewrite_scheduled:{}\r\naof_last_rewrite_time_sec:{}\r\naof_current_rewrite_time_sec:{current}\r\naof_last_bgrewrite_status:{}\r\naof_rewrites:{}\r\naof_rewrites_consecutive_failures:{}\r\naof_last_write_status:{}\r\naof_last_cow_size:0\r\n",
        u8::from(enabled()),
        u8::from(rewriting),
        u8::from(SCHEDULED.load(Ordering::Relaxed)),
        LAST_REWRITE_SECS.load(Ordering::Relaxed),
        if LAST_REWRITE_OK.load(Ordering::Relaxed) { "ok" } else { "err" },
        REWRITES.load(Ordering::Relaxed),
        CONSECUTIVE_FAILURES.load(Ordering::Relaxed),
        if WRITE_OK.load(Ordering::Relaxed) { "ok" } else { "err" },
    );
    let sizes = if enabled() {
        format!(
            "aof_current_size:{}\r\naof_base_size:{}\r\naof_pending_rewrite:{}\r\naof_buffer_length:0\r\naof_pending_bio_fsync:0\r\naof_delayed_fsync:0\r\n",
            CURRENT_SIZE.load(Ordering::Relaxed),
            BASE_SIZE.load(Ordering::Relaxed),
            u8::from(SCHEDULED.load(Ordering::Relaxed)),
        )
    } else {
        String::new()
    };
    (state, sizes)
}

/// After loading: the sizes of the set in force.
pub(crate) fn loaded_sizes(base: u64, total: u64) {
    BASE_SIZE.store(base, Ordering::Relaxed);
    CURRENT_SIZE.store(total, Ordering::Relaxed);
    REWRITE_BASE_SIZE.store(total, Ordering::Relaxed);
}

/// At start-up, with `appendonly yes`: the log is on from the first command.
pub(crate) fn enable_at_start() {
    ENABLED.store(true, Ordering::SeqCst);
}
