//! Per-core counters that only the metrics endpoint reads: requests forwarded to other cores
//! and the round trip of their batches (calls by command are in `calls`, beside the other
//! per-command figures).
//!
//! They are plain cells owned by the core: the hot path adds to them without atomics or
//! fences, and a scrape reads them on the core itself (the fan-out runs a closure on every
//! core, see `crate::metrics`), so no core ever touches another's.

use std::cell::Cell;
use std::time::Duration;

/// Upper bounds of the round-trip buckets: 2^(k+3) microseconds, 8 µs to about 1 s, and
/// +Inf past the last.
pub const ROUND_TRIP_BUCKETS: usize = 18;

/// Bucket `k`'s upper bound in microseconds.
pub fn bucket_bound_us(k: usize) -> u64 {
    8u64 << k
}

/// Requests this core sent to other cores' shards from its connections, and how long their
/// batches took to come back.
#[derive(Default)]
pub struct Forwarding {
    requests: Cell<u64>,
    /// Batches whose round trip fell in each bucket, and one more for longer ones.
    buckets: [Cell<u64>; ROUND_TRIP_BUCKETS + 1],
    /// Sum of the round trips, in microseconds.
    sum_us: Cell<u64>,
}

/// A copy of [`Forwarding`] for a scrape.
#[derive(Clone, Debug, Default)]
pub struct ForwardingFigures {
    pub requests: u64,
    pub buckets: [u64; ROUND_TRIP_BUCKETS + 1],
    pub sum_us: u64,
}

impl Forwarding {
    /// Counts a batch of `n` requests leaving for another core.
    #[inline]
    pub fn sent(&self, n: usize) {
        self.requests.set(self.requests.get() + n as u64);
    }

    /// Records the round trip of one batch: from the end of the pass that sent it to the
    /// moment its replies are back on this core.
    #[inline]
    pub fn returned(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        // Bucket k holds round trips up to 8 << k µs.
        let k = (64 - us.saturating_sub(1).leading_zeros() as usize)
            .saturating_sub(3)
            .min(ROUND_TRIP_BUCKETS);
        let b = &self.buckets[k];
        b.set(b.get() + 1);
        self.sum_us.set(self.sum_us.get().saturating_add(us));
    }

    pub fn figures(&self) -> ForwardingFigures {
        ForwardingFigures {
            requests: self.requests.get(),
            buckets: std::array::from_fn(|k| self.buckets[k].get()),
            sum_us: self.sum_us.get(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_fall_in_the_bucket_of_their_upper_bound() {
        let f = Forwarding::default();
        for us in [0, 8, 9, 16, 17, 1000, 10_000_000] {
            f.returned(Duration::from_micros(us));
        }
        let got = f.figures();
        // 0 and 8 µs: bucket 0 (≤ 8); 9 and 16: bucket 1 (≤ 16); 17: bucket 2 (≤ 32);
        // 1000: bucket 7 (≤ 1024); 10 s: past the last bound.
        assert_eq!(got.buckets[0], 2);
        assert_eq!(got.buckets[1], 2);
        assert_eq!(got.buckets[2], 1);
        assert_eq!(got.buckets[7], 1);
        assert_eq!(got.buckets[ROUND_TRIP_BUCKETS], 1);
        assert_eq!(got.buckets.iter().sum::<u64>(), 7);
        assert_eq!(got.sum_us, 8 + 9 + 16 + 17 + 1000 + 10_000_000);
        for k in 0..ROUND_TRIP_BUCKETS {
            let bound = bucket_bound_us(k);
            let g = Forwarding::default();
            g.returned(Duration::from_micros(bound));
            g.returned(Duration::from_micros(bound + 1));
            let b = g.figures().buckets;
            assert_eq!(b[k], 1, "{bound} µs is in bucket {k}");
            assert_eq!(b[k + 1], 1, "{} µs is past bucket {k}", bound + 1);
        }
    }
}
