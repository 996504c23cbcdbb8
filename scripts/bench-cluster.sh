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
# The cluster's data goes under $WORK and is deleted at the end: the open-loop runs write
# several GB per minute at high rates (RF=3).
WORK=$(mktemp -d)
export LOCAL_CLUSTER_DIR=$WORK/local-cluster
cleanup() { scripts/local-cluster.sh down >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT
scripts/local-cluster.sh up >&2
B=127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094
# The load generator; BENCH_CLIENT_BIN measures an older broker build with today's benchmarks.
BIN=${BENCH_CLIENT_BIN:-$SAMSA_BIN}
for t in bench-a1 bench-aall kcat-a1 kcat-aall lat-a1 lat-aall e2e; do
  $BIN topic create "$t" --partitions $PARTITIONS --replication-factor 3 \
    --config min.insync.replicas=2 --bootstrap-server 127.0.0.1:19092 >/dev/null
done

warm_up() { # a fresh topic's followers start fetching and join the ISR before it is measured;
  # retried, since a topic created right after an overload row may take a while to get leaders
  for _ in $(seq 20); do
    $BIN bench produce --bootstrap-server "$B" --topic "$1" --rate 1000 --duration-s 2 \
      --record-size $SIZE --acks "$2" --partitions $PARTITIONS >/dev/null 2>&1 && return 0
    sleep 1
  done
  echo "warm-up of topic $1 failed 20 times: the cluster did not take writes on it" >&2
  return 1
}
settle() { # each latency row starts with no dirty pages left by the rows before it
  sync
}
acked() { # what an open-loop run got acknowledged per second, beside its latencies
  python3 -c "import re,sys; l=sys.stdin.read(); m=re.search(r'\(([0-9.]+) records/s\)', l); print(f'acknowledged {float(m.group(1)):,.0f}/s' if m else '')"
}
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
  # To compare two builds at identical rates: BENCH_MAX_1 / BENCH_MAX_ALL fix the maxima the
  # latency rows take their percentages of (the measured maxima are still printed).
  fixed_var="BENCH_MAX_${acks^^}"
  [ -z "${!fixed_var:-}" ] || MAX[$acks]=${!fixed_var}
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
    # Each run's topic is deleted afterwards, so a long run does not fill the disk.
    $BIN topic delete "lat-a$acks" --bootstrap-server 127.0.0.1:19092 >/dev/null 2>&1 || true
    $BIN topic create "lat-a$acks" --partitions $PARTITIONS --replication-factor 3 \
      --config min.insync.replicas=2 --bootstrap-server 127.0.0.1:19092 >/dev/null
    sleep 1 # every leader opens its new replica (the benchmark does not retry)
    warm_up "lat-a$acks" $acks
    settle
    rate=$(python3 -c "print(int(float('${MAX[$acks]}') * $pct / 100))")
    out=$($BIN bench produce --bootstrap-server "$B" --topic "lat-a$acks" --rate "$rate" \
      --duration-s "$SECONDS_AT_RATE" --record-size $SIZE --acks $acks --partitions $PARTITIONS 2>/dev/null)
    printf '%-26s %-5s %14s %8s  %s; %s\n' "produce at ${pct}% of max" "$acks" "$rate" "-" \
      "$(echo "$out" | sed -E 's/.*latency ms //')" "$(echo "$out" | acked)"
  done
done
for pct in 10 50 80; do
  $BIN topic delete e2e --bootstrap-server 127.0.0.1:19092 >/dev/null 2>&1 || true
  $BIN topic create e2e --partitions $PARTITIONS --replication-factor 3 \
    --config min.insync.replicas=2 --bootstrap-server 127.0.0.1:19092 >/dev/null
  sleep 1 # every leader opens its new replica (the benchmark does not retry)
  warm_up e2e all
  settle
  rate=$(python3 -c "print(int(float('${MAX[all]}') * $pct / 100))")
  out=$($BIN bench e2e --bootstrap-server "$B" --topic e2e --rate "$rate" \
    --duration-s "$SECONDS_AT_RATE" --record-size $SIZE --acks all --partitions $PARTITIONS 2>/dev/null)
  printf '%-26s %-5s %14s %8s  %s\n' "end-to-end at ${pct}% of max" all "$rate" "-" \
    "$(echo "$out" | sed -E 's/.*end-to-end latency ms //')"
done
echo "machine: $(nproc) cores; three release-build nodes and every client on it; RF=3, min.insync.replicas=2, $PARTITIONS partitions, $SIZE B records, default flush policy"
