/*
 * vfork_exec.c - a vfork child, which runs on its parent's memory (the shim's
 * state and the thread's guard included) until it execs or exits.
 *
 * Usage: vfork_exec PROGRAM [ARG...]
 *
 *   parent, before vfork:  before_vfork()  malloc(32)  LEAKED 32 bytes
 *   child (vfork):         execv(PROGRAM, ARGS); if that fails, _exit(127)
 *   parent, after wait:    after_vfork()   malloc(64)  LEAKED 64 bytes
 *   exits with the child's status (127 when its exec failed).
 *
 * So the parent leaks 96 bytes in 2 blocks.  No stdio (no stdout buffer).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEEP(p) __asm__ volatile("" : : "g"(p) : "memory")

__attribute__((noinline)) void before_vfork(void)
{
    void *p = malloc(32);
    memset(p, 'b', 32);
    KEEP(p);
}

__attribute__((noinline)) void after_vfork(void)
{
    void *p = malloc(64);
    memset(p, 'a', 64);
    KEEP(p);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    before_vfork();
    pid_t pid = vfork();
    if (pid < 0)
        return 2;
    if (pid == 0) {
        execv(argv[1], argv + 1);
        _exit(127);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid)
        return 2;
    after_vfork();
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
