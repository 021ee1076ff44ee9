/*
 * high_descriptors.c - uses descriptors 1000 and 1001 by number, as `exec 1000>file` in a
 * shell script does, with nothing closed first.
 *
 * Usage: high_descriptors DIR
 *   1. checks that 1000 and 1001 are not open (fcntl F_GETFD, dup: EBADF), as in any process
 *      that did not open them, and that fcntl F_DUPFD from 1000 gives 1000;
 *   2. opens DIR/dup2.txt and DIR/dup3.txt, puts them at 1000 (dup2) and 1001 (dup3,
 *      O_CLOEXEC), closes the originals and checks the flags fcntl reports (0, FD_CLOEXEC);
 *   3. 200 times: malloc, one line to each of 1000 and 1001, free; every 50 rounds it sleeps
 *      10 ms, so a tracer that writes when idle gets its chance;
 *   4. reads both files back: each must hold exactly its lines ("dup2 000\n" ... "dup2 199\n",
 *      the same for "dup3");
 *   5. leaks 48 bytes in leak_after_dup2.
 * Prints "high descriptors: ok" and exits 0 when every check passes; exit 1 with a message
 * on stderr otherwise. Heap: 201 allocations by the program (+ stdout's buffer), 48 bytes
 * definitely lost.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 200

static void *volatile kept;

__attribute__((noinline)) static void leak_after_dup2(void) {
    kept = malloc(48);
    kept = NULL;
}

static int failures;

static void fail(const char *what) {
    fprintf(stderr, "high_descriptors: FAIL: %s\n", what);
    failures++;
}

static int not_open(int fd) {
    int flags = fcntl(fd, F_GETFD);
    int flags_errno = errno;
    int copy = dup(fd);
    return flags == -1 && flags_errno == EBADF && copy == -1 && errno == EBADF;
}

static int open_at(const char *dir, const char *name, int number, int flags) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return -1;
    int placed = flags == -1 ? dup2(fd, number) : dup3(fd, number, flags);
    close(fd);
    return placed;
}

static void check_file(const char *dir, const char *name) {
    char path[4096], expected[64], line[64];
    snprintf(path, sizeof path, "%s/%s.txt", dir, name);
    FILE *file = fopen(path, "r");
    if (!file) {
        fail("a file cannot be read back");
        return;
    }
    int round = 0;
    while (fgets(line, sizeof line, file)) {
        snprintf(expected, sizeof expected, "%s %03d\n", name, round++);
        if (strcmp(line, expected) != 0) {
            fail("a file holds other lines than the program wrote");
            break;
        }
    }
    if (round != ROUNDS) fail("a file holds fewer or more lines than the program wrote");
    fclose(file);
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    if (!not_open(1000) || !not_open(1001)) fail("1000 or 1001 is open before the program opened it");
    int lowest = fcntl(2, F_DUPFD, 1000);
    if (lowest != 1000) fail("F_DUPFD from 1000 gave another number");
    close(lowest);
    if (open_at(argv[1], "dup2.txt", 1000, -1) != 1000) fail("dup2 onto 1000");
    if (open_at(argv[1], "dup3.txt", 1001, O_CLOEXEC) != 1001) fail("dup3 onto 1001");
    if (fcntl(1000, F_GETFD) != 0 || fcntl(1001, F_GETFD) != FD_CLOEXEC) fail("descriptor flags");
    for (int i = 0; i < ROUNDS; i++) {
        char *block = malloc(64 + (size_t)i);
        int length = snprintf(block, 64, "dup2 %03d\n", i);
        if (write(1000, block, (size_t)length) != length) fail("write to 1000");
        length = snprintf(block, 64, "dup3 %03d\n", i);
        if (write(1001, block, (size_t)length) != length) fail("write to 1001");
        free(block);
        if (i % 50 == 49) nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    check_file(argv[1], "dup2");
    check_file(argv[1], "dup3");
    leak_after_dup2();
    if (failures) return 1;
    printf("high descriptors: ok\n");
    return 0;
}
