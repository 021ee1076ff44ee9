/*
 * stdio_only PROGRAM [ARGS...]: closes every descriptor above 2, then execs PROGRAM (argv[0]
 * is the path given). The test harness starts every process through it.
 *
 * Why: Foundation's Process passes a child the descriptors that other threads of the test
 * process open meanwhile (the pipes of tests running in parallel). A traced first_fd once
 * opened descriptor 4 instead of 3 because a pipe of another test sat at 3, and a test that
 * compares descriptor numbers with a native run must see only what heapgate itself adds.
 * Linked statically, so that an LD_PRELOAD meant for PROGRAM does not load into it (a traced
 * helper would leave a trace of its own). Status 127 if PROGRAM cannot be run, 64 without one.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs("usage: stdio_only PROGRAM [ARGS...]\n", stderr);
        return 64;
    }
    if (syscall(SYS_close_range, 3u, ~0u, 0u) != 0) { /* kernels before 5.9 */
        long limit = sysconf(_SC_OPEN_MAX);
        for (long fd = 3; fd < limit; fd++) close((int)fd);
    }
    execv(argv[1], argv + 1);
    fprintf(stderr, "stdio_only: cannot run %s: %s\n", argv[1], strerror(errno));
    return 127;
}
