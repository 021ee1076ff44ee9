/*
 * unshare(2) and setns(2): calls that the kernel refuses (EINVAL) to a process with more than
 * one thread, or whose threads share its filesystem context. The drain thread is a second
 * thread the program does not know about: `unshare -U`, rootless container tools and sandbox
 * launchers failed under heapgate. Around such a call the drain thread is stopped, every
 * event applied first, and started again afterwards, so the program makes the call as the
 * single-threaded process it is. Both are plain system calls in glibc, made here directly.
 * Exported, like the malloc family (hg_hooks.c).
 */
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hg_internal.h"

/* Runs the system call with the drain thread stopped when `needs_one_thread`. */
static long hg_single_threaded_call(bool needs_one_thread, long number, long a, long b) {
    bool suspended = needs_one_thread && hg_drain_suspend();
    long result = syscall(number, a, b);
    if (suspended) hg_drain_resume();
    return result;
}

/** Interposes unshare(2). A new user namespace implies unsharing the thread group, which the
 *  kernel allows only to a single thread; so do CLONE_THREAD, CLONE_SIGHAND and CLONE_VM. */
HG_EXPORT int unshare(int flags) {
    bool needs_one_thread = (flags & (CLONE_NEWUSER | CLONE_THREAD | CLONE_SIGHAND | CLONE_VM)) != 0;
    return (int)hg_single_threaded_call(needs_one_thread, SYS_unshare, flags, 0);
}

/** Interposes setns(2). Joining a user namespace needs a single thread, and a mount namespace
 *  a filesystem context no other thread shares; with nstype 0 the file decides which. */
HG_EXPORT int setns(int fd, int nstype) {
    bool needs_one_thread = nstype == 0 || (nstype & (CLONE_NEWUSER | CLONE_NEWNS)) != 0;
    return (int)hg_single_threaded_call(needs_one_thread, SYS_setns, fd, nstype);
}
