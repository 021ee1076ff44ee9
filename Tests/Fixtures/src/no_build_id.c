/*
 * no_build_id.c - a program linked without a GNU build id, and a rebuild of it (outputs:
 * no_build_id, no_build_id_rebuilt).
 *
 * Linked with -Wl,--build-id=none, as clang links by default where it was not configured to
 * ask for one (the Swift toolchain's clang, upstream LLVM builds). The trace then has no
 * build id to tell this file from another put at its path later.
 *
 *   no_build_id          leaks 40 B from lost_block (called from main): definitely lost.
 *   no_build_id_rebuilt  the same source with -DREBUILT: other functions, longer, in front,
 *                        so the first build's return addresses fall inside them; leaks 24 B
 *                        from rebuilt_leak.
 *
 * A test runs no_build_id, puts no_build_id_rebuilt at its path, and reads the trace: the
 * frames must not be named after the rebuild's functions (SummaryInputTests). No stdio.
 * Exit status 0.
 */
#include <stdlib.h>

#define KEEP(p) __asm__ volatile("" : : "r"(p) : "memory")

#ifdef REBUILT
volatile unsigned g_mix;

__attribute__((noinline)) unsigned mix_in(unsigned x)
{
    for (unsigned i = 0; i < x; i++) g_mix = g_mix * 31u + i * 7u + (g_mix >> 3) + (x ^ i);
    for (unsigned i = 0; i < x; i++) g_mix = g_mix * 17u + i * 13u + (g_mix >> 5) + (x | i);
    for (unsigned i = 0; i < x; i++) g_mix = g_mix * 11u + i * 19u + (g_mix >> 7) + (x & i);
    return g_mix;
}

__attribute__((noinline)) void *rebuilt_leak(void)
{
    return malloc(24);
}

int main(void)
{
    void *p = rebuilt_leak();
    KEEP(p);
    p = 0;
    return (int)(mix_in(3) & 0);
}
#else
__attribute__((noinline)) void *lost_block(void)
{
    return malloc(40);
}

int main(void)
{
    void *p = lost_block();
    KEEP(p);
    p = 0;
    return 0;
}
#endif
