import Foundation
import Testing

/// The shim's fast unwinder (per-IP rules from .eh_frame, reuse of the frames a thread's
/// previous capture had) must give exactly the stacks libunwind's unw_backtrace gives.
/// HEAPGATE_UNWIND=verify runs both on every capture and writes one stderr line per capture
/// where they differ; unwind_stress allocates from changing call paths on 4 threads (varying
/// recursion, RBP-based frames, longjmp over stale frames, signal handlers on an alternate
/// stack, glibc frames between caller and malloc).
@Suite("Stack capture")
struct StackCaptureTests {
    @Test func fastUnwinderMatchesLibunwindOnEveryCapture() throws {
        let report = try Self.runVerifyingEveryCapture("unwind_stress")
        // The run really exercised the unwinder: 3,000 rounds on each of 4 threads, nothing
        // freed, so every path that allocated is a record of its own.
        let process = try #require(report.processes.first)
        #expect(process.heap.allocs >= 12_000)
        #expect(process.records.count >= 100)
    }

    /// Threads made one after another start on the unwinder mapping the last one left (its
    /// remembered frames and stacks seen before cleared) and, from glibc, on its stack: every
    /// capture of all 2,000 threads must still be libunwind's.
    @Test func threadsStartingOnAFinishedThreadsMappingUnwindAlike() throws {
        let report = try Self.runVerifyingEveryCapture("thread_churn")
        let process = try #require(report.processes.first)
        #expect(process.heap.allocs == 20_041)
        try process.expectRecord("path_a", bytes: 480, blocks: 20, file: "thread_churn.c", line: 34,
                                 caller: ("thread_main", "thread_churn.c", 41))
        try process.expectRecord("path_b", bytes: 800, blocks: 20, file: "thread_churn.c", line: 36,
                                 caller: ("thread_main", "thread_churn.c", 43))
    }

    /// Code built without unwind tables (`-fno-asynchronous-unwind-tables`) is described only in
    /// its file's `.debug_frame`, which memcheck reads: its stack was cut at the first such frame
    /// (`inner` alone: libunwind on x86-64 does not read it). The shim now reads it from the file.
    @Test func debugFrameOnlyCodeHasItsWholeStack() throws {
        let (outcome, report) = try Harness.run([Harness.fixture("debug_frame_only")])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        let process = try #require(report.processes.first)
        let record = try #require(process.records.first { $0.bytes == 41 }, "\(outcome.stderr)")
        #expect(record.frames.first?.function == "malloc")
        #expect(record.frames.dropFirst().prefix(4).map { "\($0.function ?? "???") \($0.file ?? "?"):\($0.line ?? 0)" } == [
            "inner debug_frame_only.c:19", "middle debug_frame_only.c:26", "outer debug_frame_only.c:33",
            "main debug_frame_only.c:45",
        ], "\(outcome.stderr)")
    }

    /// The `.debug_frame` is read when the first stack needs it, from the file the program was
    /// started from: its path may name another file by then (rebuilt while it runs; here the
    /// same program with one byte of its build id changed). Read by its path (the link
    /// `/proc/self/exe` names, " (deleted)" appended), that stack ended after `inner`.
    @Test func debugFrameIsReadFromTheFileTheProgramStartedFrom() throws {
        try Harness.withTemporaryDirectory { directory in
            let program = directory + "/debug_frame_only"
            try FileManager.default.copyItem(atPath: Harness.fixture("debug_frame_only"), toPath: program)
            let traces = directory + "/traces"
            try FileManager.default.createDirectory(atPath: traces, withIntermediateDirectories: true)
            let running = try BackgroundProcess(program, [directory + "/go"],
                                                environment: ["LD_PRELOAD": Harness.shim, "HEAPGATE_OUT": traces])
            try running.waitForLine("ready")
            var bytes = try Data(contentsOf: URL(fileURLWithPath: program))
            let id = try SummaryInputTests.buildID(ofFileAt: program)
            let idBytes = Data(stride(from: 0, to: id.count, by: 2).map {
                UInt8(id[id.index(id.startIndex, offsetBy: $0)..<id.index(id.startIndex, offsetBy: $0 + 2)], radix: 16)!
            })
            let at = try #require(bytes.range(of: idBytes), "build id \(id) not found in the file")
            bytes[at.upperBound - 1] ^= 0xff
            try FileManager.default.removeItem(atPath: program)
            try bytes.write(to: URL(fileURLWithPath: program))
            #expect(try SummaryInputTests.buildID(ofFileAt: program) != id)
            FileManager.default.createFile(atPath: directory + "/go", contents: nil)
            #expect(running.terminate(with: 0) == 0)
            let (summary, report) = try Harness.summary(Harness.traceFiles(in: traces), flags: ["--show-leak-kinds=all"])
            #expect(summary.status == 0, "\(summary.stderr)")
            let record = try #require(report?.processes.first?.records.first { $0.bytes == 41 }, "\(summary.stderr)")
            #expect(record.frames.count >= 5, "\(record.frames.map(\.address)): \(summary.stderr)")
        }
    }

    /// A plugin rebuilt and loaded again by the same path, where its earlier version was (other
    /// code, other frame sizes, the same first address, end and name): its `.debug_frame` was
    /// taken to be the earlier version's, already read, and the stack ended after
    /// `plugin_inner`. memcheck shows the whole stack.
    @Test func aReloadedPluginsDebugFrameIsItsOwn() throws {
        try Harness.withTemporaryDirectory { directory in
            let (outcome, report) = try Harness.run([
                Harness.fixture("debug_frame_plugins"), "reload", directory + "/plugin.so",
                Harness.fixture("libdebug_frame_plugin1.so"), Harness.fixture("libdebug_frame_plugin2.so"),
            ])
            #expect(outcome.status == 0, "\(outcome.stderr)")
            #expect(outcome.stdoutText == "same address\n", "the test needs the second plugin where the first was")
            let process = try #require(report.processes.first)
            let record = try #require(process.records.first { $0.bytes == 42 }, "\(outcome.stderr)")
            #expect(record.frames.count == 6, "\(record.frames.map(\.address)): \(outcome.stderr)")
            #expect(record.frames.dropFirst(4).map { "\($0.function ?? "???") \($0.file ?? "?"):\($0.line ?? 0)" } == [
                "load_and_leak debug_frame_plugins.c:50", "main debug_frame_plugins.c:64",
            ], "\(outcome.stderr)")
        }
    }

    /// A library loaded by a relative path keeps that path as its name; once the program had
    /// changed directory the name found no file, and the stack ended after the first function
    /// described only in `.debug_frame`. The kernel's name for the mapping is used instead.
    @Test func debugFrameOfALibraryLoadedByARelativePathAfterChdir() throws {
        let (outcome, report) = try Harness.run([
            Harness.fixture("debug_frame_plugins"), "chdir", Harness.build + "/fixtures",
        ])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        let process = try #require(report.processes.first)
        let record = try #require(process.records.first { $0.bytes == 31 }, "\(outcome.stderr)")
        #expect(record.frames.dropFirst().prefix(4).map { "\($0.function ?? "???") \($0.file ?? "?"):\($0.line ?? 0)" } == [
            "plugin_inner libdebug_frame_plugin.c:23", "plugin_middle libdebug_frame_plugin.c:31",
            "plugin_leak libdebug_frame_plugin.c:39", "main debug_frame_plugins.c:75",
        ], "\(outcome.stderr)")
    }

    /// Runs a fixture under `heapgate run` with HEAPGATE_UNWIND=verify: it must exit 0 with no
    /// capture where the fast unwinder and unw_backtrace differ.
    private static func runVerifyingEveryCapture(_ fixture: String,
                                                 sourceLocation: SourceLocation = #_sourceLocation) throws -> Report {
        let (outcome, report) = try Harness.run([Harness.fixture(fixture)], environment: ["HEAPGATE_UNWIND": "verify"])
        #expect(outcome.status == 0, sourceLocation: sourceLocation)
        let mismatches = outcome.stderr.split(separator: "\n").filter { $0.contains("unwind mismatch") }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(5).joined(separator: "\n"))", sourceLocation: sourceLocation)
        return report
    }
}
