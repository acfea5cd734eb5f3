//! DEBUG, behind `enable-debug-command` as in Redis: DIGEST and DIGEST-VALUE (Redis's data set
//! digest, so a data set can be compared with Redis's), RELOAD (save, empty, load back) and
//! SLEEP (stops the client's core, as Redis's stops its one thread).

use bytes::Bytes;
use shardis_engine::digest::{self, Digest};
use shardis_resp::Reply;

use crate::conn::session::Session;
use crate::coord::route;

const NOT_ALLOWED: &str = "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";

fn allowed(s: &Session) -> bool {
    match s.core.config.borrow().get("enable-debug-command") {
        "yes" => true,
        "local" => {
            let addr = s.client.borrow().addr.clone();
            addr.starts_with("127.") || addr.starts_with("[::1]") || addr.starts_with("::1")
        }
        _ => false,
    }
}

pub async fn debug(s: &mut Session, args: &[Bytes]) -> Reply {
    if !allowed(s) {
        return Reply::err(NOT_ALLOWED);
    }
    let sub = args
        .get(1)
        .map(|a| a.to_ascii_lowercase())
        .unwrap_or_default();
    match sub.as_slice() {
        b"digest" if args.len() == 2 => Reply::Simple(digest::hex(&dataset_digest(s).await).into()),
        b"digest-value" => digest_values(s, &args[2..]).await,
        b"reload" => reload(s, &args[2..]).await,
        b"sleep" if args.len() == 3 => sleep(&args[2]),
        b"help" if args.len() == 2 => help(),
        _ => Reply::error(shardis_engine::error::sanitize(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
            String::from_utf8_lossy(args.get(1).map_or(&[][..], |a| a))
        ))),
    }
}

/// DEBUG HELP: the subcommands this server has.
fn help() -> Reply {
    super::help(
        "DEBUG",
        &[
            "DIGEST",
            "    Output a hex signature representing the current DB content.",
            "DIGEST-VALUE <key> [<key> ...]",
            "    Output a hex signature of the values of all the specified keys.",
            "RELOAD [MERGE] [NOFLUSH] [NOSAVE]",
            "    Save the RDB on disk and load it back to memory. NOFLUSH: the data set is not",
            "    emptied first; MERGE: loaded libraries replace existing ones (an error",
            "    otherwise); NOSAVE: the file on disk is loaded as it is.",
            "SLEEP <seconds>",
            "    Stop the server for <seconds>. Decimals allowed.",
        ],
    )
}

/// DEBUG SLEEP: blocks this core (its clients and its shard) for the time given; what is not
/// a number sleeps 0 s, as Redis's `strtod`.
fn sleep(seconds: &[u8]) -> Reply {
    let secs: f64 = std::str::from_utf8(seconds)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0.0);
    let d =
        std::time::Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(std::time::Duration::MAX);
    std::thread::sleep(d);
    Reply::Ok
}

/// Every shard's per-database key digests, combined.
async fn dataset_digest(s: &Session) -> Digest {
    let per_shard: Vec<Vec<Option<Digest>>> = s
        .core
        .broadcast(|c| c.shard.borrow().dbs.iter().map(digest::db_digest).collect())
        .await;
    let dbs = per_shard.iter().map(Vec::len).max().unwrap_or(0);
    let combined: Vec<Option<Digest>> = (0..dbs)
        .map(|j| {
            per_shard
                .iter()
                .filter_map(|shard| shard.get(j).copied().flatten())
                .reduce(|mut a, b| {
                    for (x, y) in a.iter_mut().zip(b) {
                        *x ^= y;
                    }
                    a
                })
        })
        .collect();
    digest::dataset_digest(&combined)
}

/// DEBUG DIGEST-VALUE key ...: each key's value digest (zeros for a missing key; expired
/// keys not yet reclaimed count, as in Redis).
async fn digest_values(s: &Session, keys: &[Bytes]) -> Reply {
    let db = s.db_resp3().0;
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        let k = key.clone();
        let shard = route::shard_of(key, s.core.shards);
        let d = s
            .core
            .run_on(shard, move |c| {
                c.shard
                    .borrow()
                    .dbs
                    .get(db)
                    .and_then(|d| d.peek(&k))
                    .map(digest::value_digest)
                    .unwrap_or([0; 20])
            })
            .await
            .unwrap_or([0; 20]);
        out.push(Reply::Simple(digest::hex(&d).into()));
    }
    Reply::Array(out)
}

/// DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE]: saves (unless NOSAVE), empties every shard
/// and its function libraries (unless NOFLUSH), loads the snapshot back. A loaded key
/// replaces a key still there; a loaded library replaces one still there with MERGE and is
/// an error without it, as in Redis (whose loading stops at a duplicated key; Shardis's does
/// not).
async fn reload(s: &mut Session, opts: &[Bytes]) -> Reply {
    let (mut save, mut flush, mut merge) = (true, true, false);
    for o in opts {
        match o.to_ascii_lowercase().as_slice() {
            b"nosave" => save = false,
            b"noflush" => flush = false,
            b"merge" => merge = true,
            _ => {
                return Reply::err(
                    "ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.",
                )
            }
        }
    }
    if save && crate::persist::save::save(&s.core, s.tx).await.is_err() {
        return Reply::err("ERR");
    }
    let results = s
        .core
        .broadcast(move |c| {
            if flush {
                for d in &mut c.shard.borrow_mut().dbs {
                    d.clear();
                }
                crate::script::state::with(|st| st.libraries = Default::default());
            }
            crate::persist::load::load_shard(c, merge)
        })
        .await;
    match results.into_iter().find_map(Result::err) {
        None => Reply::Ok,
        Some(e) => {
            tracing::warn!("DEBUG RELOAD: {e}");
            Reply::err("ERR Error trying to load the RDB dump")
        }
    }
}
