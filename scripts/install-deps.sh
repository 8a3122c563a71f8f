#!/usr/bin/env bash
# Installs what building and testing tinyllm needs on Debian 12 (or a Debian-based system): the one
# list of packages, used by README.md's quick start and by .ci/run.
#
#   scripts/install-deps.sh [EXTRA_PACKAGE...]
#
# Installs only what is missing, so a second run does nothing. Runs apt-get as root, through sudo
# when not root; fetches the package lists only when they are empty or out of date; never prompts.
set -euo pipefail

packages=(
  g++ cmake make git                                   # toolchain (git: the packaging test)
  libxsimd-dev nlohmann-json3-dev                      # the library's dependencies
  libeigen3-dev doctest-dev                            # tests
  libcli11-dev                                         # the tinyllm command-line tool
  libhnswlib-dev                                       # approximate search in SemanticIndex
  libcpp-httplib-dev                                   # tinyllm serve
  python3                                              # the documentation checks and benchmarks/report.py
)
packages+=("$@")

if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install-deps: no apt-get here; install the equivalents of: ${packages[*]}" >&2
  exit 1
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages are installed"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "install-deps: missing ${missing[*]}; run this script as root, or install sudo" >&2
  exit 1
fi
apt_get() {
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -y -o Dpkg::Use-Pty=0 "$@"
}

echo "install-deps: installing ${missing[*]}"
# A fresh system (a debian:12 container) has no package lists: fetch them first. Lists that are
# there but out of date make the install fail: fetch them and try once more.
if ! compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null; then
  apt_get update
fi
if ! apt_get install --no-install-recommends "${missing[@]}"; then
  echo "install-deps: updating the package lists and trying again"
  apt_get update
  apt_get install --no-install-recommends "${missing[@]}"
fi
