#!/usr/bin/env bash
# Memory footprint of Shardis against real Redis on the same data sets.
#
# For each data set, both servers are started fresh (so RSS growth is not hidden by memory a
# previous data set freed but the allocator kept), FLUSHALL'd, measured, loaded through
# `redis-cli --pipe`, and measured again. Reported per server: growth of used_memory and of
# used_memory_rss (after minus before), bytes per element, and the Shardis/Redis ratio.
#
# Usage: benches/memory-compare.sh [--scale F] [--only a,b,c,d,e] [--shardis PATH]
#                                  [--redis PATH] [--base-port P] [--reuse] [--cold]
#   --scale F   multiply every data set size by F (e.g. 0.1 for a quick run; default 1)
#   --only L    run only these data sets: a=hashes b=set of integers c=sorted set d=lists
#               e=strings (the cache record: small key, 16-byte value, half with a TTL)
#   --reuse     keep one pair of servers for all data sets and FLUSHALL between them, as a
#               long-running server would (RSS growth then depends on what the allocator kept)
#   --cold      skip the warm-up: by default each server first takes 100,000 writes of junk
#               (about 13 MB through its connection), then FLUSHALL, before the baseline is
#               read, so that first-use costs of the I/O path (Shardis's per-core receive
#               buffers are paged in as traffic first reaches them) are in the baseline rather
#               than counted as data
# Needs: redis-server, redis-cli, python3, bc, and a release build of shardis-server.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
scale=1
only="a,b,c,d,e"
shardis="${CARGO_TARGET_DIR:-$here/target}/release/shardis-server"
redis="$(command -v redis-server || true)"
base_port=16390
reuse=0
warm=1
while [ $# -gt 0 ]; do
  case "$1" in
    --scale) scale="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --shardis) shardis="$2"; shift 2 ;;
    --redis) redis="$2"; shift 2 ;;
    --base-port) base_port="$2"; shift 2 ;;
    --reuse) reuse=1; shift ;;
    --cold) warm=0; shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done
[ -x "$shardis" ] || { echo "no shardis-server at $shardis (cargo build --release -p shardis-server, or --shardis PATH)" >&2; exit 1; }
[ -n "$redis" ] && [ -x "$redis" ] || { echo "redis-server not found" >&2; exit 1; }
command -v redis-cli >/dev/null || { echo "redis-cli not found" >&2; exit 1; }

redis_port=$base_port
shardis_port=$((base_port + 1))
work="$(mktemp -d)"
pids=()

stop_servers() {
  local p
  for p in "${pids[@]:-}"; do
    [ -n "$p" ] || continue
    kill "$p" 2>/dev/null || true
    # Bounded wait, then force.
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  pids=()
}
cleanup() { stop_servers; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_ready() { # port
  for _ in $(seq 100); do
    redis-cli -p "$1" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "server on port $1 did not start" >&2
  exit 1
}

start_servers() {
  (cd "$work" && exec "$redis" --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize no --logfile "$work/redis.log") &
  pids+=($!)
  "$shardis" --port "$shardis_port" --shards 1 --save '' --appendonly no >"$work/shardis.log" 2>&1 &
  pids+=($!)
  wait_ready "$redis_port"
  wait_ready "$shardis_port"
}

info_field() { # port field
  redis-cli -p "$1" info memory | tr -d '\r' | awk -F: -v f="$2" '$1 == f { print $2 }'
}

# The RESP command stream of data set $1 with $2 elements, on stdout.
gen() {
  python3 - "$1" "$2" <<'PY'
import sys
kind, n = sys.argv[1], int(sys.argv[2])
out = sys.stdout.buffer

def cmd(*args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)

def batched(name, key, items, per=1000):
    buf = []
    for i in range(0, len(items), per):
        buf.append(cmd(name, key, *items[i:i + per]))
        if len(buf) >= 100:
            out.write(b"".join(buf)); buf = []
    out.write(b"".join(buf))

if kind == "a":      # n hashes of 10 small fields
    tail = []
    for f in range(10):
        tail += [b"f%d" % f, b"v%d" % f]
    head = b"*22\r\n$4\r\nHSET\r\n"
    body = b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in tail)
    buf = []
    for i in range(n):
        k = b"user:%d" % i
        buf.append(head + b"$%d\r\n%s\r\n" % (len(k), k) + body)
        if len(buf) >= 10000:
            out.write(b"".join(buf)); buf = []
    out.write(b"".join(buf))
elif kind == "b":    # one set of n integers
    batched(b"SADD", b"ints", [b"%d" % i for i in range(n)])
elif kind == "c":    # one sorted set of n members with distinct scores, added in random order
    # (ascending order would be the best case for an ordered index that splits at its end)
    import random
    order = list(range(n))
    random.Random(7).shuffle(order)
    items = []
    for i in order:
        items += [b"%d" % i, b"m:%d" % i]
    batched(b"ZADD", b"zs", items, per=2000)
elif kind == "e":    # n strings key:N of 16 bytes, every other one with a TTL (SET .. EX)
    value = b"v" * 16
    buf = []
    for i in range(n):
        k = b"key:%d" % i
        if i % 2 == 0:
            buf.append(cmd(b"SET", k, value, b"EX", b"86400"))
        else:
            buf.append(cmd(b"SET", k, value))
        if len(buf) >= 10000:
            out.write(b"".join(buf)); buf = []
    out.write(b"".join(buf))
elif kind == "d":    # n lists of 20 items
    items = [b"item-%d" % j for j in range(20)]
    buf = []
    for i in range(n):
        buf.append(cmd(b"RPUSH", b"list:%d" % i, *items))
        if len(buf) >= 10000:
            out.write(b"".join(buf)); buf = []
    out.write(b"".join(buf))
PY
}

# Data set: id, description, element count at scale 1, what an element is.
datasets=(
  "a|hashes of 10 fields (HSET user:N f0 v0 .. f9 v9)|1000000|hash"
  "b|one set of integers (SADD)|1000000|member"
  "c|one sorted set (ZADD N m:N, shuffled)|1000000|member"
  "d|lists of 20 items (RPUSH list:N item-0 .. item-19)|100000|list"
  "e|strings of 16 bytes, half with a TTL (SET key:N v [EX 86400])|1000000|key"
)

echo "redis: $("$redis" --version | head -1)"
echo "shardis: $shardis"
python3 -c '
import sys
out = sys.stdout.buffer
value = b"x" * 100
for i in range(100000):
    k = b"junk:%d" % i
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$100\r\n%s\r\n" % (len(k), k, value))
' >"$work/junk"
echo "scale: $scale   reuse: $reuse   warm-up: $warm   date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
echo

[ "$reuse" = 1 ] && start_servers
table="$work/table"
printf '| data set | elements | server | keys | used_memory growth | B/elem | RSS growth | B/elem (RSS) |\n' >"$table"
printf '|---|---:|---|---:|---:|---:|---:|---:|\n' >>"$table"
ratios="$work/ratios"
printf '| data set | used_memory Shardis/Redis | RSS Shardis/Redis |\n|---|---:|---:|\n' >"$ratios"

for spec in "${datasets[@]}"; do
  IFS='|' read -r id desc full unit <<<"$spec"
  case ",$only," in *",$id,"*) ;; *) continue ;; esac
  n=$(python3 -c "print(max(1, int($full * $scale)))")
  [ "$reuse" = 1 ] || start_servers
  gen "$id" "$n" >"$work/cmds"
  declare -A used rss
  for side in redis shardis; do
    port=$([ $side = redis ] && echo $redis_port || echo $shardis_port)
    if [ "$warm" = 1 ]; then
      redis-cli -p "$port" --pipe <"$work/junk" >/dev/null 2>&1
    fi
    redis-cli -p "$port" flushall >/dev/null
    sleep 0.5
    u0=$(info_field "$port" used_memory); r0=$(info_field "$port" used_memory_rss)
    t0=$(date +%s.%N)
    timeout 600 redis-cli -p "$port" --pipe --pipe-timeout 60 <"$work/cmds" >"$work/pipe.$side" 2>&1 \
      || { echo "load into $side failed:" >&2; cat "$work/pipe.$side" >&2; exit 1; }
    grep -q 'errors: 0,' "$work/pipe.$side" || { echo "$side reported errors:" >&2; cat "$work/pipe.$side" >&2; exit 1; }
    t1=$(date +%s.%N)
    sleep 1  # let the server drop its input buffers and finish any rehash step
    u1=$(info_field "$port" used_memory); r1=$(info_field "$port" used_memory_rss)
    keys=$(redis-cli -p "$port" dbsize)
    used[$side]=$((u1 - u0)); rss[$side]=$((r1 - r0))
    enc=$(redis-cli -p "$port" object encoding "$(redis-cli -p "$port" randomkey)")
    alloc=$(info_field "$port" mem_allocator)
    printf '%-7s %-48s n=%-8s loaded in %5.1fs  keys=%-8s encoding=%-10s allocator=%s\n' \
      "$side" "$desc" "$n" "$(echo "$t1 - $t0" | bc)" "$keys" "$enc" "$alloc"
    div() { printf '%.1f' "$(echo "scale=3; $1 / $2" | bc)"; }
    printf '| %s | %s | %s | %s | %s MB | %s | %s MB | %s |\n' "$desc" "$n" "$side" "$keys" \
      "$(div "${used[$side]}" 1000000)" "$(div "${used[$side]}" "$n")" \
      "$(div "${rss[$side]}" 1000000)" "$(div "${rss[$side]}" "$n")" >>"$table"
  done
  ratio() { if [ "$2" -gt 0 ]; then printf '%.2f' "$(echo "scale=4; $1 / $2" | bc)"; else echo "n/a"; fi; }
  printf '| %s | %s | %s |\n' "$desc" "$(ratio "${used[shardis]}" "${used[redis]}")" \
    "$(ratio "${rss[shardis]}" "${rss[redis]}")" >>"$ratios"
  unset used rss
  if [ "$reuse" = 1 ]; then
    redis-cli -p $redis_port flushall >/dev/null; redis-cli -p $shardis_port flushall >/dev/null
  else
    stop_servers
  fi
done

echo
cat "$table"
echo
cat "$ratios"
