/*
 * clone_allocates.c - a single-threaded program whose child, made with glibc's clone()
 * (no CLONE_VM, so no fork handlers run), allocates far more than a tracer's event ring holds.
 *
 * Usage: clone_allocates [fork]
 *   child:  with "fork", first forks a grandchild that prints "clone_allocates: grandchild
 *           done" and _exits 0, and waits for it; then 2,000,000 malloc/free pairs, prints
 *           "clone_allocates: child done", returns 0
 *   parent: waits for it (20 s at most, then kills it and says so), prints
 *           "clone_allocates: child exited 0", leak_in_parent() leaks 33 bytes, exits 0
 *           (1 if the child did not end by itself).
 * The child copies the parent's memory, a tracer's rings and state included, but not a
 * tracer's thread: it must not wait for that thread to empty a full ring, nor for it to pause
 * before a fork.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void *volatile kept;

__attribute__((noinline)) static void leak_in_parent(void) {
    kept = malloc(33);
    kept = NULL;
}

static char child_stack[1 << 20];

static int child(void *forks) {
    if (forks) {
        pid_t grandchild = fork();
        if (grandchild == 0) {
            printf("clone_allocates: grandchild done\n");
            fflush(stdout);
            _exit(0);
        }
        if (grandchild < 0 || waitpid(grandchild, NULL, 0) != grandchild) return 1;
    }
    for (long i = 0; i < 2000000; i++) {
        void *volatile block = malloc((size_t)(i % 300) + 1);
        free(block);
    }
    printf("clone_allocates: child done\n");
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv) {
    void *forks = argc > 1 && strcmp(argv[1], "fork") == 0 ? argv[1] : NULL;
    pid_t pid = clone(child, child_stack + sizeof child_stack, SIGCHLD, forks);
    if (pid < 0) return 2;
    int status = 0, ended = 0;
    for (int waited = 0; waited < 2000 && !ended; waited++) {
        ended = waitpid(pid, &status, WNOHANG) == pid;
        if (!ended) usleep(10000);
    }
    if (!ended) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        printf("clone_allocates: child hung\n");
        return 1;
    }
    printf("clone_allocates: child exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    leak_in_parent();
    return 0;
}
