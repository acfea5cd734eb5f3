//! The global allocator: mimalloc, counting the live bytes of every core so that eviction can
//! trust a per-core figure.
//!
//! Each core's thread allocates from its own mimalloc heap, and a block stays in the heap that
//! allocated it even when another thread frees it. The count follows that ownership:
//!
//! - an allocation adds its usable size (the size class mimalloc really hands out, so the sum
//!   is what the allocator holds, not what the program asked for) to the allocating core;
//! - a free subtracts it from the core whose heap owns the block: the freeing core itself in
//!   the common case (one heap check), or, when a block crosses cores (a forwarded request's
//!   buffer, a reply encoded on another core, an entry copied between shards), the owner,
//!   found among the registered heaps and credited through an atomic only other threads add
//!   to.
//!
//! So a core's figure never drifts however memory travels: it is exactly the bytes its heap
//! holds (`tests/memory_accounting.rs` checks it against mimalloc's own view of the heap under
//! millions of cross-shard commands). Memory of threads that are not cores (start-up, helper
//! threads) is counted apart and only appears in the total.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::ffi::c_void;
use std::sync::atomic::{AtomicIsize, AtomicPtr, AtomicUsize, Ordering::Relaxed};

use libmimalloc_sys as mi;
use mimalloc::MiMalloc as Backing;

/// Cores that can be counted apart (the `shards` parameter's maximum).
pub const MAX_CORES: usize = 1024;

/// What one core owns: written by the core's thread only, read by anyone.
#[repr(align(128))]
struct Owned {
    heap: AtomicPtr<mi::mi_heap_t>,
    /// Bytes this core allocated minus bytes of its heap it freed itself.
    local: AtomicIsize,
}

/// Bytes of a core's heap freed by other threads (negative), on a cache line of its own so
/// that the owner's counting does not contend with them.
#[repr(align(128))]
struct Remote(AtomicIsize);

#[allow(clippy::declare_interior_mutable_const)]
const OWNED_INIT: Owned = Owned {
    heap: AtomicPtr::new(std::ptr::null_mut()),
    local: AtomicIsize::new(0),
};
#[allow(clippy::declare_interior_mutable_const)]
const REMOTE_INIT: Remote = Remote(AtomicIsize::new(0));

static OWNED: [Owned; MAX_CORES] = [OWNED_INIT; MAX_CORES];
static REMOTE: [Remote; MAX_CORES] = [REMOTE_INIT; MAX_CORES];
/// One more than the highest registered core (the slots worth searching for an owner).
static REGISTERED: AtomicUsize = AtomicUsize::new(0);
/// Net bytes of the threads that are not cores.
static UNOWNED: AtomicIsize = AtomicIsize::new(0);

/// No core: the thread is not registered.
const NO_CORE: usize = usize::MAX;

thread_local! {
    /// The calling thread's core, or `NO_CORE`.
    static CORE: Cell<usize> = const { Cell::new(NO_CORE) };
    /// The calling thread's default heap, once registered.
    static HEAP: Cell<*mut mi::mi_heap_t> = const { Cell::new(std::ptr::null_mut()) };
    /// Net bytes this thread allocated before it registered (moved to its core then).
    static BEFORE: Cell<isize> = const { Cell::new(0) };
}

/// The counting allocator installed by the binary.
pub struct Counting;

fn usable(p: *const u8) -> isize {
    // SAFETY: `p` is a live block from mimalloc (just allocated, or about to be freed).
    unsafe { mi::mi_usable_size(p as *const c_void) as isize }
}

/// Counts `n` bytes allocated by the calling thread.
fn allocated(n: isize) {
    // try_with: thread-locals may be gone while a thread winds down.
    let core = CORE.try_with(Cell::get).unwrap_or(NO_CORE);
    match OWNED.get(core) {
        // Only this thread writes its `local`: a plain load and store suffice.
        Some(o) => o.local.store(o.local.load(Relaxed) + n, Relaxed),
        None => {
            let _ = BEFORE.try_with(|b| b.set(b.get() + n));
            UNOWNED.fetch_add(n, Relaxed);
        }
    }
}

/// Who a block belongs to, for counting its free.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Owner {
    /// The calling thread's core.
    Here(usize),
    /// Another core.
    Core(usize),
    /// No core (or the calling thread is not a core and allocated it before anything).
    Nobody,
}

/// The owner of the live block `p`, seen from the calling thread.
fn owner(p: *const u8) -> Owner {
    let core = CORE.try_with(Cell::get).unwrap_or(NO_CORE);
    if core != NO_CORE {
        let heap = HEAP.try_with(Cell::get).unwrap_or(std::ptr::null_mut());
        // SAFETY: `p` is a live mimalloc block; the check only compares its page's heap.
        if unsafe { mi::mi_heap_contains_block(heap, p as *const c_void) } {
            return Owner::Here(core);
        }
    }
    let n = REGISTERED.load(Relaxed).min(MAX_CORES);
    (0..n)
        .find(|&i| {
            let heap = OWNED[i].heap.load(Relaxed);
            // SAFETY: as above; a null heap is answered with false.
            !heap.is_null() && unsafe { mi::mi_heap_contains_block(heap, p as *const c_void) }
        })
        .map_or(Owner::Nobody, Owner::Core)
}

/// Counts `n` bytes belonging to `owner` as freed by the calling thread.
fn freed(owner: Owner, n: isize) {
    match owner {
        Owner::Here(core) => {
            let o = &OWNED[core];
            o.local.store(o.local.load(Relaxed) - n, Relaxed);
        }
        Owner::Core(core) => {
            REMOTE[core].0.fetch_sub(n, Relaxed);
        }
        Owner::Nobody => {
            if CORE.try_with(Cell::get).unwrap_or(NO_CORE) == NO_CORE {
                let _ = BEFORE.try_with(|b| b.set(b.get() - n));
            }
            UNOWNED.fetch_sub(n, Relaxed);
        }
    }
}

// SAFETY: every operation is mimalloc's, unchanged; the counting only reads block sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { Backing.alloc(layout) };
        if !p.is_null() {
            allocated(usable(p));
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        freed(owner(ptr), usable(ptr));
        unsafe { Backing.dealloc(ptr, layout) };
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { Backing.alloc_zeroed(layout) };
        if !p.is_null() {
            allocated(usable(p));
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Looked at while the old block is live; a failed realloc leaves it as it was.
        let (was, old) = (owner(ptr), usable(ptr));
        let p = unsafe { Backing.realloc(ptr, layout, new_size) };
        if p == ptr {
            // Resized in place: still its owner's block, whichever core resized it (a core
            // shrinking a buffer another core grew).
            freed(was, old - usable(p));
        } else if !p.is_null() {
            freed(was, old);
            allocated(usable(p));
        }
        p
    }
}

/// Makes the calling thread core `id`: from now on its allocations count for that core.
/// What the thread allocated before moves with it.
pub fn register_core(id: usize) {
    if id >= MAX_CORES {
        return;
    }
    // SAFETY: returns the calling thread's default heap (initialised by its first allocation).
    let heap = unsafe { mi::mi_heap_get_default() };
    let before = BEFORE.with(|b| b.replace(0));
    UNOWNED.fetch_sub(before, Relaxed);
    let owned = &OWNED[id];
    owned
        .local
        .store(owned.local.load(Relaxed) + before, Relaxed);
    owned.heap.store(heap, Relaxed);
    HEAP.with(|h| h.set(heap));
    CORE.with(|c| c.set(id));
    REGISTERED.fetch_max(id + 1, Relaxed);
}

/// Returns the calling thread's freed memory to the system now (the core's clock calls it
/// every 100 ms).
/// mimalloc 2 otherwise keeps the pages of large blocks, such as a reply buffer that grew to
/// hundreds of megabytes for a client that then went away, until later allocations happen
/// to purge them.
pub fn collect() {
    // SAFETY: mimalloc's own maintenance of the calling thread's heap.
    unsafe { mi::mi_collect(false) }
}

/// MEMORY PURGE: returns every page the calling thread's heap can give back, now.
pub fn purge() {
    // SAFETY: mimalloc's own maintenance of the calling thread's heap.
    unsafe { mi::mi_collect(true) }
}

/// The highest `total_used` seen (INFO `used_memory_peak`, MEMORY STATS `peak.allocated`).
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// Notes the current total as a candidate peak and returns the peak (every core's clock
/// calls it, as Redis's cron samples its peak).
pub fn peak_used() -> usize {
    let now = total_used().max(0) as usize;
    PEAK.fetch_max(now, Relaxed).max(now)
}

/// The memory mimalloc has committed from the system for the whole process (MEMORY STATS's
/// `allocator.active`/`allocator.resident`).
pub fn committed() -> usize {
    let (mut elapsed, mut user, mut sys, mut rss, mut peak_rss) = (0, 0, 0, 0, 0);
    let (mut commit, mut peak_commit, mut faults) = (0, 0, 0);
    // SAFETY: every pointer is to a local the call fills.
    unsafe {
        mi::mi_process_info(
            &mut elapsed,
            &mut user,
            &mut sys,
            &mut rss,
            &mut peak_rss,
            &mut commit,
            &mut peak_commit,
            &mut faults,
        )
    };
    commit
}

/// MEMORY MALLOC-STATS: mimalloc's own statistics report.
pub fn malloc_stats() -> String {
    unsafe extern "C" fn out(msg: *const std::ffi::c_char, arg: *mut c_void) {
        // SAFETY: mimalloc passes a NUL-terminated message; `arg` is the String below.
        unsafe {
            let text = std::ffi::CStr::from_ptr(msg).to_string_lossy();
            (*(arg as *mut String)).push_str(&text);
        }
    }
    let mut text = String::new();
    // SAFETY: `out` only appends to `text`, which outlives the call.
    unsafe {
        mi::mi_stats_merge();
        mi::mi_stats_print_out(Some(out), &mut text as *mut String as *mut c_void);
    }
    text
}

/// Net bytes allocated by the calling thread's core (RDB's `used-mem`), or by the threads
/// that are not cores when it is not one.
pub fn allocated_here() -> isize {
    let core = CORE.try_with(Cell::get).unwrap_or(NO_CORE);
    if core == NO_CORE {
        UNOWNED.load(Relaxed)
    } else {
        core_used(core)
    }
}

/// Live bytes of core `id`'s heap (what it allocated and nobody freed yet).
pub fn core_used(id: usize) -> isize {
    match (OWNED.get(id), REMOTE.get(id)) {
        (Some(o), Some(r)) => o.local.load(Relaxed) + r.0.load(Relaxed),
        _ => 0,
    }
}

/// Live bytes of the threads that are not cores (start-up, configuration, logging).
pub fn unowned_used() -> isize {
    UNOWNED.load(Relaxed)
}

/// Live bytes of the whole process (every core and every other thread).
pub fn total_used() -> isize {
    let n = REGISTERED.load(Relaxed).min(MAX_CORES);
    (0..n).map(core_used).sum::<isize>() + UNOWNED.load(Relaxed)
}

/// The calling core's heap as mimalloc itself sees it: the bytes of the blocks in use, after
/// collecting the blocks other threads freed. Walks every page of the heap (about a
/// millisecond per GB), so it is for introspection and tests, not for every command.
pub fn heap_used_here() -> usize {
    let heap = HEAP.with(Cell::get);
    if heap.is_null() {
        return 0;
    }
    unsafe extern "C" fn area(
        _heap: *const mi::mi_heap_t,
        area: *const mi::mi_heap_area_t,
        _block: *mut c_void,
        _size: usize,
        total: *mut c_void,
    ) -> bool {
        // SAFETY: mimalloc passes a valid area; `total` is the usize handed in below.
        unsafe {
            let a = &*area;
            *(total as *mut usize) += a.used * a.block_size;
        }
        true
    }
    let mut total = 0usize;
    // SAFETY: the heap is the calling thread's own; the visitor only reads the area.
    unsafe {
        mi::mi_heap_collect(heap, false);
        mi::mi_heap_visit_blocks(
            heap,
            false,
            Some(area),
            &mut total as *mut usize as *mut c_void,
        );
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    // The test binary's global allocator is the system one: these tests drive `Counting`
    // directly, each on threads registered as cores of their own (ids unused elsewhere).

    fn alloc_on(a: &Counting, size: usize) -> usize {
        // SAFETY: a valid non-zero layout.
        unsafe { a.alloc(Layout::from_size_align(size, 8).expect("layout")) as usize }
    }

    fn free_on(a: &Counting, p: usize, size: usize) {
        // SAFETY: `p` came from `alloc_on` with this size.
        unsafe {
            a.dealloc(
                p as *mut u8,
                Layout::from_size_align(size, 8).expect("layout"),
            )
        }
    }

    #[test]
    fn a_block_freed_on_another_core_is_credited_to_its_owner() {
        let (to_b, from_a) = std::sync::mpsc::channel::<Vec<usize>>();
        let (done_tx, done) = std::sync::mpsc::channel::<()>();
        // Core 900 stays alive until 901 freed its blocks (a thread that ends gives its heap
        // up, as cores only do at shutdown).
        let a = std::thread::spawn(move || {
            register_core(900);
            let start = core_used(900);
            let blocks: Vec<usize> = (0..1000).map(|_| alloc_on(&Counting, 100)).collect();
            // 100 bytes are served from the 112-byte class.
            assert_eq!(core_used(900) - start, 1000 * 112);
            to_b.send(blocks).expect("send");
            done.recv().expect("done");
            core_used(900) - start
        });
        let b = std::thread::spawn(move || {
            register_core(901);
            let start = core_used(901);
            let blocks = from_a.recv().expect("recv");
            for p in blocks {
                free_on(&Counting, p, 100);
            }
            let moved = core_used(901) - start;
            done_tx.send(()).expect("done");
            moved
        });
        assert_eq!(
            b.join().expect("b"),
            0,
            "the freeing core's figure does not move"
        );
        assert_eq!(
            a.join().expect("a"),
            0,
            "the owner's figure is back where it was"
        );
    }

    #[test]
    fn a_block_resized_in_place_by_another_core_stays_its_owners() {
        use std::sync::atomic::{AtomicBool, AtomicUsize};
        let layout = Layout::from_size_align(4000, 8).expect("layout");
        // The threads meet through atomics, not channels: a thread's first blocking receive
        // allocates its waiting context, which would count against the owner while the
        // other thread compares the owner's count.
        let block = std::sync::Arc::new(AtomicUsize::new(0));
        let done = std::sync::Arc::new(AtomicBool::new(false));
        let (block_out, done_in) = (block.clone(), done.clone());
        // The owner stays alive (its heap registered) until the other core is done.
        let owner = std::thread::spawn(move || {
            register_core(903);
            let start = core_used(903);
            // SAFETY: a valid layout; the other thread frees the block.
            let p = unsafe { Counting.alloc(layout) };
            block_out.store(p as usize, Relaxed);
            while !done_in.load(Relaxed) {
                std::thread::yield_now();
            }
            (start, core_used(903))
        });
        let other = std::thread::spawn(move || {
            register_core(904);
            let start = core_used(904);
            let p = loop {
                match block.load(Relaxed) {
                    0 => std::thread::yield_now(),
                    p => break p as *mut u8,
                }
            };
            let owner_before = core_used(903);
            // SAFETY: the live block of `layout`; shrinking by a quarter stays in place.
            let q = unsafe { Counting.realloc(p, layout, 3000) };
            assert_eq!(q, p, "mimalloc keeps a block shrunk by a quarter in place");
            assert_eq!(
                core_used(904),
                start,
                "nothing counted for the resizing core"
            );
            assert_eq!(core_used(903), owner_before - usable(p) + usable(q));
            // SAFETY: freed with its final size.
            unsafe { Counting.dealloc(q, Layout::from_size_align(3000, 8).expect("layout")) };
            done.store(true, Relaxed);
        });
        other.join().expect("other core");
        let (start, end) = owner.join().expect("owner");
        assert_eq!(end, start, "the owner's count is back where it started");
    }

    #[test]
    fn realloc_moves_the_count_with_the_block() {
        std::thread::spawn(|| {
            register_core(902);
            let start = core_used(902);
            let layout = Layout::from_size_align(16, 8).expect("layout");
            // SAFETY: valid layouts; the block is freed with its final size.
            unsafe {
                let p = Counting.alloc(layout);
                let q = Counting.realloc(p, layout, 4000);
                assert_eq!(core_used(902) - start, mi::mi_usable_size(q as _) as isize);
                Counting.dealloc(q, Layout::from_size_align(4000, 8).expect("layout"));
            }
            assert_eq!(core_used(902), start);
        })
        .join()
        .expect("thread");
    }
}
