#!/usr/bin/env bash
# Time to move a partition of SIZE_MB (default 1024) onto a new broker, without and with a
# replication throttle (KIP-73): a four-node cluster of release-build `samsa server` processes
# on loopback (three voters and a broker-only node 4), a one-partition RF=3 topic on [1,2,3]
# filled with 1 KiB records (acks=all, `samsa bench produce`), then `samsa topic reassign` to
# [4,2,3], without a throttle and then (a fresh topic) with `--throttle THROTTLE` bytes/s
# (default 52428800), timed until `--verify` reports it complete.
#
# Usage: scripts/bench-reassign.sh [SIZE_MB] [THROTTLE]   (needs .venv: scripts/test-setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=${1:-1024}
THROTTLE=${2:-52428800}
if [ -z "${SAMSA_BIN:-}" ]; then cargo build --release --locked --bin samsa >&2; fi
export SAMSA_BIN=${SAMSA_BIN:-$PWD/target/release/samsa}
PY=${PYTHON:-.venv/bin/python}
echo "$(nproc) cores; $SIZE_MB MiB per move; throttle $THROTTLE B/s"
"$PY" scripts/bench_reassign.py "$SIZE_MB" "$THROTTLE"
