#!/usr/bin/env bash
# Build the end-to-end test fixtures (Tests/Fixtures/src) into OUTDIR.
#
# Usage: scripts/build-fixtures.sh [OUTDIR]      (default: build/fixtures)
#
# Every output is rebuilt only when it is missing or older than its source
# (or than this script, whose flags it depends on).  All fixtures carry debug
# info and have deterministic line numbers.  C and C++ are built WITHOUT frame
# pointers, so a tracker has to unwind with DWARF CFI:
#   C/C++  -g -O1 -fno-inline -fomit-frame-pointer -fno-optimize-sibling-calls
#   Rust   rustc -g -C opt-level=1 -C force-frame-pointers=no
#   Swift  swiftc -g -Onone
# Compilers can be overridden with CC, CXX, RUSTC and SWIFTC.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
src="$root/Tests/Fixtures/src"
script="$root/scripts/build-fixtures.sh"
out=${1:-$root/build/fixtures}
mkdir -p "$out"
out=$(cd "$out" && pwd)

CC=${CC:-cc}
CXX=${CXX:-c++}
RUSTC=${RUSTC:-rustc}
if [[ -z "${SWIFTC:-}" ]]; then
    SWIFTC=$(command -v swiftc || true)
    [[ -n "$SWIFTC" ]] || SWIFTC=/opt/swift/usr/bin/swiftc
fi

c_flags=(-g -O1 -fno-inline -fomit-frame-pointer -fno-optimize-sibling-calls -Wall -Wextra)
rust_flags=(-g -C opt-level=1 -C force-frame-pointers=no --edition 2021)
swift_flags=(-g -Onone)

built=0
skipped=0

# fresh OUTPUT SOURCE: true when OUTPUT exists and is newer than SOURCE and this script.
fresh() {
    [[ -e "$1" && "$1" -nt "$2" && "$1" -nt "$script" ]]
}

# run_to OUTPUT CMD...: run CMD (which must write to "$tmp") and move the result
# into place only if it succeeded, so an interrupted build leaves nothing stale.
run_to() {
    local target=$1
    shift
    "$@"
    mv -f "$tmp" "$target"
    built=$((built + 1))
}

# fixture KIND NAME SOURCE [EXTRA FLAGS...]
fixture() {
    local kind=$1 name=$2 file="$src/$3"
    shift 3
    local target="$out/$name"
    if fresh "$target" "$file"; then
        skipped=$((skipped + 1))
        return 0
    fi
    tmp="$out/.$name.tmp.$$"
    printf '  %-5s %s\n' "$kind" "$name"
    case $kind in
    c) run_to "$target" "$CC" -std=gnu11 "${c_flags[@]}" -o "$tmp" "$file" "$@" ;;
    cxx) run_to "$target" "$CXX" -std=gnu++17 "${c_flags[@]}" -o "$tmp" "$file" "$@" ;;
    rust) run_to "$target" "$RUSTC" "${rust_flags[@]}" --crate-name "$name" -o "$tmp" "$file" "$@" ;;
    swift)
        # swiftc may drop side files in the working directory: use a scratch one.
        local scratch
        scratch=$(mktemp -d)
        (cd "$scratch" && "$SWIFTC" "${swift_flags[@]}" -module-name "$name" "$@" -o "$tmp" "$file") ||
            { rm -rf "$scratch"; rm -f "$tmp"; return 1; }
        rm -rf "$scratch"
        run_to "$target" true
        ;;
    esac
}

trap 'rm -f "$out"/.*.tmp.$$' EXIT

# C
fixture c leak_basic leak_basic.c
fixture c entry_points entry_points.c
fixture c threads threads.c -pthread
fixture c thread_churn thread_churn.c -pthread
fixture c steady_allocs steady_allocs.c
fixture c handoff handoff.c -pthread
fixture c fork_threads fork_threads.c -pthread
fixture c libctor_threads.so libctor_threads.c -fPIC -shared -pthread
fixture c ctor_threads ctor_threads.c -pthread -L"$out" -lctor_threads -Wl,-rpath,"$out"
fixture c libdestructor_frees.so libdestructor_frees.c -fPIC -shared
fixture c destructor_frees destructor_frees.c -L"$out" -ldestructor_frees -Wl,-rpath,"$out"
fixture c sandboxed sandboxed.c
# Loaded through its soname link (libversioned.so.1 -> libversioned.so.1.2.3), symbols stripped.
fixture c libversioned.so.1.2.3 libversioned.c -fPIC -shared -Wl,-soname,libversioned.so.1 -s
ln -sfn libversioned.so.1.2.3 "$out/libversioned.so.1"
fixture c valgrind_names valgrind_names.c "$out/libversioned.so.1.2.3" -Wl,-rpath,"$out"
fixture c fork_child fork_child.c
fixture c exec_child exec_child.c
fixture c vfork_exec vfork_exec.c
fixture c chdir_fork chdir_fork.c
fixture c fork_lingers fork_lingers.c
fixture c unshare_user unshare_user.c
fixture c thread_credentials thread_credentials.c
fixture c main_thread_exit main_thread_exit.c -pthread
fixture c libplugin.so libplugin.c -fPIC -shared
fixture c dlopen_leak dlopen_leak.c -ldl
for id in 1 2 3 4; do
    fixture c "libchurn$id.so" libchurn.c -fPIC -shared -DCHURN_ID="$id"
done
fixture c dl_churn dl_churn.c -ldl
fixture c fork_while_dlopening fork_while_dlopening.c -ldl -pthread
fixture c forks_from_threads forks_from_threads.c -pthread
fixture c forks_at_exit forks_at_exit.c -pthread
fixture c libforkguard.so libforkguard.c -fPIC -shared -pthread
fixture c fork_under_program_locks fork_under_program_locks.c -pthread -L"$out" -lforkguard -Wl,-rpath,"$out"
fixture c held_back held_back.c -pthread
fixture c held_back_counts held_back_counts.c -pthread
fixture c fork_mid_hold fork_mid_hold.c -pthread
fixture c debug_frame_only debug_frame_only.c -O2 -fno-asynchronous-unwind-tables -fno-unwind-tables
for version in 1 2; do
    fixture c "libdebug_frame_plugin$version.so" libdebug_frame_plugin.c -fPIC -shared -DVERSION="$version" \
        -O2 -fno-asynchronous-unwind-tables -fno-unwind-tables
done
fixture c debug_frame_plugins debug_frame_plugins.c -ldl
fixture c libdeep.so libdeep.c -fPIC -shared
fixture c libdeep_relro.so libdeep.c -fPIC -shared -Wl,-z,now -Wl,-z,relro
fixture c deepbind deepbind.c -ldl
fixture c malloc_wrapper malloc_wrapper.c -ldl -fno-builtin
fixture c prefixed_allocator prefixed_allocator.c
fixture c own_allocator own_allocator.c
fixture c libearly.so libearly.c -fPIC -shared
fixture c own_allocator_early own_allocator.c -DWITH_EARLY -L"$out" -learly -Wl,-rpath,"$out"
fixture c own_allocator_jemalloc own_allocator.c -DWITH_JEMALLOC_API
fixture c own_allocator_early_sbrk own_allocator.c -DWITH_SBRK -DWITH_EARLY -L"$out" -learly -Wl,-rpath,"$out"
fixture c own_allocator_mimalloc own_allocator.c -DWITH_MIMALLOC_API
fixture c own_allocator_stripped own_allocator.c -s
fixture c no_build_id no_build_id.c -Wl,--build-id=none
fixture c no_build_id_rebuilt no_build_id.c -Wl,--build-id=none -DREBUILT
fixture c prints_a_lot prints_a_lot.c
fixture c exit_status exit_status.c
fixture c realloc_chain realloc_chain.c
fixture c deep_stack deep_stack.c
fixture c many_stacks many_stacks.c
fixture c clean_c clean.c
fixture c churn churn.c -pthread
fixture c unwind_stress unwind_stress.c -pthread
fixture c alloc_then_sleep alloc_then_sleep.c
fixture c fd_hygiene fd_hygiene.c
fixture c closes_descriptors closes_descriptors.c
fixture c exhausts_descriptors exhausts_descriptors.c
fixture c high_descriptors high_descriptors.c
fixture c descriptor_race descriptor_race.c -pthread
fixture c rotating_pointers rotating_pointers.c -pthread
fixture c exit_while_allocating exit_while_allocating.c -pthread
fixture c seccomp_launcher seccomp_launcher.c
fixture c clone_dup2 clone_dup2.c -pthread
fixture c clone_allocates clone_allocates.c
fixture c killed_while_starting killed_while_starting.c
fixture c signal_allocs signal_allocs.c -pthread
fixture c zeroed_tail zeroed_tail.c
fixture c first_fd first_fd.c
fixture c stdio_only stdio_only.c -static
fixture c huge_block huge_block.c
fixture c errno_preserved errno_preserved.c -pthread
fixture c small_stack small_stack.c -pthread
# A static executable needs the C library's static archive (libc.a); without it the
# launch test that uses static_hello skips.
probe="$out/.static-probe.tmp.$$"
if echo 'int main(void) { return 0; }' | "$CC" -static -x c -o "$probe" - 2>/dev/null; then
    rm -f "$probe"
    fixture c static_hello static_hello.c -static
else
    rm -f "$probe"
    echo "  skip  static_hello (cannot link statically: is libc.a installed?)"
fi
# A 32-bit program needs the compiler's -m32 (no 32-bit C library: it makes its own system
# calls); without it the launch test that uses hello_i386 skips.
if echo '.globl _start' | "$CC" -m32 -nostdlib -static -x assembler -o "$probe" - 2>/dev/null; then
    rm -f "$probe"
    fixture c hello_i386 hello_i386.S -m32 -nostdlib -static
    fixture c hello_i386_dynamic hello_i386.S -m32 -nostdlib -pie -Wl,-dynamic-linker,/lib/ld-linux.so.2
else
    rm -f "$probe"
    echo "  skip  hello_i386 (cannot build a 32-bit x86 program: does the compiler take -m32?)"
fi
# A program built with AddressSanitizer (its runtime linked in, malloc included) needs a clang
# with compiler-rt; the Swift toolchain's has it. Without one the test that uses it skips.
SANITIZER_CC=${SANITIZER_CC:-$(command -v clang || echo /opt/swift/usr/bin/clang)}
if echo 'int main(void) { return 0; }' | "$SANITIZER_CC" -fsanitize=address -fuse-ld=bfd -x c -o "$probe" - 2>/dev/null; then
    rm -f "$probe"
    CC=$SANITIZER_CC fixture c leak_basic_asan leak_basic.c -fsanitize=address -fuse-ld=bfd
else
    rm -f "$probe"
    echo "  skip  leak_basic_asan (no clang that builds with -fsanitize=address)"
fi
# leak_basic linked with jemalloc (Debian's libjemalloc2, which make test installs), an allocator
# library after the shim in the search order; without it the test that uses it skips.
jemalloc=$(ls /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 2>/dev/null || true)
if [[ -n "$jemalloc" ]]; then
    fixture c leak_basic_jemalloc leak_basic.c "$jemalloc"
else
    echo "  skip  leak_basic_jemalloc (no libjemalloc.so.2: install libjemalloc2)"
fi
# A program linked against musl needs musl-gcc (Debian's musl-tools, which make test installs);
# without it the launch test that uses hello_musl skips.
if command -v musl-gcc >/dev/null 2>&1; then
    CC=musl-gcc fixture c hello_musl hello_musl.c
else
    echo "  skip  hello_musl (no musl-gcc: install musl-tools)"
fi
# C++
fixture cxx leak_cpp leak_cpp.cpp
fixture cxx clean_cpp clean.cpp
# Rust
fixture rust leak_rust leak_rust.rs
fixture rust clean_rust clean.rs
# Swift
fixture swift leak_swift leak_swift.swift
fixture swift clean_swift clean.swift
# Leak classification: one program per language, the case is argv[1]
fixture c leakclass_c leakclass.c -pthread
fixture cxx leakclass_cpp leakclass.cpp
fixture rust leakclass_rust leakclass.rs
fixture swift leakclass_swift leakclass.swift
fixture c record_order record_order.c
fixture c tied_records tied_records.c
fixture c signal_stack signal_stack.c
# Source names as the line table records them: compiled from the sources' directory by a
# relative path (as make does), by clang with DWARF 5 and by gcc. Without clang, the clang
# one is skipped (and the test that uses it).
# srcnames_fixture NAME COMPILER [FLAGS...]
srcnames_fixture() {
    local name=$1 compiler=$2 target="$out/$1"
    shift 2
    if fresh "$target" "$src/srcnames/srcnames.c" && fresh "$target" "$src/srcnames/inc/grab.h"; then
        skipped=$((skipped + 1))
        return 0
    fi
    tmp="$out/.$name.tmp.$$"
    printf '  %-5s %s\n' c "$name"
    run_to "$target" in_sources "$compiler" -std=gnu11 "${c_flags[@]}" "$@" -o "$tmp" srcnames/srcnames.c
}
in_sources() { (cd "$src" && "$@"); }
srcnames_fixture srcnames_gcc "${GCC:-gcc}"
CLANG=${CLANG:-$(command -v clang || echo /opt/swift/usr/bin/clang)}
if [[ -x "$CLANG" ]] || command -v "$CLANG" >/dev/null 2>&1; then
    srcnames_fixture srcnames_clang "$CLANG" -gdwarf-5
else
    echo "  skip  srcnames_clang (no clang)"
fi

echo "fixtures in $out: $built built, $skipped up to date"
