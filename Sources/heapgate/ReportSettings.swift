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

/// What the report flags (`ReportFlags`) ask for, as plain values, and what is done with them: the
/// suppressions to load, the report's options, the files it goes to, the gate. Plain, so that
/// the everyday `heapgate run -- PROGRAM` can use the defaults without ArgumentParser, whose
/// parse of `run` (reflection over every flag) was 12 M of the 19 M instructions that
/// heapgate spends around a program that does nothing (HeapGateMain).
struct ReportSettings: Equatable {
    var jsonPath: String? = nil
    var numCallers = 12
    var logFile: String? = nil
    var xml = "no"
    var xmlFile: String? = nil
    var quiet = false
    var debuginfod = false
    /// no, summary or full (`yes` is read as full by `ReportFlags`).
    var leakCheck = "full"
    var showLeakKinds = "definite,possible"
    var errorsForLeakKinds = "definite,possible"
    var errorExitCode: Int32? = nil
    var suppressionFiles: [String] = []
    var defaultSuppressions = "yes"
    var genSuppressions = "no"

    /// The defaults: what the flags are when none is given.
    static let standard = ReportSettings()

    /// Checks the values as ArgumentParser checks a command's (`ValidationError`: the usage follows).
    func validate() throws {
        guard (1...500).contains(numCallers) else { throw ValidationError("--num-callers must be between 1 and 500") }
        guard xml == "yes" || xml == "no" else { throw ValidationError("--xml takes yes or no") }
        if xml == "yes", xmlFile == nil { throw ValidationError("--xml=yes needs --xml-file=FILE") }
        guard LeakCheckMode(rawValue: leakCheck) != nil else { throw ValidationError("--leak-check takes no, summary or full") }
        _ = try Self.kinds(showLeakKinds, flag: "--show-leak-kinds")
        _ = try Self.kinds(errorsForLeakKinds, flag: "--errors-for-leak-kinds")
        guard ["no", "all", "yes"].contains(genSuppressions) else { throw ValidationError("--gen-suppressions takes no, yes or all") }
        guard ["yes", "no"].contains(defaultSuppressions) else { throw ValidationError("--default-suppressions takes yes or no") }
        if let code = errorExitCode, !(0...255).contains(code) { throw ValidationError("--error-exitcode must be between 0 and 255") }
        _ = try outputFiles
    }

    /// valgrind's kind lists: "definite,possible", "all", "none". `all` and `none` stand alone,
    /// as in valgrind: "all,none" was refused as an unknown kind 'all' by a message that then
    /// listed all among the kinds.
    static func kinds(_ text: String, flag: String) throws -> Set<LeakKind> {
        if text == "all" { return Set(LeakKind.allCases) }
        if text == "none" { return [] }
        var kinds: Set<LeakKind> = []
        for word in text.split(separator: ",") {
            if word == "all" || word == "none" {
                throw ValidationError("\(flag): '\(word)' cannot be combined with other kinds (give \(flag)=\(word) alone)")
            }
            guard let kind = LeakKind(rawValue: String(word)) else {
                throw ValidationError("\(flag): unknown kind '\(word)' (definite, indirect, possible, reachable; or all or none alone)")
            }
            kinds.insert(kind)
        }
        return kinds
    }

    /// The suppressions to apply; a bad file is bad input (exit status 2).
    func loadSuppressions() throws -> SuppressionSet {
        var set = defaultSuppressions == "yes" ? DefaultSuppressions.set : SuppressionSet()
        set.append(contentsOf: try loadSuppressionFiles())
        set.numCallers = numCallers
        return set
    }

    /// The --suppressions files alone (the default list is known to parse: a test checks it).
    func loadSuppressionFiles() throws -> SuppressionSet {
        do {
            return try SuppressionSet.load(paths: suppressionFiles)
        } catch let error as SuppressionFileError {
            throw CLIError(error.description, status: 2)
        }
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

    /// The status `--error-exitcode` asks for, or nil when the gate is off: not given, or 0,
    /// which valgrind takes as off (its default) rather than as a status to exit with.
    var gate: Int32? { errorExitCode == 0 ? nil : errorExitCode }

    /// Whether `--error-exitcode` applies: a loss record of an error kind that no suppression
    /// covers, a process whose leaks could not be checked because it installed a seccomp filter,
    /// which stopped tracing, or whose exit-time scan could not run, or one in `unchecked` (pid,
    /// and what kept it from being checked: the process `heapgate run` started, when the shim
    /// never ran in it or its trace ends before its exit). The gate then fails closed, and says
    /// why on stderr: a pass would claim a check that never ran.
    func gateFails(_ reports: [ProcessReport], unchecked: [(pid: Int32, why: String)] = []) -> Bool {
        if hasGatedLeaks(reports) { return true }
        let notChecked = reports.filter(\.stoppedForSandbox).map { (Int32($0.pid), "installed a seccomp filter, which stopped tracing") }
            + reports.filter { $0.leakScanSkipped != nil }.map { (Int32($0.pid), "could not be scanned for leaks at exit") }
            + unchecked
        for (pid, why) in notChecked {
            StandardError.write("heapgate: process \(pid) \(why): its leaks were not checked, so --error-exitcode fails the run\n")
        }
        return !notChecked.isEmpty
    }

    /// Loss records are errors only with --leak-check=full, as valgrind counts them and as the
    /// report's ERROR SUMMARY says: with `summary` heapgate printed "0 errors" and still exited
    /// with N, where valgrind exits with the program's status.
    private func hasGatedLeaks(_ reports: [ProcessReport]) -> Bool {
        guard options.leakCheck == .full else { return false }
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
    var outputFiles: [(name: ReportFileName, what: String)] {
        get throws {
            var files: [(ReportFileName, String)] = []
            if let jsonPath { files.append((ReportFileName(literal: jsonPath), "JSON report")) }
            if xml == "yes", let xmlFile { files.append((try ReportFileName(xmlFile, option: "--xml-file"), "XML report")) }
            if let logFile { files.append((try ReportFileName(logFile, option: "--log-file"), "report")) }
            return files
        }
    }

    /// Writes one output file; a file that cannot be written is status 2.
    private static func write(_ data: Data, to path: String, what: String) throws {
        do { try OutputFile.write(data, to: path) } catch {
            throw CLIError("cannot write the \(what) to \(path): \(error)", status: 2)
        }
    }

    /// Text reports one after another, as on stderr.
    private static func joined(_ texts: [String], quiet: Bool) -> String {
        texts.filter { !$0.isEmpty }.joined(separator: quiet ? "" : "\n")
    }

    /// --log-file: each process's text report to FILE with %p replaced by its pid; without %p,
    /// all of them to FILE, one after another (valgrind's processes would overwrite each other).
    private func writeLogs(_ texts: [String], of reports: [ProcessReport], to logFile: String, quiet: Bool) throws {
        let name = try ReportFileName(logFile, option: "--log-file")
        let files: [(String, String)] = name.isPerProcess
            ? zip(reports, texts).map { (name.path(pid: $0.pid), $1) }
            : [(name.path, Self.joined(texts, quiet: quiet))]
        for (path, text) in files { try Self.write(Data(text.utf8), to: path, what: "report") }
    }

    /// With --xml=yes, memcheck's XML for each process: to --xml-file with %p replaced by its
    /// pid; without %p, for the first process only (valgrind's processes would overwrite each
    /// other's), and a warning names the others.
    private func writeXML(_ reports: [ProcessReport], options: ReportOptions) throws {
        guard xml == "yes", let xmlFile, !reports.isEmpty else { return }
        let name = try ReportFileName(xmlFile, option: "--xml-file")
        let perProcess = name.isPerProcess
        for report in perProcess ? reports : [reports[0]] {
            let path = name.path(pid: report.pid)
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
        for file in symbolizer.changedFiles { StandardError.write("heapgate: warning: \(file.warning)\n") }
        for path in symbolizer.missingFiles {
            StandardError.write("heapgate: warning: \(Symbolizer.missingFileWarning(path))\n")
        }
        let texts = reports.map { report in
            TextReport.render(report, options: options) { record in
                record.kind.leakKind.map { valgrindSuppression(for: record.suppressionFrames, kind: $0) }
            }
        }
        if let logFile {
            try writeLogs(texts, of: reports, to: logFile, quiet: options.quiet)
        } else {
            // A report lost on a full disk must not pass for a clean run; a closed stderr
            // (`2>&-`) is the user's choice, as `2>/dev/null` is.
            let error = StandardError.write(Self.joined(texts, quiet: options.quiet))
            if error != 0 && error != EBADF {
                throw CLIError("cannot write the report to standard error: \(OutputFileError(errno: error))", status: 2)
            }
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
