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

/* glibc's definition of `name`, looked up at each call rather than in hg_real, which every
 * traced process resolves at its start for calls most never make; a call costs a thread's end
 * and start anyway. dlsym may allocate: the shim's own, under the guard. */
static void *hg_glibc_function(const char *name) {
    int saved_errno = errno;
    hg_guard_depth++;
    void *found = dlsym(RTLD_NEXT, name);
    hg_guard_depth--;
    errno = saved_errno;
    return found;
}

/* One interposer per call: glibc's function with the drain thread stopped around it. A call
 * glibc cannot be found for fails as the kernel would refuse an unknown call. */
#define HG_CREDENTIAL_CALL(name, parameters, arguments)                         \
    HG_EXPORT int name parameters {                                             \
        int (*call) parameters = (int (*) parameters)hg_glibc_function(#name); \
        if (!call) {                                                            \
            errno = ENOSYS;                                                     \
            return -1;                                                          \
        }                                                                       \
        bool suspended = hg_drain_suspend();                                    \
        int result = call arguments;                                            \
        if (suspended) hg_drain_resume();                                       \
        return result;                                                          \
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
