/*
 * The blocks in use, as the drain thread sees them (in ring order, so always a consistent
 * history). Only the drain thread touches it, so it needs no synchronisation. It gives a fork
 * child the blocks it inherited and is the set an exit-time scan classifies.
 *
 * Open addressing with linear probing and backward-shift deletion (no tombstones), in an
 * anonymous mapping that doubles when three quarters full. Key 0 marks an empty slot
 * (no allocation is ever at address 0).
 */
#include <string.h>
#include <sys/mman.h>

#include "hg_internal.h"

static hg_block_t *hg_blocks;
static size_t hg_capacity; /* a power of two: 1 << hg_capacity_log2 */
static unsigned hg_capacity_log2;
static size_t hg_used;

/* Fibonacci hashing: the top bits of the product. Blocks are 16-byte aligned and often handed
 * out in address order; the top bits spread such runs evenly, where low or middle bits cluster. */
static size_t hg_slot_of(uint64_t ptr) {
    return (size_t)(((ptr >> 4) * 0x9e3779b97f4a7c15ull) >> (64 - hg_capacity_log2));
}

static bool hg_liveset_grow(void) {
    size_t capacity = hg_capacity ? hg_capacity * 2 : (1u << 16);
    /* MAP_POPULATE: a hash table touches every page soon anyway, and a page first read (the
     * shared zero page) then written costs a copy-on-write fault and a TLB-flush IPI to the
     * other cores each time. */
    void *map = mmap(NULL, capacity * sizeof(hg_block_t), PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (map == MAP_FAILED) return false;
    hg_block_t *old = hg_blocks;
    size_t old_capacity = hg_capacity;
    hg_blocks = map;
    hg_capacity = capacity;
    hg_capacity_log2 = (unsigned)__builtin_ctzll(capacity);
    for (size_t i = 0; i < old_capacity; i++) {
        if (old[i].ptr == 0) continue;
        size_t slot = hg_slot_of(old[i].ptr);
        while (hg_blocks[slot].ptr != 0) slot = (slot + 1) & (hg_capacity - 1);
        hg_blocks[slot] = old[i];
    }
    if (old) munmap(old, old_capacity * sizeof(hg_block_t));
    return true;
}

void hg_liveset_prefetch(uint64_t ptr) {
    if (hg_capacity) __builtin_prefetch(&hg_blocks[hg_slot_of(ptr)], 1);
}

bool hg_liveset_insert(uint64_t ptr, uint64_t size, hg_stack_ref_t stack) {
    if ((hg_used + 1) * 4 > hg_capacity * 3 && !hg_liveset_grow()) return false;
    size_t slot = hg_slot_of(ptr);
    while (hg_blocks[slot].ptr != 0 && hg_blocks[slot].ptr != ptr) slot = (slot + 1) & (hg_capacity - 1);
    if (hg_blocks[slot].ptr == 0) hg_used++;
    hg_blocks[slot] = (hg_block_t){.ptr = ptr, .size = size, .stack = stack};
    return true;
}

bool hg_liveset_remove(uint64_t ptr, hg_block_t *out) {
    if (hg_capacity == 0) return false;
    size_t slot = hg_slot_of(ptr);
    while (hg_blocks[slot].ptr != ptr) {
        if (hg_blocks[slot].ptr == 0) return false;
        slot = (slot + 1) & (hg_capacity - 1);
    }
    if (out) *out = hg_blocks[slot];
    /* Backward-shift: pull later members of the probe run into the hole. */
    size_t hole = slot;
    for (size_t next = (hole + 1) & (hg_capacity - 1); hg_blocks[next].ptr != 0; next = (next + 1) & (hg_capacity - 1)) {
        size_t home = hg_slot_of(hg_blocks[next].ptr);
        bool movable = hole <= next ? (home <= hole || home > next) : (home <= hole && home > next);
        if (movable) {
            hg_blocks[hole] = hg_blocks[next];
            hole = next;
        }
    }
    memset(&hg_blocks[hole], 0, sizeof hg_blocks[hole]);
    hg_used--;
    return true;
}

void hg_liveset_for_each(void (*fn)(const hg_block_t *)) {
    for (size_t i = 0; i < hg_capacity; i++)
        if (hg_blocks[i].ptr != 0) fn(&hg_blocks[i]);
}

size_t hg_liveset_count(void) { return hg_used; }

void hg_liveset_region(const void **start, size_t *length) {
    *start = hg_blocks;
    *length = hg_capacity * sizeof(hg_block_t);
}
