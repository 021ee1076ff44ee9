import Foundation
import Testing
@testable import HeapGate

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

    /// A directory the user may not list (mode 0700, another user's): its listing failed
    /// silently, and the error said the directory had no traces in it, which it has. Found by
    /// fuzzing `heapgate summary` (run as nobody). Needs root, to give the directory away.
    @Test(.enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"),
                   "needs root and setpriv (util-linux)"))
    func directoryThatCannotBeListedIsAnError() throws {
        try Harness.withTemporaryDirectory { directory in
            #expect(chmod(directory, 0o755) == 0)
            let unlisted = directory + "/traces"
            try FileManager.default.createDirectory(atPath: unlisted, withIntermediateDirectories: false)
            _ = try TraceInputTests.traceLeakBasic(into: unlisted)
            #expect(chmod(unlisted, 0o700) == 0)
            // heapgate copied where nobody may run it: the checkout may not be.
            let heapgate = directory + "/heapgate"
            try FileManager.default.copyItem(atPath: Harness.heapgate, toPath: heapgate)
            let outcome = try Harness.execute("/usr/bin/setpriv", [
                "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/timeout", "20", heapgate, "summary", unlisted,
            ])
            #expect(outcome.status == 2)
            #expect(outcome.stderrLines == ["heapgate: \(unlisted): cannot list this directory: permission denied"])
        }
    }

    // MARK: A program rebuilt since its trace

    static let firstBuild = """
        #include <stdlib.h>
        void *first_leak(void) { return malloc(40); }
        int main(void) { void *p = first_leak(); p = 0; return 0; }
        """

    /// Another program at the same path: other functions where `first_leak` and `main` were.
    static let secondBuild = """
        #include <stdio.h>
        #include <stdlib.h>
        static int pad(int x) { return x * 3; }
        int other_function(int x) { printf("%d\\n", pad(x)); return pad(x) + 1; }
        void *renamed_leak(void) { return malloc(40); }
        int main(void) { void *p = renamed_leak(); p = 0; return other_function(0) - 1; }
        """

    static func buildID(ofFileAt path: String) throws -> String {
        let descriptor = open(path, O_RDONLY)
        try #require(descriptor >= 0, "open \(path)")
        defer { close(descriptor) }
        return hexString(try #require(LibDW.elfBuildID(descriptor)))
    }

    /// A trace read after its program was rebuilt (`make` between the run and `heapgate
    /// summary`) was symbolized with the new file: its leak showed as allocated in
    /// `frame_dummy`, called from `pad (b.c:3)`, neither of which the traced program had. The
    /// trace records each file's build id; a file that no longer has it is not read for names,
    /// its frames are `???`, and one warning says why. Frames an earlier report resolved, kept
    /// by build id in the frame cache, are still named.
    @Test(.enabled(if: SymbolizationTests.SymbolizerTests.hasCompiler))
    func programRebuiltSinceTheTraceIsNotMisnamed() throws {
        try Harness.withTemporaryDirectory { directory in
            let program = try SymbolizationTests.Program(source: Self.firstBuild, flags: ["-g", "-O0"])
            let binary = Harness.realPath(program.binary)
            let traces = directory + "/traces"
            try FileManager.default.createDirectory(atPath: traces, withIntermediateDirectories: true)
            #expect(try Harness.trace([binary], into: traces).status == 0)
            let cache = directory + "/cache"
            let summary = { (cache: String) throws -> (Harness.Outcome, Report?) in
                let json = directory + "/report.json"
                let outcome = try Harness.execute(Harness.heapgate, ["summary", "--json=\(json)", traces],
                                                  environment: ["HEAPGATE_CACHE": cache])
                return (outcome, try Harness.decodeReport(atPath: json))
            }
            let leakFrames = { (report: Report?) in
                report?.processes.first?.records.first?.frames.dropFirst().map { "\($0.function ?? "???") \($0.line ?? 0)" } ?? []
            }
            // Reported once before the rebuild, with a cache: the frames are kept by build id.
            let (before, reportBefore) = try summary(cache)
            #expect(before.status == 0 && before.stderrLines.allSatisfy { !$0.hasPrefix("heapgate:") }, "\(before.stderr)")
            #expect(leakFrames(reportBefore) == ["first_leak 2", "main 3"])
            let recorded = try Self.buildID(ofFileAt: binary)

            let second = binary + ".c2"
            try Self.secondBuild.write(toFile: second, atomically: true, encoding: .utf8)
            try SymbolizationTests.Program.run("cc", ["-g", "-O0", "-x", "c", "-o", binary, second])
            let now = try Self.buildID(ofFileAt: binary)
            try #require(now != recorded)

            let (unnamed, reportUnnamed) = try summary("off")
            #expect(unnamed.status == 0)
            #expect(unnamed.stderrLines.first == "heapgate: warning: \(binary) is not the file the trace recorded (build id"
                + " \(recorded.prefix(12))… then, \(now.prefix(12))… now: rebuilt or replaced since), so its frames are shown"
                + " as ???", "\(unnamed.stderr)")
            #expect(leakFrames(reportUnnamed).prefix(2) == ["??? 0", "??? 0"], "\(unnamed.stderr)")
            #expect(unnamed.stderr.contains("by 0x") && unnamed.stderr.contains(": ??? (in \(binary))"), "\(unnamed.stderr)")

            let (kept, reportKept) = try summary(cache)
            #expect(kept.status == 0 && kept.stderrLines.allSatisfy { !$0.hasPrefix("heapgate:") }, "\(kept.stderr)")
            #expect(leakFrames(reportKept) == ["first_leak 2", "main 3"])
        }
    }

    /// Copies a fixture into `directory` and traces the copy into `directory`/traces, so that a
    /// test may change the program afterwards.
    static func traceACopy(of fixture: String, in directory: String) throws -> (binary: String, traces: String) {
        let binary = directory + "/" + fixture
        try FileManager.default.copyItem(atPath: Harness.fixture(fixture), toPath: binary)
        let traces = directory + "/traces"
        try FileManager.default.createDirectory(atPath: traces, withIntermediateDirectories: true)
        #expect(try Harness.trace([binary], into: traces).status == 0)
        return (binary, traces)
    }

    /// A program deleted since its trace was recorded (a test binary in a build directory that
    /// `make clean` emptied): its frames were shown as ??? with no word of why. Now a warning
    /// says the file is gone, and frames an earlier report kept for its build id still name it.
    @Test func programDeletedSinceTheTraceIsSaidOrNamedFromKeptFrames() throws {
        try Harness.withTemporaryDirectory { directory in
            let (binary, traces) = try Self.traceACopy(of: "leak_basic", in: directory)
            let summary = { (cache: String) throws -> (Harness.Outcome, [String]) in
                let json = directory + "/report.json"
                let outcome = try Harness.execute(Harness.heapgate, ["summary", "--json=\(json)", traces],
                                                  environment: ["HEAPGATE_CACHE": cache])
                let record = try Harness.decodeReport(atPath: json)?.processes.first?.records.first { $0.bytes == 4 }
                return (outcome, record?.frames.dropFirst().prefix(2).map { "\($0.function ?? "???") \($0.line ?? 0)" } ?? [])
            }
            let cache = directory + "/cache"
            let (before, framesBefore) = try summary(cache)
            #expect(before.status == 0 && before.stderrLines.allSatisfy { !$0.hasPrefix("heapgate:") }, "\(before.stderr)")
            #expect(framesBefore == ["leak_calloc 38", "main 66"], "\(before.stderr)")

            try FileManager.default.removeItem(atPath: binary)
            let (unnamed, framesUnnamed) = try summary("off")
            #expect(unnamed.status == 0)
            #expect(unnamed.stderrLines.first == "heapgate: warning: \(Harness.realPath(directory))/leak_basic is gone"
                + " (deleted or moved since the trace was recorded), so its frames are shown as ???", "\(unnamed.stderr)")
            #expect(framesUnnamed == ["??? 0", "??? 0"], "\(unnamed.stderr)")

            let (kept, framesKept) = try summary(cache)
            #expect(kept.status == 0 && kept.stderrLines.allSatisfy { !$0.hasPrefix("heapgate:") }, "\(kept.stderr)")
            #expect(framesKept == ["leak_calloc 38", "main 66"], "\(kept.stderr)")
        }
    }

    /// The same without a build id (clang's default link where it was not configured to ask
    /// for one): the trace could not tell the rebuild from the program it ran, and named the
    /// leak's frames `mix_in`, `mix_in`, the rebuild's function at both addresses, with no
    /// warning. The file's loadable segments, which the trace records, tell it now. A file
    /// stripped since the run is still the same program, and still named.
    @Test func programWithoutBuildIDRebuiltSinceTheTraceIsNotMisnamed() throws {
        try Harness.withTemporaryDirectory { directory in
            let (binary, traces) = try Self.traceACopy(of: "no_build_id", in: directory)
            let summary = { () throws -> (Harness.Outcome, [String]) in
                let json = directory + "/report.json"
                let outcome = try Harness.execute(Harness.heapgate, ["summary", "--json=\(json)", traces],
                                                  environment: ["HEAPGATE_CACHE": "off"])
                let report = try Harness.decodeReport(atPath: json)
                let frames = report?.processes.first?.records.first?.frames.dropFirst().prefix(2)
                    .map { "\($0.function ?? "???") \($0.line ?? 0)" } ?? []
                return (outcome, frames)
            }

            try SymbolizationTests.Program.run("strip", ["--strip-debug", binary])
            let (stripped, strippedFrames) = try summary()
            #expect(stripped.status == 0 && stripped.stderrLines.allSatisfy { !$0.hasPrefix("heapgate:") }, "\(stripped.stderr)")
            #expect(strippedFrames == ["lost_block 0", "main 0"], "\(stripped.stderr)")

            try FileManager.default.removeItem(atPath: binary)
            try FileManager.default.copyItem(atPath: Harness.fixture("no_build_id_rebuilt"), toPath: binary)
            let (rebuilt, rebuiltFrames) = try summary()
            #expect(rebuilt.status == 0)
            #expect(rebuilt.stderrLines.first == "heapgate: warning: \(Harness.realPath(binary)) is not the file the trace"
                + " recorded (no build id then; its loadable segments differ from the ones recorded: rebuilt or replaced"
                + " since), so its frames are shown as ???", "\(rebuilt.stderr)")
            #expect(rebuiltFrames == ["??? 0", "??? 0"], "\(rebuilt.stderr)")
        }
    }
}
