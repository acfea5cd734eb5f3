//! Interim request parser (replaced by the full incremental parser).

use bytes::{Bytes, BytesMut};

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_bulk_len: usize,
    pub max_multibulk_len: usize,
    pub max_inline_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 << 20,
            max_multibulk_len: 1 << 20,
            max_inline_len: 64 << 10,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub &'static str);

impl ProtocolError {
    pub fn message(&self) -> &str {
        self.0
    }
}

#[derive(Default)]
pub struct RequestParser;

impl RequestParser {
    pub fn new() -> Self {
        RequestParser
    }

    pub fn next(
        &mut self,
        buf: &mut BytesMut,
        limits: &Limits,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        loop {
            if buf.is_empty() {
                return Ok(None);
            }
            if buf[0] != b'*' {
                let Some(nl) = buf.iter().position(|&c| c == b'\n') else {
                    if buf.len() > limits.max_inline_len {
                        return Err(ProtocolError("Protocol error: too big inline request"));
                    }
                    return Ok(None);
                };
                let line = buf.split_to(nl + 1).freeze();
                let args: Vec<Bytes> = line[..nl]
                    .split(|c| c.is_ascii_whitespace())
                    .filter(|s| !s.is_empty())
                    .map(|s| line.slice_ref(s))
                    .collect();
                if args.is_empty() {
                    continue;
                }
                return Ok(Some(args));
            }
            let Some((n, mut pos)) = read_line_int(buf, 0) else {
                return Ok(None);
            };
            if n > limits.max_multibulk_len as i64 {
                return Err(ProtocolError("Protocol error: invalid multibulk length"));
            }
            if n <= 0 {
                let _ = buf.split_to(pos);
                continue;
            }
            let mut spans = Vec::with_capacity((n as usize).min(1024));
            for _ in 0..n {
                if pos >= buf.len() {
                    return Ok(None);
                }
                if buf[pos] != b'$' {
                    return Err(ProtocolError("Protocol error: expected '$'"));
                }
                let Some((len, p)) = read_line_int(buf, pos) else {
                    return Ok(None);
                };
                if len < 0 || len > limits.max_bulk_len as i64 {
                    return Err(ProtocolError("Protocol error: invalid bulk length"));
                }
                let end = p + len as usize;
                if end + 2 > buf.len() {
                    return Ok(None);
                }
                spans.push((p, end));
                pos = end + 2;
            }
            let frame = buf.split_to(pos).freeze();
            return Ok(Some(
                spans.into_iter().map(|(a, b)| frame.slice(a..b)).collect(),
            ));
        }
    }
}

fn read_line_int(buf: &[u8], start: usize) -> Option<(i64, usize)> {
    let nl = buf[start..].iter().position(|&c| c == b'\n')? + start;
    let text = std::str::from_utf8(&buf[start + 1..nl])
        .ok()?
        .trim_end_matches('\r');
    Some((text.parse().ok()?, nl + 1))
}
