#!/usr/bin/env bash
# The one test command: installs what the tests need (kcat, a Python venv with the real Kafka
# clients), builds samsa, runs the Rust tests (unit, property, integration) and the real-client
# compatibility tests against a broker each test module starts itself, and (with Docker) the
# samsa:latest image and the docker-compose cluster built from it.
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

echo "== real-client compatibility tests (kcat, confluent-kafka, kafka-python, aiokafka)"
SAMSA_BIN="$PWD/target/debug/samsa" .venv/bin/python -m pytest -q tests/clients "$@"
