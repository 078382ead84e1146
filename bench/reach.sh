#!/usr/bin/env bash
# The cost of the reachability scan (docs/reachability.md): bench/workloads/held ends holding
# 200,000 C blocks of 256 bytes (50 MB, a chain the scan follows block by block) and 64 MB of Go
# heap. Runs it plain, under cgoscope with the scan off (CGOSCOPE_REACHABILITY=0) and with it on,
# N times each (default 5, alternating), and prints medians, the scan's own time from the JSON
# report, and the time per MB scanned.
#   bench/reach.sh [N]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
n=${1:-5}
bench_setup
(cd "$here/workloads" && go build -o "$bin/held" ./held) >"$logs/go-build-held.log" 2>&1 ||
  { cat "$logs/go-build-held.log" >&2; die "building workload held failed"; }
plain=() off=() on=() scan=() mb=() lost=()
t() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s%N); echo $(((e - s) / 1000000)); }
for i in $(seq 1 "$n"); do
  plain+=("$(t "$bin/held")")
  off+=("$(CGOSCOPE_REACHABILITY=0 t "$CGOSCOPE" run -q --json "$scratch/held-off.json" -- "$bin/held")")
  on+=("$(t "$CGOSCOPE" run -q --json "$scratch/held.json" -- "$bin/held")")
  read -r s b l < <(python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["processes"][0]; r=p["reachability"]; print(int(r["seconds"]*1000), r["bytes_scanned"]//1048576, p["totals"]["leaked_blocks"])' "$scratch/held.json")
  scan+=("$s") mb+=("$b") lost+=("$l")
done
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
P=$(median "${plain[@]}") F=$(median "${off[@]}") O=$(median "${on[@]}") S=$(median "${scan[@]}") M=$(median "${mb[@]}")
echo
echo "| held: 200k C blocks (50 MB) + 64 MB Go heap | median of $n |"
echo "| --- | ---: |"
echo "| plain | ${P} ms |"
echo "| cgoscope, scan off | ${F} ms ($(awk -v a="$F" -v b="$P" 'BEGIN { printf "%.2fx", a / b }') plain) |"
echo "| cgoscope, scan on | ${O} ms ($(awk -v a="$O" -v b="$P" 'BEGIN { printf "%.2fx", a / b }') plain, $(awk -v a="$O" -v b="$F" 'BEGIN { printf "%.2fx", a / b }') scan off) |"
echo "| the scan itself (JSON reachability.seconds) | ${S} ms for ${M} MB: $(awk -v s="$S" -v m="$M" 'BEGIN { if (m > 0) printf "%.2f ms/MB", s / m; else print "n/a" }') |"
echo "| lost blocks found (1 in 100 dropped: 2000) | $(median "${lost[@]}") |"
