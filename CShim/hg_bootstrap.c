/*
 * The bootstrap arena: dlsym(RTLD_NEXT, ...) may call calloc before the real allocator is
 * known. Those requests get memory from this static bump arena. It is never reused; free
 * recognises its pointers by address and ignores them, and realloc copies out of it.
 */
#include <string.h>

#include "hg_internal.h"

/* Each block is preceded by its size so malloc_usable_size and realloc can answer. The
 * header lives inside the arena, which is ours: no user block ever gets a header. */
_Alignas(64) unsigned char hg_bootstrap_arena[HG_BOOTSTRAP_BYTES];
static _Atomic size_t hg_bootstrap_used;

void *hg_bootstrap_alloc(size_t size, size_t alignment) {
    if (alignment < 16) alignment = 16;
    if (size > HG_BOOTSTRAP_BYTES) return NULL;
    size_t start = atomic_load_explicit(&hg_bootstrap_used, memory_order_relaxed);
    for (;;) {
        size_t user = (start + sizeof(size_t) + alignment - 1) & ~(alignment - 1);
        size_t end = user + size;
        if (end > HG_BOOTSTRAP_BYTES) return NULL;
        if (atomic_compare_exchange_weak(&hg_bootstrap_used, &start, end)) {
            memcpy(hg_bootstrap_arena + user - sizeof(size_t), &size, sizeof size);
            return hg_bootstrap_arena + user; /* static storage: already zeroed, never reused */
        }
    }
}

size_t hg_bootstrap_usable_size(const void *ptr) {
    size_t size;
    memcpy(&size, (const unsigned char *)ptr - sizeof(size_t), sizeof size);
    return size;
}
