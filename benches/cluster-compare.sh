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
# With --memtier-rate OPS the runs use memtier_benchmark instead (benches/build-memtier.sh
# builds it; 1:10 set:get, --key-pattern R:R, one thread) offering the same OPS requests per
# second in all to every server, for --time seconds: at the same offered load the three
# Shardis layouts compare like for like, where redis-benchmark would drive each to its own
# saturation point (a 2-shard server shares CPU 1 with the load generator, so it is driven
# less hard, serves fewer requests per pass and so pays more per request). The cluster-aware
# run uses --cluster-mode with 25 clients, each holding a connection to both nodes, so every
# server gets 50 connections. These runs also report voluntary context switches of the server
# per request (its cores going to sleep and being woken).
#
# Usage: benches/cluster-compare.sh [-b BINARY] [-n REQUESTS] [-R REPEAT] [-P "1 16"]
#                                   [--memtier-rate OPS] [--time SECONDS] [--memtier PATH]
# Prints one row per run, then medians and min–max per (test, pipeline, server).

set -euo pipefail

binary=""
requests=200000
repeat=3
pipelines="1 16"
clients=50
keyspace=100000
base=23379
rate=""
seconds=5
memtier="${MEMTIER:-${XDG_CACHE_HOME:-$HOME/.cache}/shardis-bench/bin/memtier_benchmark}"
while [ $# -gt 0 ]; do
    case "$1" in
        -b) binary="$2"; shift 2 ;;
        -n) requests="$2"; shift 2 ;;
        -R) repeat="$2"; shift 2 ;;
        -P) pipelines="$2"; shift 2 ;;
        --memtier-rate) rate="$2"; shift 2 ;;
        --time) seconds="$2"; shift 2 ;;
        --memtier) memtier="$2"; shift 2 ;;
        -h | --help) sed -n '2,33p' "$0"; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
if [ -n "$rate" ]; then
    case "$rate$seconds" in *[!0-9]*) echo "--memtier-rate and --time take whole numbers" >&2; exit 2 ;; esac
    [ "$rate" -ge "$clients" ] || { echo "--memtier-rate must be at least $clients" >&2; exit 2; }
    [ -x "$memtier" ] || { echo "memtier_benchmark not found at $memtier: build it with benches/build-memtier.sh or pass --memtier" >&2; exit 2; }
fi
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
# Voluntary context switches of every thread of a process.
sleeps() { cat /proc/"$1"/task/*/status | awk '/^voluntary_ctxt_switches/ { n += $2 } END { print n }'; }
# Commands the server on a port has run (every core's, summed by INFO).
commands() { redis-cli -p "$1" info stats | tr -d '\r' | awk -F: '/^total_commands_processed:/ { print $2 }'; }

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
if [ -n "$rate" ]; then
    # Every key the runs draw exists on every server before they start.
    for s in $servers; do
        IFS=: read -r label pid port mode <<<"$s"
        flag=()
        [ "$mode" = cluster ] && flag=(--cluster-mode)
        [ "$label" = shardis2-shared ] && continue
        "$memtier" -s 127.0.0.1 -p "$port" "${flag[@]}" -t 1 -c 50 --pipeline 32 --ratio 1:0 \
            --key-pattern P:P --key-maximum "$keyspace" -n allkeys --hide-histogram >/dev/null 2>&1
    done
    printf 'test\tpipeline\tserver\trun\tops_per_s\tcpu_us_per_req\tswitches_per_req\n' | tee "$rows"
    for run in $(seq "$repeat"); do
        for p in $pipelines; do
            for s in $servers; do
                IFS=: read -r label pid port mode <<<"$s"
                flag=()
                conns=$clients
                if [ "$mode" = cluster ]; then
                    flag=(--cluster-mode)
                    conns=$((clients / 2))
                fi
                per_conn=$(((rate + clients - 1) / clients))
                before=$(cpu_ticks "$pid")
                switches=$(sleeps "$pid")
                done_before=$(commands "$port")
                taskset -c 1 "$memtier" -s 127.0.0.1 -p "$port" "${flag[@]}" -t 1 -c "$conns" \
                    --pipeline "$p" --ratio 1:10 --key-pattern R:R --key-maximum "$keyspace" \
                    --test-time "$seconds" --rate-limiting "$per_conn" --hide-histogram \
                    >"$work/memtier.out" 2>&1
                after=$(cpu_ticks "$pid")
                switches=$(($(sleeps "$pid") - switches))
                served=$(($(commands "$port") - done_before))
                ops=$(awk '/^Totals/ { printf "%.0f", $2 }' "$work/memtier.out")
                awk -v p="$p" -v l="$label" -v r="$run" -v o="${ops:-0}" -v t=$((after - before)) \
                    -v hz="$hz" -v n="$served" -v w="$switches" 'BEGIN {
                        if (n < 1) n = 1
                        printf "memtier\t%s\t%s\t%s\t%s\t%.2f\t%.3f\n", p, l, r, o, t / hz * 1e6 / n, w / n
                    }' | tee -a "$rows"
            done
        done
    done
else
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
fi
echo
echo "medians (min-max) over $repeat runs:"
printf 'test\tpipeline\tserver\tops/s\tcpu µs/req\n'
python3 - "$rows" <<'PY'
import csv, statistics, sys
runs = {}
with open(sys.argv[1]) as f:
    for r in csv.DictReader(f, delimiter="\t"):
        key = (r["test"], int(r["pipeline"]), r["server"])
        row = (float(r["ops_per_s"]), float(r["cpu_us_per_req"]), r.get("switches_per_req"))
        runs.setdefault(key, []).append(row)
def spread(values, digits):
    return (f"{statistics.median(values):.{digits}f} "
            f"({min(values):.{digits}f}-{max(values):.{digits}f})")
for (test, p, server), v in sorted(runs.items()):
    line = f"{test}\t{p}\t{server}\t{spread([o for o, _, _ in v], 0)}\t{spread([c for _, c, _ in v], 2)}"
    if v[0][2] is not None:
        line += f"\t{spread([float(w) for _, _, w in v], 3)} switches/req"
    # What the layout costs against one shard in the same runs (medians).
    one = runs.get((test, p, "shardis1"))
    if one and server.startswith("shardis2"):
        ratio = statistics.median([c for _, c, _ in v]) / statistics.median([c for _, c, _ in one])
        line += f"\t{ratio:.2f}x shardis1"
    print(line)
PY
