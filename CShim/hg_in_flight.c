/*
 * What a fork cuts short on the parent's other threads.
 *
 * A free (or a realloc's old half) is recorded before glibc makes it (hg_hooks.c), and glibc's
 * fork holds every arena's lock: another thread of the parent that had recorded its free and
 * then waited for an arena's lock is cut there. And a thread that writes to memory the fork has
 * made copy-on-write waits in that page fault until the fork is done: one pushing an event has
 * claimed its slot in the ring and not yet published it. In the child the first block is still
 * allocated and the second's event is in no ring, and the child's trace lost both (fixture
 * fork_mid_hold: a worker that mallocs, reallocs and frees in a loop while main forks;
 * valgrind reports the worker's block of the moment in use in every child that has one,
 * heapgate reported it in 3 of 133 such children, and 1 in 10 of them with the first cut alone
 * undone).
 *
 * So each thread says, in a record of its own (TLS), which free it has recorded and not yet
 * seen glibc make and which allocation it is pushing (or holding back); the records are found
 * through a registry of their addresses. The fork child (hg_drain_fork_child) reads the other
 * threads' records and undoes what they say: the FREE still in the ring is not applied, a
 * realloc's old half already applied is taken back from the drain's pending blocks, a block
 * held back (hg_holdback.c) whose pair was counted is counted back and applied, and an
 * allocation that is neither in the ring nor in the live set nor held back is applied. Only
 * while several threads record: a single-threaded program pays nothing.
 */
#include <errno.h>
#include <pthread.h>
#include <unistd.h>

#include "hg_internal.h"

__thread hg_in_flight_t hg_in_flight __attribute__((tls_model("initial-exec")));

/* Threads live at once beyond HG_IN_FLIGHT_THREADS are not covered (their frees in flight stay
 * cut). A thread's entry is given back at its exit (a thread-specific key's destructor): kept,
 * entries of ended threads filled the registry once 1,024 threads had ended whose TLS lay at
 * addresses of their own (stacks of other sizes, or the program's own), and every thread started
 * later had no record (ProcessTreeTests.childKeepsTheBlockOfAThreadStartedAfterManyEnded). Frees
 * a thread makes after its destructor (later destructors, glibc's own at its end) are not covered.
 * The child reads the records with process_vm_readv (hg_read_own), so an entry whose memory was
 * unmapped meanwhile cannot fault. */
static _Atomic(hg_in_flight_t *) hg_in_flight_registry[HG_IN_FLIGHT_THREADS];
static pthread_key_t hg_in_flight_key;
static bool hg_in_flight_key_ok;

static void hg_in_flight_unregister(void *record) {
    for (unsigned i = 0; i < HG_IN_FLIGHT_THREADS; i++) {
        hg_in_flight_t *expected = record;
        if (atomic_load_explicit(&hg_in_flight_registry[i], memory_order_relaxed) == expected &&
            atomic_compare_exchange_strong(&hg_in_flight_registry[i], &expected, NULL))
            return;
    }
}

void hg_in_flight_init(void) { hg_in_flight_key_ok = pthread_key_create(&hg_in_flight_key, hg_in_flight_unregister) == 0; }

/* The entry's destructor is set under the guard: for a key past glibc's first block of keys,
 * pthread_setspecific allocates. */
static void hg_in_flight_registered(hg_in_flight_t *mine) {
    if (!hg_in_flight_key_ok) return;
    hg_guard_depth++;
    int saved_errno = errno;
    (void)pthread_setspecific(hg_in_flight_key, mine);
    errno = saved_errno;
    hg_guard_depth--;
}

void hg_in_flight_register(void) {
    hg_in_flight_t *mine = &hg_in_flight;
    mine->self = mine; /* registered or not, the thread does not come back here */
    for (unsigned i = 0; i < HG_IN_FLIGHT_THREADS; i++) {
        hg_in_flight_t *entry = atomic_load_explicit(&hg_in_flight_registry[i], memory_order_relaxed);
        if (entry == mine) return;
        if (entry == NULL) {
            hg_in_flight_t *empty = NULL;
            if (atomic_compare_exchange_strong(&hg_in_flight_registry[i], &empty, mine)) {
                hg_in_flight_registered(mine);
                return;
            }
            if (empty == mine) return;
        }
    }
}

size_t hg_in_flight_of_others(hg_in_flight_t *out, size_t max) {
    size_t found = 0;
    int saved_errno = errno; /* a record unmapped fails with EFAULT: the program's errno stays */
    for (unsigned i = 0; i < HG_IN_FLIGHT_THREADS && found < max; i++) {
        hg_in_flight_t *entry = atomic_load_explicit(&hg_in_flight_registry[i], memory_order_relaxed);
        if (entry == NULL) continue; /* free, or given back by a thread that ended */
        if (entry == &hg_in_flight) continue; /* the caller's own: the forking or the exiting thread */
        hg_in_flight_t copy;
        if (!hg_read_own(&copy, (uintptr_t)entry, sizeof copy)) continue;
        if (copy.self != entry) continue; /* not a record */
        if (copy.how == HG_IN_FLIGHT_NONE && copy.pushing.kind == 0 && copy.reallocating == 0)
            continue; /* nothing under way */
        if (copy.reallocating != 0) copy.reallocating = ~copy.reallocating;
        copy.pushing.ptr = ~copy.pushing.ptr; /* stored complemented (hg_internal.h) */
        copy.pushing.old_ptr = ~copy.pushing.old_ptr;
        copy.freeing = ~copy.freeing;
        out[found++] = copy;
    }
    errno = saved_errno;
    return found;
}

void hg_in_flight_forget_others(void) {
    for (unsigned i = 0; i < HG_IN_FLIGHT_THREADS; i++) atomic_store_explicit(&hg_in_flight_registry[i], NULL, memory_order_relaxed);
    if (hg_in_flight.self != NULL) atomic_store_explicit(&hg_in_flight_registry[0], &hg_in_flight, memory_order_relaxed);
}
