/*
 * The shim's own descriptor (the trace file; libunwind has no pipe, hg_unwind_readable.c):
 * where it goes, and keeping it out of the program's way.
 *
 * It sits at 1000, out of the range programs use. Daemons, test runners and subprocess
 * helpers close every descriptor they did not open (closefrom, close_range, or close in a
 * loop), and with the trace file went the rest of the trace: such a program got an
 * incomplete trace with no leak answers. As valgrind does for its own, the shim exports
 * close, close_range and closefrom, which close everything asked but this; and fcntl, dup,
 * dup2 and dup3, to which it is not open either (EBADF, as any unused number). A program
 * that uses the number by name gets it: dup2 or dup3 onto it first moves the trace to
 * another number (under a lock that the writer's calls take too), then does what the program
 * asked, as on a free number. Refusing it (valgrind's way) broke a program that
 * had closed everything with the system call and wanted descriptor 1000; not hiding it made
 * bash take `exec 1000>file` for a descriptor of its own, undo the redirection and lose the
 * output. What a raw system call closes or replaces is gone (the trace then stops, checked
 * before each write), and the number is the program's.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hg_internal.h"

#define HG_HIGH_FD 1000
#define HG_OWN_DESCRIPTORS 1 /* the trace file */

/* The kept descriptors: the number (-1 where free, -2 while being filled) and which file it
 * held, so that a number the program took over meanwhile (closed with a raw system call, then
 * reused) is the program's again. Read by every close, so atomics, not a lock. */
static struct {
    _Atomic int fd;
    dev_t dev;
    ino_t ino;
} hg_kept[HG_OWN_DESCRIPTORS + 1] = {{-1, 0, 0}, {-1, 0, 0}};

#define HG_KEPT_SLOTS (sizeof hg_kept / sizeof hg_kept[0])

int hg_descriptor_floor(void) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= HG_HIGH_FD + HG_OWN_DESCRIPTORS)
        return HG_HIGH_FD; /* RLIM_INFINITY included */
    return limit.rlim_cur > 3 + HG_OWN_DESCRIPTORS ? (int)limit.rlim_cur - HG_OWN_DESCRIPTORS : 3;
}

static void hg_descriptor_keep(int fd) {
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) return;
    for (unsigned i = 0; i < HG_KEPT_SLOTS; i++) {
        int free_slot = -1;
        if (!atomic_compare_exchange_strong(&hg_kept[i].fd, &free_slot, -2)) continue;
        hg_kept[i].dev = st.st_dev;
        hg_kept[i].ino = st.st_ino;
        atomic_store(&hg_kept[i].fd, fd);
        return;
    }
}

static void hg_descriptor_release(int fd) {
    for (unsigned i = 0; i < HG_KEPT_SLOTS; i++) {
        int kept = fd;
        if (fd >= 0 && atomic_compare_exchange_strong(&hg_kept[i].fd, &kept, -1)) return;
    }
}

/* A kept number that holds another file now is forgotten, unless this is a vfork child, whose
 * descriptors are its own and its memory (this table) its parent's. */
bool hg_descriptor_is_ours(int fd) {
    for (unsigned i = 0; i < HG_KEPT_SLOTS; i++) {
        if (fd < 0 || atomic_load_explicit(&hg_kept[i].fd, memory_order_relaxed) != fd) continue;
        int saved = errno;
        struct stat st;
        bool same = fstat(fd, &st) == 0 && st.st_dev == hg_kept[i].dev && st.st_ino == hg_kept[i].ino;
        errno = saved;
        if (same) return true;
        if (hg_writer_in_owner()) hg_descriptor_release(fd);
    }
    return false;
}

static int hg_real_fcntl(int fd, int command, void *argument) {
    return hg_real_ready() && hg_real.fcntl ? hg_real.fcntl(fd, command, argument)
                                            : (int)syscall(SYS_fcntl, fd, command, argument);
}

/* A close-on-exec copy of fd at the floor or above, or, where nothing there is free (a low
 * descriptor limit, whose top is the floor), at the highest free number within 64 below it;
 * -1 if none. */
static int hg_copy_high(int fd) {
    int saved = errno, floor = hg_descriptor_floor();
    for (int at = floor; at >= 3 && at > floor - 64; at--) {
        int high = hg_real_fcntl(fd, F_DUPFD_CLOEXEC, (void *)(intptr_t)at);
        if (high >= 0) {
            errno = saved;
            return high;
        }
        if (errno != EMFILE && errno != EINVAL) break; /* EINVAL: at or above the limit */
    }
    errno = saved;
    return -1;
}

int hg_descriptor_raise(int fd) {
    int high = hg_copy_high(fd);
    if (high >= 0) {
        close(fd);
        fd = high;
    }
    hg_descriptor_keep(fd);
    return fd;
}

void hg_descriptor_close(int fd) {
    if (!hg_descriptor_is_ours(fd)) return;
    hg_descriptor_release(fd);
    close(fd);
}

/* ---- the program's calls ---- */

static int hg_real_close(int fd) {
    return hg_real_ready() && hg_real.close ? hg_real.close(fd) : (int)syscall(SYS_close, fd);
}

static int hg_real_close_range(unsigned first, unsigned last, int flags) {
    if (hg_real_ready() && hg_real.close_range) return hg_real.close_range(first, last, flags);
    return (int)syscall(SYS_close_range, first, last, flags);
}

/** Interposes close(2): a kept descriptor is not the program's to close. */
HG_EXPORT int close(int fd) {
    if (!hg_descriptor_is_ours(fd)) return hg_real_close(fd);
    errno = EBADF;
    return -1;
}

/* The kept descriptors in [first, last] that still hold the shim's files, in ascending order. */
static size_t hg_descriptors_within(unsigned first, unsigned last, unsigned out[HG_KEPT_SLOTS]) {
    size_t count = 0;
    for (unsigned i = 0; i < HG_KEPT_SLOTS; i++) {
        int fd = atomic_load(&hg_kept[i].fd);
        if (fd < 0 || (unsigned)fd < first || (unsigned)fd > last || !hg_descriptor_is_ours(fd)) continue;
        size_t at = count++;
        for (; at > 0 && out[at - 1] > (unsigned)fd; at--) out[at] = out[at - 1];
        out[at] = (unsigned)fd;
    }
    return count;
}

/** Interposes close_range(2) (glibc 2.34): the range, in pieces around the kept descriptors. */
HG_EXPORT int close_range(unsigned first, unsigned last, int flags) {
    if (first > last) return hg_real_close_range(first, last, flags); /* its EINVAL */
    unsigned kept[HG_KEPT_SLOTS];
    size_t count = hg_descriptors_within(first, last, kept);
    unsigned from = first;
    int failure = 0;
    for (size_t i = 0; i < count; i++) {
        if (kept[i] > from && hg_real_close_range(from, kept[i] - 1, flags) != 0) failure = errno;
        from = kept[i] + 1; /* descriptors are ints: no wrap */
    }
    if ((count == 0 || kept[count - 1] < last) && hg_real_close_range(from, last, flags) != 0) failure = errno;
    if (failure == 0) return 0;
    errno = failure;
    return -1;
}

/** Interposes closefrom(3) (glibc 2.34), whose close_range call is glibc's own and would not
 *  come here. Like glibc's, it closes one by one where the kernel lacks close_range. */
HG_EXPORT void closefrom(int lowest) {
    unsigned first = lowest < 0 ? 0 : (unsigned)lowest;
    if (close_range(first, ~0u, 0) == 0 || errno != ENOSYS) return;
    struct rlimit limit;
    unsigned end = getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < 65536 ? (unsigned)limit.rlim_cur : 65536;
    for (unsigned fd = first; fd < end; fd++)
        if (!hg_descriptor_is_ours((int)fd)) hg_real_close((int)fd);
}

/* ---- moving the trace out of the program's way ---- */

/* Moves of the trace's descriptor exclude each other, the writer's system calls on it (so that
 * none reaches a number the program took over) and a fork (whose child would get the table and
 * the memory of different moments). A spin lock, held with signals blocked and cancellation
 * off, so that no handler on the holding thread can wait for it and no cancelled thread keeps
 * it; held for a few system calls, the longest a write of the trace (1 MiB at most). */
static _Atomic bool hg_descriptor_busy;
static _Atomic(pthread_t) hg_descriptor_holder;

void hg_descriptor_lock(hg_descriptor_hold_t *hold) {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &hold->signals);
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &hold->cancel_state);
    for (unsigned spins = 1; atomic_exchange_explicit(&hg_descriptor_busy, true, memory_order_acquire); spins++) {
        /* A child made by clone() or a raw fork, which run no fork handlers, may have copied
         * the lock held by a thread it does not have: then it is nobody's. */
        pthread_t holder = atomic_load(&hg_descriptor_holder);
        if (spins % 64 == 0 && holder != (pthread_t)0 && pthread_kill(holder, 0) == ESRCH) break;
        sched_yield();
    }
    atomic_store(&hg_descriptor_holder, pthread_self());
}

void hg_descriptor_unlock(const hg_descriptor_hold_t *hold) {
    atomic_store(&hg_descriptor_holder, (pthread_t)0);
    atomic_store_explicit(&hg_descriptor_busy, false, memory_order_release);
    pthread_setcancelstate(hold->cancel_state, NULL);
    pthread_sigmask(SIG_SETMASK, &hold->signals, NULL);
}

static hg_descriptor_hold_t hg_hold_at_fork;

void hg_descriptors_fork_prepare(void) { hg_descriptor_lock(&hg_hold_at_fork); }

void hg_descriptors_fork_parent(void) { hg_descriptor_unlock(&hg_hold_at_fork); }

void hg_descriptors_fork_child(void) { hg_descriptor_unlock(&hg_hold_at_fork); }

/* With the lock held: the program is about to put a file at `fd`, a number it sees as free.
 * The trace moves to another number first; `fd` keeps the trace's open file until the
 * program's dup2/dup3 replaces it in one step (no moment where another thread's open could
 * take the number), or the caller closes it if that fails. Where no number is free, the trace
 * is forgotten and stops there. Not in a vfork child: its descriptor table is its own, its
 * memory (these slots, the writer's number) the parent's, so its dup2 replaces its copy only,
 * as the exec it prepares would close it. True if `fd` held the trace. */
static bool hg_descriptor_vacate(int fd) {
    if (!hg_descriptor_is_ours(fd) || !hg_writer_in_owner()) return false;
    for (unsigned i = 0; i < HG_KEPT_SLOTS; i++) {
        if (atomic_load(&hg_kept[i].fd) != fd) continue;
        int moved = hg_copy_high(fd);
        atomic_store(&hg_kept[i].fd, moved);
        hg_writer_descriptor_moved(fd, moved);
        return true;
    }
    return false;
}

static int hg_not_open(void) {
    errno = EBADF;
    return -1;
}

static int hg_real_dup2(int from, int to) {
    return hg_real_ready() && hg_real.dup2 ? hg_real.dup2(from, to) : (int)syscall(SYS_dup2, from, to);
}

static int hg_real_dup3(int from, int to, int flags) {
    return hg_real_ready() && hg_real.dup3 ? hg_real.dup3(from, to, flags) : (int)syscall(SYS_dup3, from, to, flags);
}

/* The kept descriptor in [lowest, below), if any. */
static int hg_kept_between(int lowest, int below) {
    for (unsigned i = 0; i < HG_KEPT_SLOTS; i++) {
        int fd = atomic_load(&hg_kept[i].fd);
        if (fd >= lowest && fd < below) return fd;
    }
    return -1;
}

/* fcntl's F_DUPFD and F_DUPFD_CLOEXEC: the lowest free number from `lowest`. Where the kernel
 * passed over the trace's number for the program (a program asking for 1000 got 1001), the
 * trace moves and the program gets that number, as natively. */
static int hg_dup_from(int fd, int command, int lowest) {
    int copy = hg_real_fcntl(fd, command, (void *)(intptr_t)lowest);
    if (copy < 0 || hg_kept_between(lowest, copy) < 0) return copy;
    int saved = errno;
    hg_descriptor_hold_t hold;
    hg_descriptor_lock(&hold);
    int passed = hg_kept_between(lowest, copy);
    if (passed >= 0 && hg_descriptor_vacate(passed)) {
        if (hg_real_dup3(copy, passed, command == F_DUPFD_CLOEXEC ? O_CLOEXEC : 0) == passed) {
            hg_real_close(copy);
            copy = passed;
        } else {
            hg_real_close(passed);
        }
    }
    hg_descriptor_unlock(&hold);
    errno = saved;
    return copy;
}

static int hg_fcntl(int fd, int command, void *argument) {
    if (hg_descriptor_is_ours(fd)) return hg_not_open();
    if (command == F_DUPFD || command == F_DUPFD_CLOEXEC) return hg_dup_from(fd, command, (int)(intptr_t)argument);
    return hg_real_fcntl(fd, command, argument);
}

/** Interposes fcntl(2): a kept descriptor is not open. */
HG_EXPORT int fcntl(int fd, int command, ...) {
    va_list arguments;
    va_start(arguments, command);
    void *argument = va_arg(arguments, void *); /* every command takes one word or none */
    va_end(arguments);
    return hg_fcntl(fd, command, argument);
}

/** Interposes fcntl64 (glibc 2.28), what programs built with 64-bit file offsets call: the
 *  same function on x86-64. */
HG_EXPORT int fcntl64(int fd, int command, ...) __attribute__((alias("fcntl")));

/** Interposes dup(2): a kept descriptor is not open. */
HG_EXPORT int dup(int fd) {
    if (hg_descriptor_is_ours(fd)) return hg_not_open();
    return hg_real_ready() && hg_real.dup ? hg_real.dup(fd) : (int)syscall(SYS_dup, fd);
}

/* dup2 (flags -1) and dup3: from a kept descriptor, EBADF; onto one, the trace moves first.
 * Under the lock, so that no move can choose `to` between the check and the call. */
static int hg_dup_onto(int from, int to, int flags) {
    if (hg_descriptor_is_ours(from)) return hg_not_open();
    hg_descriptor_hold_t hold;
    hg_descriptor_lock(&hold);
    bool vacated = hg_descriptor_vacate(to);
    int result = flags == -1 ? hg_real_dup2(from, to) : hg_real_dup3(from, to, flags);
    if (result < 0 && vacated) {
        int saved = errno;
        hg_real_close(to); /* the trace's old copy, which the program sees as free */
        errno = saved;
    }
    hg_descriptor_unlock(&hold);
    return result;
}

/** Interposes dup2(2). */
HG_EXPORT int dup2(int from, int to) { return hg_dup_onto(from, to, -1); }

/** Interposes dup3(2). */
HG_EXPORT int dup3(int from, int to, int flags) { return hg_dup_onto(from, to, flags); }
