/*
 * The heapgate trace format, version 6 (2 added the SNAPSHOT_BLOCK kinds 5-8, 3 the ALLOCATOR and BYPASS records, 4 SCAN_SKIPPED, 5 STATS's count of allocations without a stack, 6 ELIDED). docs/trace-format.md explains it in prose;
 * this header is the one definition the shim writes against.
 *
 * A trace is a fixed file header followed by a stream of records. Every record is
 * one tag byte followed by unsigned LEB128 varints ("uv") or zigzag-encoded signed
 * varints ("sv"); byte strings are a uv length followed by the bytes.
 * Addresses in ALLOC/FREE/REALLOC records are deltas against the address of the
 * previous such record (starting at 0), so nearby heap addresses cost 2-3 bytes.
 */
#ifndef HG_TRACE_FORMAT_H
#define HG_TRACE_FORMAT_H

#include <assert.h>
#include <stdint.h>

#define HG_TRACE_MAGIC "HEAPGATE"
#define HG_TRACE_VERSION 6u

/** Little-endian, written once at offset 0. */
typedef struct {
    char magic[8];          /* HG_TRACE_MAGIC, no terminator */
    uint32_t version;       /* HG_TRACE_VERSION */
    uint32_t header_size;   /* sizeof(hg_file_header_t); readers skip what they do not know */
    uint32_t pid;
    uint32_t ppid;
    uint64_t start_ns;      /* CLOCK_REALTIME when this process image started being traced */
    uint32_t flags;         /* HG_TRACE_FLAG_* */
    uint32_t max_depth;     /* frames captured per allocation */
    uint64_t reserved[2];
} hg_file_header_t;

_Static_assert(sizeof(hg_file_header_t) == 56, "trace header layout is part of the format");

enum {
    /* The process is a fork child: an INHERITED record and its blocks follow the modules. */
    HG_TRACE_FLAG_FORKED = 1u << 0,
    /* Tracing stopped when the process installed a seccomp filter: the trace is cut there.
     * Set in place (pwrite) as the last thing written to the file. */
    HG_TRACE_FLAG_SANDBOXED = 1u << 1,
};

typedef enum {
    /* uv argc, then argc byte strings (argv as read from /proc/self/cmdline); byte string exe path. */
    HG_REC_COMMAND = 0x01,
    /* uv id, uv load bias, byte string path, byte string build-id,
     * uv segment count, then per PT_LOAD segment: uv vaddr, uv memsz. */
    HG_REC_MODULE_LOAD = 0x02,
    /* uv id: the module is gone; later stacks cannot point into it. */
    HG_REC_MODULE_UNLOAD = 0x03,
    /* uv id, uv depth, uv first ip, then depth-1 sv deltas to the previous ip.
     * Innermost frame first; frame 0 is inside the interposed entry point. */
    HG_REC_STACK = 0x04,
    /* sv address delta, uv size, uv stack id: one successful allocation. */
    HG_REC_ALLOC = 0x10,
    /* sv address delta: free of a non-null pointer (known or not). */
    HG_REC_FREE = 0x11,
    /* sv address delta: the old block of a realloc, released before glibc sees it. Counts as
     * one free (memcheck counts a realloc as one free and one alloc); readers keep the block
     * aside until the matching REALLOC. */
    HG_REC_REALLOC_FREE = 0x12,
    /* sv address delta (to 0 when glibc refused), uv size, uv stack id, sv old-minus-new delta:
     * the new block of a realloc (counts one alloc), or, for address 0, the refusal: the old
     * block set aside by REALLOC_FREE is in use again and that free is not counted. */
    HG_REC_REALLOC = 0x13,
    /* uv pairs, uv bytes: allocations freed before they reached the trace (held back while
     * several threads recorded, CShim/hg_holdback.c), each one alloc and one free, and the
     * bytes they allocated; counted since the last ELIDED. Version 6. */
    HG_REC_ELIDED = 0x14,
    /* uv allocs, uv frees, uv bytes allocated: counters this fork child inherited. */
    HG_REC_INHERITED = 0x20,
    /* sv address delta, uv size, uv stack id: a block in use when the process forked. */
    HG_REC_INHERITED_BLOCK = 0x21,
    /* uv blocks classified, uv root bytes scanned, uv scan nanoseconds: the scan finished. */
    HG_REC_SCAN_DONE = 0x41,
    /* uv reason (HG_SCAN_SKIPPED_*): the leak check was wanted and the scan could not run; the
     * blocks are written unclassified. Version 4. */
    HG_REC_SCAN_SKIPPED = 0x42,
    /* uv allocs, uv frees, uv bytes allocated, uv blocks in use: the exit snapshot starts. It
     * restates the heap at exit so a reader can skip the event stream: the address register is
     * reset to 0, MODULE_LOAD records for every module the process ever loaded follow, then one
     * SNAPSHOT_BLOCK per block in use (with the STACK records they need, under fresh ids), in
     * address order when the exit-time scan classified them, then SCAN_DONE if it did. The
     * file's last 16 bytes point here (HG_TRACE_FOOTER_MAGIC). */
    HG_REC_SNAPSHOT = 0x50,
    /* sv address delta, uv size, uv stack id, uv kind (0: not classified, else 1 + HG_KIND_*,
     * or 1 + HG_KIND_REACHABLE + HG_HEURISTIC_* for a block reachable only through one of
     * memcheck's heuristics), and for an indirectly lost block: sv leader-minus-address, the
     * block whose loss record it is counted under (itself possibly indirect: follow the chain
     * to a definite block). */
    HG_REC_SNAPSHOT_BLOCK = 0x51,
    /* uv events, uv ring-full waits, uv events lost (only ever non-zero before the drain starts),
     * uv allocations recorded without their stack (stack id 0) because the limit of distinct
     * stacks was reached (since version 5). */
    HG_REC_STATS = 0x30,
    /* uv outcome (1: replaced by glibc's, 2: left in place), byte string object path (empty:
     * the executable), byte string reason (empty when replaced): an allocator was defined ahead
     * of the shim's entry points. Written right after COMMAND, only then. */
    HG_REC_ALLOCATOR = 0x31,
    /* uv state (1: still bound to glibc's allocator at exit, 2: rebound to the shim's), byte
     * string path: a library loaded later that called glibc's allocator past the shim (RTLD_DEEPBIND).
     * Written before STATS, one per such library. */
    HG_REC_BYPASS = 0x32,
    /* uv exit status (or UINT32_MAX when unknown): the trace is complete. Always last. */
    HG_REC_END = 0x7f,
} hg_record_tag_t;

/* The last 16 bytes of a complete trace, after END: the little-endian u64 file offset of the
 * SNAPSHOT record, then these 8 bytes. A reader that finds them can read the header and the
 * COMMAND record, then seek to the snapshot and read only the heap at exit. */
#define HG_TRACE_FOOTER_MAGIC "HGSNAPSH"

/* The kinds of HG_REC_SNAPSHOT_BLOCK, memcheck's. */
typedef enum {
    HG_KIND_DEFINITE = 0,
    HG_KIND_INDIRECT = 1,
    HG_KIND_POSSIBLE = 2,
    HG_KIND_REACHABLE = 3,
} hg_block_kind_t;

/* memcheck's heuristics, for a still reachable block that only such an interior pointer
 * reached (its LEAK SUMMARY's "of which reachable via heuristic"); 0: none. */
typedef enum {
    HG_HEURISTIC_NONE = 0,
    HG_HEURISTIC_STDSTRING = 1,
    HG_HEURISTIC_LENGTH64 = 2,
    HG_HEURISTIC_NEWARRAY = 3,
    HG_HEURISTIC_MULTIPLE_INHERITANCE = 4,
} hg_heuristic_t;

/* Why the exit-time scan could not run (SCAN_SKIPPED). */
#define HG_SCAN_SKIPPED_NO_MEMORY 1u /* no memory for its tables */
#define HG_SCAN_SKIPPED_NO_MAPPINGS 2u /* /proc/self/maps could not be read: no descriptor left */

#endif
