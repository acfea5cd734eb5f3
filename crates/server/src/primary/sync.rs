//! A full sync: one RDB of every shard, cut consistently and serialised while the shards
//! serve, without fork and without a second copy of the data.
//!
//! The cut is taken under the lock of every shard (so no transaction is half in it): each
//! shard copies its journal to the hub, marks the cut in its stream, and starts a
//! copy-on-write snapshot (`shardis_engine::snapshot`, the machinery of BGSAVE), all in one
//! step. The hub puts the replica's start where that locked transaction goes out in the
//! merged stream, so the RDB holds exactly what precedes it. Each core then serialises its
//! snapshot in chunks into a small bounded queue that the replica's writer drains, shard
//! after shard: memory grows by the queues and by the entries written to during the sync
//! (saved before they change), never by a copy of the data set.

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Sender, SyncSender};
use std::sync::Arc;
use std::time::Duration;

use shardis_persist::crc::Crc64;
use tracing::warn;

use super::link::Plan;
use super::{feed, send, Msg, Replica};
use crate::coord::txn;
use crate::core::{spawn, Answer, Core};
use crate::persist::{save, IN_PROGRESS};

/// Chunks a shard may have queued for the writer.
const QUEUED_CHUNKS: usize = 8;

/// Runs replica `r`'s full sync `sync` (a task on the core that served PSYNC).
pub async fn run(core: Rc<Core>, r: Arc<Replica>, sync: u64, plan: Sender<Plan>, diskless: bool) {
    let delay = super::settings().delay;
    if diskless && delay > 0 {
        // Redis's `repl-diskless-sync-delay`: more replicas may arrive to share the transfer.
        core.sleep(Duration::from_secs(delay)).await;
    }
    // One snapshot at a time per shard: wait for a running save or another sync.
    loop {
        if r.closed() {
            super::hub().waiting.remove(&sync);
            return;
        }
        if IN_PROGRESS
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            break;
        }
        core.sleep(Duration::from_millis(100)).await;
    }
    let compress = core.config.borrow().get("rdbcompression") == "yes";
    // The header and aux fields, and the function libraries (every core holds the same).
    let header = save::rdb_header(&core, false, false, true);
    let held = txn::lock(&core, txn::plan_all(core.shards)).await;
    let tx = held.tx;
    let mut bodies = Vec::with_capacity(core.shards);
    let mut pending = Vec::with_capacity(core.shards);
    for shard in 0..core.shards {
        let (to, from) = mpsc::sync_channel::<Vec<u8>>(QUEUED_CHUNKS);
        bodies.push(from);
        let (answer, done) = core.answer_channel::<bool>();
        core.run_on(shard, move |c| begin(c, tx, sync, compress, to, answer))
            .await;
        pending.push(done);
    }
    txn::unlock(&core, held).await;
    let _ = plan.send(Plan::Parts {
        header,
        shards: bodies,
    });
    let mut ok = true;
    for done in pending {
        ok &= done.await.unwrap_or(false);
    }
    IN_PROGRESS.store(false, Ordering::SeqCst);
    if !ok && !r.closed() {
        warn!("The full sync of replica {} failed", r.addr);
    }
    let _ = plan.send(Plan::Verdict(ok));
}

/// On each shard, under the lock of all: the cut, and the task that serialises the snapshot.
fn begin(
    c: &Rc<Core>,
    tx: u64,
    sync: u64,
    compress: bool,
    to: SyncSender<Vec<u8>>,
    answer: Answer<bool>,
) {
    feed(c);
    send(Msg::Mark(c.id, tx, sync));
    let mut snap = c.shard.borrow_mut().snapshot_begin(compress);
    let core = c.clone();
    spawn::spawn(async move {
        // The writer computes the checksum of the whole file.
        let ok = save::stream_body(&core, &mut snap, &to, &mut Crc64::default()).await;
        if !ok {
            core.shard.borrow_mut().snapshot_abort();
        }
        drop(to);
        core.answer(answer, ok);
    });
}
