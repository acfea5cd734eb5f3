//! Conversions between command replies and Lua values, by Redis 7.0's rules.
//!
//! Reply to Lua (what `redis.call` returns), in the script's protocol (`redis.setresp`):
//! integers become numbers, bulk strings strings, a status `{ok=...}`, an error
//! `{err=...}`; the null bulk and null array are `false` in RESP2 and `nil` in RESP3; maps,
//! sets, doubles, booleans, verbatim strings and big numbers are flattened as RESP2 flattens
//! them, or become `{map=…}`, `{set=…}`, `{double=…}`, booleans, `{verbatim_string=…}` and
//! `{big_number=…}` in RESP3.
//!
//! Lua to reply (what a script returns): strings are bulk strings, numbers integers
//! (truncated), `true` is 1 (RESP2 scripts) or a boolean (RESP3), `false` and nil a null;
//! tables are checked for the `err`, `ok`, `double`, `big_number`, `verbatim_string`, `map`
//! and `set` fields, in that order, and are otherwise arrays up to the first nil.

use std::ffi::c_int;

use bytes::Bytes;
use mlua::ffi;
use shardis_resp::{format_double, Reply};

use super::lua::{self, lua_State};

/// Deepest nesting converted; deeper levels become Redis's "reached lua stack limit" error
/// (Redis stops where the Lua stack is exhausted; both bound a reply that refers to itself).
const MAX_DEPTH: usize = 1000;

/// Pushes a Redis error table `{err = "<CODE> <message>"}` built as Redis's
/// `luaPushErrorBuff`: a text starting with `-` carries its code (up to the first space),
/// any other text gets the code `ERR`; trailing CR and LF are trimmed.
///
/// # Safety
/// Room for three values on the stack.
pub unsafe fn push_error_table(l: *mut lua_State, text: &[u8]) {
    let _host = super::vm::HostGuard::enter();
    let (code, msg): (&[u8], &[u8]) = match text.strip_prefix(b"-") {
        Some(rest) => match rest.iter().position(|&c| c == b' ') {
            Some(sp) => (&rest[..sp], &rest[sp + 1..]),
            None => (b"ERR", rest),
        },
        None => (b"ERR", text),
    };
    let start = msg
        .iter()
        .position(|c| *c != b'\r' && *c != b'\n')
        .unwrap_or(msg.len());
    let end = msg
        .iter()
        .rposition(|c| *c != b'\r' && *c != b'\n')
        .map_or(start, |e| e + 1);
    let msg = &msg[start..end.max(start)];
    ffi::lua_createtable(l, 0, 1);
    let mut full = Vec::with_capacity(code.len() + 1 + msg.len());
    full.extend_from_slice(code);
    full.push(b' ');
    full.extend_from_slice(msg);
    lua::push_bytes(l, &full);
    drop(full);
    lua::set_field(l, -2, "err");
}

/// Pushes the Lua form of a command's reply in the script's protocol.
///
/// # Safety
/// The allocator cap must be lifted ([`super::vm::HostGuard`]): nothing here may raise.
pub unsafe fn push_reply(l: *mut lua_State, reply: &Reply, resp3: bool) {
    push_reply_at(l, reply, resp3, 0)
}

unsafe fn push_reply_at(l: *mut lua_State, reply: &Reply, resp3: bool, depth: usize) {
    if depth > MAX_DEPTH || ffi::lua_checkstack(l, 5) == 0 {
        ffi::lua_pushboolean(l, 0);
        return;
    }
    match reply {
        Reply::Ok => push_single(l, "ok", b"OK"),
        Reply::Simple(s) => push_single(l, "ok", s.as_bytes()),
        Reply::Error(e) => {
            let mut text = Vec::with_capacity(e.len() + 1);
            text.push(b'-');
            text.extend_from_slice(e.as_bytes());
            push_error_table(l, &text);
            ffi::lua_pushboolean(l, 1);
            lua::set_field(l, -2, "ignore_error_stats_update");
        }
        Reply::Int(n) => ffi::lua_pushnumber(l, *n as f64),
        Reply::Bulk(b) => lua::push_bytes(l, b),
        Reply::Nil | Reply::NilArray => {
            if resp3 {
                ffi::lua_pushnil(l)
            } else {
                ffi::lua_pushboolean(l, 0)
            }
        }
        // Scripts do not see attributes (nor does Redis expose them to Lua yet).
        Reply::Attribute(_, reply) => push_reply_at(l, reply, resp3, depth + 1),
        Reply::Array(items) | Reply::Push(items) | Reply::Multiple(items) => {
            push_array(l, items, resp3, depth)
        }
        Reply::Set(items) if resp3 => {
            ffi::lua_createtable(l, 0, 1);
            ffi::lua_createtable(l, 0, items.len().min(1 << 20) as c_int);
            for item in items {
                push_reply_at(l, item, resp3, depth + 1);
                ffi::lua_pushboolean(l, 1);
                set_if_key(l);
            }
            lua::set_field(l, -2, "set");
        }
        Reply::Set(items) => push_array(l, items, resp3, depth),
        Reply::Map(pairs) if resp3 => {
            ffi::lua_createtable(l, 0, 1);
            ffi::lua_createtable(l, 0, pairs.len().min(1 << 20) as c_int);
            for (k, v) in pairs {
                push_reply_at(l, k, resp3, depth + 1);
                push_reply_at(l, v, resp3, depth + 1);
                set_if_key(l);
            }
            lua::set_field(l, -2, "map");
        }
        Reply::Map(pairs) => {
            ffi::lua_createtable(l, (pairs.len() * 2).min(1 << 20) as c_int, 0);
            let mut i: ffi::lua_Integer = 1;
            for (k, v) in pairs {
                push_reply_at(l, k, resp3, depth + 1);
                ffi::lua_rawseti(l, -2, i);
                push_reply_at(l, v, resp3, depth + 1);
                ffi::lua_rawseti(l, -2, i + 1);
                i += 2;
            }
        }
        Reply::Double(d) if resp3 => {
            ffi::lua_createtable(l, 0, 1);
            ffi::lua_pushnumber(l, *d);
            lua::set_field(l, -2, "double");
        }
        Reply::Double(d) => lua::push_str(l, &format_double(*d)),
        Reply::Bool(b) if resp3 => ffi::lua_pushboolean(l, *b as c_int),
        Reply::Bool(b) => ffi::lua_pushnumber(l, if *b { 1.0 } else { 0.0 }),
        Reply::Verbatim(s) if resp3 => push_verbatim(l, b"txt", s),
        Reply::VerbatimAs(format, s) if resp3 => push_verbatim(l, format, s),
        Reply::Verbatim(s) | Reply::VerbatimAs(_, s) => lua::push_bytes(l, s),
        Reply::BigNumber(digits) if resp3 => push_single(l, "big_number", digits),
        Reply::BigNumber(digits) => lua::push_bytes(l, digits),
    }
}

/// `t[k] = v` for the key and value on top of the table, unless the key is nil (a nil cannot
/// be a key; Redis's RESP3 parser never produces one in a map or set key position anyway).
unsafe fn set_if_key(l: *mut lua_State) {
    if ffi::lua_isnil(l, -2) != 0 {
        ffi::lua_pop(l, 2);
    } else {
        ffi::lua_rawset(l, -3);
    }
}

unsafe fn push_array(l: *mut lua_State, items: &[Reply], resp3: bool, depth: usize) {
    ffi::lua_createtable(l, items.len().min(1 << 20) as c_int, 0);
    for (i, item) in items.iter().enumerate() {
        push_reply_at(l, item, resp3, depth + 1);
        // A nil (RESP3 null) leaves a hole, as Redis's `lua_settable(t, i, nil)` does.
        ffi::lua_rawseti(l, -2, i as ffi::lua_Integer + 1);
    }
}

unsafe fn push_single(l: *mut lua_State, field: &str, value: &[u8]) {
    ffi::lua_createtable(l, 0, 1);
    lua::push_bytes(l, value);
    lua::set_field(l, -2, field);
}

unsafe fn push_verbatim(l: *mut lua_State, format: &[u8], s: &[u8]) {
    ffi::lua_createtable(l, 0, 1);
    ffi::lua_createtable(l, 0, 2);
    lua::push_bytes(l, s);
    lua::set_field(l, -2, "string");
    lua::push_bytes(l, format);
    lua::set_field(l, -2, "format");
    lua::set_field(l, -2, "verbatim_string");
}

/// Converts the value on top of the stack (popped) to the script's reply; `resp3` is the
/// script's protocol, which decides how booleans are returned.
///
/// # Safety
/// The allocator cap must be lifted; nothing here may raise.
pub unsafe fn to_reply(l: *mut lua_State, resp3: bool) -> Reply {
    let reply = to_reply_at(l, resp3, 0);
    ffi::lua_pop(l, 1);
    reply
}

/// The value on top of the stack as a reply (left on the stack).
unsafe fn to_reply_at(l: *mut lua_State, resp3: bool, depth: usize) -> Reply {
    if depth > MAX_DEPTH || ffi::lua_checkstack(l, 4) == 0 {
        return Reply::err("ERR reached lua stack limit");
    }
    match ffi::lua_type(l, -1) {
        ffi::LUA_TSTRING => Reply::Bulk(Bytes::copy_from_slice(
            lua::to_bytes(l, -1).unwrap_or_default(),
        )),
        ffi::LUA_TBOOLEAN => {
            let b = ffi::lua_toboolean(l, -1) != 0;
            match (resp3, b) {
                (true, b) => Reply::Bool(b),
                (false, true) => Reply::Int(1),
                (false, false) => Reply::Nil,
            }
        }
        ffi::LUA_TNUMBER => Reply::Int(lua::f64_to_i64_c(ffi::lua_tonumber(l, -1))),
        ffi::LUA_TTABLE => table_to_reply(l, resp3, depth),
        _ => Reply::Nil,
    }
}

unsafe fn table_to_reply(l: *mut lua_State, resp3: bool, depth: usize) -> Reply {
    if let Some(err) = lua::raw_string_field(l, -1, "err") {
        return Reply::Error(String::from_utf8_lossy(&err).into_owned().into());
    }
    if let Some(ok) = lua::raw_string_field(l, -1, "ok") {
        return Reply::Simple(String::from_utf8_lossy(&ok).into_owned().into());
    }
    lua::push_str(l, "double");
    ffi::lua_rawget(l, -2);
    if ffi::lua_type(l, -1) == ffi::LUA_TNUMBER {
        let d = ffi::lua_tonumber(l, -1);
        ffi::lua_pop(l, 1);
        return Reply::Double(d);
    }
    ffi::lua_pop(l, 1);
    if let Some(mut digits) = lua::raw_string_field(l, -1, "big_number") {
        // A line break would end the `(` line early: Redis turns each into a space.
        for c in digits.iter_mut().filter(|c| matches!(c, b'\r' | b'\n')) {
            *c = b' ';
        }
        return Reply::BigNumber(Bytes::from(digits));
    }
    lua::push_str(l, "verbatim_string");
    ffi::lua_rawget(l, -2);
    if ffi::lua_istable(l, -1) != 0 {
        let format = lua::raw_string_field(l, -1, "format");
        let text = lua::raw_string_field(l, -1, "string");
        if let (Some(format), Some(text)) = (format, text) {
            ffi::lua_pop(l, 1);
            let mut f = [0u8; 3];
            for (d, s) in f.iter_mut().zip(&format) {
                *d = *s;
            }
            return Reply::VerbatimAs(f, Bytes::from(text));
        }
    }
    ffi::lua_pop(l, 1);
    for (field, is_map) in [("map", true), ("set", false)] {
        lua::push_str(l, field);
        ffi::lua_rawget(l, -2);
        if ffi::lua_istable(l, -1) != 0 {
            let reply = collect(l, resp3, depth, is_map);
            ffi::lua_pop(l, 1);
            return reply;
        }
        ffi::lua_pop(l, 1);
    }
    let mut items = Vec::new();
    let mut j: ffi::lua_Integer = 1;
    loop {
        ffi::lua_rawgeti(l, -1, j);
        if ffi::lua_isnil(l, -1) != 0 {
            ffi::lua_pop(l, 1);
            break;
        }
        items.push(to_reply_at(l, resp3, depth + 1));
        ffi::lua_pop(l, 1);
        j += 1;
    }
    Reply::Array(items)
}

/// A `map` (keys and values) or `set` (keys) table on top of the stack.
unsafe fn collect(l: *mut lua_State, resp3: bool, depth: usize, is_map: bool) -> Reply {
    let mut pairs = Vec::new();
    let mut members = Vec::new();
    ffi::lua_pushnil(l);
    while ffi::lua_next(l, -2) != 0 {
        if is_map {
            let value = to_reply_at(l, resp3, depth + 1);
            ffi::lua_pop(l, 1);
            let key = to_reply_at(l, resp3, depth + 1);
            pairs.push((key, value));
        } else {
            ffi::lua_pop(l, 1);
            members.push(to_reply_at(l, resp3, depth + 1));
        }
    }
    if is_map {
        Reply::Map(pairs)
    } else {
        Reply::Set(members)
    }
}
