//! An ACL user: its flags, hashed passwords and selectors (the root one, applied directly, and
//! those added in parentheses), the rules of ACL SETUSER that change them, the permission check
//! a command goes through, and the descriptions ACL LIST and ACL GETUSER give.

use sha2::{Digest, Sha256};
use shardis_engine::command::ACL_CATEGORIES;

use super::commands::{category, Bits, UNIVERSE};

/// A SHA-256 digest of a password (Redis stores only these).
pub type PasswordHash = [u8; 32];

/// Why a rule was refused, with Redis's wording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleError {
    UnknownCommand,
    Syntax,
    KeyAfterAllKeys,
    ChannelAfterAllChannels,
    NoSuchPassword,
    BadHash,
    FirstArgOfSubcommand,
}

impl RuleError {
    pub fn message(self) -> &'static str {
        match self {
            RuleError::UnknownCommand => "Unknown command or category name in ACL",
            RuleError::Syntax => "Syntax error",
            RuleError::KeyAfterAllKeys => "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns",
            RuleError::ChannelAfterAllChannels => "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels",
            RuleError::NoSuchPassword => "The password you are trying to remove from the user does not exist",
            RuleError::BadHash => "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters",
            RuleError::FirstArgOfSubcommand => "Allowing first-arg of a subcommand is not supported",
        }
    }
}

/// A key pattern and the access it grants (`~` both, `%R~` read, `%W~` write).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPattern {
    pub pattern: Vec<u8>,
    pub read: bool,
    pub write: bool,
}

impl KeyPattern {
    fn describe(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(match (self.read, self.write) {
            (true, false) => b"%R~",
            (false, true) => b"%W~",
            _ => b"~",
        });
        out.extend_from_slice(&self.pattern);
    }
}

/// What a command does with a key, from its key spec's flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyAccess {
    pub read: bool,
    pub write: bool,
}

/// A set of permissions: commands, keys and channels. A user is allowed a command if any of
/// its selectors allows all of it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Selector {
    allowed: Bits,
    /// Every command, without looking at the bitmap (cleared by any command removed).
    all_commands: bool,
    /// `+@all` was given (and no `-@all` since): commands added later are allowed too. Decides
    /// whether the description starts from `+@all` or `-@all`.
    future: bool,
    /// For commands whose bit is clear: the first arguments that are allowed anyway
    /// (`+select|0`), per command id.
    first_args: Vec<(usize, Vec<Vec<u8>>)>,
    all_keys: bool,
    keys: Vec<KeyPattern>,
    all_channels: bool,
    channels: Vec<Vec<u8>>,
}

/// Why a command was denied, and the argument at fault for keys and channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Denial {
    Command,
    Key(usize),
    Channel(usize),
}

impl Denial {
    /// Redis's ranking when several selectors deny: a key beats the command, a channel beats
    /// a key, and among equals the later argument.
    fn rank(self) -> (u8, usize) {
        match self {
            Denial::Command => (0, 0),
            Denial::Key(i) => (1, i),
            Denial::Channel(i) => (2, i),
        }
    }
}

/// How a command names channels: which arguments, and whether they are patterns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channels {
    None,
    /// The first argument (PUBLISH, SPUBLISH).
    Publish,
    /// Every argument (SUBSCRIBE, SSUBSCRIBE).
    Subscribe,
    /// Every argument, each a pattern matched literally (PSUBSCRIBE).
    PatternSubscribe,
}

/// What a permission check needs to know about a command call.
pub struct Call<'a> {
    pub id: usize,
    pub no_auth: bool,
    pub args: &'a [bytes::Bytes],
    /// Key argument positions with their access.
    pub keys: &'a [(usize, KeyAccess)],
    pub channels: Channels,
}

impl Selector {
    fn new(all_channels: bool) -> Selector {
        Selector {
            all_channels,
            ..Selector::default()
        }
    }

    fn set_command(&mut self, id: usize, allow: bool) {
        self.allowed.set(id, allow);
        if !allow {
            self.all_commands = false;
        }
    }

    /// Allows or denies a command, and all its subcommands when it is a container.
    fn change_command(&mut self, id: usize, allow: bool) {
        self.set_command(id, allow);
        self.first_args.retain(|(c, _)| *c != id);
        if let Some(known) = UNIVERSE.get(id) {
            for &sub in &known.children {
                self.set_command(sub, allow);
            }
        }
    }

    fn change_category(&mut self, bit: u32, allow: bool) {
        let ids: Vec<usize> = UNIVERSE.in_category(bit).collect();
        for id in ids {
            self.change_command(id, allow);
        }
    }

    fn set_all_commands(&mut self, allow: bool) {
        self.allowed = if allow { Bits::ALL } else { Bits::default() };
        self.all_commands = allow;
        self.future = allow;
        self.first_args.clear();
    }

    fn add_first_arg(&mut self, id: usize, arg: &[u8]) {
        match self.first_args.iter_mut().find(|(c, _)| *c == id) {
            Some((_, args)) => {
                if !args.iter().any(|a| a.eq_ignore_ascii_case(arg)) {
                    args.push(arg.to_vec());
                }
            }
            None => self.first_args.push((id, vec![arg.to_vec()])),
        }
    }

    /// Applies one selector rule (`+get`, `~key*`, `&chan`, `allkeys`…).
    pub fn apply(&mut self, op: &[u8]) -> Result<(), RuleError> {
        let is = |word: &str| op.eq_ignore_ascii_case(word.as_bytes());
        if is("allkeys") || is("~*") {
            self.all_keys = true;
            self.keys.clear();
        } else if is("resetkeys") {
            self.all_keys = false;
            self.keys.clear();
        } else if is("allchannels") || is("&*") {
            self.all_channels = true;
            self.channels.clear();
        } else if is("resetchannels") {
            self.all_channels = false;
            self.channels.clear();
        } else if is("allcommands") || is("+@all") {
            self.set_all_commands(true);
        } else if is("nocommands") || is("-@all") {
            self.set_all_commands(false);
        } else if let Some(&first) = op.first().filter(|&&c| c == b'~' || c == b'%') {
            self.add_key_pattern(first, op)?;
        } else if let Some(pattern) = op.strip_prefix(b"&") {
            if self.all_channels {
                return Err(RuleError::ChannelAfterAllChannels);
            }
            if has_spaces(pattern) {
                return Err(RuleError::Syntax);
            }
            if !self.channels.iter().any(|c| c == pattern) {
                self.channels.push(pattern.to_vec());
            }
            self.all_channels = false;
        } else if let Some(bit_name) = op.strip_prefix(b"+@").or_else(|| op.strip_prefix(b"-@")) {
            let bit = category(bit_name).ok_or(RuleError::UnknownCommand)?;
            self.change_category(bit, op[0] == b'+');
        } else if let Some(name) = op.strip_prefix(b"+") {
            self.allow_command(name)?;
        } else if let Some(name) = op.strip_prefix(b"-") {
            let id = lookup_command(name).ok_or(RuleError::UnknownCommand)?;
            self.change_command(id, false);
        } else {
            return Err(RuleError::Syntax);
        }
        Ok(())
    }

    fn add_key_pattern(&mut self, first: u8, op: &[u8]) -> Result<(), RuleError> {
        if self.all_keys {
            return Err(RuleError::KeyAfterAllKeys);
        }
        let (mut read, mut write) = (true, true);
        let mut offset = 1;
        if first == b'%' {
            (read, write) = (false, false);
            while let Some(&c) = op.get(offset) {
                offset += 1;
                match c.to_ascii_uppercase() {
                    b'R' if !read => read = true,
                    b'W' if !write => write = true,
                    b'~' => break,
                    _ => return Err(RuleError::Syntax),
                }
            }
            if !read && !write {
                return Err(RuleError::Syntax);
            }
        }
        let pattern = op.get(offset..).unwrap_or_default();
        if has_spaces(pattern) {
            return Err(RuleError::Syntax);
        }
        match self.keys.iter_mut().find(|k| k.pattern == pattern) {
            Some(k) => {
                k.read |= read;
                k.write |= write;
            }
            None => self.keys.push(KeyPattern {
                pattern: pattern.to_vec(),
                read,
                write,
            }),
        }
        self.all_keys = false;
        Ok(())
    }

    /// `+name`: a command, a subcommand (`+config|get`), or a first argument of a command
    /// without subcommands (`+select|0`).
    fn allow_command(&mut self, name: &[u8]) -> Result<(), RuleError> {
        let Some(bar) = name.iter().rposition(|&c| c == b'|') else {
            let id = lookup_command(name).ok_or(RuleError::UnknownCommand)?;
            self.change_command(id, true);
            return Ok(());
        };
        let (base, sub) = (&name[..bar], &name[bar + 1..]);
        let id = lookup_command(base).ok_or(RuleError::UnknownCommand)?;
        let known = UNIVERSE.get(id).ok_or(RuleError::UnknownCommand)?;
        if known.parent.is_some() {
            return Err(RuleError::FirstArgOfSubcommand);
        }
        if sub.is_empty() {
            return Err(RuleError::Syntax);
        }
        if known.children.is_empty() {
            tracing::warn!(
                "Deprecation warning: Allowing a first arg of an otherwise blocked command is a misuse of ACL and may get disabled in the future (offender: +{})",
                String::from_utf8_lossy(name)
            );
            self.add_first_arg(id, sub);
        } else {
            let id = lookup_command(name).ok_or(RuleError::UnknownCommand)?;
            self.change_command(id, true);
        }
        Ok(())
    }

    fn allows_command(&self, call: &Call<'_>) -> bool {
        if self.all_commands || call.no_auth || self.allowed.get(call.id) {
            return true;
        }
        let is_sub = UNIVERSE.get(call.id).is_some_and(|k| k.parent.is_some());
        let Some(arg) = call.args.get(if is_sub { 2 } else { 1 }) else {
            return false;
        };
        self.first_args
            .iter()
            .find(|(c, _)| *c == call.id)
            .is_some_and(|(_, args)| args.iter().any(|a| a.eq_ignore_ascii_case(arg)))
    }

    /// Whether this selector lets `key` be used with `access`.
    pub fn allows_key(&self, key: &[u8], access: KeyAccess) -> bool {
        self.all_keys
            || self.keys.iter().any(|p| {
                (p.read || !access.read)
                    && (p.write || !access.write)
                    && shardis_engine::glob::matches(&p.pattern, key, false)
            })
    }

    /// Whether this selector lets `channel` be used; a pattern (PSUBSCRIBE) must equal one of
    /// the allowed patterns, a channel must match one.
    pub fn allows_channel(&self, channel: &[u8], is_pattern: bool) -> bool {
        self.all_channels
            || self.channels.iter().any(|p| {
                if is_pattern {
                    p == channel
                } else {
                    shardis_engine::glob::matches(p, channel, false)
                }
            })
    }

    fn check(&self, call: &Call<'_>) -> Result<(), Denial> {
        if !self.allows_command(call) {
            return Err(Denial::Command);
        }
        if !self.all_keys {
            for &(pos, access) in call.keys {
                let key = call.args.get(pos).map(|k| &k[..]).unwrap_or_default();
                if !self.allows_key(key, access) {
                    return Err(Denial::Key(pos));
                }
            }
        }
        if !self.all_channels {
            let (range, pattern) = match call.channels {
                Channels::None => return Ok(()),
                Channels::Publish => (1..call.args.len().min(2), false),
                Channels::Subscribe => (1..call.args.len(), false),
                Channels::PatternSubscribe => (1..call.args.len(), true),
            };
            for pos in range {
                if !self.allows_channel(&call.args[pos], pattern) {
                    return Err(Denial::Channel(pos));
                }
            }
        }
        Ok(())
    }

    /// Whether every key may be accessed as `access` (`~*`, `%R~*`… or allkeys).
    pub fn has_all_keys(&self, access: KeyAccess) -> bool {
        self.all_keys
            || self.keys.iter().any(|p| {
                p.pattern == b"*" && (p.read || !access.read) && (p.write || !access.write)
            })
    }

    /// The keys part of ACL GETUSER: `~*`, or the patterns separated by spaces.
    pub fn keys_text(&self) -> Vec<u8> {
        if self.all_keys {
            return b"~*".to_vec();
        }
        let mut out = Vec::new();
        for (i, k) in self.keys.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            k.describe(&mut out);
        }
        out
    }

    /// The channels part of ACL GETUSER.
    pub fn channels_text(&self) -> Vec<u8> {
        if self.all_channels {
            return b"&*".to_vec();
        }
        let mut out = Vec::new();
        for (i, c) in self.channels.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            out.push(b'&');
            out.extend_from_slice(c);
        }
        out
    }

    /// Every channel pattern this selector allows (None: all).
    pub fn channel_patterns(&self) -> Option<&[Vec<u8>]> {
        (!self.all_channels).then_some(&self.channels[..])
    }

    /// The command rules, in the form ACL SETUSER reads back: `+@all` or `-@all` first, then
    /// the categories that best describe the bitmap, then single commands and first
    /// arguments for the difference.
    pub fn commands_text(&self) -> String {
        let mut rules: Vec<String> = Vec::new();
        let additive = !self.future;
        let mut fake = Selector::default();
        fake.set_all_commands(!additive);
        rules.push(if additive { "-@all" } else { "+@all" }.to_string());
        // Categories, greedily: the one closest to the bitmap each round, until none has more
        // commands in common with the user than differences. `left` tracks what the chosen
        // categories have not accounted for yet.
        let mut left = self.clone();
        let mut applied = [false; 32];
        loop {
            let mut best: Option<(usize, usize, usize)> = None;
            for (i, _) in ACL_CATEGORIES.iter().enumerate() {
                if applied[i] {
                    continue;
                }
                let (mut on, mut off) = (0usize, 0usize);
                for id in UNIVERSE.in_category(1 << i) {
                    if left.allowed.get(id) {
                        on += 1;
                    } else {
                        off += 1;
                    }
                }
                let (diff, same) = if additive { (off, on) } else { (on, off) };
                let better = match best {
                    None => true,
                    Some((_, best_diff, best_same)) => {
                        diff < best_diff || (diff == best_diff && same > best_same)
                    }
                };
                if same > diff && better {
                    best = Some((i, diff, same));
                }
            }
            let Some((i, _, _)) = best else { break };
            fake.change_category(1 << i, additive);
            left.change_category(1 << i, !additive);
            rules.push(format!(
                "{}@{}",
                if additive { "+" } else { "-" },
                ACL_CATEGORIES[i]
            ));
            applied[i] = true;
        }
        // Then single commands, each container before its subcommands.
        for &id in &UNIVERSE.top {
            self.describe_single(id, &mut fake, &mut rules);
        }
        rules.join(" ")
    }

    fn describe_single(&self, id: usize, fake: &mut Selector, rules: &mut Vec<String>) {
        let Some(known) = UNIVERSE.get(id) else {
            return;
        };
        let mine = self.allowed.get(id);
        if mine != fake.allowed.get(id) {
            rules.push(format!("{}{}", if mine { "+" } else { "-" }, known.name));
            fake.change_command(id, mine);
        }
        for &sub in &known.children {
            self.describe_single(sub, fake, rules);
        }
        if !mine {
            if let Some((_, args)) = self.first_args.iter().find(|(c, _)| *c == id) {
                for a in args {
                    rules.push(format!("+{}|{}", known.name, String::from_utf8_lossy(a)));
                }
            }
        }
    }

    /// The whole selector as rules: keys, channels, commands.
    fn describe(&self, out: &mut Vec<u8>) {
        if self.all_keys {
            out.extend_from_slice(b"~* ");
        } else {
            for k in &self.keys {
                k.describe(out);
                out.push(b' ');
            }
        }
        if self.all_channels {
            out.extend_from_slice(b"&* ");
        } else {
            out.extend_from_slice(b"resetchannels ");
            for c in &self.channels {
                out.push(b'&');
                out.extend_from_slice(c);
                out.push(b' ');
            }
        }
        out.extend_from_slice(self.commands_text().as_bytes());
    }

    /// Allows everything, ignoring the bitmap (the default user's usual state).
    fn unrestricted(&self) -> bool {
        self.all_commands && self.all_keys && self.all_channels
    }
}

/// `sanitize-payload` / `skip-sanitize-payload`, when one was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sanitize {
    Yes,
    Skip,
}

/// One user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: Vec<u8>,
    pub enabled: bool,
    pub nopass: bool,
    pub sanitize: Option<Sanitize>,
    pub passwords: Vec<PasswordHash>,
    /// The root selector first, then those added in parentheses.
    pub selectors: Vec<Selector>,
    /// Every selector check can be skipped (kept in step with the rules).
    unrestricted: bool,
}

/// The SHA-256 digest of a password.
pub fn hash_password(clear: &[u8]) -> PasswordHash {
    Sha256::digest(clear).into()
}

/// Lower-case hex of a digest, as Redis shows and stores it.
pub fn hex(hash: &PasswordHash) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// A digest from its 64 lower-case hex characters.
fn parse_hex(text: &[u8]) -> Option<PasswordHash> {
    if text.len() != 64 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(text.chunks(2)) {
        *o = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// Compares digests in time independent of where they differ.
fn same_hash(a: &PasswordHash, b: &PasswordHash) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Whether a name or pattern holds whitespace or NUL (Redis refuses those).
pub fn has_spaces(s: &[u8]) -> bool {
    s.iter()
        .any(|&c| c.is_ascii_whitespace() || c == 0 || c == 0x0b)
}

/// A command by full name (`get`, `config|get`), as rules name them: a subcommand only
/// under a container, nothing deeper.
fn lookup_command(name: &[u8]) -> Option<usize> {
    let mut parts = name.split(|&c| c == b'|');
    let base = UNIVERSE.lookup(parts.next()?)?;
    match (parts.next(), parts.next()) {
        (None, _) => Some(base),
        (Some(sub), None) => {
            let known = UNIVERSE.get(base)?;
            known.children.iter().copied().find(|&id| {
                UNIVERSE.get(id).is_some_and(|k| {
                    k.name
                        .rsplit('|')
                        .next()
                        .is_some_and(|n| n.as_bytes().eq_ignore_ascii_case(sub))
                })
            })
        }
        _ => None,
    }
}

impl User {
    /// A new user as ACL SETUSER creates it: off, no password, no permissions.
    pub fn new(name: &[u8], all_channels_default: bool) -> User {
        User {
            name: name.to_vec(),
            enabled: false,
            nopass: false,
            sanitize: None,
            passwords: Vec::new(),
            selectors: vec![Selector::new(all_channels_default)],
            unrestricted: false,
        }
    }

    /// The default user of a fresh server: on, no password, everything allowed.
    pub fn default_user(all_channels_default: bool) -> User {
        let mut u = User::new(b"default", all_channels_default);
        for op in ["+@all", "~*", "&*", "on", "nopass"] {
            let _ = u.apply(op.as_bytes(), all_channels_default);
        }
        u
    }

    /// Applies one rule of ACL SETUSER. `all_channels_default` is `acl-pubsub-default`.
    pub fn apply(&mut self, op: &[u8], all_channels_default: bool) -> Result<(), RuleError> {
        let result = self.apply_inner(op, all_channels_default);
        self.unrestricted = self.selectors.iter().any(Selector::unrestricted);
        result
    }

    fn apply_inner(&mut self, op: &[u8], all_channels_default: bool) -> Result<(), RuleError> {
        let is = |word: &str| op.eq_ignore_ascii_case(word.as_bytes());
        if op.is_empty() {
            return Ok(());
        }
        if is("on") {
            self.enabled = true;
        } else if is("off") {
            self.enabled = false;
        } else if is("skip-sanitize-payload") {
            self.sanitize = Some(Sanitize::Skip);
        } else if is("sanitize-payload") {
            self.sanitize = Some(Sanitize::Yes);
        } else if is("nopass") {
            self.nopass = true;
            self.passwords.clear();
        } else if is("resetpass") {
            self.nopass = false;
            self.passwords.clear();
        } else if op[0] == b'>' || op[0] == b'#' {
            let hash = if op[0] == b'>' {
                hash_password(&op[1..])
            } else {
                parse_hex(&op[1..]).ok_or(RuleError::BadHash)?
            };
            if !self.passwords.contains(&hash) {
                self.passwords.push(hash);
            }
            self.nopass = false;
        } else if op[0] == b'<' || op[0] == b'!' {
            let hash = if op[0] == b'<' {
                hash_password(&op[1..])
            } else {
                parse_hex(&op[1..]).ok_or(RuleError::BadHash)?
            };
            let at = self
                .passwords
                .iter()
                .position(|p| *p == hash)
                .ok_or(RuleError::NoSuchPassword)?;
            self.passwords.remove(at);
        } else if op.len() > 1 && op[0] == b'(' && op[op.len() - 1] == b')' {
            let mut selector = Selector::new(all_channels_default);
            let inner = &op[1..op.len() - 1];
            for rule in split_args(inner).ok_or(RuleError::Syntax)? {
                selector.apply(&rule)?;
            }
            self.selectors.push(selector);
        } else if is("clearselectors") {
            self.selectors.truncate(1);
        } else if is("reset") {
            self.nopass = false;
            self.passwords.clear();
            let root = Selector::new(all_channels_default);
            self.selectors = vec![root];
            self.enabled = false;
            self.sanitize = Some(Sanitize::Yes);
        } else {
            let Some(root) = self.selectors.first_mut() else {
                return Err(RuleError::Syntax);
            };
            root.apply(op)?;
        }
        Ok(())
    }

    /// Whether `password` is one of this user's (always true for a `nopass` user). The
    /// digests are compared in constant time.
    pub fn password_matches(&self, password: &[u8]) -> bool {
        if self.nopass {
            return true;
        }
        let attempt = hash_password(password);
        self.passwords.iter().any(|p| same_hash(p, &attempt))
    }

    /// Whether the user may run everything without a look at the command.
    pub fn is_unrestricted(&self) -> bool {
        self.unrestricted
    }

    /// Whether some selector allows the whole call; otherwise the denial to report (among
    /// several, the one Redis reports).
    pub fn check(&self, call: &Call<'_>) -> Result<(), Denial> {
        if self.unrestricted {
            return Ok(());
        }
        let mut worst: Option<Denial> = None;
        for s in &self.selectors {
            match s.check(call) {
                Ok(()) => return Ok(()),
                Err(d) => {
                    if worst.is_none_or(|w| d.rank() > w.rank()) {
                        worst = Some(d);
                    }
                }
            }
        }
        Err(worst.unwrap_or(Denial::Command))
    }

    /// Whether some selector allows the key with this access.
    pub fn allows_key(&self, key: &[u8], access: KeyAccess) -> bool {
        self.unrestricted || self.selectors.iter().any(|s| s.allows_key(key, access))
    }

    /// Whether some selector allows the channel (a pattern matched literally).
    pub fn allows_channel(&self, channel: &[u8], is_pattern: bool) -> bool {
        self.unrestricted
            || self
                .selectors
                .iter()
                .any(|s| s.allows_channel(channel, is_pattern))
    }

    /// The flag names ACL GETUSER lists, in Redis's order.
    pub fn flag_names(&self) -> Vec<&'static str> {
        let mut out = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            out.push("nopass");
        }
        match self.sanitize {
            Some(Sanitize::Skip) => out.push("skip-sanitize-payload"),
            Some(Sanitize::Yes) => out.push("sanitize-payload"),
            None => {}
        }
        out
    }

    /// The user's rules as ACL LIST shows them (without `user <name> `).
    pub fn describe(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for f in self.flag_names() {
            out.extend_from_slice(f.as_bytes());
            out.push(b' ');
        }
        for p in &self.passwords {
            out.push(b'#');
            out.extend_from_slice(hex(p).as_bytes());
            out.push(b' ');
        }
        for (i, s) in self.selectors.iter().enumerate() {
            if i == 0 {
                s.describe(&mut out);
            } else {
                out.extend_from_slice(b" (");
                s.describe(&mut out);
                out.push(b')');
            }
        }
        out
    }

    /// Every channel pattern some selector allows; None if one allows all channels.
    pub fn channel_patterns(&self) -> Option<Vec<Vec<u8>>> {
        let mut all = Vec::new();
        for s in &self.selectors {
            all.extend_from_slice(s.channel_patterns()?);
        }
        Some(all)
    }
}

/// Splits rules the way Redis splits a selector's inside and config lines: spaces separate,
/// double quotes allow C escapes, single quotes allow `\'`; a closing quote must end the word.
/// None on unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while line.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
            i += 1;
        }
        let Some(&first) = line.get(i) else {
            return Some(out);
        };
        let mut word = Vec::new();
        match first {
            b'"' => {
                i += 1;
                loop {
                    match *line.get(i)? {
                        b'\\'
                            if line.get(i + 1) == Some(&b'x')
                                && hex_digit(line.get(i + 2)).is_some()
                                && hex_digit(line.get(i + 3)).is_some() =>
                        {
                            let hi = hex_digit(line.get(i + 2))?;
                            let lo = hex_digit(line.get(i + 3))?;
                            word.push(hi << 4 | lo);
                            i += 4;
                        }
                        b'\\' => {
                            let c = *line.get(i + 1)?;
                            word.push(match c {
                                b'n' => b'\n',
                                b'r' => b'\r',
                                b't' => b'\t',
                                b'b' => 0x08,
                                b'a' => 0x07,
                                other => other,
                            });
                            i += 2;
                        }
                        b'"' => {
                            i += 1;
                            if line.get(i).is_some_and(|c| !c.is_ascii_whitespace()) {
                                return None;
                            }
                            break;
                        }
                        c => {
                            word.push(c);
                            i += 1;
                        }
                    }
                }
            }
            b'\'' => {
                i += 1;
                loop {
                    match *line.get(i)? {
                        b'\\' if line.get(i + 1) == Some(&b'\'') => {
                            word.push(b'\'');
                            i += 2;
                        }
                        b'\'' => {
                            i += 1;
                            if line.get(i).is_some_and(|c| !c.is_ascii_whitespace()) {
                                return None;
                            }
                            break;
                        }
                        c => {
                            word.push(c);
                            i += 1;
                        }
                    }
                }
            }
            _ => {
                while let Some(&c) = line.get(i).filter(|c| !c.is_ascii_whitespace()) {
                    word.push(c);
                    i += 1;
                }
            }
        }
        out.push(word);
    }
}

fn hex_digit(c: Option<&u8>) -> Option<u8> {
    match *c? {
        c @ b'0'..=b'9' => Some(c - b'0'),
        c @ b'a'..=b'f' => Some(c - b'a' + 10),
        c @ b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(rules: &[&str]) -> User {
        let mut u = User::new(b"u", false);
        for r in rules {
            u.apply(r.as_bytes(), false).expect(r);
        }
        u
    }

    fn text(u: &User) -> String {
        String::from_utf8_lossy(&u.describe()).into_owned()
    }

    #[test]
    fn descriptions_read_like_redis() {
        assert_eq!(text(&User::new(b"foo", false)), "off resetchannels -@all");
        assert_eq!(text(&User::default_user(false)), "on nopass ~* &* +@all");
        let u = user(&["reset"]);
        assert_eq!(text(&u), "off sanitize-payload resetchannels -@all");
        let u = user(&[
            "on",
            ">p",
            "~a*",
            "%R~b*",
            "%W~c*",
            "%RW~d*",
            "&ch*",
            "+@string",
            "-get",
            "(+set ~x*)",
            "+select|0",
            "+client|list",
        ]);
        assert_eq!(
            text(&u),
            "on #148de9c5a7a44d19e56cd9ae1a554bf67847afb0c58f6e12fa29ac7ddfca9940 ~a* %R~b* %W~c* ~d* resetchannels &ch* -@all +@string +client|list -get +select|0 (~x* resetchannels -@all +set)"
        );
        assert_eq!(
            user(&["+@all", "-@dangerous"]).selectors[0].commands_text(),
            "+@all -@dangerous"
        );
        let u = user(&["%wr~b", "%R"]);
        assert_eq!(u.selectors[0].keys_text(), b"~b %R~".to_vec());
    }

    #[test]
    fn rule_errors_are_redis_errors() {
        let mut u = User::new(b"u", false);
        let err = |u: &mut User, op: &str| u.apply(op.as_bytes(), false).err();
        assert_eq!(err(&mut u, "%"), Some(RuleError::Syntax));
        assert_eq!(err(&mut u, "%RR~a"), Some(RuleError::Syntax));
        assert_eq!(err(&mut u, "+select|"), Some(RuleError::Syntax));
        assert_eq!(err(&mut u, "+config|"), Some(RuleError::Syntax));
        assert_eq!(
            err(&mut u, "+client|kill|x"),
            Some(RuleError::FirstArgOfSubcommand)
        );
        assert_eq!(err(&mut u, "-select|0"), Some(RuleError::UnknownCommand));
        assert_eq!(err(&mut u, "+nosuch"), Some(RuleError::UnknownCommand));
        assert_eq!(err(&mut u, "+@nosuch"), Some(RuleError::UnknownCommand));
        assert_eq!(err(&mut u, "(+get nosuch)"), Some(RuleError::Syntax));
        assert_eq!(err(&mut u, "<nope"), Some(RuleError::NoSuchPassword));
        assert_eq!(err(&mut u, "#abc"), Some(RuleError::BadHash));
        assert_eq!(err(&mut u, "allkeys"), None);
        assert_eq!(err(&mut u, "~a"), Some(RuleError::KeyAfterAllKeys));
        assert_eq!(err(&mut u, "&*"), None);
        assert_eq!(err(&mut u, "&a"), Some(RuleError::ChannelAfterAllChannels));
        assert_eq!(err(&mut u, "bogus"), Some(RuleError::Syntax));
    }

    #[test]
    fn passwords_are_hashed_and_checked() {
        let mut u = user(&[
            ">secret",
            "#5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8",
        ]);
        assert!(u.password_matches(b"secret"));
        assert!(u.password_matches(b"password"));
        assert!(!u.password_matches(b"nope"));
        assert_eq!(u.passwords.len(), 2);
        u.apply(b"<secret", false).expect("remove");
        assert!(!u.password_matches(b"secret"));
        u.apply(b"nopass", false).expect("nopass");
        assert!(u.password_matches(b"anything"));
        assert!(u.passwords.is_empty());
    }

    fn bytes(v: &[&str]) -> Vec<bytes::Bytes> {
        v.iter()
            .map(|s| bytes::Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    fn id(name: &str) -> usize {
        UNIVERSE.lookup(name.as_bytes()).expect(name)
    }

    #[test]
    fn commands_keys_and_channels_are_checked_per_selector() {
        let u = user(&["+get", "+set", "%R~r*", "(+set ~w*)", "&news.*"]);
        let get = bytes(&["get", "rkey"]);
        let read = KeyAccess {
            read: true,
            write: false,
        };
        let rw = KeyAccess {
            read: true,
            write: true,
        };
        let call = |args: &[bytes::Bytes], name: &str, keys: &[(usize, KeyAccess)]| {
            u.check(&Call {
                id: id(name),
                no_auth: false,
                args,
                keys,
                channels: Channels::None,
            })
        };
        assert_eq!(call(&get, "get", &[(1, read)]), Ok(()));
        let set_r = bytes(&["set", "rkey", "v"]);
        assert_eq!(call(&set_r, "set", &[(1, rw)]), Err(Denial::Key(1)));
        let set_w = bytes(&["set", "wkey", "v"]);
        assert_eq!(call(&set_w, "set", &[(1, rw)]), Ok(()));
        let del = bytes(&["del", "wkey"]);
        assert_eq!(call(&del, "del", &[]), Err(Denial::Command));
        let publish = bytes(&["publish", "news.x", "m"]);
        let p = |args: &[bytes::Bytes], channels| {
            u.check(&Call {
                id: id("get"),
                no_auth: false,
                args,
                keys: &[],
                channels,
            })
        };
        assert_eq!(p(&publish, Channels::Publish), Ok(()));
        let other = bytes(&["publish", "sport", "m"]);
        assert_eq!(p(&other, Channels::Publish), Err(Denial::Channel(1)));
        let psub = bytes(&["psubscribe", "news.*", "news.x"]);
        assert_eq!(
            p(&psub, Channels::PatternSubscribe),
            Err(Denial::Channel(2))
        );
    }

    #[test]
    fn first_args_and_subcommands() {
        let u = user(&["+select|0", "+config|get"]);
        let call = |args: &[bytes::Bytes], name: &str| {
            u.check(&Call {
                id: id(name),
                no_auth: false,
                args,
                keys: &[],
                channels: Channels::None,
            })
        };
        assert_eq!(call(&bytes(&["select", "0"]), "select"), Ok(()));
        assert_eq!(
            call(&bytes(&["select", "1"]), "select"),
            Err(Denial::Command)
        );
        assert_eq!(call(&bytes(&["config", "get", "x"]), "config|get"), Ok(()));
        assert_eq!(
            call(&bytes(&["config", "set", "x", "y"]), "config|set"),
            Err(Denial::Command)
        );
    }

    #[test]
    fn splitting_follows_redis_quoting() {
        assert_eq!(
            split_args(br#"a "b c" 'd\'e' "\x41\n""#),
            Some(vec![
                b"a".to_vec(),
                b"b c".to_vec(),
                b"d'e".to_vec(),
                b"A\n".to_vec()
            ])
        );
        assert_eq!(split_args(br#""ab"c"#), None);
        assert_eq!(split_args(b"\"ab"), None);
    }
}
