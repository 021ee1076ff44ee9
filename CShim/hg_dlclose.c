/*
 * dlclose, interposed so that the module records say when addresses change hands.
 *
 * The shim looks for loaded and unloaded modules only when it sees a stack for the first time
 * (hg_modules.c). A program that loads plugins of one shape one after another, each at the
 * addresses the last one left, allocates from the same return addresses every time: no stack
 * is new, so the trace had the first plugin's load and nothing else, and every plugin's leaks
 * were named after the first plugin's function. Here the module list is looked at before the
 * real dlclose (it records a library loaded since the last look, the one being closed among
 * them) and after it (it records the unload). dlclose is rare; the allocation path is as it
 * was. Unlike dlopen, dlclose does not depend on its caller, so interposing it changes
 * nothing for the program: its result, dlerror and errno are the real dlclose's.
 *
 * Libraries glibc closes by itself (NSS and iconv modules, through its internal entry point)
 * go on being seen at the next new stack only; the report names no function for a frame whose
 * addresses more than one library held (docs/trace-format.md, MODULE_LOAD).
 */
#include <dlfcn.h>
#include <errno.h>

#include "hg_internal.h"

static int (*hg_real_dlclose)(void *);

static void hg_look_at_modules(void) {
    if (atomic_load_explicit(&hg_state, memory_order_relaxed) != HG_RECORDING || hg_guard_depth != 0) return;
    hg_guard_depth++;
    int saved_errno = errno;
    hg_modules_refresh_if_changed();
    errno = saved_errno;
    hg_guard_depth--;
}

/* glibc's dlclose. dlsym may allocate (its error state): the shim's own, under the guard, and
 * errno kept, as for the credential calls (hg_credentials.c). */
static void hg_find_real_dlclose(void) {
    int saved_errno = errno;
    hg_guard_depth++;
    hg_real_dlclose = (int (*)(void *))dlsym(RTLD_NEXT, "dlclose");
    hg_guard_depth--;
    errno = saved_errno;
}

/** Interposes dlclose(3). */
HG_EXPORT int dlclose(void *handle) {
    if (hg_real_dlclose == NULL) hg_find_real_dlclose();
    if (hg_real_dlclose == NULL) return -1;
    hg_look_at_modules();
    int result = hg_real_dlclose(handle);
    hg_look_at_modules();
    return result;
}
