#!/usr/bin/env bash
# A local three-node samsa cluster: nodes 1–3, each broker+controller, Kafka listeners on
# 127.0.0.1:19092/19093/19094, controller listeners on 19192/19193/19194, data and logs under
# ./local-cluster/.
#
#   scripts/local-cluster.sh up | down | status | kill N | start N | stop N | pid N
#
# `kill N` is SIGKILL; `stop N` is SIGTERM (graceful). SAMSA_BIN picks the binary (default: a
# release build, built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${LOCAL_CLUSTER_DIR:-./local-cluster}
BIN=${SAMSA_BIN:-target/release/samsa}
NODES="1 2 3"
VOTERS="1@127.0.0.1:19192,2@127.0.0.1:19193,3@127.0.0.1:19194"

kafka_port() { echo $((19091 + $1)); }
ctrl_port() { echo $((19191 + $1)); }
pidfile() { echo "$ROOT/node$1/samsa.pid"; }

pid() {
  local f; f=$(pidfile "$1")
  [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && cat "$f"
}

write_config() {
  local n=$1 dir="$ROOT/node$1"
  mkdir -p "$dir"
  cat > "$dir/server.properties" <<PROPS
node.id=$n
process.roles=broker,controller
controller.quorum.voters=$VOTERS
listeners=PLAINTEXT://127.0.0.1:$(kafka_port "$n"),CONTROLLER://127.0.0.1:$(ctrl_port "$n")
log.dirs=$dir/data
num.partitions=3
default.replication.factor=1
PROPS
  # Extra settings, one key=value per line, e.g. LOCAL_CLUSTER_EXTRA=$'min.insync.replicas=2'.
  [ -z "${LOCAL_CLUSTER_EXTRA:-}" ] || printf '%s\n' "$LOCAL_CLUSTER_EXTRA" >> "$dir/server.properties"
}

start() {
  local n=$1
  if [ -n "$(pid "$n" || true)" ]; then echo "node $n already running (pid $(pid "$n"))"; return; fi
  write_config "$n"
  : > "$ROOT/node$n/stdout.log"
  "$BIN" server "$ROOT/node$n/server.properties" >> "$ROOT/node$n/stdout.log" 2>> "$ROOT/node$n/samsa.log" &
  echo $! > "$(pidfile "$n")"
  echo "node $n started (pid $!): Kafka 127.0.0.1:$(kafka_port "$n"), controller 127.0.0.1:$(ctrl_port "$n")"
}

# Waits (bounded) until process $2 of node $1 is gone, then forgets its pid, so an immediate
# `start` never mistakes the dying process for a running node.
wait_gone() {
  local deadline=$((SECONDS + 30))
  while kill -0 "$2" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then echo "node $1 (pid $2) did not exit" >&2; return 1; fi
    sleep 0.05
  done
  rm -f "$(pidfile "$1")"
}

wait_ready() {
  local n=$1 deadline=$((SECONDS + 60))
  until grep -q "ready" "$ROOT/node$n/stdout.log" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then echo "node $n not ready after 60 s; see $ROOT/node$n/samsa.log" >&2; return 1; fi
    if [ -z "$(pid "$n" || true)" ]; then echo "node $n exited; see $ROOT/node$n/samsa.log" >&2; return 1; fi
    sleep 0.1
  done
}

case "${1:-}" in
  up)
    [ -x "$BIN" ] || cargo build --release --locked --bin samsa
    mkdir -p "$ROOT"
    for n in $NODES; do start "$n"; done
    for n in $NODES; do wait_ready "$n"; done
    echo "cluster up: bootstrap servers 127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094"
    ;;
  down)
    for n in $NODES; do
      p=$(pid "$n" || true)
      if [ -n "$p" ]; then kill -TERM "$p"; fi
    done
    for n in $NODES; do
      p=$(pid "$n" || true)
      for _ in $(seq 300); do [ -z "$p" ] || ! kill -0 "$p" 2>/dev/null && break; sleep 0.1; done
      rm -f "$(pidfile "$n")"
    done
    echo "cluster down"
    ;;
  status)
    for n in $NODES; do
      p=$(pid "$n" || true)
      if [ -n "$p" ]; then echo "node $n: running (pid $p)"; else echo "node $n: stopped"; fi
    done
    "$BIN" cluster status --bootstrap-server 127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094 || true
    ;;
  kill)  p=$(pid "${2:?node}" || true); [ -n "$p" ] && kill -KILL "$p" && wait_gone "$2" "$p" && echo "node $2 killed (pid $p)" ;;
  stop)  p=$(pid "${2:?node}" || true); [ -n "$p" ] && kill -TERM "$p" && wait_gone "$2" "$p" && echo "node $2 stopped (pid $p)" ;;
  start) start "${2:?node}"; wait_ready "$2" ;;
  pid)   pid "${2:?node}" || { echo "node $2 is not running" >&2; exit 1; } ;;
  *) echo "usage: $0 up|down|status|kill N|start N|stop N|pid N" >&2; exit 2 ;;
esac
