/* A program with an allocator of its own under other names, as mimalloc's mi_malloc and
 * mi_free (Rust programs link jemalloc as _rjem_malloc the same way): its blocks are not
 * malloc's, so heapgate does not see them, and must say so. It leaks 64 bytes from mi_malloc
 * (unseen) and 24 from malloc (definitely lost). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned char arena[1 << 16] __attribute__((aligned(16)));
static size_t arena_used;

__attribute__((noinline)) void *mi_malloc(size_t size) {
    size_t start = (arena_used + 15) & ~(size_t)15;
    if (start + size > sizeof arena) return NULL;
    arena_used = start + size;
    return arena + start;
}

__attribute__((noinline)) void mi_free(void *ptr) { (void)ptr; }

void *volatile last_block;

int main(void) {
    last_block = mi_malloc(64);
    last_block = malloc(24);
    memset(last_block, 1, 24);
    last_block = NULL;
    void *kept = mi_malloc(8);
    mi_free(kept);
    puts("prefixed allocator: done");
    return 0;
}
