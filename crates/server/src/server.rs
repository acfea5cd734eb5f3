//! Starting and stopping the server: the start-up checks, one pinned glommio executor per
//! shard, and on each the core's state, its listeners, its clock and its event loop.

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::{LocalExecutorBuilder, Placement};
use tracing::{info, warn};

use crate::config::Config;
use crate::core::mesh::{Mesh, MeshBuilder};
use crate::core::{request_shutdown, shutdown_requested, spawn, Core, Msg};
use crate::io::{listen, probe};
use crate::net::event_loop::EventLoop;

/// How long shards get to stop after a shutdown request.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// glommio's preemption timer. The core runs one task queue, so preemption buys nothing;
/// a long period keeps glommio's own reactor (which the event loop does not use) quiet.
const PREEMPT_PERIOD: Duration = Duration::from_millis(500);

extern "C" fn on_signal(_: libc::c_int) {
    // Core 0's clock saves first when `save` rules exist, then stops every core.
    crate::persist::signal_shutdown();
}

/// Starts the server and blocks until it stops.
pub fn run(mut config: Config) -> Result<(), String> {
    probe::check_io_uring()?;
    let cpus = probe::allowed_cpus();
    let shards = match config.get_i64("shards") {
        n if n > 0 => n as usize,
        _ => cpus.len().max(1),
    };
    let port = config.get_i64("port");
    let tls_port = config.get_i64("tls-port");
    if port == 0 && tls_port == 0 {
        return Err("Configured to not listen anywhere (port 0 and tls-port 0), exiting.".into());
    }
    // Loaded once here and shared by every core; a file that does not load stops start-up.
    let tls =
        crate::tls::server_config(&config).map_err(|e| format!("Failed to configure TLS: {e}"))?;
    crate::persist::loading::configure(&config);
    crate::cluster::check_ports(&config, shards)?;
    let addrs = listen::server_addrs(&config, shards)?;
    for a in &addrs {
        if let Err(e) = listen::wait_free(&a.addr) {
            if a.optional && e.kind() != std::io::ErrorKind::AddrInUse {
                warn!("could not bind {}: {e}", a.addr);
                continue;
            }
            return Err(format!(
                "Could not create server TCP listening socket {}: bind: {}",
                a.addr,
                listen::describe(&e)
            ));
        }
    }
    // The Prometheus endpoint's sockets (none with `metrics-port 0`), served once ready.
    let metrics = crate::metrics::bind(&config)?;
    let dir = config.get("dir").to_string();
    std::env::set_current_dir(&dir).map_err(|e| format!("Can't chdir to '{dir}': {e}"))?;
    if let Ok(cwd) = std::env::current_dir() {
        config.apply(&[("dir", cwd.display().to_string())]);
    }
    // Relative to `dir`, as Redis: the cluster configuration file.
    crate::cluster::init(&config, shards)?;
    // After the chdir, as Redis: a relative `aclfile` is relative to `dir`.
    config.acl_users = crate::acl::load(
        config.get("requirepass"),
        &config.users,
        config.get("aclfile"),
        config.acl_all_channels(),
    )?;
    info!("{}", probe::check_memlock(shards)?);
    // Commands are timed with the CPU's counter where it ticks at a constant rate.
    match crate::core::stopwatch::calibrate() {
        Some(rate) => info!("command timing: time-stamp counter, {rate:.0} ticks/µs"),
        None => info!("command timing: monotonic clock"),
    }
    crate::persist::init();
    crate::persist::aof::load::prepare(&config, shards)?;
    crate::persist::loading::begin(shards);
    // SAFETY: installing handlers that only store to an atomic is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let mut mesh = MeshBuilder::<Msg>::new(shards);
    let to_cores = mesh.outside();
    let to_bus = mesh.outside();
    let mut handles = Vec::with_capacity(shards);
    // Every core says when its listeners are open: only then is the server ready (a
    // supervisor is told, and clients connect).
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    for i in 0..shards {
        let placement = match cpus.get(i % cpus.len().max(1)) {
            Some(&cpu) => Placement::Fixed(cpu),
            None => Placement::Unbound,
        };
        let endpoint = mesh
            .join(i)
            .ok_or_else(|| format!("no mesh endpoint for shard {i}"))?;
        let config = config.clone();
        let addrs = addrs.clone();
        let ready = ready_tx.clone();
        let tls = tls.clone();
        let handle = LocalExecutorBuilder::new(placement)
            .name(&format!("shard-{i}"))
            .io_memory(probe::IO_MEMORY)
            .preempt_timer(PREEMPT_PERIOD)
            .spawn(
                move || async move { core_main(endpoint, config, tls, shards, addrs, ready).await },
            )
            .map_err(|e| format!("cannot start executor {i}: {e}"))?;
        handles.push(handle);
    }
    drop(ready_tx);
    // A core that fails drops its sender unused: then not every core is ready, and the join
    // below reports why.
    if (0..shards).all(|_| ready_rx.recv().is_ok()) {
        if tls_port != 0 {
            info!(shards, port, tls_port, "Ready to accept connections");
        } else {
            info!(shards, port, "Ready to accept connections");
        }
        crate::process::ready();
        crate::cluster::bus::start(to_bus)?;
        if let Some(endpoint) = metrics {
            if let Err(e) = endpoint.start(to_cores) {
                warn!("{e}");
            }
        }
    }
    // Join the executors from helper threads so that a shutdown cannot hang on one that is
    // slow to wind down: after the grace period, exit anyway.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    for h in handles {
        let done_tx = done_tx.clone();
        std::thread::spawn(move || {
            let result = match h.join() {
                Ok(r) => r,
                Err(e) => Err(format!("executor failed: {e}")),
            };
            let _ = done_tx.send(result);
        });
    }
    drop(done_tx);
    let mut result = Ok(());
    let mut finished = 0;
    let mut deadline: Option<Instant> = None;
    while finished < shards {
        match done_rx.recv_timeout(Duration::from_millis(100)) {
            Ok(r) => {
                finished += 1;
                if let Err(e) = r {
                    result = Err(e);
                    request_shutdown();
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
        if shutdown_requested() {
            let at = *deadline.get_or_insert_with(|| Instant::now() + SHUTDOWN_GRACE);
            if Instant::now() >= at {
                warn!("shards did not stop within {SHUTDOWN_GRACE:?}; exiting");
                break;
            }
        }
    }
    info!("Shardis is now ready to exit, bye bye...");
    result
}

/// One core: its state, listeners, clock and event loop, until shutdown.
async fn core_main(
    mesh: Mesh<Msg>,
    config: Config,
    tls: Option<Arc<rustls::ServerConfig>>,
    shards: usize,
    addrs: Vec<listen::BindAddr>,
    ready: std::sync::mpsc::Sender<()>,
) -> Result<(), String> {
    let backlog = config.get_i64("tcp-backlog").clamp(1, i32::MAX as i64) as i32;
    // From here on this thread's allocations count for its core (see `alloc`).
    crate::alloc::register_core(mesh.id());
    let core = Rc::new(Core::new(mesh, shards, config));
    // Requests parked behind a script that turns busy are answered -BUSY, as Redis does.
    crate::core::shard_lock::set_blocked_refusal(crate::script::busy::refuse);
    *core.tls.borrow_mut() = tls;
    let listeners = listen::open(&addrs, backlog, core.id)?;
    if listeners.is_empty() {
        return Err("no address to listen on".into());
    }
    let event_loop = EventLoop::new(core.clone(), listeners).map_err(|e| {
        if e.raw_os_error() == Some(libc::ENOMEM) {
            // The kernel counts locked memory per user, not per process: another server
            // running as the same user (containers with one uid) takes from the same limit.
            format!(
                "io_uring setup: {e}: the locked-memory limit is used up; it is shared by every \
                 process of this user, other shardis-server instances included. Raise it \
                 (ulimit -l unlimited, or the container runtime's memlock limit)"
            )
        } else {
            format!("io_uring setup: {e}")
        }
    })?;
    // What the core holds before any client: MEMORY STATS's `startup.allocated`.
    core.memory
        .set_fixed(crate::alloc::core_used(core.id).max(0) as u64);
    // The core listens while it loads (clients get -LOADING), as Redis; the server is ready
    // once every core has loaded.
    let failed = Rc::new(std::cell::RefCell::new(None));
    spawn::spawn(load(core.clone(), ready, failed.clone()));
    spawn::spawn(clock(core.clone()));
    glommio::spawn_local(event_loop).await;
    let failed = failed.borrow_mut().take();
    failed.map_or(Ok(()), Err)
}

/// Loads the core's shard, every core in parallel: with `appendonly yes` from the
/// append-only set alone, as Redis; otherwise from the snapshot set (or a Redis
/// `dump.rdb`). Then says the core is ready, or stops the server with the error.
async fn load(
    core: Rc<Core>,
    ready: std::sync::mpsc::Sender<()>,
    failed: Rc<std::cell::RefCell<Option<String>>>,
) {
    let result = if crate::persist::aof::load::planned() {
        crate::persist::aof::load::start_shard(&core).await
    } else {
        crate::persist::load::load_shard_paced(&core, true, false).await
    };
    crate::persist::loading::core_done();
    match result {
        Ok(()) => {
            if core.id == 0 {
                crate::primary::init(&core.config.borrow());
                crate::replica::init(&core);
            }
            let _ = ready.send(());
        }
        Err(e) => {
            *failed.borrow_mut() = Some(e);
            request_shutdown();
        }
    }
}

/// The core's clock, `hz` times a second: active expiry, the `instantaneous_*` rates, idle
/// clients, the memory limit (see
/// `core::memory::tick`), returning freed memory to the system, and the shutdown check (the
/// tick also wakes a sleeping event loop, which then sees the request).
async fn clock(core: Rc<Core>) {
    let mut collected = std::time::Instant::now();
    while !shutdown_requested() {
        let hz = core.config.borrow().get_i64("hz").clamp(1, 500) as u64;
        core.sleep(Duration::from_millis(1000 / hz)).await;
        let now = core.now_ms();
        // While loading, Redis runs none of its periodic jobs; a signal stops the server
        // without saving (a partial data set must not replace the files).
        if crate::persist::loading::active() {
            if crate::persist::shutdown_signalled() {
                warn!("Received shutdown signal during loading, scheduling shutdown.");
                request_shutdown();
            }
            continue;
        }
        if !core.debug.no_active_expire.get() {
            let started = std::time::Instant::now();
            let expiry_now = core.expiry_clock();
            core.shard.borrow_mut().active_expire(expiry_now, 16);
            core.latency_sample("expire-cycle", started.elapsed());
        }
        core.publish_reported();
        let stats = core.stats.get();
        core.rates.borrow_mut().sample(
            now,
            [
                stats.commands_processed,
                stats.net_input_bytes,
                stats.net_output_bytes,
            ],
        );
        // Client-side caching: a lowered `tracking-table-max-keys` applies even when idle.
        core.track_limit();
        close_idle_clients(&core, now);
        crate::cluster::redirect::redirect_blocked(&core);
        crate::core::client_eviction::tick(&core);
        crate::core::memory::tick(&core);
        crate::alloc::peak_used();
        // Every 100 ms at most: a collection walks the heap's pages.
        if collected.elapsed() >= Duration::from_millis(100) {
            crate::alloc::collect();
            collected = std::time::Instant::now();
        }
        // `save` rules, and the save before a shutdown a signal asked for (core 0).
        crate::persist::save::tick(&core);
        // The log's everysec sync and retries, scheduled and automatic rewrites.
        crate::persist::aof::tick(&core);
    }
}

/// Closes clients idle for more than `timeout` seconds. As Redis, it spares blocked clients
/// (their own timeout applies; one held by CLIENT PAUSE has none), subscribers and MONITOR
/// clients, which wait by design.
fn close_idle_clients(core: &Core, now_ms: u64) {
    let timeout = core.config.borrow().get_i64("timeout");
    if timeout <= 0 {
        return;
    }
    for client in core.clients.borrow().values() {
        let mut c = client.borrow_mut();
        let waits = c.is_blocked() || c.subs.active() || c.monitor;
        if !waits && c.idle_secs(now_ms) > timeout as u64 && !c.closing {
            c.kill();
        }
    }
}
