//! What one core keeps for scripting: its two interpreters, its copy of the script cache and
//! of the function libraries, the run it is carrying out (for SCRIPT KILL, FUNCTION STATS),
//! and what it knows of scripts running long anywhere (the BUSY replies).
//!
//! It lives in a thread-local: each core is a thread, and nothing here is shared. The borrow
//! is never held while Lua runs (the interpreter's callbacks come back here).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;

use super::cache::Script;
use super::functions::Libraries;
use super::vm::{Flavor, Vm};

/// The run a core is carrying out, as SCRIPT KILL and FUNCTION STATS see it.
pub struct RunInfo {
    /// Unique across cores.
    pub id: u64,
    pub eval: bool,
    /// The script's SHA1 or the function's name.
    pub name: String,
    /// The caller's command (FUNCTION STATS shows it).
    pub command: Vec<Bytes>,
    pub started: Instant,
    /// It ran a write command: it can no longer be killed.
    pub dirty: Cell<bool>,
    pub killed: Cell<bool>,
    /// Past `busy-reply-threshold`.
    pub busy: Cell<bool>,
}

/// A script running past `busy-reply-threshold` somewhere.
#[derive(Clone, Debug)]
pub struct BusyScript {
    pub id: u64,
    pub eval: bool,
    /// The shard it may touch, or None for all of them.
    pub shard: Option<usize>,
}

/// An interpreter, shared by the runs of one core one at a time.
pub type SharedVm = Rc<RefCell<Vm>>;

#[derive(Default)]
pub struct Scripting {
    eval_vm: Option<SharedVm>,
    /// SCRIPT FLUSH asked for a new EVAL interpreter while one was in use.
    eval_reset: bool,
    functions_vm: Option<SharedVm>,
    /// The script cache by lower-case SHA1.
    pub scripts: HashMap<String, Script>,
    pub scripts_memory: usize,
    /// Scripts seen reaching keys of shards they did not declare: they run under the lock
    /// of every shard from then on.
    pub roams: HashSet<String>,
    pub libraries: Libraries,
    /// The libraries loaded in this core's functions interpreter: name → (the definition
    /// loaded, its functions' references).
    pub loaded: HashMap<String, (super::functions::Library, Vec<(String, i32)>)>,
    pub active: Option<Rc<RunInfo>>,
    pub busy: Vec<BusyScript>,
    next_run: u64,
}

/// What INFO memory shows of one core's scripting.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// Bytes of the EVAL interpreter, and of the functions one.
    pub eval_vm: usize,
    pub functions_vm: usize,
    /// Bytes of the script cache, and of the libraries' registry.
    pub scripts_memory: usize,
    pub functions_memory: usize,
    pub scripts: usize,
    pub functions: usize,
    pub libraries: usize,
}

thread_local! {
    static STATE: RefCell<Scripting> = RefCell::new(Scripting::default());
    /// Scripts running long anywhere, for the check on every command.
    static BUSY_COUNT: Cell<usize> = const { Cell::new(0) };
}

/// Runs `f` with this core's scripting state. `f` must not run Lua.
pub fn with<R>(f: impl FnOnce(&mut Scripting) -> R) -> R {
    STATE.with(|s| f(&mut s.borrow_mut()))
}

/// Whether any script runs past the busy threshold anywhere (cheap: read on every command).
pub fn any_busy() -> bool {
    BUSY_COUNT.with(Cell::get) > 0
}

impl Scripting {
    /// A new run id, unique across cores.
    pub fn next_run_id(&mut self, core: usize, shards: usize) -> u64 {
        self.next_run += 1;
        self.next_run * shards as u64 + core as u64
    }

    /// The interpreter of a flavor, created (or recreated after SCRIPT FLUSH) when free.
    pub fn vm(&mut self, flavor: Flavor) -> Option<SharedVm> {
        let slot = match flavor {
            Flavor::Eval => {
                let free = self
                    .eval_vm
                    .as_ref()
                    .is_none_or(|vm| Rc::strong_count(vm) == 1);
                if self.eval_reset && free {
                    self.eval_vm = None;
                    self.eval_reset = false;
                }
                &mut self.eval_vm
            }
            Flavor::Functions => &mut self.functions_vm,
        };
        if slot.is_none() {
            *slot = Some(Rc::new(RefCell::new(Vm::new(flavor)?)));
        }
        slot.clone()
    }

    /// Bytes used by the interpreters (`used_memory_lua` counts the EVAL one, and
    /// `used_memory_vm_functions` the other).
    pub fn vm_memory(&self, flavor: Flavor) -> usize {
        let vm = match flavor {
            Flavor::Eval => &self.eval_vm,
            Flavor::Functions => &self.functions_vm,
        };
        vm.as_ref()
            .and_then(|v| v.try_borrow().ok().map(|v| v.memory()))
            .unwrap_or(0)
    }

    /// This core's figures for INFO memory.
    pub fn usage(&self) -> Usage {
        Usage {
            eval_vm: self.vm_memory(Flavor::Eval),
            functions_vm: self.vm_memory(Flavor::Functions),
            scripts_memory: self.scripts_memory,
            functions_memory: self.libraries.memory(),
            scripts: self.scripts.len(),
            functions: self.libraries.function_count(),
            libraries: self.libraries.len(),
        }
    }

    /// SCRIPT FLUSH on this core: the cache is emptied and the EVAL interpreter replaced
    /// (at once if free, else when its run ends).
    pub fn flush_scripts(&mut self) {
        self.scripts.clear();
        self.scripts_memory = 0;
        self.roams.clear();
        self.eval_reset = true;
        if self
            .eval_vm
            .as_ref()
            .is_none_or(|vm| Rc::strong_count(vm) == 1)
        {
            self.eval_vm = None;
            self.eval_reset = false;
        }
    }

    /// Adds a script to this core's cache.
    pub fn add_script(&mut self, sha: String, script: Script) {
        if !self.scripts.contains_key(&sha) {
            self.scripts_memory += script.memory();
            self.scripts.insert(sha, script);
        }
    }

    /// A script runs long somewhere (`add`), or no longer does.
    pub fn set_busy(&mut self, script: BusyScript, add: bool) {
        self.busy.retain(|b| b.id != script.id);
        if add {
            self.busy.push(script);
        }
        BUSY_COUNT.with(|c| c.set(self.busy.len()));
    }
}
