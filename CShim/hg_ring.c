/*
 * The event rings: bounded multi-producer / single-consumer rings of fixed-size slots (after
 * Vyukov's bounded queue). Any thread produces; only the drain thread consumes.
 *
 * Two rings, one in use at a time:
 *  - the solo ring, 32-byte slots, two events to a cache line, while one thread records (and
 *    before the drain thread runs);
 *  - the shared ring, 64-byte slots, one event to a line, from the moment a second thread
 *    records an event, for good.
 * Two events to a line gave the drain half the lines to take across from the program's CPU:
 * the Rust and Swift benchmarks ran up to 6 % faster (jq, sqlite3 and the churn unchanged).
 * Two threads writing one line doubled the 8-thread churn's time in 1 to 3 runs of 12
 * (docs/architecture.md, "The ring").
 * Why one ring at a time and not one per thread: the order of events across threads matters
 * (a block freed on one thread may be handed out again on another), and a single claim
 * counter gives that order for free. The price is one contended fetch_add per event.
 *
 * Memory-ordering argument, within a ring:
 *  - Producers claim position p with fetch_add on `head`; the solo ring's owner, the only
 *    thread that claims there, with an xadd without the lock prefix. The claim only has to be
 *    unique; the slot's seq carries the synchronisation of the payload.
 *  - seq is stored minus the slot's index, mod 2^32 (so a zeroed ring is ready: no set-up
 *    pass writes its 4 MiB, which a short program would pay for at start). Below, "seq" means
 *    that sum. 32 bits tell laps apart for 2^15 laps at least: a producer would have to stop
 *    between its claim and its check for billions of events to be fooled.
 *  - Slot s = p % N is free for position p when seq == p. The producer reads seq with acquire,
 *    which pairs with the consumer's release store of seq = p (consumer finished reading the
 *    previous lap's payload), so the producer's payload writes cannot overtake that read.
 *  - The producer writes the payload, then stores seq = p + 1 with release. The consumer loads
 *    seq with acquire and reads the payload only when it sees p + 1, so it sees the whole payload.
 *  - The consumer then stores seq = p + N with release: the slot is free for the next lap.
 * Across the two rings: every event in the shared ring carries the solo ring's head as its
 * producer read it before claiming, and the drain takes the solo ring up to there first. An
 * event that must come before it (its block's last event, its thread's previous event) was
 * claimed in the solo ring before that read, so it is below that head. Solo events need no
 * such mark: one pushed after the switch comes from the one thread that pushed there (a push
 * under way when the second thread arrived), and nothing on another thread can depend on an
 * event that has not been pushed yet.
 * When a ring is full a producer waits (yielding); no event is ever dropped, and the waits
 * are counted. Before the drain thread exists nothing can empty a ring, so a full ring then
 * loses new events instead of hanging the process; they are counted and reported. A process
 * that has the rings but not the drain thread (a child of clone() without fork handlers)
 * stops recording instead of waiting (hg_ring_wait_goes_on).
 */
#include <errno.h>
#include <sched.h>
#include <sys/mman.h>

#include "hg_internal.h"

/* One event, 32 bytes. The kind rides in the address's top byte: user-space addresses on
 * x86-64 stay below 2^56, even with five-level page tables. */
typedef struct {
    _Atomic uint32_t seq;
    uint32_t stack;
    uint64_t ptr_kind;
    uint64_t size;
    uint64_t old_ptr;
} hg_slot_t;

_Static_assert(sizeof(hg_slot_t) == 32, "two solo slots per cache line");

/* A shared-ring slot: an event and how far the solo ring must be taken before it. */
typedef struct {
    hg_slot_t slot;
    uint64_t solo_after;
    char pad[64 - sizeof(hg_slot_t) - sizeof(uint64_t)];
} hg_shared_slot_t;

_Static_assert(sizeof(hg_shared_slot_t) == 64, "one shared slot per cache line");

#define HG_SOLO_SLOTS (1u << 17)   /* x 32 bytes = 4 MiB: absorbs bursts while the drain catches up */
#define HG_SHARED_SLOTS (1u << 16) /* x 64 bytes = 4 MiB */
#define HG_RING_BYTES (4u << 20)
_Static_assert(HG_SOLO_SLOTS * sizeof(hg_slot_t) == HG_RING_BYTES, "the solo ring fills its bytes");
_Static_assert(HG_SHARED_SLOTS * sizeof(hg_shared_slot_t) == HG_RING_BYTES, "the shared ring fills its bytes");

typedef struct {
    _Alignas(64) _Atomic uint64_t head; /* next position to claim (producers) */
    _Alignas(64) _Atomic uint64_t tail; /* next position to consume (drain thread) */
    _Atomic uint64_t full_waits;
    _Atomic uint64_t lost;
    /* Page-aligned, so that the chunks mapped ahead of use (below) are whole pages. */
    _Alignas(4096) unsigned char slots[HG_RING_BYTES];
} hg_ring_t;

static hg_ring_t hg_solo, hg_shared;

/* The arguments that name a ring, all constants: each use compiles to that ring's own code. */
#define HG_SOLO &hg_solo, HG_SOLO_SLOTS, sizeof(hg_slot_t)
#define HG_SHARED &hg_shared, HG_SHARED_SLOTS, sizeof(hg_shared_slot_t)

HG_ALWAYS_INLINE hg_slot_t *hg_slot_at(hg_ring_t *ring, uint64_t index, size_t stride) {
    return (hg_slot_t *)(ring->slots + index * stride);
}

/* Where a push goes. Read by every push, written almost never: a line of its own, so that
 * the drain's tail updates do not take it away from the producers. */
enum { HG_ROUTE_NONE = 0, HG_ROUTE_SHARED = 1, HG_ROUTE_UNCLAIMED = 2 };
static struct {
    /* HG_ROUTE_NONE: no consumer runs; HG_ROUTE_UNCLAIMED: no thread has recorded since it
     * started; HG_ROUTE_SHARED: a second thread has; otherwise the thread pointer of the one
     * thread that has recorded (the solo ring). Moves only forward (UNCLAIMED, a thread,
     * SHARED), but to NONE and back while the consumer is away. */
    _Alignas(64) _Atomic uintptr_t route;
    _Atomic uintptr_t route_while_away; /* what route goes back to when the consumer runs again */
    _Atomic bool shared;        /* the shared ring is in use: pushes without a consumer go there too */
} hg_routing = {.route = HG_ROUTE_NONE, .route_while_away = HG_ROUTE_UNCLAIMED};

static void hg_ring_assert(hg_ring_t *ring, uint64_t slots) {
#ifdef HG_DEBUG
    uint64_t head = atomic_load(&ring->head), tail = atomic_load(&ring->tail);
    if (tail > head || head - tail > slots * 2) __builtin_trap();
#else
    (void)ring;
    (void)slots;
#endif
}

/* The rings' pages are mapped ahead of the producers, a chunk at a time, during the first lap.
 * Left alone, each page would first be read (a producer checks its slot's seq, the drain polls
 * it), which maps the shared zero page, and then written: that copy-on-write fault has to
 * flush the zero-page mapping from every CPU running the process, by an inter-processor
 * interrupt once the drain thread runs (in a VM, an exit to the hypervisor each). A page
 * mapped before anyone touches it needs no flush. Chunk by chunk, so that a short program
 * maps only what it uses (all 4 MiB at start cost a `true` 2 ms); by the producer that claims
 * a chunk's first slot, since the drain thread may not run for a while when the program's
 * threads take every CPU. */
#define HG_POPULATE_CHUNKS 64
#define HG_POPULATE_BYTES (HG_RING_BYTES / HG_POPULATE_CHUNKS)
_Static_assert(HG_POPULATE_BYTES % 4096 == 0, "chunks are whole pages");

/* Whether pos is the first position of a chunk: the push that maps ahead, in the first lap. */
HG_ALWAYS_INLINE bool hg_chunk_start(uint64_t pos, uint64_t slots) { return (pos & (slots / HG_POPULATE_CHUNKS - 1)) == 0; }

static void hg_populate_chunk(hg_ring_t *ring, uint64_t chunk) {
    if (chunk >= HG_POPULATE_CHUNKS) return;
    int saved = errno;
    /* Kernels before 5.14 refuse MADV_POPULATE_WRITE; their first lap faults as before. */
    (void)madvise(ring->slots + chunk * HG_POPULATE_BYTES, HG_POPULATE_BYTES, MADV_POPULATE_WRITE);
    errno = saved;
}

void hg_ring_populate_start(void) {
    hg_populate_chunk(&hg_solo, 0);
    hg_populate_chunk(&hg_solo, 1);
}

/* Writes the event into the slot claimed for pos and publishes it. Field by field from
 * registers: an event built on the caller's stack and copied here in 16-byte loads stalled on
 * a failed store forwarding. */
HG_ALWAYS_INLINE void hg_ring_fill(hg_ring_t *ring, uint64_t slots, size_t stride, uint64_t pos, uint32_t kind,
                                   uint32_t stack, uint64_t ptr, uint64_t size, uint64_t old_ptr, uint64_t solo_after) {
    uint64_t index = pos & (slots - 1);
    hg_slot_t *slot = hg_slot_at(ring, index, stride);
    slot->stack = stack;
    slot->ptr_kind = ptr | (uint64_t)kind << 56;
    slot->size = size;
    slot->old_ptr = old_ptr;
    if (stride == sizeof(hg_shared_slot_t)) ((hg_shared_slot_t *)slot)->solo_after = solo_after;
    atomic_store_explicit(&slot->seq, (uint32_t)(pos + 1 - index), memory_order_release);
    /* A slot's line was last written by the drain thread (its seq) a lap ago, so the store
     * above had to fetch it for writing, and the next push's locked fetch_add waits for that
     * store. Asking for the line 512 bytes ahead in the writable state overlaps the fetches
     * (program alone, medians of 11: churn 4.9x -> 4.5x, Rust 1.50x -> 1.44x). */
    __asm__ volatile("prefetchw %0" ::"m"(*hg_slot_at(ring, (pos + 512 / stride) & (slots - 1), stride)));
}

/* The rare cases of a push, out of line and each finishing the push itself, so that nothing
 * is live in the fast path after a call: it then needs no callee-saved registers (a push was
 * 47 instructions, 12 of them saving and restoring those; callgrind, Rust benchmark). */

/* A full ring waits for the drain thread. A child made by glibc's clone() without CLONE_VM
 * runs no fork handlers: it copies the rings but not that thread, and its pushes waited for
 * ever once its events had filled a ring (a child making 2 M malloc/free pairs hung). So a
 * wait asks, every 256 yields, whether the ring's tail moved and, after 100 ms without, whether
 * this process has the drain thread; if not, recording stops in it (the hooks forward, as
 * after a sandbox) and the push is dropped. A vfork child, on its parent's memory, sees the
 * parent's drain move the tail. */
typedef struct {
    hg_ring_t *ring;
    uint64_t tail, since_ms;
    unsigned yields;
} hg_ring_wait_t;

/* One turn of a wait: false when it would never end (above). */
static HG_NOINLINE bool hg_ring_wait_goes_on(hg_ring_wait_t *wait) {
    if (wait->yields % 256 == 0) hg_drain_wake_for_room(); /* a drain in a long nap */
    sched_yield();
    if (++wait->yields % 256 != 0) return true;
    uint64_t tail = atomic_load(&wait->ring->tail), now = hg_coarse_ms();
    if (wait->since_ms == 0 || tail != wait->tail) {
        wait->tail = tail;
        wait->since_ms = now;
        return true;
    }
    if (now - wait->since_ms < 100 || !hg_drain_thread_missing()) return true;
    hg_drain_disown();
    return false;
}

/* A chunk's first slot (in the first lap, map the chunk two ahead, so that the mapping is
 * done well before any thread reaches it) or a full ring (wait, yielding, until the drain
 * frees the slot). Every other first-lap push takes the fast path: a zeroed slot is free for
 * it. */
HG_ALWAYS_INLINE void hg_ring_wait_and_fill(hg_ring_t *ring, uint64_t slots, size_t stride, uint64_t pos, uint32_t kind,
                                            uint32_t stack, uint64_t ptr, uint64_t size, uint64_t old_ptr,
                                            uint64_t solo_after) {
    uint64_t index = pos & (slots - 1);
    if (pos < slots && hg_chunk_start(pos, slots)) hg_populate_chunk(ring, pos / (slots / HG_POPULATE_CHUNKS) + 2);
    hg_slot_t *slot = hg_slot_at(ring, index, stride);
    uint32_t free_for = (uint32_t)(pos - index);
    if (atomic_load_explicit(&slot->seq, memory_order_acquire) != free_for) {
        atomic_fetch_add_explicit(&ring->full_waits, 1, memory_order_relaxed);
        hg_ring_wait_t wait = {.ring = ring};
        while (atomic_load_explicit(&slot->seq, memory_order_acquire) != free_for)
            if (!hg_ring_wait_goes_on(&wait)) return;
    }
    hg_ring_fill(ring, slots, stride, pos, kind, stack, ptr, size, old_ptr, solo_after);
}

static HG_NOINLINE void hg_solo_push_slow(uint64_t pos, uint32_t kind, uint32_t stack, uint64_t ptr, uint64_t size,
                                          uint64_t old_ptr) {
    hg_ring_wait_and_fill(HG_SOLO, pos, kind, stack, ptr, size, old_ptr, 0);
}

static HG_NOINLINE void hg_shared_push_slow(uint64_t pos, uint32_t kind, uint32_t stack, uint64_t ptr, uint64_t size,
                                            uint64_t old_ptr, uint64_t solo_after) {
    hg_ring_wait_and_fill(HG_SHARED, pos, kind, stack, ptr, size, old_ptr, solo_after);
}

/* Claims the ring's next position and publishes the event there. The solo ring's owner
 * claims with an xadd without the lock prefix: nobody else moves that ring's head while it
 * has an owner (see hg_ring_push_unconsumed), and a locked instruction waits until every
 * earlier store is done, the previous event's among them, whose line the drain thread had
 * last: Rust benchmark 0.361 -> 0.342 s, Swift 0.202 -> 0.193 s, the 2-frame churn 0.056 ->
 * 0.046 s, jq unchanged (medians of 11 alternating runs; the push's own samples fell by
 * 85 %, part of that wait moved to the program's next locked instruction). One instruction,
 * not a load and a store: a signal handler that frees or allocates on the same thread may
 * interrupt a push anywhere (a free records without the recursion guard), and between a
 * load and a store its push would have claimed the same position; the interrupted push
 * then found its slot taken and waited for ever. */
HG_ALWAYS_INLINE uint64_t hg_claim(hg_ring_t *ring, bool single_producer) {
    if (!single_producer) return atomic_fetch_add_explicit(&ring->head, 1, memory_order_relaxed);
    uint64_t pos = 1;
    __asm__ volatile("xaddq %0, %1" : "+r"(pos), "+m"(*(uint64_t *)&ring->head));
    return pos;
}

HG_ALWAYS_INLINE void hg_ring_put(hg_ring_t *ring, uint64_t slots, size_t stride, uint32_t kind, uint32_t stack,
                                  uint64_t ptr, uint64_t size, uint64_t old_ptr, uint64_t solo_after) {
    uint64_t pos = hg_claim(ring, stride == sizeof(hg_slot_t));
    uint64_t index = pos & (slots - 1);
    if (HG_UNLIKELY(hg_chunk_start(pos, slots) ||
                    atomic_load_explicit(&hg_slot_at(ring, index, stride)->seq, memory_order_acquire) !=
                        (uint32_t)(pos - index))) {
        if (stride == sizeof(hg_slot_t))
            hg_solo_push_slow(pos, kind, stack, ptr, size, old_ptr);
        else
            hg_shared_push_slow(pos, kind, stack, ptr, size, old_ptr, solo_after);
        return;
    }
    hg_ring_fill(ring, slots, stride, pos, kind, stack, ptr, size, old_ptr, solo_after);
}

/* Room the shared ring keeps free before a producer claims: as many producers as that can
 * pass the check below at the same moment and still find their slots free. */
#define HG_SHARED_ROOM 1024u

/* Whether the shared ring is too full to claim in. A producer that claimed a position whose
 * slot was not free yet yielded holding it, and when the drain reached that position, its
 * producer was often still waiting for a CPU: the drain found nothing published, napped 20 us
 * or more, and the ring stayed full meanwhile (60-156 such naps in a run of the 8-thread
 * churn). Checked first, a producer yields without a claim, and the drain waits on one only
 * when a producer lost its CPU between claim and publication (0-41 naps a run). The churn's
 * added wall time: 113 -> 93 ms, CPU time 0.256 -> 0.225 s (medians of 31 alternating
 * rounds). Two loads more: the head, whose line the claim takes next anyway, and the drain's
 * tail, a line it writes once a batch. */
HG_ALWAYS_INLINE bool hg_shared_nearly_full(void) {
    return atomic_load_explicit(&hg_shared.head, memory_order_relaxed) -
               atomic_load_explicit(&hg_shared.tail, memory_order_relaxed) >=
           HG_SHARED_SLOTS - HG_SHARED_ROOM;
}

/* Any thread once a second one has recorded: the shared ring, after the solo ring up to its
 * head now (whatever this event must follow was claimed there before this read). */
HG_ALWAYS_INLINE void hg_shared_put(uint32_t kind, uint32_t stack, uint64_t ptr, uint64_t size, uint64_t old_ptr) {
    hg_ring_put(HG_SHARED, kind, stack, ptr, size, old_ptr, atomic_load(&hg_solo.head));
}

/* Out of line and finishing the push, like the slow paths above, so that the solo ring's fast
 * path, which shares hg_ring_push with this one, saves no more registers. */
static HG_NOINLINE void hg_shared_push_when_room(uint32_t kind, uint32_t stack, uint64_t ptr, uint64_t size,
                                                 uint64_t old_ptr) {
    atomic_fetch_add_explicit(&hg_shared.full_waits, 1, memory_order_relaxed); /* a ring-full wait too */
    hg_ring_wait_t wait = {.ring = &hg_shared};
    while (hg_shared_nearly_full())
        if (!hg_ring_wait_goes_on(&wait)) return;
    hg_shared_put(kind, stack, ptr, size, old_ptr);
}

HG_ALWAYS_INLINE void hg_shared_push(uint32_t kind, uint32_t stack, uint64_t ptr, uint64_t size, uint64_t old_ptr) {
    if (HG_UNLIKELY(hg_shared_nearly_full())) {
        hg_shared_push_when_room(kind, stack, ptr, size, old_ptr);
        return;
    }
    hg_shared_put(kind, stack, ptr, size, old_ptr);
}

/* From the first push that goes to the shared ring on, for good. Its first chunks are mapped
 * before anyone reads them (see above). */
static void hg_use_shared_ring(void) {
    if (atomic_load(&hg_routing.shared)) return;
    hg_populate_chunk(&hg_shared, 0);
    hg_populate_chunk(&hg_shared, 1);
    atomic_store(&hg_routing.shared, true);
}

/* Claims a position whose slot is free, or none (the ring is full): without a consumer,
 * nothing would free it, and the consumer starting waits for this push. By compare-and-swap,
 * also for the solo ring's owner: a check and a claim that a signal handler's push could
 * come between. */
static bool hg_claim_unconsumed(hg_ring_t *ring, uint64_t slots, uint64_t *pos) {
    uint64_t head = atomic_load(&ring->head);
    do {
        if (head - atomic_load(&ring->tail) >= slots) return false;
    } while (!atomic_compare_exchange_weak(&ring->head, &head, head + 1));
    *pos = head;
    return true;
}

/* Pushes begun while no consumer ran that have not yet returned: a consumer starting waits
 * until there are none, so that the owner it may let claim without the lock never races one. */
static _Atomic uint32_t hg_unconsumed_pushes;

/* The thread starting a consumer while it waits for those pushes, else 0. The route stays
 * NONE until they are done, and pushes of other threads begun meanwhile wait for it. Set
 * first, the route let the owner claim without the lock while a push still claimed by
 * compare-and-swap: both took one position, the later one waited for the slot to be freed,
 * and the start waited for that push (three threads started by a library's constructor and
 * the main thread starting the drain hung for ever, spinning; once in a few hundred runs). */
static _Atomic uintptr_t hg_consumer_starter;

/* Before the drain thread runs (or while it is away), nothing empties a full ring. Who may
 * claim in the solo ring then: its owner, alone, as always; before it has one, any thread
 * (with compare-and-swap); once it has one, any other thread goes to the shared ring (and so
 * does everyone from then on, as when a second thread records with a consumer running). */
static HG_NOINLINE void hg_ring_push_unconsumed(uint32_t kind, uint32_t stack, uint64_t ptr, uint64_t size,
                                                uint64_t old_ptr) {
    /* Before this push counts as one under way: the start waits for those to end. */
    hg_drain_start_if_due();
    uintptr_t me = (uintptr_t)__builtin_thread_pointer();
    atomic_fetch_add(&hg_unconsumed_pushes, 1);
    uintptr_t starter = atomic_load(&hg_consumer_starter);
    if (starter != 0 && starter != me) { /* a consumer is starting: wait for its route */
        atomic_fetch_sub(&hg_unconsumed_pushes, 1);
        while (atomic_load(&hg_consumer_starter) != 0) sched_yield();
        hg_ring_push(kind, stack, ptr, size, old_ptr);
        return;
    }
    uintptr_t route = atomic_load(&hg_routing.route);
    if (route != HG_ROUTE_NONE) { /* a consumer started meanwhile */
        atomic_fetch_sub(&hg_unconsumed_pushes, 1);
        hg_ring_push(kind, stack, ptr, size, old_ptr);
        return;
    }
    uintptr_t owner = atomic_load(&hg_routing.route_while_away); /* written before route became NONE */
    bool solo = !atomic_load(&hg_routing.shared) && (owner == me || owner == HG_ROUTE_UNCLAIMED);
    if (!solo) hg_use_shared_ring();
    uint64_t solo_after = atomic_load(&hg_solo.head), pos; /* before claiming, as hg_shared_put */
    if (!hg_claim_unconsumed(solo ? &hg_solo : &hg_shared, solo ? HG_SOLO_SLOTS : HG_SHARED_SLOTS, &pos)) {
        /* Losing the event is better than hanging the program. Counted and reported in the trace. */
        atomic_fetch_add_explicit(solo ? &hg_solo.lost : &hg_shared.lost, 1, memory_order_relaxed);
    } else if (solo) {
        hg_solo_push_slow(pos, kind, stack, ptr, size, old_ptr);
    } else {
        hg_shared_push_slow(pos, kind, stack, ptr, size, old_ptr, solo_after);
    }
    atomic_fetch_sub(&hg_unconsumed_pushes, 1);
}

/* The route is not this thread: no consumer, the first event since it started (take the
 * route), a second thread (switch to the shared ring), or already switched. */
static HG_NOINLINE void hg_ring_push_routed(uintptr_t route, uint32_t kind, uint32_t stack, uint64_t ptr, uint64_t size,
                                            uint64_t old_ptr) {
    uintptr_t me = (uintptr_t)__builtin_thread_pointer();
    for (;;) {
        if (route == HG_ROUTE_NONE) {
            hg_ring_push_unconsumed(kind, stack, ptr, size, old_ptr);
            return;
        }
        if (route == HG_ROUTE_SHARED) {
            hg_shared_push(kind, stack, ptr, size, old_ptr);
            return;
        }
        if (route == me) {
            hg_ring_put(HG_SOLO, kind, stack, ptr, size, old_ptr, 0);
            return;
        }
        uintptr_t next = route == HG_ROUTE_UNCLAIMED ? me : HG_ROUTE_SHARED;
        if (next == HG_ROUTE_SHARED) hg_use_shared_ring();
        if (atomic_compare_exchange_strong(&hg_routing.route, &route, next)) route = next;
    }
}

HG_INLINED_ACROSS_FILES void hg_ring_push(uint32_t kind, uint32_t stack, uint64_t ptr, uint64_t size, uint64_t old_ptr) {
    uintptr_t route = atomic_load_explicit(&hg_routing.route, memory_order_acquire);
    if (HG_UNLIKELY(route != (uintptr_t)__builtin_thread_pointer())) {
        if (HG_LIKELY(route == HG_ROUTE_SHARED))
            hg_shared_push(kind, stack, ptr, size, old_ptr);
        else
            hg_ring_push_routed(route, kind, stack, ptr, size, old_ptr);
        return;
    }
    /* The only thread that records: the solo ring. */
    hg_ring_put(HG_SOLO, kind, stack, ptr, size, old_ptr, 0);
}

/* Whether the slot at `tail` holds a published event. */
HG_ALWAYS_INLINE bool hg_published(hg_ring_t *ring, uint64_t slots, size_t stride, uint64_t tail) {
    uint64_t index = tail & (slots - 1);
    return atomic_load_explicit(&hg_slot_at(ring, index, stride)->seq, memory_order_acquire) == (uint32_t)(tail + 1 - index);
}

HG_ALWAYS_INLINE hg_event_t hg_event_in(const hg_slot_t *slot) {
    return (hg_event_t){.kind = (uint32_t)(slot->ptr_kind >> 56),
                        .stack = slot->stack,
                        .ptr = slot->ptr_kind & ((1ull << 56) - 1),
                        .size = slot->size,
                        .old_ptr = slot->old_ptr};
}

/* Frees the slot at `tail` for its next lap. */
HG_ALWAYS_INLINE void hg_release(hg_ring_t *ring, uint64_t slots, size_t stride, uint64_t tail) {
    uint64_t index = tail & (slots - 1);
    atomic_store_explicit(&hg_slot_at(ring, index, stride)->seq, (uint32_t)(tail + slots - index), memory_order_release);
}

/* Copies up to max published solo events, in order, up to position `until`. */
static size_t hg_solo_take(hg_event_t *out, size_t max, uint64_t until) {
    uint64_t tail = atomic_load_explicit(&hg_solo.tail, memory_order_relaxed);
    size_t count = 0;
    while (count < max && tail < until && hg_published(HG_SOLO, tail)) {
        out[count++] = hg_event_in(hg_slot_at(&hg_solo, tail & (HG_SOLO_SLOTS - 1), sizeof(hg_slot_t)));
        hg_release(HG_SOLO, tail);
        tail++;
    }
    atomic_store_explicit(&hg_solo.tail, tail, memory_order_release);
    hg_ring_assert(&hg_solo, HG_SOLO_SLOTS);
    return count;
}

size_t hg_ring_pop(hg_event_t *out, size_t max) {
    size_t count = hg_solo_take(out, max, UINT64_MAX);
    if (!atomic_load_explicit(&hg_routing.shared, memory_order_acquire)) return count;
    uint64_t tail = atomic_load_explicit(&hg_shared.tail, memory_order_relaxed);
    uint64_t solo_taken = atomic_load_explicit(&hg_solo.tail, memory_order_relaxed);
    while (count < max && hg_published(HG_SHARED, tail)) {
        const hg_shared_slot_t *slot =
            (const hg_shared_slot_t *)hg_slot_at(&hg_shared, tail & (HG_SHARED_SLOTS - 1), sizeof(hg_shared_slot_t));
        if (HG_UNLIKELY(slot->solo_after > solo_taken)) {
            count += hg_solo_take(out + count, max - count, slot->solo_after);
            solo_taken = atomic_load_explicit(&hg_solo.tail, memory_order_relaxed);
            if (slot->solo_after > solo_taken || count >= max) break;
        }
        out[count++] = hg_event_in(&slot->slot);
        hg_release(HG_SHARED, tail);
        tail++;
    }
    atomic_store_explicit(&hg_shared.tail, tail, memory_order_release);
    hg_ring_assert(&hg_shared, HG_SHARED_SLOTS);
    return count;
}

/* In a fork child: applies ring's published events left behind, skips the positions never
 * published (their threads do not exist in the child), and frees every slot for its next lap,
 * as the drain would have. The child's positions go on from the parent's: every other slot
 * already is free for its next position. Rewriting every slot for positions from 0 instead
 * copied all 4 MiB of the parent's pages in each fork child, most of which only exec. */
HG_ALWAYS_INLINE size_t hg_ring_reset(hg_ring_t *ring, uint64_t slots, size_t stride, void (*apply)(const hg_event_t *)) {
    uint64_t head = atomic_load(&ring->head);
    size_t applied = 0;
    for (uint64_t pos = atomic_load(&ring->tail); pos < head; pos++) {
        hg_slot_t *slot = hg_slot_at(ring, pos & (slots - 1), stride);
        if (hg_published(ring, slots, stride, pos) && (slot->ptr_kind >> 56) != 0) {
            hg_event_t event = hg_event_in(slot);
            apply(&event);
            applied++;
        }
        hg_release(ring, slots, stride, pos);
    }
    atomic_store(&ring->tail, head);
    atomic_store(&ring->full_waits, 0);
    atomic_store(&ring->lost, 0);
    return applied;
}

void hg_ring_forget_pushes_in_child(void) {
    atomic_store(&hg_unconsumed_pushes, 0); /* the parent's threads that were pushing are not here */
}

size_t hg_ring_reset_in_child(void (*apply)(const hg_event_t *)) {
    /* The solo ring first: what the shared ring's events wait for is there. */
    size_t applied = hg_ring_reset(HG_SOLO, apply);
    return applied + hg_ring_reset(HG_SHARED, apply);
}

uint64_t hg_ring_claimed(void) { return atomic_load(&hg_solo.head) + atomic_load(&hg_shared.head); }
uint64_t hg_ring_consumed(void) { return atomic_load(&hg_solo.tail) + atomic_load(&hg_shared.tail); }
uint64_t hg_ring_backlog_bytes(void) {
    uint64_t solo = atomic_load_explicit(&hg_solo.head, memory_order_relaxed) -
                    atomic_load_explicit(&hg_solo.tail, memory_order_relaxed);
    uint64_t shared = atomic_load_explicit(&hg_shared.head, memory_order_relaxed) -
                      atomic_load_explicit(&hg_shared.tail, memory_order_relaxed);
    return solo * sizeof(hg_slot_t) + shared * sizeof(hg_shared_slot_t);
}
uint64_t hg_ring_full_waits(void) { return atomic_load(&hg_solo.full_waits) + atomic_load(&hg_shared.full_waits); }
uint64_t hg_ring_lost(void) { return atomic_load(&hg_solo.lost) + atomic_load(&hg_shared.lost); }

void hg_ring_set_consumer_running(bool running) {
    if (running) {
        /* A push that saw no consumer may still be claiming in the solo ring by compare-and-
         * swap; the owner that may now be chosen claims without the lock, so the route is set
         * once no such push is under way (one never waits: it claims only a free slot), and
         * none begins meanwhile (hg_consumer_starter). */
        atomic_store(&hg_consumer_starter, (uintptr_t)__builtin_thread_pointer());
        while (atomic_load(&hg_unconsumed_pushes) != 0) sched_yield();
        /* Once anything went to the shared ring (also while the consumer was away), nothing
         * new may go to the solo ring: the drain takes that first. */
        atomic_store(&hg_routing.route,
                     atomic_load(&hg_routing.shared) ? HG_ROUTE_SHARED : atomic_load(&hg_routing.route_while_away));
        atomic_store(&hg_consumer_starter, 0);
    } else {
        /* route_while_away first, so that a push that finds no consumer knows the owner. */
        uintptr_t was = atomic_load(&hg_routing.route);
        while (was != HG_ROUTE_NONE) {
            atomic_store(&hg_routing.route_while_away, was);
            if (atomic_compare_exchange_strong(&hg_routing.route, &was, HG_ROUTE_NONE)) break;
        }
    }
}

void hg_ring_mark(hg_ring_mark_t *mark) {
    mark->solo = atomic_load(&hg_solo.head);
    mark->shared = atomic_load(&hg_shared.head);
}

bool hg_ring_consumed_past(const hg_ring_mark_t *mark) {
    return atomic_load(&hg_solo.tail) >= mark->solo && atomic_load(&hg_shared.tail) >= mark->shared;
}

bool hg_ring_routes_to_shared(void) {
    return atomic_load_explicit(&hg_routing.route, memory_order_relaxed) == HG_ROUTE_SHARED;
}
