/*
 * The exit-time leak scan: classifies every block in use the way memcheck does, while the
 * memory still exists, and writes each block of the exit snapshot with its verdict.
 *
 * Why in-process and without ptrace: the memory is gone once the process exits, and ptrace is
 * refused in many CI containers (LeakSanitizer and gperftools fail there). The scan runs in the
 * shim's destructor (or _exit), after the drain thread has applied every recorded event, so the
 * live set is exactly the blocks in use.
 *
 * Roots are every readable and writable mapping of the process, except:
 *  - the memory glibc's malloc owns (its arenas and mmap'd chunks): their free chunks still hold
 *    stale pointers; only live blocks are scanned, and only when reached. The rest of a mapping
 *    that holds blocks is the program's (the kernel merges neighbouring mappings; see
 *    hg_glibc_heap.c) and is a root;
 *  - the shim's own memory (its data segments, its mappings, the drain thread's stack);
 *  - the part of this thread's stack below the frame that called into the shim.
 * Other threads keep running; their registers are not visible without stopping them, so their
 * whole stack mappings are scanned instead (conservative: stale frames can only make a block
 * look reachable, never lost). While they run, the marking reads a copy of the process taken at
 * one instant (hg_mark_in_snapshot), so that memory they change under the scan cannot hide a
 * pointer. Roots are read with process_vm_readv, which reports unmapped or unreadable pages as
 * errors instead of faulting.
 *
 * Marking follows memcheck (mc_leakcheck.c, described in valgrind's manual):
 *  - a start pointer from a root or from a reachable block makes a block reachable;
 *  - any other pointer into a block (interior, or from a possibly lost block) makes it possibly lost;
 *  - blocks never reached form cliques: in address order, an unreached block becomes definitely
 *    lost and everything reachable only from it indirectly lost, counted under it.
 * Known layouts turn an interior pointer into a start pointer (see hg_interior_is_reference).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "hg_internal.h"
#include "hg_trace_format.h"

enum { HG_UNREACHED = 0, HG_POSSIBLE, HG_REACHABLE, HG_DEFINITE, HG_INDIRECT };

/* A block, 16 bytes: the scan sorts 10 M of them, and every byte of a fresh mapping is a page
 * fault and a page zeroed (with 32-byte blocks, faulting in the array and its sort scratch was
 * a third of a 10 M-block scan). What only the marking needs lives in arrays beside it. */
typedef struct {
    uint64_t start;
    uint32_t size; /* HG_SIZE_ELSEWHERE: 4 GiB or more (hg_size) */
    hg_stack_ref_t stack;
} hg_scan_block_t;

_Static_assert(sizeof(hg_scan_block_t) == 16, "a block is 16 bytes");

/* hg_marks holds, per block, its state (HG_UNREACHED...) in the low 3 bits, the heuristic
 * that made it reachable (hg_heuristic_t) in the next 3, and: */
#define HG_STATE_BITS 0x07
#define HG_HEURISTIC_SHIFT 3
#define HG_HEURISTIC_BITS (0x07 << HG_HEURISTIC_SHIFT)
#define HG_BY_SWIFT_RUNTIME 0x80 /* allocated from libswiftCore.so (its layouts are known) */

/* The shim's own ranges. At most: the stacks' arena chunks (256, hg_stacks.c), the unwinder's
 * mappings of running threads and spare ones (272, hg_unwind.c), and a few dozen tables
 * and segments, the scan's own four last. A range past the end would be dropped and scanned
 * as a root: at 384, a program with 256 threads running at exit and 1.6 GB of distinct stacks
 * would have lost the scan's block table that way, and every block would have been reachable
 * (found in review; no test: it takes that many threads and stacks). */
#define HG_MAX_EXCLUSIONS 1024
static struct {
    uintptr_t start, end;
} hg_exclusions[HG_MAX_EXCLUSIONS];
static _Atomic int hg_exclusion_count;

void hg_leakscan_exclude(const void *start, size_t length) {
    /* The same range again (a restarted drain thread gets its predecessor's cached stack) needs
     * no second entry: a program that unshares in a loop would otherwise fill the list. */
    int known = atomic_load(&hg_exclusion_count);
    for (int i = 0; i < known && i < HG_MAX_EXCLUSIONS; i++)
        if (hg_exclusions[i].start == (uintptr_t)start && hg_exclusions[i].end == (uintptr_t)start + length) return;
    int index = atomic_fetch_add(&hg_exclusion_count, 1);
    if (index >= HG_MAX_EXCLUSIONS) return;
    hg_exclusions[index].start = (uintptr_t)start;
    hg_exclusions[index].end = (uintptr_t)start + length;
}

static hg_scan_block_t *hg_blocks;
static size_t hg_block_count;
static uint8_t *hg_marks;    /* per block: state, heuristic, HG_BY_SWIFT_RUNTIME (above) */
static uint32_t *hg_leaders; /* per block, HG_INDIRECT only: the block it is counted under */
static uint32_t *hg_work;
static size_t hg_work_count;
static uint64_t hg_lowest, hg_highest; /* address range covered by blocks */

/* Anonymous memory for the scan's own tables. Only the page index, a hash table written at
 * random, is populated up front (see hg_liveset.c); the others are filled in order, or (the
 * work stack) mostly never touched, so their pages are zeroed only as they are used. */
static void *hg_map_flags(size_t bytes, int flags) {
    if (bytes == 0) bytes = 1;
    void *map = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | flags, -1, 0);
    return map == MAP_FAILED ? NULL : map;
}

static void *hg_map(size_t bytes) { return hg_map_flags(bytes, MAP_PRIVATE); }

/* Memory the marking writes and the process reads after it: shared with the snapshot that
 * marks (hg_mark_in_snapshot). */
static void *hg_map_shared(size_t bytes) { return hg_map_flags(bytes, MAP_SHARED); }

/* ---- the blocks, sorted by address ---- */

static size_t hg_fill_index;
static uintptr_t hg_swift_runtime_start, hg_swift_runtime_end; /* libswiftCore.so */
static uintptr_t hg_glibc_data_start, hg_glibc_data_end;         /* libc.so.6, where main_arena lives */

/* The address range a loaded module whose path ends with suffix spans (0, 0 if none). */
static void hg_module_range(const char *suffix, uintptr_t *range_start, uintptr_t *range_end) {
    size_t suffix_length = strlen(suffix);
    for (uint32_t i = 0; i < hg_modules_count(); i++) {
        const hg_module_t *module = hg_modules_get(i);
        size_t length = strlen(module->path);
        if (!module->loaded || length < suffix_length || strcmp(module->path + length - suffix_length, suffix) != 0)
            continue;
        for (uint32_t s = 0; s < module->segment_count; s++) {
            uintptr_t start = module->base + module->seg_vaddr[s], end = start + module->seg_memsz[s];
            if (!*range_start || start < *range_start) *range_start = start;
            if (end > *range_end) *range_end = end;
        }
    }
}

/* A block of 4 GiB or more keeps its size where the live set already has it. */
static uint64_t hg_size(const hg_scan_block_t *block) {
    return HG_LIKELY(block->size != HG_SIZE_ELSEWHERE) ? block->size : hg_liveset_large_size(block->start);
}

static void hg_collect(const hg_block_t *block) {
    hg_stack_order_note(block->stack);
    hg_blocks[hg_fill_index++] = (hg_scan_block_t){.start = block->ptr, .size = hg_size_field(block->size), .stack = block->stack};
}

/* Marks the blocks whose allocation the Swift runtime made (frame 0 is the allocator entry
 * point, frame 1 its caller), once they are in order. */
static void hg_note_swift_runtime_blocks(void) {
    if (!hg_swift_runtime_end) return;
    for (size_t i = 0; i < hg_block_count; i++) {
        if (!hg_blocks[i].stack) continue;
        const hg_stack_t *stack = hg_stacks_get(hg_blocks[i].stack);
        if (stack->depth > 1 && stack->ips[1] >= hg_swift_runtime_start && stack->ips[1] < hg_swift_runtime_end)
            hg_marks[i] |= HG_BY_SWIFT_RUNTIME;
    }
}

/* LSD radix sort on the start address, 8 bits a pass, skipping passes where every key has the
 * same byte (heap addresses share their high bytes): 10 M blocks sort in well under a second.
 * Through `scratch` (the live set's old table, at least as large as the blocks); the result
 * ends in whichever of the two the last pass wrote, which becomes hg_blocks. */
static void hg_sort_blocks(hg_scan_block_t *scratch) {
    if (hg_block_count < 2) return;
    hg_scan_block_t *from = hg_blocks, *to = scratch;
    for (int shift = 0; shift < 64; shift += 8) {
        size_t counts[256] = {0};
        for (size_t i = 0; i < hg_block_count; i++) counts[(from[i].start >> shift) & 0xff]++;
        if (counts[(from[0].start >> shift) & 0xff] == hg_block_count) continue;
        size_t offset = 0;
        for (int digit = 0; digit < 256; digit++) {
            size_t count = counts[digit];
            counts[digit] = offset;
            offset += count;
        }
        for (size_t i = 0; i < hg_block_count; i++) to[counts[(from[i].start >> shift) & 0xff]++] = from[i];
        hg_scan_block_t *swap = from;
        from = to;
        to = swap;
    }
    hg_blocks = from;
}

/* A page index over the sorted blocks: page number -> the first block overlapping that page.
 * Finding the block a word points into costs one probe of a small table and a short forward
 * walk through neighbouring blocks, where a binary search over millions of blocks would miss
 * the cache at every step (the exit-time scan of 10 M blocks looks up every word it reads). */
typedef struct {
    uint64_t page_plus_one; /* 0 = empty slot */
    uint32_t first;
} hg_page_slot_t;

static hg_page_slot_t *hg_pages;
static size_t hg_page_capacity; /* a power of two */

static size_t hg_page_slot(uint64_t page) {
    return (size_t)((page * 0x9e3779b97f4a7c15ull) >> 17) & (hg_page_capacity - 1);
}

static uint64_t hg_last_page(const hg_scan_block_t *block) {
    uint64_t size = hg_size(block);
    return (block->start + (size ? size - 1 : 0)) >> 12;
}

static bool hg_build_page_index(void) {
    uint64_t pages = 0, last_page = UINT64_MAX;
    for (size_t i = 0; i < hg_block_count; i++) {
        uint64_t first = hg_blocks[i].start >> 12, last = hg_last_page(&hg_blocks[i]);
        if (first == last_page) first++;
        if (last >= first) pages += last - first + 1;
        if (last_page == UINT64_MAX || last > last_page) last_page = last;
    }
    hg_page_capacity = 1024;
    while (hg_page_capacity < pages * 2) hg_page_capacity *= 2;
    hg_pages = hg_map_flags(hg_page_capacity * sizeof *hg_pages, MAP_PRIVATE | MAP_POPULATE);
    if (!hg_pages) return false;
    hg_leakscan_exclude(hg_pages, hg_page_capacity * sizeof *hg_pages);
    for (size_t i = 0; i < hg_block_count; i++) {
        for (uint64_t page = hg_blocks[i].start >> 12; page <= hg_last_page(&hg_blocks[i]); page++) {
            size_t slot = hg_page_slot(page);
            while (hg_pages[slot].page_plus_one && hg_pages[slot].page_plus_one != page + 1)
                slot = (slot + 1) & (hg_page_capacity - 1);
            if (hg_pages[slot].page_plus_one) continue; /* an earlier block already overlaps it */
            hg_pages[slot] = (hg_page_slot_t){.page_plus_one = page + 1, .first = (uint32_t)i};
        }
    }
    return true;
}

/* The block containing address, or -1. A zero-sized block is hit only by its start. */
static ssize_t hg_find_block(uint64_t address) {
    if (address < hg_lowest || address >= hg_highest) return -1;
    uint64_t page = address >> 12;
    size_t slot = hg_page_slot(page);
    while (hg_pages[slot].page_plus_one != page + 1) {
        if (hg_pages[slot].page_plus_one == 0) return -1; /* no block overlaps the page */
        slot = (slot + 1) & (hg_page_capacity - 1);
    }
    for (size_t i = hg_pages[slot].first; i < hg_block_count && hg_blocks[i].start <= address; i++) {
        const hg_scan_block_t *block = &hg_blocks[i];
        if (address == block->start || address < block->start + hg_size(block)) return (ssize_t)i;
    }
    return -1;
}

/* ---- layouts whose only reference is an interior pointer ---- */

/* Blocks this large may be glibc's mmap'd chunks, which a thread still running can unmap
 * while the scan reads them: they are only ever read with process_vm_readv. */
#define HG_SAFE_READ_BYTES (64 * 1024)

/* Copies n bytes at address, inside block: in place for a small block, with process_vm_readv
 * (false if it is gone) for a large one. */
static bool hg_peek(const hg_scan_block_t *block, uint64_t address, void *out, size_t n) {
    if (hg_size(block) < HG_SAFE_READ_BYTES) {
        memcpy(out, (const void *)(uintptr_t)address, n);
        return true;
    }
    return hg_read_own(out, address, n);
}

static bool hg_is_power_of_two(uint64_t value) { return value && !(value & (value - 1)); }

/* A Rust hashbrown RawTable keeps `ctrl`, which points past the buckets into the middle of its
 * allocation: [buckets: n * size_of T][ctrl bytes: n + 16]. A static HashMap is reachable only
 * through it (memcheck calls every entry of such a map possibly lost). Recognised when the
 * block ends exactly n + 16 bytes after the pointer, n is a power of two, the pointer is 16-byte
 * aligned within the block, every control byte is EMPTY (0xff), DELETED (0x80) or FULL
 * (0x00-0x7f), and the table's own invariants hold: the 16 bytes after the n are the mirror
 * hashbrown keeps of the first group (ctrl[n + i] == ctrl[i]; below 16 buckets, ctrl[16 + i]
 * == ctrl[i] and the rest of the first group EMPTY), and at least one of the n is EMPTY (a
 * table holds at most 7/8 of n, or n - 1 below 8, FULL and DELETED together). Zeroed memory
 * passed the byte check alone: Tcl's 38,400-byte buffer, reached 48 bytes before its end, was
 * "still reachable" where memcheck says possibly lost. */
static bool hg_is_hashbrown_ctrl(const hg_scan_block_t *block, uint64_t address) {
    uint64_t offset = address - block->start;
    uint64_t tail = hg_size(block) - offset;
    if (tail < 17 || offset % 16 != 0) return false;
    uint64_t buckets = tail - 16;
    if (!hg_is_power_of_two(buckets) || offset < buckets) return false;
    uint8_t ctrl[4096];
    bool empty_seen = false;
    for (uint64_t done = 0; done < tail; done += sizeof ctrl) {
        size_t n = tail - done < sizeof ctrl ? (size_t)(tail - done) : sizeof ctrl;
        if (!hg_peek(block, address + done, ctrl, n)) return false;
        for (size_t i = 0; i < n; i++) {
            if (ctrl[i] & 0x80 && ctrl[i] != 0xff && ctrl[i] != 0x80) return false;
            if (done + i < buckets && ctrl[i] == 0xff) empty_seen = true;
        }
    }
    if (!empty_seen) return false;
    /* The first group and its mirror. */
    uint8_t group[32];
    if (buckets >= 16) {
        if (!hg_peek(block, address, group, 16) || !hg_peek(block, address + buckets, group + 16, 16)) return false;
        return memcmp(group, group + 16, 16) == 0;
    }
    if (!hg_peek(block, address, group, (size_t)tail)) return false; /* tail = buckets + 16 < 32 */
    for (uint64_t i = 0; i < 16; i++)
        if (i < buckets ? group[16 + i] != group[i] : group[i] != 0xff) return false;
    return true;
}

/* memcheck's heuristics (--leak-check-heuristics=all, its default), each for a known layout:
 *  - newarray: C++ new[] of a type with a destructor returns start + 8, after the element count;
 *  - length64: a 64-bit length prefix, pointer to start + 8;
 *  - stdstring: the pre-C++11 std::string representation, pointer to start + 24 (length,
 *    capacity, refcount first);
 *  - multipleinheritance: a C++ object reached through a secondary base (hg_vtables.c).
 * And heapgate's own, for layouts memcheck does not know (each has a fixture):
 *  - a block the Swift runtime allocated, reached through a low-bit-tagged pointer;
 *  - a Rust hashbrown table reached through its control bytes. */
static bool hg_interior_is_reference(size_t index, uint64_t address, hg_heuristic_t *heuristic) {
    const hg_scan_block_t *block = &hg_blocks[index];
    uint64_t offset = address - block->start, size = hg_size(block);
    *heuristic = HG_HEURISTIC_NONE;
    /* The Swift runtime's ConcurrentReadableHashMap keeps its index storage as a pointer with
     * its low bit set (Swift 6); such a block is reached only through start + 1. */
    if ((hg_marks[index] & HG_BY_SWIFT_RUNTIME) && offset < 8) return true;
    uint64_t words[2]; /* the block's first two words */
    if (offset == 8 && hg_peek(block, block->start, words, 8)) {
        if (words[0] == size - 8) *heuristic = HG_HEURISTIC_LENGTH64;
        else if (words[0] > 0 && (size - 8) % words[0] == 0 && words[0] <= size) *heuristic = HG_HEURISTIC_NEWARRAY;
    }
    if (offset == 24 && size >= 25 && hg_peek(block, block->start, words, 16)) {
        uint64_t length = words[0], capacity = words[1];
        if (capacity == size - 25 && length <= capacity) *heuristic = HG_HEURISTIC_STDSTRING;
    }
    /* Only for small blocks, read in place: every aligned interior pointer asks, and pointers
     * into large buffers are common, where C++ objects of 64 KiB with vtables are not. */
    if (size < HG_SAFE_READ_BYTES && offset % 8 == 0 && offset + 8 <= size &&
        hg_is_secondary_base(*(const uint64_t *)(uintptr_t)block->start, *(const uint64_t *)(uintptr_t)address))
        *heuristic = HG_HEURISTIC_MULTIPLE_INHERITANCE;
    return *heuristic != HG_HEURISTIC_NONE || hg_is_hashbrown_ctrl(block, address);
}

/* A Swift object whose refcount moved to a side table stores, in its refcount word, the side
 * table's address shifted right by 3 with the two top bits set (UseSlowRC | SideTableMark;
 * swiftlang/swift include/swift/Runtime/RefCount.h). A plain scan never sees the address and
 * reports every side table as lost, which is why LeakSanitizer is unusable on Swift on Linux. */
static uint64_t hg_decode_swift_side_table(uint64_t word) {
    if ((word >> 62) != 3) return 0;
    return (word & ~(3ull << 62)) << 3;
}

/* ---- marking ---- */

static unsigned hg_mark_of(size_t index) { return hg_marks[index] & HG_STATE_BITS; }

static void hg_set_mark(size_t index, unsigned state) {
    hg_marks[index] = (uint8_t)((hg_marks[index] & ~HG_STATE_BITS) | state);
}

static hg_heuristic_t hg_heuristic_of(size_t index) {
    return (hg_heuristic_t)((hg_marks[index] & HG_HEURISTIC_BITS) >> HG_HEURISTIC_SHIFT);
}

static void hg_set_heuristic(size_t index, hg_heuristic_t heuristic) {
    hg_marks[index] = (uint8_t)((hg_marks[index] & ~HG_HEURISTIC_BITS) | (heuristic << HG_HEURISTIC_SHIFT));
}

static void hg_push(uint32_t index) { hg_work[hg_work_count++] = index; }

/* True while the root being scanned is glibc's own data. */
static bool hg_root_is_glibc;

/* glibc's malloc state (main_arena's top chunk, bins, last remainder) holds chunk addresses.
 * A chunk's header overlaps the last 8 usable bytes of the block before it, so such a word
 * looks like an interior pointer into that block; memcheck never sees it (its allocator is
 * its own). Only words in glibc's data and at exactly that offset are ignored. */
static bool hg_is_glibc_chunk_header(const hg_scan_block_t *block, uint64_t word) {
    uint64_t usable;
    if (!hg_root_is_glibc || !hg_glibc_usable_size(block->start, &usable)) return false;
    return usable >= 8 && word == block->start + usable - 8;
}

/* A word seen from a root (definite) or from a block of the given state. */
static void hg_consider(uint64_t word, bool from_definite) {
    ssize_t found = hg_find_block(word);
    bool interior = found >= 0 && word != hg_blocks[found].start;
    if (found < 0) {
        uint64_t side_table = hg_decode_swift_side_table(word);
        if (!side_table || (found = hg_find_block(side_table)) < 0 || hg_blocks[found].start != side_table) return;
    }
    unsigned state = hg_mark_of((size_t)found);
    if (state == HG_REACHABLE) {
        /* As memcheck: a block that a heuristic made reachable is plainly reachable once a
         * start pointer (or a layout of heapgate's own) from reachable memory reaches it. */
        hg_heuristic_t heuristic = HG_HEURISTIC_NONE;
        if (from_definite && hg_heuristic_of((size_t)found) != HG_HEURISTIC_NONE &&
            (!interior || hg_interior_is_reference((size_t)found, word, &heuristic)) && heuristic == HG_HEURISTIC_NONE)
            hg_set_heuristic((size_t)found, HG_HEURISTIC_NONE);
        return;
    }
    bool start_like = true;
    hg_heuristic_t heuristic = HG_HEURISTIC_NONE;
    if (interior) {
        /* Nothing it could say changes a block already possibly lost, unless it is definite:
         * the layout checks below may read memory, so they run only when it matters. */
        if (state != HG_UNREACHED && !from_definite) return;
        if (hg_is_glibc_chunk_header(&hg_blocks[found], word)) return;
        start_like = hg_interior_is_reference((size_t)found, word, &heuristic);
    }
    if (start_like && from_definite) {
        hg_set_mark((size_t)found, HG_REACHABLE); /* pushed at most twice: once possible, once reachable */
        hg_set_heuristic((size_t)found, heuristic);
        hg_push((uint32_t)found);
    } else if (state == HG_UNREACHED) {
        hg_set_mark((size_t)found, HG_POSSIBLE);
        hg_push((uint32_t)found);
    }
}

static void hg_scan_words(const uint64_t *words, size_t count, bool from_definite) {
    for (size_t i = 0; i < count; i++)
        if (words[i] >= hg_lowest) hg_consider(words[i], from_definite);
}

typedef void (*hg_word_visitor_t)(const uint64_t *words, size_t count, size_t context);

#define HG_COPY_WORDS 8192

/* Copies [start, end) of our own memory in chunks into buffer (HG_COPY_WORDS words, in the
 * shim's .bss, which is never a root) and hands each chunk to visit. An unmapped or unreadable
 * page is an error from process_vm_readv, not a fault: it is skipped. */
static void hg_read_safely(uintptr_t start, uintptr_t end, uint64_t *buffer, hg_word_visitor_t visit, size_t context) {
    start = (start + 7) & ~(uintptr_t)7;
    while (start + 8 <= end) {
        size_t want = end - start < HG_COPY_WORDS * 8 ? (end - start) & ~(size_t)7 : HG_COPY_WORDS * 8;
        struct iovec local = {buffer, want}, remote = {(void *)start, want};
        ssize_t got = process_vm_readv(gettid(), &local, 1, &remote, 1, 0); /* see hg_own_memory.c */
        if (got <= 0) {
            start = (start + 4096) & ~(uintptr_t)4095;
            continue;
        }
        visit(buffer, (size_t)got / 8, context);
        start += (size_t)got;
    }
}

/* Hands a block's words to visit. Threads that are still running may free blocks while the
 * scan runs, and glibc gives large blocks (mmap'd chunks, 128 KiB and up by default) straight
 * back to the kernel: those are copied with process_vm_readv, which reports an unmapped page
 * instead of faulting (HG_SAFE_READ_BYTES, hg_peek). Small blocks live in arenas that stay
 * mapped and are read in place. */

static void hg_read_block(const hg_scan_block_t *block, hg_word_visitor_t visit, size_t context) {
    static uint64_t buffer[HG_COPY_WORDS];
    uint64_t size = hg_size(block);
    if (size < HG_SAFE_READ_BYTES)
        visit((const uint64_t *)block->start, size / 8, context);
    else
        hg_read_safely(block->start, block->start + size, buffer, visit, context);
}

static void hg_visit_marking(const uint64_t *words, size_t count, size_t from_definite) {
    hg_scan_words(words, count, from_definite != 0);
}

static void hg_propagate(void) {
    while (hg_work_count > 0) {
        uint32_t index = hg_work[--hg_work_count];
        hg_read_block(&hg_blocks[index], hg_visit_marking, hg_mark_of(index) == HG_REACHABLE);
    }
}

/* ---- roots ---- */

static uint64_t hg_root_bytes;

/* A chunk of a root: its words are definite references, and what they reach is marked at once. */
static void hg_visit_root(const uint64_t *words, size_t count, size_t unused) {
    (void)unused;
    hg_root_bytes += count * 8;
    hg_scan_words(words, count, true);
    bool was_glibc = hg_root_is_glibc;
    hg_root_is_glibc = false; /* blocks reached from here are not glibc's data */
    hg_propagate();
    hg_root_is_glibc = was_glibc;
}

/* Reads [start, end) of our own memory safely and scans it as a root. */
static void hg_scan_root_range(uintptr_t start, uintptr_t end) {
    static uint64_t buffer[HG_COPY_WORDS];
    hg_root_is_glibc = start >= hg_glibc_data_start && start < hg_glibc_data_end;
    hg_read_safely(start, end, buffer, hg_visit_root, 0);
}

/* Scans [start, end) minus the exclusions. */
static void hg_scan_root(uintptr_t start, uintptr_t end) {
    int count = atomic_load(&hg_exclusion_count);
    if (count > HG_MAX_EXCLUSIONS) count = HG_MAX_EXCLUSIONS;
    for (int i = 0; i < count; i++) {
        uintptr_t ex_start = hg_exclusions[i].start, ex_end = hg_exclusions[i].end;
        if (ex_end <= start || ex_start >= end) continue;
        if (ex_start > start) hg_scan_root(start, ex_start);
        if (ex_end < end) hg_scan_root(ex_end, end);
        return;
    }
    hg_scan_root_range(start, end);
}

/* ---- other threads' stacks ---- */

#define HG_MAX_THREADS 4096
static uintptr_t hg_thread_descriptor_span;

void hg_leakscan_note_thread_descriptor(const void *stack_end, const void *thread_pointer) {
    if ((uintptr_t)stack_end > (uintptr_t)thread_pointer)
        hg_thread_descriptor_span = (uintptr_t)stack_end - (uintptr_t)thread_pointer;
}
static uintptr_t hg_thread_sps[HG_MAX_THREADS];
static size_t hg_thread_sp_count;
static bool hg_some_sp_unknown;
/* The argument registers (rdi, rsi, rdx, r10, r8, r9) of the threads blocked in a system call. */
#define HG_SYSCALL_ARGS 6
static uint64_t hg_thread_arguments[HG_MAX_THREADS * HG_SYSCALL_ARGS];
static size_t hg_thread_argument_count;
static bool hg_child_waiter; /* a thread waits for any child with __WALL or __WCLONE */

/* Calls visit(tid, context) for every other thread of the program (not this one, not the drain
 * thread) until it returns false; false when /proc/self/task cannot be read. */
static bool hg_for_each_other_thread(bool (*visit)(long tid, void *context), void *context) {
    int dir = hg_open_proc("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return false;
    pid_t self = gettid();
    char entries[4096];
    long count;
    bool going = true;
    while (going && (count = syscall(SYS_getdents64, dir, entries, sizeof entries)) > 0) {
        for (long at = 0; at < count && going;) {
            struct {
                uint64_t ino;
                int64_t off;
                unsigned short reclen;
                unsigned char type;
                char name[];
            } *entry = (void *)(entries + at);
            at += entry->reclen;
            long tid = strtol(entry->name, NULL, 10);
            if (tid > 0 && tid != self && tid != hg_drain_thread_id()) going = visit(tid, context);
        }
    }
    close(dir);
    return true;
}

/* The stack pointer of every other live thread, from /proc/self/task/TID/syscall (allowed for
 * one's own threads without ptrace): "NR ARGS… SP PC" when blocked in a system call, "-1 SP PC"
 * when blocked otherwise, "running" when on a CPU (then its stack cannot be bounded). A thread
 * blocked in a system call also gives the six argument registers, which are roots as memcheck's
 * scan of every thread's registers makes them: a worker blocked with the only pointer to its
 * buffer in one was definitely lost (`leakclass_c thread_syscall`). Its other registers are not
 * to be had without stopping it. */
static bool hg_collect_thread(long tid, void *unused) {
    (void)unused;
    char path[64], text[256];
    snprintf(path, sizeof path, "/proc/self/task/%ld/syscall", tid);
    int fd = hg_open_proc(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, text, sizeof text - 1) : -1;
    if (fd >= 0) close(fd);
    if (n <= 0) return true; /* the thread is gone */
    text[n] = '\0';
    /* The stack pointer is the second-to-last field. */
    char *fields[16];
    int found = 0;
    for (char *token = strtok(text, " \n"); token && found < 16; token = strtok(NULL, " \n")) fields[found++] = token;
    if (found < 3 || hg_thread_sp_count == HG_MAX_THREADS) {
        hg_some_sp_unknown = true;
        return true;
    }
    hg_thread_sps[hg_thread_sp_count++] = (uintptr_t)strtoull(fields[found - 2], NULL, 16);
    if (found == 1 + HG_SYSCALL_ARGS + 2) { /* in a system call ("-1 SP PC" has none) */
        uint64_t *arguments = &hg_thread_arguments[hg_thread_argument_count];
        for (int i = 1; i <= HG_SYSCALL_ARGS; i++)
            hg_thread_arguments[hg_thread_argument_count++] = strtoull(fields[i], NULL, 16);
        /* Waiting for any child with __WALL or __WCLONE, it would reap the copy that marks. */
        long number = strtol(fields[0], NULL, 10);
        uint64_t options = number == SYS_wait4 ? arguments[2] : number == SYS_waitid ? arguments[3] : 0;
        if (options & (__WALL | __WCLONE)) hg_child_waiter = true;
    }
    return true;
}

/* Stops at the first other thread that is on a CPU or preempted in the program's code. */
static bool hg_note_running(long tid, void *running) {
    char path[64], text[16];
    snprintf(path, sizeof path, "/proc/self/task/%ld/syscall", tid);
    int fd = hg_open_proc(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, text, sizeof text - 1) : -1;
    if (fd >= 0) close(fd);
    if (n < 7 || memcmp(text, "running", 7) != 0) return true;
    *(bool *)running = true;
    return false;
}

/* A thread that runs (or was preempted in the program's code) may hold a block's only pointer
 * in a register, which the scan cannot read: memcheck can, and a program exiting while its
 * threads allocate had such a block definitely lost (1 run in 40 of exit_while_allocating).
 * Such threads stop at their next malloc-family call (hg_exit_hold.c), which stores their
 * registers on the stack, or block in a system call. So the scan waits for that, a few
 * milliseconds at most: a thread that computes without allocating is not waited for longer. */
#define HG_WAIT_FOR_RUNNING_THREADS_US 20000
static void hg_wait_for_running_threads(void) {
    for (unsigned waited = 0; waited < HG_WAIT_FOR_RUNNING_THREADS_US; waited += 200) {
        bool running = false;
        if (!hg_for_each_other_thread(hg_note_running, &running) || !running) return;
        struct timespec pause = {0, 200000};
        nanosleep(&pause, NULL);
    }
}

static void hg_collect_thread_stack_pointers(void) {
    hg_wait_for_running_threads();
    if (!hg_for_each_other_thread(hg_collect_thread, NULL)) hg_some_sp_unknown = true;
}

/* Whether the mapping ending at `end` is a thread stack glibc made: its thread descriptor sits
 * at the same distance below the end as our own thread's, and starts with glibc's tcbhead_t,
 * whose `tcb` (offset 0) and `self` (offset 16) words both hold the descriptor's own address.
 * Memory a program reserved PROT_NONE and then committed in part also lies right above
 * inaccessible pages, and was taken for the stack of an exited thread: left out of the roots,
 * it made the blocks only it pointed at definitely lost (a runtime's committed heap, arena or
 * table). */
static bool hg_is_glibc_thread_stack(uintptr_t start, uintptr_t end) {
    if (!hg_thread_descriptor_span || end - start <= hg_thread_descriptor_span) return false;
    uintptr_t descriptor = end - hg_thread_descriptor_span;
    uint64_t header[3]; /* tcb, dtv, self */
    return hg_read_own(header, descriptor, sizeof header) && header[0] == descriptor && header[2] == descriptor;
}

/* The lowest live stack pointer inside [start, end), or 0. */
static uintptr_t hg_live_stack_pointer_in(uintptr_t start, uintptr_t end) {
    uintptr_t lowest = 0;
    for (size_t i = 0; i < hg_thread_sp_count; i++)
        if (hg_thread_sps[i] >= start && hg_thread_sps[i] < end && (!lowest || hg_thread_sps[i] < lowest))
            lowest = hg_thread_sps[i];
    return lowest;
}

/* The index of the first block that starts at or after address (hg_block_count if none). */
static size_t hg_first_block_from(uintptr_t address) {
    size_t low = 0, high = hg_block_count;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        if (hg_blocks[mid].start < address) low = mid + 1; else high = mid;
    }
    return low;
}

static bool hg_holds_blocks(uintptr_t start, uintptr_t end) {
    size_t first = hg_first_block_from(start);
    return first < hg_block_count && hg_blocks[first].start < end;
}

/* Scans [start, end) as a root, except the thread arena heaps in it (hg_glibc_heap_in): those
 * reached here hold no block, and their freed chunks' stale pointers are not references. */
static void hg_scan_root_outside_heaps(uintptr_t start, uintptr_t end) {
    uintptr_t heap, heap_end;
    while (start < end && (heap = hg_glibc_heap_in(start, end, &heap_end)) != 0) {
        if (heap > start) hg_scan_root(start, heap);
        start = heap_end;
    }
    if (start < end) hg_scan_root(start, end);
}

/* Scans, in a mapping [start, end) that holds blocks, what lies between the memory glibc's
 * malloc owns (found region by region from the blocks, see hg_glibc_heap.c): the program's own
 * memory, which the kernel merged into the same mapping. From a block whose region is unknown
 * on, the rest of the mapping is left out (before, the whole mapping always was; what was
 * scanned up to there can only make blocks more reachable, never lost). */
static void hg_scan_beside_allocator(uintptr_t start, uintptr_t end) {
    uintptr_t cursor = start;
    for (size_t i = hg_first_block_from(start); i < hg_block_count && hg_blocks[i].start < end;) {
        uintptr_t from, to;
        if (!hg_glibc_region_of(hg_blocks[i].start, hg_size(&hg_blocks[i]), start, end, &from, &to)) return;
        if (from > cursor) hg_scan_root_outside_heaps(cursor, from);
        if (to > cursor) cursor = to;
        i = hg_first_block_from(to);
    }
    if (cursor < end) hg_scan_root_outside_heaps(cursor, end);
}

/* The distance from a thread stack's end to its descriptor, when the drain thread never ran
 * to say it (hg_leakscan_note_thread_descriptor): a process may exit before it first does,
 * and the exit does not wait for it (hg_drain_take_over). Its descriptor is its pthread_t,
 * and its stack is the mapping that holds it. Without the span an exited thread's cached
 * stack, static TLS and all, counted as a root (`leakclass_c exited_thread` under load). */
static void hg_note_span_from_drain_stack(const char *maps) {
    uintptr_t descriptor = (uintptr_t)hg_drain_descriptor();
    if (hg_thread_descriptor_span || descriptor == 0) return;
    hg_maps_line_t line;
    for (const char *at = maps; at && *at;) {
        at = hg_parse_maps_line(at, &line);
        if (descriptor >= line.start && descriptor < line.stop) {
            hg_leakscan_note_thread_descriptor((const void *)line.stop, (const void *)descriptor);
            return;
        }
    }
}

/* Walks /proc/self/maps; scans readable, writable mappings, around glibc's memory in those that
 * hold blocks (hg_scan_beside_allocator). The stack of
 * the calling thread is scanned from `stack_floor` up; another live thread's stack from its
 * stack pointer up. A thread stack (an anonymous mapping right above a guard page) that no live
 * thread is on belongs to an exited thread, kept in glibc's stack cache with stale contents:
 * memcheck does not scan those either. When some thread's stack pointer is unknown (it is
 * running), every thread stack is scanned whole. */
static char *hg_maps_text;
static size_t hg_maps_capacity;

/* What the walk of the roots needs from the process itself, read before the marking, which may
 * run in a snapshot whose /proc/self is another process's: the mappings and the other
 * threads' stack pointers and system call arguments. */
static bool hg_prepare_roots(void) {
    size_t length;
    hg_maps_text = hg_read_maps(&length, &hg_maps_capacity);
    if (!hg_maps_text) return false;
    /* The scan's own copy, read while it is walked. The entry outlives the mapping, which is
     * harmless: the scan runs once, at the end of the process. */
    hg_leakscan_exclude(hg_maps_text, hg_maps_capacity);
    hg_collect_thread_stack_pointers();
    hg_note_span_from_drain_stack(hg_maps_text);
    return true;
}

static void hg_scan_roots(uintptr_t stack_floor) {
    const char *text = hg_maps_text;
    if (!text) return; /* the text is NUL-terminated */
    uintptr_t previous_end = 0;
    bool previous_was_guard = false;
    hg_maps_line_t line;
    for (const char *at = text; at && *at;) {
        at = hg_parse_maps_line(at, &line);
        uintptr_t start = line.start, end = line.stop;
        bool after_guard = previous_was_guard && previous_end == start;
        previous_was_guard = memcmp(line.perms, "---", 3) == 0;
        previous_end = end;
        if (line.perms[0] != 'r' || line.perms[1] != 'w') continue;
        if (hg_holds_blocks(start, end)) {
            hg_scan_beside_allocator(start, end);
            continue;
        }
        bool named_stack = line.path_length >= 7 && memcmp(line.path, "[stack]", 7) == 0;
        if (stack_floor >= start && stack_floor < end) {
            start = stack_floor;
        } else if ((after_guard || named_stack) && !hg_some_sp_unknown) {
            uintptr_t sp = hg_live_stack_pointer_in(start, end);
            /* No live thread on it: of an exited thread's stack (glibc keeps it for the next
             * thread), only its thread descriptor (at the top, with the DTV pointer) is still
             * meaningful (memcheck also scans the static TLS below it; see README). Anything
             * else is a root like any mapping. */
            if (sp) start = sp;
            else if (hg_is_glibc_thread_stack(start, end)) start = end - hg_thread_descriptor_span;
        }
        hg_scan_root_outside_heaps(start, end);
    }
}

/* Register values as roots: exit()'s caller's callee-saved ones, as they were at the call
 * (`as --version` keeps two blocks in registers of main and calls exit from a function further
 * down: still reachable for memcheck, which finds them where exit's frames saved the registers,
 * and definitely lost here until the registers counted), and other threads' system call
 * arguments (hg_collect_thread_stack_pointers). Copies held by the shim, read as any root. */
static void hg_scan_registers(const uint64_t *registers, size_t count) {
    hg_scan_root_range((uintptr_t)registers, (uintptr_t)(registers + count));
}

/* The writable loadable segments of the object loaded at `data`: the shim's own (its ring,
 * buffers and tables are static), and libunwind's, which the shim brought in. libunwind keeps
 * the pages its memory check last found readable (x86_64 Ginit.c, last_good_addr): pages of
 * whatever stack a capture it made unwound, among them a signal handler's alternate stack or
 * a coroutine's, often a block of the program's. As roots they made such a block possibly
 * lost, and everything its stale frames pointed to with it, where memcheck, which has no
 * libunwind in the program, says definitely lost (signal_stack). A program that used libunwind
 * itself and registered a block of its own with it (_U_dyn_register, JIT compilers) would
 * have that block counted lost: libunwind's data is not told apart from the shim's use. */
static int hg_exclude_writable_segments(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    if (info->dlpi_addr != (uintptr_t)data) return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *phdr = &info->dlpi_phdr[i];
        if (phdr->p_type == PT_LOAD && (phdr->p_flags & PF_W))
            hg_leakscan_exclude((void *)(info->dlpi_addr + (phdr->p_vaddr & ~(uintptr_t)4095)),
                                phdr->p_memsz + (phdr->p_vaddr & 4095) + 4096);
    }
    return 1;
}

/* ---- cliques of lost blocks ---- */

/* The words of a block of clique `leader`: unreached blocks they point to join the clique. */
static void hg_visit_clique(const uint64_t *words, size_t count, size_t leader) {
    for (size_t w = 0; w < count; w++) {
        ssize_t j = hg_find_block(words[w]);
        if (j < 0) {
            uint64_t side_table = hg_decode_swift_side_table(words[w]);
            if (!side_table || (j = hg_find_block(side_table)) < 0) continue;
        }
        unsigned state = hg_mark_of((size_t)j);
        bool earlier_leader = state == HG_DEFINITE && (size_t)j != leader;
        if (state != HG_UNREACHED && !earlier_leader) continue;
        /* An earlier clique's leader reached from this one joins it, with its members. */
        hg_set_mark((size_t)j, HG_INDIRECT);
        hg_leaders[j] = (uint32_t)leader;
        if (!earlier_leader) hg_push((uint32_t)j);
    }
}

static void hg_form_cliques(void) {
    for (size_t i = 0; i < hg_block_count; i++) {
        if (hg_mark_of(i) != HG_UNREACHED) continue;
        hg_set_mark(i, HG_DEFINITE);
        hg_push((uint32_t)i);
        while (hg_work_count > 0) hg_read_block(&hg_blocks[hg_work[--hg_work_count]], hg_visit_clique, i);
    }
}

/* ---- marking ---- */

/* Whether the program has a thread besides this one (and the drain thread) that could change
 * memory while the scan reads it. Alone, nothing moves under the scan, and marking in a copy
 * would cost a large heap's page tables for nothing (10 M blocks: 0.75 s → 0.93 s). Unknown
 * (no /proc) counts as not alone. */
static bool hg_snapshot_wanted;

static bool hg_note_thread(long tid, void *found) {
    (void)tid;
    *(bool *)found = true;
    return false;
}

/* Where marking in a copy could harm the program, it marks in place. A seccomp filter (one
 * inherited from a launcher too: bwrap, systemd, minijail) may kill the process for a clone
 * that makes a process (SIGSYS). The copy's pages are shared until written: threads that
 * write to a large heap while it marks would have it copied (a 2 M-block heap: +1.26 GB at
 * exit against +0.71 GB), so above 512 MiB resident, where a memory limit could kill the
 * process at its exit, it marks in place. */
static bool hg_snapshot_allowed(void) {
    long resident = hg_resident_kib();
    return resident >= 0 && resident <= 512 * 1024 && !hg_seccomp_filtered();
}

static bool hg_program_threads_run(void) {
    bool found = false;
    return !hg_for_each_other_thread(hg_note_thread, &found) || found;
}

/* Marks every block from the roots and forms the cliques of the lost ones. */
static void hg_mark(const hg_exit_frame_t *exit, bool exit_registers) {
    hg_scan_roots(exit->stack_floor);
    if (exit_registers) hg_scan_registers(exit->registers, exit->register_count);
    hg_scan_registers(hg_thread_arguments, hg_thread_argument_count);
    hg_form_cliques();
}

/* Marks in a copy of the process taken at one instant: a child made like fork() (a raw clone,
 * so that no fork handler of the program runs, and with no exit signal, so that its SIGCHLD
 * handler is not called and its waitpid(-1) does not reap it), which holds this thread only and
 * the memory as it was. The program's other threads may still run here, and memcheck runs one
 * thread at a time: read in place, memory they changed during the scan (a vector shifting
 * its elements down, a queue rotating) could hold a pointer at neither place the scan looked,
 * and a block every global reached came out definitely lost (a C program rotating 4,096
 * pointers while main called exit: 347 to 407 such blocks a run). The marks and leaders are
 * shared mappings; the copy writes them and ends. A pointer that a running thread holds only
 * in a register at that instant is still missed (README). False when no copy could be made or
 * it did not finish (a seccomp filter that refuses clone, the process limit): the caller
 * marks in place, as before. */
static bool hg_mark_in_snapshot(const hg_exit_frame_t *exit, bool exit_registers) {
    uint64_t *root_bytes = hg_map_shared(sizeof *root_bytes);
    if (!root_bytes) return false;
    sigset_t all, previous;
    sigfillset(&all);
    /* The copy must not run the program's signal handlers (a terminal's ^C reaches it too). */
    hg_system_call(SYS_rt_sigprocmask, SIG_SETMASK, (long)&all, (long)&previous, _NSIG / 8, 0, 0);
    long child = hg_system_call(SYS_clone, 0, 0, 0, 0, 0, 0);
    /* The copy holds the memory as it is now: the program's threads may go on. */
    if (child > 0) hg_exit_hold_end();
    if (child == 0) {
        hg_mark(exit, exit_registers);
        *root_bytes = hg_root_bytes;
        hg_system_call(SYS_exit_group, 0, 0, 0, 0, 0, 0);
    }
    bool marked = false;
    if (child > 0) {
        int status = 0;
        long waited;
        do waited = hg_system_call(SYS_wait4, child, (long)&status, __WALL, 0, 0, 0);
        while (waited < 0 && errno == EINTR);
        marked = waited == child && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    hg_system_call(SYS_rt_sigprocmask, SIG_SETMASK, (long)&previous, 0, _NSIG / 8, 0, 0);
    if (marked) {
        hg_root_bytes = *root_bytes;
    } else {
        /* A copy that died part-way may have marked some blocks: start again from the states
         * set before it (only which blocks the Swift runtime allocated). */
        for (size_t i = 0; i < hg_block_count; i++) hg_marks[i] &= HG_BY_SWIFT_RUNTIME;
    }
    munmap(root_bytes, sizeof *root_bytes);
    return marked;
}

/* ---- the trace ---- */

/* One SNAPSHOT_BLOCK per block, in address order, without a verdict (kind 0): when the scan
 * cannot run after it took the live set's table. */
static void hg_write_unclassified_blocks(void) {
    for (size_t i = 0; i < hg_block_count; i++)
        hg_drain_write_block(hg_blocks[i].start, hg_size(&hg_blocks[i]), hg_blocks[i].stack, 0, 0);
}

/* Says why the blocks are unclassified, so that the report warns and a leak gate fails: a
 * check that never ran must not pass for one that found nothing. */
static void hg_leakscan_write_skipped(unsigned reason) {
    hg_writer_byte(HG_REC_SCAN_SKIPPED);
    hg_writer_uv(reason);
}

/* The scan gives up after it took the live set's table: the blocks go out unclassified, and
 * why. */
static bool hg_leakscan_give_up(unsigned reason) {
    hg_write_unclassified_blocks();
    hg_leakscan_write_skipped(reason);
    return true;
}

/* One SNAPSHOT_BLOCK per block, in address order, with its verdict; then SCAN_DONE. */
static void hg_write_blocks(uint64_t nanoseconds) {
    for (size_t i = 0; i < hg_block_count; i++) {
        const hg_scan_block_t *block = &hg_blocks[i];
        unsigned state = hg_mark_of(i);
        unsigned kind = state == HG_REACHABLE   ? HG_KIND_REACHABLE
                        : state == HG_POSSIBLE  ? HG_KIND_POSSIBLE
                        : state == HG_INDIRECT  ? HG_KIND_INDIRECT
                                                : HG_KIND_DEFINITE;
        uint64_t leader = kind == HG_KIND_INDIRECT ? hg_blocks[hg_leaders[i]].start : 0;
        unsigned heuristic = kind == HG_KIND_REACHABLE ? hg_heuristic_of(i) : HG_HEURISTIC_NONE;
        hg_drain_write_block(block->start, hg_size(block), block->stack, 1 + kind + heuristic, leader);
    }
    hg_writer_byte(HG_REC_SCAN_DONE);
    hg_writer_uv(hg_block_count);
    hg_writer_uv(hg_root_bytes);
    hg_writer_uv(nanoseconds);
}

static uint64_t hg_now_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

bool hg_leakscan_run(const hg_exit_frame_t *exit) {
    uint64_t started = hg_now_ns();
    Dl_info self;
    if (dladdr((void *)hg_leakscan_run, &self) && self.dli_fbase)
        dl_iterate_phdr(hg_exclude_writable_segments, self.dli_fbase);
    uintptr_t libunwind = hg_libunwind_load_address();
    if (libunwind) dl_iterate_phdr(hg_exclude_writable_segments, (void *)libunwind);

    hg_block_count = hg_liveset_count();
    size_t blocks_bytes = hg_block_count * sizeof *hg_blocks, work_bytes = hg_block_count * 2 * sizeof *hg_work + sizeof *hg_work;
    hg_blocks = hg_map(blocks_bytes);
    /* Shared only where a copy of the process may mark them (hg_mark_in_snapshot): faults on
     * shared memory cost more (10 M blocks: +0.03 s). */
    hg_snapshot_wanted = hg_program_threads_run() && hg_snapshot_allowed();
    void *(*map_marks)(size_t) = hg_snapshot_wanted ? hg_map_shared : hg_map;
    hg_marks = map_marks(hg_block_count);
    hg_leaders = map_marks(hg_block_count * sizeof *hg_leaders); /* touched only for indirectly lost blocks */
    hg_work = hg_map(work_bytes);
    if (!hg_blocks || !hg_marks || !hg_leaders || !hg_work) { /* no memory for the scan: blocks go out unclassified */
        hg_leakscan_write_skipped(HG_SCAN_SKIPPED_NO_MEMORY);
        return false;
    }
    hg_leakscan_exclude(hg_blocks, blocks_bytes);
    hg_leakscan_exclude(hg_marks, hg_block_count);
    hg_leakscan_exclude(hg_leaders, hg_block_count * sizeof *hg_leaders);
    hg_leakscan_exclude(hg_work, work_bytes);
    hg_fill_index = 0;
    hg_module_range("/libswiftCore.so", &hg_swift_runtime_start, &hg_swift_runtime_end);
    hg_module_range("/libc.so.6", &hg_glibc_data_start, &hg_glibc_data_end);
    hg_vtables_prepare();
    hg_liveset_for_each(hg_collect);
    /* Every way on from here writes the blocks: their stacks go first, in first-named order
     * (hg_stack_order.c), into the writer's buffer, which is none of the roots (the shim's
     * static data), and the order's table is unmapped before the scan reads memory. */
    hg_stack_order_write();
    /* From here on the blocks are ours alone: the live set's table becomes the sort's scratch
     * (it was excluded from the roots with the rest of the live set). It has a slot for every
     * block, being at most three quarters full; without one (not reached), nothing is sorted. */
    size_t table_bytes;
    hg_scan_block_t *table = hg_liveset_release(&table_bytes);
    if (hg_block_count >= 2 && (!table || table_bytes < blocks_bytes)) return hg_leakscan_give_up(HG_SCAN_SKIPPED_NO_MEMORY);
    hg_sort_blocks(table);
    hg_note_swift_runtime_blocks();
    if (!hg_build_page_index()) return hg_leakscan_give_up(HG_SCAN_SKIPPED_NO_MEMORY);
    if (hg_block_count > 0) {
        hg_lowest = hg_blocks[0].start;
        const hg_scan_block_t *last = &hg_blocks[hg_block_count - 1];
        uint64_t size = hg_size(last);
        hg_highest = last->start + (size ? size : 1);
    }
    /* The scan only marks blocks: with none in use there is nothing to find, and reading
     * every root word of the process would be most of a short program's exit. */
    if (hg_block_count > 0) {
        /* Without the mappings there are no roots, and every block would come out definitely
         * lost: a program that exits with every descriptor it may have in use (EMFILE), under
         * a limit the scan may not raise (hg_open_proc), leaves none to open /proc/self/maps
         * with. Its blocks go out unclassified instead. */
        if (!hg_prepare_roots()) return hg_leakscan_give_up(HG_SCAN_SKIPPED_NO_MAPPINGS);
        /* Not the drain thread's registers, when it is the one that exits (the main thread left
         * by pthread_exit): it holds copies of events. */
        bool exit_registers = gettid() != hg_drain_thread_id();
        if (!hg_snapshot_wanted || hg_child_waiter || !hg_mark_in_snapshot(exit, exit_registers)) hg_mark(exit, exit_registers);
        if (hg_maps_text) munmap(hg_maps_text, hg_maps_capacity);
    }
    hg_write_blocks(hg_now_ns() - started);
    return true;
}
