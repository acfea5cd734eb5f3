#!/usr/bin/env bash
# Stands in for src/redis-server in Redis's own test harness (tests/test_helper.tcl) so that
# the units Redis runs only on servers it spawns itself (every cluster unit is external:skip)
# run against Shardis:
#
#   ln -sf "$PWD/tools/shardis-as-redis-server.sh" /tmp/redis-src/src/redis-server
#   SHARDIS_BIN=$PWD/target/release/shardis-server SHARDIS_SHARDS=2 \
#       bash -c 'cd /tmp/redis-src && ./runtest --single unit/cluster --clients 1'
#
# It prints the "PID: <pid>" line the harness waits for, drops the directives of the
# harness's default.conf that Shardis refuses and these units do not need (the logo, module
# commands, the unix socket, propagation-error-behavior), and in cluster mode runs the
# process as one cluster-bus node on its port (`cluster-node-per-shard no`), which is where
# the harness expects the node.
set -euo pipefail
conf="$1"
shift
bin="${SHARDIS_BIN:?set SHARDIS_BIN to a shardis-server binary}"
filtered="$conf.shardis"
grep -viE '^\s*(always-show-logo|enable-module-command|unixsocket|propagation-error-behavior)\b' "$conf" > "$filtered" || true
extra=()
if grep -qiE '^\s*cluster-enabled\s+yes' "$conf" || printf '%s\n' "$@" | grep -qx -- '--cluster-enabled'; then
    extra=(--cluster-bus yes --cluster-node-per-shard no)
fi
echo "Shardis standing in for redis-server, PID: $$"
exec "$bin" "$filtered" --shards "${SHARDIS_SHARDS:-2}" "${extra[@]}" "$@"
