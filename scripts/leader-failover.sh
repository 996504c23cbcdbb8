#!/usr/bin/env bash
# Measures partition leader failover on the local three-node cluster: a topic with RF=3 and
# min.insync.replicas=2; SIGKILL the partition leader, time until an acks=all produce succeeds
# (on the new leader), restart the killed node, wait until it is back in the ISR, repeat.
# The default broker.session.timeout.ms (9 s) dominates: a killed broker is only fenced, and
# its leaderships moved, when its session expires. Set LOCAL_CLUSTER_EXTRA to try other values.
#
# Usage: scripts/leader-failover.sh [KILLS]   (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
KILLS=${1:-20}
export SAMSA_BIN=${SAMSA_BIN:-target/release/samsa}
export LOCAL_CLUSTER_DIR=${LOCAL_CLUSTER_DIR:-$(mktemp -d)/local-cluster}
[ -x "$SAMSA_BIN" ] || cargo build --release --locked --bin samsa
trap 'scripts/local-cluster.sh down >/dev/null 2>&1 || true' EXIT
scripts/local-cluster.sh up >/dev/null
ALL=127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094
"$SAMSA_BIN" topic create failover --partitions 1 --replication-factor 3 --config min.insync.replicas=2 --bootstrap-server "$ALL" >/dev/null
describe() { "$SAMSA_BIN" topic describe failover --bootstrap-server "$1" 2>/dev/null | grep "Partition: 0"; }
samples=()
for i in $(seq 1 "$KILLS"); do
  leader=$(describe "$ALL" | sed -n 's/.*Leader: \([0-9]*\).*/\1/p')
  others=$(echo "$ALL" | tr ',' '\n' | grep -v ":$((19091 + leader))\$" | paste -sd,)
  start=$(date +%s%N)
  scripts/local-cluster.sh kill "$leader" >/dev/null
  until echo "kill-$i" | "$SAMSA_BIN" produce failover --acks all --bootstrap-server "$others" >/dev/null 2>&1; do
    if [ $(( ($(date +%s%N) - start) / 1000000 )) -gt 60000 ]; then echo "no acks=all success 60 s after kill $i" >&2; exit 1; fi
    sleep 0.05
  done
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  samples+=("$ms")
  echo "kill $i: leader $leader killed; acks=all produce succeeded after ${ms} ms"
  scripts/local-cluster.sh start "$leader" >/dev/null
  # Back in the ISR before the next kill, so every kill starts from a full ISR.
  deadline=$((SECONDS + 60))
  until describe "$ALL" | grep -q "Isr: [0-9],[0-9],[0-9]"; do
    [ $SECONDS -lt $deadline ] || { echo "node $leader did not rejoin the ISR" >&2; exit 1; }
    sleep 0.1
  done
done
printf '%s\n' "${samples[@]}" | sort -n | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "leader failover over %d SIGKILLs: median %d ms, max %d ms (kill -> acks=all produce success)\n", NR, m, a[NR]}'
