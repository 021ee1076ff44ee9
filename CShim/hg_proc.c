/*
 * What /proc says about this process: how many threads it has, and its mappings. Read without
 * the C library's allocator, which may not be usable (the shim replaces a program's own in its
 * constructor, hg_foreign_allocator.c) or may be the program's to count.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hg_internal.h"

/* What /proc/self/status said last of seccomp filters: true once it said none applies. */
static bool hg_known_unfiltered;

int hg_open_proc(const char *path, int flags) {
    int fd = open(path, flags);
    if (fd >= 0 || errno != EMFILE) return fd;
    /* A program may end with every descriptor its limit allows in use (it leaks them, or a
     * server ran out under load): the exit-time scan then had no descriptor for
     * /proc/self/maps, so no roots, and every block came out definitely lost. memcheck keeps
     * descriptors of its own above the limit it shows the program. Here the soft limit is
     * raised by a few for this one open and put back at once (the descriptor stays valid):
     * within the hard limit, or past it where the process may raise that (root). Only while
     * /proc/self/status last said that no seccomp filter applies: a filter may refuse a
     * prlimit64 that sets a limit, and with no descriptor left it cannot be asked again.
     * (A filter the program installs itself stops tracing, hg_sandbox.c, so no scan runs.) */
    struct rlimit limit, raised;
    if (!hg_known_unfiltered || getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return fd;
    raised = limit;
    raised.rlim_cur = limit.rlim_cur + 4;
    if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < raised.rlim_cur) {
        if (limit.rlim_max > limit.rlim_cur) raised.rlim_cur = limit.rlim_max;
        else raised.rlim_max = raised.rlim_cur;
    }
    if (setrlimit(RLIMIT_NOFILE, &raised) != 0) {
        errno = EMFILE;
        return -1;
    }
    fd = open(path, flags);
    int error = errno;
    setrlimit(RLIMIT_NOFILE, &limit);
    errno = error;
    return fd;
}

unsigned hg_thread_count(void) {
    /* The link count of /proc/self/task is two more than the threads; stat needs no descriptor. */
    struct stat task;
    return stat("/proc/self/task", &task) == 0 && task.st_nlink > 2 ? (unsigned)task.st_nlink - 2 : 0;
}

/* A field of /proc/self/status ("Seccomp:", "VmRSS:") as a number; -1 if it cannot be read. */
static long hg_status_field(const char *name) {
    int fd = hg_open_proc("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    char text[4096];
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0) return -1;
    text[n] = '\0';
    const char *at = strstr(text, name);
    return at ? strtol(at + strlen(name), NULL, 10) : -1;
}

bool hg_seccomp_filtered(void) {
    long mode = hg_status_field("\nSeccomp:");
    if (mode >= 0) hg_known_unfiltered = mode == 0;
    return mode != 0;
}

long hg_resident_kib(void) { return hg_status_field("\nVmRSS:"); }

char *hg_read_maps(size_t *length, size_t *capacity) {
    /* This thread's view: once the main thread has left by pthread_exit, /proc/self/maps (the
     * main thread's) is empty. /proc/thread-self exists since Linux 3.17. */
    int fd = hg_open_proc("/proc/thread-self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) fd = hg_open_proc("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    size_t size = 1 << 20, used = 0;
    char *text = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (;;) {
        if (text == MAP_FAILED) break;
        if (used + 1 == size) { /* one byte kept for the terminating NUL */
            char *bigger = mmap(NULL, size * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (bigger == MAP_FAILED) break;
            memcpy(bigger, text, used);
            munmap(text, size);
            text = bigger;
            size *= 2;
        }
        ssize_t n = read(fd, text + used, size - 1 - used);
        if (n <= 0) break;
        used += (size_t)n;
    }
    close(fd);
    if (text == MAP_FAILED) return NULL;
    text[used] = '\0';
    *length = used;
    *capacity = size;
    return text;
}

const char *hg_parse_maps_line(const char *line, hg_maps_line_t *out) {
    char *end;
    out->start = strtoull(line, &end, 16);
    out->stop = *end == '-' ? strtoull(end + 1, &end, 16) : out->start;
    while (*end == ' ') end++;
    out->perms = end;
    for (int field = 0; field < 3; field++) { /* perms, offset, device */
        while (*end && *end != ' ' && *end != '\n') end++;
        while (*end == ' ') end++;
    }
    out->inode = strtoul(end, &end, 10);
    while (*end == ' ') end++;
    out->path = end;
    const char *next = strchr(end, '\n');
    out->path_length = next ? (size_t)(next - end) : strlen(end);
    return next ? next + 1 : NULL;
}
