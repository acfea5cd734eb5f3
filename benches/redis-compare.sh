#!/usr/bin/env bash
# Compares Shardis with a real redis-server on this machine: throughput, server CPU per request
# (user and kernel), latency, and optionally syscalls per request.
#
# The servers run side by side on 127.0.0.1 (ports from --port-base), pinned with taskset:
#   redis-server            on CPU 0
#   uring-floor             on CPU 0          (optional: the cost floor of an io_uring server that
#                                              answers every command with a fixed reply, built
#                                              from ../shared/bench/uring-floor.c; a development aid)
#   shardis-server -s 1     on CPU 0          (one shard, the like-for-like comparison)
#   shardis-server -s 2     on CPUs 0-1       (one shard per CPU of its affinity mask)
# The load generator (redis-benchmark, or memtier_benchmark with one thread) runs pinned to the
# client CPU (1), so with 2 shards it shares a CPU with a shard; the output says so.
#
# Workloads: redis-benchmark -t get, set, ... and memtier_benchmark --ratio 1:10 --key-pattern R:R
# (memtier is built from its source by benches/build-memtier.sh). Each is one run per (workload,
# pipeline depth, server); the servers are measured back to back for each workload so that drift
# from other processes on the machine hits them alike, and with --repeat the whole series runs
# again and medians are reported with their spread. Before the runs every server gets a SET of
# each key the workloads draw, so GETs hit.
#
# Per run: ops/s and p50/p99 latency (the load generator's own figures); the server's user and
# kernel CPU time per request (utime and stime of the server process from /proc, all threads,
# over the run); instructions per request when `perf stat -e instructions` works. With
# --syscalls, one more run per (workload, pipeline, server) under `strace -c -f -p PID` gives
# syscalls per request. Results go to OUT/results.tsv (one row per run), OUT/summary.tsv,
# OUT/report.md and charts OUT/*.png (benches/results.py; charts need matplotlib).
#
# Usage: benches/redis-compare.sh [options]     (see --help)

set -euo pipefail

usage() {
    cat <<'EOF'
Usage: benches/redis-compare.sh [options]

  -b, --binary PATH       shardis-server binary (default: cargo build --release -p shardis-server)
  -n, --requests N        requests per run (default 200000)
  -t, --tests LIST        comma-separated workloads among get,set,incr,mset,ping (redis-benchmark)
                          and memtier (memtier_benchmark, --memtier-ratio set:get, --key-pattern
                          R:R) (default get,set,memtier; memtier is skipped with a warning if its
                          binary is missing and -t was not given)
  -P, --pipelines LIST    comma-separated pipeline depths (default 1,16)
  -s, --shards LIST       comma-separated Shardis shard counts; N shards run on CPUs 0..N-1
                          (default 1,2)
  -c, --clients N         connections (default 50; memtier: one thread with N connections)
  -R, --repeat N          run everything N times; report medians and min–max (default 1)
  -r, --keyspace N        random keys per workload (default 100000)
  -C, --client-cpu N      CPU of the load generator (default 1; servers start at CPU 0)
      --memtier PATH      memtier_benchmark binary (default: $MEMTIER, then memtier_benchmark on
                          PATH, then ~/.cache/shardis-bench/bin/memtier_benchmark, where
                          benches/build-memtier.sh puts it; build it with that script)
      --memtier-ratio R   memtier's set:get ratio (default 1:10)
      --memtier-rate N    memtier's offered load, ops/s in all (spread over its connections),
                          so that latency is compared at the same rate (default: as fast as it
                          can; ops/s then tells whether a server kept up)
      --syscalls          also count the servers' syscalls per request: one more run per
                          (workload, pipeline, server) under strace -c -f -p PID (needs strace)
      --syscall-requests N  requests of a strace run (default: as -n)
      --floor PATH        uring-floor.c to build and measure beside Redis (default: found at
                          ../shared/bench/uring-floor.c from the repository; needs gcc and
                          liburing-dev); the script works without it
      --no-floor          do not measure the floor even if its source is found
  -o, --out DIR           results directory (default /tmp/shardis-bench/redis-compare-TIME)
      --no-plots          do not draw charts
      --port-base N       first port; the servers use N, N+1, ... (default 21379)
      --run-timeout S     time limit of one load-generator run, seconds (default 120)
      --deadline S        stop starting new runs after S seconds in total (default 1500)
  -q, --quick             quick mode: -n 20000 -r 10000 unless given
  -h, --help              this help

Output (stdout and OUT/report.md): one row per (workload, pipeline, server) with ops/s, its
ratio to Redis, the server's user, kernel and total CPU µs per request and the total's ratio to
Redis, p50 and p99 latency in ms, and with --syscalls syscalls per request and the three most
frequent. Ratios are medians of runs paired by repetition. OUT/results.tsv has every run,
OUT/summary.tsv the medians, OUT/ops-vs-pipeline.png and OUT/cpu-vs-pipeline.png the charts.
EOF
}

requests=200000
tests="get,set,memtier"
tests_given=0
pipelines="1,16"
shard_counts="1,2"
clients=50
repeat=1
keyspace=100000
client_cpu=1
port_base=21379
run_timeout=120
deadline=1500
binary=""
quick=0
requests_given=0
keyspace_given=0
memtier_path=""
memtier_ratio="1:10"
memtier_rate=""
syscalls=0
syscall_requests=""
floor_src=""
no_floor=0
out=""
plots=1

while [ $# -gt 0 ]; do
    case "$1" in
        -b | --binary) binary="$2"; shift 2 ;;
        -n | --requests) requests="$2"; requests_given=1; shift 2 ;;
        -t | --tests) tests="$2"; tests_given=1; shift 2 ;;
        -P | --pipelines) pipelines="$2"; shift 2 ;;
        -s | --shards) shard_counts="$2"; shift 2 ;;
        -c | --clients) clients="$2"; shift 2 ;;
        -R | --repeat) repeat="$2"; shift 2 ;;
        -r | --keyspace) keyspace="$2"; keyspace_given=1; shift 2 ;;
        -C | --client-cpu) client_cpu="$2"; shift 2 ;;
        --memtier) memtier_path="$2"; shift 2 ;;
        --memtier-ratio) memtier_ratio="$2"; shift 2 ;;
        --memtier-rate) memtier_rate="$2"; shift 2 ;;
        --syscalls) syscalls=1; shift ;;
        --syscall-requests) syscall_requests="$2"; shift 2 ;;
        --floor) floor_src="$2"; shift 2 ;;
        --no-floor) no_floor=1; shift ;;
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
[ -n "$syscall_requests" ] || syscall_requests=$requests

tool=redis-compare
bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$bench_dir/.." && pwd)
# shellcheck source=benches/lib/servers.sh
source "$bench_dir/lib/servers.sh"
# shellcheck source=benches/lib/measure.sh
source "$bench_dir/lib/measure.sh"

is_count "$repeat" || die "--repeat must be at least 1"
for v in "$requests" "$clients" "$keyspace" "$syscall_requests"; do
    is_count "$v" || die "-n, -c, -r and --syscall-requests must be at least 1"
done
for v in "$client_cpu" "$port_base" "$run_timeout" "$deadline"; do
    is_uint "$v" || die "not a number: $v"
done
check_ratio "$memtier_ratio"
[ -z "$memtier_rate" ] || is_count "$memtier_rate" || die "--memtier-rate must be at least 1"

find_memtier "$memtier_path"
tests=$(checked_tests "$tests" "$tests_given")
IFS=, read -r -a test_list <<<"$tests"
IFS=, read -r -a pipeline_list <<<"$pipelines"
IFS=, read -r -a shard_list <<<"$shard_counts"
for p in "${pipeline_list[@]}"; do
    is_count "$p" || die "bad pipeline depth: $p"
done
extra_tools=(python3)
[ "$syscalls" = 0 ] || extra_tools+=(strace)
check_machine
check_tools "${extra_tools[@]}"
client_cpus=$client_cpu
client_threads=1

# The floor's source: as given, else beside the repository (a worktree sits one level deeper).
floor_explicit=0
[ -z "$floor_src" ] || floor_explicit=1
if [ "$no_floor" = 1 ]; then
    floor_src=""
elif [ -z "$floor_src" ]; then
    for candidate in "$root/../shared/bench/uring-floor.c" "$root/../../shared/bench/uring-floor.c"; do
        if [ -f "$candidate" ]; then
            floor_src=$(cd "$(dirname "$candidate")" && pwd)/uring-floor.c
            break
        fi
    done
fi
[ -z "$floor_src" ] || [ -f "$floor_src" ] || die "--floor $floor_src: no such file"

if [ -z "$binary" ]; then
    echo "building shardis-server (release)..." >&2
    (cd "$root" && cargo build --release -p shardis-server >&2)
    binary="${CARGO_TARGET_DIR:-$root/target}/release/shardis-server"
fi
[ -x "$binary" ] || die "no executable at $binary"

[ -n "$out" ] || out="/tmp/shardis-bench/redis-compare-$(date -u +%Y%m%d-%H%M%S)"
generator_pid=""
strace_pid=""
job_vars=(generator_pid strace_pid)
servers_init
measure_init

floor_binary=""
if [ -n "$floor_src" ] && ! build_floor "$floor_src"; then
    [ "$floor_explicit" = 0 ] || die "building $floor_src failed: $(head -c 300 "$work/floor-build.log")"
    echo "$tool: warning: building $floor_src failed (it needs gcc and liburing-dev); the floor is left out" >&2
    floor_binary=""
fi
start_compared_servers

has_memtier=0
case ",$tests," in *,memtier,*) has_memtier=1 ;; esac
write_populate_file "$has_memtier"
for name in "${names[@]}"; do
    populate "$name"
done

say "# redis-compare: $(date -u '+%Y-%m-%d %H:%M UTC'), $(machine_line)"
say "# redis-server $(redis_version); $("$binary" --version | head -n 1) ($binary)"
[ -z "$memtier" ] || say "# $("$memtier" --version | head -n 1) ($memtier)"
[ -z "$memtier_rate" ] || say "# memtier offers $memtier_rate ops/s in all (--memtier-rate)"
[ -z "$floor_binary" ] || say "# floor: $floor_src"
say "# -n $requests -c $clients -r $keyspace, tests $tests, pipelines $pipelines, medians of $repeat run(s); load average $(cut -d' ' -f1-3 /proc/loadavg)"
say "# servers: $(for n in "${names[@]}"; do printf '%s on CPU %s, ' "$n" "${cpus_of[$n]}"; done)load generator on CPU $client_cpu"
say "# results in $out"

# Repetitions outermost, so that each one samples a different moment of the machine's load.
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
if [ "$syscalls" = 1 ]; then
    for test in "${test_list[@]}"; do
        for pipeline in "${pipeline_list[@]}"; do
            for name in "${names[@]}"; do
                past_deadline "strace of $name $test -P $pipeline" && continue
                echo "running $name under strace: $test -P $pipeline" >&2
                strace_run "$name" "$test" "$pipeline" 1 "$syscall_requests"
            done
        done
    done
fi

say
report pipeline "Shardis, Redis$([ -z "$floor_binary" ] || echo ' and the io_uring floor')"
say
for s in "${shard_list[@]}"; do
    if [ "$client_cpu" -le $((s - 1)) ]; then
        say "Note: shardis-$s runs on CPUs ${cpus_of[shardis-$s]}; the load generator shares CPU $client_cpu with one of its shards."
    fi
done
[ -z "$floor_binary" ] || say "The floor answers every command with a fixed reply and keeps no keys: what the kernel and the ring cost, not a server."
report_footer
