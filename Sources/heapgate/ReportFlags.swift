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

/// Flags shared by `run` and `summary`, spelled as valgrind spells them where valgrind has them.
struct ReportFlags: ParsableArguments {
    @Option(name: .customLong("json"), help: ArgumentHelp("Also write the machine-readable report to FILE.", valueName: "FILE"))
    var jsonPath: String?

    @Option(name: .customLong("num-callers"), help: "Frames shown per record (like valgrind's --num-callers).")
    var numCallers: Int = 12

    @Option(name: .customLong("log-file"), help: ArgumentHelp("Write the text report to FILE instead of stderr; %p becomes each process's pid (one file per process, as valgrind's).", valueName: "FILE"))
    var logFile: String?

    @Option(name: .customLong("xml"), help: ArgumentHelp("yes: also write memcheck's XML output (protocol 4) to --xml-file, for tools that read valgrind's.", valueName: "yes|no"))
    var xml: String = "no"

    @Option(name: .customLong("xml-file"), help: ArgumentHelp("Where --xml=yes writes; %p becomes each process's pid (one file per process, as valgrind's).", valueName: "FILE"))
    var xmlFile: String?

    @Flag(name: [.customShort("q"), .customLong("quiet")], help: "Print only the loss records shown (and warnings), as valgrind -q: no banner, no HEAP or LEAK SUMMARY; nothing when nothing leaked.")
    var quiet = false

    @Flag(name: .customLong("debuginfod"), help: "Let elfutils fetch missing debug info from $DEBUGINFOD_URLS (off by default: an unreachable server stalls each module for about 90 s).")
    var debuginfod = false

    @Option(name: .customLong("leak-check"), help: ArgumentHelp("no|summary|full: search for leaks at exit, and how much to print (yes: full, as valgrind takes it).", valueName: "no|summary|full"))
    var leakCheck: String = "full"

    @Option(name: .customLong("show-leak-kinds"), help: ArgumentHelp("Kinds of loss records to print: definite,indirect,possible,reachable, all or none.", valueName: "KINDS"))
    var showLeakKinds: String = "definite,possible"

    @Option(name: .customLong("errors-for-leak-kinds"), help: ArgumentHelp("Kinds that count as errors for --error-exitcode.", valueName: "KINDS"))
    var errorsForLeakKinds: String = "definite,possible"

    @Option(name: .customLong("error-exitcode"), help: ArgumentHelp("Exit with N when any process has a leak of a kind in --errors-for-leak-kinds (after suppressions), or could not be checked (it sandboxed itself with seccomp).", valueName: "N"))
    var errorExitCode: Int32?

    @Option(name: .customLong("suppressions"), help: ArgumentHelp("Suppression file: valgrind's Memcheck:Leak blocks or LeakSanitizer's leak: lines. Repeatable.", valueName: "FILE"))
    var suppressionFiles: [String] = []

    @Option(name: .customLong("default-suppressions"), help: ArgumentHelp("yes (default): also apply heapgate's list for runtime one-time allocations (glibc, ld.so, libstdc++, Swift, Rust std).", valueName: "yes|no"))
    var defaultSuppressions: String = "yes"

    @Option(name: .customLong("gen-suppressions"), help: ArgumentHelp("all: print a suppression after each loss record; no (default).", valueName: "no|all"))
    var genSuppressions: String = "no"

    mutating func validate() throws {
        guard (1...500).contains(numCallers) else { throw ValidationError("--num-callers must be between 1 and 500") }
        if leakCheck == "yes" { leakCheck = "full" } // valgrind's synonym, common in scripts
        guard xml == "yes" || xml == "no" else { throw ValidationError("--xml takes yes or no") }
        if xml == "yes", xmlFile == nil { throw ValidationError("--xml=yes needs --xml-file=FILE") }
        guard LeakCheckMode(rawValue: leakCheck) != nil else { throw ValidationError("--leak-check takes no, summary or full") }
        _ = try Self.kinds(showLeakKinds, flag: "--show-leak-kinds")
        _ = try Self.kinds(errorsForLeakKinds, flag: "--errors-for-leak-kinds")
        guard ["no", "all", "yes"].contains(genSuppressions) else { throw ValidationError("--gen-suppressions takes no or all") }
        guard ["yes", "no"].contains(defaultSuppressions) else { throw ValidationError("--default-suppressions takes yes or no") }
        if let code = errorExitCode, !(0...255).contains(code) { throw ValidationError("--error-exitcode must be between 0 and 255") }
    }

    /// valgrind's kind lists: "definite,possible", "all", "none".
    static func kinds(_ text: String, flag: String) throws -> Set<LeakKind> {
        if text == "all" { return Set(LeakKind.allCases) }
        if text == "none" { return [] }
        var kinds: Set<LeakKind> = []
        for word in text.split(separator: ",") {
            guard let kind = LeakKind(rawValue: String(word)) else {
                throw ValidationError("\(flag): unknown kind '\(word)' (definite, indirect, possible, reachable, all, none)")
            }
            kinds.insert(kind)
        }
        return kinds
    }

    /// The suppressions to apply; a bad file is bad input (exit status 2).
    func loadSuppressions() throws -> SuppressionSet {
        var set = defaultSuppressions == "yes" ? DefaultSuppressions.set : SuppressionSet()
        do {
            set.append(contentsOf: try SuppressionSet.load(paths: suppressionFiles))
        } catch let error as SuppressionFileError {
            throw CLIError(error.description, status: 2)
        }
        set.numCallers = numCallers
        return set
    }

    var options: ReportOptions {
        var options = ReportOptions(numCallers: numCallers, useDebuginfod: debuginfod)
        options.leakCheck = LeakCheckMode(rawValue: leakCheck) ?? .full
        options.showLeakKinds = (try? Self.kinds(showLeakKinds, flag: "")) ?? [.definite, .possible]
        options.errorsForLeakKinds = (try? Self.kinds(errorsForLeakKinds, flag: "")) ?? [.definite, .possible]
        options.generateSuppressions = genSuppressions != "no"
        options.quiet = quiet
        return options
    }

    /// True when a report has a leak of a gated kind that no suppression covers.
    /// Whether `--error-exitcode` applies: a loss record of an error kind, or a process whose
    /// leaks could not be checked because it installed a seccomp filter, which stopped tracing.
    /// The gate then fails closed, and says why on stderr: a pass would claim a check that
    /// never ran.
    func gateFails(_ reports: [ProcessReport]) -> Bool {
        if hasGatedLeaks(reports) { return true }
        let unchecked = reports.filter(\.stoppedForSandbox)
        for process in unchecked {
            let message = "heapgate: process \(process.pid) installed a seccomp filter, which stopped tracing: its leaks were not checked, so --error-exitcode fails the run\n"
            StandardError.write(message)
        }
        return !unchecked.isEmpty
    }

    private func hasGatedLeaks(_ reports: [ProcessReport]) -> Bool {
        let gated = options.errorsForLeakKinds
        return reports.contains { report in
            report.records.contains { record in
                record.suppressedBy == nil && (record.kind.leakKind.map(gated.contains) ?? false)
            }
        }
    }

    /// Symbolizers the process is about to exit with: never released, because closing their
    /// libdw sessions (freeing every module's parsed DWARF, then unmapping its files) took
    /// about 5 ms of a run's end (jq: from the program's exit to heapgate's, 11 → 6 ms) that
    /// the exit does for free.
    nonisolated(unsafe) private static var keptUntilExit: [Symbolizer] = []

    /// The files the report goes to besides stderr, and what each holds (for error messages):
    /// --json, --xml-file (with --xml=yes) and --log-file. Names with %p get one per process.
    var outputFiles: [(path: String, what: String)] {
        [(jsonPath, "JSON report"), (xml == "yes" ? xmlFile : nil, "XML report"), (logFile, "report")]
            .compactMap { path, what in path.map { ($0, what) } }
    }

    /// Writes one output file; a file that cannot be written is status 2.
    private static func write(_ data: Data, to path: String, what: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: data) else {
            throw CLIError("cannot write the \(what) to \(path)", status: 2)
        }
    }

    /// Text reports one after another, as on stderr.
    private static func joined(_ texts: [String], quiet: Bool) -> String {
        texts.filter { !$0.isEmpty }.joined(separator: quiet ? "" : "\n")
    }

    /// --log-file: each process's text report to FILE with %p replaced by its pid; without %p,
    /// all of them to FILE, one after another (valgrind's processes would overwrite each other).
    private func writeLogs(_ texts: [String], of reports: [ProcessReport], to logFile: String, quiet: Bool) throws {
        let files: [(String, String)] = logFile.contains("%p")
            ? zip(reports, texts).map { (logFile.replacing("%p", with: String($0.pid)), $1) }
            : [(logFile, Self.joined(texts, quiet: quiet))]
        for (path, text) in files { try Self.write(Data(text.utf8), to: path, what: "report") }
    }

    /// With --xml=yes, memcheck's XML for each process: to --xml-file with %p replaced by its
    /// pid; without %p, for the first process only (valgrind's processes would overwrite each
    /// other's), and a warning names the others.
    private func writeXML(_ reports: [ProcessReport], options: ReportOptions) throws {
        guard xml == "yes", let xmlFile, !reports.isEmpty else { return }
        let perProcess = xmlFile.contains("%p")
        for report in perProcess ? reports : [reports[0]] {
            let path = xmlFile.replacing("%p", with: String(report.pid))
            let text = XMLReport.render(report, options: options, heapgateArguments: CommandLine.arguments)
            try Self.write(Data(text.utf8), to: path, what: "XML report")
        }
        if !perProcess, reports.count > 1 {
            let others = reports.dropFirst().map { String($0.pid) }.joined(separator: ", ")
            StandardError.write("heapgate: warning: --xml-file has no %p, so it holds process \(reports[0].pid) only (not \(others))\n")
        }
    }

    /// Prints the text report on stderr and writes the JSON report if asked. Returns the reports.
    @discardableResult
    func emit(_ heaps: [ProcessHeap], exitStatuses: [Int: Int] = [:], symbolizer: Symbolizer? = nil) throws -> [ProcessReport] {
        var options = self.options
        options.suppressions = RecordSuppressions(try loadSuppressions())
        let symbolizer = symbolizer ?? Symbolizer(useDebuginfod: debuginfod)
        let builder = ReportBuilder(options: options, symbolizer: symbolizer)
        let reports = heaps.map { builder.report(for: $0, exitStatus: exitStatuses[$0.header.pid]) }
        let texts = reports.map { report in
            TextReport.render(report, options: options) { record in
                record.kind.leakKind.map { valgrindSuppression(for: record.suppressionFrames, kind: $0) }
            }
        }
        if let logFile {
            try writeLogs(texts, of: reports, to: logFile, quiet: options.quiet)
        } else {
            StandardError.write(Self.joined(texts, quiet: options.quiet))
        }
        try writeXML(reports, options: options)
        if let jsonPath { try Self.write(try JSONReport.render(reports) + Data("\n".utf8), to: jsonPath, what: "JSON report") }
        symbolizer.storeFrames()
        symbolizer.storeDecompressedDebugFiles()
        Self.keptUntilExit.append(symbolizer)
        return reports
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
    StandardError.write("heapgate: \(message)\n")
    return ExitCode(status)
}
