/*
 * steady_allocs.c - allocates 32 bytes every 500 microseconds and keeps every block.
 *
 * Prints "ready" after 200 blocks and goes on for 30 s; the tests kill it. It waits by
 * spinning on the clock, not by sleeping (a sleep may overshoot by milliseconds), so that
 * heapgate's drain thread never finds 2 ms without an event, its cue to write out what it
 * has: a trace of it holds its events only if the drain also writes them on a clock.
 * Output: "ready".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BLOCKS 60000

void *kept[BLOCKS];

__attribute__((noinline)) static void keep_block(int i) {
    kept[i] = malloc(32);
    memset(kept[i], 's', 32);
}

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(void) {
    long long next = now_ns();
    for (int i = 0; i < BLOCKS; i++) {
        keep_block(i);
        if (i == 199) {
            puts("ready");
            fflush(stdout);
        }
        next += 500000;
        while (now_ns() < next) {}
    }
    return 0;
}
