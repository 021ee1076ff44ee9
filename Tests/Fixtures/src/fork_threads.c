/*
 * fork_threads.c - a fork while a second thread's allocations, and many of the first
 * thread's, are still on their way to the tracer: the child must start from the heap as it
 * was at the fork, every block with its stack, nothing freed twice or before it existed.
 *
 *   1. main allocates NBLOCKS (100,000) blocks of 16..256 bytes, so many that a tracer's
 *      consumer is still busy with them when the rest happens;
 *   2. main starts a worker, which allocates WBLOCKS (1,000) blocks of 64 bytes, one of
 *      them in leaked_by_worker() (its address is dropped), tells main, and waits;
 *   3. main forks at once.
 *      The child frees main's blocks and the worker's other blocks (its copies of them),
 *      allocates 48 bytes in child_leak() and drops them, and ends with _exit(0).
 *      The parent waits for the child, lets the worker go, joins it, frees the same blocks
 *      and exits 0 (1 if the child did not exit 0).
 *
 * Exact figures, besides the worker's DTV (pthread_create calloc's one per thread):
 *   parent: NBLOCKS + WBLOCKS = 101,000 mallocs, 100,999 frees, 64 bytes definitely lost in
 *           1 block (leaked_by_worker);
 *   child:  the same 101,000 before the fork and its own 1, 100,999 frees, 64 + 48 bytes
 *           definitely lost in 2 blocks.
 * Output only via write(2), nothing buffered to duplicate.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NBLOCKS 100000
#define WBLOCKS 1000
#define KEEP(p) __asm__ volatile("" : : "g"(p) : "memory")

static void *blocks[NBLOCKS];
static void *worker_blocks[WBLOCKS];
static atomic_int worker_done, worker_may_go;

__attribute__((noinline)) static void *main_block(int i) { return malloc(16 + (size_t)((i * 37) % 16) * 16); }

__attribute__((noinline)) static void *worker_block(void) { return malloc(64); }

__attribute__((noinline)) static void leaked_by_worker(void)
{
    void *p = malloc(64);
    memset(p, 'w', 64);
    KEEP(p);
}

__attribute__((noinline)) static void child_leak(void)
{
    void *p = malloc(48);
    memset(p, 'c', 48);
    KEEP(p);
}

static void *worker(void *unused)
{
    (void)unused;
    for (int i = 0; i < WBLOCKS - 1; i++)
        worker_blocks[i] = worker_block();
    leaked_by_worker();
    atomic_store(&worker_done, 1);
    while (!atomic_load(&worker_may_go))
        usleep(1000);
    return NULL;
}

/* The pointers are cleared too: glibc hands a freed address out again at once (valgrind
 * holds it back), and a stale copy in these arrays would make child_leak's block reachable. */
static void free_all(void)
{
    for (int i = 0; i < NBLOCKS; i++) {
        free(blocks[i]);
        blocks[i] = NULL;
    }
    for (int i = 0; i < WBLOCKS - 1; i++) {
        free(worker_blocks[i]);
        worker_blocks[i] = NULL;
    }
}

int main(void)
{
    for (int i = 0; i < NBLOCKS; i++)
        blocks[i] = main_block(i);
    pthread_t thread;
    if (pthread_create(&thread, NULL, worker, NULL) != 0)
        return 2;
    while (!atomic_load(&worker_done))
        ;
    pid_t pid = fork();
    if (pid < 0)
        return 2;
    if (pid == 0) {
        free_all();
        child_leak();
        _exit(0);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid)
        return 1;
    atomic_store(&worker_may_go, 1);
    pthread_join(thread, NULL);
    free_all();
    if (write(1, "fork_threads: done\n", 19) < 0)
        return 3;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
