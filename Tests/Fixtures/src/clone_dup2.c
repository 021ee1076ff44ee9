/*
 * clone_dup2.c - children made with glibc's clone(), which runs no fork handlers, while
 * another thread allocates: each child puts /dev/null at descriptor 1000 (dup2) and exits.
 *
 * Usage: clone_dup2 CHILDREN
 * A child copies the parent's memory as it is at that moment, a tracer's locks included,
 * held or not by threads the child does not have; its dup2 must not wait for them. A child
 * still running after 2 s (a loaded machine may keep one waiting a while) is counted as hung
 * and killed. Prints "clone_dup2: N children, H hung" and exits 0 when none hung, 1
 * otherwise. Heap: the allocating thread's pairs, a 16-byte block leaked by
 * leak_after_clones().
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void *volatile kept;

__attribute__((noinline)) static void leak_after_clones(void) {
    kept = malloc(16);
    kept = NULL;
}

static atomic_int stop;
static char child_stack[65536];

static void *allocate(void *unused) {
    (void)unused;
    for (unsigned long n = 0; !atomic_load(&stop); n++) {
        void *volatile block = malloc(n % 300 + 1);
        free(block);
    }
    return NULL;
}

static int child(void *unused) {
    (void)unused;
    int null = open("/dev/null", O_WRONLY);
    _exit(dup2(null, 1000) == 1000 ? 0 : 1);
}

static int finished_within_2s(pid_t pid) {
    int status;
    for (int waited = 0; waited < 2000; waited++) {
        if (waitpid(pid, &status, WNOHANG) == pid) return 1;
        usleep(1000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    int children = atoi(argv[1]), hung = 0;
    pthread_t thread;
    pthread_create(&thread, NULL, allocate, NULL);
    for (int i = 0; i < children; i++) {
        pid_t pid = clone(child, child_stack + sizeof child_stack, SIGCHLD, NULL);
        if (pid < 0 || !finished_within_2s(pid)) hung++;
    }
    atomic_store(&stop, 1);
    pthread_join(thread, NULL);
    leak_after_clones();
    printf("clone_dup2: %d children, %d hung\n", children, hung);
    return hung == 0 ? 0 : 1;
}
