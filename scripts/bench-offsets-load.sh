#!/usr/bin/env bash
# How long a group coordinator takes to load after COMMITS committed offsets, before and after
# `__consumer_offsets` is compacted. One release-build `samsa dev` with one offsets partition
# (1 MiB segments); a standalone consumer commits 1,000 partitions per OffsetCommit request
# (confluent-kafka, from .venv: scripts/test-setup.sh) until COMMITS records are written.
# Then: restart with the cleaner off and read the coordinator's "loaded groups" line (records
# replayed, milliseconds); restart with the cleaner on, wait for it to compact the partition,
# restart again and read the line once more.
#
# Usage: scripts/bench-offsets-load.sh [COMMITS]   (default 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
COMMITS=${1:-1000000}
if [ -z "${SAMSA_BIN:-}" ]; then cargo build --release --locked --bin samsa >&2; fi
BIN=${SAMSA_BIN:-target/release/samsa}
PY=${PYTHON:-.venv/bin/python}
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
WORK=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
B="127.0.0.1:$PORT"
COMMON=(--override offsets.topic.num.partitions=1 --override offsets.topic.segment.bytes=1048576)

start() { # $1: log.cleaner.enable
  : > "$WORK/broker.out"
  $BIN dev --port "$PORT" --data-dir "$WORK/data" "${COMMON[@]}" \
    --override "log.cleaner.enable=$1" --override log.cleaner.backoff.ms=500 \
    > "$WORK/broker.out" 2>> "$WORK/broker.log" &
  PID=$!
  until grep -q ready "$WORK/broker.out" 2>/dev/null; do
    kill -0 "$PID" 2>/dev/null || { echo "samsa exited; see $WORK/broker.log" >&2; exit 1; }
    sleep 0.05
  done
}
stop() { kill -TERM "$PID"; wait "$PID" || true; PID=; }
loads() { grep -c "loaded groups" "$WORK/broker.log" || true; }
loaded() { # $1: loads before the restart. Waits for the coordinator's load, prints it
  local n=$1
  "$PY" - "$B" <<'PY'
import sys
from confluent_kafka import Consumer, TopicPartition
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": "load-bench"})
c.committed([TopicPartition("load", 0)], timeout=120)
c.close()
PY
  grep "loaded groups" "$WORK/broker.log" | tail -n +$((n + 1)) | tail -1 |
    sed -E 's/.*groups=([0-9]+) records=([0-9]+) elapsed_ms=([0-9]+).*/\2 records replayed in \3 ms/'
}

start false
"$PY" - "$B" "$COMMITS" <<'PY'
import sys, time
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
b, commits = sys.argv[1], int(sys.argv[2])
admin = AdminClient({"bootstrap.servers": b})
admin.create_topics([NewTopic("load", 1000, 1)])["load"].result(60)
c = Consumer({"bootstrap.servers": b, "group.id": "load-bench", "enable.auto.commit": False})
start, done, i = time.time(), 0, 0
while done < commits:
    c.commit(offsets=[TopicPartition("load", p, i) for p in range(1000)], asynchronous=False)
    done, i = done + 1000, i + 1
    if i % 100 == 0:
        print(f"\r{done} commits", end="", file=sys.stderr, flush=True)
c.close()
print(f"\r{done} committed offsets in {time.time() - start:.1f} s", file=sys.stderr)
PY
du -sh "$WORK/data/__consumer_offsets-0" | sed 's/^/offsets partition before compaction: /'
stop
n=$(loads); start false
echo "load before compaction: $(loaded "$n")"
stop
start true
echo "waiting for the cleaner..."
until grep -q "log cleaned partition=__consumer_offsets-0" "$WORK/broker.log"; do sleep 0.5; done
grep "log cleaned partition=__consumer_offsets-0" "$WORK/broker.log" | tail -1 | sed -E 's/.*(read_bytes=[0-9]+ written_bytes=[0-9]+).*(took_ms=[0-9]+).*/cleaner: \1 \2/'
du -sh "$WORK/data/__consumer_offsets-0" | sed 's/^/offsets partition after compaction: /'
stop
n=$(loads); start true
echo "load after compaction: $(loaded "$n")"
stop
