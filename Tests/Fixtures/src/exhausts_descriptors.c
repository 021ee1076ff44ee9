/*
 * exhausts_descriptors.c - opens /dev/null until open() fails with EMFILE, as a program that
 * leaks descriptors (or a server under load) does, and exits with every descriptor in use.
 *
 * Usage: exhausts_descriptors
 *   1. keeps 40 bytes in a global (still reachable) and leaks 24 bytes in leak_one;
 *   2. lowers its descriptor limit to 64 (so that filling the table is quick) and opens
 *      /dev/null until open() fails;
 *   3. exits 0 without closing any.
 * Prints "exhausted: ok" and exits 0 when open() failed with EMFILE; exit 1 otherwise.
 * Heap: 40 bytes still reachable (held_by_global), 24 bytes definitely lost (leak_one),
 * + stdout's buffer.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

static void *volatile held;
static void *volatile lost;

__attribute__((noinline)) static void held_by_global(void) { held = malloc(40); }

__attribute__((noinline)) static void leak_one(void) {
    lost = malloc(24);
    lost = NULL;
}

int main(void) {
    held_by_global();
    leak_one();
    struct rlimit limit = {64, 64};
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) return 1;
    while (open("/dev/null", O_RDONLY) >= 0) continue;
    if (errno != EMFILE) return 1;
    printf("exhausted: ok\n");
    return 0;
}
