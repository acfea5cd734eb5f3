//! Pub/Sub commands: (P|S)SUBSCRIBE and (P|S)UNSUBSCRIBE, which register on every core before
//! they confirm (so any publisher, on any core, sees the subscription once the client does),
//! PUBLISH and SPUBLISH, which count and deliver from the publisher's core (and reach
//! replicas, `primary::propagate_publish`), and PUBSUB.

use std::rc::Rc;

use bytes::Bytes;
use shardis_engine::{error, ServerCmd};
use shardis_resp::Reply;

use super::{bulk, help};
use crate::conn::session::Session;
use crate::core::client::Client;
use crate::core::pubsub::{Kind, Subscriber};
use crate::core::{ConnRef, Core};

/// The subscription kind of a (un)subscribe command.
fn kind_of(which: ServerCmd) -> Option<Kind> {
    Some(match which {
        ServerCmd::Subscribe | ServerCmd::Unsubscribe => Kind::Channel,
        ServerCmd::PSubscribe | ServerCmd::PUnsubscribe => Kind::Pattern,
        ServerCmd::SSubscribe | ServerCmd::SUnsubscribe => Kind::Shard,
        _ => return None,
    })
}

/// The word a confirmation starts with.
fn confirmation(kind: Kind, subscribe: bool) -> &'static str {
    match (kind, subscribe) {
        (Kind::Channel, true) => "subscribe",
        (Kind::Channel, false) => "unsubscribe",
        (Kind::Pattern, true) => "psubscribe",
        (Kind::Pattern, false) => "punsubscribe",
        (Kind::Shard, true) => "ssubscribe",
        (Kind::Shard, false) => "sunsubscribe",
    }
}

/// The count a confirmation carries: channels and patterns, or shard channels.
fn count(client: &Client, kind: Kind) -> i64 {
    let n = match kind {
        Kind::Shard => client.subs.shard_count(),
        _ => client.subs.count(),
    };
    n as i64
}

fn one_or_many(mut replies: Vec<Reply>) -> Reply {
    if replies.len() == 1 {
        replies.pop().unwrap_or(Reply::Nil)
    } else {
        Reply::Multiple(replies)
    }
}

/// The Pub/Sub commands that answer at once; None for the others.
pub fn run_sync(s: &mut Session, which: ServerCmd, args: &[Bytes]) -> Option<Reply> {
    let core = &s.core;
    Some(match which {
        ServerCmd::Publish | ServerCmd::SPublish => {
            let shard = which == ServerCmd::SPublish;
            let n = core
                .pubsub
                .borrow_mut()
                .publish(core.shards, &args[1], &args[2], shard);
            let db = s.client.borrow().db;
            crate::primary::propagate_publish(core, db, args, s.publish_within);
            if crate::cluster::bus::enabled() {
                crate::cluster::bus::publish(core.id, shard, &args[1], &args[2]);
            }
            Reply::Int(n as i64)
        }
        ServerCmd::PubsubChannels | ServerCmd::PubsubShardChannels => {
            if args.len() > 3 {
                return Some(error::wrong_arity(if which == ServerCmd::PubsubChannels {
                    "pubsub|channels"
                } else {
                    "pubsub|shardchannels"
                }));
            }
            let shard = which == ServerCmd::PubsubShardChannels;
            let pattern = args.get(2).map(|p| &p[..]);
            let names = core.pubsub.borrow().channels(shard, pattern);
            Reply::Array(names.into_iter().map(Reply::Bulk).collect())
        }
        ServerCmd::PubsubNumsub | ServerCmd::PubsubShardNumsub => {
            let shard = which == ServerCmd::PubsubShardNumsub;
            let ps = core.pubsub.borrow();
            let mut out = Vec::with_capacity(args.len().saturating_sub(2) * 2);
            for channel in &args[2..] {
                out.push(Reply::Bulk(channel.clone()));
                out.push(Reply::Int(ps.numsub(shard, channel) as i64));
            }
            Reply::Array(out)
        }
        ServerCmd::PubsubNumpat => Reply::Int(core.pubsub.borrow().numpat() as i64),
        ServerCmd::PubsubHelp => help(
            "PUBSUB",
            &[
                "CHANNELS [<pattern>]",
                "    Return the currently active channels matching a <pattern> (default: '*').",
                "NUMPAT",
                "    Return number of subscriptions to patterns.",
                "NUMSUB [<channel> ...]",
                "    Return the number of subscribers for the specified channels, excluding",
                "    pattern subscriptions(default: no channels).",
                "SHARDCHANNELS [<pattern>]",
                "    Return the currently active shard level channels matching a <pattern> (default: '*').",
                "SHARDNUMSUB [<shardchannel> ...]",
                "    Return the number of subscribers for the specified shard level channel(s)",
            ],
        ),
        _ => return None,
    })
}

/// The (un)subscribe commands, which wait for every core.
pub async fn run_async(s: &mut Session, which: ServerCmd, args: &[Bytes]) -> Option<Reply> {
    let kind = kind_of(which)?;
    Some(match which {
        ServerCmd::Subscribe | ServerCmd::PSubscribe | ServerCmd::SSubscribe => {
            subscribe(s, kind, &args[1..]).await
        }
        _ => unsubscribe(s, kind, &args[1..]).await,
    })
}

async fn subscribe(s: &mut Session, kind: Kind, names: &[Bytes]) -> Reply {
    let me = Subscriber {
        core: s.core.id,
        conn: s.conn,
    };
    // Owned copies: subscriptions outlive the read buffer the arguments point into.
    let names: Vec<Bytes> = names.iter().map(|n| Bytes::copy_from_slice(n)).collect();
    let new: Vec<Bytes> = {
        let c = s.client.borrow();
        names
            .iter()
            .filter(|n| !c.subs.wants(kind, Some(n), n))
            .cloned()
            .collect()
    };
    if !new.is_empty() {
        s.core
            .broadcast(move |core| {
                let mut ps = core.pubsub.borrow_mut();
                for n in &new {
                    ps.register(kind, n.clone(), me);
                }
            })
            .await;
    }
    let mut c = s.client.borrow_mut();
    let word = confirmation(kind, true);
    let replies = names
        .into_iter()
        .map(|n| {
            c.subs.add(kind, &n);
            Reply::Push(vec![
                bulk(word),
                Reply::Bulk(n),
                Reply::Int(count(&c, kind)),
            ])
        })
        .collect();
    one_or_many(replies)
}

async fn unsubscribe(s: &mut Session, kind: Kind, names: &[Bytes]) -> Reply {
    let word = confirmation(kind, false);
    let names: Vec<Bytes> = if names.is_empty() {
        s.client.borrow().subs.names(kind)
    } else {
        names.to_vec()
    };
    if names.is_empty() {
        let c = s.client.borrow();
        return Reply::Push(vec![bulk(word), Reply::Nil, Reply::Int(count(&c, kind))]);
    }
    // Leaving the client's own set first: deliveries already on their way are dropped.
    let mut replies = Vec::with_capacity(names.len());
    let mut gone = Vec::new();
    {
        let mut c = s.client.borrow_mut();
        for n in names {
            if c.subs.remove(kind, &n) {
                gone.push(Bytes::copy_from_slice(&n));
            }
            replies.push(Reply::Push(vec![
                bulk(word),
                Reply::Bulk(n),
                Reply::Int(count(&c, kind)),
            ]));
        }
    }
    if !gone.is_empty() {
        let me = Subscriber {
            core: s.core.id,
            conn: s.conn,
        };
        // Confirmed once every core forgot it, so PUBLISH counts agree with the reply.
        s.core
            .broadcast(move |core| {
                let mut ps = core.pubsub.borrow_mut();
                for n in &gone {
                    ps.unregister(kind, n, me);
                }
            })
            .await;
    }
    one_or_many(replies)
}

/// Drops every subscription of a client that resets or goes away, without waiting.
pub fn forget_all(core: &Rc<Core>, client: &mut Client, conn: ConnRef) {
    if !client.subs.active() {
        return;
    }
    let me = Subscriber {
        core: core.id,
        conn,
    };
    let all: Vec<(Kind, Bytes)> = [Kind::Channel, Kind::Pattern, Kind::Shard]
        .into_iter()
        .flat_map(|k| client.subs.names(k).into_iter().map(move |n| (k, n)))
        .collect();
    client.subs = Default::default();
    for shard in 0..core.shards {
        let all = all.clone();
        core.post(
            shard,
            Box::new(move |c| {
                let mut ps = c.pubsub.borrow_mut();
                for (k, n) in &all {
                    ps.unregister(*k, n, me);
                }
            }),
        );
    }
}

/// Whether a RESP2 client in Pub/Sub mode may run `which` (Redis allows only these).
pub fn allowed_in_pubsub_mode(which: Option<ServerCmd>) -> bool {
    matches!(
        which,
        Some(
            ServerCmd::Subscribe
                | ServerCmd::PSubscribe
                | ServerCmd::SSubscribe
                | ServerCmd::Unsubscribe
                | ServerCmd::PUnsubscribe
                | ServerCmd::SUnsubscribe
                | ServerCmd::Ping
                | ServerCmd::Quit
                | ServerCmd::Reset
        )
    )
}
