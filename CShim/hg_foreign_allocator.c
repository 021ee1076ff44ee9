/*
 * An allocator ahead of the shim in the symbol search order: one linked into the program
 * (rustc's executable links jemalloc and exports malloc, free, calloc, ... itself) or a
 * preload listed before ours. ld.so binds every caller's malloc to that definition, so our
 * entry points never run, and the report said that nothing was ever allocated. memcheck
 * replaces such an allocator with its own (its default soname synonyms include the
 * executable). The shim does the same with glibc's: each of that object's standard entry
 * points gets a jump to ours at its first byte, and ours go on to glibc as always.
 *
 * Blocks that allocator handed out before the jumps were written (ld.so's, and those of
 * constructors that ran before ours) stay its own, since its code is no longer reachable: a
 * free of one is ignored (the block is left where it is; it is not the shim's to count), a
 * realloc copies it into a new glibc block, and malloc_usable_size says 0. They are told
 * from glibc's by address: every anonymous mapping that existed when the jumps were written
 * (the brk heap as far as the break, not to its page's end), and the object's own, hold only
 * that allocator's blocks, and glibc's blocks lie in memory mapped, or broken, later.
 *
 * A malloc wrapper defined by the program (counting calls, say, then calling the next malloc,
 * the shim's) is left alone, silently: its free(NULL) reaches the shim's free, which an
 * allocator's does not.
 *
 * The jumps are written only where that is safe, and otherwise the trace says why (the
 * report warns that the allocator's blocks are not seen):
 * - one thread runs (a thread could be executing the bytes being replaced);
 * - every entry point the object defines is at least a jump long (5 bytes);
 * - the object defines no pointer-taking entry point the shim has no stand-in for (prefixed
 *   jemalloc's je_free, mimalloc's mi_free, C++ operator delete, a sanitizer's runtime, ...):
 *   it would be handed glibc's blocks. jemalloc's own (mallocx, sdallocx, ...) and glibc's
 *   internal names (__libc_free, ...) get jumps to stand-ins too. The program's code may call
 *   them without exporting them (a Rust program with jemalloc unprefixed calls sdallocx
 *   directly), so they are looked up in the object's full symbol table, read from its file;
 *   without one (stripped) the check cannot be made;
 * - a page for the jumps' targets can be mapped within 2 GiB, and the code made writable.
 */
#include <dlfcn.h>
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <link.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hg_internal.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

/* Entry points that take a block, are not standard, and have no stand-in in the shim:
 * prefixed jemalloc's, tcmalloc's, mimalloc's, rpmalloc's, TBB's, and C++'s operator delete
 * (an allocator linked with its C++ support frees there with its own code). jemalloc's
 * extended entry points (mallocx, sdallocx, ...) do have stand-ins (hg_hooks.c). */
static const char *const hg_private_names[] = {
    "je_free", "_rjem_free", "tc_free", "tc_delete", "mi_free", "rpfree", "scalable_free",
    "_ZdlPv", "_ZdaPv", "_ZdlPvm", "_ZdaPvm",
    /* Every sanitizer runtime's allocator (ASan, LSan, MSan, TSan, HWASan): its checks depend
     * on it (a program built with -fsanitize=address hung with glibc's in its place), and it
     * finds leaks itself. */
    "__sanitizer_get_allocated_size",
};

/* The most entry points replaced: standard and extended (hg_entry_points). */
#define HG_MAX_ENTRIES 40

hg_foreign_t hg_foreign;
/* Ascending, disjoint [start, end) pairs: the mappings present when the jumps were written. */
static uintptr_t (*hg_foreign_ranges)[2];
static size_t hg_foreign_range_count;
#define HG_MAX_RANGES 8192

bool hg_foreign_search(uintptr_t address) {
    size_t low = 0, high = hg_foreign_range_count;
    while (low < high) {
        size_t middle = (low + high) / 2;
        if (address < hg_foreign_ranges[middle][0]) high = middle;
        else if (address >= hg_foreign_ranges[middle][1]) low = middle + 1;
        else return true;
    }
    return false;
}

/* The memory that may hold the old allocator's blocks: every anonymous mapping now (the brk
 * heap, mmap'd arenas) and the object's own file mappings (a static arena in its data), merged
 * where they touch. Other files' mappings are left out: a library unloaded later leaves
 * addresses that glibc may map again for its own blocks. */
static bool hg_note_ranges_in(const char *maps, uintptr_t object_base) {
    hg_maps_line_t line, object = {0};
    for (const char *at = maps; at && *at; ) {
        at = hg_parse_maps_line(at, &line);
        if (line.start <= object_base && object_base < line.stop) object = line;
    }
    hg_foreign_ranges = mmap(NULL, HG_MAX_RANGES * sizeof *hg_foreign_ranges, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (hg_foreign_ranges == MAP_FAILED) return false;
    size_t count = 0;
    for (const char *at = maps; at && *at; ) {
        at = hg_parse_maps_line(at, &line);
        bool anonymous = line.inode == 0;
        bool objects = object.path_length > 0 && line.path_length == object.path_length &&
                       memcmp(line.path, object.path, line.path_length) == 0;
        if (!anonymous && !objects) continue;
        if (count > 0 && hg_foreign_ranges[count - 1][1] == line.start) hg_foreign_ranges[count - 1][1] = line.stop;
        else if (count == HG_MAX_RANGES) return false;
        else {
            hg_foreign_ranges[count][0] = line.start;
            hg_foreign_ranges[count][1] = line.stop;
            count++;
        }
    }
    /* The brk heap ends at the break, not at the page the maps round it up to: glibc's main
     * arena goes on from the break, and its first blocks would otherwise be taken for the old
     * allocator's (an allocator that took memory with sbrk left the break inside a page). */
    uintptr_t brk_now = (uintptr_t)sbrk(0);
    for (size_t i = 0; i < count; i++)
        if (hg_foreign_ranges[i][0] < brk_now && brk_now < hg_foreign_ranges[i][1] &&
            hg_foreign_ranges[i][1] - brk_now < 4096)
            hg_foreign_ranges[i][1] = brk_now;
    hg_foreign_range_count = count;
    return count > 0;
}

static bool hg_note_ranges(uintptr_t object_base) {
    size_t length, capacity;
    char *maps = hg_read_maps(&length, &capacity);
    if (maps == NULL) return false;
    bool noted = hg_note_ranges_in(maps, object_base);
    munmap(maps, capacity);
    return noted;
}

/* A page within reach of a 32-bit jump from every entry point (they are in one object). */
static unsigned char *hg_map_near(uintptr_t low, uintptr_t high) {
    const uintptr_t step = 1u << 20, reach = (1ull << 31) - (2u << 20);
    for (uintptr_t distance = step; distance < reach - (high - low); distance += step) {
        uintptr_t candidates[2] = {(low & ~(step - 1)) - distance, ((high + step) & ~(step - 1)) + distance};
        for (int i = 0; i < 2; i++) {
            if (candidates[i] < step) continue;
            void *page = mmap((void *)candidates[i], 4096, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
            if (page == MAP_FAILED) continue;
            uintptr_t at = (uintptr_t)page;
            uintptr_t farthest = at < low ? high + 5 - at : at + 4096 - low;
            if (farthest < reach) return page;
            munmap(page, 4096); /* an old kernel took the address as a hint only */
        }
    }
    return NULL;
}

/* What the object's full symbol table (from its file) says: where the extended entry points
 * are, and the first private entry point it defines. */
typedef struct {
    const hg_entry_point_t *extended; /* NULL-terminated */
    uintptr_t value[HG_MAX_ENTRIES], size[HG_MAX_ENTRIES];
    const char *private_name;
} hg_symbol_scan_t;

static void hg_note_symbol(hg_symbol_scan_t *scan, const char *name, const ElfW(Sym) *symbol) {
    for (size_t i = 0; scan->extended[i].name; i++) {
        if (strcmp(name, scan->extended[i].name) != 0) continue;
        scan->value[i] = symbol->st_value;
        scan->size[i] = symbol->st_size;
    }
    for (size_t i = 0; i < sizeof hg_private_names / sizeof hg_private_names[0]; i++)
        if (!scan->private_name && strcmp(name, hg_private_names[i]) == 0) scan->private_name = hg_private_names[i];
}

/* Reads the file through a read-only mapping, so nothing is allocated (this runs before the
 * allocator is replaced). False when the file has no full symbol table (stripped). */
static bool hg_scan_symbol_table(const char *path, hg_symbol_scan_t *scan) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    struct stat st;
    void *map = fstat(fd, &st) == 0 && (size_t)st.st_size >= sizeof(ElfW(Ehdr))
                    ? mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    close(fd);
    if (map == MAP_FAILED) return false;
    const unsigned char *file = map;
    size_t size = (size_t)st.st_size;
    const ElfW(Ehdr) *header = map;
    bool has_table = false;
    if (memcmp(header->e_ident, ELFMAG, SELFMAG) == 0 && header->e_shentsize == sizeof(ElfW(Shdr)) &&
        header->e_shoff < size && header->e_shnum <= (size - header->e_shoff) / sizeof(ElfW(Shdr))) {
        const ElfW(Shdr) *sections = (const ElfW(Shdr) *)(file + header->e_shoff);
        for (size_t i = 0; i < header->e_shnum; i++) {
            const ElfW(Shdr) *table = &sections[i];
            if (table->sh_type != SHT_SYMTAB || table->sh_link >= header->e_shnum) continue;
            const ElfW(Shdr) *strings = &sections[table->sh_link];
            if (table->sh_offset > size || table->sh_size > size - table->sh_offset || strings->sh_offset > size ||
                strings->sh_size > size - strings->sh_offset || strings->sh_size == 0 ||
                file[strings->sh_offset + strings->sh_size - 1] != '\0')
                continue;
            has_table = true;
            const ElfW(Sym) *symbols = (const ElfW(Sym) *)(file + table->sh_offset);
            const char *names = (const char *)(file + strings->sh_offset);
            for (size_t s = 0; s < table->sh_size / sizeof(ElfW(Sym)); s++) {
                if (symbols[s].st_shndx == SHN_UNDEF || ELF64_ST_TYPE(symbols[s].st_info) != STT_FUNC ||
                    symbols[s].st_name >= strings->sh_size)
                    continue;
                hg_note_symbol(scan, names + symbols[s].st_name, &symbols[s]);
            }
        }
    }
    munmap(map, size);
    return has_table;
}

/* Set when the allocator is a library preloaded before the shim, not the program: then the
 * way out is to preload the shim first (`heapgate run` does), and the reason says so. */
static bool hg_foreign_is_library;

static void hg_refuse(const char *reason, const char *name) {
    hg_foreign.outcome = HG_FOREIGN_LEFT;
    snprintf(hg_foreign.reason, sizeof hg_foreign.reason, "%s%s%s", reason, name ? name : "",
             hg_foreign_is_library ? "; preload libheapgate.so before it" : "");
}

void hg_foreign_take_over(const hg_entry_point_t *ours) {
    /* ours: the standard entry points, NULL, the extended ones, NULL. */
    size_t standard = 0;
    while (ours[standard].name) standard++;
    const hg_entry_point_t *extended = &ours[standard + 1];
    void *theirs[HG_MAX_ENTRIES] = {0};
    size_t sizes[HG_MAX_ENTRIES] = {0};
    Dl_info object = {0};
    struct link_map *map = NULL;
    for (size_t i = 0; i < standard; i++) {
        void *found = dlsym(RTLD_DEFAULT, ours[i].name);
        if (found == NULL || found == ours[i].address) continue;
        Dl_info info;
        const ElfW(Sym) *symbol = NULL;
        if (dladdr1(found, &info, (void **)&symbol, RTLD_DL_SYMENT) == 0) continue;
        if (object.dli_fbase == NULL) {
            object = info;
            dladdr1(found, &info, (void **)&map, RTLD_DL_LINKMAP);
        } else if (info.dli_fbase != object.dli_fbase) {
            continue; /* a second object: left alone */
        }
        theirs[i] = found;
        sizes[i] = symbol && (uintptr_t)info.dli_saddr == (uintptr_t)found ? symbol->st_size : 0;
    }
    if (object.dli_fbase == NULL) return; /* ours come first: the usual case */
    /* A malloc wrapper (the program's malloc counting its calls, say, and going on to the next
     * definition with dlsym(RTLD_NEXT), which is the shim's) is not an allocator: its calls
     * reach the shim already, and replacing it would take its work away from the program. Its
     * free(NULL) reaches the shim's free too; an allocator's returns at once. An object that
     * defines no free is no allocator either (its blocks would be freed by glibc's). */
    if (theirs[1] == NULL) return;
    unsigned before = hg_null_frees;
    ((void (*)(void *))theirs[1])(NULL);
    if (hg_null_frees != before) return;
    snprintf(hg_foreign.object, sizeof hg_foreign.object, "%s", object.dli_fname ? object.dli_fname : "");
    if (map == NULL) return hg_refuse("ld.so does not describe it", NULL);
    hg_foreign_is_library = map->l_name && map->l_name[0];

    /* The executable's path as ld.so has it may be relative or gone: /proc/self/exe is it. */
    hg_symbol_scan_t scan = {.extended = extended};
    const char *file = map->l_name && map->l_name[0] ? hg_foreign.object : "/proc/self/exe";
    if (!hg_scan_symbol_table(file, &scan))
        return hg_refuse("its symbol table is stripped, so its other entry points cannot be checked", NULL);
    if (scan.private_name) return hg_refuse("it also defines ", scan.private_name);
    size_t count = standard + 1;
    for (size_t i = 0; extended[i].name && count < HG_MAX_ENTRIES; i++, count++) {
        if (scan.value[i] == 0) continue;
        theirs[count] = (void *)(map->l_addr + scan.value[i]);
        sizes[count] = scan.size[i];
    }

    uintptr_t low = UINTPTR_MAX, high = 0;
    for (size_t i = 0; i < count; i++) {
        if (!theirs[i]) continue;
        if (sizes[i] < 5) return hg_refuse("an entry point is too short to patch: ", ours[i].name);
        if ((uintptr_t)theirs[i] < low) low = (uintptr_t)theirs[i];
        if ((uintptr_t)theirs[i] > high) high = (uintptr_t)theirs[i];
    }
    unsigned threads = hg_thread_count();
    if (threads == 0) return hg_refuse("/proc/self/task could not be read to count its threads", NULL);
    if (threads > 1) return hg_refuse("threads were already running", NULL);
    unsigned char *targets = hg_map_near(low, high);
    if (!targets) return hg_refuse("no memory within 2 GiB of its code for the jumps", NULL);
    if (!hg_note_ranges((uintptr_t)object.dli_fbase)) {
        munmap(targets, 4096);
        return hg_refuse("its memory could not be listed (/proc/self/maps)", NULL);
    }
    /* Each target: jmp *0(%rip), then our entry point's address. */
    for (size_t i = 0; i < count; i++) {
        if (!theirs[i]) continue;
        memcpy(targets + 16 * i, "\xff\x25\0\0\0\0", 6);
        memcpy(targets + 16 * i + 6, &ours[i].address, 8);
    }
    mprotect(targets, 4096, PROT_READ | PROT_EXEC);
    /* Entry by entry: its page(s) writable for the five bytes, then read and execute again.
     * Should one refuse (a security module forbidding writable code), those written so far are
     * put back: half an allocator replaced would hand one allocator's blocks to the other. */
    unsigned char saved[HG_MAX_ENTRIES][5];
    for (size_t i = 0; i < count; i++) {
        if (!theirs[i]) continue;
        memcpy(saved[i], theirs[i], 5);
        int32_t offset = (int32_t)((intptr_t)(targets + 16 * i) - ((intptr_t)theirs[i] + 5));
        unsigned char jump[5] = {0xe9};
        memcpy(jump + 1, &offset, 4);
        if (hg_write_protected((uintptr_t)theirs[i], jump, 5, PROT_READ | PROT_EXEC)) continue;
        while (i-- > 0)
            if (theirs[i]) hg_write_protected((uintptr_t)theirs[i], saved[i], 5, PROT_READ | PROT_EXEC);
        munmap(targets, 4096);
        return hg_refuse("its code could not be made writable", NULL);
    }
    hg_foreign.outcome = HG_FOREIGN_REPLACED;
    for (size_t i = 0; i < standard && i < sizeof hg_foreign.replaced_entry / sizeof hg_foreign.replaced_entry[0]; i++)
        hg_foreign.replaced_entry[i] = (uintptr_t)theirs[i];
    hg_foreign.low = hg_foreign_ranges[0][0];
    hg_foreign.span = hg_foreign_ranges[hg_foreign_range_count - 1][1] - hg_foreign.low;
}

void hg_foreign_copy_out(void *to, const void *from, size_t bytes) {
    /* Page by page: the old block's size is unknown, and what lies after it may be unmapped. */
    uintptr_t at = (uintptr_t)from;
    unsigned char *out = to;
    while (bytes > 0) {
        size_t chunk = 4096 - (at & 4095);
        if (chunk > bytes) chunk = bytes;
        if (!hg_read_own(out, at, chunk)) return;
        out += chunk;
        at += chunk;
        bytes -= chunk;
    }
}
