#!/usr/bin/env bash
# Pub/Sub and keyspace notifications, Shardis beside a real redis-server in the same run.
#
# Workloads (redis-benchmark, 50 connections, pinned to the client CPU):
#   publish-1    PUBLISH on one channel with 1 subscriber
#   publish-50   PUBLISH on one channel with 50 subscribers
#   set-plain    SET with notifications off
#   set-notify   SET with notify-keyspace-events KEA and one subscriber to __key*__:*
# Subscribers are redis-cli processes on their own connections (so, with 2 shards, spread over
# both cores by the kernel), reading and discarding what arrives. For each (workload, server):
# ops/s, ratio to Redis, the server's CPU µs per request, and for set-notify the ops/s ratio to
# set-plain on the same server (the cost of notifications).
#
# Usage: benches/pubsub-compare.sh [options]     (see --help)

set -euo pipefail

usage() {
    cat <<'EOF'
Usage: benches/pubsub-compare.sh [options]

  -b, --binary PATH     shardis-server binary (default: cargo build --release -p shardis-server)
  -n, --requests N      requests per run (default 200000)
  -s, --shards LIST     Shardis shard counts (default 1,2; N shards on CPUs 0..N-1)
  -R, --repeat N        repeat everything N times; medians and min–max (default 1)
  -P, --pipeline N      pipeline depth (default 1)
  -C, --client-cpu N    CPU of the load generator and subscribers (default 1)
      --port-base N     first port (default 22379)
  -h, --help            this help
EOF
}

requests=200000
shard_counts="1,2"
repeat=1
pipeline=1
client_cpu=1
port_base=22379
binary=""
while [ $# -gt 0 ]; do
    case "$1" in
        -b | --binary) binary="$2"; shift 2 ;;
        -n | --requests) requests="$2"; shift 2 ;;
        -s | --shards) shard_counts="$2"; shift 2 ;;
        -R | --repeat) repeat="$2"; shift 2 ;;
        -P | --pipeline) pipeline="$2"; shift 2 ;;
        -C | --client-cpu) client_cpu="$2"; shift 2 ;;
        --port-base) port_base="$2"; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

tool=pubsub-compare
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib/servers.sh
. "$here/lib/servers.sh"
subscriber_pids=()
job_vars=()
IFS=, read -r -a shard_list <<<"$shard_counts"
check_machine
servers_init
stop_subscribers() {
    local p
    for p in "${subscriber_pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${subscriber_pids[@]}"; do wait "$p" 2>/dev/null || true; done
    subscriber_pids=()
}
trap 'stop_subscribers; cleanup' EXIT

if [ -z "$binary" ]; then
    (cd "$here/.." && cargo build --release -p shardis-server >/dev/null 2>&1) || die "build failed"
    binary="$here/../target/release/shardis-server"
fi

port=$port_base
start_redis redis 0 "$port"
for s in "${shard_list[@]}"; do
    port=$((port + 1))
    start_server "shardis-$s" "0-$((s - 1))" "$port" "$binary" --port "$port" --shards "$s" \
        --loglevel warning --save '' --appendonly no
done

# subscribe PORT COUNT ARGS...: COUNT redis-cli subscribers on the client CPU.
subscribe() {
    local p=$1 count=$2
    shift 2
    for _ in $(seq 1 "$count"); do
        taskset -c "$client_cpu" redis-cli -p "$p" "$@" >/dev/null 2>&1 &
        subscriber_pids+=("$!")
    done
    sleep 0.5
}

# run PORT ARGS...: ops/s of one redis-benchmark run of a custom command.
run() {
    local p=$1
    shift
    taskset -c "$client_cpu" redis-benchmark -p "$p" -c 50 -n "$requests" -P "$pipeline" -r 100000 \
        --csv "$@" 2>/dev/null | tail -n 1 | cut -d, -f2 | tr -d '"'
}

cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat"; }

declare -A ops cpu
for rep in $(seq 1 "$repeat"); do
    for name in "${names[@]}"; do
        p=${port_of[$name]}
        pid=${pid_of[$name]}
        for workload in publish-1 publish-50 set-plain set-notify; do
            redis-cli -p "$p" config set notify-keyspace-events "" >/dev/null
            case "$workload" in
                publish-1) subscribe "$p" 1 subscribe chan ;;
                publish-50) subscribe "$p" 50 subscribe chan ;;
                set-notify)
                    redis-cli -p "$p" config set notify-keyspace-events KEA >/dev/null
                    subscribe "$p" 1 psubscribe '__key*__:*'
                    ;;
            esac
            c0=$(cpu_of "$pid")
            case "$workload" in
                publish-*) r=$(run "$p" PUBLISH chan hello) ;;
                set-*) r=$(run "$p" SET 'key:__rand_int__' value) ;;
            esac
            c1=$(cpu_of "$pid")
            stop_subscribers
            us=$(echo "($c1 - $c0) * 1000000 / $(getconf CLK_TCK) / $requests" | bc -l)
            ops[$name,$workload]+="$r "
            cpu[$name,$workload]+="$us "
            echo "run $rep: $name $workload ${r} ops/s, $(printf '%.2f' "$us") µs/req" >&2
        done
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
spread() { tr ' ' '\n' | grep -v '^$' | sort -g | awk 'NR==1{lo=$1} {hi=$1} END {printf "%s–%s", lo, hi}'; }

echo
echo "| workload | server (CPUs) | ops/s (median, min–max) | ops ×redis | CPU µs/req | notify cost |"
echo "|---|---|---:|---:|---:|---:|"
for workload in publish-1 publish-50 set-plain set-notify; do
    base=$(echo "${ops[redis,$workload]}" | median)
    for name in "${names[@]}"; do
        m=$(echo "${ops[$name,$workload]}" | median)
        s=$(echo "${ops[$name,$workload]}" | spread)
        c=$(echo "${cpu[$name,$workload]}" | median)
        ratio=$(echo "$m / $base" | bc -l)
        cost=""
        if [ "$workload" = set-notify ]; then
            plain=$(echo "${ops[$name,set-plain]}" | median)
            cost=$(printf '%.2f×' "$(echo "$m / $plain" | bc -l)")
        fi
        printf '| %s | %s (%s) | %.0f (%s) | %.2f | %.2f | %s |\n' "$workload" "$name" \
            "${cpus_of[$name]}" "$m" "$s" "$ratio" "$c" "$cost"
    done
done
echo
echo "Load generator and subscribers on CPU $client_cpu; with 2 shards one shard shares it."
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
