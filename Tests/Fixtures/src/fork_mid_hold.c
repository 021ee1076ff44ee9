/*
 * fork_mid_hold.c - main forks children while worker threads each allocate, grow and free one
 * block after another, so that forks land while workers are inside heapgate's handling of a
 * free or an allocation (CShim/hg_in_flight.c), or of a block held back from its ring
 * (CShim/hg_holdback.c): a fork cuts every one of them short.
 *
 * Usage: fork_mid_hold [CHILDREN [WORKERS [ENDED]]]   (defaults 200, 1 and 0; WORKERS <= 2000)
 *   First, ENDED threads are made and joined one after another, each with a stack larger than
 *   the one before (so that no thread reuses an ended one's stack, and with it the address of
 *   its TLS), each freeing a block it mallocs; worker 0 then runs on a stack of the fixture's
 *   own (a global array), so that its TLS lies where no ended thread's did.
 *   Worker i loops: begin_block() mallocs 48 bytes and publishes the pointer in `current[i]`;
 *   it is grown by realloc to 4,000 bytes (published again); then `current[i]` is cleared and
 *   the block freed; with several workers, every 8th round a worker sleeps 0.2 ms (so that main
 *   gets to fork). Main forks CHILDREN children one after another (0.5 ms apart, 2 ms with
 *   several workers). Each child counts the blocks published in `current` (globals: still
 *   reachable), writes "child PID holds N blocks" and _exit()s 0. The workers are not in the
 *   child, so those blocks are in use at the child's exit: a child that holds N blocks must
 *   report at least N blocks allocated from worker() (more if a fork found workers between
 *   their malloc and their store, or between clearing `current[i]` and their free: those
 *   blocks are definitely lost in the child, as memcheck says too).
 *   Prints "fork_mid_hold: N children" and exits 0 (2 if a thread cannot be made).
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
static bool several;

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
        if (several && round % 8 == 0)
            usleep(200);
    }
    return NULL;
}

static void *short_lived(void *unused) {
    (void)unused;
    void *volatile block = malloc(8); /* volatile: the compiler may drop free(malloc(8)) */
    free(block);
    return NULL;
}

static char worker_stack[1 << 20] __attribute__((aligned(4096)));

static void say(const char *line, int length) {
    if (write(1, line, (size_t)length) < 0)
        _exit(3);
}

int main(int argc, char **argv) {
    int children = argc > 1 ? atoi(argv[1]) : 200;
    int workers = argc > 2 ? atoi(argv[2]) : 1;
    int ended = argc > 3 ? atoi(argv[3]) : 0;
    if (workers < 1 || workers > MAX_WORKERS)
        return 2;
    several = workers > 1;
    for (int i = 0; i < ended; i++) {
        pthread_attr_t growing;
        pthread_t short_thread;
        pthread_attr_init(&growing);
        pthread_attr_setstacksize(&growing, 65536 + (size_t)i * 4096);
        if (pthread_create(&short_thread, &growing, short_lived, NULL) != 0)
            return 2;
        pthread_join(short_thread, NULL);
        pthread_attr_destroy(&growing);
    }
    pthread_attr_t attributes, own_stack;
    pthread_attr_init(&attributes);
    pthread_attr_setstacksize(&attributes, 64 * 1024);
    pthread_attr_init(&own_stack);
    pthread_attr_setstack(&own_stack, worker_stack, sizeof worker_stack);
    static pthread_t threads[MAX_WORKERS];
    for (long i = 0; i < workers; i++)
        if (pthread_create(&threads[i], i == 0 && ended > 0 ? &own_stack : &attributes, worker, (void *)i) != 0)
            return 2;
    char line[80];
    int started = 0;
    for (int i = 0; i < children; i++) {
        usleep(several ? 2000 : 500); /* the workers run on meanwhile */
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
    int length = snprintf(line, sizeof line, "fork_mid_hold: %d children\n", started);
    say(line, length);
    return 0;
}
