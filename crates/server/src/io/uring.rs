//! A core's own io_uring ring, driven directly with the `io-uring` crate.
//!
//! The network path uses io_uring as a batch interface: submission entries are queued during a
//! loop iteration and handed to the kernel together with the wait for the next completions, so
//! one `io_uring_enter` serves every connection that had something to do. Setup flags that cut
//! wake-ups are used where the kernel has them (probed at start-up, falling back one by one),
//! and the ring's own fd is registered so `io_uring_enter` skips the per-call fd lookup (a shared
//! fd table makes that lookup an atomic reference count in a multi-threaded process).

use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

use io_uring::{cqueue, squeue, EnterFlags, IoUring};

/// Submission entries per ring. Completions get four times as many slots: multishot receives
/// and accepts post several completions per submission.
pub const SQ_ENTRIES: u32 = 4096;
const CQ_ENTRIES: u32 = SQ_ENTRIES * 4;

/// `IORING_REGISTER_RING_FDS` (not exported by the crate's high-level API in a form a ring
/// owned by a struct can keep using).
const REGISTER_RING_FDS: libc::c_uint = 20;

/// The setup flags tried at start-up, best first. Each later entry drops a flag an older
/// kernel does not know: DEFER_TASKRUN (6.1) runs completion work only when we ask for
/// completions, so the kernel never interrupts the core for them; SINGLE_ISSUER (6.0) lets
/// the kernel skip submission locking; COOP_TASKRUN (5.19) avoids inter-processor interrupts
/// for completion work.
const SETUPS: &[(&str, Setup)] = &[
    (
        "single-issuer, defer-taskrun, coop-taskrun, submit-all",
        Setup {
            single_issuer: true,
            defer_taskrun: true,
            coop_taskrun: true,
        },
    ),
    (
        "single-issuer, coop-taskrun, submit-all",
        Setup {
            single_issuer: true,
            defer_taskrun: false,
            coop_taskrun: true,
        },
    ),
    (
        "coop-taskrun, submit-all",
        Setup {
            single_issuer: false,
            defer_taskrun: false,
            coop_taskrun: true,
        },
    ),
    (
        "submit-all",
        Setup {
            single_issuer: false,
            defer_taskrun: false,
            coop_taskrun: false,
        },
    ),
];

#[derive(Clone, Copy)]
struct Setup {
    single_issuer: bool,
    defer_taskrun: bool,
    coop_taskrun: bool,
}

/// `struct io_uring_getevents_arg`: the timeout of a wait (`IORING_ENTER_EXT_ARG`).
#[repr(C)]
struct GeteventsArg {
    sigmask: u64,
    sigmask_sz: u32,
    min_wait_usec: u32,
    ts: u64,
}

/// One core's ring. Not `Send`: it is created and used by one thread (the kernel is told so).
pub struct Ring {
    uring: IoUring,
    /// The fd `io_uring_enter` is called with: the registered index when `registered`.
    enter_fd: i32,
    registered: bool,
    /// Which setup flags are in use, for the start-up log line.
    pub setup: &'static str,
}

impl Ring {
    /// Creates a ring with the best setup flags this kernel accepts.
    pub fn new() -> io::Result<Ring> {
        let mut last_err = None;
        for (name, setup) in SETUPS {
            let mut builder = IoUring::builder();
            builder.setup_cqsize(CQ_ENTRIES).setup_submit_all();
            if setup.single_issuer {
                builder.setup_single_issuer();
            }
            if setup.defer_taskrun {
                builder.setup_defer_taskrun();
            }
            if setup.coop_taskrun {
                builder.setup_coop_taskrun();
            }
            match builder.build(SQ_ENTRIES) {
                Ok(uring) => {
                    let raw = uring.as_raw_fd();
                    let mut ring = Ring {
                        uring,
                        enter_fd: raw,
                        registered: false,
                        setup: name,
                    };
                    ring.register_self();
                    return Ok(ring);
                }
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| io::Error::from_raw_os_error(libc::EINVAL)))
    }

    /// Registers the ring's own fd (Linux 5.18); without it `io_uring_enter` still works.
    fn register_self(&mut self) {
        #[repr(C)]
        struct RsrcUpdate {
            offset: u32,
            resv: u32,
            data: u64,
        }
        let mut update = RsrcUpdate {
            offset: u32::MAX, // let the kernel pick a slot
            resv: 0,
            data: self.uring.as_raw_fd() as u64,
        };
        // SAFETY: io_uring_register with a valid ring fd and a pointer to one update entry we own.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_io_uring_register,
                self.uring.as_raw_fd(),
                REGISTER_RING_FDS,
                &mut update as *mut RsrcUpdate,
                1,
            )
        };
        if rc == 1 {
            self.enter_fd = update.offset as i32;
            self.registered = true;
        }
    }

    /// The ring's fd, for other cores' `MSG_RING` wake-ups.
    pub fn fd(&self) -> i32 {
        self.uring.as_raw_fd()
    }

    /// Queues a submission entry; it reaches the kernel with the next [`Ring::enter`]. A full
    /// submission queue is handed over early (without waiting).
    pub fn push(&mut self, sqe: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: every buffer and fd an entry points to is kept alive by its owner until
            // the entry's completion arrives (see the event loop's connection lifecycle).
            let pushed = unsafe { self.uring.submission().push(sqe) };
            if pushed.is_ok() {
                return Ok(());
            }
            self.enter(false, None)?;
        }
    }

    /// Entries queued and not yet submitted.
    pub fn pending(&mut self) -> usize {
        self.uring.submission().len()
    }

    /// Submits what is queued and collects completions; with `wait`, first sleeps until at
    /// least one completion is there or `timeout` passes.
    pub fn enter(&mut self, wait: bool, timeout: Option<Duration>) -> io::Result<()> {
        let to_submit = self.uring.submission().len() as u32;
        let mut flags = EnterFlags::GETEVENTS.bits();
        if self.registered {
            flags |= EnterFlags::REGISTERED_RING.bits();
        }
        let ts;
        let arg;
        let (arg_ptr, arg_size) = match (wait, timeout) {
            (true, Some(t)) => {
                ts = libc::timespec {
                    tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
                    tv_nsec: t.subsec_nanos() as libc::c_long,
                };
                arg = GeteventsArg {
                    sigmask: 0,
                    sigmask_sz: 0,
                    min_wait_usec: 0,
                    ts: &ts as *const libc::timespec as u64,
                };
                flags |= EnterFlags::EXT_ARG.bits();
                (
                    &arg as *const GeteventsArg as *const libc::c_void,
                    std::mem::size_of::<GeteventsArg>(),
                )
            }
            _ => (std::ptr::null(), 0),
        };
        let min_complete = u32::from(wait);
        // SAFETY: io_uring_enter on our ring; `arg_ptr` points to a live GeteventsArg (and its
        // timespec) for the duration of the call, or is null.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_io_uring_enter,
                self.enter_fd,
                to_submit,
                min_complete,
                flags,
                arg_ptr,
                arg_size,
            )
        };
        if rc < 0 {
            let err = io::Error::last_os_error();
            return match err.raw_os_error() {
                // Timed out, interrupted by a signal, or completions pending that must be
                // reaped first: all mean "look at the completion queue".
                Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY) | Some(libc::EAGAIN) => {
                    Ok(())
                }
                _ => Err(err),
            };
        }
        Ok(())
    }

    /// Whether completions are waiting to be reaped.
    pub fn has_completions(&mut self) -> bool {
        !self.uring.completion().is_empty()
    }

    /// Moves every available completion into `out` (cleared first).
    pub fn reap(&mut self, out: &mut Vec<cqueue::Entry>) {
        out.clear();
        out.extend(self.uring.completion());
    }

    /// Registers a provided-buffer ring (see `buf_ring`).
    ///
    /// # Safety
    /// `addr` must point to `entries` ring entries that stay valid until the ring is dropped.
    pub unsafe fn register_buf_ring(&self, addr: u64, entries: u16, group: u16) -> io::Result<()> {
        // SAFETY: forwarded from the caller.
        unsafe {
            self.uring
                .submitter()
                .register_buf_ring_with_flags(addr, entries, group, 0)
        }
    }

    /// Reserves `n` slots in the ring's table of registered files.
    pub fn register_files_sparse(&self, n: u32) -> io::Result<()> {
        self.uring.submitter().register_files_sparse(n)
    }

    /// Puts `fd` in slot `slot` of the registered files (-1 empties the slot). Operations on a
    /// registered file skip the kernel's per-operation file lookup and reference count.
    pub fn set_file(&self, slot: u32, fd: i32) -> io::Result<()> {
        self.uring
            .submitter()
            .register_files_update(slot, &[fd])
            .map(drop)
    }

    /// Which operations the kernel supports.
    pub fn probe(&self) -> io::Result<io_uring::Probe> {
        let mut probe = io_uring::Probe::new();
        self.uring.submitter().register_probe(&mut probe)?;
        Ok(probe)
    }
}
