#!/usr/bin/env bash
# setup.sh — install the Debian packages dashi needs to build, test and run its demo.
#
# Idempotent: packages already present are left alone, and apt-get runs only when
# something is missing. Runs as root, or through sudo when that exists.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config python3
  librdkafka-dev libavro-dev libhiredis-dev libjansson-dev libssl-dev
  libcriterion-dev redis-server libcurl4-openssl-dev libmicrohttpd-dev
  prometheus yamllint shellcheck python3-yaml
  clang libclang-rt-14-dev
)

# `scripts/setup.sh --bench` adds what bench/run.sh measures the limits with
if [ "${1:-}" = "--bench" ]; then
  PACKAGES+=(kcat redis-tools)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "setup: installing ${missing[*]}"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
