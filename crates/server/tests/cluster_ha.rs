//! Replicas and failover on the cluster bus: six Shardis processes (one node each: one
//! shard, or two behind one node) formed by `redis-cli --cluster create … --cluster-replicas
//! 1`; replicas serve READONLY reads; a manual CLUSTER FAILOVER swaps a master and its
//! replica without losing a write WAIT confirmed; a master killed with SIGKILL is replaced by
//! its replica while a cluster client goes on. Tests skip, saying so, when redis-cli is
//! absent.

mod common;

use std::collections::HashMap;

use common::cluster::*;
use common::Server;
use redis::cluster::ClusterClient;
use redis::Commands;

/// A node's CLUSTER NODES lines by node id: (port, flags, master id).
fn nodes(port: u16) -> HashMap<String, (u16, String, String)> {
    let mut c = common::connect(port);
    let text: String = redis::cmd("CLUSTER").arg("NODES").query(&mut c).unwrap();
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let port = f[1]
                .split(['@', ':'])
                .nth(1)
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            (f[0].to_string(), (port, f[2].to_string(), f[3].to_string()))
        })
        .collect()
}

/// The node port of the master of the node on `port`, from that node's view.
fn master_of(port: u16) -> Option<u16> {
    let view = nodes(port);
    let (_, (_, _, master)) = view.iter().find(|(_, (_, f, _))| f.contains("myself"))?;
    view.get(master).map(|(p, _, _)| *p)
}

fn role(port: u16) -> String {
    let mut c = common::connect(port);
    let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut c).unwrap();
    match &role[0] {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        other => format!("{other:?}"),
    }
}

/// CLUSTER SHARDS on `port`: every node's port, replication offset and health.
fn shard_offsets(port: u16) -> Vec<(u16, i64, String)> {
    let mut c = common::connect(port);
    let shards: Vec<redis::Value> = redis::cmd("CLUSTER").arg("SHARDS").query(&mut c).unwrap();
    let field = |m: &[(redis::Value, redis::Value)], name: &str| {
        m.iter()
            .find(|(k, _)| matches!(k, redis::Value::BulkString(b) if b == name.as_bytes()))
            .map(|(_, v)| v.clone())
    };
    let mut out = Vec::new();
    for shard in shards {
        let map = as_pairs(shard);
        let Some(redis::Value::Array(nodes)) = field(&map, "nodes") else {
            continue;
        };
        for node in nodes {
            let n = as_pairs(node);
            let (Some(redis::Value::Int(port)), Some(redis::Value::Int(offset))) =
                (field(&n, "port"), field(&n, "replication-offset"))
            else {
                continue;
            };
            let health = match field(&n, "health") {
                Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(&b).into_owned(),
                other => format!("{other:?}"),
            };
            out.push((port as u16, offset, health));
        }
    }
    out
}

/// A map reply (RESP3) or a flat array of pairs (RESP2) as pairs.
fn as_pairs(v: redis::Value) -> Vec<(redis::Value, redis::Value)> {
    match v {
        redis::Value::Map(m) => m,
        redis::Value::Array(a) => {
            let mut it = a.into_iter();
            let mut out = Vec::new();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                out.push((k, v));
            }
            out
        }
        _ => Vec::new(),
    }
}

/// Six one-node processes of `shards` shards formed into 3 masters with a replica each;
/// every node agrees. One shard is a node on its own port; more are one node on the
/// process's port (`cluster-node-per-shard no`), as replication copies a whole process.
fn six_node_cluster(shards: u16) -> (Vec<Server>, Vec<u16>) {
    // A node timeout that a busy machine's pauses do not trip.
    let per_shard = shards == 1;
    let servers: Vec<Server> = (0..6)
        .map(|_| {
            if per_shard {
                bus_server_timeout(shards, 4000)
            } else {
                process_node_server(shards, 4000)
            }
        })
        .collect();
    let ports = node_ports(
        &servers
            .iter()
            .map(|s| (s, shards, per_shard))
            .collect::<Vec<_>>(),
    );
    let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut args = vec!["--cluster".to_string(), "create".to_string()];
    args.extend(addrs.iter().cloned());
    args.extend([
        "--cluster-replicas".into(),
        "1".into(),
        "--cluster-yes".into(),
    ]);
    let (ok, out) = cli(&args);
    assert!(ok, "redis-cli --cluster create failed:\n{out}");
    assert!(out.contains("[OK] All 16384 slots covered."), "{out}");
    for &port in &ports {
        wait_for(20, "every node to see 3 masters and 3 replicas", || {
            let view = nodes(port);
            let slaves = view.values().filter(|n| n.1.contains("slave")).count();
            slaves == 3 && info_field(port, "cluster_state") == "ok"
        });
    }
    let out = check(&addrs[0]);
    assert!(
        out.contains("[OK] All nodes agree about slots configuration."),
        "{out}"
    );
    assert!(out.contains("1 additional replica(s)"), "{out}");
    (servers, ports)
}

#[test]
fn replicas_failover_by_hand_and_on_failure() {
    failover_by_hand_and_on_failure(1);
}

/// The same with processes of two shards each, every process one node.
#[test]
fn two_shard_processes_replicate_and_fail_over() {
    failover_by_hand_and_on_failure(2);
}

fn failover_by_hand_and_on_failure(shards: u16) {
    if !redis_cli() {
        return;
    }
    let (mut servers, ports) = six_node_cluster(shards);
    let replicas: Vec<u16> = ports
        .iter()
        .copied()
        .filter(|&p| master_of(p).is_some())
        .collect();
    assert_eq!(replicas.len(), 3);
    // Each replica's process follows its master and reports it.
    for &r in &replicas {
        wait_for(20, "the replica's link to be up", || {
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query(&mut common::connect(r))
                .unwrap();
            info.contains("master_link_status:up")
        });
        assert_eq!(role(r), "slave");
        let master = master_of(r).unwrap();
        let id: String = redis::cmd("CLUSTER")
            .arg("MYID")
            .query(&mut common::connect(master))
            .unwrap();
        let listed: Vec<String> = redis::cmd("CLUSTER")
            .arg("REPLICAS")
            .arg(&id)
            .query(&mut common::connect(r))
            .unwrap();
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert!(listed[0].contains(&format!(":{r}@")) && listed[0].contains("slave"));
    }
    let slots: Vec<Vec<redis::Value>> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query(&mut common::connect(ports[0]))
        .unwrap();
    assert!(
        slots.iter().all(|s| s.len() == 4),
        "a master and a replica per range"
    );

    let client = ClusterClient::new(vec![format!("redis://127.0.0.1:{}/", ports[0])]).unwrap();
    let mut conn = client.get_connection().unwrap();
    for i in 0..2000 {
        let _: () = conn.set(format!("k:{i}"), i).unwrap();
    }
    if shards > 1 {
        // Tens of thousands of keys of every type, and redis-benchmark, through the masters.
        every_type_through(&mut conn, 4000);
        benchmark_cluster(&format!("127.0.0.1:{}", ports[0]));
    }
    // CLUSTER SHARDS: each replica's offset as its pings announce it, once it caught up.
    for &r in &replicas {
        let master = master_of(r).unwrap();
        wait_for(
            20,
            "the replica's announced offset to reach its master's",
            || {
                let offsets = shard_offsets(ports[0]);
                let of = |p: u16| {
                    offsets
                        .iter()
                        .find(|o| o.0 == p)
                        .map(|o| (o.1, o.2.clone()))
                };
                match (of(master), of(r)) {
                    (Some((m, _)), Some((o, health))) => m > 0 && o == m && health == "online",
                    _ => false,
                }
            },
        );
    }
    // A replica redirects to its master unless a READONLY client reads.
    let r = replicas[0];
    let master = master_of(r).unwrap();
    let mut on_master = common::connect(master);
    let mut last = None;
    let key = (0..2000).map(|i| format!("k:{i}")).find(|k| {
        let got: redis::RedisResult<i64> = on_master.get(k);
        last = got.err().map(error_text);
        last.is_none()
    });
    let key = key.unwrap_or_else(|| panic!("no key on {master}: {last:?} {:?}", nodes(master)));
    let mut on_replica = common::connect(r);
    let moved: redis::RedisResult<i64> = on_replica.get(&key);
    assert!(error_text(moved.unwrap_err()).ends_with(&format!("127.0.0.1:{master}")));
    let _: () = redis::cmd("READONLY").query(&mut on_replica).unwrap();
    wait_for(10, "the replica to have the key", || {
        on_replica
            .get::<_, Option<i64>>(&key)
            .ok()
            .flatten()
            .is_some()
    });
    let write: redis::RedisResult<()> = on_replica.set(&key, 1);
    assert!(error_text(write.unwrap_err()).starts_with("MOVED "));
    let _: () = redis::cmd("READWRITE").query(&mut on_replica).unwrap();
    let moved: redis::RedisResult<i64> = on_replica.get(&key);
    assert!(error_text(moved.unwrap_err()).starts_with("MOVED "));
    // Shard channels go by slot: SSUBSCRIBE on the replica (which serves its master's shard
    // channels), SPUBLISH on the master reaches it over the bus (PUBLISHSHARD).
    let mut sub = common::connect(r);
    sub.send_packed_command(&redis::cmd("SSUBSCRIBE").arg(&key).get_packed_command())
        .unwrap();
    let _subscribed = sub.recv_response().unwrap();
    let away = ports
        .iter()
        .copied()
        .find(|&p| p != r && p != master)
        .unwrap();
    let moved: redis::RedisResult<i64> = redis::cmd("SPUBLISH")
        .arg(&key)
        .arg("x")
        .query(&mut common::connect(away));
    assert!(error_text(moved.unwrap_err()).starts_with("MOVED "));
    let _: i64 = redis::cmd("SPUBLISH")
        .arg(&key)
        .arg("to the shard")
        .query(&mut on_master)
        .unwrap();
    sub.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let message = format!("{:?}", sub.recv_response().unwrap());
    assert!(message.contains("to the shard"), "{message}");

    // Manual failover: writes WAIT-confirmed by the replica survive the swap.
    let mut direct = common::connect(master);
    for i in 0..200 {
        let _: () = direct.set(format!("{{{key}}}:w{i}"), i).unwrap();
    }
    let acked: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(5000)
        .query(&mut direct)
        .unwrap();
    assert_eq!(acked, 1);
    let _: () = redis::cmd("CLUSTER")
        .arg("FAILOVER")
        .query(&mut common::connect(r))
        .unwrap();
    wait_for(
        20,
        "the replica to become master and the master a replica",
        || master_of(r).is_none() && master_of(master) == Some(r) && role(r) == "master",
    );
    for &p in &ports {
        wait_for(20, "every node to see the swap", || {
            nodes(p)
                .values()
                .any(|n| n.0 == master && n.1.contains("slave"))
                && info_field(p, "cluster_state") == "ok"
        });
    }
    let mut promoted = common::connect(r);
    for i in 0..200 {
        let v: i64 = promoted.get(format!("{{{key}}}:w{i}")).unwrap();
        assert_eq!(v, i);
    }
    for i in 0..2000 {
        let v: i64 = conn.get(format!("k:{i}")).unwrap();
        assert_eq!(v, i);
    }

    // SIGKILL of a master: its replica takes over and the client goes on.
    let victim = *ports
        .iter()
        .find(|&&p| p != r && master_of(p).is_none())
        .unwrap();
    let heir = *replicas
        .iter()
        .find(|&&p| master_of(p) == Some(victim))
        .unwrap();
    let mut direct = common::connect(victim);
    let own: Vec<String> = (0..2000)
        .map(|i| format!("k:{i}"))
        .filter(|k| direct.get::<_, i64>(k).is_ok())
        .collect();
    for k in &own {
        let _: () = direct.set(k, -1).unwrap();
    }
    let acked: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(5000)
        .query(&mut direct)
        .unwrap();
    assert_eq!(acked, 1);
    let i = ports.iter().position(|&p| p == victim).unwrap();
    drop(servers.remove(i));
    wait_for(60, "the replica to take over", || {
        master_of(heir).is_none() && role(heir) == "master"
    });
    let alive: Vec<u16> = ports.iter().copied().filter(|&p| p != victim).collect();
    for &p in &alive {
        wait_for(20, "cluster_state:ok after the failover", || {
            info_field(p, "cluster_state") == "ok"
        });
    }
    let client = ClusterClient::new(vec![format!("redis://127.0.0.1:{}/", alive[0])]).unwrap();
    let mut conn = client.get_connection().unwrap();
    for k in &own {
        let v: i64 = conn.get(k).unwrap();
        assert_eq!(v, -1, "{k} was acknowledged by WAIT before the kill");
        let _: () = conn.set(k, 7).unwrap();
    }
    let (ok, out) = cli(&[
        "--cluster".into(),
        "check".into(),
        format!("127.0.0.1:{}", alive[0]),
    ]);
    assert!(out.contains("[OK] All 16384 slots covered."), "{ok} {out}");
}
