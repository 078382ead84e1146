# Sourced by the scripts: finds Go when it is installed but not on PATH.
if ! command -v go >/dev/null 2>&1; then
  for d in /usr/local/go/bin /usr/lib/go/bin; do
    if [ -x "$d/go" ]; then PATH="$PATH:$d"; export PATH; break; fi
  done
fi
export GOTOOLCHAIN=local
