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
        discussion: "Exit status 2 means a trace could not be read: missing, empty, corrupt, or of a newer format."
            + " A trace found in a directory that cannot be read is a warning, and the others are reported.")

    @Argument(help: "Trace files written by libheapgate.so (HEAPGATE_OUT), or directories holding them.")
    var traces: [String]

    @OptionGroup var report: ReportFlags

    func run() throws {
        var files: [String] = []
        var named: Set<FileStatus.Identity> = []
        var directories: [String: [String]] = [:]
        for path in traces {
            if FileStatus.isDirectory(path) {
                if let reason = TraceSet.listingError(of: path) {
                    throw fail("\(path): cannot list this directory: \(reason)", status: 2)
                }
                let inDirectory = TraceSet.files(in: path)
                if inDirectory.isEmpty { throw fail("\(path): no heapgate traces (heapgate.*.trace) in this directory", status: 2) }
                directories[path] = inDirectory
                files += inDirectory
            } else {
                files.append(path)
                if let identity = FileStatus.identity(path) { named.insert(identity) }
            }
        }
        // As under `heapgate run`, a trace found in a directory that cannot be read (a stray
        // file, one still empty) leaves the others to report; one given by name is an error.
        // It used to stop every report of the directory.
        let found = Set(directories.values.joined())
        let isFoundOnly = { (file: String) in found.contains(file) && !(FileStatus.identity(file).map(named.contains) ?? false) }
        do {
            var warnings: [String] = []
            let heaps = try TraceSet.load(files: TraceSet.distinct(files), skippingUnreadable: isFoundOnly, warnings: &warnings)
            for warning in warnings { StandardError.write("heapgate: warning: \(warning)\n") }
            if heaps.isEmpty {
                let listed = directories.keys.sorted()
                throw fail(listed.count == 1 ? "\(listed[0]): no readable heapgate trace in this directory"
                    : "no readable heapgate trace in \(listed.joined(separator: ", "))", status: 2)
            }
            let settings = report.settings
            try refuseOutputsOverTraces(settings, traces: files, heaps: heaps)
            let reports = try settings.emit(heaps)
            // An unreadable trace is an error even beside a leak: its process was not checked.
            if !warnings.isEmpty { throw ExitCode(2) }
            if let gate = settings.gate, settings.gateFails(reports) { throw ExitCode(gate) }
        } catch let error as TraceFormatError {
            throw fail(error.description, status: 2)
        } catch let error as CLIError {
            throw fail(error.message, status: error.status)
        }
    }

    /// A report file (--json, --log-file, --xml-file) that is one of the traces read would be
    /// written over it: `--json=a.trace a.trace` lost the trace. Checked once the traces are
    /// loaded, since a name with %p becomes each process's pid, and before anything is written.
    private func refuseOutputsOverTraces(_ settings: ReportSettings, traces: [String], heaps: [ProcessHeap]) throws {
        for (name, what) in try settings.outputFiles {
            let written = name.isPerProcess ? heaps.map { name.path(pid: $0.header.pid) } : [name.path]
            for output in written {
                if let trace = traces.first(where: { FileStatus.isSameFile(output, $0) }) {
                    throw CLIError("cannot write the \(what) to \(output): it is the trace \(trace), which the report reads", status: 2)
                }
            }
        }
    }
}
