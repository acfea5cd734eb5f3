//! Connection commands: PING, ECHO, QUIT, RESET, HELLO, SELECT, and the CLIENT subcommands
//! (those about this connection answer at once; LIST, KILL, UNBLOCK, PAUSE and UNPAUSE act
//! on every core), and which commands a CLIENT PAUSE holds.

use bytes::Bytes;
use shardis_engine::command::Flags;
use shardis_engine::{error, num, Command, Exec, ServerCmd};
use shardis_resp::Reply;

use super::{bulk, help, text, REDIS_VERSION};
use crate::conn::multi;
use crate::conn::session::Session;
use crate::core::client::{self, ReplyMode};
use crate::core::pause::PauseMode;
use crate::core::pubsub::Subscriber;

/// The connection commands that answer at once; None for the others.
pub fn run_sync(s: &mut Session, which: ServerCmd, args: &[Bytes]) -> Option<Reply> {
    Some(match which {
        ServerCmd::Ping => {
            let c = s.client.borrow();
            if args.len() > 2 {
                error::wrong_arity("ping")
            } else if c.subs.active() && !c.resp3 {
                // A RESP2 client in Pub/Sub mode gets a "pong" message instead.
                let payload = args.get(1).cloned().unwrap_or_default();
                Reply::Array(vec![bulk("pong"), Reply::Bulk(payload)])
            } else {
                match args.get(1) {
                    Some(payload) => Reply::Bulk(payload.clone()),
                    None => Reply::simple("PONG"),
                }
            }
        }
        ServerCmd::Echo => Reply::Bulk(args[1].clone()),
        ServerCmd::Quit => {
            s.client.borrow_mut().closing = true;
            Reply::Ok
        }
        ServerCmd::Reset => {
            multi::reset(s);
            stop_monitoring(s);
            super::pubsub::forget_all(&s.core, &mut s.client.borrow_mut(), s.conn);
            crate::core::tracking::disable(&s.core, &mut s.client.borrow_mut());
            super::acl::reset_auth(s);
            let mut c = s.client.borrow_mut();
            c.db = 0;
            c.resp3 = false;
            c.name = None;
            c.readonly = false;
            c.asking = false;
            c.resume_replies();
            Reply::simple("RESET")
        }
        ServerCmd::Hello => hello(s, args),
        ServerCmd::Select => select(s, &args[1]),
        ServerCmd::ClientId => Reply::Int(s.client.borrow().id as i64),
        ServerCmd::ClientSetName => {
            if !client::valid_name(&args[2]) {
                return Some(Reply::err(
                    "ERR Client names cannot contain spaces, newlines or special characters.",
                ));
            }
            s.client.borrow_mut().name = if args[2].is_empty() {
                None
            } else {
                Some(Bytes::copy_from_slice(&args[2]))
            };
            Reply::Ok
        }
        ServerCmd::ClientGetName => s.client.borrow().name.clone().into(),
        ServerCmd::ClientInfo => {
            let now = s.core.now_ms();
            Reply::Verbatim(Bytes::from(format!(
                "{}\n",
                s.client.borrow().info_line(now)
            )))
        }
        ServerCmd::ClientSetInfo => client_setinfo(s, args),
        ServerCmd::ClientReply => {
            let mode = match args[2].to_ascii_lowercase().as_slice() {
                b"on" => ReplyMode::On,
                b"off" => ReplyMode::Off,
                b"skip" => ReplyMode::SkipNext,
                _ => return Some(error::syntax()),
            };
            let mut c = s.client.borrow_mut();
            match mode {
                ReplyMode::On => c.resume_replies(),
                // SKIP does not turn OFF into skipping one reply.
                ReplyMode::SkipNext if c.reply_mode == ReplyMode::Off => {}
                _ => c.reply_mode = mode,
            }
            match mode {
                ReplyMode::On => Reply::Ok,
                // No reply: nothing at all is written.
                _ => Reply::Multiple(Vec::new()),
            }
        }
        ServerCmd::ClientNoEvict => match args[2].to_ascii_lowercase().as_slice() {
            b"on" | b"off" => {
                s.client.borrow_mut().no_evict = args[2].eq_ignore_ascii_case(b"on");
                Reply::Ok
            }
            _ => error::syntax(),
        },
        ServerCmd::ClientHelp => help(
            "CLIENT",
            &[
                "CACHING (YES|NO)",
                "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
                "GETREDIR",
                "    Return the client ID we are redirecting to when tracking is enabled.",
                "GETNAME",
                "    Return the name of the current connection.",
                "ID",
                "    Return the ID of the current connection.",
                "INFO",
                "    Return information about the current client connection.",
                "KILL <ip:port>",
                "    Kill connection made from <ip:port>.",
                "KILL <option> <value> [<option> <value> [...]]",
                "    Kill connections. Options are:",
                "    * ADDR (<ip:port>|<unixsocket>:0)",
                "      Kill connections made from the specified address",
                "    * LADDR (<ip:port>|<unixsocket>:0)",
                "      Kill connections made to specified local address",
                "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
                "      Kill connections by type.",
                "    * USER <username>",
                "      Kill connections authenticated by <username>.",
                "    * SKIPME (YES|NO)",
                "      Skip killing current connection (default: yes).",
                "LIST [options ...]",
                "    Return information about client connections. Options:",
                "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
                "      Return clients of specified type.",
                "UNPAUSE",
                "    Stop the current client pause, resuming traffic.",
                "PAUSE <timeout> [WRITE|ALL]",
                "    Suspend all, or just write, clients for <timeout> milliseconds.",
                "REPLY (ON|OFF|SKIP)",
                "    Control the replies sent to the current connection.",
                "SETINFO <LIB-NAME|LIB-VER> <value>",
                "    Set client library name or version.",
                "SETNAME <name>",
                "    Assign the name <name> to the current connection.",
                "UNBLOCK <clientid> [TIMEOUT|ERROR]",
                "    Unblock the specified blocked client.",
                "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
                "         [OPTIN] [OPTOUT] [NOLOOP]",
                "    Control server assisted client side caching.",
                "TRACKINGINFO",
                "    Report tracking status for the current connection.",
                "NO-EVICT (ON|OFF)",
                "    Protect current client connection from eviction.",
            ],
        ),
        _ => return None,
    })
}

/// The CLIENT subcommands that look at every core, and MONITOR.
pub async fn run_async(s: &mut Session, which: ServerCmd, args: &[Bytes]) -> Option<Reply> {
    Some(match which {
        ServerCmd::Monitor => monitor(s).await,
        ServerCmd::ClientList => client_list(s, args).await,
        ServerCmd::ClientKill => client_kill(s, args).await,
        ServerCmd::ClientUnblock => client_unblock(s, args).await,
        ServerCmd::ClientPause => client_pause(s, args).await,
        ServerCmd::ClientUnpause => {
            s.core.broadcast(|core| core.unpause_clients()).await;
            Reply::Ok
        }
        _ => return None,
    })
}

fn select(s: &mut Session, arg: &[u8]) -> Reply {
    let Some(n) = num::parse_i64(arg) else {
        return error::not_integer();
    };
    // A cluster has database 0 only.
    if crate::cluster::enabled() && n != 0 {
        return Reply::err("ERR SELECT is not allowed in cluster mode");
    }
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
            if let Err(e) = super::acl::authenticate(s, &args[i + 1], &args[i + 2], &args[0]) {
                return e;
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
    if !c.authenticated {
        return Reply::err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
    }
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
        (bulk("role"), bulk(crate::replica::hello_role())),
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

/// A client's type, as CLIENT LIST and CLIENT KILL filter by it: a client of an event loop
/// is `pubsub` while it subscribes to something and `normal` otherwise (a MONITOR client too,
/// as in Redis); the replication links are listed by their modules.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ClientType {
    Normal,
    /// The client applying our primary's stream (`crate::replica::master_listed`).
    Master,
    /// replica or slave: the links of our replicas (`crate::primary::client_lines`).
    Replica,
    PubSub,
}

impl ClientType {
    fn parse(name: &[u8]) -> Result<ClientType, Reply> {
        match name.to_ascii_lowercase().as_slice() {
            b"normal" => Ok(ClientType::Normal),
            b"master" => Ok(ClientType::Master),
            b"replica" | b"slave" => Ok(ClientType::Replica),
            b"pubsub" => Ok(ClientType::PubSub),
            _ => Err(Reply::error(format!(
                "ERR Unknown client type '{}'",
                text(name)
            ))),
        }
    }

    fn of(c: &client::Client) -> ClientType {
        if c.master {
            ClientType::Master
        } else if c.subs.active() {
            ClientType::PubSub
        } else {
            ClientType::Normal
        }
    }
}

/// CLIENT LIST [TYPE normal|master|replica|pubsub] | [ID id ...]
async fn client_list(s: &mut Session, args: &[Bytes]) -> Reply {
    let mut kind = None;
    let mut ids: Option<Vec<u64>> = None;
    if args.len() == 4 && args[2].eq_ignore_ascii_case(b"type") {
        match ClientType::parse(&args[3]) {
            Ok(t) => kind = Some(t),
            Err(e) => return e,
        }
    } else if args.len() > 3 && args[2].eq_ignore_ascii_case(b"id") {
        let mut list = Vec::with_capacity(args.len() - 3);
        for a in &args[3..] {
            match num::parse_i64(a) {
                // An ID no client can have lists nothing.
                Some(n) => list.push(u64::try_from(n).unwrap_or(0)),
                None => return Reply::err("ERR Invalid client ID"),
            }
        }
        ids = Some(list);
    } else if args.len() != 2 {
        return error::syntax();
    }
    let wanted = ids.clone();
    let lines = s
        .core
        .broadcast(move |core| {
            let now = core.now_ms();
            let clients = core.clients.borrow();
            let mut lines = match &wanted {
                Some(ids) => ids
                    .iter()
                    .filter_map(|id| clients.get(id).map(|c| (*id, c.borrow().info_line(now))))
                    .collect::<Vec<_>>(),
                None => clients
                    .iter()
                    .filter(|(_, c)| kind.is_none_or(|k| ClientType::of(&c.borrow()) == k))
                    .map(|(id, c)| (*id, c.borrow().info_line(now)))
                    .collect(),
            };
            // The master client lives on the core applying the stream, outside its table.
            if kind.is_none_or(|k| k == ClientType::Master) {
                lines.extend(crate::replica::master_listed(now));
            }
            lines
        })
        .await;
    let mut found: Vec<(u64, String)> = lines.into_iter().flatten().collect();
    // Our replicas' links (flags S), whose sockets left the event loops.
    if kind.is_none_or(|k| k == ClientType::Replica) {
        found.extend(crate::primary::client_lines());
    }
    let mut out = String::new();
    match ids {
        // As Redis: in the order asked, once per time asked.
        Some(ids) => {
            for id in ids {
                if let Some((_, line)) = found.iter().find(|(i, _)| *i == id) {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        None => {
            found.sort_by_key(|(id, _)| *id);
            for (_, line) in found {
                out.push_str(&line);
                out.push('\n');
            }
        }
    }
    Reply::Verbatim(Bytes::from(out))
}

/// CLIENT PAUSE timeout [WRITE|ALL]: every core pauses before the reply.
async fn client_pause(s: &mut Session, args: &[Bytes]) -> Reply {
    if args.len() > 4 {
        return error::subcommand_syntax(args);
    }
    let mode = match args.get(3) {
        None => PauseMode::All,
        Some(m) if m.eq_ignore_ascii_case(b"write") => PauseMode::Write,
        Some(m) if m.eq_ignore_ascii_case(b"all") => PauseMode::All,
        Some(_) => return Reply::err("ERR CLIENT PAUSE mode must be WRITE or ALL"),
    };
    let Some(ms) = num::parse_i64(&args[2]) else {
        return Reply::err("ERR timeout is not an integer or out of range");
    };
    let Ok(ms) = u64::try_from(ms) else {
        return Reply::err("ERR timeout is negative");
    };
    // A timeout of 0 ends at once (Redis's end time 0).
    let end = if ms == 0 {
        0
    } else {
        crate::core::wall_ms().saturating_add(ms)
    };
    s.core
        .broadcast(move |core| core.pause_clients(mode, end))
        .await;
    Reply::Ok
}

/// Whether CLIENT PAUSE holds a command of the client in session `s` now: every command
/// under ALL; under WRITE, those that may write or replicate (Redis's
/// `is_may_replicate_command`): by their flags, a script by its declared flags, and EXEC by
/// its queued commands'.
pub fn pause_holds(s: &Session, cmd: &Command, args: &[Bytes]) -> bool {
    match s.core.pause_mode() {
        PauseMode::Off => false,
        PauseMode::All => true,
        PauseMode::Write => {
            let writes = |cmd: &Command, args: &[Bytes]| {
                let flags = crate::script::commands::command_flags(cmd, args);
                flags.has(Flags::WRITE) || flags.has(Flags::MAY_REPLICATE)
            };
            if matches!(cmd.exec, Exec::Server(ServerCmd::Exec)) {
                s.multi
                    .as_ref()
                    .is_some_and(|m| m.queued.iter().any(|(c, a)| writes(c, a)))
            } else {
                writes(cmd, args)
            }
        }
    }
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
    kind: Option<ClientType>,
    user: Option<Vec<u8>>,
    /// The client asking, unless SKIPME no (or the old form).
    skip: Option<u64>,
}

impl KillFilter {
    fn matches(&self, id: u64, c: &client::Client) -> bool {
        self.id.is_none_or(|x| x == id)
            && self.addr.as_ref().is_none_or(|a| *a == c.addr)
            && self.laddr.as_ref().is_none_or(|a| *a == c.laddr)
            && self.kind.is_none_or(|k| k == ClientType::of(c))
            && self
                .user
                .as_ref()
                .is_none_or(|u| *u == c.user.borrow().name)
            && self.skip != Some(id)
    }
}

/// CLIENT KILL addr:port, or CLIENT KILL with filters (ID, ADDR, LADDR, TYPE, USER,
/// SKIPME): on every core. The client asking, if it matches, is closed after its reply.
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
        let mut i = 2;
        while i < args.len() {
            let (opt, Some(val)) = (&args[i], args.get(i + 1)) else {
                return error::syntax();
            };
            match opt.to_ascii_lowercase().as_slice() {
                b"id" => match num::parse_i64(val) {
                    Some(n) if n > 0 => f.id = Some(n as u64),
                    _ => return Reply::err("ERR client-id should be greater than 0"),
                },
                b"type" => match ClientType::parse(val) {
                    Ok(t) => f.kind = Some(t),
                    Err(e) => return e,
                },
                b"addr" => f.addr = Some(text(val)),
                b"laddr" => f.laddr = Some(text(val)),
                b"user" => {
                    if s.core.acl.borrow().get(val).is_none() {
                        return Reply::error(format!("ERR No such user '{}'", text(val)));
                    }
                    f.user = Some(val.to_vec());
                }
                b"skipme" => match val.to_ascii_lowercase().as_slice() {
                    b"yes" => f.skip = Some(me),
                    b"no" => f.skip = None,
                    _ => return error::syntax(),
                },
                _ => return error::syntax(),
            }
            i += 2;
        }
    }
    // Replicas' links live outside the cores' client lists.
    let replicas =
        if f.kind.is_none_or(|k| k == ClientType::Replica) && f.laddr.is_none() && f.user.is_none()
        {
            crate::primary::kill(|id, addr| {
                f.id.is_none_or(|x| x == id) && f.addr.as_ref().is_none_or(|a| a == addr)
            })
        } else {
            0
        };
    let master = if f.kind.is_none_or(|k| k == ClientType::Master) && f.user.is_none() {
        crate::replica::kill_link(|id, addr, laddr| {
            f.id.is_none_or(|x| x == id)
                && f.addr.as_ref().is_none_or(|a| a == addr)
                && f.laddr.as_ref().is_none_or(|a| a == laddr)
        })
    } else {
        0
    };
    let f2 = f.clone();
    let killed: usize = s
        .core
        .broadcast(move |core| {
            let f = &f2;
            let mut n = 0;
            for (id, c) in core.clients.borrow().iter() {
                let mut c = c.borrow_mut();
                if !f.matches(*id, &c) {
                    continue;
                }
                if *id == me {
                    // Closed once its reply is written, as Redis's CLOSE_AFTER_REPLY.
                    c.closing = true;
                } else {
                    c.kill();
                }
                n += 1;
            }
            n
        })
        .await
        .into_iter()
        .sum::<usize>()
        + replicas
        + master;
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

/// MONITOR: from now on the client receives every command any core runs (registered on every
/// core before it answers).
async fn monitor(s: &mut Session) -> Reply {
    if s.client.borrow().monitor {
        // Redis ignores a second MONITOR.
        return Reply::Multiple(Vec::new());
    }
    let me = Subscriber {
        core: s.core.id,
        conn: s.conn,
    };
    s.core
        .broadcast(move |core| core.pubsub.borrow_mut().set_monitor(me, true))
        .await;
    s.client.borrow_mut().monitor = true;
    Reply::Ok
}

/// Stops a client's monitoring (RESET, or the connection closing), without waiting.
pub fn stop_monitoring(s: &Session) {
    let mut c = s.client.borrow_mut();
    if !c.monitor {
        return;
    }
    c.monitor = false;
    let me = Subscriber {
        core: s.core.id,
        conn: s.conn,
    };
    for shard in 0..s.core.shards {
        s.core.post(
            shard,
            Box::new(move |core| core.pubsub.borrow_mut().set_monitor(me, false)),
        );
    }
}
