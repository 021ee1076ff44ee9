/*
 * exit_while_reallocating.c - a process that exits while its other threads reallocate: each
 * thread's one block must be reported in use, as memcheck reports it.
 *
 * Usage: exit_while_reallocating [THREADS]   (default 4, at most 8)
 *   each thread mallocs 16 bytes, then for ever grows or shrinks it with realloc (16 to
 *   1,024 bytes, from grow(), called from reallocate()), keeping the pointer in a global
 *   array. main waits 50 ms, prints "exiting", and calls exit(0) while they run.
 * At exit each thread has exactly one block, reachable from the global array (or, for a
 * thread between realloc's return and its store, from that thread): memcheck reports one
 * block in use per thread, allocated by malloc or realloc from reallocate() (valgrind 3.19
 * --fair-sched=yes: 4 blocks still reachable; without it, main may never get to exit). Prints
 * "exiting" and exits 0.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

enum { MAX_THREADS = 8 };

static void *volatile blocks[MAX_THREADS];

static __attribute__((noinline)) void *grow(void *block, size_t size) {
    return realloc(block, size);
}

static void *reallocate(void *argument) {
    long thread = (long)argument;
    void *block = malloc(16);
    blocks[thread] = block;
    for (unsigned long i = 0;; i++) {
        void *moved = grow(block, 16 + (i % 64) * 16);
        if (moved == NULL) continue;
        block = moved;
        blocks[thread] = block;
    }
    return NULL;
}

int main(int argc, char **argv) {
    long threads = argc > 1 ? atol(argv[1]) : 4;
    if (threads < 1 || threads > MAX_THREADS) return 2;
    for (long t = 0; t < threads; t++) {
        pthread_t thread;
        if (pthread_create(&thread, NULL, reallocate, (void *)t) != 0) return 1;
    }
    usleep(50000);
    printf("exiting\n");
    fflush(stdout);
    exit(0);
}
