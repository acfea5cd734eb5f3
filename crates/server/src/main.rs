//! `shardis-server [config-file] [--name value ...]`: a Redis-compatible server with one
//! shard per core.

mod alloc;
mod blocking;
mod client;
mod commands;
mod config;
mod conn;
mod fanout;
mod info;
mod logging;
mod multi;
mod probe;
mod route;
mod runtime;
mod txn;

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
            commands::REDIS_VERSION
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
    if let Err(e) = runtime::run(config) {
        tracing::error!("{e}");
        eprintln!("shardis-server: {e}");
        std::process::exit(1);
    }
}
