/// heapgate's built-in suppressions: blocks that language runtimes and the C library allocate
/// once and keep for the life of the process. They are not the program's leaks, but a tracker
/// that reports from an exit hook sees them, because it cannot run the cleanup valgrind runs
/// before its leak check (`__libc_freeres`, `__gnu_cxx::__freeres`).
///
/// The list is in valgrind's format, so it can be printed, read and edited like any other
/// suppression file. Most entries match only `possible` and `reachable` blocks, so that a
/// misattributed `definite` leak is still reported; `all` is used only where the stack lies
/// entirely inside runtime code that never calls back into the program, so the block cannot be
/// the program's whatever its kind (for example a thread's DTV, which heapgate may find only
/// through a cached thread stack). Entries are kept narrow: the allocator frame and the runtime
/// function that allocated, with `...` only below functions that never run program code.
public enum DefaultSuppressions {
    /// The name suppressions from this list carry as their file.
    public static let file = "<heapgate default suppressions>"

    /// The list, parsed. Tests check that `text` parses; were it ever not to, this is empty
    /// rather than a crash.
    public static let set: SuppressionSet = (try? SuppressionSet.parse(text, file: file, format: .valgrind)) ?? SuppressionSet()

    public static let text = #"""
# heapgate default suppressions (valgrind format).
#
# In heapgate, frame 0 of every stack is the allocator entry point in libheapgate.so
# (malloc, calloc, realloc, ...); heapgate also matches suppressions written for memcheck,
# where frame 0 is in vgpreload_memcheck and C++'s operator new replaces malloc.

# ---------------------------------------------------------------------------------------------
# glibc

# The buffer of a stdio stream, allocated on its first read or write (printf, fwrite, fgets,
# std::cout, Swift's print) and owned by the FILE: stdout's and stderr's live until exit, and
# glibc frees them only in __libc_freeres. A FILE the program never closes is still reported,
# through fopen's own allocation.
{
   heapgate-glibc-stdio-buffer
   Memcheck:Leak
   match-leak-kinds: all
   fun:malloc
   fun:*_IO_*file_doallocate
}

# The dynamic thread vector (DTV) of a thread, allocated by pthread_create through
# _dl_allocate_tls. glibc keeps it with the thread's stack in its stack cache after the thread
# exits and frees it only in __libc_freeres; it is found only through that cached stack, so it
# can look lost. It is the C library's, never the program's.
{
   heapgate-glibc-thread-dtv
   Memcheck:Leak
   match-leak-kinds: all
   fun:calloc
   ...
   fun:allocate_dtv
   fun:*_dl_allocate_tls
}

# A DTV grown when dlopen loads a library with thread-local storage; like the above.
{
   heapgate-glibc-thread-dtv-resize
   Memcheck:Leak
   match-leak-kinds: all
   fun:*alloc
   ...
   fun:_dl_resize_dtv
}

# Locale data loaded by setlocale() and message catalogs (the _nl_* functions): cached by glibc
# for the rest of the process. A locale_t from newlocale() that the program never frees is
# still reported, through newlocale's own allocation.
{
   heapgate-glibc-locale-data
   Memcheck:Leak
   match-leak-kinds: all
   fun:*alloc
   ...
   fun:_nl_*
}

# The locale names setlocale() keeps for the current locale (glibc frees the previous ones when
# the locale changes again). The symbol is setlocale, or __GI_setlocale inside libc.
{
   heapgate-glibc-setlocale
   Memcheck:Leak
   match-leak-kinds: all
   fun:*alloc
   ...
   fun:setlocale
}
{
   heapgate-glibc-setlocale-internal-name
   Memcheck:Leak
   match-leak-kinds: all
   fun:*alloc
   ...
   fun:__*setlocale
}

# ---------------------------------------------------------------------------------------------
# ld.so

# dlopen's lookup table for _dl_find_object (the unwinder uses it to find the object that holds
# a code address). ld.so keeps it for the life of the process, even after dlclose, and frees it
# only in __libc_freeres.
{
   heapgate-ldso-dl-find-object
   Memcheck:Leak
   match-leak-kinds: all
   fun:malloc
   ...
   fun:_dl_find_object_update
}

# Anything ld.so allocates itself: link maps, search paths and scopes of loaded objects, TLS
# bookkeeping. The allocator's caller must be ld.so, so blocks allocated by the program (or by
# constructors that dlopen runs) never match. Blocks of a library the program dlopens and never
# dlcloses are matched when still reachable or possibly lost.
{
   heapgate-ldso-internal
   Memcheck:Leak
   match-leak-kinds: possible,reachable
   fun:*alloc
   obj:*/ld-linux*.so*
}
{
   heapgate-ldso-internal-old-name
   Memcheck:Leak
   match-leak-kinds: possible,reachable
   fun:*alloc
   obj:*/ld-2.*.so
}

# ---------------------------------------------------------------------------------------------
# libstdc++

# The emergency pool for exceptions thrown when malloc fails (72,704 bytes with GCC 12), which
# libstdc++'s constructor allocates at start-up, before main, and frees only in
# __gnu_cxx::__freeres. Without libstdc++'s debug info the allocating function has no name,
# hence obj:, called from ld.so's call_init.
{
   heapgate-libstdc++-emergency-eh-pool
   Memcheck:Leak
   match-leak-kinds: all
   fun:malloc
   obj:*/libstdc++.so*
   fun:call_init*
}
# The same with libstdc++'s debug info: the pool's constructor, called from libstdc++'s own
# static initialization.
{
   heapgate-libstdc++-emergency-eh-pool-debuginfo
   Memcheck:Leak
   match-leak-kinds: all
   fun:malloc
   fun:_ZN12_GLOBAL__N_14poolC*
   obj:*/libstdc++.so*
}

# ---------------------------------------------------------------------------------------------
# Swift runtime (libswiftCore). Type metadata, witness tables and protocol conformances are
# instantiated on first use and cached for the life of the process, so these blocks appear
# under the program's own stack frames (the first use of a generic type or of a conformance).
# The entries anchor on the runtime's cache code right above the allocator; the program's own
# objects come from swift_allocObject / swift_slowAlloc and are never matched.

# The runtime's concurrent hash tables (generic metadata cache, conformance cache, ...): their
# element arrays, and their index arrays, which are referenced only through interior pointers
# and so are "possibly lost".
{
   heapgate-swift-concurrent-hash-map
   Memcheck:Leak
   match-leak-kinds: possible,reachable
   fun:*alloc
   fun:_ZN5swift25ConcurrentReadableHashMap*
}

# Metadata cache entries (tuple, function, existential and generic metadata caches).
{
   heapgate-swift-locking-concurrent-map
   Memcheck:Leak
   match-leak-kinds: possible,reachable
   fun:*alloc
   fun:_ZN5swift20LockingConcurrentMap*
}

# The caches themselves: swift::Lazy<...> singletons, created with C++ operator new on first use.
{
   heapgate-swift-lazy-cache
   Memcheck:Leak
   match-leak-kinds: possible,reachable
   fun:_Znw*
   fun:_Z*N5swift4LazyI*
}

# Instantiated witness tables, cached by swift_getWitnessTable.
{
   heapgate-swift-witness-table
   Memcheck:Leak
   match-leak-kinds: possible,reachable
   fun:malloc
   fun:swift_getWitnessTable
}

# Protocol conformance lookup results, cached by the conformance cache.
{
   heapgate-swift-conformance-cache
   Memcheck:Leak
   match-leak-kinds: possible,reachable
   fun:malloc
   fun:_ZN16ConformanceState11cacheResult*
}

# The metadata allocator's pool pages, which hold all instantiated metadata.
{
   heapgate-swift-metadata-allocator
   Memcheck:Leak
   match-leak-kinds: possible,reachable
   fun:*alloc
   ...
   fun:_ZN5swift17MetadataAllocator*
}

# The lists of metadata sections, protocols, conformances and type records that each Swift
# image registers when it is loaded (swift_addNewDSOImage runs from the image's constructor).
{
   heapgate-swift-image-registration
   Memcheck:Leak
   match-leak-kinds: possible,reachable
   fun:*alloc
   ...
   fun:swift_addNewDSOImage
}

# The runtime's and the toolchain's paths, computed once and cached (_swift_initRootPath,
# _swift_initRuntimePath).
{
   heapgate-swift-runtime-paths
   Memcheck:Leak
   match-leak-kinds: possible,reachable
   fun:*alloc
   ...
   fun:_ZN12_GLOBAL__N_1*_swift_init*Path*
}

# The backtracer's path, looked up by libswiftCore's static initializer at start-up.
{
   heapgate-swift-backtracer-path
   Memcheck:Leak
   match-leak-kinds: possible,reachable
   fun:*alloc
   ...
   fun:swift_copyAuxiliaryExecutablePath
   fun:_GLOBAL__sub_I_Backtrace.cpp
}

# A 16-byte box print() allocates once per process (its size does not depend on the values
# printed, nor its count on how many are).
{
   heapgate-swift-print-box
   Memcheck:Leak
   match-leak-kinds: possible,reachable
   fun:malloc
   ...
   fun:swift_allocBox
   fun:__swift_allocate_boxed_opaque_existential_0*
   fun:$ss15_print_unlocked*
}

# ---------------------------------------------------------------------------------------------
# Rust standard library. The patterns match both symbol manglings, legacy (_ZN3std...) and v0
# (_RNv...3std...).

# The main thread's stack-overflow guard information (its name and guard page), registered by
# std's runtime start-up before main and kept in a static map (rustc 1.8x and later).
{
   heapgate-rust-std-thread-info
   Memcheck:Leak
   match-leak-kinds: all
   fun:malloc
   ...
   fun:*3std3sys*14stack_overflow11thread_info16set_current_info*
}

# std's stdout buffer (a LineWriter of 1 KiB), created on first use of stdout and owned by the
# STDOUT static. std frees it when main returns; it remains when the process ends another way.
{
   heapgate-rust-std-stdout-buffer
   Memcheck:Leak
   match-leak-kinds: all
   fun:malloc
   ...
   fun:*5stdio9StdoutRaw*
}
{
   heapgate-rust-std-stdout-buffer-legacy-mangling
   Memcheck:Leak
   match-leak-kinds: all
   fun:malloc
   ...
   fun:*3std2io5stdio6stdout*
}

# std's stdin buffer (a BufReader of 8 KiB), created on first use of stdin and owned by the
# stdin static for the life of the process.
{
   heapgate-rust-std-stdin-buffer
   Memcheck:Leak
   match-leak-kinds: all
   fun:malloc
   ...
   fun:*5stdio8StdinRaw*
}
{
   heapgate-rust-std-stdin-buffer-legacy-mangling
   Memcheck:Leak
   match-leak-kinds: all
   fun:malloc
   ...
   fun:*3std2io5stdio5stdin*
}
"""#
}
