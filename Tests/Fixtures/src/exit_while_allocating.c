/*
 * exit_while_allocating.c - a process that exits while its other threads allocate and free:
 * what they free in the last moments must not be reported as lost.
 *
 * Usage: exit_while_allocating [THREADS]   (default 4, at most 8)
 *   each thread, for ever: malloc(16 + i % 200); every 100th block replaces the oldest of the
 *   thread's 50 kept blocks (a global array), which it frees; the others are freed at once.
 *   main waits 100 ms, prints "exiting", and calls exit(0) while they run.
 * Every block in use at exit is kept in a global array or is the one block a thread is
 * handling, so memcheck finds nothing definitely lost. Prints "exiting" and exits 0.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
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

int main(int argc, char **argv) {
    long threads = argc > 1 ? atol(argv[1]) : 4;
    if (threads < 1 || threads > MAX_THREADS) return 2;
    for (long t = 0; t < threads; t++) {
        pthread_t thread;
        if (pthread_create(&thread, NULL, allocate, (void *)t) != 0) return 1;
    }
    usleep(100000);
    printf("exiting\n");
    fflush(stdout);
    exit(0);
}
