/*
 * Finds glibc's allocator behind us with dlsym(RTLD_NEXT), and the other glibc functions the
 * shim exports and then calls (exit, close, fcntl, dup). Going through dlsym rather than
 * calling __libc_malloc keeps any allocator that sits after us in the search order
 * (jemalloc linked into the program, say) working as it did without heapgate.
 */
#include <dlfcn.h>

#include "hg_internal.h"

hg_real_t hg_real;

_Atomic int hg_real_state;

static void *hg_real_lookup(const char *name) { return dlsym(RTLD_NEXT, name); }

static void hg_real_resolve(void) {
    hg_real.malloc = hg_real_lookup("malloc");
    hg_real.free = hg_real_lookup("free");
    hg_real.calloc = hg_real_lookup("calloc");
    hg_real.realloc = hg_real_lookup("realloc");
    hg_real.memalign = hg_real_lookup("memalign");
    hg_real.posix_memalign = hg_real_lookup("posix_memalign");
    hg_real.aligned_alloc = hg_real_lookup("aligned_alloc");
    hg_real.valloc = hg_real_lookup("valloc");
    hg_real.pvalloc = hg_real_lookup("pvalloc");
    hg_real.malloc_usable_size = hg_real_lookup("malloc_usable_size");
    hg_real.exit_now = hg_real_lookup("_exit");
    hg_real.pthread_exit = hg_real_lookup("pthread_exit");
    hg_real.close = hg_real_lookup("close");
    hg_real.close_range = hg_real_lookup("close_range");
    /* fcntl64 is glibc's fcntl with 64-bit locks (2.28); fcntl itself is the same on x86-64. */
    hg_real.fcntl = hg_real_lookup("fcntl64");
    if (hg_real.fcntl == NULL) hg_real.fcntl = hg_real_lookup("fcntl");
    hg_real.dup = hg_real_lookup("dup");
    hg_real.dup2 = hg_real_lookup("dup2");
    hg_real.dup3 = hg_real_lookup("dup3");
}

bool hg_real_resolve_once(void) {
    int expected = HG_REAL_UNRESOLVED;
    if (!atomic_compare_exchange_strong(&hg_real_state, &expected, HG_REAL_RESOLVING)) {
        /* Resolved meanwhile, or another thread (or dlsym on this one, recursing into
         * calloc) is resolving. */
        return expected == HG_REAL_RESOLVED;
    }
    hg_real_resolve();
    atomic_store_explicit(&hg_real_state, HG_REAL_RESOLVED, memory_order_release);
    return true;
}
