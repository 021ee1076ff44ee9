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

    /// A FIFO named like a trace in a directory given to summary hung it the same way. Like
    /// any unreadable file in a directory, it is now a warning, and the other traces are reported.
    @Test func fifoInADirectoryDoesNotHang() throws {
        try Harness.withTemporaryDirectory { directory in
            _ = try TraceInputTests.traceLeakBasic(into: directory)
            let fifo = directory + "/heapgate.1.trace"
            try Self.makeFIFO(at: fifo)
            let outcome = try Self.summaryWithTimeout([directory])
            #expect(outcome.status == 2, "exit \(outcome.status) (124: it hung)")
            #expect(outcome.stderrLines.first == "heapgate: warning: \(fifo): cannot open trace: a FIFO, not a regular file",
                    "\(outcome.stderr)")
            #expect(outcome.stderr.contains("in use at exit: 228 bytes in 4 blocks"), "\(outcome.stderr)")
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

    // MARK: Directories with a trace that cannot be read

    /// One unreadable file among the traces of a directory stopped `summary` from reporting
    /// any, where `heapgate run` warns and reports the rest. Now summary does the same, and
    /// still exits with 2, since a trace could not be read.
    @Test func unreadableTraceInADirectoryIsAWarning() throws {
        try Harness.withTemporaryDirectory { directory in
            _ = try TraceInputTests.traceLeakBasic(into: directory)
            let text = directory + "/heapgate.99.trace"
            try Data("not a trace, just some text\n".utf8).write(to: URL(fileURLWithPath: text))
            try Data().write(to: URL(fileURLWithPath: directory + "/heapgate.98.trace"))
            let (outcome, report) = try Harness.summary([directory], flags: ["--error-exitcode=9"])
            #expect(outcome.status == 2)
            #expect(Array(outcome.stderrLines.prefix(2)) == [
                "heapgate: warning: process 98 ended before its trace began (an empty trace file): nothing to report for it",
                "heapgate: warning: \(text): not a heapgate trace (bad magic number)",
            ])
            let process = try #require(report?.processes.first)
            #expect(report?.processes.count == 1)
            #expect(process.complete)
            #expect(HeapFigures(process) == TraceInputTests.leakBasic)
            #expect(process.leaks?.definite == Report.Amount(bytes: 228, blocks: 4))
            #expect(outcome.stderr.contains("==\(process.pid)==    definitely lost: 228 bytes in 4 blocks\n"))
        }
    }

    /// A bad trace named on the command line stays an error: no report at all.
    @Test func unreadableTraceNamedExplicitlyIsAnError() throws {
        try Harness.withTemporaryDirectory { directory in
            let trace = try TraceInputTests.traceLeakBasic(into: directory)
            let text = directory + "/heapgate.99.trace"
            try Data("not a trace, just some text\n".utf8).write(to: URL(fileURLWithPath: text))
            for paths in [[trace, text], [directory, text]] {
                let (outcome, report) = try Harness.summary(paths)
                #expect(outcome.status == 2)
                #expect(outcome.stderrLines == ["heapgate: \(text): not a heapgate trace (bad magic number)"], "\(paths)")
                #expect(report == nil)
            }
        }
    }

    /// A directory whose traces are all unreadable: the warnings, no report, exit status 2.
    @Test func directoryWithNoReadableTrace() throws {
        try Harness.withTemporaryDirectory { directory in
            let text = directory + "/heapgate.99.trace"
            try Data("not a trace, just some text\n".utf8).write(to: URL(fileURLWithPath: text))
            let (outcome, report) = try Harness.summary([directory])
            #expect(outcome.status == 2)
            #expect(outcome.stderrLines == ["heapgate: warning: \(text): not a heapgate trace (bad magic number)",
                                            "heapgate: \(directory): no readable heapgate trace in this directory"])
            #expect(report == nil)
        }
    }
}
