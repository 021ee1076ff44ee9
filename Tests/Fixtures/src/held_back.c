/*
 * held_back.c - a program with two threads, whose allocations heapgate holds back from its
 * ring (CShim/hg_holdback.c) and which it frees, reallocates, leaks and keeps.
 *
 * Usage: held_back [wait]
 *   A worker thread allocates and frees 8 bytes (from then on two threads have recorded) and
 *   waits. Then main: 10,000 malloc(32)/free pairs; 10,000 blocks of 48 bytes that the worker
 *   frees (cross-thread, the array of their pointers, 80,000 bytes, freed by main); a block of
 *   100 bytes grown by realloc to 200 in grow() and leaked (definitely lost); 24 bytes from
 *   leak() (definitely lost); 40 bytes from keep(), kept in a global (still reachable).
 *   With "wait", it then writes "held_back: ready" and sleeps until killed; else it exits 0.
 *   Output only via write(2).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PAIRS 10000

static void **handed;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int stage;
void *volatile kept; /* a global: still reachable */

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
    for (int i = 0; i < PAIRS; i++)
        free(handed[i]);
    advance(); /* stage 3 */
    return NULL;
}

static __attribute__((noinline)) void *grow(void) {
    char *block = malloc(100);
    memset(block, 1, 100);
    return realloc(block, 200);
}

static __attribute__((noinline)) void *leak(void) {
    return malloc(24);
}

/* Clears the stack below main's frame, where grow() and realloc left copies of the pointers. */
static __attribute__((noinline)) void scrub(void) {
    volatile char stack[8192];
    memset((char *)stack, 0, sizeof stack);
}

static __attribute__((noinline)) void keep(void) {
    kept = malloc(40);
}

int main(int argc, char **argv) {
    pthread_t thread;
    if (pthread_create(&thread, NULL, worker, NULL) != 0)
        return 1;
    wait_for(1);
    for (int i = 0; i < PAIRS; i++) {
        void *volatile pair = malloc(32);
        free(pair);
    }
    handed = malloc(PAIRS * sizeof *handed);
    for (int i = 0; i < PAIRS; i++)
        handed[i] = malloc(48);
    advance(); /* stage 2: the worker frees them */
    wait_for(3);
    pthread_join(thread, NULL);
    free(handed);
    void *volatile grown = grow();
    void *volatile leaked = leak();
    grown = leaked = NULL; (void)grown;
    scrub();
    keep();
    if (argc > 1 && strcmp(argv[1], "wait") == 0) {
        if (write(1, "held_back: ready\n", 17) < 0)
            return 3;
        for (;;)
            pause();
    }
    return 0;
}
