//! `shardis-server [config-file] [--name value ...]`: a Redis-compatible server with one
//! shard per core.

use shardis_server::{alloc, cmd, config, logging, process, server};

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("Usage: shardis-server [/path/to/redis.conf] [--port 7000] [--shards N] [--<parameter> <value> ...]");
        return;
    }
    if args.iter().any(|a| a == "--version" || a == "-v") {
        println!(
            "shardis-server v={} (redis {})",
            env!("CARGO_PKG_VERSION"),
            cmd::REDIS_VERSION
        );
        return;
    }
    // Before any table hashes a key: seeds nobody can guess, so clients cannot send keys that
    // all collide (hash flooding).
    if !shardis_engine::dict::seed_hashers(random_seeds()) {
        eprintln!("shardis-server: hash seeds set after a table was used");
        std::process::exit(1);
    }
    let config = match config::Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "\n*** FATAL CONFIG FILE ERROR (Redis {}) ***\n{e}",
                cmd::REDIS_VERSION
            );
            std::process::exit(1);
        }
    };
    if let Err(e) = logging::init(config.get("loglevel"), config.get("logfile")) {
        eprintln!("{e}");
        std::process::exit(1);
    }
    // Background, pid file, supervision: before any thread starts.
    if let Err(e) = process::start(&config) {
        tracing::error!("{e}");
        eprintln!("shardis-server: {e}");
        std::process::exit(1);
    }
    for (name, why) in config.ineffective() {
        tracing::warn!("'{name}' has no effect in Shardis: {why}");
    }
    let result = server::run(config);
    process::stopping();
    if let Err(e) = result {
        tracing::error!("{e}");
        eprintln!("shardis-server: {e}");
        std::process::exit(1);
    }
}

/// Four random words from the kernel.
fn random_seeds() -> [u64; 4] {
    let mut seeds = [0u64; 4];
    // SAFETY: getrandom writes at most the given number of bytes into the array we own.
    let n = unsafe {
        libc::getrandom(
            seeds.as_mut_ptr() as *mut libc::c_void,
            std::mem::size_of_val(&seeds),
            0,
        )
    };
    if n != std::mem::size_of_val(&seeds) as isize {
        eprintln!("shardis-server: cannot read random seeds from the kernel");
        std::process::exit(1);
    }
    seeds
}
