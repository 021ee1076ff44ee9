/// A block in use: its requested size and the trace id of the stack that allocated it.
public struct HeapBlock: Equatable, Sendable {
    public var size: UInt64
    public var stack: UInt64
    /// Set by the exit-time scan.
    public var kind: LeakKind?
    /// For an indirectly lost block: the block it is counted under (follow to a definite one).
    public var leader: UInt64?
    /// For a still reachable block: the memcheck heuristic that alone reached it.
    public var heuristic: LeakHeuristic?

    public init(size: UInt64, stack: UInt64, kind: LeakKind? = nil, leader: UInt64? = nil, heuristic: LeakHeuristic? = nil) {
        self.size = size
        self.stack = stack
        self.kind = kind
        self.leader = leader
        self.heuristic = heuristic
    }
}

/// A block of the exit snapshot.
public struct ExitBlock: Equatable, Sendable {
    public var address: UInt64
    public var block: HeapBlock
}

/// One frame of a recorded stack: the return address and the module it fell in when recorded.
public struct FrameAddress: Equatable, Hashable, Sendable {
    public var address: UInt64
    public var moduleID: UInt64?
}

/// Everything one trace says about one process image, after replaying it to its end.
public struct ProcessHeap: Sendable {
    public var path: String
    public var header: TraceHeader
    public var command: [String] = []
    public var executable = ""
    /// Every module the process ever had, by id (unloaded ones included, for symbolization).
    public var modules: [UInt64: TraceModule] = [:]
    public var stacks: [UInt64: [FrameAddress]] = [:]
    /// The blocks in use, while replaying events. Empty once the exit snapshot was read.
    public var blocksInUse: [UInt64: HeapBlock] = [:]
    /// The blocks in use at exit, as the exit snapshot lists them (in address order), or nil
    /// when the trace has no (complete) snapshot. An array, not a dictionary: a heap of 10 M
    /// blocks is read and grouped several times faster.
    public var exitBlocks: [ExitBlock]?
    public var allocs: UInt64 = 0
    public var frees: UInt64 = 0
    public var bytesAllocated: UInt64 = 0
    /// Frees of addresses the trace never saw allocated (counted in `frees`, as memcheck does).
    public var unmatchedFrees: UInt64 = 0
    /// True when the trace ends with its END record.
    public var isComplete = false
    public var exitStatus: Int?
    public var events: UInt64 = 0
    public var ringFullWaits: UInt64 = 0
    public var lostEvents: UInt64 = 0
    /// Allocations recorded with no stack because the shim's limit of distinct stacks was reached.
    public var allocationsWithoutStack: UInt64 = 0
    /// An allocator defined ahead of the shim's entry points, if the process had one.
    public var foreignAllocator: ForeignAllocator?
    /// Libraries that called glibc's allocator past the shim (RTLD_DEEPBIND).
    public var bypassingLibraries: [BypassingLibrary] = []
    /// True when the exit-time scan classified every block in use (complete traces only).
    public var isClassified = false
    public var scanNanoseconds: UInt64 = 0
    /// Why the exit-time scan could not run, when the leak check was wanted (the blocks are
    /// then unclassified).
    public var leakScanSkipped: LeakScanSkip?
    /// Return addresses in the stacks of blocks in use that different libraries held at
    /// different times (`dlclose`, then another library mapped there): shown as `???`,
    /// since the trace cannot say which library's code they were in (`SharedAddresses`).
    public var addressesOfUnknownLibrary: UInt64 = 0

    public var bytesInUse: UInt64 {
        var total: UInt64 = 0
        forEachBlock { _, block in total = total.addingSaturated(block.size) }
        return total
    }

    public var blockCount: Int { exitBlocks?.count ?? blocksInUse.count }

    /// Calls `body` with every block in use.
    public func forEachBlock(_ body: (UInt64, HeapBlock) throws -> Void) rethrows {
        if let exitBlocks {
            for entry in exitBlocks { try body(entry.address, entry.block) }
        } else {
            for (address, block) in blocksInUse { try body(address, block) }
        }
    }

    /// The block that starts at `address`, if it is in use.
    public func block(at address: UInt64) -> HeapBlock? {
        guard let exitBlocks else { return blocksInUse[address] }
        var low = 0, high = exitBlocks.count
        while low < high {
            let middle = (low + high) / 2
            if exitBlocks[middle].address < address { low = middle + 1 } else { high = middle }
        }
        return low < exitBlocks.count && exitBlocks[low].address == address ? exitBlocks[low].block : nil
    }
}
