import Foundation
import Testing

/// `--log-file=FILE` writes the text report to FILE instead of stderr, as valgrind's does; `%p`
/// gives each process its own file.
@Suite("Text report in a file, as valgrind's --log-file")
struct LogFileTests {
    @Test func oneFilePerProcessWithPercentP() throws {
        try Harness.withTemporaryDirectory { directory in
            let outcome = try Harness.execute(Harness.heapgate, ["run", "--log-file=\(directory)/report.%p.log", "--",
                                                                 Harness.fixture("fork_child")])
            #expect(outcome.status == 0, "\(outcome.stderr)")
            #expect(!outcome.stderr.contains("HEAP SUMMARY"), "\(outcome.stderr)")
            let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".log") }
            #expect(files.count == 2, "\(files)")
            for file in files {
                let pid = file.dropFirst("report.".count).dropLast(".log".count)
                let text = try String(contentsOfFile: directory + "/" + file, encoding: .utf8)
                #expect(text.hasPrefix("==\(pid)== heapgate, a heap tracker and leak gate\n"), "\(text)")
                #expect(text.contains("==\(pid)== LEAK SUMMARY:"), "\(text)")
                #expect(text.components(separatedBy: "HEAP SUMMARY:").count == 2, "\(text)") // this process only
            }
        }
    }

    @Test func oneFileForAllWithoutPercentP() throws {
        try Harness.withTemporaryDirectory { directory in
            let outcome = try Harness.execute(Harness.heapgate, ["run", "--log-file=\(directory)/report.log", "--",
                                                                 Harness.fixture("fork_child")])
            #expect(outcome.status == 0, "\(outcome.stderr)")
            let text = try String(contentsOfFile: directory + "/report.log", encoding: .utf8)
            #expect(text.components(separatedBy: "HEAP SUMMARY:").count == 3, "\(text)") // both processes
        }
    }

    @Test func unwritableLogFileStopsBeforeTheProgramRuns() throws {
        let outcome = try Harness.execute(Harness.heapgate, ["run", "--log-file=/nonexistent-\(UUID().uuidString)/r.log", "--",
                                                             Harness.fixture("prints_a_lot"), "0"])
        #expect(outcome.status == 2)
        #expect(outcome.stdout.isEmpty)
        #expect(outcome.stderr.contains("cannot write the report to"), "\(outcome.stderr)")
    }
}
