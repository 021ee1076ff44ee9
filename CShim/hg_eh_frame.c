/*
 * A return address's unwind rule, read from its object's .eh_frame (found lock-free with
 * glibc's _dl_find_object and the binary-search table of .eh_frame_hdr): the CIE and FDE are
 * parsed and the CFA program run up to the call, and the resulting row is packed into a rule
 * (hg_internal.h) when it is a standard frame (CFA = RSP or RBP plus a constant, return
 * address at CFA - 8, RBP unchanged or saved at a fixed offset from the CFA). Anything else,
 * and any unwind info this reader does not follow, gives HG_RULE_FALLBACK: the capture then
 * goes to unw_backtrace. Called once per return address (hg_unwind.c keeps the rules).
 */
#include <dlfcn.h>
#include <string.h>

#include "hg_internal.h"

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
    bool ok;
} hg_reader_t;

static uint8_t hg_u8(hg_reader_t *r) {
    if (r->p >= r->end) {
        r->ok = false;
        return 0;
    }
    return *r->p++;
}

static uint64_t hg_fixed(hg_reader_t *r, size_t bytes) {
    if ((size_t)(r->end - r->p) < bytes) {
        r->ok = false;
        return 0;
    }
    uint64_t value = 0;
    memcpy(&value, r->p, bytes); /* little-endian */
    r->p += bytes;
    return value;
}

static uint64_t hg_uleb(hg_reader_t *r) {
    uint64_t value = 0;
    for (unsigned shift = 0; r->ok; shift += 7) {
        uint8_t byte = hg_u8(r);
        if (shift < 64) value |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) break;
    }
    return value;
}

static int64_t hg_sleb(hg_reader_t *r) {
    uint64_t value = 0;
    unsigned shift = 0;
    uint8_t byte = 0;
    do {
        byte = hg_u8(r);
        if (shift < 64) value |= (uint64_t)(byte & 0x7f) << shift;
        shift += 7;
    } while ((byte & 0x80) && r->ok);
    if (shift < 64 && (byte & 0x40)) value |= ~0ull << shift;
    return (int64_t)value;
}

/* DW_EH_PE_* pointer encodings: absolute or pc-relative (the only ones FDEs use on Linux). */
static uint64_t hg_encoded(hg_reader_t *r, uint8_t encoding) {
    const uint8_t *field = r->p;
    uint64_t value;
    switch (encoding & 0x0f) {
    case 0x00: value = hg_fixed(r, 8); break;
    case 0x01: value = hg_uleb(r); break;
    case 0x02: value = hg_fixed(r, 2); break;
    case 0x03: value = hg_fixed(r, 4); break;
    case 0x04: value = hg_fixed(r, 8); break;
    case 0x09: value = (uint64_t)hg_sleb(r); break;
    case 0x0a: value = (uint64_t)(int64_t)(int16_t)hg_fixed(r, 2); break;
    case 0x0b: value = (uint64_t)(int64_t)(int32_t)hg_fixed(r, 4); break;
    case 0x0c: value = hg_fixed(r, 8); break;
    default: r->ok = false; return 0;
    }
    switch (encoding & 0x70) {
    case 0x00: break;
    case 0x10: value += (uintptr_t)field; break;
    default: r->ok = false; break;
    }
    if (encoding & 0x80) r->ok = false; /* indirect: never used for code addresses */
    return value;
}

/* Register rules the classification needs (DWARF numbers: 6 RBP, 7 RSP, 16 return address). */
enum { HG_REG_RBP = 6, HG_REG_RSP = 7, HG_REG_RA = 16, HG_REGS = 17 };
enum { HG_WHERE_SAME = 0, HG_WHERE_UNDEF, HG_WHERE_CFAREL, HG_WHERE_OTHER };

typedef struct {
    uint8_t where[HG_REGS];
    int64_t offset[HG_REGS];
    uint64_t cfa_reg;
    int64_t cfa_off;
    bool cfa_expr;
} hg_row_t;

typedef struct {
    uint64_t code_align;
    int64_t data_align;
    uint8_t fde_encoding;
    bool has_z;
    const uint8_t *insns;
    const uint8_t *insns_end;
} hg_cie_t;

/* A reader over the CIE or FDE at entry, past its 32-bit length (a zero length ends the
 * section, and 64-bit lengths are not followed); false for those. */
static bool hg_open_entry(const uint8_t *entry, hg_reader_t *r) {
    *r = (hg_reader_t){entry, entry + 4, true};
    uint64_t length = hg_fixed(r, 4);
    if (length == 0 || length >= 0xfffffff0u) return false;
    r->end = entry + 4 + length;
    return true;
}

/* A CIE's id is 0 in .eh_frame, 0xffffffff in .debug_frame. */
static bool hg_parse_cie(const uint8_t *cie, hg_cie_t *out, uint32_t cie_id) {
    hg_reader_t r;
    if (!hg_open_entry(cie, &r)) return false;
    if (hg_fixed(&r, 4) != cie_id) return false;
    uint8_t version = hg_u8(&r);
    if (version != 1 && version != 3 && version != 4) return false;
    const char *augmentation = (const char *)r.p;
    size_t aug_len = strnlen(augmentation, (size_t)(r.end - r.p));
    r.p += aug_len + 1;
    if (version == 4) {
        if (hg_u8(&r) != 8) return false; /* address size */
        hg_u8(&r);                        /* segment selector size */
    }
    out->code_align = hg_uleb(&r);
    out->data_align = hg_sleb(&r);
    uint64_t ra_column = version == 1 ? hg_u8(&r) : hg_uleb(&r);
    if (!r.ok || ra_column != HG_REG_RA) return false;
    out->fde_encoding = 0; /* absolute 8 bytes */
    out->has_z = augmentation[0] == 'z';
    if (out->has_z) {
        uint64_t data_len = hg_uleb(&r);
        const uint8_t *data_end = r.p + data_len;
        if (!r.ok || data_end > r.end) return false;
        for (size_t i = 1; i < aug_len; i++) {
            char c = augmentation[i];
            if (c == 'R') {
                out->fde_encoding = hg_u8(&r);
            } else if (c == 'P') {
                uint8_t encoding = hg_u8(&r);
                hg_encoded(&r, encoding & 0x0f); /* skip the personality pointer */
            } else if (c == 'L') {
                hg_u8(&r);
            } else if (c == 'S') {
                return false; /* a signal frame */
            } else {
                break; /* unknown: the length lets us skip the rest */
            }
        }
        if (!r.ok) return false;
        r.p = data_end;
    } else if (aug_len != 0) {
        return false;
    }
    out->insns = r.p;
    out->insns_end = r.end;
    return r.ok;
}

/* Sets one register's rule (the offset counts only for HG_WHERE_CFAREL); registers the
 * classification does not track are ignored. */
static void hg_set_where(hg_row_t *row, uint64_t reg, uint8_t where, int64_t offset) {
    if (reg >= HG_REGS) return;
    row->where[reg] = where;
    row->offset[reg] = offset;
}

/* DW_CFA_restore: the register's rule as the CIE's initial instructions left it. */
static void hg_restore_where(hg_row_t *row, const hg_row_t *initial, uint64_t reg) {
    if (reg < HG_REGS) hg_set_where(row, reg, initial->where[reg], initial->offset[reg]);
}

#define HG_STATE_STACK 8 /* remember_state nesting; deeper falls back */

/* Runs CFA instructions up to and including location `target` (the rows in force there). */
static bool hg_run_cfa(hg_reader_t *r, const hg_cie_t *cie, const hg_row_t *initial, hg_row_t *row, uint64_t location,
                       uint64_t target) {
    hg_row_t saved[HG_STATE_STACK];
    int depth = 0;
    while (r->ok && r->p < r->end && location <= target) {
        uint8_t op = hg_u8(r);
        uint64_t reg = 0;
        int64_t offset = 0;
        switch (op & 0xc0) {
        case 0x40: location += (uint64_t)(op & 0x3f) * cie->code_align; continue;
        case 0x80:
            reg = op & 0x3f;
            offset = (int64_t)hg_uleb(r) * cie->data_align;
            hg_set_where(row, reg, HG_WHERE_CFAREL, offset);
            continue;
        case 0xc0:
            reg = op & 0x3f;
            hg_restore_where(row, initial, reg);
            continue;
        }
        switch (op) {
        case 0x00: break; /* nop */
        case 0x01: location = hg_encoded(r, cie->fde_encoding); break;
        case 0x02: location += hg_fixed(r, 1) * cie->code_align; break;
        case 0x03: location += hg_fixed(r, 2) * cie->code_align; break;
        case 0x04: location += hg_fixed(r, 4) * cie->code_align; break;
        case 0x05: /* offset_extended */
            reg = hg_uleb(r);
            offset = (int64_t)hg_uleb(r) * cie->data_align;
            hg_set_where(row, reg, HG_WHERE_CFAREL, offset);
            break;
        case 0x06: /* restore_extended */
            reg = hg_uleb(r);
            hg_restore_where(row, initial, reg);
            break;
        case 0x07: /* undefined */
            reg = hg_uleb(r);
            hg_set_where(row, reg, HG_WHERE_UNDEF, 0);
            break;
        case 0x08: /* same_value */
            reg = hg_uleb(r);
            hg_set_where(row, reg, HG_WHERE_SAME, 0);
            break;
        case 0x09: /* register */
        case 0x14: /* val_offset */
        case 0x15: /* val_offset_sf: its operand is skipped, and a LEB128's length does not depend on its sign */
            reg = hg_uleb(r);
            hg_uleb(r);
            hg_set_where(row, reg, HG_WHERE_OTHER, 0);
            break;
        case 0x0a: /* remember_state */
            if (depth == HG_STATE_STACK) return false;
            saved[depth++] = *row;
            break;
        case 0x0b: /* restore_state: the CFA is part of the state, as in libunwind and libgcc */
            if (depth == 0) return false;
            *row = saved[--depth];
            break;
        case 0x0c: /* def_cfa */
            row->cfa_reg = hg_uleb(r);
            row->cfa_off = (int64_t)hg_uleb(r);
            row->cfa_expr = false;
            break;
        case 0x0d: /* def_cfa_register */
            row->cfa_reg = hg_uleb(r);
            row->cfa_expr = false;
            break;
        case 0x0e: row->cfa_off = (int64_t)hg_uleb(r); break; /* def_cfa_offset */
        case 0x0f:                                             /* def_cfa_expression */
            offset = (int64_t)hg_uleb(r);
            if (offset < 0 || offset > r->end - r->p) return false;
            r->p += offset;
            row->cfa_expr = true;
            break;
        case 0x10: /* expression */
        case 0x16: /* val_expression */
            reg = hg_uleb(r);
            offset = (int64_t)hg_uleb(r);
            if (offset < 0 || offset > r->end - r->p) return false;
            r->p += offset;
            hg_set_where(row, reg, HG_WHERE_OTHER, 0);
            break;
        case 0x11: /* offset_extended_sf */
            reg = hg_uleb(r);
            offset = hg_sleb(r) * cie->data_align;
            hg_set_where(row, reg, HG_WHERE_CFAREL, offset);
            break;
        case 0x12: /* def_cfa_sf */
            row->cfa_reg = hg_uleb(r);
            row->cfa_off = hg_sleb(r) * cie->data_align;
            row->cfa_expr = false;
            break;
        case 0x13: row->cfa_off = hg_sleb(r) * cie->data_align; break; /* def_cfa_offset_sf */
        case 0x2e: hg_uleb(r); break; /* GNU_args_size */
        case 0x2f:                    /* GNU_negative_offset_extended */
            reg = hg_uleb(r);
            offset = -(int64_t)hg_uleb(r) * cie->data_align;
            hg_set_where(row, reg, HG_WHERE_CFAREL, offset);
            break;
        default: return false;
        }
    }
    return r->ok;
}

/* The FDE covering pc, through the binary-search table of .eh_frame_hdr. */
static const uint8_t *hg_find_fde(uintptr_t pc) {
    struct dl_find_object object;
    if (_dl_find_object((void *)pc, &object) != 0 || object.dlfo_eh_frame == NULL) return NULL;
    const uint8_t *hdr = object.dlfo_eh_frame;
    /* version 1, then eh_frame_ptr, fde_count (udata4) and a table of datarel sdata4 pairs */
    if (hdr[0] != 1 || hdr[2] != 0x03 || hdr[3] != 0x3b) return NULL;
    hg_reader_t r = {hdr + 4, hdr + 32, true};
    hg_encoded(&r, hdr[1]);
    uint32_t count = (uint32_t)hg_fixed(&r, 4);
    if (!r.ok || count == 0) return NULL;
    const int32_t *table = (const int32_t *)(const void *)r.p;
    intptr_t target = (intptr_t)(pc - (uintptr_t)hdr);
    uint32_t low = 0, high = count;
    while (high - low > 1) { /* last entry whose start <= pc */
        uint32_t mid = low + (high - low) / 2;
        if ((intptr_t)table[2 * mid] <= target) low = mid;
        else high = mid;
    }
    if ((intptr_t)table[2 * low] > target) return NULL;
    return hdr + table[2 * low + 1];
}

/* The rule from an FDE: `pc` in the FDE's own addresses (run time for .eh_frame, whose
 * pointers the CIE encodes, mostly pc-relative; link time for .debug_frame, absolute).
 * HG_NOT_COVERED when the FDE does not cover pc. */
#define HG_NOT_COVERED 0
static uint64_t hg_rule_from_fde(const uint8_t *fde, const uint8_t *debug_frame, size_t debug_frame_size, uint64_t pc) {
    uint64_t fallback = hg_rule_make(HG_RULE_FALLBACK, 0, false, 0);
    hg_reader_t r;
    if (!hg_open_entry(fde, &r)) return fallback;
    const uint8_t *cie_field = r.p;
    uint32_t cie_pointer = (uint32_t)hg_fixed(&r, 4);
    if (!r.ok) return fallback;
    hg_cie_t cie;
    if (debug_frame) { /* the CIE's offset in the section, its length within the section */
        uint32_t cie_length = 0;
        if (cie_pointer >= debug_frame_size || debug_frame_size - cie_pointer < 8) return fallback;
        memcpy(&cie_length, debug_frame + cie_pointer, 4);
        if (cie_length > debug_frame_size - cie_pointer - 4 ||
            !hg_parse_cie(debug_frame + cie_pointer, &cie, 0xffffffffu) || cie.fde_encoding != 0)
            return fallback;
    } else { /* the distance back to the CIE */
        if (cie_pointer == 0 || !hg_parse_cie(cie_field - cie_pointer, &cie, 0)) return fallback;
    }
    uint64_t start = hg_encoded(&r, cie.fde_encoding);
    uint64_t range = hg_encoded(&r, cie.fde_encoding & 0x0f);
    if (!r.ok) return fallback;
    if (pc < start || pc - start >= range) return HG_NOT_COVERED;
    if (cie.has_z) {
        uint64_t skip = hg_uleb(&r);
        if (!r.ok || skip > (uint64_t)(r.end - r.p)) return fallback;
        r.p += skip;
    }

    hg_row_t initial = {.cfa_reg = HG_REG_RSP};
    hg_reader_t cie_insns = {cie.insns, cie.insns_end, true};
    if (!hg_run_cfa(&cie_insns, &cie, &initial, &initial, 0, UINT64_MAX)) return fallback;
    hg_row_t row = initial;
    if (!hg_run_cfa(&r, &cie, &initial, &row, start, pc)) return fallback;

    /* What libunwind's unw_step ends on: an undefined return address or RBP. */
    if (row.where[HG_REG_RA] == HG_WHERE_UNDEF || row.where[HG_REG_RBP] == HG_WHERE_UNDEF)
        return hg_rule_make(HG_RULE_LAST, 0, false, 0);
    if (row.cfa_expr || (row.cfa_reg != HG_REG_RSP && row.cfa_reg != HG_REG_RBP)) return fallback;
    if (row.cfa_off <= -(1 << 28) || row.cfa_off >= (1 << 28)) return fallback;
    if (row.where[HG_REG_RA] != HG_WHERE_CFAREL || row.offset[HG_REG_RA] != -8) return fallback;
    if (row.where[HG_REG_RSP] != HG_WHERE_SAME) return fallback;
    bool rbp_saved = false;
    if (row.where[HG_REG_RBP] == HG_WHERE_CFAREL) {
        if (row.offset[HG_REG_RBP] <= -(1 << 14) || row.offset[HG_REG_RBP] >= (1 << 14)) return fallback;
        rbp_saved = true;
    } else if (row.where[HG_REG_RBP] != HG_WHERE_SAME) {
        return fallback;
    }
    return hg_rule_make(row.cfa_reg == HG_REG_RSP ? HG_RULE_CFA_RSP : HG_RULE_CFA_RBP, (int32_t)row.cfa_off, rbp_saved,
                        rbp_saved ? (int16_t)row.offset[HG_REG_RBP] : 0);
}

/* The rule for the frame whose (return) address is ip: the row at ip - 1, inside the call.
 * From .eh_frame, or, where that does not cover it, from the object's .debug_frame. */
uint64_t hg_rule_derive(uintptr_t ip) {
    uintptr_t pc = ip - 1;
    uint64_t fallback = hg_rule_make(HG_RULE_FALLBACK, 0, false, 0);
    const uint8_t *fde = hg_find_fde(pc);
    uint64_t rule = fde ? hg_rule_from_fde(fde, NULL, 0, pc) : HG_NOT_COVERED;
    if (rule != HG_NOT_COVERED) return rule;
    const uint8_t *section;
    size_t size;
    uintptr_t bias;
    fde = hg_debug_frame_fde(pc, &section, &size, &bias);
    rule = fde ? hg_rule_from_fde(fde, section, size, pc - bias) : HG_NOT_COVERED;
    return rule != HG_NOT_COVERED ? rule : fallback;
}
