//! The memory limit: each core's share of `maxmemory`, eviction before commands, background
//! reclaiming (eviction that ran out of time, values freed in steps), and the moving of shares
//! between cores.
//!
//! `maxmemory` is for the whole server, but each shard can only evict its own keys and only
//! knows its own memory (exactly: `crate::alloc` counts every core's heap). So the limit,
//! less what the threads that are not cores hold, is split into per-core *shares* whose sum
//! never exceeds it:
//!
//! - Shares grow on demand: a core over its share first takes a chunk of the unassigned rest
//!   of `maxmemory` (one atomic compare-and-swap), and only evicts when nothing is left. A
//!   core well under its share gives the slack back on its next tick. So while the server as
//!   a whole has room, no shard evicts, however unevenly the keys are spread.
//! - Once everything is assigned, a core over its share evicts its own keys until it is back
//!   under, as Redis does before each command: within `maxmemory-eviction-tenacity`'s time
//!   limit, then in the background.
//! - Core 0's clock moves shares between full cores: from the core whose eviction candidates
//!   are coldest (longest idle, least frequent, nearest expiry) to a core that is evicting
//!   warmer keys; under the random policies, from a core that evicts nothing to one that
//!   evicts. A core asked to give back a chunk evicts down to its smaller share, and gives
//!   only what it could free (see `give_back`). Over a few seconds the shares follow where
//!   the data that deserves to stay is.
//!
//! - A core over its share with nothing of its own to evict (its heap is client buffers and
//!   start-up state, or it has only keys without a TTL under a volatile policy) takes what
//!   other cores hold and do not use, then share from a core that has keys to evict, which
//!   evicts down to what is left it. As in Redis, a write is refused only when the server as
//!   a whole has nothing left it may evict. (Taking unused share before evicting, on every
//!   command, moved share away for good from the core whose client buffers come and go.)
//!
//! With `noeviction`, a core over its share with nothing left to take refuses DENYOOM
//! commands with Redis's OOM error. A command over several shards is checked up front
//! against every shard it involves (their published OOM state) and refused as a whole.
//!
//! The few figures other cores need (shares, OOM state, coldness, evicted bytes) are atomics
//! on a board with one cache line per core, written only by their core (the rebalancer's
//! requests excepted).

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use shardis_engine::command::Flags;
use shardis_engine::evict::Policy;
use shardis_engine::Command;
use shardis_resp::Reply;

use super::{spawn, Core};
use crate::alloc;

/// Redis's reply to a DENYOOM command over the limit.
pub const OOM_ERROR: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// What one core publishes.
#[repr(align(128))]
struct Slot {
    /// This core's share of `maxmemory`.
    share: AtomicU64,
    /// Over its share with nothing it may evict (DENYOOM commands are refused).
    oom: AtomicBool,
    /// Has keys the policy may evict (others may then take its share, see `borrow_share`).
    evictable: AtomicBool,
    /// The score of its best eviction candidate (see `shardis_engine::evict`), `NO_SCORE`
    /// when it has none or the policy is random.
    coldness: AtomicU64,
    /// Bytes freed by eviction so far.
    evicted_bytes: AtomicU64,
    /// Bytes the rebalancer asks this core to give up.
    give_back: AtomicU64,
}

const NO_SCORE: u64 = u64::MAX;

#[allow(clippy::declare_interior_mutable_const)]
const SLOT_INIT: Slot = Slot {
    share: AtomicU64::new(0),
    oom: AtomicBool::new(false),
    evictable: AtomicBool::new(false),
    coldness: AtomicU64::new(NO_SCORE),
    evicted_bytes: AtomicU64::new(0),
    give_back: AtomicU64::new(0),
};

static BOARD: [Slot; alloc::MAX_CORES] = [SLOT_INIT; alloc::MAX_CORES];
/// The sum of the shares.
static ASSIGNED: AtomicU64 = AtomicU64::new(0);

fn slot(id: usize) -> &'static Slot {
    &BOARD[id.min(alloc::MAX_CORES - 1)]
}

/// The outcome of making room (Redis's `EVICT_OK`, `EVICT_RUNNING`, `EVICT_FAIL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Room {
    /// Under the share (or no limit).
    Ok,
    /// Still over, eviction goes on in the background.
    Evicting,
    /// Over, and nothing may be evicted.
    Full,
}

/// One core's memory state (its own; the board has what others see).
#[derive(Default)]
pub struct Memory {
    /// `maxmemory`, 0 for no limit.
    maxmemory: Cell<u64>,
    policy: Cell<Policy>,
    /// `maxmemory-eviction-tenacity`.
    tenacity: Cell<u8>,
    /// What the core allocated at start-up (MEMORY STATS reports it; it counts against
    /// `maxmemory` as any other heap memory).
    fixed: Cell<u64>,
    /// Set while the reclaim task runs.
    reclaiming: Cell<bool>,
    /// Set while a command over several shards, already admitted as a whole, runs its parts.
    admitted: Cell<bool>,
    /// On core 0, the rebalancer: every core's evicted bytes at the previous tick.
    evicted_seen: std::cell::RefCell<Vec<u64>>,
}

impl Memory {
    /// Reads the parameters from the configuration.
    pub fn configure(&self, config: &crate::config::Config) {
        self.maxmemory.set(config.get_u64("maxmemory"));
        self.policy
            .set(Policy::parse(config.get("maxmemory-policy")).unwrap_or_default());
        self.tenacity
            .set(config.get_i64("maxmemory-eviction-tenacity").clamp(0, 100) as u8);
    }

    /// What the core allocated at start-up (MEMORY STATS `startup.allocated`).
    pub fn fixed(&self) -> u64 {
        self.fixed.get()
    }

    /// Records what the core allocated at start-up.
    pub fn set_fixed(&self, bytes: u64) {
        self.fixed.set(bytes);
    }

    pub fn maxmemory(&self) -> u64 {
        self.maxmemory.get()
    }

    /// Runs `f` with commands admitted as part of a command already checked as a whole.
    pub fn admitted<R>(&self, yes: bool, f: impl FnOnce() -> R) -> R {
        let before = self.admitted.replace(yes);
        let r = f();
        self.admitted.set(before);
        r
    }
}

/// Bytes per step of share growth, and the slack a core keeps: a small fraction of each
/// core's even share, so idle cores hold little that busy ones could use.
fn chunk(maxmemory: u64, cores: usize) -> u64 {
    let even = maxmemory / cores.max(1) as u64;
    (maxmemory / (32 * cores.max(1) as u64))
        .max(256 << 10)
        .min(even)
}

/// Redis's `evictionTimeLimitUs`: up to 500 µs at tenacity 10, then 15% more per step, and
/// no limit at 100.
fn time_limit(tenacity: u8) -> Duration {
    match tenacity {
        0..=10 => Duration::from_micros(50 * u64::from(tenacity)),
        11..=99 => Duration::from_secs_f64(500e-6 * 1.15f64.powi(i32::from(tenacity) - 10)),
        _ => Duration::MAX,
    }
}

/// The memory of core `id` that counts against its share: its whole heap (start-up state
/// and client buffers included, as Redis counts its own), less what it is about to free in
/// steps. (The receive buffers are outside the heap, see `crate::io::buf_ring`.)
pub fn counted(core: &Core) -> u64 {
    let used = alloc::core_used(core.id).max(0) as u64;
    used.saturating_sub(not_counted(core))
}

/// Memory not counted against the limit (INFO `mem_not_counted_for_evict`): values queued
/// to be freed in steps.
pub fn not_counted(core: &Core) -> u64 {
    core.shard.borrow().lazyfree.pending_bytes() as u64
}

/// This core's share of `maxmemory`.
pub fn share(id: usize) -> u64 {
    slot(id).share.load(Relaxed)
}

/// The part of `maxmemory` the cores share: what the threads that are not cores hold counts
/// against the limit too (`used_memory` is the whole process's, as Redis's).
fn budget(maxmemory: u64) -> u64 {
    maxmemory.saturating_sub(alloc::unowned_used().max(0) as u64)
}

/// Takes up to `want` more bytes of the unassigned limit; returns the new share.
fn grow(core: &Core, want: u64) -> u64 {
    let max = budget(core.memory.maxmemory.get());
    let mut assigned = ASSIGNED.load(Relaxed);
    loop {
        let take = want.min(max.saturating_sub(assigned));
        if take == 0 {
            return share(core.id);
        }
        match ASSIGNED.compare_exchange_weak(assigned, assigned + take, Relaxed, Relaxed) {
            Ok(_) => return slot(core.id).share.fetch_add(take, Relaxed) + take,
            Err(now) => assigned = now,
        }
    }
}

/// Takes up to `want` bytes off `s`'s share (other cores take from it too); returns how much.
fn take_share(s: &Slot, want: u64) -> u64 {
    let mut share = s.share.load(Relaxed);
    loop {
        let take = want.min(share);
        if take == 0 {
            return 0;
        }
        match s
            .share
            .compare_exchange_weak(share, share - take, Relaxed, Relaxed)
        {
            Ok(_) => return take,
            Err(now) => share = now,
        }
    }
}

/// Gives `bytes` of the share back to the unassigned limit.
fn shrink(core: &Core, bytes: u64) {
    let taken = take_share(slot(core.id), bytes);
    ASSIGNED.fetch_sub(taken, Relaxed);
}

/// Moves up to `want` bytes of share from other cores to this one, which is over its share
/// with nothing of its own to evict: first what they do not use, then what the cores with
/// keys to evict use (they evict down to what is left them). Returns the new share, or None
/// if no core had anything to give.
fn borrow_share(core: &Core, want: u64) -> Option<u64> {
    let mut got = 0;
    for pass in [false, true] {
        for id in (0..core.shards).filter(|&id| id != core.id) {
            let s = slot(id);
            if got >= want || s.oom.load(Relaxed) || (pass && !s.evictable.load(Relaxed)) {
                continue;
            }
            let share = s.share.load(Relaxed);
            let available = if pass {
                share
            } else {
                share.saturating_sub(alloc::core_used(id).max(0) as u64)
            };
            got += take_share(s, available.min(want - got));
        }
    }
    (got > 0).then(|| slot(core.id).share.fetch_add(got, Relaxed) + got)
}

/// Before a command runs on this core's shard: makes room if the shard is over its share,
/// and refuses a DENYOOM command when there is no room to make (Redis's `performEvictions`
/// in `processCommand`). A part of a command admitted as a whole is never refused.
pub fn admit(core: &Rc<Core>, cmd: &Command) -> Option<Reply> {
    if core.memory.maxmemory.get() == 0 {
        return None;
    }
    let room = make_room(core);
    (room == Room::Full && cmd.flags.has(Flags::DENYOOM) && !core.memory.admitted.get())
        .then(|| Reply::err(OOM_ERROR))
}

/// Brings the shard under its share: takes unassigned memory first, then evicts, for at most
/// the tenacity's time limit (the reclaim task goes on after that).
pub fn make_room(core: &Rc<Core>) -> Room {
    let limit = time_limit(core.memory.tenacity.get());
    let room = reclaim(core, limit);
    if room == Room::Evicting {
        start_reclaiming(core);
    }
    room
}

/// The work of `make_room`, for at most `limit`; publishes whether the shard is full.
fn reclaim(core: &Rc<Core>, limit: Duration) -> Room {
    let m = &core.memory;
    let s = slot(core.id);
    // While clients are paused the dataset stays as it is: nothing is evicted, and nothing
    // is refused for memory either (Redis's `isSafeToPerformEvictions`).
    let room = if m.maxmemory.get() == 0 || core.pause_mode() != super::pause::PauseMode::Off {
        Room::Ok
    } else {
        evict_down(core, limit)
    };
    // The `evicted` events, published before the command that made room runs.
    core.publish_reported();
    s.oom.store(room == Room::Full, Relaxed);
    s.evictable
        .store(core.shard.borrow().evictable() > 0, Relaxed);
    room
}

fn evict_down(core: &Rc<Core>, limit: Duration) -> Room {
    let m = &core.memory;
    let s = slot(core.id);
    let mut used = counted(core);
    let mut share = s.share.load(Relaxed);
    if used > share {
        share = grow(core, used - share + chunk(m.maxmemory.get(), core.shards));
    }
    if used <= share {
        return Room::Ok;
    }
    if m.policy.get() == Policy::NoEviction {
        return Room::Full;
    }
    let started = Instant::now();
    let room = loop {
        match evict_to(core, share, &mut used, started, limit) {
            Evicted::Under => break Room::Ok,
            Evicted::OutOfTime => break Room::Evicting,
            Evicted::NothingLeft => {
                let want = used - share + chunk(m.maxmemory.get(), core.shards);
                match borrow_share(core, want) {
                    Some(more) => share = more,
                    None => break Room::Full,
                }
            }
        }
    };
    // The latency monitor's `eviction-cycle`, as Redis's performEvictions reports it.
    core.latency_sample("eviction-cycle", started.elapsed());
    room
}

/// After a command: starts freeing in steps what it left queued.
pub fn after_command(core: &Rc<Core>) {
    if !core.memory.reclaiming.get() && !core.shard.borrow().lazyfree.is_empty() {
        start_reclaiming(core);
    }
}

/// How long the reclaim task works before letting the event loop run.
const RECLAIM_SLICE: Duration = Duration::from_millis(1);
/// Elements freed per lazy-free step (about 50–100 µs of frees).
const LAZYFREE_STEP: usize = 1024;

/// Starts the core's reclaim task unless it runs: it frees queued values in steps and evicts
/// until the shard is under its share, a millisecond at a time, yielding to the event loop in
/// between (which does not sleep while it has work).
fn start_reclaiming(core: &Rc<Core>) {
    if core.memory.reclaiming.replace(true) {
        return;
    }
    let core = core.clone();
    spawn::spawn(async move {
        loop {
            let started = Instant::now();
            let (mut lazy, mut room) = (true, Room::Ok);
            while started.elapsed() < RECLAIM_SLICE {
                lazy = core.shard.borrow_mut().lazyfree_step(LAZYFREE_STEP);
                room = reclaim(&core, RECLAIM_SLICE);
                if !lazy && room != Room::Evicting {
                    break;
                }
            }
            if !lazy && room != Room::Evicting {
                break;
            }
            futures_lite::future::yield_now().await;
        }
        core.memory.reclaiming.set(false);
    });
}

/// Whether the server is out of memory for a command about to run on this core (Redis's
/// `pre_command_oom_state`, taken before each command): this shard first makes room as it
/// would before any command and finds none, or another shard published that it has none.
/// Scripts use it, as their commands on this shard do not pass [`admit`] one by one.
pub fn out_of_memory(core: &Rc<Core>) -> bool {
    core.memory.maxmemory.get() > 0 && (make_room(core) == Room::Full || any_oom(0..core.shards))
}

/// True if any of `shards` is over its share with nothing to evict: a command writing to all
/// of them is refused before any part runs.
pub fn any_oom(shards: impl IntoIterator<Item = usize>) -> bool {
    shards.into_iter().any(|id| slot(id).oom.load(Relaxed))
}

/// The core's part of CONFIG SET: new parameters; a smaller limit gives back shares above
/// the even split, and eviction starts if the shard is over.
pub fn reconfigure(core: &Rc<Core>) {
    let m = &core.memory;
    let before = m.maxmemory.get();
    m.configure(&core.config.borrow());
    let max = m.maxmemory.get();
    if max != before {
        let even = max / core.shards.max(1) as u64;
        let s = share(core.id);
        if max == 0 {
            shrink(core, s);
        } else if s > even {
            shrink(core, s - even);
        }
    }
    let used = counted(core);
    if max > 0 && used > share(core.id) {
        tracing::warn!(
            "WARNING: the new maxmemory value set via CONFIG SET ({max}) is smaller than the current memory usage ({used}). This will result in key eviction and/or the inability to accept new write commands depending on the maxmemory-policy."
        );
    }
    make_room(core);
}

/// The core's part of the clock: gives slack back, answers the rebalancer, publishes how
/// cold its candidates are, evicts if it is over its share while idle, and on core 0 runs the
/// rebalancer.
pub fn tick(core: &Rc<Core>) {
    if core.shard.borrow().lazyfree_pending() {
        start_reclaiming(core);
    }
    let m = &core.memory;
    let max = m.maxmemory.get();
    if max == 0 {
        return;
    }
    let s = slot(core.id);
    let c = chunk(max, core.shards);
    let used = counted(core);
    let share = s.share.load(Relaxed);
    // Slack beyond two chunks goes back; so does a share above the limit (lowered).
    if share > used + 2 * c {
        shrink(core, share - used - c);
    }
    let asked = s.give_back.swap(0, Relaxed);
    if asked > 0 {
        give_back(core, asked);
    }
    let assigned = ASSIGNED.load(Relaxed);
    if assigned > budget(max) {
        let over = (assigned - budget(max)).div_ceil(core.shards.max(1) as u64);
        shrink(core, over);
    }
    let coldness = core
        .shard
        .borrow_mut()
        .eviction_coldness(core.now_ms())
        .unwrap_or(NO_SCORE);
    s.coldness.store(coldness, Relaxed);
    // An idle core over its share (it was asked to give some back) evicts here.
    make_room(core);
    if core.id == 0 {
        rebalance(core, max, c);
    }
}

/// The rebalancer's request to give up to `asked` bytes of share: evicts down to the smaller
/// share (for at most the tenacity's time limit), but gives only what the core is then under
/// it by. Giving share the core cannot free by evicting (its heap is mostly start-up state and
/// client buffers, as under a limit just above the idle heap) would leave it over with
/// nothing to evict, and it would take the share straight back (`grow`, `borrow_share`):
/// the share would ping-pong between the cores and both would evict every key written.
fn give_back(core: &Rc<Core>, asked: u64) {
    let target = share(core.id).saturating_sub(asked);
    let mut used = counted(core);
    let limit = time_limit(core.memory.tenacity.get());
    evict_to(core, target, &mut used, Instant::now(), limit);
    shrink(core, share(core.id).saturating_sub(used.max(target)));
}

/// How evicting towards a target ended.
enum Evicted {
    Under,
    NothingLeft,
    OutOfTime,
}

/// Evicts the shard's keys until `used` (its counted memory, kept up to date) is at most
/// `target`, until `limit` after `started`.
fn evict_to(
    core: &Rc<Core>,
    target: u64,
    used: &mut u64,
    started: Instant,
    limit: Duration,
) -> Evicted {
    let s = slot(core.id);
    let now = core.now_ms();
    let mut evicted = 0u32;
    while *used > target {
        if !core.shard.borrow_mut().evict_one(now) {
            return Evicted::NothingLeft;
        }
        let after = counted(core);
        s.evicted_bytes
            .fetch_add(used.saturating_sub(after), Relaxed);
        *used = after;
        evicted += 1;
        // The clock is read every 16 evictions, as Redis does.
        if evicted.is_multiple_of(16) && started.elapsed() > limit {
            return if *used > target {
                Evicted::OutOfTime
            } else {
                Evicted::Under
            };
        }
    }
    Evicted::Under
}

/// Moves one chunk of share per tick between full cores; see the module documentation.
fn rebalance(core: &Rc<Core>, max: u64, chunk: u64) {
    let cores = core.shards;
    if cores < 2 || ASSIGNED.load(Relaxed) + chunk * cores as u64 / 2 < budget(max) {
        return;
    }
    // Each core: (id, coldness, evicted since the last tick, share).
    let mut seen = core.memory.evicted_seen.borrow_mut();
    seen.resize(cores, 0);
    let mut views = Vec::with_capacity(cores);
    for (id, last) in seen.iter_mut().enumerate() {
        let s = slot(id);
        let evicted = s.evicted_bytes.load(Relaxed);
        views.push((
            id,
            s.coldness.load(Relaxed),
            evicted > *last,
            s.share.load(Relaxed),
        ));
        *last = evicted;
    }
    let pick = if views.iter().all(|v| v.1 == NO_SCORE) {
        // Random policies: from a core that evicts nothing to one that evicts.
        let giver = views
            .iter()
            .filter(|v| !v.2 && v.3 > chunk)
            .max_by_key(|v| v.3);
        let taker = views.iter().find(|v| v.2);
        giver.zip(taker)
    } else {
        // From the coldest candidates to the warmest of the cores that evict.
        let giver = views
            .iter()
            .filter(|v| v.1 != NO_SCORE && v.3 > chunk)
            .max_by_key(|v| v.1);
        let taker = views
            .iter()
            .filter(|v| v.2 && v.1 != NO_SCORE)
            .min_by_key(|v| v.1);
        giver.zip(taker).filter(|(g, t)| clearly_colder(g.1, t.1))
    };
    if let Some((giver, taker)) = pick {
        if giver.0 != taker.0 {
            slot(giver.0).give_back.fetch_add(chunk, Relaxed);
        }
    }
}

/// True if `a` is colder than `b` by more than noise: a quarter more, and at least one
/// unit of the coarsest score (a second of idle time, one LFU step).
fn clearly_colder(a: u64, b: u64) -> bool {
    a > b.saturating_add(b / 4).saturating_add(1)
}

/// What INFO reports for this core.
#[derive(Debug, Clone, Copy, Default)]
pub struct Report {
    pub used: u64,
    pub share: u64,
    pub not_counted: u64,
}

pub fn report(core: &Core) -> Report {
    Report {
        used: alloc::core_used(core.id).max(0) as u64,
        share: share(core.id),
        not_counted: not_counted(core),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenacity_maps_to_redis_time_limits() {
        assert_eq!(time_limit(0), Duration::ZERO);
        assert_eq!(time_limit(10), Duration::from_micros(500));
        let t20 = time_limit(20).as_secs_f64();
        assert!((t20 - 500e-6 * 1.15f64.powi(10)).abs() < 1e-9);
        assert!(time_limit(99) > Duration::from_secs(60));
        assert_eq!(time_limit(100), Duration::MAX);
    }

    #[test]
    fn chunks_are_small_against_each_share() {
        assert_eq!(chunk(100 << 20, 2), (100 << 20) / 64);
        assert_eq!(chunk(4 << 20, 2), 256 << 10);
        assert_eq!(chunk(100, 2), 50);
        assert_eq!(chunk(0, 2), 0);
    }

    #[test]
    fn colder_needs_a_clear_margin() {
        assert!(!clearly_colder(1000, 1000));
        assert!(!clearly_colder(1200, 1000));
        assert!(clearly_colder(1300, 1000));
        assert!(clearly_colder(2, 0));
        assert!(!clearly_colder(1, 0));
    }
}
