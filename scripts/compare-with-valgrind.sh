#!/usr/bin/env bash
# Runs one command under heapgate and under valgrind memcheck and prints their summaries side
# by side, marking the lines that differ. memcheck is the reference for what the answer should
# be; docs/architecture.md ("Checked against memcheck on the system's programs") says what
# differs on this machine's programs and why.
#
# Usage: scripts/compare-with-valgrind.sh COMMAND [ARGS...]
#
# heapgate runs with --default-suppressions=no (its list hides runtime blocks that valgrind's
# own default list leaves in the figures), valgrind without freeres, which heapgate cannot run
# (README, "How heapgate differs from valgrind"). Only the first process of each is compared: valgrind does not
# follow children unless told to. Pin hash seeds (PERL_HASH_SEED=0, PYTHONHASHSEED=0) for
# interpreters, whose allocations otherwise differ from run to run. Exit status: 0 when the
# definitely, indirectly and possibly lost lines are equal, 1 when they differ, 2 when a tool
# printed no summary.
set -uo pipefail

if [ $# -eq 0 ]; then
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
heapgate=$root/build/bin/heapgate
if [ ! -x "$heapgate" ] || ! command -v valgrind >/dev/null 2>&1; then
    echo "$0: needs build/bin/heapgate (make all) and valgrind" >&2
    exit 2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$heapgate" run --default-suppressions=no --log-file="$work/heapgate.%p" -- "$@" </dev/null >/dev/null 2>&1
valgrind --leak-check=full --run-libc-freeres=no --run-cxx-freeres=no --log-file="$work/valgrind.%p" \
    "$@" </dev/null >/dev/null 2>&1

# The summary lines of the first process's log (the lowest pid), without the "==PID==" prefix.
summary() {
    local first
    first=$(ls "$work"/"$1".* 2>/dev/null | sort -t. -k2 -n | head -1)
    [ -n "$first" ] || return
    grep -E 'in use at exit|total heap usage|(definitely|indirectly|possibly) lost:|still reachable:' "$first" |
        sed -E 's/^==[0-9]+== +//'
}
summary heapgate >"$work/heapgate.txt"
summary valgrind >"$work/valgrind.txt"
if [ ! -s "$work/heapgate.txt" ] || [ ! -s "$work/valgrind.txt" ]; then
    echo "$0: no summary from $([ -s "$work/heapgate.txt" ] && echo valgrind || echo heapgate)" >&2
    exit 2
fi

printf '  %-56s %s\n' heapgate "valgrind memcheck"
paste -d '\t' "$work/heapgate.txt" "$work/valgrind.txt" |
    awk -F '\t' '{ printf "%s %-56s %s\n", ($1 == $2 ? " " : "≠"), $1, $2 }'
losses() { grep -E 'lost:' "$work/$1.txt"; }
[ "$(losses heapgate)" = "$(losses valgrind)" ]
