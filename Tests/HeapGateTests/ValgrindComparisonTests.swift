import Foundation
import Testing

/// heapgate and valgrind memcheck, run on the same program the same way, agree on every
/// process's HEAP SUMMARY: bytes and blocks in use at exit, allocs, frees and bytes allocated.
///
/// valgrind runs with --run-libc-freeres=no --run-cxx-freeres=no. By default, before its
/// summary, valgrind calls __libc_freeres and __gnu_cxx::__freeres, which free glibc's and
/// libstdc++'s own blocks (stdio buffers, finished threads' DTVs, ld.so's dlopen data, the
/// emergency exception pool). heapgate reports what is really in use when the process exits;
/// it cannot free those blocks itself, because an in-process tool reports from an exit handler
/// and stdio is flushed after that, so freeing the stdout buffer there would break the
/// program's own output.
///
/// Both runs are started from the fixture directory with the same arguments, and in both
/// stdout and stderr are pipes (Harness.execute), so glibc sizes the stdout buffer the same
/// (4,096 bytes) in both.
@Suite("Same figures as valgrind", .enabled(if: Harness.valgrindAvailable, "valgrind is not installed at /usr/bin/valgrind"))
struct ValgrindComparisonTests {
    static let commands: [[String]] = [
        ["leak_basic"],
        ["entry_points", "no-pvalloc"],  // valgrind 3.19 aborts at pvalloc
        ["realloc_chain"],
        ["fork_child"],
        ["fork_child", "exit"],
        ["exec_child", "./leak_basic"],
        ["dlopen_leak"],
        ["deep_stack"],
        ["exit_status"],
        ["exit_status", "quick", "5"],
        ["destructor_frees"],
        ["signal_stack"],
        ["valgrind_names"],
        ["sandboxed", "prctl", "deny"],  // valgrind 3.19 refuses seccomp(2) itself
        ["leak_cpp"],
        ["clean_c"],
        ["clean_cpp"],
        ["leak_rust"],
        ["clean_rust"],
        ["leak_swift"],
        ["clean_swift"],
    ]

    @Test(arguments: commands)
    func sameHeapSummaries(_ command: [String]) throws {
        let fixtures = Harness.fixture("")
        let argv = ["./" + command[0]] + command.dropFirst()

        let valgrind = try Harness.withTemporaryDirectory { logs -> [HeapFigures] in
            let outcome = try Harness.execute("/usr/bin/valgrind", [
                "--trace-children=yes", "--child-silent-after-fork=no",
                "--run-libc-freeres=no", "--run-cxx-freeres=no",
                "--log-file=\(logs)/vg.%p.log",
            ] + argv, directory: fixtures)
            let names = try FileManager.default.contentsOfDirectory(atPath: logs).filter { $0.hasSuffix(".log") }
            try #require(!names.isEmpty, "valgrind wrote no log (exit \(outcome.status)): \(outcome.stderr)")
            return try names.compactMap { try Self.heapSummary(inLog: logs + "/" + $0) }
        }

        let (outcome, report) = try Harness.runReport(argv, directory: fixtures)
        let written = try #require(report, "heapgate wrote no report (exit \(outcome.status)): \(outcome.stderr)")
        let heapgate = written.processes.map(HeapFigures.init)

        #expect(!valgrind.isEmpty)
        #expect(heapgate.sorted() == valgrind.sorted())
    }

    /// What `--gen-suppressions=all` writes under memcheck (a suppression for every block)
    /// suppresses every block under heapgate, with the same --num-callers.
    /// - valgrind_names: memcheck names a frame by the shortest of a function's names (`strdup`,
    ///   not libdw's `__GI___strdup`), a library by its file (`libversioned.so.1.2.3`, not the
    ///   soname link the loader opened), realloc(NULL, n) `malloc`, and an inlined frame by its
    ///   plain name (`_IO_doallocbuf` in stdout's buffer, not `__GI__IO_doallocbuf`), its
    ///   stacks through `setenv` have its wrapper's frame, and a posix_memalign block has its
    ///   `memalign` above `posix_memalign`. Before heapgate named and viewed them so, two of the
    ///   three leaks, the buffer and setenv's blocks stayed; the posix_memalign block stayed
    ///   until 2026-11-24.
    /// - leak_cpp at --num-callers=3: memcheck's stacks start at `operator new`, one frame above
    ///   heapgate's `malloc`; its suppressions name three frames from there, which heapgate's
    ///   records hold only since they keep one more address under `operator new`.
    @Test(arguments: [
        // Four leaks (17 + 40 + 24 + 48), stdout's buffer (4,096), and setenv's three blocks
        // (variable 17, array 16, tree node 24): 4,282 bytes.
        SuppressionCase(program: "valgrind_names", numCallers: 12, records: 8, blocks: 8, bytes: 4282),
        // 32 + 40, stdout's buffer 4,096, libstdc++'s emergency pool 72,704.
        SuppressionCase(program: "leak_cpp", numCallers: 3, records: 4, blocks: 4, bytes: 76872),
        // Eight leaks and four threads' DTVs, whose first frame is clone under memcheck (it
        // refuses clone3) and clone3 here; the DTVs are 32 bytes larger here (ValgrindComparison
        // of HEAP SUMMARY leaves `threads` out for that).
        SuppressionCase(program: "threads", numCallers: 12, records: 2, blocks: 12, bytes: 1472),
    ])
    func suppressionsValgrindWroteApply(_ test: SuppressionCase) throws {
        let (program, numCallers) = (test.program, test.numCallers)
        let fixtures = Harness.fixture("")
        try Harness.withTemporaryDirectory { directory in
            let log = directory + "/vg.log"
            _ = try Harness.execute("/usr/bin/valgrind", [
                "--leak-check=full", "--show-leak-kinds=all", "--gen-suppressions=all", "--num-callers=\(numCallers)",
                "--run-libc-freeres=no", "--run-cxx-freeres=no", "--log-file=\(log)", "./" + program,
            ], directory: fixtures)
            let text = try String(contentsOfFile: log, encoding: .utf8)
                .split(separator: "\n", omittingEmptySubsequences: false)
                .map { String($0).replacing(#/^==\d+== ?/#, with: "") }
            var lines: [String] = [], inBlock = false
            for line in text {
                if line == "{" { inBlock = true }
                if inBlock { lines.append(line) }
                if line == "}" { inBlock = false }
            }
            #expect(lines.filter { $0 == "{" }.count == test.records, "\(text.joined(separator: "\n"))")
            try lines.joined(separator: "\n").write(toFile: directory + "/vg.supp", atomically: true, encoding: .utf8)

            let (outcome, report) = try Harness.runReport(
                ["./" + program],
                flags: ["--default-suppressions=no", "--suppressions=\(directory)/vg.supp", "--num-callers=\(numCallers)"],
                directory: fixtures)
            let process = try #require(report?.processes.first, "exit \(outcome.status): \(outcome.stderr)")
            let leaks = try #require(process.leaks)
            #expect(leaks.definite == Report.Amount(bytes: 0, blocks: 0))
            #expect(leaks.reachable == Report.Amount(bytes: 0, blocks: 0))
            #expect(leaks.suppressed == Report.Amount(bytes: test.bytes, blocks: test.blocks))
        }
    }

    /// The blocks `--gen-suppressions=all` prints, as they stand in the report: lines from `{`
    /// to `}` taken verbatim, as a user copies them into a suppressions file.
    static func generatedBlocks(_ report: String) -> [String] {
        var blocks: [String] = [], block: [String]?
        for line in report.split(separator: "\n").map(String.init) {
            if line == "{" { block = [] }
            block?.append(line)
            if line == "}", let done = block { blocks.append(done.joined(separator: "\n")); block = nil }
        }
        return blocks
    }

    /// `--gen-suppressions=all` prints what valgrind prints, where valgrind prints it: each block
    /// after its loss record, without the ==PID== prefix (which made a pasted block unreadable,
    /// to heapgate as to valgrind), ending at `main` (not `(below main)` after it). Pasted back,
    /// the blocks suppress every leak. (leak_cpp's `new[]` block names `_Znwm` where memcheck's
    /// names `_Znam`: libstdc++'s `operator new[]` tail-calls `operator new`, so heapgate's
    /// stack never holds it; the matcher takes either. Its other block is valgrind's.)
    @Test(arguments: [(["leak_basic"], 3), (["leak_cpp"], 1)])
    func generatedSuppressionsAreValgrindsAndPasteBack(_ command: [String], sameAsValgrind: Int) throws {
        let fixtures = Harness.fixture("")
        let argv = ["./" + command[0]] + command.dropFirst()
        let ours = try Harness.execute(Harness.heapgate, ["run", "--gen-suppressions=all", "--"] + argv, directory: fixtures)
        let valgrind = try Harness.execute("/usr/bin/valgrind", ["--leak-check=full", "--gen-suppressions=all",
                                                                 "--run-libc-freeres=no", "--run-cxx-freeres=no"] + argv,
                                           directory: fixtures)
        let blocks = Self.generatedBlocks(ours.stderr)
        #expect(!blocks.isEmpty, "\(ours.stderr)")
        #expect(Set(blocks).intersection(Self.generatedBlocks(valgrind.stderr)).count == sameAsValgrind,
                "heapgate: \(blocks)\nvalgrind: \(Self.generatedBlocks(valgrind.stderr))")
        try Harness.withTemporaryDirectory { directory in
            try blocks.joined(separator: "\n").write(toFile: directory + "/pasted.supp", atomically: true, encoding: .utf8)
            let (outcome, report) = try Harness.runReport(argv, flags: ["--suppressions=\(directory)/pasted.supp"], directory: fixtures)
            let leaks = try #require(report?.processes.first?.leaks, "exit \(outcome.status): \(outcome.stderr)")
            #expect(leaks.definite == Report.Amount(bytes: 0, blocks: 0) && leaks.possible == Report.Amount(bytes: 0, blocks: 0))
            #expect(leaks.suppressed.blocks > 0)
        }
    }

    struct SuppressionCase: Sendable, CustomTestStringConvertible {
        var program: String
        var numCallers: Int
        /// Loss records under memcheck: the suppressions its --gen-suppressions=all writes.
        var records: Int
        /// Blocks in use at exit under heapgate, all of which those suppressions cover.
        var blocks: UInt64
        var bytes: UInt64
        var testDescription: String { "\(program) --num-callers=\(numCallers)" }
    }

    /// The HEAP SUMMARY of one valgrind log, or nil for a log without one (a process image that
    /// was replaced by exec before it could exit).
    static func heapSummary(inLog path: String) throws -> HeapFigures? {
        let log = try String(contentsOfFile: path, encoding: .utf8)
        let inUse = log.firstMatch(of: #/in use at exit: ([\d,]+) bytes in ([\d,]+) blocks/#)
        let total = log.firstMatch(of: #/total heap usage: ([\d,]+) allocs, ([\d,]+) frees, ([\d,]+) bytes allocated/#)
        if inUse == nil, total == nil { return nil }
        let use = try #require(inUse, "\(path) has a total heap usage line but no in-use line")
        let usage = try #require(total, "\(path) has an in-use line but no total heap usage line")
        func number(_ text: Substring) throws -> UInt64 {
            try #require(UInt64(text.replacingOccurrences(of: ",", with: "")), "not a number: \(text)")
        }
        return HeapFigures(bytes: try number(use.1), blocks: try number(use.2),
                           allocs: try number(usage.1), frees: try number(usage.2), bytesAllocated: try number(usage.3))
    }
}
