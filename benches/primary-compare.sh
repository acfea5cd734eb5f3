#!/usr/bin/env bash
# Replication to a Redis 7.0 replica: the full-sync time and the primary's peak RSS growth of
# a Shardis primary (--shards, 2 by default) against a Redis primary holding the same data,
# in the same run. Each primary is filled with N keys (strings of 100 bytes; 1,000,000 by
# default) through redis-cli --pipe; then a fresh Redis replica is started with --replicaof
# and timed until its link is up and its offset equals the primary's, while the primary's RSS
# (and its fork children's: proportional set size) is sampled every 20 ms. Both primaries use diskless sync with repl-diskless-sync-delay 0
# (Redis's default delay of 5 s would only add a constant). Runs alternate, --runs each.
#
# Usage: benches/primary-compare.sh [--keys N] [--runs R] [--shards S] [--shardis PATH]
#                                   [--redis PATH] [--base-port P] [--rdbcompression yes|no]
# Needs: redis-server, redis-cli, python3, a release build of shardis-server.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
keys=1000000
runs=3
shards=2
shardis="${CARGO_TARGET_DIR:-$here/target}/release/shardis-server"
redis="$(command -v redis-server || true)"
base_port=16690
compression=yes
while [ $# -gt 0 ]; do
  case "$1" in
    --keys) keys="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --shards) shards="$2"; shift 2 ;;
    --shardis) shardis="$2"; shift 2 ;;
    --redis) redis="$2"; shift 2 ;;
    --base-port) base_port="$2"; shift 2 ;;
    --rdbcompression) compression="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done
# shellcheck source=benches/lib/replication.sh
source "$here/benches/lib/replication.sh"
repl_init
# Memory of the primary and its children (Redis forks for a sync): proportional set sizes, so
# pages a fork child shares with its parent count once.
rss_kb() {
  local total=0 p v
  for p in "$1" $(pgrep -P "$1" || true); do
    v=$(sed -n 's/^Pss:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$p/smaps_rollup" 2>/dev/null || true)
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

# The same data for both primaries: SET key:<i> <100 bytes>, as RESP.
python3 - "$keys" > "$work/fill.resp" <<'PY'
import sys
n = int(sys.argv[1])
out = sys.stdout
value = "v" * 100
for i in range(n):
    k = f"key:{i}"
    out.write(f"*3\r\n$3\r\nSET\r\n${len(k)}\r\n{k}\r\n$100\r\n{value}\r\n")
PY

# One run: a primary started by "$@" on $primary_port, filled, then a Redis replica's full
# sync; prints "seconds peak-rss-growth-MiB".
run_once() {
  rm -rf "$work/p" "$work/r"
  mkdir -p "$work/p" "$work/r"
  (cd "$work/p" && exec "$@" >/dev/null 2>&1) &
  local ppid=$!
  pids+=("$ppid")
  wait_ping "$primary_port"
  redis-cli -p "$primary_port" --pipe < "$work/fill.resp" >/dev/null
  local before peak
  before=$(rss_kb "$ppid")
  peak=$before
  local target start end
  target="$(field "$primary_port" master_repl_offset)"
  start=$(date +%s.%N)
  (cd "$work/r" && exec "$redis" --port "$replica_port" --save "" --appendonly no \
    --replicaof 127.0.0.1 "$primary_port" >/dev/null 2>&1) &
  local rpid=$!
  pids+=("$rpid")
  # shellcheck disable=SC2317 # called by wait_synced
  sample_rss() {
    local now
    now=$(rss_kb "$ppid")
    if [ "$now" -gt "$peak" ]; then peak=$now; fi
  }
  wait_synced "$replica_port" "$target" sample_rss
  end=$(date +%s.%N)
  local loaded
  loaded="$(redis-cli -p "$replica_port" dbsize)"
  [ "$loaded" = "$keys" ] || echo "warning: replica has $loaded keys" >&2
  stop_all
  python3 -c "print(f'{$end - $start:.2f} {($peak - $before) / 1024:.1f}')"
}

s_t=(); s_m=(); r_t=(); r_m=()
for r in $(seq 1 "$runs"); do
  read -r t m < <(run_once "$shardis" --port "$primary_port" --shards "$shards" --save "" \
    --loglevel warning --repl-diskless-sync-delay 0 --rdbcompression "$compression")
  s_t+=("$t"); s_m+=("$m")
  read -r t m < <(run_once "$redis" --port "$primary_port" --save "" --appendonly no \
    --repl-diskless-sync-delay 0 --rdbcompression "$compression")
  r_t+=("$t"); r_m+=("$m")
  echo "run $r: shardis ${s_t[-1]} s (+${s_m[-1]} MiB), redis ${r_t[-1]} s (+${r_m[-1]} MiB)"
done

python3 - "${s_t[*]}" "${s_m[*]}" "${r_t[*]}" "${r_m[*]}" "$keys" "$shards" <<'PY'
import statistics, sys
st, sm, rt, rm = ([float(x) for x in a.split()] for a in sys.argv[1:5])
keys, shards = sys.argv[5], sys.argv[6]
med = statistics.median
print(f"full sync of {keys} keys to a Redis 7.0 replica (median of {len(st)}, min-max):")
print(f"  shardis primary ({shards} shards): {med(st):.2f} s ({min(st):.2f}-{max(st):.2f}), "
      f"peak RSS growth {med(sm):.1f} MiB ({min(sm):.1f}-{max(sm):.1f})")
print(f"  redis primary:   {med(rt):.2f} s ({min(rt):.2f}-{max(rt):.2f}), "
      f"peak RSS growth {med(rm):.1f} MiB ({min(rm):.1f}-{max(rm):.1f})")
print(f"  time ratio shardis/redis: {med(st) / med(rt):.2f}")
PY
