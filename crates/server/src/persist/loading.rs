//! The loading state: while shards load their data (at start-up, or a replica's full sync)
//! the server already listens, and answers what Redis answers while it loads: commands the
//! command table flags `loading` (INFO, CONFIG, SHUTDOWN…) run, every other one gets
//! `-LOADING`; INFO persistence says `loading:1` with the progress fields.
//!
//! Loading is process-wide: it starts for all cores at once and ends when the last core is
//! done, so a command routed to any shard sees one state. The loaders yield to the core's
//! event loop every `loading-process-events-interval-bytes` bytes they read ([`Slice`]), as
//! Redis processes events while it loads.

use std::cell::Cell;
use std::fs::File;
use std::io::{BufReader, Read};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use shardis_engine::command::Flags;
use shardis_engine::{Command, Exec, ServerCmd};
use shardis_resp::Reply;

use crate::conn::session::Session;
use crate::core::wall_ms;

/// Redis's reply to a command refused while loading.
pub const LOADING_ERR: &str = "LOADING Redis is loading the dataset in memory";

/// `loading-process-events-interval-bytes`: bytes a loader reads before the core serves its
/// clients again.
static INTERVAL_BYTES: AtomicU64 = AtomicU64::new(2 << 20);
/// The most a loader reads from its file at once.
const MAX_READ: u64 = 1 << 20;

thread_local! {
    /// Bytes this core's loaders have read.
    static READ_HERE: Cell<u64> = const { Cell::new(0) };
}

/// `key-load-delay`, a knob of Redis's tests that makes loading slow: microseconds to sleep
/// after each key loaded; -N sleeps 1 µs after one key in N (Redis: with probability 1/N).
static KEY_LOAD_DELAY: AtomicI64 = AtomicI64::new(0);

/// Cores still loading (0: not loading).
static CORES: AtomicUsize = AtomicUsize::new(0);
/// When loading began (Unix seconds).
static START: AtomicU64 = AtomicU64::new(0);
/// Bytes of the files to read, over all cores (a file every core reads counts once per core).
static TOTAL_BYTES: AtomicU64 = AtomicU64::new(0);
static LOADED_BYTES: AtomicU64 = AtomicU64::new(0);
/// The `used-mem` recorded in the RDB files read (Redis's `loading_rdb_used_mem`).
static RDB_USED_MEM: AtomicU64 = AtomicU64::new(0);

/// Takes `loading-process-events-interval-bytes` and `key-load-delay` from the configuration
/// (at start-up and after CONFIG SET; a load in progress sees a change from its next slice).
pub fn configure(config: &crate::config::Config) {
    let bytes = config
        .get_i64("loading-process-events-interval-bytes")
        .max(1) as u64;
    INTERVAL_BYTES.store(bytes, Ordering::Relaxed);
    KEY_LOAD_DELAY.store(config.get_i64("key-load-delay"), Ordering::Relaxed);
}

pub fn key_load_delay() -> i64 {
    KEY_LOAD_DELAY.load(Ordering::Relaxed)
}

/// The pause after the `n`th key loaded under `key-load-delay` `delay` (not 0).
pub fn pause_after_key(delay: i64, n: u64) {
    let usec = if delay > 0 {
        delay.unsigned_abs()
    } else {
        u64::from(n.is_multiple_of(delay.unsigned_abs()))
    };
    if usec > 0 {
        std::thread::sleep(Duration::from_micros(usec));
    }
}

/// Loading begins on `cores` cores; each calls [`core_done`] when it has loaded.
pub fn begin(cores: usize) {
    START.store(wall_ms() / 1000, Ordering::SeqCst);
    TOTAL_BYTES.store(0, Ordering::SeqCst);
    LOADED_BYTES.store(0, Ordering::SeqCst);
    RDB_USED_MEM.store(0, Ordering::SeqCst);
    CORES.store(cores, Ordering::SeqCst);
}

/// One core finished loading (successfully or not).
pub fn core_done() {
    let _ = CORES.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
}

/// Whether the server is loading its data set.
#[inline]
pub fn active() -> bool {
    CORES.load(Ordering::Relaxed) != 0
}

/// A core is about to read `bytes` more.
pub fn add_total(bytes: u64) {
    TOTAL_BYTES.fetch_add(bytes, Ordering::Relaxed);
}

/// An RDB file read records this `used-mem`.
pub fn add_rdb_used_mem(bytes: u64) {
    RDB_USED_MEM.fetch_add(bytes, Ordering::Relaxed);
}

/// `-LOADING` for a command not allowed while loading, as Redis's `processCommand`: one
/// without the `loading` flag, or EXEC of a transaction holding one; a refused command
/// inside MULTI fails the transaction, a refused EXEC discards it.
#[inline]
pub fn refuse(session: &mut Session, cmd: &Command) -> Option<Reply> {
    if !active() {
        return None;
    }
    let denied = !cmd.flags.has(Flags::LOADING)
        || matches!(cmd.exec, Exec::Server(ServerCmd::Exec))
            && session
                .multi
                .as_ref()
                .is_some_and(|m| m.queued.iter().any(|(c, _)| !c.flags.has(Flags::LOADING)));
    denied.then(|| crate::script::busy::reject(session, cmd, Reply::err(LOADING_ERR)))
}

/// INFO persistence's `loading` field and, while loading, the progress fields after the
/// section's others (Redis's layout and arithmetic: the ETA from the rate so far).
pub fn info() -> (u8, String) {
    if !active() {
        return (0, String::new());
    }
    let fields = progress(
        START.load(Ordering::Relaxed),
        TOTAL_BYTES.load(Ordering::Relaxed),
        RDB_USED_MEM.load(Ordering::Relaxed),
        LOADED_BYTES.load(Ordering::Relaxed),
        wall_ms() / 1000,
    );
    (1, fields)
}

/// The progress fields from the counts (Redis's arithmetic: the percentage of the files'
/// bytes, or of the recorded `used-mem` when no size is known; the ETA from the rate so far).
fn progress(start: u64, total: u64, used_mem: u64, loaded: u64, now_secs: u64) -> String {
    let (mut perc, mut remaining) = (0.0, 1u64);
    if total > 0 {
        perc = loaded as f64 / total as f64 * 100.0;
        remaining = total.saturating_sub(loaded);
    } else if used_mem > 0 {
        perc = (loaded as f64 / used_mem as f64 * 100.0).min(99.99);
        remaining = used_mem.saturating_sub(loaded).max(1);
    }
    let elapsed = now_secs.saturating_sub(start);
    let eta = if elapsed == 0 {
        1
    } else {
        elapsed.saturating_mul(remaining) / loaded.saturating_add(1)
    };
    format!(
        "loading_start_time:{start}\r\nloading_total_bytes:{total}\r\nloading_rdb_used_mem:{used_mem}\r\nloading_loaded_bytes:{loaded}\r\nloading_loaded_perc:{perc:.2}\r\nloading_eta_seconds:{eta}\r\n"
    )
}

/// A file being loaded: what is read from it counts as loaded bytes.
pub struct Counted<R>(pub R);

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.read(buf)?;
        LOADED_BYTES.fetch_add(n as u64, Ordering::Relaxed);
        READ_HERE.with(|r| r.set(r.get() + n as u64));
        Ok(n)
    }
}

/// `file`, read for loading: counted, in reads no larger than the interval between event
/// passes (so a small interval is kept to), 1 MiB at most.
pub fn reader(file: File) -> BufReader<Counted<File>> {
    let size = INTERVAL_BYTES.load(Ordering::Relaxed).min(MAX_READ) as usize;
    BufReader::with_capacity(size, Counted(file))
}

/// A loader's slice of work: `due` once it has read the interval's bytes since it began.
pub struct Slice {
    start: u64,
}

impl Slice {
    pub fn start() -> Slice {
        Slice {
            start: READ_HERE.with(Cell::get),
        }
    }

    pub fn due(&self) -> bool {
        READ_HERE.with(Cell::get).saturating_sub(self.start)
            >= INTERVAL_BYTES.load(Ordering::Relaxed)
    }

    /// Lets the core's event loop run a pass, then starts a new slice.
    pub async fn pause(&mut self) {
        futures_lite::future::yield_now().await;
        *self = Slice::start();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slice_lasts_the_interval_in_bytes_read() {
        let data = vec![7u8; 10_000];
        INTERVAL_BYTES.store(4096, Ordering::Relaxed);
        let mut r = Counted(&data[..]);
        let slice = Slice::start();
        let mut buf = [0u8; 1000];
        for _ in 0..4 {
            r.read_exact(&mut buf).expect("read");
        }
        assert!(!slice.due(), "4000 bytes of 4096");
        r.read_exact(&mut buf).expect("read");
        assert!(slice.due());
        assert!(!Slice::start().due(), "a new slice starts from nothing");
        INTERVAL_BYTES.store(2 << 20, Ordering::Relaxed);
    }

    #[test]
    fn progress_fields_follow_redis() {
        let fields = progress(100, 1000, 0, 250, 102);
        assert_eq!(
            fields,
            "loading_start_time:100\r\nloading_total_bytes:1000\r\nloading_rdb_used_mem:0\r\nloading_loaded_bytes:250\r\nloading_loaded_perc:25.00\r\nloading_eta_seconds:5\r\n"
        );
        // No size known: the percentage of used-mem, never 100.
        let fields = progress(100, 0, 200, 500, 100);
        assert!(fields.contains("loading_loaded_perc:99.99\r\n"), "{fields}");
        assert!(fields.contains("loading_eta_seconds:1\r\n"), "{fields}");
    }
}
