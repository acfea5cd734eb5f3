//! `wake-cost`: what waking a sleeping thread costs on this machine, the price a core pays
//! each time work for it arrives while it sleeps (a request forwarded from another core, or
//! the reply coming back).
//!
//! Two threads ping-pong through futex wake-ups, each waiting in the kernel for its turn:
//! once pinned to two different CPUs (a wake-up of another, idle CPU: an inter-processor
//! interrupt, and on a virtual machine the host resuming a halted vCPU) and once both on the
//! same CPU (a plain task switch). Then one thread sleeps on a short timeout in a loop (a
//! wake-up by the CPU's own timer). Each line gives the wall time per round trip or sleep and
//! the CPU time (user + system, both threads) per wake-up: the second is what a server's CPU
//! per request pays for each of its cores' sleeps.
//!
//! Usage: wake-cost [CPU_A CPU_B] [ROUNDS]   (defaults: CPUs 0 and 1, 50,000 rounds)

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap_or_else(|_| usage()))
        .collect();
    let (a, b) = match args.as_slice() {
        [] | [_] => (0, 1),
        [a, b, ..] => (*a, *b),
    };
    let rounds = args.get(2).copied().unwrap_or(50_000).max(1) as u32;
    if let Ok(ns) = std::fs::read_to_string("/sys/module/haltpoll/parameters/guest_halt_poll_ns") {
        println!(
            "guest halt polling (haltpoll guest_halt_poll_ns): {}",
            ns.trim()
        );
    }
    let (trip, cpu) = ping_pong(a, b, rounds);
    println!("CPUs {a} and {b}: round trip {trip:.2} µs, CPU per wake-up {cpu:.2} µs");
    let (trip, cpu) = ping_pong(a, a, rounds);
    println!("CPU {a} alone: round trip {trip:.2} µs, CPU per wake-up {cpu:.2} µs");
    for us in [20, 100] {
        let (took, cpu) = timed_sleeps(a, us, rounds / 5);
        println!("CPU {a}, sleeps of {us} µs: each {took:.1} µs, CPU per wake-up {cpu:.2} µs");
    }
}

fn usage() -> ! {
    eprintln!("usage: wake-cost [CPU_A CPU_B] [ROUNDS]");
    std::process::exit(2)
}

/// Round trip (µs) and CPU per wake-up (µs) of `rounds` ping-pongs between threads on `a`
/// and `b`.
fn ping_pong(a: usize, b: usize, rounds: u32) -> (f64, f64) {
    // Odd: the other thread's turn; even: the first thread's.
    let turn = Arc::new(AtomicU32::new(0));
    let theirs = turn.clone();
    let other = std::thread::spawn(move || {
        pin(b);
        for i in 0..rounds {
            wait_for(&theirs, 2 * i + 1);
            theirs.store(2 * i + 2, Ordering::Release);
            wake(&theirs);
        }
    });
    pin(a);
    std::thread::sleep(Duration::from_millis(20));
    let (cpu, started) = (cpu_us(), Instant::now());
    for i in 0..rounds {
        turn.store(2 * i + 1, Ordering::Release);
        wake(&turn);
        wait_for(&turn, 2 * i + 2);
    }
    let elapsed = started.elapsed().as_secs_f64() * 1e6;
    if other.join().is_err() {
        eprintln!("wake-cost: the other thread failed");
        std::process::exit(1);
    }
    let cpu = cpu_us() - cpu;
    (elapsed / f64::from(rounds), cpu / (2.0 * f64::from(rounds)))
}

/// Wall time and CPU per sleep of `count` futex waits of `us` µs that nothing wakes early.
fn timed_sleeps(cpu: usize, us: u64, count: u32) -> (f64, f64) {
    pin(cpu);
    let word = AtomicU32::new(0);
    let timeout = libc::timespec {
        tv_sec: 0,
        tv_nsec: (us * 1000) as libc::c_long,
    };
    let (used, started) = (cpu_us(), Instant::now());
    for _ in 0..count {
        // SAFETY: a futex wait on a word this function owns, with a valid timeout.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                &word as *const AtomicU32,
                libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                0u32,
                &timeout as *const libc::timespec,
            )
        };
    }
    let n = f64::from(count.max(1));
    (
        started.elapsed().as_secs_f64() * 1e6 / n,
        (cpu_us() - used) / n,
    )
}

/// Sleeps in the kernel until `word` holds `want`.
fn wait_for(word: &AtomicU32, want: u32) {
    loop {
        let seen = word.load(Ordering::Acquire);
        if seen == want {
            return;
        }
        // SAFETY: a futex wait on a live atomic; it returns at once if the word changed.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word as *const AtomicU32,
                libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                seen,
                std::ptr::null::<libc::timespec>(),
            )
        };
    }
}

fn wake(word: &AtomicU32) {
    // SAFETY: a futex wake of a live atomic.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word as *const AtomicU32,
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        )
    };
}

fn pin(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET writes within it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            eprintln!("wake-cost: cannot pin a thread to CPU {cpu}");
            std::process::exit(1);
        }
    }
}

/// This process's user + system CPU time, in µs.
fn cpu_us() -> f64 {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let us = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    us(usage.ru_utime) + us(usage.ru_stime)
}
