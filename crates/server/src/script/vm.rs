//! One Lua 5.1 interpreter with Redis's scripting environment: the `Eval` flavor runs
//! EVAL scripts, the `Functions` flavor loads function libraries and runs FCALL. Each core
//! has one of each (Redis has one of each per server).
//!
//! The environment, as Redis 7.0 builds it: the base (minus `print`, `dofile`,
//! `loadfile`), table, string and math libraries, `cjson`, `struct`, `cmsgpack` and `bit`,
//! the `redis` API, `math.random` on Redis's own generator, no `debug`, `os`, `io` or
//! `package`; every global table read-only (see [`super::sandbox`]) and reading an unknown
//! global an error.
//!
//! What a script does with the data goes through a [`Host`]: the running script's context,
//! which carries out `redis.call`, answers the instruction-count hook (timeouts, SCRIPT
//! KILL) and may suspend the whole interpreter while it waits (see `script::run`).

use std::cell::{Cell, RefCell};
use std::ffi::{c_int, c_void, CString};
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mlua::ffi;
use shardis_engine::Command;
use shardis_resp::Reply;

use super::lua::{self, lua_State};
use super::{api, convert, libs, sandbox};

/// Instructions between two calls of the hook (Redis's count).
pub const HOOK_INSTRUCTIONS: c_int = 100_000;

/// Memory one interpreter may use before its allocations fail ("not enough memory").
const MEMORY_LIMIT: usize = 1 << 30;

/// Runs of a script between two incremental garbage collection steps (Redis's period).
const GC_PERIOD: u32 = 50;

// ---------------------------------------------------------------------------------------------
// Allocation

struct AllocState {
    used: Cell<usize>,
    /// The cap applies only while Lua runs protected (a script, a compilation, a library
    /// load): an allocation failing outside a protected call would make Lua panic, which
    /// exits the process.
    capped: Cell<bool>,
}

/// Applies an interpreter's allocation cap while alive (see [`AllocState::capped`]).
struct Capped<'a>(&'a AllocState);

impl<'a> Capped<'a> {
    fn new(state: &'a AllocState) -> Self {
        state.capped.set(true);
        Capped(state)
    }
}

impl Drop for Capped<'_> {
    fn drop(&mut self) {
        self.0.capped.set(false);
    }
}

thread_local! {
    /// While positive, a C function of ours is building values from Rust data: allocations
    /// may not fail there (a Lua error would skip Rust destructors), so the cap is lifted.
    static HOST_DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Lifts the allocation cap while alive. See [`HOST_DEPTH`]; a Lua error raised while one is
/// alive leaves the cap lifted until the next script run resets it.
pub struct HostGuard(());

impl HostGuard {
    pub fn enter() -> HostGuard {
        HOST_DEPTH.with(|d| d.set(d.get().saturating_add(1)));
        HostGuard(())
    }
}

impl Drop for HostGuard {
    fn drop(&mut self) {
        HOST_DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

unsafe extern "C" fn allocate(
    ud: *mut c_void,
    ptr: *mut c_void,
    osize: usize,
    nsize: usize,
) -> *mut c_void {
    let Some(state) = (ud as *const AllocState).as_ref() else {
        return std::ptr::null_mut();
    };
    if nsize == 0 {
        if !ptr.is_null() {
            libc::free(ptr);
            state.used.set(state.used.get().saturating_sub(osize));
        }
        return std::ptr::null_mut();
    }
    let old = if ptr.is_null() { 0 } else { osize };
    let grows = nsize > old;
    if grows
        && state.capped.get()
        && state.used.get().saturating_add(nsize - old) > MEMORY_LIMIT
        && HOST_DEPTH.with(Cell::get) == 0
    {
        return std::ptr::null_mut();
    }
    let p = libc::realloc(ptr, nsize);
    if !p.is_null() {
        state
            .used
            .set(state.used.get().saturating_sub(old).saturating_add(nsize));
    }
    p
}

// ---------------------------------------------------------------------------------------------
// The running script's context

/// What the interpreter asks of the running script's context.
pub trait Host {
    /// `redis.call`/`redis.pcall`: runs a command. A command's own error is an `Ok` error
    /// reply; `Err` is an error of the scripting layer in Redis's form (a leading `-` gives
    /// its code, otherwise `ERR`).
    fn call(&mut self, args: Vec<Bytes>) -> Result<Reply, String>;
    /// `redis.acl_check_cmd`: whether the script's caller may run this command.
    fn acl_allows(&self, cmd: &Command, args: &[Bytes]) -> bool;
    /// The script's protocol (`redis.setresp`).
    fn resp3(&self) -> bool;
    fn set_resp3(&mut self, resp3: bool);
    /// `redis.set_repl` flags (already validated).
    fn set_repl(&mut self, flags: u8);
    /// Called by the instruction-count hook: `Err` stops the script with that error (SCRIPT
    /// KILL); it may also suspend the interpreter to let the core serve others.
    fn check(&mut self) -> Result<(), String>;
    /// The script must stop (killed, or abandoned to run again elsewhere): every line from
    /// now on raises [`Host::check`]'s error, so a `pcall` cannot keep it alive.
    fn doomed(&self) -> bool {
        false
    }
    /// The run's reply is an error already counted in the error statistics (an error table
    /// a command's failure made, Redis's `ignore_error_stats_update`): its caller must not
    /// count it again.
    fn error_counted(&mut self) {}
}

/// Makes the running code check its host on every line (see [`Host::doomed`]).
///
/// # Safety
/// `l` is the state (or a thread of it) Lua is running.
pub unsafe fn doom(l: *mut lua_State) {
    ffi::lua_sethook(l, Some(count_hook), ffi::LUA_MASKLINE, 0);
}

thread_local! {
    static CURRENT: Cell<Option<NonNull<dyn Host>>> = const { Cell::new(None) };
    static LOADING: RefCell<Option<LoadCtx>> = const { RefCell::new(None) };
}

/// Runs `f` with `host` as the running script's context.
fn with_host<R>(host: &mut dyn Host, f: impl FnOnce() -> R) -> R {
    // SAFETY: the pointer is only used while `f` runs, during which `host` is borrowed here
    // and nothing else refers to it; the lifetime is erased for the thread-local slot.
    let ptr: NonNull<dyn Host> = unsafe {
        std::mem::transmute::<NonNull<dyn Host + '_>, NonNull<dyn Host>>(NonNull::from(host))
    };
    let previous = CURRENT.with(|c| c.replace(Some(ptr)));
    struct Restore(Option<NonNull<dyn Host>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(previous);
    f()
}

/// The running script's context, if a script runs.
///
/// # Safety
/// Only from the C functions Lua calls while [`with_host`] runs; the reference must not be
/// kept past the call.
pub unsafe fn host<'a>() -> Option<&'a mut dyn Host> {
    CURRENT.with(Cell::get).map(|mut p| p.as_mut())
}

/// A function a library registered while loading.
pub struct Registered {
    pub name: String,
    pub description: Option<String>,
    pub flags: u32,
    /// Its registry reference in the interpreter that loaded it.
    pub reference: c_int,
}

/// The state of a FUNCTION LOAD in progress.
pub struct LoadCtx {
    pub functions: Vec<Registered>,
    started: Instant,
    timeout: Option<Duration>,
}

/// Runs `f` with the loading context of the library being loaded, if any.
pub fn with_loading<R>(f: impl FnOnce(Option<&mut LoadCtx>) -> R) -> R {
    LOADING.with(|l| f(l.borrow_mut().as_mut()))
}

// ---------------------------------------------------------------------------------------------
// The interpreter

/// Which environment an interpreter has.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Flavor {
    Eval,
    Functions,
}

/// Registry key of the real globals table.
const GLOBALS: &str = "shardis.globals";
/// Registry key of the environment library code loads in (`redis.register_function`).
const LIBRARY_API: &str = "shardis.library_api";

pub struct Vm {
    l: *mut lua_State,
    flavor: Flavor,
    /// Redis's 48-bit generator behind `math.random`; its address is an upvalue.
    rand: Box<Cell<u64>>,
    alloc: Box<AllocState>,
    runs: u32,
}

/// The initial state of Redis's `redisLrand48` (that of POSIX `lrand48`).
pub const RAND48_INIT: u64 = 0x1234_ABCD_330E;

impl Vm {
    /// A new interpreter with Redis's environment; None if Lua cannot allocate one.
    pub fn new(flavor: Flavor) -> Option<Vm> {
        let alloc = Box::new(AllocState {
            used: Cell::new(0),
            capped: Cell::new(false),
        });
        let rand = Box::new(Cell::new(RAND48_INIT));
        // SAFETY: `alloc` outlives the state (the state is closed in Drop, before the box).
        let l = unsafe { ffi::lua_newstate(allocate, &*alloc as *const AllocState as *mut c_void) };
        if l.is_null() {
            return None;
        }
        let vm = Vm {
            l,
            flavor,
            rand,
            alloc,
            runs: 0,
        };
        // SAFETY: a fresh state; setup runs protected, so an allocation failure is reported.
        let status = unsafe {
            let rand_ptr = &*vm.rand as *const Cell<u64> as *mut c_void;
            lua::protected(l, |l| setup(l, flavor, rand_ptr))
        };
        if status != 0 {
            return None;
        }
        Some(vm)
    }

    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// Bytes the interpreter uses (`used_memory_lua`).
    pub fn memory(&self) -> usize {
        self.alloc.used.get()
    }

    /// Compiles an EVAL script's code (after its shebang line, if any) as `f_<sha>`.
    pub fn compile_script(&mut self, sha: &str, code: &[u8]) -> Result<(), String> {
        let l = self.l;
        // SAFETY: balanced stack use on a valid state; loading reports errors by status.
        unsafe {
            let top = ffi::lua_gettop(l);
            let status = {
                let _cap = Capped::new(&self.alloc);
                sandbox::load_text(l, code, c"@user_script".as_ptr())
            };
            if status != 0 {
                let msg =
                    String::from_utf8_lossy(lua::to_bytes(l, -1).unwrap_or_default()).into_owned();
                ffi::lua_settop(l, top);
                return Err(format!("Error compiling script (new function): {msg}"));
            }
            let name = script_key(sha);
            ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, name.as_ptr());
            ffi::lua_settop(l, top);
        }
        Ok(())
    }

    /// Whether `f_<sha>` is compiled here.
    pub fn has_script(&self, sha: &str) -> bool {
        let l = self.l;
        // SAFETY: balanced stack use.
        unsafe {
            let name = script_key(sha);
            ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, name.as_ptr());
            let found = ffi::lua_isfunction(l, -1) != 0;
            ffi::lua_pop(l, 1);
            found
        }
    }

    /// Runs the compiled EVAL script `sha` with `KEYS` and `ARGV`; the script's reply, or its
    /// error as Redis reports it.
    pub fn run_script(
        &mut self,
        host: &mut dyn Host,
        sha: &str,
        keys: &[Bytes],
        args: &[Bytes],
        hook: bool,
    ) -> Reply {
        let name = script_key(sha);
        self.run(host, sha, hook, |l| {
            // SAFETY: the run's stack discipline (see `run`).
            unsafe {
                ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, name.as_ptr());
                push_globals_table(l);
                push_array(l, keys);
                lua::set_field(l, -2, "KEYS");
                push_array(l, args);
                lua::set_field(l, -2, "ARGV");
                ffi::lua_pop(l, 1);
            }
            0
        })
        .unwrap_or_else(|| Reply::err("NOSCRIPT No matching script. Please use EVAL."))
    }

    /// Runs the function registered as `reference` with its keys and arguments.
    pub fn run_function(
        &mut self,
        host: &mut dyn Host,
        name: &str,
        reference: c_int,
        keys: &[Bytes],
        args: &[Bytes],
        hook: bool,
    ) -> Reply {
        self.run(host, name, hook, |l| {
            // SAFETY: the run's stack discipline (see `run`).
            unsafe {
                ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, reference as ffi::lua_Integer);
                push_array(l, keys);
                push_array(l, args);
            }
            2
        })
        .unwrap_or_else(|| Reply::err("ERR Function not found"))
    }

    /// The common part of a run: error handler, hook, protected call, reply conversion,
    /// errors formatted as Redis's `luaCallFunction` does. `push` pushes the function and
    /// returns its argument count. None when the function is missing.
    fn run(
        &mut self,
        host: &mut dyn Host,
        funcname: &str,
        hook: bool,
        push: impl FnOnce(*mut lua_State) -> c_int,
    ) -> Option<Reply> {
        let l = self.l;
        self.runs += 1;
        let collect = self.runs >= GC_PERIOD;
        if collect {
            self.runs = 0;
        }
        HOST_DEPTH.with(|d| d.set(0));
        let reply = with_host(host, || {
            // SAFETY: every push below is balanced by the final settop; errors inside the
            // script are caught by lua_pcall; conversions run with the allocation cap lifted.
            unsafe {
                let top = ffi::lua_gettop(l);
                ffi::lua_pushcfunction(l, sandbox::error_handler);
                let nargs = push(l);
                if ffi::lua_isfunction(l, -1 - nargs) == 0 {
                    ffi::lua_settop(l, top);
                    return None;
                }
                if hook {
                    ffi::lua_sethook(l, Some(count_hook), ffi::LUA_MASKCOUNT, HOOK_INSTRUCTIONS);
                }
                let status = {
                    let _cap = Capped::new(&self.alloc);
                    ffi::lua_pcall(l, nargs, 1, top + 1)
                };
                if hook {
                    ffi::lua_sethook(l, None, 0, 0);
                }
                let _host = HostGuard::enter();
                let counted = ffi::lua_istable(l, -1) != 0 && {
                    lua::push_str(l, "ignore_error_stats_update");
                    ffi::lua_rawget(l, -2);
                    let set = ffi::lua_toboolean(l, -1) != 0;
                    ffi::lua_pop(l, 1);
                    set
                };
                let reply = if status == 0 {
                    let resp3 = self::host().is_some_and(|h| h.resp3());
                    convert::to_reply(l, resp3)
                } else {
                    error_reply(l, funcname)
                };
                if counted && reply.is_error() {
                    if let Some(h) = self::host() {
                        h.error_counted();
                    }
                }
                ffi::lua_settop(l, top);
                Some(reply)
            }
        });
        // SAFETY: a valid state with no script running.
        if self.memory() > MEMORY_LIMIT / 4 {
            // Lua 5.1 does not collect when an allocation fails: without this, the garbage
            // of a script that ran out of memory would make the next ones fail too.
            unsafe { ffi::lua_gc(l, ffi::LUA_GCCOLLECT, 0) };
        } else if collect {
            unsafe { ffi::lua_gc(l, ffi::LUA_GCSTEP, GC_PERIOD as c_int) };
        }
        reply
    }

    /// Loads a function library's code (after its shebang line): runs it in the loading
    /// environment, where only `redis.register_function`, `redis.log` and the version
    /// fields exist, and returns what it registered.
    pub fn load_library(
        &mut self,
        code: &[u8],
        timeout: Option<Duration>,
    ) -> Result<Vec<Registered>, String> {
        let l = self.l;
        HOST_DEPTH.with(|d| d.set(0));
        LOADING.with(|c| {
            *c.borrow_mut() = Some(LoadCtx {
                functions: Vec::new(),
                started: Instant::now(),
                timeout,
            })
        });
        // SAFETY: balanced stack use; errors are caught by lua_pcall; the globals proxy's
        // reads are pointed back at the real globals whatever happens.
        let result = unsafe {
            let top = ffi::lua_gettop(l);
            registry_get(l, LIBRARY_API);
            sandbox::redirect_globals(l, ffi::LUA_GLOBALSINDEX, -1);
            ffi::lua_pop(l, 1);
            let cap = Capped::new(&self.alloc);
            let status = sandbox::load_text(l, code, c"@user_function".as_ptr());
            let result = if status != 0 {
                drop(cap);
                let msg =
                    String::from_utf8_lossy(lua::to_bytes(l, -1).unwrap_or_default()).into_owned();
                Err(format!("Error compiling function: {msg}"))
            } else {
                ffi::lua_sethook(l, Some(count_hook), ffi::LUA_MASKCOUNT, HOOK_INSTRUCTIONS);
                let status = ffi::lua_pcall(l, 0, 0, 0);
                ffi::lua_sethook(l, None, 0, 0);
                drop(cap);
                if status != 0 {
                    let _host = HostGuard::enter();
                    Err(format!("Error registering functions: {}", error_message(l)))
                } else {
                    Ok(())
                }
            };
            registry_get(l, GLOBALS);
            sandbox::redirect_globals(l, ffi::LUA_GLOBALSINDEX, -1);
            ffi::lua_settop(l, top);
            result
        };
        let ctx = LOADING.with(|c| c.borrow_mut().take());
        let functions = ctx.map(|c| c.functions).unwrap_or_default();
        match result {
            Ok(()) => Ok(functions),
            Err(e) => {
                self.release(functions.iter().map(|f| f.reference));
                Err(e)
            }
        }
    }

    /// Releases functions' registry references.
    pub fn release(&mut self, references: impl IntoIterator<Item = c_int>) {
        for r in references {
            // SAFETY: a reference this interpreter handed out.
            unsafe { ffi::luaL_unref(self.l, ffi::LUA_REGISTRYINDEX, r) };
        }
    }

    /// The raw state, for the unit tests of the libraries.
    #[cfg(test)]
    pub fn state(&self) -> *mut lua_State {
        self.l
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        // SAFETY: no script runs on this state any more (runs borrow the Vm mutably).
        unsafe { ffi::lua_close(self.l) };
    }
}

fn script_key(sha: &str) -> CString {
    CString::new(format!("f_{sha}")).unwrap_or_default()
}

unsafe fn registry_get(l: *mut lua_State, key: &str) {
    lua::push_str(l, key);
    ffi::lua_rawget(l, ffi::LUA_REGISTRYINDEX);
}

unsafe fn push_globals_table(l: *mut lua_State) {
    registry_get(l, GLOBALS);
}

/// Pushes a Lua array of strings.
unsafe fn push_array(l: *mut lua_State, items: &[Bytes]) {
    ffi::lua_createtable(l, items.len().min(1 << 24) as c_int, 0);
    for (i, item) in items.iter().enumerate() {
        lua::push_bytes(l, item);
        ffi::lua_rawseti(l, -2, i as ffi::lua_Integer + 1);
    }
}

/// The message of the error value on top of the stack, as Redis's
/// `luaExtractErrorInformation` reads it (a string gets `ERR `; a table gives its `err`).
unsafe fn error_message(l: *mut lua_State) -> String {
    if ffi::lua_type(l, -1) == ffi::LUA_TSTRING || ffi::lua_type(l, -1) == ffi::LUA_TNUMBER {
        return format!(
            "ERR {}",
            String::from_utf8_lossy(lua::to_bytes(l, -1).unwrap_or_default())
        );
    }
    if ffi::lua_istable(l, -1) != 0 {
        if let Some(err) = lua::raw_string_field(l, -1, "err") {
            return String::from_utf8_lossy(&err).into_owned();
        }
    }
    String::new()
}

/// The error reply of a failed run, from the error (normally the handler's table) on top.
unsafe fn error_reply(l: *mut lua_State, funcname: &str) -> Reply {
    if ffi::lua_istable(l, -1) == 0 {
        let msg = lua::to_bytes(l, -1)
            .map(|b| String::from_utf8_lossy(&b[..b.len().min(100)]).into_owned())
            .unwrap_or_else(|| "execution failure".into());
        return Reply::error(format!("ERR Error running script {funcname}, {msg}\n"));
    }
    let msg = lua::raw_string_field(l, -1, "err")
        .map(|m| String::from_utf8_lossy(&m).into_owned())
        .unwrap_or_else(|| "(null)".into());
    // The handler stores the line as a number: read both fields as strings as Redis does.
    let field = |name: &str| -> Option<String> {
        lua::push_str(l, name);
        ffi::lua_rawget(l, -2);
        let v = if ffi::lua_isstring(l, -1) != 0 {
            lua::to_bytes(l, -1).map(|b| String::from_utf8_lossy(b).into_owned())
        } else {
            None
        };
        ffi::lua_pop(l, 1);
        v
    };
    let source = field("source");
    let line = field("line");
    let text = match (line, source) {
        (Some(line), Some(source)) => {
            format!("{msg} script: {funcname}, on {source}:{line}.")
        }
        _ => msg,
    };
    Reply::error(text)
}

/// The instruction-count hook: enforces the FUNCTION LOAD time limit while a library loads,
/// otherwise asks the running script's context (SCRIPT KILL, letting the core breathe).
unsafe extern "C-unwind" fn count_hook(l: *mut lua_State, _ar: *mut ffi::lua_Debug) {
    let load_expired = LOADING.with(|c| {
        c.borrow()
            .as_ref()
            .map(|ctx| ctx.timeout.is_some_and(|t| ctx.started.elapsed() > t))
    });
    let failure = match load_expired {
        Some(true) => Some("FUNCTION LOAD timeout".to_string()),
        Some(false) => None,
        None => match host() {
            Some(h) => h.check().err(),
            None => None,
        },
    };
    if let Some(msg) = failure {
        // Fire on every line from now on, so a pcall catching the error cannot keep the
        // script alive.
        ffi::lua_sethook(l, Some(count_hook), ffi::LUA_MASKLINE, 0);
        convert::push_error_table(l, msg.as_bytes());
        drop(msg);
        ffi::lua_error(l);
    }
}

/// Builds the environment of a fresh state.
unsafe fn setup(l: *mut lua_State, flavor: Flavor, rand: *mut c_void) {
    let open = |f: lua::CFn, name: &std::ffi::CStr| {
        ffi::lua_pushcfunction(l, f);
        ffi::lua_pushstring(l, name.as_ptr());
        ffi::lua_call(l, 1, 0);
    };
    open(ffi::luaopen_base, c"");
    open(ffi::luaopen_table, c"table");
    open(ffi::luaopen_string, c"string");
    open(ffi::luaopen_math, c"math");
    sandbox::init(l);
    sandbox::wrap_base(l);
    let g = ffi::LUA_GLOBALSINDEX;
    libs::cjson::push_instance(l);
    ffi::lua_setfield(l, g, c"cjson".as_ptr());
    ffi::lua_newtable(l);
    lua::set_functions(l, libs::structlib::FUNCTIONS);
    ffi::lua_setfield(l, g, c"struct".as_ptr());
    ffi::lua_newtable(l);
    lua::set_functions(l, libs::cmsgpack::FUNCTIONS);
    for (name, value) in libs::cmsgpack::FIELDS {
        lua::push_str(l, value);
        lua::set_field(l, -2, name);
    }
    ffi::lua_setfield(l, g, c"cmsgpack".as_ptr());
    ffi::lua_newtable(l);
    lua::set_functions(l, libs::bit::FUNCTIONS);
    ffi::lua_setfield(l, g, c"bit".as_ptr());
    ffi::lua_getfield(l, g, c"math".as_ptr());
    for (name, f) in [
        ("random", api::math_random as lua::CFn),
        ("randomseed", api::math_randomseed),
    ] {
        ffi::lua_pushlightuserdata(l, rand);
        ffi::lua_pushcclosure(l, f, 1);
        lua::set_field(l, -2, name);
    }
    ffi::lua_pop(l, 1);
    api::push_redis_table(l, flavor);
    ffi::lua_setfield(l, g, c"redis".as_ptr());
    if flavor == Flavor::Eval {
        ffi::lua_pushcfunction(l, sandbox::error_handler);
        ffi::lua_setfield(l, g, c"__redis__err__handler".as_ptr());
    }
    // Protect every library table, then the globals themselves.
    for name in [
        c"string",
        c"table",
        c"math",
        c"coroutine",
        c"cjson",
        c"struct",
        c"cmsgpack",
        c"bit",
        c"redis",
    ] {
        ffi::lua_getfield(l, g, name.as_ptr());
        sandbox::make_readonly(l);
        ffi::lua_setfield(l, g, name.as_ptr());
    }
    ffi::lua_pushvalue(l, g);
    let real = ffi::lua_gettop(l);
    sandbox::set_error_metatable(l);
    ffi::lua_pushvalue(l, real);
    ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, c"shardis.globals".as_ptr());
    if flavor == Flavor::Functions {
        // The environment library code loads in: only the library API, also protected.
        ffi::lua_newtable(l);
        api::push_library_redis_table(l);
        sandbox::set_error_metatable(l);
        sandbox::make_readonly(l);
        lua::set_field(l, -2, "redis");
        sandbox::set_error_metatable(l);
        ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, c"shardis.library_api".as_ptr());
        // `_G` at run time is the (protected) real globals, as in Redis.
        ffi::lua_pushvalue(l, real);
        sandbox::make_readonly(l);
        lua::set_field(l, real, "_G");
    }
    // The globals scripts run with: an empty protected table reading through to the real
    // ones, which nothing a script can reach refers to.
    sandbox::push_globals_proxy(l, real, real);
    if flavor == Flavor::Eval {
        ffi::lua_pushvalue(l, -1);
        lua::set_field(l, real, "_G");
    }
    ffi::lua_replace(l, ffi::LUA_GLOBALSINDEX);
    ffi::lua_settop(l, real - 1);
}
