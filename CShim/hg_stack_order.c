/*
 * The order in which a restatement of blocks defines its stacks: the order they were first
 * seen.
 *
 * memcheck numbers loss records that tie on bytes, kind and blocks by the address of their
 * allocation stack's ExeContext (mc_leakcheck.c, cmp_LossRecords), and ExeContexts are
 * allocated one after another as stacks are first seen: records of equal size come in the
 * order their stacks first allocated (valgrind 3.19 on tied_records.c, whose stacks' code
 * addresses run in another order). A report can follow that order only if the trace says it.
 * The event stream does: its stack ids count 1, 2, 3, … in the order the drain first writes
 * them, the order the program first allocated from them. The exit snapshot numbers its stacks
 * afresh (the reader jumps there, past the stream's STACK records), and so does a fork child's
 * trace for the blocks it inherits; given as their blocks came (address order, or the live
 * set's hash order), those ids said nothing, and records of equal size were numbered unlike
 * memcheck's (a C++ probe: 7 of 16 on other stacks).
 *
 * So before it writes its blocks, a restatement defines the stacks they name in order:
 *  - the exit snapshot, in the order of the ids the event stream gave them: a reader then gets
 *    the same order from the snapshot as from replaying the stream of a trace cut short, by
 *    construction (every block in use had its ALLOC or INHERITED_BLOCK written, so its stack
 *    has an id there);
 *  - a fork child's inherited blocks, in the order of their stacks' references, which grow as
 *    stacks are first captured (hg_stacks.c): the parent's first-seen order, which memcheck's
 *    child inherits too. The parent's ids would not do: the events the parent had not drained
 *    at the fork reach the child unwritten (hg_ring_reset_in_child), their stacks without one.
 * A reader breaks ties by the smallest id among a record's stacks. A stack noted without a
 * rank (none in practice) is defined when its block comes, after the others.
 *
 * The cost, per restatement: a table of 4 bytes per stack id of the stream, or a bitmap of one
 * bit per reference (8 bytes of the stacks' arena), pages touched only where stacks are named;
 * per block, a look at its stack, once per run of blocks from one stack, in a pass over the
 * blocks that the exit scan makes anyway (hg_collect), or in one of its own where none is made
 * (a fork child's inherited blocks; an exit whose scan could not run). With --leak-check=no
 * the exit snapshot is not ordered (hg_drain_finish): no record is shown, and that pass over
 * 10 M blocks cost 60 ms. Without memory for the table, stacks are defined as their blocks
 * come, as before. Used only by the thread that owns the drain.
 */
#include <sys/mman.h>

#include "hg_internal.h"

typedef enum { HG_ORDER_NONE = 0, HG_ORDER_BY_STREAM_ID, HG_ORDER_BY_REFERENCE } hg_order_t;

static hg_order_t hg_order;
/* By stream id: the reference of the stack that had that id, if a block names it (else 0). */
static hg_stack_ref_t *hg_ref_by_stream_id;
static uint32_t hg_stream_generation, hg_stream_count;
/* By reference: one bit per reference, set where a block names the stack. */
static uint64_t *hg_named_references;
static hg_stack_ref_t hg_reference_limit;
static void *hg_table;
static size_t hg_table_bytes;
static hg_stack_ref_t hg_last_noted;

static bool hg_map_table(size_t bytes) {
    void *map = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) return false;
    hg_table = map;
    hg_table_bytes = bytes;
    return true;
}

void hg_stack_order_begin_by_stream_id(uint32_t stream_generation, uint32_t stream_count) {
    hg_stack_order_end();
    if (stream_count == 0 || !hg_map_table(((size_t)stream_count + 1) * sizeof *hg_ref_by_stream_id)) return;
    hg_order = HG_ORDER_BY_STREAM_ID;
    hg_ref_by_stream_id = hg_table;
    hg_stream_generation = stream_generation;
    hg_stream_count = stream_count;
}

/* In a fork child's first call into the shim that starts its trace, not in the fork handler:
 * the mmap may set errno, which a program reads after fork (the caller saves it here). */
void hg_stack_order_begin_by_reference(void) {
    hg_stack_order_end();
    hg_stack_ref_t limit = hg_stacks_reference_limit();
    if (limit == 0 || !hg_map_table(((size_t)limit + 63) / 64 * sizeof *hg_named_references)) return;
    hg_order = HG_ORDER_BY_REFERENCE;
    hg_named_references = hg_table;
    hg_reference_limit = limit;
}

HG_INLINED_ACROSS_FILES void hg_stack_order_note(hg_stack_ref_t ref) {
    if (ref == hg_last_noted) return; /* blocks of one stack often come in runs */
    hg_last_noted = ref;
    if (ref == 0) return;
    if (hg_order == HG_ORDER_BY_STREAM_ID) {
        const hg_stack_t *stack = hg_stacks_get(ref);
        if (stack->trace_generation == hg_stream_generation && stack->trace_id <= hg_stream_count)
            hg_ref_by_stream_id[stack->trace_id] = ref;
    } else if (hg_order == HG_ORDER_BY_REFERENCE && ref < hg_reference_limit) {
        hg_named_references[ref / 64] |= 1ull << (ref % 64);
    }
}

static void hg_note_block(const hg_block_t *block) { hg_stack_order_note(block->stack); }

void hg_stack_order_note_liveset(void) {
    if (hg_order != HG_ORDER_NONE) hg_liveset_for_each(hg_note_block);
}

void hg_stack_order_write(void) {
    if (hg_order == HG_ORDER_BY_STREAM_ID) {
        for (uint32_t id = 1; id <= hg_stream_count; id++)
            if (hg_ref_by_stream_id[id] != 0) hg_drain_write_stack(hg_ref_by_stream_id[id]);
    } else if (hg_order == HG_ORDER_BY_REFERENCE) {
        for (size_t word = 0; word < ((size_t)hg_reference_limit + 63) / 64; word++)
            for (uint64_t bits = hg_named_references[word]; bits != 0; bits &= bits - 1)
                hg_drain_write_stack((hg_stack_ref_t)(word * 64 + (size_t)__builtin_ctzll(bits)));
    }
    hg_stack_order_end();
}

void hg_stack_order_end(void) {
    if (hg_table) munmap(hg_table, hg_table_bytes);
    hg_table = NULL;
    hg_table_bytes = 0;
    hg_ref_by_stream_id = NULL;
    hg_named_references = NULL;
    hg_order = HG_ORDER_NONE;
    hg_last_noted = 0;
}
