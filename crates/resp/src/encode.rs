//! The reply encoder: [`Reply`] values to RESP2 or RESP3 bytes, as Redis 7.0 writes them.
//!
//! RESP2 has no maps, sets, pushes, booleans, doubles or verbatim strings, so those are
//! flattened the way Redis's `addReply*` functions do for a RESP2 client. Doubles print as
//! C's `%.17g`, which [`format_double`] reproduces without libc.

use crate::Reply;
use std::fmt::Write as _;

/// Appends the encoding of `reply` to `out`, in RESP3 when `resp3` is true, else RESP2.
pub fn encode(reply: &Reply, resp3: bool, out: &mut Vec<u8>) {
    match reply {
        Reply::Ok => out.extend_from_slice(b"+OK\r\n"),
        Reply::Simple(text) => line(out, b'+', text.as_bytes()),
        Reply::Error(text) => line(out, b'-', text.as_bytes()),
        Reply::Int(n) => header(out, b':', *n),
        Reply::Bulk(data) => bulk(out, data),
        Reply::Nil if resp3 => out.extend_from_slice(b"_\r\n"),
        Reply::Nil => out.extend_from_slice(b"$-1\r\n"),
        Reply::NilArray if resp3 => out.extend_from_slice(b"_\r\n"),
        Reply::NilArray => out.extend_from_slice(b"*-1\r\n"),
        Reply::Array(items) => aggregate(out, b'*', items, resp3),
        Reply::Set(items) => aggregate(out, if resp3 { b'~' } else { b'*' }, items, resp3),
        Reply::Push(items) => aggregate(out, if resp3 { b'>' } else { b'*' }, items, resp3),
        Reply::Multiple(replies) => {
            for reply in replies {
                encode(reply, resp3, out);
            }
        }
        Reply::Attribute(pairs, reply) => {
            if resp3 {
                header(out, b'|', len_i64(pairs.len()));
                for (key, value) in pairs {
                    encode(key, resp3, out);
                    encode(value, resp3, out);
                }
            }
            encode(reply, resp3, out);
        }
        Reply::Map(pairs) => {
            if resp3 {
                header(out, b'%', len_i64(pairs.len()));
            } else {
                header(out, b'*', len_i64(pairs.len()).saturating_mul(2));
            }
            for (key, value) in pairs {
                encode(key, resp3, out);
                encode(value, resp3, out);
            }
        }
        Reply::Double(v) if resp3 => {
            out.push(b',');
            write_double(*v, out);
            out.extend_from_slice(b"\r\n");
        }
        Reply::Double(v) => {
            let mut text = DoubleBuf::new();
            text.write_g17(*v);
            bulk(out, text.as_bytes());
        }
        Reply::Bool(b) if resp3 => out.extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
        Reply::Bool(b) => out.extend_from_slice(if *b { b":1\r\n" } else { b":0\r\n" }),
        Reply::Verbatim(data) if resp3 => {
            header(out, b'=', len_i64(data.len()).saturating_add(4));
            out.extend_from_slice(b"txt:");
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
        }
        Reply::Verbatim(data) => bulk(out, data),
        Reply::BigNumber(digits) if resp3 => line(out, b'(', digits),
        Reply::BigNumber(digits) => bulk(out, digits),
        Reply::VerbatimAs(format, data) if resp3 => {
            header(out, b'=', len_i64(data.len()).saturating_add(4));
            out.extend_from_slice(format);
            out.push(b':');
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
        }
        Reply::VerbatimAs(_, data) => bulk(out, data),
    }
}

/// Appends a request in multibulk form (`*<n>` then one bulk string per argument), as a
/// client sends it.
pub fn encode_request(args: &[&[u8]], out: &mut Vec<u8>) {
    header(out, b'*', len_i64(args.len()));
    for arg in args {
        bulk(out, arg);
    }
}

/// Formats a double as C's `printf("%.17g")` does (glibc), which is how Redis 7.0 prints
/// doubles: 17 significant digits, trailing zeros dropped, exponent form (`1e+17`) when the
/// exponent is below -4 or above 16; `inf`, `-inf`, and `nan` for every NaN.
pub fn format_double(v: f64) -> String {
    let mut text = DoubleBuf::new();
    text.write_g17(v);
    String::from_utf8_lossy(text.as_bytes()).into_owned()
}

/// Appends `format_double(v)` without allocating.
fn write_double(v: f64, out: &mut Vec<u8>) {
    let mut text = DoubleBuf::new();
    text.write_g17(v);
    out.extend_from_slice(text.as_bytes());
}

/// A collection length as a RESP length (lengths of in-memory collections fit).
fn len_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `<kind><n>\r\n`.
fn header(out: &mut Vec<u8>, kind: u8, n: i64) {
    let mut digits = itoa::Buffer::new();
    out.push(kind);
    out.extend_from_slice(digits.format(n).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `$<len>\r\n<data>\r\n`.
fn bulk(out: &mut Vec<u8>, data: &[u8]) {
    out.reserve(data.len() + 16);
    header(out, b'$', len_i64(data.len()));
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// A one-line reply (`+` or `-`). CR and LF in the text become spaces, as Redis does for
/// errors, since they would end the line early and desynchronise the client.
fn line(out: &mut Vec<u8>, kind: u8, text: &[u8]) {
    out.push(kind);
    let start = out.len();
    out.extend_from_slice(text);
    if memchr::memchr2(b'\r', b'\n', text).is_some() {
        for b in &mut out[start..] {
            if *b == b'\r' || *b == b'\n' {
                *b = b' ';
            }
        }
    }
    out.extend_from_slice(b"\r\n");
}

fn aggregate(out: &mut Vec<u8>, kind: u8, items: &[Reply], resp3: bool) {
    header(out, kind, len_i64(items.len()));
    for item in items {
        encode(item, resp3, out);
    }
}

/// A stack buffer for one formatted double: `-d.dddddddddddddddde-308` is 24 bytes.
struct DoubleBuf {
    buf: [u8; 32],
    len: usize,
}

impl std::fmt::Write for DoubleBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl DoubleBuf {
    fn new() -> Self {
        DoubleBuf {
            buf: [0; 32],
            len: 0,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn push(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            dst.copy_from_slice(bytes);
            self.len = end;
        }
    }

    /// Writes `%.17g` of `v`.
    ///
    /// `%g` with precision P picks the digits of `%.{P-1}e` and, when the exponent X
    /// satisfies -4 <= X < P, prints those same digits in fixed notation; either way trailing
    /// zeros of the fraction go.
    fn write_g17(&mut self, v: f64) {
        if v.is_nan() {
            return self.push(b"nan");
        }
        if v.is_sign_negative() {
            self.push(b"-");
        }
        let v = v.abs();
        if v.is_infinite() {
            return self.push(b"inf");
        }
        let (digits, exp) = exact_digits(v).unwrap_or_else(|| rounded_digits(v));
        let significant = digits.iter().rposition(|&c| c != b'0').map_or(1, |i| i + 1);

        if !(-4..17).contains(&exp) {
            self.push(&digits[..1]);
            if significant > 1 {
                self.push(b".");
                self.push(&digits[1..significant]);
            }
            self.push(if exp < 0 { b"e-" } else { b"e+" });
            let magnitude = exp.unsigned_abs();
            if magnitude < 10 {
                self.push(b"0");
            }
            let mut n = itoa::Buffer::new();
            self.push(n.format(magnitude).as_bytes());
        } else if exp >= 0 {
            let int_len = exp as usize + 1;
            self.push(&digits[..int_len]);
            if significant > int_len {
                self.push(b".");
                self.push(&digits[int_len..significant]);
            }
        } else {
            self.push(b"0.");
            for _ in 0..(-exp - 1) {
                self.push(b"0");
            }
            self.push(&digits[..significant]);
        }
    }
}

/// The 17 significant digits of `v` (positive, finite) and its decimal exponent, when its
/// exact decimal expansion has at most 17 significant digits (integers below 10^17 and short
/// binary fractions such as 1.5 or 0.125, the common scores): then `%.17g` does no rounding
/// and the digits come from integer arithmetic, several times faster than formatting.
fn exact_digits(v: f64) -> Option<([u8; 17], i32)> {
    const LIMIT: u128 = 100_000_000_000_000_000; // 10^17
    let bits = v.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    if biased == 0 {
        return None; // zero and subnormals: rare, left to the general path
    }
    let mut mantissa = (bits & ((1 << 52) - 1)) | (1 << 52);
    let mut exp2 = biased - 1075; // v = mantissa * 2^exp2
    let shift = mantissa.trailing_zeros().min(exp2.unsigned_abs());
    if exp2 < 0 {
        mantissa >>= shift;
        exp2 += shift as i32;
    }
    // v = value / 10^scale exactly: m * 2^-k = m * 5^k / 10^k.
    let (value, scale) = if exp2 >= 64 {
        return None;
    } else if exp2 >= 0 {
        // mantissa < 2^53, so the shift stays below 2^117.
        (u128::from(mantissa) << exp2, 0)
    } else {
        let k = exp2.unsigned_abs();
        if k > 27 {
            return None;
        }
        (u128::from(mantissa) * 5u128.pow(k), k as i32)
    };
    if value >= LIMIT {
        return None;
    }
    // Below 10^17, so it fits a u64, which formats much faster than a u128.
    let value = u64::try_from(value).ok()?;
    let mut text = itoa::Buffer::new();
    let printed = text.format(value).as_bytes();
    let mut digits = [b'0'; 17];
    digits[..printed.len()].copy_from_slice(printed);
    Some((digits, printed.len() as i32 - 1 - scale))
}

/// The 17 significant digits of `v` (positive, finite) rounded as glibc does (correctly,
/// ties to even on the exact binary value, which is what Rust's `{:.16e}` does too) and
/// its decimal exponent.
fn rounded_digits(v: f64) -> ([u8; 17], i32) {
    let mut sci = DoubleBuf::new();
    // Cannot fail: at most 23 bytes ("d.dddddddddddddddde-308").
    let _ = write!(sci, "{:.16e}", v);
    let sci = sci.as_bytes();
    let e_pos = sci.iter().position(|&c| c == b'e').unwrap_or(sci.len());
    let exp = std::str::from_utf8(sci.get(e_pos + 1..).unwrap_or_default())
        .ok()
        .and_then(|e| e.parse().ok())
        .unwrap_or(0);
    let mut digits = [b'0'; 17];
    let mantissa = sci[..e_pos].iter().filter(|c| c.is_ascii_digit());
    for (d, &c) in digits.iter_mut().zip(mantissa) {
        *d = c;
    }
    (digits, exp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn enc(reply: &Reply, resp3: bool) -> String {
        let mut out = Vec::new();
        encode(reply, resp3, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    fn both(reply: Reply, resp2: &str, resp3: &str) {
        assert_eq!(enc(&reply, false), resp2, "RESP2 {:?}", reply);
        assert_eq!(enc(&reply, true), resp3, "RESP3 {:?}", reply);
    }

    #[test]
    fn attributes_precede_their_reply_in_resp3_only() {
        both(
            Reply::Attribute(
                vec![(Reply::bulk(b"k"), Reply::Int(1))],
                Box::new(Reply::bulk(b"v")),
            ),
            "$1\r\nv\r\n",
            "|1\r\n$1\r\nk\r\n:1\r\n$1\r\nv\r\n",
        );
    }

    #[test]
    fn scalars() {
        both(Reply::Ok, "+OK\r\n", "+OK\r\n");
        both(Reply::simple("QUEUED"), "+QUEUED\r\n", "+QUEUED\r\n");
        both(Reply::Int(0), ":0\r\n", ":0\r\n");
        both(
            Reply::Int(i64::MIN),
            ":-9223372036854775808\r\n",
            ":-9223372036854775808\r\n",
        );
        both(
            Reply::Int(i64::MAX),
            ":9223372036854775807\r\n",
            ":9223372036854775807\r\n",
        );
        both(Reply::bulk(b"hi"), "$2\r\nhi\r\n", "$2\r\nhi\r\n");
        both(Reply::bulk(b""), "$0\r\n\r\n", "$0\r\n\r\n");
        both(Reply::Nil, "$-1\r\n", "_\r\n");
        both(Reply::NilArray, "*-1\r\n", "_\r\n");
        both(Reply::Bool(true), ":1\r\n", "#t\r\n");
        both(Reply::Bool(false), ":0\r\n", "#f\r\n");
        both(Reply::Double(1.5), "$3\r\n1.5\r\n", ",1.5\r\n");
        both(
            Reply::Double(0.1),
            "$19\r\n0.10000000000000001\r\n",
            ",0.10000000000000001\r\n",
        );
        both(Reply::Double(f64::INFINITY), "$3\r\ninf\r\n", ",inf\r\n");
        both(
            Reply::Double(f64::NEG_INFINITY),
            "$4\r\n-inf\r\n",
            ",-inf\r\n",
        );
        both(Reply::Double(f64::NAN), "$3\r\nnan\r\n", ",nan\r\n");
        both(
            Reply::Verbatim(Bytes::from("a\nb")),
            "$3\r\na\nb\r\n",
            "=7\r\ntxt:a\nb\r\n",
        );
    }

    #[test]
    fn errors_and_statuses_stay_on_one_line() {
        both(Reply::err("ERR x"), "-ERR x\r\n", "-ERR x\r\n");
        both(
            Reply::error("ERR bad\r\nthing\n".into()),
            "-ERR bad  thing \r\n",
            "-ERR bad  thing \r\n",
        );
        both(Reply::Simple("a\rb".into()), "+a b\r\n", "+a b\r\n");
    }

    #[test]
    fn aggregates() {
        let items = || vec![Reply::Int(1), Reply::bulk(b"a")];
        both(
            Reply::Array(items()),
            "*2\r\n:1\r\n$1\r\na\r\n",
            "*2\r\n:1\r\n$1\r\na\r\n",
        );
        both(Reply::Array(vec![]), "*0\r\n", "*0\r\n");
        both(
            Reply::Set(items()),
            "*2\r\n:1\r\n$1\r\na\r\n",
            "~2\r\n:1\r\n$1\r\na\r\n",
        );
        both(
            Reply::Push(items()),
            "*2\r\n:1\r\n$1\r\na\r\n",
            ">2\r\n:1\r\n$1\r\na\r\n",
        );
        both(
            Reply::Map(vec![(Reply::bulk(b"k"), Reply::Double(2.0))]),
            "*2\r\n$1\r\nk\r\n$1\r\n2\r\n",
            "%1\r\n$1\r\nk\r\n,2\r\n",
        );
        both(Reply::Map(vec![]), "*0\r\n", "%0\r\n");
        both(
            Reply::Array(vec![Reply::Nil, Reply::Array(vec![Reply::Bool(true)])]),
            "*2\r\n$-1\r\n*1\r\n:1\r\n",
            "*2\r\n_\r\n*1\r\n#t\r\n",
        );
    }

    #[test]
    fn requests() {
        let mut out = Vec::new();
        encode_request(&[b"SET", b"k", b"a\r\nb"], &mut out);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n");
        out.clear();
        encode_request(&[], &mut out);
        assert_eq!(out, b"*0\r\n");
    }

    #[test]
    fn g17_matches_c() {
        assert_eq!(format_double(1.5), "1.5");
        assert_eq!(format_double(3.0), "3");
        assert_eq!(format_double(0.1), "0.10000000000000001");
        assert_eq!(format_double(1e17), "1e+17");
        assert_eq!(format_double(1e16), "10000000000000000");
        assert_eq!(format_double(0.0001), "0.0001");
        assert_eq!(format_double(0.00001), "1.0000000000000001e-05");
        assert_eq!(format_double(-2.5), "-2.5");
        assert_eq!(format_double(f64::INFINITY), "inf");
        assert_eq!(format_double(f64::NEG_INFINITY), "-inf");
        assert_eq!(format_double(f64::NAN), "nan");
        assert_eq!(format_double(-f64::NAN), "nan");
        assert_eq!(format_double(0.0), "0");
        assert_eq!(format_double(-0.0), "-0");
        assert_eq!(format_double(f64::MAX), "1.7976931348623157e+308");
        assert_eq!(format_double(f64::MIN_POSITIVE), "2.2250738585072014e-308");
        assert_eq!(format_double(5e-324), "4.9406564584124654e-324");
        assert_eq!(format_double(123456789.125), "123456789.125");
        assert_eq!(format_double(1e100), "1e+100");
        assert_eq!(format_double(2.71), "2.71");
        assert_eq!(format_double(0.3), "0.29999999999999999");
        assert_eq!(format_double(-1.0e-5), "-1.0000000000000001e-05");
        assert_eq!(format_double(99999999999999999.0), "1e+17");
    }
}
