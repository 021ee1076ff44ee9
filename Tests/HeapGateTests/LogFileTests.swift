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

    /// valgrind's `%q{VAR}` (an environment variable's value) and `%%` (one `%`) in a log or
    /// XML file's name, beside `%p`: heapgate replaced `%p` alone, and wrote
    /// `%q{HEAPGATE_TEST_JOB}.…` where a CI job looked for its log under the job's id.
    @Test func environmentVariablesAndPercentSignsInTheName() throws {
        try Harness.withTemporaryDirectory { directory in
            let outcome = try Harness.execute(Harness.heapgate, [
                "run", "--log-file=\(directory)/%q{HEAPGATE_TEST_JOB}.%p.100%%.log",
                "--xml=yes", "--xml-file=\(directory)/%q{HEAPGATE_TEST_JOB}.%%p.xml", "--", Harness.fixture("leak_basic"),
            ], environment: ["HEAPGATE_TEST_JOB": "job42"])
            #expect(outcome.status == 0, "\(outcome.stderr)")
            let files = try FileManager.default.contentsOfDirectory(atPath: directory)
            try #require(files.count == 2, "\(files)")
            #expect(files.contains("job42.%p.xml"), "\(files)")
            let log = try #require(files.first { $0.hasSuffix(".log") }, "\(files)")
            let pid = try #require(log.firstMatch(of: #/^job42\.([0-9]+)\.100%\.log$/#)?.1, "\(files)")
            let text = try String(contentsOfFile: directory + "/" + log, encoding: .utf8)
            #expect(text.hasPrefix("==\(pid)== heapgate, a heap tracker and leak gate\n"), "\(text)")
        }
    }

    /// A `%` valgrind does not take, or a variable that is not set, is a bad command line
    /// (valgrind: "Bad option"), before the program runs.
    @Test(arguments: [
        ("r.%x.log", "'%x' is none of valgrind's %p, %q{VARIABLE} and %%"),
        ("r.%", "a '%' at the end is none of valgrind's %p, %q{VARIABLE} and %%"),
        ("r.%q.log", "%q needs a variable's name in braces, %q{VARIABLE}"),
        ("r.%q{HEAPGATE_TEST_JOB.log", "%q needs a variable's name in braces, %q{VARIABLE}"),
        ("r.%q{HEAPGATE_NO_SUCH_VARIABLE}.log", "the environment variable 'HEAPGATE_NO_SUCH_VARIABLE' in %q{HEAPGATE_NO_SUCH_VARIABLE} is not set"),
    ])
    func badPercentInTheNameIsABadCommandLine(name: String, message: String) throws {
        try Harness.withTemporaryDirectory { directory in
            let path = directory + "/" + name
            let outcome = try Harness.execute(Harness.heapgate, ["run", "--log-file=" + path, "--", "/bin/echo", "ran"])
            #expect(outcome.status == 64)
            #expect(outcome.stdoutText == "")
            #expect(outcome.stderr == "heapgate: --log-file=\(path): \(message) (see heapgate run --help)\n")
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == [])
        }
    }

    @Test func unwritableLogFileStopsBeforeTheProgramRuns() throws {
        let outcome = try Harness.execute(Harness.heapgate, ["run", "--log-file=/nonexistent-\(UUID().uuidString)/r.log", "--",
                                                             Harness.fixture("prints_a_lot"), "0"])
        #expect(outcome.status == 2)
        #expect(outcome.stdout.isEmpty)
        #expect(outcome.stderr.contains("cannot write the report to"), "\(outcome.stderr)")
    }

    /// A report file's path is followed and written to, as valgrind writes its log: a link
    /// stays a link (its target gets the report), and a FIFO stays a FIFO (its reader gets
    /// the report). Written as a temporary file renamed over the path, run as root, the link
    /// became a file of its own, and so did a FIFO or a device (`--log-file=/dev/null`
    /// replaced /dev/null).
    @Test func reportFilesAreWrittenWhereTheirPathLeads() throws {
        try Harness.withTemporaryDirectory { directory in
            let target = directory + "/target.json", link = directory + "/link.json", fifo = directory + "/log.fifo"
            try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
            #expect(mkfifo(fifo, 0o600) == 0)
            // The FIFO's reader, as a log collector would be: it reads until the writer closes
            // (or 20 s pass: a FIFO replaced by a file never gets a writer).
            let reader = Process()
            reader.executableURL = URL(fileURLWithPath: "/bin/sh")
            reader.arguments = ["-c", "exec timeout -s KILL 20 cat \"$0\" > \"$0.read\"", fifo]
            try reader.run()
            let outcome = try Harness.execute(Harness.heapgate, ["run", "--json=\(link)", "--log-file=\(fifo)", "--",
                                                                 Harness.fixture("leak_basic")])
            reader.waitUntilExit()
            #expect(outcome.status == 0, "\(outcome.stderr)")
            let linkTarget = try? FileManager.default.destinationOfSymbolicLink(atPath: link)
            #expect(linkTarget == target)
            #expect(try String(contentsOfFile: target, encoding: .utf8).contains("\"processes\""))
            var status = stat()
            #expect(stat(fifo, &status) == 0 && (status.st_mode & S_IFMT) == S_IFIFO)
            #expect(try String(contentsOfFile: fifo + ".read", encoding: .utf8).contains("LEAK SUMMARY:"))
        }
    }

    /// A report that cannot be written (stderr on a full disk) is exit status 2 after a program
    /// that exited 0, so that a lost report is not taken for a clean run; it used to be 0. A
    /// closed stderr is the user's choice, as 2>/dev/null is, and leaves the status alone.
    @Test func reportLostOnAFullDiskIsStatusTwo() throws {
        let run = "\"$0\" run -- \"$1\""
        let full = try Harness.execute("/bin/sh", ["-c", run + " 2>/dev/full", Harness.heapgate, Harness.fixture("leak_basic")])
        #expect(full.status == 2, "\(full.stderr)")
        #expect(full.stdoutText == "leak_basic: done\n")
        let closed = try Harness.execute("/bin/sh", ["-c", run + " 2>&-", Harness.heapgate, Harness.fixture("leak_basic")])
        #expect(closed.status == 0)
    }
}
