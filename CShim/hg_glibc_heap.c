/*
 * Which memory around a block glibc's malloc owns, for the exit-time scan: that memory (a
 * thread arena's heap, an mmap'd chunk) holds free chunks with stale pointers and is left out
 * of the roots, while the rest of the same mapping is the program's and is a root.
 *
 * Why not leave out the whole mapping that holds a block: the kernel merges neighbouring
 * anonymous mappings with the same protection and flags into one line of /proc/self/maps, so
 * glibc's memory and memory the program mapped itself can share one. A thread arena's heap
 * is made by unmapping the part of a larger reservation below a 64 MiB boundary, and the
 * program's next mmap of a fitting size lands in that hole, right below the heap (top-down
 * placement); an mmap'd chunk's neighbour is whatever was mapped next. Python's object
 * arenas merged that way: blocks reachable only from them (dictionary tables of the types'
 * dicts) were reported definitely lost, 1–13 KB a run of `python3 -c …`, where memcheck,
 * which scans every client mapping and keeps its heap elsewhere, reports none.
 *
 * glibc's layout (malloc/malloc.c, malloc/arena.c, stable since 2.26): a chunk's header is
 * the 16 bytes before the block, prev_size then size, the size's bit 1 IS_MMAPPED and bit 2
 * NON_MAIN_ARENA. An mmap'd chunk's prev_size is its offset from the start of its own mapping
 * (memalign), which holds nothing else: [chunk − prev_size, chunk + size), page-aligned. A
 * thread arena's chunk lies in a heap that starts at a multiple of HEAP_MAX_SIZE (64 MiB on
 * 64-bit; only a glibc.malloc.hugetlb tunable changes it) with a heap_info whose size and
 * mprotect_size say how much of it is in use. The main arena is the brk heap ("[heap]"): its
 * whole mapping counts as glibc's, as before.
 *
 * The headers are copied with process_vm_readv, so a block without a header (or one freed by
 * a thread that is still running) cannot fault. A header that does not check out answers
 * "unknown", and the scan then leaves the rest of the mapping out, as it did all of it before.
 *
 * A thread arena's heap that holds no block at exit (its thread freed everything, as worker
 * threads do) has no header to be found from, and it is still full of freed chunks whose
 * stale pointers made blocks elsewhere reachable: a worker's freed struct that had held the
 * only pointer to a main-thread block kept that block "still reachable" where memcheck says
 * definitely lost. Such a heap is found at its 64 MiB boundary instead, by its heap_info
 * alone (hg_glibc_heap_in).
 */
#include <unistd.h>

#include "hg_internal.h"

#define HG_CHUNK_HEADER 16
#define HG_IS_MMAPPED 2ull
#define HG_NON_MAIN_ARENA 4ull
#define HG_CHUNK_FLAGS 7ull
#define HG_HEAP_MAX_SIZE (64ull << 20)

/* An mmap'd chunk's own mapping. */
static bool hg_mmapped_chunk_region(uintptr_t chunk, uint64_t prev_size, uint64_t size, uintptr_t block_end,
                                    uintptr_t *from, uintptr_t *to) {
    uint64_t page = (uint64_t)getpagesize();
    uint64_t chunk_size = size & ~HG_CHUNK_FLAGS;
    if (prev_size > chunk || ((chunk - prev_size) | (prev_size + chunk_size)) & (page - 1)) return false;
    *from = chunk - prev_size;
    *to = chunk + chunk_size;
    return block_end <= *to;
}

/* The in-use part of the thread arena's heap that holds `chunk`. */
static bool hg_arena_heap_region(uintptr_t chunk, uintptr_t block_end, uintptr_t *from, uintptr_t *to) {
    uintptr_t heap = chunk & ~(uintptr_t)(HG_HEAP_MAX_SIZE - 1);
    struct {
        uint64_t arena, previous, size, mprotect_size;
    } info;
    if (!hg_read_own(&info, heap, sizeof info) || info.arena == 0) return false;
    uint64_t in_use = info.size > info.mprotect_size ? info.size : info.mprotect_size;
    if (in_use > HG_HEAP_MAX_SIZE) return false;
    *from = heap;
    *to = heap + in_use;
    return block_end <= *to;
}

/* heap_info (malloc/arena.c): ar_ptr, prev, size, mprotect_size, and since glibc 2.35 pagesize,
 * padded to 32 or 48 bytes. A thread arena's first heap holds its malloc_state right after it
 * (ar_ptr == heap + sizeof heap_info); a later heap of a grown arena points at that first heap's
 * state and at the heap before it. */
typedef struct {
    uint64_t arena, previous, size, mprotect_size, page_size;
} hg_heap_info_t;

static bool hg_is_heap_info(uintptr_t heap, const hg_heap_info_t *info, uintptr_t map_end) {
    uint64_t page = (uint64_t)getpagesize(), offset = info->arena & (HG_HEAP_MAX_SIZE - 1);
    bool since_2_35 = offset == 48 && info->page_size >= page && !(info->page_size & (info->page_size - 1));
    if (offset != 32 && !since_2_35) return false;
    bool first = info->arena == heap + offset;
    if (!first) {
        /* A later heap: the arena's first heap must say the same arena. */
        uint64_t first_arena;
        if (info->previous == 0 || (info->previous & (HG_HEAP_MAX_SIZE - 1)) || info->previous == heap ||
            !hg_read_own(&first_arena, info->arena - offset, sizeof first_arena) || first_arena != info->arena)
            return false;
    }
    if (info->size == 0 || info->size > HG_HEAP_MAX_SIZE || info->mprotect_size > HG_HEAP_MAX_SIZE) return false;
    return !((info->size | info->mprotect_size) & (page - 1)) && heap + info->size <= map_end;
}

uintptr_t hg_glibc_heap_in(uintptr_t from, uintptr_t end, uintptr_t *to) {
    for (uintptr_t heap = (from + HG_HEAP_MAX_SIZE - 1) & ~(uintptr_t)(HG_HEAP_MAX_SIZE - 1); heap >= from && heap < end;
         heap += HG_HEAP_MAX_SIZE) {
        hg_heap_info_t info;
        if (!hg_read_own(&info, heap, sizeof info) || !hg_is_heap_info(heap, &info, end)) continue;
        uint64_t in_use = info.size > info.mprotect_size ? info.size : info.mprotect_size;
        *to = heap + in_use < end ? heap + in_use : end;
        return heap;
    }
    return 0;
}

bool hg_glibc_usable_size(uintptr_t block, uint64_t *usable) {
    uint64_t size;
    if (block < HG_CHUNK_HEADER || !hg_read_own(&size, block - 8, sizeof size)) return false;
    uint64_t chunk_size = size & ~HG_CHUNK_FLAGS, header = size & HG_IS_MMAPPED ? HG_CHUNK_HEADER : 8;
    if (chunk_size < header) return false;
    *usable = chunk_size - header; /* glibc's musable(): an in-use chunk also owns the next one's prev_size */
    return true;
}

bool hg_glibc_region_of(uintptr_t block, uint64_t size, uintptr_t map_start, uintptr_t map_end, uintptr_t *from,
                        uintptr_t *to) {
    uint64_t header[2]; /* prev_size, size */
    if (block < map_start + HG_CHUNK_HEADER || !hg_read_own(header, block - HG_CHUNK_HEADER, sizeof header)) return false;
    uintptr_t chunk = block - HG_CHUNK_HEADER, block_end = block + size;
    bool known;
    if (header[1] & HG_IS_MMAPPED) {
        known = hg_mmapped_chunk_region(chunk, header[0], header[1], block_end, from, to);
    } else if (header[1] & HG_NON_MAIN_ARENA) {
        known = hg_arena_heap_region(chunk, block_end, from, to);
    } else {
        *from = map_start; /* the main arena */
        *to = map_end;
        known = true;
    }
    return known && *from >= map_start && *to <= map_end && *to > block;
}
