#!/usr/bin/env bash
# Compares EVALSHA throughput between Shardis and a real redis-server on this machine: a script
# whose declared key is on one shard, one whose two declared keys are on two shards, and one
# that touches two undeclared keys on two shards (it runs under the lock of every shard).
#
# Servers, as in benches/redis-compare.sh, side by side on 127.0.0.1 and pinned with taskset:
#   redis-server            on CPU 0
#   shardis-server -s N     on CPUs 0..N-1 (default N = 2: the cross-shard cases need two)
# redis-benchmark runs on the client CPU (1). Each round runs every case against every server
# back to back, so that drift of the machine's load hits them alike; the table gives the
# median of the rounds with their spread, and the server CPU time per script run.
#
# Usage: benches/script-compare.sh [options]     (see --help)

set -euo pipefail

usage() {
    cat <<'EOF'
Usage: benches/script-compare.sh [options]

  -b, --binary PATH     shardis-server binary (default: cargo build --release)
  -n, --requests N      EVALSHA calls per run (default 20000)
  -c, --clients N       redis-benchmark connections (default 20)
  -r, --rounds N        rounds (default 3)
  -s, --shards N        Shardis shard count (default 2)
  -C, --client-cpu N    CPU of redis-benchmark (default 1)
      --port-base N     first port; servers use N, N+1 (default 21579)
      --run-timeout S   time limit of one run, seconds (default 120)
  -h, --help            this help
EOF
}

requests=20000
clients=20
rounds=3
shards=2
client_cpu=1
port_base=21579
run_timeout=120
binary=""

while [ $# -gt 0 ]; do
    case "$1" in
        -b | --binary) binary="$2"; shift 2 ;;
        -n | --requests) requests="$2"; shift 2 ;;
        -c | --clients) clients="$2"; shift 2 ;;
        -r | --rounds) rounds="$2"; shift 2 ;;
        -s | --shards) shards="$2"; shift 2 ;;
        -C | --client-cpu) client_cpu="$2"; shift 2 ;;
        --port-base) port_base="$2"; shift 2 ;;
        --run-timeout) run_timeout="$2"; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
done

tool=script-compare
# shellcheck source=benches/lib/servers.sh
source "$(dirname "$0")/lib/servers.sh"

for v in "$requests" "$clients" "$rounds" "$port_base" "$run_timeout"; do
    is_count "$v" || die "not a positive whole number: $v"
done
case "$client_cpu" in '' | *[!0-9]*) die "bad client CPU: $client_cpu" ;; esac
shard_list=("$shards")
check_machine
[ "$shards" -ge 2 ] || die "the cross-shard cases need at least 2 shards"

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -z "$binary" ]; then
    echo "building shardis-server (release)..." >&2
    (cd "$root" && cargo build --release -p shardis-server >&2)
    binary="${CARGO_TARGET_DIR:-$root/target}/release/shardis-server"
fi
[ -x "$binary" ] || die "no executable at $binary"

fg_pid=""
job_vars=(fg_pid)
servers_init
start_compared_servers

# The shard of a key among N (Redis Cluster's slot: CRC16-XMODEM of the key, mod 16384; then
# mod N, as Shardis routes).
shard_of() {
    python3 - "$1" "$shards" <<'EOF'
import sys
crc = 0
for b in sys.argv[1].encode():
    crc ^= b << 8
    for _ in range(8):
        crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        crc &= 0xFFFF
print(crc % 16384 % int(sys.argv[2]))
EOF
}
# Two keys named PREFIX<i> on shards 0 and 1.
pick_keys() {
    local prefix=$1 i k s a="" b=""
    for i in $(seq 1 100); do
        k="$prefix$i"
        s=$(shard_of "$k")
        if [ "$s" -eq 0 ] && [ -z "$a" ]; then a=$k; fi
        if [ "$s" -eq 1 ] && [ -z "$b" ]; then b=$k; fi
        [ -z "$a" ] || [ -z "$b" ] || break
    done
    echo "$a $b"
}
read -r d0 d1 <<<"$(pick_keys d:)"
read -r u0 u1 <<<"$(pick_keys u:)"

single="return redis.call('INCR', KEYS[1])"
declared="redis.call('INCR', KEYS[1]) return redis.call('INCR', KEYS[2])"
undeclared="redis.call('INCR', '$u0') return redis.call('INCR', '$u1')"
cases=(single declared undeclared)
declare -A sha_of body_of keys_of
body_of[single]=$single
body_of[declared]=$declared
body_of[undeclared]=$undeclared
keys_of[single]="1 $d0"
keys_of[declared]="2 $d0 $d1"
keys_of[undeclared]="0"
for c in "${cases[@]}"; do
    for name in "${names[@]}"; do
        sha=$(redis-cli -h 127.0.0.1 -p "${port_of[$name]}" script load "${body_of[$c]}")
        [ "${#sha}" -eq 40 ] || die "SCRIPT LOAD on $name failed: $sha"
        sha_of[$c]=$sha
    done
done

cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}
ticks_per_sec=$(getconf CLK_TCK)

run_fg() {
    "$@" &
    fg_pid=$!
    local status=0
    wait "$fg_pid" || status=$?
    fg_pid=""
    return "$status"
}

failures=()
# Per case|server: the rounds' throughputs and server microseconds per call, space separated.
declare -A ops cpu

run_case() {
    local name=$1 c=$2 t0 t1 rate
    local pid=${pid_of[$name]}
    # shellcheck disable=SC2086 # the keys are words
    set -- evalsha "${sha_of[$c]}" ${keys_of[$c]}
    t0=$(cpu_ticks "$pid")
    if ! run_fg timeout "$run_timeout" taskset -c "$client_cpu" redis-benchmark -h 127.0.0.1 \
        -p "${port_of[$name]}" -n "$requests" -c "$clients" --csv "$@" \
        >"$work/bench.csv" 2>"$work/bench.err"; then
        failures+=("$name $c: $(head -c 300 "$work/bench.err" | tr '\n' ' ')")
        return 0
    fi
    t1=$(cpu_ticks "$pid")
    rate=$(awk -F'"' 'NR > 1 && $2 != "" { printf "%.0f", $4; exit }' "$work/bench.csv")
    echo "  $name $c: $rate/s" >&2
    ops["$c|$name"]+="$rate "
    cpu["$c|$name"]+="$(awk -v d=$((t1 - t0)) -v hz="$ticks_per_sec" -v n="$requests" \
        'BEGIN { printf "%.1f", d / hz * 1e6 / n }') "
}

for r in $(seq 1 "$rounds"); do
    echo "round $r of $rounds" >&2
    for c in "${cases[@]}"; do
        for name in "${names[@]}"; do
            run_case "$name" "$c"
        done
    done
done

# "median (min–max)" of a list of numbers.
summary() {
    tr ' ' '\n' <<<"$1" | awk 'NF' | sort -n | awk '
        { v[NR] = $1 }
        END {
            if (NR == 0) { print "-"; exit }
            m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf "%.0f (%.0f–%.0f)", m, v[1], v[NR]
        }'
}
median() {
    tr ' ' '\n' <<<"$1" | awk 'NF' | sort -n | awk '
        { v[NR] = $1 }
        END { if (NR == 0) print 0; else print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

shardis=${names[1]}
echo
echo "EVALSHA, $requests calls × $clients clients, $rounds rounds; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "keys: declared $d0 $d1, undeclared $u0 $u1 (shards 0 and 1)"
echo
echo "| script | redis calls/s | $shardis calls/s | ratio | server µs/call redis / $shardis |"
echo "|---|---:|---:|---:|---:|"
for c in "${cases[@]}"; do
    a=$(median "${ops[$c|redis]:-}")
    b=$(median "${ops[$c|$shardis]:-}")
    ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { if (a <= 0) print "-"; else printf "%.2f", b / a }')
    printf '| %s | %s | %s | %s | %s / %s |\n' "$c" "$(summary "${ops[$c|redis]:-}")" \
        "$(summary "${ops[$c|$shardis]:-}")" "$ratio" \
        "$(median "${cpu[$c|redis]:-}")" "$(median "${cpu[$c|$shardis]:-}")"
done
if [ "${#failures[@]}" -gt 0 ]; then
    echo
    echo "failures:"
    printf -- '- %s\n' "${failures[@]}"
    exit 1
fi
