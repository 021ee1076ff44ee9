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
            "inner debug_frame_only.c:15", "middle debug_frame_only.c:22", "outer debug_frame_only.c:29",
            "main debug_frame_only.c:35",
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
