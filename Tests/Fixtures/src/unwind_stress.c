/*
 * unwind_stress.c - allocations from many, changing call paths, to check stack capture.
 *
 * Usage: unwind_stress [ROUNDS [MAXDEPTH]]     (defaults 3000 and 45)
 *   Each of 4 threads (the main thread waits) runs ROUNDS rounds; every round allocates
 *   from a path chosen by a per-thread LCG:
 *     - recursion to a varying depth (1..MAXDEPTH) through two alternating functions,
 *       ending in a leaf reached through one of three different callers;
 *     - a frame with a variable-length array (its CFA is RBP-based) above the leaf;
 *     - a longjmp out of a deep recursion (allocating at the bottom), then an allocation
 *       from the shallow frame, whose stack memory below still holds the old frames;
 *     - SIGUSR1 raised by the thread itself at a varying depth, its handler allocating on
 *       the thread's alternate signal stack (and through a recursion there);
 *     - the entry points malloc, calloc, realloc, posix_memalign, aligned_alloc, and
 *       strdup (glibc's own frame between the caller and malloc).
 * Nothing is freed: every allocating stack stays in use at exit, so the heap summary lists
 * every stack that allocated, with its count. Two runs (under `setarch -R`, so addresses
 * match), one with HEAPGATE_UNWIND=plain, must give identical records.
 * Output: one line via write(2). Exit status 0.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))
#define KEEP(p) __asm__ volatile("" : : "g"(p) : "memory")
#define THREADS 4

static long rounds = 3000;
static int max_depth = 45;
static __thread unsigned int lcg;
static __thread sigjmp_buf jump;

static unsigned int next_random(void)
{
    lcg = lcg * 1103515245u + 12345u;
    return lcg >> 16;
}

NOINLINE void *leaf(int kind)
{
    void *p = NULL;
    switch (kind % 6) {
    case 0: p = malloc(16 + (size_t)kind); break;
    case 1: p = calloc(3, 8); break;
    case 2: p = realloc(NULL, 40); break;
    case 3: if (posix_memalign(&p, 64, 48) != 0) p = NULL; break;
    case 4: p = aligned_alloc(32, 64); break;
    default: p = strdup("unwind_stress"); break;
    }
    KEEP(p);
    return p;
}

NOINLINE void *via_a(int kind) { void *p = leaf(kind); KEEP(p); return p; }
NOINLINE void *via_b(int kind) { void *p = leaf(kind + 1); KEEP(p); return p; }
NOINLINE void *via_c(int kind) { void *p = via_a(kind + 2); KEEP(p); return p; }

/* A variable-length array makes gcc keep a frame pointer: the CFA is RBP-based here. */
NOINLINE void *with_vla(int n, int kind)
{
    char buffer[n];
    memset(buffer, kind, (size_t)n);
    KEEP(buffer);
    void *p = (n & 1) ? via_b(kind) : via_c(kind);
    KEEP(buffer);
    return p;
}

NOINLINE void *bottom(int kind)
{
    switch (next_random() % 4) {
    case 0: return via_a(kind);
    case 1: return via_b(kind);
    case 2: return via_c(kind);
    default: return with_vla(8 + (int)(next_random() % 200), kind);
    }
}

NOINLINE void *odd(int depth, int kind);
NOINLINE void *even(int depth, int kind)
{
    void *p = depth <= 0 ? bottom(kind) : odd(depth - 1, kind);
    KEEP(p);
    return p;
}
NOINLINE void *odd(int depth, int kind)
{
    void *p = depth <= 0 ? leaf(kind + 3) : even(depth - 1, kind);
    KEEP(p);
    return p;
}

/* Allocates at the bottom, then jumps out of the whole recursion. */
NOINLINE void dive(int depth)
{
    if (depth <= 0) {
        KEEP(via_b(2));
        siglongjmp(jump, 1);
    }
    dive(depth - 1);
    KEEP(&depth); /* not a tail call */
}

NOINLINE void *in_handler(int depth)
{
    void *p = depth <= 0 ? via_a(4) : in_handler(depth - 1);
    KEEP(p);
    return p;
}

static void on_usr1(int signal_number)
{
    (void)signal_number;
    KEEP(in_handler((int)(next_random() % 6)));
    KEEP(leaf(0));
}

NOINLINE void raise_at(int depth)
{
    if (depth <= 0) {
        raise(SIGUSR1); /* delivered to this thread, now, on its alternate stack */
        KEEP(leaf(1)); /* and right after it, on the thread's own stack */
        return;
    }
    raise_at(depth - 1);
    KEEP(&depth);
}

NOINLINE void one_round(void)
{
    unsigned int what = next_random() % 8;
    int depth = 1 + (int)(next_random() % (unsigned int)max_depth);
    int kind = (int)(next_random() % 6);
    switch (what) {
    case 0:
    case 1:
    case 2: KEEP(even(depth, kind)); break;
    case 3: KEEP(odd(depth, kind)); break;
    case 4:
        if (sigsetjmp(jump, 0) == 0)
            dive(depth + 10);
        KEEP(leaf(kind)); /* after the longjmp: shallow, over the old deep frames */
        KEEP(even(depth / 4, kind));
        break;
    case 5: raise_at(depth % 12); break;
    case 6: KEEP(with_vla(16 + depth, kind)); break;
    default: KEEP(bottom(kind)); break;
    }
}

static void *worker(void *arg)
{
    lcg = 777u + 31u * (unsigned int)(long)arg;
    stack_t alt = {.ss_sp = malloc(65536), .ss_size = 65536, .ss_flags = 0};
    if (alt.ss_sp == NULL || sigaltstack(&alt, NULL) != 0)
        abort();
    for (long i = 0; i < rounds; i++)
        one_round();
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        rounds = atol(argv[1]);
    if (argc > 2)
        max_depth = atoi(argv[2]);
    if (rounds < 0 || max_depth < 1) {
        static const char usage[] = "usage: unwind_stress [ROUNDS [MAXDEPTH]]\n";
        return write(2, usage, sizeof usage - 1) < 0 ? 2 : 2;
    }
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_usr1;
    action.sa_flags = SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    sigaction(SIGUSR1, &action, NULL);

    pthread_t threads[THREADS];
    for (long t = 0; t < THREADS; t++)
        if (pthread_create(&threads[t], NULL, worker, (void *)t) != 0)
            return 1;
    for (int t = 0; t < THREADS; t++)
        pthread_join(threads[t], NULL);

    char line[96];
    int n = snprintf(line, sizeof line, "unwind_stress: %ld rounds x %d threads\n", rounds, THREADS);
    return write(1, line, (size_t)n) < 0 ? 1 : 0;
}
