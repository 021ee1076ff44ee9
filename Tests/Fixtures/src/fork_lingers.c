/*
 * fork_lingers.c - a fork child that lives on, allocating, and is then killed: its trace
 * must have started while it ran (a fork child's trace starts late, once it has lived
 * 10 ms or filled a mebibyte of ring, and a killed child never reaches its exit).
 *
 * Usage: fork_lingers [outlive]   (outlive: the parent exits, the child lives 1.5 s on)
 *
 *   parent: before_fork()  malloc(16)  LEAKED 16 bytes; then fork
 *   child:  in_child()     malloc(48)  LEAKED 48 bytes; then 200 times malloc(10) + free,
 *           100 us apart (20 ms at least), tells the parent on a pipe and waits, to be
 *           killed by SIGKILL
 *   parent: waits for the child's word, 300 ms more (the child's trace is written out within
 *           a few ms once the child is quiet), kills it, reaps it, exits 0 (1 on a failure).
 *
 * So the parent leaks 16 bytes in 1 block; the child's trace is incomplete and holds 64
 * bytes in 2 blocks in use (its copy of the parent's block and its own), 202 allocs, 200
 * frees, 2,064 bytes allocated. No stdio.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KEEP(p) __asm__ volatile("" : : "g"(p) : "memory")

__attribute__((noinline)) void before_fork(void)
{
    void *p = malloc(16);
    memset(p, 'p', 16);
    KEEP(p);
}

__attribute__((noinline)) void in_child(void)
{
    void *p = malloc(48);
    memset(p, 'c', 48);
    KEEP(p);
}

static void sleep_us(long microseconds)
{
    struct timespec delay = {0, microseconds * 1000};
    while (nanosleep(&delay, &delay) != 0) {
    }
}

int main(int argc, char **argv)
{
    before_fork();
    int word[2];
    if (pipe(word) != 0)
        return 1;
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        in_child();
        for (int i = 0; i < 200; i++) {
            void *p = malloc(10);
            KEEP(p);
            free(p);
            sleep_us(100);
        }
        char done = 'd';
        if (write(word[1], &done, 1) != 1)
            _exit(1);
        if (argc > 1 && strcmp(argv[1], "outlive") == 0) { /* a daemon left behind */
            struct timespec delay = {1, 500000000};
            while (nanosleep(&delay, &delay) != 0) {
            }
            _exit(0);
        }
        for (;;)
            pause();
    }
    char done;
    if (read(word[0], &done, 1) != 1)
        return 1;
    sleep_us(300000);
    if (argc > 1 && strcmp(argv[1], "outlive") == 0)
        return 0;
    kill(pid, SIGKILL);
    int status = 0;
    if (waitpid(pid, &status, 0) != pid)
        return 1;
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL ? 0 : 1;
}
