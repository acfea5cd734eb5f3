//! Loading while listening: a server started on a large data set accepts clients at once,
//! answers `-LOADING` to what Redis refuses while loading, reports `loading:1` and the
//! progress fields in INFO, and serves the data once loaded.

mod common;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use common::resp::Value;
use common::Server;

/// Writes a Redis 7.0 `dump.rdb` of `keys` strings `key:<i>` = `value:<i>` in db 0 (checksum
/// 0: not checked, as Redis allows).
fn write_dump(path: &Path, keys: u32) {
    let mut out = Vec::with_capacity(keys as usize * 24 + 32);
    out.extend_from_slice(b"REDIS0010");
    out.extend_from_slice(&[0xFE, 0x00]);
    for i in 0..keys {
        out.push(0); // a string
        for s in [format!("key:{i}"), format!("value:{i}")] {
            out.push(s.len() as u8); // under 64: the length in one byte
            out.extend_from_slice(s.as_bytes());
        }
    }
    out.push(0xFF);
    out.extend_from_slice(&[0; 8]);
    let mut f = std::fs::File::create(path).expect("create dump.rdb");
    f.write_all(&out).expect("write dump.rdb");
}

fn text(v: &Value) -> String {
    match v {
        Value::Error(e) => e.clone(),
        other => other.text().unwrap_or_else(|| format!("{other:?}")),
    }
}

fn field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    let prefix = format!("{name}:");
    info.lines().find_map(|l| l.strip_prefix(prefix.as_str()))
}

#[test]
fn clients_get_loading_until_the_data_set_is_in_memory() {
    const KEYS: u32 = 500_000;
    let dir = std::env::temp_dir().join(format!("shardis-loading-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    write_dump(&dir.join("dump.rdb"), KEYS);
    let dir_arg = dir.to_string_lossy().into_owned();
    let started = Instant::now();
    // The cores serve every 64 KiB they read (Redis's default is 2 MiB).
    let server = Server::start_loading(
        2,
        &[
            "--dir",
            &dir_arg,
            "--save",
            "",
            "--loading-process-events-interval-bytes",
            "65536",
        ],
    );
    let mut c = server.resp();
    let wait = Duration::from_secs(10);

    // While loading: data commands and PING refused, INFO answered with the progress.
    let info = text(&c.call(&["INFO", "persistence"]).expect("INFO"));
    assert_eq!(field(&info, "loading"), Some("1"), "{info}");
    assert_eq!(field(&info, "async_loading"), Some("0"), "{info}");
    let total: u64 = field(&info, "loading_total_bytes")
        .and_then(|v| v.parse().ok())
        .expect("loading_total_bytes");
    // Both cores read the whole Redis file, each keeping its own keys.
    let size = std::fs::metadata(dir.join("dump.rdb")).expect("size").len();
    assert_eq!(total, 2 * size, "{info}");
    for name in [
        "loading_start_time",
        "loading_rdb_used_mem",
        "loading_loaded_bytes",
        "loading_loaded_perc",
        "loading_eta_seconds",
    ] {
        assert!(field(&info, name).is_some(), "no {name} in {info}");
    }
    c.send_command(&["GET", "key:1"]).expect("send");
    c.send_command(&["PING"]).expect("send");
    c.send_command(&["DBSIZE"]).expect("send");
    for _ in 0..3 {
        let reply = c.read(wait).expect("reply");
        assert_eq!(
            text(&reply),
            "LOADING Redis is loading the dataset in memory"
        );
    }
    // A transaction with a refused command is discarded, as Redis's.
    assert_eq!(text(&c.call(&["MULTI"]).expect("MULTI")), "OK");
    assert!(text(&c.call(&["SET", "k", "v"]).expect("SET")).starts_with("LOADING"));
    assert_eq!(
        text(&c.call(&["EXEC"]).expect("EXEC")),
        "EXECABORT Transaction discarded because of previous errors."
    );
    // Commands flagged `loading` run; the interval is a hidden parameter, as in Redis.
    let config = c.call(&["CONFIG", "GET", "maxmemory"]).expect("CONFIG");
    assert!(!config.is_error(), "{config:?}");
    let interval = "loading-process-events-interval-bytes";
    assert_eq!(
        c.call(&["CONFIG", "GET", interval]).expect("CONFIG"),
        Value::Array(Some(vec![
            Value::Bulk(Some(interval.as_bytes().to_vec())),
            Value::Bulk(Some(b"65536".to_vec())),
        ]))
    );
    assert_eq!(
        c.call(&["CONFIG", "GET", "loading-*"]).expect("CONFIG"),
        Value::Array(Some(vec![]))
    );
    assert!(c
        .call(&["CONFIG", "SET", interval, "1023"])
        .expect("CONFIG")
        .is_error());
    assert_eq!(
        text(
            &c.call(&["CONFIG", "SET", interval, "131072"])
                .expect("CONFIG")
        ),
        "OK"
    );
    // The redis crate's client sees Redis's error kind.
    let mut rc = server.conn();
    let err = redis::cmd("GET")
        .arg("key:2")
        .query::<Option<String>>(&mut rc)
        .expect_err("refused while loading");
    assert_eq!(err.code(), Some("LOADING"), "{err}");

    // Then the data, on the same connection.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let info = text(&c.call(&["INFO", "persistence"]).expect("INFO"));
        if field(&info, "loading") == Some("0") {
            assert!(field(&info, "loading_total_bytes").is_none(), "{info}");
            break;
        }
        assert!(Instant::now() < deadline, "still loading: {info}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = started.elapsed();
    assert_eq!(
        c.call(&["GET", "key:1"]).expect("GET"),
        Value::Bulk(Some(b"value:1".to_vec()))
    );
    assert_eq!(
        c.call(&["DBSIZE"]).expect("DBSIZE"),
        Value::Int(KEYS as i64)
    );
    assert_eq!(
        c.call(&["PING"]).expect("PING"),
        Value::Simple("PONG".into())
    );
    let loaded = server.info_number("rdb_last_load_keys_loaded");
    assert_eq!(loaded, KEYS as u64);
    println!("{KEYS} keys loaded in about {took:?} while serving");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn key_load_delay_slows_loading_and_config_set_lifts_it() {
    const KEYS: u32 = 20_000;
    let dir = std::env::temp_dir().join(format!("shardis-key-load-delay-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    write_dump(&dir.join("dump.rdb"), KEYS);
    let dir_arg = dir.to_string_lossy().into_owned();
    // 1 ms a key: 20 s at least for each core's 10000 keys. The cores serve every 1 KiB
    // read (as Redis's own tests lower the interval with the delay: the whole file is
    // smaller than the default 2 MiB).
    let server = Server::start_loading(
        2,
        &[
            "--dir",
            &dir_arg,
            "--save",
            "",
            "--key-load-delay",
            "1000",
            "--loading-process-events-interval-bytes",
            "1024",
        ],
    );
    let mut c = server.resp();
    // Hidden from patterns, answered by name (Redis's HIDDEN_CONFIG).
    let names = |v: Value| -> Vec<String> {
        match v {
            Value::Array(Some(items)) => items.iter().map(text).collect(),
            other => panic!("{other:?}"),
        }
    };
    let all = names(c.call(&["CONFIG", "GET", "*"]).expect("CONFIG"));
    assert!(all.len() > 100 && !all.iter().any(|n| n == "key-load-delay"));
    let named = names(
        c.call(&["CONFIG", "GET", "key-load-delay"])
            .expect("CONFIG"),
    );
    assert_eq!(named, ["key-load-delay", "1000"]);
    std::thread::sleep(Duration::from_millis(500));
    let info = text(&c.call(&["INFO", "persistence"]).expect("INFO"));
    assert_eq!(field(&info, "loading"), Some("1"), "{info}");
    // The load in progress goes on at full speed once the delay is 0.
    assert_eq!(
        text(
            &c.call(&["CONFIG", "SET", "key-load-delay", "0"])
                .expect("SET")
        ),
        "OK"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info = text(&c.call(&["INFO", "persistence"]).expect("INFO"));
        if field(&info, "loading") == Some("0") {
            break;
        }
        assert!(Instant::now() < deadline, "still loading: {info}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        c.call(&["DBSIZE"]).expect("DBSIZE"),
        Value::Int(KEYS as i64)
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
