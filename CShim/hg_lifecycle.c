/*
 * Start, fork and exit.
 *
 * Recording starts at the first allocation after glibc's allocator is known (so ld.so's and
 * other constructors' allocations are seen, as memcheck sees them); the drain thread and the
 * trace file come with the shim's constructor. The trace is closed by an exit handler that runs
 * after every library's destructor (see hg_finish_at_exit), or by _exit (a fork child).
 */
#define UNW_LOCAL_ONLY
#include <dlfcn.h>
#include <errno.h>
#include <libunwind.h>
#include <link.h>
#include <pthread.h>
#include <string.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hg_internal.h"

_Atomic int hg_state = HG_OFF;

const char *hg_getenv(const char *name) { return getenv(name); }

/* The descriptors' lock is taken after the drain thread paused: a paused drain holds none,
 * and one waiting for the lock would never pause. */
void hg_fork_prepare(void) {
    hg_guard_depth++;
    hg_modules_fork_prepare();
    hg_drain_fork_prepare();
    hg_descriptors_fork_prepare();
}

void hg_fork_parent(void) {
    hg_descriptors_fork_parent();
    hg_drain_fork_parent();
    hg_modules_fork_parent();
    hg_guard_depth--;
}

void hg_fork_child(void) {
    hg_descriptors_fork_child();
    hg_debug_frame_fork_child();
    hg_modules_fork_child();
    hg_drain_fork_child();
    hg_guard_depth--;
}

/* The trace is finished by an exit handler, registered here, at the first allocation,
 * without a DSO handle (on_exit, not atexit: __cxa_finalize for the shim, which runs with its
 * destructors, would run it early). exit() runs its handlers last registered, first run,
 * and frees each list of 32 handlers once it has run them, all but glibc's static first
 * list. __libc_start_main registers the dynamic linker's _dl_fini (every library's
 * destructors) after the libraries' constructors ran. Registered this early (the first
 * library constructor that allocates, or the shim's own), the handler sits in the static
 * list and runs after all of that, where memcheck reports. From the shim's destructor, the
 * frees in the destructors of libraries finalised after the shim (gdb: 800 of them) were
 * missed; from its constructor, later than gdb's libraries' first 32 handlers, exit() freed
 * the lists holding them afterwards. on_exit also hands over the exit status, which END
 * records. */
static bool hg_finishes_after_destructors;
static void hg_finish_at_exit(int status, void *unused);
static void hg_finish_at_quick_exit(void);
extern int __cxa_at_quick_exit(void (*handler)(void), void *dso_handle);

/* Called by the hooks while hg_state is HG_OFF; the first caller starts recording. */
void hg_lifecycle_start(void) {
    static _Atomic int started;
    if (atomic_exchange(&started, 1)) return;
    hg_guard_depth++;
    int saved_errno = errno; /* the first allocation may be the program's: errno is its own */
    const char *disabled = hg_getenv("HEAPGATE_DISABLE");
    if (disabled && disabled[0] == '1') {
        atomic_store(&hg_state, HG_FINISHED); /* never asks again: the hooks only forward */
    } else {
        hg_stacks_init();
        hg_in_flight_init();
        hg_modules_init();
        hg_finishes_after_destructors = on_exit(hg_finish_at_exit, NULL) == 0;
        (void)__cxa_at_quick_exit(hg_finish_at_quick_exit, NULL);
        atomic_store(&hg_state, HG_RECORDING);
    }
    errno = saved_errno;
    hg_guard_depth--;
}

__attribute__((constructor)) static void hg_constructor(void) {
    hg_guard_depth++;
    /* Before recording starts: an allocator defined ahead of ours is replaced by glibc's. */
    const char *disabled = hg_getenv("HEAPGATE_DISABLE");
    if (!(disabled && disabled[0] == '1')) hg_foreign_take_over(hg_entry_points);
    if (hg_real_ready() && atomic_load(&hg_state) == HG_OFF) hg_lifecycle_start();
    if (atomic_load(&hg_state) == HG_RECORDING) {
        hg_atfork_register_first(); /* done already if a library registered its own before */
        hg_drain_start();
    }
    hg_guard_depth--;
}

/* Whether the frame's call (the address before its return address) lies inside exit or
 * quick_exit: dladdr reads the loaded dynamic symbol tables, and the symbol's size rules out the
 * nearest exported name below a hidden function. unw_get_proc_name read /proc/self/maps and each
 * frame's file, and looked for debug files, at every process's exit. */
static bool hg_frame_in_exit(unw_word_t ip) {
    Dl_info where;
    const ElfW(Sym) *symbol = NULL;
    if (ip == 0 || dladdr1((void *)(ip - 1), &where, (void **)&symbol, RTLD_DL_SYMENT) == 0 || !where.dli_sname ||
        !symbol || ip - 1 >= (uintptr_t)where.dli_saddr + symbol->st_size)
        return false;
    return strcmp(where.dli_sname, "exit") == 0 || strcmp(where.dli_sname, "quick_exit") == 0;
}

/* What exit()'s (or quick_exit's) caller holds (hg_exit_frame_t): its stack pointer, so the
 * leak scan starts there (the frames of exit and the exit handler lie below it, over the dead
 * frames of whatever main called last, whose stale slots would otherwise count as roots), and
 * its callee-saved registers as they were at the call, which libunwind recovers from where the
 * frames in between saved them. Falls back to `fallback_floor`, without registers. */
static hg_exit_frame_t hg_exit_caller_frame(uintptr_t fallback_floor) {
    static const int callee_saved[HG_EXIT_REGISTERS] = {UNW_X86_64_RBX, UNW_X86_64_RBP, UNW_X86_64_R12,
                                                        UNW_X86_64_R13, UNW_X86_64_R14, UNW_X86_64_R15};
    hg_exit_frame_t frame = {.stack_floor = fallback_floor};
    unw_context_t context;
    unw_cursor_t cursor;
    if (unw_getcontext(&context) != 0 || unw_init_local(&cursor, &context) != 0) return frame;
    for (int depth = 0; depth < 32; depth++) {
        unw_word_t ip, sp;
        if (unw_get_reg(&cursor, UNW_REG_IP, &ip) == 0 && hg_frame_in_exit(ip)) {
            if (unw_step(&cursor) <= 0 || unw_get_reg(&cursor, UNW_REG_SP, &sp) != 0) break;
            frame.stack_floor = (uintptr_t)sp;
            for (int i = 0; i < HG_EXIT_REGISTERS; i++) {
                unw_word_t value;
                if (unw_get_reg(&cursor, callee_saved[i], &value) == 0) frame.registers[frame.register_count++] = value;
            }
            break;
        }
        if (unw_step(&cursor) <= 0) break;
    }
    return frame;
}

/* Finishes the trace from an exit path that ran the program's handlers first. */
static void hg_finish_after_handlers(int status) {
    if (!hg_drain_in_owner()) return; /* see hg_exit_now */
    hg_guard_depth++;
    hg_exit_frame_t frame = hg_exit_caller_frame((uintptr_t)__builtin_frame_address(0));
    hg_drain_finish(status, &frame);
    hg_guard_depth--;
}

/* The destructor is the fallback, for when on_exit could not register hg_finish_at_exit. */
__attribute__((destructor)) static void hg_destructor(void) {
    if (!hg_finishes_after_destructors) hg_finish_after_handlers(-1);
}

/* The status as the parent sees it: exit(-1) is 255. */
static void hg_finish_at_exit(int status, void *unused) {
    (void)unused;
    hg_finish_after_handlers(status & 0xff);
}

/* quick_exit runs the at_quick_exit handlers (registered likewise: last of them to run) and
 * then glibc's internal _exit, past the interposed one: without this the trace was cut off,
 * with no allocation in it. The status is not handed over; heapgate run has it from wait. */
static void hg_finish_at_quick_exit(void) { hg_finish_after_handlers(-1); }

static __attribute__((noreturn)) void hg_exit_now(int status) {
    /* A vfork child (after a failed exec) runs on its parent's memory, this thread's guard
     * depth included: raising it here left the parent, once resumed, recording nothing. */
    if (hg_drain_in_owner()) {
        hg_guard_depth++;
        /* No registers: memcheck finds exit()'s caller's where exit's frames saved them, and
         * _exit saves none (a block held in a register of _exit's caller is lost for it too). */
        hg_exit_frame_t frame = {.stack_floor = (uintptr_t)__builtin_frame_address(0)};
        hg_drain_finish(status & 0xff, &frame);
    }
    if (hg_real.exit_now) hg_real.exit_now(status);
    syscall(SYS_exit_group, status);
    __builtin_unreachable();
}

/** Interposes _exit(2): exit() does not come through here, but a fork child's _exit does.
 *  Exported, like the malloc family (hg_hooks.c). */
HG_EXPORT void _exit(int status) { hg_exit_now(status); }
/** Interposes _Exit(3), the C99 spelling of _exit. */
HG_EXPORT void _Exit(int status) { hg_exit_now(status); }

_Atomic bool hg_main_thread_gone;

/** Interposes pthread_exit(3), for one case: the main thread leaving while other threads run
 *  on. glibc ends the process when its last thread ends, and the drain thread would be that
 *  last thread for ever; told that the main thread is gone, it ends the process itself when
 *  it is the only thread left (hg_drain.c). */
HG_EXPORT void pthread_exit(void *value) {
    if (!hg_drain_finished() && syscall(SYS_gettid) == getpid()) atomic_store(&hg_main_thread_gone, true);
    if (!hg_real.pthread_exit) hg_real_resolve_once();
    hg_real.pthread_exit(value);
}
