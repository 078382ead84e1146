#!/usr/bin/env bash
# bench/run.sh [--quick] [--runs N] [--md FILE] [--keep] [--report-only] [--real]
#
# The cgoscope benchmark suite, one command. It installs the peer tools that are missing
# (heaptrack, zstd, valgrind, uftrace: Debian packages, as root or through sudo), builds cgoscope
# and the Go workloads of bench/workloads, runs each workload plain and under cgoscope, heaptrack,
# valgrind memcheck (scaled-down variants) and, for the null-call workload, uftrace; then times the
# analyzer on a saved trace. It prints a table of medians and writes it as markdown to
# bench/.out/results.md (or --md FILE). bench/README.md explains the workloads and the figures.
#
#   --quick    2 runs of everything (1 of valgrind) instead of 5 (3); same workload sizes
#   --runs N   N runs (valgrind: N too)
#   --md FILE  where the markdown table goes
#   --keep     keep the saved traces of the last run in bench/.out/scratch
#   --report-only  make the table again from the raw figures of the last run (bench/.out/raw)
#   --real     then the go-sqlite3 test suite, whole, plain, under heaptrack and under cgoscope
#              (full report, --json), as many rounds: bench/real/run.sh --only sqlite3, which
#              prints its rows and the issue-14 target (bench/README.md, "Real workloads")
#
# Environment: CGOSCOPE_BENCH_BUILD (build dir, default bench/.build), CGOSCOPE_BENCH_OUT
# (results, logs and scratch files, default bench/.out), CGOSCOPE_BENCH_SRC (the cgoscope source
# tree to build and measure, default this repository; CGOSCOPE_BENCH_REV labels it).
#
# This is a measurement, not a test: nothing here passes or fails on a figure. The script fails
# only when something cannot be built or run.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

runs=5
vg_runs=3
mode="bench/run.sh"
md=""
keep=0
report_only=0
real=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) runs=2; vg_runs=1; mode="bench/run.sh --quick" ;;
    --runs) runs=${2:?--runs needs a number}; vg_runs=$runs; mode="bench/run.sh --runs $runs"; shift ;;
    --md) md=${2:?--md needs a file}; shift ;;
    --keep) keep=1 ;;
    --report-only) report_only=1 ;;
    --real) real=1 ;;
    -h | --help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench: unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
case "$runs" in '' | *[!0-9]* | 0) echo "bench: --runs wants a positive number" >&2; exit 2 ;; esac

. "$here/common.sh"
md=${md:-$out/results.md}
raw=$out/raw

# ---- Workload sizes (the same in --quick; only the number of runs changes) ----------------------
ALLOC_ARGS=(-calls 2000 -pairs 1000)      # 2M malloc/free pairs, 1,000 per cgo call
ALLOC_EMPTY_ARGS=(-calls 0)               # same program, no pairs: start-up and exit only
ALLOC_SHORT_ARGS=(-calls 100 -pairs 1000) # /20, for valgrind
GOFREE_ARGS=(-calls 0 -gopairs 500000)    # C.malloc/C.free pairs from Go, one cgo call each
GOFREE_PAIRS=500000
ALLOC_PAIRS=2000000
ALLOC_SHORT_PAIRS=100000
CALLS_ARGS=(-n 20000000)
CALLS_EMPTY_ARGS=(-n 0)                   # same program, no calls: start-up and exit only
CALLS_TURNS_ARGS=(-n 20000000 -turns)     # two sites in turns: no site twice in a row
CALLS_SHORT_ARGS=(-n 1000000)             # /20, for valgrind
CALLS_N=20000000
CALLS_SHORT_N=1000000
MIXED_G=32 MIXED_N=20000
MIXED_ARGS=(-g $MIXED_G -n $MIXED_N)
MIXED_SHORT_ARGS=(-g $MIXED_G -n $((MIXED_N / 20))) # /20, for valgrind
MIXED_TRUE_LEAKS=$((MIXED_G * (MIXED_N / 1000)))    # the program leaks one block in 1,000 iterations
LIVE_N=1000000                            # blocks left live for the analyzer-memory figure
UFTRACE_PATTERN='_cgo_.*_Cfunc_.*'

if [ "$report_only" -eq 1 ]; then
  [ -f "$raw/facts.sh" ] || die "no figures of an earlier run in $raw"
  # shellcheck source=/dev/null
  . "$raw/facts.sh"
  find_go
else
t_start=$(date +%s)
load_start=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
mkdir -p "$out" "$raw" "$logs" "$scratch"
rm -f "$raw"/*.txt "$raw"/facts.sh "$logs"/*.log
rm -rf "${scratch:?}"/*
# heaptrack compresses its output with zstd when zstd is there (its default on Debian).
bench_setup heaptrack zstd valgrind uftrace
# Without a display, heaptrack's script cannot open heaptrack_gui at the end if that is installed.
unset DISPLAY WAYLAND_DISPLAY

# ---- Running --------------------------------------------------------------------------------------
# run KEY TOOL PROGRAM ARGS...: one measured run, appended to $raw/KEY.txt as
# "wall_ns cpu_ns maxrss_kib status". TOOL is plain, cgoscope, heaptrack, valgrind or uftrace.
run() {
  local key=$1 tool=$2
  shift 2
  local cmd=()
  case "$tool" in
    plain) cmd=("$@") ;;
    cgoscope) cmd=("$CGOSCOPE" run -q -- "$@") ;;
    cgoscope-full) cmd=("$CGOSCOPE" run -q --timing=full -- "$@") ;;
    cgoscope-off) cmd=("$CGOSCOPE" run -q --timing=off -- "$@") ;;
    # The same cgoscope with the shim whose frees carry no stack: the baseline of the free's cost.
    cgoscope-nofs)
      [ -f "$NOFS_SHIM" ] || return 0
      cmd=(env CGOSCOPE_SHIM="$NOFS_SHIM" "$CGOSCOPE" run -q -- "$@") ;;
    heaptrack) cmd=(heaptrack -o "$scratch/heaptrack.$key" "$@") ;;
    valgrind) cmd=(valgrind --tool=memcheck "$@") ;;
    uftrace) cmd=(uftrace record -d "$scratch/uftrace.$key" -P "$UFTRACE_PATTERN" "$@") ;;
    *) die "unknown tool $tool" ;;
  esac
  local st=0
  "$MEASURE" -o "$raw/$key.txt" -- "${cmd[@]}" </dev/null >>"$logs/$key.log" 2>&1 || st=$?
  if [ "$st" -ne 0 ]; then
    echo "$key: exit status $st (see $logs/$key.log)" >>"$raw/failures.txt"
    say "warning: $key exited with status $st"
  fi
  # heaptrack's and uftrace's data are recorded, not analysed (uftrace writes ~600 MB per 20M
  # calls); the first uftrace recording is kept for the check after the runs.
  case "$tool" in
    heaptrack) rm -f "$scratch/heaptrack.$key".* ;;
    uftrace)
      if [ ! -d "$scratch/uftrace.first" ]; then
        mv "$scratch/uftrace.$key" "$scratch/uftrace.first" 2>/dev/null || true
      fi
      rm -rf "$scratch/uftrace.$key" ;;
  esac
}

A=$bin/alloc C=$bin/calls M=$bin/mixed
for ((r = 1; r <= runs; r++)); do
  say "run $r of $runs: alloc"
  run alloc.plain plain "$A" "${ALLOC_ARGS[@]}"
  run alloc.cgoscope cgoscope "$A" "${ALLOC_ARGS[@]}"
  run alloc.cgnofs cgoscope-nofs "$A" "${ALLOC_ARGS[@]}"
  run gofree.plain plain "$A" "${GOFREE_ARGS[@]}"
  run gofree.cgoscope cgoscope "$A" "${GOFREE_ARGS[@]}"
  run gofree.cgnofs cgoscope-nofs "$A" "${GOFREE_ARGS[@]}"
  run alloc.heaptrack heaptrack "$A" "${ALLOC_ARGS[@]}"
  run alloc0.plain plain "$A" "${ALLOC_EMPTY_ARGS[@]}"
  run alloc0.cgoscope cgoscope "$A" "${ALLOC_EMPTY_ARGS[@]}"
  run alloc0.heaptrack heaptrack "$A" "${ALLOC_EMPTY_ARGS[@]}"
  say "run $r of $runs: calls"
  run calls.plain plain "$C" "${CALLS_ARGS[@]}"
  run calls.cgoscope cgoscope "$C" "${CALLS_ARGS[@]}"
  run calls.cgfull cgoscope-full "$C" "${CALLS_ARGS[@]}"
  run calls.cgoff cgoscope-off "$C" "${CALLS_ARGS[@]}"
  run callst.plain plain "$C" "${CALLS_TURNS_ARGS[@]}"
  run callst.cgoscope cgoscope "$C" "${CALLS_TURNS_ARGS[@]}"
  run calls.uftrace uftrace "$C" "${CALLS_ARGS[@]}"
  run calls.heaptrack heaptrack "$C" "${CALLS_ARGS[@]}"
  run calls0.plain plain "$C" "${CALLS_EMPTY_ARGS[@]}"
  run calls0.cgoscope cgoscope "$C" "${CALLS_EMPTY_ARGS[@]}"
  run calls0.uftrace uftrace "$C" "${CALLS_EMPTY_ARGS[@]}"
  say "run $r of $runs: mixed"
  run mixed.plain plain "$M" "${MIXED_ARGS[@]}"
  run mixed.cgoscope cgoscope "$M" "${MIXED_ARGS[@]}"
  run mixed.cgnofs cgoscope-nofs "$M" "${MIXED_ARGS[@]}"
  run mixed.heaptrack heaptrack "$M" "${MIXED_ARGS[@]}"
  if [ "$r" -le "$vg_runs" ]; then
    say "run $r of $vg_runs: valgrind (short variants)"
    run alloc_s.plain plain "$A" "${ALLOC_SHORT_ARGS[@]}"
    run alloc_s.valgrind valgrind "$A" "${ALLOC_SHORT_ARGS[@]}"
    run calls_s.plain plain "$C" "${CALLS_SHORT_ARGS[@]}"
    run calls_s.valgrind valgrind "$C" "${CALLS_SHORT_ARGS[@]}"
    run mixed_s.plain plain "$M" "${MIXED_SHORT_ARGS[@]}"
    run mixed_s.valgrind valgrind "$M" "${MIXED_SHORT_ARGS[@]}"
  fi
done

# Did uftrace see the calls? (It cannot patch a wrapper shorter than 5 bytes, and then records
# nothing without a word.) The count of the null-call wrapper in its own report:
uftrace_seen="?"
if [ -d "$scratch/uftrace.first" ]; then
  uftrace_seen=$(uftrace report -d "$scratch/uftrace.first" 2>/dev/null |
    awk '/_Cfunc_cgobench_nothing$/ { print $(NF-1); found=1 } END { if (!found) print 0 }')
  rm -rf "$scratch/uftrace.first"
fi

say "analyzer: saving traces"
# FILE FIELD: a number from a JSON report (docs/json-report.md): the largest value of FIELD in
# the "totals" of its processes (cgoscope reports every process of the run; the workload is the
# one that allocates), or, for a field outside "totals" (events_lost), the largest anywhere.
json_total() {
  local flat v
  flat=$(tr -d ' \n\t' <"$1" 2>/dev/null) || return 0
  v=$(grep -o '"totals":{[^}]*}' <<<"$flat" | grep -o "\"$2\":[0-9]*" | cut -d: -f2 | sort -n | tail -1)
  [ -n "$v" ] || v=$(grep -o "\"$2\":[0-9]*" <<<"$flat" | cut -d: -f2 | sort -n | tail -1)
  echo "$v"
}
T=$scratch/alloc.cgs TK=$scratch/live-keep.cgs TF=$scratch/live-free.cgs
"$CGOSCOPE" run -q -o "$T" -- "$A" "${ALLOC_ARGS[@]}" >>"$logs/trace.log" 2>&1 || die "cgoscope run -o failed (see $logs/trace.log)"
"$CGOSCOPE" run -q -o "$TK" -- "$A" -calls 0 -leak "$LIVE_N" -leakmode keep >>"$logs/trace.log" 2>&1 || die "cgoscope run -o (keep) failed"
"$CGOSCOPE" run -q -o "$TF" -- "$A" -calls 0 -leak "$LIVE_N" -leakmode free >>"$logs/trace.log" 2>&1 || die "cgoscope run -o (free) failed"
"$CGOSCOPE" report -q --json "$scratch/alloc.json" "$T" >>"$logs/trace.log" 2>&1 || die "cgoscope report --json failed"
"$CGOSCOPE" report -q --json "$scratch/keep.json" "$TK" >>"$logs/trace.log" 2>&1 || die "cgoscope report --json (keep) failed"
"$CGOSCOPE" report -q --json "$scratch/free.json" "$TF" >>"$logs/trace.log" 2>&1 || die "cgoscope report --json (free) failed"
trace_allocs=$(json_total "$scratch/alloc.json" allocations)
trace_frees=$(json_total "$scratch/alloc.json" frees)
trace_lost=$(json_total "$scratch/alloc.json" events_lost)
trace_events=$((trace_allocs + trace_frees))
trace_bytes=$(stat -c %s "$T")
keep_leaked=$(json_total "$scratch/keep.json" leaked_blocks)
free_leaked=$(json_total "$scratch/free.json" leaked_blocks)
say "analyzer: timing cgoscope report ($runs runs)"
for ((r = 1; r <= runs; r++)); do
  run report.alloc plain "$CGOSCOPE" report -q "$T"
  run report.keep plain "$CGOSCOPE" report -q "$TK"
  run report.free plain "$CGOSCOPE" report -q "$TF"
done
# Counts of the live workloads, for the per-allocation figures (one untimed run, JSON report).
"$CGOSCOPE" run -q --json "$scratch/mixed.json" -- "$M" "${MIXED_ARGS[@]}" >>"$logs/trace.log" 2>&1 || true
mixed_allocs=$(json_total "$scratch/mixed.json" allocations)
mixed_leaked=$(json_total "$scratch/mixed.json" leaked_blocks)
mixed_frees=$(json_total "$scratch/mixed.json" frees)
mixed_lost=$(json_total "$scratch/mixed.json" events_lost)

# What one store costs inside a cgo call here, without cgoscope: the floor under any exact count.
say "storefloor: one store inside a cgo call"
"$bin/storefloor" -n 5000000 -rounds 5 >"$raw/storefloor.txt" 2>>"$logs/storefloor.log" || : >"$raw/storefloor.txt"


now=$(date -u '+%Y-%m-%d %H:%M UTC')
elapsed=$(($(date +%s) - t_start))
load_end=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
rev=$(source_rev)
# What the table needs besides the raw files, for --report-only.
for v in runs vg_runs mode now elapsed load_start load_end rev trace_allocs trace_frees trace_lost \
  trace_events trace_bytes keep_leaked free_leaked mixed_allocs mixed_leaked mixed_lost mixed_frees uftrace_seen; do
  printf '%s=%q\n' "$v" "${!v}"
done >"$raw/facts.sh"
fi # report_only

# ---- Figures ----------------------------------------------------------------------------------------
# Each figure is a median over the runs. A ratio or a difference is computed within each run (the
# plain run and the tool run were made back to back) and the median of those is taken. Column 1
# of a raw file is wall time, column 2 the CPU time (user + system) of every process of the run:
# the program, and the tool's own processes (cgoscope's analyzer, heaptrack's interpreter).
W=1 CPU=2
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit } if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
med() { [ -s "$raw/$1.txt" ] || { echo nan; return; }; awk -v c="$2" '{ print $c }' "$raw/$1.txt" | median; } # KEY COL
pairs() { [ -s "$raw/$1.txt" ] && [ -s "$raw/$2.txt" ]; }
ratio() { pairs "$1" "$2" || { echo nan; return; }  # TOOL PLAIN COL
  paste -d' ' "$raw/$1.txt" "$raw/$2.txt" | awk -v c="$3" '$(c + 4) > 0 { print $c / $(c + 4) }' | median; }
added() { pairs "$1" "$2" || { echo nan; return; }  # TOOL PLAIN N COL: ns per event
  paste -d' ' "$raw/$1.txt" "$raw/$2.txt" | awk -v n="$3" -v c="$4" '{ print ($c - $(c + 4)) / n }' | median; }
# Marginal cost per event: (tool - plain) on the full workload minus (tool - plain) on the same
# program doing nothing, which takes out the fixed costs (start-up, symbolization, heaptrack's
# script and the compression of its output).
marginal() { pairs "$1" "$2" && pairs "$3" "$4" || { echo nan; return; }  # TOOL PLAIN TOOL0 PLAIN0 N COL
  paste -d' ' "$raw/$1.txt" "$raw/$2.txt" "$raw/$3.txt" "$raw/$4.txt" |
    awk -v n="$5" -v c="$6" '{ print (($c - $(c + 4)) - ($(c + 8) - $(c + 12))) / n }' | median; }
# The same as a ratio: (tool - tool0) / (plain - plain0).
marginal_ratio() { pairs "$1" "$2" && pairs "$3" "$4" || { echo nan; return; }  # TOOL PLAIN TOOL0 PLAIN0 COL
  paste -d' ' "$raw/$1.txt" "$raw/$2.txt" "$raw/$3.txt" "$raw/$4.txt" |
    awk -v c="$5" '$(c + 4) > $(c + 12) { print ($c - $(c + 8)) / ($(c + 4) - $(c + 12)) }' | median; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan" || b == 0) print "nan"; else print a / b }'; }
fmt() { awk -v v="$1" -v f="$2" 'BEGIN { if (v == "nan" || v == "") print "n/a"; else printf f, v }'; }
secs() { fmt "$(med "$1" "$2")" "%.3f" | awk '$1 != "n/a" { printf "%.3f", $1 / 1e9; next } { print }'; }
mib() { fmt "$(med "$1" 3)" "%.1f" | awk '$1 != "n/a" { printf "%.1f", $1 / 1024; next } { print }'; }
# verdict VALUE LIMIT le|ge
verdict() {
  awk -v v="$1" -v l="$2" -v k="$3" 'BEGIN {
    if (v == "nan" || v == "") { print "n/a"; exit }
    if (k == "le") { if (v <= l) printf "met (%.0f%% of the limit)", 100 * v / l; else printf "**missed**: %.2fx the limit", v / l }
    else { if (v >= l) printf "met (%.2fx the limit)", v / l; else printf "**missed**: %.0f%% of the limit", 100 * v / l }
  }'
}

m_allocs=${mixed_allocs:-0}
[ "$m_allocs" -gt 0 ] 2>/dev/null || m_allocs=$((MIXED_G * MIXED_N * 33 / 4)) # 8.25 per iteration
for c in W CPU; do
  col=${!c}
  eval "a_cg_marg_$c=\$(marginal alloc.cgoscope alloc.plain alloc0.cgoscope alloc0.plain $ALLOC_PAIRS $col)"
  eval "a_ht_marg_$c=\$(marginal alloc.heaptrack alloc.plain alloc0.heaptrack alloc0.plain $ALLOC_PAIRS $col)"
  eval "a_cg_added_$c=\$(added alloc.cgoscope alloc.plain $ALLOC_PAIRS $col)"
  eval "a_ht_added_$c=\$(added alloc.heaptrack alloc.plain $ALLOC_PAIRS $col)"
  eval "a_cg_ratio_$c=\$(ratio alloc.cgoscope alloc.plain $col)"
  eval "c_cg_ratio_$c=\$(ratio calls.cgoscope calls.plain $col)"
  eval "c_cg_added_$c=\$(added calls.cgoscope calls.plain $CALLS_N $col)"
  eval "c_uf_added_$c=\$(added calls.uftrace calls.plain $CALLS_N $col)"
  eval "c_cg_marg_$c=\$(marginal calls.cgoscope calls.plain calls0.cgoscope calls0.plain $CALLS_N $col)"
  eval "c_uf_marg_$c=\$(marginal calls.uftrace calls.plain calls0.uftrace calls0.plain $CALLS_N $col)"
  eval "c_cg_mratio_$c=\$(marginal_ratio calls.cgoscope calls.plain calls0.cgoscope calls0.plain $col)"
  eval "rep_$c=\$(med report.alloc $col)"
  eval "c_full_added_$c=\$(added calls.cgfull calls.plain $CALLS_N $col)"
  eval "c_off_ratio_$c=\$(ratio calls.cgoff calls.plain $col)"
  # The free's stack (docs/lifetime.md): cgoscope against the same analyzer with the shim whose
  # frees carry no stack, run back to back.
  eval "a_fs_ratio_$c=\$(ratio alloc.cgoscope alloc.cgnofs $col)"
  eval "a_fs_added_$c=\$(added alloc.cgoscope alloc.cgnofs $ALLOC_PAIRS $col)"
  eval "g_fs_ratio_$c=\$(ratio gofree.cgoscope gofree.cgnofs $col)"
  eval "g_fs_added_$c=\$(added gofree.cgoscope gofree.cgnofs $GOFREE_PAIRS $col)"
  eval "m_fs_ratio_$c=\$(ratio mixed.cgoscope mixed.cgnofs $col)"
  eval "m_fs_added_$c=\$(added mixed.cgoscope mixed.cgnofs ${mixed_frees:-0} $col)"
done
a_vs_ht_W=$(div "$a_cg_marg_W" "$a_ht_marg_W") a_vs_ht_CPU=$(div "$a_cg_marg_CPU" "$a_ht_marg_CPU")
a_whole_W=$(div "$a_cg_added_W" "$a_ht_added_W") a_whole_CPU=$(div "$a_cg_added_CPU" "$a_ht_added_CPU")
c_vs_uf_W=$(div "$c_cg_added_W" "$c_uf_added_W") c_vs_uf_CPU=$(div "$c_cg_added_CPU" "$c_uf_added_CPU")
c_vs_uf_m_W=$(div "$c_cg_marg_W" "$c_uf_marg_W") c_vs_uf_m_CPU=$(div "$c_cg_marg_CPU" "$c_uf_marg_CPU")
ev_s_W=$(div "$trace_events" "$(div "$rep_W" 1e9)") ev_s_CPU=$(div "$trace_events" "$(div "$rep_CPU" 1e9)")
c_plain_ns=$(div "$(med calls.plain 1)" "$CALLS_N")
clock_pair_ns=$("$bin/clockcost" 2>/dev/null || echo nan)
full_limit=$(awk -v c="$clock_pair_ns" 'BEGIN { if (c == "nan") print "nan"; else print c + 5 }')
per_live=$(awk -v k="$(med report.keep 3)" -v f="$(med report.free 3)" -v n="$LIVE_N" \
  'BEGIN { if (k == "nan" || f == "nan") print "nan"; else print (k - f) * 1024 / n }')
bytes_per_ev=$(div "$trace_bytes" "$trace_events")

# ---- Machine --------------------------------------------------------------------------------------
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || echo unknown)
cores=$(nproc 2>/dev/null || echo "?")
kernel=$(uname -sr)
distro=$( (. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME") || echo unknown)
gover=$(go version | awk '{ print $3 " " $4 }')
virt=$(LC_ALL=C lscpu 2>/dev/null | awk -F': *' '/^Hypervisor vendor/ { print $2 " guest" }')
ctr=$(systemd-detect-virt --container 2>/dev/null || true)
[ -n "$ctr" ] && [ "$ctr" != none ] && virt="${virt:+$virt, }in a $ctr container"
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null || echo "?")
ht_ver=$(heaptrack --version 2>/dev/null | awk '{ print $2 }')
vg_ver=$(valgrind --version 2>/dev/null | sed 's/valgrind-//')
uf_ver=$(uftrace --version 2>/dev/null | awk '{ print $2 }')

# ---- Report ------------------------------------------------------------------------------------
row() { # KEY TOOL LABEL [PLAINKEY [N UNIT]]
  local rw="" rc="" aw="" ac=""
  if [ -n "${4:-}" ]; then
    rw=$(fmt "$(ratio "$1" "$4" $W)" "%.2fx")
    rc=$(fmt "$(ratio "$1" "$4" $CPU)" "%.2fx")
  fi
  if [ -n "${5:-}" ]; then
    aw="$(fmt "$(added "$1" "$4" "$5" $W)" "%.0f ns")$6"
    ac="$(fmt "$(added "$1" "$4" "$5" $CPU)" "%.0f ns")$6"
  fi
  echo "| $3 | $2 | $(secs "$1" $W) | $(secs "$1" $CPU) | $rw | $rc | $aw | $ac | $(mib "$1") |"
}
target() { # TEXT LIMIT-TEXT LIMIT le|ge WALL-VALUE WALL-TEXT CPU-VALUE CPU-TEXT
  local vc="—"
  [ -n "$7" ] && vc=$(verdict "$7" "$3" "$4")
  echo "| $1 | $2 | $6 | $(verdict "$5" "$3" "$4") | ${8:-—} | $vc |"
}
{
  echo "# cgoscope benchmark, $now"
  echo
  echo "- Machine: $cpu, $cores cores${virt:+ ($virt)}, $mem; $kernel; $distro; $gover."
  echo "- cgoscope $rev; heaptrack $ht_ver, valgrind $vg_ver, uftrace $uf_ver."
  echo "- Load average (1, 5, 15 min) at start $load_start, at end $load_end (other work on the machine moves the wall times)."
  echo "- Command: \`$mode\`: $runs runs ($vg_runs of valgrind); medians. Ratios and differences are taken" \
       "within each run (plain and tool back to back), then their median. Whole suite: ${elapsed} s."
  echo
  echo "## Targets"
  echo
  echo "Judged on wall time and, separately, on CPU time (all processes of the run, the tool's own included)."
  echo
  echo "| target | limit | wall | verdict (wall) | CPU | verdict (CPU) |"
  echo "| --- | ---: | ---: | --- | ---: | --- |"
  target "alloc: cgoscope's added time per allocation / heaptrack's (marginal: minus the 0-call run)" "<= 0.10" 0.1 le \
    "$a_vs_ht_W" "$(fmt "$a_vs_ht_W" "%.2f") ($(fmt "$a_cg_marg_W" "%.0f") / $(fmt "$a_ht_marg_W" "%.0f") ns)" \
    "$a_vs_ht_CPU" "$(fmt "$a_vs_ht_CPU" "%.2f") ($(fmt "$a_cg_marg_CPU" "%.0f") / $(fmt "$a_ht_marg_CPU" "%.0f") ns)"
  target "alloc: the same over whole runs" "<= 0.10" 0.1 le \
    "$a_whole_W" "$(fmt "$a_whole_W" "%.2f") ($(fmt "$a_cg_added_W" "%.0f") / $(fmt "$a_ht_added_W" "%.0f") ns)" \
    "$a_whole_CPU" "$(fmt "$a_whole_CPU" "%.2f") ($(fmt "$a_cg_added_CPU" "%.0f") / $(fmt "$a_ht_added_CPU" "%.0f") ns)"
  target "alloc: cgoscope whole run / plain" "<= 3x" 3 le \
    "$a_cg_ratio_W" "$(fmt "$a_cg_ratio_W" "%.1fx")" "$a_cg_ratio_CPU" "$(fmt "$a_cg_ratio_CPU" "%.1fx")"
  target "calls: cgoscope / plain (whole runs)" "<= 1.15x" 1.15 le \
    "$c_cg_ratio_W" "$(fmt "$c_cg_ratio_W" "%.3fx")" "$c_cg_ratio_CPU" "$(fmt "$c_cg_ratio_CPU" "%.3fx")"
  target "calls: cgoscope's added ns per call / uftrace's (whole runs)" "<= 0.05" 0.05 le \
    "$c_vs_uf_W" "$(fmt "$c_vs_uf_W" "%.3f") ($(fmt "$c_cg_added_W" "%.1f") / $(fmt "$c_uf_added_W" "%.0f") ns)" \
    "$c_vs_uf_CPU" "$(fmt "$c_vs_uf_CPU" "%.3f") ($(fmt "$c_cg_added_CPU" "%.1f") / $(fmt "$c_uf_added_CPU" "%.0f") ns)"
  target "calls, marginal: cgoscope / plain without start-up and exit (minus the 0-call run)" "<= 1.15x" 1.15 le \
    "$c_cg_mratio_W" "$(fmt "$c_cg_mratio_W" "%.3fx")" "$c_cg_mratio_CPU" "$(fmt "$c_cg_mratio_CPU" "%.3fx")"
  target "calls, marginal: cgoscope's added ns per call / uftrace's" "<= 0.05" 0.05 le \
    "$c_vs_uf_m_W" "$(fmt "$c_vs_uf_m_W" "%.3f") ($(fmt "$c_cg_marg_W" "%.1f") / $(fmt "$c_uf_marg_W" "%.0f") ns)" \
    "$c_vs_uf_m_CPU" "$(fmt "$c_vs_uf_m_CPU" "%.3f") ($(fmt "$c_cg_marg_CPU" "%.1f") / $(fmt "$c_uf_marg_CPU" "%.0f") ns)"
  target "calls, --timing=full: added ns per call (limit: two clock reads, $(fmt "$clock_pair_ns" "%.1f") ns here, + 5 ns)" \
    "<= $(fmt "$full_limit" "%.1f") ns" "$full_limit" le \
    "$c_full_added_W" "$(fmt "$c_full_added_W" "%.1f ns")" "$c_full_added_CPU" "$(fmt "$c_full_added_CPU" "%.1f ns")"
  target "calls, --timing=off: cgoscope / plain (counts only)" "<= 1.15x" 1.15 le \
    "$c_off_ratio_W" "$(fmt "$c_off_ratio_W" "%.3fx")" "$c_off_ratio_CPU" "$(fmt "$c_off_ratio_CPU" "%.3fx")"
  target "analyzer: events per second, \`cgoscope report -q\` of the alloc trace" ">= 20M/s" 20000000 ge \
    "$ev_s_W" "$(fmt "$(div "$ev_s_W" 1e6)" "%.1fM/s")" "$ev_s_CPU" "$(fmt "$(div "$ev_s_CPU" 1e6)" "%.1fM/s")"
  target "analyzer: bytes of peak RSS per live allocation (1M live vs ~0 live)" "<= 64" 64 le \
    "$per_live" "$(fmt "$per_live" "%.1f")" "" ""
  target "trace: bytes per event (alloc trace)" "<= 8" 8 le \
    "$bytes_per_ev" "$(fmt "$bytes_per_ev" "%.2f")" "" ""
  echo
  echo "## Runs"
  echo
  echo "| workload | tool | wall s | CPU s | wall / plain | CPU / plain | added wall per event | added CPU per event | peak RSS MiB |"
  echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  row alloc.plain plain "alloc: 2M malloc/free pairs"
  row alloc.cgoscope cgoscope "alloc" alloc.plain "$ALLOC_PAIRS" " /alloc"
  row alloc.heaptrack heaptrack "alloc" alloc.plain "$ALLOC_PAIRS" " /alloc"
  row alloc.cgnofs "cgoscope, frees without their stack" "alloc" alloc.plain "$ALLOC_PAIRS" " /alloc"
  row gofree.plain plain "gofree: 500k C.malloc/C.free pairs from Go"
  row gofree.cgoscope cgoscope "gofree" gofree.plain "$GOFREE_PAIRS" " /pair"
  row gofree.cgnofs "cgoscope, frees without their stack" "gofree" gofree.plain "$GOFREE_PAIRS" " /pair"
  row alloc0.plain plain "alloc, 0 calls (start-up and exit only)"
  row alloc0.cgoscope cgoscope "alloc, 0 calls" alloc0.plain
  row alloc0.heaptrack heaptrack "alloc, 0 calls" alloc0.plain
  row alloc_s.plain plain "alloc /20 (100k pairs)"
  row alloc_s.valgrind "valgrind memcheck" "alloc /20" alloc_s.plain "$ALLOC_SHORT_PAIRS" " /alloc"
  row calls.plain plain "calls: 20M null cgo calls"
  row calls.cgoscope cgoscope "calls" calls.plain "$CALLS_N" " /call"
  row calls.cgfull "cgoscope --timing=full" "calls" calls.plain "$CALLS_N" " /call"
  row calls.cgoff "cgoscope --timing=off" "calls" calls.plain "$CALLS_N" " /call"
  row calls.uftrace "uftrace record -P" "calls" calls.plain "$CALLS_N" " /call"
  row calls.heaptrack heaptrack "calls" calls.plain "$CALLS_N" " /call"
  row callst.plain plain "calls, two sites in turns (20M calls)"
  row callst.cgoscope cgoscope "calls, two sites in turns" callst.plain "$CALLS_N" " /call"
  row calls0.plain plain "calls, 0 calls (start-up and exit only)"
  row calls0.cgoscope cgoscope "calls, 0 calls" calls0.plain
  row calls0.uftrace "uftrace record -P" "calls, 0 calls" calls0.plain
  row calls_s.plain plain "calls /20 (1M calls)"
  row calls_s.valgrind "valgrind memcheck" "calls /20" calls_s.plain "$CALLS_SHORT_N" " /call"
  row mixed.plain plain "mixed: $MIXED_G goroutines, $m_allocs allocs"
  row mixed.cgoscope cgoscope "mixed" mixed.plain "$m_allocs" " /alloc"
  row mixed.heaptrack heaptrack "mixed" mixed.plain "$m_allocs" " /alloc"
  row mixed.cgnofs "cgoscope, frees without their stack" "mixed" mixed.plain "$m_allocs" " /alloc"
  row mixed_s.plain plain "mixed /20"
  row mixed_s.valgrind "valgrind memcheck" "mixed /20" mixed_s.plain
  row report.alloc "cgoscope report -q" "analyzer: the alloc trace"
  row report.free "cgoscope report -q" "analyzer: 1M allocs, ~0 live"
  row report.keep "cgoscope report -q" "analyzer: 1M allocs, 1M live"
  echo
  echo "- Plain null cgo call: $(fmt "$c_plain_ns" "%.1f") ns."
  echo "- Marginal cost per allocation in alloc (full minus 0-call run, each minus plain):" \
       "cgoscope $(fmt "$a_cg_marg_W" "%.0f") ns wall, $(fmt "$a_cg_marg_CPU" "%.0f") ns CPU;" \
       "heaptrack $(fmt "$a_ht_marg_W" "%.0f") ns wall, $(fmt "$a_ht_marg_CPU" "%.0f") ns CPU."
  echo "- The free's stack (its cgo context, for lifetime errors): cgoscope / the same cgoscope with its frees" \
       "recorded without their stack (\`bench-shims/libcgoscope-nofreestack.so\`, run back to back):" \
       "alloc $(fmt "$a_fs_ratio_W" "%.3fx") wall, $(fmt "$a_fs_ratio_CPU" "%.3fx") CPU" \
       "($(fmt "$a_fs_added_W" "%.1f") / $(fmt "$a_fs_added_CPU" "%.1f") ns per free, one stack for all frees);" \
       "gofree $(fmt "$g_fs_ratio_W" "%.3fx") wall, $(fmt "$g_fs_ratio_CPU" "%.3fx") CPU" \
       "($(fmt "$g_fs_added_W" "%.1f") / $(fmt "$g_fs_added_CPU" "%.1f") ns per C.free from Go);" \
       "mixed $(fmt "$m_fs_ratio_W" "%.3fx") wall, $(fmt "$m_fs_ratio_CPU" "%.3fx") CPU" \
       "($(fmt "$m_fs_added_W" "%.1f") / $(fmt "$m_fs_added_CPU" "%.1f") ns per free, ${mixed_frees:-?} frees from C and Go)."
  echo "- Trace of alloc: $trace_allocs allocations + $trace_frees frees = $trace_events events," \
       "$trace_bytes bytes, events lost: ${trace_lost:-?}."
  echo "- mixed under cgoscope: ${mixed_leaked:-?} user blocks reported leaked ($MIXED_TRUE_LEAKS leaked by the program), events lost: ${mixed_lost:-?}."
  echo "- Live-set traces: ${keep_leaked:-?} blocks reported leaked with 1M kept live, ${free_leaked:-?} with them freed."
  echo "- uftrace saw $uftrace_seen of the $CALLS_N null calls (its own report of the first run)."
  if [ -s "$raw/storefloor.txt" ]; then
    echo "- One store made by the C function of a cgo call, no cgoscope (\`workloads/storefloor\`: 5 rounds"
    echo "  of 5M calls of each function, medians). The 1.15x target leaves"
    echo "  $(fmt "$(awk -v c="$c_plain_ns" 'BEGIN { print c * 0.15 }')" "%.1f") ns per call for the whole hook; the same store made by a minimal hook"
    echo "  between runtime.asmcgocall and the wrapper costs more (\`experiments/hook-floor.sh\`)."
    echo
    sed 's/^/      /' "$raw/storefloor.txt"
  fi
  if [ -s "$raw/failures.txt" ]; then
    echo
    echo "Runs that did not exit 0 (their times are still in the medians):"
    sed 's/^/- /' "$raw/failures.txt"
  fi
} >"$md.tmp"
mv "$md.tmp" "$md"
cat "$md"
say "table written to $md"

if [ "$keep" -eq 0 ]; then
  rm -rf "${scratch:?}"/*
fi

if [ "$real" -eq 1 ]; then
  say "the go-sqlite3 suite: bench/real/run.sh --only sqlite3 -n $runs"
  "$here/real/run.sh" --only sqlite3 -n "$runs"
fi
