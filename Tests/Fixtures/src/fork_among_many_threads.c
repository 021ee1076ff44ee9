/*
 * fork_among_many_threads.c - main forks children while many worker threads each allocate,
 * grow and free one block after another, so that at each fork far more threads than a few
 * dozen are inside heapgate's handling of a free or an allocation (CShim/hg_in_flight.c): a
 * fork cuts every one of them short.
 *
 * Usage: fork_among_many_threads [WORKERS [CHILDREN]]   (defaults 150 and 20; WORKERS <= 2000)
 *   Worker i loops: begin_block() mallocs 48 bytes and publishes the pointer in `current[i]`;
 *   it is grown by realloc to 4,000 bytes (published again); then `current[i]` is cleared and
 *   the block freed; every 8th round the worker sleeps 0.2 ms (so that main gets to fork).
 *   Main forks CHILDREN children one after another, 2 ms apart. Each child counts the blocks
 *   published in `current` (globals: still reachable), writes "child PID holds N blocks" and
 *   _exit()s 0. The workers are not in the child, so those blocks are in use at the child's
 *   exit: a child that holds N blocks must report at least N blocks allocated from worker()
 *   (more if a fork found workers between clearing `current[i]` and their free: those blocks
 *   are definitely lost in the child, as memcheck says too).
 *   Prints "fork_among_many_threads: N children" and exits 0 (2 if a thread cannot be made).
 *   Output only via write(2).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_WORKERS 2000

static void *_Atomic current[MAX_WORKERS];
static atomic_bool stop;

static __attribute__((noinline)) void *begin_block(void) {
    return malloc(48);
}

static void *worker(void *index) {
    void *_Atomic *mine = &current[(long)index];
    for (unsigned round = 1; !atomic_load(&stop); round++) {
        void *block = begin_block();
        atomic_store(mine, block);
        void *grown = realloc(block, 4000);
        atomic_store(mine, grown);
        atomic_store(mine, NULL);
        free(grown);
        if (round % 8 == 0)
            usleep(200);
    }
    return NULL;
}

static void say(const char *line, int length) {
    if (write(1, line, (size_t)length) < 0)
        _exit(3);
}

int main(int argc, char **argv) {
    int workers = argc > 1 ? atoi(argv[1]) : 150;
    int children = argc > 2 ? atoi(argv[2]) : 20;
    if (workers < 1 || workers > MAX_WORKERS)
        return 2;
    free(malloc(8)); /* main records too: from the first worker's first event on, two threads have */
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setstacksize(&attributes, 64 * 1024);
    static pthread_t threads[MAX_WORKERS];
    for (long i = 0; i < workers; i++)
        if (pthread_create(&threads[i], &attributes, worker, (void *)i) != 0)
            return 2;
    char line[80];
    int started = 0;
    for (int i = 0; i < children; i++) {
        usleep(2000); /* the workers run on meanwhile */
        pid_t child = fork();
        if (child == 0) {
            int holds = 0;
            for (int w = 0; w < workers; w++)
                holds += atomic_load(&current[w]) != NULL;
            int length = snprintf(line, sizeof line, "child %d holds %d blocks\n", (int)getpid(), holds);
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
    for (int i = 0; i < workers; i++)
        pthread_join(threads[i], NULL);
    int length = snprintf(line, sizeof line, "fork_among_many_threads: %d children\n", started);
    say(line, length);
    return 0;
}
