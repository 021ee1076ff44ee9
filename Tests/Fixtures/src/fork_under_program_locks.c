/*
 * fork_under_program_locks.c - forks while another thread waits, inside the loader's list
 * lock, for a lock the forking thread holds, or the other way round.
 *
 * Usage: fork_under_program_locks MODE [CHILDREN]   (default 50)
 *   library:  a worker calls forkguard_update() of libforkguard.so in a loop: it holds the
 *             library's mutex while it walks the loaded objects and allocates from new call
 *             sites; the library's fork handlers (registered in its constructor, before a
 *             preloaded tracer's) take that mutex before each fork.
 *   callback: a worker walks the loaded objects in a loop (dl_iterate_phdr) with a callback
 *             that takes the program's table mutex; main's own fork handler (pthread_atfork,
 *             registered in main) takes that mutex before each fork.
 *   around:   the same worker; main holds the table mutex around each fork() call.
 *   Natively nothing waits for long: the worker's wait ends when the fork is made. Main forks
 *   CHILDREN children one after another; each allocates from 8 call sites of its own, leaks
 *   24 B from child_leak() (line 44, called from main line 121) and _exit()s 0. A child that
 *   takes 30 s is killed, and a parent still forking after 60 s (a fork that waits for ever)
 *   ends itself with status 1, naming the mode on stderr.
 *   Prints "fork_under_program_locks MODE: N children" and exits 0, or exits 1. Output only
 *   via write(2).
 */
#define _GNU_SOURCE
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void forkguard_update(unsigned path);

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long table_entries;
static atomic_bool stop;
static const char *mode;

static __attribute__((noinline)) void *child_leak(void) {
    return malloc(24);
}

#define SITE(n) \
    static __attribute__((noinline)) void site##n(void) { free(malloc(n + 1)); }
SITE(0) SITE(1) SITE(2) SITE(3) SITE(4) SITE(5) SITE(6) SITE(7)
static void (*const sites[])(void) = {site0, site1, site2, site3, site4, site5, site6, site7};

static void take_table(void) { pthread_mutex_lock(&table_lock); }
static void give_table(void) { pthread_mutex_unlock(&table_lock); }

static int note_object(struct dl_phdr_info *info, size_t size, void *data) {
    (void)info, (void)size, (void)data;
    take_table();
    table_entries++;
    give_table();
    return 0;
}

static void *worker(void *unused) {
    (void)unused;
    for (unsigned path = 0; !atomic_load(&stop); path++) {
        if (strcmp(mode, "library") == 0)
            forkguard_update(path);
        else
            dl_iterate_phdr(note_object, NULL);
    }
    return NULL;
}

static void say(const char *text) {
    if (write(2, text, strlen(text)) < 0)
        _exit(3);
}

/* Ends the process without exit handlers, which could wait on what the stuck fork holds. */
static void *watchdog(void *unused) {
    (void)unused;
    sleep(60);
    say("fork_under_program_locks: a fork waited for 60 s\n");
    syscall(SYS_exit_group, 1);
    return NULL;
}

/* Whether the child ended well within 30 s; one that did not is killed. */
static int waited(pid_t child) {
    for (int tick = 0; tick < 30000; tick++) {
        int status;
        if (waitpid(child, &status, WNOHANG) == child)
            return WIFEXITED(status) && WEXITSTATUS(status) == 0;
        struct timespec millisecond = {0, 1000000};
        nanosleep(&millisecond, NULL);
    }
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    return 0;
}

int main(int argc, char **argv) {
    mode = argc > 1 ? argv[1] : "";
    int children = argc > 2 ? atoi(argv[2]) : 50;
    bool around = strcmp(mode, "around") == 0;
    if (strcmp(mode, "library") != 0 && strcmp(mode, "callback") != 0 && !around)
        return 2;
    if (strcmp(mode, "callback") == 0)
        pthread_atfork(take_table, give_table, give_table);
    pthread_t watcher, work;
    if (pthread_create(&watcher, NULL, watchdog, NULL) != 0 || pthread_create(&work, NULL, worker, NULL) != 0)
        return 1;
    int failed = 0;
    for (int i = 0; i < children && !failed; i++) {
        if (around)
            take_table();
        pid_t child = fork();
        if (child == 0) {
            for (int s = 0; s < 8; s++)
                sites[s]();
            _exit(child_leak() ? 0 : 1);
        }
        if (around)
            give_table();
        if (child < 0 || !waited(child)) {
            char line[96];
            snprintf(line, sizeof line, "fork_under_program_locks %s: child %d hung or failed\n", mode, i);
            say(line);
            failed = 1;
        }
    }
    atomic_store(&stop, true);
    pthread_join(work, NULL);
    if (failed)
        return 1;
    char line[96];
    int length = snprintf(line, sizeof line, "fork_under_program_locks %s: %d children\n", mode, children);
    if (write(1, line, (size_t)length) < 0)
        return 3;
    return 0;
}
