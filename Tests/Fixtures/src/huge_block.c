/*
 * huge_block.c - blocks whose sizes do not fit in 32 bits.
 *
 * hold_huge() keeps a 4 GiB + 16 byte block in a global (still reachable at exit);
 * shrink_huge() allocates 4 GiB + 32 bytes, reallocs it down to 48 bytes and frees it.
 * Neither block is ever written, so on Linux's default overcommit they cost address
 * space, not memory. Expected: 4,294,967,312 bytes in 1 block in use at exit,
 * 3 allocs, 2 frees, 8,589,934,688 bytes allocated.
 * Exit status 0, or 77 when the system refuses the allocations. Output: none.
 */
#include <stdlib.h>

#define GIB4 ((size_t)4 << 30)

void *held;

__attribute__((noinline)) static int hold_huge(void)
{
    held = malloc(GIB4 + 16);
    return held != NULL;
}

__attribute__((noinline)) static int shrink_huge(void)
{
    void *block = malloc(GIB4 + 32);
    if (block == NULL) return 0;
    void *smaller = realloc(block, 48);
    if (smaller == NULL) return 0;
    free(smaller);
    return 1;
}

int main(void)
{
    if (!hold_huge() || !shrink_huge()) return 77;
    return 0;
}
