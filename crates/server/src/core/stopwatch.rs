//! How long one command ran (commandstats, SLOWLOG, LATENCY), timed cheaply.
//!
//! Every command executed on a shard is timed, so the two clock reads around it are on the
//! hottest path: a pair of monotonic-clock reads (vDSO `clock_gettime`) costs ~49 ns on these
//! machines, 5% of a core's CPU at pipeline 16 (perf, redis-benchmark GET). A read of the
//! CPU's time-stamp counter costs ~10 ns. The counter is used where it ticks at one constant
//! rate whatever the CPU's frequency or sleep state (x86-64 with `constant_tsc` and
//! `nonstop_tsc`), its rate measured once at start-up against the monotonic clock
//! ([`calibrate`]); elsewhere, and until calibrated, the stopwatch reads the clock. A
//! stopwatch is started and read on one core's thread, pinned to its CPU.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Nanoseconds per counter tick, as a 32.32 fixed-point number; 0 until calibrated (or where
/// the counter cannot be used): the stopwatch then reads the clock.
static NANOS_PER_TICK: AtomicU64 = AtomicU64::new(0);

/// How long the calibration watches the counter against the clock: a read of either is
/// precise to well under a microsecond, so the rate is off by a few parts per million.
const CALIBRATION: Duration = Duration::from_millis(20);

/// A started stopwatch.
#[derive(Clone, Copy, Debug)]
pub enum Stopwatch {
    Ticks(u64),
    Clock(Instant),
}

impl Stopwatch {
    #[inline]
    pub fn start() -> Stopwatch {
        match ticks() {
            Some(t) if NANOS_PER_TICK.load(Ordering::Relaxed) != 0 => Stopwatch::Ticks(t),
            _ => Stopwatch::Clock(Instant::now()),
        }
    }

    /// The time since [`start`](Self::start).
    #[inline]
    pub fn elapsed(&self) -> Duration {
        match *self {
            Stopwatch::Ticks(start) => {
                let now = ticks().unwrap_or(start);
                let rate = NANOS_PER_TICK.load(Ordering::Relaxed);
                let nanos = (u128::from(now.saturating_sub(start)) * u128::from(rate)) >> 32;
                Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
            }
            Stopwatch::Clock(at) => at.elapsed(),
        }
    }
}

/// At start-up, before the cores run: measures the counter's rate when it can be used.
/// Returns the rate in ticks per microsecond, for the log (None: the clock is used).
pub fn calibrate() -> Option<f64> {
    if !invariant_counter() {
        return None;
    }
    let (c0, t0) = (ticks()?, Instant::now());
    std::thread::sleep(CALIBRATION);
    let (c1, t1) = (ticks()?, Instant::now());
    let nanos = t1.duration_since(t0).as_nanos();
    let elapsed_ticks = u128::from(c1.checked_sub(c0)?);
    if elapsed_ticks == 0 {
        return None;
    }
    let rate = u64::try_from((nanos << 32) / elapsed_ticks).ok()?;
    if rate == 0 {
        return None;
    }
    NANOS_PER_TICK.store(rate, Ordering::Relaxed);
    Some(elapsed_ticks as f64 / (nanos as f64 / 1000.0))
}

/// The time-stamp counter, where there is one.
#[inline]
fn ticks() -> Option<u64> {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC has no preconditions on x86-64 (it is not disabled for user space on
        // Linux unless a process asks for it with prctl, which this one never does).
        Some(unsafe { core::arch::x86_64::_rdtsc() })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

/// Whether the kernel reports a counter that ticks at one rate in every state.
fn invariant_counter() -> bool {
    if !cfg!(target_arch = "x86_64") {
        return false;
    }
    let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else {
        return false;
    };
    let Some(flags) = info.lines().find(|l| l.starts_with("flags")) else {
        return false;
    };
    let has = |f: &str| flags.split_whitespace().any(|w| w == f);
    has("constant_tsc") && has("nonstop_tsc")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_calibrated_stopwatch_agrees_with_the_clock() {
        calibrate();
        let clock = Instant::now();
        let sw = Stopwatch::start();
        std::thread::sleep(Duration::from_millis(30));
        // Bracketed by two clock reads, so a preemption in between widens the bracket
        // instead of failing the check; the rate's own error is parts per million.
        let before = clock.elapsed();
        let measured = sw.elapsed();
        let after = clock.elapsed();
        let slack = Duration::from_micros(50) + after / 100;
        assert!(
            measured + slack >= before && measured <= after + slack,
            "{measured:?} outside {before:?}..{after:?}"
        );
    }
}
