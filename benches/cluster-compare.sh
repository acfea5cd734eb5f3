#!/usr/bin/env bash
# Cluster mode with a cluster-aware client: server CPU per request of one Shardis process in
# cluster mode with 1 and with 2 shards (each shard a node on its own port, so the client sends
# every key to the core owning it), of the same 2-shard server reached through its shared port
# by a client that is not cluster-aware (forwarding), and of a one-process Redis Cluster node
# owning every slot, all in the same run.
#
#   redis-server --cluster-enabled yes (all slots)   on CPU 0
#   shardis-server --shards 1 --cluster-enabled yes  on CPU 0
#   shardis-server --shards 2 --cluster-enabled yes  on CPUs 0-1
# redis-benchmark --cluster (Debian's redis-tools 7.0) refuses a cluster of one node, so the
# one-node servers (Redis, Shardis with 1 shard) get plain redis-benchmark on the node's own
# port: every slot is that node's, so a cluster-aware client would send it the same requests,
# and the server still checks each key's slot. The 2-shard server gets redis-benchmark
# --cluster (started on the shared port, it reads CLUSTER NODES and talks to each node's port),
# and plain redis-benchmark on the shared port (forwarding).
# The load generator runs on CPU 1, so
# with 2 shards it shares a CPU with one of them; CPU per request is the server's own
# (utime + stime of its process from /proc over the run), which that does not change.
#
# Usage: benches/cluster-compare.sh [-b BINARY] [-n REQUESTS] [-R REPEAT] [-P "1 16"]
# Prints one row per run, then medians and min–max per (test, pipeline, server).

set -euo pipefail

binary=""
requests=200000
repeat=3
pipelines="1 16"
clients=50
keyspace=100000
base=23379
while [ $# -gt 0 ]; do
    case "$1" in
        -b) binary="$2"; shift 2 ;;
        -n) requests="$2"; shift 2 ;;
        -R) repeat="$2"; shift 2 ;;
        -P) pipelines="$2"; shift 2 ;;
        -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "$binary" ]; then
    (cd "$root" && cargo build --release -p shardis-server >&2)
    binary="$root/target/release/shardis-server"
fi
work="$(mktemp -d /tmp/shardis-cluster-compare.XXXXXX)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

wait_port() {
    for _ in $(seq 100); do
        redis-cli -p "$1" ping >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "nothing answers on port $1" >&2
    exit 1
}

# Ticks of user + system time of a process.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

start() { # name cpus port args...
    local name=$1 cpus=$2 port=$3
    shift 3
    mkdir -p "$work/$name"
    (cd "$work/$name" && exec taskset -c "$cpus" "$@" >"$work/$name.log" 2>&1) &
    pids+=($!)
    eval "pid_$name=$!"
    wait_port "$port"
}

redis_port=$base
s1_port=$((base + 10))
s2_port=$((base + 20))
start redis 0 "$redis_port" redis-server --port "$redis_port" --cluster-enabled yes \
    --save "" --appendonly no --cluster-config-file "$work/redis-nodes.conf"
redis-cli -p "$redis_port" cluster addslotsrange 0 16383 >/dev/null
for _ in $(seq 100); do
    redis-cli -p "$redis_port" cluster info | grep -q cluster_state:ok && break
    sleep 0.1
done
start s1 0 "$s1_port" "$binary" --port "$s1_port" --shards 1 --cluster-enabled yes
start s2 0-1 "$s2_port" "$binary" --port "$s2_port" --shards 2 --cluster-enabled yes

# server label, its pid, the port the client starts from, cluster-aware or not
servers="redis:$pid_redis:$redis_port:plain shardis1:$pid_s1:$((s1_port + 1)):plain shardis2:$pid_s2:$s2_port:cluster shardis2-shared:$pid_s2:$s2_port:plain"

rows="$work/rows.tsv"
printf 'test\tpipeline\tserver\trun\tops_per_s\tcpu_us_per_req\n' | tee "$rows"
for run in $(seq "$repeat"); do
    for test in set get; do
        for p in $pipelines; do
            for s in $servers; do
                IFS=: read -r label pid port mode <<<"$s"
                flag=""
                [ "$mode" = cluster ] && flag="--cluster"
                before=$(cpu_ticks "$pid")
                out=$(taskset -c 1 redis-benchmark $flag -h 127.0.0.1 -p "$port" -t "$test" \
                    -n "$requests" -c "$clients" -P "$p" -r "$keyspace" -q 2>&1 | tr '\r' '\n' |
                    grep -E 'requests per second' | tail -1)
                after=$(cpu_ticks "$pid")
                ops=$(echo "$out" | grep -oE '[0-9.]+ requests per second' | awk '{print $1}')
                cpu=$(awk -v t=$((after - before)) -v hz="$hz" -v n="$requests" \
                    'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
                printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$test" "$p" "$label" "$run" "${ops:-?}" "$cpu" |
                    tee -a "$rows"
            done
        done
    done
done
echo
echo "medians (min-max) over $repeat runs:"
printf 'test\tpipeline\tserver\tops/s\tcpu µs/req\n'
python3 - "$rows" <<'PY'
import csv, statistics, sys
runs = {}
with open(sys.argv[1]) as f:
    for r in csv.DictReader(f, delimiter="\t"):
        key = (r["test"], int(r["pipeline"]), r["server"])
        runs.setdefault(key, []).append((float(r["ops_per_s"]), float(r["cpu_us_per_req"])))
for (test, p, server), v in sorted(runs.items()):
    ops = [o for o, _ in v]
    cpu = [c for _, c in v]
    print(f"{test}\t{p}\t{server}\t{statistics.median(ops):.0f} ({min(ops):.0f}-{max(ops):.0f})"
          f"\t{statistics.median(cpu):.2f} ({min(cpu):.2f}-{max(cpu):.2f})")
PY
