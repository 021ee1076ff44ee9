/*
 * The shim's own descriptors (the trace file, libunwind's pipe): where they go, and keeping
 * the program from closing them.
 *
 * They sit at 1000 and up, out of the range programs use. Daemons, test runners and
 * subprocess helpers close every descriptor they did not open (closefrom, close_range, or
 * close in a loop), and with the trace file went the rest of the trace: such a program got
 * an incomplete trace with no leak answers, and libunwind's pipe closed under it. As valgrind
 * does for its own, the shim exports close, close_range and closefrom, which close everything
 * asked but these; to the program the kept descriptors are not open (EBADF, as closing any
 * unused number). What a raw system call closes is gone (the trace then stops, checked before
 * each write), and a number the program reuses is its own; dup2 and dup3 onto one are left
 * to do what they do, since refusing them (valgrind's way) broke a program that had closed
 * everything with the system call and wanted descriptor 1000.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hg_internal.h"

#define HG_HIGH_FD 1000
#define HG_OWN_DESCRIPTORS 3 /* the trace file and libunwind's pipe */

/* The kept descriptors: the number (-1 where free, -2 while being filled) and which file it
 * held, so that a number the program took over meanwhile (closed with a raw system call, then
 * reused) is the program's again. Read by every close, so atomics, not a lock. */
static struct {
    _Atomic int fd;
    dev_t dev;
    ino_t ino;
} hg_kept[HG_OWN_DESCRIPTORS + 1] = {{-1, 0, 0}, {-1, 0, 0}, {-1, 0, 0}, {-1, 0, 0}};

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

/* A kept number that holds another file now is forgotten. */
bool hg_descriptor_is_ours(int fd) {
    for (unsigned i = 0; i < HG_KEPT_SLOTS; i++) {
        if (fd < 0 || atomic_load_explicit(&hg_kept[i].fd, memory_order_relaxed) != fd) continue;
        int saved = errno;
        struct stat st;
        bool same = fstat(fd, &st) == 0 && st.st_dev == hg_kept[i].dev && st.st_ino == hg_kept[i].ino;
        errno = saved;
        if (same) return true;
        hg_descriptor_release(fd);
        return false;
    }
    return false;
}

int hg_descriptor_raise(int fd) {
    int high = fcntl(fd, F_DUPFD_CLOEXEC, hg_descriptor_floor());
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
