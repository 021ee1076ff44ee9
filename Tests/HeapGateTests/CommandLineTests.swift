import Foundation
import Testing

/// A bad command line is one line on stderr and status 64, before anything runs; help is
/// printed as swift-argument-parser prints it.
@Suite("Bad command lines")
struct CommandLineTests {
    /// swift-argument-parser printed three or four lines (Error, Help, Usage, "See --help"), and
    /// for an error found by a command's `run()`, such as `heapgate run` without a program, the
    /// top-level usage. `help bogus` printed the top-level help and exited 0. A kind list of
    /// "all,none" was refused as an "unknown kind 'all'" by a message that listed all as a kind.
    @Test(arguments: [
        (["run"], "give the program to run after -- (see heapgate run --help)"),
        (["run", "--"], "give the program to run after -- (see heapgate run --help)"),
        (["help", "bogus"], "no help for 'bogus': the subcommands are run and summary (see heapgate --help)"),
        (["bogus"], "Unexpected argument 'bogus' (see heapgate --help)"),
        (["summary"], "Missing expected argument '<traces> ...' (see heapgate summary --help)"),
        (["summary", "--error-exitcode=x", "a.trace"], "The value 'x' is invalid for '--error-exitcode <N>' (see heapgate summary --help)"),
        (["summary", "--show-leak-kinds=all,none", "a.trace"],
         "--show-leak-kinds: 'all' cannot be combined with other kinds (give --show-leak-kinds=all alone) (see heapgate summary --help)"),
        (["run", "--errors-for-leak-kinds=definite,none", "--", "/bin/true"],
         "--errors-for-leak-kinds: 'none' cannot be combined with other kinds (give --errors-for-leak-kinds=none alone) (see heapgate run --help)"),
        (["run", "--no-such-option", "/bin/echo", "ran"],
         "unknown option '--no-such-option'; the program to run goes after -- (see heapgate run --help)"),
    ])
    func usageErrorIsOneLine(arguments: [String], message: String) throws {
        let outcome = try Harness.execute(Harness.heapgate, arguments)
        #expect(outcome.status == 64)
        #expect(outcome.stdoutText == "")
        #expect(outcome.stderr == "heapgate: " + message + "\n")
    }

    /// Help stays the parser's, on stdout, with status 0: the one-line errors must not take it.
    @Test(arguments: [(["--help"], "USAGE: heapgate <subcommand>"), (["help", "summary"], "USAGE: heapgate summary "),
                      (["run", "--help"], "USAGE: run [<options>] [<command> ...]"), (["summary", "-h"], "USAGE: heapgate summary ")])
    func helpIsPrintedAsBefore(arguments: [String], usage: String) throws {
        let outcome = try Harness.execute(Harness.heapgate, arguments)
        #expect(outcome.status == 0)
        #expect(outcome.stderr == "")
        #expect(outcome.stdoutText.hasPrefix("OVERVIEW: "), "\(outcome.stdoutText)")
        #expect(outcome.stdoutText.contains("\n" + usage), "\(outcome.stdoutText)")
    }
}
