/*
 * The trace file: one per process image, written through a 1 MiB buffer by one thread at a
 * time: the starting thread (header, command), the drain thread (the events), the exiting
 * thread (what is left in the ring, the snapshot, the scan's records). Tracing must never
 * harm the program, so:
 *  - the descriptor is moved above the range programs use (hg_descriptors.c), is
 *    close-on-exec, hidden from the program's calls that name a descriptor, and moved again
 *    when the program puts a file of its own at its number (dup2, dup3);
 *  - before each write the descriptor is checked to still be our file (a program that closes
 *    every descriptor and opens another must not get trace bytes in it);
 *  - any failure (disk full, unwritable directory) stops writing, never the program;
 *  - no write starts at or past the file-size limit (RLIMIT_FSIZE, `ulimit -f`): such a write
 *    raises SIGXFSZ, whose default action kills the process, and the shim's writes at start
 *    and at exit run on the program's own threads. The trace stops at the limit instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hg_internal.h"
#include "hg_trace_format.h"

/* Moved by the program's dup2 and dup3 onto it (hg_descriptors.c), under the lock that every
 * system call on it here holds too. */
static _Atomic int hg_fd = -1;
/* The process that opened the file: a vfork child shares these variables with its parent. */
static pid_t hg_fd_owner;
static bool hg_failed;
unsigned char hg_write_buffer[HG_WRITE_BUFFER];
struct hg_write_cursor hg_write_cursor;
static uint64_t hg_flushed; /* bytes handed to write() (or dropped after a failure) */
static uint32_t hg_header_flags;

/* The trace's name for `sequence`: an exec'd image keeps its pid, so later images of the same
 * pid get a sequence number. */
static void hg_trace_path(char *path, size_t size, const char *dir, int sequence) {
    if (sequence == 1)
        snprintf(path, size, "%s/heapgate.%d.trace", dir, (int)getpid());
    else
        snprintf(path, size, "%s/heapgate.%d.%d.trace", dir, (int)getpid(), sequence);
}

/* Puts the trace at the first of its names in `dir` that is free: a new file created there, or,
 * given `unnamed` (a file made with O_TMPFILE), that file linked there (linkat through
 * /proc/self/fd, which needs no privilege, where AT_EMPTY_PATH does). The descriptor, or -1. */
static int hg_take_trace_name(const char *dir, int unnamed) {
    char self[64], path[4096];
    snprintf(self, sizeof self, "/proc/self/fd/%d", unnamed);
    for (int sequence = 1; sequence < 1000; sequence++) {
        hg_trace_path(path, sizeof path, dir, sequence);
        int fd = unnamed >= 0 ? (linkat(AT_FDCWD, self, AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0 ? unnamed : -1)
                              : open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0 || errno != EEXIST) return fd;
    }
    return -1;
}

/* The directory of a file made without a name (O_TMPFILE) that its first write has not yet
 * given one; NULL otherwise. Created and then written, a file was empty for a moment, and a
 * fork child killed in that moment (multiprocessing's terminate()) left an empty trace, which
 * heapgate had to explain: 1 run in 4 of the suite's killed_while_starting under load. Named
 * only once it holds its first bytes, a file is never seen empty. */
static const char *hg_unnamed_directory;

static int hg_create_unnamed_trace_file(const char *dir) {
    if (hg_seccomp_filtered()) return -1; /* access, linkat: calls an inherited filter may refuse */
    if (access("/proc/self/fd", X_OK) != 0) return -1; /* no way to name it afterwards */
    int fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
    if (fd >= 0) hg_unnamed_directory = dir;
    return fd;
}

/* Gives the unnamed file its name; false if none could be given. */
static bool hg_name_trace_file(int fd) {
    const char *dir = hg_unnamed_directory;
    hg_unnamed_directory = NULL;
    return hg_take_trace_name(dir, fd) >= 0;
}

/* The trace directory as an absolute path, resolved against the working directory once, when
 * the process image starts: a fork child made after a chdir() finds the same directory (a
 * relative one was then looked up from the new working directory, and the child's trace was
 * lost or written elsewhere). */
static const char *hg_trace_directory(const char *dir) {
    static char resolved[4096];
    if (resolved[0] != '\0') return resolved;
    if (dir == NULL || dir[0] == '\0') dir = ".";
    char cwd[4096] = "";
    if (dir[0] != '/' && getcwd(cwd, sizeof cwd) == NULL) return dir;
    int length = snprintf(resolved, sizeof resolved, "%s%s%s", cwd, cwd[0] ? "/" : "", dir);
    if (length < 0 || (size_t)length >= sizeof resolved) {
        resolved[0] = '\0';
        return dir;
    }
    return resolved;
}

/* The directory the file goes in, from hg_writer_open until the first flush creates it; NULL
 * otherwise. The file is created when its first bytes go out, not when the trace starts: what
 * comes first (the header, the command and, in a fork child, every module and every block it
 * inherited: a Python pool worker's tens of thousands) is buffered, and a process killed
 * meanwhile (multiprocessing's terminate()) left an empty file, which heapgate then had to
 * explain. Now such a process leaves none, as one killed before its trace starts. */
static const char *hg_pending_directory;

/* Creates the file (hg_pending_directory); false if it cannot be. */
static bool hg_create_pending_file(void) {
    const char *dir = hg_pending_directory;
    hg_pending_directory = NULL;
    int fd = hg_create_unnamed_trace_file(dir);
    if (fd < 0) fd = hg_take_trace_name(dir, -1); /* a file system without O_TMPFILE */
    if (fd < 0) return false;
    fd = hg_descriptor_raise(fd);
    if (!hg_descriptor_is_ours(fd)) { /* it could not be told apart from a file of the program's */
        close(fd);
        return false;
    }
    hg_fd_owner = getpid();
    atomic_store(&hg_fd, fd);
    return true;
}

void hg_writer_open(const char *dir, uint32_t flags) {
    hg_pending_directory = hg_trace_directory(dir);
    hg_header_flags = flags;
    hg_failed = false;
    hg_write_cursor.buffered = 0;
    hg_flushed = 0;

    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    hg_file_header_t header = {
        .version = HG_TRACE_VERSION,
        .header_size = sizeof header,
        .pid = (uint32_t)getpid(),
        .ppid = (uint32_t)getppid(),
        .start_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec,
        .flags = flags,
        .max_depth = hg_stacks_max_depth,
    };
    memcpy(header.magic, HG_TRACE_MAGIC, sizeof header.magic);
    hg_writer_bytes(&header, sizeof header);
}

/* The descriptor, still the trace's, for system calls until hg_fd_end_use, with the
 * descriptors' lock held (no move meanwhile); -1, and no lock, if there is none. */
static int hg_fd_begin_use(hg_descriptor_hold_t *hold) {
    hg_descriptor_lock(hold);
    int fd = atomic_load(&hg_fd);
    if (fd >= 0 && hg_descriptor_is_ours(fd)) return fd;
    hg_descriptor_unlock(hold);
    return -1;
}

static void hg_fd_end_use(const hg_descriptor_hold_t *hold) { hg_descriptor_unlock(hold); }

bool hg_writer_in_owner(void) { return hg_fd_owner != 0 && getpid() == hg_fd_owner; }

void hg_writer_descriptor_moved(int from, int to) { atomic_compare_exchange_strong(&hg_fd, &from, to); }

uint64_t hg_writer_offset(void) { return hg_flushed + hg_write_cursor.buffered; }

/* How many of `wanted` bytes may be written at `offset` without crossing the file-size limit.
 * Read at every flush: the program may change its limit at any time. */
static size_t hg_room_under_file_limit(uint64_t offset, size_t wanted) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_FSIZE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return wanted;
    if (offset >= limit.rlim_cur) return 0;
    return limit.rlim_cur - offset < wanted ? (size_t)(limit.rlim_cur - offset) : wanted;
}

/* Whether the trace's file has lost its last name. `heapgate run` removes its temporary
 * directory once the process it started has ended, and a daemon left behind by that process
 * went on writing a file no one can read: a busy one filled the disk at 11 MB/s, unseen by du,
 * until it exited. Before its first flush has named it, an O_TMPFILE file has no name yet. */
static bool hg_trace_file_removed(int fd) {
    struct stat st;
    return hg_unnamed_directory == NULL && fstat(fd, &st) == 0 && st.st_nlink == 0;
}

void hg_writer_flush(void) {
    hg_flushed += hg_write_cursor.buffered;
    if (hg_failed || hg_write_cursor.buffered == 0 || (atomic_load(&hg_fd) < 0 && !hg_pending_directory)) {
        hg_write_cursor.buffered = 0;
        return;
    }
    if (hg_pending_directory && !hg_create_pending_file()) {
        hg_failed = true; /* an unwritable directory: the program goes on untraced */
        hg_write_cursor.buffered = 0;
        return;
    }
    hg_descriptor_hold_t hold;
    int fd = hg_fd_begin_use(&hold);
    if (fd < 0 || hg_trace_file_removed(fd)) {
        if (fd >= 0) hg_fd_end_use(&hold);
        hg_failed = true;
        hg_write_cursor.buffered = 0;
        return;
    }
    uint64_t file_size = hg_flushed - hg_write_cursor.buffered; /* all written so far */
    size_t allowed = hg_room_under_file_limit(file_size, hg_write_cursor.buffered);
    if (allowed < hg_write_cursor.buffered) hg_failed = true; /* after what still fits */
    size_t done = 0;
    while (done < allowed) {
        ssize_t n = write(fd, hg_write_buffer + done, allowed - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            hg_failed = true; /* disk full, I/O error: the program goes on untraced */
            break;
        }
        done += (size_t)n;
    }
    if (hg_unnamed_directory && !hg_name_trace_file(fd)) hg_failed = true;
    hg_fd_end_use(&hold);
    hg_write_cursor.buffered = 0;
}

void hg_writer_bytes(const void *data, size_t length) {
    const unsigned char *bytes = data;
    while (length > 0) {
        if (hg_write_cursor.buffered == HG_WRITE_BUFFER) hg_writer_flush();
        size_t chunk = HG_WRITE_BUFFER - hg_write_cursor.buffered;
        if (chunk > length) chunk = length;
        memcpy(hg_write_buffer + hg_write_cursor.buffered, bytes, chunk);
        hg_write_cursor.buffered += chunk;
        bytes += chunk;
        length -= chunk;
    }
}

void hg_writer_close(void) {
    hg_writer_flush();
    hg_descriptor_close(atomic_exchange(&hg_fd, -1));
}

void hg_writer_set_header_flag(uint32_t flag) {
    if (hg_failed) return;
    if (hg_pending_directory) { /* the header is still the buffer's first bytes */
        hg_header_flags |= flag;
        memcpy(hg_write_buffer + offsetof(hg_file_header_t, flags), &hg_header_flags, sizeof hg_header_flags);
        return;
    }
    hg_descriptor_hold_t hold;
    int fd = hg_fd_begin_use(&hold);
    if (fd < 0) return;
    hg_header_flags |= flag;
    /* The header is the file's first bytes, under any file-size limit the rest got past. */
    if (pwrite(fd, &hg_header_flags, sizeof hg_header_flags, offsetof(hg_file_header_t, flags)) !=
        sizeof hg_header_flags)
        hg_failed = true;
    hg_fd_end_use(&hold);
}

void hg_writer_forget_in_child(void) {
    /* The descriptor is the parent's file; closing our copy would be harmless, but the
     * buffer holds the parent's bytes, which the parent writes itself. */
    hg_descriptor_close(atomic_exchange(&hg_fd, -1));
    hg_pending_directory = NULL;
    hg_fd_owner = 0;
    hg_write_cursor.buffered = 0;
    hg_flushed = 0;
    hg_failed = false;
}
