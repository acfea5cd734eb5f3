//! The smallest HTTP/1.1 server that Prometheus needs: `GET /metrics` (and HEAD), each
//! connection closed after its answer.
//!
//! Whatever arrives is bounded: at most [`MAX_PENDING`] connections, a request head of at
//! most [`MAX_HEAD`] bytes each, read within [`DEADLINE`] of the accept (a client that sends
//! slowly or not at all is answered 408 and dropped), and nothing after the head is read.
//! Answers are written one at a time, so the cores never see more than one scrape at once.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// The largest request head read (request line and headers).
pub const MAX_HEAD: usize = 8 << 10;
/// How long a connection may take, from accept to the last byte of the answer.
pub const DEADLINE: Duration = Duration::from_secs(5);
/// Connections whose heads are read at once.
pub const MAX_PENDING: usize = 64;
/// How often the loop looks at the shutdown flag and the deadlines.
const POLL_MS: libc::c_int = 200;

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// GET /metrics (`head`: HEAD, the same answer without its body).
    Metrics {
        head: bool,
    },
    NotFound,
    MethodNotAllowed,
    BadRequest,
}

/// The position just past the head's blank line, if the head is complete.
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Routes a complete request head.
pub fn route(head: &[u8]) -> Route {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Ok(line) = std::str::from_utf8(line) else {
        return Route::BadRequest;
    };
    let mut words = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Route::BadRequest;
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Route::BadRequest;
    }
    let path = target.split('?').next().unwrap_or_default();
    if path != "/metrics" {
        return Route::NotFound;
    }
    match method {
        "GET" => Route::Metrics { head: false },
        "HEAD" => Route::Metrics { head: true },
        _ => Route::MethodNotAllowed,
    }
}

/// A connection whose request head is still arriving.
struct Pending {
    stream: TcpStream,
    head: Vec<u8>,
    deadline: Instant,
}

/// Accepts on `listeners` until `stop()` says so, answering each request with `scrape`
/// (None: the server could not answer, 503). Heads are read from up to [`MAX_PENDING`]
/// connections at once without blocking, so idle or slow connections cannot keep a scraper
/// out; past that many, the oldest is dropped.
pub fn serve(
    listeners: &[TcpListener],
    stop: impl Fn() -> bool,
    mut scrape: impl FnMut() -> Option<String>,
) {
    let mut pending: Vec<Pending> = Vec::new();
    let mut fds: Vec<libc::pollfd> = Vec::new();
    while !stop() {
        fds.clear();
        fds.extend(
            listeners
                .iter()
                .map(|l| l.as_raw_fd())
                .chain(pending.iter().map(|p| p.stream.as_raw_fd()))
                .map(|fd| libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                }),
        );
        // SAFETY: poll over pollfds we own, their count given.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, POLL_MS) };
        let now = Instant::now();
        if n > 0 {
            // Connections first (their indexes follow the listeners'), oldest first in
            // `pending`; walked backwards so removing one keeps the others' indexes.
            for i in (0..pending.len()).rev() {
                if fds[listeners.len() + i].revents == 0 {
                    continue;
                }
                match read_head(&mut pending[i]) {
                    Progress::More => {}
                    Progress::Closed => drop(pending.remove(i)),
                    Progress::Head(route) => {
                        let p = pending.remove(i);
                        answer(p.stream, route, p.deadline, &mut scrape);
                    }
                }
            }
            for (l, fd) in listeners.iter().zip(&fds) {
                if fd.revents == 0 {
                    continue;
                }
                // Non-blocking listeners: nothing may be there after all.
                while let Ok((stream, _)) = l.accept() {
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    if pending.len() == MAX_PENDING {
                        pending.remove(0);
                    }
                    pending.push(Pending {
                        stream,
                        head: Vec::new(),
                        deadline: now + DEADLINE,
                    });
                }
            }
        }
        // Too slow: told so and dropped.
        pending.retain_mut(|p| {
            if p.deadline > now {
                return true;
            }
            let _ = p.stream.set_nonblocking(false);
            let _ = p.stream.set_write_timeout(Some(Duration::from_millis(100)));
            let _ = respond(
                &mut p.stream,
                "408 Request Timeout",
                "text/plain",
                b"",
                false,
            );
            false
        });
    }
}

enum Progress {
    More,
    Closed,
    Head(Route),
}

/// Reads what a connection sent so far; a head too large is answered 431 and closed.
fn read_head(p: &mut Pending) -> Progress {
    let mut chunk = [0u8; 2048];
    loop {
        let room = MAX_HEAD - p.head.len();
        if room == 0 {
            let _ = p.stream.set_nonblocking(false);
            let _ = p.stream.set_write_timeout(Some(Duration::from_millis(100)));
            let _ = respond(
                &mut p.stream,
                "431 Request Header Fields Too Large",
                "text/plain",
                b"request head too large\n",
                false,
            );
            return Progress::Closed;
        }
        let want = room.min(chunk.len());
        match p.stream.read(&mut chunk[..want]) {
            Ok(0) => return Progress::Closed,
            Ok(n) => {
                // The blank line may straddle the previous read.
                let from = p.head.len().saturating_sub(3);
                p.head.extend_from_slice(&chunk[..n]);
                if let Some(end) = head_end(&p.head[from..]) {
                    return Progress::Head(route(&p.head[..from + end]));
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Progress::More,
            Err(_) => return Progress::Closed,
        }
    }
}

/// Answers a request whose head arrived, within what is left of its deadline.
fn answer(
    mut stream: TcpStream,
    route: Route,
    deadline: Instant,
    scrape: &mut impl FnMut() -> Option<String>,
) {
    let _ = stream.set_nonblocking(false);
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() || stream.set_write_timeout(Some(left)).is_err() {
        return;
    }
    let _ = match route {
        Route::Metrics { head } => match scrape() {
            Some(text) => respond(
                &mut stream,
                "200 OK",
                super::exposition::CONTENT_TYPE,
                text.as_bytes(),
                head,
            ),
            None => respond(
                &mut stream,
                "503 Service Unavailable",
                "text/plain",
                b"the server did not answer\n",
                head,
            ),
        },
        Route::NotFound => respond(
            &mut stream,
            "404 Not Found",
            "text/plain",
            b"not found: the metrics are at /metrics\n",
            false,
        ),
        Route::MethodNotAllowed => respond(
            &mut stream,
            "405 Method Not Allowed",
            "text/plain",
            b"only GET and HEAD\n",
            false,
        ),
        Route::BadRequest => respond(
            &mut stream,
            "400 Bad Request",
            "text/plain",
            b"bad request\n",
            false,
        ),
    };
}

fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
    head_only: bool,
) -> std::io::Result<()> {
    let allow = if status.starts_with("405") {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if !head_only {
        stream.write_all(body)?;
    }
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let cases: &[(&[u8], Route)] = &[
            (
                b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
                Route::Metrics { head: false },
            ),
            (
                b"GET /metrics?name[]=x HTTP/1.0\n\n",
                Route::Metrics { head: false },
            ),
            (
                b"HEAD /metrics HTTP/1.1\r\n\r\n",
                Route::Metrics { head: true },
            ),
            (b"POST /metrics HTTP/1.1\r\n\r\n", Route::MethodNotAllowed),
            (b"GET / HTTP/1.1\r\n\r\n", Route::NotFound),
            (b"GET /metricsx HTTP/1.1\r\n\r\n", Route::NotFound),
            (b"GET /metrics\r\n\r\n", Route::BadRequest),
            (b"GET /metrics HTTP/2 extra\r\n\r\n", Route::BadRequest),
            (b"GET metrics HTTP/1.1\r\n\r\n", Route::BadRequest),
            (b"GET /metrics SPDY/3\r\n\r\n", Route::BadRequest),
            (b"\xff\xfe /metrics HTTP/1.1\r\n\r\n", Route::BadRequest),
            (b"\r\n\r\n", Route::BadRequest),
        ];
        for (req, want) in cases {
            assert_eq!(&route(req), want, "{}", String::from_utf8_lossy(req));
        }
    }

    #[test]
    fn the_head_ends_at_the_first_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nbody"), Some(24));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\nrest\r\n\r\n"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n"), None);
    }
}
