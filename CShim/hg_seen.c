/*
 * Stacks a thread captured before, found again by their first frame.
 *
 * The unwinder (hg_unwind.c) remembers one frame list per thread, the last one, and reuses
 * its outer part; what differs from it is stepped afresh. Programs that alternate between
 * allocation sites (sqlite3's opcodes, jq's values, Swift's and Rust's containers) keep
 * stepping the same few inner frames again: on the benchmarks, from half to nearly all of the
 * captures whose stack is not the last one's repeat a stack that an earlier capture on the
 * thread had, from the same entry point at the same stack address.
 *
 * So each thread also keeps its recent complete stacks: HG_SEEN_LISTS of them, in sets of
 * HG_SEEN_WAYS chosen by frame 0's IP and SP, for every frame the words its unwind read (the
 * return-address slot and, where a later rule uses RBP, the RBP save slot) with the values
 * read then, and the stack's reference. A capture whose frame 0 (IP, SP, and RBP where it
 * matters) equals a kept stack's, and whose stack still holds every kept word, has that
 * stack: the unwind is a function of frame 0's state and of the words it reads (the same
 * argument as the unwinder's reuse, over the whole list). Nothing is trusted that is not
 * compared, so no invalidation is needed; a stale entry fails its check and is replaced.
 * Several ways per set, because stacks that share frame 0 and part further out (an
 * allocation entry point called from sibling sites at one depth: the Rust benchmark has up
 * to four) would otherwise evict each other on every capture; the least recently kept or
 * found entry of a set goes first.
 *
 * Memory: HG_SEEN_LISTS × ~2 KiB per thread, pages touched as entries fill, inside the
 * thread's unwinder mapping (hg_unwind.c), which hands them over when it makes it and takes
 * them back at thread exit (hg_seen_attach, hg_seen_detach). Its words are stack addresses,
 * masked RBP values and complements (of code addresses and of the words read): the exit-time
 * scan leaves the mapping out (hg_unwind_exclude_from_scan), and of a mapping past the first
 * 272 that exist at once it reads them as roots, where only a stack address can look like a heap pointer (a stack
 * the program malloc'd).
 */
#include <string.h>

#include "hg_internal.h"

#define HG_SEEN_LISTS 64   /* per thread; a power of two */
#define HG_SEEN_WAYS 4     /* entries per set; a power of two */
#define HG_SEEN_FRAMES 64  /* longer lists are not kept (the default depth is 64) */

/* One word a kept stack must still hold: the word at `at` is the complement of `not`. Every
 * check has this one form (return addresses, RBP save slots, the low end), so that a look-up
 * is one loop of five or six instructions a word; complements, because the exit-time scan reads
 * these words as roots and a code address or RBP value must not look like a heap pointer. */
typedef struct {
    uintptr_t at, not;
} hg_seen_check_t;

#define HG_SEEN_CHECKS (2 * HG_SEEN_FRAMES) /* frames [1, count): a return address and an RBP check each, the low end, padding */

typedef struct hg_seen {
    uint32_t ref;    /* the stack; 0: an empty entry */
    uint32_t count;  /* frames [0, count) */
    uint32_t checks; /* entries of check[]: an even number (the look-up takes two a turn) */
    bool rbp0_matters;
    uint64_t age; /* when it was last kept or found: the oldest of a set goes first */
    struct hg_seen *next; /* the entry that the capture after this one's last had (a guess) */
    uintptr_t ip0, sp0;
    uintptr_t rbp0; /* hidden; compared when rbp0_matters */
    /* frame i's return address at its SP - 8 (i in [1, count), in order: where two call paths
     * meet, the first outer frame is often where they part), then the RBP checks that apply
     * (none in code without frame pointers), then the low end's word if the stack ended at a
     * low return address, then a word that always holds if the number is odd */
    hg_seen_check_t check[HG_SEEN_CHECKS];
} hg_seen_t;

static const uintptr_t hg_seen_zero_word; /* the padding check's word: always 0 */

static __thread hg_seen_t *hg_seen __attribute__((tls_model("initial-exec")));
static __thread uint64_t hg_seen_clock __attribute__((tls_model("initial-exec")));
static __thread hg_seen_t *hg_seen_last __attribute__((tls_model("initial-exec"))); /* the last capture's entry */
const size_t hg_seen_bytes = sizeof(hg_seen_t) * HG_SEEN_LISTS;

void hg_seen_attach(void *lists) {
    hg_seen_t *seen = lists;
    for (int i = 0; i < HG_SEEN_LISTS; i++) {
        seen[i].ref = 0; /* a mapping another thread had: its entries are not this thread's */
        seen[i].age = 0;
        seen[i].next = &seen[0];
    }
    hg_seen_last = &seen[0];
    hg_seen = seen;
}

void hg_seen_detach(void) { hg_seen = NULL; }

/* The first entry of frame 0's set; the others follow it. */
static inline hg_seen_t *hg_seen_set(uintptr_t ip, uintptr_t sp) {
    uint64_t mixed = ((uint64_t)ip ^ ((uint64_t)sp << 7)) * 0x9e3779b97f4a7c15ull;
    unsigned bits = __builtin_ctz(HG_SEEN_LISTS / HG_SEEN_WAYS);
    return &hg_seen[bits ? (mixed >> (64 - bits)) * HG_SEEN_WAYS : 0];
}

/* Whether e is start's stack: its frame 0 is start's and every word it checks holds. */
HG_ALWAYS_INLINE bool hg_seen_holds(const hg_seen_t *e, const hg_regs_t *start) {
    if (e->ref == 0 || e->ip0 != start->ip || e->sp0 != start->sp) return false;
    if (e->rbp0_matters && e->rbp0 != hg_hide(start->rbp)) return false;
    uintptr_t same = ~(uintptr_t)0;
    for (const hg_seen_check_t *c = e->check, *end = c + e->checks; c != end; c += 2)
        same &= (*(const uintptr_t *)c[0].at ^ c[0].not) & (*(const uintptr_t *)c[1].at ^ c[1].not);
    return same == ~(uintptr_t)0;
}

/* Notes that the capture after the last one had entry e. */
static inline uint32_t hg_seen_follow(hg_seen_t *e) {
    hg_seen_last->next = e;
    hg_seen_last = e;
    e->age = ++hg_seen_clock;
    return e->ref;
}

HG_INLINED_ACROSS_FILES uint32_t hg_seen_find(const hg_regs_t *start, uint32_t *count) {
    if (hg_seen == NULL) return 0;
    /* Programs cycle through their allocation sites: the entry that followed the last one
     * the previous time is tried first. Stacks that share frame 0 part only a few frames
     * out, so without the guess a look-up would often check a set's other ways in full. */
    hg_seen_t *guess = hg_seen_last->next;
    if (hg_seen_holds(guess, start)) {
        *count = guess->count;
        return hg_seen_follow(guess);
    }
    hg_seen_t *set = hg_seen_set(start->ip, start->sp);
    for (int way = 0; way < HG_SEEN_WAYS; way++)
        if (&set[way] != guess && hg_seen_holds(&set[way], start)) {
            *count = set[way].count;
            return hg_seen_follow(&set[way]);
        }
    return 0;
}

void hg_seen_keep(const hg_seen_list_t *list, uint32_t ref) {
    if (ref == 0 || list->count == 0 || list->count > HG_SEEN_FRAMES) return;
    if (hg_seen == NULL) return;
    hg_seen_t *set = hg_seen_set(list->ip[0], list->sp[0]);
    /* The entry of the same stack if the set has it (its checks are replaced), else the one
     * least recently kept or found. */
    hg_seen_t *e = &set[0];
    for (int way = 0; way < HG_SEEN_WAYS; way++) {
        if (set[way].ref == ref) {
            e = &set[way];
            break;
        }
        if (set[way].age < e->age) e = &set[way];
    }
    e->age = ++hg_seen_clock;
    e->ref = 0; /* a signal handler's capture cannot run meanwhile (the shim's guard), but keep
                 * the entry unusable until it is whole anyway */
    e->ip0 = list->ip[0];
    e->sp0 = list->sp[0];
    e->rbp0 = list->rbp0;
    e->rbp0_matters = list->rbp0_matters;
    uint32_t n = list->count, k = 0;
    for (uint32_t i = 1; i < n; i++) e->check[k++] = (hg_seen_check_t){list->sp[i] - 8, ~list->ip[i]};
    for (uint32_t i = 1; i < n; i++)
        if (list->rbp_at[i] != list->unchecked) e->check[k++] = (hg_seen_check_t){list->rbp_at[i], list->rbp_not[i]};
    if (list->low) e->check[k++] = (hg_seen_check_t){list->low_slot, ~list->low_value};
    if (k % 2) e->check[k++] = (hg_seen_check_t){(uintptr_t)&hg_seen_zero_word, ~(uintptr_t)0};
    e->checks = k;
    e->count = n;
    e->ref = ref;
    hg_seen_follow(e);
}
