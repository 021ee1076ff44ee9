/*
 * The work behind each interposed entry point: call glibc, then record what happened.
 *
 * Ordering rule, which makes the single ring's order a valid history of the heap:
 * a free is recorded *before* the memory goes back to glibc, an allocation *after* glibc
 * returned it. So no thread can be handed an address (and record its ALLOC) before the
 * FREE of the previous owner of that address is in the ring.
 *
 * The frames of these functions are part of every recorded stack's prefix: hg_stacks.c
 * skips exactly [hg_stacks_capture, hg_record, hg_<entry>], so frame 0 is the exported
 * entry point. Hence the NOINLINE on every hg_<entry> and the shared always-inline bodies.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "hg_internal.h"

#define HG_ALWAYS_INLINE static inline __attribute__((always_inline))

HG_ALWAYS_INLINE bool hg_recording(void) {
    if (HG_UNLIKELY(hg_guard_depth != 0)) return false;
    int state = atomic_load_explicit(&hg_state, memory_order_relaxed);
    if (HG_UNLIKELY(state == HG_OFF)) {
        hg_lifecycle_start();
        state = atomic_load_explicit(&hg_state, memory_order_relaxed);
    }
    return state == HG_RECORDING;
}

/* Records one event; captures the stack for allocations. errno is the program's: the
 * unwinder and dl_iterate_phdr may change it, so it is put back. */
static HG_NOINLINE void hg_record(hg_event_kind_t kind, void *ptr, size_t size, void *old_ptr) {
    int saved_errno = errno;
    hg_guard_depth++;
    hg_event_t event = {
        .kind = kind,
        .ptr = (uintptr_t)ptr,
        .size = size,
        .old_ptr = (uintptr_t)old_ptr,
        .stack = 0,
    };
    if (kind == HG_EV_ALLOC || kind == HG_EV_REALLOC) event.stack = hg_stacks_capture();
    hg_ring_push(&event);
    hg_guard_depth--;
    errno = saved_errno;
}

HG_NOINLINE void *hg_malloc(size_t size) {
    if (HG_UNLIKELY(!hg_real_ready())) return hg_bootstrap_alloc(size, 16);
    void *ptr = hg_real.malloc(size);
    if (ptr && hg_recording()) hg_record(HG_EV_ALLOC, ptr, size, NULL);
    return ptr;
}

HG_NOINLINE void hg_free(void *ptr) {
    if (ptr == NULL || hg_bootstrap_owns(ptr)) return;
    if (hg_recording()) hg_record(HG_EV_FREE, ptr, 0, NULL);
    hg_real.free(ptr);
}

HG_NOINLINE void *hg_calloc(size_t count, size_t size) {
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
    void *fresh = hg_malloc(size);
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
    bool recording = hg_recording();
    if (recording) hg_record(HG_EV_REALLOC_FREE, ptr, 0, NULL);
    void *fresh = hg_real.realloc(ptr, size);
    if (recording && (fresh != NULL || size != 0)) hg_record(HG_EV_REALLOC, fresh, size, ptr);
    return fresh;
}

HG_NOINLINE void *hg_realloc(void *ptr, size_t size) { return hg_realloc_body(ptr, size); }

HG_NOINLINE void *hg_reallocarray(void *ptr, size_t count, size_t size) {
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

HG_NOINLINE int hg_posix_memalign(void **out, size_t alignment, size_t size) {
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

HG_NOINLINE void *hg_aligned_alloc(size_t alignment, size_t size) {
    if (HG_UNLIKELY(!hg_real_ready())) return hg_bootstrap_alloc(size, alignment);
    return hg_aligned_body(hg_real.aligned_alloc(alignment, size), size);
}

HG_NOINLINE void *hg_memalign(size_t alignment, size_t size) {
    if (HG_UNLIKELY(!hg_real_ready())) return hg_bootstrap_alloc(size, alignment);
    return hg_aligned_body(hg_real.memalign(alignment, size), size);
}

HG_NOINLINE void *hg_valloc(size_t size) {
    if (HG_UNLIKELY(!hg_real_ready())) return hg_bootstrap_alloc(size, 4096);
    return hg_aligned_body(hg_real.valloc(size), size);
}

HG_NOINLINE void *hg_pvalloc(size_t size) {
    if (HG_UNLIKELY(!hg_real_ready())) return hg_bootstrap_alloc(size, 4096);
    /* memcheck counts pvalloc as the page-rounded size it hands out. */
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t rounded = (size + page - 1) & ~(page - 1);
    return hg_aligned_body(hg_real.pvalloc(size), rounded);
}

HG_NOINLINE size_t hg_malloc_usable_size(void *ptr) {
    if (ptr == NULL) return 0;
    if (hg_bootstrap_owns(ptr)) return hg_bootstrap_usable_size(ptr);
    if (HG_UNLIKELY(!hg_real_ready())) return 0;
    return hg_real.malloc_usable_size(ptr);
}
