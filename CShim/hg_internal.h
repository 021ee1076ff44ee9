/* Declarations shared by the shim's translation units. Nothing here is exported. */
#ifndef HG_INTERNAL_H
#define HG_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <sys/types.h>

/* The shim is built with -fvisibility=hidden: only what this marks is exported (the malloc
 * family, _exit and _Exit). */
#define HG_EXPORT __attribute__((visibility("default")))
#define HG_NOINLINE __attribute__((noinline))
#define HG_ALWAYS_INLINE static inline __attribute__((always_inline))
/* An external function that the link-time optimiser (the Makefile builds with -flto) inlines
 * into its callers in other files as well; its declaration here is not `inline`, so an
 * out-of-line copy still exists for calls it cannot inline. Only for what runs once per
 * event: the allocation fast path and the drain's (see the Makefile). */
#define HG_INLINED_ACROSS_FILES inline __attribute__((always_inline))
#define HG_LIKELY(x) __builtin_expect(!!(x), 1)
#define HG_UNLIKELY(x) __builtin_expect(!!(x), 0)
/* For a struct of what the drain thread writes for every event: it then fills whole cache
 * lines of its own (its size rounds up to 64 bytes). Sharing a line with what every traced
 * call reads (hg_state, hg_real, ...) would move that line between the two cores on every
 * event: a layout change that put the live set's count beside hg_state made the churn
 * benchmark 20 % slower and the drain 25 % busier. */
#define HG_OWN_LINES __attribute__((aligned(64)))

/* ---- hg_real.c: glibc's allocator, found with dlsym(RTLD_NEXT) ---- */
typedef struct {
    void *(*malloc)(size_t);
    void (*free)(void *);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    void *(*memalign)(size_t, size_t);
    int (*posix_memalign)(void **, size_t, size_t);
    void *(*aligned_alloc)(size_t, size_t);
    void *(*valloc)(size_t);
    void *(*pvalloc)(size_t);
    size_t (*malloc_usable_size)(void *);
    void (*exit_now)(int) __attribute__((noreturn));
    void (*pthread_exit)(void *) __attribute__((noreturn));
    int (*close)(int);
    int (*close_range)(unsigned, unsigned, int); /* NULL before glibc 2.34 */
    int (*fcntl)(int, int, ...);
    int (*dup)(int);
    int (*dup2)(int, int);
    int (*dup3)(int, int, int);
} hg_real_t;

extern hg_real_t hg_real;
enum { HG_REAL_UNRESOLVED, HG_REAL_RESOLVING, HG_REAL_RESOLVED };
extern _Atomic int hg_real_state;
bool hg_real_resolve_once(void);
/** Resolves hg_real once; returns false while the resolution is still under way (dlsym
 *  allocating). Inline: every call into the shim asks. */
static inline bool hg_real_ready(void) {
    if (HG_LIKELY(atomic_load_explicit(&hg_real_state, memory_order_acquire) == HG_REAL_RESOLVED)) return true;
    return hg_real_resolve_once();
}

/* ---- hg_bootstrap.c: memory handed out while dlsym is still resolving ---- */
void *hg_bootstrap_alloc(size_t size, size_t alignment);
#define HG_BOOTSTRAP_BYTES (256 * 1024)
extern unsigned char hg_bootstrap_arena[HG_BOOTSTRAP_BYTES];
/* Inline: every free asks. */
static inline bool hg_bootstrap_owns(const void *ptr) {
    const unsigned char *p = ptr;
    return p >= hg_bootstrap_arena && p < hg_bootstrap_arena + HG_BOOTSTRAP_BYTES;
}
size_t hg_bootstrap_usable_size(const void *ptr);

/* ---- hg_foreign_allocator.c: an allocator ahead of ours in the search order, replaced ---- */
typedef struct {
    const char *name;
    void *address;
} hg_entry_point_t;
/* Our own entry points, in hg_foreign_allocator.c's order (hg_hooks.c): &malloc would give
 * the definition ld.so bound, which is not ours when another object comes first. */
extern const hg_entry_point_t hg_entry_points[];
enum { HG_FOREIGN_NONE, HG_FOREIGN_REPLACED, HG_FOREIGN_LEFT };
typedef struct {
    /* Blocks in [low, low + span) may be the old allocator's (hg_foreign_search tells);
     * span is 0 unless it was replaced. */
    uintptr_t low, span;
    /* The replaced allocator's standard entry points (hg_entry_points' order; 0 where it has
     * none): jumps to the shim's now, so a library bound to one of them is bound to the shim. */
    uintptr_t replaced_entry[16];
    int outcome;
    char object[256];  /* its path as ld.so has it; empty for the executable */
    char reason[160];  /* why it was left in place */
} hg_foreign_t;
extern hg_foreign_t hg_foreign;
/** Called once by the constructor, before recording starts. */
void hg_foreign_take_over(const hg_entry_point_t *ours);
bool hg_foreign_search(uintptr_t address);
/* free(NULL)s that reached the shim on this thread (hg_hooks.c). */
extern __thread unsigned hg_null_frees __attribute__((tls_model("initial-exec")));
/** Whether ptr is a block the replaced allocator handed out before it was replaced. Inline:
 *  every free asks, and without such an allocator the answer is one compare. */
static inline bool hg_foreign_holds(const void *ptr) {
    return HG_UNLIKELY((uintptr_t)ptr - hg_foreign.low < hg_foreign.span) && hg_foreign_search((uintptr_t)ptr);
}
/** Copies up to bytes from an old block of unknown size, as far as memory is readable. */
void hg_foreign_copy_out(void *to, const void *from, size_t bytes);

/* ---- hg_proc.c: what /proc says about this process ---- */
/** The process's threads, or 0 when /proc cannot say. */
unsigned hg_thread_count(void);
/** This thread's /proc maps, NUL-terminated, in an anonymous mapping of *capacity bytes (the
 *  caller unmaps it), or NULL. */
char *hg_read_maps(size_t *length, size_t *capacity);
/** open(2) of a file under /proc for the shim's own reads, even when the program has every
 *  descriptor its limit allows in use (see hg_proc.c). */
int hg_open_proc(const char *path, int flags);
/** Whether a seccomp filter applies to this process (one it inherited too, which the shim's
 *  filter check never saw), or /proc cannot say: then the shim makes no system call it did not
 *  make before 2026-11-24 (clone, wait4, linkat, access). */
bool hg_seccomp_filtered(void);
/** The process's resident memory in KiB (VmRSS), -1 if unknown. */
long hg_resident_kib(void);
/** One line of the maps: its range, permissions (4 characters), inode and path. */
typedef struct {
    uintptr_t start, stop;
    const char *perms;
    unsigned long inode;
    const char *path; /* up to the line's end, path_length bytes */
    size_t path_length;
} hg_maps_line_t;
/** Parses the line at `line`; returns the next one, or NULL after the last. */
const char *hg_parse_maps_line(const char *line, hg_maps_line_t *out);

/* The modules whose RTLD_DEEPBIND bindings the shim checks (hg_bypass.c); the module table
 * itself grows (hg_modules.c). */
#define HG_MAX_MODULES 4096

/* ---- hg_bypass.c: libraries bound to glibc's allocator past the shim (RTLD_DEEPBIND) ---- */
enum { HG_BYPASS_NONE, HG_BYPASS_FOUND, HG_BYPASS_REBOUND };
struct dl_phdr_info;
void hg_bypass_init(void);
/** Notes a library loaded after start-up (inside dl_iterate_phdr's callback). */
void hg_bypass_note(const struct dl_phdr_info *info, uint32_t module);
/** Rebinds the noted slots of this library that hold glibc's entry points to the shim's
 *  (inside dl_iterate_phdr's callback). */
void hg_bypass_check(const struct dl_phdr_info *info);
/** Whether any library's slots still wait to be checked. */
bool hg_bypass_pending(void);
void hg_bypass_forget(uint32_t module);
/** HG_BYPASS_*: whether the module was found bound to glibc's allocator, and rebound. */
int hg_bypass_state(uint32_t module);
void hg_bypass_fork_child(void);

/* ---- hg_guard.c: per-thread re-entrancy guard ---- */
/* Set while the shim itself runs on this thread: allocations made meanwhile (by libunwind,
 * dl_iterate_phdr, the drain thread) are the shim's own and are never recorded. */
extern __thread int hg_guard_depth __attribute__((tls_model("initial-exec")));

/* ---- hg_ring.c: the lock-free MPSC event rings (solo, then shared) ---- */
typedef enum {
    HG_EV_ALLOC = 1,
    HG_EV_FREE,
    HG_EV_REALLOC_FREE, /* the old half of a realloc: recorded before glibc sees it */
    HG_EV_REALLOC,      /* the new half: ptr is the result (0 when glibc refused), old_ptr the old block */
    HG_EV_MODULE_LOAD,
    HG_EV_MODULE_UNLOAD,
} hg_event_kind_t;

typedef struct {
    uint32_t kind;       /* hg_event_kind_t */
    uint32_t stack;      /* hg_stack_ref_t of ALLOC/REALLOC, module index of MODULE_* */
    uint64_t ptr;
    uint64_t size;
    uint64_t old_ptr;    /* REALLOC only */
} hg_event_t;

/** Producer side (any thread): publishes one event, waiting while its ring is full. */
void hg_ring_push(uint32_t kind, uint32_t stack, uint64_t ptr, uint64_t size, uint64_t old_ptr);
/** Maps the solo ring's first pages (see hg_ring.c); call before the drain thread exists. */
void hg_ring_populate_start(void);
/** Consumer side (the drain thread only): copies up to max published events, in an order
 *  that keeps each block's events and each thread's events in the order they happened. */
size_t hg_ring_pop(hg_event_t *out, size_t max);
/** Consumer side in a fork child: takes the published events other (now gone) threads
 *  left behind, then resets the rings for the child's own events. */
size_t hg_ring_reset_in_child(void (*apply)(const hg_event_t *));
/** In a fork child, before anything else: pushes under way on the parent's other threads are not. */
void hg_ring_forget_pushes_in_child(void);
uint64_t hg_ring_claimed(void);
/** The positions claimed so far in both rings, and whether the drain took every one of them. */
typedef struct {
    uint64_t solo, shared;
} hg_ring_mark_t;
void hg_ring_mark(hg_ring_mark_t *mark);
bool hg_ring_consumed_past(const hg_ring_mark_t *mark);
/** Whether events go to the shared ring: a second thread has recorded. */
bool hg_ring_routes_to_shared(void);
uint64_t hg_ring_consumed(void);
/** The bytes of ring the drain has yet to take (claimed, published or not), both rings. */
uint64_t hg_ring_backlog_bytes(void);
uint64_t hg_ring_full_waits(void);
uint64_t hg_ring_lost(void);
void hg_ring_set_consumer_running(bool running);

/* ---- hg_in_flight.c: what a fork may cut short on the parent's other threads ---- */
typedef enum { HG_IN_FLIGHT_NONE, HG_IN_FLIGHT_PUSHED, HG_IN_FLIGHT_CANCELLED } hg_in_flight_how_t;
/* The record's block addresses are kept complemented (the top bits set), as the unwinder keeps
 * its words: the exit-time scan reads threads' TLS as roots, and a block's address left there
 * made it still reachable (a thread's DTV in `threads`, memcheck's possibly lost). */
typedef struct hg_in_flight {
    struct hg_in_flight *self; /* set once registered: tells a record from other memory */
    hg_event_t pushing;        /* an ALLOC or REALLOC on its way to the ring or the table (kind 0: none);
                                * ptr and old_ptr complemented */
    uint64_t freeing;          /* a free recorded and not yet made by glibc, complemented */
    uint64_t size;             /* CANCELLED: its held block's size and stack */
    uint32_t stack;
    uint32_t how;              /* hg_in_flight_how_t of `freeing`, stored after it */
    uint64_t reallocating;     /* a realloc's old block from before its REALLOC_FREE is pushed until
                                * its REALLOC is, complemented (0: none) */
} hg_in_flight_t;
extern __thread hg_in_flight_t hg_in_flight __attribute__((tls_model("initial-exec")));
/** The records the registry finds: one a thread, of threads alive at once. */
#define HG_IN_FLIGHT_THREADS 1024
/** At start: the key whose destructor gives a thread's entry back at its exit. */
void hg_in_flight_init(void);
void hg_in_flight_register(void);
/* Only while several threads record (the shared ring's route): a fork cuts short only other
 * threads, and a single-threaded program pays nothing. */
/** Before a free or a realloc's old half is recorded, until glibc has made it. */
static inline void hg_in_flight_free_begin(uint64_t ptr) {
    if (!hg_ring_routes_to_shared()) return;
    if (HG_UNLIKELY(hg_in_flight.self == NULL)) hg_in_flight_register();
    hg_in_flight.freeing = ~ptr;
    atomic_signal_fence(memory_order_seq_cst);
    hg_in_flight.how = HG_IN_FLIGHT_PUSHED;
}
static inline void hg_in_flight_free_end(void) { hg_in_flight.how = HG_IN_FLIGHT_NONE; }
/** A realloc between its two halves, for the exit (hg_apply_frees_under_way): from before its
 *  REALLOC_FREE is pushed until its REALLOC is; after _free_begin, which registers the thread. */
static inline void hg_in_flight_realloc_begin(uint64_t ptr) {
    if (hg_in_flight.self == NULL) return;
    hg_in_flight.reallocating = ~ptr;
    atomic_signal_fence(memory_order_seq_cst);
}
static inline void hg_in_flight_realloc_end(void) {
    atomic_signal_fence(memory_order_seq_cst);
    hg_in_flight.reallocating = 0;
}
/** Before an ALLOC or REALLOC is pushed or held back; true if recorded (then call _pushed). */
static inline bool hg_in_flight_pushing(uint32_t kind, uint32_t stack, uint64_t ptr, uint64_t size, uint64_t old_ptr) {
    if (!hg_ring_routes_to_shared()) return false;
    if (HG_UNLIKELY(hg_in_flight.self == NULL)) hg_in_flight_register();
    hg_in_flight.pushing.stack = stack;
    hg_in_flight.pushing.ptr = ~ptr;
    hg_in_flight.pushing.size = size;
    hg_in_flight.pushing.old_ptr = ~old_ptr;
    atomic_signal_fence(memory_order_seq_cst);
    hg_in_flight.pushing.kind = kind;
    atomic_signal_fence(memory_order_seq_cst);
    return true;
}
static inline void hg_in_flight_pushed(void) {
    atomic_signal_fence(memory_order_seq_cst);
    hg_in_flight.pushing.kind = 0;
}
/** The records of the other threads that have something under way: in a fork child, the
 *  parent's, which the fork cut short; at exit, those still running. */
size_t hg_in_flight_of_others(hg_in_flight_t *out, size_t max);
/** In a fork child, once their records are read: the parent's other threads are not here (the
 *  exit would take their frees, still under way in the copy, for the child's). */
void hg_in_flight_forget_others(void);

/* ---- hg_stacks.c: capture and deduplication ---- */
typedef uint32_t hg_stack_ref_t; /* offset of the stack in the arena, in 8-byte units; 0 = none */

/* ---- hg_holdback.c: allocations held back from the ring while several threads record ---- */
/* Set at the first hold, for good (a fork child inherits it with the table). */
extern _Atomic bool hg_holdback_used;
static inline bool hg_holdback_in_use(void) { return atomic_load_explicit(&hg_holdback_used, memory_order_relaxed); }
/** Producer side, for an ALLOC once events go to the shared ring (the caller has asked):
 *  true when the block is held back instead of pushed. */
bool hg_holdback_hold(uintptr_t ptr, uint64_t size, hg_stack_ref_t stack);
/** Producer side, before a free: true when the block was held back (the pair is counted, and
 *  no FREE is pushed). */
bool hg_holdback_cancel(uintptr_t ptr);
/** The consumer's count of every slot's pairs cancelled since it last counted (the drain's
 *  visits count them too), added to *pairs and *bytes. */
void hg_holdback_count_all(uint64_t *pairs, uint64_t *bytes);
/** Whether the block is held back now. */
bool hg_holdback_holds(uintptr_t ptr);
/** Producer side, before a realloc's REALLOC_FREE: pushes the ALLOC of a block held back. */
void hg_holdback_release(uintptr_t ptr);
/** Producer side, once the event of a free or realloc is pushed: ends a wait for a taken slot. */
void hg_holdback_waited(void);
/** Whether a producer waited for a taken slot and has not pushed its event yet. */
bool hg_holdback_producers_waiting(void);
typedef void (*hg_holdback_apply_t)(uintptr_t ptr, uint64_t size, hg_stack_ref_t stack);
/** The drain's visit: adds the pairs cancelled since the last visit to *pairs and *bytes, and
 *  applies the blocks held since before the last visit. */
void hg_holdback_tend(hg_holdback_apply_t apply, uint64_t *pairs, uint64_t *bytes);
/** At exit, on the consumer: takes every slot (consume() empties the ring while it waits for
 *  one), counting its pairs; after the ring is consumed past that point, apply_taken applies the
 *  blocks and lets the slots go. */
void hg_holdback_take_all(void (*consume)(void), uint64_t *pairs, uint64_t *bytes);
void hg_holdback_apply_taken(hg_holdback_apply_t apply, uint64_t *pairs_late, uint64_t *bytes_late);

typedef struct {
    uint64_t hash;
    uint32_t depth;
    /* Owned by the drain thread: the stack's id in the trace, valid while trace_generation is
     * the drain's current generation (a fork child starts a new one instead of walking them). */
    uint32_t trace_id;
    uint32_t trace_generation;
    uint32_t unused;
    uintptr_t ips[];
} hg_stack_t;

void hg_stacks_init(void);
/* A thread's registers at one point of its code, where an unwind starts. */
typedef struct {
    uintptr_t ip, sp, rbp;
} hg_regs_t;

/** Unwinds the stack from `start` (the registers of the entry point, malloc or another, at its
 *  call to hg_record: frame 0 is the entry point) and returns its deduplicated id. When
 *  hg_stacks_seen_first is set, the caller has already asked hg_seen_find, in vain. */
hg_stack_ref_t hg_stacks_capture(const hg_regs_t *start);
/** Whether a capture starts with hg_seen_find, in the caller (the default unwind mode, once the
 *  stacks' table exists): most captures end there, and asking it from hg_record saves a call
 *  level on every one of them. */
extern bool hg_stacks_seen_first;
hg_stack_t *hg_stacks_get(hg_stack_ref_t ref);
/** Keeps the stacks' storage out of the exit-time scan's roots (it holds no heap pointers). */
void hg_stacks_exclude_from_scan(void);
/** Above every reference given so far (the arena's end): references grow in the order stacks were
 *  first captured (each new stack is laid after the others). */
hg_stack_ref_t hg_stacks_reference_limit(void);
/** Captures given reference 0 because their stack was new and there was no room to keep it (the
 *  limit of distinct stacks, HEAPGATE_MAX_STACKS, was reached): since the process started,
 *  a fork child's count includes its parent's up to the fork. */
uint64_t hg_stacks_unkept_count(void);
extern uint32_t hg_stacks_max_depth;

/* Stack hashes take the frames from the outermost in: the unwinder keeps the hash of every
 * outer frame it remembers, so a capture that reuses them hashes only its fresh frames. */
#define HG_STACK_HASH_SEED 0xcbf29ce484222325ull
static inline uint64_t hg_stack_hash_add(uint64_t state, uintptr_t ip) {
    state = (state ^ ip) * 0x100000001b3ull;
    return state ^ (state >> 29);
}
static inline uint64_t hg_stack_hash_finish(uint64_t state, uint32_t depth) { return hg_stack_hash_add(state, depth); }

/* hg_unwind.c: the fast unwinder behind hg_stacks_capture */
typedef struct {
    /* The frames are those of this thread's previous capture, which hg_unwind_tag named
     * same_tag (0: they are not); ips past the innermost frames are then left unset. */
    uint32_t same_tag;
    bool hashed;   /* hash holds the stack hash state (before hg_stack_hash_finish) of all ips */
    uint64_t hash;
} hg_unwound_t;

void hg_unwind_init(void);
/** Keeps the unwinder's rule table and the thread mappings kept for the next threads out of
 *  the exit-time scan's roots. */
void hg_unwind_exclude_from_scan(void);
/** Like unw_backtrace, but from `start`: ips[0] is start->ip, then the return addresses of
 *  the frames above it; ips has room for max_frames + 3 entries. */
int hg_unwind_backtrace(const hg_regs_t *start, void **ips, int max_frames, hg_unwound_t *out);
/** Names (0: no name) the frame list that the capture just made on this thread produced, and
 *  keeps it among the stacks seen (hg_seen.c) when it holds all `count` recorded frames. */
void hg_unwind_tag(uint32_t tag, int count);

/* RBP is an ordinary register in code built without frame pointers: it can hold a pointer to a
 * heap block. The unwinder's memories are read as roots by the exit-time leak scan, so RBP
 * values are kept masked: no remembered value looks like a heap pointer and keeps a lost block
 * "reachable". */
#define HG_RBP_MASK ((uintptr_t)0xa5a5a5a5a5a5a5a5ull)
static inline uintptr_t hg_hide(uintptr_t rbp) { return rbp ^ HG_RBP_MASK; }
static inline uintptr_t hg_reveal(uintptr_t hidden) { return hidden ^ HG_RBP_MASK; }

/* ---- hg_eh_frame.c: a return address's unwind rule, read from its object's .eh_frame ---- */
/* A rule packed into 64 bits; 0 means "not known yet". */
#define HG_RULE_CFA_RSP 1u  /* CFA = RSP + cfa_off */
#define HG_RULE_CFA_RBP 2u  /* CFA = RBP + cfa_off */
#define HG_RULE_LAST 3u     /* the return address (or RBP) is undefined: the outermost frame */
#define HG_RULE_FALLBACK 4u /* not a standard frame: let unw_backtrace do this capture */
#define HG_RULE_KIND 7u
#define HG_RULE_RBP_SAVED 8u /* the caller's RBP is at CFA + rbp_off */

static inline uint64_t hg_rule_make(uint32_t kind, int32_t cfa_off, bool rbp_saved, int16_t rbp_off) {
    return kind | (rbp_saved ? HG_RULE_RBP_SAVED : 0) | ((uint64_t)(uint16_t)rbp_off << 16) |
           ((uint64_t)(uint32_t)cfa_off << 32);
}
static inline uint32_t hg_rule_kind(uint64_t rule) { return (uint32_t)rule & HG_RULE_KIND; }
static inline int32_t hg_rule_cfa_off(uint64_t rule) { return (int32_t)(uint32_t)(rule >> 32); }
static inline int16_t hg_rule_rbp_off(uint64_t rule) { return (int16_t)(uint16_t)(rule >> 16); }
/** The rule of the frame whose return address is ip (the row of ip - 1, inside the call):
 *  HG_RULE_FALLBACK for anything but a standard frame, or when the unwind info is missing. */
uint64_t hg_rule_derive(uintptr_t ip);
/** hg_modules.c: the GNU build-id note among `size` bytes of ELF notes: its descriptor's
 *  offset and size; false when there is none (or the notes end early). */
bool hg_build_id_in_notes(const uint8_t *notes, uint64_t size, uint64_t *desc, uint32_t *desc_size);
/** hg_debug_frame.c: the FDE in its object's .debug_frame section that may cover pc (the last
 *  one starting at or before it), the section, and the object's load bias; NULL when the
 *  object has no such section. */
const uint8_t *hg_debug_frame_fde(uintptr_t pc, const uint8_t **section, size_t *size, uintptr_t *bias);
/** In a fork child: a module's load that a parent's thread was making is forgotten. */
void hg_debug_frame_fork_child(void);

/* ---- hg_seen.c: stacks a thread captured before, found again by their first frame ---- */
/* A complete frame list as the unwinder keeps it: frame i's IP, SP and RBP check (the word at
 * rbp_at[i] must be the complement of rbp_not[i]; rbp_at[i] is `unchecked`, a dummy word,
 * where nothing is checked), for i in [0, count). */
typedef struct {
    const uintptr_t *ip, *sp, *rbp_at, *rbp_not;
    uintptr_t unchecked;
    uint32_t count;
    uintptr_t rbp0; /* frame 0's, hidden; it must match when rbp0_matters */
    bool rbp0_matters;
    bool low; /* the stack ended where the word at low_slot was low_value (below 0x4000) */
    uintptr_t low_slot, low_value;
} hg_seen_list_t;

/** The bytes a thread's seen lists take, inside its unwinder mapping (hg_unwind.c), which
 *  hands them over, zeroed, when it makes the mapping and takes them back at thread exit. */
extern const size_t hg_seen_bytes;
void hg_seen_attach(void *lists);
void hg_seen_detach(void);
/** The stack (its reference; 0: none) of an earlier capture on this thread whose frame 0 is
 *  start's and whose every checked word still holds the value read then; *count its depth. */
uint32_t hg_seen_find(const hg_regs_t *start, uint32_t *count);
void hg_seen_keep(const hg_seen_list_t *list, uint32_t ref);

/* ---- hg_lifecycle.c: the fork handlers; hg_atfork_order.c: registered before any other ---- */
void hg_fork_prepare(void);
void hg_fork_parent(void);
void hg_fork_child(void);
void hg_atfork_register_first(void);

/* ---- hg_loader_lock.c: the loader's list lock, held across fork ---- */
/** Finds the lock dl_iterate_phdr takes (once, at start); without it the others do nothing. */
void hg_loader_lock_find(void);
void hg_loader_lock_hold(void);
void hg_loader_lock_release(void);
void hg_loader_lock_reset_in_child(void);
/** The fork's hold: never a wait for a thread walking the list (hg_loader_lock.c). */
void hg_loader_lock_hold_for_fork(void);
void hg_loader_lock_release_after_fork(void);

/* ---- hg_modules.c: loaded objects ---- */
#define HG_MAX_SEGMENTS 16
typedef struct {
    uintptr_t base;
    const char *path;
    uint8_t build_id[64];
    uint32_t build_id_len;
    uint32_t segment_count;
    uint64_t seg_vaddr[HG_MAX_SEGMENTS];
    uint64_t seg_memsz[HG_MAX_SEGMENTS];
    uint32_t seg_flags[HG_MAX_SEGMENTS]; /* p_flags: PF_X marks code (hg_vtables.c) */
    bool loaded;
    bool seen; /* found by the current rescan (hg_modules.c, under its lock) */
    bool in_child_trace; /* restated at the start of a fork child's trace (hg_drain.c) */
} hg_module_t;

void hg_modules_init(void);
/** Cheap check (one dl_iterate_phdr step); rescans and pushes MODULE_* events when the set changed. */
void hg_modules_refresh_if_changed(void);
/** Checks the GOT slots of libraries loaded since start-up once more (at exit; hg_bypass.c). */
void hg_modules_check_bypass(void);
const hg_module_t *hg_modules_get(uint32_t index);
void hg_modules_note_in_child_trace(uint32_t index);
uint32_t hg_modules_count(void);
void hg_modules_fork_prepare(void);
void hg_modules_fork_parent(void);
void hg_modules_fork_child(void);

/* ---- hg_liveset.c: blocks in use, kept by the drain thread ---- */
typedef struct {
    uint64_t ptr;
    uint64_t size;
    hg_stack_ref_t stack;
    uint32_t unused;
} hg_block_t;

/** Makes room for `blocks` more blocks now, so that none of the next `blocks` inserts grows
 *  the table; false if it could not (then use no homes until the next reserve). */
bool hg_liveset_reserve(size_t blocks);
/** ptr's home slot, for the insert or remove of ptr before the next reserve; also starts
 *  loading it: the drain thread asks a few events ahead of applying them, so that the cache
 *  misses of a large table overlap instead of adding up. Only after a reserve that succeeded. */
size_t hg_liveset_home(uint64_t ptr);
/** What insert and remove take when the caller has no home for ptr: they compute it. */
#define HG_LIVESET_NO_HOME SIZE_MAX
bool hg_liveset_insert(uint64_t ptr, uint64_t size, hg_stack_ref_t stack, size_t home);
/** Removes ptr; copies the block to out when out is not null. False if ptr was not in use. */
bool hg_liveset_remove(uint64_t ptr, hg_block_t *out, size_t home);
/** A 32-bit size field's mark for a block of 4 GiB or more, whose size the live set keeps in
 *  a short list (hg_liveset_large_size). */
#define HG_SIZE_ELSEWHERE UINT32_MAX
/** A block's size as a 32-bit size field holds it (the live set's entries, the scan's blocks). */
static inline uint32_t hg_size_field(uint64_t size) { return size < HG_SIZE_ELSEWHERE ? (uint32_t)size : HG_SIZE_ELSEWHERE; }
/** The size of a block of 4 GiB or more, by its address; readable after hg_liveset_release. */
uint64_t hg_liveset_large_size(uint64_t ptr);
/** Tells the scan that the table's mappings are not roots (they hold every block's address). */
void hg_liveset_exclude_from_scan(void);
void hg_liveset_for_each(void (*fn)(const hg_block_t *));
size_t hg_liveset_count(void);
/** Hands the table's mapping (and its size, in *bytes) to the exit-time scan, which has copied
 *  the blocks out and sorts them through it: memory already in place, where a fresh mapping of
 *  that size would be faulted in and zeroed page by page. The live set is empty afterwards,
 *  but for the list of sizes of 4 GiB and more (hg_liveset_large_size). NULL when there is no
 *  table. */
void *hg_liveset_release(size_t *bytes);

/* ---- hg_writer.c: the trace file ---- */
/** Starts this image's trace in `dir` (HEAPGATE_OUT): the header goes into the buffer, and the
 *  file is created by the first flush. */
void hg_writer_open(const char *dir, uint32_t flags);
void hg_writer_bytes(const void *data, size_t length);
void hg_writer_flush(void);

/* The buffer, shared with the inline encoders below: the drain thread writes a few varints
 * per event, and a call per field (with the buffer's state reloaded each time) cost it about
 * as much as the rest of the event's handling. */
#define HG_WRITE_BUFFER (1u << 20)
#define HG_MAX_VARINT 10
extern unsigned char hg_write_buffer[HG_WRITE_BUFFER];
extern struct HG_OWN_LINES hg_write_cursor {
    size_t buffered;
} hg_write_cursor;

/** Makes room for a record of up to `bytes` bytes; the encoders below then need no checks. */
static inline void hg_writer_reserve(size_t bytes) {
    if (hg_write_cursor.buffered + bytes > HG_WRITE_BUFFER) hg_writer_flush();
}

static inline void hg_writer_put_uv(uint64_t value) {
    unsigned char *out = hg_write_buffer + hg_write_cursor.buffered;
    while (value >= 0x80) {
        *out++ = (unsigned char)(value | 0x80);
        value >>= 7;
    }
    *out++ = (unsigned char)value;
    hg_write_cursor.buffered = (size_t)(out - hg_write_buffer);
}

static inline void hg_writer_put_sv(int64_t value) {
    hg_writer_put_uv(((uint64_t)value << 1) ^ (uint64_t)(value >> 63));
}

static inline void hg_writer_put_byte(uint8_t byte) { hg_write_buffer[hg_write_cursor.buffered++] = byte; }

static inline void hg_writer_byte(uint8_t byte) {
    hg_writer_reserve(1);
    hg_writer_put_byte(byte);
}

static inline void hg_writer_uv(uint64_t value) {
    hg_writer_reserve(HG_MAX_VARINT);
    hg_writer_put_uv(value);
}

static inline void hg_writer_sv(int64_t value) {
    hg_writer_reserve(HG_MAX_VARINT);
    hg_writer_put_sv(value);
}
/* A byte string of the format: uv length, then the bytes. */
static inline void hg_writer_string(const void *data, size_t length) {
    hg_writer_uv(length);
    hg_writer_bytes(data, length);
}

/** The file offset the next byte will have. */
uint64_t hg_writer_offset(void);
void hg_writer_close(void);
/** Sets `flag` in the header's flags, in place: the header went out with the first bytes. */
void hg_writer_set_header_flag(uint32_t flag);
/** Whether this process opened the trace file (not a vfork child running on its parent's memory). */
bool hg_writer_in_owner(void);
/** The trace's descriptor moved from `from` to `to` (-1: lost), the program taking `from` over;
 *  called with the descriptors' lock held (hg_descriptor_lock), as the writer's calls are. */
void hg_writer_descriptor_moved(int from, int to);
/** Forgets the parent's file in a fork child without touching the parent's descriptor state. */
void hg_writer_forget_in_child(void);

/* ---- hg_descriptors.c: the shim's own descriptors ---- */
/** Where the shim's own descriptor goes (the trace file): 1000, out of the range programs
 *  use; with a descriptor limit (RLIMIT_NOFILE) of 1000 or less, the top of the range,
 *  so that the program's own descriptors get the numbers they get natively. */
int hg_descriptor_floor(void);
/** Moves `fd` (close-on-exec) to the lowest free descriptor at or above the floor and returns
 *  it, kept from the program (below); where it cannot be moved, returns `fd` where it is. */
int hg_descriptor_raise(int fd);
/** Whether fd is a descriptor hg_descriptor_raise kept, still holding the same file (a program
 *  may close one with a raw system call and reuse the number). The program's close,
 *  close_range and closefrom leave such a descriptor open. */
bool hg_descriptor_is_ours(int fd);
/** Closes fd if it is ours (above), and stops keeping it. */
void hg_descriptor_close(int fd);
/** What hg_descriptor_lock changed on the calling thread, for hg_descriptor_unlock to restore. */
typedef struct {
    sigset_t signals;
    int cancel_state;
} hg_descriptor_hold_t;
/** The lock between moves of the shim's descriptor (the program's dup2 or dup3 onto it), the
 *  writer's system calls on it and a fork: signals blocked and cancellation off while held. */
void hg_descriptor_lock(hg_descriptor_hold_t *hold);
void hg_descriptor_unlock(const hg_descriptor_hold_t *hold);
void hg_descriptors_fork_prepare(void);
void hg_descriptors_fork_parent(void);
void hg_descriptors_fork_child(void);

/* ---- hg_unwind_readable.c: libunwind's memory check, without its pipe ---- */
/** Finds libunwind's code and initialises libunwind, which asks for no pipe after. Once, early. */
void hg_unwind_readable_init(void);
/** Where libunwind is loaded (its dlpi_addr), or 0 before hg_unwind_readable_init found it. */
uintptr_t hg_libunwind_load_address(void);
/** Whether a call returns into libunwind's code. */
bool hg_called_from_libunwind(const void *return_address);
/** libunwind's check of one byte, as its pipe's write answered: 1, or -1 with errno EFAULT. */
long hg_unwind_check_readable(uintptr_t address);

/* ---- hg_drain.c: the thread that moves events from the ring to the trace ---- */
void hg_drain_start(void);
/** What the exiting thread holds where exit() was called: the caller's stack pointer, from
 *  which its stack counts as a root, and its callee-saved registers there, which are roots too:
 *  a pointer the caller kept in one is saved only in exit's frames, below that stack pointer,
 *  where memcheck finds it (it scans those frames whole, stale slots and all). */
#define HG_EXIT_REGISTERS 6 /* rbx, rbp, r12-r15 */
typedef struct {
    uintptr_t stack_floor;
    uint64_t registers[HG_EXIT_REGISTERS];
    size_t register_count;
} hg_exit_frame_t;
/** Drains everything claimed so far, runs the leak scan (the calling thread's stack counts
 *  from exit->stack_floor up), writes STATS and END, closes the trace. Idempotent. Only for the
 *  process whose trace it is: callers check hg_drain_in_owner() first. */
void hg_drain_finish(int exit_status, const hg_exit_frame_t *exit);
/** The drain thread's thread id (0 before it first ran): the exit-time scan leaves it out of the
 *  program's threads, since at exit it is not waited for (hg_drain_take_over). */
pid_t hg_drain_thread_id(void);
/** A monotonic clock in milliseconds, coarse (the kernel's tick) and cheap. */
uint64_t hg_coarse_ms(void);
/** Whether the drain thread is missing from this process, which has its memory: a child made by
 *  glibc's clone() without CLONE_VM, which runs no fork handlers. */
bool hg_drain_thread_missing(void);
/** Such a process records nothing more: its hooks forward, its exit and forks leave the
 *  shim's state alone. */
void hg_drain_disown(void);
/** A producer waiting on a full ring: cuts the drain thread's nap if it is a long one. */
void hg_drain_wake_for_room(void);
/** The drain thread's descriptor (its pthread_t, at the top of its stack), or NULL when there is
 *  no drain thread or it was joined. */
const void *hg_drain_descriptor(void);
/** Whether there is nothing left to finish: the trace is finished (exit, stopped for a
 *  sandbox, or no drain thread could start) or none was ever started (tracing disabled).
 *  Answered without a system call. */
bool hg_drain_finished(void);
/** Whether the calling process has a trace to finish and is the one whose trace it is, not a
 *  vfork child running on its parent's memory (which must leave the shim's state untouched).
 *  A finished process is told no without a system call (see hg_drain_stop_for_sandbox). */
bool hg_drain_in_owner(void);
/** Called by a push that finds no consumer: starts a fork child's deferred trace once it is due. */
void hg_drain_start_if_due(void);
/** The program is about to install a seccomp filter (hg_sandbox.c): unless `filter` (its
 *  struct sock_fprog, or NULL for strict mode) lets every system call of the shim's through,
 *  applies and writes what the rings hold, ends the drain thread and leaves the trace cut and
 *  marked; from then on nothing is recorded. */
void hg_drain_stop_for_sandbox(const void *filter);
/** Whether the seccomp filter `program` (a struct sock_fprog in the program's memory) lets
 *  every system call the shim may make through, whatever their arguments, or cannot be
 *  installed at all (unreadable, a length the kernel refuses) (hg_filter_check.c). */
bool hg_filter_lets_shim_through(const void *program);
/** Set when the main thread leaves by pthread_exit (hg_lifecycle.c): from then on the drain
 *  thread watches for being the last thread (see hg_drain_main). */
extern _Atomic bool hg_main_thread_gone;
/** Stops the drain thread after it applied every event claimed so far (for a call that needs
 *  the process single-threaded, or that glibc makes every thread take); false when there was
 *  none to stop. Called inside a program's call: keeps errno and raises the guard itself. */
bool hg_drain_suspend(void);
/** Starts the drain thread again after hg_drain_suspend(). */
void hg_drain_resume(void);

/* ---- hg_sandbox.c and hg_namespaces.c: system calls the shim makes for the program ---- */
/** The system call itself, not glibc's syscall() (which the shim exports): -1 and errno for a
 *  result in -4095..-1, as glibc's wrappers return. */
long hg_system_call(long number, long a, long b, long c, long d, long e, long f);
/** unshare or setns, with the drain thread stopped where the kernel wants one thread. */
long hg_namespace_call(long number, long a, long b);
/** Writes one SNAPSHOT_BLOCK (and the STACK it needs); kind is 0 or 1 + HG_KIND_*, leader
 *  the address it is counted under (indirect blocks only). */
void hg_drain_write_block(uint64_t ptr, uint64_t size, hg_stack_ref_t stack, unsigned kind, uint64_t leader);
/** Writes the STACK record of ref unless this section of the trace has it; its id there. */
uint32_t hg_drain_write_stack(hg_stack_ref_t ref);

/* ---- hg_stack_order.c: a restatement of blocks defines their stacks in first-seen order ---- */
/** Starts the exit snapshot, which follows an event stream whose stack ids were those of
 *  `stream_generation`, stream_count of them: its stacks go in the order of those ids. */
void hg_stack_order_begin_by_stream_id(uint32_t stream_generation, uint32_t stream_count);
/** Starts a fork child's inherited blocks: their stacks go in the order of their references. */
void hg_stack_order_begin_by_reference(void);
/** Notes a block's stack, once per block, before any of the restatement's blocks is written. */
void hg_stack_order_note(hg_stack_ref_t ref);
/** Notes the stacks of every block in the live set (where no other pass over them is made). */
void hg_stack_order_note_liveset(void);
/** Writes the noted stacks' STACK records, in the order begun, and ends. */
void hg_stack_order_write(void);
/** Ends a restatement without writing (its table unmapped). */
void hg_stack_order_end(void);

/* ---- hg_exit_hold.c: the program's other threads wait while the exit classifies ---- */

/** From the exit's take-over until its blocks are classified (at most 100 ms): other threads wait
 *  at their next malloc-family call, before glibc frees anything. */
void hg_exit_hold_begin(void);
void hg_exit_hold_end(void);
/** Called by a thread that finds recording finished: waits while the hold lasts. */
void hg_exit_hold_wait(void);

/* ---- hg_leakscan.c: the exit-time classification ---- */
/** Keeps [start, start+length) out of the scan's roots (the shim's own memory). */
void hg_leakscan_exclude(const void *start, size_t length);
/** Classifies the blocks in use and writes them as SNAPSHOT_BLOCK records, then SCAN_DONE.
 *  False when it could not (no memory for its tables): nothing was written, and the live set
 *  still holds the blocks. Once it has taken the live set's table (hg_liveset_release) it
 *  always writes them, unclassified (kind 0, no SCAN_DONE) if its page index cannot be made. */
bool hg_leakscan_run(const hg_exit_frame_t *exit);
/** Where glibc puts a thread's descriptor: [thread pointer, stack end) of a thread we own. */
void hg_leakscan_note_thread_descriptor(const void *stack_end, const void *thread_pointer);
void hg_drain_fork_prepare(void);
void hg_drain_fork_parent(void);
void hg_drain_fork_child(void);

/* ---- hg_own_memory.c ---- */
/** Copies `bytes` of our own memory at `from`; false, without faulting, when any of it cannot
 *  be read (unmapped, PROT_NONE). */
bool hg_read_own(void *to, uintptr_t from, size_t bytes);
/** Writes our own memory with process_vm_writev: false where it is not writable. */
bool hg_write_own(uintptr_t to, const void *from, size_t bytes);
/** Writes bytes to pages that are `protection` (read-only code or data): writable for the
 *  store, then `protection` again. False when they cannot be made writable. */
bool hg_write_protected(uintptr_t to, const void *from, size_t bytes, int protection);

/* ---- hg_glibc_heap.c: glibc's memory around a block ---- */
/** The range glibc's malloc owns around the block at `block` (its thread arena's heap in use,
 *  its mmap'd chunk's mapping, or for the main arena the whole mapping), inside the mapping
 *  [map_start, map_end) that holds it; false when its header does not show a known layout. */
bool hg_glibc_region_of(uintptr_t block, uint64_t size, uintptr_t map_start, uintptr_t map_end, uintptr_t *from,
                        uintptr_t *to);
/** The first thread arena heap in [from, end), told by its heap_info at a 64 MiB boundary: its
 *  start, and in `to` the end of its in-use part (at most `end`); 0 if there is none. For heaps
 *  that hold no block, which hg_glibc_region_of cannot be asked about. */
uintptr_t hg_glibc_heap_in(uintptr_t from, uintptr_t end, uintptr_t *to);
/** malloc_usable_size of the block at `block`, from its chunk header read without faulting
 *  (a running thread may unmap a large block meanwhile); false when it cannot be read. */
bool hg_glibc_usable_size(uintptr_t block, uint64_t *usable);

/* ---- hg_vtables.c: C++ objects reached through a secondary base ---- */
/** Notes the loaded modules' images, where vtables live (before the scan's marking). */
void hg_vtables_prepare(void);
/** memcheck's multipleinheritance heuristic: whether a block's first word and the word an
 *  interior pointer points at (`pointed_word`) both look like vtable addresses. */
bool hg_is_secondary_base(uint64_t first_word, uint64_t pointed_word);

/* ---- hg_lifecycle.c ---- */
typedef enum { HG_OFF = 0, HG_RECORDING, HG_FINISHED } hg_state_t;
extern _Atomic int hg_state;
const char *hg_getenv(const char *name);
void hg_lifecycle_start(void);

#endif
