/*
 * bigheap.c - exit-time processing load for heapgate benchmarks.
 *
 * Usage: bigheap [BLOCKS]       (default 10000000)
 *   Allocates BLOCKS blocks of 64..136 bytes (about 100 on average, from a
 *   small LCG), keeps every pointer in one array and exits WITHOUT freeing
 *   anything: with the default that is about 1 GB of live heap in 10 M blocks
 *   (plus the 80 MB pointer array), all "in use at exit", all from one stack.
 * Output: one line with the number of blocks and bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void **blocks;

__attribute__((noinline)) static size_t fill(long n)
{
    unsigned int lcg = 2463534242u;
    size_t bytes = 0;
    for (long i = 0; i < n; i++) {
        lcg = lcg * 1103515245u + 12345u;
        size_t size = 64 + (lcg >> 16) % 73; /* 64..136, mean 100 */
        unsigned char *p = malloc(size);
        if (!p)
            return 0;
        p[0] = (unsigned char)i;          /* touch it: the heap is really resident */
        p[size - 1] = (unsigned char)size;
        blocks[i] = p;
        bytes += size;
    }
    return bytes;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 10000000L;
    if (n < 1) {
        fputs("usage: bigheap [BLOCKS]\n", stderr);
        return 2;
    }
    blocks = malloc((size_t)n * sizeof *blocks);
    if (!blocks)
        return 1;
    size_t bytes = fill(n);
    if (bytes == 0)
        return 1;
    printf("bigheap: %ld blocks, %zu bytes live at exit\n", n, bytes);
    return 0; /* no free: everything is still in use at exit */
}
