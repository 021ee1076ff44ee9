/*
 * seccomp_launcher.c - a launcher that sandboxes what it starts, as bwrap, minijail or systemd
 * do: it installs a seccomp filter with a raw system call, then execs the program, which
 * inherits the filter without ever having seen it installed.
 *
 * Usage: seccomp_launcher PROGRAM [ARGS...]
 *   The filter lets threads be made (clone with CLONE_THREAD) and kills the process on any
 *   other clone, fork or vfork (SIGSYS); clone3 fails with ENOSYS (glibc then uses clone).
 *   Everything else is allowed. Exits 99 if the filter cannot be installed, 127 if the exec
 *   fails; otherwise the program's status.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LOAD(field) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, field))
#define RETURN(action) BPF_STMT(BPF_RET | BPF_K, (action))
#define IF_EQUAL(value, skip_if_true, skip_if_false) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (value), (skip_if_true), (skip_if_false))

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    struct sock_filter filter[] = {
        LOAD(arch),
        IF_EQUAL(AUDIT_ARCH_X86_64, 1, 0),
        RETURN(SECCOMP_RET_KILL_PROCESS),
        LOAD(nr),
        IF_EQUAL(__NR_clone3, 0, 1),
        RETURN(SECCOMP_RET_ERRNO | ENOSYS),
        IF_EQUAL(__NR_fork, 0, 1),
        RETURN(SECCOMP_RET_KILL_PROCESS),
        IF_EQUAL(__NR_vfork, 0, 1),
        RETURN(SECCOMP_RET_KILL_PROCESS),
        IF_EQUAL(__NR_clone, 1, 0),
        RETURN(SECCOMP_RET_ALLOW),
        LOAD(args[0]),
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD, 0, 1),
        RETURN(SECCOMP_RET_ALLOW),
        RETURN(SECCOMP_RET_KILL_PROCESS),
    };
    struct sock_fprog program = {.len = sizeof filter / sizeof filter[0], .filter = filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return 99;
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) != 0) return 99;
    execvp(argv[1], argv + 1);
    perror("exec");
    return 127;
}
