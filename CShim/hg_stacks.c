/*
 * Stack capture and deduplication.
 *
 * Every allocation's stack is unwound with libunwind (DWARF CFI, so code built without frame
 * pointers unwinds correctly) and looked up in an insert-only, lock-free hash table. Identical
 * stacks are stored once; events carry a 4-byte reference.
 *
 * Storage: stacks are never freed. They are laid out one after another in an address range
 * of 4 GiB that exists only as numbers: a reference is the stack's offset in it, in 8-byte
 * units. The range is mapped 16 MiB at a time, when a stack first lands in a chunk (most
 * programs need one). It was one 4 GiB reservation up front, which took 4 GiB of the
 * program's address-space limit (`ulimit -v`; a 5,000 MiB malloc that succeeds under a
 * 6 GB limit failed with the shim preloaded) and, under strict overcommit, of its commit
 * limit too, since MAP_NORESERVE is then ignored. The table maps a hash to a reference; a slot goes from 0 to a reference
 * exactly once, by compare-and-swap with release order, after the stack's bytes were written,
 * so any thread that loads a reference with acquire order sees the whole stack.
 *
 * Unwinding: first hg_seen.c (the thread's recent complete stacks, found again by their first
 * frame and checked word by word), then hg_unwind.c (per-IP rules from .eh_frame, and
 * per-thread reuse of the frames that did not change since the thread's previous capture),
 * with unw_backtrace as its fallback.
 * HEAPGATE_UNWIND, read once at start: "plain" uses unw_backtrace for every capture; "verify"
 * runs both on every capture and reports on stderr any capture where they differ (for tests).
 */
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hg_internal.h"

/* The fast unwind starts at the entry point (hg_record hands over its caller's registers).
 * unw_backtrace, called here, starts with hg_stacks_capture's and hg_record's frames. */
#define HG_SKIP_FRAMES_PLAIN 2
#define HG_MAX_DEPTH 256
#define HG_TABLE_SLOTS (1u << 22)
#define HG_ARENA_BYTES (4ull << 30)
#define HG_CHUNK_SHIFT 24 /* 16 MiB */
#define HG_CHUNK_BYTES (1ull << HG_CHUNK_SHIFT)
#define HG_CHUNKS (HG_ARENA_BYTES / HG_CHUNK_BYTES)
#define HG_MAX_PROBES 4096
/* Distinct stacks kept at most: three quarters of the table's slots. A search for a stack
 * not in the table probes until it meets an empty slot, and every slot on the way is a stack
 * to load and compare; three quarters full, that is 8.5 slots on average. The table used to
 * fill to the last slot: each allocation with a new stack then probed 4096 slots in vain, and
 * a program making 10 M allocations with distinct stacks (random recursion) ran 490 s
 * instead of 13 s. HEAPGATE_MAX_STACKS lowers the limit (it bounds the shim's memory: a stack
 * of 64 frames takes 536 bytes, 1.6 GiB at the default limit). */
#define HG_MAX_STACKS_DEFAULT (HG_TABLE_SLOTS / 4 * 3)

uint32_t hg_stacks_max_depth = 64;
bool hg_stacks_seen_first;

typedef enum { HG_UNWIND_FAST = 0, HG_UNWIND_PLAIN, HG_UNWIND_VERIFY } hg_unwind_mode_t;
static hg_unwind_mode_t hg_unwind_mode;
static _Atomic uint32_t hg_verify_reports;

static _Atomic uint32_t *hg_table;
static _Atomic(unsigned char *) hg_chunks[HG_CHUNKS]; /* mapped on first use */
static _Atomic uint64_t hg_arena_used = 8; /* offset 0 is the "no stack" reference */
static uint32_t hg_stacks_limit = HG_MAX_STACKS_DEFAULT;
static _Atomic uint32_t hg_stacks_claimed; /* stacks stored, with the copies that lost a race */
static _Atomic uint64_t hg_stacks_unkept; /* captures given "no stack": no room for a new one */

static void *hg_reserve(size_t bytes) {
    void *map = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return map == MAP_FAILED ? NULL : map;
}

void hg_stacks_init(void) {
    const char *depth = hg_getenv("HEAPGATE_DEPTH");
    if (depth) {
        long value = strtol(depth, NULL, 10);
        if (value >= 1 && value <= HG_MAX_DEPTH) hg_stacks_max_depth = (uint32_t)value;
    }
    const char *limit = hg_getenv("HEAPGATE_MAX_STACKS");
    if (limit) {
        long value = strtol(limit, NULL, 10);
        if (value >= 1 && value < HG_MAX_STACKS_DEFAULT) hg_stacks_limit = (uint32_t)value;
    }
    const char *unwind = hg_getenv("HEAPGATE_UNWIND");
    if (unwind && strcmp(unwind, "plain") == 0) hg_unwind_mode = HG_UNWIND_PLAIN;
    if (unwind && strcmp(unwind, "verify") == 0) hg_unwind_mode = HG_UNWIND_VERIFY;
    hg_table = hg_reserve(sizeof(uint32_t) * HG_TABLE_SLOTS);
    /* Never leak-scan roots: 16 MiB of mostly untouched reservation, and no heap pointers
     * (nor are the stacks' chunks: hg_stacks_exclude_from_scan). */
    if (hg_table) hg_leakscan_exclude(hg_table, sizeof(uint32_t) * HG_TABLE_SLOTS);
    /* libunwind's first use, which asks for its memory-check pipe: see hg_unwind_readable.c. */
    hg_unwind_readable_init();
    hg_unwind_init();
    hg_stacks_seen_first = hg_table != NULL && hg_unwind_mode == HG_UNWIND_FAST;
}

static uint64_t hg_hash_frames(void *const *ips, int count) {
    uint64_t state = HG_STACK_HASH_SEED;
    for (int i = count; i-- > 0;) state = hg_stack_hash_add(state, (uintptr_t)ips[i]);
    return hg_stack_hash_finish(state, (uint32_t)count);
}

HG_INLINED_ACROSS_FILES hg_stack_t *hg_stacks_get(hg_stack_ref_t ref) {
    uint64_t offset = (uint64_t)ref * 8;
    /* Whoever holds a reference got it after the stack's writer stored the stack, and that
     * writer had loaded (or stored) its chunk's pointer before: the acquire that gave the
     * reference makes the pointer visible too. */
    unsigned char *chunk = atomic_load_explicit(&hg_chunks[offset >> HG_CHUNK_SHIFT], memory_order_relaxed);
    return (hg_stack_t *)(chunk + (offset & (HG_CHUNK_BYTES - 1)));
}

/* The chunk that holds `offset`, mapped by the first thread that needs it. */
static unsigned char *hg_chunk_at(uint64_t offset) {
    _Atomic(unsigned char *) *slot = &hg_chunks[offset >> HG_CHUNK_SHIFT];
    unsigned char *chunk = atomic_load_explicit(slot, memory_order_acquire);
    if (chunk) return chunk;
    unsigned char *fresh = hg_reserve(HG_CHUNK_BYTES);
    if (!fresh) return NULL;
    if (atomic_compare_exchange_strong_explicit(slot, &chunk, fresh, memory_order_acq_rel, memory_order_acquire))
        return fresh;
    munmap(fresh, HG_CHUNK_BYTES); /* another thread mapped it first */
    return chunk;
}

void hg_stacks_exclude_from_scan(void) {
    for (size_t i = 0; i < HG_CHUNKS; i++) {
        unsigned char *chunk = atomic_load(&hg_chunks[i]);
        if (chunk) hg_leakscan_exclude(chunk, HG_CHUNK_BYTES);
    }
}

hg_stack_ref_t hg_stacks_reference_limit(void) {
    uint64_t used = atomic_load(&hg_arena_used); /* a claim past the arena's end overshoots it */
    return (hg_stack_ref_t)((used < HG_ARENA_BYTES ? used : HG_ARENA_BYTES) / 8);
}

static bool hg_stack_equals(const hg_stack_t *stack, uint64_t hash, void *const *ips, int count) {
    return stack->hash == hash && stack->depth == (uint32_t)count &&
           memcmp(stack->ips, ips, sizeof(void *) * (size_t)count) == 0;
}

uint64_t hg_stacks_unkept_count(void) { return atomic_load_explicit(&hg_stacks_unkept, memory_order_relaxed); }

/* Writes a new stack into the arena; 0 when the limit of stacks is reached or the arena is
 * exhausted. */
static hg_stack_ref_t hg_stack_store(uint64_t hash, void *const *ips, int count) {
    if (atomic_fetch_add_explicit(&hg_stacks_claimed, 1, memory_order_relaxed) >= hg_stacks_limit) {
        atomic_store_explicit(&hg_stacks_claimed, hg_stacks_limit, memory_order_relaxed); /* no wrap */
        return 0;
    }
    uint64_t bytes = sizeof(hg_stack_t) + sizeof(uintptr_t) * (uint64_t)count;
    uint64_t offset;
    do { /* a stack never straddles two chunks: a claim that would is skipped, its bytes unused */
        offset = atomic_fetch_add(&hg_arena_used, bytes);
        if (offset + bytes > HG_ARENA_BYTES) return 0;
    } while ((offset >> HG_CHUNK_SHIFT) != ((offset + bytes - 1) >> HG_CHUNK_SHIFT));
    unsigned char *chunk = hg_chunk_at(offset);
    if (chunk == NULL) return 0;
    hg_stack_t *stack = (hg_stack_t *)(chunk + (offset & (HG_CHUNK_BYTES - 1)));
    stack->hash = hash;
    stack->depth = (uint32_t)count;
    memcpy(stack->ips, ips, sizeof(void *) * (size_t)count);
    return (hg_stack_ref_t)(offset / 8);
}

static hg_stack_ref_t hg_stacks_intern(void *const *ips, int count, uint64_t hash) {
    hg_stack_ref_t mine = 0;
    uint32_t index = (uint32_t)hash & (HG_TABLE_SLOTS - 1);
    for (int probe = 0; probe < HG_MAX_PROBES; probe++, index = (index + 1) & (HG_TABLE_SLOTS - 1)) {
        hg_stack_ref_t ref = atomic_load_explicit(&hg_table[index], memory_order_acquire);
        if (ref == 0) {
            if (mine == 0) {
                /* A stack never seen may point into a library loaded since the last look:
                 * its MODULE_LOAD must be in the ring before any event naming this stack. */
                hg_modules_refresh_if_changed();
                mine = hg_stack_store(hash, ips, count);
                if (mine == 0) break;
            }
            if (atomic_compare_exchange_strong_explicit(&hg_table[index], &ref, mine, memory_order_release,
                                                        memory_order_acquire))
                return mine;
            /* Lost the race for this slot; ref now holds the winner's stack. */
        }
        if (hg_stack_equals(hg_stacks_get(ref), hash, ips, count)) return ref;
    }
    /* Counted, so that the report can say how many blocks have no frames, and why. */
    atomic_fetch_add_explicit(&hg_stacks_unkept, 1, memory_order_relaxed);
    return 0;
}

/* HEAPGATE_UNWIND=verify: one line on stderr per differing capture (at most 100). */
static void hg_verify_report(int frame, uintptr_t fast, uintptr_t plain) {
    if (atomic_fetch_add(&hg_verify_reports, 1) >= 100) return;
    char line[96] = "heapgate: unwind mismatch at frame ";
    size_t length = strlen(line);
    char digits[24];
    int n = 0;
    do digits[n++] = (char)('0' + frame % 10), frame /= 10;
    while (frame > 0);
    while (n > 0) line[length++] = digits[--n];
    const uintptr_t values[2] = {fast, plain};
    for (int v = 0; v < 2; v++) {
        memcpy(line + length, v == 0 ? ": fast 0x" : " plain 0x", 9);
        length += 9;
        for (int shift = 60; shift >= 0; shift -= 4) line[length++] = "0123456789abcdef"[(values[v] >> shift) & 15];
    }
    line[length++] = '\n';
    ssize_t ignored = write(2, line, length);
    (void)ignored;
}

/* HEAPGATE_UNWIND=verify: the hash the unwinder kept differs from the frames' own. */
static void hg_verify_hash_report(void) {
    static const char line[] = "heapgate: unwind mismatch in the kept stack hash\n";
    if (atomic_fetch_add(&hg_verify_reports, 1) >= 100) return;
    ssize_t ignored = write(2, line, sizeof line - 1);
    (void)ignored;
}

/* Compares a fast capture with unw_backtrace's (both from frame 0 = the entry point). */
static void hg_verify(void *const *fast, int fast_count, void *const *plain, int plain_count) {
    int common = fast_count < plain_count ? fast_count : plain_count;
    for (int i = 0; i < common; i++)
        if (fast[i] != plain[i]) {
            hg_verify_report(i, (uintptr_t)fast[i], (uintptr_t)plain[i]);
            return;
        }
    if (fast_count != plain_count)
        hg_verify_report(common, common < fast_count ? (uintptr_t)fast[common] : 0,
                         common < plain_count ? (uintptr_t)plain[common] : 0);
}

HG_NOINLINE hg_stack_ref_t hg_stacks_capture(const hg_regs_t *start) {
    if (HG_UNLIKELY(hg_table == NULL)) return 0;
    /* Room for the deepest stack and the frames unw_backtrace adds in front: the plain mode's
     * two, the unwinder fallback's three. */
    void *ips[HG_MAX_DEPTH + 3];
    int depth = (int)hg_stacks_max_depth;
    void **frames;
    int count;
    hg_unwound_t unwound = {0};
    if (HG_UNLIKELY(hg_unwind_mode == HG_UNWIND_PLAIN)) {
        count = unw_backtrace(ips, depth + HG_SKIP_FRAMES_PLAIN) - HG_SKIP_FRAMES_PLAIN;
        frames = ips + HG_SKIP_FRAMES_PLAIN;
    } else {
        /* A stack this thread had before (hg_seen.c) needs no unwind at all. In the default
         * mode hg_record has asked already (hg_stacks_seen_first); in verify mode the answer
         * is checked below like an unwind's. */
        uint32_t seen_count; /* at most depth: only lists of a capture are kept */
        uint32_t seen = hg_unwind_mode == HG_UNWIND_VERIFY ? hg_seen_find(start, &seen_count) : 0;
        if (seen != 0) {
            unwound.same_tag = seen;
            count = (int)seen_count;
        } else {
            count = hg_unwind_backtrace(start, ips, depth, &unwound);
        }
        frames = ips;
        if (HG_UNLIKELY(hg_unwind_mode == HG_UNWIND_VERIFY)) {
            void *plain[HG_MAX_DEPTH + HG_SKIP_FRAMES_PLAIN];
            int plain_count = unw_backtrace(plain, depth + HG_SKIP_FRAMES_PLAIN) - HG_SKIP_FRAMES_PLAIN;
            if (plain_count < 0) plain_count = 0;
            if (unwound.same_tag != 0) {
                const hg_stack_t *stack = hg_stacks_get(unwound.same_tag);
                memcpy(frames, stack->ips, sizeof(void *) * stack->depth);
                count = (int)stack->depth;
            }
            hg_verify(frames, count, plain + HG_SKIP_FRAMES_PLAIN, plain_count);
            if (unwound.hashed && count > 0 &&
                hg_stack_hash_finish(unwound.hash, (uint32_t)count) != hg_hash_frames(frames, count))
                hg_verify_hash_report();
            /* What is recorded is unw_backtrace's answer. */
            count = plain_count;
            if (count > 0) memcpy(frames, plain + HG_SKIP_FRAMES_PLAIN, sizeof(void *) * (size_t)count);
            unwound = (hg_unwound_t){0};
        }
        if (unwound.same_tag != 0) return unwound.same_tag;
    }
    if (count <= 0) {
        if (hg_unwind_mode != HG_UNWIND_PLAIN) hg_unwind_tag(0, 0);
        return 0;
    }
    /* The unwinder hashed what it could not reuse on top of the outer frames' kept hash. */
    uint64_t hash = unwound.hashed ? hg_stack_hash_finish(unwound.hash, (uint32_t)count) : hg_hash_frames(frames, count);
    hg_stack_ref_t ref = hg_stacks_intern(frames, count, hash);
    if (hg_unwind_mode != HG_UNWIND_PLAIN) hg_unwind_tag(ref, count);
    return ref;
}
