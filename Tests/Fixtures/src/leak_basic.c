/*
 * leak_basic.c - the reference leak fixture.
 *
 * Allocates (all with malloc/calloc, nothing from stdio: output goes
 * through write(2), so glibc's stdout buffer never appears):
 *   leak_name()     malloc(24)      LEAKED   24 bytes, 1 block
 *   leak_twice()    malloc(100)     LEAKED  200 bytes, 2 blocks (called twice
 *                                           from ONE call site in main)
 *   leak_calloc()   calloc(1, 4)    LEAKED    4 bytes, 1 block
 *   scratch_work()  malloc(64), malloc(128), calloc(4, 64)  all freed
 * Total: 7 allocations, 676 bytes; 3 frees; 228 bytes in 4 blocks leaked,
 * all "definitely lost" (no pointer to them survives).
 * Exit status 0.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Make the compiler believe p is used, so the allocation is not elided. */
#define KEEP(p) __asm__ volatile("" : : "g"(p) : "memory")

__attribute__((noinline)) void leak_name(void)
{
    char *name = malloc(24);
    strcpy(name, "heapgate leak_basic");
    KEEP(name);
}

__attribute__((noinline)) void leak_twice(void)
{
    char *block = malloc(100);
    memset(block, 'x', 100);
    KEEP(block);
}

__attribute__((noinline)) void leak_calloc(void)
{
    int *one = calloc(1, sizeof(int));
    KEEP(one);
}

__attribute__((noinline)) void scratch_work(void)
{
    char *a = malloc(64);
    char *b = malloc(128);
    char *c = calloc(4, 64);
    memset(a, 1, 64);
    memset(b, 2, 128);
    KEEP(a);
    KEEP(b);
    KEEP(c);
    free(a);
    free(b);
    free(c);
}

/* A volatile trip count keeps the compiler from unrolling the loop: both
   calls of leak_twice() then share one call site (one return address). */
static volatile int twice = 2;

int main(void)
{
    leak_name();
    for (int i = 0; i < twice; i++)
        leak_twice();
    leak_calloc();
    scratch_work();
    static const char msg[] = "leak_basic: done\n";
    if (write(1, msg, sizeof msg - 1) < 0)
        return 1;
    return 0;
}
