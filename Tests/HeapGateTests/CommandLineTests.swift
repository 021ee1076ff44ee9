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
        (["summary", "--quiet=", "a.trace"], "--quiet= has an empty value: --quiet takes none (see heapgate summary --help)"),
        (["run", "--no-such-option", "/bin/echo", "ran"],
         "unknown option '--no-such-option'; the program to run goes after -- (see heapgate run --help)"),
    ])
    func usageErrorIsOneLine(arguments: [String], message: String) throws {
        let outcome = try Harness.execute(Harness.heapgate, arguments)
        #expect(outcome.status == 64)
        #expect(outcome.stdoutText == "")
        #expect(outcome.stderr == "heapgate: " + message + "\n")
    }

    /// `--NAME=` with nothing after the `=` is refused: swift-argument-parser read it as `--NAME`
    /// and took the next word as the value, so `summary --json= a.trace b.trace` wrote the
    /// JSON report over a.trace and exited 0. Every option that takes a value, as `--help`
    /// lists them (so that one added later is checked too), refuses an empty one, for `run`
    /// before the program runs and for `summary` before any file is touched.
    @Test func everyOptionWithAValueRefusesAnEmptyOne() throws {
        try Harness.withTemporaryDirectory { directory in
            let victim = try TraceInputTests.traceLeakBasic(into: directory)
            let other = directory + "/other.trace"
            try FileManager.default.copyItem(atPath: victim, toPath: other)
            let original = try Data(contentsOf: URL(fileURLWithPath: victim))
            for subcommand in ["run", "summary"] {
                let names = try Self.optionsWithAValue(of: subcommand)
                #expect(names.isSuperset(of: ["--json", "--log-file", "--xml-file", "--error-exitcode", "--leak-check"]),
                        "\(subcommand): \(names)")
                if subcommand == "run" { #expect(names.contains("--trace-dir")) }
                for name in names.sorted() {
                    // The word after `--NAME=` is always the scratch trace: the parser took it
                    // as the value, and a file it would write to must be one the test owns.
                    let arguments = subcommand == "run" ? ["run", name + "=", victim, "--", "/bin/echo", "ran"]
                                                        : ["summary", name + "=", victim, other]
                    let outcome = try Harness.execute(Harness.heapgate, arguments)
                    #expect(outcome.status == 64, "\(arguments)")
                    #expect(outcome.stdoutText == "", "\(arguments): the program must not run")
                    #expect(outcome.stderr == "heapgate: \(name)= has an empty value: give \(name)=VALUE, or leave the option out"
                                + " (see heapgate \(subcommand) --help)\n")
                    #expect(try Data(contentsOf: URL(fileURLWithPath: victim)) == original, "\(arguments) changed the trace")
                }
            }
        }
    }

    /// For `run`, only heapgate's own options are looked at: the words after the program, and
    /// after `--`, are the program's, `--json=` included. A value given as the next word
    /// (`--num-callers 12`) is skipped as a value, not taken for the program.
    @Test(arguments: [["--num-callers", "12", "/bin/echo", "--json="], ["--quiet", "--", "/bin/echo", "--json="],
                      ["/bin/echo", "--json="]])
    func programArgumentsAreNeverInspected(arguments: [String]) throws {
        let outcome = try Harness.execute(Harness.heapgate, ["run"] + arguments)
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.stdoutText == "--json=\n")
    }

    /// The options `heapgate SUBCOMMAND --help` lists with a value (`--json <FILE>`).
    static func optionsWithAValue(of subcommand: String) throws -> Set<String> {
        let help = try Harness.execute(Harness.heapgate, [subcommand, "--help"])
        try #require(help.status == 0)
        let lines = help.stdoutText.split(separator: "\n")
        return Set(lines.compactMap { line in
            line.firstMatch(of: #/^\s+(?:-\w, )?(--[a-z-]+) <[^>]+>/#).map { String($0.1) }
        })
    }

    /// Help stays the parser's, on stdout, with status 0: the one-line errors must not take it.
    @Test(arguments: [(["--help"], "USAGE: heapgate <subcommand>"), (["help", "summary"], "USAGE: heapgate summary "),
                      (["run", "--help"], "USAGE: heapgate run [<options>] [<command> ...]"), (["summary", "-h"], "USAGE: heapgate summary ")])
    func helpIsPrintedAsBefore(arguments: [String], usage: String) throws {
        let outcome = try Harness.execute(Harness.heapgate, arguments)
        #expect(outcome.status == 0)
        #expect(outcome.stderr == "")
        #expect(outcome.stdoutText.hasPrefix("OVERVIEW: "), "\(outcome.stdoutText)")
        #expect(outcome.stdoutText.contains("\n" + usage), "\(outcome.stdoutText)")
    }

    /// The help lists what the options take, as README.md does: --gen-suppressions takes yes
    /// (as valgrind's does), and the report files' names take valgrind's %q{VAR} and %%.
    @Test(arguments: ["run", "summary"])
    func helpSaysWhatTheOptionsTake(subcommand: String) throws {
        let outcome = try Harness.execute(Harness.heapgate, [subcommand, "--help"])
        let help = outcome.stdoutText.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(help.contains("--gen-suppressions <no|yes|all>"), "\(help)")
        #expect(help.contains("%q{VAR} the environment variable VAR"), "\(help)")
        #expect(help.contains("with --leak-check=full only"), "\(help)")
    }
}
