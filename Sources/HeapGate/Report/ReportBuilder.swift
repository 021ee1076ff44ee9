/// Turns replayed heaps into reports: groups the blocks in use by leak kind and call site,
/// counts indirect losses under the block that lost them, symbolizes the frames that will be
/// shown and applies suppressions.
public final class ReportBuilder {
    private let options: ReportOptions
    private let symbolizer: Symbolizer

    /// `symbolizer`: one that may already hold some modules' debug information (see
    /// `Symbolizer.preload`); by default a new one.
    public init(options: ReportOptions, symbolizer: Symbolizer? = nil) {
        self.options = options
        self.symbolizer = symbolizer ?? Symbolizer(useDebuginfod: options.useDebuginfod)
    }

    /// Whether the report shows the exit-time scan's verdicts: the trace has them and the leak
    /// check is on. `heapgate summary --leak-check=no` of a classified trace reports as `run
    /// --leak-check=no` does (blocks in use, no LEAK SUMMARY, nothing for the gate), as valgrind.
    private func isClassified(_ heap: ProcessHeap) -> Bool {
        heap.isClassified && options.leakCheck != .no
    }

    public func report(for heap: ProcessHeap, exitStatus: Int? = nil) -> ProcessReport {
        var records = self.records(for: heap)
        var leaks: LeakTotals?
        if isClassified(heap) {
            var totals = LeakTotals()
            let suppressions = SuppressionMatching(options.suppressions.set)
            for index in records.indices {
                guard let kind = records[index].kind.leakKind else { continue }
                if let name = suppressions.firstMatch(frames: records[index].suppressionFrames, kind: kind)?.name {
                    records[index].suppressedBy = name
                    totals.suppressed.add(records[index].bytes, blocks: records[index].blocks)
                } else {
                    totals[kind].add(records[index].bytes, blocks: records[index].blocks)
                    totals.reachableViaHeuristic.add(records[index].viaHeuristic)
                }
            }
            leaks = totals
        }
        return ProcessReport(
            pid: heap.header.pid, parentPID: heap.header.parentPID, command: heap.command,
            exitStatus: exitStatus ?? heap.exitStatus, isComplete: heap.isComplete,
            // The shim sets the flag only on a trace it cut; on a complete one it is damage.
            stoppedForSandbox: heap.header.stoppedForSandbox && !heap.isComplete,
            bytesInUse: heap.bytesInUse, blocksInUse: UInt64(heap.blockCount),
            allocs: heap.allocs, frees: heap.frees, bytesAllocated: heap.bytesAllocated,
            events: heap.events, ringFullWaits: heap.ringFullWaits, lostEvents: heap.lostEvents,
            addressesOfUnknownLibrary: heap.addressesOfUnknownLibrary,
            allocationsWithoutStack: heap.allocationsWithoutStack,
            foreignAllocator: heap.foreignAllocator, bypassingLibraries: heap.bypassingLibraries,
            leakScanSeconds: Double(heap.scanNanoseconds) / 1e9,
            leakScanSkipped: options.leakCheck == .no ? nil : heap.leakScanSkipped, records: records, leaks: leaks)
    }

    private struct GroupKey: Hashable {
        var kind: LossRecord.Kind
        var frames: [FrameAddress]
    }

    private struct StackKey: Hashable {
        var kind: LossRecord.Kind
        var stack: UInt64
    }

    private struct Group {
        var direct = Amount()
        var indirect = Amount()
        var viaHeuristic: [LeakHeuristic: Amount] = [:]
        /// The smallest trace id of the stacks grouped here: the trace numbers stacks in the
        /// order the program first allocated from them (docs/trace-format.md, STACK).
        var firstStack = UInt64.max

        mutating func merge(_ other: Group) {
            direct.add(other.direct.bytes, blocks: other.direct.blocks)
            indirect.add(other.indirect.bytes, blocks: other.indirect.blocks)
            viaHeuristic.add(other.viaHeuristic)
            firstStack = min(firstStack, other.firstStack)
        }
    }

    /// Groups blocks by kind and by their first `numCallers` return addresses, as memcheck
    /// groups loss records by the stack it kept (which is --num-callers deep).
    private func records(for heap: ProcessHeap) -> [LossRecord] {
        // First by kind and stack id (cheap keys, one pass over the blocks), then the stacks'
        // first --num-callers frames merge groups (one pass over the distinct stacks).
        var byStack: [StackKey: Group] = [:]
        var lossRoots = LossRoots(heap: heap)
        let classified = isClassified(heap)
        heap.forEachBlock { address, block in
            let kind: LossRecord.Kind = classified ? LossRecord.Kind(block.kind ?? .definite) : .inUse
            let key = StackKey(kind: kind, stack: block.stack)
            byStack[key, default: Group()].direct.add(block.size)
            if let heuristic = block.heuristic { byStack[key, default: Group()].viaHeuristic[heuristic, default: Amount()].add(block.size) }
            if kind == .indirect, let root = lossRoots.root(of: address), let rootBlock = heap.block(at: root) {
                byStack[StackKey(kind: .definite, stack: rootBlock.stack), default: Group()].indirect.add(block.size)
            }
        }
        var groups: [GroupKey: Group] = [:]
        for (key, var group) in byStack {
            group.firstStack = key.stack
            let stack = heap.stacks[key.stack] ?? []
            let frames = Array(stack.prefix(groupingDepth(stack, heap: heap)))
            groups[GroupKey(kind: key.kind, frames: frames), default: Group()].merge(group)
        }
        // --num-callers counts return addresses, as memcheck's does, not the lines they print
        // as: each address shows every frame inlined at it. Counted in lines, an optimised Rust
        // record's 12 lines could all be std's inlined allocation path, none of the program's.
        var symbolized = SymbolizedAddresses()
        var keys: [SortKey] = []
        keys.reserveCapacity(groups.count)
        let records = groups.map { key, group in
            let symbolized = symbolize(key.frames, heap: heap, memo: &symbolized)
            let shown = Self.cutBelowMain(symbolized)
            // The cut renames at most its last frame, a start-up function, "(below main)".
            let renamed = shown.last.map { $0.function != symbolized[shown.count - 1].function } ?? false
            let record = LossRecord(kind: key.kind, bytes: group.direct.bytes, blocks: group.direct.blocks,
                              indirectBytes: group.indirect.bytes, indirectBlocks: group.indirect.blocks,
                              frames: shown, framesBelowShown: Array(symbolized[shown.count...]),
                              lastShownFunction: renamed ? symbolized[shown.count - 1].function : nil,
                              viaHeuristic: group.viaHeuristic)
            keys.append(SortKey(record, firstStack: group.firstStack))
            return record
        }
        let order = records.indices.sorted { keys[$0] < keys[$1] }
        return order.map { records[$0] }
    }

    /// memcheck's order of loss records (cmp_LossRecords): total bytes, then kind, then blocks,
    /// then the address of the record's ExeContext, which memcheck allocates when a stack is
    /// first seen: records of equal size come in the order the program first allocated from
    /// their stacks, which is the order of the trace's stack ids (the smallest of a record's).
    /// So records get the same numbers ("loss record N of M") as memcheck's; ordered by return
    /// addresses instead, 7 of a C++ program's 16 records were numbered differently. Sorted by
    /// these keys and the records' indices: records moved or compared themselves were copied,
    /// every string in their frames retained and released (a tenth of a report of 55,000
    /// records, most of which tie on size).
    private struct SortKey: Comparable {
        var totalBytes: UInt64
        var kind: Int
        var blocks: UInt64
        /// Unique to a record of its kind: a stack's blocks of one kind form one record.
        var firstStack: UInt64

        init(_ record: LossRecord, firstStack: UInt64) {
            totalBytes = record.totalBytes
            kind = ReportBuilder.memcheckRank(record.kind)
            blocks = record.blocks
            self.firstStack = firstStack
        }

        static func < (a: SortKey, b: SortKey) -> Bool {
            if a.totalBytes != b.totalBytes { return a.totalBytes < b.totalBytes }
            if a.kind != b.kind { return a.kind < b.kind }
            if a.blocks != b.blocks { return a.blocks < b.blocks }
            return a.firstStack < b.firstStack
        }
    }

    /// memcheck's Reachedness values, which order records of equal size: still reachable
    /// first, definitely lost last.
    fileprivate static func memcheckRank(_ kind: LossRecord.Kind) -> Int {
        switch kind {
        case .inUse, .reachable: return 0
        case .possible: return 1
        case .indirect: return 2
        case .definite: return 3
        }
    }

    /// How many return addresses group a stack: `--num-callers`, and one more where frame 1 is
    /// an `operator new`. memcheck replaces `operator new`, so its stacks start there, where
    /// heapgate's start at the `malloc` that `operator new` calls: with the extra address,
    /// records group over the same frames as memcheck's, and a suppression memcheck wrote with
    /// --num-callers lines finds as many frames to match (a file memcheck wrote for `gdb`, whose
    /// `operator new` is its own, left 1,176 of its 4,799 blocks unsuppressed for want of the last).
    private func groupingDepth(_ stack: [FrameAddress], heap: ProcessHeap) -> Int {
        guard stack.count > options.numCallers, stack.count > 1, let id = stack[1].moduleID,
              let module = heap.modules[id] else { return options.numCallers }
        let caller = symbolizer.symbolName(address: stack[1].address &- 1, in: ModuleImage(module))
        let isOperatorNew = (caller.linkageName ?? caller.function).flatMap(SuppressionMatcher.operatorNewCounterpart) != nil
        return isOperatorNew ? options.numCallers + 1 : options.numCallers
    }

    /// The frames of each return address a report has symbolized, by whether they are under
    /// `main`: records share most of their addresses (their callers), and a report of 55,000
    /// records spent a seventh of its time looking the same addresses up again.
    private struct SymbolizedAddresses {
        struct Key: Hashable {
            var frame: FrameAddress
            var belowMain: Bool
        }
        var frames: [Key: [ReportFrame]] = [:]
    }

    /// Every frame of the given return addresses, inlined frames expanded. Frames under `main`
    /// are never shown (see `cutBelowMain`) and only their names can matter (to a suppression),
    /// so they are named from the symbol table alone.
    private func symbolize(_ frames: [FrameAddress], heap: ProcessHeap, memo: inout SymbolizedAddresses) -> [ReportFrame] {
        var out: [ReportFrame] = []
        var belowMain = false
        for frame in frames {
            let key = SymbolizedAddresses.Key(frame: frame, belowMain: belowMain)
            if let known = memo.frames[key] {
                out += known
                belowMain = belowMain || known.contains { $0.function == "main" }
                continue
            }
            let start = out.count
            defer { memo.frames[key] = Array(out[start...]) }
            let address = "0x" + String(frame.address, radix: 16)
            guard let id = frame.moduleID, let module = heap.modules[id] else {
                out.append(ReportFrame(address: address))
                continue
            }
            // A return address points after the call: look up the call instruction.
            let image = ModuleImage(module)
            let sources = belowMain
                ? [symbolizer.symbolName(address: frame.address &- 1, in: image)]
                : symbolizer.symbolize(address: frame.address &- 1, in: image)
            belowMain = belowMain || sources.contains { $0.function == "main" }
            // The module as memcheck shows it: the kernel's name for the mapped file
            // (/proc/PID/maps), links resolved. The loader's name is often a link: the
            // library's soname (`libz.so.1` for `libz.so.1.2.13`), under `/lib` where Debian
            // and Ubuntu merged it into `/usr/lib`. Resolved when the report is made, so a
            // trace read where the file is gone keeps the loader's name.
            let shownPath = symbolizer.resolvedPath(module.path)
            for (index, source) in sources.enumerated() {
                out.append(ReportFrame(
                    address: address, function: source.function,
                    file: source.shownFile, directory: source.directory, path: source.file,
                    line: source.line, module: shownPath,
                    inlined: index < sources.count - 1 ? true : nil, linkageName: source.linkageName,
                    loadedAs: shownPath == module.path ? nil : module.path, inlinedName: source.inlinedName))
            }
        }
        return out
    }

    /// glibc's start-up functions that call main; valgrind calls them "(below main)".
    static let belowMainFunctions: Set<String> = [
        "__libc_start_main", "__libc_start_main_impl", "__libc_start_call_main", "generic_start_main", "_start",
    ]

    /// As memcheck shows stacks by default (--show-below-main=no): nothing under `main`; a
    /// stack without `main` ends at its first start-up function, shown as "(below main)".
    static func cutBelowMain(_ frames: [ReportFrame]) -> [ReportFrame] {
        if let main = frames.firstIndex(where: { $0.function == "main" }) { return Array(frames[...main]) }
        if let start = frames.firstIndex(where: { belowMainFunctions.contains($0.function ?? "") }) {
            var kept = Array(frames[...start])
            kept[start].function = "(below main)"
            return kept
        }
        return frames
    }
}

/// Follows indirect blocks to the definitely lost block they are counted under.
private struct LossRoots {
    let heap: ProcessHeap
    var memo: [UInt64: UInt64] = [:]

    init(heap: ProcessHeap) { self.heap = heap }

    /// What `memo` holds for the members of a cyclic chain (a damaged trace): no root. No block
    /// is at the top address, so this is never a block's.
    private static let noRoot = UInt64.max

    mutating func root(of address: UInt64) -> UInt64? {
        var chain: Set<UInt64> = []
        var current = address
        while let block = heap.block(at: current), block.kind == .indirect, let leader = block.leader {
            if let known = memo[current] { current = known; break }
            // Remembered as a cycle, so that the chain's other members do not walk it again
            // (a cycle of 30,000 leaders took 44 s when each member walked it to a step limit).
            guard chain.insert(current).inserted else { current = Self.noRoot; break }
            current = leader
        }
        for member in chain { memo[member] = current }
        guard current != Self.noRoot else { return nil }
        return heap.block(at: current)?.kind == .definite ? current : nil
    }
}
