/*
 * Where libunwind's pipe goes. libunwind 1.6 opens a pipe (its memory validator) when it is
 * first used, and pipe(2) hands out the two lowest free descriptors: the program's next
 * open() would then return 5 instead of 3, and a program that closes every descriptor and
 * opens files could have libunwind write a validation byte into one of them.
 *
 * So the shim exports pipe and pipe2, which are plain system calls, except while
 * hg_unwind_pipe_place() initialises libunwind on the starting thread: a pipe made then is
 * moved to the top of the descriptor range (hg_descriptor_floor), where the trace file goes
 * too. That is five system calls. Holding every free descriptor below the floor with a
 * placeholder while libunwind opened its pipe, as the shim did before, was about 1,000, and
 * 0.7–1.9 ms of every traced process's start (`perf stat -r 60` of a traced `true`).
 */
#include <errno.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "hg_internal.h"

/* The thread in hg_unwind_pipe_place(), while it runs; 0 otherwise (glibc's pthread_t is the
 * thread's descriptor address, never 0). */
static _Atomic(pthread_t) hg_placing_thread;

static int hg_pipe2(int fds[2], int flags) {
    int result = (int)syscall(SYS_pipe2, fds, flags);
    if (result == 0 && pthread_equal(atomic_load(&hg_placing_thread), pthread_self())) {
        int saved = errno;
        fds[0] = hg_descriptor_raise(fds[0]);
        fds[1] = hg_descriptor_raise(fds[1]);
        errno = saved;
    }
    return result;
}

/** Interposes pipe2(2): a plain system call, except for libunwind's pipe (see above). */
HG_EXPORT int pipe2(int fds[2], int flags) { return hg_pipe2(fds, flags); }

/** Interposes pipe(2): a plain system call, except for libunwind's pipe (see above). */
HG_EXPORT int pipe(int fds[2]) { return hg_pipe2(fds, 0); }

void hg_unwind_pipe_place(void) {
    atomic_store(&hg_placing_thread, pthread_self());
    /* libunwind's first use: it opens its pipe here. Per-thread caches also need no lock
     * when a signal handler unwinds mid-unwind. */
    unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
    atomic_store(&hg_placing_thread, (pthread_t)0);
}
