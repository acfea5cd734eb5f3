//! MEMORY STATS, DOCTOR, MALLOC-STATS and PURGE over every core (MEMORY USAGE is the
//! engine's, on the key's shard). Figures are the counting allocator's (`alloc`): what the
//! process holds, split by what holds it, as Redis's `getMemoryOverheadData`.

use bytes::Bytes;
use shardis_engine::ServerCmd;
use shardis_resp::Reply;

use crate::conn::session::Session;

/// What one core holds, by kind.
#[derive(Default)]
struct CoreMemory {
    /// Allocated at start-up (the event loop's buffers).
    startup: u64,
    /// Clients' query and output buffers.
    clients: u64,
    /// The EVAL script cache.
    scripts: u64,
    /// Per database: (keys, key-table overhead, expiry-slot overhead).
    dbs: Vec<(usize, usize, usize)>,
}

/// The whole server's figures (MEMORY STATS, DOCTOR).
struct Overview {
    peak: u64,
    total: u64,
    startup: u64,
    clients: u64,
    scripts: u64,
    /// (db, main overhead, expires overhead) of the databases holding keys.
    dbs: Vec<(usize, u64, u64)>,
    keys: u64,
    rss: u64,
    committed: u64,
    maxmemory: u64,
}

impl Overview {
    fn overhead(&self) -> u64 {
        self.startup
            + self.clients
            + self.scripts
            + self.dbs.iter().map(|(_, m, e)| m + e).sum::<u64>()
    }

    fn dataset(&self) -> u64 {
        self.total.saturating_sub(self.overhead())
    }
}

async fn overview(s: &Session) -> Overview {
    let cores = s
        .core
        .broadcast(|core| CoreMemory {
            startup: core.memory.fixed(),
            clients: core
                .clients
                .borrow()
                .values()
                .filter_map(|c| c.try_borrow().ok().map(|c| (c.qbuf + c.omem) as u64))
                .sum(),
            scripts: crate::script::state::with(|st| st.scripts_memory) as u64,
            dbs: core
                .shard
                .borrow()
                .dbs
                .iter()
                .map(|d| {
                    let (main, expires) = d.overhead();
                    (d.len(), main, expires)
                })
                .collect(),
        })
        .await;
    let ndbs = cores.iter().map(|c| c.dbs.len()).max().unwrap_or(0);
    let mut dbs = Vec::new();
    let mut keys = 0u64;
    for db in 0..ndbs {
        let (mut n, mut main, mut expires) = (0u64, 0u64, 0u64);
        for c in &cores {
            if let Some(&(k, m, e)) = c.dbs.get(db) {
                n += k as u64;
                main += m as u64;
                expires += e as u64;
            }
        }
        keys += n;
        // As Redis: only the databases holding keys are listed.
        if n > 0 {
            dbs.push((db, main, expires));
        }
    }
    Overview {
        peak: crate::alloc::peak_used() as u64,
        total: crate::alloc::total_used().max(0) as u64,
        startup: cores.iter().map(|c| c.startup).sum(),
        clients: cores.iter().map(|c| c.clients).sum(),
        scripts: cores.iter().map(|c| c.scripts).sum(),
        dbs,
        keys,
        rss: super::info::rss_bytes(),
        committed: crate::alloc::committed() as u64,
        maxmemory: s.core.config.borrow().get_u64("maxmemory"),
    }
}

pub async fn run_async(s: &mut Session, which: ServerCmd, _args: &[Bytes]) -> Option<Reply> {
    Some(match which {
        ServerCmd::MemoryStats => stats(&overview(s).await),
        ServerCmd::MemoryDoctor => Reply::Verbatim(Bytes::from(doctor(&overview(s).await))),
        ServerCmd::MemoryMallocStats => Reply::Verbatim(Bytes::from(crate::alloc::malloc_stats())),
        ServerCmd::MemoryPurge => {
            s.core.broadcast(|_| crate::alloc::purge()).await;
            Reply::Ok
        }
        _ => return None,
    })
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

fn stats(o: &Overview) -> Reply {
    let name = |s: &str| Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()));
    let int = |n: u64| Reply::Int(n as i64);
    let diff = |a: u64, b: u64| Reply::Int(a as i64 - b as i64);
    let mut map = vec![
        (name("peak.allocated"), int(o.peak)),
        (name("total.allocated"), int(o.total)),
        (name("startup.allocated"), int(o.startup)),
        // Features that hold nothing here (no replication or append-only buffer): 0, as in
        // a Redis without them.
        (name("replication.backlog"), int(0)),
        (name("clients.slaves"), int(0)),
        (name("clients.normal"), int(o.clients)),
        // The cluster bus links' send buffers (0 without the bus).
        (
            name("cluster.links"),
            int(crate::cluster::bus::links_memory()),
        ),
        (name("aof.buffer"), int(0)),
        (name("lua.caches"), int(o.scripts)),
        (name("functions.caches"), int(0)),
    ];
    for &(db, main, expires) in &o.dbs {
        map.push((
            name(&format!("db.{db}")),
            Reply::Map(vec![
                (name("overhead.hashtable.main"), int(main)),
                (name("overhead.hashtable.expires"), int(expires)),
                (name("overhead.hashtable.slot-to-keys"), int(0)),
            ]),
        ));
    }
    let net = o.total.saturating_sub(o.startup);
    map.extend([
        (name("overhead.total"), int(o.overhead())),
        (name("keys.count"), int(o.keys)),
        (
            name("keys.bytes-per-key"),
            int(net.checked_div(o.keys).unwrap_or(0)),
        ),
        (name("dataset.bytes"), int(o.dataset())),
        (
            name("dataset.percentage"),
            Reply::Double(100.0 * ratio(o.dataset(), net)),
        ),
        (
            name("peak.percentage"),
            Reply::Double(100.0 * ratio(o.total, o.peak)),
        ),
        (name("allocator.allocated"), int(o.total)),
        (name("allocator.active"), int(o.committed)),
        (name("allocator.resident"), int(o.committed)),
        (
            name("allocator-fragmentation.ratio"),
            Reply::Double(ratio(o.committed, o.total)),
        ),
        (
            name("allocator-fragmentation.bytes"),
            diff(o.committed, o.total),
        ),
        (name("allocator-rss.ratio"), Reply::Double(1.0)),
        (name("allocator-rss.bytes"), int(0)),
        (
            name("rss-overhead.ratio"),
            Reply::Double(ratio(o.rss, o.committed)),
        ),
        (name("rss-overhead.bytes"), diff(o.rss, o.committed)),
        (name("fragmentation"), Reply::Double(ratio(o.rss, o.total))),
        (name("fragmentation.bytes"), diff(o.rss, o.total)),
    ]);
    Reply::Map(map)
}

/// Below this, there is nothing worth a report (as Redis's doctor, 5 MB).
const LITTLE: u64 = 5 << 20;

/// MEMORY DOCTOR: the problems the figures show, in plain words.
fn doctor(o: &Overview) -> String {
    let mb = |n: u64| format!("{:.2} MB", n as f64 / (1 << 20) as f64);
    if o.total < LITTLE {
        return format!(
            "This server holds very little ({} allocated): there is nothing to diagnose yet.\n",
            mb(o.total)
        );
    }
    let mut problems = Vec::new();
    if o.peak > o.total + o.total / 2 {
        problems.push(format!(
            "Peak memory: the server once held {} and holds {} now. Memory freed since may still be held by the allocator (RSS {}); MEMORY PURGE returns what it can to the system.",
            mb(o.peak),
            mb(o.total),
            mb(o.rss)
        ));
    }
    let frag = ratio(o.rss, o.total);
    if frag > 1.4 && o.rss > o.total + (10 << 20) {
        problems.push(format!(
            "High fragmentation: the process's RSS is {} for {} allocated (ratio {frag:.2}). Many values of different sizes written and deleted cause it; MEMORY PURGE may help, a restart with a snapshot does.",
            mb(o.rss),
            mb(o.total)
        ));
    }
    if o.clients > o.total / 4 && o.clients > (50 << 20) {
        problems.push(format!(
            "Client buffers hold {} ({:.0}% of the memory): clients reading their replies slowly, or sending large requests. CLIENT LIST shows qbuf and omem per client; client-output-buffer-limit bounds them.",
            mb(o.clients),
            100.0 * ratio(o.clients, o.total)
        ));
    }
    if o.maxmemory > 0 && o.total > o.maxmemory {
        problems.push(format!(
            "Over the limit: {} allocated for a maxmemory of {} (the start-up buffers, {}, do not count against it).",
            mb(o.total),
            mb(o.maxmemory),
            mb(o.startup)
        ));
    }
    if problems.is_empty() {
        return format!(
            "No memory problem found: {} allocated, {} of them data, RSS {}.\n",
            mb(o.total),
            mb(o.dataset()),
            mb(o.rss)
        );
    }
    let mut out = String::from("Memory problems found:\n\n");
    for p in problems {
        out.push_str(" * ");
        out.push_str(&p);
        out.push_str("\n\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overview(total: u64, peak: u64, rss: u64) -> Overview {
        Overview {
            peak,
            total,
            startup: 1 << 20,
            clients: 0,
            scripts: 0,
            dbs: vec![(0, 1000, 0)],
            keys: 10,
            rss,
            committed: total,
            maxmemory: 0,
        }
    }

    #[test]
    fn doctor_names_what_it_sees() {
        assert!(doctor(&overview(1 << 20, 1 << 20, 1 << 20)).contains("very little"));
        let healthy = overview(100 << 20, 100 << 20, 110 << 20);
        assert!(doctor(&healthy).starts_with("No memory problem found"));
        let peaked = overview(100 << 20, 300 << 20, 110 << 20);
        assert!(doctor(&peaked).contains("Peak memory"));
        let fragmented = overview(100 << 20, 100 << 20, 300 << 20);
        assert!(doctor(&fragmented).contains("High fragmentation"));
    }

    #[test]
    fn stats_split_the_total() {
        let o = overview(100 << 20, 100 << 20, 110 << 20);
        assert_eq!(o.overhead(), (1 << 20) + 1000);
        assert_eq!(o.dataset(), (100 << 20) - (1 << 20) - 1000);
        let Reply::Map(fields) = stats(&o) else {
            panic!()
        };
        assert!(fields
            .iter()
            .any(|(k, _)| *k == Reply::Bulk(Bytes::from_static(b"db.0"))));
        assert_eq!(fields.len(), 27 + 1);
    }
}
