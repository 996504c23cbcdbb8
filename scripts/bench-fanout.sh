#!/usr/bin/env bash
# What waiting consumers cost the broker: broker CPU seconds per GB produced and per GB fetched
# on a topic of 1,000 partitions, while 100 idle consumers long-poll another topic (each
# connection fetches one partition at its end with max_wait_ms 500, as librdkafka does).
# Against a release-build `samsa dev` started here on a free loopback port with a fresh data
# directory. CPU is the broker process's user+system time from /proc, read before and after
# each phase.
#
# Usage: scripts/bench-fanout.sh [MB] [PARTITIONS] [IDLE_CONSUMERS]   (defaults 1024 1000 100)
set -euo pipefail
cd "$(dirname "$0")/.."
MB=${1:-1024}
PARTITIONS=${2:-1000}
IDLE=${3:-100}
RECORD=1000
RECORDS=$((MB * 1000 * 1000 / RECORD))

# SAMSA_BIN measures another build (e.g. an older commit's) instead of building this tree.
if [ -z "${SAMSA_BIN:-}" ]; then cargo build --release --locked --bin samsa >&2; fi
BIN=${SAMSA_BIN:-target/release/samsa}
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
WORK=$(mktemp -d)
cleanup() {
  kill "${IDLE_PID:-}" 2>/dev/null || true
  kill "$PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
$BIN dev --port "$PORT" --data-dir "$WORK/data" --override log.flush.interval.ms=3600000 \
  > "$WORK/broker.out" 2> "$WORK/broker.log" &
PID=$!
for _ in $(seq 200); do grep -q ready "$WORK/broker.out" 2>/dev/null && break; sleep 0.05; done
B="127.0.0.1:$PORT"
TICK=$(getconf CLK_TCK)
cpu() { awk -v t="$TICK" '{printf "%.2f\n", ($14+$15)/t}' "/proc/$PID/stat"; }
per_gb() { python3 -c "import sys; a,b,mb=map(float,sys.argv[1:]); print(f'{(b-a)/(mb/1000):.2f}')" "$@"; }

$BIN topic create fanout-data --partitions "$PARTITIONS" --bootstrap-server "$B" >/dev/null
$BIN bench idle-consumers --bootstrap-server "$B" --topic fanout-idle --partitions "$IDLE" \
  --consumers "$IDLE" --duration-s 3600 > "$WORK/idle.out" 2>&1 &
IDLE_PID=$!
sleep 3 # the idle consumers connect and settle into their long polls
c0=$(cpu)
$BIN bench produce --bootstrap-server "$B" --topic fanout-data --records "$RECORDS" \
  --record-size "$RECORD" --acks 1 2>/dev/null
c1=$(cpu)
$BIN bench consume --bootstrap-server "$B" --topic fanout-data 2>/dev/null
c2=$(cpu)
echo "broker CPU: produce $(per_gb "$c0" "$c1" "$MB") s/GB, fetch $(per_gb "$c1" "$c2" "$MB") s/GB" \
  "($MB MB of ${RECORD} B records over $PARTITIONS partitions, acks=1, $IDLE idle long-poll consumers)"
echo "machine: $(nproc) cores; broker: release build, samsa dev, log.flush.interval.ms=3600000"
