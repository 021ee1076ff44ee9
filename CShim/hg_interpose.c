/*
 * The only symbols libheapgate.so exports: the malloc family (and _exit, so a fork child
 * that leaves with _exit still closes its trace). Each is one line; the work is in hg_hooks.c.
 * The Makefile builds this file with -fno-optimize-sibling-calls so that every entry point
 * keeps its own frame: the recorded stacks then start "malloc / calloc / ..." as memcheck's do.
 */
#include <stddef.h>

#include "hg_internal.h"

#define HG_EXPORT __attribute__((visibility("default")))

/** Interposes malloc(3). */
HG_EXPORT void *malloc(size_t size) { return hg_malloc(size); }
/** Interposes free(3). */
HG_EXPORT void free(void *ptr) { hg_free(ptr); }
/** Interposes calloc(3). */
HG_EXPORT void *calloc(size_t count, size_t size) { return hg_calloc(count, size); }
/** Interposes realloc(3). */
HG_EXPORT void *realloc(void *ptr, size_t size) { return hg_realloc(ptr, size); }
/** Interposes reallocarray(3). */
HG_EXPORT void *reallocarray(void *ptr, size_t count, size_t size) { return hg_reallocarray(ptr, count, size); }
/** Interposes posix_memalign(3). */
HG_EXPORT int posix_memalign(void **out, size_t alignment, size_t size) { return hg_posix_memalign(out, alignment, size); }
/** Interposes aligned_alloc(3). */
HG_EXPORT void *aligned_alloc(size_t alignment, size_t size) { return hg_aligned_alloc(alignment, size); }
/** Interposes memalign(3). */
HG_EXPORT void *memalign(size_t alignment, size_t size) { return hg_memalign(alignment, size); }
/** Interposes valloc(3). */
HG_EXPORT void *valloc(size_t size) { return hg_valloc(size); }
/** Interposes pvalloc(3). */
HG_EXPORT void *pvalloc(size_t size) { return hg_pvalloc(size); }
/** Interposes malloc_usable_size(3). */
HG_EXPORT size_t malloc_usable_size(void *ptr) { return hg_malloc_usable_size(ptr); }
/** Interposes _exit(2): exit() does not come through here, but a fork child's _exit does. */
HG_EXPORT void _exit(int status) { hg_exit_now(status); }
/** Interposes _Exit(3), the C99 spelling of _exit. */
HG_EXPORT void _Exit(int status) { hg_exit_now(status); }
