/*
 * record_order.c - loss records of equal size, in memcheck's order (output: record_order).
 *
 * memcheck sorts loss records by total bytes, then by kind (still reachable, possibly lost,
 * indirectly lost, definitely lost), then by blocks (mc_leakcheck.c, cmp_LossRecords).
 * Every record here totals 48 bytes:
 *
 *   kept_block   2 x 24 B from one call site, pointers in the  still reachable, 2 blocks
 *                global g_kept:
 *   interior     48 B, only p + 8 kept in g_interior (zeroed,  possibly lost, 1 block
 *                so no heuristic applies)
 *   lost_one     48 B, pointer dropped:                        definitely lost, 1 block
 *
 * memcheck numbers them 1 kept_block, 2 interior, 3 lost_one (the reachable record first,
 * although it has more blocks). No stdio; main scrubs the dead stack before it returns.
 * Exit status 0.
 */
#include <stdlib.h>
#include <string.h>

#define KEEP(p) __asm__ volatile("" : : "r"(p) : "memory")

void *volatile g_kept[2];
char *volatile g_interior;

__attribute__((noinline)) void *kept_block(void)
{
    return malloc(24);
}

__attribute__((noinline)) void kept_pair(void)
{
    for (volatile int i = 0; i < 2; i++) g_kept[i] = kept_block(); /* one call site: one record */
}

__attribute__((noinline)) void interior(void)
{
    char *p = calloc(1, 48);
    g_interior = p + 8;
}

__attribute__((noinline)) void lost_one(void)
{
    KEEP(malloc(48));
}

__attribute__((noinline)) void scrub_stack(void)
{
    char pad[16384];
    memset(pad, 0, sizeof pad);
    KEEP(pad);
}

int main(void)
{
    lost_one();
    interior();
    kept_pair();
    scrub_stack();
    return 0;
}
