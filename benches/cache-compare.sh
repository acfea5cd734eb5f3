#!/usr/bin/env bash
# Read-through cache hit ratio, Shardis against a real redis-server, under the same memory
# limit and the same request sequence.
#
# cache-bench (benches/src/bin/cache-bench.rs) draws keys from a Zipf distribution over a key
# space several times what fits in `maxmemory`, GETs each and SETs it on a miss. For every
# repetition and every policy (allkeys-lru, allkeys-lfu), a fresh redis-server and a fresh
# shardis-server get the same run, one after the other, so that drift of the machine's load
# hits both alike. The hit ratio is counted after a warm-up that fills the cache; reported are
# the median over the repetitions and the spread (min–max), and how many keys each server
# held at the end (its memory per key decides how many fit).
#
# Servers (pinned with taskset, as the other comparisons): redis-server on CPU 0,
# shardis-server with N shards on CPUs 0..N-1; cache-bench on the client CPU.
#
# Usage: benches/cache-compare.sh [options]     (see --help)

set -euo pipefail

usage() {
    cat <<'EOF'
Usage: benches/cache-compare.sh [options]

  -b, --binary PATH      shardis-server binary (default: cargo build --release)
  -x, --cache-bench PATH cache-bench binary (default: cargo build --release)
  -m, --maxmemory SIZE   memory limit of both servers (default 64mb)
  -k, --keys N           key space (default 1000000)
  -v, --value-size B     bytes per value (default 100)
  -t, --theta T          Zipf exponent (default 0.99)
  -w, --warmup N         operations before counting (default 2000000)
  -o, --ops N            counted operations (default 3000000)
  -r, --repeat N         repetitions (default 3)
  -p, --policies LIST    maxmemory policies (default allkeys-lru,allkeys-lfu)
  -s, --shards N         Shardis shards, on CPUs 0..N-1 (default 2)
  -C, --client-cpu N     CPU of cache-bench (default 1)
      --port-base N      first port (default 21579)
  -h, --help             this help
EOF
}

binary=""
cache_bench=""
maxmemory=64mb
keys=1000000
value_size=100
theta=0.99
warmup=2000000
ops=3000000
repeat=3
policies="allkeys-lru,allkeys-lfu"
shards=2
client_cpu=1
port_base=21579

while [ $# -gt 0 ]; do
    case "$1" in
        -b | --binary) binary="$2"; shift 2 ;;
        -x | --cache-bench) cache_bench="$2"; shift 2 ;;
        -m | --maxmemory) maxmemory="$2"; shift 2 ;;
        -k | --keys) keys="$2"; shift 2 ;;
        -v | --value-size) value_size="$2"; shift 2 ;;
        -t | --theta) theta="$2"; shift 2 ;;
        -w | --warmup) warmup="$2"; shift 2 ;;
        -o | --ops) ops="$2"; shift 2 ;;
        -r | --repeat) repeat="$2"; shift 2 ;;
        -p | --policies) policies="$2"; shift 2 ;;
        -s | --shards) shards="$2"; shift 2 ;;
        -C | --client-cpu) client_cpu="$2"; shift 2 ;;
        --port-base) port_base="$2"; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
done

tool=cache-compare
# shellcheck source=benches/lib/servers.sh
source "$(dirname "$0")/lib/servers.sh"

for v in "$keys" "$value_size" "$warmup" "$ops" "$repeat" "$shards" "$port_base"; do
    is_count "$v" || die "not a positive whole number: $v"
done
case "$client_cpu" in '' | *[!0-9]*) die "bad client CPU: $client_cpu" ;; esac
shard_list=("$shards")
check_machine
IFS=, read -r -a policy_list <<<"$policies"

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target="${CARGO_TARGET_DIR:-$root/target}/release"
if [ -z "$binary" ] || [ -z "$cache_bench" ]; then
    echo "building shardis-server and cache-bench (release)..." >&2
    (cd "$root" && cargo build --release -p shardis-server -p shardis-benches --bin cache-bench >&2)
fi
binary=${binary:-$target/shardis-server}
cache_bench=${cache_bench:-$target/cache-bench}
[ -x "$binary" ] || die "no executable at $binary"
[ -x "$cache_bench" ] || die "no executable at $cache_bench"

bench_pid=""
job_vars=(bench_pid)
servers_init

shard_cpus=0
[ "$shards" -eq 1 ] || shard_cpus="0-$((shards - 1))"

# field NAME LINE: the value of NAME=... in a line of NAME=VALUE words.
field() {
    tr ' ' '\n' <<<"$2" | awk -v k="$1=" 'index($0, k) == 1 { print substr($0, length(k) + 1) }'
}

info_field() { # port field
    redis-cli -h 127.0.0.1 -p "$1" info | tr -d '\r' | awk -F: -v f="$2" '$1 == f { print $2 }'
}

# Stops the servers started so far (each run starts its own).
stop_all() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    pids=()
    names=()
}

results="$work/results"
: >"$results"
echo "redis: $(redis-server --version | head -1)"
echo "shardis: $binary ($shards shards)"
echo "maxmemory $maxmemory, $keys keys of $value_size bytes, Zipf theta $theta," \
    "warm-up $warmup, counted $ops operations, $repeat repetitions"
echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)," \
    "load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
for rep in $(seq 1 "$repeat"); do
    for policy in "${policy_list[@]}"; do
        for server in redis shardis; do
            port=$((port_base + 1))
            if [ "$server" = redis ]; then
                start_redis redis 0 "$port" --maxmemory "$maxmemory" --maxmemory-policy "$policy"
            else
                start_server "shardis-$shards" "$shard_cpus" "$port" "$binary" --bind 127.0.0.1 \
                    --port "$port" --shards "$shards" --save '' --appendonly no \
                    --maxmemory "$maxmemory" --maxmemory-policy "$policy"
            fi
            taskset -c "$client_cpu" "$cache_bench" --port "$port" --keys "$keys" \
                --value-size "$value_size" --theta "$theta" --warmup "$warmup" --ops "$ops" \
                --seed "$rep" >"$work/bench.out" 2>&1 &
            bench_pid=$!
            wait "$bench_pid" || die "cache-bench failed against $server: $(cat "$work/bench.out")"
            bench_pid=""
            line=$(tail -1 "$work/bench.out")
            held=$(redis-cli -h 127.0.0.1 -p "$port" dbsize)
            evicted=$(info_field "$port" evicted_keys)
            ratio=$(field hit_ratio "$line")
            printf '%-8s %-12s run %d: hit ratio %s, %s keys held, %s evicted, %s ops/s\n' \
                "$server" "$policy" "$rep" "$ratio" "$held" "$evicted" "$(field ops/s "$line")"
            echo "$policy $server $ratio $held" >>"$results"
            stop_all
        done
    done
done

echo
python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    policy, server, ratio, held = line.split()
    rows.setdefault((policy, server), []).append((float(ratio), int(held)))
print("| policy | server | hit ratio, median | spread (min–max) | keys held, median | runs |")
print("|---|---|---:|---:|---:|---:|")
for (policy, server), runs in rows.items():
    ratios = [r for r, _ in runs]
    held = [h for _, h in runs]
    print(f"| {policy} | {server} | {statistics.median(ratios) * 100:.2f}% | "
          f"{min(ratios) * 100:.2f}–{max(ratios) * 100:.2f}% | {int(statistics.median(held))} | {len(runs)} |")
print()
print("| policy | Shardis − Redis, median hit ratio |")
print("|---|---:|")
for policy in dict.fromkeys(p for p, _ in rows):
    s = statistics.median(r for r, _ in rows[(policy, "shardis")])
    r = statistics.median(r for r, _ in rows[(policy, "redis")])
    print(f"| {policy} | {(s - r) * 100:+.2f} points |")
PY
