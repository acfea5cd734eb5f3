# shellcheck shell=bash disable=SC2034,SC2154
# Shared by primary-compare.sh and replica-compare.sh: the tool checks, the work directory and
# the two ports (primary on `base_port`, replica on the next), the servers started in the
# background (their pids in `pids`, killed on exit), and the waits on a server's INFO
# replication.
#
# The sourcing script sets `shardis`, `redis` and `base_port` (after its options) before
# calling `repl_init`.

repl_init() {
  [ -x "$shardis" ] || { echo "no shardis-server at $shardis" >&2; exit 1; }
  [ -n "$redis" ] || { echo "redis-server not found" >&2; exit 1; }
  local t
  for t in redis-cli python3; do
    command -v "$t" >/dev/null || { echo "$t not found" >&2; exit 1; }
  done
  work="$(mktemp -d)"
  primary_port=$base_port
  replica_port=$((base_port + 1))
  pids=()
  trap 'stop_all; rm -rf "$work"' EXIT
}

# Kills every server started (and reaps it).
stop_all() {
  local p
  for p in "${pids[@]}"; do
    kill -9 "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  pids=()
}

# Waits until the server on port $1 answers PONG (not -LOADING: it has loaded and serves).
wait_ping() {
  for _ in $(seq 1 400); do
    [ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ] && return 0
    sleep 0.05
  done
  echo "nothing answers on port $1" >&2
  exit 1
}

# Field $2 of INFO replication of the server on port $1.
field() { redis-cli -p "$1" info replication | tr -d '\r' | sed -n "s/^$2://p"; }

# Waits until the replica on port $1 has its link up and has applied offset $2; runs the
# command $3 (if given) at every look, every 20 ms.
wait_synced() {
  while true; do
    if [ $# -ge 3 ]; then "$3"; fi
    if [ "$(field "$1" master_link_status 2>/dev/null)" = up ] &&
       [ "$(field "$1" slave_repl_offset 2>/dev/null)" -ge "$2" ]; then
      return 0
    fi
    sleep 0.02
  done
}
