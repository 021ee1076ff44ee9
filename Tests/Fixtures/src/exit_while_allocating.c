/*
 * exit_while_allocating.c - a process that exits while its other threads allocate and free, or
 * reallocate: what they free in the last moments must not be reported as lost, and what they
 * hold must be reported in use.
 *
 * Usage: exit_while_allocating [THREADS [realloc]]   (default 4, at most 8)
 *   each thread, for ever: malloc(16 + i % 200); every 100th block replaces the oldest of the
 *   thread's 50 kept blocks (a global array), which it frees; the others are freed at once.
 *   With "realloc", each thread instead mallocs 16 bytes, then for ever grows or shrinks it
 *   with realloc (16 to 1,024 bytes, from grow(), called from reallocate()), keeping the
 *   pointer in a global array.
 *   main waits 100 ms, prints "exiting", and calls exit(0) while they run.
 * Every block in use at exit is kept in a global array or is the one block a thread is
 * handling, so memcheck finds nothing definitely lost; with "realloc" it reports one block in
 * use per thread, allocated by malloc or realloc from reallocate() (valgrind 3.19
 * --fair-sched=yes: 4 blocks still reachable; without it, main may never get to exit).
 * Prints "exiting" and exits 0.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { KEPT = 50, MAX_THREADS = 8 };

static void *kept[MAX_THREADS][KEPT];

static void *allocate(void *argument) {
    long thread = (long)argument;
    unsigned slot = 0;
    for (unsigned long i = 0;; i++) {
        void *block = malloc(16 + i % 200);
        if (i % 100 == 0) {
            void *oldest = kept[thread][slot];
            kept[thread][slot] = block;
            slot = (slot + 1) % KEPT;
            free(oldest);
        } else {
            free(block);
        }
    }
    return NULL;
}

static void *volatile moving[MAX_THREADS];

static __attribute__((noinline)) void *grow(void *block, size_t size) {
    return realloc(block, size);
}

static void *reallocate(void *argument) {
    long thread = (long)argument;
    void *block = malloc(16);
    moving[thread] = block;
    for (unsigned long i = 0;; i++) {
        void *moved = grow(block, 16 + (i % 64) * 16);
        if (moved == NULL) continue;
        block = moved;
        moving[thread] = block;
    }
    return NULL;
}

int main(int argc, char **argv) {
    long threads = argc > 1 ? atol(argv[1]) : 4;
    if (threads < 1 || threads > MAX_THREADS) return 2;
    bool reallocating = argc > 2 && strcmp(argv[2], "realloc") == 0;
    for (long t = 0; t < threads; t++) {
        pthread_t thread;
        if (pthread_create(&thread, NULL, reallocating ? reallocate : allocate, (void *)t) != 0) return 1;
    }
    usleep(100000);
    printf("exiting\n");
    fflush(stdout);
    exit(0);
}
