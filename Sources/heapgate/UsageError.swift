import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import HeapGate

/// How heapgate ends on an error that escapes a command: a bad command line (status 64) is one
/// line, `heapgate: MESSAGE (see heapgate SUBCOMMAND --help)`, where swift-argument-parser prints
/// three or four (Error, Help, Usage, "See --help"), and for an error thrown from `run()` the
/// top-level usage rather than the subcommand's. Help, version and every other status are left
/// to the parser as before.
enum UsageError {
    /// Exits for `error`, thrown while parsing or running `subcommand` (nil: the top level).
    static func exit(with error: Error, subcommand: String?) -> Never {
        // Thrown after the message was printed (`fail`), or as the program's status.
        if let code = error as? ExitCode { Glibc.exit(code.rawValue) }
        guard HeapGateCommand.exitCode(for: error) == .validationFailure else {
            HeapGateCommand.exit(withError: error)
        }
        StandardError.write(line(HeapGateCommand.message(for: error), subcommand: subcommand) + "\n")
        Glibc.exit(ExitCode.validationFailure.rawValue)
    }

    /// The one line for `message` (its own line breaks, if any, become "; ").
    static func line(_ message: String, subcommand: String?) -> String {
        let lines = message.split(whereSeparator: \.isNewline).map { String($0.drop(while: \.isWhitespace)) }
        let text = lines.filter { !$0.isEmpty }.joined(separator: "; ")
        let help = (["heapgate"] + [subcommand].compactMap { $0 } + ["--help"]).joined(separator: " ")
        return "heapgate: \(text.isEmpty ? "bad command line" : text) (see \(help))"
    }

    /// The subcommand `arguments` (without the program's name) start with, if any: what a parse
    /// error belongs to. The parser takes a subcommand only as the first word.
    static func subcommand(of arguments: [String]) -> String? {
        guard let first = arguments.first,
              HeapGateCommand.configuration.subcommands.contains(where: { $0._commandName == first }) else { return nil }
        return first
    }
}
