//! A [`Snapshot`] in the Prometheus text exposition format (version 0.0.4), written by the
//! prometheus-client crate's encoder.
//!
//! Every figure is a server total (`shardis_<name>`) and, per core, a `shardis_shard_<name>`
//! series labelled `shard`, so `sum()` over either never counts anything twice. The snapshot
//! is already taken when this runs (on the metrics thread), so each figure is written as a
//! constant through a `Collector` rather than kept in the crate's live metric types.

use std::collections::BTreeMap;
use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use shardis_engine::command::all_facts;

use super::gather::{ShardFigures, Snapshot};
use crate::core::counters::{bucket_bound_us, ROUND_TRIP_BUCKETS};

/// The exposition's `Content-Type`.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Writes `snapshot` in the text format.
pub fn encode(snapshot: Snapshot) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Exposition(snapshot)));
    let mut out = String::new();
    // Writing into a String cannot fail, nor can the collector (it only writes).
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
    out
}

type Labels = Vec<(&'static str, String)>;

struct Exposition(Snapshot);

impl fmt::Debug for Exposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Exposition")
    }
}

/// A figure's name (after `shardis_` or `shardis_shard_`), help and type.
struct Figure<'a> {
    name: &'a str,
    help: &'a str,
    kind: MetricType,
}

impl Exposition {
    /// Writes `figure` for the server (the sum over shards, unless `total` is given) and for
    /// every shard; `rows` gives a shard's labelled values.
    fn both(
        &self,
        e: &mut DescriptorEncoder,
        figure: Figure<'_>,
        rows: impl Fn(&ShardFigures) -> Vec<(Labels, u64)>,
        total: Option<u64>,
    ) -> fmt::Result {
        let per_shard: Vec<Vec<(Labels, u64)>> = self.0.shards.iter().map(&rows).collect();
        let totals: Vec<(Labels, u64)> = match total {
            Some(v) => vec![(Vec::new(), v)],
            None => {
                let mut sums: BTreeMap<Labels, u64> = BTreeMap::new();
                for (labels, v) in per_shard.iter().flatten() {
                    let sum = sums.entry(labels.clone()).or_default();
                    *sum = sum.saturating_add(*v);
                }
                sums.into_iter().collect()
            }
        };
        let total_name = format!("shardis_{}", figure.name);
        write(e, &total_name, figure.help, figure.kind, &totals)?;
        let labelled: Vec<(Labels, u64)> = per_shard
            .into_iter()
            .enumerate()
            .flat_map(|(shard, rows)| {
                rows.into_iter().map(move |(mut labels, v)| {
                    labels.insert(0, ("shard", shard.to_string()));
                    (labels, v)
                })
            })
            .collect();
        let shard_name = format!("shardis_shard_{}", figure.name);
        let help = format!("{} (one core's)", figure.help);
        write(e, &shard_name, &help, figure.kind, &labelled)
    }

    /// An unlabelled figure of each shard.
    fn simple(
        &self,
        e: &mut DescriptorEncoder,
        figure: Figure<'_>,
        value: impl Fn(&ShardFigures) -> u64,
    ) -> fmt::Result {
        self.both(e, figure, |s| vec![(Vec::new(), value(s))], None)
    }

    fn round_trips(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        let name = "forward_round_trip_seconds";
        let help = "Round trip of batches of requests forwarded to another core: from the end of the event-loop pass that sent the batch until its replies are back";
        let buckets = |counts: &[u64]| -> Vec<(f64, u64)> {
            counts
                .iter()
                .enumerate()
                .map(|(k, &n)| {
                    let bound = if k < ROUND_TRIP_BUCKETS {
                        bucket_bound_us(k) as f64 / 1e6
                    } else {
                        f64::INFINITY
                    };
                    (bound, n)
                })
                .collect()
        };
        let mut all = [0u64; ROUND_TRIP_BUCKETS + 1];
        let mut sum_us = 0u64;
        for s in &self.0.shards {
            for (a, b) in all.iter_mut().zip(&s.forwarding.buckets) {
                *a = a.saturating_add(*b);
            }
            sum_us = sum_us.saturating_add(s.forwarding.sum_us);
        }
        let total_name = format!("shardis_{name}");
        let mut m = e.encode_descriptor(&total_name, help, None, MetricType::Histogram)?;
        m.encode_histogram::<NoLabelSet>(
            sum_us as f64 / 1e6,
            all.iter().sum(),
            &buckets(&all),
            None,
        )?;
        let shard_name = format!("shardis_shard_{name}");
        let help = format!("{help} (one core's)");
        let mut m = e.encode_descriptor(&shard_name, &help, None, MetricType::Histogram)?;
        for (shard, s) in self.0.shards.iter().enumerate() {
            let f = &s.forwarding;
            let labels: Labels = vec![("shard", shard.to_string())];
            m.encode_family(&labels)?.encode_histogram::<NoLabelSet>(
                f.sum_us as f64 / 1e6,
                f.buckets.iter().sum(),
                &buckets(&f.buckets),
                None,
            )?;
        }
        Ok(())
    }
}

/// Writes one metric family.
fn write(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    rows: &[(Labels, u64)],
) -> fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, kind)?;
    for (labels, v) in rows {
        let mut series = m.encode_family(labels)?;
        match kind {
            MetricType::Counter => series.encode_counter::<NoLabelSet, _, u64>(v, None)?,
            _ => series.encode_gauge(v)?,
        }
    }
    Ok(())
}

/// A command's name as INFO commandstats writes it (`get`, `client|list`).
fn command_name(id: usize) -> String {
    match all_facts().get(id) {
        Some(f) => match f.container {
            Some(c) => format!("{c}|{}", f.name),
            None => f.name.to_string(),
        },
        None => format!("#{id}"),
    }
}

const fn counter<'a>(name: &'a str, help: &'a str) -> Figure<'a> {
    Figure {
        name,
        help,
        kind: MetricType::Counter,
    }
}

const fn gauge<'a>(name: &'a str, help: &'a str) -> Figure<'a> {
    Figure {
        name,
        help,
        kind: MetricType::Gauge,
    }
}

impl Collector for Exposition {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let s = &self.0;
        let e = &mut e;
        server(
            e,
            gauge("uptime_seconds", "Seconds since the server started"),
            s.uptime_secs,
        )?;
        server(
            e,
            gauge("shards", "Shards (one per core)"),
            s.shards.len() as u64,
        )?;
        // prometheus-client adds `_total` to a counter's name.
        self.both(
            e,
            counter(
                "commands",
                "Commands received from clients, by command (rejected ones included)",
            ),
            |f| {
                f.calls
                    .iter()
                    .map(|&(id, n)| (vec![("cmd", command_name(id))], n))
                    .collect()
            },
            None,
        )?;
        self.simple(
            e,
            counter(
                "commands_processed",
                "Commands received from clients, unknown ones included",
            ),
            |f| f.stats.commands_processed,
        )?;
        self.simple(
            e,
            counter("keyspace_hits", "Key lookups that found the key"),
            |f| f.keyspace_hits,
        )?;
        self.simple(
            e,
            counter("keyspace_misses", "Key lookups that did not find the key"),
            |f| f.keyspace_misses,
        )?;
        self.both(
            e,
            gauge("keys", "Keys, by database"),
            |f| db_rows(f, |d| d.0),
            None,
        )?;
        self.both(
            e,
            gauge("expires", "Keys with a time to live, by database"),
            |f| db_rows(f, |d| d.1),
            None,
        )?;
        self.simple(
            e,
            counter(
                "expired_keys",
                "Keys removed because their time to live ran out",
            ),
            |f| f.expired_keys,
        )?;
        self.simple(
            e,
            counter("evicted_keys", "Keys evicted to stay under maxmemory"),
            |f| f.evicted_keys,
        )?;
        self.both(
            e,
            gauge("used_memory_bytes", "Bytes allocated (the total is INFO's used_memory; a shard's is what its core's heap holds)"),
            |f| vec![(Vec::new(), f.used_memory)],
            Some(s.used_memory),
        )?;
        self.both(
            e,
            gauge(
                "maxmemory_bytes",
                "The memory limit, 0 for none (a shard's is its current share of it)",
            ),
            |f| vec![(Vec::new(), f.maxmemory_share)],
            Some(s.maxmemory),
        )?;
        self.simple(e, gauge("connected_clients", "Client connections"), |f| {
            f.clients as u64
        })?;
        self.simple(
            e,
            gauge("blocked_clients", "Clients waiting in a blocking command"),
            |f| f.blocked_clients as u64,
        )?;
        self.simple(
            e,
            counter("connections_received", "Connections accepted"),
            |f| f.stats.connections_received,
        )?;
        self.simple(
            e,
            counter("rejected_connections", "Connections refused (maxclients)"),
            |f| f.stats.rejected_connections,
        )?;
        self.simple(
            e,
            counter("net_input_bytes", "Bytes received from clients"),
            |f| f.stats.net_input_bytes,
        )?;
        self.simple(
            e,
            counter("net_output_bytes", "Bytes sent to clients"),
            |f| f.stats.net_output_bytes,
        )?;
        self.simple(
            e,
            gauge(
                "rdb_changes_since_last_save",
                "Changes since the last snapshot",
            ),
            |f| f.dirty,
        )?;
        server(
            e,
            gauge(
                "rdb_bgsave_in_progress",
                "1 while a snapshot is being taken",
            ),
            u64::from(s.bgsave_in_progress),
        )?;
        server(
            e,
            gauge(
                "rdb_last_bgsave_ok",
                "1 if the last snapshot succeeded (or none was taken), 0 if it failed",
            ),
            u64::from(s.last_bgsave_ok),
        )?;
        server(
            e,
            gauge(
                "rdb_last_save_timestamp_seconds",
                "Unix time of the last successful snapshot (or of the start)",
            ),
            s.last_save_unix,
        )?;
        server(
            e,
            counter("rdb_saves", "Snapshots taken since the start"),
            s.saves,
        )?;
        self.simple(
            e,
            counter(
                "forwarded_requests",
                "Requests of this core's clients sent to another core's shard on the inline path",
            ),
            |f| f.forwarding.requests,
        )?;
        self.round_trips(e)
    }
}

/// A figure of the server as a whole (no per-shard series).
fn server(e: &mut DescriptorEncoder, f: Figure<'_>, v: u64) -> fmt::Result {
    let name = format!("shardis_{}", f.name);
    write(e, &name, f.help, f.kind, &[(Vec::new(), v)])
}

/// One row per database holding keys.
fn db_rows(f: &ShardFigures, pick: impl Fn(&(usize, usize)) -> usize) -> Vec<(Labels, u64)> {
    f.dbs
        .iter()
        .enumerate()
        .filter(|(_, d)| d.0 > 0)
        .map(|(db, d)| (vec![("db", db.to_string())], pick(d) as u64))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::counters::ForwardingFigures;

    fn shard(keys: usize, calls: Vec<(usize, u64)>) -> ShardFigures {
        ShardFigures {
            clients: 2,
            calls,
            keyspace_hits: 5,
            dbs: vec![(keys, 1), (0, 0)],
            used_memory: 100,
            forwarding: ForwardingFigures {
                requests: 3,
                buckets: std::array::from_fn(|k| u64::from(k == 2)),
                sum_us: 20,
            },
            ..ShardFigures::default()
        }
    }

    #[test]
    fn totals_and_shards_are_separate_families() {
        let get = all_facts()
            .iter()
            .position(|f| f.name == "get" && f.container.is_none())
            .expect("GET's facts");
        let text = encode(Snapshot {
            shards: vec![shard(3, vec![(get, 4)]), shard(4, vec![(get, 1)])],
            used_memory: 1000,
            maxmemory: 0,
            ..Snapshot::default()
        });
        for line in [
            "# TYPE shardis_commands_total counter",
            "shardis_commands_total{cmd=\"get\"} 5",
            "shardis_shard_commands_total{shard=\"0\",cmd=\"get\"} 4",
            "shardis_shard_commands_total{shard=\"1\",cmd=\"get\"} 1",
            "shardis_keys{db=\"0\"} 7",
            "shardis_shard_keys{shard=\"1\",db=\"0\"} 4",
            "shardis_keyspace_hits_total 10",
            "shardis_used_memory_bytes 1000",
            "shardis_shard_used_memory_bytes{shard=\"0\"} 100",
            "shardis_connected_clients 4",
            "shardis_forwarded_requests_total 6",
            "shardis_forward_round_trip_seconds_bucket{le=\"3.2e-05\"} 2",
            "shardis_forward_round_trip_seconds_bucket{le=\"+Inf\"} 2",
            "shardis_forward_round_trip_seconds_count 2",
            "shardis_shard_forward_round_trip_seconds_count{shard=\"1\"} 1",
            "shardis_shards 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        // Empty databases have no series.
        assert!(!text.contains("db=\"1\""));
    }
}
