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
                RunCommand.exit(withError: error)
            }
            exit(0)
        }
        HeapGateCommand.main()
    }
}
