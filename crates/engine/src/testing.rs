//! Helpers for the engine's unit tests: run commands against a shard and compare replies.

use bytes::Bytes;
use shardis_resp::Reply;

use crate::command::{self, Exec};
use crate::shard::{Ctx, EngineConfig, Shard};

/// A shard with a hand-driven clock.
pub struct TestShard {
    pub shard: Shard,
    pub now_ms: u64,
    pub db: usize,
    /// The protocol of the commands' client.
    pub resp3: bool,
}

impl TestShard {
    pub fn new() -> Self {
        TestShard {
            shard: Shard::new(0, EngineConfig::default()),
            now_ms: 1_700_000_000_000,
            db: 0,
            resp3: false,
        }
    }

    /// Runs one command through the table (arity checks included) and returns its reply.
    pub fn run(&mut self, args: &[&str]) -> Reply {
        let args: Vec<Bytes> = args
            .iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect();
        self.run_bytes(&args)
    }

    pub fn run_bytes(&mut self, args: &[Bytes]) -> Reply {
        let cmd = match command::lookup(args) {
            Ok(c) => c,
            Err(e) => return e,
        };
        match cmd.exec {
            Exec::Shard(f) => crate::journal::execute(
                &mut Ctx::new(&mut self.shard, self.db, self.now_ms, self.resp3),
                f,
                args,
            ),
            Exec::Server(_) => panic!("{} runs in the server", cmd.name),
        }
    }

    pub fn advance(&mut self, ms: u64) {
        self.now_ms += ms;
    }

    /// Turns every keyspace notification on, `new` and `keymiss` included, and forgets the
    /// events reported so far.
    pub fn notify_all(&mut self) {
        use crate::notify::*;
        self.shard.notify_flags = ALL | KEYSPACE | KEYEVENT | NEW | KEY_MISS;
        self.shard.events.clear();
    }

    /// Runs a command and returns the events it reported (see [`TestShard::events`]).
    pub fn events_of(&mut self, args: &[&str]) -> Vec<String> {
        self.shard.events.clear();
        self.run(args);
        self.events()
    }

    /// Takes the events reported so far, each as `"<class letter> <event> <db>:<key>"`.
    pub fn events(&mut self) -> Vec<String> {
        std::mem::take(&mut self.shard.events)
            .into_iter()
            .map(|e| {
                let letter = crate::notify::flags_to_string(e.class);
                let key = String::from_utf8_lossy(&e.key);
                format!("{letter} {} {}:{key}", e.name, e.db)
            })
            .collect()
    }
}

pub fn bulk(s: &str) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

pub fn ok() -> Reply {
    Reply::Ok
}

pub fn err(s: &str) -> Reply {
    Reply::Error(s.to_string().into())
}

pub fn int(n: i64) -> Reply {
    Reply::Int(n)
}

pub fn arr(items: Vec<Reply>) -> Reply {
    Reply::Array(items)
}

pub fn bulks(items: &[&str]) -> Reply {
    Reply::Array(items.iter().map(|s| bulk(s)).collect())
}

/// A small deterministic generator for fuzz-style tests: a number below `n` per call.
pub fn xorshift(mut seed: u64) -> impl FnMut(u64) -> u64 {
    move |n| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    }
}
