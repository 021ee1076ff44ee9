#if canImport(Glibc)
import Glibc
#endif

/// An ELF file mapped into a process.
public struct ModuleImage: Hashable, Sendable {
    public var path: String
    /// Load bias: runtime address = `base` + ELF virtual address (0 for non-PIE executables).
    public var base: UInt64
    /// The GNU build id the trace recorded for the file, when it recorded one: a file found at
    /// `path` with another one was rebuilt or replaced since, and its symbols would name the
    /// wrong functions (see `Symbolizer.changedFiles`).
    public var buildID: [UInt8]?
    /// The loadable segments the trace recorded for the file (empty when it recorded none):
    /// what tells a rebuild of a file without a build id (see `LoadLayout`).
    public var layout: LoadLayout

    public init(path: String, base: UInt64, buildID: [UInt8]? = nil, layout: LoadLayout = LoadLayout([])) {
        self.path = path
        self.base = base
        self.buildID = buildID
        self.layout = layout
    }

    /// The image a trace's MODULE_LOAD record describes.
    public init(_ module: TraceModule) {
        self.init(
            path: module.path, base: module.base, buildID: module.buildID.isEmpty ? nil : module.buildID,
            layout: LoadLayout(module.segments.map { LoadLayout.Segment(address: $0.vaddr, size: $0.size) }))
    }

    /// libheapgate.so, wherever it is installed: frame 0 of every recorded stack.
    static func isShim(_ path: String) -> Bool { fileName(of: path).hasPrefix("libheapgate") }

    /// The path with symbolic links resolved, or as given when that fails.
    static func resolvedPath(_ path: String) -> String {
        guard let real = realpath(path, nil) else { return path }
        defer { free(real) }
        return String(cString: real)
    }
}
