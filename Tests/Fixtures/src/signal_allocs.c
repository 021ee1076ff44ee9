/*
 * signal_allocs.c - allocation in a signal handler, interrupting the program's own.
 *
 * A second thread sends SIGUSR1 to the main thread, as fast as it can, while main does
 * 2,000,000 malloc/free pairs; the handler does a malloc/free pair of its own each time (not
 * async-signal-safe by POSIX, and common: crash and profiling handlers do it). The handler
 * interrupts a free or an allocation anywhere, in the shim too; a tracer must neither lose
 * nor corrupt an event then, nor hang. Prints "signal_allocs: ok" and the number of handler
 * runs on stderr. Heap: 2,000,000 pairs by main, one per handler run, one more to set up,
 * stdout's buffer in use.
 *
 * glibc's malloc is not reentrant either: a handler taking a block from the tcache bin that
 * main is taking one from corrupts it (main's sizes are 16-271 bytes; a handler's malloc(24)
 * crashed in tcache_get, 1 run in about 240 on a loaded machine). So the handler's blocks
 * are 1,000 bytes, a bin main never uses, and main puts one in that bin before the signals
 * start, so that the handler never reaches the arena (and its lock, which main may hold).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile sig_atomic_t handler_pairs;
static atomic_bool main_done;
static pid_t main_tid;

static void on_signal(int signal_number) {
    (void)signal_number;
    void *volatile block = malloc(1000);
    free(block);
    handler_pairs++;
}

static void *signaller(void *unused) {
    (void)unused;
    while (!atomic_load(&main_done)) {
        syscall(SYS_tgkill, getpid(), main_tid, SIGUSR1);
        for (volatile int spin = 0; spin < 200; spin++) {}
    }
    return NULL;
}

int main(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    action.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &action, NULL);
    main_tid = (pid_t)syscall(SYS_gettid);
    free(malloc(1000));
    pthread_t thread;
    if (pthread_create(&thread, NULL, signaller, NULL) != 0) return 1;
    for (long i = 0; i < 2000000; i++) {
        void *volatile block = malloc(16 + (size_t)(i & 255));
        free(block);
    }
    atomic_store(&main_done, true);
    pthread_join(thread, NULL);
    fprintf(stderr, "signal_allocs: %d handler runs\n", (int)handler_pairs);
    printf("signal_allocs: ok\n");
    return 0;
}
