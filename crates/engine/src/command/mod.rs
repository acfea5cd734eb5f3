//! The command table: one declarative list (see `table.rs`) joined with Redis's command facts
//! (see `facts.rs`), which drives arity checks, key extraction for routing, the split of
//! multi-shard commands, COMMAND output and ACL categories.

mod docs;
mod facts;
pub mod introspect;
#[cfg(test)]
mod robustness;
pub mod spec;
pub mod table;

use bytes::Bytes;
use shardis_resp::Reply;
use std::collections::HashMap;
use std::sync::LazyLock;

use crate::error;
use crate::shard::Ctx;
pub use spec::{Arg, BeginSearch, CommandFacts, FindKeys, KeySpec};
pub use table::Registration;
pub use table::ServerCmd;

/// A command over one shard's keyspace. `args[0]` is the command name; arguments are views
/// into the client's read buffer: copy what you store.
pub type ShardFn = fn(&mut Ctx<'_>, &[Bytes]) -> Reply;

/// Names the keys a command will read that its key specs cannot describe (SORT's BY/GET
/// patterns), by looking at the data on the shard of its first key.
pub type KeyFinder = fn(&mut Ctx<'_>, &[Bytes]) -> Vec<Bytes>;

/// Finds the key arguments of a command whose key specs are incomplete (Redis's
/// `getkeys_proc`), appending their indexes.
pub type GetKeys = fn(&[Bytes], &mut Vec<usize>);

/// The flags of a call's key whose key spec has `variable_flags` (Redis's `setGetKeys`,
/// `bitfieldGetKeys`): SET with GET reads the key, BITFIELD with only GETs does not write.
pub type KeyFlags = fn(&[Bytes]) -> &'static [&'static str];

/// Names the arguments of a call that hold secrets (passwords), appending their indexes: the
/// slow log shows them as `(redacted)`, as Redis does.
pub type Redact = fn(&[Bytes], &mut Vec<usize>);

/// How a blocking command waits when its first attempt finds nothing (Redis's blocking on
/// keys). The runtime waits on the keys [`Command::waited_key_indexes`] names; when one of them
/// is reported ready, the waiter is served if `ready` says so.
#[derive(Clone, Copy)]
pub struct Blocking {
    /// Whether and how long this call waits. Errors are the command's own.
    pub timeout: fn(&[Bytes]) -> Result<Wait, Reply>,
    /// Whether a waiter with these arguments can be served from `key` now (no side effects).
    pub ready: ReadyFn,
    /// Serves a waiter from `key`; a null reply keeps it waiting. None: run the command again.
    pub serve: Option<ServeFn>,
    /// Rewrites a waiter's arguments on its shard when it starts waiting, in the same step as
    /// the attempt that found nothing (XREAD's `$` becomes the stream's last ID).
    pub prepare: Option<PrepareFn>,
    /// What a client gets when the timeout passes.
    pub on_timeout: TimeoutReply,
}

/// See [`Blocking::ready`].
pub type ReadyFn = fn(&mut Ctx<'_>, &[Bytes], &[u8]) -> bool;
/// See [`Blocking::serve`].
pub type ServeFn = fn(&mut Ctx<'_>, &[Bytes], &[u8]) -> Reply;
/// See [`Blocking::prepare`].
pub type PrepareFn = fn(&mut Ctx<'_>, &[Bytes]) -> Vec<Bytes>;

/// How long a blocking command's call waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// It does not block at all (XREAD without BLOCK).
    Never,
    Forever,
    For(std::time::Duration),
}

/// The reply of a blocking command that timed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeoutReply {
    /// A null bulk string (BLMOVE, BRPOPLPUSH).
    Nil,
    /// A null array (BLPOP, BZPOPMIN, BLMPOP, XREAD…).
    NilArray,
}

impl TimeoutReply {
    pub fn reply(self) -> Reply {
        match self {
            TimeoutReply::Nil => Reply::Nil,
            TimeoutReply::NilArray => Reply::NilArray,
        }
    }
}

/// Where a command runs.
#[derive(Clone, Copy)]
pub enum Exec {
    /// On the shard that owns its keys (or on every shard, see [`Fanout`]).
    Shard(ShardFn),
    /// In the runtime: connection state, server state, or coordination across shards.
    Server(ServerCmd),
}

/// How a command whose keys live on several shards is carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fanout {
    /// The keys are used together: across shards the runtime runs the command under the
    /// shard lock over the keys' values gathered on one shard, then writes the results back.
    Gather,
    /// Every key (with its `step - 1` following arguments) is independent: run the command
    /// on each shard over its own keys, then merge the replies.
    Split(Merge),
    /// No keys, but touches all data: run on every shard and merge.
    AllShards(Merge),
    /// No keys and no data: run on the client's own shard.
    Local,
}

/// How per-shard replies are merged into one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Merge {
    /// Every shard answered `+OK`: answer `+OK`.
    Ok,
    /// Add the integer replies (DEL, EXISTS, DBSIZE).
    SumInt,
    /// One reply element per key, put back in the request's key order (MGET).
    ByKey,
    /// Concatenate the arrays (KEYS).
    Concat,
}

/// How a split command ([`Fanout::Split`]) whose keys are not laid out as `key [arg ...]`
/// runs (XREAD's `STREAMS k1 k2 id1 id2`): the runtime builds each shard's arguments with
/// `args`, checks every shard's part with `check` before running any (so that an error is the
/// one the whole call would give, and nothing has changed when it is sent), then merges the
/// replies with `merge` instead of the registration's [`Merge`].
/// `crate::t_stream::read::SPLIT_RULE` describes the steps in full.
#[derive(Clone, Copy)]
pub struct SplitRule {
    pub args: SplitArgs,
    pub check: SplitCheck,
    pub merge: SplitMerge,
}

/// The command limited to the keys at these argument indexes (ascending).
pub type SplitArgs = fn(&[Bytes], &[usize]) -> Vec<Bytes>;

/// Checks one shard's arguments without side effects; the error carries the index, among
/// those arguments' keys, of the key it is about.
pub type SplitCheck = fn(&mut Ctx<'_>, &[Bytes]) -> Result<(), (usize, Reply)>;

/// One shard's part of a split call: the argument indexes (in the full arguments) of its keys,
/// and its reply.
pub type ShardPart = (Vec<usize>, Reply);

/// Merges the shards' replies.
pub type SplitMerge = fn(&[Bytes], Vec<ShardPart>) -> Reply;

/// Command flags, from the facts, as a bit set for the hot path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags(u32);

impl Flags {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const FAST: u32 = 1 << 9;
    pub const NO_AUTH: u32 = 1 << 10;
    pub const NO_MULTI: u32 = 1 << 11;
    pub const ALLOW_BUSY: u32 = 1 << 12;
    pub const SKIP_MONITOR: u32 = 1 << 13;
    pub const SKIP_SLOWLOG: u32 = 1 << 14;
    pub const MAY_REPLICATE: u32 = 1 << 15;
    pub const NO_MANDATORY_KEYS: u32 = 1 << 16;
    pub const MOVABLE_KEYS: u32 = 1 << 17;
    /// Served in a slot being imported without ASKING first (RESTORE-ASKING).
    pub const ASKING: u32 = 1 << 18;

    fn from_names(names: &[&str]) -> Flags {
        let mut bits = 0;
        for name in names {
            bits |= match *name {
                "write" => Self::WRITE,
                "readonly" => Self::READONLY,
                "denyoom" => Self::DENYOOM,
                "admin" => Self::ADMIN,
                "pubsub" => Self::PUBSUB,
                "noscript" => Self::NOSCRIPT,
                "blocking" => Self::BLOCKING,
                "loading" => Self::LOADING,
                "stale" => Self::STALE,
                "fast" => Self::FAST,
                "no_auth" => Self::NO_AUTH,
                "no_multi" => Self::NO_MULTI,
                "allow_busy" => Self::ALLOW_BUSY,
                "skip_monitor" => Self::SKIP_MONITOR,
                "skip_slowlog" => Self::SKIP_SLOWLOG,
                "may_replicate" => Self::MAY_REPLICATE,
                "no_mandatory_keys" => Self::NO_MANDATORY_KEYS,
                "asking" => Self::ASKING,
                _ => 0,
            };
        }
        Flags(bits)
    }

    pub fn has(self, bit: u32) -> bool {
        self.0 & bit != 0
    }

    /// These flags with `bit` set (`on`) or cleared: a script's declared flags replace some
    /// of its command's (Redis's `scriptFlagsToCmdFlags`).
    pub fn set(self, bit: u32, on: bool) -> Flags {
        Flags(if on { self.0 | bit } else { self.0 & !bit })
    }
}

/// ACL categories in Redis's own order (COMMAND INFO lists them in this order).
pub const ACL_CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// One implemented command (or subcommand).
pub struct Command {
    /// Full name: `get`, or `client|list` for a subcommand.
    pub name: String,
    /// The command's place among every Redis 7.0 command ([`all_facts`]): ACL rules and
    /// per-command statistics index by it.
    pub id: usize,
    pub facts: &'static CommandFacts,
    pub exec: Exec,
    pub fanout: Fanout,
    pub flags: Flags,
    /// Explicit and implied ACL categories, in Redis's order.
    pub acl_categories: Vec<&'static str>,
    /// Subcommands, for containers (CLIENT, CONFIG, OBJECT…).
    pub subcommands: Vec<Command>,
    /// Redis's legacy (first, last, step) key range, for COMMAND INFO.
    pub legacy_range: (i64, i64, i64),
    /// Keys beyond the key specs, see [`KeyFinder`].
    pub key_finder: Option<KeyFinder>,
    /// Replaces the key specs for key extraction, see [`GetKeys`].
    pub getkeys: Option<GetKeys>,
    /// How the command blocks, for blocking commands.
    pub blocking: Option<Blocking>,
    /// Replaces the step-based split, see [`SplitRule`].
    pub split_rule: Option<SplitRule>,
    /// The arguments the slow log hides, see [`Redact`].
    pub redact: Option<Redact>,
    /// A call's key flags where its key spec says they vary, see [`KeyFlags`].
    pub key_flags: Option<KeyFlags>,
}

impl Command {
    /// True if the command may write.
    pub fn is_write(&self) -> bool {
        self.flags.has(Flags::WRITE)
    }

    /// Checks the argument count against the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let arity = self.facts.arity;
        if arity >= 0 {
            argc == arity as usize
        } else {
            argc >= (-arity) as usize
        }
    }

    /// The key at a fixed place that most commands name first (GET's, SET's, HGET's…), or
    /// None: a cheap guess for prefetching, not the command's key list ([`Self::key_indexes`]).
    pub fn leading_key<'a>(&self, args: &'a [Bytes]) -> Option<&'a [u8]> {
        let spec = self.facts.key_specs.first()?;
        match (spec.begin_search, spec.find_keys) {
            (spec::BeginSearch::Index(i), spec::FindKeys::Range { .. })
                if i > 0 && !spec.flags.contains(&"not_key") =>
            {
                args.get(i as usize).map(|k| &k[..])
            }
            _ => None,
        }
    }

    /// Appends the indexes of the key arguments of `args`. Returns false when the arguments
    /// contradict the key specs (such as a key count larger than the arguments).
    pub fn key_indexes(&self, args: &[Bytes], out: &mut Vec<usize>) -> bool {
        if let Some(getkeys) = self.getkeys {
            getkeys(args, out);
            return true;
        }
        for spec in self.facts.key_specs {
            if spec.flags.contains(&"not_key") {
                continue;
            }
            if !spec.find(args.len(), args, out) {
                return false;
            }
        }
        true
    }

    /// The key arguments of `args` with the flags of the key spec each one answers to
    /// (COMMAND GETKEYSANDFLAGS), or None as [`Command::key_indexes`]. A key is the first
    /// spec's that finds it; a key only a command's own extractor finds (SORT's STORE) is the
    /// last spec's that Redis leaves to the extractor (an unknown search). A spec whose flags
    /// vary with the call (`variable_flags`) gives the command's own answer.
    pub fn keys_and_flags(&self, args: &[Bytes]) -> Option<Vec<(usize, &'static [&'static str])>> {
        let mut keys = Vec::new();
        if !self.key_indexes(args, &mut keys) {
            return None;
        }
        let specs = self.facts.key_specs;
        let mut found = Vec::new();
        let flags_of = |i: usize, found: &mut Vec<usize>| {
            specs
                .iter()
                .filter(|s| !s.flags.contains(&"not_key"))
                .find(|s| {
                    found.clear();
                    s.find(args.len(), args, found) && found.contains(&i)
                })
                .or_else(|| {
                    specs
                        .iter()
                        .rev()
                        .find(|s| matches!(s.begin_search, BeginSearch::Unknown))
                })
                .map_or(&[][..], |s| match self.key_flags {
                    Some(vary) if s.flags.contains(&"variable_flags") => vary(args),
                    _ => s.flags,
                })
        };
        Some(
            keys.into_iter()
                .map(|i| (i, flags_of(i, &mut found)))
                .collect(),
        )
    }

    /// Appends the indexes of the keys the command may write: those of key specs that are not
    /// read-only (all keys, for a command with its own key extractor).
    pub fn written_key_indexes(&self, args: &[Bytes], out: &mut Vec<usize>) {
        if let Some(getkeys) = self.getkeys {
            return getkeys(args, out);
        }
        for spec in self.facts.key_specs {
            if !spec.flags.contains(&"ro") && !spec.flags.contains(&"not_key") {
                spec.find(args.len(), args, out);
            }
        }
    }

    /// Whether this call of a blocking command may wait (XREAD blocks only with BLOCK; a
    /// timeout the command rejects counts as waiting, so the blocking path reports it).
    pub fn may_block(&self, args: &[Bytes]) -> bool {
        self.blocking
            .is_some_and(|b| !matches!((b.timeout)(args), Ok(Wait::Never)))
    }

    /// Appends the indexes of the keys a blocking command waits on: the keys it takes values
    /// from (key specs flagged `delete`: BLMOVE waits on its source, not its destination), or
    /// every key of a command that only reads (XREAD).
    pub fn waited_key_indexes(&self, args: &[Bytes], out: &mut Vec<usize>) {
        let deletes = |s: &&KeySpec| s.flags.contains(&"delete");
        if !self.facts.key_specs.iter().any(|s| deletes(&s)) {
            self.key_indexes(args, out);
            return;
        }
        for spec in self.facts.key_specs.iter().filter(deletes) {
            spec.find(args.len(), args, out);
        }
    }

    /// The number of arguments that travel with each key when the command is split
    /// (MSET's key and value: 2).
    pub fn key_step(&self) -> usize {
        match self.facts.key_specs.first().map(|s| s.find_keys) {
            Some(FindKeys::Range { step, .. }) => step.max(1) as usize,
            _ => 1,
        }
    }
}

/// Every implemented command, by lower-case name.
pub struct Registry {
    commands: Vec<Command>,
    /// ahash: this lookup runs for every request.
    by_name: ahash::HashMap<&'static str, usize>,
}

/// The command table. Built once from constant data and never modified: it is code-like data,
/// not a shared map (every core reads the same immutable table).
pub static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::build);

/// Why a request could not be matched to a command.
pub fn lookup(args: &[Bytes]) -> Result<&'static Command, Reply> {
    REGISTRY.lookup(args)
}

/// [`lookup`], also naming the command a call with the wrong number of arguments was for
/// (Redis counts it among that command's rejected calls).
pub fn lookup_call(args: &[Bytes]) -> Result<&'static Command, (Option<&'static Command>, Reply)> {
    REGISTRY.lookup_call(args)
}

impl Registry {
    fn build() -> Registry {
        let facts: HashMap<(Option<&str>, &str), (usize, &'static CommandFacts)> = facts::FACTS
            .iter()
            .enumerate()
            .map(|(id, f)| ((f.container, f.name), (id, f)))
            .collect();
        let mut commands: Vec<Command> = Vec::new();
        let mut by_name = ahash::HashMap::default();
        for reg in table::TABLE
            .iter()
            .chain(table::FAMILIES.iter().flat_map(|f| f.iter()))
        {
            let (container, name) = match reg.name.split_once('|') {
                Some((c, n)) => (Some(c), n),
                None => (None, reg.name),
            };
            let Some(&(id, f)) = facts.get(&(container, name)) else {
                // A registration without facts is a bug in table.rs, caught by a unit test.
                continue;
            };
            let mut cmd = Command::new(reg.name.to_string(), id, f, reg.exec, reg.fanout);
            cmd.key_finder = reg.key_finder;
            cmd.getkeys = reg.getkeys;
            cmd.blocking = reg.blocking;
            cmd.split_rule = reg.split_rule;
            cmd.redact = reg.redact;
            cmd.key_flags = reg.key_flags;
            match container {
                None => {
                    by_name.insert(f.name, commands.len());
                    commands.push(cmd);
                }
                Some(parent) => {
                    let idx = match by_name.get(parent) {
                        Some(&i) => i,
                        None => {
                            let Some(&(pid, pf)) = facts.get(&(None, parent)) else {
                                continue;
                            };
                            by_name.insert(pf.name, commands.len());
                            commands.push(Command::new(
                                parent.to_string(),
                                pid,
                                pf,
                                Exec::Server(ServerCmd::Container),
                                Fanout::Local,
                            ));
                            commands.len() - 1
                        }
                    };
                    commands[idx].subcommands.push(cmd);
                }
            }
        }
        Registry { commands, by_name }
    }

    /// Every top-level command.
    pub fn commands(&self) -> &[Command] {
        &self.commands
    }

    /// The command with this (case-insensitive) name, subcommands as `container|sub`.
    pub fn get(&self, name: &[u8]) -> Option<&Command> {
        let lower = lowercase(name)?;
        let lower = std::str::from_utf8(&lower.0[..lower.1]).ok()?;
        match lower.split_once('|') {
            None => self.by_name.get(lower).map(|&i| &self.commands[i]),
            Some((c, sub)) => {
                let parent = &self.commands[*self.by_name.get(c)?];
                parent.subcommands.iter().find(|s| s.facts.name == sub)
            }
        }
    }

    /// Resolves a request to its command, checking subcommand and arity, with Redis's errors.
    pub fn lookup(&self, args: &[Bytes]) -> Result<&Command, Reply> {
        self.lookup_call(args).map_err(|(_, e)| e)
    }

    /// [`Registry::lookup`], with the command a wrong number of arguments was for.
    pub fn lookup_call(&self, args: &[Bytes]) -> Result<&Command, (Option<&Command>, Reply)> {
        let Some(name) = args.first() else {
            return Err((None, error::unknown_command(args)));
        };
        let cmd = match lowercase(name) {
            Some((buf, len)) => std::str::from_utf8(&buf[..len])
                .ok()
                .and_then(|n| self.by_name.get(n)),
            None => None,
        };
        let Some(&idx) = cmd else {
            return Err((None, error::unknown_command(args)));
        };
        let cmd = &self.commands[idx];
        if cmd.subcommands.is_empty() {
            if !cmd.arity_ok(args.len()) {
                return Err((Some(cmd), error::wrong_arity(&cmd.name)));
            }
            return Ok(cmd);
        }
        if args.len() < 2 {
            // A container that is a command of its own too (COMMAND lists every command).
            if !matches!(cmd.exec, Exec::Server(ServerCmd::Container)) && cmd.arity_ok(args.len()) {
                return Ok(cmd);
            }
            return Err((Some(cmd), error::wrong_arity(&cmd.name)));
        }
        let sub = cmd
            .subcommands
            .iter()
            .find(|s| args[1].eq_ignore_ascii_case(s.facts.name.as_bytes()));
        match sub {
            Some(sub) if sub.arity_ok(args.len()) => Ok(sub),
            Some(sub) => Err((Some(sub), error::wrong_arity(&sub.name))),
            None => Err((None, error::unknown_subcommand(&cmd.name, &args[1]))),
        }
    }
}

/// Lower-cases a command name into a stack buffer; None if it is too long to be a command.
fn lowercase(name: &[u8]) -> Option<([u8; 64], usize)> {
    if name.len() > 64 {
        return None;
    }
    let mut buf = [0u8; 64];
    for (d, s) in buf.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    Some((buf, name.len()))
}

impl Command {
    fn new(
        name: String,
        id: usize,
        facts: &'static CommandFacts,
        exec: Exec,
        fanout: Fanout,
    ) -> Command {
        let mut flags = Flags::from_names(facts.flags);
        let movable = facts.key_specs.iter().any(|s| {
            !matches!(s.begin_search, BeginSearch::Index(_))
                || !matches!(s.find_keys, FindKeys::Range { .. })
        });
        if movable {
            flags.0 |= Flags::MOVABLE_KEYS;
        }
        Command {
            legacy_range: legacy_range(facts),
            acl_categories: acl_categories(facts, flags),
            name,
            id,
            facts,
            exec,
            fanout,
            flags,
            subcommands: Vec::new(),
            key_finder: None,
            getkeys: None,
            blocking: None,
            split_rule: None,
            redact: None,
            key_flags: None,
        }
    }
}

/// Every Redis 7.0 command and subcommand Shardis knows the facts of, implemented or not (ACL
/// rules name commands by these; [`Command::id`] is a position in this list).
pub fn all_facts() -> &'static [CommandFacts] {
    facts::FACTS
}

/// The ACL categories of any known command, explicit and implied, in Redis's order.
pub fn categories_of(facts: &CommandFacts) -> Vec<&'static str> {
    acl_categories(facts, Flags::from_names(facts.flags))
}

/// Explicit categories plus those Redis implies from the flags (`setImplicitACLCategories`).
fn acl_categories(facts: &CommandFacts, flags: Flags) -> Vec<&'static str> {
    let mut set: Vec<&str> = facts.acl_categories.to_vec();
    if flags.has(Flags::WRITE) {
        set.push("write");
    }
    if flags.has(Flags::READONLY) && !set.contains(&"scripting") {
        set.push("read");
    }
    if flags.has(Flags::ADMIN) {
        set.push("admin");
        set.push("dangerous");
    }
    if flags.has(Flags::PUBSUB) {
        set.push("pubsub");
    }
    if flags.has(Flags::FAST) {
        set.push("fast");
    }
    if flags.has(Flags::BLOCKING) {
        set.push("blocking");
    }
    if !set.contains(&"fast") {
        set.push("slow");
    }
    ACL_CATEGORIES
        .iter()
        .copied()
        .filter(|c| set.contains(c))
        .collect()
}

/// Redis's legacy first/last/step: the union of the simple (index + range) key specs.
fn legacy_range(facts: &CommandFacts) -> (i64, i64, i64) {
    let mut first = 0i64;
    let mut last = 0i64;
    let mut step = 0i64;
    for spec in facts.key_specs {
        let (
            BeginSearch::Index(pos),
            FindKeys::Range {
                last_key,
                step: s,
                limit,
            },
        ) = (spec.begin_search, spec.find_keys)
        else {
            continue;
        };
        if limit > 1 {
            continue;
        }
        let pos = pos as i64;
        let spec_last = if last_key < 0 {
            last_key as i64
        } else {
            pos + last_key as i64
        };
        if first == 0 {
            first = pos;
            last = spec_last;
            step = s as i64;
        } else if pos == last + step.max(1) && (s as i64) == step && last >= 0 {
            last = spec_last;
        }
    }
    (first, last, step)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<Bytes> {
        v.iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    #[test]
    fn keys_carry_the_flags_of_their_key_spec() {
        let flags = |v: &[&str]| {
            let a = args(v);
            let cmd = REGISTRY.lookup(&a).expect("command");
            cmd.keys_and_flags(&a)
                .expect("keys")
                .into_iter()
                .map(|(i, f)| (v[i].to_string(), f.join(" ")))
                .collect::<Vec<_>>()
        };
        let pair = |k: &str, f: &str| (k.to_string(), f.to_string());
        assert_eq!(flags(&["set", "k1", "v"]), [pair("k1", "ow update")]);
        assert_eq!(
            flags(&["set", "k1", "v", "GET"]),
            [pair("k1", "rw access update")]
        );
        assert_eq!(
            flags(&["bitfield", "b", "get", "u8", "0", "overflow", "wrap"]),
            [pair("b", "ro access")]
        );
        assert_eq!(
            flags(&["bitfield", "b", "get", "u8", "0", "set", "u8", "0", "1"]),
            [pair("b", "rw access update")]
        );
        assert_eq!(
            flags(&["LMOVE", "k1", "k2", "left", "right"]),
            [pair("k1", "rw access delete"), pair("k2", "rw insert")]
        );
        // SORT's STORE key is found by SORT's own extractor.
        assert_eq!(
            flags(&["sort", "k1", "by", "x", "store", "k2"]),
            [pair("k1", "ro access"), pair("k2", "ow update")]
        );
        assert_eq!(
            flags(&["georadius", "g", "0", "0", "1", "km", "store", "d"]),
            [pair("g", "ro access"), pair("d", "ow update")]
        );
        assert_eq!(
            flags(&["xread", "count", "1", "streams", "s1", "s2", "0", "0"]),
            [pair("s1", "ro access"), pair("s2", "ro access")]
        );
        let a = args(&["eval", "return 1", "1"]);
        assert!(REGISTRY
            .lookup(&a)
            .expect("eval")
            .keys_and_flags(&a)
            .is_none());
    }

    #[test]
    fn every_registration_has_facts() {
        for reg in table::TABLE
            .iter()
            .chain(table::FAMILIES.iter().flat_map(|f| f.iter()))
        {
            assert!(
                REGISTRY.get(reg.name.as_bytes()).is_some(),
                "no facts for {}",
                reg.name
            );
        }
    }

    #[test]
    fn lookup_checks_arity_and_case() {
        assert!(lookup(&args(&["GeT", "k"])).is_ok());
        assert_eq!(
            lookup(&args(&["get"])).err(),
            Some(Reply::err(
                "ERR wrong number of arguments for 'get' command"
            ))
        );
        let unknown = lookup(&args(&["nosuch", "a", "b"])).err();
        assert_eq!(
            unknown,
            Some(Reply::error(
                "ERR unknown command 'nosuch', with args beginning with: 'a' 'b' ".into()
            ))
        );
    }

    #[test]
    fn command_alone_lists_commands_and_containers_need_a_subcommand() {
        let cmd = lookup(&args(&["COMMAND"])).expect("COMMAND alone is a command");
        assert!(matches!(cmd.exec, Exec::Server(ServerCmd::CommandAll)));
        assert_eq!(
            lookup(&args(&["client"])).err(),
            Some(Reply::err(
                "ERR wrong number of arguments for 'client' command"
            ))
        );
    }

    #[test]
    fn keys_follow_key_specs() {
        let mut out = Vec::new();
        let cmd = REGISTRY.get(b"mset").expect("mset");
        assert!(cmd.key_indexes(&args(&["mset", "a", "1", "b", "2"]), &mut out));
        assert_eq!(out, vec![1, 3]);
        assert_eq!(cmd.key_step(), 2);
    }

    #[test]
    fn the_leading_key_is_a_fixed_place_guess() {
        let lead = |words: &[&str]| {
            let a = args(words);
            let cmd = lookup(&a).expect("command");
            cmd.leading_key(&a).map(<[u8]>::to_vec)
        };
        assert_eq!(lead(&["get", "k"]), Some(b"k".to_vec()));
        assert_eq!(lead(&["hget", "h", "f"]), Some(b"h".to_vec()));
        assert_eq!(lead(&["mset", "a", "1", "b", "2"]), Some(b"a".to_vec()));
        // A key count first: no fixed place.
        assert_eq!(lead(&["eval", "return 1", "1", "k"]), None);
        assert_eq!(lead(&["ping"]), None);
    }
}
