/*
 * Reading the process's own memory without faulting. The exit-time scan and the seccomp check
 * read memory the program may have unmapped or never mapped (a block another thread frees, a
 * header before a block, a filter pointer the program passed): process_vm_readv on our own pid
 * reports such memory as an error instead of raising SIGSEGV, and the kernel allows it within a
 * thread group without ptrace. It is asked with our own thread id, not the process id: once the
 * main thread has left by pthread_exit, the process id names a zombie without memory, and every
 * read by it failed (the exit scan then found no roots, and called every block definitely lost).
 * And writing where the shim rebinds the program's calls (hg_foreign_allocator.c, hg_bypass.c).
 */
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "hg_internal.h"

bool hg_read_own(void *to, uintptr_t from, size_t bytes) {
    struct iovec local = {to, bytes}, remote = {(void *)from, bytes};
    return process_vm_readv(gettid(), &local, 1, &remote, 1, 0) == (ssize_t)bytes;
}

/* The same, the other way: fails, instead of faulting, on memory that is not writable. */
bool hg_write_own(uintptr_t to, const void *from, size_t bytes) {
    struct iovec local = {(void *)from, bytes}, remote = {(void *)to, bytes};
    return process_vm_writev(gettid(), &local, 1, &remote, 1, 0) == (ssize_t)bytes;
}

bool hg_write_protected(uintptr_t to, const void *from, size_t bytes, int protection) {
    uintptr_t first = to & ~(uintptr_t)4095, last = (to + bytes + 4095) & ~(uintptr_t)4095;
    if (mprotect((void *)first, last - first, protection | PROT_WRITE) != 0) return false;
    memcpy((void *)to, from, bytes);
    mprotect((void *)first, last - first, protection);
    return true;
}
