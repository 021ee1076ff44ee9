/*
 * killed_while_starting.c - fork children killed while their traces start.
 *
 * Usage: killed_while_starting CHILDREN BLOCKS
 * The parent holds BLOCKS small blocks (a fork child's trace starts by restating every block
 * it inherited), then, CHILDREN times, forks a child that allocates and frees until killed,
 * and kills it with SIGKILL after 8, 9, ... 27 ms (in turn): around the moment a tracer
 * starts a fork child's trace (10 ms), while it writes what the child inherited. A child
 * killed then must leave either no trace or one that says what it holds, never an empty
 * file. Prints "killed_while_starting: N children killed" and exits 0; leaks the BLOCKS
 * blocks (still reachable through `blocks`) and 48 bytes in leak_in_parent().
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void *volatile kept;
static void **blocks;

__attribute__((noinline)) static void leak_in_parent(void) {
    kept = malloc(48);
    kept = NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    int children = atoi(argv[1]), count = atoi(argv[2]);
    blocks = malloc((size_t)count * sizeof *blocks);
    for (int i = 0; i < count; i++) blocks[i] = malloc(16);
    for (int i = 0; i < children; i++) {
        pid_t child = fork();
        if (child == 0) {
            for (;;) {
                void *volatile block = malloc(32);
                free(block);
            }
        }
        if (child < 0) return 1;
        nanosleep(&(struct timespec){0, (8 + i % 20) * 1000000L}, NULL);
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
    }
    leak_in_parent();
    printf("killed_while_starting: %d children killed\n", children);
    return 0;
}
