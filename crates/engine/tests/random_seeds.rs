//! The dicts under random per-process hash seeds, as the server runs them
//! (`dict::seed_hashers` at start-up): SCAN's guarantee, random sampling and the sets' and
//! hashes' commands must not depend on the seeds. Its own test binary, so its own process:
//! the seeds are set before any dict exists. A failure prints the seeds to reproduce it.

use std::collections::HashSet;
use std::sync::LazyLock;

use bytes::Bytes;
use shardis_engine::dict::{self, Dict};
use shardis_engine::{Ctx, EngineConfig, Exec, Shard};
use shardis_resp::Reply;

/// Seeds every test of this binary runs under, set before any dict is used.
static SEEDS: LazyLock<[u64; 4]> = LazyLock::new(|| {
    let seeds: [u64; 4] = rand::random();
    assert!(
        dict::seed_hashers(seeds),
        "the hasher was fixed before seeding"
    );
    eprintln!("hash seeds: {seeds:#x?}");
    seeds
});

fn run(shard: &mut Shard, args: &[&str]) -> Reply {
    let args: Vec<Bytes> = args
        .iter()
        .map(|a| Bytes::copy_from_slice(a.as_bytes()))
        .collect();
    match shardis_engine::lookup(&args) {
        Ok(cmd) => match cmd.exec {
            Exec::Shard(f) => f(&mut Ctx::new(shard, 0, 0, false), &args),
            Exec::Server(_) => panic!("{} runs in the server", cmd.name),
        },
        Err(e) => e,
    }
}

fn bulks(reply: Reply) -> Vec<Bytes> {
    match reply {
        Reply::Array(items) | Reply::Set(items) => items
            .into_iter()
            .map(|r| match r {
                Reply::Bulk(b) => b,
                other => panic!("not a bulk: {other:?}"),
            })
            .collect(),
        other => panic!("not an array: {other:?}"),
    }
}

#[test]
fn seeds_are_set_once() {
    let seeds = *SEEDS;
    assert!(!dict::seed_hashers(seeds));
    assert!(!dict::seed_hashers(dict::DEFAULT_SEEDS));
}

#[test]
fn scan_returns_every_element_present_throughout() {
    let seeds = *SEEDS;
    let mut d: Dict<u64, ()> = Dict::new();
    for k in 0..2000 {
        d.insert(k, ());
    }
    let (mut seen, mut cursor) = (HashSet::new(), 0);
    // Grow (3 000 keys more) and shrink (the 1 000 above 999 gone) in the first calls: the
    // keys below 1 000 stay for the whole scan.
    for step in 0..100_000u64 {
        cursor = d.scan(cursor, |k, _| {
            seen.insert(*k);
        });
        match step {
            0..6 => {
                for k in 0..500 {
                    d.insert(10_000 + step * 1000 + k, ());
                }
            }
            6..16 => {
                for k in (1000 + step - 6..2000).step_by(10) {
                    d.remove(&k);
                }
            }
            _ => {}
        }
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(cursor, 0, "the scan did not end");
    let missing: Vec<u64> = (0..1000).filter(|k| !seen.contains(k)).collect();
    assert!(missing.is_empty(), "seeds {seeds:#x?}: missing {missing:?}");
}

#[test]
fn set_and_hash_commands_sample_and_scan_whole() {
    let seeds = *SEEDS;
    let mut shard = Shard::new(0, EngineConfig::default());
    let members: Vec<String> = (0..1000).map(|i| format!("member:{i}")).collect();
    for chunk in members.chunks(100) {
        let mut sadd = vec!["sadd", "s"];
        let mut hset = vec!["hset", "h"];
        for m in chunk {
            sadd.push(m);
            hset.extend([m.as_str(), "v"]);
        }
        run(&mut shard, &sadd);
        run(&mut shard, &hset);
    }
    let all: HashSet<Bytes> = members
        .iter()
        .map(|m| Bytes::copy_from_slice(m.as_bytes()))
        .collect();

    // Distinct members for a positive count, repeats allowed for a negative one.
    let picked = bulks(run(&mut shard, &["srandmember", "s", "300"]));
    let distinct: HashSet<Bytes> = picked.iter().cloned().collect();
    assert_eq!((picked.len(), distinct.len()), (300, 300), "{seeds:#x?}");
    assert!(distinct.is_subset(&all));
    let picked = bulks(run(&mut shard, &["srandmember", "s", "-2500"]));
    assert_eq!(picked.len(), 2500);
    assert!(picked.iter().all(|m| all.contains(m)));
    let fields = bulks(run(&mut shard, &["hrandfield", "h", "999"]));
    assert_eq!(
        fields.iter().collect::<HashSet<_>>().len(),
        999,
        "{seeds:#x?}"
    );

    // SSCAN and HSCAN see everything.
    for (cmd, key, per_element) in [("sscan", "s", 1), ("hscan", "h", 2)] {
        let mut seen = HashSet::new();
        let mut cursor = "0".to_string();
        loop {
            let Reply::Array(mut reply) = run(&mut shard, &[cmd, key, &cursor, "COUNT", "7"])
            else {
                panic!("{cmd}: not an array");
            };
            let elements = bulks(reply.pop().expect("elements"));
            seen.extend(elements.into_iter().step_by(per_element));
            let Some(Reply::Bulk(next)) = reply.pop() else {
                panic!("{cmd}: no cursor");
            };
            cursor = String::from_utf8(next.to_vec()).expect("cursor");
            if cursor == "0" {
                break;
            }
        }
        assert_eq!(seen, all, "{cmd} with seeds {seeds:#x?}");
    }

    // SPOP empties the set, each member once.
    let popped = bulks(run(&mut shard, &["spop", "s", "1000"]));
    assert_eq!(popped.into_iter().collect::<HashSet<_>>(), all);
}
