/*
 * fork_while_dlopening.c - forks while another thread opens and closes a library.
 *
 * Usage: fork_while_dlopening [CHILDREN]   (default 100)
 *   A worker thread dlopen()s and dlclose()s libchurn1.so (from the directory of this
 *   executable) in a loop while main forks CHILDREN children one after another. Each child
 *   allocates and frees from 16 call sites of its own (new stacks, so a tracer looks at the
 *   loaded objects there), leaks 24 bytes from child_leak() and _exit()s 0. A fork can land
 *   while the worker holds the loader's list lock: a child that then walks the list waits for
 *   ever, so main gives each child 30 s and kills one that takes longer.
 *   Prints "fork_while_dlopening: N children" and exits 0, or names a child that hung (stderr)
 *   and exits 1. Output only via write(2).
 */
#include <dlfcn.h>
#include <limits.h>
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

static char plugin[PATH_MAX];
static atomic_bool stop;

static void *open_and_close(void *unused) {
    (void)unused;
    while (!atomic_load(&stop)) {
        void *handle = dlopen(plugin, RTLD_NOW | RTLD_LOCAL);
        if (handle)
            dlclose(handle);
    }
    return NULL;
}

#define SITE(n) \
    static __attribute__((noinline)) void site##n(void) { free(malloc(n + 1)); }
SITE(0) SITE(1) SITE(2) SITE(3) SITE(4) SITE(5) SITE(6) SITE(7)
SITE(8) SITE(9) SITE(10) SITE(11) SITE(12) SITE(13) SITE(14) SITE(15)
static void (*const sites[])(void) = {site0, site1, site2,  site3,  site4,  site5,  site6,  site7,
                                      site8, site9, site10, site11, site12, site13, site14, site15};

static __attribute__((noinline)) void *child_leak(void) {
    return malloc(24);
}

static void say(const char *text) {
    if (write(2, text, strlen(text)) < 0)
        _exit(3);
}

/* Whether the child ended within 30 s; one that did not is killed. */
static int waited(pid_t child) {
    for (int tick = 0; tick < 30000; tick++) {
        int status;
        pid_t ended = waitpid(child, &status, WNOHANG);
        if (ended == child)
            return WIFEXITED(status) && WEXITSTATUS(status) == 0;
        struct timespec millisecond = {0, 1000000};
        nanosleep(&millisecond, NULL);
    }
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    return 0;
}

int main(int argc, char **argv) {
    int children = argc > 1 ? atoi(argv[1]) : 100;
    ssize_t n = readlink("/proc/self/exe", plugin, sizeof plugin - 16);
    if (n <= 0)
        return 1;
    plugin[n] = '\0';
    strcpy(strrchr(plugin, '/') + 1, "libchurn1.so");
    pthread_t worker;
    if (pthread_create(&worker, NULL, open_and_close, NULL) != 0)
        return 1;
    int failed = 0;
    for (int i = 0; i < children && !failed; i++) {
        pid_t child = fork();
        if (child == 0) {
            for (int s = 0; s < 16; s++)
                sites[s]();
            _exit(child_leak() ? 0 : 1);
        }
        if (child < 0 || !waited(child)) {
            char line[80];
            snprintf(line, sizeof line, "fork_while_dlopening: child %d hung or failed\n", i);
            say(line);
            failed = 1;
        }
    }
    atomic_store(&stop, true);
    pthread_join(worker, NULL);
    if (failed)
        return 1;
    char line[64];
    int length = snprintf(line, sizeof line, "fork_while_dlopening: %d children\n", children);
    if (write(1, line, (size_t)length) < 0)
        return 3;
    return 0;
}
