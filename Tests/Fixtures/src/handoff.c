/*
 * handoff.c - blocks handed between threads the moment a second thread starts, so that
 * addresses freed on one thread are allocated again on the other.
 *
 *   1. main allocates NBLOCKS (200,000) blocks of 16..256 bytes (so many that a tracer's
 *      consumer is still busy with them when the worker starts);
 *   2. main starts one worker and hands it a block it allocates just after (while the
 *      worker makes its first allocation); the worker frees it, then all of main's blocks
 *      at once, the newest first (the frees and the allocations they undo are on different
 *      threads, and main's last allocations were made a moment before), then allocates
 *      NBLOCKS blocks of the same sizes (glibc hands out the addresses main's blocks had);
 *   3. main allocates and frees NBLOCKS more blocks meanwhile, racing the worker for the
 *      same addresses, then joins the worker;
 *   4. main frees the worker's blocks, except every 10,000th, which stays referenced from
 *      nothing: leaked_by_worker() allocated them, 20 blocks.
 *
 * Exact figures: NBLOCKS * 3 + 2 = 600,002 program mallocs, 599,982 frees; the 20 leaked
 * blocks are definitely lost. No output. Exit 0.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define NBLOCKS 200000
#define LEAK_EVERY 10000
#define KEEP(p) __asm__ volatile("" : : "g"(p) : "memory")

static void *blocks[NBLOCKS];

static size_t size_of(int i) { return 16 + (size_t)((i * 37) % 16) * 16; }

__attribute__((noinline)) static void *leaked_by_worker(int i) { return malloc(size_of(i)); }

__attribute__((noinline)) static void *kept_by_worker(int i) { return malloc(size_of(i)); }

static void *_Atomic mailbox;

static void *worker(void *unused) {
    (void)unused;
    void *first = malloc(8); /* from now on, two threads have recorded events */
    KEEP(first);
    free(first);
    void *message;
    while ((message = atomic_load(&mailbox)) == NULL) sched_yield();
    free(message); /* allocated by main a moment ago */
    for (int i = NBLOCKS - 1; i >= 0; i--) free(blocks[i]); /* the newest first */
    for (int i = 0; i < NBLOCKS; i++) {
        blocks[i] = i % LEAK_EVERY == 0 ? leaked_by_worker(i) : kept_by_worker(i);
        memset(blocks[i], i, 8);
    }
    return NULL;
}

int main(void) {
    for (int i = 0; i < NBLOCKS; i++) blocks[i] = malloc(size_of(i));
    pthread_t thread;
    if (pthread_create(&thread, NULL, worker, NULL) != 0) return 1;
    atomic_store(&mailbox, malloc(40));
    for (int i = 0; i < NBLOCKS; i++) {
        void *p = malloc(size_of(NBLOCKS - i));
        KEEP(p);
        free(p);
    }
    pthread_join(thread, NULL);
    for (int i = 0; i < NBLOCKS; i++) {
        if (i % LEAK_EVERY == 0) blocks[i] = NULL; /* the only reference: now the block is lost */
        else free(blocks[i]);
    }
    return 0;
}
