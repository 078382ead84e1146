#!/usr/bin/env bash
# Installs older Go toolchains from Debian's bookworm-backports, for the Go version matrix
# (docs/go-versions.md), and prints the path of each one's `go`, one a line.
#
#     scripts/go-toolchains.sh 1.21 1.22 1.23      # default: 1.21, the oldest Go cgoscope supports
#
# golang-1.2X-go lands in /usr/lib/go-1.2X/bin/go and does not touch /usr/bin/go or PATH.
# Adds bookworm-backports to the apt sources when no source has it yet (a file of its own,
# /etc/apt/sources.list.d/cgoscope-backports.sources, in the style of debian.sources).
# Safe to run again: a toolchain already installed needs neither apt nor the network.
# Needs root or sudo to install. Exits non-zero, saying why, when any toolchain is missing after.
set -euo pipefail

versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(1.21)

die() { echo "go-toolchains: $*" >&2; exit 1; }

gobin() { echo "/usr/lib/go-$1/bin/go"; }

missing=()
for v in "${versions[@]}"; do
  v=${v#go}
  [[ $v =~ ^1\.[0-9]+$ ]] || die "not a Go version: '$v' (want e.g. 1.21)"
  [ -x "$(gobin "$v")" ] || missing+=("$v")
done

if [ ${#missing[@]} -gt 0 ]; then
  [ -r /etc/os-release ] && . /etc/os-release
  [ "${VERSION_CODENAME:-}" = bookworm ] ||
    die "needs Debian bookworm (this is ${PRETTY_NAME:-unknown}); install Go ${missing[*]} by hand and pass -DGO_EXECUTABLE=..."
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "need root (or sudo) to install Go ${missing[*]}"
    sudo="sudo"
  fi
  apt_get() { $sudo env DEBIAN_FRONTEND=noninteractive apt-get "$@"; }

  list=/etc/apt/sources.list.d/cgoscope-backports.sources
  if ! grep -qsE '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
       /etc/apt/sources.list.d/*.sources; then
    echo "go-toolchains: adding bookworm-backports to the apt sources ($list)" >&2
    keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    [ -r "$keyring" ] || die "no Debian archive keyring at $keyring (apt-get install debian-archive-keyring)"
    printf '%s\n' 'Types: deb' 'URIs: http://deb.debian.org/debian' 'Suites: bookworm-backports' \
      'Components: main' "Signed-By: $keyring" | $sudo tee "$list" >/dev/null
  fi

  pkgs=()
  for v in "${missing[@]}"; do pkgs+=("golang-$v-go"); done
  echo "go-toolchains: installing ${pkgs[*]} from bookworm-backports" >&2
  apt_get update -qq >&2 || die "apt-get update failed (no network to deb.debian.org?)"
  apt_get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null ||
    die "could not install ${pkgs[*]} (no network to deb.debian.org, or not in bookworm-backports?)"
fi

for v in "${versions[@]}"; do
  v=${v#go}
  g=$(gobin "$v")
  [ -x "$g" ] || die "$g is missing after the install"
  # The version check runs the toolchain itself: it must be the one asked for, whatever GOTOOLCHAIN says.
  got=$(GOTOOLCHAIN=local "$g" env GOVERSION) || die "$g does not run"
  [[ $got == "go$v" || $got == go$v.* ]] || die "$g is $got, not go$v"
  echo "$g"
done
