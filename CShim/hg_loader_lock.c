/*
 * The dynamic loader's list lock, held across fork so that the child finds it free.
 *
 * dl_iterate_phdr walks the loaded objects under a lock of the loader's (dl_load_write_lock in
 * glibc), which dlopen and dlclose also take while they link or unlink an object. glibc's fork
 * resets the loader's other lock (dl_load_lock) in the child, not this one: a child forked
 * while another thread was inside dlopen or dlclose could inherit it held by a thread the
 * child does not have, and its first dl_iterate_phdr then waited for ever. Most programs never
 * walk the list in a child; under the shim every new call site does (the module look-up, and
 * libunwind's search for unwind tables), and such children hung (fixture fork_while_dlclosing:
 * a thread opening and closing a library while the main thread forks, 3 runs in 3).
 *
 * The lock is not exported. The shim finds it once, at start, as the one recursive mutex inside
 * _rtld_global that this thread holds during a dl_iterate_phdr callback and no longer holds
 * after it. The fork handlers hold it across the fork when it is free (below), and the child
 * resets it, as glibc resets dl_load_lock. Where it is not found (another C library, a static
 * program), nothing changes.
 *
 * Lock order: this lock, then hg_modules_lock. A program's dl_iterate_phdr callback that
 * allocates from a new call site takes them in that order (the module look-up under the
 * callback), so the module rescan takes this lock first as well.
 *
 * The fork never waits for a walk. A thread walking the list holds this lock while its callback
 * runs, and the callback may wait for a lock the forking thread already holds: one the
 * program's own fork handler took, or one it holds around fork() (fixture
 * fork_under_program_locks: the parent hung in the shim's prepare handler, where natively the
 * walk waits for the fork to be made). A walk leaves the list whole, and only dlopen and
 * dlclose change it, which hold the loader's other lock (dl_load_lock) throughout. So the fork
 * waits for that one, a second at most, and takes this one only if free: no dlopen or dlclose
 * is then under way (the child inherits the loader whole) or can start before the fork, and
 * glibc resets that lock in the child.
 */
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hg_internal.h"

#define HG_MAX_CANDIDATES 8

static pthread_mutex_t *hg_loader_list_lock;
/* dlopen's and dlclose's lock (dl_load_lock), which glibc declares just before the list lock. */
static pthread_mutex_t *hg_loader_load_lock;

/* What this thread's fork prepare took, for its parent handler to release. */
typedef enum { HG_FORK_HELD_NOTHING, HG_FORK_HELD_LIST, HG_FORK_HELD_LOAD, HG_FORK_HELD_BOTH } hg_fork_hold_t;
static __thread hg_fork_hold_t hg_held_for_fork __attribute__((tls_model("initial-exec")));

typedef struct {
    pid_t thread;
    unsigned char *start, *end;
    bool looked;
    uint32_t count;
    pthread_mutex_t *candidates[HG_MAX_CANDIDATES];
    unsigned int depth_inside[HG_MAX_CANDIDATES];
} hg_lock_probe_t;

static bool hg_held_recursively_by(const pthread_mutex_t *mutex, pid_t thread) {
    return mutex->__data.__owner == thread && mutex->__data.__count > 0 &&
           (mutex->__data.__kind & 127) == PTHREAD_MUTEX_RECURSIVE_NP;
}

/* Runs with the list lock held: notes every recursive mutex this thread holds, once. */
static int hg_note_held_mutexes(struct dl_phdr_info *info, size_t size, void *data) {
    (void)info, (void)size;
    hg_lock_probe_t *probe = data;
    if (probe->looked) return 1;
    probe->looked = true;
    const size_t step = _Alignof(pthread_mutex_t);
    for (unsigned char *at = probe->start; at + sizeof(pthread_mutex_t) <= probe->end; at += step) {
        pthread_mutex_t *mutex = (pthread_mutex_t *)at;
        if (!hg_held_recursively_by(mutex, probe->thread)) continue;
        if (probe->count == HG_MAX_CANDIDATES) return 1;
        probe->depth_inside[probe->count] = mutex->__data.__count;
        probe->candidates[probe->count++] = mutex;
    }
    return 1;
}

void hg_loader_lock_find(void) {
    void *rtld_global = dlsym(RTLD_DEFAULT, "_rtld_global");
    Dl_info where;
    const ElfW(Sym) *symbol = NULL;
    if (rtld_global == NULL || dladdr1(rtld_global, &where, (void **)&symbol, RTLD_DL_SYMENT) == 0 || symbol == NULL)
        return;
    hg_lock_probe_t probe = {.thread = gettid(), .start = rtld_global, .end = (unsigned char *)rtld_global + symbol->st_size};
    dl_iterate_phdr(hg_note_held_mutexes, &probe);
    pthread_mutex_t *found = NULL;
    for (uint32_t i = 0; i < probe.count; i++) {
        pthread_mutex_t *mutex = probe.candidates[i];
        bool released = !hg_held_recursively_by(mutex, probe.thread) || (unsigned int)mutex->__data.__count == probe.depth_inside[i] - 1;
        if (!released) continue; /* held around the walk as well: another lock (dlopen's) */
        if (found != NULL) return; /* two: not sure which */
        found = mutex;
    }
    hg_loader_list_lock = found;
    pthread_mutex_t *before = found - 1;
    if (found != NULL && (unsigned char *)before >= probe.start && (before->__data.__kind & 127) == PTHREAD_MUTEX_RECURSIVE_NP)
        hg_loader_load_lock = before;
}

void hg_loader_lock_hold(void) {
    if (hg_loader_list_lock != NULL) pthread_mutex_lock(hg_loader_list_lock);
}

void hg_loader_lock_release(void) {
    if (hg_loader_list_lock != NULL) pthread_mutex_unlock(hg_loader_list_lock);
}

/* Waits a second at most. dlopen's lock, which no dlopen or dlclose under way holds (their
 * loader state, which a child would inherit half-changed, is whole), and then the list lock if
 * free; while a walk holds it, the list is whole all the same and stays so (a change of the
 * list needs dlopen's lock, this thread's now). The wait for dlopen's lock lasts until the
 * dlopen or dlclose under way ends; after a second (a dlopen whose constructor waits for this
 * thread), the fork goes on with the list lock if it is free, or with neither, as before the
 * shim held either. Without dlopen's lock found, the list lock, waited for as long. A fork
 * made inside this thread's own walk (a dl_iterate_phdr callback that forks) takes the list
 * lock again and waits for nothing: a dlopen under way may be waiting for that walk to end. */
void hg_loader_lock_hold_for_fork(void) {
    hg_held_for_fork = HG_FORK_HELD_NOTHING;
    if (hg_loader_list_lock == NULL) return;
    if (hg_held_recursively_by(hg_loader_list_lock, gettid())) {
        if (pthread_mutex_trylock(hg_loader_list_lock) == 0) hg_held_for_fork = HG_FORK_HELD_LIST;
        return;
    }
    struct timespec patience;
    clock_gettime(CLOCK_MONOTONIC, &patience);
    patience.tv_sec += 1;
    if (hg_loader_load_lock == NULL) {
        if (pthread_mutex_clocklock(hg_loader_list_lock, CLOCK_MONOTONIC, &patience) == 0)
            hg_held_for_fork = HG_FORK_HELD_LIST;
        return;
    }
    if (pthread_mutex_clocklock(hg_loader_load_lock, CLOCK_MONOTONIC, &patience) == 0) {
        hg_held_for_fork = HG_FORK_HELD_LOAD;
        if (pthread_mutex_trylock(hg_loader_list_lock) == 0) hg_held_for_fork = HG_FORK_HELD_BOTH;
    } else if (pthread_mutex_trylock(hg_loader_list_lock) == 0) {
        hg_held_for_fork = HG_FORK_HELD_LIST;
    }
}

void hg_loader_lock_release_after_fork(void) {
    if (hg_held_for_fork == HG_FORK_HELD_LIST || hg_held_for_fork == HG_FORK_HELD_BOTH)
        pthread_mutex_unlock(hg_loader_list_lock);
    if (hg_held_for_fork == HG_FORK_HELD_LOAD || hg_held_for_fork == HG_FORK_HELD_BOTH)
        pthread_mutex_unlock(hg_loader_load_lock);
    hg_held_for_fork = HG_FORK_HELD_NOTHING;
}

/* The forking thread or a walking one held it; in the child neither exists under its id, so it
 * cannot unlock. glibc resets dlopen's lock itself. */
void hg_loader_lock_reset_in_child(void) {
    static const pthread_mutex_t unlocked = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
    if (hg_loader_list_lock != NULL) memcpy(hg_loader_list_lock, &unlocked, sizeof unlocked);
    hg_held_for_fork = HG_FORK_HELD_NOTHING;
}
