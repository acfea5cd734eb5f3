//! What a core records about the commands it runs, for INFO commandstats / errorstats /
//! latencystats, LATENCY HISTOGRAM, the slow log, the latency monitor and the metrics
//! endpoint's calls by command.
//!
//! One record per command holds every per-command figure, in a table sized once for every
//! command id, so a call touches one record and never grows anything.
//!
//! Each core keeps its own records of what ran on it: a command over one shard is recorded by
//! the core that ran it (exact execution time, as Redis measures `call()`), a command the
//! client's core carried out in a task (runtime commands, commands over several shards) by
//! that core. The commands that show them merge every core's records.

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use shardis_engine::command::{all_facts, Flags};
use shardis_engine::Command;
use shardis_resp::Reply;

use super::latency::Monitor;
use super::Core;

/// Redis's histogram range: 1 µs to 1 s, in nanoseconds, 2 significant figures.
const HISTOGRAM_MIN_NS: u64 = 1024;
const HISTOGRAM_MAX_NS: u64 = 1_000_000_000;

/// Distinct error codes kept per core; past it, new codes still count in
/// `total_error_replies` only (a script can make up any number of codes).
const MAX_ERROR_CODES: usize = 128;
/// An error code is at most this long (Redis looks for the space in the first 32 bytes).
const MAX_ERROR_CODE_LEN: usize = 32;

/// The slow log keeps at most this many arguments of a call, and of each this many bytes.
const SLOWLOG_MAX_ARGC: usize = 32;
const SLOWLOG_MAX_STRING: usize = 128;

/// Slow log ids: one sequence for the whole server, so ids are unique across cores and
/// order the entries of every core in time.
static SLOWLOG_IDS: AtomicU64 = AtomicU64::new(0);

/// The client id a script's own calls (`redis.call`) are recorded under: counted as calls, as
/// Redis counts them, and slow log entries kept on the core that ran them, with the address
/// Redis shows for its script client.
pub const SCRIPT: u64 = u64::MAX;

/// One command's counters.
#[derive(Default)]
pub struct CommandStat {
    /// Calls this core's connections sent, rejected ones included, for the metrics endpoint:
    /// counted on the client's core, and kept by CONFIG RESETSTAT (a Prometheus counter
    /// never goes back).
    pub received: u64,
    pub calls: u64,
    pub usec: u64,
    pub rejected: u64,
    pub failed: u64,
    /// Execution times in nanoseconds (while `latency-tracking` is on).
    pub histogram: Option<Box<Histogram<u64>>>,
}

/// One slow log entry.
#[derive(Clone)]
pub struct SlowEntry {
    pub id: u64,
    /// Unix time, seconds.
    pub time: u64,
    pub micros: u64,
    pub argv: Vec<Bytes>,
    pub addr: String,
    pub name: String,
}

/// Everything a core records.
pub struct Records {
    /// Indexed by `Command::id`: one record for every command there is.
    commands: Box<[CommandStat]>,
    errors: BTreeMap<String, u64>,
    pub total_errors: u64,
    /// Newest first.
    pub slowlog: VecDeque<SlowEntry>,
    pub latency: Monitor,
}

impl Default for Records {
    fn default() -> Records {
        Records {
            commands: (0..all_facts().len())
                .map(|_| CommandStat::default())
                .collect(),
            errors: BTreeMap::new(),
            total_errors: 0,
            slowlog: VecDeque::new(),
            latency: Monitor::default(),
        }
    }
}

impl Records {
    /// The record of `cmd` (every command id has one; None only for an id from elsewhere).
    #[inline]
    fn command(&mut self, cmd: &Command) -> Option<&mut CommandStat> {
        self.commands.get_mut(cmd.id)
    }

    /// Counts a call of `cmd` sent by one of this core's connections.
    #[inline]
    pub fn received(&mut self, cmd: &Command) {
        if let Some(stat) = self.command(cmd) {
            stat.received += 1;
        }
    }

    /// (command id, calls received) of every command this core's connections sent.
    pub fn received_calls(&self) -> Vec<(usize, u64)> {
        self.commands
            .iter()
            .enumerate()
            .filter(|(_, c)| c.received > 0)
            .map(|(id, c)| (id, c.received))
            .collect()
    }

    /// The counters of command `id`, if it ran here.
    pub fn stat(&self, id: usize) -> Option<&CommandStat> {
        self.commands.get(id)
    }

    /// Counts an error reply under its code (the text's first word).
    fn count_error(&mut self, text: &str) {
        self.total_errors += 1;
        let code = error_code(text);
        if let Some(n) = self.errors.get_mut(code) {
            *n += 1;
        } else if self.errors.len() < MAX_ERROR_CODES {
            self.errors.insert(code.to_string(), 1);
        }
    }

    /// CONFIG RESETSTAT: command and error statistics (not the slow log or latency events,
    /// as in Redis).
    pub fn reset_stats(&mut self) {
        for stat in self.commands.iter_mut() {
            *stat = CommandStat {
                received: stat.received,
                ..CommandStat::default()
            };
        }
        self.errors.clear();
        self.total_errors = 0;
    }

    /// Adds a slow log entry, keeping at most `max_len`.
    pub fn push_slow(&mut self, entry: SlowEntry, max_len: usize) {
        self.slowlog.push_front(entry);
        self.slowlog.truncate(max_len);
    }
}

/// One command's figures in a [`Report`].
#[derive(Default)]
struct Totals {
    calls: u64,
    usec: u64,
    rejected: u64,
    failed: u64,
    histogram: Option<Histogram<u64>>,
}

impl Totals {
    fn add(&mut self, other: Totals) {
        self.calls += other.calls;
        self.usec += other.usec;
        self.rejected += other.rejected;
        self.failed += other.failed;
        self.histogram = match (self.histogram.take(), other.histogram) {
            (Some(mut a), Some(b)) => {
                // Same bounds on every core: adding cannot fail.
                let _ = a.add(&b);
                Some(a)
            }
            (a, b) => a.or(b),
        };
    }

    /// The histogram, if it holds anything.
    fn histogram(&self) -> Option<&Histogram<u64>> {
        self.histogram.as_ref().filter(|h| !h.is_empty())
    }
}

/// One command's latency histogram, for LATENCY HISTOGRAM.
pub struct CommandHistogram {
    pub name: &'static str,
    pub calls: u64,
    /// (µs upper bound, cumulative count), bounds doubling from 1 µs; only where the count
    /// grows.
    pub buckets: Vec<(u64, u64)>,
}

/// One core's records as INFO shows them, sent to the core answering INFO.
#[derive(Default)]
pub struct Report {
    /// By command id.
    commands: BTreeMap<usize, Totals>,
    errors: BTreeMap<String, u64>,
    pub total_errors: u64,
}

impl Report {
    /// The records of one core; histograms only when `histograms`.
    pub fn of(records: &Records, histograms: bool) -> Report {
        Report {
            commands: records
                .commands
                .iter()
                .enumerate()
                .filter(|(_, c)| c.calls + c.rejected + c.failed > 0 || c.histogram.is_some())
                .map(|(id, c)| {
                    let totals = Totals {
                        calls: c.calls,
                        usec: c.usec,
                        rejected: c.rejected,
                        failed: c.failed,
                        histogram: c.histogram.as_deref().filter(|_| histograms).cloned(),
                    };
                    (id, totals)
                })
                .collect(),
            errors: records.errors.clone(),
            total_errors: records.total_errors,
        }
    }

    /// Every core's reports summed.
    pub fn merge(reports: impl Iterator<Item = Report>) -> Report {
        let mut out = Report::default();
        for r in reports {
            out.total_errors += r.total_errors;
            for (code, n) in r.errors {
                *out.errors.entry(code).or_default() += n;
            }
            for (id, totals) in r.commands {
                out.commands.entry(id).or_default().add(totals);
            }
        }
        out
    }

    /// The commands that have records, with their full names (`client|id`), by name.
    fn named(&self) -> Vec<(&'static str, usize, &Totals)> {
        let mut out: Vec<_> = self
            .commands
            .iter()
            .filter_map(|(&id, t)| command_name(id).map(|n| (n, id, t)))
            .collect();
        out.sort_by_key(|(n, ..)| *n);
        out
    }

    /// INFO commandstats.
    pub fn commandstats(&self) -> String {
        let mut out = String::new();
        for (name, _, t) in self.named() {
            if t.calls + t.rejected + t.failed == 0 {
                continue;
            }
            let per_call = if t.calls > 0 {
                t.usec as f64 / t.calls as f64
            } else {
                0.0
            };
            out.push_str(&format!(
                "cmdstat_{name}:calls={},usec={},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}\r\n",
                t.calls, t.usec, t.rejected, t.failed
            ));
        }
        out
    }

    /// INFO errorstats.
    pub fn errorstats(&self) -> String {
        self.errors
            .iter()
            .map(|(code, n)| format!("errorstat_{code}:count={n}\r\n"))
            .collect()
    }

    /// INFO latencystats, at the percentiles given (`latency-tracking-info-percentiles`).
    pub fn latencystats(&self, percentiles: &str) -> String {
        let wanted: Vec<f64> = percentiles
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        let mut out = String::new();
        for (name, _, t) in self.named() {
            let Some(h) = t.histogram() else {
                continue;
            };
            let values: Vec<String> = wanted
                .iter()
                .map(|&p| {
                    format!(
                        "p{}={:.3}",
                        crate::config::format_percentile(p),
                        h.value_at_percentile(p) as f64 / 1000.0
                    )
                })
                .collect();
            out.push_str(&format!(
                "latency_percentiles_usec_{name}:{}\r\n",
                values.join(",")
            ));
        }
        out
    }

    /// The latency histograms of the commands named by `wanted` (all when None; a container
    /// names its subcommands too), for LATENCY HISTOGRAM.
    pub fn histograms(&self, wanted: Option<&[&'static Command]>) -> Vec<CommandHistogram> {
        let mut out = Vec::new();
        for (name, id, t) in self.named() {
            let Some(h) = t.histogram() else {
                continue;
            };
            if let Some(wanted) = wanted {
                let hit = wanted
                    .iter()
                    .any(|c| c.id == id || c.subcommands.iter().any(|s| s.id == id));
                if !hit {
                    continue;
                }
            }
            let mut buckets = Vec::new();
            let mut cumulative = 0;
            for v in h.iter_log(HISTOGRAM_MIN_NS, 2.0) {
                let before = cumulative;
                cumulative += v.count_since_last_iteration();
                if cumulative > before {
                    buckets.push((v.value_iterated_to() / 1000, cumulative));
                }
            }
            out.push(CommandHistogram {
                name,
                calls: h.len(),
                buckets,
            });
        }
        out
    }
}

/// A command's full name by id, among the commands that exist here.
fn command_name(id: usize) -> Option<&'static str> {
    shardis_engine::REGISTRY
        .commands()
        .iter()
        .flat_map(|c| std::iter::once(c).chain(c.subcommands.iter()))
        .find(|c| c.id == id)
        .map(|c| c.name.as_str())
}

/// An error reply's code: its first word, or `ERR` when it has none within reach.
pub fn error_code(text: &str) -> &str {
    let reach = &text.as_bytes()[..text.len().min(MAX_ERROR_CODE_LEN)];
    match reach.iter().position(|&b| b == b' ') {
        Some(end) if end > 0 => &text[..end],
        _ => "ERR",
    }
}

/// Whether a reply means the call failed: an error, or (EXEC) an error among its replies.
fn failed(reply: &Reply) -> bool {
    match reply {
        Reply::Error(_) => true,
        Reply::Array(items) => items.iter().any(Reply::is_error),
        _ => false,
    }
}

/// The arguments with secrets (passwords) shown as `(redacted)`, as the slow log and MONITOR
/// show them.
pub fn redacted<'a>(cmd: &Command, args: &'a [Bytes]) -> Cow<'a, [Bytes]> {
    let Some(redact) = cmd.redact else {
        return Cow::Borrowed(args);
    };
    let mut hidden = Vec::new();
    redact(args, &mut hidden);
    if hidden.is_empty() {
        return Cow::Borrowed(args);
    }
    let mut out = args.to_vec();
    for i in hidden {
        if let Some(a) = out.get_mut(i) {
            *a = Bytes::from_static(b"(redacted)");
        }
    }
    Cow::Owned(out)
}

/// The arguments as the slow log keeps them: at most 32 (the last saying how many more
/// there were), each at most 128 bytes (saying how many more bytes there were), secrets
/// redacted.
pub fn slowlog_argv(cmd: &Command, args: &[Bytes]) -> Vec<Bytes> {
    let args = redacted(cmd, args);
    let kept = if args.len() > SLOWLOG_MAX_ARGC {
        SLOWLOG_MAX_ARGC - 1
    } else {
        args.len()
    };
    let mut out: Vec<Bytes> = args[..kept]
        .iter()
        .map(|a| {
            if a.len() > SLOWLOG_MAX_STRING {
                let mut s = a[..SLOWLOG_MAX_STRING].to_vec();
                s.extend_from_slice(
                    format!("... ({} more bytes)", a.len() - SLOWLOG_MAX_STRING).as_bytes(),
                );
                Bytes::from(s)
            } else {
                Bytes::copy_from_slice(a)
            }
        })
        .collect();
    if kept < args.len() {
        out.push(Bytes::from(format!(
            "... ({} more arguments)",
            args.len() - kept
        )));
    }
    out
}

/// The core a client belongs to (client ids interleave over the cores, see
/// `Core::next_client_id`).
fn home_of(client: u64, shards: usize) -> usize {
    (client.saturating_sub(1) % shards.max(1) as u64) as usize
}

impl Core {
    /// Records a call of `cmd` by client `client` (0: none, such as a part of a command over
    /// several shards, recorded as a whole by its client's core) that took `took` and
    /// answered `reply`.
    pub fn record_call(
        self: &Rc<Self>,
        cmd: &'static Command,
        args: &[Bytes],
        client: u64,
        took: Duration,
        reply: &Reply,
    ) {
        self.record_call_counting(cmd, args, client, took, reply, true);
    }

    /// [`Core::record_call`], counting an error reply in the error statistics only with
    /// `count_error` (a script's error reply made of a failed command's, counted already).
    pub fn record_call_counting(
        self: &Rc<Self>,
        cmd: &'static Command,
        args: &[Bytes],
        client: u64,
        took: Duration,
        reply: &Reply,
        count_error: bool,
    ) {
        if client == 0 {
            return;
        }
        let hot = self.config.borrow().hot();
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let micros = nanos / 1000;
        let mut records = self.records.borrow_mut();
        if let Some(stat) = records.command(cmd) {
            stat.calls += 1;
            stat.usec += micros;
            if failed(reply) {
                stat.failed += 1;
            }
            if hot.latency_tracking {
                if stat.histogram.is_none() {
                    stat.histogram =
                        Histogram::new_with_bounds(HISTOGRAM_MIN_NS, HISTOGRAM_MAX_NS, 2)
                            .ok()
                            .map(Box::new);
                }
                if let Some(h) = stat.histogram.as_deref_mut() {
                    h.saturating_record(nanos.clamp(HISTOGRAM_MIN_NS, HISTOGRAM_MAX_NS));
                }
            }
        }
        match reply {
            Reply::Error(text) if count_error => records.count_error(text),
            _ => {}
        }
        let event = if cmd.flags.has(Flags::FAST) {
            "fast-command"
        } else {
            "command"
        };
        records
            .latency
            .add_if_needed(hot.latency_threshold_ms, event, took);
        drop(records);
        let slow = hot.slowlog_slower_than >= 0
            && hot.slowlog_max_len > 0
            && micros >= hot.slowlog_slower_than as u64
            && !cmd.flags.has(Flags::SKIP_SLOWLOG);
        if slow {
            self.log_slow(cmd, args, client, micros, hot.slowlog_max_len);
        }
    }

    /// Records a call refused before it ran (arity, ACL, OOM, BUSY…): `cmd` when known.
    pub fn record_rejected(&self, cmd: Option<&Command>, reply: &Reply) {
        let mut records = self.records.borrow_mut();
        if let Some(stat) = cmd.and_then(|cmd| records.command(cmd)) {
            stat.rejected += 1;
        }
        if let Reply::Error(text) = reply {
            records.count_error(text);
        }
    }

    /// Adds a slow log entry on the client's core, which knows its address and name.
    fn log_slow(
        self: &Rc<Self>,
        cmd: &Command,
        args: &[Bytes],
        client: u64,
        micros: u64,
        max: usize,
    ) {
        let entry = SlowEntry {
            id: SLOWLOG_IDS.fetch_add(1, Ordering::Relaxed),
            time: super::wall_ms() / 1000,
            micros,
            argv: slowlog_argv(cmd, args),
            addr: String::new(),
            name: String::new(),
        };
        if client == SCRIPT {
            let mut entry = entry;
            entry.addr = "?:0".into();
            self.records.borrow_mut().push_slow(entry, max);
            return;
        }
        let home = home_of(client, self.shards);
        self.post(
            home,
            Box::new(move |core| {
                let mut entry = entry;
                if let Some(c) = core.clients.borrow().get(&client) {
                    if let Ok(c) = c.try_borrow() {
                        entry.addr = c.addr.clone();
                        entry.name = c
                            .name
                            .as_deref()
                            .map(|n| String::from_utf8_lossy(n).into_owned())
                            .unwrap_or_default();
                    }
                }
                core.records.borrow_mut().push_slow(entry, max);
            }),
        );
    }

    /// Records a latency sample of a periodic task (`expire-cycle`, `eviction-cycle`).
    pub fn latency_sample(&self, event: &'static str, took: Duration) {
        let threshold = self.config.borrow().hot().latency_threshold_ms;
        self.records
            .borrow_mut()
            .latency
            .add_if_needed(threshold, event, took);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&[u8]]) -> Vec<Bytes> {
        words.iter().map(|w| Bytes::copy_from_slice(w)).collect()
    }

    #[test]
    fn error_codes_are_the_first_word() {
        assert_eq!(error_code("ERR unknown command"), "ERR");
        assert_eq!(error_code("WRONGTYPE Operation against a key"), "WRONGTYPE");
        assert_eq!(error_code("NOSPACE"), "ERR");
        assert_eq!(error_code(&format!("{} x", "A".repeat(40))), "ERR");
    }

    #[test]
    fn slowlog_trims_arguments_as_redis() {
        let sadd = shardis_engine::lookup(&args(&[b"sadd", b"s", b"m"])).unwrap();
        let many: Vec<Bytes> = (0..35).map(|i| Bytes::from(i.to_string())).collect();
        let kept = slowlog_argv(sadd, &many);
        assert_eq!(kept.len(), 32);
        assert_eq!(&kept[31][..], b"... (4 more arguments)");
        let long = args(&[b"sadd", b"s", &[b'A'; 129]]);
        let kept = slowlog_argv(sadd, &long);
        assert_eq!(kept[2].len(), 128 + "... (1 more bytes)".len());
        assert!(kept[2].ends_with(b"... (1 more bytes)"));
    }

    #[test]
    fn slowlog_redacts_secrets() {
        let call = args(&[b"config", b"set", b"requirepass", b"secret", b"hz", b"10"]);
        let cmd = shardis_engine::lookup(&call).unwrap();
        let kept = slowlog_argv(cmd, &call);
        assert_eq!(&kept[3][..], b"(redacted)");
        assert_eq!(&kept[5][..], b"10");
        let call = args(&[b"acl", b"setuser", b"u", b">pw"]);
        let cmd = shardis_engine::lookup(&call).unwrap();
        let kept = slowlog_argv(cmd, &call);
        assert_eq!(&kept[2][..], b"(redacted)");
        assert_eq!(&kept[3][..], b"(redacted)");
    }

    #[test]
    fn auth_and_hello_passwords_are_hidden() {
        let call = args(&[b"auth", b"user", b"pw"]);
        let cmd = shardis_engine::lookup(&call).unwrap();
        assert_eq!(
            redacted(cmd, &call)
                .iter()
                .map(|a| &a[..])
                .collect::<Vec<_>>(),
            [&b"auth"[..], b"(redacted)", b"(redacted)"]
        );
        let call = args(&[b"hello", b"2", b"SETNAME", b"n", b"AUTH", b"u", b"p"]);
        let cmd = shardis_engine::lookup(&call).unwrap();
        let shown = redacted(cmd, &call);
        assert_eq!(&shown[3][..], b"n");
        assert_eq!(&shown[5][..], b"(redacted)");
        assert_eq!(&shown[6][..], b"(redacted)");
        let call = args(&[b"get", b"k"]);
        let cmd = shardis_engine::lookup(&call).unwrap();
        assert!(matches!(redacted(cmd, &call), Cow::Borrowed(_)));
    }

    #[test]
    fn calls_received_survive_resetstat() {
        let get = shardis_engine::lookup(&args(&[b"get", b"k"])).unwrap();
        let set = shardis_engine::lookup(&args(&[b"set", b"k", b"v"])).unwrap();
        let mut r = Records::default();
        r.received(get);
        r.received(get);
        r.received(set);
        if let Some(stat) = r.command(get) {
            stat.calls += 1;
        }
        let mut expected = vec![(get.id, 2), (set.id, 1)];
        expected.sort();
        assert_eq!(r.received_calls(), expected);
        r.reset_stats();
        assert_eq!(r.stat(get.id).map(|s| s.calls), Some(0));
        assert_eq!(r.received_calls(), expected);
    }

    #[test]
    fn error_codes_are_bounded() {
        let mut r = Records::default();
        for i in 0..200 {
            r.count_error(&format!("E{i} x"));
        }
        assert_eq!(r.errors.len(), MAX_ERROR_CODES);
        assert_eq!(r.total_errors, 200);
    }

    #[test]
    fn clients_belong_to_the_core_that_numbered_them() {
        // Core i hands out i+1, i+1+N…
        assert_eq!(home_of(1, 2), 0);
        assert_eq!(home_of(2, 2), 1);
        assert_eq!(home_of(3, 2), 0);
    }
}
