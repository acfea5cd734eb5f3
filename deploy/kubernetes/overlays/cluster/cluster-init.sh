#!/bin/sh
# Forms a Redis Cluster of the StatefulSet's Shardis pods, or grows it after a scale-up.
#
#   PODS        how many pods the StatefulSet runs (required)
#   REPLICAS    replicas per master (default 1); pods are taken in groups of REPLICAS + 1:
#               the first of a group a master, the others its replicas
#   NAMESPACE   the pods' namespace (the Job sets it from the downward API)
#   NODE_PORT   the node port (default 6380: the pod's port 6379 + 1)
#   REBALANCE   yes (default): after adding masters, move slots to them
#   NODES       instead of DNS, the node addresses ("ip:port ...", pod 0 first), for tests
#
# redis-cli --cluster and CLUSTER MEET take IP addresses, so each pod's name
# (shardis-<i>.shardis-headless.<namespace>.svc) is resolved first.
set -eu

PODS="${PODS:?set PODS to the number of pods}"
REPLICAS="${REPLICAS:-1}"
NODE_PORT="${NODE_PORT:-6380}"
REBALANCE="${REBALANCE:-yes}"
STATEFULSET="${STATEFULSET:-shardis}"
SERVICE="${SERVICE:-shardis-headless}"

address() {
  if [ -n "${NODES:-}" ]; then
    echo "$NODES" | tr ' ' '\n' | grep . | sed -n "$(($1 + 1))p"
    return
  fi
  name="$STATEFULSET-$1.$SERVICE.${NAMESPACE:?set NAMESPACE}.svc"
  ip=""
  while [ -z "$ip" ]; do
    ip=$(getent hosts "$name" | awk '{ print $1; exit }')
    [ -n "$ip" ] || sleep 2
  done
  echo "$ip:$NODE_PORT"
}

cli() {
  addr=$1
  shift
  redis-cli -h "${addr%:*}" -p "${addr##*:}" "$@"
}

# A field of CLUSTER INFO on node $1.
info() {
  cli "$1" cluster info | tr -d '\r' | sed -n "s/^$2://p"
}

# A node that knows only itself and serves nothing has never been part of the cluster.
is_new() {
  [ "$(info "$1" cluster_known_nodes)" = 1 ] && [ "$(info "$1" cluster_slots_assigned)" = 0 ]
}

all=""
i=0
while [ "$i" -lt "$PODS" ]; do
  a=$(address "$i")
  until [ "$(cli "$a" ping 2>/dev/null)" = PONG ]; do
    echo "waiting for pod $i ($a)"
    sleep 2
  done
  all="$all $a"
  i=$((i + 1))
done
first=$(address 0)

if is_new "$first"; then
  echo "forming the cluster of $PODS pods"
  # shellcheck disable=SC2086 # one argument per node
  redis-cli --cluster create $all --cluster-replicas "$REPLICAS" --cluster-yes
else
  group=$((REPLICAS + 1))
  i=0
  master=""
  added=no
  for a in $all; do
    if is_new "$a"; then
      if [ $((i % group)) -eq 0 ] || [ -z "$master" ]; then
        echo "adding $a as a master"
        redis-cli --cluster add-node "$a" "$first"
        master=$(cli "$a" cluster myid)
        added=yes
        # Its replicas are added through pod 0, which must know it first (gossip).
        tries=0
        until cli "$first" cluster nodes | grep -q "^$master "; do
          tries=$((tries + 1))
          [ "$tries" -lt 60 ] || exit 1
          sleep 1
        done
      else
        echo "adding $a as a replica of $master"
        redis-cli --cluster add-node "$a" "$first" --cluster-slave --cluster-master-id "$master"
      fi
    elif [ $((i % group)) -eq 0 ]; then
      master=""
    fi
    i=$((i + 1))
  done
  if [ "$added" = yes ] && [ "$REBALANCE" = yes ]; then
    # Wait until every node agrees on the configuration, then give the new masters slots.
    tries=0
    until redis-cli --cluster check "$first" >/dev/null 2>&1; do
      tries=$((tries + 1))
      [ "$tries" -lt 60 ] || exit 1
      sleep 2
    done
    redis-cli --cluster rebalance "$first" --cluster-use-empty-masters --cluster-yes
  fi
fi
# The nodes agree within a few node timeouts; the Job retries the script if they do not.
tries=0
until redis-cli --cluster check "$first"; do
  tries=$((tries + 1))
  [ "$tries" -lt 60 ] || exit 1
  sleep 2
done
