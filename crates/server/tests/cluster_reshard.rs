//! Resharding a cluster across processes (`cluster-bus yes`): a slot moved by hand with
//! CLUSTER SETSLOT and MIGRATE, with -ASK, -TRYAGAIN and ASKING as Redis 7.0 answers them
//! (keys on the node's own core and on another core of its process); `redis-cli --cluster
//! reshard / rebalance / add-node / del-node` while a cluster client keeps writing and
//! reading. Tests skip, saying so, when redis-cli (Debian's redis-tools) is absent.

mod common;

use common::cluster::{
    bus_server_timeout, cli, info_field, node_ports, redis_cli, run, wait_for, HEAVY,
    RESHARD_NODE_TIMEOUT_MS,
};
use common::{connect, key_slot};

/// A node's id.
/// A bus node for these tests: moving slots keeps a debug build's bus thread busy, so the
/// node timeout is long enough that no node looks failed meanwhile.
fn reshard_node(shards: u16) -> common::Server {
    bus_server_timeout(shards, RESHARD_NODE_TIMEOUT_MS)
}

fn myid(port: u16) -> String {
    run(&mut connect(port), &["CLUSTER", "MYID"])
}

fn nodes(port: u16) -> String {
    run(&mut connect(port), &["CLUSTER", "NODES"])
}

#[test]
fn a_slot_moves_by_hand_with_ask_and_tryagain_as_redis() {
    if !redis_cli() {
        return;
    }
    // P: two nodes, each owning the range whose keys live on the other core. Q: one node,
    // with no slot yet.
    let (p, q) = (reshard_node(2), reshard_node(1));
    let (p0, p1, q0) = (p.port + 1, p.port + 2, q.port + 1);
    let (id_p1, id_q0) = (myid(p1), myid(q0));
    for (port, range, epoch) in [(p0, ["8192", "16383"], "1"), (p1, ["0", "8191"], "2")] {
        let mut c = connect(port);
        assert_eq!(
            run(&mut c, &["CLUSTER", "ADDSLOTSRANGE", range[0], range[1]]),
            "OK"
        );
        assert_eq!(run(&mut c, &["CLUSTER", "SET-CONFIG-EPOCH", epoch]), "OK");
    }
    assert_eq!(
        run(&mut connect(q0), &["CLUSTER", "SET-CONFIG-EPOCH", "3"]),
        "OK"
    );
    for port in [p1, q0] {
        let bus = (port + 10000).to_string();
        let meet = run(
            &mut connect(p0),
            &["CLUSTER", "MEET", "127.0.0.1", &port.to_string(), &bus],
        );
        assert_eq!(meet, "OK");
    }
    for port in [p0, p1, q0] {
        wait_for(15, "the cluster forms", || {
            info_field(port, "cluster_state") == "ok"
                && info_field(port, "cluster_known_nodes") == "3"
        });
    }
    let slot = key_slot(b"bar");
    let s = slot.to_string();
    assert_eq!(slot, 5061);
    let (mut cp1, mut cq0) = (connect(p1), connect(q0));
    assert_eq!(run(&mut cp1, &["SET", "bar", "1"]), "OK");
    // SETSLOT's checks.
    assert_eq!(
        run(&mut cq0, &["CLUSTER", "SETSLOT", &s, "MIGRATING", &id_p1]),
        "ERR I'm not the owner of hash slot 5061"
    );
    assert_eq!(
        run(&mut cp1, &["CLUSTER", "SETSLOT", &s, "IMPORTING", &id_q0]),
        "ERR I'm already the owner of hash slot 5061"
    );
    assert_eq!(
        run(&mut cp1, &["CLUSTER", "SETSLOT", &s, "MIGRATING", "nobody"]),
        "ERR I don't know about node nobody"
    );
    assert_eq!(
        run(&mut cp1, &["CLUSTER", "SETSLOT", &s, "BOGUS"]),
        "ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP"
    );
    assert_eq!(
        run(&mut cq0, &["CLUSTER", "SETSLOT", &s, "IMPORTING", &id_p1]),
        "OK"
    );
    assert_eq!(
        run(&mut cp1, &["CLUSTER", "SETSLOT", &s, "MIGRATING", &id_q0]),
        "OK"
    );
    assert!(nodes(p1).contains(&format!("[5061->-{id_q0}]")));
    assert!(nodes(q0).contains(&format!("[5061-<-{id_p1}]")));
    // The source: keys it has are served, a missing one is asked of the target, a mix is
    // TRYAGAIN. (P1's slot keeps its keys on P's other core.)
    let ask = format!("ASK 5061 127.0.0.1:{q0}");
    assert_eq!(run(&mut cp1, &["GET", "bar"]), "1");
    assert_eq!(run(&mut cp1, &["GET", "{bar}x"]), ask);
    assert_eq!(
        run(&mut cp1, &["MGET", "bar", "{bar}x"]),
        "TRYAGAIN Multiple keys request during rehashing of slot"
    );
    // The target: MOVED without ASKING; ASKING lasts one command.
    let moved = format!("MOVED 5061 127.0.0.1:{p1}");
    assert_eq!(run(&mut cq0, &["GET", "{bar}x"]), moved);
    assert_eq!(run(&mut cq0, &["ASKING"]), "OK");
    assert_eq!(run(&mut cq0, &["SET", "{bar}x", "2"]), "OK");
    assert_eq!(run(&mut cq0, &["GET", "{bar}x"]), moved);
    assert_eq!(run(&mut cq0, &["ASKING"]), "OK");
    assert_eq!(
        run(&mut cq0, &["MGET", "{bar}x", "{bar}y"]),
        "TRYAGAIN Multiple keys request during rehashing of slot"
    );
    // MIGRATE moves the key (RESTORE-ASKING needs no ASKING); the source then asks.
    assert_eq!(
        run(
            &mut cp1,
            &["MIGRATE", "127.0.0.1", &q0.to_string(), "bar", "0", "5000"]
        ),
        "OK"
    );
    assert_eq!(run(&mut cp1, &["GET", "bar"]), ask);
    assert_eq!(run(&mut cq0, &["ASKING"]), "OK");
    assert_eq!(run(&mut cq0, &["GET", "bar"]), "1");
    assert_eq!(
        run(&mut cp1, &["CLUSTER", "COUNTKEYSINSLOT", &s]),
        "0",
        "nothing left at the source"
    );
    // Closing: the target takes the slot with a new epoch and the cluster follows.
    assert_eq!(
        run(&mut cq0, &["CLUSTER", "SETSLOT", &s, "NODE", &id_q0]),
        "OK"
    );
    assert_eq!(
        run(&mut cp1, &["CLUSTER", "SETSLOT", &s, "NODE", &id_q0]),
        "OK"
    );
    assert!(!nodes(q0).contains('['), "no slot open any more");
    let moved_q = format!("MOVED 5061 127.0.0.1:{q0}");
    wait_for(10, "every node sees the new owner", || {
        [p0, p1]
            .iter()
            .all(|&port| run(&mut connect(port), &["GET", "bar"]) == moved_q)
    });
    assert_eq!(run(&mut cq0, &["GET", "bar"]), "1");
    assert_eq!(run(&mut cq0, &["GET", "{bar}x"]), "2");
    let (ok, out) = cli(&[
        "--cluster".into(),
        "check".into(),
        format!("127.0.0.1:{p0}"),
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains("[OK] All nodes agree about slots configuration."),
        "{out}"
    );
}

fn cli_ok(args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let (ok, out) = cli(&args);
    assert!(ok, "redis-cli {args:?} failed:\n{out}");
    out
}

fn check_clean(port: u16) {
    let out = cli_ok(&["--cluster", "check", &format!("127.0.0.1:{port}")]);
    assert!(
        out.contains("[OK] All nodes agree about slots configuration.")
            && out.contains("[OK] All 16384 slots covered."),
        "{out}"
    );
    assert!(!out.contains("[WARNING]"), "{out}");
}

/// How many slots node `port` serves, by its own CLUSTER NODES line.
fn slots_of(port: u16) -> usize {
    let text = nodes(port);
    let me = text.lines().find(|l| l.contains("myself")).unwrap_or("");
    me.split_whitespace()
        .skip(8)
        .filter(|w| !w.starts_with('['))
        .map(|w| match w.split_once('-') {
            Some((a, b)) => b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1,
            None => 1,
        })
        .sum()
}

/// A cluster client writing `k:<i>` = i (and reading some back) until told to stop; the
/// writes it saw acknowledged, and every error it got.
fn writer(
    entry: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<(Vec<u64>, Vec<String>)> {
    use redis::Commands;
    std::thread::spawn(move || {
        let client =
            redis::cluster::ClusterClient::new(vec![format!("redis://127.0.0.1:{entry}/")])
                .expect("cluster client");
        let mut conn = client.get_connection().expect("cluster connection");
        let (mut acked, mut errors) = (Vec::new(), Vec::new());
        let mut i = 0u64;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            match conn.set::<_, _, ()>(format!("k:{i}"), i) {
                Ok(()) => acked.push(i),
                Err(e) => errors.push(format!("SET k:{i}: {e}")),
            }
            if i.is_multiple_of(7) && !acked.is_empty() {
                let j = acked[acked.len() / 2];
                match conn.get::<_, Option<u64>>(format!("k:{j}")) {
                    Ok(Some(v)) if v == j => {}
                    other => errors.push(format!("GET k:{j}: {other:?}")),
                }
            }
            i += 1;
            // A steady load, not one that starves the nodes of the shared CPUs.
            std::thread::sleep(std::time::Duration::from_micros(500));
        }
        (acked, errors)
    })
}

/// Every acknowledged write reads back, through a fresh cluster client.
fn all_readable(entry: u16, acked: &[u64]) {
    use redis::Commands;
    let client = redis::cluster::ClusterClient::new(vec![format!("redis://127.0.0.1:{entry}/")])
        .expect("cluster client");
    let mut conn = client.get_connection().expect("cluster connection");
    for &i in acked {
        let v: Option<u64> = conn.get(format!("k:{i}")).expect("get");
        assert_eq!(v, Some(i), "k:{i} lost");
    }
}

#[test]
fn redis_cli_reshards_rebalances_adds_and_deletes_nodes_under_load() {
    if !redis_cli() {
        return;
    }
    let _one_at_a_time = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let (a, b, c) = (reshard_node(1), reshard_node(2), reshard_node(1));
    let ports = node_ports(&[(&a, 1, true), (&b, 2, true), (&c, 1, true)]);
    let mut create = vec!["--cluster".to_string(), "create".to_string()];
    create.extend(ports.iter().map(|p| format!("127.0.0.1:{p}")));
    create.push("--cluster-yes".into());
    let (ok, out) = cli(&create);
    assert!(ok, "{out}");
    for &port in &ports {
        wait_for(15, "the cluster forms", || {
            info_field(port, "cluster_state") == "ok"
        });
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = writer(ports[0], stop.clone());
    std::thread::sleep(std::time::Duration::from_millis(300));
    // 500 slots from the first node to the last, keys and all.
    let (from, to) = (myid(ports[0]), myid(ports[3]));
    let before = slots_of(ports[3]);
    let out = cli_ok(&[
        "--cluster",
        "reshard",
        &format!("127.0.0.1:{}", ports[0]),
        "--cluster-from",
        &from,
        "--cluster-to",
        &to,
        "--cluster-slots",
        "500",
        "--cluster-yes",
    ]);
    assert!(!out.contains("ERR"), "{out}");
    assert_eq!(slots_of(ports[3]), before + 500);
    check_clean(ports[1]);
    // A new node joins and takes a small share (its weight keeps the slots moved few).
    let d = reshard_node(1);
    let dp = d.port + 1;
    cli_ok(&[
        "--cluster",
        "add-node",
        &format!("127.0.0.1:{dp}"),
        &format!("127.0.0.1:{}", ports[0]),
    ]);
    for &port in &ports {
        wait_for(15, "every node knows the new one", || {
            info_field(port, "cluster_known_nodes") == "5"
        });
    }
    let id_d = myid(dp);
    let out = cli_ok(&[
        "--cluster",
        "rebalance",
        &format!("127.0.0.1:{}", ports[0]),
        "--cluster-use-empty-masters",
        "--cluster-weight",
        &format!("{id_d}=0.03"),
    ]);
    assert!(!out.contains("ERR"), "{out}");
    assert!(slots_of(dp) > 50, "the new node got its share");
    check_clean(dp);
    // It gives everything back and leaves.
    let out = cli_ok(&[
        "--cluster",
        "rebalance",
        &format!("127.0.0.1:{}", ports[0]),
        "--cluster-weight",
        &format!("{id_d}=0"),
    ]);
    assert!(!out.contains("ERR"), "{out}");
    assert_eq!(slots_of(dp), 0);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (acked, errors) = load.join().expect("writer");
    assert!(
        errors.is_empty(),
        "{} errors, first: {:?}",
        errors.len(),
        errors.first()
    );
    assert!(acked.len() > 100, "the load ran ({} writes)", acked.len());
    all_readable(ports[0], &acked);
    cli_ok(&[
        "--cluster",
        "del-node",
        &format!("127.0.0.1:{}", ports[0]),
        &id_d,
    ]);
    for &port in &ports {
        wait_for(15, "the node is forgotten", || {
            info_field(port, "cluster_known_nodes") == "4"
        });
    }
    check_clean(ports[2]);
    all_readable(ports[2], &acked);
}

#[test]
fn slots_move_to_a_real_redis_node_and_back() {
    if !redis_cli() {
        return;
    }
    let _one_at_a_time = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::env::temp_dir().join(format!("shardis-reshard-redis-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let Some((_redis, rport)) = common::real_redis::redis_server_with(
        &dir,
        &[
            "--cluster-enabled",
            "yes",
            "--cluster-node-timeout",
            &RESHARD_NODE_TIMEOUT_MS.to_string(),
        ],
    ) else {
        return;
    };
    let (a, b) = (reshard_node(2), reshard_node(1));
    let ports = node_ports(&[(&a, 2, true), (&b, 1, true)]);
    let mut create = vec!["--cluster".to_string(), "create".to_string()];
    create.extend(ports.iter().map(|p| format!("127.0.0.1:{p}")));
    create.push("--cluster-yes".into());
    let (ok, out) = cli(&create);
    assert!(ok, "{out}");
    for &port in &ports {
        wait_for(15, "the cluster forms", || {
            info_field(port, "cluster_state") == "ok"
        });
    }
    {
        use redis::Commands;
        let client =
            redis::cluster::ClusterClient::new(vec![format!("redis://127.0.0.1:{}/", ports[0])])
                .unwrap();
        let mut conn = client.get_connection().unwrap();
        for i in 0..3000u64 {
            let _: () = conn.set(format!("k:{i}"), i).unwrap();
        }
    }
    cli_ok(&[
        "--cluster",
        "add-node",
        &format!("127.0.0.1:{rport}"),
        &format!("127.0.0.1:{}", ports[0]),
    ]);
    for &port in &ports {
        wait_for(15, "every node knows Redis", || {
            info_field(port, "cluster_known_nodes") == "4"
        });
    }
    wait_for(15, "Redis sees the cluster ok", || {
        info_field(rport, "cluster_state") == "ok"
    });
    let (redis_id, first) = (myid(rport), myid(ports[0]));
    // Shardis to Redis (MIGRATE to RESTORE-ASKING on Redis), then back.
    for (from, to) in [(&first, &redis_id), (&redis_id, &first)] {
        let out = cli_ok(&[
            "--cluster",
            "reshard",
            &format!("127.0.0.1:{}", ports[1]),
            "--cluster-from",
            from,
            "--cluster-to",
            to,
            "--cluster-slots",
            "100",
            "--cluster-yes",
        ]);
        assert!(!out.contains("ERR"), "{out}");
        check_clean(rport);
    }
    all_readable(rport, &(0..3000).collect::<Vec<_>>());
}
