/*
 * libctor_threads.c - a library whose constructor starts threads that allocate.
 *
 * A program's libraries are initialised before a preloaded one, so these threads record
 * events before heapgate's constructor has started its drain thread, and go on while it
 * starts: every thread claims in the solo ring then, and the first to record once the
 * drain runs becomes its owner (CShim/hg_ring.c). Each of the three threads does 200,000
 * malloc/free pairs, then counts itself done.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

atomic_int ctor_threads_done;

static void *early_worker(void *arg) {
    long pairs = (long)arg;
    for (long i = 0; i < pairs; i++) {
        void *volatile block = malloc(16 + (size_t)(i % 100));
        free(block);
    }
    atomic_fetch_add(&ctor_threads_done, 1);
    return NULL;
}

__attribute__((constructor)) static void start_early_workers(void) {
    for (int t = 0; t < 3; t++) {
        pthread_t thread;
        if (pthread_create(&thread, NULL, early_worker, (void *)200000L) == 0) pthread_detach(thread);
        else atomic_fetch_add(&ctor_threads_done, 1);
    }
}
