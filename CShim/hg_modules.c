/*
 * The loaded objects (path, build-id, load bias, PT_LOAD segments), recorded as they come and
 * go so that frames in a library dlclose'd before exit still symbolize.
 *
 * dlopen is deliberately not interposed (an interposed dlopen resolves RUNPATH relative to
 * the wrong caller). Instead, whenever a stack is seen for the first time, the dl_iterate_phdr
 * add/sub counters say whether the set changed; if it did, the list is scanned again under a
 * mutex (a slow path: new stacks are rare) and MODULE_LOAD/UNLOAD events go into the ring,
 * ahead of any event that names the new stack. dlclose is interposed (hg_dlclose.c) and rescans
 * before and after the real one: a library can be closed, and another mapped at its
 * addresses, without any stack being new (plugins of one shape allocate from the same return
 * addresses), and the trace must still say that the addresses changed hands.
 *
 * The table grows in chunks mapped as needed, so that a program that loads and unloads
 * libraries in a loop has all of its loads recorded: with a fixed 4,096 entries, the loads
 * past the limit were not recorded, and their frames were named after an older library at
 * the same addresses.
 */
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hg_internal.h"

#define HG_PATH_POOL_BYTES (1u << 20)
#define HG_MODULE_CHUNK_SHIFT 10 /* 1,024 modules, about 420 KiB, a chunk */
#define HG_MODULE_CHUNK (1u << HG_MODULE_CHUNK_SHIFT)
#define HG_MODULE_CHUNKS 1024    /* up to 1,048,576 loads over a process's life */

/* Chunks are mapped under hg_modules_lock before the count that covers them is published
 * (release), and never unmapped: a reader that loaded the count (acquire) sees its chunk. */
static hg_module_t *_Atomic hg_module_chunks[HG_MODULE_CHUNKS];
/* The indexes of the modules loaded at the last rescan, which is all a rescan compares with:
 * walking the whole table made each dlclose cost time in proportion to every load before it. */
#define HG_MAX_LOADED 65536
static uint32_t hg_loaded[HG_MAX_LOADED];
static uint32_t hg_loaded_count;
static _Atomic uint32_t hg_module_count;
static char *hg_path_pool; /* the current pool; a full one is left as it is and a new one mapped */
static size_t hg_path_used = HG_PATH_POOL_BYTES;
static char hg_exe_path[4096];
static pthread_mutex_t hg_modules_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct {
    unsigned long long adds, subs;
} hg_dl_counters_t;

static _Atomic unsigned long long hg_known_adds, hg_known_subs;

/* The counters are the same on every object: one is enough, unless libraries loaded since
 * start-up still have GOT slots to check (hg_bypass.c). Those are checked only while nothing
 * was loaded or unloaded since the last rescan: a stale slot of an unloaded library could
 * otherwise point into whatever was mapped at its place. */
static int hg_read_counters(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    hg_dl_counters_t *counters = data;
    counters->adds = info->dlpi_adds;
    counters->subs = info->dlpi_subs;
    if (!hg_bypass_pending() || info->dlpi_adds != atomic_load(&hg_known_adds) ||
        info->dlpi_subs != atomic_load(&hg_known_subs))
        return 1;
    hg_bypass_check(info);
    return 0;
}

static hg_module_t *hg_module_at(uint32_t index) {
    hg_module_t *chunk = atomic_load_explicit(&hg_module_chunks[index >> HG_MODULE_CHUNK_SHIFT], memory_order_relaxed);
    return &chunk[index & (HG_MODULE_CHUNK - 1)];
}

/* Makes room for module `index`; false when the table or memory is exhausted. Caller holds
 * hg_modules_lock. */
static bool hg_module_room(uint32_t index) {
    uint32_t chunk = index >> HG_MODULE_CHUNK_SHIFT;
    if (chunk >= HG_MODULE_CHUNKS) return false;
    if (atomic_load_explicit(&hg_module_chunks[chunk], memory_order_relaxed)) return true;
    void *map = mmap(NULL, sizeof(hg_module_t) * HG_MODULE_CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) return false;
    atomic_store_explicit(&hg_module_chunks[chunk], map, memory_order_release);
    return true;
}

static const char *hg_intern_path(const char *path) {
    size_t length = strlen(path) + 1;
    if (length > HG_PATH_POOL_BYTES) return "";
    if (hg_path_used + length > HG_PATH_POOL_BYTES) {
        void *map = mmap(NULL, HG_PATH_POOL_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (map == MAP_FAILED) return "";
        hg_path_pool = map;
        hg_path_used = 0;
    }
    char *copy = hg_path_pool + hg_path_used;
    memcpy(copy, path, length);
    hg_path_used += length;
    return copy;
}

bool hg_build_id_in_notes(const uint8_t *notes, uint64_t size, uint64_t *desc, uint32_t *desc_size) {
    for (uint64_t at = 0; size - at >= sizeof(ElfW(Nhdr));) {
        const ElfW(Nhdr) *note = (const ElfW(Nhdr) *)(const void *)(notes + at);
        uint64_t start = at + sizeof *note + ((note->n_namesz + 3) & ~3ull);
        uint64_t next = start + ((note->n_descsz + 3) & ~3ull);
        if (next > size) return false;
        if (note->n_type == NT_GNU_BUILD_ID && note->n_namesz == 4 && memcmp(notes + at + sizeof *note, "GNU", 4) == 0) {
            *desc = start;
            *desc_size = note->n_descsz;
            return true;
        }
        at = next;
    }
    return false;
}

static void hg_read_build_id(hg_module_t *module, const struct dl_phdr_info *info) {
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *phdr = &info->dlpi_phdr[i];
        if (phdr->p_type != PT_NOTE) continue;
        const uint8_t *notes = (const uint8_t *)(info->dlpi_addr + phdr->p_vaddr);
        uint64_t desc;
        uint32_t desc_size;
        if (hg_build_id_in_notes(notes, phdr->p_memsz, &desc, &desc_size) && desc_size <= sizeof module->build_id) {
            memcpy(module->build_id, notes + desc, desc_size);
            module->build_id_len = desc_size;
            return;
        }
    }
}

/* The loader's name for a module; the main program is reported with an empty name. */
static const char *hg_module_name(const struct dl_phdr_info *info) {
    return (info->dlpi_name && info->dlpi_name[0]) ? info->dlpi_name : hg_exe_path;
}

/* The name a module is recorded under. A name relative to the working directory
 * (`LD_PRELOAD=build/lib/libheapgate.so`, `dlopen("./plugin.so")`) is made absolute when the
 * module is first seen, while that directory is most likely the one the loader used: a
 * report made later, from elsewhere, could not open the file, and left the frames in it
 * unnamed (the shim's malloc among them, so the default suppressions did not match). Caller
 * holds hg_modules_lock (the buffers are shared). */
static const char *hg_recorded_name(const char *name) {
    if (name[0] == '/') return name;
    static char cwd[4096], absolute[8192];
    if (getcwd(cwd, sizeof cwd) == NULL) return name;
    int length = snprintf(absolute, sizeof absolute, "%s/%s", cwd, name);
    return length > 0 && (size_t)length < sizeof absolute ? absolute : name;
}

/* Whether a module recorded as `recorded` is the loader's `name`: the same, or, for a relative
 * name, its absolute form from whatever directory was current then. */
static bool hg_same_module_name(const char *recorded, const char *name) {
    if (strcmp(recorded, name) == 0) return true;
    size_t recorded_length = strlen(recorded), length = strlen(name);
    return name[0] != '/' && recorded_length > length && recorded[recorded_length - length - 1] == '/' &&
           strcmp(recorded + recorded_length - length, name) == 0;
}

static int hg_find_loaded(uintptr_t base, const char *name) {
    for (uint32_t i = 0; i < hg_loaded_count; i++) {
        const hg_module_t *module = hg_module_at(hg_loaded[i]);
        if (module->base == base && hg_same_module_name(module->path, name)) return (int)hg_loaded[i];
    }
    return -1;
}

typedef struct {
    hg_dl_counters_t counters;
    uint32_t first_new; /* the table's count when the scan began */
} hg_scan_t;

static int hg_scan_one(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    hg_scan_t *scan = data;
    scan->counters.adds = info->dlpi_adds;
    scan->counters.subs = info->dlpi_subs;
    const char *name = hg_module_name(info);
    int found = hg_find_loaded(info->dlpi_addr, name);
    if (found >= 0) {
        hg_module_at((uint32_t)found)->seen = true;
        return 0;
    }
    uint32_t index = atomic_load(&hg_module_count);
    /* hg_loaded takes the new ones after the unloads are dropped: room for them is checked here */
    if (index - scan->first_new + hg_loaded_count >= HG_MAX_LOADED || !hg_module_room(index)) return 0;
    hg_module_t *module = hg_module_at(index);
    memset(module, 0, sizeof *module);
    module->base = info->dlpi_addr;
    module->path = hg_intern_path(hg_recorded_name(name));
    for (int i = 0; i < info->dlpi_phnum && module->segment_count < HG_MAX_SEGMENTS; i++) {
        const ElfW(Phdr) *phdr = &info->dlpi_phdr[i];
        if (phdr->p_type != PT_LOAD) continue;
        module->seg_vaddr[module->segment_count] = phdr->p_vaddr;
        module->seg_memsz[module->segment_count] = phdr->p_memsz;
        module->seg_flags[module->segment_count] = phdr->p_flags;
        module->segment_count++;
    }
    hg_read_build_id(module, info);
    module->loaded = true;
    module->seen = true;
    atomic_store_explicit(&hg_module_count, index + 1, memory_order_release);
    hg_bypass_note(info, index); /* loaded by dlopen, maybe with RTLD_DEEPBIND (not before hg_bypass_init) */
    return 0;
}

/* Caller holds hg_modules_lock. Unloads are pushed before loads: a new object may sit at
 * the address an old one left. The modules a scan adds are the table's new entries. */
static void hg_rescan(void) {
    uint32_t before = atomic_load(&hg_module_count);
    hg_scan_t scan = {.first_new = before};
    for (uint32_t i = 0; i < hg_loaded_count; i++) hg_module_at(hg_loaded[i])->seen = false;
    dl_iterate_phdr(hg_scan_one, &scan);
    uint32_t kept = 0;
    for (uint32_t i = 0; i < hg_loaded_count; i++) {
        hg_module_t *module = hg_module_at(hg_loaded[i]);
        if (module->seen) {
            hg_loaded[kept++] = hg_loaded[i];
            continue;
        }
        module->loaded = false;
        hg_bypass_forget(hg_loaded[i]);
        hg_ring_push(HG_EV_MODULE_UNLOAD, hg_loaded[i], 0, 0, 0);
    }
    hg_loaded_count = kept;
    uint32_t after = atomic_load(&hg_module_count);
    for (uint32_t i = before; i < after; i++) {
        hg_loaded[hg_loaded_count++] = i;
        hg_ring_push(HG_EV_MODULE_LOAD, i, 0, 0, 0);
    }
    atomic_store(&hg_known_adds, scan.counters.adds);
    atomic_store(&hg_known_subs, scan.counters.subs);
}

/* The loader's list lock first, then hg_modules_lock: the order of a program's dl_iterate_phdr
 * callback that allocates from a new call site (hg_loader_lock.c). */
static void hg_rescan_locked(void) {
    hg_loader_lock_hold();
    pthread_mutex_lock(&hg_modules_lock);
    hg_rescan();
    pthread_mutex_unlock(&hg_modules_lock);
    hg_loader_lock_release();
}

void hg_modules_init(void) {
    ssize_t length = readlink("/proc/self/exe", hg_exe_path, sizeof hg_exe_path - 1);
    hg_exe_path[length > 0 ? length : 0] = '\0';
    hg_loader_lock_find();
    hg_rescan_locked();
    hg_bypass_init(); /* after the start-up modules, which see the shim's entry points first */
}

void hg_modules_refresh_if_changed(void) {
    hg_dl_counters_t now = {0, 0};
    dl_iterate_phdr(hg_read_counters, &now);
    if (now.adds != atomic_load(&hg_known_adds) || now.subs != atomic_load(&hg_known_subs)) {
        hg_rescan_locked();
    }
}

void hg_modules_check_bypass(void) {
    hg_dl_counters_t now = {0, 0};
    dl_iterate_phdr(hg_read_counters, &now);
}

const hg_module_t *hg_modules_get(uint32_t index) { return hg_module_at(index); }
void hg_modules_note_in_child_trace(uint32_t index) { hg_module_at(index)->in_child_trace = true; }
uint32_t hg_modules_count(void) { return atomic_load_explicit(&hg_module_count, memory_order_acquire); }

/* The loader's list lock too, or what keeps the list whole (hg_loader_lock.c): a child must
 * find both free. */
void hg_modules_fork_prepare(void) {
    hg_loader_lock_hold_for_fork();
    pthread_mutex_lock(&hg_modules_lock);
}

void hg_modules_fork_parent(void) {
    pthread_mutex_unlock(&hg_modules_lock);
    hg_loader_lock_release_after_fork();
}

void hg_modules_fork_child(void) {
    pthread_mutex_init(&hg_modules_lock, NULL);
    hg_loader_lock_reset_in_child();
    hg_bypass_fork_child();
}
