/*
 * The shim's fork handlers, registered ahead of every other one.
 *
 * glibc runs the prepare handlers last registered first, and the parent and child handlers
 * first registered first. The shim's prepare holds the loader's list lock (hg_loader_lock.c),
 * the modules mutex and the descriptors' lock, and pauses the drain thread; its child handler
 * resets them. A program's prepare handler that ran after it could wait, with those held, for a
 * lock the program's other thread holds while it walks the list, dlopens or allocates from a
 * new call site (which walks the list under the shim): the parent hung in that handler
 * (fixture fork_under_program_locks, mode library). A child handler that ran before the shim's
 * found the list lock held by a thread the child does not have.
 *
 * Registering in the shim's constructor was not first: the libraries a program links are
 * initialised before a preloaded library, and one that registers its handlers in its
 * constructor (as a library guarding its own mutex across fork does) came before the shim. So
 * the shim interposes __register_atfork, which pthread_atfork calls (from libc_nonshared.a, in
 * the caller), and registers its own handlers at the first registration of anybody's, its
 * constructor's included. Old binaries that call libc.so's compatibility pthread_atfork reach
 * glibc's registration without the shim; for them the order is as before.
 *
 * The handlers are registered without a DSO handle: pthread_atfork passes the shim's, and
 * _dl_fini, which runs before the shim's exit handler, then removes the handlers. A fork made
 * meanwhile by another thread could run the prepare handler (the descriptors' lock taken,
 * signals blocked) and not the parent's, and the exit then waited for that lock for ever (2
 * runs in 40 of a program whose thread forks in a loop while main exits). The shim is never
 * unloaded (-z nodelete), so they stay valid. Registered before the shim starts, they do
 * nothing until it has (each part looks at its own state).
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>

#include "hg_internal.h"

typedef int (*hg_register_atfork_t)(void (*prepare)(void), void (*parent)(void), void (*child)(void), void *dso_handle);

static _Atomic(hg_register_atfork_t) hg_real_register_atfork;

/* dlsym may allocate (its error state): the shim's own, under the guard, and errno kept. */
static hg_register_atfork_t hg_glibc_register_atfork(void) {
    hg_register_atfork_t real = atomic_load(&hg_real_register_atfork);
    if (real != NULL) return real;
    int saved_errno = errno;
    hg_guard_depth++;
    real = (hg_register_atfork_t)dlsym(RTLD_NEXT, "__register_atfork");
    hg_guard_depth--;
    errno = saved_errno;
    atomic_store(&hg_real_register_atfork, real);
    return real;
}

static void hg_register_shim_handlers(void) {
    const char *disabled = hg_getenv("HEAPGATE_DISABLE");
    if (disabled && disabled[0] == '1') return;
    hg_register_atfork_t real = hg_glibc_register_atfork();
    if (real != NULL) real(hg_fork_prepare, hg_fork_parent, hg_fork_child, NULL);
}

void hg_atfork_register_first(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, hg_register_shim_handlers);
}

/** Interposes glibc's __register_atfork: the shim's handlers go first. */
HG_EXPORT int __register_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void), void *dso_handle) {
    hg_atfork_register_first();
    hg_register_atfork_t real = hg_glibc_register_atfork();
    if (real == NULL) return ENOMEM;
    return real(prepare, parent, child, dso_handle);
}
