#!/usr/bin/env bash
# bench/experiments/hook-floor.sh [RUNS]: what the parts of cgoscope's cgo hook cost in place.
#
# The calls target (a null-call loop within 1.15x of its plain run) leaves ~3.4 ns per call here.
# This experiment builds the shim with hook-floor.patch, which lets CGOSCOPE_X replace the hook
# by a minimal one, and times the 20M null cgo calls of bench/workloads/calls (medians of RUNS,
# default 7, each variant run back to back with the plain program):
#
#   plain            the program alone
#   X=1 no store     stub -> straight on to the wrapper (tail jump): the hook's mechanism alone
#   X=2 one store    the same with one store to a thread-local variable
#   X=3 one counter  the same with a per-site counter incremented (the least an exact count needs)
#   X=4 call+store   the wrapper called, one store after it returns
#   X=5 timed        the least a timed call needs: clock read, call, clock read, one per-site sum
#   X=6 loads only   no store while the site repeats: the thread's last site compared, the M's cgo
#                    call count (runtime.m.ncgocall, Go 1.26's offset) hashed to pick 1 call in 64
#   off              the real hook, --timing=off (counts, the Go-frame context, the call nesting)
#   default          the real hook, default timing (sampled)
#   full             the real hook, --timing=full
#
# Then the cost of the two clock reads back to back (bench/tools/clockcost.c): the full-timing
# target is that plus 5 ns.
#
# Needs a configured build of this checkout (scripts/test.sh makes one) and Go; changes nothing in
# the checkout (the patched shim is built in a temporary worktree).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
runs=${1:-7}
tmp=$(mktemp -d /tmp/hook-floor.XXXXXX)
trap 'git -C "$root" worktree remove --force "$tmp/src" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT

git -C "$root" worktree add --detach "$tmp/src" HEAD >/dev/null 2>&1
git -C "$tmp/src" apply "$here/hook-floor.patch"
cmake -S "$tmp/src" -B "$tmp/build" -DCGOSCOPE_BUILD_TESTPROGS=OFF -DCGOSCOPE_WERROR=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$tmp/cmake.log" 2>&1 || { tail -20 "$tmp/cmake.log"; exit 1; }
cmake --build "$tmp/build" -j2 --target cgoscope cgoscope_shim >>"$tmp/cmake.log" 2>&1 ||
  { tail -20 "$tmp/cmake.log"; exit 1; }
(cd "$root/bench/workloads" && GOTOOLCHAIN=local GOFLAGS=-buildvcs=false go build -o "$tmp/calls" ./calls)
cc -O2 -o "$tmp/measure" "$root/bench/tools/measure.c"
cc -O2 -o "$tmp/clockcost" "$root/bench/tools/clockcost.c"

cg="$tmp/build/bin/cgoscope"
read -ra variants <<<"${VARIANTS:-plain x1 x2 x3 x4 x5 x6 off default full}"
for r in $(seq "$runs"); do
  for v in "${variants[@]}"; do
    case $v in
    plain) "$tmp/measure" -o "$tmp/$v" -- "$tmp/calls" ;;
    x*) CGOSCOPE_X=${v#x} "$tmp/measure" -o "$tmp/$v" -- "$cg" run -q --timing=off -- "$tmp/calls" ;;
    off) "$tmp/measure" -o "$tmp/$v" -- "$cg" run -q --timing=off -- "$tmp/calls" ;;
    default) "$tmp/measure" -o "$tmp/$v" -- "$cg" run -q -- "$tmp/calls" ;;
    full) "$tmp/measure" -o "$tmp/$v" -- "$cg" run -q --timing=full -- "$tmp/calls" ;;
    esac
  done
done
med() { awk '{ print $1 }' "$1" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
plain=$(med "$tmp/plain")
printf '%-34s %9s %8s %12s\n' "hook" "wall ms" "x plain" "ns per call"
for v in "${variants[@]}"; do
  m=$(med "$tmp/$v")
  case $v in
  plain) name="plain" ;; x1) name="X=1 no store (tail jump)" ;; x2) name="X=2 one thread-local store" ;;
  x3) name="X=3 one per-site counter" ;; x4) name="X=4 call, then one store" ;;
  x5) name="X=5 least timed call" ;; x6) name="X=6 loads only" ;; off) name="cgoscope --timing=off" ;;
  default) name="cgoscope (default timing)" ;; full) name="cgoscope --timing=full" ;;
  esac
  awk -v n="$name" -v m="$m" -v p="$plain" \
    'BEGIN { printf "%-34s %9.1f %7.3fx %12.2f\n", n, m / 1e6, m / p, (m - p) / 20e6 }'
done
printf '\ntwo clock reads back to back (rdtsc, rdtscp: the pair the timed path reads): %s ns\n' "$("$tmp/clockcost")"
