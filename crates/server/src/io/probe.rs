//! Start-up checks that must happen before any executor exists: is io_uring usable, how much
//! memory may each executor lock, and which CPUs may the process run on.

use std::io;

/// The io_uring operations the network path is built on.
const REQUIRED_OPS: &[(u8, &str)] = &[
    (io_uring::opcode::AcceptMulti::CODE, "accept"),
    (io_uring::opcode::RecvMulti::CODE, "recv"),
    (io_uring::opcode::Send::CODE, "send"),
    (io_uring::opcode::MsgRingData::CODE, "msg_ring"),
    (io_uring::opcode::AsyncCancel::CODE, "async_cancel"),
    (io_uring::opcode::FilesUpdate::CODE, "files_update"),
];

/// The oldest kernel with everything the network path uses: multishot receive into a
/// provided-buffer ring (6.0) and deferred completion work (6.1; older kernels fall back to
/// other setup flags, see `uring`).
const MIN_KERNEL: (u32, u32) = (6, 0);

/// Checks that io_uring can be set up with what the server needs, with a message that says
/// what to change when it cannot (glommio itself would panic with an unhelpful message).
pub fn check_io_uring() -> Result<(), String> {
    if let Some((major, minor)) = kernel_version() {
        if (major, minor) < MIN_KERNEL {
            return Err(format!(
                "Linux {major}.{minor} is too old: shardis-server needs Linux {}.{} or newer \
                 (multishot receive into provided-buffer rings)",
                MIN_KERNEL.0, MIN_KERNEL.1
            ));
        }
    }
    let ring = match io_uring::IoUring::new(8) {
        Ok(ring) => ring,
        Err(e) => return Err(explain_io_uring_error(&e)),
    };
    let mut probe = io_uring::Probe::new();
    if let Err(e) = ring.submitter().register_probe(&mut probe) {
        return Err(explain_io_uring_error(&e));
    }
    let missing: Vec<&str> = REQUIRED_OPS
        .iter()
        .filter(|(code, _)| !probe.is_supported(*code))
        .map(|(_, name)| *name)
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "this kernel's io_uring lacks operations shardis-server needs: {}",
            missing.join(", ")
        ));
    }
    Ok(())
}

/// The running kernel's (major, minor) version, from uname.
fn kernel_version() -> Option<(u32, u32)> {
    // SAFETY: uname fills a utsname struct we own.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut uts) } != 0 {
        return None;
    }
    let release: String = uts
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8 as char)
        .collect();
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
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
        Some(libc::ENOMEM) => "io_uring could not lock memory (ENOMEM): raise the memlock limit (ulimit -l, or --ulimit memlock=-1 in Docker); the limit is shared by every process of the same user".to_string(),
        _ => format!("io_uring is not usable: {e}"),
    }
}

/// The io_memory each glommio executor gets. The network path runs on the core's own ring
/// and buffers (see `uring`, `buf_ring`), so glommio's DMA memory is unused: the minimum an
/// executor starts with.
pub const IO_MEMORY: usize = 512 << 10;
/// Locked memory an executor needs besides io_memory (its rings), per executor.
const RING_OVERHEAD: usize = 256 << 10;

/// Raises RLIMIT_MEMLOCK's soft limit to the hard limit and checks that `executors` executors
/// fit in it. Returns a line for the log.
pub fn check_memlock(executors: usize) -> Result<String, String> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write to and read from a valid, owned rlimit struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } != 0 {
        return Ok("could not read RLIMIT_MEMLOCK".into());
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
        return Ok("memlock limit: unlimited".into());
    }
    let needed = executors.saturating_mul(IO_MEMORY + RING_OVERHEAD);
    if (lim.rlim_cur as usize) < needed {
        return Err(format!(
            "RLIMIT_MEMLOCK is {} KiB: {} shards need at least {} KiB; raise it (ulimit -l, \
             --ulimit memlock=-1 in Docker, IPC_LOCK in Kubernetes) or use fewer --shards",
            lim.rlim_cur / 1024,
            executors,
            needed / 1024
        ));
    }
    Ok(format!(
        "memlock limit {} KiB, {} KiB locked per shard",
        lim.rlim_cur / 1024,
        (IO_MEMORY + RING_OVERHEAD) / 1024
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
