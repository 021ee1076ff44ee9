/*
 * held_back_counts.c - a threaded program whose malloc/free pairs of one address, all held back
 * by heapgate (CShim/hg_holdback.c), are too many and too big for the count a slot keeps
 * between two visits of the drain thread.
 *
 * Usage: held_back_counts
 *   A worker thread allocates and frees 8 bytes (from then on two threads have recorded) and
 *   waits. main then turns off glibc's mmap and trimming (mallopt), so that a big block comes
 *   from the top of the heap and goes back there, without a system call, and makes
 *   16,000,000 pairs of malloc(16)/free (a million pairs of one slot fill its 20 bits of pairs,
 *   if the drain's visits, every 50 ms, are that far apart: about 0.8 s traced on a machine
 *   where they are), then 50,000 pairs of malloc(1 GiB)/free (16,384 of them fill its 44 bits
 *   of bytes, in a few milliseconds), all at one address. It then lets the worker end, and
 *   leaks nothing.
 *   valgrind: 16,050,002 allocs, 16,050,002 frees, 53,687,347,200,280 bytes allocated, nothing
 *   in use (its freeres frees the ended worker's DTV, 272 bytes; heapgate reports that DTV in
 *   use, 304 bytes, so 16,050,001 frees and 53,687,347,200,312 bytes). The 1 GiB blocks are
 *   address space only: the program never touches them.
 *   Output only via write(2); exit status 1 if an allocation fails.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#define SMALL_PAIRS 16000000
#define BIG_PAIRS 50000
#define BIG_SIZE ((size_t)1 << 30)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int stage;

static void wait_for(int wanted) {
    pthread_mutex_lock(&lock);
    while (stage < wanted)
        pthread_cond_wait(&changed, &lock);
    pthread_mutex_unlock(&lock);
}

static void advance(void) {
    pthread_mutex_lock(&lock);
    stage++;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

static void *worker(void *unused) {
    (void)unused;
    void *volatile first = malloc(8);
    free(first);
    advance(); /* stage 1: the worker has recorded */
    wait_for(2);
    return NULL;
}

static int pairs(size_t size, long count) {
    for (long i = 0; i < count; i++) {
        void *volatile block = malloc(size);
        if (block == NULL)
            return 1;
        free(block);
    }
    return 0;
}

int main(void) {
    pthread_t thread;
    if (pthread_create(&thread, NULL, worker, NULL) != 0)
        return 1;
    wait_for(1);
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, 0x7fffffff);
    int failed = pairs(16, SMALL_PAIRS) || pairs(BIG_SIZE, BIG_PAIRS);
    advance(); /* stage 2: the worker ends */
    pthread_join(thread, NULL);
    if (failed) {
        if (write(2, "held_back_counts: allocation failed\n", 36) < 0)
            return 2;
        return 1;
    }
    return 0;
}
