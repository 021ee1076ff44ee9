/*
 * alloc_then_sleep.c - allocates known blocks, says "ready", then sleeps.
 *
 * Usage: alloc_then_sleep [SECONDS]      (default: 30)
 *
 * Used to check the trace of a process killed with SIGKILL while it is idle:
 * nothing runs at exit, so the figures are only what the shim had written
 * before the kill.
 *
 *   keep_one()    malloc(111)           in use  111 bytes, 1 block
 *   keep_three()  calloc(1, 222) x 3    in use  666 bytes, 3 blocks (one call site)
 *   scratch()     malloc(333), freed
 * Before "ready": 5 allocations, 1 free, 1,110 bytes allocated;
 * 777 bytes in 4 blocks in use.  Output only via write(2), so there is no
 * stdio buffer.  Then it writes "ready\n" to stdout and sleeps SECONDS
 * (nanosleep allocates nothing) and exits 0.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KEEP(p) __asm__ volatile("" : : "g"(p) : "memory")

__attribute__((noinline)) void keep_one(void)
{
    void *p = malloc(111);
    memset(p, 'o', 111);
    KEEP(p);
}

__attribute__((noinline)) void keep_three(void)
{
    void *p = calloc(1, 222);
    KEEP(p);
}

__attribute__((noinline)) void scratch(void)
{
    void *p = malloc(333);
    memset(p, 's', 333);
    KEEP(p);
    free(p);
}

static volatile int three = 3;

int main(int argc, char **argv)
{
    int seconds = argc > 1 ? atoi(argv[1]) : 30;
    keep_one();
    for (int i = 0; i < three; i++)
        keep_three();
    scratch();
    static const char ready[] = "ready\n";
    if (write(1, ready, sizeof ready - 1) < 0)
        return 1;
    struct timespec left = {seconds, 0};
    while (nanosleep(&left, &left) != 0)
        ;
    return 0;
}
