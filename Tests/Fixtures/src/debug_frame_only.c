/*
 * debug_frame_only.c - code whose unwind information is only in .debug_frame: built (see
 * scripts/build-fixtures.sh) with -O2 -g -fno-asynchronous-unwind-tables -fno-unwind-tables,
 * so .eh_frame describes none of its functions and no frame pointer is kept.
 *
 * main calls outer, outer middle, middle inner, and inner leaks 41 bytes (malloc at line 19,
 * its callers at lines 26, 33 and 45). memcheck reports the whole stack, read from
 * .debug_frame. Exits 0, prints nothing.
 * With an argument FILE: writes "ready" first and waits, allocating nothing, until FILE
 * exists (a test replaces the program's file meanwhile), then leaks as above.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


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

int main(int argc, char **argv)
{
    if (argc > 1) {
        if (write(1, "ready\n", 6) != 6)
            return 1;
        while (access(argv[1], F_OK) != 0)
            usleep(1000);
    }
    outer(20);
    return 0;
}
