/*
 * forks_at_exit.c - a thread forks in a loop while the main thread exits.
 *
 * Usage: forks_at_exit [ROUNDS]   (default 30)
 *   Runs ROUNDS rounds one after another, each a fresh image of this program ("round", exec'd
 *   by a fork child). In a round, one thread replaces blocks of 48 bytes in a global table of
 *   20,000 for ever (two threads record, and the table's blocks, still reachable at exit, are
 *   many for the exit to apply) and another forks children for ever, each of which waits to
 *   be killed: the thread kills it at once and reaps it, and it dies with its parent if that
 *   exits first (killed before its trace starts, it leaves none). After 5 ms the main thread
 *   calls exit(0) while the forks go on.
 *   A round that has not ended after 10 s is killed and counted as hung, and no more rounds
 *   are run. Under the shim of 03e8deb to 2026-11-25, the exit took the drain over while it
 *   was paused for a fork; the next fork waited for ever for a pause that never came, holding
 *   the loader's lock, and the exit's leak scan waited for that lock (about 1 round in 2).
 *   Prints "forks_at_exit: R rounds, H hung" and exits 0 when none hung, 1 otherwise.
 *   Output only via write(2).
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TABLE_BLOCKS 20000
#define ROUND_LIMIT_MS 10000

void *table[TABLE_BLOCKS]; /* a global: still reachable at exit */

static void *replace_blocks(void *unused) {
    (void)unused;
    for (unsigned i = 0;; i = (i + 7919) % TABLE_BLOCKS) {
        free(table[i]);
        table[i] = malloc(48);
    }
    return NULL;
}

static void *fork_children(void *unused) {
    (void)unused;
    for (;;) {
        pid_t parent = getpid();
        pid_t child = fork();
        if (child == 0) {
            /* Killed with its parent too: the round may exit between the fork and the kill. */
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent)
                raise(SIGKILL);
            for (;;)
                pause();
        }
        if (child > 0) {
            kill(child, SIGKILL);
            waitpid(child, NULL, 0);
        }
    }
    return NULL;
}

static void sleep_ms(long ms) {
    struct timespec delay = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&delay, NULL);
}

static int run_round(void) {
    pthread_t replacer, forker;
    if (pthread_create(&replacer, NULL, replace_blocks, NULL) != 0 ||
        pthread_create(&forker, NULL, fork_children, NULL) != 0)
        return 2;
    sleep_ms(5);
    exit(0);
}

/* Runs one round in a fresh image; false if it had to be killed. */
static bool round_ends(const char *self) {
    pid_t round = fork();
    if (round == 0) {
        execl("/proc/self/exe", self, "round", (char *)NULL);
        _exit(127);
    }
    if (round < 0)
        return true;
    for (int waited_ms = 0; waitpid(round, NULL, WNOHANG) == 0; waited_ms++) {
        if (waited_ms >= ROUND_LIMIT_MS) {
            kill(round, SIGKILL);
            waitpid(round, NULL, 0);
            return false;
        }
        sleep_ms(1);
    }
    return true;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "round") == 0)
        return run_round();
    int rounds = argc > 1 ? atoi(argv[1]) : 30, ran = 0, hung = 0;
    while (ran < rounds && hung == 0) {
        if (!round_ends(argv[0]))
            hung++;
        ran++;
    }
    char line[80];
    int length = snprintf(line, sizeof line, "forks_at_exit: %d rounds, %d hung\n", ran, hung);
    if (write(1, line, (size_t)length) < 0)
        return 3;
    return hung == 0 ? 0 : 1;
}
