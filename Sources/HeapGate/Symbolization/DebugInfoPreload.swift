import Foundation

/// Reads, while a traced program still runs, the debug information and symbol tables of the
/// files it has mapped (its executable first, then the C library, then the others), which its
/// report will most likely need: nearly every process keeps stdio buffers or locale data
/// allocated by libc, whose debug file is large and compressed, and a Swift program's frames
/// are named from libswiftCore's large symbol table.
///
/// The reading happens in a thread of its own, with its own `Symbolizer`, at the idle
/// scheduling class (SCHED_IDLE): it only uses a CPU that neither the program nor anything
/// else wants, so it never slows the program down. It starts only after `delay`, so that a
/// short program is not made to share its CPUs at all. The report takes the symbolizer if the
/// reading is complete by then, and otherwise makes its own without waiting: a preload that
/// did not finish costs nothing but the idle time it used.
public final class DebugInfoPreload: @unchecked Sendable {
    private let lock = NSLock()
    private var taken = false
    private var ready: Symbolizer?

    public init(executable: String, pid: Int32, useDebuginfod: Bool, delay: TimeInterval = 0.1) {
        Thread.detachNewThread { [self] in
            Self.runOnlyWhenIdle()
            Thread.sleep(forTimeInterval: delay)
            guard !isTaken else { return }
            let symbolizer = Symbolizer(useDebuginfod: useDebuginfod)
            symbolizer.preload(paths: Self.files(of: pid, executable: executable))
            lock.lock()
            if !taken { ready = symbolizer }
            lock.unlock()
        }
    }

    /// The preloaded symbolizer if it is complete, else nil; never waits. Later calls get nil.
    public func takeSymbolizer() -> Symbolizer? {
        lock.lock()
        defer { lock.unlock() }
        taken = true
        let symbolizer = ready
        ready = nil
        return symbolizer
    }

    private var isTaken: Bool {
        lock.lock()
        defer { lock.unlock() }
        return taken
    }

    /// Moves the calling thread to SCHED_IDLE (Linux: policy 5), which any thread may do.
    private static func runOnlyWhenIdle() {
        let schedIdle: Int32 = 5
        var parameters = sched_param()
        parameters.sched_priority = 0
        _ = pthread_setschedparam(pthread_self(), schedIdle, &parameters)
    }

    /// The files mapped executable in process `pid`, from /proc/PID/maps: the executable, the
    /// C library, then the others in address order.
    static func files(of pid: Int32, executable: String) -> [String] {
        guard let maps = try? String(contentsOfFile: "/proc/\(pid)/maps", encoding: .utf8) else { return [executable] }
        var files: [String] = []
        for line in maps.split(separator: "\n") {
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard fields.count == 6, fields[1].contains("x") else { continue }
            let path = fields[5].trimmingCharacters(in: .whitespaces)
            guard path.hasPrefix("/"), !files.contains(path) else { continue }
            files.append(path)
        }
        let executableFile = (realpath(executable, nil)).map { real -> String in
            defer { free(real) }
            return String(cString: real)
        } ?? executable
        func rank(_ path: String) -> Int {
            if path == executableFile { return 0 }
            if path.hasSuffix("/libc.so.6") { return 1 }
            return 2
        }
        return files.enumerated().sorted { (rank($0.element), $0.offset) < (rank($1.element), $1.offset) }.map(\.element)
    }
}
