/* A program with its own allocator linked in, as rustc links jemalloc: it defines malloc and
 * the rest of the family, so ld.so binds every caller's malloc to these, ahead of any
 * preload. heapgate replaces them with glibc's (as memcheck replaces them with its own).
 *
 * Built three ways (scripts/build-fixtures.sh):
 *   own_allocator          the allocator alone
 *   own_allocator_early    also linked with libearly.so, whose constructor allocates before
 *                          heapgate starts; the program then frees and reallocs those blocks
 *   own_allocator_jemalloc also defines jemalloc's mallocx and sdallocx and glibc's internal
 *                          name __libc_free (as jemalloc does), and calls them: they would be
 *                          handed glibc's blocks, so heapgate replaces them too
 *   own_allocator_early_sbrk  the same, its allocator taking memory with sbrk: glibc's heap starts where it stopped,
 *                          inside the last page it used
 *   own_allocator_mimalloc also defines mimalloc's mi_free, which heapgate has no stand-in
 *                          for: it must leave the allocator in place, and say so
 *   own_allocator_stripped without a symbol table: heapgate cannot check it for such entry
 *                          points, and leaves it in place
 *
 * What is left at exit: 40 bytes definitely lost (leak_forty), 128 definitely lost (an
 * aligned block, leak_aligned), 24 still reachable (calloc, kept) and 30 still reachable
 * (realloc'd, kept_grown); plus, for own_allocator_early, the 4,000-byte realloc of an early
 * block, still reachable from libearly's global; for own_allocator_jemalloc, 32 bytes
 * definitely lost (leak_mallocx). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#ifdef WITH_EARLY
char *early_grow(void);
#endif

/* ---- the allocator: a bump arena, each block after a 16-byte header holding its size ---- */
#ifdef WITH_SBRK
#include <unistd.h>
static unsigned char *arena;
static size_t arena_used;
#else
static unsigned char arena[16 << 20] __attribute__((aligned(64)));
static size_t arena_used;
#endif
static size_t arena_frees;

static void *arena_take(size_t alignment, size_t size) {
#ifdef WITH_SBRK
    /* The arena grows with the break, 64 bytes past its last block at most: never to a page end. */
    if (arena == NULL) arena = sbrk(0);
    size_t start = (arena_used + 16 + alignment - 1) & ~(alignment - 1);
    if (size > (1u << 30) || sbrk((intptr_t)(start + size + 64 - ((unsigned char *)sbrk(0) - arena))) == (void *)-1) {
        errno = ENOMEM;
        return NULL;
    }
#else
    size_t start = (arena_used + 16 + alignment - 1) & ~(alignment - 1);
    if (size > sizeof arena || start + size > sizeof arena) {
        errno = ENOMEM;
        return NULL;
    }
#endif
    arena_used = start + size;
    memcpy(arena + start - 16, &size, sizeof size);
    return arena + start;
}

void *malloc(size_t size) { return arena_take(16, size); }
void free(void *ptr) {
    if (ptr) arena_frees++; /* never reused: a bump arena */
}
void *calloc(size_t count, size_t size) {
    if (size && count > SIZE_MAX / size) return NULL;
    return arena_take(16, count * size); /* the arena is zero and never reused */
}
size_t malloc_usable_size(void *ptr) {
    size_t size = 0;
    if (ptr) memcpy(&size, (unsigned char *)ptr - 16, sizeof size);
    return size;
}
void *realloc(void *ptr, size_t size) {
    void *fresh = arena_take(16, size);
    if (fresh && ptr) {
        size_t old = malloc_usable_size(ptr);
        memcpy(fresh, ptr, old < size ? old : size);
        free(ptr);
    }
    return fresh;
}
int posix_memalign(void **out, size_t alignment, size_t size) {
    void *ptr = arena_take(alignment < 16 ? 16 : alignment, size);
    if (!ptr) return ENOMEM;
    *out = ptr;
    return 0;
}
void *aligned_alloc(size_t alignment, size_t size) { return arena_take(alignment < 16 ? 16 : alignment, size); }
void *memalign(size_t alignment, size_t size) { return arena_take(alignment < 16 ? 16 : alignment, size); }
void *valloc(size_t size) { return arena_take(4096, size); }
#ifdef WITH_JEMALLOC_API
void *mallocx(size_t size, int flags) {
    void *ptr = arena_take((size_t)1 << (flags & 0x3f), size);
    if (ptr && (flags & 0x40)) memset(ptr, 0, size);
    return ptr;
}
void sdallocx(void *ptr, size_t size, int flags) {
    (void)size;
    (void)flags;
    free(ptr);
}
void __libc_free(void *ptr) {
    if (ptr) arena_frees += 2; /* not free's code: a separate entry point to replace */
}
#endif
#ifdef WITH_MIMALLOC_API
void mi_free(void *ptr) { free(ptr); }
#endif

/* ---- the program ---- */
void *kept, *kept_grown;

/* Stored here and then forgotten, so that the compiler cannot drop an unused malloc. */
void *volatile last_block;

static __attribute__((noinline)) void leak_forty(void) {
    char *block = malloc(40);
    strcpy(block, "forty bytes, then forgotten");
    last_block = block;
    last_block = NULL;
}

static __attribute__((noinline)) void leak_aligned(void) {
    void *block;
    if (posix_memalign(&block, 64, 128) == 0) memset(block, 1, 128);
}

#ifdef WITH_JEMALLOC_API
static __attribute__((noinline)) void leak_mallocx(void) {
    void *aligned = mallocx(48, 6); /* 64-byte aligned */
    if ((uintptr_t)aligned % 64 != 0) puts("mallocx: misaligned");
    sdallocx(aligned, 48, 0);
    last_block = mallocx(32, 0x40); /* zeroed */
    last_block = NULL;
    __libc_free(malloc(16));
}
#endif

int main(void) {
    leak_forty();
#ifdef WITH_JEMALLOC_API
    leak_mallocx();
#endif
    leak_aligned();
    kept = calloc(3, 8);
    char *scratch = malloc(64);
    strcpy(scratch, "scratch");
    free(scratch);
    kept_grown = malloc(10);
    strcpy(kept_grown, "grown");
    kept_grown = realloc(kept_grown, 30);
#ifdef WITH_EARLY
    const char *early = early_grow();
    printf("early block: %s\n", early);
#endif
    printf("own allocator: %s\n", (char *)kept_grown);
    return 0;
}
