/// Constants of the trace format; `CShim/include/hg_trace_format.h` is the definition and
/// `docs/trace-format.md` the prose. The reader decodes field by field, never by importing C structs.
enum TraceFormat {
    static let magic: [UInt8] = Array("HEAPGATE".utf8)
    /// 2 added the SNAPSHOT_BLOCK kinds of heuristic reachability, 3 the ALLOCATOR and BYPASS records,
    /// 4 the SCAN_SKIPPED record, 5 the count of allocations without a stack in STATS, 6 the
    /// ELIDED record; older traces read the same (a STATS record of version 4 or less has no
    /// such count: 0).
    static let supportedVersion: UInt32 = 6
    static let minimumHeaderSize = 56
    static let flagForked: UInt32 = 1 << 0
    static let flagSandboxed: UInt32 = 1 << 1
    static let unknownExitStatus: UInt64 = 0xFFFF_FFFF
    /// The last 16 bytes of a complete trace: the snapshot's offset (u64 LE), then this.
    static let footerMagic: [UInt8] = Array("HGSNAPSH".utf8)

    enum Tag: UInt8 {
        case command = 0x01
        case moduleLoad = 0x02
        case moduleUnload = 0x03
        case stack = 0x04
        case alloc = 0x10
        case free = 0x11
        case reallocFree = 0x12
        case realloc = 0x13
        case elided = 0x14
        case inherited = 0x20
        case inheritedBlock = 0x21
        case snapshot = 0x50
        case snapshotBlock = 0x51
        case scanDone = 0x41
        case scanSkipped = 0x42
        case stats = 0x30
        case allocator = 0x31
        case bypass = 0x32
        case end = 0x7f
    }
}

/// Why a trace could not be read. Every case is bad input, reported in one line with exit status 2.
public enum TraceFormatError: Error, Equatable, CustomStringConvertible {
    case cannotOpen(path: String, reason: String)
    case empty(path: String)
    case notATrace(path: String)
    case unsupportedVersion(path: String, version: UInt32)
    case truncatedHeader(path: String)
    case corrupt(path: String, offset: UInt64, reason: String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason): return "\(path): cannot open trace: \(reason)"
        case let .empty(path): return "\(path): empty file, not a heapgate trace"
        case let .notATrace(path): return "\(path): not a heapgate trace (bad magic number)"
        case let .unsupportedVersion(path, version):
            return "\(path): trace format version \(version) is newer than this heapgate reads (\(TraceFormat.supportedVersion)); upgrade heapgate"
        case let .truncatedHeader(path): return "\(path): trace is cut off inside its header"
        case let .corrupt(path, offset, reason): return "\(path): corrupt trace at byte \(offset): \(reason)"
        }
    }
}
