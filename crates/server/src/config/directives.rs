//! The rest of Redis 7.0's configuration directives, beyond the parameters Shardis has always
//! had: every one a redis.conf may hold, with Redis's defaults and value checks, so that a
//! user's file loads. Each says how far Shardis supports it ([`Support`]):
//!
//! - process management (`pidfile`, `supervised`, `oom-score-adj`, `disable-thp`) and
//!   `enable-protected-configs` work as in Redis;
//! - directives of features Shardis does not have yet (persistence tunables, replication,
//!   cluster…) are [`Support::Absent`]: a file may hold them at
//!   Redis's default value, which changes nothing (a stock redis.conf does), any other value
//!   is refused naming the feature, and CONFIG GET/SET do not know them;
//! - directives tied to Redis's allocator, thread layout or process title are
//!   [`Support::NoEffect`]: accepted with a log line, as Redis does when built without jemalloc.
//!
//! A feature that lands moves its directives to [`Support::Built`] (the unit test in `config`
//! catches a directive declared twice).

use super::{Kind, Param, Support, INT};

const fn p(name: &'static str, kind: Kind, default: &'static str) -> Param {
    super::p(name, kind, default)
}

const fn fixed(name: &'static str, kind: Kind, default: &'static str) -> Param {
    super::fixed(name, kind, default)
}

const fn alias(
    name: &'static str,
    aliases: &'static [&'static str],
    kind: Kind,
    default: &'static str,
) -> Param {
    super::alias(name, aliases, kind, default)
}

/// A directive of a feature Shardis does not have.
const fn absent(
    feature: &'static str,
    name: &'static str,
    kind: Kind,
    default: &'static str,
) -> Param {
    Param {
        support: Support::Absent(feature),
        ..super::p(name, kind, default)
    }
}

/// [`absent`], with Redis's old names for it.
const fn absent_alias(
    feature: &'static str,
    name: &'static str,
    aliases: &'static [&'static str],
    kind: Kind,
    default: &'static str,
) -> Param {
    Param {
        aliases,
        ..absent(feature, name, kind, default)
    }
}

/// Redis's debugging knobs: CONFIG GET shows them only when named exactly.
const fn hidden(param: Param) -> Param {
    Param {
        hidden: true,
        ..param
    }
}

/// A directive that means nothing here, and why.
const fn no_effect(
    why: &'static str,
    name: &'static str,
    kind: Kind,
    default: &'static str,
) -> Param {
    Param {
        support: Support::NoEffect(why),
        ..super::p(name, kind, default)
    }
}

/// Redis's `int` parameters: at most `INT_MAX`.
const fn c_int(min: i64) -> Kind {
    Kind::Int {
        min,
        max: i32::MAX as i64,
    }
}

const C_INT_ANY: Kind = Kind::Int {
    min: i32::MIN as i64,
    max: i32::MAX as i64,
};
const PORT: Kind = Kind::Int { min: 0, max: 65535 };
const BOOL: Kind = Kind::Bool;
const STR: Kind = Kind::Str;
const MEM: Kind = Kind::Memory { min: 0 };

/// The features whose directives are absent, as refusals name them.
pub(super) const AOF: &str = "this append-only file setting";
const RDB_TUNING: &str = "this snapshot setting";
const REPLICATION: &str = "this replication setting";
const CLUSTER: &str = "this cluster setting";
const LOGO: &str = "the start-up logo";
const SYSLOG: &str = "logging to syslog";
const CRASH: &str = "Redis's crash report and watchdog";
const SHUTDOWN: &str = "shutdown options (they concern saving and replicas)";
const CPU_LIST: &str = "CPU lists (every shard runs pinned to its own core)";
const UNIX_SOCKET: &str = "listening on a unix socket";
const SOCKET_MARK: &str = "socket marks";
const MODULES: &str = "modules";
const EXPIRE_TUNING: &str = "tuning of active expiry and of hz";
const REHASHING: &str = "incremental rehashing";
const LAZYFREE: &str = "this lazy freeing setting";
const WARNINGS: &str = "Redis's start-up warnings";

const JEMALLOC: &str = "Shardis allocates with mimalloc, not jemalloc";
const THREADS: &str = "every shard does its own I/O on its own core";
const TITLE: &str = "the process title is left as started";

/// Every Redis 7.0 directive not in `config`'s own list.
pub(super) static DIRECTIVES: &[Param] = &[
    // Process management: works.
    fixed("pidfile", STR, ""),
    fixed(
        "supervised",
        Kind::Enum(&["upstart", "systemd", "auto", "no"]),
        "no",
    ),
    // Applied at start-up only (process.rs), so not settable at run time.
    fixed(
        "oom-score-adj",
        Kind::Enum(&["no", "yes", "relative", "absolute"]),
        "no",
    ),
    fixed(
        "oom-score-adj-values",
        Kind::Custom(oom_values),
        "0 200 800",
    ),
    fixed("disable-thp", BOOL, "yes"),
    fixed(
        "enable-protected-configs",
        Kind::Enum(&["no", "yes", "local"]),
        "no",
    ),
    // Redis refuses to turn it on without its own jemalloc, as here.
    p("activedefrag", Kind::Custom(active_defrag), "no"),
    // Nothing to do here.
    no_effect(TITLE, "set-proc-title", BOOL, "yes"),
    no_effect(
        TITLE,
        "proc-title-template",
        STR,
        "{title} {listen-addr} {server-mode}",
    ),
    no_effect(THREADS, "io-threads", Kind::Int { min: 1, max: 128 }, "1"),
    no_effect(THREADS, "io-threads-do-reads", BOOL, "no"),
    no_effect(JEMALLOC, "jemalloc-bg-thread", BOOL, "yes"),
    no_effect(
        JEMALLOC,
        "active-defrag-ignore-bytes",
        Kind::Memory { min: 1 },
        "104857600",
    ),
    no_effect(
        JEMALLOC,
        "active-defrag-threshold-lower",
        Kind::Int { min: 0, max: 1000 },
        "10",
    ),
    no_effect(
        JEMALLOC,
        "active-defrag-threshold-upper",
        Kind::Int { min: 0, max: 1000 },
        "100",
    ),
    no_effect(
        JEMALLOC,
        "active-defrag-cycle-min",
        Kind::Int { min: 1, max: 99 },
        "1",
    ),
    no_effect(
        JEMALLOC,
        "active-defrag-cycle-max",
        Kind::Int { min: 1, max: 99 },
        "25",
    ),
    no_effect(
        JEMALLOC,
        "active-defrag-max-scan-fields",
        Kind::Int {
            min: 1,
            max: i64::MAX,
        },
        "1000",
    ),
    // Absent: the default is taken, anything else refused.
    absent(LOGO, "always-show-logo", BOOL, "no"),
    absent(SYSLOG, "syslog-enabled", BOOL, "no"),
    absent(SYSLOG, "syslog-ident", STR, "redis"),
    absent(SYSLOG, "syslog-facility", STR, "local0"),
    absent(CRASH, "crash-log-enabled", BOOL, "yes"),
    absent(CRASH, "crash-memcheck-enabled", BOOL, "yes"),
    hidden(absent(CRASH, "use-exit-on-panic", BOOL, "no")),
    hidden(absent(CRASH, "watchdog-period", c_int(0), "0")),
    absent(WARNINGS, "ignore-warnings", STR, ""),
    absent(SHUTDOWN, "shutdown-on-sigint", STR, "default"),
    absent(SHUTDOWN, "shutdown-on-sigterm", STR, "default"),
    absent(SHUTDOWN, "shutdown-timeout", c_int(0), "10"),
    absent(CPU_LIST, "server_cpulist", STR, ""),
    absent(CPU_LIST, "bio_cpulist", STR, ""),
    absent(CPU_LIST, "aof_rewrite_cpulist", STR, ""),
    absent(CPU_LIST, "bgsave_cpulist", STR, ""),
    absent(UNIX_SOCKET, "unixsocket", STR, ""),
    absent(UNIX_SOCKET, "unixsocketperm", STR, "0"),
    absent(
        SOCKET_MARK,
        "socket-mark-id",
        Kind::Int {
            min: 0,
            max: u32::MAX as i64,
        },
        "0",
    ),
    absent(MODULES, "enable-module-command", STR, "no"),
    absent(
        EXPIRE_TUNING,
        "active-expire-effort",
        Kind::Int { min: 1, max: 10 },
        "1",
    ),
    absent(EXPIRE_TUNING, "dynamic-hz", BOOL, "yes"),
    absent(REHASHING, "activerehashing", BOOL, "yes"),
    absent(LAZYFREE, "lazyfree-lazy-server-del", BOOL, "no"),
    // Persistence: snapshot tunables Shardis does not have, and tunables of the append-only
    // file it does not have (the log itself is built: see config.rs).
    absent(RDB_TUNING, "rdbchecksum", BOOL, "yes"),
    absent(RDB_TUNING, "rdb-del-sync-files", BOOL, "no"),
    absent(RDB_TUNING, "rdb-save-incremental-fsync", BOOL, "yes"),
    absent(AOF, "no-appendfsync-on-rewrite", BOOL, "no"),
    absent(AOF, "aof-timestamp-enabled", BOOL, "no"),
    absent(AOF, "aof-rewrite-incremental-fsync", BOOL, "yes"),
    absent(AOF, "aof-disable-auto-gc", BOOL, "no"),
    hidden(absent(RDB_TUNING, "rdb-key-save-delay", C_INT_ANY, "0")),
    // Loading made slower for tests, as Redis's (persist/loading.rs).
    hidden(p("key-load-delay", C_INT_ANY, "0")),
    // Replication.
    // The replica's side is built (crates/server/src/replica): `replicaof` is read at
    // start-up and shows the primary REPLICAOF set (CONFIG SET cannot change it, as Redis).
    Param {
        aliases: &["slaveof"],
        ..fixed("replicaof", Kind::Custom(replica_of), "")
    },
    p("masterauth", STR, ""),
    p("masteruser", STR, ""),
    absent(REPLICATION, "bind-source-addr", STR, ""),
    alias(
        "replica-serve-stale-data",
        &["slave-serve-stale-data"],
        BOOL,
        "yes",
    ),
    alias("replica-read-only", &["slave-read-only"], BOOL, "yes"),
    absent_alias(
        REPLICATION,
        "replica-ignore-maxmemory",
        &["slave-ignore-maxmemory"],
        BOOL,
        "yes",
    ),
    absent_alias(
        REPLICATION,
        "replica-lazy-flush",
        &["slave-lazy-flush"],
        BOOL,
        "no",
    ),
    alias("replica-priority", &["slave-priority"], c_int(0), "100"),
    absent_alias(
        REPLICATION,
        "replica-announce-ip",
        &["slave-announce-ip"],
        STR,
        "",
    ),
    absent_alias(
        REPLICATION,
        "replica-announce-port",
        &["slave-announce-port"],
        PORT,
        "0",
    ),
    p("replica-announced", BOOL, "yes"),
    absent(REPLICATION, "replica-ignore-disk-write-errors", BOOL, "no"),
    p("repl-diskless-sync", BOOL, "yes"),
    p("repl-diskless-sync-delay", c_int(0), "5"),
    p("repl-diskless-sync-max-replicas", c_int(0), "0"),
    absent(
        REPLICATION,
        "repl-diskless-load",
        Kind::Enum(&["disabled", "on-empty-db", "swapdb"]),
        "disabled",
    ),
    p("repl-disable-tcp-nodelay", BOOL, "no"),
    alias(
        "repl-ping-replica-period",
        &["repl-ping-slave-period"],
        c_int(1),
        "10",
    ),
    p("repl-timeout", c_int(1), "60"),
    p("repl-backlog-size", Kind::Memory { min: 1 }, "1048576"),
    p("repl-backlog-ttl", INT, "3600"),
    alias(
        "min-replicas-to-write",
        &["min-slaves-to-write"],
        c_int(0),
        "0",
    ),
    alias(
        "min-replicas-max-lag",
        &["min-slaves-max-lag"],
        c_int(0),
        "10",
    ),
    absent(
        REPLICATION,
        "propagation-error-behavior",
        Kind::Enum(&["ignore", "panic", "panic-on-replicas"]),
        "ignore",
    ),
    // Cluster mode (crates/server/src/cluster): one process, each shard a node. The rest
    // needs the cluster bus between processes.
    fixed("cluster-enabled", BOOL, "no"),
    fixed("cluster-config-file", STR, "nodes.conf"),
    fixed("cluster-port", PORT, "0"),
    p("cluster-node-timeout", INT, "15000"),
    // Replicas and failover on the bus (cluster/bus/state/failover.rs).
    alias(
        "cluster-replica-validity-factor",
        &["cluster-slave-validity-factor"],
        c_int(0),
        "10",
    ),
    absent(CLUSTER, "cluster-migration-barrier", c_int(0), "1"),
    absent(CLUSTER, "cluster-require-full-coverage", BOOL, "yes"),
    alias(
        "cluster-replica-no-failover",
        &["cluster-slave-no-failover"],
        BOOL,
        "no",
    ),
    absent(CLUSTER, "cluster-allow-reads-when-down", BOOL, "no"),
    absent(CLUSTER, "cluster-allow-pubsubshard-when-down", BOOL, "yes"),
    p("cluster-allow-replica-migration", BOOL, "yes"),
    p("cluster-announce-ip", STR, ""),
    absent(CLUSTER, "cluster-announce-hostname", STR, ""),
    p("cluster-announce-port", PORT, "0"),
    p("cluster-announce-bus-port", PORT, "0"),
    p("cluster-announce-tls-port", PORT, "0"),
    absent(
        CLUSTER,
        "cluster-preferred-endpoint-type",
        Kind::Enum(&["ip", "hostname", "unknown-endpoint"]),
        "ip",
    ),
    p("cluster-link-sendbuf-limit", MEM, "0"),
];

/// `replicaof <host> <port>`, or `replicaof no one` (the default: not a replica).
fn replica_of(value: &str, _current: &str) -> Result<String, String> {
    let words: Vec<&str> = value.split_whitespace().collect();
    match words.as_slice() {
        [] => Ok(String::new()),
        [no, one] if no.eq_ignore_ascii_case("no") && one.eq_ignore_ascii_case("one") => {
            Ok(String::new())
        }
        [host, port] => match port.parse::<u16>() {
            Ok(port) => Ok(format!("{host} {port}")),
            Err(_) => Err("Invalid master port".into()),
        },
        _ => Err("wrong number of arguments".into()),
    }
}

/// `oom-score-adj-values`: three values (primary, replica, background child) in
/// -2000..=2000.
fn oom_values(value: &str, _current: &str) -> Result<String, String> {
    let words: Vec<&str> = value.split_whitespace().collect();
    if words.len() != 3 {
        return Err("wrong number of arguments".into());
    }
    let mut out = Vec::with_capacity(3);
    for w in words {
        match w.parse::<i64>() {
            Ok(v) if (-2000..=2000).contains(&v) => out.push(v.to_string()),
            _ => {
                return Err(
                    "Invalid oom-score-adj-values, elements must be between -2000 and 2000.".into(),
                )
            }
        }
    }
    Ok(out.join(" "))
}

/// `activedefrag`: Redis refuses it when built without its own jemalloc, as Shardis is.
fn active_defrag(value: &str, _current: &str) -> Result<String, String> {
    match value.to_ascii_lowercase().as_str() {
        "no" => Ok("no".into()),
        "yes" => Err("Active defragmentation cannot be enabled: it requires a Redis server compiled with a modified Jemalloc like the one shipped by default with the Redis source distribution".into()),
        _ => Err("argument must be 'yes' or 'no'".into()),
    }
}

/// Directives Redis reads from a file but that are no parameters.
pub(super) const FILE_ONLY: &[&str] = &[
    "include",
    "rename-command",
    "user",
    "loadmodule",
    "sentinel",
];

/// Directives Redis 7.0 still accepts and ignores (one argument each).
pub(super) const DEPRECATED: &[&str] = &[
    "list-max-ziplist-entries",
    "list-max-ziplist-value",
    "lua-replicate-commands",
];

/// Parameters CONFIG SET refuses unless `enable-protected-configs` allows it.
pub(super) const PROTECTED: &[&str] = &["dir"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_values_are_checked_as_redis_does() {
        assert_eq!(oom_values("0 200 800", "").as_deref(), Ok("0 200 800"));
        assert!(oom_values("0 200", "").is_err());
        assert!(oom_values("0 200 3000", "").is_err());
        assert!(active_defrag("yes", "").is_err());
        assert_eq!(replica_of("no one", "").as_deref(), Ok(""));
        assert_eq!(replica_of("h 6379", "").as_deref(), Ok("h 6379"));
    }
}
