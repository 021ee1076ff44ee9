import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Reads, while a traced program still runs, the symbol tables and debug information of the
/// files it has mapped (its executable first, then the C library, then the others), which its
/// report will most likely need: nearly every process keeps stdio buffers or locale data
/// allocated by libc, whose debug file is large and compressed, and a Swift program's frames
/// are named from libswiftCore's large symbol table.
///
/// It works in a thread of its own, at nice 10 so that the program keeps the CPUs it wants,
/// and only after `delay`, so that a short program is not made to share its CPUs at all. It
/// fills the report's own `Symbolizer`, one file at a time under that symbolizer's lock:
/// libdw is not thread-safe, so no two threads may ever use it at once (even through two
/// symbolizers). `finish()` stops it between two files; the report then waits at most for the
/// file being read.
public final class DebugInfoPreload: @unchecked Sendable {
    private let lock = Lock()
    private var stopped = false
    private let done = DispatchSemaphore(value: 0)
    /// Signalled by `finish()`: ends the initial delay at once for a program that exits early.
    private let stop = DispatchSemaphore(value: 0)

    /// `delay` is in seconds.
    public init(symbolizer: Symbolizer, executable: String, pid: Int32, delay: Double = 0.1) {
        let started = startDetachedThread { [self] in
            defer { done.signal() }
            setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(gettid()), 10)
            guard stop.wait(timeout: .now() + delay) == .timedOut, !isStopped else { return }
            for path in Self.files(of: pid, executable: executable) {
                guard !isStopped else { return }
                symbolizer.preload(paths: [path])
            }
        }
        // Without a thread there is nothing to wait for: the report reads its files itself.
        if !started { done.signal() }
    }

    /// Stops the preload (after the file it is reading) and waits until it no longer uses the
    /// symbolizer. Call before building the report's last part, and before exiting: a thread
    /// left inside libdw while the process runs its exit handlers can crash it.
    public func finish() {
        lock.lock()
        let first = !stopped
        stopped = true
        lock.unlock()
        if first { stop.signal() }
        done.wait()
        done.signal() // later calls return at once
    }

    private var isStopped: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stopped
    }

    /// The files mapped executable in process `pid`, from /proc/PID/maps: the executable, the
    /// C library, then the others in address order.
    static func files(of pid: Int32, executable: String) -> [String] {
        // Read to the end: /proc files report size 0, and String(contentsOfFile:) stops
        // after the first page of this one.
        guard let bytes = ReadOnlyFile(path: "/proc/\(pid)/maps")?.readToEnd() else { return [executable] }
        return files(inMaps: bytes, executable: ModuleImage.resolvedPath(executable))
    }

    /// The same from the text of a maps file. On bytes: splitting its lines into fields by
    /// Character (grapheme breaking) took three quarters of this thread's instructions, spent
    /// while the program it competes with for the CPUs still runs.
    static func files(inMaps maps: [UInt8], executable executableFile: String) -> [String] {
        var files: [String] = []
        for line in maps.split(separator: UInt8(ascii: "\n")) {
            // address perms offset dev inode path: the path is the rest of the line (it may
            // hold spaces); anonymous and special mappings ([stack], [vdso]) have none.
            let fields = line.split(separator: UInt8(ascii: " "), maxSplits: 5, omittingEmptySubsequences: true)
            guard fields.count == 6, fields[1].contains(UInt8(ascii: "x")) else { continue }
            let path = String(decoding: fields[5], as: UTF8.self).trimmingWhitespace()
            if path.hasPrefix("/"), !files.contains(path) { files.append(path) }
        }
        func rank(_ path: String) -> Int {
            if path == executableFile { return 0 }
            if path.hasSuffix("/libc.so.6") { return 1 }
            return 2
        }
        return files.enumerated().sorted { (rank($0.element), $0.offset) < (rank($1.element), $1.offset) }.map(\.element)
    }
}
