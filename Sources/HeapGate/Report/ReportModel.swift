/// One symbolized frame of a record's stack.
public struct ReportFrame: Equatable, Sendable, Codable {
    /// The return address as recorded ("0x…").
    public var address: String
    public var function: String?
    /// The source file's base name, as valgrind prints it.
    public var file: String?
    public var line: Int?
    /// The object the address belongs to.
    public var module: String?
    /// True when the frame exists only because a call was inlined at this address.
    public var inlined: Bool?
}

/// Blocks in use that share a call site.
public struct LossRecord: Equatable, Sendable {
    public enum Kind: String, Sendable, Codable { case inUse }
    public var kind: Kind
    public var bytes: UInt64
    public var blocks: UInt64
    public var frames: [ReportFrame]
}

/// The heap summary of one process.
public struct ProcessReport: Sendable {
    public var pid: Int
    public var parentPID: Int
    public var command: [String]
    public var exitStatus: Int?
    public var isComplete: Bool
    public var bytesInUse: UInt64
    public var blocksInUse: UInt64
    public var allocs: UInt64
    public var frees: UInt64
    public var bytesAllocated: UInt64
    public var ringFullWaits: UInt64
    public var lostEvents: UInt64
    /// Sorted as valgrind sorts loss records: by bytes, smallest first, so the largest is
    /// printed last, next to the summary.
    public var records: [LossRecord]
}

/// Options that shape a report.
public struct ReportOptions: Sendable {
    /// Frames shown per record, like valgrind's --num-callers (default 12).
    public var numCallers = 12
    public var useDebuginfod = false
    public init(numCallers: Int = 12, useDebuginfod: Bool = false) {
        self.numCallers = numCallers
        self.useDebuginfod = useDebuginfod
    }
}
