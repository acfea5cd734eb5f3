//! The list of implemented commands. Each command family declares its own registrations next
//! to its code (`t_string::COMMANDS`…); this file joins them and declares the commands the
//! runtime carries out itself. A command that is not here answers `-ERR unknown command` and
//! is not listed by COMMAND.

use bytes::Bytes;

use super::{
    Blocking, Exec, Fanout, GetKeys, KeyFinder, KeyFlags, Merge, Redact, ShardFn, SplitRule,
};

/// One line of the table: a command name (`container|sub` for subcommands), where it runs and
/// how it spreads over shards.
pub struct Registration {
    pub name: &'static str,
    pub exec: Exec,
    pub fanout: Fanout,
    pub key_finder: Option<KeyFinder>,
    pub getkeys: Option<GetKeys>,
    pub blocking: Option<Blocking>,
    pub split_rule: Option<SplitRule>,
    pub redact: Option<Redact>,
    pub key_flags: Option<KeyFlags>,
}

impl Registration {
    /// A command over keys of one shard; across shards it gathers its keys (see [`Fanout::Gather`]).
    pub const fn shard(name: &'static str, f: ShardFn) -> Registration {
        Registration {
            name,
            exec: Exec::Shard(f),
            fanout: Fanout::Gather,
            key_finder: None,
            getkeys: None,
            blocking: None,
            split_rule: None,
            redact: None,
            key_flags: None,
        }
    }

    /// A command whose keys are independent: split by shard, replies merged by `merge`.
    pub const fn split(name: &'static str, f: ShardFn, merge: Merge) -> Registration {
        Registration {
            name,
            exec: Exec::Shard(f),
            fanout: Fanout::Split(merge),
            key_finder: None,
            getkeys: None,
            blocking: None,
            split_rule: None,
            redact: None,
            key_flags: None,
        }
    }

    /// A keyless command over all data: run on every shard, replies merged by `merge`.
    pub const fn all_shards(name: &'static str, f: ShardFn, merge: Merge) -> Registration {
        Registration {
            name,
            exec: Exec::Shard(f),
            fanout: Fanout::AllShards(merge),
            key_finder: None,
            getkeys: None,
            blocking: None,
            split_rule: None,
            redact: None,
            key_flags: None,
        }
    }

    /// A keyless engine command that needs no data (runs on the client's own shard).
    pub const fn local(name: &'static str, f: ShardFn) -> Registration {
        Registration {
            name,
            exec: Exec::Shard(f),
            fanout: Fanout::Local,
            key_finder: None,
            getkeys: None,
            blocking: None,
            split_rule: None,
            redact: None,
            key_flags: None,
        }
    }

    /// Adds a finder for keys the key specs cannot name (SORT's BY and GET patterns).
    pub const fn with_key_finder(mut self, finder: KeyFinder) -> Registration {
        self.key_finder = Some(finder);
        self
    }

    /// Adds a key extractor for a command whose key specs are incomplete (SORT ... STORE).
    pub const fn with_getkeys(mut self, getkeys: GetKeys) -> Registration {
        self.getkeys = Some(getkeys);
        self
    }

    /// Declares how a blocking command waits (see [`Blocking`]).
    pub const fn blocking(mut self, blocking: Blocking) -> Registration {
        self.blocking = Some(blocking);
        self
    }

    /// Adds the per-shard arguments, check and merge of a split command whose keys are not
    /// laid out as `key [arg ...]` runs (XREAD), see [`SplitRule`].
    pub const fn with_split_rule(mut self, rule: SplitRule) -> Registration {
        self.split_rule = Some(rule);
        self
    }

    /// Gives the flags of a key whose key spec says they vary with the call (SET ... GET).
    pub const fn with_key_flags(mut self, key_flags: KeyFlags) -> Registration {
        self.key_flags = Some(key_flags);
        self
    }

    /// Names the arguments holding secrets, which the slow log hides (see [`Redact`]).
    pub const fn redacting(mut self, redact: Redact) -> Registration {
        self.redact = Some(redact);
        self
    }

    /// A command the runtime carries out.
    pub const fn server(name: &'static str, cmd: ServerCmd) -> Registration {
        Registration {
            name,
            exec: Exec::Server(cmd),
            fanout: Fanout::Local,
            key_finder: None,
            getkeys: None,
            blocking: None,
            split_rule: None,
            redact: None,
            key_flags: None,
        }
    }
}

/// Commands carried out by the runtime (connection state, server state, coordination).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerCmd {
    /// A container (CLIENT, CONFIG…) whose subcommands are registered separately.
    Container,
    Ping,
    Echo,
    Quit,
    Reset,
    Hello,
    Select,
    ClientId,
    ClientSetName,
    ClientGetName,
    ClientInfo,
    ClientList,
    ClientSetInfo,
    ClientKill,
    ClientHelp,
    ClientUnblock,
    ClientPause,
    ClientUnpause,
    ClientNoEvict,
    CommandAll,
    CommandCount,
    CommandInfo,
    CommandDocs,
    CommandList,
    CommandGetKeys,
    CommandGetKeysAndFlags,
    CommandHelp,
    ConfigGet,
    ConfigSet,
    ConfigResetStat,
    ConfigHelp,
    Info,
    Time,
    Shutdown,
    Scan,
    RandomKey,
    FunctionFlush,
    Multi,
    Exec,
    Discard,
    Watch,
    Unwatch,
    Subscribe,
    Unsubscribe,
    PSubscribe,
    PUnsubscribe,
    SSubscribe,
    SUnsubscribe,
    Publish,
    SPublish,
    PubsubChannels,
    PubsubNumsub,
    PubsubNumpat,
    PubsubShardChannels,
    PubsubShardNumsub,
    PubsubHelp,
    Monitor,
    ClientReply,
    // Scripting (crates/server/src/script).
    Eval,
    EvalSha,
    EvalRo,
    EvalShaRo,
    Fcall,
    FcallRo,
    ScriptLoad,
    ScriptExists,
    ScriptFlush,
    ScriptKill,
    ScriptHelp,
    FunctionLoad,
    FunctionList,
    FunctionDelete,
    FunctionDump,
    FunctionRestore,
    FunctionStats,
    FunctionKill,
    FunctionHelp,
    ClientTracking,
    ClientCaching,
    ClientGetRedir,
    ClientTrackingInfo,
    Auth,
    // Introspection (crates/server/src/cmd/slowlog.rs, latency.rs).
    SlowlogGet,
    SlowlogLen,
    SlowlogReset,
    SlowlogHelp,
    LatencyDoctor,
    LatencyGraph,
    LatencyHistory,
    LatencyLatest,
    LatencyReset,
    LatencyHistogram,
    LatencyHelp,
    MemoryStats,
    MemoryDoctor,
    MemoryMallocStats,
    MemoryPurge,
    AclCat,
    AclDelUser,
    AclDryRun,
    AclGenPass,
    AclGetUser,
    AclHelp,
    AclList,
    AclLoad,
    AclLog,
    AclSave,
    AclSetUser,
    AclUsers,
    AclWhoami,
    ConfigRewrite,
    Save,
    BgSave,
    BgRewriteAof,
    LastSave,
    Debug,
    // Replication, the replica's side (crates/server/src/replica).
    ReplicaOf,
    Role,
    // Cluster mode (crates/server/src/cluster).
    ClusterInfo,
    ClusterMyId,
    ClusterNodes,
    ClusterSlots,
    ClusterShards,
    ClusterKeySlot,
    ClusterCountKeysInSlot,
    ClusterGetKeysInSlot,
    ClusterLinks,
    ClusterHelp,
    ClusterAddSlots,
    ClusterAddSlotsRange,
    ClusterDelSlots,
    ClusterDelSlotsRange,
    ClusterSetConfigEpoch,
    ClusterMeet,
    ClusterForget,
    ClusterBumpEpoch,
    ClusterSaveConfig,
    ClusterReset,
    ClusterReplicate,
    ClusterReplicas,
    ClusterFailover,
    ClusterSetSlot,
    Asking,
    ReadOnly,
    // Moving keys to another server (crates/server/src/migrate).
    Migrate,
    ReadWrite,
    // Replication, the primary's side (crates/server/src/primary).
    ReplConf,
    Psync,
    Sync,
    Wait,
    Failover,
}

/// Every registration, family by family.
pub static TABLE: &[Registration] = &[
    Registration::server("ping", ServerCmd::Ping),
    Registration::server("echo", ServerCmd::Echo),
    Registration::server("quit", ServerCmd::Quit),
    Registration::server("reset", ServerCmd::Reset),
    Registration::server("hello", ServerCmd::Hello).redacting(redact_hello),
    Registration::server("select", ServerCmd::Select),
    Registration::server("client|id", ServerCmd::ClientId),
    Registration::server("client|setname", ServerCmd::ClientSetName),
    Registration::server("client|getname", ServerCmd::ClientGetName),
    Registration::server("client|info", ServerCmd::ClientInfo),
    Registration::server("client|list", ServerCmd::ClientList),
    Registration::server("client|setinfo", ServerCmd::ClientSetInfo),
    Registration::server("client|kill", ServerCmd::ClientKill),
    Registration::server("client|help", ServerCmd::ClientHelp),
    Registration::server("client|unblock", ServerCmd::ClientUnblock),
    Registration::server("client|pause", ServerCmd::ClientPause),
    Registration::server("client|unpause", ServerCmd::ClientUnpause),
    Registration::server("client|no-evict", ServerCmd::ClientNoEvict),
    Registration::server("command", ServerCmd::CommandAll),
    Registration::server("command|count", ServerCmd::CommandCount),
    Registration::server("command|info", ServerCmd::CommandInfo),
    Registration::server("command|docs", ServerCmd::CommandDocs),
    Registration::server("command|list", ServerCmd::CommandList),
    Registration::server("command|getkeys", ServerCmd::CommandGetKeys),
    Registration::server("command|getkeysandflags", ServerCmd::CommandGetKeysAndFlags),
    Registration::server("command|help", ServerCmd::CommandHelp),
    Registration::server("config|get", ServerCmd::ConfigGet),
    Registration::server("config|set", ServerCmd::ConfigSet).redacting(redact_config_set),
    Registration::server("config|resetstat", ServerCmd::ConfigResetStat),
    Registration::server("config|help", ServerCmd::ConfigHelp),
    Registration::server("info", ServerCmd::Info),
    Registration::server("time", ServerCmd::Time),
    Registration::server("shutdown", ServerCmd::Shutdown),
    Registration::server("scan", ServerCmd::Scan),
    Registration::server("randomkey", ServerCmd::RandomKey),
    Registration::server("function|flush", ServerCmd::FunctionFlush),
    Registration::server("multi", ServerCmd::Multi),
    Registration::server("exec", ServerCmd::Exec),
    Registration::server("discard", ServerCmd::Discard),
    Registration::server("watch", ServerCmd::Watch),
    Registration::server("unwatch", ServerCmd::Unwatch),
    Registration::server("subscribe", ServerCmd::Subscribe),
    Registration::server("unsubscribe", ServerCmd::Unsubscribe),
    Registration::server("psubscribe", ServerCmd::PSubscribe),
    Registration::server("punsubscribe", ServerCmd::PUnsubscribe),
    Registration::server("ssubscribe", ServerCmd::SSubscribe),
    Registration::server("sunsubscribe", ServerCmd::SUnsubscribe),
    Registration::server("publish", ServerCmd::Publish),
    Registration::server("spublish", ServerCmd::SPublish),
    Registration::server("pubsub|channels", ServerCmd::PubsubChannels),
    Registration::server("pubsub|numsub", ServerCmd::PubsubNumsub),
    Registration::server("pubsub|numpat", ServerCmd::PubsubNumpat),
    Registration::server("pubsub|shardchannels", ServerCmd::PubsubShardChannels),
    Registration::server("pubsub|shardnumsub", ServerCmd::PubsubShardNumsub),
    Registration::server("pubsub|help", ServerCmd::PubsubHelp),
    Registration::server("monitor", ServerCmd::Monitor),
    Registration::server("client|reply", ServerCmd::ClientReply),
    // Scripting: run by crates/server/src/script.
    Registration::server("eval", ServerCmd::Eval),
    Registration::server("evalsha", ServerCmd::EvalSha),
    Registration::server("eval_ro", ServerCmd::EvalRo),
    Registration::server("evalsha_ro", ServerCmd::EvalShaRo),
    Registration::server("fcall", ServerCmd::Fcall),
    Registration::server("fcall_ro", ServerCmd::FcallRo),
    Registration::server("script|load", ServerCmd::ScriptLoad),
    Registration::server("script|exists", ServerCmd::ScriptExists),
    Registration::server("script|flush", ServerCmd::ScriptFlush),
    Registration::server("script|kill", ServerCmd::ScriptKill),
    Registration::server("script|help", ServerCmd::ScriptHelp),
    Registration::server("function|load", ServerCmd::FunctionLoad),
    Registration::server("function|list", ServerCmd::FunctionList),
    Registration::server("function|delete", ServerCmd::FunctionDelete),
    Registration::server("function|dump", ServerCmd::FunctionDump),
    Registration::server("function|restore", ServerCmd::FunctionRestore),
    Registration::server("function|stats", ServerCmd::FunctionStats),
    Registration::server("function|kill", ServerCmd::FunctionKill),
    Registration::server("function|help", ServerCmd::FunctionHelp),
    Registration::server("client|tracking", ServerCmd::ClientTracking),
    Registration::server("client|caching", ServerCmd::ClientCaching),
    Registration::server("client|getredir", ServerCmd::ClientGetRedir),
    Registration::server("client|trackinginfo", ServerCmd::ClientTrackingInfo),
    Registration::server("auth", ServerCmd::Auth).redacting(redact_auth),
    Registration::server("acl|cat", ServerCmd::AclCat),
    Registration::server("acl|deluser", ServerCmd::AclDelUser),
    Registration::server("acl|dryrun", ServerCmd::AclDryRun),
    Registration::server("acl|genpass", ServerCmd::AclGenPass),
    Registration::server("acl|getuser", ServerCmd::AclGetUser),
    Registration::server("acl|help", ServerCmd::AclHelp),
    Registration::server("acl|list", ServerCmd::AclList),
    Registration::server("acl|load", ServerCmd::AclLoad),
    Registration::server("acl|log", ServerCmd::AclLog),
    Registration::server("acl|save", ServerCmd::AclSave),
    Registration::server("acl|setuser", ServerCmd::AclSetUser).redacting(redact_setuser),
    Registration::server("acl|users", ServerCmd::AclUsers),
    Registration::server("acl|whoami", ServerCmd::AclWhoami),
    Registration::server("config|rewrite", ServerCmd::ConfigRewrite),
    Registration::server("save", ServerCmd::Save),
    Registration::server("bgsave", ServerCmd::BgSave),
    Registration::server("bgrewriteaof", ServerCmd::BgRewriteAof),
    Registration::server("lastsave", ServerCmd::LastSave),
    Registration::server("debug", ServerCmd::Debug),
    Registration::server("replicaof", ServerCmd::ReplicaOf),
    Registration::server("slaveof", ServerCmd::ReplicaOf),
    Registration::server("role", ServerCmd::Role),
    Registration::server("replconf", ServerCmd::ReplConf),
    Registration::server("psync", ServerCmd::Psync),
    Registration::server("sync", ServerCmd::Sync),
    Registration::server("wait", ServerCmd::Wait),
    Registration::server("failover", ServerCmd::Failover),
    Registration::server("slowlog|get", ServerCmd::SlowlogGet),
    Registration::server("slowlog|len", ServerCmd::SlowlogLen),
    Registration::server("slowlog|reset", ServerCmd::SlowlogReset),
    Registration::server("slowlog|help", ServerCmd::SlowlogHelp),
    Registration::server("latency|doctor", ServerCmd::LatencyDoctor),
    Registration::server("latency|graph", ServerCmd::LatencyGraph),
    Registration::server("latency|history", ServerCmd::LatencyHistory),
    Registration::server("latency|latest", ServerCmd::LatencyLatest),
    Registration::server("latency|reset", ServerCmd::LatencyReset),
    Registration::server("latency|histogram", ServerCmd::LatencyHistogram),
    Registration::server("latency|help", ServerCmd::LatencyHelp),
    Registration::server("memory|stats", ServerCmd::MemoryStats),
    Registration::server("memory|doctor", ServerCmd::MemoryDoctor),
    Registration::server("memory|malloc-stats", ServerCmd::MemoryMallocStats),
    Registration::server("memory|purge", ServerCmd::MemoryPurge),
    Registration::server("cluster|info", ServerCmd::ClusterInfo),
    Registration::server("cluster|myid", ServerCmd::ClusterMyId),
    Registration::server("cluster|nodes", ServerCmd::ClusterNodes),
    Registration::server("cluster|slots", ServerCmd::ClusterSlots),
    Registration::server("cluster|shards", ServerCmd::ClusterShards),
    Registration::server("cluster|keyslot", ServerCmd::ClusterKeySlot),
    Registration::server("cluster|countkeysinslot", ServerCmd::ClusterCountKeysInSlot),
    Registration::server("cluster|getkeysinslot", ServerCmd::ClusterGetKeysInSlot),
    Registration::server("cluster|links", ServerCmd::ClusterLinks),
    Registration::server("cluster|help", ServerCmd::ClusterHelp),
    Registration::server("cluster|addslots", ServerCmd::ClusterAddSlots),
    Registration::server("cluster|addslotsrange", ServerCmd::ClusterAddSlotsRange),
    Registration::server("cluster|delslots", ServerCmd::ClusterDelSlots),
    Registration::server("cluster|delslotsrange", ServerCmd::ClusterDelSlotsRange),
    Registration::server("cluster|set-config-epoch", ServerCmd::ClusterSetConfigEpoch),
    Registration::server("cluster|meet", ServerCmd::ClusterMeet),
    Registration::server("cluster|forget", ServerCmd::ClusterForget),
    Registration::server("cluster|bumpepoch", ServerCmd::ClusterBumpEpoch),
    Registration::server("cluster|saveconfig", ServerCmd::ClusterSaveConfig),
    Registration::server("cluster|reset", ServerCmd::ClusterReset),
    Registration::server("cluster|replicate", ServerCmd::ClusterReplicate),
    Registration::server("cluster|replicas", ServerCmd::ClusterReplicas),
    Registration::server("cluster|slaves", ServerCmd::ClusterReplicas),
    Registration::server("cluster|failover", ServerCmd::ClusterFailover),
    Registration::server("cluster|setslot", ServerCmd::ClusterSetSlot),
    Registration::server("asking", ServerCmd::Asking),
    Registration::server("readonly", ServerCmd::ReadOnly),
    Registration::server("readwrite", ServerCmd::ReadWrite),
    Registration::server("migrate", ServerCmd::Migrate)
        .with_getkeys(crate::t_dump::migrate_keys)
        .redacting(crate::t_dump::redact_migrate),
];

/// AUTH: the password, and the user name given with it.
fn redact_auth(args: &[Bytes], out: &mut Vec<usize>) {
    out.extend(1..args.len());
}

/// HELLO: the user name and password after AUTH.
fn redact_hello(args: &[Bytes], out: &mut Vec<usize>) {
    let mut i = 2;
    while i < args.len() {
        if args[i].eq_ignore_ascii_case(b"auth") {
            out.extend((i + 1..i + 3).filter(|&j| j < args.len()));
            i += 3;
        } else {
            // SETNAME's name.
            i += 2;
        }
    }
}

/// ACL SETUSER: the user name and every rule (rules hold passwords).
fn redact_setuser(args: &[Bytes], out: &mut Vec<usize>) {
    out.extend(2..args.len());
}

/// CONFIG SET: the value of a parameter holding a secret.
fn redact_config_set(args: &[Bytes], out: &mut Vec<usize>) {
    const SECRETS: [&[u8]; 3] = [b"requirepass", b"masterauth", b"masteruser"];
    for i in (2..args.len()).step_by(2) {
        if SECRETS.iter().any(|s| args[i].eq_ignore_ascii_case(s)) && i + 1 < args.len() {
            out.push(i + 1);
        }
    }
}

/// The families' own lists.
pub static FAMILIES: &[&[Registration]] = &[
    crate::t_server::COMMANDS,
    crate::t_string::COMMANDS,
    crate::t_bitops::COMMANDS,
    crate::t_keys::COMMANDS,
    crate::t_dump::COMMANDS,
    crate::t_memory::COMMANDS,
    crate::t_hash::COMMANDS,
    crate::t_list::COMMANDS,
    crate::t_set::COMMANDS,
    crate::t_zset::COMMANDS,
    crate::t_sort::COMMANDS,
    crate::t_hll::COMMANDS,
    crate::t_geo::COMMANDS,
    crate::t_stream::COMMANDS,
];
