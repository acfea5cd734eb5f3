# shellcheck shell=bash disable=SC2154,SC2034
# Shared by redis-compare.sh and scaling.sh: runs a load generator against one server started by
# lib/servers.sh and measures the server, appending one row per run to OUT/results.tsv (columns
# in benches/results.py, which also turns the file into tables and charts).
#
# A timed run gives ops/s and p50/p99 latency (from the load generator's own output), the
# server's CPU time per request split into user and kernel time (every thread of the server
# process, from /proc before and after the run: see cpu_sample) and, where `perf stat -e
# instructions` counts, instructions per request. A separate run under `strace -c -f -p PID` gives syscalls
# per request (strace slows the server down several times, so it never overlaps a timed run).
#
# Workloads ("tests"): get, set, incr, mset, ping (redis-benchmark -t), and memtier
# (memtier_benchmark --ratio $memtier_ratio --key-pattern R:R over the same key space size).
#
# The sourcing script sets, besides what lib/servers.sh needs: `out` (results directory),
# `requests`, `clients`, `keyspace`, `run_timeout`, `client_cpus` (taskset list of the load
# generator), `client_threads` (load generator threads), `memtier_ratio`, `memtier_rate`
# (offered ops/s in all, empty for as fast as possible), and `memtier` (the binary, from
# find_memtier) before calling measure_init.

# The memtier_benchmark binary: $1 if given, else $MEMTIER, else memtier_benchmark on PATH,
# else the one benches/build-memtier.sh leaves in its cache. Sets `memtier` (empty if none).
memtier_cache="${XDG_CACHE_HOME:-$HOME/.cache}/shardis-bench/bin/memtier_benchmark"
find_memtier() {
    memtier=""
    if [ -n "$1" ]; then
        [ -x "$1" ] || die "--memtier $1: not an executable"
        memtier=$1
        return 0
    fi
    local candidate
    for candidate in "${MEMTIER:-}" "$(command -v memtier_benchmark || true)" "$memtier_cache"; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then
            memtier=$candidate
            return 0
        fi
    done
}

memtier_missing_help="memtier_benchmark not found: build it with benches/build-memtier.sh (it prints the
binary's path and leaves it where this script looks), or pass --memtier PATH or set MEMTIER"

# The names a workload's rows carry in the results (redis-benchmark's CSV row names; one a line).
workload_rows() {
    case "$1" in
        get) echo "GET" ;;
        set) echo "SET" ;;
        incr) echo "INCR" ;;
        mset) echo "MSET (10 keys)" ;;
        ping) printf '%s\n' PING_INLINE PING_MBULK ;;
        memtier) echo "memtier $memtier_ratio" ;;
        *) return 1 ;;
    esac
}

# The test list with memtier dropped (and a warning) if there is no memtier binary and the list
# is the default one; an explicit request for memtier without a binary is an error.
checked_tests() {
    local list=$1 explicit=$2 t kept=()
    IFS=, read -r -a _tests <<<"$list"
    for t in "${_tests[@]}"; do
        workload_rows "$t" >/dev/null || die "unknown test '$t' (get,set,incr,mset,ping,memtier)"
        if [ "$t" = memtier ] && [ -z "$memtier" ]; then
            [ "$explicit" = 0 ] || die "$memtier_missing_help"
            echo "$tool: warning: $memtier_missing_help; memtier workloads skipped" >&2
            continue
        fi
        kept+=("$t")
    done
    [ "${#kept[@]}" -gt 0 ] || die "no tests left to run"
    (IFS=,; echo "${kept[*]}")
}

results_columns="rep kind workload pipeline server family threads cpus requests ops_per_sec cpu_us user_us kernel_us p50_ms p99_ms instr_per_req syscalls_per_req top_syscalls"

measure_init() {
    ticks_per_sec=$(getconf CLK_TCK)
    use_perf=0
    if command -v perf >/dev/null 2>&1 &&
        perf stat -x, -e instructions true 2>&1 | grep -q '^[0-9][0-9]*,'; then
        use_perf=1
    fi
    mkdir -p "$out"
    results="$out/results.tsv"
    tr ' ' '\t' <<<"$results_columns" >"$results"
    : >"$out/report.md"
    failures=()
    started=$SECONDS
}

# A line of the report: to stdout and OUT/report.md.
say() {
    echo "$*" | tee -a "$out/report.md"
}

machine_line() {
    echo "$(uname -r), $(nproc --all) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1))"
}

redis_version() {
    redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p'
}

check_ratio() {
    case "$1" in
        *[!0-9:]* | :* | *: | *:*:*) die "--memtier-ratio must be SET:GET, like 1:10" ;;
        *:*) ;;
        *) die "--memtier-ratio must be SET:GET, like 1:10" ;;
    esac
}

# True (after a warning naming what is skipped) once `deadline` seconds have passed.
past_deadline() {
    if [ $((SECONDS - started)) -ge "$deadline" ]; then
        echo "$tool: warning: deadline of ${deadline}s reached; skipping $*" >&2
        return 0
    fi
    return 1
}

# Both key sets the workloads draw from, SET once on a server so that GETs hit:
# key:000000000000 ... (redis-benchmark -r, value "xxx") and, with memtier, memtier-1 ...
# memtier-N (memtier's --key-minimum 1 --key-maximum N, 32-byte values like memtier's default).
write_populate_file() {
    local with_memtier=$1
    awk -v n="$keyspace" -v m="$with_memtier" 'BEGIN {
        for (i = 0; i < n; i++)
            printf "*3\r\n$3\r\nSET\r\n$16\r\nkey:%012d\r\n$3\r\nxxx\r\n", i
        if (m)
            for (i = 1; i <= n; i++) {
                k = "memtier-" i
                printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$32\r\n%s\r\n", length(k), k,
                    "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"
            }
    }' >"$work/populate.resp"
    populate_keys=$keyspace
    [ "$with_memtier" = 0 ] || populate_keys=$((2 * keyspace))
}

# Populates one server (not the floor, which has no key space) and checks its key count.
populate() {
    local name=$1 port=${port_of[$1]} out_text size
    [ "${family_of[$name]}" != floor ] || return 0
    out_text=$(taskset -c "$client_cpus" redis-cli -h 127.0.0.1 -p "$port" --pipe <"$work/populate.resp" 2>&1)
    case "$out_text" in
        *"errors: 0, replies: $populate_keys"*) ;;
        *) die "populating $name failed: $out_text" ;;
    esac
    size=$(redis-cli -h 127.0.0.1 -p "$port" dbsize)
    [ "$size" = "$populate_keys" ] || die "$name has $size keys after populating $populate_keys"
}

# The server's CPU time so far: "utime stime runtime", utime and stime of the whole process in
# clock ticks (/proc/PID/stat: 10 ms each, too coarse alone for short runs) and runtime the
# nanoseconds on CPU of all its threads (/proc/PID/task/*/schedstat). A run's total comes from
# the runtime, split into user and kernel time in the proportion of the ticks.
cpu_sample() {
    local pid=$1 ticks runtime
    ticks=$(awk '{ print $14, $15 }' "/proc/$pid/stat")
    runtime=$(cat "/proc/$pid/task/"*/schedstat 2>/dev/null | awk '{ t += $1 } END { printf "%.0f", t }')
    echo "$ticks ${runtime:-0}"
}

# "total user kernel" µs per request between two cpu_samples ($1, $2) over $3 requests; user and
# kernel are "-" when no tick fell in the interval.
cpu_per_request() {
    awk -v a="$1" -v b="$2" -v n="$3" -v hz="$ticks_per_sec" 'BEGIN {
        split(a, x, " "); split(b, y, " ")
        du = y[1] - x[1]; ds = y[2] - x[2]; dns = y[3] - x[3]
        total = dns > 0 ? dns / 1000 / n : (du + ds) / hz * 1e6 / n
        if (du + ds > 0) printf "%.3f %.3f %.3f\n", total, total * du / (du + ds), total * ds / (du + ds)
        else printf "%.3f - -\n", total
    }'
}

# Runs the load generator for (test, pipeline, request count) against a server, in the
# background and waited for so that a signal to the script is handled at once; "$@" prefixes
# the command (perf). Output in $work/gen.out (redis-benchmark CSV) or $work/gen.json (memtier),
# errors in $work/gen.err. Returns the generator's exit status.
run_generator() {
    local name=$1 test=$2 pipeline=$3 n=$4
    shift 4
    local port=${port_of[$name]} cmd
    if [ "$test" = memtier ]; then
        local per_thread=$(((clients + client_threads - 1) / client_threads))
        local per_client=$(((n + per_thread * client_threads - 1) / (per_thread * client_threads)))
        rm -f "$work/gen.json"
        # shellcheck disable=SC2054 # the comma in "50,99" is memtier's
        cmd=("$memtier" -s 127.0.0.1 -p "$port" -t "$client_threads" -c "$per_thread"
            -n "$per_client" --ratio "$memtier_ratio" --key-pattern R:R --key-minimum 1
            --key-maximum "$keyspace" --distinct-client-seed --pipeline "$pipeline"
            --hide-histogram --print-percentiles 50,99 --json-out-file "$work/gen.json")
        if [ -n "${memtier_rate:-}" ]; then
            # An offered load, so that latency is compared at the same rate on every server.
            cmd+=(--rate-limiting $(((memtier_rate + per_thread * client_threads - 1) / (per_thread * client_threads))))
        fi
    else
        cmd=(redis-benchmark -h 127.0.0.1 -p "$port" -n "$n" -c "$clients" -r "$keyspace"
            -P "$pipeline" -t "$test" --csv)
        [ "$client_threads" -le 1 ] || cmd+=(--threads "$client_threads")
    fi
    "$@" timeout "$run_timeout" taskset -c "$client_cpus" "${cmd[@]}" >"$work/gen.out" 2>"$work/gen.err" &
    generator_pid=$!
    local status=0
    wait "$generator_pid" || status=$?
    generator_pid=""
    if [ "$status" -ne 0 ]; then
        local why
        why=$(grep -v 'Could not fetch server CONFIG' "$work/gen.err" | tail -c 300 | tr '\n' ' ')
        [ "$status" -ne 124 ] || why="timed out after ${run_timeout}s"
        failures+=("$name $test -P $pipeline: ${why:-exit status $status}")
    fi
    return "$status"
}

# What the last run_generator run measured, one line per result row:
# "row<TAB>requests<TAB>ops_per_sec<TAB>p50_ms<TAB>p99_ms". redis-benchmark's CSV has a row per
# command it ran (PING has two, which split the requests of one run between them).
generator_rows() {
    local test=$1 n=$2
    if [ "$test" = memtier ]; then
        local count ops p50 p99
        [ -s "$work/gen.json" ] || return 0
        read -r count ops p50 p99 < <(python3 "$bench_dir/results.py" memtier-json "$work/gen.json")
        printf '%s\t%s\t%s\t%s\t%s\n' "$(workload_rows memtier)" "$count" "$ops" "$p50" "$p99"
    else
        # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",
        # "p99_latency_ms","max_latency_ms"
        awk -F'"' -v n="$n" 'NR > 1 && $2 != "" { printf "%s\t%d\t%s\t%s\t%s\n", $2, n, $4, $10, $14 }' "$work/gen.out"
    fi
}

# Appends a row to results.tsv; arguments in the order of results_columns.
record() {
    (IFS=$'\t'; echo "$*") >>"$results"
}

# One timed run of (server, test, pipeline), as repetition `rep`.
measure_run() {
    local name=$1 test=$2 pipeline=$3 rep=$4
    local pid=${pid_of[$name]} perf_out="$work/perf.txt" counter=()
    if [ "$use_perf" = 1 ]; then
        rm -f "$perf_out"
        # With a target pid and a command, perf counts the server for as long as the command runs.
        counter=(perf stat "-x," -e instructions -p "$pid" -o "$perf_out" --)
    fi
    local before after
    before=$(cpu_sample "$pid")
    run_generator "$name" "$test" "$pipeline" "$requests" "${counter[@]}" || return 0
    after=$(cpu_sample "$pid")
    local rows total=0
    rows=$(generator_rows "$test" "$requests")
    [ -n "$rows" ] || { failures+=("$name $test -P $pipeline: no results in the output"); return 0; }
    while IFS=$'\t' read -r _ n _; do total=$((total + n)); done <<<"$rows"
    [ "$total" -gt 0 ] || { failures+=("$name $test -P $pipeline: no requests counted"); return 0; }
    local instr="-"
    if [ "$use_perf" = 1 ]; then
        instr=$(awk -F, -v n="$total" '/instructions/ && $1 ~ /^[0-9]+$/ { printf "%.0f", $1 / n; exit }' \
            "$perf_out" 2>/dev/null || true)
        [ -n "$instr" ] || instr="-"
    fi
    local cpu user kernel
    read -r cpu user kernel < <(cpu_per_request "$before" "$after" "$total")
    while IFS=$'\t' read -r row n ops p50 p99; do
        record "$rep" timed "$row" "$pipeline" "$name" "${family_of[$name]}" "${threads_of[$name]}" \
            "${cpus_of[$name]}" "$n" "$ops" "$cpu" "$user" "$kernel" "$p50" "$p99" "$instr" "" ""
        echo "  $name $row -P $pipeline: $ops ops/s, CPU $cpu us/req ($user user, $kernel kernel), p50 $p50 p99 $p99 ms" >&2
    done <<<"$rows"
}

# A run of (server, test, pipeline) under strace -c -f attached to the server (every thread):
# syscalls per request, and the three most frequent with their count per request.
strace_run() {
    local name=$1 test=$2 pipeline=$3 rep=$4 n=$5
    local pid=${pid_of[$name]} trace="$work/strace.txt"
    rm -f "$trace"
    strace -c -f -p "$pid" -o "$trace" 2>"$work/strace.err" &
    strace_pid=$!
    # Wait until strace has attached (the server's TracerPid is set), at most 5 s.
    local i
    for i in $(seq 1 50); do
        [ "$(awk '/^TracerPid:/ { print $2 }' "/proc/$pid/status")" = 0 ] || break
        sleep 0.1
    done
    local status=0
    run_generator "$name" "$test" "$pipeline" "$n" || status=$?
    kill -INT "$strace_pid" 2>/dev/null || true
    wait "$strace_pid" 2>/dev/null || true
    strace_pid=""
    [ "$status" -eq 0 ] || return 0
    [ -s "$trace" ] || { failures+=("$name $test -P $pipeline: strace wrote nothing ($(head -c 200 "$work/strace.err"))"); return 0; }
    local rows total=0
    rows=$(generator_rows "$test" "$n")
    [ -n "$rows" ] || { failures+=("$name $test -P $pipeline: no results under strace"); return 0; }
    while IFS=$'\t' read -r _ count _; do total=$((total + count)); done <<<"$rows"
    [ "$total" -gt 0 ] || { failures+=("$name $test -P $pipeline: no requests under strace"); return 0; }
    # strace -c: "% time seconds usecs/call calls [errors] syscall", then a "total" line.
    local summary
    summary=$(awk -v n="$total" '
        $1 ~ /^[0-9.]+$/ && NF >= 5 {
            if ($NF == "total") { all = $4; next }
            calls[$NF] = $4
        }
        END {
            top = ""
            for (k = 0; k < 3; k++) {
                best = ""
                for (s in calls) if (best == "" || calls[s] > calls[best]) best = s
                if (best == "") break
                top = top (top == "" ? "" : ",") sprintf("%s=%.2f", best, calls[best] / n)
                delete calls[best]
            }
            printf "%.3f\t%s\n", all / n, top
        }' "$trace")
    local per_req top
    IFS=$'\t' read -r per_req top <<<"$summary"
    while IFS=$'\t' read -r row count _; do
        record "$rep" strace "$row" "$pipeline" "$name" "${family_of[$name]}" "${threads_of[$name]}" \
            "${cpus_of[$name]}" "$count" "" "" "" "" "" "" "" "$per_req" "$top"
        echo "  $name $row -P $pipeline under strace: $per_req syscalls/req ($top)" >&2
    done <<<"$rows"
}

# The table (markdown, to stdout and OUT/report.md), OUT/summary.tsv, and the charts when
# `plots` is 1 and matplotlib is there. $1: the x axis of the charts (pipeline or threads);
# $2: their title; $3: a caveat printed under them (optional).
report() {
    local x=$1 title=$2 note=${3:-} charts
    python3 "$bench_dir/results.py" table "$results" --summary "$out/summary.tsv" | tee -a "$out/report.md"
    [ "$plots" = 1 ] || return 0
    if python3 -c 'import matplotlib' 2>/dev/null; then
        charts=$(python3 "$bench_dir/results.py" plot "$results" --out "$out" --x "$x" --title "$title" \
            --note "$note" |
            tr '\n' ' ')
        say
        say "Charts: $charts"
    else
        say
        say "(charts skipped: matplotlib is missing; pip install matplotlib, then" \
            "benches/results.py plot $results --out $out --x $x)"
    fi
}

# The end of a report: the machine's load, what could not be measured, and failed runs.
report_footer() {
    say "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    if [ "$use_perf" = 0 ]; then
        say "(perf cannot count instructions on this machine: instructions per request not reported)"
    fi
    if [ "${#failures[@]}" -gt 0 ]; then
        say
        say "Runs that failed (shown as - or missing):"
        local f
        for f in "${failures[@]}"; do say "- $f"; done
    fi
}
