#!/usr/bin/env bash
# The main job: builds cgoscope and runs it on the demo program testprogs/leaky, which leaks C
# memory through C.CString, malloc and strdup. The leak report appears on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/env.sh
build=${CGOSCOPE_BUILD_DIR:-build}
cmake -S . -B "$build" >/dev/null
cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" --target cgoscope cgoscope_shim testprogs >/dev/null
echo "\$ cgoscope run -- testprogs/leaky" >&2
exec "$build/bin/cgoscope" run -- "$build/testprogs/leaky"
