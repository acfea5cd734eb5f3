#!/usr/bin/env bash
# Append-only log write throughput: Shardis (one shard and two) against real Redis 7.0 in the
# same run, with `appendonly yes` and `appendfsync always` then `everysec`:
#   redis-benchmark -t set -c 50 -n N -r 100000 (random keys), ops/s and p99 latency,
#   each configuration run R times in turn; medians and min–max are printed.
# Every server runs in a fresh directory on the same filesystem (the temp dir).
#
# Usage: benches/aof-compare.sh [--requests N] [--runs R] [--shardis PATH] [--redis PATH]
#                               [--base-port P]
# Needs: redis-server, redis-benchmark, python3, a release build of shardis-server.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
requests=50000
runs=3
shardis="${CARGO_TARGET_DIR:-$here/target}/release/shardis-server"
redis="$(command -v redis-server || true)"
base_port=16590
while [ $# -gt 0 ]; do
  case "$1" in
    --requests) requests="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --shardis) shardis="$2"; shift 2 ;;
    --redis) redis="$2"; shift 2 ;;
    --base-port) base_port="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done
[ -x "$shardis" ] || { echo "no shardis-server at $shardis" >&2; exit 1; }
[ -n "$redis" ] || { echo "redis-server not found" >&2; exit 1; }
command -v redis-benchmark >/dev/null || { echo "redis-benchmark not found" >&2; exit 1; }

work="$(mktemp -d)"
pid=""
stop() {
  if [ -n "$pid" ]; then
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
  fi
}
trap 'stop; rm -rf "$work"' EXIT

# start <name> <port> <fsync>: a fresh server with the log on.
start() {
  local name="$1" port="$2" fsync="$3" dir="$work/$1-$3"
  rm -rf "$dir"; mkdir -p "$dir"
  case "$name" in
    redis) "$redis" --port "$port" --dir "$dir" --save '' --appendonly yes \
             --appendfsync "$fsync" --daemonize no >"$dir/log" 2>&1 & ;;
    shardis-*) "$shardis" --port "$port" --dir "$dir" --shards "${name#shardis-}" \
             --appendonly yes --appendfsync "$fsync" --loglevel warning >"$dir/log" 2>&1 & ;;
  esac
  pid=$!
  for _ in $(seq 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "$name did not start" >&2; cat "$dir/log" >&2; exit 1
}

results="$work/results"
: > "$results"
port=$base_port
for run in $(seq "$runs"); do
  for fsync in always everysec; do
    for name in redis shardis-1 shardis-2; do
      port=$((port + 1))
      start "$name" "$port" "$fsync"
      line=$(redis-benchmark -p "$port" -t set -c 50 -n "$requests" -r 100000 --csv 2>/dev/null | tail -1)
      stop
      # "SET","rps","avg","min","p50","p95","p99","max"
      echo "$fsync $name $line" >> "$results"
    done
  done
done

python3 - "$results" "$runs" "$requests" <<'PY'
import sys, statistics
rows = {}
for line in open(sys.argv[1]):
    fsync, name, csv = line.split(" ", 2)
    f = [x.strip('"') for x in csv.strip().split(",")]
    rows.setdefault((fsync, name), []).append((float(f[1]), float(f[6])))
print(f"appendonly yes, redis-benchmark -t set -c 50 -n {sys.argv[3]} -r 100000; {sys.argv[2]} runs each, median (min-max)")
print(f"{'fsync':9} {'server':10} {'ops/s':>24} {'p99 ms':>22}")
for (fsync, name), v in sorted(rows.items()):
    ops = [x[0] for x in v]; p99 = [x[1] for x in v]
    print(f"{fsync:9} {name:10} {statistics.median(ops):10.0f} ({min(ops):.0f}-{max(ops):.0f}) {statistics.median(p99):8.3f} ({min(p99):.3f}-{max(p99):.3f})")
PY
