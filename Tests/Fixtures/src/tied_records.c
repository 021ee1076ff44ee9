/*
 * tied_records.c - loss records that tie on size, kind and blocks (output: tied_records).
 *
 * memcheck orders records of equal total bytes, kind and blocks by the address of their
 * allocation stack's ExeContext (mc_leakcheck.c, cmp_LossRecords), which is created when a
 * stack first allocates: ties come in the order their stacks were first seen, whatever their
 * code addresses. The functions below are defined in an order unrelated to that one:
 *
 *   keep_x, keep_y, keep_z   16 B each, kept in g_kept:      still reachable, 1 block each
 *   lose_a ... lose_f        32 B each, pointer dropped:      definitely lost, 1 block each
 *
 * First seen, in main's order: lose_d; lose_f (its first block freed, the one lost allocated
 * only on the loop's second round, after lose_b's); keep_z; lose_b; keep_x; lose_e and lose_a
 * (in that order, through a table in one loop); keep_y; lose_c.
 *
 * memcheck numbers them 1 keep_z, 2 keep_x, 3 keep_y, then 4 lose_d, 5 lose_f, 6 lose_b,
 * 7 lose_e, 8 lose_a, 9 lose_c (by code address they would be x, y, z and a to f). No stdio;
 * main scrubs the dead stack before it returns. Exit status 0.
 *
 * `tied_records fork`: then forks; the child, which inherits every block, leaves with
 * _exit(0), and the parent waits for it. memcheck numbers both processes' records alike.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEEP(p) __asm__ volatile("" : : "r"(p) : "memory")

void *volatile g_kept[3];

__attribute__((noinline)) void *lose_a(void)
{
    return malloc(32);
}

__attribute__((noinline)) void *lose_b(void)
{
    return malloc(32);
}

__attribute__((noinline)) void *lose_c(void)
{
    return malloc(32);
}

__attribute__((noinline)) void *lose_d(void)
{
    return malloc(32);
}

__attribute__((noinline)) void *lose_e(void)
{
    return malloc(32);
}

__attribute__((noinline)) void *lose_f(void)
{
    return malloc(32);
}

__attribute__((noinline)) void *keep_x(void)
{
    return malloc(16);
}

__attribute__((noinline)) void *keep_y(void)
{
    return malloc(16);
}

__attribute__((noinline)) void *keep_z(void)
{
    return malloc(16);
}

__attribute__((noinline)) void scrub_stack(void)
{
    char pad[16384];
    memset(pad, 0, sizeof pad);
    KEEP(pad);
}

void *(*const volatile g_in_turn[2])(void) = {lose_e, lose_a};

int main(int argc, char **argv)
{
    KEEP(lose_d());
    for (volatile int round = 0; round < 2; round++) {
        void *p = lose_f(); /* one call site: one stack, first seen on round 0 */
        if (round == 0) {
            free(p);
            g_kept[0] = keep_z();
            KEEP(lose_b());
        } else {
            KEEP(p);
        }
    }
    g_kept[1] = keep_x();
    for (volatile int i = 0; i < 2; i++) KEEP(g_in_turn[i]()); /* one call site, two stacks */
    g_kept[2] = keep_y();
    KEEP(lose_c());
    scrub_stack();
    if (argc > 1 && strcmp(argv[1], "fork") == 0) {
        pid_t child = fork();
        if (child == 0) _exit(0);
        if (child < 0 || waitpid(child, NULL, 0) != child) return 1;
    }
    return 0;
}
