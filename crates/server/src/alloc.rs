//! The global allocator: mimalloc (per-thread heaps suit thread-per-core, and it has less
//! per-allocation overhead than the system allocator), counting the bytes each thread
//! allocates so INFO can report `used_memory` without any shared counter (each core sums its
//! own; INFO adds them up).

use std::alloc::{GlobalAlloc, Layout};

use mimalloc::MiMalloc as Backing;
use std::cell::Cell;

thread_local! {
    /// Bytes allocated minus bytes freed by this thread (can go negative when memory
    /// allocated on one core is freed on another; the sum over threads is exact).
    static NET: Cell<isize> = const { Cell::new(0) };
}

pub struct Counting;

fn add(n: isize) {
    // try_with: the thread-local may be gone during thread teardown.
    let _ = NET.try_with(|c| c.set(c.get() + n));
}

// SAFETY: defers every operation to mimalloc unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { Backing.alloc(layout) };
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { Backing.dealloc(ptr, layout) };
        add(-(layout.size() as isize));
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { Backing.alloc_zeroed(layout) };
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { Backing.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            add(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Net bytes allocated by the calling thread.
pub fn allocated_here() -> isize {
    NET.try_with(|c| c.get()).unwrap_or(0)
}
