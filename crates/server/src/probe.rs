//! Start-up checks that must happen before any executor exists: is io_uring usable, how much
//! memory may each executor lock, and which CPUs may the process run on.

use std::io;

/// Checks that io_uring can be set up, with a message that says what to change when it cannot
/// (glommio itself would panic with an unhelpful message).
pub fn check_io_uring() -> Result<(), String> {
    let ring = match io_uring::IoUring::new(8) {
        Ok(ring) => ring,
        Err(e) => return Err(explain_io_uring_error(&e)),
    };
    let mut probe = io_uring::Probe::new();
    if let Err(e) = ring.submitter().register_probe(&mut probe) {
        return Err(explain_io_uring_error(&e));
    }
    Ok(())
}

fn explain_io_uring_error(e: &io::Error) -> String {
    let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => {
            if !disabled.is_empty() && disabled != "0" {
                format!(
                    "io_uring is disabled by the kernel (kernel.io_uring_disabled = {disabled}); \
                     set it to 0 (sysctl -w kernel.io_uring_disabled=0) to run shardis-server"
                )
            } else {
                "io_uring is blocked (EPERM), most likely by a seccomp profile: Docker >= 25 and \
                 containerd 2.x default profiles block it. Run with the seccomp profile in deploy/ \
                 (allows io_uring_setup, io_uring_enter, io_uring_register) or --security-opt seccomp=unconfined"
                    .to_string()
            }
        }
        Some(libc::ENOSYS) => "this kernel has no io_uring (ENOSYS): shardis-server needs Linux 5.8 or newer with io_uring enabled".to_string(),
        Some(libc::ENOMEM) => "io_uring could not lock memory (ENOMEM): raise the memlock limit (ulimit -l, or --ulimit memlock=-1 in Docker)".to_string(),
        _ => format!("io_uring is not usable: {e}"),
    }
}

/// glommio's default per-executor io_memory.
const IO_MEMORY_DEFAULT: usize = 10 << 20;
/// Below this an executor cannot start.
pub const IO_MEMORY_MIN: usize = 512 << 10;
/// Locked memory glommio needs besides io_memory (the rings themselves), per executor.
const RING_OVERHEAD: usize = 256 << 10;

/// Raises RLIMIT_MEMLOCK's soft limit to the hard limit, then sizes each executor's io_memory
/// so that all of them fit. Returns (io_memory per executor, a line for the log).
pub fn size_io_memory(executors: usize) -> Result<(usize, String), String> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write to and read from a valid, owned rlimit struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } != 0 {
        return Ok((
            IO_MEMORY_MIN,
            "could not read RLIMIT_MEMLOCK; using the minimum io_memory".into(),
        ));
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &raised) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
    }
    if lim.rlim_cur == libc::RLIM_INFINITY {
        return Ok((
            IO_MEMORY_DEFAULT,
            "memlock unlimited: 10 MiB io_memory per shard".into(),
        ));
    }
    let per_executor = (lim.rlim_cur as usize / executors.max(1)).saturating_sub(RING_OVERHEAD);
    let io_memory = per_executor.min(IO_MEMORY_DEFAULT);
    if io_memory < IO_MEMORY_MIN {
        return Err(format!(
            "RLIMIT_MEMLOCK is {} KiB: {} shards need at least {} KiB; raise it (ulimit -l, \
             --ulimit memlock=-1 in Docker, IPC_LOCK in Kubernetes) or use fewer --shards",
            lim.rlim_cur / 1024,
            executors,
            executors * (IO_MEMORY_MIN + RING_OVERHEAD) / 1024
        ));
    }
    Ok((
        io_memory,
        format!(
            "memlock limit {} KiB: {} KiB io_memory per shard",
            lim.rlim_cur / 1024,
            io_memory / 1024
        ),
    ))
}

/// The CPUs in the process's affinity mask (so `taskset` and cgroup cpusets are obeyed).
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills the set we own.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let ok =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) }
            == 0;
    if !ok {
        return (0..std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1))
            .collect();
    }
    // SAFETY: CPU_ISSET reads within the set for indexes below CPU_SETSIZE.
    (0..libc::CPU_SETSIZE as usize)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}
