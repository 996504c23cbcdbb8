#!/usr/bin/env bash
# Builds the container image samsa:latest FROM scratch, with no registry access: a static glibc
# release binary (crt-static) copied onto an empty base. Prints the image size.
#
# Usage: scripts/build-image.sh [TAG]   (default samsa:latest)
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=${1:-samsa:latest}
TARGET=x86_64-unknown-linux-gnu
echo "build-image: static release build (target $TARGET, crt-static)"
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target "$TARGET" --bin samsa
BIN=target/$TARGET/release/samsa
if ldd "$BIN" 2>&1 | grep -q "=>"; then
  echo "build-image: $BIN is dynamically linked; the image needs a static binary" >&2
  exit 1
fi
CONTEXT=$(mktemp -d)
trap 'rm -rf "$CONTEXT"' EXIT
cp deploy/image/Dockerfile "$CONTEXT/"
cp "$BIN" "$CONTEXT/samsa"
strip "$CONTEXT/samsa" 2>/dev/null || true
mkdir -p "$CONTEXT/data"
touch "$CONTEXT/data/.keep"
if ! out=$(DOCKER_BUILDKIT=0 docker build --pull=false -q -t "$TAG" "$CONTEXT" 2>&1); then
  echo "$out" >&2
  exit 1
fi
echo "build-image: $TAG, $(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.1f MiB", $1/1048576}')"
