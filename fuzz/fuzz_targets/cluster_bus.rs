//! Plays a hostile cluster-bus peer against one node's bus state (`cluster::bus::state`):
//! messages built from the input (every header field and gossip entry chosen by it, then
//! optionally one byte overwritten) or raw bytes, on an inbound and an outbound link, with
//! the clock moving and `cron` running between them. Nothing may panic (overflow checks are
//! on), and the node's invariants must hold after every step: it still knows itself at its own
//! ports, every slot owner is a known node, and it never takes another node's name.
//!
//! Input layout: a sequence of steps; each step's first byte picks what happens (receive a
//! built message, receive raw bytes, run cron, close a link, CLUSTER MEET / FORGET /
//! BUMPEPOCH), the bytes after it fill in the fields.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shardis_server::cluster::bus::msg::{self, Body, Gossip, Header, Name, NAME_LEN, SLOT_BYTES};
use shardis_server::cluster::bus::state::{Announce, State};

/// Reads the input as a stream of small numbers; zeros once it is used up.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    /// An epoch or offset: small, or at the edges of u64.
    fn u64(&mut self) -> u64 {
        match self.u8() {
            0xff => u64::MAX,
            0xfe => u64::MAX - 1,
            0xfd => 1 << 63,
            b => u64::from(b & 7),
        }
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
    fn done(&self) -> bool {
        self.0.is_empty()
    }
}

const ME: Name = *b"5555555555555555555555555555555555555555";

/// A few names: the node's own, three other valid ones, an all-zero and a non-hex one.
fn name(i: u8) -> Name {
    let mut n = match i % 6 {
        0 => ME,
        1 => [b'1'; NAME_LEN],
        2 => [b'a'; NAME_LEN],
        3 => [b'f'; NAME_LEN],
        4 => [0; NAME_LEN],
        _ => [b'z'; NAME_LEN],
    };
    if i & 0x80 != 0 {
        n[NAME_LEN - 1] = b'0' + (i & 7);
    }
    n
}

fn ip(i: u8) -> String {
    match i % 5 {
        0 => String::new(),
        1 => "10.0.0.2".into(),
        2 => "10.0.0.1".into(),
        3 => "::1".into(),
        _ => "x".repeat(60),
    }
}

fn slots(inp: &mut Input<'_>) -> Box<[u8; SLOT_BYTES]> {
    let mut s = Box::new([0u8; SLOT_BYTES]);
    match inp.u8() % 4 {
        0 => {}
        1 => s.fill(0xff),
        2 => {
            let (a, b) = (inp.u16() as usize % 16384, inp.u16() as usize % 16384);
            for j in a.min(b)..=a.max(b) {
                msg::set_slot(&mut s, j);
            }
        }
        _ => {
            for _ in 0..inp.u8() % 8 {
                msg::set_slot(&mut s, inp.u16() as usize % 16384);
            }
        }
    }
    s
}

fn message(inp: &mut Input<'_>) -> Vec<u8> {
    let kind = u16::from(inp.u8() % 12);
    let header = Header {
        kind,
        port: inp.u16(),
        current_epoch: inp.u64(),
        config_epoch: inp.u64(),
        offset: inp.u64(),
        sender: name(inp.u8()),
        slots: slots(inp),
        slaveof: name(inp.u8() | 4),
        myip: ip(inp.u8()),
        pport: inp.u16(),
        cport: inp.u16(),
        flags: inp.u16(),
        state: inp.u8() % 2,
        mflags: inp.u8(),
    };
    let body = match kind {
        msg::PING | msg::PONG | msg::MEET => Body::Ping(
            (0..inp.u8() % 6)
                .map(|_| Gossip {
                    name: name(inp.u8()),
                    ping_sent: inp.u32(),
                    pong_received: inp.u32(),
                    ip: ip(inp.u8()),
                    port: inp.u16(),
                    cport: inp.u16(),
                    flags: inp.u16(),
                    pport: inp.u16(),
                })
                .collect(),
        ),
        msg::FAIL => Body::Fail(name(inp.u8())),
        msg::UPDATE => Body::Update {
            config_epoch: inp.u64(),
            name: name(inp.u8()),
            slots: slots(inp),
        },
        msg::PUBLISH | msg::PUBLISHSHARD => Body::Publish {
            channel: (0..inp.u8() % 8).map(|_| inp.u8()).collect(),
            message: (0..inp.u8() % 16).map(|_| inp.u8()).collect(),
        },
        _ => Body::Other,
    };
    let mut bytes = msg::encode(&header, &body);
    // One byte overwritten anywhere: lengths, counts, flags the builder keeps consistent.
    if inp.u8() & 1 == 1 {
        let at = inp.u16() as usize % bytes.len();
        bytes[at] = inp.u8();
    }
    bytes
}

fn check(st: &State) {
    let me = st.nodes.get(&st.myself).expect("the node forgot itself");
    assert_eq!(me.name, st.myself);
    // Only the node's own settings say where it listens.
    assert_eq!((me.port, me.cport), (7000, 17000), "a peer moved myself");
    assert_ne!(
        me.flags & msg::flags::MYSELF,
        0,
        "myself lost its MYSELF flag"
    );
    for n in st.nodes.values() {
        if n.name != st.myself {
            assert_eq!(
                n.flags & msg::flags::MYSELF,
                0,
                "another node flagged myself"
            );
        }
    }
    for owner in st.slots.iter().flatten() {
        assert!(
            st.nodes.contains_key(owner),
            "a slot owned by an unknown node"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input(data);
    let mut now: u64 = 1_000_000;
    let announce = Announce {
        port: 7000,
        cport: 17000,
        pport: 0,
        ip: String::new(),
    };
    let mut st = State::new(ME, announce, 15_000, now);
    let _ = st.assign(&[0, 1, 2, 100, 16383], false);
    let inbound = st.accepted(now, "10.0.0.2".into(), "10.0.0.1".into());
    st.meet("10.0.0.3", 7001, 17001, now);
    st.cron(now);
    // The link cron opened to the node MEET added.
    let outbound = st.io.iter().find_map(|io| match io {
        shardis_server::cluster::bus::state::Io::Connect { link, .. } => Some(*link),
        _ => None,
    });
    if let Some(l) = outbound {
        st.connected(l, now, "10.0.0.3".into(), "10.0.0.1".into());
    }
    let mut steps = 0;
    while !inp.done() && steps < 64 {
        steps += 1;
        let op = inp.u8();
        let link = if op & 0x80 != 0 {
            outbound.unwrap_or(inbound)
        } else {
            inbound
        };
        match op & 0x7f {
            0..=79 => {
                let bytes = message(&mut inp);
                st.received(link, &bytes, now);
            }
            80..=89 => {
                let len = inp.u16() as usize;
                let raw = inp.bytes(len).to_vec();
                if msg::frame_len(&raw).is_ok_and(|n| n == raw.len()) {
                    st.received(link, &raw, now);
                }
                let _ = msg::decode(&raw);
            }
            90..=109 => {
                // The clock is the wall clock in milliseconds, never a peer's number: it
                // moves forward by up to about two minutes a step.
                now += u64::from(inp.u8()) * 500;
                st.cron(now);
            }
            110..=114 => st.closed(link),
            115..=119 => {
                let _ = st.forget(&name(inp.u8()), now);
            }
            120..=123 => {
                let _ = st.bump_epoch();
            }
            _ => {
                let _ = st.meet("10.0.0.9", i64::from(inp.u16()), i64::from(inp.u16()), now);
            }
        }
        st.io.clear();
        check(&st);
    }
});
