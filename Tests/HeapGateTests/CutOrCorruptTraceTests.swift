import Foundation
import Testing

/// Where a cut trace ends and a damaged one begins (docs/trace-format.md, "Complete and cut
/// traces"). A file cut anywhere after its header is reported as incomplete, with what it
/// holds; a file the writer finished (its last bytes are the footer) that does not read to its
/// END, or bytes after END that are not the footer, are corrupt: one line, exit status 2.
@Suite("Cut or corrupt traces")
struct CutOrCorruptTraceTests {
    /// leak_basic's trace, as the shim wrote it.
    static func leakBasicTrace(in directory: String) throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: TraceInputTests.traceLeakBasic(into: directory)))
    }

    /// The offset of the SNAPSHOT record, from the footer (its first 8 bytes, little-endian).
    static func snapshotOffset(of trace: Data) throws -> Int {
        try #require(Array(trace.suffix(8)) == Array("HGSNAPSH".utf8), "the trace has no footer")
        let offset = trace.suffix(16).prefix(8).reversed().reduce(0) { $0 << 8 | Int($1) }
        try #require(trace[trace.startIndex + offset] == 0x50, "the footer does not point at a SNAPSHOT record")
        return offset
    }

    /// The offset just past the unsigned LEB128 value at `offset`.
    static func endOfVarint(in trace: Data, at offset: Int) -> Int {
        var index = offset
        while trace[trace.startIndex + index] & 0x80 != 0 { index += 1 }
        return index + 1
    }

    /// The offset just past the SNAPSHOT record (its tag, then four varints).
    static func endOfSnapshotRecord(in trace: Data) throws -> Int {
        var offset = try snapshotOffset(of: trace) + 1
        for _ in 0..<4 { offset = endOfVarint(in: trace, at: offset) }
        return offset
    }

    // MARK: Cuts inside the exit snapshot

    /// A process killed while it wrote its exit snapshot leaves the SNAPSHOT record, which
    /// announces the blocks in use, and fewer bytes after it than those blocks take. That was
    /// called corrupt ("4 blocks in a snapshot"): the count was checked against the bytes
    /// left in the file, which a cut file does not have. It is a cut: the report is the event
    /// stream's, which comes before the snapshot and holds every allocation and free.
    @Test func cutJustAfterTheSnapshotRecordIsIncomplete() throws {
        try Harness.withTemporaryDirectory { directory in
            let good = try Self.leakBasicTrace(in: directory)
            let snapshotEnd = try Self.endOfSnapshotRecord(in: good)
            // From inside the SNAPSHOT record to 4 blocks × 5 bytes past it (the smallest the
            // 4 blocks' records can be), and beyond.
            for length in (try Self.snapshotOffset(of: good) + 1)...(snapshotEnd + 30) {
                let path = directory + "/cut-\(length).trace"
                try good.prefix(length).write(to: URL(fileURLWithPath: path))
                let (outcome, report) = try Harness.summary([path], flags: ["--error-exitcode=9"])
                #expect(outcome.status == 0, "cut at \(length): \(outcome.stderr)")
                #expect(outcome.stderr.contains("WARNING: this trace is incomplete"), "cut at \(length)")
                let process = try #require(report?.processes.first, "cut at \(length)")
                #expect(!process.complete)
                #expect(HeapFigures(process) == TraceInputTests.leakBasic, "cut at \(length)")
                if length == snapshotEnd + 1 { try TraceInputTests.expectLeakBasicRecords(process) }
            }
        }
    }
}
