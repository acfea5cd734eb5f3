//! The cluster bus's wire format: Redis 7.0's `clusterMsg` (cluster.h), big-endian, a fixed
//! 2256-byte header followed by the type's data. Only what the bus acts on is decoded
//! (PING/PONG/MEET with their gossip entries, FAIL, UPDATE); other types are recognised by
//! their header and skipped, as Redis skips types it does not know.

/// Bytes of a node name (40 hex digits).
pub const NAME_LEN: usize = 40;
/// Bytes of an IP field (`NET_IP_STR_LEN`).
const IP_LEN: usize = 46;
/// Bytes of a slot bitmap.
pub const SLOT_BYTES: usize = 16384 / 8;
/// The header, up to the data union.
pub const HEADER_LEN: usize = 2256;
/// One gossip entry.
const GOSSIP_LEN: usize = 104;
/// FAIL's data: the failing node's name.
const FAIL_LEN: usize = NAME_LEN;
/// PUBLISH's data before its channel and message: their lengths.
const PUBLISH_LEN: usize = 8;
/// A module message's data before its payload: module id, payload length, type.
const MODULE_LEN: usize = 13;
/// UPDATE's data: config epoch, name, slots.
const UPDATE_LEN: usize = 8 + NAME_LEN + SLOT_BYTES;
/// The largest message accepted: a PING gossiping about 65535 nodes fits. A link announcing
/// more is closed (a client of the bus cannot make the node allocate past this).
pub const MAX_LEN: usize = HEADER_LEN + GOSSIP_LEN * 65535 + 64 * 1024;

pub const PING: u16 = 0;
pub const PONG: u16 = 1;
pub const MEET: u16 = 2;
pub const FAIL: u16 = 3;
/// A PUBLISH carried to every node (a sharded one, PUBLISHSHARD, to the nodes of the
/// publishing node's shard).
pub const PUBLISH: u16 = 4;
/// A replica asks the masters for their vote, and a master grants it (header only).
pub const FAILOVER_AUTH_REQUEST: u16 = 5;
pub const FAILOVER_AUTH_ACK: u16 = 6;
pub const UPDATE: u16 = 7;
/// A replica asks its master to pause for a manual failover (header only).
pub const MFSTART: u16 = 8;
/// A module's message: validated, not used.
const MODULE: u16 = 9;
pub const PUBLISHSHARD: u16 = 10;
/// Message types counted in the statistics (`CLUSTERMSG_TYPE_COUNT`).
pub const TYPES: usize = 11;

/// Node flags, as on the wire and in CLUSTER NODES.
pub mod flags {
    pub const MASTER: u16 = 1;
    pub const SLAVE: u16 = 2;
    pub const PFAIL: u16 = 4;
    pub const FAIL: u16 = 8;
    pub const MYSELF: u16 = 16;
    pub const HANDSHAKE: u16 = 32;
    pub const NOADDR: u16 = 64;
    pub const MEET: u16 = 128;
    pub const NOFAILOVER: u16 = 512;
}

/// `mflags[0]`: the sending master paused its clients for a manual failover.
pub const FLAG0_PAUSED: u8 = 1;
/// `mflags[0]`: a manual failover's vote request, granted even while the master is up.
pub const FLAG0_FORCEACK: u8 = 1 << 1;
/// `mflags[0]`: the message carries ping extensions.
const FLAG0_EXT_DATA: u8 = 1 << 2;

pub type Name = [u8; NAME_LEN];
pub type Slots = [u8; SLOT_BYTES];

/// The header every message carries: who sends it and what it claims.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    pub kind: u16,
    pub port: u16,
    pub current_epoch: u64,
    pub config_epoch: u64,
    pub offset: u64,
    pub sender: Name,
    pub slots: Box<Slots>,
    /// All zero: the sender is a master.
    pub slaveof: Name,
    /// Empty: the receiver takes the address it sees the link come from.
    pub myip: String,
    pub pport: u16,
    pub cport: u16,
    pub flags: u16,
    /// 0: the sender's cluster is ok.
    pub state: u8,
    /// `mflags[0]`'s manual failover bits ([`FLAG0_PAUSED`], [`FLAG0_FORCEACK`]).
    pub mflags: u8,
}

/// One gossip entry: what the sender knows of another node.
#[derive(Clone, Debug, PartialEq)]
pub struct Gossip {
    pub name: Name,
    pub ping_sent: u32,
    pub pong_received: u32,
    pub ip: String,
    pub port: u16,
    pub cport: u16,
    pub flags: u16,
    pub pport: u16,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// PING, PONG, MEET.
    Ping(Vec<Gossip>),
    Fail(Name),
    Update {
        config_epoch: u64,
        name: Name,
        slots: Box<Slots>,
    },
    /// PUBLISH or PUBLISHSHARD (the header's type says which).
    Publish {
        channel: Vec<u8>,
        message: Vec<u8>,
    },
    /// A type the bus does not act on (failover, module messages).
    Other,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub header: Header,
    pub body: Body,
}

/// The total length a message announces, from its first 8 bytes; Err when they are not a
/// bus message's or the length is out of bounds.
pub fn frame_len(first8: &[u8]) -> Result<usize, &'static str> {
    if first8.len() < 8 || &first8[..4] != b"RCmb" {
        return Err("not a cluster bus message");
    }
    let len = u32::from_be_bytes([first8[4], first8[5], first8[6], first8[7]]) as usize;
    if !(HEADER_LEN..=MAX_LEN).contains(&len) {
        return Err("cluster bus message length out of range");
    }
    Ok(len)
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(x)
}

fn name_at(b: &[u8], at: usize) -> Name {
    let mut n = [0u8; NAME_LEN];
    n.copy_from_slice(&b[at..at + NAME_LEN]);
    n
}

/// A NUL-terminated text field.
fn text_at(b: &[u8], at: usize, len: usize) -> String {
    let field = &b[at..at + len];
    let end = field.iter().position(|&c| c == 0).unwrap_or(len);
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// Decodes one whole message (`buf` is exactly its announced length). Err for a message
/// Redis would drop (its `clusterIsValidPacket`: wrong version, a length that does not
/// match its type and the counts it declares); the caller ignores it and keeps the link.
/// The work is linear in the message's length: a count can only announce what is there.
pub fn decode(buf: &[u8]) -> Result<Message, &'static str> {
    let total = frame_len(buf)?;
    if total != buf.len() {
        return Err("truncated cluster bus message");
    }
    if u16_at(buf, 8) != 1 {
        return Err("unknown cluster bus protocol version");
    }
    let kind = u16_at(buf, 12);
    let count = u16_at(buf, 14) as usize;
    let mut slots = Box::new([0u8; SLOT_BYTES]);
    slots.copy_from_slice(&buf[80..80 + SLOT_BYTES]);
    let header = Header {
        kind,
        port: u16_at(buf, 10),
        current_epoch: u64_at(buf, 16),
        config_epoch: u64_at(buf, 24),
        offset: u64_at(buf, 32),
        sender: name_at(buf, 40),
        slots,
        slaveof: name_at(buf, 2128),
        myip: text_at(buf, 2168, IP_LEN),
        pport: u16_at(buf, 2246),
        cport: u16_at(buf, 2248),
        flags: u16_at(buf, 2250),
        state: buf[2252],
        mflags: buf[2253] & (FLAG0_PAUSED | FLAG0_FORCEACK),
    };
    let data = &buf[HEADER_LEN..];
    let body = match kind {
        PING | PONG | MEET => {
            let gossip_len = GOSSIP_LEN * count;
            if data.len() < gossip_len {
                return Err("gossip section past the message");
            }
            let mut rest = &data[gossip_len..];
            if buf[2253] & FLAG0_EXT_DATA != 0 {
                // Extensions (the announced hostname): validated as Redis does, not used.
                for _ in 0..u16_at(buf, 2214) {
                    if rest.len() < 8 {
                        return Err("ping extension past the message");
                    }
                    let len = u32_at(rest, 0) as usize;
                    if !len.is_multiple_of(8) || len < 8 || len > rest.len() {
                        return Err("malformed ping extension");
                    }
                    rest = &rest[len..];
                }
            }
            if !rest.is_empty() {
                return Err("ping message length does not match its gossip count");
            }
            let gossip = data[..gossip_len]
                .chunks_exact(GOSSIP_LEN)
                .map(|g| Gossip {
                    name: name_at(g, 0),
                    ping_sent: u32_at(g, 40),
                    pong_received: u32_at(g, 44),
                    ip: text_at(g, 48, IP_LEN),
                    port: u16_at(g, 94),
                    cport: u16_at(g, 96),
                    flags: u16_at(g, 98),
                    pport: u16_at(g, 100),
                })
                .collect();
            Body::Ping(gossip)
        }
        FAIL => {
            if data.len() != FAIL_LEN {
                return Err("FAIL message of the wrong length");
            }
            Body::Fail(name_at(data, 0))
        }
        UPDATE => {
            if data.len() != UPDATE_LEN {
                return Err("UPDATE message of the wrong length");
            }
            let mut slots = Box::new([0u8; SLOT_BYTES]);
            slots.copy_from_slice(&data[8 + NAME_LEN..]);
            Body::Update {
                config_epoch: u64_at(data, 0),
                name: name_at(data, 8),
                slots,
            }
        }
        FAILOVER_AUTH_REQUEST | FAILOVER_AUTH_ACK | MFSTART => {
            if !data.is_empty() {
                return Err("header-only message with data");
            }
            Body::Other
        }
        PUBLISH | PUBLISHSHARD => {
            if data.len() < PUBLISH_LEN {
                return Err("PUBLISH message too short");
            }
            // In u64: two u32 lengths cannot overflow it.
            let declared = u64::from(u32_at(data, 0)) + u64::from(u32_at(data, 4));
            if declared != (data.len() - PUBLISH_LEN) as u64 {
                return Err("PUBLISH message length does not match its contents");
            }
            // Both lengths fit in what is there (checked just above).
            let channel_len = u32_at(data, 0) as usize;
            let (channel, message) = data[PUBLISH_LEN..].split_at(channel_len);
            Body::Publish {
                channel: channel.to_vec(),
                message: message.to_vec(),
            }
        }
        MODULE => {
            if data.len() < MODULE_LEN {
                return Err("module message too short");
            }
            if u64::from(u32_at(data, 8)) != (data.len() - MODULE_LEN) as u64 {
                return Err("module message length does not match its payload");
            }
            Body::Other
        }
        // A type this version does not know is taken as well formed, as Redis does.
        _ => Body::Other,
    };
    Ok(Message { header, body })
}

fn put_text(out: &mut [u8], s: &str) {
    // At most the field less its NUL, as Redis's strncpy of the announced IP.
    let n = s.len().min(out.len() - 1);
    out[..n].copy_from_slice(&s.as_bytes()[..n]);
}

/// Encodes a message; the header's `kind` says which, and must match `body`.
pub fn encode(h: &Header, body: &Body) -> Vec<u8> {
    let data_len = match body {
        Body::Ping(g) => GOSSIP_LEN * g.len(),
        Body::Fail(_) => FAIL_LEN,
        Body::Update { .. } => UPDATE_LEN,
        Body::Publish { channel, message } => PUBLISH_LEN + channel.len() + message.len(),
        Body::Other => 0,
    };
    let total = HEADER_LEN + data_len;
    let mut b = vec![0u8; total];
    b[..4].copy_from_slice(b"RCmb");
    b[4..8].copy_from_slice(&(total as u32).to_be_bytes());
    b[8..10].copy_from_slice(&1u16.to_be_bytes());
    b[10..12].copy_from_slice(&h.port.to_be_bytes());
    b[12..14].copy_from_slice(&h.kind.to_be_bytes());
    let count = match body {
        Body::Ping(g) => g.len() as u16,
        _ => 0,
    };
    b[14..16].copy_from_slice(&count.to_be_bytes());
    b[16..24].copy_from_slice(&h.current_epoch.to_be_bytes());
    b[24..32].copy_from_slice(&h.config_epoch.to_be_bytes());
    b[32..40].copy_from_slice(&h.offset.to_be_bytes());
    b[40..80].copy_from_slice(&h.sender);
    b[80..80 + SLOT_BYTES].copy_from_slice(&h.slots[..]);
    b[2128..2168].copy_from_slice(&h.slaveof);
    put_text(&mut b[2168..2168 + IP_LEN], &h.myip);
    b[2246..2248].copy_from_slice(&h.pport.to_be_bytes());
    b[2248..2250].copy_from_slice(&h.cport.to_be_bytes());
    b[2250..2252].copy_from_slice(&h.flags.to_be_bytes());
    b[2252] = h.state;
    b[2253] = h.mflags & (FLAG0_PAUSED | FLAG0_FORCEACK);
    let data = &mut b[HEADER_LEN..];
    match body {
        Body::Ping(gossip) => {
            for (g, out) in gossip.iter().zip(data.chunks_exact_mut(GOSSIP_LEN)) {
                out[..40].copy_from_slice(&g.name);
                out[40..44].copy_from_slice(&g.ping_sent.to_be_bytes());
                out[44..48].copy_from_slice(&g.pong_received.to_be_bytes());
                put_text(&mut out[48..48 + IP_LEN], &g.ip);
                out[94..96].copy_from_slice(&g.port.to_be_bytes());
                out[96..98].copy_from_slice(&g.cport.to_be_bytes());
                out[98..100].copy_from_slice(&g.flags.to_be_bytes());
                out[100..102].copy_from_slice(&g.pport.to_be_bytes());
            }
        }
        Body::Fail(name) => data.copy_from_slice(name),
        Body::Update {
            config_epoch,
            name,
            slots,
        } => {
            data[..8].copy_from_slice(&config_epoch.to_be_bytes());
            data[8..48].copy_from_slice(name);
            data[48..].copy_from_slice(&slots[..]);
        }
        Body::Publish { channel, message } => {
            data[..4].copy_from_slice(&(channel.len() as u32).to_be_bytes());
            data[4..8].copy_from_slice(&(message.len() as u32).to_be_bytes());
            data[8..8 + channel.len()].copy_from_slice(channel);
            data[8 + channel.len()..].copy_from_slice(message);
        }
        Body::Other => {}
    }
    b
}

/// Whether bit `slot` of a bitmap is set (Redis's bit order: slot 0 is bit 0 of byte 0).
pub fn has_slot(bitmap: &Slots, slot: usize) -> bool {
    bitmap[slot / 8] & (1 << (slot & 7)) != 0
}

pub fn set_slot(bitmap: &mut Slots, slot: usize) {
    bitmap[slot / 8] |= 1 << (slot & 7);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kind: u16) -> Header {
        let mut slots = Box::new([0u8; SLOT_BYTES]);
        set_slot(&mut slots, 0);
        set_slot(&mut slots, 16383);
        Header {
            kind,
            port: 7001,
            current_epoch: 5,
            config_epoch: 3,
            offset: 0,
            sender: [b'a'; NAME_LEN],
            slots,
            slaveof: [0; NAME_LEN],
            myip: "127.0.0.1".into(),
            pport: 0,
            cport: 17001,
            flags: flags::MASTER | flags::MYSELF,
            state: 0,
            mflags: FLAG0_PAUSED,
        }
    }

    #[test]
    fn round_trips_every_type_at_redis_offsets() {
        let gossip = Gossip {
            name: [b'b'; NAME_LEN],
            ping_sent: 1,
            pong_received: 2,
            ip: "10.0.0.2".into(),
            port: 7002,
            cport: 17002,
            flags: flags::MASTER,
            pport: 0,
        };
        for (kind, body) in [
            (PING, Body::Ping(vec![gossip.clone(), gossip])),
            (MEET, Body::Ping(Vec::new())),
            (FAIL, Body::Fail([b'c'; NAME_LEN])),
            (
                UPDATE,
                Body::Update {
                    config_epoch: 9,
                    name: [b'd'; NAME_LEN],
                    slots: Box::new([0xff; SLOT_BYTES]),
                },
            ),
            (
                PUBLISH,
                Body::Publish {
                    channel: b"news".to_vec(),
                    message: b"hello".to_vec(),
                },
            ),
            (
                PUBLISHSHARD,
                Body::Publish {
                    channel: Vec::new(),
                    message: b"m".to_vec(),
                },
            ),
        ] {
            let h = header(kind);
            let bytes = encode(&h, &body);
            assert_eq!(frame_len(&bytes[..8]), Ok(bytes.len()));
            assert_eq!(decode(&bytes), Ok(Message { header: h, body }));
        }
        // PUBLISH's data as Redis lays it out: two lengths, then the channel and message.
        let publish = encode(
            &header(PUBLISH),
            &Body::Publish {
                channel: b"ch".to_vec(),
                message: b"msg".to_vec(),
            },
        );
        assert_eq!(publish.len(), HEADER_LEN + 8 + 5);
        assert_eq!(&publish[HEADER_LEN..], b"\0\0\0\x02\0\0\0\x03chmsg");
        let ping = encode(&header(PING), &Body::Ping(Vec::new()));
        assert_eq!(ping.len(), HEADER_LEN);
        // Fields where cluster.h's static asserts put them.
        assert_eq!(&ping[2168..2177], b"127.0.0.1");
        assert_eq!(u16_at(&ping, 2248), 17001);
        assert_eq!(ping[80], 1);
        assert_eq!(ping[80 + SLOT_BYTES - 1], 0x80);
    }

    #[test]
    fn rejects_what_redis_drops() {
        let mut ping = encode(&header(PING), &Body::Ping(Vec::new()));
        ping[15] = 1; // one gossip entry announced, none present
        assert!(decode(&ping).is_err());
        assert!(frame_len(b"RCmb\0\0\0\x10").is_err());
        assert!(frame_len(b"HTTP/1.1").is_err());
        let mut fail = encode(&header(FAIL), &Body::Fail([b'c'; NAME_LEN]));
        fail.push(0);
        let n = fail.len() as u32;
        fail[4..8].copy_from_slice(&n.to_be_bytes());
        assert!(decode(&fail).is_err());
        // An unknown type is skipped whole.
        let other = encode(&header(42), &Body::Other);
        assert_eq!(decode(&other).map(|m| m.body), Ok(Body::Other));
    }

    /// `msg` with `extra` bytes of data appended and its length fixed.
    fn with_data(mut msg: Vec<u8>, extra: &[u8]) -> Vec<u8> {
        msg.extend_from_slice(extra);
        let n = msg.len() as u32;
        msg[4..8].copy_from_slice(&n.to_be_bytes());
        msg
    }

    #[test]
    fn every_type_is_held_to_its_length_as_redis_does() {
        // Header-only types carry nothing more.
        for kind in [FAILOVER_AUTH_REQUEST, FAILOVER_AUTH_ACK, MFSTART] {
            let bare = encode(&header(kind), &Body::Other);
            assert_eq!(decode(&bare).map(|m| m.body), Ok(Body::Other));
            assert!(decode(&with_data(bare, &[0; 8])).is_err(), "type {kind}");
        }
        // PUBLISH: channel and message lengths, then exactly those bytes.
        for kind in [PUBLISH, PUBLISHSHARD] {
            let bare = encode(&header(kind), &Body::Other);
            assert!(decode(&bare).is_err(), "no lengths");
            let mut data = vec![0, 0, 0, 2, 0, 0, 0, 3];
            data.extend_from_slice(b"chmsg");
            assert!(decode(&with_data(bare.clone(), &data)).is_ok());
            data.push(0);
            assert!(decode(&with_data(bare.clone(), &data)).is_err());
            // Lengths summing past u32 are not a wrap-around.
            let huge = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 9];
            assert!(decode(&with_data(bare, &huge)).is_err());
        }
        // A module message: id, payload length, type, payload.
        let bare = encode(&header(MODULE), &Body::Other);
        let mut data = vec![0; 8];
        data.extend_from_slice(&2u32.to_be_bytes());
        data.push(1);
        data.extend_from_slice(b"hi");
        assert!(decode(&with_data(bare.clone(), &data)).is_ok());
        data.pop();
        assert!(decode(&with_data(bare, &data)).is_err());
    }

    #[test]
    fn a_gossip_count_must_match_the_length_exactly() {
        let g = Gossip {
            name: [b'b'; NAME_LEN],
            ping_sent: 0,
            pong_received: 0,
            ip: String::new(),
            port: 1,
            cport: 2,
            flags: flags::PFAIL,
            pport: 0,
        };
        let ping = encode(&header(PING), &Body::Ping(vec![g.clone(); 3]));
        for count in [0u16, 2, 4, u16::MAX] {
            let mut bad = ping.clone();
            bad[14..16].copy_from_slice(&count.to_be_bytes());
            assert!(decode(&bad).is_err(), "count {count}");
        }
        // One byte more than three entries is not a message either.
        assert!(decode(&with_data(ping.clone(), &[0])).is_err());
        assert!(matches!(decode(&ping).map(|m| m.body), Ok(Body::Ping(g)) if g.len() == 3));
        // The largest count there is fits the largest message.
        let most = encode(&header(PONG), &Body::Ping(vec![g; 65535]));
        assert!(most.len() <= MAX_LEN);
        assert_eq!(frame_len(&most[..8]), Ok(most.len()));
    }

    #[test]
    fn extensions_are_validated_and_skipped() {
        let mut ping = encode(&header(PING), &Body::Ping(Vec::new()));
        ping[2253] |= FLAG0_EXT_DATA;
        ping[2214..2216].copy_from_slice(&1u16.to_be_bytes());
        let mut ext = vec![0u8; 16];
        ext[..4].copy_from_slice(&16u32.to_be_bytes());
        ext[8..12].copy_from_slice(b"host");
        ping.extend_from_slice(&ext);
        let n = ping.len() as u32;
        ping[4..8].copy_from_slice(&n.to_be_bytes());
        assert!(decode(&ping).is_ok());
        ping[3 + HEADER_LEN] = 12; // not a multiple of 8
        assert!(decode(&ping).is_err());
    }
}
