//! Blocking pops across cores: the message-queue use.

mod common;

use common::Server;
use std::collections::HashSet;
use std::time::{Duration, Instant};

#[test]
fn blpop_returns_at_once_when_data_exists_and_times_out_otherwise() {
    let s = Server::start(2, &[]);
    let mut c = s.conn();
    let _: () = redis::cmd("RPUSH")
        .arg("q")
        .arg("a")
        .query(&mut c)
        .expect("rpush");
    let got: (String, String) = redis::cmd("BLPOP")
        .arg("nosuch")
        .arg("q")
        .arg(0)
        .query(&mut c)
        .expect("blpop");
    assert_eq!(got, ("q".into(), "a".into()));
    let start = Instant::now();
    let got: Option<(String, String)> = redis::cmd("BLPOP")
        .arg("q")
        .arg("0.2")
        .query(&mut c)
        .expect("blpop timeout");
    assert_eq!(got, None);
    assert!(start.elapsed() >= Duration::from_millis(150));
    let err = redis::cmd("BLPOP")
        .arg("q")
        .arg("-1")
        .query::<()>(&mut c)
        .expect_err("negative");
    assert!(err.to_string().contains("timeout is negative"), "{err}");
    let _: () = redis::cmd("SET")
        .arg("str")
        .arg("x")
        .query(&mut c)
        .expect("set");
    let err = redis::cmd("BLPOP")
        .arg("str")
        .arg("0")
        .query::<()>(&mut c)
        .expect_err("wrongtype");
    assert!(err.to_string().contains("WRONGTYPE"), "{err}");
}

#[test]
fn a_push_on_any_shard_wakes_a_client_blocked_on_several() {
    let s = Server::start(2, &[]);
    // "a" and "b" live on different shards of two.
    let port = s.port;
    let waiter = std::thread::spawn(move || {
        let mut c = common::connect(port);
        let got: (String, String) = redis::cmd("BRPOP")
            .arg("a")
            .arg("b")
            .arg(5)
            .query(&mut c)
            .expect("brpop");
        got
    });
    std::thread::sleep(Duration::from_millis(200));
    let mut c = s.conn();
    let _: () = redis::cmd("LPUSH")
        .arg("b")
        .arg("x")
        .query(&mut c)
        .expect("lpush");
    assert_eq!(
        waiter.join().expect("join"),
        ("b".to_string(), "x".to_string())
    );
    let len: i64 = redis::cmd("LLEN").arg("b").query(&mut c).expect("llen");
    assert_eq!(len, 0);
}

#[test]
fn blocked_clients_are_served_first_come_first_served() {
    let s = Server::start(2, &[]);
    let port = s.port;
    let mut handles = Vec::new();
    for i in 0..3 {
        handles.push(std::thread::spawn(move || {
            let mut c = common::connect(port);
            let got: (String, String) = redis::cmd("BLPOP")
                .arg("fifo")
                .arg(10)
                .query(&mut c)
                .expect("blpop");
            (i, got.1)
        }));
        std::thread::sleep(Duration::from_millis(150));
    }
    let mut c = s.conn();
    for item in ["first", "second", "third"] {
        let _: () = redis::cmd("RPUSH")
            .arg("fifo")
            .arg(item)
            .query(&mut c)
            .expect("rpush");
    }
    let mut got: Vec<(i32, String)> = handles
        .into_iter()
        .map(|h| h.join().expect("join"))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (0, "first".into()),
            (1, "second".into()),
            (2, "third".into())
        ]
    );
}

#[test]
fn a_client_that_disconnects_while_blocked_takes_nothing() {
    let s = Server::start(2, &[]);
    {
        let mut raw = s.raw();
        use std::io::Write;
        raw.write_all(b"*3\r\n$5\r\nBLPOP\r\n$4\r\ngone\r\n$1\r\n0\r\n")
            .expect("write");
        std::thread::sleep(Duration::from_millis(200));
    } // dropped: the blocked client disconnects
    std::thread::sleep(Duration::from_millis(200));
    let mut c = s.conn();
    let _: () = redis::cmd("RPUSH")
        .arg("gone")
        .arg("kept")
        .query(&mut c)
        .expect("rpush");
    let v: Vec<String> = redis::cmd("LRANGE")
        .arg("gone")
        .arg(0)
        .arg(-1)
        .query(&mut c)
        .expect("lrange");
    assert_eq!(v, vec!["kept"]);
}

#[test]
fn blmove_across_shards_moves_the_element() {
    let s = Server::start(2, &[]);
    let port = s.port;
    let waiter = std::thread::spawn(move || {
        let mut c = common::connect(port);
        let got: String = redis::cmd("BLMOVE")
            .arg("a")
            .arg("b")
            .arg("LEFT")
            .arg("RIGHT")
            .arg(5)
            .query(&mut c)
            .expect("blmove");
        got
    });
    std::thread::sleep(Duration::from_millis(200));
    let mut c = s.conn();
    let _: () = redis::cmd("RPUSH")
        .arg("a")
        .arg("moved")
        .query(&mut c)
        .expect("rpush");
    assert_eq!(waiter.join().expect("join"), "moved");
    let v: Vec<String> = redis::cmd("LRANGE")
        .arg("b")
        .arg(0)
        .arg(-1)
        .query(&mut c)
        .expect("lrange");
    assert_eq!(v, vec!["moved"]);
}

#[test]
fn every_pushed_item_is_popped_exactly_once() {
    let s = Server::start(2, &[]);
    let port = s.port;
    const PRODUCERS: usize = 4;
    const CONSUMERS: usize = 6;
    const ITEMS: usize = 1500;
    let queues = ["jobs:a", "jobs:b", "jobs:c"];
    // Consumers stop at their first timeout after every producer finished (on a loaded
    // machine a producer can pause for longer than the BLPOP timeout).
    let produced = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut consumers = Vec::new();
    for _ in 0..CONSUMERS {
        let produced = produced.clone();
        consumers.push(std::thread::spawn(move || {
            let mut c = common::connect(port);
            let mut got = Vec::new();
            loop {
                let item: Option<(String, String)> = redis::cmd("BLPOP")
                    .arg(&queues)
                    .arg("1")
                    .query(&mut c)
                    .expect("blpop");
                match item {
                    Some((_, v)) => got.push(v),
                    None if produced.load(std::sync::atomic::Ordering::SeqCst) => return got,
                    None => {}
                }
            }
        }));
    }
    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        producers.push(std::thread::spawn(move || {
            let mut c = common::connect(port);
            for i in 0..ITEMS {
                let q = queues[(p + i) % queues.len()];
                let _: () = redis::cmd("RPUSH")
                    .arg(q)
                    .arg(format!("{p}:{i}"))
                    .query(&mut c)
                    .expect("rpush");
            }
        }));
    }
    for p in producers {
        p.join().expect("producer");
    }
    produced.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut all: Vec<String> = consumers
        .into_iter()
        .flat_map(|c| c.join().expect("consumer"))
        .collect();
    let total = all.len();
    let unique: HashSet<String> = all.drain(..).collect();
    assert_eq!(
        total,
        PRODUCERS * ITEMS,
        "items popped more than once or lost"
    );
    assert_eq!(unique.len(), PRODUCERS * ITEMS);
}

#[test]
fn bzpopmin_is_woken_by_zadd_on_another_shard() {
    let s = Server::start(2, &[]);
    let port = s.port;
    let waiter = std::thread::spawn(move || {
        let mut c = common::connect(port);
        let got: (String, String, f64) = redis::cmd("BZPOPMIN")
            .arg("a")
            .arg("b")
            .arg(5)
            .query(&mut c)
            .expect("bzpopmin");
        got
    });
    let mut c = s.conn();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let info: String = redis::cmd("INFO")
            .arg("clients")
            .query(&mut c)
            .expect("info");
        // One client blocked on two shards counts once.
        if info.contains("blocked_clients:1\r\n") || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _: () = redis::cmd("ZADD")
        .arg("b")
        .arg(2)
        .arg("m")
        .query(&mut c)
        .expect("zadd");
    assert_eq!(
        waiter.join().expect("join"),
        ("b".to_string(), "m".to_string(), 2.0)
    );
}

#[test]
fn blocking_commands_report_their_argument_errors_at_once() {
    let s = Server::start(2, &[]);
    let mut c = s.conn();
    let err = redis::cmd("BZMPOP")
        .arg(&["1", "0", "z", "MIN"])
        .query::<()>(&mut c)
        .expect_err("numkeys");
    assert!(
        err.to_string().contains("numkeys should be greater than 0"),
        "{err}"
    );
    let err = redis::cmd("BLMPOP")
        .arg(&["x", "1", "l", "LEFT"])
        .query::<()>(&mut c)
        .expect_err("timeout");
    assert!(err.to_string().contains("timeout is not a float"), "{err}");
}
