import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import HeapGate

struct SummaryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "summary",
        abstract: "Print the heap summary of saved traces (files, or directories of them).",
        discussion: "Exit status 2 means a trace could not be read: missing, empty, corrupt, or of a newer format.")

    @Argument(help: "Trace files written by libheapgate.so (HEAPGATE_OUT), or directories holding them.")
    var traces: [String]

    @OptionGroup var report: ReportFlags

    func run() throws {
        var files: [String] = []
        for path in traces {
            if FileStatus.isDirectory(path) {
                let inDirectory = TraceSet.files(in: path)
                if inDirectory.isEmpty { throw fail("\(path): no heapgate traces (heapgate.*.trace) in this directory", status: 2) }
                files += inDirectory
            } else {
                files.append(path)
            }
        }
        do {
            let heaps = try TraceSet.load(files: TraceSet.distinct(files))
            let settings = report.settings
            let reports = try settings.emit(heaps)
            if let gate = settings.gate, settings.gateFails(reports) { throw ExitCode(gate) }
        } catch let error as TraceFormatError {
            throw fail(error.description, status: 2)
        } catch let error as CLIError {
            throw fail(error.message, status: error.status)
        }
    }
}
