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
//!
//! A diskless sync waits `repl-diskless-sync-delay` first; replicas arriving meanwhile (up to
//! `repl-diskless-sync-max-replicas`, which starts it at once when reached) share its cut and
//! its RDB, copied chunk by chunk to each one's writer.

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shardis_persist::crc::Crc64;
use tracing::{info, warn};

use super::link::Plan;
use super::{feed, send, Msg, Replica};
use crate::coord::txn;
use crate::core::{spawn, Answer, Core};
use crate::persist::{save, IN_PROGRESS};

/// Chunks a shard may have queued for the writer.
const QUEUED_CHUNKS: usize = 8;

/// A replica of a full sync, and where its link's writer takes the sync's parts from.
pub type Member = (Arc<Replica>, Sender<Plan>);

/// A diskless sync in its `repl-diskless-sync-delay`, which replicas arriving meanwhile join
/// (up to `repl-diskless-sync-max-replicas`), as Redis shares one transfer among them.
pub struct Group {
    pub sync: u64,
    pub members: Vec<Member>,
}

/// Runs full sync `sync`: of the replica `alone` (through a file), or of the group `sync` in
/// the hub's forming list (diskless), once its delay passed or it is full. A task on the core
/// that served the PSYNC that started it.
pub async fn run(core: Rc<Core>, sync: u64, alone: Option<Member>) {
    let mut members = match alone {
        Some(member) => vec![member],
        None => gather(&core, sync).await,
    };
    // One snapshot at a time per shard: wait for a running save or another sync.
    loop {
        members.retain(|(r, _)| !r.closed());
        if members.is_empty() {
            super::take_waiting(&mut super::hub(), sync);
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
    if members.len() > 1 {
        info!(
            "Starting a diskless full sync shared by {} replicas",
            members.len()
        );
    }
    let compress = core.config.borrow().get("rdbcompression") == "yes";
    // The header and aux fields, and the function libraries (every core holds the same).
    let header = save::rdb_header(&core, false, false, true);
    // A replica's replicas start where its primary's stream stands: it stops being applied
    // (at a point where the data is exactly that stream) while the cut is taken.
    let paused = if crate::replica::is_replica() {
        match crate::replica::pause(&core).await {
            Some(paused) => Some(paused),
            None => {
                IN_PROGRESS.store(false, Ordering::SeqCst);
                for (r, _) in &members {
                    r.close("the link to our primary went down");
                }
                super::take_waiting(&mut super::hub(), sync);
                return;
            }
        }
    } else {
        None
    };
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
    if let Some(paused) = paused {
        super::start_from(sync, paused.offset);
    }
    share(&members, header, bodies);
    let mut ok = true;
    for done in pending {
        ok &= done.await.unwrap_or(false);
    }
    IN_PROGRESS.store(false, Ordering::SeqCst);
    for (r, plan) in &members {
        if !ok && !r.closed() {
            warn!("The full sync of replica {} failed", r.addr);
        }
        let _ = plan.send(Plan::Verdict(ok));
    }
}

/// Waits out `repl-diskless-sync-delay` (less once `repl-diskless-sync-max-replicas` joined),
/// then closes group `sync` to newcomers: its members.
async fn gather(core: &Core, sync: u64) -> Vec<Member> {
    let s = super::settings();
    let until = Instant::now() + Duration::from_secs(s.delay);
    while Instant::now() < until {
        let full = s.max_replicas > 0
            && super::hub()
                .forming
                .iter()
                .any(|g| g.sync == sync && g.members.len() >= s.max_replicas);
        if full {
            break;
        }
        core.sleep(Duration::from_millis(50)).await;
    }
    let mut h = super::hub();
    let at = h.forming.iter().position(|g| g.sync == sync);
    at.map(|i| h.forming.remove(i).members).unwrap_or_default()
}

/// Hands the RDB's parts to every member's writer: a lone replica's writer reads the shards'
/// queues; several get each chunk from a thread copying it to a queue of each, so the
/// transfer goes at the pace of the slowest (as Redis's shared transfer) and a replica that
/// leaves stops getting chunks without stopping the others.
fn share(members: &[Member], header: Vec<u8>, bodies: Vec<Receiver<Vec<u8>>>) {
    if let [(_, plan)] = members {
        let _ = plan.send(Plan::Parts {
            header,
            shards: bodies,
        });
        return;
    }
    let mut copies: Vec<Vec<SyncSender<Vec<u8>>>> = Vec::with_capacity(bodies.len());
    for _ in &bodies {
        copies.push(Vec::with_capacity(members.len()));
    }
    for (_, plan) in members {
        let mut shards = Vec::with_capacity(bodies.len());
        for copy in &mut copies {
            let (to, from) = mpsc::sync_channel::<Vec<u8>>(QUEUED_CHUNKS);
            copy.push(to);
            shards.push(from);
        }
        let _ = plan.send(Plan::Parts {
            header: header.clone(),
            shards,
        });
    }
    let spawned = std::thread::Builder::new()
        .name("repl-sync-copy".into())
        .spawn(move || {
            for (body, copy) in bodies.into_iter().zip(copies) {
                let mut to: Vec<Option<SyncSender<Vec<u8>>>> = copy.into_iter().map(Some).collect();
                for chunk in body {
                    // Every replica left: the shards' serialisation stops.
                    if to.iter().all(Option::is_none) {
                        return;
                    }
                    for slot in &mut to {
                        if slot
                            .as_ref()
                            .is_some_and(|t| t.send(chunk.clone()).is_err())
                        {
                            *slot = None;
                        }
                    }
                }
            }
        });
    if let Err(e) = spawned {
        // The members' writers see their queues closed and give up; the shards stop.
        warn!("cannot start the full sync's copying thread: {e}");
    }
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
