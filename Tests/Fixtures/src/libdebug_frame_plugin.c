/*
 * libdebug_frame_plugin.c - the plugin debug_frame_plugins loads, built twice (see
 * scripts/build-fixtures.sh) with -O2 -fno-asynchronous-unwind-tables -fno-unwind-tables, so
 * its call-frame information is only in .debug_frame:
 *   libdebug_frame_plugin1.so  (VERSION 1)  plugin_leak(n) leaks n + 1 bytes
 *   libdebug_frame_plugin2.so  (VERSION 2)  plugin_leak(n) leaks n + 2 bytes
 * plugin_leak calls plugin_middle, which calls plugin_inner, which allocates. Version 2 keeps
 * a buffer in every function: other frame sizes, and its code at other offsets, so that the
 * unwind rules of version 1 are wrong for it.
 */
#include <stdlib.h>
#include <string.h>

#if VERSION == 2
#define PAD(bytes) volatile char pad[bytes]; pad[0] = 0; __asm__ volatile("" : : "r"(pad) : "memory")
#else
#define PAD(bytes) (void)0
#endif

__attribute__((noinline)) void *plugin_inner(int n)
{
    PAD(200);
    void *p = malloc((size_t)n + VERSION);
    memset(p, VERSION, (size_t)n);
    return p;
}

__attribute__((noinline)) void *plugin_middle(int n)
{
    PAD(500);
    void *p = plugin_inner(n);
    __asm__ volatile("" ::: "memory");
    return p;
}

__attribute__((noinline)) void *plugin_leak(int n)
{
    PAD(1000);
    void *p = plugin_middle(n);
    __asm__ volatile("" : : "g"(p) : "memory");
    return p;
}
