import Foundation

/// Reads, while a traced program still runs, the debug information its report will most likely
/// need: the program's executable and the C library (nearly every process keeps stdio buffers
/// or locale data allocated by libc, and the C library's debug file is large and compressed).
/// The report built afterwards with the same `Symbolizer` then does not wait for it.
///
/// It starts only after `delay`: a program that ends sooner gets its report without the
/// preload, which could otherwise make the report wait for a file it does not need.
public final class DebugInfoPreload: @unchecked Sendable {
    private let lock = NSLock()
    private var finished = false

    public init(symbolizer: Symbolizer, executable: String, delay: TimeInterval = 0.1) {
        let paths = [Self.canonicalPath(executable), Self.cLibraryPath()].compactMap { $0 }
        Thread.detachNewThread { [self] in
            Thread.sleep(forTimeInterval: delay)
            if !programFinished { symbolizer.preload(paths: paths) }
        }
    }

    /// Call when the program has exited: a preload not yet begun is skipped.
    public func programExited() {
        lock.lock()
        finished = true
        lock.unlock()
    }

    private var programFinished: Bool {
        lock.lock()
        defer { lock.unlock() }
        return finished
    }

    /// The executable as the shim names it (readlink of /proc/self/exe: symlinks resolved).
    static func canonicalPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// The C library's path as the dynamic loader names it (the shim's module records use the
    /// same name), found through a libc function of this process.
    static func cLibraryPath() -> String? {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "fopen") else { return nil }
        var info = Dl_info()
        guard dladdr(symbol, &info) != 0, let name = info.dli_fname else { return nil }
        return String(cString: name)
    }
}
