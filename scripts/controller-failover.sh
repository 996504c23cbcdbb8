#!/usr/bin/env bash
# Measures controller failover on the local three-node cluster: SIGKILL the active controller,
# time until an admin request (CreateTopics, sent to a surviving node) succeeds, restart the
# killed node, repeat. Prints each sample, then median and max.
#
# Usage: scripts/controller-failover.sh [KILLS]   (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
KILLS=${1:-20}
export SAMSA_BIN=${SAMSA_BIN:-target/release/samsa}
export LOCAL_CLUSTER_DIR=${LOCAL_CLUSTER_DIR:-$(mktemp -d)/local-cluster}
[ -x "$SAMSA_BIN" ] || cargo build --release --locked --bin samsa
trap 'scripts/local-cluster.sh down >/dev/null 2>&1 || true' EXIT
scripts/local-cluster.sh up >/dev/null
ALL=127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094
samples=()
for i in $(seq 1 "$KILLS"); do
  ctrl=$("$SAMSA_BIN" cluster status --bootstrap-server "$ALL" | sed -n 's/^Active controller: *\([0-9]*\).*/\1/p')
  [ -n "$ctrl" ] || { echo "no active controller before kill $i" >&2; exit 1; }
  others=$(echo "$ALL" | tr ',' '\n' | grep -v ":$((19091 + ctrl))\$" | paste -sd,)
  start=$(date +%s%N)
  scripts/local-cluster.sh kill "$ctrl" >/dev/null
  until "$SAMSA_BIN" topic create "failover-$i" --partitions 1 --replication-factor 1 --bootstrap-server "$others" >/dev/null 2>&1; do
    if [ $(( ($(date +%s%N) - start) / 1000000 )) -gt 60000 ]; then
      echo "no admin success 60 s after killing controller $ctrl (kill $i); cluster now:" >&2
      scripts/local-cluster.sh status >&2 || true
      exit 1
    fi
    sleep 0.01
  done
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  samples+=("$ms")
  echo "kill $i: controller $ctrl killed; CreateTopics succeeded after ${ms} ms"
  scripts/local-cluster.sh start "$ctrl" >/dev/null
done
printf '%s\n' "${samples[@]}" | sort -n | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "controller failover over %d SIGKILLs: median %d ms, max %d ms (kill -> CreateTopics success)\n", NR, m, a[NR]}'
