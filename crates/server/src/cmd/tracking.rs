//! Client-side caching commands: CLIENT TRACKING (which waits for other cores: a redirect
//! target is looked up on its own core, BCAST prefixes are registered on every core before
//! the client is told OK), CLIENT CACHING, CLIENT GETREDIR and CLIENT TRACKINGINFO.

use bytes::Bytes;
use shardis_engine::{error, num, ServerCmd};
use shardis_resp::Reply;

use super::bulk;
use crate::conn::session::Session;
use crate::core::pubsub::Subscriber;
use crate::core::tracking::{self, Redirect};

/// The tracking commands that answer at once; None for the others.
pub fn run_sync(s: &mut Session, which: ServerCmd, args: &[Bytes]) -> Option<Reply> {
    Some(match which {
        ServerCmd::ClientCaching => caching(s, &args[2]),
        ServerCmd::ClientGetRedir => Reply::Int(s.client.borrow().tracking.redirect_id()),
        ServerCmd::ClientTrackingInfo => tracking_info(s),
        _ => return None,
    })
}

/// CLIENT TRACKING, which waits for other cores.
pub async fn run_async(s: &mut Session, which: ServerCmd, args: &[Bytes]) -> Option<Reply> {
    match which {
        ServerCmd::ClientTracking => Some(client_tracking(s, args).await),
        _ => None,
    }
}

/// The options of CLIENT TRACKING ON.
#[derive(Default)]
struct Options {
    redirect: Option<Redirect>,
    bcast: bool,
    optin: bool,
    optout: bool,
    noloop: bool,
    prefixes: Vec<Bytes>,
}

/// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP]:
/// options are read in order, a redirect target must exist when it is named, then ON checks
/// them against each other and against the client's current mode, with Redis's errors.
async fn client_tracking(s: &mut Session, args: &[Bytes]) -> Reply {
    let mut o = Options::default();
    let mut j = 3;
    while j < args.len() {
        let more = j + 1 < args.len();
        let opt = args[j].to_ascii_lowercase();
        match opt.as_slice() {
            b"redirect" if more => {
                j += 1;
                if o.redirect.is_some() {
                    return Reply::err("ERR A client can only redirect to a single other client");
                }
                let Some(id) = num::parse_i64(&args[j]) else {
                    return error::not_integer();
                };
                match find_client(s, id).await {
                    Some(to) => o.redirect = Some(Redirect { id: id as u64, to }),
                    None => {
                        return Reply::err("ERR The client ID you want redirect to does not exist")
                    }
                }
            }
            b"bcast" => o.bcast = true,
            b"optin" => o.optin = true,
            b"optout" => o.optout = true,
            b"noloop" => o.noloop = true,
            b"prefix" if more => {
                j += 1;
                o.prefixes.push(Bytes::copy_from_slice(&args[j]));
            }
            _ => return error::syntax(),
        }
        j += 1;
    }
    match args[2].to_ascii_lowercase().as_slice() {
        b"on" => enable(s, o).await,
        b"off" => {
            tracking::disable(&s.core, &mut s.client.borrow_mut());
            Reply::Ok
        }
        _ => error::syntax(),
    }
}

/// The core that handed out client id `id` (ids interleave over cores), and the connection
/// there, if the client exists.
async fn find_client(s: &Session, id: i64) -> Option<Subscriber> {
    let id = u64::try_from(id).ok().filter(|&id| id > 0)?;
    let shards = s.core.shards.max(1) as u64;
    let core = ((id - 1) % shards) as usize;
    s.core
        .run_on(core, move |c| {
            let clients = c.clients.borrow();
            let conn = clients.get(&id)?.try_borrow().ok()?.conn;
            Some(Subscriber { core: c.id, conn })
        })
        .await
        .flatten()
}

/// CLIENT TRACKING ON with `o`.
async fn enable(s: &mut Session, o: Options) -> Reply {
    if !o.bcast && !o.prefixes.is_empty() {
        return Reply::err("ERR PREFIX option requires BCAST mode to be enabled");
    }
    let bcast_prefixes = {
        let c = s.client.borrow();
        let t = &c.tracking;
        if t.on && t.bcast != o.bcast {
            return Reply::err("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.");
        }
        if o.bcast && (o.optin || o.optout) {
            return Reply::err("ERR OPTIN and OPTOUT are not compatible with BCAST");
        }
        if o.optin && o.optout {
            return Reply::err("ERR You can't specify both OPTIN mode and OPTOUT mode");
        }
        if o.optin && t.optout || o.optout && t.optin {
            return Reply::err("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.");
        }
        if o.bcast {
            if let Err(e) = tracking::check_prefixes(&t.prefixes, &o.prefixes) {
                return Reply::error(e);
            }
            // Without PREFIX, BCAST covers every key (the empty prefix).
            let mut all = t.prefixes.clone();
            if o.prefixes.is_empty() {
                all.insert(Bytes::new());
            }
            all.extend(o.prefixes.iter().cloned());
            Some(all)
        } else {
            None
        }
    };
    // Registered everywhere before OK: a change on any core after that is broadcast.
    if let Some(all) = &bcast_prefixes {
        let me = s.me();
        let prefixes: Vec<Bytes> = all.iter().cloned().collect();
        let noloop = o.noloop;
        s.core
            .broadcast(move |core| core.track_prefixes(me, &prefixes, noloop, true))
            .await;
    }
    let mut c = s.client.borrow_mut();
    let t = &mut c.tracking;
    t.on = true;
    t.broken_redirect = false;
    t.redirect = o.redirect;
    t.bcast = o.bcast;
    t.optin = o.optin;
    t.optout = o.optout;
    t.noloop = o.noloop;
    if let Some(all) = bcast_prefixes {
        t.prefix_mem = all
            .iter()
            .map(|p| p.len() + std::mem::size_of::<Bytes>())
            .sum();
        t.prefixes = all;
    }
    Reply::Ok
}

/// CLIENT CACHING YES|NO
fn caching(s: &mut Session, arg: &[u8]) -> Reply {
    let mut c = s.client.borrow_mut();
    let t = &mut c.tracking;
    if !t.on {
        return Reply::err("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled");
    }
    match arg.to_ascii_lowercase().as_slice() {
        b"yes" if t.optin => t.caching = true,
        b"yes" => {
            return Reply::err(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            )
        }
        b"no" if t.optout => t.caching = true,
        b"no" => {
            return Reply::err(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            )
        }
        _ => return error::syntax(),
    }
    Reply::Ok
}

/// CLIENT TRACKINGINFO: flags, redirect and prefixes, as a map.
fn tracking_info(s: &Session) -> Reply {
    let c = s.client.borrow();
    let t = &c.tracking;
    Reply::Map(vec![
        (
            bulk("flags"),
            Reply::Set(t.info_flags().into_iter().map(bulk).collect()),
        ),
        (bulk("redirect"), Reply::Int(t.redirect_id())),
        (
            bulk("prefixes"),
            Reply::Array(t.prefixes.iter().cloned().map(Reply::Bulk).collect()),
        ),
    ])
}
