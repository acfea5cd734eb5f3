//! Commands the runtime carries out itself: connection state (PING, HELLO, SELECT, CLIENT…),
//! server state (CONFIG, INFO, COMMAND, SHUTDOWN) and keyless commands that walk shards
//! (SCAN, RANDOMKEY).

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use shardis_engine::command::introspect;
use shardis_engine::{error, num, Command, ServerCmd, REGISTRY};
use shardis_resp::Reply;

use crate::conn::Session;
use crate::runtime::{self, now_ms};
use crate::{client, info};

/// The Redis version Shardis answers as (clients feature-detect on it).
pub const REDIS_VERSION: &str = "7.0.15";

/// Commands that must see every earlier command of the pipeline completed first.
pub fn needs_barrier(cmd: ServerCmd) -> bool {
    !matches!(
        cmd,
        ServerCmd::Ping | ServerCmd::Echo | ServerCmd::Select | ServerCmd::Time
    )
}

fn bulk(s: &str) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs a runtime command; None means "no reply" (the connection is closing).
pub async fn run(
    s: &mut Session,
    which: ServerCmd,
    cmd: &'static Command,
    args: &[Bytes],
) -> Option<Reply> {
    Some(match which {
        ServerCmd::Container => error::wrong_arity(&cmd.name),
        ServerCmd::Ping => match args.len() {
            1 => Reply::simple("PONG"),
            2 => Reply::Bulk(args[1].clone()),
            _ => error::wrong_arity("ping"),
        },
        ServerCmd::Echo => Reply::Bulk(args[1].clone()),
        ServerCmd::Quit => {
            s.client.borrow_mut().closing = true;
            Reply::Ok
        }
        ServerCmd::Reset => {
            crate::multi::reset(s).await;
            let mut c = s.client.borrow_mut();
            c.db = 0;
            c.resp3 = false;
            c.name = None;
            Reply::simple("RESET")
        }
        ServerCmd::Multi => crate::multi::multi(s),
        ServerCmd::Exec => crate::multi::exec(s).await,
        ServerCmd::Discard => crate::multi::discard(s).await,
        ServerCmd::Watch => crate::multi::watch(s, args).await,
        ServerCmd::Unwatch => crate::multi::unwatch(s).await,
        ServerCmd::Hello => hello(s, args),
        ServerCmd::Select => select(s, &args[1]),
        ServerCmd::ClientId => Reply::Int(s.client.borrow().id as i64),
        ServerCmd::ClientSetName => {
            if !client::valid_name(&args[2]) {
                return Some(Reply::err("ERR Client names cannot contain spaces, newlines or special characters."));
            }
            s.client.borrow_mut().name = if args[2].is_empty() { None } else { Some(Bytes::copy_from_slice(&args[2])) };
            Reply::Ok
        }
        ServerCmd::ClientGetName => s.client.borrow().name.clone().into(),
        ServerCmd::ClientInfo => Reply::Verbatim(Bytes::from(format!("{}\n", s.client.borrow().info_line()))),
        ServerCmd::ClientList => client_list(s, args).await,
        ServerCmd::ClientSetInfo => client_setinfo(s, args),
        ServerCmd::ClientKill => client_kill(s, args).await,
        ServerCmd::ClientUnblock => client_unblock(s, args).await,
        ServerCmd::ClientHelp => help(
            "CLIENT",
            &[
                "GETNAME",
                "    Return the name of the current connection.",
                "ID",
                "    Return the ID of the current connection.",
                "INFO",
                "    Return information about the current client connection.",
                "KILL <ip:port>",
                "    Kill connection made from <ip:port>.",
                "KILL <option> <value> [<option> <value> [...]]",
                "    Kill connections. Options are: ID <client-id>, ADDR <ip:port>, LADDR <ip:port>, USER <username>, SKIPME (YES|NO), MAXAGE <maxage>.",
                "LIST [options ...]",
                "    Return information about client connections. Options: TYPE (NORMAL|MASTER|REPLICA|PUBSUB), ID <client-id> [...].",
                "SETINFO <LIB-NAME|LIB-VER> <value>",
                "    Set client library name or version.",
                "SETNAME <name>",
                "    Assign the name <name> to the current connection.",
                "UNBLOCK <clientid> [TIMEOUT|ERROR]",
                "    Unblock the specified blocked client.",
            ],
        ),
        ServerCmd::CommandAll => Reply::Array(REGISTRY.commands().iter().map(introspect::info).collect()),
        ServerCmd::CommandCount => Reply::Int(REGISTRY.commands().len() as i64),
        ServerCmd::CommandInfo => {
            if args.len() == 2 {
                Reply::Array(REGISTRY.commands().iter().map(introspect::info).collect())
            } else {
                Reply::Array(args[2..].iter().map(|n| REGISTRY.get(n).map_or(Reply::NilArray, introspect::info)).collect())
            }
        }
        ServerCmd::CommandDocs => {
            let docs = |c: &Command| (bulk(&c.name), introspect::docs(c));
            if args.len() == 2 {
                Reply::Map(REGISTRY.commands().iter().map(docs).collect())
            } else {
                Reply::Map(args[2..].iter().filter_map(|n| REGISTRY.get(n)).map(docs).collect())
            }
        }
        ServerCmd::CommandList => command_list(args),
        ServerCmd::CommandGetKeys => command_getkeys(args),
        ServerCmd::CommandHelp => help(
            "COMMAND",
            &[
                "(no subcommand)",
                "    Return details about all Redis commands.",
                "COUNT",
                "    Return the total number of commands in this Redis server.",
                "LIST",
                "    Return a list of all commands in this Redis server.",
                "INFO [<command-name> ...]",
                "    Return details about multiple Redis commands.",
                "DOCS [<command-name> ...]",
                "    Return documentation details about multiple Redis commands.",
                "GETKEYS <full-command>",
                "    Return the keys from a full Redis command.",
            ],
        ),
        ServerCmd::ConfigGet => {
            let patterns: Vec<&[u8]> = args[2..].iter().map(|a| &a[..]).collect();
            let pairs = s.core.config.borrow().matching(&patterns);
            Reply::Map(pairs.into_iter().map(|(k, v)| (bulk(&k), bulk(&v))).collect())
        }
        ServerCmd::ConfigSet => config_set(s, args).await,
        ServerCmd::ConfigResetStat => {
            s.core
                .broadcast(|core| {
                    core.shard.borrow_mut().stats = Default::default();
                    core.stats.set(Default::default());
                })
                .await;
            Reply::Ok
        }
        ServerCmd::ConfigHelp => help(
            "CONFIG",
            &[
                "GET <pattern>",
                "    Return parameters matching the glob-like <pattern> and their values.",
                "SET <directive> <value>",
                "    Set the configuration <directive> to <value>.",
                "RESETSTAT",
                "    Reset statistics reported by the INFO command.",
            ],
        ),
        ServerCmd::Info => info::info(s, args).await,
        ServerCmd::Time => {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
            Reply::Array(vec![Reply::bulk_int(now.as_secs() as i64), Reply::bulk_int(now.subsec_micros() as i64)])
        }
        ServerCmd::Shutdown => return shutdown(s, args),
        ServerCmd::Scan => scan(s, args).await,
        ServerCmd::RandomKey => random_key(s).await,
        ServerCmd::FunctionFlush => match args.len() {
            2 => Reply::Ok,
            3 if args[2].eq_ignore_ascii_case(b"async") || args[2].eq_ignore_ascii_case(b"sync") => Reply::Ok,
            _ => error::syntax(),
        },
    })
}

fn help(container: &str, lines: &[&str]) -> Reply {
    let mut out = vec![Reply::Simple(
        format!("{container} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:").into(),
    )];
    out.extend(lines.iter().map(|l| Reply::Simple(l.to_string().into())));
    out.push(Reply::simple("HELP"));
    out.push(Reply::simple("    Print this help."));
    Reply::Array(out)
}

fn select(s: &mut Session, arg: &[u8]) -> Reply {
    let Some(n) = num::parse_i64(arg) else {
        return error::not_integer();
    };
    let dbs = s.core.shard.borrow().dbs.len() as i64;
    if n < 0 || n >= dbs {
        return Reply::err(error::DB_INDEX);
    }
    s.client.borrow_mut().db = n as usize;
    Reply::Ok
}

/// HELLO [protover [AUTH username password] [SETNAME clientname]]
fn hello(s: &mut Session, args: &[Bytes]) -> Reply {
    let mut proto = None;
    let mut i = 1;
    if args.len() > 1 {
        match num::parse_i64(&args[1]) {
            Some(v) if v == 2 || v == 3 => proto = Some(v),
            Some(_) => return Reply::err("NOPROTO unsupported protocol version"),
            None => return Reply::err("ERR Protocol version is not an integer or out of range"),
        }
        i = 2;
    }
    let mut name = None;
    while i < args.len() {
        let more = args.len() - i - 1;
        if args[i].eq_ignore_ascii_case(b"auth") && more >= 2 {
            // Only the default user exists and it has no password (as a fresh Redis).
            if !args[i + 1].eq_ignore_ascii_case(b"default") {
                return Reply::err("WRONGPASS invalid username-password pair or user is disabled.");
            }
            i += 3;
        } else if args[i].eq_ignore_ascii_case(b"setname") && more >= 1 {
            if !client::valid_name(&args[i + 1]) {
                return Reply::err(
                    "ERR Client names cannot contain spaces, newlines or special characters.",
                );
            }
            name = Some(args[i + 1].clone());
            i += 2;
        } else {
            return Reply::error(format!(
                "ERR Syntax error in HELLO option '{}'",
                text(&args[i])
            ));
        }
    }
    let mut c = s.client.borrow_mut();
    if let Some(p) = proto {
        c.resp3 = p == 3;
    }
    if let Some(n) = name {
        c.name = if n.is_empty() {
            None
        } else {
            Some(Bytes::copy_from_slice(&n))
        };
    }
    Reply::Map(vec![
        (bulk("server"), bulk("redis")),
        (bulk("version"), bulk(REDIS_VERSION)),
        (bulk("proto"), Reply::Int(if c.resp3 { 3 } else { 2 })),
        (bulk("id"), Reply::Int(c.id as i64)),
        (bulk("mode"), bulk("standalone")),
        (bulk("role"), bulk("master")),
        (bulk("modules"), Reply::Array(Vec::new())),
    ])
}

fn client_setinfo(s: &mut Session, args: &[Bytes]) -> Reply {
    let value = &args[3];
    if !client::valid_name(value) && !value.is_empty() {
        return Reply::error(format!(
            "ERR {} cannot contain spaces, newlines or special characters.",
            text(&args[2]).to_ascii_uppercase()
        ));
    }
    let v = if value.is_empty() {
        None
    } else {
        Some(Bytes::copy_from_slice(value))
    };
    let mut c = s.client.borrow_mut();
    if args[2].eq_ignore_ascii_case(b"lib-name") {
        c.lib_name = v;
    } else if args[2].eq_ignore_ascii_case(b"lib-ver") {
        c.lib_ver = v;
    } else {
        return Reply::error(format!("ERR Unrecognized option '{}'", text(&args[2])));
    }
    Reply::Ok
}

/// CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id ...]
async fn client_list(s: &mut Session, args: &[Bytes]) -> Reply {
    let mut ids: Option<Vec<u64>> = None;
    let mut i = 2;
    while i < args.len() {
        if args[i].eq_ignore_ascii_case(b"type") && i + 1 < args.len() {
            let t = args[i + 1].to_ascii_lowercase();
            match t.as_slice() {
                b"normal" => {}
                b"master" | b"replica" | b"slave" | b"pubsub" => ids = Some(Vec::new()),
                _ => {
                    return Reply::error(format!(
                        "ERR Unknown client type '{}'",
                        text(&args[i + 1])
                    ))
                }
            }
            i += 2;
        } else if args[i].eq_ignore_ascii_case(b"id") && i + 1 < args.len() {
            let mut list = Vec::new();
            for a in &args[i + 1..] {
                match num::parse_i64(a) {
                    Some(n) if n > 0 => list.push(n as u64),
                    _ => return Reply::err("ERR Invalid client ID"),
                }
            }
            ids = Some(list);
            i = args.len();
        } else {
            return error::syntax();
        }
    }
    let lines = s
        .core
        .broadcast(move |core| {
            core.clients
                .borrow()
                .iter()
                .filter(|(id, _)| ids.as_ref().is_none_or(|l| l.contains(id)))
                .map(|(id, c)| (*id, c.borrow().info_line()))
                .collect::<Vec<_>>()
        })
        .await;
    let mut all: Vec<(u64, String)> = lines.into_iter().flatten().collect();
    all.sort_by_key(|(id, _)| *id);
    let mut out = String::new();
    for (_, line) in all {
        out.push_str(&line);
        out.push('\n');
    }
    Reply::Verbatim(Bytes::from(out))
}

/// CLIENT UNBLOCK client-id [TIMEOUT|ERROR]
async fn client_unblock(s: &mut Session, args: &[Bytes]) -> Reply {
    let Some(id) = num::parse_i64(&args[2]) else {
        return error::not_integer();
    };
    let with_error = match args.get(3).map(|a| a.to_ascii_lowercase()) {
        None => false,
        Some(a) if a == b"timeout" => false,
        Some(a) if a == b"error" => true,
        Some(_) => return Reply::err("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"),
    };
    let id = id as u64;
    let done = s
        .core
        .broadcast(move |core| {
            let clients = core.clients.borrow();
            let client = clients.get(&id).map(|c| c.borrow());
            client
                .and_then(|c| c.unblock.as_ref().map(|u| u.unblock(with_error)))
                .unwrap_or(false)
        })
        .await;
    Reply::Int(done.into_iter().any(|d| d) as i64)
}

/// Which clients a CLIENT KILL names.
#[derive(Clone, Default)]
struct KillFilter {
    id: Option<u64>,
    addr: Option<String>,
    laddr: Option<String>,
    skip: Option<u64>,
    max_age: Option<u64>,
    no_type_match: bool,
}

async fn client_kill(s: &mut Session, args: &[Bytes]) -> Reply {
    let me = s.client.borrow().id;
    let legacy = args.len() == 3;
    let mut f = KillFilter {
        skip: Some(me),
        ..Default::default()
    };
    if legacy {
        f.addr = Some(text(&args[2]));
        f.skip = None;
    } else {
        if !args.len().is_multiple_of(2) {
            return error::syntax();
        }
        for pair in args[2..].chunks(2) {
            let (opt, val) = (&pair[0], &pair[1]);
            let lower = opt.to_ascii_lowercase();
            match lower.as_slice() {
                b"id" => match num::parse_i64(val) {
                    Some(n) if n > 0 => f.id = Some(n as u64),
                    _ => return Reply::err("ERR client-id should be greater than 0"),
                },
                b"addr" => f.addr = Some(text(val)),
                b"laddr" => f.laddr = Some(text(val)),
                b"user" => {
                    if !val.eq_ignore_ascii_case(b"default") {
                        f.no_type_match = true;
                    }
                }
                b"type" => match val.to_ascii_lowercase().as_slice() {
                    b"normal" => {}
                    b"master" | b"replica" | b"slave" | b"pubsub" => f.no_type_match = true,
                    _ => return Reply::error(format!("ERR Unknown client type '{}'", text(val))),
                },
                b"skipme" => match val.to_ascii_lowercase().as_slice() {
                    b"yes" => f.skip = Some(me),
                    b"no" => f.skip = None,
                    _ => return error::syntax(),
                },
                b"maxage" => match num::parse_i64(val) {
                    Some(n) if n >= 0 => f.max_age = Some(n as u64),
                    _ => return error::not_integer(),
                },
                _ => return error::syntax(),
            }
        }
    }
    let filter = f.clone();
    let killed: usize = s
        .core
        .broadcast(move |core| {
            let f = &filter;
            if f.no_type_match {
                return 0;
            }
            let mut n = 0;
            for (id, c) in core.clients.borrow().iter() {
                let mut c = c.borrow_mut();
                let hit = f.id.is_none_or(|x| x == *id)
                    && f.addr.as_ref().is_none_or(|a| *a == c.addr)
                    && f.laddr.as_ref().is_none_or(|a| *a == c.laddr)
                    && f.skip != Some(*id)
                    && f.max_age.is_none_or(|m| c.created.elapsed().as_secs() >= m);
                if hit {
                    c.kill();
                    n += 1;
                }
            }
            n
        })
        .await
        .into_iter()
        .sum();
    if legacy {
        if killed == 0 {
            Reply::err("ERR No such client")
        } else {
            Reply::Ok
        }
    } else {
        Reply::Int(killed as i64)
    }
}

fn command_list(args: &[Bytes]) -> Reply {
    let names = REGISTRY
        .commands()
        .iter()
        .flat_map(|c| std::iter::once(c).chain(c.subcommands.iter()));
    let filtered: Vec<Reply> = match args.len() {
        2 => names.map(|c| bulk(&c.name)).collect(),
        5 if args[2].eq_ignore_ascii_case(b"filterby") => {
            let what = args[3].to_ascii_lowercase();
            let value = &args[4];
            match what.as_slice() {
                b"module" => Vec::new(),
                b"aclcat" => {
                    let cat = text(value).to_ascii_lowercase();
                    names
                        .filter(|c| c.acl_categories.contains(&cat.as_str()))
                        .map(|c| bulk(&c.name))
                        .collect()
                }
                b"pattern" => names
                    .filter(|c| shardis_engine::glob::matches(value, c.name.as_bytes(), true))
                    .map(|c| bulk(&c.name))
                    .collect(),
                _ => return error::syntax(),
            }
        }
        _ => return error::syntax(),
    };
    Reply::Array(filtered)
}

fn command_getkeys(args: &[Bytes]) -> Reply {
    let target = &args[2..];
    let cmd = match REGISTRY.lookup(target) {
        Ok(c) => c,
        Err(Reply::Error(e)) if e.starts_with("ERR unknown command") => {
            return Reply::err("ERR Invalid command specified")
        }
        Err(_) => return Reply::err("ERR Invalid number of arguments specified for command"),
    };
    let mut idx = Vec::new();
    if !cmd.key_indexes(target, &mut idx) {
        return Reply::err("ERR Invalid arguments specified for command");
    }
    if idx.is_empty() {
        return Reply::err("ERR The command has no key arguments");
    }
    Reply::Array(
        idx.into_iter()
            .map(|i| Reply::Bulk(target[i].clone()))
            .collect(),
    )
}

async fn config_set(s: &mut Session, args: &[Bytes]) -> Reply {
    if !args.len().is_multiple_of(2) {
        return error::wrong_arity("config|set");
    }
    let pairs: Vec<(String, String)> = args[2..]
        .chunks(2)
        .map(|p| (text(&p[0]), text(&p[1])))
        .collect();
    let values = match s.core.config.borrow().validate_set(&pairs) {
        Ok(v) => v,
        Err(e) => return Reply::error(e),
    };
    s.core
        .broadcast(move |core| {
            let mut config = core.config.borrow_mut();
            config.apply(&values);
            core.shard.borrow_mut().config = config.engine();
        })
        .await;
    crate::logging::set_level(s.core.config.borrow().get("loglevel"));
    Reply::Ok
}

/// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]: there is nothing to save yet, so SAVE is
/// refused rather than pretended.
fn shutdown(s: &mut Session, args: &[Bytes]) -> Option<Reply> {
    for a in &args[1..] {
        let lower = a.to_ascii_lowercase();
        match lower.as_slice() {
            b"nosave" | b"now" | b"force" => {}
            b"save" => return Some(Reply::err("ERR Errors trying to SHUTDOWN. Check logs.")),
            b"abort" => return Some(Reply::err("ERR No shutdown in progress.")),
            _ => return Some(error::syntax()),
        }
    }
    tracing::warn!("User requested shutdown...");
    runtime::request_shutdown();
    s.client.borrow_mut().closing = true;
    None
}

/// Bits of a SCAN cursor that name the shard; the rest is the shard's own cursor.
const SHARD_BITS: u32 = 10;

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type], walking shard after shard.
async fn scan(s: &mut Session, args: &[Bytes]) -> Reply {
    let cursor = match shardis_engine::scan::parse_cursor(&args[1]) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let opts = match shardis_engine::scan::parse_options(args, 2, true) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let mut shard = (cursor & ((1 << SHARD_BITS) - 1)) as usize;
    let mut inner = cursor >> SHARD_BITS;
    let db = s.client.borrow().db;
    let mut keys: Vec<Reply> = Vec::new();
    while shard < s.core.shards {
        let o = opts.clone();
        let (next, found) = s
            .core
            .run_on(shard, move |core| {
                let mut sh = core.shard.borrow_mut();
                let mut ctx = shardis_engine::Ctx::new(&mut sh, db, now_ms(), false);
                shardis_engine::t_server::scan_step(&mut ctx, inner, &o)
            })
            .await
            .unwrap_or((0, Vec::new()));
        keys.extend(found.into_iter().map(Reply::Bulk));
        if next != 0 {
            let cursor = (next << SHARD_BITS) | shard as u64;
            return shardis_engine::scan::reply(cursor, keys);
        }
        shard += 1;
        inner = 0;
        if keys.len() >= opts.count {
            break;
        }
    }
    let cursor = if shard >= s.core.shards {
        0
    } else {
        shard as u64
    };
    shardis_engine::scan::reply(cursor, keys)
}

/// RANDOMKEY: a random key of a random non-empty shard.
async fn random_key(s: &mut Session) -> Reply {
    let db = s.client.borrow().db;
    let n = s.core.shards;
    let start = (s.core.shard.borrow_mut().rand() % n as u64) as usize;
    for k in 0..n {
        let shard = (start + k) % n;
        let key = s
            .core
            .run_on(shard, move |core| {
                let mut sh = core.shard.borrow_mut();
                let mut ctx = shardis_engine::Ctx::new(&mut sh, db, now_ms(), false);
                shardis_engine::t_server::random_key(&mut ctx)
            })
            .await
            .flatten();
        if let Some(key) = key {
            return Reply::Bulk(key);
        }
    }
    Reply::Nil
}
