/*
 * One bounded multi-producer / single-consumer ring of fixed 64-byte slots (after Vyukov's
 * bounded queue). Any thread produces; only the drain thread consumes.
 *
 * Why one ring and not one per thread: the order of events across threads matters (a block
 * freed on one thread may be handed out again on another), and a single claim counter gives
 * that order for free. The price is one contended fetch_add per event.
 *
 * Memory-ordering argument:
 *  - Producers claim position p with fetch_add on `head` (relaxed: the claim only has to be
 *    unique; the slot's seq carries all the synchronisation).
 *  - seq is stored minus the slot's index (so a zeroed ring is ready: no set-up pass writes
 *    its 4 MiB, which a short program would pay for at start). Below, "seq" means that sum.
 *  - Slot s = p % N is free for position p when seq == p. The producer reads seq with acquire,
 *    which pairs with the consumer's release store of seq = p (consumer finished reading the
 *    previous lap's payload), so the producer's payload writes cannot overtake that read.
 *  - The producer writes the payload, then stores seq = p + 1 with release. The consumer loads
 *    seq with acquire and reads the payload only when it sees p + 1, so it sees the whole payload.
 *  - The consumer then stores seq = p + N with release: the slot is free for the next lap.
 * Slots are 64 bytes so that two producers never write the same cache line.
 * When the ring is full a producer waits (yielding); no event is ever dropped, and the waits
 * are counted. Before the drain thread exists nothing can empty the ring, so a full ring then
 * loses new events instead of hanging the process; they are counted and reported.
 */
#include <errno.h>
#include <sched.h>
#include <sys/mman.h>

#include "hg_internal.h"

#define HG_RING_SLOTS (1u << 16) /* 64 Ki slots x 64 bytes = 4 MiB: absorbs bursts while the drain catches up */

typedef struct {
    _Atomic uint64_t seq;
    hg_event_t event;
    char pad[64 - sizeof(uint64_t) - sizeof(hg_event_t)];
} hg_slot_t;

_Static_assert(sizeof(hg_slot_t) == 64, "one slot per cache line");

typedef struct {
    _Alignas(64) _Atomic uint64_t head; /* next position to claim (producers) */
    /* Read by every push, written almost never: a line of its own, so that the drain's
     * tail updates do not take it away from the producers. */
    _Alignas(64) _Atomic bool consumer_running;
    _Alignas(64) _Atomic uint64_t tail; /* next position to consume (drain thread) */
    _Atomic uint64_t full_waits;
    _Atomic uint64_t lost;
    /* Page-aligned, so that the chunks mapped ahead of use (below) are whole pages. */
    _Alignas(4096) hg_slot_t slots[HG_RING_SLOTS];
} hg_ring_t;

static hg_ring_t hg_ring;

static void hg_ring_assert(void) {
#ifdef HG_DEBUG
    uint64_t head = atomic_load(&hg_ring.head), tail = atomic_load(&hg_ring.tail);
    if (tail > head || head - tail > HG_RING_SLOTS * 2) __builtin_trap();
#endif
}

/* The ring's pages are mapped ahead of the producers, a chunk at a time, during the first lap.
 * Left alone, each page would first be read (a producer checks its slot's seq, the drain polls
 * it), which maps the shared zero page, and then written: that copy-on-write fault has to
 * flush the zero-page mapping from every CPU running the process, by an inter-processor
 * interrupt once the drain thread runs (in a VM, an exit to the hypervisor each). A page
 * mapped before anyone touches it needs no flush. Chunk by chunk, so that a short program
 * maps only what it uses (all 4 MiB at start cost a `true` 2 ms); by the producer that claims
 * a chunk's first slot, since the drain thread may not run for a while when the program's
 * threads take every CPU. */
#define HG_POPULATE_CHUNK (HG_RING_SLOTS / 64)
_Static_assert(HG_POPULATE_CHUNK * sizeof(hg_slot_t) % 4096 == 0, "chunks are whole pages");

static void hg_populate_chunk(uint64_t chunk) {
    if (chunk >= HG_RING_SLOTS / HG_POPULATE_CHUNK) return;
    int saved = errno;
    /* Kernels before 5.14 refuse MADV_POPULATE_WRITE; their first lap faults as before. */
    (void)madvise(&hg_ring.slots[chunk * HG_POPULATE_CHUNK], HG_POPULATE_CHUNK * sizeof(hg_slot_t), MADV_POPULATE_WRITE);
    errno = saved;
}

void hg_ring_populate_start(void) {
    hg_populate_chunk(0);
    hg_populate_chunk(1);
}

/* Writes the event into the slot claimed for pos and publishes it. Field by field from
 * registers: an event built on the caller's stack and copied here in 16-byte loads stalled on
 * a failed store forwarding. */
HG_ALWAYS_INLINE void hg_ring_fill(uint64_t pos, uint32_t kind, uint32_t stack, uint64_t ptr, uint64_t size,
                                   uint64_t old_ptr) {
    uint64_t index = pos & (HG_RING_SLOTS - 1);
    hg_slot_t *slot = &hg_ring.slots[index];
    slot->event = (hg_event_t){.kind = kind, .stack = stack, .ptr = ptr, .size = size, .old_ptr = old_ptr};
    atomic_store_explicit(&slot->seq, pos + 1 - index, memory_order_release);
    /* A slot's line was last written by the drain thread (its seq) a lap ago, so the store
     * above had to fetch it for writing, and the next push's locked fetch_add waits for that
     * store. Asking for a line eight slots ahead in the writable state overlaps the fetches
     * (program alone, medians of 11: churn 4.9x -> 4.5x, Rust 1.50x -> 1.44x). */
    __asm__ volatile("prefetchw %0" ::"m"(hg_ring.slots[(pos + 8) & (HG_RING_SLOTS - 1)]));
}

/* The rare cases of a push, out of line and each finishing the push itself, so that nothing
 * is live in the fast path after a call: it then needs no callee-saved registers (a push was
 * 47 instructions, 12 of them saving and restoring those; callgrind, Rust benchmark). */

/* First lap (map the chunk two ahead when a chunk's first slot is claimed, so that the mapping
 * is done well before any thread reaches it) or a full ring (wait, yielding, until the drain
 * frees the slot). */
static HG_NOINLINE void hg_ring_push_slow(uint64_t pos, uint32_t kind, uint32_t stack, uint64_t ptr, uint64_t size,
                                          uint64_t old_ptr) {
    uint64_t index = pos & (HG_RING_SLOTS - 1);
    if (pos < HG_RING_SLOTS && (pos & (HG_POPULATE_CHUNK - 1)) == 0) hg_populate_chunk(pos / HG_POPULATE_CHUNK + 2);
    hg_slot_t *slot = &hg_ring.slots[index];
    if (atomic_load_explicit(&slot->seq, memory_order_acquire) != pos - index) {
        atomic_fetch_add_explicit(&hg_ring.full_waits, 1, memory_order_relaxed);
        while (atomic_load_explicit(&slot->seq, memory_order_acquire) != pos - index) sched_yield();
    }
    hg_ring_fill(pos, kind, stack, ptr, size, old_ptr);
}

/* Before the drain thread runs, nothing empties a full ring. */
static HG_NOINLINE void hg_ring_push_unconsumed(uint32_t kind, uint32_t stack, uint64_t ptr, uint64_t size,
                                                uint64_t old_ptr) {
    if (atomic_load(&hg_ring.head) - atomic_load(&hg_ring.tail) >= HG_RING_SLOTS) {
        /* Losing the event is better than hanging the program. Counted and reported in the trace. */
        atomic_fetch_add_explicit(&hg_ring.lost, 1, memory_order_relaxed);
        return;
    }
    hg_ring_push_slow(atomic_fetch_add_explicit(&hg_ring.head, 1, memory_order_relaxed), kind, stack, ptr, size, old_ptr);
}

void hg_ring_push(uint32_t kind, uint32_t stack, uint64_t ptr, uint64_t size, uint64_t old_ptr) {
    if (HG_UNLIKELY(!atomic_load_explicit(&hg_ring.consumer_running, memory_order_acquire))) {
        hg_ring_push_unconsumed(kind, stack, ptr, size, old_ptr);
        return;
    }
    uint64_t pos = atomic_fetch_add_explicit(&hg_ring.head, 1, memory_order_relaxed);
    uint64_t index = pos & (HG_RING_SLOTS - 1);
    if (HG_UNLIKELY(pos < HG_RING_SLOTS || atomic_load_explicit(&hg_ring.slots[index].seq, memory_order_acquire) != pos - index)) {
        hg_ring_push_slow(pos, kind, stack, ptr, size, old_ptr);
        return;
    }
    hg_ring_fill(pos, kind, stack, ptr, size, old_ptr);
}

size_t hg_ring_pop(hg_event_t *out, size_t max) {
    uint64_t tail = atomic_load_explicit(&hg_ring.tail, memory_order_relaxed);
    size_t count = 0;
    while (count < max) {
        uint64_t index = tail & (HG_RING_SLOTS - 1);
        hg_slot_t *slot = &hg_ring.slots[index];
        if (atomic_load_explicit(&slot->seq, memory_order_acquire) != tail + 1 - index) break;
        out[count++] = slot->event;
        atomic_store_explicit(&slot->seq, tail + HG_RING_SLOTS - index, memory_order_release);
        tail++;
    }
    atomic_store_explicit(&hg_ring.tail, tail, memory_order_release);
    hg_ring_assert();
    return count;
}

size_t hg_ring_reset_in_child(void (*apply)(const hg_event_t *)) {
    uint64_t head = atomic_load(&hg_ring.head);
    uint64_t tail = atomic_load(&hg_ring.tail);
    size_t applied = 0;
    /* Slots claimed by threads that do not exist in the child may never be published:
     * take the published ones and skip the rest. Each is then freed for its next lap, as
     * the drain would have freed it, and the child's positions go on from the parent's:
     * every other slot already is free for its next position. Rewriting every slot for
     * positions from 0 instead copied all 4 MiB of the parent's pages in each fork child,
     * most of which only exec. */
    for (uint64_t pos = tail; pos < head; pos++) {
        uint64_t index = pos & (HG_RING_SLOTS - 1);
        hg_slot_t *slot = &hg_ring.slots[index];
        if (atomic_load(&slot->seq) == pos + 1 - index && slot->event.kind != 0) {
            apply(&slot->event);
            applied++;
        }
        atomic_store(&slot->seq, pos + HG_RING_SLOTS - index);
    }
    atomic_store(&hg_ring.tail, head);
    atomic_store(&hg_ring.full_waits, 0);
    atomic_store(&hg_ring.lost, 0);
    return applied;
}

uint64_t hg_ring_claimed(void) { return atomic_load(&hg_ring.head); }
uint64_t hg_ring_consumed(void) { return atomic_load(&hg_ring.tail); }
uint64_t hg_ring_full_waits(void) { return atomic_load(&hg_ring.full_waits); }
uint64_t hg_ring_lost(void) { return atomic_load(&hg_ring.lost); }
void hg_ring_set_consumer_running(bool running) { atomic_store(&hg_ring.consumer_running, running); }
