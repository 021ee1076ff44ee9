/*
 * The malloc family: the only symbols libheapgate.so exports besides _exit, _Exit and
 * pthread_exit (hg_lifecycle.c), unshare/setns (hg_namespaces.c), pipe/pipe2
 * (hg_unwind_readable.c), prctl/syscall (hg_sandbox.c), close, close_range, closefrom,
 * fcntl, fcntl64, dup, dup2 and dup3 (hg_descriptors.c) and the set*id family
 * (hg_credentials.c). Each entry point calls glibc, then records what happened.
 *
 * Ordering rule, which makes the rings' order a valid history of the heap (hg_ring.c):
 * a free is recorded *before* the memory goes back to glibc, an allocation *after* glibc
 * returned it. So no thread can be handed an address (and record its ALLOC) before the
 * FREE of the previous owner of that address is in a ring.
 *
 * Frames: the exported function holds its whole body (shared bodies are always-inline), and
 * hg_record, which it calls, unwinds from the entry point's registers at that call, read off
 * its own frame: a recorded stack is [<entry point>, program...], frame 0 being the entry
 * point (malloc, calloc, ...), as in memcheck's stacks. Every frame of the shim costs each
 * fresh unwind a step and each reused one a check, hence no other layer, and hg_record's own
 * frame is never unwound.
 * The Makefile builds the shim with -fno-optimize-sibling-calls: no entry point may turn its
 * call to hg_record into a jump, which would drop its frame.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "hg_internal.h"

HG_ALWAYS_INLINE bool hg_recording(void) {
    if (HG_UNLIKELY(hg_guard_depth != 0)) return false;
    int state = atomic_load_explicit(&hg_state, memory_order_relaxed);
    if (HG_UNLIKELY(state == HG_OFF)) {
        hg_lifecycle_start();
        state = atomic_load_explicit(&hg_state, memory_order_relaxed);
    }
    if (HG_UNLIKELY(state == HG_FINISHED)) hg_exit_hold_wait(); /* the process is exiting */
    return state == HG_RECORDING;
}

/* An allocation's event once several threads record: held back if it can be, and said first,
 * since a fork may cut this thread short in between (hg_in_flight.c). Behind one test, so that
 * a single-threaded program's allocations pay that test for all of this (inlined: out of line,
 * with the free's, the 8-thread churn took 1.118 of the build before instead of 1.016). */
HG_ALWAYS_INLINE void hg_record_among_threads(hg_event_kind_t kind, hg_stack_ref_t stack, void *ptr, size_t size,
                                                void *old_ptr) {
    bool said = hg_in_flight_pushing(kind, stack, (uintptr_t)ptr, size, (uintptr_t)old_ptr);
    if (kind != HG_EV_ALLOC || !hg_holdback_hold((uintptr_t)ptr, size, stack))
        hg_ring_push(kind, stack, (uintptr_t)ptr, size, (uintptr_t)old_ptr);
    if (said) hg_in_flight_pushed();
}

/* Records an allocation (ALLOC or REALLOC) with its stack, unwound from this function's
 * caller (see the top of the file). errno is the program's: the unwinder and dl_iterate_phdr
 * may change it, so it is put back around them (a stack seen before and the ring push make
 * no system call that can fail; a push that maps ring pages keeps errno itself); the guard
 * keeps their own allocations unrecorded, and a signal handler's out of the thread's state. */
static HG_NOINLINE void hg_record(hg_event_kind_t kind, void *ptr, size_t size, void *old_ptr) {
    hg_guard_depth++;
    /* __builtin_frame_address makes this function keep a frame pointer, so its frame holds
     * the entry point's RBP and return address, and its CFA (the frame + 16) is the entry
     * point's stack pointer at the call: the state a DWARF step from here would give. */
    const uintptr_t *frame = __builtin_frame_address(0);
    hg_regs_t entry = {.ip = frame[1], .sp = (uintptr_t)(frame + 2), .rbp = frame[0]};
    uint32_t depth;
    hg_stack_ref_t stack = hg_stacks_seen_first ? hg_seen_find(&entry, &depth) : 0;
    if (stack == 0) {
        int saved_errno = errno;
        stack = hg_stacks_capture(&entry);
        errno = saved_errno;
    }
    if (HG_LIKELY(!hg_ring_routes_to_shared()))
        hg_ring_push(kind, stack, (uintptr_t)ptr, size, (uintptr_t)old_ptr);
    else
        hg_record_among_threads(kind, stack, ptr, size, old_ptr);
    hg_guard_depth--;
}

/* Records a FREE or REALLOC_FREE: no stack, and the ring push neither allocates nor touches
 * errno (on a full ring it only yields), so neither the guard nor errno needs saving. Half of
 * all events are frees: this path is a third of hg_record's. */
HG_ALWAYS_INLINE void hg_record_free(hg_event_kind_t kind, void *ptr) { hg_ring_push(kind, 0, (uintptr_t)ptr, 0, 0); }

/* What frees do once several threads have recorded (or blocks are held back: a fork child's
 * inherited table): a block held back from the ring (hg_holdback.c) is taken out instead of
 * freed in the trace, or, for a realloc, its ALLOC is pushed first. */
HG_ALWAYS_INLINE void hg_record_free_among_threads(hg_event_kind_t kind, void *ptr) {
    if (kind == HG_EV_FREE) {
        if (hg_holdback_cancel((uintptr_t)ptr)) {
            hg_holdback_waited();
            return;
        }
    } else {
        hg_holdback_release((uintptr_t)ptr);
    }
    hg_record_free(kind, ptr);
    hg_holdback_waited();
}

HG_ALWAYS_INLINE void *hg_malloc_body(size_t size) {
    if (HG_UNLIKELY(!hg_real_ready())) return hg_bootstrap_alloc(size, 16);
    void *ptr = hg_real.malloc(size);
    if (ptr && hg_recording()) hg_record(HG_EV_ALLOC, ptr, size, NULL);
    return ptr;
}

/** Interposes malloc(3). */
HG_EXPORT void *malloc(size_t size) { return hg_malloc_body(size); }

/* free(NULL)s that reached this thread's shim: how hg_foreign_allocator.c tells a program's
 * malloc wrapper (which goes on to the shim) from an allocator (which does not). */
__thread unsigned hg_null_frees __attribute__((tls_model("initial-exec")));

/* Whether a free must look for its block among those held back, and say what it does while a
 * fork may cut it short: once several threads record, or blocks are held back. */
HG_ALWAYS_INLINE bool hg_frees_need_care(void) { return hg_holdback_in_use() || hg_ring_routes_to_shared(); }

/* The free is said under way (hg_in_flight.c) until glibc has made it, from before the
 * recording state is asked: a fork may cut this thread short in between, and an exit that
 * finds it under way takes its block out of the live set, where it would otherwise stay
 * unreferenced if the FREE reached the ring after the exit's last look (1 run in 40 of
 * exit_while_allocating had such a block definitely lost). */
HG_ALWAYS_INLINE void hg_free_among_threads(void *ptr) {
    hg_in_flight_free_begin((uintptr_t)ptr);
    if (hg_recording()) hg_record_free_among_threads(HG_EV_FREE, ptr);
    hg_real.free(ptr);
    hg_in_flight_free_end();
}

HG_ALWAYS_INLINE void hg_free_body(void *ptr) {
    if (HG_UNLIKELY(ptr == NULL)) {
        hg_null_frees++;
        return;
    }
    if (hg_bootstrap_owns(ptr) || hg_foreign_holds(ptr)) return;
    if (HG_UNLIKELY(hg_frees_need_care())) {
        hg_free_among_threads(ptr);
        return;
    }
    if (hg_recording()) hg_record_free(HG_EV_FREE, ptr);
    hg_real.free(ptr);
}

/** Interposes free(3). */
HG_EXPORT void free(void *ptr) { hg_free_body(ptr); }

/** Interposes calloc(3). */
HG_EXPORT void *calloc(size_t count, size_t size) {
    if (HG_UNLIKELY(!hg_real_ready())) {
        size_t total;
        if (__builtin_mul_overflow(count, size, &total)) return NULL;
        return hg_bootstrap_alloc(total, 16); /* static storage: zeroed */
    }
    void *ptr = hg_real.calloc(count, size); /* glibc checks the overflow and sets ENOMEM */
    if (ptr && hg_recording()) hg_record(HG_EV_ALLOC, ptr, count * size, NULL);
    return ptr;
}

/* realloc out of the bootstrap arena: the old block stays (the arena never reuses). */
static void *hg_realloc_from_bootstrap(void *ptr, size_t size) {
    void *fresh = hg_malloc_body(size);
    if (fresh) {
        size_t old = hg_bootstrap_usable_size(ptr);
        memcpy(fresh, ptr, old < size ? old : size);
    }
    return fresh;
}

/* A realloc is recorded as the FREE of the old block (before glibc may hand its address to
 * another thread) and an ALLOC of the result that names the old block (REALLOC), or, if
 * glibc refused, a REALLOC with a null result that gives the old block back. */
HG_ALWAYS_INLINE void *hg_realloc_body(void *ptr, size_t size) {
    if (HG_UNLIKELY(!hg_real_ready())) return hg_realloc_from_bootstrap(ptr, size);
    if (ptr == NULL) {
        void *fresh = hg_real.malloc(size);
        if (fresh && hg_recording()) hg_record(HG_EV_ALLOC, fresh, size, NULL);
        return fresh;
    }
    if (hg_bootstrap_owns(ptr)) return hg_realloc_from_bootstrap(ptr, size);
    if (hg_foreign_holds(ptr)) {
        /* A block of the allocator glibc's replaced (hg_foreign_allocator.c): copied out, and
         * left to it, as its free would be. glibc's realloc(p, 0) frees p and returns NULL. */
        if (size == 0) return NULL;
        void *fresh = hg_real.malloc(size);
        if (fresh) {
            hg_foreign_copy_out(fresh, ptr, size);
            if (hg_recording()) hg_record(HG_EV_ALLOC, fresh, size, NULL);
        }
        return fresh;
    }
    bool care = HG_UNLIKELY(hg_frees_need_care());
    if (care) hg_in_flight_free_begin((uintptr_t)ptr); /* as hg_free_among_threads */
    bool recording = hg_recording();
    if (recording && care) {
        hg_in_flight_realloc_begin((uintptr_t)ptr); /* for an exit meanwhile */
        hg_record_free_among_threads(HG_EV_REALLOC_FREE, ptr);
    } else if (recording) {
        hg_record_free(HG_EV_REALLOC_FREE, ptr);
    }
    void *fresh = hg_real.realloc(ptr, size);
    if (care) hg_in_flight_free_end();
    if (recording && (fresh != NULL || size != 0)) hg_record(HG_EV_REALLOC, fresh, size, ptr);
    if (recording && care) hg_in_flight_realloc_end();
    return fresh;
}

/** Interposes realloc(3). */
HG_EXPORT void *realloc(void *ptr, size_t size) { return hg_realloc_body(ptr, size); }

/** Interposes reallocarray(3). */
HG_EXPORT void *reallocarray(void *ptr, size_t count, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return hg_realloc_body(ptr, total);
}

HG_ALWAYS_INLINE void *hg_aligned_body(void *ptr, size_t size) {
    if (ptr && hg_recording()) hg_record(HG_EV_ALLOC, ptr, size, NULL);
    return ptr;
}

/** Interposes posix_memalign(3). */
HG_EXPORT int posix_memalign(void **out, size_t alignment, size_t size) {
    if (HG_UNLIKELY(!hg_real_ready())) {
        void *ptr = hg_bootstrap_alloc(size, alignment);
        if (!ptr) return ENOMEM;
        *out = ptr;
        return 0;
    }
    int error = hg_real.posix_memalign(out, alignment, size);
    if (error == 0) hg_aligned_body(*out, size);
    return error;
}

/** Interposes aligned_alloc(3). */
HG_EXPORT void *aligned_alloc(size_t alignment, size_t size) {
    if (HG_UNLIKELY(!hg_real_ready())) return hg_bootstrap_alloc(size, alignment);
    return hg_aligned_body(hg_real.aligned_alloc(alignment, size), size);
}

/** Interposes memalign(3). */
HG_EXPORT void *memalign(size_t alignment, size_t size) {
    if (HG_UNLIKELY(!hg_real_ready())) return hg_bootstrap_alloc(size, alignment);
    return hg_aligned_body(hg_real.memalign(alignment, size), size);
}

/** Interposes valloc(3). */
HG_EXPORT void *valloc(size_t size) {
    if (HG_UNLIKELY(!hg_real_ready())) return hg_bootstrap_alloc(size, 4096);
    return hg_aligned_body(hg_real.valloc(size), size);
}

/** Interposes pvalloc(3). */
HG_EXPORT void *pvalloc(size_t size) {
    if (HG_UNLIKELY(!hg_real_ready())) return hg_bootstrap_alloc(size, 4096);
    /* memcheck counts pvalloc as the page-rounded size it hands out. */
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t rounded = (size + page - 1) & ~(page - 1);
    return hg_aligned_body(hg_real.pvalloc(size), rounded);
}

HG_ALWAYS_INLINE size_t hg_usable_size_body(const void *ptr) {
    if (ptr == NULL) return 0;
    if (hg_bootstrap_owns(ptr)) return hg_bootstrap_usable_size(ptr);
    if (HG_UNLIKELY(!hg_real_ready()) || hg_foreign_holds(ptr)) return 0; /* the replaced allocator's: size unknown */
    return hg_real.malloc_usable_size((void *)ptr);
}

/** Interposes malloc_usable_size(3). */
HG_EXPORT size_t malloc_usable_size(void *ptr) { return hg_usable_size_body(ptr); }

/* jemalloc's extended entry points, for a replaced allocator that defines them
 * (hg_foreign_allocator.c): its program may call them directly, and hand them blocks that are
 * glibc's now. Hidden (the build's default): only the jumps written into that allocator reach
 * them. In the flags, the low 6 bits are log2 of the alignment and 0x40 asks for zeroed
 * memory; the thread-cache and arena bits mean nothing to glibc. */
#define HG_MALLOCX_ALIGNMENT(flags) ((flags) & 0x3f ? (size_t)1 << ((flags) & 0x3f) : (size_t)16)
#define HG_MALLOCX_ZERO 0x40

HG_ALWAYS_INLINE void *hg_mallocx_body(size_t size, int flags) {
    size_t alignment = HG_MALLOCX_ALIGNMENT(flags);
    if (HG_UNLIKELY(!hg_real_ready())) return hg_bootstrap_alloc(size, alignment); /* zeroed */
    void *ptr = alignment > 16 ? hg_real.memalign(alignment, size) : hg_real.malloc(size);
    if (ptr && (flags & HG_MALLOCX_ZERO)) memset(ptr, 0, size);
    if (ptr && hg_recording()) hg_record(HG_EV_ALLOC, ptr, size, NULL);
    return ptr;
}

void *mallocx(size_t size, int flags) { return hg_mallocx_body(size, flags); }

void *rallocx(void *ptr, size_t size, int flags) {
    if (HG_MALLOCX_ALIGNMENT(flags) <= 16 && !(flags & HG_MALLOCX_ZERO)) return hg_realloc_body(ptr, size);
    /* A stricter alignment or zeroed growth, which glibc's realloc does not give: a new block. */
    void *fresh = hg_mallocx_body(size, flags | HG_MALLOCX_ZERO);
    if (fresh == NULL) return NULL;
    if (hg_foreign_holds(ptr)) {
        hg_foreign_copy_out(fresh, ptr, size);
    } else {
        size_t old = hg_usable_size_body(ptr);
        memcpy(fresh, ptr, old < size ? old : size);
    }
    hg_free_body(ptr);
    return fresh;
}

size_t xallocx(void *ptr, size_t size, size_t extra, int flags) { return hg_usable_size_body(ptr); } /* never in place */
size_t sallocx(const void *ptr, int flags) { return hg_usable_size_body(ptr); }
size_t nallocx(size_t size, int flags) { return size; }
void dallocx(void *ptr, int flags) { hg_free_body(ptr); }
void sdallocx(void *ptr, size_t size, int flags) { hg_free_body(ptr); }
void free_sized(void *ptr, size_t size) { hg_free_body(ptr); }
void free_aligned_sized(void *ptr, size_t alignment, size_t size) { hg_free_body(ptr); }

/* The addresses of the entry points above, by name. Taking &malloc would give the definition
 * ld.so bound, the replaced allocator's when another object defines malloc first. */
#if __has_attribute(copy)
#define HG_OWN(name) extern __typeof(name) hg_own_##name __attribute__((alias(#name), copy(name), visibility("hidden")))
#else
#define HG_OWN(name) extern __typeof(name) hg_own_##name __attribute__((alias(#name), visibility("hidden")))
#endif
HG_OWN(malloc);
HG_OWN(free);
HG_OWN(calloc);
HG_OWN(realloc);
HG_OWN(reallocarray);
HG_OWN(posix_memalign);
HG_OWN(aligned_alloc);
HG_OWN(memalign);
HG_OWN(valloc);
HG_OWN(pvalloc);
HG_OWN(malloc_usable_size);

const hg_entry_point_t hg_entry_points[] = {
    {"malloc", hg_own_malloc},
    {"free", hg_own_free},
    {"calloc", hg_own_calloc},
    {"realloc", hg_own_realloc},
    {"reallocarray", hg_own_reallocarray},
    {"posix_memalign", hg_own_posix_memalign},
    {"aligned_alloc", hg_own_aligned_alloc},
    {"memalign", hg_own_memalign},
    {"valloc", hg_own_valloc},
    {"pvalloc", hg_own_pvalloc},
    {"malloc_usable_size", hg_own_malloc_usable_size},
    {NULL, NULL},
    /* Not exported, and looked up in the replaced allocator's symbol table. */
    {"mallocx", mallocx},
    {"rallocx", rallocx},
    {"xallocx", xallocx},
    {"sallocx", sallocx},
    {"nallocx", nallocx},
    {"dallocx", dallocx},
    {"sdallocx", sdallocx},
    {"free_sized", free_sized},
    {"free_aligned_sized", free_aligned_sized},
    /* glibc's internal names, which jemalloc and tcmalloc define too, for callers that use them. */
    {"__libc_malloc", hg_own_malloc},
    {"__libc_free", hg_own_free},
    {"__libc_calloc", hg_own_calloc},
    {"__libc_realloc", hg_own_realloc},
    {"__libc_memalign", hg_own_memalign},
    {"__libc_valloc", hg_own_valloc},
    {"__libc_pvalloc", hg_own_pvalloc},
    {"__posix_memalign", hg_own_posix_memalign},
    {NULL, NULL},
};
