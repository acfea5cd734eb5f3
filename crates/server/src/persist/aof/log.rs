//! One core's incremental log file: the records its shard's journal collected, appended once
//! per event-loop pass, and synced by the `appendfsync` policy.
//!
//! - `always`: group commit without blocking the core. Each pass writes the records its
//!   commands produced and, when no sync is in flight, queues one `fdatasync` on the core's
//!   io_uring ring covering everything written so far: one sync generation. The replies the
//!   pass hands out, and every message to another core (`core::mesh`), wait for the
//!   generation that covers the records of the commands before them (`Pass::wait`); the
//!   event loop sends them when that generation completes. Records written while a sync is
//!   in flight form the next generation, queued when it completes: many clients' writes
//!   share one sync, and the core serves on meanwhile.
//! - `everysec`: written every pass, synced about once a second by the sync thread (Redis's
//!   background fsync), so the core never waits for the disk.
//! - `no`: written every pass; the kernel syncs when it likes.
//!
//! A failed write or sync is Redis's: under `always` the server exits (replies waiting for
//! it were never sent); otherwise the records are kept, retried, and writes are refused with
//! MISCONF until a write succeeds again.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tracing::{error, warn};

use super::{Fsync, CURRENT_SIZE};
use crate::core::Core;

/// The file a core appends to.
pub struct Log {
    file: Arc<File>,
    /// Its name in the manifest.
    pub name: String,
    /// Bytes in the file that are records.
    size: u64,
    /// Records not yet written (after a failed write).
    pending: Vec<u8>,
    /// Written since the last sync.
    unsynced: bool,
    last_sync: Instant,
    last_warning: Option<Instant>,
}

thread_local! {
    static LOG: RefCell<Option<Log>> = const { RefCell::new(None) };
    static GROUP: RefCell<Group> = RefCell::new(Group::default());
}

/// The sync generations of one core under `always`: generation `g` is durable once every
/// record written before its sync was queued is on disk.
#[derive(Default)]
struct Group {
    /// Every generation up to this one is durable.
    durable: u64,
    /// The generation of the records written since the last sync was queued.
    next: u64,
    /// Records of generation `next` are written and not yet covered by a queued sync.
    dirty: bool,
    /// The sync in flight on the ring, and its file (kept open until it completes: the ring
    /// names it by descriptor).
    inflight: Option<(u64, Option<Arc<File>>)>,
}

impl Group {
    /// The generation the next sync will cover (generations start at 1).
    fn next(&self) -> u64 {
        self.next.max(self.durable + 1)
    }

    /// Records were written.
    fn wrote(&mut self) {
        if !self.dirty {
            self.next = self.next();
            self.dirty = true;
        }
    }

    /// A sync is due: records are waiting and no sync is in flight.
    fn due(&self) -> bool {
        self.dirty && self.inflight.is_none()
    }

    /// The generation of a sync to queue now, if one is due.
    fn start(&mut self, file: Option<Arc<File>>) -> Option<u64> {
        if !self.due() {
            return None;
        }
        let generation = self.next();
        self.next = generation + 1;
        self.dirty = false;
        self.inflight = Some((generation, file));
        Some(generation)
    }

    /// What output produced up to now waits for: the generation covering every record
    /// written so far (the durable one when nothing is waiting).
    fn wait(&self) -> u64 {
        match &self.inflight {
            _ if self.dirty => self.next(),
            Some((g, _)) => (*g).max(self.durable),
            None => self.durable,
        }
    }

    /// The sync of `generation` completed.
    fn synced(&mut self, generation: u64) {
        self.durable = self.durable.max(generation);
        if self
            .inflight
            .as_ref()
            .is_some_and(|(g, _)| *g == generation)
        {
            self.inflight = None;
        }
    }

    /// A blocking sync covered every record written so far.
    fn synced_all(&mut self) {
        let covered = if self.dirty {
            self.next()
        } else {
            self.next().saturating_sub(1)
        };
        self.dirty = false;
        self.durable = self.durable.max(covered);
        self.next = self.durable + 1;
    }
}

/// Where the log stands for a pass of the event loop (under `always`).
pub struct Pass {
    /// The generation the output produced so far must wait for.
    pub wait: u64,
    /// Every generation up to this one is durable.
    pub durable: u64,
}

/// Opens (creating it if needed) `path` for appending.
pub fn open(path: &Path, name: String) -> io::Result<Log> {
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)?;
    let size = file.metadata()?.len();
    Ok(Log {
        file: Arc::new(file),
        name,
        size,
        pending: Vec::new(),
        unsynced: false,
        last_sync: Instant::now(),
        last_warning: None,
    })
}

/// Whether this core keeps a log.
pub fn active() -> bool {
    LOG.with(|l| l.borrow().is_some())
}

/// The name of this core's current incremental file.
pub fn current_name() -> Option<String> {
    LOG.with(|l| l.borrow().as_ref().map(|l| l.name.clone()))
}

/// Makes `log` this core's log (the previous one is returned, written and synced).
pub fn install(core: &Core, log: Option<Log>) -> io::Result<Option<Log>> {
    // What the journal holds so far belongs to the old file.
    flush(core, true)?;
    Ok(LOG.with(|l| std::mem::replace(&mut *l.borrow_mut(), log)))
}

/// Writes what the journal collected; syncs as the policy (or `force_sync`) says, except
/// that under `always` the sync is left to the event loop's next pass (see [`pass`]). Called
/// by the clock and before a log is switched or closed.
pub fn flush(core: &Core, force_sync: bool) -> io::Result<()> {
    let policy = super::fsync_policy();
    let result = LOG.with(|l| -> io::Result<()> {
        let mut guard = l.borrow_mut();
        let Some(log) = guard.as_mut() else {
            return Ok(());
        };
        write_journal(core, log, policy)?;
        if log.unsynced {
            match policy {
                _ if force_sync => {
                    log.sync()?;
                    GROUP.with(|g| g.borrow_mut().synced_all());
                }
                Fsync::Always => {}
                Fsync::Everysec if log.last_sync.elapsed() >= Duration::from_secs(1) => {
                    if background_sync(log.file.clone()) {
                        log.unsynced = false;
                        log.last_sync = Instant::now();
                    }
                }
                Fsync::Everysec | Fsync::No => {}
            }
        }
        Ok(())
    });
    if let Err(e) = &result {
        super::write_failed(e);
    }
    core.mesh.release(GROUP.with(|g| g.borrow().durable));
    result
}

/// At the start of every event-loop pass: writes what the journal collected and, under
/// `always`, asks for the sync of a new generation when one is due (`submit` queues it on the
/// ring; when it cannot, the sync is done here). The messages to other cores sent so far
/// wait for the generation covering their commands' records.
pub fn pass(core: &Core, submit: impl FnOnce(RawFd, u64) -> bool) -> Pass {
    let policy = super::fsync_policy();
    core.mesh
        .set_hold(policy == Fsync::Always && super::enabled());
    // A failed write is recorded by `flush` (under `always` it exits).
    let _ = flush(core, false);
    let (wait, durable) = GROUP.with(|g| {
        let mut g = g.borrow_mut();
        let file = if g.due() {
            LOG.with(|l| l.borrow().as_ref().map(|l| l.file.clone()))
        } else {
            None
        };
        if let Some(generation) = g.start(file.clone()) {
            let queued = file.is_some_and(|f| submit(f.as_raw_fd(), generation));
            if !queued {
                // No ring entry free: the sync is done here, blocking.
                let synced = LOG.with(|l| match l.borrow_mut().as_mut() {
                    Some(log) => log.sync(),
                    None => Ok(()),
                });
                if let Err(e) = synced {
                    fsync_failed(&e);
                }
                g.synced(generation);
            }
        }
        (g.wait(), g.durable)
    });
    core.mesh.seal(wait);
    core.mesh.release(durable);
    Pass { wait, durable }
}

/// The ring's sync of `generation` completed with `result` (0, or a negated errno).
pub fn synced(core: &Core, generation: u64, result: i32) {
    if result < 0 {
        fsync_failed(&io::Error::from_raw_os_error(-result));
    }
    // (`unsynced` stays: records may have been written after this sync was queued, and a
    // switch or close syncs them itself.)
    let durable = GROUP.with(|g| {
        let mut g = g.borrow_mut();
        g.synced(generation);
        g.durable
    });
    core.mesh.release(durable);
}

/// Redis's answer to a failed sync under `always`: the replies waiting for it are never
/// sent, the server exits.
fn fsync_failed(e: &io::Error) -> ! {
    error!(
        "Can't persist AOF for fsync error when the AOF fsync policy is 'always': {e}. Exiting..."
    );
    std::process::exit(1);
}

/// Moves the journal's records to the log's pending bytes and writes them.
fn write_journal(core: &Core, log: &mut Log, policy: Fsync) -> io::Result<()> {
    {
        let mut shard = core.shard.borrow_mut();
        shard.journal_reaped();
        if let Some(j) = shard.journal.as_mut() {
            if j.oversized > 0 {
                return Err(io::Error::other("a record larger than 4 GiB"));
            }
            if log.pending.is_empty() {
                log.pending = j.take();
            } else {
                log.pending.append(&mut j.buf);
            }
        }
    }
    if log.pending.is_empty() {
        return Ok(());
    }
    if let Err(e) = log.write() {
        if policy == Fsync::Always {
            error!("Can't recover from AOF write error when the AOF fsync policy is 'always'. Exiting... ({e})");
            std::process::exit(1);
        }
        let now = Instant::now();
        if log
            .last_warning
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
        {
            warn!("Error writing to the AOF file: {e}");
            log.last_warning = Some(now);
        }
        return Err(e);
    }
    super::write_ok();
    if policy == Fsync::Always {
        GROUP.with(|g| g.borrow_mut().wrote());
    }
    Ok(())
}

impl Log {
    fn write(&mut self) -> io::Result<()> {
        let mut f = &*self.file;
        if let Err(e) = f.write_all(&self.pending) {
            // A partial write is cut off, so the file ends on a whole record; the records stay
            // pending for the next attempt.
            if let Err(t) = self.file.set_len(self.size) {
                error!("Could not remove the partial record from the AOF file after a failed write ({t}); exiting rather than log a damaged record");
                std::process::exit(1);
            }
            return Err(e);
        }
        let n = self.pending.len() as u64;
        self.size += n;
        CURRENT_SIZE.fetch_add(n, Ordering::Relaxed);
        self.pending.clear();
        self.unsynced = true;
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()?;
        self.unsynced = false;
        self.last_sync = Instant::now();
        Ok(())
    }
}

/// Queues a sync of `file` on the sync thread; false if it is busy (the next second tries
/// again, as Redis postpones an fsync while one is running).
fn background_sync(file: Arc<File>) -> bool {
    static SYNCER: OnceLock<Option<SyncSender<Arc<File>>>> = OnceLock::new();
    let sender = SYNCER.get_or_init(|| {
        let (tx, rx) = sync_channel::<Arc<File>>(64);
        std::thread::Builder::new()
            .name("aof-fsync".into())
            .spawn(move || {
                for f in rx {
                    match f.sync_data() {
                        Ok(()) => super::sync_ok(),
                        Err(e) => {
                            warn!("Error syncing the AOF file: {e}");
                            super::write_failed(&e);
                        }
                    }
                }
            })
            .ok()
            .map(|_| tx)
    });
    match sender {
        Some(tx) => tx.try_send(file).is_ok(),
        None => false,
    }
}

/// This core's log, written and synced, is closed (appendonly turned off, or shutdown).
pub fn close(core: &Core) -> io::Result<()> {
    let old = install(core, None)?;
    drop(old);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Group;

    #[test]
    fn writes_during_a_sync_wait_for_the_next_one() {
        let mut g = Group::default();
        assert_eq!(g.wait(), 0, "nothing written: nothing to wait for");
        assert_eq!(g.start(None), None, "no records, no sync");
        g.wrote();
        assert_eq!(g.wait(), 1);
        assert_eq!(g.start(None), Some(1));
        assert_eq!(
            g.wait(),
            1,
            "the output of the pass waits for the sync queued"
        );
        g.wrote();
        g.wrote();
        assert_eq!(g.start(None), None, "one sync in flight at a time");
        assert_eq!(g.wait(), 2, "records written meanwhile form the next group");
        g.synced(1);
        assert_eq!(g.durable, 1);
        assert_eq!(g.wait(), 2);
        assert_eq!(
            g.start(None),
            Some(2),
            "the next group is queued once the first is done"
        );
        g.synced(2);
        assert_eq!(g.wait(), 2);
        assert_eq!(g.start(None), None);
    }

    #[test]
    fn a_blocking_sync_covers_what_is_in_flight_and_waiting() {
        let mut g = Group::default();
        g.wrote();
        assert_eq!(g.start(None), Some(1));
        g.wrote();
        g.synced_all();
        assert_eq!(g.durable, 2);
        assert_eq!(g.wait(), 2, "nothing left to wait for");
        assert_eq!(
            g.start(None),
            None,
            "the sync in flight still holds its place"
        );
        g.synced(1);
        assert_eq!(
            g.durable, 2,
            "a late completion never moves durability back"
        );
        g.wrote();
        assert_eq!(g.start(None), Some(3));
        g.synced_all();
        assert_eq!(g.wait(), 3);
    }
}
