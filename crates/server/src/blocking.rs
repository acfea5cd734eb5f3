//! Blocking pops (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP): the
//! message-queue use.
//!
//! A client that must wait registers a waiter on every shard owning one of its keys. Each shard
//! keeps, per key, the waiters in arrival order (first come, first served). When a command
//! leaves data on a watched key, the engine reports the key as ready and the shard serves its
//! waiters right after that command, by running the waiter's command (its non-blocking
//! attempt) on the shard. A waiter registered on several shards carries one claim flag: a
//! shard serves it only after winning the claim, and only once it knows the pop will succeed,
//! so an item is never popped for a client that another shard already served.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_channel::mpsc;
use futures_lite::{AsyncReadExt, FutureExt, StreamExt};
use shardis_engine::{Command, Value};
use shardis_resp::Reply;

use crate::conn::Session;
use crate::route;
use crate::runtime::{Core, Request};

/// A client waiting on some keys of one shard.
pub struct Waiter {
    /// The command to run when a key is ready: the client's own command limited to this
    /// shard's keys.
    request: Request,
    keys: Vec<Bytes>,
    /// Set by the shard that serves the client; shared by all its registrations.
    claim: Arc<AtomicBool>,
    reply: mpsc::UnboundedSender<Reply>,
    /// Which value type the command pops.
    wants_zset: bool,
}

/// The waiters of one shard.
#[derive(Default)]
pub struct Blocked {
    by_key: HashMap<(usize, Bytes), VecDeque<u64>>,
    waiters: HashMap<u64, Waiter>,
    next_id: u64,
}

/// True for the null replies that mean "nothing to pop".
fn is_null(reply: &Reply) -> bool {
    matches!(reply, Reply::Nil | Reply::NilArray)
}

/// What became of a waiter that was looked at.
enum Outcome {
    Served,
    /// Another shard served it.
    Gone,
    Wait,
}

/// Registers a waiter on this core's shard, unless its command can be served right away (the
/// first attempt happens here, so no push between the client's attempt and the registration
/// is missed). Returns the waiter id while it waits.
pub fn register(core: &Rc<Core>, waiter: Waiter) -> Option<u64> {
    if !matches!(try_serve(core, &waiter), Outcome::Wait) {
        return None;
    }
    let db = waiter.request.db;
    let mut blocked = core.blocked.borrow_mut();
    let id = blocked.next_id;
    blocked.next_id += 1;
    let mut shard = core.shard.borrow_mut();
    for key in &waiter.keys {
        blocked
            .by_key
            .entry((db, key.clone()))
            .or_default()
            .push_back(id);
        shard.blocked_keys.insert((db, key.clone()));
    }
    blocked.waiters.insert(id, waiter);
    Some(id)
}

/// Removes a waiter (served, timed out, disconnected, or served elsewhere).
pub fn unregister(core: &Core, id: u64) {
    let mut blocked = core.blocked.borrow_mut();
    let Some(waiter) = blocked.waiters.remove(&id) else {
        return;
    };
    let db = waiter.request.db;
    let mut shard = core.shard.borrow_mut();
    for key in waiter.keys {
        let slot = (db, key);
        if let Some(queue) = blocked.by_key.get_mut(&slot) {
            queue.retain(|&w| w != id);
            if queue.is_empty() {
                blocked.by_key.remove(&slot);
                shard.blocked_keys.remove(&slot);
            }
        }
    }
}

/// Runs the waiter's command if one of its keys holds data of the right type and the claim is
/// won.
fn try_serve(core: &Core, waiter: &Waiter) -> Outcome {
    if waiter.claim.load(Ordering::SeqCst) {
        return Outcome::Gone;
    }
    let ready = {
        let now = crate::runtime::now_ms();
        let mut shard = core.shard.borrow_mut();
        let db = waiter.request.db;
        waiter.keys.iter().any(|k| {
            // Keys a transaction holds are served when it releases them.
            !core.key_locked(db, k)
                && shard
                    .dbs
                    .get_mut(db)
                    .and_then(|d| d.get(k, now))
                    .is_some_and(|e| match e.value {
                        Value::List(_) => !waiter.wants_zset,
                        Value::ZSet(_) => waiter.wants_zset,
                        _ => false,
                    })
        })
    };
    if !ready {
        return Outcome::Wait;
    }
    if waiter
        .claim
        .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        return Outcome::Gone;
    }
    let reply = core.execute_unserved(&waiter.request);
    if is_null(&reply) {
        // Only if the key vanished under us: give the claim back and keep waiting.
        waiter.claim.store(false, Ordering::SeqCst);
        return Outcome::Wait;
    }
    let _ = waiter.reply.unbounded_send(reply);
    Outcome::Served
}

/// Serves the waiters of every key reported ready, in arrival order, until no ready key is
/// left (a served BLMOVE may make another key ready).
pub fn serve_ready(core: &Core) {
    loop {
        let ready = std::mem::take(&mut core.shard.borrow_mut().ready_keys);
        if ready.is_empty() {
            return;
        }
        for slot in ready {
            loop {
                let next = core
                    .blocked
                    .borrow()
                    .by_key
                    .get(&slot)
                    .and_then(|q| q.front().copied());
                let Some(id) = next else { break };
                let outcome = {
                    let blocked = core.blocked.borrow();
                    match blocked.waiters.get(&id) {
                        Some(w) => try_serve(core, w),
                        None => Outcome::Gone,
                    }
                };
                match outcome {
                    Outcome::Wait => break, // the key is empty again: the rest keep waiting
                    Outcome::Served | Outcome::Gone => {
                        unregister(core, id);
                        if let Some(q) = core.blocked.borrow_mut().by_key.get_mut(&slot) {
                            q.retain(|&w| w != id);
                        }
                    }
                }
            }
        }
    }
}

/// The argument index of a blocking command's timeout.
fn timeout_index(cmd: &Command, args: &[Bytes]) -> usize {
    match cmd.name.as_str() {
        "blmpop" | "bzmpop" => 1,
        _ => args.len().saturating_sub(1),
    }
}

/// The keys a blocking command waits on: those its key specs say it pops from.
fn waited_key_indexes(cmd: &Command, args: &[Bytes]) -> Vec<usize> {
    let mut out = Vec::new();
    for spec in cmd.facts.key_specs {
        if spec.flags.contains(&"delete") {
            spec.find(args.len(), args, &mut out);
        }
    }
    out
}

/// The client's command limited to `keep` (a subset of its waited keys, in order), for a shard
/// that owns only those keys.
fn restrict(cmd: &Command, args: &[Bytes], waited: &[usize], keep: &[usize]) -> Vec<Bytes> {
    let (Some(&first), Some(&last)) = (waited.first(), waited.last()) else {
        return args.to_vec();
    };
    let mut out: Vec<Bytes> = args[..first].to_vec();
    if cmd.name == "blmpop" || cmd.name == "bzmpop" {
        // numkeys sits right before the keys
        if let Some(n) = out.last_mut() {
            *n = Bytes::from(keep.len().to_string());
        }
    }
    out.extend(keep.iter().map(|&i| args[i].clone()));
    out.extend(args[last + 1..].iter().cloned());
    out
}

/// Runs a blocking command for a client outside MULTI whose first attempt found nothing:
/// waits on the keys' shards until served, timed out, or the client goes away.
pub async fn block(
    s: &mut Session,
    cmd: &'static Command,
    args: Vec<Bytes>,
    db: usize,
    resp3: bool,
) -> Option<Reply> {
    let waited = waited_key_indexes(cmd, &args);
    if waited.is_empty() {
        // No key to wait on means arguments the command rejects (numkeys…): its own error.
        return Some(s.core.execute_with(cmd, &args, db, resp3));
    }
    let shards = s.core.shards;
    let all_keys = {
        let mut idx = Vec::new();
        cmd.key_indexes(&args, &mut idx);
        idx
    };
    let home = all_keys
        .first()
        .map(|&i| route::shard_of(&args[i], shards))
        .unwrap_or(s.core.id);
    let single_shard = all_keys
        .iter()
        .all(|&i| route::shard_of(&args[i], shards) == home);
    let wants_zset = cmd.facts.group == "sorted_set";
    // A move whose destination is on another shard is served as a plain pop here, then
    // pushed to its destination by this connection.
    let (serve_cmd, serve_args, push_to) =
        if !single_shard && (cmd.name == "blmove" || cmd.name == "brpoplpush") {
            match pop_then_push(&args, cmd) {
                Some((pop, push)) => (pop.0, pop.1, Some(push)),
                None => return Some(shardis_engine::error::syntax()),
            }
        } else {
            (cmd, args.clone(), None)
        };
    // Which shard owns which waited keys, in the order the keys were given.
    let mut order: Vec<(usize, Vec<usize>)> = Vec::new();
    for &i in &waited {
        let shard = route::shard_of(&args[i], shards);
        match order.iter_mut().find(|(s, _)| *s == shard) {
            Some((_, keep)) => keep.push(i),
            None => order.push((shard, vec![i])),
        }
    }
    let request_args = |keep: &[usize]| -> Vec<Bytes> {
        let v = if push_to.is_some() {
            serve_args.clone()
        } else if single_shard {
            args.clone()
        } else {
            restrict(cmd, &args, &waited, keep)
        };
        // Waiters outlive the read buffer the arguments point into: own them.
        v.iter().map(|a| Bytes::copy_from_slice(a)).collect()
    };
    // First attempt, with the command's own errors (WRONGTYPE, syntax…) reported at once.
    if push_to.is_some() {
        let mut idx = Vec::new();
        cmd.key_indexes(&args, &mut idx);
        let reply =
            crate::fanout::gather(&s.core, cmd, args.clone(), &idx, &[], db, resp3, None).await;
        if !is_null(&reply) {
            return Some(reply);
        }
    } else {
        for (shard, keep) in &order {
            let request = Request {
                cmd,
                args: request_args(keep),
                db,
                resp3,
            };
            let reply = s
                .core
                .run_on(*shard, move |core| core.execute(&request))
                .await;
            match reply {
                Some(r) if is_null(&r) => {}
                Some(r) => return Some(r),
                None => return Some(Reply::err("ERR shard did not answer")),
            }
        }
    }
    // The first attempt validated everything else, in Redis's order; now the timeout.
    let timeout = match shardis_engine::t_list::parse_timeout(&args[timeout_index(cmd, &args)]) {
        Ok(t) => t,
        Err(e) => return Some(e),
    };
    let (tx, mut rx) = mpsc::unbounded();
    let claim = Arc::new(AtomicBool::new(false));
    let mut registered: Vec<(usize, u64)> = Vec::new();
    for (shard, keep) in order {
        if claim.load(Ordering::SeqCst) {
            break;
        }
        let waiter = Waiter {
            request: Request {
                cmd: serve_cmd,
                args: request_args(&keep),
                db,
                resp3,
            },
            keys: keep
                .iter()
                .map(|&i| Bytes::copy_from_slice(&args[i]))
                .collect(),
            claim: claim.clone(),
            reply: tx.clone(),
            wants_zset,
        };
        if let Some(Some(id)) = s
            .core
            .run_on(shard, move |core| register(core, waiter))
            .await
        {
            registered.push((shard, id));
        }
    }
    let timeout_reply = if cmd.name == "blmove" || cmd.name == "brpoplpush" {
        Reply::Nil
    } else {
        Reply::NilArray
    };
    s.client.borrow_mut().unblock = Some(crate::client::Unblock {
        reply: tx,
        claim: claim.clone(),
        timeout_reply,
    });
    let outcome = wait(s, &mut rx, timeout).await;
    s.client.borrow_mut().unblock = None;
    // Leave nothing behind on any shard.
    for (shard, id) in registered {
        s.core.run_on(shard, move |core| unregister(core, id)).await;
    }
    let reply = match outcome {
        Some(reply) => Some(reply),
        // Timed out or gone: a shard may have served us in the meantime.
        None if claim.load(Ordering::SeqCst) => rx.next().await,
        None => None,
    };
    match (reply, push_to) {
        (Some(reply), Some(push)) => Some(finish_move(s, reply, push, db, resp3).await),
        (Some(reply), None) => Some(reply),
        (None, _) if s.client.borrow().closing => None,
        (None, _) => Some(if cmd.name == "blmove" || cmd.name == "brpoplpush" {
            Reply::Nil
        } else {
            Reply::NilArray
        }),
    }
}

/// Waits for a reply, the timeout (0 = forever), or the client closing. While waiting, more
/// input is kept for after the blocking command, as Redis does.
async fn wait(
    s: &mut Session,
    rx: &mut mpsc::UnboundedReceiver<Reply>,
    timeout: f64,
) -> Option<Reply> {
    enum Event {
        Reply(Option<Reply>),
        Timeout,
        Input(usize),
    }
    let deadline =
        (timeout > 0.0).then(|| std::time::Instant::now() + Duration::from_secs_f64(timeout));
    loop {
        let timer = async {
            match deadline {
                Some(d) => {
                    glommio::timer::sleep(d.saturating_duration_since(std::time::Instant::now()))
                        .await;
                    Event::Timeout
                }
                None => std::future::pending().await,
            }
        };
        let (stream, rbuf) = s.io();
        let start = rbuf.len();
        rbuf.resize(start + 4096, 0);
        let input = async { Event::Input(stream.read(&mut rbuf[start..]).await.unwrap_or(0)) };
        let reply = async { Event::Reply(rx.next().await) };
        let event = reply.or(timer).or(input).await;
        let (_, rbuf) = s.io();
        match event {
            Event::Input(n) => {
                rbuf.truncate(start + n);
                if n == 0 {
                    s.client.borrow_mut().closing = true;
                    return None;
                }
            }
            other => {
                rbuf.truncate(start);
                return match other {
                    Event::Reply(r) => r,
                    _ => None,
                };
            }
        }
    }
}

/// A command and its arguments.
type Invocation = (&'static Command, Vec<Bytes>);

/// Where a moved element goes: the destination key and the push command's name.
type Push = (Bytes, &'static [u8]);

/// For a cross-shard BLMOVE / BRPOPLPUSH: the pop to wait for, and the push to do after.
fn pop_then_push(args: &[Bytes], cmd: &Command) -> Option<(Invocation, Push)> {
    let (from, to): (&[u8], &'static [u8]) = if cmd.name == "brpoplpush" {
        (b"RIGHT", b"LPUSH")
    } else {
        let from: &[u8] = if args[3].eq_ignore_ascii_case(b"left") {
            b"LEFT"
        } else {
            b"RIGHT"
        };
        let to: &'static [u8] = if args[4].eq_ignore_ascii_case(b"left") {
            b"LPUSH"
        } else {
            b"RPUSH"
        };
        (from, to)
    };
    let lmpop = shardis_engine::REGISTRY.get(b"lmpop")?;
    let pop = vec![
        Bytes::from_static(b"LMPOP"),
        Bytes::from_static(b"1"),
        args[1].clone(),
        Bytes::copy_from_slice(from),
    ];
    Some(((lmpop, pop), (args[2].clone(), to)))
}

/// Pushes a popped element to the destination of a cross-shard move; replies with it.
async fn finish_move(
    s: &mut Session,
    popped: Reply,
    (dest, push): Push,
    db: usize,
    resp3: bool,
) -> Reply {
    // LMPOP replies [key, [element]].
    let element = match popped {
        Reply::Array(mut kv) if kv.len() == 2 => match kv.pop() {
            Some(Reply::Array(mut items)) => items.pop(),
            _ => None,
        },
        other => return other,
    };
    let Some(Reply::Bulk(element)) = element else {
        return Reply::Nil;
    };
    let Some(push_cmd) = shardis_engine::REGISTRY.get(push) else {
        return Reply::Nil;
    };
    let shard = route::shard_of(&dest, s.core.shards);
    let args = vec![Bytes::from_static(push), dest, element.clone()];
    let reply = s
        .core
        .run_on(shard, move |core| {
            core.execute(&Request {
                cmd: push_cmd,
                args,
                db,
                resp3,
            })
        })
        .await;
    match reply {
        Some(r) if r.is_error() => r,
        _ => Reply::Bulk(element),
    }
}
