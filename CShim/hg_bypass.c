/*
 * Libraries that call glibc's allocator directly, past the shim. A library opened with
 * dlopen(RTLD_DEEPBIND) looks its symbols up in its own dependencies first, so its malloc and
 * free bind to glibc's, not to the shim's that every other caller gets: the blocks it
 * allocated were never seen, and the blocks it freed stayed in use in the report (a block the
 * program allocated and the library freed was "definitely lost"). memcheck, which redirects
 * glibc's functions themselves, sees them all.
 *
 * The shim cannot interpose dlopen without changing whose RPATH and namespace a dlopen uses
 * (glibc takes them from the caller's return address), so it repairs the binding afterwards:
 * for every library loaded after start-up, it notes the GOT slots of its malloc-family
 * imports (JUMP_SLOT and GLOB_DAT relocations), and whenever it looks at the loaded modules
 * (at each stack never seen before, hg_stacks.c) it checks the slots not yet settled: one
 * that holds the shim's entry point is settled; one that holds glibc's (the next definition
 * after the shim, dlsym(RTLD_NEXT)) is rewritten to the shim's, through a RELRO page's protection if
 * need be; one that holds neither (lazy binding not yet resolved, relocation not yet done)
 * waits for the next look. So a library's calls reach the shim from the first new stack after
 * its dlopen returned; what it did before (its constructors, its first calls) is not seen, and
 * the report names the library (an exit-time BYPASS record).
 *
 * Nothing here takes ld.so's locks beyond dl_iterate_phdr's, inside whose callback both the
 * noting and the checks run (the walk the shim makes anyway at each new stack, to see whether
 * libraries were loaded): a library in its list is not unmapped meanwhile.
 */
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "hg_internal.h"

#define HG_BYPASS_NAMES 16 /* at most: the standard entry points, the first of hg_entry_points */
#define HG_BYPASS_SLOTS 4096

typedef struct {
    uintptr_t slot, base; /* the GOT slot, and its library's load bias (dlpi_addr) */
    uint32_t module;
    uint16_t name;
    bool relro; /* on a page ld.so makes read-only once relocated (PT_GNU_RELRO) */
} hg_bypass_slot_t;

static hg_bypass_slot_t hg_slots[HG_BYPASS_SLOTS];
static size_t hg_slot_count;
static pthread_mutex_t hg_bypass_lock = PTHREAD_MUTEX_INITIALIZER;
/* glibc's entry points (the definitions after the shim), in hg_entry_points' order. */
static uintptr_t hg_glibc_of[HG_BYPASS_NAMES];
static size_t hg_name_count;
static bool hg_bypass_ready;
/* Modules found bound to glibc: HG_BYPASS_REBOUND once their slots were rewritten. */
static uint8_t hg_module_bypass[HG_MAX_MODULES];

void hg_bypass_init(void) {
    /* Off when an allocator ahead of the shim was left in place: glibc's is then not what
     * the other callers get either. */
    if (hg_foreign.outcome == HG_FOREIGN_LEFT) return;
    for (hg_name_count = 0; hg_name_count < HG_BYPASS_NAMES && hg_entry_points[hg_name_count].name; hg_name_count++)
        hg_glibc_of[hg_name_count] = (uintptr_t)dlsym(RTLD_NEXT, hg_entry_points[hg_name_count].name);
    hg_bypass_ready = true;
}

static int hg_family_index(const char *name) {
    for (size_t i = 0; i < hg_name_count; i++)
        if (strcmp(name, hg_entry_points[i].name) == 0) return (int)i;
    return -1;
}

/* A dynamic-section address: ld.so relocates them in place on x86-64, but not in a read-only
 * dynamic section. */
static uintptr_t hg_dynamic_address(uintptr_t value, uintptr_t base) { return value < base ? base + value : value; }

void hg_bypass_note(const struct dl_phdr_info *info, uint32_t module) {
    if (!hg_bypass_ready || module >= HG_MAX_MODULES) return;
    const ElfW(Dyn) *dynamic = NULL;
    uintptr_t relro_start = 0, relro_end = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *phdr = &info->dlpi_phdr[i];
        if (phdr->p_type == PT_DYNAMIC) dynamic = (const ElfW(Dyn) *)(info->dlpi_addr + phdr->p_vaddr);
        if (phdr->p_type == PT_GNU_RELRO) {
            /* ld.so protects whole pages: the start rounded down, the end too. */
            relro_start = (info->dlpi_addr + phdr->p_vaddr) & ~(uintptr_t)4095;
            relro_end = (info->dlpi_addr + phdr->p_vaddr + phdr->p_memsz) & ~(uintptr_t)4095;
        }
    }
    if (dynamic == NULL || info->dlpi_addr == 0) return;
    uintptr_t base = info->dlpi_addr, symbols = 0, strings = 0, string_size = 0;
    uintptr_t tables[2] = {0, 0}, sizes[2] = {0, 0};
    bool rela_plt = true;
    for (const ElfW(Dyn) *entry = dynamic; entry->d_tag != DT_NULL; entry++) {
        switch (entry->d_tag) {
        case DT_SYMTAB: symbols = hg_dynamic_address(entry->d_un.d_ptr, base); break;
        case DT_STRTAB: strings = hg_dynamic_address(entry->d_un.d_ptr, base); break;
        case DT_STRSZ: string_size = entry->d_un.d_val; break;
        case DT_JMPREL: tables[0] = hg_dynamic_address(entry->d_un.d_ptr, base); break;
        case DT_PLTRELSZ: sizes[0] = entry->d_un.d_val; break;
        case DT_PLTREL: rela_plt = entry->d_un.d_val == DT_RELA; break;
        case DT_RELA: tables[1] = hg_dynamic_address(entry->d_un.d_ptr, base); break;
        case DT_RELASZ: sizes[1] = entry->d_un.d_val; break;
        }
    }
    if (!symbols || !strings || !rela_plt) return;
    pthread_mutex_lock(&hg_bypass_lock);
    for (int table = 0; table < 2; table++) {
        const ElfW(Rela) *relocations = (const ElfW(Rela) *)tables[table];
        for (size_t i = 0; relocations && i < sizes[table] / sizeof(ElfW(Rela)); i++) {
            uint32_t type = ELF64_R_TYPE(relocations[i].r_info);
            if (type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT) continue;
            const ElfW(Sym) *symbol = (const ElfW(Sym) *)symbols + ELF64_R_SYM(relocations[i].r_info);
            if (symbol->st_shndx != SHN_UNDEF || symbol->st_name >= string_size) continue;
            int name = hg_family_index((const char *)strings + symbol->st_name);
            if (name < 0 || hg_slot_count == HG_BYPASS_SLOTS) continue;
            uintptr_t slot = base + relocations[i].r_offset;
            hg_slots[hg_slot_count++] =
                (hg_bypass_slot_t){slot, base, module, (uint16_t)name, slot >= relro_start && slot < relro_end};
        }
    }
    pthread_mutex_unlock(&hg_bypass_lock);
}

/* Writes one slot: straight while its page is writable, or, on a RELRO page that ld.so has
 * made read-only (so relocation is done), with the page made writable for the store and
 * read-only again. A page that is not RELRO is never made read-only: lazy binding writes it. */
static bool hg_rewrite_slot(const hg_bypass_slot_t *target, uintptr_t value) {
    if (hg_write_own(target->slot, &value, sizeof value)) return true;
    return target->relro && hg_write_protected(target->slot, &value, sizeof value, PROT_READ);
}

/* Whether a slot holding value reaches the shim: its entry point, or a replaced allocator's. */
static bool hg_reaches_shim(uintptr_t value, uint32_t name) {
    return value == (uintptr_t)hg_entry_points[name].address || (value != 0 && value == hg_foreign.replaced_entry[name]);
}

/* Checks the unsettled slots of one loaded library, inside dl_iterate_phdr's callback: a
 * library in ld.so's list is not unmapped meanwhile (dlclose takes it off the list, under the
 * lock the walk holds, before unmapping it), so its slots are read directly, and this runs at
 * every stack never seen before. */
void hg_bypass_check(const struct dl_phdr_info *info) {
    if (hg_slot_count == 0 || pthread_mutex_trylock(&hg_bypass_lock) != 0) return;
    uintptr_t base = info->dlpi_addr;
    /* A library with a slot bound to glibc's bypasses the shim; one with a slot bound to the
     * shim's does not, and needs no more looks (its other slots bind the same way when lazy
     * binding resolves them); one with neither yet waits. */
    bool bypassing = false, normal = false;
    uint32_t module = 0;
    for (size_t i = 0; i < hg_slot_count; i++) {
        const hg_bypass_slot_t *slot = &hg_slots[i];
        if (slot->base != base) continue;
        uintptr_t value = *(const uintptr_t *)slot->slot;
        module = slot->module;
        bypassing |= value == hg_glibc_of[slot->name];
        normal |= hg_reaches_shim(value, slot->name);
    }
    if (bypassing && hg_module_bypass[module] == HG_BYPASS_NONE) hg_module_bypass[module] = HG_BYPASS_FOUND;
    bool settle = normal && hg_module_bypass[module] == HG_BYPASS_NONE;
    /* Every unsettled slot of a bypassing library gets the shim's entry point: the ones bound
     * to glibc, and the ones lazy binding has not resolved yet, which would bind to glibc's at
     * the first call (deep_free in a library opened RTLD_LAZY | RTLD_DEEPBIND). */
    size_t kept = 0;
    for (size_t i = 0; i < hg_slot_count; i++) {
        hg_bypass_slot_t slot = hg_slots[i];
        if (slot.base == base) {
            if (settle || hg_reaches_shim(*(const uintptr_t *)slot.slot, slot.name)) continue;
            if (hg_module_bypass[slot.module] != HG_BYPASS_NONE && hg_rewrite_slot(&slot, (uintptr_t)hg_entry_points[slot.name].address)) {
                hg_module_bypass[slot.module] = HG_BYPASS_REBOUND;
                continue;
            }
        }
        hg_slots[kept++] = slot;
    }
    hg_slot_count = kept;
    pthread_mutex_unlock(&hg_bypass_lock);
}

bool hg_bypass_pending(void) { return hg_slot_count > 0; }

void hg_bypass_forget(uint32_t module) {
    pthread_mutex_lock(&hg_bypass_lock);
    size_t kept = 0;
    for (size_t i = 0; i < hg_slot_count; i++)
        if (hg_slots[i].module != module) hg_slots[kept++] = hg_slots[i];
    hg_slot_count = kept;
    pthread_mutex_unlock(&hg_bypass_lock);
}

int hg_bypass_state(uint32_t module) { return module < HG_MAX_MODULES ? hg_module_bypass[module] : 0; }

void hg_bypass_fork_child(void) { pthread_mutex_init(&hg_bypass_lock, NULL); }
