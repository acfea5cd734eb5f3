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
/// space, nothing trailing, no NaN, and no literal out of the double's range.
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    let v = parse_f64_unranged(s)?;
    // Valid UTF-8, or the parse above failed.
    let text = std::str::from_utf8(s).ok()?;
    (!strtod_range_error(text, v)).then_some(v)
}

/// Like [`parse_f64`], but a literal beyond the double's range reads as infinity or zero
/// (for values Redis reads as long doubles, whose range is wider).
pub fn parse_f64_unranged(s: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(s).ok()?;
    if text.is_empty() || text.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let v: f64 = match text.parse() {
        Ok(v) => v,
        Err(_) => parse_strtod_extras(text)?,
    };
    (!v.is_nan()).then_some(v)
}

/// True when `strtod` would report a range error Redis rejects: a finite literal that
/// overflows to infinity, or a non-zero one that underflows to zero (`1e400`, `1e-400`).
pub fn strtod_range_error(text: &str, v: f64) -> bool {
    let mantissa = text.split(['e', 'E']).next().unwrap_or("");
    let inf_literal = mantissa.chars().any(|c| c.is_ascii_alphabetic());
    let overflow = v.is_infinite() && !inf_literal;
    let underflow = v == 0.0 && mantissa.chars().any(|c| ('1'..='9').contains(&c));
    overflow || underflow
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

/// Formats an integer the way Redis stores and prints it, as an owned string value (one
/// allocation of exactly the digits' size).
pub fn i64_bytes(n: i64) -> bytes::Bytes {
    let mut buf = itoa_buf();
    bytes::Bytes::copy_from_slice(format_i64(n, &mut buf))
}

/// Longest text Redis reads as a long double (`MAX_LONG_DOUBLE_CHARS` less the terminator).
const LONG_DOUBLE_MAX_CHARS: usize = 5 * 1024 - 1;
/// Exponent of the lowest mantissa bit of the smallest (subnormal) x87 extended number.
const LD_MIN_EXP: i64 = -16445;
/// Exponent of the lowest mantissa bit of the largest x87 extended numbers.
const LD_MAX_EXP: i64 = 16320;
/// Decimal exponents past which a non-zero literal surely overflows or underflows to zero.
const LD_DECIMAL_OVERFLOW: i64 = 4934;
const LD_DECIMAL_UNDERFLOW: i64 = -4952;
/// Literal exponents are saturated here: far beyond both limits, far from i64 overflow.
const EXPONENT_CAP: i64 = 1 << 40;

/// A number with the precision and range of the x87 80-bit `long double` Redis computes
/// INCRBYFLOAT and HINCRBYFLOAT with on x86-64 (64-bit mantissa, 15-bit exponent, rounding
/// to nearest even). Emulated in software so that results, and so their printed digits,
/// are exactly Redis's: plain `f64` arithmetic would print `1 + -1.1` as
/// `-0.10000000000000009` where Redis prints `-0.1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LongDouble {
    /// `mantissa × 2^exp`; zero when the mantissa is 0 (the sign is kept, as in IEEE).
    Finite {
        negative: bool,
        mantissa: u64,
        exp: i64,
    },
    Infinite {
        negative: bool,
    },
    NaN,
}

impl LongDouble {
    fn zero(negative: bool) -> LongDouble {
        LongDouble::Finite {
            negative,
            mantissa: 0,
            exp: LD_MIN_EXP,
        }
    }

    /// The exact value of an integer (every i64 fits in 64 mantissa bits).
    pub fn from_i64(n: i64) -> LongDouble {
        round_extended(
            n < 0,
            &BigUint::from_u128(n.unsigned_abs() as u128),
            0,
            false,
        )
    }

    /// The exact value of a double (every double is an extended number).
    pub fn from_f64(v: f64) -> LongDouble {
        if v.is_nan() {
            return LongDouble::NaN;
        }
        let negative = v.is_sign_negative();
        if v.is_infinite() {
            return LongDouble::Infinite { negative };
        }
        let bits = v.to_bits();
        let biased = ((bits >> 52) & 0x7ff) as i64;
        let fraction = bits & ((1 << 52) - 1);
        let (mantissa, exp2) = if biased == 0 {
            (fraction, -1074)
        } else {
            (fraction | (1 << 52), biased - 1075)
        };
        round_extended(negative, &BigUint::from_u128(mantissa as u128), exp2, false)
    }

    pub fn is_finite(&self) -> bool {
        matches!(self, LongDouble::Finite { .. })
    }

    /// Parses as Redis's `string2ld`: what `strtold` reads (decimal or hexadecimal, `inf`,
    /// `infinity`), whole, with no leading space, no NaN, and nothing that overflows or
    /// underflows to zero. Denormal results are accepted, as there.
    pub fn parse(s: &[u8]) -> Option<LongDouble> {
        if s.is_empty() || s.len() > LONG_DOUBLE_MAX_CHARS {
            return None;
        }
        let (negative, body) = match s[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
            return Some(LongDouble::Infinite { negative });
        }
        let hex = body.len() > 2 && body[0] == b'0' && (body[1] | 0x20) == b'x';
        let literal = if hex {
            parse_literal(&body[2..], 16, b'p')?
        } else {
            parse_literal(body, 10, b'e')?
        };
        if literal.digits.is_zero() {
            return Some(LongDouble::zero(negative));
        }
        let value = if hex {
            let exp2 = literal.exp.saturating_sub(4 * literal.frac_digits as i64);
            round_extended(negative, &literal.digits, exp2, false)
        } else {
            decimal_to_extended(
                negative,
                literal.digits,
                literal.exp - literal.frac_digits as i64,
            )?
        };
        match value {
            LongDouble::Finite { mantissa: 0, .. } | LongDouble::Infinite { .. } => None,
            v => Some(v),
        }
    }

    /// Redis's human-friendly long double text (`ld2string` in human mode): `%.17Lf`, then
    /// trailing zeros and a bare dot removed, and `-0` printed as `0`. Never an exponent.
    pub fn to_human(&self) -> String {
        let (negative, mantissa, exp) = match *self {
            LongDouble::NaN => return "nan".into(),
            LongDouble::Infinite { negative } => {
                return if negative { "-inf" } else { "inf" }.into();
            }
            LongDouble::Finite {
                negative,
                mantissa,
                exp,
            } => (negative, mantissa, exp),
        };
        let mut out = String::new();
        if negative {
            out.push('-');
        }
        if exp >= 0 {
            // An integer: its 17 decimals are all zeros, which the trimming removes.
            out.push_str(
                &BigUint::from_u128(mantissa as u128)
                    .shl(exp as u64)
                    .to_decimal(),
            );
        } else {
            // value × 10^17 = mantissa × 10^17 / 2^-exp, rounded to nearest even: the
            // product stays below 2^121.
            const SCALE: u128 = 100_000_000_000_000_000;
            let product = mantissa as u128 * SCALE;
            let shift = (-exp) as u32;
            let scaled = if shift >= 128 {
                0
            } else {
                let q = product >> shift;
                let rem = product & ((1u128 << shift) - 1);
                let half = 1u128 << (shift - 1);
                if rem > half || (rem == half && q & 1 == 1) {
                    q + 1
                } else {
                    q
                }
            };
            let digits = format!("{:018}", scaled);
            let (int_part, frac) = digits.split_at(digits.len() - 17);
            out.push_str(int_part);
            let frac = frac.trim_end_matches('0');
            if !frac.is_empty() {
                out.push('.');
                out.push_str(frac);
            }
        }
        if out == "-0" {
            out.remove(0);
        }
        out
    }
}

impl std::ops::Add for LongDouble {
    type Output = LongDouble;

    /// The sum, rounded to nearest even as the x87 unit does.
    fn add(self, other: LongDouble) -> LongDouble {
        use LongDouble::*;
        match (self, other) {
            (NaN, _) | (_, NaN) => NaN,
            (Infinite { negative: a }, Infinite { negative: b }) if a != b => NaN,
            (Infinite { .. }, _) => self,
            (_, Infinite { .. }) => other,
            (
                Finite {
                    negative: na,
                    mantissa: ma,
                    exp: ea,
                },
                Finite {
                    negative: nb,
                    mantissa: mb,
                    exp: eb,
                },
            ) => {
                if ma == 0 && mb == 0 {
                    return LongDouble::zero(na && nb);
                }
                if mb == 0 {
                    return self;
                }
                if ma == 0 {
                    return other;
                }
                let ((big_neg, big_m, big_e), (small_neg, small_m, small_e)) = if ea >= eb {
                    ((na, ma, ea), (nb, mb, eb))
                } else {
                    ((nb, mb, eb), (na, ma, ea))
                };
                let gap = big_e - small_e;
                // The smaller operand is below a quarter of the larger's last unit: it
                // cannot change the rounded sum.
                if gap > 130 {
                    return if ea >= eb { self } else { other };
                }
                let big = BigUint::from_u128(big_m as u128).shl(gap as u64);
                let small = BigUint::from_u128(small_m as u128);
                if big_neg == small_neg {
                    round_extended(big_neg, &big.add(&small), small_e, false)
                } else {
                    match big.cmp(&small) {
                        std::cmp::Ordering::Equal => LongDouble::zero(false),
                        std::cmp::Ordering::Greater => {
                            round_extended(big_neg, &big.sub(&small), small_e, false)
                        }
                        std::cmp::Ordering::Less => {
                            round_extended(small_neg, &small.sub(&big), small_e, false)
                        }
                    }
                }
            }
        }
    }
}

/// The digits of a numeric literal as one integer, with its explicit exponent and the number
/// of digits after the point.
struct Literal {
    digits: BigUint,
    exp: i64,
    frac_digits: usize,
}

/// Reads `digits[.digits][<exp_mark>[sign]decimal]` in `radix`, all of `s` or nothing (an
/// exponent mark without digits is not part of the number, so leaves text unread).
fn parse_literal(s: &[u8], radix: u32, exp_mark: u8) -> Option<Literal> {
    let mut digits = BigUint::default();
    let mut any_digit = false;
    let mut seen_point = false;
    let mut frac_digits = 0usize;
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c == b'.' && !seen_point {
            seen_point = true;
        } else if let Some(d) = (c as char).to_digit(radix) {
            any_digit = true;
            digits.mul_small_add(radix, d);
            if seen_point {
                frac_digits += 1;
            }
        } else {
            break;
        }
        i += 1;
    }
    if !any_digit {
        return None;
    }
    let mut exp = 0i64;
    if i < s.len() {
        if s[i] | 0x20 != exp_mark {
            return None;
        }
        i += 1;
        let negative = match s.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        while i < s.len() && s[i].is_ascii_digit() {
            exp = (exp * 10 + (s[i] - b'0') as i64).min(EXPONENT_CAP);
            i += 1;
        }
        if i == start || i != s.len() {
            return None;
        }
        if negative {
            exp = -exp;
        }
    }
    Some(Literal {
        digits,
        exp,
        frac_digits,
    })
}

/// `digits × 10^exp10` rounded to the extended format; None when it surely overflows or
/// underflows.
fn decimal_to_extended(negative: bool, digits: BigUint, exp10: i64) -> Option<LongDouble> {
    let magnitude = digits.to_decimal().len() as i64 + exp10;
    if magnitude >= LD_DECIMAL_OVERFLOW || magnitude <= LD_DECIMAL_UNDERFLOW {
        return None;
    }
    if exp10 >= 0 {
        let mut n = digits;
        n.mul_pow10(exp10 as u64);
        return Some(round_extended(negative, &n, 0, false));
    }
    let mut divisor = BigUint::from_u128(1);
    divisor.mul_pow10((-exp10) as u64);
    // Scale so that the quotient has 66 to 68 bits: enough for the 64 kept, the rounding
    // bit, and a remainder folded into a sticky bit.
    let scale = digits.bit_len() as i64 - divisor.bit_len() as i64 - 66;
    let (mut num, den) = if scale >= 0 {
        (digits, divisor.shl(scale as u64))
    } else {
        (digits.shl((-scale) as u64), divisor)
    };
    let quotient = num.div_rem_small_quotient(&den);
    Some(round_extended(
        negative,
        &BigUint::from_u128(quotient),
        scale,
        !num.is_zero(),
    ))
}

/// Rounds `n × 2^exp2` (plus, if `sticky`, something positive below `2^exp2`) to the nearest
/// extended number, ties to even; out of range gives infinity, underflow zero.
fn round_extended(negative: bool, n: &BigUint, exp2: i64, sticky: bool) -> LongDouble {
    if n.is_zero() {
        return LongDouble::zero(negative);
    }
    let len = n.bit_len() as i64;
    let mut exp = (exp2 + len - 64).max(LD_MIN_EXP);
    let shift = exp - exp2;
    let mantissa = if shift <= 0 {
        if exp > LD_MAX_EXP {
            return LongDouble::Infinite { negative };
        }
        // Exact: n has at most 64 - (-shift) bits.
        n.bits_from(0) << (-shift)
    } else {
        let shift = shift as u64;
        let kept = n.bits_from(shift);
        let half = n.bit(shift - 1);
        let rest = sticky || n.any_below(shift - 1);
        if half && (rest || kept & 1 == 1) {
            match kept.checked_add(1) {
                Some(m) => m,
                None => {
                    exp += 1;
                    1 << 63
                }
            }
        } else {
            kept
        }
    };
    if mantissa == 0 {
        return LongDouble::zero(negative);
    }
    if exp > LD_MAX_EXP {
        return LongDouble::Infinite { negative };
    }
    LongDouble::Finite {
        negative,
        mantissa,
        exp,
    }
}

/// A non-negative integer of any size, with just the arithmetic exact float conversion needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct BigUint {
    /// Little-endian 32-bit limbs, without high zero limbs.
    limbs: Vec<u32>,
}

impl BigUint {
    fn from_u128(mut v: u128) -> BigUint {
        let mut limbs = Vec::new();
        while v != 0 {
            limbs.push(v as u32);
            v >>= 32;
        }
        BigUint { limbs }
    }

    fn trim(&mut self) {
        while self.limbs.last() == Some(&0) {
            self.limbs.pop();
        }
    }

    fn is_zero(&self) -> bool {
        self.limbs.is_empty()
    }

    fn bit_len(&self) -> u64 {
        match self.limbs.last() {
            None => 0,
            Some(&top) => (self.limbs.len() as u64 - 1) * 32 + (32 - top.leading_zeros()) as u64,
        }
    }

    fn bit(&self, i: u64) -> bool {
        let limb = (i / 32) as usize;
        self.limbs
            .get(limb)
            .is_some_and(|&l| (l >> (i % 32)) & 1 == 1)
    }

    /// True if any bit below position `i` is set.
    fn any_below(&self, i: u64) -> bool {
        let full = ((i / 32) as usize).min(self.limbs.len());
        let part = (i % 32) as u32;
        self.limbs[..full].iter().any(|&l| l != 0)
            || (part > 0
                && self
                    .limbs
                    .get(full)
                    .is_some_and(|&l| l & ((1u32 << part) - 1) != 0))
    }

    /// The 64 bits starting at bit `i`, that is `(self >> i) mod 2^64`.
    fn bits_from(&self, i: u64) -> u64 {
        (0..64u64)
            .filter(|j| self.bit(i.saturating_add(*j)))
            .fold(0u64, |acc, j| acc | (1 << j))
    }

    /// `self = self × mul + add`.
    fn mul_small_add(&mut self, mul: u32, add: u32) {
        let mut carry = add as u64;
        for limb in &mut self.limbs {
            let v = *limb as u64 * mul as u64 + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            self.limbs.push(carry as u32);
        }
    }

    /// `self = self × 10^exp`.
    fn mul_pow10(&mut self, mut exp: u64) {
        while exp >= 9 {
            self.mul_small_add(1_000_000_000, 0);
            exp -= 9;
        }
        self.mul_small_add(10u32.pow(exp as u32), 0);
    }

    /// Quotient and remainder of a division by a small number.
    fn div_small_rem(&self, d: u32) -> (BigUint, u32) {
        let mut out = vec![0u32; self.limbs.len()];
        let mut rem = 0u64;
        for (i, &limb) in self.limbs.iter().enumerate().rev() {
            let cur = (rem << 32) | limb as u64;
            out[i] = (cur / d as u64) as u32;
            rem = cur % d as u64;
        }
        let mut q = BigUint { limbs: out };
        q.trim();
        (q, rem as u32)
    }

    fn shl(&self, bits: u64) -> BigUint {
        if self.is_zero() {
            return BigUint::default();
        }
        let limbs = (bits / 32) as usize;
        let part = (bits % 32) as u32;
        let mut out = vec![0u32; limbs];
        out.reserve(self.limbs.len() + 1);
        if part == 0 {
            out.extend_from_slice(&self.limbs);
        } else {
            let mut carry = 0u32;
            for &l in &self.limbs {
                out.push((l << part) | carry);
                carry = l >> (32 - part);
            }
            out.push(carry);
        }
        let mut r = BigUint { limbs: out };
        r.trim();
        r
    }

    fn cmp(&self, other: &BigUint) -> std::cmp::Ordering {
        self.limbs
            .len()
            .cmp(&other.limbs.len())
            .then_with(|| self.limbs.iter().rev().cmp(other.limbs.iter().rev()))
    }

    fn add(&self, other: &BigUint) -> BigUint {
        let n = self.limbs.len().max(other.limbs.len());
        let mut out = Vec::with_capacity(n + 1);
        let mut carry = 0u64;
        for i in 0..n {
            let v = *self.limbs.get(i).unwrap_or(&0) as u64
                + *other.limbs.get(i).unwrap_or(&0) as u64
                + carry;
            out.push(v as u32);
            carry = v >> 32;
        }
        out.push(carry as u32);
        let mut r = BigUint { limbs: out };
        r.trim();
        r
    }

    /// `self - other`; the caller guarantees `self >= other`.
    fn sub(&self, other: &BigUint) -> BigUint {
        let mut out = Vec::with_capacity(self.limbs.len());
        let mut borrow = 0i64;
        for (i, &l) in self.limbs.iter().enumerate() {
            let mut v = l as i64 - *other.limbs.get(i).unwrap_or(&0) as i64 - borrow;
            borrow = (v < 0) as i64;
            if v < 0 {
                v += 1 << 32;
            }
            out.push(v as u32);
        }
        let mut r = BigUint { limbs: out };
        r.trim();
        r
    }

    /// Divides by `den` when the quotient is known to fit in 128 bits; `self` keeps the
    /// remainder.
    fn div_rem_small_quotient(&mut self, den: &BigUint) -> u128 {
        let mut quotient = 0u128;
        let top = self.bit_len().saturating_sub(den.bit_len()).min(127);
        for i in (0..=top).rev() {
            let shifted = den.shl(i);
            if self.cmp(&shifted) != std::cmp::Ordering::Less {
                *self = self.sub(&shifted);
                quotient |= 1 << i;
            }
        }
        quotient
    }

    fn to_decimal(&self) -> String {
        if self.is_zero() {
            return "0".into();
        }
        let mut chunks = Vec::new();
        let mut n = self.clone();
        while !n.is_zero() {
            let (q, r) = n.div_small_rem(1_000_000_000);
            chunks.push(r);
            n = q;
        }
        let mut out = String::new();
        for (i, c) in chunks.iter().rev().enumerate() {
            if i == 0 {
                out.push_str(&c.to_string());
            } else {
                out.push_str(&format!("{:09}", c));
            }
        }
        out
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
        for out_of_range in [&b"1e400"[..], b"-1e400", b"1e-400", b"-0.1e-330"] {
            assert_eq!(parse_f64(out_of_range), None);
        }
        assert_eq!(parse_f64(b"0e-400"), Some(0.0));
        assert_eq!(parse_f64(b"1e-310"), Some(1e-310));
        assert_eq!(parse_f64(b"+inf"), Some(f64::INFINITY));
    }

    fn incr(a: &str, b: &str) -> Option<String> {
        let v = LongDouble::parse(a.as_bytes())? + LongDouble::parse(b.as_bytes())?;
        v.is_finite().then(|| v.to_human())
    }

    #[test]
    fn long_double_sums_print_as_redis() {
        // Expected texts come from C's long double on x86-64 (strtold, +, "%.17Lf").
        assert_eq!(incr("1", "-1.1").as_deref(), Some("-0.1"));
        assert_eq!(incr("10.5", "0.1").as_deref(), Some("10.6"));
        assert_eq!(incr("5.0e3", "2.0e2").as_deref(), Some("5200"));
        assert_eq!(incr("17179869184", "1.5").as_deref(), Some("17179869185.5"));
        assert_eq!(incr("0x1p3", "1").as_deref(), Some("9"));
        assert_eq!(incr("1e-20", "-2e-20").as_deref(), Some("0"));
        assert_eq!(incr("-0", "-0").as_deref(), Some("0"));
        assert_eq!(incr("1.", ".5").as_deref(), Some("1.5"));
        assert_eq!(
            incr("0.024390243902439025", "-0.024390243902439025").as_deref(),
            Some("0")
        );
        let big = incr("1e400", "1").unwrap_or_default();
        assert!(big.starts_with("100000000000000000002818806839475865145864534336"));
        assert_eq!(big.len(), 401);
        assert_eq!(incr("inf", "1"), None);
        assert_eq!(incr("inf", "-inf"), None);
    }

    #[test]
    fn long_double_parse_follows_string2ld() {
        for bad in [
            "", " 1", "1 ", ".", "1e", "1e+", "0x", "nan", "-nan", "1e5000", "1e-5000", "--1",
            "1x", "0x1p",
        ] {
            assert_eq!(LongDouble::parse(bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(LongDouble::parse(&[b'1', 0, b'1']), None);
        assert_eq!(LongDouble::parse("1".repeat(5120).as_bytes()), None);
        assert!(LongDouble::parse(format!("{}1", "0".repeat(5118)).as_bytes()).is_some());
        assert_eq!(
            LongDouble::parse(b"+Infinity"),
            Some(LongDouble::Infinite { negative: false })
        );
        // A subnormal result is accepted, as glibc returns it (with ERANGE) non-zero.
        assert!(LongDouble::parse(b"4e-4951").is_some());
        assert_eq!(
            LongDouble::from_i64(i64::MIN).to_human(),
            "-9223372036854775808"
        );
        assert_eq!(LongDouble::from_i64(0).to_human(), "0");
    }

    #[test]
    fn i64_bytes_prints_decimal() {
        assert_eq!(&i64_bytes(-120)[..], b"-120");
        assert_eq!(&i64_bytes(i64::MIN)[..], b"-9223372036854775808");
    }
}
