import Foundation
import Testing

/// Exact HEAP SUMMARY figures and allocating frames for the fixtures, under `heapgate run`.
/// The figures are valgrind's with `--run-libc-freeres=no --run-cxx-freeres=no`
/// (Tests/Fixtures/EXPECTED.md): heapgate reports what is really in use when the process
/// exits, while valgrind by default frees glibc's and libstdc++'s own blocks first.
@Suite("Heap summary of fixtures")
struct HeapSummaryTests {
    struct Expectation: CustomTestStringConvertible, Sendable {
        var fixture: [String]
        var inUse: (bytes: UInt64, blocks: UInt64)
        var allocs: UInt64, frees: UInt64, bytesAllocated: UInt64
        /// (allocating function, bytes, blocks, file, line, first frame)
        var leaks: [(function: String, bytes: UInt64, blocks: UInt64, file: String, line: Int, entry: String)]
        var testDescription: String { fixture.joined(separator: " ") }
    }

    static let expectations: [Expectation] = [
        Expectation(fixture: ["leak_basic"], inUse: (228, 4), allocs: 7, frees: 3, bytesAllocated: 676, leaks: [
            ("leak_name", 24, 1, "leak_basic.c", 24, "malloc"),
            ("leak_twice", 200, 2, "leak_basic.c", 31, "malloc"),
            ("leak_calloc", 4, 1, "leak_basic.c", 38, "calloc"),
        ]),
        // Every interposed entry point leaks one block; the first frame names the entry point.
        Expectation(fixture: ["entry_points"], inUse: (4_682, 9), allocs: 30, frees: 21, bytesAllocated: 67_122_549, leaks: [
            ("leak_malloc", 11, 1, "entry_points.c", 164, "malloc"),
            ("leak_calloc", 21, 1, "entry_points.c", 170, "calloc"),
            ("leak_realloc", 33, 1, "entry_points.c", 178, "realloc"),
            ("leak_reallocarray", 45, 1, "entry_points.c", 184, "reallocarray"),
            ("leak_posix_memalign", 100, 1, "entry_points.c", 191, "posix_memalign"),
            ("leak_aligned_alloc", 256, 1, "entry_points.c", 197, "aligned_alloc"),
            ("leak_memalign", 50, 1, "entry_points.c", 204, "memalign"),
            ("leak_valloc", 70, 1, "entry_points.c", 211, "valloc"),
            ("leak_pvalloc", 4_096, 1, "entry_points.c", 218, "pvalloc"),
        ]),
        Expectation(fixture: ["realloc_chain"], inUse: (4_096, 1), allocs: 4_096, frees: 4_095, bytesAllocated: 8_390_656, leaks: [
            ("grow_buffer", 4_096, 1, "realloc_chain.c", 23, "realloc"),
        ]),
        Expectation(fixture: ["exit_status", "7"], inUse: (100, 1), allocs: 1, frees: 0, bytesAllocated: 100, leaks: [
            ("hold_block", 100, 1, "exit_status.c", 23, "malloc"),
        ]),
        // quick_exit runs its own handlers and then glibc's internal _exit, past the shim's.
        Expectation(fixture: ["exit_status", "quick", "5"], inUse: (100, 1), allocs: 1, frees: 0, bytesAllocated: 100, leaks: [
            ("hold_block", 100, 1, "exit_status.c", 23, "malloc"),
        ]),
        // 2,000 threads one after another, each starting on the last one's unwinder mapping and
        // stack; the one block in use besides the leaks is the cached stack's DTV (valgrind:
        // 272 bytes, see threads()).
        Expectation(fixture: ["thread_churn"], inUse: (1_584, 41), allocs: 20_041, frees: 20_000, bytesAllocated: 1_041_584, leaks: [
            ("path_a", 480, 20, "thread_churn.c", 34, "malloc"),
            ("path_b", 800, 20, "thread_churn.c", 36, "malloc"),
        ]),
        Expectation(fixture: ["clean_c"], inUse: (0, 0), allocs: 12, frees: 12, bytesAllocated: 480, leaks: []),
        // 76,800 of the bytes in use are libstdc++'s emergency exception pool and the stdout buffer.
        Expectation(fixture: ["leak_cpp"], inUse: (76_872, 4), allocs: 6, frees: 2, bytesAllocated: 77_313, leaks: [
            ("make_widget()", 32, 1, "leak_cpp.cpp", 29, "malloc"),
            ("make_array()", 40, 1, "leak_cpp.cpp", 35, "malloc"),
        ]),
        Expectation(fixture: ["clean_cpp"], inUse: (72_704, 1), allocs: 22, frees: 21, bytesAllocated: 74_356, leaks: []),
        Expectation(fixture: ["leak_rust"], inUse: (656, 3), allocs: 13, frees: 10, bytesAllocated: 4_156, leaks: [
            ("leak_rust::leak_string", 48, 1, "leak_rust.rs", 16, "malloc"),
            ("leak_rust::leak_box", 64, 1, "leak_rust.rs", 23, "malloc"),
        ]),
        // The Swift runtime keeps about 79 KB of its own; the program leaks one 32-byte object.
        // Its compiler-made initializer has line 0 in the line table, which memcheck shows as
        // `(leak_swift.swift:0)`: not `(in …/leak_swift)`, as if it had no line information.
        Expectation(fixture: ["leak_swift"], inUse: (79_146, 33), allocs: 243, frees: 210, bytesAllocated: 89_821, leaks: [
            ("leak_swift.leakPayload() -> ()", 32, 1, "leak_swift.swift", 25, "malloc"),
            ("leak_swift.Payload.__allocating_init(Swift.Int, Swift.Int) -> leak_swift.Payload", 32, 1, "leak_swift.swift", 0, "malloc"),
        ]),
        Expectation(fixture: ["clean_rust"], inUse: (544, 1), allocs: 25, frees: 24, bytesAllocated: 6_220, leaks: []),
        Expectation(fixture: ["deep_stack"], inUse: (8, 1), allocs: 1, frees: 0, bytesAllocated: 8, leaks: [
            ("level_1", 8, 1, "deep_stack.c", 21, "malloc"),
        ]),
        // Runs for a second: `heapgate run` reads the mapped files' debug information while it
        // runs (after 100 ms), into the symbolizer that then names these frames.
        Expectation(fixture: ["alloc_then_sleep", "1"], inUse: (777, 4), allocs: 5, frees: 1, bytesAllocated: 1_110, leaks: [
            ("keep_one", 111, 1, "alloc_then_sleep.c", 27, "malloc"),
            ("keep_three", 666, 3, "alloc_then_sleep.c", 34, "calloc"),
        ]),
        // Sizes past 32 bits: the shim's live set keeps them apart from its 16-byte entries.
        Expectation(fixture: ["huge_block"], inUse: (4_294_967_312, 1), allocs: 3, frees: 2,
                    bytesAllocated: 8_589_934_688, leaks: []),
    ]

    @Test(arguments: expectations)
    func figuresAndFrames(_ expected: Expectation) throws {
        let (outcome, report) = try Harness.run([Harness.fixture(expected.fixture[0])] + expected.fixture.dropFirst())
        let process = try #require(report.processes.first)
        #expect(report.processes.count == 1)
        #expect(process.complete)
        #expect(process.exitStatus == Int(outcome.status))
        #expect(process.heap.inUseAtExit == Report.Amount(bytes: expected.inUse.bytes, blocks: expected.inUse.blocks))
        #expect(process.heap.allocs == expected.allocs)
        #expect(process.heap.frees == expected.frees)
        #expect(process.heap.bytesAllocated == expected.bytesAllocated)
        for leak in expected.leaks {
            let records = process.records(allocatedIn: leak.function)
            let record = try #require(records.count == 1 ? records.first : nil, "one record for \(leak.function), got \(records.count)")
            #expect(record.bytes == leak.bytes, "\(leak.function)")
            #expect(record.blocks == leak.blocks, "\(leak.function)")
            #expect(record.frames.first?.function == leak.entry, "\(leak.function)")
            #expect(record.frames.first?.module?.hasSuffix("/libheapgate.so") == true)
            let frame = try #require(record.frames.first { $0.function == leak.function })
            #expect(frame.file == leak.file, "\(leak.function)")
            #expect(frame.line == leak.line, "\(leak.function)")
        }
    }

    /// A library's destructor frees its registry but not the entry the registry held
    /// (libdestructor_frees.c). A program's libraries are finalised after the preloaded shim;
    /// heapgate reports once they have run, as memcheck does, so the free is counted and the
    /// entry, which nothing points at any more, is definitely lost. Reported from the shim's
    /// own destructor, both blocks were still in use and reachable, and no leak was found.
    @Test func libraryDestructorsRunBeforeTheReport() throws {
        let (outcome, report) = try Harness.run([Harness.fixture("destructor_frees")])
        #expect(outcome.status == 0)
        let process = try #require(report.processes.first)
        #expect(process.complete)
        #expect(HeapFigures(process) == HeapFigures(bytes: 48, blocks: 1, allocs: 2, frees: 1, bytesAllocated: 80))
        let leaks = try #require(process.leaks)
        #expect(leaks.definite == Report.Amount(bytes: 48, blocks: 1))
        #expect(leaks.reachable == Report.Amount(bytes: 0, blocks: 0))
        let record = try #require(process.records(allocatedIn: "make_entry").first)
        #expect(record.kind == "definite")
        try process.expectRecord("make_entry", bytes: 48, blocks: 1, file: "libdestructor_frees.c", line: 16,
                                 caller: ("build_registry", "libdestructor_frees.c", 23))
    }

    /// Addresses as valgrind prints them: frame 0 as recorded, a caller's one byte lower (inside
    /// the call instruction, where addr2line finds the calling line); the JSON report keeps the
    /// return address.
    @Test func callerAddressesAreInsideTheCall() throws {
        let (outcome, report) = try Harness.run([Harness.fixture("leak_basic")])
        let record = try #require(report.processes.first?.records(allocatedIn: "leak_calloc").first)
        let lines = outcome.stderr.split(separator: "\n").map(String.init)
        for (position, frame) in record.frames.prefix(3).enumerated() {
            let value = try #require(UInt64(frame.address.dropFirst(2), radix: 16))
            let shown = "0x" + String(position == 0 ? value : value - 1, radix: 16, uppercase: true) + ": "
            #expect(lines.contains { $0.contains((position == 0 ? "at " : "by ") + shown) }, "\(shown) \(outcome.stderr)")
        }
    }

    /// The text report is valgrind's layout, with the numbers grouped as valgrind groups them.
    @Test func textReportLayout() throws {
        let outcome = try Harness.execute(Harness.heapgate, ["run", "--", Harness.fixture("leak_basic")])
        let pid = try #require(outcome.stderr.firstMatch(of: #/==(\d+)== HEAP SUMMARY:/#)?.1)
        let lines = outcome.stderr.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let start = try #require(lines.firstIndex(of: "==\(pid)== HEAP SUMMARY:"))
        #expect(Array(lines[start...(start + 4)]) == [
            "==\(pid)== HEAP SUMMARY:",
            "==\(pid)==     in use at exit: 228 bytes in 4 blocks",
            "==\(pid)==   total heap usage: 7 allocs, 3 frees, 676 bytes allocated",
            "==\(pid)==",
            "==\(pid)== 4 bytes in 1 blocks are definitely lost in loss record 1 of 3",
        ])
        #expect(outcome.stderr.contains(": leak_calloc (leak_basic.c:38)"))
        #expect(outcome.stderr.contains("==\(pid)== 200 bytes in 2 blocks are definitely lost in loss record 3 of 3"))
        #expect(outcome.stderr.contains(": calloc (libheapgate.so)"))
    }

    /// The `Command:` line stays one line whatever the arguments hold, escaped as valgrind
    /// escapes it (a backslash before spaces and backslashes, `_` for control characters).
    /// Printed raw, an argument's newline started a line without the `==PID==` prefix.
    @Test func commandLineIsOneEscapedLine() throws {
        let arguments = [Harness.fixture("leak_basic"), "two words", "line\nbreak", "back\\slash", "esc\u{1B}ape", "tab\there"]
        let outcome = try Harness.execute(Harness.heapgate, ["run", "--"] + arguments)
        let pid = try #require(outcome.stderr.firstMatch(of: #/==(\d+)== HEAP SUMMARY:/#)?.1)
        let expected = "==\(pid)== Command: \(arguments[0]) two\\ words line_break back\\\\slash esc_ape tab_here"
        let lines = outcome.stderr.split(separator: "\n").map(String.init)
        #expect(lines.contains(expected), "\(outcome.stderr)")
        #expect(lines.allSatisfy { $0.hasPrefix("==\(pid)==") }, "\(outcome.stderr)")
        if Harness.valgrindAvailable {
            let valgrind = try Harness.execute("/usr/bin/valgrind", ["--leak-check=no"] + arguments)
            let theirs = try #require(valgrind.stderr.firstMatch(of: #/==\d+== (Command: [^\n]*)/#)?.1)
            #expect(expected.hasSuffix(String(theirs)), "valgrind: \(theirs)")
        }
    }

    /// Names the report takes from the program (here a library's path, shown for a frame without
    /// debug information) keep every line under the ==PID== prefix: a newline in the path
    /// started a line of its own.
    @Test func newlineInALibrarysPathStaysInItsLine() throws {
        try Harness.withTemporaryDirectory { directory in
            let folder = directory + "/dir\nname"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: Harness.fixture("libplugin.so"), toPath: folder + "/libplugin.so")
            let strip = try Harness.execute("/usr/bin/strip", ["--strip-all", folder + "/libplugin.so"])
            try #require(strip.status == 0, "\(strip.stderr)")
            let outcome = try Harness.execute(Harness.heapgate, ["run", "--", Harness.fixture("dlopen_leak"), folder + "/libplugin.so"],
                                              environment: ["HEAPGATE_CACHE": "off"])
            #expect(outcome.status == 0, "\(outcome.stderr)")
            #expect(outcome.stderr.contains(": plugin_leak (in \(directory)/dir_name/libplugin.so)\n"), "\(outcome.stderr)")
            #expect(!outcome.stderr.contains("\nname/libplugin.so"), "\(outcome.stderr)")
        }
    }

    /// Every frame of a 22-frame stack, with the optimisations on.
    @Test func deepStackIsComplete() throws {
        let (_, report) = try Harness.run([Harness.fixture("deep_stack")], flags: ["--num-callers=50"])
        let frames = try #require(report.processes.first?.records.first?.frames)
        #expect(frames.count == 22)
        #expect(frames.first?.function == "malloc")
        #expect(frames[1].function == "level_1")
        #expect(frames[1].line == 21)
        for level in 2...20 {
            #expect(frames[level].function == "level_\(level)")
            #expect(frames[level].file == "deep_stack.c")
            #expect(frames[level].line == 25 + level)
        }
        #expect(frames[21].function == "main")
        #expect(frames[21].line == 49)
    }

    /// Each loss record of `report` (a text report, valgrind's or heapgate's): its headline
    /// after the loss record's bytes, and how many lines each of its return addresses prints.
    static func linesPerAddress(_ report: String) -> [String: [Int]] {
        var records: [String: [Int]] = [:]
        var current: String?
        var lastAddress: Substring?
        for line in report.split(separator: "\n") {
            if let headline = line.firstMatch(of: #/== (\d[\d,]* .* are \w+ lost) in loss record/#) {
                current = String(headline.1)
                records[current!] = []
                lastAddress = nil
            } else if let name = current, let frame = line.firstMatch(of: #/==    (?:at|by) (0x[0-9A-F]+):/#) {
                if frame.1 == lastAddress { records[name]!.append(records[name]!.removeLast() + 1) } else { records[name]!.append(1) }
                lastAddress = frame.1
            } else if !line.hasSuffix("==") {
                current = nil
            }
        }
        return records
    }

    /// --num-callers counts return addresses, each printed with every frame inlined at it, as
    /// memcheck counts them. Counted in printed lines, the Rust fixture's record stopped inside
    /// std's start-up, seven addresses short of `main`, and in optimised Rust programs often
    /// before the program's own function.
    @Test(arguments: [12, 3])
    func numCallersCountsReturnAddresses(numCallers: Int) throws {
        let program = Harness.fixture("leak_rust")
        let outcome = try Harness.execute(Harness.heapgate, ["run", "--num-callers=\(numCallers)", "--", program])
        let ours = Self.linesPerAddress(outcome.stderr)
        let record = try #require(ours["48 bytes in 1 blocks are definitely lost"], "\(outcome.stderr)")
        #expect(record.count == min(numCallers, 8))
        #expect(record.count < 3 || record[2] > 1, "the address of leak_string shows String::with_capacity inlined in it")
        if Harness.valgrindAvailable {
            let valgrind = try Harness.execute("/usr/bin/valgrind", ["--leak-check=full", "--num-callers=\(numCallers)",
                                                                     "--run-libc-freeres=no", program])
            let theirs = Self.linesPerAddress(valgrind.stderr)
            for (headline, lines) in ours { #expect(theirs[headline] == lines, "\(headline)") }
        }
    }

    /// Above 64, `run` asks the shim for deeper stacks, up to the 256 frames it records at most
    /// (asked for more, the shim used to keep its default of 64: 300 gave fewer frames than 100).
    @Test(arguments: [(100, 100), (300, 256), (500, 256)])
    func numCallersAboveTheShimsDefault(asked: Int, recorded: UInt32) throws {
        try Harness.withTemporaryDirectory { traces in
            let outcome = try Harness.execute(Harness.heapgate, ["run", "--num-callers=\(asked)", "--trace-dir=\(traces)", "--",
                                                                 Harness.fixture("churn"), "1", "300"])
            #expect(outcome.status == 0, "\(outcome.stderr)")
            let trace = try #require(Harness.traceFiles(in: traces).first)
            let header = try #require(FileManager.default.contents(atPath: trace))
            #expect(header.count >= 56)
            // max_depth: the u32 at offset 36 (docs/trace-format.md, "File header").
            let depth = header[36..<40].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            #expect(depth == recorded)
        }
    }

    /// --num-callers cuts stacks like valgrind's default of 12.
    @Test func numCallersLimitsFrames() throws {
        let (_, report) = try Harness.run([Harness.fixture("deep_stack")])
        let frames = try #require(report.processes.first?.records.first?.frames)
        #expect(frames.count == 12)
        #expect(frames.last?.function == "level_11")
    }
}
