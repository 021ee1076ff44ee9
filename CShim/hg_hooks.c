/*
 * The malloc family: the only symbols libheapgate.so exports besides _exit, _Exit and
 * pthread_exit (hg_lifecycle.c), unshare/setns (hg_namespaces.c), pipe/pipe2
 * (hg_unwind_pipe.c) and prctl/syscall (hg_sandbox.c). Each entry point calls glibc, then
 * records what happened.
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
    return state == HG_RECORDING;
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
    hg_ring_push(kind, stack, (uintptr_t)ptr, size, (uintptr_t)old_ptr);
    hg_guard_depth--;
}

/* Records a FREE or REALLOC_FREE: no stack, and the ring push neither allocates nor touches
 * errno (on a full ring it only yields), so neither the guard nor errno needs saving. Half of
 * all events are frees: this path is a third of hg_record's. */
HG_ALWAYS_INLINE void hg_record_free(hg_event_kind_t kind, void *ptr) { hg_ring_push(kind, 0, (uintptr_t)ptr, 0, 0); }

HG_ALWAYS_INLINE void *hg_malloc_body(size_t size) {
    if (HG_UNLIKELY(!hg_real_ready())) return hg_bootstrap_alloc(size, 16);
    void *ptr = hg_real.malloc(size);
    if (ptr && hg_recording()) hg_record(HG_EV_ALLOC, ptr, size, NULL);
    return ptr;
}

/** Interposes malloc(3). */
HG_EXPORT void *malloc(size_t size) { return hg_malloc_body(size); }

/** Interposes free(3). */
HG_EXPORT void free(void *ptr) {
    if (ptr == NULL || hg_bootstrap_owns(ptr)) return;
    if (hg_recording()) hg_record_free(HG_EV_FREE, ptr);
    hg_real.free(ptr);
}

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
    bool recording = hg_recording();
    if (recording) hg_record_free(HG_EV_REALLOC_FREE, ptr);
    void *fresh = hg_real.realloc(ptr, size);
    if (recording && (fresh != NULL || size != 0)) hg_record(HG_EV_REALLOC, fresh, size, ptr);
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

/** Interposes malloc_usable_size(3). */
HG_EXPORT size_t malloc_usable_size(void *ptr) {
    if (ptr == NULL) return 0;
    if (hg_bootstrap_owns(ptr)) return hg_bootstrap_usable_size(ptr);
    if (HG_UNLIKELY(!hg_real_ready())) return 0;
    return hg_real.malloc_usable_size(ptr);
}
