/// Rebuilds the heap at exit by replaying a trace's records in order. Memory is bounded by
/// the blocks in use and the distinct stacks, never by the number of events.
public enum HeapReplay {
    /// Reads and replays the trace at `path`. Throws `TraceFormatError` for bad input; a trace
    /// that was cut off replays what it holds and has `isComplete == false`.
    public static func load(path: String) throws -> ProcessHeap {
        var reader = try TraceReader(path: path)
        var heap = ProcessHeap(path: path, header: reader.header)
        var state = ReplayState()
        // A complete trace restates the heap at exit: read the command (and the ALLOCATOR record
        // that may follow it), then jump there.
        if let first = try reader.next() {
            state.apply(first, to: &heap)
            var second = try reader.next()
            if case .allocator = second {
                state.apply(second!, to: &heap)
                second = nil
            }
            if reader.skipToSnapshot() { second = nil } // the snapshot restates what it held
            if let second { state.apply(second, to: &heap) }
        }
        while let record = try reader.next() {
            state.apply(record, to: &heap)
        }
        heap.isComplete = reader.isComplete
        if var blocks = heap.exitBlocks, !zip(blocks, blocks.dropFirst()).allSatisfy({ $0.address < $1.address }) {
            blocks.sort { $0.address < $1.address } // unclassified snapshots come in hash order
            heap.exitBlocks = blocks
        }
        // A snapshot cut short says less than the events before it: report those instead.
        if !heap.isComplete, let replayed = state.replayedBeforeSnapshot {
            heap = replayed // isComplete is false there too: the snapshot had only just begun
        }
        heap.forgetModulesAtSharedAddresses()
        return heap
    }
}

/// What replay needs beyond the result: the modules loaded right now, and the old blocks of
/// reallocs in flight (a refused realloc gives its block back).
private struct ReplayState {
    var loaded = LoadedModules()
    var pendingReallocs: [UInt64: HeapBlock] = [:]
    /// The heap as the event stream left it, kept when reading on into the exit snapshot.
    var replayedBeforeSnapshot: ProcessHeap?
    /// The exit snapshot's block table grows to this many blocks at most, doubling as blocks
    /// come (the SNAPSHOT record's count, bounded by the bytes the file has after it).
    var snapshotBlocksExpected: UInt64 = 0
    /// The table's first size: the count alone is not trusted with more. Reserved at once, the
    /// count of a sparse file (bytes it says it has, without the disk blocks) asked for 12.9 GB,
    /// and heapgate aborted under an address-space limit.
    static let firstSnapshotReservation: UInt64 = 1 << 16

    mutating func apply(_ record: TraceRecord, to heap: inout ProcessHeap) {
        switch record {
        case let .command(arguments, executable):
            heap.command = arguments
            heap.executable = executable
        case let .moduleLoad(module):
            heap.modules[module.id] = module
            loaded.load(module)
        case let .moduleUnload(id):
            loaded.unload(id: id)
        case let .stack(id, addresses):
            heap.stacks[id] = addresses.map { FrameAddress(address: $0, moduleID: loaded.module(containing: $0)) }
        case let .alloc(address, size, stack):
            heap.allocs = heap.allocs.addingSaturated(1)
            heap.bytesAllocated = heap.bytesAllocated.addingSaturated(size)
            heap.blocksInUse[address] = HeapBlock(size: size, stack: stack)
        case let .free(address):
            heap.frees = heap.frees.addingSaturated(1)
            if heap.blocksInUse.removeValue(forKey: address) == nil { heap.unmatchedFrees += 1 }
        case let .reallocFree(address):
            heap.frees = heap.frees.addingSaturated(1)
            if let block = heap.blocksInUse.removeValue(forKey: address) {
                pendingReallocs[address] = block
            } else {
                heap.unmatchedFrees += 1
            }
        case let .realloc(address, size, stack, oldAddress):
            let old = pendingReallocs.removeValue(forKey: oldAddress)
            if address != 0 {
                heap.allocs = heap.allocs.addingSaturated(1)
                heap.bytesAllocated = heap.bytesAllocated.addingSaturated(size)
                heap.blocksInUse[address] = HeapBlock(size: size, stack: stack)
            } else {
                if heap.frees > 0 { heap.frees -= 1 } // a crafted trace must not trap
                if let old { heap.blocksInUse[oldAddress] = old }
            }
        case let .elided(pairs, bytesAllocated):
            heap.allocs = heap.allocs.addingSaturated(pairs)
            heap.frees = heap.frees.addingSaturated(pairs)
            heap.bytesAllocated = heap.bytesAllocated.addingSaturated(bytesAllocated)
        case let .inherited(allocs, frees, bytesAllocated):
            heap.allocs = allocs
            heap.frees = frees
            heap.bytesAllocated = bytesAllocated
        case let .inheritedBlock(address, size, stack):
            heap.blocksInUse[address] = HeapBlock(size: size, stack: stack)
        case let .snapshot(allocs, frees, bytesAllocated, blocksToReserve):
            replayedBeforeSnapshot = heap
            heap.allocs = allocs
            heap.frees = frees
            heap.bytesAllocated = bytesAllocated
            heap.blocksInUse = [:]
            heap.exitBlocks = []
            heap.exitBlocks?.reserveCapacity(Int(min(blocksToReserve, Self.firstSnapshotReservation)))
            snapshotBlocksExpected = blocksToReserve
            pendingReallocs = [:]
        case let .snapshotBlock(address, size, stack, kind, leader, heuristic):
            // Doubled as far as the count, not past it, so that a table of millions of blocks is
            // neither copied block by block nor left with room for as many again.
            if let count = heap.exitBlocks?.count, count == heap.exitBlocks?.capacity {
                let grown = min(max(snapshotBlocksExpected, UInt64(count) + 1), UInt64(count) * 2 + 1)
                heap.exitBlocks?.reserveCapacity(Int(grown))
            }
            heap.exitBlocks?.append(ExitBlock(address: address, block: HeapBlock(size: size, stack: stack, kind: kind,
                                                                                leader: leader, heuristic: heuristic)))
        case let .scanDone(_, _, nanoseconds):
            heap.isClassified = true
            heap.scanNanoseconds = nanoseconds
        case let .scanSkipped(reason):
            heap.leakScanSkipped = reason
        case let .stats(events, waits, lost, withoutStack):
            heap.events = events
            heap.ringFullWaits = waits
            heap.lostEvents = lost
            heap.allocationsWithoutStack = withoutStack
        case let .allocator(allocator):
            heap.foreignAllocator = allocator
        case let .bypass(library):
            heap.bypassingLibraries.append(library)
        case let .end(exitStatus):
            heap.exitStatus = exitStatus
        }
    }
}
