/*
 * forks_from_threads.c - several threads fork at once, as a test runner or a build tool's job
 * server does, while two more threads allocate; every child ends at once.
 *
 * Usage: forks_from_threads [CHILDREN]   (default 100 per forking thread)
 *   Two threads malloc and free 48-byte blocks in a loop. Four threads each fork CHILDREN
 *   children, one after another; each child leaks 24 bytes from child_leak() and _exit()s 0
 *   without exec'ing, as a worker or an exec that failed does. Each thread waits for its child
 *   with a blocking waitpid, so one thread's fork follows another's at once. A watchdog thread
 *   kills a child that has not ended after 10 s; it is counted as hung, and its thread forks
 *   no more.
 *   The parent leaks 16 bytes from parent_leak() (main, before the threads start); each child
 *   inherits that block, and may inherit a 48-byte block an allocating thread held at the fork
 *   (lost in the child, which has no such thread).
 *   Prints "forks_from_threads: N children, H hung" and exits 0 when none hung, 1 otherwise.
 *   Output only via write(2).
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KEEP(p) __asm__ volatile("" : : "g"(p) : "memory")
#define FORKING_THREADS 4
#define ALLOCATING_THREADS 2

static atomic_bool stop;
static atomic_int started, hung;
static int children_each;

static __attribute__((noinline)) void parent_leak(void) {
    void *p = malloc(16);
    memset(p, 'p', 16);
    KEEP(p);
}

static __attribute__((noinline)) void *child_leak(void) {
    return malloc(24);
}

static void *allocate(void *unused) {
    (void)unused;
    while (!atomic_load(&stop)) {
        void *p = malloc(48);
        KEEP(p);
        free(p);
    }
    return NULL;
}

/* Each forking thread's child of the moment (0: none), for the watchdog. */
static _Atomic pid_t current[FORKING_THREADS];

/* Kills a child that has been the same one for 10 s: its thread's waitpid then returns. */
static void *watchdog(void *unused) {
    (void)unused;
    pid_t seen[FORKING_THREADS] = {0};
    int ticks[FORKING_THREADS] = {0};
    while (!atomic_load(&stop)) {
        for (int i = 0; i < FORKING_THREADS; i++) {
            pid_t now = atomic_load(&current[i]);
            ticks[i] = now != 0 && now == seen[i] ? ticks[i] + 1 : 0;
            seen[i] = now;
            if (ticks[i] == 1000)
                kill(now, SIGKILL);
        }
        struct timespec ten_ms = {0, 10000000};
        nanosleep(&ten_ms, NULL);
    }
    return NULL;
}

/* Blocks in waitpid, so that the next fork follows a child's end at once. */
static void *fork_children(void *slot) {
    _Atomic pid_t *mine = slot;
    for (int i = 0; i < children_each; i++) {
        pid_t child = fork();
        if (child == 0)
            _exit(child_leak() ? 0 : 1);
        if (child < 0)
            break;
        atomic_fetch_add(&started, 1);
        atomic_store(mine, child);
        int status = 0;
        bool ended = waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0;
        atomic_store(mine, 0);
        if (!ended) {
            atomic_fetch_add(&hung, 1);
            break;
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    children_each = argc > 1 ? atoi(argv[1]) : 100;
    parent_leak();
    pthread_t allocators[ALLOCATING_THREADS], forkers[FORKING_THREADS], guard;
    for (int i = 0; i < ALLOCATING_THREADS; i++)
        if (pthread_create(&allocators[i], NULL, allocate, NULL) != 0)
            return 2;
    if (pthread_create(&guard, NULL, watchdog, NULL) != 0)
        return 2;
    for (int i = 0; i < FORKING_THREADS; i++)
        if (pthread_create(&forkers[i], NULL, fork_children, &current[i]) != 0)
            return 2;
    for (int i = 0; i < FORKING_THREADS; i++)
        pthread_join(forkers[i], NULL);
    atomic_store(&stop, true);
    for (int i = 0; i < ALLOCATING_THREADS; i++)
        pthread_join(allocators[i], NULL);
    pthread_join(guard, NULL);
    char line[80];
    int length = snprintf(line, sizeof line, "forks_from_threads: %d children, %d hung\n", atomic_load(&started),
                          atomic_load(&hung));
    if (write(1, line, (size_t)length) < 0)
        return 3;
    return atomic_load(&hung) == 0 ? 0 : 1;
}
