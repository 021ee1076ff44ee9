/*
 * exec_child.c - fork, then execv another program in the child.
 *
 * Usage: exec_child PROGRAM [ARGS...]
 *   The child runs execv(PROGRAM, {PROGRAM, ARGS..., NULL}); the parent waits
 *   and exits with the child's exit status (128+N if the child was killed by
 *   signal N; 127 if execv failed; 2 on a usage error).
 * This program itself allocates nothing (no malloc, no stdio), so every
 * heap figure belongs to the exec'd program, e.g. OUTDIR/leak_basic.
 */
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        static const char usage[] = "usage: exec_child PROGRAM [ARGS...]\n";
        if (write(2, usage, sizeof usage - 1) < 0)
            return 2;
        return 2;
    }
    pid_t pid = fork();
    if (pid < 0)
        return 2;
    if (pid == 0) {
        execv(argv[1], &argv[1]);
        static const char fail[] = "exec_child: execv failed\n";
        if (write(2, fail, sizeof fail - 1) < 0)
            _exit(127);
        _exit(127);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid)
        return 2;
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}
