#!/usr/bin/env bash
# What a down-converted Fetch costs against a normal one (issue 19): one release-build
# `samsa dev`, one partition per codec (none, lz4, gzip) of RECORDS records, each read to its end
# with Fetch v4 (stored batches), v3 (down-converted to message format v1) and v1 (format v0).
# Needs confluent-kafka from .venv (scripts/test-setup.sh).
#
# Usage: scripts/bench-downconvert.sh [RECORDS] [ROUNDS]   (defaults 500000, 3)
set -euo pipefail
cd "$(dirname "$0")/.."
RECORDS=${1:-500000}
ROUNDS=${2:-3}
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
echo "samsa dev on 127.0.0.1:$PORT; $(nproc) cores"
"$PY" scripts/bench_downconvert.py "127.0.0.1:$PORT" "$RECORDS" "$ROUNDS"
