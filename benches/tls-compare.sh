#!/usr/bin/env bash
# The throughput cost of TLS: Shardis and a real redis-server (Debian's is built with TLS), each
# serving a plain port and a TLS port at once, measured over both in the same run.
#
# Servers, side by side on 127.0.0.1 and pinned with taskset as in redis-compare.sh:
#   redis-server            on CPU 0
#   shardis-server -s N     on CPUs 0..N-1 (for each N of --shards)
# Both use the same certificate (an ECDSA P-256 key, made with openssl for the run) and
# tls-auth-clients no: the cost measured is the record layer's, on established connections
# (redis-benchmark opens its connections before it starts the clock).
#
# Workloads: redis-benchmark -t get,set with 50 connections at each pipeline depth of
# --pipelines, on the client CPU, once over the plain port and once with --tls. Every case runs
# against every server back to back, --repeat times (drift of the machine's load hits them
# alike). For each (workload, pipeline, server, transport): median ops/s and min–max, the
# server's CPU µs per request, and for TLS its ratio to the same server's plain port (the cost
# of TLS) and to Redis over TLS.
#
# Usage: benches/tls-compare.sh [options]     (see --help)

set -euo pipefail

usage() {
    cat <<'EOF'
Usage: benches/tls-compare.sh [options]

  -b, --binary PATH     shardis-server binary (default: cargo build --release -p shardis-server)
  -n, --requests N      requests per run at -P 1; deeper pipelines run 8 times as many
                        (default 100000)
  -P, --pipelines LIST  pipeline depths (default 1,16)
  -s, --shards LIST     Shardis shard counts (default 1,2; N shards on CPUs 0..N-1)
  -R, --repeat N        repeat everything N times; medians and min–max (default 3)
  -C, --client-cpu N    CPU of the load generator (default 1)
      --port-base N     first port; each server takes two (default 23479)
  -h, --help            this help
EOF
}

requests=100000
pipelines="1,16"
shard_counts="1,2"
repeat=3
client_cpu=1
port_base=23479
binary=""
while [ $# -gt 0 ]; do
    case "$1" in
        -b | --binary) binary="$2"; shift 2 ;;
        -n | --requests) requests="$2"; shift 2 ;;
        -P | --pipelines) pipelines="$2"; shift 2 ;;
        -s | --shards) shard_counts="$2"; shift 2 ;;
        -R | --repeat) repeat="$2"; shift 2 ;;
        -C | --client-cpu) client_cpu="$2"; shift 2 ;;
        --port-base) port_base="$2"; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

tool=tls-compare
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib/servers.sh
. "$here/lib/servers.sh"
# cpu_sample and cpu_per_request.
# shellcheck source=lib/measure.sh
. "$here/lib/measure.sh"
job_vars=()
IFS=, read -r -a shard_list <<<"$shard_counts"
IFS=, read -r -a pipeline_list <<<"$pipelines"
is_count "$requests" || die "bad request count: $requests"
is_count "$repeat" || die "bad repeat count: $repeat"
for p in "${pipeline_list[@]}"; do is_count "$p" || die "bad pipeline depth: $p"; done
check_machine
command -v openssl >/dev/null || die "openssl not found (it makes the run's certificate)"
redis-benchmark --help 2>&1 | grep -q -- '--tls' || die "this redis-benchmark has no --tls"
ticks_per_sec=$(getconf CLK_TCK)
servers_init

if [ -z "$binary" ]; then
    (cd "$here/.." && cargo build --release -p shardis-server >/dev/null 2>&1) || die "build failed"
    binary="$here/../target/release/shardis-server"
fi

# A CA and a server certificate for 127.0.0.1, valid for the run only.
pki="$work/pki"
mkdir -p "$pki"
(
    cd "$pki"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj "/CN=tls-compare CA" -keyout ca.key -out ca.crt
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -subj "/CN=localhost" -keyout server.key -out server.csr
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >ext.cnf
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
        -extfile ext.cnf -out server.crt
) >"$work/openssl.log" 2>&1 || die "openssl failed: $(tail -n 3 "$work/openssl.log")"
tls_args=(--tls-cert-file "$pki/server.crt" --tls-key-file "$pki/server.key"
    --tls-ca-cert-file "$pki/ca.crt" --tls-auth-clients no)

declare -A tls_port_of
port=$port_base
start_redis redis 0 "$port" --tls-port "$((port + 1))" "${tls_args[@]}"
tls_port_of[redis]=$((port + 1))
for s in "${shard_list[@]}"; do
    port=$((port + 2))
    cpus=0
    [ "$s" -eq 1 ] || cpus="0-$((s - 1))"
    start_server "shardis-$s" "$cpus" "$port" "$binary" --bind 127.0.0.1 --port "$port" \
        --shards "$s" --loglevel warning --save '' --appendonly no \
        --tls-port "$((port + 1))" "${tls_args[@]}"
    tls_port_of["shardis-$s"]=$((port + 1))
done
for name in "${names[@]}"; do
    out=$(redis-cli --tls --cacert "$pki/ca.crt" -h 127.0.0.1 -p "${tls_port_of[$name]}" ping 2>&1)
    [ "$out" = PONG ] || die "$name does not answer over TLS: $out"
done

# run NAME TRANSPORT TEST PIPELINE: "ops/s CPU-µs-per-request" of one redis-benchmark run.
run() {
    local name=$1 transport=$2 test=$3 pipeline=$4
    local n=$requests port=${port_of[$name]} pid=${pid_of[$name]} tls=()
    [ "$pipeline" -eq 1 ] || n=$((requests * 8))
    if [ "$transport" = tls ]; then
        port=${tls_port_of[$name]}
        tls=(--tls --cacert "$pki/ca.crt")
    fi
    local before after ops cpu
    before=$(cpu_sample "$pid")
    ops=$(taskset -c "$client_cpu" timeout 300 redis-benchmark -h 127.0.0.1 -p "$port" "${tls[@]}" \
        -c 50 -n "$n" -r 100000 -P "$pipeline" -t "$test" --csv 2>/dev/null |
        awk -F'"' 'NR > 1 && $2 != "" { print $4; exit }')
    after=$(cpu_sample "$pid")
    [ -n "$ops" ] || die "$name $transport $test -P $pipeline: no result from redis-benchmark"
    cpu=$(cpu_per_request "$before" "$after" "$n" | cut -d' ' -f1)
    echo "$ops $cpu"
}

declare -A ops cpu
for rep in $(seq 1 "$repeat"); do
    for test in get set; do
        for pipeline in "${pipeline_list[@]}"; do
            for name in "${names[@]}"; do
                for transport in plain tls; do
                    read -r o c < <(run "$name" "$transport" "$test" "$pipeline")
                    ops[$name,$transport,$test,$pipeline]+="$o "
                    cpu[$name,$transport,$test,$pipeline]+="$c "
                    echo "run $rep: $name $transport $test -P $pipeline: $o ops/s, $c µs/req" >&2
                done
            done
        done
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
spread() { tr ' ' '\n' | grep -v '^$' | sort -g | awk 'NR==1{lo=$1} {hi=$1} END {printf "%s–%s", lo, hi}'; }

echo
echo "| test | -P | server (CPUs) | transport | ops/s (median, min–max) | CPU µs/req | TLS ÷ plain | ÷ redis TLS |"
echo "|---|---:|---|---|---:|---:|---:|---:|"
for test in get set; do
    for pipeline in "${pipeline_list[@]}"; do
        redis_tls=$(echo "${ops[redis,tls,$test,$pipeline]}" | median)
        for name in "${names[@]}"; do
            plain=$(echo "${ops[$name,plain,$test,$pipeline]}" | median)
            for transport in plain tls; do
                k="$name,$transport,$test,$pipeline"
                m=$(echo "${ops[$k]}" | median)
                s=$(echo "${ops[$k]}" | spread)
                c=$(echo "${cpu[$k]}" | median)
                cost="" vs=""
                if [ "$transport" = tls ]; then
                    cost=$(printf '%.2f' "$(echo "$m / $plain" | bc -l)")
                    vs=$(printf '%.2f' "$(echo "$m / $redis_tls" | bc -l)")
                fi
                printf '| %s | %s | %s (%s) | %s | %.0f (%s) | %.2f | %s | %s |\n' "$test" \
                    "$pipeline" "$name" "${cpus_of[$name]}" "$transport" "$m" "$s" "$c" "$cost" "$vs"
            done
        done
    done
done
echo
echo "redis-benchmark on CPU $client_cpu, 50 connections, $repeat repetitions; with 2 shards one"
echo "shard shares the load generator's CPU. TLS: ECDSA P-256 certificate, no client certificate."
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
