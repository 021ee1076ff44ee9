/*
 * dl_churn.c - loads and unloads four plugins of one shape in turn, as test
 * harnesses and plugin hosts do.
 *
 * Usage: dl_churn [CYCLES [fork]]   (default 4,200: past 4,096 loads)
 *   Cycle c dlopen()s libchurn(c % 4 + 1).so from the directory of this
 *   executable, calls its churnN_leak() - which leaks 8, 16, 24 or 32 bytes -
 *   and dlclose()s it. After dlclose the next plugin is normally mapped where
 *   the last one was, so all four allocate from the same return addresses.
 *   With "fork", it then forks a child that exits 0 at once, and waits for it.
 *   Exits 0 (1 if a plugin cannot be loaded). Output only via write(2).
 */
#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    long cycles = argc > 1 ? strtol(argv[1], NULL, 10) : 4200;
    char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 16);
    if (n <= 0)
        return 1;
    path[n] = '\0';
    char *slash = strrchr(path, '/');
    char *name = slash ? slash + 1 : path;
    for (long c = 0; c < cycles; c++) {
        strcpy(name, "libchurn1.so");
        name[8] = (char)('1' + c % 4);
        void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!handle) {
            if (write(2, "dl_churn: cannot load a plugin\n", 31) < 0)
                _exit(3);
            return 1;
        }
        char symbol[] = "churn1_leak";
        symbol[5] = name[8];
        void *(*churn_leak)(void) = (void *(*)(void))dlsym(handle, symbol);
        if (!churn_leak || !churn_leak())
            return 1;
        dlclose(handle);
    }
    if (argc > 2 && strcmp(argv[2], "fork") == 0) {
        pid_t child = fork();
        if (child == 0)
            _exit(0);
        int status;
        if (child < 0 || waitpid(child, &status, 0) != child || status != 0)
            return 1;
    }
    return 0;
}
