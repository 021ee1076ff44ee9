import Foundation
import Testing

/// Frames show their source file as memcheck does: by the name the line table records
/// (`srcnames/srcnames.c` from clang's DWARF 5 when built by that relative path; `srcnames.c`
/// from gcc, which files it under the directory `srcnames`; `library/alloc/src/raw_vec/mod.rs`
/// for Rust's standard library inlined into the program), not by the base name, which heapgate
/// showed before. The expected frames are memcheck 3.19's (EXPECTED.md, srcnames).
@Suite struct SourceFileNameTests {
    typealias Shown = (function: String, file: String, line: Int)

    /// The frames with a source line of the record through `function`, as (function, file, line).
    static func shownFrames(_ fixture: String, through function: String) throws -> [Shown] {
        let (outcome, report) = try Harness.run([Harness.fixture(fixture)])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        let process = try #require(report.processes.first)
        let record = try #require(process.records(allocatedIn: function).first, "no record through \(function)")
        return record.frames.compactMap { frame in
            guard let name = frame.function, let file = frame.file, let line = frame.line,
                  !(frame.module ?? "").hasSuffix("libheapgate.so") else { return nil }
            return (name, file, line)
        }
    }

    static func expect(_ got: [Shown], _ expected: [Shown], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(got.map { "\($0.function) (\($0.file):\($0.line))" } == expected.map { "\($0.function) (\($0.file):\($0.line))" },
                sourceLocation: sourceLocation)
    }

    @Test func gccRecordsTheBaseNameUnderItsDirectory() throws {
        Self.expect(try Self.shownFrames("srcnames_gcc", through: "leak_direct"),
                    [("leak_direct", "srcnames.c", 12), ("main", "srcnames.c", 22)])
        Self.expect(try Self.shownFrames("srcnames_gcc", through: "leak_inlined"),
                    [("grab_block", "grab.h", 6), ("leak_inlined", "srcnames.c", 17), ("main", "srcnames.c", 23)])
    }

    /// memcheck 3.19 reads no inlined frames from clang's DWARF 5 (it shows `leak_inlined
    /// (grab.h:6)`); heapgate does, and names the inlined call's site by its recorded name too.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: Harness.fixture("srcnames_clang")), "no clang"))
    func clangDwarf5RecordsThePathItWasGiven() throws {
        Self.expect(try Self.shownFrames("srcnames_clang", through: "leak_direct"),
                    [("leak_direct", "srcnames/srcnames.c", 12), ("main", "srcnames/srcnames.c", 22)])
        Self.expect(try Self.shownFrames("srcnames_clang", through: "leak_inlined"),
                    [("grab_block", "grab.h", 6), ("leak_inlined", "srcnames/srcnames.c", 17), ("main", "srcnames/srcnames.c", 23)])
    }

    /// The JSON report's `path` is the file in its directory, made absolute.
    @Test func pathIsTheFileInItsDirectory() throws {
        let (_, report) = try Harness.run([Harness.fixture("srcnames_gcc")])
        let frame = try #require(report.processes.first?.records(allocatedIn: "leak_direct").first?.frames
            .first { $0.function == "leak_direct" })
        let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/src").path
        #expect(frame.path == sources + "/srcnames/srcnames.c")
    }

    /// `src:` lines match the name shown, as memcheck's do (memcheck applies
    /// `src:srcnames/srcnames.c` to srcnames_clang's leak_direct, not to srcnames_gcc's), and,
    /// as before, the base name and, with a `/`, the whole path: that one never matched in a
    /// report, whose frames carried only the base name.
    @Test(arguments: [("srcnames_gcc", "srcnames.c:12", true), ("srcnames_gcc", "*/src/srcnames/srcnames.c:12", true),
                      ("srcnames_clang", "srcnames/srcnames.c:12", true), ("srcnames_clang", "srcnames.c:12", true),
                      ("srcnames_gcc", "src/srcnames.c:12", false)])
    func sourceLinesMatch(_ fixture: String, _ source: String, _ suppressed: Bool) throws {
        guard FileManager.default.fileExists(atPath: Harness.fixture(fixture)) else { return }
        try Harness.withTemporaryDirectory { directory in
            let file = directory + "/src.supp"
            try "{\n  by-source\n  Memcheck:Leak\n  fun:malloc\n  src:\(source)\n}\n".write(toFile: file, atomically: true, encoding: .utf8)
            let (_, report) = try Harness.run([Harness.fixture(fixture)], flags: ["--suppressions=\(file)"])
            let record = try #require(report.processes.first?.records(allocatedIn: "leak_direct").first)
            #expect((record.suppressedBy == "by-source") == suppressed, "\(source): \(String(describing: record.suppressedBy))")
        }
    }

    /// Rust's standard library, inlined into the program's unit, is recorded relative to the
    /// toolchain's source directory: memcheck shows `library/alloc/src/raw_vec/mod.rs`. Compared
    /// with memcheck's own report of the same record, frame by frame (file and line).
    @Test(.enabled(if: Harness.valgrindAvailable, "valgrind is not installed at /usr/bin/valgrind"),
          arguments: [("leak_rust", "leak_rust::leak_string"), ("leak_rust", "leak_rust::leak_box"),
                      ("srcnames_gcc", "leak_inlined"), ("srcnames_clang", "leak_direct")])
    func sameSourcesAsMemcheck(_ fixture: String, through function: String) throws {
        guard FileManager.default.fileExists(atPath: Harness.fixture(fixture)) else { return }
        let heapgate = try Self.shownFrames(fixture, through: function).map { "\($0.file):\($0.line)" }
        let log = try Harness.withTemporaryDirectory { directory -> String in
            _ = try Harness.execute("/usr/bin/valgrind", ["--leak-check=full", "--log-file=\(directory)/vg.log",
                                                          Harness.fixture(fixture)])
            return try String(contentsOfFile: directory + "/vg.log", encoding: .utf8)
        }
        // memcheck names inlined frames by their plain names (`leak_string` is not among them):
        // its record is the one whose frames have the same lines as heapgate's.
        let records = Self.memcheckSources(log)
        #expect(heapgate.contains { $0.hasPrefix("library/") } == (fixture == "leak_rust"), "\(heapgate)")
        #expect(records.contains(heapgate), "heapgate: \(heapgate)\nmemcheck: \(records)")
    }

    /// Each loss record of a memcheck log as the `FILE:LINE` of its frames.
    static func memcheckSources(_ log: String) -> [[String]] {
        var records: [[String]] = []
        for line in log.split(separator: "\n") {
            if line.contains(" are definitely lost ") || line.contains(" are still reachable ") {
                records.append([])
            } else if line.contains(" by 0x") || line.contains(" at 0x"), !records.isEmpty,
                      line.hasSuffix(")"), let open = line.lastIndex(of: "("),
                      case let inside = line[line.index(after: open)..<line.index(before: line.endIndex)],
                      !inside.hasPrefix("in "), inside.contains(":") {
                records[records.count - 1].append(String(inside))
            }
        }
        return records
    }
}
