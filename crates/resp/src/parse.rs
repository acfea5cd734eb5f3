//! The incremental request parser: bytes read from a client in, complete commands out.
//!
//! It accepts exactly what Redis 7.0's `processMultibulkBuffer` and `processInlineBuffer`
//! accept and fails with their error texts, so clients (and Redis's protocol tests) see the
//! same behaviour. Arguments are `Bytes` split off the read buffer: no copy except for inline
//! arguments that contain quotes or escapes.
//!
//! The parser keeps its position across calls: arguments already complete are split off the
//! buffer at once and line searches resume where they stopped, so a large pipeline or a huge
//! multibulk arriving over many reads costs time linear in its size.

use bytes::{Buf, Bytes, BytesMut};
use std::borrow::Cow;
use std::fmt;

/// Size limits applied to requests, as Redis's configuration sets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `proto-max-bulk-len`: the largest accepted bulk argument.
    pub max_bulk_len: usize,
    /// The largest accepted multibulk count (`*<n>`).
    pub max_multibulk_len: usize,
    /// How many bytes may wait without a line terminator (`PROTO_INLINE_MAX_SIZE`); applies
    /// to inline requests and to the `*<n>` / `$<n>` header lines.
    pub max_inline_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
            // Redis 7.0 rejects only counts above INT_MAX; memory is not at risk since the
            // argument vector grows with the arguments actually received.
            max_multibulk_len: i32::MAX as usize,
            max_inline_len: 64 * 1024,
        }
    }
}

/// A malformed request. The server replies `-ERR <message>` and closes the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    message: Cow<'static, str>,
    /// The raw byte of "expected '$', got '%c'" when it is not ASCII: Redis sends it as is,
    /// which a `str` message cannot hold.
    raw_byte: Option<u8>,
}

impl ProtocolError {
    const fn fixed(message: &'static str) -> ProtocolError {
        ProtocolError {
            message: Cow::Borrowed(message),
            raw_byte: None,
        }
    }

    fn expected_dollar(got: u8) -> ProtocolError {
        // Redis formats the error with addReplyErrorFormat, which turns CR and LF into spaces.
        let shown = match got {
            b'\r' | b'\n' => b' ',
            b => b,
        };
        ProtocolError {
            message: Cow::Owned(format!(
                "Protocol error: expected '$', got '{}'",
                char::from(shown)
            )),
            raw_byte: (!shown.is_ascii()).then_some(shown),
        }
    }

    /// The error text without the `ERR ` code, e.g. `Protocol error: invalid bulk length`.
    /// A non-ASCII byte in "expected '$', got '…'" shows here as the Latin-1 character;
    /// [`ProtocolError::write_reply`] sends the raw byte as Redis does.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Appends the exact error reply Redis sends: `-ERR <message>\r\n`.
    pub fn write_reply(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"-ERR ");
        match self.raw_byte {
            Some(b) => {
                out.extend_from_slice(b"Protocol error: expected '$', got '");
                out.push(b);
                out.push(b'\'');
            }
            None => out.extend_from_slice(self.message.as_bytes()),
        }
        out.extend_from_slice(b"\r\n");
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ProtocolError {}

const TOO_BIG_INLINE: ProtocolError =
    ProtocolError::fixed("Protocol error: too big inline request");
const UNBALANCED: ProtocolError =
    ProtocolError::fixed("Protocol error: unbalanced quotes in request");
const INVALID_MULTIBULK_LEN: ProtocolError =
    ProtocolError::fixed("Protocol error: invalid multibulk length");
const TOO_BIG_MBULK_COUNT: ProtocolError =
    ProtocolError::fixed("Protocol error: too big mbulk count string");
const INVALID_BULK_LEN: ProtocolError = ProtocolError::fixed("Protocol error: invalid bulk length");
const TOO_BIG_BULK_COUNT: ProtocolError =
    ProtocolError::fixed("Protocol error: too big bulk count string");
const UNAUTH_MULTIBULK_LEN: ProtocolError =
    ProtocolError::fixed("Protocol error: unauthenticated multibulk length");
const UNAUTH_BULK_LEN: ProtocolError =
    ProtocolError::fixed("Protocol error: unauthenticated bulk length");

/// Redis's limits for connections that still have to authenticate.
const UNAUTH_MAX_MULTIBULK: i64 = 10;
const UNAUTH_MAX_BULK: i64 = 16384;

/// How many argument slots are reserved up front, whatever count the client announces, and
/// kept between commands.
const MAX_PREALLOCATED_ARGS: usize = 1024;

/// Where the parser stands in the request at the front of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between requests: the next byte decides between multibulk and inline.
    Start,
    /// Looking for the end of an inline line.
    Inline,
    /// Looking for the end of the `*<count>` line.
    MultibulkCount,
    /// Looking for the end of a `$<len>` line; `left` arguments (this one included) to go.
    BulkLen { left: usize },
    /// Waiting for `len` bytes of argument plus the two bytes that end it.
    BulkData { left: usize, len: usize },
}

/// The per-connection request parser.
#[derive(Debug)]
pub struct RequestParser {
    state: State,
    /// Arguments of the multibulk being read, already split off the buffer.
    args: Vec<Bytes>,
    /// The data bytes of `args`.
    held_bytes: usize,
    /// How far from the buffer's front the current line search has already looked.
    scanned: usize,
    /// Whether the connection still has to AUTH, which tightens the size limits.
    auth_required: bool,
}

impl Default for RequestParser {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestParser {
    /// A parser positioned at the start of a request.
    pub fn new() -> Self {
        RequestParser {
            state: State::Start,
            args: Vec::new(),
            held_bytes: 0,
            scanned: 0,
            auth_required: false,
        }
    }

    /// Applies Redis's limits for unauthenticated connections (at most 10 arguments of at most
    /// 16384 bytes) while `required` is true.
    pub fn set_auth_required(&mut self, required: bool) {
        self.auth_required = required;
    }

    /// Parses the next complete command from the front of `buf` into `args`, which is cleared
    /// first and reused from call to call, so a connection parses without allocating.
    ///
    /// Returns `Ok(true)` when `args` holds a complete command and `Ok(false)` when more input
    /// is needed; whatever was not consumed stays in `buf` and the next call continues from it
    /// (call again after appending to the same buffer). Arguments of a multibulk already
    /// received are split off `buf` and held by the parser until the command is complete (see
    /// [`RequestParser::pending_bytes`]). Empty inline lines and empty or negative multibulks
    /// are skipped, as in Redis. After an error the connection must be closed: the parser's
    /// state is not meaningful any more.
    pub fn next_into(
        &mut self,
        buf: &mut BytesMut,
        limits: &Limits,
        args: &mut Vec<Bytes>,
    ) -> Result<bool, ProtocolError> {
        args.clear();
        // A vector grown by one huge request is not kept for the small ones after it.
        args.shrink_to(MAX_PREALLOCATED_ARGS);
        loop {
            match self.state {
                State::Start => match buf.first() {
                    None => return Ok(false),
                    Some(b'*') => self.state = State::MultibulkCount,
                    Some(_) => self.state = State::Inline,
                },
                State::Inline => {
                    let Some(newline) = self.find(buf, b'\n') else {
                        if buf.len() > limits.max_inline_len {
                            return Err(TOO_BIG_INLINE);
                        }
                        return Ok(false);
                    };
                    let line = buf.split_to(newline + 1).freeze();
                    self.consumed_line(State::Start);
                    let mut end = newline;
                    if end > 0 && line[end - 1] == b'\r' {
                        end -= 1;
                    }
                    split_args(&line.slice(..end), args)?;
                    if !args.is_empty() {
                        return Ok(true);
                    }
                }
                State::MultibulkCount => {
                    let Some(cr) = self.header_line(buf, limits, &TOO_BIG_MBULK_COUNT)? else {
                        return Ok(false);
                    };
                    let count = match buf.get(1..cr).and_then(parse_i64) {
                        Some(n)
                            if n <= i64::from(i32::MAX)
                                && (n <= 0 || n as u64 <= limits.max_multibulk_len as u64) =>
                        {
                            n
                        }
                        _ => return Err(INVALID_MULTIBULK_LEN),
                    };
                    if count > UNAUTH_MAX_MULTIBULK && self.auth_required {
                        return Err(UNAUTH_MULTIBULK_LEN);
                    }
                    buf.advance(cr + 2);
                    match usize::try_from(count) {
                        Ok(left) if left > 0 => {
                            // The slots grow with the arguments received, not with the count
                            // announced.
                            self.args.clear();
                            self.args.reserve(left.min(MAX_PREALLOCATED_ARGS));
                            self.held_bytes = 0;
                            self.consumed_line(State::BulkLen { left });
                        }
                        _ => self.consumed_line(State::Start),
                    }
                }
                State::BulkLen { left } => {
                    let Some(cr) = self.header_line(buf, limits, &TOO_BIG_BULK_COUNT)? else {
                        return Ok(false);
                    };
                    if buf[0] != b'$' {
                        return Err(ProtocolError::expected_dollar(buf[0]));
                    }
                    let len = match buf.get(1..cr).and_then(parse_i64) {
                        Some(n) if n >= 0 && n as u64 <= limits.max_bulk_len as u64 => n,
                        _ => return Err(INVALID_BULK_LEN),
                    };
                    if len > UNAUTH_MAX_BULK && self.auth_required {
                        return Err(UNAUTH_BULK_LEN);
                    }
                    buf.advance(cr + 2);
                    let len = usize::try_from(len).map_err(|_| INVALID_BULK_LEN)?;
                    self.consumed_line(State::BulkData { left, len });
                }
                State::BulkData { left, len } => {
                    // Redis skips the two bytes after the data without checking they are CRLF.
                    if buf.len() < len.saturating_add(2) {
                        return Ok(false);
                    }
                    self.args.push(buf.split_to(len).freeze());
                    self.held_bytes = self.held_bytes.saturating_add(len);
                    buf.advance(2);
                    if left > 1 {
                        self.state = State::BulkLen { left: left - 1 };
                    } else {
                        self.state = State::Start;
                        self.held_bytes = 0;
                        // The caller's emptied vector becomes the parser's for the next one.
                        std::mem::swap(&mut self.args, args);
                        return Ok(true);
                    }
                }
            }
        }
    }

    /// While an argument's data is arriving: the bytes from the buffer's front that end it
    /// (its data and CRLF), so the caller can give a big argument a buffer that fits it.
    pub fn awaited_bulk(&self) -> Option<usize> {
        match self.state {
            State::BulkData { len, .. } => Some(len.saturating_add(2)),
            _ => None,
        }
    }

    /// Bytes the parser holds for the multibulk in progress that are no longer in the read
    /// buffer: the arguments already received (their data plus one argument slot each).
    /// With the buffer's length this is everything the client sent that has not been handed
    /// over as a command, which `client-query-buffer-limit` bounds. Zero between commands.
    pub fn pending_bytes(&self) -> usize {
        match self.state {
            State::BulkLen { .. } | State::BulkData { .. } => self
                .held_bytes
                .saturating_add(self.args.len().saturating_mul(size_of::<Bytes>())),
            State::Start | State::Inline | State::MultibulkCount => 0,
        }
    }

    /// Finds the end of a `*`/`$` header line: the position of its CR, once the byte after
    /// it has arrived too (Redis skips that byte without looking at it).
    fn header_line(
        &mut self,
        buf: &BytesMut,
        limits: &Limits,
        too_big: &ProtocolError,
    ) -> Result<Option<usize>, ProtocolError> {
        match self.find(buf, b'\r') {
            None if buf.len() > limits.max_inline_len => Err(too_big.clone()),
            Some(cr) if cr + 2 <= buf.len() => Ok(Some(cr)),
            _ => Ok(None),
        }
    }

    /// Searches `buf` for `needle` from where the last search stopped.
    ///
    /// Redis searches its NUL-terminated query buffer with `strchr`, which stops at a NUL:
    /// a NUL before the terminator hides it for good, and the request can only end in a "too
    /// big" error. The search mirrors that so such input fails the same way.
    fn find(&mut self, buf: &[u8], needle: u8) -> Option<usize> {
        let from = self.scanned.min(buf.len());
        // Header lines are a few bytes long: a plain loop finds their end before memchr's
        // setup would pay off.
        let head = &buf[from..buf.len().min(from + 16)];
        let found = match head.iter().position(|&c| c == needle || c == 0) {
            Some(i) => Some(i),
            None if head.len() < 16 => None,
            None => memchr::memchr2(needle, 0, &buf[from + 16..]).map(|i| i + 16),
        };
        match found {
            Some(i) if buf[from + i] == needle => {
                self.scanned = from + i;
                Some(from + i)
            }
            Some(i) => {
                self.scanned = from + i;
                None
            }
            None => {
                self.scanned = buf.len();
                None
            }
        }
    }

    /// Moves on after the front of the buffer was consumed.
    fn consumed_line(&mut self, next: State) {
        self.scanned = 0;
        self.state = next;
    }
}

/// Parses a length as Redis's `string2ll`: canonical decimal only (no `+`, no leading zeros,
/// no spaces, no `-0`), at most 20 characters.
fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if !matches!(digits.first(), Some(b'1'..=b'9')) {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if negative {
        0i64.checked_sub_unsigned(v)
    } else {
        i64::try_from(v).ok()
    }
}

/// C's `isspace` in the C locale.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Splits a line into arguments as Redis's `sdssplitargs` does (see [`split_args`]); None
/// when a quote is unbalanced. Scripts' and libraries' `#!` lines are read with it.
pub fn split_line(line: &[u8]) -> Option<Vec<Bytes>> {
    let line = Bytes::copy_from_slice(line);
    let mut args = Vec::new();
    split_args(&line, &mut args).ok()?;
    Some(args)
}

/// Splits an inline request line into arguments as Redis's `sdssplitargs` does.
///
/// Tokens are separated by whitespace; double quotes take C-like escapes (`\n`, `\r`, `\t`,
/// `\b`, `\a`, `\xHH`, and `\<c>` for any other `c`), single quotes take only `\'`; a quote
/// may open in the middle of a token but a closing quote must be followed by whitespace or
/// the end of the line. Plain tokens are slices of `line`. The tokens are appended to `args`.
fn split_args(line: &Bytes, args: &mut Vec<Bytes>) -> Result<(), ProtocolError> {
    let s: &[u8] = line;
    let mut i = 0;
    loop {
        while i < s.len() && is_space(s[i]) {
            i += 1;
        }
        if i >= s.len() {
            return Ok(());
        }
        let start = i;
        while i < s.len() && !matches!(s[i], b' ' | b'\n' | b'\r' | b'\t' | b'"' | b'\'') {
            i += 1;
        }
        if !matches!(s.get(i), Some(b'"' | b'\'')) {
            args.push(line.slice(start..i));
            continue;
        }
        let mut token = s[start..i].to_vec();
        i = quoted_token(s, i, &mut token)?;
        args.push(Bytes::from(token));
    }
}

/// Reads the rest of a token from `s[i]`, an opening quote, appending its bytes to `token`;
/// returns where the token ends.
fn quoted_token(s: &[u8], mut i: usize, token: &mut Vec<u8>) -> Result<usize, ProtocolError> {
    enum Quote {
        None,
        Double,
        Single,
    }
    let mut quote = Quote::None;
    // A closing quote ends the token; it must be followed by whitespace or the end.
    let closes = |next: Option<&u8>| match next {
        Some(&c) if !is_space(c) => Err(UNBALANCED),
        _ => Ok(()),
    };
    loop {
        let c = s.get(i).copied();
        match quote {
            Quote::Double => match c {
                None => return Err(UNBALANCED),
                Some(b'\\') if s.get(i + 1) == Some(&b'x') && hex_pair(s, i + 2).is_some() => {
                    token.extend(hex_pair(s, i + 2));
                    i += 3;
                }
                Some(b'\\') if i + 1 < s.len() => {
                    i += 1;
                    token.push(match s[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                }
                Some(b'"') => {
                    closes(s.get(i + 1))?;
                    return Ok(i + 1);
                }
                Some(other) => token.push(other),
            },
            Quote::Single => match c {
                None => return Err(UNBALANCED),
                Some(b'\\') if s.get(i + 1) == Some(&b'\'') => {
                    i += 1;
                    token.push(b'\'');
                }
                Some(b'\'') => {
                    closes(s.get(i + 1))?;
                    return Ok(i + 1);
                }
                Some(other) => token.push(other),
            },
            Quote::None => match c {
                None | Some(b' ' | b'\n' | b'\r' | b'\t') => return Ok(i),
                Some(b'"') => quote = Quote::Double,
                Some(b'\'') => quote = Quote::Single,
                Some(other) => token.push(other),
            },
        }
        i += 1;
    }
}

/// The byte written as two hex digits at `s[i..i + 2]`, if they are hex digits.
fn hex_pair(s: &[u8], i: usize) -> Option<u8> {
    let hi = (*s.get(i)? as char).to_digit(16)?;
    let lo = (*s.get(i + 1)? as char).to_digit(16)?;
    u8::try_from(hi * 16 + lo).ok()
}

/// Calls `f` with the second argument (the first key of most commands) of each complete
/// multibulk request at the front of `buf`, for up to `max` requests, without consuming or
/// copying anything: a read-ahead hint for prefetching the keys of a pipeline before its
/// commands run. Stops at the first request that is incomplete, inline or malformed (the
/// parser proper judges it). Returns how many requests it looked at.
pub fn peek_keys<'a>(buf: &'a [u8], max: usize, mut f: impl FnMut(&'a [u8])) -> usize {
    /// The number of a `*`/`$` header starting at `at` (after its type byte), and where
    /// the line after it starts; None unless the whole line is there and is a number.
    fn header(buf: &[u8], at: usize, kind: u8) -> Option<(usize, usize)> {
        if *buf.get(at)? != kind {
            return None;
        }
        let mut n: usize = 0;
        let mut p = at + 1;
        // Up to 19 digits: no overflow, and a bigger number is no real request.
        while let Some(&d) = buf.get(p).filter(|d| d.is_ascii_digit()) {
            if p - at > 19 {
                return None;
            }
            n = n * 10 + usize::from(d - b'0');
            p += 1;
        }
        if p == at + 1 || buf.get(p..p + 2)? != b"\r\n" {
            return None;
        }
        Some((n, p + 2))
    }
    let mut at = 0;
    let mut seen = 0;
    while seen < max {
        let Some((argc, mut p)) = header(buf, at, b'*') else {
            break;
        };
        let mut key = None;
        for i in 0..argc {
            let Some((len, data)) = header(buf, p, b'$') else {
                return seen;
            };
            let Some(end) = data.checked_add(len).filter(|&e| e <= buf.len()) else {
                return seen;
            };
            if buf.get(end..end + 2) != Some(b"\r\n") {
                return seen;
            }
            if i == 1 {
                key = buf.get(data..end);
            }
            p = end + 2;
        }
        if let Some(k) = key {
            f(k);
        }
        seen += 1;
        at = p;
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Feeds `input` in one piece and collects commands until more input is needed or an
    /// error; returns the commands, the error message if any, and the unconsumed bytes.
    fn parse_with(
        parser: &mut RequestParser,
        input: &[u8],
        limits: &Limits,
    ) -> (Vec<Vec<Vec<u8>>>, Option<String>, Vec<u8>) {
        let mut buf = BytesMut::from(input);
        let mut commands = Vec::new();
        let mut args = Vec::new();
        loop {
            match parser.next_into(&mut buf, limits, &mut args) {
                Ok(true) => commands.push(args.iter().map(|a| a.to_vec()).collect()),
                Ok(false) => return (commands, None, buf.to_vec()),
                Err(e) => return (commands, Some(e.message().to_string()), buf.to_vec()),
            }
        }
    }

    fn parse(input: &[u8]) -> (Vec<Vec<Vec<u8>>>, Option<String>) {
        let (commands, err, _) = parse_with(&mut RequestParser::new(), input, &Limits::default());
        (commands, err)
    }

    fn cmd(args: &[&str]) -> Vec<Vec<u8>> {
        args.iter().map(|a| a.as_bytes().to_vec()).collect()
    }

    fn error_of(input: &[u8]) -> String {
        parse(input).1.unwrap_or_default()
    }

    #[test]
    fn multibulk_and_pipeline() {
        let (cmds, err) = parse(b"*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
        assert_eq!(err, None);
        assert_eq!(cmds, vec![cmd(&["PING"]), cmd(&["SET", "k", ""])]);
    }

    #[test]
    fn binary_arguments_are_kept_whole() {
        let (cmds, _) = parse(b"*2\r\n$3\r\nGET\r\n$5\r\na\r\n\0b\r\n");
        assert_eq!(cmds, vec![vec![b"GET".to_vec(), b"a\r\n\0b".to_vec()]]);
    }

    #[test]
    fn awaited_bulk_is_the_rest_of_the_argument_in_progress() {
        let mut p = RequestParser::new();
        let limits = Limits::default();
        let mut args = Vec::new();
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nSET\r\n$100000\r\nvvv"[..]);
        assert_eq!(p.awaited_bulk(), None);
        assert_eq!(p.next_into(&mut buf, &limits, &mut args), Ok(false));
        // The buffer starts at the argument's data: its length and CRLF end it.
        assert_eq!(p.awaited_bulk(), Some(100_002));
        assert_eq!(&buf[..], b"vvv");
        buf.extend_from_slice(&vec![b'v'; 99_997]);
        buf.extend_from_slice(b"\r\n");
        assert_eq!(p.next_into(&mut buf, &limits, &mut args), Ok(true));
        assert_eq!(p.awaited_bulk(), None);
    }

    // The tests of tests/unit/protocol.tcl, at the parser level.

    #[test]
    fn empty_query_is_skipped() {
        assert_eq!(parse(b"\r\nPING\r\n"), (vec![cmd(&["PING"])], None));
        assert_eq!(parse(b"\n \t \r\n\nPING\n"), (vec![cmd(&["PING"])], None));
    }

    #[test]
    fn empty_and_negative_multibulks_are_skipped() {
        let (cmds, err) = parse(b"*-10\r\n*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n");
        assert_eq!((cmds, err), (vec![cmd(&["PING"])], None));
    }

    #[test]
    fn multibulk_length_errors() {
        let invalid = "Protocol error: invalid multibulk length";
        assert_eq!(error_of(b"*3000000000\r\n"), invalid);
        assert_eq!(error_of(b"*2147483648\r\n"), invalid);
        for bad in [
            &b"*\r\n"[..],
            b"*+1\r\n",
            b"*01\r\n",
            b"*-0\r\n",
            b"*1 \r\n",
            b"*x\r\n",
        ] {
            assert_eq!(error_of(bad), invalid, "{:?}", bad);
        }
        // INT_MAX itself is accepted; the parser then waits for the arguments.
        assert_eq!(parse(b"*2147483647\r\n"), (vec![], None));
        let small = Limits {
            max_multibulk_len: 2,
            ..Limits::default()
        };
        let (_, err, _) = parse_with(&mut RequestParser::new(), b"*3\r\n", &small);
        assert_eq!(err.as_deref(), Some(invalid));
        let unlimited = Limits {
            max_multibulk_len: usize::MAX,
            ..Limits::default()
        };
        let (cmds, err, _) =
            parse_with(&mut RequestParser::new(), b"*1\r\n$1\r\na\r\n", &unlimited);
        assert_eq!((cmds, err), (vec![cmd(&["a"])], None));
    }

    #[test]
    fn wrong_multibulk_payload_header() {
        assert_eq!(
            error_of(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n"),
            "Protocol error: expected '$', got 'f'"
        );
        assert_eq!(
            error_of(b"*1\r\nfoo\r\n"),
            "Protocol error: expected '$', got 'f'"
        );
    }

    #[test]
    fn expected_dollar_shows_the_byte_as_redis_sends_it() {
        // An empty header line: the CR is reported, as a space (addReplyErrorFormat).
        assert_eq!(
            error_of(b"*1\r\n\r\n"),
            "Protocol error: expected '$', got ' '"
        );
        let mut buf = BytesMut::from(&b"*1\r\n\xffx\r\n"[..]);
        let err = RequestParser::new()
            .next_into(&mut buf, &Limits::default(), &mut Vec::new())
            .unwrap_err();
        let mut wire = Vec::new();
        err.write_reply(&mut wire);
        assert_eq!(wire, b"-ERR Protocol error: expected '$', got '\xff'\r\n");
        let mut wire = Vec::new();
        INVALID_BULK_LEN.write_reply(&mut wire);
        assert_eq!(wire, b"-ERR Protocol error: invalid bulk length\r\n");
    }

    #[test]
    fn bulk_length_errors() {
        let invalid = "Protocol error: invalid bulk length";
        for bad in [
            &b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n"[..],
            b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n",
            b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n",
            b"*1\r\n$-1\r\n",
            b"*1\r\n$\r\n",
            b"*1\r\n$01\r\n",
            b"*1\r\n$99999999999999999999\r\n",
        ] {
            assert_eq!(error_of(bad), invalid, "{:?}", bad);
        }
        // proto-max-bulk-len itself is accepted.
        let limits = Limits {
            max_bulk_len: 3,
            ..Limits::default()
        };
        let mut parser = RequestParser::new();
        let (cmds, err, _) = parse_with(&mut parser, b"*1\r\n$3\r\nabc\r\n", &limits);
        assert_eq!((cmds, err), (vec![cmd(&["abc"])], None));
        let (_, err, _) = parse_with(&mut parser, b"*1\r\n$4\r\nabcd\r\n", &limits);
        assert_eq!(err.as_deref(), Some(invalid));
    }

    #[test]
    fn unbalanced_quotes() {
        let unbalanced = "Protocol error: unbalanced quotes in request";
        assert_eq!(
            error_of(b"set \"\"\"test-key\"\"\" test-value\r\nping\r\n"),
            unbalanced
        );
        for bad in [
            &b"get \"foo\r\n"[..],
            b"get 'foo\n",
            b"get \"foo\"bar\n",
            b"get 'foo'bar\n",
            b"get a\"b c\"d\n",
            b"get \"foo\\\"\n",
            b"get \"foo\\\n",
        ] {
            assert_eq!(error_of(bad), unbalanced, "{:?}", bad);
        }
    }

    #[test]
    fn protocol_desync_ends_in_a_protocol_error() {
        // protocol.tcl writes these prefixes then endless "payload" without a newline.
        for (prefix, expected) in [
            (&b"\x00"[..], "Protocol error: too big inline request"),
            (b"*\x00", "Protocol error: too big mbulk count string"),
            (b"$\x00", "Protocol error: too big inline request"),
        ] {
            let mut parser = RequestParser::new();
            let limits = Limits::default();
            let mut buf = BytesMut::from(prefix);
            let result = loop {
                match parser.next_into(&mut buf, &limits, &mut Vec::new()) {
                    Ok(false) => buf.extend_from_slice(&[b'A'; 1024]),
                    other => break other,
                }
            };
            assert_eq!(result.unwrap_err().message(), expected);
        }
    }

    #[test]
    fn a_nul_hides_the_line_end_as_strchr_does() {
        // Redis's strchr stops at the NUL and never sees the newline or CR after it.
        assert_eq!(parse(b"a\0b\r\n"), (vec![], None));
        assert_eq!(parse(b"*1\0\r\n"), (vec![], None));
        assert_eq!(parse(b"*1\r\n$1\0\r\n"), (vec![], None));
        let mut big = b"*1\r\n$\0".to_vec();
        big.resize(70_000, b'\r');
        assert_eq!(
            parse(&big).1.as_deref(),
            Some("Protocol error: too big bulk count string")
        );
    }

    #[test]
    fn too_big_header_lines() {
        let limits = Limits::default();
        let mut inline = vec![b'a'; limits.max_inline_len];
        assert_eq!(parse(&inline), (vec![], None));
        inline.push(b'a');
        assert_eq!(
            parse(&inline).1.as_deref(),
            Some("Protocol error: too big inline request")
        );
        // A long line whose newline is already there is accepted, as in Redis.
        inline.extend_from_slice(b" b\n");
        assert_eq!(parse(&inline).0.len(), 1);

        let mut mbulk = b"*".to_vec();
        mbulk.resize(limits.max_inline_len + 1, b'1');
        assert_eq!(
            parse(&mbulk).1.as_deref(),
            Some("Protocol error: too big mbulk count string")
        );
        let mut bulk = b"*1\r\n$".to_vec();
        bulk.resize(4 + limits.max_inline_len + 1, b'1');
        assert_eq!(
            parse(&bulk).1.as_deref(),
            Some("Protocol error: too big bulk count string")
        );
    }

    #[test]
    fn unauthenticated_limits() {
        let limits = Limits::default();
        let mut parser = RequestParser::new();
        parser.set_auth_required(true);
        let (_, err, _) = parse_with(&mut parser, b"*100\r\n", &limits);
        assert_eq!(
            err.as_deref(),
            Some("Protocol error: unauthenticated multibulk length")
        );
        let mut parser = RequestParser::new();
        parser.set_auth_required(true);
        let (_, err, _) = parse_with(&mut parser, b"*1\r\n$100000000\r\n", &limits);
        assert_eq!(
            err.as_deref(),
            Some("Protocol error: unauthenticated bulk length")
        );
        // Up to 10 arguments of up to 16384 bytes pass.
        let mut parser = RequestParser::new();
        parser.set_auth_required(true);
        let mut input = b"*10\r\n$16384\r\n".to_vec();
        input.extend_from_slice(&[b'x'; 16384]);
        input.extend_from_slice(b"\r\n");
        assert_eq!(parse_with(&mut parser, &input, &limits).1, None);
        parser.set_auth_required(false);
        let (cmds, err, _) = parse_with(&mut RequestParser::new(), b"*11\r\n", &limits);
        assert_eq!((cmds.len(), err), (0, None));
    }

    #[test]
    fn large_number_of_args() {
        let mut input = b"*20002\r\n$4\r\nMSET\r\n".to_vec();
        for _ in 0..10000 {
            input.extend_from_slice(b"$1\r\nk\r\n$1\r\nv\r\n");
        }
        input.extend_from_slice(b"$4\r\n{k}2\r\n");
        let (cmds, err) = parse(&input);
        assert_eq!(err, None);
        assert_eq!(cmds.len(), 1);
        assert_eq!(cmds[0].len(), 20002);
        assert_eq!(cmds[0][20001], b"{k}2");
    }

    #[test]
    fn pipelined_blocking_commands() {
        let proto = b"*3\r\n$5\r\nBLPOP\r\n$6\r\nnolist\r\n$1\r\n0\r\n";
        let (cmds, err) = parse(&[&proto[..], &proto[..]].concat());
        assert_eq!(err, None);
        assert_eq!(cmds, vec![cmd(&["BLPOP", "nolist", "0"]); 2]);
    }

    #[test]
    fn header_crlf_is_not_checked_after_the_cr() {
        // Redis skips the byte after a header's CR and the two bytes after bulk data unseen.
        let (cmds, err) = parse(b"*1\rX$3\rXfooYZ*1\r\n$1\r\na\r\n");
        assert_eq!((cmds, err), (vec![cmd(&["foo"]), cmd(&["a"])], None));
    }

    #[test]
    fn incomplete_input_waits_and_is_kept() {
        let full = b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n";
        for cut in 0..full.len() {
            let mut parser = RequestParser::new();
            let mut buf = BytesMut::from(&full[..cut]);
            let mut args = Vec::new();
            let limits = Limits::default();
            assert_eq!(parser.next_into(&mut buf, &limits, &mut args), Ok(false));
            buf.extend_from_slice(&full[cut..]);
            assert_eq!(parser.next_into(&mut buf, &limits, &mut args), Ok(true));
            assert_eq!(args, vec![Bytes::from("GET"), Bytes::from("key")]);
            assert!(buf.is_empty());
        }
        // A partial inline line stays in the buffer.
        let mut parser = RequestParser::new();
        let (cmds, err, rest) = parse_with(&mut parser, b"PING\r\nGET ke", &Limits::default());
        assert_eq!(
            (cmds, err, rest),
            (vec![cmd(&["PING"])], None, b"GET ke".to_vec())
        );
    }

    #[test]
    fn byte_by_byte_equals_all_at_once() {
        let input: &[u8] =
            b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nset a \"b\\x41\" 'c\\'d'\n\r\n*0\r\nPING\r\n";
        let (expected, err) = parse(input);
        assert_eq!(err, None);
        let mut parser = RequestParser::new();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut args = Vec::new();
        for &b in input {
            buf.extend_from_slice(&[b]);
            while parser
                .next_into(&mut buf, &Limits::default(), &mut args)
                .unwrap()
            {
                got.push(args.iter().map(|a| a.to_vec()).collect::<Vec<_>>());
            }
        }
        assert_eq!(got, expected);
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn inline_splitting() {
        let one = |line: &[u8]| {
            let (mut cmds, err) = parse(line);
            assert_eq!(err, None, "{:?}", line);
            assert_eq!(cmds.len(), 1, "{:?}", line);
            cmds.remove(0)
        };
        assert_eq!(one(b"  set   a b  \r\n"), cmd(&["set", "a", "b"]));
        assert_eq!(one(b"set a b\n"), cmd(&["set", "a", "b"]));
        assert_eq!(one(b"set\ta\r\r\n"), cmd(&["set", "a"]));
        assert_eq!(one(b"set \"\" ''\n"), cmd(&["set", "", ""]));
        assert_eq!(
            one(b"x \"\\n\\r\\t\\b\\a\\\\\\\"\\q\"\n")[1],
            b"\n\r\t\x08\x07\\\"q"
        );
        assert_eq!(
            one(b"x \"\\x41\\xff\\x00\\xZZ\\x4\"\n")[1],
            b"A\xff\x00xZZx4"
        );
        assert_eq!(one(b"x 'a\\'b\\n\"'\n")[1], b"a'b\\n\"");
        // Quotes may open inside a token, and a closing quote may be followed by any space.
        assert_eq!(one(b"x foo\"bar baz\"\n")[1], b"foobar baz");
        assert_eq!(one(b"x \"a\"\x0bb\n"), cmd(&["x", "a", "b"]));
        // Vertical tab and form feed separate only before a token, not inside one.
        assert_eq!(one(b"\x0bx a\x0cb\n"), cmd(&["x", "a\x0cb"]));
        // Bytes outside ASCII are ordinary token bytes.
        assert_eq!(one(b"x \xff\xfe\n")[1], b"\xff\xfe");
    }

    #[test]
    fn next_into_reuses_the_callers_vector() {
        let mut parser = RequestParser::new();
        let limits = Limits::default();
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n"[..]);
        let mut args = Vec::with_capacity(8);
        assert_eq!(parser.next_into(&mut buf, &limits, &mut args), Ok(true));
        assert_eq!(args, vec![Bytes::from("GET"), Bytes::from("a")]);
        // The parser and the caller swap vectors, so after the first two commands neither
        // allocates: the capacities seen keep coming back.
        let mut capacities = Vec::new();
        for _ in 0..6 {
            buf.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\nPING\r\n");
            assert_eq!(parser.next_into(&mut buf, &limits, &mut args), Ok(true));
            assert_eq!(args.len(), 3);
            capacities.push((args.as_ptr() as usize, args.capacity()));
            assert_eq!(parser.next_into(&mut buf, &limits, &mut args), Ok(true));
            assert_eq!(args, vec![Bytes::from("PING")]);
        }
        assert_eq!(capacities[2], capacities[4]);
        assert_eq!(capacities[3], capacities[5]);
        // Not complete: false, and the vector is left empty.
        buf.extend_from_slice(b"*2\r\n$1\r\na\r\n");
        assert_eq!(parser.next_into(&mut buf, &limits, &mut args), Ok(false));
        assert!(args.is_empty());
    }

    #[test]
    fn a_huge_command_does_not_leave_huge_vectors_behind() {
        let mut parser = RequestParser::new();
        let limits = Limits::default();
        let mut input = b"*100000\r\n".to_vec();
        for _ in 0..100_000 {
            input.extend_from_slice(b"$1\r\nx\r\n");
        }
        let mut buf = BytesMut::from(&input[..]);
        let mut args = Vec::new();
        assert_eq!(parser.next_into(&mut buf, &limits, &mut args), Ok(true));
        assert_eq!(args.len(), 100_000);
        for _ in 0..2 {
            buf.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
            assert_eq!(parser.next_into(&mut buf, &limits, &mut args), Ok(true));
            assert!(args.capacity() <= MAX_PREALLOCATED_ARGS);
            assert!(parser.args.capacity() <= MAX_PREALLOCATED_ARGS);
        }
    }

    #[test]
    fn an_announced_count_reserves_nothing_beyond_what_arrives() {
        let mut parser = RequestParser::new();
        let mut buf = BytesMut::from(&b"*2147483647\r\n$1\r\na\r\n"[..]);
        let mut args = Vec::new();
        assert_eq!(
            parser.next_into(&mut buf, &Limits::default(), &mut args),
            Ok(false)
        );
        assert!(parser.args.capacity() <= MAX_PREALLOCATED_ARGS);
        assert_eq!(parser.args.len(), 1);
    }

    #[test]
    fn pending_bytes_counts_what_left_the_buffer() {
        let mut parser = RequestParser::new();
        let limits = Limits::default();
        let mut args = Vec::new();
        let slot = size_of::<Bytes>();
        let mut buf = BytesMut::new();
        assert_eq!(parser.pending_bytes(), 0);
        // An inline line in progress stays in the buffer: nothing pending in the parser.
        buf.extend_from_slice(b"SET k ");
        assert_eq!(parser.next_into(&mut buf, &limits, &mut args), Ok(false));
        assert_eq!((parser.pending_bytes(), buf.len()), (0, 6));
        buf.extend_from_slice(b"v\r\n");
        assert_eq!(parser.next_into(&mut buf, &limits, &mut args), Ok(true));

        buf.extend_from_slice(b"*4\r\n$3\r\nSET\r\n$5\r\nhello\r\n$10\r\n01234");
        assert_eq!(parser.next_into(&mut buf, &limits, &mut args), Ok(false));
        // SET and hello were split off; the partial third argument is still in the buffer.
        assert_eq!(parser.pending_bytes(), 3 + 5 + 2 * slot);
        assert_eq!(&buf[..], b"01234");
        buf.extend_from_slice(b"56789\r\n");
        assert_eq!(parser.next_into(&mut buf, &limits, &mut args), Ok(false));
        assert_eq!(parser.pending_bytes(), 3 + 5 + 10 + 3 * slot);
        assert!(buf.is_empty());
        buf.extend_from_slice(b"$0\r\n\r\n");
        assert_eq!(parser.next_into(&mut buf, &limits, &mut args), Ok(true));
        assert_eq!(args.len(), 4);
        assert_eq!(parser.pending_bytes(), 0);

        // Empty arguments still cost their slot: a client sending `*<huge>` followed by
        // endless `$0` arguments is seen growing.
        buf.extend_from_slice(b"*1000000\r\n");
        for _ in 0..1000 {
            buf.extend_from_slice(b"$0\r\n\r\n");
        }
        assert_eq!(parser.next_into(&mut buf, &limits, &mut args), Ok(false));
        assert_eq!(parser.pending_bytes(), 1000 * slot);
    }

    #[test]
    fn peek_keys_sees_complete_requests_only() {
        let mut keys = Vec::new();
        let buf = b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*3\r\n$3\r\nSET\r\n$2\r\nbb\r\n$1\r\nv\r\n*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$3\r\nccc";
        let seen = peek_keys(buf, 10, |k| keys.push(k.to_vec()));
        assert_eq!(seen, 3);
        assert_eq!(keys, vec![b"a".to_vec(), b"bb".to_vec()]);
        keys.clear();
        assert_eq!(peek_keys(buf, 1, |k| keys.push(k.to_vec())), 1);
        assert_eq!(keys, vec![b"a".to_vec()]);
        // Inline, malformed, empty: nothing.
        for bad in [
            &b"GET a\r\n"[..],
            b"*x\r\n",
            b"*2\r\n$9\r\nab\r\n",
            b"",
            b"*",
        ] {
            assert_eq!(peek_keys(bad, 10, |_| panic!("no key in {bad:?}")), 0);
        }
        let huge = b"*99999999999999999999999\r\n";
        assert_eq!(peek_keys(huge, 10, |_| {}), 0);
    }

    proptest! {
        #[test]
        fn peek_keys_never_panics_and_agrees_with_the_parser(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut peeked = Vec::new();
            peek_keys(&bytes, 64, |k| peeked.push(k.to_vec()));
            // Every key it reports is the second argument of a request the parser returns.
            let mut parser = RequestParser::new();
            let mut buf = BytesMut::from(&bytes[..]);
            let mut parsed = Vec::new();
            let mut args = Vec::new();
            while let Ok(true) = parser.next_into(&mut buf, &Limits::default(), &mut args) {
                if let Some(k) = args.get(1) {
                    parsed.push(k.to_vec());
                }
                args.clear();
            }
            prop_assert!(parsed.starts_with(&peeked), "{:?} vs {:?}", peeked, parsed);
        }

        #[test]
        fn peek_keys_finds_the_keys_of_whole_pipelines(
            reqs in proptest::collection::vec(proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..12), 1..4), 0..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut wire = Vec::new();
            for r in &reqs {
                let args: Vec<&[u8]> = r.iter().map(|a| &a[..]).collect();
                crate::encode_request(&args, &mut wire);
            }
            let cut = cut.index(wire.len() + 1);
            let wire = &wire[..cut];
            let mut peeked = Vec::new();
            peek_keys(wire, 64, |k| peeked.push(k.to_vec()));
            let mut parser = RequestParser::new();
            let mut buf = BytesMut::from(wire);
            let mut parsed = Vec::new();
            let mut args = Vec::new();
            while let Ok(true) = parser.next_into(&mut buf, &Limits::default(), &mut args) {
                if let Some(k) = args.get(1) {
                    parsed.push(k.to_vec());
                }
            }
            prop_assert_eq!(peeked, parsed);
        }
    }
}
