//! The command sweep: every command and subcommand the server lists, with adversarial
//! argument lists (see the crate's documentation).

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::{check_health, preview, seed, REPLY_WAIT, RSS_LIMIT};
use crate::common::resp::{self, ReadError, Value};
use crate::common::{set_linger_zero, shard_of, Server, Watchdog};

/// Requests per pipelined window (each window starts from a freshly populated keyspace).
const WINDOW: usize = 64;

/// Time for the command sweep, from `SHARDIS_HOSTILE_SECS`.
fn sweep_budget() -> Duration {
    let secs = std::env::var("SHARDIS_HOSTILE_SECS")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(45u64);
    Duration::from_secs(secs)
}

/// A readable form of a request for failure messages (long arguments shortened).
fn describe(args: &[Vec<u8>]) -> String {
    args.iter()
        .map(|a| {
            if a.len() > 48 {
                format!(
                    "{:?}…({} bytes)",
                    String::from_utf8_lossy(&a[..24]),
                    a.len()
                )
            } else {
                format!("{:?}", String::from_utf8_lossy(a))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

// ------------------------------------------------------------------------------------------
// The command table, as the server describes it.
/// One argument of a command's COMMAND DOCS grammar.
#[derive(Clone, Debug, Default)]
struct ArgDoc {
    kind: String,
    token: Option<String>,
    optional: bool,
    multiple: bool,
    multiple_token: bool,
    children: Vec<ArgDoc>,
}

/// A command or subcommand to attack.
#[derive(Clone, Debug)]
struct Spec {
    /// `["GET"]`, or `["CLIENT", "KILL"]` for a subcommand.
    words: Vec<String>,
    arity: i64,
    blocking: bool,
    grammar: Vec<ArgDoc>,
    /// Words this command understands: its grammar's tokens, and for some commands the names
    /// they take (configuration parameters, command names).
    vocabulary: Vec<Vec<u8>>,
}

impl Spec {
    fn name(&self) -> String {
        self.words.join(" ").to_lowercase()
    }

    /// Arguments after the command's words that its arity asks for at least.
    fn min_args(&self) -> usize {
        (self.arity.unsigned_abs() as usize).saturating_sub(self.words.len())
    }
}

/// Commands the sweep does not send, and why: each would end the test itself rather than test
/// the server (the test checks them elsewhere or they have their own tests).
const SKIPPED: &[(&str, &str)] = &[
    (
        "shutdown",
        "stops the server under test (tests/server.rs covers it)",
    ),
    ("quit", "closes the connection by design"),
    ("monitor", "turns the connection into a feed"),
    ("subscribe", "turns the connection into a feed"),
    ("psubscribe", "turns the connection into a feed"),
    ("ssubscribe", "turns the connection into a feed"),
    (
        "unsubscribe",
        "answers once per channel named (tests/pubsub.rs covers it)",
    ),
    (
        "punsubscribe",
        "answers once per pattern named (tests/pubsub.rs covers it)",
    ),
    (
        "sunsubscribe",
        "answers once per channel named (tests/pubsub.rs covers it)",
    ),
    ("debug", "DEBUG can crash the server on purpose"),
    (
        "client reply",
        "changes how many replies the connection gets",
    ),
    (
        "client pause",
        "can pause every client for as long as it is told",
    ),
    ("replicaof", "would make the server a replica"),
    ("slaveof", "would make the server a replica"),
    ("failover", "replication control"),
    ("sync", "replication stream"),
    ("psync", "replication stream"),
    (
        "wait",
        "waits for replicas for as long as it is told (0: for ever, as Redis)",
    ),
];

fn text(v: &Value) -> String {
    v.text().unwrap_or_default()
}

/// Reads COMMAND and COMMAND DOCS into the list of commands and subcommands to attack.
fn command_table(conn: &mut resp::Conn) -> Vec<Spec> {
    let info = conn.call(&["COMMAND"]).expect("COMMAND");
    let docs = conn.call(&["COMMAND", "DOCS"]).expect("COMMAND DOCS");
    let docs = docs_map(&docs);
    let mut specs = Vec::new();
    for entry in info.items().expect("COMMAND is an array") {
        let fields = entry.items().expect("COMMAND entry is an array");
        let name = text(&fields[0]);
        let doc = docs.get(&name);
        specs.push(spec_of(vec![name.to_uppercase()], fields, doc));
        if let Some(subs) = fields.get(9).and_then(Value::items) {
            for sub in subs {
                let sub_fields = sub.items().expect("subcommand entry");
                let full = text(&sub_fields[0]);
                let sub_name = full.split('|').nth(1).unwrap_or_default().to_string();
                let sub_doc = doc.and_then(|d| d.subcommands.get(&sub_name));
                specs.push(spec_of(
                    vec![name.to_uppercase(), sub_name.to_uppercase()],
                    sub_fields,
                    sub_doc,
                ));
            }
        }
    }
    specs
}

/// One COMMAND DOCS entry: its argument grammar and its subcommands' entries.
#[derive(Default)]
struct Doc {
    arguments: Vec<ArgDoc>,
    subcommands: BTreeMap<String, Doc>,
}

fn docs_map(v: &Value) -> BTreeMap<String, Doc> {
    let mut out = BTreeMap::new();
    for (name, doc) in v.pairs().unwrap_or_default() {
        let mut entry = Doc::default();
        for (field, value) in doc.pairs().unwrap_or_default() {
            match text(field).as_str() {
                "arguments" => entry.arguments = arg_docs(value),
                "subcommands" => {
                    entry.subcommands = docs_map(value)
                        .into_iter()
                        .map(|(k, d)| (k.split('|').nth(1).unwrap_or(&k).to_string(), d))
                        .collect()
                }
                _ => {}
            }
        }
        out.insert(text(name), entry);
    }
    out
}

fn arg_docs(v: &Value) -> Vec<ArgDoc> {
    let mut out = Vec::new();
    for arg in v.items().unwrap_or_default() {
        let mut doc = ArgDoc::default();
        for (field, value) in arg.pairs().unwrap_or_default() {
            match text(field).as_str() {
                "type" => doc.kind = text(value),
                "token" => doc.token = Some(text(value)),
                "flags" => {
                    for flag in value.items().unwrap_or_default() {
                        match text(flag).as_str() {
                            "optional" => doc.optional = true,
                            "multiple" => doc.multiple = true,
                            "multiple_token" => doc.multiple_token = true,
                            _ => {}
                        }
                    }
                }
                "arguments" => doc.children = arg_docs(value),
                _ => {}
            }
        }
        out.push(doc);
    }
    out
}

fn spec_of(words: Vec<String>, fields: &[Value], doc: Option<&Doc>) -> Spec {
    let arity = match fields.get(1) {
        Some(Value::Int(n)) => *n,
        other => panic!("COMMAND arity of {words:?}: {other:?}"),
    };
    let blocking = fields
        .get(2)
        .and_then(Value::items)
        .is_some_and(|flags| flags.iter().any(|f| text(f) == "blocking"));
    let grammar = doc.map(|d| d.arguments.clone()).unwrap_or_default();
    let mut vocabulary = Vec::new();
    collect_tokens(&grammar, &mut vocabulary);
    // A container's own vocabulary: its subcommands' names.
    if let Some(d) = doc {
        vocabulary.extend(d.subcommands.keys().map(|k| k.to_uppercase().into_bytes()));
    }
    vocabulary.sort();
    vocabulary.dedup();
    Spec {
        words,
        arity,
        blocking,
        grammar,
        vocabulary,
    }
}

fn collect_tokens(args: &[ArgDoc], out: &mut Vec<Vec<u8>>) {
    for a in args {
        if let Some(t) = &a.token {
            out.push(t.clone().into_bytes());
        }
        collect_tokens(&a.children, out);
    }
}

// ------------------------------------------------------------------------------------------
// Adversarial arguments.

/// Integers at and past the edges of i64 and u64, and ordinary small ones. Sizes a correct
/// server may legitimately allocate (a SETBIT at 2^32-1 is a 512 MiB string in Redis too) are
/// left out on purpose: the test is about what must be refused or bounded.
const INTEGERS: &[&str] = &[
    "9223372036854775807",
    "-9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "-18446744073709551616",
    "99999999999999999999999999",
    "-1",
    "0",
    "1",
    "2",
    "3",
    "-2",
    "10",
    "100",
    "-100",
    "+1",
    "-0",
    "007",
    " 1",
    "1 ",
    "0x10",
    "1.0",
];

/// Floats: infinities, NaN, out-of-range exponents, and ordinary ones.
const FLOATS: &[&str] = &[
    "nan", "-nan", "NaN", "inf", "-inf", "+inf", "infinity", "1e400", "-1e400", "1e-400", "0.001",
    "0.01", "0.5", "-0.0", "1.5", "3.14159", "1e308", "-1e308", "0", "1", "-1", "1e", ".", "",
];

/// Glob patterns that are slow for naive matchers or malformed.
const GLOBS: &[&str] = &[
    "*a*a*a*a*a*a*a*a*a*a*b",
    "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b",
    "**************************************************b",
    "[[[[[[",
    "\\",
    "a\\",
    "[",
    "[^",
    "[a-",
    "[\\",
    "[]",
    "[!]",
    "[z-a]*",
    "?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*x",
    "*",
    "?",
    "*{foo}*",
    "",
];

/// Keys of both shards (hash tags `{foo}` and `{bar}` land on shards 0 and 1 of two), each
/// holding a value of a known type after [`populate`], plus keys that do not exist.
const TAGS: [&str; 2] = ["{foo}", "{bar}"];
const KEY_KINDS: &[&str] = &[
    "str", "int", "list", "hash", "set", "intset", "zset", "bigset", "bighash", "none",
];

/// What every window starts from: the connection reset, the keyspace emptied and filled with
/// one key of each type on each shard.
fn populate(big: &[u8]) -> Vec<Vec<Vec<u8>>> {
    let mut cmds: Vec<Vec<Vec<u8>>> = vec![vec![b"RESET".to_vec()], vec![b"FLUSHALL".to_vec()]];
    let mut c = |parts: Vec<&[u8]>| cmds.push(parts.into_iter().map(<[u8]>::to_vec).collect());
    for tag in TAGS {
        let k = |kind: &str| format!("{tag}{kind}").into_bytes();
        c(vec![b"SET", &k("str"), b"hello\r\nworld\x00\xff"]);
        c(vec![b"SET", &k("int"), b"42"]);
        c(vec![
            b"RPUSH",
            &k("list"),
            b"a",
            b"b",
            b"c",
            b"1",
            b"2",
            b"-3",
            b"",
        ]);
        c(vec![
            b"HSET",
            &k("hash"),
            b"f1",
            b"v1",
            b"f2",
            b"2",
            b"f3",
            b"3.5",
            b"",
            b"e",
        ]);
        c(vec![b"SADD", &k("set"), b"a", b"b", b"c", b"aaab"]);
        c(vec![
            b"SADD",
            &k("intset"),
            b"1",
            b"2",
            b"3",
            b"-9223372036854775808",
        ]);
        c(vec![
            b"ZADD",
            &k("zset"),
            b"-inf",
            b"a",
            b"0",
            b"b",
            b"1.5",
            b"c",
            b"inf",
            b"d",
            b"2",
            b"aaab",
        ]);
        c(vec![b"SADD", &k("bigset"), big, b"b", b"aaaa"]);
        c(vec![b"HSET", &k("bighash"), big, b"v", b"f", big]);
    }
    cmds
}

/// Where adversarial values come from; one per test, seeded.
struct Gen {
    rng: StdRng,
    /// 1 MiB of `a`: long enough for any size check, and the worst case for `*a*a*…b` globs.
    huge: Vec<u8>,
    /// 64 KiB of `a`.
    big: Vec<u8>,
}

impl Gen {
    fn new(seed: u64) -> Gen {
        Gen {
            rng: StdRng::seed_from_u64(seed),
            huge: vec![b'a'; 1 << 20],
            big: vec![b'a'; 64 << 10],
        }
    }

    fn pick(&mut self, from: &[&str]) -> Vec<u8> {
        from.choose(&mut self.rng)
            .map(|s| s.as_bytes().to_vec())
            .unwrap_or_default()
    }

    fn key(&mut self) -> Vec<u8> {
        if self.rng.gen_bool(0.05) {
            return b"untagged".to_vec();
        }
        let tag = TAGS[self.rng.gen_range(0..TAGS.len())];
        let kind = KEY_KINDS.choose(&mut self.rng).copied().unwrap_or("none");
        format!("{tag}{kind}").into_bytes()
    }

    fn string(&mut self) -> Vec<u8> {
        match self.rng.gen_range(0..100) {
            0 => self.huge.clone(),
            1..=4 => self.big.clone(),
            5..=24 => Vec::new(),
            25..=39 => (0..self.rng.gen_range(1..24))
                .map(|_| self.rng.gen::<u8>())
                .collect(),
            40..=49 => b"a\r\nb\x00".to_vec(),
            50..=59 => self.pick(INTEGERS),
            60..=69 => self.pick(FLOATS),
            _ => self.pick(&[
                "a", "b", "f1", "hello", "aaaa", "x", "-", "+", "(1", "[a", "0-0",
            ]),
        }
    }

    /// Any kind of value, for positions whose meaning the test ignores.
    fn any(&mut self, vocabulary: &[Vec<u8>]) -> Vec<u8> {
        match self.rng.gen_range(0..100) {
            0..=34 => self.key(),
            35..=54 => self.pick(INTEGERS),
            55..=64 => self.pick(FLOATS),
            65..=79 => self.string(),
            80..=87 => self.pick(GLOBS),
            _ => match vocabulary.choose(&mut self.rng) {
                Some(word) => word.clone(),
                None => self.pick(INTEGERS),
            },
        }
    }

    /// A value for an argument of COMMAND DOCS type `kind`.
    fn of_kind(&mut self, kind: &str, vocabulary: &[Vec<u8>]) -> Vec<u8> {
        match kind {
            "key" => self.key(),
            "integer" | "unix-time" => self.pick(INTEGERS),
            "double" => self.pick(FLOATS),
            "pattern" => self.pick(GLOBS),
            "string" if !vocabulary.is_empty() && self.rng.gen_bool(0.3) => vocabulary
                .choose(&mut self.rng)
                .cloned()
                .unwrap_or_default(),
            "string" => self.string(),
            _ => self.any(vocabulary),
        }
    }

    /// Arguments that follow `grammar`, with optional parts taken at random and repeated parts
    /// repeated up to 3 times.
    fn follow(&mut self, grammar: &[ArgDoc], vocabulary: &[Vec<u8>], out: &mut Vec<Vec<u8>>) {
        for arg in grammar {
            if arg.optional && self.rng.gen_bool(0.5) {
                continue;
            }
            let times = if arg.multiple {
                self.rng.gen_range(1..=3)
            } else {
                1
            };
            for i in 0..times {
                if let Some(token) = &arg.token {
                    if i == 0 || arg.multiple_token {
                        out.push(token.clone().into_bytes());
                    }
                }
                match arg.kind.as_str() {
                    "pure-token" => {}
                    "oneof" => {
                        if let Some(choice) = arg.children.choose(&mut self.rng) {
                            let choice = choice.clone();
                            self.follow(std::slice::from_ref(&choice), vocabulary, out);
                        }
                    }
                    "block" => {
                        let children = arg.children.clone();
                        self.follow(&children, vocabulary, out);
                    }
                    kind => out.push(self.of_kind(kind, vocabulary)),
                }
            }
        }
    }

    /// A request following `spec`'s grammar, then (often) damaged: an argument replaced,
    /// dropped, duplicated, or a keyword inserted.
    fn grammar_case(&mut self, spec: &Spec) -> Vec<Vec<u8>> {
        let mut args = Vec::new();
        self.follow(&spec.grammar, &spec.vocabulary, &mut args);
        if self.rng.gen_bool(0.5) {
            for _ in 0..self.rng.gen_range(1..=2) {
                let at = self.rng.gen_range(0..=args.len());
                match self.rng.gen_range(0..4) {
                    0 if at < args.len() => args[at] = self.any(&spec.vocabulary),
                    1 if at < args.len() => {
                        args.remove(at);
                    }
                    2 if at < args.len() => {
                        let dup = args[at].clone();
                        args.insert(at, dup);
                    }
                    _ => {
                        let word = self.any(&spec.vocabulary);
                        args.insert(at, word);
                    }
                }
            }
        }
        let mut request: Vec<Vec<u8>> = spec.words.iter().map(|w| w.clone().into_bytes()).collect();
        request.extend(args);
        request
    }

    /// A request with exactly `n` random arguments after the command's words.
    fn arity_case(&mut self, spec: &Spec, n: usize) -> Vec<Vec<u8>> {
        let mut request: Vec<Vec<u8>> = spec.words.iter().map(|w| w.clone().into_bytes()).collect();
        for _ in 0..n {
            let a = self.any(&spec.vocabulary);
            request.push(a);
        }
        request
    }
}

// ------------------------------------------------------------------------------------------
// Sending requests and checking replies.

/// A request and what may happen to its connection.
struct Case {
    args: Vec<Vec<u8>>,
    /// The request may close its own connection (CLIENT KILL).
    may_close: bool,
    /// The exact reply, when the test knows it (a wrong number of arguments).
    expect: Option<Value>,
}

/// Redis's reply to a request whose argument count does not fit the command's arity (checked
/// before anything else, in or out of MULTI).
fn arity_error(spec: &Spec, argc: usize) -> Option<Value> {
    let arity = spec.arity.unsigned_abs() as usize;
    let fits = if spec.arity >= 0 {
        argc == arity
    } else {
        argc >= arity
    };
    (!fits).then(|| {
        Value::Error(format!(
            "ERR wrong number of arguments for '{}' command",
            spec.words.join("|").to_lowercase()
        ))
    })
}

/// Whether an error reply has Redis's form: an upper-case code word, then the message.
fn well_formed_error(text: &str) -> bool {
    let code = text.split(' ').next().unwrap_or_default();
    !code.is_empty() && code.bytes().all(|b| b.is_ascii_uppercase())
}

/// The sweep's state: the server, its configuration to restore, the connection windows run on.
struct Sweep<'a> {
    server: &'a Server,
    dog: &'a Watchdog,
    conn: Option<resp::Conn>,
    /// CONFIG SET of every parameter CONFIG SET accepts, at its starting value.
    restore_config: Vec<Vec<Vec<u8>>>,
    /// Requests sent and replies checked.
    requests: u64,
    errors: u64,
    /// Connections closed by a request allowed to close them.
    closed: u64,
    /// Blocking requests still blocked when their connection was dropped.
    dropped_blocked: u64,
    /// Replies that differ from what the test knows they must be.
    wrong: Vec<String>,
}

impl Sweep<'_> {
    /// Checks a reply to `what` against what it must be, if known, and the form of errors.
    fn judge(&mut self, what: &str, reply: &Value, expect: Option<&Value>) {
        self.requests += 1;
        if let Value::Error(text) = reply {
            self.errors += 1;
            if !well_formed_error(text) {
                self.wrong.push(format!("{what}: malformed error {text:?}"));
            }
        }
        if let Some(want) = expect {
            if reply != want {
                self.wrong
                    .push(format!("{what}: {reply:?}, expected {want:?}"));
            }
        }
    }

    /// Sends `requests` as one pipeline (written by a thread of its own, so a big pipeline and
    /// big replies cannot deadlock on full socket buffers) and checks every reply. With
    /// `isolated`, the requests run on a connection of their own, which they may close.
    fn window(&mut self, setup: &[Vec<Vec<u8>>], cases: &[Case], isolated: bool) {
        let mut payload = Vec::new();
        // Each request: what it is, whether it may close the connection, its reply if known.
        let mut expected: Vec<(String, bool, Option<Value>)> = Vec::new();
        for req in setup {
            resp::push_command(&mut payload, req);
            let reset = req.first().is_some_and(|w| w == b"RESET");
            expected.push((
                describe(req),
                false,
                reset.then(|| Value::Simple("RESET".into())),
            ));
        }
        for case in cases {
            resp::push_command(&mut payload, &case.args);
            expected.push((describe(&case.args), case.may_close, case.expect.clone()));
            if case
                .args
                .first()
                .is_some_and(|w| w.eq_ignore_ascii_case(b"CONFIG"))
            {
                for restore in &self.restore_config {
                    resp::push_command(&mut payload, restore);
                    expected.push((
                        format!("(restoring) {}", describe(restore)),
                        false,
                        Some(Value::Simple("OK".into())),
                    ));
                }
            }
        }
        let port = self.server.port;
        let dog = self.dog;
        let mut own;
        let conn = if isolated {
            own = resp::Conn::connect(port).expect("connect");
            &mut own
        } else {
            self.conn
                .get_or_insert_with(|| resp::Conn::connect(port).expect("connect"))
        };
        let mut writer = conn.stream.try_clone().expect("clone socket");
        let summary = expected
            .iter()
            .skip(setup.len())
            .take(3)
            .map(|(d, _, _)| d.clone())
            .collect::<Vec<_>>()
            .join(" | ");
        dog.doing(format!("running requests {summary} …"));
        let mut replies = Vec::with_capacity(expected.len());
        let mut closed = false;

        std::thread::scope(|s| {
            s.spawn(move || {
                // A write failing means the server closed the connection: the reads say why.
                let _ = writer.write_all(&payload);
            });
            for (what, may_close, _) in &expected {
                match conn.read(REPLY_WAIT) {
                    Ok(v) => replies.push(v),
                    Err(ReadError::Closed) if *may_close => {
                        closed = true;
                        break;
                    }
                    Err(_) if dog.tripped() => panic!(
                        "server RSS passed {} MiB; the first request without a reply: {what}",
                        RSS_LIMIT >> 20
                    ),
                    Err(e) => {
                        panic!(
                            "request {what}: {e:?} (unread: {:?})",
                            preview(conn.unread())
                        );
                    }
                }
            }
            if closed || isolated {
                let _ = conn.stream.shutdown(std::net::Shutdown::Both);
            }
        });
        for ((what, _, expect), reply) in expected.iter().zip(&replies) {
            self.judge(what, reply, expect.as_ref());
        }
        if closed {
            self.closed += 1;
        }
        // A request that may close connections may close others than its own too.
        if closed || cases.iter().any(|c| c.may_close) {
            self.conn = None;
        }
        self.dog.check();
    }

    /// Blocking requests, each on a throwaway connection: those that still block after a short
    /// wait are dropped while blocked. Replies that do come must be well-formed.
    fn blocking(&mut self, setup: &[Vec<Vec<u8>>], cases: &[Case]) {
        self.window(setup, &[], false);
        self.dog.doing(format!(
            "running {} blocking requests, e.g. {}",
            cases.len(),
            cases.first().map(|c| describe(&c.args)).unwrap_or_default()
        ));
        let port = self.server.port;
        let mut conns: Vec<(resp::Conn, &Case)> = Vec::new();
        for case in cases {
            let mut c = resp::Conn::connect(port).expect("connect");
            c.send_command(&case.args).expect("send");
            conns.push((c, case));
        }
        let deadline = Instant::now() + Duration::from_millis(300);
        for (c, case) in &mut conns {
            let wait = deadline.saturating_duration_since(Instant::now());
            let what = describe(&case.args);
            match c.read(wait.max(Duration::from_millis(1))) {
                Ok(v) => self.judge(&what, &v, case.expect.as_ref()),
                Err(ReadError::Timeout) if c.unread().is_empty() => self.dropped_blocked += 1,
                Err(ReadError::Timeout) => match c.read(REPLY_WAIT) {
                    Ok(v) => self.judge(&what, &v, case.expect.as_ref()),
                    Err(e) => panic!("{what}: reply cut short: {e:?}"),
                },
                Err(e) => {
                    self.dog.check();
                    panic!("{}: {e:?}", describe(&case.args));
                }
            }
        }
        for (c, _) in conns.iter_mut().step_by(2) {
            // Half of the blocked connections are reset rather than closed.
            set_linger_zero(&c.stream);
        }
        drop(conns);
        self.dog.check();
    }
}

/// A CONFIG SET for every parameter CONFIG SET accepts, at its value now: what puts the
/// configuration back after a CONFIG SET case.
fn restore_requests(conn: &mut resp::Conn) -> Vec<Vec<Vec<u8>>> {
    let all = conn.call(&["CONFIG", "GET", "*"]).expect("CONFIG GET *");
    let mut requests = Vec::new();
    for (name, value) in all.pairs().expect("CONFIG GET pairs") {
        let request = vec![
            b"CONFIG".to_vec(),
            b"SET".to_vec(),
            name.bytes().unwrap_or_default().to_vec(),
            value.bytes().unwrap_or_default().to_vec(),
        ];
        if conn.call(&request).ok() == Some(Value::Simple("OK".into())) {
            requests.push(request);
        }
    }
    requests
}

#[test]
fn every_command_survives_adversarial_arguments() {
    let seed = seed("every_command_survives_adversarial_arguments");
    let started = Instant::now();
    let budget = sweep_budget();
    let server = Server::start(2, &[]);
    let dog = Watchdog::start(server.pid(), RSS_LIMIT);
    let mut gen = Gen::new(seed);
    assert_ne!(
        shard_of(format!("{}x", TAGS[0]).as_bytes(), 2),
        shard_of(format!("{}x", TAGS[1]).as_bytes(), 2),
        "the two key tags must land on different shards"
    );

    let mut control = server.resp();
    let specs = command_table(&mut control);
    let restore = restore_requests(&mut control);
    drop(control);
    let config_names: Vec<Vec<u8>> = restore.iter().map(|r| r[2].clone()).collect();
    let command_names: Vec<Vec<u8>> = specs
        .iter()
        .filter(|s| s.words.len() == 1)
        .map(|s| s.words[0].clone().into_bytes())
        .collect();
    let mut specs: Vec<Spec> = specs
        .into_iter()
        .filter(|s| !SKIPPED.iter().any(|(name, _)| *name == s.name()))
        .map(|mut s| {
            // Commands that take names get real ones to try.
            match s.words.first().map(String::as_str) {
                Some("CONFIG") => s.vocabulary.extend(config_names.iter().cloned()),
                Some("COMMAND") => s.vocabulary.extend(command_names.iter().cloned()),
                _ => {}
            }
            s
        })
        .collect();
    specs.sort_by_key(Spec::name);
    let skipped: Vec<&str> = SKIPPED.iter().map(|(n, _)| *n).collect();
    eprintln!(
        "  {} commands and subcommands to attack (skipped: {})",
        specs.len(),
        skipped.join(", ")
    );
    assert!(
        specs.len() > 150,
        "the command table looks short: {}",
        specs.len()
    );

    // Windows start from RESP2 or, one in three, from RESP3 (the replies' other encoding).
    let setup = populate(&gen.big.clone());
    let mut setup_resp3 = setup.clone();
    setup_resp3.insert(1, vec![b"HELLO".to_vec(), b"3".to_vec()]);
    let mut sweep = Sweep {
        server: &server,
        dog: &dog,
        conn: None,
        restore_config: restore,
        requests: 0,
        errors: 0,
        closed: 0,
        dropped_blocked: 0,
        wrong: Vec::new(),
    };
    let batches = (budget.as_secs() / 15).clamp(3, 1000) as usize;
    let batch_budget = budget / batches as u32;
    let mut grammar_cases = 4usize;
    let mut rss_after = Vec::new();
    for batch in 1..=batches {
        let batch_started = Instant::now();
        let requests_before = sweep.requests;
        let mut pending: Vec<Case> = Vec::new();
        for spec in &specs {
            let may_close = spec.name() == "client kill";
            let mut cases = Vec::new();
            let most = spec.min_args() + 3;
            for n in 0..=most {
                let args = gen.arity_case(spec, n);
                let expect = arity_error(spec, args.len());
                cases.push(Case {
                    args,
                    may_close,
                    expect,
                });
            }
            if !spec.grammar.is_empty() {
                for _ in 0..grammar_cases {
                    let args = if spec.name() == "command getkeys" {
                        // Key extraction of any command, without running it.
                        let mut args: Vec<Vec<u8>> = vec![b"COMMAND".to_vec(), b"GETKEYS".to_vec()];
                        let other = specs.choose(&mut gen.rng).unwrap_or(spec);
                        args.extend(gen.grammar_case(other));
                        args
                    } else {
                        gen.grammar_case(spec)
                    };
                    let expect = arity_error(spec, args.len());
                    cases.push(Case {
                        args,
                        may_close,
                        expect,
                    });
                }
            }
            let window_setup = if gen.rng.gen_bool(1.0 / 3.0) {
                &setup_resp3
            } else {
                &setup
            };
            if spec.blocking {
                for chunk in cases.chunks(64) {
                    sweep.blocking(window_setup, chunk);
                }
            } else if may_close {
                for case in &cases {
                    sweep.window(window_setup, std::slice::from_ref(case), true);
                }
            } else {
                // Consecutive commands share windows: fewer round trips per request.
                pending.extend(cases);
                if pending.len() >= WINDOW {
                    sweep.window(window_setup, &pending, false);
                    pending.clear();
                }
            }
        }
        if !pending.is_empty() {
            sweep.window(&setup, &pending, false);
            pending.clear();
        }
        sweep.conn = None;
        let took = batch_started.elapsed();
        let label = format!(
            "batch {batch}/{batches} ({} requests, {grammar_cases} grammar cases per command, {:.1} s)",
            sweep.requests - requests_before,
            took.as_secs_f64()
        );
        // Give the memory of the batch's keys back before measuring.
        let mut c = server.resp();
        assert_eq!(c.call(&["FLUSHALL"]).ok(), Some(Value::Simple("OK".into())));
        drop(c);
        rss_after.push(check_health(&server, &dog, &label, 0));
        // Size the next batch to its share of the time.
        let scale = batch_budget.as_secs_f64() / took.as_secs_f64().max(0.001);
        grammar_cases = ((grammar_cases as f64 * scale) as usize).clamp(1, 400);
        if started.elapsed() > budget * 2 {
            break;
        }
    }
    // Memory does not grow from batch to batch: a leak per request would show as a steady
    // climb, while the allocator's retained pages stay flat.
    let first = rss_after[0];
    let last = *rss_after.last().unwrap_or(&first);
    assert!(
        last <= first + first / 2 + (32 << 20),
        "RSS grew across batches: {:?} MiB",
        rss_after.iter().map(|r| r >> 20).collect::<Vec<_>>()
    );
    eprintln!(
        "  {} requests ({} error replies), {} connections closed by CLIENT KILL, {} blocked \
         connections dropped, peak RSS {} MiB, {:.1} s",
        sweep.requests,
        sweep.errors,
        sweep.closed,
        sweep.dropped_blocked,
        dog.peak() >> 20,
        started.elapsed().as_secs_f64()
    );
    assert!(
        sweep.wrong.is_empty(),
        "{} wrong replies, e.g.:\n{}",
        sweep.wrong.len(),
        sweep
            .wrong
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// SRANDMEMBER, HRANDFIELD and ZRANDMEMBER with a negative count return that many samples
/// with repetition. A count of -(2^63-1) would make the shard build a reply of 2^63 elements
/// (Redis 7.0 does, and runs out of memory); here it is refused with "ERR value is out of
/// range" once the samples could not fit in `proto-max-bulk-len`.
#[test]
fn random_sampling_with_an_absurd_count_is_refused() {
    let server = Server::start(2, &[]);
    let dog = Watchdog::start(server.pid(), RSS_LIMIT);
    let mut c = server.resp();
    assert_eq!(
        c.call(&["SADD", "s", "a", "b", "c"]).ok(),
        Some(Value::Int(3))
    );
    assert_eq!(
        c.call(&["HSET", "h", "a", "1", "b", "2"]).ok(),
        Some(Value::Int(2))
    );
    assert_eq!(c.call(&["ZADD", "z", "1", "a"]).ok(), Some(Value::Int(1)));
    for request in [
        ["ZRANDMEMBER", "z", "-9223372036854775807"],
        ["SRANDMEMBER", "s", "-9223372036854775807"],
        ["HRANDFIELD", "h", "-9223372036854775807"],
    ] {
        dog.doing(request.join(" "));
        match c.call(&request) {
            Ok(Value::Error(_)) => {}
            Err(_) if dog.tripped() => panic!(
                "{}: server RSS passed {} MiB",
                request.join(" "),
                RSS_LIMIT >> 20
            ),
            other => panic!("{}: {other:?}", request.join(" ")),
        }
    }
    check_health(&server, &dog, "absurd sample counts", 1);
}
