#!/usr/bin/env bash
# bench/real/run.sh: cgoscope on real cgo code from the Go module proxy, next to heaptrack and
# valgrind memcheck. Prints a figures table (markdown) and writes it to bench/.out/real/results.md.
#
#   bench/real/run.sh [-n RUNS] [--only LIST] [--leak-n N]
#
#   -n RUNS     runs of each timed variant, medians taken (default 3; env RUNS)
#   --only LIST comma-separated sections: sqlite3, zstd, leak, vgsuite (default: all)
#   --leak-n N  iterations of bench/real/sqlite-leak, one C.CString leaked in each (default 1000)
#
# Sections:
#   sqlite3  github.com/mattn/go-sqlite3 v1.14.22's own test suite (`go test -c`), one process:
#            plain, `heaptrack -o F` (then `heaptrack_print F`, timed apart), `cgoscope run -q --json F`
#   zstd     github.com/DataDog/zstd v1.5.7's own test suite, the same rows (PAYLOAD= the
#            sqlite3 amalgamation from the module cache, so its payload tests run too)
#   leak     bench/real/sqlite-leak (a known number of lost C.CString next to SQLite's live
#            memory): cgoscope on the Go 1.26 (PATH) and Go 1.21 builds, valgrind memcheck
#            --leak-check=full on the Go 1.21 build (valgrind 3.19 cannot run Go 1.26 binaries)
#   vgsuite  a few go-sqlite3 tests (VG_TESTS), Go 1.21 build, under valgrind and cgoscope
#
# Everything is built once and cached under bench/.build/real (CGOSCOPE_REAL_BUILD): the module
# cache (GOMODCACHE), the Go build cache (GOCACHE), the binaries, and cgoscope itself (cmake);
# a binary is rebuilt only when its go.mod, go.sum or .go files are newer than it.
# Logs of every run: bench/.out/real/logs; raw figures: bench/.out/real/raw.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench=$(dirname "$here")
root=$(dirname "$bench")
RUNS=${RUNS:-3}
ONLY=sqlite3,zstd,leak,vgsuite
LEAK_N=1000
VG_TESTS=${VG_TESTS:-'^(TestOpen|TestClose|TestInsert|TestUpdate|TestDelete|TestExtensionsError|TestLoadExtensionError)$'}
while [ $# -gt 0 ]; do
  case $1 in
    -n) RUNS=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --leak-n) LEAK_N=$2; shift 2 ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
want() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

B=${CGOSCOPE_REAL_BUILD:-$bench/.build/real}
out=${CGOSCOPE_REAL_OUT:-$bench/.out/real}
logs=$out/logs raw=$out/raw
mkdir -p "$B/bin" "$logs" "$raw"
say() { echo "real: $*" >&2; }
die() { echo "real: $*" >&2; exit 1; }

command -v go >/dev/null 2>&1 || PATH=$PATH:/usr/local/go/bin
command -v go >/dev/null 2>&1 || die "the Go toolchain is needed (on PATH or in /usr/local/go/bin)"
export GOMODCACHE=$B/gomod GOCACHE=$B/gocache GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
for t in heaptrack heaptrack_print valgrind python3 cmake; do
  command -v $t >/dev/null 2>&1 || die "$t is needed (bench/run.sh installs heaptrack and valgrind)"
done

# cgoscope itself (CGOSCOPE=path to use another build)
if [ -z "${CGOSCOPE:-}" ]; then
  say "building cgoscope in $B/cgoscope"
  cmake -S "$root" -B "$B/cgoscope" -DCGOSCOPE_BUILD_TESTPROGS=OFF -DCGOSCOPE_WERROR=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$logs/cmake.log" 2>&1 || { tail -20 "$logs/cmake.log" >&2; die "cmake failed"; }
  cmake --build "$B/cgoscope" -j2 --target cgoscope cgoscope_shim >>"$logs/cmake.log" 2>&1 ||
    { tail -30 "$logs/cmake.log" >&2; die "building cgoscope failed"; }
  CGOSCOPE=$B/cgoscope/bin/cgoscope
fi
MEASURE=$B/bin/measure
[ "$MEASURE" -nt "$bench/tools/measure.c" ] || ${CC:-cc} -O2 -Wall -o "$MEASURE" "$bench/tools/measure.c"

# stale OUT DIR: true when OUT is missing or older than DIR's go.mod, go.sum or .go files
stale() {
  [ -x "$1" ] || return 0
  [ -n "$(find "$2" -maxdepth 1 \( -name go.mod -o -name go.sum -o -name '*.go' \) -newer "$1" -print -quit)" ]
}
# gobuild GO OUT DIR SUBCOMMAND ARGS...: `GO SUBCOMMAND -o OUT ARGS...` in DIR, unless OUT is up to date
gobuild() {
  local goexe=$1 o=$2 d=$3 sub=$4; shift 4
  stale "$o" "$d" || return 0
  say "building $(basename "$o") with $("$goexe" env GOVERSION) (first time: minutes, SQLite is large)"
  (cd "$d" && "$goexe" "$sub" -o "$o" "$@") >"$logs/build-$(basename "$o").log" 2>&1 ||
    { tail -30 "$logs/build-$(basename "$o").log" >&2; die "building $o failed"; }
}
GO=$(command -v go)
if want leak || want vgsuite; then
  GO121=$(bash "$root/scripts/go-toolchains.sh" 1.21 2>>"$logs/go-toolchains.log") || die "no Go 1.21 (see $logs/go-toolchains.log)"
fi
LDF='-ldflags=-s=false -w=false' # go test strips its binaries; cgoscope wants the symbols

# measure NAME CMD...: one run, appended to raw/NAME (wall_ns cpu_ns rss_kib status)
measure() {
  local name=$1; shift
  "$MEASURE" -o "$raw/$name" -- "$@" >>"$logs/$name.log" 2>&1 || true
  local st; st=$(tail -1 "$raw/$name" | awk '{print $4}')
  [ "$st" = 0 ] || say "$name: exit status $st (see $logs/$name.log)"
}

# suite NAME BIN ARGS...: plain, heaptrack (+ heaptrack_print), cgoscope, RUNS rounds
suite() {
  local name=$1 bin=$2; shift 2
  local r
  rm -f "$raw/$name".* "$logs/$name".*
  say "$name: plain run to check the suite passes"
  "$bin" "$@" -test.v >"$logs/$name.check.log" 2>&1 || { tail -30 "$logs/$name.check.log" >&2; die "$name: the suite fails plainly"; }
  grep -E -- '^--- (SKIP|FAIL)' "$logs/$name.check.log" >"$raw/$name.skipped" || true
  for r in $(seq 1 "$RUNS"); do
    say "$name: round $r of $RUNS"
    measure "$name.plain" "$bin" "$@"
    rm -f "$out/scratch-ht".*
    measure "$name.heaptrack" heaptrack -o "$out/scratch-ht" "$bin" "$@"
    measure "$name.heaptrack_print" sh -c 'heaptrack_print "$1" >"$2"' sh "$(ls "$out"/scratch-ht.* | head -1)" "$raw/$name.htprint.$r"
    measure "$name.cgoscope" "$CGOSCOPE" run -q --json "$raw/$name.cgoscope.$r.json" -- "$bin" "$@"
  done
  rm -f "$out/scratch-ht".*
}

if want sqlite3; then
  gobuild "$GO" "$B/bin/sqlite3.test" "$here/sqlite3" test -c "$LDF" github.com/mattn/go-sqlite3
  suite sqlite3 "$B/bin/sqlite3.test"
fi
PAYLOAD=$GOMODCACHE/github.com/mattn/go-sqlite3@v1.14.22/sqlite3-binding.c
if want zstd; then
  gobuild "$GO" "$B/bin/zstd.test" "$here/zstd" test -c "$LDF" github.com/DataDog/zstd
  [ -f "$PAYLOAD" ] || (cd "$here/sqlite3" && go mod download github.com/mattn/go-sqlite3)
  export PAYLOAD
  suite zstd "$B/bin/zstd.test"
  unset PAYLOAD
fi

# vgrun NAME BIN ARGS...: plain, valgrind memcheck --leak-check=full, then cgoscope, once each.
# GODEBUG=cpu.rdtscp=off for all three: valgrind 3.19 advertises RDTSCP but cannot decode it, and
# Go's runtime.cputicks (Go 1.21 as well as 1.26) uses it when the CPU says it has it: SIGILL.
vgrun() {
  local name=$1; shift
  rm -f "$raw/$name".* "$logs/$name".*
  say "$name: plain, valgrind memcheck, cgoscope"
  GODEBUG=cpu.rdtscp=off measure "$name.plain" "$@"
  GODEBUG=cpu.rdtscp=off measure "$name.valgrind" valgrind --leak-check=full --log-file="$raw/$name.valgrind.txt" "$@"
  GODEBUG=cpu.rdtscp=off measure "$name.cgoscope" "$CGOSCOPE" run -q --json "$raw/$name.cgoscope.json" -- "$@"
}
if want leak; then
  gobuild "$GO" "$B/bin/sqlite-leak" "$here/sqlite-leak" build "$LDF" .
  gobuild "$GO121" "$B/bin/sqlite-leak-go1.21" "$here/sqlite-leak" build "$LDF" .
  vgrun leak "$B/bin/sqlite-leak" -n "$LEAK_N"
  vgrun leak121 "$B/bin/sqlite-leak-go1.21" -n "$LEAK_N"
fi
if want vgsuite; then
  gobuild "$GO121" "$B/bin/sqlite3-go1.21.test" "$here/sqlite3" test -c "$LDF" github.com/mattn/go-sqlite3
  vgrun vgsuite "$B/bin/sqlite3-go1.21.test" -test.run "$VG_TESTS" -test.v
fi

{
  echo "- $(date -u '+%Y-%m-%d %H:%M UTC'); cgoscope $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')$( [ -n "$(git -C "$root" status --porcelain -- shim analyzer include 2>/dev/null)" ] && echo ' + uncommitted changes'); $("$GO" env GOVERSION)$( [ -n "${GO121:-}" ] && echo " and $("$GO121" env GOVERSION)"); $(heaptrack --version 2>&1 | head -1); $(valgrind --version)"
  echo "- machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(uname -r); load average at end $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- runs: $RUNS (medians); leak: -n $LEAK_N; vgsuite: -test.run '$VG_TESTS'"
} >"$raw/meta"
python3 "$here/table.py" "$raw" "$ONLY" "$LEAK_N" | tee "$out/results.md"
