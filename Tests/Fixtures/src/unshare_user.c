/*
 * unshare_user.c - enters a new user namespace, which the kernel allows only to a process
 * with a single thread (the shim's drain thread must not count as one).
 *
 * Usage: unshare_user [syscall]   (with "syscall": through glibc's syscall(SYS_unshare, ...),
 *                                  not its unshare wrapper)
 *
 *   before_unshare()  malloc(16)  LEAKED 16 bytes
 *   unshare(CLONE_NEWUSER): prints "unshare_user: ok", or "unshare_user: failed (errno N)"
 *                           and exits 1
 *   after_unshare()   malloc(32)  LEAKED 32 bytes
 *   exits 0.
 *
 * So 48 bytes in 2 blocks are lost.  Output only via write(2).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define KEEP(p) __asm__ volatile("" : : "g"(p) : "memory")

__attribute__((noinline)) void before_unshare(void)
{
    void *p = malloc(16);
    memset(p, 'b', 16);
    KEEP(p);
}

__attribute__((noinline)) void after_unshare(void)
{
    void *p = malloc(32);
    memset(p, 'a', 32);
    KEEP(p);
}

int main(int argc, char **argv)
{
    before_unshare();
    if ((argc > 1 && strcmp(argv[1], "syscall") == 0 ? syscall(SYS_unshare, CLONE_NEWUSER) : unshare(CLONE_NEWUSER)) != 0) {
        char line[64];
        int length = snprintf(line, sizeof line, "unshare_user: failed (errno %d)\n", errno);
        if (write(1, line, (size_t)length) < 0)
            return 2;
        return 1;
    }
    if (write(1, "unshare_user: ok\n", 17) < 0)
        return 2;
    after_unshare();
    return 0;
}
