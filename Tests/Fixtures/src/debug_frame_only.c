/*
 * debug_frame_only.c - code whose unwind information is only in .debug_frame: built (see
 * scripts/build-fixtures.sh) with -O2 -g -fno-asynchronous-unwind-tables -fno-unwind-tables,
 * so .eh_frame describes none of its functions and no frame pointer is kept.
 *
 * main calls outer, outer middle, middle inner, and inner leaks 41 bytes (malloc at line 15,
 * its callers at lines 22, 29 and 35). memcheck reports the whole stack, read from
 * .debug_frame. Exits 0, prints nothing.
 */
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) void *inner(int n)
{
    void *p = malloc((size_t)n);
    memset(p, 1, (size_t)n);
    return p;
}

__attribute__((noinline)) void *middle(int n)
{
    void *p = inner(n + 1);
    __asm__ volatile("" ::: "memory");
    return p;
}

__attribute__((noinline)) void outer(int n)
{
    void *p = middle(n * 2);
    __asm__ volatile("" : : "g"(p) : "memory");
}

int main(void)
{
    outer(20);
    return 0;
}
