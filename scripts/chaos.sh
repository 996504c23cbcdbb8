#!/usr/bin/env bash
# The chaos suite: a samsa cluster under an idempotent acks=all workload, consumers in a group and
# an admin client, while a seeded schedule kills partition leaders and the active controller,
# pauses nodes, cuts them off the network, restarts them one by one or all at once. At the end
# every partition is read back, the replicas are compared byte for byte, and the recorded history
# is checked: nothing acknowledged lost, nothing duplicated, every reader agreeing on every
# offset, committed offsets never going back. Prints a summary table; exits non-zero on any
# violation.
#
# Usage: scripts/chaos.sh [--duration D] [--seed S] [--faults kill-leader,kill-controller,pause,
#                          partition,rolling-restart,kill-all,reassign] [--target processes|containers]
#                         [--rounds N] [--out DIR] [--rate N]
#   D like 90s, 30m, 1h30m (default 90s). Same seed, same fault schedule. --rounds N runs N rounds
#   instead, each with every fault kind once (N faults of every kind).
#   processes: each node a process in its own network namespace (partitions need root).
#   containers: the samsa:latest image on a peer and a client network (needs Docker).
# The history, the workers' and the nodes' logs stay in --out (default target/chaos/<target>-<seed>);
# `target/debug/samsa-chaos check DIR` checks a stored history again.
set -euo pipefail
cd "$(dirname "$0")/.."

target=processes
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$i]}" in
    --target) target="${args[$((i + 1))]:-}" ;;
    --target=*) target="${args[$i]#--target=}" ;;
  esac
done

scripts/test-setup.sh
# The nodes run the static release binary the image is built from (one build serves both targets).
if [ "$target" = containers ]; then
  scripts/build-image.sh >/dev/null
else
  RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked -q \
    --target x86_64-unknown-linux-gnu --bin samsa
fi
cargo build --locked -q -p samsa-cluster --bin samsa-chaos
exec target/debug/samsa-chaos "$@"
