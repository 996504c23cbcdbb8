#!/usr/bin/env bash
# The rate a producer quota'd at RATE bytes/s (producer_byte_rate, client id quota-bench)
# actually gets, measured with confluent-kafka (librdkafka, from .venv: scripts/test-setup.sh)
# writing 1 KiB records as fast as it may for DURATION seconds against one release-build
# `samsa dev`; beside it an unthrottled producer (client id free) for comparison. The delivered
# rate is printed for the whole run and for its second half (the first quota window allows a
# burst: Kafka measures the rate over 11 one-second samples, the first as if 10 had passed).
#
# Usage: scripts/bench-quota.sh [RATE] [DURATION_S]   (defaults 1048576 and 60)
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-1048576}
DURATION=${2:-60}
if [ -z "${SAMSA_BIN:-}" ]; then cargo build --release --locked --bin samsa >&2; fi
BIN=${SAMSA_BIN:-target/release/samsa}
PY=${PYTHON:-.venv/bin/python}
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
WORK=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
$BIN dev --port "$PORT" --data-dir "$WORK/data" > "$WORK/broker.out" 2> "$WORK/broker.log" &
PID=$!
until grep -q ready "$WORK/broker.out" 2>/dev/null; do
  kill -0 "$PID" 2>/dev/null || { echo "samsa exited; see $WORK/broker.log" >&2; exit 1; }
  sleep 0.05
done
$BIN configs --bootstrap-server "127.0.0.1:$PORT" --alter --entity-type clients \
  --entity-name quota-bench --add-config "producer_byte_rate=$RATE"
echo "samsa dev on 127.0.0.1:$PORT; $(nproc) cores; producer_byte_rate=$RATE for client id quota-bench; ${DURATION}s"
"$PY" scripts/bench_quota.py "127.0.0.1:$PORT" "$DURATION"
