#!/usr/bin/env bash
# Restart time with a lot of data: writes GB gigabytes (1 KiB records, acks=1) over PARTITIONS
# partitions of a release-build `samsa dev`, then measures the time from process start to
# "ready" after a SIGTERM (clean shutdown: nothing re-validated) and after a SIGKILL (only what
# lies past each log's recovery point is re-validated). The page cache is dropped before each
# restart when running as root, so the numbers include reading from disk.
#
# Usage: scripts/bench-restart.sh [GB] [PARTITIONS]   (defaults 10 and 100)
set -euo pipefail
cd "$(dirname "$0")/.."
GB=${1:-10}
PARTITIONS=${2:-100}
RECORD=1024
RECORDS=$((GB * 1024 * 1024 * 1024 / RECORD))
if [ -z "${SAMSA_BIN:-}" ]; then cargo build --release --locked --bin samsa >&2; fi
BIN=${SAMSA_BIN:-target/release/samsa}
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
WORK=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
B="127.0.0.1:$PORT"

start() { # sets PID, and ELAPSED to the seconds from exec to "ready"
  local s; s=$(date +%s.%N)
  $BIN dev --port "$PORT" --data-dir "$WORK/data" > "$WORK/broker.out" 2>> "$WORK/broker.log" &
  PID=$!
  until grep -q ready "$WORK/broker.out" 2>/dev/null; do
    kill -0 "$PID" 2>/dev/null || { echo "samsa exited; see $WORK/broker.log" >&2; exit 1; }
    sleep 0.01
  done
  ELAPSED=$(python3 -c "import sys,time; print(f'{time.time()-float(sys.argv[1]):.2f}')" "$s")
}
drop_caches() { [ "$(id -u)" = 0 ] && sync && echo 3 > /proc/sys/vm/drop_caches || true; }

start
$BIN bench produce --bootstrap-server "$B" --topic restart --records "$RECORDS" \
  --record-size $RECORD --acks 1 --partitions "$PARTITIONS" 2>/dev/null
du -sh "$WORK/data" | sed 's/^/data: /'
kill -TERM "$PID"; wait "$PID" || true
drop_caches
start
echo "restart after SIGTERM: $ELAPSED s to ready"
# A crash with the last writes unflushed: more writes, then SIGKILL at once.
$BIN bench produce --bootstrap-server "$B" --topic restart --records $((RECORDS / 20)) \
  --record-size $RECORD --acks 1 >/dev/null
kill -9 "$PID"; wait "$PID" 2>/dev/null || true
drop_caches
start
echo "restart after SIGKILL: $ELAPSED s to ready"
echo "machine: $(nproc) cores; $GB GB in $PARTITIONS partitions; page cache dropped: $([ "$(id -u)" = 0 ] && echo yes || echo no)"
