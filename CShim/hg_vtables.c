/*
 * memcheck's "multipleinheritance" heuristic for the exit-time scan: a pointer into a C++
 * object at one of its secondary bases counts as a reference to the object.
 *
 * With `struct C : A, B`, `B *b = new C` holds C's address plus B's offset, an interior
 * pointer: without the heuristic, an object kept only through such a pointer is possibly
 * lost, where memcheck (whose default heuristics include this one) calls it still reachable,
 * and a leak gate would fail where valgrind passes.
 *
 * memcheck asks its debug information whether the object's first word and the word the
 * pointer points at both name vtables (symbols _ZTV…). The shim has no symbol tables at exit,
 * so it checks the Itanium C++ ABI's layout instead, which is stricter: both words point into
 * a loaded module's image, and in front of each vtable address lie the offset to the top of
 * the object (0 for the primary vtable, minus the base's offset for the secondary one) and
 * the same type_info pointer (both vtables belong to the complete object's class).
 */
#include <stdlib.h>
#include <sys/mman.h>

#include "hg_internal.h"

typedef struct {
    uintptr_t start, end;
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
            hg_images[hg_image_count++] = (hg_range_t){start, start + module->seg_memsz[s]};
        }
    }
    qsort(hg_images, hg_image_count, sizeof *hg_images, hg_compare_ranges);
}

/* Whether `address` lies in a loaded module's image, as every vtable does. */
static bool hg_in_image(uint64_t address) {
    size_t low = 0, high = hg_image_count;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        if (hg_images[mid].start <= address) low = mid + 1; else high = mid;
    }
    return low > 0 && address < hg_images[low - 1].end;
}

/* The two words in front of a vtable address: offset to top, type_info. */
static bool hg_vtable_prefix(uint64_t vtable, int64_t prefix[2]) { return hg_read_own(prefix, vtable - 16, 16); }

bool hg_is_secondary_base(uint64_t offset, uint64_t primary, uint64_t secondary) {
    if (!hg_images || offset == 0 || offset % 8 != 0) return false;
    if (primary % 8 != 0 || secondary % 8 != 0 || !hg_in_image(primary) || !hg_in_image(secondary)) return false;
    int64_t primary_prefix[2], secondary_prefix[2];
    if (!hg_vtable_prefix(primary, primary_prefix) || !hg_vtable_prefix(secondary, secondary_prefix)) return false;
    return primary_prefix[0] == 0 && secondary_prefix[0] == -(int64_t)offset && primary_prefix[1] == secondary_prefix[1];
}
