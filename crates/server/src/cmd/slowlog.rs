//! SLOWLOG: the calls that took at least `slowlog-log-slower-than` microseconds. Each core
//! keeps the entries of its own clients (`core::calls`); ids come from one sequence, so the
//! merged log is ordered newest first by id and holds at most `slowlog-max-len` entries, as
//! Redis's one list does.

use bytes::Bytes;
use shardis_engine::ServerCmd;
use shardis_resp::Reply;

use super::help;
use crate::conn::session::Session;
use crate::core::calls::SlowEntry;

const COUNT_ERROR: &str = "ERR count should be greater than or equal to -1";

pub fn run_sync(which: ServerCmd) -> Option<Reply> {
    (which == ServerCmd::SlowlogHelp).then(|| {
        help(
            "SLOWLOG",
            &[
                "GET [<count>]",
                "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
                "    Entries are made of:",
                "    id, timestamp, time in microseconds, arguments array, client IP and port,",
                "    client name",
                "LEN",
                "    Return the length of the slowlog.",
                "RESET",
                "    Reset the slowlog.",
            ],
        )
    })
}

pub async fn run_async(s: &mut Session, which: ServerCmd, args: &[Bytes]) -> Option<Reply> {
    Some(match which {
        ServerCmd::SlowlogGet => {
            let count = match args.get(2) {
                None => 10,
                Some(a) => match shardis_engine::num::parse_i64(a) {
                    Some(-1) => usize::MAX,
                    Some(n) if n >= 0 => usize::try_from(n).unwrap_or(usize::MAX),
                    _ => return Some(Reply::err(COUNT_ERROR)),
                },
            };
            let entries = merged(s).await;
            Reply::Array(entries.into_iter().take(count).map(entry).collect())
        }
        ServerCmd::SlowlogLen => Reply::Int(merged(s).await.len() as i64),
        ServerCmd::SlowlogReset => {
            s.core
                .broadcast(|core| core.records.borrow_mut().slowlog.clear())
                .await;
            Reply::Ok
        }
        _ => return None,
    })
}

/// Every core's entries, newest first, at most `slowlog-max-len`.
async fn merged(s: &Session) -> Vec<SlowEntry> {
    let max = s.core.config.borrow().hot().slowlog_max_len;
    let mut all: Vec<SlowEntry> = s
        .core
        .broadcast(move |core| {
            core.records
                .borrow()
                .slowlog
                .iter()
                .take(max)
                .cloned()
                .collect::<Vec<_>>()
        })
        .await
        .into_iter()
        .flatten()
        .collect();
    all.sort_by_key(|e| std::cmp::Reverse(e.id));
    all.truncate(max);
    all
}

fn entry(e: SlowEntry) -> Reply {
    Reply::Array(vec![
        Reply::Int(e.id as i64),
        Reply::Int(e.time as i64),
        Reply::Int(e.micros as i64),
        Reply::Array(e.argv.into_iter().map(Reply::Bulk).collect()),
        Reply::Bulk(Bytes::from(e.addr)),
        Reply::Bulk(Bytes::from(e.name)),
    ])
}
