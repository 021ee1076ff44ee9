/*
 * memcheck's "multipleinheritance" heuristic for the exit-time scan: a pointer into a block
 * counts as a reference when the block's first word and the word pointed at both look like
 * vtable addresses.
 *
 * With `struct C : A, B`, `B *b = new C` holds C's address plus B's offset, an interior
 * pointer: without the heuristic, an object kept only through such a pointer is possibly
 * lost, where memcheck (whose default heuristics include this one) calls it still reachable,
 * and a leak gate would fail where valgrind passes. memcheck does not ask whether the object
 * really has that base: any C++ member object with a vtable, inside an object with one, is
 * reached the same way (`leakclass_cpp member_object`), and so is a C struct whose first field
 * and another point to tables of function pointers.
 *
 * memcheck's test of a vtable address (mc_leakcheck.c, aligned_ptr_above_page0_is_vtable_addr)
 * uses no symbols: the address lies in a readable file mapping, and of the words from it on
 * (at most 21, within that mapping) every one is null or points into executable file-mapped
 * code, until two such code pointers are found. Here the loaded modules' PT_LOAD segments
 * stand for the file mappings.
 */
#include <elf.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "hg_internal.h"

typedef struct {
    uintptr_t start, end;
    uint32_t flags; /* the segment's p_flags */
} hg_range_t;

static hg_range_t *hg_images; /* the loaded modules' segments, sorted by start */
static size_t hg_image_count, hg_image_bytes;

static int hg_compare_ranges(const void *a, const void *b) {
    uintptr_t x = ((const hg_range_t *)a)->start, y = ((const hg_range_t *)b)->start;
    return x < y ? -1 : x > y;
}

void hg_vtables_prepare(void) {
    if (hg_images) return; /* once per process: the scan runs at its exit */
    size_t count = 0;
    for (uint32_t i = 0; i < hg_modules_count(); i++)
        if (hg_modules_get(i)->loaded) count += hg_modules_get(i)->segment_count;
    hg_image_bytes = count * sizeof *hg_images;
    if (count == 0) return;
    void *map = mmap(NULL, hg_image_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) return; /* the heuristic then never applies */
    hg_images = map;
    hg_leakscan_exclude(hg_images, hg_image_bytes);
    for (uint32_t i = 0; i < hg_modules_count(); i++) {
        const hg_module_t *module = hg_modules_get(i);
        if (!module->loaded) continue;
        for (uint32_t s = 0; s < module->segment_count; s++) {
            uintptr_t start = module->base + module->seg_vaddr[s];
            hg_images[hg_image_count++] = (hg_range_t){start, start + module->seg_memsz[s], module->seg_flags[s]};
        }
    }
    qsort(hg_images, hg_image_count, sizeof *hg_images, hg_compare_ranges);
}

/* The loaded module's segment that holds `address`, or NULL. */
static const hg_range_t *hg_image_of(uint64_t address) {
    size_t low = 0, high = hg_image_count;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        if (hg_images[mid].start <= address) low = mid + 1; else high = mid;
    }
    return low > 0 && address < hg_images[low - 1].end ? &hg_images[low - 1] : NULL;
}

#define HG_VTABLE_MAX_CHECK 20 /* memcheck's VTABLE_MAX_CHECK */

/* memcheck's vtable test (above), for an aligned address above page 0. */
static bool hg_is_vtable_address(uint64_t address) {
    if (address % 8 != 0 || address < 4096) return false;
    const hg_range_t *image = hg_image_of(address);
    if (!image || !(image->flags & PF_R) || image->end - address < 8) return false;
    uint64_t words[HG_VTABLE_MAX_CHECK + 1];
    size_t count = (image->end - address) / 8;
    if (count > HG_VTABLE_MAX_CHECK + 1) count = HG_VTABLE_MAX_CHECK + 1;
    if (!hg_read_own(words, address, count * 8)) return false;
    unsigned functions = 0;
    for (size_t i = 0; i < count; i++) {
        if (words[i] == 0) continue; /* null slots occur in vtables */
        const hg_range_t *code = hg_image_of(words[i]);
        if (!code || !(code->flags & PF_X)) return false;
        if (++functions == 2) return true;
    }
    return false;
}

bool hg_is_secondary_base(uint64_t first_word, uint64_t pointed_word) {
    return hg_images && hg_is_vtable_address(pointed_word) && hg_is_vtable_address(first_word);
}
