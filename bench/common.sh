# Sourced by bench/run.sh and bench/profile.sh: locations, installing what is missing, building
# cgoscope, the workloads and the two helper programs. Not meant to be run on its own.

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The cgoscope source tree to measure: this repository, or CGOSCOPE_BENCH_SRC (e.g. an export
# of one commit: `git archive --prefix=cgoscope-REV/ REV | tar -x -C /tmp`).
root=${CGOSCOPE_BENCH_SRC:-$(dirname "$here")}
build=${CGOSCOPE_BENCH_BUILD:-$here/.build}
out=${CGOSCOPE_BENCH_OUT:-$here/.out}
logs=$out/logs
scratch=$out/scratch
bin=$build/bench
CGOSCOPE=$build/bin/cgoscope
MEASURE=$bin/measure
NOFS_SHIM=$build/bench-shims/libcgoscope-nofreestack.so # frees without their stack (bench/README.md)

# Which cgoscope is measured: the commit, marked when shim/, analyzer/ or include/ differ from it;
# for a tree outside git (CGOSCOPE_BENCH_SRC), CGOSCOPE_BENCH_REV or the directory's name.
source_rev() {
  if [ -n "${CGOSCOPE_BENCH_REV:-}" ]; then echo "$CGOSCOPE_BENCH_REV"; return; fi
  local r
  if r=$(git -C "$root" rev-parse --short HEAD 2>/dev/null) && [ "$(git -C "$root" rev-parse --show-toplevel 2>/dev/null)" = "$(cd "$root" && pwd -P)" ]; then
    [ -n "$(git -C "$root" status --porcelain -- shim analyzer include 2>/dev/null)" ] && r="$r + uncommitted changes"
    echo "$r"
  else
    echo "source $(basename "$root")"
  fi
}

say() { echo "bench: $*" >&2; }
die() { echo "bench: $*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root (or sudo) to run: $*"; fi
}

# Installs the Debian packages that are missing; apt-get update only when one is not found.
install_debs() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get to install them"
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$logs/apt.log" 2>&1; then
    as_root apt-get update -qq >>"$logs/apt.log" 2>&1
    as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$logs/apt.log" 2>&1 ||
      die "could not install ${missing[*]} (see $logs/apt.log)"
  fi
}

find_go() {
  command -v go >/dev/null 2>&1 && return 0
  local d
  for d in /usr/local/go/bin /usr/lib/go/bin; do
    if [ -x "$d/go" ]; then PATH="$PATH:$d"; export PATH; return 0; fi
  done
  die "the Go toolchain (>= 1.21) is needed; install it (e.g. apt-get install golang-go)"
}

# bench_setup DEBIAN-PACKAGES...: installs what is missing (cgoscope's build dependencies through
# its own scripts/setup.sh, then the packages named), builds cgoscope and the workloads.
bench_setup() {
  mkdir -p "$out" "$logs" "$scratch" "$bin"
  find_go
  export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
  bash "$root/scripts/setup.sh" >"$logs/setup.log" 2>&1 ||
    { cat "$logs/setup.log" >&2; die "scripts/setup.sh failed"; }
  install_debs "$@"

  say "building cgoscope in $build"
  # Warnings do not stop the benchmark (others may be mid-change); they stop the real build.
  cmake -S "$root" -B "$build" -DCGOSCOPE_BUILD_TESTPROGS=OFF -DCGOSCOPE_WERROR=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$logs/cmake.log" 2>&1 ||
    { tail -20 "$logs/cmake.log" >&2; die "cmake failed"; }
  cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" --target cgoscope cgoscope_shim >>"$logs/cmake.log" 2>&1 ||
    { tail -30 "$logs/cmake.log" >&2; die "building cgoscope failed (see $logs/cmake.log)"; }
  [ -x "$CGOSCOPE" ] || die "no $CGOSCOPE after the build"
  # The baseline of the free's cost; a source tree from before it has none (its rows are n/a).
  rm -f "$NOFS_SHIM"
  cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" --target cgoscope_shim_nofreestack >>"$logs/cmake.log" 2>&1 ||
    say "no shim without free stacks in this source tree: its rows are n/a"

  say "building the workloads"
  ${CC:-cc} -O2 -Wall -Wextra -o "$MEASURE" "$here/tools/measure.c" || die "building tools/measure.c failed"
  ${CC:-cc} -O2 -Wall -Wextra -o "$bin/clockcost" "$here/tools/clockcost.c" || die "building tools/clockcost.c failed"
  local w
  for w in alloc calls mixed storefloor; do
    (cd "$here/workloads" && go build -o "$bin/$w" "./$w") >"$logs/go-build-$w.log" 2>&1 ||
      { cat "$logs/go-build-$w.log" >&2; die "building workload $w failed"; }
  done
}
