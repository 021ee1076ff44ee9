#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// The machine-readable report (`--json=FILE`); docs/json-report.md is its schema.
public enum JSONReport {
    public static let version = "0.1.0"

    public static func render(_ reports: [ProcessReport]) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(Document(tool: "heapgate", version: version, processes: reports.map(Process.init)))
    }

    struct Document: Encodable {
        var tool: String
        var version: String
        var processes: [Process]
    }

    struct Heap: Encodable {
        var inUseAtExit: Amount
        var allocs: UInt64
        var frees: UInt64
        var bytesAllocated: UInt64
    }

    /// How the tracing itself went.
    struct Statistics: Encodable {
        var events: UInt64
        var ringFullWaits: UInt64
        var lostEvents: UInt64
        var allocationsWithoutStack: UInt64
        var leakScanSeconds: Double
        /// Why the exit-time scan could not run (`no-memory`, `no-mappings`); null otherwise.
        var leakScanSkipped: LeakScanSkip?

        enum CodingKeys: String, CodingKey { case events, ringFullWaits, lostEvents, allocationsWithoutStack, leakScanSeconds, leakScanSkipped }

        func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(events, forKey: .events)
            try container.encode(ringFullWaits, forKey: .ringFullWaits)
            try container.encode(lostEvents, forKey: .lostEvents)
            try container.encode(allocationsWithoutStack, forKey: .allocationsWithoutStack)
            try container.encode(leakScanSeconds, forKey: .leakScanSeconds)
            try container.encode(leakScanSkipped, forKey: .leakScanSkipped) // null when the scan ran or was not wanted
        }
    }

    struct Record: Encodable {
        var kind: String
        var bytes: UInt64
        var blocks: UInt64
        /// Definitely lost records only: what is lost through them.
        var indirectBytes: UInt64?
        var indirectBlocks: UInt64?
        /// The matching suppression's name, for suppressed records.
        var suppressedBy: String?
        var frames: [ReportFrame]

        init(_ record: LossRecord) {
            kind = record.kind.rawValue
            bytes = record.bytes
            blocks = record.blocks
            if record.kind == .definite {
                indirectBytes = record.indirectBytes
                indirectBlocks = record.indirectBlocks
            }
            suppressedBy = record.suppressedBy
            frames = record.frames
        }
    }

    struct Process: Encodable {
        var pid: Int
        var parentPid: Int
        var command: [String]
        var exitStatus: Int?
        var complete: Bool
        var stoppedForSandbox: Bool
        var heap: Heap
        var leaks: LeakTotals?
        var records: [Record]
        var statistics: Statistics
        var allocator: ForeignAllocator?
        var bypassingLibraries: [BypassingLibrary]

        init(_ report: ProcessReport) {
            pid = report.pid
            parentPid = report.parentPID
            command = report.command
            exitStatus = report.exitStatus
            complete = report.isComplete
            stoppedForSandbox = report.stoppedForSandbox
            heap = Heap(inUseAtExit: Amount(bytes: report.bytesInUse, blocks: report.blocksInUse),
                        allocs: report.allocs, frees: report.frees, bytesAllocated: report.bytesAllocated)
            leaks = report.leaks
            statistics = Statistics(events: report.events, ringFullWaits: report.ringFullWaits,
                                    lostEvents: report.lostEvents, allocationsWithoutStack: report.allocationsWithoutStack,
                                    leakScanSeconds: report.leakScanSeconds,
                                    leakScanSkipped: report.leakScanSkipped)
            records = report.records.map(Record.init)
            allocator = report.foreignAllocator
            bypassingLibraries = report.bypassingLibraries
        }

        enum CodingKeys: String, CodingKey { case pid, parentPid, command, exitStatus, complete, stoppedForSandbox, heap, leaks, records, statistics, allocator, bypassingLibraries }

        func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(pid, forKey: .pid)
            try container.encode(parentPid, forKey: .parentPid)
            try container.encode(command, forKey: .command)
            try container.encode(exitStatus, forKey: .exitStatus) // null when unknown, never absent
            try container.encode(complete, forKey: .complete)
            try container.encode(stoppedForSandbox, forKey: .stoppedForSandbox)
            try container.encode(heap, forKey: .heap)
            try container.encode(leaks, forKey: .leaks) // null when the process was not classified
            try container.encode(records, forKey: .records)
            try container.encode(statistics, forKey: .statistics)
            try container.encode(allocator, forKey: .allocator) // null when the program brought none
            try container.encode(bypassingLibraries, forKey: .bypassingLibraries)
        }
    }
}
