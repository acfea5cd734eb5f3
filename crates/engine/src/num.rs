//! Number parsing and formatting with Redis's exact rules.
//!
//! Redis accepts integers only in canonical form (`string2ll`: no sign `+`, no spaces, no
//! leading zeros) and floats as `strtod` reads them minus spaces and NaN; it prints doubles
//! as `%.17g` and INCRBYFLOAT results in their shortest human form.

/// Parses a canonical signed 64-bit integer as Redis's `string2ll` does.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    if negative {
        if v > (i64::MAX as u64) + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else if v > i64::MAX as u64 {
        None
    } else {
        Some(v as i64)
    }
}

/// Parses an unsigned 64-bit integer in canonical form.
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    if s == b"0" {
        return Some(0);
    }
    match s.first() {
        Some(b'1'..=b'9') if s.len() <= 20 => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(v)
}

/// True when `s` is exactly how `n` prints (so it can be stored as an integer).
pub fn i64_canonical(s: &[u8], n: i64) -> bool {
    let mut buf = itoa_buf();
    format_i64(n, &mut buf) == s
}

fn itoa_buf() -> [u8; 20] {
    [0; 20]
}

fn format_i64(n: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    let negative = n < 0;
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if negative {
        // 20 digits fit only for u64::MAX, never for an i64 with a sign, so i ≥ 1 here.
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

/// Parses a float as Redis's `getDoubleFromObject`: what `strtod` accepts, with no leading
/// space, nothing trailing, and no NaN.
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(s).ok()?;
    if text.is_empty() || text.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let v: f64 = match text.parse() {
        Ok(v) => v,
        Err(_) => parse_strtod_extras(text)?,
    };
    if v.is_nan() {
        return None;
    }
    Some(v)
}

/// The spellings `strtod` accepts that Rust's parser does not: a leading `+` before inf
/// forms and hexadecimal floats are rare; only the infinity spellings are handled.
fn parse_strtod_extras(text: &str) -> Option<f64> {
    let lower = text.to_ascii_lowercase();
    match lower.as_str() {
        "+inf" | "+infinity" => Some(f64::INFINITY),
        _ => None,
    }
}

/// Formats a double as C's `%.17g` (Redis's reply format for doubles); the encoder's
/// implementation, so replies and stored strings agree.
pub use shardis_resp::format_double as format_g17;

/// Formats an INCRBYFLOAT / HINCRBYFLOAT result: the shortest decimal that reads back as the
/// same double, never in exponent form (Redis prints these with `%.17Lf`-style humanized
/// long doubles, which show no exponent and no trailing zeros).
pub fn format_human(v: f64) -> String {
    let s = format!("{}", v);
    if s == "-0" {
        "0".into()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_canonical_only() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b"9223372036854775808"[..],
            b"+1",
            b"01",
            b"-0",
            b" 1",
            b"1 ",
            b"",
            b"-",
            b"1a",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", bad);
        }
    }

    #[test]
    fn floats_reject_spaces_and_nan() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b" 1"), None);
        assert_eq!(parse_f64(b"nan"), None);
        assert_eq!(parse_f64(b"1x"), None);
    }
}
