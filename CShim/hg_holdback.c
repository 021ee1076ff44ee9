/*
 * Allocations held back from the ring while several threads record.
 *
 * With one thread recording, the drain thread works on the other CPU and what it costs the
 * program is small. With several, every CPU runs the program, and each event's trip through
 * the shared ring (the claim, the slot's line moving, the drain's work) is paid in wall time:
 * the 8-thread churn's added time was twice the 1-thread one; with this, 1.5 times
 * (docs/ring-measurements.md).
 * Most blocks of such programs are freed soon after they are allocated, often on another
 * thread. So once a second thread records, an allocation goes into a table by its address
 * instead of the ring, and a free that finds its block there takes it out: neither event
 * reaches the ring, and the pair is counted in the table's slot (allocs, frees and bytes stay
 * exact: the drain adds the counts to its tally and writes an ELIDED record).
 *
 * Order. A free is recorded before glibc can hand the address out again (hg_hooks.c), so a
 * block held back here was allocated after every event about its address's earlier life was
 * in the ring. A free that does not find its block here pushes its FREE, which then comes
 * after the block's ALLOC whichever way that went: the ALLOC was pushed before the block was
 * returned (its slot held another block), or the drain or the exit applied it before letting
 * the slot go (below). A realloc's old half takes its block out and pushes the ALLOC first.
 *
 * Blocks that stay are handed to the drain (hg_holdback_tend): one it saw held at a visit is
 * applied at a later visit, once the ring is consumed past the positions claimed at the
 * earlier one, so every event published before it was held is applied before it. So the
 * table never fills with long-lived blocks, and a process killed leaves out only the blocks
 * of its last moments, as it leaves out the events still in the ring. At exit every block
 * still here is applied before the snapshot and the scan.
 *
 * A slot is taken (its state odd: the taker's thread pointer | 1) for a few stores at a time
 * (a free takes it, counts the pair and empties it);
 * a thread that finds it taken waits, and one whose taker no longer exists (a fork child's
 * copy of a slot a parent's thread had) takes it over. The drain never waits on a slot.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "hg_internal.h"

#define HG_HOLDBACK_SHIFT 16 /* 65,536 slots of a cache line: 4 MiB, touched only by threaded programs */
#define HG_HOLDBACK_SLOTS (1u << HG_HOLDBACK_SHIFT)

/* A slot's pairs and bytes cancelled only grow, written by the thread that has the slot taken,
 * with plain stores: the one locked instruction of a free is the take. The consumer (the drain,
 * then the exit) reads them without taking the slot and counts what grew since it last counted,
 * kept in the slot, which it alone writes. (They were one word that a free added to with a
 * locked add and the drain emptied: a fifth of the 8-thread churn's samples were that add;
 * packed into one word, its fields had to be moved aside before they overflowed.) */
typedef struct {
    _Atomic uintptr_t state;    /* 0: empty; odd: taken; else the address of the block held back */
    uint64_t size;
    _Atomic uint64_t pairs;     /* pairs cancelled here so far, and their bytes */
    _Atomic uint64_t bytes;
    uint64_t pairs_counted;     /* the consumer's: how many of them it has counted */
    uint64_t bytes_counted;
    hg_stack_ref_t stack;
    _Atomic uint32_t holds;     /* blocks held here so far */
} __attribute__((aligned(64))) hg_holdback_slot_t;

static hg_holdback_slot_t hg_holdback[HG_HOLDBACK_SLOTS];
/* The drain's: `holds` of the block it saw held in each slot at its last visit. */
static uint32_t hg_holds_seen[HG_HOLDBACK_SLOTS];
/* The exit's: the block it took each slot from (hg_holdback_take_all). */
static uintptr_t hg_held_at_exit[HG_HOLDBACK_SLOTS];
_Atomic bool hg_holdback_used;
/* The ring's positions claimed when the drain last looked at the table (hg_holdback_tend). */
static hg_ring_mark_t hg_mark_at_last_visit;
static bool hg_visited;

HG_ALWAYS_INLINE hg_holdback_slot_t *hg_slot_of(uintptr_t ptr) {
    return &hg_holdback[((ptr >> 4) * 0x9E3779B97F4A7C15ull) >> (64 - HG_HOLDBACK_SHIFT)];
}

HG_ALWAYS_INLINE uintptr_t hg_taken_by_me(void) { return (uintptr_t)__builtin_thread_pointer() | 1; }

/* Whether `thread` is one of this process's threads. pthread_kill cannot say: glibc answers 0
 * for a thread that has ended, and in a fork child for its parent's other threads (a child
 * waited for ever on a slot one of them had taken). The kernel can, given the thread id glibc
 * keeps for it, which the clock id of pthread_getcpuclockid encodes. */
static bool hg_thread_exists(pthread_t thread) {
    clockid_t clock;
    if (pthread_getcpuclockid(thread, &clock) != 0) return false;
    pid_t tid = (pid_t)~(clock >> 3);
    if (tid <= 0) return false;
    int saved_errno = errno;
    bool exists = syscall(SYS_tgkill, getpid(), tid, 0) == 0 || errno != ESRCH;
    errno = saved_errno;
    return exists;
}

/* Producers that waited for a taken slot and have not pushed their event yet. The exit, which
 * takes every slot, waits for them after letting the slots go: a free of a block the exit had
 * taken pushes its FREE only then, and it was lost (the block, applied as an ALLOC by the exit,
 * came out definitely lost; LeakClassificationTests.exitWhileOtherThreadsAllocate, 1 run in
 * about 10). hg_holdback_waited() ends a producer's wait once its event is pushed. */
static _Atomic unsigned hg_waiting_producers;
static __thread bool hg_producer_waited __attribute__((tls_model("initial-exec")));

void hg_holdback_waited(void) {
    if (HG_LIKELY(!hg_producer_waited)) return;
    hg_producer_waited = false;
    atomic_fetch_sub(&hg_waiting_producers, 1);
}

bool hg_holdback_producers_waiting(void) { return atomic_load(&hg_waiting_producers) != 0; }

/* Waits while another thread has the slot taken; `consume` (the exit's) empties the ring
 * meanwhile, since that thread may be waiting for room to push. Returns the state after. The
 * taker is asked after at once, then every 64 turns: a fork child's exit meets every slot its
 * parent's threads had taken, and with 1,100 busy threads each yield cost so much that the
 * child took minutes to end (a helper's probe, fork_mid_hold with 1,100 workers). */
static uintptr_t hg_wait_while_taken(hg_holdback_slot_t *slot, uintptr_t state, void (*consume)(void)) {
    if (consume == NULL && !hg_producer_waited) {
        hg_producer_waited = true;
        atomic_fetch_add(&hg_waiting_producers, 1);
    }
    for (unsigned turn = 1; state & 1; turn++) {
        pthread_t taker = (pthread_t)(state & ~(uintptr_t)1);
        if ((turn == 1 || turn % 64 == 0) && !hg_thread_exists(taker)) {
            atomic_compare_exchange_strong(&slot->state, &state, 0); /* the taker is gone */
        } else if (consume) {
            consume();
        } else {
            sched_yield();
        }
        state = atomic_load_explicit(&slot->state, memory_order_acquire);
    }
    return state;
}

bool hg_holdback_hold(uintptr_t ptr, uint64_t size, hg_stack_ref_t stack) {
    hg_holdback_slot_t *slot = hg_slot_of(ptr);
    uintptr_t state = atomic_load_explicit(&slot->state, memory_order_relaxed);
    if (state != 0 || !atomic_compare_exchange_strong_explicit(&slot->state, &state, hg_taken_by_me(),
                                                                memory_order_acquire, memory_order_relaxed))
        return false;
    slot->size = size;
    slot->stack = stack;
    atomic_store_explicit(&slot->holds, atomic_load_explicit(&slot->holds, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    if (!atomic_load_explicit(&hg_holdback_used, memory_order_relaxed)) atomic_store(&hg_holdback_used, true);
    atomic_store_explicit(&slot->state, ptr, memory_order_release);
    return true;
}

/* Takes the block's slot if the block is held there. The guard is raised while it is taken:
 * a signal handler that frees meanwhile must not wait for this thread. */
static hg_holdback_slot_t *hg_take_held(uintptr_t ptr) {
    if (!atomic_load_explicit(&hg_holdback_used, memory_order_relaxed)) return NULL;
    hg_holdback_slot_t *slot = hg_slot_of(ptr);
    uintptr_t state = atomic_load_explicit(&slot->state, memory_order_acquire);
    for (;;) {
        if (state & 1) state = hg_wait_while_taken(slot, state, NULL);
        if (state != ptr) return NULL;
        hg_guard_depth++;
        if (atomic_compare_exchange_strong_explicit(&slot->state, &state, hg_taken_by_me(), memory_order_acquire,
                                                    memory_order_acquire))
            return slot;
        hg_guard_depth--;
    }
}

static void hg_let_go(hg_holdback_slot_t *slot, uintptr_t state) {
    atomic_store_explicit(&slot->state, state, memory_order_release);
}

/* Counts a cancelled pair in its slot, which this thread has taken. */
static void hg_count_pair(hg_holdback_slot_t *slot, uint64_t size) {
    atomic_store_explicit(&slot->pairs, atomic_load_explicit(&slot->pairs, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_store_explicit(&slot->bytes, atomic_load_explicit(&slot->bytes, memory_order_relaxed) + size,
                          memory_order_relaxed);
}

/* The slot is taken while the pair is counted, not emptied at once: an exit that took every
 * slot and counted them while this thread was between the two (descheduled there) lost the
 * pair, counted after the exit's last look (reviewed; one store more a free). */
bool hg_holdback_cancel(uintptr_t ptr) {
    hg_holdback_slot_t *slot = hg_take_held(ptr);
    if (slot == NULL) return false;
    hg_count_pair(slot, slot->size);
    /* Counted: a fork child, where glibc has not freed the block, counts it back (hg_in_flight.c).
     * Held blocks exist only while the shared ring's route is taken, so the free said it began. */
    hg_in_flight.size = slot->size;
    hg_in_flight.stack = slot->stack;
    atomic_signal_fence(memory_order_seq_cst);
    hg_in_flight.how = HG_IN_FLIGHT_CANCELLED;
    hg_let_go(slot, 0);
    hg_guard_depth--;
    return true;
}

bool hg_holdback_holds(uintptr_t ptr) {
    return atomic_load_explicit(&hg_slot_of(ptr)->state, memory_order_acquire) == ptr;
}

void hg_holdback_release(uintptr_t ptr) {
    hg_holdback_slot_t *slot = hg_take_held(ptr);
    if (slot == NULL) return;
    bool said = hg_in_flight_pushing(HG_EV_ALLOC, slot->stack, ptr, slot->size, 0);
    hg_ring_push(HG_EV_ALLOC, slot->stack, ptr, slot->size, 0);
    hg_let_go(slot, 0);
    if (said) hg_in_flight_pushed();
    hg_guard_depth--;
}

/* The consumer's count of the pairs cancelled in the slot since it last counted. A pair's two
 * words may be read between their stores: its bytes are then counted at the next count. */
static void hg_count_elided(hg_holdback_slot_t *slot, uint64_t *pairs, uint64_t *bytes) {
    uint64_t pairs_now = atomic_load_explicit(&slot->pairs, memory_order_relaxed);
    uint64_t bytes_now = atomic_load_explicit(&slot->bytes, memory_order_relaxed);
    *pairs += pairs_now - slot->pairs_counted;
    *bytes += bytes_now - slot->bytes_counted;
    slot->pairs_counted = pairs_now;
    slot->bytes_counted = bytes_now;
}

void hg_holdback_count_all(uint64_t *pairs, uint64_t *bytes) {
    if (!atomic_load_explicit(&hg_holdback_used, memory_order_acquire)) return;
    for (uint32_t i = 0; i < HG_HOLDBACK_SLOTS; i++) hg_count_elided(&hg_holdback[i], pairs, bytes);
}

void hg_holdback_tend(hg_holdback_apply_t apply, uint64_t *pairs, uint64_t *bytes) {
    if (!atomic_load_explicit(&hg_holdback_used, memory_order_acquire)) return;
    bool past_last_visit = hg_visited && hg_ring_consumed_past(&hg_mark_at_last_visit);
    for (uint32_t i = 0; i < HG_HOLDBACK_SLOTS; i++) {
        hg_holdback_slot_t *slot = &hg_holdback[i];
        hg_count_elided(slot, pairs, bytes);
        uintptr_t state = atomic_load_explicit(&slot->state, memory_order_acquire);
        if (state == 0 || (state & 1)) continue; /* never wait: a taker's push may wait for the drain */
        uint32_t holds = atomic_load_explicit(&slot->holds, memory_order_relaxed);
        if (atomic_load_explicit(&slot->state, memory_order_acquire) != state) continue;
        /* Held since before the last visit's mark (the hold that wrote `holds` came before this
         * visit read it, and so before the mark taken after it): every event published before
         * it has been applied. Only then is the slot taken, to apply the block. */
        if (!past_last_visit || holds != hg_holds_seen[i]) {
            hg_holds_seen[i] = holds;
            continue;
        }
        if (!atomic_compare_exchange_strong_explicit(&slot->state, &state, hg_taken_by_me(), memory_order_acquire,
                                                     memory_order_relaxed))
            continue;
        /* The same address may be held again since `holds` was read: its block realloc'd
         * meanwhile (the old block's ALLOC and REALLOC_FREE pushed, not yet applied) and the
         * address handed out anew. Applied now, that block came before those events, which
         * then took it out of the live set (a probe that slept here lost a leak). Taken, the
         * count cannot change: a hold not seen at the last visit waits for the next. */
        uint32_t holds_now = atomic_load_explicit(&slot->holds, memory_order_relaxed);
        if (holds_now != holds) {
            hg_holds_seen[i] = holds_now;
            hg_let_go(slot, state);
            continue;
        }
        apply(state, slot->size, slot->stack);
        hg_let_go(slot, 0);
    }
    /* After the visit: a block seen held now was held before these positions were claimed. */
    hg_ring_mark(&hg_mark_at_last_visit);
    hg_visited = true;
}

void hg_holdback_take_all(void (*consume)(void), uint64_t *pairs, uint64_t *bytes) {
    if (!atomic_load_explicit(&hg_holdback_used, memory_order_acquire)) return;
    for (uint32_t i = 0; i < HG_HOLDBACK_SLOTS; i++) {
        hg_holdback_slot_t *slot = &hg_holdback[i];
        uintptr_t state = atomic_load_explicit(&slot->state, memory_order_acquire);
        for (;;) {
            if (state & 1) state = hg_wait_while_taken(slot, state, consume);
            if (atomic_compare_exchange_strong_explicit(&slot->state, &state, hg_taken_by_me(),
                                                        memory_order_acquire, memory_order_acquire))
                break;
        }
        hg_count_elided(slot, pairs, bytes);
        hg_held_at_exit[i] = state; /* the slot stays taken: no thread can cancel it now */
    }
}

void hg_holdback_apply_taken(hg_holdback_apply_t apply, uint64_t *pairs_late, uint64_t *bytes_late) {
    if (!atomic_load_explicit(&hg_holdback_used, memory_order_acquire)) return;
    for (uint32_t i = 0; i < HG_HOLDBACK_SLOTS; i++) {
        hg_holdback_slot_t *slot = &hg_holdback[i];
        if (hg_held_at_exit[i] != 0) apply(hg_held_at_exit[i], slot->size, slot->stack);
        hg_held_at_exit[i] = 0;
        hg_count_elided(slot, pairs_late, bytes_late);
        hg_let_go(slot, 0);
    }
}
