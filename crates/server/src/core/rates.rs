//! INFO's `instantaneous_*` figures of one core: its command and network counters sampled
//! every 100 ms by its clock, and the mean rate per second over the last 16 samples (Redis's
//! `trackInstantaneousMetric`). INFO adds up the cores' rates.

/// Samples kept per figure, and the least time between two samples.
const SAMPLES: usize = 16;
const PERIOD_MS: u64 = 100;

/// The figures tracked.
#[derive(Clone, Copy)]
pub enum Figure {
    Commands = 0,
    InputBytes = 1,
    OutputBytes = 2,
}
const FIGURES: usize = 3;

#[derive(Default)]
pub struct Rates {
    /// When the counters were last sampled (0: never), and their values then.
    last_ms: u64,
    last: [u64; FIGURES],
    /// Rates per second between consecutive samples, a ring per figure.
    per_second: [[f64; SAMPLES]; FIGURES],
    next: usize,
}

impl Rates {
    /// Samples `counters` (in [`Figure`] order) taken at `now_ms`, unless the last sample is
    /// less than 100 ms old.
    pub fn sample(&mut self, now_ms: u64, counters: [u64; FIGURES]) {
        let elapsed = now_ms.saturating_sub(self.last_ms);
        if self.last_ms != 0 && elapsed < PERIOD_MS {
            return;
        }
        if self.last_ms != 0 {
            for (i, ring) in self.per_second.iter_mut().enumerate() {
                let delta = counters[i].saturating_sub(self.last[i]);
                ring[self.next] = delta as f64 * 1000.0 / elapsed as f64;
            }
            self.next = (self.next + 1) % SAMPLES;
        }
        self.last_ms = now_ms;
        self.last = counters;
    }

    /// The mean rate per second of `figure` over the ring (samples not taken yet count as 0,
    /// as in Redis).
    pub fn rate(&self, figure: Figure) -> f64 {
        self.per_second[figure as usize].iter().sum::<f64>() / SAMPLES as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_average_the_last_sixteen_samples() {
        let mut r = Rates::default();
        r.sample(1_000, [0, 0, 0]);
        assert_eq!(r.rate(Figure::Commands), 0.0);
        // 100 commands and 1,000 input bytes every 100 ms, for 16 samples.
        for i in 1..=16u64 {
            r.sample(1_000 + i * 100, [i * 100, i * 1_000, 0]);
        }
        assert_eq!(r.rate(Figure::Commands), 1_000.0);
        assert_eq!(r.rate(Figure::InputBytes), 10_000.0);
        assert_eq!(r.rate(Figure::OutputBytes), 0.0);
        // A sample sooner than 100 ms after the last is skipped.
        r.sample(2_650, [5_000, 0, 0]);
        assert_eq!(r.rate(Figure::Commands), 1_000.0);
        // Idle from now on: after 16 more samples the rate is 0 again; halfway, half.
        for i in 1..=8u64 {
            r.sample(2_600 + i * 100, [1_600, 16_000, 0]);
        }
        assert_eq!(r.rate(Figure::Commands), 500.0);
        for i in 9..=16u64 {
            r.sample(2_600 + i * 100, [1_600, 16_000, 0]);
        }
        assert_eq!(r.rate(Figure::Commands), 0.0);
    }
}
