/*
 * chdir_fork.c - changes directory, then starts a child: a trace directory given as a
 * relative path must still be found (each process looks it up again).
 *
 * Usage: chdir_fork DIR [PROGRAM ARG...]
 *
 *   parent: before_chdir()  malloc(10)  LEAKED 10 bytes; then chdir(DIR) and fork
 *   child:  in_child()      malloc(20)  LEAKED 20 bytes; then execv(PROGRAM, ...)
 *           when given (127 if that fails), else _exit(0)
 *   parent exits 0 when the child exited 0, else 1 (2: chdir or fork failed).
 *
 * So the parent leaks 10 bytes in 1 block; the child, when it does not exec, leaks
 * 30 bytes in 2 blocks (its copy of the parent's block and its own). No stdio.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEEP(p) __asm__ volatile("" : : "g"(p) : "memory")

__attribute__((noinline)) void before_chdir(void)
{
    void *p = malloc(10);
    memset(p, 'b', 10);
    KEEP(p);
}

__attribute__((noinline)) void in_child(void)
{
    void *p = malloc(20);
    memset(p, 'c', 20);
    KEEP(p);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    before_chdir();
    if (chdir(argv[1]) != 0)
        return 2;
    pid_t pid = fork();
    if (pid < 0)
        return 2;
    if (pid == 0) {
        in_child();
        if (argc > 2) {
            execv(argv[2], argv + 2);
            _exit(127);
        }
        _exit(0);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid)
        return 2;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
