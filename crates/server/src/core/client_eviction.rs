//! Client eviction (`maxmemory-clients`), as Redis 7.0: when the memory of all client
//! connections together reaches the limit, the biggest clients are closed until it is below.
//!
//! A client's memory is CLIENT LIST's `tot-mem` (its record, buffers, arguments, MULTI queue
//! and subscriptions), refreshed whenever the event loop serves the connection. Each core
//! keeps the sum over its own clients and publishes it, with the size of its biggest client
//! that may be evicted, on a board other cores read; the limit applies to the sum over every
//! core. A core that finds the server over the limit closes its own biggest clients while
//! they are at least as big as any other core's biggest (so the biggest go first, wherever
//! they are), and every core's clock looks again `hz` times a second. CONFIG SET of the limit
//! evicts at once, choosing over every core's clients together, before it replies.
//!
//! Clients with CLIENT NO-EVICT on count in the sum but are never closed. With
//! `maxmemory-clients 0` nothing is counted: the event loop's check is one load.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{
    AtomicBool, AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};

use super::client::{Client, ClientHandle};
use super::Core;
use crate::alloc::MAX_CORES;

/// Redis never lets the limit below this: a wrong setting must still leave room to talk to
/// the server.
const MIN_LIMIT: u64 = 128 * 1024;

/// What one core publishes.
#[repr(align(128))]
struct Slot {
    /// The memory of its clients.
    total: AtomicU64,
    /// Its biggest client that may be evicted.
    largest: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const SLOT_INIT: Slot = Slot {
    total: AtomicU64::new(0),
    largest: AtomicU64::new(0),
};

static BOARD: [Slot; MAX_CORES] = [SLOT_INIT; MAX_CORES];

/// Set while CONFIG SET evicts for every core at once: the cores' own checks then wait, so
/// that the two do not both close clients for the same excess.
static CHOOSING: AtomicBool = AtomicBool::new(false);

fn slot(id: usize) -> &'static Slot {
    &BOARD[id.min(MAX_CORES - 1)]
}

/// The limit `maxmemory-clients` sets: a byte count, or a percentage of `maxmemory` (none
/// while `maxmemory` is 0); 0 when off.
pub fn limit_of(config: &crate::config::Config) -> u64 {
    let value = config.get("maxmemory-clients");
    let bytes = match value.strip_suffix('%') {
        Some(percent) => {
            let percent: u64 = percent.parse().unwrap_or(0);
            let maxmemory = config.get_u64("maxmemory");
            (maxmemory as f64 * percent as f64 / 100.0) as u64
        }
        None => value.parse().unwrap_or(0),
    };
    if bytes == 0 {
        0
    } else {
        bytes.max(MIN_LIMIT)
    }
}

/// One core's side.
#[derive(Default)]
pub struct ClientMemory {
    /// The limit in force, 0 when off.
    limit: Cell<u64>,
    /// The memory of this core's clients, as last counted.
    total: Cell<u64>,
    /// Each client's memory as last counted (what `total` holds of it), by client id.
    counted: RefCell<ahash::HashMap<u64, u64>>,
}

impl ClientMemory {
    /// Takes the limit from the configuration. Turning it off forgets the counts (a client's
    /// count is only kept up to date while it is on).
    pub fn configure(&self, core: &Core, config: &crate::config::Config) {
        let limit = limit_of(config);
        self.limit.set(limit);
        if limit != 0 {
            census(core);
        } else {
            self.counted.borrow_mut().clear();
            self.total.set(0);
            slot(core.id).total.store(0, Relaxed);
            slot(core.id).largest.store(0, Relaxed);
        }
    }

    fn set(&self, core: &Core, id: u64, mem: u64) {
        let old = self.counted.borrow_mut().insert(id, mem).unwrap_or(0);
        let total = self.total.get().saturating_sub(old).saturating_add(mem);
        self.total.set(total);
        slot(core.id).total.store(total, Release);
    }

    fn forget(&self, core: &Core, id: u64) {
        if let Some(old) = self.counted.borrow_mut().remove(&id) {
            let total = self.total.get().saturating_sub(old);
            self.total.set(total);
            slot(core.id).total.store(total, Release);
        }
    }
}

/// A client's memory, as CLIENT LIST's `tot-mem` shows it.
pub fn usage(c: &Client) -> u64 {
    c.tot_mem() as u64
}

/// Whether eviction may close the client: not one CLIENT NO-EVICT keeps, nor a replica's
/// connection that PSYNC hands to its link (as Redis spares replicas and its master; both
/// links live outside the client table).
fn evictable(c: &Client) -> bool {
    !c.no_evict && !c.closing && c.handoff.is_none()
}

/// The memory of every core's clients.
fn server_total(shards: usize) -> u64 {
    (0..shards).map(|i| slot(i).total.load(Acquire)).sum()
}

/// After the event loop served a connection (its record is fresh): counts its memory and,
/// if every client together is now at the limit, evicts.
pub fn served(core: &Rc<Core>, client: &ClientHandle) {
    let memory = &core.client_memory;
    if memory.limit.get() == 0 {
        return;
    }
    let (id, mem, may) = {
        let c = client.borrow();
        // A client being closed (evicted, killed) no longer counts, whatever still arrives.
        if c.closing {
            return;
        }
        (c.id, usage(&c), evictable(&c))
    };
    // Its biggest first, so that another core never sees the new total without it.
    if may {
        slot(core.id).largest.fetch_max(mem, Relaxed);
    }
    memory.set(core, id, mem);
    if server_total(core.shards) >= memory.limit.get() {
        evict(core);
    }
}

/// A connection closed: its memory no longer counts.
pub fn closed(core: &Core, id: u64) {
    core.client_memory.forget(core, id);
}

/// The clock's look: counts every client again and evicts if the server is at the limit
/// (the biggest clients may be on this core while the connections that grew were elsewhere).
pub fn tick(core: &Rc<Core>) {
    if core.client_memory.limit.get() == 0 {
        return;
    }
    census(core);
    if server_total(core.shards) >= core.client_memory.limit.get() {
        evict(core);
    }
}

/// Closes this core's biggest evictable clients while the server is at the limit and they
/// are the biggest of every core (a tie goes to the lower core).
fn evict(core: &Rc<Core>) {
    let memory = &core.client_memory;
    let limit = memory.limit.get();
    loop {
        if server_total(core.shards) < limit || CHOOSING.load(Acquire) {
            return;
        }
        let victim = core
            .clients
            .borrow()
            .values()
            .filter(|c| evictable(&c.borrow()))
            .map(|c| (usage(&c.borrow()), c.clone()))
            .max_by_key(|(mem, _)| *mem);
        let Some((mem, victim)) = victim else {
            slot(core.id).largest.store(0, Relaxed);
            return;
        };
        slot(core.id).largest.store(mem, Relaxed);
        let bigger_elsewhere = (0..core.shards).filter(|&i| i != core.id).any(|i| {
            let theirs = slot(i).largest.load(Relaxed);
            theirs > mem || theirs == mem && i < core.id
        });
        if bigger_elsewhere {
            return;
        }
        close(core, &victim);
    }
}

/// Closes an evicted client: it is gone from the client table at once (as Redis frees it),
/// its connection closes on the event loop's next pass.
fn close(core: &Core, victim: &ClientHandle) {
    let id = {
        let mut c = victim.borrow_mut();
        tracing::info!("Evicting client: {}", c.info_line(core.now_ms()));
        c.kill();
        c.id
    };
    core.clients.borrow_mut().remove(&id);
    core.client_memory.forget(core, id);
    core.bump(|s| s.evicted_clients += 1);
}

/// Counts every client of this core again and publishes its total and biggest evictable
/// client; returns the total and the (client id, memory) of the evictable clients.
pub fn census(core: &Core) -> (u64, Vec<(u64, u64)>) {
    let memory = &core.client_memory;
    let figures: Vec<(u64, u64, bool)> = core
        .clients
        .borrow()
        .values()
        .map(|c| {
            let c = c.borrow();
            (c.id, usage(&c), evictable(&c))
        })
        .collect();
    let candidates: Vec<(u64, u64)> = figures
        .iter()
        .filter(|(_, _, may)| *may)
        .map(|&(id, mem, _)| (id, mem))
        .collect();
    // The biggest first, so that no core sees a new total without it.
    let largest = candidates.iter().map(|(_, mem)| *mem).max().unwrap_or(0);
    slot(core.id).largest.store(largest, Relaxed);
    for (id, mem, _) in figures {
        memory.set(core, id, mem);
    }
    (memory.total.get(), candidates)
}

/// CONFIG SET's eviction over every core: the cores' own checks wait while it lives.
pub struct Choosing;

impl Choosing {
    pub fn start() -> Choosing {
        CHOOSING.store(true, Release);
        Choosing
    }
}

impl Drop for Choosing {
    fn drop(&mut self) {
        CHOOSING.store(false, Release);
    }
}

/// The clients to close, biggest first, until the server's total is below `limit`:
/// `cores` holds each core's total and (client id, memory) candidates; the answer is the
/// ids to close on each core.
pub fn choose(limit: u64, cores: &[(u64, Vec<(u64, u64)>)]) -> Vec<Vec<u64>> {
    let mut out = vec![Vec::new(); cores.len()];
    if limit == 0 {
        return out;
    }
    let mut total: u64 = cores.iter().map(|(t, _)| *t).sum();
    let mut all: Vec<(u64, usize, u64)> = cores
        .iter()
        .enumerate()
        .flat_map(|(core, (_, cands))| cands.iter().map(move |&(id, mem)| (mem, core, id)))
        .collect();
    all.sort_by_key(|c| std::cmp::Reverse(c.0));
    for (mem, core, id) in all {
        if total < limit {
            break;
        }
        out[core].push(id);
        total = total.saturating_sub(mem);
    }
    out
}

/// Closes the clients `choose` picked on this core (those still there).
pub fn close_chosen(core: &Core, ids: &[u64]) {
    for id in ids {
        let victim = core.clients.borrow().get(id).cloned();
        if let Some(victim) = victim {
            close(core, &victim);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_biggest_go_first_until_below_the_limit() {
        let cores = vec![
            (600, vec![(1, 100), (2, 300)]),
            (700, vec![(3, 300), (4, 150)]),
        ];
        // 1300 in all: closing 300 + 300 leaves 700 < 800.
        assert_eq!(choose(800, &cores), vec![vec![2], vec![3]]);
        assert_eq!(choose(1301, &cores), vec![Vec::<u64>::new(), vec![]]);
        // At the limit is over it, as in Redis.
        assert_eq!(choose(1300, &cores).concat().len(), 1);
        // Clients kept by NO-EVICT are not candidates: all the others go, and that is all.
        assert_eq!(choose(1, &cores).concat().len(), 4);
        assert_eq!(choose(0, &cores).concat().len(), 0);
    }

    #[test]
    fn limits_in_bytes_or_percent_of_maxmemory() {
        let mut c = crate::config::Config::default();
        assert_eq!(limit_of(&c), 0);
        c.load_text("maxmemory-clients 3000000").expect("valid");
        assert_eq!(limit_of(&c), 3_000_000);
        c.load_text("maxmemory-clients 1").expect("valid");
        assert_eq!(limit_of(&c), MIN_LIMIT);
        c.load_text("maxmemory-clients 7%").expect("valid");
        assert_eq!(limit_of(&c), 0, "no maxmemory: no limit");
        c.load_text("maxmemory 6mb").expect("valid");
        assert_eq!(limit_of(&c), 6 * 1024 * 1024 * 7 / 100);
    }
}
