#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// The traces of a process tree: one file per process image, all in one directory.
public enum TraceSet {
    /// Trace files in `directory`, by name.
    public static func files(in directory: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasPrefix("heapgate.") && $0.hasSuffix(".trace") }.sorted()
            .map { directory + "/" + $0 }
    }

    /// Why `directory` cannot be listed (opendir(2)'s error, as "permission denied"), or nil
    /// when it can. `files(in:)` finds nothing in a directory it cannot list, which
    /// `heapgate summary` reported as one with no traces in it.
    public static func listingError(of directory: String) -> String? {
        guard let handle = opendir(directory) else {
            let reason = String(cString: strerror(errno))
            return reason.prefix(1).lowercased() + reason.dropFirst()
        }
        closedir(handle)
        return nil
    }

    /// `files` with each file once, where first named: a path to a file named before (the same
    /// path again, a link to it, a trace also found in a directory given) is left out, so that
    /// a process is reported, and counted for the gate, once. A path that cannot be looked up
    /// stays, for the error its reading gives.
    public static func distinct(_ files: [String]) -> [String] {
        var seen: Set<FileStatus.Identity> = []
        return files.filter { path in
            guard let identity = FileStatus.identity(path) else { return true }
            return seen.insert(identity).inserted
        }
    }

    /// Loads and orders the heaps of a process tree: the started process first, then the
    /// others in the order they started. An image that was replaced by exec (a later trace has
    /// the same pid) is left out, as memcheck reports nothing for it either.
    /// A trace for which `skippingUnreadable` is true that cannot be read (a process killed
    /// before its first write, say) is left out and described in `warnings` instead of failing
    /// the set.
    public static func load(files: [String], rootPID: Int? = nil, skippingUnreadable: (String) -> Bool,
                            warnings: inout [String]) throws -> [ProcessHeap] {
        var heaps: [ProcessHeap] = []
        for file in files {
            do {
                heaps.append(try HeapReplay.load(path: file))
            } catch TraceFormatError.empty(let path) where skippingUnreadable(file) {
                // The shim creates the file, then writes it: a process killed in between (a
                // fork child killed while it started its trace, as Python's multiprocessing
                // ends its pool's workers) left nothing to report, and was not a stray file.
                let process = pid(ofTraceNamed: path).map { "process \($0)" } ?? path
                warnings.append("\(process) ended before its trace began (an empty trace file): nothing to report for it")
            } catch let error as TraceFormatError where skippingUnreadable(file) {
                warnings.append(error.description)
            }
        }
        var latestStart: [Int: UInt64] = [:]
        for heap in heaps { latestStart[heap.header.pid] = max(latestStart[heap.header.pid] ?? 0, heap.header.startNanoseconds) }
        let finalImages: [ProcessHeap] = heaps.filter { latestStart[$0.header.pid] == $0.header.startNanoseconds }
        return finalImages.sorted { a, b in
            let aRoot = a.header.pid == rootPID, bRoot = b.header.pid == rootPID
            if aRoot != bRoot { return aRoot }
            if a.header.startNanoseconds != b.header.startNanoseconds { return a.header.startNanoseconds < b.header.startNanoseconds }
            return a.header.pid < b.header.pid
        }
    }
}

extension TraceSet {
    /// The pid in a trace's name, `heapgate.PID.trace` or `heapgate.PID.N.trace`.
    public static func pid(ofTraceNamed path: String) -> Int? {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        let parts = name.split(separator: ".")
        guard parts.count >= 3, parts.first == "heapgate", parts.last == "trace" else { return nil }
        return Int(parts[1])
    }

    /// Loads every file; any unreadable trace is an error.
    public static func load(files: [String], rootPID: Int? = nil) throws -> [ProcessHeap] {
        var warnings: [String] = []
        return try load(files: files, rootPID: rootPID, skippingUnreadable: { _ in false }, warnings: &warnings)
    }

    /// Loads every file; with `skippingUnreadable`, those that cannot be read are left out
    /// and described in `warnings`.
    public static func load(files: [String], rootPID: Int? = nil, skippingUnreadable: Bool,
                            warnings: inout [String]) throws -> [ProcessHeap] {
        try load(files: files, rootPID: rootPID, skippingUnreadable: { _ in skippingUnreadable }, warnings: &warnings)
    }
}
