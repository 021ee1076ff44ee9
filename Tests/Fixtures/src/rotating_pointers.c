/*
 * rotating_pointers.c - threads that keep moving pointers while the process exits: an
 * exit-time scan that reads memory while they run can miss a pointer at both places.
 *
 * Usage: rotating_pointers [THREADS]   (default 2, at most 8)
 *   main allocates, per thread, an array of 4,096 pointers (32,768 bytes) held by a global,
 *   and 4,096 blocks of 24 bytes it points at; each thread then rotates its array for ever
 *   (the first pointer saved, the rest moved down one slot with memmove, the saved one put
 *   last); main waits 100 ms and calls exit(0) while they run.
 * Every block is reachable from a global at every instant but one: the rotated pointer, held
 * in a register of its thread while the others move. memcheck, which runs one thread at a time
 * and scans every thread's registers, finds all of them still reachable. A scan that cannot
 * read a running thread's registers may call the one block in flight per thread definitely
 * lost, and no more.
 * Prints "rotating N arrays" and exits 0.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { POINTERS = 4096, MAX_THREADS = 8 };

static void **arrays[MAX_THREADS];

static void *rotate(void *argument) {
    void **array = arrays[(long)argument];
    for (;;) {
        void *first = array[0];
        memmove(array, array + 1, (POINTERS - 1) * sizeof *array);
        array[POINTERS - 1] = first;
    }
    return NULL;
}

int main(int argc, char **argv) {
    long threads = argc > 1 ? atol(argv[1]) : 2;
    if (threads < 1 || threads > MAX_THREADS) return 2;
    for (long t = 0; t < threads; t++) {
        arrays[t] = malloc(POINTERS * sizeof *arrays[t]);
        for (int i = 0; i < POINTERS; i++) arrays[t][i] = malloc(24);
    }
    for (long t = 0; t < threads; t++) {
        pthread_t thread;
        if (pthread_create(&thread, NULL, rotate, (void *)t) != 0) return 1;
    }
    usleep(100000);
    printf("rotating %ld arrays\n", threads);
    exit(0);
}
