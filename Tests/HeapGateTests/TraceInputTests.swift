import Foundation
import Testing

/// `heapgate summary` on saved traces: real ones (as files or directories), ones cut off by a
/// crash or a kill, and files that are not usable traces. Bad input is one `heapgate: …` line
/// and exit status 2; a cut-off trace is reported as incomplete with exit status 0; no input
/// ever makes heapgate trap.
@Suite("Reading saved traces")
struct TraceInputTests {
    static let leakBasic = HeapFigures(bytes: 228, blocks: 4, allocs: 7, frees: 3, bytesAllocated: 676)
    /// Size of the fixed file header (hg_file_header_t); the first record's tag follows it.
    static let headerSize = 56

    /// Runs leak_basic with the shim preloaded and HEAPGATE_OUT set, as a user saving a trace
    /// would, and returns the one trace file it wrote.
    static func traceLeakBasic(into directory: String) throws -> String {
        let outcome = try Harness.trace([Harness.fixture("leak_basic")], into: directory)
        try #require(outcome.status == 0, "leak_basic failed: \(outcome.stderr)")
        let files = Harness.traceFiles(in: directory)
        try #require(files.count == 1, "expected one trace in \(directory), got \(files)")
        return files[0]
    }

    static func expectLeakBasicRecords(_ process: Report.Process, sourceLocation: SourceLocation = #_sourceLocation) throws {
        try process.expectRecord("leak_name", bytes: 24, blocks: 1, file: "leak_basic.c", line: 24,
                                 caller: ("main", "leak_basic.c", 63), sourceLocation: sourceLocation)
        try process.expectRecord("leak_twice", bytes: 200, blocks: 2, file: "leak_basic.c", line: 31,
                                 caller: ("main", "leak_basic.c", 65), sourceLocation: sourceLocation)
        try process.expectRecord("leak_calloc", bytes: 4, blocks: 1, file: "leak_basic.c", line: 38,
                                 caller: ("main", "leak_basic.c", 66), sourceLocation: sourceLocation)
    }

    // MARK: Good traces

    @Test func traceFile() throws {
        try Harness.withTemporaryDirectory { directory in
            let trace = try Self.traceLeakBasic(into: directory)
            let (outcome, report) = try Harness.summary([trace])
            #expect(outcome.status == 0, "\(outcome.stderr)")
            let process = try #require(report?.processes.first)
            #expect(report?.processes.count == 1)
            #expect(process.complete)
            #expect(process.command == [Harness.fixture("leak_basic")])
            #expect(HeapFigures(process) == Self.leakBasic)
            try Self.expectLeakBasicRecords(process)
            #expect(outcome.stderr.contains("==\(process.pid)==     in use at exit: 228 bytes in 4 blocks\n"))
            #expect(outcome.stderr.contains("==\(process.pid)==   total heap usage: 7 allocs, 3 frees, 676 bytes allocated\n"))
            #expect(!outcome.stderr.contains("incomplete"))
        }
    }

    /// Without `heapgate run` nobody waits for the process: the exit status comes from the
    /// trace, which the shim's exit handler writes with the status exit() was given.
    @Test func exitStatusFromTheTrace() throws {
        try Harness.withTemporaryDirectory { directory in
            let outcome = try Harness.trace([Harness.fixture("exit_status"), "7"], into: directory)
            #expect(outcome.status == 7)
            let (summary, report) = try Harness.summary(Harness.traceFiles(in: directory))
            #expect(summary.status == 0, "\(summary.stderr)")
            let process = try #require(report?.processes.first)
            #expect(process.complete)
            #expect(process.exitStatus == 7)
        }
    }

    @Test func directoryOfTraces() throws {
        try Harness.withTemporaryDirectory { directory in
            _ = try Self.traceLeakBasic(into: directory)
            let (outcome, report) = try Harness.summary([directory])
            #expect(outcome.status == 0, "\(outcome.stderr)")
            let process = try #require(report?.processes.first)
            #expect(report?.processes.count == 1)
            #expect(process.complete)
            #expect(HeapFigures(process) == Self.leakBasic)
            try Self.expectLeakBasicRecords(process)
        }
    }

    // MARK: Files that are not usable traces

    enum BadInput: String, CaseIterable, CustomTestStringConvertible, Sendable {
        case missingFile, emptyFile, devNull, directoryWithoutTraces, randomBytes, newerVersion, cutInsideHeader, unknownRecordTag
        var testDescription: String { rawValue }

        /// A substring the one-line message must contain, besides the path.
        var wording: String? {
            switch self {
            case .randomBytes: return "not a heapgate trace"
            case .newerVersion: return "version 99"
            case .cutInsideHeader: return "header"
            case .unknownRecordTag: return "corrupt"
            case .missingFile, .emptyFile, .devNull, .directoryWithoutTraces: return nil
            }
        }

        /// Makes the input in `directory` from a good trace; returns the path to give heapgate.
        func make(in directory: String, from good: Data) throws -> String {
            let path = directory + "/input-\(rawValue)"
            var bytes = good
            switch self {
            case .missingFile: return path
            case .devNull: return "/dev/null"
            case .directoryWithoutTraces:
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
                return path
            case .emptyFile: bytes = Data()
            case .randomBytes:
                var state: UInt64 = 0x1234_5678_9abc_def0
                bytes = Data((0..<4096).map { _ in
                    state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                    return UInt8(truncatingIfNeeded: state >> 56)
                })
            case .newerVersion:
                // version: little-endian u32 at byte offset 8
                bytes.replaceSubrange(8..<12, with: [99, 0, 0, 0])
            case .cutInsideHeader: bytes = bytes.prefix(20)
            case .unknownRecordTag:
                bytes[bytes.startIndex + TraceInputTests.headerSize] = 0x55  // the first record's tag
            }
            try bytes.write(to: URL(fileURLWithPath: path))
            return path
        }
    }

    @Test(arguments: BadInput.allCases)
    func unreadableInput(_ input: BadInput) throws {
        try Harness.withTemporaryDirectory { directory in
            let good = try Data(contentsOf: URL(fileURLWithPath: Self.traceLeakBasic(into: directory)))
            let path = try input.make(in: directory, from: good)
            let (outcome, report) = try Harness.summary([path])
            #expect(outcome.status == 2)
            #expect(outcome.stdout.isEmpty)
            #expect(outcome.stderrLines.count == 1, "one line, got: \(outcome.stderr)")
            #expect(outcome.stderr.hasPrefix("heapgate: "))
            #expect(outcome.stderr.contains(path), "the message names the input")
            if let wording = input.wording { #expect(outcome.stderr.contains(wording)) }
            #expect(!outcome.stderr.contains("HEAP SUMMARY"))
            #expect(report == nil, "no JSON report for unreadable input")
        }
    }

    // MARK: Report files

    /// A report file that is one of the traces read would be written over it: `--json=a.trace
    /// a.trace` replaced the trace with the report. So would the same file by another name (a
    /// hard link: device and inode are compared) and `%p` that becomes the trace's own name
    /// (in `--log-file` and `--xml-file`; `--json`'s name is taken as it stands, so its `%p`
    /// names a new file). One line, status 2, before any report; the trace is left as it was.
    @Test(arguments: [("--json", "JSON report"), ("--log-file", "report"), ("--xml-file", "XML report")])
    func reportFileThatIsATraceIsRefused(option: String, what: String) throws {
        try Harness.withTemporaryDirectory { directory in
            let trace = try Self.traceLeakBasic(into: directory)
            let original = try Data(contentsOf: URL(fileURLWithPath: trace))
            let link = directory + "/link.trace"
            try FileManager.default.linkItem(atPath: trace, toPath: link)
            let xml = option == "--xml-file" ? ["--xml=yes"] : []
            let perProcess = directory + "/heapgate.%p.trace"
            for (output, inputs, written) in [(trace, [trace], trace), (link, [trace], link), (perProcess, [directory], trace)] {
                let outcome = try Harness.execute(Harness.heapgate, ["summary"] + xml + ["\(option)=\(output)"] + inputs)
                if option == "--json", output == perProcess {
                    #expect(outcome.status == 0, "\(outcome.stderr)")
                    #expect(FileManager.default.fileExists(atPath: perProcess))
                } else {
                    #expect(outcome.status == 2, "\(output)")
                    #expect(outcome.stderr == "heapgate: cannot write the \(what) to \(written): it is the trace \(trace), which the report reads\n")
                }
                #expect(try Data(contentsOf: URL(fileURLWithPath: trace)) == original, "\(output)")
            }
        }
    }

    // MARK: Traces that were cut off

    enum Cut: CustomTestStringConvertible, Sendable {
        case fraction(Double)
        case bytesShort(Int)
        case firstRecordTagOnly
        var testDescription: String {
            switch self {
            case let .fraction(f): return "\(Int(f * 100))% of the trace"
            case let .bytesShort(n): return "\(n) byte(s) short of the end"
            case .firstRecordTagOnly: return "the header and one byte"
            }
        }
        func length(of size: Int) -> Int {
            switch self {
            case let .fraction(f): return max(TraceInputTests.headerSize + 1, Int(Double(size) * f))
            case let .bytesShort(n): return size - n
            case .firstRecordTagOnly: return TraceInputTests.headerSize + 1
            }
        }
    }

    /// What a crashed or killed process leaves: a prefix of a good trace. It is reported (exit
    /// 0) as incomplete, with figures that are a prefix of the full ones.
    @Test(arguments: [Cut.firstRecordTagOnly, .fraction(0.6), .fraction(0.9), .bytesShort(1)])
    func cutOffTrace(_ cut: Cut) throws {
        try Harness.withTemporaryDirectory { directory in
            let good = try Data(contentsOf: URL(fileURLWithPath: Self.traceLeakBasic(into: directory)))
            let path = directory + "/cut.trace"
            let length = cut.length(of: good.count)
            try #require(length > Self.headerSize && length < good.count)
            try good.prefix(length).write(to: URL(fileURLWithPath: path))

            let (outcome, report) = try Harness.summary([path])
            #expect(outcome.status == 0, "\(outcome.stderr)")
            #expect(outcome.stderr.contains("incomplete"))
            let process = try #require(report?.processes.first)
            #expect(report?.processes.count == 1)
            #expect(!process.complete)
            let figures = HeapFigures(process)
            #expect(figures.allocs <= Self.leakBasic.allocs)
            #expect(figures.frees <= Self.leakBasic.frees)
            #expect(figures.bytesAllocated <= Self.leakBasic.bytesAllocated)
            #expect(figures.bytes <= figures.bytesAllocated)
            // leak_basic has no realloc and frees only its own blocks.
            #expect(figures.blocks + figures.frees == figures.allocs)
            if case .bytesShort(1) = cut {
                // Only the END record is damaged: every allocation and free is there.
                #expect(figures == Self.leakBasic)
                try Self.expectLeakBasicRecords(process)
            }
        }
    }

    /// A trace of megabytes whose footer is gone (a file copied while the process was still
    /// exiting, say) is replayed event by event, across many refills of the reader's buffer:
    /// it must come to the same figures as the exit snapshot that the whole file leads to.
    @Test func longTraceWithoutFooterReplaysEveryEvent() throws {
        try Harness.withTemporaryDirectory { directory in
            let run = try Harness.trace([Harness.fixture("churn"), "300000", "2"], into: directory)
            try #require(run.status == 0, "churn failed: \(run.stderr)")
            let files = Harness.traceFiles(in: directory)
            try #require(files.count == 1)
            let good = try Data(contentsOf: URL(fileURLWithPath: files[0]))
            try #require(good.count > 2 << 20, "the trace should span several buffer refills: \(good.count) bytes")
            let path = directory + "/no-footer.trace"
            try good.prefix(good.count - 16).write(to: URL(fileURLWithPath: path))

            let (whole, wholeReport) = try Harness.summary([files[0]])
            let (cut, cutReport) = try Harness.summary([path])
            #expect(whole.status == 0 && cut.status == 0, "\(whole.stderr)\(cut.stderr)")
            let snapshot = try #require(wholeReport?.processes.first)
            let replayed = try #require(cutReport?.processes.first)
            #expect(snapshot.complete && !replayed.complete)
            #expect(HeapFigures(snapshot).allocs == 300_000 && HeapFigures(snapshot).frees == 300_000)
            #expect(HeapFigures(replayed) == HeapFigures(snapshot))
        }
    }

    /// A process killed with SIGKILL while idle: nothing runs at exit, so the trace holds what
    /// the shim wrote before. It writes out its buffer when it has been idle for about 2 ms,
    /// so every block allocated before "ready" is in the trace.
    @Test func traceOfProcessKilledWithSIGKILL() throws {
        try Harness.withTemporaryDirectory { directory in
            // Wait 300 ms, then for the trace to show the five allocations. A shim that only
            // writes at exit never does.
            let (report, process) = try Self.killWhenTraced(["alloc_then_sleep", "120"], in: directory, settle: 0.3) {
                $0.heap.allocs == 5
            }
            #expect(report.processes.count == 1)
            #expect(HeapFigures(process) == HeapFigures(bytes: 777, blocks: 4, allocs: 5, frees: 1, bytesAllocated: 1_110))
            try process.expectRecord("keep_one", bytes: 111, blocks: 1, file: "alloc_then_sleep.c", line: 27,
                                     caller: ("main", "alloc_then_sleep.c", 51))
            try process.expectRecord("keep_three", bytes: 666, blocks: 3, file: "alloc_then_sleep.c", line: 34,
                                     caller: ("main", "alloc_then_sleep.c", 53))
            #expect(process.records.count == 2)
        }
    }

    /// A program that allocates every 500 us never leaves the drain thread idle for 2 ms, its
    /// cue to write out what it has; it also does so every 20 ms when it runs out of events,
    /// so a kill loses little. Before, the 200 allocations that steady_allocs makes before
    /// saying "ready" sat in the drain's 1 MiB buffer for minutes (2,000 events a second),
    /// and the trace of the killed process held none of them.
    @Test func traceOfSteadilyAllocatingProcessKilledWithSIGKILL() throws {
        try Harness.withTemporaryDirectory { directory in
            let (_, process) = try Self.killWhenTraced(["steady_allocs"], in: directory) {
                ($0.records(allocatedIn: "keep_block").first?.blocks ?? 0) >= 200
            }
            let record = try #require(process.records(allocatedIn: "keep_block").first)
            #expect(record.blocks >= 200)
            #expect(record.bytes == 32 * record.blocks)
            try process.expectRecord("keep_block", bytes: record.bytes, blocks: record.blocks, file: "steady_allocs.c",
                                     line: 20, caller: ("main", "steady_allocs.c", 33))
        }
    }

    /// A trace file removed while its process runs: `heapgate run` removes its temporary
    /// directory once the process it started ends, and a daemon that process left behind
    /// (forked, setsid, running on) went on writing a file no one can read, filling the disk
    /// unseen until it exited (a busy one at 11 MB/s). The shim stops writing once the file has
    /// no name. steady_allocs, whose trace grows every 20 ms, here by nothing once it is gone.
    @Test func traceFileRemovedWhileTheProcessRuns() throws {
        try Harness.withTemporaryDirectory { directory in
            let program = try BackgroundProcess(Harness.fixture("steady_allocs"), [],
                                                environment: ["LD_PRELOAD": Harness.shim, "HEAPGATE_OUT": directory])
            defer { program.terminate(with: SIGKILL) }
            try program.waitForLine("ready")
            let trace = try #require(Harness.traceFiles(in: directory).first)
            // The trace's descriptor, found by the directory its link names.
            let descriptors = "/proc/\(program.process.processIdentifier)/fd"
            let traceLink = try FileManager.default.contentsOfDirectory(atPath: descriptors).map { descriptors + "/" + $0 }
                .first { ((try? FileManager.default.destinationOfSymbolicLink(atPath: $0)) ?? "").hasPrefix(directory + "/") }
            let link = try #require(traceLink)
            let size = { () -> Int in
                var status = stat()
                return stat(link, &status) == 0 ? Int(status.st_size) : -1
            }
            try FileManager.default.removeItem(atPath: trace)
            Thread.sleep(forTimeInterval: 0.2) // the flush under way when it went, and the next
            let after = size()
            Thread.sleep(forTimeInterval: 0.5) // 1,000 allocations, 25 flushes
            #expect(after > 0)
            #expect(size() == after)
        }
    }

    /// An idle process's drain thread sleeps in long naps: it woke every 2 ms for as long as
    /// the program stayed quiet (477 times a second, about 4 ms of CPU), which an operator
    /// pays for each idle traced worker. Now 50 ms naps after a second of quiet: about 20
    /// wake-ups a second. Counted from the kernel's voluntary context switches of the
    /// process's second thread, over one second after 1.5 s of sleep.
    @Test func idleProcessDrainSleeps() throws {
        try Harness.withTemporaryDirectory { directory in
            let program = try BackgroundProcess(Harness.fixture("alloc_then_sleep"), ["30"],
                                                environment: ["LD_PRELOAD": Harness.shim, "HEAPGATE_OUT": directory])
            defer { program.terminate(with: SIGKILL) }
            try program.waitForLine("ready")
            let pid = program.process.processIdentifier
            let tasks = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task").filter { $0 != "\(pid)" }
            try #require(tasks.count == 1, "the drain thread: \(tasks)")
            let switches = { () throws -> Int in
                let status = try String(contentsOfFile: "/proc/\(pid)/task/\(tasks[0])/status", encoding: .utf8)
                let line = status.split(separator: "\n").first { $0.hasPrefix("voluntary_ctxt_switches:") }
                return Int(line?.split(separator: "\t").last ?? "") ?? -1
            }
            Thread.sleep(forTimeInterval: 1.5)
            let before = try switches()
            Thread.sleep(forTimeInterval: 1)
            let wakeUps = try switches() - before
            #expect(before >= 0 && wakeUps >= 0 && wakeUps < 100, "\(wakeUps) wake-ups in a second")
        }
    }

    /// Runs a fixture (`command[0]`) with the shim preloaded until it prints "ready", waits
    /// `settle` seconds, then until its trace, read while it runs, satisfies `shows` (no timing
    /// assertion: up to 30 s on a loaded machine), kills it with SIGKILL and returns the report
    /// of its trace, which must be incomplete, with its one process.
    private static func killWhenTraced(_ command: [String], in directory: String, settle: TimeInterval = 0,
                                       until shows: (Report.Process) -> Bool,
                                       sourceLocation: SourceLocation = #_sourceLocation) throws -> (Report, Report.Process) {
        let program = try BackgroundProcess(Harness.fixture(command[0]), Array(command.dropFirst()),
                                            environment: ["LD_PRELOAD": Harness.shim, "HEAPGATE_OUT": directory])
        try program.waitForLine("ready")
        Thread.sleep(forTimeInterval: settle)
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let (outcome, report) = try Harness.summary([directory])
            if outcome.status == 0, let process = report?.processes.first, shows(process) { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(program.terminate(with: SIGKILL) == 128 + SIGKILL, sourceLocation: sourceLocation)

        let (outcome, report) = try Harness.summary([directory])
        #expect(outcome.status == 0, "\(outcome.stderr)", sourceLocation: sourceLocation)
        #expect(outcome.stderr.contains("incomplete"), sourceLocation: sourceLocation)
        let written = try #require(report, sourceLocation: sourceLocation)
        let process = try #require(written.processes.first, sourceLocation: sourceLocation)
        #expect(!process.complete, sourceLocation: sourceLocation)
        return (written, process)
    }

    // MARK: No input makes heapgate trap

    /// Well-formed records with values no real process produces: sizes whose sum overflows 64
    /// bits, a refused realloc with no realloc in flight, counters at their maximum. heapgate may
    /// report them or reject them as corrupt (exit 2), but must not trap.
    @Test(arguments: TraceBuilder.adversarialCases)
    func adversarialRecords(_ testCase: TraceBuilder.Case) throws {
        try Harness.withTemporaryDirectory { directory in
            let good = try Data(contentsOf: URL(fileURLWithPath: Self.traceLeakBasic(into: directory)))
            let path = directory + "/crafted.trace"
            try (good.prefix(Self.headerSize) + testCase.records).write(to: URL(fileURLWithPath: path))
            let (outcome, _) = try Harness.summary([path])
            let trap = outcome.stderrLines.first { $0.contains("Fatal error") || $0.contains("runtime failure") }
            #expect(!Harness.trapStatuses.contains(outcome.status), "heapgate trapped: \(trap ?? outcome.stderr)")
            #expect([0, 2].contains(outcome.status) || Harness.trapStatuses.contains(outcome.status),
                    "exit \(outcome.status)")
            if outcome.status == 2 {
                #expect(outcome.stderrLines.count == 1 && outcome.stderr.hasPrefix("heapgate: "), "\(outcome.stderr.prefix(300))")
            }
        }
    }

    /// A footer whose offset does not point at the SNAPSHOT record (here: at END) is no footer:
    /// the events are replayed. Trusted, it skipped them, and leak_basic's trace came out
    /// complete with nothing in use, so that the gate passed.
    @Test func footerThatMissesTheSnapshotIsIgnored() throws {
        try Harness.withTemporaryDirectory { directory in
            var bytes = try Data(contentsOf: URL(fileURLWithPath: Self.traceLeakBasic(into: directory)))
            let end = bytes.count - 16 - 2 // END (0x7f) and status 0, then the 16-byte footer
            try #require(bytes[bytes.startIndex + end] == 0x7f && Array(bytes.suffix(8)) == Array("HGSNAPSH".utf8))
            for index in 0..<8 { bytes[bytes.count - 16 + index] = UInt8(truncatingIfNeeded: end >> (8 * index)) }
            let path = directory + "/misdirected.trace"
            try bytes.write(to: URL(fileURLWithPath: path))
            let (outcome, report) = try Harness.summary([path], flags: ["--error-exitcode=9"])
            #expect(outcome.status == 9, "\(outcome.stderr)")
            let process = try #require(report?.processes.first)
            #expect(process.complete)
            #expect(HeapFigures(process) == Self.leakBasic)
            try Self.expectLeakBasicRecords(process)
        }
    }

    /// Records that contradict the file: a snapshot announcing more blocks than the file can
    /// hold (it sized the reader's table: 2^64 blocks asked for 12.9 GB, and a machine with
    /// less memory aborted), a snapshot block with no snapshot before it (silently dropped).
    @Test(arguments: [
        ("a snapshot of 2^64 - 1 blocks", Data([0x50]) + TraceBuilder.uv(0) + TraceBuilder.uv(0) + TraceBuilder.uv(0)
            + TraceBuilder.uv(.max) + TraceBuilder.end()),
        ("a snapshot block before any snapshot", Data([0x51]) + TraceBuilder.sv(0x1000) + TraceBuilder.uv(8)
            + TraceBuilder.uv(0) + TraceBuilder.uv(1) + TraceBuilder.end()),
    ])
    func recordsTheFileContradicts(_ name: String, _ records: Data) throws {
        try Harness.withTemporaryDirectory { directory in
            let good = try Data(contentsOf: URL(fileURLWithPath: Self.traceLeakBasic(into: directory)))
            let path = directory + "/crafted.trace"
            try (good.prefix(Self.headerSize) + records).write(to: URL(fileURLWithPath: path))
            let (outcome, _) = try Harness.summary([path])
            #expect(outcome.status == 2, "\(name): \(outcome.stderr)")
            #expect(outcome.stderrLines.count == 1 && outcome.stderr.contains("corrupt trace"), "\(outcome.stderr)")
        }
    }

    /// A sparse file of 1.3 GB that holds a few bytes on disk: a SNAPSHOT record announcing 2^28
    /// blocks, which the file's size could hold, then a hole (zeros: an unknown tag). The count
    /// reserved the whole block table at once, 12.9 GB, and under a 4 GB address-space limit
    /// heapgate aborted ("Fatal error: failed to allocate", SIGABRT) before reading the next
    /// byte. Found by fuzzing `heapgate summary`.
    @Test func sparseFileAnnouncingMillionsOfSnapshotBlocks() throws {
        try Harness.withTemporaryDirectory { directory in
            let good = try Data(contentsOf: URL(fileURLWithPath: Self.traceLeakBasic(into: directory)))
            let snapshot = Data([0x50]) + TraceBuilder.uv(7) + TraceBuilder.uv(3) + TraceBuilder.uv(676) + TraceBuilder.uv(1 << 28)
            let path = directory + "/sparse.trace"
            try (good.prefix(Self.headerSize) + snapshot).write(to: URL(fileURLWithPath: path))
            try #require(truncate(path, off_t(5 << 28) + off_t(Self.headerSize + snapshot.count)) == 0, "truncate \(path)")
            let outcome = try Harness.execute("/usr/bin/prlimit", ["--as=4000000000", "--", Harness.heapgate, "summary", path])
            #expect(outcome.status == 2, "\(outcome.stderr)")
            #expect(outcome.stderrLines == ["heapgate: \(path): corrupt trace at byte \(Self.headerSize + snapshot.count): unknown record tag 0x0"],
                    "\(outcome.stderr)")
        }
    }

    /// A module path that names a FIFO (a damaged trace, or a file replaced since): libdw's
    /// open of it blocked for ever. Now only regular files are symbolized; the report goes on
    /// with that module's frames as addresses.
    @Test func modulePathThatIsAFIFO() throws {
        try Harness.withTemporaryDirectory { directory in
            let good = try Data(contentsOf: URL(fileURLWithPath: Self.traceLeakBasic(into: directory)))
            let program = Data(Harness.fixture("leak_basic").utf8)
            // A FIFO whose path has the program's length, so that the records keep their shape.
            let stem = "/tmp/hg-fifo-\(getpid())-"
            try #require(program.count > stem.count, "the fixture's path is too short to swap")
            let fifo = stem + String(repeating: "f", count: program.count - stem.count)
            try #require(mkfifo(fifo, 0o600) == 0, "mkfifo \(fifo)")
            defer { unlink(fifo) }
            let crafted = try #require(Self.replacingAll(program, with: Data(fifo.utf8), in: good))
            let path = directory + "/fifo.trace"
            try crafted.write(to: URL(fileURLWithPath: path))
            let outcome = try Harness.execute("/usr/bin/timeout", ["60", Harness.heapgate, "summary", "--error-exitcode=9", path])
            #expect(outcome.status == 9, "exit \(outcome.status) (124: it hung): \(outcome.stderr)")
            #expect(outcome.stderr.contains("definitely lost: 228 bytes in 4 blocks"), "\(outcome.stderr)")
        }
    }

    /// `data` with every occurrence of `old` replaced by `new` (of the same length); nil when
    /// there is none.
    private static func replacingAll(_ old: Data, with new: Data, in data: Data) -> Data? {
        var bytes = [UInt8](data), found = false
        let needle = [UInt8](old), replacement = [UInt8](new)
        var index = 0
        while index + needle.count <= bytes.count {
            if Array(bytes[index..<index + needle.count]) == needle {
                bytes.replaceSubrange(index..<index + needle.count, with: replacement)
                found = true
                index += needle.count
            } else {
                index += 1
            }
        }
        return found ? Data(bytes) : nil
    }

    /// Single damaged bytes all over a real trace, and garbage after a good header.
    @Test func damagedBytesNeverTrap() throws {
        try Harness.withTemporaryDirectory { directory in
            let good = try Data(contentsOf: URL(fileURLWithPath: Self.traceLeakBasic(into: directory)))
            var inputs: [(String, Data)] = []
            let offsets = stride(from: Self.headerSize, to: good.count, by: max(1, (good.count - Self.headerSize) / 32))
            for offset in offsets {
                for value: UInt8 in [0x00, 0xff] {
                    var bytes = good
                    bytes[bytes.startIndex + offset] = value
                    inputs.append(("byte \(offset) = 0x\(String(value, radix: 16))", bytes))
                }
            }
            var state: UInt64 = 42
            for round in 0..<8 {
                let garbage = (0..<512).map { _ -> UInt8 in
                    state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                    return UInt8(truncatingIfNeeded: state >> 33)
                }
                inputs.append(("garbage after the header, round \(round)", good.prefix(Self.headerSize) + Data(garbage)))
            }
            var failures: [String] = []
            let path = directory + "/damaged.trace"
            for (name, bytes) in inputs {
                try bytes.write(to: URL(fileURLWithPath: path))
                let (outcome, _) = try Harness.summary([path])
                if ![0, 2].contains(outcome.status) {
                    failures.append("\(name): exit \(outcome.status)")
                } else if outcome.status == 2, outcome.stderrLines.count != 1 {
                    failures.append("\(name): \(outcome.stderrLines.count) lines on stderr")
                }
            }
            #expect(failures.isEmpty, "\(failures.count) of \(inputs.count) inputs: \(failures.joined(separator: "; "))")
        }
    }
}

/// Hand-made trace records (CShim/include/hg_trace_format.h).
enum TraceBuilder {
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var records: Data
        var testDescription: String { name }
    }

    static func uv(_ value: UInt64) -> Data {
        var value = value, out = Data()
        repeat {
            let byte = UInt8(value & 0x7f)
            value >>= 7
            out.append(value == 0 ? byte : byte | 0x80)
        } while value != 0
        return out
    }

    static func sv(_ value: Int64) -> Data { uv(UInt64(bitPattern: (value << 1) ^ (value >> 63))) }

    static func alloc(delta: Int64, size: UInt64, stack: UInt64 = 0) -> Data { Data([0x10]) + sv(delta) + uv(size) + uv(stack) }
    static func free(delta: Int64) -> Data { Data([0x11]) + sv(delta) }
    static func realloc(delta: Int64, size: UInt64, stack: UInt64 = 0, oldMinusNew: Int64) -> Data {
        Data([0x13]) + sv(delta) + uv(size) + uv(stack) + sv(oldMinusNew)
    }
    static func inherited(allocs: UInt64, frees: UInt64, bytes: UInt64) -> Data { Data([0x20]) + uv(allocs) + uv(frees) + uv(bytes) }
    static func end(_ status: UInt64 = 0) -> Data { Data([0x7f]) + uv(status) }

    static let adversarialCases: [Case] = [
        Case(name: "two blocks whose sizes add up past 2^64",
             records: alloc(delta: 0x1000, size: 1 << 63) + alloc(delta: 16, size: 1 << 63) + end()),
        Case(name: "a refused realloc with no realloc in flight",
             records: realloc(delta: 0, size: 10, oldMinusNew: 0x1000) + end()),
        Case(name: "inherited counters at their maximum, then one more allocation",
             records: inherited(allocs: .max, frees: 0, bytes: .max) + alloc(delta: 0x1000, size: 5) + end()),
        Case(name: "frees of blocks never allocated",
             records: free(delta: 0x1000) + free(delta: 16) + end()),
        Case(name: "an allocation on a stack that was never recorded",
             records: alloc(delta: 0x1000, size: 8, stack: 12_345) + end()),
        Case(name: "a varint longer than 64 bits",
             records: Data([0x10]) + Data(repeating: 0xff, count: 12) + Data([0x01]) + end()),
    ]
}
