#!/usr/bin/env bash
# Re-run every fixture under valgrind, as recorded in EXPECTED.md.
#
# Usage: Tests/Fixtures/valgrind-reference.sh [FIXTURE_DIR [LOG_DIR]]
#   FIXTURE_DIR  built fixtures (default build/fixtures; built if missing)
#   LOG_DIR      where the logs go (default build/valgrind-reference)
# Each run writes LOG_DIR/TAG.PID.log (one per process: fork and exec give
# several) and LOG_DIR/TAG.out / TAG.err (the program's stdout / stderr,
# redirected to files, so glibc's stdout buffer is 4096 bytes).  Runs tagged
# nf_* add --run-libc-freeres=no --run-cxx-freeres=no.  At the end the
# HEAP SUMMARY and LEAK SUMMARY lines of every log are printed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
fixtures=${1:-$root/build/fixtures}
logs=${2:-$root/build/valgrind-reference}
"$root/scripts/build-fixtures.sh" "$fixtures" >/dev/null
fixtures=$(cd "$fixtures" && pwd)
mkdir -p "$logs"
logs=$(cd "$logs" && pwd)

VG=(valgrind --leak-check=full --show-leak-kinds=all --trace-children=yes --child-silent-after-fork=no)

# run TAG [VALGRIND OPTIONS...] -- PROGRAM [ARGS...]
run() {
    local tag=$1 rc=0
    shift
    local extra=()
    while [[ $1 != -- ]]; do extra+=("$1"); shift; done
    shift
    rm -f "$logs/$tag".*.log
    (cd "$fixtures" && "${VG[@]}" "${extra[@]}" --log-file="$logs/$tag.%p.log" "$@" \
        >"$logs/$tag.out" 2>"$logs/$tag.err" </dev/null) || rc=$?
    printf '%-20s exit %s\n' "$tag" "$rc"
}

nofr=(--run-libc-freeres=no --run-cxx-freeres=no)
run leak_basic -- ./leak_basic
run entry_points -- ./entry_points no-pvalloc
run entry_points_full -- ./entry_points          # valgrind 3.19 aborts at pvalloc
run threads -- ./threads
run destructor_frees -- ./destructor_frees
run handoff -- ./handoff
run fork_threads -- ./fork_threads
run sandboxed -- ./sandboxed
run sandboxed_syscall -- ./sandboxed syscall
run sandboxed_deny -- ./sandboxed prctl deny
run sandboxed_args -- ./sandboxed prctl args
run sandboxed_fault -- ./sandboxed prctl fault
run fork__exit -- ./fork_child
run fork_exit -- ./fork_child exit
run exec_child -- ./exec_child ./leak_basic
run dlopen_leak -- ./dlopen_leak
run dlopen_leak_kd --keep-debuginfo=yes -- ./dlopen_leak
run prints_a_lot -- ./prints_a_lot 3
run exit_0 -- ./exit_status
run exit_7 -- ./exit_status 7
run exit_quick5 -- ./exit_status quick 5
run exit_sig11 -- ./exit_status signal 11
run exit_sig6 -- ./exit_status signal 6
run realloc_chain -- ./realloc_chain
run deep_stack -- ./deep_stack
run deep_stack50 --num-callers=50 -- ./deep_stack
run churn -- ./churn 1000 8
run churn_t -- ./churn 1000 8 threads 4
run clean_c -- ./clean_c
run leak_cpp -- ./leak_cpp
run clean_cpp -- ./clean_cpp
run leak_rust -- ./leak_rust
run clean_rust -- ./clean_rust
run leak_swift -- ./leak_swift
run clean_swift -- ./clean_swift
run vfork_exec_fail -- ./vfork_exec /nonexistent
run vfork_exec -- ./vfork_exec ./leak_basic
mkdir -p "$fixtures/elsewhere"
run chdir_fork -- ./chdir_fork elsewhere
run chdir_fork_exec -- ./chdir_fork elsewhere "$fixtures/leak_basic"
run fork_lingers -- ./fork_lingers
run unshare_user -- ./unshare_user
run unshare_user_syscall -- ./unshare_user syscall
run main_thread_exit -- ./main_thread_exit
run valgrind_names "${nofr[@]}" -- ./valgrind_names
# Leak classification: one run per case, no freeres only (EXPECTED.md, "Leak classification").
leakclass_cases=(
    "leakclass_c list list_tail_first interior cycle3 exit_stack tls thread_stack beside_arena beside_chunk exited_thread reserve_commit idle_arena exit_register thread_syscall"
    "leakclass_cpp shared_ptr_cycle new_arrays secondary_base array_start_kept"
    "leakclass_rust forget_string manually_drop rc_cycle box_into_raw_ffi box_leak_threads box_leak_static weak_tree hashmap_cache"
    "leakclass_swift retain_cycle closure_cycle unmanaged weak_side_tables"
)
for line in "${leakclass_cases[@]}"; do
    read -r program cases <<<"$line"
    for case in $cases; do run "${program}_$case" "${nofr[@]}" --num-callers=60 -- "./$program" "$case"; done
done
for t in leak_basic threads handoff fork_threads dlopen_leak prints_a_lot churn_t leak_cpp \
         clean_cpp leak_rust clean_rust leak_swift clean_swift; do
    case $t in
    churn_t) run nf_$t "${nofr[@]}" -- ./churn 1000 8 threads 4 ;;
    prints_a_lot) run nf_$t "${nofr[@]}" -- ./prints_a_lot 3 ;;
    *) run nf_$t "${nofr[@]}" -- "./$t" ;;
    esac
done

echo
for log in "$logs"/*.log; do
    echo "== $(basename "$log")"
    sed -e 's/^==[0-9]*== //' "$log" |
        grep -E 'Command:|aborting|in use at exit|total heap usage|(definitely|indirectly|possibly) lost:|still reachable:' || true
done
