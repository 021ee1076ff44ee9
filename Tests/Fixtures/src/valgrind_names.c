/*
 * valgrind_names.c - leaks whose stacks memcheck names differently from libdw.
 *
 * - strdup: glibc's full symbol table (libc6-dbg) names the function strdup, __strdup and
 *   __GI___strdup; memcheck shows `strdup`.
 * - versioned_buffer: in libversioned.so.1.2.3, loaded as libversioned.so.1 (see
 *   libversioned.c); memcheck shows the file, `obj:` of the real path.
 * - realloc(NULL, 24): memcheck's realloc passes a null pointer on to its malloc, so its
 *   frame 0 is `malloc`.
 * - posix_memalign(64, 48): memcheck's (3.19) calls its memalign, so its frame 0 is `memalign`
 *   with `posix_memalign` under it (Swift's swift_slowAlloc allocates that way).
 * Each block is definitely lost: 17 + 40 + 24 + 48 bytes in 4 blocks.
 * - setenv: glibc's tail-calls __add_to_environ, which allocates the variable, the new
 *   environment array and a search-tree node (3 blocks, still reachable); memcheck wraps
 *   setenv, so its stacks have a `setenv` frame there. The environment is cleared first, so
 *   that the array's size does not depend on what each tool adds to it (and so that the
 *   shim's own settings are gone by exit).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *versioned_buffer(void);

static char *volatile kept;
static void *volatile nothing; /* a null pointer the compiler cannot see: realloc stays realloc */

__attribute__((noinline)) static void lose_copy(void) {
    kept = strdup("sixteen chars!!!");
    kept = NULL;
}

__attribute__((noinline)) static void lose_library_buffer(void) {
    kept = versioned_buffer();
    kept = NULL;
}

__attribute__((noinline)) static void lose_grown(void) {
    kept = realloc(nothing, 24);
    kept = NULL;
}

__attribute__((noinline)) static void lose_aligned(void) {
    void *block = NULL;
    if (posix_memalign(&block, 64, 48) == 0) kept = block;
    kept = NULL;
}

int main(void) {
    clearenv();
    setenv("VALGRIND_NAMES", "1", 1);
    lose_copy();
    lose_library_buffer();
    lose_grown();
    lose_aligned();
    puts("valgrind_names: 4 blocks lost");
    return 0;
}
