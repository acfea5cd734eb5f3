#!/usr/bin/env bash
# How Shardis scales with cores: throughput and server CPU per request of shardis-server with
# 1..N shards, against redis-server and redis-server with I/O threads on the same CPUs, with the
# load generator on CPUs of its own.
#
# CPUs are split into server CPUs and client CPUs (--server-cpus, --client-cpus; by default the
# last quarter of the machine, at least one CPU, drives the load). A configuration with K
# threads runs on the first K server CPUs:
#   shardis-K   shardis-server --shards K             (one shard per CPU of its affinity mask)
#   redis       redis-server                          (on the first server CPU)
#   redis-ioK   redis-server --io-threads K --io-threads-do-reads yes
# If K is more than the server CPUs, the configuration borrows client CPUs, and the output says
# that the load generator then shares CPUs with the server. On a 2-CPU machine this is all
# there is: 1 shard against Redis with the client on the other CPU, and 2 shards (or 2 I/O
# threads) sharing a CPU with the client. Run it on a bigger machine for the scaling itself.
#
# Workloads and measures are those of redis-compare.sh (lib/measure.sh): redis-benchmark and
# memtier_benchmark (with as many threads as client CPUs), ops/s, server CPU per request split
# into user and kernel time, p50/p99 latency; every configuration is measured back to back per
# workload; medians over --repeat. Results and charts (against the thread count) go to OUT.
#
# Usage: benches/scaling.sh [options]     (see --help)

set -euo pipefail

usage() {
    cat <<'EOF'
Usage: benches/scaling.sh [options]

  -b, --binary PATH       shardis-server binary (default: cargo build --release -p shardis-server)
  -n, --requests N        requests per run (default 200000)
  -t, --tests LIST        workloads among get,set,incr,mset,ping,memtier (default get,set,memtier;
                          memtier is skipped with a warning if its binary is missing and -t was
                          not given)
  -P, --pipelines LIST    pipeline depths (default 1,16)
  -s, --shards LIST       Shardis shard counts (default 1..the number of server CPUs, and at
                          least 1,2)
      --io-threads LIST   Redis I/O thread counts besides plain Redis, or "none" (default: 2,4,8,..
                          up to the largest shard count)
      --server-cpus LIST  taskset-style CPU list for the servers (default: the CPUs that are not
                          client CPUs)
      --client-cpus LIST  CPUs of the load generator (default: the last quarter of the CPUs, at
                          least one)
      --client-threads N  load generator threads: memtier -t, redis-benchmark --threads
                          (default: the number of client CPUs)
  -c, --clients N         connections in all (default 50)
  -R, --repeat N          run everything N times; report medians and min–max (default 1)
  -r, --keyspace N        random keys per workload (default 100000)
      --memtier PATH      memtier_benchmark binary (default: $MEMTIER, memtier_benchmark on PATH,
                          then ~/.cache/shardis-bench/bin/memtier_benchmark; build it with
                          benches/build-memtier.sh)
      --memtier-ratio R   memtier's set:get ratio (default 1:10)
      --memtier-rate N    memtier's offered load, ops/s in all (spread over its connections),
                          so that latency is compared at the same rate (default: as fast as it
                          can; ops/s then tells whether a server kept up)
  -o, --out DIR           results directory (default /tmp/shardis-bench/scaling-TIME)
      --no-plots          do not draw charts
      --port-base N       first port; the servers use N, N+1, ... (default 21579)
      --run-timeout S     time limit of one load-generator run, seconds (default 120)
      --deadline S        stop starting new runs after S seconds in total (default 3000)
  -q, --quick             quick mode: -n 20000 -r 10000 unless given
  -h, --help              this help

Output (stdout and OUT/report.md): one row per (workload, pipeline, configuration) with ops/s,
its ratio to plain Redis, server CPU µs per request (user, kernel, total) and its ratio to
plain Redis, p50 and p99 latency. OUT/results.tsv has every run, OUT/summary.tsv the medians,
OUT/ops-vs-threads.png and OUT/cpu-vs-threads.png the charts.
EOF
}

requests=200000
tests="get,set,memtier"
tests_given=0
pipelines="1,16"
shard_counts=""
io_threads=""
server_cpus=""
client_cpus=""
client_threads=""
clients=50
repeat=1
keyspace=100000
memtier_path=""
memtier_ratio="1:10"
memtier_rate=""
out=""
plots=1
port_base=21579
run_timeout=120
deadline=3000
binary=""
quick=0
requests_given=0
keyspace_given=0

while [ $# -gt 0 ]; do
    case "$1" in
        -b | --binary) binary="$2"; shift 2 ;;
        -n | --requests) requests="$2"; requests_given=1; shift 2 ;;
        -t | --tests) tests="$2"; tests_given=1; shift 2 ;;
        -P | --pipelines) pipelines="$2"; shift 2 ;;
        -s | --shards) shard_counts="$2"; shift 2 ;;
        --io-threads) io_threads="$2"; shift 2 ;;
        --server-cpus) server_cpus="$2"; shift 2 ;;
        --client-cpus) client_cpus="$2"; shift 2 ;;
        --client-threads) client_threads="$2"; shift 2 ;;
        -c | --clients) clients="$2"; shift 2 ;;
        -R | --repeat) repeat="$2"; shift 2 ;;
        -r | --keyspace) keyspace="$2"; keyspace_given=1; shift 2 ;;
        --memtier) memtier_path="$2"; shift 2 ;;
        --memtier-ratio) memtier_ratio="$2"; shift 2 ;;
        --memtier-rate) memtier_rate="$2"; shift 2 ;;
        -o | --out) out="$2"; shift 2 ;;
        --no-plots) plots=0; shift ;;
        --port-base) port_base="$2"; shift 2 ;;
        --run-timeout) run_timeout="$2"; shift 2 ;;
        --deadline) deadline="$2"; shift 2 ;;
        -q | --quick) quick=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
done

if [ "$quick" = 1 ]; then
    [ "$requests_given" = 1 ] || requests=20000
    [ "$keyspace_given" = 1 ] || keyspace=10000
fi

tool=scaling
bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$bench_dir/.." && pwd)
# shellcheck source=benches/lib/servers.sh
source "$bench_dir/lib/servers.sh"
# shellcheck source=benches/lib/measure.sh
source "$bench_dir/lib/measure.sh"

is_count "$repeat" || die "--repeat must be at least 1"
for v in "$requests" "$clients" "$keyspace"; do
    is_count "$v" || die "-n, -c and -r must be at least 1"
done
for v in "$port_base" "$run_timeout" "$deadline"; do
    is_uint "$v" || die "not a number: $v"
done
check_ratio "$memtier_ratio"
[ -z "$memtier_rate" ] || is_count "$memtier_rate" || die "--memtier-rate must be at least 1"
check_tools python3

# A taskset-style list ("0-3,6") as CPU numbers, one a line, each checked against the machine.
expand_cpus() {
    local part lo hi cpu
    IFS=, read -r -a _parts <<<"$1"
    for part in "${_parts[@]}"; do
        case "$part" in
            *-*) lo=${part%-*}; hi=${part#*-} ;;
            *) lo=$part; hi=$part ;;
        esac
        if ! is_uint "$lo" || ! is_uint "$hi" || [ "$lo" -gt "$hi" ]; then die "bad CPU list: $1"; fi
        for ((cpu = lo; cpu <= hi; cpu++)); do
            [ "$cpu" -lt "$ncpu" ] || die "CPU $cpu does not exist ($ncpu CPUs)"
            echo "$cpu"
        done
    done
}

join_by_comma() {
    local IFS=,
    echo "$*"
}

if [ -z "$client_cpus" ]; then
    quarter=$((ncpu / 4))
    [ "$quarter" -ge 1 ] || quarter=1
    client_cpus="$((ncpu - quarter))-$((ncpu - 1))"
fi
# (Expanded into a variable first: a failure inside < <(...) would go unnoticed.)
expanded=$(expand_cpus "$client_cpus")
mapfile -t client_cpu_list <<<"$expanded"
if [ -z "$server_cpus" ]; then
    server_cpu_list=()
    for ((cpu = 0; cpu < ncpu; cpu++)); do
        case " ${client_cpu_list[*]} " in *" $cpu "*) ;; *) server_cpu_list+=("$cpu") ;; esac
    done
    [ "${#server_cpu_list[@]}" -gt 0 ] || die "no CPU left for the servers; give --server-cpus"
else
    expanded=$(expand_cpus "$server_cpus")
    mapfile -t server_cpu_list <<<"$expanded"
fi
client_cpus=$(join_by_comma "${client_cpu_list[@]}")
[ -n "$client_threads" ] || client_threads=${#client_cpu_list[@]}
is_count "$client_threads" || die "--client-threads must be at least 1"

# The CPUs of a configuration with $1 threads: the first server CPUs, then client CPUs.
all_cpus=("${server_cpu_list[@]}")
for cpu in "${client_cpu_list[@]}"; do
    case " ${all_cpus[*]} " in *" $cpu "*) ;; *) all_cpus+=("$cpu") ;; esac
done
cpus_for() {
    [ "$1" -le "${#all_cpus[@]}" ] || die "$1 threads need $1 CPUs; there are ${#all_cpus[@]}"
    join_by_comma "${all_cpus[@]:0:$1}"
}
# True if a configuration with $1 threads shares a CPU with the load generator.
overlaps_client() {
    local cpu
    for cpu in ${1//,/ }; do
        case " ${client_cpu_list[*]} " in *" $cpu "*) return 0 ;; esac
    done
    return 1
}

if [ -z "$shard_counts" ]; then
    top=${#server_cpu_list[@]}
    [ "$top" -ge 2 ] || top=2
    [ "$top" -le "${#all_cpus[@]}" ] || top=${#all_cpus[@]}
    mapfile -t counts < <(seq 1 "$top")
    shard_counts=$(join_by_comma "${counts[@]}")
fi
IFS=, read -r -a shard_list <<<"$shard_counts"
max_shards=1
for s in "${shard_list[@]}"; do
    is_count "$s" || die "bad shard count: $s"
    cpus_for "$s" >/dev/null
    [ "$s" -le "$max_shards" ] || max_shards=$s
done
if [ -z "$io_threads" ]; then
    io_list=()
    for ((k = 2; k <= max_shards; k *= 2)); do io_list+=("$k"); done
    io_threads=$(join_by_comma "${io_list[@]}")
fi
[ "$io_threads" != none ] || io_threads=""
IFS=, read -r -a io_list <<<"$io_threads"
for k in "${io_list[@]}"; do
    if ! is_count "$k" || [ "$k" -lt 2 ]; then die "bad --io-threads count: $k (2 or more)"; fi
    cpus_for "$k" >/dev/null
done

find_memtier "$memtier_path"
tests=$(checked_tests "$tests" "$tests_given")
IFS=, read -r -a test_list <<<"$tests"
IFS=, read -r -a pipeline_list <<<"$pipelines"
for p in "${pipeline_list[@]}"; do
    is_count "$p" || die "bad pipeline depth: $p"
done

if [ -z "$binary" ]; then
    echo "building shardis-server (release)..." >&2
    (cd "$root" && cargo build --release -p shardis-server >&2)
    binary="${CARGO_TARGET_DIR:-$root/target}/release/shardis-server"
fi
[ -x "$binary" ] || die "no executable at $binary"

[ -n "$out" ] || out="/tmp/shardis-bench/scaling-$(date -u +%Y%m%d-%H%M%S)"
generator_pid=""
strace_pid=""
job_vars=(generator_pid strace_pid)
servers_init
measure_init

port=$port_base
start_redis redis "$(cpus_for 1)" "$port"
for k in "${io_list[@]}"; do
    port=$((port + 1))
    start_redis "redis-io$k" "$(cpus_for "$k")" "$port" --io-threads "$k" --io-threads-do-reads yes
done
for s in "${shard_list[@]}"; do
    port=$((port + 1))
    start_server "shardis-$s" "$(cpus_for "$s")" "$port" \
        "$binary" --bind 127.0.0.1 --port "$port" --shards "$s" --save '' --appendonly no
done

has_memtier=0
case ",$tests," in *,memtier,*) has_memtier=1 ;; esac
write_populate_file "$has_memtier"
for name in "${names[@]}"; do
    populate "$name"
done

say "# scaling: $(date -u '+%Y-%m-%d %H:%M UTC'), $(machine_line)"
say "# redis-server $(redis_version); $("$binary" --version | head -n 1) ($binary)"
[ -z "$memtier" ] || say "# $("$memtier" --version | head -n 1) ($memtier)"
[ -z "$memtier_rate" ] || say "# memtier offers $memtier_rate ops/s in all (--memtier-rate)"
say "# -n $requests -c $clients -r $keyspace, tests $tests, pipelines $pipelines, medians of $repeat run(s); load average $(cut -d' ' -f1-3 /proc/loadavg)"
say "# server CPUs $(join_by_comma "${server_cpu_list[@]}"); load generator on CPUs $client_cpus with $client_threads thread(s)"
say "# servers: $(for n in "${names[@]}"; do printf '%s on CPUs %s; ' "$n" "${cpus_of[$n]}"; done)"
say "# results in $out"

for rep in $(seq 1 "$repeat"); do
    for test in "${test_list[@]}"; do
        for pipeline in "${pipeline_list[@]}"; do
            for name in "${names[@]}"; do
                past_deadline "$name $test -P $pipeline" && continue
                echo "running $name: $test -P $pipeline (repetition $rep/$repeat)" >&2
                measure_run "$name" "$test" "$pipeline" "$rep"
            done
        done
    done
done

shared=()
for name in "${names[@]}"; do
    if overlaps_client "${cpus_of[$name]}"; then shared+=("$name"); fi
done
note=""
if [ "${#shared[@]}" -gt 0 ]; then
    shared_names=$(printf '%s, ' "${shared[@]}")
    note="${shared_names%, } share CPUs with the load generator (CPUs $client_cpus)"
fi
say
report threads "Shardis shards and Redis I/O threads" "$note"
say
if [ "${#shared[@]}" -gt 0 ]; then
    say "Caveat: $note: the machine has too"
    say "few CPUs for those configurations to have their own, so their figures mix server and client"
    say "contention and do not show how the server scales. Run on a machine with more CPUs for that."
fi
if [ "$ncpu" -le 2 ]; then
    say "On this $ncpu-CPU machine the comparison that holds is 1 shard against Redis with the load"
    say "generator on the other CPU; 2 shards (and 2 I/O threads) share a CPU with the load generator."
fi
say "Redis's I/O threads busy-wait for work, so their CPU per request includes spinning."
report_footer
