/// One symbolized frame of a record's stack.
public struct ReportFrame: Equatable, Sendable, Codable {
    /// The return address as recorded ("0x…").
    public var address: String
    public var function: String?
    /// The source file as memcheck shows it: its name as the line table records it
    /// (`SourceFrame.fileName`; `main.c`, `sub/main.c`, `library/alloc/src/raw_vec/mod.rs`).
    public var file: String?
    /// The directory `file` is in, made absolute, for the XML report's `<dir>` (tools that
    /// open the source from valgrind's XML join it with `<file>`); not in the JSON report.
    public var directory: String?
    /// The source file's path, `file` in `directory` (JSON's `path`; suppressions' `src:`
    /// lines with a `/` are also tried against it).
    public var path: String?
    public var line: Int?
    /// The object the address belongs to, symbolic links resolved (as memcheck shows it, from
    /// /proc/PID/maps: `/usr/lib/x86_64-linux-gnu/libz.so.1.2.13`, not `/lib/x86_64-linux-gnu/libz.so.1`).
    public var module: String?
    /// True when the frame exists only because a call was inlined at this address.
    public var inlined: Bool?
    /// The mangled name, for suppressions (not in the JSON report).
    public var linkageName: String?
    /// The path the dynamic loader named the object by, when it differs from `module`:
    /// suppressions match either (not in the JSON report).
    public var loadedAs: String?
    /// memcheck's name for an inlined frame, when it is not `linkageName` (`SourceFrame.inlinedName`;
    /// not in the JSON report).
    public var inlinedName: String?

    enum CodingKeys: String, CodingKey { case address, function, file, path, line, module, inlined }
}

/// Blocks in use that share a call site (and, once classified, a leak kind).
public struct LossRecord: Equatable, Sendable {
    public enum Kind: String, Sendable, Codable {
        /// The process was not scanned at exit (leak check off, or the trace is incomplete).
        case inUse
        case definite, indirect, possible, reachable

        init(_ kind: LeakKind) {
            switch kind {
            case .definite: self = .definite
            case .indirect: self = .indirect
            case .possible: self = .possible
            case .reachable: self = .reachable
            }
        }
        public var leakKind: LeakKind? { LeakKind(rawValue: rawValue) }
    }
    public var kind: Kind
    /// Direct bytes and blocks.
    public var bytes: UInt64
    public var blocks: UInt64
    /// Definitely lost records: the bytes and blocks lost only through these blocks.
    public var indirectBytes: UInt64 = 0
    public var indirectBlocks: UInt64 = 0
    public var frames: [ReportFrame]
    /// The name of the suppression that matched, if any.
    public var suppressedBy: String?
    /// The frames under the last one shown (see `ReportBuilder.cutBelowMain`), and the name the
    /// last one had when it became "(below main)": suppressions see the whole stack. Kept
    /// instead of a second copy of every frame, which was a third of the memory of a report
    /// of 65,000 records.
    var framesBelowShown: [ReportFrame] = []
    var lastShownFunction: String?
    /// The stack as suppressions see it: inlined frames included, not cut at `main`, as many
    /// return addresses as --num-callers (memcheck matches the stack it kept).
    public var suppressionFrames: [SuppressionFrame] {
        var whole = frames + framesBelowShown
        if let lastShownFunction, !frames.isEmpty { whole[frames.count - 1].function = lastShownFunction }
        return whole.map(\.suppressionFrame)
    }
    /// Still reachable records: the part of the bytes and blocks that only a memcheck
    /// heuristic reached (not in the JSON report's records).
    public var viaHeuristic: [LeakHeuristic: Amount] = [:]

    public var totalBytes: UInt64 { bytes.addingSaturated(indirectBytes) }
}

/// A loss record that the report shows, with its number among the process's unsuppressed
/// records, as memcheck numbers them ("in loss record 2 of 3").
public struct ShownLossRecord {
    public var record: LossRecord
    public var kind: LeakKind
    public var number: Int
    public var count: Int

    /// "128 (32 direct, 96 indirect) bytes in 1 blocks are definitely lost in loss record 2 of 2".
    public var headline: String {
        let grouped = TextReport.grouped
        let amount = record.indirectBytes > 0
            ? "\(grouped(record.totalBytes)) (\(grouped(record.bytes)) direct, \(grouped(record.indirectBytes)) indirect) bytes"
            : "\(grouped(record.bytes)) bytes"
        return "\(amount) in \(grouped(record.blocks)) blocks are \(kind.valgrindPhrase) in loss record \(number) of \(count)"
    }
}

extension ProcessReport {
    /// The loss records a classified process shows with --leak-check=full: those of the kinds
    /// in --show-leak-kinds, in order (the text report's records, the XML report's errors).
    public func shownLossRecords(_ options: ReportOptions) -> [ShownLossRecord] {
        guard leaks != nil, options.leakCheck == .full else { return [] }
        let numbered = records.filter { $0.suppressedBy == nil }
        return numbered.enumerated().compactMap { index, record in
            guard let kind = record.kind.leakKind, options.showLeakKinds.contains(kind) else { return nil }
            return ShownLossRecord(record: record, kind: kind, number: index + 1, count: numbered.count)
        }
    }
}

/// Bytes and blocks.
public struct Amount: Equatable, Sendable, Codable {
    public var bytes: UInt64 = 0
    public var blocks: UInt64 = 0
    public init(bytes: UInt64 = 0, blocks: UInt64 = 0) {
        self.bytes = bytes
        self.blocks = blocks
    }
    mutating func add(_ bytes: UInt64, blocks: UInt64 = 1) {
        self.bytes = self.bytes.addingSaturated(bytes)
        self.blocks = self.blocks.addingSaturated(blocks)
    }
}

extension Dictionary where Value == Amount {
    /// Adds `other`'s amounts to this one's, key by key.
    mutating func add(_ other: [Key: Amount]) {
        for (key, amount) in other { self[key, default: Amount()].add(amount.bytes, blocks: amount.blocks) }
    }
}

/// The LEAK SUMMARY of one process.
public struct LeakTotals: Equatable, Sendable, Encodable {
    public var definite = Amount()
    public var indirect = Amount()
    public var possible = Amount()
    public var reachable = Amount()
    /// The part of `reachable` that only memcheck's heuristics reached, by heuristic.
    public var reachableViaHeuristic: [LeakHeuristic: Amount] = [:]
    public var suppressed = Amount()

    public subscript(kind: LeakKind) -> Amount {
        get {
            switch kind {
            case .definite: return definite
            case .indirect: return indirect
            case .possible: return possible
            case .reachable: return reachable
            }
        }
        set {
            switch kind {
            case .definite: definite = newValue
            case .indirect: indirect = newValue
            case .possible: possible = newValue
            case .reachable: reachable = newValue
            }
        }
    }
}

/// The heap summary of one process.
public struct ProcessReport: Sendable {
    public var pid: Int
    public var parentPID: Int
    public var command: [String]
    public var exitStatus: Int?
    public var isComplete: Bool
    /// Tracing stopped when the process installed a seccomp filter (the trace is incomplete).
    public var stoppedForSandbox = false
    public var bytesInUse: UInt64
    public var blocksInUse: UInt64
    public var allocs: UInt64
    public var frees: UInt64
    public var bytesAllocated: UInt64
    public var events: UInt64 = 0
    public var ringFullWaits: UInt64
    public var lostEvents: UInt64
    /// Return addresses shown as `???` because different libraries held them at different
    /// times (`ProcessHeap.addressesOfUnknownLibrary`).
    public var addressesOfUnknownLibrary: UInt64 = 0
    /// Allocations recorded with no stack (no frames in their loss records) because the shim's
    /// limit of distinct stacks (HEAPGATE_MAX_STACKS) was reached.
    public var allocationsWithoutStack: UInt64 = 0
    /// An allocator defined ahead of the shim's entry points, if the process had one.
    public var foreignAllocator: ForeignAllocator? = nil
    /// Libraries that called glibc's allocator past the shim (RTLD_DEEPBIND).
    public var bypassingLibraries: [BypassingLibrary] = []
    /// How long the exit-time leak scan took in the traced process.
    public var leakScanSeconds: Double = 0
    /// Why the exit-time scan could not run although the leak check was on (then `leaks` is nil).
    public var leakScanSkipped: LeakScanSkip? = nil
    /// Sorted as valgrind sorts loss records: by bytes, smallest first, so the largest is
    /// printed last, next to the summary.
    public var records: [LossRecord]
    /// Nil when the process was not classified (leak check off or incomplete trace).
    public var leaks: LeakTotals?
}

/// valgrind's --leak-check.
public enum LeakCheckMode: String, Sendable, CaseIterable {
    /// No exit-time scan (the shim is told not to scan); only the HEAP SUMMARY.
    case no
    /// The LEAK SUMMARY, no loss records.
    case summary
    /// The LEAK SUMMARY and the loss records of the kinds in --show-leak-kinds.
    case full
}

/// Options that shape a report.
public struct ReportOptions: Sendable {
    /// Return addresses kept per record, like valgrind's --num-callers (default 12); each is
    /// shown with every frame inlined at it, so a record may print more lines than this.
    public var numCallers = 12
    public var useDebuginfod = false
    public var leakCheck = LeakCheckMode.full
    /// Kinds whose loss records are printed (valgrind's default: definite,possible).
    public var showLeakKinds: Set<LeakKind> = [.definite, .possible]
    /// Kinds that count as errors for --error-exitcode (valgrind's default: definite,possible).
    public var errorsForLeakKinds: Set<LeakKind> = [.definite, .possible]
    public var suppressions = RecordSuppressions()
    /// Print a suppression block after each shown loss record (--gen-suppressions=all).
    public var generateSuppressions = false
    /// valgrind's -q: only the loss records shown (and warnings), no banner and no summaries.
    public var quiet = false

    public init(numCallers: Int = 12, useDebuginfod: Bool = false) {
        self.numCallers = numCallers
        self.useDebuginfod = useDebuginfod
    }
}

extension ReportFrame {
    /// The address as valgrind prints it (text and XML reports): upper-case hex, and for a
    /// caller's frame the return address minus one, inside the call instruction, which is where
    /// addr2line and a debugger find the calling line.
    func shownAddress(isCaller: Bool) -> String {
        guard let value = UInt64(address.dropFirst(2), radix: 16) else { return address }
        return "0x" + String(isCaller && value > 0 ? value - 1 : value, radix: 16, uppercase: true)
    }

    /// The frame as a suppression matches it.
    var suppressionFrame: SuppressionFrame {
        SuppressionFrame(linkageName: linkageName, function: function, inlinedName: inlinedName, object: module,
                         objectAliases: loadedAs.map { [$0] } ?? [], file: file, path: path, line: line)
    }
}
