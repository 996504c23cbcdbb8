#!/usr/bin/env bash
# Installs what the test suite needs and nothing else: kcat from Debian's packages and the Python
# Kafka clients into a virtualenv at .venv. Idempotent: a second run does nothing but check.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v kcat >/dev/null 2>&1; then
  echo "test-setup: installing kcat (Debian package)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq kcat >/dev/null
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
