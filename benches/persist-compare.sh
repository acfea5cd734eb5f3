#!/usr/bin/env bash
# Snapshots: Shardis (one shard and two) against real Redis in the same run, on one data set
# of mixed types (40% strings, 15% each hashes, lists, sets, sorted sets of 5 elements;
# 1,000,000 keys by default):
#   - save: the time SAVE takes;
#   - load: the time from start to serving the whole data set (DBSIZE = all keys);
#   - BGSAVE under writes: peak memory while redis-benchmark overwrites existing keys (50
#     clients, SET over the string keys) during a BGSAVE. Shardis: peak process RSS over its
#     RSS before. Redis: its RSS plus the memory its fork made private (copied pages), over
#     its RSS before.
#
# Usage: benches/persist-compare.sh [--keys N] [--shardis PATH] [--redis PATH] [--base-port P]
# Needs: redis-server, redis-cli, redis-benchmark, python3, a release build of shardis-server.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
keys=1000000
shardis="${CARGO_TARGET_DIR:-$here/target}/release/shardis-server"
redis="$(command -v redis-server || true)"
base_port=16490
while [ $# -gt 0 ]; do
  case "$1" in
    --keys) keys="$2"; shift 2 ;;
    --shardis) shardis="$2"; shift 2 ;;
    --redis) redis="$2"; shift 2 ;;
    --base-port) base_port="$2"; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done
[ -x "$shardis" ] || { echo "no shardis-server at $shardis" >&2; exit 1; }
[ -n "$redis" ] || { echo "redis-server not found" >&2; exit 1; }
for t in redis-cli redis-benchmark python3; do
  command -v "$t" >/dev/null || { echo "$t not found" >&2; exit 1; }
done

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

# The data set as RESP, once. String keys are named as redis-benchmark's -r keys, so the
# benchmark's writes land on keys the snapshot has to save.
python3 - "$keys" > "$work/data.resp" <<'PY'
import sys
n = int(sys.argv[1])
out = sys.stdout.buffer
def cmd(*args):
    out.write(b"*%d\r\n" % len(args))
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.write(b"$%d\r\n%s\r\n" % (len(a), a))
for i in range(n):
    kind = i % 20
    if kind < 8:
        cmd(b"SET", b"key:%012d" % i, b"value-%014d" % i)
    elif kind < 11:
        cmd(b"HSET", b"h:%d" % i, *[x for f in range(5) for x in (b"f%d" % f, b"v%d" % (i + f))])
    elif kind < 14:
        cmd(b"RPUSH", b"l:%d" % i, *[b"e%d" % (i + f) for f in range(5)])
    elif kind < 17:
        cmd(b"SADD", b"s:%d" % i, *[b"m%d" % (i * 7 + f) for f in range(5)])
    else:
        cmd(b"ZADD", b"z:%d" % i, *[x for f in range(5) for x in (f, b"m%d" % f)])
PY

now() { date +%s.%N; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# Memory a forked child of $1 made its own (its private pages), in kB.
child_private_kb() {
  local c total=0
  for c in $(pgrep -P "$1" 2>/dev/null || true); do
    local p
    p=$(awk '/^Private_(Dirty|Clean)/ {s += $2} END {print s + 0}' "/proc/$c/smaps_rollup" 2>/dev/null || echo 0)
    total=$((total + p))
  done
  echo "$total"
}

start() { # name port dir
  local name=$1 port=$2 dir=$3
  case "$name" in
    redis) "$redis" --port "$port" --dir "$dir" --save "" --appendonly no --logfile "$dir/log" & ;;
    shardis-1) "$shardis" --port "$port" --dir "$dir" --shards 1 --logfile "$dir/log" & ;;
    shardis-2) "$shardis" --port "$port" --dir "$dir" --shards 2 --logfile "$dir/log" & ;;
  esac
  pid=$!
}

wait_keys() { # port n: until the server answers with n keys
  local t0
  t0=$(now)
  until [ "$(redis-cli -p "$1" DBSIZE 2>/dev/null || echo 0)" = "$2" ]; do
    sleep 0.02
    if (( $(echo "$(now) - $t0 > 600" | bc) )); then echo "timeout" >&2; return 1; fi
  done
}

printf "%-10s %10s %10s %12s %12s %10s\n" server keys save_s load_s rss_before_mb peak_growth
port=$base_port
for name in redis shardis-1 shardis-2; do
  port=$((port + 1))
  dir="$work/$name"
  mkdir -p "$dir"
  start "$name" "$port" "$dir"
  until redis-cli -p "$port" PING >/dev/null 2>&1; do sleep 0.05; done
  redis-cli -p "$port" --pipe < "$work/data.resp" >/dev/null
  n=$(redis-cli -p "$port" DBSIZE)
  t0=$(now); redis-cli -p "$port" SAVE >/dev/null; t1=$(now)
  save_s=$(echo "$t1 - $t0" | bc)
  stop
  t0=$(now)
  start "$name" "$port" "$dir"
  until redis-cli -p "$port" PING >/dev/null 2>&1; do sleep 0.01; done
  wait_keys "$port" "$n"
  t1=$(now)
  load_s=$(echo "$t1 - $t0" | bc)
  # BGSAVE while 50 clients overwrite existing string keys.
  sleep 1
  before=$(rss_kb "$pid")
  redis-benchmark -p "$port" -t set -r "$keys" -d 24 -c 50 -n 100000000 -q >/dev/null 2>&1 &
  bench=$!
  sleep 1
  peak=$before
  redis-cli -p "$port" BGSAVE >/dev/null
  sleep 0.05
  while [ "$(redis-cli -p "$port" INFO persistence | tr -d '\r' | awk -F: '/^rdb_bgsave_in_progress/ {print $2}')" = "1" ]; do
    r=$(rss_kb "$pid")
    if [ "$name" = redis ]; then r=$((r + $(child_private_kb "$pid"))); fi
    [ "$r" -gt "$peak" ] && peak=$r
    sleep 0.05
  done
  kill "$bench" 2>/dev/null || true
  wait "$bench" 2>/dev/null || true
  growth=$(echo "scale=1; ($peak - $before) * 100 / $before" | bc)
  printf "%-10s %10s %10.2f %12.2f %12.1f %9s%%\n" "$name" "$n" "$save_s" "$load_s" \
    "$(echo "scale=1; $before / 1024" | bc)" "$growth"
  stop
done
