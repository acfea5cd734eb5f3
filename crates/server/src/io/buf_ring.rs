//! The core's provided-buffer ring: the buffers multishot receives land in.
//!
//! Instead of one buffer per connection, the kernel picks a free buffer from this ring for
//! each receive completion; the event loop copies the bytes into the connection's input
//! buffer and gives the buffer back at once, so a few hundred kilobytes serve any number of
//! connections. Buffers given back are published to the kernel together, once per loop
//! iteration.
//!
//! The buffers (8 MiB) are mapped from the system, not taken from the allocator: like the
//! kernel's socket buffers they are I/O space shared with the kernel, not data, so they stay
//! out of `used_memory` and the `maxmemory` budget (which, as Redis's, counts the whole
//! heap). Their pages are touched, and show in RSS, only as far as receives reach into them.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;

use super::uring::Ring;

/// The buffer group id receives select from.
pub const GROUP: u16 = 0;
/// Buffers in the ring (a power of two). When all are in use, a receive ends with ENOBUFS and
/// is re-armed once buffers come back.
pub const ENTRIES: u16 = 1024;
/// Bytes per buffer: Redis reads 16 KiB at a time; most requests are far smaller.
pub const BUF_SIZE: usize = 8 * 1024;
const BUFFER_BYTES: usize = ENTRIES as usize * BUF_SIZE;

pub struct BufRing {
    /// The ring of entries shared with the kernel (page aligned).
    entries: *mut BufRingEntry,
    entries_layout: Layout,
    /// The buffers themselves: `ENTRIES * BUF_SIZE` bytes mapped in `register`.
    buffers: *mut u8,
    /// Our copy of the tail: entries up to here are (or will be, once published) the kernel's.
    tail: u16,
    /// Buffers given back since the last publish.
    unpublished: bool,
}

impl BufRing {
    /// Allocates the buffers and registers them with `ring`.
    pub fn register(ring: &Ring) -> io::Result<BufRing> {
        let bytes = ENTRIES as usize * std::mem::size_of::<BufRingEntry>();
        let entries_layout = Layout::from_size_align(bytes, 4096)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: the layout has a non-zero size.
        let entries = unsafe { alloc_zeroed(entries_layout) } as *mut BufRingEntry;
        if entries.is_null() {
            return Err(io::Error::from(io::ErrorKind::OutOfMemory));
        }
        // SAFETY: an anonymous private mapping, checked below; unmapped in `drop`.
        let buffers = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                BUFFER_BYTES,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if buffers == libc::MAP_FAILED {
            let e = io::Error::last_os_error();
            // SAFETY: allocated above with this layout.
            unsafe { dealloc(entries as *mut u8, entries_layout) };
            return Err(e);
        }
        let mut ring_buf = BufRing {
            entries,
            entries_layout,
            buffers: buffers as *mut u8,
            tail: 0,
            unpublished: false,
        };
        // SAFETY: `entries` stays allocated until `ring_buf` is dropped, which happens after
        // the ring (the event loop drops its ring first).
        unsafe { ring.register_buf_ring(entries as u64, ENTRIES, GROUP)? };
        for bid in 0..ENTRIES {
            ring_buf.give_back(bid);
        }
        ring_buf.publish();
        Ok(ring_buf)
    }

    /// The bytes a receive completion reported in buffer `bid`.
    pub fn data(&self, bid: u16, len: usize) -> &[u8] {
        let start = (bid as usize % ENTRIES as usize) * BUF_SIZE;
        // SAFETY: `start + len.min(BUF_SIZE)` ≤ `BUFFER_BYTES`, inside the mapping, which lives
        // as long as `self`; the kernel wrote this buffer before reporting it and does not
        // touch it again until it is given back.
        unsafe { std::slice::from_raw_parts(self.buffers.add(start), len.min(BUF_SIZE)) }
    }

    /// Returns buffer `bid` to the kernel (visible after the next [`BufRing::publish`]).
    pub fn give_back(&mut self, bid: u16) {
        let slot = (self.tail & (ENTRIES - 1)) as usize;
        let start = (bid as usize % ENTRIES as usize) * BUF_SIZE;
        // SAFETY: `slot` < ENTRIES, inside the entries allocation; the kernel only reads entries
        // between its head and the published tail, and this slot is past the published tail.
        let entry = unsafe { &mut *self.entries.add(slot) };
        // SAFETY: `start` < `BUFFER_BYTES`, inside the mapping.
        entry.set_addr(unsafe { self.buffers.add(start) } as u64);
        entry.set_len(BUF_SIZE as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
        self.unpublished = true;
    }

    /// Publishes the buffers given back since the last call.
    pub fn publish(&mut self) {
        if !self.unpublished {
            return;
        }
        self.unpublished = false;
        // SAFETY: the tail field overlays the first entry's reserved field, inside the
        // allocation; the kernel reads it with acquire semantics.
        unsafe {
            let tail = BufRingEntry::tail(self.entries) as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated and mapped in `register` with this layout and size.
        unsafe {
            dealloc(self.entries as *mut u8, self.entries_layout);
            libc::munmap(self.buffers as *mut libc::c_void, BUFFER_BYTES);
        }
    }
}
