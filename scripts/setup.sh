#!/usr/bin/env bash
# Installs the Debian packages cgoscope needs to build and test, if any are missing.
# Safe to run again: it does nothing when everything is present.
set -euo pipefail

packages=(build-essential cmake pkg-config libunwind-dev libjemalloc-dev libdw-dev libelf-dev
          check libjson-c-dev libzstd-dev
          libprotobuf-c-dev protobuf-c-compiler zlib1g-dev  # the pprof export (docs/ci.md)
          chromium  # headless browser: the growth test renders the SVG plot
          valgrind clang libclang-rt-14-dev)  # second opinion on leaks; libFuzzer (docs/robustness.md)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing missing Debian packages: ${missing[*]}" >&2
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v go >/dev/null 2>&1; then
  for d in /usr/local/go/bin /usr/lib/go/bin; do
    [ -x "$d/go" ] && { echo "setup: go is at $d/go but not on PATH; add $d to PATH" >&2; break; }
  done
  echo "setup: the Go toolchain (>= 1.21) is needed to build testprogs/; install it (e.g. apt-get install golang-go)" >&2
  exit 1
fi
