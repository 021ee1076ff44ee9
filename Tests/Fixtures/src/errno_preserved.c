/*
 * errno_preserved.c - the malloc family must leave errno alone.
 *
 * Usage: errno_preserved
 *
 * Sets errno to 12345 before each call of every allocation entry point
 * (malloc, calloc, realloc to grow, to shrink and from NULL, reallocarray,
 * posix_memalign, aligned_alloc, memalign, valloc, malloc_usable_size, free,
 * free(NULL), malloc(0)) and checks that it is still 12345 afterwards; and
 * that a failing malloc and an overflowing calloc set errno to ENOMEM.
 * It does all of this twice in main and twice in a second thread (whose first
 * allocation is the first the tracer sees from that thread): the second time,
 * every call's stack is one the thread had before, which the tracer finds
 * again without unwinding (a path of its own, which must keep errno too).
 * Exit 0 and "errno_preserved: ok\n" on stdout when every check passes,
 * exit 1 with one line per failure on stderr otherwise.
 * Heap: everything allocated is freed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAGIC 12345
#define KEEP(p) __asm__ volatile("" : : "g"(p) : "memory")

static _Atomic int failures;
static volatile size_t huge = SIZE_MAX / 2;

static void check(const char *where, const char *call, int expected)
{
    int seen = errno;
    if (seen == expected)
        return;
    char msg[256];
    int n = snprintf(msg, sizeof msg, "errno_preserved: %s: errno %d after %s, expected %d\n", where, seen, call,
                     expected);
    if (write(2, msg, (size_t)n) < 0)
        _exit(2);
    failures++;
}

#define CALL(where, stmt)                                                                                    \
    do {                                                                                                     \
        errno = MAGIC;                                                                                       \
        stmt;                                                                                                \
        check(where, #stmt, MAGIC);                                                                          \
    } while (0)

static void exercise(const char *where)
{
    void *p, *q, *r, *s, *t, *u, *v, *w;
    size_t usable = 0;
    CALL(where, p = malloc(32));
    CALL(where, q = calloc(4, 8));
    CALL(where, r = realloc(NULL, 16));
    CALL(where, r = realloc(r, 100000));
    CALL(where, r = realloc(r, 8));
    CALL(where, s = reallocarray(NULL, 10, 10));
    CALL(where, if (posix_memalign(&t, 64, 100) != 0) t = NULL);
    CALL(where, u = aligned_alloc(128, 256));
    CALL(where, v = memalign(32, 50));
    CALL(where, w = valloc(70));
    CALL(where, usable = malloc_usable_size(p));
    void *zero;
    CALL(where, zero = malloc(0));
    /* The compiler may drop an allocation whose result is unused: keep them all. */
    KEEP(p); KEEP(q); KEEP(r); KEEP(s); KEEP(t); KEEP(u); KEEP(v); KEEP(w); KEEP(zero); KEEP(usable);
    CALL(where, free(zero));
    CALL(where, free(NULL));
    CALL(where, free(p));
    CALL(where, free(q));
    CALL(where, free(r));
    CALL(where, free(s));
    CALL(where, free(t));
    CALL(where, free(u));
    CALL(where, free(v));
    CALL(where, free(w));

    errno = 0;
    p = malloc(huge);
    check(where, "malloc(SIZE_MAX / 2)", ENOMEM);
    KEEP(p);
    free(p);
    errno = 0;
    q = calloc(huge, 4);
    check(where, "calloc(SIZE_MAX / 2, 4)", ENOMEM);
    KEEP(q);
    free(q);
}

static void *thread_main(void *unused)
{
    (void)unused;
    for (int round = 0; round < 2; round++)
        exercise("thread");
    return NULL;
}

int main(void)
{
    for (int round = 0; round < 2; round++)
        exercise("main");
    pthread_t thread;
    if (pthread_create(&thread, NULL, thread_main, NULL) != 0)
        return 2;
    pthread_join(thread, NULL);
    if (failures)
        return 1;
    static const char ok[] = "errno_preserved: ok\n";
    if (write(1, ok, sizeof ok - 1) < 0)
        return 1;
    return 0;
}
