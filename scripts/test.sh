#!/usr/bin/env bash
# Runs every test: the unit tests built with ASan and UBSan, then the whole suite (unit tests and
# the integration tests that run testprogs/ under the real shim). Installs missing packages first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/env.sh
build=${CGOSCOPE_BUILD_DIR:-build}
jobs=$(nproc 2>/dev/null || echo 2)

echo "== cgoscope: unit tests under AddressSanitizer and UndefinedBehaviorSanitizer" >&2
cmake -S . -B "$build-asan" -DCGOSCOPE_SANITIZE=ON -DCGOSCOPE_BUILD_TESTPROGS=OFF >/dev/null
cmake --build "$build-asan" -j"$jobs" --target unit_tests cgoscope >/dev/null
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir "$build-asan" --output-on-failure

echo "== cgoscope: all tests" >&2
cmake -S . -B "$build" >/dev/null
cmake --build "$build" -j"$jobs"
ctest --test-dir "$build" --output-on-failure -j"$jobs"
