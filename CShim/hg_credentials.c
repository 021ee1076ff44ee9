/*
 * The set*id family and setgroups: glibc makes every thread of the process take the new
 * credentials (it signals each one, SIGSETXID, and each makes the system call itself), and
 * aborts the process when the threads' results differ. The drain thread is a thread the
 * program does not know about, whose credentials it never changed: a program that dropped a
 * capability on its own thread only (capset is per thread; `setpriv --clear-groups` does so)
 * then calls setgroups, which fails with EPERM on its thread and succeeds on the drain
 * thread, and glibc aborts (natively and under valgrind the call just fails). Around these
 * calls the drain thread is stopped, every event applied first, and started again afterwards
 * by the calling thread, so with the new credentials. Programs change credentials a few times
 * in their lives; each call costs a thread's end and start (about 0.1 ms).
 * Exported, like the malloc family (hg_hooks.c).
 */
#include <dlfcn.h>
#include <errno.h>
#include <grp.h>
#include <unistd.h>

#include "hg_internal.h"

/* glibc's definition of `name`, found once (dlsym may allocate: the shim's own, under the guard). */
static void *hg_next(void *_Atomic *cache, const char *name) {
    void *found = atomic_load_explicit(cache, memory_order_acquire);
    if (found) return found;
    hg_guard_depth++;
    found = dlsym(RTLD_NEXT, name);
    hg_guard_depth--;
    atomic_store_explicit(cache, found, memory_order_release);
    return found;
}

/* Stops the drain thread if it runs; true when it must be started again. The program's errno
 * is as before: the call it makes next leaves errno alone when it succeeds. */
static bool hg_credentials_begin(void) {
    int saved = errno;
    hg_guard_depth++; /* pthread_join allocates: the shim's own */
    bool suspended = hg_drain_suspend();
    hg_guard_depth--;
    errno = saved;
    return suspended;
}

static void hg_credentials_end(bool suspended) {
    int saved = errno;
    hg_guard_depth++;
    if (suspended) hg_drain_resume();
    hg_guard_depth--;
    errno = saved;
}

/* One interposer per call: glibc's function with the drain thread stopped around it. A call
 * glibc cannot be found for fails as the kernel would refuse an unknown call. */
#define HG_CREDENTIAL_CALL(name, parameters, arguments)                      \
    HG_EXPORT int name parameters {                                          \
        static void *_Atomic real;                                           \
        int (*call) parameters = (int (*) parameters)hg_next(&real, #name); \
        if (!call) {                                                         \
            errno = ENOSYS;                                                  \
            return -1;                                                       \
        }                                                                    \
        bool suspended = hg_credentials_begin();                            \
        int result = call arguments;                                         \
        hg_credentials_end(suspended);                                       \
        return result;                                                       \
    }

HG_CREDENTIAL_CALL(setuid, (uid_t uid), (uid))
HG_CREDENTIAL_CALL(setgid, (gid_t gid), (gid))
HG_CREDENTIAL_CALL(seteuid, (uid_t uid), (uid))
HG_CREDENTIAL_CALL(setegid, (gid_t gid), (gid))
HG_CREDENTIAL_CALL(setreuid, (uid_t ruid, uid_t euid), (ruid, euid))
HG_CREDENTIAL_CALL(setregid, (gid_t rgid, gid_t egid), (rgid, egid))
HG_CREDENTIAL_CALL(setresuid, (uid_t ruid, uid_t euid, uid_t suid), (ruid, euid, suid))
HG_CREDENTIAL_CALL(setresgid, (gid_t rgid, gid_t egid, gid_t sgid), (rgid, egid, sgid))
HG_CREDENTIAL_CALL(setgroups, (size_t size, const gid_t *list), (size, list))
