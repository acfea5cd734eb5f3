//! The `cjson` library scripts see (lua-cjson 2.1.0's API and behaviour, as Redis bundles
//! it): `encode`, `decode`, the settings functions, `new` (an independent instance) and
//! `null`. Encoding: numbers as `%.14g`, `/` escaped, tables with only positive integer keys
//! as arrays (unless excessively sparse), other tables as objects, `{}` for an empty table.
//! Decoding: JSON plus the leniencies of lua-cjson (hexadecimal, `inf`, `nan` numbers when
//! `decode_invalid_numbers` is on), `null` as the `cjson.null` light userdata.

use std::ffi::{c_char, c_int, CStr};

use mlua::ffi;

use crate::script::lua::{self, lua_State, CFn};

/// One instance's settings, kept in a userdata shared by its functions as their upvalue.
#[derive(Clone, Copy)]
struct Config {
    sparse_convert: bool,
    sparse_ratio: i64,
    sparse_safe: i64,
    encode_max_depth: i64,
    decode_max_depth: i64,
    /// 0 = refuse, 1 = encode (`nan`, `inf`), 2 = encode as `null`.
    encode_invalid_numbers: i64,
    decode_invalid_numbers: bool,
    keep_buffer: bool,
    precision: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sparse_convert: false,
            sparse_ratio: 2,
            sparse_safe: 10,
            encode_max_depth: 1000,
            decode_max_depth: 1000,
            encode_invalid_numbers: 0,
            decode_invalid_numbers: true,
            keep_buffer: true,
            precision: 14,
        }
    }
}

const FUNCTIONS: &[(&str, CFn)] = &[
    ("encode", encode),
    ("decode", decode),
    ("encode_sparse_array", encode_sparse_array),
    ("encode_max_depth", encode_max_depth),
    ("decode_max_depth", decode_max_depth),
    ("encode_number_precision", encode_number_precision),
    ("encode_keep_buffer", encode_keep_buffer),
    ("encode_invalid_numbers", encode_invalid_numbers),
    ("decode_invalid_numbers", decode_invalid_numbers),
    ("new", new),
];

/// Pushes a new `cjson` table with default settings.
///
/// # Safety
/// `l` is a valid state with room for a few values.
pub unsafe fn push_instance(l: *mut lua_State) {
    ffi::lua_newtable(l);
    let cfg = ffi::lua_newuserdata(l, std::mem::size_of::<Config>()) as *mut Config;
    cfg.write(Config::default());
    for (name, f) in FUNCTIONS {
        ffi::lua_pushvalue(l, -1);
        ffi::lua_pushcclosure(l, *f, 1);
        lua::set_field(l, -3, name);
    }
    ffi::lua_pop(l, 1);
    ffi::lua_pushlightuserdata(l, std::ptr::null_mut());
    lua::set_field(l, -2, "null");
    lua::push_str(l, "cjson");
    lua::set_field(l, -2, "_NAME");
    lua::push_str(l, "2.1.0");
    lua::set_field(l, -2, "_VERSION");
}

unsafe fn config<'a>(l: *mut lua_State) -> &'a mut Config {
    let p = ffi::lua_touserdata(l, ffi::lua_upvalueindex(1)) as *mut Config;
    match p.as_mut() {
        Some(c) => c,
        None => lua::raise(l, "BUG: Unable to fetch CJSON configuration".into()),
    }
}

unsafe extern "C-unwind" fn new(l: *mut lua_State) -> c_int {
    push_instance(l);
    1
}

/// Checks there are at most `args` arguments and pads with nils.
unsafe fn arg_init<'a>(l: *mut lua_State, args: c_int) -> &'a mut Config {
    if ffi::lua_gettop(l) > args {
        ffi::luaL_argerror(l, args + 1, c"found too many arguments".as_ptr());
    }
    while ffi::lua_gettop(l) < args {
        ffi::lua_pushnil(l);
    }
    config(l)
}

unsafe fn integer_option(l: *mut lua_State, idx: c_int, setting: &mut i64, min: i64, max: i64) {
    if ffi::lua_isnil(l, idx) == 0 {
        let value = ffi::luaL_checkinteger(l, idx) as i64;
        if value < min || value > max {
            lua::arg_error(l, 1, format!("expected integer between {min} and {max}"));
        }
        *setting = value;
    }
    ffi::lua_pushinteger(l, *setting as ffi::lua_Integer);
}

/// An on/off option (`options` None) or one of `options`; booleans set 0 or 1.
unsafe fn enum_option(l: *mut lua_State, idx: c_int, setting: &mut i64, options: &[&CStr]) {
    if ffi::lua_isnil(l, idx) == 0 {
        if ffi::lua_isboolean(l, idx) != 0 {
            *setting = ffi::lua_toboolean(l, idx) as i64;
        } else {
            let mut list: Vec<*const c_char> = options.iter().map(|o| o.as_ptr()).collect();
            list.push(std::ptr::null());
            let chosen = ffi::luaL_checkoption(l, idx, std::ptr::null(), list.as_ptr());
            drop(list);
            *setting = chosen as i64;
        }
    }
    if *setting == 0 || *setting == 1 {
        ffi::lua_pushboolean(l, *setting as c_int);
    } else if let Some(name) = options.get(*setting as usize) {
        ffi::lua_pushstring(l, name.as_ptr());
    }
}

const ON_OFF: &[&CStr] = &[c"off", c"on"];

unsafe extern "C-unwind" fn encode_sparse_array(l: *mut lua_State) -> c_int {
    let cfg = arg_init(l, 3);
    let mut convert = cfg.sparse_convert as i64;
    enum_option(l, 1, &mut convert, ON_OFF);
    cfg.sparse_convert = convert != 0;
    integer_option(l, 2, &mut cfg.sparse_ratio, 0, i32::MAX as i64);
    integer_option(l, 3, &mut cfg.sparse_safe, 0, i32::MAX as i64);
    3
}

unsafe extern "C-unwind" fn encode_max_depth(l: *mut lua_State) -> c_int {
    let cfg = arg_init(l, 1);
    integer_option(l, 1, &mut cfg.encode_max_depth, 1, i32::MAX as i64);
    1
}

unsafe extern "C-unwind" fn decode_max_depth(l: *mut lua_State) -> c_int {
    let cfg = arg_init(l, 1);
    integer_option(l, 1, &mut cfg.decode_max_depth, 1, i32::MAX as i64);
    1
}

unsafe extern "C-unwind" fn encode_number_precision(l: *mut lua_State) -> c_int {
    let cfg = arg_init(l, 1);
    let mut p = cfg.precision as i64;
    integer_option(l, 1, &mut p, 1, 14);
    cfg.precision = p as usize;
    1
}

unsafe extern "C-unwind" fn encode_keep_buffer(l: *mut lua_State) -> c_int {
    let cfg = arg_init(l, 1);
    let mut keep = cfg.keep_buffer as i64;
    enum_option(l, 1, &mut keep, ON_OFF);
    cfg.keep_buffer = keep != 0;
    1
}

unsafe extern "C-unwind" fn encode_invalid_numbers(l: *mut lua_State) -> c_int {
    let cfg = arg_init(l, 1);
    enum_option(
        l,
        1,
        &mut cfg.encode_invalid_numbers,
        &[c"off", c"on", c"null"],
    );
    1
}

unsafe extern "C-unwind" fn decode_invalid_numbers(l: *mut lua_State) -> c_int {
    let cfg = arg_init(l, 1);
    let mut on = cfg.decode_invalid_numbers as i64;
    enum_option(l, 1, &mut on, ON_OFF);
    cfg.decode_invalid_numbers = on != 0;
    1
}

// ---------------------------------------------------------------------------------------------
// Encoding

/// The JSON escape of a byte, if it needs one.
fn escape(c: u8) -> Option<&'static str> {
    const CONTROL: [&str; 32] = [
        "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007",
        "\\b", "\\t", "\\n", "\\u000b", "\\f", "\\r", "\\u000e", "\\u000f", "\\u0010", "\\u0011",
        "\\u0012", "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017", "\\u0018", "\\u0019",
        "\\u001a", "\\u001b", "\\u001c", "\\u001d", "\\u001e", "\\u001f",
    ];
    match c {
        0..=31 => Some(CONTROL[c as usize]),
        b'"' => Some("\\\""),
        b'/' => Some("\\/"),
        b'\\' => Some("\\\\"),
        0x7f => Some("\\u007f"),
        _ => None,
    }
}

fn append_string(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    for &c in s {
        match escape(c) {
            Some(e) => out.extend_from_slice(e.as_bytes()),
            None => out.push(c),
        }
    }
    out.push(b'"');
}

unsafe fn type_name(l: *mut lua_State, idx: c_int) -> String {
    let p = ffi::lua_typename(l, ffi::lua_type(l, idx));
    if p.is_null() {
        String::new()
    } else {
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

unsafe fn cannot(l: *mut lua_State, idx: c_int, reason: &str) -> String {
    format!("Cannot serialise {}: {reason}", type_name(l, idx))
}

unsafe fn append_number(
    l: *mut lua_State,
    cfg: &Config,
    out: &mut Vec<u8>,
    idx: c_int,
) -> Result<(), String> {
    let n = ffi::lua_tonumber(l, idx);
    match cfg.encode_invalid_numbers {
        0 if !n.is_finite() => return Err(cannot(l, idx, "must not be NaN or Inf")),
        1 if n.is_nan() => {
            out.extend_from_slice(b"nan");
            return Ok(());
        }
        2 if !n.is_finite() => {
            out.extend_from_slice(b"null");
            return Ok(());
        }
        _ => {}
    }
    out.extend_from_slice(lua::format_g(n, cfg.precision).as_bytes());
    Ok(())
}

/// The array length of the table on top of the stack, or None to encode it as an object.
unsafe fn array_length(l: *mut lua_State, cfg: &Config) -> Result<Option<usize>, String> {
    let mut max: f64 = 0.0;
    let mut items: f64 = 0.0;
    ffi::lua_pushnil(l);
    while ffi::lua_next(l, -2) != 0 {
        let k = ffi::lua_tonumber(l, -2);
        if ffi::lua_type(l, -2) == ffi::LUA_TNUMBER && k != 0.0 && k.floor() == k && k >= 1.0 {
            max = max.max(k);
            items += 1.0;
            ffi::lua_pop(l, 1);
            continue;
        }
        ffi::lua_pop(l, 2);
        return Ok(None);
    }
    if cfg.sparse_ratio > 0 && max > items * cfg.sparse_ratio as f64 && max > cfg.sparse_safe as f64
    {
        if !cfg.sparse_convert {
            return Err(cannot(l, -1, "excessively sparse array"));
        }
        return Ok(None);
    }
    Ok(if max > 0.0 {
        Some(max.min(i32::MAX as f64) as usize)
    } else {
        None
    })
}

/// Appends the value on top of the stack (left there).
unsafe fn append_value(
    l: *mut lua_State,
    cfg: &Config,
    depth: i64,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    match ffi::lua_type(l, -1) {
        ffi::LUA_TSTRING => append_string(out, lua::to_bytes(l, -1).unwrap_or_default()),
        ffi::LUA_TNUMBER => append_number(l, cfg, out, -1)?,
        ffi::LUA_TBOOLEAN => out.extend_from_slice(if ffi::lua_toboolean(l, -1) != 0 {
            b"true"
        } else {
            b"false"
        }),
        ffi::LUA_TTABLE => {
            let depth = depth + 1;
            if depth > cfg.encode_max_depth || ffi::lua_checkstack(l, 3) == 0 {
                return Err(format!("Cannot serialise, excessive nesting ({depth})"));
            }
            match array_length(l, cfg)? {
                Some(len) => {
                    out.push(b'[');
                    for i in 1..=len {
                        if i > 1 {
                            out.push(b',');
                        }
                        ffi::lua_rawgeti(l, -1, i as ffi::lua_Integer);
                        let r = append_value(l, cfg, depth, out);
                        ffi::lua_pop(l, 1);
                        r?;
                    }
                    out.push(b']');
                }
                None => {
                    out.push(b'{');
                    let mut first = true;
                    ffi::lua_pushnil(l);
                    while ffi::lua_next(l, -2) != 0 {
                        if !first {
                            out.push(b',');
                        }
                        first = false;
                        match ffi::lua_type(l, -2) {
                            ffi::LUA_TNUMBER => {
                                out.push(b'"');
                                append_number(l, cfg, out, -2)?;
                                out.extend_from_slice(b"\":");
                            }
                            ffi::LUA_TSTRING => {
                                append_string(out, lua::to_bytes(l, -2).unwrap_or_default());
                                out.push(b':');
                            }
                            _ => return Err(cannot(l, -2, "table key must be a number or string")),
                        }
                        append_value(l, cfg, depth, out)?;
                        ffi::lua_pop(l, 1);
                    }
                    out.push(b'}');
                }
            }
        }
        ffi::LUA_TNIL => out.extend_from_slice(b"null"),
        ffi::LUA_TLIGHTUSERDATA if ffi::lua_touserdata(l, -1).is_null() => {
            out.extend_from_slice(b"null")
        }
        _ => return Err(cannot(l, -1, "type not supported")),
    }
    Ok(())
}

unsafe extern "C-unwind" fn encode(l: *mut lua_State) -> c_int {
    let cfg = *config(l);
    if ffi::lua_gettop(l) != 1 {
        ffi::luaL_argerror(l, 1, c"expected 1 argument".as_ptr());
    }
    let mut out = Vec::new();
    let result = append_value(l, &cfg, 0, &mut out);
    match result {
        Ok(()) => {
            let _host = crate::script::vm::HostGuard::enter();
            lua::push_bytes(l, &out);
            1
        }
        Err(msg) => {
            drop(out);
            // What the walk left on the stack may fill it: room for the message first.
            ffi::lua_settop(l, 1);
            lua::raise(l, msg)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding

#[derive(Clone, Copy, PartialEq, Debug)]
enum Tok {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str,
    Number(f64),
    Bool(bool),
    Null,
    Colon,
    Comma,
    End,
    Error(&'static str),
}

impl Tok {
    fn name(self) -> &'static str {
        match self {
            Tok::ObjBegin => "T_OBJ_BEGIN",
            Tok::ObjEnd => "T_OBJ_END",
            Tok::ArrBegin => "T_ARR_BEGIN",
            Tok::ArrEnd => "T_ARR_END",
            Tok::Str => "T_STRING",
            Tok::Number(_) => "T_NUMBER",
            Tok::Bool(_) => "T_BOOLEAN",
            Tok::Null => "T_NULL",
            Tok::Colon => "T_COLON",
            Tok::Comma => "T_COMMA",
            Tok::End => "T_END",
            Tok::Error(e) => e,
        }
    }
}

struct Parser<'a> {
    data: &'a [u8],
    pos: usize,
    cfg: Config,
    depth: i64,
    /// The last string token's bytes.
    text: Vec<u8>,
}

impl Parser<'_> {
    /// The byte at `i`; a Lua string is followed by a NUL, which ends the text as in C.
    fn at(&self, i: usize) -> u8 {
        self.data.get(i).copied().unwrap_or(0)
    }

    fn starts(&self, word: &[u8]) -> bool {
        self.data.get(self.pos..self.pos + word.len()) == Some(word)
    }

    fn invalid_number_start(&self) -> bool {
        let mut p = self.pos;
        match self.at(p) {
            b'+' => return true,
            b'-' => p += 1,
            _ => {}
        }
        let c = self.at(p);
        if c == b'0' {
            let c2 = self.at(p + 1);
            return (c2 | 0x20) == b'x' || c2.is_ascii_digit();
        }
        if c <= b'9' {
            return false;
        }
        let word: Vec<u8> = (0..3)
            .map(|i| self.at(p + i).to_ascii_lowercase())
            .collect();
        word == b"inf" || word == b"nan"
    }

    fn number(&mut self) -> Tok {
        match lua::strtod_prefix(&self.data[self.pos.min(self.data.len())..]) {
            Some((v, used)) if used > 0 => {
                self.pos += used;
                Tok::Number(v)
            }
            _ => Tok::Error("invalid number"),
        }
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        (0..4).try_fold(0u32, |acc, i| {
            let d = (self.at(at + i) as char).to_digit(16)?;
            Some((acc << 4) | d)
        })
    }

    /// A `\uXXXX` escape (a surrogate pair takes two) at `pos`, appended as UTF-8.
    fn unicode_escape(&mut self) -> bool {
        let Some(mut cp) = self.hex4(self.pos + 2) else {
            return false;
        };
        let mut len = 6;
        if cp & 0xF800 == 0xD800 {
            if cp & 0x400 != 0 || self.at(self.pos + 6) != b'\\' || self.at(self.pos + 7) != b'u' {
                return false;
            }
            let Some(low) = self.hex4(self.pos + 8) else {
                return false;
            };
            if low & 0xFC00 != 0xDC00 {
                return false;
            }
            cp = (((cp & 0x3FF) << 10) | (low & 0x3FF)) + 0x10000;
            len = 12;
        }
        let mut buf = [0u8; 4];
        let n = match cp {
            0..=0x7F => {
                buf[0] = cp as u8;
                1
            }
            0x80..=0x7FF => {
                buf[0] = ((cp >> 6) | 0xC0) as u8;
                buf[1] = ((cp & 0x3F) | 0x80) as u8;
                2
            }
            0x800..=0xFFFF => {
                buf[0] = ((cp >> 12) | 0xE0) as u8;
                buf[1] = (((cp >> 6) & 0x3F) | 0x80) as u8;
                buf[2] = ((cp & 0x3F) | 0x80) as u8;
                3
            }
            _ => {
                buf[0] = ((cp >> 18) | 0xF0) as u8;
                buf[1] = (((cp >> 12) & 0x3F) | 0x80) as u8;
                buf[2] = (((cp >> 6) & 0x3F) | 0x80) as u8;
                buf[3] = ((cp & 0x3F) | 0x80) as u8;
                4
            }
        };
        self.text.extend_from_slice(&buf[..n]);
        self.pos += len;
        true
    }

    fn string(&mut self) -> Tok {
        self.pos += 1;
        self.text.clear();
        loop {
            let c = self.at(self.pos);
            if c == b'"' {
                break;
            }
            if c == 0 {
                return Tok::Error("unexpected end of string");
            }
            if c == b'\\' {
                let esc = match self.at(self.pos + 1) {
                    b'"' => b'"',
                    b'\\' => b'\\',
                    b'/' => b'/',
                    b'b' => 8,
                    b't' => b'\t',
                    b'n' => b'\n',
                    b'f' => 12,
                    b'r' => b'\r',
                    b'u' => {
                        if self.unicode_escape() {
                            continue;
                        }
                        return Tok::Error("invalid unicode escape code");
                    }
                    _ => return Tok::Error("invalid escape code"),
                };
                self.text.push(esc);
                self.pos += 2;
                continue;
            }
            self.text.push(c);
            self.pos += 1;
        }
        self.pos += 1;
        Tok::Str
    }

    /// The next token and the (0-based) index where it starts.
    fn next(&mut self) -> (Tok, usize) {
        while matches!(self.at(self.pos), b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
        let index = self.pos;
        let c = self.at(self.pos);
        let single = match c {
            b'{' => Some(Tok::ObjBegin),
            b'}' => Some(Tok::ObjEnd),
            b'[' => Some(Tok::ArrBegin),
            b']' => Some(Tok::ArrEnd),
            b',' => Some(Tok::Comma),
            b':' => Some(Tok::Colon),
            _ => None,
        };
        if let Some(tok) = single {
            self.pos += 1;
            return (tok, index);
        }
        let tok = match c {
            0 => Tok::End,
            b'"' => self.string(),
            b'-' | b'0'..=b'9' => {
                if !self.cfg.decode_invalid_numbers && self.invalid_number_start() {
                    Tok::Error("invalid number")
                } else {
                    self.number()
                }
            }
            b'f' | b'i' | b'I' | b'n' | b'N' | b't' | b'+' => {
                if self.starts(b"true") {
                    self.pos += 4;
                    Tok::Bool(true)
                } else if self.starts(b"false") {
                    self.pos += 5;
                    Tok::Bool(false)
                } else if self.starts(b"null") {
                    self.pos += 4;
                    Tok::Null
                } else if self.cfg.decode_invalid_numbers && self.invalid_number_start() {
                    self.number()
                } else {
                    Tok::Error("invalid token")
                }
            }
            _ => Tok::Error("invalid token"),
        };
        // An error token reports where the parser stopped.
        let index = if matches!(tok, Tok::Error(_)) {
            self.pos
        } else {
            index
        };
        (tok, index)
    }

    fn expected(&self, what: &str, tok: Tok, index: usize) -> String {
        format!(
            "Expected {what} but found {} at character {}",
            tok.name(),
            index + 1
        )
    }

    unsafe fn descend(&mut self, l: *mut lua_State, slots: c_int) -> Result<(), String> {
        self.depth += 1;
        if self.depth <= self.cfg.decode_max_depth && ffi::lua_checkstack(l, slots) != 0 {
            return Ok(());
        }
        Err(format!(
            "Found too many nested data structures ({}) at character {}",
            self.depth, self.pos
        ))
    }

    unsafe fn value(&mut self, l: *mut lua_State, tok: Tok, index: usize) -> Result<(), String> {
        match tok {
            Tok::Str => lua::push_bytes(l, &self.text),
            Tok::Number(n) => ffi::lua_pushnumber(l, n),
            Tok::Bool(b) => ffi::lua_pushboolean(l, b as c_int),
            Tok::Null => ffi::lua_pushlightuserdata(l, std::ptr::null_mut()),
            Tok::ObjBegin => self.object(l)?,
            Tok::ArrBegin => self.array(l)?,
            _ => return Err(self.expected("value", tok, index)),
        }
        Ok(())
    }

    unsafe fn object(&mut self, l: *mut lua_State) -> Result<(), String> {
        self.descend(l, 3)?;
        ffi::lua_newtable(l);
        let (mut tok, mut index) = self.next();
        if tok == Tok::ObjEnd {
            self.depth -= 1;
            return Ok(());
        }
        loop {
            if tok != Tok::Str {
                return Err(self.expected("object key string", tok, index));
            }
            lua::push_bytes(l, &self.text);
            let (t, i) = self.next();
            if t != Tok::Colon {
                return Err(self.expected("colon", t, i));
            }
            let (t, i) = self.next();
            self.value(l, t, i)?;
            ffi::lua_rawset(l, -3);
            let (t, i) = self.next();
            if t == Tok::ObjEnd {
                self.depth -= 1;
                return Ok(());
            }
            if t != Tok::Comma {
                return Err(self.expected("comma or object end", t, i));
            }
            (tok, index) = self.next();
        }
    }

    unsafe fn array(&mut self, l: *mut lua_State) -> Result<(), String> {
        self.descend(l, 2)?;
        ffi::lua_newtable(l);
        let (mut tok, mut index) = self.next();
        if tok == Tok::ArrEnd {
            self.depth -= 1;
            return Ok(());
        }
        let mut i: ffi::lua_Integer = 1;
        loop {
            self.value(l, tok, index)?;
            ffi::lua_rawseti(l, -2, i);
            i += 1;
            let (t, at) = self.next();
            if t == Tok::ArrEnd {
                self.depth -= 1;
                return Ok(());
            }
            if t != Tok::Comma {
                return Err(self.expected("comma or array end", t, at));
            }
            (tok, index) = self.next();
        }
    }
}

unsafe extern "C-unwind" fn decode(l: *mut lua_State) -> c_int {
    if ffi::lua_gettop(l) != 1 {
        ffi::luaL_argerror(l, 1, c"expected 1 argument".as_ptr());
    }
    let cfg = *config(l);
    let mut len = 0usize;
    let p = ffi::luaL_checklstring(l, 1, &mut len);
    let data = std::slice::from_raw_parts(p as *const u8, len);
    if len >= 2 && (data[0] == 0 || data[1] == 0) {
        lua::raise(l, "JSON parser does not support UTF-16 or UTF-32".into());
    }
    let host = crate::script::vm::HostGuard::enter();
    let mut parser = Parser {
        data,
        pos: 0,
        cfg,
        depth: 0,
        text: Vec::new(),
    };
    let result = (|| {
        let (tok, index) = parser.next();
        parser.value(l, tok, index)?;
        let (tok, index) = parser.next();
        if tok != Tok::End {
            return Err(parser.expected("the end", tok, index));
        }
        Ok(())
    })();
    drop(parser);
    drop(host);
    match result {
        Ok(()) => 1,
        Err(msg) => {
            // The tables built so far may fill the stack: room for the message first.
            ffi::lua_settop(l, 1);
            lua::raise(l, msg)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_escape_like_lua_cjson() {
        let mut out = Vec::new();
        append_string(&mut out, b"a/b\"c\\\n\x01\x7f\xc3\xa9");
        assert_eq!(out, b"\"a\\/b\\\"c\\\\\\n\\u0001\\u007f\xc3\xa9\"".to_vec());
    }
}
