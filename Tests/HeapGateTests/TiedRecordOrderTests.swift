import Foundation
import Testing

/// Loss records that tie on total bytes, kind and blocks are numbered as memcheck numbers them:
/// in the order their stacks first allocated (memcheck compares the addresses of the records'
/// ExeContexts, created when a stack is first seen). heapgate ordered them by return address,
/// and a C++ probe had records 7 to 13 of 16 on other stacks than memcheck's.
@Suite("Tied loss records in memcheck's order")
struct TiedRecordOrderTests {
    /// memcheck's numbering of `tied_records` (valgrind 3.19, EXPECTED.md): header, allocating
    /// function and its line, main's line.
    static let memchecksRecords = [
        "16 bytes in 1 blocks are still reachable in loss record 1 of 9 | keep_z (tied_records.c:74) | main (tied_records.c:93)",
        "16 bytes in 1 blocks are still reachable in loss record 2 of 9 | keep_x (tied_records.c:64) | main (tied_records.c:99)",
        "16 bytes in 1 blocks are still reachable in loss record 3 of 9 | keep_y (tied_records.c:69) | main (tied_records.c:101)",
        "32 bytes in 1 blocks are definitely lost in loss record 4 of 9 | lose_d (tied_records.c:49) | main (tied_records.c:88)",
        "32 bytes in 1 blocks are definitely lost in loss record 5 of 9 | lose_f (tied_records.c:59) | main (tied_records.c:90)",
        "32 bytes in 1 blocks are definitely lost in loss record 6 of 9 | lose_b (tied_records.c:39) | main (tied_records.c:94)",
        "32 bytes in 1 blocks are definitely lost in loss record 7 of 9 | lose_e (tied_records.c:54) | main (tied_records.c:100)",
        "32 bytes in 1 blocks are definitely lost in loss record 8 of 9 | lose_a (tied_records.c:34) | main (tied_records.c:100)",
        "32 bytes in 1 blocks are definitely lost in loss record 9 of 9 | lose_c (tied_records.c:44) | main (tied_records.c:102)",
    ]

    /// Each record of a text report (heapgate's or memcheck's log, prefixes removed) as its
    /// header line and its "by" frames, without addresses: "HEADER | f (file:line) | …".
    static func records(_ lines: [String]) -> [String] {
        var records: [String] = []
        for line in lines {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.contains(" in loss record ") || trimmed.contains(" in record ") {
                records.append(trimmed)
            } else if trimmed.hasPrefix("by "), !records.isEmpty, let frame = trimmed.range(of: ": ") {
                records[records.count - 1] += " | " + trimmed[frame.upperBound...]
            }
        }
        return records
    }

    @Test func numberedAsMemcheckNumbersThem() throws {
        let (outcome, _) = try LeakRun.heapgate(["tied_records"])
        #expect(outcome.status == 0)
        #expect(Self.records(outcome.reportLines) == Self.memchecksRecords, "\(outcome.stderr)")
    }

    /// A fork child's trace restates the blocks it inherits (INHERITED_BLOCK), under stack ids
    /// of its own: in the order the parent first captured the stacks, as memcheck's child keeps
    /// its parent's ExeContexts. Given in the live set's order, the child's ties came out d, a,
    /// b, c of four in a probe where memcheck and the parent said d, c, a, b.
    @Test func forkChildNumbersTiesAsItsParent() throws {
        let (outcome, _) = try Harness.run([Harness.fixture("tied_records"), "fork"], flags: LeakRun.shown)
        #expect(outcome.status == 0)
        let byProcess = Dictionary(grouping: outcome.stderrLines) { line in
            line.hasPrefix("==") ? String(line.dropFirst(2).prefix { $0 != "=" }) : ""
        }.filter { !$0.key.isEmpty }
        try #require(byProcess.count == 2, "\(outcome.stderr)")
        for (pid, lines) in byProcess {
            let shown = lines.map { line in String(line.drop { $0 == "=" || $0.isNumber }.dropFirst()) }
            #expect(Self.records(shown) == Self.memchecksRecords, "process \(pid): \(outcome.stderr)")
        }
    }

    /// The fixture's claim, checked against memcheck itself.
    @Test(.enabled(if: Harness.valgrindAvailable, "valgrind is not installed at /usr/bin/valgrind"))
    func memcheckNumbersThemSo() throws {
        try Harness.withTemporaryDirectory { logs in
            let log = logs + "/valgrind.log"
            let outcome = try Harness.execute("/usr/bin/valgrind", [
                "--leak-check=full", "--show-leak-kinds=all", "--run-libc-freeres=no", "--log-file=\(log)",
                "./tied_records",
            ], directory: Harness.fixture(""))
            #expect(outcome.status == 0)
            let text = try String(contentsOfFile: log, encoding: .utf8)
            let lines = text.split(separator: "\n").map { line -> String in
                guard line.hasPrefix("=="), let end = line.dropFirst(2).range(of: "== ") else { return String(line) }
                return String(line[end.upperBound...])
            }
            #expect(Self.records(lines) == Self.memchecksRecords, "\(text)")
        }
    }

    /// `heapgate summary` reads the exit snapshot of a whole trace (through its footer) and
    /// replays the event stream of a cut one, whose blocks are unclassified ("in use"): both
    /// number ties in the same order, memcheck's.
    @Test func sameOrderFromTheSnapshotAsFromTheStream() throws {
        try Harness.withTemporaryDirectory { directory in
            let outcome = try Harness.trace([Harness.fixture("tied_records")], into: directory)
            #expect(outcome.status == 0)
            let traces = Harness.traceFiles(in: directory)
            try #require(traces.count == 1)
            let whole = try Data(contentsOf: URL(fileURLWithPath: traces[0]))
            let cut = directory + "/cut.trace"
            try whole.dropLast(16).write(to: URL(fileURLWithPath: cut)) // without its footer
            let inUse = Self.memchecksRecords.map { record in
                record.replacingOccurrences(of: "are still reachable in loss record", with: "are in use at exit in record")
                    .replacingOccurrences(of: "are definitely lost in loss record", with: "are in use at exit in record")
            }
            for (path, expected) in [(traces[0], Self.memchecksRecords), (cut, inUse)] {
                let summary = try Harness.execute(Harness.heapgate, ["summary", "--show-leak-kinds=all", path])
                #expect(Self.records(summary.reportLines) == expected, "\(path): \(summary.stderr)")
            }
        }
    }
}
