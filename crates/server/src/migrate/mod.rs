//! MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE] [AUTH password]
//! [AUTH2 username password] [KEYS key ...], as Redis 7.0: the keys' DUMP payloads are sent
//! to the target as RESTORE (RESTORE-ASKING in cluster mode) and, unless COPY, each key the
//! target acknowledged is deleted here.
//!
//! The keys may live on any shard. The command takes the lock of their shards for its whole
//! run (other clients' commands on those keys wait, as every client waits while Redis runs
//! MIGRATE), so no write lands between a key's serialisation and its deletion. The exchange
//! with the target runs on a helper thread (`link`), which answers through the core's mesh.

mod link;

use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures_channel::oneshot;
use shardis_engine::{command, error, num, Ctx};
use shardis_resp::Reply;

use crate::conn::session::Session;
use crate::coord::{route, txn};
use crate::core::{Core, Msg, Request};

pub use link::cached_sockets;

/// The longest timeout honoured (a larger one is as good as none).
const MAX_TIMEOUT_MS: i64 = 365 * 24 * 3600 * 1000;

/// MIGRATE's arguments.
#[derive(Debug, PartialEq)]
struct Plan {
    copy: bool,
    replace: bool,
    user: Option<Bytes>,
    password: Option<Bytes>,
    keys: Vec<Bytes>,
    timeout_ms: i64,
    dbid: i64,
}

fn parse(args: &[Bytes]) -> Result<Plan, Reply> {
    let mut plan = Plan {
        copy: false,
        replace: false,
        user: None,
        password: None,
        keys: vec![args[3].clone()],
        timeout_ms: 0,
        dbid: 0,
    };
    let mut j = 6;
    while j < args.len() {
        let a = &args[j];
        let more = args.len() - 1 - j;
        if a.eq_ignore_ascii_case(b"copy") {
            plan.copy = true;
        } else if a.eq_ignore_ascii_case(b"replace") {
            plan.replace = true;
        } else if a.eq_ignore_ascii_case(b"auth") {
            if more == 0 {
                return Err(error::syntax());
            }
            j += 1;
            plan.password = Some(args[j].clone());
        } else if a.eq_ignore_ascii_case(b"auth2") {
            if more < 2 {
                return Err(error::syntax());
            }
            plan.user = Some(args[j + 1].clone());
            plan.password = Some(args[j + 2].clone());
            j += 2;
        } else if a.eq_ignore_ascii_case(b"keys") {
            if !args[3].is_empty() {
                return Err(Reply::err(
                    "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string",
                ));
            }
            plan.keys = args[j + 1..].to_vec();
            break;
        } else {
            return Err(error::syntax());
        }
        j += 1;
    }
    plan.timeout_ms = num::parse_i64(&args[5]).ok_or_else(error::not_integer)?;
    plan.dbid = num::parse_i64(&args[4]).ok_or_else(error::not_integer)?;
    if plan.timeout_ms <= 0 {
        plan.timeout_ms = 1000;
    }
    Ok(plan)
}

/// Appends `words` as one RESP command.
fn encode(out: &mut Vec<u8>, words: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", words.len()).as_bytes());
    for w in words {
        out.extend_from_slice(format!("${}\r\n", w.len()).as_bytes());
        out.extend_from_slice(w);
        out.extend_from_slice(b"\r\n");
    }
}

/// MIGRATE, run in the client's task.
pub async fn migrate(s: &mut Session, args: &[Bytes]) -> Reply {
    let plan = match parse(args) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let core = s.core.clone();
    let (db, _) = s.db_resp3();
    let (host, port) = (
        String::from_utf8_lossy(&args[1]).into_owned(),
        String::from_utf8_lossy(&args[2]).into_owned(),
    );
    // Inside EXEC the transaction already holds every shard it needs.
    if let Some(tx) = s.tx {
        return run(&core, db, plan, host, port, tx).await;
    }
    let shards = core.shards;
    let held = txn::lock(
        &core,
        txn::plan_keys(shards, plan.keys.iter().map(|k| (db, &k[..]))),
    )
    .await;
    let tx = held.tx;
    let reply = run(&core, db, plan, host, port, tx).await;
    txn::unlock(&core, held).await;
    reply
}

async fn run(
    core: &Rc<Core>,
    db: usize,
    plan: Plan,
    host: String,
    port: String,
    tx: txn::TxId,
) -> Reply {
    let shards = core.shards;
    // Each key's payload and time to live, read on its shard (in the order given).
    let mut found: Vec<Option<(Bytes, u64)>> = vec![None; plan.keys.len()];
    let mut by_shard: Vec<(usize, Vec<usize>)> = Vec::new();
    for (i, k) in plan.keys.iter().enumerate() {
        let shard = route::shard_of(k, shards);
        match by_shard.iter_mut().find(|(s, _)| *s == shard) {
            Some((_, at)) => at.push(i),
            None => by_shard.push((shard, vec![i])),
        }
    }
    for (shard, at) in by_shard {
        let keys: Vec<Bytes> = at.iter().map(|&i| plan.keys[i].clone()).collect();
        let got = core
            .run_on(shard, move |c| {
                let now = c.now_ms();
                let mut sh = c.shard.borrow_mut();
                let mut ctx = Ctx::new(&mut sh, db, now, false);
                keys.iter()
                    .map(|k| shardis_engine::t_dump::migrate_payload(&mut ctx, k))
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
        for (i, g) in at.into_iter().zip(got) {
            found[i] = g;
        }
    }
    let moving: Vec<(Bytes, Bytes, u64)> = plan
        .keys
        .iter()
        .zip(found)
        .filter_map(|(k, f)| f.map(|(payload, ttl)| (k.clone(), payload, ttl)))
        .collect();
    if moving.is_empty() {
        return Reply::Simple("NOKEY".into());
    }
    let restore: &[u8] = if crate::cluster::enabled() {
        b"RESTORE-ASKING"
    } else {
        b"RESTORE"
    };
    let mut restores = Vec::new();
    for (key, payload, ttl) in &moving {
        let ttl = ttl.to_string();
        let mut words: Vec<&[u8]> = vec![restore, key, ttl.as_bytes(), payload];
        if plan.replace {
            words.push(b"REPLACE");
        }
        encode(&mut restores, &words);
    }
    let auth = plan.password.as_ref().map(|pw| {
        let mut out = Vec::new();
        match &plan.user {
            Some(user) => encode(&mut out, &[b"AUTH", user, pw]),
            None => encode(&mut out, &[b"AUTH", pw]),
        }
        out
    });
    let job = link::Job {
        host,
        port,
        timeout: Duration::from_millis(plan.timeout_ms.min(MAX_TIMEOUT_MS) as u64),
        dbid: plan.dbid,
        auth,
        restores,
        count: moving.len(),
    };
    let (auth, select, replies, socket_error) = match exchange(core, job).await {
        link::Outcome::ConnectFailed => {
            return Reply::err("IOERR error or timeout connecting to the client")
        }
        link::Outcome::Failed { writing } => {
            return Reply::error(format!(
                "IOERR error or timeout {} to target instance",
                if writing { "writing" } else { "reading" }
            ))
        }
        link::Outcome::Replies {
            auth,
            select,
            restores,
            socket_error,
        } => (auth, select, restores, socket_error),
    };
    fn refused(l: &Option<Vec<u8>>) -> Option<&Vec<u8>> {
        l.as_ref().filter(|l| l.first() == Some(&b'-'))
    }
    let head_error = refused(&auth).or(refused(&select)).cloned();
    let mut target_error: Option<Vec<u8>> = None;
    let mut acked = Vec::new();
    for (line, (key, _, _)) in replies.iter().zip(&moving) {
        let err = head_error
            .as_ref()
            .or(Some(line).filter(|l| l.first() == Some(&b'-')));
        match err {
            Some(e) => {
                target_error.get_or_insert_with(|| e.clone());
            }
            None if !plan.copy => acked.push(key.clone()),
            None => {}
        }
    }
    if !acked.is_empty() {
        delete(core, db, tx, acked).await;
    }
    if let Some(e) = target_error {
        // The target's text may hold anything but must not end the reply line early.
        let text =
            String::from_utf8_lossy(e.get(1..).unwrap_or_default()).replace(['\r', '\n'], " ");
        return Reply::error(format!("ERR Target instance replied with error: {text}"));
    }
    if socket_error {
        return Reply::err("IOERR error or timeout reading to target instance");
    }
    Reply::Ok
}

/// Deletes the keys the target took, on their shards, under the command's lock: as DEL,
/// so the log, replicas, keyspace events and WATCH see a DEL (Redis propagates MIGRATE as
/// DEL of those keys).
async fn delete(core: &Rc<Core>, db: usize, tx: txn::TxId, keys: Vec<Bytes>) {
    let del = Bytes::from_static(b"DEL");
    let Some(cmd) = keys
        .first()
        .and_then(|k| command::lookup(&[del.clone(), k.clone()]).ok())
    else {
        return;
    };
    let jobs = keys
        .into_iter()
        .map(|k| {
            (
                route::shard_of(&k, core.shards),
                Request {
                    cmd,
                    args: vec![del.clone(), k],
                    db,
                    resp3: false,
                    track: None,
                    client: 0,
                },
            )
        })
        .collect();
    txn::run_each(core, jobs, Some(tx)).await;
}

/// Runs `job` on a helper thread; the outcome comes back through this core's mesh.
async fn exchange(core: &Rc<Core>, job: link::Job) -> link::Outcome {
    let (tx, rx) = oneshot::channel();
    let home = core.id;
    let to_core = core.mesh.outside();
    let spawned = std::thread::Builder::new()
        .name("migrate".into())
        .spawn(move || {
            let outcome = link::run(&job);
            let task: crate::core::Task = Box::new(move |_| {
                let _ = tx.send(outcome);
            });
            if let Some(ring) = to_core.send(home, Msg::Run(task)) {
                crate::metrics::Waker::new().wake(ring);
            }
        });
    if spawned.is_err() {
        return link::Outcome::ConnectFailed;
    }
    rx.await.unwrap_or(link::Outcome::ConnectFailed)
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

    #[test]
    fn arguments_parse_as_redis_reads_them() {
        let p = parse(&args(&["migrate", "h", "1", "k", "0", "0"])).unwrap();
        assert_eq!(p.keys, args(&["k"]));
        assert_eq!(p.timeout_ms, 1000, "a timeout of 0 is 1000 ms");
        let p = parse(&args(&[
            "migrate", "h", "1", "", "3", "50", "copy", "replace", "auth2", "u", "p", "keys", "a",
            "b",
        ]))
        .unwrap();
        assert!(p.copy && p.replace);
        assert_eq!(p.user, Some(Bytes::from("u")));
        assert_eq!(p.password, Some(Bytes::from("p")));
        assert_eq!(p.keys, args(&["a", "b"]));
        assert_eq!((p.dbid, p.timeout_ms), (3, 50));
        let e = parse(&args(&["migrate", "h", "1", "k", "0", "0", "keys", "a"])).unwrap_err();
        assert!(matches!(e, Reply::Error(ref t) if t.starts_with("ERR When using MIGRATE KEYS")));
        assert_eq!(
            parse(&args(&["migrate", "h", "1", "k", "0", "0", "auth"])).unwrap_err(),
            error::syntax()
        );
        assert_eq!(
            parse(&args(&["migrate", "h", "1", "k", "0", "0", "bogus"])).unwrap_err(),
            error::syntax()
        );
        assert_eq!(
            parse(&args(&["migrate", "h", "1", "k", "x", "0"])).unwrap_err(),
            error::not_integer()
        );
    }
}
