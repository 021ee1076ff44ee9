import ArgumentParser
import HeapGate

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a program (and every process it starts) with heapgate preloaded; print the heap summary at exit.",
        discussion: """
            heapgate exits with the program's own status (or dies of the signal it died of), \
            127 or 126 when the command cannot be found or run, and 3 when LD_PRELOAD cannot \
            reach the program (statically linked, another architecture, musl, secure execution), \
            which then does not run.
            """)

    @Option(name: .customLong("trace-dir"), help: ArgumentHelp("Keep the traces in DIR instead of a temporary directory.", valueName: "DIR"))
    var traceDirectory: String?

    @OptionGroup var report: ReportFlags

    @Argument(parsing: .captureForPassthrough, help: "The program and its arguments (after --).")
    var command: [String] = []

    func run() throws {
        var arguments = command
        if ["--help", "-h", "-help"].contains(arguments.first) {
            print(HeapGateCommand.helpMessage(for: RunCommand.self))
            return
        }
        // The command is captured from the first argument heapgate does not know, so a mistyped
        // option, or one of valgrind's heapgate does not have, would be run as the program.
        if let first = arguments.first, first.hasPrefix("-"), first != "--" {
            throw ValidationError(Self.unknownOptionMessage(first))
        }
        if arguments.first == "--" { arguments.removeFirst() }
        guard !arguments.isEmpty else { throw ValidationError("give the program to run after --") }
        try TracedRun(command: arguments, traceDirectory: traceDirectory, report: report.settings).run()
    }

    /// valgrind options people carry over, and what heapgate does instead.
    private static let valgrindOptionHints = [
        "--trace-children": "heapgate always follows the processes a program starts: --trace-children=yes is taken, =no cannot be",
        "--child-silent-after-fork": "heapgate reports every process of the tree",
        "--track-origins": "heapgate checks for leaks, not for uses of uninitialised memory",
        "--undef-value-errors": "heapgate checks for leaks, not for uses of uninitialised memory",
        "-v": "heapgate has no verbose mode",
        "--verbose": "heapgate has no verbose mode",
        "-s": "heapgate prints every loss record it shows, and counts the suppressed ones in the LEAK SUMMARY",
        "--show-error-list": "heapgate prints every loss record it shows, and counts the suppressed ones in the LEAK SUMMARY",
        "--leak-check-heuristics": "heapgate always applies all of memcheck's heuristics",
        "--leak-resolution": "heapgate groups loss records by their first --num-callers frames, as valgrind does by default (high)",
    ]

    static func unknownOptionMessage(_ option: String) -> String {
        let name = String(option.prefix { $0 != "=" })
        let hint = valgrindOptionHints[name].map { " (\($0))" } ?? ""
        return "unknown option '\(option)'\(hint); the program to run goes after --"
    }
}
