/*
 * threads.c - allocation from 8 threads, with cross-thread frees.
 *
 * Each of the NTHREADS (8) workers:
 *   1. does NPAIRS (1000) malloc/free pairs of its own (sizes 16..256),
 *   2. allocates NSHARED (100) blocks of 48 bytes into shared[t][*],
 *   3. waits on a barrier (all threads have filled their row),
 *   4. frees the row of the NEXT thread, shared[(t+1) % 8][*], i.e. blocks
 *      another thread allocated,
 *   5. calls thread_leak(), which leaks exactly one 32-byte block.
 * main joins all threads and exits 0.
 *
 * Leaked: 8 blocks of 32 bytes = 256 bytes, all from thread_leak().
 * Program allocations: 8 * (1000 + 100 + 1) = 8808 mallocs, 8800 frees.
 * (pthread_create's own bookkeeping - the DTV calloc'ed by glibc for each
 * thread - also shows up; see EXPECTED.md.)  Output only via write(2).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NTHREADS 8
#define NPAIRS 1000
#define NSHARED 100

#define KEEP(p) __asm__ volatile("" : : "g"(p) : "memory")

static void *shared[NTHREADS][NSHARED];
static pthread_barrier_t barrier;

__attribute__((noinline)) void thread_leak(void)
{
    void *p = malloc(32);
    memset(p, 't', 32);
    KEEP(p);
}

__attribute__((noinline)) void local_pairs(int t)
{
    for (int i = 0; i < NPAIRS; i++) {
        void *p = malloc(16 + (size_t)((i * 7 + t) % 16) * 16);
        KEEP(p);
        free(p);
    }
}

__attribute__((noinline)) void fill_row(int t)
{
    for (int i = 0; i < NSHARED; i++) {
        shared[t][i] = malloc(48);
        memset(shared[t][i], t, 48);
    }
}

__attribute__((noinline)) void free_row(int row)
{
    for (int i = 0; i < NSHARED; i++) {
        free(shared[row][i]);
        shared[row][i] = NULL;
    }
}

static void *worker(void *arg)
{
    int t = (int)(long)arg;
    local_pairs(t);
    fill_row(t);
    pthread_barrier_wait(&barrier);
    free_row((t + 1) % NTHREADS);   /* blocks allocated by another thread */
    thread_leak();
    return NULL;
}

int main(void)
{
    pthread_t tid[NTHREADS];
    pthread_barrier_init(&barrier, NULL, NTHREADS);
    for (long t = 0; t < NTHREADS; t++)
        if (pthread_create(&tid[t], NULL, worker, (void *)t) != 0)
            return 1;
    for (int t = 0; t < NTHREADS; t++)
        pthread_join(tid[t], NULL);
    pthread_barrier_destroy(&barrier);
    static const char msg[] = "threads: done\n";
    if (write(1, msg, sizeof msg - 1) < 0)
        return 1;
    return 0;
}
