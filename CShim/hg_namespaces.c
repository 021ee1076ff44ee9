/*
 * unshare(2) and setns(2): calls that the kernel refuses (EINVAL) to a process with more than
 * one thread, or whose threads share its filesystem context. The drain thread is a second
 * thread the program does not know about: `unshare -U`, rootless container tools and sandbox
 * launchers failed under heapgate. Around such a call the drain thread is stopped, every
 * event applied first, and started again afterwards, so the program makes the call as the
 * single-threaded process it is. Both are plain system calls in glibc, made here directly.
 * Exported, like the malloc family (hg_hooks.c); the same calls made through glibc's syscall()
 * come here too (hg_sandbox.c). Only a system call instruction in the program's own code
 * (static code, Go's runtime) still meets the second thread.
 */
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hg_internal.h"

/* Whether the call needs the process to be single-threaded. A new user namespace implies
 * unsharing the thread group, which the kernel allows only to a single thread; so do
 * CLONE_THREAD, CLONE_SIGHAND and CLONE_VM. Joining a user namespace needs a single thread, and
 * a mount namespace a filesystem context no other thread shares; with nstype 0 the file decides
 * which. Flags are ints, whatever the register's upper half holds. */
static bool hg_needs_one_thread(long number, long a, long b) {
    if (number == SYS_unshare) return ((int)a & (CLONE_NEWUSER | CLONE_THREAD | CLONE_SIGHAND | CLONE_VM)) != 0;
    return (int)b == 0 || ((int)b & (CLONE_NEWUSER | CLONE_NEWNS)) != 0;
}

long hg_namespace_call(long number, long a, long b) {
    bool suspended = hg_needs_one_thread(number, a, b) && hg_drain_suspend();
    long result = hg_system_call(number, a, b, 0, 0, 0, 0);
    if (suspended) hg_drain_resume();
    return result;
}

/** Interposes unshare(2). */
HG_EXPORT int unshare(int flags) { return (int)hg_namespace_call(SYS_unshare, flags, 0); }

/** Interposes setns(2). */
HG_EXPORT int setns(int fd, int nstype) { return (int)hg_namespace_call(SYS_setns, fd, nstype); }
