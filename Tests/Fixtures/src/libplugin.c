/*
 * libplugin.c - the shared library dlopen_leak loads (built as libplugin.so).
 *
 *   plugin_leak()  malloc(40)  LEAKED 40 bytes, 1 block.
 * Returns the first byte of the block so the call has a visible result.
 */
#include <stdlib.h>
#include <string.h>

#define KEEP(p) __asm__ volatile("" : : "g"(p) : "memory")

__attribute__((noinline)) int plugin_leak(void)
{
    char *p = malloc(40);
    memset(p, 'P', 40);
    KEEP(p);
    return p[0];
}
