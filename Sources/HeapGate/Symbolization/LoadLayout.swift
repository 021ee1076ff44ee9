/// The loadable (`PT_LOAD`) segments of an ELF file, as (virtual address, size in memory) in
/// program-header order: what still tells a file from its rebuild when it has no GNU build id.
///
/// Why: clang links without a build id unless its build was configured to ask for one (the
/// Swift toolchain's clang, upstream LLVM's), as does `ld --build-id=none`. A trace of such a
/// program read after the program was rebuilt named the first build's frames after whatever
/// functions the rebuild had at those addresses, with no warning (fixture `no_build_id`).
/// The trace records each file's segments (MODULE_LOAD); a rebuild that adds or removes code
/// changes the size of its text segment, and so its layout. Stripping a file, or adding a
/// `.gnu_debuglink` to it, changes no loadable segment.
public struct LoadLayout: Hashable, Sendable {
    public struct Segment: Hashable, Sendable {
        public var address: UInt64
        public var size: UInt64

        public init(address: UInt64, size: UInt64) {
            self.address = address
            self.size = size
        }
    }

    public var segments: [Segment]

    public init(_ segments: [Segment]) {
        self.segments = segments
    }

    /// The shim records at most this many segments of a file, the first ones.
    static let recordedLimit = 16

    /// True when `current`, a file's whole layout now, can be the file this recorded layout was
    /// taken from. An empty recorded layout (nothing recorded) admits any file.
    func admits(_ current: LoadLayout) -> Bool {
        guard !segments.isEmpty else { return true }
        if segments.count < Self.recordedLimit { return segments == current.segments }
        return segments == Array(current.segments.prefix(segments.count))
    }
}
