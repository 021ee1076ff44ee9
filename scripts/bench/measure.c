/*
 * measure.c - run one command and report what /usr/bin/time -f '%e %U %S %M' reports,
 * with a nanosecond wall clock.
 *
 * Usage: measure OUTFILE [-e NAME=VALUE]... PROGRAM [ARGS...]
 *   Forks, sets the -e variables in the child only (so LD_PRELOAD reaches PROGRAM and
 *   not this process), execs PROGRAM (PATH search), waits with wait4 and writes one line to OUTFILE:
 *     "<wall s> <user s> <sys s> <max RSS KB> <status>"
 *   status is the exit code, or 128+N when the program died of signal N.  Exits with
 *   the same status (127 when PROGRAM cannot be run).
 *
 * Why not os.wait4 in the Python driver directly: a child forked from Python keeps
 * Python's resident set until exec, and the kernel folds that into the child's max RSS
 * (~17 MB), which swamps small programs.  Forked from this tiny process the floor is
 * about 1 MB, as with /usr/bin/time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double seconds(struct timeval tv) { return (double)tv.tv_sec + (double)tv.tv_usec / 1e6; }

int main(int argc, char **argv)
{
    int first = 2; /* index of PROGRAM */
    while (first + 1 < argc && strcmp(argv[first], "-e") == 0)
        first += 2;
    if (argc < 3 || first >= argc) {
        fputs("usage: measure OUTFILE [-e NAME=VALUE]... PROGRAM [ARGS...]\n", stderr);
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) {
        perror("measure: fork");
        return 126;
    }
    if (pid == 0) {
        for (int i = 2; i < first; i += 2)
            if (putenv(argv[i + 1]) != 0)
                _exit(127);
        execvp(argv[first], argv + first);
        fprintf(stderr, "measure: cannot run %s: %s\n", argv[first], strerror(errno));
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0) {
        if (errno != EINTR) {
            perror("measure: wait4");
            return 126;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 126;
    double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    FILE *out = fopen(argv[1], "w");
    if (!out) {
        perror("measure: output file");
        return 126;
    }
    fprintf(out, "%.6f %.6f %.6f %ld %d\n", wall, seconds(ru.ru_utime), seconds(ru.ru_stime), ru.ru_maxrss, code);
    if (fclose(out) != 0)
        return 126;
    return code;
}
