#!/usr/bin/env bash
# Installs what the test suite needs and nothing else: from Debian's packages kcat, Go with the
# Go Kafka clients (Sarama, kafka-go, confluent-kafka-go; built in GOPATH mode against
# /usr/share/gocode), Burrow and the ZooKeeper it needs for itself, kubectl (kubernetes-client) unless one is there; and the Python Kafka clients
# into a virtualenv at .venv. Idempotent: a second run does nothing but check.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(kcat golang-go golang-github-shopify-sarama-dev
  golang-github-segmentio-kafka-go-dev golang-github-confluentinc-confluent-kafka-go-dev
  burrow zookeeper)
missing=()
for p in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# kubectl renders the deploy/k8s-secure overlay (`kubectl kustomize`); any kubectl will do.
command -v kubectl >/dev/null || missing+=(kubernetes-client)
if [ ${#missing[@]} -gt 0 ]; then
  echo "test-setup: installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

VENV=.venv
REQ=tests/clients/requirements.txt
STAMP="$VENV/.requirements.sha"
want=$(sha256sum "$REQ" | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  echo "test-setup: creating Python venv with the Kafka clients ($REQ)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ"
  echo "$want" > "$STAMP"
fi
