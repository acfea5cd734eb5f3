#!/usr/bin/env bash
# Compares Shardis with a real redis-server on this machine, as throughput ratios.
#
# Both servers run side by side on 127.0.0.1 (ports from --port-base), pinned with taskset:
#   redis-server            on CPU 0
#   shardis-server -s 1     on CPU 0          (one shard, the like-for-like comparison)
#   shardis-server -s 2     on CPUs 0-1       (one shard per CPU of its affinity mask)
# redis-benchmark runs pinned to the client CPU (1), so with 2 shards the load generator
# shares a CPU with a shard; the table says so.
#
# Every measurement is one redis-benchmark run per (test, pipeline depth, server); the servers
# are measured back to back for each test so that drift from other processes on the machine
# hits them alike, and with --repeat the whole series is run again and medians are reported. GET is measured against a populated key space: before the runs every server
# gets a SET of each key redis-benchmark's -r will draw (key:000000000000 ...), so GETs hit.
#
# Besides ops/s the table gives each server's CPU time per request (utime + stime of the server
# process from /proc, all threads, over the run), and, when `perf stat -e instructions` works,
# instructions per request.
#
# Usage: benches/redis-compare.sh [options]     (see --help)

set -euo pipefail

usage() {
    cat <<'EOF'
Usage: benches/redis-compare.sh [options]

  -b, --binary PATH     shardis-server binary (default: cargo build --release -p shardis-server)
  -n, --requests N      requests per run (default 200000)
  -t, --tests LIST      comma-separated tests among get,set,incr,mset,ping (default get,set)
  -P, --pipelines LIST  comma-separated pipeline depths (default 1,16)
  -s, --shards LIST     comma-separated Shardis shard counts; N shards run on CPUs 0..N-1
                        (default 1,2)
  -c, --clients N       parallel connections (default 50)
  -R, --repeat N        run everything N times and report medians (default 1)
  -r, --keyspace N      random keys per test (default 100000)
  -C, --client-cpu N    CPU for redis-benchmark (default 1; servers start at CPU 0)
      --port-base N     first port; the servers use N, N+1, ... (default 21379)
      --run-timeout S   time limit of one redis-benchmark run, seconds (default 120)
      --deadline S      stop starting new runs after S seconds in total (default 1500)
  -q, --quick           quick mode: -n 20000 -r 10000 unless given
  -h, --help            this help

Output: one table per Shardis configuration: test, pipeline, redis ops/s, shardis ops/s,
ratio (shardis / redis; with --repeat, the median of the ratios of runs paired by repetition),
and CPU time per request of each server.
EOF
}

requests=200000
tests="get,set"
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

while [ $# -gt 0 ]; do
    case "$1" in
        -b | --binary) binary="$2"; shift 2 ;;
        -n | --requests) requests="$2"; requests_given=1; shift 2 ;;
        -t | --tests) tests="$2"; shift 2 ;;
        -P | --pipelines) pipelines="$2"; shift 2 ;;
        -s | --shards) shard_counts="$2"; shift 2 ;;
        -c | --clients) clients="$2"; shift 2 ;;
        -R | --repeat) repeat="$2"; shift 2 ;;
        -r | --keyspace) keyspace="$2"; keyspace_given=1; shift 2 ;;
        -C | --client-cpu) client_cpu="$2"; shift 2 ;;
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

tool=redis-compare
# shellcheck source=benches/lib/servers.sh
source "$(dirname "$0")/lib/servers.sh"

is_uint() {
    case "$1" in '' | *[!0-9]*) return 1 ;; *) return 0 ;; esac
}


is_count "$repeat" || die "--repeat must be at least 1"
for v in "$requests" "$clients" "$keyspace" "$client_cpu" "$port_base" "$run_timeout" "$deadline"; do
    is_uint "$v" || die "not a number: $v"
done
for v in "$requests" "$clients" "$keyspace"; do
    is_count "$v" || die "-n, -c and -r must be at least 1"
done

# Test name -> the row names redis-benchmark prints in its CSV for it, one a line.
csv_names() {
    case "$1" in
        get) echo "GET" ;;
        set) echo "SET" ;;
        incr) echo "INCR" ;;
        mset) echo "MSET (10 keys)" ;;
        ping) printf '%s\n' PING_INLINE PING_MBULK ;;
        *) return 1 ;;
    esac
}

IFS=, read -r -a test_list <<<"$tests"
IFS=, read -r -a pipeline_list <<<"$pipelines"
IFS=, read -r -a shard_list <<<"$shard_counts"
for t in "${test_list[@]}"; do
    csv_names "$t" >/dev/null || die "unknown test '$t' (get,set,incr,mset,ping)"
done
for p in "${pipeline_list[@]}"; do
    is_count "$p" || die "bad pipeline depth: $p"
done
check_machine

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -z "$binary" ]; then
    echo "building shardis-server (release)..." >&2
    (cd "$root" && cargo build --release -p shardis-server >&2)
    binary="${CARGO_TARGET_DIR:-$root/target}/release/shardis-server"
fi
[ -x "$binary" ] || die "no executable at $binary"

bench_pid=""
job_vars=(bench_pid)
servers_init
start_compared_servers

# The keys redis-benchmark's -r draws from, each SET once on every server, so GETs hit.
populate() {
    local port=$1 out
    out=$(taskset -c "$client_cpu" redis-cli -h 127.0.0.1 -p "$port" --pipe <"$work/populate.resp" 2>&1)
    case "$out" in
        *"errors: 0, replies: $keyspace"*) ;;
        *) die "populating port $port failed: $out" ;;
    esac
    local size
    size=$(redis-cli -h 127.0.0.1 -p "$port" dbsize)
    [ "$size" = "$keyspace" ] || die "port $port has $size keys after populating $keyspace"
}
awk -v n="$keyspace" 'BEGIN {
    for (i = 0; i < n; i++)
        printf "*3\r\n$3\r\nSET\r\n$16\r\nkey:%012d\r\n$3\r\nxxx\r\n", i
}' >"$work/populate.resp"
for name in "${names[@]}"; do
    populate "${port_of[$name]}"
done

# CPU time (utime + stime, all threads) of a process, in clock ticks.
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}
ticks_per_sec=$(getconf CLK_TCK)

# Instructions per request need hardware counters: perf must count `instructions` here.
use_perf=0
if command -v perf >/dev/null 2>&1 &&
    perf stat -x, -e instructions true 2>&1 | grep -q '^[0-9][0-9]*,'; then
    use_perf=1
fi

# One redis-benchmark run. Appends a line "repetition rps cpu_us_per_req instr_per_req" per CSV
# row name to result[name|row|pipeline]; cpu/instr are "-" when unknown.
declare -A result
failures=()
started=$SECONDS
run_one() {
    local name=$1 test=$2 pipeline=$3 rep=$4
    local port=${port_of[$name]} pid=${pid_of[$name]}
    local csv="$work/run.csv" perf_out="$work/perf.txt"
    # With a target pid and a command, perf counts the server for as long as the command runs.
    local counter=()
    if [ "$use_perf" = 1 ]; then
        rm -f "$perf_out"
        counter=(perf stat "-x," -e instructions -p "$pid" -o "$perf_out" --)
    fi
    local t0 t1
    t0=$(cpu_ticks "$pid")
    # In the background and waited for, so that a signal to the script is handled at once.
    "${counter[@]}" timeout "$run_timeout" taskset -c "$client_cpu" redis-benchmark \
        -h 127.0.0.1 -p "$port" -n "$requests" -c "$clients" -r "$keyspace" -P "$pipeline" \
        -t "$test" --csv >"$csv" 2>"$work/run.err" &
    bench_pid=$!
    local status=0
    wait "$bench_pid" || status=$?
    bench_pid=""
    if [ "$status" -ne 0 ]; then
        local why
        why=$(grep -v 'Could not fetch server CONFIG' "$work/run.err" | head -c 200 | tr '\n' ' ')
        [ "$status" -ne 124 ] || why="timed out after ${run_timeout}s"
        failures+=("$name $test -P $pipeline: ${why:-exit status $status}")
        return 0
    fi
    t1=$(cpu_ticks "$pid")
    local instr="-"
    if [ "$use_perf" = 1 ]; then
        local count
        count=$(awk -F, '/instructions/ { print $1; exit }' "$perf_out" 2>/dev/null || true)
        if is_uint "$count"; then instr=$count; fi
    fi
    # Rows: "GET","123456.79",... ; runs with several rows (ping) share the CPU time.
    local rows
    rows=$(awk -F'"' 'NR > 1 && $2 != "" { n++ } END { print n + 0 }' "$csv")
    [ "$rows" -ge 1 ] || { echo "warning: $name $test -P $pipeline: no CSV rows" >&2; return 0; }
    local total=$((requests * rows))
    local cpu
    cpu=$(awk -v d=$((t1 - t0)) -v hz="$ticks_per_sec" -v n="$total" \
        'BEGIN { printf "%.2f", d / hz * 1e6 / n }')
    if [ "$instr" != "-" ]; then
        instr=$(awk -v i="$instr" -v n="$total" 'BEGIN { printf "%.0f", i / n }')
    fi
    while IFS= read -r line; do
        local row rps
        row=$(awk -F'"' '{ print $2 }' <<<"$line")
        rps=$(awk -F'"' '{ print $4 }' <<<"$line")
        if [ -z "$row" ] || [ "$row" = "test" ]; then continue; fi
        result["$name|$row|$pipeline"]+="$rep $rps $cpu $instr"$'\n'
        echo "  $name $row -P $pipeline: $rps ops/s, $cpu CPU us/req" >&2
    done <"$csv"
}

redis_version=$(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')
echo "# redis-compare: $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $ncpu CPUs ($(
    sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1))"
echo "# redis-server $redis_version; $("$binary" --version | head -n 1) ($binary)"
echo "# -n $requests -c $clients -r $keyspace, tests $tests, pipelines $pipelines, medians of $repeat run(s); load average $(cut -d' ' -f1-3 /proc/loadavg)"

# Repetitions outermost, so that each one samples a different moment of the machine's load.
for rep in $(seq 1 "$repeat"); do
    for test in "${test_list[@]}"; do
        for pipeline in "${pipeline_list[@]}"; do
            for name in "${names[@]}"; do
                if [ $((SECONDS - started)) -ge "$deadline" ]; then
                    echo "warning: deadline of ${deadline}s reached; skipping $name $test -P $pipeline" >&2
                    continue
                fi
                echo "running $name: $test -P $pipeline (repetition $rep/$repeat)" >&2
                run_one "$name" "$test" "$pipeline" "$rep"
            done
        done
    done
done

# Prints the median of the numbers on stdin (one a line, "-" ignored) with format $1, or "-".
median() {
    awk -v fmt="$1" '
        $1 != "-" && $1 != "" { v[n++] = $1 + 0 }
        END {
            if (n == 0) { print "-"; exit }
            for (a = 1; a < n; a++)
                for (b = a; b > 0 && v[b - 1] > v[b]; b--) { t = v[b]; v[b] = v[b - 1]; v[b - 1] = t }
            m = (n % 2) ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2
            printf fmt "\n", m
        }'
}

# The median over the repetitions of column $2 (2: ops/s, 3: CPU, 4: instructions) of
# result[$1], printed with format $3.
field() {
    printf '%s' "${result[$1]:-}" | awk -v i="$2" '{ print $i }' | median "$3"
}

# The median over the repetitions of shardis ops/s ($2) / redis ops/s ($1), each repetition's
# runs paired: they ran seconds apart, so the ratio is steadier than the ratio of medians.
ratio() {
    {
        printf '%s' "${result[$1]:-}" | sed 's/^/r /'
        printf '%s' "${result[$2]:-}" | sed 's/^/x /'
    } | awk '
        $1 == "r" { r[$2] = $3 }
        $1 == "x" { x[$2] = $3 }
        END { for (k in x) if ((k in r) && r[k] > 0) print x[k] / r[k] }' | median %.2f
}

for s in "${shard_list[@]}"; do
    name="shardis-$s"
    echo
    echo "## Shardis --shards $s (CPUs ${cpus_of[$name]}) vs redis-server (CPU ${cpus_of[redis]}); redis-benchmark on CPU $client_cpu"
    if [ "$client_cpu" -le $((s - 1)) ]; then
        echo "(note: the load generator shares CPU $client_cpu with a Shardis shard)"
    fi
    echo
    header="| test | pipeline | redis ops/s | shardis ops/s | ratio | redis CPU us/req | shardis CPU us/req |"
    rule="|---|---:|---:|---:|---:|---:|---:|"
    if [ "$use_perf" = 1 ]; then
        header="$header redis instr/req | shardis instr/req |"
        rule="$rule---:|---:|"
    fi
    echo "$header"
    echo "$rule"
    for test in "${test_list[@]}"; do
        mapfile -t rows < <(csv_names "$test")
        for row in "${rows[@]}"; do
            for pipeline in "${pipeline_list[@]}"; do
                r="redis|$row|$pipeline"
                x="$name|$row|$pipeline"
                line="| $row | $pipeline | $(field "$r" 2 %.0f) | $(field "$x" 2 %.0f) | $(ratio "$r" "$x")"
                line="$line | $(field "$r" 3 %.2f) | $(field "$x" 3 %.2f) |"
                if [ "$use_perf" = 1 ]; then
                    line="$line $(field "$r" 4 %.0f) | $(field "$x" 4 %.0f) |"
                fi
                echo "$line"
            done
        done
    done
done
echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$use_perf" = 0 ]; then
    echo "(perf cannot count instructions on this machine: instructions per request not reported)"
fi
if [ "${#failures[@]}" -gt 0 ]; then
    echo
    echo "Runs that failed (shown as -):"
    printf -- '- %s\n' "${failures[@]}"
fi
