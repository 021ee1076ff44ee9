/*
 * exit_status.c - ends in a chosen way.
 *
 * Usage: exit_status              return 0
 *        exit_status N            exit(N)
 *        exit_status signal N     raise(N); for N = 6 (SIGABRT) abort()
 *
 * Before that, hold_block() allocates 100 bytes and keeps the pointer in a
 * global: 100 bytes in 1 block "still reachable" at exit (not a leak), so
 * every way of ending has one known live block to report.
 * exit_status quick N: quick_exit(N). If the signal does not kill the process
 * (ignored, blocked, or not terminating by default), it exits with status 125.
 * Bad arguments: status 2.  Output: none.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

void *held;

__attribute__((noinline)) void hold_block(void)
{
    held = malloc(100);
    memset(held, 'h', 100);
}

int main(int argc, char **argv)
{
    hold_block();
    if (argc == 1)
        return 0;
    if (argc == 2)
        exit(atoi(argv[1]));
    if (argc == 3 && strcmp(argv[1], "signal") == 0) {
        int sig = atoi(argv[2]);
        if (sig == SIGABRT)
            abort();
        raise(sig);
        return 125;
    }
    if (argc == 3 && strcmp(argv[1], "quick") == 0)
        quick_exit(atoi(argv[2]));
    return 2;
}
