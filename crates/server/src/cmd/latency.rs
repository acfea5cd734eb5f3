//! LATENCY: the latency monitor's events (`core::latency`) and the per-command latency
//! histograms (`core::calls`), merged over every core.

use bytes::Bytes;
use shardis_engine::{Command, ServerCmd, REGISTRY};
use shardis_resp::Reply;

use super::help;
use crate::conn::session::Session;
use crate::core::calls::Report;
use crate::core::latency::{self, Monitor, Series};

pub fn run_sync(which: ServerCmd) -> Option<Reply> {
    (which == ServerCmd::LatencyHelp).then(|| {
        help(
            "LATENCY",
            &[
                "DOCTOR",
                "    Return a human readable latency analysis report.",
                "GRAPH <event>",
                "    Return an ASCII latency graph for the <event> class.",
                "HISTORY <event>",
                "    Return time-latency samples for the <event> class.",
                "LATEST",
                "    Return the latest latency samples for all events.",
                "RESET [<event> ...]",
                "    Reset latency data of one or more <event> classes.",
                "    (default: reset all data for all event classes)",
                "HISTOGRAM [COMMAND ...]",
                "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
                "    If no commands are specified then all histograms are replied.",
            ],
        )
    })
}

pub async fn run_async(s: &mut Session, which: ServerCmd, args: &[Bytes]) -> Option<Reply> {
    Some(match which {
        ServerCmd::LatencyLatest => Reply::Array(
            monitor(s)
                .await
                .events
                .iter()
                .map(|(event, series)| {
                    let last = series.latest();
                    Reply::Array(vec![
                        Reply::Bulk(Bytes::from_static(event.as_bytes())),
                        Reply::Int(last.time as i64),
                        Reply::Int(last.latency as i64),
                        Reply::Int(series.max as i64),
                    ])
                })
                .collect(),
        ),
        ServerCmd::LatencyHistory => {
            let m = monitor(s).await;
            let samples = event_of(&m, &args[2])
                .map(|series| {
                    series
                        .samples
                        .iter()
                        .map(|x| {
                            Reply::Array(vec![
                                Reply::Int(x.time as i64),
                                Reply::Int(x.latency as i64),
                            ])
                        })
                        .collect()
                })
                .unwrap_or_default();
            Reply::Array(samples)
        }
        ServerCmd::LatencyGraph => {
            let m = monitor(s).await;
            match event_of(&m, &args[2]) {
                Some(series) => {
                    let name = String::from_utf8_lossy(&args[2]);
                    Reply::Verbatim(Bytes::from(graph(&name, series, wall_secs())))
                }
                None => Reply::error(format!(
                    "ERR No samples available for event '{}'",
                    String::from_utf8_lossy(&args[2])
                )),
            }
        }
        ServerCmd::LatencyReset => {
            let wanted: Option<Vec<String>> = (args.len() > 2).then(|| {
                args[2..]
                    .iter()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect()
            });
            let mut reset: Vec<&'static str> = s
                .core
                .broadcast(move |core| core.records.borrow_mut().latency.reset(wanted.as_deref()))
                .await
                .into_iter()
                .flatten()
                .collect();
            reset.sort_unstable();
            reset.dedup();
            Reply::Int(reset.len() as i64)
        }
        ServerCmd::LatencyDoctor => {
            let threshold = s.core.config.borrow().hot().latency_threshold_ms;
            Reply::Verbatim(Bytes::from(doctor(&monitor(s).await, threshold)))
        }
        ServerCmd::LatencyHistogram => {
            // Unknown names are skipped, as Redis does.
            let wanted: Option<Vec<&'static Command>> = (args.len() > 2)
                .then(|| args[2..].iter().filter_map(|a| find_command(a)).collect());
            let reports = s
                .core
                .broadcast(|core| Report::of(&core.records.borrow(), true))
                .await;
            let merged = Report::merge(reports.into_iter());
            Reply::Map(
                merged
                    .histograms(wanted.as_deref())
                    .into_iter()
                    .map(|h| {
                        let buckets = h
                            .buckets
                            .into_iter()
                            .map(|(us, n)| (Reply::Int(us as i64), Reply::Int(n as i64)))
                            .collect();
                        (
                            Reply::Bulk(Bytes::from_static(h.name.as_bytes())),
                            Reply::Map(vec![
                                (
                                    Reply::Bulk(Bytes::from_static(b"calls")),
                                    Reply::Int(h.calls as i64),
                                ),
                                (
                                    Reply::Bulk(Bytes::from_static(b"histogram_usec")),
                                    Reply::Map(buckets),
                                ),
                            ]),
                        )
                    })
                    .collect(),
            )
        }
        _ => return None,
    })
}

/// Every core's events, merged.
async fn monitor(s: &Session) -> Monitor {
    latency::merge(
        s.core
            .broadcast(|core| core.records.borrow().latency.clone())
            .await,
    )
}

fn event_of<'a>(m: &'a Monitor, name: &[u8]) -> Option<&'a Series> {
    m.events
        .iter()
        .find(|(event, _)| event.as_bytes() == name)
        .map(|(_, series)| series)
}

/// A command by name, `container|sub` for a subcommand (case-insensitive).
fn find_command(name: &[u8]) -> Option<&'static Command> {
    let name = String::from_utf8_lossy(name).to_ascii_lowercase();
    let (top, sub) = match name.split_once('|') {
        Some((t, s)) => (t, Some(s)),
        None => (name.as_str(), None),
    };
    let cmd = REGISTRY.commands().iter().find(|c| c.name == top)?;
    match sub {
        None => Some(cmd),
        Some(_) => cmd.subcommands.iter().find(|c| c.name == name),
    }
}

fn wall_secs() -> u64 {
    crate::core::wall_ms() / 1000
}

/// What a spike of each event class usually means.
fn advice(event: &str) -> &'static str {
    match event {
        "command" => "commands that are slow by nature (KEYS, SORT, SMEMBERS, LRANGE over large values…) hold their shard while they run; SLOWLOG GET names them.",
        "fast-command" => "commands that should take microseconds (GET, SET, INCR…) took that long: the machine was probably busy elsewhere (other processes, swapping, CPU limits of a container).",
        "expire-cycle" => "active expiry found many keys to delete at once: many keys expiring in the same instant, or large values expiring; spreading TTLs, or lazyfree-lazy-expire yes, helps.",
        "eviction-cycle" => "keeping under maxmemory took that long: a burst of writes against a full shard; more memory, or lazyfree-lazy-eviction yes, helps.",
        _ => "no advice for this event.",
    }
}

/// LATENCY DOCTOR: a report on every event, in plain words.
fn doctor(m: &Monitor, threshold_ms: u64) -> String {
    let mut out = String::new();
    if m.events.is_empty() {
        if threshold_ms == 0 {
            out.push_str("The latency monitor is off: latency-monitor-threshold is 0. Turn it on with CONFIG SET latency-monitor-threshold <milliseconds> (for instance 100, to record every event lasting 100 ms or more), then ask again.\n");
        } else {
            out.push_str(&format!("No event lasted {threshold_ms} ms or more (latency-monitor-threshold) since the server started or since the last LATENCY RESET.\n"));
        }
        return out;
    }
    out.push_str(&format!(
        "Latency report ({} event class{} recorded, threshold {threshold_ms} ms):\n\n",
        m.events.len(),
        if m.events.len() == 1 { "" } else { "es" }
    ));
    for (event, series) in &m.events {
        let n = series.samples.len().max(1) as u64;
        let sum: u64 = series.samples.iter().map(|x| x.latency).sum();
        let avg = sum / n;
        let deviation = series
            .samples
            .iter()
            .map(|x| x.latency.abs_diff(avg))
            .sum::<u64>()
            / n;
        let span = match (series.samples.first(), series.samples.last()) {
            (Some(a), Some(b)) => b.time - a.time,
            _ => 0,
        };
        out.push_str(&format!(
            "- {event}: {} spike{} kept, average {avg} ms (mean deviation {deviation} ms) over {span} s; worst ever {} ms.\n  {}\n",
            series.samples.len(),
            if series.samples.len() == 1 { "" } else { "s" },
            series.max,
            advice(event)
        ));
    }
    out
}

/// LATENCY GRAPH: the event's samples as columns of `#` scaled between the lowest and the
/// highest, each labelled below with its age.
fn graph(event: &str, series: &Series, now: u64) -> String {
    const ROWS: u64 = 8;
    const COLUMNS: usize = 80;
    let samples = &series.samples[series.samples.len().saturating_sub(COLUMNS)..];
    let high = samples.iter().map(|x| x.latency).max().unwrap_or(0);
    let low = samples.iter().map(|x| x.latency).min().unwrap_or(0);
    let mut out = format!(
        "{event} - high {high} ms, low {low} ms (all time high {} ms)\n{}\n",
        series.max,
        "-".repeat(COLUMNS)
    );
    let height = |latency: u64| {
        if high == low {
            ROWS
        } else {
            1 + (latency - low) * (ROWS - 1) / (high - low)
        }
    };
    for row in (1..=ROWS).rev() {
        let line: String = samples
            .iter()
            .map(|x| if height(x.latency) >= row { '#' } else { ' ' })
            .collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push('\n');
    // Ages, written downwards one character per line.
    let ages: Vec<Vec<u8>> = samples
        .iter()
        .map(|x| {
            let age = now.saturating_sub(x.time);
            let text = if age < 60 {
                format!("{age}s")
            } else if age < 3600 {
                format!("{}m", age / 60)
            } else if age < 86400 {
                format!("{}h", age / 3600)
            } else {
                format!("{}d", age / 86400)
            };
            text.into_bytes()
        })
        .collect();
    let depth = ages.iter().map(Vec::len).max().unwrap_or(0);
    for i in 0..depth {
        let line: String = ages
            .iter()
            .map(|a| a.get(i).map_or(' ', |&c| c as char))
            .collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::latency::Sample;

    #[test]
    fn commands_are_found_by_full_name() {
        assert_eq!(find_command(b"SET").map(|c| c.name.as_str()), Some("set"));
        assert_eq!(
            find_command(b"client|id").map(|c| c.name.as_str()),
            Some("client|id")
        );
        assert!(find_command(b"blabla").is_none());
        assert!(find_command(b"client|blabla").is_none());
    }

    #[test]
    fn graph_draws_a_column_per_sample() {
        let series = Series {
            samples: vec![
                Sample {
                    time: 100,
                    latency: 10,
                },
                Sample {
                    time: 130,
                    latency: 50,
                },
            ],
            max: 50,
        };
        let g = graph("command", &series, 190);
        assert!(g.starts_with("command - high 50 ms, low 10 ms (all time high 50 ms)\n"));
        // The highest column reaches the top row, the lowest only the bottom one.
        let rows: Vec<&str> = g.lines().skip(2).take(8).collect();
        assert_eq!(rows[0], " #");
        assert_eq!(rows[7], "##");
        // Ages (90 s and 60 s) written downwards under their columns.
        assert!(g.ends_with("\n11\nmm\n"), "{g}");
    }

    #[test]
    fn doctor_speaks_of_every_event() {
        let mut m = Monitor::default();
        assert!(doctor(&m, 0).contains("off"));
        assert!(doctor(&m, 100).contains("No event"));
        m.add_if_needed(1, "expire-cycle", std::time::Duration::from_millis(30));
        let report = doctor(&m, 1);
        assert!(report.contains("- expire-cycle: 1 spike kept"));
    }
}
