//! Cluster mode in one process: each shard a node on its own port (port + 1 + shard), slots
//! split in contiguous ranges, cluster-aware clients redirected (-MOVED, -CROSSSLOT) and the
//! shared port forwarding as always.

mod common;

use std::collections::HashMap;

use common::{key_slot, Server};
use redis::cluster::ClusterClient;
use redis::{Commands, Value};

const SHARDS: usize = 2;

fn cluster_server() -> Server {
    Server::start(SHARDS, &["--cluster-enabled", "yes"])
}

/// The node port owning `slot` among two shards (ranges 0-8191, 8192-16383).
fn node_port(server: &Server, slot: u16) -> u16 {
    server.port + 1 + u16::from(slot >= 8192)
}

fn err(v: common::resp::Value) -> String {
    match v {
        common::resp::Value::Error(e) => e,
        other => panic!("not an error: {other:?}"),
    }
}

fn conn_to(port: u16) -> redis::Connection {
    common::connect(port)
}

fn error_text(e: redis::RedisError) -> String {
    // The redis crate splits the code from the detail; put Redis's line back together.
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        (Some(code), None) => code.to_string(),
        _ => e.to_string(),
    }
}

#[test]
fn cluster_client_writes_and_reads_on_the_owning_nodes() {
    let server = cluster_server();
    let client = ClusterClient::new(vec![format!("redis://127.0.0.1:{}/", server.port)])
        .expect("cluster client");
    let mut c = client.get_connection().expect("cluster connection");
    for i in 0..2000 {
        let _: () = c.set(format!("key:{i}"), i).expect("set");
    }
    for i in 0..2000 {
        let v: i64 = c.get(format!("key:{i}")).expect("get");
        assert_eq!(v, i);
    }
    // Each key lives on the node owning its slot: read there with no redirection, and the
    // other node sends the client there.
    let mut nodes: HashMap<u16, redis::Connection> = HashMap::new();
    for i in (0..2000).step_by(37) {
        let key = format!("key:{i}");
        let slot = key_slot(key.as_bytes());
        let owner = node_port(&server, slot);
        let other = if owner == server.port + 1 {
            server.port + 2
        } else {
            server.port + 1
        };
        let v: i64 = nodes
            .entry(owner)
            .or_insert_with(|| conn_to(owner))
            .get(&key)
            .expect("get on the owner");
        assert_eq!(v, i);
        let e = nodes
            .entry(other)
            .or_insert_with(|| conn_to(other))
            .get::<_, i64>(&key)
            .expect_err("moved");
        assert_eq!(error_text(e), format!("MOVED {slot} 127.0.0.1:{owner}"));
    }
    // Multi-key commands within one slot work through the cluster client.
    let _: () = c.mset(&[("{t}a", 1), ("{t}b", 2)]).expect("mset");
    let got: Vec<i64> = c.mget(&["{t}a", "{t}b"]).expect("mget");
    assert_eq!(got, vec![1, 2]);
    // DBSIZE on a node counts that node's keys; on the shared port, all of them.
    let first_node = (0..2000)
        .filter(|i| key_slot(format!("key:{i}").as_bytes()) < 8192)
        .count()
        + usize::from(key_slot(b"t") < 8192) * 2;
    let sizes: Vec<usize> = [server.port + 1, server.port + 2]
        .iter()
        .map(|&p| redis::cmd("DBSIZE").query(&mut conn_to(p)).expect("dbsize"))
        .collect();
    assert_eq!(sizes, vec![first_node, 2002 - first_node]);
    // The shared port still serves every key, forwarding.
    let mut shared = server.conn();
    let total: usize = redis::cmd("DBSIZE").query(&mut shared).expect("dbsize");
    assert_eq!(total, 2002);
    let v: i64 = shared.get("key:1999").expect("shared get");
    assert_eq!(v, 1999);
    let got: Vec<i64> = redis::cmd("MGET")
        .arg("key:1")
        .arg("key:2")
        .arg("key:3")
        .query(&mut shared)
        .expect("multi-slot mget on the shared port");
    assert_eq!(got, vec![1, 2, 3]);
}

#[test]
fn node_ports_refuse_cross_slot_requests_and_redirect() {
    let server = cluster_server();
    // slot("foo") = 12182 (second node), slot("bar") = 5061 (first node).
    let mut first = conn_to(server.port + 1);
    let e = redis::cmd("MGET")
        .arg("foo")
        .arg("bar")
        .query::<Value>(&mut first)
        .expect_err("crossslot");
    assert_eq!(
        error_text(e),
        "CROSSSLOT Keys in request don't hash to the same slot"
    );
    let e = first.set::<_, _, ()>("foo", 1).expect_err("moved");
    assert_eq!(
        error_text(e),
        format!("MOVED 12182 127.0.0.1:{}", server.port + 2)
    );
    let _: () = first.set("bar", 1).expect("own slot");
    // Keyless commands are served wherever they arrive.
    let pong: String = redis::cmd("PING").query(&mut first).expect("ping");
    assert_eq!(pong, "PONG");
    // A transaction: a queued command for another node fails it; EXEC over two slots of
    // one node is refused and drops the transaction.
    let (a, b) = two_keys_of_one_node_in_two_slots(0);
    let mut raw = common::resp::Conn::connect(server.port + 1).expect("raw");
    assert_eq!(raw.call(&["MULTI"]).unwrap().text().unwrap(), "OK");
    assert_eq!(
        raw.call(&["SET", &a, "1"]).unwrap().text().unwrap(),
        "QUEUED"
    );
    assert_eq!(
        raw.call(&["SET", &b, "1"]).unwrap().text().unwrap(),
        "QUEUED"
    );
    let exec = raw.call(&["EXEC"]).unwrap();
    assert_eq!(
        err(exec),
        "CROSSSLOT Keys in request don't hash to the same slot"
    );
    let e = raw.call(&["EXEC"]).unwrap();
    assert_eq!(err(e), "ERR EXEC without MULTI");
    assert_eq!(raw.call(&["MULTI"]).unwrap().text().unwrap(), "OK");
    let moved = raw.call(&["GET", "foo"]).unwrap();
    assert!(err(moved).starts_with("MOVED 12182 "));
    let e = raw.call(&["EXEC"]).unwrap();
    assert!(err(e).starts_with("EXECABORT"));
    // Only database 0.
    let e = redis::cmd("SELECT")
        .arg(1)
        .query::<()>(&mut first)
        .expect_err("select");
    assert_eq!(error_text(e), "ERR SELECT is not allowed in cluster mode");
    let _: () = redis::cmd("SELECT")
        .arg(0)
        .query(&mut first)
        .expect("select 0");
}

/// Two keys in different slots that both belong to `shard`'s node.
fn two_keys_of_one_node_in_two_slots(shard: usize) -> (String, String) {
    let mut keys = (0..)
        .map(|i| format!("k{i}"))
        .filter(|k| usize::from(key_slot(k.as_bytes()) >= 8192) == shard);
    let a = keys.next().unwrap();
    let b = keys
        .find(|k| key_slot(k.as_bytes()) != key_slot(a.as_bytes()))
        .unwrap();
    (a, b)
}

#[test]
fn cluster_slots_nodes_shards_and_info_describe_the_nodes() {
    let server = cluster_server();
    let ids: Vec<String> = (0..SHARDS)
        .map(|i| {
            let mut c = conn_to(server.port + 1 + i as u16);
            redis::cmd("CLUSTER")
                .arg("MYID")
                .query(&mut c)
                .expect("myid")
        })
        .collect();
    assert_ne!(ids[0], ids[1]);
    assert!(ids.iter().all(|id| id.len() == 40));
    let mut c = conn_to(server.port + 2);
    // SLOTS: [start, end, [ip, port, id, {}]] per range.
    let slots: Vec<(u16, u16, (String, u16, String))> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query::<Vec<Value>>(&mut c)
        .expect("slots")
        .into_iter()
        .map(|range| {
            let Value::Array(parts) = range else {
                panic!("range {range:?}")
            };
            let start: u16 = redis::from_redis_value(parts[0].clone()).unwrap();
            let end: u16 = redis::from_redis_value(parts[1].clone()).unwrap();
            let Value::Array(node) = &parts[2] else {
                panic!("node {:?}", parts[2])
            };
            assert_eq!(node.len(), 4);
            let ip: String = redis::from_redis_value(node[0].clone()).unwrap();
            let port: u16 = redis::from_redis_value(node[1].clone()).unwrap();
            let id: String = redis::from_redis_value(node[2].clone()).unwrap();
            (start, end, (ip, port, id))
        })
        .collect();
    assert_eq!(
        slots,
        vec![
            (
                0,
                8191,
                ("127.0.0.1".into(), server.port + 1, ids[0].clone())
            ),
            (
                8192,
                16383,
                ("127.0.0.1".into(), server.port + 2, ids[1].clone())
            ),
        ]
    );
    // NODES: one line per node, this one flagged myself.
    let nodes: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query(&mut c)
        .expect("nodes");
    let lines: Vec<Vec<&str>> = nodes.lines().map(|l| l.split(' ').collect()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0][0], ids[0]);
    assert_eq!(
        lines[0][1],
        format!("127.0.0.1:{}@{}", server.port + 1, server.port + 10001)
    );
    assert_eq!(lines[0][2], "master");
    assert_eq!(lines[0][8], "0-8191");
    assert_eq!(lines[1][0], ids[1]);
    assert_eq!(lines[1][2], "myself,master");
    assert_eq!(
        &lines[1][3..],
        &["-", "0", "0", "2", "connected", "8192-16383"]
    );
    // SHARDS: slots and nodes of each shard.
    let shards: Vec<HashMap<String, Value>> = redis::cmd("CLUSTER")
        .arg("SHARDS")
        .query(&mut c)
        .expect("shards");
    assert_eq!(shards.len(), 2);
    let slots: Vec<u16> = redis::from_redis_value(shards[1]["slots"].clone()).unwrap();
    assert_eq!(slots, vec![8192, 16383]);
    let nodes: Vec<HashMap<String, Value>> =
        redis::from_redis_value(shards[1]["nodes"].clone()).unwrap();
    let id: String = redis::from_redis_value(nodes[0]["id"].clone()).unwrap();
    let port: u16 = redis::from_redis_value(nodes[0]["port"].clone()).unwrap();
    let role: String = redis::from_redis_value(nodes[0]["role"].clone()).unwrap();
    assert_eq!(
        (id, port, role.as_str()),
        (ids[1].clone(), server.port + 2, "master")
    );
    // INFO.
    let info: String = redis::cmd("CLUSTER")
        .arg("INFO")
        .query(&mut c)
        .expect("info");
    for line in [
        "cluster_state:ok",
        "cluster_slots_assigned:16384",
        "cluster_known_nodes:2",
        "cluster_size:2",
        "cluster_my_epoch:2",
    ] {
        assert!(info.contains(line), "{line} in {info}");
    }
    // KEYSLOT.
    let slot: i64 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg("{user1000}.following")
        .query(&mut c)
        .unwrap();
    assert_eq!(slot, i64::from(key_slot(b"user1000")));
    let ok: String = redis::cmd("READONLY").query(&mut c).unwrap();
    assert_eq!(ok, "OK");
    let list: String = redis::cmd("CLIENT").arg("INFO").query(&mut c).unwrap();
    assert!(list.contains("flags=r "), "{list}");
    let ok: String = redis::cmd("READWRITE").query(&mut c).unwrap();
    assert_eq!(ok, "OK");
}

#[test]
fn keys_are_counted_and_listed_by_slot() {
    let server = cluster_server();
    let mut shared = server.conn();
    let tag_slot = key_slot(b"tag");
    for i in 0..300 {
        let _: () = shared.set(format!("{{tag}}:{i}"), i).unwrap();
    }
    let _: () = shared.set("foo", 1).unwrap();
    let _: i64 = shared.del("{tag}:0").unwrap();
    let _: () = redis::cmd("UNLINK")
        .arg("{tag}:1")
        .query(&mut shared)
        .unwrap();
    let _: () = shared.set_ex("{tag}:2", 1, 100).unwrap();
    let owner = node_port(&server, tag_slot);
    let mut node = conn_to(owner);
    let count: usize = redis::cmd("CLUSTER")
        .arg("COUNTKEYSINSLOT")
        .arg(tag_slot)
        .query(&mut node)
        .unwrap();
    assert_eq!(count, 298);
    let mut keys: Vec<String> = redis::cmd("CLUSTER")
        .arg("GETKEYSINSLOT")
        .arg(tag_slot)
        .arg(1000)
        .query(&mut node)
        .unwrap();
    keys.sort();
    let mut want: Vec<String> = (2..300).map(|i| format!("{{tag}}:{i}")).collect();
    want.sort();
    assert_eq!(keys, want);
    let some: Vec<String> = redis::cmd("CLUSTER")
        .arg("GETKEYSINSLOT")
        .arg(tag_slot)
        .arg(10)
        .query(&mut node)
        .unwrap();
    assert_eq!(some.len(), 10);
    // The shared port asks the slot's owner; the other node holds nothing of it.
    let count: usize = redis::cmd("CLUSTER")
        .arg("COUNTKEYSINSLOT")
        .arg(12182)
        .query(&mut shared)
        .unwrap();
    assert_eq!(count, 1);
    let other = if owner == server.port + 1 {
        server.port + 2
    } else {
        server.port + 1
    };
    let count: usize = redis::cmd("CLUSTER")
        .arg("COUNTKEYSINSLOT")
        .arg(tag_slot)
        .query(&mut conn_to(other))
        .unwrap();
    assert_eq!(count, 0);
    // FLUSHALL empties the index too.
    let _: () = redis::cmd("FLUSHALL").query(&mut shared).unwrap();
    let count: usize = redis::cmd("CLUSTER")
        .arg("COUNTKEYSINSLOT")
        .arg(tag_slot)
        .query(&mut node)
        .unwrap();
    assert_eq!(count, 0);
    // Redis's argument errors.
    for (args, want) in [
        (&["COUNTKEYSINSLOT", "16384"][..], "ERR Invalid slot"),
        (
            &["COUNTKEYSINSLOT", "x"],
            "ERR value is not an integer or out of range",
        ),
        (
            &["GETKEYSINSLOT", "0", "-1"],
            "ERR Invalid slot or number of keys",
        ),
        (
            &["GETKEYSINSLOT", "-1", "1"],
            "ERR Invalid slot or number of keys",
        ),
    ] {
        let e = redis::cmd("CLUSTER")
            .arg(args)
            .query::<Value>(&mut node)
            .expect_err("invalid");
        assert_eq!(error_text(e), want);
    }
    // One database: MOVE, SWAPDB and COPY … DB are refused.
    for (args, want) in [
        (
            &["MOVE", "foo", "1"][..],
            "ERR MOVE is not allowed in cluster mode",
        ),
        (
            &["SWAPDB", "0", "1"],
            "ERR SWAPDB is not allowed in cluster mode",
        ),
        (
            &["COPY", "foo", "bar", "DB", "1"],
            "ERR Copying to another database is not allowed in cluster mode",
        ),
    ] {
        let e = redis::cmd(args[0])
            .arg(&args[1..])
            .query::<Value>(&mut shared)
            .expect_err("refused");
        assert_eq!(error_text(e), want);
    }
}

#[test]
fn node_ids_survive_a_restart() {
    let dir = std::env::temp_dir().join(format!("shardis-cluster-ids-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("nodes.conf");
    let file = file.to_str().unwrap();
    let myids = |server: &Server| -> Vec<String> {
        (0..SHARDS)
            .map(|i| {
                let mut c = conn_to(server.port + 1 + i as u16);
                redis::cmd("CLUSTER").arg("MYID").query(&mut c).unwrap()
            })
            .collect()
    };
    let args = ["--cluster-enabled", "yes", "--cluster-config-file", file];
    let server = Server::start(SHARDS, &args);
    let before = myids(&server);
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.contains(&format!("{} ", before[0])), "{text}");
    assert!(
        text.ends_with("vars currentEpoch 2 lastVoteEpoch 0\n"),
        "{text}"
    );
    // A second server cannot take the same file while the first holds it.
    assert!(Server::try_start_on(common::free_port(), SHARDS, &args).is_err());
    drop(server);
    let server = Server::start(SHARDS, &args);
    assert_eq!(myids(&server), before);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cluster_commands_need_cluster_mode() {
    let server = Server::start(SHARDS, &[]);
    let mut c = server.conn();
    for cmd in [
        &["CLUSTER", "INFO"][..],
        &["CLUSTER", "KEYSLOT", "a"],
        &["READONLY"],
        &["ASKING"],
    ] {
        let e = redis::cmd(cmd[0])
            .arg(&cmd[1..])
            .query::<Value>(&mut c)
            .expect_err("disabled");
        assert_eq!(
            error_text(e),
            "ERR This instance has cluster support disabled"
        );
    }
}

/// Scripts follow Redis's cluster rules on a node's port: a key another node serves is
/// refused; a script with a shebang line (or a function) keeps to one slot unless it allows
/// crossing them, and to its declared keys' slot; `no-cluster` scripts do not run.
#[test]
fn scripts_keep_to_the_node_and_to_one_slot() {
    let server = cluster_server();
    let (a, b) = two_keys_of_one_node_in_two_slots(0);
    let mut n0 = conn_to(server.port + 1);
    let foreign = (0..)
        .map(|i| format!("f{i}"))
        .find(|k| key_slot(k.as_bytes()) >= 8192)
        .unwrap();
    let run = |c: &mut redis::Connection, script: &str, keys: &[&str]| -> String {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(script).arg(keys.len());
        for k in keys {
            cmd.arg(*k);
        }
        match cmd.query::<Value>(c) {
            Ok(v) => format!("{v:?}"),
            Err(e) => error_text(e),
        }
    };
    let two = format!("redis.call('set', '{a}', 1); redis.call('set', '{b}', 2); return 'OK'");
    // Without a shebang line: several slots of the node are allowed.
    assert!(run(&mut n0, &two, &[]).contains("OK"));
    let shebang = format!("#!lua\n{two}");
    assert!(run(&mut n0, &shebang, &[])
        .starts_with("ERR Script attempted to access keys that do not hash to the same slot"));
    let crossing = format!("#!lua flags=allow-cross-slot-keys\n{two}");
    assert!(run(&mut n0, &crossing, &[]).contains("OK"));
    // A declared key fixes the slot.
    let one = format!("#!lua\nredis.call('set', '{a}', 1); return 'OK'");
    assert!(run(&mut n0, &one, &[&b])
        .starts_with("ERR Script attempted to access keys that do not hash to the same slot"));
    assert!(run(&mut n0, &one, &[&a]).contains("OK"));
    // A key of the other node, even without a shebang line.
    let away = format!("redis.call('get', '{foreign}'); return 'OK'");
    assert!(run(&mut n0, &away, &[])
        .starts_with("ERR Script attempted to access a non local key in a cluster node"));
    let no_cluster = "#!lua flags=no-cluster\nreturn 1";
    assert_eq!(
        run(&mut n0, no_cluster, &[]),
        "ERR Can not run script on cluster, 'no-cluster' flag is set."
    );
    // The shared port is no node: forwarding serves every key.
    let mut shared = server.conn();
    assert!(run(&mut shared, &away, &[]).contains("OK"));
}

/// Shard channels go by slot on a node's port, as keys do: SPUBLISH and SSUBSCRIBE of a
/// channel another node serves get -MOVED, channels of two slots -CROSSSLOT.
#[test]
fn shard_channels_are_routed_by_slot() {
    let server = cluster_server();
    let (a, b) = two_keys_of_one_node_in_two_slots(0);
    let mut n0 = conn_to(server.port + 1);
    let n: i64 = redis::cmd("SPUBLISH")
        .arg(&a)
        .arg("m")
        .query(&mut n0)
        .unwrap();
    assert_eq!(n, 0);
    let mut n1 = conn_to(server.port + 2);
    let moved: redis::RedisResult<i64> = redis::cmd("SPUBLISH").arg(&a).arg("m").query(&mut n1);
    assert_eq!(
        error_text(moved.unwrap_err()),
        format!(
            "MOVED {} 127.0.0.1:{}",
            key_slot(a.as_bytes()),
            server.port + 1
        )
    );
    let cross: redis::RedisResult<Value> = redis::cmd("SSUBSCRIBE").arg(&a).arg(&b).query(&mut n0);
    assert!(error_text(cross.unwrap_err()).starts_with("CROSSSLOT"));
}
