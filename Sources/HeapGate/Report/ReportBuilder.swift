/// Turns replayed heaps into reports: groups the blocks in use by call site and symbolizes
/// the frames that will be shown.
public final class ReportBuilder {
    private let options: ReportOptions
    private let symbolizer: Symbolizer

    public init(options: ReportOptions) {
        self.options = options
        self.symbolizer = Symbolizer(useDebuginfod: options.useDebuginfod)
    }

    public func report(for heap: ProcessHeap, exitStatus: Int? = nil) -> ProcessReport {
        ProcessReport(
            pid: heap.header.pid, parentPID: heap.header.parentPID, command: heap.command,
            exitStatus: exitStatus ?? heap.exitStatus, isComplete: heap.isComplete,
            bytesInUse: heap.bytesInUse, blocksInUse: UInt64(heap.blocksInUse.count),
            allocs: heap.allocs, frees: heap.frees, bytesAllocated: heap.bytesAllocated,
            ringFullWaits: heap.ringFullWaits, lostEvents: heap.lostEvents,
            records: records(for: heap))
    }

    /// Groups blocks by their first `numCallers` return addresses, as memcheck groups loss
    /// records by the stack it kept (which is --num-callers deep).
    private func records(for heap: ProcessHeap) -> [LossRecord] {
        var bytesByStack: [UInt64: (bytes: UInt64, blocks: UInt64)] = [:]
        for block in heap.blocksInUse.values {
            bytesByStack[block.stack, default: (0, 0)].bytes += block.size
            bytesByStack[block.stack, default: (0, 0)].blocks += 1
        }
        var groups: [[FrameAddress]: (bytes: UInt64, blocks: UInt64)] = [:]
        for (stack, total) in bytesByStack {
            let frames = Array((heap.stacks[stack] ?? []).prefix(options.numCallers))
            groups[frames, default: (0, 0)].bytes += total.bytes
            groups[frames, default: (0, 0)].blocks += total.blocks
        }
        let records = groups.map { frames, total in
            LossRecord(kind: .inUse, bytes: total.bytes, blocks: total.blocks, frames: symbolize(frames, heap: heap))
        }
        return records.sorted { a, b in
            if a.bytes != b.bytes { return a.bytes < b.bytes }
            if a.blocks != b.blocks { return a.blocks < b.blocks }
            return a.frames.map(\.address).lexicographicallyPrecedes(b.frames.map(\.address))
        }
    }

    private func symbolize(_ frames: [FrameAddress], heap: ProcessHeap) -> [ReportFrame] {
        var out: [ReportFrame] = []
        for frame in frames {
            let address = "0x" + String(frame.address, radix: 16)
            guard let id = frame.moduleID, let module = heap.modules[id] else {
                out.append(ReportFrame(address: address))
                continue
            }
            // A return address points after the call: look up the call instruction.
            let image = ModuleImage(path: module.path, base: module.base)
            let sources = symbolizer.symbolize(address: frame.address &- 1, in: image)
            for (index, source) in sources.enumerated() {
                out.append(ReportFrame(
                    address: address, function: source.function,
                    file: source.file.map(Self.baseName), line: source.line, module: module.path,
                    inlined: index < sources.count - 1 ? true : nil))
            }
        }
        return Array(Self.cutBelowMain(out).prefix(max(options.numCallers, 1)))
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

    static func baseName(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }
}
