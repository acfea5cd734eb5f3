//! Hostile input over the network (issue 8): nothing a client sends may crash, exhaust or wedge
//! the server.
//!
//! Each test starts a real two-shard server and attacks it through TCP:
//! - every command the server lists (COMMAND, with every subcommand of container commands)
//!   gets adversarial argument lists: every arity from none to its arity + 3, argument lists
//!   that follow the command's COMMAND DOCS grammar with extreme values substituted, keys of
//!   both shards, extreme integers and floats, empty and 1 MiB strings, pathological globs;
//! - protocol abuse on raw sockets: bad multibulk and bulk headers, lines without newlines,
//!   unbalanced quotes, binary junk, requests cut short;
//! - connection storms: thousands of connections opened and dropped, resets in the middle of
//!   big replies.
//!
//! Every reply must be well-formed RESP (an error reply is fine), and after every batch the
//! server must answer PING on a fresh connection with its resident memory under
//! [`RSS_LIMIT`] (a watchdog kills the server and fails the test the moment it goes over, so a
//! runaway allocation cannot take the machine down). The random choices come from one seed,
//! printed at the start: `SHARDIS_HOSTILE_SEED=<seed>` replays a run, `SHARDIS_HOSTILE_SECS`
//! sets the time given to the command sweep (default 45 s, split over repeated batches).

mod common;

#[path = "hostile/protocol.rs"]
mod protocol;
#[path = "hostile/storms.rs"]
mod storms;
#[path = "hostile/sweep.rs"]
mod sweep;

use std::time::{Duration, Instant};

use common::{Server, Watchdog};

/// Resident memory the server may reach at any moment of these tests.
pub const RSS_LIMIT: u64 = 512 << 20;
/// How long one reply may take before the server counts as wedged (debug builds are slow).
pub const REPLY_WAIT: Duration = Duration::from_secs(30);

/// The run's seed, from `SHARDIS_HOSTILE_SEED` or the clock; printed for replay.
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("SHARDIS_HOSTILE_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("{test}: seed {seed} (SHARDIS_HOSTILE_SEED={seed} replays it)");
    seed
}

// ------------------------------------------------------------------------------------------
// Watching the server.

/// After a batch: the server answers PING on a fresh connection, its RSS is under the limit,
/// and the connections the batch dropped are gone (none leaked), within a few seconds.
pub fn check_health(server: &Server, dog: &Watchdog, batch: &str, clients_at_most: u64) -> u64 {
    dog.check();
    if let Err(e) = server.answers_ping(REPLY_WAIT) {
        dog.check();
        panic!("after {batch}: the server does not answer PING on a fresh connection: {e}");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let clients = server.info_number("connected_clients");
        // The INFO connection itself counts.
        if clients <= clients_at_most + 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after {batch}: {clients} clients still connected, expected at most {}",
            clients_at_most + 1
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let rss = server.rss().expect("server RSS");
    assert!(
        rss < RSS_LIMIT,
        "after {batch}: server RSS {} MiB",
        rss >> 20
    );
    eprintln!(
        "  {batch}: ok, RSS {} MiB (peak {} MiB)",
        rss >> 20,
        dog.peak() >> 20
    );
    rss
}

/// The start of `b` as text, for failure messages.
pub fn preview(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(200)]).into_owned()
}
