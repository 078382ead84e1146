#!/usr/bin/env bash
# bench/profile.sh: where cgoscope's time goes on the alloc and calls workloads.
#
# 1. Instruction counts (callgrind) of the scaled-down workloads (alloc: 100k malloc/free
#    pairs; calls: 1M null cgo calls), plain and under `cgoscope run`, with the difference per
#    allocation (per call) split by object (libunwind, the shim, libc, ...) and by function.
#    Up to e73bed1 a program started through valgrind's launcher was not traced under `cgoscope
#    run` (see tools/vgexec.c), so the tool is started through a small static helper, which works
#    on every commit. Go's asynchronous preemption signals trip an assertion in callgrind 3.19,
#    so the programs run with GODEBUG=asyncpreemptoff=1. The calls workload is also measured
#    with `--timing off` and `--timing full`, as the shim's sampling of call times does not
#    behave under valgrind as it does natively.
# 2. Time samples (perf, software cpu-clock event; only if perf can record here) of the full
#    alloc workload under cgoscope (the program's and the analyzer's shares by object and symbol)
#    and of the full calls workload, plain and under cgoscope.
#
# Prints markdown and writes it to bench/.out/profile.md. Uses the build of bench/run.sh
# (CGOSCOPE_BENCH_BUILD), building what is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
md=$out/profile.md

bench_setup valgrind
${CC:-cc} -O2 -Wall -Wextra -static -o "$bin/vgexec" "$here/tools/vgexec.c" ||
  die "building tools/vgexec.c (static) failed: is libc6-dev installed?"
prof=$scratch/profile
rm -rf "$prof"
mkdir -p "$prof"
printf '#!%s\n# Run by `cgoscope run`: starts the valgrind tool named in BENCH_VG_ARGS (bench/tools/vgexec.c).\n' \
  "$bin/vgexec" >"$prof/vg.sh"
chmod +x "$prof/vg.sh"

ALLOC_N=100000 # pairs in the short alloc run
CALLS_N=1000000
CALLS_N_FULL=20000000 # the calls workload's default, profiled with perf
ALLOC_N_FULL=2000000  # the alloc workload's default, profiled with perf

# callgrind_plain OUT PROGRAM ARGS... / callgrind_traced OUT PROGRAM ARGS...
callgrind_plain() {
  local o=$1
  shift
  GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind --callgrind-out-file="$o" "$@" \
    >>"$logs/profile.log" 2>&1 || die "callgrind failed on $* (see $logs/profile.log)"
}
# callgrind_traced OUT "CGOSCOPE-RUN-OPTIONS" PROGRAM ARGS...
callgrind_traced() {
  local o=$1 opts=$2
  shift 2
  # shellcheck disable=SC2086 # the options are words
  GODEBUG=asyncpreemptoff=1 BENCH_VG_ARGS="--tool=callgrind --callgrind-out-file=$o" \
    "$CGOSCOPE" run -q $opts --json "$o.json" -- "$prof/vg.sh" "$@" >>"$logs/profile.log" 2>&1 ||
    die "callgrind under cgoscope failed on $* (see $logs/profile.log)"
  grep -q '"traced": *true' "$o.json" || die "the program under callgrind was not traced (see $o.json)"
}
total_ir() { awk '/^summary:/ { print $2 }' "$1"; }

# The function list of callgrind_annotate, as "IR<TAB>OBJECT<TAB>FUNCTION" (all functions).
# Extra arguments go to callgrind_annotate (--inclusive=yes for counts with callees).
functions() {
  local f=$1
  shift
  callgrind_annotate --auto=no --threshold=100 "$@" "$f" 2>/dev/null |
    awk '/file:function/ { on = 1; next }
      on && /^ *[0-9,]+ / {
        line = $0; ir = $1; gsub(",", "", ir); obj = "?"
        sub(/^ *[0-9,]+ +(\( *[0-9.]+%\) +)?/, "", line)
        if (match(line, / \[[^]]*\]$/)) { obj = substr(line, RSTART + 2, RLENGTH - 3); line = substr(line, 1, RSTART - 1) }
        n = split(obj, parts, "/"); obj = parts[n]
        fn = line; sub(/^.*:/, "", fn)
        # functions of the shim in its hook section, or inlined from a header (listed without object)
        if ((obj == "???" || obj == "?") && fn ~ /^(cgs_|record_|add_time|note_caller)/) obj = "libcgoscope.so"
        print ir "\t" obj "\t" fn }'
}
by_object() { awk -F'\t' '{ s[$2] += $1 } END { for (o in s) print s[o] "\t" o }' | sort -rn; }

# Markdown rows: the difference per unit, by object, then the top functions of the traced run.
diff_tables() { # TRACED PLAIN N UNIT
  local traced=$1 plain=$2 n=$3 unit=$4
  functions "$traced" >"$traced.fn"
  functions "$plain" >"$plain.fn"
  echo "| object | added instructions per $unit | share of the added |"
  echo "| --- | ---: | ---: |"
  awk -F'\t' -v n="$n" -v tot="$(($(total_ir "$traced") - $(total_ir "$plain")))" '
      NR == FNR { t[$2] += $1; seen[$2] = 1; next }
      { p[$2] += $1; seen[$2] = 1 }
      END { for (o in seen) { d = t[o] - p[o]; if (d / n >= 0.5 || d / n <= -0.5) printf "%s\t%.0f\t%.1f%%\n", o, d / n, 100 * d / tot } }' \
    "$traced.fn" "$plain.fn" |
    sort -t $'\t' -k2,2 -rn | awk -F'\t' '{ printf "| %s | %s | %s |\n", $1, $2, $3 }'
  echo
  echo "Top functions of the traced run by their own instructions (not counting callees), per $unit:"
  echo
  echo "| function | object | instructions per $unit |"
  echo "| --- | --- | ---: |"
  sort -t $'\t' -k1,1 -rn "$traced.fn" | head -14 |
    awk -F'\t' -v n="$n" '{ printf "| %s | %s | %.0f |\n", $3, $2, $1 / n }'
}

# Inclusive counts of named functions (with their callees), per unit: markdown rows.
inclusive() { # FILE N FUNCTION...
  local f=$1 n=$2
  shift 2
  functions "$f" --inclusive=yes >"$f.incl"
  local fn
  for fn in "$@"; do
    awk -F'\t' -v fn="$fn" -v n="$n" '$3 == fn { printf "| %s | %s | %.0f |\n", fn, $2, $1 / n; exit }' "$f.incl"
  done
}

say "callgrind: alloc ($ALLOC_N pairs), plain and under cgoscope"
callgrind_plain "$prof/alloc.plain.cg" "$bin/alloc" -calls 100 -pairs 1000
callgrind_traced "$prof/alloc.cgoscope.cg" "" "$bin/alloc" -calls 100 -pairs 1000
say "callgrind: calls ($CALLS_N calls), plain and under cgoscope"
callgrind_plain "$prof/calls.plain.cg" "$bin/calls" -n "$CALLS_N"
# Under callgrind the shim's sampling of call times does not behave as natively (a site whose first
# 8 calls on a thread look slow is timed on every call, and under valgrind they look slow), so the
# two paths are measured apart: no call timed, every call timed.
callgrind_traced "$prof/calls.cgoscope.cg" "" "$bin/calls" -n "$CALLS_N"
callgrind_traced "$prof/calls.off.cg" "--timing off" "$bin/calls" -n "$CALLS_N"
callgrind_traced "$prof/calls.full.cg" "--timing full" "$bin/calls" -n "$CALLS_N"

perf_ok=0
if command -v perf >/dev/null 2>&1 && perf record -q -e cpu-clock -o "$prof/probe.data" -- true >/dev/null 2>&1; then
  perf_ok=1
  say "perf: alloc (2M pairs) under cgoscope, cpu-clock samples"
  perf record -q -e cpu-clock -F 9999 -g -o "$prof/alloc.perf" -- "$CGOSCOPE" run -q -- "$bin/alloc" \
    >>"$logs/profile.log" 2>&1 || perf_ok=0
  say "perf: calls (20M calls), plain and under cgoscope, cpu-clock samples"
  perf record -q -e cpu-clock -F 9999 -o "$prof/calls.plain.perf" -- "$bin/calls" >>"$logs/profile.log" 2>&1 || perf_ok=0
  perf record -q -e cpu-clock -F 9999 -o "$prof/calls.cgoscope.perf" -- "$CGOSCOPE" run -q -- "$bin/calls" \
    >>"$logs/profile.log" 2>&1 || perf_ok=0
fi
# Samples of a perf recording whose process is COMM, and the top symbols (markdown rows).
perf_samples() { perf script -i "$1" -F comm 2>/dev/null | awk -v c="$2" '$1 == c { n++ } END { print n + 0 }'; }
# Samples of COMM by object: "COUNT<TAB>OBJECT".
perf_by_dso() {
  perf script -i "$1" -F comm,ip,dso 2>/dev/null | awk -v c="$2" '$1 == c { d = $NF; gsub(/[()]/, "", d); n = split(d, p, "/"); s[p[n]]++ }
    END { for (o in s) print s[o] "\t" o }'
}
perf_symbols() { # FILE COMM N
  perf report -i "$1" --comm "$2" --percentage relative --no-children --sort dso,sym --stdio -g none 2>/dev/null |
    grep -E '^ +[0-9.]+%' | head -"$3" | awk '{ pct = $1; dso = $2; $1 = ""; $2 = ""; $3 = ""; sub(/^ +/, ""); printf "| %s | %s | %s |\n", $0, dso, pct }'
}

# The report below is made of pipelines that may end early (head); none of them decides anything.
set +e +o pipefail
a_plain=$(total_ir "$prof/alloc.plain.cg") a_cg=$(total_ir "$prof/alloc.cgoscope.cg")
c_plain=$(total_ir "$prof/calls.plain.cg") c_cg=$(total_ir "$prof/calls.cgoscope.cg")
rev=$(source_rev)
{
  echo "# Where cgoscope's time goes, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "cgoscope $rev; $(valgrind --version); $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) cores."
  echo
  echo "## alloc: malloc/free pairs at C depth 6 (callgrind, $ALLOC_N pairs)"
  echo
  echo "Instructions of the program: plain $a_plain, under cgoscope $a_cg:" \
       "**$(awk -v a="$a_cg" -v b="$a_plain" -v n="$ALLOC_N" 'BEGIN { printf "%.0f", (a - b) / n }') added per malloc/free pair**" \
       "($(awk -v a="$a_cg" -v b="$a_plain" 'BEGIN { printf "%.1f", a / b }')x)."
  echo
  diff_tables "$prof/alloc.cgoscope.cg" "$prof/alloc.plain.cg" "$ALLOC_N" pair
  echo
  echo "Inclusive (with callees), per pair:"
  echo
  echo "| function | object | instructions per pair |"
  echo "| --- | --- | ---: |"
  inclusive "$prof/alloc.cgoscope.cg" "$ALLOC_N" malloc record_alloc.constprop.0 record_alloc cgs_stack_capture \
    backtrace _ULx86_64_init_local free cgs_reserve cgs_commit cgs_timed_call cgs_cgo_enter
  echo
  echo "## calls: null cgo calls (callgrind, $CALLS_N calls)"
  echo
  timed=$(callgrind_annotate --tree=calling --threshold=100 "$prof/calls.cgoscope.cg" 2>/dev/null |
    awk '/> .*:add_time \(/ { s = $0; sub(/.*:add_time \(/, "", s); sub(/x\).*/, "", s); gsub(",", "", s); n += s } END { print n + 0 }')
  c_off=$(total_ir "$prof/calls.off.cg") c_full=$(total_ir "$prof/calls.full.cg")
  per() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.0f", (a - b) / n }'; }
  x=$(per "$c_off" "$c_plain" "$CALLS_N") y=$(per "$c_full" "$c_plain" "$CALLS_N")
  echo "Instructions of the program, plain: $c_plain. Added per call under cgoscope:"
  echo
  echo "- no call timed (\`--timing off\`: the hook, the call count): **$x**;"
  echo "- every call timed (\`--timing full\`): **$y**;"
  echo "- so at the default rate, 1 call in 64 timed: about $(awk -v x="$x" -v y="$y" 'BEGIN { printf "%.0f", x + (y - x) / 64 }');"
  echo "- the default run under callgrind: $(per "$c_cg" "$c_plain" "$CALLS_N"), but with $timed of the $CALLS_N calls" \
       "timed, as the sampling does not behave under valgrind as it does natively."
  echo
  echo "Where the instructions of the untimed path go (\`--timing off\`):"
  echo
  diff_tables "$prof/calls.off.cg" "$prof/calls.plain.cg" "$CALLS_N" call
  echo
  echo "Top functions with every call timed (\`--timing full\`), per call:"
  echo
  echo "| function | object | instructions per call |"
  echo "| --- | --- | ---: |"
  functions "$prof/calls.full.cg" | sort -t $'\t' -k1,1 -rn | head -8 |
    awk -F'\t' -v n="$CALLS_N" '{ printf "| %s | %s | %.0f |\n", $3, $2, $1 / n }'
  if [ "$perf_ok" -eq 1 ]; then
    echo
    echo "## alloc under cgoscope, full size (perf, cpu-clock samples at ~10 kHz, both processes)"
    echo
    echo "One sample is ~100 µs of CPU; per pair = samples x 100 µs / $ALLOC_N_FULL pairs."
    echo
    echo "| process | object | samples | ns per pair |"
    echo "| --- | --- | ---: | ---: |"
    perf script -G -i "$prof/alloc.perf" -F comm,ip,dso 2>/dev/null |
      awk -v n="$ALLOC_N_FULL" '{ d = $NF; gsub(/[()]/, "", d); k = split(d, p, "/"); s[$1 "\t" p[k]]++ }
        END { for (x in s) { split(x, q, "\t"); printf "%d\t| %s | %s | %d | %.1f |\n", s[x], q[1], q[2], s[x], s[x] * 1e5 / n } }' |
      sort -rn | cut -f2- | head -10
    echo
    echo "Top symbols of the program (alloc):"
    echo
    echo "| symbol | object | samples | ns per pair |"
    echo "| --- | --- | ---: | ---: |"
    perf report -i "$prof/alloc.perf" --comm alloc -n --no-children --sort dso,sym --stdio -g none 2>/dev/null |
      grep -E '^ +[0-9.]+%' | head -10 |
      awk -v n="$ALLOC_N_FULL" '{ cnt = $2; dso = $3; $1 = ""; $2 = ""; $3 = ""; $4 = ""; sub(/^ +/, ""); printf "| %s | %s | %d | %.1f |\n", $0, dso, cnt, cnt * 1e5 / n }'
    echo
    echo "Hottest instruction of some of them (perf annotate; a sample lands on the instruction after"
    echo "the one that took the time):"
    echo
    echo '```'
    for sym in record_alloc.constprop.0 record_alloc free cgs_stack_capture; do
      perf annotate -i "$prof/alloc.perf" --stdio -s "$sym" --dsos libcgoscope.so 2>/dev/null |
        awk -v s="$sym" '/^ +[0-9]+\.[0-9]+ +:/ {
            pct = $1 + 0; ins = $0; sub(/^ +[0-9.]+ +: +/, "", ins); gsub(/ +/, " ", ins)
            if (pct > best) { best = pct; hot = ins; before = prev }
            prev = ins }
          END { if (best > 0) printf "%-26s %5.1f%% of its samples on [%s], after [%s]\n", s, best, hot, before }'
    done
    echo '```'
    echo
    echo "## calls, full size (perf, cpu-clock samples of the program)"
    echo
    local_plain=$(perf_samples "$prof/calls.plain.perf" calls)
    local_cg=$(perf_samples "$prof/calls.cgoscope.perf" calls)
    echo "Samples of the program's threads (10 kHz): plain $local_plain, under cgoscope $local_cg" \
         "($(awk -v a="$local_cg" -v b="$local_plain" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }'))."
    echo
    echo "| object | samples plain | samples under cgoscope | added ns per call |"
    echo "| --- | ---: | ---: | ---: |"
    awk -F'\t' -v n="$CALLS_N_FULL" 'NR == FNR { p[$2] = $1; seen[$2] = 1; next } { c[$2] = $1; seen[$2] = 1 }
      END { for (o in seen) printf "%d\t| %s | %d | %d | %.1f |\n", c[o] + p[o], o, p[o], c[o], (c[o] - p[o]) * 1e5 / n }' \
      <(perf_by_dso "$prof/calls.plain.perf" calls) <(perf_by_dso "$prof/calls.cgoscope.perf" calls) |
      sort -rn | cut -f2- | head -6
    echo
    echo "(One sample is 100 µs of CPU. Samples land where the interrupted instruction was; a few of"
    echo "the shim's may be counted in the Go code it returns to.)"
    echo
    echo "| symbol under cgoscope (user code only) | object | share of the program's samples |"
    echo "| --- | --- | ---: |"
    perf_symbols "$prof/calls.cgoscope.perf" calls 12
  else
    echo
    echo "(perf cannot record here, or is not installed: no time samples.)"
  fi
} >"$md.tmp"
mv "$md.tmp" "$md"
cat "$md"
say "written to $md"
