# shellcheck shell=bash disable=SC2154,SC2034
# Shared by redis-compare.sh, scaling.sh and txn-compare.sh: start redis-server, shardis-server
# and, for redis-compare.sh, the io_uring floor (../shared/bench/uring-floor.c, a development
# aid) side by side on 127.0.0.1, pinned with taskset, and stop them (and any load generator)
# on exit.
#
# The sourcing script sets `tool` (its name, for messages) before sourcing, and `job_vars` (the
# names of the variables holding the pids of its own background jobs, stopped on exit) before
# `servers_init`.

die() {
    echo "$tool: $*" >&2
    exit 1
}

is_count() {
    case "$1" in '' | *[!0-9]*) return 1 ;; *) [ "$1" -ge 1 ] ;; esac
}

is_uint() {
    case "$1" in '' | *[!0-9]*) return 1 ;; *) return 0 ;; esac
}

# The tools every script needs exist, and those given as arguments; sets `ncpu`.
# shellcheck disable=SC2120 # the scripts pass their own extra tools
check_tools() {
    local t
    for t in redis-server redis-benchmark redis-cli taskset timeout "$@"; do
        command -v "$t" >/dev/null || die "$t not found"
    done
    ncpu=$(nproc --all)
}

# The tools exist, `client_cpu` is a CPU other than 0, and each of `shard_list` fits; sets
# `ncpu`.
check_machine() {
    local s
    for s in "${shard_list[@]}"; do
        is_count "$s" || die "bad shard count: $s"
    done
    # shellcheck disable=SC2119 # no extra tools here
    check_tools
    [ "$client_cpu" -lt "$ncpu" ] || die "client CPU $client_cpu does not exist ($ncpu CPUs)"
    [ "$client_cpu" -ne 0 ] || die "CPU 0 runs the servers: choose another client CPU"
    for s in "${shard_list[@]}"; do
        [ "$s" -le "$ncpu" ] || die "$s shards need $s CPUs; this machine has $ncpu"
    done
}

pids=()
names=()
# Per server name: port, pid, taskset CPU list, family (redis, shardis, floor) and threads (the
# shards of a Shardis, the I/O threads of a Redis, else 1).
declare -A port_of pid_of cpus_of family_of threads_of

# A work directory for logs, and the cleanup of everything started, on any exit.
servers_init() {
    work=$(mktemp -d "/tmp/$tool.XXXXXX")
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

cleanup() {
    local status=$?
    local var
    for var in "${job_vars[@]}"; do
        [ -z "${!var}" ] || kill "${!var}" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        # Give a server a moment to exit, then insist.
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ "$status" -ne 0 ]; then
        echo "$tool: failed; logs kept in $work" >&2
    else
        rm -rf "$work"
    fi
}
port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

wait_ready() {
    local port=$1 name=$2 pid=$3
    for _ in $(seq 1 100); do
        # The floor answers every command, PING included, with "xxx".
        case "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" in
            PONG | xxx) return 0 ;;
        esac
        kill -0 "$pid" 2>/dev/null || die "$name exited at start; log: $work/$name.log"
        sleep 0.1
    done
    die "$name did not answer PING on port $port within 10 s; log: $work/$name.log"
}

# Starts one server; `names` keeps table order (redis first). Names say what a server is:
# redis, redis-ioN (N I/O threads), floor, shardis-N (N shards).
start_server() {
    local name=$1 cpus=$2 port=$3
    shift 3
    family_of[$name]=${name%%-*}
    case "$name" in
        shardis-*) threads_of[$name]=${name#shardis-} ;;
        redis-io*) threads_of[$name]=${name#redis-io} ;;
        *) threads_of[$name]=1 ;;
    esac
    port_free "$port" || die "port $port is in use (choose another --port-base)"
    taskset -c "$cpus" "$@" >"$work/$name.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    names+=("$name")
    port_of[$name]=$port
    pid_of[$name]=$pid
    cpus_of[$name]=$cpus
    wait_ready "$port" "$name" "$pid"
}

# redis-server with persistence off; extra arguments are passed on (--io-threads ...).
start_redis() {
    local name=$1 cpus=$2 port=$3
    shift 3
    start_server "$name" "$cpus" "$port" redis-server --bind 127.0.0.1 --port "$port" \
        --save '' --appendonly no --daemonize no "$@"
}

# Compiles the io_uring floor server (a C file, see the top of it) into the work directory;
# sets `floor_binary`. Needs gcc and liburing (apt-get install -y gcc liburing-dev).
build_floor() {
    local src=$1
    floor_binary="$work/uring-floor"
    gcc -O2 -o "$floor_binary" "$src" -luring 2>"$work/floor-build.log"
}

# redis-server on CPU 0, the floor on CPU 0 if `floor_binary` is set, then shardis-server with
# each shard count of `shard_list` on CPUs 0..N-1, on consecutive ports from `port_base`.
start_compared_servers() {
    local port=$port_base s cpus
    start_redis redis 0 "$port"
    if [ -n "${floor_binary:-}" ]; then
        port=$((port + 1))
        start_server floor 0 "$port" "$floor_binary" "$port"
    fi
    for s in "${shard_list[@]}"; do
        port=$((port + 1))
        cpus=0
        [ "$s" -eq 1 ] || cpus="0-$((s - 1))"
        start_server "shardis-$s" "$cpus" "$port" \
            "$binary" --bind 127.0.0.1 --port "$port" --shards "$s" --save '' --appendonly no
    done
}
