#!/usr/bin/env bash
# Replication from a Redis 7.0 primary: the full-sync time of a Shardis replica against a
# Redis replica of the same primary, in the same run. The primary holds N keys (DEBUG
# POPULATE: strings of 100 bytes; 1,000,000 by default) and uses Redis's default diskless
# sync; each replica is started empty, told REPLICAOF, and timed until its link is up and its
# offset equals the primary's (the whole data set loaded). Runs alternate, --runs times each.
#
# Usage: benches/replica-compare.sh [--keys N] [--runs R] [--shards S] [--shardis PATH]
#                                   [--redis PATH] [--base-port P]
# Needs: redis-server, redis-cli, python3, a release build of shardis-server.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
keys=1000000
runs=3
shards=2
shardis="${CARGO_TARGET_DIR:-$here/target}/release/shardis-server"
redis="$(command -v redis-server || true)"
base_port=16590
while [ $# -gt 0 ]; do
  case "$1" in
    --keys) keys="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --shards) shards="$2"; shift 2 ;;
    --shardis) shardis="$2"; shift 2 ;;
    --redis) redis="$2"; shift 2 ;;
    --base-port) base_port="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done
# shellcheck source=benches/lib/replication.sh
source "$here/benches/lib/replication.sh"
repl_init

mkdir -p "$work/primary"
"$redis" --port "$primary_port" --save "" --appendonly no --dir "$work/primary" \
  --enable-debug-command yes >/dev/null &
primary_pid=$!
pids+=("$primary_pid")
wait_ping "$primary_port"
redis-cli -p "$primary_port" debug populate "$keys" key 100 >/dev/null
echo "primary: $(redis-cli -p "$primary_port" dbsize) keys"

# One timed full sync of a replica started by "$@" on $replica_port; prints seconds.
time_sync() {
  local dir="$work/replica"
  rm -rf "$dir"
  mkdir -p "$dir"
  (cd "$dir" && exec "$@" >/dev/null 2>&1) &
  local pid=$!
  wait_ping "$replica_port"
  local target
  target="$(field "$primary_port" master_repl_offset)"
  local start
  start=$(date +%s.%N)
  redis-cli -p "$replica_port" replicaof 127.0.0.1 "$primary_port" >/dev/null
  wait_synced "$replica_port" "$target"
  local end
  end=$(date +%s.%N)
  local loaded
  loaded="$(redis-cli -p "$replica_port" dbsize)"
  [ "$loaded" = "$keys" ] || echo "warning: replica has $loaded keys" >&2
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  python3 -c "print(f'{$end - $start:.2f}')"
}

shardis_times=()
redis_times=()
for r in $(seq 1 "$runs"); do
  t=$(time_sync "$shardis" --port "$replica_port" --shards "$shards" --save "" --loglevel warning)
  shardis_times+=("$t")
  t=$(time_sync "$redis" --port "$replica_port" --save "" --appendonly no)
  redis_times+=("$t")
  echo "run $r: shardis ${shardis_times[-1]} s, redis ${redis_times[-1]} s"
done

python3 - "${shardis_times[*]}" "${redis_times[*]}" "$keys" "$shards" <<'PY'
import statistics, sys
s = [float(x) for x in sys.argv[1].split()]
r = [float(x) for x in sys.argv[2].split()]
keys, shards = sys.argv[3], sys.argv[4]
print(f"full sync of {keys} keys from a Redis primary (median of {len(s)}, min-max):")
print(f"  shardis ({shards} shards): {statistics.median(s):.2f} s ({min(s):.2f}-{max(s):.2f})")
print(f"  redis replica:    {statistics.median(r):.2f} s ({min(r):.2f}-{max(r):.2f})")
print(f"  ratio shardis/redis: {statistics.median(s) / statistics.median(r):.2f}")
PY
