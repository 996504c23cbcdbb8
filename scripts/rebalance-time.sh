#!/usr/bin/env bash
# Measures consumer-group rebalance time (a member joining, a member crashing) for a group of 4
# confluent-kafka consumers on a single `samsa dev`; see scripts/rebalance_time.py.
#
# Usage: scripts/rebalance-time.sh [RUNS] [SESSION_MS]   (default 5 runs, session 6000 ms)
set -euo pipefail
cd "$(dirname "$0")/.."
export SAMSA_BIN=${SAMSA_BIN:-$PWD/target/release/samsa}
[ -x "$SAMSA_BIN" ] || cargo build --release --locked --bin samsa
scripts/test-setup.sh >/dev/null
exec .venv/bin/python scripts/rebalance_time.py "$@"
