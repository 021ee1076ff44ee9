/*
 * libversioned.c - a library loaded through its soname link, with no symbols.
 *
 * Built as libversioned.so.1.2.3 with soname libversioned.so.1, a link of that name beside
 * it, and its symbol table stripped: the dynamic loader names it by the link, the kernel
 * (and so memcheck) by the file, and memcheck's suppressions name its frames `obj:FILE`.
 */
#include <stdlib.h>
#include <string.h>

static __attribute__((noinline)) char *make_buffer(size_t size) {
    char *buffer = malloc(size);
    memset(buffer, 'v', size);
    return buffer;
}

char *versioned_buffer(void) { return make_buffer(40); }
