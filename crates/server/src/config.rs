//! Server configuration: the parameters that exist, parsed from a redis.conf-style file and
//! `--name value` overrides, read and changed by CONFIG GET / CONFIG SET.
//!
//! Every core holds its own copy (no shared state); CONFIG SET validates once and then
//! applies the new value on every core.

use std::collections::BTreeMap;

use shardis_engine::evict::{Policy, Tracking};
use shardis_engine::EngineConfig;

mod directives;
pub mod rewrite;

/// How a parameter's value is checked and normalised.
#[derive(Clone, Copy)]
enum Kind {
    Bool,
    Int {
        min: i64,
        max: i64,
    },
    /// A byte count with Redis's unit suffixes (k, kb, m, mb, g, gb), at least `min`.
    Memory {
        min: u64,
    },
    /// An existing directory (`dir`).
    Dir,
    /// `client-output-buffer-limit`: `<class> <hard> <soft> <seconds>` groups.
    OutputLimits,
    /// `notify-keyspace-events`: class letters.
    NotifyFlags,
    Enum(&'static [&'static str]),
    Str,
    /// The `save` parameter: empty, or pairs of seconds and changes.
    SavePoints,
    /// A file name in `dir`, not a path (`dbfilename`).
    FileName,
    /// `tls-protocols`: TLSv1.2 and/or TLSv1.3.
    TlsProtocols,
    /// `tls-ciphersuites`: TLS 1.3 suite names.
    TlsCipherSuites,
    /// `tls-ciphers`: an OpenSSL cipher string over the TLS 1.2 suites rustls has.
    TlsCiphers,
    /// A setting of a feature that is not built: only the value that leaves it off (`off`) is
    /// accepted, anything else is refused with `why`.
    NotBuilt {
        off: &'static str,
        why: &'static str,
    },
    /// Checked and normalised by its own function (value, value in force).
    Custom(fn(&str, &str) -> Result<String, String>),
}

struct Param {
    name: &'static str,
    /// Old names Redis still accepts (`hash-max-ziplist-entries`…).
    aliases: &'static [&'static str],
    kind: Kind,
    default: &'static str,
    /// Settable at run time by CONFIG SET.
    mutable: bool,
    /// Left out of CONFIG GET's patterns: only its exact name shows it (Redis's debugging
    /// knobs).
    hidden: bool,
    support: Support,
}

/// How far Shardis supports a parameter (docs/operations.md explains the rule).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Support {
    /// Works as in Redis.
    Built,
    /// Part of a feature Shardis does not have (named): a configuration file may set it to
    /// Redis's default, which changes nothing, so that a stock redis.conf loads; any other
    /// value is refused, and CONFIG GET / CONFIG SET do not know it.
    Absent(&'static str),
    /// Means nothing here (the reason): any valid value is taken, and a value other than the
    /// default is logged at start-up as having no effect, as Redis does for allocator
    /// settings when built without jemalloc.
    NoEffect(&'static str),
}

const fn p(name: &'static str, kind: Kind, default: &'static str) -> Param {
    Param {
        name,
        aliases: &[],
        kind,
        default,
        mutable: true,
        hidden: false,
        support: Support::Built,
    }
}

const fn fixed(name: &'static str, kind: Kind, default: &'static str) -> Param {
    Param {
        name,
        aliases: &[],
        kind,
        default,
        mutable: false,
        hidden: false,
        support: Support::Built,
    }
}

/// A Shardis parameter (Redis has none like it) fixed at start-up: hidden from CONFIG GET's
/// patterns, so a tool that sets back every value `CONFIG GET *` lists (Redis's own CONFIG
/// sanity test does) meets only Redis's parameters; CONFIG GET of its name answers.
const fn shardis_fixed(name: &'static str, kind: Kind, default: &'static str) -> Param {
    Param {
        hidden: true,
        ..fixed(name, kind, default)
    }
}

const fn alias(
    name: &'static str,
    aliases: &'static [&'static str],
    kind: Kind,
    default: &'static str,
) -> Param {
    Param {
        name,
        aliases,
        kind,
        default,
        mutable: true,
        hidden: false,
        support: Support::Built,
    }
}

const INT: Kind = Kind::Int {
    min: 0,
    max: i64::MAX,
};

/// Redis's `int` parameters: at most `INT_MAX`.
const fn c_int(min: i64) -> Kind {
    Kind::Int {
        min,
        max: i32::MAX as i64,
    }
}

const NO: &str = "no";

/// The parameters Shardis has, with Redis 7.0's defaults.
static PARAMS: &[Param] = &[
    // Both re-bind every core's listeners when CONFIG SET changes them (cmd/config_set.rs).
    p("bind", Kind::Custom(bind), "127.0.0.1 -::1"),
    p("port", Kind::Int { min: 0, max: 65535 }, "6379"),
    shardis_fixed("shards", Kind::Int { min: 0, max: 1024 }, "0"),
    fixed("databases", Kind::Int { min: 1, max: 65536 }, "16"),
    fixed("daemonize", Kind::Bool, "no"),
    fixed("logfile", Kind::Str, ""),
    p("dir", Kind::Dir, "."),
    fixed("tcp-backlog", INT, "511"),
    p(
        "loglevel",
        Kind::Enum(&["debug", "verbose", "notice", "warning"]),
        "notice",
    ),
    p(
        "maxclients",
        Kind::Int {
            min: 1,
            max: i64::MAX,
        },
        "10000",
    ),
    p("timeout", INT, "0"),
    p("tcp-keepalive", INT, "300"),
    p("protected-mode", Kind::Bool, "yes"),
    p("hz", Kind::Custom(hz), "10"),
    p("notify-keyspace-events", Kind::NotifyFlags, ""),
    p(
        "proto-max-bulk-len",
        Kind::Memory { min: 1 << 20 },
        "536870912",
    ),
    p(
        "client-query-buffer-limit",
        Kind::Memory { min: 1 << 20 },
        "1073741824",
    ),
    p(
        "client-output-buffer-limit",
        Kind::OutputLimits,
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
    ),
    // RESTORE and loading always validate payloads in full (as Redis's "yes"); the setting is
    // accepted for compatibility.
    p(
        "sanitize-dump-payload",
        Kind::Enum(&["no", "yes", "clients"]),
        "no",
    ),
    // Snapshots. Shardis's default is no save rule (Redis's is "3600 1 300 100 60 10000"):
    // a server started without a configuration writes nothing where it runs.
    p("save", Kind::SavePoints, ""),
    p("dbfilename", Kind::FileName, "dump.rdb"),
    p("rdbcompression", Kind::Bool, "yes"),
    p("stop-writes-on-bgsave-error", Kind::Bool, "yes"),
    fixed(
        "enable-debug-command",
        Kind::Enum(&["no", "yes", "local"]),
        "no",
    ),
    // The append-only log, per shard (persist/aof).
    p("appendonly", Kind::Bool, "no"),
    fixed("appendfilename", Kind::FileName, "appendonly.aof"),
    fixed("appenddirname", Kind::FileName, "appendonlydir"),
    p(
        "appendfsync",
        Kind::Enum(&["everysec", "always", "no"]),
        "everysec",
    ),
    p("aof-load-truncated", Kind::Bool, "yes"),
    // Bytes a loader reads between two passes of its core's event loop (persist/loading);
    // hidden from CONFIG GET's patterns, as in Redis.
    Param {
        hidden: true,
        ..p(
            "loading-process-events-interval-bytes",
            Kind::Int {
                min: 1024,
                max: i32::MAX as i64,
            },
            "2097152",
        )
    },
    // Every shard's base is an RDB file (Redis's default); a base of commands is not built.
    p(
        "aof-use-rdb-preamble",
        Kind::NotBuilt {
            off: "yes",
            why: "a base written as commands (aof-use-rdb-preamble no) is not built: each shard's base is an RDB file",
        },
        "yes",
    ),
    p(
        "auto-aof-rewrite-percentage",
        Kind::Int {
            min: 0,
            max: i32::MAX as i64,
        },
        "100",
    ),
    p("auto-aof-rewrite-min-size", Kind::Memory { min: 0 }, "67108864"),
    alias(
        "hash-max-listpack-entries",
        &["hash-max-ziplist-entries"],
        INT,
        "512",
    ),
    alias(
        "hash-max-listpack-value",
        &["hash-max-ziplist-value"],
        INT,
        "64",
    ),
    p("set-max-intset-entries", INT, "512"),
    alias(
        "zset-max-listpack-entries",
        &["zset-max-ziplist-entries"],
        INT,
        "128",
    ),
    alias(
        "zset-max-listpack-value",
        &["zset-max-ziplist-value"],
        INT,
        "64",
    ),
    alias(
        "list-max-listpack-size",
        &["list-max-ziplist-size"],
        Kind::Int {
            min: i32::MIN as i64,
            max: i32::MAX as i64,
        },
        "-2",
    ),
    p(
        "list-compress-depth",
        Kind::Int {
            min: 0,
            max: i32::MAX as i64,
        },
        "0",
    ),
    p("hll-sparse-max-bytes", Kind::Memory { min: 0 }, "3000"),
    p("stream-node-max-bytes", Kind::Memory { min: 0 }, "4096"),
    p("stream-node-max-entries", INT, "100"),
    p("spin-before-park-us", INT, "0"),
    // Scripts running longer get other clients -BUSY and can be killed (crates/server/src/script).
    alias("busy-reply-threshold", &["lua-time-limit"], INT, "5000"),
    p("tracking-table-max-keys", INT, "1000000"),
    p("requirepass", Kind::Str, ""),
    fixed("aclfile", Kind::Str, ""),
    p("acllog-max-len", INT, "128"),
    // TLS (see `tls.rs`). A change to any of the file, protocol, cipher, client-auth or
    // session settings rebuilds the TLS settings on every core (CONFIG SET fails, keeping the
    // old ones, if they do not load).
    fixed("tls-port", Kind::Int { min: 0, max: 65535 }, "0"),
    // The Prometheus endpoint (`metrics`): off at 0; bound at start-up only, so not settable
    // at run time. An empty `metrics-bind` means the addresses of `bind`.
    shardis_fixed("metrics-port", Kind::Int { min: 0, max: 65535 }, "0"),
    shardis_fixed("metrics-bind", Kind::Str, ""),
    // Cluster mode across processes (`cluster::bus`): each shard a node on Redis's cluster
    // bus, starting alone, instead of the one-process cluster.
    shardis_fixed("cluster-bus", Kind::Bool, "no"),
    // On the bus: `no` makes the whole process one node on `port` (its shards behind it,
    // forwarding as outside cluster mode), so that a process of several shards can be a
    // replica (replication copies a whole process).
    shardis_fixed("cluster-node-per-shard", Kind::Bool, "yes"),
    p("tls-cert-file", Kind::Str, ""),
    p("tls-key-file", Kind::Str, ""),
    p("tls-key-file-pass", Kind::Str, ""),
    p("tls-ca-cert-file", Kind::Str, ""),
    p("tls-ca-cert-dir", Kind::Str, ""),
    p(
        "tls-auth-clients",
        Kind::Enum(&["no", "yes", "optional"]),
        "yes",
    ),
    p("tls-protocols", Kind::TlsProtocols, ""),
    p("tls-ciphersuites", Kind::TlsCipherSuites, ""),
    p("tls-ciphers", Kind::TlsCiphers, ""),
    p("tls-prefer-server-ciphers", Kind::Bool, "no"),
    p("tls-session-caching", Kind::Bool, "yes"),
    p(
        "tls-session-cache-size",
        Kind::Int {
            min: 0,
            max: i32::MAX as i64,
        },
        "20480",
    ),
    p(
        "tls-session-cache-timeout",
        Kind::Int {
            min: 0,
            max: i32::MAX as i64,
        },
        "300",
    ),
    // Only ECDHE key exchange exists in rustls: DH parameters are accepted (the file must
    // exist) and unused.
    p("tls-dh-params-file", Kind::Str, ""),
    p("tls-replication", Kind::Bool, "no"),
    p(
        "tls-cluster",
        Kind::NotBuilt {
            off: "no",
            why: "TLS for the cluster bus needs cluster mode, which is not built yet",
        },
        "no",
    ),
    // The replica's certificate on a TLS replication link (tls_link.rs); the server's when
    // unset. An encrypted key is refused as for tls-key-file.
    p("tls-client-cert-file", Kind::Str, ""),
    p("tls-client-key-file", Kind::Str, ""),
    p("tls-client-key-file-pass", Kind::Str, ""),
    p(
        "acl-pubsub-default",
        Kind::Enum(&["allchannels", "resetchannels"]),
        "resetchannels",
    ),
    p("maxmemory", Kind::Memory { min: 0 }, "0"),
    p(
        "maxmemory-policy",
        Kind::Enum(&[
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
            "volatile-ttl",
            "allkeys-lru",
            "allkeys-lfu",
            "allkeys-random",
            "noeviction",
        ]),
        "noeviction",
    ),
    p("maxmemory-samples", c_int(1), "5"),
    // Client eviction (core/client_eviction.rs).
    p("maxmemory-clients", Kind::Custom(memory_or_percent), "0"),
    p(
        "maxmemory-eviction-tenacity",
        Kind::Int { min: 0, max: 100 },
        "10",
    ),
    p("lfu-log-factor", c_int(0), "10"),
    p("lfu-decay-time", c_int(0), "1"),
    p("lazyfree-lazy-eviction", Kind::Bool, NO),
    p("lazyfree-lazy-expire", Kind::Bool, NO),
    p("lazyfree-lazy-user-del", Kind::Bool, NO),
    p("lazyfree-lazy-user-flush", Kind::Bool, NO),
    // Introspection (core/calls.rs).
    p(
        "slowlog-log-slower-than",
        Kind::Int {
            min: -1,
            max: i64::MAX,
        },
        "10000",
    ),
    p("slowlog-max-len", c_int(0), "128"),
    p("latency-monitor-threshold", INT, "0"),
    p("latency-tracking", Kind::Bool, "yes"),
    p(
        "latency-tracking-info-percentiles",
        Kind::Custom(percentiles),
        "50 99 99.9",
    ),
];

/// `latency-tracking-info-percentiles`: numbers from 0 to 100, shown as Redis shows them
/// (`50.0` → `50`).
fn percentiles(value: &str, _current: &str) -> Result<String, String> {
    let mut out = Vec::new();
    for word in value.split_whitespace() {
        let p: f64 = word
            .parse()
            .map_err(|_| "Invalid latency-tracking-info-percentiles parameters".to_string())?;
        if !(0.0..=100.0).contains(&p) {
            return Err("Invalid latency-tracking-info-percentiles parameters".into());
        }
        out.push(format_percentile(p));
    }
    Ok(out.join(" "))
}

/// A percentile as Redis prints it: no trailing zeros.
pub fn format_percentile(p: f64) -> String {
    let s = format!("{p:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// One client class's `client-output-buffer-limit` (0 = no limit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutputLimit {
    pub hard: u64,
    pub soft: u64,
    pub soft_secs: u64,
}

/// The client classes of `client-output-buffer-limit`, in Redis's order.
const OUTPUT_CLASSES: [&str; 3] = ["normal", "slave", "pubsub"];

/// `client-output-buffer-limit` for every class.
pub struct OutputLimits;

impl OutputLimits {
    /// Applies `change` (groups of class, hard, soft, seconds) to `current`; the canonical
    /// form lists every class, as CONFIG GET shows it.
    fn merge(current: &str, change: &str) -> Result<String, String> {
        let mut classes = [OutputLimit::default(); 3];
        if let Ok(parsed) = Self::parse(current) {
            for (class, limit) in parsed {
                classes[class] = limit;
            }
        }
        for (class, limit) in Self::parse(change)? {
            classes[class] = limit;
        }
        Ok(OUTPUT_CLASSES
            .iter()
            .zip(classes)
            .map(|(name, l)| format!("{name} {} {} {}", l.hard, l.soft, l.soft_secs))
            .collect::<Vec<_>>()
            .join(" "))
    }

    /// Groups of (class index, limit), with Redis's errors.
    fn parse(text: &str) -> Result<Vec<(usize, OutputLimit)>, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        if !words.len().is_multiple_of(4) {
            return Err("Wrong number of arguments in buffer limit configuration.".into());
        }
        let mut out = Vec::new();
        for group in words.chunks(4) {
            let class = match group[0].to_ascii_lowercase().as_str() {
                "normal" => 0,
                "slave" | "replica" => 1,
                "pubsub" => 2,
                _ => {
                    return Err(
                        "Invalid client class specified in buffer limit configuration.".into(),
                    )
                }
            };
            let bad = || {
                "Error in hard, soft or soft_seconds setting in buffer limit configuration."
                    .to_string()
            };
            let hard = parse_memory(group[1]).ok_or_else(bad)?;
            let soft = parse_memory(group[2]).ok_or_else(bad)?;
            let soft_secs: u64 = group[3].parse().map_err(|_| bad())?;
            out.push((
                class,
                OutputLimit {
                    hard,
                    soft,
                    soft_secs,
                },
            ));
        }
        Ok(out)
    }
}

/// Values read on every request, parsed once when the configuration changes.
#[derive(Clone, Copy, Debug, Default)]
pub struct HotValues {
    pub query_buffer_limit: usize,
    pub output_limit_normal: OutputLimit,
    pub output_limit_pubsub: OutputLimit,
    /// `slowlog-log-slower-than` (µs; negative: off) and `slowlog-max-len`.
    pub slowlog_slower_than: i64,
    pub slowlog_max_len: usize,
    /// `latency-monitor-threshold` (ms; 0: off).
    pub latency_threshold_ms: u64,
    /// `latency-tracking`.
    pub latency_tracking: bool,
}

/// One value per parameter, in canonical form.
#[derive(Clone)]
pub struct Config {
    values: BTreeMap<&'static str, String>,
    /// The config file given on the command line, if any.
    pub file: Option<String>,
    /// `user` lines (the words after `user`), loaded into the ACL at start-up.
    pub users: Vec<Vec<Vec<u8>>>,
    /// The users every core starts with, resolved at start-up (see `acl::load`).
    pub acl_users: Vec<crate::acl::User>,
    hot: HotValues,
}

/// How a configuration error starts (Redis's wording).
const LINE_ERROR: &str = "Reading the configuration file";

/// Includes nested deeper than this are refused (a file including itself).
const MAX_INCLUDE_DEPTH: usize = 16;

/// A comment Redis ignores and Shardis reads as a directive: CONFIG REWRITE writes
/// Shardis-only parameters this way, so the file still loads in Redis.
pub const SHARDIS_ONLY: &str = "#@shardis ";

/// Shardis's own parameters: CONFIG REWRITE writes them behind [`SHARDIS_ONLY`].
const SHARDIS_PARAMS: &[&str] = &["shards", "spin-before-park-us"];

/// Strings whose empty value CONFIG REWRITE writes (`logfile ""`); for the others an empty
/// value means unset and writes nothing.
const EMPTY_WRITTEN: &[&str] = &["aclfile", "proc-title-template", "logfile"];

/// Every parameter: Shardis's own list, then the rest of Redis's directives.
fn all_params() -> impl Iterator<Item = &'static Param> {
    PARAMS.iter().chain(directives::DIRECTIVES)
}

fn find(name: &str) -> Option<&'static Param> {
    let lower = name.to_ascii_lowercase();
    all_params().find(|p| p.name == lower || p.aliases.contains(&lower.as_str()))
}

/// A parameter CONFIG GET / CONFIG SET know, by name or alias, with the name it was found
/// under (lower case).
fn lookup(name: &str) -> Option<(&'static Param, &'static str)> {
    let param = find(name).filter(|p| p.settable())?;
    let called = std::iter::once(&param.name)
        .chain(param.aliases)
        .find(|n| n.eq_ignore_ascii_case(name))?;
    Some((param, called))
}

/// Files CONFIG SET reads again even when their name is unchanged (Redis's volatile
/// configs): setting one to the same path reloads a renewed certificate.
const RELOADED_FILES: &[&str] = &[
    "tls-cert-file",
    "tls-key-file",
    "tls-ca-cert-file",
    "tls-ca-cert-dir",
    "tls-dh-params-file",
];

/// One parameter of a CONFIG SET, checked and in canonical form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetValue {
    /// The parameter (the name its value is kept under).
    pub name: &'static str,
    /// The name or alias the client used, as errors about it name it.
    pub called: &'static str,
    pub value: String,
    /// Differs from the value in force: only then do its side effects run (Redis's apply
    /// functions).
    pub changed: bool,
}

/// Parameters that take several words (`save 900 1`, `bind a b`); the others take one.
const MULTI_ARG: &[&str] = &[
    "save",
    "client-output-buffer-limit",
    "oom-score-adj-values",
    "bind",
    "replicaof",
    "latency-tracking-info-percentiles",
    "shutdown-on-sigint",
    "shutdown-on-sigterm",
];

/// `bind`: at most 16 addresses, as Redis; whether they can be bound is seen when binding.
fn bind(value: &str, _current: &str) -> Result<String, String> {
    let words: Vec<&str> = value.split_whitespace().collect();
    if words.len() > 16 {
        return Err("Too many bind addresses specified.".into());
    }
    Ok(words.join(" "))
}

/// `maxmemory-clients`: a byte count, or a percentage (of `maxmemory`) up to 100.
fn memory_or_percent(value: &str, _current: &str) -> Result<String, String> {
    if let Some(percent) = value.strip_suffix('%').filter(|p| !p.is_empty()) {
        if let Ok(n) = percent.parse::<u64>() {
            if n > 100 {
                return Err("percentage argument must be less or equal to 100".into());
            }
            // 0% is 0: off.
            return Ok(if n == 0 { "0".into() } else { format!("{n}%") });
        }
    }
    match parse_memory(value) {
        Some(n) if n <= i64::MAX as u64 => Ok(n.to_string()),
        Some(_) => Err(format!(
            "argument must be between -100 and {} inclusive",
            i64::MAX
        )),
        None => Err("argument must be a memory or percent value".into()),
    }
}

/// `hz`: any integer is taken and capped to 1..=500, as Redis does.
fn hz(value: &str, _current: &str) -> Result<String, String> {
    let n: i64 = value
        .parse()
        .map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
    if !(0..=i32::MAX as i64).contains(&n) {
        return Err(format!(
            "argument must be between 0 and {} inclusive",
            i32::MAX
        ));
    }
    Ok(n.clamp(1, 500).to_string())
}

/// Parses a byte count with an optional unit, as Redis's `memtoull`.
pub fn parse_memory(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(split);
    let mul: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(mul)
}

impl Param {
    /// Known to CONFIG GET and CONFIG SET (absent features' directives are only read from
    /// files).
    fn settable(&self) -> bool {
        !matches!(self.support, Support::Absent(_))
    }

    /// Checks `value` and returns its canonical form, or Redis's reason for refusing it.
    /// `current` is the value in force (`client-output-buffer-limit` changes only the classes
    /// it names).
    fn normalize(&self, value: &str, current: &str) -> Result<String, String> {
        let canonical = self.check(value, current)?;
        match self.support {
            Support::Absent(feature) if canonical != self.default => {
                let default = if self.default.is_empty() {
                    "\"\""
                } else {
                    self.default
                };
                Err(format!(
                    "{feature} is not available in Shardis yet: only Redis's default value ({default}) is accepted"
                ))
            }
            _ => Ok(canonical),
        }
    }

    /// Checks `value` against the parameter's kind and returns its canonical form.
    fn check(&self, value: &str, current: &str) -> Result<String, String> {
        match self.kind {
            Kind::Bool => match value.to_ascii_lowercase().as_str() {
                "yes" => Ok("yes".into()),
                "no" => Ok("no".into()),
                _ => Err("argument must be 'yes' or 'no'".into()),
            },
            Kind::Int { min, max } => {
                let n: i64 = value
                    .parse()
                    .map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
                if n < min || n > max {
                    return Err(format!(
                        "argument must be between {min} and {max} inclusive"
                    ));
                }
                Ok(n.to_string())
            }
            Kind::Memory { min } => match parse_memory(value) {
                Some(n) if n >= min => Ok(n.to_string()),
                Some(_) => Err(format!(
                    "argument must be between {min} and {} inclusive",
                    i64::MAX
                )),
                None => Err("argument must be a memory value".into()),
            },
            // CONFIG GET shows the absolute path, as Redis (which reports getcwd()).
            Kind::Dir => match std::fs::canonicalize(value) {
                Ok(path) if path.is_dir() => Ok(path.display().to_string()),
                Ok(_) => Err("Not a directory".into()),
                Err(_) => Err("No such file or directory".into()),
            },
            Kind::OutputLimits => OutputLimits::merge(current, value),
            Kind::NotifyFlags => shardis_engine::notify::parse_flags(value)
                .map(shardis_engine::notify::flags_to_string)
                .ok_or_else(|| "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into()),
            Kind::Enum(options) => {
                let lower = value.to_ascii_lowercase();
                if options.contains(&lower.as_str()) {
                    Ok(lower)
                } else {
                    Err(format!(
                        "argument(s) must be one of the following: {}",
                        options.join(", ")
                    ))
                }
            }
            Kind::Str => Ok(value.to_string()),
            Kind::TlsProtocols => {
                crate::tls::check_protocols(value)?;
                Ok(value.trim().to_string())
            }
            Kind::TlsCipherSuites => {
                crate::tls::check_ciphersuites(value)?;
                Ok(value.trim().to_string())
            }
            Kind::TlsCiphers => {
                crate::tls::check_ciphers(value)?;
                Ok(value.trim().to_string())
            }
            Kind::NotBuilt { off, why } => {
                if value.eq_ignore_ascii_case(off) {
                    Ok(off.to_string())
                } else if off == "no" && !value.eq_ignore_ascii_case("yes") {
                    Err("argument must be 'yes' or 'no'".into())
                } else {
                    Err(why.into())
                }
            }
            Kind::SavePoints => {
                let words: Vec<&str> = value.split_whitespace().collect();
                if !words.len().is_multiple_of(2) {
                    return Err("Invalid save parameters".into());
                }
                for w in &words {
                    if w.parse::<u64>().is_err() {
                        return Err("Invalid save parameters".into());
                    }
                }
                Ok(words.join(" "))
            }
            Kind::FileName => {
                if value.contains('/') || value.is_empty() || value == "." || value == ".." {
                    Err(if self.name == "appenddirname" {
                        "appenddirname can't be a path, just a dirname".to_string()
                    } else {
                        format!("{} can't be a path, just a filename", self.name)
                    })
                } else {
                    Ok(value.to_string())
                }
            }
            Kind::Custom(check) => check(value, current),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        let mut config = Config {
            values: all_params()
                .map(|p| (p.name, p.default.to_string()))
                .collect(),
            file: None,
            users: Vec::new(),
            acl_users: Vec::new(),
            hot: HotValues::default(),
        };
        config.refresh_hot();
        config
    }
}

impl Config {
    /// Builds the configuration from `redis-server`-style arguments: an optional config file
    /// path, then `--name value...` overrides.
    pub fn from_args(args: &[String]) -> Result<Config, String> {
        let mut config = Config::default();
        let mut rest = args;
        if let Some(first) = rest.first().filter(|a| !a.starts_with("--")) {
            let text = std::fs::read_to_string(first)
                .map_err(|e| format!("can't open config file '{first}': {e}"))?;
            // Absolute: CONFIG REWRITE writes it after the server changed directory.
            let path = std::fs::canonicalize(first)
                .map_or_else(|_| first.clone(), |p| p.display().to_string());
            config.file = Some(path);
            config.load_text(&text)?;
            rest = &rest[1..];
        }
        // `--name v1 v2 --other v` becomes the config lines "name v1 v2" and "other v".
        let mut text = String::new();
        for arg in rest {
            if let Some(name) = arg.strip_prefix("--") {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(name);
            } else {
                if text.is_empty() {
                    return Err(format!("invalid argument '{arg}': options start with --"));
                }
                text.push(' ');
                text.push_str(&quote(arg));
            }
        }
        config.load_text(&text)?;
        Ok(config)
    }

    /// Applies redis.conf-style lines (`name value`, `#` comments, quoted values); errors are
    /// worded as Redis words them, with the line.
    pub fn load_text(&mut self, text: &str) -> Result<(), String> {
        self.load_lines(text, 0)
    }

    fn load_lines(&mut self, text: &str, depth: usize) -> Result<(), String> {
        for (i, raw) in text.split('\n').enumerate() {
            let mut line = raw.trim_matches(|c| " \t\r\n".contains(c));
            match line.strip_prefix(SHARDIS_ONLY) {
                Some(rest) => line = rest.trim(),
                None if line.starts_with('#') => continue,
                None => {}
            }
            if line.is_empty() {
                continue;
            }
            if let Err(e) = self.load_line(line, depth) {
                // An included file's error already names its own line.
                if e.starts_with(LINE_ERROR) {
                    return Err(e);
                }
                return Err(format!(
                    "{LINE_ERROR}, at line {}\n>>> '{line}'\n{e}",
                    i + 1
                ));
            }
        }
        self.refresh_hot();
        Ok(())
    }

    /// One directive.
    fn load_line(&mut self, line: &str, depth: usize) -> Result<(), String> {
        let words = split_words(line).ok_or("Unbalanced quotes in configuration line")?;
        let Some((name, values)) = words.split_first() else {
            return Ok(());
        };
        let lower = name.to_ascii_lowercase();
        if let Some(param) = find(&lower) {
            if !MULTI_ARG.contains(&param.name) && values.len() != 1 {
                return Err("wrong number of arguments".into());
            }
            let canonical = param.normalize(&values.join(" "), self.get(param.name))?;
            self.values.insert(param.name, canonical);
            return Ok(());
        }
        if directives::DEPRECATED.contains(&lower.as_str()) && values.len() == 1 {
            return Ok(());
        }
        match lower.as_str() {
            "include" if values.len() == 1 => {
                if depth >= MAX_INCLUDE_DEPTH {
                    return Err("Too many nested includes".into());
                }
                let path = &values[0];
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("Fatal error, can't open config file '{path}': {e}"))?;
                self.load_lines(&text, depth + 1)
            }
            "user" if !values.is_empty() => {
                let words: Vec<Vec<u8>> = values.iter().map(|w| w.as_bytes().to_vec()).collect();
                crate::acl::file::check_config_line(&words, self.acl_all_channels())?;
                if self.users.iter().any(|u| u.first() == words.first()) {
                    return Err(format!(
                        "Error in user declaration '{}': Duplicate user found. A user can only be defined once in config files",
                        values[0]
                    ));
                }
                self.users.push(words);
                Ok(())
            }
            "rename-command" if values.len() == 2 => {
                Err("rename-command is not available in Shardis yet".into())
            }
            "loadmodule" if !values.is_empty() => {
                Err("modules are not available in Shardis".into())
            }
            "sentinel" => Err("sentinel directive while not in sentinel mode".into()),
            _ if lower.contains('.') && !values.is_empty() => Err(
                "Module Configuration detected without loadmodule directive or no ApplyConfig call: aborting".into(),
            ),
            _ => Err("Bad directive or wrong number of arguments".into()),
        }
    }

    /// Re-reads the values kept parsed.
    fn refresh_hot(&mut self) {
        let limits =
            OutputLimits::parse(self.get("client-output-buffer-limit")).unwrap_or_default();
        let class = |wanted: usize| {
            limits
                .iter()
                .find(|(class, _)| *class == wanted)
                .map(|(_, l)| *l)
                .unwrap_or_default()
        };
        self.hot = HotValues {
            query_buffer_limit: self.get_i64("client-query-buffer-limit").max(0) as usize,
            output_limit_normal: class(0),
            output_limit_pubsub: class(2),
            slowlog_slower_than: self.get_i64("slowlog-log-slower-than"),
            slowlog_max_len: self.get_i64("slowlog-max-len").max(0) as usize,
            latency_threshold_ms: self.get_i64("latency-monitor-threshold").max(0) as u64,
            latency_tracking: self.get("latency-tracking") == "yes",
        };
    }

    /// `client-output-buffer-limit replica` (the replication links read it).
    pub fn output_limit_replica(&self) -> OutputLimit {
        OutputLimits::parse(self.get("client-output-buffer-limit"))
            .unwrap_or_default()
            .into_iter()
            .find(|(class, _)| *class == 1)
            .map(|(_, l)| l)
            .unwrap_or_default()
    }

    /// The values read on every request.
    pub fn hot(&self) -> HotValues {
        self.hot
    }

    /// The value of a parameter (canonical name).
    pub fn get(&self, name: &str) -> &str {
        self.values.get(name).map(String::as_str).unwrap_or("")
    }

    pub fn get_i64(&self, name: &str) -> i64 {
        self.get(name).parse().unwrap_or(0)
    }

    pub fn get_u64(&self, name: &str) -> u64 {
        self.get(name).parse().unwrap_or(0)
    }

    pub fn get_bool(&self, name: &str) -> bool {
        self.get(name) == "yes"
    }

    /// CONFIG GET: the (name, value) pairs the patterns ask for, each name once. As Redis, a
    /// pattern without glob characters is a name: it is shown as written and may name a
    /// hidden parameter; the others match the names and aliases of the parameters that are
    /// not hidden.
    pub fn matching(&self, patterns: &[&[u8]]) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut add = |name: String, param: &Param| {
            if seen.insert(name.clone()) {
                out.push((name, self.get(param.name).to_string()));
            }
        };
        for pattern in patterns {
            if !pattern.iter().any(|c| b"[*?".contains(c)) {
                let name = String::from_utf8_lossy(pattern);
                if let Some((param, _)) = lookup(&name) {
                    add(name.into_owned(), param);
                }
                continue;
            }
            for param in all_params().filter(|p| p.settable() && !p.hidden) {
                for name in std::iter::once(&param.name).chain(param.aliases) {
                    if shardis_engine::glob::matches(pattern, name.as_bytes(), true) {
                        add(name.to_string(), param);
                    }
                }
            }
        }
        out
    }

    /// Checks CONFIG SET's pairs from a client (`local`: connected over loopback, which
    /// `enable-protected-configs local` allows) as Redis 7.0 does: first every name (known,
    /// mutable, allowed, not given twice), then every value in order; the first failure is
    /// the exact error reply text. Nothing is changed here.
    pub fn validate_set(
        &self,
        pairs: &[(String, String)],
        local: bool,
    ) -> Result<Vec<SetValue>, String> {
        let failed = |name: &str, why: &str| {
            format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}")
        };
        let mut params: Vec<(&'static Param, &'static str)> = Vec::with_capacity(pairs.len());
        for (name, _) in pairs {
            let Some((param, called)) = lookup(name) else {
                return Err(format!(
                    "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
                ));
            };
            if !param.mutable {
                return Err(failed(name, "can't set immutable config"));
            }
            if directives::PROTECTED.contains(&param.name)
                && !self.allows_protected("enable-protected-configs", local)
            {
                return Err(failed(name, "can't set protected config"));
            }
            // An alias and its parameter are two entries for Redis: only the same one twice
            // is a duplicate.
            if params.iter().any(|(_, c)| *c == called) {
                return Err(failed(name, "duplicate parameter"));
            }
            params.push((param, called));
        }
        let mut out: Vec<SetValue> = Vec::with_capacity(pairs.len());
        for ((param, called), (_, value)) in params.into_iter().zip(pairs) {
            // A value set earlier in the same command (through an alias) is the one it
            // changes (`client-output-buffer-limit` merges classes into it).
            let before = out
                .iter()
                .rev()
                .find(|v| v.name == param.name)
                .map_or(self.get(param.name), |v| v.value.as_str());
            let canonical = param
                .normalize(value, before)
                .map_err(|e| failed(called, &e))?;
            out.push(SetValue {
                name: param.name,
                called,
                changed: canonical != self.get(param.name) || RELOADED_FILES.contains(&param.name),
                value: canonical,
            });
        }
        Ok(out)
    }

    /// Whether a protected action (`enable-protected-configs`) is allowed for a client, local
    /// or not.
    fn allows_protected(&self, setting: &str, local: bool) -> bool {
        match self.get(setting) {
            "yes" => true,
            "local" => local,
            _ => false,
        }
    }

    /// Parameters set to something other than their default that have no effect here, with
    /// the reason (logged at start-up).
    pub fn ineffective(&self) -> Vec<(&'static str, &'static str)> {
        all_params()
            .filter_map(|p| match p.support {
                Support::NoEffect(why) if self.get(p.name) != p.default => Some((p.name, why)),
                _ => None,
            })
            .collect()
    }

    /// What CONFIG REWRITE writes for every parameter, and the `user` lines (`users`: the ACL
    /// users as ACL LIST describes them; their lines are dropped when an ACL file is used).
    pub fn rewrite_entries(&self, users: Vec<String>) -> Vec<rewrite::Entry> {
        let mut out = Vec::new();
        // Absent features' directives hold their defaults: the file's lines stay as they are.
        for param in all_params().filter(|p| p.settable()) {
            let name = param.name;
            let value = self.get(name);
            let differs = value != param.default;
            let mut lines: Vec<(String, bool)> = match param.kind {
                // Strings (TLS lists and paths included) are written quoted.
                Kind::Str
                | Kind::TlsProtocols
                | Kind::TlsCipherSuites
                | Kind::TlsCiphers
                | Kind::NotBuilt { off: "", .. }
                    if value.is_empty() && !EMPTY_WRITTEN.contains(&name) =>
                {
                    Vec::new()
                }
                Kind::Str
                | Kind::TlsProtocols
                | Kind::TlsCipherSuites
                | Kind::TlsCiphers
                | Kind::NotBuilt { off: "", .. } => {
                    vec![(format!("{name} {}", rewrite::quoted(value)), differs)]
                }
                // The working directory is always written, as Redis does.
                Kind::Dir => vec![(format!("{name} {}", rewrite::quoted(value)), true)],
                Kind::Memory { .. } => {
                    let n = value.parse().unwrap_or(0);
                    vec![(format!("{name} {}", rewrite::bytes(n)), differs)]
                }
                Kind::SavePoints if value.is_empty() => vec![("save \"\"".to_string(), true)],
                Kind::SavePoints => value
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .chunks(2)
                    .map(|pair| (format!("save {}", pair.join(" ")), true))
                    .collect(),
                Kind::OutputLimits => {
                    let defaults = OutputLimits::parse(param.default).unwrap_or_default();
                    OutputLimits::parse(value)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(class, l)| {
                            let force = defaults.get(class).is_none_or(|(_, d)| *d != l);
                            let line = format!(
                                "{name} {} {} {} {}",
                                OUTPUT_CLASSES[class],
                                rewrite::bytes(l.hard),
                                rewrite::bytes(l.soft),
                                l.soft_secs
                            );
                            (line, force)
                        })
                        .collect()
                }
                Kind::NotifyFlags => vec![(format!("{name} {}", rewrite::quoted(value)), differs)],
                Kind::Custom(_) if value.is_empty() => Vec::new(),
                _ => vec![(format!("{name} {value}"), differs)],
            };
            if SHARDIS_PARAMS.contains(&name) {
                for (line, _) in &mut lines {
                    line.insert_str(0, SHARDIS_ONLY);
                }
            }
            out.push(rewrite::Entry {
                option: name,
                lines,
            });
        }
        let user_lines = if self.get("aclfile").is_empty() {
            users.into_iter().map(|u| (u, true)).collect()
        } else {
            Vec::new()
        };
        out.push(rewrite::Entry {
            option: "user",
            lines: user_lines,
        });
        out
    }

    /// The primary name of a directive a configuration file may hold (`user` and the other
    /// file-only directives included), for CONFIG REWRITE.
    pub fn directive_name(name: &str) -> Option<&'static str> {
        if let Some(p) = find(name) {
            return Some(p.name);
        }
        directives::FILE_ONLY
            .iter()
            .chain(directives::DEPRECATED)
            .find(|d| **d == name)
            .copied()
    }

    /// Applies already validated values.
    pub fn apply(&mut self, values: &[(&'static str, String)]) {
        for (name, value) in values {
            self.values.insert(name, value.clone());
        }
        self.refresh_hot();
    }

    /// `acl-pubsub-default`: whether new users may use every channel.
    pub fn acl_all_channels(&self) -> bool {
        self.get("acl-pubsub-default") == "allchannels"
    }

    /// `notify-keyspace-events` as the engine's flags.
    pub fn notify_flags(&self) -> u32 {
        shardis_engine::notify::parse_flags(self.get("notify-keyspace-events")).unwrap_or(0)
    }

    /// The engine's view of the configuration.
    pub fn engine(&self) -> EngineConfig {
        let n = |name: &str| self.get_i64(name).max(0) as usize;
        EngineConfig {
            databases: n("databases").max(1),
            hash_max_listpack_entries: n("hash-max-listpack-entries"),
            hash_max_listpack_value: n("hash-max-listpack-value"),
            set_max_intset_entries: n("set-max-intset-entries"),
            zset_max_listpack_entries: n("zset-max-listpack-entries"),
            zset_max_listpack_value: n("zset-max-listpack-value"),
            list_max_listpack_size: self.get_i64("list-max-listpack-size"),
            list_compress_depth: n("list-compress-depth"),
            proto_max_bulk_len: n("proto-max-bulk-len"),
            hll_sparse_max_bytes: n("hll-sparse-max-bytes"),
            stream_node_max_bytes: n("stream-node-max-bytes"),
            stream_node_max_entries: self.get_i64("stream-node-max-entries"),
            tracking: Tracking {
                policy: Policy::parse(self.get("maxmemory-policy")).unwrap_or_default(),
                lfu_log_factor: self.get_i64("lfu-log-factor").clamp(0, u32::MAX as i64) as u32,
                lfu_decay_time: self.get_i64("lfu-decay-time").clamp(0, u32::MAX as i64) as u32,
            },
            maxmemory_samples: n("maxmemory-samples").max(1),
            shared_integers: self.get_u64("maxmemory") == 0
                || !Policy::parse(self.get("maxmemory-policy"))
                    .unwrap_or_default()
                    .tracks_access(),
            lazyfree_lazy_eviction: self.get_bool("lazyfree-lazy-eviction"),
            lazyfree_lazy_expire: self.get_bool("lazyfree-lazy-expire"),
            lazyfree_lazy_user_del: self.get_bool("lazyfree-lazy-user-del"),
            lazyfree_lazy_user_flush: self.get_bool("lazyfree-lazy-user-flush"),
            cluster: self.get_bool("cluster-enabled"),
        }
    }
}

/// Quotes an argument so that `split_words` reads it back as one word.
fn quote(arg: &str) -> String {
    if !arg.is_empty() && !arg.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
        return arg.to_string();
    }
    let mut s = String::from("\"");
    for c in arg.chars() {
        if c == '"' || c == '\\' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

/// Splits a config line into words, honouring double and single quotes.
fn split_words(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            return Some(words);
        };
        let mut word = String::new();
        if first == '"' || first == '\'' {
            chars.next();
            loop {
                match chars.next()? {
                    c if c == first => break,
                    '\\' if first == '"' => word.push(chars.next()?),
                    c => word.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        words.push(word);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn overrides_like_redis_server() {
        let c = Config::from_args(&args(&[
            "--port",
            "7000",
            "--save",
            "",
            "--appendonly",
            "no",
            "--shards",
            "2",
        ]))
        .expect("valid");
        assert_eq!(c.get("port"), "7000");
        assert_eq!(c.get("save"), "");
        assert_eq!(c.get("shards"), "2");
        assert_eq!(c.get("databases"), "16");
    }

    #[test]
    fn unknown_and_invalid_parameters_are_errors() {
        assert!(Config::from_args(&args(&["--nosuch", "1"])).is_err());
        assert!(Config::from_args(&args(&["--port", "abc"])).is_err());
        assert!(Config::from_args(&args(&["7000"])).is_err());
    }

    #[test]
    fn config_file_then_overrides() {
        let dir = std::env::temp_dir().join(format!("shardis-conf-{}", std::process::id()));
        std::fs::write(
            &dir,
            "# comment\nport 7001\nbind \"127.0.0.1\"\nhash-max-ziplist-entries 10\n",
        )
        .expect("write");
        let c = Config::from_args(&args(&[dir.to_str().unwrap_or_default(), "--port", "7002"]))
            .expect("valid");
        let _ = std::fs::remove_file(&dir);
        assert_eq!(c.get("port"), "7002");
        assert_eq!(c.get("hash-max-listpack-entries"), "10");
        assert_eq!(c.engine().hash_max_listpack_entries, 10);
    }

    #[test]
    fn config_set_validation_matches_redis_errors() {
        let c = Config::default();
        assert_eq!(
            c.validate_set(&[("nosuch".into(), "1".into())], true)
                .err()
                .as_deref(),
            Some("ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'")
        );
        assert!(c
            .validate_set(&[("daemonize".into(), "yes".into())], true)
            .is_err_and(|e| e.ends_with("'daemonize') - can't set immutable config")));
        let ok = c
            .validate_set(&[("zset-max-ziplist-entries".into(), "5".into())], true)
            .expect("ok");
        assert_eq!(
            ok,
            vec![SetValue {
                name: "zset-max-listpack-entries",
                called: "zset-max-ziplist-entries",
                value: "5".into(),
                changed: true
            }]
        );
        assert_eq!(parse_memory("1kb"), Some(1024));
        assert_eq!(parse_memory("1x"), None);
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn config_set_checks_every_name_first_then_the_values_in_order() {
        let c = Config::default();
        let err = |v: &[(&str, &str)]| c.validate_set(&pairs(v), true).expect_err("refused");
        // A bad value before an unknown name: the names are checked first.
        assert_eq!(
            err(&[("maxmemory", "x"), ("nosuch", "1")]),
            "ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'"
        );
        // The first name error wins, named as written.
        assert_eq!(
            err(&[("DAEMONIZE", "yes"), ("nosuch", "1")]),
            "ERR CONFIG SET failed (possibly related to argument 'DAEMONIZE') - can't set immutable config"
        );
        assert_eq!(
            err(&[("maxmemory", "1"), ("MAXMEMORY", "2")]),
            "ERR CONFIG SET failed (possibly related to argument 'MAXMEMORY') - duplicate parameter"
        );
        // A parameter and its alias are two entries, as in Redis: the later one wins.
        let both = c
            .validate_set(
                &pairs(&[
                    ("hash-max-ziplist-entries", "1"),
                    ("hash-max-listpack-entries", "2"),
                ]),
                true,
            )
            .expect("not a duplicate");
        assert_eq!(both.len(), 2);
        // Values: the first bad one, named by its parameter's own (lower-case) name.
        assert_eq!(
            err(&[
                ("maxmemory", "10"),
                ("HASH-MAX-ZIPLIST-ENTRIES", "x"),
                ("hz", "x")
            ]),
            "ERR CONFIG SET failed (possibly related to argument 'hash-max-ziplist-entries') - argument couldn't be parsed into an integer"
        );
        // Unchanged values are told apart (their side effects do not run).
        let same = c
            .validate_set(&pairs(&[("port", "6379"), ("maxmemory", "1mb")]), true)
            .expect("valid");
        assert_eq!(
            same.iter().map(|v| v.changed).collect::<Vec<_>>(),
            [false, true]
        );
        assert_eq!(same[1].value, "1048576");
    }

    #[test]
    fn config_get_patterns_names_and_hidden_parameters() {
        let c = Config::default();
        let names = |pats: &[&[u8]]| -> Vec<String> {
            c.matching(pats).into_iter().map(|(n, _)| n).collect()
        };
        let got = names(&[b"maxmemory", b"maxmemory*", b"bind", b"*of"]);
        let mut unique = got.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), got.len(), "{got:?}");
        for n in [
            "maxmemory",
            "maxmemory-policy",
            "bind",
            "replicaof",
            "slaveof",
        ] {
            assert!(got.iter().any(|g| g == n), "{n} missing in {got:?}");
        }
        // A name is shown as written.
        assert_eq!(names(&[b"MAXMEMORY"]), ["MAXMEMORY"]);
        assert!(names(&[b"nosuch"]).is_empty());
        for hidden in all_params().filter(|p| p.hidden && p.settable()) {
            assert!(!names(&[b"*"]).iter().any(|n| n == hidden.name));
            assert_eq!(names(&[hidden.name.as_bytes()]), [hidden.name]);
        }
    }

    #[test]
    fn maxmemory_clients_takes_bytes_or_a_percentage() {
        assert_eq!(memory_or_percent("1mb", "").as_deref(), Ok("1048576"));
        assert_eq!(memory_or_percent("7%", "").as_deref(), Ok("7%"));
        assert_eq!(memory_or_percent("0%", "").as_deref(), Ok("0"));
        assert_eq!(
            memory_or_percent("200%", ""),
            Err("percentage argument must be less or equal to 100".to_string())
        );
        for bad in ["%", "-5", "x%", "1.5%", "abc"] {
            assert_eq!(
                memory_or_percent(bad, ""),
                Err("argument must be a memory or percent value".to_string()),
                "{bad}"
            );
        }
    }

    #[test]
    fn bind_takes_at_most_sixteen_addresses() {
        let c = Config::default();
        let many = vec!["127.0.0.1"; 17].join(" ");
        assert!(c
            .validate_set(&pairs(&[("bind", &many)]), true)
            .is_err_and(|e| e.ends_with("Too many bind addresses specified.")));
        let ok = c
            .validate_set(&pairs(&[("bind", " 127.0.0.1   -::1 ")]), true)
            .expect("valid");
        assert_eq!(ok[0].value, "127.0.0.1 -::1");
        assert!(!ok[0].changed);
    }

    #[test]
    fn every_directive_is_declared_once() {
        let mut seen = std::collections::HashSet::new();
        for p in all_params() {
            for name in std::iter::once(&p.name).chain(p.aliases) {
                assert!(seen.insert(*name), "{name} declared twice");
            }
            // `dir` shows the absolute path of its default.
            assert!(
                p.name == "dir" || p.normalize(p.default, p.default).as_deref() == Ok(p.default),
                "{}: default {:?} is not canonical",
                p.name,
                p.default
            );
        }
        for d in directives::PROTECTED
            .iter()
            .chain(SHARDIS_PARAMS)
            .chain(EMPTY_WRITTEN)
            .chain(MULTI_ARG)
        {
            assert!(find(d).is_some(), "{d} is not a parameter");
        }
    }

    #[test]
    fn file_errors_name_the_line_as_redis_does() {
        let mut c = Config::default();
        assert_eq!(
            c.load_text("port 7000\nnosuch 1\n").err().as_deref(),
            Some("Reading the configuration file, at line 2\n>>> 'nosuch 1'\nBad directive or wrong number of arguments")
        );
        assert_eq!(
            c.load_text("port 1 2").err().as_deref(),
            Some("Reading the configuration file, at line 1\n>>> 'port 1 2'\nwrong number of arguments")
        );
        assert_eq!(
            c.load_text("aof-timestamp-enabled yes").err().as_deref(),
            Some("Reading the configuration file, at line 1\n>>> 'aof-timestamp-enabled yes'\nthis append-only file setting is not available in Shardis yet: only Redis's default value (no) is accepted")
        );
        assert_eq!(
            c.load_text("appendfilename a/b").err().as_deref(),
            Some("Reading the configuration file, at line 1\n>>> 'appendfilename a/b'\nappendfilename can't be a path, just a filename")
        );
        assert!(c
            .load_text("list-max-ziplist-entries 10\n#@shardis shards 3\nhz 1000")
            .is_ok());
        assert_eq!(c.get("shards"), "3");
        assert_eq!(c.get("hz"), "500");
        assert!(c.load_text("sentinel monitor x").is_err());
    }

    #[test]
    fn absent_features_take_only_redis_defaults_from_files() {
        let mut c = Config::default();
        c.load_text(
            "active-expire-effort 1\nrepl-backlog-size 1mb\nslave-serve-stale-data yes\nauto-aof-rewrite-min-size 64mb\nreplicaof no one\nappendonly no\nmaxmemory 0",
        )
        .expect("Redis's defaults load");
        let refused = |line: &str| c.clone().load_text(line).expect_err(line);
        assert!(refused("repl-diskless-load swapdb")
            .contains("\nthis replication setting is not available"));
        // The primary's side is built.
        assert!(c.clone().load_text("repl-backlog-size 2mb").is_ok());
        // The replica's side is built.
        assert!(c.clone().load_text("replicaof 10.0.0.1 6379").is_ok());
        assert!(refused("replicaof 10.0.0.1 x").ends_with("Invalid master port"));
        assert!(refused("active-expire-effort 5")
            .ends_with("tuning of active expiry and of hz is not available in Shardis yet: only Redis's default value (1) is accepted"));
        assert!(refused("no-appendfsync-on-rewrite yes")
            .contains("only Redis's default value (no) is accepted"));
        // Client eviction is built.
        assert!(c.clone().load_text("maxmemory-clients 10%").is_ok());
        // Eviction is built: its directives take any valid value.
        assert!(c
            .clone()
            .load_text(
                "maxmemory 1gb
maxmemory-policy allkeys-lfu
lfu-log-factor 20"
            )
            .is_ok());
        // A wrong value gets Redis's own error first.
        assert!(refused("active-expire-effort x")
            .ends_with("argument couldn't be parsed into an integer"));
        // CONFIG GET and CONFIG SET know only what works, and the switches clients read.
        assert!(c.matching(&[b"active-expire*"]).is_empty());
        assert_eq!(
            c.matching(&[b"appendonly"]),
            vec![("appendonly".to_string(), "no".to_string())]
        );
        assert!(c
            .validate_set(&[("active-expire-effort".into(), "1".into())], true)
            .is_err_and(|e| e.starts_with("ERR Unknown option")));
        // The append-only log is built: its switches take Redis's values.
        assert!(c
            .validate_set(
                &[
                    ("appendonly".into(), "yes".into()),
                    ("appendfsync".into(), "always".into())
                ],
                true
            )
            .is_ok());
        assert!(c
            .validate_set(&[("aof-use-rdb-preamble".into(), "no".into())], true)
            .is_err_and(|e| e.contains("a base written as commands")));
        // Settings that mean nothing here are taken and reported.
        c.load_text("jemalloc-bg-thread no\nio-threads 4")
            .expect("taken");
        let names: Vec<&str> = c.ineffective().iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["io-threads", "jemalloc-bg-thread"]);
    }

    #[test]
    fn latency_percentiles_are_shown_as_redis_shows_them() {
        assert_eq!(percentiles("0.0 50.0 100.0", "").as_deref(), Ok("0 50 100"));
        assert_eq!(percentiles("99.9", "").as_deref(), Ok("99.9"));
        assert_eq!(percentiles("", "").as_deref(), Ok(""));
        assert!(percentiles("10.0 50.0 a", "").is_err());
        assert!(percentiles("101", "").is_err());
        assert!(percentiles("-1", "").is_err());
    }

    #[test]
    fn protected_configs_need_permission() {
        let mut c = Config::default();
        let dir = std::env::temp_dir().display().to_string();
        let set = |c: &Config, local| c.validate_set(&[("dir".into(), dir.clone())], local);
        assert!(set(&c, true)
            .err()
            .is_some_and(|e| e.ends_with("can't set protected config")));
        c.load_text("enable-protected-configs local")
            .expect("valid");
        assert!(set(&c, true).is_ok());
        assert!(set(&c, false).is_err());
    }

    #[test]
    fn rewrite_keeps_the_file_and_changes_values() {
        let mut c = Config::default();
        let old = "# comment\nport 6379\nclient-output-buffer-limit normal 0 0 0\nclient-output-buffer-limit replica 256mb 64mb 60\nlogfile \"\"\nslaveof no one\nrepl-backlog-ttl 3600\n";
        c.load_text(old).expect("valid");
        c.load_text("port 7000\nmaxclients 50\nshards 2\nrequirepass pw")
            .expect("valid");
        let entries = c.rewrite_entries(vec!["user default on nopass ~* &* +@all".into()]);
        let new = rewrite::apply(old, Config::directive_name, entries);
        assert!(new.starts_with("# comment\nport 7000\nclient-output-buffer-limit normal 0 0 0\nclient-output-buffer-limit slave 256mb 64mb 60\nlogfile \"\"\n"), "{new}");
        // An absent feature's directive at its default stays as written.
        assert!(new.contains("\nrepl-backlog-ttl 3600\n"), "{new}");
        // A primary has no `replicaof` line (Redis removes it).
        assert!(!new.contains("slaveof"), "{new}");
        for line in [
            "maxclients 50",
            "#@shardis shards 2",
            "requirepass \"pw\"",
            "user default on nopass ~* &* +@all",
            "save \"\"",
        ] {
            assert!(new.contains(line), "{line} missing in {new}");
        }
        let mut again = Config::default();
        again.load_text(&new).expect("the rewritten file loads");
        assert_eq!(again.get("maxclients"), "50");
        assert_eq!(again.get("shards"), "2");
    }
}
