//! `shardis-server [config-file] [--name value ...]`: a Redis-compatible server with one
//! shard per core.

use shardis_server::{alloc, cmd, config, logging, server};

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
    let config = match config::Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("*** FATAL CONFIG ERROR ***\n{e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = logging::init(config.get("loglevel"), config.get("logfile")) {
        eprintln!("{e}");
        std::process::exit(1);
    }
    if let Err(e) = server::run(config) {
        tracing::error!("{e}");
        eprintln!("shardis-server: {e}");
        std::process::exit(1);
    }
}
