/*
 * sandboxed.c - a program that sandboxes itself with a seccomp allow-list.
 *
 * Usage: sandboxed [prctl|syscall [allow|deny|args|fault]]
 *   (default prctl allow: how the filter is installed, and which kind)
 *
 * Before the filter: 40 bytes allocated (before_filter), 24 bytes allocated and freed.
 * Then a filter, installed twice, as layered sandboxes do:
 *  - allow: an allow-list of what this program itself needs (read, write, brk, mmap, munmap,
 *    mremap, exit, exit_group, rt_sigreturn, and prctl and seccomp for the second filter);
 *    any other system call kills the process (SIGSYS);
 *  - deny: a deny-list that refuses ptrace and mount (EPERM) and lets everything else through;
 *  - args: lets everything through but a write to a descriptor above 2, which kills;
 *  - fault: a filter pointer the kernel cannot read: the calls fail with EFAULT, which is
 *    checked, and the program goes on unsandboxed.
 * After them: 100 bytes allocated (after_filter), whose pointer replaces the 40-byte block's in
 * the same static (so the 40 bytes are definitely lost, the 100 still reachable), one line on
 * stdout, exit 7. Natively it prints its line and exits with 7; under a tracker whose own
 * system calls go through an allow-list, it dies of SIGSYS.
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static void *volatile kept;
static void *volatile scratch;

__attribute__((noinline)) void before_filter(void)
{
    kept = malloc(40);
    scratch = malloc(24);
    free(scratch);
}

__attribute__((noinline)) void after_filter(void)
{
    kept = malloc(100);
}

#define ALLOW(name) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_##name, 0, 1), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

static int install_allow_list(int use_syscall)
{
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        ALLOW(read), ALLOW(write), ALLOW(brk), ALLOW(mmap), ALLOW(munmap), ALLOW(mremap),
        ALLOW(exit), ALLOW(exit_group), ALLOW(rt_sigreturn), ALLOW(prctl), ALLOW(seccomp),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
    };
    struct sock_fprog program = {.len = sizeof code / sizeof code[0], .filter = code};
    if (use_syscall)
        return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program);
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program);
}

#define DENY(name) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_##name, 0, 1), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 1)

static int install_deny_list(int use_syscall)
{
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        DENY(ptrace), DENY(mount),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog program = {.len = sizeof code / sizeof code[0], .filter = code};
    if (use_syscall)
        return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program);
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program);
}

static int install_argument_check(int use_syscall)
{
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_write, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, 2, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog program = {.len = sizeof code / sizeof code[0], .filter = code};
    if (use_syscall)
        return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program);
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program);
}

static int install_unreadable(int use_syscall)
{
    void *unmapped = (void *)8;
    int result = use_syscall ? (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, unmapped)
                             : prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, unmapped);
    return result == -1 && errno == EFAULT ? 0 : -1;
}

static int install_filter(int use_syscall, const char *kind)
{
    if (strcmp(kind, "fault") == 0)
        return install_unreadable(use_syscall);
    if (strcmp(kind, "deny") == 0)
        return install_deny_list(use_syscall);
    if (strcmp(kind, "args") == 0)
        return install_argument_check(use_syscall);
    return install_allow_list(use_syscall);
}

int main(int argc, char **argv)
{
    before_filter();
    int use_syscall = argc > 1 && strcmp(argv[1], "syscall") == 0;
    const char *kind = argc > 2 ? argv[2] : "allow";
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || install_filter(use_syscall, kind) != 0 ||
        install_filter(use_syscall, kind) != 0) {
        static const char failed[] = "sandboxed: cannot install the filter\n";
        if (write(2, failed, sizeof failed - 1) < 0)
            return 2;
        return 2;
    }
    after_filter();
    static const char line[] = "sandboxed: running under the filter\n";
    if (write(1, line, sizeof line - 1) < 0)
        return 3;
    exit(7);
}
