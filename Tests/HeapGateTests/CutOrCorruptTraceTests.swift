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

    /// The offset just past the byte string (a varint length, then the bytes) at `offset`.
    static func endOfByteString(in trace: Data, at offset: Int) -> Int {
        let lengthEnd = endOfVarint(in: trace, at: offset)
        let length = trace[(trace.startIndex + offset)..<(trace.startIndex + lengthEnd)].reversed()
            .reduce(0) { $0 << 7 | Int($1 & 0x7f) }
        return lengthEnd + length
    }

    /// The offset just past the SNAPSHOT record (its tag, then four varints).
    static func endOfSnapshotRecord(in trace: Data) throws -> Int {
        var offset = try snapshotOffset(of: trace) + 1
        for _ in 0..<4 { offset = endOfVarint(in: trace, at: offset) }
        return offset
    }

    /// The offset just past the MODULE_LOAD record at `offset` (its tag, id, bias, path,
    /// build-id, then a count of segments and two varints for each).
    static func endOfModuleLoad(in trace: Data, at offset: Int) -> Int {
        let segmentCount = endOfByteString(in: trace, at: endOfByteString(in: trace, at: endOfVarint(in: trace, at: endOfVarint(in: trace, at: offset + 1))))
        let segments = trace[(trace.startIndex + segmentCount)..<(trace.startIndex + endOfVarint(in: trace, at: segmentCount))]
            .reversed().reduce(0) { $0 << 7 | Int($1 & 0x7f) }
        return (0..<2 * segments).reduce(endOfVarint(in: trace, at: segmentCount)) { at, _ in endOfVarint(in: trace, at: at) }
    }

    /// The offsets of the size field of each SNAPSHOT_BLOCK record, with its value, walking the
    /// records from the snapshot to END (those a snapshot holds: docs/trace-format.md).
    static func snapshotBlockSizes(in trace: Data) throws -> [(offset: Int, size: UInt64)] {
        func varint(at offset: Int) -> (value: UInt64, end: Int) {
            let end = endOfVarint(in: trace, at: offset)
            let value = trace[(trace.startIndex + offset)..<(trace.startIndex + end)].reversed()
                .reduce(UInt64(0)) { $0 << 7 | UInt64($1 & 0x7f) }
            return (value, end)
        }
        func skipVarints(_ count: UInt64, from offset: Int) -> Int {
            (0..<count).reduce(offset) { at, _ in endOfVarint(in: trace, at: at) }
        }
        var sizes: [(offset: Int, size: UInt64)] = []
        var offset = try snapshotOffset(of: trace)
        while true {
            let tag = trace[trace.startIndex + offset]
            offset += 1
            switch tag {
            case 0x50, 0x41, 0x30: offset = skipVarints(tag == 0x41 ? 3 : 4, from: offset) // SNAPSHOT, SCAN_DONE, STATS
            case 0x02: offset = endOfModuleLoad(in: trace, at: offset - 1)
            case 0x04: // STACK: id, depth, then depth frames
                let depth = varint(at: endOfVarint(in: trace, at: offset))
                offset = skipVarints(depth.value, from: depth.end)
            case 0x51: // SNAPSHOT_BLOCK: address, size, stack, kind (a leader for kind 2)
                let sizeOffset = endOfVarint(in: trace, at: offset)
                let size = varint(at: sizeOffset)
                sizes.append((sizeOffset, size.value))
                let kind = varint(at: endOfVarint(in: trace, at: size.end))
                offset = kind.value == 2 ? endOfVarint(in: trace, at: kind.end) : kind.end
            case 0x32: offset = endOfByteString(in: trace, at: endOfVarint(in: trace, at: offset)) // BYPASS
            case 0x7f: return sizes
            default:
                Issue.record("unexpected record tag 0x\(String(tag, radix: 16)) at byte \(offset - 1)")
                return sizes
            }
        }
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

    // MARK: Damage inside a whole file

    /// Where in leak_basic's trace one byte is damaged: a length varint whose byte is made
    /// 0x80, so that it runs on into the next byte and asks for thousands of bytes the file
    /// does not have.
    enum DamagedLength: String, CaseIterable, CustomTestStringConvertible, Sendable {
        /// The path of the first MODULE_LOAD after the SNAPSHOT record (read after the jump).
        case snapshotModulePath
        /// The command's first argument (read before the jump).
        case commandArgument
        var testDescription: String { rawValue }

        /// The offset of the damaged byte, and that of the record it is in.
        func offsets(in trace: Data) throws -> (byte: Int, record: Int) {
            switch self {
            case .snapshotModulePath:
                let record = try CutOrCorruptTraceTests.endOfSnapshotRecord(in: trace)
                try #require(trace[trace.startIndex + record] == 0x02, "no MODULE_LOAD after the SNAPSHOT record")
                let id = CutOrCorruptTraceTests.endOfVarint(in: trace, at: record + 1)
                return (CutOrCorruptTraceTests.endOfVarint(in: trace, at: id), record)
            case .commandArgument:
                let record = TraceInputTests.headerSize
                try #require(trace[trace.startIndex + record] == 0x01, "no COMMAND after the header")
                return (CutOrCorruptTraceTests.endOfVarint(in: trace, at: record + 1), record)
            }
        }
    }

    /// A damaged byte in a file whose footer is intact made the reader take the file for a cut
    /// one: it dropped the snapshot, and the events it had jumped over were not there to fall
    /// back on, so the report said "0 bytes in 0 blocks, 0 allocs" and passed the leak gate.
    /// Only the writer's last write puts the footer there: such a file is whole, and a record
    /// that runs past its end is damage.
    @Test(arguments: DamagedLength.allCases)
    func damagedLengthInAWholeFileIsCorrupt(_ damage: DamagedLength) throws {
        try Harness.withTemporaryDirectory { directory in
            var bytes = try Self.leakBasicTrace(in: directory)
            let (byte, record) = try damage.offsets(in: bytes)
            bytes[bytes.startIndex + byte] = 0x80
            let path = directory + "/damaged.trace"
            try bytes.write(to: URL(fileURLWithPath: path))
            let (outcome, report) = try Harness.summary([path], flags: ["--error-exitcode=9"])
            #expect(outcome.status == 2)
            #expect(outcome.stderrLines == ["heapgate: \(path): corrupt trace at byte \(record): the record runs past the end"
                + " of the file, which ends with the footer of a whole trace"])
            #expect(report == nil)
        }
    }

    /// The exit snapshot's STACK records removed (as a damaged byte string can swallow them):
    /// its first block named a stack that nothing defined, and was reported as a loss record
    /// with no frame at all, exit 0; `--gen-suppressions=all` wrote for it a suppression of one
    /// `obj:*` frame, which matches every definite leak. Found by fuzzing `heapgate summary`
    /// (deleted records). The snapshot defines every stack before its first block (in
    /// first-seen order: hg_stack_order.c), so all of them go, and the first block's id is read.
    @Test func blockOnAStackNoRecordDefinesIsCorrupt() throws {
        try Harness.withTemporaryDirectory { directory in
            let good = try Self.leakBasicTrace(in: directory)
            var stack = try Self.endOfSnapshotRecord(in: good) // the modules, then the stacks
            while good[good.startIndex + stack] == 0x02 { stack = Self.endOfModuleLoad(in: good, at: stack) }
            try #require(Array(good[(good.startIndex + stack)...].prefix(2)) == [0x04, 0x01], "no STACK 1 after the modules")
            var stacksEnd = stack
            while good[good.startIndex + stacksEnd] == 0x04 {
                // Tag, id (under 128 here), then the depth (one byte: under 128 frames) and as many frames.
                let frames = Self.endOfVarint(in: good, at: Self.endOfVarint(in: good, at: stacksEnd + 1))
                let depthAt = Self.endOfVarint(in: good, at: stacksEnd + 1)
                try #require(frames == depthAt + 1, "a stack of 128 frames or more")
                let depth = Int(good[good.startIndex + depthAt])
                stacksEnd = (0..<depth).reduce(frames) { at, _ in Self.endOfVarint(in: good, at: at) }
            }
            var damaged = good
            damaged.removeSubrange((good.startIndex + stack)..<(good.startIndex + stacksEnd))
            try #require(damaged[damaged.startIndex + stack] == 0x51, "no SNAPSHOT_BLOCK after the STACK records")
            // The block's address and size, then its stack id (one byte): the error is at the byte after it.
            let stackID = Self.endOfVarint(in: damaged, at: Self.endOfVarint(in: damaged, at: stack + 1))
            let id = Int(damaged[damaged.startIndex + stackID])
            try #require(id >= 1 && id < 128)
            let path = directory + "/damaged.trace"
            try damaged.write(to: URL(fileURLWithPath: path))
            let (outcome, report) = try Harness.summary([path], flags: ["--gen-suppressions=all"])
            #expect(outcome.status == 2)
            #expect(outcome.stderrLines == ["heapgate: \(path): corrupt trace at byte \(stackID + 1): stack id \(id),"
                + " which no STACK record before it defines"])
            #expect(report == nil)
        }
    }

    // MARK: What follows END

    /// What a file may have after END: the footer, or a part of it where the file was cut.
    /// Anything else no cut makes, and was reported as an incomplete trace.
    enum AfterEnd: String, CaseIterable, CustomTestStringConvertible, Sendable {
        /// Bytes appended after the footer.
        case bytesAfterTheFooter
        /// A second END where the footer belongs.
        case secondEnd
        /// Bytes where the footer belongs, fewer than it has, that are not its start.
        case garbageForTheFooter
        var testDescription: String { rawValue }

        static let garbage = Data("garbage".utf8)

        /// The damaged trace, the offset just past END's status, and the bytes after it.
        func make(from good: Data) -> (trace: Data, afterEnd: Int, extra: Int) {
            let withoutFooter = good.prefix(good.count - 16)
            switch self {
            case .bytesAfterTheFooter: return (good + Self.garbage, withoutFooter.count, 16 + Self.garbage.count)
            case .secondEnd: return (withoutFooter + Data([0x7f, 0x00]), withoutFooter.count, 2)
            case .garbageForTheFooter: return (withoutFooter + Self.garbage, withoutFooter.count, Self.garbage.count)
            }
        }
    }

    @Test(arguments: AfterEnd.allCases)
    func bytesAfterEndThatAreNotTheFooterAreCorrupt(_ damage: AfterEnd) throws {
        try Harness.withTemporaryDirectory { directory in
            let good = try Self.leakBasicTrace(in: directory)
            // leak_basic exits with 0: END is 0x7f 0x00, then the footer.
            try #require(Array(good.suffix(18).prefix(2)) == [0x7f, 0x00])
            let (trace, afterEnd, extra) = damage.make(from: good)
            let path = directory + "/damaged.trace"
            try trace.write(to: URL(fileURLWithPath: path))
            let (outcome, report) = try Harness.summary([path])
            #expect(outcome.status == 2)
            #expect(outcome.stderrLines == ["heapgate: \(path): corrupt trace at byte \(afterEnd): END is followed by \(extra)"
                + " bytes that are not the footer"])
            #expect(report == nil)
        }
    }

    /// END and a footer with no exit snapshot before them: the writer never writes one without
    /// the other. A footer pointing into the COMMAND record was no footer, the events were
    /// replayed, and END with the footer after it made the trace complete, whatever came before.
    @Test func footerWithoutASnapshotIsCorrupt() throws {
        try Harness.withTemporaryDirectory { directory in
            let good = try Self.leakBasicTrace(in: directory)
            // The header and the COMMAND record (tag, argc 1, the argument, the executable),
            // then END and a footer that points at the COMMAND record.
            try #require(Array(good[(good.startIndex + TraceInputTests.headerSize)...].prefix(2)) == [0x01, 0x01])
            let argumentEnd = Self.endOfByteString(in: good, at: TraceInputTests.headerSize + 2)
            let preamble = good.prefix(Self.endOfByteString(in: good, at: argumentEnd))
            var footer = Data((0..<8).map { UInt8(truncatingIfNeeded: TraceInputTests.headerSize >> (8 * $0)) })
            footer += Data("HGSNAPSH".utf8)
            let path = directory + "/no-snapshot.trace"
            try (preamble + Data([0x7f, 0x00]) + footer).write(to: URL(fileURLWithPath: path))
            let (outcome, report) = try Harness.summary([path])
            #expect(outcome.status == 2)
            #expect(outcome.stderrLines == ["heapgate: \(path): corrupt trace at byte \(preamble.count + 2): END and a footer,"
                + " but no exit snapshot before them"])
            #expect(report == nil)
        }
    }

    // MARK: Numbers

    /// A varint of 10 bytes has room for bit 63 alone in its last byte. One whose last byte
    /// is 0x7f lost its high bits: the snapshot's bytes allocated, 676, were read as
    /// 2^63 + 676 and reported.
    @Test func numberPastSixtyFourBitsIsCorrupt() throws {
        try Harness.withTemporaryDirectory { directory in
            let good = try Self.leakBasicTrace(in: directory)
            let snapshot = try Self.snapshotOffset(of: good)
            // The SNAPSHOT record: tag, allocs, frees, bytes allocated, blocks.
            let bytesAllocated = Self.endOfVarint(in: good, at: Self.endOfVarint(in: good, at: snapshot + 1))
            let end = Self.endOfVarint(in: good, at: bytesAllocated)
            try #require(Array(good[(good.startIndex + bytesAllocated)..<(good.startIndex + end)]) == [0xa4, 0x05]) // 676
            let tooLong = Data([0xa4, 0x85] + [UInt8](repeating: 0x80, count: 7) + [0x7f])
            let damaged = good.prefix(bytesAllocated) + tooLong + good.suffix(from: good.startIndex + end)
            let path = directory + "/damaged.trace"
            try damaged.write(to: URL(fileURLWithPath: path))
            let (outcome, report) = try Harness.summary([path], flags: ["--error-exitcode=9"])
            #expect(outcome.status == 2)
            #expect(outcome.stderrLines == ["heapgate: \(path): corrupt trace at byte \(snapshot): a number longer than 64 bits"])
            #expect(report == nil)
        }
    }

    /// Block sizes whose sum passes 2^64 − 1 (a damaged or crafted snapshot) wrapped round in
    /// every total: leak_basic's two blocks of 100 bytes made 2^64 − 1 bytes each, and the
    /// report said 26 bytes in use and definitely lost. Totals stop at 2^64 − 1 instead.
    @Test func totalsPastSixtyFourBitsSaturate() throws {
        try Harness.withTemporaryDirectory { directory in
            let good = try Self.leakBasicTrace(in: directory)
            let sizes = try Self.snapshotBlockSizes(in: good)
            try #require(sizes.map(\.size).sorted() == [4, 24, 100, 100], "\(sizes)")
            var damaged = Data()
            var copied = 0
            for field in sizes where field.size == 100 { // 100 is one byte: 0x64
                damaged += good[(good.startIndex + copied)..<(good.startIndex + field.offset)] + TraceBuilder.uv(.max)
                copied = field.offset + 1
            }
            damaged += good.suffix(from: good.startIndex + copied)
            let path = directory + "/huge.trace"
            try damaged.write(to: URL(fileURLWithPath: path))
            let (outcome, report) = try Harness.summary([path])
            #expect(outcome.status == 0, "\(outcome.stderr)")
            let process = try #require(report?.processes.first)
            #expect(process.complete)
            #expect(HeapFigures(process) == HeapFigures(bytes: .max, blocks: 4, allocs: 7, frees: 3, bytesAllocated: 676))
            #expect(process.leaks?.definite == Report.Amount(bytes: .max, blocks: 4))
            #expect(process.records(allocatedIn: "leak_twice").map(\.bytes) == [.max])
            #expect(outcome.stderr.contains("==\(process.pid)==    definitely lost: 18,446,744,073,709,551,615 bytes in 4 blocks\n"))
        }
    }
}
