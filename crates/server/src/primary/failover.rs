//! FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT ms]: a primary hands its role to one of
//! its replicas without losing a write, as Redis 7.0 does.
//!
//! 1. Writes are held (a pause of their own, `Core::pause_for_failover`; reads go on) and the
//!    hub sends nothing of its own (no PING, no GETACK), so our offset stops moving.
//! 2. A task polls the replicas' acknowledgements until the target (or, without TO, any
//!    replica) has acknowledged our whole stream — or TIMEOUT passes: then FORCE goes on
//!    anyway, else the failover is aborted.
//! 3. This server follows the target and its first PSYNC carries `FAILOVER` with our id and
//!    offset: the target promotes itself and answers `+CONTINUE` (`psync` in `super`).
//! 4. Once the target answered, the pause ends: held writes now get -READONLY. A refusal
//!    (or ABORT) makes this server a primary again, with a new id (psync2 keeps the old one
//!    valid for its replicas).

use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use shardis_resp::Reply;
use tracing::info;

use super::lock;
use crate::conn::session::Session;
use crate::core::Core;
use crate::replica;

/// Redis's `failover_state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    None,
    /// Waiting for a replica to acknowledge our whole stream.
    WaitForSync,
    /// Following the target; its answer to `PSYNC ... FAILOVER` is awaited.
    InProgress,
}

struct State {
    phase: Phase,
    /// The replica taking over (named by TO, or the first caught up).
    target: Option<(String, u16)>,
    deadline: Option<Instant>,
    force: bool,
    /// The target's answer to PSYNC FAILOVER (true: it accepted).
    answer: Option<bool>,
    /// The task switching this server to a replica is between its steps (ABORT waits).
    switching: bool,
    /// Which FAILOVER the running task serves (a later one's task replaces it).
    epoch: u64,
}

static STATE: Mutex<State> = Mutex::new(State {
    phase: Phase::None,
    target: None,
    deadline: None,
    force: false,
    answer: None,
    switching: false,
    epoch: 0,
});

/// A failover is under way (checked on the hub's and PSYNC's paths without the lock).
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// How often the task looks at the replicas' acknowledgements and the target's answer.
const POLL: Duration = Duration::from_millis(10);

/// Whether a failover is under way (REPLICAOF and SYNC are refused, the hub is quiet).
pub fn active() -> bool {
    ACTIVE.load(Ordering::SeqCst)
}

/// Whether the link's next PSYNC must carry FAILOVER.
pub fn in_progress() -> bool {
    lock(&STATE).phase == Phase::InProgress
}

/// INFO replication's `master_failover_state`.
pub fn state_name() -> &'static str {
    match lock(&STATE).phase {
        Phase::None => "no-failover",
        Phase::WaitForSync => "waiting-for-sync",
        Phase::InProgress => "failover-in-progress",
    }
}

/// The link's report of the target's answer to `PSYNC ... FAILOVER`.
pub fn psync_answered(accepted: bool) {
    let mut st = lock(&STATE);
    if st.phase == Phase::InProgress {
        st.answer = Some(accepted);
    }
}

/// What FAILOVER's arguments ask for.
struct Request {
    target: Option<(String, i64)>,
    timeout_ms: i64,
    force: bool,
}

/// Parses FAILOVER's arguments in Redis's order and with its errors.
fn parse(args: &[Bytes]) -> Result<Request, Reply> {
    let int = |a: &Bytes| {
        std::str::from_utf8(a)
            .ok()
            .and_then(|v| v.parse::<i64>().ok())
            .ok_or_else(|| Reply::err("ERR value is not an integer or out of range"))
    };
    let mut req = Request {
        target: None,
        timeout_ms: 0,
        force: false,
    };
    let mut j = 1;
    while j < args.len() {
        let word = args[j].to_ascii_lowercase();
        if word == b"timeout" && j + 1 < args.len() && req.timeout_ms == 0 {
            req.timeout_ms = int(&args[j + 1])?;
            if req.timeout_ms <= 0 {
                return Err(Reply::err("ERR FAILOVER timeout must be greater than 0"));
            }
            j += 2;
        } else if word == b"to" && j + 2 < args.len() && req.target.is_none() {
            let port = int(&args[j + 2])?;
            req.target = Some((String::from_utf8_lossy(&args[j + 1]).into_owned(), port));
            j += 3;
        } else if word == b"force" && !req.force {
            req.force = true;
            j += 1;
        } else {
            return Err(shardis_engine::error::syntax());
        }
    }
    Ok(req)
}

/// FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT ms].
pub async fn failover(s: &mut Session, args: &[Bytes]) -> Reply {
    if crate::cluster::enabled() {
        return Reply::err(
            "ERR FAILOVER not allowed in cluster mode. Use CLUSTER FAILOVER command instead.",
        );
    }
    if args.len() == 2 && args[1].eq_ignore_ascii_case(b"abort") {
        if !active() {
            return Reply::err("ERR No failover in progress.");
        }
        abort(&s.core, "Failover manually aborted").await;
        return Reply::Ok;
    }
    let req = match parse(args) {
        Ok(req) => req,
        Err(e) => return e,
    };
    if active() {
        return Reply::err("ERR FAILOVER already in progress.");
    }
    if replica::is_replica() {
        return Reply::err("ERR FAILOVER is not valid when server is a replica.");
    }
    if !super::has_replicas() {
        return Reply::err("ERR FAILOVER requires connected replicas.");
    }
    if req.force && (req.timeout_ms == 0 || req.target.is_none()) {
        return Reply::err(
            "ERR FAILOVER with force option requires both a timeout and target HOST and IP.",
        );
    }
    let target = match req.target {
        Some((host, port)) => match super::replica_online(&host, port) {
            None => return Reply::err("ERR FAILOVER target HOST and PORT is not a replica."),
            Some(false) => return Reply::err("ERR FAILOVER target replica is not online."),
            // A replica's listening port is a u16: a port that matched one is one.
            Some(true) => u16::try_from(port).ok().map(|p| (host, p)),
        },
        None => None,
    };
    if ACTIVE
        .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        return Reply::err("ERR FAILOVER already in progress.");
    }
    match &target {
        Some((host, port)) => info!("FAILOVER requested to {host}:{port}."),
        None => info!("FAILOVER requested to any replica."),
    }
    let epoch = {
        let mut st = lock(&STATE);
        st.phase = Phase::WaitForSync;
        st.target = target;
        st.deadline = u64::try_from(req.timeout_ms)
            .ok()
            .filter(|&ms| ms > 0)
            .and_then(|ms| Instant::now().checked_add(Duration::from_millis(ms)));
        st.force = req.force;
        st.answer = None;
        st.switching = false;
        st.epoch += 1;
        st.epoch
    };
    s.core.broadcast(|c| c.pause_for_failover(true)).await;
    crate::core::spawn::spawn(run(s.core.clone(), epoch));
    Reply::Ok
}

/// What the task does next.
enum Step {
    Wait,
    /// This task's failover is over (ended elsewhere).
    Stop,
    Abort(&'static str),
    /// Follow the target with a `PSYNC ... FAILOVER`.
    Switch(String, u16),
    /// The target took over: the pause ends.
    Done,
}

fn next_step(epoch: u64) -> Step {
    let mut st = lock(&STATE);
    if st.epoch != epoch || st.phase == Phase::None {
        return Step::Stop;
    }
    match st.phase {
        Phase::None => Step::Stop,
        Phase::WaitForSync => {
            if st.deadline.is_some_and(|d| Instant::now() >= d) {
                return match (st.force, st.target.clone()) {
                    (true, Some((host, port))) => {
                        info!("FAILOVER to {host}:{port} time out exceeded, failing over.");
                        st.phase = Phase::InProgress;
                        st.switching = true;
                        Step::Switch(host, port)
                    }
                    _ => Step::Abort("Replica never caught up before timeout"),
                };
            }
            match super::caught_up(st.target.as_ref()) {
                Some((host, port)) => {
                    info!("Failover target {host}:{port} is synced, failing over.");
                    st.target = Some((host.clone(), port));
                    st.phase = Phase::InProgress;
                    st.switching = true;
                    Step::Switch(host, port)
                }
                None => Step::Wait,
            }
        }
        Phase::InProgress => match st.answer {
            None => Step::Wait,
            Some(true) => Step::Done,
            Some(false) => Step::Abort("Failover target rejected psync request"),
        },
    }
}

/// The failover's task (on the core that ran FAILOVER).
async fn run(core: Rc<Core>, epoch: u64) {
    loop {
        core.sleep(POLL).await;
        match next_step(epoch) {
            Step::Wait => {}
            Step::Stop => return,
            Step::Abort(why) => {
                abort(&core, why).await;
                return;
            }
            Step::Switch(host, port) => {
                // The target continues our history from our offset.
                let (replid, _, _) = replica::ids();
                let resume = Some((replid, replica::offset()));
                replica::set_master(&core, Some((host, port)), resume).await;
                lock(&STATE).switching = false;
            }
            Step::Done => {
                end(&core).await;
                return;
            }
        }
    }
}

/// Ends the failover (whichever way) and lifts its pause.
async fn end(core: &Rc<Core>) {
    {
        let mut st = lock(&STATE);
        st.phase = Phase::None;
        st.target = None;
        st.deadline = None;
        st.force = false;
        st.answer = None;
    }
    core.broadcast(|c| c.pause_for_failover(false)).await;
    ACTIVE.store(false, Ordering::SeqCst);
}

/// Aborts the failover: a server already following the target is a primary again.
async fn abort(core: &Rc<Core>, why: &str) {
    // The task may be between its switch's steps: let it finish them first.
    while lock(&STATE).switching {
        core.sleep(Duration::from_millis(1)).await;
    }
    let (phase, target) = {
        let st = lock(&STATE);
        (st.phase, st.target.clone())
    };
    if phase == Phase::None {
        return;
    }
    match target {
        Some((host, port)) => info!("FAILOVER to {host}:{port} aborted: {why}"),
        None => info!("FAILOVER to any replica aborted: {why}"),
    }
    if phase == Phase::InProgress {
        replica::set_master(core, None, None).await;
    }
    end(core).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<Bytes> {
        words
            .iter()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    fn err(words: &[&str]) -> String {
        match parse(&args(words)) {
            Err(Reply::Error(e)) => e.to_string(),
            Err(other) => format!("{other:?}"),
            Ok(_) => "ok".into(),
        }
    }

    #[test]
    fn parses_as_redis() {
        let r = parse(&args(&[
            "FAILOVER", "to", "h", "7", "FORCE", "timeout", "50",
        ]))
        .unwrap_or_else(|_| panic!("valid"));
        assert_eq!(r.target, Some(("h".to_string(), 7)));
        assert_eq!(r.timeout_ms, 50);
        assert!(r.force);
        let r = parse(&args(&["FAILOVER"])).unwrap_or_else(|_| panic!("valid"));
        assert!(r.target.is_none() && r.timeout_ms == 0 && !r.force);
    }

    #[test]
    fn refuses_as_redis() {
        assert!(err(&["FAILOVER", "timeout", "0"]).contains("must be greater than 0"));
        assert!(err(&["FAILOVER", "timeout", "-5"]).contains("must be greater than 0"));
        assert!(err(&["FAILOVER", "timeout", "x"]).contains("not an integer"));
        assert!(err(&["FAILOVER", "to", "h", "p"]).contains("not an integer"));
        // Repeated options, a missing value, ABORT among others: syntax errors.
        for bad in [
            &["FAILOVER", "timeout", "5", "timeout", "6"][..],
            &["FAILOVER", "force", "force"],
            &["FAILOVER", "to", "h"],
            &["FAILOVER", "to", "h", "1", "to", "h", "2"],
            &["FAILOVER", "abort", "timeout", "5"],
            &["FAILOVER", "timeout"],
        ] {
            assert!(err(bad).contains("syntax error"), "{bad:?}: {}", err(bad));
        }
    }
}
