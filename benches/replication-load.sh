#!/usr/bin/env bash
# Replication under client load: a Shardis primary (--shards, 2 by default) against a Redis
# primary holding the same data, each followed by a fresh Redis 7.0 replica, in the same run.
#   - during the full sync: p50/p99 latency of GET and SET seen by a probe client (one request
#     at a time, random keys of the data set) while redis-benchmark keeps 50 other clients
#     writing (SET, random keys), and the full-sync time under that load;
#   - in steady state, after the sync, under the same write load: the replication lag, timed
#     as how long the replica takes to reach the primary's offset noted every 100 ms.
# Runs alternate between the servers, --runs each; medians with min-max are printed.
#
# Usage: benches/replication-load.sh [--keys N] [--runs R] [--shards S] [--lag-seconds T]
#                                    [--shardis PATH] [--redis PATH] [--base-port P]
# Needs: redis-server, redis-cli, redis-benchmark, python3, a release build of shardis-server.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
keys=1000000
runs=3
shards=2
lag_seconds=10
shardis="${CARGO_TARGET_DIR:-$here/target}/release/shardis-server"
redis="$(command -v redis-server || true)"
base_port=16790
while [ $# -gt 0 ]; do
  case "$1" in
    --keys) keys="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --shards) shards="$2"; shift 2 ;;
    --lag-seconds) lag_seconds="$2"; shift 2 ;;
    --shardis) shardis="$2"; shift 2 ;;
    --redis) redis="$2"; shift 2 ;;
    --base-port) base_port="$2"; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done
command -v redis-benchmark >/dev/null || { echo "redis-benchmark not found" >&2; exit 1; }
# shellcheck source=benches/lib/replication.sh
source "$here/benches/lib/replication.sh"
repl_init
probe="$here/benches/lib/repl_probe.py"

# The data set: SET key:<i> <100 bytes>, as RESP.
python3 - "$keys" > "$work/fill.resp" <<'PY'
import sys
n = int(sys.argv[1])
value = "v" * 100
for i in range(n):
    k = f"key:{i}"
    sys.stdout.write(f"*3\r\n$3\r\nSET\r\n${len(k)}\r\n{k}\r\n$100\r\n{value}\r\n")
PY

# One run of the primary started by "$@"; prints
# "sync-s get-p50 get-p99 set-p50 set-p99 lag-median lag-p99 lag-max".
run_once() {
  rm -rf "$work/p" "$work/r" "$work/stop"
  mkdir -p "$work/p" "$work/r"
  (cd "$work/p" && exec "$@" >/dev/null 2>&1) &
  pids+=("$!")
  wait_ping "$primary_port"
  redis-cli -p "$primary_port" --pipe < "$work/fill.resp" >/dev/null
  # The write load: 50 clients, random keys of the data set, until killed.
  redis-benchmark -p "$primary_port" -c 50 -n 1000000000 -r "$keys" -d 100 -t set -q \
    >/dev/null 2>&1 &
  local load=$!
  pids+=("$load")
  python3 "$probe" latency "$primary_port" "$work/stop" "$keys" > "$work/latency" &
  local prober=$!
  sleep 1
  local start end
  start=$(date +%s.%N)
  (cd "$work/r" && exec "$redis" --port "$replica_port" --save "" --appendonly no \
    --replicaof 127.0.0.1 "$primary_port" >/dev/null 2>&1) &
  pids+=("$!")
  wait_synced "$replica_port" "$(field "$primary_port" master_repl_offset)"
  end=$(date +%s.%N)
  touch "$work/stop"
  wait "$prober"
  local lag
  lag="$(python3 "$probe" lag "$primary_port" "$replica_port" "$lag_seconds")"
  kill "$load" 2>/dev/null || true
  stop_all
  local sync
  sync=$(python3 -c "print(f'{$end - $start:.2f}')")
  read -r gp50 gp99 sp50 sp99 _ < "$work/latency"
  echo "$sync $gp50 $gp99 $sp50 $sp99 $lag"
}

: > "$work/shardis"; : > "$work/redis"
for r in $(seq 1 "$runs"); do
  s="$(run_once "$shardis" --port "$primary_port" --shards "$shards" --save "" \
    --loglevel warning --repl-diskless-sync-delay 0)"
  echo "$s" >> "$work/shardis"
  x="$(run_once "$redis" --port "$primary_port" --save "" --appendonly no \
    --repl-diskless-sync-delay 0)"
  echo "$x" >> "$work/redis"
  echo "run $r: shardis $s | redis $x"
done

python3 - "$work/shardis" "$work/redis" "$keys" "$shards" <<'PY'
import statistics, sys
names = ["full sync s", "GET p50 ms", "GET p99 ms", "SET p50 ms", "SET p99 ms",
         "lag median ms", "lag p99 ms", "lag max ms"]
rows = [[list(map(float, l.split())) for l in open(f) if l.strip()] for f in sys.argv[1:3]]
print(f"{sys.argv[3]} keys, 50 clients writing; medians (min-max) of {len(rows[0])} runs")
print(f"| | Shardis primary ({sys.argv[4]} shards) | Redis 7.0 primary |")
print("|---|---:|---:|")
for i, name in enumerate(names):
    cells = []
    for runs in rows:
        v = [r[i] for r in runs]
        cells.append(f"{statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})")
    print(f"| {name} | {cells[0]} | {cells[1]} |")
PY
