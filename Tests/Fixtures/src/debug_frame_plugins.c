/*
 * debug_frame_plugins.c - loads plugins whose unwind information is only in .debug_frame
 * (libdebug_frame_plugin1.so and 2.so, see libdebug_frame_plugin.c). Two modes:
 *
 *   debug_frame_plugins reload PATH PLUGIN1 PLUGIN2
 *     Copies PLUGIN1 to PATH, dlopens PATH, calls plugin_leak(20) (leaks 21 B), dlcloses it;
 *     then the same with PLUGIN2 put at PATH in its place (a plugin rebuilt and loaded again):
 *     plugin_leak(40) leaks 42 B. Prints "same address" when the loader put the second where
 *     the first was (it does: same size, nothing loaded between), else "other address".
 *   debug_frame_plugins chdir DIR
 *     chdir(DIR), dlopens "./libdebug_frame_plugin1.so" (a relative path, which the loader keeps
 *     as the library's name), chdir("/"), then calls plugin_leak(30): leaks 31 B.
 *
 * The leaks come from plugin_inner, plugin_middle, plugin_leak, then load_and_leak (line 50)
 * and main (line 64) for reload's second plugin; main (line 75) for chdir. Exits 0; 2 on a
 * usage or loading error (printed on stderr).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int copy_file(const char *from, const char *to)
{
    char buffer[65536], temporary[4096];
    snprintf(temporary, sizeof temporary, "%s.new", to);
    int in = open(from, O_RDONLY), out = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0755);
    ssize_t n;
    while (in >= 0 && out >= 0 && (n = read(in, buffer, sizeof buffer)) > 0)
        if (write(out, buffer, (size_t)n) != n) n = -1;
    int ok = in >= 0 && out >= 0 && close(out) == 0 && rename(temporary, to) == 0;
    if (in >= 0) close(in);
    return ok;
}

__attribute__((noinline)) static void *load_and_leak(const char *path, int n, void **base)
{
    void *handle = dlopen(path, RTLD_NOW);
    void *(*leak)(int) = handle ? (void *(*)(int))dlsym(handle, "plugin_leak") : NULL;
    if (leak == NULL) {
        fprintf(stderr, "%s\n", dlerror());
        return NULL;
    }
    struct link_map *map = NULL;
    dlinfo(handle, RTLD_DI_LINKMAP, &map);
    *base = map ? (void *)map->l_addr : NULL;
    leak(n);
    __asm__ volatile("" ::: "memory");
    return handle;
}

int main(int argc, char **argv)
{
    void *first = NULL, *second = NULL, *handle;
    if (argc == 5 && strcmp(argv[1], "reload") == 0) {
        if (!copy_file(argv[3], argv[2]) || (handle = load_and_leak(argv[2], 20, &first)) == NULL)
            return 2;
        dlclose(handle);
        if (!copy_file(argv[4], argv[2]))
            return 2;
        handle = load_and_leak(argv[2], 40, &second);
        if (handle == NULL)
            return 2;
        dlclose(handle);
        printf("%s\n", first == second ? "same address" : "other address");
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "chdir") == 0) {
        if (chdir(argv[2]) != 0 || (handle = dlopen("./libdebug_frame_plugin1.so", RTLD_NOW)) == NULL || chdir("/") != 0)
            return 2;
        void *(*leak)(int) = (void *(*)(int))dlsym(handle, "plugin_leak");
        leak(30);
        return 0;
    }
    fprintf(stderr, "usage: debug_frame_plugins reload PATH PLUGIN1 PLUGIN2 | chdir DIR\n");
    return 2;
}
