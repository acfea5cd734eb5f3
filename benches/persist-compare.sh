#!/usr/bin/env bash
# Persistence: Shardis (one shard and two) against real Redis 7.0 in the same run, each
# measurement repeated R times (servers in turn) and reported as median (min-max).
#
# Snapshots, on one data set of mixed types (40% strings, 15% each hashes, lists, sets,
# sorted sets of 5 elements; 1,000,000 keys by default):
#   - save_s: the time SAVE takes;
#   - load_s: the time from start to serving the whole data set (DBSIZE = all keys);
#   - bgsave_growth: peak memory while redis-benchmark overwrites existing keys (50 clients,
#     SET over the string keys, creating none) during a BGSAVE. Shardis: peak process RSS over its RSS
#     before. Redis: its RSS plus the memory its fork made private (copied pages), over its
#     RSS before.
# Append-only log, `appendonly yes` with `appendfsync always` then `everysec`:
#   - redis-benchmark -t set -c 50 -n N -r 100000 (random keys): ops/s and p99 latency.
# Every server runs in a fresh directory on the same filesystem (the temp dir).
#
# Usage: benches/persist-compare.sh [--only snapshot|aof] [--keys N] [--requests N] [--runs R]
#                                   [--shardis PATH] [--redis PATH] [--base-port P]
# Needs: redis-server, redis-cli, redis-benchmark, python3, bc, a release build of
# shardis-server.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
only=""
keys=1000000
requests=50000
runs=3
shardis="${CARGO_TARGET_DIR:-$here/target}/release/shardis-server"
redis="$(command -v redis-server || true)"
base_port=16490
while [ $# -gt 0 ]; do
  case "$1" in
    --only) only="$2"; shift 2 ;;
    --keys) keys="$2"; shift 2 ;;
    --requests) requests="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --shardis) shardis="$2"; shift 2 ;;
    --redis) redis="$2"; shift 2 ;;
    --base-port) base_port="$2"; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done
case "$only" in ''|snapshot|aof) ;; *) echo "--only takes snapshot or aof" >&2; exit 2 ;; esac
[ -x "$shardis" ] || { echo "no shardis-server at $shardis" >&2; exit 1; }
[ -n "$redis" ] || { echo "redis-server not found" >&2; exit 1; }
for t in redis-cli redis-benchmark python3 bc; do
  command -v "$t" >/dev/null || { echo "$t not found" >&2; exit 1; }
done

work="$(mktemp -d)"
pid=""
bench=""
stop() {
  if [ -n "$bench" ]; then kill "$bench" 2>/dev/null || true; wait "$bench" 2>/dev/null || true; bench=""; fi
  if [ -n "$pid" ]; then
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
  fi
}
trap 'stop; rm -rf "$work"' EXIT

# start <name> <port> <dir> [extra args…]: a server in <dir>, answering once it serves.
start() {
  local name=$1 port=$2 dir=$3
  shift 3
  mkdir -p "$dir"
  # A killed server's io_uring instance is torn down by the kernel after the process is
  # reaped and may hold its listening socket a moment longer: wait for the port (5 s at most).
  for _ in $(seq 100); do
    ss -Hltn "sport = :$port" | grep -q . || break
    sleep 0.05
  done
  case "$name" in
    redis) "$redis" --port "$port" --dir "$dir" --save "" --daemonize no --logfile "$dir/log" "$@" & ;;
    shardis-*) "$shardis" --port "$port" --dir "$dir" --shards "${name#shardis-}" \
                 --logfile "$dir/log" "$@" & ;;
  esac
  pid=$!
  for _ in $(seq 200); do
    redis-cli -p "$port" INFO server >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "$name did not start" >&2; cat "$dir/log" >&2; exit 1
}

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

wait_keys() { # port n: until the server answers with n keys
  local t0
  t0=$(now)
  until [ "$(redis-cli -p "$1" DBSIZE 2>/dev/null || echo 0)" = "$2" ]; do
    sleep 0.02
    if (( $(echo "$(now) - $t0 > 600" | bc) )); then echo "timeout" >&2; return 1; fi
  done
}

# The string keys of the data set below: i % 20 < 8 for i < keys.
strings_n=$(( keys / 20 * 8 + (keys % 20 < 8 ? keys % 20 : 8) ))
results="$work/results"
: > "$results"
port=$base_port

# One snapshot round for <name>: SAVE, restart and load, BGSAVE under writes.
snapshot_round() {
  local name=$1 dir="$work/snap-$1"
  rm -rf "$dir"
  port=$((port + 1))
  start "$name" "$port" "$dir" --appendonly no
  redis-cli -p "$port" --pipe < "$work/data.resp" >/dev/null
  local n t0 t1 save_s load_s before peak r growth
  n=$(redis-cli -p "$port" DBSIZE)
  t0=$(now); redis-cli -p "$port" SAVE >/dev/null; t1=$(now)
  save_s=$(echo "$t1 - $t0" | bc)
  stop
  t0=$(now)
  start "$name" "$port" "$dir" --appendonly no
  wait_keys "$port" "$n"
  t1=$(now)
  load_s=$(echo "$t1 - $t0" | bc)
  # BGSAVE while 50 clients overwrite existing string keys.
  sleep 1
  before=$(rss_kb "$pid")
  redis-benchmark -p "$port" -t set -r "$strings_n" -d 24 -c 50 -n 100000000 -q >/dev/null 2>&1 &
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
  stop
  growth=$(echo "scale=2; ($peak - $before) * 100 / $before" | bc)
  echo "snapshot $name $n $save_s $load_s $(echo "scale=1; $before / 1024" | bc) $growth" >> "$results"
}

# One log round for <name> under appendfsync <fsync>.
aof_round() {
  local name=$1 fsync=$2 dir="$work/aof-$1-$2" line
  rm -rf "$dir"
  port=$((port + 1))
  start "$name" "$port" "$dir" --appendonly yes --appendfsync "$fsync"
  line=$(redis-benchmark -p "$port" -t set -c 50 -n "$requests" -r 100000 --csv 2>/dev/null | tail -1)
  stop
  # "SET","rps","avg","min","p50","p95","p99","max"
  echo "aof $fsync $name $line" >> "$results"
}

if [ "$only" != aof ]; then
  # The data set as RESP, once. String keys are named as redis-benchmark's -r keys and
  # numbered 0, 1, 2, … (strings_n of them), so the benchmark's writes (-r strings_n) land on
  # keys the snapshot has to save and create none: the growth measured is the snapshot's, not
  # new keys'. (Until 2026-11-30 20:40 they were numbered by their place among all keys, so
  # 60% of the benchmark's writes created keys.)
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
        cmd(b"SET", b"key:%012d" % (i // 20 * 8 + kind), b"value-%014d" % i)
    elif kind < 11:
        cmd(b"HSET", b"h:%d" % i, *[x for f in range(5) for x in (b"f%d" % f, b"v%d" % (i + f))])
    elif kind < 14:
        cmd(b"RPUSH", b"l:%d" % i, *[b"e%d" % (i + f) for f in range(5)])
    elif kind < 17:
        cmd(b"SADD", b"s:%d" % i, *[b"m%d" % (i * 7 + f) for f in range(5)])
    else:
        cmd(b"ZADD", b"z:%d" % i, *[x for f in range(5) for x in (f, b"m%d" % f)])
PY
fi

for _ in $(seq "$runs"); do
  for name in redis shardis-1 shardis-2; do
    [ "$only" = aof ] || snapshot_round "$name"
    if [ "$only" != snapshot ]; then
      for fsync in always everysec; do aof_round "$name" "$fsync"; done
    fi
  done
done

python3 - "$results" "$runs" "$keys" "$requests" <<'PY'
import sys, statistics
runs, keys, requests = sys.argv[2], sys.argv[3], sys.argv[4]
snap, aof = {}, {}
for line in open(sys.argv[1]):
    f = line.split(" ", 3)
    if f[0] == "snapshot":
        name, rest = f[1], line.split()[2:]
        snap.setdefault(name, []).append([float(x) for x in rest])
    else:
        fsync, name, csv = f[1], f[2], f[3]
        v = [x.strip('"') for x in csv.strip().split(",")]
        aof.setdefault((fsync, name), []).append((float(v[1]), float(v[6])))
def med(xs, fmt):
    return f"{fmt % statistics.median(xs)} ({fmt % min(xs)}-{fmt % max(xs)})"
if snap:
    print(f"snapshots, {keys} keys of mixed types; {runs} runs each, median (min-max)")
    print(f"{'server':10} {'keys':>8} {'save_s':>20} {'load_s':>20} {'rss_before_mb':>22} {'bgsave_growth_%':>22}")
    for name in ("redis", "shardis-1", "shardis-2"):
        rows = snap.get(name)
        if not rows:
            continue
        col = lambda i: [r[i] for r in rows]
        print(f"{name:10} {int(rows[0][0]):>8} {med(col(1), '%.2f'):>20} {med(col(2), '%.2f'):>20} "
              f"{med(col(3), '%.1f'):>22} {med(col(4), '%.1f'):>22}")
if aof:
    print(f"appendonly yes, redis-benchmark -t set -c 50 -n {requests} -r 100000; {runs} runs each, median (min-max)")
    print(f"{'fsync':9} {'server':10} {'ops/s':>24} {'p99 ms':>22}")
    for (fsync, name), v in sorted(aof.items()):
        print(f"{fsync:9} {name:10} {med([x[0] for x in v], '%.0f'):>24} {med([x[1] for x in v], '%.3f'):>22}")
PY
