/// The fixed header at the start of every trace.
public struct TraceHeader: Equatable, Sendable {
    public var version: UInt32
    public var pid: Int
    public var parentPID: Int
    /// CLOCK_REALTIME nanoseconds when this process image started being traced.
    public var startNanoseconds: UInt64
    /// True for a fork child: its trace begins with the counters and blocks it inherited.
    public var isForkChild: Bool
    public var maxDepth: Int
    /// True when tracing stopped because the process installed a seccomp filter: the trace
    /// is cut there (docs/trace-format.md, header flags).
    public var stoppedForSandbox = false
}

/// A loaded object as the shim saw it.
public struct TraceModule: Equatable, Sendable {
    public var id: UInt64
    public var path: String
    /// Load bias: runtime address = base + ELF virtual address.
    public var base: UInt64
    public var buildID: [UInt8]
    /// PT_LOAD segments as (ELF vaddr, memsz).
    public var segments: [(vaddr: UInt64, size: UInt64)]

    public static func == (a: TraceModule, b: TraceModule) -> Bool {
        a.id == b.id && a.path == b.path && a.base == b.base && a.buildID == b.buildID
            && a.segments.elementsEqual(b.segments, by: { $0 == $1 })
    }

    /// Whether a runtime address falls in one of the module's segments.
    public func contains(_ address: UInt64) -> Bool {
        segments.contains { address &- base >= $0.vaddr && address &- base < $0.vaddr &+ $0.size }
    }
}

/// One record of the trace, decoded.
enum TraceRecord {
    case command(arguments: [String], executable: String)
    case moduleLoad(TraceModule)
    case moduleUnload(id: UInt64)
    case stack(id: UInt64, addresses: [UInt64])
    case alloc(address: UInt64, size: UInt64, stack: UInt64)
    case free(address: UInt64)
    case reallocFree(address: UInt64)
    /// `address` 0: glibc refused and the old block is in use again.
    case realloc(address: UInt64, size: UInt64, stack: UInt64, oldAddress: UInt64)
    /// Allocations freed before they reached the trace: each one alloc and one free.
    case elided(pairs: UInt64, bytesAllocated: UInt64)
    case inherited(allocs: UInt64, frees: UInt64, bytesAllocated: UInt64)
    case inheritedBlock(address: UInt64, size: UInt64, stack: UInt64)
    /// The heap at exit restated: counters, then modules, stacks and blocks follow.
    /// `blocksToReserve`: the blocks announced, at most as many as the rest of the file can hold.
    case snapshot(allocs: UInt64, frees: UInt64, bytesAllocated: UInt64, blocksToReserve: UInt64)
    /// A block in use at exit, with the exit-time scan's verdict (nil when not classified);
    /// `leader` is set for indirect blocks.
    case snapshotBlock(address: UInt64, size: UInt64, stack: UInt64, kind: LeakKind?, leader: UInt64?, heuristic: LeakHeuristic?)
    case scanDone(blocks: UInt64, rootBytes: UInt64, nanoseconds: UInt64)
    /// The leak check was wanted and the exit-time scan could not run.
    case scanSkipped(LeakScanSkip)
    /// `allocationsWithoutStack`: recorded with stack id 0 because the shim's limit of distinct
    /// stacks was reached (0 in traces of version 4 and before, which did not count them).
    case stats(events: UInt64, ringFullWaits: UInt64, lostEvents: UInt64, allocationsWithoutStack: UInt64)
    /// An allocator defined ahead of the shim's: replaced by glibc's, or left in place.
    case allocator(ForeignAllocator)
    /// A library that called glibc's allocator past the shim.
    case bypass(BypassingLibrary)
    case end(exitStatus: Int?)
}
