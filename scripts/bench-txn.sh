#!/usr/bin/env bash
# Transactional throughput and latency, against the idempotent producer, with confluent-kafka
# (librdkafka) from .venv (scripts/test-setup.sh) on one release-build `samsa dev`:
#   * throughput: DURATION seconds each of transactions of 1, 10 and 100 records (100 B values,
#     round-robin over 6 partitions), then the idempotent producer (acks=all) writing the same
#     records without transactions;
#   * end-to-end latency: one record per transaction at RATE transactions/s, from produce() to
#     a read_committed consumer receiving it (p50/p99/max, ms).
#
# Usage: scripts/bench-txn.sh [DURATION_S] [RATE]   (defaults 10, 200)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
RATE=${2:-200}
if [ -z "${SAMSA_BIN:-}" ]; then cargo build --release --locked --bin samsa >&2; fi
BIN=${SAMSA_BIN:-target/release/samsa}
PY=${PYTHON:-.venv/bin/python}
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
WORK=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
$BIN dev --port "$PORT" --data-dir "$WORK/data" --override transaction.state.log.num.partitions=1 \
  > "$WORK/broker.out" 2> "$WORK/broker.log" &
PID=$!
until grep -q ready "$WORK/broker.out" 2>/dev/null; do
  kill -0 "$PID" 2>/dev/null || { echo "samsa exited; see $WORK/broker.log" >&2; exit 1; }
  sleep 0.05
done
echo "samsa dev on 127.0.0.1:$PORT; $(nproc) cores; ${DURATION}s per row"
"$PY" scripts/bench_txn.py "127.0.0.1:$PORT" "$DURATION" "$RATE"
