//! Starts a real `shardis-server` process on a free port for an integration test and stops it
//! when the test ends.

#![allow(dead_code)]

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    pub port: u16,
    child: Child,
}

/// The process id INFO reports on `port`, if a server answers there.
fn serving_pid(port: u16) -> Option<u32> {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"INFO server\r\n").ok()?;
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    while !text.contains("process_id:") || !text[text.find("process_id:")?..].contains('\r') {
        let n = s.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
        if text.starts_with("-NOAUTH") {
            // A server that wants a password: the process id is out of reach; a shardis
            // server started by this harness is the one expected on a fresh port.
            return Some(0);
        }
    }
    let rest = &text[text.find("process_id:")? + "process_id:".len()..];
    rest[..rest.find('\r')?].trim().parse().ok()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Server {
    /// Starts a server with `shards` shards and extra `--name value` arguments.
    pub fn start(shards: usize, extra: &[&str]) -> Server {
        Server::launch(None, shards, extra)
    }

    /// Starts a server on a configuration file, with overrides as `start`.
    pub fn start_with_file(file: &std::path::Path, shards: usize, extra: &[&str]) -> Server {
        Server::launch(Some(file), shards, extra)
    }

    fn launch(file: Option<&std::path::Path>, shards: usize, extra: &[&str]) -> Server {
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new(env!("CARGO_BIN_EXE_shardis-server"))
                .args(file)
                .args([
                    "--port",
                    &port.to_string(),
                    "--shards",
                    &shards.to_string(),
                    "--loglevel",
                    "warning",
                ])
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("spawn shardis-server");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // port taken meanwhile: try another
                }
                // Make sure the server answering is ours, not another test's on a reused port.
                let pid = serving_pid(port);
                if pid == Some(child.id()) || pid == Some(0) {
                    return Server { port, child };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("shardis-server did not start");
    }

    pub fn client(&self) -> redis::Client {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).expect("client")
    }

    pub fn conn(&self) -> redis::Connection {
        self.client().get_connection().expect("connection")
    }

    /// A raw socket, for protocol-level tests.
    pub fn raw(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        s
    }

    /// Waits for the process to exit by itself (after SHUTDOWN or a signal).
    pub fn wait_exit(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A connection to a server by port, for threads that outlive no `Server` borrow.
pub fn connect(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .and_then(|c| c.get_connection())
        .expect("connection")
}

/// Sends raw bytes and reads until `expect_len` bytes arrived or the peer closed.
pub fn roundtrip(stream: &mut TcpStream, send: &[u8], expect_len: usize) -> Vec<u8> {
    use std::io::{Read, Write};
    stream.write_all(send).expect("write");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while out.len() < expect_len {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    out
}
