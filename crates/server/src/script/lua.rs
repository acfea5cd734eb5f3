//! Thin helpers over the Lua 5.1 C API (through `mlua::ffi`) shared by the scripting modules.
//!
//! Lua reports errors with `longjmp`, which skips Rust frames without running their
//! destructors. The rule every C function here follows: no Rust value that owns memory (or a
//! `RefCell` borrow) is alive across a Lua API call that may raise; such values are dropped
//! first, or the work runs inside a protected call ([`protected`]). Raising goes through
//! [`raise`], which copies the message onto the Lua stack before dropping it.

use std::ffi::{c_char, c_int, c_void};

use mlua::ffi;

pub use ffi::lua_State;

/// The C function type Lua calls.
pub type CFn = unsafe extern "C-unwind" fn(*mut lua_State) -> c_int;

/// Pushes bytes as a Lua string.
///
/// # Safety
/// `l` is a valid state with a free stack slot.
pub unsafe fn push_bytes(l: *mut lua_State, bytes: &[u8]) {
    ffi::lua_pushlstring(l, bytes.as_ptr() as *const c_char, bytes.len());
}

/// Pushes a static string.
///
/// # Safety
/// As [`push_bytes`].
pub unsafe fn push_str(l: *mut lua_State, s: &str) {
    push_bytes(l, s.as_bytes());
}

/// The bytes of the string (or number, converted in place) at `idx`, if it is one.
///
/// # Safety
/// The slice borrows the Lua string: it is valid while that value stays on the stack.
pub unsafe fn to_bytes<'a>(l: *mut lua_State, idx: c_int) -> Option<&'a [u8]> {
    let mut len = 0usize;
    let p = ffi::lua_tolstring(l, idx, &mut len);
    if p.is_null() {
        None
    } else {
        Some(std::slice::from_raw_parts(p as *const u8, len))
    }
}

/// The bytes of the string at `idx` only if it really is a string (numbers are not converted,
/// so the stack value is not modified).
///
/// # Safety
/// As [`to_bytes`].
pub unsafe fn string_bytes<'a>(l: *mut lua_State, idx: c_int) -> Option<&'a [u8]> {
    if ffi::lua_type(l, idx) == ffi::LUA_TSTRING {
        to_bytes(l, idx)
    } else {
        None
    }
}

/// Sets `t[name] = <value on top>` (raw) for the table at `idx` (negative indexes count the
/// pushed value).
///
/// # Safety
/// The value to store is on top of the stack; the table is at `idx`.
pub unsafe fn set_field(l: *mut lua_State, idx: c_int, name: &str) {
    let idx = if idx < 0 { idx - 1 } else { idx };
    push_str(l, name);
    ffi::lua_insert(l, -2);
    ffi::lua_rawset(l, idx);
}

/// Registers C functions in the table on top of the stack.
///
/// # Safety
/// A table is on top of the stack.
pub unsafe fn set_functions(l: *mut lua_State, funcs: &[(&str, CFn)]) {
    for (name, f) in funcs {
        ffi::lua_pushcfunction(l, *f);
        set_field(l, -2, name);
    }
}

/// Reads a raw string field of the table at `idx` into owned bytes.
///
/// # Safety
/// A table is at `idx`; uses one stack slot.
pub unsafe fn raw_string_field(l: *mut lua_State, idx: c_int, name: &str) -> Option<Vec<u8>> {
    let idx = ffi::lua_absindex(l, idx);
    push_str(l, name);
    ffi::lua_rawget(l, idx);
    let out = string_bytes(l, -1).map(<[u8]>::to_vec);
    ffi::lua_pop(l, 1);
    out
}

/// Raises a Lua error whose value is `msg` prefixed with the caller's position, as
/// `luaL_error` does. Never returns.
///
/// # Safety
/// Called from a C function Lua is running; no Rust value owning memory may be alive in the
/// caller's frames up to the protected call that catches the error.
pub unsafe fn raise(l: *mut lua_State, msg: String) -> ! {
    ffi::luaL_where(l, 1);
    push_bytes(l, msg.as_bytes());
    drop(msg);
    ffi::lua_concat(l, 2);
    ffi::lua_error(l)
}

/// Raises a Lua error with the value on top of the stack as is. Never returns.
///
/// # Safety
/// As [`raise`].
pub unsafe fn raise_top(l: *mut lua_State) -> ! {
    ffi::lua_error(l)
}

/// `luaL_argerror` with a Rust message. Never returns.
///
/// # Safety
/// As [`raise`].
pub unsafe fn arg_error(l: *mut lua_State, narg: c_int, msg: String) -> ! {
    push_bytes(l, msg.as_bytes());
    drop(msg);
    let p = ffi::lua_tolstring(l, -1, std::ptr::null_mut());
    ffi::luaL_argerror(l, narg, p);
    // luaL_argerror raises; this is not reached.
    ffi::lua_error(l)
}

/// Runs `f` under `lua_cpcall`, so that an error Lua raises inside it (out of memory, or one
/// `f` raises itself) unwinds only to here; the caller, whose frame may own Rust values, gets
/// the status (0 = success) with the error value on top of the stack. `f` must not return
/// values on the stack (cpcall discards them): it leaves results in the memory `f` captures.
///
/// # Safety
/// `f` follows the module's rule about Lua errors and Rust values.
pub unsafe fn protected<F: FnMut(*mut lua_State)>(l: *mut lua_State, mut f: F) -> c_int {
    unsafe extern "C-unwind" fn trampoline<F: FnMut(*mut lua_State)>(l: *mut lua_State) -> c_int {
        let f = ffi::lua_touserdata(l, 1) as *mut F;
        ffi::lua_pop(l, 1);
        if let Some(f) = f.as_mut() {
            f(l);
        }
        0
    }
    ffi::lua_cpcall(l, trampoline::<F>, &mut f as *mut F as *mut c_void)
}

/// The doubles that convert to i64 without overflow.
const I64_RANGE: std::ops::Range<f64> = -9.223_372_036_854_776e18..9.223_372_036_854_776e18;

/// Whether the double is an integer value that round-trips through i64.
pub fn is_int64(n: f64) -> bool {
    I64_RANGE.contains(&n) && n.trunc() == n
}

/// C's `(long long)d` on x86-64: truncation toward zero, with NaN and out-of-range values
/// giving `i64::MIN` (the "integer indefinite" value `cvttsd2si` produces).
pub fn f64_to_i64_c(d: f64) -> i64 {
    if !I64_RANGE.contains(&d) {
        i64::MIN
    } else {
        d as i64
    }
}

/// Formats a number as C's `printf("%.<precision>g")` (glibc): `precision` significant
/// digits, trailing zeros removed, exponent form when the exponent is below -4 or not below
/// the precision; `inf`, `-inf`, `nan`/`-nan`.
pub fn format_g(v: f64, precision: usize) -> String {
    let p = precision.max(1);
    if v.is_nan() {
        return if v.is_sign_negative() { "-nan" } else { "nan" }.to_string();
    }
    if v.is_infinite() {
        return if v < 0.0 { "-inf" } else { "inf" }.to_string();
    }
    // Round to p significant digits first: the exponent after rounding decides the style.
    let sci = format!("{:.*e}", p - 1, v);
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m.to_string(), e.parse::<i32>().unwrap_or(0)),
        None => (sci.clone(), 0),
    };
    if exp < -4 || exp >= p as i32 {
        let mantissa = trim_fraction(&mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        trim_fraction(&format!("{:.*}", decimals, v))
    }
}

/// Drops trailing zeros after a decimal point, and the point itself if nothing follows.
fn trim_fraction(s: &str) -> String {
    if !s.contains('.') {
        return s.to_string();
    }
    let t = s.trim_end_matches('0');
    t.strip_suffix('.').unwrap_or(t).to_string()
}

/// Parses the longest prefix of `s` that C's `strtod` accepts (decimal, hexadecimal,
/// `inf`/`infinity`, `nan`, with an optional sign; no leading white space), returning the
/// value and the number of bytes used; None when no number starts here.
pub fn strtod_prefix(s: &[u8]) -> Option<(f64, usize)> {
    let mut i = 0;
    let negative = match s.first() {
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
    let sign = |v: f64| if negative { -v } else { v };
    let rest = &s[i..];
    let lower = |n: usize| -> Vec<u8> { rest.iter().take(n).map(u8::to_ascii_lowercase).collect() };
    if lower(3) == b"inf" {
        let used = if lower(8) == b"infinity" { 8 } else { 3 };
        return Some((sign(f64::INFINITY), i + used));
    }
    if lower(3) == b"nan" {
        let mut used = 3;
        // nan(n-char-sequence)
        if rest.get(3) == Some(&b'(') {
            if let Some(close) = rest[4..].iter().position(|&c| c == b')') {
                if rest[4..4 + close]
                    .iter()
                    .all(|c| c.is_ascii_alphanumeric() || *c == b'_')
                {
                    used = 4 + close + 1;
                }
            }
        }
        return Some((sign(f64::NAN), i + used));
    }
    if rest.len() >= 2 && rest[0] == b'0' && (rest[1] | 0x20) == b'x' {
        if let Some((v, used)) = hex_float(&rest[2..]) {
            return Some((sign(v), i + 2 + used));
        }
        // "0x" without hex digits: the "0" alone is the number.
        return Some((sign(0.0), i + 1));
    }
    // Decimal: digits [. digits] [e [sign] digits]
    let mut j = 0;
    let digits = |from: usize| {
        rest[from..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let int_digits = digits(j);
    j += int_digits;
    let mut frac_digits = 0;
    if rest.get(j) == Some(&b'.') {
        frac_digits = digits(j + 1);
        if int_digits + frac_digits > 0 {
            j += 1 + frac_digits;
        }
    }
    if int_digits + frac_digits == 0 {
        return None;
    }
    if matches!(rest.get(j), Some(b'e') | Some(b'E')) {
        let mut k = j + 1;
        if matches!(rest.get(k), Some(b'+') | Some(b'-')) {
            k += 1;
        }
        let exp_digits = digits(k);
        if exp_digits > 0 {
            j = k + exp_digits;
        }
    }
    let text = std::str::from_utf8(&rest[..j]).ok()?;
    // Rust's parser is correctly rounded like glibc's; it wants a digit before a lone '.'.
    let v = if text.starts_with('.') {
        format!("0{text}").parse::<f64>().ok()?
    } else {
        text.trim_end_matches('.').parse::<f64>().ok().or_else(|| {
            // "1.e5": Rust refuses a '.' followed by the exponent.
            text.replacen(".e", "e", 1)
                .replacen(".E", "E", 1)
                .parse()
                .ok()
        })?
    };
    Some((sign(v), i + j))
}

/// A hexadecimal float after "0x": hex digits, optional '.' and fraction, optional `p`
/// exponent. None when no hex digit is there.
fn hex_float(s: &[u8]) -> Option<(f64, usize)> {
    let mut mantissa = 0f64;
    let mut any = false;
    let mut i = 0;
    let mut scale = 0i32;
    while let Some(d) = s.get(i).and_then(|c| (*c as char).to_digit(16)) {
        mantissa = mantissa * 16.0 + d as f64;
        any = true;
        i += 1;
    }
    if s.get(i) == Some(&b'.') {
        let mut j = i + 1;
        let mut frac = false;
        while let Some(d) = s.get(j).and_then(|c| (*c as char).to_digit(16)) {
            mantissa = mantissa * 16.0 + d as f64;
            scale -= 4;
            frac = true;
            j += 1;
        }
        if any || frac {
            any = true;
            i = j;
        }
    }
    if !any {
        return None;
    }
    if matches!(s.get(i), Some(b'p') | Some(b'P')) {
        let mut k = i + 1;
        let neg = match s.get(k) {
            Some(b'-') => {
                k += 1;
                true
            }
            Some(b'+') => {
                k += 1;
                false
            }
            _ => false,
        };
        let start = k;
        let mut e = 0i32;
        while let Some(d) = s.get(k).filter(|c| c.is_ascii_digit()) {
            e = e.saturating_mul(10).saturating_add((d - b'0') as i32);
            k += 1;
        }
        if k > start {
            scale = scale.saturating_add(if neg { -e } else { e });
            i = k;
        }
    }
    Some((mantissa * 2f64.powi(scale), i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_g_matches_printf() {
        assert_eq!(format_g(0.0003, 14), "0.0003");
        assert_eq!(format_g(-5000.0, 14), "-5000");
        assert_eq!(format_g(1023.2, 14), "1023.2");
        assert_eq!(format_g(0.1, 17), "0.10000000000000001");
        assert_eq!(format_g(1e20, 14), "1e+20");
        assert_eq!(format_g(123456789012345678.0, 17), "1.2345678901234568e+17");
        assert_eq!(format_g(9007199254740991.0, 17), "9007199254740991");
        assert_eq!(format_g(0.00001, 14), "1e-05");
        assert_eq!(format_g(100.0, 14), "100");
        assert_eq!(format_g(f64::INFINITY, 14), "inf");
        assert_eq!(format_g(1.23456, 3), "1.23");
    }

    #[test]
    fn strtod_prefixes() {
        assert_eq!(strtod_prefix(b"12abc"), Some((12.0, 2)));
        assert_eq!(strtod_prefix(b"-5e3,"), Some((-5000.0, 4)));
        assert_eq!(strtod_prefix(b"0.3e-3]"), Some((0.0003, 6)));
        assert_eq!(strtod_prefix(b"0x1A"), Some((26.0, 4)));
        assert_eq!(strtod_prefix(b"0x"), Some((0.0, 1)));
        assert_eq!(strtod_prefix(b"1e"), Some((1.0, 1)));
        assert_eq!(strtod_prefix(b".5"), Some((0.5, 2)));
        assert_eq!(strtod_prefix(b"5."), Some((5.0, 2)));
        assert_eq!(strtod_prefix(b"Infinity"), Some((f64::INFINITY, 8)));
        assert!(strtod_prefix(b"nan").is_some_and(|(v, n)| v.is_nan() && n == 3));
        assert_eq!(strtod_prefix(b"-"), None);
        assert_eq!(strtod_prefix(b"x"), None);
    }

    #[test]
    fn c_casts() {
        assert_eq!(f64_to_i64_c(100.5), 100);
        assert_eq!(f64_to_i64_c(-100.5), -100);
        assert_eq!(f64_to_i64_c(f64::NAN), i64::MIN);
        assert_eq!(f64_to_i64_c(1e300), i64::MIN);
        assert!(is_int64(2f64.powi(40)));
        assert!(!is_int64(0.5));
    }
}
