/*
 * exhausts_descriptors.c - opens /dev/null until open() fails with EMFILE, as a program that
 * leaks descriptors (or a server under load) does, and exits with every descriptor in use.
 *
 * Usage: exhausts_descriptors [locked]
 *   1. keeps 40 bytes in a global (still reachable) and leaks 24 bytes in leak_one;
 *   2. lowers its soft descriptor limit to 64 (so that filling the table is quick; the hard
 *      limit stays) and opens /dev/null until open() fails;
 *      `locked`: lowers the hard limit to 64 as well and gives up CAP_SYS_RESOURCE, so that
 *      nothing in the process can raise the limit again;
 *   3. exits 0 without closing any.
 * Prints "exhausted: ok" and exits 0 when open() failed with EMFILE; exit 1 otherwise.
 * Heap: 40 bytes still reachable (held_by_global), 24 bytes definitely lost (leak_one),
 * + stdout's buffer.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <linux/capability.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static void *volatile held;
static void *volatile lost;

__attribute__((noinline)) static void held_by_global(void) { held = malloc(40); }

__attribute__((noinline)) static void leak_one(void) {
    lost = malloc(24);
    lost = NULL;
}

/* Drops CAP_SYS_RESOURCE from the effective and permitted sets (raw capget/capset: no libcap). */
static int drop_sys_resource(void) {
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &header, data) != 0) return -1;
    data[CAP_SYS_RESOURCE / 32].effective &= ~(1u << (CAP_SYS_RESOURCE % 32));
    data[CAP_SYS_RESOURCE / 32].permitted &= ~(1u << (CAP_SYS_RESOURCE % 32));
    return (int)syscall(SYS_capset, &header, data);
}

int main(int argc, char **argv) {
    held_by_global();
    leak_one();
    int locked = argc > 1 && strcmp(argv[1], "locked") == 0;
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1;
    limit.rlim_cur = 64;
    if (locked) limit.rlim_max = 64;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) return 1;
    if (locked && drop_sys_resource() != 0) return 1;
    while (open("/dev/null", O_RDONLY) >= 0) continue;
    if (errno != EMFILE) return 1;
    printf("exhausted: ok\n");
    return 0;
}
