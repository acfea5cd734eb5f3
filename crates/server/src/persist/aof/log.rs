//! One core's incremental log file: the records its shard's journal collected, appended once
//! per event-loop pass, and synced by the `appendfsync` policy.
//!
//! - `always`: the pass's records are written and `fdatasync`ed before the pass hands any
//!   reply to the kernel or any message to another core (the mesh holds them meanwhile, see
//!   `core::mesh`): one sync covers every write of the pass (group commit), and no client
//!   hears of a write, directly or through another core, before it is durable.
//! - `everysec`: written every pass, synced about once a second by the sync thread (Redis's
//!   background fsync), so the core never waits for the disk.
//! - `no`: written every pass; the kernel syncs when it likes.
//!
//! A failed write is Redis's: under `always` the server exits (replies of the pass were
//! never sent); otherwise the records are kept, retried, and writes are refused with MISCONF
//! until a write succeeds again.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
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

/// Writes what the journal collected; syncs as the policy (or `force_sync`) says. Called at
/// the start of every event-loop pass and by the clock. Under `always`, the messages the
/// mesh held for the pass go out once the records are durable.
pub fn flush(core: &Core, force_sync: bool) -> io::Result<()> {
    let policy = super::fsync_policy();
    let hold = policy == Fsync::Always && super::enabled();
    core.mesh.set_hold(hold);
    let result = LOG.with(|l| -> io::Result<()> {
        let mut guard = l.borrow_mut();
        let Some(log) = guard.as_mut() else {
            return Ok(());
        };
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
        if !log.pending.is_empty() {
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
        }
        if log.unsynced {
            match policy {
                _ if force_sync => log.sync()?,
                Fsync::Always => {
                    if let Err(e) = log.sync() {
                        error!("Can't persist AOF for fsync error when the AOF fsync policy is 'always': {e}. Exiting...");
                        std::process::exit(1);
                    }
                }
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
    // Under `always` the mesh held this pass's messages until now.
    core.mesh.release();
    result
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
