/*
 * libdestructor_frees.c - a library that tidies up in its destructor, and forgets a block.
 *
 * Its constructor builds a registry (4 pointers, 32 bytes) holding one entry (48 bytes).
 * Its destructor frees the registry but not the entry: after it, nothing points at the
 * entry any more, a real leak, which memcheck reports as definitely lost. A program's
 * libraries are finalised after a preloaded one, so a tracer that reports from its own
 * destructor sees the registry still in use and the entry still reachable through it.
 */
#include <stdlib.h>
#include <string.h>

static void **registry;

__attribute__((noinline)) static void *make_entry(void) {
    void *entry = malloc(48);
    memset(entry, 'e', 48);
    return entry;
}

__attribute__((constructor)) static void build_registry(void) {
    registry = calloc(4, sizeof *registry);
    registry[0] = make_entry();
}

__attribute__((destructor)) static void free_registry(void) {
    free(registry);
    registry = NULL;
}

/* Gives the program a reason to link the library. */
int registry_size(void) { return registry ? 4 : 0; }
