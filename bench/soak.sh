#!/usr/bin/env bash
# Soak: a service with steady allocation churn runs under cgoscope for a long time (default 10
# minutes); the analyzer's resident memory is sampled as it goes. It must stay flat: the
# analyzer keeps live blocks, distinct stacks and a bounded table of snapshots, not events.
#
#   bench/soak.sh [SECONDS] [REQUEST_INTERVAL]      (defaults: 600 s, 100us)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
every=${2:-100us}
build=${CGOSCOPE_BUILD_DIR:-build}
bash scripts/setup.sh >/dev/null
. scripts/env.sh
cmake -S . -B "$build" >/dev/null
cmake --build "$build" -j"$(nproc)" --target cgoscope cgoscope_shim testprogs >/dev/null
out=$(mktemp -d)
"$build/bin/cgoscope" run -q --json "$out/soak.json" --duration "$secs" -- \
  "$build/testprogs/service" -churn -every "$every" >"$out/service.out" &
launcher=$!
sleep 1
analyzer=$launcher
echo "# soak: $(uname -srm), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "# service -churn -every $every under cgoscope for $secs s; analyzer RSS sampled every 10 s"
printf "%8s %12s\n" "t (s)" "RSS (KiB)"
start=$(date +%s)
first="" last="" max=0
while kill -0 "$analyzer" 2>/dev/null; do
  rss=$(awk '/VmRSS/{print $2}' /proc/$analyzer/status 2>/dev/null || true)
  [ -n "$rss" ] || break
  t=$(( $(date +%s) - start ))
  printf "%8d %12d\n" "$t" "$rss"
  [ -n "$first" ] || first=$rss
  last=$rss
  [ "$rss" -gt "$max" ] && max=$rss
  sleep 10
done
wait "$launcher" || true
events=$(python3 -c "import json;p=json.load(open('$out/soak.json'))['processes'][0]['totals'];print(p['allocations']+p['frees'])" 2>/dev/null || echo "?")
echo "# events processed: $events; RSS first $first KiB, last $last KiB, max $max KiB"
echo "# service said: $(tail -1 "$out/service.out")"
