/*
 * many_stacks.c - more distinct allocation stacks than heapgate is allowed to keep.
 *
 * descend(d) recurses d levels, then allocates 16 bytes: every depth is a stack of its own
 * (malloc, descend × (d + 1), main: line 39). Two passes over the depths 1 to 40:
 *   pass 1: leaks one 16-byte block per depth (40 blocks, 640 bytes, 40 distinct stacks);
 *   pass 2: allocates one 16-byte block per depth again, from the same stacks, and frees it.
 * 80 allocs, 40 frees, 1,280 bytes allocated; 640 bytes in 40 blocks definitely lost.
 * Under HEAPGATE_MAX_STACKS=10 only the first 10 stacks (depths 1 to 10) are kept: the
 * blocks of depths 11 to 40 are recorded without a stack in both passes, 60 allocations,
 * and the 30 leaked ones (480 bytes) make one loss record with no frames.
 * No stdio (it would allocate); exit status 0.
 */
#include <stdlib.h>
#include <string.h>

#define NOINLINE __attribute__((noinline))
#define KEEP(p) __asm__ volatile("" : : "g"(p) : "memory")

NOINLINE void *descend(int depth)
{
    if (depth == 0) {
        void *p = malloc(16);
        memset(p, 0, 16);
        return p;
    }
    void *p = descend(depth - 1);
    KEEP(p);
    return p;
}

/* volatile: with a constant the compiler unrolled the two passes into two call sites */
static volatile int passes = 2;

int main(void)
{
    for (int pass = 1; pass <= passes; pass++)
        for (int depth = 1; depth <= 40; depth++) {
            void *p = descend(depth); /* one call site: pass 2's stacks are pass 1's */
            KEEP(p);
            if (pass == 2) free(p);
        }
    return 0;
}
