/*
 * prints_a_lot.c - about 1 MiB of deterministic, interleaved stdout/stderr.
 *
 * Usage: prints_a_lot [STATUS [--stdin]]
 *   Writes 16384 lines of exactly 64 bytes each ("<o|e> <index> <filler>\n"):
 *   line i goes to stderr (fprintf) when i % 4 == 3, else to stdout (printf).
 *     stdout: 12288 lines = 786,432 bytes
 *     stderr:  4096 lines = 262,144 bytes
 *   With --stdin it then reads standard input to EOF and prints one more
 *   stdout line: "stdin: <bytes> bytes fnv1a64 <16 hex digits>\n".
 *   Exits with STATUS (default 0) through exit(), which flushes stdout.
 *
 * Heap: nothing of its own.  glibc's stdio allocates the stdout buffer on
 * first use (malloc of st_blksize bytes: 4096 for a pipe or file, 1024 for
 * a terminal) and never frees it; stderr is unbuffered.  valgrind frees it
 * through __libc_freeres before its summary, an LD_PRELOAD tracker normally
 * sees it still reachable.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LINES 16384

int main(int argc, char **argv)
{
    int status = argc > 1 ? atoi(argv[1]) : 0;
    int read_stdin = argc > 2 && strcmp(argv[2], "--stdin") == 0;

    /* 64-byte line: kind(1) ' '(1) index(5) ' '(1) filler(55) '\n'(1) */
    for (int i = 0; i < LINES; i++) {
        char filler[56];
        for (int k = 0; k < 55; k++)
            filler[k] = (char)('a' + (i + k) % 26);
        filler[55] = '\0';
        if (i % 4 == 3)
            fprintf(stderr, "e %05d %s\n", i, filler);
        else
            printf("o %05d %s\n", i, filler);
    }

    if (read_stdin) {
        uint64_t hash = 0xcbf29ce484222325ULL; /* FNV-1a 64 */
        unsigned long long total = 0;
        unsigned char buf[4096];
        ssize_t n;
        while ((n = read(0, buf, sizeof buf)) > 0) {
            for (ssize_t k = 0; k < n; k++) {
                hash ^= buf[k];
                hash *= 0x100000001b3ULL;
            }
            total += (unsigned long long)n;
        }
        printf("stdin: %llu bytes fnv1a64 %016llx\n", total, (unsigned long long)hash);
    }
    exit(status);
}
