# Shardis task runner (https://github.com/casey/just).

# Build everything in release mode.
build:
    cargo build --release --workspace

# Run the server (extra arguments as for redis-server: just run --port 7000 --shards 2).
run *ARGS:
    cargo run --release -p shardis-server -- {{ARGS}}

# The test suite CI runs.
test:
    cargo test --workspace

# Criterion benches of the parser and the engine.
bench:
    cargo bench -p shardis-benches

# Shardis against a real redis-server: redis-benchmark and memtier workloads, ops/s, server CPU
# per request (user, kernel), latency, charts (just compare -q --syscalls).
compare *ARGS:
    benches/redis-compare.sh {{ARGS}}

# Shardis with 1..N shards against Redis and Redis with I/O threads (just scaling -q).
scaling *ARGS:
    benches/scaling.sh {{ARGS}}

# Build memtier_benchmark from its source into ~/.cache/shardis-bench; prints the binary's path.
build-memtier *ARGS:
    benches/build-memtier.sh {{ARGS}}

# Formatting and lints.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Redis's own test suite against Shardis (see docs/operations.md for the one-time setup).
compat *UNITS:
    cargo build --release -p shardis-server
    ../shared/compat/redis-suite.sh -s /tmp/redis-src -p 7000 -S "target/release/shardis-server --port 7000 --shards 2" {{UNITS}}

# Regenerate the command facts from Redis's command reference.
gen-facts:
    python3 tools/gen-command-facts.py ../shared/reference/redis-7.0-commands.json tools/extra-commands.json > crates/engine/src/command/facts.rs
    cargo fmt --all

# Fuzz the request parser (needs cargo-fuzz and a nightly toolchain).
fuzz TARGET="parse_request":
    cd fuzz && cargo +nightly fuzz run {{TARGET}}
