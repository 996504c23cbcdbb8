#!/usr/bin/env bash
# One table of produce and consume throughput for 100-byte and 1 KiB records, acks=1 and
# acks=all, measured with `samsa bench` and with kcat as an independent load generator, against
# a release-build `samsa dev` started here on a free loopback port with a fresh data directory.
#
# Usage: [SAMSA_BIN=<binary>] scripts/bench.sh [RECORDS_100B] [RECORDS_1KIB]   (defaults 2000000 and 500000)
#        scripts/bench.sh cluster [RECORDS] [SECONDS]      (defaults 3000000 and 20)
#
# Cluster mode starts the local three-node cluster (scripts/local-cluster.sh, fresh data) and
# prints one table for 100-byte records on an RF=3 topic of 6 partitions
# (min.insync.replicas=2): the maximum throughput for acks=1 and acks=all (`samsa bench
# produce`, closed loop, and kcat as an independent cross-check), then the latency percentiles
# at 10%, 50% and 80% of each maximum (`samsa bench produce --rate`, open loop, linger 1 ms) and
# end-to-end (`samsa bench e2e`).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = cluster ]; then
  exec scripts/bench-cluster.sh "${@:2}"
fi
N100=${1:-2000000}
N1K=${2:-500000}

command -v kcat >/dev/null || scripts/test-setup.sh
# SAMSA_BIN measures another build (e.g. an older commit's) instead of building this tree.
if [ -z "${SAMSA_BIN:-}" ]; then cargo build --release --locked --bin samsa >&2; fi
BIN=${SAMSA_BIN:-target/release/samsa}
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
WORK=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
$BIN dev --port "$PORT" --data-dir "$WORK/data" > "$WORK/broker.out" 2> "$WORK/broker.log" &
PID=$!
for _ in $(seq 100); do grep -q ready "$WORK/broker.out" 2>/dev/null && break; sleep 0.05; done
B="127.0.0.1:$PORT"

rate() { # records bytes seconds -> "records/s MB/s"
  python3 -c "import sys; n,b,s=map(float,sys.argv[1:]); print(f'{n/s:>12,.0f} {b/s/1e6:>8.1f}')" "$@"
}
now() { date +%s.%N; }

printf '%-8s %-6s %-5s %-12s %12s %8s  %s\n' tool op acks record_size records/s MB/s latency_ms
for size in 100 1024; do
  n=$N100; [ "$size" = 1024 ] && n=$N1K
  for acks in 1 all; do
    t="bench-s$size-a$acks"
    out=$($BIN bench produce --bootstrap-server "$B" --topic "$t" --records "$n" --record-size "$size" --acks "$acks" 2>/dev/null)
    lat=$(echo "$out" | sed -E 's/.*latency ms (.*)/\1/')
    echo "$out" | python3 -c "
import re,sys; l=sys.stdin.read(); r=re.search(r'([0-9.]+) records/s, ([0-9.]+) MB/s',l)
print('%-8s %-6s %-5s %-12s %12s %8s  %s' % ('samsa','produce','$acks','$size',f'{float(r.group(1)):,.0f}',r.group(2),'''$lat'''))"
    out=$($BIN bench consume --bootstrap-server "$B" --topic "$t" 2>/dev/null)
    lat=$(echo "$out" | sed -E 's/.*latency ms (.*)/\1/')
    echo "$out" | python3 -c "
import re,sys; l=sys.stdin.read(); r=re.search(r'([0-9.]+) records/s, ([0-9.]+) MB/s',l)
print('%-8s %-6s %-5s %-12s %12s %8s  %s' % ('samsa','consume','-','$size',f'{float(r.group(1)):,.0f}',r.group(2),'''$lat'''))"

    # kcat: the same records from a file, librdkafka batching (linger 5 ms, 1 MB batches).
    python3 -c "import sys; sys.stdout.write(('x'*$size+'\n')*$n)" > "$WORK/records"
    k="kcat-s$size-a$acks"
    s=$(now)
    kcat -P -b "$B" -t "$k" -X acks="$acks" -X linger.ms=5 -X batch.size=1000000 -l "$WORK/records"
    e=$(now)
    printf '%-8s %-6s %-5s %-12s %s  %s\n' kcat produce "$acks" "$size" "$(rate "$n" $((n*size)) "$(python3 -c "print($e-$s)")")" "-"
    s=$(now)
    got=$(kcat -C -b "$B" -t "$k" -o beginning -e -q -f '%s\n' | wc -l)
    e=$(now)
    printf '%-8s %-6s %-5s %-12s %s  %s\n' kcat consume - "$size" "$(rate "$got" $((got*size)) "$(python3 -c "print($e-$s)")")" "records=$got"
  done
done
echo "machine: $(nproc) cores; broker: release build, samsa dev, default flush policy (fsync every 1 s)"
