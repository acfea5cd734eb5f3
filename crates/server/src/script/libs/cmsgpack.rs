//! The `cmsgpack` library scripts see (lua-cmsgpack 0.4.0's API, as Redis bundles it):
//! `pack(...)`, `unpack(data)`, `unpack_one(data [, offset])`, `unpack_limit(data, limit [,
//! offset])`. Encoding rules: integral numbers use the smallest integer form, other numbers a
//! float when exact in single precision, else a double; tables whose keys are exactly 1..n
//! are arrays, other tables maps; tables nested deeper than 16 levels (cycles included)
//! become nil; strings use fixstr/str8/str16/str32.

use std::ffi::c_int;

use mlua::ffi;

use crate::script::lua::{self, lua_State, CFn};

/// The functions of the `cmsgpack` table.
pub const FUNCTIONS: &[(&str, CFn)] = &[
    ("pack", pack),
    ("unpack", unpack),
    ("unpack_one", unpack_one),
    ("unpack_limit", unpack_limit),
];

/// Metadata fields of the table.
pub const FIELDS: &[(&str, &str)] = &[
    ("_NAME", "cmsgpack"),
    ("_VERSION", "lua-cmsgpack 0.4.0"),
    ("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo"),
    ("_DESCRIPTION", "MessagePack C implementation for Lua"),
];

const MAX_NESTING: usize = 16;

fn encode_int(out: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        if n <= 127 {
            out.push(n as u8);
        } else if n <= 0xff {
            out.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2_147_483_648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_number(out: &mut Vec<u8>, n: f64) {
    if lua::is_int64(n) {
        encode_int(out, n as i64);
        return;
    }
    let f = n as f32;
    if f as f64 == n {
        out.push(0xca);
        out.extend_from_slice(&f.to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_bytes(out: &mut Vec<u8>, s: &[u8]) {
    let len = s.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(s);
}

fn encode_header(out: &mut Vec<u8>, len: usize, fix: u8, b16: u8, b32: u8) {
    if len <= 15 {
        out.push(fix | len as u8);
    } else if len <= 0xffff {
        out.push(b16);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(b32);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

/// Whether the table on top of the stack has exactly the keys 1..n.
unsafe fn is_array(l: *mut lua_State) -> bool {
    let mut count: f64 = 0.0;
    let mut max: f64 = 0.0;
    ffi::lua_pushnil(l);
    while ffi::lua_next(l, -2) != 0 {
        ffi::lua_pop(l, 1);
        let n = ffi::lua_tonumber(l, -1);
        if ffi::lua_type(l, -1) != ffi::LUA_TNUMBER || n <= 0.0 || !lua::is_int64(n) {
            ffi::lua_pop(l, 1);
            return false;
        }
        max = max.max(n);
        count += 1.0;
    }
    max == count
}

/// Encodes the value on top of the stack (and pops it). Uses only Lua calls that cannot
/// raise: the stack was checked by the caller of each level.
unsafe fn encode_value(l: *mut lua_State, out: &mut Vec<u8>, level: usize) {
    let mut t = ffi::lua_type(l, -1);
    if t == ffi::LUA_TTABLE && (level == MAX_NESTING || ffi::lua_checkstack(l, 3) == 0) {
        t = ffi::LUA_TNIL;
    }
    match t {
        ffi::LUA_TSTRING => encode_bytes(out, lua::to_bytes(l, -1).unwrap_or_default()),
        ffi::LUA_TBOOLEAN => out.push(if ffi::lua_toboolean(l, -1) != 0 {
            0xc3
        } else {
            0xc2
        }),
        ffi::LUA_TNUMBER => encode_number(out, ffi::lua_tonumber(l, -1)),
        ffi::LUA_TTABLE => {
            if is_array(l) {
                let len = ffi::lua_objlen(l, -1);
                encode_header(out, len, 0x90, 0xdc, 0xdd);
                for j in 1..=len {
                    ffi::lua_rawgeti(l, -1, j as ffi::lua_Integer);
                    encode_value(l, out, level + 1);
                }
            } else {
                let mut len = 0usize;
                ffi::lua_pushnil(l);
                while ffi::lua_next(l, -2) != 0 {
                    ffi::lua_pop(l, 1);
                    len += 1;
                }
                encode_header(out, len, 0x80, 0xde, 0xdf);
                ffi::lua_pushnil(l);
                while ffi::lua_next(l, -2) != 0 {
                    ffi::lua_pushvalue(l, -2);
                    encode_value(l, out, level + 1);
                    encode_value(l, out, level + 1);
                }
            }
        }
        _ => out.push(0xc0),
    }
    ffi::lua_pop(l, 1);
}

unsafe extern "C-unwind" fn pack(l: *mut lua_State) -> c_int {
    let nargs = ffi::lua_gettop(l);
    if nargs == 0 {
        ffi::luaL_argerror(l, 0, c"MessagePack pack needs input.".as_ptr());
    }
    if ffi::lua_checkstack(l, 4) == 0 {
        ffi::luaL_argerror(l, 0, c"Too many arguments for MessagePack pack.".as_ptr());
    }
    let mut out = Vec::new();
    for i in 1..=nargs {
        ffi::lua_pushvalue(l, i);
        encode_value(l, &mut out, 0);
    }
    let _host = crate::script::vm::HostGuard::enter();
    lua::push_bytes(l, &out);
    1
}

/// Why decoding stopped.
enum DecodeError {
    Eof,
    BadFormat,
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Eof)?;
        let bytes = self.data.get(self.pos..end).ok_or(DecodeError::Eof)?;
        self.pos = end;
        Ok(bytes)
    }

    fn be(&mut self, n: usize) -> Result<u64, DecodeError> {
        Ok(self.take(n)?.iter().fold(0u64, |v, &b| (v << 8) | b as u64))
    }
}

/// Decodes one value onto the stack.
unsafe fn decode_value(l: *mut lua_State, c: &mut Cursor) -> Result<(), DecodeError> {
    ffi::luaL_checkstack(
        l,
        2,
        c"too many return values at once; use unpack_one or unpack_limit instead.".as_ptr(),
    );
    let tag = c.take(1)?[0];
    match tag {
        0x00..=0x7f => ffi::lua_pushnumber(l, tag as f64),
        0xe0..=0xff => ffi::lua_pushnumber(l, tag as i8 as f64),
        0xa0..=0xbf => {
            let s = c.take((tag & 0x1f) as usize)?;
            lua::push_bytes(l, s);
        }
        0x90..=0x9f => decode_array(l, c, (tag & 0xf) as usize)?,
        0x80..=0x8f => decode_map(l, c, (tag & 0xf) as usize)?,
        0xcc => ffi::lua_pushnumber(l, c.be(1)? as f64),
        0xcd => ffi::lua_pushnumber(l, c.be(2)? as f64),
        0xce => ffi::lua_pushnumber(l, c.be(4)? as f64),
        0xcf => ffi::lua_pushnumber(l, c.be(8)? as f64),
        0xd0 => ffi::lua_pushnumber(l, c.be(1)? as u8 as i8 as f64),
        0xd1 => ffi::lua_pushnumber(l, c.be(2)? as u16 as i16 as f64),
        0xd2 => ffi::lua_pushnumber(l, c.be(4)? as u32 as i32 as f64),
        0xd3 => ffi::lua_pushnumber(l, c.be(8)? as i64 as f64),
        0xc0 => ffi::lua_pushnil(l),
        0xc3 => ffi::lua_pushboolean(l, 1),
        0xc2 => ffi::lua_pushboolean(l, 0),
        0xca => ffi::lua_pushnumber(l, f32::from_bits(c.be(4)? as u32) as f64),
        0xcb => ffi::lua_pushnumber(l, f64::from_bits(c.be(8)?)),
        0xd9..=0xdb => {
            let width = match tag {
                0xd9 => 1,
                0xda => 2,
                _ => 4,
            };
            let len = c.be(width)? as usize;
            let s = c.take(len)?;
            lua::push_bytes(l, s);
        }
        0xdc => {
            let n = c.be(2)? as usize;
            decode_array(l, c, n)?
        }
        0xdd => {
            let n = c.be(4)? as usize;
            decode_array(l, c, n)?
        }
        0xde => {
            let n = c.be(2)? as usize;
            decode_map(l, c, n)?
        }
        0xdf => {
            let n = c.be(4)? as usize;
            decode_map(l, c, n)?
        }
        _ => return Err(DecodeError::BadFormat),
    }
    Ok(())
}

unsafe fn decode_array(l: *mut lua_State, c: &mut Cursor, len: usize) -> Result<(), DecodeError> {
    ffi::lua_newtable(l);
    for i in 1..=len {
        decode_value(l, c)?;
        ffi::lua_rawseti(l, -2, i as ffi::lua_Integer);
    }
    Ok(())
}

unsafe fn decode_map(l: *mut lua_State, c: &mut Cursor, len: usize) -> Result<(), DecodeError> {
    ffi::lua_newtable(l);
    for _ in 0..len {
        decode_value(l, c)?;
        decode_value(l, c)?;
        // A nil key cannot be stored: lua-cmsgpack's lua_settable raises there too.
        if ffi::lua_isnil(l, -2) != 0 {
            lua::raise(l, "table index is nil".into());
        }
        ffi::lua_rawset(l, -3);
    }
    Ok(())
}

/// Decodes up to `limit` values (all when `limit` and `offset` are 0) starting at `offset`;
/// with a limit or offset, the next offset (-1 at the end) comes first in the results.
unsafe fn unpack_full(l: *mut lua_State, limit: i64, offset: i64) -> c_int {
    let mut len = 0usize;
    let s = ffi::luaL_checklstring(l, 1, &mut len);
    let data = std::slice::from_raw_parts(s as *const u8, len);
    if offset < 0 || limit < 0 {
        lua::raise(
            l,
            format!("Invalid request to unpack with offset of {offset} and limit of {len}."),
        );
    }
    if offset as u64 > len as u64 {
        lua::raise(
            l,
            format!("Start offset {offset} greater than input length {len}."),
        );
    }
    let decode_all = limit == 0 && offset == 0;
    let limit = if decode_all { i32::MAX as i64 } else { limit };
    let _host = crate::script::vm::HostGuard::enter();
    let mut c = Cursor {
        data,
        pos: offset as usize,
    };
    let mut count: c_int = 0;
    while c.pos < data.len() && (count as i64) < limit {
        match decode_value(l, &mut c) {
            Ok(()) => count += 1,
            Err(DecodeError::Eof) => lua::raise(l, "Missing bytes in input.".into()),
            Err(DecodeError::BadFormat) => lua::raise(l, "Bad data format in input.".into()),
        }
    }
    if !decode_all {
        ffi::luaL_checkstack(l, 1, c"in function mp_unpack_full".as_ptr());
        let next = if c.pos >= data.len() {
            -1
        } else {
            c.pos as i64
        };
        ffi::lua_pushinteger(l, next as ffi::lua_Integer);
        ffi::lua_insert(l, 2);
        count += 1;
    }
    count
}

unsafe extern "C-unwind" fn unpack(l: *mut lua_State) -> c_int {
    unpack_full(l, 0, 0)
}

unsafe extern "C-unwind" fn unpack_one(l: *mut lua_State) -> c_int {
    let offset = ffi::luaL_optinteger(l, 2, 0) as i64;
    ffi::lua_settop(l, 1);
    unpack_full(l, 1, offset)
}

unsafe extern "C-unwind" fn unpack_limit(l: *mut lua_State) -> c_int {
    let limit = ffi::luaL_checkinteger(l, 2) as i64;
    let offset = ffi::luaL_optinteger(l, 3, 0) as i64;
    ffi::lua_settop(l, 1);
    unpack_full(l, limit, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc_num(n: f64) -> Vec<u8> {
        let mut out = Vec::new();
        encode_number(&mut out, n);
        out
    }

    #[test]
    fn numbers_encode_as_lua_cmsgpack() {
        assert_eq!(
            enc_num(0.1),
            [0xcb, 0x3f, 0xb9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a]
        );
        assert_eq!(
            enc_num(-1099511627776.0),
            [0xd3, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00]
        );
        assert_eq!(enc_num(5.0), [5]);
        assert_eq!(enc_num(-1.0), [0xff]);
        assert_eq!(enc_num(250.0), [0xcc, 250]);
        assert_eq!(enc_num(0.5), [0xca, 0x3f, 0, 0, 0]);
    }
}
