#!/usr/bin/env bash
# bench/experiments/unwind.sh [ROUNDS] [-- TEST ARGS...]: the shim's C unwinder (shim/unwind.c)
# against libunwind, on the go-sqlite3 test suite, in the same run (issue 14).
#
# Each round runs, back to back: the suite plain, under `cgoscope run -q --json F` as built, and
# under the same cgoscope with CGOSCOPE_UNWIND=libunwind (the shim's walk before unwind.c:
# unw_init_local + unw_step on every miss of its per-thread cache). Prints medians over rounds of
# wall and CPU time and of what each adds to the plain run. Then unwind-micro.c: one libunwind
# unwind of a 16-frame stack, in each configuration Debian's libunwind 1.6.2 offers.
#
# Needs bench/real/run.sh's build (bench/.build/real: the suite's binary and cgoscope; or
# CGOSCOPE_REAL_BUILD). TEST ARGS go to the suite (default: the whole suite).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
B=${CGOSCOPE_REAL_BUILD:-$here/.build/real}
CG=${CGOSCOPE:-$B/cgoscope/bin/cgoscope} T=$B/bin/sqlite3.test M=$B/bin/measure
for f in "$CG" "$T" "$M"; do
  [ -x "$f" ] || { echo "unwind: no $f: run bench/real/run.sh --only sqlite3 first" >&2; exit 1; }
done
rounds=3
if [ $# -gt 0 ] && [ "$1" != "--" ]; then rounds=$1; shift; fi
[ "${1:-}" = "--" ] && shift
tmp=$(mktemp -d /tmp/unwind-exp.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$rounds"); do
  "$M" -o "$tmp/plain" -- "$T" "$@" >/dev/null 2>&1 || true
  "$M" -o "$tmp/fast" -- "$CG" run -q --json "$tmp/fast.json" -- "$T" "$@" >/dev/null 2>&1 || true
  CGOSCOPE_UNWIND=libunwind "$M" -o "$tmp/libunwind" -- "$CG" run -q --json "$tmp/lu.json" -- "$T" "$@" >/dev/null 2>&1 || true
done
med() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg); $rounds rounds; medians; added = run - plain run of the same round"
printf '%-28s %9s %9s %12s %12s\n' run "wall s" "CPU s" "added wall" "added CPU"
for v in plain fast libunwind; do
  col() { awk "{ print \$$1 / 1e9 }" "$tmp/$v" | med; }
  add() { paste -d' ' "$tmp/$v" "$tmp/plain" | awk "{ print (\$$1 - \$$(($1 + 4))) / 1e9 }" | med; }
  name=$v
  [ $v = fast ] && name="cgoscope (unwind.c)"
  [ $v = libunwind ] && name="cgoscope, CGOSCOPE_UNWIND=libunwind"
  printf '%-28s %9.2f %9.2f %12.2f %12.2f\n' "$name" "$(col 1)" "$(col 2)" "$(add 1)" "$(add 2)"
done
for j in fast lu; do
  printf '%s: events lost %s\n' "$j" "$(grep -o '"events_lost":[0-9]*' "$tmp/$j.json" | head -1 | cut -d: -f2)"
done
${CC:-cc} -O2 -Wall -fno-omit-frame-pointer -o "$tmp/micro" "$here/experiments/unwind-micro.c" -lunwind
echo "libunwind alone, one 16-frame stack unwound 20,000 times (unwind-micro.c):"
for mode in 0 1 2 3 4 6 5; do "$tmp/micro" $mode 20000; done
