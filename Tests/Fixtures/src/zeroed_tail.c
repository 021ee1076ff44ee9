/*
 * zeroed_tail.c - a zeroed buffer reached only through a pointer 48 bytes before its end.
 *
 * Tcl keeps such pointers into its buffers. 48 = 32 + 16: the layout heapgate's hashbrown
 * rule looks for (a Rust HashMap's ctrl pointer, n + 16 bytes before the end with n = 32),
 * and zeroed bytes pass as control bytes (FULL). memcheck: 38,400 bytes in 1 block possibly
 * lost (an interior pointer, no heuristic of its). The pointer sits in a global, so nothing
 * is definitely lost.
 */
#include <stdio.h>
#include <stdlib.h>

static char *volatile cursor;

__attribute__((noinline)) static void keep_end_of_buffer(void) {
    char *buffer = calloc(1, 38400);
    cursor = buffer + 38400 - 48;
}

int main(void) {
    keep_end_of_buffer();
    printf("zeroed_tail: kept\n");
    return 0;
}
