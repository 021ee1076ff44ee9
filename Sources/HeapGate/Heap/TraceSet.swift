import Foundation

/// The traces of a process tree: one file per process image, all in one directory.
public enum TraceSet {
    /// Trace files in `directory`, by name.
    public static func files(in directory: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasPrefix("heapgate.") && $0.hasSuffix(".trace") }.sorted()
            .map { directory + "/" + $0 }
    }

    /// Loads and orders the heaps of a process tree: the started process first, then the
    /// others in the order they started. An image that was replaced by exec (a later trace has
    /// the same pid) is left out, as memcheck reports nothing for it either.
    public static func load(files: [String], rootPID: Int? = nil) throws -> [ProcessHeap] {
        let heaps = try files.map(HeapReplay.load(path:))
        var latestStart: [Int: UInt64] = [:]
        for heap in heaps { latestStart[heap.header.pid] = max(latestStart[heap.header.pid] ?? 0, heap.header.startNanoseconds) }
        let finalImages = heaps.filter { latestStart[$0.header.pid] == $0.header.startNanoseconds }
        return finalImages.sorted { a, b in
            let aRoot = a.header.pid == rootPID, bRoot = b.header.pid == rootPID
            if aRoot != bRoot { return aRoot }
            if a.header.startNanoseconds != b.header.startNanoseconds { return a.header.startNanoseconds < b.header.startNanoseconds }
            return a.header.pid < b.header.pid
        }
    }
}
