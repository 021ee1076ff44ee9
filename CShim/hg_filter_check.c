/*
 * Whether a seccomp filter that the program is installing lets the shim's own system calls
 * through, so that tracing can go on under it (hg_sandbox.c). Deny-lists (qemu's -sandbox,
 * a test harness that refuses the network, Docker's profile) do; an allow-list written for the
 * program alone does not, and tracing then stops.
 *
 * The filter is classic BPF, run here on a seccomp_data made up for each system call the shim
 * can make after a filter is in (below): on its threads and the drain thread, at exit (the
 * scan), and in a fork child, which starts a trace of its own. A call counts as let through
 * only when the filter returns SECCOMP_RET_ALLOW or SECCOMP_RET_LOG for it having read nothing
 * but the call's number and the architecture: a decision that looks at the arguments or the
 * instruction pointer could go the other way for the shim's real arguments, and an error
 * return (SECCOMP_RET_ERRNO) is not let through either. Anything the interpreter does not
 * know (an opcode, an offset) answers "no". The program's memory is read with
 * process_vm_readv, so a bad pointer cannot fault here; a filter that cannot be read, or whose
 * length the kernel refuses, changes nothing either: the kernel answers EFAULT or EINVAL and
 * installs nothing.
 */
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hg_internal.h"

/* Every system call the shim (and glibc and libunwind on its behalf) may make once a filter is
 * in. Found in the code and checked with strace on traced programs against native runs. */
static const int hg_shim_calls[] = {
    SYS_read, SYS_write, SYS_pwrite64, SYS_openat, SYS_open, SYS_close, SYS_lseek, SYS_fstat, SYS_newfstatat,
    SYS_stat, SYS_statx, SYS_fcntl, SYS_getcwd, SYS_readlink, SYS_readlinkat, SYS_getdents64, SYS_pipe2,
    SYS_mmap, SYS_munmap, SYS_mprotect, SYS_madvise, SYS_mincore, SYS_msync, SYS_mremap, SYS_brk, SYS_futex,
    SYS_sched_yield, SYS_nanosleep, SYS_clock_nanosleep, SYS_clock_gettime, SYS_getpid, SYS_getppid,
    SYS_gettid, SYS_getrlimit, SYS_prlimit64, SYS_process_vm_readv, SYS_rt_sigprocmask, SYS_clone,
    SYS_clone3, SYS_set_robust_list, SYS_rseq, SYS_exit, SYS_exit_group, SYS_getrandom,
    SYS_sched_getaffinity, SYS_tgkill, SYS_dup3, SYS_wait4, SYS_linkat, SYS_access, SYS_faccessat, SYS_faccessat2,
};

#define HG_FILTER_MAX 4096 /* BPF_MAXINSNS: the kernel refuses longer programs */

/* The seccomp_data offsets that hold the call's number and architecture; anything past them
 * (instruction pointer, arguments) is what the decision must not depend on. */
#define HG_DATA_KNOWN_BYTES offsetof(struct seccomp_data, instruction_pointer)

/* Runs the program on (nr, x86-64); true when it lets the call through without looking at
 * anything else. */
static bool hg_filter_lets_through(const struct sock_filter *code, size_t length, int nr) {
    struct seccomp_data data;
    memset(&data, 0, sizeof data);
    data.nr = nr;
    data.arch = AUDIT_ARCH_X86_64;
    uint32_t a = 0, x = 0, scratch[BPF_MEMWORDS] = {0};
    for (size_t pc = 0; pc < length; pc++) {
        const struct sock_filter *op = &code[pc];
        uint32_t k = op->k;
        uint32_t operand = BPF_SRC(op->code) == BPF_X ? x : k;
        switch (BPF_CLASS(op->code)) {
        case BPF_LD:
        case BPF_LDX: {
            uint32_t value;
            if (op->code == (BPF_LD | BPF_W | BPF_ABS)) {
                if (k % 4 != 0 || k + 4 > HG_DATA_KNOWN_BYTES) return false;
                memcpy(&value, (const char *)&data + k, 4);
            } else if (BPF_MODE(op->code) == BPF_LEN && BPF_SIZE(op->code) == BPF_W) {
                value = sizeof data;
            } else if (BPF_MODE(op->code) == BPF_IMM) {
                value = k;
            } else if (BPF_MODE(op->code) == BPF_MEM && k < BPF_MEMWORDS) {
                value = scratch[k];
            } else {
                return false;
            }
            if (BPF_CLASS(op->code) == BPF_LD) a = value; else x = value;
            break;
        }
        case BPF_ST:
        case BPF_STX:
            if (k >= BPF_MEMWORDS) return false;
            scratch[k] = BPF_CLASS(op->code) == BPF_ST ? a : x;
            break;
        case BPF_ALU:
            switch (BPF_OP(op->code)) {
            case BPF_ADD: a += operand; break;
            case BPF_SUB: a -= operand; break;
            case BPF_MUL: a *= operand; break;
            case BPF_DIV: if (operand == 0) return false; a /= operand; break;
            case BPF_MOD: if (operand == 0) return false; a %= operand; break;
            case BPF_AND: a &= operand; break;
            case BPF_OR: a |= operand; break;
            case BPF_XOR: a ^= operand; break;
            case BPF_LSH: if (operand >= 32) return false; a <<= operand; break;
            case BPF_RSH: if (operand >= 32) return false; a >>= operand; break;
            case BPF_NEG: a = -a; break;
            default: return false;
            }
            break;
        case BPF_JMP: {
            size_t skip;
            switch (BPF_OP(op->code)) {
            case BPF_JA: skip = k; break;
            case BPF_JEQ: skip = a == operand ? op->jt : op->jf; break;
            case BPF_JGT: skip = a > operand ? op->jt : op->jf; break;
            case BPF_JGE: skip = a >= operand ? op->jt : op->jf; break;
            case BPF_JSET: skip = (a & operand) ? op->jt : op->jf; break;
            default: return false;
            }
            if (skip >= length - pc - 1) return false; /* jumps go forward, inside the program */
            pc += skip;
            break;
        }
        case BPF_RET: {
            uint32_t action = (BPF_RVAL(op->code) == BPF_A ? a : k) & SECCOMP_RET_ACTION_FULL;
            return action == SECCOMP_RET_ALLOW || action == SECCOMP_RET_LOG;
        }
        case BPF_MISC:
            if (BPF_MISCOP(op->code) == BPF_TAX) x = a;
            else if (BPF_MISCOP(op->code) == BPF_TXA) a = x;
            else return false;
            break;
        default:
            return false;
        }
    }
    return false; /* fell off the end: the kernel refuses such a program */
}

bool hg_filter_lets_shim_through(const void *program) {
    /* Under the caller's lock (hg_drain_stop_for_sandbox's), so static buffers will do: 32 KiB
     * of instructions would not belong on a program thread's stack. */
    static struct sock_filter code[HG_FILTER_MAX];
    struct sock_fprog header;
    if (program == NULL || !hg_read_own(&header, (uintptr_t)program, sizeof header)) return true; /* EFAULT */
    if (header.len == 0 || header.len > HG_FILTER_MAX) return true;                   /* EINVAL */
    if (header.filter == NULL || !hg_read_own(code, (uintptr_t)header.filter, header.len * sizeof code[0])) return true;
    for (size_t i = 0; i < sizeof hg_shim_calls / sizeof hg_shim_calls[0]; i++) {
        if (!hg_filter_lets_through(code, header.len, hg_shim_calls[i])) return false;
    }
    return true;
}
