//! Server configuration: the parameters that exist, parsed from a redis.conf-style file and
//! `--name value` overrides, read and changed by CONFIG GET / CONFIG SET.
//!
//! Every core holds its own copy (no shared state); CONFIG SET validates once and then
//! applies the new value on every core.

use std::collections::BTreeMap;

use shardis_engine::EngineConfig;

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
    /// A byte count of which only 0 (no limit) is supported.
    MemoryOff,
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
}

struct Param {
    name: &'static str,
    /// Old names Redis still accepts (`hash-max-ziplist-entries`…).
    aliases: &'static [&'static str],
    kind: Kind,
    default: &'static str,
    /// Settable at run time by CONFIG SET.
    mutable: bool,
}

const fn p(name: &'static str, kind: Kind, default: &'static str) -> Param {
    Param {
        name,
        aliases: &[],
        kind,
        default,
        mutable: true,
    }
}

const fn fixed(name: &'static str, kind: Kind, default: &'static str) -> Param {
    Param {
        name,
        aliases: &[],
        kind,
        default,
        mutable: false,
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
    }
}

const INT: Kind = Kind::Int {
    min: 0,
    max: i64::MAX,
};

/// The parameters Shardis has, with Redis 7.0's defaults.
static PARAMS: &[Param] = &[
    fixed("bind", Kind::Str, "127.0.0.1 -::1"),
    fixed("port", Kind::Int { min: 0, max: 65535 }, "6379"),
    fixed("shards", Kind::Int { min: 0, max: 1024 }, "0"),
    fixed("databases", Kind::Int { min: 1, max: 65536 }, "16"),
    fixed("daemonize", Kind::Enum(&["no"]), "no"),
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
    p("hz", Kind::Int { min: 1, max: 500 }, "10"),
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
    // The append-only log is not built yet: only "no" is accepted.
    p("appendonly", Kind::Enum(&["no"]), "no"),
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
    // TLS (see `tls.rs`). A change to any of the file, protocol, cipher, client-auth or
    // session settings rebuilds the TLS settings on every core (CONFIG SET fails, keeping the
    // old ones, if they do not load).
    fixed("tls-port", Kind::Int { min: 0, max: 65535 }, "0"),
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
    p(
        "tls-replication",
        Kind::NotBuilt {
            off: "no",
            why: "TLS for replication links needs replication, which is not built yet",
        },
        "no",
    ),
    p(
        "tls-cluster",
        Kind::NotBuilt {
            off: "no",
            why: "TLS for the cluster bus needs cluster mode, which is not built yet",
        },
        "no",
    ),
    p(
        "tls-client-cert-file",
        Kind::NotBuilt {
            off: "",
            why: "the client certificate is for outgoing TLS links (replication, cluster), which are not built yet",
        },
        "",
    ),
    p(
        "tls-client-key-file",
        Kind::NotBuilt {
            off: "",
            why: "the client key is for outgoing TLS links (replication, cluster), which are not built yet",
        },
        "",
    ),
    p(
        "tls-client-key-file-pass",
        Kind::NotBuilt {
            off: "",
            why: "the client key is for outgoing TLS links (replication, cluster), which are not built yet",
        },
        "",
    ),
    // Eviction is not built yet: only "no limit" is accepted.
    p("maxmemory", Kind::MemoryOff, "0"),
    p(
        "maxmemory-policy",
        Kind::Enum(&["noeviction"]),
        "noeviction",
    ),
];

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
}

/// One value per parameter, in canonical form.
#[derive(Clone)]
pub struct Config {
    values: BTreeMap<&'static str, String>,
    /// The config file given on the command line, if any.
    pub file: Option<String>,
    hot: HotValues,
}

fn find(name: &str) -> Option<&'static Param> {
    let lower = name.to_ascii_lowercase();
    PARAMS
        .iter()
        .find(|p| p.name == lower || p.aliases.contains(&lower.as_str()))
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
    /// Checks `value` and returns its canonical form, or Redis's reason for refusing it.
    /// `current` is the value in force (`client-output-buffer-limit` changes only the classes
    /// it names).
    fn normalize(&self, value: &str, current: &str) -> Result<String, String> {
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
            Kind::MemoryOff => match parse_memory(value) {
                Some(0) => Ok("0".into()),
                Some(_) => Err(
                    "a memory limit is not supported yet (no eviction): only 0 is accepted".into(),
                ),
                None => Err("argument must be a memory value".into()),
            },
            Kind::Enum(options) => {
                let lower = value.to_ascii_lowercase();
                if options.contains(&lower.as_str()) {
                    Ok(lower)
                } else if self.name == "appendonly" && (lower == "yes") {
                    Err("the append-only file is not supported yet".into())
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
                if value.contains('/') || value.is_empty() {
                    Err("dbfilename can't be a path, just a filename".into())
                } else {
                    Ok(value.to_string())
                }
            }
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        let mut config = Config {
            values: PARAMS
                .iter()
                .map(|p| (p.name, p.default.to_string()))
                .collect(),
            file: None,
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
            config.file = Some(first.clone());
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

    /// Applies redis.conf-style lines (`name value`, `#` comments, quoted values).
    pub fn load_text(&mut self, text: &str) -> Result<(), String> {
        for (lineno, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words = split_words(line)
                .ok_or_else(|| format!("line {}: unbalanced quotes", lineno + 1))?;
            let Some((name, values)) = words.split_first() else {
                continue;
            };
            let param = find(name).ok_or_else(|| {
                format!(
                    "line {}: Bad directive or wrong number of arguments: '{}'",
                    lineno + 1,
                    name
                )
            })?;
            let value = values.join(" ");
            let canonical = param
                .normalize(&value, self.get(param.name))
                .map_err(|e| format!("line {}: '{}': {}", lineno + 1, name, e))?;
            self.values.insert(param.name, canonical);
        }
        self.refresh_hot();
        Ok(())
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
        };
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

    /// CONFIG GET: every (name, value) whose name (or alias) matches one of the patterns.
    pub fn matching(&self, patterns: &[&[u8]]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for param in PARAMS {
            for name in std::iter::once(&param.name).chain(param.aliases) {
                let hit = patterns
                    .iter()
                    .any(|pat| shardis_engine::glob::matches(pat, name.as_bytes(), true));
                if hit && !out.iter().any(|(n, _): &(String, String)| n == name) {
                    out.push((name.to_string(), self.get(param.name).to_string()));
                }
            }
        }
        out
    }

    /// Validates CONFIG SET pairs; returns the canonical (name, value) list to apply, or the
    /// exact error reply text.
    pub fn validate_set(
        &self,
        pairs: &[(String, String)],
    ) -> Result<Vec<(&'static str, String)>, String> {
        let mut out: Vec<(&'static str, String)> = Vec::new();
        for (name, value) in pairs {
            let Some(param) = find(name) else {
                return Err(format!(
                    "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
                ));
            };
            if !param.mutable {
                return Err(format!("ERR CONFIG SET failed (possibly related to argument '{name}') - can't set immutable config"));
            }
            if out.iter().any(|(n, _)| *n == param.name) {
                return Err(format!("ERR CONFIG SET failed (possibly related to argument '{name}') - duplicate parameter"));
            }
            let canonical = param.normalize(value, self.get(param.name)).map_err(|e| {
                format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {e}")
            })?;
            out.push((param.name, canonical));
        }
        Ok(out)
    }

    /// Applies already validated values.
    pub fn apply(&mut self, values: &[(&'static str, String)]) {
        for (name, value) in values {
            self.values.insert(name, value.clone());
        }
        self.refresh_hot();
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
            c.validate_set(&[("nosuch".into(), "1".into())])
                .err()
                .as_deref(),
            Some("ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'")
        );
        assert!(c.validate_set(&[("port".into(), "1".into())]).is_err());
        let ok = c
            .validate_set(&[("zset-max-ziplist-entries".into(), "5".into())])
            .expect("ok");
        assert_eq!(ok, vec![("zset-max-listpack-entries", "5".to_string())]);
        assert_eq!(parse_memory("1kb"), Some(1024));
        assert_eq!(parse_memory("1x"), None);
    }
}
