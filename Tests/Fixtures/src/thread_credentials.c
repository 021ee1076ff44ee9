/*
 * thread_credentials.c - credentials that differ between threads, then a set*id call.
 *
 * capset(2) changes the calling thread's capabilities only. main drops all of its own, then
 * calls setgroups(0, NULL), which glibc makes every thread of the process call (SIGSETXID),
 * aborting the process when their results differ. Natively the process has one thread and
 * the call fails with EPERM; a tracer's extra thread, still holding CAP_SETGID when run as
 * root, would succeed, and glibc would abort.
 *
 *   before_drop()  malloc(16)  LEAKED 16 bytes
 *   capset: no capabilities on main's thread (exit 2 if refused)
 *   setgroups(0, NULL): prints "thread_credentials: setgroups -1 EPERM" (as root or not)
 *   after_drop()   malloc(32)  LEAKED 32 bytes
 *   exits 0.
 *
 * So 48 bytes in 2 blocks are lost.  Output only via write(2).
 */
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define KEEP(p) __asm__ volatile("" : : "g"(p) : "memory")

__attribute__((noinline)) void before_drop(void)
{
    void *p = malloc(16);
    memset(p, 'b', 16);
    KEEP(p);
}

__attribute__((noinline)) void after_drop(void)
{
    void *p = malloc(32);
    memset(p, 'a', 32);
    KEEP(p);
}

int main(void)
{
    before_drop();
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct none[2];
    memset(none, 0, sizeof none);
    if (syscall(SYS_capset, &header, none) != 0)
        return 2;
    int result = setgroups(0, NULL);
    char line[80];
    int length = snprintf(line, sizeof line, "thread_credentials: setgroups %d %s\n", result,
                          result == 0 ? "ok" : errno == EPERM ? "EPERM" : "other");
    if (write(1, line, (size_t)length) < 0)
        return 2;
    after_drop();
    return 0;
}
