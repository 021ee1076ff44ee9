/*
 * ctor_threads.c - allocation while threads started by a library constructor allocate too.
 *
 * Linked with libctor_threads.so, whose constructor starts three threads doing 200,000
 * malloc/free pairs each before heapgate has started. main does 300,000 pairs of its own
 * meanwhile, waits for the threads, leaks 77 bytes in leak_after_start, and prints "done".
 * Every event is recorded or counted as lost before tracing started (a full ring then, with
 * nothing to empty it): allocations + frees + lost events = 1,800,005 (the 900,000 pairs,
 * the leak, and the three threads' DTVs and stdout's buffer).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

extern atomic_int ctor_threads_done;

static void *volatile kept;

__attribute__((noinline)) static void leak_after_start(void) {
    kept = malloc(77);
    kept = NULL;
}

int main(void) {
    for (long i = 0; i < 300000; i++) {
        void *volatile block = malloc(32);
        free(block);
    }
    while (atomic_load(&ctor_threads_done) < 3) usleep(1000);
    leak_after_start();
    printf("done\n");
    return 0;
}
