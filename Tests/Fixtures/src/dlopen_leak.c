/*
 * dlopen_leak.c - a leak from code in a library that is unloaded before exit.
 *
 * Usage: dlopen_leak [PATH/TO/libplugin.so]
 *   Default path: libplugin.so in the directory of this executable (found
 *   through /proc/self/exe).  main dlopen()s the plugin, calls its
 *   plugin_leak() - which leaks 40 bytes from libplugin.c - then dlclose()s
 *   it and exits 0 (1 if the plugin cannot be loaded).
 *
 * The stack of the leaked block points into an unmapped library at exit, so
 * a tracker must symbolise it while the library is loaded (valgrind does so
 * only with --keep-debuginfo=yes; see EXPECTED.md).
 * dlopen/dlclose make some allocations of their own inside ld.so; they are
 * freed by dlclose.  Output only via write(2).
 */
#include <dlfcn.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

static void say(const char *s)
{
    if (write(2, s, strlen(s)) < 0)
        _exit(3);
}

int main(int argc, char **argv)
{
    char path[PATH_MAX];
    if (argc > 1) {
        if (strlen(argv[1]) >= sizeof path)
            return 1;
        strcpy(path, argv[1]);
    } else {
        static const char name[] = "libplugin.so";
        ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
        if (n <= 0)
            return 1;
        path[n] = '\0';
        char *slash = strrchr(path, '/');
        size_t dir = slash ? (size_t)(slash - path + 1) : 0;
        if (dir + sizeof name > sizeof path)
            return 1;
        memcpy(path + dir, name, sizeof name);
    }

    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        say("dlopen_leak: cannot load ");
        say(path);
        say("\n");
        return 1;
    }
    int (*plugin_leak)(void) = (int (*)(void))dlsym(handle, "plugin_leak");
    if (!plugin_leak)
        return 1;
    int first = plugin_leak();
    dlclose(handle);
    return first == 'P' ? 0 : 1;
}
