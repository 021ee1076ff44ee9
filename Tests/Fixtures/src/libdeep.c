/* Loaded by deepbind.c with dlopen(RTLD_DEEPBIND): its own dependencies come first in its
 * symbol lookups, so its malloc and free bind to glibc's, not to a preloaded tool's. */
#include <stdlib.h>
#include <string.h>

void *deep_alloc(size_t size) {
    void *block = malloc(size);
    memset(block, 2, size);
    return block;
}

void deep_free(void *block) { free(block); }
