/*
 * The drain thread: the ring's only consumer. It turns events into trace records (stacks and
 * modules written the first time an event names them), keeps the set of blocks in use and the
 * heap counters (what a fork child inherits), and owns the trace file. It never records its own
 * allocations (its guard is held for its whole life) and blocks every signal, so the program's
 * signal handling is unchanged.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/syscall.h>

#include "hg_internal.h"
#include "hg_trace_format.h"

#define HG_BATCH 256
#define HG_PENDING_REALLOCS 64
#define HG_PREFETCH_AHEAD 16
#define HG_DRAIN_STACK_BYTES (512u << 10)

/* The drain takes events only once they are HG_DRAIN_LAG_BYTES of ring behind the newest
 * (or once it has left them there for HG_DRAIN_LAG_PATIENCE_US). Taken at once, an event's
 * line was still the producer's: the drain pulled it across, often before the producer had
 * written the line's second slot, which then pulled it back, and the drain's release store
 * of the slot's seq pulled it again. A mebibyte behind (one core's L2 on this machine), the
 * producer's core is done with the line and has evicted it, and the drain reads it from the
 * shared L3. The drain thread's pops fell to less than half their samples, the program's
 * pushes to two thirds (perf, Rust benchmark). Paired rounds against taking at once: Rust
 * 0.986 (61 rounds; CPU time 0.612 against 0.638 s), jq 0.971 (21), 2-frame churn 0.955
 * (31). The ring holds 4 MiB, so a burst still has three quarters of it. */
#define HG_DRAIN_LAG_BYTES (1u << 20)
#define HG_DRAIN_LAG_PATIENCE_US 2000
/* Naps of 500 us rather than 50 us while the events are too few: fewer wake-ups, each then
 * taking a longer run of events (Rust 0.985, CPU time 0.436 against 0.465 s, 31 rounds; the
 * 8-thread churn's added time 62.5 against 66.2 ms; Swift 0.989, jq 1.012). */
#define HG_DRAIN_LAG_NAP_US 500

static pthread_t hg_drain_thread;
/* Set by the drain thread once it has its arena (hg_drain_spawn waits for it). */
static _Atomic bool hg_drain_settled;
static _Atomic bool hg_drain_exists, hg_drain_stop, hg_pause_requested;
/* A fork's pause, by number: the forking thread asks for pause n (hg_pause_asked counts them)
 * and waits until the drain thread, between passes, says it holds pause n (hg_pause_held).
 * A flag that only said "paused" still said so for a moment after the pause before it had
 * ended: the next fork (glibc 2.35 and later run fork handlers without glibc's lock, so forks
 * of other threads follow at once) saw it set as the drain thread was leaving, and forked
 * while that thread made a pass. The child inherited the drain's state half-changed and marked
 * busy, and a child that ended before its trace started waited for ever to take it over (the
 * spawn probe: 4 threads forking children that exit at once, about 1 child in 1,500 hung). */
static _Atomic uint32_t hg_pause_asked, hg_pause_held;
/* Set when the drain thread runs no more passes (it left its loop, or it is ending the process
 * itself): it will never hold a fork's pause, and a fork waits for nothing more. An exit takes
 * the drain over while the thread is paused for a fork and the thread then leaves at once, so
 * the next fork of another thread, asking before the exit had ended (hg_drain_exists still
 * set), waited for ever; with the loader's lock held for that fork (hg_loader_lock.c), the
 * exit's leak scan waited for it too in dladdr, and the process hung (fixture forks_at_exit). */
static _Atomic bool hg_drain_left;
/* Who may touch the drain state (ring tail, live set, trace writer): the drain thread while
 * BUSY, nobody while IDLE (it naps), the exiting thread once TAKEN (hg_drain_take_over). */
enum { HG_DRAIN_IDLE, HG_DRAIN_BUSY, HG_DRAIN_TAKEN };
static _Atomic int hg_drain_phase;
/* The drain thread's id: at exit it is not waited for, and the scan must not take it for a
 * program thread running on a CPU, whose stack pointer it cannot read. */
static _Atomic pid_t hg_drain_tid;

pid_t hg_drain_thread_id(void) { return atomic_load(&hg_drain_tid); }

/* Set when the thread starts; cleared when it is joined (its stack is then glibc's to reuse),
 * not when the exit takes over and leaves it to end by itself. */
static const void *_Atomic hg_drain_stack_descriptor;

const void *hg_drain_descriptor(void) { return atomic_load(&hg_drain_stack_descriptor); }

/* A thread's id, known as soon as pthread_create returns, before the thread first runs (a
 * process may exit before its drain thread ever did): the kernel encodes it in the thread's
 * CPU-time clock id (~tid << 3, with the per-thread and scheduler-clock bits). Checked on the
 * calling thread first; 0 when the encoding is not the expected one. */
static pid_t hg_thread_id_of(pthread_t thread) {
    clockid_t mine, theirs;
    if (pthread_getcpuclockid(pthread_self(), &mine) != 0 || (pid_t)~(mine >> 3) != gettid()) return 0;
    if (pthread_getcpuclockid(thread, &theirs) != 0) return 0;
    return (pid_t)~(theirs >> 3);
}
static _Atomic int hg_finished;
static bool hg_is_fork_child;
/* The process this state belongs to. A vfork child shares its parent's memory, and with it
 * the ring, the drain thread's state and the trace's: it must not finish them when it calls
 * _exit after a failed exec (hg_lifecycle.c interposes _exit). Doing so ended the parent's
 * trace there, and everything the parent did afterwards was missing from its report. */
static pid_t hg_owner;

/* Owned by the drain thread (or by the single thread of a fork child before it starts one). */
static bool hg_writing = true;
static uint32_t hg_generation = 1;
/* Written for every event (see HG_OWN_LINES). */
static struct HG_OWN_LINES {
    uint32_t next_stack_id;
    uint64_t prev_address;
    uint64_t events, allocs, frees, bytes_allocated;
    /* Old blocks of reallocs still in flight, keyed by address (a refused realloc gives it back). */
    hg_block_t pending[HG_PENDING_REALLOCS];
    unsigned pending_next;
} hg_tally = {.next_stack_id = 1};

/* Puts an address as a delta against the previous one; the caller reserved the room. */
static inline void hg_put_address(uint64_t address) {
    hg_writer_put_sv((int64_t)(address - hg_tally.prev_address));
    hg_tally.prev_address = address;
}

/* Out of line: each stack is new to a trace once, and the drain's loop, which inlines
 * hg_write_stack, stays small. */
static HG_NOINLINE uint32_t hg_write_new_stack(hg_stack_t *stack) {
    stack->trace_generation = hg_generation;
    stack->trace_id = hg_tally.next_stack_id++;
    hg_writer_byte(HG_REC_STACK);
    hg_writer_uv(stack->trace_id);
    hg_writer_uv(stack->depth);
    hg_writer_uv(stack->ips[0]);
    for (uint32_t i = 1; i < stack->depth; i++) hg_writer_sv((int64_t)(stack->ips[i] - stack->ips[i - 1]));
    return stack->trace_id;
}

/* The STACK record of ref, if this trace does not have it yet; its id in the trace. */
HG_ALWAYS_INLINE uint32_t hg_write_stack(hg_stack_ref_t ref) {
    if (ref == 0) return 0;
    hg_stack_t *stack = hg_stacks_get(ref);
    if (stack->trace_generation == hg_generation) return stack->trace_id;
    return hg_write_new_stack(stack);
}

uint32_t hg_drain_write_stack(hg_stack_ref_t ref) { return hg_write_stack(ref); }

/* The fields every block record starts with: its STACK first if the trace lacks it, then the
 * tag, address delta, size and stack id (ALLOC, REALLOC, INHERITED_BLOCK, SNAPSHOT_BLOCK). */
HG_ALWAYS_INLINE void hg_write_block_record(uint8_t tag, uint64_t ptr, uint64_t size, hg_stack_ref_t ref) {
    uint32_t stack = hg_write_stack(ref);
    hg_writer_reserve(1 + 3 * HG_MAX_VARINT);
    hg_writer_put_byte(tag);
    hg_put_address(ptr);
    hg_writer_put_uv(size);
    hg_writer_put_uv(stack);
}

/* FREE and REALLOC_FREE: the tag and the address. */
HG_ALWAYS_INLINE void hg_write_free_record(uint8_t tag, uint64_t ptr) {
    hg_writer_reserve(1 + HG_MAX_VARINT);
    hg_writer_put_byte(tag);
    hg_put_address(ptr);
}

static void hg_write_module_load(uint32_t index) {
    const hg_module_t *module = hg_modules_get(index);
    hg_writer_byte(HG_REC_MODULE_LOAD);
    hg_writer_uv(index);
    hg_writer_uv(module->base);
    hg_writer_string(module->path, strlen(module->path));
    hg_writer_string(module->build_id, module->build_id_len);
    hg_writer_uv(module->segment_count);
    for (uint32_t i = 0; i < module->segment_count; i++) {
        hg_writer_uv(module->seg_vaddr[i]);
        hg_writer_uv(module->seg_memsz[i]);
    }
}

/* Into a free entry if one of the next few is: a realloc's thread preempted between its halves
 * while other threads reallocate had its old block overwritten, and an exit that came before
 * its REALLOC (hg_apply_frees_under_way) no longer found the block. */
static void hg_pending_put(const hg_block_t *block) {
    unsigned at = hg_tally.pending_next;
    for (unsigned i = 0; i < 8 && hg_tally.pending[at % HG_PENDING_REALLOCS].ptr != 0; i++) at++;
    hg_tally.pending[at % HG_PENDING_REALLOCS] = *block;
    hg_tally.pending_next = at + 1;
}

static bool hg_pending_take(uint64_t ptr, hg_block_t *out) {
    for (unsigned i = 0; i < HG_PENDING_REALLOCS; i++) {
        if (hg_tally.pending[i].ptr == ptr && ptr != 0) {
            if (out) *out = hg_tally.pending[i];
            hg_tally.pending[i].ptr = 0;
            return true;
        }
    }
    return false;
}

/* Inlined, with the two record writers, into the drain's loop: calls and their saved
 * registers were a tenth of the drain's instructions (callgrind, drain thread: Rust benchmark
 * 178 -> 162 M, jq 62 -> 57 M, a churn holding 8 Ki blocks 99 -> 90 M). */
HG_ALWAYS_INLINE void hg_apply(const hg_event_t *event, size_t home) {
    hg_tally.events++;
    switch ((hg_event_kind_t)event->kind) {
    case HG_EV_ALLOC: {
        if (hg_writing) hg_write_block_record(HG_REC_ALLOC, event->ptr, event->size, event->stack);
        hg_tally.allocs++;
        hg_tally.bytes_allocated += event->size;
        hg_liveset_insert(event->ptr, event->size, event->stack, home);
        break;
    }
    case HG_EV_FREE:
        if (hg_writing) hg_write_free_record(HG_REC_FREE, event->ptr);
        hg_tally.frees++;
        hg_liveset_remove(event->ptr, NULL, home);
        break;
    case HG_EV_REALLOC_FREE: {
        if (hg_writing) hg_write_free_record(HG_REC_REALLOC_FREE, event->ptr);
        hg_tally.frees++;
        hg_block_t old;
        if (hg_liveset_remove(event->ptr, &old, home)) hg_pending_put(&old);
        break;
    }
    case HG_EV_REALLOC: {
        if (hg_writing) {
            bool refused = event->ptr == 0; /* then size and stack are 0 */
            hg_write_block_record(HG_REC_REALLOC, event->ptr, refused ? 0 : event->size, refused ? 0 : event->stack);
            hg_writer_sv((int64_t)(event->old_ptr - event->ptr));
        }
        hg_block_t old;
        bool had_old = hg_pending_take(event->old_ptr, &old);
        if (event->ptr != 0) {
            hg_tally.allocs++;
            hg_tally.bytes_allocated += event->size;
            hg_liveset_insert(event->ptr, event->size, event->stack, home);
        } else {
            hg_tally.frees--; /* glibc refused: the old block was never freed */
            if (had_old) hg_liveset_insert(old.ptr, old.size, old.stack, HG_LIVESET_NO_HOME);
        }
        break;
    }
    case HG_EV_MODULE_LOAD:
        if (hg_writing) hg_write_module_load(event->stack);
        break;
    case HG_EV_MODULE_UNLOAD:
        if (hg_writing) {
            hg_writer_byte(HG_REC_MODULE_UNLOAD);
            hg_writer_uv(event->stack);
        }
        break;
    default: /* a lost position: nothing to apply */
        hg_tally.events--;
        break;
    }
}

/* One event outside a batch (a fork child's leftovers): no home computed ahead. */
static void hg_apply_alone(const hg_event_t *event) { hg_apply(event, HG_LIVESET_NO_HOME); }

/* A block held back from the ring (hg_holdback.c), applied as its ALLOC would have been. */
static void hg_apply_held(uintptr_t ptr, uint64_t size, hg_stack_ref_t stack) {
    hg_event_t event = {.kind = HG_EV_ALLOC, .stack = stack, .ptr = ptr, .size = size};
    hg_apply(&event, HG_LIVESET_NO_HOME);
    hg_tally.events--; /* not an event of the ring */
}

static void hg_tally_elided(uint64_t pairs, uint64_t bytes) {
    if (pairs == 0) return;
    hg_tally.allocs += pairs;
    hg_tally.frees += pairs;
    hg_tally.bytes_allocated += bytes;
    if (!hg_writing) return;
    hg_writer_byte(HG_REC_ELIDED);
    hg_writer_uv(pairs);
    hg_writer_uv(bytes);
}

/* What the fork cut short on the parent's other threads (hg_in_flight.c): frees glibc had not
 * made, whose blocks the fork child still has, and allocations on their way to the ring. As
 * many as the registry has records: with 64, as before, a child forked while 150 threads
 * allocated and freed lost the blocks of all but 64 of them (about 80 of ~145 it held;
 * fixture fork_mid_hold with 150 workers). */
#define HG_CUT_MAX HG_IN_FLIGHT_THREADS
static hg_in_flight_t hg_cut[HG_CUT_MAX];
static hg_event_t hg_cut_free_event[HG_CUT_MAX];
static bool hg_cut_free_waiting[HG_CUT_MAX], hg_cut_push_seen[HG_CUT_MAX];
static size_t hg_cut_count;

/* The addresses the cuts are about, hashed into bits: the replay looks through the cuts only
 * for an event about one of them, not for each of the ring's events (up to 131,072) times
 * each cut. */
#define HG_CUT_FILTER_BITS 16384
static uint64_t hg_cut_filter[HG_CUT_FILTER_BITS / 64];

static unsigned hg_cut_filter_bit(uint64_t ptr) {
    return (unsigned)((ptr * 0x9e3779b97f4a7c15ull) >> 50) % HG_CUT_FILTER_BITS;
}

static void hg_cut_filter_add(uint64_t ptr) {
    unsigned bit = hg_cut_filter_bit(ptr);
    hg_cut_filter[bit / 64] |= 1ull << (bit % 64);
}

static bool hg_cut_filter_may_hold(uint64_t ptr) {
    unsigned bit = hg_cut_filter_bit(ptr);
    return (hg_cut_filter[bit / 64] >> (bit % 64)) & 1;
}

static void hg_cut_filter_fill(void) {
    memset(hg_cut_filter, 0, sizeof hg_cut_filter);
    for (size_t i = 0; i < hg_cut_count; i++) {
        if (hg_cut[i].pushing.kind != 0) hg_cut_filter_add(hg_cut[i].pushing.ptr);
        if (hg_cut[i].how == HG_IN_FLIGHT_PUSHED) hg_cut_filter_add(hg_cut[i].freeing);
    }
}

static bool hg_is_about_a_block(const hg_event_t *event) {
    return event->kind == HG_EV_ALLOC || event->kind == HG_EV_FREE || event->kind == HG_EV_REALLOC_FREE ||
           event->kind == HG_EV_REALLOC;
}

/* The fork child's replay of what the parent's threads left in the ring. The FREE of a block
 * whose free was cut waits, and is applied only if another event about its address follows
 * (then it was an earlier life's); one still waiting at the end is dropped. */
static void hg_apply_in_child(const hg_event_t *event) {
    bool may_be_cut = hg_is_about_a_block(event) &&
                      (hg_cut_filter_may_hold(event->ptr) || hg_cut_filter_may_hold(event->old_ptr));
    for (size_t i = 0; may_be_cut && i < hg_cut_count; i++) {
        const hg_in_flight_t *cut = &hg_cut[i];
        /* Pushed if it is the last event about its block: an earlier life's may look the same. */
        if (cut->pushing.kind != 0 && (event->ptr == cut->pushing.ptr || event->old_ptr == cut->pushing.ptr))
            hg_cut_push_seen[i] = event->kind == cut->pushing.kind && event->ptr == cut->pushing.ptr &&
                                  event->old_ptr == cut->pushing.old_ptr;
        if (cut->how != HG_IN_FLIGHT_PUSHED) continue;
        if (event->ptr != cut->freeing && !(event->kind == HG_EV_REALLOC && event->old_ptr == cut->freeing)) continue;
        if (hg_cut_free_waiting[i]) hg_apply_alone(&hg_cut_free_event[i]);
        hg_cut_free_waiting[i] = false;
        if ((event->kind == HG_EV_FREE || event->kind == HG_EV_REALLOC_FREE) && event->ptr == cut->freeing) {
            hg_cut_free_event[i] = *event;
            hg_cut_free_waiting[i] = true;
            return;
        }
    }
    hg_apply_alone(event);
}

static bool hg_liveset_has(uint64_t ptr) {
    hg_block_t block;
    if (!hg_liveset_remove(ptr, &block, HG_LIVESET_NO_HOME)) return false;
    hg_liveset_insert(block.ptr, block.size, block.stack, HG_LIVESET_NO_HOME);
    return true;
}

/* After the replay: allocations cut short before they reached the ring or the table, then the
 * frees cut short that the parent's drain had applied already. */
static void hg_undo_cuts(void) {
    for (size_t i = 0; i < hg_cut_count; i++) {
        const hg_event_t *pushing = &hg_cut[i].pushing;
        if (pushing->kind != 0 && !hg_cut_push_seen[i] && !hg_liveset_has(pushing->ptr) &&
            !hg_holdback_holds(pushing->ptr))
            hg_apply_alone(pushing);
    }
    bool counted = false;
    for (size_t i = 0; i < hg_cut_count; i++) {
        const hg_in_flight_t *cut = &hg_cut[i];
        if (hg_cut_free_waiting[i]) { /* its FREE was never applied */
        } else if (cut->how == HG_IN_FLIGHT_PUSHED) {
            hg_block_t old; /* a realloc's old half is kept for its other half; a free's block is gone */
            if (hg_pending_take(cut->freeing, &old)) {
                hg_liveset_insert(old.ptr, old.size, old.stack, HG_LIVESET_NO_HOME);
                hg_tally.frees--;
            }
        } else if (cut->how == HG_IN_FLIGHT_CANCELLED) { /* a held block, its pair counted */
            if (!counted) { /* into the tally, so that its free can be taken back there */
                uint64_t pairs = 0, bytes = 0;
                hg_holdback_count_all(&pairs, &bytes);
                hg_tally_elided(pairs, bytes);
                counted = true;
            }
            hg_tally.frees--;
            hg_liveset_insert(cut->freeing, cut->size, cut->stack, HG_LIVESET_NO_HOME);
        }
        hg_cut_free_waiting[i] = hg_cut_push_seen[i] = false;
    }
    hg_cut_count = 0;
}

/* The drain's visit to the blocks held back, every HG_HOLDBACK_VISIT_MS. */
#define HG_HOLDBACK_VISIT_MS 50
static uint64_t hg_holdback_visited_ms;

static void hg_tend_holdback_when_due(void) {
    uint64_t now = hg_coarse_ms();
    if (now - hg_holdback_visited_ms < HG_HOLDBACK_VISIT_MS) return;
    hg_holdback_visited_ms = now;
    uint64_t pairs = 0, bytes = 0;
    hg_holdback_tend(hg_apply_held, &pairs, &bytes);
    hg_tally_elided(pairs, bytes);
}

static void hg_write_command(void) {
    static char cmdline[65536];
    size_t length = 0;
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n;
        while (length < sizeof cmdline && (n = read(fd, cmdline + length, sizeof cmdline - length)) > 0) length += (size_t)n;
        close(fd);
    }
    uint64_t argc = 0;
    for (size_t i = 0; i < length; i++) argc += cmdline[i] == '\0';
    hg_writer_byte(HG_REC_COMMAND);
    hg_writer_uv(argc);
    for (size_t start = 0, i = 0; i < length; i++) {
        if (cmdline[i] != '\0') continue;
        hg_writer_string(cmdline + start, i - start);
        start = i + 1;
    }
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe);
    hg_writer_string(exe, n > 0 ? (size_t)n : 0);
}

/* The libraries found calling glibc's allocator past the shim (hg_bypass.c). */
static void hg_write_bypasses(void) {
    hg_modules_check_bypass(); /* a last look: slots bound since the last new stack */
    for (uint32_t i = 0; i < hg_modules_count(); i++) {
        int state = hg_bypass_state(i);
        if (state == HG_BYPASS_NONE) continue;
        const char *path = hg_modules_get(i)->path ? hg_modules_get(i)->path : "";
        hg_writer_byte(HG_REC_BYPASS);
        hg_writer_uv((uint64_t)state);
        hg_writer_string(path, strlen(path));
    }
}

/* Right after COMMAND, so that a trace cut off early still says why it holds no blocks. */
static void hg_write_allocator(void) {
    if (hg_foreign.outcome == HG_FOREIGN_NONE) return;
    hg_writer_byte(HG_REC_ALLOCATOR);
    hg_writer_uv((uint64_t)hg_foreign.outcome);
    hg_writer_string(hg_foreign.object, strlen(hg_foreign.object));
    hg_writer_string(hg_foreign.reason, strlen(hg_foreign.reason));
}

static void hg_write_inherited_block(const hg_block_t *block) {
    hg_write_block_record(HG_REC_INHERITED_BLOCK, block->ptr, block->size, block->stack);
}

/* HEAPGATE_LEAK_CHECK=no skips the exit-time scan (valgrind's --leak-check=no). Read when the
 * trace starts (hg_write_preamble): at exit the program may have cleared its environment
 * (clearenv, or environ replaced), and the setting would be lost. */
static bool hg_leak_check_wanted = true;

static void hg_read_leak_check_setting(void) {
    const char *value = hg_getenv("HEAPGATE_LEAK_CHECK");
    hg_leak_check_wanted = !(value && strcmp(value, "no") == 0);
}

/* In a fork child, the modules the parent had recorded when the child's trace started: those
 * it had unloaded by then are not in the child's trace, nor restated by its exit snapshot. */
static uint32_t hg_modules_before_child_trace;

/* Header, command, allocator and, in a fork child, the modules loaded now and what it inherited (a
 * first image's modules follow as MODULE_LOAD events of its first scan, through the ring). */
static void hg_write_preamble(void) {
    hg_read_leak_check_setting();
    const char *dir = hg_getenv("HEAPGATE_OUT");
    hg_writer_open(dir, hg_is_fork_child ? HG_TRACE_FLAG_FORKED : 0);
    hg_write_command();
    hg_write_allocator();
    if (!hg_is_fork_child) return; /* the first rescan's MODULE_LOAD events are in the ring */
    hg_modules_before_child_trace = hg_modules_count();
    for (uint32_t i = 0; i < hg_modules_before_child_trace; i++) {
        if (!hg_modules_get(i)->loaded) continue;
        hg_write_module_load(i);
        hg_modules_note_in_child_trace(i);
    }
    hg_writer_byte(HG_REC_INHERITED);
    hg_writer_uv(hg_tally.allocs);
    hg_writer_uv(hg_tally.frees);
    hg_writer_uv(hg_tally.bytes_allocated);
    /* Their stacks first, in the order they were first captured (hg_stack_order.c). */
    hg_stack_order_begin_by_reference();
    hg_stack_order_note_liveset();
    hg_stack_order_write();
    hg_liveset_for_each(hg_write_inherited_block);
}

void hg_drain_write_block(uint64_t ptr, uint64_t size, hg_stack_ref_t stack_ref, unsigned kind, uint64_t leader) {
    hg_write_block_record(HG_REC_SNAPSHOT_BLOCK, ptr, size, stack_ref);
    hg_writer_uv(kind);
    if (kind == 1 + HG_KIND_INDIRECT) hg_writer_sv((int64_t)(leader - ptr));
}

static void hg_write_unclassified_block(const hg_block_t *block) {
    hg_drain_write_block(block->ptr, block->size, block->stack, 0, 0);
}

/* Whether the trace so far has recorded the module: every one a first image loaded; in a fork
 * child, those loaded at the start of its trace and since. A child of a parent that had loaded
 * and unloaded 100,000 libraries restated all of them at its exit, 8.7 MB for each child. */
static bool hg_module_in_this_trace(uint32_t index) {
    return !hg_is_fork_child || index >= hg_modules_before_child_trace || hg_modules_get(index)->in_child_trace;
}

/* The heap at exit, restated so that a reader can skip the event stream (see
 * HG_REC_SNAPSHOT): counters and every module the trace recorded; the blocks follow. */
static void hg_write_snapshot_header(void) {
    hg_writer_byte(HG_REC_SNAPSHOT);
    hg_writer_uv(hg_tally.allocs);
    hg_writer_uv(hg_tally.frees);
    hg_writer_uv(hg_tally.bytes_allocated);
    hg_writer_uv(hg_liveset_count());
    hg_tally.prev_address = 0;
    /* Every stack the snapshot names is written again, under a fresh id, in the order of its
     * id in the event stream (hg_stack_order.c): the blocks' stacks are noted first. */
    hg_stack_order_begin_by_stream_id(hg_generation, hg_tally.next_stack_id - 1);
    hg_generation++;
    hg_tally.next_stack_id = 1;
    for (uint32_t i = 0; i < hg_modules_count(); i++)
        if (hg_module_in_this_trace(i)) hg_write_module_load(i);
}

/* Set when the drain should not sleep any more (nor leave events in the ring): the program
 * is exiting, or the drain is being stopped. */
static _Atomic bool hg_hurry;
/* The futex word of the drain's naps: bumped to cut a nap short. */
static _Atomic uint32_t hg_nap_word;

/* A nap that hg_cut_nap() cuts short: at exit the finishing thread, and at fork the forking
 * one, would otherwise wait out a nap of up to 2 ms before the drain thread noticed them (a
 * fork waited 0.37 ms on average in a shell loop of 200 commands). The word is read before the
 * flags: a cut that comes after the read changes the word, so the wait returns at once, and
 * one that came before it had set its flag first. */
static bool hg_drain_hurried(void) { return atomic_load(&hg_hurry) || atomic_load(&hg_drain_stop); }

static void hg_nap_us(long microseconds) {
    uint32_t seen = atomic_load(&hg_nap_word);
    if (hg_drain_hurried() || atomic_load(&hg_pause_requested)) return;
    struct timespec delay = {0, microseconds * 1000};
    syscall(SYS_futex, &hg_nap_word, FUTEX_WAIT_PRIVATE, seen, &delay, NULL, 0);
}

static void hg_cut_nap(void) {
    atomic_fetch_add(&hg_nap_word, 1u);
    syscall(SYS_futex, &hg_nap_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void hg_drain_wake(void) {
    atomic_store(&hg_hurry, true);
    hg_cut_nap();
}

/* Set while the drain naps long, the program having been quiet for a second: a producer that
 * finds a ring full then cuts the nap (hg_drain_wake_for_room), rather than wait it out. */
static _Atomic bool hg_napping_long;

void hg_drain_wake_for_room(void) {
    if (atomic_load(&hg_napping_long)) hg_cut_nap();
}

/* A program that allocates every millisecond or so never leaves the drain idle for 2 ms,
 * and its events filled the 1 MiB buffer only after minutes: killed meanwhile, it left a
 * trace without them. So the drain also hands over what it has every 20 ms when it runs
 * out of events (a coarse clock read per nap; a busy drain fills the buffer first). */
uint64_t hg_coarse_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

static bool hg_flush_due(void) {
    static uint64_t last_flush_ms;
    uint64_t now_ms = hg_coarse_ms();
    if (now_ms - last_flush_ms < 20) return false;
    last_flush_ms = now_ms;
    return true;
}

static void hg_sleep_us(long microseconds) {
    struct timespec delay = {0, microseconds * 1000};
    nanosleep(&delay, NULL);
}

/* Waits until `arrived` says the drain thread got there, for at most about `limit_us` (-1: for
 * ever). Woken, the thread gets there within microseconds: yield first, since a sleep takes
 * 20 us at least (plus the kernel's timer slack), and sleep only if it is slow to come. */
static void hg_wait_for_drain(bool (*arrived)(void), long limit_us) {
    for (long turns = 0, slept_us = 0; !arrived() && (limit_us < 0 || slept_us < limit_us); turns++) {
        if (turns < 200) {
            sched_yield();
        } else {
            hg_sleep_us(20);
            slept_us += 20;
        }
    }
}

/* Whether the drain thread is the only thread left, besides the main thread, which stays
 * counted after it left (a thread group keeps its leader until the process ends). */
static bool hg_only_the_drain_left(void) {
    unsigned threads = hg_thread_count();
    return threads != 0 && threads <= 2;
}

/* What glibc's last thread does when it ends: exit(0), running the program's atexit
 * handlers and destructors, the shim's among them. Here, on the drain thread, which the
 * program's last thread, ending, left running: without this the process never ended. */
static __attribute__((noreturn)) void hg_exit_as_the_last_thread(void) {
    atomic_store(&hg_drain_left, true); /* an atexit handler that forks waits for no pause */
    hg_guard_depth = 0; /* what the program's atexit handlers allocate is the program's */
    hg_ring_set_consumer_running(false); /* nobody empties the ring meanwhile: never wait on it */
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, NULL);
    exit(0);
}

/* Pops up to HG_BATCH events into `batch` and applies them; returns how many. */
static size_t hg_drain_pass(hg_event_t batch[HG_BATCH]) {
    size_t count = hg_ring_pop(batch, HG_BATCH);
    /* Every event probes the live set at its block's address (a realloc's old block was
     * taken out by its REALLOC_FREE): its home slot is computed and loaded a few events
     * ahead, so that the cache misses of a large table overlap instead of adding up, and
     * handed to the insert or remove, which then need not hash the address again. The
     * table makes room for the whole batch first (an event inserts one block at most), so
     * that no insert in it moves the homes. */
    if (!hg_liveset_reserve(count)) {
        for (size_t i = 0; i < count; i++) hg_apply(&batch[i], HG_LIVESET_NO_HOME);
        return count;
    }
    size_t homes[HG_PREFETCH_AHEAD];
    for (size_t i = 0; i < count && i < HG_PREFETCH_AHEAD; i++) homes[i] = hg_liveset_home(batch[i].ptr);
    for (size_t i = 0; i < count; i++) {
        size_t home = homes[i % HG_PREFETCH_AHEAD];
        if (i + HG_PREFETCH_AHEAD < count) homes[i % HG_PREFETCH_AHEAD] = hg_liveset_home(batch[i + HG_PREFETCH_AHEAD].ptr);
        hg_apply(&batch[i], home);
    }
    return count;
}

static void *hg_drain_main(void *unused) {
    (void)unused;
    hg_guard_depth = 1; /* everything this thread allocates is the shim's own */
    atomic_store(&hg_drain_tid, gettid()); /* the same, if hg_thread_id_of could not say */
    /* pthread_getattr_np allocates: here, in this thread, glibc gives it an arena of its own
     * (64 MiB of address space, reserved and never touched), which keeps the shim's few bytes
     * out of the program's heap. Asked on the starting thread instead, they moved the blocks
     * the program allocated next, and a cycle's leader in memcheck's address order with them. */
    pthread_attr_t attributes;
    if (pthread_getattr_np(pthread_self(), &attributes) == 0) {
        void *stack;
        size_t size;
        /* Its stack holds copies of events: block addresses that must not count as roots. */
        if (pthread_attr_getstack(&attributes, &stack, &size) == 0) {
            hg_leakscan_exclude(stack, size);
            hg_leakscan_note_thread_descriptor((char *)stack + size, (void *)pthread_self());
        }
        pthread_attr_destroy(&attributes);
    }
    atomic_store(&hg_drain_settled, true);
    hg_event_t batch[HG_BATCH];
    long idle_us = 0, next_census = 2000, lagged_us = 0;
    for (;;) {
        /* The number is read after the request was seen, and its asker made the request
         * before numbering it: the request this thread then waits on is that pause's (or a
         * later one's), so the pause it says it holds is one it is in. */
        if (atomic_load(&hg_pause_requested)) {
            do {
                atomic_store(&hg_pause_held, atomic_load(&hg_pause_asked));
                hg_sleep_us(50);
            } while (atomic_load(&hg_pause_requested));
        }
        /* Events in the ring, but too few to be a mebibyte behind (HG_DRAIN_LAG_BYTES, plus a
         * batch of the larger slots, so that a pass leaves the mebibyte): leave them there a
         * while. An empty ring takes the idle path below. */
        uint64_t backlog = hg_ring_backlog_bytes();
        if (backlog == 0 || backlog >= HG_DRAIN_LAG_BYTES + HG_BATCH * 64) {
            lagged_us = 0;
        } else if (lagged_us < HG_DRAIN_LAG_PATIENCE_US && !hg_drain_hurried()) {
            hg_nap_us(HG_DRAIN_LAG_NAP_US);
            lagged_us += HG_DRAIN_LAG_NAP_US;
            continue;
        }
        int idle = HG_DRAIN_IDLE;
        if (!atomic_compare_exchange_strong(&hg_drain_phase, &idle, HG_DRAIN_BUSY)) break; /* taken over */
        size_t count = hg_drain_pass(batch);
        hg_tend_holdback_when_due();
        /* Idle: hand what we have to the kernel, so a process killed now loses little. */
        if (count == 0 && (idle_us >= 2000 || hg_flush_due())) hg_writer_flush();
        atomic_store(&hg_drain_phase, HG_DRAIN_IDLE);
        if (count > 0) {
            idle_us = 0;
            next_census = 2000;
            continue;
        }
        if (atomic_load(&hg_drain_stop)) break;
        /* Once the main thread left by pthread_exit, look for being the last thread after 2 ms
         * of quiet, then every 10 ms (a program that goes on running, a server, pays one
         * stat() per 10 ms of quiet; all others never look). */
        if (atomic_load(&hg_main_thread_gone) && idle_us >= next_census) {
            next_census = idle_us + 10000;
            if (hg_only_the_drain_left()) hg_exit_as_the_last_thread();
        }
        /* Sleep longer the longer the program stays quiet (an idle server should not wake us
         * 2,000 times a second). After a second of quiet, naps of 50 ms: at 2 ms an idle
         * process's drain took 4 ms of CPU a second (500 wake-ups), 50 such processes a fifth of
         * a core. A burst that fills the ring meanwhile cuts the nap (hg_drain_wake_for_room);
         * a main thread gone keeps its census every 10 ms. */
        long step = idle_us < 100 ? 20 : idle_us < 20000 ? 500 : idle_us < 1000000 ? 2000 : 50000;
        if (step > 10000 && atomic_load(&hg_main_thread_gone)) step = 10000;
        atomic_store(&hg_napping_long, step > 2000);
        hg_nap_us(step);
        atomic_store(&hg_napping_long, false);
        idle_us += step;
    }
    atomic_store(&hg_drain_left, true);
    return NULL;
}

static void hg_drain_spawn(void);

static bool hg_drain_has_settled(void) { return atomic_load(&hg_drain_settled); }

void hg_drain_start(void) {
    hg_owner = getpid();
    /* The file is opened and its preamble written here, on the calling thread, before the
     * drain thread exists: moving the descriptor above 1000 grows the descriptor table, which
     * waits for an RCU grace period (~10 ms) once the process has a second thread, and a
     * process that exits or execs sooner would leave an empty file. */
    hg_write_preamble();
    hg_writer_flush(); /* even a process killed at once leaves a readable trace */
    /* A fork child shares these pages with its parent until it writes them; most only exec. */
    if (!hg_is_fork_child) hg_ring_populate_start();
    hg_drain_spawn();
}

/* Starts the drain thread; if it cannot be, recording stops (nothing would empty the ring). */
static void hg_drain_spawn(void) {
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous); /* the new thread inherits "all blocked" */
    atomic_store(&hg_drain_stop, false);
    atomic_store(&hg_drain_left, false);
    atomic_store(&hg_drain_settled, false);
    atomic_store(&hg_drain_phase, HG_DRAIN_IDLE);
    atomic_store(&hg_hurry, false);
    hg_ring_set_consumer_running(true);
    /* A small stack: the thread's deepest path is a write or an mmap, and glibc's default
     * (the stack rlimit, 8 MiB) would come out of the program's address-space limit. */
    pthread_attr_t small_stack;
    bool have_attributes = pthread_attr_init(&small_stack) == 0 &&
                           pthread_attr_setstacksize(&small_stack, HG_DRAIN_STACK_BYTES) == 0;
    bool started = have_attributes && pthread_create(&hg_drain_thread, &small_stack, hg_drain_main, NULL) == 0;
    if (have_attributes) pthread_attr_destroy(&small_stack);
    /* glibc puts the static TLS of every module inside the stack: a program with more of it
     * than fits refuses a small one. */
    if (!started) started = pthread_create(&hg_drain_thread, NULL, hg_drain_main, NULL) == 0;
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    if (!started) {
        hg_ring_set_consumer_running(false);
        atomic_store(&hg_state, HG_FINISHED);
        atomic_store(&hg_finished, 1); /* nothing to finish at exit: the hooks make no system call */
        return;
    }
    atomic_store(&hg_drain_tid, hg_thread_id_of(hg_drain_thread));
    atomic_store(&hg_drain_stack_descriptor, (const void *)hg_drain_thread);
    atomic_store(&hg_drain_exists, true);
    /* The drain thread's first allocation makes glibc reserve it an arena, and that reservation
     * briefly takes 128 MiB of address space (twice the arena, to align it). Made at a random
     * moment, it could take the room a program under `ulimit -v` was about to map (huge_block,
     * 8 GiB under a limit 128 MiB above, failed so in one run of the test suite; 40 runs
     * alone did not fail): so it is made now,
     * before the program goes on (at most 100 ms; it takes the new thread's first
     * microseconds). */
    hg_wait_for_drain(hg_drain_has_settled, 100000);
}

/* Waits (briefly) until every event claimed so far is applied, then ends the drain thread.
 * Never called on the drain thread itself (see hg_drain_take_over). */
static void hg_drain_stop_thread(void) {
    uint64_t claimed = hg_ring_claimed();
    hg_drain_wake();
    for (int i = 0; i < 20000 && hg_ring_consumed() < claimed; i++) hg_sleep_us(50);
    atomic_store(&hg_drain_stop, true);
    hg_drain_wake();
    pthread_join(hg_drain_thread, NULL);
    atomic_store(&hg_drain_stack_descriptor, NULL);
    atomic_store(&hg_drain_exists, false);
    hg_ring_set_consumer_running(false);
}

/* A fork child's trace starts late. Most children exec within a millisecond, and the trace
 * of an image that exec replaced is never reported (TraceSet, as under memcheck), yet starting
 * one cost each fork child 0.2-0.3 ms (a file created, the drain thread started) and, under a
 * parent with a large heap, that whole heap written out again: 1.9 MB and about 10 ms for
 * each child of a perl holding 300,000 blocks. So the child's events wait in the ring, with no
 * consumer running, until the child has lived HG_DEFERRED_START_MS or filled HG_DRAIN_LAG_BYTES
 * of ring (the push that finds it starts the trace), or ends (hg_drain_finish starts it then),
 * or installs a sandbox that stops tracing. A child killed before then (say, one that set
 * itself up in its first 10 ms and then only waited) leaves no trace. */
#define HG_DEFERRED_START_MS 10
static _Atomic bool hg_start_deferred;
static uint64_t hg_deferred_since_ms;

/* Starts a deferred trace: on a program's thread, inside one of its calls, so with the
 * guard raised (the drain's start allocates) and errno kept. At the child's end, without a
 * drain thread: the ending thread applies the ring itself (hg_drain_take_over), and a thread
 * started only to be taken over cost each child that ended ~0.1 ms (200 children that
 * `_exit` at once, 0.17 s against 0.023 s untraced, before). */
static void hg_start_deferred_now(bool with_drain_thread) {
    if (!atomic_exchange(&hg_start_deferred, false)) return;
    hg_guard_depth++;
    int saved_errno = errno;
    if (with_drain_thread) {
        hg_drain_start();
    } else {
        hg_write_preamble();
        atomic_store(&hg_drain_exists, true); /* no thread: phase IDLE, for the taking over */
    }
    errno = saved_errno;
    hg_guard_depth--;
}

void hg_drain_start_if_due(void) {
    if (HG_LIKELY(!atomic_load_explicit(&hg_start_deferred, memory_order_relaxed))) return;
    if (hg_ring_backlog_bytes() < HG_DRAIN_LAG_BYTES && hg_coarse_ms() - hg_deferred_since_ms < HG_DEFERRED_START_MS)
        return;
    hg_start_deferred_now(true);
}

/* Both on a program's thread, inside one of its calls: the guard raised (pthread_join and
 * pthread_create allocate: the shim's own) and errno kept (the call between them leaves
 * errno alone when it succeeds). */
bool hg_drain_suspend(void) {
    if (!hg_drain_in_owner() || !atomic_load(&hg_drain_exists)) return false;
    hg_guard_depth++;
    int saved_errno = errno;
    unsigned before = hg_thread_count();
    hg_drain_stop_thread();
    /* pthread_join returns when the thread's exit has cleared its tid, a moment before the
     * kernel takes it out of the thread group, and until then a call that needs one thread
     * still fails (1 unshare in 6 did): wait, up to 100 ms, until it is gone. */
    for (int i = 0; i < 2000 && before != 0 && hg_thread_count() >= before; i++) hg_sleep_us(50);
    errno = saved_errno;
    hg_guard_depth--;
    return true;
}

void hg_drain_resume(void) {
    if (atomic_load(&hg_finished)) return;
    hg_guard_depth++;
    int saved_errno = errno;
    hg_drain_spawn();
    errno = saved_errno;
    hg_guard_depth--;
}

bool hg_drain_finished(void) { return atomic_load(&hg_finished) != 0 || hg_owner == 0; }

/* Finished first, so that a finished process asks no getpid: after a seccomp filter
 * (hg_sandbox.c) it may not be allowed it. */
bool hg_drain_in_owner(void) { return !hg_drain_finished() && getpid() == hg_owner; }

/* Another process than the one the drain thread belongs to (no fork handler ran), and that
 * thread not among its own. */
bool hg_drain_thread_missing(void) {
    pid_t tid = atomic_load(&hg_drain_tid), pid = getpid();
    if (tid == 0 || pid == hg_owner) return false;
    int saved = errno;
    bool missing = hg_system_call(SYS_tgkill, pid, tid, 0, 0, 0, 0) != 0 && errno == ESRCH;
    errno = saved;
    return missing;
}

void hg_drain_disown(void) {
    atomic_store(&hg_state, HG_FINISHED);
    atomic_store(&hg_finished, 1); /* nothing to finish at exit, no drain to pause at a fork */
    atomic_store(&hg_drain_exists, false);
}

void hg_drain_stop_for_sandbox(const void *filter) {
    /* Two threads installing filters at once: the second waits until the first has stopped
     * the drain thread, which a filter with TSYNC would otherwise catch half-way, and then
     * finds the trace finished. Uncontended, the lock makes no system call. */
    static pthread_mutex_t stopping = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&stopping);
    /* Not a vfork child's (the trace is its parent's); a deny-list lets the shim's calls
     * through, and tracing goes on under it. */
    if (hg_drain_in_owner() && !(filter != NULL && hg_filter_lets_shim_through(filter)) &&
        !atomic_exchange(&hg_finished, 1)) {
        hg_start_deferred_now(true); /* so that the trace is there, cut here (stopping joins the thread) */
        atomic_store(&hg_state, HG_FINISHED);
        if (atomic_load(&hg_drain_exists)) {
            hg_drain_stop_thread();
            /* Cut, not finished: no snapshot or scan (the blocks in use now are not those at
             * exit), no END. The flag says why the trace stops here. */
            hg_writer_flush();
            hg_writer_set_header_flag(HG_TRACE_FLAG_SANDBOXED);
            hg_writer_close();
        }
    }
    pthread_mutex_unlock(&stopping);
}

/* At exit: the exiting thread takes the drain state over as soon as the drain thread is
 * between passes, applies what is left in the ring itself, and does not wait for the drain
 * thread to end (exit_group ends it; woken, it sees TAKEN and returns). Waiting for it to
 * empty the ring and end cost a traced /bin/true 0.1 ms when it woke at once, and up to 4 ms
 * in half the runs here, where a napping vCPU is slow to wake. The drain thread ending the
 * process itself (hg_exit_as_the_last_thread) is between passes, and takes over alike. */
/* The exiting thread's batch: static, since its stack may be small, and there is one finisher
 * (hg_finished). */
static hg_event_t hg_exit_batch[HG_BATCH];

static void hg_consume_published(void) {
    if (hg_drain_pass(hg_exit_batch) == 0) sched_yield();
}

/* Producers that claimed a slot before now may still be writing it: waits (up to 1 s) for what
 * was claimed by then, then takes what is published. */
static void hg_consume_claimed_before(uint64_t claimed) {
    for (int naps = 0; naps < 20000 && hg_ring_consumed() < claimed;) {
        if (hg_drain_pass(hg_exit_batch) > 0) continue;
        hg_sleep_us(50);
        naps++;
    }
    while (hg_drain_pass(hg_exit_batch) > 0) {}
}

/* Frees that other threads have said under way and whose FREE the exit has not applied
 * (hg_in_flight.c): their blocks are being freed, and would stay in the live set with nothing
 * pointing at them. A FREE that comes later stays in the ring. Static: the exiting thread's
 * stack may be small, and there is one finisher. */
static void hg_apply_frees_under_way(void) {
    static hg_in_flight_t others[HG_CUT_MAX];
    size_t count = hg_in_flight_of_others(others, HG_CUT_MAX);
    for (size_t i = 0; i < count; i++) {
        if (others[i].reallocating != 0) {
            /* A realloc between its halves is no free. If its REALLOC_FREE was applied and its
             * REALLOC comes after the exit's last look, its old block stays, as if the realloc
             * had not begun, or, when the pending blocks lost it, its REALLOC on its way is
             * applied. Applied as a FREE, or left pending, the block was in neither half: a
             * thread reallocating while the process exited lost its block from the report
             * (LeakClassificationTests.exitWhileOtherThreadsReallocate). */
            hg_block_t old;
            const hg_event_t *pushing = &others[i].pushing;
            if (hg_pending_take(others[i].reallocating, &old)) {
                hg_liveset_insert(old.ptr, old.size, old.stack, HG_LIVESET_NO_HOME);
                hg_tally.frees--;
            } else if (pushing->kind == HG_EV_REALLOC && pushing->old_ptr == others[i].reallocating &&
                       !hg_liveset_has(others[i].reallocating) && !hg_liveset_has(pushing->ptr)) {
                hg_apply_alone(pushing);
            }
            continue;
        }
        if (others[i].how == HG_IN_FLIGHT_NONE) continue;
        hg_event_t event = {.kind = HG_EV_FREE, .ptr = others[i].freeing};
        if (hg_liveset_has(event.ptr)) hg_apply_alone(&event);
    }
}

static void hg_drain_take_over(void) {
    uint64_t claimed = hg_ring_claimed();
    for (;;) {
        int idle = HG_DRAIN_IDLE;
        if (atomic_compare_exchange_weak(&hg_drain_phase, &idle, HG_DRAIN_TAKEN)) break;
        sched_yield(); /* a pass of at most HG_BATCH events is under way */
    }
    atomic_store(&hg_drain_stop, true);
    hg_drain_wake();
    hg_consume_claimed_before(claimed);
    /* The blocks still held back (hg_holdback.c): each slot taken, so that no thread frees its
     * block from under the exit, then, once every event claimed meanwhile is applied (those
     * about the blocks' addresses' earlier lives were published before the blocks were held),
     * applied as ALLOCs. */
    uint64_t pairs = 0, bytes = 0;
    hg_holdback_take_all(hg_consume_published, &pairs, &bytes);
    hg_consume_claimed_before(hg_ring_claimed());
    hg_holdback_apply_taken(hg_apply_held, &pairs, &bytes); /* and the counts a free added late */
    /* A free that waited for a slot taken here pushes its FREE now: taken too (up to 1 s). */
    for (int naps = 0; naps < 20000 && hg_holdback_producers_waiting(); naps++) {
        if (hg_drain_pass(hg_exit_batch) == 0) hg_sleep_us(50);
    }
    hg_consume_claimed_before(hg_ring_claimed());
    hg_tally_elided(pairs, bytes);
    hg_apply_frees_under_way();
    atomic_store(&hg_drain_exists, false);
    hg_ring_set_consumer_running(false);
}

void hg_drain_finish(int exit_status, const hg_exit_frame_t *exit) {
    if (atomic_exchange(&hg_finished, 1)) return;
    hg_start_deferred_now(false); /* a fork child ending before its trace started */
    if (!atomic_load(&hg_drain_exists)) return;
    if (hg_leak_check_wanted) hg_exit_hold_begin();
    atomic_store(&hg_state, HG_FINISHED);
    hg_drain_take_over();
    uint64_t snapshot_offset = hg_writer_offset();
    hg_write_snapshot_header();
    bool classified = false;
    if (hg_leak_check_wanted) {
        hg_liveset_exclude_from_scan();
        hg_stacks_exclude_from_scan();
        hg_unwind_exclude_from_scan();
        classified = hg_leakscan_run(exit);
    }
    hg_exit_hold_end();
    if (!classified) {
        /* In first-seen order only where a leak check was wanted (the scan could not run): it
         * takes a pass of its own over the live set, which at 10 M blocks made the exit 60 ms
         * (0.13 s to 0.19 s) longer, and with --leak-check=no no loss record is shown. */
        if (hg_leak_check_wanted) {
            hg_stack_order_note_liveset();
            hg_stack_order_write();
        }
        hg_stack_order_end();
        hg_liveset_for_each(hg_write_unclassified_block);
    }
    hg_write_bypasses();
    hg_writer_byte(HG_REC_STATS);
    hg_writer_uv(hg_tally.events);
    hg_writer_uv(hg_ring_full_waits());
    hg_writer_uv(hg_ring_lost());
    hg_writer_uv(hg_stacks_unkept_count());
    hg_writer_byte(HG_REC_END);
    hg_writer_uv(exit_status < 0 ? UINT32_MAX : (uint32_t)exit_status);
    unsigned char footer[16];
    for (int i = 0; i < 8; i++) footer[i] = (unsigned char)(snapshot_offset >> (8 * i));
    memcpy(footer + 8, HG_TRACE_FOOTER_MAGIC, 8);
    hg_writer_bytes(footer, sizeof footer);
    hg_writer_close();
}

/* The drain thread holds the pause asked last, or will never pass again. In the second case
 * an exit that took the drain over may be changing its state; it set hg_finished first, and
 * a child that inherits that touches none of it (hg_drain_fork_child). */
static bool hg_pause_is_held_or_drain_left(void) {
    return atomic_load(&hg_pause_held) == atomic_load(&hg_pause_asked) || atomic_load(&hg_drain_left);
}

void hg_drain_fork_prepare(void) {
    if (!atomic_load(&hg_drain_exists)) return;
    /* A child of clone() that forks: no drain thread here would ever pause (it hung). */
    if (hg_drain_thread_missing()) {
        hg_drain_disown();
        return;
    }
    /* One fork's handlers at a time (the module lock, taken first, is held until the parent's
     * handler ends), so the pause asked here is the last one asked until then. */
    atomic_store(&hg_pause_requested, true);
    atomic_fetch_add(&hg_pause_asked, 1u);
    hg_cut_nap();
    hg_wait_for_drain(hg_pause_is_held_or_drain_left, -1);
}

void hg_drain_fork_parent(void) { atomic_store(&hg_pause_requested, false); }

void hg_drain_fork_child(void) {
    hg_ring_forget_pushes_in_child();
    atomic_store(&hg_drain_tid, 0); /* the parent's; this process's drain sets its own */
    atomic_store(&hg_drain_stack_descriptor, NULL);
    atomic_store(&hg_main_thread_gone, false); /* the child's only thread is its main thread */
    bool had_drain = atomic_load(&hg_drain_exists) || atomic_load(&hg_start_deferred); /* a child's child too */
    atomic_store(&hg_pause_requested, false);
    atomic_store(&hg_drain_exists, false);
    atomic_store(&hg_drain_left, true); /* none here until one is spawned (an ending child's never is) */
    if (!had_drain || atomic_load(&hg_finished)) return;
    hg_writer_forget_in_child();
    /* What the parent's other threads published before the fork is the child's history too. */
    hg_writing = false;
    hg_cut_count = hg_in_flight_of_others(hg_cut, HG_CUT_MAX);
    hg_cut_filter_fill();
    hg_in_flight_forget_others();
    hg_ring_reset_in_child(hg_apply_in_child);
    hg_undo_cuts();
    hg_writing = true;
    hg_is_fork_child = true;
    hg_generation++;
    hg_tally.next_stack_id = 1;
    hg_tally.prev_address = 0;
    hg_tally.events = 0;
    hg_owner = getpid();
    hg_ring_set_consumer_running(false); /* every push takes the path that can start the trace */
    hg_deferred_since_ms = hg_coarse_ms();
    atomic_store(&hg_start_deferred, true);
}
