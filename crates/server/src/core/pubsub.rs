//! Pub/Sub's registry on one core, and the messages a publication produces.
//!
//! Every core keeps a full copy of who subscribes to what (channels, patterns, shard
//! channels): a subscription is registered on every core before it is confirmed, so PUBLISH
//! counts and delivers from the publisher's own core with no round trip, and keyspace
//! notifications are published by the shard that changed the key. A publication becomes one
//! delivery per subscriber, queued for the subscriber's core; the event loop writes the local
//! ones at once and sends each other core its share in one message per pass. Messages of one
//! publisher thus reach a subscriber in the order published.
//!
//! MONITOR clients are registered the same way, and every core describes the commands it runs
//! to them.
//!
//! The copies may briefly disagree while a (un)subscription is on its way to the other cores;
//! the subscriber's own connection has the last word: a delivery for a channel its client no
//! longer subscribes to is dropped there.

use std::collections::HashMap;

use bytes::Bytes;
use shardis_engine::glob;

use super::ConnRef;

/// A subscribed connection: its core and its place there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subscriber {
    pub core: usize,
    pub conn: ConnRef,
}

/// The three kinds of subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Channel,
    Pattern,
    Shard,
}

/// One message for some connections of one core.
pub struct Delivery {
    pub conns: Vec<ConnRef>,
    pub what: What,
}

/// What a delivery carries.
pub enum What {
    /// A published message.
    Message {
        kind: Kind,
        /// The pattern that matched, for pattern subscriptions.
        pattern: Option<Bytes>,
        channel: Bytes,
        payload: Bytes,
    },
    /// A MONITOR line, already encoded.
    Monitor(Bytes),
    /// Client-side caching: an invalidation, or a step of its way to a redirect target.
    Tracking(super::tracking::Message),
}

/// The registry and the deliveries waiting to leave this core.
#[derive(Default)]
pub struct PubSub {
    channels: HashMap<Bytes, Vec<Subscriber>>,
    /// In subscription order of first subscriber, as Redis walks its pattern dict.
    patterns: Vec<(Bytes, Vec<Subscriber>)>,
    shard_channels: HashMap<Bytes, Vec<Subscriber>>,
    /// Clients in MONITOR mode.
    monitors: Vec<Subscriber>,
    /// Deliveries per destination core, sent by the event loop at the end of its pass.
    outgoing: Vec<Vec<Delivery>>,
}

impl PubSub {
    /// Records `who` as subscribed to `name` (idempotent).
    pub fn register(&mut self, kind: Kind, name: Bytes, who: Subscriber) {
        let list = match kind {
            Kind::Channel => self.channels.entry(name).or_default(),
            Kind::Shard => self.shard_channels.entry(name).or_default(),
            Kind::Pattern => match self.patterns.iter().position(|(p, _)| *p == name) {
                Some(at) => &mut self.patterns[at].1,
                None => {
                    self.patterns.push((name, Vec::new()));
                    let last = self.patterns.len() - 1;
                    &mut self.patterns[last].1
                }
            },
        };
        if !list.contains(&who) {
            list.push(who);
        }
    }

    /// Forgets `who`'s subscription to `name`.
    pub fn unregister(&mut self, kind: Kind, name: &[u8], who: Subscriber) {
        match kind {
            Kind::Channel | Kind::Shard => {
                let map = if kind == Kind::Channel {
                    &mut self.channels
                } else {
                    &mut self.shard_channels
                };
                if let Some(list) = map.get_mut(name) {
                    list.retain(|s| *s != who);
                    if list.is_empty() {
                        map.remove(name);
                    }
                }
            }
            Kind::Pattern => {
                if let Some(at) = self.patterns.iter().position(|(p, _)| p[..] == *name) {
                    let list = &mut self.patterns[at].1;
                    list.retain(|s| *s != who);
                    if list.is_empty() {
                        self.patterns.remove(at);
                    }
                }
            }
        }
    }

    /// Queues `payload` for every subscriber of `channel` (and of matching patterns, unless
    /// `shard`); returns how many receive it, as PUBLISH answers. Each core gets one delivery
    /// per publication (and matching pattern), naming its subscribers.
    pub fn publish(
        &mut self,
        cores: usize,
        channel: &Bytes,
        payload: &Bytes,
        shard: bool,
    ) -> usize {
        if self.outgoing.len() < cores {
            self.outgoing.resize_with(cores, Vec::new);
        }
        let (map, kind) = if shard {
            (&self.shard_channels, Kind::Shard)
        } else {
            (&self.channels, Kind::Channel)
        };
        let mut receivers = 0;
        if let Some(list) = map.get(channel) {
            receivers += queue(&mut self.outgoing, list, || What::Message {
                kind,
                pattern: None,
                channel: channel.clone(),
                payload: payload.clone(),
            });
        }
        if shard {
            return receivers;
        }
        for (pattern, list) in &self.patterns {
            if glob::matches(pattern, channel, false) {
                receivers += queue(&mut self.outgoing, list, || What::Message {
                    kind: Kind::Pattern,
                    pattern: Some(pattern.clone()),
                    channel: channel.clone(),
                    payload: payload.clone(),
                });
            }
        }
        receivers
    }

    /// Queues `what` for the one connection `to` names.
    pub fn queue_one(&mut self, cores: usize, to: Subscriber, what: What) {
        if self.outgoing.len() < cores {
            self.outgoing.resize_with(cores, Vec::new);
        }
        if let Some(out) = self.outgoing.get_mut(to.core) {
            out.push(Delivery {
                conns: vec![to.conn],
                what,
            });
        }
    }

    /// Adds or removes a MONITOR client.
    pub fn set_monitor(&mut self, who: Subscriber, on: bool) {
        self.monitors.retain(|m| *m != who);
        if on {
            self.monitors.push(who);
        }
    }

    /// Whether any client monitors (commands are then described for them).
    pub fn has_monitors(&self) -> bool {
        !self.monitors.is_empty()
    }

    /// Queues a MONITOR line for every monitoring client.
    pub fn feed_monitors(&mut self, cores: usize, line: Bytes) {
        if self.outgoing.len() < cores {
            self.outgoing.resize_with(cores, Vec::new);
        }
        queue(&mut self.outgoing, &self.monitors, || {
            What::Monitor(line.clone())
        });
    }

    /// Whether a publication on `channel` would reach anyone (keyspace notifications skip
    /// building their message otherwise).
    pub fn has_subscribers(&self) -> bool {
        !self.channels.is_empty() || !self.patterns.is_empty()
    }

    /// The deliveries queued for `core`, taken.
    pub fn take_outgoing(&mut self, core: usize) -> Vec<Delivery> {
        self.outgoing
            .get_mut(core)
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Whether any delivery waits to leave.
    pub fn has_outgoing(&self) -> bool {
        self.outgoing.iter().any(|o| !o.is_empty())
    }

    /// Channels (shard channels with `shard`) with subscribers, matching `pattern` if given.
    pub fn channels(&self, shard: bool, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let map = if shard {
            &self.shard_channels
        } else {
            &self.channels
        };
        map.keys()
            .filter(|c| pattern.is_none_or(|p| glob::matches(p, c, false)))
            .cloned()
            .collect()
    }

    /// Subscribers of `channel` (not counting patterns), as PUBSUB NUMSUB reports.
    pub fn numsub(&self, shard: bool, channel: &[u8]) -> usize {
        let map = if shard {
            &self.shard_channels
        } else {
            &self.channels
        };
        map.get(channel).map_or(0, Vec::len)
    }

    /// Patterns with subscribers, as PUBSUB NUMPAT reports.
    pub fn numpat(&self) -> usize {
        self.patterns.len()
    }

    /// Channels (shard channels with `shard`) with subscribers, as INFO counts them.
    pub fn numchannels(&self, shard: bool) -> usize {
        if shard {
            self.shard_channels.len()
        } else {
            self.channels.len()
        }
    }
}

/// Queues one delivery of `what` per core that has someone in `list`; returns how many.
fn queue(outgoing: &mut [Vec<Delivery>], list: &[Subscriber], what: impl Fn() -> What) -> usize {
    for (core, out) in outgoing.iter_mut().enumerate() {
        let conns: Vec<ConnRef> = list
            .iter()
            .filter(|s| s.core == core)
            .map(|s| s.conn)
            .collect();
        if !conns.is_empty() {
            out.push(Delivery {
                conns,
                what: what(),
            });
        }
    }
    list.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(core: usize, conn: u64) -> Subscriber {
        Subscriber {
            core,
            conn: ConnRef(conn),
        }
    }

    #[test]
    fn publications_reach_channel_and_pattern_subscribers_on_their_cores() {
        let mut ps = PubSub::default();
        ps.register(Kind::Channel, Bytes::from_static(b"news"), who(0, 1));
        ps.register(Kind::Channel, Bytes::from_static(b"news"), who(1, 2));
        ps.register(Kind::Channel, Bytes::from_static(b"news"), who(1, 2));
        ps.register(Kind::Pattern, Bytes::from_static(b"n*"), who(1, 3));
        ps.register(Kind::Shard, Bytes::from_static(b"news"), who(0, 4));
        let n = ps.publish(
            2,
            &Bytes::from_static(b"news"),
            &Bytes::from_static(b"hi"),
            false,
        );
        assert_eq!(n, 3);
        assert_eq!(ps.take_outgoing(0).len(), 1);
        let to_one = ps.take_outgoing(1);
        assert_eq!(to_one.len(), 2, "one delivery per publication and pattern");
        assert_eq!(to_one[0].conns, vec![ConnRef(2)]);
        assert!(matches!(&to_one[1].what, What::Message { pattern: Some(p), .. } if p == "n*"));
        assert_eq!(
            ps.publish(2, &Bytes::from_static(b"news"), &Bytes::new(), true),
            1
        );
        assert_eq!(ps.numsub(false, b"news"), 2);
        assert_eq!(ps.numpat(), 1);
        ps.unregister(Kind::Channel, b"news", who(1, 2));
        ps.unregister(Kind::Pattern, b"n*", who(1, 3));
        assert_eq!(ps.numsub(false, b"news"), 1);
        assert_eq!(ps.numpat(), 0);
        assert_eq!(
            ps.channels(false, Some(b"ne*")),
            vec![Bytes::from_static(b"news")]
        );
    }
}
