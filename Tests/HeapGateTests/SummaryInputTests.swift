import Foundation
import Testing

/// What `heapgate summary` is given besides trace files: files that are not regular (a FIFO
/// never ends), the same trace twice, directories that hold an unreadable trace beside good ones.
@Suite("What heapgate summary is given")
struct SummaryInputTests {
    /// `heapgate summary` under `timeout`, so that a hang fails the test (status 124) instead
    /// of stopping the suite.
    static func summaryWithTimeout(_ paths: [String], flags: [String] = []) throws -> Harness.Outcome {
        try Harness.execute("/usr/bin/timeout", ["20", Harness.heapgate, "summary"] + flags + paths)
    }

    static func makeFIFO(at path: String) throws {
        try #require(mkfifo(path, 0o600) == 0, "mkfifo \(path)")
    }

    // MARK: Files that are not regular

    /// A FIFO with no writer: open(2) waited for one for ever. It is opened without blocking
    /// and refused, as a directory is.
    @Test func fifoGivenAsATraceIsRefused() throws {
        try Harness.withTemporaryDirectory { directory in
            let fifo = directory + "/fifo.trace"
            try Self.makeFIFO(at: fifo)
            let outcome = try Self.summaryWithTimeout([fifo])
            #expect(outcome.status == 2, "exit \(outcome.status) (124: it hung)")
            #expect(outcome.stderrLines == ["heapgate: \(fifo): cannot open trace: a FIFO, not a regular file"])
        }
    }

    /// A FIFO named like a trace in a directory given to summary hung it the same way.
    @Test func fifoInADirectoryDoesNotHang() throws {
        try Harness.withTemporaryDirectory { directory in
            _ = try TraceInputTests.traceLeakBasic(into: directory)
            let fifo = directory + "/heapgate.1.trace"
            try Self.makeFIFO(at: fifo)
            let outcome = try Self.summaryWithTimeout([directory])
            #expect(outcome.status == 2, "exit \(outcome.status) (124: it hung)")
            #expect(outcome.stderrLines.contains("heapgate: \(fifo): cannot open trace: a FIFO, not a regular file"),
                    "\(outcome.stderr)")
        }
    }

    // MARK: The same trace twice

    /// A trace named twice (as given, through a symbolic link, and in its directory) was
    /// reported once for each name, and counted for the gate as many times. It is one process.
    @Test func sameTraceGivenTwiceIsReportedOnce() throws {
        try Harness.withTemporaryDirectory { directory in
            let trace = try TraceInputTests.traceLeakBasic(into: directory)
            let link = directory + "/link.trace"
            try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: trace)
            let (outcome, report) = try Harness.summary([trace, link, directory, trace])
            #expect(outcome.status == 0, "\(outcome.stderr)")
            #expect(report?.processes.count == 1)
            let process = try #require(report?.processes.first)
            #expect(HeapFigures(process) == TraceInputTests.leakBasic)
            #expect(outcome.stderrLines.filter { $0.hasSuffix("HEAP SUMMARY:") }.count == 1, "\(outcome.stderr)")
        }
    }
}
