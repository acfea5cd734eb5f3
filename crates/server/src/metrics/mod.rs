//! The Prometheus endpoint: `GET /metrics` on `metrics-port` (0, the default, turns it off).
//!
//! It runs on a thread of its own, not on a core: the cores' event loops sleep in their own
//! io_uring rings and glommio's reactor is not polled while they do, so a socket served from
//! a core would have to live inside the event loop's hot path. The thread does the HTTP
//! (`http`: bounded, one connection at a time) and the encoding (`exposition`); for the
//! figures it posts one task to core 0, which reads every core's figures through the
//! fan-out (`gather`), so a scrape costs the cores one message each and the command path
//! keeps only plain per-core counters.

pub mod exposition;
pub mod gather;
pub mod http;

use std::net::{SocketAddr, TcpListener};
use std::rc::Rc;
use std::time::Duration;

use tracing::{info, warn};

use crate::config::Config;
use crate::core::mesh::Outside;
use crate::core::{shutdown_requested, spawn, Core, Msg};
use crate::io::listen;

/// Connections waiting to be accepted.
const BACKLOG: i32 = 64;
/// How long a scrape waits for the cores' figures before answering 503.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(4);

/// The endpoint's listening sockets, bound before the cores start (so a bad address stops
/// start-up, as for the server's own port).
pub struct Endpoint {
    listeners: Vec<TcpListener>,
}

/// Binds `metrics-bind` (or, when empty, the server's `bind` addresses) on `metrics-port`;
/// None when the port is 0.
pub fn bind(config: &Config) -> Result<Option<Endpoint>, String> {
    let port = config.get_i64("metrics-port");
    if port == 0 {
        return Ok(None);
    }
    let bind = match config.get("metrics-bind") {
        "" => config.get("bind"),
        b => b,
    };
    let mut listeners = Vec::new();
    for a in listen::bind_addrs(bind, port as u16)? {
        match bind_one(&a.addr) {
            Ok(l) => listeners.push(l),
            Err(e) if a.optional => warn!("could not bind the metrics port on {}: {e}", a.addr),
            Err(e) => {
                return Err(format!(
                    "Could not create the metrics listening socket {}: {e}",
                    a.addr
                ))
            }
        }
    }
    if listeners.is_empty() {
        return Err("metrics-port: no address to listen on".into());
    }
    Ok(Some(Endpoint { listeners }))
}

fn bind_one(addr: &SocketAddr) -> std::io::Result<TcpListener> {
    let l = TcpListener::from(listen::listen_alone(addr, BACKLOG)?);
    l.set_nonblocking(true)?;
    Ok(l)
}

impl Endpoint {
    /// Serves on a thread of its own until shutdown; `cores` reaches core 0.
    pub fn start(self, cores: Outside<Msg>) -> Result<(), String> {
        for l in &self.listeners {
            if let Ok(a) = l.local_addr() {
                info!("Prometheus metrics at http://{a}/metrics");
            }
        }
        std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                let mut waker = Waker::new();
                http::serve(&self.listeners, shutdown_requested, || {
                    scrape(&cores, &mut waker)
                });
            })
            .map(drop)
            .map_err(|e| format!("cannot start the metrics thread: {e}"))
    }
}

/// Takes a snapshot on core 0 and encodes it here; None if the cores did not answer.
fn scrape(cores: &Outside<Msg>, waker: &mut Waker) -> Option<String> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let task = Box::new(move |core: &Rc<Core>| {
        let core = core.clone();
        spawn::spawn(async move {
            let _ = tx.send(gather::snapshot(&core).await);
        });
    });
    if let Some(ring) = cores.send(0, Msg::Run(task)) {
        waker.wake(ring);
    }
    let snapshot = rx.recv_timeout(SCRAPE_TIMEOUT).ok()?;
    Some(exposition::encode(snapshot))
}

/// Wakes a sleeping core the way the cores wake each other: a `MSG_RING` completion posted
/// into its ring (which the event loop ignores, and which ends its wait), from a small ring
/// of this thread's. Without one (setup failed) the core still finds the message when its
/// clock next wakes it, within 1/hz seconds.
pub(crate) struct Waker(Option<io_uring::IoUring>);

impl Waker {
    pub(crate) fn new() -> Waker {
        match io_uring::IoUring::new(2) {
            Ok(ring) => Waker(Some(ring)),
            Err(e) => {
                warn!("metrics: no io_uring to wake cores with ({e}); scrapes wait for the core's clock");
                Waker(None)
            }
        }
    }

    pub(crate) fn wake(&mut self, ring_fd: i32) {
        let Some(ring) = &mut self.0 else { return };
        let sqe =
            io_uring::opcode::MsgRingData::new(io_uring::types::Fd(ring_fd), 0, 0, None).build();
        // SAFETY: the entry refers to no memory of ours.
        if unsafe { ring.submission().push(&sqe) }.is_ok() {
            let _ = ring.submit_and_wait(1);
        }
        ring.completion().for_each(drop);
    }
}
