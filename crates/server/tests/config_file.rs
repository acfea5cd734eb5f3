//! A user's redis.conf: Debian's stock file (from the redis-server package) read in place,
//! running in the background with a pid file, systemd supervision, and CONFIG REWRITE
//! leaving a file both Shardis and Redis load.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, Server};

const DEBIAN_CONF: &str = "/etc/redis/redis.conf";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shardis-conf-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// One command on a new connection; an error if the server does not answer (yet).
fn query(port: u16, args: &[&str]) -> redis::RedisResult<redis::Value> {
    let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?.get_connection()?;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(&mut c)
}

fn config_get(port: u16, name: &str) -> String {
    match query(port, &["CONFIG", "GET", name]) {
        Ok(redis::Value::Array(v)) => match v.get(1) {
            Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

#[test]
fn debian_stock_config_loads_with_port_dir_and_daemonize_overridden() {
    assert!(
        Path::new(DEBIAN_CONF).exists(),
        "{DEBIAN_CONF} is missing: apt-get install -y redis-server"
    );
    let dir = scratch("debian");
    let s = Server::start_with_file(
        Path::new(DEBIAN_CONF),
        2,
        &["--dir", dir.to_str().expect("dir"), "--daemonize", "no"],
    );
    // Values from the file, as Redis reads them.
    assert_eq!(config_get(s.port, "databases"), "16");
    assert_eq!(config_get(s.port, "acllog-max-len"), "128");
    assert_eq!(config_get(s.port, "appendonly"), "no");
    assert_eq!(config_get(s.port, "slowlog-max-len"), "128");
    // Directives of features Shardis lacks are read at Redis's defaults, and unknown after.
    assert!(matches!(
        query(s.port, &["CONFIG", "GET", "activerehashing"]),
        Ok(redis::Value::Array(v)) if v.is_empty()
    ));
    assert_eq!(
        config_get(s.port, "client-output-buffer-limit"),
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
    );
    assert_eq!(
        config_get(s.port, "dir"),
        dir.canonicalize().expect("dir").display().to_string()
    );
    assert!(matches!(
        query(s.port, &["SET", "k", "v"]),
        Ok(redis::Value::Okay)
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Kills a server this test started in the background, should the test fail before its
/// SHUTDOWN.
struct Reaper(i32);

impl Drop for Reaper {
    fn drop(&mut self) {
        // SAFETY: signalling a process this test started.
        unsafe { libc::kill(self.0, libc::SIGKILL) };
    }
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn daemonize_writes_the_pid_file_and_removes_it_at_shutdown() {
    let dir = scratch("daemon");
    let pidfile = dir.join("shardis.pid");
    let port = free_port();
    let status = Command::new(env!("CARGO_BIN_EXE_shardis-server"))
        .args([
            "--port",
            &port.to_string(),
            "--shards",
            "2",
            "--daemonize",
            "yes",
            "--pidfile",
            pidfile.to_str().expect("path"),
            "--dir",
            dir.to_str().expect("dir"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run");
    assert!(status.success(), "the foreground process exits at once");
    wait_for("the pid file", || pidfile.exists());
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .expect("pid file")
        .trim()
        .parse()
        .expect("a pid");
    let _reaper = Reaper(pid);
    wait_for("the server", || query(port, &["PING"]).is_ok());
    let info = match query(port, &["INFO", "server"]) {
        Ok(redis::Value::BulkString(b)) => String::from_utf8_lossy(&b).into_owned(),
        Ok(redis::Value::VerbatimString { text, .. }) => text,
        other => panic!("{other:?}"),
    };
    assert!(info.contains(&format!("process_id:{pid}\r\n")), "{info}");
    let _ = query(port, &["SHUTDOWN", "NOSAVE"]);
    wait_for("the pid file to go", || !pidfile.exists());
    // SAFETY: probing whether the process exists (signal 0).
    wait_for("the process to exit", || unsafe { libc::kill(pid, 0) } != 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn supervised_systemd_gets_ready_and_stopping() {
    let dir = scratch("systemd");
    let sock_path = dir.join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_shardis-server"))
        .args([
            "--port",
            &port.to_string(),
            "--shards",
            "1",
            "--supervised",
            "systemd",
            "--daemonize",
            "yes",
        ])
        .env("NOTIFY_SOCKET", &sock_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let _reaper = Reaper(child.id() as i32);
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while !got.iter().any(|m: &String| m.contains("READY=1")) {
        let n = sock.recv(&mut buf).expect("a notification");
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(got
        .iter()
        .any(|m| m.contains("STATUS=Ready to accept connections")));
    // Supervised: daemonize is ignored, the process stays in the foreground.
    assert!(child.try_wait().expect("wait").is_none());
    let _ = query(port, &["SHUTDOWN", "NOSAVE"]);
    let n = sock.recv(&mut buf).expect("stopping");
    assert_eq!(&buf[..n], b"STOPPING=1\n");
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn config_rewrite_keeps_the_file_loadable_by_both_servers() {
    let dir = scratch("rewrite");
    let conf = dir.join("redis.conf");
    std::fs::write(
        &conf,
        "# a comment that stays\nport 6379\n\nmaxclients 100\nsave \"\"\nclient-output-buffer-limit pubsub 32mb 8mb 60\n",
    )
    .expect("write");
    let s = Server::start_with_file(&conf, 2, &["--dir", dir.to_str().expect("dir")]);
    for (k, v) in [
        ("maxclients", "200"),
        ("timeout", "7"),
        ("requirepass", "p w"),
    ] {
        assert!(matches!(
            query(s.port, &["CONFIG", "SET", k, v]),
            Ok(redis::Value::Okay)
        ));
    }
    let mut c = common::connect(s.port);
    let _: () = redis::cmd("AUTH").arg("p w").query(&mut c).expect("auth");
    let _: () = redis::cmd("ACL")
        .arg(&["SETUSER", "reader", "on", ">r", "~*", "+@read"])
        .query(&mut c)
        .expect("setuser");
    let _: () = redis::cmd("CONFIG")
        .arg("REWRITE")
        .query(&mut c)
        .expect("rewrite");
    let text = std::fs::read_to_string(&conf).expect("read");
    assert!(text.starts_with("# a comment that stays\nport "), "{text}");
    for line in [
        "maxclients 200",
        "timeout 7",
        "requirepass \"p w\"",
        "#@shardis shards 2",
        "user reader on #",
    ] {
        assert!(text.contains(line), "{line} missing:\n{text}");
    }
    drop(c);
    drop(s);
    // Shardis loads its rewritten file.
    let again = Server::start_with_file(&conf, 2, &[]);
    let mut c = common::connect(again.port);
    let _: () = redis::cmd("AUTH")
        .arg(&["reader", "r"])
        .query(&mut c)
        .expect("the user came back");
    drop(c);
    drop(again);
    // So does Redis, when it is installed.
    if let Ok(redis_server) = which("redis-server") {
        let port = free_port();
        let mut child = Command::new(redis_server)
            .arg(&conf)
            .args(["--port", &port.to_string(), "--daemonize", "no", "--dir"])
            .arg(&dir)
            .args(["--logfile", ""])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server");
        let up = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(25));
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            up,
            "redis-server did not start on the rewritten file:\n{text}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn which(name: &str) -> Result<PathBuf, ()> {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join(name))
                .find(|p| p.is_file())
        })
        .ok_or(())
}
