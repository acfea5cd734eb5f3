//! Persistence on the runtime's side: per-shard snapshots written while the shards serve
//! (SAVE, BGSAVE, `save` rules, SHUTDOWN SAVE and SIGTERM), loading them at start-up, and the
//! process-wide status INFO, LASTSAVE and MISCONF report.
//!
//! - `files`: where a snapshot lives in `dir`: one RDB file per shard (each a complete
//!   Redis 7.0 RDB file), named by generation, and a manifest naming the current set;
//! - `save`: taking a snapshot: a consistent cut of every shard under the lock of all of
//!   them, then each core serialises its shard in chunks (see `shardis_engine::snapshot`)
//!   and hands them to a writer thread of its own, which writes, syncs and reports back;
//!   the new set replaces the old one only once every file is durable;
//! - `load`: at start-up every core reads the current set (or a Redis `dump.rdb`) and keeps
//!   the keys it owns, all cores in parallel, whatever the shard count was;
//! - `loading`: the loading state while the server listens (`-LOADING`, INFO's progress).
//!
//! File I/O runs on a blocking thread per shard and per snapshot rather than on the core's
//! ring: it moves large sequential writes and their `fdatasync` off the core entirely, the
//! core only queues chunks (bounded, so memory stays bounded when the disk is slow) and polls
//! for completion from its timer; nothing a thread does touches the shard.

pub mod aof;
pub mod files;
pub mod load;
pub mod loading;
pub mod save;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use crate::core::wall_ms;

/// A snapshot is being taken.
pub(crate) static IN_PROGRESS: AtomicBool = AtomicBool::new(false);
/// Unix seconds of the last successful save (or of the start).
static LAST_SAVE: AtomicU64 = AtomicU64::new(0);
static LAST_OK: AtomicBool = AtomicBool::new(true);
/// Unix seconds of the last failed attempt (the `save` rules wait before retrying).
static LAST_FAILURE: AtomicU64 = AtomicU64::new(0);
/// Seconds the last snapshot took (-1: none yet).
static LAST_DURATION: AtomicI64 = AtomicI64::new(-1);
/// When the running snapshot started (Unix ms).
pub(crate) static CURRENT_START: AtomicU64 = AtomicU64::new(0);
static SAVES: AtomicU64 = AtomicU64::new(0);
/// Write commands are refused (MISCONF): the last save failed, `save` rules exist and
/// `stop-writes-on-bgsave-error` is yes.
static WRITES_REFUSED: AtomicBool = AtomicBool::new(false);
/// A shutdown was asked for by a signal; core 0 saves (if `save` rules exist), then stops.
static SIGNALLED: AtomicBool = AtomicBool::new(false);

/// Redis's reply to write commands while snapshots fail.
pub const MISCONF: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";

/// Records the start time as the last save (Redis's `lastsave` at start-up).
pub fn init() {
    LAST_SAVE.store(wall_ms() / 1000, Ordering::Relaxed);
}

/// Whether write commands must be refused with MISCONF.
#[inline]
pub fn writes_refused() -> bool {
    WRITES_REFUSED.load(Ordering::Relaxed)
}

pub fn in_progress() -> bool {
    IN_PROGRESS.load(Ordering::SeqCst)
}

pub fn last_save() -> u64 {
    LAST_SAVE.load(Ordering::Relaxed)
}

/// Whether the last snapshot succeeded, and how many were taken since the start.
pub fn last_outcome() -> (bool, u64) {
    (
        LAST_OK.load(Ordering::Relaxed),
        SAVES.load(Ordering::Relaxed),
    )
}

/// A signal asked the server to stop.
pub fn signal_shutdown() {
    SIGNALLED.store(true, Ordering::SeqCst);
}

pub fn shutdown_signalled() -> bool {
    SIGNALLED.load(Ordering::SeqCst)
}

/// INFO's persistence section (without `rdb_changes_since_last_save`'s value, given).
pub fn info(changes: u64) -> String {
    let now = wall_ms();
    // A rewrite of the append-only log uses the same machinery; it is not a BGSAVE.
    let running = in_progress() && !aof::rewriting();
    let current = if running {
        (now.saturating_sub(CURRENT_START.load(Ordering::Relaxed)) / 1000) as i64
    } else {
        -1
    };
    let (aof_state, aof_sizes) = aof::info();
    let (loading, progress) = loading::info();
    format!(
        "loading:{loading}\r\nasync_loading:0\r\ncurrent_cow_peak:0\r\ncurrent_cow_size:0\r\ncurrent_cow_size_age:0\r\ncurrent_fork_perc:0.00\r\ncurrent_save_keys_processed:0\r\ncurrent_save_keys_total:0\r\nrdb_changes_since_last_save:{changes}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:{}\r\nrdb_last_bgsave_time_sec:{}\r\nrdb_current_bgsave_time_sec:{current}\r\nrdb_saves:{}\r\nrdb_last_cow_size:0\r\nrdb_last_load_keys_expired:{}\r\nrdb_last_load_keys_loaded:{}\r\n{aof_state}module_fork_in_progress:0\r\nmodule_fork_last_cow_size:0\r\n{aof_sizes}{progress}",
        u8::from(running),
        last_save(),
        if LAST_OK.load(Ordering::Relaxed) { "ok" } else { "err" },
        LAST_DURATION.load(Ordering::Relaxed),
        SAVES.load(Ordering::Relaxed),
        load::KEYS_EXPIRED.load(Ordering::Relaxed),
        load::KEYS_LOADED.load(Ordering::Relaxed),
    )
}
