/*
 * fork_mid_hold.c - main forks children while a worker thread allocates, grows and frees one
 * block after another, so that some forks land while the worker is inside heapgate's handling of
 * a block held back from its ring (CShim/hg_holdback.c): holding it, or taking it out again for
 * its realloc.
 *
 * Usage: fork_mid_hold [CHILDREN]   (default 200)
 *   The worker loops: begin_block() mallocs 48 bytes and publishes the pointer in `current`;
 *   it is grown by realloc to 4,000 bytes (published again); then `current` is cleared and the
 *   block freed. Main forks CHILDREN children one after another. Each child finds the worker's
 *   block of the moment in `current` (a global: still reachable), writes
 *   "child PID holds a block" if there is one and "child PID holds none" if not, and _exit()s 0.
 *   The worker is not in the child, so that block is in use at the child's exit: a child that
 *   holds one must report exactly one block allocated from worker(). (A child that holds none may
 *   have one too: forked between the worker's malloc and its store to `current`.)
 *   Prints "fork_mid_hold: N children" and exits 0.
 *   Output only via write(2).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void *_Atomic current;
static atomic_bool stop;

static __attribute__((noinline)) void *begin_block(void) {
    return malloc(48);
}

static void *worker(void *unused) {
    (void)unused;
    while (!atomic_load(&stop)) {
        void *block = begin_block();
        atomic_store(&current, block);
        void *grown = realloc(block, 4000);
        atomic_store(&current, grown);
        atomic_store(&current, NULL);
        free(grown);
    }
    return NULL;
}

static void say(const char *line, int length) {
    if (write(1, line, (size_t)length) < 0)
        _exit(3);
}

int main(int argc, char **argv) {
    int children = argc > 1 ? atoi(argv[1]) : 200;
    free(malloc(8)); /* main records too: from the worker's first event on, two threads have */
    pthread_t thread;
    if (pthread_create(&thread, NULL, worker, NULL) != 0)
        return 2;
    char line[80];
    int started = 0;
    for (int i = 0; i < children; i++) {
        usleep(500); /* the worker runs on meanwhile */
        pid_t child = fork();
        if (child == 0) {
            bool holds = atomic_load(&current) != NULL;
            int length = snprintf(line, sizeof line, "child %d holds %s\n", (int)getpid(), holds ? "a block" : "none");
            say(line, length);
            _exit(0);
        }
        if (child < 0)
            break;
        started++;
        int status = 0;
        if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            return 1;
    }
    atomic_store(&stop, true);
    pthread_join(thread, NULL);
    int length = snprintf(line, sizeof line, "fork_mid_hold: %d children\n", started);
    say(line, length);
    return 0;
}
