/*
 * A fast x86-64 unwinder for allocation stacks. Its result is always exactly what
 * unw_backtrace would return (tested with HEAPGATE_UNWIND=verify); whatever it does not handle
 * goes to unw_backtrace, which stays the reference.
 *
 * Layer 1, per-IP rules. For the frame shape that covers nearly all compiled code (libunwind's
 * "standard frame": CFA = RSP or RBP plus a constant, return address at CFA-8, RBP unchanged
 * or saved at CFA+n), the rule of a return address is read once from its object's .eh_frame
 * (hg_eh_frame.c) and kept in a global insert-only table. A step is then
 * one table look-up and one or two loads. Anything else (signal frames, CFA expressions, code
 * without unwind info, stack realignment) sends the whole capture to unw_backtrace.
 *
 * Layer 2, per-thread reuse of the outer frames. A step is a function of the frame's state
 * (IP, SP, and RBP where an outer rule will use it) and of the stack words it reads (the
 * return-address slot, the RBP save slot). Each thread remembers the states and the words
 * read by its last fast unwind. When a new unwind reaches a frame whose state equals a
 * remembered one, the remembered outer frames are exactly those a full unwind would produce,
 * provided every word they read still holds the value read then: checking that costs one or
 * two loads per frame and no look-up. Nothing about what ran in between is assumed (returns,
 * longjmp, recursion to another depth, a handler on the same stack): states and words are
 * compared, never trusted. Hence no invalidation is needed, on fork or anywhere else.
 *
 * In front of both, hg_stacks_capture asks hg_seen.c, which applies the same argument to the
 * thread's recent complete stacks, found by their first frame: a hit needs no unwind at all.
 * hg_unwind_tag hands it every complete list this unwinder makes.
 *
 * Concurrency: the rule table is shared; a slot's key goes from 0 to an IP once (CAS), and
 * only the thread that claimed it writes the rule, once, with release order; a reader that
 * sees the key but not yet the rule derives the rule itself. The remembered frames are
 * thread-local and used only under the shim's re-entrancy guard, so a signal handler never
 * sees them half-updated. No locks, no syscalls, no allocation.
 */
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#include "hg_internal.h"

/* ---- the shared rule table ---- */

#define HG_RULE_SLOTS (1u << 16)
#define HG_RULE_PROBES 32

typedef struct {
    _Atomic uintptr_t ip;
    _Atomic uint64_t rule;
} hg_rule_slot_t;

static hg_rule_slot_t *hg_rules;

static HG_NOINLINE uint64_t hg_rule_miss(uintptr_t ip, uint32_t index) {
    uint64_t rule = hg_rule_derive(ip);
    for (int probe = 0; probe < HG_RULE_PROBES; probe++, index = (index + 1) & (HG_RULE_SLOTS - 1)) {
        uintptr_t key = atomic_load_explicit(&hg_rules[index].ip, memory_order_acquire);
        if (key == 0) {
            if (atomic_compare_exchange_strong_explicit(&hg_rules[index].ip, &key, ip, memory_order_acq_rel,
                                                        memory_order_acquire)) {
                atomic_store_explicit(&hg_rules[index].rule, rule, memory_order_release);
                break;
            }
        }
        if (key == ip) break; /* another thread is publishing it */
    }
    return rule; /* a full table only costs re-deriving */
}

static inline uint64_t hg_rule_get(uintptr_t ip) {
    uint32_t index = (uint32_t)((ip * 0x9e3779b97f4a7c15ull) >> 48);
    for (int probe = 0; probe < HG_RULE_PROBES; probe++) {
        hg_rule_slot_t *slot = &hg_rules[(index + (uint32_t)probe) & (HG_RULE_SLOTS - 1)];
        uintptr_t key = atomic_load_explicit(&slot->ip, memory_order_acquire);
        if (HG_LIKELY(key == ip)) {
            uint64_t rule = atomic_load_explicit(&slot->rule, memory_order_acquire);
            if (HG_LIKELY(rule != 0)) return rule;
            return hg_rule_derive(ip);
        }
        if (key == 0) break;
    }
    return hg_rule_miss(ip, index);
}

/* ---- stepping ---- */

typedef enum { HG_STEP_OK, HG_STEP_LAST, HG_STEP_LOW, HG_STEP_FALLBACK } hg_step_t;

/* One standard-frame step, as libunwind's fast trace does it (a return address below 0x4000
 * ends the trace unrecorded). *slot gets where RBP was read from (0: unchanged). */
static inline hg_step_t hg_step(hg_regs_t *state, uint64_t rule, uintptr_t *slot) {
    uint32_t kind = hg_rule_kind(rule);
    if (kind == HG_RULE_LAST) return HG_STEP_LAST;
    if (HG_UNLIKELY(kind == HG_RULE_FALLBACK)) return HG_STEP_FALLBACK;
    uintptr_t cfa = (kind == HG_RULE_CFA_RSP ? state->sp : state->rbp) + (intptr_t)hg_rule_cfa_off(rule);
    state->ip = *(const uintptr_t *)(cfa - 8);
    *slot = 0;
    if (rule & HG_RULE_RBP_SAVED) {
        *slot = cfa + (intptr_t)hg_rule_rbp_off(rule);
        state->rbp = *(const uintptr_t *)*slot;
    }
    state->sp = cfa;
    return state->ip < 0x4000 ? HG_STEP_LOW : HG_STEP_OK;
}

/* ---- the remembered unwind ---- */

#define HG_REMEMBER 96 /* frames remembered per thread; deeper stacks reuse this many */
#define HG_FRESH 32    /* inner frames unwound afresh before giving up on meeting a remembered one */

/* How the remembered unwind went on after its last frame. */
typedef enum {
    HG_END_LAST = 0, /* that frame's rule ends the stack */
    HG_END_LOW,      /* its return-address slot, low_slot, held low_value (below 0x4000) */
    HG_END_CUT,      /* it stopped at the depth limit or at HG_REMEMBER: the stack may go on */
} hg_end_t;

/* Frame i (0 = the frame of the start registers: the entry point) is ip, sp, rbp at index
 * HG_REMEMBER - count + i: the outermost frame always sits at the last index. A reuse keeps the
 * outer frames of the last list where they are and writes only its fresh frames below them,
 * so nothing is moved and the outer frames' hashes stay valid.
 * slot is the RBP save slot that the step from the frame read (0: RBP passed on unchanged),
 * and its bit 0 says whether the frame's RBP value matters: whether a rule further out uses it
 * (an RBP-based CFA) before a save slot replaces it. Where it does not, it is neither compared
 * nor checked. */
typedef struct {
    uint32_t count; /* frames [0, count) */
    uint32_t end;   /* hg_end_t */
    uintptr_t low_slot, low_value;
    uint32_t tag;     /* the caller's name (a stack ref) for this frame list; 0 = none */
    uint32_t max;     /* the depth limit of the capture that made it */
    bool tag_pending; /* the capture that just ran replaced the list: hg_unwind_tag names it */
    bool hashed;      /* hash[] is valid: the list holds every frame of its stack (it is not CUT) */
    /* sp has a spare last element that always holds the highest address: a sentinel that
     * ends the search for the first remembered frame not below the current one. */
    uintptr_t ip[HG_REMEMBER], sp[HG_REMEMBER + 1], rbp[HG_REMEMBER] /* hg_hide()n */, slot[HG_REMEMBER];
    /* A frame's RBP check, derived from the above so that reuse compares without branching:
     * the word at rbp_at must be the complement of rbp_not (a zero word and all ones where
     * no check applies). The complement of a user-space address has its top bits set, so,
     * like the masked values, it never looks like a heap pointer to the leak scan. */
    uintptr_t rbp_at[HG_REMEMBER], rbp_not[HG_REMEMBER];
    /* The stack hash (hg_stack_hash_add) of the frames from the outermost in to this one. */
    uint64_t hash[HG_REMEMBER];
    /* the frames of the capture under way, until it meets a remembered one (ips hold the IPs) */
    uintptr_t fresh_sp[HG_FRESH], fresh_rbp[HG_FRESH] /* hg_hide()n */, fresh_slot[HG_FRESH];
    uint64_t fresh_rule[HG_FRESH];
} hg_memory_t;

#define HG_MATTERS ((uintptr_t)1)

/* Each thread's memory is a mapping of its own, made at its first capture and unmapped by a
 * thread-exit destructor; it also holds the thread's stacks seen before (hg_seen.c), behind
 * the memory. Static TLS holds only the pointer: as a 6.4 KiB static TLS variable the memory
 * was taken out of every thread's stack by glibc, and a thread made with the smallest stack
 * (PTHREAD_STACK_MIN, 16 KiB) crashed in its first malloc. */
static __thread hg_memory_t *hg_memory_mine __attribute__((tls_model("initial-exec")));
static __thread bool hg_memory_off __attribute__((tls_model("initial-exec"))); /* failed, or the thread is exiting */
static pthread_key_t hg_memory_key;
static bool hg_memory_key_ok;

/* The memory, then the seen lists at the next cache line. */
#define HG_SEEN_OFFSET ((sizeof(hg_memory_t) + 63) & ~(size_t)63)

static size_t hg_thread_mapping_bytes(void) { return HG_SEEN_OFFSET + hg_seen_bytes; }

/* Mappings of threads that ended, for the next threads to start. A thread's mapping cost it an
 * mmap and an munmap, and the munmap of a process with more than one thread (the drain thread
 * is one) flushes the mapping from the other CPUs' TLBs: 20,000 threads made and joined one
 * after another, each allocating, took 2.5 s traced against 1.0 s natively. Each slot holds
 * one mapping or NULL and is taken or filled by compare-and-swap, so no mapping is handed out
 * twice. */
#define HG_SPARE_MAPPINGS 16
static _Atomic(void *) hg_spare_mappings[HG_SPARE_MAPPINGS];

static void *hg_spare_take(void) {
    for (int i = 0; i < HG_SPARE_MAPPINGS; i++) {
        void *map = atomic_load_explicit(&hg_spare_mappings[i], memory_order_relaxed);
        if (map && atomic_compare_exchange_strong(&hg_spare_mappings[i], &map, NULL)) return map;
    }
    return NULL;
}

static bool hg_spare_put(void *map) {
    for (int i = 0; i < HG_SPARE_MAPPINGS; i++) {
        void *empty = NULL;
        if (atomic_compare_exchange_strong(&hg_spare_mappings[i], &empty, map)) return true;
    }
    return false;
}

/* Every thread mapping that exists, running thread's or spare, so that the exit-time scan
 * leaves them out: it reads none of them as roots. A running thread's holds stack addresses
 * (each remembered frame's SP, the slots it read), which are no heap pointers while stacks are
 * the kernel's or glibc's mappings; but a signal handler's alternate stack, or a coroutine's,
 * is often a block the program malloc'd, and as a root the remembered addresses made that block
 * possibly lost, with every block its stale frames point to, where memcheck says definitely
 * lost (signal_stack). A mapping is listed when it is made and unlisted when it is unmapped;
 * past HG_KNOWN_MAPPINGS at once (256 threads running, with the spares) one stays among the
 * roots. */
#define HG_KNOWN_MAPPINGS (256 + HG_SPARE_MAPPINGS)
static _Atomic(void *) hg_known_mappings[HG_KNOWN_MAPPINGS];

static void *hg_mapping_make(void) {
    void *map = mmap(NULL, hg_thread_mapping_bytes(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                     -1, 0);
    if (map == MAP_FAILED) return NULL;
    for (int i = 0; i < HG_KNOWN_MAPPINGS; i++) {
        void *empty = NULL;
        if (atomic_compare_exchange_strong(&hg_known_mappings[i], &empty, map)) break;
    }
    return map;
}

static void hg_mapping_unmap(void *map) {
    for (int i = 0; i < HG_KNOWN_MAPPINGS; i++) {
        void *held = map;
        if (atomic_compare_exchange_strong(&hg_known_mappings[i], &held, NULL)) break;
    }
    munmap(map, hg_thread_mapping_bytes());
}

/* The rule table (code addresses and rules) and the threads' mappings: never a reference, and
 * 2.1 MiB of the 3.4 MiB that the 8-thread churn's exit scan still read once idle arenas were
 * left out (docs/architecture.md, "Roots"). */
void hg_unwind_exclude_from_scan(void) {
    if (hg_rules) hg_leakscan_exclude(hg_rules, sizeof(hg_rule_slot_t) * HG_RULE_SLOTS);
    for (int i = 0; i < HG_KNOWN_MAPPINGS; i++) {
        void *map = atomic_load(&hg_known_mappings[i]);
        if (map) hg_leakscan_exclude(map, hg_thread_mapping_bytes());
    }
}

static void hg_memory_release(void *memory) {
    hg_seen_detach();
    hg_memory_mine = NULL;
    hg_memory_off = true; /* destructors that run later may still allocate: they unwind plainly */
    if (!hg_spare_put(memory)) hg_mapping_unmap(memory);
}

/* The calling thread's memory; NULL when it cannot have one (then captures unwind plainly). */
static hg_memory_t *hg_memory_get(void) {
    hg_memory_t *m = hg_memory_mine;
    if (HG_LIKELY(m != NULL)) return m;
    if (hg_memory_off || !hg_memory_key_ok) return NULL;
    void *map = hg_spare_take();
    if (map) {
        memset(map, 0, sizeof(hg_memory_t)); /* no frames; hg_seen_attach empties the lists */
    } else {
        map = hg_mapping_make();
    }
    if (!map || pthread_setspecific(hg_memory_key, map) != 0) {
        if (map && !hg_spare_put(map)) hg_mapping_unmap(map);
        hg_memory_off = true;
        return NULL;
    }
    m = map; /* zeroed: no frames */
    m->sp[HG_REMEMBER] = UINTPTR_MAX;
    hg_memory_mine = m;
    hg_seen_attach((char *)map + HG_SEEN_OFFSET);
    return m;
}

static const uintptr_t hg_zero_word;

/* Index of frame 0: frame i is at hg_base(m) + i. */
static inline uint32_t hg_base(const hg_memory_t *m) { return HG_REMEMBER - m->count; }

/* The RBP check of the frame at `index`, whose RBP the step from the frame below read from
 * `slot` (0: none): checked when that slot exists and the value matters. */
static inline void hg_set_check(hg_memory_t *m, uint32_t index, uintptr_t slot, bool matters) {
    bool checked = slot != 0 && matters;
    m->rbp_at[index] = checked ? slot : (uintptr_t)&hg_zero_word;
    m->rbp_not[index] = ~(checked ? hg_reveal(m->rbp[index]) : 0);
}

/* Derives the RBP checks of frames [1, to) (clamped to the memory; frame 0 is never checked). */
static void hg_derive_checks(hg_memory_t *m, uint32_t to) {
    if (to > m->count) to = m->count;
    uint32_t base = hg_base(m);
    for (uint32_t i = base + 1; i < base + to; i++)
        hg_set_check(m, i, m->slot[i - 1] & ~HG_MATTERS, m->slot[i] & HG_MATTERS);
}

/* Every frame's RBP matters: for lists whose rules were not kept, or that may go on (CUT). */
static void hg_mark_all(hg_memory_t *m) {
    for (uint32_t i = hg_base(m); i < HG_REMEMBER; i++) m->slot[i] |= HG_MATTERS;
    hg_derive_checks(m, m->count);
}

/* Hashes every frame of the list, from the outermost in. */
static void hg_hash_all(hg_memory_t *m) {
    uint64_t state = HG_STACK_HASH_SEED;
    for (uint32_t i = HG_REMEMBER; i-- > hg_base(m);) m->hash[i] = state = hg_stack_hash_add(state, m->ip[i]);
    m->hashed = true;
}

/* Hands the caller the hash of the `count` frames it unwound, when the list holds them all
 * and has their hash. */
static inline void hg_give_hash(const hg_memory_t *m, uint32_t count, hg_unwound_t *out) {
    if (!m->hashed || count == 0 || count != m->count) return;
    out->hashed = true;
    out->hash = m->hash[hg_base(m)];
}

/* Makes the fresh frames [0, n) (IPs in ips, the rest in fresh_*) frames [0, n) of the
 * memory, whose count already includes them (frames [n, count) are in place). One pass from
 * the outermost fresh frame in copies each frame, sets its HG_MATTERS bit from its rule and
 * the frame above's bit (outer_matters for frame n), derives the RBP check of the frame above
 * it, and, with `hash`, its hash (frame n's, or the seed when n is the outermost). */
static void hg_settle_fresh(hg_memory_t *m, void *const *ips, uint32_t n, bool outer_matters, bool hash) {
    uint32_t base = hg_base(m);
    bool matters = outer_matters; /* frame i + 1's, in the loop */
    uint64_t state = hash ? (n == m->count ? HG_STACK_HASH_SEED : m->hash[base + n]) : 0;
    for (uint32_t i = n; i-- > 0;) {
        uint32_t at = base + i;
        uint64_t rule = m->fresh_rule[i];
        uintptr_t slot = m->fresh_slot[i] & ~HG_MATTERS;
        if (i + 1 < m->count) hg_set_check(m, at + 1, slot, matters); /* frame i + 1's */
        bool passes_on = !(rule & HG_RULE_RBP_SAVED) && hg_rule_kind(rule) != HG_RULE_LAST;
        matters = hg_rule_kind(rule) == HG_RULE_CFA_RBP || (passes_on && matters);
        m->ip[at] = (uintptr_t)ips[i];
        m->sp[at] = m->fresh_sp[i];
        m->rbp[at] = m->fresh_rbp[i];
        m->slot[at] = slot | (matters ? HG_MATTERS : 0);
        if (hash) m->hash[at] = state = hg_stack_hash_add(state, (uintptr_t)ips[i]);
    }
}

/* Makes the fresh frames [0, n) (IPs in ips) the frames at indices [base, base + n), as they
 * are: for the rare paths, whose lists get every RBP bit (hg_mark_all). */
static void hg_keep_fresh(hg_memory_t *m, void *const *ips, uint32_t n, uint32_t base) {
    memcpy(m->ip + base, ips, sizeof(uintptr_t) * n);
    memcpy(m->sp + base, m->fresh_sp, sizeof(uintptr_t) * n);
    memcpy(m->rbp + base, m->fresh_rbp, sizeof(uintptr_t) * n);
    memcpy(m->slot + base, m->fresh_slot, sizeof(uintptr_t) * n);
}

/* The rare paths build a list from index 0 (frame i at index i); this moves it to its place. */
static void hg_anchor(hg_memory_t *m) {
    uint32_t base = hg_base(m);
    if (base == 0) return;
    size_t bytes = sizeof(uintptr_t) * m->count;
    memmove(m->ip + base, m->ip, bytes);
    memmove(m->sp + base, m->sp, bytes);
    memmove(m->rbp + base, m->rbp, bytes);
    memmove(m->slot + base, m->slot, bytes);
}

/* Unwinds on from frame n - 1 (state; already in ips[n - 1], and at index n - 1 of the memory
 * if it fits, frames [0, n - 1) before it) to the end or to max frames, remembering what fits,
 * then anchors the list. -1 when a frame needs unw_backtrace. */
static int hg_unwind_on(hg_memory_t *m, void **ips, uint32_t n, hg_regs_t state, uint32_t max) {
    for (;;) {
        uintptr_t slot = 0;
        hg_step_t step = hg_step(&state, hg_rule_get(state.ip), &slot);
        if (HG_UNLIKELY(step == HG_STEP_FALLBACK)) return -1;
        if (n - 1 < HG_REMEMBER) m->slot[n - 1] = slot;
        if (step == HG_STEP_LAST) {
            m->end = HG_END_LAST;
            break;
        }
        if (step == HG_STEP_LOW) {
            m->end = HG_END_LOW;
            m->low_slot = state.sp - 8;
            m->low_value = state.ip;
            break;
        }
        if (n == max) {
            m->end = HG_END_CUT;
            break;
        }
        ips[n] = (void *)state.ip;
        if (n < HG_REMEMBER) m->ip[n] = state.ip, m->sp[n] = state.sp, m->rbp[n] = hg_hide(state.rbp), m->slot[n] = 0;
        n++;
    }
    if (n > HG_REMEMBER) m->end = HG_END_CUT;
    m->count = n < HG_REMEMBER ? n : HG_REMEMBER;
    hg_anchor(m);
    hg_mark_all(m);
    m->hashed = false;
    if (m->end != HG_END_CUT) hg_hash_all(m);
    return (int)n;
}

/* Keeps the list, named tag, among the stacks seen if it holds the whole recorded stack of
 * `count` frames: it ended (LAST or LOW), or was cut at the depth limit, where the capture
 * stops anyway. */
static void hg_keep_seen(const hg_memory_t *m, uint32_t tag, uint32_t count) {
    if (tag == 0 || count == 0 || count != m->count) return;
    if (m->end == HG_END_CUT && m->count != m->max) return;
    uint32_t base = hg_base(m);
    hg_seen_list_t list = {
        .ip = m->ip + base,
        .sp = m->sp + base,
        .rbp_at = m->rbp_at + base,
        .rbp_not = m->rbp_not + base,
        .unchecked = (uintptr_t)&hg_zero_word,
        .count = m->count,
        .rbp0 = m->rbp[base],
        .rbp0_matters = (m->slot[base] & HG_MATTERS) != 0,
        .low = m->end == HG_END_LOW,
        .low_slot = m->low_slot,
        .low_value = m->low_value,
    };
    hg_seen_keep(&list, tag);
}

/* Fresh frame n (state; fresh frames [0, n) are in ips and fresh_*) is remembered frame j.
 * Reuses j's outer frames if every word their steps read (return-address slots, RBP slots
 * whose value matters, the low end) still holds the value read then. Returns the frame count,
 * -1 if a word changed, -2 if going on past the memory needs unw_backtrace. */
static int hg_reuse(hg_memory_t *m, void **ips, uint32_t n, uint32_t j, uint32_t max, hg_unwound_t *out) {
    uint32_t remembered = m->count, base = hg_base(m);
    uint32_t total = n + (remembered - j);
    bool cut = total > max;
    if (cut) total = max;
    uint32_t last = base + j + (total - n) - 1; /* index of the outermost frame reused */
    /* Every word is read (all lie in live frames at or above frame j), and the differences
     * are combined: no branch per frame. A return address matches when its XOR is zero, an
     * RBP word when its XOR with the complement is all ones: an OR and an AND, no masking.
     * Only the first return address is tested alone: where call paths diverge just above a
     * frame that happens to sit at the same place (most failed attempts: 86 % of the Swift
     * benchmark's captures make one), it differs, and the rest need not be read. */
    uintptr_t changed = 0, rbp_same = ~(uintptr_t)0;
    uint32_t first = base + j + 1;
    if (first <= last && *(const uintptr_t *)(m->sp[first] - 8) != m->ip[first]) return -1;
    /* Unrolled: the loop's own three instructions were a fifth of its cost (30-frame churn:
     * capture instructions -11 %). */
    _Pragma("GCC unroll 4") for (uint32_t i = first; i <= last; i++) {
        changed |= *(const uintptr_t *)(m->sp[i] - 8) ^ m->ip[i];
        rbp_same &= *(const uintptr_t *)m->rbp_at[i] ^ m->rbp_not[i];
    }
    if (changed || ~rbp_same) return -1;
    if (!cut && m->end == HG_END_LOW && *(const uintptr_t *)m->low_slot != m->low_value) return -1;
    bool go_on = !cut && m->end == HG_END_CUT && total < max;
    if (n == j && !cut && !go_on && m->tag != 0 &&
        (n == 0 || (memcmp(ips, m->ip + base, sizeof(uintptr_t) * n) == 0 &&
                    memcmp(m->fresh_sp, m->sp + base, sizeof(uintptr_t) * n) == 0))) {
        /* The very list of the last capture: keep the fresh inner states (RBP may differ where
         * it does not matter) and let the caller reuse its stack. */
        if (n > 0) {
            /* The inner frames' RBP bits may have changed: so may the checks the stacks seen
             * keep for this stack. */
            hg_settle_fresh(m, ips, n, m->slot[base + n] & HG_MATTERS, false);
            hg_keep_seen(m, m->tag, total);
        }
        out->same_tag = m->tag;
        return (int)total;
    }
    hg_regs_t tail = {m->ip[last], m->sp[last], hg_reveal(m->rbp[last])};
    memcpy(ips + n, m->ip + base + j, sizeof(uintptr_t) * (total - n));
    m->tag = 0;
    m->tag_pending = true;
    uint32_t keep = total < HG_REMEMBER ? total : HG_REMEMBER;
    if (!cut && keep == total && !go_on) {
        /* The usual case: the reused frames stay where they are; the fresh ones go below. */
        m->count = total;
        hg_settle_fresh(m, ips, n, m->slot[hg_base(m) + n] & HG_MATTERS, m->hashed);
        hg_give_hash(m, total, out);
        return (int)total;
    }
    /* The list is cut (depth limit, or more frames than the memory holds) or goes on past the
     * memory: rebuilt from index 0, then anchored. */
    memmove(m->ip + n, m->ip + base + j, sizeof(uintptr_t) * (keep - n));
    memmove(m->sp + n, m->sp + base + j, sizeof(uintptr_t) * (keep - n));
    memmove(m->rbp + n, m->rbp + base + j, sizeof(uintptr_t) * (keep - n));
    memmove(m->slot + n, m->slot + base + j, sizeof(uintptr_t) * (keep - n));
    hg_keep_fresh(m, ips, n, 0);
    if (go_on) {
        int count = hg_unwind_on(m, ips, total, tail, max);
        if (HG_UNLIKELY(count < 0)) {
            m->count = 0;
            return -2;
        }
        hg_give_hash(m, (uint32_t)count, out);
        return count;
    }
    m->count = keep;
    m->end = HG_END_CUT;
    m->hashed = false;
    hg_anchor(m);
    hg_mark_all(m);
    return (int)total;
}

void hg_unwind_init(void) {
    void *map = mmap(NULL, sizeof(hg_rule_slot_t) * HG_RULE_SLOTS, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    hg_rules = map == MAP_FAILED ? NULL : map;
    hg_memory_key_ok = pthread_key_create(&hg_memory_key, hg_memory_release) == 0;
}

HG_NOINLINE int hg_unwind_backtrace(const hg_regs_t *start, void **ips, int max_frames, hg_unwound_t *out) {
    *out = (hg_unwound_t){0};
    hg_memory_t *m = hg_memory_get();
    if (HG_UNLIKELY(m == NULL)) goto plain;
    m->tag_pending = false;
    if (HG_UNLIKELY(hg_rules == NULL || max_frames <= 0)) goto plain;
    uint32_t max = (uint32_t)max_frames;
    hg_regs_t state = *start; /* frame 0 */
    m->max = max;

    const uintptr_t *remembered_sp = m->sp + hg_base(m), *remembered_ip = m->ip + hg_base(m);
    const uintptr_t *remembered_rbp = m->rbp + hg_base(m), *remembered_slot = m->slot + hg_base(m);
    uint32_t n = 0; /* frames unwound afresh so far */
    uint32_t j = 0; /* first remembered frame whose SP is not below frame n's */
    hg_step_t step = HG_STEP_OK;
    for (;;) {
        /* state is frame n's */
        ips[n] = (void *)state.ip;
        while (remembered_sp[j] < state.sp) j++; /* stops at the sentinel: j == remembered */
        if (remembered_sp[j] == state.sp && remembered_ip[j] == state.ip &&
            (!(remembered_slot[j] & HG_MATTERS) || remembered_rbp[j] == hg_hide(state.rbp))) {
            int count = hg_reuse(m, ips, n, j, max, out);
            if (HG_LIKELY(count >= 0)) return count;
            if (count == -2) goto plain;
        }
        if (n == HG_FRESH) break;
        uint64_t rule = hg_rule_get(state.ip);
        m->fresh_sp[n] = state.sp;
        m->fresh_rbp[n] = hg_hide(state.rbp);
        m->fresh_rule[n] = rule;
        step = hg_step(&state, rule, &m->fresh_slot[n]);
        if (HG_UNLIKELY(step == HG_STEP_FALLBACK)) goto plain; /* the memory is untouched */
        if (step == HG_STEP_LAST) m->fresh_slot[n] = 0;
        n++;
        if (step != HG_STEP_OK || n == max) break;
    }

    /* No remembered frame met: the fresh frames become the memory. */
    m->tag = 0;
    m->tag_pending = true;
    if (n == HG_FRESH && step == HG_STEP_OK && n < max) {
        /* A deep new stack: go on without looking back (state is frame n's, not yet kept). */
        hg_keep_fresh(m, ips, n, 0);
        ips[n] = (void *)state.ip;
        m->ip[n] = state.ip, m->sp[n] = state.sp, m->rbp[n] = hg_hide(state.rbp), m->slot[n] = 0;
        int count = hg_unwind_on(m, ips, n + 1, state, max);
        if (HG_UNLIKELY(count < 0)) {
            m->count = 0;
            goto plain;
        }
        hg_give_hash(m, (uint32_t)count, out);
        return count;
    }
    m->count = n;
    if (step == HG_STEP_LAST) {
        m->end = HG_END_LAST;
    } else if (step == HG_STEP_LOW) {
        m->end = HG_END_LOW;
        m->low_slot = state.sp - 8;
        m->low_value = state.ip;
    } else {
        m->end = HG_END_CUT;
    }
    m->hashed = m->end != HG_END_CUT;
    hg_settle_fresh(m, ips, n, m->end == HG_END_CUT, m->hashed);
    hg_give_hash(m, n, out);
    return (int)n;

plain:;
    /* unw_backtrace starts in this function, hg_stacks_capture and hg_record: drop those
     * three (ips has room for max + 3), so that frame 0 is start's, as above. */
    int count = unw_backtrace(ips, max_frames + 3);
    if (count <= 3) return 0;
    memmove(ips, ips + 3, sizeof(void *) * (size_t)(count - 3));
    return count - 3;
}

void hg_unwind_tag(uint32_t tag, int count) {
    hg_memory_t *m = hg_memory_mine;
    if (m == NULL || !m->tag_pending) return;
    m->tag = tag;
    m->tag_pending = false;
    if (count > 0) hg_keep_seen(m, tag, (uint32_t)count);
}
