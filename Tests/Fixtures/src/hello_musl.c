/*
 * hello_musl.c - a program linked against musl (built with musl-gcc): allocates, prints one
 * line and exits 0.
 *
 * heapgate's shim is linked against glibc; musl's loader stops with an error, and never
 * starts the program, when LD_PRELOAD names a library it cannot load. `heapgate run` must
 * say so instead of leaving the program unstarted behind a wall of loader errors
 * (LaunchTests.muslProgram).
 */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    char *line = malloc(32);
    if (line == NULL)
        return 1;
    snprintf(line, 32, "hello from musl\n");
    fputs(line, stdout);
    free(line);
    return 0;
}
