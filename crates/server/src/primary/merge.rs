//! The merge of every shard's journal into the one command stream a replica reads.
//!
//! Each shard reports, in its own order: its journal's commands (tagged with the transaction
//! over several shards they belong to, or not), the ends of its parts of transactions, the
//! moment it granted a transaction its lock (`Begin`), and markers. The stream must keep each
//! key's order (a key lives on one shard, so each shard's order of the commands that may
//! touch it) and give every transaction whole, between MULTI and EXEC.
//!
//! - An untagged command goes out at once, unless its shard saw the end of a transaction
//!   that has not gone out yet (its keys are free again, so the command may touch them): it
//!   then waits behind that transaction, in the shard's order.
//! - A transaction's commands are collected; it goes out once every participant reported
//!   its end and every transaction it depends on went out: those that had ended on one of
//!   its shards when it was granted that shard's lock (or, for a transaction of one shard,
//!   when its first command came). Locks are two-phase (every grant before any release), so
//!   these dependencies cannot form a cycle; transactions that held a shard together had
//!   disjoint keys and go out in either order.
//! - Keyless commands a transaction ran on every shard (FLUSHALL, SWAPDB…) go out once:
//!   every shard's part is cut at them and the parts are interleaved segment by segment.
//! - A `Mark` (the cut of a full sync, inside a transaction holding every shard) holds its
//!   shard like an end: the sync's offset is the point where that transaction goes out.
//! - A `Token` (WAIT) resolves once everything its shards reported before it went out, at
//!   the end of the last command out (PINGs and GETACKs after it are not writes to wait
//!   for). A token carrying a command (PUBLISH, see `attach`) sends it out there instead.
//! - `Fed` closes one of a shard's deliveries (what it copied in one go): it resolves the
//!   same way, for that shard alone, so a client's write is known to be out by the position
//!   of the delivery that carried it (WAIT's target, see `crate::primary::Woff`).

use std::collections::{HashMap, HashSet, VecDeque};

/// One command of the stream, encoded as RESP, with its database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cmd {
    pub db: u32,
    pub resp: Vec<u8>,
    /// A command without keys (run on every shard when it runs in a transaction).
    pub keyless: bool,
}

/// What a shard reports.
#[derive(Debug)]
pub enum Input {
    Cmd {
        tx: u64,
        cmd: Cmd,
    },
    End {
        tx: u64,
        participants: Vec<u32>,
    },
    Begin(u64),
    Mark {
        tx: u64,
        sync: u64,
    },
    Token(u64),
    /// The end of the shard's delivery of this sequence number.
    Fed(u64),
}

/// Something that happened at a point of the output.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolved {
    /// A full sync's cut: the stream after this point is the replica's.
    Sync(u64),
    /// A WAIT token: every write reported before it is before this point, less the given
    /// count of bytes that are not commands of a shard (PING, GETACK).
    Token(u64, usize),
    /// A shard's delivery (shard, sequence number) is out by this point, less the count of
    /// bytes that are not commands of a shard.
    Fed(u32, u64, usize),
}

#[derive(Default)]
struct Tx {
    /// Commands by shard, in each shard's order.
    parts: Vec<(u32, Vec<Cmd>)>,
    participants: Option<Vec<u32>>,
    ended: HashSet<u32>,
    begun: HashSet<u32>,
    deps: HashSet<u64>,
    syncs: Vec<u64>,
}

enum Waiting {
    Cmd(Cmd),
    Token(u64),
    Fed(u64),
}

#[derive(Default)]
struct Shard {
    /// Transactions whose end (or mark) this shard reported and that have not gone out.
    open: Vec<u64>,
    /// What waits behind them, in order, with the transactions it waits for.
    held: VecDeque<(Waiting, Vec<u64>)>,
}

/// The merge state.
pub struct Merger {
    shards: Vec<Shard>,
    txs: HashMap<u64, Tx>,
    /// Transactions that went out (removed once no shard refers to them).
    done: HashSet<u64>,
    /// Tokens: shards still to pass.
    tokens: HashMap<u64, usize>,
    /// Commands that go out when their token resolves.
    attached: HashMap<u64, Cmd>,
    /// Bytes added by `raw` since the last command.
    raw_since_cmd: usize,
    /// The database the stream's reader has selected (None: unknown, SELECT before the next).
    db: Option<u32>,
    /// The output not yet taken, and what happened along it (at byte positions).
    pub out: Vec<u8>,
    pub resolved: Vec<(usize, Resolved)>,
}

fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A command as RESP.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    resp(args)
}

impl Merger {
    pub fn new(shards: usize) -> Merger {
        Merger {
            shards: (0..shards).map(|_| Shard::default()).collect(),
            txs: HashMap::new(),
            done: HashSet::new(),
            tokens: HashMap::new(),
            attached: HashMap::new(),
            raw_since_cmd: 0,
            db: None,
            out: Vec::new(),
            resolved: Vec::new(),
        }
    }

    /// The next command is preceded by a SELECT (a replica starts reading here).
    pub fn forget_db(&mut self) {
        self.db = None;
    }

    /// Adds bytes that are not commands of a shard (PING, REPLCONF GETACK).
    pub fn raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
        self.raw_since_cmd += bytes.len();
    }

    /// Token `token` carries `cmd`: it goes out once every shard passed the token, after
    /// everything the shards reported before it (attached before any shard's token).
    pub fn attach(&mut self, token: u64, cmd: Cmd) {
        self.attached.insert(token, cmd);
    }

    /// One more shard passed `token`.
    fn pass(&mut self, token: u64) {
        let shards = self.shards.len();
        let left = self.tokens.entry(token).or_insert(shards);
        *left = left.saturating_sub(1);
        if *left == 0 {
            self.tokens.remove(&token);
            match self.attached.remove(&token) {
                Some(cmd) => self.emit(&cmd),
                None => self
                    .resolved
                    .push((self.out.len(), Resolved::Token(token, self.raw_since_cmd))),
            }
        }
    }

    fn emit(&mut self, cmd: &Cmd) {
        self.select(cmd.db);
        self.out.extend_from_slice(&cmd.resp);
        self.raw_since_cmd = 0;
    }

    /// Selects `db` for the commands that follow, unless it is selected already.
    fn select(&mut self, db: u32) {
        if self.db != Some(db) {
            let name = db.to_string();
            self.out.extend(resp(&[b"SELECT", name.as_bytes()]));
            self.db = Some(db);
        }
    }

    fn is_open(&self, tx: u64) -> bool {
        !self.done.contains(&tx)
    }

    /// Takes what shard `shard` reported.
    pub fn push(&mut self, shard: usize, input: Input) {
        if shard >= self.shards.len() {
            return;
        }
        let id = shard as u32;
        match input {
            Input::Cmd { tx: 0, cmd } => {
                let open = self.open_of(shard);
                if open.is_empty() && self.shards[shard].held.is_empty() {
                    self.emit(&cmd);
                } else {
                    self.shards[shard].held.push_back((Waiting::Cmd(cmd), open));
                }
            }
            Input::Cmd { tx, cmd } => {
                let open = self.open_of(shard);
                let t = self.txs.entry(tx).or_default();
                if !t.begun.contains(&id) && !t.parts.iter().any(|(s, _)| *s == id) {
                    t.deps.extend(open);
                }
                match t.parts.iter_mut().find(|(s, _)| *s == id) {
                    Some((_, cmds)) => cmds.push(cmd),
                    None => t.parts.push((id, vec![cmd])),
                }
            }
            Input::Begin(tx) => {
                let open = self.open_of(shard);
                let t = self.txs.entry(tx).or_default();
                t.begun.insert(id);
                t.deps.extend(open);
            }
            Input::End { tx, participants } => {
                let t = self.txs.entry(tx).or_default();
                t.ended.insert(id);
                t.participants = Some(participants);
                self.open(shard, tx);
            }
            Input::Mark { tx, sync } => {
                let t = self.txs.entry(tx).or_default();
                if !t.syncs.contains(&sync) {
                    t.syncs.push(sync);
                }
                self.open(shard, tx);
            }
            Input::Token(token) => {
                let shards = self.shards.len();
                let wait = self.before_token(shard);
                if wait.is_empty() && self.shards[shard].held.is_empty() {
                    self.pass(token);
                } else {
                    self.tokens.entry(token).or_insert(shards);
                    self.shards[shard]
                        .held
                        .push_back((Waiting::Token(token), wait));
                }
            }
            Input::Fed(seq) => {
                let wait = self.before_token(shard);
                if wait.is_empty() && self.shards[shard].held.is_empty() {
                    self.fed(id, seq);
                } else {
                    self.shards[shard].held.push_back((Waiting::Fed(seq), wait));
                }
            }
        }
        self.progress();
    }

    /// What a token of `shard` waits for: the transactions this shard ended that are not
    /// out, and those with commands of this shard not yet out.
    fn before_token(&mut self, shard: usize) -> Vec<u64> {
        let id = shard as u32;
        let mut wait = self.open_of(shard);
        wait.extend(
            self.txs
                .iter()
                .filter(|(_, t)| t.parts.iter().any(|(s, _)| *s == id))
                .map(|(tx, _)| *tx),
        );
        wait
    }

    fn fed(&mut self, shard: u32, seq: u64) {
        self.resolved.push((
            self.out.len(),
            Resolved::Fed(shard, seq, self.raw_since_cmd),
        ));
    }

    fn open(&mut self, shard: usize, tx: u64) {
        if self.is_open(tx) && !self.shards[shard].open.contains(&tx) {
            self.shards[shard].open.push(tx);
        }
    }

    fn open_of(&mut self, shard: usize) -> Vec<u64> {
        let done = &self.done;
        let s = &mut self.shards[shard];
        s.open.retain(|tx| !done.contains(tx));
        s.open.clone()
    }

    /// Sends out whatever can go, until nothing more can.
    fn progress(&mut self) {
        loop {
            let mut moved = false;
            for shard in 0..self.shards.len() {
                while let Some((_, deps)) = self.shards[shard].held.front() {
                    if deps.iter().any(|d| self.is_open(*d)) {
                        break;
                    }
                    let Some((w, _)) = self.shards[shard].held.pop_front() else {
                        break;
                    };
                    moved = true;
                    match w {
                        Waiting::Cmd(cmd) => self.emit(&cmd),
                        Waiting::Token(token) => self.pass(token),
                        Waiting::Fed(seq) => self.fed(shard as u32, seq),
                    }
                }
            }
            let ready: Vec<u64> = self
                .txs
                .iter()
                .filter(|(_, t)| {
                    t.participants
                        .as_ref()
                        .is_some_and(|p| p.iter().all(|s| t.ended.contains(s)))
                        && t.deps.iter().all(|d| !self.is_open(*d))
                })
                .map(|(tx, _)| *tx)
                .collect();
            for tx in ready {
                if let Some(t) = self.txs.remove(&tx) {
                    self.emit_tx(t);
                    self.done.insert(tx);
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
        // Forget transactions no shard waits for any more.
        if self.done.len() > 1024 {
            let referenced: HashSet<u64> = self
                .shards
                .iter()
                .flat_map(|s| {
                    s.open
                        .iter()
                        .copied()
                        .chain(s.held.iter().flat_map(|(_, d)| d.iter().copied()))
                })
                .chain(self.txs.values().flat_map(|t| t.deps.iter().copied()))
                .collect();
            self.done.retain(|tx| referenced.contains(tx));
            for s in &mut self.shards {
                let done = &self.done;
                s.open.retain(|tx| !done.contains(tx));
            }
        }
    }

    fn emit_tx(&mut self, mut t: Tx) {
        t.parts.sort_by_key(|(s, _)| *s);
        // Each shard's part cut at its keyless commands.
        let cut: Vec<Vec<Vec<Cmd>>> = t
            .parts
            .into_iter()
            .map(|(_, cmds)| {
                let mut segments = vec![Vec::new()];
                for c in cmds {
                    let keyless = c.keyless;
                    if let Some(last) = segments.last_mut() {
                        last.push(c);
                    }
                    if keyless {
                        segments.push(Vec::new());
                    }
                }
                segments
            })
            .collect();
        let aligned = cut.windows(2).all(|w| w[0].len() == w[1].len());
        let mut cmds: Vec<Cmd> = Vec::new();
        if aligned && cut.len() > 1 {
            let n = cut.first().map_or(0, Vec::len);
            for seg in 0..n {
                // Every part's commands up to the keyless one closing the segment, then that
                // one once.
                let mut closing = None;
                for part in &cut {
                    for c in &part[seg] {
                        if c.keyless {
                            closing.get_or_insert_with(|| c.clone());
                        } else {
                            cmds.push(c.clone());
                        }
                    }
                }
                cmds.extend(closing);
            }
        } else {
            cmds = cut.into_iter().flatten().flatten().collect();
        }
        let wrap = cmds.len() > 1;
        if wrap {
            // The SELECT goes before the MULTI, as in Redis's stream (MULTI is propagated in
            // the database of the transaction's first command).
            if let Some(first) = cmds.first() {
                self.select(first.db);
            }
            self.out.extend(resp(&[b"MULTI"]));
        }
        for c in &cmds {
            self.emit(c);
        }
        if wrap {
            self.out.extend(resp(&[b"EXEC"]));
        }
        for sync in &t.syncs {
            self.resolved.push((self.out.len(), Resolved::Sync(*sync)));
        }
        if !t.syncs.is_empty() {
            // A replica synced here has no database selected yet (Redis forgets the stream's
            // SELECT at every full sync too; the others get a harmless repeat).
            self.forget_db();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(s: &str) -> Cmd {
        let args: Vec<&[u8]> = s.split(' ').map(str::as_bytes).collect();
        Cmd {
            db: 0,
            resp: resp(&args),
            keyless: s.starts_with("FLUSHALL"),
        }
    }

    fn text(m: &mut Merger) -> String {
        let out = String::from_utf8(std::mem::take(&mut m.out)).unwrap();
        // Back to "CMD a b" lines for reading.
        let mut lines = Vec::new();
        let mut parts = out.split("\r\n").peekable();
        while let Some(p) = parts.next() {
            if let Some(n) = p.strip_prefix('*') {
                let n: usize = n.parse().unwrap();
                let mut words = Vec::new();
                for _ in 0..n {
                    parts.next();
                    words.push(parts.next().unwrap().to_string());
                }
                lines.push(words.join(" "));
            }
        }
        lines.join("; ")
    }

    fn end(tx: u64, parts: &[u32]) -> Input {
        Input::End {
            tx,
            participants: parts.to_vec(),
        }
    }

    #[test]
    fn untagged_commands_go_out_at_once() {
        let mut m = Merger::new(2);
        m.push(
            0,
            Input::Cmd {
                tx: 0,
                cmd: cmd("SET a 1"),
            },
        );
        m.push(
            1,
            Input::Cmd {
                tx: 0,
                cmd: cmd("SET b 1"),
            },
        );
        assert_eq!(text(&mut m), "SELECT 0; SET a 1; SET b 1");
    }

    #[test]
    fn a_transaction_goes_out_whole_once_every_shard_ended() {
        let mut m = Merger::new(2);
        m.push(0, Input::Begin(7));
        m.push(1, Input::Begin(7));
        m.push(
            1,
            Input::Cmd {
                tx: 7,
                cmd: cmd("SET b 1"),
            },
        );
        m.push(1, end(7, &[0, 1]));
        // Shard 1's later write waits behind the transaction.
        m.push(
            1,
            Input::Cmd {
                tx: 0,
                cmd: cmd("SET b 2"),
            },
        );
        m.push(
            0,
            Input::Cmd {
                tx: 0,
                cmd: cmd("SET x 1"),
            },
        );
        m.push(
            0,
            Input::Cmd {
                tx: 7,
                cmd: cmd("SET a 1"),
            },
        );
        assert_eq!(text(&mut m), "SELECT 0; SET x 1");
        m.push(0, end(7, &[0, 1]));
        assert_eq!(text(&mut m), "MULTI; SET a 1; SET b 1; EXEC; SET b 2");
    }

    #[test]
    fn concurrent_transactions_ending_in_opposite_orders_both_go_out() {
        let mut m = Merger::new(2);
        for s in 0..2 {
            m.push(s, Input::Begin(1));
            m.push(s, Input::Begin(2));
        }
        m.push(
            0,
            Input::Cmd {
                tx: 1,
                cmd: cmd("SET a 1"),
            },
        );
        m.push(
            0,
            Input::Cmd {
                tx: 2,
                cmd: cmd("SET c 1"),
            },
        );
        m.push(0, end(2, &[0, 1]));
        m.push(0, end(1, &[0, 1]));
        m.push(
            1,
            Input::Cmd {
                tx: 1,
                cmd: cmd("SET b 1"),
            },
        );
        m.push(1, end(1, &[0, 1]));
        m.push(
            1,
            Input::Cmd {
                tx: 2,
                cmd: cmd("SET d 1"),
            },
        );
        m.push(1, end(2, &[0, 1]));
        let out = text(&mut m);
        assert!(out.contains("SET a 1; SET b 1; EXEC"), "{out}");
        assert!(out.contains("SET c 1; SET d 1; EXEC"), "{out}");
        assert_eq!(out.matches("MULTI").count(), 2, "{out}");
    }

    #[test]
    fn a_later_transaction_waits_for_one_ended_before_its_grant() {
        let mut m = Merger::new(2);
        m.push(0, Input::Begin(1));
        m.push(1, Input::Begin(1));
        m.push(
            0,
            Input::Cmd {
                tx: 1,
                cmd: cmd("SET a 1"),
            },
        );
        m.push(0, end(1, &[0, 1]));
        // Transaction 2 takes shard 0 after 1 released it, and completes first.
        m.push(0, Input::Begin(2));
        m.push(
            0,
            Input::Cmd {
                tx: 2,
                cmd: cmd("SET a 2"),
            },
        );
        m.push(0, end(2, &[0]));
        assert_eq!(text(&mut m), "");
        m.push(1, end(1, &[0, 1]));
        assert_eq!(text(&mut m), "SELECT 0; SET a 1; SET a 2");
    }

    #[test]
    fn keyless_commands_of_every_shard_go_out_once_in_place() {
        let mut m = Merger::new(2);
        m.push(0, Input::Begin(3));
        m.push(1, Input::Begin(3));
        m.push(
            0,
            Input::Cmd {
                tx: 3,
                cmd: cmd("FLUSHALL"),
            },
        );
        m.push(
            0,
            Input::Cmd {
                tx: 3,
                cmd: cmd("SET a 1"),
            },
        );
        m.push(
            1,
            Input::Cmd {
                tx: 3,
                cmd: cmd("SET b 1"),
            },
        );
        m.push(
            1,
            Input::Cmd {
                tx: 3,
                cmd: cmd("FLUSHALL"),
            },
        );
        m.push(0, end(3, &[0, 1]));
        m.push(1, end(3, &[0, 1]));
        assert_eq!(
            text(&mut m),
            "SELECT 0; MULTI; SET b 1; FLUSHALL; SET a 1; EXEC"
        );
    }

    #[test]
    fn a_sync_resolves_where_its_cut_goes_out_and_tokens_after_earlier_writes() {
        let mut m = Merger::new(2);
        m.push(
            0,
            Input::Cmd {
                tx: 0,
                cmd: cmd("SET a 1"),
            },
        );
        for s in 0..2 {
            m.push(s, Input::Begin(9));
            m.push(s, Input::Mark { tx: 9, sync: 1 });
        }
        m.push(
            0,
            Input::Cmd {
                tx: 0,
                cmd: cmd("SET a 2"),
            },
        );
        assert_eq!(text(&mut m), "SELECT 0; SET a 1");
        m.push(0, end(9, &[0, 1]));
        m.push(1, Input::Token(5));
        m.push(1, end(9, &[0, 1]));
        assert_eq!(m.resolved, vec![(0, Resolved::Sync(1))]);
        m.push(0, Input::Token(5));
        // The replica synced at the cut has no database selected: SELECT first.
        let at = resp(&[b"SELECT", b"0"]).len() + cmd("SET a 2").resp.len();
        assert_eq!(m.resolved.last(), Some(&(at, Resolved::Token(5, 0))));
        assert_eq!(text(&mut m), "SELECT 0; SET a 2");
    }

    #[test]
    fn tokens_stop_at_the_last_command_and_carry_publish() {
        let mut m = Merger::new(2);
        m.push(
            0,
            Input::Cmd {
                tx: 0,
                cmd: cmd("SET a 1"),
            },
        );
        m.raw(&resp(&[b"PING"]));
        m.push(0, Input::Token(3));
        m.push(1, Input::Token(3));
        let ping = resp(&[b"PING"]).len();
        assert_eq!(
            m.resolved.last(),
            Some(&(m.out.len(), Resolved::Token(3, ping)))
        );
        // A PUBLISH waits behind a transaction ended on shard 1 and not yet out.
        m.push(1, Input::Begin(4));
        m.push(
            1,
            Input::Cmd {
                tx: 4,
                cmd: cmd("SET b 1"),
            },
        );
        m.push(1, end(4, &[0, 1]));
        m.attach(7, cmd("PUBLISH ch hi"));
        m.push(0, Input::Token(7));
        m.push(1, Input::Token(7));
        assert_eq!(text(&mut m), "SELECT 0; SET a 1; PING");
        m.push(
            0,
            Input::Cmd {
                tx: 4,
                cmd: cmd("SET c 1"),
            },
        );
        m.push(0, end(4, &[0, 1]));
        assert_eq!(text(&mut m), "MULTI; SET c 1; SET b 1; EXEC; PUBLISH ch hi");
        assert_eq!(m.resolved.len(), 1);
    }

    #[test]
    fn a_delivery_resolves_for_its_shard_alone_behind_what_it_waits_for() {
        let mut m = Merger::new(2);
        m.push(
            0,
            Input::Cmd {
                tx: 0,
                cmd: cmd("SET a 1"),
            },
        );
        m.push(0, Input::Fed(0));
        let first = cmd("SET a 1").resp.len() + resp(&[b"SELECT", b"0"]).len();
        assert_eq!(m.resolved, vec![(first, Resolved::Fed(0, 0, 0))]);
        // Shard 1 ended a transaction that waits for shard 0: its delivery waits too, and
        // resolves where the transaction went out, not where shard 0's later one did.
        m.push(1, Input::Begin(4));
        m.push(
            1,
            Input::Cmd {
                tx: 4,
                cmd: cmd("SET b 1"),
            },
        );
        m.push(1, end(4, &[0, 1]));
        m.push(1, Input::Fed(0));
        assert_eq!(m.resolved.len(), 1);
        m.push(
            0,
            Input::Cmd {
                tx: 4,
                cmd: cmd("SET c 1"),
            },
        );
        m.push(0, end(4, &[0, 1]));
        let out = m.out.len();
        assert_eq!(m.resolved.last(), Some(&(out, Resolved::Fed(1, 0, 0))));
        m.raw(&resp(&[b"PING"]));
        m.push(0, Input::Fed(1));
        let ping = resp(&[b"PING"]).len();
        assert_eq!(
            m.resolved.last(),
            Some(&(out + ping, Resolved::Fed(0, 1, ping)))
        );
    }
}
