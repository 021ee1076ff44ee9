/*
 * The loaded objects (path, build-id, load bias, PT_LOAD segments), recorded as they come and
 * go so that frames in a library dlclose'd before exit still symbolize.
 *
 * dlopen is deliberately not interposed (an interposed dlopen resolves RUNPATH relative to
 * the wrong caller). Instead, whenever a stack is seen for the first time, the dl_iterate_phdr
 * add/sub counters say whether the set changed; if it did, the list is scanned again under a
 * mutex (a slow path: new stacks are rare) and MODULE_LOAD/UNLOAD events go into the ring,
 * ahead of any event that names the new stack.
 */
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hg_internal.h"

#define HG_PATH_POOL_BYTES (1u << 20)

static hg_module_t hg_modules[HG_MAX_MODULES];
static bool hg_module_seen[HG_MAX_MODULES];
static _Atomic uint32_t hg_module_count;
static char hg_path_pool[HG_PATH_POOL_BYTES];
static size_t hg_path_used;
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

static const char *hg_intern_path(const char *path) {
    size_t length = strlen(path) + 1;
    if (hg_path_used + length > HG_PATH_POOL_BYTES) return "";
    char *copy = hg_path_pool + hg_path_used;
    memcpy(copy, path, length);
    hg_path_used += length;
    return copy;
}

static void hg_read_build_id(hg_module_t *module, const struct dl_phdr_info *info) {
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *phdr = &info->dlpi_phdr[i];
        if (phdr->p_type != PT_NOTE) continue;
        const unsigned char *note = (const unsigned char *)(info->dlpi_addr + phdr->p_vaddr);
        const unsigned char *end = note + phdr->p_memsz;
        while (note + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *header = (const ElfW(Nhdr) *)note;
            const unsigned char *name = note + sizeof *header;
            const unsigned char *desc = name + ((header->n_namesz + 3) & ~3u);
            if (header->n_type == NT_GNU_BUILD_ID && header->n_namesz == 4 && memcmp(name, "GNU", 4) == 0 &&
                header->n_descsz <= sizeof module->build_id && desc + header->n_descsz <= end) {
                memcpy(module->build_id, desc, header->n_descsz);
                module->build_id_len = header->n_descsz;
                return;
            }
            note = desc + ((header->n_descsz + 3) & ~3u);
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
    uint32_t count = atomic_load(&hg_module_count);
    for (uint32_t i = 0; i < count; i++)
        if (hg_modules[i].loaded && hg_modules[i].base == base && hg_same_module_name(hg_modules[i].path, name)) return (int)i;
    return -1;
}

typedef struct {
    uint32_t added[HG_MAX_MODULES];
    uint32_t added_count;
    hg_dl_counters_t counters;
} hg_scan_t;

static int hg_scan_one(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    hg_scan_t *scan = data;
    scan->counters.adds = info->dlpi_adds;
    scan->counters.subs = info->dlpi_subs;
    const char *name = hg_module_name(info);
    int found = hg_find_loaded(info->dlpi_addr, name);
    if (found >= 0) {
        hg_module_seen[found] = true;
        return 0;
    }
    uint32_t index = atomic_load(&hg_module_count);
    if (index >= HG_MAX_MODULES) return 0;
    hg_module_t *module = &hg_modules[index];
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
    hg_module_seen[index] = true;
    atomic_store_explicit(&hg_module_count, index + 1, memory_order_release);
    scan->added[scan->added_count++] = index;
    hg_bypass_note(info, index); /* loaded by dlopen, maybe with RTLD_DEEPBIND (not before hg_bypass_init) */
    return 0;
}

/* Caller holds hg_modules_lock. Unloads are pushed before loads: a new object may sit at
 * the address an old one left. */
static void hg_rescan(void) {
    static hg_scan_t scan; /* large; only ever used under the lock */
    uint32_t before = atomic_load(&hg_module_count);
    memset(hg_module_seen, 0, sizeof hg_module_seen);
    scan.added_count = 0;
    dl_iterate_phdr(hg_scan_one, &scan);
    for (uint32_t i = 0; i < before; i++) {
        if (hg_modules[i].loaded && !hg_module_seen[i]) {
            hg_modules[i].loaded = false;
            hg_bypass_forget(i);
            hg_ring_push(HG_EV_MODULE_UNLOAD, i, 0, 0, 0);
        }
    }
    for (uint32_t i = 0; i < scan.added_count; i++) {
        hg_ring_push(HG_EV_MODULE_LOAD, scan.added[i], 0, 0, 0);
    }
    atomic_store(&hg_known_adds, scan.counters.adds);
    atomic_store(&hg_known_subs, scan.counters.subs);
}

void hg_modules_init(void) {
    ssize_t length = readlink("/proc/self/exe", hg_exe_path, sizeof hg_exe_path - 1);
    hg_exe_path[length > 0 ? length : 0] = '\0';
    pthread_mutex_lock(&hg_modules_lock);
    hg_rescan();
    pthread_mutex_unlock(&hg_modules_lock);
    hg_bypass_init(); /* after the start-up modules, which see the shim's entry points first */
}

void hg_modules_refresh_if_changed(void) {
    hg_dl_counters_t now = {0, 0};
    dl_iterate_phdr(hg_read_counters, &now);
    if (now.adds != atomic_load(&hg_known_adds) || now.subs != atomic_load(&hg_known_subs)) {
        pthread_mutex_lock(&hg_modules_lock);
        hg_rescan();
        pthread_mutex_unlock(&hg_modules_lock);
    }
}

void hg_modules_check_bypass(void) {
    hg_dl_counters_t now = {0, 0};
    dl_iterate_phdr(hg_read_counters, &now);
}

const hg_module_t *hg_modules_get(uint32_t index) { return &hg_modules[index]; }
uint32_t hg_modules_count(void) { return atomic_load_explicit(&hg_module_count, memory_order_acquire); }

void hg_modules_fork_prepare(void) { pthread_mutex_lock(&hg_modules_lock); }
void hg_modules_fork_parent(void) { pthread_mutex_unlock(&hg_modules_lock); }
void hg_modules_fork_child(void) {
    pthread_mutex_init(&hg_modules_lock, NULL);
    hg_bypass_fork_child();
}
