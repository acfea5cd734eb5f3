//! The Prometheus endpoint (`metrics-port`) against a real two-shard server under traffic:
//! the scrape parses with a Prometheus text-format parser and its figures match what was
//! sent and what the server reports over RESP; hostile HTTP gets bounded answers and never
//! disturbs the server.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{free_port, key_on, Server};
use prometheus_parse::{Sample, Scrape, Value};

const SHARDS: usize = 2;

/// One HTTP exchange: the status line, the headers (lower-case names) and the body.
fn http(port: u16, request: &[u8]) -> (String, HashMap<String, String>, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the metrics port");
    s.set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    s.write_all(request).expect("send the request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the answer");
    let text = String::from_utf8(raw).expect("UTF-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete answer");
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default().to_string();
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect();
    (status, headers, body.to_string())
}

fn get_metrics(port: u16) -> String {
    let (status, headers, body) = http(port, b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(
        headers.get("content-type").map(String::as_str),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert_eq!(headers.get("content-length"), Some(&body.len().to_string()));
    body
}

/// Every line is a comment or a sample `name{labels} value` whose value is a number.
fn check_syntax(text: &str) {
    for line in text.lines() {
        if line.is_empty() || line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("name and value");
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "unclosed labels in {line:?}");
        }
        assert!(
            value.parse::<f64>().is_ok() || value == "+Inf",
            "bad value in {line:?}"
        );
    }
}

fn parse(text: &str) -> Vec<Sample> {
    check_syntax(text);
    Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("the exposition parses")
        .samples
}

/// The value of the sample `metric` whose labels include `labels`, summed over matches.
fn value(samples: &[Sample], metric: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            _ => 0.0,
        })
        .sum()
}

fn start(extra: &[&str]) -> (Server, u16) {
    for _ in 0..5 {
        let port = free_port();
        let p = port.to_string();
        let mut args = vec!["--metrics-port", p.as_str(), "--metrics-bind", "127.0.0.1"];
        args.extend_from_slice(extra);
        let server = Server::start(SHARDS, &args);
        // Another test may have taken the port between the probe and the bind.
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (server, port);
        }
    }
    panic!("no metrics port");
}

#[test]
fn a_scrape_of_a_loaded_server_parses_and_matches_its_figures() {
    let (server, port) = start(&[]);
    let mut c = server.conn();
    // Keys on both shards, from two connections (each forwards to the other core's shard).
    let mut c2 = server.conn();
    let n = 400;
    let mut set = redis::pipe();
    for i in 0..n {
        set.cmd("SET")
            .arg(key_on(&format!("k{i}:"), i % SHARDS, SHARDS))
            .arg(i)
            .ignore();
    }
    set.query::<()>(&mut c).expect("SETs");
    let mut gets = redis::pipe();
    for i in 0..n {
        gets.cmd("GET")
            .arg(key_on(&format!("k{i}:"), i % SHARDS, SHARDS));
        gets.cmd("GET")
            .arg(key_on(&format!("missing{i}:"), i % SHARDS, SHARDS));
    }
    let got: Vec<Option<i64>> = gets.query(&mut c2).expect("GETs");
    assert_eq!(got.iter().filter(|v| v.is_some()).count(), n);
    for i in 0..10 {
        let _: () = redis::cmd("EXPIRE")
            .arg(key_on(&format!("k{i}:"), i % SHARDS, SHARDS))
            .arg(1000)
            .query(&mut c)
            .expect("EXPIRE");
    }
    let _: () = redis::cmd("SELECT").arg(3).query(&mut c2).expect("SELECT");
    let _: () = redis::cmd("SET")
        .arg("in-db3")
        .arg(1)
        .query(&mut c2)
        .expect("SET");
    let dbsize: u64 = redis::cmd("DBSIZE").query(&mut c).expect("DBSIZE");
    assert_eq!(dbsize, n as u64);

    let samples = parse(&get_metrics(port));
    assert_eq!(value(&samples, "shardis_shards", &[]), SHARDS as f64);
    let sets = value(&samples, "shardis_commands_total", &[("cmd", "set")]);
    assert!(sets >= (n + 1) as f64, "SET calls {sets}");
    let per_shard: f64 = (0..SHARDS)
        .map(|s| {
            value(
                &samples,
                "shardis_shard_commands_total",
                &[("cmd", "set"), ("shard", &s.to_string())],
            )
        })
        .sum();
    assert_eq!(per_shard, sets, "the total is the sum of the shards");
    assert!(value(&samples, "shardis_commands_total", &[("cmd", "get")]) >= (2 * n) as f64);
    assert!(value(&samples, "shardis_commands_total", &[("cmd", "expire")]) >= 10.0);
    // Keys per database, as DBSIZE, and spread over both shards.
    assert_eq!(
        value(&samples, "shardis_keys", &[("db", "0")]),
        dbsize as f64
    );
    assert_eq!(value(&samples, "shardis_keys", &[("db", "3")]), 1.0);
    for s in 0..SHARDS {
        let on = value(
            &samples,
            "shardis_shard_keys",
            &[("db", "0"), ("shard", &s.to_string())],
        );
        assert_eq!(on, (n / SHARDS) as f64, "keys on shard {s}");
    }
    assert_eq!(value(&samples, "shardis_expires", &[("db", "0")]), 10.0);
    assert!(value(&samples, "shardis_keyspace_hits_total", &[]) >= n as f64);
    assert!(value(&samples, "shardis_keyspace_misses_total", &[]) >= n as f64);
    assert!(value(&samples, "shardis_connected_clients", &[]) >= 2.0);
    assert!(value(&samples, "shardis_used_memory_bytes", &[]) > 0.0);
    assert_eq!(value(&samples, "shardis_maxmemory_bytes", &[]), 0.0);
    assert!(value(&samples, "shardis_rdb_changes_since_last_save", &[]) >= n as f64);
    assert_eq!(value(&samples, "shardis_rdb_bgsave_in_progress", &[]), 0.0);
    assert_eq!(value(&samples, "shardis_rdb_last_bgsave_ok", &[]), 1.0);
    // Half of each pipeline was for the other core's shard, whichever core a connection is on.
    let forwarded = value(&samples, "shardis_forwarded_requests_total", &[]);
    assert!(forwarded >= n as f64, "forwarded {forwarded}");
    let histogram = samples
        .iter()
        .find(|s| {
            s.metric == "shardis_forward_round_trip_seconds" && s.labels.get("shard").is_none()
        })
        .expect("the round-trip histogram");
    let Value::Histogram(buckets) = &histogram.value else {
        panic!("not a histogram: {histogram:?}");
    };
    let last = buckets.last().expect("buckets");
    assert!(
        last.less_than.is_infinite() && last.count >= 1.0,
        "{buckets:?}"
    );
    assert!(
        buckets.windows(2).all(|w| w[0].count <= w[1].count),
        "cumulative buckets"
    );
    assert_eq!(
        value(&samples, "shardis_forward_round_trip_seconds_count", &[]),
        last.count
    );

    dashboard_uses_only_exported_series(&samples);

    // The endpoint agrees with INFO, and the server's own traffic is not disturbed.
    let info_hits = server.info_number("keyspace_hits") as f64;
    let samples = parse(&get_metrics(port));
    assert_eq!(
        value(&samples, "shardis_keyspace_hits_total", &[]),
        info_hits
    );
    let pong: String = redis::cmd("PING").query(&mut c).expect("PING");
    assert_eq!(pong, "PONG");
}

/// Every `shardis_*` series the Grafana dashboard in deploy/ queries is one the server
/// exports (a histogram's `_bucket`, `_sum` and `_count` included).
fn dashboard_uses_only_exported_series(samples: &[Sample]) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/grafana/shardis-dashboard.json"
    );
    let text = std::fs::read_to_string(path).expect("the dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("dashboard JSON");
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    assert!(exprs.len() > 10, "queries found: {exprs:?}");
    let exported: std::collections::HashSet<String> = samples
        .iter()
        .flat_map(|s| {
            let m = s.metric.clone();
            if matches!(s.value, Value::Histogram(_)) {
                vec![
                    format!("{m}_bucket"),
                    format!("{m}_sum"),
                    format!("{m}_count"),
                ]
            } else {
                vec![m]
            }
        })
        .collect();
    for expr in exprs {
        for (at, _) in expr.match_indices("shardis_") {
            let name: String = expr[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            assert!(
                exported.contains(&name),
                "the dashboard queries {name}, not exported"
            );
        }
    }
}

fn collect_exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr", serde_json::Value::String(e)) => out.push(e.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| collect_exprs(i, out)),
        _ => {}
    }
}

#[test]
fn metrics_settings_are_fixed_at_start() {
    let (server, port) = start(&[]);
    let mut c = server.conn();
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("metrics-port")
        .query(&mut c)
        .expect("CONFIG GET");
    assert_eq!(got, vec!["metrics-port".to_string(), port.to_string()]);
    let err = redis::cmd("CONFIG")
        .arg("SET")
        .arg("metrics-port")
        .arg("0")
        .query::<()>(&mut c)
        .expect_err("immutable");
    assert!(
        err.to_string().contains("can't set immutable config"),
        "{err}"
    );
    // Off by default.
    let plain = Server::start(1, &[]);
    let mut c = plain.conn();
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("metrics-port")
        .query(&mut c)
        .expect("CONFIG GET");
    assert_eq!(got, vec!["metrics-port".to_string(), "0".to_string()]);
}

#[test]
fn hostile_http_gets_bounded_answers() {
    let (server, port) = start(&[]);
    let status = |req: &[u8]| http(port, req).0;
    assert_eq!(status(b"GET / HTTP/1.1\r\n\r\n"), "HTTP/1.1 404 Not Found");
    assert_eq!(
        status(b"GET /metrics/x HTTP/1.1\r\n\r\n"),
        "HTTP/1.1 404 Not Found"
    );
    assert_eq!(
        status(b"POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"),
        "HTTP/1.1 405 Method Not Allowed"
    );
    assert_eq!(
        status(b"\x00\xff garbage\r\n\r\n"),
        "HTTP/1.1 400 Bad Request"
    );
    assert_eq!(status(b"GET /metrics\r\n\r\n"), "HTTP/1.1 400 Bad Request");
    // HEAD: the headers without the body.
    let (st, headers, body) = http(port, b"HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(st, "HTTP/1.1 200 OK");
    assert!(body.is_empty());
    assert!(headers.get("content-length").is_some_and(|l| l != "0"));
    // A head that never ends: 431 once it reaches the limit (8 KiB).
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let junk = vec![b'a'; 8 << 10];
    let _ = s.write_all(&junk);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    assert!(
        answer.starts_with(b"HTTP/1.1 431 "),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    // Many idle connections: they neither block a scrape nor last past the deadline.
    let idle: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connect"))
        .collect();
    let begun = Instant::now();
    let samples = parse(&get_metrics(port));
    assert!(
        begun.elapsed() < Duration::from_secs(3),
        "a scrape waited on idle connections"
    );
    assert_eq!(value(&samples, "shardis_shards", &[]), SHARDS as f64);
    // A half-sent head is answered 408 and closed within the deadline.
    let mut slow = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    slow.write_all(b"GET /metr").expect("send");
    slow.set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    let mut answer = Vec::new();
    let begun = Instant::now();
    let _ = slow.read_to_end(&mut answer);
    assert!(begun.elapsed() < Duration::from_secs(10));
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 408 "),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    drop(idle);
    // The server itself never noticed.
    let mut c = server.conn();
    let pong: String = redis::cmd("PING").query(&mut c).expect("PING");
    assert_eq!(pong, "PONG");
    assert_eq!(
        value(&parse(&get_metrics(port)), "shardis_shards", &[]),
        SHARDS as f64
    );
}
