//! The thread-per-core runtime: one pinned glommio executor per shard, each owning its shard,
//! its listener on the shared port (SO_REUSEPORT spreads connections), its end of the channel
//! mesh, its clients and its copy of the configuration. Nothing is shared between cores; they
//! talk only through mesh messages. glommio stays behind this module and `conn.rs`.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_channel::oneshot;
use glommio::channels::channel_mesh::{Full, MeshBuilder, Senders};
use glommio::{LocalExecutorBuilder, Placement};
use shardis_engine::{Command, Ctx, Exec, Shard};
use shardis_resp::Reply;
use tracing::{error, info, warn};

use crate::blocking::{self, Blocked};
use crate::client::ClientHandle;
use crate::config::Config;
use crate::probe;
use crate::txn::{Batch, LockStep, LockTable, TxId};

/// How long shards get to stop after a shutdown request.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Set by SIGTERM/SIGINT or SHUTDOWN; every core polls it and stops.
static SHUTDOWN: AtomicBool = AtomicBool::new(false);

/// Asks every core to stop.
pub fn request_shutdown() {
    SHUTDOWN.store(true, Ordering::SeqCst);
}

fn shutdown_requested() -> bool {
    SHUTDOWN.load(Ordering::SeqCst)
}

extern "C" fn on_signal(_: libc::c_int) {
    SHUTDOWN.store(true, Ordering::SeqCst);
}

/// One command bound for a shard.
pub struct Request {
    pub cmd: &'static Command,
    pub args: Vec<Bytes>,
    pub db: usize,
    pub resp3: bool,
}

/// Work sent to another core, run there with that core's state.
pub type Task = Box<dyn FnOnce(&Rc<Core>) + Send>;

/// A mesh message.
pub enum Msg {
    /// Commands for this shard, in order (one read of one connection, or one transaction's
    /// steps): executed back to back, so a batch is atomic on its shard.
    Batch(Batch),
    /// Anything else: runs on the receiving core.
    Run(Task),
}

/// Counters of one core, summed by INFO.
#[derive(Default, Clone, Copy)]
pub struct CoreStats {
    pub connections_received: u64,
    pub commands_processed: u64,
    pub net_input_bytes: u64,
    pub net_output_bytes: u64,
    pub rejected_connections: u64,
}

/// Everything one core owns.
pub struct Core {
    pub id: usize,
    pub shards: usize,
    pub shard: RefCell<Shard>,
    pub config: RefCell<Config>,
    pub clients: RefCell<BTreeMap<u64, ClientHandle>>,
    /// Clients blocked on this shard's keys.
    pub blocked: RefCell<Blocked>,
    /// This shard's lock (see `txn`).
    pub lock: RefCell<LockTable>,
    pub stats: Cell<CoreStats>,
    pub started: Instant,
    next_client: Cell<u64>,
    mesh: Senders<Msg>,
}

/// Wall-clock milliseconds: the "now" every command of a batch sees.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Core {
    /// Runs a shard command on this core's shard.
    pub fn execute(&self, req: &Request) -> Reply {
        self.execute_with(req.cmd, &req.args, req.db, req.resp3)
    }

    /// Runs a shard command, then serves the clients blocked on keys it filled.
    pub fn execute_with(&self, cmd: &Command, args: &[Bytes], db: usize, resp3: bool) -> Reply {
        let reply = self.run_command(cmd, args, db, resp3);
        if !self.shard.borrow().ready_keys.is_empty() {
            blocking::serve_ready(self);
        }
        reply
    }

    /// Runs a shard command without serving blocked clients (used while serving them).
    pub fn execute_unserved(&self, req: &Request) -> Reply {
        self.run_command(req.cmd, &req.args, req.db, req.resp3)
    }

    fn run_command(&self, cmd: &Command, args: &[Bytes], db: usize, resp3: bool) -> Reply {
        let Exec::Shard(f) = cmd.exec else {
            return Reply::err("ERR internal: not a shard command");
        };
        let mut shard = self.shard.borrow_mut();
        shard.stats.commands_processed += 1;
        let dirty = shard.dirty;
        let reply = f(&mut Ctx::new(&mut shard, db, now_ms(), resp3), args);
        if shard.dirty != dirty && !shard.watched.is_empty() {
            touch_written_keys(&mut shard, cmd, args, db);
        }
        reply
    }

    /// A new client id, unique across cores (ids interleave: core i hands out i+1, i+1+N…).
    pub fn next_client_id(&self) -> u64 {
        let n = self.next_client.get();
        self.next_client.set(n + 1);
        n * self.shards as u64 + self.id as u64 + 1
    }

    pub fn bump(&self, f: impl FnOnce(&mut CoreStats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }

    /// Sends a batch of commands to another shard, on behalf of transaction `tx` if any; the
    /// replies come back in order.
    pub async fn send_batch(
        &self,
        shard: usize,
        requests: Vec<Request>,
        tx: Option<TxId>,
    ) -> oneshot::Receiver<Option<Vec<Reply>>> {
        self.send_batch_with(shard, requests, tx, LockStep::None)
            .await
    }

    /// Sends a batch of transaction `tx` with a lock step fused to it.
    pub async fn send_locked_batch(
        &self,
        shard: usize,
        requests: Vec<Request>,
        tx: TxId,
        lock: LockStep,
    ) -> oneshot::Receiver<Option<Vec<Reply>>> {
        self.send_batch_with(shard, requests, Some(tx), lock).await
    }

    async fn send_batch_with(
        &self,
        shard: usize,
        requests: Vec<Request>,
        tx: Option<TxId>,
        lock: LockStep,
    ) -> oneshot::Receiver<Option<Vec<Reply>>> {
        let (reply, rx) = oneshot::channel();
        let batch = Batch {
            requests: requests.into(),
            done: Vec::new(),
            reply,
            tx,
            atomic: false,
            watch: Vec::new(),
            lock,
        };
        self.send_to(shard, Msg::Batch(batch)).await;
        rx
    }

    /// Sends a message to another core.
    pub async fn send_to(&self, shard: usize, msg: Msg) {
        if self.mesh.send_to(shard, msg).await.is_err() {
            warn!(shard, "mesh send failed");
        }
    }

    /// Runs `task` on core `shard` without waiting for it.
    pub async fn post(&self, shard: usize, task: Task) {
        self.send_to(shard, Msg::Run(task)).await;
    }

    /// Runs `f` on core `shard` (directly when it is this core) and returns its result.
    pub async fn run_on<R, F>(self: &Rc<Self>, shard: usize, f: F) -> Option<R>
    where
        R: Send + 'static,
        F: FnOnce(&Rc<Core>) -> R + Send + 'static,
    {
        if shard == self.id {
            return Some(f(self));
        }
        let (tx, rx) = oneshot::channel();
        let task: Task = Box::new(move |core| {
            let _ = tx.send(f(core));
        });
        if self.mesh.send_to(shard, Msg::Run(task)).await.is_err() {
            return None;
        }
        rx.await.ok()
    }

    /// Runs `f` on every core, results in shard order.
    pub async fn broadcast<R, F>(self: &Rc<Self>, f: F) -> Vec<R>
    where
        R: Send + 'static,
        F: Fn(&Rc<Core>) -> R + Send + Clone + 'static,
    {
        let mut pending = Vec::with_capacity(self.shards);
        let mut local = None;
        for shard in 0..self.shards {
            if shard == self.id {
                continue;
            }
            let f = f.clone();
            let (tx, rx) = oneshot::channel();
            let task: Task = Box::new(move |core| {
                let _ = tx.send(f(core));
            });
            if self.mesh.send_to(shard, Msg::Run(task)).await.is_ok() {
                pending.push((shard, rx));
            }
        }
        local.get_or_insert_with(|| f(self));
        let mut out: Vec<(usize, R)> = Vec::with_capacity(self.shards);
        if let Some(r) = local {
            out.push((self.id, r));
        }
        for (shard, rx) in pending {
            if let Ok(r) = rx.await {
                out.push((shard, r));
            }
        }
        out.sort_by_key(|(s, _)| *s);
        out.into_iter().map(|(_, r)| r).collect()
    }

    fn handle(self: &Rc<Self>, msg: Msg) {
        match msg {
            Msg::Batch(batch) => self.run_batch(batch),
            Msg::Run(task) => task(self),
        }
    }
}

/// Marks the keys a write command may have changed as modified for WATCH.
fn touch_written_keys(shard: &mut Shard, cmd: &Command, args: &[Bytes], db: usize) {
    let mut idx = Vec::new();
    cmd.written_key_indexes(args, &mut idx);
    for i in idx {
        shard.watched.touch(db, &args[i]);
    }
}

/// Starts the server and blocks until it stops.
pub fn run(config: Config) -> Result<(), String> {
    probe::check_io_uring()?;
    let cpus = probe::allowed_cpus();
    let shards = match config.get_i64("shards") {
        n if n > 0 => n as usize,
        _ => cpus.len().max(1),
    };
    check_port_free(&config)?;
    let (io_memory, memlock_note) = probe::size_io_memory(shards)?;
    info!("{memlock_note}");
    // SAFETY: installing a handler that only stores to an atomic is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let mesh: MeshBuilder<Msg, Full> = MeshBuilder::full(shards, 1024);
    let spin = Duration::from_micros(config.get_i64("spin-before-park-us").max(0) as u64);
    let mut handles = Vec::with_capacity(shards);
    for i in 0..shards {
        let cpu = cpus.get(i % cpus.len().max(1)).copied();
        let placement = match cpu {
            Some(cpu) => Placement::Fixed(cpu),
            None => Placement::Unbound,
        };
        let mesh = mesh.clone();
        let config = config.clone();
        let mut builder = LocalExecutorBuilder::new(placement)
            .name(&format!("shard-{i}"))
            .io_memory(io_memory);
        if !spin.is_zero() {
            builder = builder.spin_before_park(spin);
        }
        let handle = builder
            .spawn(move || async move { core_main(mesh, config, shards).await })
            .map_err(|e| format!("cannot start executor {i}: {e}"))?;
        handles.push(handle);
    }
    info!(
        shards,
        port = config.get("port"),
        "Ready to accept connections"
    );
    // Join the executors from helper threads so that a shutdown cannot hang on one that is
    // slow to wind down (in-flight io_uring operations): after the grace period, exit anyway.
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

async fn core_main(
    mesh: MeshBuilder<Msg, Full>,
    config: Config,
    shards: usize,
) -> Result<(), String> {
    let (senders, mut receivers) = mesh
        .join()
        .await
        .map_err(|_| "cannot join the channel mesh".to_string())?;
    let id = senders.peer_id();
    let mut shard = Shard::new(id, config.engine());
    shard.seed(now_ms() ^ ((id as u64) << 48) ^ std::process::id() as u64);
    let core = Rc::new(Core {
        id,
        shards,
        shard: RefCell::new(shard),
        config: RefCell::new(config),
        clients: RefCell::new(BTreeMap::new()),
        blocked: RefCell::new(Blocked::default()),
        lock: RefCell::new(LockTable::default()),
        stats: Cell::new(CoreStats::default()),
        started: Instant::now(),
        next_client: Cell::new(0),
        mesh: senders,
    });
    // One drain task per peer. It never sends on the mesh itself (replies go by oneshot), so
    // two cores can never block on each other's full channels.
    for (_, receiver) in receivers.streams() {
        let core = core.clone();
        glommio::spawn_local(async move {
            while let Some(msg) = receiver.recv().await {
                core.handle(msg);
            }
        })
        .detach();
    }
    let listeners = bind_listeners(&core)?;
    for listener in listeners {
        let core = core.clone();
        glommio::spawn_local(async move {
            loop {
                match listener.accept().await {
                    Ok(stream) => {
                        let core = core.clone();
                        glommio::spawn_local(crate::conn::serve(core, stream)).detach();
                    }
                    Err(e) => {
                        error!("accept: {e}");
                        glommio::timer::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        })
        .detach();
    }
    // The core's clock: active expiry at `hz`, and the shutdown check.
    while !shutdown_requested() {
        let hz = core.config.borrow().get_i64("hz").clamp(1, 500) as u64;
        glommio::timer::sleep(Duration::from_millis(1000 / hz)).await;
        core.shard.borrow_mut().active_expire(now_ms(), 16);
    }
    Ok(())
}

/// Every shard binds the port with SO_REUSEPORT, which would silently share it with another
/// process already listening there. Refuse to start instead, as Redis does: bind it once
/// without SO_REUSEPORT first.
fn check_port_free(config: &Config) -> Result<(), String> {
    let port = config.get_i64("port");
    if port == 0 {
        return Err("port 0 (no TCP listener) is not supported".into());
    }
    for (addr, optional) in config.bind_addrs() {
        let target = if addr.contains(':') {
            format!("[{addr}]:{port}")
        } else {
            format!("{addr}:{port}")
        };
        match std::net::TcpListener::bind(target.as_str()) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                return Err(format!("Could not create server TCP listening socket {target}: bind: Address already in use"));
            }
            Err(e) if optional => warn!("could not bind {target}: {e}"),
            Err(e) => {
                return Err(format!(
                    "Could not create server TCP listening socket {target}: {e}"
                ))
            }
        }
    }
    Ok(())
}

fn bind_listeners(core: &Core) -> Result<Vec<glommio::net::TcpListener>, String> {
    let config = core.config.borrow();
    let port = config.get_i64("port");
    let mut out = Vec::new();
    for (addr, optional) in config.bind_addrs() {
        let host = if addr.contains(':') {
            format!("[{addr}]")
        } else {
            addr.clone()
        };
        let target = format!("{host}:{port}");
        match glommio::net::TcpListener::bind(target.as_str()) {
            Ok(l) => out.push(l),
            Err(e) if optional => {
                if core.id == 0 {
                    warn!("could not bind {target}: {e}");
                }
            }
            Err(e) => return Err(format!("could not bind {target}: {e}")),
        }
    }
    if out.is_empty() {
        return Err("no address to listen on".into());
    }
    Ok(out)
}
