//! The `redis` table scripts use, and Redis's `math.random`.
//!
//! EVAL scripts get `call`, `pcall`, `error_reply`, `status_reply`, `sha1hex`, `log`,
//! `setresp`, `set_repl`, `acl_check_cmd`, `replicate_commands`, `breakpoint` and `debug`
//! (the last two do what Redis's do outside a `SCRIPT DEBUG` session, which Shardis does not
//! offer: nothing), the `LOG_*` and `REPL_*` constants and the version fields. Functions get
//! the same without the last three; library code being loaded gets only
//! `register_function`, `log`, the `LOG_*` constants and the version fields.

use std::ffi::c_int;

use bytes::Bytes;
use mlua::ffi;
use shardis_engine::REGISTRY;

use super::convert::{self, push_error_table};
use super::lua::{self, lua_State, CFn};
use super::vm::{self, Flavor, HostGuard, Registered};
use super::{flags, sha1hex};

/// Redis 7.0.15 as `REDIS_VERSION_NUM` (0x00MMmmpp).
const VERSION_NUM: f64 = 0x0007_000f as f64;

fn push_constants(l: *mut lua_State, with_repl: bool) {
    // SAFETY: a table is on top of the stack.
    unsafe {
        for (name, value) in [
            ("LOG_DEBUG", 0.0),
            ("LOG_VERBOSE", 1.0),
            ("LOG_NOTICE", 2.0),
            ("LOG_WARNING", 3.0),
            ("REDIS_VERSION_NUM", VERSION_NUM),
        ] {
            ffi::lua_pushnumber(l, value);
            lua::set_field(l, -2, name);
        }
        lua::push_str(l, crate::cmd::REDIS_VERSION);
        lua::set_field(l, -2, "REDIS_VERSION");
        if with_repl {
            for (name, value) in [
                ("REPL_NONE", 0.0),
                ("REPL_AOF", 1.0),
                ("REPL_SLAVE", 2.0),
                ("REPL_REPLICA", 2.0),
                ("REPL_ALL", 3.0),
            ] {
                ffi::lua_pushnumber(l, value);
                lua::set_field(l, -2, name);
            }
        }
    }
}

/// Pushes the `redis` table of a script's run time.
///
/// # Safety
/// Room on the stack.
pub unsafe fn push_redis_table(l: *mut lua_State, flavor: Flavor) {
    ffi::lua_newtable(l);
    let common: &[(&str, CFn)] = &[
        ("call", call),
        ("pcall", pcall),
        ("log", log),
        ("setresp", setresp),
        ("sha1hex", sha1hex_fn),
        ("error_reply", error_reply),
        ("status_reply", status_reply),
        ("set_repl", set_repl),
        ("acl_check_cmd", acl_check_cmd),
    ];
    lua::set_functions(l, common);
    if flavor == Flavor::Eval {
        lua::set_functions(
            l,
            &[
                ("breakpoint", breakpoint),
                ("debug", debug),
                ("replicate_commands", replicate_commands),
            ],
        );
    }
    push_constants(l, true);
}

/// Pushes the `redis` table library code sees while it loads.
///
/// # Safety
/// Room on the stack.
pub unsafe fn push_library_redis_table(l: *mut lua_State) {
    ffi::lua_newtable(l);
    lua::set_functions(l, &[("register_function", register_function), ("log", log)]);
    push_constants(l, false);
}

/// Raises a Redis error table built from `msg`.
unsafe fn raise_error(l: *mut lua_State, msg: &str) -> ! {
    push_error_table(l, msg.as_bytes());
    ffi::lua_error(l)
}

/// The arguments on the stack as a command: numbers as `%.17g`, strings as they are. None
/// (with the stack untouched) if one is of another type.
unsafe fn command_args(l: *mut lua_State) -> Option<Vec<Bytes>> {
    let argc = ffi::lua_gettop(l);
    let mut args = Vec::with_capacity(argc.max(0) as usize);
    for j in 1..=argc {
        match ffi::lua_type(l, j) {
            ffi::LUA_TNUMBER => {
                args.push(Bytes::from(lua::format_g(ffi::lua_tonumber(l, j), 17)));
            }
            ffi::LUA_TSTRING => {
                args.push(Bytes::copy_from_slice(
                    lua::to_bytes(l, j).unwrap_or_default(),
                ));
            }
            _ => return None,
        }
    }
    Some(args)
}

unsafe extern "C-unwind" fn call(l: *mut lua_State) -> c_int {
    run_command(l, true)
}

unsafe extern "C-unwind" fn pcall(l: *mut lua_State) -> c_int {
    run_command(l, false)
}

/// `redis.call` (errors raised) and `redis.pcall` (errors returned as tables).
unsafe fn run_command(l: *mut lua_State, raise: bool) -> c_int {
    let Some(host) = vm::host() else {
        raise_error(
            l,
            "redis.call/pcall can only be called inside a script invocation",
        );
    };
    if ffi::lua_gettop(l) == 0 {
        push_error_table(
            l,
            b"Please specify at least one argument for this redis lib call",
        );
        return if raise { ffi::lua_error(l) } else { 1 };
    }
    let args = command_args(l);
    ffi::lua_settop(l, 0);
    let Some(args) = args else {
        push_error_table(
            l,
            b"Lua redis lib command arguments must be strings or integers",
        );
        return if raise { ffi::lua_error(l) } else { 1 };
    };
    let result = host.call(args);
    let resp3 = host.resp3();
    if result.is_err() && host.doomed() {
        vm::doom(l);
    }
    let failed = {
        let _host = HostGuard::enter();
        match result {
            Ok(reply) => {
                convert::push_reply(l, &reply, resp3);
                reply.is_error()
            }
            Err(msg) => {
                push_error_table(l, msg.as_bytes());
                ffi::lua_pushboolean(l, 1);
                lua::set_field(l, -2, "ignore_error_stats_update");
                true
            }
        }
    };
    if raise && failed {
        ffi::lua_error(l);
    }
    1
}

unsafe extern "C-unwind" fn sha1hex_fn(l: *mut lua_State) -> c_int {
    if ffi::lua_gettop(l) != 1 {
        raise_error(l, "wrong number of arguments");
    }
    let digest = sha1hex(lua::to_bytes(l, 1).unwrap_or_default());
    lua::push_bytes(l, &digest);
    1
}

unsafe extern "C-unwind" fn error_reply(l: *mut lua_State) -> c_int {
    if ffi::lua_gettop(l) != 1 || ffi::lua_type(l, -1) != ffi::LUA_TSTRING {
        push_error_table(l, b"wrong number or type of arguments");
        return 1;
    }
    let text = lua::to_bytes(l, -1).unwrap_or_default();
    if text.first() == Some(&b'-') {
        push_error_table(l, text);
    } else {
        let mut with_dash = Vec::with_capacity(text.len() + 1);
        with_dash.push(b'-');
        with_dash.extend_from_slice(text);
        {
            let _host = HostGuard::enter();
            push_error_table(l, &with_dash);
        }
        drop(with_dash);
    }
    1
}

unsafe extern "C-unwind" fn status_reply(l: *mut lua_State) -> c_int {
    if ffi::lua_gettop(l) != 1 || ffi::lua_type(l, -1) != ffi::LUA_TSTRING {
        push_error_table(l, b"wrong number or type of arguments");
        return 1;
    }
    ffi::lua_newtable(l);
    lua::push_str(l, "ok");
    ffi::lua_pushvalue(l, -3);
    ffi::lua_settable(l, -3);
    1
}

unsafe extern "C-unwind" fn set_repl(l: *mut lua_State) -> c_int {
    let Some(host) = vm::host() else {
        raise_error(
            l,
            "redis.set_repl can only be called inside a script invocation",
        );
    };
    if ffi::lua_gettop(l) != 1 {
        raise_error(l, "redis.set_repl() requires two arguments.");
    }
    let flags = ffi::lua_tonumber(l, -1) as i64 as i32;
    if flags & !3 != 0 {
        raise_error(
            l,
            "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
        );
    }
    host.set_repl(flags as u8);
    0
}

unsafe extern "C-unwind" fn setresp(l: *mut lua_State) -> c_int {
    let Some(host) = vm::host() else {
        raise_error(
            l,
            "redis.setresp can only be called inside a script invocation",
        );
    };
    if ffi::lua_gettop(l) != 1 {
        raise_error(l, "redis.setresp() requires one argument.");
    }
    let resp = ffi::lua_tonumber(l, -1) as i64 as i32;
    if resp != 2 && resp != 3 {
        raise_error(l, "RESP version must be 2 or 3.");
    }
    host.set_resp3(resp == 3);
    0
}

unsafe extern "C-unwind" fn acl_check_cmd(l: *mut lua_State) -> c_int {
    if vm::host().is_none() {
        raise_error(
            l,
            "redis.acl_check_cmd can only be called inside a script invocation",
        );
    }
    if ffi::lua_gettop(l) == 0 {
        raise_error(
            l,
            "Please specify at least one argument for this redis lib call",
        );
    }
    let Some(args) = command_args(l) else {
        raise_error(
            l,
            "Lua redis lib command arguments must be strings or integers",
        );
    };
    // As Redis, a call of the wrong arity is still checked, as its command.
    let cmd = match REGISTRY.lookup(&args) {
        Ok(cmd) => Some(cmd),
        Err(shardis_resp::Reply::Error(t)) if t.starts_with("ERR unknown") => None,
        Err(_) => REGISTRY.get(&args[0]),
    };
    let allowed = match (cmd, vm::host()) {
        (Some(cmd), Some(host)) => Some(host.acl_allows(cmd, &args)),
        _ => None,
    };
    drop(args);
    let Some(allowed) = allowed else {
        raise_error(l, "Invalid command passed to redis.acl_check_cmd()");
    };
    ffi::lua_pushboolean(l, c_int::from(allowed));
    1
}

unsafe extern "C-unwind" fn log(l: *mut lua_State) -> c_int {
    let argc = ffi::lua_gettop(l);
    if argc < 2 {
        raise_error(l, "redis.log() requires two arguments or more.");
    }
    if ffi::lua_isnumber(l, 1) == 0 {
        raise_error(l, "First argument must be a number (log level).");
    }
    let level = ffi::lua_tonumber(l, 1) as i64;
    if !(0..=3).contains(&level) {
        raise_error(l, "Invalid debug level.");
    }
    let mut text = Vec::new();
    for j in 2..=argc {
        if let Some(s) = lua::to_bytes(l, j) {
            if j != 2 {
                text.push(b' ');
            }
            text.extend_from_slice(s);
        }
    }
    let text = String::from_utf8_lossy(&text).into_owned();
    match level {
        0 | 1 => tracing::debug!(target: "script", "{text}"),
        2 => tracing::info!(target: "script", "{text}"),
        _ => tracing::warn!(target: "script", "{text}"),
    }
    0
}

unsafe extern "C-unwind" fn breakpoint(l: *mut lua_State) -> c_int {
    // No debugging session can be active: Redis answers false then.
    ffi::lua_pushboolean(l, 0);
    1
}

unsafe extern "C-unwind" fn debug(_l: *mut lua_State) -> c_int {
    // Logs only to a debugging session's client; there is none.
    0
}

unsafe extern "C-unwind" fn replicate_commands(l: *mut lua_State) -> c_int {
    ffi::lua_pushboolean(l, 1);
    1
}

// ---------------------------------------------------------------------------------------------
// math.random on Redis's generator

/// One step of the 48-bit linear congruential generator of `lrand48`: the next 31-bit value.
pub fn lrand48(state: &std::cell::Cell<u64>) -> i32 {
    let x = state.get().wrapping_mul(0x5_DEEC_E66D).wrapping_add(0xB) & 0xFFFF_FFFF_FFFF;
    state.set(x);
    (x >> 17) as i32
}

/// `srand48(seed)`.
pub fn srand48(state: &std::cell::Cell<u64>, seed: i32) {
    state.set(((seed as u32 as u64) << 16) | 0x330E);
}

unsafe fn rand_state<'a>(l: *mut lua_State) -> Option<&'a std::cell::Cell<u64>> {
    (ffi::lua_touserdata(l, ffi::lua_upvalueindex(1)) as *const std::cell::Cell<u64>).as_ref()
}

/// `math.random([m [, n]])` on Redis's generator (see [`lrand48`]).
///
/// # Safety
/// Called by Lua, with the generator's address as upvalue 1.
pub unsafe extern "C-unwind" fn math_random(l: *mut lua_State) -> c_int {
    if vm::host().is_none() {
        lua::raise(
            l,
            "math.random can only be called inside a script invocation".into(),
        );
    }
    let Some(state) = rand_state(l) else { return 0 };
    let max = i32::MAX;
    let r = (lrand48(state) % max) as f64 / max as f64;
    match ffi::lua_gettop(l) {
        0 => ffi::lua_pushnumber(l, r),
        1 => {
            let u = ffi::luaL_checkinteger(l, 1) as i32;
            if u < 1 {
                ffi::luaL_argerror(l, 1, c"interval is empty".as_ptr());
            }
            ffi::lua_pushnumber(l, (r * u as f64).floor() + 1.0);
        }
        2 => {
            let lo = ffi::luaL_checkinteger(l, 1) as i32;
            let hi = ffi::luaL_checkinteger(l, 2) as i32;
            if lo > hi {
                ffi::luaL_argerror(l, 2, c"interval is empty".as_ptr());
            }
            ffi::lua_pushnumber(l, (r * (hi as f64 - lo as f64 + 1.0)).floor() + lo as f64);
        }
        _ => lua::raise(l, "wrong number of arguments".into()),
    }
    1
}

/// `math.randomseed(n)`.
///
/// # Safety
/// As [`math_random`].
pub unsafe extern "C-unwind" fn math_randomseed(l: *mut lua_State) -> c_int {
    if vm::host().is_none() {
        lua::raise(
            l,
            "math.randomseed can only be called inside a script invocation".into(),
        );
    }
    let seed = ffi::luaL_checkinteger(l, 1) as i32;
    if let Some(state) = rand_state(l) {
        srand48(state, seed);
    }
    0
}

// ---------------------------------------------------------------------------------------------
// redis.register_function

/// Whether a function (or library) name is letters, digits and underscores, not empty.
pub fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// A registration being read; the callback reference is released if it fails.
struct Args {
    name: Option<Vec<u8>>,
    description: Option<Vec<u8>>,
    callback: Option<c_int>,
    flags: u32,
}

/// Reads `flags={...}`: each a known flag name (any case).
unsafe fn read_flags(l: *mut lua_State) -> Option<u32> {
    let mut out = 0;
    let mut j: ffi::lua_Integer = 1;
    loop {
        ffi::lua_pushinteger(l, j);
        ffi::lua_gettable(l, -2);
        if ffi::lua_isnil(l, -1) != 0 {
            ffi::lua_pop(l, 1);
            return Some(out);
        }
        let name = lua::to_bytes(l, -1).map(<[u8]>::to_ascii_lowercase);
        ffi::lua_pop(l, 1);
        out |= flags::by_name(&name?)?;
        j += 1;
    }
}

/// The named form: `redis.register_function{function_name=..., callback=..., ...}`.
unsafe fn read_named(l: *mut lua_State, args: &mut Args) -> Result<(), &'static str> {
    if ffi::lua_istable(l, 1) == 0 {
        return Err("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).");
    }
    ffi::lua_settop(l, 1);
    ffi::lua_pushnil(l);
    while ffi::lua_next(l, 1) != 0 {
        if ffi::lua_type(l, -2) != ffi::LUA_TSTRING && ffi::lua_type(l, -2) != ffi::LUA_TNUMBER {
            return Err("named argument key given to redis.register_function is not a string");
        }
        // Copied, not converted in place: lua_next needs the key unchanged.
        ffi::lua_pushvalue(l, -2);
        let key = lua::to_bytes(l, -1)
            .map(<[u8]>::to_ascii_lowercase)
            .unwrap_or_default();
        ffi::lua_pop(l, 1);
        match key.as_slice() {
            b"function_name" => {
                if ffi::lua_isstring(l, -1) == 0 {
                    return Err(
                        "function_name argument given to redis.register_function must be a string",
                    );
                }
                args.name = lua::to_bytes(l, -1).map(<[u8]>::to_vec);
            }
            b"description" => {
                if ffi::lua_isstring(l, -1) == 0 {
                    return Err(
                        "description argument given to redis.register_function must be a string",
                    );
                }
                args.description = lua::to_bytes(l, -1).map(<[u8]>::to_vec);
            }
            b"callback" => {
                if ffi::lua_isfunction(l, -1) == 0 {
                    return Err(
                        "callback argument given to redis.register_function must be a function",
                    );
                }
                if let Some(old) = args.callback.take() {
                    ffi::luaL_unref(l, ffi::LUA_REGISTRYINDEX, old);
                }
                args.callback = Some(ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX));
                continue;
            }
            b"flags" => {
                if ffi::lua_istable(l, -1) == 0 {
                    return Err("flags argument to redis.register_function must be a table representing function flags");
                }
                args.flags = read_flags(l).ok_or("unknown flag given")?;
            }
            _ => return Err("unknown argument given to redis.register_function"),
        }
        ffi::lua_pop(l, 1);
    }
    if args.name.is_none() {
        return Err("redis.register_function must get a function name argument");
    }
    if args.callback.is_none() {
        return Err("redis.register_function must get a callback argument");
    }
    Ok(())
}

unsafe fn read_positional(l: *mut lua_State, args: &mut Args) -> Result<(), &'static str> {
    if ffi::lua_isstring(l, 1) == 0 {
        return Err("first argument to redis.register_function must be a string");
    }
    args.name = lua::to_bytes(l, 1).map(<[u8]>::to_vec);
    if ffi::lua_isfunction(l, 2) == 0 {
        return Err("second argument to redis.register_function must be a function");
    }
    ffi::lua_settop(l, 2);
    args.callback = Some(ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX));
    Ok(())
}

unsafe extern "C-unwind" fn register_function(l: *mut lua_State) -> c_int {
    if !vm::with_loading(|ctx| ctx.is_some()) {
        raise_error(
            l,
            "redis.register_function can only be called on FUNCTION LOAD command",
        );
    }
    let argc = ffi::lua_gettop(l);
    if !(1..=2).contains(&argc) {
        raise_error(l, "wrong number of arguments to redis.register_function");
    }
    let mut args = Args {
        name: None,
        description: None,
        callback: None,
        flags: 0,
    };
    let _host = HostGuard::enter();
    let mut result = if argc == 1 {
        read_named(l, &mut args)
    } else {
        read_positional(l, &mut args)
    };
    if result.is_ok() {
        let name = args.name.clone().unwrap_or_default();
        if !valid_name(&name) {
            result = Err("Library names can only contain letters, numbers, or underscores(_) and must be at least one character long");
        } else {
            let name = String::from_utf8_lossy(&name).into_owned();
            let description = args
                .description
                .take()
                .map(|d| String::from_utf8_lossy(&d).into_owned());
            let reference = args.callback.take().unwrap_or(ffi::LUA_REFNIL);
            let added = vm::with_loading(|ctx| {
                let Some(ctx) = ctx else { return false };
                if ctx.functions.iter().any(|f| f.name == name) {
                    return false;
                }
                ctx.functions.push(Registered {
                    name,
                    description,
                    flags: args.flags,
                    reference,
                });
                true
            });
            if !added {
                args.callback = Some(reference);
                result = Err("Function already exists in the library");
            }
        }
    }
    let callback = args.callback.take();
    drop(args);
    drop(_host);
    match result {
        Ok(()) => 0,
        Err(msg) => {
            if let Some(r) = callback {
                ffi::luaL_unref(l, ffi::LUA_REGISTRYINDEX, r);
            }
            raise_error(l, msg)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn lrand48_matches_posix() {
        // POSIX lrand48 from the default state: 0x1234ABCD330E.
        let state = Cell::new(vm::RAND48_INIT);
        assert_eq!(lrand48(&state), 851401618);
        assert_eq!(lrand48(&state), 1804928587);
        srand48(&state, 10);
        let a = lrand48(&state);
        srand48(&state, 10);
        assert_eq!(lrand48(&state), a);
    }

    #[test]
    fn names() {
        assert!(valid_name(b"f_1"));
        assert!(!valid_name(b""));
        assert!(!valid_name(b"a b"));
        assert!(!valid_name(b"test\0test"));
    }
}
