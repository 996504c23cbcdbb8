#!/usr/bin/env bash
# The one test command: installs what the tests need (kcat, Go with Debian's Go Kafka clients,
# Burrow and ZooKeeper, a Python venv with the real Kafka clients), builds samsa, runs the Rust tests (unit, property, integration) and the real-client
# compatibility tests against a broker each test module starts itself, (with Docker) the
# samsa:latest image and the docker-compose cluster built from it, and a short chaos profile on
# both targets (scripts/chaos.sh; longer runs are for that script alone).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/test-setup.sh

echo "== build"
cargo build --workspace --all-targets --locked

if command -v docker >/dev/null 2>&1; then
  echo "== container image (testcontainers, docker-compose and Kubernetes tests)"
  scripts/build-image.sh
else
  echo "== no Docker engine: the container tests will be skipped"
fi

echo "== rust tests"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

echo "== real-client compatibility tests (kcat, confluent-kafka, kafka-python, aiokafka, Sarama, kafka-go, confluent-kafka-go, Burrow)"
SAMSA_BIN="$PWD/target/debug/samsa" .venv/bin/python -m pytest -q tests/clients "$@"

# A fixed seed, so a red run can be replayed; every fault kind comes up at least once per target.
echo "== chaos, short profile: local processes (network namespaces need root)"
if [ "$(id -u)" = 0 ]; then
  scripts/chaos.sh --duration 100s --seed 20261130 --target processes --out target/chaos/ci-processes
else
  scripts/chaos.sh --duration 100s --seed 20261130 --target processes --out target/chaos/ci-processes \
    --faults kill-leader,kill-controller,pause,rolling-restart,kill-all,reassign
fi
if command -v docker >/dev/null 2>&1; then
  echo "== chaos, short profile: containers"
  scripts/chaos.sh --duration 80s --seed 20261130 --target containers --out target/chaos/ci-containers
fi
