/* A program that defines malloc, free, calloc and realloc as wrappers: each counts its call
 * and goes on to the next definition (dlsym(RTLD_NEXT), what test suites and profilers do).
 * Under heapgate that next definition is the shim's, so the wrappers must stay: the program
 * prints its counts (13 allocs, 11 frees natively; a few more traced, the shim's own), and
 * heapgate sees every block. It leaks 40 bytes (leak_through_wrapper), frees the rest. */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

static void *(*next_malloc)(size_t);
static void (*next_free)(void *);
static void *(*next_calloc)(size_t, size_t);
static void *(*next_realloc)(void *, size_t);
static unsigned long counted_mallocs, counted_frees;
static int finding;
/* dlsym may call calloc before next_calloc is known: served from here. */
static unsigned char early[4096];
static size_t early_used;

static void find_next(void) {
    if (next_malloc || finding) return;
    finding = 1;
    next_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
    next_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
    next_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
    next_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
    finding = 0;
}

void *malloc(size_t size) {
    find_next();
    counted_mallocs++;
    return next_malloc(size);
}

void free(void *ptr) {
    if ((unsigned char *)ptr >= early && (unsigned char *)ptr < early + sizeof early) return;
    find_next();
    if (ptr) counted_frees++;
    next_free(ptr);
}

void *calloc(size_t count, size_t size) {
    if (!next_calloc) {
        if (finding) { /* inside dlsym: a zeroed piece of the static buffer */
            void *ptr = early + early_used;
            early_used += (count * size + 15) & ~(size_t)15;
            return early_used <= sizeof early ? ptr : NULL;
        }
        find_next();
    }
    counted_mallocs++;
    return next_calloc(count, size);
}

void *realloc(void *ptr, size_t size) {
    find_next();
    counted_mallocs++;
    return next_realloc(ptr, size);
}

void *volatile last_block;

static __attribute__((noinline)) void leak_through_wrapper(void) {
    char *block = malloc(40);
    strcpy(block, "forty bytes through a wrapper");
    last_block = block;
    last_block = NULL;
}

int main(void) {
    leak_through_wrapper();
    for (int i = 0; i < 10; i++) free(malloc(16 + (size_t)i));
    char *grown = realloc(NULL, 8);
    grown = realloc(grown, 64);
    free(grown);
    unsigned long mallocs = counted_mallocs, frees = counted_frees;
    printf("wrapper counted %lu allocations and %lu frees\n", mallocs, frees);
    return 0;
}
