#!/usr/bin/env bash
# Runs every test: the unit tests built with ASan and UBSan, the suite again on test programs
# built by Go 1.21 (the oldest supported; installed from bookworm-backports if missing), the
# trace reader under libFuzzer for CGOSCOPE_FUZZ_SECONDS (default 60), then the whole suite
# (unit tests and the integration tests that run testprogs/ under the real shim).
# Installs missing packages first.
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

# The same tests on binaries built by the oldest Go cgoscope supports (docs/go-versions.md).
# Installs it from bookworm-backports if needed; CGOSCOPE_GO_OLDEST=/path/to/go uses one you have.
echo "== cgoscope: integration tests on binaries built by the oldest supported Go (1.21)" >&2
if [ -n "${CGOSCOPE_GO_OLDEST:-}" ]; then
  go_oldest=$CGOSCOPE_GO_OLDEST
elif ! go_oldest=$(bash scripts/go-toolchains.sh 1.21); then
  echo "test: FAILED: Go 1.21 could not be installed (scripts/go-toolchains.sh, see above): the" \
       "integration tests on the oldest supported Go did not run. Set CGOSCOPE_GO_OLDEST=/path/to/go" \
       "to use a Go 1.21 you installed yourself." >&2
  exit 1
fi
cmake -S . -B "$build-go1.21" -DCGOSCOPE_BUILD_TESTPROGS=ON -DGO_EXECUTABLE="$go_oldest" >/dev/null
cmake --build "$build-go1.21" -j"$jobs" >/dev/null
ctest --test-dir "$build-go1.21" --output-on-failure -j"$jobs"

echo "== cgoscope: building everything" >&2
cmake -S . -B "$build" >/dev/null
cmake --build "$build" -j"$jobs"

# The trace reader under libFuzzer, for a bounded time (docs/robustness.md), from small traces of
# every kind and a real one of testprogs/leaky. A crash or a hang (-timeout) fails the run and
# leaves the input that caused it in $build-fuzz/ (crash-*, timeout-*); its log is
# $build-fuzz/fuzz.log.
fuzz_seconds=${CGOSCOPE_FUZZ_SECONDS:-60}
echo "== cgoscope: fuzzing the trace reader for ${fuzz_seconds} s (libFuzzer)" >&2
CC=clang cmake -S . -B "$build-fuzz" -DCGOSCOPE_FUZZ=ON -DCGOSCOPE_SANITIZE=ON -DCGOSCOPE_BUILD_TESTPROGS=OFF >/dev/null
cmake --build "$build-fuzz" -j"$jobs" --target fuzz_trace make_seeds >/dev/null
rm -rf "$build-fuzz/seeds" && mkdir -p "$build-fuzz/seeds" "$build-fuzz/corpus"
"$build-fuzz/bin/make_seeds" "$build-fuzz/seeds"
"$build/bin/cgoscope" run -q -o "$build-fuzz/seeds/leaky.cgs" -- "$build/testprogs/leaky" >/dev/null
if ! (cd "$build-fuzz" && ASAN_OPTIONS=abort_on_error=1 ./bin/fuzz_trace -max_total_time="$fuzz_seconds" -timeout=20 \
        -rss_limit_mb=2048 -max_len=300000 -print_final_stats=1 corpus seeds >fuzz.log 2>&1); then
  tail -n 60 "$build-fuzz/fuzz.log" >&2
  echo "test: FAILED: the trace reader crashed or hung under libFuzzer (input saved in $build-fuzz)" >&2
  exit 1
fi
grep -E "^(Done|stat::number_of_executed_units|stat::new_units_added)" "$build-fuzz/fuzz.log" >&2 || true

# Last, so that its summary closes the output.
echo "== cgoscope: all tests" >&2
ctest --test-dir "$build" --output-on-failure -j"$jobs"
