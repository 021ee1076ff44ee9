/*
 * The blocks in use, as the drain thread sees them (in ring order, so always a consistent
 * history). Only the drain thread touches it, so it needs no synchronisation. It gives a fork
 * child the blocks it inherited and is the set an exit-time scan classifies.
 *
 * Open addressing with linear probing and backward-shift deletion (no tombstones), in an
 * anonymous mapping that doubles when a quarter full (three quarters once it is 4 MiB). Key 0
 * marks an empty slot (no allocation is ever at address 0).
 *
 * Entries are 16 bytes, four to a cache line: every event probes the table, at a place only
 * its neighbours in memory share (hg_slot_of), so its size decides how much of it stays in
 * cache. Sizes of 4 GiB and more do not fit the entry's 32 bits; such blocks (a handful at
 * most) keep their size in a short list.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "hg_internal.h"

typedef struct {
    uint64_t ptr;
    hg_stack_ref_t stack;
    uint32_t size; /* HG_SIZE_ELSEWHERE: in hg_large */
} hg_entry_t;

_Static_assert(sizeof(hg_entry_t) == 16, "four entries per cache line");

static hg_entry_t *hg_entries;
static size_t hg_capacity; /* a power of two: 1 << hg_capacity_log2 */
static unsigned hg_capacity_log2;
static struct HG_OWN_LINES {
    size_t used; /* written for every event (see HG_OWN_LINES) */
} hg_fill;

typedef struct {
    uint64_t ptr, size;
} hg_large_t;

static hg_large_t *hg_large;
static size_t hg_large_count, hg_large_capacity;

/* The blocks of one 256-byte stretch of memory go into one window of 16 slots (four cache
 * lines), in address order; the window's start is the stretch's Fibonacci hash (the top bits
 * of the product: blocks are handed out in address order, and the top bits spread such runs
 * evenly, where low or middle bits cluster). Programs allocate and free runs of neighbouring
 * blocks (a parser building its tree, a container's nodes), and with one random slot per
 * block each of them cost the drain a cache miss; neighbours now share lines. The price is
 * longer probe runs, windows overlapping: the drain's instructions +17 % on jq, +15 % on the
 * Rust benchmark (callgrind). Against one slot per block, paired rounds, median ratio of
 * wall time: jq 0.94 and 0.95 (41 rounds, twice), Rust 0.99 and 0.97 (31), sqlite3, Swift
 * and the 8-thread churn within noise (21). Windows of 64 slots: jq 0.95, Rust 1.02; of 8:
 * jq 0.98, Rust 1.00. */
static size_t hg_slot_of(uint64_t ptr) {
    size_t window = (size_t)(((ptr >> 8) * 0x9e3779b97f4a7c15ull) >> (64 - hg_capacity_log2));
    return (window + ((ptr >> 4) & 15)) & (hg_capacity - 1);
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

#define HG_HUGE_PAGE (2u << 20)

/* Populated at once: a hash table touches every page soon anyway, and a page first read (the
 * shared zero page) then written costs a copy-on-write fault and a TLB-flush IPI to the other
 * cores.
 *
 * From 2 MiB on, in transparent huge pages where the system allows them for madvise()d
 * memory (Debian's default): not for the TLB (no measurable gain on jq's 32 MB table, nor in
 * the drain's CPU time on the Rust benchmark), but for the process's exit, which is in every
 * run's wall time: the kernel frees a table of 512 huge pages' worth of small ones page by
 * page, after the program's last instruction and before heapgate (or a shell) sees it end.
 * From exit_group to the parent's wait4 returning (perf tracepoints, three runs each): Rust
 * benchmark natively 2.5 ms, traced 4.0-4.5 ms, with the table in huge pages 2.8-3.2 ms;
 * Swift benchmark 2.6-3.1 against 2.0-2.3 ms. Mapped a huge page larger and trimmed, so that
 * the table is aligned to one. Where huge pages are off, unsupported or must be compacted for,
 * the kernel gives small ones: the same table as before. */
static void *hg_map_table(size_t bytes) {
    if (bytes < HG_HUGE_PAGE)
        return mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    unsigned char *raw = mmap(NULL, bytes + HG_HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return MAP_FAILED;
    /* A thread of the program finishing the drain's work at exit may grow the table: the
     * advice's failures must not reach its errno. */
    int saved_errno = errno;
    unsigned char *table = (unsigned char *)(((uintptr_t)raw + HG_HUGE_PAGE - 1) & ~(uintptr_t)(HG_HUGE_PAGE - 1));
    if (table > raw) munmap(raw, (size_t)(table - raw));
    size_t after = (size_t)(raw + bytes + HG_HUGE_PAGE - (table + bytes));
    if (after > 0) munmap(table + bytes, after);
    madvise(table, bytes, MADV_HUGEPAGE);
    /* Before Linux 5.14, every page written once instead. */
    if (madvise(table, bytes, MADV_POPULATE_WRITE) != 0)
        for (size_t at = 0; at < bytes; at += 4096) ((volatile unsigned char *)table)[at] = 0;
    errno = saved_errno;
    return table;
}

static bool hg_liveset_grow(void) {
    /* Small at first: populating and, at exit, walking a 1 MiB table was a sixth of a tiny
     * program's traced run (5.2 -> 4.3 ms); the doublings a large live set adds cost less than that. */
    size_t capacity = hg_capacity ? hg_capacity * 2 : (1u << 12);
    void *map = hg_map_table(capacity * sizeof(hg_entry_t));
    if (map == MAP_FAILED) return false;
    hg_entry_t *old = hg_entries;
    size_t old_capacity = hg_capacity;
    hg_entries = map;
    hg_capacity = capacity;
    hg_capacity_log2 = (unsigned)__builtin_ctzll(capacity);
    for (size_t i = 0; i < old_capacity; i++) {
        if (old[i].ptr == 0) continue;
        size_t slot = hg_slot_of(old[i].ptr);
        while (hg_entries[slot].ptr != 0) slot = (slot + 1) & (hg_capacity - 1);
        hg_entries[slot] = old[i];
    }
    if (old) munmap(old, old_capacity * sizeof(hg_entry_t));
    return true;
}

/* ---- sizes of 4 GiB and more ---- */

static bool hg_large_put(uint64_t ptr, uint64_t size) {
    for (size_t i = 0; i < hg_large_count; i++) {
        if (hg_large[i].ptr == ptr) {
            hg_large[i].size = size;
            return true;
        }
    }
    if (hg_large_count == hg_large_capacity) {
        size_t capacity = hg_large_capacity ? hg_large_capacity * 2 : 256;
        hg_large_t *grown = mmap(NULL, capacity * sizeof *grown, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (grown == MAP_FAILED) return false;
        if (hg_large) {
            memcpy(grown, hg_large, hg_large_count * sizeof *grown);
            munmap(hg_large, hg_large_capacity * sizeof *hg_large);
        }
        hg_large = grown;
        hg_large_capacity = capacity;
    }
    hg_large[hg_large_count++] = (hg_large_t){ptr, size};
    return true;
}

static uint64_t hg_large_take(uint64_t ptr, bool remove) {
    for (size_t i = 0; i < hg_large_count; i++) {
        if (hg_large[i].ptr != ptr) continue;
        uint64_t size = hg_large[i].size;
        if (remove) hg_large[i] = hg_large[--hg_large_count];
        return size;
    }
    return 0;
}

static hg_block_t hg_block_of(const hg_entry_t *entry, bool remove_large) {
    uint64_t size = entry->size == HG_SIZE_ELSEWHERE ? hg_large_take(entry->ptr, remove_large) : entry->size;
    return (hg_block_t){.ptr = entry->ptr, .size = size, .stack = entry->stack};
}

/* ---- the table ---- */

/* Up to 4 MiB the table is kept at most a quarter full, beyond that three quarters. A remove
 * pulls the rest of its probe run back (above), one unpredictable branch per entry, and at half
 * full those runs cost a churn holding 2,048 blocks 20 ns an event on the drain thread: 0.20 s
 * of CPU against 0.12 s at a quarter full, wall 0.108 s against 0.074 s (the live set left out
 * altogether: 0.075 s). The drain is the bottleneck wherever it shares a CPU with the program:
 * the 8-thread churn went from 0.108 s to 0.086 s (native 0.015 s; medians of 15 alternating
 * runs). Small tables can afford the room (at most 3 MiB more); a large one (jq's 32 MiB)
 * keeps the denser load, which its peak RSS needs and which costs jq's drain nothing
 * measurable (1.6 entries moved per remove). */
#define HG_SPARSE_CAPACITY (1u << 18)

static bool hg_liveset_fits(size_t more_blocks) {
    size_t used = hg_fill.used + more_blocks;
    return hg_capacity < HG_SPARSE_CAPACITY ? used * 4 <= hg_capacity : used * 4 <= hg_capacity * 3;
}

/* Room for `blocks` more without growing, so that the homes computed for a batch (below)
 * stay true through it: a table that doubles moves every block's home. */
bool hg_liveset_reserve(size_t blocks) {
    while (!hg_liveset_fits(blocks))
        if (!hg_liveset_grow()) return false;
    return true;
}

HG_INLINED_ACROSS_FILES size_t hg_liveset_home(uint64_t ptr) {
    size_t home = hg_slot_of(ptr);
    __builtin_prefetch(&hg_entries[home], 1);
    return home;
}

HG_INLINED_ACROSS_FILES bool hg_liveset_insert(uint64_t ptr, uint64_t size, hg_stack_ref_t stack, size_t home) {
    if (home == HG_LIVESET_NO_HOME) {
        if (!hg_liveset_reserve(1)) return false;
        home = hg_slot_of(ptr);
    }
    uint32_t stored = hg_size_field(size);
    if (stored == HG_SIZE_ELSEWHERE && !hg_large_put(ptr, size)) return false;
    size_t slot = home;
    while (hg_entries[slot].ptr != 0 && hg_entries[slot].ptr != ptr) slot = (slot + 1) & (hg_capacity - 1);
    if (hg_entries[slot].ptr == 0) {
        hg_fill.used++;
    } else if (hg_entries[slot].size == HG_SIZE_ELSEWHERE && stored != HG_SIZE_ELSEWHERE) {
        hg_large_take(ptr, true);
    }
    hg_entries[slot] = (hg_entry_t){.ptr = ptr, .stack = stack, .size = stored};
    return true;
}

HG_INLINED_ACROSS_FILES bool hg_liveset_remove(uint64_t ptr, hg_block_t *out, size_t home) {
    if (home == HG_LIVESET_NO_HOME) {
        if (hg_capacity == 0) return false;
        home = hg_slot_of(ptr);
    }
    size_t slot = home;
    while (hg_entries[slot].ptr != ptr) {
        if (hg_entries[slot].ptr == 0) return false;
        slot = (slot + 1) & (hg_capacity - 1);
    }
    hg_block_t block = hg_block_of(&hg_entries[slot], true);
    if (out) *out = block;
    /* Backward-shift: pull later members of the probe run into the hole. */
    size_t hole = slot;
    for (size_t next = (hole + 1) & (hg_capacity - 1); hg_entries[next].ptr != 0; next = (next + 1) & (hg_capacity - 1)) {
        size_t next_home = hg_slot_of(hg_entries[next].ptr);
        bool movable = hole <= next ? (next_home <= hole || next_home > next) : (next_home <= hole && next_home > next);
        if (movable) {
            hg_entries[hole] = hg_entries[next];
            hole = next;
        }
    }
    memset(&hg_entries[hole], 0, sizeof hg_entries[hole]);
    hg_fill.used--;
    return true;
}

/* Inlined wherever it is called, fn with it: called through the pointer for each block, the
 * exit's pass over 10 M blocks (hg_collect) took 10 ms longer, which is what happened when a
 * fourth caller made the compiler keep one copy of it. */
HG_INLINED_ACROSS_FILES void hg_liveset_for_each(void (*fn)(const hg_block_t *)) {
    for (size_t i = 0; i < hg_capacity; i++) {
        if (hg_entries[i].ptr == 0) continue;
        hg_block_t block = hg_block_of(&hg_entries[i], false);
        fn(&block);
    }
}

size_t hg_liveset_count(void) { return hg_fill.used; }

uint64_t hg_liveset_large_size(uint64_t ptr) { return hg_large_take(ptr, false); }

void *hg_liveset_release(size_t *bytes) {
    void *table = hg_entries;
    *bytes = hg_capacity * sizeof(hg_entry_t);
    hg_entries = NULL;
    hg_capacity = 0;
    hg_capacity_log2 = 0;
    hg_fill.used = 0;
    return table;
}

void hg_liveset_exclude_from_scan(void) {
    if (hg_entries) hg_leakscan_exclude(hg_entries, hg_capacity * sizeof(hg_entry_t));
    if (hg_large) hg_leakscan_exclude(hg_large, hg_large_capacity * sizeof *hg_large);
}
