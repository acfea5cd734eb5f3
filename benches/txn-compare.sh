#!/usr/bin/env bash
# Compares transactions (MULTI/EXEC), MSET, and GET/SET under a background transaction load,
# between Shardis and a real redis-server on this machine, as throughput ratios.
#
# Servers, as in benches/redis-compare.sh, side by side on 127.0.0.1 and pinned with taskset:
#   redis-server            on CPU 0
#   shardis-server -s 1     on CPU 0          (the like-for-like comparison)
#   shardis-server -s 2     on CPUs 0-1       (shares CPU 1 with the load generators)
# The load generators (txn-bench, redis-benchmark) run on the client CPU (1).
#
# Cases, each run against every server back to back (so that drift of the machine's load hits
# them alike):
#   multi-tag    MULTI + 5 SET + EXEC, keys with one hash tag (one shard)   txn-bench
#   multi-cross  MULTI + 5 SET + EXEC, keys on both shards of 2              txn-bench
#   mset-cross   MSET of 10 keys on both shards of 2                         txn-bench
#   mset-tag     MSET of 10 keys with one hash tag                           txn-bench
#   GET/SET      redis-benchmark -P 16 and -P 1, idle and with --bg-clients txn-bench clients
#                looping multi-cross in the background (same load against Redis)
# txn-bench sends each transaction as one write and checks every reply byte for byte, then
# checks that the keys hold what was written (see benches/src/bin/txn-bench.rs).
#
# Usage: benches/txn-compare.sh [options]     (see --help)

set -euo pipefail

usage() {
    cat <<'EOF'
Usage: benches/txn-compare.sh [options]

  -b, --binary PATH     shardis-server binary (default: cargo build --release)
  -x, --txn-bench PATH  txn-bench binary (default: cargo build --release)
  -d, --duration S      measured seconds per txn-bench run (default 5)
  -c, --clients N       txn-bench connections (default 32)
      --bg-clients N    background transaction clients during GET/SET (default 4)
  -n, --requests N      redis-benchmark requests at -P 1; -P 16 runs 8 times as many
                        (default 100000)
      --bench-clients N redis-benchmark connections (default 50)
  -r, --keyspace N      keys for GET/SET (default 10000; populated so GETs hit)
  -s, --shards LIST     Shardis shard counts; N shards run on CPUs 0..N-1 (default 1,2)
  -C, --client-cpu N    CPU of the load generators (default 1)
      --port-base N     first port; servers use N, N+1, ... (default 21479)
      --run-timeout S   time limit of one run, seconds (default 120)
  -h, --help            this help
EOF
}

duration=5
clients=32
bg_clients=4
requests=100000
bench_clients=50
keyspace=10000
shard_counts="1,2"
client_cpu=1
port_base=21479
run_timeout=120
binary=""
txn_bench=""

while [ $# -gt 0 ]; do
    case "$1" in
        -b | --binary) binary="$2"; shift 2 ;;
        -x | --txn-bench) txn_bench="$2"; shift 2 ;;
        -d | --duration) duration="$2"; shift 2 ;;
        -c | --clients) clients="$2"; shift 2 ;;
        --bg-clients) bg_clients="$2"; shift 2 ;;
        -n | --requests) requests="$2"; shift 2 ;;
        --bench-clients) bench_clients="$2"; shift 2 ;;
        -r | --keyspace) keyspace="$2"; shift 2 ;;
        -s | --shards) shard_counts="$2"; shift 2 ;;
        -C | --client-cpu) client_cpu="$2"; shift 2 ;;
        --port-base) port_base="$2"; shift 2 ;;
        --run-timeout) run_timeout="$2"; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
done

tool=txn-compare
# shellcheck source=benches/lib/servers.sh
source "$(dirname "$0")/lib/servers.sh"


for v in "$duration" "$clients" "$bg_clients" "$requests" "$bench_clients" "$keyspace" \
    "$port_base" "$run_timeout"; do
    is_count "$v" || die "not a positive whole number: $v"
done
case "$client_cpu" in '' | *[!0-9]*) die "bad client CPU: $client_cpu" ;; esac
[ "$run_timeout" -gt $((duration + 5)) ] || die "--run-timeout must exceed --duration + 5"
IFS=, read -r -a shard_list <<<"$shard_counts"
check_machine

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target="${CARGO_TARGET_DIR:-$root/target}/release"
if [ -z "$binary" ] || [ -z "$txn_bench" ]; then
    echo "building shardis-server and txn-bench (release)..." >&2
    (cd "$root" && cargo build --release -p shardis-server -p shardis-benches --bin txn-bench >&2)
fi
binary=${binary:-$target/shardis-server}
txn_bench=${txn_bench:-$target/txn-bench}
[ -x "$binary" ] || die "no executable at $binary"
[ -x "$txn_bench" ] || die "no executable at $txn_bench"

fg_pid=""
bg_pid=""
job_vars=(fg_pid bg_pid)
servers_init
start_compared_servers

# The keys redis-benchmark's -r draws from, SET once on every server so that GETs hit.
awk -v n="$keyspace" 'BEGIN {
    for (i = 0; i < n; i++)
        printf "*3\r\n$3\r\nSET\r\n$16\r\nkey:%012d\r\n$3\r\nxxx\r\n", i
}' >"$work/populate.resp"
for name in "${names[@]}"; do
    out=$(taskset -c "$client_cpu" redis-cli -h 127.0.0.1 -p "${port_of[$name]}" --pipe \
        <"$work/populate.resp" 2>&1)
    case "$out" in
        *"errors: 0, replies: $keyspace"*) ;;
        *) die "populating $name failed: $out" ;;
    esac
done

# CPU time (utime + stime, all threads) of a process, in clock ticks.
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}
ticks_per_sec=$(getconf CLK_TCK)

# field NAME LINE: the value of NAME=... in a txn-bench output line.
field() {
    tr ' ' '\n' <<<"$2" | awk -v k="$1=" 'index($0, k) == 1 { print substr($0, length(k) + 1) }'
}

failures=()
declare -A ops cpu_per_op client_cpu_of bg_ops

# Runs a command in the background and waits for it, so that a signal to the script is
# handled at once; returns its status.
run_fg() {
    "$@" &
    fg_pid=$!
    local status=0
    wait "$fg_pid" || status=$?
    fg_pid=""
    return "$status"
}

# One txn-bench run of case $2 against server $1.
run_txn() {
    local name=$1 case=$2 out t0 t1 total
    local pid=${pid_of[$name]}
    echo "running $name: $case" >&2
    t0=$(cpu_ticks "$pid")
    if ! run_fg timeout "$run_timeout" taskset -c "$client_cpu" "$txn_bench" \
        --port "${port_of[$name]}" --case "$case" --clients "$clients" \
        --duration "$duration" >"$work/txn.out" 2>"$work/txn.err"; then
        failures+=("$name $case: $(head -c 300 "$work/txn.err" | tr '\n' ' ')")
        return 0
    fi
    t1=$(cpu_ticks "$pid")
    out=$(cat "$work/txn.out")
    echo "  $out" >&2
    total=$(field total "$out")
    ops["$name|$case"]=$(field ops/s "$out")
    client_cpu_of["$name|$case"]=$(field client_cpu "$out")
    cpu_per_op["$name|$case"]=$(awk -v d=$((t1 - t0)) -v hz="$ticks_per_sec" -v n="$total" \
        'BEGIN { if (n > 0) printf "%.1f", d / hz * 1e6 / n; else print "-" }')
}

# One redis-benchmark run of test $2 at pipeline $3 against server $1; with $4 = busy,
# txn-bench loops multi-cross in the background for as long as redis-benchmark runs.
run_plain() {
    local name=$1 test=$2 pipeline=$3 mode=$4
    local port=${port_of[$name]} key="$name|$test|$pipeline|$mode"
    local n=$requests
    [ "$pipeline" -eq 1 ] || n=$((requests * 8))
    echo "running $name: $test -P $pipeline ($mode)" >&2
    local stop="$work/stop"
    rm -f "$stop"
    if [ "$mode" = busy ]; then
        taskset -c "$client_cpu" "$txn_bench" --port "$port" --case multi-cross \
            --clients "$bg_clients" --warmup 0.3 --duration "$run_timeout" \
            --stop-file "$stop" >"$work/bg.out" 2>"$work/bg.err" &
        bg_pid=$!
        sleep 0.5
    fi
    local status=0
    run_fg timeout "$run_timeout" taskset -c "$client_cpu" redis-benchmark -h 127.0.0.1 \
        -p "$port" -n "$n" -c "$bench_clients" -r "$keyspace" -P "$pipeline" -t "$test" \
        --csv >"$work/bench.csv" 2>"$work/bench.err" || status=$?
    if [ -n "$bg_pid" ]; then
        touch "$stop"
        local bg_status=0
        wait "$bg_pid" || bg_status=$?
        bg_pid=""
        if [ "$bg_status" -ne 0 ]; then
            failures+=("$name background txn-bench: $(head -c 300 "$work/bg.err" | tr '\n' ' ')")
        else
            bg_ops["$key"]=$(field ops/s "$(cat "$work/bg.out")")
        fi
    fi
    if [ "$status" -ne 0 ]; then
        local why
        why=$(grep -v 'Could not fetch server CONFIG' "$work/bench.err" | head -c 200 | tr '\n' ' ')
        [ "$status" -ne 124 ] || why="timed out after ${run_timeout}s"
        failures+=("$name $test -P $pipeline $mode: ${why:-exit status $status}")
        return 0
    fi
    # The CSV row: "SET","123456.79",...
    ops["$key"]=$(awk -F'"' 'NR > 1 && $2 != "" { printf "%.0f", $4; exit }' "$work/bench.csv")
    echo "  ${ops[$key]} ops/s${bg_ops[$key]:+, background ${bg_ops[$key]} txn/s}" >&2
}

redis_version=$(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')
echo "# txn-compare: $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $ncpu CPUs ($(
    sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1))"
echo "# redis-server $redis_version; $("$binary" --version | head -n 1)"
echo "# txn-bench: $clients clients, ${duration}s per run; redis-benchmark: -n $requests (x8 at -P 16) -c $bench_clients -r $keyspace; background: $bg_clients multi-cross clients"
echo "# load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"

txn_cases=(multi-tag multi-cross mset-cross mset-tag)
for case in "${txn_cases[@]}"; do
    for name in "${names[@]}"; do
        run_txn "$name" "$case"
    done
done
for mode in idle busy; do
    for test in get set; do
        for pipeline in 16 1; do
            for name in "${names[@]}"; do
                run_plain "$name" "$test" "$pipeline" "$mode"
            done
        done
    done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# ratio A B: B / A to two decimals, or "-".
ratio() {
    awk -v a="${1:--}" -v b="${2:--}" 'BEGIN {
        if (a == "-" || b == "-" || a + 0 <= 0) print "-"; else printf "%.2f", b / a }'
}

shardis_names=("${names[@]:1}")
echo
echo "## Transactions and MSET (txn-bench on CPU $client_cpu; ops/s = transactions or MSETs per second)"
echo
header="| case | redis ops/s |"
rule="|---|---:|"
for name in "${shardis_names[@]}"; do
    header="$header $name (CPUs ${cpus_of[$name]}) ops/s | ratio |"
    rule="$rule---:|---:|"
done
header="$header server CPU µs/op (redis"
for name in "${shardis_names[@]}"; do header="$header / $name"; done
header="$header) | client CPU % (same order) |"
rule="$rule---:|---:|"
echo "$header"
echo "$rule"
for case in "${txn_cases[@]}"; do
    r=${ops["redis|$case"]:--}
    line="| $case | $r |"
    cpu="${cpu_per_op["redis|$case"]:--}"
    ccpu="${client_cpu_of["redis|$case"]:--}"
    for name in "${shardis_names[@]}"; do
        x=${ops["$name|$case"]:--}
        line="$line $x | $(ratio "$r" "$x") |"
        cpu="$cpu / ${cpu_per_op["$name|$case"]:--}"
        ccpu="$ccpu / ${client_cpu_of["$name|$case"]:--}"
    done
    echo "$line $cpu | $ccpu |"
done

echo
echo "## GET/SET (redis-benchmark on CPU $client_cpu), idle and with $bg_clients background multi-cross clients"
echo
header="| test | pipeline | background | redis ops/s |"
rule="|---|---:|---|---:|"
for name in "${shardis_names[@]}"; do
    header="$header $name ops/s | ratio |"
    rule="$rule---:|---:|"
done
header="$header background txn/s (redis"
for name in "${shardis_names[@]}"; do header="$header / $name"; done
header="$header) |"
rule="$rule---:|"
echo "$header"
echo "$rule"
for test in get set; do
    for pipeline in 16 1; do
        for mode in idle busy; do
            r=${ops["redis|$test|$pipeline|$mode"]:--}
            label=none
            [ "$mode" = idle ] || label="$bg_clients txn clients"
            line="| ${test^^} | $pipeline | $label | $r |"
            bg="${bg_ops["redis|$test|$pipeline|$mode"]:--}"
            for name in "${shardis_names[@]}"; do
                x=${ops["$name|$test|$pipeline|$mode"]:--}
                line="$line $x | $(ratio "$r" "$x") |"
                bg="$bg / ${bg_ops["$name|$test|$pipeline|$mode"]:--}"
            done
            [ "$mode" = busy ] || bg="-"
            echo "$line $bg |"
        done
    done
done
echo
echo "load average at the end: $load_end"
if [ "${#failures[@]}" -gt 0 ]; then
    echo
    echo "Runs that failed (shown as -):"
    printf -- '- %s\n' "${failures[@]}"
    exit 1
fi
