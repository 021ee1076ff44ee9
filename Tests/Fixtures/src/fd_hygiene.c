/*
 * fd_hygiene.c - closes every descriptor above stderr, then uses files.
 *
 * Usage: fd_hygiene DIR
 *
 * A tracer that keeps a descriptor open for its trace must survive the
 * program closing it, and must never write trace bytes into whatever file
 * the program opens next under the same number.  So this program:
 *   1. closes every descriptor >= 3 (close_range, or close() on 3..1023),
 *   2. opens DIR/first.txt and DIR/second.txt, which must get descriptors
 *      3 and 4 (the lowest free ones: nothing else may be open),
 *   3. opens DIR/third.txt (descriptor 5) and moves it to descriptor 1000,
 *      the first number a tracer moving its descriptor "out of the way"
 *      with F_DUPFD from 1000 would get,
 *   4. 200 times: malloc, one line to each file, free; every 50 rounds it
 *      sleeps 10 ms, so a tracer that flushes when idle gets its chance to
 *      write,
 *   5. reads each file back and checks that it holds exactly its lines
 *      ("first 000\n" ... "first 199\n", the same for "second" and
 *      "third"), and that the next open() gets descriptor 5 again.
 * Exit 0 and "fd_hygiene: ok\n" on stdout when every check passes; exit 1
 * with a message on stderr otherwise (one per failing check, and only the
 * first failed write of each file).  Heap: 200 malloc/free pairs of
 * 64..263 bytes, nothing in use at exit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 200
#define HIGH_FD 1000

static int failures;

static void fail(const char *what)
{
    char msg[512];
    int n = snprintf(msg, sizeof msg, "fd_hygiene: FAIL: %s\n", what);
    if (write(2, msg, (size_t)n) < 0)
        _exit(2);
    failures++;
}

static void close_all_above_stderr(void)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3u, ~0u, 0u) == 0)
        return;
#endif
    for (int fd = 3; fd < 1024; fd++)
        close(fd);
}

static int open_in(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
}

static void line(char *buf, size_t size, const char *name, int i)
{
    snprintf(buf, size, "%s %03d\n", name, i);
}

/* Writes text to fd (file number index); reports only the first failure of each file. */
static void put(int fd, int index, const char *name, const char *text)
{
    static int reported[3];
    size_t length = strlen(text);
    if (write(fd, text, length) == (ssize_t)length)
        return;
    if (reported[index]++)
        return;
    char what[160];
    snprintf(what, sizeof what, "write to %s (descriptor %d): %s", name, fd, strerror(errno));
    fail(what);
}

static void check_content(int fd, const char *name)
{
    static char expected[ROUNDS * 16], actual[ROUNDS * 16 + 1];
    size_t length = 0;
    for (int i = 0; i < ROUNDS; i++) {
        line(expected + length, sizeof expected - length, name, i);
        length += strlen(expected + length);
    }
    ssize_t n = pread(fd, actual, sizeof actual, 0);
    char what[160];
    if (n < 0) {
        snprintf(what, sizeof what, "cannot read %s back (descriptor %d): %s", name, fd, strerror(errno));
        fail(what);
    } else if (n != (ssize_t)length) {
        snprintf(what, sizeof what, "%s holds %zd bytes, expected %zu", name, n, length);
        fail(what);
    } else if (memcmp(actual, expected, length) != 0) {
        snprintf(what, sizeof what, "%s does not hold exactly its lines", name);
        fail(what);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    close_all_above_stderr();

    int first = open_in(argv[1], "first.txt");
    int second = open_in(argv[1], "second.txt");
    int third = open_in(argv[1], "third.txt");
    if (first != 3 || second != 4 || third != 5) {
        char what[128];
        snprintf(what, sizeof what, "descriptors %d %d %d, expected 3 4 5", first, second, third);
        fail(what);
        return 1;
    }
    if (dup2(third, HIGH_FD) != HIGH_FD) {
        char what[128];
        snprintf(what, sizeof what, "dup2(%d, %d): %s", third, HIGH_FD, strerror(errno));
        fail(what);
        return 1;
    }
    close(third);
    third = HIGH_FD;

    for (int i = 0; i < ROUNDS; i++) {
        char *p = malloc(64 + (size_t)i);
        line(p, 64, "first", i);
        put(first, 0, "first", p);
        char buf[32];
        line(buf, sizeof buf, "second", i);
        put(second, 1, "second", buf);
        line(buf, sizeof buf, "third", i);
        put(third, 2, "third", buf);
        free(p);
        if (i % 50 == 49) {
            struct timespec pause = {0, 10 * 1000 * 1000};
            nanosleep(&pause, NULL);
        }
    }

    check_content(first, "first");
    check_content(second, "second");
    check_content(third, "third");
    int again = open_in(argv[1], "fourth.txt");
    if (again != 5) {
        char what[128];
        snprintf(what, sizeof what, "descriptor %d for a new file, expected 5", again);
        fail(what);
    }
    if (failures)
        return 1;
    static const char ok[] = "fd_hygiene: ok\n";
    if (write(1, ok, sizeof ok - 1) < 0)
        return 1;
    return 0;
}
