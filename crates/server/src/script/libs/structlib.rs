//! The `struct` library scripts see (Roberto Ierusalimschy's struct, as Redis bundles it):
//! `struct.pack(fmt, ...)`, `struct.unpack(fmt, data [, pos])` and `struct.size(fmt)` over
//! C-like binary layouts. Format options: `>` `<` endianness, `![n]` alignment, `x` padding,
//! `b/B h/H l/L T i/In` integers, `f d` floats, `s` zero-terminated and `cn` fixed strings,
//! space ignored. Sizes are those of x86-64 (long and size_t are 8 bytes, int 4).

use std::ffi::{c_char, c_int};

use mlua::ffi;

use crate::script::lua::{self, lua_State, CFn};

/// The functions of the `struct` table.
pub const FUNCTIONS: &[(&str, CFn)] = &[("pack", pack), ("unpack", unpack), ("size", size)];

/// Largest integral size accepted (`i32` is the largest).
const MAX_INT_SIZE: usize = 32;
/// Default (and largest useful) alignment: that of a double.
const MAX_ALIGN: usize = 8;

#[derive(Clone, Copy, PartialEq)]
enum Endian {
    Big,
    Little,
}

struct Header {
    endian: Endian,
    align: usize,
}

impl Header {
    fn new() -> Header {
        Header {
            endian: Endian::Little,
            align: 1,
        }
    }
}

/// Reads a decimal number at `fmt[*at..]`, or `default` when none is there.
unsafe fn get_num(l: *mut lua_State, fmt: &[u8], at: &mut usize, default: usize) -> usize {
    if !fmt.get(*at).is_some_and(u8::is_ascii_digit) {
        return default;
    }
    let mut a: usize = 0;
    while let Some(d) = fmt.get(*at).filter(|c| c.is_ascii_digit()) {
        let digit = (d - b'0') as usize;
        if a > (i32::MAX as usize) / 10 || a * 10 > i32::MAX as usize - digit {
            lua::raise(l, "integral size overflow".into());
        }
        a = a * 10 + digit;
        *at += 1;
    }
    a
}

/// The size of option `opt` (reading its number, if any).
unsafe fn opt_size(l: *mut lua_State, opt: u8, fmt: &[u8], at: &mut usize) -> usize {
    match opt {
        b'B' | b'b' => 1,
        b'H' | b'h' => 2,
        b'L' | b'l' | b'T' | b'd' => 8,
        b'f' => 4,
        b'x' => 1,
        b'c' => get_num(l, fmt, at, 1),
        b'i' | b'I' => {
            let size = get_num(l, fmt, at, 4);
            if size > MAX_INT_SIZE {
                lua::raise(
                    l,
                    format!("integral size {size} is larger than limit of {MAX_INT_SIZE}"),
                );
            }
            size
        }
        _ => 0,
    }
}

/// Padding needed to align an item of `size` at offset `len`.
fn to_align(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    size.wrapping_sub(len & size.wrapping_sub(1)) & size.wrapping_sub(1)
}

/// Endianness, alignment and spaces; anything else is an invalid option.
unsafe fn control(l: *mut lua_State, opt: u8, fmt: &[u8], at: &mut usize, h: &mut Header) {
    match opt {
        b' ' => {}
        b'>' => h.endian = Endian::Big,
        b'<' => h.endian = Endian::Little,
        b'!' => {
            let a = get_num(l, fmt, at, MAX_ALIGN);
            if a == 0 || a & (a - 1) != 0 {
                lua::raise(l, format!("alignment {a} is not a power of 2"));
            }
            h.align = a;
        }
        _ => {
            let msg = format!("invalid format option '{}'", opt as char);
            lua::arg_error(l, 1, msg);
        }
    }
}

unsafe fn check_arg(l: *mut lua_State, ok: bool, narg: c_int, msg: &'static std::ffi::CStr) {
    if !ok {
        ffi::luaL_argerror(l, narg, msg.as_ptr());
    }
}

unsafe extern "C-unwind" fn pack(l: *mut lua_State) -> c_int {
    let fmt: &[u8] = match lua::to_bytes(l, 1) {
        Some(f) => f,
        None => {
            ffi::luaL_checklstring(l, 1, std::ptr::null_mut());
            return 0;
        }
    };
    let mut h = Header::new();
    let mut arg: c_int = 2;
    let mut total: usize = 0;
    ffi::lua_pushnil(l);
    let mut b: ffi::luaL_Buffer = std::mem::zeroed();
    ffi::luaL_buffinit(l, &mut b);
    let mut at = 0;
    while let Some(&opt) = fmt.get(at) {
        at += 1;
        let mut size = opt_size(l, opt, fmt, &mut at);
        let pad = to_align(total, &h, opt, size);
        total += pad;
        for _ in 0..pad {
            ffi::luaL_addchar(&mut b, 0);
        }
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = ffi::luaL_checknumber(l, arg);
                arg += 1;
                let mut value: u64 = if n < 0.0 { n as i64 as u64 } else { n as u64 };
                let mut buf = [0u8; MAX_INT_SIZE];
                for byte in buf[..size].iter_mut() {
                    *byte = (value & 0xff) as u8;
                    value >>= 8;
                }
                if h.endian == Endian::Big {
                    buf[..size].reverse();
                }
                ffi::luaL_addlstring(&mut b, buf.as_ptr() as *const c_char, size);
            }
            b'x' => ffi::luaL_addchar(&mut b, 0),
            b'f' => {
                let f = ffi::luaL_checknumber(l, arg) as f32;
                arg += 1;
                let bytes = if h.endian == Endian::Big {
                    f.to_be_bytes()
                } else {
                    f.to_le_bytes()
                };
                ffi::luaL_addlstring(&mut b, bytes.as_ptr() as *const c_char, 4);
            }
            b'd' => {
                let d = ffi::luaL_checknumber(l, arg);
                arg += 1;
                let bytes = if h.endian == Endian::Big {
                    d.to_be_bytes()
                } else {
                    d.to_le_bytes()
                };
                ffi::luaL_addlstring(&mut b, bytes.as_ptr() as *const c_char, 8);
            }
            b'c' | b's' => {
                let mut len = 0usize;
                let s = ffi::luaL_checklstring(l, arg, &mut len);
                arg += 1;
                if size == 0 {
                    size = len;
                }
                check_arg(l, len >= size, arg, c"string too short");
                ffi::luaL_addlstring(&mut b, s, size);
                if opt == b's' {
                    ffi::luaL_addchar(&mut b, 0);
                    size += 1;
                }
            }
            _ => control(l, opt, fmt, &mut at, &mut h),
        }
        total += size;
    }
    ffi::luaL_pushresult(&mut b);
    1
}

/// An integer of `size` bytes read from `buf`.
fn get_integer(buf: &[u8], endian: Endian, signed: bool, size: usize) -> f64 {
    let mut v: u64 = 0;
    let mut push = |byte: u8| v = (v << 8) | byte as u64;
    match endian {
        Endian::Big => buf[..size].iter().for_each(|&c| push(c)),
        Endian::Little => buf[..size].iter().rev().for_each(|&c| push(c)),
    }
    if !signed {
        return v as f64;
    }
    let mask = u64::MAX.wrapping_shl((size * 8).wrapping_sub(1) as u32);
    if v & mask != 0 {
        v |= mask;
    }
    v as i64 as f64
}

unsafe extern "C-unwind" fn unpack(l: *mut lua_State) -> c_int {
    let fmt: &[u8] = match lua::to_bytes(l, 1) {
        Some(f) => f,
        None => {
            ffi::luaL_checklstring(l, 1, std::ptr::null_mut());
            return 0;
        }
    };
    let mut ld = 0usize;
    let data_ptr = ffi::luaL_checklstring(l, 2, &mut ld);
    let data = std::slice::from_raw_parts(data_ptr as *const u8, ld);
    let mut pos = ffi::luaL_optinteger(l, 3, 1) as usize;
    check_arg(l, pos > 0, 3, c"offset must be 1 or greater");
    pos -= 1;
    let mut n: c_int = 0;
    let mut h = Header::new();
    let mut at = 0;
    while let Some(&opt) = fmt.get(at) {
        at += 1;
        let mut size = opt_size(l, opt, fmt, &mut at);
        pos = pos.wrapping_add(to_align(pos, &h, opt, size));
        check_arg(
            l,
            size <= ld && pos <= ld - size,
            2,
            c"data string too short",
        );
        ffi::luaL_checkstack(l, 2, c"too many results".as_ptr());
        let item = &data[pos..];
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let signed = opt.is_ascii_lowercase();
                ffi::lua_pushnumber(l, get_integer(item, h.endian, signed, size));
                n += 1;
            }
            b'x' => {}
            b'f' => {
                let mut raw = [0u8; 4];
                raw.copy_from_slice(&item[..4]);
                let f = match h.endian {
                    Endian::Big => f32::from_be_bytes(raw),
                    Endian::Little => f32::from_le_bytes(raw),
                };
                ffi::lua_pushnumber(l, f as f64);
                n += 1;
            }
            b'd' => {
                let mut raw = [0u8; 8];
                raw.copy_from_slice(&item[..8]);
                let d = match h.endian {
                    Endian::Big => f64::from_be_bytes(raw),
                    Endian::Little => f64::from_le_bytes(raw),
                };
                ffi::lua_pushnumber(l, d);
                n += 1;
            }
            b'c' => {
                if size == 0 {
                    if n == 0 || ffi::lua_isnumber(l, -1) == 0 {
                        lua::raise(l, "format 'c0' needs a previous size".into());
                    }
                    size = ffi::lua_tonumber(l, -1) as usize;
                    ffi::lua_pop(l, 1);
                    n -= 1;
                    check_arg(
                        l,
                        size <= ld && pos <= ld - size,
                        2,
                        c"data string too short",
                    );
                }
                lua::push_bytes(l, &data[pos..pos + size]);
                n += 1;
            }
            b's' => {
                let Some(end) = item.iter().position(|&c| c == 0) else {
                    lua::raise(l, "unfinished string in data".into());
                };
                size = end + 1;
                lua::push_bytes(l, &item[..end]);
                n += 1;
            }
            _ => control(l, opt, fmt, &mut at, &mut h),
        }
        pos += size;
    }
    ffi::lua_pushinteger(l, (pos + 1) as ffi::lua_Integer);
    n + 1
}

unsafe extern "C-unwind" fn size(l: *mut lua_State) -> c_int {
    let fmt: &[u8] = match lua::to_bytes(l, 1) {
        Some(f) => f,
        None => {
            ffi::luaL_checklstring(l, 1, std::ptr::null_mut());
            return 0;
        }
    };
    let mut h = Header::new();
    let mut pos: usize = 0;
    let mut at = 0;
    while let Some(&opt) = fmt.get(at) {
        at += 1;
        let size = opt_size(l, opt, fmt, &mut at);
        pos = pos.wrapping_add(to_align(pos, &h, opt, size));
        if opt == b's' {
            ffi::luaL_argerror(l, 1, c"option 's' has no fixed size".as_ptr());
        } else if opt == b'c' && size == 0 {
            ffi::luaL_argerror(l, 1, c"option 'c0' has no fixed size".as_ptr());
        }
        if !opt.is_ascii_alphanumeric() {
            control(l, opt, fmt, &mut at, &mut h);
        }
        pos = pos.wrapping_add(size);
    }
    ffi::lua_pushinteger(l, pos as ffi::lua_Integer);
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_decode_with_sign() {
        assert_eq!(get_integer(&[0xff, 0xff], Endian::Little, true, 2), -1.0);
        assert_eq!(
            get_integer(&[0xff, 0xff], Endian::Little, false, 2),
            65535.0
        );
        assert_eq!(get_integer(&[0x01, 0x00], Endian::Big, false, 2), 256.0);
    }

    #[test]
    fn alignment() {
        let h = Header {
            endian: Endian::Little,
            align: 8,
        };
        assert_eq!(to_align(1, &h, b'i', 4), 3);
        assert_eq!(to_align(4, &h, b'd', 8), 4);
        assert_eq!(to_align(3, &h, b'c', 1), 0);
    }
}
