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
 * With VFORK_TAKES_DESCRIPTOR=N in the environment, the child first puts its stderr at
 * descriptor N (dup2, then fcntl to clear close-on-exec), as a child set up for exec does:
 * on the parent's memory, the shim's state included, with a descriptor table of its own.
 * It _exit(126)s if either call fails.
 *
 * So the parent leaks 96 bytes in 2 blocks.  No stdio (no stdout buffer).
 */
#include <fcntl.h>
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

static void take_descriptor_if_asked(void)
{
    const char *asked = getenv("VFORK_TAKES_DESCRIPTOR");
    if (asked && (dup2(2, atoi(asked)) < 0 || fcntl(atoi(asked), F_SETFD, 0) < 0))
        _exit(126);
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
        take_descriptor_if_asked();
        execv(argv[1], argv + 1);
        _exit(127);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid)
        return 2;
    after_vfork();
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
