//! INFO: Redis's sections, summed over every core, plus a `shards` section.

use std::fmt::Write;

use bytes::Bytes;
use shardis_resp::Reply;

use super::REDIS_VERSION;
use crate::conn::session::Session;
use crate::core::{calls, memory, CoreStats};
use crate::script;

/// The sections about calls, shown by `all` and by name only.
const CALL_SECTIONS: &[&str] = &["commandstats", "errorstats", "latencystats"];

const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "cluster",
    "keyspace",
    "shards",
];

/// What one core reports.
struct CoreReport {
    clients: usize,
    blocked: usize,
    stats: CoreStats,
    /// Messages this core sent to other cores.
    messages_sent: u64,
    keyspace_hits: u64,
    keyspace_misses: u64,
    expired_keys: u64,
    dirty: u64,
    /// (keys, volatile keys, estimated mean TTL left in ms) per database.
    dbs: Vec<(usize, usize, u64)>,
    evicted_keys: u64,
    lazyfree_pending: usize,
    lazyfreed: u64,
    memory: memory::Report,
    /// The core's heap as the allocator sees it (only when a section shows it).
    heap: usize,
    /// Client-side caching: (tracking clients here, tracked keys, items, BCAST prefixes).
    tracking: (usize, usize, usize, usize),
    scripting: script::state::Usage,
    calls: calls::Report,
    /// Commands, input bytes and output bytes per second (`instantaneous_*`).
    rates: [f64; 3],
}

pub async fn info(s: &mut Session, args: &[Bytes]) -> Reply {
    let mut wanted: Vec<String> = args[1..]
        .iter()
        .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
        .collect();
    if wanted.is_empty() || wanted.iter().any(|w| w == "default") {
        wanted.extend(DEFAULT_SECTIONS.iter().map(|s| s.to_string()));
    }
    if wanted.iter().any(|w| w == "all" || w == "everything") {
        wanted.extend(
            DEFAULT_SECTIONS
                .iter()
                .chain(CALL_SECTIONS)
                .map(|s| s.to_string()),
        );
    }
    let histograms = wanted.iter().any(|w| w == "latencystats");
    let heap_wanted = wanted.iter().any(|w| w == "memory" || w == "shards");
    let reports = s
        .core
        .broadcast(move |core| {
            let shard = core.shard.borrow();
            CoreReport {
                clients: core.clients.borrow().len(),
                blocked: core
                    .clients
                    .borrow()
                    .values()
                    .filter(|c| c.borrow().is_blocked())
                    .count(),
                stats: core.stats.get(),
                messages_sent: core.mesh.sent(),
                keyspace_hits: shard.stats.keyspace_hits,
                keyspace_misses: shard.stats.keyspace_misses,
                expired_keys: shard.expired_keys(),
                dirty: shard.dirty,
                dbs: shard
                    .dbs
                    .iter()
                    .map(|d| (d.len(), d.volatile_len(), d.avg_ttl))
                    .collect(),
                evicted_keys: shard.stats.evicted_keys,
                lazyfree_pending: shard.lazyfree.pending_objects(),
                lazyfreed: shard.lazyfree.freed_objects,
                memory: memory::report(core),
                heap: if heap_wanted {
                    crate::alloc::heap_used_here()
                } else {
                    0
                },
                tracking: {
                    let t = core.tracking.borrow();
                    let clients = core.clients.borrow();
                    let on = clients
                        .values()
                        .filter(|c| c.try_borrow().is_ok_and(|c| c.tracking.on))
                        .count();
                    (on, t.keys(), t.items(), t.prefixes())
                },
                scripting: script::state::with(|st| st.usage()),
                calls: calls::Report::of(&core.records.borrow(), histograms),
                rates: {
                    use crate::core::rates::Figure;
                    let r = core.rates.borrow();
                    [Figure::Commands, Figure::InputBytes, Figure::OutputBytes].map(|f| r.rate(f))
                },
            }
        })
        .await;
    let sum = |f: &dyn Fn(&CoreReport) -> u64| reports.iter().map(f).sum::<u64>();
    let rate = |i: usize| reports.iter().map(|r| r.rates[i]).sum::<f64>();
    let config = s.core.config.borrow().clone();
    let mut out = String::new();
    let mut section = |name: &str, body: String| {
        if wanted.iter().any(|w| w == name) {
            if !out.is_empty() {
                out.push_str("\r\n");
            }
            let title = format!("{}{}", name[..1].to_ascii_uppercase(), &name[1..]);
            let _ = write!(out, "# {title}\r\n{body}");
        }
    };
    let uptime = s.core.started.elapsed().as_secs();
    section(
        "server",
        format!(
            "redis_version:{REDIS_VERSION}\r\nshardis_version:{}\r\nredis_mode:{}\r\nos:{} {}\r\narch_bits:64\r\nmultiplexing_api:io_uring\r\nprocess_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\nhz:{}\r\nconfigured_hz:{}\r\nexecutable:{}\r\nconfig_file:{}\r\nio_threads_active:0\r\n",
            env!("CARGO_PKG_VERSION"),
            if crate::cluster::enabled() {
                "cluster"
            } else {
                "standalone"
            },
            std::env::consts::OS,
            std::env::consts::ARCH,
            std::process::id(),
            // As Redis: the TLS port when there is no plain one.
            match config.get_i64("port") {
                0 => config.get_i64("tls-port"),
                port => port,
            },
            crate::core::wall_ms() * 1000,
            uptime / 86400,
            config.get("hz"),
            config.get("hz"),
            std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default(),
            config.file.clone().unwrap_or_default(),
        ),
    );
    section(
        "clients",
        format!(
            "connected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\nblocked_clients:{}\r\ntracking_clients:{}\r\nclients_in_timeout_table:0\r\n",
            reports.iter().map(|r| r.clients).sum::<usize>(),
            config.get("maxclients"),
            reports.iter().map(|r| r.blocked).sum::<usize>(),
            reports.iter().map(|r| r.tracking.0).sum::<usize>(),
        ),
    );
    let used = crate::alloc::total_used().max(0) as u64;
    let peak = crate::alloc::peak_used() as u64;
    let rss = rss_bytes();
    let maxmemory = config.get_u64("maxmemory");
    section(
        "memory",
        format!(
            "used_memory:{used}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\nused_memory_peak:{peak}\r\nused_memory_peak_human:{}\r\n{}maxmemory:{maxmemory}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\nallocator_allocated:{}\r\nmem_fragmentation_ratio:{:.2}\r\nmem_not_counted_for_evict:{}\r\nmem_allocator:mimalloc\r\nlazyfree_pending_objects:{}\r\n",
            human(used),
            human(rss),
            human(peak),
            scripting(&reports),
            human(maxmemory),
            config.get("maxmemory-policy"),
            reports.iter().map(|r| r.heap).sum::<usize>(),
            if used > 0 { rss as f64 / used as f64 } else { 0.0 },
            sum(&|r| r.memory.not_counted),
            reports.iter().map(|r| r.lazyfree_pending).sum::<usize>(),
        ),
    );
    section("persistence", crate::persist::info(sum(&|r| r.dirty)));
    let sync = crate::primary::sync_stats();
    let pubsub = s.core.pubsub.borrow();
    section(
        "stats",
        format!(
            "total_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:{}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\ninstantaneous_input_kbps:{:.2}\r\ninstantaneous_output_kbps:{:.2}\r\nrejected_connections:{}\r\nsync_full:{}\r\nsync_partial_ok:{}\r\nsync_partial_err:{}\r\nexpired_keys:{}\r\nevicted_keys:{}\r\nevicted_clients:{}\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:{}\r\npubsub_patterns:{}\r\npubsubshard_channels:{}\r\ntracking_total_keys:{}\r\ntracking_total_items:{}\r\ntracking_total_prefixes:{}\r\nclient_query_buffer_limit_disconnections:{}\r\nclient_output_buffer_limit_disconnections:{}\r\nmigrate_cached_sockets:{}\r\nlazyfreed_objects:{}\r\ntotal_error_replies:{}\r\n",
            sum(&|r| r.stats.connections_received),
            sum(&|r| r.stats.commands_processed),
            rate(0) as u64,
            sum(&|r| r.stats.net_input_bytes),
            sum(&|r| r.stats.net_output_bytes),
            rate(1) / 1024.0,
            rate(2) / 1024.0,
            sum(&|r| r.stats.rejected_connections),
            sync.0,
            sync.1,
            sync.2,
            sum(&|r| r.expired_keys),
            sum(&|r| r.evicted_keys),
            sum(&|r| r.stats.evicted_clients),
            sum(&|r| r.keyspace_hits),
            sum(&|r| r.keyspace_misses),
            // Every core has a copy of the whole registry.
            pubsub.numchannels(false),
            pubsub.numpat(),
            pubsub.numchannels(true),
            reports.iter().map(|r| r.tracking.1).sum::<usize>(),
            reports.iter().map(|r| r.tracking.2).sum::<usize>(),
            // Every core has the same copy of the prefixes.
            reports.first().map_or(0, |r| r.tracking.3),
            sum(&|r| r.stats.client_qbuf_limit_disconnections),
            sum(&|r| r.stats.client_outbuf_limit_disconnections),
            crate::migrate::cached_sockets(),
            sum(&|r| r.lazyfreed),
            sum(&|r| r.calls.total_errors),
        ),
    );
    section("replication", crate::replica::info(&s.core.config.borrow()));
    section("cpu", cpu_usage());
    section(
        "cluster",
        format!(
            "cluster_enabled:{}\r\n",
            u8::from(crate::cluster::enabled())
        ),
    );
    let mut keyspace = String::new();
    let ndbs = reports.first().map_or(0, |r| r.dbs.len());
    for db in 0..ndbs {
        let of_db = || reports.iter().filter_map(|r| r.dbs.get(db));
        let keys: usize = of_db().map(|d| d.0).sum();
        let expires: usize = of_db().map(|d| d.1).sum();
        // Each shard's estimate weighs as much as its keys with a TTL.
        let weighted: u128 = of_db().map(|d| d.1 as u128 * u128::from(d.2)).sum();
        let avg_ttl = weighted.checked_div(expires as u128).unwrap_or(0);
        if keys > 0 {
            let _ = write!(
                keyspace,
                "db{db}:keys={keys},expires={expires},avg_ttl={avg_ttl}\r\n"
            );
        }
    }
    section("keyspace", keyspace);
    let mut shards = format!("shards:{}\r\n", reports.len());
    for (i, r) in reports.iter().enumerate() {
        let keys: usize = r.dbs.iter().map(|d| d.0).sum();
        let _ = write!(
            shards,
            "shard{i}:keys={keys},clients={},commands={},used_memory={},allocator_allocated={},maxmemory_share={},messages_sent={},wakeups_sent={},sleeps={}\r\n",
            r.clients,
            r.stats.commands_processed,
            r.memory.used,
            r.heap,
            r.memory.share,
            r.messages_sent,
            r.stats.wakeups_sent,
            r.stats.sleeps
        );
    }
    section("shards", shards);
    let merged = calls::Report::merge(reports.into_iter().map(|r| r.calls));
    section("commandstats", merged.commandstats());
    section("errorstats", merged.errorstats());
    section(
        "latencystats",
        merged.latencystats(config.get("latency-tracking-info-percentiles")),
    );
    Reply::Verbatim(Bytes::from(out))
}

fn human(n: u64) -> String {
    let units = ["B", "K", "M", "G", "T"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n}B")
    } else {
        format!("{v:.2}{}", units[i])
    }
}

/// INFO memory's scripting lines, as Redis 7.0 names them: memory summed over the cores (each
/// has its own interpreters and its own copy of the scripts and libraries), counts from one
/// core (every core holds the same scripts and libraries).
fn scripting(reports: &[CoreReport]) -> String {
    let sum = |f: &dyn Fn(&script::state::Usage) -> usize| {
        reports.iter().map(|r| f(&r.scripting) as u64).sum::<u64>()
    };
    let most = |f: &dyn Fn(&script::state::Usage) -> usize| {
        reports.iter().map(|r| f(&r.scripting)).max().unwrap_or(0)
    };
    let eval_vm = sum(&|u| u.eval_vm);
    let functions_vm = sum(&|u| u.functions_vm);
    let scripts_eval = sum(&|u| u.scripts_memory);
    let functions = sum(&|u| u.functions_memory);
    format!(
        "used_memory_lua:{eval_vm}\r\nused_memory_vm_eval:{eval_vm}\r\nused_memory_lua_human:{}\r\nused_memory_scripts_eval:{scripts_eval}\r\nnumber_of_cached_scripts:{}\r\nnumber_of_functions:{}\r\nnumber_of_libraries:{}\r\nused_memory_vm_functions:{functions_vm}\r\nused_memory_vm_total:{}\r\nused_memory_vm_total_human:{}\r\nused_memory_functions:{functions}\r\nused_memory_scripts:{}\r\nused_memory_scripts_human:{}\r\n",
        human(eval_vm),
        most(&|u| u.scripts),
        most(&|u| u.functions),
        most(&|u| u.libraries),
        eval_vm + functions_vm,
        human(eval_vm + functions_vm),
        scripts_eval + functions,
        human(scripts_eval + functions),
    )
}

pub(crate) fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn cpu_usage() -> String {
    // SAFETY: getrusage fills a struct we own.
    let mut me: libc::rusage = unsafe { std::mem::zeroed() };
    let mut children: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe {
        libc::getrusage(libc::RUSAGE_SELF, &mut me);
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut children);
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    format!(
        "used_cpu_sys:{:.6}\r\nused_cpu_user:{:.6}\r\nused_cpu_sys_children:{:.6}\r\nused_cpu_user_children:{:.6}\r\n",
        secs(me.ru_stime),
        secs(me.ru_utime),
        secs(children.ru_stime),
        secs(children.ru_utime)
    )
}
