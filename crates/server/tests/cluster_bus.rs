//! A cluster across processes (`cluster-bus yes`): Shardis processes, each shard a node on
//! Redis's cluster bus, formed into one cluster by `redis-cli --cluster create`, checked by
//! `redis-cli --cluster check`, served to a cluster client, and joined by a real Redis node.
//! Tests skip, saying so, when redis-cli (Debian's redis-tools) is absent.

mod common;

use common::cluster::*;
use common::{key_slot, Server};
use redis::cluster::ClusterClient;
use redis::Commands;

#[test]
fn three_processes_form_one_cluster_with_redis_cli() {
    if !redis_cli() {
        return;
    }
    let (a, b, c) = (bus_server(1), bus_server(2), bus_server(1));
    let servers = [(&a, 1), (&b, 2), (&c, 1)];
    let addrs = node_addrs(&servers);
    // A fresh node knows only itself and serves nothing.
    assert_eq!(info_field(a.port + 1, "cluster_known_nodes"), "1");
    assert_eq!(info_field(a.port + 1, "cluster_state"), "fail");
    let mut fresh = common::connect(a.port + 1);
    let refused: redis::RedisResult<String> = fresh.get("foo");
    assert_eq!(
        error_text(refused.unwrap_err()),
        "CLUSTERDOWN Hash slot not served"
    );
    create(&addrs);
    let out = check(&addrs[2]);
    assert!(out.contains("[OK] All nodes agree about slots configuration."));
    for addr in &addrs {
        let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
        wait_for(10, "cluster_state:ok everywhere", || {
            info_field(port, "cluster_state") == "ok"
        });
        assert_eq!(info_field(port, "cluster_known_nodes"), "4");
        assert_eq!(info_field(port, "cluster_size"), "4");
    }
    // A cluster client reads and writes keys of every type across every node: 24,000 keys.
    let client = ClusterClient::new(vec![format!("redis://{}/", addrs[0])]).expect("client");
    let mut conn = client.get_connection().expect("cluster connection");
    every_type_through(&mut conn, 4000);
    // redis-benchmark in cluster mode runs without errors against the nodes.
    benchmark_cluster(&addrs[0]);
    // Each key on the node that owns its slot; -MOVED from the others to it.
    let mut moved = 0;
    for addr in &addrs {
        let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
        let mut node = common::connect(port);
        let key = "key:7";
        let got: redis::RedisResult<i64> = node.get(key);
        match got {
            Ok(v) => assert_eq!(v, 7),
            Err(e) => {
                let text = error_text(e);
                assert!(
                    text.starts_with(&format!("MOVED {} 127.0.0.1:", key_slot(key.as_bytes()))),
                    "{text}"
                );
                moved += 1;
            }
        }
    }
    assert_eq!(moved, 3, "one node serves the key, three redirect");
    // Configuration changes follow Redis's rules.
    let mut n = common::connect(a.port + 1);
    let busy: redis::RedisResult<()> = redis::cmd("CLUSTER").arg("ADDSLOTS").arg(0).query(&mut n);
    assert!(error_text(busy.unwrap_err()).contains("is already busy"));
    let epoch: redis::RedisResult<()> = redis::cmd("CLUSTER")
        .arg("SET-CONFIG-EPOCH")
        .arg(9)
        .query(&mut n);
    assert!(error_text(epoch.unwrap_err()).contains("does not know any other node"));
    let _: () = redis::cmd("CLUSTER")
        .arg("SAVECONFIG")
        .query(&mut n)
        .unwrap();
}

#[test]
fn a_redis_node_joins_over_the_bus_and_takes_a_slot() {
    if !redis_cli() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("shardis-bus-redis-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let Some((_redis, rport)) = common::real_redis::redis_server_with(
        &dir,
        &["--cluster-enabled", "yes", "--cluster-node-timeout", "1000"],
    ) else {
        return;
    };
    let servers: Vec<Server> = (0..3).map(|_| bus_server(1)).collect();
    let addrs = node_addrs(&servers.iter().map(|s| (s, 1)).collect::<Vec<_>>());
    create(&addrs);
    let mut r = common::connect(rport);
    let _: () = redis::cmd("CLUSTER")
        .arg("MEET")
        .arg("127.0.0.1")
        .arg(servers[0].port + 1)
        .arg(servers[0].port + 10001)
        .query(&mut r)
        .expect("meet");
    for port in [
        rport,
        servers[0].port + 1,
        servers[1].port + 1,
        servers[2].port + 1,
    ] {
        wait_for(15, "every node to know the Redis node", || {
            info_field(port, "cluster_known_nodes") == "4"
        });
    }
    let out = check(&format!("127.0.0.1:{rport}"));
    assert!(out.contains("[OK] All nodes agree about slots configuration."));
    // Slot 0 moves to the Redis node: its owner lets it go, Redis claims it with a newer
    // config epoch, and the Shardis nodes follow.
    for port in [servers[0].port + 1, rport] {
        let mut c = common::connect(port);
        let _: () = redis::cmd("CLUSTER")
            .arg("DELSLOTS")
            .arg(0)
            .query(&mut c)
            .unwrap();
    }
    let _: () = redis::cmd("CLUSTER")
        .arg("ADDSLOTS")
        .arg(0)
        .query(&mut r)
        .unwrap();
    let _: String = redis::cmd("CLUSTER")
        .arg("BUMPEPOCH")
        .query(&mut r)
        .unwrap();
    // "{06S}" hashes to slot 0.
    assert_eq!(key_slot(b"{06S}x"), 0);
    for s in &servers {
        let mut c = common::connect(s.port + 1);
        wait_for(15, "slot 0 to move to the Redis node", || {
            let got: redis::RedisResult<String> = c.get("{06S}x");
            got.err()
                .map(error_text)
                .is_some_and(|e| e == format!("MOVED 0 127.0.0.1:{rport}"))
        });
    }
    // Redis's own state went to fail while slot 0 was unassigned there; it comes back.
    for port in [
        rport,
        servers[0].port + 1,
        servers[1].port + 1,
        servers[2].port + 1,
    ] {
        wait_for(15, "cluster_state:ok again", || {
            info_field(port, "cluster_state") == "ok"
        });
    }
    let mut redis_side = common::connect(rport);
    let _: () = redis_side.set("{06S}x", "on redis").unwrap();
    let client = ClusterClient::new(vec![format!("redis://{}/", addrs[1])]).expect("client");
    let mut conn = client.get_connection().expect("cluster connection");
    let v: String = conn.get("{06S}x").unwrap();
    assert_eq!(v, "on redis");
    // PUBLISH crosses the bus both ways between Redis and Shardis nodes.
    let on_redis = listen(rport, "mixed");
    let on_shardis = listen(servers[1].port + 1, "mixed");
    let _: i64 = redis::cmd("PUBLISH")
        .arg("mixed")
        .arg("from shardis")
        .query(&mut common::connect(servers[0].port + 1))
        .unwrap();
    let _: i64 = redis::cmd("PUBLISH")
        .arg("mixed")
        .arg("from redis")
        .query(&mut r)
        .unwrap();
    // Each over its own path (the bus, or the node's own subscribers): either order.
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let both = vec!["from redis".to_string(), "from shardis".to_string()];
    assert_eq!(sorted(on_redis.join().unwrap()), both);
    assert_eq!(sorted(on_shardis.join().unwrap()), both);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_killed_node_is_failed_and_the_cluster_goes_down() {
    if !redis_cli() {
        return;
    }
    let mut servers: Vec<Server> = (0..3).map(|_| bus_server(1)).collect();
    let addrs = node_addrs(&servers.iter().map(|s| (s, 1)).collect::<Vec<_>>());
    create(&addrs);
    let gone = servers.pop().unwrap();
    let gone_node = format!("127.0.0.1:{}@", gone.port + 1);
    drop(gone);
    for s in &servers {
        let port = s.port + 1;
        wait_for(20, "the dead node to be failed", || {
            let mut c = common::connect(port);
            let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(&mut c).unwrap();
            nodes
                .lines()
                .any(|l| l.contains(&gone_node) && l.contains("master,fail "))
        });
        assert_eq!(info_field(port, "cluster_state"), "fail");
        let mut c = common::connect(port);
        let down: redis::RedisResult<String> = c.get("anything");
        assert_eq!(
            error_text(down.unwrap_err()),
            "CLUSTERDOWN The cluster is down"
        );
        // Keyless commands still run.
        let pong: String = redis::cmd("PING").query(&mut c).unwrap();
        assert_eq!(pong, "PONG");
    }
}

#[test]
fn without_the_bus_configuration_changes_are_refused() {
    let server = Server::start(2, &["--cluster-enabled", "yes"]);
    let mut c = common::connect(server.port + 1);
    let r: redis::RedisResult<()> = redis::cmd("CLUSTER").arg("ADDSLOTS").arg(1).query(&mut c);
    assert!(error_text(r.unwrap_err()).contains("cluster bus"));
    let plain = Server::start(1, &[]);
    let mut c = plain.conn();
    let r: redis::RedisResult<()> = redis::cmd("CLUSTER")
        .arg("MEET")
        .arg("127.0.0.1")
        .arg(1)
        .query(&mut c);
    assert_eq!(
        error_text(r.unwrap_err()),
        "ERR This instance has cluster support disabled"
    );
}

/// Three one-node processes in a cluster, with the node port owning `key` and another's.
struct SlotMove {
    _servers: Vec<Server>,
    slot: u16,
    owner: u16,
    heir: u16,
}

impl SlotMove {
    fn of(key: &str) -> SlotMove {
        let servers: Vec<Server> = (0..3).map(|_| bus_server_timeout(1, 4000)).collect();
        let addrs = node_addrs(&servers.iter().map(|s| (s, 1)).collect::<Vec<_>>());
        create(&addrs);
        let ports: Vec<u16> = servers.iter().map(|s| s.port + 1).collect();
        let owner = *ports
            .iter()
            .find(|&&p| common::connect(p).get::<_, Option<String>>(key).is_ok())
            .unwrap();
        let heir = *ports.iter().find(|&&p| p != owner).unwrap();
        SlotMove {
            _servers: servers,
            slot: key_slot(key.as_bytes()),
            owner,
            heir,
        }
    }

    /// Gives the slot to the heir (CLUSTER SETSLOT NODE on both nodes).
    fn give(&self) {
        let heir_id: String = redis::cmd("CLUSTER")
            .arg("MYID")
            .query(&mut common::connect(self.heir))
            .unwrap();
        for p in [self.heir, self.owner] {
            let _: () = redis::cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(self.slot)
                .arg("NODE")
                .arg(&heir_id)
                .query(&mut common::connect(p))
                .unwrap();
        }
    }

    /// The redirection to the heir.
    fn moved(&self) -> String {
        format!("MOVED {} 127.0.0.1:{}", self.slot, self.heir)
    }
}

/// A write held by a pause is judged again when it runs, as Redis processes a postponed
/// command anew: a slot given to another node meanwhile sends it there with -MOVED.
#[test]
fn a_held_write_follows_its_slot_to_the_new_owner() {
    if !redis_cli() {
        return;
    }
    let key = "held";
    let moving = SlotMove::of(key);
    let owner = moving.owner;
    let mut admin = common::connect(owner);
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(20000)
        .arg("WRITE")
        .query(&mut admin)
        .unwrap();
    let writer = std::thread::spawn(move || {
        let mut c = common::connect(owner);
        let r: redis::RedisResult<()> = c.set(key, "v");
        r.map_err(error_text)
    });
    wait_for(10, "the write to be held", || {
        let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut admin).unwrap();
        list.lines().any(|l| l.contains("cmd=set"))
    });
    moving.give();
    let _: () = redis::cmd("CLIENT")
        .arg("UNPAUSE")
        .query(&mut admin)
        .unwrap();
    assert_eq!(writer.join().unwrap(), Err(moving.moved()));
}

/// A client blocked on a key whose slot moves to another node is answered -MOVED there, as
/// Redis's `clusterRedirectBlockedClientIfNeeded` answers it, instead of waiting for ever.
#[test]
fn a_blocked_client_follows_its_slot_to_the_new_owner() {
    if !redis_cli() {
        return;
    }
    let key = "waited";
    let moving = SlotMove::of(key);
    let owner = moving.owner;
    let waiter = std::thread::spawn(move || {
        let mut c = common::connect(owner);
        let r: redis::RedisResult<Option<(String, String)>> = c.blpop(key, 0.0);
        r.map_err(error_text)
    });
    let mut admin = common::connect(owner);
    wait_for(10, "the client to block", || {
        info_field_of(&mut admin, "blocked_clients") == "1"
    });
    moving.give();
    assert_eq!(waiter.join().unwrap(), Err(moving.moved()));
}

/// A field of INFO on `c`.
fn info_field_of(c: &mut redis::Connection, field: &str) -> String {
    let info: String = redis::cmd("INFO").query(c).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or("")
        .trim()
        .to_string()
}

/// Subscribes to `channel` on `port` and collects the messages until none comes for 3 s.
fn listen(port: u16, channel: &str) -> std::thread::JoinHandle<Vec<String>> {
    let channel = channel.to_string();
    let (ready, subscribed) = std::sync::mpsc::channel();
    let listener = std::thread::spawn(move || {
        let mut c = common::connect(port);
        let mut ps = c.as_pubsub();
        ps.subscribe(&channel).expect("subscribe");
        ps.set_read_timeout(Some(std::time::Duration::from_secs(3)))
            .expect("timeout");
        ready.send(()).expect("ready");
        let mut got = Vec::new();
        while let Ok(m) = ps.get_message() {
            got.push(m.get_payload::<String>().expect("payload"));
        }
        got
    });
    subscribed.recv().expect("subscribed");
    listener
}

/// PUBLISH reaches the subscribers of every node over the bus, once per process whatever
/// its number of nodes, and counts only the publishing node's own receivers, as Redis.
#[test]
fn publish_reaches_every_node_once() {
    if !redis_cli() {
        return;
    }
    let (a, b, c) = (bus_server(2), bus_server(1), bus_server(1));
    let addrs = node_addrs(&[(&a, 2), (&b, 1), (&c, 1)]);
    create(&addrs);
    for addr in &addrs {
        let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
        wait_for(15, "cluster_state:ok everywhere", || {
            info_field(port, "cluster_state") == "ok"
        });
    }
    let listeners = [
        listen(a.port, "news"),
        listen(a.port + 2, "news"),
        listen(b.port + 1, "news"),
        listen(c.port + 1, "news"),
    ];
    let mut publisher = common::connect(b.port + 1);
    let local: i64 = redis::cmd("PUBLISH")
        .arg("news")
        .arg("hello")
        .query(&mut publisher)
        .unwrap();
    assert_eq!(local, 1, "only the publishing process's subscriber counts");
    for l in listeners {
        assert_eq!(l.join().unwrap(), vec!["hello".to_string()]);
    }
}

/// DEBUG CLUSTERLINK KILL frees a node's links with another; they come back.
#[test]
fn debug_clusterlink_kill_frees_links_that_come_back() {
    if !redis_cli() {
        return;
    }
    let servers: Vec<Server> = (0..3).map(|_| bus_server_with_debug()).collect();
    let addrs = node_addrs(&servers.iter().map(|s| (s, 1)).collect::<Vec<_>>());
    create(&addrs);
    let port = servers[0].port + 1;
    let mut c = common::connect(port);
    let links = |c: &mut redis::Connection| {
        let l: Vec<redis::Value> = redis::cmd("CLUSTER").arg("LINKS").query(c).unwrap();
        l.len()
    };
    wait_for(15, "a link each way with both peers", || links(&mut c) == 4);
    let peer: String = redis::cmd("CLUSTER")
        .arg("MYID")
        .query(&mut common::connect(servers[1].port + 1))
        .unwrap();
    assert_eq!(
        run(&mut c, &["DEBUG", "CLUSTERLINK", "KILL", "ALL", &peer]),
        "OK"
    );
    assert!(links(&mut c) < 4, "the links went");
    wait_for(15, "the links to come back", || links(&mut c) == 4);
    assert_eq!(
        run(&mut c, &["DEBUG", "CLUSTERLINK", "KILL", "SOME", &peer]),
        "ERR Invalid link type"
    );
    assert_eq!(
        run(&mut c, &["DEBUG", "CLUSTERLINK", "KILL", "TO", "nosuch"]),
        "ERR Unknown node nosuch"
    );
}

/// CONFIG SET cluster-announce-port / -bus-port / -tls-port take effect at once on the node
/// and reach the others by gossip, as Redis's; 0 goes back to the ports listened on. (Each
/// shard's node is announced at the base given + 1 + its index, as its ports are.)
#[test]
fn announced_ports_change_at_run_time() {
    if !redis_cli() {
        return;
    }
    let servers: Vec<Server> = (0..3).map(|_| bus_server(1)).collect();
    let addrs = node_addrs(&servers.iter().map(|s| (s, 1)).collect::<Vec<_>>());
    create(&addrs);
    let port = servers[0].port + 1;
    let nodes = |p: u16| -> String {
        redis::cmd("CLUSTER")
            .arg("NODES")
            .query(&mut common::connect(p))
            .unwrap()
    };
    let mut c = common::connect(port);
    let mut set = |words: &[&str]| {
        let cmd: Vec<&str> = ["CONFIG", "SET"].iter().chain(words).copied().collect();
        assert_eq!(run(&mut c, &cmd), "OK");
    };
    // Seen at once by the node itself, then by another through gossip.
    let seen = |text: &str, other: u16| {
        assert!(nodes(port).contains(text), "{}", nodes(port));
        wait_for(15, "the others to learn the announced address", || {
            nodes(other).contains(text)
        });
    };
    set(&[
        "cluster-announce-tls-port",
        "40001",
        "cluster-announce-port",
        "40002",
    ]);
    seen(":40003@", servers[1].port + 1);
    set(&["cluster-announce-bus-port", "40003"]);
    seen("@40004 ", servers[2].port + 1);
    set(&[
        "cluster-announce-port",
        "0",
        "cluster-announce-bus-port",
        "0",
    ]);
    let back = format!(":{port}@{} ", servers[0].port + 10001);
    assert!(nodes(port).contains(&back), "{}", nodes(port));
}

/// A master that loses a slot to a newer configuration while it still holds keys there (and
/// stays a master) deletes them, as Redis deletes its dirty slots' keys.
#[test]
fn keys_of_a_slot_lost_to_a_newer_configuration_are_deleted() {
    if !redis_cli() {
        return;
    }
    let key = "{06S}x";
    let moving = SlotMove::of(key);
    assert_eq!(moving.slot, 0);
    let mut owner = common::connect(moving.owner);
    let _: () = owner.set(key, "v").unwrap();
    let _: () = owner.set("{06S}y", "w").unwrap();
    // The heir takes the slot on its own and wins it with a newer config epoch.
    let heir_id: String = redis::cmd("CLUSTER")
        .arg("MYID")
        .query(&mut common::connect(moving.heir))
        .unwrap();
    let mut heir = common::connect(moving.heir);
    assert_eq!(
        run(&mut heir, &["CLUSTER", "SETSLOT", "0", "NODE", &heir_id]),
        "OK"
    );
    assert!(run(&mut heir, &["CLUSTER", "BUMPEPOCH"]).starts_with("BUMPED"));
    wait_for(20, "the old owner to let its keys go", || {
        run(&mut owner, &["CLUSTER", "COUNTKEYSINSLOT", "0"]) == "0"
    });
    assert_eq!(run(&mut owner, &["GET", key]), moving.moved());
    assert!(run(&mut owner, &["ROLE"]).contains("master"));
}
