import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif

struct HeapGateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "heapgate",
        abstract: "Trace the heap of any Linux program and report what it leaves in use, like valgrind memcheck, at close to native speed.",
        version: "0.1.0",
        subcommands: [RunCommand.self, SummaryCommand.self]
    )

    /// `heapgate help TOPIC` takes a subcommand's name: the parser's own help command showed
    /// the top-level help for any other word, and exited 0, as if the topic existed.
    static func checkHelpTopics(_ arguments: [String]) throws {
        guard arguments.first == "help" else { return }
        let names = configuration.subcommands.map { $0._commandName }
        let topics = arguments.dropFirst().filter { !$0.hasPrefix("-") }
        if let unknown = topics.first(where: { !names.contains($0) }) {
            throw ValidationError("no help for '\(unknown)': the subcommands are \(names.joined(separator: " and "))")
        }
        if topics.count > 1 { throw ValidationError("help takes one subcommand, not \(topics.count)") }
    }
}

/// The entry point. `heapgate run -- PROGRAM [ARGS...]`, the everyday form, starts the program
/// at once with the default flags (`ReportSettings.standard`): ArgumentParser, which the form
/// does not need (every word after `--` is the program's), spends 12 M instructions (about
/// 3 ms) reflecting over the flags before anything runs, most of what heapgate itself adds to
/// a short program. Any other form, flags included, goes through it as before.
@main
enum HeapGateMain {
    static func main() {
        let arguments = CommandLine.arguments
        if arguments.count > 3, arguments[1] == "run", arguments[2] == "--" {
            do {
                try TracedRun(command: Array(arguments[3...]), traceDirectory: nil, report: .standard).run()
            } catch let code as ExitCode {
                exit(code.rawValue)
            } catch {
                UsageError.exit(with: error, subcommand: "run")
            }
            exit(0)
        }
        // As ParsableCommand.main(), but a bad command line is one line (UsageError).
        var words = Array(arguments.dropFirst())
        let subcommand = UsageError.subcommand(of: words)
        do {
            try HeapGateCommand.checkHelpTopics(words)
            if let subcommand {
                words = [subcommand] + (try ValgrindSpellings.rewrite(Array(words.dropFirst()),
                                                                     forRun: subcommand == RunCommand._commandName))
            }
            if let subcommand {
                try EmptyOptionValue.check(Array(words.dropFirst()), stopAtFirstOperand: subcommand == RunCommand._commandName)
            }
            var command = try HeapGateCommand.parseAsRoot(words)
            try command.run()
        } catch {
            UsageError.exit(with: error, subcommand: subcommand)
        }
    }
}
