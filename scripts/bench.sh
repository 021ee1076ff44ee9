#!/usr/bin/env bash
# heapgate benchmarks: native vs `heapgate run` vs heaptrack vs valgrind memcheck.
#
# Usage: scripts/bench.sh [--list]          (`make bench` installs the tools, builds
#                                            heapgate and the fixtures, then runs this)
#
# Builds the workload programs (bench/workloads) into build/bench, generates the
# inputs once (scripts/bench/gen_data.py), then runs scripts/bench/driver.py, which
# prints progress on stderr, the tables on stdout, and writes bench/results.md.
#
# Environment: BENCH_RUNS=N (default 5), BENCH_PAIRED_RUNS=N (native and heapgate, default 15),
# BENCH_QUICK=1 (1 run, small inputs),
# BENCH_SKIP_VALGRIND=1 (no valgrind on jq, sqlite3, Rust, Swift), BENCH_BIG_ALL=1,
# BENCH_ONLY=id,id, BENCH_TOOLS=tool,tool, BENCH_TIMEOUT=seconds; see driver.py.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
src="$root/bench/workloads"
out="$root/build/bench"
mkdir -p "$out"

CC=${CC:-cc}
RUSTC=${RUSTC:-rustc}
if [[ -z "${SWIFTC:-}" ]]; then
    SWIFTC=$(command -v swiftc || true)
    [[ -n "$SWIFTC" ]] || SWIFTC=/opt/swift/usr/bin/swiftc
fi
export SWIFTC

for need in "$root/build/bin/heapgate" "$root/build/lib/libheapgate.so" "$root/build/fixtures/churn"; do
    [[ -e "$need" ]] || echo "bench: warning: ${need#$root/} is missing (run 'make all fixtures'); what needs it is reported n/a" >&2
done

# build NAME SOURCE CMD...: run CMD (which writes build/bench/.NAME.tmp.PID) when
# build/bench/NAME is missing or older than SOURCE or this script; a failed build only
# warns (what needs it is reported n/a).
build() {
    local name=$1 file=$2
    shift 2
    local target="$out/$name"
    if [[ -e "$target" && "$target" -nt "$file" && "$target" -nt "${BASH_SOURCE[0]}" ]]; then
        return 0
    fi
    echo "  build $name" >&2
    local scratch
    scratch=$(mktemp -d)
    if (cd "$scratch" && "$@") >&2; then
        mv -f "$out/.$name.tmp.$$" "$target"
    else
        echo "bench: warning: could not build $name; what needs it is reported n/a" >&2
        rm -f "$out/.$name.tmp.$$"
    fi
    rm -rf "$scratch"
}
trap 'rm -f "$out"/.*.tmp.$$' EXIT

# The measuring helper (fork + exec + wait4), then the workloads: optimised, with debug
# info (heapgate symbolizes), C without frame pointers.
build measure "$root/scripts/bench/measure.c" "$CC" -std=gnu11 -O2 -Wall -Wextra -o "$out/.measure.tmp.$$" "$root/scripts/bench/measure.c"
build neighbour "$src/neighbour.c" "$CC" -std=gnu11 -O2 -o "$out/.neighbour.tmp.$$" "$src/neighbour.c"
build bigheap "$src/bigheap.c" "$CC" -std=gnu11 -O2 -g -fomit-frame-pointer -o "$out/.bigheap.tmp.$$" "$src/bigheap.c"
build alloc_rust "$src/alloc_rust.rs" "$RUSTC" -O -g --edition 2021 --crate-name alloc_rust -o "$out/.alloc_rust.tmp.$$" "$src/alloc_rust.rs"
build alloc_swift "$src/alloc_swift.swift" "$SWIFTC" -O -g -module-name alloc_swift -o "$out/.alloc_swift.tmp.$$" "$src/alloc_swift.swift"

python3 "$root/scripts/bench/gen_data.py" "$out"

exec python3 "$root/scripts/bench/driver.py" "$@"
