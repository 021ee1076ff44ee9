/*
 * Unwind information from .debug_frame, for code that has none in .eh_frame: C built with
 * -fno-asynchronous-unwind-tables (smaller binaries, some projects' default) and -g. Only the
 * non-allocated .debug_frame section describes such code, so it is not in memory: the
 * object's file is mapped (read-only, once) and its FDEs indexed by start address. memcheck
 * reads .debug_frame; libunwind as Debian builds it for x86-64 does not, so a stack through
 * such code ended at its first frame (test StackCaptureTests.debugFrameOnlyCode).
 *
 * A library's file is read by the path the loader opened (by the kernel's name for its mapping
 * when that path is relative: the program may have changed directory since); it must still be
 * the object loaded (its build id, checked against the one in memory), else it is not read.
 * The program's is opened through /proc/self/exe, the very file it was started from.
 *
 * A module is known by its first address, its end and its name, and by its build id as memory
 * holds it: a plugin rebuilt and loaded again at the addresses its earlier version left, by the
 * same path, has all but the last in common with that version, whose FDEs would be wrong for it.
 *
 * Called from hg_rule_derive (hg_eh_frame.c), once per return address that .eh_frame does not
 * cover, with the recursion guard raised. A module is loaded by the first thread that needs
 * it; another that needs it meanwhile waits (yielding, bounded). A fork child forgets a load
 * its parent's thread was making (hg_debug_frame_fork_child), and makes it again.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hg_internal.h"

#define HG_DEBUG_FRAME_MODULES 64

typedef struct {
    uint64_t start; /* link-time address */
    uint64_t offset; /* of the FDE in the section */
} hg_fde_index_t;

/* The build id where the object's notes put it in memory (size 0: it has none, or a longer
 * one than is kept here). */
typedef struct {
    uintptr_t at;
    uint32_t size;
    uint8_t bytes[32];
} hg_loaded_build_id_t;

typedef struct {
    _Atomic uintptr_t key;  /* the module's first mapped address; 0: a free entry */
    _Atomic int state;      /* HG_LOADING, then HG_READY */
    uintptr_t end;          /* with the name's hash, tells a library loaded later at the same */
    uint64_t name_hash;     /* address (a plugin closed and another opened) from this one, */
    hg_loaded_build_id_t build_id; /* and this one a rebuilt plugin loaded by the same path */
    const uint8_t *section; /* NULL when the module has no usable .debug_frame */
    size_t size;
    hg_fde_index_t *index;
    size_t count;
} hg_debug_frame_module_t;

enum { HG_LOADING = 1, HG_READY = 2 };

static hg_debug_frame_module_t hg_debug_frame_modules[HG_DEBUG_FRAME_MODULES];

/* The section [*start, *start + *size) named `wanted` in the mapped ELF file, or false. */
static bool hg_find_section(const uint8_t *file, size_t file_size, const char *wanted, const uint8_t **start,
                            size_t *size) {
    if (file_size < sizeof(Elf64_Ehdr) || memcmp(file, ELFMAG, SELFMAG) != 0 || file[EI_CLASS] != ELFCLASS64)
        return false;
    const Elf64_Ehdr *header = (const Elf64_Ehdr *)(const void *)file;
    if (header->e_shentsize != sizeof(Elf64_Shdr) || header->e_shoff > file_size ||
        (uint64_t)header->e_shnum * sizeof(Elf64_Shdr) > file_size - header->e_shoff || header->e_shstrndx >= header->e_shnum)
        return false;
    const Elf64_Shdr *sections = (const Elf64_Shdr *)(const void *)(file + header->e_shoff);
    const Elf64_Shdr *names = &sections[header->e_shstrndx];
    if (names->sh_offset > file_size || names->sh_size > file_size - names->sh_offset) return false;
    size_t wanted_length = strlen(wanted);
    for (unsigned i = 0; i < header->e_shnum; i++) {
        const Elf64_Shdr *section = &sections[i];
        if (section->sh_name >= names->sh_size || names->sh_size - section->sh_name <= wanted_length) continue;
        if (memcmp(file + names->sh_offset + section->sh_name, wanted, wanted_length + 1) != 0) continue;
        if (section->sh_type != SHT_PROGBITS || (section->sh_flags & SHF_COMPRESSED)) return false;
        if (section->sh_offset > file_size || section->sh_size > file_size - section->sh_offset) return false;
        *start = file + section->sh_offset;
        *size = section->sh_size;
        return true;
    }
    return false;
}

/* Whether the file is the object loaded: its build id is the one memory holds. A file rebuilt
 * or replaced since the program started (`make` while it runs) would describe other code. A
 * file or an object without a build id is taken as it is. */
static bool hg_is_the_loaded_object(const uint8_t *file, size_t file_size, const hg_loaded_build_id_t *loaded) {
    const Elf64_Ehdr *header = (const Elf64_Ehdr *)(const void *)file;
    if (header->e_phentsize != sizeof(Elf64_Phdr) || header->e_phoff > file_size ||
        (uint64_t)header->e_phnum * sizeof(Elf64_Phdr) > file_size - header->e_phoff)
        return false;
    if (loaded->size == 0) return true;
    const Elf64_Phdr *segments = (const Elf64_Phdr *)(const void *)(file + header->e_phoff);
    for (unsigned i = 0; i < header->e_phnum; i++) {
        const Elf64_Phdr *segment = &segments[i];
        uint64_t desc;
        uint32_t desc_size;
        if (segment->p_type != PT_NOTE || segment->p_offset > file_size || segment->p_filesz > file_size - segment->p_offset ||
            !hg_build_id_in_notes(file + segment->p_offset, segment->p_filesz, &desc, &desc_size))
            continue;
        return desc_size == loaded->size && memcmp(file + segment->p_offset + desc, loaded->bytes, desc_size) == 0;
    }
    return true;
}

/* The loaded object's build id, read from memory: its ELF header at its first mapped address
 * (the first segment maps the file from offset 0), its program headers, its notes. Read with
 * hg_read_own: an object not laid out so leaves the id empty instead of faulting. */
static void hg_read_loaded_build_id(uintptr_t map_start, uintptr_t bias, hg_loaded_build_id_t *id) {
    id->size = 0;
    Elf64_Ehdr header;
    if (!hg_read_own(&header, map_start, sizeof header) || memcmp(header.e_ident, ELFMAG, SELFMAG) != 0 ||
        header.e_phentsize != sizeof(Elf64_Phdr) || header.e_phnum > 64)
        return;
    Elf64_Phdr segments[64];
    if (!hg_read_own(segments, map_start + header.e_phoff, header.e_phnum * sizeof(Elf64_Phdr))) return;
    for (unsigned i = 0; i < header.e_phnum; i++) {
        uint8_t notes[512];
        uint64_t desc;
        uint32_t desc_size;
        if (segments[i].p_type != PT_NOTE || segments[i].p_memsz > sizeof notes ||
            !hg_read_own(notes, bias + segments[i].p_vaddr, segments[i].p_memsz) ||
            !hg_build_id_in_notes(notes, segments[i].p_memsz, &desc, &desc_size))
            continue;
        if (desc_size > sizeof id->bytes) return;
        id->at = bias + segments[i].p_vaddr + desc;
        id->size = desc_size;
        memcpy(id->bytes, notes + desc, desc_size);
        return;
    }
}

/* Whether the object loaded now has the build id the module was loaded with (one without a
 * build id is taken for the same). */
static bool hg_same_build_id(const hg_loaded_build_id_t *id) {
    uint8_t loaded[sizeof id->bytes];
    return id->size == 0 || (hg_read_own(loaded, id->at, id->size) && memcmp(loaded, id->bytes, id->size) == 0);
}

static int hg_by_start(const void *a, const void *b) {
    uint64_t x = ((const hg_fde_index_t *)a)->start, y = ((const hg_fde_index_t *)b)->start;
    return x < y ? -1 : x > y;
}

/* Indexes the FDEs of a .debug_frame section (32-bit lengths; an entry is a CIE when its id is
 * 0xffffffff, else an FDE whose id is its CIE's offset, followed by its 8-byte start). */
static void hg_index_fdes(hg_debug_frame_module_t *module) {
    size_t count = 0;
    for (size_t at = 0; module->size - at >= 12;) {
        uint32_t length, id;
        memcpy(&length, module->section + at, 4);
        if (length == 0 || length >= 0xfffffff0u || length > module->size - at - 4) break;
        memcpy(&id, module->section + at + 4, 4);
        if (id != 0xffffffffu && length >= 20) count++;
        at += 4 + (size_t)length;
    }
    if (count == 0) return;
    void *table = mmap(NULL, count * sizeof(hg_fde_index_t), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (table == MAP_FAILED) return;
    hg_fde_index_t *index = table;
    size_t filled = 0;
    for (size_t at = 0; module->size - at >= 12 && filled < count;) {
        uint32_t length, id;
        memcpy(&length, module->section + at, 4);
        if (length == 0 || length >= 0xfffffff0u || length > module->size - at - 4) break;
        memcpy(&id, module->section + at + 4, 4);
        if (id != 0xffffffffu && length >= 20) {
            index[filled].offset = at;
            memcpy(&index[filled].start, module->section + at + 8, 8);
            filled++;
        }
        at += 4 + (size_t)length;
    }
    qsort(index, filled, sizeof *index, hg_by_start);
    module->index = index;
    module->count = filled;
}

/* The kernel's name for the file mapped at `start` (/proc maps), into path; false when it has
 * none, or the file was deleted. */
static bool hg_mapped_file_name(uintptr_t start, char *path, size_t room) {
    size_t length, capacity;
    char *maps = hg_read_maps(&length, &capacity);
    if (maps == NULL) return false;
    static const char deleted[] = " (deleted)";
    const size_t suffix = sizeof deleted - 1;
    bool found = false;
    for (const char *line = maps; line != NULL;) {
        hg_maps_line_t entry;
        line = hg_parse_maps_line(line, &entry);
        if (entry.start != start) continue;
        found = entry.path_length > 0 && entry.path[0] == '/' && entry.path_length < room &&
                !(entry.path_length >= suffix && memcmp(entry.path + entry.path_length - suffix, deleted, suffix) == 0);
        if (found) {
            memcpy(path, entry.path, entry.path_length);
            path[entry.path_length] = '\0';
        }
        break;
    }
    munmap(maps, capacity);
    return found;
}

/* Maps the object's file and finds its .debug_frame; the module is READY either way. */
static void hg_load(hg_debug_frame_module_t *module, const struct link_map *map, uintptr_t map_start) {
    /* The program itself through /proc/self/exe, which opens the file it was started from
     * even when its path now names another (rebuilt since) or none. A library loaded by a
     * relative path (dlopen("./x.so"), LD_LIBRARY_PATH=.) keeps that path as its name, which
     * names nothing once the program changes directory: the kernel's name for the mapping is
     * absolute (memcheck reads the file when it is mapped). */
    const char *path = map->l_name != NULL && map->l_name[0] != '\0' ? map->l_name : "/proc/self/exe";
    char absolute[PATH_MAX];
    if (path[0] != '/') {
        if (!hg_mapped_file_name(map_start, absolute, sizeof absolute)) return;
        path = absolute;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    struct stat status;
    void *file = MAP_FAILED;
    if (fstat(fd, &status) == 0 && S_ISREG(status.st_mode) && status.st_size > 0)
        file = mmap(NULL, (size_t)status.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (file == MAP_FAILED) return;
    if (!hg_find_section(file, (size_t)status.st_size, ".debug_frame", &module->section, &module->size) ||
        !hg_is_the_loaded_object(file, (size_t)status.st_size, &module->build_id)) {
        munmap(file, (size_t)status.st_size);
        module->section = NULL;
        return;
    }
    hg_index_fdes(module); /* the file stays mapped: the section lies in it */
}

static uint64_t hg_name_hash(const char *name) {
    uint64_t hash = 0xcbf29ce484222325ull; /* FNV-1a */
    for (; name && *name; name++) hash = (hash ^ (uint8_t)*name) * 0x100000001b3ull;
    return hash;
}

static hg_debug_frame_module_t *hg_module_for(const struct dl_find_object *object) {
    uintptr_t key = (uintptr_t)object->dlfo_map_start, end = (uintptr_t)object->dlfo_map_end;
    uint64_t name_hash = hg_name_hash(object->dlfo_link_map->l_name);
    for (unsigned i = 0; i < HG_DEBUG_FRAME_MODULES; i++) {
        hg_debug_frame_module_t *module = &hg_debug_frame_modules[i];
        uintptr_t seen = atomic_load_explicit(&module->key, memory_order_acquire);
        if (seen == 0 && atomic_compare_exchange_strong(&module->key, &seen, key)) {
            module->end = end;
            module->name_hash = name_hash;
            int saved_errno = errno;
            hg_read_loaded_build_id(key, object->dlfo_link_map->l_addr, &module->build_id);
            hg_load(module, object->dlfo_link_map, key);
            errno = saved_errno;
            atomic_store_explicit(&module->state, HG_READY, memory_order_release);
            return module;
        }
        if (seen != key) continue;
        for (unsigned turn = 0; atomic_load_explicit(&module->state, memory_order_acquire) != HG_READY; turn++) {
            if (turn == 100000) return NULL; /* loaded by a thread a fork left behind */
            sched_yield();
        }
        if (module->end == end && module->name_hash == name_hash && hg_same_build_id(&module->build_id)) return module;
    }
    return NULL;
}

const uint8_t *hg_debug_frame_fde(uintptr_t pc, const uint8_t **section, size_t *size, uintptr_t *bias) {
    struct dl_find_object object;
    if (_dl_find_object((void *)pc, &object) != 0 || object.dlfo_link_map == NULL) return NULL;
    hg_debug_frame_module_t *module = hg_module_for(&object);
    if (module == NULL || module->index == NULL) return NULL;
    uint64_t target = pc - object.dlfo_link_map->l_addr;
    size_t low = 0, high = module->count;
    if (module->index[0].start > target) return NULL;
    while (high - low > 1) { /* the last FDE that starts at or before the target */
        size_t mid = low + (high - low) / 2;
        if (module->index[mid].start <= target) low = mid;
        else high = mid;
    }
    *section = module->section;
    *size = module->size;
    *bias = object.dlfo_link_map->l_addr;
    return module->section + module->index[low].offset;
}

void hg_debug_frame_fork_child(void) {
    for (unsigned i = 0; i < HG_DEBUG_FRAME_MODULES; i++) {
        hg_debug_frame_module_t *module = &hg_debug_frame_modules[i];
        if (atomic_load(&module->key) != 0 && atomic_load(&module->state) != HG_READY) {
            atomic_store(&module->state, 0); /* a load the parent's thread was making: loaded again */
            atomic_store(&module->key, 0);
        }
    }
}
