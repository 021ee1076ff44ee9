#if canImport(Glibc)
import Glibc
#endif

/// An ELF file mapped into a process.
public struct ModuleImage: Hashable, Sendable {
    public var path: String
    /// Load bias: runtime address = `base` + ELF virtual address (0 for non-PIE executables).
    public var base: UInt64

    public init(path: String, base: UInt64) {
        self.path = path
        self.base = base
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
