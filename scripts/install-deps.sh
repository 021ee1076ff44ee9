#!/usr/bin/env bash
# Installs what heapgate needs from Debian's packages, if it is missing. Idempotent and quiet
# when everything is there. Usage: scripts/install-deps.sh [build|test|bench]
set -euo pipefail

profile=${1:-build}
packages=(make gcc g++ pkg-config libunwind-dev libdw-dev libelf-dev)
case "$profile" in
  build) ;;
  # setcap, musl-gcc, a 32-bit loader: launch tests; libc.a: the static helper every test process
  # starts through; jemalloc: a program linked with an allocator library (ForeignAllocatorTests)
  test) packages+=(valgrind libcap2-bin musl-tools libc6-i386 libc6-dev libjemalloc2) ;;
  bench) packages+=(valgrind heaptrack jq sqlite3 time) ;;
  *) echo "usage: $0 [build|test|bench]" >&2; exit 2 ;;
esac
# Fixtures include a Rust program; use Debian's rustc only when none is on PATH.
if [ "$profile" != build ] && ! command -v rustc >/dev/null 2>&1; then packages+=(rustc); fi

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
