/* dlopen(RTLD_DEEPBIND) of libdeep.so (next to this program), then blocks that cross between
 * the library's malloc/free and the program's:
 *   77 bytes allocated by the library and leaked (definitely lost);
 *   33 bytes allocated by the program and freed by the library;
 *   55 bytes allocated by the library and freed by the program.
 * Usage: deepbind now|lazy|plain|relro (RTLD_NOW or RTLD_LAZY with RTLD_DEEPBIND, RTLD_NOW alone,
 * or RTLD_LAZY | RTLD_DEEPBIND of libdeep_relro.so, linked -z now -z relro: its GOT is bound at
 * load and then read-only). */
#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *volatile last_block;

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "now";
    bool relro = strcmp(mode, "relro") == 0;
    int flags = strcmp(mode, "lazy") == 0 || relro ? RTLD_LAZY | RTLD_DEEPBIND
                : strcmp(mode, "plain") == 0 ? RTLD_NOW : RTLD_NOW | RTLD_DEEPBIND;
    char path[4096];
    snprintf(path, sizeof path, "%s", argv[0]);
    char *slash = strrchr(path, '/');
    snprintf(slash ? slash + 1 : path, sizeof path - (size_t)(slash ? slash + 1 - path : 0), "%s",
             relro ? "libdeep_relro.so" : "libdeep.so");
    void *library = dlopen(path, flags);
    if (!library) {
        fprintf(stderr, "deepbind: %s\n", dlerror());
        return 2;
    }
    void *(*deep_alloc)(size_t) = (void *(*)(size_t))dlsym(library, "deep_alloc");
    void (*deep_free)(void *) = (void (*)(void *))dlsym(library, "deep_free");
    last_block = deep_alloc(77);
    last_block = NULL;
    void *mine = malloc(33);
    deep_free(mine);
    void *theirs = deep_alloc(55);
    free(theirs);
    puts("deepbind: done");
    return 0;
}
