//! The latency monitor's data (Redis's `latency.c`): for each event class (`command`,
//! `fast-command`, `expire-cycle`, `eviction-cycle`), samples of at least
//! `latency-monitor-threshold` milliseconds, one per second (the worst), the last 160 kept,
//! and the worst ever. Each core keeps its own; LATENCY merges them (`merge`).

use std::collections::BTreeMap;
use std::time::Duration;

/// Samples kept per event.
pub const SERIES_LEN: usize = 160;

/// One sample: when (Unix seconds) and how long (milliseconds).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    pub time: u64,
    pub latency: u64,
}

/// One event's samples, oldest first, and its worst latency ever.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Series {
    pub samples: Vec<Sample>,
    pub max: u64,
}

impl Series {
    fn add(&mut self, sample: Sample) {
        self.max = self.max.max(sample.latency);
        match self.samples.last_mut() {
            // One sample per second: the worst.
            Some(last) if last.time == sample.time => {
                last.latency = last.latency.max(sample.latency);
            }
            _ => {
                if self.samples.len() == SERIES_LEN {
                    self.samples.remove(0);
                }
                self.samples.push(sample);
            }
        }
    }

    /// The latest sample.
    pub fn latest(&self) -> Sample {
        self.samples.last().copied().unwrap_or_default()
    }
}

/// Every event class of one core (or merged).
#[derive(Clone, Debug, Default)]
pub struct Monitor {
    pub events: BTreeMap<&'static str, Series>,
}

impl Monitor {
    /// Adds a sample of `event` if the monitor is on (`threshold_ms` > 0) and `took` reached
    /// it.
    pub fn add_if_needed(&mut self, threshold_ms: u64, event: &'static str, took: Duration) {
        let ms = took.as_millis() as u64;
        if threshold_ms == 0 || ms < threshold_ms {
            return;
        }
        self.add(event, super::wall_ms() / 1000, ms);
    }

    fn add(&mut self, event: &'static str, time: u64, latency: u64) {
        self.events
            .entry(event)
            .or_default()
            .add(Sample { time, latency });
    }

    /// Forgets `events` (all when None); the names it had among them.
    pub fn reset(&mut self, events: Option<&[String]>) -> Vec<&'static str> {
        match events {
            None => {
                let names = self.events.keys().copied().collect();
                self.events.clear();
                names
            }
            Some(wanted) => {
                let names: Vec<&'static str> = self
                    .events
                    .keys()
                    .copied()
                    .filter(|k| wanted.iter().any(|w| w == k))
                    .collect();
                for n in &names {
                    self.events.remove(n);
                }
                names
            }
        }
    }
}

/// Merges every core's monitor: per event, per second the worst sample, the latest 160.
pub fn merge(monitors: Vec<Monitor>) -> Monitor {
    let mut by_event: BTreeMap<&'static str, (BTreeMap<u64, u64>, u64)> = BTreeMap::new();
    for m in monitors {
        for (event, series) in m.events {
            let (samples, max) = by_event.entry(event).or_default();
            *max = (*max).max(series.max);
            for s in series.samples {
                let at = samples.entry(s.time).or_default();
                *at = (*at).max(s.latency);
            }
        }
    }
    let events = by_event
        .into_iter()
        .map(|(event, (samples, max))| {
            let skip = samples.len().saturating_sub(SERIES_LEN);
            let samples = samples
                .into_iter()
                .skip(skip)
                .map(|(time, latency)| Sample { time, latency })
                .collect();
            (event, Series { samples, max })
        })
        .collect();
    Monitor { events }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_worst_sample_of_each_second_and_the_last_160() {
        let mut m = Monitor::default();
        m.add("command", 10, 5);
        m.add("command", 10, 9);
        m.add("command", 10, 3);
        let s = &m.events["command"];
        assert_eq!(
            s.samples,
            vec![Sample {
                time: 10,
                latency: 9
            }]
        );
        for t in 11..300 {
            m.add("command", t, 1);
        }
        let s = &m.events["command"];
        assert_eq!(s.samples.len(), SERIES_LEN);
        assert_eq!(s.max, 9);
        assert_eq!(
            s.latest(),
            Sample {
                time: 299,
                latency: 1
            }
        );
    }

    #[test]
    fn below_the_threshold_or_off_nothing_is_kept() {
        let mut m = Monitor::default();
        m.add_if_needed(0, "command", Duration::from_millis(500));
        m.add_if_needed(100, "command", Duration::from_millis(99));
        assert!(m.events.is_empty());
        m.add_if_needed(100, "command", Duration::from_millis(100));
        assert_eq!(m.events["command"].max, 100);
    }

    #[test]
    fn merging_cores_takes_the_worst_per_second() {
        let mut a = Monitor::default();
        a.add("command", 1, 10);
        a.add("command", 3, 30);
        let mut b = Monitor::default();
        b.add("command", 1, 20);
        b.add("command", 2, 5);
        b.add("expire-cycle", 2, 7);
        let m = merge(vec![a, b]);
        let times: Vec<(u64, u64)> = m.events["command"]
            .samples
            .iter()
            .map(|s| (s.time, s.latency))
            .collect();
        assert_eq!(times, vec![(1, 20), (2, 5), (3, 30)]);
        assert_eq!(m.events["command"].max, 30);
        assert_eq!(m.events["expire-cycle"].max, 7);
    }

    #[test]
    fn reset_names_what_it_forgot() {
        let mut m = Monitor::default();
        m.add("command", 1, 10);
        m.add("expire-cycle", 1, 10);
        assert_eq!(m.reset(Some(&["blabla".to_string()])), Vec::<&str>::new());
        assert_eq!(m.reset(Some(&["command".to_string()])), vec!["command"]);
        assert_eq!(m.reset(None), vec!["expire-cycle"]);
    }
}
