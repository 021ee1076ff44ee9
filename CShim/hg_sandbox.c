/*
 * A program that sandboxes itself with seccomp. Once its filter is in, every system call the
 * shim makes goes through that filter: on the program's threads (madvise while the ring's
 * first lap maps pages, sched_yield on a full ring, getpid, futex and reads of /proc at exit)
 * and on the drain thread (write, futex, mmap; a filter installed with TSYNC covers it too).
 * An allow-list written for the program alone then kills it with SIGSYS, or makes those calls
 * fail. So before a filter goes in, the shim runs it on each of its own system calls
 * (hg_filter_check.c): a deny-list that lets them all through changes nothing, and tracing
 * goes on. Any other filter, and strict mode, stops tracing just before it goes in: the
 * drain thread applies and writes what the rings hold and ends, the trace is left cut there
 * with HG_TRACE_FLAG_SANDBOXED in its header, and from then on the shim only forwards: its
 * hooks record nothing and its exit hooks make no system call.
 *
 * Caught: prctl(PR_SET_SECCOMP) and syscall(SYS_seccomp) with SECCOMP_SET_MODE_STRICT or
 * SECCOMP_SET_MODE_FILTER, the two ways glibc programs and libseccomp install a filter. A
 * filter installed with the system call instruction itself (Go's runtime, static code) is
 * not seen. Both calls are forwarded as the system call they are, made here directly (glibc's
 * prctl and syscall are plain wrappers: -1 and errno for a result in -4095..-1), so that
 * nothing needs resolving before the program's first call. Exported, like the malloc family
 * (hg_hooks.c).
 */
#include <errno.h>
#include <linux/seccomp.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "hg_internal.h"

long hg_system_call(long number, long a, long b, long c, long d, long e, long f) {
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    long result;
    __asm__ volatile("syscall"
                     : "=a"(result)
                     : "0"(number), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    if ((unsigned long)result > -4096ul) {
        errno = (int)-result;
        return -1;
    }
    return result;
}

/* Whether the call installs a seccomp filter (or strict mode) on the calling thread; *filter
 * is then its struct sock_fprog, or NULL for strict mode, which lets almost nothing through. */
static bool hg_installs_filter(long number, long a, long b, long c, const void **filter) {
    if (number == SYS_prctl && a == PR_SET_SECCOMP) {
        *filter = b == SECCOMP_MODE_FILTER ? (const void *)c : NULL;
        return true;
    }
    if (number == SYS_seccomp && (a == SECCOMP_SET_MODE_STRICT || a == SECCOMP_SET_MODE_FILTER)) {
        *filter = a == SECCOMP_SET_MODE_FILTER ? (const void *)c : NULL;
        return true;
    }
    return false;
}

static long hg_sandbox_call(long number, long a, long b, long c, long d, long e, long f) {
    const void *filter;
    if (HG_UNLIKELY(hg_installs_filter(number, a, b, c, &filter))) {
        int saved = errno;
        hg_guard_depth++; /* stopping the drain thread allocates: the shim's own */
        hg_drain_stop_for_sandbox(filter);
        hg_guard_depth--;
        errno = saved;
    }
    return hg_system_call(number, a, b, c, d, e, f);
}

/** Interposes prctl(2). */
HG_EXPORT int prctl(int option, ...) {
    va_list arguments;
    va_start(arguments, option);
    long a = va_arg(arguments, long), b = va_arg(arguments, long), c = va_arg(arguments, long),
         d = va_arg(arguments, long);
    va_end(arguments);
    return (int)hg_sandbox_call(SYS_prctl, option, a, b, c, d, 0);
}

/** Interposes syscall(2); also answers libunwind's memory check (hg_unwind_readable.c), and
 *  sends unshare and setns where their wrappers go (hg_namespaces.c). */
HG_EXPORT long syscall(long number, ...) {
    va_list arguments;
    va_start(arguments, number);
    long a = va_arg(arguments, long), b = va_arg(arguments, long), c = va_arg(arguments, long),
         d = va_arg(arguments, long), e = va_arg(arguments, long), f = va_arg(arguments, long);
    va_end(arguments);
    /* libunwind passes the descriptor as an int, whose register's upper half is not -1's. */
    if (HG_UNLIKELY(number == SYS_write && (int)a == -1) && hg_called_from_libunwind(__builtin_return_address(0)))
        return hg_unwind_check_readable((uintptr_t)b);
    if (HG_UNLIKELY(number == SYS_unshare || number == SYS_setns)) return hg_namespace_call(number, a, b);
    return hg_sandbox_call(number, a, b, c, d, e, f);
}
