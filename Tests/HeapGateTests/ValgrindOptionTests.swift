import Foundation
import Testing

/// valgrind command lines that CI tools and scripts pass unchanged: heapgate takes valgrind's
/// spellings of what it does, with memcheck's meaning.
@Suite("valgrind's option spellings")
struct ValgrindOptionTests {
    /// `ctest -T memcheck` with MEMORYCHECK_TYPE=Valgrind runs each test as
    /// `COMMAND --log-file=…/MemoryChecker.N.log OPTIONS test`, OPTIONS being valgrind's defaults
    /// unless the project sets its own. heapgate refused `--tool=memcheck` and
    /// `--show-reachable=yes` (status 64), so every test failed without running and CTest found
    /// no log to count leaks in.
    @Test func ctestDefaultMemcheckCommandLine() throws {
        try Harness.withTemporaryDirectory { directory in
            let log = directory + "/MemoryChecker.1.log"
            let outcome = try Harness.execute(Harness.heapgate, [
                "run", "--log-file=" + log, "-q", "--tool=memcheck", "--leak-check=yes", "--show-reachable=yes",
                "--num-callers=50", Harness.fixture("leakclass_c"), "tls",
            ])
            #expect(outcome.status == 0, "\(outcome.stderr)")
            #expect(outcome.stderr == "")
            let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").map(String.init)
            #expect(lines.first?.hasSuffix("== 40 bytes in 1 blocks are still reachable in loss record 1 of 1") == true,
                    "\(lines)")
        }
    }

    /// `--show-reachable` and `--show-possibly-lost` change the kinds shown in the order given,
    /// as memcheck applies them (valgrind 3.19 prints these records for these lines).
    @Test(arguments: [
        (["--show-reachable=yes", "--show-leak-kinds=definite"], "tls", [String]()),
        (["--show-leak-kinds=definite", "--show-reachable=yes"], "tls", ["40 bytes in 1 blocks are still reachable in loss record 1 of 1"]),
        (["--show-reachable=yes", "--show-reachable=no"], "tls", []),
        (["--show-possibly-lost=no"], "interior", []),
        (["--show-leak-kinds=none", "--show-possibly-lost=yes"], "interior", ["64 bytes in 1 blocks are possibly lost in loss record 1 of 1"]),
    ])
    func showKindsFollowTheirOrder(flags: [String], scenario: String, records: [String]) throws {
        let outcome = try Harness.execute(Harness.heapgate, ["run"] + flags + ["--", Harness.fixture("leakclass_c"), scenario])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.reportLines.filter { $0.contains(" in loss record ") } == records, "\(outcome.stderr)")
    }

    /// `--trace-children=yes` is what heapgate does anyway; a process tree is reported whole.
    @Test func traceChildrenYesIsTaken() throws {
        let outcome = try Harness.execute(Harness.heapgate, ["run", "--trace-children=yes", "--", Harness.fixture("fork_child")])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.reportLines.filter { $0 == "HEAP SUMMARY:" }.count == 2, "\(outcome.stderr)")
    }

    /// What heapgate cannot do stays a bad command line, in one line, before anything runs.
    @Test(arguments: [
        (["--tool=helgrind"], "--tool=helgrind: heapgate does memcheck's leak check only (--tool=memcheck, or leave --tool out)"),
        (["--show-reachable=maybe"], "--show-reachable takes =yes or =no, as in valgrind (or give --show-leak-kinds=KINDS)"),
        (["--trace-children=no"], "unknown option '--trace-children=no' (heapgate always follows the processes a program starts:"
            + " --trace-children=yes is taken, =no cannot be); the program to run goes after --"),
    ])
    func whatHeapgateCannotDoIsRefused(flags: [String], message: String) throws {
        let outcome = try Harness.execute(Harness.heapgate, ["run"] + flags + ["--", "/bin/echo", "ran"])
        #expect(outcome.status == 64)
        #expect(outcome.stdoutText == "")
        #expect(outcome.stderr == "heapgate: \(message) (see heapgate run --help)\n")
    }

    /// The program's own words are never rewritten: after the program, and after `--`.
    @Test(arguments: [["/bin/echo", "--tool=memcheck", "--show-reachable=yes"],
                      ["-q", "--", "/bin/echo", "--tool=memcheck", "--show-reachable=yes"]])
    func programWordsAreLeftAlone(arguments: [String]) throws {
        let outcome = try Harness.execute(Harness.heapgate, ["run"] + arguments)
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.stdoutText == "--tool=memcheck --show-reachable=yes\n")
    }
}
