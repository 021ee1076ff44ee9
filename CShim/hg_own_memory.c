/*
 * Reading the process's own memory without faulting. The exit-time scan and the seccomp check
 * read memory the program may have unmapped or never mapped (a block another thread frees, a
 * header before a block, a filter pointer the program passed): process_vm_readv on our own pid
 * reports such memory as an error instead of raising SIGSEGV, and the kernel allows it within a
 * thread group without ptrace. It is asked with our own thread id, not the process id: once the
 * main thread has left by pthread_exit, the process id names a zombie without memory, and every
 * read by it failed (the exit scan then found no roots, and called every block definitely lost).
 */
#include <sys/uio.h>
#include <unistd.h>

#include "hg_internal.h"

bool hg_read_own(void *to, uintptr_t from, size_t bytes) {
    struct iovec local = {to, bytes}, remote = {(void *)from, bytes};
    return process_vm_readv(gettid(), &local, 1, &remote, 1, 0) == (ssize_t)bytes;
}
