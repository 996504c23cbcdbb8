#!/usr/bin/env bash
# The cluster mode of scripts/bench.sh (see there): max throughput, then open-loop latency at
# 10/50/80% of it, on the local three-node cluster. Usage: scripts/bench-cluster.sh [RECORDS]
# [SECONDS]. Everything (cluster, clients) shares this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
RECORDS=${1:-3000000}
SECONDS_AT_RATE=${2:-20}
SIZE=100
PARTITIONS=6

command -v kcat >/dev/null || scripts/test-setup.sh
if [ -z "${SAMSA_BIN:-}" ]; then cargo build --release --locked --bin samsa >&2; fi
export SAMSA_BIN=${SAMSA_BIN:-target/release/samsa}
export LOCAL_CLUSTER_DIR=${LOCAL_CLUSTER_DIR:-$(mktemp -d)/local-cluster}
WORK=$(mktemp -d)
cleanup() { scripts/local-cluster.sh down >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT
scripts/local-cluster.sh up >&2
B=127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094
BIN=$SAMSA_BIN
for t in bench-a1 bench-aall kcat-a1 kcat-aall lat-a1 lat-aall e2e; do
  $BIN topic create "$t" --partitions $PARTITIONS --replication-factor 3 \
    --config min.insync.replicas=2 --bootstrap-server 127.0.0.1:19092 >/dev/null
done

field() { # a number after a label in a bench line
  python3 -c "import re,sys; m=re.search(sys.argv[1], sys.stdin.read()); print(m.group(1) if m else 'nan')" "$1"
}
printf '%-26s %-5s %14s %8s  %s\n' measurement acks records/s MB/s "latency ms"
declare -A MAX
for acks in 1 all; do
  out=$($BIN bench produce --bootstrap-server "$B" --topic "bench-a$acks" --records "$RECORDS" \
    --record-size $SIZE --acks $acks --partitions $PARTITIONS 2>/dev/null)
  rps=$(echo "$out" | field '([0-9.]+) records/s')
  MAX[$acks]=$rps
  printf '%-26s %-5s %14.0f %8.1f  %s\n' "max throughput (samsa)" "$acks" "$rps" \
    "$(echo "$out" | field '([0-9.]+) MB/s')" "$(echo "$out" | sed -E 's/.*latency ms //')"
  python3 -c "import sys; sys.stdout.write(('x'*$SIZE+'\\n')*$RECORDS)" > "$WORK/records"
  s=$(date +%s.%N)
  kcat -P -b "$B" -t "kcat-a$acks" -X acks=$acks -X linger.ms=5 -X batch.size=1000000 -l "$WORK/records"
  e=$(date +%s.%N)
  python3 -c "import sys; n,s,e=int(sys.argv[1]),float(sys.argv[2]),float(sys.argv[3]); print('%-26s %-5s %14.0f %8.1f  %s' % ('max throughput (kcat)', sys.argv[4], n/(e-s), n*$SIZE/(e-s)/1e6, '-'))" "$RECORDS" "$s" "$e" "$acks"
done
for acks in 1 all; do
  for pct in 10 50 80; do
    rate=$(python3 -c "print(int(float('${MAX[$acks]}') * $pct / 100))")
    out=$($BIN bench produce --bootstrap-server "$B" --topic "lat-a$acks" --rate "$rate" \
      --duration-s "$SECONDS_AT_RATE" --record-size $SIZE --acks $acks --partitions $PARTITIONS 2>/dev/null)
    printf '%-26s %-5s %14s %8s  %s\n' "produce at ${pct}% of max" "$acks" "$rate" "-" \
      "$(echo "$out" | sed -E 's/.*latency ms //')"
  done
done
for pct in 10 50 80; do
  rate=$(python3 -c "print(int(float('${MAX[all]}') * $pct / 100))")
  out=$($BIN bench e2e --bootstrap-server "$B" --topic e2e --rate "$rate" \
    --duration-s "$SECONDS_AT_RATE" --record-size $SIZE --acks all --partitions $PARTITIONS 2>/dev/null)
  printf '%-26s %-5s %14s %8s  %s\n' "end-to-end at ${pct}% of max" all "$rate" "-" \
    "$(echo "$out" | sed -E 's/.*end-to-end latency ms //')"
done
echo "machine: $(nproc) cores; three release-build nodes and every client on it; RF=3, min.insync.replicas=2, $PARTITIONS partitions, $SIZE B records, default flush policy"
