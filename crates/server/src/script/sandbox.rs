//! The protections of Redis's scripting environment, on a stock Lua 5.1.
//!
//! Redis 7.0 patches its Lua with read-only tables: the globals, and every table reachable
//! from them (`redis`, `string`, `cjson`…), refuse any change with "Attempt to modify a
//! readonly table". Stock Lua has no such flag, so the same effect is built from proxies: a
//! script sees, for each protected table, an empty proxy whose metatable reads through to the
//! real table and refuses writes; the real tables are never reachable from scripts. The
//! functions that could write a table without metamethods (`rawset`, `setmetatable`,
//! `table.insert`…) are wrapped to refuse proxies, and those that read raw contents
//! (`rawget`, `next`, `pairs`, `ipairs`, `getmetatable`) read through them, so scripts observe
//! what they would in Redis.
//!
//! Also here: the globals' error metatable ("Script attempted to access nonexistent global
//! variable"), Redis's `pcall` (an error table becomes its message), the refusal of binary
//! chunks by `loadstring`/`load` (Redis's Lua has no bytecode loader: such a chunk fails to
//! parse as text), and the error handler that adds the source and line to an error.

use std::ffi::{c_char, c_int};

use mlua::ffi;

use super::lua::{self, lua_State};

/// Registry key of the weak table mapping each proxy to its real table.
const PROXIES: &str = "shardis.proxies";
/// Registry key of the weak table mapping a real table to its proxy (one proxy per table).
const VIEWS: &str = "shardis.views";
/// Registry key of the original `tostring`, for the error handler.
const TOSTRING: &str = "shardis.tostring";

const READONLY: &str = "Attempt to modify a readonly table";

unsafe fn registry_get(l: *mut lua_State, key: &str) {
    lua::push_str(l, key);
    ffi::lua_rawget(l, ffi::LUA_REGISTRYINDEX);
}

unsafe fn registry_set(l: *mut lua_State, key: &str) {
    lua::push_str(l, key);
    ffi::lua_insert(l, -2);
    ffi::lua_rawset(l, ffi::LUA_REGISTRYINDEX);
}

/// Creates the registry tables the protections use.
///
/// # Safety
/// A fresh state with room on the stack.
pub unsafe fn init(l: *mut lua_State) {
    for key in [PROXIES, VIEWS] {
        ffi::lua_newtable(l);
        ffi::lua_newtable(l);
        lua::push_str(l, "k");
        lua::set_field(l, -2, "__mode");
        ffi::lua_setmetatable(l, -2);
        registry_set(l, key);
    }
    ffi::lua_getfield(l, ffi::LUA_GLOBALSINDEX, c"tostring".as_ptr());
    registry_set(l, TOSTRING);
}

/// Pushes the real table behind the value at `idx` if it is a proxy, and returns true;
/// pushes nothing and returns false otherwise.
unsafe fn push_real(l: *mut lua_State, idx: c_int) -> bool {
    if ffi::lua_type(l, idx) != ffi::LUA_TTABLE {
        return false;
    }
    let idx = ffi::lua_absindex(l, idx);
    registry_get(l, PROXIES);
    ffi::lua_pushvalue(l, idx);
    ffi::lua_rawget(l, -2);
    ffi::lua_remove(l, -2);
    if ffi::lua_isnil(l, -1) != 0 {
        ffi::lua_pop(l, 1);
        return false;
    }
    true
}

/// Whether the value at `idx` is a read-only proxy.
unsafe fn is_proxy(l: *mut lua_State, idx: c_int) -> bool {
    let found = push_real(l, idx);
    if found {
        ffi::lua_pop(l, 1);
    }
    found
}

/// Replaces the table on top of the stack with its read-only proxy (the same proxy for the
/// same table), whose reads fall through to `index` (the table itself when None).
///
/// # Safety
/// A table is on top of the stack.
pub unsafe fn make_readonly(l: *mut lua_State) {
    let real = ffi::lua_gettop(l);
    registry_get(l, VIEWS);
    ffi::lua_pushvalue(l, real);
    ffi::lua_rawget(l, -2);
    if ffi::lua_istable(l, -1) != 0 {
        ffi::lua_replace(l, real);
        ffi::lua_pop(l, 1);
        return;
    }
    ffi::lua_pop(l, 1);
    // views at real+1
    ffi::lua_newtable(l); // proxy
    ffi::lua_newtable(l); // its metatable
    ffi::lua_pushvalue(l, real);
    lua::set_field(l, -2, "__index");
    ffi::lua_pushcfunction(l, readonly_newindex);
    lua::set_field(l, -2, "__newindex");
    ffi::lua_setmetatable(l, -2);
    // views[real] = proxy
    ffi::lua_pushvalue(l, real);
    ffi::lua_pushvalue(l, -2);
    ffi::lua_rawset(l, real + 1);
    // proxies[proxy] = real
    registry_get(l, PROXIES);
    ffi::lua_pushvalue(l, -2);
    ffi::lua_pushvalue(l, real);
    ffi::lua_rawset(l, -3);
    ffi::lua_pop(l, 1);
    ffi::lua_replace(l, real);
    ffi::lua_pop(l, 1);
}

/// Pushes a new empty read-only table whose reads fall through to the table at `index_idx`,
/// and which reports `real_idx` as what it stands for (for `getmetatable`, `next`…). This is
/// the shape of the globals table a script runs with.
///
/// # Safety
/// Tables are at both indexes.
pub unsafe fn push_globals_proxy(l: *mut lua_State, index_idx: c_int, real_idx: c_int) {
    let index_idx = ffi::lua_absindex(l, index_idx);
    let real_idx = ffi::lua_absindex(l, real_idx);
    ffi::lua_newtable(l);
    ffi::lua_newtable(l);
    ffi::lua_pushvalue(l, index_idx);
    lua::set_field(l, -2, "__index");
    ffi::lua_pushcfunction(l, readonly_newindex);
    lua::set_field(l, -2, "__newindex");
    ffi::lua_setmetatable(l, -2);
    registry_get(l, PROXIES);
    ffi::lua_pushvalue(l, -2);
    ffi::lua_pushvalue(l, real_idx);
    ffi::lua_rawset(l, -3);
    ffi::lua_pop(l, 1);
}

/// Points the reads of the globals proxy on top of the stack at the table at `index_idx`
/// (functions switch between the loading and the running environment).
///
/// # Safety
/// The proxy (from [`push_globals_proxy`]) is at `proxy_idx`, a table at `index_idx`.
pub unsafe fn redirect_globals(l: *mut lua_State, proxy_idx: c_int, index_idx: c_int) {
    let index_idx = ffi::lua_absindex(l, index_idx);
    if ffi::lua_getmetatable(l, proxy_idx) != 0 {
        ffi::lua_pushvalue(l, index_idx);
        lua::set_field(l, -2, "__index");
        ffi::lua_pop(l, 1);
    }
}

/// Gives the table on top of the stack the metatable that turns a missing key into Redis's
/// "nonexistent global variable" error.
///
/// # Safety
/// A table is on top of the stack.
pub unsafe fn set_error_metatable(l: *mut lua_State) {
    ffi::lua_newtable(l);
    ffi::lua_pushcfunction(l, nonexistent_global);
    lua::set_field(l, -2, "__index");
    ffi::lua_setmetatable(l, -2);
}

unsafe extern "C-unwind" fn readonly_newindex(l: *mut lua_State) -> c_int {
    lua::raise(l, READONLY.into())
}

unsafe extern "C-unwind" fn nonexistent_global(l: *mut lua_State) -> c_int {
    if ffi::lua_gettop(l) != 2 {
        lua::raise(
            l,
            "Wrong number of arguments to luaProtectedTableError".into(),
        );
    }
    if ffi::lua_isstring(l, -1) == 0 {
        lua::raise(
            l,
            "Second argument to luaProtectedTableError must be a string or number".into(),
        );
    }
    let name = String::from_utf8_lossy(lua::to_bytes(l, -1).unwrap_or_default()).into_owned();
    lua::raise(
        l,
        format!("Script attempted to access nonexistent global variable '{name}'"),
    )
}

// ---------------------------------------------------------------------------------------------
// Wrapped base functions. Each keeps the original as its first upvalue.

unsafe fn call_original(l: *mut lua_State) -> c_int {
    let n = ffi::lua_gettop(l);
    ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
    ffi::lua_insert(l, 1);
    ffi::lua_call(l, n, ffi::LUA_MULTRET);
    ffi::lua_gettop(l)
}

/// `rawset`, `setmetatable`, `table.insert/remove/sort`: refused on a proxy.
unsafe extern "C-unwind" fn refuse_proxy(l: *mut lua_State) -> c_int {
    if is_proxy(l, 1) {
        lua::raise(l, READONLY.into());
    }
    call_original(l)
}

/// `rawget`, `next`: applied to the real table behind a proxy.
unsafe extern "C-unwind" fn through_proxy(l: *mut lua_State) -> c_int {
    if push_real(l, 1) {
        ffi::lua_replace(l, 1);
    }
    call_original(l)
}

/// `pairs(t)`: the wrapped `next`, `t`, nil.
unsafe extern "C-unwind" fn pairs(l: *mut lua_State) -> c_int {
    ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE);
    ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
    ffi::lua_pushvalue(l, 1);
    ffi::lua_pushnil(l);
    3
}

unsafe extern "C-unwind" fn ipairs_step(l: *mut lua_State) -> c_int {
    let i = ffi::luaL_checkinteger(l, 2) + 1;
    ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE);
    let source = if push_real(l, 1) { -1 } else { 1 };
    ffi::lua_pushinteger(l, i);
    ffi::lua_rawgeti(l, source, i);
    if ffi::lua_isnil(l, -1) != 0 {
        return 0;
    }
    2
}

/// `ipairs(t)`: iterates the real table behind a proxy without exposing it.
unsafe extern "C-unwind" fn ipairs(l: *mut lua_State) -> c_int {
    ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE);
    ffi::lua_pushcfunction(l, ipairs_step);
    ffi::lua_pushvalue(l, 1);
    ffi::lua_pushinteger(l, 0);
    3
}

/// `getmetatable(v)`: a proxy reports the metatable of its real table, itself protected.
unsafe extern "C-unwind" fn getmetatable(l: *mut lua_State) -> c_int {
    ffi::luaL_checkany(l, 1);
    if !push_real(l, 1) {
        return call_original(l);
    }
    if ffi::lua_getmetatable(l, -1) == 0 {
        ffi::lua_pushnil(l);
        return 1;
    }
    make_readonly(l);
    1
}

/// Redis's `pcall`: like Lua's, but an error table with an `err` string becomes that string.
unsafe extern "C-unwind" fn pcall(l: *mut lua_State) -> c_int {
    ffi::luaL_checkany(l, 1);
    let argc = ffi::lua_gettop(l);
    ffi::lua_pushboolean(l, 1);
    ffi::lua_insert(l, 1);
    if ffi::lua_pcall(l, argc - 1, ffi::LUA_MULTRET, 0) != 0 {
        ffi::lua_remove(l, 1);
        if ffi::lua_istable(l, -1) != 0 {
            ffi::lua_getfield(l, -1, c"err".as_ptr());
            if ffi::lua_isstring(l, -1) != 0 {
                ffi::lua_replace(l, -2);
            } else {
                ffi::lua_pop(l, 1);
            }
        }
        ffi::lua_pushboolean(l, 0);
        ffi::lua_insert(l, 1);
    }
    ffi::lua_gettop(l)
}

/// Loads `chunk` as text only. A chunk starting with the bytecode signature gets a leading
/// space, so the text parser rejects it exactly as Redis's Lua (which has no undump) does,
/// with the line numbers unchanged.
///
/// # Safety
/// `name` is NUL-terminated; pushes the function or an error message.
pub unsafe fn load_text(l: *mut lua_State, chunk: &[u8], name: *const c_char) -> c_int {
    if chunk.first() == Some(&0x1b) {
        let mut spaced = Vec::with_capacity(chunk.len() + 1);
        spaced.push(b' ');
        spaced.extend_from_slice(chunk);
        let status = ffi::luaL_loadbuffer(l, spaced.as_ptr() as *const c_char, spaced.len(), name);
        drop(spaced);
        return status;
    }
    ffi::luaL_loadbuffer(l, chunk.as_ptr() as *const c_char, chunk.len(), name)
}

/// `loadstring(s [, name])` without bytecode.
unsafe extern "C-unwind" fn loadstring(l: *mut lua_State) -> c_int {
    let mut len = 0usize;
    let s = ffi::luaL_checklstring(l, 1, &mut len);
    let chunk = std::slice::from_raw_parts(s as *const u8, len);
    let name = ffi::luaL_optlstring(l, 2, s, std::ptr::null_mut());
    load_result(l, load_text(l, chunk, name))
}

/// `load(f [, name])` without bytecode: the pieces are gathered first, then parsed as text.
unsafe extern "C-unwind" fn load(l: *mut lua_State) -> c_int {
    ffi::luaL_checktype(l, 1, ffi::LUA_TFUNCTION);
    let name = ffi::luaL_optlstring(l, 2, c"=(load)".as_ptr(), std::ptr::null_mut());
    ffi::lua_settop(l, 2);
    let mut pieces = 0;
    loop {
        ffi::luaL_checkstack(l, 2, c"too many pieces".as_ptr());
        ffi::lua_pushvalue(l, 1);
        ffi::lua_call(l, 0, 1);
        if ffi::lua_isnil(l, -1) != 0 {
            ffi::lua_pop(l, 1);
            break;
        }
        if ffi::lua_isstring(l, -1) == 0 {
            ffi::lua_pushnil(l);
            lua::push_str(l, "reader function must return a string");
            return 2;
        }
        if ffi::lua_objlen(l, -1) == 0 {
            ffi::lua_pop(l, 1);
            break;
        }
        pieces += 1;
        if pieces > 1 {
            ffi::lua_concat(l, 2);
            pieces = 1;
        }
    }
    if pieces == 0 {
        lua::push_str(l, "");
    }
    let chunk = lua::to_bytes(l, -1).unwrap_or_default();
    load_result(l, load_text(l, chunk, name))
}

/// `loadstring`/`load` results: the function, or nil and the message.
unsafe fn load_result(l: *mut lua_State, status: c_int) -> c_int {
    if status == 0 {
        1
    } else {
        ffi::lua_pushnil(l);
        ffi::lua_insert(l, -2);
        2
    }
}

/// Installs the wrapped functions in the (still unprotected) globals.
///
/// # Safety
/// The base and table libraries are loaded; uses a few stack slots.
pub unsafe fn wrap_base(l: *mut lua_State) {
    let g = ffi::LUA_GLOBALSINDEX;
    let wrap = |l: *mut lua_State, table: c_int, name: &std::ffi::CStr, f: lua::CFn| {
        ffi::lua_getfield(l, table, name.as_ptr());
        ffi::lua_pushcclosure(l, f, 1);
        ffi::lua_setfield(
            l,
            if table < 0 && table > -10000 {
                table - 1
            } else {
                table
            },
            name.as_ptr(),
        );
    };
    wrap(l, g, c"rawset", refuse_proxy);
    wrap(l, g, c"setmetatable", refuse_proxy);
    wrap(l, g, c"rawget", through_proxy);
    wrap(l, g, c"next", through_proxy);
    wrap(l, g, c"getmetatable", getmetatable);
    // pairs returns the wrapped next.
    ffi::lua_getfield(l, g, c"next".as_ptr());
    ffi::lua_pushcclosure(l, pairs, 1);
    ffi::lua_setfield(l, g, c"pairs".as_ptr());
    ffi::lua_pushcfunction(l, ipairs);
    ffi::lua_setfield(l, g, c"ipairs".as_ptr());
    ffi::lua_pushcfunction(l, pcall);
    ffi::lua_setfield(l, g, c"pcall".as_ptr());
    ffi::lua_pushcfunction(l, loadstring);
    ffi::lua_setfield(l, g, c"loadstring".as_ptr());
    ffi::lua_pushcfunction(l, load);
    ffi::lua_setfield(l, g, c"load".as_ptr());
    ffi::lua_getfield(l, g, c"table".as_ptr());
    for name in [c"insert", c"remove", c"sort"] {
        wrap(l, -1, name, refuse_proxy);
    }
    ffi::lua_pop(l, 1);
    for name in [c"print", c"dofile", c"loadfile"] {
        ffi::lua_pushnil(l);
        ffi::lua_setfield(l, g, name.as_ptr());
    }
}

/// The error handler scripts run under: makes the error a table `{err = "ERR <message>"}`
/// (unless it already is one) and records the source and line of the Lua code that raised
/// it (the caller's, when a C function raised it).
///
/// # Safety
/// Called by Lua as a `lua_pcall` error handler.
pub unsafe extern "C-unwind" fn error_handler(l: *mut lua_State) -> c_int {
    ffi::lua_settop(l, 1);
    let mut ar: ffi::lua_Debug = std::mem::zeroed();
    let mut found =
        ffi::lua_getstack(l, 1, &mut ar) != 0 && ffi::lua_getinfo(l, c"nSl".as_ptr(), &mut ar) != 0;
    if found && !ar.what.is_null() && *ar.what == b'C' as c_char {
        found = ffi::lua_getstack(l, 2, &mut ar) != 0
            && ffi::lua_getinfo(l, c"nSl".as_ptr(), &mut ar) != 0;
    }
    if ffi::lua_type(l, 1) != ffi::LUA_TTABLE {
        registry_get(l, TOSTRING);
        ffi::lua_pushvalue(l, 1);
        ffi::lua_call(l, 1, 1);
        lua::push_str(l, "ERR ");
        ffi::lua_insert(l, -2);
        ffi::lua_concat(l, 2);
        ffi::lua_newtable(l);
        ffi::lua_insert(l, -2);
        ffi::lua_setfield(l, -2, c"err".as_ptr());
        ffi::lua_replace(l, 1);
    }
    if found {
        ffi::lua_pushstring(l, ar.source);
        ffi::lua_setfield(l, 1, c"source".as_ptr());
        ffi::lua_pushinteger(l, ar.currentline as ffi::lua_Integer);
        ffi::lua_setfield(l, 1, c"line".as_ptr());
    }
    ffi::lua_settop(l, 1);
    1
}
