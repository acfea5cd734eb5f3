//! Stream entry IDs (`<ms>-<seq>`, two unsigned 64-bit numbers) and the ways clients write
//! them, parsed exactly as Redis 7.0's `streamGenericParseIDOrReply` does.
//!
//! Redis reads an ID argument as a C string: it stops at the first NUL byte, and each number
//! goes through `string2ull`, which takes a canonical integer or falls back to `strtoull`
//! (leading spaces, a `+` sign, leading zeros, even `-0` are accepted). Those quirks are
//! reproduced so that every ID Redis accepts is accepted here, and no other.

use bytes::Bytes;
use shardis_resp::Reply;

use crate::num;

pub const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";
const INVALID_START: &str = "ERR invalid start ID for the interval";
const INVALID_END: &str = "ERR invalid end ID for the interval";

/// Longest ID argument Redis reads (its parse buffer is 128 bytes with the terminator).
const MAX_ID_LEN: usize = 127;

/// An entry ID. The derived order (milliseconds, then sequence) is the stream's order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub const fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    pub fn is_zero(self) -> bool {
        self == StreamId::MIN
    }

    /// The next ID, None after the last possible one.
    pub fn next(self) -> Option<StreamId> {
        match (self.ms, self.seq) {
            (u64::MAX, u64::MAX) => None,
            (ms, u64::MAX) => Some(StreamId::new(ms + 1, 0)),
            (ms, seq) => Some(StreamId::new(ms, seq + 1)),
        }
    }

    /// The previous ID, None before 0-0.
    pub fn prev(self) -> Option<StreamId> {
        match (self.ms, self.seq) {
            (0, 0) => None,
            (ms, 0) => Some(StreamId::new(ms - 1, u64::MAX)),
            (ms, seq) => Some(StreamId::new(ms, seq - 1)),
        }
    }

    /// `<ms>-<seq>`.
    pub fn to_bytes(self) -> Bytes {
        Bytes::from(format!("{}-{}", self.ms, self.seq))
    }

    /// The ID as a bulk string reply.
    pub fn reply(self) -> Reply {
        Reply::Bulk(self.to_bytes())
    }
}

/// The bytes of `arg` up to its first NUL: what Redis sees when it reads the argument as a C
/// string (IDs, `$`, `>`, option names).
pub fn c_str(arg: &[u8]) -> &[u8] {
    match memchr_nul(arg) {
        Some(end) => &arg[..end],
        None => arg,
    }
}

fn memchr_nul(arg: &[u8]) -> Option<usize> {
    arg.iter().position(|&b| b == 0)
}

/// True if `arg`, read as a C string, is `word` ignoring ASCII case (Redis's `strcasecmp`).
pub fn is_word(arg: &[u8], word: &str) -> bool {
    c_str(arg).eq_ignore_ascii_case(word.as_bytes())
}

/// Redis's `string2ull`: a canonical integer (negative ones refused), else what `strtoull`
/// reads in base 10 when it consumes the whole string.
fn string2ull(s: &[u8]) -> Option<u64> {
    if let Some(n) = num::parse_i64(s) {
        return u64::try_from(n).ok();
    }
    strtoull(s)
}

/// C's `strtoull(s, &end, 10)` when it must consume all of `s` without overflowing: leading
/// white space, an optional sign (a minus negates modulo 2^64), at least one digit.
fn strtoull(s: &[u8]) -> Option<u64> {
    let start = s
        .iter()
        .position(|&c| !matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r'))?;
    let s = &s[start..];
    let (negative, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if negative { v.wrapping_neg() } else { v })
}

/// How an ID argument may be written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    /// `-` and `+` stand for the smallest and largest IDs.
    WithSpecials,
    /// `-` and `+` are invalid (IDs of real entries).
    Strict,
}

/// The parsed ID, or the milliseconds of an XADD `<ms>-*` ID.
enum Parsed {
    Id(StreamId),
    MsOnly(u64),
}

fn parse_generic(arg: &[u8], missing_seq: u64, form: Form, allow_ms_only: bool) -> Option<Parsed> {
    if arg.len() > MAX_ID_LEN {
        return None;
    }
    let s = c_str(arg);
    match (s, form) {
        (b"-" | b"+", Form::Strict) => return None,
        (b"-", Form::WithSpecials) => return Some(Parsed::Id(StreamId::MIN)),
        (b"+", Form::WithSpecials) => return Some(Parsed::Id(StreamId::MAX)),
        _ => {}
    }
    let (ms, seq) = match s.iter().position(|&c| c == b'-') {
        Some(dash) => (&s[..dash], Some(&s[dash + 1..])),
        None => (s, None),
    };
    let ms = string2ull(ms)?;
    match seq {
        None => Some(Parsed::Id(StreamId::new(ms, missing_seq))),
        Some(b"*") if allow_ms_only => Some(Parsed::MsOnly(ms)),
        Some(seq) => Some(Parsed::Id(StreamId::new(ms, string2ull(seq)?))),
    }
}

/// An ID where `-` and `+` are allowed; a missing sequence is `missing_seq`.
pub fn parse_id(arg: &[u8], missing_seq: u64) -> Result<StreamId, Reply> {
    match parse_generic(arg, missing_seq, Form::WithSpecials, false) {
        Some(Parsed::Id(id)) => Ok(id),
        _ => Err(Reply::err(INVALID_ID)),
    }
}

/// The ID of an entry: `-` and `+` are invalid; a missing sequence is 0.
pub fn parse_strict_id(arg: &[u8]) -> Result<StreamId, Reply> {
    match parse_generic(arg, 0, Form::Strict, false) {
        Some(Parsed::Id(id)) => Ok(id),
        _ => Err(Reply::err(INVALID_ID)),
    }
}

/// The ID argument of XADD (other than `*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewId {
    /// `*`: milliseconds from the clock, sequence generated.
    Auto,
    /// A full ID.
    Explicit(StreamId),
    /// `<ms>-*`: the sequence is generated.
    MsOnly(u64),
}

/// Parses an explicit XADD ID (`<ms>`, `<ms>-<seq>` or `<ms>-*`).
pub fn parse_new_id(arg: &[u8]) -> Result<NewId, Reply> {
    match parse_generic(arg, 0, Form::Strict, true) {
        Some(Parsed::Id(id)) => Ok(NewId::Explicit(id)),
        Some(Parsed::MsOnly(ms)) => Ok(NewId::MsOnly(ms)),
        None => Err(Reply::err(INVALID_ID)),
    }
}

/// One end of a range (XRANGE, XPENDING, XAUTOCLAIM): a `(` prefix makes it exclusive, which
/// requires a strict ID. Returns the ID and whether it is exclusive.
fn parse_interval(arg: &[u8], missing_seq: u64) -> Result<(StreamId, bool), Reply> {
    match arg.strip_prefix(b"(") {
        Some(rest) if !rest.is_empty() => {
            match parse_generic(rest, missing_seq, Form::Strict, false) {
                Some(Parsed::Id(id)) => Ok((id, true)),
                _ => Err(Reply::err(INVALID_ID)),
            }
        }
        _ => parse_id(arg, missing_seq).map(|id| (id, false)),
    }
}

/// The inclusive start of a range: a missing sequence is 0, `(id` starts after `id`.
pub fn parse_range_start(arg: &[u8]) -> Result<StreamId, Reply> {
    match parse_interval(arg, 0)? {
        (id, false) => Ok(id),
        (id, true) => id.next().ok_or(Reply::err(INVALID_START)),
    }
}

/// The inclusive end of a range: a missing sequence is the largest, `(id` ends before `id`.
pub fn parse_range_end(arg: &[u8]) -> Result<StreamId, Reply> {
    match parse_interval(arg, u64::MAX)? {
        (id, false) => Ok(id),
        (id, true) => id.prev().ok_or(Reply::err(INVALID_END)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64, seq: u64) -> StreamId {
        StreamId::new(ms, seq)
    }

    #[test]
    fn ids_order_and_step() {
        assert!(id(1, 5) < id(2, 0));
        assert!(id(2, 0) < id(2, 1));
        assert_eq!(id(1, u64::MAX).next(), Some(id(2, 0)));
        assert_eq!(StreamId::MAX.next(), None);
        assert_eq!(id(2, 0).prev(), Some(id(1, u64::MAX)));
        assert_eq!(StreamId::MIN.prev(), None);
        assert_eq!(&id(12, 3).to_bytes()[..], b"12-3");
    }

    #[test]
    fn parses_as_redis_string2ull() {
        assert_eq!(parse_strict_id(b"5"), Ok(id(5, 0)));
        assert_eq!(parse_id(b"5", u64::MAX), Ok(id(5, u64::MAX)));
        assert_eq!(parse_strict_id(b"5-3"), Ok(id(5, 3)));
        // strtoull's leniency, as Redis.
        assert_eq!(parse_strict_id(b"007-1"), Ok(id(7, 1)));
        assert_eq!(parse_strict_id(b"+7-1"), Ok(id(7, 1)));
        assert_eq!(parse_strict_id(b" 7- 1"), Ok(id(7, 1)));
        assert_eq!(parse_strict_id(b"1--0"), Ok(id(1, 0)));
        assert_eq!(
            parse_strict_id(b"1--18446744073709551615"),
            Ok(id(1, 1)),
            "strtoull negates modulo 2^64"
        );
        assert_eq!(
            parse_strict_id(b"18446744073709551615-18446744073709551615"),
            Ok(StreamId::MAX)
        );
        // Everything after a NUL is ignored.
        assert_eq!(parse_strict_id(b"5-1\0junk"), Ok(id(5, 1)));
        for bad in [
            &b""[..],
            b"-",
            b"+",
            b"abc",
            b"1-",
            b"-1",
            b"1--1",
            b"1-2-3",
            b"18446744073709551616",
            b"1-x",
            b" ",
            b"1 ",
            b"\x005",
        ] {
            assert_eq!(
                parse_strict_id(bad),
                Err(Reply::err(INVALID_ID)),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = format!("{}1", "0".repeat(127));
        assert_eq!(
            parse_strict_id(long.as_bytes()),
            Err(Reply::err(INVALID_ID))
        );
        assert_eq!(parse_strict_id(&long.as_bytes()[1..]), Ok(id(1, 0)));
    }

    #[test]
    fn specials_only_where_allowed() {
        assert_eq!(parse_id(b"-", 0), Ok(StreamId::MIN));
        assert_eq!(parse_id(b"+", 0), Ok(StreamId::MAX));
        assert_eq!(parse_id(b"+\0x", 0), Ok(StreamId::MAX));
        assert_eq!(parse_new_id(b"5-*"), Ok(NewId::MsOnly(5)));
        assert_eq!(parse_new_id(b"5"), Ok(NewId::Explicit(id(5, 0))));
        assert_eq!(parse_new_id(b"*"), Err(Reply::err(INVALID_ID)));
        assert_eq!(parse_new_id(b"*-1"), Err(Reply::err(INVALID_ID)));
        assert_eq!(parse_strict_id(b"5-*"), Err(Reply::err(INVALID_ID)));
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_range_start(b"-"), Ok(StreamId::MIN));
        assert_eq!(parse_range_end(b"+"), Ok(StreamId::MAX));
        assert_eq!(parse_range_start(b"(5-1"), Ok(id(5, 2)));
        assert_eq!(parse_range_end(b"(5-0"), Ok(id(4, u64::MAX)));
        assert_eq!(parse_range_start(b"(5"), Ok(id(5, 1)));
        assert_eq!(parse_range_end(b"(5"), Ok(id(5, u64::MAX - 1)));
        assert_eq!(parse_range_start(b"("), Err(Reply::err(INVALID_ID)));
        assert_eq!(parse_range_start(b"(-"), Err(Reply::err(INVALID_ID)));
        assert_eq!(parse_range_end(b"(+"), Err(Reply::err(INVALID_ID)));
        assert_eq!(
            parse_range_start(b"(18446744073709551615-18446744073709551615"),
            Err(Reply::err(INVALID_START))
        );
        assert_eq!(parse_range_end(b"(0-0"), Err(Reply::err(INVALID_END)));
    }
}
