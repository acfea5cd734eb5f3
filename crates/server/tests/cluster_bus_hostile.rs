//! A hostile or broken peer on the cluster bus port: crafted frames written by a raw TCP
//! client (the most gossip a message can carry, counts that lie, bad lengths, garbage, a
//! flood of PINGs whose PONGs it never reads) leave the node answering, its memory bounded
//! and its real peer well.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::Duration;

use common::cluster::*;

const HEADER_LEN: usize = 2256;
const GOSSIP_LEN: usize = 104;
const PING: u16 = 0;
const UPDATE: u16 = 7;
const FAILOVER_AUTH_REQUEST: u16 = 5;
const MASTER: u16 = 1;
const PFAIL: u16 = 4;

/// A bus message as Redis 7.0 lays it out: `sender` at node port `port` signs it, `data`
/// follows the header, and the header announces `count` gossip entries and the length.
fn frame(kind: u16, (sender, port): (&[u8], u16), count: u16, data: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; HEADER_LEN];
    b[..4].copy_from_slice(b"RCmb");
    b[8..10].copy_from_slice(&1u16.to_be_bytes());
    b[10..12].copy_from_slice(&port.to_be_bytes());
    b[12..14].copy_from_slice(&kind.to_be_bytes());
    b[14..16].copy_from_slice(&count.to_be_bytes());
    b[40..80].copy_from_slice(sender);
    b[2248..2250].copy_from_slice(&(port + 10000).to_be_bytes());
    b[2250..2252].copy_from_slice(&MASTER.to_be_bytes());
    b.extend_from_slice(data);
    let total = b.len() as u32;
    b[4..8].copy_from_slice(&total.to_be_bytes());
    b
}

/// One gossip entry about `name` with `flags`.
fn gossip(name: &[u8], flags: u16) -> [u8; GOSSIP_LEN] {
    let mut g = [0u8; GOSSIP_LEN];
    g[..40].copy_from_slice(name);
    g[48..57].copy_from_slice(b"127.0.0.1");
    // Where nothing listens: connecting to it is refused at once.
    g[94..96].copy_from_slice(&7999u16.to_be_bytes());
    g[96..98].copy_from_slice(&17999u16.to_be_bytes());
    g[98..100].copy_from_slice(&flags.to_be_bytes());
    g
}

fn bus(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port + 10000)).expect("bus port");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

/// Shrinks `s`'s receive buffer to the least the kernel allows, so that what the node sends
/// and `s` does not read piles up in the node (loopback receive buffers grow to 32 MB).
fn small_receive_buffer(s: &TcpStream) {
    let size: libc::c_int = 4096;
    // SAFETY: a valid socket and an int option of the size given.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt SO_RCVBUF");
}

/// Whether the node closed `s` (it reads to the end, dropping PONGs).
fn closed_by_node(mut s: TcpStream) -> bool {
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            // Closed with our bytes unread.
            Err(e) => return e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}

fn memory_stat(port: u16, field: &str) -> i64 {
    let mut c = common::connect(port);
    let stats: Vec<redis::Value> = redis::cmd("MEMORY").arg("STATS").query(&mut c).unwrap();
    stats
        .chunks(2)
        .find_map(|kv| match kv {
            [redis::Value::BulkString(k), redis::Value::Int(v)] if k == field.as_bytes() => {
                Some(*v)
            }
            _ => None,
        })
        .expect("memory stats field")
}

#[test]
fn crafted_bus_frames_leave_the_node_serving_and_its_peer_well() {
    let server = bus_server(2);
    let (p0, p1) = (server.port + 1, server.port + 2);
    let mut n0 = common::connect(p0);
    let mut n1 = common::connect(p1);
    assert_eq!(
        run(&mut n0, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]),
        "OK"
    );
    let cport1 = (p1 + 10000).to_string();
    assert_eq!(
        run(
            &mut n0,
            &["CLUSTER", "MEET", "127.0.0.1", &p1.to_string(), &cport1]
        ),
        "OK"
    );
    wait_for(10, "both nodes know each other", || {
        info_field(p0, "cluster_known_nodes") == "2" && info_field(p1, "cluster_known_nodes") == "2"
    });
    wait_for(10, "the cluster is ok", || {
        info_field(p1, "cluster_state") == "ok"
    });
    let id1 = run(&mut n1, &["CLUSTER", "MYID"]);
    // Signed as the peer, at its own address (a peer's PING moves it where it says it is).
    let peer = (id1.as_bytes(), p1);
    let id1 = id1.as_bytes();

    // The most gossip a message can carry, signed with the real peer's name, every entry
    // reporting that peer failing; then entries about made-up nodes.
    let mut hostile = bus(p0);
    let failing: Vec<u8> = (0..u16::MAX).flat_map(|_| gossip(id1, PFAIL)).collect();
    hostile
        .write_all(&frame(PING, peer, u16::MAX, &failing))
        .unwrap();
    let made_up: Vec<u8> = (0..20u32)
        .flat_map(|i| gossip(format!("{i:040x}").as_bytes(), MASTER))
        .collect();
    hostile.write_all(&frame(PING, peer, 20, &made_up)).unwrap();
    // Counts and lengths that do not agree: ignored, the link kept.
    hostile
        .write_all(&frame(PING, peer, u16::MAX, &[]))
        .unwrap();
    hostile
        .write_all(&frame(PING, peer, 1, &[0; 2 * GOSSIP_LEN]))
        .unwrap();
    hostile
        .write_all(&frame(UPDATE, peer, 0, &[0; 100]))
        .unwrap();
    hostile
        .write_all(&frame(FAILOVER_AUTH_REQUEST, peer, 0, &[0; 8]))
        .unwrap();
    hostile.write_all(&frame(PING, peer, 0, &[])).unwrap();
    // The node answered the valid PINGs on this link: it is still open.
    let mut pong = [0u8; 8];
    hostile.read_exact(&mut pong).unwrap();
    assert_eq!(&pong[..4], b"RCmb");
    // A length past the largest message, and bytes that are no message: closed.
    let mut huge = frame(PING, peer, 0, &[]);
    huge[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
    hostile.write_all(&huge).unwrap();
    assert!(closed_by_node(hostile));
    let mut garbage = bus(p0);
    garbage.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    assert!(closed_by_node(garbage));

    // PINGs from an unknown name whose PONGs are never read: the link's send buffer passes
    // cluster-link-sendbuf-limit and the node frees the link.
    assert_eq!(
        run(
            &mut n0,
            &["CONFIG", "SET", "cluster-link-sendbuf-limit", "64kb"]
        ),
        "OK"
    );
    let flood = bus(p0);
    small_receive_buffer(&flood);
    let ping = frame(PING, (&[b'f'; 40], 7999), 0, &[]);
    let mut writer = flood.try_clone().unwrap();
    for _ in 0..20_000 {
        if writer.write_all(&ping).is_err() {
            break;
        }
    }
    drop(writer);
    assert!(closed_by_node(flood));
    wait_for(10, "the freed link counted in CLUSTER INFO", || {
        info_field(p0, "total_cluster_links_buffer_limit_exceeded") == "1"
    });
    assert_eq!(
        run(
            &mut n0,
            &["CONFIG", "SET", "cluster-link-sendbuf-limit", "0"]
        ),
        "OK"
    );

    // The node serves, knows the nodes it learned (the 20 made up) and the peer is well.
    assert_eq!(run(&mut n0, &["PING"]), "PONG");
    assert_eq!(info_field(p0, "cluster_known_nodes"), "22");
    let nodes = run(&mut n0, &["CLUSTER", "NODES"]);
    let line = nodes
        .lines()
        .find(|l| l.starts_with(std::str::from_utf8(id1).unwrap()))
        .expect("the peer is known");
    assert!(!line.contains("fail"), "{line}");
    assert_eq!(info_field(p0, "cluster_state"), "ok");
    wait_for(10, "the peer's links are up again", || {
        let links: Vec<Vec<(String, redis::Value)>> =
            redis::cmd("CLUSTER").arg("LINKS").query(&mut n0).unwrap();
        links
            .iter()
            .filter(|l| {
                l.iter()
                    .any(|(k, v)| k == "node" && *v == redis::Value::BulkString(id1.to_vec()))
            })
            .count()
            == 2
    });
    // Each link as Redis describes it.
    let links: Vec<Vec<(String, redis::Value)>> =
        redis::cmd("CLUSTER").arg("LINKS").query(&mut n0).unwrap();
    let fields: Vec<&str> = links[0].iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        fields,
        [
            "direction",
            "node",
            "create-time",
            "events",
            "send-buffer-allocated",
            "send-buffer-used"
        ]
    );
    assert!(matches!(links[0][4].1, redis::Value::Int(n) if n >= 0));
    // What the links hold now is what their buffers hold: little.
    assert!(memory_stat(p0, "cluster.links") < 1 << 20);
}
