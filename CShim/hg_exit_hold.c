/*
 * Holding the program's other threads at their next malloc-family call while the process
 * exits and its blocks are classified.
 *
 * Why: the exit takes the drain thread's work over (the live set then stops changing: other
 * threads' events are no longer recorded) and the scan reads memory afterwards. Until then the
 * other threads of a program that exits while they work (a worker calling exit(), Rust's
 * std::process::exit) went on freeing and allocating unrecorded for the 1 to 8 ms the take-over
 * took here: a block freed meanwhile stayed in the live set with nothing pointing at it, and
 * came out definitely lost (4 to 11 blocks a run of a Rust program whose four threads push and
 * remove boxes while a fifth exits; memcheck, which runs one thread at a time, none). Held
 * before glibc frees or reallocates anything (free and realloc ask hg_recording first; an
 * allocation asks after glibc's, so only an unrecorded new block exists, which nothing knows),
 * their blocks stay as the live set has them.
 *
 * Never a deadlock: the hold lasts at most HG_HOLD_MAX_NS (100 ms) whatever happens (a held
 * thread may hold a lock the exit needs: dlclose frees with the loader's lock held, and the
 * scan calls dladdr, so such an exit waits out the 100 ms; with a 1 s limit it took 1.08 s
 * against 0.13 s), and is lifted as soon as the blocks are classified, or the copy that
 * classifies them is made (hg_mark_in_snapshot). The exiting thread, the
 * drain thread and the shim's own calls (guarded) are never held. A held thread waits in
 * futex(2), where the scan knows its stack pointer and reads its stack from there; every
 * callee-saved register is stored on the waiting frame first, since the block a free is about
 * to release may be in one of them.
 */
#include <errno.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "hg_internal.h"

enum { HG_HOLD_MAX_NS = 100000000 };

static _Atomic uint32_t hg_hold_word; /* 1 while threads are held */
static _Atomic long hg_hold_owner;    /* the exiting thread */
static uint64_t hg_hold_deadline_ns;

static uint64_t hg_hold_now_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

void hg_exit_hold_begin(void) {
    hg_hold_deadline_ns = hg_hold_now_ns() + HG_HOLD_MAX_NS;
    atomic_store(&hg_hold_owner, hg_system_call(SYS_gettid, 0, 0, 0, 0, 0, 0));
    atomic_store(&hg_hold_word, 1);
}

void hg_exit_hold_end(void) {
    if (!atomic_exchange(&hg_hold_word, 0)) return;
    hg_system_call(SYS_futex, (long)&hg_hold_word, FUTEX_WAKE_PRIVATE, 0x7fffffff, 0, 0, 0);
}

HG_NOINLINE void hg_exit_hold_wait(void) {
    __builtin_unwind_init(); /* every callee-saved register onto this frame (see the top) */
    if (!atomic_load(&hg_hold_word)) return;
    if (hg_system_call(SYS_gettid, 0, 0, 0, 0, 0, 0) == atomic_load(&hg_hold_owner)) return;
    /* A free or realloc held here said it was under way (hg_in_flight.c) and will not be made
     * before the blocks are classified: the exit must not take its block out of the live set
     * (hg_apply_frees_under_way). It did, and every thread held in a realloc lost its block
     * from the report (LeakClassificationTests.exitWhileOtherThreadsReallocate). Not covered: a
     * thread that finds the process finished and is preempted before this store, while the
     * exit reads the records. */
    hg_in_flight.how = HG_IN_FLIGHT_NONE;
    int saved_errno = errno;
    while (atomic_load(&hg_hold_word)) {
        uint64_t now = hg_hold_now_ns();
        if (now >= hg_hold_deadline_ns) break;
        uint64_t left = hg_hold_deadline_ns - now;
        struct timespec timeout = {.tv_sec = (time_t)(left / 1000000000ull), .tv_nsec = (long)(left % 1000000000ull)};
        hg_system_call(SYS_futex, (long)&hg_hold_word, FUTEX_WAIT_PRIVATE, 1, (long)&timeout, 0, 0);
    }
    errno = saved_errno;
}
