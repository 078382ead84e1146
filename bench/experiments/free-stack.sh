#!/usr/bin/env bash
# bench/experiments/free-stack.sh [ROUNDS]: what a free's stack costs, with more rounds than
# bench/run.sh gives it. Each round runs, back to back, cgoscope and the same cgoscope with the
# shim whose frees carry no stack (bench-shims/libcgoscope-nofreestack.so) on three workloads:
#
#   alloc   2M malloc/free pairs made in C, 1,000 per cgo call (one free stack in all)
#   gofree  500k C.malloc/C.free pairs called from Go (a cgo call per free)
#   mixed   32 goroutines, 5.92M allocations and frees from C and from Go
#
# and prints, per workload, the median over rounds of the ratios (cgoscope / baseline) and of the
# added time per free. Needs bench/run.sh's build (bench/.build, or CGOSCOPE_BENCH_BUILD).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
B=${CGOSCOPE_BENCH_BUILD:-$here/.build}
CG=$B/bin/cgoscope NOFS=$B/bench-shims/libcgoscope-nofreestack.so M=$B/bench/measure
for f in "$CG" "$NOFS" "$M" "$B/bench/alloc" "$B/bench/mixed"; do
  [ -e "$f" ] || { echo "free-stack: no $f: run bench/run.sh first" >&2; exit 1; }
done
rounds=${1:-9}
tmp=$(mktemp -d /tmp/free-stack.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
declare -A args=([alloc]="$B/bench/alloc -calls 2000 -pairs 1000" [gofree]="$B/bench/alloc -calls 0 -gopairs 500000"
  [mixed]="$B/bench/mixed -g 32 -n 20000")
declare -A frees=([alloc]=2000000 [gofree]=500000 [mixed]=5919403)
for r in $(seq "$rounds"); do
  for w in alloc gofree mixed; do
    # shellcheck disable=SC2086
    "$M" -o "$tmp/$w.fs" -- "$CG" run -q -- ${args[$w]} >/dev/null 2>&1 || true
    # shellcheck disable=SC2086
    CGOSCOPE_SHIM=$NOFS "$M" -o "$tmp/$w.nofs" -- "$CG" run -q -- ${args[$w]} >/dev/null 2>&1 || true
  done
done
med() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $rounds rounds; medians"
printf '%-8s %12s %12s %16s %16s\n' workload "wall ratio" "CPU ratio" "wall ns/free" "CPU ns/free"
for w in alloc gofree mixed; do
  p() { paste -d' ' "$tmp/$w.fs" "$tmp/$w.nofs" | awk -v n="${frees[$w]}" "$1" | med; }
  printf '%-8s %11.3fx %11.3fx %16.1f %16.1f\n' "$w" "$(p '{ print $1 / $5 }')" "$(p '{ print $2 / $6 }')" \
    "$(p '{ print ($1 - $5) / n }')" "$(p '{ print ($2 - $6) / n }')"
done
