/*
 * closes_descriptors.c - closes every descriptor above stderr with libc's calls, as daemons,
 * test runners and subprocess helpers do, then allocates and leaks.
 *
 * Usage: closes_descriptors close_range|closefrom|close_loop
 *   1. opens /dev/null (descriptor 3) and moves a copy to descriptor 2000, above where a
 *      tracer keeps its own;
 *   2. closes every descriptor >= 3: close_range(3, ~0U, 0), closefrom(3), or close() on
 *      3..4095;
 *   3. checks that 3 and 2000 are closed and that the next open() gets 3;
 *   4. 1,000 malloc/free pairs of 100 bytes, then leaks 66 bytes in leak_after_closing.
 * Prints "closed: ok" and exits 0 when every check passes; exit 1 with a message otherwise.
 * Heap: 1,001 allocations by the program (+ stdout's buffer), 66 bytes definitely lost.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *volatile kept;

__attribute__((noinline)) static void leak_after_closing(void) {
    kept = malloc(66);
    kept = NULL;
}

static int closed(int fd) { return fcntl(fd, F_GETFD) == -1 && errno == EBADF; }

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    int null = open("/dev/null", O_RDONLY);
    if (null != 3 || dup2(null, 2000) != 2000) {
        fprintf(stderr, "closes_descriptors: set-up failed\n");
        return 1;
    }
    if (strcmp(argv[1], "close_range") == 0) {
        if (close_range(3, ~0U, 0) != 0) {
            fprintf(stderr, "closes_descriptors: close_range: %s\n", strerror(errno));
            return 1;
        }
    } else if (strcmp(argv[1], "closefrom") == 0) {
        closefrom(3);
    } else {
        for (int fd = 3; fd < 4096; fd++) close(fd);
    }
    if (!closed(3) || !closed(2000)) {
        fprintf(stderr, "closes_descriptors: a descriptor of the program is still open\n");
        return 1;
    }
    int next = open("/dev/null", O_RDONLY);
    if (next != 3) {
        fprintf(stderr, "closes_descriptors: open gave %d, expected 3\n", next);
        return 1;
    }
    close(next);
    for (int i = 0; i < 1000; i++) {
        void *volatile block = malloc(100);
        free(block);
    }
    leak_after_closing();
    printf("closed: ok\n");
    return 0;
}
