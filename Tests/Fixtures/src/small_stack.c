/*
 * small_stack.c - allocations on a thread with the smallest stack glibc allows
 * (PTHREAD_STACK_MIN, 16 KiB), 1 to 20 frames deep.
 *
 *   worker: for depth 0..19, descend(depth) mallocs 40 bytes at the bottom;
 *           each is freed, except depth 19's: LEAKED 40 bytes
 *   prints "small_stack: ok", exits 0 (3 if the thread cannot be made).
 *
 * So 20 allocs, 19 frees, 800 bytes allocated, 40 bytes in 1 block lost, plus
 * what glibc allocates for the thread (its DTV) and for stdout.
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) static void *descend(int depth)
{
    if (depth == 0)
        return malloc(40);
    void *block = descend(depth - 1);
    __asm__ volatile("" ::: "memory"); /* not a tail call: every level keeps its frame */
    return block;
}

static void *worker(void *unused)
{
    (void)unused;
    for (int depth = 0; depth < 19; depth++)
        free(descend(depth));
    return descend(19);
}

int main(void)
{
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    if (pthread_attr_setstacksize(&attributes, PTHREAD_STACK_MIN) != 0)
        return 3;
    pthread_t thread;
    if (pthread_create(&thread, &attributes, worker, NULL) != 0)
        return 3;
    void *leaked;
    pthread_join(thread, &leaked);
    leaked = NULL; /* lost */
    puts("small_stack: ok");
    return 0;
}
