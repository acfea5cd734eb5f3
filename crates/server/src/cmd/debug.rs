//! DEBUG, behind `enable-debug-command` as in Redis: DIGEST and DIGEST-VALUE (Redis's data set
//! digest, so a data set can be compared with Redis's), RELOAD (save, empty, load back),
//! SLEEP (stops the client's core, as Redis's stops its one thread), and the hooks Redis's own
//! tests use: OBJECT, POPULATE, PROTOCOL, SET-ACTIVE-EXPIRE and SET-DISABLE-DENY-SCRIPTS.

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
        b"object" if args.len() == 3 => object(s, &args[2]).await,
        b"populate" if (3..=5).contains(&args.len()) => populate(s, &args[2..]).await,
        b"protocol" if args.len() == 3 => protocol(&args[2], s.db_resp3().1),
        b"set-active-expire" if args.len() == 3 => {
            let off = atoi(&args[2]) == 0;
            s.core
                .broadcast(move |c| c.debug.no_active_expire.set(off))
                .await;
            Reply::Ok
        }
        b"set-disable-deny-scripts" if args.len() == 3 => {
            let on = atoi(&args[2]) != 0;
            s.core
                .broadcast(move |c| c.debug.scripts_unrestricted.set(on))
                .await;
            Reply::Ok
        }
        b"clusterlink" if args.len() == 5 && args[2].eq_ignore_ascii_case(b"kill") => {
            kill_cluster_links(s, &args[3], &args[4]).await
        }
        b"help" if args.len() == 2 => help(),
        _ => Reply::error(shardis_engine::error::sanitize(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
            String::from_utf8_lossy(args.get(1).map_or(&[][..], |a| a))
        ))),
    }
}

/// DEBUG CLUSTERLINK KILL TO|FROM|ALL <node-id>: frees this node's cluster bus links with
/// a node (they are connected again, as after a lost link). Without the bus the nodes of
/// the one process have no links: a known node is answered OK.
async fn kill_cluster_links(s: &Session, kind: &[u8], id: &Bytes) -> Reply {
    use crate::cluster::bus;
    if !crate::cluster::enabled() {
        return Reply::err("ERR Debug option only available for cluster mode enabled setup!");
    }
    let (to, from) = match kind.to_ascii_lowercase().as_slice() {
        b"to" => (true, false),
        b"from" => (false, true),
        b"all" => (true, true),
        _ => return Reply::err("ERR Invalid link type"),
    };
    if !bus::enabled() {
        let known = crate::cluster::topology()
            .is_some_and(|t| t.ids.iter().any(|n| n.as_bytes() == &id[..]));
        return if known {
            Reply::Ok
        } else {
            Reply::error(format!("ERR Unknown node {}", String::from_utf8_lossy(id)))
        };
    }
    let op = bus::Op::KillLinks {
        id: id.clone(),
        to,
        from,
    };
    bus::request(s.core.id, op).await
}

/// DEBUG HELP: the subcommands this server has.
fn help() -> Reply {
    super::help(
        "DEBUG",
        &[
            "CLUSTERLINK KILL <to|from|all> <node-id>",
            "    Kills the cluster bus links of this node with the given node.",
            "DIGEST",
            "    Output a hex signature representing the current DB content.",
            "DIGEST-VALUE <key> [<key> ...]",
            "    Output a hex signature of the values of all the specified keys.",
            "RELOAD [MERGE] [NOFLUSH] [NOSAVE]",
            "    Save the RDB on disk and load it back to memory. NOFLUSH: the data set is not",
            "    emptied first; MERGE: loaded libraries replace existing ones (an error",
            "    otherwise); NOSAVE: the file on disk is loaded as it is.",
            "OBJECT <key>",
            "    Show low level info about the `key` and associated value.",
            "POPULATE <count> [<prefix>] [<size>]",
            "    Create <count> string keys named key:<num>. If <prefix> is specified then",
            "    it is used instead of the 'key' prefix. These are not propagated to",
            "    replicas. Cluster slots are not respected so keys not belonging to the",
            "    current node can be created in cluster mode.",
            "PROTOCOL <type>",
            "    Reply with a test value of the specified type. <type> can be: string,",
            "    integer, double, bignum, null, array, set, map, attrib, push, verbatim,",
            "    true, false.",
            "SET-ACTIVE-EXPIRE <0|1>",
            "    Setting it to 0 disables expiring keys in background when they are not",
            "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
            "    default.",
            "SET-DISABLE-DENY-SCRIPTS <0|1>",
            "    For testing only: let scripts run commands flagged noscript.",
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

/// DEBUG OBJECT key: the value's low-level description, from the key's shard.
async fn object(s: &Session, key: &Bytes) -> Reply {
    let db = s.db_resp3().0;
    let k = key.clone();
    let shard = route::shard_of(key, s.core.shards);
    let line = s
        .core
        .run_on(shard, move |c| {
            shardis_engine::t_keys::debug_object(&c.shard.borrow(), db, &k, c.now_ms())
        })
        .await
        .flatten();
    match line {
        Some(line) => Reply::Simple(line.into()),
        None => Reply::err("ERR no such key"),
    }
}

/// C's `atoi`, as Redis reads DEBUG's switches: an optional sign and the digits that follow,
/// 0 for anything else.
fn atoi(arg: &[u8]) -> i64 {
    let text = arg.trim_ascii_start();
    let (negative, digits) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let n = digits
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .fold(0i64, |n, &c| {
            n.saturating_mul(10).saturating_add(i64::from(c - b'0'))
        });
    if negative {
        -n
    } else {
        n
    }
}

/// DEBUG POPULATE count [prefix] [size]: string keys `prefix:N` holding `value:N` (cut or
/// padded with zero bytes to `size`), skipping names that exist; every core creates its own
/// keys. Not propagated, not counted as changes, as in Redis.
async fn populate(s: &Session, args: &[Bytes]) -> Reply {
    let positive = |arg: &Bytes| match shardis_engine::num::parse_i64(arg) {
        None => Err(Reply::err("ERR value is not an integer or out of range")),
        Some(n) if n < 0 => Err(Reply::err("ERR value is out of range, must be positive")),
        Some(n) => Ok(n as u64),
    };
    let count = match positive(&args[0]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let size = match args.get(2).map(positive).transpose() {
        Ok(size) => size.unwrap_or(0),
        Err(e) => return e,
    };
    // Bounded as any value a client sends (Redis allocates whatever size it is given).
    let max_value = s.core.shard.borrow().config.proto_max_bulk_len as u64;
    if size > max_value {
        return Reply::err("ERR value is out of range, must not exceed proto-max-bulk-len");
    }
    let prefix = args.get(1).cloned().unwrap_or(Bytes::from_static(b"key"));
    let db = s.db_resp3().0;
    s.core
        .broadcast(move |c| {
            let (id, shards, now) = (c.id, c.shards, c.now_ms());
            let mut shard = c.shard.borrow_mut();
            let lru = shard.config.tracking.fresh(now);
            let mut name = Vec::with_capacity(prefix.len() + 21);
            for j in 0..count {
                name.clear();
                name.extend_from_slice(&prefix);
                name.extend_from_slice(format!(":{j}").as_bytes());
                // Redis formats the name into 128 bytes.
                name.truncate(127);
                if route::shard_of(&name, shards) != id {
                    continue;
                }
                let Some(d) = shard.dbs.get_mut(db) else {
                    return;
                };
                if d.contains(&name, now) {
                    continue;
                }
                let mut value = format!("value:{j}").into_bytes();
                if size > 0 {
                    value.resize(size as usize, 0);
                }
                let value = shardis_engine::Value::Str(shardis_engine::value::Str::from_vec(value));
                d.set(&name, value, lru, false);
                shard.watched.touch(db, &name);
            }
        })
        .await;
    Reply::Ok
}

/// DEBUG PROTOCOL type: a fixed reply of each RESP type, for clients' and scripts' tests.
fn protocol(kind: &[u8], resp3: bool) -> Reply {
    let ints = || (0..3).map(Reply::Int).collect::<Vec<_>>();
    match kind.to_ascii_lowercase().as_slice() {
        b"string" => Reply::bulk(b"Hello World"),
        b"integer" => Reply::Int(12345),
        // Redis's fixed test value (not π).
        #[allow(clippy::approx_constant)]
        b"double" => Reply::Double(3.141),
        b"bignum" => Reply::BigNumber(Bytes::from_static(b"1234567999999999999999999999999999999")),
        b"null" => Reply::Nil,
        b"array" => Reply::Array(ints()),
        b"set" => Reply::Set(ints()),
        b"map" => Reply::Map((0..3).map(|j| (Reply::Int(j), Reply::Bool(j == 1))).collect()),
        b"attrib" => Reply::Attribute(
            vec![(
                Reply::bulk(b"key-popularity"),
                Reply::Array(vec![Reply::bulk(b"key:123"), Reply::Int(90)]),
            )],
            Box::new(Reply::bulk(b"Some real reply following the attribute")),
        ),
        b"push" if !resp3 => Reply::err("ERR RESP2 is not supported by this command"),
        // The push, then a reply of the command's own for clients that skip pushes.
        b"push" => Reply::Multiple(vec![
            Reply::Push(vec![Reply::bulk(b"server-cpu-usage"), Reply::Int(42)]),
            Reply::bulk(b"Some real reply following the push reply"),
        ]),
        b"verbatim" => Reply::Verbatim(Bytes::from_static(b"This is a verbatim\nstring")),
        b"true" => Reply::Bool(true),
        b"false" => Reply::Bool(false),
        _ => Reply::err("ERR Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false"),
    }
}

#[cfg(test)]
mod tests {
    use super::atoi;

    #[test]
    fn atoi_reads_like_c() {
        for (text, n) in [
            (&b"1"[..], 1),
            (b"0", 0),
            (b" 12x", 12),
            (b"-3", -3),
            (b"+4", 4),
            (b"abc", 0),
            (b"", 0),
            (b"99999999999999999999999", i64::MAX),
        ] {
            assert_eq!(atoi(text), n, "{:?}", String::from_utf8_lossy(text));
        }
    }
}
