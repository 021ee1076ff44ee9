/*
 * libforkguard.c - a library that guards its own state across fork, as libraries do.
 *
 * Its constructor registers fork handlers that take its mutex before a fork and release it
 * after, so that a child never finds the state half-changed. A library the program links is
 * initialised before a preloaded one, so these handlers are registered before a preloaded
 * tracer's. forkguard_update() changes the state under the mutex: it walks the loaded objects
 * (dl_iterate_phdr) and allocates and frees a block from one of 4,096 call paths (new stacks
 * for a tracer, which looks at the loaded objects there). It leaks nothing.
 */
#define _GNU_SOURCE
#include <link.h>
#include <pthread.h>
#include <stdlib.h>

static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long objects_seen;

static void take_state(void) { pthread_mutex_lock(&state_lock); }
static void give_state(void) { pthread_mutex_unlock(&state_lock); }

__attribute__((constructor)) static void guard_across_fork(void) {
    pthread_atfork(take_state, give_state, give_state);
}

static int count_object(struct dl_phdr_info *info, size_t size, void *data) {
    (void)info, (void)size, (void)data;
    objects_seen++;
    return 0;
}

/* One call path per bit pattern of `path`: 12 levels of left or right. */
static __attribute__((noinline)) void *go_left(unsigned path, int depth);
static __attribute__((noinline)) void *go_right(unsigned path, int depth);
static __attribute__((noinline)) void *descend(unsigned path, int depth) {
    if (depth == 0)
        return malloc(16);
    return (path & 1) ? go_right(path >> 1, depth - 1) : go_left(path >> 1, depth - 1);
}
static __attribute__((noinline)) void *go_left(unsigned path, int depth) {
    void *block = descend(path, depth);
    __asm__ volatile("" : : "r"(block) : "memory");
    return block;
}
static __attribute__((noinline)) void *go_right(unsigned path, int depth) {
    void *block = descend(path, depth);
    __asm__ volatile("" : : "r"(block) : "memory");
    return block;
}

void forkguard_update(unsigned path) {
    take_state();
    dl_iterate_phdr(count_object, NULL);
    free(descend(path % 4096, 12));
    give_state();
}
