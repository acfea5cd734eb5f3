//! A strict RESP2/RESP3 reader and a request encoder for tests that talk to the server over raw
//! sockets: every reply must be a well-formed value, and a reply that is not is reported with
//! the offending bytes.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// One reply, as the server sent it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Simple(String),
    Error(String),
    Int(i64),
    /// `$-1` (RESP2 null bulk) is `Bulk(None)`.
    Bulk(Option<Vec<u8>>),
    /// `*-1` (RESP2 null array) is `Array(None)`.
    Array(Option<Vec<Value>>),
    Null,
    Double(f64),
    Bool(bool),
    BigNumber(String),
    Verbatim(String, Vec<u8>),
    Map(Vec<(Value, Value)>),
    Set(Vec<Value>),
    Push(Vec<Value>),
}

impl Value {
    /// The bytes of a bulk, simple or verbatim string.
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bulk(Some(b)) | Value::Verbatim(_, b) => Some(b),
            Value::Simple(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    pub fn text(&self) -> Option<String> {
        self.bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }

    /// The elements of an array, set or push.
    pub fn items(&self) -> Option<&[Value]> {
        match self {
            Value::Array(Some(v)) | Value::Set(v) | Value::Push(v) => Some(v),
            _ => None,
        }
    }

    /// Pairs of a RESP3 map or of a flat RESP2 array of alternating keys and values.
    pub fn pairs(&self) -> Option<Vec<(&Value, &Value)>> {
        match self {
            Value::Map(m) => Some(m.iter().map(|(k, v)| (k, v)).collect()),
            Value::Array(Some(v)) if v.len() % 2 == 0 => {
                Some(v.chunks(2).map(|p| (&p[0], &p[1])).collect())
            }
            _ => None,
        }
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Value::Error(_))
    }
}

/// Nesting deeper than this is treated as malformed (the server never nests that deep).
const MAX_DEPTH: usize = 64;

/// Parses one value from the start of `buf`: `Ok(None)` while incomplete, else the value and
/// the bytes it used. Anything that is not valid RESP is an error naming the problem.
pub fn parse(buf: &[u8]) -> Result<Option<(Value, usize)>, String> {
    let mut pos = 0;
    match parse_at(buf, &mut pos, 0)? {
        Some(v) => Ok(Some((v, pos))),
        None => Ok(None),
    }
}

/// The line starting at `*pos` (without its CRLF), advancing past it. A lone CR or LF inside a
/// line is malformed.
fn line<'a>(buf: &'a [u8], pos: &mut usize) -> Result<Option<&'a [u8]>, String> {
    let rest = &buf[*pos..];
    let Some(end) = rest.iter().position(|&b| b == b'\n') else {
        if rest.contains(&b'\r') && !rest.ends_with(b"\r") {
            return Err(format!("CR inside a line: {:?}", preview(rest)));
        }
        return Ok(None);
    };
    if end == 0 || rest[end - 1] != b'\r' {
        return Err(format!("line not ended by CRLF: {:?}", preview(rest)));
    }
    let text = &rest[..end - 1];
    if text.contains(&b'\r') {
        return Err(format!("CR inside a line: {:?}", preview(rest)));
    }
    *pos += end + 1;
    Ok(Some(text))
}

fn preview(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(120)]).into_owned()
}

fn int(text: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(text)
        .ok()
        .filter(|s| !(s.starts_with('+') || s.len() > 1 && s.starts_with('0')))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad integer {:?}", preview(text)))
}

/// A length or count: -1 (null) or a non-negative integer.
fn count(text: &[u8]) -> Result<Option<usize>, String> {
    match int(text)? {
        -1 => Ok(None),
        n if n >= 0 => Ok(Some(n as usize)),
        n => Err(format!("negative length {n}")),
    }
}

fn parse_at(buf: &[u8], pos: &mut usize, depth: usize) -> Result<Option<Value>, String> {
    if depth > MAX_DEPTH {
        return Err("nesting too deep".into());
    }
    let start = *pos;
    let Some(&kind) = buf.get(start) else {
        return Ok(None);
    };
    *pos += 1;
    let Some(text) = line(buf, pos)? else {
        *pos = start;
        return Ok(None);
    };
    let utf8 = |t: &[u8]| {
        String::from_utf8(t.to_vec()).map_err(|_| format!("not UTF-8: {:?}", preview(t)))
    };
    let value = match kind {
        b'+' => Value::Simple(utf8(text)?),
        b'-' => Value::Error(utf8(text)?),
        b':' => Value::Int(int(text)?),
        b'_' if text.is_empty() => Value::Null,
        b'#' => match text {
            b"t" => Value::Bool(true),
            b"f" => Value::Bool(false),
            _ => return Err(format!("bad boolean {:?}", preview(text))),
        },
        b',' => {
            let s = utf8(text)?;
            let d = match s.as_str() {
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                "nan" => f64::NAN,
                _ => s.parse().map_err(|_| format!("bad double {s:?}"))?,
            };
            Value::Double(d)
        }
        b'(' => {
            let s = utf8(text)?;
            let digits = s.strip_prefix('-').unwrap_or(&s);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("bad big number {s:?}"));
            }
            Value::BigNumber(s)
        }
        b'$' | b'=' | b'!' => {
            let Some(len) = count(text)? else {
                if kind != b'$' {
                    return Err("null verbatim or blob error".into());
                }
                return Ok(Some(Value::Bulk(None)));
            };
            let end = pos.checked_add(len).ok_or("bulk length overflows")?;
            if buf.len() < end + 2 {
                *pos = start;
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(format!("bulk of {len} bytes not followed by CRLF"));
            }
            let data = buf[*pos..end].to_vec();
            *pos = end + 2;
            match kind {
                b'$' => Value::Bulk(Some(data)),
                b'!' => Value::Error(String::from_utf8_lossy(&data).into_owned()),
                _ => {
                    if data.len() < 4 || data[3] != b':' {
                        return Err("verbatim string without a format".into());
                    }
                    Value::Verbatim(utf8(&data[..3])?, data[4..].to_vec())
                }
            }
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let Some(n) = count(text)? else {
                if kind != b'*' {
                    return Err("null aggregate of a RESP3 type".into());
                }
                return Ok(Some(Value::Array(None)));
            };
            let items = if matches!(kind, b'%' | b'|') {
                n.checked_mul(2).ok_or("map size overflows")?
            } else {
                n
            };
            let mut values = Vec::with_capacity(items.min(1 << 16));
            for _ in 0..items {
                match parse_at(buf, pos, depth + 1)? {
                    Some(v) => values.push(v),
                    None => {
                        *pos = start;
                        return Ok(None);
                    }
                }
            }
            match kind {
                b'*' => Value::Array(Some(values)),
                b'~' => Value::Set(values),
                b'>' => Value::Push(values),
                _ => {
                    let mut pairs = Vec::with_capacity(n);
                    let mut it = values.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        pairs.push((k, v));
                    }
                    if kind == b'|' {
                        // An attribute annotates the value that follows it.
                        let annotated = parse_at(buf, pos, depth + 1)?;
                        if annotated.is_none() {
                            *pos = start;
                        }
                        return Ok(annotated);
                    }
                    Value::Map(pairs)
                }
            }
        }
        _ => return Err(format!("unknown type byte {:?}", kind as char)),
    };
    Ok(Some(value))
}

/// A request as a RESP multibulk.
pub fn command<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(16 + args.iter().map(|a| a.as_ref().len() + 16).sum::<usize>());
    push_command(&mut out, args);
    out
}

/// Appends a request to `out`.
pub fn push_command<A: AsRef<[u8]>>(out: &mut Vec<u8>, args: &[A]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Why a reply could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The server closed the connection (or reset it).
    Closed,
    /// Nothing complete arrived in time.
    Timeout,
    /// The bytes are not RESP.
    Invalid(String),
}

/// A raw connection that sends bytes and reads replies one value at a time.
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
}

impl Conn {
    pub fn connect(port: u16) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::new(),
            start: 0,
        })
    }

    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Sends one command.
    pub fn send_command<A: AsRef<[u8]>>(&mut self, args: &[A]) -> std::io::Result<()> {
        self.send(&command(args))
    }

    /// Reads the next reply, waiting at most `within` for it to be complete.
    pub fn read(&mut self, within: Duration) -> Result<Value, ReadError> {
        let deadline = Instant::now() + within;
        // Bytes available when parsing last came up short: no need to parse again until more
        // arrived (a long aggregate is not re-parsed for every small read).
        let mut tried_at = None;
        loop {
            if tried_at != Some(self.buf.len()) {
                match parse(&self.buf[self.start..]) {
                    Ok(Some((v, used))) => {
                        self.start += used;
                        if self.start == self.buf.len() {
                            self.buf.clear();
                            self.start = 0;
                        }
                        return Ok(v);
                    }
                    Ok(None) => tried_at = Some(self.buf.len()),
                    Err(e) => return Err(ReadError::Invalid(e)),
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ReadError::Timeout);
            }
            let _ = self.stream.set_read_timeout(Some(left));
            if self.start > 0 && self.start == self.buf.len() {
                self.buf.clear();
                self.start = 0;
            }
            let len = self.buf.len();
            let room = (len - self.start).clamp(64 << 10, 4 << 20);
            self.buf.resize(len + room, 0);
            let got = self.stream.read(&mut self.buf[len..]);
            match got {
                Ok(0) => {
                    self.buf.truncate(len);
                    return Err(ReadError::Closed);
                }
                Ok(n) => self.buf.truncate(len + n),
                Err(e) => {
                    self.buf.truncate(len);
                    return Err(match e.kind() {
                        ErrorKind::WouldBlock | ErrorKind::TimedOut => ReadError::Timeout,
                        ErrorKind::Interrupted => continue,
                        _ => ReadError::Closed,
                    });
                }
            }
        }
    }

    /// Bytes received and not yet returned as a value.
    pub fn unread(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Sends one command and reads its reply.
    pub fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Value, ReadError> {
        self.send_command(args).map_err(|_| ReadError::Closed)?;
        self.read(Duration::from_secs(30))
    }

    /// Reads until the server closes the connection: what came before the close, or an error
    /// if it stays open for `within`.
    pub fn read_to_close(&mut self, within: Duration) -> Result<Vec<u8>, Vec<u8>> {
        let deadline = Instant::now() + within;
        let mut chunk = [0u8; 64 << 10];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.buf[self.start..].to_vec());
            }
            let _ = self.stream.set_read_timeout(Some(left));
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(self.buf[self.start..].to_vec()),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(self.buf[self.start..].to_vec())
                }
                Err(_) => return Ok(self.buf[self.start..].to_vec()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_type_and_rejects_garbage() {
        let ok: &[(&[u8], Value)] = &[
            (b"+OK\r\n", Value::Simple("OK".into())),
            (b":-12\r\n", Value::Int(-12)),
            (b"$-1\r\n", Value::Bulk(None)),
            (b"$3\r\na\r\n\r\n", Value::Bulk(Some(b"a\r\n".to_vec()))),
            (b"*-1\r\n", Value::Array(None)),
            (b"_\r\n", Value::Null),
            (b"#t\r\n", Value::Bool(true)),
            (b",-inf\r\n", Value::Double(f64::NEG_INFINITY)),
            (
                b"%1\r\n+a\r\n:1\r\n",
                Value::Map(vec![(Value::Simple("a".into()), Value::Int(1))]),
            ),
        ];
        for (bytes, want) in ok {
            let (v, used) = parse(bytes).unwrap().unwrap();
            assert_eq!(&v, want);
            assert_eq!(used, bytes.len());
        }
        assert_eq!(parse(b"$3\r\nab").unwrap(), None);
        assert_eq!(parse(b"*2\r\n:1\r\n").unwrap(), None);
        for bad in [
            &b"?x\r\n"[..],
            b":1x\r\n",
            b"$3\r\nabcd\r\n",
            b"+a\nb\r\n",
            b"$-2\r\n",
            b":01\r\n",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
