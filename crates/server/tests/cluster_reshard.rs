//! Resharding a cluster across processes (`cluster-bus yes`): a slot moved by hand with
//! CLUSTER SETSLOT and MIGRATE, with -ASK, -TRYAGAIN and ASKING as Redis 7.0 answers them
//! (keys on the node's own core and on another core of its process); `redis-cli --cluster
//! reshard / rebalance / add-node / del-node` while a cluster client keeps writing and
//! reading. Tests skip, saying so, when redis-cli (Debian's redis-tools) is absent.

mod common;

use common::cluster::{bus_server, cli, info_field, redis_cli, run, wait_for};
use common::{connect, key_slot};

/// A node's id.
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
    let (p, q) = (bus_server(2), bus_server(1));
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
