//! Taking a snapshot of every shard: the cut, each core's serialisation and writer thread,
//! and the switch to the new set of files. Also the `save` rules and the save before a
//! shutdown, both driven from core 0's clock.

use std::cell::Cell;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, SyncSender, TryRecvError, TrySendError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use shardis_engine::snapshot::ShardSnapshot;
use shardis_persist::crc::Crc64;
use shardis_persist::rdb::{opcodes, Writer};
use tracing::{info, warn};

use super::aof::files::Layout;
use super::files::{self, Manifest};
use super::{
    CURRENT_START, IN_PROGRESS, LAST_DURATION, LAST_FAILURE, LAST_OK, LAST_SAVE, SAVES,
    WRITES_REFUSED,
};
use crate::coord::txn::{self, TxId};
use crate::core::{request_shutdown, spawn, wall_ms, Answer, Core};
use crate::script;

/// Bytes serialised per step before the core turns to other work.
const CHUNK: usize = 256 << 10;
/// Chunks queued for a writer thread at most (bounds memory when the disk is slow).
const QUEUED_CHUNKS: usize = 8;
/// A failed save is retried by the `save` rules only after this long (Redis's).
const RETRY_DELAY_SECS: u64 = 5;

thread_local! {
    /// This core's write count when its shard's running snapshot began.
    static DIRTY_BEFORE: Cell<u64> = const { Cell::new(0) };
}

/// Why a snapshot was not taken.
#[derive(Debug)]
pub enum SaveError {
    InProgress,
    Failed(String),
}

/// Takes a snapshot of every shard and makes it the current set; completes once it is
/// durable. `tx`: the transaction the caller runs in (SAVE inside MULTI), whose locks are
/// already held; otherwise the cut is taken under the lock of every shard, so no transaction
/// is half in it.
pub async fn save(core: &Rc<Core>, tx: Option<TxId>) -> Result<(), SaveError> {
    if IN_PROGRESS
        .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        return Err(SaveError::InProgress);
    }
    CURRENT_START.store(wall_ms(), Ordering::Relaxed);
    let started = Instant::now();
    let result = take(core, tx).await;
    let now = wall_ms() / 1000;
    LAST_DURATION.store(started.elapsed().as_secs() as i64, Ordering::Relaxed);
    let (rules, stop_writes) = {
        let c = core.config.borrow();
        (
            !c.get("save").trim().is_empty(),
            c.get("stop-writes-on-bgsave-error") == "yes",
        )
    };
    match &result {
        Ok(()) => {
            LAST_SAVE.store(now, Ordering::Relaxed);
            LAST_OK.store(true, Ordering::Relaxed);
            SAVES.fetch_add(1, Ordering::Relaxed);
            WRITES_REFUSED.store(false, Ordering::Relaxed);
            info!("DB saved on disk");
        }
        Err(e) => {
            LAST_OK.store(false, Ordering::Relaxed);
            LAST_FAILURE.store(now, Ordering::Relaxed);
            WRITES_REFUSED.store(rules && stop_writes, Ordering::Relaxed);
            warn!("Background saving error: {e}");
        }
    }
    IN_PROGRESS.store(false, Ordering::SeqCst);
    result.map_err(SaveError::Failed)
}

async fn take(core: &Rc<Core>, tx: Option<TxId>) -> Result<(), String> {
    let dbfilename = core.config.borrow().get("dbfilename").to_string();
    let old = files::read_manifest(&dbfilename).map_err(|e| e.to_string())?;
    let generation = old.as_ref().map_or(1, |m| m.generation + 1);
    let shards = core.shards;
    let temps = cut_and_write(core, tx, generation, Target::Rdb).await?;
    // 3. The new set replaces the old one.
    let manifest = Manifest {
        generation,
        files: (0..shards)
            .map(|i| files::shard_file(&dbfilename, generation, i, shards))
            .collect(),
    };
    for (t, f) in temps.iter().zip(&manifest.files) {
        std::fs::rename(t, f).map_err(|e| format!("rename {} to {f}: {e}", t.display()))?;
    }
    files::publish(&dbfilename, &manifest).map_err(|e| e.to_string())?;
    files::remove_old(old.as_ref(), &manifest);
    // Writes made since the cut are the changes since this save.
    core.broadcast(|c| {
        let mut shard = c.shard.borrow_mut();
        shard.dirty = shard.dirty.saturating_sub(DIRTY_BEFORE.get());
    })
    .await;
    Ok(())
}

/// What a snapshot is written as: the RDB set of `dbfilename`, or the base files of a new
/// append-only set (whose incremental files start at the cut when the log is on: `true`).
#[derive(Clone)]
pub enum Target {
    Rdb,
    AofBase(Layout, bool),
}

impl Target {
    fn temp(&self, generation: u64, shard: usize) -> PathBuf {
        match self {
            Target::Rdb => PathBuf::from(files::temp_file(generation, shard)),
            Target::AofBase(l, _) => l.path(&l.temp_base(generation, shard)),
        }
    }
}

/// The first two steps of every snapshot: the cut (every shard starts its snapshot while
/// none is inside a transaction), then every shard writes and syncs its temporary file.
/// Returns the files in shard order; on failure none is left behind.
pub async fn cut_and_write(
    core: &Rc<Core>,
    tx: Option<TxId>,
    generation: u64,
    target: Target,
) -> Result<Vec<PathBuf>, String> {
    let shards = core.shards;
    let held = match tx {
        Some(_) => None,
        None => Some(txn::lock(core, txn::plan_all(shards)).await),
    };
    let mut pending = Vec::with_capacity(shards);
    for shard in 0..shards {
        let (answer, rx) = core.answer_channel::<Result<(), String>>();
        let target = target.clone();
        core.run_on(shard, move |c| begin(c, generation, target, answer))
            .await;
        pending.push(rx);
    }
    if let Some(held) = held {
        txn::unlock(core, held).await;
    }
    let mut errors = Vec::new();
    for rx in pending {
        match rx.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errors.push(e),
            Err(_) => errors.push("a shard stopped during the save".to_string()),
        }
    }
    let temps: Vec<PathBuf> = (0..shards).map(|i| target.temp(generation, i)).collect();
    if !errors.is_empty() {
        for t in &temps {
            let _ = std::fs::remove_file(t);
        }
        return Err(errors.join("; "));
    }
    Ok(temps)
}

/// On each shard, at the cut: starts its snapshot and the task that writes it.
fn begin(c: &Rc<Core>, generation: u64, target: Target, answer: Answer<Result<(), String>>) {
    let compress = c.config.borrow().get("rdbcompression") == "yes";
    // A new log starts exactly at the cut: the base holds everything before it.
    if let Target::AofBase(layout, true) = &target {
        if let Err(e) = super::aof::start_incr(c, layout, generation) {
            c.answer(answer, Err(e));
            return;
        }
    }
    let snap = {
        let mut shard = c.shard.borrow_mut();
        DIRTY_BEFORE.set(shard.dirty);
        shard.snapshot_begin(compress)
    };
    let core = c.clone();
    spawn::spawn(async move {
        let result = write_shard(&core, snap, target.temp(generation, core.id), &target).await;
        if result.is_err() {
            core.shard.borrow_mut().snapshot_abort();
        }
        core.answer(answer, result);
    });
}

/// The header and aux fields of a shard's file; shard 0's also carries the function
/// libraries' code, where Redis 7.0 writes them (before the databases). Every core holds the
/// same libraries (decided on core 0), so one copy is written.
fn header(core: &Core, target: &Target) -> Vec<u8> {
    rdb_header(
        core,
        matches!(target, Target::AofBase(..)),
        true,
        core.id == 0,
    )
}

/// An RDB's header and Redis's aux fields (`aof-base` as said); `shard_fields`: also which
/// shard of how many the file holds (Shardis's own aux fields, which Redis skips);
/// `functions`: then the function libraries' code.
pub fn rdb_header(core: &Core, aof_base: bool, shard_fields: bool, functions: bool) -> Vec<u8> {
    let compress = core.config.borrow().get("rdbcompression") == "yes";
    let mut out = Vec::new();
    let mut w = Writer::new(&mut out, compress);
    w.header();
    w.aux(b"redis-ver", crate::REDIS_VERSION.as_bytes());
    w.aux(b"redis-bits", b"64");
    w.aux(b"ctime", (wall_ms() / 1000).to_string().as_bytes());
    w.aux(
        b"used-mem",
        crate::alloc::allocated_here().max(0).to_string().as_bytes(),
    );
    w.aux(b"aof-base", if aof_base { b"1" } else { b"0" });
    if shard_fields {
        w.aux(b"shardis-shard", core.id.to_string().as_bytes());
        w.aux(b"shardis-shards", core.shards.to_string().as_bytes());
    }
    if functions {
        let functions: Vec<Bytes> =
            script::state::with(|s| s.libraries.iter().map(|l| l.code.clone()).collect());
        for code in &functions {
            w.byte(opcodes::FUNCTION2);
            w.string(code);
        }
    }
    out
}

/// Serialises this core's shard in chunks and has a thread write them to the shard's
/// temporary file; completes once the file is synced.
async fn write_shard(
    core: &Rc<Core>,
    mut snap: ShardSnapshot,
    path: PathBuf,
    target: &Target,
) -> Result<(), String> {
    let (chunks, queue) = mpsc::sync_channel::<Vec<u8>>(QUEUED_CHUNKS);
    let (done_tx, done) = mpsc::channel::<io::Result<()>>();
    std::thread::Builder::new()
        .name(format!("save-{}", core.id))
        .spawn(move || {
            let _ = done_tx.send(write_file(&path, queue));
        })
        .map_err(|e| format!("cannot start a writer thread: {e}"))?;
    let mut crc = Crc64::default();
    let mut sent = send(core, &chunks, &mut crc, header(core, target)).await;
    if sent {
        sent = stream_body(core, &mut snap, &chunks, &mut crc).await;
    }
    if sent {
        let mut tail = vec![opcodes::EOF];
        crc.update(&tail);
        tail.extend_from_slice(&crc.value().to_le_bytes());
        sent = send(core, &chunks, &mut Crc64::default(), tail).await;
    }
    drop(chunks);
    loop {
        match done.try_recv() {
            Ok(Ok(())) if sent => return Ok(()),
            Ok(Ok(())) => return Err("the writer stopped early".into()),
            Ok(Err(e)) => return Err(format!("writing the snapshot: {e}")),
            Err(TryRecvError::Empty) => core.sleep(Duration::from_millis(1)).await,
            Err(TryRecvError::Disconnected) => return Err("the writer thread died".into()),
        }
    }
}

/// Serialises the rest of this core's shard snapshot in chunks into `to` (waiting while it is
/// full), yielding to other work between chunks; false if the reader has gone.
pub(crate) async fn stream_body(
    core: &Core,
    snap: &mut ShardSnapshot,
    to: &SyncSender<Vec<u8>>,
    crc: &mut Crc64,
) -> bool {
    loop {
        let mut buf = Vec::with_capacity(CHUNK + (CHUNK >> 2));
        let complete = core.shard.borrow_mut().snapshot_step(snap, &mut buf, CHUNK);
        if !send(core, to, crc, buf).await {
            return false;
        }
        if complete {
            return true;
        }
        futures_lite::future::yield_now().await;
    }
}

/// Writes this core's whole shard to `path` as one RDB file and syncs it, serving nothing
/// meanwhile (at start-up, before the core listens: the base of a new append-only set).
/// Returns the file's size.
pub fn write_blocking(core: &Core, path: &Path, target: &Target) -> Result<u64, String> {
    let fail = |e: io::Error| format!("writing {}: {e}", path.display());
    let compress = core.config.borrow().get("rdbcompression") == "yes";
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(fail)?;
    let mut crc = Crc64::default();
    let mut size = 0u64;
    let mut put = |chunk: &[u8]| -> io::Result<()> {
        crc.update(chunk);
        size += chunk.len() as u64;
        f.write_all(chunk)
    };
    put(&header(core, target)).map_err(fail)?;
    {
        let mut shard = core.shard.borrow_mut();
        let mut snap = shard.snapshot_begin(compress);
        loop {
            let mut buf = Vec::with_capacity(CHUNK + (CHUNK >> 2));
            let complete = shard.snapshot_step(&mut snap, &mut buf, CHUNK);
            put(&buf).map_err(fail)?;
            if complete {
                break;
            }
        }
    }
    let mut tail = vec![opcodes::EOF];
    crc.update(&tail);
    tail.extend_from_slice(&crc.value().to_le_bytes());
    size += tail.len() as u64;
    f.write_all(&tail).map_err(fail)?;
    f.sync_data().map_err(fail)?;
    Ok(size)
}

/// Queues a chunk for the writer, waiting while the queue is full; false if the writer has
/// stopped (it failed).
async fn send(core: &Core, to: &SyncSender<Vec<u8>>, crc: &mut Crc64, chunk: Vec<u8>) -> bool {
    crc.update(&chunk);
    let mut chunk = chunk;
    loop {
        match to.try_send(chunk) {
            Ok(()) => return true,
            Err(TrySendError::Full(c)) => {
                chunk = c;
                core.sleep(Duration::from_millis(1)).await;
            }
            Err(TrySendError::Disconnected(_)) => return false,
        }
    }
}

/// The writer thread: writes the chunks in order, then syncs the data.
fn write_file(path: &Path, chunks: mpsc::Receiver<Vec<u8>>) -> io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    for chunk in chunks {
        f.write_all(&chunk)?;
    }
    f.sync_data()
}

/// The `save` rules: pairs of (seconds, changes).
pub fn save_points(value: &str) -> Vec<(u64, u64)> {
    let nums: Vec<u64> = value
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    nums.chunks_exact(2).map(|p| (p[0], p[1])).collect()
}

/// A save rule check or the shutdown save is running.
static CLOCK_JOB: AtomicBool = AtomicBool::new(false);
/// BGSAVE SCHEDULE came during an append-only log rewrite: saved once it is over.
static SCHEDULED: AtomicBool = AtomicBool::new(false);

/// Has the clock take a snapshot once the running rewrite is over (BGSAVE SCHEDULE).
pub fn schedule() {
    SCHEDULED.store(true, Ordering::SeqCst);
}

/// Called by core 0's clock: the save before a shutdown asked for by a signal, and the
/// `save` rules (a snapshot once a rule's changes happened within its seconds).
pub fn tick(core: &Rc<Core>) {
    if core.id != 0 || CLOCK_JOB.swap(true, Ordering::SeqCst) {
        return;
    }
    let points = save_points(core.config.borrow().get("save"));
    let core = core.clone();
    if super::shutdown_signalled() {
        spawn::spawn(async move {
            if !points.is_empty() {
                warn!("Received SIGTERM scheduling shutdown...");
                if let Err(e) = save(&core, None).await {
                    warn!("Error trying to save the DB before exiting: {e:?}");
                }
            }
            request_shutdown();
        });
        return;
    }
    if (points.is_empty() && !SCHEDULED.load(Ordering::SeqCst)) || super::in_progress() {
        CLOCK_JOB.store(false, Ordering::SeqCst);
        return;
    }
    spawn::spawn(async move {
        if SCHEDULED.swap(false, Ordering::SeqCst) {
            if let Err(SaveError::InProgress) = save(&core, None).await {
                SCHEDULED.store(true, Ordering::SeqCst);
            }
        }
        let now = wall_ms() / 1000;
        let since_save = now.saturating_sub(super::last_save());
        let retry_ok = LAST_OK.load(Ordering::Relaxed)
            || now.saturating_sub(LAST_FAILURE.load(Ordering::Relaxed)) > RETRY_DELAY_SECS;
        if retry_ok {
            let changes: u64 = core
                .broadcast(|c| c.shard.borrow().dirty)
                .await
                .into_iter()
                .sum();
            if points
                .iter()
                .any(|&(secs, n)| changes >= n && since_save >= secs)
            {
                info!("{changes} changes in {since_save} seconds. Saving...");
                let _ = save(&core, None).await;
            }
        }
        CLOCK_JOB.store(false, Ordering::SeqCst);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_points_parse_as_pairs() {
        assert_eq!(save_points(""), vec![]);
        assert_eq!(save_points("3600 1 300 100"), vec![(3600, 1), (300, 100)]);
    }
}
