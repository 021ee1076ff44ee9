/*
 * libunwind's memory check, without its pipe. Before libunwind reads a word of a frame in
 * unw_step (the exit's caller frame, unw_backtrace where its fast path gives up), it checks
 * that the word is readable: libunwind 1.6 opens a pipe on first use and writes the word's
 * first byte into it, a write from unreadable memory failing with EFAULT, then reads the byte
 * back out. Those two descriptors were in the program's table: moved to 1000 and up, they
 * still took numbers a program may use by name (`exec 1001>file` in bash: bash saw an open
 * descriptor, took it for one of its own and undid the redirection, and the output went
 * into the pipe), and a program that dup2()ed onto one would have had libunwind's bytes
 * written into its file, and read out of it.
 *
 * So libunwind gets no pipe. The shim's pipe and pipe2 refuse a call from libunwind's code
 * (EMFILE), and its descriptors stay -1. A check then costs libunwind a read(-1) (EBADF,
 * instead of the pipe's EAGAIN), a pipe2 that the shim refuses again without a system call,
 * and syscall(SYS_write, -1, byte, 1), which the shim exports (hg_sandbox.c) and, from
 * libunwind's code, answers by reading the byte with process_vm_readv: 1 if readable, -1 and
 * EFAULT if not, as the pipe's write did. Two system calls a check, as before. Every other
 * caller of pipe, pipe2 and syscall gets the plain system call.
 */
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "hg_internal.h"

/* libunwind's executable segments, [first, last): where its calls return to. */
static uintptr_t hg_libunwind_first, hg_libunwind_last;
/* The address libunwind is loaded at, as dl_iterate_phdr gives it (dlpi_addr). */
static uintptr_t hg_libunwind_base;

static int hg_find_libunwind(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    uintptr_t inside = (uintptr_t)data, first = UINTPTR_MAX, last = 0;
    bool found = false;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *segment = &info->dlpi_phdr[i];
        if (segment->p_type != PT_LOAD) continue;
        uintptr_t start = info->dlpi_addr + segment->p_vaddr, end = start + segment->p_memsz;
        if (inside >= start && inside < end) found = true;
        if (!(segment->p_flags & PF_X)) continue;
        if (start < first) first = start;
        if (end > last) last = end;
    }
    if (!found || last == 0) return 0;
    hg_libunwind_first = first;
    hg_libunwind_last = last;
    hg_libunwind_base = info->dlpi_addr;
    return 1;
}

uintptr_t hg_libunwind_load_address(void) { return hg_libunwind_base; }

bool hg_called_from_libunwind(const void *return_address) {
    uintptr_t at = (uintptr_t)return_address;
    return at >= hg_libunwind_first && at < hg_libunwind_last;
}

long hg_unwind_check_readable(uintptr_t address) {
    unsigned char byte;
    int saved = errno;
    if (hg_read_own(&byte, address, 1)) {
        errno = saved;
        return 1;
    }
    if (errno != EFAULT) {
        /* process_vm_readv refused (a sandbox's filter, a kernel without it): the kernel
         * copies a signal set in before it checks `how`, so an invalid `how` answers EFAULT
         * or EINVAL and changes nothing. It reads 8 bytes: a word at a page's last bytes may
         * be called unreadable, which stops that unwind early, never a fault. */
        long result = hg_system_call(SYS_rt_sigprocmask, -1, (long)address, 0, sizeof(uint64_t), 0, 0);
        if (result != 0 && errno == EINVAL) {
            errno = saved;
            return 1;
        }
    }
    errno = EFAULT;
    return -1;
}

static int hg_pipe2(int fds[2], int flags, const void *return_address) {
    if (hg_called_from_libunwind(return_address)) {
        errno = EMFILE;
        return -1;
    }
    return (int)hg_system_call(SYS_pipe2, (long)fds, flags, 0, 0, 0, 0);
}

/** Interposes pipe2(2): a plain system call, refused to libunwind (see above). */
HG_EXPORT int pipe2(int fds[2], int flags) { return hg_pipe2(fds, flags, __builtin_return_address(0)); }

/** Interposes pipe(2): a plain system call, refused to libunwind (see above). */
HG_EXPORT int pipe(int fds[2]) { return hg_pipe2(fds, 0, __builtin_return_address(0)); }

void hg_unwind_readable_init(void) {
    void *any_of_libunwind = (void *)unw_backtrace;
    dl_iterate_phdr(hg_find_libunwind, any_of_libunwind);
    /* libunwind's first use, which asks for its pipe. Per-thread caches also need no lock when
     * a signal handler unwinds mid-unwind. */
    unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
}
