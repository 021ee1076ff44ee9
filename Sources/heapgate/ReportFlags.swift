import ArgumentParser
import Foundation
import HeapGate

/// Flags shared by `run` and `summary`, spelled as valgrind spells them where valgrind has them.
struct ReportFlags: ParsableArguments {
    @Option(name: .customLong("json"), help: ArgumentHelp("Also write the machine-readable report to FILE.", valueName: "FILE"))
    var jsonPath: String?

    @Option(name: .customLong("num-callers"), help: "Frames shown per record (like valgrind's --num-callers).")
    var numCallers: Int = 12

    @Flag(name: .customLong("debuginfod"), help: "Let elfutils fetch missing debug info from $DEBUGINFOD_URLS (off by default: an unreachable server stalls each module for about 90 s).")
    var debuginfod = false

    mutating func validate() throws {
        guard (1...500).contains(numCallers) else { throw ValidationError("--num-callers must be between 1 and 500") }
    }

    var options: ReportOptions { ReportOptions(numCallers: numCallers, useDebuginfod: debuginfod) }

    /// Prints the text report on stderr and writes the JSON report if asked.
    func emit(_ heaps: [ProcessHeap], exitStatuses: [Int: Int] = [:]) throws {
        let builder = ReportBuilder(options: options)
        let reports = heaps.map { builder.report(for: $0, exitStatus: exitStatuses[$0.header.pid]) }
        let text = reports.map { TextReport.render($0, options: options) }.joined(separator: "\n")
        FileHandle.standardError.write(Data(text.utf8))
        if let jsonPath {
            let data = try JSONReport.render(reports)
            guard FileManager.default.createFile(atPath: jsonPath, contents: data + Data("\n".utf8)) else {
                throw CLIError("cannot write the JSON report to \(jsonPath)", status: 2)
            }
        }
    }
}

/// A one-line error and the exit status that goes with it.
struct CLIError: Error, CustomStringConvertible {
    var message: String
    var status: Int32
    init(_ message: String, status: Int32) {
        self.message = message
        self.status = status
    }
    var description: String { message }
}

/// Prints `heapgate: message` on stderr and exits with `status`.
func fail(_ message: String, status: Int32) -> ExitCode {
    FileHandle.standardError.write(Data("heapgate: \(message)\n".utf8))
    return ExitCode(status)
}
