//! CONFIG SET as Redis 7.0 runs it: every pair is checked first (names, then values in
//! order); then the side effects of the values that changed run in order (the working
//! directory, TLS files, the listening sockets), and if one fails those already done are
//! undone and nothing is changed; only then does every core take the new values. A command
//! either changes everything it names or nothing.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use shardis_engine::error;
use shardis_resp::Reply;

use super::text;
use crate::config::{Config, SetValue};
use crate::conn::session::Session;
use crate::core::client_eviction;
use crate::io::listen::{self, Listener};

/// A side effect CONFIG SET carries out before the new values are taken (Redis's apply
/// functions), once per command however many of its parameters ask for it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Effect {
    /// The settings new TLS connections get, loaded from the files.
    Tls,
    /// The listening sockets, opened on the addresses of `bind`, `port` and `tls-port`.
    Listen,
}

/// What the effects prepared, installed on every core with the new values.
#[derive(Default)]
struct Prepared {
    tls: Option<Option<Arc<rustls::ServerConfig>>>,
    /// One set of listeners per core.
    listeners: Option<Vec<Vec<Listener>>>,
}

fn effect_of(name: &str) -> Option<Effect> {
    if crate::tls::RELOADED_BY.contains(&name) {
        Some(Effect::Tls)
    } else if name == "port" || name == "bind" {
        Some(Effect::Listen)
    } else {
        None
    }
}

/// The error reply for a parameter whose change could not be carried out.
fn failed(name: &str, why: &str) -> Reply {
    Reply::error(format!(
        "ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"
    ))
}

pub async fn config_set(s: &mut Session, args: &[Bytes]) -> Reply {
    // The arity (-4) is checked before: an odd count is a missing value.
    if !args.len().is_multiple_of(2) {
        return error::syntax();
    }
    let pairs: Vec<(String, String)> = args[2..]
        .chunks(2)
        .map(|p| (text(&p[0]), text(&p[1])))
        .collect();
    let local = listen::is_loopback(&s.client.borrow().addr);
    let values = match s.core.config.borrow().validate_set(&pairs, local) {
        Ok(v) => v,
        Err(e) => return Reply::error(e),
    };
    let prepared = match prepare(s, &values) {
        Ok(p) => p,
        Err(reply) => return reply,
    };
    let applied: Vec<(&'static str, String)> =
        values.iter().map(|v| (v.name, v.value.clone())).collect();
    let for_cores = applied.clone();
    // A new client memory limit is applied by one eviction over every core (below); the
    // cores' own checks wait from the moment they take it until that is done.
    let limit_changes = applied
        .iter()
        .any(|(name, _)| *name == "maxmemory-clients" || *name == "maxmemory");
    let choosing = limit_changes.then(client_eviction::Choosing::start);
    let tls = prepared.tls;
    // Each core takes its own listeners out of the shared list.
    let listeners = prepared
        .listeners
        .map(|sets| Arc::new(Mutex::new(sets.into_iter().map(Some).collect::<Vec<_>>())));
    s.core
        .broadcast(move |core| {
            if let Some(loaded) = &tls {
                *core.tls.borrow_mut() = loaded.clone();
            }
            if let Some(sets) = &listeners {
                if let Ok(mut sets) = sets.lock() {
                    let mine = sets.get_mut(core.id).and_then(Option::take);
                    core.new_listeners.set(mine);
                }
            }
            let (engine, flags) = {
                let mut config = core.config.borrow_mut();
                config.apply(&for_cores);
                (config.engine(), config.notify_flags())
            };
            {
                let mut shard = core.shard.borrow_mut();
                shard.set_config(engine);
                // Client-side caching's own flag is the runtime's, not the configuration's.
                shard.notify_flags = flags | shard.notify_flags & shardis_engine::notify::TRACKING;
            }
            crate::core::memory::reconfigure(core);
            core.client_memory.configure(core, &core.config.borrow());
            crate::replica::configure(core);
        })
        .await;
    if limit_changes {
        evict_clients(s).await;
    }
    drop(choosing);
    crate::logging::set_level(s.core.config.borrow().get("loglevel"));
    crate::persist::aof::configure(&s.core.config.borrow());
    crate::persist::loading::configure(&s.core.config.borrow());
    crate::primary::configure(&s.core.config.borrow());
    crate::cluster::bus::configure(&s.core.config.borrow());
    // The announced addresses take effect at once, as Redis's
    // `clusterUpdateMyselfAnnouncedPorts`.
    let announced = applied
        .iter()
        .any(|(name, _)| name.starts_with("cluster-announce-") || *name == "tls-port");
    let announcements = crate::cluster::bus::announcements(&s.core.config.borrow());
    if let (true, Some(all)) = (announced, announcements) {
        crate::cluster::bus::reannounce(s.core.id, all).await;
    }
    if let Some((_, on)) = applied.iter().find(|(name, _)| *name == "appendonly") {
        crate::persist::aof::set_enabled(&s.core, on == "yes").await;
    }
    super::acl::after_config_set(s, &applied).await;
    Reply::Ok
}

/// A new client memory limit takes effect at once, as in Redis: the biggest clients of every
/// core together are closed until the total is below it (while a `Choosing` holds the
/// cores' own checks).
async fn evict_clients(s: &Session) {
    let limit = client_eviction::limit_of(&s.core.config.borrow());
    if limit == 0 {
        return;
    }
    let census = s.core.broadcast(|core| client_eviction::census(core)).await;
    let chosen = client_eviction::choose(limit, &census);
    if chosen.iter().all(Vec::is_empty) {
        return;
    }
    let chosen = Arc::new(chosen);
    s.core
        .broadcast(move |core| {
            if let Some(ids) = chosen.get(core.id) {
                client_eviction::close_chosen(core, ids);
            }
        })
        .await;
}

/// Carries out the side effects of the values that change, in the order their parameters
/// came; on a failure undoes what was done and returns the error reply.
fn prepare(s: &Session, values: &[SetValue]) -> Result<Prepared, Reply> {
    // The working directory is the process's and changes first, as Redis changes it while
    // taking the value: relative TLS paths are then read from the new one.
    let old_dir = match values.iter().find(|v| v.name == "dir" && v.changed) {
        Some(v) => {
            let old = std::env::current_dir().ok();
            if let Err(e) = std::env::set_current_dir(&v.value) {
                return Err(failed(v.called, &e.to_string()));
            }
            old
        }
        None => None,
    };
    let undo = |reply: Reply| {
        if let Some(dir) = &old_dir {
            if let Err(e) = std::env::set_current_dir(dir) {
                tracing::warn!("cannot return to {}: {e}", dir.display());
            }
        }
        reply
    };
    let mut effects: Vec<(Effect, &SetValue)> = Vec::new();
    for v in values.iter().filter(|v| v.changed) {
        if let Some(effect) = effect_of(v.name) {
            if !effects.iter().any(|(e, _)| *e == effect) {
                effects.push((effect, v));
            }
        }
    }
    if effects.is_empty() {
        return Ok(Prepared::default());
    }
    let next = {
        let mut next = s.core.config.borrow().clone();
        let pairs: Vec<(&'static str, String)> =
            values.iter().map(|v| (v.name, v.value.clone())).collect();
        next.apply(&pairs);
        next
    };
    let mut prepared = Prepared::default();
    for (effect, v) in effects {
        match effect {
            Effect::Tls => match crate::tls::server_config(&next) {
                Ok(loaded) => prepared.tls = Some(loaded),
                Err(e) => {
                    tracing::warn!("Failed applying the new TLS configuration: {e}");
                    let why = format!("Unable to update TLS configuration: {e}");
                    return Err(undo(failed(v.called, &why)));
                }
            },
            Effect::Listen => match open_listeners(s, &next) {
                Ok(sets) => prepared.listeners = Some(sets),
                Err(e) => {
                    tracing::warn!(
                        "Failed applying new configuration. Possibly related to new {} setting. Restoring previous settings. ({e})",
                        v.called
                    );
                    let why = if v.name == "port" {
                        "Unable to listen on this port. Check server logs."
                    } else {
                        "Failed to bind to specified addresses."
                    };
                    return Err(undo(failed(v.called, why)));
                }
            },
        }
    }
    Ok(prepared)
}

/// Opens every core's listening sockets for `next`'s addresses. An address the server does
/// not listen on yet must be free of other processes (SO_REUSEPORT would share it silently).
fn open_listeners(s: &Session, next: &Config) -> Result<Vec<Vec<Listener>>, String> {
    let addrs_of = |c: &Config| listen::server_addrs(c, s.core.shards);
    let addrs = addrs_of(next)?;
    let current = addrs_of(&s.core.config.borrow()).unwrap_or_default();
    for a in &addrs {
        if current.iter().any(|c| c.addr == a.addr) {
            continue;
        }
        if let Err(e) = listen::check_free(&a.addr) {
            if !a.optional || e.kind() == std::io::ErrorKind::AddrInUse {
                return Err(format!(
                    "Could not create server TCP listening socket {}: bind: {}",
                    a.addr,
                    listen::describe(&e)
                ));
            }
        }
    }
    let backlog = next.get_i64("tcp-backlog").clamp(1, i32::MAX as i64) as i32;
    (0..s.core.shards)
        .map(|core| listen::open(&addrs, backlog, core))
        .collect()
}
